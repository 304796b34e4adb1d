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
/* ch_mult == 1, channels [c, c+4): accumulate two taps at once per channel with SMLAD. */
static inline void asc_dw_pair4(const int8_t *x0p, const int8_t *x1p, const int8_t *w0p,
                                const int8_t *w1p, int32_t off2, int32_t acc[4])
{
    const int32_t x0 = asc_read_s8x4(x0p), x1 = asc_read_s8x4(x1p);
    const int32_t w0 = asc_read_s8x4(w0p), w1 = asc_read_s8x4(w1p);
    const int32_t a0e = __sxtab16(off2, x0), a0o = __sxtab16(off2, asc_ror8(x0));
    const int32_t a1e = __sxtab16(off2, x1), a1o = __sxtab16(off2, asc_ror8(x1));
    const int32_t b0e = __sxtb16(w0), b0o = __sxtb16(asc_ror8(w0));
    const int32_t b1e = __sxtb16(w1), b1o = __sxtb16(asc_ror8(w1));
    acc[0] = __smlad(asc_pack_lo(a0e, a1e), asc_pack_lo(b0e, b1e), acc[0]);
    acc[2] = __smlad(asc_pack_hi(a0e, a1e), asc_pack_hi(b0e, b1e), acc[2]);
    acc[1] = __smlad(asc_pack_lo(a0o, a1o), asc_pack_lo(b0o, b1o), acc[1]);
    acc[3] = __smlad(asc_pack_hi(a0o, a1o), asc_pack_hi(b0o, b1o), acc[3]);
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
    for (int32_t b = 0; b < in->n; b++) {
        for (int32_t oy = 0; oy < out->h; oy++) {
            const int32_t iy0 = oy * p->stride.h - p->padding.h;
            for (int32_t ox = 0; ox < out->w; ox++) {
                const int32_t ix0 = ox * p->stride.w - p->padding.w;
                int8_t *o = output + ((b * out->h + oy) * out->w + ox) * oc_n;
                int32_t c0 = 0;
#if ASC_NN_USE_DSP
                if (cm == 1) {
                    const int32_t off2 = asc_dup16(p->input_offset);
                    for (; c0 + 4 <= c_in; c0 += 4) {
                        int32_t acc[4] = {0, 0, 0, 0};
                        const int8_t *px = (const int8_t *)0, *pw = (const int8_t *)0;
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
                                const int8_t *x = input + ((b * in->h + iy) * in->w + ix) * c_in + c0;
                                const int8_t *w = filter + (ky * kw + kx) * oc_n + c0;
                                if (px) {
                                    asc_dw_pair4(px, x, pw, w, off2, acc);
                                    px = (const int8_t *)0;
                                } else {
                                    px = x;
                                    pw = w;
                                }
                            }
                        }
                        if (px) {
                            for (int32_t k = 0; k < 4; k++) {
                                acc[k] += ((int32_t)px[k] + p->input_offset) * (int32_t)pw[k];
                            }
                        }
                        for (int32_t k = 0; k < 4; k++) {
                            int32_t a = acc[k] + (bias ? bias[c0 + k] : 0);
                            a = asc_mbqm(a, q->multiplier[c0 + k], q->shift[c0 + k]) + p->output_offset;
                            o[c0 + k] = asc_clamp_s8(a, &p->activation);
                        }
                    }
                }
#endif
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
