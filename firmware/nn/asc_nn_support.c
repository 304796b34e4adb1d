/* asc_nn_support.c - exported requantisation primitives (TFLite / gemmlowp integer semantics). */
#include "asc_nn_internal.h"

int32_t asc_nn_sat_rounding_doubling_high_mul(int32_t a, int32_t b)
{
    return asc_srdhm(a, b);
}

int32_t asc_nn_rounding_divide_by_pot(int32_t x, int32_t exponent)
{
    if (exponent < 0 || exponent > 31) {
        return 0;
    }
    return asc_rdbpot(x, exponent);
}

int32_t asc_nn_requantize(int32_t x, int32_t multiplier, int32_t shift)
{
    if (shift > 31 || shift < -31) {
        return 0;
    }
    return asc_mbqm(x, multiplier, shift);
}
