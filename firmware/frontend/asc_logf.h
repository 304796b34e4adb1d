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

#ifdef __cplusplus
extern "C" {
#endif

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
