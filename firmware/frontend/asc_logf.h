/*
 * asc_logf.h - natural logarithm of a float32, bit-identical on every IEEE-754 target.
 *
 * libm's logf differs between C libraries (glibc on the x86 host, newlib on the Cortex-M4), so
 * the frontend uses this one: only IEEE-754 single-precision +, -, *, / (each correctly rounded
 * in round-to-nearest-even) in a fixed order, plus integer bit manipulation. Compile with
 * -ffp-contract=off (no fused multiply-add) and without -ffast-math; FLT_EVAL_METHOD must be 0
 * (SSE on x86-64, the FPv4-SP unit on the Cortex-M4) and subnormals must not be flushed.
 */
#ifndef ASC_LOGF_H
#define ASC_LOGF_H

#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
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

/*
 * asc_logf_core(x, k0) = ln(2^k0 * x) for a positive normal finite x (asc_logf's core: asc_logf
 * scales a subnormal by 2^25 and passes k0 = -25); asc_logf_normal(x) = asc_logf_core(x, 0) =
 * asc_logf(x), bit for bit, for a positive normal finite x
 * (0x1p-126 <= x < inf); branch-free (no special cases: the caller guarantees the range, e.g.
 * the frontend's mel power + ASC_FE_LOG_OFFSET). The reduction x = 2^k * m, m in
 * [sqrt(2)/2, sqrt(2)), is done on the bit pattern: adding 0x3F800000 - 0x3F3504F3 to it carries
 * into the exponent exactly when the mantissa is >= that of sqrt(2) (0x3504F3).
 */
static inline float asc_logf_core(float x, int32_t k0)
{
    uint32_t u;
    uint32_t mbits;
    int32_t k;
    float m;
    memcpy(&u, &x, sizeof u);
    u += 0x3F800000u - 0x3F3504F3u;
    k = (int32_t)(u >> 23) - 127 + k0;
    mbits = (u & 0x007FFFFFu) + 0x3F3504F3u;
    memcpy(&m, &mbits, sizeof m);
    {
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

static inline float asc_logf_normal(float x)
{
    return asc_logf_core(x, 0);
}

/*
 * asc_logf(x) = ln(x) for a float32 x.
 *   x > 0 finite (subnormals included): ln(x), error below 1 ulp (tests/test_frontend_c.py measures
 *                                       the maximum over 2^20 values against float64 log)
 *   x == +0 or -0: -inf;  x < 0: NaN;  x == +inf: +inf;  NaN: NaN.
 * Method: x = 2^k * m with m in [sqrt(2)/2, sqrt(2)); f = m - 1 (exact); s = f / (2 + f);
 *   ln(m) = ln((1 + s) / (1 - s)) = 2s + 2s^3/3 + 2s^5/5 + ...  (|s| < 0.1716), evaluated as
 *   f - f^2/2 + s * (f^2/2 + R(s^2)); ln(x) = k * ln2_hi + (... + k * ln2_lo), ln2_hi having
 *   15 significant bits so that k * ln2_hi is exact.
 */
float asc_logf(float x);

#ifdef __cplusplus
}
#endif

#endif /* ASC_LOGF_H */
