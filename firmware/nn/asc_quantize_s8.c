/* asc_quantize_s8.c - QUANTIZE int8 -> int8 (tflite-micro kernels/quantize_common.cc
 * EvalQuantizeReference -> reference_ops::Requantize, kernels/internal/reference/requantize.h):
 *   out = clamp(MBQM(in + input_offset, multiplier, shift) + output_offset, -128, 127)
 * Element-wise, any shape; output may equal input (in place).
 *
 * DSP path: an int8 input has only 256 values, so for tensors of more than 256 elements the
 * kernel first requantises all 256 values into a table on the stack (with the same function as
 * the portable loop) and then looks every element up, 4 per 32-bit load / store. Same function,
 * same values: bit-identical to the portable path. (No SIMD instruction helps the 64-bit
 * requantisation itself.) */
#include "asc_nn_internal.h"

static inline int8_t asc_quantize_one(const asc_nn_quantize_params *p, int32_t x)
{
    int32_t v = asc_mbqm(x + p->input_offset, p->multiplier, p->shift) + p->output_offset;
    v = v < -128 ? -128 : (v > 127 ? 127 : v);
    return (int8_t)v;
}

asc_nn_status asc_quantize_s8(const asc_nn_quantize_params *p, const int8_t *input, int8_t *output, int32_t size)
{
    if (!p || !input || !output || size < 0 || p->shift > 31 || p->shift < -31) {
        return ASC_NN_ARG_ERROR;
    }
    int32_t i = 0;
#if ASC_NN_USE_DSP
    if (size > 256) {
        int8_t table[256];
        for (int32_t x = -128; x < 128; x++) {
            table[x + 128] = asc_quantize_one(p, x);
        }
        const int8_t *t = table + 128;
        for (; i + 4 <= size; i += 4) {
            uint32_t v;
            memcpy(&v, input + i, 4);
            const uint32_t r = (uint32_t)(uint8_t)t[(int8_t)(uint8_t)v] |
                               (uint32_t)(uint8_t)t[(int8_t)(uint8_t)(v >> 8)] << 8 |
                               (uint32_t)(uint8_t)t[(int8_t)(uint8_t)(v >> 16)] << 16 |
                               (uint32_t)(uint8_t)t[(int8_t)(uint8_t)(v >> 24)] << 24;
            memcpy(output + i, &r, 4);
        }
        for (; i < size; i++) {
            output[i] = t[input[i]];
        }
        return ASC_NN_OK;
    }
#endif
    for (; i < size; i++) {
        output[i] = asc_quantize_one(p, input[i]);
    }
    return ASC_NN_OK;
}
