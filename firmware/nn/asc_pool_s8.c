/* asc_pool_s8.c - AVERAGE_POOL_2D int8 (reference_integer_ops::AveragePool) and MEAN over H,W
 * (reference_ops::QuantizedMeanOrSum, the int8 MEAN path of TFLite Micro). */
#include "asc_nn_internal.h"

#if ASC_NN_USE_DSP
/* Window sums of 4 channels: int16 lanes (c, c+2) in s02, (c+1, c+3) in s13. */
ASC_INLINE void asc_avg_sum(const int8_t *r, int32_t row, int32_t ch, int32_t nfy, int32_t nfx, int32_t *s02,
                            int32_t *s13)
{
    int32_t a = 0, b = 0;
    for (int32_t fy = 0; fy < nfy; fy++, r += row) {
        const int8_t *px = r;
        for (int32_t fx = 0; fx < nfx; fx++, px += ch) {
            const int32_t v = asc_read_s8x4(px);
            a = __sxtab16(a, v);
            b = asc_sxtab16_ror8(b, v);
        }
    }
    *s02 = a;
    *s13 = b;
}
#endif

asc_nn_status asc_avgpool_s8(const asc_nn_pool_params *p,
                             const asc_nn_dims *in, const int8_t *input,
                             const asc_nn_dims *out, int8_t *output)
{
    if (!p || !in || !out || !input || !output || in->n <= 0 || in->h <= 0 || in->w <= 0 ||
        in->c <= 0 || out->n != in->n || out->c != in->c || out->h <= 0 || out->w <= 0 ||
        p->filter.h <= 0 || p->filter.w <= 0 || p->stride.h <= 0 || p->stride.w <= 0 ||
        !asc_act_ok(&p->activation)) {
        return ASC_NN_ARG_ERROR;
    }
    const int32_t ch = in->c;
    for (int32_t b = 0; b < in->n; b++) {
        for (int32_t oy = 0; oy < out->h; oy++) {
            const int32_t y0 = oy * p->stride.h - p->padding.h;
            const int32_t fy0 = ASC_NN_MAX(0, -y0);
            const int32_t fy1 = ASC_NN_MIN(p->filter.h, in->h - y0);
            for (int32_t ox = 0; ox < out->w; ox++) {
                const int32_t x0 = ox * p->stride.w - p->padding.w;
                const int32_t fx0 = ASC_NN_MAX(0, -x0);
                const int32_t fx1 = ASC_NN_MIN(p->filter.w, in->w - x0);
                const int32_t count = (fy1 - fy0) * (fx1 - fx0);
                if (fy1 <= fy0 || fx1 <= fx0) {
                    return ASC_NN_ARG_ERROR; /* TFLite fails on an empty window as well */
                }
                int8_t *o = output + ((b * out->h + oy) * out->w + ox) * ch;
                int32_t c = 0;
#if ASC_NN_USE_DSP
                /* 4 channels at a time: SXTAB16 sums bytes (0, 2) and (1, 3) into int16 lanes, exact
                 * while count * 128 <= 32767 (count <= 255); then the same rounding division. */
                if (count <= 255) {
                    const int32_t half = count / 2, nfx = fx1 - fx0, nfy = fy1 - fy0, row = in->w * ch;
                    const int full = p->activation.min == -128 && p->activation.max == 127;
                    const int8_t *base = input + ((b * in->h + y0 + fy0) * in->w + x0 + fx0) * ch;
                    for (; c + 4 <= ch; c += 4) {
                        int32_t s02 = 0, s13 = 0;
                        if (nfy == 3 && nfx == 3) { /* full 3x3 window: unrolled */
                            asc_avg_sum(base + c, row, ch, 3, 3, &s02, &s13);
                        } else {
                            asc_avg_sum(base + c, row, ch, nfy, nfx, &s02, &s13);
                        }
                        const int32_t a[4] = {(int16_t)(uint16_t)((uint32_t)s02 & 0xFFFFu),
                                              (int16_t)(uint16_t)((uint32_t)s13 & 0xFFFFu),
                                              (int16_t)(uint16_t)((uint32_t)s02 >> 16),
                                              (int16_t)(uint16_t)((uint32_t)s13 >> 16)};
                        for (int32_t k = 0; k < 4; k++) {
                            /* a > 0: (a + half) / count, else (a - half) / count (a == 0 gives 0 either way) */
                            const int32_t sg = -(int32_t)((uint32_t)a[k] >> 31);
                            const int32_t v = (a[k] + ((half ^ sg) - sg)) / count;
                            o[c + k] = full ? (int8_t)asc_ssat8(v) : asc_clamp_s8(v, &p->activation);
                        }
                    }
                }
#endif
                for (; c < ch; c++) {
                    int32_t acc = 0;
                    for (int32_t fy = fy0; fy < fy1; fy++) {
                        const int8_t *row = input + ((b * in->h + y0 + fy) * in->w + x0) * ch + c;
                        for (int32_t fx = fx0; fx < fx1; fx++) {
                            acc += row[fx * ch];
                        }
                    }
                    /* round half away from zero; C division truncates toward zero */
                    acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                    o[c] = asc_clamp_s8(acc, &p->activation);
                }
            }
        }
    }
    return ASC_NN_OK;
}

asc_nn_status asc_mean_s8(const asc_nn_mean_params *p,
                          const asc_nn_dims *in, const int8_t *input,
                          int8_t *output)
{
    if (!p || !in || !input || !output || in->n <= 0 || in->h <= 0 || in->w <= 0 || in->c <= 0 ||
        p->shift > 31 || p->shift < -31 || !asc_act_ok(&p->activation)) {
        return ASC_NN_ARG_ERROR;
    }
    const int32_t num = in->h * in->w;
    /* Fold 1/num into the multiplier: shift = floor(log2(num)), bounded to 32 and 31 + shift. */
    int32_t sh = 0;
    while ((((int64_t)1) << (sh + 1)) <= (int64_t)num) {
        sh++;
    }
    sh = ASC_NN_MIN(sh, 32);
    sh = ASC_NN_MIN(sh, 31 + p->shift);
    int32_t mult = p->multiplier;
    int32_t shift = p->shift;
    if (sh >= 0) {
        mult = (int32_t)((((int64_t)p->multiplier) << sh) / (int64_t)num);
        shift = p->shift - sh;
    }
    const int32_t ch = in->c;
    const int32_t zp_sum = -p->input_offset * num;
    for (int32_t b = 0; b < in->n; b++) {
        for (int32_t c = 0; c < ch; c++) {
            int32_t sum = 0;
            const int8_t *x = input + (int64_t)b * num * ch + c;
            for (int32_t i = 0; i < num; i++) {
                sum += x[i * ch];
            }
            int32_t v = asc_mbqm(sum - zp_sum, mult, shift) + p->output_offset;
            output[b * ch + c] = asc_clamp_s8(v, &p->activation);
        }
    }
    return ASC_NN_OK;
}
