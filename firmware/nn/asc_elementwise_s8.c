/* asc_elementwise_s8.c - ADD and MUL int8 (TFLite reference_integer_ops::AddElementwise /
 * MulElementwise semantics) with 4-D broadcasting. */
#include "asc_nn_internal.h"

/* Broadcast-compatible 4-D shapes: every input dim equals the output dim or is 1. */
static int asc_bcast_ok(const asc_nn_dims *a, const asc_nn_dims *o)
{
    return (a->n == o->n || a->n == 1) && (a->h == o->h || a->h == 1) && (a->w == o->w || a->w == 1) &&
           (a->c == o->c || a->c == 1) && o->n > 0 && o->h > 0 && o->w > 0 && o->c > 0;
}

static inline int32_t asc_bidx(const asc_nn_dims *a, int32_t n, int32_t h, int32_t w, int32_t c)
{
    return (((a->n == 1 ? 0 : n) * a->h + (a->h == 1 ? 0 : h)) * a->w + (a->w == 1 ? 0 : w)) * a->c +
           (a->c == 1 ? 0 : c);
}

static int asc_same(const asc_nn_dims *a, const asc_nn_dims *b)
{
    return a->n == b->n && a->h == b->h && a->w == b->w && a->c == b->c;
}

static inline int8_t asc_add_one(const asc_nn_add_params *p, int32_t x1, int32_t x2)
{
    const int32_t s1 = (int32_t)((uint32_t)(x1 + p->input1_offset) << p->left_shift);
    const int32_t s2 = (int32_t)((uint32_t)(x2 + p->input2_offset) << p->left_shift);
    const int32_t r1 = asc_mbqm(s1, p->input1_multiplier, p->input1_shift);
    const int32_t r2 = asc_mbqm(s2, p->input2_multiplier, p->input2_shift);
    const int32_t raw = asc_mbqm(r1 + r2, p->output_multiplier, p->output_shift) + p->output_offset;
    return asc_clamp_s8(raw, &p->activation);
}

#if ASC_NN_USE_DSP
/* SMMULR: (a * b + 2^31) >> 32 (64-bit product, arithmetic shift). */
ASC_INLINE int32_t asc_smmulr(int32_t a, int32_t b)
{
#if ASC_NN_ASM
    int32_t r;
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
#else
    return (int32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 31)) >> 32); /* arithmetic (gcc/clang) */
#endif
}

/* Fast exact ADD for same-shape inputs. With |a| < 2^30:
 *   SaturatingRoundingDoublingHighMul(a, m) = floor((a m + 2^30) / 2^31) = SMMULR(2a, m)
 * and RoundingDivideByPOT(v, r) = (v + 2^(r-1) - [v < 0]) >> r for r >= 1 (no overflow for
 * |v| < 2^30). Requires |input offsets| <= 255 and left_shift == 20 (so 2a = (x + off) * 2^21,
 * |2a| < 2^30, and |r1 + r2| < 2^30), multipliers >= 0, input right shifts r1, r2 in {0} or
 * [1, 31], output right shift in [1, 21] (output offset folded into the rounding term, |.| < 2^31). */
ASC_INLINE int32_t asc_add_in(int32_t x, int32_t off21, int32_t m, int32_t half, int32_t r, int rz)
{
    const int32_t v = asc_smmulr(off21 + (int32_t)((uint32_t)x << 21), m);
    if (rz) {
        return v;
    }
    return (v + half - (int32_t)((uint32_t)v >> 31)) >> r;
}

ASC_INLINE void asc_add_fast_loop(const asc_nn_add_params *p, const int8_t *in1, const int8_t *in2, int8_t *out,
                                  int32_t size, int r1z, int r2z, int full)
{
    const int32_t o1 = (int32_t)((uint32_t)p->input1_offset << 21), o2 = (int32_t)((uint32_t)p->input2_offset << 21);
    const int32_t m1 = p->input1_multiplier, m2 = p->input2_multiplier, mo = p->output_multiplier;
    const int32_t r1 = -p->input1_shift, r2 = -p->input2_shift, ro = -p->output_shift;
    const int32_t h1 = r1 > 0 ? (int32_t)(1u << (r1 - 1)) : 0, h2 = r2 > 0 ? (int32_t)(1u << (r2 - 1)) : 0;
    const int32_t ko = (int32_t)(1u << (ro - 1)) + (int32_t)((uint32_t)p->output_offset << ro);
    const int32_t lo = p->activation.min, hi = p->activation.max;
    for (int32_t i = 0; i < size; i++) {
        const int32_t s = asc_add_in(in1[i], o1, m1, h1, r1, r1z) + asc_add_in(in2[i], o2, m2, h2, r2, r2z);
        const int32_t vo = asc_smmulr(s << 1, mo);
        int32_t v = (vo + ko - (int32_t)((uint32_t)vo >> 31)) >> ro;
        if (full) {
            v = asc_ssat8(v);
        } else {
            v = v < lo ? lo : (v > hi ? hi : v);
        }
        out[i] = (int8_t)v;
    }
}

static int asc_add_fast(const asc_nn_add_params *p, const int8_t *in1, const int8_t *in2, int8_t *out, int32_t size)
{
    if (p->left_shift != 20 || p->input1_offset < -255 || p->input1_offset > 255 || p->input2_offset < -255 ||
        p->input2_offset > 255 || p->input1_multiplier < 0 || p->input2_multiplier < 0 ||
        p->output_multiplier < 0 || p->input1_shift > 0 || p->input1_shift < -31 || p->input2_shift > 0 ||
        p->input2_shift < -31 || p->output_shift > -1 || p->output_shift < -21 || p->output_offset < -128 ||
        p->output_offset > 127) {
        return 0;
    }
    const int r1z = p->input1_shift == 0, r2z = p->input2_shift == 0;
    const int full = p->activation.min == -128 && p->activation.max == 127;
    if (full) {
        if (r1z) {
            asc_add_fast_loop(p, in1, in2, out, size, 1, 0, 1);
        } else if (r2z) {
            asc_add_fast_loop(p, in1, in2, out, size, 0, 1, 1);
        } else {
            asc_add_fast_loop(p, in1, in2, out, size, 0, 0, 1);
        }
    } else {
        asc_add_fast_loop(p, in1, in2, out, size, r1z, r2z, 0);
    }
    return 1;
}
#endif

asc_nn_status asc_add_s8(const asc_nn_add_params *p,
                         const asc_nn_dims *d1, const int8_t *in1,
                         const asc_nn_dims *d2, const int8_t *in2,
                         const asc_nn_dims *od, int8_t *out)
{
    if (!p || !d1 || !d2 || !od || !in1 || !in2 || !out || !asc_bcast_ok(d1, od) ||
        !asc_bcast_ok(d2, od) || p->left_shift < 0 || p->left_shift > 30 ||
        !asc_act_ok(&p->activation)) {
        return ASC_NN_ARG_ERROR;
    }
    if (asc_same(d1, od) && asc_same(d2, od)) {
        const int32_t size = od->n * od->h * od->w * od->c;
#if ASC_NN_USE_DSP
        if (asc_add_fast(p, in1, in2, out, size)) {
            return ASC_NN_OK;
        }
#endif
        for (int32_t i = 0; i < size; i++) {
            out[i] = asc_add_one(p, in1[i], in2[i]);
        }
        return ASC_NN_OK;
    }
    int32_t i = 0;
    for (int32_t n = 0; n < od->n; n++) {
        for (int32_t h = 0; h < od->h; h++) {
            for (int32_t w = 0; w < od->w; w++) {
                for (int32_t c = 0; c < od->c; c++) {
                    out[i++] = asc_add_one(p, in1[asc_bidx(d1, n, h, w, c)], in2[asc_bidx(d2, n, h, w, c)]);
                }
            }
        }
    }
    return ASC_NN_OK;
}

static inline int8_t asc_mul_one(const asc_nn_mul_params *p, int32_t x1, int32_t x2)
{
    const int32_t prod = (x1 + p->input1_offset) * (x2 + p->input2_offset);
    const int32_t raw = asc_mbqm(prod, p->output_multiplier, p->output_shift) + p->output_offset;
    return asc_clamp_s8(raw, &p->activation);
}

asc_nn_status asc_mul_s8(const asc_nn_mul_params *p,
                         const asc_nn_dims *d1, const int8_t *in1,
                         const asc_nn_dims *d2, const int8_t *in2,
                         const asc_nn_dims *od, int8_t *out)
{
    if (!p || !d1 || !d2 || !od || !in1 || !in2 || !out || !asc_bcast_ok(d1, od) ||
        !asc_bcast_ok(d2, od) || !asc_act_ok(&p->activation)) {
        return ASC_NN_ARG_ERROR;
    }
    int32_t i = 0;
    for (int32_t n = 0; n < od->n; n++) {
        for (int32_t h = 0; h < od->h; h++) {
            for (int32_t w = 0; w < od->w; w++) {
                for (int32_t c = 0; c < od->c; c++) {
                    out[i++] = asc_mul_one(p, in1[asc_bidx(d1, n, h, w, c)], in2[asc_bidx(d2, n, h, w, c)]);
                }
            }
        }
    }
    return ASC_NN_OK;
}
