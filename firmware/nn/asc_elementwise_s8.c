/* asc_elementwise_s8.c - ADD and MUL int8 (TFLite reference_integer_ops::AddElementwise /
 * MulElementwise semantics) with 4-D broadcasting. A broadcast whose channel dim is not broadcast
 * runs as contiguous runs (asc_bcast_run: (H,W,C) + (1,W,C) as H runs of W*C, (H,W,C) * (1,1,C) as
 * H*W runs of C), each through the same loop as same-shape inputs; only a broadcast channel dim
 * takes the element-by-element index loop. */
#include "asc_nn_internal.h"

/* Same 4-D shape (the same-shape fast paths). */
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

/* The fast ADD when input A has multiplier 2^30 and shift 0 (TFLite gives that to the input of
 * the larger scale: real multiplier exactly 0.5) and the activation is the full int8 range:
 *   A: SMMULR((x + off) 2^21, 2^30) = (x + off) 2^19 exactly (no rounding: a multiple of 2^32);
 *   B: RoundingDivideByPOT(SMMULR(2b, m), r) = SMMLAR(2b, m, 2^(r-1) - [b < 0]) >> r (r >= 1),
 *      2b = (x + off) 2^21; [b < 0] may replace [SMMULR(2b, m) < 0]: they differ only where the
 *      result is 0 either way (m >= 0);
 *   output: RoundingDivideByPOT(SMMULR(2s, mo), ro) + out_off = SMMLAR(2s, mo, ko - [s < 0]) >> ro,
 *      ko = 2^(ro-1) + out_off 2^ro, s = A + B (|s| < 2^30), the same identities;
 * then SSAT #8. Per element: 2 loads, 1 + 4 + 1 + 3 operations, SSAT, store. */
/* Input B's rescaled term u of asc_add_half_body (below) for the int8 x: 2b = (x + off) 2^21 =
 * ob21 + x 2^21, u = SMMULR(2b, m) (rb 0) or SMMLAR(2b, m, hb - [b < 0]) >> rb. */
ASC_INLINE int32_t asc_add_b_term(int32_t x, int32_t ob21, int32_t mb, int32_t hb, int32_t rb, int rbz)
{
    const int32_t b2 = ob21 + (int32_t)((uint32_t)x << 21);
    /* arithmetic shifts of negative values (gcc / clang) */
    return rbz ? asc_smmulr(b2, mb) : asc_smmlar(b2, mb, hb + (b2 >> 31)) >> rb;
}

ASC_INLINE void asc_add_half_body(const int8_t *xa, int32_t offa, const int8_t *xb, int32_t offb, int32_t mb,
                                  int32_t rb, const asc_nn_add_params *p, int8_t *out, int32_t size, int rbz)
{
    const int32_t oa20 = (int32_t)((uint32_t)offa << 20), ob21 = (int32_t)((uint32_t)offb << 21);
    const int32_t hb = rbz ? 0 : (int32_t)(1u << (rb - 1));
    const int32_t mo = p->output_multiplier, ro = -p->output_shift;
    const int32_t ko = (int32_t)(1u << (ro - 1)) + (int32_t)((uint32_t)p->output_offset << ro);
    for (int32_t i = 0; i < size; i++) {
        const int32_t s2 = oa20 + (int32_t)((uint32_t)xa[i] << 20) + 2 * asc_add_b_term(xb[i], ob21, mb, hb, rb, rbz);
        out[i] = (int8_t)asc_ssat8(asc_smmlar(s2, mo, ko + (s2 >> 31)) >> ro);
    }
}

/* Elements from which the table form below pays for its 256 table entries (one SMMLAR each). */
#define ASC_ADD_LUT_MIN 1024

/* asc_add_half_body with input B's whole term looked up: lut[128 + x] = oa20 + 2 u(x) for every
 * int8 x (the same integers: u depends on x alone, and |oa20 + 2u| + |xa 2^20| < 2^30 never
 * wraps). Per element: 2 loads, 1 table load, ADD (xa << 20 folded), the output SMMLAR form
 * (ADD, SMMLAR, ASR, SSAT), store. */
static void asc_add_half_table(int32_t offa, int32_t offb, int32_t mb, int32_t rb, int32_t *lut)
{
    const int32_t oa20 = (int32_t)((uint32_t)offa << 20), ob21 = (int32_t)((uint32_t)offb << 21);
    const int32_t hb = rb == 0 ? 0 : (int32_t)(1u << (rb - 1));
    for (int32_t x = -128; x < 128; x++) {
        lut[128 + x] = oa20 + 2 * asc_add_b_term(x, ob21, mb, hb, rb, rb == 0);
    }
}

static void asc_add_half_lut(const int8_t *xa, int32_t offa, const int8_t *xb, int32_t offb, int32_t mb, int32_t rb,
                             const asc_nn_add_params *p, int8_t *out, int32_t size)
{
    int32_t lut[256];
    asc_add_half_table(offa, offb, mb, rb, lut);
    const int32_t *t = lut + 128;
    const int32_t mo = p->output_multiplier, ro = -p->output_shift;
    const int32_t ko = (int32_t)(1u << (ro - 1)) + (int32_t)((uint32_t)p->output_offset << ro);
    for (int32_t i = 0; i < size; i++) {
        const int32_t s2 = t[xb[i]] + (int32_t)((uint32_t)xa[i] << 20);
        out[i] = (int8_t)asc_ssat8(asc_smmlar(s2, mo, ko + (s2 >> 31)) >> ro);
    }
}

static void asc_add_half_loop(const int8_t *xa, int32_t offa, const int8_t *xb, int32_t offb, int32_t mb, int32_t rb,
                              const asc_nn_add_params *p, int8_t *out, int32_t size)
{
    if (size >= ASC_ADD_LUT_MIN) {
        asc_add_half_lut(xa, offa, xb, offb, mb, rb, p, out, size);
    } else if (rb == 0) {
        asc_add_half_body(xa, offa, xb, offb, mb, rb, p, out, size, 1);
    } else {
        asc_add_half_body(xa, offa, xb, offb, mb, rb, p, out, size, 0);
    }
}

/* The parameter range of the fast forms above. */
static int asc_add_fast_ok(const asc_nn_add_params *p)
{
    return !(p->left_shift != 20 || p->input1_offset < -255 || p->input1_offset > 255 || p->input2_offset < -255 ||
             p->input2_offset > 255 || p->input1_multiplier < 0 || p->input2_multiplier < 0 ||
             p->output_multiplier < 0 || p->input1_shift > 0 || p->input1_shift < -31 || p->input2_shift > 0 ||
             p->input2_shift < -31 || p->output_shift > -1 || p->output_shift < -21 || p->output_offset < -128 ||
             p->output_offset > 127);
}

static int asc_add_fast(const asc_nn_add_params *p, const int8_t *in1, const int8_t *in2, int8_t *out, int32_t size)
{
    if (!asc_add_fast_ok(p)) {
        return 0;
    }
    const int r1z = p->input1_shift == 0, r2z = p->input2_shift == 0;
    const int full = p->activation.min == -128 && p->activation.max == 127;
    if (full && r1z && p->input1_multiplier == (1 << 30)) {
        asc_add_half_loop(in1, p->input1_offset, in2, p->input2_offset, p->input2_multiplier, -p->input2_shift, p,
                          out, size);
        return 1;
    }
    if (full && r2z && p->input2_multiplier == (1 << 30)) {
        asc_add_half_loop(in2, p->input2_offset, in1, p->input1_offset, p->input1_multiplier, -p->input1_shift, p,
                          out, size);
        return 1;
    }
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

#if ASC_NN_SPEED_PATHS
/* The table of asc_add_half_lut for the side asc_add_fast gives the half form to (input 1 first), once
 * for a fused producer (asc_fused_s8.c): the same integers as asc_add_s8 of same-shape inputs, whose
 * half forms (table or not) compute them all alike. */
int asc_add_lut_prep(const asc_nn_add_params *p, int32_t *lut256, asc_add_lut_form *f)
{
    if (!p || p->activation.min != -128 || p->activation.max != 127 || !asc_add_fast_ok(p)) {
        return 0;
    }
    if (p->input1_shift == 0 && p->input1_multiplier == (1 << 30)) {
        asc_add_half_table(p->input1_offset, p->input2_offset, p->input2_multiplier, -p->input2_shift, lut256);
        f->a_is_in1 = 1;
    } else if (p->input2_shift == 0 && p->input2_multiplier == (1 << 30)) {
        asc_add_half_table(p->input2_offset, p->input1_offset, p->input1_multiplier, -p->input1_shift, lut256);
        f->a_is_in1 = 0;
    } else {
        return 0;
    }
    f->lut = lut256 + 128;
    f->mo = p->output_multiplier;
    f->ro = -p->output_shift;
    f->ko = (int32_t)(1u << (f->ro - 1)) + (int32_t)((uint32_t)p->output_offset << f->ro);
    return 1;
}
#endif
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
    int k;
    const int32_t run = asc_bcast_run(d1, d2, od, &k);
    if (k < 3) {
        const int32_t n_runs = od->n * od->h * od->w * od->c / run;
        int32_t pos[3] = {0, 0, 0};
        for (int32_t j = 0; j < n_runs; j++, asc_bcast_next(pos, k, od)) {
            const int8_t *a = in1 + asc_bidx(d1, pos[0], pos[1], pos[2], 0);
            const int8_t *b = in2 + asc_bidx(d2, pos[0], pos[1], pos[2], 0);
            int8_t *o = out + (int64_t)j * run;
#if ASC_NN_USE_DSP
            if (asc_add_fast(p, a, b, o, run)) {
                continue;
            }
#endif
            for (int32_t i = 0; i < run; i++) {
                o[i] = asc_add_one(p, a[i], b[i]);
            }
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

/* MUL over `size` elements, input strides st1 / st2 of 0 (a broadcast scalar) or 1. */
static void asc_mul_flat(const asc_nn_mul_params *p, const int8_t *in1, int32_t st1, const int8_t *in2, int32_t st2,
                         int8_t *out, int32_t size)
{
#if ASC_NN_USE_DSP
    int32_t khi, rsh;
    if (p->input1_offset >= -256 && p->input1_offset <= 256 && p->input2_offset >= -256 &&
        p->input2_offset <= 256 && asc_rq_prep_off(p->output_multiplier, p->output_shift, p->output_offset, &khi, &rsh)) {
        /* |product| <= 384^2 < 2^18: asc_rq_fast (output offset folded) is exact */
        const int32_t m = p->output_multiplier;
        for (int32_t i = 0; i < size; i++) {
            const int32_t prod = (in1[i * st1] + p->input1_offset) * (in2[i * st2] + p->input2_offset);
            out[i] = asc_clamp_s8(asc_rq_fast(prod, m, khi, rsh), &p->activation);
        }
        return;
    }
#endif
    for (int32_t i = 0; i < size; i++) {
        out[i] = asc_mul_one(p, in1[i * st1], in2[i * st2]);
    }
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
    const int32_t size = od->n * od->h * od->w * od->c;
    const int s1 = d1->n * d1->h * d1->w * d1->c == 1, s2 = d2->n * d2->h * d2->w * d2->c == 1;
    if ((asc_same(d1, od) || s1) && (asc_same(d2, od) || s2)) {
        /* same shapes or a broadcast scalar: flat loops, no index arithmetic */
        asc_mul_flat(p, in1, s1 ? 0 : 1, in2, s2 ? 0 : 1, out, size);
        return ASC_NN_OK;
    }
    int k;
    const int32_t run = asc_bcast_run(d1, d2, od, &k);
    if (k < 3) {
        int32_t pos[3] = {0, 0, 0};
        for (int32_t j = 0; j < size / run; j++, asc_bcast_next(pos, k, od)) {
            asc_mul_flat(p, in1 + asc_bidx(d1, pos[0], pos[1], pos[2], 0), 1,
                         in2 + asc_bidx(d2, pos[0], pos[1], pos[2], 0), 1, out + (int64_t)j * run, run);
        }
        return ASC_NN_OK;
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
