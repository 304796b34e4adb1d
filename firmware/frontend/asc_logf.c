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
        k = -25;
    }

    /* positive normal (subnormals scaled above): the shared branch-free core, k = -25 or 0 */
    return asc_logf_core(x, k);
}
