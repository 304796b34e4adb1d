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
 * its weights unpacked once into a small table; does the groups in [c_first, c_last) and returns
 * the end of the last group done. Per channel exactly the reference sum (int32, wrapping) and requantisation. */
static int32_t asc_dw_dsp(const asc_nn_dw_conv_params *p, const asc_nn_per_channel_quant *q,
                          const asc_nn_dims *in, const int8_t *input, const asc_nn_dims *f,
                          const int8_t *filter, const int32_t *bias, const asc_nn_dims *out, int8_t *output,
                          int32_t c_first, int32_t c_last)
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
    int32_t c0 = c_first;
    for (; c0 + 4 <= c_last; c0 += 4) {
        for (int32_t t = 0; t < kh * kw; t++) {
            const int32_t w4 = asc_read_s8x4(filter + t * c_in + c0);
            wt[2 * t] = __sxtb16(w4);
            wt[2 * t + 1] = asc_sxtb16_ror8(w4);
        }
        int32_t m[4], khi[4], rsh[4], bs[4], sft[4];
        int fast = 1;
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
                    if (fast && full) {
                        o[0] = (int8_t)asc_ssat8(asc_rq_fast(a0, m[0], khi[0], rsh[0]));
                        o[1] = (int8_t)asc_ssat8(asc_rq_fast(a1, m[1], khi[1], rsh[1]));
                        o[2] = (int8_t)asc_ssat8(asc_rq_fast(a2, m[2], khi[2], rsh[2]));
                        o[3] = (int8_t)asc_ssat8(asc_rq_fast(a3, m[3], khi[3], rsh[3]));
                    } else if (fast) {  /* a fused ReLU / ReLU6 range: the same value, clamped */
                        o[0] = asc_clamp_s8(asc_rq_fast(a0, m[0], khi[0], rsh[0]), &act);
                        o[1] = asc_clamp_s8(asc_rq_fast(a1, m[1], khi[1], rsh[1]), &act);
                        o[2] = asc_clamp_s8(asc_rq_fast(a2, m[2], khi[2], rsh[2]), &act);
                        o[3] = asc_clamp_s8(asc_rq_fast(a3, m[3], khi[3], rsh[3]), &act);
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

/* ---- 3x3 depthwise on a widened, zero-padded row buffer ("dw3") ----------------------------
 * Per group of 4 channels [c0, c0+4) and up to 4 output rows (stride 1; 2 at stride 2), the input
 * rows of the group are widened into a stack buffer: row r (input row oy*stride_h - pad_top + r
 * for the first output row oy of the batch; output row oy + j starts at row j*stride_h), column j
 * (input column j - pad_left) holds two words: int16 lanes (x + input_offset) of channels (c0, c0+2)
 * and (c0+1, c0+3). Columns and rows outside the image are 0 lanes: they contribute exactly 0,
 * which is the reference's skipped tap, so borders need no special code. The buffer pitch is a
 * constant (ASC_DW3_PITCH bytes) and every tap is one LDRD at an immediate offset.
 * Weights are widened and doubled (2w: |2w| <= 256 fits the int16 lanes), the bias doubled, so the
 * accumulator is 2 * acc exactly (|acc| < 2^30 is checked per channel: no wrap-around) and the
 * requantisation is the SMMLAR form of the pw16 GEMM (asc_conv_s8.c): per output
 * SSAT8((SMMLAR(A, m, kc + (A >> 31))) >> r), kc = 2^(r-1) + out_off 2^r, exact for m >= 0,
 * 1 <= r <= 20, |out_off| <= 256, full int8 activation range. Per output pixel (4 channels):
 * 9 x (LDRD + LDRD + 4 SMLABB/SMLATT) + 4 x 6 requantise/store (LDM of kc, m, r) + 6 more. */
#define ASC_DW3_COLS 62                    /* buffer columns per row */
#define ASC_DW3_ROWS 6                     /* buffer rows: 4 output rows at stride 1, 2 at stride 2 */
#define ASC_DW3_PITCH (ASC_DW3_COLS * 8)   /* bytes per buffer row (2 * pitch + 16 <= 1020: LDRD offsets) */

/* Table of one group (int32 words), addressed from t = its word 12: t[-12 + 3k .. -10 + 3k]
 * (kc, m, r) of channel c0 + k, t[0, 4) 2*bias and t[4, 8) the same again (the two pixels'
 * accumulators of asc_dw3_row2 start from one LDM), t[8, 26) 9 taps x 2 words of doubled weights. */
#define ASC_DW3_TABLE 38
typedef char asc_dw3_table_check[ASC_DW3_TABLE == ASC_DW3_TABLE_WORDS ? 1 : -1];

#if ASC_NN_ASM
void asc_dw3_row(const int32_t *x, const int32_t *table, int8_t *out, const int32_t *x_end, int32_t out_step,
                 int32_t x_step);

#define ASC_DW3_TAP(OFFX, OFFW)                                                                    \
    "ldrd    r8, r9, [r0, #" OFFX "]\n\t"                                                          \
    "ldrd    r10, r11, [r1, #" OFFW "]\n\t"                                                        \
    "smlabb  r4, r8, r10, r4\n\t"                                                                  \
    "smlatt  r6, r8, r10, r6\n\t"                                                                  \
    "smlabb  r5, r9, r11, r5\n\t"                                                                  \
    "smlatt  r7, r9, r11, r7\n\t"
#define ASC_DW3_RQ(ACC, K)                                                                         \
    "ldmia   r1!, {r8, r9, r10}\n\t" /* kc, m, r of the channel */                               \
    "add     r8, r8, " ACC ", asr #31\n\t"                                                         \
    "smmlar  r8, " ACC ", r9, r8\n\t"                                                              \
    "asr     r8, r8, r10\n\t"                                                                      \
    "ssat    r8, #8, r8\n\t"                                                                       \
    "strb    r8, [r2, #" K "]\n\t"

/* r0 x (buffer column of the pixel's first tap), r1 table (its word 12, the bias; the
 * requantisation walks r1 over the constants below it and back), r2 out, r3 x_end, r12 out_step,
 * lr x_step; r4-r7 accumulators of channels c0..c0+3, r8-r11 operands. Offsets: pitch 496. */
__asm__(".pushsection .text.asc_dw3_row,\"ax\",%progbits\n\t"
        ".syntax unified\n\t"
        ".thumb\n\t"
        ".p2align 2\n\t"
        ".global asc_dw3_row\n\t"
        ".type asc_dw3_row, %function\n\t"
        ".thumb_func\n"
        "asc_dw3_row:\n\t"
        "push    {r4-r11, lr}\n\t"
        "ldr     r12, [sp, #36]\n\t"
        "ldr     lr, [sp, #40]\n"
        "1:\n\t"
        "ldm     r1, {r4-r7}\n\t"
        ASC_DW3_TAP("0", "32") ASC_DW3_TAP("8", "40") ASC_DW3_TAP("16", "48")
        ASC_DW3_TAP("496", "56") ASC_DW3_TAP("504", "64") ASC_DW3_TAP("512", "72")
        ASC_DW3_TAP("992", "80") ASC_DW3_TAP("1000", "88") ASC_DW3_TAP("1008", "96")
        "sub     r1, r1, #48\n\t"
        ASC_DW3_RQ("r4", "0")
        ASC_DW3_RQ("r5", "1")
        ASC_DW3_RQ("r6", "2")
        ASC_DW3_RQ("r7", "3")
        "add     r2, r2, r12\n\t"
        "add     r0, r0, lr\n\t"
        "cmp     r0, r3\n\t"
        "bne     1b\n\t"
        "pop     {r4-r11, pc}\n\t"
        ".size asc_dw3_row, .-asc_dw3_row\n\t"
        ".popsection\n");
typedef char asc_dw3_pitch_check[ASC_DW3_PITCH == 496 ? 1 : -1];

/* asc_dw3_row2_s<sw>(x, table, x_end, out, out_step, rows, x_row, x_skip, out_skip): the pixel
 * pairs of `rows` output rows, two output pixels (4 channels each) per iteration, horizontal stride
 * sw = 1 or 2; x = the buffer column of pixel 0's first tap in the middle of the three rows of the
 * first output row (taps at -pitch, 0, +pitch: every LDRD offset fits +-1020), x_end the end of its
 * pairs; per further row x_end += x_row, x = old x_end + x_skip, out += out_skip (bytes). Per pixel
 * pair: LDM of the 8 biases, per kernel row the three taps' weights loaded once for both pixels
 * (sw 1: 7 LDRD + 24 SMLABB/SMLATT, the middle columns shared; sw 2: 9 LDRD), then the SMMLAR
 * requantisation of 8 outputs with one LDM of (kc, m, r) per channel; one LDM of (x_end, out,
 * out_step) from the stack after channel 0, the loop test right there (nothing below sets flags),
 * pixel 1 stored at [out, out_step], pixel 0 with post-index #1 (#-3 on channel 3), one STR of
 * the next out: 6 instructions of loop / out handling per pair (the one-row version: 10, counted;
 * measured, one clip, with the row loop moved in: asc_dw3_row2_s1 3.93 M -> 3.83 M, _s2 0.643 M
 * -> 0.629 M).
 * Registers: r0 x, r1 table, r2-r5 pixel 0's accumulators (channels c0..c0+3), r6-r9 pixel 1's,
 * r10/r11 a column's two words, r12/lr a tap's two weight words; x_end, out, out_step at [sp]. */
/* a tap's two weight words (table offset O bytes) / a buffer column's two words (x offset O) */
#define ASC_DW3_LW(O) "ldrd    r12, lr, [r1, #" O "]\n\t"
#define ASC_DW3_LX(O) "ldrd    r10, r11, [r0, #" O "]\n\t"
#define ASC_DW3_P0                                                                                 \
    "smlabb  r2, r10, r12, r2\n\t"                                                                 \
    "smlatt  r4, r10, r12, r4\n\t"                                                                 \
    "smlabb  r3, r11, lr, r3\n\t"                                                                  \
    "smlatt  r5, r11, lr, r5\n\t"
#define ASC_DW3_P1                                                                                 \
    "smlabb  r6, r10, r12, r6\n\t"                                                                 \
    "smlatt  r8, r10, r12, r8\n\t"                                                                 \
    "smlabb  r7, r11, lr, r7\n\t"                                                                  \
    "smlatt  r9, r11, lr, r9\n\t"
/* channels 1..3: (kc, m, r) in r2, r6, r12; result in lr */
#define ASC_DW3_RQ2(ACC)                                                                           \
    "add     lr, r2, " ACC ", asr #31\n\t"                                                         \
    "smmlar  lr, " ACC ", r6, lr\n\t"                                                              \
    "asr     lr, lr, r12\n\t"                                                                      \
    "ssat    lr, #8, lr\n\t"
#define ASC_DW3_ROW2_FN(NAME, MACS, XADV)                                                          \
    __asm__(".pushsection .text." NAME ",\"ax\",%progbits\n\t"                                     \
            ".syntax unified\n\t"                                                                  \
            ".thumb\n\t"                                                                           \
            ".p2align 2\n\t"                                                                       \
            ".global " NAME "\n\t"                                                                 \
            ".type " NAME ", %function\n\t"                                                        \
            ".thumb_func\n" NAME ":\n\t"                                                           \
            "push    {r4-r11, lr}\n\t"                                                             \
            "ldr     r4, [sp, #36]\n\t" /* out_step */                                             \
            "push    {r2, r3, r4}\n" /* [sp] x_end, out, out_step; rows, x_row, x_skip, out_skip at [sp, #52] */ \
            "1:\n\t"                                                                               \
            "ldm     r1, {r2-r9}\n\t"                                                              \
            MACS                                                                                   \
            "sub     r1, r1, #48\n\t"                                                              \
            "ldmia   r1!, {r10, r11, r12}\n\t"                                                     \
            "add     lr, r10, r2, asr #31\n\t"                                                     \
            "smmlar  lr, r2, r11, lr\n\t"                                                          \
            "asr     lr, lr, r12\n\t"                                                              \
            "ssat    lr, #8, lr\n\t"                                                               \
            "add     r2, r10, r6, asr #31\n\t"                                                     \
            "smmlar  r2, r6, r11, r2\n\t"                                                          \
            "asr     r2, r2, r12\n\t"                                                              \
            "ssat    r2, #8, r2\n\t"                                                               \
            "ldm     sp, {r6, r10, r11}\n\t" /* x_end, out, out_step */                            \
            "add     r0, r0, #" XADV "\n\t"                                                        \
            "cmp     r0, r6\n\t"                                                                   \
            "strb    r2, [r10, r11]\n\t"                                                           \
            "strb    lr, [r10], #1\n\t"                                                            \
            "ldmia   r1!, {r2, r6, r12}\n\t"                                                       \
            ASC_DW3_RQ2("r7") "strb    lr, [r10, r11]\n\t"                                         \
            ASC_DW3_RQ2("r3") "strb    lr, [r10], #1\n\t"                                          \
            "ldmia   r1!, {r2, r6, r12}\n\t"                                                       \
            ASC_DW3_RQ2("r8") "strb    lr, [r10, r11]\n\t"                                         \
            ASC_DW3_RQ2("r4") "strb    lr, [r10], #1\n\t"                                          \
            "ldmia   r1!, {r2, r6, r12}\n\t"                                                       \
            ASC_DW3_RQ2("r9") "strb    lr, [r10, r11]\n\t"                                         \
            ASC_DW3_RQ2("r5") "strb    lr, [r10], #-3\n\t"                                         \
            "add     r10, r10, r11, lsl #1\n\t"                                                    \
            "str     r10, [sp, #4]\n\t"                                                            \
            "bne     1b\n\t"                                                                       \
            "ldr     r2, [sp, #52]\n\t" /* rows */                                                 \
            "subs    r2, r2, #1\n\t"                                                               \
            "beq     2f\n\t"                                                                       \
            "str     r2, [sp, #52]\n\t"                                                            \
            "ldrd    r3, r4, [sp, #56]\n\t" /* x_row, x_skip */                                    \
            "ldr     r5, [sp, #64]\n\t" /* out_skip */                                             \
            "add     r6, r0, r3\n\t"                                                               \
            "add     r0, r0, r4\n\t"                                                               \
            "add     r10, r10, r5\n\t"                                                             \
            "strd    r6, r10, [sp]\n\t"                                                            \
            "b       1b\n"                                                                         \
            "2:\n\t"                                                                               \
            "add     sp, sp, #12\n\t"                                                              \
            "pop     {r4-r11, pc}\n\t"                                                             \
            ".size " NAME ", .-" NAME "\n\t"                                                       \
            ".popsection\n")

void asc_dw3_row2_s1(const int32_t *x, const int32_t *table, const int32_t *x_end, int8_t *out, int32_t out_step,
                     int32_t rows, int32_t x_row, int32_t x_skip, int32_t out_skip);
void asc_dw3_row2_s2(const int32_t *x, const int32_t *table, const int32_t *x_end, int8_t *out, int32_t out_step,
                     int32_t rows, int32_t x_row, int32_t x_skip, int32_t out_skip);
ASC_DW3_ROW2_FN("asc_dw3_row2_s1",
        ASC_DW3_LW("32") ASC_DW3_LX("-496") ASC_DW3_P0 ASC_DW3_LX("-488") ASC_DW3_P1
        ASC_DW3_LW("40") ASC_DW3_P0 ASC_DW3_LX("-480") ASC_DW3_P1
        ASC_DW3_LW("48") ASC_DW3_P0 ASC_DW3_LX("-472") ASC_DW3_P1
        ASC_DW3_LW("56") ASC_DW3_LX("0") ASC_DW3_P0 ASC_DW3_LX("8") ASC_DW3_P1
        ASC_DW3_LW("64") ASC_DW3_P0 ASC_DW3_LX("16") ASC_DW3_P1
        ASC_DW3_LW("72") ASC_DW3_P0 ASC_DW3_LX("24") ASC_DW3_P1
        ASC_DW3_LW("80") ASC_DW3_LX("496") ASC_DW3_P0 ASC_DW3_LX("504") ASC_DW3_P1
        ASC_DW3_LW("88") ASC_DW3_P0 ASC_DW3_LX("512") ASC_DW3_P1
        ASC_DW3_LW("96") ASC_DW3_P0 ASC_DW3_LX("520") ASC_DW3_P1, "16");
ASC_DW3_ROW2_FN("asc_dw3_row2_s2",
        ASC_DW3_LW("32") ASC_DW3_LX("-496") ASC_DW3_P0 ASC_DW3_LX("-480") ASC_DW3_P1
        ASC_DW3_LW("40") ASC_DW3_LX("-488") ASC_DW3_P0 ASC_DW3_LX("-472") ASC_DW3_P1
        ASC_DW3_LW("48") ASC_DW3_LX("-480") ASC_DW3_P0 ASC_DW3_LX("-464") ASC_DW3_P1
        ASC_DW3_LW("56") ASC_DW3_LX("0") ASC_DW3_P0 ASC_DW3_LX("16") ASC_DW3_P1
        ASC_DW3_LW("64") ASC_DW3_LX("8") ASC_DW3_P0 ASC_DW3_LX("24") ASC_DW3_P1
        ASC_DW3_LW("72") ASC_DW3_LX("16") ASC_DW3_P0 ASC_DW3_LX("32") ASC_DW3_P1
        ASC_DW3_LW("80") ASC_DW3_LX("496") ASC_DW3_P0 ASC_DW3_LX("512") ASC_DW3_P1
        ASC_DW3_LW("88") ASC_DW3_LX("504") ASC_DW3_P0 ASC_DW3_LX("520") ASC_DW3_P1
        ASC_DW3_LW("96") ASC_DW3_LX("512") ASC_DW3_P0 ASC_DW3_LX("528") ASC_DW3_P1, "32");

static void asc_dw3_row2(const int32_t *x, const int32_t *table, const int32_t *x_end, int8_t *out,
                         int32_t out_step, int32_t rows, int32_t x_row, int32_t x_skip, int32_t out_skip, int32_t sw)
{
    if (sw == 1) {
        asc_dw3_row2_s1(x, table, x_end, out, out_step, rows, x_row, x_skip, out_skip);
    } else {
        asc_dw3_row2_s2(x, table, x_end, out, out_step, rows, x_row, x_skip, out_skip);
    }
}
#else
/* C twin of asc_dw3_row (host emulation of the DSP path). */
/* One output pixel (4 channels) of the C twins: x = the buffer column of its first tap in the top
 * row, accumulators from the biases b[0 .. 3]. */
static void asc_dw3_pixel(const int32_t *x, const int32_t *b, const int32_t *table, int8_t *out)
{
    int32_t a[4] = {b[0], b[1], b[2], b[3]};
    for (int32_t t = 0; t < 9; t++) {
        const int32_t *xx = x + (t / 3) * (ASC_DW3_PITCH / 4) + 2 * (t % 3);
        const int32_t *ww = table + 8 + 2 * t;
        a[0] = asc_smlabb(xx[0], ww[0], a[0]);
        a[2] = asc_smlatt(xx[0], ww[0], a[2]);
        a[1] = asc_smlabb(xx[1], ww[1], a[1]);
        a[3] = asc_smlatt(xx[1], ww[1], a[3]);
    }
    for (int32_t k = 0; k < 4; k++) {
        const int32_t *kmr = table - 12 + 3 * k;
        const int32_t c = kmr[0] + (a[k] >> 31); /* arithmetic shift (gcc / clang) */
        const int32_t h = (int32_t)((((int64_t)c << 32) + (int64_t)a[k] * kmr[1] + ((int64_t)1 << 31)) >> 32);
        out[k] = (int8_t)asc_ssat8(h >> kmr[2]);
    }
}

static void asc_dw3_row(const int32_t *x, const int32_t *table, int8_t *out, const int32_t *x_end,
                        int32_t out_step, int32_t x_step)
{
    for (; x != x_end; x += x_step / 4, out += out_step) {
        asc_dw3_pixel(x, table, table, out);
    }
}

/* C twin of asc_dw3_row2_s1 / _s2 (x at the middle row; x_row, x_skip, out_skip in bytes): pixel p
 * of a pair starts from the biases t[4p .. 4p + 3]. */
static void asc_dw3_row2(const int32_t *x, const int32_t *table, const int32_t *x_end, int8_t *out,
                         int32_t out_step, int32_t rows, int32_t x_row, int32_t x_skip, int32_t out_skip, int32_t sw)
{
    for (;;) {
        do {
            asc_dw3_pixel(x - ASC_DW3_PITCH / 4, table, table, out);
            asc_dw3_pixel(x - ASC_DW3_PITCH / 4 + 2 * sw, table + 4, table, out + out_step);
            x += 4 * sw;
            out += 2 * out_step;
        } while (x != x_end);
        if (--rows == 0) {
            break;
        }
        x_end += x_row / 4;
        x += x_skip / 4;
        out += out_skip;
    }
}
#endif

/* asc_dw3_widen(s, d, rows, c_in, off2, iw): widens `rows` consecutive input rows (each iw pixels,
 * pixel pitch c_in bytes, row pitch iw * c_in, s at channel c0 of the first row's first pixel) of the
 * group into buffer rows d, d + pitch, ..: per pixel the two words (x + off) of channels (c0, c0+2)
 * and (c0+1, c0+3). One call per widening (not per row): the first iw % 4 pixels of a row one at a
 * time (LDR, 2 SXTAB16, STRD), then 4 pixels per iteration: 4 LDR, 8 SXTAB16, one STM of the 8
 * words (17 instructions with the loop, counted; the per-row loop it replaces: 11 per 2 pixels). */
#if ASC_NN_ASM
void asc_dw3_widen(const int8_t *s, int32_t *d, int32_t rows, int32_t c_in, int32_t off2, int32_t iw);

/* r0 s, r1 d, r2 the row's end of the 4-pixel part, r3 c_in, r12 off2, lr rows left; r4-r11 the 8
 * words of 4 pixels; stack: 8 (iw % 4), 8 (iw - iw % 4), pitch - 8 iw (bytes). */
__asm__(".pushsection .text.asc_dw3_widen,\"ax\",%progbits\n\t"
        ".syntax unified\n\t"
        ".thumb\n\t"
        ".p2align 2\n\t"
        ".global asc_dw3_widen\n\t"
        ".type asc_dw3_widen, %function\n\t"
        ".thumb_func\n"
        "asc_dw3_widen:\n\t"
        "push    {r4-r11, lr}\n\t"
        "sub     sp, sp, #12\n\t"
        "ldr     r12, [sp, #48]\n\t" /* off2 */
        "ldr     r4, [sp, #52]\n\t"  /* iw */
        "and     r5, r4, #3\n\t"
        "lsl     r5, r5, #3\n\t"
        "str     r5, [sp]\n\t"
        "bic     r6, r4, #3\n\t"
        "lsl     r6, r6, #3\n\t"
        "str     r6, [sp, #4]\n\t"
        "rsb     r7, r4, #62\n\t"    /* ASC_DW3_COLS - iw */
        "lsl     r7, r7, #3\n\t"
        "str     r7, [sp, #8]\n\t"
        "mov     lr, r2\n"
        "1:\n\t"
        "ldr     r4, [sp]\n\t"
        "add     r4, r1, r4\n\t"
        "cmp     r1, r4\n\t"
        "beq     3f\n"
        "2:\n\t"
        "ldr     r5, [r0]\n\t"
        "add     r0, r0, r3\n\t"
        "sxtab16 r6, r12, r5\n\t"
        "sxtab16 r7, r12, r5, ror #8\n\t"
        "strd    r6, r7, [r1], #8\n\t"
        "cmp     r1, r4\n\t"
        "bne     2b\n"
        "3:\n\t"
        "ldr     r2, [sp, #4]\n\t"
        "add     r2, r1, r2\n\t"
        "cmp     r1, r2\n\t"
        "beq     5f\n"
        "4:\n\t"
        "ldr     r5, [r0]\n\t"
        "ldr     r7, [r0, r3]\n\t"
        "add     r0, r0, r3, lsl #1\n\t"
        "ldr     r9, [r0]\n\t"
        "ldr     r11, [r0, r3]\n\t"
        "add     r0, r0, r3, lsl #1\n\t"
        "sxtab16 r4, r12, r5\n\t"
        "sxtab16 r5, r12, r5, ror #8\n\t"
        "sxtab16 r6, r12, r7\n\t"
        "sxtab16 r7, r12, r7, ror #8\n\t"
        "sxtab16 r8, r12, r9\n\t"
        "sxtab16 r9, r12, r9, ror #8\n\t"
        "sxtab16 r10, r12, r11\n\t"
        "sxtab16 r11, r12, r11, ror #8\n\t"
        "stmia   r1!, {r4-r11}\n\t"
        "cmp     r1, r2\n\t"
        "bne     4b\n"
        "5:\n\t"
        "ldr     r4, [sp, #8]\n\t"
        "add     r1, r1, r4\n\t"
        "subs    lr, lr, #1\n\t"
        "bne     1b\n\t"
        "add     sp, sp, #12\n\t"
        "pop     {r4-r11, pc}\n\t"
        ".size asc_dw3_widen, .-asc_dw3_widen\n\t"
        ".popsection\n");
typedef char asc_dw3_cols_check[ASC_DW3_COLS == 62 ? 1 : -1];
#else
/* C twin of asc_dw3_widen. */
static void asc_dw3_widen(const int8_t *s, int32_t *d, int32_t rows, int32_t c_in, int32_t off2, int32_t iw)
{
    for (int32_t r = 0; r < rows; r++, d += ASC_DW3_PITCH / 4) {
        for (int32_t ix = 0; ix < iw; ix++, s += c_in) {
            const int32_t v = asc_read_s8x4(s);
            d[2 * ix] = __sxtab16(off2, v);
            d[2 * ix + 1] = asc_sxtab16_ror8(off2, v);
        }
    }
}
#endif

/* Builds the group table; 0 when a channel is outside the fast form. */
static int asc_dw3_table(const asc_nn_dw_conv_params *p, const asc_nn_per_channel_quant *q, const int8_t *filter,
                         const int32_t *bias, int32_t c_in, int32_t c0, int32_t *t)
{
    const int32_t absoff = p->input_offset < 0 ? -p->input_offset : p->input_offset;
    const int32_t blim = (1 << 30) - 1 - 9 * (128 + absoff) * 128;
    const int32_t out_off = p->output_offset;
    for (int32_t k = 0; k < 4; k++) {
        const int32_t m = q->multiplier[c0 + k], s = q->shift[c0 + k], b = bias ? bias[c0 + k] : 0;
        if (m < 0 || s > -1 || s < -20 || b > blim || b < -blim) {
            return 0;
        }
        t[k] = 2 * b;
        t[4 + k] = 2 * b;
        t[-12 + 3 * k] = (int32_t)(1u << (uint32_t)(-s - 1)) + (int32_t)((uint32_t)out_off << (uint32_t)-s);
        t[-11 + 3 * k] = m;
        t[-10 + 3 * k] = -s;
    }
    for (int32_t tap = 0; tap < 9; tap++) {
        const int32_t w4 = asc_read_s8x4(filter + tap * c_in + c0);
        const int32_t we = __sxtb16(w4), wo = asc_sxtb16_ror8(w4);
        t[8 + 2 * tap] = __sadd16(we, we);
        t[9 + 2 * tap] = __sadd16(wo, wo);
    }
    return 1;
}

/* 3x3, ch_mult 1, dilation 1, full activation range: groups of 4 channels whose requantisation
 * fits the fast form; the other groups (and channels past the last multiple of 4) go through
 * asc_dw_dsp / the generic loop. tables: the export's ASC_DW3_TABLE words per group (every group
 * fast) or NULL (each group's table built here, per call). Returns the number of leading channels
 * done (a multiple of 4). */
static int32_t asc_dw3_dsp(const asc_nn_dw_conv_params *p, const asc_nn_per_channel_quant *q,
                           const asc_nn_dims *in, const int8_t *input, const asc_nn_dims *f,
                           const int8_t *filter, const int32_t *bias, const int32_t *tables,
                           const asc_nn_dims *out, int8_t *output)
{
    const int32_t c_in = in->c, iw = in->w, ih = in->h, ow = out->w, oh = out->h;
    const int32_t sh = p->stride.h, sw = p->stride.w, ph = p->padding.h, pw = p->padding.w;
    int32_t buf[ASC_DW3_ROWS * ASC_DW3_PITCH / 4];
    const int32_t nb = sh <= ASC_DW3_ROWS - 3 ? (ASC_DW3_ROWS - 3) / sh + 1 : 1; /* output rows per widening */
    int32_t table_mem[ASC_DW3_TABLE];
    const int32_t off2 = asc_dup16(p->input_offset);
    /* the padding columns the kernels read: [0, pw) and [pw + iw, (ow - 1) sw + 3), zero in every
     * buffer row (the widening writes only the image columns, out-of-image rows included); one
     * column each side (pad 1, the usual case) as two word stores, not a memset call per side */
    {
        const int32_t cols = (ow - 1) * sw + 3;
        for (int32_t r = 0; r < ASC_DW3_ROWS; r++) {
            int32_t *d = buf + r * (ASC_DW3_PITCH / 4);
            if (pw == 1) {
                d[0] = 0;
                d[1] = 0;
            } else {
                for (int32_t j = 0; j < 2 * pw; j++) {
                    d[j] = 0;
                }
            }
            d += 2 * (pw + iw);
            if (cols - pw - iw == 1) {
                d[0] = 0;
                d[1] = 0;
            } else {
                for (int32_t j = 0; j < 2 * (cols - pw - iw); j++) {
                    d[j] = 0;
                }
            }
        }
    }
    int32_t c0 = 0;
    for (; c0 + 4 <= c_in; c0 += 4) {
        const int32_t *table = tables ? tables + ASC_DW3_TABLE * (c0 / 4) + 12 : table_mem + 12;
        if (!tables && !asc_dw3_table(p, q, filter, bias, c_in, c0, table_mem + 12)) {
            asc_dw_dsp(p, q, in, input, f, filter, bias, out, output, c0, c0 + 4);
            continue;
        }
        for (int32_t b = 0; b < in->n; b++) {
            for (int32_t oy = 0; oy < oh; oy += nb) {
                /* widen the input rows of output rows [oy, oy + n) once: buffer row r = input row
                 * oy * sh - pad_top + r */
                const int32_t n = ASC_NN_MIN(nb, oh - oy);
                /* rows outside the image: zero lanes; the others (contiguous in the input) in one call */
                const int32_t rows = (n - 1) * sh + 3, iy0 = oy * sh - ph;
                const int32_t r_lo = ASC_NN_MAX(0, ASC_NN_MIN(-iy0, rows));
                const int32_t r_hi = ASC_NN_MAX(r_lo, ASC_NN_MIN(rows, ih - iy0));
                for (int32_t r = 0; r < r_lo; r++) {
                    memset(buf + r * (ASC_DW3_PITCH / 4) + 2 * pw, 0, (size_t)iw * 8);
                }
                for (int32_t r = r_hi; r < rows; r++) {
                    memset(buf + r * (ASC_DW3_PITCH / 4) + 2 * pw, 0, (size_t)iw * 8);
                }
                if (r_hi > r_lo) {
                    asc_dw3_widen(input + ((b * ih + iy0 + r_lo) * iw) * c_in + c0,
                                  buf + r_lo * (ASC_DW3_PITCH / 4) + 2 * pw, r_hi - r_lo, c_in, off2, iw);
                }
                int8_t *const o0 = output + ((b * oh + oy) * ow) * c_in + c0;
                if (ASC_NN_SPEED_PATHS && sw <= 2 && ow >= 2) {
                    /* the pixel pairs of the n rows in one call (per row: the one-row call cost ~25
                     * instructions here and in its prologue; profile, one clip: asc_dw3_dsp + pair kernels
                     * 5.28 M -> 5.09 M, measured), then an odd last column as one call down the n rows */
                    const int32_t pairs = ow & ~1;
                    {
                        const int32_t *xm = buf + ASC_DW3_PITCH / 4;
                        asc_dw3_row2(xm, table, xm + 2 * sw * pairs, o0, c_in, n, sh * ASC_DW3_PITCH,
                                     sh * ASC_DW3_PITCH - 8 * sw * pairs, (ow & 1) * c_in, sw);
                    }
                    if (ow & 1) {
                        const int32_t *xc = buf + 2 * sw * pairs;
                        asc_dw3_row(xc, table, o0 + pairs * c_in, xc + n * sh * (ASC_DW3_PITCH / 4), ow * c_in,
                                    sh * ASC_DW3_PITCH);
                    }
                } else {
                    for (int32_t j = 0; j < n; j++) {
                        const int32_t *xr = buf + j * sh * (ASC_DW3_PITCH / 4);
                        asc_dw3_row(xr, table, o0 + j * ow * c_in, xr + 2 * sw * ow, c_in, 8 * sw);
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
    return asc_depthwise_conv_s8_packed(ctx, p, q, in, input, f, filter, bias, (const int32_t *)0, out, output);
}

asc_nn_status asc_depthwise_conv_s8_packed(const asc_nn_context *ctx, const asc_nn_dw_conv_params *p,
                                           const asc_nn_per_channel_quant *q,
                                           const asc_nn_dims *in, const int8_t *input,
                                           const asc_nn_dims *f, const int8_t *filter,
                                           const int32_t *bias, const int32_t *dw3_tables,
                                           const asc_nn_dims *out, int8_t *output)
{
    (void)ctx;
#if !ASC_NN_USE_DSP
    (void)dw3_tables;
#endif
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
        const int32_t ow = out->w, sw = p->stride.w, pw = p->padding.w;
        if (kh == 3 && kw == 3 && p->dilation.h == 1 && p->dilation.w == 1 && p->output_offset >= -256 &&
            p->output_offset <= 256 && pw >= 0 && p->padding.h >= 0 && pw + in->w <= ASC_DW3_COLS &&
            (ow - 1) * sw + 3 <= ASC_DW3_COLS) {
            c_done = asc_dw3_dsp(p, q, in, input, f, filter, bias, dw3_tables, out, output);
            if (p->activation.min > -128 || p->activation.max < 127) {
                /* dw3 saturates to int8; a fused ReLU / ReLU6 range clamps that (the same value) */
                const int32_t npx = out->n * out->h * out->w;
                for (int32_t i = 0; i < npx; i++) {
                    int8_t *o = output + i * c_in;
                    for (int32_t c = 0; c < c_done; c++) {
                        o[c] = asc_clamp_s8(o[c], &p->activation);
                    }
                }
            }
        } else {
            c_done = asc_dw_dsp(p, q, in, input, f, filter, bias, out, output, 0, c_in);
        }
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
