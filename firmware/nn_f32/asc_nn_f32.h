/*
 * asc_nn_f32.h - float32 kernels for the fp16-weight models (`asc-edge export --precision fp16`).
 *
 * The Cortex-M4F has single-precision arithmetic and no half-precision arithmetic, so an fp16
 * model keeps its weights as IEEE-754 binary16 in flash (2 bytes a parameter, as KT 2024 counts
 * its fp16 submission), expands one layer's weights to float32 in the arena just before the layer
 * runs (asc_f32_from_f16, exact) and computes in float32. Tensors are NCHW with batch 1 (the ONNX
 * layout the generator reads), so a 1x1 convolution is one matrix product W (out_c x in_c) times
 * X (in_c x h*w), which CMSIS-DSP's arm_mat_mult_f32 computes; the fully connected layer uses
 * arm_dot_prod_f32 and Snake's sine arm_sin_f32.
 *
 * Bit-exactness host == device: every kernel is plain C with a fixed order of IEEE-754 single
 * operations, compiled on both sides with -ffp-contract=off and without -ffast-math (checked
 * below), CMSIS-DSP built from the same sources with the same defines (-DARM_MATH_LOOPUNROLL),
 * and no libm function whose bits differ between C libraries (asc_expf below replaces expf;
 * sqrtf is correctly rounded everywhere). Against ONNX Runtime the results differ by float
 * rounding (summation order, arm_sin_f32's table interpolation, asc_expf's polynomial): the
 * export checks a stated tolerance.
 *
 * Every kernel returns ASC_F32_OK (0) or ASC_F32_ERR_ARG (-1) for arguments it cannot handle.
 */
#ifndef ASC_NN_F32_H
#define ASC_NN_F32_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ASC_F32_OK 0
#define ASC_F32_ERR_ARG (-1)

/* Convolution, NCHW, batch 1, weights (out_c, in_c / groups, kernel_h, kernel_w) as in ONNX Conv;
 * output y[oc][oy][ox] = bias[oc] + sum over (ic, ky, kx) of x[ic][iy][ix] * w[oc][ic][ky][kx] with
 * iy = oy * stride_h - pad_top + ky * dilation_h (zero outside the input; likewise ix). */
typedef struct {
    int32_t in_c, in_h, in_w, out_c, out_h, out_w;
    int32_t kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w, groups;
} asc_f32_conv_params;

/* Pooling window over each channel plane (ONNX MaxPool / AveragePool, batch 1); average: sum
 * divided by the window's cells inside the input, or by kernel_h * kernel_w when
 * count_include_pad is 1. */
typedef struct {
    int32_t c, in_h, in_w, out_h, out_w, kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left;
    int32_t count_include_pad;
} asc_f32_pool_params;

typedef enum { ASC_F32_ADD = 0, ASC_F32_SUB = 1, ASC_F32_MUL = 2, ASC_F32_DIV = 3 } asc_f32_binary_op;
typedef enum {
    ASC_F32_RELU = 0, ASC_F32_SIGMOID = 1, ASC_F32_SIN = 2, ASC_F32_SQRT = 3, ASC_F32_SQUARE = 4,
    ASC_F32_CLIP = 5
} asc_f32_unary_op;

/* IEEE-754 binary16 -> float32 for n values (exact: every half is a float). */
void asc_f32_from_f16(const uint16_t *src, float *dst, int32_t n);

/* e^x for a float32 x, the same bits on every IEEE-754 target (libm's expf is not): x = k ln2 + r,
 * |r| <= ln2 / 2, e^r by a degree-7 Taylor polynomial, times 2^k by exponent arithmetic. Relative
 * error below 2e-7 for normal results; x > 88.72: +inf; x < -103.9: 0. */
float asc_expf(float x);

/* In place (x == y): only a depthwise convolution (groups == in_c == out_c) that keeps the shape;
 * plane: out_h * out_w floats of scratch (each channel is computed there, then copied over its
 * input channel, which no other channel reads). Otherwise plane is unused (may be NULL). */
int asc_f32_conv2d(const asc_f32_conv_params *p, const float *x, const float *w, const float *bias, float *y,
                   float *plane);
/* y[n] = bias[n] + sum_k x[k] * w[n][k] (w row-major n_out x n_in; bias may be NULL). */
int asc_f32_fully_connected(const float *x, int32_t n_in, const float *w, const float *bias, float *y, int32_t n_out);
int asc_f32_max_pool(const asc_f32_pool_params *p, const float *x, float *y);
int asc_f32_avg_pool(const asc_f32_pool_params *p, const float *x, float *y);
/* Mean over the axes whose bit is set in axes_mask (bit 0: C, 1: H, 2: W) of x (c, h, w); the
 * output keeps size-1 dimensions: (c or 1, h or 1, w or 1). Sum in row-major order, then divided
 * by the number of cells. */
int asc_f32_mean(const float *x, int32_t c, int32_t h, int32_t w, int32_t axes_mask, float *y);
/* y = a op b with NumPy broadcasting; a_dims, b_dims, y_dims: (c, h, w), a size-1 dimension of a
 * or b is broadcast. */
int asc_f32_binary(asc_f32_binary_op op, const float *a, const int32_t a_dims[3], const float *b,
                   const int32_t b_dims[3], float *y, const int32_t y_dims[3]);
/* Element-wise; CLIP uses lo / hi (others ignore them). y may equal x. */
int asc_f32_unary(asc_f32_unary_op op, const float *x, float *y, int32_t n, float lo, float hi);
/* Nearest-neighbour resize of each channel plane: y[c][oy][ox] = x[c][row_index[oy]][col_index[ox]]
 * (the index tables come from the generator, which applies ONNX Resize's coordinate rule). */
int asc_f32_resize_nearest(const float *x, int32_t c, int32_t in_h, int32_t in_w, float *y, int32_t out_h,
                           int32_t out_w, const int32_t *row_index, const int32_t *col_index);

#ifdef __cplusplus
}
#endif

#endif /* ASC_NN_F32_H */
