/* asc_mean_axis_s8.c - MEAN of a 4-D int8 tensor over one axis (tflite-micro
 * kernels/reduce_common.cc EvalMeanHelper -> EvalIntegerMean -> reference_ops::QuantizedMeanOrSum,
 * kernels/internal/reference/reduce.h): int32 sum of the raw values, minus zp_in * N, 1/N folded
 * into the multiplier (k = min(floor(log2 N), 32, 31 + shift), m' = (m << k) / N truncating,
 * shift' = shift - k), MultiplyByQuantizedMultiplier, + zp_out, clamp.
 *
 * The tensor is viewed as [outer, N, inner] (inner = product of the dims after the axis, contiguous).
 * DSP path (inner >= 4): 4 adjacent inner elements summed at once with SXTAB16 into int16 lanes
 * (bytes 0, 2 and 1, 3), in chunks of at most 255 rows (|sum| <= 255 * 128 < 2^15, exact), the lanes
 * then added into int32 sums; the sums are the same integers as the portable loop's, and the
 * requantisation is the same function, so the results are bit-identical. */
#include "asc_nn_internal.h"

asc_nn_status asc_mean_axis_s8(const asc_nn_mean_axis_params *p, const asc_nn_dims *d,
                               const int8_t *input, int8_t *output)
{
    if (!p || !d || !input || !output || d->n <= 0 || d->h <= 0 || d->w <= 0 || d->c <= 0 ||
        p->axis < 0 || p->axis > 3 || p->shift > 31 || p->shift < -31 || !asc_act_ok(&p->activation)) {
        return ASC_NN_ARG_ERROR;
    }
    const int32_t dims[4] = {d->n, d->h, d->w, d->c};
    int32_t outer = 1, inner = 1;
    for (int32_t k = 0; k < p->axis; k++) {
        outer *= dims[k];
    }
    for (int32_t k = p->axis + 1; k < 4; k++) {
        inner *= dims[k];
    }
    const int32_t num = dims[p->axis];
    /* Fold 1/num into the multiplier, as QuantizedMeanOrSum does (num >= 1, so sh >= 0). */
    int32_t sh = 0;
    while (sh < 62 && (((int64_t)1) << (sh + 1)) <= (int64_t)num) {
        sh++;
    }
    sh = ASC_NN_MIN(sh, 32);
    sh = ASC_NN_MIN(sh, 31 + p->shift);
    const int32_t mult = (int32_t)((((int64_t)p->multiplier) << sh) / (int64_t)num);
    const int32_t shift = p->shift - sh;
    /* temp_sum - zp_in * num: int32 arithmetic (wraps like TFLite's for absurd sizes only) */
    const int32_t zp_sum = (int32_t)((uint32_t)(-p->input_offset) * (uint32_t)num);
    const int64_t stride = inner;
    for (int32_t o = 0; o < outer; o++) {
        const int8_t *x = input + (int64_t)o * num * stride;
        int8_t *y = output + (int64_t)o * inner;
        int32_t i = 0;
#if ASC_NN_USE_DSP
        for (; i + 4 <= inner; i += 4) {
            int32_t s[4] = {0, 0, 0, 0};
            const int8_t *r = x + i;
            for (int32_t r0 = 0; r0 < num; r0 += 255) {
                const int32_t cnt = ASC_NN_MIN(255, num - r0);
                int32_t a = 0, b = 0;
                for (int32_t k = 0; k < cnt; k++, r += stride) {
                    const int32_t v = asc_read_s8x4(r);
                    a = __sxtab16(a, v);
                    b = asc_sxtab16_ror8(b, v);
                }
                s[0] += (int16_t)(uint16_t)((uint32_t)a & 0xFFFFu);
                s[1] += (int16_t)(uint16_t)((uint32_t)b & 0xFFFFu);
                s[2] += (int16_t)(uint16_t)((uint32_t)a >> 16);
                s[3] += (int16_t)(uint16_t)((uint32_t)b >> 16);
            }
            for (int32_t k = 0; k < 4; k++) {
                const int32_t v = asc_mbqm(s[k] - zp_sum, mult, shift) + p->output_offset;
                y[i + k] = asc_clamp_s8(v, &p->activation);
            }
        }
#endif
        for (; i < inner; i++) {
            int32_t sum = 0;
            const int8_t *r = x + i;
            for (int32_t k = 0; k < num; k++, r += stride) {
                sum += *r;
            }
            const int32_t v = asc_mbqm(sum - zp_sum, mult, shift) + p->output_offset;
            y[i] = asc_clamp_s8(v, &p->activation);
        }
    }
    return ASC_NN_OK;
}
