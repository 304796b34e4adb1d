/* asc_lut_s8.c - element-wise 256-entry int8 table lookup, out = table[t][in + 128], one table per
 * tensor or one per channel (innermost dim). Replaces element-wise operator chains (LOGISTIC,
 * TANH, Snake, SiLU, ...) whose tables were generated elsewhere.
 *
 * Per-tensor path: 4 elements per iteration, one unaligned 32-bit load and one store (each byte
 * sign-extended by one SXTB with rotation, indexing the table re-based at entry 128), so it works
 * in place (each word is read before it is written). This is plain C in both builds: the M4's DSP
 * (SIMD) instructions have no table lookup / gather, so there is no separate DSP path; the portable
 * and DSP builds run the same code and are trivially bit-identical. Per-channel path: the channel
 * index walks the tables row by row (table + c * 256). */
#include "asc_nn_internal.h"

asc_nn_status asc_lut_s8(const int8_t *table, int32_t n_tables, const asc_nn_dims *d,
                         const int8_t *input, int8_t *output)
{
    if (!table || !d || !input || !output || d->n <= 0 || d->h <= 0 || d->w <= 0 || d->c <= 0 ||
        (n_tables != 1 && n_tables != d->c)) {
        return ASC_NN_ARG_ERROR;
    }
    const int32_t size = d->n * d->h * d->w * d->c;
    if (n_tables == 1) {
        const int8_t *t = table + 128; /* t[x] = table[x + 128], x in [-128, 127] */
        int32_t i = 0;
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
    const int32_t ch = d->c;
    const int32_t pixels = size / ch;
    for (int32_t p = 0; p < pixels; p++) {
        const int8_t *x = input + (int64_t)p * ch;
        int8_t *y = output + (int64_t)p * ch;
        const int8_t *t = table + 128;
        for (int32_t c = 0; c < ch; c++, t += 256) {
            y[c] = t[x[c]];
        }
    }
    return ASC_NN_OK;
}
