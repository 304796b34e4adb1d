/* asc_depthwise_conv_s8.c - DEPTHWISE_CONV_2D int8
 * (TFLite reference_integer_ops::DepthwiseConvPerChannel semantics). */
#include "asc_nn_internal.h"

int32_t asc_depthwise_conv_s8_get_buffer_size(const asc_nn_dims *input_dims, const asc_nn_dims *filter_dims)
{
    (void)input_dims;
    (void)filter_dims;
    return 0;
}

#if ASC_NN_USE_DSP
#define ASC_DW_MAX_TAPS 9

/* One tap for channels [c, c+4): x = 4 input bytes, we / wo = weights of channels (c, c+2) /
 * (c+1, c+3) as int16 lanes. The input offset is added while unpacking (exact, |x + off| <= 255). */
#define ASC_DW_TAP(XP, WE, WO)                                                                     \
    do {                                                                                           \
        const int32_t xw_ = asc_read_s8x4(XP);                                                     \
        const int32_t xe_ = __sxtab16(off2, xw_), xo_ = asc_sxtab16_ror8(off2, xw_);               \
        a0 = asc_smlabb(xe_, (WE), a0);                                                            \
        a2 = asc_smlatt(xe_, (WE), a2);                                                            \
        a1 = asc_smlabb(xo_, (WO), a1);                                                            \
        a3 = asc_smlatt(xo_, (WO), a3);                                                            \
    } while (0)

/* ch_mult == 1, at most 9 taps: channels in groups of 4, each group over all output pixels with
 * its weights unpacked once into a small table; returns the number of channels done (a multiple
 * of 4). Per channel exactly the reference sum (int32, wrapping) and requantisation. */
static int32_t asc_dw_dsp(const asc_nn_dw_conv_params *p, const asc_nn_per_channel_quant *q,
                          const asc_nn_dims *in, const int8_t *input, const asc_nn_dims *f,
                          const int8_t *filter, const int32_t *bias, const asc_nn_dims *out, int8_t *output)
{
    /* everything in locals: the int8 output stores may alias any memory for the compiler */
    const int32_t kh = f->h, kw = f->w, c_in = in->c;
    const int32_t off2 = asc_dup16(p->input_offset);
    const int32_t out_off = p->output_offset;
    const int full = p->activation.min == -128 && p->activation.max == 127;
    const int32_t row = in->w * c_in, xstep = p->dilation.w * c_in;
    const int32_t sh = p->stride.h, sw = p->stride.w, ph = p->padding.h, pw = p->padding.w;
    const int32_t dh = p->dilation.h, dw = p->dilation.w, ih = in->h, iw = in->w, nb = in->n;
    const int32_t oh = out->h, ow = out->w;
    const int32_t ystep = dh * row, pxstep = sw * c_in;
    const asc_nn_activation act = p->activation;
    int32_t wt[2 * ASC_DW_MAX_TAPS];
    int32_t c0 = 0;
    for (; c0 + 4 <= c_in; c0 += 4) {
        for (int32_t t = 0; t < kh * kw; t++) {
            const int32_t w4 = asc_read_s8x4(filter + t * c_in + c0);
            wt[2 * t] = __sxtb16(w4);
            wt[2 * t + 1] = asc_sxtb16_ror8(w4);
        }
        int32_t m[4], khi[4], rsh[4], bs[4], sft[4];
        int fast = full;
        for (int32_t k = 0; k < 4; k++) {
            m[k] = q->multiplier[c0 + k];
            sft[k] = q->shift[c0 + k];
            bs[k] = bias ? bias[c0 + k] : 0;
            fast &= asc_rq_prep_off(m[k], sft[k], out_off, &khi[k], &rsh[k]);
        }
        for (int32_t b = 0; b < nb; b++) {
            for (int32_t oy = 0; oy < oh; oy++) {
                const int32_t iy0 = oy * sh - ph;
                /* valid rows: 0 <= iy0 + ky * dh < ih */
                int32_t ky0 = 0, ky1 = kh;
                while (ky0 < kh && iy0 + ky0 * dh < 0) {
                    ky0++;
                }
                while (ky1 > ky0 && iy0 + (ky1 - 1) * dh >= ih) {
                    ky1--;
                }
                const int8_t *xpx = input + (b * ih + iy0 + ky0 * dh) * row + c0 - pw * c_in;
                int8_t *o = output + (b * oh + oy) * ow * c_in + c0;
                const int32_t *wrow = wt + 2 * kw * ky0;
                for (int32_t ox = 0; ox < ow; ox++, o += c_in, xpx += pxstep) {
                    const int32_t ix0 = ox * sw - pw;
                    int32_t kx0 = 0, kx1 = kw;
                    if (ix0 < 0 || ix0 + (kw - 1) * dw >= iw) {
                        while (kx0 < kw && ix0 + kx0 * dw < 0) {
                            kx0++;
                        }
                        while (kx1 > kx0 && ix0 + (kx1 - 1) * dw >= iw) {
                            kx1--;
                        }
                    }
                    const int8_t *xr = xpx;
                    int32_t a0 = bs[0], a1 = bs[1], a2 = bs[2], a3 = bs[3];
                    if (kw == 3 && kx0 == 0 && kx1 == 3) {
                        const int32_t *w = wrow;
                        for (int32_t ky = ky0; ky < ky1; ky++, xr += ystep, w += 6) {
#if ASC_NN_ASM
                            int32_t t0, t1, we, wo;
                            __asm__("ldr     %[t0], [%[x]]\n\t"
                                    "ldrd    %[we], %[wo], [%[w]]\n\t"
                                    "sxtab16 %[t1], %[o], %[t0]\n\t"
                                    "sxtab16 %[t0], %[o], %[t0], ror #8\n\t"
                                    "smlabb  %[a0], %[t1], %[we], %[a0]\n\t"
                                    "smlatt  %[a2], %[t1], %[we], %[a2]\n\t"
                                    "smlabb  %[a1], %[t0], %[wo], %[a1]\n\t"
                                    "smlatt  %[a3], %[t0], %[wo], %[a3]\n\t"
                                    "ldr     %[t0], [%[x], %[xs]]\n\t"
                                    "ldrd    %[we], %[wo], [%[w], #8]\n\t"
                                    "sxtab16 %[t1], %[o], %[t0]\n\t"
                                    "sxtab16 %[t0], %[o], %[t0], ror #8\n\t"
                                    "smlabb  %[a0], %[t1], %[we], %[a0]\n\t"
                                    "smlatt  %[a2], %[t1], %[we], %[a2]\n\t"
                                    "smlabb  %[a1], %[t0], %[wo], %[a1]\n\t"
                                    "smlatt  %[a3], %[t0], %[wo], %[a3]\n\t"
                                    "ldr     %[t0], [%[x], %[xs], lsl #1]\n\t"
                                    "ldrd    %[we], %[wo], [%[w], #16]\n\t"
                                    "sxtab16 %[t1], %[o], %[t0]\n\t"
                                    "sxtab16 %[t0], %[o], %[t0], ror #8\n\t"
                                    "smlabb  %[a0], %[t1], %[we], %[a0]\n\t"
                                    "smlatt  %[a2], %[t1], %[we], %[a2]\n\t"
                                    "smlabb  %[a1], %[t0], %[wo], %[a1]\n\t"
                                    "smlatt  %[a3], %[t0], %[wo], %[a3]\n\t"
                                    : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [t0] "=&r"(t0),
                                      [t1] "=&r"(t1), [we] "=&r"(we), [wo] "=&r"(wo)
                                    : [x] "r"(xr), [xs] "r"(xstep), [w] "r"(w), [o] "r"(off2)
                                    : "memory");
#else
                            ASC_DW_TAP(xr, w[0], w[1]);
                            ASC_DW_TAP(xr + xstep, w[2], w[3]);
                            ASC_DW_TAP(xr + 2 * xstep, w[4], w[5]);
#endif
                        }
                    } else {
                        for (int32_t ky = ky0; ky < ky1; ky++, xr += ystep) {
                            for (int32_t kx = kx0; kx < kx1; kx++) {
                                const int32_t *w = wt + 2 * (ky * kw + kx);
                                ASC_DW_TAP(xr + kx * xstep, w[0], w[1]);
                            }
                        }
                    }
                    if (fast) {
                        o[0] = (int8_t)asc_ssat8(asc_rq_fast(a0, m[0], khi[0], rsh[0]));
                        o[1] = (int8_t)asc_ssat8(asc_rq_fast(a1, m[1], khi[1], rsh[1]));
                        o[2] = (int8_t)asc_ssat8(asc_rq_fast(a2, m[2], khi[2], rsh[2]));
                        o[3] = (int8_t)asc_ssat8(asc_rq_fast(a3, m[3], khi[3], rsh[3]));
                    } else {
                        const int32_t a[4] = {a0, a1, a2, a3};
                        for (int32_t k = 0; k < 4; k++) {
                            const int32_t v = asc_mbqm(a[k], m[k], sft[k]) + out_off;
                            o[k] = asc_clamp_s8(v, &act);
                        }
                    }
                }
            }
        }
    }
    return c0;
}
#endif

asc_nn_status asc_depthwise_conv_s8(const asc_nn_context *ctx, const asc_nn_dw_conv_params *p,
                                    const asc_nn_per_channel_quant *q,
                                    const asc_nn_dims *in, const int8_t *input,
                                    const asc_nn_dims *f, const int8_t *filter,
                                    const int32_t *bias,
                                    const asc_nn_dims *out, int8_t *output)
{
    (void)ctx;
    if (!p || !q || !q->multiplier || !q->shift || !in || !f || !out || !input || !filter || !output) {
        return ASC_NN_ARG_ERROR;
    }
    if (p->ch_mult <= 0 || in->n <= 0 || in->h <= 0 || in->w <= 0 || in->c <= 0 || f->h <= 0 ||
        f->w <= 0 || f->c != in->c * p->ch_mult || out->c != f->c || out->n != in->n || out->h <= 0 ||
        out->w <= 0 || p->stride.h <= 0 || p->stride.w <= 0 || p->dilation.h <= 0 ||
        p->dilation.w <= 0 || !asc_act_ok(&p->activation)) {
        return ASC_NN_ARG_ERROR;
    }
    const int32_t kh = f->h, kw = f->w, oc_n = out->c, cm = p->ch_mult, c_in = in->c;
    int32_t c_done = 0;
#if ASC_NN_USE_DSP
    if (cm == 1 && kh * kw <= ASC_DW_MAX_TAPS && p->input_offset >= -255 && p->input_offset <= 255) {
        c_done = asc_dw_dsp(p, q, in, input, f, filter, bias, out, output);
        if (c_done == c_in) {
            return ASC_NN_OK;
        }
    }
#endif
    for (int32_t b = 0; b < in->n; b++) {
        for (int32_t oy = 0; oy < out->h; oy++) {
            const int32_t iy0 = oy * p->stride.h - p->padding.h;
            for (int32_t ox = 0; ox < out->w; ox++) {
                const int32_t ix0 = ox * p->stride.w - p->padding.w;
                int8_t *o = output + ((b * out->h + oy) * out->w + ox) * oc_n;
                const int32_t c0 = c_done;
                for (int32_t ic = c0; ic < c_in; ic++) {
                    for (int32_t m = 0; m < cm; m++) {
                        const int32_t oc = ic * cm + m;
                        int32_t acc = 0;
                        for (int32_t ky = 0; ky < kh; ky++) {
                            const int32_t iy = iy0 + ky * p->dilation.h;
                            if (iy < 0 || iy >= in->h) {
                                continue;
                            }
                            for (int32_t kx = 0; kx < kw; kx++) {
                                const int32_t ix = ix0 + kx * p->dilation.w;
                                if (ix < 0 || ix >= in->w) {
                                    continue;
                                }
                                const int32_t xv = input[((b * in->h + iy) * in->w + ix) * c_in + ic];
                                const int32_t wv = filter[(ky * kw + kx) * oc_n + oc];
                                acc += (xv + p->input_offset) * wv;
                            }
                        }
                        if (bias) {
                            acc += bias[oc];
                        }
                        acc = asc_mbqm(acc, q->multiplier[oc], q->shift[oc]) + p->output_offset;
                        o[oc] = asc_clamp_s8(acc, &p->activation);
                    }
                }
            }
        }
    }
    return ASC_NN_OK;
}
