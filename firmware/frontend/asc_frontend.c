/*
 * asc_frontend.c - streaming log-mel frontend (see asc_frontend.h for the definition and layout).
 */
#include "asc_frontend.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "arm_math.h"

#if defined(__FAST_MATH__)
#error "asc_frontend.c must not be compiled with -ffast-math (host and device bits would differ)"
#endif
#if defined(__FLT_EVAL_METHOD__) && (__FLT_EVAL_METHOD__ != 0)
#error "asc_frontend.c needs FLT_EVAL_METHOD == 0 (float arithmetic in float; on x86 use SSE)"
#endif

/* Per-stage instruction-count hook (the bench image defines it, e.g.
 * -DASC_FE_PROFILE=bench_fe_profile): called at the end of each stage of each frame with the
 * stage's index, ASC_FE_PART_STREAM .. ASC_FE_PART_LOG. */
#ifndef ASC_FE_PROFILE
#define ASC_FE_PROFILE(part) ((void)0)
#else
void ASC_FE_PROFILE(int32_t part);
#endif

/* ---- configuration checks (asc_frontend_config.h is generated) ------------------------------ */
#define ASC_FE_PAD (ASC_FE_N_FFT / 2)

#if ASC_FE_WIN_LENGTH > ASC_FE_N_FFT || ASC_FE_WIN_LENGTH < 1
#error "ASC_FE_WIN_LENGTH must be in 1..ASC_FE_N_FFT"
#endif
#if ASC_FE_WIN_OFFSET != ((ASC_FE_N_FFT - ASC_FE_WIN_LENGTH) / 2)
#error "ASC_FE_WIN_OFFSET must be (N_FFT - WIN_LENGTH) / 2 (torch.stft's window padding)"
#endif
#if ASC_FE_N_FREQS != (ASC_FE_N_FFT / 2 + 1)
#error "ASC_FE_N_FREQS must be N_FFT / 2 + 1"
#endif
#if ASC_FE_N_SAMPLES <= ASC_FE_PAD
#error "a clip must be longer than N_FFT / 2 samples for reflect padding"
#endif
#if ASC_FE_N_FRAMES != (1 + ASC_FE_N_SAMPLES / ASC_FE_HOP_LENGTH)
#error "ASC_FE_N_FRAMES must be 1 + N_SAMPLES / HOP_LENGTH (centred frames)"
#endif
/* work = ring [RING_LEN floats] | FFT buffer [N_FFT floats] (asc_frontend.h). Tables generated
 * before issue 16 reserved 4 * (RING_LEN + 2 * N_FFT) bytes; more than needed is fine. */
#define ASC_FE_WORK_NEEDED (4 * (ASC_FE_RING_LEN + ASC_FE_N_FFT))
#if ASC_FE_WORK_BYTES < ASC_FE_WORK_NEEDED
#error "ASC_FE_WORK_BYTES must be at least 4 * (RING_LEN + N_FFT)"
#endif
#if ASC_FE_N_FFT < 32 || (ASC_FE_N_FFT & (ASC_FE_N_FFT - 1)) != 0
#error "ASC_FE_N_FFT must be a power of two >= 32 (the sizes of asc_fe_fft_tables.h, 32 .. 4096)"
#endif
#ifndef ASC_FE_COMPACT_TABLES
#define ASC_FE_COMPACT_TABLES 0 /* tables generated before the size build's compact tables */
#endif
#if ASC_FE_N_MELS > (ASC_FE_N_FFT / 2 - 2)
#error "the mel sums are kept in the free half of the FFT buffer: N_MELS must not exceed N_FFT / 2 - 2"
#endif
#if ASC_FE_RING_LEN < ASC_FE_WIN_LENGTH
#error "ASC_FE_RING_LEN must hold at least one window"
#endif

#if defined(__GNUC__)
#define ASC_FE_ALWAYS_INLINE inline __attribute__((always_inline))
#define ASC_FE_NOINLINE __attribute__((noinline))
#else
#define ASC_FE_ALWAYS_INLINE inline
#define ASC_FE_NOINLINE
#endif

/* The Cortex-M4F paths (inline assembly on the single-precision FPU and Thumb-2 with the DSP
 * extension, gcc); elsewhere (the host build) their C twins, which do the same float operations in
 * the same order, so host and device give the same bits. */
#if defined(__GNUC__) && defined(__ARM_FP) && ((__ARM_FP & 4) != 0) && !defined(__aarch64__) &&   \
    defined(__thumb2__) && defined(__ARM_FEATURE_DSP)
#define ASC_FE_M4 1
#else
#define ASC_FE_M4 0
#endif

/* ---- table access: full tables (speed build) or compact tables (export --optimize size) ------ */
#if ASC_FE_COMPACT_TABLES
/* window: w[k] = w[WIN_LENGTH - k] (periodic Hann), so only k <= WIN_LENGTH / 2 is stored */
static inline float asc_fe_win(int32_t k)
{
    return asc_fe_window_half[(k <= ASC_FE_WIN_LENGTH / 2) ? k : ASC_FE_WIN_LENGTH - k];
}
/* mel weight i = q16 * (largest weight / 65535), one float32 product */
static inline float asc_fe_melw(const uint16_t *w, int32_t i)
{
    return (float)w[i] * ASC_FE_MEL_Q16_SCALE;
}
#define ASC_FE_MEL_TABLE asc_fe_mel_weights_q16
typedef uint16_t asc_fe_melw_t;
#else
static inline float asc_fe_win(int32_t k)
{
    return asc_fe_window[k];
}
static inline float asc_fe_melw(const float *w, int32_t i)
{
    return w[i];
}
#define ASC_FE_MEL_TABLE asc_fe_mel_weights
typedef float asc_fe_melw_t;
#endif

float asc_fe_window_value(int32_t k)
{
    return (k >= 0 && k < ASC_FE_WIN_LENGTH) ? asc_fe_win(k) : 0.0f;
}

float asc_fe_mel_weight_value(int32_t i)
{
    return (i >= 0 && i < ASC_FE_MEL_N_WEIGHTS) ? asc_fe_melw(ASC_FE_MEL_TABLE, i) : 0.0f;
}

/* Index of original sample used at padded position i - PAD (i may be < 0 or >= N): torch's
 * reflect padding, x[-i] = x[i] and x[N - 1 + i] = x[N - 1 - i] (edge sample not repeated). */
static inline int32_t asc_fe_reflect(int32_t i)
{
    if (i < 0) {
        return -i;
    }
    if (i > ASC_FE_N_SAMPLES - 1) {
        return 2 * (ASC_FE_N_SAMPLES - 1) - i;
    }
    return i;
}

/* First (unreflected) sample index of frame t's window: its window sample k reads original
 * sample asc_fe_reflect(i0 + k), k = 0 .. WIN_LENGTH - 1. */
static inline int32_t asc_fe_frame_i0(int32_t t)
{
    return t * ASC_FE_HOP_LENGTH + ASC_FE_WIN_OFFSET - ASC_FE_PAD;
}

/* Lowest and highest original sample index frame t reads (after reflection). The same rule is
 * mirrored in asc_edge/device/frontend_c.py (frame_span) to size the sliding window. */
static void asc_fe_frame_span(int32_t t, int32_t *lo, int32_t *hi)
{
    const int32_t last = ASC_FE_N_SAMPLES - 1;
    const int32_t i0 = asc_fe_frame_i0(t);
    const int32_t i1 = i0 + ASC_FE_WIN_LENGTH - 1;
    int32_t a = INT32_MAX;
    int32_t b = INT32_MIN;
    /* direct part [max(i0, 0), min(i1, last)] */
    {
        const int32_t d0 = (i0 > 0) ? i0 : 0;
        const int32_t d1 = (i1 < last) ? i1 : last;
        if (d0 <= d1) {
            a = d0;
            b = d1;
        }
    }
    /* left reflection: i in [i0, min(i1, -1)] reads -i */
    if (i0 < 0) {
        const int32_t e = (i1 < -1) ? i1 : -1;
        if (-e < a) {
            a = -e;
        }
        if (-i0 > b) {
            b = -i0;
        }
    }
    /* right reflection: i in [max(i0, N), i1] reads 2 (N - 1) - i */
    if (i1 > last) {
        const int32_t s = (i0 > last + 1) ? i0 : last + 1;
        if (2 * last - i1 < a) {
            a = 2 * last - i1;
        }
        if (2 * last - s > b) {
            b = 2 * last - s;
        }
    }
    *lo = a;
    *hi = b;
}

int32_t asc_fe_work_bytes(void)
{
    return (int32_t)ASC_FE_WORK_BYTES;
}

static inline int8_t asc_fe_quantize_inline(float x)
{
    float v = x / ASC_FE_INPUT_SCALE;
    int32_t q;
    if (v != v) {                         /* NaN */
        q = ASC_FE_INPUT_ZERO_POINT;
    } else {
        int32_t r;
        float frac;
        if (v > 1.0e6f) {                 /* saturates anyway; keeps the int conversion defined */
            v = 1.0e6f;
        } else if (v < -1.0e6f) {
            v = -1.0e6f;
        }
        r = (int32_t)v;                   /* toward zero */
        frac = v - (float)r;              /* exact: |v| < 2^23 */
        if (frac >= 0.5f) {
            r += 1;                       /* round half away from zero (std::round) */
        } else if (frac <= -0.5f) {
            r -= 1;
        }
        q = r + ASC_FE_INPUT_ZERO_POINT;
    }
    if (q < -128) {
        q = -128;
    } else if (q > 127) {
        q = 127;
    }
    return (int8_t)q;
}

int8_t asc_fe_quantize(float x)
{
    return asc_fe_quantize_inline(x);
}

/* 1 when x (= mel + ASC_FE_LOG_OFFSET) is in the range of asc_logf_normal, 0x1p-126 <= x < inf */
static inline int asc_fe_log_is_normal(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return (u - 0x00800000u) < 0x7F000000u;
}

/* ln(mel + ASC_FE_LOG_OFFSET) = asc_logf of it, bit for bit: the branch-free core for the
 * normal case (mel >= 0 finite, so the sum is >= the offset); asc_logf for anything else (NaN or
 * inf from non-finite audio; a negative sum cannot occur). */
static inline float asc_fe_log_feature(float mel)
{
    const float x = mel + ASC_FE_LOG_OFFSET;
    if (asc_fe_log_is_normal(x)) {
        return asc_logf_normal(x);
    }
    return asc_logf(x);
}

/* asc_fe_quantize_inline(y), the same int8, for y = asc_logf_normal(x) of a normal x (finite,
 * |y| <= 88.8), without its NaN / huge-value branches: v = y / ASC_FE_INPUT_SCALE (the same
 * division), then round half away from zero by integers. t = trunc(2 v): 2 v = v + v is exact,
 * and |2 v| < 2^31 for a scale > 1e-7. For v >= 0, v = n + f (n = trunc(v)): t = 2 n + b with
 * b = 1 exactly when f >= 0.5, so (t + 1) >> 1 = n + b = round(v); for v < 0 the mirror image,
 * round(v) = -((-t + 1) >> 1) = floor(t / 2) = t >> 1. Both: (t + 1 + (t < 0 ? -1 : 0)) >> 1
 * (t >> 31 and >> 1 of a negative value: arithmetic shifts, gcc / clang). Saturation to
 * [-128, 127] as there (its +-1e6 clamp of v changes no result). */
#define ASC_FE_QUANT_FAST (ASC_FE_INPUT_SCALE > 1.0e-7f)
static inline int8_t asc_fe_quantize_log(float y)
{
    if (!ASC_FE_QUANT_FAST) {   /* a constant: tiny scales keep the general form */
        return asc_fe_quantize_inline(y);
    } else {
        const float v = y / ASC_FE_INPUT_SCALE;
        const int32_t t = (int32_t)(v + v);
        int32_t q = ((t + 1 + (t >> 31)) >> 1) + ASC_FE_INPUT_ZERO_POINT;
        if (q < -128) {
            q = -128;
        } else if (q > 127) {
            q = 127;
        }
        return (int8_t)q;
    }
}

/* Sliding window state: ring[0 .. n_read - base) holds original samples [base, n_read). */
typedef struct {
    asc_fe_read_fn read;
    void *ctx;
    float *ring;
    int32_t base;
    int32_t n_read;
} asc_fe_stream_t;

/* Moves n floats from src down to dst (dst < src, overlapping): eight words per LDMIA / STMIA pair
 * on the M4 (newlib's memmove took ~7.6 k instructions per frame here, 0.47 M per clip: measured);
 * reading a block before writing it is safe for dst < src. */
static void asc_fe_move_down(float *dst, const float *src, int32_t n)
{
#if ASC_FE_M4
    if (n >= 8) {
        const float *end = src + (n & ~7);
        __asm__ volatile("1:\n\t"
                         "ldmia   %[s]!, {r4-r11}\n\t"
                         "stmia   %[d]!, {r4-r11}\n\t"
                         "cmp     %[s], %[e]\n\t"
                         "bne     1b\n\t"
                         : [s] "+r"(src), [d] "+r"(dst)
                         : [e] "r"(end)
                         : "r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11", "cc", "memory");
        n &= 7;
    }
#endif
    if (n > 0) {
        memmove(dst, src, (size_t)n * sizeof(float));
    }
}

/* Drop the samples below `keep`, then read until sample `hi` is present. */
static asc_fe_status_t asc_fe_advance(asc_fe_stream_t *st, int32_t keep, int32_t hi)
{
    if (keep > st->base) {
        if (keep >= st->n_read) {
            /* nothing buffered is needed any more; skip unread samples up to keep (only when
             * hop > window, where samples between frames are never used) */
            while (st->n_read < keep) {
                const int32_t want = (keep - st->n_read < ASC_FE_RING_LEN) ? keep - st->n_read
                                                                           : ASC_FE_RING_LEN;
                const int32_t got = st->read(st->ctx, st->ring, want);
                if (got <= 0 || got > want) {
                    return ASC_FE_ERR_READ;
                }
                st->n_read += got;
            }
        } else {
            asc_fe_move_down(st->ring, st->ring + (keep - st->base), st->n_read - keep);
        }
        st->base = keep;
    }
    if (hi + 1 - st->base > ASC_FE_RING_LEN) {
        return ASC_FE_ERR_INTERNAL;
    }
    while (st->n_read <= hi) {
        const int32_t want = hi + 1 - st->n_read;
        const int32_t got = st->read(st->ctx, st->ring + (st->n_read - st->base), want);
        if (got <= 0 || got > want) {
            return ASC_FE_ERR_READ;
        }
        st->n_read += got;
    }
    return ASC_FE_OK;
}

#if !ASC_FE_COMPACT_TABLES
/* y[j] = x[j * s] * w[j], j = 0 .. n - 1, s = +1 or -1 (a constant after inlining; -1: a reflected
 * part, read backwards): one product per sample, sample * window, as arm_mult_f32; blocks of
 * sixteen, then one at a time. */
#define ASC_FE_WIN_TERM(i) (y[j + (i)] = x[(j + (i)) * s] * w[j + (i)])
static ASC_FE_ALWAYS_INLINE void asc_fe_window_run(float *y, const float *x, const float *w, int32_t n,
                                                   const int32_t s)
{
    int32_t j = 0;
    for (; j + 16 <= n; j += 16) {
        ASC_FE_WIN_TERM(0); ASC_FE_WIN_TERM(1); ASC_FE_WIN_TERM(2); ASC_FE_WIN_TERM(3);
        ASC_FE_WIN_TERM(4); ASC_FE_WIN_TERM(5); ASC_FE_WIN_TERM(6); ASC_FE_WIN_TERM(7);
        ASC_FE_WIN_TERM(8); ASC_FE_WIN_TERM(9); ASC_FE_WIN_TERM(10); ASC_FE_WIN_TERM(11);
        ASC_FE_WIN_TERM(12); ASC_FE_WIN_TERM(13); ASC_FE_WIN_TERM(14); ASC_FE_WIN_TERM(15);
    }
    for (; j < n; ++j) {
        ASC_FE_WIN_TERM(0);
    }
}
#undef ASC_FE_WIN_TERM

/* asc_fe_window_run(y, x, w, n, 1): the same products y[j] = x[j] * w[j]; on the Cortex-M4 (gcc,
 * ASC_FE_M4) blocks of sixteen as one VLDM of 16 samples, one VLDM of 16
 * window values, 16 VMULs and one VSTM (21 instructions per 16 samples with SUBS and BNE,
 * counted), the remaining n % 16 by the C loop. */
#if ASC_FE_M4
static ASC_FE_ALWAYS_INLINE void asc_fe_window_fwd(float *y, const float *x, const float *w, int32_t n)
{
    int32_t blocks = n >> 4;
    if (blocks > 0) {
        __asm__ volatile(
            "1:\n\t"
            "vldmia %[x]!, {s0-s15}\n\t"
            "vldmia %[w]!, {s16-s31}\n\t"
            "vmul.f32 s0, s0, s16\n\t"
            "vmul.f32 s1, s1, s17\n\t"
            "vmul.f32 s2, s2, s18\n\t"
            "vmul.f32 s3, s3, s19\n\t"
            "vmul.f32 s4, s4, s20\n\t"
            "vmul.f32 s5, s5, s21\n\t"
            "vmul.f32 s6, s6, s22\n\t"
            "vmul.f32 s7, s7, s23\n\t"
            "vmul.f32 s8, s8, s24\n\t"
            "vmul.f32 s9, s9, s25\n\t"
            "vmul.f32 s10, s10, s26\n\t"
            "vmul.f32 s11, s11, s27\n\t"
            "vmul.f32 s12, s12, s28\n\t"
            "vmul.f32 s13, s13, s29\n\t"
            "vmul.f32 s14, s14, s30\n\t"
            "vmul.f32 s15, s15, s31\n\t"
            "vstmia %[y]!, {s0-s15}\n\t"
            "subs %[k], %[k], #1\n\t"
            "bne 1b\n\t"
            : [y] "+&r"(y), [x] "+&r"(x), [w] "+&r"(w), [k] "+&r"(blocks)
            :
            : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13",
              "s14", "s15", "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "s24", "s25",
              "s26", "s27", "s28", "s29", "s30", "s31", "cc", "memory");
    }
    asc_fe_window_run(y, x, w, n & 15, 1);
}
#else
#define asc_fe_window_fwd(y, x, w, n) asc_fe_window_run((y), (x), (w), (n), 1)
#endif
#endif

/* Power of FFT bin b (0 <= b <= N_FFT / 2) in the packed layout of asc_fe_split_power. */
#define ASC_FE_L (ASC_FE_N_FFT / 2)

/* Real-FFT split (CMSIS-DSP's stage_rfft_f32, the same float operations in the same order, so the
 * same bits) fused with the power spectrum |X_b|^2 = re^2 + im^2 (as arm_cmplx_mag_squared_f32),
 * in place over g = the complex FFT's output G[0 .. L-1] (L = N_FFT / 2 complex values, the
 * length-L complex FFT of the even / odd samples as re / im). Bin b (1 <= b <= L/2) needs G[b]
 * and G[L-b], and so does bin L-b: both are computed in one step, after which G[b]'s two floats
 * are free and receive the two powers. Packed layout: g[2b] = P(b), g[2b+1] = P(L-b) for
 * 0 <= b < L/2 (g[1] = P(L), the Nyquist bin), g[L] = P(L/2). g[L+2 ..] is free afterwards. */
/* |X|^2 of one bin of the split: X = 0.5 (xA + conj(xB) + W (xB - conj(xA)) ...) in CMSIS-DSP's
 * stage_rfft_f32 operation order (twiddle W = twr + j twi), then re^2 + im^2. */
static inline float asc_fe_bin_power(float ar, float ai, float br, float bi, float twr, float twi)
{
    const float t1a = br - ar;
    const float t1b = bi + ai;
    const float p0 = twr * t1a;
    const float p1 = twi * t1a;
    const float p2 = twr * t1b;
    const float p3 = twi * t1b;
    const float xr = 0.5f * (ar + br + p0 + p3);
    const float xi = 0.5f * (ai - bi + p1 - p2);
    return (xr * xr) + (xi * xi);
}

/* log2(L), L = N_FFT / 2 complex points */
#define ASC_FE_LOG2L ((ASC_FE_L >= 2048) ? 11 : (ASC_FE_L >= 1024) ? 10 : (ASC_FE_L >= 512) ? 9 : \
                      (ASC_FE_L >= 256) ? 8 : (ASC_FE_L >= 128) ? 7 : (ASC_FE_L >= 64) ? 6 : (ASC_FE_L >= 32) ? 5 : 4)
#if (1 << ASC_FE_LOG2L) != ASC_FE_L
#error "the FFTs need N_FFT to be a power of two in 32..4096"
#endif

#if ASC_FE_COMPACT_TABLES
#define ASC_FE_Q4 (ASC_FE_N_FFT / 4)
#define ASC_FE_ZERO_SKIP 0  /* the window step writes every zero of the frame */

/* Twiddle (cos, sin)(2 pi m / N_FFT), 0 <= m < 3 N_FFT / 4, from the quarter-wave table
 * asc_fe_cos_quarter[j] = cos(2 pi j / N_FFT), 0 <= j <= N_FFT / 4, by the quadrant symmetries
 * (sin a = cos(pi/2 - a), cos(pi - a) = -cos a, values of one quadrant negated in the next). */
static ASC_FE_ALWAYS_INLINE void asc_fe_twiddle(int32_t m, float *c, float *s)
{
    const float *q = asc_fe_cos_quarter;
    if (m <= ASC_FE_Q4) {
        *c = q[m];
        *s = q[ASC_FE_Q4 - m];
    } else if (m <= 2 * ASC_FE_Q4) {
        *c = -q[2 * ASC_FE_Q4 - m];
        *s = q[m - ASC_FE_Q4];
    } else {
        *c = -q[m - 2 * ASC_FE_Q4];
        *s = -q[3 * ASC_FE_Q4 - m];
    }
}

/* the split's twiddle pairs as CMSIS-DSP's twiddleCoef_rfft_<N> stores them, (sin, cos)(2 pi m /
 * N_FFT): for m = k < N_FFT / 4, (q[N/4 - k], q[k]); for m = L - k, (q[N/4 - k], -q[k]) */
#define ASC_FE_SPLIT_TW(m, t0, t1)                                                                 \
    do {                                                                                           \
        if ((m) < ASC_FE_Q4) {                                                                     \
            (t0) = asc_fe_cos_quarter[ASC_FE_Q4 - (m)];                                            \
            (t1) = asc_fe_cos_quarter[(m)];                                                        \
        } else {                                                                                   \
            (t0) = asc_fe_cos_quarter[(m) - ASC_FE_Q4];                                            \
            (t1) = -asc_fe_cos_quarter[ASC_FE_L - (m)];                                            \
        }                                                                                          \
    } while (0)

/* i with its 32 bits reversed: one RBIT on the Cortex-M4, five swap steps elsewhere (same value) */
static ASC_FE_ALWAYS_INLINE uint32_t asc_fe_rbit(uint32_t v)
{
#if defined(__ARM_ARCH_7EM__) || defined(__ARM_ARCH_7M__)
    uint32_t r;
    __asm__("rbit %0, %1" : "=r"(r) : "r"(v));
    return r;
#else
    v = ((v >> 1) & 0x55555555u) | ((v & 0x55555555u) << 1);
    v = ((v >> 2) & 0x33333333u) | ((v & 0x33333333u) << 2);
    v = ((v >> 4) & 0x0F0F0F0Fu) | ((v & 0x0F0F0F0Fu) << 4);
    v = ((v >> 8) & 0x00FF00FFu) | ((v & 0x00FF00FFu) << 8);
    return (v >> 16) | (v << 16);
#endif
}

/* Forward complex FFT, X[k] = sum_n x[n] e^(-2 pi i n k / L), of L = N_FFT / 2 interleaved
 * (re, im) values in place (what arm_cfft_f32(.., 0, 1) computes), decimation in time:
 * bit-reversal permutation; one radix-2 stage of 2-point DFTs when log2(L) is odd; then radix-4
 * stages. A radix-4 stage of group size s (q = s / 4) combines the four size-q DFTs of a group —
 * after the base-2 bit reversal they hold the inputs of residue 0, 2, 1, 3 (mod 4) at offsets 0,
 * q, 2q, 3q — with twiddles W_s^(r j) (angle index r j N_FFT / s of the quarter-wave table), r =
 * 1, 2, 3, then a 4-point DFT. Flash: the quarter-wave table (N_FFT / 4 + 1 floats) instead of
 * CMSIS-DSP's twiddle and bit-reversal tables (40,400 bytes at N_FFT 4096); instructions:
 * benchmarks/results/device_bench.md (size build). Not inlined: inside asc_fe_run (-Os) it ran
 * 13 % more instructions. */
static ASC_FE_NOINLINE void asc_fe_cfft_compact(float *x)
{
    int32_t i;
    int32_t j;
    int32_t s;
    for (i = 1; i < ASC_FE_L - 1; ++i) {
        j = (int32_t)(asc_fe_rbit((uint32_t)i) >> (32 - ASC_FE_LOG2L));
        if (i < j) {
            const float re = x[2 * i];
            const float im = x[2 * i + 1];
            x[2 * i] = x[2 * j];
            x[2 * i + 1] = x[2 * j + 1];
            x[2 * j] = re;
            x[2 * j + 1] = im;
        }
    }
    s = 1;
    if ((ASC_FE_LOG2L & 1) != 0) {  /* log2(L) odd: 2-point DFTs first (twiddle 1) */
        float *a = x;
        for (i = 0; i < ASC_FE_L; i += 2, a += 4) {
            const float ar = a[0];
            const float ai = a[1];
            const float br = a[2];
            const float bi = a[3];
            a[0] = ar + br;
            a[1] = ai + bi;
            a[2] = ar - br;
            a[3] = ai - bi;
        }
        s = 2;
    }
    for (s *= 4; s <= ASC_FE_L; s *= 4) {
        const int32_t q = s / 4;
        const int32_t step = ASC_FE_N_FFT / s;
        for (j = 0; j < q; ++j) {
            float c1, s1, c2, s2, c3, s3;
            asc_fe_twiddle(j * step, &c1, &s1);
            asc_fe_twiddle(2 * j * step, &c2, &s2);
            asc_fe_twiddle(3 * j * step, &c3, &s3);
            for (i = j; i < ASC_FE_L; i += s) {
                float *x0 = x + 2 * i;
                float *xq = x0 + 2 * q;       /* residue 2 */
                float *x2q = xq + 2 * q;      /* residue 1 */
                float *x3q = x2q + 2 * q;     /* residue 3 */
                /* a_r = W^(r j) * (input of residue r), W^m = c - i s */
                const float a0r = x0[0];
                const float a0i = x0[1];
                const float a1r = (x2q[0] * c1) + (x2q[1] * s1);
                const float a1i = (x2q[1] * c1) - (x2q[0] * s1);
                const float a2r = (xq[0] * c2) + (xq[1] * s2);
                const float a2i = (xq[1] * c2) - (xq[0] * s2);
                const float a3r = (x3q[0] * c3) + (x3q[1] * s3);
                const float a3i = (x3q[1] * c3) - (x3q[0] * s3);
                const float t0r = a0r + a2r;
                const float t0i = a0i + a2i;
                const float t1r = a0r - a2r;
                const float t1i = a0i - a2i;
                const float t2r = a1r + a3r;
                const float t2i = a1i + a3i;
                const float t3r = a1r - a3r;
                const float t3i = a1i - a3i;
                x0[0] = t0r + t2r;            /* X[k]      = t0 + t2 */
                x0[1] = t0i + t2i;
                xq[0] = t1r + t3i;            /* X[k + q]  = t1 - i t3 */
                xq[1] = t1i - t3r;
                x2q[0] = t0r - t2r;           /* X[k + 2q] = t0 - t2 */
                x2q[1] = t0i - t2i;
                x3q[0] = t1r - t3i;           /* X[k + 3q] = t1 + i t3 */
                x3q[1] = t1i + t3r;
            }
        }
    }
}
#else
#define ASC_FE_SPLIT_TW(m, t0, t1) ((t0) = tw[2 * (m)], (t1) = tw[2 * (m) + 1])

/* ---- speed build: the complex FFT (asc_fe_cfft_fast) ------------------------------------------
 * Forward complex FFT, X[k] = sum_n z[n] e^(-2 pi i n k / L), of L = N_FFT / 2 interleaved (re, im)
 * values in place (what arm_cfft_f32(.., 0, 1) computed here before), decimation in frequency
 * (Cooley-Tukey; radix-4 as two radix-2 DIF stages merged: Oppenheim & Schafer, Discrete-Time
 * Signal Processing, 3rd ed., ch. 9; Van Loan, Computational Frameworks for the FFT, 1992, ch. 2):
 * - radix-4 stages with twiddles, group size s = L, L / 4, ... down to 32 (log2 L odd) or 16
 *   (even), q = s / 4: for j = 0 .. q - 1 the butterfly on x[j], x[j + q], x[j + 2q], x[j + 3q]
 *   (a, b, c, d) writes, with t0 = a + c, t1 = a - c, t2 = b + d, t3 = b - d and W = e^(-2 pi i / s),
 *   x[j] = t0 + t2, x[j + q] = (t0 - t2) W^2j, x[j + 2q] = (t1 - i t3) W^j, x[j + 3q] = (t1 + i t3)
 *   W^3j: the outputs of two radix-2 stages, so the result stays in plain bit-reversed order;
 *   twiddles from asc_fe_fft_twiddle (asc_fe_fft_tables.h: per stage and j, (cos, sin) of W^j,
 *   W^2j, W^3j in the order they are read; a complex product is (re c + im s, im c - re s));
 * - the last three (log2 L odd) or two (even) radix-2 stages, whose twiddles are 1, -i and
 *   (+-1 - i) / sqrt(2), as one radix-8 (radix-4) butterfly on 8 (4) adjacent values;
 * - the bit-reversal permutation, a table of swaps (asc_fe_fft_swaps).
 * When the window leaves the first and last N_FFT / 8 samples of the frame zero
 * (ASC_FE_FFT_SKIP_ZEROS: the 32 kHz and 44.1 kHz presets, win 3072 in 4096), the first stage's
 * butterflies read only their three inputs that can be non-zero (a = 0 for j < L / 8, d = 0
 * after), and the window step does not write those zeros.
 * Float operations: each output is the expression written in the C form below, evaluated as
 * written (no contraction): the Cortex-M4 form (inline assembly, two butterflies per loop step,
 * VLDM / VSTM of their pairs) performs the same float32 operations per output, a product and the
 * sum it enters as VMLA / VMLS (product rounded, then the sum: the two roundings of the C form;
 * VMLS adds the negated product, which differs from `d - p` only in the sign of a NaN), -(p * q)
 * as VNMUL, so host and device give the same bits. Instructions (Cortex-M4, L = 2048): 91,216 per
 * frame instead of arm_cfft_f32's 185,091 (benchmarks/results/frontend_fft.md, "fft" stage and the
 * cfft_fast_half row); flash: 16,320 + 3,968 bytes of tables at N_FFT 4096 instead of CMSIS-DSP's
 * 24,016 for arm_cfft_f32 (its twiddles, bit-reversal table and instance). */
#include "arm_common_tables.h"
#include "asc_fe_fft_tables.h"

#define ASC_FE_CAT_(a, b) a##b
#define ASC_FE_CAT(a, b) ASC_FE_CAT_(a, b)
/* CMSIS-DSP's real-FFT split twiddles for N_FFT (arm_common_tables.c), e.g. twiddleCoef_rfft_4096 */
#define ASC_FE_RFFT_TWIDDLE ASC_FE_CAT(twiddleCoef_rfft_, ASC_FE_N_FFT)
#define ASC_FE_FFT_LAST (((ASC_FE_LOG2L & 1) != 0) ? 8 : 4)  /* group size of the trivial last stage */
#define ASC_FE_FFT_SKIP_ZEROS                                                                      \
    (ASC_FE_WIN_OFFSET >= ASC_FE_N_FFT / 8 &&                                                      \
     ASC_FE_WIN_OFFSET + ASC_FE_WIN_LENGTH <= ASC_FE_N_FFT - ASC_FE_N_FFT / 8)
/* float32 sqrt(2) / 2 (0x3F3504F3), the radix-8 butterfly's (1 - i) / sqrt(2) factor */
#define ASC_FE_FFT_H 0.70710677f
#if ASC_FE_FFT_SKIP_ZEROS
#define ASC_FE_ZERO_SKIP (ASC_FE_N_FFT / 8)  /* frame samples [0, this) and [N_FFT - this, N_FFT): not read */
#else
#define ASC_FE_ZERO_SKIP 0
#endif
#define ASC_FE_FFT_H_BITS 0x3F3504F3u

#if ASC_FE_M4
/* One radix-4 butterfly in registers: a = (AR, AI), b, c, d; twiddles s16 .. s21 = c1, s1, c2,
 * s2, c3, s3; temporaries s22 .. s31. Outputs x[j] -> (AR, AI), x[j + q] -> (BR, BI),
 * x[j + 2q] -> (CR, CI), x[j + 3q] -> (DR, DI). ZA: a is zero and not read (first stage, j < L/8):
 * t0 = c, t1 = -c, so x[j + 2q] = -((c + i t3) W^j), x[j + 3q] = -((c - i t3) W^3j) (VNMUL).
 * ZD: d is zero and not read: t2 = t3 = b. */
#define ASC_FE_R4_CMUL(XR, XI, UR, UI, C, S)                                                      \
    "vmul.f32 " XR ", " UR ", " C "\n\t"                     /* XR = UR C + UI S */             \
    "vmla.f32 " XR ", " UI ", " S "\n\t"                                                          \
    "vmul.f32 " XI ", " UI ", " C "\n\t"                     /* XI = UI C - UR S */             \
    "vmls.f32 " XI ", " UR ", " S "\n\t"
#define ASC_FE_R4_BFLY(AR, AI, BR, BI, CR, CI, DR, DI)                                            \
    "vadd.f32 s22, " AR ", " CR "\n\t"                       /* t0 */                           \
    "vadd.f32 s23, " AI ", " CI "\n\t"                                                            \
    "vsub.f32 s24, " AR ", " CR "\n\t"                       /* t1 */                           \
    "vsub.f32 s25, " AI ", " CI "\n\t"                                                            \
    "vadd.f32 s26, " BR ", " DR "\n\t"                       /* t2 */                           \
    "vadd.f32 s27, " BI ", " DI "\n\t"                                                            \
    "vsub.f32 s28, " BR ", " DR "\n\t"                       /* t3 */                           \
    "vsub.f32 s29, " BI ", " DI "\n\t"                                                            \
    "vadd.f32 " AR ", s22, s26\n\t"                          /* t0 + t2 */                      \
    "vadd.f32 " AI ", s23, s27\n\t"                                                               \
    "vsub.f32 s30, s22, s26\n\t"                             /* u1 = t0 - t2 */                 \
    "vsub.f32 s31, s23, s27\n\t"                                                                  \
    "vadd.f32 s22, s24, s29\n\t"                             /* u2 = t1 - i t3 */               \
    "vsub.f32 s23, s25, s28\n\t"                                                                  \
    "vsub.f32 s26, s24, s29\n\t"                             /* u3 = t1 + i t3 */               \
    "vadd.f32 s27, s25, s28\n\t"                                                                  \
    ASC_FE_R4_CMUL(BR, BI, "s30", "s31", "s18", "s19")       /* u1 W^2j */                      \
    ASC_FE_R4_CMUL(CR, CI, "s22", "s23", "s16", "s17")       /* u2 W^j */                       \
    ASC_FE_R4_CMUL(DR, DI, "s26", "s27", "s20", "s21")       /* u3 W^3j */
#define ASC_FE_R4_NCMUL(XR, XI, VR, VI, C, S)                                                     \
    "vnmul.f32 " XR ", " VR ", " C "\n\t"                    /* XR = -(VR C) - VI S */          \
    "vmls.f32 " XR ", " VI ", " S "\n\t"                                                          \
    "vmul.f32 " XI ", " VR ", " S "\n\t"                     /* XI = VR S - VI C */             \
    "vmls.f32 " XI ", " VI ", " C "\n\t"
#define ASC_FE_R4_BFLY_ZA(AR, AI, BR, BI, CR, CI, DR, DI)                                         \
    "vadd.f32 s22, " BR ", " DR "\n\t"                       /* t2 */                           \
    "vadd.f32 s23, " BI ", " DI "\n\t"                                                            \
    "vsub.f32 s24, " BR ", " DR "\n\t"                       /* t3 */                           \
    "vsub.f32 s25, " BI ", " DI "\n\t"                                                            \
    "vadd.f32 " AR ", " CR ", s22\n\t"                       /* c + t2 */                       \
    "vadd.f32 " AI ", " CI ", s23\n\t"                                                            \
    "vsub.f32 s26, " CR ", s22\n\t"                          /* u1 = c - t2 */                  \
    "vsub.f32 s27, " CI ", s23\n\t"                                                               \
    "vsub.f32 s28, " CR ", s25\n\t"                          /* v2 = c + i t3 */                \
    "vadd.f32 s29, " CI ", s24\n\t"                                                               \
    "vadd.f32 s30, " CR ", s25\n\t"                          /* v3 = c - i t3 */                \
    "vsub.f32 s31, " CI ", s24\n\t"                                                               \
    ASC_FE_R4_CMUL(BR, BI, "s26", "s27", "s18", "s19")       /* u1 W^2j */                      \
    ASC_FE_R4_NCMUL(CR, CI, "s28", "s29", "s16", "s17")      /* -(v2 W^j) */                    \
    ASC_FE_R4_NCMUL(DR, DI, "s30", "s31", "s20", "s21")      /* -(v3 W^3j) */
#define ASC_FE_R4_BFLY_ZD(AR, AI, BR, BI, CR, CI, DR, DI)                                         \
    "vadd.f32 s22, " AR ", " CR "\n\t"                       /* t0 */                           \
    "vadd.f32 s23, " AI ", " CI "\n\t"                                                            \
    "vsub.f32 s24, " AR ", " CR "\n\t"                       /* t1 */                           \
    "vsub.f32 s25, " AI ", " CI "\n\t"                                                            \
    "vadd.f32 " AR ", s22, " BR "\n\t"                       /* t0 + b */                       \
    "vadd.f32 " AI ", s23, " BI "\n\t"                                                            \
    "vsub.f32 s26, s22, " BR "\n\t"                          /* u1 = t0 - b */                  \
    "vsub.f32 s27, s23, " BI "\n\t"                                                               \
    "vadd.f32 s28, s24, " BI "\n\t"                          /* u2 = t1 - i b */                \
    "vsub.f32 s29, s25, " BR "\n\t"                                                               \
    "vsub.f32 s30, s24, " BI "\n\t"                          /* u3 = t1 + i b */                \
    "vadd.f32 s31, s25, " BR "\n\t"                                                               \
    ASC_FE_R4_CMUL(BR, BI, "s26", "s27", "s18", "s19")       /* u1 W^2j */                      \
    ASC_FE_R4_CMUL(CR, CI, "s28", "s29", "s16", "s17")       /* u2 W^j */                       \
    ASC_FE_R4_CMUL(DR, DI, "s30", "s31", "s20", "s21")       /* u3 W^3j */
#define ASC_FE_FFT_CLOBBERS                                                                        \
    "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13", "s14", \
    "s15", "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "s24", "s25", "s26", "s27",     \
    "s28", "s29", "s30", "s31", "cc", "memory"
/* A loop over butterfly pairs (j, j + 1): LOADS reads their a / b / c / d pairs (two complex values
 * each, one VLDM), BF(A) and BF(B) are the two butterflies (the second's twiddles loaded between
 * them), four VSTMs with write-back store the pairs and advance the pointers. */
#define ASC_FE_R4_LOOP(LOADS, BF)                                                                  \
    __asm__ volatile("1:\n\t" LOADS                                                                \
                     "vldmia %[w]!, {s16-s21}\n\t"                                                 \
                     BF("s0", "s1", "s4", "s5", "s8", "s9", "s12", "s13")                          \
                     "vldmia %[w]!, {s16-s21}\n\t"                                                 \
                     BF("s2", "s3", "s6", "s7", "s10", "s11", "s14", "s15")                        \
                     "vstmia %[p0]!, {s0-s3}\n\t"                                                  \
                     "vstmia %[p1]!, {s4-s7}\n\t"                                                  \
                     "vstmia %[p2]!, {s8-s11}\n\t"                                                 \
                     "vstmia %[p3]!, {s12-s15}\n\t"                                                \
                     "cmp %[p0], %[end]\n\t"                                                       \
                     "bne 1b\n\t"                                                                  \
                     : [p0] "+&r"(p0), [p1] "+&r"(p1), [p2] "+&r"(p2), [p3] "+&r"(p3), [w] "+&r"(w)     \
                     : [end] "r"(end)                                                              \
                     : ASC_FE_FFT_CLOBBERS)
#define ASC_FE_LD_A "vldmia %[p0], {s0-s3}\n\t"
#define ASC_FE_LD_B "vldmia %[p1], {s4-s7}\n\t"
#define ASC_FE_LD_C "vldmia %[p2], {s8-s11}\n\t"
#define ASC_FE_LD_D "vldmia %[p3], {s12-s15}\n\t"
#endif

#if !ASC_FE_M4
/* x = u (c - i s), the C twin of ASC_FE_R4_CMUL with the same operations: x[0] = ur c + ui s,
 * x[1] = ui c - ur s (each product rounded, then the sum or difference). */
static ASC_FE_ALWAYS_INLINE void asc_fe_r4_cmul(float *x, float ur, float ui, float c, float s)
{
    x[0] = (ur * c) + (ui * s);
    x[1] = (ui * c) - (ur * s);
}
#endif

/* n radix-4 butterflies (n even), j = 0 .. n - 1, on x[j], x[j + q], x[j + 2q], x[j + 3q] of x = g
 * (floats g[2 j], g[2 j + 1], ...), twiddles w[6 j .. 6 j + 5]; kind 0: all four inputs, 1: a = 0
 * (not read), 2: d = 0 (not read). */
static ASC_FE_ALWAYS_INLINE void asc_fe_r4_run(float *g, int32_t q, const float *w, int32_t n, const int kind)
{
#if ASC_FE_M4
    float *p0 = g;
    float *p1 = g + 2 * q;
    float *p2 = g + 4 * q;
    float *p3 = g + 6 * q;
    const float *const end = g + 2 * n;
    if (kind == 1) {
        ASC_FE_R4_LOOP(ASC_FE_LD_B ASC_FE_LD_C ASC_FE_LD_D, ASC_FE_R4_BFLY_ZA);
    } else if (kind == 2) {
        ASC_FE_R4_LOOP(ASC_FE_LD_A ASC_FE_LD_B ASC_FE_LD_C, ASC_FE_R4_BFLY_ZD);
    } else {
        ASC_FE_R4_LOOP(ASC_FE_LD_A ASC_FE_LD_B ASC_FE_LD_C ASC_FE_LD_D, ASC_FE_R4_BFLY);
    }
#else
    int32_t j;
    for (j = 0; j < n; ++j, w += 6) {
        float *x0 = g + 2 * j;
        float *x1 = x0 + 2 * q;
        float *x2 = x1 + 2 * q;
        float *x3 = x2 + 2 * q;
        const float c1 = w[0], s1 = w[1], c2 = w[2], s2 = w[3], c3 = w[4], s3 = w[5];
        if (kind == 1) {                                  /* a = 0: t0 = c, t1 = -c */
            const float br = x1[0], bi = x1[1], cr = x2[0], ci = x2[1], dr = x3[0], di = x3[1];
            const float t2r = br + dr, t2i = bi + di;
            const float t3r = br - dr, t3i = bi - di;
            const float u1r = cr - t2r, u1i = ci - t2i;
            const float v2r = cr - t3i, v2i = ci + t3r;   /* c + i t3 = -(t1 - i t3) */
            const float v3r = cr + t3i, v3i = ci - t3r;   /* c - i t3 = -(t1 + i t3) */
            x0[0] = cr + t2r;
            x0[1] = ci + t2i;
            asc_fe_r4_cmul(x1, u1r, u1i, c2, s2);
            x2[0] = (-(v2r * c1)) - (v2i * s1);
            x2[1] = (v2r * s1) - (v2i * c1);
            x3[0] = (-(v3r * c3)) - (v3i * s3);
            x3[1] = (v3r * s3) - (v3i * c3);
        } else if (kind == 2) {                           /* d = 0: t2 = t3 = b */
            const float ar = x0[0], ai = x0[1], br = x1[0], bi = x1[1], cr = x2[0], ci = x2[1];
            const float t0r = ar + cr, t0i = ai + ci;
            const float t1r = ar - cr, t1i = ai - ci;
            const float u1r = t0r - br, u1i = t0i - bi;
            const float u2r = t1r + bi, u2i = t1i - br;
            const float u3r = t1r - bi, u3i = t1i + br;
            x0[0] = t0r + br;
            x0[1] = t0i + bi;
            asc_fe_r4_cmul(x1, u1r, u1i, c2, s2);
            asc_fe_r4_cmul(x2, u2r, u2i, c1, s1);
            asc_fe_r4_cmul(x3, u3r, u3i, c3, s3);
        } else {
            const float ar = x0[0], ai = x0[1], br = x1[0], bi = x1[1];
            const float cr = x2[0], ci = x2[1], dr = x3[0], di = x3[1];
            const float t0r = ar + cr, t0i = ai + ci;
            const float t1r = ar - cr, t1i = ai - ci;
            const float t2r = br + dr, t2i = bi + di;
            const float t3r = br - dr, t3i = bi - di;
            const float u1r = t0r - t2r, u1i = t0i - t2i;
            const float u2r = t1r + t3i, u2i = t1i - t3r;
            const float u3r = t1r - t3i, u3i = t1i + t3r;
            x0[0] = t0r + t2r;
            x0[1] = t0i + t2i;
            asc_fe_r4_cmul(x1, u1r, u1i, c2, s2);
            asc_fe_r4_cmul(x2, u2r, u2i, c1, s1);
            asc_fe_r4_cmul(x3, u3r, u3i, c3, s3);
        }
    }
#endif
}

/* The last stage, x = 8 (log2 L odd) or 4 adjacent values at a time: radix-2 DIF stages of span
 * 4 (log2 L odd only; twiddles 1, (1 - i) h, -i, (-1 - i) h, h = sqrt(2) / 2), 2 (1, -i) and 1. */
static ASC_FE_ALWAYS_INLINE void asc_fe_fft_last(float *x)
{
#if ASC_FE_M4
    float *p = x;
    const float *const end = x + 2 * ASC_FE_L;
#if ASC_FE_FFT_LAST == 8
    const uint32_t h = ASC_FE_FFT_H_BITS;
    __asm__ volatile(
        "vmov s31, %[h]\n\t"
        "1:\n\t"
        "vldmia %[p], {s0-s15}\n\t"               /* x0 .. x7 */
        "vadd.f32 s16, s0, s8\n\t"                /* a_k = x_k + x_k+4 -> s16 + 2k */
        "vadd.f32 s17, s1, s9\n\t"
        "vsub.f32 s8, s0, s8\n\t"                 /* d_k = x_k - x_k+4 -> s8 + 2k */
        "vsub.f32 s9, s1, s9\n\t"
        "vadd.f32 s18, s2, s10\n\t"
        "vadd.f32 s19, s3, s11\n\t"
        "vsub.f32 s10, s2, s10\n\t"
        "vsub.f32 s11, s3, s11\n\t"
        "vadd.f32 s20, s4, s12\n\t"
        "vadd.f32 s21, s5, s13\n\t"
        "vsub.f32 s12, s4, s12\n\t"
        "vsub.f32 s13, s5, s13\n\t"
        "vadd.f32 s22, s6, s14\n\t"
        "vadd.f32 s23, s7, s15\n\t"
        "vsub.f32 s14, s6, s14\n\t"
        "vsub.f32 s15, s7, s15\n\t"
        "vadd.f32 s24, s10, s11\n\t"              /* b1 = ((d1r + d1i) h, (d1i - d1r) h) */
        "vsub.f32 s25, s11, s10\n\t"
        "vsub.f32 s26, s15, s14\n\t"              /* b3 = (e, -f), e = (d3i - d3r) h, f = (d3r + d3i) h */
        "vadd.f32 s27, s14, s15\n\t"
        "vmul.f32 s24, s24, s31\n\t"
        "vmul.f32 s25, s25, s31\n\t"
        "vmul.f32 s26, s26, s31\n\t"
        "vmul.f32 s27, s27, s31\n\t"
        "vadd.f32 s0, s16, s20\n\t"               /* A0 = a0 + a2 */
        "vadd.f32 s1, s17, s21\n\t"
        "vsub.f32 s2, s16, s20\n\t"               /* A2 = a0 - a2 */
        "vsub.f32 s3, s17, s21\n\t"
        "vadd.f32 s4, s18, s22\n\t"               /* A1 = a1 + a3 */
        "vadd.f32 s5, s19, s23\n\t"
        "vsub.f32 s6, s19, s23\n\t"               /* A3 = (a1 - a3) (-i) */
        "vsub.f32 s7, s22, s18\n\t"
        "vadd.f32 s16, s0, s4\n\t"                /* outputs 0 .. 3: A0 + A1, A0 - A1, A2 + A3, A2 - A3 */
        "vadd.f32 s17, s1, s5\n\t"
        "vsub.f32 s18, s0, s4\n\t"
        "vsub.f32 s19, s1, s5\n\t"
        "vadd.f32 s20, s2, s6\n\t"
        "vadd.f32 s21, s3, s7\n\t"
        "vsub.f32 s22, s2, s6\n\t"
        "vsub.f32 s23, s3, s7\n\t"
        "vadd.f32 s0, s8, s13\n\t"                /* B0 = d0 + b2, b2 = -i d2 */
        "vsub.f32 s1, s9, s12\n\t"
        "vsub.f32 s2, s8, s13\n\t"                /* B2 = d0 - b2 */
        "vadd.f32 s3, s9, s12\n\t"
        "vadd.f32 s4, s24, s26\n\t"               /* B1 = b1 + b3 */
        "vsub.f32 s5, s25, s27\n\t"
        "vadd.f32 s6, s25, s27\n\t"               /* B3 = (b1 - b3) (-i) */
        "vsub.f32 s7, s26, s24\n\t"
        "vadd.f32 s8, s0, s4\n\t"                 /* outputs 4 .. 7 */
        "vadd.f32 s9, s1, s5\n\t"
        "vsub.f32 s10, s0, s4\n\t"
        "vsub.f32 s11, s1, s5\n\t"
        "vadd.f32 s12, s2, s6\n\t"
        "vadd.f32 s13, s3, s7\n\t"
        "vsub.f32 s14, s2, s6\n\t"
        "vsub.f32 s15, s3, s7\n\t"
        "vstmia %[p]!, {s16-s23}\n\t"
        "vstmia %[p]!, {s8-s15}\n\t"
        "cmp %[p], %[end]\n\t"
        "bne 1b\n\t"
        : [p] "+&r"(p)
        : [end] "r"(end), [h] "r"(h)
        : ASC_FE_FFT_CLOBBERS);
#else
    __asm__ volatile(
        "1:\n\t"
        "vldmia %[p], {s0-s7}\n\t"                /* x0 .. x3 */
        "vadd.f32 s8, s0, s4\n\t"                 /* t0 */
        "vadd.f32 s9, s1, s5\n\t"
        "vsub.f32 s10, s0, s4\n\t"                /* t1 */
        "vsub.f32 s11, s1, s5\n\t"
        "vadd.f32 s12, s2, s6\n\t"                /* t2 */
        "vadd.f32 s13, s3, s7\n\t"
        "vsub.f32 s14, s2, s6\n\t"                /* t3 */
        "vsub.f32 s15, s3, s7\n\t"
        "vadd.f32 s16, s8, s12\n\t"               /* t0 + t2 */
        "vadd.f32 s17, s9, s13\n\t"
        "vsub.f32 s18, s8, s12\n\t"               /* t0 - t2 */
        "vsub.f32 s19, s9, s13\n\t"
        "vadd.f32 s20, s10, s15\n\t"              /* t1 - i t3 */
        "vsub.f32 s21, s11, s14\n\t"
        "vsub.f32 s22, s10, s15\n\t"              /* t1 + i t3 */
        "vadd.f32 s23, s11, s14\n\t"
        "vstmia %[p]!, {s16-s23}\n\t"
        "cmp %[p], %[end]\n\t"
        "bne 1b\n\t"
        : [p] "+&r"(p)
        : [end] "r"(end)
        : ASC_FE_FFT_CLOBBERS);
#endif
#else
    float *p;
    for (p = x; p < x + 2 * ASC_FE_L; p += 2 * ASC_FE_FFT_LAST) {
#if ASC_FE_FFT_LAST == 8
        const float h = ASC_FE_FFT_H;
        const float a0r = p[0] + p[8], a0i = p[1] + p[9];
        const float d0r = p[0] - p[8], d0i = p[1] - p[9];
        const float a1r = p[2] + p[10], a1i = p[3] + p[11];
        const float d1r = p[2] - p[10], d1i = p[3] - p[11];
        const float a2r = p[4] + p[12], a2i = p[5] + p[13];
        const float d2r = p[4] - p[12], d2i = p[5] - p[13];
        const float a3r = p[6] + p[14], a3i = p[7] + p[15];
        const float d3r = p[6] - p[14], d3i = p[7] - p[15];
        const float b1r = (d1r + d1i) * h, b1i = (d1i - d1r) * h;  /* d1 (1 - i) h */
        const float e = (d3i - d3r) * h, f = (d3r + d3i) * h;      /* d3 (-1 - i) h = (e, -f) */
        const float A0r = a0r + a2r, A0i = a0i + a2i;
        const float A2r = a0r - a2r, A2i = a0i - a2i;
        const float A1r = a1r + a3r, A1i = a1i + a3i;
        const float A3r = a1i - a3i, A3i = a3r - a1r;              /* (a1 - a3) (-i) */
        const float B0r = d0r + d2i, B0i = d0i - d2r;              /* d0 + (-i d2) */
        const float B2r = d0r - d2i, B2i = d0i + d2r;
        const float B1r = b1r + e, B1i = b1i - f;
        const float B3r = b1i + f, B3i = e - b1r;                  /* (b1 - b3) (-i) */
        p[0] = A0r + A1r;
        p[1] = A0i + A1i;
        p[2] = A0r - A1r;
        p[3] = A0i - A1i;
        p[4] = A2r + A3r;
        p[5] = A2i + A3i;
        p[6] = A2r - A3r;
        p[7] = A2i - A3i;
        p[8] = B0r + B1r;
        p[9] = B0i + B1i;
        p[10] = B0r - B1r;
        p[11] = B0i - B1i;
        p[12] = B2r + B3r;
        p[13] = B2i + B3i;
        p[14] = B2r - B3r;
        p[15] = B2i - B3i;
#else
        const float t0r = p[0] + p[4], t0i = p[1] + p[5];
        const float t1r = p[0] - p[4], t1i = p[1] - p[5];
        const float t2r = p[2] + p[6], t2i = p[3] + p[7];
        const float t3r = p[2] - p[6], t3i = p[3] - p[7];
        p[0] = t0r + t2r;
        p[1] = t0i + t2i;
        p[2] = t0r - t2r;
        p[3] = t0i - t2i;
        p[4] = t1r + t3i;
        p[5] = t1i - t3r;
        p[6] = t1r - t3i;
        p[7] = t1i + t3r;
#endif
    }
#endif
}

/* Bit-reversal permutation: swap the complex values at the byte offsets of each table entry. */
static ASC_FE_ALWAYS_INLINE void asc_fe_fft_bitrev(float *x)
{
    const uint32_t *t = asc_fe_fft_swaps;
    const uint32_t *const end = asc_fe_fft_swaps + ASC_FE_FFT_N_SWAPS;  /* an even count */
#if ASC_FE_M4
    uint32_t e0, e1;
    float *q0;
    float *q1;
    __asm__ volatile(
        "1:\n\t"
        "ldrd %[e0], %[e1], [%[t]], #8\n\t"
        "uxtah %[q0], %[x], %[e0]\n\t"            /* x + low half */
        "add %[e0], %[x], %[e0], lsr #16\n\t"     /* x + high half */
        "uxtah %[q1], %[x], %[e1]\n\t"
        "add %[e1], %[x], %[e1], lsr #16\n\t"
        "vldr d0, [%[q0]]\n\t"
        "vldr d1, [%[e0]]\n\t"
        "vldr d2, [%[q1]]\n\t"
        "vldr d3, [%[e1]]\n\t"
        "vstr d1, [%[q0]]\n\t"
        "vstr d0, [%[e0]]\n\t"
        "vstr d3, [%[q1]]\n\t"
        "vstr d2, [%[e1]]\n\t"
        "cmp %[t], %[end]\n\t"
        "bne 1b\n\t"
        : [t] "+&r"(t), [e0] "=&r"(e0), [e1] "=&r"(e1), [q0] "=&r"(q0), [q1] "=&r"(q1)
        : [x] "r"(x), [end] "r"(end)
        : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "cc", "memory");
#else
    for (; t < end; ++t) {
        float *a = x + ((*t & 0xFFFFu) >> 2);
        float *b = x + (*t >> 18);
        const float re = a[0];
        const float im = a[1];
        a[0] = b[0];
        a[1] = b[1];
        b[0] = re;
        b[1] = im;
    }
#endif
}

static ASC_FE_NOINLINE void asc_fe_cfft_fast(float *x)
{
    const float *w = asc_fe_fft_twiddle;
    int32_t s;
#if ASC_FE_FFT_SKIP_ZEROS
    asc_fe_r4_run(x, ASC_FE_L / 4, w, ASC_FE_L / 8, 1);                        /* a = 0 */
    asc_fe_r4_run(x + ASC_FE_L / 4, ASC_FE_L / 4, w + 6 * (ASC_FE_L / 8), ASC_FE_L / 8, 2);  /* d = 0 */
#else
    asc_fe_r4_run(x, ASC_FE_L / 4, w, ASC_FE_L / 4, 0);
#endif
    w += 6 * (ASC_FE_L / 4);
    for (s = ASC_FE_L / 4; s > ASC_FE_FFT_LAST; s /= 4) {
        float *g;
        for (g = x; g < x + 2 * ASC_FE_L; g += 2 * s) {
            asc_fe_r4_run(g, s / 4, w, s / 4, 0);
        }
        w += 6 * (s / 4);
    }
    asc_fe_fft_last(x);
    asc_fe_fft_bitrev(x);
}
#endif

#if ASC_FE_COMPACT_TABLES
/* Cortex-M4 (gcc) form of the loop over bin pairs in asc_fe_split_power (size build): the same
 * float32 operations in the same order as asc_fe_bin_power (so the same bits), in fewer
 * instructions (31 instead of 49 per pair at -O2, of which 23 are float operations):
 * - a product and the sum it is added to (or subtracted from) are one VMLA.F32 (VMLS.F32). These
 *   round the product to float32, then the sum (the fused ones are VFMA / VFMS): the two operations
 *   of `d + n * m` (`d - n * m`) of -ffp-contract=off C, and what gcc itself selects for them at
 *   -Os; its -O2 cost model for the M4 keeps a vmul + vadd pair. (VMLS adds the negated product,
 *   which differs from `d - p` only in the sign of a NaN result; twr * t1b is NaN only when t1b
 *   is (the loop's twiddles are finite and non-zero), and then re is NaN too, and re * re, the
 *   first operand of the last sum, gives the power's NaN: the same bits, NaNs included.)
 * - a (re, im) pair is loaded by one VLDM into two consecutive s registers, and the two powers of
 *   a step stored by one VSTM, with pointer write-back: no separate pointer increments. The
 *   consecutive registers are named by local register variables, used only as these asm operands
 *   (the use gcc supports). Loads and stores move bits; they round nothing.
 * Other targets (the x86 host) run the plain C loop with asc_fe_bin_power itself. */
#if ASC_FE_M4
static ASC_FE_ALWAYS_INLINE float asc_fe_mla(float d, float n, float m)
{
    __asm__("vmla.f32 %0, %1, %2" : "+t"(d) : "t"(n), "t"(m));   /* d + n * m */
    return d;
}
static ASC_FE_ALWAYS_INLINE float asc_fe_mls(float d, float n, float m)
{
    __asm__("vmls.f32 %0, %1, %2" : "+t"(d) : "t"(n), "t"(m));   /* d - n * m */
    return d;
}
/* asc_fe_bin_power: re = 0.5 (((ar + br) + twr t1a) + twi t1b), im = 0.5 (((ai - bi) + twi t1a)
 * - twr t1b), power = re re + im im, left to right as written there */
static ASC_FE_ALWAYS_INLINE float asc_fe_bin_power_m4(float ar, float ai, float br, float bi,
                                                      float twr, float twi)
{
    const float t1a = br - ar;
    const float t1b = bi + ai;
    float xr = ar + br;
    float xi = ai - bi;
    xr = asc_fe_mla(xr, twr, t1a);      /* + p0 */
    xr = asc_fe_mla(xr, twi, t1b);      /* + p3 */
    xi = asc_fe_mla(xi, twi, t1a);      /* + p1 */
    xi = asc_fe_mls(xi, twr, t1b);      /* - p2 */
    xr = 0.5f * xr;
    xi = 0.5f * xi;
    return asc_fe_mla(xr * xr, xi, xi); /* (xr * xr) + (xi * xi) */
}
/* (x, y) = (p[0], p[1]) */
#define ASC_FE_LD2(x, y, p)                                                                        \
    __asm__("vldmia %2, {%0, %1}" : "=t"(x), "=t"(y) : "r"(p), "m"(*(const float(*)[2])(p)))
/* p -= 2, then (x, y) = (p[0], p[1]) */
#define ASC_FE_LD2_DOWN(x, y, p)                                                                   \
    __asm__("vldmdb %2!, {%0, %1}" : "=t"(x), "=t"(y), "+r"(p) : "m"(*(const float(*)[2])((p) - 2)))
/* (p[0], p[1]) = (x, y), then p += 2 */
#define ASC_FE_ST2_UP(p, x, y) __asm__("vstmia %0!, {%1, %2}" : "+r"(p) : "t"(x), "t"(y) : "memory")
#endif

static void asc_fe_split_power(float *g, const float *tw)
{
    (void)tw;
    {
        const float t1a = g[0] + g[0];
        const float t1b = g[1] + g[1];
        const float x0 = 0.5f * (t1a + t1b);     /* X_0 (real) */
        const float xn = 0.5f * (t1a - t1b);     /* X_L (real) */
        g[0] = x0 * x0;
        g[1] = xn * xn;
    }
    {
        /* bins k and L-k, k = 1 .. L/2 - 1 (at least 7 steps, N_FFT >= 32): bin k from xA = G[k], xB =
         * G[L-k], twiddle k; bin L-k from xA = G[L-k], xB = G[k], twiddle L-k. a walks up over
         * G[k], which receives the two powers; b walks down over G[L-k] (not written); the
         * twiddle pointers walk with them. ASC_FE_SPLIT_TW(k) = (q[Q4 - k], q[k]),
         * ASC_FE_SPLIT_TW(L - k) = (q[Q4 - k], -q[k]). */
        float *a = g + 2;
        const float *const end = g + ASC_FE_L;
        const float *qd = asc_fe_cos_quarter + ASC_FE_Q4;        /* q[Q4 - k] = qd[-1] */
        const float *qu = asc_fe_cos_quarter + 1;                /* q[k] = qu[0] */
#if ASC_FE_M4
        const float *b = g + 2 * ASC_FE_L;                       /* G[L-k] = b[-2], b[-1] */
        do {
            register float ar __asm__("s0");
            register float ai __asm__("s1");
            register float br __asm__("s2");
            register float bi __asm__("s3");
            register float pk __asm__("s4");
            register float pl __asm__("s5");
            float tk0, tk1, tl0, tl1;
            ASC_FE_LD2(ar, ai, a);
            ASC_FE_LD2_DOWN(br, bi, b);
            tk0 = *--qd;
            tk1 = *qu++;
            tl0 = tk0;
            tl1 = -tk1;
            pk = asc_fe_bin_power_m4(ar, ai, br, bi, tk0, tk1);
            pl = asc_fe_bin_power_m4(br, bi, ar, ai, tl0, tl1);
            ASC_FE_ST2_UP(a, pk, pl);
        } while (a < end);
#else
        const float *b = g + 2 * (ASC_FE_L - 1);                 /* G[L-k] = b[0], b[1] */
        do {
            const float ar = a[0];
            const float ai = a[1];
            const float br = b[0];
            const float bi = b[1];
            float tk0, tk1, tl0, tl1;
            tk0 = *--qd;
            tk1 = *qu++;
            tl0 = tk0;
            tl1 = -tk1;
            a[0] = asc_fe_bin_power(ar, ai, br, bi, tk0, tk1);
            a[1] = asc_fe_bin_power(br, bi, ar, ai, tl0, tl1);
            a += 2;
            b -= 2;
        } while (a < end);
#endif
    }
    /* bin L/2: xA = xB = G[L/2] */
    {
        float t0;
        float t1;
        ASC_FE_SPLIT_TW(ASC_FE_L / 2, t0, t1);
        g[ASC_FE_L] = asc_fe_bin_power(g[ASC_FE_L], g[ASC_FE_L + 1], g[ASC_FE_L], g[ASC_FE_L + 1], t0, t1);
    }
}

#else
/* ---- speed build: the real-FFT split fused with the power spectrum, times 4 -------------------
 * asc_fe_split_power4 writes 4 |X_b|^2 (the packed layout above) instead of |X_b|^2: the split's
 * X = 0.5 (...) (CMSIS-DSP's stage_rfft_f32) without the 0.5, so each power is (2 re)^2 + (2 im)^2;
 * asc_fe_mel scales each mel sum by 0.25 once. Scaling by 2 and 4 is exact in float32 except for
 * subnormal results (|re| < 2^-63 or so), far below the log's offset of 1e-5: the features are
 * those of the unscaled split (tests/test_frontend_c.py, torch agreement).
 * Bin pair k, L-k (1 <= k < L/2) from xA = G[k], xB = G[L-k] and one twiddle pair (twr, twi) =
 * twiddleCoef_rfft_<N>[2k], [2k + 1]: CMSIS-DSP's table holds (twr, -twi) at L-k, bit for bit
 * (all sizes 32 .. 4096), and bin L-k's split terms are bin k's with xA, xB swapped, so with
 * t1a = br - ar, t1b = bi + ai, s = ar + br, the products twr t1a, twi t1a, twr t1b, twi t1b are
 * shared (negating an operand negates a product exactly):
 *   bin k:   xr = (s + twr t1a) + twi t1b,   xi = ((ai - bi) + twi t1a) - twr t1b,
 *   bin L-k: yr = (s - twr t1a) - twi t1b,   yi = ((bi - ai) + twi t1a) - twr t1b,
 *   4 P(k) = xr xr + xi xi,   4 P(L-k) = yr yr + yi yi,
 * evaluated as written (the bits are CMSIS-DSP's split times 2 per component, signs of zeros
 * aside, which squaring removes). The C form (asc_fe_pair_power4) is the host's; on the
 * Cortex-M4 a loop of inline assembly runs four pairs per step with the same float32 operations
 * (a product and the sum it enters as one VMLA / VMLS: product rounded, then the sum, as the C
 * form's separate `*` and `+`; VMLS adds the negated product, which differs from `d - p` only in
 * the sign of a NaN), 18 float operations per pair, one VLDM each of four G[k], four G[L-k] and
 * four twiddle pairs and one VSTM of the eight powers: 78 instructions per four pairs (counted in
 * the loop body) instead of 31 per pair. */
static ASC_FE_ALWAYS_INLINE void asc_fe_pair_power4(float *pk, float *pl, float ar, float ai, float br,
                                                    float bi, float twr, float twi)
{
    const float t1a = br - ar;
    const float t1b = bi + ai;
    const float s = ar + br;
    const float xr = (s + (twr * t1a)) + (twi * t1b);
    const float xi = ((ai - bi) + (twi * t1a)) - (twr * t1b);
    const float yr = (s - (twr * t1a)) - (twi * t1b);
    const float yi = ((bi - ai) + (twi * t1a)) - (twr * t1b);
    *pk = (xr * xr) + (xi * xi);
    *pl = (yr * yr) + (yi * yi);
}

#if ASC_FE_M4
/* one bin pair in registers: A = G[k] (AR, AI), B = G[L-k] (BR, BI), twiddle (TR, TI); temporaries
 * s24 .. s27; 4 P(k) -> AR, 4 P(L-k) -> AI */
#define ASC_FE_PP4(AR, AI, BR, BI, TR, TI)                                                         \
    "vsub.f32 s24, " BR ", " AR "\n\t"                       /* t1a = br - ar */                \
    "vadd.f32 s25, " BI ", " AI "\n\t"                       /* t1b = bi + ai */                \
    "vadd.f32 s26, " AR ", " BR "\n\t"                       /* s, for yr */                    \
    "vadd.f32 " AR ", " AR ", " BR "\n\t"                    /* s, for xr */                    \
    "vsub.f32 s27, " BI ", " AI "\n\t"                       /* bi - ai */                      \
    "vsub.f32 " AI ", " AI ", " BI "\n\t"                    /* ai - bi */                      \
    "vmla.f32 " AR ", " TR ", s24\n\t"                       /* xr = (s + twr t1a) */           \
    "vmla.f32 " AR ", " TI ", s25\n\t"                       /*      + twi t1b */               \
    "vmla.f32 " AI ", " TI ", s24\n\t"                       /* xi = (ai - bi + twi t1a) */     \
    "vmls.f32 " AI ", " TR ", s25\n\t"                       /*      - twr t1b */               \
    "vmls.f32 s26, " TR ", s24\n\t"                          /* yr = (s - twr t1a) */           \
    "vmls.f32 s26, " TI ", s25\n\t"                          /*      - twi t1b */               \
    "vmla.f32 s27, " TI ", s24\n\t"                          /* yi = (bi - ai + twi t1a) */     \
    "vmls.f32 s27, " TR ", s25\n\t"                          /*      - twr t1b */               \
    "vmul.f32 " AR ", " AR ", " AR "\n\t"                    /* xr xr + xi xi */                \
    "vmla.f32 " AR ", " AI ", " AI "\n\t"                                                         \
    "vmul.f32 " AI ", s26, s26\n\t"                          /* yr yr + yi yi */                \
    "vmla.f32 " AI ", s27, s27\n\t"
#endif

/* Splits the complex FFT output g (L complex values) in place into 4 |X_b|^2, packed: g[2b] =
 * 4 P(b), g[2b+1] = 4 P(L-b) for 0 <= b < L/2 (g[1] = 4 P(L)), g[L] = 4 P(L/2). */
static void asc_fe_split_power4(float *g, const float *tw)
{
    int32_t k = 1;
    {
        const float t1a = g[0] + g[0];
        const float t1b = g[1] + g[1];
        const float x0 = t1a + t1b;              /* 2 X_0 (real) */
        const float xn = t1a - t1b;              /* 2 X_L (real) */
        g[0] = x0 * x0;
        g[1] = xn * xn;
    }
#if ASC_FE_M4
    /* pairs 1 .. 3 here, then 4 .. L/2 - 1 (a multiple of four, at least four) four at a time:
     * a walks up over G[k .. k+3] (loaded, then overwritten by the powers), b down over
     * G[L-k-3 .. L-k] (VLDMDB: G[L-k] in s14, s15), w over the twiddles */
    for (; k < 4; ++k) {
        asc_fe_pair_power4(&g[2 * k], &g[2 * k + 1], g[2 * k], g[2 * k + 1], g[2 * (ASC_FE_L - k)],
                           g[2 * (ASC_FE_L - k) + 1], tw[2 * k], tw[2 * k + 1]);
    }
    {
        float *a = g + 8;
        const float *b = g + 2 * (ASC_FE_L - 4) + 2;
        const float *w = tw + 8;
        const float *const end = g + ASC_FE_L;
        __asm__ volatile(
            "1:\n\t"
            "vldmia %[a], {s0-s7}\n\t"
            "vldmdb %[b]!, {s8-s15}\n\t"
            "vldmia %[w]!, {s16-s23}\n\t"
            ASC_FE_PP4("s0", "s1", "s14", "s15", "s16", "s17")
            ASC_FE_PP4("s2", "s3", "s12", "s13", "s18", "s19")
            ASC_FE_PP4("s4", "s5", "s10", "s11", "s20", "s21")
            ASC_FE_PP4("s6", "s7", "s8", "s9", "s22", "s23")
            "vstmia %[a]!, {s0-s7}\n\t"
            "cmp %[a], %[end]\n\t"
            "bne 1b\n\t"
            : [a] "+&r"(a), [b] "+&r"(b), [w] "+&r"(w)
            : [end] "r"(end)
            : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13",
              "s14", "s15", "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "s24", "s25",
              "s26", "s27", "cc", "memory");
    }
#else
    for (; k < ASC_FE_L / 2; ++k) {
        asc_fe_pair_power4(&g[2 * k], &g[2 * k + 1], g[2 * k], g[2 * k + 1], g[2 * (ASC_FE_L - k)],
                           g[2 * (ASC_FE_L - k) + 1], tw[2 * k], tw[2 * k + 1]);
    }
#endif
    {   /* bin L/2: xA = xB = G[L/2], twiddle L/2 */
        float p;
        asc_fe_pair_power4(&g[ASC_FE_L], &p, g[ASC_FE_L], g[ASC_FE_L + 1], g[ASC_FE_L], g[ASC_FE_L + 1],
                           tw[ASC_FE_L], tw[ASC_FE_L + 1]);
    }
}
#endif

#if ASC_FE_COMPACT_TABLES
/* mel[m] = sum over the band's bins b (ascending) of w * P(b), P in the packed layout above:
 * bins b <= L/2 at g[2b] (stride +2), bins b > L/2 at g[2(L-b)+1] (stride -2). Same products and
 * the same summation order as a dense power array. (Size build: short loops, not inlined so that
 * asc_fe_run's register pressure does not reach them; the speed build's unrolled asc_fe_mel below
 * computes the same sums in the same order.) */
static ASC_FE_NOINLINE void asc_fe_mel(const float *g, float *mel)
{
    const asc_fe_melw_t *w = ASC_FE_MEL_TABLE;
    int32_t m;
    for (m = 0; m < ASC_FE_N_MELS; ++m) {
        const int32_t b0 = (int32_t)asc_fe_mel_first_bin[m];
        const int32_t nb = (int32_t)asc_fe_mel_n_bins[m];
        int32_t n_lo = ASC_FE_L / 2 + 1 - b0;          /* bins b0 .. L/2 */
        int32_t n_hi;
        float acc = 0.0f;
        if (n_lo > nb) {
            n_lo = nb;
        } else if (n_lo < 0) {
            n_lo = 0;
        }
        n_hi = nb - n_lo;
        if (n_lo > 0) {
            const float *p = g + 2 * b0;
            int32_t j = n_lo;
            while (j >= 2) {
                acc += asc_fe_melw(w, 0) * p[0];
                acc += asc_fe_melw(w, 1) * p[2];
                w += 2;
                p += 4;
                j -= 2;
            }
            if (j > 0) {
                acc += asc_fe_melw(w, 0) * p[0];
                w += 1;
            }
        }
        if (n_hi > 0) {
            const float *p = g + 2 * (ASC_FE_L - (b0 + n_lo)) + 1;
            int32_t j = n_hi;
            while (j >= 2) {
                acc += asc_fe_melw(w, 0) * p[0];
                acc += asc_fe_melw(w, 1) * p[-2];
                w += 2;
                p -= 4;
                j -= 2;
            }
            if (j > 0) {
                acc += asc_fe_melw(w, 0) * p[0];
                w += 1;
            }
        }
        mel[m] = acc;
    }
}

#else
/* acc + w[0] * p[0] + w[1] * p[s] + ... + w[n-1] * p[(n-1) s], the products added to acc one at
 * a time in this (ascending bin) order, s = +2 or -2 (a constant after inlining); *wp advances by
 * n. The leading n % 16 terms come first (one, two, four, then eight), then blocks of sixteen:
 * the same products in the same order as a plain loop, with fewer loop tests and pointer updates
 * per product (one weight load, one power load, one multiply and one add each). */
#define ASC_FE_MEL_TERM(i) (acc += asc_fe_melw(w, (i)) * p[(i) * s])
static ASC_FE_ALWAYS_INLINE float asc_fe_mel_run(float acc, const asc_fe_melw_t **wp, const float *p,
                                                 int32_t n, const int32_t s)
{
    const asc_fe_melw_t *w = *wp;
    if ((n & 1) != 0) {
        ASC_FE_MEL_TERM(0);
        w += 1;
        p += s;
    }
    if ((n & 2) != 0) {
        ASC_FE_MEL_TERM(0); ASC_FE_MEL_TERM(1);
        w += 2;
        p += 2 * s;
    }
    if ((n & 4) != 0) {
        ASC_FE_MEL_TERM(0); ASC_FE_MEL_TERM(1); ASC_FE_MEL_TERM(2); ASC_FE_MEL_TERM(3);
        w += 4;
        p += 4 * s;
    }
    if ((n & 8) != 0) {
        ASC_FE_MEL_TERM(0); ASC_FE_MEL_TERM(1); ASC_FE_MEL_TERM(2); ASC_FE_MEL_TERM(3);
        ASC_FE_MEL_TERM(4); ASC_FE_MEL_TERM(5); ASC_FE_MEL_TERM(6); ASC_FE_MEL_TERM(7);
        w += 8;
        p += 8 * s;
    }
    for (n >>= 4; n > 0; --n) {
        ASC_FE_MEL_TERM(0); ASC_FE_MEL_TERM(1); ASC_FE_MEL_TERM(2); ASC_FE_MEL_TERM(3);
        ASC_FE_MEL_TERM(4); ASC_FE_MEL_TERM(5); ASC_FE_MEL_TERM(6); ASC_FE_MEL_TERM(7);
        ASC_FE_MEL_TERM(8); ASC_FE_MEL_TERM(9); ASC_FE_MEL_TERM(10); ASC_FE_MEL_TERM(11);
        ASC_FE_MEL_TERM(12); ASC_FE_MEL_TERM(13); ASC_FE_MEL_TERM(14); ASC_FE_MEL_TERM(15);
        w += 16;
        p += 16 * s;
    }
    *wp = w;
    return acc;
}
#undef ASC_FE_MEL_TERM

#if ASC_FE_M4
/* Cortex-M4 form of asc_fe_mel_run (inline assembly): the same products added to acc (s8) in the
 * same order, each product and its sum one VMLA.F32 (product rounded, then the sum: the C form's
 * separate `*` and `+`). The first n % 8 terms come first: a TBB on n % 8 picks one of seven
 * blocks, each one VLDM of exactly its weights, one VLDM of exactly its powers (2 (n % 8) floats,
 * the unused ones between them included) and its VMLAs; then blocks of eight terms, one VLDM of 8
 * weights, one VLDM of 16 floats holding 8 powers, 8 VMLAs, SUBS and BNE: 12 instructions per 8
 * terms (counted). Up: the powers at p[0], p[2], ... (bins <= L/2), p advancing; down: at q[-1],
 * q[-3], ... (bins > L/2, VLDMDB), q decreasing. Loads move bits and round nothing. */
#define ASC_FE_MLA(j, k) "vmla.f32 s8, s" #j ", s" #k "\n\t"
#define ASC_FE_MEL_TBB                                                                             \
    "ands %[r], %[n], #7\n\t"                                                                      \
    "tbb [pc, %[r]]\n\t"                                                                           \
    "2:\n\t"                                                                                       \
    ".byte (30f - 2b) / 2, (31f - 2b) / 2, (32f - 2b) / 2, (33f - 2b) / 2\n\t"                    \
    ".byte (34f - 2b) / 2, (35f - 2b) / 2, (36f - 2b) / 2, (37f - 2b) / 2\n\t"
#define ASC_FE_MEL_CLOBBERS                                                                        \
    "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s16", "s17", "s18", "s19", "s20", "s21",     \
    "s22", "s23", "s24", "s25", "s26", "s27", "s28", "s29", "s30", "s31", "cc", "memory"

static ASC_FE_ALWAYS_INLINE float asc_fe_mel_up_m4(float acc_in, const float **wp, const float *p, int32_t n)
{
    register float acc __asm__("s8") = acc_in;
    const float *w = *wp;
    int32_t r;
    __asm__ volatile(
        ASC_FE_MEL_TBB
        "31:\n\t"
        "vldmia %[w]!, {s0}\n\t"
        "vldmia %[p]!, {s16-s17}\n\t"
        ASC_FE_MLA(0, 16)
        "b.w 30f\n\t"
        "32:\n\t"
        "vldmia %[w]!, {s0-s1}\n\t"
        "vldmia %[p]!, {s16-s19}\n\t"
        ASC_FE_MLA(0, 16) ASC_FE_MLA(1, 18)
        "b.w 30f\n\t"
        "33:\n\t"
        "vldmia %[w]!, {s0-s2}\n\t"
        "vldmia %[p]!, {s16-s21}\n\t"
        ASC_FE_MLA(0, 16) ASC_FE_MLA(1, 18) ASC_FE_MLA(2, 20)
        "b.w 30f\n\t"
        "34:\n\t"
        "vldmia %[w]!, {s0-s3}\n\t"
        "vldmia %[p]!, {s16-s23}\n\t"
        ASC_FE_MLA(0, 16) ASC_FE_MLA(1, 18) ASC_FE_MLA(2, 20) ASC_FE_MLA(3, 22)
        "b.w 30f\n\t"
        "35:\n\t"
        "vldmia %[w]!, {s0-s4}\n\t"
        "vldmia %[p]!, {s16-s25}\n\t"
        ASC_FE_MLA(0, 16) ASC_FE_MLA(1, 18) ASC_FE_MLA(2, 20) ASC_FE_MLA(3, 22) ASC_FE_MLA(4, 24)
        "b.w 30f\n\t"
        "36:\n\t"
        "vldmia %[w]!, {s0-s5}\n\t"
        "vldmia %[p]!, {s16-s27}\n\t"
        ASC_FE_MLA(0, 16) ASC_FE_MLA(1, 18) ASC_FE_MLA(2, 20) ASC_FE_MLA(3, 22) ASC_FE_MLA(4, 24)
        ASC_FE_MLA(5, 26)
        "b.w 30f\n\t"
        "37:\n\t"
        "vldmia %[w]!, {s0-s6}\n\t"
        "vldmia %[p]!, {s16-s29}\n\t"
        ASC_FE_MLA(0, 16) ASC_FE_MLA(1, 18) ASC_FE_MLA(2, 20) ASC_FE_MLA(3, 22) ASC_FE_MLA(4, 24)
        ASC_FE_MLA(5, 26) ASC_FE_MLA(6, 28)
        "30:\n\t"
        "lsrs %[n], %[n], #3\n\t"
        "beq 39f\n\t"
        "38:\n\t"
        "vldmia %[w]!, {s0-s7}\n\t"
        "vldmia %[p]!, {s16-s31}\n\t"
        ASC_FE_MLA(0, 16) ASC_FE_MLA(1, 18) ASC_FE_MLA(2, 20) ASC_FE_MLA(3, 22)
        ASC_FE_MLA(4, 24) ASC_FE_MLA(5, 26) ASC_FE_MLA(6, 28) ASC_FE_MLA(7, 30)
        "subs %[n], %[n], #1\n\t"
        "bne 38b\n\t"
        "39:\n\t"
        : [acc] "+t"(acc), [w] "+&r"(w), [p] "+&r"(p), [n] "+&r"(n), [r] "=&r"(r)
        :
        : ASC_FE_MEL_CLOBBERS);
    *wp = w;
    return acc;
}

static ASC_FE_ALWAYS_INLINE float asc_fe_mel_down_m4(float acc_in, const float **wp, const float *q, int32_t n)
{
    register float acc __asm__("s8") = acc_in;
    const float *w = *wp;
    int32_t r;
    __asm__ volatile(
        ASC_FE_MEL_TBB
        "31:\n\t"
        "vldmia %[w]!, {s0}\n\t"
        "vldmdb %[q]!, {s16-s17}\n\t"
        ASC_FE_MLA(0, 17)
        "b.w 30f\n\t"
        "32:\n\t"
        "vldmia %[w]!, {s0-s1}\n\t"
        "vldmdb %[q]!, {s16-s19}\n\t"
        ASC_FE_MLA(0, 19) ASC_FE_MLA(1, 17)
        "b.w 30f\n\t"
        "33:\n\t"
        "vldmia %[w]!, {s0-s2}\n\t"
        "vldmdb %[q]!, {s16-s21}\n\t"
        ASC_FE_MLA(0, 21) ASC_FE_MLA(1, 19) ASC_FE_MLA(2, 17)
        "b.w 30f\n\t"
        "34:\n\t"
        "vldmia %[w]!, {s0-s3}\n\t"
        "vldmdb %[q]!, {s16-s23}\n\t"
        ASC_FE_MLA(0, 23) ASC_FE_MLA(1, 21) ASC_FE_MLA(2, 19) ASC_FE_MLA(3, 17)
        "b.w 30f\n\t"
        "35:\n\t"
        "vldmia %[w]!, {s0-s4}\n\t"
        "vldmdb %[q]!, {s16-s25}\n\t"
        ASC_FE_MLA(0, 25) ASC_FE_MLA(1, 23) ASC_FE_MLA(2, 21) ASC_FE_MLA(3, 19) ASC_FE_MLA(4, 17)
        "b.w 30f\n\t"
        "36:\n\t"
        "vldmia %[w]!, {s0-s5}\n\t"
        "vldmdb %[q]!, {s16-s27}\n\t"
        ASC_FE_MLA(0, 27) ASC_FE_MLA(1, 25) ASC_FE_MLA(2, 23) ASC_FE_MLA(3, 21) ASC_FE_MLA(4, 19)
        ASC_FE_MLA(5, 17)
        "b.w 30f\n\t"
        "37:\n\t"
        "vldmia %[w]!, {s0-s6}\n\t"
        "vldmdb %[q]!, {s16-s29}\n\t"
        ASC_FE_MLA(0, 29) ASC_FE_MLA(1, 27) ASC_FE_MLA(2, 25) ASC_FE_MLA(3, 23) ASC_FE_MLA(4, 21)
        ASC_FE_MLA(5, 19) ASC_FE_MLA(6, 17)
        "30:\n\t"
        "lsrs %[n], %[n], #3\n\t"
        "beq 39f\n\t"
        "38:\n\t"
        "vldmia %[w]!, {s0-s7}\n\t"
        "vldmdb %[q]!, {s16-s31}\n\t"
        ASC_FE_MLA(0, 31) ASC_FE_MLA(1, 29) ASC_FE_MLA(2, 27) ASC_FE_MLA(3, 25)
        ASC_FE_MLA(4, 23) ASC_FE_MLA(5, 21) ASC_FE_MLA(6, 19) ASC_FE_MLA(7, 17)
        "subs %[n], %[n], #1\n\t"
        "bne 38b\n\t"
        "39:\n\t"
        : [acc] "+t"(acc), [w] "+&r"(w), [q] "+&r"(q), [n] "+&r"(n), [r] "=&r"(r)
        :
        : ASC_FE_MEL_CLOBBERS);
    *wp = w;
    return acc;
}
/* the band's terms: bins upward from p = g + 2 b (up) or from g[2 (L - b) + 1] (down, q one float
 * above it) */
#define ASC_FE_MEL_UP(acc, wp, p, n) asc_fe_mel_up_m4((acc), (wp), (p), (n))
#define ASC_FE_MEL_DOWN(acc, wp, p, n) asc_fe_mel_down_m4((acc), (wp), (p) + 1, (n))
#else
#define ASC_FE_MEL_UP(acc, wp, p, n) asc_fe_mel_run((acc), (wp), (p), (n), 2)
#define ASC_FE_MEL_DOWN(acc, wp, p, n) asc_fe_mel_run((acc), (wp), (p), (n), -2)
#endif

/* mel[m] = 0.25 * (sum over the band's bins b (ascending) of w * 4 P(b)), 4 P in the packed layout
 * of asc_fe_split_power4: bins b <= L/2 at g[2b] (stride +2), bins b > L/2 at g[2(L-b)+1] (stride
 * -2). Same products and the same summation order as a dense power array. A band lies at or below
 * L/2, above L/2, or (the one or two bands around bin L/2) across it: its bins b0 .. L/2 first,
 * then L/2 + 1 .. . The terms: asc_fe_mel_run in C, asc_fe_mel_up_m4 / asc_fe_mel_down_m4 on the
 * Cortex-M4 (the same bits). */
static void asc_fe_mel(const float *g, float *mel)
{
    const asc_fe_melw_t *w = ASC_FE_MEL_TABLE;
    int32_t m;
    for (m = 0; m < ASC_FE_N_MELS; ++m) {
        const int32_t b0 = (int32_t)asc_fe_mel_first_bin[m];
        const int32_t nb = (int32_t)asc_fe_mel_n_bins[m];
        float acc = 0.0f;
        if (b0 + nb <= ASC_FE_L / 2 + 1) {             /* bins b0 .. b0 + nb - 1 <= L/2 */
            acc = ASC_FE_MEL_UP(acc, &w, g + 2 * b0, nb);
        } else if (b0 > ASC_FE_L / 2) {                /* all bins > L/2 */
            acc = ASC_FE_MEL_DOWN(acc, &w, g + 2 * (ASC_FE_L - b0) + 1, nb);
        } else {                                       /* bins b0 .. L/2, then L/2 + 1 .. */
            const int32_t n_lo = ASC_FE_L / 2 + 1 - b0;
            acc = ASC_FE_MEL_UP(acc, &w, g + 2 * b0, n_lo);
            acc = ASC_FE_MEL_DOWN(acc, &w, g + 2 * (ASC_FE_L / 2 - 1) + 1, nb - n_lo);
        }
        mel[m] = acc * 0.25f;
    }
}

#endif

/* Features of frame t from its N_MELS sums (out_f32 / out_s8 point at element t): element
 * [m * N_FRAMES] = asc_fe_log_feature(mel[m]) into out_f32, or its int8 asc_fe_quantize_inline of
 * it into out_s8 when out_f32 is NULL; the same float operations as those two. The loops hold the
 * normal case only (finite audio: every mel + offset in asc_logf_normal's range, the log finite,
 * the fast int8 rounding asc_fe_quantize_log) and make no call, so the log's constants can stay
 * in registers (also why this is a function of its own, not inlined into asc_fe_run); a NaN / inf
 * sum (non-finite audio) is only counted there and written in a second pass by asc_logf and
 * asc_fe_quantize_inline. */
static ASC_FE_NOINLINE void asc_fe_log_frame(const float *mel, float *out_f32, int8_t *out_s8)
{
    int32_t n_special = 0;
    int32_t m;
    if (out_f32 != NULL) {
        float *o = out_f32;
        for (m = 0; m < ASC_FE_N_MELS; ++m, o += ASC_FE_N_FRAMES) {
            const float x = mel[m] + ASC_FE_LOG_OFFSET;
            if (asc_fe_log_is_normal(x)) {
                *o = asc_logf_normal(x);
            } else {
                ++n_special;
            }
        }
    } else {
        int8_t *o = out_s8;
        for (m = 0; m < ASC_FE_N_MELS; ++m, o += ASC_FE_N_FRAMES) {
            const float x = mel[m] + ASC_FE_LOG_OFFSET;
            if (asc_fe_log_is_normal(x)) {
                *o = asc_fe_quantize_log(asc_logf_normal(x));
            } else {
                ++n_special;
            }
        }
    }
    for (m = 0; n_special != 0 && m < ASC_FE_N_MELS; ++m) {
        if (!asc_fe_log_is_normal(mel[m] + ASC_FE_LOG_OFFSET)) {
            const float y = asc_fe_log_feature(mel[m]);
            if (out_f32 != NULL) {
                out_f32[m * ASC_FE_N_FRAMES] = y;
            } else {
                out_s8[m * ASC_FE_N_FRAMES] = asc_fe_quantize_inline(y);
            }
            --n_special;
        }
    }
}

static asc_fe_status_t asc_fe_run(asc_fe_read_fn read, void *ctx, void *work, int32_t work_bytes,
                                  float *out_f32, int8_t *out_s8)
{
    asc_fe_stream_t st;
    float *buf;
    float *mel;
    int32_t t;

    if (read == NULL || work == NULL || (out_f32 == NULL && out_s8 == NULL) ||
        ((uintptr_t)work & 3u) != 0u) {
        return ASC_FE_ERR_ARG;
    }
    if (work_bytes < (int32_t)ASC_FE_WORK_NEEDED) {
        return ASC_FE_ERR_WORK;
    }
    st.read = read;
    st.ctx = ctx;
    st.ring = (float *)work;
    st.base = 0;
    st.n_read = 0;
    buf = st.ring + ASC_FE_RING_LEN;
    mel = buf + ASC_FE_L + 2;

    for (t = 0; t < ASC_FE_N_FRAMES; ++t) {
        int32_t lo;
        int32_t hi;
        int32_t keep;
        int32_t u;
        asc_fe_status_t status;

        /* keep = lowest sample this or any later frame reads (the reflected tail of the last
         * frames can reach back before their own window) */
        asc_fe_frame_span(t, &keep, &hi);
        for (u = t + 1; u < ASC_FE_N_FRAMES; ++u) {
            int32_t hu;
            asc_fe_frame_span(u, &lo, &hu);
            if (lo < keep) {
                keep = lo;
            }
        }
        status = asc_fe_advance(&st, keep, hi);
        if (status != ASC_FE_OK) {
            return status;
        }
        ASC_FE_PROFILE(ASC_FE_PART_STREAM);

        /* windowed, zero-padded frame (the padding is re-zeroed: the FFT works in place; the
         * speed build's FFT does not read the first and last ASC_FE_ZERO_SKIP samples) */
        {
            const int32_t i0 = asc_fe_frame_i0(t);
            const float *ring = st.ring;
            const int32_t base = st.base;
#if ASC_FE_COMPACT_TABLES
            int32_t k;
#endif
            if (ASC_FE_WIN_OFFSET > ASC_FE_ZERO_SKIP) { /* all-zero bytes: +0.0f */
                memset(buf + ASC_FE_ZERO_SKIP, 0, (size_t)(ASC_FE_WIN_OFFSET - ASC_FE_ZERO_SKIP) * sizeof(float));
            }
#if ASC_FE_COMPACT_TABLES
            if (i0 >= 0 && i0 + ASC_FE_WIN_LENGTH <= ASC_FE_N_SAMPLES) {
                /* no reflection in this frame: one product per sample, as below */
                const float *x = ring + (i0 - base);
                float *y = buf + ASC_FE_WIN_OFFSET;
                for (k = 0; k <= ASC_FE_WIN_LENGTH / 2; ++k) {
                    y[k] = x[k] * asc_fe_window_half[k];
                }
                for (; k < ASC_FE_WIN_LENGTH; ++k) {
                    y[k] = x[k] * asc_fe_window_half[ASC_FE_WIN_LENGTH - k];
                }
            } else {
                for (k = 0; k < ASC_FE_WIN_LENGTH; ++k) {
                    buf[ASC_FE_WIN_OFFSET + k] = ring[asc_fe_reflect(i0 + k) - base] * asc_fe_win(k);
                }
            }
#else
            {
                /* window sample k reads original sample asc_fe_reflect(i0 + k): for k < ka the
                 * left reflection -(i0 + k), for ka <= k < kb sample i0 + k itself, for k >= kb
                 * the right reflection 2 (N - 1) - (i0 + k); the reflected parts walk the ring
                 * backwards. The same product ring sample * window per output as before (and as
                 * arm_mult_f32, which did the unreflected frames), in contiguous runs. */
                float *y = buf + ASC_FE_WIN_OFFSET;
                int32_t ka = -i0;
                int32_t kb = ASC_FE_N_SAMPLES - i0;
                ka = (ka < 0) ? 0 : (ka > ASC_FE_WIN_LENGTH) ? ASC_FE_WIN_LENGTH : ka;
                kb = (kb < ka) ? ka : (kb > ASC_FE_WIN_LENGTH) ? ASC_FE_WIN_LENGTH : kb;
                if (ka > 0) {
                    asc_fe_window_run(y, ring + (-i0 - base), asc_fe_window, ka, -1);
                }
                if (kb > ka) {
                    asc_fe_window_fwd(y + ka, ring + (i0 + ka - base), asc_fe_window + ka, kb - ka);
                }
                if (kb < ASC_FE_WIN_LENGTH) {
                    asc_fe_window_run(y + kb, ring + (2 * (ASC_FE_N_SAMPLES - 1) - (i0 + kb) - base),
                                      asc_fe_window + kb, ASC_FE_WIN_LENGTH - kb, -1);
                }
            }
#endif
            if (ASC_FE_N_FFT - ASC_FE_ZERO_SKIP > ASC_FE_WIN_OFFSET + ASC_FE_WIN_LENGTH) {
                memset(buf + ASC_FE_WIN_OFFSET + ASC_FE_WIN_LENGTH, 0,
                       (size_t)(ASC_FE_N_FFT - ASC_FE_ZERO_SKIP - ASC_FE_WIN_OFFSET - ASC_FE_WIN_LENGTH) *
                           sizeof(float));
            }
        }
        ASC_FE_PROFILE(ASC_FE_PART_WINDOW);

        /* complex FFT of the N_FFT / 2 (even, odd) sample pairs, in place (arm_rfft_fast_f32's
         * first half; its second half, the split, is fused with the power spectrum below) */
#if ASC_FE_COMPACT_TABLES
        asc_fe_cfft_compact(buf);
        ASC_FE_PROFILE(ASC_FE_PART_FFT);
        asc_fe_split_power(buf, NULL);
#else
        asc_fe_cfft_fast(buf);
        ASC_FE_PROFILE(ASC_FE_PART_FFT);

        /* real-FFT split + power spectrum times 4, in place (packed layout, asc_fe_split_power4),
         * with CMSIS-DSP's split twiddles twiddleCoef_rfft_<N_FFT> (what arm_rfft_fast_init_<N>_f32
         * points pTwiddleRFFT at); asc_fe_mel scales its sums by 0.25 */
        asc_fe_split_power4(buf, ASC_FE_RFFT_TWIDDLE);
#endif
        ASC_FE_PROFILE(ASC_FE_PART_POWER);

        /* sparse mel matrix into the free upper half of buf, then log, output
         * [mel * N_FRAMES + t] */
        asc_fe_mel(buf, mel);
        ASC_FE_PROFILE(ASC_FE_PART_MEL);
        asc_fe_log_frame(mel, out_f32 != NULL ? out_f32 + t : NULL, out_s8 != NULL ? out_s8 + t : NULL);
        ASC_FE_PROFILE(ASC_FE_PART_LOG);
    }
    return ASC_FE_OK;
}

asc_fe_status_t asc_fe_logmel_f32(asc_fe_read_fn read, void *ctx, void *work, int32_t work_bytes,
                                  float *out)
{
    if (out == NULL) {
        return ASC_FE_ERR_ARG;
    }
    return asc_fe_run(read, ctx, work, work_bytes, out, NULL);
}

asc_fe_status_t asc_fe_logmel_s8(asc_fe_read_fn read, void *ctx, void *work, int32_t work_bytes,
                                 int8_t *out)
{
    if (out == NULL) {
        return ASC_FE_ERR_ARG;
    }
    return asc_fe_run(read, ctx, work, work_bytes, NULL, out);
}

void asc_fe_cfft(float *x)
{
#if ASC_FE_COMPACT_TABLES
    asc_fe_cfft_compact(x);
#else
    asc_fe_cfft_fast(x);
#endif
}

void asc_fe_power_mel(float *x, float *mel)
{
#if ASC_FE_COMPACT_TABLES
    asc_fe_split_power(x, NULL);
#else
    asc_fe_split_power4(x, ASC_FE_RFFT_TWIDDLE);
#endif
    asc_fe_mel(x, mel);
}

int32_t asc_fe_read_mem_f32(void *ctx, float *dst, int32_t n)
{
    asc_fe_mem_f32_t *src = (asc_fe_mem_f32_t *)ctx;
    int32_t avail;
    if (src == NULL || dst == NULL || n <= 0) {
        return -1;
    }
    avail = src->n - src->pos;
    if (avail <= 0) {
        return 0;
    }
    if (n > avail) {
        n = avail;
    }
    memcpy(dst, src->samples + src->pos, (size_t)n * sizeof(float));
    src->pos += n;
    return n;
}

int32_t asc_fe_read_mem_s16(void *ctx, float *dst, int32_t n)
{
    asc_fe_mem_s16_t *src = (asc_fe_mem_s16_t *)ctx;
    int32_t avail;
    int32_t k;
    if (src == NULL || dst == NULL || n <= 0) {
        return -1;
    }
    avail = src->n - src->pos;
    if (avail <= 0) {
        return 0;
    }
    if (n > avail) {
        n = avail;
    }
    for (k = 0; k < n; ++k) {
        dst[k] = (float)src->samples[src->pos + k] * (1.0f / 32768.0f);
    }
    src->pos += n;
    return n;
}
