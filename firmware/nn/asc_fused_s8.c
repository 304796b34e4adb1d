/* asc_fused_s8.c - row-by-row (fused) execution of an inverted-residual block.
 *
 * The block is the layer chain expand 1x1 -> depthwise -> project 1x1 [-> ADD(input)] of the
 * int8 graph. It runs up to ASC_IR_ROWS output rows per step (as many as the scratch buffer
 * holds): output rows [oy, oy + n) of the depthwise need expanded rows
 * [oy*stride_h - pad_top, (oy + n - 1)*stride_h - pad_top + kh) clipped to the image; those rows
 * are kept contiguous in a window at the start of the scratch buffer (rows no longer needed are
 * dropped by a memmove, the missing ones are computed by one 1x1 call on the contiguous input
 * rows). The depthwise kernel then runs on that window as a (1, rows, W, Ce)
 * image with the window's own top padding and produces the n output rows; the projection (and
 * ADD) follow on those rows. With the speed build's projection tables and the ADD in asc_add_s8's
 * table form, the projection writes the ADD's outputs itself (asc_pw_gemm_add, asc_conv_s8.c; the
 * ADD's table, built once per call, sits in the then unused projection rows of the scratch).
 * Each output element sees exactly the operands and parameters of the
 * unfused layers: bit-identical. In place (output == input, with the ADD: same shape, so
 * stride_h 1 and pad_top <= kh - 1): the expansion has read every input row < oy + n before output
 * rows [oy, oy + n) are written, and the ADD reads each element before writing it. */
#include "asc_nn_internal.h"

/* Optional profiling hook (the device bench defines -DASC_NN_PROFILE=bench_profile): called after
 * each part of a row with 0 = expansion (incl. window upkeep), 1 = depthwise, 2 = projection,
 * 3 = ADD, so instructions can be attributed per layer type inside a fused block (an ADD fused into
 * the projection counts as projection). */
#ifdef ASC_NN_PROFILE
void ASC_NN_PROFILE(int32_t part);
#define ASC_IR_MARK(part) ASC_NN_PROFILE(part)
#else
#define ASC_IR_MARK(part) ((void)0)
#endif

/* Output rows per step: the expansion, depthwise, projection and ADD each run on ASC_IR_ROWS
 * rows at a time (fewer per-call overheads, even pixel counts for the 2-pixel GEMM). The code
 * generator takes the scratch size from asc_inverted_residual_s8_get_buffer_size. */
#define ASC_IR_ROWS 4

static int asc_ir_args_ok(const asc_nn_inverted_residual_params *p, const asc_nn_dims *in,
                          const asc_nn_dims *out)
{
    if (!p || !in || !out || !p->expand || !p->depthwise || !p->project || !p->expand_filter ||
        !p->depthwise_filter || !p->project_filter || p->expand_channels <= 0) {
        return 0;
    }
    const asc_nn_dw_conv_params *d = p->depthwise;
    const asc_nn_dims *fd = &p->depthwise_filter_dims;
    if (in->n != 1 || out->n != 1 || in->h <= 0 || in->w <= 0 || in->c <= 0 || out->h <= 0 ||
        out->w <= 0 || out->c <= 0 || d->ch_mult != 1 || d->dilation.h != 1 || d->dilation.w != 1 ||
        d->stride.h <= 0 || d->stride.w <= 0 || fd->h <= 0 || fd->w <= 0 ||
        fd->c != p->expand_channels) {
        return 0;
    }
    if (p->expand->stride.h != 1 || p->expand->stride.w != 1 || p->expand->padding.h != 0 ||
        p->expand->padding.w != 0 || p->project->stride.h != 1 || p->project->stride.w != 1 ||
        p->project->padding.h != 0 || p->project->padding.w != 0) {
        return 0;
    }
    /* every output row must see at least one input row */
    if ((out->h - 1) * d->stride.h - d->padding.h >= in->h || fd->h - d->padding.h <= 0) {
        return 0;
    }
    if (p->add && (out->h != in->h || out->w != in->w || out->c != in->c)) {
        return 0;
    }
    return 1;
}

/* Moves n bytes from src down to dst (dst < src, the ranges may overlap): the window upkeep below.
 * newlib's memmove copies byte by byte (~4 instructions a byte: 0.57 M of CP-Mobile's model, measured);
 * word-aligned ranges go 16 bytes per LDMIA / STMIA pair here (reading a block before writing it
 * is safe for dst < src). */
static void asc_ir_move_down(int8_t *dst, const int8_t *src, int32_t n)
{
#if ASC_NN_ASM
    if ((((uintptr_t)dst | (uintptr_t)src) & 3u) == 0 && n >= 16) {
        const int8_t *end = src + (n & ~15);
        __asm__ volatile("1:\n\t"
                         "ldmia   %[s]!, {r4-r7}\n\t"
                         "stmia   %[t]!, {r4-r7}\n\t"
                         "cmp     %[s], %[e]\n\t"
                         "bne     1b\n\t"
                         : [s] "+r"(src), [t] "+r"(dst)
                         : [e] "r"(end)
                         : "r4", "r5", "r6", "r7", "cc", "memory");
        n &= 15;
    }
#endif
    if (n > 0) {
        memmove(dst, src, (size_t)n);
    }
}

/* Scratch bytes for `rows` output rows per step. */
static int32_t asc_ir_scratch(const asc_nn_inverted_residual_params *p, const asc_nn_dims *in,
                              const asc_nn_dims *out, int32_t rows)
{
    const int32_t ce = p->expand_channels;
    const int32_t win_rows = (rows - 1) * p->depthwise->stride.h + p->depthwise_filter_dims.h;
    return win_rows * in->w * ce + rows * out->w * ce + (p->add ? rows * out->w * out->c : 0);
}

int32_t asc_inverted_residual_s8_get_buffer_size(const asc_nn_inverted_residual_params *p,
                                                 const asc_nn_dims *in, const asc_nn_dims *out)
{
    if (!asc_ir_args_ok(p, in, out)) {
        return -1;
    }
    return asc_ir_scratch(p, in, out, ASC_IR_ROWS);
}

asc_nn_status asc_inverted_residual_s8(const asc_nn_context *ctx,
                                       const asc_nn_inverted_residual_params *p,
                                       const asc_nn_dims *in, const int8_t *input,
                                       const asc_nn_dims *out, int8_t *output)
{
    const asc_nn_inverted_residual_tables t = {(const int32_t *)0, (const int32_t *)0, (const int32_t *)0,
                                               (const int32_t *)0, (const int32_t *)0};
    return asc_inverted_residual_s8_packed(ctx, p, &t, in, input, out, output);
}

asc_nn_status asc_inverted_residual_s8_w16(const asc_nn_context *ctx,
                                           const asc_nn_inverted_residual_params *p,
                                           const int32_t *expand_w16, const int32_t *project_w16,
                                           const asc_nn_dims *in, const int8_t *input,
                                           const asc_nn_dims *out, int8_t *output)
{
    const asc_nn_inverted_residual_tables t = {expand_w16, project_w16, (const int32_t *)0, (const int32_t *)0,
                                               (const int32_t *)0};
    return asc_inverted_residual_s8_packed(ctx, p, &t, in, input, out, output);
}

asc_nn_status asc_inverted_residual_s8_packed(const asc_nn_context *ctx,
                                              const asc_nn_inverted_residual_params *p,
                                              const asc_nn_inverted_residual_tables *t,
                                              const asc_nn_dims *in, const int8_t *input,
                                              const asc_nn_dims *out, int8_t *output)
{
    if (!asc_ir_args_ok(p, in, out) || !input || !output || !ctx || !ctx->buf || !t) {
        return ASC_NN_ARG_ERROR;
    }
    /* output rows per step: the most (<= ASC_IR_ROWS) the scratch buffer holds */
    int32_t rows = ASC_IR_ROWS;
    while (rows > 1 && asc_ir_scratch(p, in, out, rows) > ctx->size) {
        rows--;
    }
    if (asc_ir_scratch(p, in, out, rows) > ctx->size) {
        return ASC_NN_ARG_ERROR;
    }
    const int32_t ce = p->expand_channels, kh = p->depthwise_filter_dims.h, sh = p->depthwise->stride.h;
    const int32_t row_in = in->w * in->c, row_exp = in->w * ce;
    const int32_t row_out = out->w * out->c;
    const int32_t win_rows = (rows - 1) * sh + kh;
    int8_t *window = (int8_t *)ctx->buf;
    int8_t *dw_rows = window + win_rows * row_exp;
    int8_t *proj_rows = dw_rows + rows * out->w * ce;
    const asc_nn_dims e_f = {ce, 1, 1, in->c}, p_f = {out->c, 1, 1, ce};
    asc_nn_dw_conv_params dw = *p->depthwise;
    int32_t lo = 0, hi = 0; /* expanded rows [lo, hi) are in the window, row lo first */
    asc_nn_status st;
#if ASC_NN_USE_DSP && ASC_NN_SPEED_PATHS
    /* The ADD in its table form fused into the projection (asc_pw_gemm_add): its table, built once
     * here, takes the place of the projection rows (unused then); a step it does not apply to (odd
     * pixel count) falls back to projection rows + asc_add_s8 for the rest of the block. */
    asc_add_lut_form af;
    int fuse = 0, a_proj = 0;
    if (p->add && t->project_filter_w16 && t->project_requant) {
        int32_t *lut = (int32_t *)(((uintptr_t)proj_rows + 3u) & ~(uintptr_t)3u);
        if ((int8_t *)(lut + 256) <= proj_rows + rows * row_out && asc_add_lut_prep(p->add, lut, &af)) {
            fuse = 1;
            a_proj = af.a_is_in1 == (p->add_project_first != 0); /* input 1 is the projection */
        }
    }
#endif

    for (int32_t oy = 0; oy < out->h; oy += rows) {
        const int32_t nr = ASC_NN_MIN(rows, out->h - oy); /* output rows of this step */
        const int32_t ws = oy * sh - p->depthwise->padding.h;
        const int32_t r0 = ASC_NN_MAX(ws, 0);
        const int32_t r1 = ASC_NN_MIN(ws + (nr - 1) * sh + kh, in->h);
        /* drop rows before r0, keep [max(lo, r0), hi) at the start of the window */
        if (hi <= r0) {
            lo = hi = r0;
        } else if (lo < r0) {
            asc_ir_move_down(window, window + (r0 - lo) * row_exp, (hi - r0) * row_exp);
            lo = r0;
        }
        if (hi < r1) {
            /* the missing rows [hi, r1) are contiguous in the input and in the window: one call */
            const asc_nn_dims e_in = {1, r1 - hi, in->w, in->c}, e_out = {1, r1 - hi, in->w, ce};
            st = asc_convolve_1x1_s8_packed(0, p->expand, &p->expand_quant, &e_in, input + hi * row_in, &e_f,
                                            p->expand_filter, t->expand_filter_w16, t->expand_requant,
                                            p->expand_bias, &e_out, window + (hi - lo) * row_exp);
            if (st != ASC_NN_OK) {
                return st;
            }
            hi = r1;
        }
        ASC_IR_MARK(0);
        /* depthwise on the window (rows r0..r1-1) -> nr output rows */
        const asc_nn_dims d_in = {1, r1 - r0, in->w, ce}, d_out = {1, nr, out->w, ce};
        dw.padding.h = r0 - ws;
        st = asc_depthwise_conv_s8_packed(0, &dw, &p->depthwise_quant, &d_in, window, &p->depthwise_filter_dims,
                                          p->depthwise_filter, p->depthwise_bias, t->depthwise_dw3, &d_out, dw_rows);
        if (st != ASC_NN_OK) {
            return st;
        }
        ASC_IR_MARK(1);
        const asc_nn_dims p_out = {1, nr, out->w, out->c};
        int8_t *y = output + oy * row_out;
#if ASC_NN_USE_DSP && ASC_NN_SPEED_PATHS
        if (fuse) {
            if (asc_pw_gemm_add(p->project, &p->project_quant, &d_out, dw_rows, &p_f, p->project_filter,
                                t->project_filter_w16, t->project_requant, &p_out, &af, a_proj,
                                input + oy * row_in, y)) {
                ASC_IR_MARK(2);
                ASC_IR_MARK(3);
                continue;
            }
            fuse = 0; /* the projection rows below overwrite the table */
        }
#endif
        st = asc_convolve_1x1_s8_packed(0, p->project, &p->project_quant, &d_out, dw_rows, &p_f, p->project_filter,
                                        t->project_filter_w16, t->project_requant, p->project_bias, &p_out,
                                        p->add ? proj_rows : y);
        if (st != ASC_NN_OK) {
            return st;
        }
        ASC_IR_MARK(2);
        if (p->add) {
            const int8_t *x = input + oy * row_in;
            st = p->add_project_first ? asc_add_s8(p->add, &p_out, proj_rows, &p_out, x, &p_out, y)
                                      : asc_add_s8(p->add, &p_out, x, &p_out, proj_rows, &p_out, y);
            if (st != ASC_NN_OK) {
                return st;
            }
            ASC_IR_MARK(3);
        }
    }
    return ASC_NN_OK;
}
