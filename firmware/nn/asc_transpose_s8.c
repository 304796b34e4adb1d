/* asc_transpose_s8.c - TRANSPOSE of a 4-D int8 tensor (TFLite transpose.cc, reference_ops::Transpose):
 * output dimension k is input dimension perm[k]; a byte gather (input and output share their
 * quantisation). onnx2tf writes one around every channel slice of an NCHW model (NHWC -> NCHW,
 * slice, back).
 *
 * No DSP path: the M4's SIMD instructions work on the 4 bytes of a word, and a transpose moves
 * bytes between words with no arithmetic; the innermost output dimension is copied with memcpy
 * when it is also innermost in the input. */
#include "asc_nn_internal.h"

asc_nn_status asc_transpose_s8(const asc_nn_dims *input_dims, const int8_t *input_data,
                               const asc_nn_dims *perm, const asc_nn_dims *output_dims, int8_t *output_data)
{
    if (!input_dims || !input_data || !perm || !output_dims || !output_data) {
        return ASC_NN_ARG_ERROR;
    }
    const int32_t d[4] = {input_dims->n, input_dims->h, input_dims->w, input_dims->c};
    const int32_t p[4] = {perm->n, perm->h, perm->w, perm->c};
    const int32_t o[4] = {output_dims->n, output_dims->h, output_dims->w, output_dims->c};
    int32_t stride[4], seen = 0;
    stride[3] = 1;
    for (int k = 2; k >= 0; k--) {
        stride[k] = stride[k + 1] * d[k + 1];
    }
    for (int k = 0; k < 4; k++) {
        if (d[k] <= 0 || p[k] < 0 || p[k] > 3 || (seen & (1 << p[k])) || o[k] != d[p[k]]) {
            return ASC_NN_ARG_ERROR;
        }
        seen |= 1 << p[k];
    }
    const int32_t s0 = stride[p[0]], s1 = stride[p[1]], s2 = stride[p[2]], s3 = stride[p[3]];
    int8_t *y = output_data;
    for (int32_t i0 = 0; i0 < o[0]; i0++) {
        for (int32_t i1 = 0; i1 < o[1]; i1++) {
            for (int32_t i2 = 0; i2 < o[2]; i2++) {
                const int8_t *x = input_data + i0 * s0 + i1 * s1 + i2 * s2;
                if (s3 == 1) {
                    memcpy(y, x, (size_t)o[3]);
                    y += o[3];
                } else {
                    for (int32_t i3 = 0; i3 < o[3]; i3++) {
                        *y++ = x[i3 * s3];
                    }
                }
            }
        }
    }
    return ASC_NN_OK;
}
