/* asc_nn_internal.h - shared inline helpers of the asc_nn kernels (not part of the public API). */
#ifndef ASC_NN_INTERNAL_H
#define ASC_NN_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "asc_nn.h"

/* Path selection: ASC_NN_FORCE_PORTABLE (e.g. the portable-vs-DSP benchmark on the Cortex-M4)
 * wins; else the DSP path on a core with the DSP extension or under host emulation. */
#if defined(ASC_NN_FORCE_PORTABLE)
#define ASC_NN_USE_DSP 0
#elif defined(ASC_NN_EMULATE_DSP)
#include "asc_acle_host.h"
#define ASC_NN_USE_DSP 1
#elif defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>
#define ASC_NN_USE_DSP 1
#else
#define ASC_NN_USE_DSP 0
#endif

#define ASC_NN_MIN(a, b) ((a) < (b) ? (a) : (b))
#define ASC_NN_MAX(a, b) ((a) > (b) ? (a) : (b))

/* gemmlowp SaturatingRoundingDoublingHighMul: high 32 bits of 2*a*b, rounded half away from zero,
 * saturating the single overflow case a == b == INT32_MIN. */
static inline int32_t asc_srdhm(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    const int64_t ab = (int64_t)a * (int64_t)b;
    const int64_t nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    /* C division truncates toward zero, as gemmlowp's does. */
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

/* gemmlowp RoundingDivideByPOT: x / 2^exponent rounded to nearest, ties away from zero. */
static inline int32_t asc_rdbpot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    /* arithmetic shift right of a negative value: implementation-defined in C, arithmetic on
     * gcc/clang/armcc; written as a floor division to stay portable. */
    int32_t q = (x >= 0) ? (x >> exponent) : (int32_t)(~((~(uint32_t)x) >> exponent));
    return q + (remainder > threshold ? 1 : 0);
}

/* TFLite MultiplyByQuantizedMultiplier (double rounding, NOT TFLITE_SINGLE_ROUNDING). */
static inline int32_t asc_mbqm(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t left_shift = shift > 0 ? shift : 0;
    const int32_t right_shift = shift > 0 ? 0 : -shift;
    /* x * (1 << left_shift) in two's complement wrap-around (as int32 multiplication on targets) */
    const int32_t shifted = (int32_t)((uint32_t)x << left_shift);
    return asc_rdbpot(asc_srdhm(shifted, multiplier), right_shift);
}

static inline int8_t asc_clamp_s8(int32_t v, const asc_nn_activation *act)
{
    v = ASC_NN_MAX(v, act->min);
    v = ASC_NN_MIN(v, act->max);
    return (int8_t)v;
}

static inline int asc_act_ok(const asc_nn_activation *act)
{
    return act->min >= -128 && act->max <= 127 && act->min <= act->max;
}

#if ASC_NN_USE_DSP
/* Unaligned little-endian 4-byte load. */
static inline int32_t asc_read_s8x4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline int32_t asc_ror8(int32_t v)
{
    const uint32_t u = (uint32_t)v;
    return (int32_t)((u >> 8) | (u << 24));
}

/* Two int16 lanes holding the same value. */
static inline int32_t asc_dup16(int32_t v)
{
    const uint32_t u = (uint32_t)v & 0xFFFFu;
    return (int32_t)(u | (u << 16));
}

/* (lo16 of a) | (lo16 of b) << 16  (PKHBT a, b, LSL #16) */
static inline int32_t asc_pack_lo(int32_t a, int32_t b)
{
    return (int32_t)(((uint32_t)a & 0xFFFFu) | ((uint32_t)b << 16));
}

/* (hi16 of a) | (hi16 of b) << 16 */
static inline int32_t asc_pack_hi(int32_t a, int32_t b)
{
    return (int32_t)(((uint32_t)a >> 16) | ((uint32_t)b & 0xFFFF0000u));
}

#define ASC_INLINE static inline __attribute__((always_inline))

/* ASC_NN_ASM: real Cortex-M instructions through inline asm (the target build); otherwise the same
 * operations in C (host emulation of the DSP path). */
#if !defined(ASC_NN_EMULATE_DSP)
#define ASC_NN_ASM 1
#else
#define ASC_NN_ASM 0
#endif

/* ASC_NN_SPEED_PATHS: the fast paths that only pay in instructions, not in code size (the depthwise
 * pixel-pair kernel, AVERAGE_POOL's asm loops and line buffer). 0 in a size build (-Os: the
 * firmware of `export --optimize size`), where the simpler paths run with the same results. */
#if defined(__OPTIMIZE_SIZE__)
#define ASC_NN_SPEED_PATHS 0
#else
#define ASC_NN_SPEED_PATHS 1
#endif

/* SXTB16 of (v ROR 8): bytes 1 and 3 sign-extended to two int16 lanes (one instruction). */
ASC_INLINE int32_t asc_sxtb16_ror8(int32_t v)
{
#if ASC_NN_ASM
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
#else
    return __sxtb16(asc_ror8(v));
#endif
}

/* Byte-wise unsigned saturating subtract max(a - b, 0) (UQSUB8). */
ASC_INLINE uint32_t asc_uqsub8(uint32_t a, uint32_t b)
{
#if ASC_NN_ASM
    uint32_t r;
    __asm__("uqsub8 %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
#else
    uint32_t r = 0;
    for (int k = 0; k < 4; k++) {
        const uint32_t x = (a >> (8 * k)) & 0xFFu, y = (b >> (8 * k)) & 0xFFu;
        r |= (x > y ? x - y : 0u) << (8 * k);
    }
    return r;
#endif
}

/* SXTAB16 a, (v ROR 8): a's int16 lanes + bytes 1 and 3 of v (one instruction). */
ASC_INLINE int32_t asc_sxtab16_ror8(int32_t a, int32_t v)
{
#if ASC_NN_ASM
    int32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(v));
    return r;
#else
    return __sxtab16(a, asc_ror8(v));
#endif
}

/* SMLABB / SMLATT: acc + lo16(a)*lo16(b) / acc + hi16(a)*hi16(b) (wrapping). */
ASC_INLINE int32_t asc_smlabb(int32_t a, int32_t b, int32_t acc)
{
#if ASC_NN_ASM
    int32_t r;
    __asm__("smlabb %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
#else
    return (int32_t)((uint32_t)acc + (uint32_t)((int32_t)(int16_t)(uint16_t)((uint32_t)a & 0xFFFFu) *
                                                (int32_t)(int16_t)(uint16_t)((uint32_t)b & 0xFFFFu)));
#endif
}

ASC_INLINE int32_t asc_smlatt(int32_t a, int32_t b, int32_t acc)
{
#if ASC_NN_ASM
    int32_t r;
    __asm__("smlatt %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
#else
    return (int32_t)((uint32_t)acc + (uint32_t)((int32_t)(int16_t)(uint16_t)((uint32_t)a >> 16) *
                                                (int32_t)(int16_t)(uint16_t)((uint32_t)b >> 16)));
#endif
}

/* SMMULR: (a * b + 2^31) >> 32; SMMLAR: (c * 2^32 + a * b + 2^31) >> 32 (64-bit, arithmetic shift;
 * the C twins rely on gcc / clang's arithmetic right shift of negative values). */
ASC_INLINE int32_t asc_smmulr(int32_t a, int32_t b)
{
#if ASC_NN_ASM
    int32_t r;
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
#else
    return (int32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 31)) >> 32);
#endif
}

ASC_INLINE int32_t asc_smmlar(int32_t a, int32_t b, int32_t c)
{
#if ASC_NN_ASM
    int32_t r;
    __asm__("smmlar %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(c));
    return r;
#else
    return (int32_t)((((int64_t)c << 32) + (int64_t)a * (int64_t)b + ((int64_t)1 << 31)) >> 32);
#endif
}

/* Saturate to [-128, 127] (SSAT #8). */
ASC_INLINE int32_t asc_ssat8(int32_t v)
{
#if ASC_NN_ASM
    int32_t r;
    __asm__("ssat %0, #8, %1" : "=r"(r) : "r"(v));
    return r;
#else
    return v < -128 ? -128 : (v > 127 ? 127 : v);
#endif
}

/* Fast exact MultiplyByQuantizedMultiplier for multiplier >= 0 and shift in [-31, -2]
 * (right shift r = -shift >= 2, no left shift), i.e. every per-channel conv requantisation of a
 * real model. With P = a * m (64-bit):
 *   SaturatingRoundingDoublingHighMul(a, m) = floor((P + 2^30) / 2^31)   (m >= 0: never saturates)
 *   RoundingDivideByPOT(v, r)              = floor((v + 2^(r-1) - [v < 0]) / 2^r)
 * and floor(floor(A / B) + c) / C) = floor((A + c B) / (B C)), so the result is
 *   floor((P + 2^30 + 2^(30+r) - [v < 0] 2^31) / 2^(31+r)),
 * where [v < 0] may be replaced by [a < 0] (they differ only when -2^30 <= P < 0, where both
 * give 0). One SMLAL on the 64-bit constant {hi: 2^(r-2) + (a >> 31), lo: 2^30 | (a & 2^31)},
 * then an arithmetic shift of the high word by r - 1. asc_rq_prep gives khi = 2^(r-2),
 * rsh = r - 1 (returns 0 when the fast form does not apply). */
static inline int asc_rq_prep(int32_t multiplier, int32_t shift, int32_t *khi, int32_t *rsh)
{
    if (multiplier < 0 || shift > -2 || shift < -31) {
        return 0;
    }
    *khi = (int32_t)(1u << (uint32_t)(-shift - 2));
    *rsh = -shift - 1;
    return 1;
}

/* As asc_rq_prep, with the output offset folded into khi: (hi >> rsh) + off == (hi + off * 2^rsh)
 * >> rsh exactly. |hi| <= 2^30 + 2^29 (|P| <= 2^62), so this is exact while |off| * 2^rsh < 2^29
 * (checked; otherwise 0 = use the generic path). asc_rq_fast then returns requantised + offset. */
static inline int asc_rq_prep_off(int32_t multiplier, int32_t shift, int32_t out_off, int32_t *khi,
                                  int32_t *rsh)
{
    if (!asc_rq_prep(multiplier, shift, khi, rsh) || out_off < -256 || out_off > 256 || *rsh > 20) {
        return 0;
    }
    *khi += (int32_t)((uint32_t)out_off << (uint32_t)*rsh);
    return 1;
}

ASC_INLINE int32_t asc_rq_fast(int32_t a, int32_t m, int32_t khi, int32_t rsh)
{
#if ASC_NN_ASM
    uint32_t lo;
    int32_t hi;
    __asm__("and %0, %2, #0x80000000\n\t"
            "orr %0, %0, #0x40000000\n\t"
            "add %1, %3, %2, asr #31\n\t"
            "smlal %0, %1, %2, %4"
            : "=&r"(lo), "=&r"(hi)
            : "r"(a), "r"(khi), "r"(m));
    (void)lo;
    return hi >> rsh;
#else
    const int64_t c = ((int64_t)khi << 32) + ((int64_t)1 << 30) - (a < 0 ? ((int64_t)1 << 31) : 0);
    const int64_t t = (int64_t)a * (int64_t)m + c;
    /* arithmetic shifts of negative values (gcc / clang) */
    return (int32_t)(t >> 32) >> rsh;
#endif
}
#endif

#if ASC_NN_USE_DSP && ASC_NN_SPEED_PATHS
/* The ADD's table form (asc_elementwise_s8.c asc_add_half_lut) for fusing it into a producer:
 * out = SSAT8(SMMLAR(s2, mo, ko + (s2 >> 31)) >> ro), s2 = lut[b] + (a << 20), where a is the input
 * with multiplier 2^30 and shift 0 (input 1 when a_is_in1) and lut points at entry 128 of the 256
 * int32 for the other input b (lut[b], b = -128 .. 127). */
typedef struct {
    const int32_t *lut;
    int32_t mo, ko, ro;
    int32_t a_is_in1;
} asc_add_lut_form;

/* When asc_add_s8 (same shapes) takes the table form for p: builds the table into lut256 (256
 * int32), fills *f and returns 1 (the same integers as asc_add_s8); else 0. */
int asc_add_lut_prep(const asc_nn_add_params *p, int32_t *lut256, asc_add_lut_form *f);

/* asc_convolve_1x1_s8_packed (stride 1, out the shape of in but for its channels) with the ADD af
 * fused into its output: each output (pixel i, channel c, n_oc = out->c) becomes the ADD of the
 * projection value and res[i * n_oc + c] (the projection is input A when a_proj, else input B),
 * written to output[i * n_oc + c]. res may be output (each res element is read just before the
 * output at the same position is written), else it must not overlap output (the outputs are written
 * channel pair by channel pair). Only for records + a pre-widened filter, an even pixel count and
 * n_oc, K <= ASC_PW_MAX_K; returns 0 (nothing written) when it does not apply or the arguments are
 * invalid (asc_conv_s8.c). */
int asc_pw_gemm_add(const asc_nn_conv_params *p, const asc_nn_per_channel_quant *q, const asc_nn_dims *in,
                    const int8_t *input, const asc_nn_dims *f, const int8_t *filter, const int32_t *w16,
                    const int32_t *rq, const asc_nn_dims *out, const asc_add_lut_form *af, int a_proj,
                    const int8_t *res, int8_t *output);
#endif

/* sum_i (in[i] + in_off) * (w[i] + w_off)   over n contiguous elements, added to acc. */
static inline int32_t asc_dot_s8(const int8_t *in, const int8_t *w, int32_t n, int32_t in_off,
                                 int32_t w_off, int32_t acc)
{
    int32_t i = 0;
#if ASC_NN_USE_DSP
    const int32_t in_off2 = asc_dup16(in_off);
    const int32_t w_off2 = asc_dup16(w_off);
    for (; i + 4 <= n; i += 4) {
        const int32_t x = asc_read_s8x4(in + i);
        const int32_t y = asc_read_s8x4(w + i);
        /* lanes: bytes 0,2 and bytes 1,3, sign-extended to int16 and offset (|v| <= 256) */
        const int32_t x02 = __sxtab16(in_off2, x);
        const int32_t x13 = __sxtab16(in_off2, asc_ror8(x));
        const int32_t y02 = __sxtab16(w_off2, y);
        const int32_t y13 = __sxtab16(w_off2, asc_ror8(y));
        acc = __smlad(x02, y02, acc);
        acc = __smlad(x13, y13, acc);
    }
#endif
    for (; i < n; i++) {
        acc += ((int32_t)in[i] + in_off) * ((int32_t)w[i] + w_off);
    }
    return acc;
}

/* 4-D NumPy-style broadcasting of the element-wise kernels: a operand's dims broadcast onto the
 * output's (each equal or 1), and the offset of element (n, h, w, c) of the output in operand a. */
static inline int asc_bcast_ok(const asc_nn_dims *a, const asc_nn_dims *o)
{
    return (a->n == o->n || a->n == 1) && (a->h == o->h || a->h == 1) && (a->w == o->w || a->w == 1) &&
           (a->c == o->c || a->c == 1) && o->n > 0 && o->h > 0 && o->w > 0 && o->c > 0;
}

static inline int32_t asc_bidx(const asc_nn_dims *a, int32_t n, int32_t h, int32_t w, int32_t c)
{
    return (((a->n == 1 ? 0 : n) * a->h + (a->h == 1 ? 0 : h)) * a->w + (a->w == 1 ? 0 : w)) * a->c +
           (a->c == 1 ? 0 : c);
}

/* Broadcasting binary ops in contiguous runs: the innermost dims in which neither input is
 * broadcast form one run that both inputs and the output hold contiguously ((H,W,C) + (1,W,C):
 * runs of W*C; (H,W,C) * (1,1,C): runs of C). Returns the run length in elements and sets *k to
 * the innermost dim (0 n, 1 h, 2 w, 3 c) in which an input broadcasts; runs then start at the
 * output positions whose dims after *k are 0, visited in order by asc_bcast_next. A broadcast
 * channel dim (k = 3) gives runs of 1 element. */
static inline int32_t asc_bcast_run(const asc_nn_dims *a, const asc_nn_dims *b, const asc_nn_dims *o, int *k)
{
    const int32_t da[4] = {a->n, a->h, a->w, a->c}, db[4] = {b->n, b->h, b->w, b->c}, dout[4] = {o->n, o->h, o->w, o->c};
    int32_t run = 1;
    int t = 3;
    while (t >= 0 && da[t] == dout[t] && db[t] == dout[t]) {
        run *= dout[t];
        t--;
    }
    *k = t;
    return run;
}

/* Advance the output position pos[0..2] (n, h, w) to the start of the next run (dims <= k). */
static inline void asc_bcast_next(int32_t pos[3], int k, const asc_nn_dims *o)
{
    const int32_t lim[3] = {o->n, o->h, o->w};
    for (int t = k > 2 ? 2 : k; t >= 0; t--) {
        if (++pos[t] < lim[t]) {
            return;
        }
        pos[t] = 0;
    }
}

#endif /* ASC_NN_INTERNAL_H */
