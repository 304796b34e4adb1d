/* asc_conv_s8.c - CONV_2D int8 (TFLite reference_integer_ops::ConvPerChannel semantics). */
#include <stddef.h>

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

#if ASC_NN_USE_DSP
/* ---- DSP GEMM core shared by the 1x1 and the im2col convolution ----------------------------
 * Rows of K int8 values: inputs x_p = x + p*K (p = pixel), weights w_o = w + o*K (o = output
 * channel). acc[p][o] += sum_k (x_p[k] + off) * w_o[k]. Inputs are unpacked with SXTAB16 (adding
 * the input offset, exact: |x + off| <= 255 fits the int16 lanes), weights with SXTB16, products
 * summed by SMLAD: int32 arithmetic wraps exactly like the reference's int32 sum. */
#define ASC_MAC4_2X2(X, W, K)                                                                      \
    do {                                                                                           \
        const int32_t xa_ = asc_read_s8x4(X), xb_ = asc_read_s8x4((X) + (K));                     \
        const int32_t wa_ = asc_read_s8x4(W), wb_ = asc_read_s8x4((W) + (K));                     \
        const int32_t xae_ = __sxtab16(off2, xa_), xao_ = asc_sxtab16_ror8(off2, xa_);             \
        const int32_t xbe_ = __sxtab16(off2, xb_), xbo_ = asc_sxtab16_ror8(off2, xb_);             \
        const int32_t wae_ = __sxtb16(wa_), wao_ = asc_sxtb16_ror8(wa_);                           \
        s00 = __smlad(xae_, wae_, s00);                                                            \
        s00 = __smlad(xao_, wao_, s00);                                                            \
        s10 = __smlad(xbe_, wae_, s10);                                                            \
        s10 = __smlad(xbo_, wao_, s10);                                                            \
        const int32_t wbe_ = __sxtb16(wb_), wbo_ = asc_sxtb16_ror8(wb_);                           \
        s01 = __smlad(xae_, wbe_, s01);                                                            \
        s01 = __smlad(xao_, wbo_, s01);                                                            \
        s11 = __smlad(xbe_, wbe_, s11);                                                            \
        s11 = __smlad(xbo_, wbo_, s11);                                                            \
    } while (0)

#if ASC_NN_ASM
/* One group of 4 inputs for 2 pixels x 2 channels, pointers post-incremented by 4; the second
 * pixel / channel rows are at [ptr + km4] after the increment (km4 = K - 4). 20 instructions. */
#define ASC_ASM_G2X2                                                                               \
    "ldr     %[t1], [%[x]], #4\n\t"                                                              \
    "ldr     %[t0], [%[x], %[km4]]\n\t"                                                          \
    "sxtab16 %[t2], %[o], %[t1]\n\t"                                                             \
    "sxtab16 %[t1], %[o], %[t1], ror #8\n\t"                                                     \
    "sxtab16 %[t3], %[o], %[t0]\n\t"                                                             \
    "sxtab16 %[t0], %[o], %[t0], ror #8\n\t"                                                     \
    "ldr     %[t4], [%[w]], #4\n\t"                                                              \
    "sxtb16  %[t5], %[t4]\n\t"                                                                   \
    "sxtb16  %[t4], %[t4], ror #8\n\t"                                                           \
    "smlad   %[s00], %[t2], %[t5], %[s00]\n\t"                                                   \
    "smlad   %[s00], %[t1], %[t4], %[s00]\n\t"                                                   \
    "smlad   %[s10], %[t3], %[t5], %[s10]\n\t"                                                   \
    "smlad   %[s10], %[t0], %[t4], %[s10]\n\t"                                                   \
    "ldr     %[t4], [%[w], %[km4]]\n\t"                                                          \
    "sxtb16  %[t5], %[t4]\n\t"                                                                   \
    "sxtb16  %[t4], %[t4], ror #8\n\t"                                                           \
    "smlad   %[s01], %[t2], %[t5], %[s01]\n\t"                                                   \
    "smlad   %[s01], %[t1], %[t4], %[s01]\n\t"                                                   \
    "smlad   %[s11], %[t3], %[t5], %[s11]\n\t"                                                   \
    "smlad   %[s11], %[t0], %[t4], %[s11]\n\t"

#define ASC_ASM_G1X2                                                                               \
    "ldr     %[t1], [%[x]], #4\n\t"                                                              \
    "sxtab16 %[t2], %[o], %[t1]\n\t"                                                             \
    "sxtab16 %[t1], %[o], %[t1], ror #8\n\t"                                                     \
    "ldr     %[t4], [%[w]], #4\n\t"                                                              \
    "sxtb16  %[t5], %[t4]\n\t"                                                                   \
    "sxtb16  %[t4], %[t4], ror #8\n\t"                                                           \
    "smlad   %[s0], %[t2], %[t5], %[s0]\n\t"                                                     \
    "smlad   %[s0], %[t1], %[t4], %[s0]\n\t"                                                     \
    "ldr     %[t4], [%[w], %[km4]]\n\t"                                                          \
    "sxtb16  %[t5], %[t4]\n\t"                                                                   \
    "sxtb16  %[t4], %[t4], ror #8\n\t"                                                           \
    "smlad   %[s1], %[t2], %[t5], %[s1]\n\t"                                                     \
    "smlad   %[s1], %[t1], %[t4], %[s1]\n\t"
#endif

/* 2 pixels x 2 output channels. */
ASC_INLINE void asc_gemm_2x2(const int8_t *x, const int8_t *w, int32_t k, int32_t off, int32_t acc[4])
{
    const int32_t off2 = asc_dup16(off);
    int32_t s00 = acc[0], s01 = acc[1], s10 = acc[2], s11 = acc[3];
    const int8_t *x8 = x + (k & ~7);
#if ASC_NN_ASM
    const int32_t km4 = k - 4;
    int32_t t0, t1, t2, t3, t4, t5;
    if (x != x8) {
        __asm__ volatile("1:\n\t" ASC_ASM_G2X2 ASC_ASM_G2X2
                         "ldr     %[t4], %[end]\n\t"
                         "cmp     %[x], %[t4]\n\t"
                         "bne     1b\n\t"
                         : [x] "+r"(x), [w] "+r"(w), [s00] "+r"(s00), [s01] "+r"(s01), [s10] "+r"(s10),
                           [s11] "+r"(s11), [t0] "=&r"(t0), [t1] "=&r"(t1), [t2] "=&r"(t2), [t3] "=&r"(t3),
                           [t4] "=&r"(t4), [t5] "=&r"(t5)
                         : [km4] "r"(km4), [o] "r"(off2), [end] "m"(x8)
                         : "cc", "memory");
    }
    if (k & 4) {
        __asm__ volatile(ASC_ASM_G2X2
                         : [x] "+r"(x), [w] "+r"(w), [s00] "+r"(s00), [s01] "+r"(s01), [s10] "+r"(s10),
                           [s11] "+r"(s11), [t0] "=&r"(t0), [t1] "=&r"(t1), [t2] "=&r"(t2), [t3] "=&r"(t3),
                           [t4] "=&r"(t4), [t5] "=&r"(t5)
                         : [km4] "r"(km4), [o] "r"(off2)
                         : "memory");
    }
#else
    while (x != x8) {
        ASC_MAC4_2X2(x, w, k);
        ASC_MAC4_2X2(x + 4, w + 4, k);
        x += 8;
        w += 8;
    }
    if (k & 4) {
        ASC_MAC4_2X2(x, w, k);
        x += 4;
        w += 4;
    }
#endif
    for (int32_t i = 0; i < (k & 3); i++) {
        const int32_t xa = x[i] + off, xb = x[i + k] + off, wa = w[i], wb = w[i + k];
        s00 += xa * wa;
        s01 += xa * wb;
        s10 += xb * wa;
        s11 += xb * wb;
    }
    acc[0] = s00;
    acc[1] = s01;
    acc[2] = s10;
    acc[3] = s11;
}

#define ASC_MAC4_1X2(X, W, K)                                                                      \
    do {                                                                                           \
        const int32_t xa_ = asc_read_s8x4(X);                                                      \
        const int32_t wa_ = asc_read_s8x4(W), wb_ = asc_read_s8x4((W) + (K));                     \
        const int32_t xae_ = __sxtab16(off2, xa_), xao_ = asc_sxtab16_ror8(off2, xa_);             \
        const int32_t wae_ = __sxtb16(wa_), wao_ = asc_sxtb16_ror8(wa_);                           \
        s0 = __smlad(xae_, wae_, s0);                                                              \
        s0 = __smlad(xao_, wao_, s0);                                                              \
        const int32_t wbe_ = __sxtb16(wb_), wbo_ = asc_sxtb16_ror8(wb_);                           \
        s1 = __smlad(xae_, wbe_, s1);                                                              \
        s1 = __smlad(xao_, wbo_, s1);                                                              \
    } while (0)

/* 1 pixel x 2 output channels. */
ASC_INLINE void asc_gemm_1x2(const int8_t *x, const int8_t *w, int32_t k, int32_t off, int32_t acc[2])
{
    const int32_t off2 = asc_dup16(off);
    int32_t s0 = acc[0], s1 = acc[1];
    const int8_t *x8 = x + (k & ~7);
#if ASC_NN_ASM
    const int32_t km4 = k - 4;
    int32_t t1, t2, t4, t5;
    if (x != x8) {
        __asm__ volatile("1:\n\t" ASC_ASM_G1X2 ASC_ASM_G1X2
                         "cmp     %[x], %[end]\n\t"
                         "bne     1b\n\t"
                         : [x] "+r"(x), [w] "+r"(w), [s0] "+r"(s0), [s1] "+r"(s1), [t1] "=&r"(t1),
                           [t2] "=&r"(t2), [t4] "=&r"(t4), [t5] "=&r"(t5)
                         : [km4] "r"(km4), [o] "r"(off2), [end] "r"(x8)
                         : "cc", "memory");
    }
    if (k & 4) {
        __asm__ volatile(ASC_ASM_G1X2
                         : [x] "+r"(x), [w] "+r"(w), [s0] "+r"(s0), [s1] "+r"(s1), [t1] "=&r"(t1),
                           [t2] "=&r"(t2), [t4] "=&r"(t4), [t5] "=&r"(t5)
                         : [km4] "r"(km4), [o] "r"(off2)
                         : "memory");
    }
#else
    while (x != x8) {
        ASC_MAC4_1X2(x, w, k);
        ASC_MAC4_1X2(x + 4, w + 4, k);
        x += 8;
        w += 8;
    }
    if (k & 4) {
        ASC_MAC4_1X2(x, w, k);
        x += 4;
        w += 4;
    }
#endif
    for (int32_t i = 0; i < (k & 3); i++) {
        const int32_t xa = x[i] + off;
        s0 += xa * w[i];
        s1 += xa * w[i + k];
    }
    acc[0] = s0;
    acc[1] = s1;
}

/* Requantisation parameters of one output channel. */
typedef struct {
    int32_t m, s, khi, rsh, fast;
} asc_rq_ch;

ASC_INLINE void asc_rq_load(asc_rq_ch *c, const asc_nn_per_channel_quant *q, int32_t oc, int32_t out_off)
{
    c->m = q->multiplier[oc];
    c->s = q->shift[oc];
    c->fast = asc_rq_prep_off(c->m, c->s, out_off, &c->khi, &c->rsh);
}

/* requantise, add the output offset, clamp (full: the activation is the whole int8 range) */
ASC_INLINE int8_t asc_rq_out(int32_t acc, const asc_rq_ch *c, int fast, int full, int32_t out_off,
                             const asc_nn_activation *act)
{
    /* the fast form has the output offset folded in */
    const int32_t v = fast ? asc_rq_fast(acc, c->m, c->khi, c->rsh) : asc_mbqm(acc, c->m, c->s) + out_off;
    if (full) {
        return (int8_t)asc_ssat8(v);
    }
    return asc_clamp_s8(v, act);
}

/* out[p * out_stride + o] for n_px pixels (rows x + p*k) and output channels [oc0, oc0 + 2). */
ASC_INLINE void asc_gemm_px_loop(const int8_t *x, int32_t n_px, const int8_t *w, int32_t k, int32_t off,
                                 int32_t b0, int32_t b1, const asc_rq_ch *c0, const asc_rq_ch *c1,
                                 int8_t *out, int32_t out_stride, int32_t out_off,
                                 const asc_nn_activation *act, int fast, int full)
{
    int32_t p = 0;
    for (; p + 2 <= n_px; p += 2) {
        int32_t acc[4] = {b0, b1, b0, b1};
        asc_gemm_2x2(x, w, k, off, acc);
        out[0] = asc_rq_out(acc[0], c0, fast, full, out_off, act);
        out[1] = asc_rq_out(acc[1], c1, fast, full, out_off, act);
        out[out_stride] = asc_rq_out(acc[2], c0, fast, full, out_off, act);
        out[out_stride + 1] = asc_rq_out(acc[3], c1, fast, full, out_off, act);
        x += 2 * k;
        out += 2 * out_stride;
    }
    if (p < n_px) {
        int32_t acc[2] = {b0, b1};
        asc_gemm_1x2(x, w, k, off, acc);
        out[0] = asc_rq_out(acc[0], c0, fast, full, out_off, act);
        out[1] = asc_rq_out(acc[1], c1, fast, full, out_off, act);
    }
}

/* GEMM of n_px contiguous input rows (K = k int8 each) with n_oc filter rows: output pixel p,
 * channel o at out[p * out_stride + o]. Exactly the reference's per-element arithmetic. */
static void asc_gemm_s8(const int8_t *x, int32_t n_px, const int8_t *w, int32_t n_oc, int32_t k,
                        const int32_t *bias, const asc_nn_per_channel_quant *q, int32_t off, int32_t out_off,
                        const asc_nn_activation *act, int8_t *out, int32_t out_stride)
{
    const int full = act->min == -128 && act->max == 127;
    int32_t oc = 0;
    for (; oc + 2 <= n_oc; oc += 2) {
        asc_rq_ch c0, c1;
        asc_rq_load(&c0, q, oc, out_off);
        asc_rq_load(&c1, q, oc + 1, out_off);
        const int32_t b0 = bias ? bias[oc] : 0, b1 = bias ? bias[oc + 1] : 0;
        const int8_t *wr = w + oc * k;
        if (c0.fast && c1.fast) {
            if (full) {
                asc_gemm_px_loop(x, n_px, wr, k, off, b0, b1, &c0, &c1, out + oc, out_stride, out_off, act, 1, 1);
            } else {
                asc_gemm_px_loop(x, n_px, wr, k, off, b0, b1, &c0, &c1, out + oc, out_stride, out_off, act, 1, 0);
            }
        } else {
            asc_gemm_px_loop(x, n_px, wr, k, off, b0, b1, &c0, &c1, out + oc, out_stride, out_off, act, 0, 0);
        }
    }
    if (oc < n_oc) {
        /* odd channel count: the last channel one pixel at a time */
        const int8_t *wr = w + oc * k;
        for (int32_t p = 0; p < n_px; p++) {
            int32_t acc = asc_dot_s8(x + p * k, wr, k, off, 0, bias ? bias[oc] : 0);
            acc = asc_mbqm(acc, q->multiplier[oc], q->shift[oc]) + out_off;
            out[p * out_stride + oc] = asc_clamp_s8(acc, act);
        }
    }
}

/* ---- 1x1 GEMM on pre-widened int16 operands ("pw16") ----------------------------------------
 * The inner loop of asc_gemm_2x2 spends 12 of its 20 instructions per 16 MACs unpacking int8
 * operands, and every output pays ~20 instructions of requantisation. Here both operands are
 * unpacked once:
 *  - inputs: pixel pairs (p, p+1), per group g of 4 input channels 4 words
 *      [ X(p,4g,4g+2), X(p,4g+1,4g+3), X(p+1,4g,4g+2), X(p+1,4g+1,4g+3) ]
 *    with X(p,i,j) = two int16 lanes x[p][i] + input_offset (lo) and x[p][j] + input_offset (hi).
 *    Channels past K (K % 4 != 0) are 0 lanes. Built once per call (stack buffer, chunks of pixel
 *    pairs; an odd last pixel gets an all-zero partner whose outputs are not stored).
 *  - weights: output-channel pairs (o, o+1), per group 4 words [W(o,..02), W(o,..13), W(o+1,..02),
 *    W(o+1,..13)], lanes 2 * w (doubled: the accumulator is 2 * acc, see the requantisation below):
 *    the pre-widened filter of the generated model (asc_convolve_1x1_s8_widen_filter, flash), or
 *    built per channel pair and call.
 * One group for 2 pixels x 2 channels is LDM + LDM + 8 SMLAD (10 instructions / 16 MACs); all
 * lanes are exact int16 (|x + off| <= 383, |2w| <= 256) and the int32 sums are exact because
 * |acc| < 2^30 is checked from the bias and K (asc_pw_prep), so 2 * acc never wraps.
 *
 * Requantisation from A = 2*acc (multiplier m >= 0, shift = -r with 1 <= r <= 20):
 *   SMMLAR(A, m, c) = floor((2 acc m + 2^31 + c 2^32) / 2^32) = c + floor((acc m + 2^30) / 2^31)
 *                   = c + SaturatingRoundingDoublingHighMul(acc, m)             (m >= 0: no saturation)
 * and RoundingDivideByPOT(v, r) + out_off = (v + 2^(r-1) - [v < 0] + out_off 2^r) >> r, so with
 *   c = kc - [acc < 0],  kc = 2^(r-1) + out_off 2^r   ([acc < 0] may replace [v < 0]: they differ
 *   only for v == 0, acc == -1, m == 2^30, where both give 0),
 * output = SSAT8((SMMLAR(A, m, kc + (A >> 31))) >> r): ADD, SMMLAR, ASR, SSAT, STRB per output
 * (|A m| < 2^62 and |c| < 2^29: the 64-bit sum never wraps). Only for the full int8 activation
 * range; everything else takes the int8 GEMM above. */
#define ASC_PW_XBUF_WORDS 640         /* 2560 bytes of widened pixel pairs (stack): 9 px at K = 128 */

/* The asm reads it with LDMDB / LDM around jp = &kc0: w..b1c into r1, r2, r10-lr before a block,
 * kc0..out into r2-r8 and stride, xend into r10, r11 after one (keep the order). b0..r1 are the
 * ASC_PW_RQ_WORDS words of a requantisation record (asc_nn.h), in its order. */
typedef struct {
    const int32_t *w;                 /* widened weight pair */
    uintptr_t entry;                  /* asm: start address in the unrolled group loop */
    int32_t b0, b1;                   /* 2 * bias */
    int32_t b0c, b1c;                 /* copies of b0, b1 (initial values of the second pixel) */
    int32_t kc0, kc1, m0, m1, r0, r1; /* requantisation constants of the two channels */
    int8_t *out;                      /* output of the next pair's first pixel, channel o */
    int32_t stride;                   /* bytes between two pixels' outputs */
    const int32_t *xend;              /* end of the widened pixel pairs */
    uintptr_t entry1;                 /* asm: start address in the unrolled loop of asc_pw_1x2 */
    /* channel-pair loop of asc_pw_2x2_rq (records and a pre-widened filter) */
    const int32_t *x0;                /* first widened pixel pair of the chunk */
    const int32_t *rq, *rq_end;       /* next record, end of the records */
    int32_t out_step;                 /* bytes from out after a pair's last block to the next pair's */
    int32_t w_step;                   /* bytes of one widened weight pair (16 per group) */
} asc_pw_job;

/* Largest |bias| for which |acc| <= |bias| + K (128 + |in_off|) 128 < 2^30 (the pw16 exactness
 * bound); < 0: none. */
static int32_t asc_pw_bias_limit(int32_t k, int32_t in_off)
{
    const int32_t absoff = in_off < 0 ? -in_off : in_off; /* |in_off| <= 255, k <= ASC_PW_MAX_K */
    return (int32_t)((1 << 30) - 1 - k * (128 + absoff) * 128);
}

/* Fast-path check and constants of one output channel; 0: use the int8 path. */
ASC_INLINE int asc_pw_prep(int32_t m, int32_t shift, int32_t out_off, int32_t bias, int32_t blim,
                           int32_t *kc, int32_t *r, int32_t *b2)
{
    if (m < 0 || shift > -1 || shift < -20 || bias > blim || bias < -blim) {
        return 0;
    }
    *r = -shift;
    *kc = (int32_t)(1u << (uint32_t)(-shift - 1)) + (int32_t)((uint32_t)out_off << (uint32_t)-shift);
    *b2 = 2 * bias;
    return 1;
}

#if ASC_NN_ASM
/* asc_pw_2x2(x, job): for each pixel pair from x to job->xend: 2x2 accumulators from job->b0/b1,
 * the groups of the pair (jumping into the unrolled loop at job->entry = asc_pw_loop_end - 40 *
 * groups, each group is 40 bytes of code), requantise, store 4 bytes, advance job->out by 2 strides.
 * Registers in the loop: r0 x, r1 w, r2-r5 inputs, r6-r9 weights, r10 s00, r11 s01, r12 s10, lr s11
 * (s<pixel><channel>). */
void asc_pw_2x2(const int32_t *x, asc_pw_job *job);
void asc_pw_loop_end(void);
typedef char asc_pw_job_layout_check[(offsetof(asc_pw_job, entry) == 4 && offsetof(asc_pw_job, b0) == 8 &&
                                      offsetof(asc_pw_job, b1c) == 20 && offsetof(asc_pw_job, kc0) == 24 &&
                                      offsetof(asc_pw_job, out) == 48 && offsetof(asc_pw_job, stride) == 52 &&
                                      offsetof(asc_pw_job, xend) == 56 && offsetof(asc_pw_job, entry1) == 60 &&
                                      offsetof(asc_pw_job, x0) == 64 && offsetof(asc_pw_job, rq) == 68 &&
                                      offsetof(asc_pw_job, rq_end) == 72 && offsetof(asc_pw_job, out_step) == 76 &&
                                      offsetof(asc_pw_job, w_step) == 80 &&
                                      offsetof(asc_pw_job, r1) - offsetof(asc_pw_job, b0) == 4 * (ASC_PW_RQ_WORDS - 1))
                                         ? 1
                                         : -1];

#define ASC_PW_RQ(ACC, KC, M, R)                                                                   \
    "add     r9, " KC ", " ACC ", asr #31\n\t"                                                     \
    "smmlar  r9, " ACC ", " M ", r9\n\t"                                                           \
    "asr     r9, r9, " R "\n\t"                                                                    \
    "ssat    r9, #8, r9\n\t"

/* Prologue, pixel-pair loop and requantisation of asc_pw_2x2 (NAME) and asc_pw_2x2_rq; LOOP_END
 * labels the end of the unrolled group loop. Per pixel pair (block of 2 x 2 outputs), counted:
 * LDMDB + BX, 10 per group, then LDR, LDM, 4 x (ADD, SMMLAR, ASR, SSAT, STRB), LDRD, 2 ADD, STR,
 * CMP, BNE: 30 + 10 * groups. */
/* The unrolled group loop of the 2x2 GEMM routines (entered at loop_end - 40 * groups): per group of
 * 4 input channels, LDM of the 2 pixels' 4 words, LDM of the 2 channels' 4 weight words, 8 SMLAD. */
#define ASC_PW_2X2_GROUPS                                                                          \
    ".p2align 2\n\t"                                                                               \
    ".rept " "32" "\n\t"                                                                           \
    "ldmia.w r0!, {r2-r5}\n\t"                                                                     \
    "ldmia.w r1!, {r6-r9}\n\t"                                                                     \
    "smlad   r10, r2, r6, r10\n\t"                                                                 \
    "smlad   r10, r3, r7, r10\n\t"                                                                 \
    "smlad   r11, r2, r8, r11\n\t"                                                                 \
    "smlad   r11, r3, r9, r11\n\t"                                                                 \
    "smlad   r12, r4, r6, r12\n\t"                                                                 \
    "smlad   r12, r5, r7, r12\n\t"                                                                 \
    "smlad   lr, r4, r8, lr\n\t"                                                                   \
    "smlad   lr, r5, r9, lr\n\t"                                                                   \
    ".endr\n\t"

/* A 2x2 GEMM routine's block loop head: the next pair's weights, entry and biases (one LDMDB around
 * jp = r1), the jump into the unrolled group loop, and the label LOOP_END its requantisation starts at. */
#define ASC_PW_2X2_LOOP(LOOP_END)                                                                  \
    "1:\n\t"                                                                                       \
    "ldmdb   r1, {r1, r2, r10, r11, r12, lr}\n\t" /* w, entry, b0, b1, b0, b1 */                   \
    "bx      r2\n\t"                                                                               \
    ASC_PW_2X2_GROUPS                                                                              \
    ".global " LOOP_END "\n\t"                                                                     \
    ".type " LOOP_END ", %function\n\t"                                                            \
    ".thumb_func\n" LOOP_END ":\n\t"

#define ASC_PW_2X2_BODY(NAME, LOOP_END)                                                             \
    ".pushsection .text." NAME ",\"ax\",%progbits\n\t"                                             \
    ".syntax unified\n\t"                                                                          \
    ".thumb\n\t"                                                                                   \
    ".p2align 2\n\t"                                                                               \
    ".global " NAME "\n\t"                                                                         \
    ".type " NAME ", %function\n\t"                                                                \
    ".thumb_func\n" NAME ":\n\t"                                                                   \
    "push    {r4-r11, lr}\n\t"                                                                     \
    "sub     sp, sp, #4\n\t"                                                                       \
    "add     r1, r1, #24\n\t" /* jp = &job->kc0 */                                                 \
    "str     r1, [sp]\n"                                                                           \
    ASC_PW_2X2_LOOP(LOOP_END)                                                                      \
    "ldr     r1, [sp]\n\t"                                                                         \
    "ldm     r1, {r2-r8}\n\t" /* kc0 kc1 m0 m1 r0 r1 out */                                        \
    ASC_PW_RQ("r10", "r2", "r4", "r6")                                                             \
    "strb    r9, [r8]\n\t"                                                                         \
    ASC_PW_RQ("r11", "r3", "r5", "r7")                                                             \
    "strb    r9, [r8, #1]\n\t"                                                                     \
    "ldrd    r10, r11, [r1, #28]\n\t" /* stride, xend */                                           \
    "add     r8, r8, r10\n\t"                                                                      \
    ASC_PW_RQ("r12", "r2", "r4", "r6")                                                             \
    "strb    r9, [r8]\n\t"                                                                         \
    ASC_PW_RQ("lr", "r3", "r5", "r7")                                                              \
    "strb    r9, [r8, #1]\n\t"                                                                     \
    "add     r8, r8, r10\n\t"                                                                      \
    "str     r8, [r1, #24]\n\t" /* out */                                                          \
    "cmp     r0, r11\n\t"                                                                          \
    "bne     1b\n\t"

#define ASC_PW_2X2_EXIT(NAME)                                                                      \
    "add     sp, sp, #4\n\t"                                                                       \
    "pop     {r4-r11, pc}\n\t"                                                                     \
    ".size " NAME ", .-" NAME "\n\t"                                                               \
    ".popsection\n"

__asm__(ASC_PW_2X2_BODY("asc_pw_2x2", "asc_pw_loop_end") ASC_PW_2X2_EXIT("asc_pw_2x2"));

/* asc_pw_2x2_rq(x, job): asc_pw_2x2 for job's pair, then for each record from job->rq to job->rq_end
 * the next pair: record -> job->b0..r1 (LDM + STM), w += w_step, out += out_step, x = x0. Between
 * two pairs, counted: LDRD, CMP, BEQ, LDM, STR, SUB, STM, LDRD, 2 x (LDR, ADD, STR), LDR, B = 16
 * (the per-pair set-up of asc_pw_chunk + asc_pw_2x2's entry and exit it replaces: ~116 + 6).
 * CP-Mobile, one clip, QEMU trace: 116,072 blocks at 30 + 10 * groups, 10,781 pair switches. */
void asc_pw_2x2_rq(const int32_t *x, asc_pw_job *job);
void asc_pw_rq_loop_end(void);
__asm__(ASC_PW_2X2_BODY("asc_pw_2x2_rq", "asc_pw_rq_loop_end")
        "ldrd    r2, r3, [r1, #44]\n\t" /* rq, rq_end */
        "cmp     r2, r3\n\t"
        "beq     2f\n\t"
        "ldmia   r2!, {r3-r12}\n\t" /* the next record: b0 b1 b0 b1 kc0 kc1 m0 m1 r0 r1 */
        "str     r2, [r1, #44]\n\t"
        "sub     r2, r1, #16\n\t" /* &job->b0 */
        "stmia   r2, {r3-r12}\n\t"
        "ldrd    r3, r4, [r1, #52]\n\t" /* out_step, w_step */
        "ldr     r2, [r1, #-24]\n\t"
        "add     r2, r2, r4\n\t"
        "str     r2, [r1, #-24]\n\t" /* w */
        "ldr     r2, [r1, #24]\n\t"
        "add     r2, r2, r3\n\t"
        "str     r2, [r1, #24]\n\t" /* out */
        "ldr     r0, [r1, #40]\n\t" /* x0 */
        "b       1b\n"
        "2:\n\t"
        ASC_PW_2X2_EXIT("asc_pw_2x2_rq"));

static void asc_pw_run(const int32_t *x, asc_pw_job *job, int32_t groups)
{
    job->entry = ((uintptr_t)&asc_pw_loop_end | 1u) - (uintptr_t)(40 * groups);
    asc_pw_2x2(x, job);
}

/* job's pair, then one pair per record (pre-widened weights, w_step apart) over the same pixels */
static void asc_pw_run_rq(const int32_t *x, asc_pw_job *job, int32_t groups)
{
    job->entry = ((uintptr_t)&asc_pw_rq_loop_end | 1u) - (uintptr_t)(40 * groups);
    asc_pw_2x2_rq(x, job);
}

/* asc_pw_1x2(x, job): one pixel (the first of a widened pair, its partner ignored) x 2 channels,
 * outputs to job->out[0], job->out[1]. Loop: LDRD of the pixel's 2 words (x += 16), LDM of the 4
 * weight words, 4 SMLAD (24 bytes of code per group); r10 / r11 accumulators, r12 &job->kc0. */
void asc_pw_1x2(const int32_t *x, asc_pw_job *job);
void asc_pw1_loop_end(void);
__asm__(".pushsection .text.asc_pw_1x2,\"ax\",%progbits\n\t"
        ".syntax unified\n\t"
        ".thumb\n\t"
        ".p2align 2\n\t"
        ".global asc_pw_1x2\n\t"
        ".type asc_pw_1x2, %function\n\t"
        ".thumb_func\n"
        "asc_pw_1x2:\n\t"
        "push    {r4-r11, lr}\n\t"
        "ldrd    r10, r11, [r1, #8]\n\t"
        "ldr     r2, [r1, #60]\n\t"
        "add     r12, r1, #24\n\t"
        "ldr     r1, [r1]\n\t"
        "bx      r2\n\t"
        ".p2align 2\n\t"
        ".rept 32\n\t"
        "ldrd    r2, r3, [r0], #16\n\t"
        "ldmia.w r1!, {r6-r9}\n\t"
        "smlad   r10, r2, r6, r10\n\t"
        "smlad   r10, r3, r7, r10\n\t"
        "smlad   r11, r2, r8, r11\n\t"
        "smlad   r11, r3, r9, r11\n\t"
        ".endr\n\t"
        ".global asc_pw1_loop_end\n\t"
        ".type asc_pw1_loop_end, %function\n\t"
        ".thumb_func\n"
        "asc_pw1_loop_end:\n\t"
        "ldm     r12, {r2-r8}\n\t"
        ASC_PW_RQ("r10", "r2", "r4", "r6")
        "strb    r9, [r8]\n\t"
        ASC_PW_RQ("r11", "r3", "r5", "r7")
        "strb    r9, [r8, #1]\n\t"
        "pop     {r4-r11, pc}\n\t"
        ".size asc_pw_1x2, .-asc_pw_1x2\n\t"
        ".popsection\n");

static void asc_pw_run1(const int32_t *x, asc_pw_job *job, int32_t groups)
{
    job->entry1 = ((uintptr_t)&asc_pw1_loop_end | 1u) - (uintptr_t)(24 * groups);
    asc_pw_1x2(x, job);
}
#else
ASC_INLINE int8_t asc_pw_rq(int32_t acc2, int32_t kc, int32_t m, int32_t r)
{
    /* arithmetic shifts of negative values (gcc / clang) */
    return (int8_t)asc_ssat8(asc_smmlar(acc2, m, kc + (acc2 >> 31)) >> r);
}

/* One 2x2 block of the C twins: the accumulators s[0..3] = (pixel 0, ch 0), (0, 1), (1, 0), (1, 1)
 * from the job's doubled biases, over `groups` groups of the widened pair at *x (advanced past it). */
ASC_INLINE void asc_pw_block(const int32_t **xp, const asc_pw_job *job, int32_t groups, int32_t s[4])
{
    const int32_t *x = *xp, *w = job->w;
    s[0] = job->b0;
    s[1] = job->b1;
    s[2] = job->b0;
    s[3] = job->b1;
    for (int32_t g = 0; g < groups; g++, x += 4, w += 4) {
        s[0] = __smlad(x[1], w[1], __smlad(x[0], w[0], s[0]));
        s[1] = __smlad(x[1], w[3], __smlad(x[0], w[2], s[1]));
        s[2] = __smlad(x[3], w[1], __smlad(x[2], w[0], s[2]));
        s[3] = __smlad(x[3], w[3], __smlad(x[2], w[2], s[3]));
    }
    *xp = x;
}

/* The C twins' switch to the next channel pair's record: 0 after the last one. */
ASC_INLINE int asc_pw_next_record(asc_pw_job *job)
{
    if (job->rq == job->rq_end) {
        return 0;
    }
    memcpy(&job->b0, job->rq, ASC_PW_RQ_WORDS * sizeof(int32_t));
    job->rq += ASC_PW_RQ_WORDS;
    job->w = (const int32_t *)(const void *)((const char *)job->w + job->w_step);
    job->out += job->out_step;
    return 1;
}

/* C twin of asc_pw_2x2 (host emulation of the DSP path). */
static void asc_pw_run(const int32_t *x, asc_pw_job *job, int32_t groups)
{
    int8_t *o = job->out;
    for (; x != job->xend; o += 2 * job->stride) {
        int32_t s[4];
        asc_pw_block(&x, job, groups, s);
        const int32_t s00 = s[0], s01 = s[1], s10 = s[2], s11 = s[3];
        o[0] = asc_pw_rq(s00, job->kc0, job->m0, job->r0);
        o[1] = asc_pw_rq(s01, job->kc1, job->m1, job->r1);
        o[job->stride] = asc_pw_rq(s10, job->kc0, job->m0, job->r0);
        o[job->stride + 1] = asc_pw_rq(s11, job->kc1, job->m1, job->r1);
    }
    job->out = o;
}

/* C twin of asc_pw_2x2_rq. */
static void asc_pw_run_rq(const int32_t *x, asc_pw_job *job, int32_t groups)
{
    asc_pw_run(x, job, groups);
    while (asc_pw_next_record(job)) {
        asc_pw_run(job->x0, job, groups);
    }
}

/* C twin of asc_pw_1x2. */
static void asc_pw_run1(const int32_t *x, asc_pw_job *job, int32_t groups)
{
    int32_t s0 = job->b0, s1 = job->b1;
    const int32_t *w = job->w;
    for (int32_t g = 0; g < groups; g++, x += 4, w += 4) {
        s0 = __smlad(x[0], w[0], s0);
        s0 = __smlad(x[1], w[1], s0);
        s1 = __smlad(x[0], w[2], s1);
        s1 = __smlad(x[1], w[3], s1);
    }
    job->out[0] = asc_pw_rq(s0, job->kc0, job->m0, job->r0);
    job->out[1] = asc_pw_rq(s1, job->kc1, job->m1, job->r1);
}
#endif

/* 4 input bytes -> lanes (x + off) of bytes (0, 2) and (1, 3); off2 = two lanes of off. */
ASC_INLINE void asc_pw_widen4(int32_t v, int32_t off2, int32_t *d)
{
    d[0] = __sxtab16(off2, v);
    d[1] = asc_sxtab16_ror8(off2, v);
}

/* Tail group of k % 4 channels (lanes scale * (v + off)): missing lanes are 0. */
static void asc_pw_widen_tail(const int8_t *v, int32_t n, int32_t off, int32_t scale, int32_t *d)
{
    int32_t l[4] = {0, 0, 0, 0};
    for (int32_t i = 0; i < n; i++) {
        l[i] = scale * ((int32_t)v[i] + off);
    }
    d[0] = asc_pack_lo(l[0], l[2]);
    d[1] = asc_pack_lo(l[1], l[3]);
}

/* One pixel pair (rows a and b of k int8; b == NULL: an all-zero partner) -> the widened pair
 * layout at d (4 * ceil(k / 4) words). */
static void asc_pw_widen_pair(const int8_t *a, const int8_t *b, int32_t k, int32_t off, int32_t *d)
{
    const int32_t off2 = asc_dup16(off), k4 = k & ~3;
    int32_t i = 0;
    if (b && k4 > 0) {
#if ASC_NN_ASM
        /* LDR + 2 SXTAB16 per pixel, 2 STRD: 8 instructions + loop per group of the pair */
        const int8_t *end = a + k4;
        int32_t va, vb, t0, t1;
        __asm__ volatile("1:\n\t"
                         "ldr     %[va], [%[a]], #4\n\t"
                         "ldr     %[vb], [%[a], %[bm4]]\n\t"
                         "sxtab16 %[t0], %[o], %[va]\n\t"
                         "sxtab16 %[va], %[o], %[va], ror #8\n\t"
                         "sxtab16 %[t1], %[o], %[vb]\n\t"
                         "sxtab16 %[vb], %[o], %[vb], ror #8\n\t"
                         "strd    %[t0], %[va], [%[d]], #16\n\t"
                         "strd    %[t1], %[vb], [%[d], #-8]\n\t"
                         "cmp     %[a], %[end]\n\t"
                         "bne     1b\n\t"
                         : [a] "+r"(a), [d] "+r"(d), [va] "=&r"(va), [vb] "=&r"(vb), [t0] "=&r"(t0),
                           [t1] "=&r"(t1)
                         : [bm4] "r"((int32_t)(b - a) - 4), [o] "r"(off2), [end] "r"(end)
                         : "cc", "memory");
        a -= k4; /* back to the row start (d is past the k4 / 4 groups written) */
        i = k4;
#else
        for (; i < k4; i += 4, d += 4) {
            asc_pw_widen4(asc_read_s8x4(a + i), off2, d);
            asc_pw_widen4(asc_read_s8x4(b + i), off2, d + 2);
        }
#endif
    } else {
        for (; i < k4; i += 4, d += 4) {
            asc_pw_widen4(asc_read_s8x4(a + i), off2, d);
            d[2] = 0;
            d[3] = 0;
        }
    }
    if (i < k) {
        asc_pw_widen_tail(a + i, k - i, off, 1, d);
        d[2] = 0;
        d[3] = 0;
        if (b) {
            asc_pw_widen_tail(b + i, k - i, off, 1, d + 2);
        }
    }
}

#if ASC_NN_ASM
/* asc_pw_widen_rows(a, d, end, k, off2): the pixel pairs of the contiguous rows from a to end
 * (word-aligned, K = k a multiple of 8: no tail group) -> the widened pair layout at d, as
 * asc_pw_widen_pair pair by pair. Per 2 groups of a pair, counted: 2 LDRD, 8 SXTAB16, STM of the
 * 8 words, CMP, BNE = 13 (asc_pw_widen_pair's loop: 20); per pair 6 more (+ the last BNE). */
void asc_pw_widen_rows(const int8_t *a, int32_t *d, const int8_t *end, int32_t k, int32_t off2);
__asm__(".pushsection .text.asc_pw_widen_rows,\"ax\",%progbits\n\t"
        ".syntax unified\n\t"
        ".thumb\n\t"
        ".p2align 2\n\t"
        ".global asc_pw_widen_rows\n\t"
        ".type asc_pw_widen_rows, %function\n\t"
        ".thumb_func\n"
        "asc_pw_widen_rows:\n\t"
        "push    {r4-r11, lr}\n\t"
        "mov     lr, r2\n\t"          /* end */
        "ldr     r12, [sp, #36]\n\t"  /* off2 (5th argument) */
        "add     r2, r0, r3\n\t"      /* b = a + k */
        "push    {r3}\n\t"            /* k at [sp] */
        "mov     r3, r2\n"            /* end of row a */
        "1:\n\t"
        "ldrd    r5, r9, [r0], #8\n\t"  /* a: groups g, g + 1 */
        "ldrd    r7, r11, [r2], #8\n\t" /* b */
        "sxtab16 r4, r12, r5\n\t"
        "sxtab16 r5, r12, r5, ror #8\n\t"
        "sxtab16 r6, r12, r7\n\t"
        "sxtab16 r7, r12, r7, ror #8\n\t"
        "sxtab16 r8, r12, r9\n\t"
        "sxtab16 r9, r12, r9, ror #8\n\t"
        "sxtab16 r10, r12, r11\n\t"
        "sxtab16 r11, r12, r11, ror #8\n\t"
        "stmia   r1!, {r4-r11}\n\t"
        "cmp     r0, r3\n\t"
        "bne     1b\n\t"
        "mov     r0, r2\n\t"          /* the next pair starts after row b */
        "cmp     r0, lr\n\t"
        "beq     2f\n\t"
        "ldr     r3, [sp]\n\t"
        "add     r2, r0, r3\n\t"
        "mov     r3, r2\n\t"
        "b       1b\n"
        "2:\n\t"
        "add     sp, sp, #4\n\t"
        "pop     {r4-r11, pc}\n\t"
        ".size asc_pw_widen_rows, .-asc_pw_widen_rows\n\t"
        ".popsection\n");
#endif

/* Weight rows w (channel o) and w + k (channel o + 1) -> the widened pair layout at d, lanes 2w. */
static void asc_pw_widen_w(const int8_t *w, int32_t k, int32_t *d)
{
    const int32_t k4 = k & ~3;
    if (k4 > 0) {
#if ASC_NN_ASM
        const int8_t *end = w + k4;
        int32_t a, b, t0, t1, u0, u1;
        __asm__ volatile("1:\n\t"
                         "ldr     %[a], [%[w]], #4\n\t"
                         "ldr     %[b], [%[w], %[km4]]\n\t"
                         "sxtb16  %[t0], %[a]\n\t"
                         "sxtab16 %[t0], %[t0], %[a]\n\t"
                         "sxtb16  %[u0], %[a], ror #8\n\t"
                         "sxtab16 %[u0], %[u0], %[a], ror #8\n\t"
                         "sxtb16  %[t1], %[b]\n\t"
                         "sxtab16 %[t1], %[t1], %[b]\n\t"
                         "sxtb16  %[u1], %[b], ror #8\n\t"
                         "sxtab16 %[u1], %[u1], %[b], ror #8\n\t"
                         "strd    %[t0], %[u0], [%[d]], #16\n\t"
                         "strd    %[t1], %[u1], [%[d], #-8]\n\t"
                         "cmp     %[w], %[end]\n\t"
                         "bne     1b\n\t"
                         : [w] "+r"(w), [d] "+r"(d), [a] "=&r"(a), [b] "=&r"(b), [t0] "=&r"(t0), [t1] "=&r"(t1),
                           [u0] "=&r"(u0), [u1] "=&r"(u1)
                         : [km4] "r"(k - 4), [end] "r"(end)
                         : "cc", "memory");
#else
        for (int32_t i = 0; i < k4; i += 4, d += 4, w += 4) {
            const int32_t a = asc_read_s8x4(w), b = asc_read_s8x4(w + k);
            d[0] = __sadd16(__sxtb16(a), __sxtb16(a));
            d[1] = __sadd16(asc_sxtb16_ror8(a), asc_sxtb16_ror8(a));
            d[2] = __sadd16(__sxtb16(b), __sxtb16(b));
            d[3] = __sadd16(asc_sxtb16_ror8(b), asc_sxtb16_ror8(b));
        }
#endif
    }
    if (k4 < k) {
        asc_pw_widen_tail(w, k - k4, 0, 2, d);
        asc_pw_widen_tail(w + k, k - k4, 0, 2, d + 2);
    }
}

/* The channel pairs [oc, n_oc & ~1) of asc_pw_chunk, one call (or none: run2 0) of asc_pw_2x2 and of
 * asc_pw_1x2 (tail) each; returns n_oc & ~1. Inlined twice, with and without records. */
ASC_INLINE int32_t asc_pw_pairs(asc_pw_job *job, const int32_t *xbuf, int32_t full, int32_t tail, int run2,
                                const int8_t *x, const int8_t *w, const int32_t *w16, const int32_t *rq, int32_t oc,
                                int32_t n_oc, int32_t k, const int32_t *bias, const asc_nn_per_channel_quant *q,
                                int32_t off, int32_t out_off, int32_t blim, int8_t *out, int32_t out_stride,
                                int32_t *wbuf)
{
    static const asc_nn_activation full_act = {-128, 127};
    const int32_t groups = (k + 3) >> 2, pair_words = 4 * groups;
    const int32_t *xtail = xbuf + full * pair_words;
    for (; oc + 2 <= n_oc; oc += 2) {
        int ok = 1;
        if (rq) {
            memcpy(&job->b0, rq + (oc >> 1) * ASC_PW_RQ_WORDS, ASC_PW_RQ_WORDS * sizeof(int32_t));
        } else {
            const int32_t b0 = bias ? bias[oc] : 0, b1 = bias ? bias[oc + 1] : 0;
            ok = asc_pw_prep(q->multiplier[oc], q->shift[oc], out_off, b0, blim, &job->kc0, &job->r0, &job->b0) &&
                 asc_pw_prep(q->multiplier[oc + 1], q->shift[oc + 1], out_off, b1, blim, &job->kc1, &job->r1,
                             &job->b1);
            job->m0 = q->multiplier[oc];
            job->m1 = q->multiplier[oc + 1];
            job->b0c = job->b0;
            job->b1c = job->b1;
        }
        if (ok) {
            if (w16) {
                job->w = w16 + (oc >> 1) * pair_words; /* pre-widened filter */
            } else {
                asc_pw_widen_w(w + oc * k, k, wbuf);
            }
            if (run2) {
                job->out = out + oc;
                asc_pw_run(xbuf, job, groups);
            }
            if (tail) {
                job->out = out + 2 * full * out_stride + oc;
                asc_pw_run1(xtail, job, groups);
            }
        } else if (x) {
            const asc_nn_per_channel_quant q2 = {q->multiplier + oc, q->shift + oc};
            asc_gemm_s8(x, 2 * full + tail, w + oc * k, 2, k, bias ? bias + oc : bias, &q2, off, out_off, &full_act,
                        out + oc, out_stride);
        }
    }
    return oc;
}

/* Output channel pairs over a widened chunk of `full` pixel pairs (+ `tail`: one more pair whose
 * second pixel is the zero partner, its outputs dropped); out = output of the chunk's first pixel.
 * Channel pairs outside the fast requantisation and an odd last channel take the int8 GEMM on the
 * chunk's contiguous int8 rows x (the 1x1 case; NULL: the caller has checked all channels).
 * rq: the requantisation records of the pairs (asc_nn.h, every pair fast) instead of asc_pw_prep;
 * with a pre-widened filter too, one asc_pw_2x2_rq call covers the chunk's full pixel pairs of
 * every channel pair (then only a tail pair is left for the loop over the pairs). */
static void asc_pw_chunk(const int32_t *xbuf, int32_t full, int32_t tail, const int8_t *x, const int8_t *w,
                         const int32_t *w16, const int32_t *rq, int32_t n_oc, int32_t k, const int32_t *bias,
                         const asc_nn_per_channel_quant *q, int32_t off, int32_t out_off, int32_t blim, int8_t *out,
                         int32_t out_stride, int32_t *wbuf)
{
    static const asc_nn_activation full_act = {-128, 127};
    const int32_t pair_words = 4 * ((k + 3) >> 2);
    asc_pw_job job;
    job.w = wbuf;
    job.stride = out_stride;
    job.xend = xbuf + full * pair_words;
    int32_t oc = 0;
    if (!ASC_NN_SPEED_PATHS || !rq) { /* a size build has no records (and keeps one copy of this loop) */
        oc = asc_pw_pairs(&job, xbuf, full, tail, full > 0, x, w, w16, (const int32_t *)0, 0, n_oc, k, bias, q, off,
                          out_off, blim, out, out_stride, wbuf);
    } else if (w16 && full > 0 && n_oc >= 2) {
        job.w = w16;
        memcpy(&job.b0, rq, ASC_PW_RQ_WORDS * sizeof(int32_t));
        job.out = out;
        job.x0 = xbuf;
        job.rq = rq + ASC_PW_RQ_WORDS;
        job.rq_end = rq + (n_oc >> 1) * ASC_PW_RQ_WORDS;
        job.out_step = 2 - 2 * full * out_stride;
        job.w_step = 4 * pair_words;
        asc_pw_run_rq(xbuf, &job, (k + 3) >> 2);
        oc = n_oc & ~1;
        if (tail) {
            asc_pw_pairs(&job, xbuf, full, 1, 0, x, w, w16, rq, 0, n_oc, k, bias, q, off, out_off, blim, out,
                         out_stride, wbuf);
        }
    } else {
        oc = asc_pw_pairs(&job, xbuf, full, tail, full > 0, x, w, w16, rq, 0, n_oc, k, bias, q, off, out_off, blim,
                          out, out_stride, wbuf);
    }
    if (oc < n_oc && x) {
        const asc_nn_per_channel_quant q1 = {q->multiplier + oc, q->shift + oc};
        asc_gemm_s8(x, 2 * full + tail, w + oc * k, 1, k, bias ? bias + oc : bias, &q1, off, out_off, &full_act,
                    out + oc, out_stride);
    }
}

/* As asc_gemm_s8 (contiguous rows), through the pw16 path; returns 0 (nothing done) when it does
 * not apply (then nothing was written). */
static int asc_pw_gemm(const int8_t *x, int32_t n_px, const int8_t *w, const int32_t *w16, const int32_t *rq,
                       int32_t n_oc, int32_t k,
                       const int32_t *bias, const asc_nn_per_channel_quant *q, int32_t off, int32_t out_off,
                       const asc_nn_activation *act, int8_t *out, int32_t out_stride)
{
    if (act->min != -128 || act->max != 127 || k > ASC_PW_MAX_K || n_px < 2 || n_oc < 2 || off < -255 ||
        off > 255 || out_off < -256 || out_off > 256) {
        return 0;
    }
    int32_t xbuf[ASC_PW_XBUF_WORDS];
    int32_t wbuf[ASC_PW_MAX_K]; /* 2 channels x K/4 groups x 2 words */
    const int32_t pair_words = 4 * ((k + 3) >> 2);
    const int32_t max_pairs = ASC_PW_XBUF_WORDS / pair_words;
    const int32_t all_pairs = (n_px + 1) >> 1, odd = n_px & 1;
    const int32_t blim = asc_pw_bias_limit(k, off);
    for (int32_t p0 = 0; p0 < all_pairs;) {
        const int32_t np = ASC_NN_MIN(max_pairs, all_pairs - p0);
        const int32_t tail = odd && p0 + np == all_pairs; /* the last pair: odd pixel + zero partner */
        const int32_t full = np - tail;
        const int8_t *xc = x + 2 * p0 * k;
        int32_t j = 0;
#if ASC_NN_ASM
        if (ASC_NN_SPEED_PATHS && full > 0 && (k & 7) == 0 && ((uintptr_t)xc & 3) == 0) { /* LDRD: word alignment */
            asc_pw_widen_rows(xc, xbuf, xc + 2 * full * k, k, asc_dup16(off));
            j = full;
        }
#endif
        for (; j < np; j++) {
            const int8_t *a = xc + 2 * j * k;
            asc_pw_widen_pair(a, (j < full) ? a + k : (const int8_t *)0, k, off, xbuf + j * pair_words);
        }
        asc_pw_chunk(xbuf, full, tail, xc, w, w16, rq, n_oc, k, bias, q, off, out_off, blim,
                     out + 2 * p0 * out_stride, out_stride, wbuf);
        p0 += np;
    }
    return 1;
}

#if ASC_NN_SPEED_PATHS
/* The projection of a fused inverted-residual block with its residual ADD (asc_fused_s8.c) in the
 * output stage of asc_pw_2x2_rq: each requantised int8 projection value p (SSAT8 as before, kept in
 * its accumulator register) and the block input x at the same position (LDRSB at out + delta: x for a
 * pixel pair is read in the block that writes its outputs, each element just before its output)
 * give the ADD of asc_add_half_lut, s2 = lut[b] + (a << 20), out = SSAT8(SMMLAR(s2, mo, ko + (s2 >>
 * 31)) >> ro), (a, b) = (p, x) or (x, p); only that is stored (no projection rows, no ADD pass, one
 * table per block call). Fields after the job: the asm copies them to its stack frame. */
typedef struct {
    asc_pw_job job;
    const int32_t *lut; /* the ADD's table (entry 128) */
    int32_t mo, ko, ro; /* its output constants */
    int32_t delta;      /* bytes from an output to its x */
    int32_t stride1;    /* out stride - 1 */
} asc_pw_add_job;

#if ASC_NN_ASM
typedef char asc_pw_add_job_layout_check[(offsetof(asc_pw_add_job, lut) == 84 &&
                                          offsetof(asc_pw_add_job, stride1) == 104)
                                             ? 1
                                             : -1];

/* Requantise accumulator ACC in place (the int8 projection value). */
#define ASC_PW_RQ_KEEP(ACC, KC, M, R)                                                              \
    "add     r9, " KC ", " ACC ", asr #31\n\t"                                                     \
    "smmlar  " ACC ", " ACC ", " M ", r9\n\t"                                                      \
    "asr     " ACC ", " ACC ", " R "\n\t"                                                          \
    "ssat    " ACC ", #8, " ACC "\n\t"

/* The ADD of projection value P (register) and x at [r8 + r6] into r9 (r2 lut, r3 mo, r4 ko, r5 ro);
 * P is clobbered. A = projection: s2 = lut[x] + (P << 20); else s2 = lut[P] + (x << 20). */
#define ASC_PW_ADD_PA(P)                                                                           \
    "ldrsb   r9, [r8, r6]\n\t"                                                                     \
    "ldr     r9, [r2, r9, lsl #2]\n\t"                                                             \
    "add     r9, r9, " P ", lsl #20\n\t"                                                           \
    "add     " P ", r4, r9, asr #31\n\t"                                                           \
    "smmlar  r9, r9, r3, " P "\n\t"                                                                \
    "asr     r9, r9, r5\n\t"                                                                       \
    "ssat    r9, #8, r9\n\t"
#define ASC_PW_ADD_PB(P)                                                                           \
    "ldrsb   r9, [r8, r6]\n\t"                                                                     \
    "ldr     " P ", [r2, " P ", lsl #2]\n\t"                                                       \
    "add     r9, " P ", r9, lsl #20\n\t"                                                           \
    "add     " P ", r4, r9, asr #31\n\t"                                                           \
    "smmlar  r9, r9, r3, " P "\n\t"                                                                \
    "asr     r9, r9, r5\n\t"                                                                       \
    "ssat    r9, #8, r9\n\t"

/* asc_pw_2x2_rq with the ADD (ADD: ASC_PW_ADD_PA or _PB). Stack frame: lut mo ko ro delta stride1,
 * then jp. Per pixel pair, counted: LDMDB + BX, 10 per group, then LDR, LDM, 4 x 4 (requantise),
 * LDM (ADD constants), 4 x (LDRSB, LDR, 2 ADD, SMMLAR, ASR, SSAT, STRB), 2 ADD, STR, LDR, CMP, BNE:
 * 59 + 10 * groups (asc_pw_2x2_rq's 30 + asc_add_half_lut's ~11 per element). The record switch
 * between channel pairs is asc_pw_2x2_rq's. CP-Mobile, one clip, QEMU trace: 21,440 blocks in 160
 * calls, 5.31 M instructions (as asc_pw_2x2_rq: 4.64 M), asc_add_half_lut 1.25 M -> 0.20 M (the one
 * ADD outside a block); model 30.31 M -> 29.87 M. */
#define ASC_PW_2X2_ADD(NAME, LOOP_END, ADD)                                                        \
    ".pushsection .text." NAME ",\"ax\",%progbits\n\t"                                             \
    ".syntax unified\n\t"                                                                          \
    ".thumb\n\t"                                                                                   \
    ".p2align 2\n\t"                                                                               \
    ".global " NAME "\n\t"                                                                         \
    ".type " NAME ", %function\n\t"                                                                \
    ".thumb_func\n" NAME ":\n\t"                                                                   \
    "push    {r4-r11, lr}\n\t"                                                                     \
    "sub     sp, sp, #28\n\t"                                                                      \
    "add     r1, r1, #24\n\t" /* jp = &job->kc0 */                                                 \
    "str     r1, [sp, #24]\n\t"                                                                    \
    "add     r2, r1, #60\n\t" /* &lut */                                                           \
    "ldm     r2, {r2-r7}\n\t"                                                                      \
    "stm     sp, {r2-r7}\n"                                                                        \
    ASC_PW_2X2_LOOP(LOOP_END)                                                                      \
    "ldr     r1, [sp, #24]\n\t"                                                                    \
    "ldm     r1, {r2-r8}\n\t" /* kc0 kc1 m0 m1 r0 r1 out */                                        \
    ASC_PW_RQ_KEEP("r10", "r2", "r4", "r6")                                                        \
    ASC_PW_RQ_KEEP("r11", "r3", "r5", "r7")                                                        \
    ASC_PW_RQ_KEEP("r12", "r2", "r4", "r6")                                                        \
    ASC_PW_RQ_KEEP("lr", "r3", "r5", "r7")                                                         \
    "ldm     sp, {r2-r7}\n\t" /* lut mo ko ro delta stride1 */                                     \
    ADD("r10")                                                                                     \
    "strb    r9, [r8], #1\n\t"                                                                     \
    ADD("r11")                                                                                     \
    "strb    r9, [r8]\n\t"                                                                         \
    "add     r8, r8, r7\n\t"                                                                       \
    ADD("r12")                                                                                     \
    "strb    r9, [r8], #1\n\t"                                                                     \
    ADD("lr")                                                                                      \
    "strb    r9, [r8]\n\t"                                                                         \
    "add     r8, r8, r7\n\t"                                                                       \
    "str     r8, [r1, #24]\n\t" /* out */                                                          \
    "ldr     r9, [r1, #32]\n\t" /* xend */                                                         \
    "cmp     r0, r9\n\t"                                                                           \
    "bne     1b\n\t"                                                                               \
    "ldrd    r2, r3, [r1, #44]\n\t" /* rq, rq_end: the record switch of asc_pw_2x2_rq */           \
    "cmp     r2, r3\n\t"                                                                           \
    "beq     2f\n\t"                                                                               \
    "ldmia   r2!, {r3-r12}\n\t"                                                                    \
    "str     r2, [r1, #44]\n\t"                                                                    \
    "sub     r2, r1, #16\n\t"                                                                      \
    "stmia   r2, {r3-r12}\n\t"                                                                     \
    "ldrd    r3, r4, [r1, #52]\n\t"                                                                \
    "ldr     r2, [r1, #-24]\n\t"                                                                   \
    "add     r2, r2, r4\n\t"                                                                       \
    "str     r2, [r1, #-24]\n\t"                                                                   \
    "ldr     r2, [r1, #24]\n\t"                                                                    \
    "add     r2, r2, r3\n\t"                                                                       \
    "str     r2, [r1, #24]\n\t"                                                                    \
    "ldr     r0, [r1, #40]\n\t"                                                                    \
    "b       1b\n"                                                                                 \
    "2:\n\t"                                                                                       \
    "add     sp, sp, #28\n\t"                                                                      \
    "pop     {r4-r11, pc}\n\t"                                                                     \
    ".size " NAME ", .-" NAME "\n\t"                                                               \
    ".popsection\n"

void asc_pw_2x2_rq_adda(const int32_t *x, asc_pw_add_job *job);
void asc_pw_2x2_rq_addb(const int32_t *x, asc_pw_add_job *job);
void asc_pw_rqa_loop_end(void);
void asc_pw_rqb_loop_end(void);
__asm__(ASC_PW_2X2_ADD("asc_pw_2x2_rq_adda", "asc_pw_rqa_loop_end", ASC_PW_ADD_PA));
__asm__(ASC_PW_2X2_ADD("asc_pw_2x2_rq_addb", "asc_pw_rqb_loop_end", ASC_PW_ADD_PB));

static void asc_pw_run_rq_add(const int32_t *x, asc_pw_add_job *aj, int32_t groups, int a_proj)
{
    if (a_proj) {
        aj->job.entry = ((uintptr_t)&asc_pw_rqa_loop_end | 1u) - (uintptr_t)(40 * groups);
        asc_pw_2x2_rq_adda(x, aj);
    } else {
        aj->job.entry = ((uintptr_t)&asc_pw_rqb_loop_end | 1u) - (uintptr_t)(40 * groups);
        asc_pw_2x2_rq_addb(x, aj);
    }
}
#else
/* The ADD of the projection accumulator acc2 (requantised first) and *xr (read before *o is written). */
ASC_INLINE void asc_pw_add_out(int32_t acc2, int32_t kc, int32_t m, int32_t r, const asc_pw_add_job *aj,
                               int a_proj, int8_t *o)
{
    const int32_t pv = asc_pw_rq(acc2, kc, m, r), xv = o[aj->delta];
    const int32_t s2 = a_proj ? aj->lut[xv] + (int32_t)((uint32_t)pv << 20) : aj->lut[pv] + (int32_t)((uint32_t)xv << 20);
    /* arithmetic shifts of negative values (gcc / clang) */
    *o = (int8_t)asc_ssat8(asc_smmlar(s2, aj->mo, aj->ko + (s2 >> 31)) >> aj->ro);
}

/* C twin of asc_pw_2x2_rq_adda / _addb. */
static void asc_pw_run_rq_add(const int32_t *x, asc_pw_add_job *aj, int32_t groups, int a_proj)
{
    asc_pw_job *job = &aj->job;
    for (;;) {
        int8_t *o = job->out;
        for (; x != job->xend; o += 2 * job->stride) {
            int32_t s[4];
            asc_pw_block(&x, job, groups, s);
            const int32_t s00 = s[0], s01 = s[1], s10 = s[2], s11 = s[3];
            asc_pw_add_out(s00, job->kc0, job->m0, job->r0, aj, a_proj, o);
            asc_pw_add_out(s01, job->kc1, job->m1, job->r1, aj, a_proj, o + 1);
            asc_pw_add_out(s10, job->kc0, job->m0, job->r0, aj, a_proj, o + job->stride);
            asc_pw_add_out(s11, job->kc1, job->m1, job->r1, aj, a_proj, o + job->stride + 1);
        }
        job->out = o;
        if (!asc_pw_next_record(job)) {
            break;
        }
        x = job->x0;
    }
}
#endif

int asc_pw_gemm_add(const asc_nn_conv_params *p, const asc_nn_per_channel_quant *q, const asc_nn_dims *in,
                    const int8_t *input, const asc_nn_dims *f, const int8_t *filter, const int32_t *w16,
                    const int32_t *rq, const asc_nn_dims *out, const asc_add_lut_form *af, int a_proj,
                    const int8_t *res, int8_t *output)
{
    if (!w16 || !rq || !af || !res || !asc_conv_args_ok(p, q, in, f, out, input, filter, output) || f->h != 1 ||
        f->w != 1 || f->c != in->c || p->padding.h != 0 || p->padding.w != 0 || p->stride.h != 1 ||
        p->stride.w != 1 || out->h != in->h || out->w != in->w) {
        return 0;
    }
    const int32_t k = in->c, n_oc = out->c, n_px = in->n * in->h * in->w, off = p->input_offset;
    if (p->activation.min != -128 || p->activation.max != 127 || k > ASC_PW_MAX_K || n_px < 2 || (n_px & 1) ||
        n_oc < 2 || (n_oc & 1) || off < -255 || off > 255) {
        return 0;
    }
    int32_t xbuf[ASC_PW_XBUF_WORDS];
    const int32_t pair_words = 4 * ((k + 3) >> 2);
    const int32_t max_pairs = ASC_PW_XBUF_WORDS / pair_words;
    const int32_t all_pairs = n_px >> 1;
    asc_pw_add_job aj;
    aj.lut = af->lut;
    aj.mo = af->mo;
    aj.ko = af->ko;
    aj.ro = af->ro;
    aj.delta = (int32_t)((intptr_t)res - (intptr_t)output);
    aj.stride1 = n_oc - 1;
    aj.job.stride = n_oc;
    aj.job.x0 = xbuf;
    aj.job.w_step = 4 * pair_words;
    for (int32_t p0 = 0; p0 < all_pairs;) {
        const int32_t np = ASC_NN_MIN(max_pairs, all_pairs - p0);
        const int8_t *xc = input + 2 * p0 * k;
        int32_t j = 0;
#if ASC_NN_ASM
        if ((k & 7) == 0 && ((uintptr_t)xc & 3) == 0) { /* LDRD: word alignment */
            asc_pw_widen_rows(xc, xbuf, xc + 2 * np * k, k, asc_dup16(off));
            j = np;
        }
#endif
        for (; j < np; j++) {
            const int8_t *a = xc + 2 * j * k;
            asc_pw_widen_pair(a, a + k, k, off, xbuf + j * pair_words);
        }
        aj.job.w = w16;
        memcpy(&aj.job.b0, rq, ASC_PW_RQ_WORDS * sizeof(int32_t));
        aj.job.out = output + 2 * p0 * n_oc;
        aj.job.xend = xbuf + np * pair_words;
        aj.job.rq = rq + ASC_PW_RQ_WORDS;
        aj.job.rq_end = rq + (n_oc >> 1) * ASC_PW_RQ_WORDS;
        aj.job.out_step = 2 - 2 * np * n_oc;
        asc_pw_run_rq_add(xbuf, &aj, (k + 3) >> 2, a_proj);
        p0 += np;
    }
    return 1;
}
#endif
#endif

int32_t asc_convolve_s8_get_buffer_size(const asc_nn_dims *input_dims, const asc_nn_dims *filter_dims)
{
    (void)input_dims;
    /* im2col buffer of two output pixels' patches (used by the DSP path; same size in all builds).
     * The DSP path also runs (one pixel at a time) with a buffer of one patch. */
    return 2 * filter_dims->h * filter_dims->w * filter_dims->c;
}

#if ASC_NN_USE_DSP
static inline void asc_copy_s8(int8_t *dst, const int8_t *src, int32_t n)
{
    for (; n >= 4; n -= 4, dst += 4, src += 4) {
        memcpy(dst, src, 4);
    }
    for (; n > 0; n--) {
        *dst++ = *src++;
    }
}

/* im2col of output pixel (oy, ox) of batch b (groups == 1): kh x kw x c bytes, padded taps = zp. */
static void asc_im2col(const asc_nn_conv_params *p, const asc_nn_dims *in, const int8_t *input, int32_t kh,
                       int32_t kw, int32_t b, int32_t oy, int32_t ox, int8_t zp, int8_t *dst)
{
    const int32_t c = in->c, iy0 = oy * p->stride.h - p->padding.h, ix0 = ox * p->stride.w - p->padding.w;
    const int32_t dh = p->dilation.h, dw = p->dilation.w;
    const int row_ok = dw == 1 && ix0 >= 0 && ix0 + kw <= in->w;
    for (int32_t ky = 0; ky < kh; ky++) {
        const int32_t iy = iy0 + ky * dh;
        if (iy < 0 || iy >= in->h) {
            memset(dst, zp, (size_t)(kw * c));
            dst += kw * c;
            continue;
        }
        const int8_t *src = input + ((b * in->h + iy) * in->w) * c;
        if (row_ok) {
            asc_copy_s8(dst, src + ix0 * c, kw * c);
            dst += kw * c;
            continue;
        }
        for (int32_t kx = 0; kx < kw; kx++, dst += c) {
            const int32_t ix = ix0 + kx * dw;
            if (ix < 0 || ix >= in->w) {
                memset(dst, zp, (size_t)c);
            } else {
                asc_copy_s8(dst, src + ix * c, c);
            }
        }
    }
}

/* Widened patch of one output pixel for few input channels (c % 4 != 0, e.g. the 1-channel
 * spectrogram input), gathered tap by tap: lane k of the patch is x + off, 0 for an
 * out-of-image tap (the reference skips it) and for k >= K. d gets the pixel's two words of each
 * group at d[4g], d[4g + 1] (the pair layout). */
static __attribute__((noinline)) void asc_pw_gather(const asc_nn_conv_params *p, const asc_nn_dims *in,
                                                     const int8_t *input, int32_t kh, int32_t kw, int32_t b,
                                                     int32_t oy, int32_t ox, int32_t k, int32_t *d)
{
    int32_t l[ASC_PW_MAX_K + 3];
    const int32_t c = in->c, off = p->input_offset;
    const int32_t iy0 = oy * p->stride.h - p->padding.h, ix0 = ox * p->stride.w - p->padding.w;
    int32_t *lp = l;
    for (int32_t ky = 0; ky < kh; ky++) {
        const int32_t iy = iy0 + ky * p->dilation.h;
        const int row_ok = iy >= 0 && iy < in->h;
        const int8_t *src = input + ((b * in->h + iy) * in->w) * c;
        for (int32_t kx = 0; kx < kw; kx++) {
            const int32_t ix = ix0 + kx * p->dilation.w;
            if (row_ok && ix >= 0 && ix < in->w) {
                for (int32_t ch = 0; ch < c; ch++) {
                    *lp++ = src[ix * c + ch] + off;
                }
            } else {
                for (int32_t ch = 0; ch < c; ch++) {
                    *lp++ = 0;
                }
            }
        }
    }
    l[k] = l[k + 1] = l[k + 2] = 0;
    for (int32_t i = 0; i < k; i += 4, d += 4) {
        d[0] = asc_pack_lo(l[i], l[i + 2]);
        d[1] = asc_pack_lo(l[i + 1], l[i + 3]);
    }
}

/* The single-channel 3x3 patch of an interior pixel (taps at r, r + w, r + 2w; w = row pitch):
 * PKHBT of two taps + SADD16 of the offset lanes (|x + off| <= 256: exact) per word. */
ASC_INLINE void asc_pw_gather1_3x3(const int8_t *r, int32_t w, int32_t off, int32_t off2, int32_t *d)
{
    const int8_t *r1 = r + w, *r2 = r1 + w;
    d[0] = __sadd16(asc_pack_lo(r[0], r[2]), off2);
    d[1] = __sadd16(asc_pack_lo(r[1], r1[0]), off2);
    d[4] = __sadd16(asc_pack_lo(r1[1], r2[0]), off2);
    d[5] = __sadd16(asc_pack_lo(r1[2], r2[1]), off2);
    d[8] = asc_pack_lo(r2[2] + off, 0);
    d[9] = 0;
}

/* The single-channel 3x3 patch of a border pixel (taps outside the image: 0 lanes, the
 * reference's skipped taps); img = the pixel's batch image, (iy0, ix0) its top-left tap. */
static void asc_pw_gather1_3x3_edge(const int8_t *img, int32_t ih, int32_t iw, int32_t iy0, int32_t ix0, int32_t off,
                                    int32_t *d)
{
    int32_t l[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    for (int32_t ky = 0; ky < 3; ky++) {
        const int32_t iy = iy0 + ky;
        if (iy < 0 || iy >= ih) {
            continue;
        }
        for (int32_t kx = 0; kx < 3; kx++) {
            const int32_t ix = ix0 + kx;
            if (ix >= 0 && ix < iw) {
                l[3 * ky + kx] = img[iy * iw + ix] + off;
            }
        }
    }
    d[0] = asc_pack_lo(l[0], l[2]);
    d[1] = asc_pack_lo(l[1], l[3]);
    d[4] = asc_pack_lo(l[4], l[6]);
    d[5] = asc_pack_lo(l[5], l[7]);
    d[8] = asc_pack_lo(l[8], 0);
    d[9] = 0;
}

/* The patches of n consecutive output pixels of a single-channel 3x3 convolution (dilation 1),
 * from output pixel pos = {b, oy, ox} on, into the pair layout at xbuf (pixel i at pair i / 2,
 * slot i % 2; pair_words words per pair); pos is advanced past them. Walks each output row with
 * one source pointer: interior pixels by asc_pw_gather1_3x3, border pixels by the _edge form. */
static __attribute__((noinline)) void asc_pw_gather1_run(const asc_nn_conv_params *p, const asc_nn_dims *in,
                                                         const asc_nn_dims *out, const int8_t *input, int32_t n,
                                                         int32_t *xbuf, int32_t pair_words, int32_t *pos)
{
    const int32_t ih = in->h, iw = in->w, sh = p->stride.h, sw = p->stride.w, pl = p->padding.w, ow = out->w;
    const int32_t off = p->input_offset, off2 = asc_dup16(off);
    /* interior output columns [ox_lo, ox_hi): 0 <= ox sw - pl and ox sw - pl + 3 <= iw */
    const int32_t ox_lo = (pl + sw - 1) / sw;
    const int32_t ox_hi = iw - 3 + pl < 0 ? ox_lo : ASC_NN_MAX(ASC_NN_MIN((iw - 3 + pl) / sw + 1, ow), ox_lo);
    int32_t b = pos[0], oy = pos[1], ox = pos[2];
    int32_t i = 0;
    while (i < n) {
        const int32_t iy0 = oy * sh - p->padding.h;
        const int8_t *img = input + b * ih * iw;
        const int32_t row_end = ASC_NN_MIN(n, i + ow - ox); /* pixels of this output row */
        if (iy0 >= 0 && iy0 + 3 <= ih && ox < ox_hi) {
            for (; ox < ox_lo && i < row_end; i++, ox++) {
                asc_pw_gather1_3x3_edge(img, ih, iw, iy0, ox * sw - pl, off, xbuf + (i >> 1) * pair_words + 2 * (i & 1));
            }
            /* interior run: one source pointer, the pair slot toggling */
            const int32_t run_end = ASC_NN_MIN(row_end, i + ox_hi - ox);
            const int8_t *r = img + iy0 * iw + ox * sw - pl;
            for (; i < run_end; i++, ox++, r += sw) {
                asc_pw_gather1_3x3(r, iw, off, off2, xbuf + (i >> 1) * pair_words + 2 * (i & 1));
            }
        }
        for (; i < row_end; i++, ox++) {
            asc_pw_gather1_3x3_edge(img, ih, iw, iy0, ox * sw - pl, off, xbuf + (i >> 1) * pair_words + 2 * (i & 1));
        }
        if (ox == ow) {
            ox = 0;
            if (++oy == out->h) {
                oy = 0;
                b++;
            }
        }
    }
    pos[0] = b;
    pos[1] = oy;
    pos[2] = ox;
}

/* One pixel's widened row of n int8 (n % 4 == 0, n > 0) at a -> its two words of each group at
 * d[4g], d[4g + 1] (lanes x + off; off2 = two lanes of off); returns d past the n / 4 groups. Per 2
 * groups, counted: 2 LDR, 4 SXTAB16, 2 STRD, CMP, BNE = 10 (any alignment of a: LDR). */
ASC_INLINE int32_t *asc_pw_widen1(const int8_t *a, int32_t n, int32_t off2, int32_t *d)
{
#if ASC_NN_ASM
    int32_t v, u, t0, t1;
    if (n & 4) {
        __asm__ volatile("ldr     %[v], [%[a]], #4\n\t"
                         "sxtab16 %[t0], %[o], %[v]\n\t"
                         "sxtab16 %[t1], %[o], %[v], ror #8\n\t"
                         "strd    %[t0], %[t1], [%[d]], #16\n\t"
                         : [a] "+r"(a), [d] "+r"(d), [v] "=&r"(v), [t0] "=&r"(t0), [t1] "=&r"(t1)
                         : [o] "r"(off2)
                         : "memory");
    }
    if (n & ~7) {
        const int8_t *end = a + (n & ~7);
        __asm__ volatile("1:\n\t"
                         "ldr     %[v], [%[a]], #8\n\t"
                         "ldr     %[u], [%[a], #-4]\n\t"
                         "sxtab16 %[t0], %[o], %[v]\n\t"
                         "sxtab16 %[t1], %[o], %[v], ror #8\n\t"
                         "strd    %[t0], %[t1], [%[d]], #16\n\t"
                         "sxtab16 %[t0], %[o], %[u]\n\t"
                         "sxtab16 %[t1], %[o], %[u], ror #8\n\t"
                         "strd    %[t0], %[t1], [%[d]], #16\n\t"
                         "cmp     %[a], %[end]\n\t"
                         "bne     1b\n\t"
                         : [a] "+r"(a), [d] "+r"(d), [v] "=&r"(v), [u] "=&r"(u), [t0] "=&r"(t0), [t1] "=&r"(t1)
                         : [o] "r"(off2), [end] "r"(end)
                         : "cc", "memory");
    }
#else
    for (const int8_t *end = a + n; a != end; a += 4, d += 4) {
        asc_pw_widen4(asc_read_s8x4(a), off2, d);
    }
#endif
    return d;
}

/* The widened patch of output pixel (oy, ox) of batch b (c % 4 == 0, dilation.w == 1) into its
 * slot d of a pair (d[4g], d[4g + 1]): an interior pixel straight from the input, kh rows of kw * c
 * contiguous bytes (no patch copy), a border pixel through asc_im2col into patch (k bytes;
 * padded taps = the input zero point, widened to exactly 0 lanes). */
static void asc_pw_widen_px(const asc_nn_conv_params *p, const asc_nn_dims *in, const int8_t *input, int32_t kh,
                            int32_t kw, int32_t b, int32_t oy, int32_t ox, int32_t k, int8_t *patch, int32_t *d)
{
    const int32_t c = in->c, iy0 = oy * p->stride.h - p->padding.h, ix0 = ox * p->stride.w - p->padding.w;
    const int32_t off2 = asc_dup16(p->input_offset);
    if (iy0 >= 0 && iy0 + (kh - 1) * p->dilation.h < in->h && ix0 >= 0 && ix0 + kw <= in->w) {
        const int8_t *src = input + ((b * in->h + iy0) * in->w + ix0) * c;
        const int32_t step = p->dilation.h * in->w * c;
        for (int32_t ky = 0; ky < kh; ky++, src += step) {
            d = asc_pw_widen1(src, kw * c, off2, d);
        }
    } else {
        asc_im2col(p, in, input, kh, kw, b, oy, ox, (int8_t)(-p->input_offset), patch);
        asc_pw_widen1(patch, k, off2, d);
    }
}

/* General convolution (groups == 1) through the pw16 path: the patches of two output pixels are
 * gathered by asc_im2col (out-of-image taps = the input zero point, which widens to exactly 0
 * lanes: the reference's skipped taps) and widened into the pair layout, chunk by chunk (a speed
 * build with c % 4 == 0 and dilation.w 1: pixel by pixel, an interior one straight from the input,
 * asc_pw_widen_px; c % 4 != 0: the gathers). 0 = not applicable (then nothing was written): every
 * channel must take the fast requantisation.
 * w16 / rq (NULL: none): the filter [out][kh][kw][c], K-major, in the pre-widened 1x1 layout of K
 * channels and its requantisation records (asc_convolve_s8_packed), read instead of widening the
 * filter and preparing the constants again for every chunk; a size build ignores rq. */
static int asc_pw_conv(const asc_nn_conv_params *p, const asc_nn_per_channel_quant *q, const asc_nn_dims *in,
                       const int8_t *input, const asc_nn_dims *f, const int8_t *filter, const int32_t *w16,
                       const int32_t *rq, const int32_t *bias, const asc_nn_dims *out, int8_t *output)
{
    const int32_t kh = f->h, kw = f->w, k = kh * kw * f->c, n_oc = out->c;
    const int32_t off = p->input_offset, out_off = p->output_offset;
    const int32_t total = in->n * out->h * out->w;
    if (p->activation.min != -128 || p->activation.max != 127 || k > ASC_PW_MAX_K || f->c != in->c ||
        total < 2 || n_oc < 2 || (n_oc & 1) || off < -127 || off > 128 || out_off < -256 || out_off > 256) {
        return 0;
    }
    const int32_t blim = asc_pw_bias_limit(k, off);
    if (!ASC_NN_SPEED_PATHS) {
        rq = (const int32_t *)0;
    }
    for (int32_t oc = 0; oc < n_oc && !rq; oc++) { /* records exist only when every channel is fast */
        int32_t kc, r, b2;
        if (!asc_pw_prep(q->multiplier[oc], q->shift[oc], out_off, bias ? bias[oc] : 0, blim, &kc, &r, &b2)) {
            return 0;
        }
    }
    int32_t xbuf[ASC_PW_CONV_XBUF_WORDS];
    int32_t wbuf[ASC_PW_MAX_K];
    int8_t patch[2 * ASC_PW_MAX_K];
    const int8_t zp = (int8_t)(-off);
    const int gather = (in->c & 3) != 0;
    const int one3x3 = in->c == 1 && kh == 3 && kw == 3 && p->dilation.h == 1 && p->dilation.w == 1;
    /* c % 4 == 0: each pixel widened into its slot (asc_pw_widen_px) instead of im2col + pair widening */
    const int by_px = ASC_NN_SPEED_PATHS && !gather && p->dilation.w == 1;
    int32_t b = 0, oy = 0, ox = 0; /* the next pixel to gather */
    const int32_t pair_words = 4 * ((k + 3) >> 2);
    const int32_t max_pairs = ASC_PW_CONV_XBUF_WORDS / pair_words;
    const int32_t all_pairs = (total + 1) >> 1, odd = total & 1;
    for (int32_t p0 = 0; p0 < all_pairs;) {
        const int32_t np = ASC_NN_MIN(max_pairs, all_pairs - p0);
        const int32_t tail = odd && p0 + np == all_pairs;
        const int32_t full = np - tail;
        if (one3x3) {
            int32_t pos[3] = {b, oy, ox};
            if (tail) {
                memset(xbuf + full * pair_words, 0, (size_t)pair_words * 4); /* zero partner */
            }
            asc_pw_gather1_run(p, in, out, input, 2 * full + tail, xbuf, pair_words, pos);
            b = pos[0];
            oy = pos[1];
            ox = pos[2];
        }
        for (int32_t j = 0; j < np && !one3x3; j++) {
            int32_t *d = xbuf + j * pair_words;
            if ((gather || by_px) && j >= full) {
                memset(d, 0, (size_t)pair_words * 4); /* zero partner of an odd last pixel */
            }
            for (int32_t t = 0; t < 2 && 2 * (p0 + j) + t < total; t++) {
                if (gather) {
                    asc_pw_gather(p, in, input, kh, kw, b, oy, ox, k, d + 2 * t);
                } else if (by_px) {
                    asc_pw_widen_px(p, in, input, kh, kw, b, oy, ox, k, patch, d + 2 * t);
                } else {
                    asc_im2col(p, in, input, kh, kw, b, oy, ox, zp, patch + t * k);
                }
                if (++ox == out->w) { /* next pixel */
                    ox = 0;
                    if (++oy == out->h) {
                        oy = 0;
                        b++;
                    }
                }
            }
            if (!gather && !by_px) {
                asc_pw_widen_pair(patch, (j < full) ? patch + k : (const int8_t *)0, k, off, d);
            }
        }
        asc_pw_chunk(xbuf, full, tail, (const int8_t *)0, filter, w16, rq, n_oc, k, bias, q, off, out_off, blim,
                     output + 2 * p0 * n_oc, n_oc, wbuf);
        p0 += np;
    }
    return 1;
}
#endif

asc_nn_status asc_convolve_s8_packed(const asc_nn_context *ctx, const asc_nn_conv_params *p,
                                     const asc_nn_per_channel_quant *q,
                                     const asc_nn_dims *in, const int8_t *input,
                                     const asc_nn_dims *f, const int8_t *filter,
                                     const int32_t *filter_w16, const int32_t *requant,
                                     const int32_t *bias,
                                     const asc_nn_dims *out, int8_t *output)
{
#if !ASC_NN_USE_DSP
    (void)filter_w16;
    (void)requant;
#endif
    if (!asc_conv_args_ok(p, q, in, f, out, input, filter, output)) {
        return ASC_NN_ARG_ERROR;
    }
    const int32_t fc = f->c;
    const int32_t groups = in->c / fc;
    const int32_t per_group = out->c / groups;
    const int32_t kh = f->h, kw = f->w;
    const int32_t patch = kh * kw * fc;
#if ASC_NN_USE_DSP
    if (groups == 1 && p->dilation.h > 0 && asc_pw_conv(p, q, in, input, f, filter, filter_w16, requant, bias, out, output)) {
        return ASC_NN_OK;
    }
    int8_t *col = (ctx && ctx->buf && ctx->size >= patch) ? (int8_t *)ctx->buf : (int8_t *)0;
    /* A padded tap filled with the input zero point (= -input_offset) contributes exactly 0. */
    const int8_t zp = (int8_t)(-p->input_offset);
    if (p->input_offset < -127 || p->input_offset > 128) {
        col = (int8_t *)0;
    }
    if (col && groups == 1) {
        /* im2col of two output pixels (one when the buffer holds one patch), then the GEMM core */
        const int32_t npx = ctx->size >= 2 * patch ? 2 : 1;
        const int32_t total = in->n * out->h * out->w;
        for (int32_t i = 0; i < total; i += npx) {
            const int32_t n_now = ASC_NN_MIN(npx, total - i);
            for (int32_t j = 0; j < n_now; j++) {
                const int32_t pix = i + j, ox = pix % out->w, oy = (pix / out->w) % out->h, b = pix / (out->w * out->h);
                asc_im2col(p, in, input, kh, kw, b, oy, ox, zp, col + j * patch);
            }
            asc_gemm_s8(col, n_now, filter, out->c, patch, bias, q, p->input_offset, p->output_offset,
                        &p->activation, output + i * out->c, out->c);
        }
        return ASC_NN_OK;
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

int32_t asc_convolve_1x1_s8_widened_size(const asc_nn_dims *f)
{
    return (f->n / 2) * 4 * ((f->c + 3) / 4);
}

int32_t asc_convolve_1x1_s8_widen_filter(const asc_nn_dims *f, const int8_t *filter, int32_t *dst)
{
    const int32_t n = asc_convolve_1x1_s8_widened_size(f), k = f->c;
    if (dst) {
        for (int32_t o = 0; o + 2 <= f->n; o += 2) {
            for (int32_t g = 0; g < k; g += 4, dst += 4) {
                int32_t l[2][4] = {{0, 0, 0, 0}, {0, 0, 0, 0}};
                for (int32_t j = 0; j < 2; j++) {
                    for (int32_t i = 0; i < 4 && g + i < k; i++) {
                        l[j][i] = 2 * filter[(o + j) * k + g + i];
                    }
                }
                for (int32_t j = 0; j < 2; j++) {
                    dst[2 * j] = (int32_t)(((uint32_t)l[j][0] & 0xFFFFu) | ((uint32_t)l[j][2] << 16));
                    dst[2 * j + 1] = (int32_t)(((uint32_t)l[j][1] & 0xFFFFu) | ((uint32_t)l[j][3] << 16));
                }
            }
        }
    }
    return n;
}

asc_nn_status asc_convolve_1x1_s8(const asc_nn_context *ctx, const asc_nn_conv_params *p,
                                  const asc_nn_per_channel_quant *q,
                                  const asc_nn_dims *in, const int8_t *input,
                                  const asc_nn_dims *f, const int8_t *filter,
                                  const int32_t *bias,
                                  const asc_nn_dims *out, int8_t *output)
{
    return asc_convolve_1x1_s8_w16(ctx, p, q, in, input, f, filter, (const int32_t *)0, bias, out, output);
}

asc_nn_status asc_convolve_1x1_s8_w16(const asc_nn_context *ctx, const asc_nn_conv_params *p,
                                      const asc_nn_per_channel_quant *q,
                                      const asc_nn_dims *in, const int8_t *input,
                                      const asc_nn_dims *f, const int8_t *filter,
                                      const int32_t *filter_w16, const int32_t *bias,
                                      const asc_nn_dims *out, int8_t *output)
{
    return asc_convolve_1x1_s8_packed(ctx, p, q, in, input, f, filter, filter_w16, (const int32_t *)0, bias, out,
                                      output);
}

asc_nn_status asc_convolve_1x1_s8_packed(const asc_nn_context *ctx, const asc_nn_conv_params *p,
                                         const asc_nn_per_channel_quant *q,
                                         const asc_nn_dims *in, const int8_t *input,
                                         const asc_nn_dims *f, const int8_t *filter,
                                         const int32_t *filter_w16, const int32_t *requant,
                                         const int32_t *bias,
                                         const asc_nn_dims *out, int8_t *output)
{
    (void)ctx;
#if !ASC_NN_USE_DSP
    (void)filter_w16;
    (void)requant;
#endif
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
#if ASC_NN_USE_DSP
    if (p->input_offset >= -255 && p->input_offset <= 255) {
        if (p->stride.h == 1 && p->stride.w == 1) {
            /* all pixels are contiguous rows of c_in values */
            if (!asc_pw_gemm(input, in->n * in->h * in->w, filter, filter_w16, requant, out->c, c_in, bias, q,
                             p->input_offset, p->output_offset, &p->activation, output, out->c)) {
                asc_gemm_s8(input, in->n * in->h * in->w, filter, out->c, c_in, bias, q, p->input_offset,
                            p->output_offset, &p->activation, output, out->c);
            }
            return ASC_NN_OK;
        }
        for (int32_t b = 0; b < in->n; b++) {
            for (int32_t oy = 0; oy < out->h; oy++) {
                for (int32_t ox = 0; ox < out->w; ox++) {
                    const int8_t *x = input + ((b * in->h + oy * p->stride.h) * in->w + ox * p->stride.w) * c_in;
                    asc_gemm_s8(x, 1, filter, out->c, c_in, bias, q, p->input_offset, p->output_offset,
                                &p->activation, output + ((b * out->h + oy) * out->w + ox) * out->c, out->c);
                }
            }
        }
        return ASC_NN_OK;
    }
#endif
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

asc_nn_status asc_convolve_s8(const asc_nn_context *ctx, const asc_nn_conv_params *p,
                              const asc_nn_per_channel_quant *q,
                              const asc_nn_dims *in, const int8_t *input,
                              const asc_nn_dims *f, const int8_t *filter,
                              const int32_t *bias,
                              const asc_nn_dims *out, int8_t *output)
{
    return asc_convolve_s8_packed(ctx, p, q, in, input, f, filter, (const int32_t *)0, (const int32_t *)0, bias, out,
                                  output);
}
