/* asc_max_pool_s8.c - MAX_POOL_2D int8 (tflite-micro kernels/pooling.cc MaxPoolingEvalQuantized ->
 * reference_integer_ops::MaxPool): the max over the in-image part of each window, starting from
 * -128, then the activation clamp. Input and output share quantisation (no requantisation).
 *
 * DSP path (C >= 4): 4 channels per 32-bit word. Bytes are biased by 0x80 (signed order becomes
 * unsigned order), and the byte-wise unsigned max is max(a, b) = b + UQSUB8(a, b) (UQSUB8 gives
 * max(a - b, 0) per byte, so the sum never carries between bytes), min(a, b) = a - UQSUB8(a, b);
 * the running max stays biased, so a tap costs a load, an EOR, a UQSUB8 and an ADD. Not
 * SSUB8 + SEL (one instruction less per tap): Renode 1.14 mis-emulates SEL after SSUB8 / USUB8
 * (a one-off probe: 93,717 of 100,000 random word pairs wrong; QEMU none), and the bench runs the
 * same code on both emulators. The remaining C % 4 channels take the portable loop. Both paths compute the same
 * max of the same bytes, so they are bit-identical. */
#include "asc_nn_internal.h"

#if ASC_NN_USE_DSP
#define ASC_BIAS4 0x80808080u

/* Byte-wise unsigned max / min of two biased words (no carry or borrow crosses a byte). */
ASC_INLINE uint32_t asc_vmax_u8x4(uint32_t a, uint32_t b)
{
    return b + asc_uqsub8(a, b);
}

ASC_INLINE uint32_t asc_vmin_u8x4(uint32_t a, uint32_t b)
{
    return a - asc_uqsub8(a, b);
}

static inline uint32_t asc_bcast_byte(int32_t v)
{
    return ((uint32_t)v & 0xFFu) * 0x01010101u;
}
#endif

asc_nn_status asc_max_pool_s8(const asc_nn_pool_params *p,
                              const asc_nn_dims *in, const int8_t *input,
                              const asc_nn_dims *out, int8_t *output)
{
    if (!p || !in || !out || !input || !output || in->n <= 0 || in->h <= 0 || in->w <= 0 ||
        in->c <= 0 || out->n != in->n || out->c != in->c || out->h <= 0 || out->w <= 0 ||
        p->filter.h <= 0 || p->filter.w <= 0 || p->stride.h <= 0 || p->stride.w <= 0 ||
        !asc_act_ok(&p->activation)) {
        return ASC_NN_ARG_ERROR;
    }
    const int32_t ch = in->c;
    const int32_t row = in->w * ch;
    const int32_t lo = p->activation.min, hi = p->activation.max;
#if ASC_NN_USE_DSP
    const uint32_t lo4 = asc_bcast_byte(lo) ^ ASC_BIAS4, hi4 = asc_bcast_byte(hi) ^ ASC_BIAS4;
    const int clamp_lo = lo > -128, clamp_hi = hi < 127;
#endif
    for (int32_t b = 0; b < in->n; b++) {
        const int8_t *img = input + (int64_t)b * in->h * row;
        for (int32_t oy = 0; oy < out->h; oy++) {
            const int32_t y0 = oy * p->stride.h - p->padding.h;
            const int32_t fy0 = ASC_NN_MAX(0, -y0);
            const int32_t fy1 = ASC_NN_MIN(p->filter.h, in->h - y0);
            for (int32_t ox = 0; ox < out->w; ox++) {
                const int32_t x0 = ox * p->stride.w - p->padding.w;
                const int32_t fx0 = ASC_NN_MAX(0, -x0);
                const int32_t fx1 = ASC_NN_MIN(p->filter.w, in->w - x0);
                int8_t *o = output + (((int64_t)b * out->h + oy) * out->w + ox) * ch;
                int32_t c = 0;
#if ASC_NN_USE_DSP
                if (fy1 > fy0 && fx1 > fx0) {
                    const int8_t *base = img + (int64_t)(y0 + fy0) * row + (int64_t)(x0 + fx0) * ch;
                    const int32_t nfy = fy1 - fy0, nfx = fx1 - fx0;
                    for (; c + 4 <= ch; c += 4) {
                        const int8_t *r = base + c;
                        uint32_t m = (uint32_t)asc_read_s8x4(r) ^ ASC_BIAS4;  /* biased running max */
                        for (int32_t fy = 0; fy < nfy; fy++, r += row) {
                            const int8_t *px = r;
                            for (int32_t fx = 0; fx < nfx; fx++, px += ch) {
                                m = asc_vmax_u8x4(m, (uint32_t)asc_read_s8x4(px) ^ ASC_BIAS4);
                            }
                        }
                        if (clamp_lo) {
                            m = asc_vmax_u8x4(m, lo4);
                        }
                        if (clamp_hi) {
                            m = asc_vmin_u8x4(m, hi4);
                        }
                        m ^= ASC_BIAS4;
                        memcpy(o + c, &m, 4);
                    }
                }
#endif
                for (; c < ch; c++) {
                    int32_t m = -128;
                    for (int32_t fy = fy0; fy < fy1; fy++) {
                        const int8_t *r = img + (int64_t)(y0 + fy) * row + c;
                        for (int32_t fx = fx0; fx < fx1; fx++) {
                            const int32_t v = r[(int64_t)(x0 + fx) * ch];
                            m = v > m ? v : m;
                        }
                    }
                    m = m < lo ? lo : m;
                    m = m > hi ? hi : m;
                    o[c] = (int8_t)m;
                }
            }
        }
    }
    return ASC_NN_OK;
}
