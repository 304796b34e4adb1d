/* asc_conv_s8.c - CONV_2D int8 (TFLite reference_integer_ops::ConvPerChannel semantics). */
#include "asc_nn_internal.h"

static int asc_conv_args_ok(const asc_nn_conv_params *p, const asc_nn_per_channel_quant *q,
                            const asc_nn_dims *in, const asc_nn_dims *f, const asc_nn_dims *out,
                            const void *input, const void *filter, const void *output)
{
    if (!p || !q || !q->multiplier || !q->shift || !in || !f || !out || !input || !filter || !output) {
        return 0;
    }
    if (in->n <= 0 || in->h <= 0 || in->w <= 0 || in->c <= 0 || f->n <= 0 || f->h <= 0 ||
        f->w <= 0 || f->c <= 0 || out->n != in->n || out->h <= 0 || out->w <= 0 || out->c != f->n) {
        return 0;
    }
    if (p->stride.h <= 0 || p->stride.w <= 0 || p->dilation.h <= 0 || p->dilation.w <= 0) {
        return 0;
    }
    if (in->c % f->c != 0) {
        return 0;
    }
    const int32_t groups = in->c / f->c;
    if (out->c % groups != 0) {
        return 0;
    }
    return asc_act_ok(&p->activation);
}

int32_t asc_convolve_s8_get_buffer_size(const asc_nn_dims *input_dims, const asc_nn_dims *filter_dims)
{
    (void)input_dims;
    /* im2col buffer of one output pixel's patch (used by the DSP path; same size in all builds). */
    return filter_dims->h * filter_dims->w * filter_dims->c;
}

asc_nn_status asc_convolve_s8(const asc_nn_context *ctx, const asc_nn_conv_params *p,
                              const asc_nn_per_channel_quant *q,
                              const asc_nn_dims *in, const int8_t *input,
                              const asc_nn_dims *f, const int8_t *filter,
                              const int32_t *bias,
                              const asc_nn_dims *out, int8_t *output)
{
    if (!asc_conv_args_ok(p, q, in, f, out, input, filter, output)) {
        return ASC_NN_ARG_ERROR;
    }
    const int32_t fc = f->c;
    const int32_t groups = in->c / fc;
    const int32_t per_group = out->c / groups;
    const int32_t kh = f->h, kw = f->w;
    const int32_t patch = kh * kw * fc;
#if ASC_NN_USE_DSP
    int8_t *col = (ctx && ctx->buf && ctx->size >= patch) ? (int8_t *)ctx->buf : (int8_t *)0;
    /* A padded tap filled with the input zero point (= -input_offset) contributes exactly 0. */
    const int8_t zp = (int8_t)(-p->input_offset);
    if (p->input_offset < -127 || p->input_offset > 128) {
        col = (int8_t *)0;
    }
#else
    (void)ctx;
    (void)patch;
#endif
    for (int32_t b = 0; b < in->n; b++) {
        for (int32_t oy = 0; oy < out->h; oy++) {
            const int32_t iy0 = oy * p->stride.h - p->padding.h;
            for (int32_t ox = 0; ox < out->w; ox++) {
                const int32_t ix0 = ox * p->stride.w - p->padding.w;
                int8_t *o = output + ((b * out->h + oy) * out->w + ox) * out->c;
                for (int32_t g = 0; g < groups; g++) {
#if ASC_NN_USE_DSP
                    if (col) {
                        int8_t *dst = col;
                        for (int32_t ky = 0; ky < kh; ky++) {
                            const int32_t iy = iy0 + ky * p->dilation.h;
                            for (int32_t kx = 0; kx < kw; kx++) {
                                const int32_t ix = ix0 + kx * p->dilation.w;
                                if (iy < 0 || iy >= in->h || ix < 0 || ix >= in->w) {
                                    memset(dst, zp, (size_t)fc);
                                } else {
                                    memcpy(dst, input + ((b * in->h + iy) * in->w + ix) * in->c + g * fc,
                                           (size_t)fc);
                                }
                                dst += fc;
                            }
                        }
                        for (int32_t oc = g * per_group; oc < (g + 1) * per_group; oc++) {
                            int32_t acc = asc_dot_s8(col, filter + oc * patch, patch, p->input_offset, 0, 0);
                            if (bias) {
                                acc += bias[oc];
                            }
                            acc = asc_mbqm(acc, q->multiplier[oc], q->shift[oc]) + p->output_offset;
                            o[oc] = asc_clamp_s8(acc, &p->activation);
                        }
                        continue;
                    }
#endif
                    for (int32_t oc = g * per_group; oc < (g + 1) * per_group; oc++) {
                        int32_t acc = 0;
                        for (int32_t ky = 0; ky < kh; ky++) {
                            const int32_t iy = iy0 + ky * p->dilation.h;
                            if (iy < 0 || iy >= in->h) {
                                continue;
                            }
                            for (int32_t kx = 0; kx < kw; kx++) {
                                const int32_t ix = ix0 + kx * p->dilation.w;
                                if (ix < 0 || ix >= in->w) {
                                    continue;
                                }
                                acc = asc_dot_s8(input + ((b * in->h + iy) * in->w + ix) * in->c + g * fc,
                                                 filter + ((oc * kh + ky) * kw + kx) * fc, fc,
                                                 p->input_offset, 0, acc);
                            }
                        }
                        if (bias) {
                            acc += bias[oc];
                        }
                        acc = asc_mbqm(acc, q->multiplier[oc], q->shift[oc]) + p->output_offset;
                        o[oc] = asc_clamp_s8(acc, &p->activation);
                    }
                }
            }
        }
    }
    return ASC_NN_OK;
}

asc_nn_status asc_convolve_1x1_s8(const asc_nn_context *ctx, const asc_nn_conv_params *p,
                                  const asc_nn_per_channel_quant *q,
                                  const asc_nn_dims *in, const int8_t *input,
                                  const asc_nn_dims *f, const int8_t *filter,
                                  const int32_t *bias,
                                  const asc_nn_dims *out, int8_t *output)
{
    (void)ctx;
    if (!asc_conv_args_ok(p, q, in, f, out, input, filter, output)) {
        return ASC_NN_ARG_ERROR;
    }
    if (f->h != 1 || f->w != 1 || f->c != in->c || p->padding.h != 0 || p->padding.w != 0) {
        return ASC_NN_ARG_ERROR;
    }
    if ((out->h - 1) * p->stride.h >= in->h || (out->w - 1) * p->stride.w >= in->w) {
        return ASC_NN_ARG_ERROR;
    }
    const int32_t c_in = in->c;
    for (int32_t b = 0; b < in->n; b++) {
        for (int32_t oy = 0; oy < out->h; oy++) {
            for (int32_t ox = 0; ox < out->w; ox++) {
                const int8_t *x = input + ((b * in->h + oy * p->stride.h) * in->w + ox * p->stride.w) * c_in;
                int8_t *o = output + ((b * out->h + oy) * out->w + ox) * out->c;
                for (int32_t oc = 0; oc < out->c; oc++) {
                    int32_t acc = asc_dot_s8(x, filter + oc * c_in, c_in, p->input_offset, 0, 0);
                    if (bias) {
                        acc += bias[oc];
                    }
                    acc = asc_mbqm(acc, q->multiplier[oc], q->shift[oc]) + p->output_offset;
                    o[oc] = asc_clamp_s8(acc, &p->activation);
                }
            }
        }
    }
    return ASC_NN_OK;
}

asc_nn_status asc_convolve_wrapper_s8(const asc_nn_context *ctx, const asc_nn_conv_params *p,
                                      const asc_nn_per_channel_quant *q,
                                      const asc_nn_dims *in, const int8_t *input,
                                      const asc_nn_dims *f, const int8_t *filter,
                                      const int32_t *bias,
                                      const asc_nn_dims *out, int8_t *output)
{
    if (p && in && f && f->h == 1 && f->w == 1 && f->c == in->c && p->padding.h == 0 &&
        p->padding.w == 0) {
        return asc_convolve_1x1_s8(ctx, p, q, in, input, f, filter, bias, out, output);
    }
    return asc_convolve_s8(ctx, p, q, in, input, f, filter, bias, out, output);
}
