/*
 * asc_logf.c - portable, bit-reproducible float32 natural logarithm (see asc_logf.h).
 */
#include "asc_logf.h"

#include <stdint.h>
#include <string.h>

#if defined(__FAST_MATH__)
#error "asc_logf.c must not be compiled with -ffast-math (results would differ between targets)"
#endif
#if defined(__FLT_EVAL_METHOD__) && (__FLT_EVAL_METHOD__ != 0)
#error "asc_logf.c needs FLT_EVAL_METHOD == 0 (float arithmetic in float; on x86 use SSE)"
#endif

/* ln(2) split: ASC_LN2_HI = 22713 / 32768 (15 significant bits, so k * ASC_LN2_HI is exact for
 * |k| < 512), ASC_LN2_LO = float32(ln(2) - ASC_LN2_HI). */
#define ASC_LN2_HI 0x1.62e400p-1f
#define ASC_LN2_LO 0x1.7f7d1cp-20f

/* Taylor coefficients 2/(2j+1) of ln((1+s)/(1-s)) = 2s + s * (c1 z + c2 z^2 + ...), z = s^2,
 * each rounded to float32. Five terms: the truncation error (2/13) |s|^13 < 2e-11 is far below
 * half an ulp for |s| <= 3 - 2 sqrt(2) = 0.1716. */
#define ASC_LOG_C1 0x1.555556p-1f /* 2/3  */
#define ASC_LOG_C2 0x1.99999ap-2f /* 2/5  */
#define ASC_LOG_C3 0x1.24924ap-2f /* 2/7  */
#define ASC_LOG_C4 0x1.c71c72p-3f /* 2/9  */
#define ASC_LOG_C5 0x1.745d18p-3f /* 2/11 */

static inline uint32_t asc_logf_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static inline float asc_logf_from_bits(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

float asc_logf(float x)
{
    uint32_t u = asc_logf_bits(x);
    int32_t k = 0;

    if (u >= 0x7F800000u) {                     /* +inf, NaN, or sign bit set */
        if (u == 0x7F800000u) {
            return x;                           /* ln(+inf) = +inf */
        }
        if (u < 0x80000000u) {
            return x;                           /* NaN stays NaN */
        }
        if (u == 0x80000000u) {
            return asc_logf_from_bits(0xFF800000u); /* ln(-0) = -inf */
        }
        return asc_logf_from_bits(0x7FC00000u);     /* ln(negative or -NaN) = NaN */
    }
    if (u == 0u) {
        return asc_logf_from_bits(0xFF800000u);     /* ln(+0) = -inf */
    }
    if (u < 0x00800000u) {                      /* subnormal: scale by 2^25 (exact) */
        x = x * 0x1.0p25f;
        u = asc_logf_bits(x);
        k = -25;
    }

    /* x = 2^e * 1.mant; move m into [sqrt(2)/2, sqrt(2)) (0x3504F3 = mantissa of sqrt(2)). */
    {
        const uint32_t mant = u & 0x007FFFFFu;
        int32_t e = (int32_t)(u >> 23) - 127;
        uint32_t mbits;
        if (mant >= 0x3504F3u) {
            mbits = mant | 0x3F000000u;         /* m = 1.mant / 2, exponent + 1 */
            e += 1;
        } else {
            mbits = mant | 0x3F800000u;         /* m = 1.mant */
        }
        k += e;

        {
            const float m = asc_logf_from_bits(mbits);
            const float f = m - 1.0f;           /* exact (Sterbenz) */
            const float s = f / (2.0f + f);
            const float z = s * s;
            const float r = z * (ASC_LOG_C1 + z * (ASC_LOG_C2 + z * (ASC_LOG_C3 + z * (ASC_LOG_C4 + z * ASC_LOG_C5))));
            const float hfsq = (0.5f * f) * f;
            const float dk = (float)k;
            /* ln(x) = k ln2_hi + [f - hfsq + s (hfsq + r) + k ln2_lo], small terms first. */
            const float tail = s * (hfsq + r) + dk * ASC_LN2_LO;
            return dk * ASC_LN2_HI + (f - (hfsq - tail));
        }
    }
}
