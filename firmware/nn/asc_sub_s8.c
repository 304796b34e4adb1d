/* asc_sub_s8.c - SUB int8 with 4-D broadcasting (tflite-micro kernels/sub.cc EvalSubQuantized ->
 * reference_ops::SubElementwise / BroadcastQuantSubSlow, kernels/internal/reference/sub.h):
 *   out = clamp(MBQM(MBQM((x1 + off1) << ls, m1, s1) - MBQM((x2 + off2) << ls, m2, s2), mo, so) + zp_out)
 * Parameters: asc_nn_add_params as for ADD (left_shift 20; see asc_nn.h).
 *
 * Not a wrapper around asc_add_s8 with a negated input2 multiplier: gemmlowp's
 * SaturatingRoundingDoublingHighMul rounds a product of exactly -1/2 LSB toward zero but +1/2 away
 * from zero, so SRDHM(a, -m) differs from -SRDHM(a, m) at such ties.
 *
 * DSP path (when |offsets| <= 255, left_shift <= 20, multipliers >= 0, input shifts in [-31, 0],
 * output shift in [-31, 0]): with |a| < 2^30,
 *   SaturatingRoundingDoublingHighMul(a, m) = floor((a m + 2^30) / 2^31) = SMMULR(2a, m)
 *   RoundingDivideByPOT(v, r) = (v + 2^(r-1) - [v < 0]) >> r  (r >= 1)
 * (the identities of the ADD fast path, README); the inputs are |(x + off) << ls| <= 383 * 2^20 <
 * 2^29, their rescaled values too (m < 2^31) and the difference stays below 2^30, so every step is exact
 * and the result is bit-identical to the portable path. Otherwise the portable arithmetic. */
#include "asc_nn_internal.h"

static inline int8_t asc_sub_one(const asc_nn_add_params *p, int32_t x1, int32_t x2)
{
    const int32_t s1 = (int32_t)((uint32_t)(x1 + p->input1_offset) << p->left_shift);
    const int32_t s2 = (int32_t)((uint32_t)(x2 + p->input2_offset) << p->left_shift);
    const int32_t r1 = asc_mbqm(s1, p->input1_multiplier, p->input1_shift);
    const int32_t r2 = asc_mbqm(s2, p->input2_multiplier, p->input2_shift);
    const int32_t raw = asc_mbqm(r1 - r2, p->output_multiplier, p->output_shift) + p->output_offset;
    return asc_clamp_s8(raw, &p->activation);
}

#if ASC_NN_USE_DSP
/* MBQM(a, m, -r) for |a| < 2^30, m >= 0, r in [0, 31]; half = 2^(r-1) (0 when r == 0). */
ASC_INLINE int32_t asc_sub_rq(int32_t a, int32_t m, int32_t r, int32_t half)
{
    const int32_t v = asc_smmulr((int32_t)((uint32_t)a << 1), m);
    if (r == 0) {
        return v;
    }
    /* arithmetic shift of a negative value (gcc / clang) */
    return (v + half - (int32_t)((uint32_t)v >> 31)) >> r;
}

static int asc_sub_fast_ok(const asc_nn_add_params *p)
{
    return p->left_shift >= 0 && p->left_shift <= 20 && p->input1_offset >= -255 && p->input1_offset <= 255 &&
           p->input2_offset >= -255 && p->input2_offset <= 255 && p->input1_multiplier >= 0 &&
           p->input2_multiplier >= 0 && p->output_multiplier >= 0 && p->input1_shift <= 0 &&
           p->input1_shift >= -31 && p->input2_shift <= 0 && p->input2_shift >= -31 && p->output_shift <= 0 &&
           p->output_shift >= -31;
}
#endif

asc_nn_status asc_sub_s8(const asc_nn_add_params *p,
                         const asc_nn_dims *d1, const int8_t *in1,
                         const asc_nn_dims *d2, const int8_t *in2,
                         const asc_nn_dims *od, int8_t *out)
{
    if (!p || !d1 || !d2 || !od || !in1 || !in2 || !out || !asc_bcast_ok(d1, od) ||
        !asc_bcast_ok(d2, od) || p->left_shift < 0 || p->left_shift > 30 ||
        !asc_act_ok(&p->activation)) {
        return ASC_NN_ARG_ERROR;
    }
#if ASC_NN_USE_DSP
    if (asc_sub_fast_ok(p)) {
        const int32_t ls = p->left_shift;
        const int32_t m1 = p->input1_multiplier, m2 = p->input2_multiplier, mo = p->output_multiplier;
        const int32_t r1 = -p->input1_shift, r2 = -p->input2_shift, ro = -p->output_shift;
        const int32_t h1 = r1 > 0 ? (int32_t)(1u << (r1 - 1)) : 0, h2 = r2 > 0 ? (int32_t)(1u << (r2 - 1)) : 0;
        const int32_t ho = ro > 0 ? (int32_t)(1u << (ro - 1)) : 0;
        const int32_t lo = p->activation.min, hi = p->activation.max;
        int32_t i = 0;
        for (int32_t n = 0; n < od->n; n++) {
            for (int32_t h = 0; h < od->h; h++) {
                for (int32_t w = 0; w < od->w; w++) {
                    for (int32_t c = 0; c < od->c; c++) {
                        const int32_t a1 = (int32_t)((uint32_t)(in1[asc_bidx(d1, n, h, w, c)] + p->input1_offset) << ls);
                        const int32_t a2 = (int32_t)((uint32_t)(in2[asc_bidx(d2, n, h, w, c)] + p->input2_offset) << ls);
                        const int32_t raw = asc_sub_rq(a1, m1, r1, h1) - asc_sub_rq(a2, m2, r2, h2);
                        int32_t v = asc_sub_rq(raw, mo, ro, ho) + p->output_offset;
                        v = v < lo ? lo : (v > hi ? hi : v);
                        out[i++] = (int8_t)v;
                    }
                }
            }
        }
        return ASC_NN_OK;
    }
#endif
    int32_t i = 0;
    for (int32_t n = 0; n < od->n; n++) {
        for (int32_t h = 0; h < od->h; h++) {
            for (int32_t w = 0; w < od->w; w++) {
                for (int32_t c = 0; c < od->c; c++) {
                    out[i++] = asc_sub_one(p, in1[asc_bidx(d1, n, h, w, c)], in2[asc_bidx(d2, n, h, w, c)]);
                }
            }
        }
    }
    return ASC_NN_OK;
}
