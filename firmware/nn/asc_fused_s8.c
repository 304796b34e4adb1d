/* asc_fused_s8.c - row-by-row (fused) execution of an inverted-residual block.
 *
 * The block is the layer chain expand 1x1 -> depthwise -> project 1x1 [-> ADD(input)] of the
 * int8 graph. Output row oy of the depthwise needs expanded rows
 * [oy*stride_h - pad_top, oy*stride_h - pad_top + kh) clipped to the image; those rows are kept
 * contiguous in a window at the start of the scratch buffer (rows no longer needed are dropped by a
 * memmove, new ones are computed by the 1x1 kernel on one input row at a time). The depthwise
 * kernel then runs on that window as a (1, rows, W, Ce) image with the window's own top padding
 * and produces one output row; the projection (and ADD) follow on that row. Each output element
 * sees exactly the operands and parameters of the unfused layers: bit-identical. */
#include "asc_nn_internal.h"

/* Optional profiling hook (the device bench defines -DASC_NN_PROFILE=bench_profile): called after
 * each part of a row with 0 = expansion (incl. window upkeep), 1 = depthwise, 2 = projection,
 * 3 = ADD, so instructions can be attributed per layer type inside a fused block. */
#ifdef ASC_NN_PROFILE
void ASC_NN_PROFILE(int32_t part);
#define ASC_IR_MARK(part) ASC_NN_PROFILE(part)
#else
#define ASC_IR_MARK(part) ((void)0)
#endif

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

int32_t asc_inverted_residual_s8_get_buffer_size(const asc_nn_inverted_residual_params *p,
                                                 const asc_nn_dims *in, const asc_nn_dims *out)
{
    if (!asc_ir_args_ok(p, in, out)) {
        return -1;
    }
    const int32_t ce = p->expand_channels;
    return p->depthwise_filter_dims.h * in->w * ce + out->w * ce + (p->add ? out->w * out->c : 0);
}

asc_nn_status asc_inverted_residual_s8(const asc_nn_context *ctx,
                                       const asc_nn_inverted_residual_params *p,
                                       const asc_nn_dims *in, const int8_t *input,
                                       const asc_nn_dims *out, int8_t *output)
{
    const int32_t need = asc_inverted_residual_s8_get_buffer_size(p, in, out);
    if (need < 0 || !input || !output || !ctx || !ctx->buf || ctx->size < need) {
        return ASC_NN_ARG_ERROR;
    }
    const int32_t ce = p->expand_channels, kh = p->depthwise_filter_dims.h;
    const int32_t row_in = in->w * in->c, row_exp = in->w * ce;
    const int32_t row_out = out->w * out->c;
    int8_t *window = (int8_t *)ctx->buf;
    int8_t *dw_row = window + kh * row_exp;
    int8_t *proj_row = dw_row + out->w * ce;
    const asc_nn_dims e_in = {1, 1, in->w, in->c}, e_f = {ce, 1, 1, in->c}, e_out = {1, 1, in->w, ce};
    const asc_nn_dims d_out = {1, 1, out->w, ce};
    const asc_nn_dims p_f = {out->c, 1, 1, ce}, p_out = {1, 1, out->w, out->c};
    asc_nn_dw_conv_params dw = *p->depthwise;
    int32_t lo = 0, hi = 0; /* expanded rows [lo, hi) are in the window, row lo first */
    asc_nn_status st;

    for (int32_t oy = 0; oy < out->h; oy++) {
        const int32_t ws = oy * dw.stride.h - p->depthwise->padding.h;
        const int32_t r0 = ASC_NN_MAX(ws, 0);
        const int32_t r1 = ASC_NN_MIN(ws + kh, in->h);
        /* drop rows before r0, keep [max(lo, r0), hi) at the start of the window */
        if (hi <= r0) {
            lo = hi = r0;
        } else if (lo < r0) {
            memmove(window, window + (r0 - lo) * row_exp, (size_t)((hi - r0) * row_exp));
            lo = r0;
        }
        for (; hi < r1; hi++) {
            st = asc_convolve_1x1_s8(0, p->expand, &p->expand_quant, &e_in, input + hi * row_in, &e_f,
                                     p->expand_filter, p->expand_bias, &e_out, window + (hi - lo) * row_exp);
            if (st != ASC_NN_OK) {
                return st;
            }
        }
        ASC_IR_MARK(0);
        /* depthwise on the window (rows r0..r1-1) -> one output row */
        const asc_nn_dims d_in = {1, r1 - r0, in->w, ce};
        dw.padding.h = r0 - ws;
        st = asc_depthwise_conv_s8(0, &dw, &p->depthwise_quant, &d_in, window, &p->depthwise_filter_dims,
                                   p->depthwise_filter, p->depthwise_bias, &d_out, dw_row);
        if (st != ASC_NN_OK) {
            return st;
        }
        ASC_IR_MARK(1);
        int8_t *y = output + oy * row_out;
        st = asc_convolve_1x1_s8(0, p->project, &p->project_quant, &d_out, dw_row, &p_f, p->project_filter,
                                 p->project_bias, &p_out, p->add ? proj_row : y);
        if (st != ASC_NN_OK) {
            return st;
        }
        ASC_IR_MARK(2);
        if (p->add) {
            const int8_t *x = input + oy * row_in;
            st = p->add_project_first ? asc_add_s8(p->add, &p_out, proj_row, &p_out, x, &p_out, y)
                                      : asc_add_s8(p->add, &p_out, x, &p_out, proj_row, &p_out, y);
            if (st != ASC_NN_OK) {
                return st;
            }
            ASC_IR_MARK(3);
        }
    }
    return ASC_NN_OK;
}
