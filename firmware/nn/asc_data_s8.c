/* asc_data_s8.c - pure data movement: STRIDED_SLICE, CONCATENATION, PAD, RESHAPE (int8). */
#include "asc_nn_internal.h"

static int asc_dims_ok(const asc_nn_dims *d)
{
    return d && d->n > 0 && d->h > 0 && d->w > 0 && d->c > 0;
}

asc_nn_status asc_strided_slice_s8(const asc_nn_dims *in, const int8_t *input,
                                   const asc_nn_dims *begin, const asc_nn_dims *stride,
                                   const asc_nn_dims *out, int8_t *output)
{
    if (!asc_dims_ok(in) || !asc_dims_ok(out) || !begin || !stride || !input || !output) {
        return ASC_NN_ARG_ERROR;
    }
    const int32_t b[4] = {begin->n, begin->h, begin->w, begin->c};
    const int32_t s[4] = {stride->n, stride->h, stride->w, stride->c};
    const int32_t o[4] = {out->n, out->h, out->w, out->c};
    const int32_t d[4] = {in->n, in->h, in->w, in->c};
    for (int k = 0; k < 4; k++) {
        const int32_t last = b[k] + (o[k] - 1) * s[k];
        if (s[k] == 0 || b[k] < 0 || b[k] >= d[k] || last < 0 || last >= d[k]) {
            return ASC_NN_ARG_ERROR;
        }
    }
    int32_t i = 0;
    for (int32_t n = 0; n < o[0]; n++) {
        const int32_t yn = b[0] + n * s[0];
        for (int32_t h = 0; h < o[1]; h++) {
            const int32_t yh = b[1] + h * s[1];
            for (int32_t w = 0; w < o[2]; w++) {
                const int32_t yw = b[2] + w * s[2];
                const int8_t *row = input + ((yn * d[1] + yh) * d[2] + yw) * d[3];
                if (s[3] == 1) {
                    memcpy(output + i, row + b[3], (size_t)o[3]);
                    i += o[3];
                } else {
                    for (int32_t c = 0; c < o[3]; c++) {
                        output[i++] = row[b[3] + c * s[3]];
                    }
                }
            }
        }
    }
    return ASC_NN_OK;
}

asc_nn_status asc_concatenation_s8(const int8_t *const *inputs, const asc_nn_dims *dims,
                                   int32_t num_inputs, int32_t axis,
                                   const asc_nn_dims *out, int8_t *output)
{
    if (!inputs || !dims || num_inputs <= 0 || axis < 0 || axis > 3 || !asc_dims_ok(out) || !output) {
        return ASC_NN_ARG_ERROR;
    }
    const int32_t od[4] = {out->n, out->h, out->w, out->c};
    int32_t total = 0;
    for (int32_t k = 0; k < num_inputs; k++) {
        const int32_t d[4] = {dims[k].n, dims[k].h, dims[k].w, dims[k].c};
        if (!inputs[k] || !asc_dims_ok(&dims[k])) {
            return ASC_NN_ARG_ERROR;
        }
        for (int a = 0; a < 4; a++) {
            if (a != axis && d[a] != od[a]) {
                return ASC_NN_ARG_ERROR;
            }
        }
        total += d[axis];
    }
    if (total != od[axis]) {
        return ASC_NN_ARG_ERROR;
    }
    int32_t outer = 1, inner = 1;
    for (int a = 0; a < axis; a++) {
        outer *= od[a];
    }
    for (int a = axis + 1; a < 4; a++) {
        inner *= od[a];
    }
    int8_t *dst = output;
    for (int32_t o = 0; o < outer; o++) {
        for (int32_t k = 0; k < num_inputs; k++) {
            const int32_t d[4] = {dims[k].n, dims[k].h, dims[k].w, dims[k].c};
            const int32_t chunk = d[axis] * inner;
            memcpy(dst, inputs[k] + o * chunk, (size_t)chunk);
            dst += chunk;
        }
    }
    return ASC_NN_OK;
}

asc_nn_status asc_pad_s8(const asc_nn_dims *in, const int8_t *input,
                         const asc_nn_dims *before, const asc_nn_dims *after,
                         int8_t pad_value, int8_t *output)
{
    if (!asc_dims_ok(in) || !before || !after || !input || !output || before->n < 0 || before->h < 0 ||
        before->w < 0 || before->c < 0 || after->n < 0 || after->h < 0 || after->w < 0 || after->c < 0) {
        return ASC_NN_ARG_ERROR;
    }
    const int32_t on = in->n + before->n + after->n;
    const int32_t oh = in->h + before->h + after->h;
    const int32_t ow = in->w + before->w + after->w;
    const int32_t oc = in->c + before->c + after->c;
    memset(output, pad_value, (size_t)on * (size_t)oh * (size_t)ow * (size_t)oc);
    for (int32_t n = 0; n < in->n; n++) {
        for (int32_t h = 0; h < in->h; h++) {
            for (int32_t w = 0; w < in->w; w++) {
                memcpy(output + (((n + before->n) * oh + h + before->h) * ow + w + before->w) * oc + before->c,
                       input + ((n * in->h + h) * in->w + w) * in->c, (size_t)in->c);
            }
        }
    }
    return ASC_NN_OK;
}

asc_nn_status asc_reshape_s8(const int8_t *input, int8_t *output, int32_t total_size)
{
    if (!input || !output || total_size < 0) {
        return ASC_NN_ARG_ERROR;
    }
    if (input != output) {
        memmove(output, input, (size_t)total_size);
    }
    return ASC_NN_OK;
}
