/* asc_pool_s8.c - AVERAGE_POOL_2D int8 (reference_integer_ops::AveragePool) and MEAN over H,W
 * (reference_ops::QuantizedMeanOrSum, the int8 MEAN path of TFLite Micro). */
#include "asc_nn_internal.h"

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
                for (int32_t c = 0; c < ch; c++) {
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
