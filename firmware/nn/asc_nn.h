/*
 * asc_nn.h - int8 kernel library for asc-edge (Cortex-M4 target, host-testable).
 *
 * Named and shaped after CMSIS-NN's int8 API (arm_convolve_s8, arm_depthwise_conv_s8, ...),
 * computing TFLite's integer reference-kernel semantics bit-exactly (see README.md).
 * Our own code, written from the published TFLite/gemmlowp semantics.
 *
 * Conventions
 *  - Tensors are NHWC int8 (filters: CONV_2D  [out_ch, kh, kw, in_ch/groups] (OHWI),
 *    DEPTHWISE_CONV_2D [1, kh, kw, in_ch*ch_mult], FULLY_CONNECTED [out, in]), as stored in .tflite.
 *  - Offsets follow TFLite: input_offset = -input_zero_point, output_offset = +output_zero_point.
 *  - Requantisation: MultiplyByQuantizedMultiplier(x, multiplier, shift) with TFLite's *double*
 *    rounding (SaturatingRoundingDoublingHighMul then RoundingDivideByPOT); (multiplier, shift) as
 *    produced by TFLite's QuantizeMultiplier (shift > 0 is a left shift).
 *  - Every kernel returns ASC_NN_OK or ASC_NN_ARG_ERROR; nothing allocates. Kernels that may use
 *    scratch memory have *_get_buffer_size(); pass it in ctx (ctx may be NULL when that size is 0).
 *  - Build variants: portable C by default; the Cortex-M DSP-extension (SXTB16/SMLAD) inner loops
 *    when __ARM_FEATURE_DSP is defined (or ASC_NN_EMULATE_DSP on a host, which uses
 *    asc_acle_host.h). Both produce bit-identical results.
 */
#ifndef ASC_NN_H
#define ASC_NN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    ASC_NN_OK = 0,
    ASC_NN_ARG_ERROR = -1
} asc_nn_status;

/* Tensor dimensions, NHWC (unused trailing dims = 1). */
typedef struct {
    int32_t n;
    int32_t h;
    int32_t w;
    int32_t c;
} asc_nn_dims;

typedef struct {
    int32_t h;
    int32_t w;
} asc_nn_tile;

typedef struct {
    int32_t min; /* activation clamp in the output's quantised domain (fused ReLU/ReLU6/none) */
    int32_t max;
} asc_nn_activation;

/* Scratch buffer, CMSIS-NN style. */
typedef struct {
    void *buf;
    int32_t size;
} asc_nn_context;

/* Per-channel requantisation (one entry per output channel). */
typedef struct {
    const int32_t *multiplier;
    const int32_t *shift;
} asc_nn_per_channel_quant;

/* Per-tensor requantisation. */
typedef struct {
    int32_t multiplier;
    int32_t shift;
} asc_nn_per_tensor_quant;

/* CONV_2D. padding = pad_top / pad_left; bottom/right padding follows from output_dims.
 * Out-of-image taps are skipped (TFLite: they contribute nothing, not input_zero_point).
 * groups = input_channels / filter_dims->c (grouped CONV_2D, TFLite semantics). */
typedef struct {
    int32_t input_offset;
    int32_t output_offset;
    asc_nn_tile stride;
    asc_nn_tile padding;
    asc_nn_tile dilation;
    asc_nn_activation activation;
} asc_nn_conv_params;

/* DEPTHWISE_CONV_2D: output channel = in_ch * ch_mult + m. */
typedef struct {
    int32_t input_offset;
    int32_t output_offset;
    int32_t ch_mult;
    asc_nn_tile stride;
    asc_nn_tile padding;
    asc_nn_tile dilation;
    asc_nn_activation activation;
} asc_nn_dw_conv_params;

typedef struct {
    int32_t input_offset;
    int32_t filter_offset; /* -filter_zero_point, 0 for symmetric int8 weights */
    int32_t output_offset;
    asc_nn_activation activation;
} asc_nn_fc_params;

/* AVERAGE_POOL_2D (input and output share scale/zero point in TFLite int8). */
typedef struct {
    asc_nn_tile filter;
    asc_nn_tile stride;
    asc_nn_tile padding;
    asc_nn_activation activation;
} asc_nn_pool_params;

/* ADD: TFLite int8 path, left_shift = 20. */
typedef struct {
    int32_t input1_offset;
    int32_t input1_multiplier;
    int32_t input1_shift;
    int32_t input2_offset;
    int32_t input2_multiplier;
    int32_t input2_shift;
    int32_t left_shift;
    int32_t output_offset;
    int32_t output_multiplier;
    int32_t output_shift;
    asc_nn_activation activation;
} asc_nn_add_params;

/* MUL: out = output_offset + MBQM((in1 + off1) * (in2 + off2), multiplier, shift). */
typedef struct {
    int32_t input1_offset;
    int32_t input2_offset;
    int32_t output_offset;
    int32_t output_multiplier;
    int32_t output_shift;
    asc_nn_activation activation;
} asc_nn_mul_params;

/* MEAN over H and W. multiplier/shift = QuantizeMultiplier(input_scale / output_scale); the
 * kernel folds 1/(H*W) into it exactly as TFLite's QuantizedMeanOrSum does. */
typedef struct {
    int32_t input_offset;
    int32_t output_offset;
    int32_t multiplier;
    int32_t shift;
    asc_nn_activation activation; /* TFLite MEAN: {-128, 127} */
} asc_nn_mean_params;

/* ---- requantisation primitives (TFLite integer semantics) ---- */
int32_t asc_nn_sat_rounding_doubling_high_mul(int32_t a, int32_t b);
int32_t asc_nn_rounding_divide_by_pot(int32_t x, int32_t exponent);
int32_t asc_nn_requantize(int32_t x, int32_t multiplier, int32_t shift);

/* ---- convolution ---- */
int32_t asc_convolve_s8_get_buffer_size(const asc_nn_dims *input_dims, const asc_nn_dims *filter_dims);
asc_nn_status asc_convolve_s8(const asc_nn_context *ctx, const asc_nn_conv_params *conv_params,
                              const asc_nn_per_channel_quant *quant_params,
                              const asc_nn_dims *input_dims, const int8_t *input_data,
                              const asc_nn_dims *filter_dims, const int8_t *filter_data,
                              const int32_t *bias_data, /* may be NULL */
                              const asc_nn_dims *output_dims, int8_t *output_data);

/* 1x1 fast path: filter 1x1, no padding, dilation 1, groups 1 (any stride). */
asc_nn_status asc_convolve_1x1_s8(const asc_nn_context *ctx, const asc_nn_conv_params *conv_params,
                                  const asc_nn_per_channel_quant *quant_params,
                                  const asc_nn_dims *input_dims, const int8_t *input_data,
                                  const asc_nn_dims *filter_dims, const int8_t *filter_data,
                                  const int32_t *bias_data,
                                  const asc_nn_dims *output_dims, int8_t *output_data);

/* The 1x1 filter [out_c][1][1][in_c] in the pre-widened layout of the DSP path ("pw16"): for each
 * output-channel pair (o, o+1), o = 0, 2, .. < out_c - 1 (an odd last channel is not included),
 * for each group g of 4 input channels (the last one zero-padded), 4 int32 words
 *   [ L(o, 4g, 4g+2), L(o, 4g+1, 4g+3), L(o+1, 4g, 4g+2), L(o+1, 4g+1, 4g+3) ],
 * L(o, i, j) = int16 lanes 2*w[o][i] (bits 0-15) and 2*w[o][j] (bits 16-31), 0 past in_c.
 * Writes asc_convolve_1x1_s8_widened_size() words to dst (dst NULL: only returns the size). */
/* The DSP 1x1 GEMM reads a pre-widened filter only when the input channel count K is at most this
 * (its weight buffer and unrolled loop); larger K always takes the int8 path. The code generator reads
 * this define (asc_edge.codegen.c_abi) to decide whether storing a widened copy pays. */
#define ASC_PW_MAX_K 128
/* Widened pixel pairs the general convolution's DSP path (asc_convolve_s8, groups == 1, K <= ASC_PW_MAX_K)
 * gathers before it writes their outputs: 896 words = 3584 bytes of stack, 2 * (896 / (4 * ceil(K / 4)))
 * output pixels a chunk (fewer chunks, so fewer per-chunk set-ups; without the speed build's
 * pre-widened copy, asc_convolve_s8_packed, the filter is re-widened per chunk). The code generator reads it (asc_edge.codegen.ops.conv: how far the kernel's reads can lag
 * behind its writes when the output overlaps the input). */
#define ASC_PW_CONV_XBUF_WORDS 896
int32_t asc_convolve_1x1_s8_widened_size(const asc_nn_dims *filter_dims);
int32_t asc_convolve_1x1_s8_widen_filter(const asc_nn_dims *filter_dims, const int8_t *filter_data, int32_t *dst);

/* asc_convolve_1x1_s8 with an optional pre-widened copy of the filter (asc_convolve_1x1_s8_widen_filter
 * layout; NULL: widened at run time). Same results; only the DSP build reads filter_w16. */
asc_nn_status asc_convolve_1x1_s8_w16(const asc_nn_context *ctx, const asc_nn_conv_params *conv_params,
                                      const asc_nn_per_channel_quant *quant_params,
                                      const asc_nn_dims *input_dims, const int8_t *input_data,
                                      const asc_nn_dims *filter_dims, const int8_t *filter_data,
                                      const int32_t *filter_w16, const int32_t *bias_data,
                                      const asc_nn_dims *output_dims, int8_t *output_data);

/* Requantisation records of the DSP 1x1 GEMM, computed at export (the speed build keeps them in
 * flash, so the kernel skips its per-call fast-form check and constant set-up): ASC_PW_RQ_WORDS int32
 * per output-channel pair (o, o+1), o = 0, 2, .. < out_c - 1 (an odd last channel has none):
 *   [2b(o), 2b(o+1), 2b(o), 2b(o+1), kc(o), kc(o+1), m(o), m(o+1), r(o), r(o+1)],
 * b = bias (0 without one), m = multiplier, r = -shift, kc = 2^(r-1) + output_offset * 2^r (the
 * SMMLAR requantisation of asc_conv_s8.c). Only written (Python: asc_edge.codegen.speed_tables.
 * pack_1x1_requant) when every pair is in the fast form: full int8 activation, K <= ASC_PW_MAX_K,
 * |input_offset| <= 255, |output_offset| <= 256, m >= 0, 1 <= r <= 20,
 * |b| <= 2^30 - 1 - K (128 + |input_offset|) 128. */
#define ASC_PW_RQ_WORDS 10
/* asc_convolve_1x1_s8_w16 with the requantisation records above (requant NULL: computed at run time).
 * Same results. */
asc_nn_status asc_convolve_1x1_s8_packed(const asc_nn_context *ctx, const asc_nn_conv_params *conv_params,
                                         const asc_nn_per_channel_quant *quant_params,
                                         const asc_nn_dims *input_dims, const int8_t *input_data,
                                         const asc_nn_dims *filter_dims, const int8_t *filter_data,
                                         const int32_t *filter_w16, const int32_t *requant,
                                         const int32_t *bias_data,
                                         const asc_nn_dims *output_dims, int8_t *output_data);
/* asc_convolve_s8 with the same two tables (NULL: computed at run time; same results). Its DSP path
 * (groups 1, K = kh * kw * in_c <= ASC_PW_MAX_K, even out_c) is the 1x1 GEMM over K-long patches: the
 * filter [out_c][kh][kw][in_c] is K-major, so filter_w16 is the asc_convolve_1x1_s8_widen_filter
 * layout of the filter viewed as [out_c][1][1][K] and requant holds records for k = K. */
asc_nn_status asc_convolve_s8_packed(const asc_nn_context *ctx, const asc_nn_conv_params *conv_params,
                                     const asc_nn_per_channel_quant *quant_params,
                                     const asc_nn_dims *input_dims, const int8_t *input_data,
                                     const asc_nn_dims *filter_dims, const int8_t *filter_data,
                                     const int32_t *filter_w16, const int32_t *requant,
                                     const int32_t *bias_data,
                                     const asc_nn_dims *output_dims, int8_t *output_data);

/* Picks asc_convolve_1x1_s8 when it applies, else asc_convolve_s8. */
asc_nn_status asc_convolve_wrapper_s8(const asc_nn_context *ctx, const asc_nn_conv_params *conv_params,
                                      const asc_nn_per_channel_quant *quant_params,
                                      const asc_nn_dims *input_dims, const int8_t *input_data,
                                      const asc_nn_dims *filter_dims, const int8_t *filter_data,
                                      const int32_t *bias_data,
                                      const asc_nn_dims *output_dims, int8_t *output_data);

int32_t asc_depthwise_conv_s8_get_buffer_size(const asc_nn_dims *input_dims, const asc_nn_dims *filter_dims);
asc_nn_status asc_depthwise_conv_s8(const asc_nn_context *ctx, const asc_nn_dw_conv_params *dw_conv_params,
                                    const asc_nn_per_channel_quant *quant_params,
                                    const asc_nn_dims *input_dims, const int8_t *input_data,
                                    const asc_nn_dims *filter_dims, const int8_t *filter_data,
                                    const int32_t *bias_data,
                                    const asc_nn_dims *output_dims, int8_t *output_data);

/* Tables of the 3x3 DSP depthwise path ("dw3", asc_depthwise_conv_s8.c), computed at export (speed
 * build, flash): ASC_DW3_TABLE_WORDS int32 per group of 4 channels c0 = 0, 4, .. <= C - 4 (channels
 * past the last full group have none):
 *   [kc, m, r] of channels c0..c0+3 (12 words), 2b(c0..c0+3), 2b(c0..c0+3) again,
 *   9 taps (ky, kx row-major) x 2 words: int16 lanes 2w of channels (c0, c0+2) and (c0+1, c0+3),
 * b = bias, m = multiplier, r = -shift, kc = 2^(r-1) + output_offset * 2^r. Only written (Python:
 * asc_edge.codegen.speed_tables.pack_dw3) for a 3x3, ch_mult 1, dilation 1 depthwise with
 * |input_offset| <= 255, |output_offset| <= 256 whose every group is in the fast form: m >= 0,
 * 1 <= r <= 20, |b| <= 2^30 - 1 - 9 (128 + |input_offset|) 128. */
#define ASC_DW3_TABLE_WORDS 38
/* asc_depthwise_conv_s8 with the dw3 tables above (dw3_tables NULL: built at run time). Same results. */
asc_nn_status asc_depthwise_conv_s8_packed(const asc_nn_context *ctx, const asc_nn_dw_conv_params *dw_conv_params,
                                           const asc_nn_per_channel_quant *quant_params,
                                           const asc_nn_dims *input_dims, const int8_t *input_data,
                                           const asc_nn_dims *filter_dims, const int8_t *filter_data,
                                           const int32_t *bias_data, const int32_t *dw3_tables,
                                           const asc_nn_dims *output_dims, int8_t *output_data);

/* filter_dims = {out_ch, 1, 1, in_ch}; input/output: batch = input_dims->n, features = c. */
asc_nn_status asc_fully_connected_s8(const asc_nn_fc_params *fc_params,
                                     const asc_nn_per_channel_quant *quant_params,
                                     int32_t per_channel, /* 0: only entry [0] is used */
                                     const asc_nn_dims *input_dims, const int8_t *input_data,
                                     const asc_nn_dims *filter_dims, const int8_t *filter_data,
                                     const int32_t *bias_data,
                                     const asc_nn_dims *output_dims, int8_t *output_data);

/* ---- pooling / reduction ---- */
asc_nn_status asc_avgpool_s8(const asc_nn_pool_params *pool_params,
                             const asc_nn_dims *input_dims, const int8_t *input_data,
                             const asc_nn_dims *output_dims, int8_t *output_data);

/* output has n * c elements (shape [n,1,1,c] or [n,c]). */
asc_nn_status asc_mean_s8(const asc_nn_mean_params *mean_params,
                          const asc_nn_dims *input_dims, const int8_t *input_data,
                          int8_t *output_data);

/* ---- elementwise (4-D NumPy-style broadcasting: each dim equal or 1) ---- */
asc_nn_status asc_add_s8(const asc_nn_add_params *params,
                         const asc_nn_dims *input1_dims, const int8_t *input1_data,
                         const asc_nn_dims *input2_dims, const int8_t *input2_data,
                         const asc_nn_dims *output_dims, int8_t *output_data);

asc_nn_status asc_mul_s8(const asc_nn_mul_params *params,
                         const asc_nn_dims *input1_dims, const int8_t *input1_data,
                         const asc_nn_dims *input2_dims, const int8_t *input2_data,
                         const asc_nn_dims *output_dims, int8_t *output_data);

/* ---- data movement ---- */
/* out[n,h,w,c] = in[begin + i*stride] per dim (strides may be negative); output_dims gives counts. */
asc_nn_status asc_strided_slice_s8(const asc_nn_dims *input_dims, const int8_t *input_data,
                                   const asc_nn_dims *begin, const asc_nn_dims *stride,
                                   const asc_nn_dims *output_dims, int8_t *output_data);

/* Concatenate along axis (0=n,1=h,2=w,3=c). TFLite(-Micro) int8 CONCATENATION copies bytes
 * (inputs share the output's quantisation), so no requantisation here. */
asc_nn_status asc_concatenation_s8(const int8_t *const *input_data, const asc_nn_dims *input_dims,
                                   int32_t num_inputs, int32_t axis,
                                   const asc_nn_dims *output_dims, int8_t *output_data);

/* PAD / PADV2: pad value is the output zero point (PAD) or the given constant (PADV2). */
asc_nn_status asc_pad_s8(const asc_nn_dims *input_dims, const int8_t *input_data,
                         const asc_nn_dims *pad_before, const asc_nn_dims *pad_after,
                         int8_t pad_value, int8_t *output_data);

/* RESHAPE: a byte copy (no-op when in-place). */
asc_nn_status asc_reshape_s8(const int8_t *input_data, int8_t *output_data, int32_t total_size);

/* TRANSPOSE (4-D): output dimension k is input dimension perm[k] (perm given as {n, h, w, c} =
 * {perm[0], perm[1], perm[2], perm[3]}); output_dims must be the permuted input_dims. */
asc_nn_status asc_transpose_s8(const asc_nn_dims *input_dims, const int8_t *input_data,
                               const asc_nn_dims *perm, const asc_nn_dims *output_dims, int8_t *output_data);

/* ---- fused execution ---- */
/* One inverted-residual block executed row by row (MobileNetV2-style: expand 1x1 -> depthwise
 * kh x kw -> project 1x1 [-> ADD with the block input]), so that the expanded and depthwise
 * tensors never exist in full: only the expanded rows of four output rows, four depthwise rows
 * and (with the ADD) four projected rows live in the scratch buffer. Every element is computed by
 * the same kernels with the same parameters as the layer-by-layer graph, so the result is
 * bit-identical to running
 * asc_convolve_1x1_s8, asc_depthwise_conv_s8, asc_convolve_1x1_s8 and asc_add_s8 in turn.
 * Constraints: expansion and projection are 1x1, stride 1, no padding; depthwise ch_mult 1 and
 * dilation 1. With an ADD the output may alias the input (in place): output row y is written only
 * after every read of input row y (expansion rows are computed ahead of the rows they feed). */
typedef struct {
    const asc_nn_conv_params *expand;          /* 1x1: input_dims->c -> expand_channels */
    asc_nn_per_channel_quant expand_quant;
    const int8_t *expand_filter;               /* [expand_channels][1][1][in_c] */
    const int32_t *expand_bias;                /* may be NULL */
    int32_t expand_channels;
    const asc_nn_dw_conv_params *depthwise;   /* kh x kw, ch_mult 1, any stride / padding */
    asc_nn_per_channel_quant depthwise_quant;
    asc_nn_dims depthwise_filter_dims;         /* {1, kh, kw, expand_channels} */
    const int8_t *depthwise_filter;
    const int32_t *depthwise_bias;             /* may be NULL */
    const asc_nn_conv_params *project;         /* 1x1: expand_channels -> output_dims->c */
    asc_nn_per_channel_quant project_quant;
    const int8_t *project_filter;              /* [out_c][1][1][expand_channels] */
    const int32_t *project_bias;               /* may be NULL */
    const asc_nn_add_params *add;              /* NULL: output = projection */
    int32_t add_project_first;                 /* 1: projection is the ADD's input1, 0: input2 */
} asc_nn_inverted_residual_params;

/* Scratch bytes for R = 4 output rows per step: ((R-1)*stride_h + kh)*W*Ce (expanded rows)
 * + R*Wo*Ce (depthwise rows) + R*Wo*Cout if ADD. A smaller buffer also works (down to R = 1):
 * the kernel takes the largest R <= 4 that fits, same results. */
int32_t asc_inverted_residual_s8_get_buffer_size(const asc_nn_inverted_residual_params *params,
                                                 const asc_nn_dims *input_dims,
                                                 const asc_nn_dims *output_dims);
asc_nn_status asc_inverted_residual_s8(const asc_nn_context *ctx,
                                       const asc_nn_inverted_residual_params *params,
                                       const asc_nn_dims *input_dims, const int8_t *input_data,
                                       const asc_nn_dims *output_dims, int8_t *output_data);
/* The same with the expansion / projection filters also pre-widened
 * (asc_convolve_1x1_s8_widen_filter; either may be NULL): the DSP build reads them instead of
 * widening the filters at run time; same results. */
asc_nn_status asc_inverted_residual_s8_w16(const asc_nn_context *ctx,
                                           const asc_nn_inverted_residual_params *params,
                                           const int32_t *expand_filter_w16, const int32_t *project_filter_w16,
                                           const asc_nn_dims *input_dims, const int8_t *input_data,
                                           const asc_nn_dims *output_dims, int8_t *output_data);

/* The constant tables of a speed build (asc_edge.codegen.speed_tables; any may be NULL). */
typedef struct {
    const int32_t *expand_filter_w16;          /* asc_convolve_1x1_s8_widen_filter layout */
    const int32_t *project_filter_w16;
    const int32_t *expand_requant;             /* ASC_PW_RQ_WORDS per output-channel pair */
    const int32_t *project_requant;
    const int32_t *depthwise_dw3;              /* ASC_DW3_TABLE_WORDS per group of 4 channels */
} asc_nn_inverted_residual_tables;
/* asc_inverted_residual_s8 reading every table it is given instead of computing it at run time;
 * same results. */
asc_nn_status asc_inverted_residual_s8_packed(const asc_nn_context *ctx,
                                              const asc_nn_inverted_residual_params *params,
                                              const asc_nn_inverted_residual_tables *tables,
                                              const asc_nn_dims *input_dims, const int8_t *input_data,
                                              const asc_nn_dims *output_dims, int8_t *output_data);

/* ==== More int8 operators: MAX_POOL_2D, element-wise LUT, RESIZE_NEAREST_NEIGHBOR, single-axis
 * MEAN, SUB, SQUARED_DIFFERENCE. Each matches the tflite-micro kernel
 * named in its comment bit-exactly (tflite-micro commit 90b983c2, the one in
 * shared/tools/tflm). ==== */

/* MAX_POOL_2D.  input [n, h, w, c] int8, output [n, oh, ow, c] int8 (same scale / zero point: the
 * TFLite int8 kernel does not requantise). Parameters: asc_nn_pool_params (as AVERAGE_POOL_2D):
 * filter {h, w}, stride {h, w}, padding {h = pad_top, w = pad_left} (SAME / VALID padding as
 * TFLite's ComputePaddingHeightWidth gives it; bottom / right padding follows from output_dims),
 * activation = fused NONE / RELU / RELU6 clamp in the output's quantised domain
 * (CalculateActivationRangeQuantized).
 * Matches tflite-micro kernels/pooling.cc MaxPoolingEvalQuantized<int8_t> ->
 * reference_integer_ops::MaxPool (kernels/internal/reference/integer_ops/pooling.h): max over the
 * in-image part of the window, starting from -128 (an all-padding window gives
 * clamp(-128)), then clamp to [activation.min, activation.max]. */
asc_nn_status asc_max_pool_s8(const asc_nn_pool_params *pool_params,
                              const asc_nn_dims *input_dims, const int8_t *input_data,
                              const asc_nn_dims *output_dims, int8_t *output_data);

/* Element-wise 256-entry table lookup (any element-wise chain on an int8 tensor: LOGISTIC, TANH,
 * Snake, SiLU, ...; tables generated elsewhere, e.g. by running tflite-micro on all 256 inputs).
 *   out[i] = table[t][(uint8_t)(in[i] + 128)]   i.e. table[t][in[i] + 128],
 * t = 0 when n_tables == 1 (per tensor), t = channel (innermost NHWC dim, dims->c) when
 * n_tables == dims->c (per channel). table: int8 [n_tables][256]. dims: the tensor's shape
 * (input == output shape; only n*h*w*c and c matter). output may equal input (in place); otherwise
 * the buffers must not overlap. No TFLite counterpart (it replaces one or more element-wise
 * operators; the table carries their semantics). */
asc_nn_status asc_lut_s8(const int8_t *table, int32_t n_tables, const asc_nn_dims *dims,
                         const int8_t *input_data, int8_t *output_data);

/* RESIZE_NEAREST_NEIGHBOR.  input [n, h, w, c] -> output [n, oh, ow, c] (same quantisation:
 * TFLite int8 RESIZE_NEAREST_NEIGHBOR copies values). align_corners / half_pixel_centers: 0 or 1,
 * the op's options. Source index per output index i along an axis of input size in and output size
 * out, computed in IEEE single precision exactly as TFLite does:
 *   scale = (align_corners && out > 1) ? (float)(in - 1) / (float)(out - 1) : (float)in / (float)out
 *   v = ((float)i + (half_pixel_centers ? 0.5f : 0.0f)) * scale
 *   src = min(align_corners ? roundf(v) : floorf(v), in - 1), and max(src, 0) with half_pixel_centers.
 * Matches tflite-micro kernels/resize_nearest_neighbor.cc -> reference_ops::ResizeNearestNeighbor /
 * GetNearestNeighbor (kernels/internal/reference/resize_nearest_neighbor.h). */
typedef struct {
    int32_t align_corners;
    int32_t half_pixel_centers;
} asc_nn_resize_nearest_params;

asc_nn_status asc_resize_nearest_s8(const asc_nn_resize_nearest_params *params,
                                    const asc_nn_dims *input_dims, const int8_t *input_data,
                                    const asc_nn_dims *output_dims, int8_t *output_data);

/* MEAN over one axis of a 4-D NHWC tensor (axis 0 = n, 1 = h, 2 = w, 3 = c; keep_dims true or
 * false: same data layout). input [n, h, w, c], output = input_dims with dimension `axis` set to 1
 * (N = input_dims[axis] elements averaged per output). Parameters as asc_nn_mean_params:
 * input_offset = -zp_in, output_offset = +zp_out, (multiplier, shift) = QuantizeMultiplier(s_in /
 * s_out); the kernel folds 1/N in as TFLite does: k = min(floor(log2 N), 32, 31 + shift),
 * m' = (m << k) / N (int64, truncating), shift' = shift - k; then
 * out = clamp(MBQM(sum(x) - zp_in * N, m', shift') + zp_out). activation: {-128, 127} for TFLite.
 * Matches tflite-micro kernels/reduce_common.cc EvalMeanHelper (int8) -> EvalIntegerMean ->
 * reference_ops::QuantizedMeanOrSumExtraArgs -> QuantizedMeanOrSum (kernels/internal/reference/
 * reduce.h); at this commit int8 MEAN takes that path for every axis set and whether or not the
 * input and output quantisation match. */
typedef struct {
    int32_t axis;
    int32_t input_offset;
    int32_t output_offset;
    int32_t multiplier;
    int32_t shift;
    asc_nn_activation activation;
} asc_nn_mean_axis_params;

asc_nn_status asc_mean_axis_s8(const asc_nn_mean_axis_params *params,
                               const asc_nn_dims *input_dims, const int8_t *input_data,
                               int8_t *output_data);

/* SUB with 4-D broadcasting (each input dim equal to the output's or 1). Parameters: the
 * asc_nn_add_params fields computed as for ADD (input offsets -zp, left_shift 20,
 * twice_max = 2 * max(s1, s2), input_i (multiplier, shift) = QuantizeMultiplier(s_i / twice_max),
 * output = QuantizeMultiplier(twice_max / (2^20 * s_out)), in double: what the pinned tflite-micro
 * interpreter computes), activation from the fused activation. Per element:
 *   out = clamp(MBQM(MBQM((x1 + off1) << 20, m1, s1) - MBQM((x2 + off2) << 20, m2, s2), mo, so) + zp_out)
 * Matches tflite-micro kernels/sub.cc EvalSubQuantized -> reference_ops::SubElementwise /
 * BroadcastQuantSubSlow (kernels/internal/reference/sub.h). Not ADD with a negated input2
 * multiplier: SaturatingRoundingDoublingHighMul rounds exact negative halves toward zero, so
 * SRDHM(a, -m) != -SRDHM(a, m) at ties. */
asc_nn_status asc_sub_s8(const asc_nn_add_params *params,
                         const asc_nn_dims *input1_dims, const int8_t *input1_data,
                         const asc_nn_dims *input2_dims, const int8_t *input2_data,
                         const asc_nn_dims *output_dims, int8_t *output_data);

/* SQUARED_DIFFERENCE with 4-D broadcasting. Parameters as tflite-micro's squared_difference.cc
 * PrepareQuantized (int8): offsets -zp1, -zp2, +zp_out, left_shift = 7,
 * twice_max = 2.0 * (double)max(s1, s2), input_i = QuantizeMultiplierSmallerThanOneExp(s_i / twice_max),
 * output = QuantizeMultiplier(twice_max^2 / (double)((float)(1 << 14) * s_out)), activation
 * {-128, 127} (the op has no fused activation). Per element:
 *   d = MBQM((x1 + off1) << 7, m1, s1) - MBQM((x2 + off2) << 7, m2, s2)
 *   out = clamp(MBQM(d * d, mo, so) + zp_out)
 * Matches tflite-micro kernels/squared_difference.cc SquaredDifference<int8_t>(x, y, params)
 * (ElementWise / BroadcastBinaryFunction4DSlow). */
typedef struct {
    int32_t input1_offset;
    int32_t input1_multiplier;
    int32_t input1_shift;
    int32_t input2_offset;
    int32_t input2_multiplier;
    int32_t input2_shift;
    int32_t left_shift;
    int32_t output_offset;
    int32_t output_multiplier;
    int32_t output_shift;
    asc_nn_activation activation;
} asc_nn_squared_difference_params;

asc_nn_status asc_squared_difference_s8(const asc_nn_squared_difference_params *params,
                                        const asc_nn_dims *input1_dims, const int8_t *input1_data,
                                        const asc_nn_dims *input2_dims, const int8_t *input2_data,
                                        const asc_nn_dims *output_dims, int8_t *output_data);

/* CONCATENATION int8: tflite-micro (kernels/concatenation.cc Prepare) *requires* every input's
 * scale and zero point to equal the output's (TF_LITE_ENSURE_EQ; no requantisation), so
 * asc_concatenation_s8 (a byte copy) is its complete int8 semantics. */

#ifdef __cplusplus
}
#endif

#endif /* ASC_NN_H */
