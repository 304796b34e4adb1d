/* asc_conv_s8.c - CONV_2D int8 (TFLite reference_integer_ops::ConvPerChannel semantics). */
#include "asc_nn_internal.h"

static int asc_conv_args_ok(const asc_nn_conv_params *p, const asc_nn_per_channel_quant *q,
                            const asc_nn_dims *in, const asc_nn_dims *f, const asc_nn_dims *out,
                            const void *input, const void *filter, const void *output)
{
    if (!p || !q || !q->multiplier || !q->shift || !in || !f || !out || !input || !filter || !output) {
        return 0;
    }
    if (in->n <= 0 || in->h <= 0 || in->w <= 0 || in->c <= 0 || f->n <= 0 || f->h <= 0 ||
        f->w <= 0 || f->c <= 0 || out->n != in->n || out->h <= 0 || out->w <= 0 || out->c != f->n) {
        return 0;
    }
    if (p->stride.h <= 0 || p->stride.w <= 0 || p->dilation.h <= 0 || p->dilation.w <= 0) {
        return 0;
    }
    if (in->c % f->c != 0) {
        return 0;
    }
    const int32_t groups = in->c / f->c;
    if (out->c % groups != 0) {
        return 0;
    }
    return asc_act_ok(&p->activation);
}

#if ASC_NN_USE_DSP
/* ---- DSP GEMM core shared by the 1x1 and the im2col convolution ----------------------------
 * Rows of K int8 values: inputs x_p = x + p*K (p = pixel), weights w_o = w + o*K (o = output
 * channel). acc[p][o] += sum_k (x_p[k] + off) * w_o[k]. Inputs are unpacked with SXTAB16 (adding
 * the input offset, exact: |x + off| <= 255 fits the int16 lanes), weights with SXTB16, products
 * summed by SMLAD: int32 arithmetic wraps exactly like the reference's int32 sum. */
#define ASC_MAC4_2X2(X, W, K)                                                                      \
    do {                                                                                           \
        const int32_t xa_ = asc_read_s8x4(X), xb_ = asc_read_s8x4((X) + (K));                     \
        const int32_t wa_ = asc_read_s8x4(W), wb_ = asc_read_s8x4((W) + (K));                     \
        const int32_t xae_ = __sxtab16(off2, xa_), xao_ = asc_sxtab16_ror8(off2, xa_);             \
        const int32_t xbe_ = __sxtab16(off2, xb_), xbo_ = asc_sxtab16_ror8(off2, xb_);             \
        const int32_t wae_ = __sxtb16(wa_), wao_ = asc_sxtb16_ror8(wa_);                           \
        s00 = __smlad(xae_, wae_, s00);                                                            \
        s00 = __smlad(xao_, wao_, s00);                                                            \
        s10 = __smlad(xbe_, wae_, s10);                                                            \
        s10 = __smlad(xbo_, wao_, s10);                                                            \
        const int32_t wbe_ = __sxtb16(wb_), wbo_ = asc_sxtb16_ror8(wb_);                           \
        s01 = __smlad(xae_, wbe_, s01);                                                            \
        s01 = __smlad(xao_, wbo_, s01);                                                            \
        s11 = __smlad(xbe_, wbe_, s11);                                                            \
        s11 = __smlad(xbo_, wbo_, s11);                                                            \
    } while (0)

#if ASC_NN_ASM
/* One group of 4 inputs for 2 pixels x 2 channels, pointers post-incremented by 4; the second
 * pixel / channel rows are at [ptr + km4] after the increment (km4 = K - 4). 20 instructions. */
#define ASC_ASM_G2X2                                                                               \
    "ldr     %[t1], [%[x]], #4\n\t"                                                              \
    "ldr     %[t0], [%[x], %[km4]]\n\t"                                                          \
    "sxtab16 %[t2], %[o], %[t1]\n\t"                                                             \
    "sxtab16 %[t1], %[o], %[t1], ror #8\n\t"                                                     \
    "sxtab16 %[t3], %[o], %[t0]\n\t"                                                             \
    "sxtab16 %[t0], %[o], %[t0], ror #8\n\t"                                                     \
    "ldr     %[t4], [%[w]], #4\n\t"                                                              \
    "sxtb16  %[t5], %[t4]\n\t"                                                                   \
    "sxtb16  %[t4], %[t4], ror #8\n\t"                                                           \
    "smlad   %[s00], %[t2], %[t5], %[s00]\n\t"                                                   \
    "smlad   %[s00], %[t1], %[t4], %[s00]\n\t"                                                   \
    "smlad   %[s10], %[t3], %[t5], %[s10]\n\t"                                                   \
    "smlad   %[s10], %[t0], %[t4], %[s10]\n\t"                                                   \
    "ldr     %[t4], [%[w], %[km4]]\n\t"                                                          \
    "sxtb16  %[t5], %[t4]\n\t"                                                                   \
    "sxtb16  %[t4], %[t4], ror #8\n\t"                                                           \
    "smlad   %[s01], %[t2], %[t5], %[s01]\n\t"                                                   \
    "smlad   %[s01], %[t1], %[t4], %[s01]\n\t"                                                   \
    "smlad   %[s11], %[t3], %[t5], %[s11]\n\t"                                                   \
    "smlad   %[s11], %[t0], %[t4], %[s11]\n\t"

#define ASC_ASM_G1X2                                                                               \
    "ldr     %[t1], [%[x]], #4\n\t"                                                              \
    "sxtab16 %[t2], %[o], %[t1]\n\t"                                                             \
    "sxtab16 %[t1], %[o], %[t1], ror #8\n\t"                                                     \
    "ldr     %[t4], [%[w]], #4\n\t"                                                              \
    "sxtb16  %[t5], %[t4]\n\t"                                                                   \
    "sxtb16  %[t4], %[t4], ror #8\n\t"                                                           \
    "smlad   %[s0], %[t2], %[t5], %[s0]\n\t"                                                     \
    "smlad   %[s0], %[t1], %[t4], %[s0]\n\t"                                                     \
    "ldr     %[t4], [%[w], %[km4]]\n\t"                                                          \
    "sxtb16  %[t5], %[t4]\n\t"                                                                   \
    "sxtb16  %[t4], %[t4], ror #8\n\t"                                                           \
    "smlad   %[s1], %[t2], %[t5], %[s1]\n\t"                                                     \
    "smlad   %[s1], %[t1], %[t4], %[s1]\n\t"
#endif

/* 2 pixels x 2 output channels. */
ASC_INLINE void asc_gemm_2x2(const int8_t *x, const int8_t *w, int32_t k, int32_t off, int32_t acc[4])
{
    const int32_t off2 = asc_dup16(off);
    int32_t s00 = acc[0], s01 = acc[1], s10 = acc[2], s11 = acc[3];
    const int8_t *x8 = x + (k & ~7);
#if ASC_NN_ASM
    const int32_t km4 = k - 4;
    int32_t t0, t1, t2, t3, t4, t5;
    if (x != x8) {
        __asm__ volatile("1:\n\t" ASC_ASM_G2X2 ASC_ASM_G2X2
                         "ldr     %[t4], %[end]\n\t"
                         "cmp     %[x], %[t4]\n\t"
                         "bne     1b\n\t"
                         : [x] "+r"(x), [w] "+r"(w), [s00] "+r"(s00), [s01] "+r"(s01), [s10] "+r"(s10),
                           [s11] "+r"(s11), [t0] "=&r"(t0), [t1] "=&r"(t1), [t2] "=&r"(t2), [t3] "=&r"(t3),
                           [t4] "=&r"(t4), [t5] "=&r"(t5)
                         : [km4] "r"(km4), [o] "r"(off2), [end] "m"(x8)
                         : "cc", "memory");
    }
    if (k & 4) {
        __asm__ volatile(ASC_ASM_G2X2
                         : [x] "+r"(x), [w] "+r"(w), [s00] "+r"(s00), [s01] "+r"(s01), [s10] "+r"(s10),
                           [s11] "+r"(s11), [t0] "=&r"(t0), [t1] "=&r"(t1), [t2] "=&r"(t2), [t3] "=&r"(t3),
                           [t4] "=&r"(t4), [t5] "=&r"(t5)
                         : [km4] "r"(km4), [o] "r"(off2)
                         : "memory");
    }
#else
    while (x != x8) {
        ASC_MAC4_2X2(x, w, k);
        ASC_MAC4_2X2(x + 4, w + 4, k);
        x += 8;
        w += 8;
    }
    if (k & 4) {
        ASC_MAC4_2X2(x, w, k);
        x += 4;
        w += 4;
    }
#endif
    for (int32_t i = 0; i < (k & 3); i++) {
        const int32_t xa = x[i] + off, xb = x[i + k] + off, wa = w[i], wb = w[i + k];
        s00 += xa * wa;
        s01 += xa * wb;
        s10 += xb * wa;
        s11 += xb * wb;
    }
    acc[0] = s00;
    acc[1] = s01;
    acc[2] = s10;
    acc[3] = s11;
}

#define ASC_MAC4_1X2(X, W, K)                                                                      \
    do {                                                                                           \
        const int32_t xa_ = asc_read_s8x4(X);                                                      \
        const int32_t wa_ = asc_read_s8x4(W), wb_ = asc_read_s8x4((W) + (K));                     \
        const int32_t xae_ = __sxtab16(off2, xa_), xao_ = asc_sxtab16_ror8(off2, xa_);             \
        const int32_t wae_ = __sxtb16(wa_), wao_ = asc_sxtb16_ror8(wa_);                           \
        s0 = __smlad(xae_, wae_, s0);                                                              \
        s0 = __smlad(xao_, wao_, s0);                                                              \
        const int32_t wbe_ = __sxtb16(wb_), wbo_ = asc_sxtb16_ror8(wb_);                           \
        s1 = __smlad(xae_, wbe_, s1);                                                              \
        s1 = __smlad(xao_, wbo_, s1);                                                              \
    } while (0)

/* 1 pixel x 2 output channels. */
ASC_INLINE void asc_gemm_1x2(const int8_t *x, const int8_t *w, int32_t k, int32_t off, int32_t acc[2])
{
    const int32_t off2 = asc_dup16(off);
    int32_t s0 = acc[0], s1 = acc[1];
    const int8_t *x8 = x + (k & ~7);
#if ASC_NN_ASM
    const int32_t km4 = k - 4;
    int32_t t1, t2, t4, t5;
    if (x != x8) {
        __asm__ volatile("1:\n\t" ASC_ASM_G1X2 ASC_ASM_G1X2
                         "cmp     %[x], %[end]\n\t"
                         "bne     1b\n\t"
                         : [x] "+r"(x), [w] "+r"(w), [s0] "+r"(s0), [s1] "+r"(s1), [t1] "=&r"(t1),
                           [t2] "=&r"(t2), [t4] "=&r"(t4), [t5] "=&r"(t5)
                         : [km4] "r"(km4), [o] "r"(off2), [end] "r"(x8)
                         : "cc", "memory");
    }
    if (k & 4) {
        __asm__ volatile(ASC_ASM_G1X2
                         : [x] "+r"(x), [w] "+r"(w), [s0] "+r"(s0), [s1] "+r"(s1), [t1] "=&r"(t1),
                           [t2] "=&r"(t2), [t4] "=&r"(t4), [t5] "=&r"(t5)
                         : [km4] "r"(km4), [o] "r"(off2)
                         : "memory");
    }
#else
    while (x != x8) {
        ASC_MAC4_1X2(x, w, k);
        ASC_MAC4_1X2(x + 4, w + 4, k);
        x += 8;
        w += 8;
    }
    if (k & 4) {
        ASC_MAC4_1X2(x, w, k);
        x += 4;
        w += 4;
    }
#endif
    for (int32_t i = 0; i < (k & 3); i++) {
        const int32_t xa = x[i] + off;
        s0 += xa * w[i];
        s1 += xa * w[i + k];
    }
    acc[0] = s0;
    acc[1] = s1;
}

/* Requantisation parameters of one output channel. */
typedef struct {
    int32_t m, s, khi, rsh, fast;
} asc_rq_ch;

ASC_INLINE void asc_rq_load(asc_rq_ch *c, const asc_nn_per_channel_quant *q, int32_t oc, int32_t out_off)
{
    c->m = q->multiplier[oc];
    c->s = q->shift[oc];
    c->fast = asc_rq_prep_off(c->m, c->s, out_off, &c->khi, &c->rsh);
}

/* requantise, add the output offset, clamp (full: the activation is the whole int8 range) */
ASC_INLINE int8_t asc_rq_out(int32_t acc, const asc_rq_ch *c, int fast, int full, int32_t out_off,
                             const asc_nn_activation *act)
{
    /* the fast form has the output offset folded in */
    const int32_t v = fast ? asc_rq_fast(acc, c->m, c->khi, c->rsh) : asc_mbqm(acc, c->m, c->s) + out_off;
    if (full) {
        return (int8_t)asc_ssat8(v);
    }
    return asc_clamp_s8(v, act);
}

/* out[p * out_stride + o] for n_px pixels (rows x + p*k) and output channels [oc0, oc0 + 2). */
ASC_INLINE void asc_gemm_px_loop(const int8_t *x, int32_t n_px, const int8_t *w, int32_t k, int32_t off,
                                 int32_t b0, int32_t b1, const asc_rq_ch *c0, const asc_rq_ch *c1,
                                 int8_t *out, int32_t out_stride, int32_t out_off,
                                 const asc_nn_activation *act, int fast, int full)
{
    int32_t p = 0;
    for (; p + 2 <= n_px; p += 2) {
        int32_t acc[4] = {b0, b1, b0, b1};
        asc_gemm_2x2(x, w, k, off, acc);
        out[0] = asc_rq_out(acc[0], c0, fast, full, out_off, act);
        out[1] = asc_rq_out(acc[1], c1, fast, full, out_off, act);
        out[out_stride] = asc_rq_out(acc[2], c0, fast, full, out_off, act);
        out[out_stride + 1] = asc_rq_out(acc[3], c1, fast, full, out_off, act);
        x += 2 * k;
        out += 2 * out_stride;
    }
    if (p < n_px) {
        int32_t acc[2] = {b0, b1};
        asc_gemm_1x2(x, w, k, off, acc);
        out[0] = asc_rq_out(acc[0], c0, fast, full, out_off, act);
        out[1] = asc_rq_out(acc[1], c1, fast, full, out_off, act);
    }
}

/* GEMM of n_px contiguous input rows (K = k int8 each) with n_oc filter rows: output pixel p,
 * channel o at out[p * out_stride + o]. Exactly the reference's per-element arithmetic. */
static void asc_gemm_s8(const int8_t *x, int32_t n_px, const int8_t *w, int32_t n_oc, int32_t k,
                        const int32_t *bias, const asc_nn_per_channel_quant *q, int32_t off, int32_t out_off,
                        const asc_nn_activation *act, int8_t *out, int32_t out_stride)
{
    const int full = act->min == -128 && act->max == 127;
    int32_t oc = 0;
    for (; oc + 2 <= n_oc; oc += 2) {
        asc_rq_ch c0, c1;
        asc_rq_load(&c0, q, oc, out_off);
        asc_rq_load(&c1, q, oc + 1, out_off);
        const int32_t b0 = bias ? bias[oc] : 0, b1 = bias ? bias[oc + 1] : 0;
        const int8_t *wr = w + oc * k;
        if (c0.fast && c1.fast) {
            if (full) {
                asc_gemm_px_loop(x, n_px, wr, k, off, b0, b1, &c0, &c1, out + oc, out_stride, out_off, act, 1, 1);
            } else {
                asc_gemm_px_loop(x, n_px, wr, k, off, b0, b1, &c0, &c1, out + oc, out_stride, out_off, act, 1, 0);
            }
        } else {
            asc_gemm_px_loop(x, n_px, wr, k, off, b0, b1, &c0, &c1, out + oc, out_stride, out_off, act, 0, 0);
        }
    }
    if (oc < n_oc) {
        /* odd channel count: the last channel one pixel at a time */
        const int8_t *wr = w + oc * k;
        for (int32_t p = 0; p < n_px; p++) {
            int32_t acc = asc_dot_s8(x + p * k, wr, k, off, 0, bias ? bias[oc] : 0);
            acc = asc_mbqm(acc, q->multiplier[oc], q->shift[oc]) + out_off;
            out[p * out_stride + oc] = asc_clamp_s8(acc, act);
        }
    }
}
#endif

int32_t asc_convolve_s8_get_buffer_size(const asc_nn_dims *input_dims, const asc_nn_dims *filter_dims)
{
    (void)input_dims;
    /* im2col buffer of two output pixels' patches (used by the DSP path; same size in all builds).
     * The DSP path also runs (one pixel at a time) with a buffer of one patch. */
    return 2 * filter_dims->h * filter_dims->w * filter_dims->c;
}

#if ASC_NN_USE_DSP
static inline void asc_copy_s8(int8_t *dst, const int8_t *src, int32_t n)
{
    for (; n >= 4; n -= 4, dst += 4, src += 4) {
        memcpy(dst, src, 4);
    }
    for (; n > 0; n--) {
        *dst++ = *src++;
    }
}

/* im2col of output pixel (oy, ox) of batch b (groups == 1): kh x kw x c bytes, padded taps = zp. */
static void asc_im2col(const asc_nn_conv_params *p, const asc_nn_dims *in, const int8_t *input, int32_t kh,
                       int32_t kw, int32_t b, int32_t oy, int32_t ox, int8_t zp, int8_t *dst)
{
    const int32_t c = in->c, iy0 = oy * p->stride.h - p->padding.h, ix0 = ox * p->stride.w - p->padding.w;
    const int32_t dh = p->dilation.h, dw = p->dilation.w;
    const int row_ok = dw == 1 && ix0 >= 0 && ix0 + kw <= in->w;
    for (int32_t ky = 0; ky < kh; ky++) {
        const int32_t iy = iy0 + ky * dh;
        if (iy < 0 || iy >= in->h) {
            memset(dst, zp, (size_t)(kw * c));
            dst += kw * c;
            continue;
        }
        const int8_t *src = input + ((b * in->h + iy) * in->w) * c;
        if (row_ok) {
            asc_copy_s8(dst, src + ix0 * c, kw * c);
            dst += kw * c;
            continue;
        }
        for (int32_t kx = 0; kx < kw; kx++, dst += c) {
            const int32_t ix = ix0 + kx * dw;
            if (ix < 0 || ix >= in->w) {
                memset(dst, zp, (size_t)c);
            } else {
                asc_copy_s8(dst, src + ix * c, c);
            }
        }
    }
}
#endif

asc_nn_status asc_convolve_s8(const asc_nn_context *ctx, const asc_nn_conv_params *p,
                              const asc_nn_per_channel_quant *q,
                              const asc_nn_dims *in, const int8_t *input,
                              const asc_nn_dims *f, const int8_t *filter,
                              const int32_t *bias,
                              const asc_nn_dims *out, int8_t *output)
{
    if (!asc_conv_args_ok(p, q, in, f, out, input, filter, output)) {
        return ASC_NN_ARG_ERROR;
    }
    const int32_t fc = f->c;
    const int32_t groups = in->c / fc;
    const int32_t per_group = out->c / groups;
    const int32_t kh = f->h, kw = f->w;
    const int32_t patch = kh * kw * fc;
#if ASC_NN_USE_DSP
    int8_t *col = (ctx && ctx->buf && ctx->size >= patch) ? (int8_t *)ctx->buf : (int8_t *)0;
    /* A padded tap filled with the input zero point (= -input_offset) contributes exactly 0. */
    const int8_t zp = (int8_t)(-p->input_offset);
    if (p->input_offset < -127 || p->input_offset > 128) {
        col = (int8_t *)0;
    }
    if (col && groups == 1) {
        /* im2col of two output pixels (one when the buffer holds one patch), then the GEMM core */
        const int32_t npx = ctx->size >= 2 * patch ? 2 : 1;
        const int32_t total = in->n * out->h * out->w;
        for (int32_t i = 0; i < total; i += npx) {
            const int32_t n_now = ASC_NN_MIN(npx, total - i);
            for (int32_t j = 0; j < n_now; j++) {
                const int32_t pix = i + j, ox = pix % out->w, oy = (pix / out->w) % out->h, b = pix / (out->w * out->h);
                asc_im2col(p, in, input, kh, kw, b, oy, ox, zp, col + j * patch);
            }
            asc_gemm_s8(col, n_now, filter, out->c, patch, bias, q, p->input_offset, p->output_offset,
                        &p->activation, output + i * out->c, out->c);
        }
        return ASC_NN_OK;
    }
#else
    (void)ctx;
    (void)patch;
#endif
    for (int32_t b = 0; b < in->n; b++) {
        for (int32_t oy = 0; oy < out->h; oy++) {
            const int32_t iy0 = oy * p->stride.h - p->padding.h;
            for (int32_t ox = 0; ox < out->w; ox++) {
                const int32_t ix0 = ox * p->stride.w - p->padding.w;
                int8_t *o = output + ((b * out->h + oy) * out->w + ox) * out->c;
                for (int32_t g = 0; g < groups; g++) {
#if ASC_NN_USE_DSP
                    if (col) {
                        int8_t *dst = col;
                        for (int32_t ky = 0; ky < kh; ky++) {
                            const int32_t iy = iy0 + ky * p->dilation.h;
                            for (int32_t kx = 0; kx < kw; kx++) {
                                const int32_t ix = ix0 + kx * p->dilation.w;
                                if (iy < 0 || iy >= in->h || ix < 0 || ix >= in->w) {
                                    memset(dst, zp, (size_t)fc);
                                } else {
                                    memcpy(dst, input + ((b * in->h + iy) * in->w + ix) * in->c + g * fc,
                                           (size_t)fc);
                                }
                                dst += fc;
                            }
                        }
                        for (int32_t oc = g * per_group; oc < (g + 1) * per_group; oc++) {
                            int32_t acc = asc_dot_s8(col, filter + oc * patch, patch, p->input_offset, 0, 0);
                            if (bias) {
                                acc += bias[oc];
                            }
                            acc = asc_mbqm(acc, q->multiplier[oc], q->shift[oc]) + p->output_offset;
                            o[oc] = asc_clamp_s8(acc, &p->activation);
                        }
                        continue;
                    }
#endif
                    for (int32_t oc = g * per_group; oc < (g + 1) * per_group; oc++) {
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
                                acc = asc_dot_s8(input + ((b * in->h + iy) * in->w + ix) * in->c + g * fc,
                                                 filter + ((oc * kh + ky) * kw + kx) * fc, fc,
                                                 p->input_offset, 0, acc);
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

asc_nn_status asc_convolve_1x1_s8(const asc_nn_context *ctx, const asc_nn_conv_params *p,
                                  const asc_nn_per_channel_quant *q,
                                  const asc_nn_dims *in, const int8_t *input,
                                  const asc_nn_dims *f, const int8_t *filter,
                                  const int32_t *bias,
                                  const asc_nn_dims *out, int8_t *output)
{
    (void)ctx;
    if (!asc_conv_args_ok(p, q, in, f, out, input, filter, output)) {
        return ASC_NN_ARG_ERROR;
    }
    if (f->h != 1 || f->w != 1 || f->c != in->c || p->padding.h != 0 || p->padding.w != 0) {
        return ASC_NN_ARG_ERROR;
    }
    if ((out->h - 1) * p->stride.h >= in->h || (out->w - 1) * p->stride.w >= in->w) {
        return ASC_NN_ARG_ERROR;
    }
    const int32_t c_in = in->c;
#if ASC_NN_USE_DSP
    if (p->input_offset >= -255 && p->input_offset <= 255) {
        if (p->stride.h == 1 && p->stride.w == 1) {
            /* all pixels are contiguous rows of c_in values */
            asc_gemm_s8(input, in->n * in->h * in->w, filter, out->c, c_in, bias, q, p->input_offset,
                        p->output_offset, &p->activation, output, out->c);
            return ASC_NN_OK;
        }
        for (int32_t b = 0; b < in->n; b++) {
            for (int32_t oy = 0; oy < out->h; oy++) {
                for (int32_t ox = 0; ox < out->w; ox++) {
                    const int8_t *x = input + ((b * in->h + oy * p->stride.h) * in->w + ox * p->stride.w) * c_in;
                    asc_gemm_s8(x, 1, filter, out->c, c_in, bias, q, p->input_offset, p->output_offset,
                                &p->activation, output + ((b * out->h + oy) * out->w + ox) * out->c, out->c);
                }
            }
        }
        return ASC_NN_OK;
    }
#endif
    for (int32_t b = 0; b < in->n; b++) {
        for (int32_t oy = 0; oy < out->h; oy++) {
            for (int32_t ox = 0; ox < out->w; ox++) {
                const int8_t *x = input + ((b * in->h + oy * p->stride.h) * in->w + ox * p->stride.w) * c_in;
                int8_t *o = output + ((b * out->h + oy) * out->w + ox) * out->c;
                for (int32_t oc = 0; oc < out->c; oc++) {
                    int32_t acc = asc_dot_s8(x, filter + oc * c_in, c_in, p->input_offset, 0, 0);
                    if (bias) {
                        acc += bias[oc];
                    }
                    acc = asc_mbqm(acc, q->multiplier[oc], q->shift[oc]) + p->output_offset;
                    o[oc] = asc_clamp_s8(acc, &p->activation);
                }
            }
        }
    }
    return ASC_NN_OK;
}

asc_nn_status asc_convolve_wrapper_s8(const asc_nn_context *ctx, const asc_nn_conv_params *p,
                                      const asc_nn_per_channel_quant *q,
                                      const asc_nn_dims *in, const int8_t *input,
                                      const asc_nn_dims *f, const int8_t *filter,
                                      const int32_t *bias,
                                      const asc_nn_dims *out, int8_t *output)
{
    if (p && in && f && f->h == 1 && f->w == 1 && f->c == in->c && p->padding.h == 0 &&
        p->padding.w == 0) {
        return asc_convolve_1x1_s8(ctx, p, q, in, input, f, filter, bias, out, output);
    }
    return asc_convolve_s8(ctx, p, q, in, input, f, filter, bias, out, output);
}
