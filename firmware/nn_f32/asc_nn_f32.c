/*
 * asc_nn_f32.c - float32 kernels of the fp16-weight models (see asc_nn_f32.h).
 */
#include "asc_nn_f32.h"

#include <math.h>
#include <string.h>

#include "arm_math.h"

#if defined(__FAST_MATH__)
#error "asc_nn_f32.c must not be compiled with -ffast-math (host and device bits would differ)"
#endif
#if defined(__FLT_EVAL_METHOD__) && (__FLT_EVAL_METHOD__ != 0)
#error "asc_nn_f32.c needs FLT_EVAL_METHOD == 0 (float arithmetic in float; on x86 use SSE)"
#endif

static float asc_bits_to_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

void asc_f32_from_f16(const uint16_t *src, float *dst, int32_t n)
{
    for (int32_t i = 0; i < n; i++) {
        const uint32_t h = src[i];
        const uint32_t sign = (h & 0x8000u) << 16;
        const uint32_t exp = (h >> 10) & 0x1Fu;
        const uint32_t man = h & 0x3FFu;
        if (exp == 0u) { /* zero or subnormal: man * 2^-24, exact in float32 */
            const float v = (float)man * 5.9604644775390625e-08f;
            dst[i] = sign ? -v : v;
        } else if (exp == 31u) { /* inf / NaN */
            dst[i] = asc_bits_to_f32(sign | 0x7F800000u | (man << 13));
        } else {
            dst[i] = asc_bits_to_f32(sign | ((exp + 112u) << 23) | (man << 13));
        }
    }
}

/* v * 2^k, by multiplications with exact powers of two. */
static float asc_scale2(float v, int32_t k)
{
    while (k > 127) {
        v *= 1.70141183460469231732e38f; /* 2^127 */
        k -= 127;
    }
    while (k < -126) {
        v *= 1.17549435082228750797e-38f; /* 2^-126 */
        k += 126;
    }
    return v * asc_bits_to_f32((uint32_t)(k + 127) << 23);
}

float asc_expf(float x)
{
    if (x != x) {
        return x;
    }
    if (x > 88.7228394f) {
        return asc_bits_to_f32(0x7F800000u);
    }
    if (x < -103.972084f) {
        return 0.0f;
    }
    const float t = x * 1.44269504088896341f;
    const int32_t k = (int32_t)(t >= 0.0f ? t + 0.5f : t - 0.5f);
    const float kf = (float)k;
    /* ln2_hi has 15 significant bits: k * ln2_hi is exact for |k| <= 150 */
    const float r = (x - kf * 0.693145751953125f) - kf * 1.428606765330187045e-06f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    return asc_scale2(p, k);
}

static int asc_conv_args_ok(const asc_f32_conv_params *p)
{
    return p->groups >= 1 && p->in_c % p->groups == 0 && p->out_c % p->groups == 0 && p->kernel_h >= 1 &&
           p->kernel_w >= 1 && p->stride_h >= 1 && p->stride_w >= 1 && p->dilation_h >= 1 && p->dilation_w >= 1 &&
           p->in_h >= 1 && p->in_w >= 1 && p->out_h >= 1 && p->out_w >= 1;
}

int asc_f32_conv2d(const asc_f32_conv_params *p, const float *x, const float *w, const float *bias, float *y,
                   float *plane)
{
    if (p == 0 || x == 0 || w == 0 || y == 0 || !asc_conv_args_ok(p)) {
        return ASC_F32_ERR_ARG;
    }
    const int in_place = x == y;
    if (in_place && (plane == 0 || p->groups != p->in_c || p->out_c != p->in_c || p->out_h != p->in_h ||
                     p->out_w != p->in_w)) {
        return ASC_F32_ERR_ARG; /* only a depthwise conv keeping the shape runs in place */
    }
    const int32_t out_hw = p->out_h * p->out_w;
    const int32_t in_hw = p->in_h * p->in_w;
    if (p->groups == 1 && p->kernel_h == 1 && p->kernel_w == 1 && p->stride_h == 1 && p->stride_w == 1 &&
        p->pad_top == 0 && p->pad_left == 0 && p->out_h == p->in_h && p->out_w == p->in_w && in_hw <= 65535 &&
        p->in_c <= 65535 && p->out_c <= 65535) {
        /* pointwise: Y (out_c x hw) = W (out_c x in_c) * X (in_c x hw), then + bias */
        arm_matrix_instance_f32 a, b, c;
        arm_mat_init_f32(&a, (uint16_t)p->out_c, (uint16_t)p->in_c, (float32_t *)w);
        arm_mat_init_f32(&b, (uint16_t)p->in_c, (uint16_t)in_hw, (float32_t *)x);
        arm_mat_init_f32(&c, (uint16_t)p->out_c, (uint16_t)in_hw, y);
        if (arm_mat_mult_f32(&a, &b, &c) != ARM_MATH_SUCCESS) {
            return ASC_F32_ERR_ARG;
        }
        if (bias != 0) {
            for (int32_t oc = 0; oc < p->out_c; oc++) {
                float *row = y + oc * in_hw;
                const float bv = bias[oc];
                for (int32_t i = 0; i < in_hw; i++) {
                    row[i] += bv;
                }
            }
        }
        return ASC_F32_OK;
    }
    const int32_t cin_g = p->in_c / p->groups;
    const int32_t cout_g = p->out_c / p->groups;
    const int32_t khw = p->kernel_h * p->kernel_w;
    for (int32_t oc = 0; oc < p->out_c; oc++) {
        const int32_t ic0 = (oc / cout_g) * cin_g;
        const float *wo = w + oc * cin_g * khw;
        const float bv = bias != 0 ? bias[oc] : 0.0f;
        float *yo = in_place ? plane : y + oc * out_hw;
        for (int32_t oy = 0; oy < p->out_h; oy++) {
            const int32_t iy0 = oy * p->stride_h - p->pad_top;
            for (int32_t ox = 0; ox < p->out_w; ox++) {
                const int32_t ix0 = ox * p->stride_w - p->pad_left;
                float acc = 0.0f;
                if (iy0 >= 0 && iy0 + (p->kernel_h - 1) * p->dilation_h < p->in_h && ix0 >= 0 &&
                    ix0 + (p->kernel_w - 1) * p->dilation_w < p->in_w) {
                    /* the window is inside the input: the same sum in the same order, no bounds checks */
                    for (int32_t icg = 0; icg < cin_g; icg++) {
                        const float *xr = x + (ic0 + icg) * in_hw + iy0 * p->in_w + ix0;
                        const float *wk = wo + icg * khw;
                        for (int32_t ky = 0; ky < p->kernel_h; ky++, xr += p->dilation_h * p->in_w) {
                            for (int32_t kx = 0; kx < p->kernel_w; kx++) {
                                acc += xr[kx * p->dilation_w] * *wk++;
                            }
                        }
                    }
                    yo[oy * p->out_w + ox] = acc + bv;
                    continue;
                }
                for (int32_t icg = 0; icg < cin_g; icg++) {
                    const float *xc = x + (ic0 + icg) * in_hw;
                    const float *wk = wo + icg * khw;
                    for (int32_t ky = 0; ky < p->kernel_h; ky++) {
                        const int32_t iy = iy0 + ky * p->dilation_h;
                        if (iy < 0 || iy >= p->in_h) {
                            continue;
                        }
                        const float *xr = xc + iy * p->in_w;
                        const float *wr = wk + ky * p->kernel_w;
                        for (int32_t kx = 0; kx < p->kernel_w; kx++) {
                            const int32_t ix = ix0 + kx * p->dilation_w;
                            if (ix >= 0 && ix < p->in_w) {
                                acc += xr[ix] * wr[kx];
                            }
                        }
                    }
                }
                yo[oy * p->out_w + ox] = acc + bv;
            }
        }
        if (in_place) { /* channel oc of x is not read again: overwrite it */
            memcpy(y + oc * out_hw, plane, (size_t)out_hw * sizeof(float));
        }
    }
    return ASC_F32_OK;
}

int asc_f32_fully_connected(const float *x, int32_t n_in, const float *w, const float *bias, float *y, int32_t n_out)
{
    if (x == 0 || w == 0 || y == 0 || n_in < 1 || n_out < 1) {
        return ASC_F32_ERR_ARG;
    }
    for (int32_t n = 0; n < n_out; n++) {
        float32_t s;
        arm_dot_prod_f32(x, w + n * n_in, (uint32_t)n_in, &s);
        y[n] = bias != 0 ? s + bias[n] : s;
    }
    return ASC_F32_OK;
}

static int asc_pool(const asc_f32_pool_params *p, const float *x, float *y, int is_max)
{
    if (p == 0 || x == 0 || y == 0 || p->kernel_h < 1 || p->kernel_w < 1 || p->stride_h < 1 || p->stride_w < 1) {
        return ASC_F32_ERR_ARG;
    }
    const int32_t in_hw = p->in_h * p->in_w;
    for (int32_t c = 0; c < p->c; c++) {
        const float *xc = x + c * in_hw;
        float *yc = y + c * p->out_h * p->out_w;
        for (int32_t oy = 0; oy < p->out_h; oy++) {
            for (int32_t ox = 0; ox < p->out_w; ox++) {
                const int32_t iy0 = oy * p->stride_h - p->pad_top, ix0 = ox * p->stride_w - p->pad_left;
                float acc = 0.0f;
                int32_t n = 0;
                for (int32_t ky = 0; ky < p->kernel_h; ky++) {
                    const int32_t iy = iy0 + ky;
                    if (iy < 0 || iy >= p->in_h) {
                        continue;
                    }
                    for (int32_t kx = 0; kx < p->kernel_w; kx++) {
                        const int32_t ix = ix0 + kx;
                        if (ix < 0 || ix >= p->in_w) {
                            continue;
                        }
                        const float v = xc[iy * p->in_w + ix];
                        if (is_max) {
                            acc = (n == 0 || v > acc) ? v : acc;
                        } else {
                            acc += v;
                        }
                        n++;
                    }
                }
                if (n == 0) {
                    return ASC_F32_ERR_ARG; /* a window entirely in the padding */
                }
                if (!is_max) {
                    acc /= (float)(p->count_include_pad ? p->kernel_h * p->kernel_w : n);
                }
                yc[oy * p->out_w + ox] = acc;
            }
        }
    }
    return ASC_F32_OK;
}

int asc_f32_max_pool(const asc_f32_pool_params *p, const float *x, float *y) { return asc_pool(p, x, y, 1); }
int asc_f32_avg_pool(const asc_f32_pool_params *p, const float *x, float *y) { return asc_pool(p, x, y, 0); }

int asc_f32_mean(const float *x, int32_t c, int32_t h, int32_t w, int32_t axes_mask, float *y)
{
    if (x == 0 || y == 0 || c < 1 || h < 1 || w < 1 || axes_mask < 1 || axes_mask > 7) {
        return ASC_F32_ERR_ARG;
    }
    const int32_t rc = (axes_mask & 1) ? c : 1, rh = (axes_mask & 2) ? h : 1, rw = (axes_mask & 4) ? w : 1;
    const int32_t oc_n = c / rc, oh_n = h / rh, ow_n = w / rw;
    const float count = (float)(rc * rh * rw);
    for (int32_t oc = 0; oc < oc_n; oc++) {
        for (int32_t oh = 0; oh < oh_n; oh++) {
            for (int32_t ow = 0; ow < ow_n; ow++) {
                float s = 0.0f;
                for (int32_t ic = 0; ic < rc; ic++) {
                    for (int32_t ih = 0; ih < rh; ih++) {
                        const float *xr = x + ((oc + ic) * h + (oh + ih)) * w + ow;
                        for (int32_t iw = 0; iw < rw; iw++) {
                            s += xr[iw];
                        }
                    }
                }
                y[(oc * oh_n + oh) * ow_n + ow] = s / count;
            }
        }
    }
    return ASC_F32_OK;
}

int asc_f32_binary(asc_f32_binary_op op, const float *a, const int32_t a_dims[3], const float *b,
                   const int32_t b_dims[3], float *y, const int32_t y_dims[3])
{
    if (a == 0 || b == 0 || y == 0) {
        return ASC_F32_ERR_ARG;
    }
    int32_t sa[3], sb[3];
    for (int32_t d = 0; d < 3; d++) {
        if ((a_dims[d] != 1 && a_dims[d] != y_dims[d]) || (b_dims[d] != 1 && b_dims[d] != y_dims[d])) {
            return ASC_F32_ERR_ARG;
        }
    }
    sa[2] = a_dims[2] > 1 ? 1 : 0;
    sa[1] = a_dims[1] > 1 ? a_dims[2] : 0;
    sa[0] = a_dims[0] > 1 ? a_dims[1] * a_dims[2] : 0;
    sb[2] = b_dims[2] > 1 ? 1 : 0;
    sb[1] = b_dims[1] > 1 ? b_dims[2] : 0;
    sb[0] = b_dims[0] > 1 ? b_dims[1] * b_dims[2] : 0;
    int32_t k = 0;
    for (int32_t c = 0; c < y_dims[0]; c++) {
        for (int32_t h = 0; h < y_dims[1]; h++) {
            const float *ar = a + c * sa[0] + h * sa[1];
            const float *br = b + c * sb[0] + h * sb[1];
            for (int32_t w = 0; w < y_dims[2]; w++, k++) {
                const float u = ar[w * sa[2]], v = br[w * sb[2]];
                switch (op) {
                case ASC_F32_ADD: y[k] = u + v; break;
                case ASC_F32_SUB: y[k] = u - v; break;
                case ASC_F32_MUL: y[k] = u * v; break;
                case ASC_F32_DIV: y[k] = u / v; break;
                default: return ASC_F32_ERR_ARG;
                }
            }
        }
    }
    return ASC_F32_OK;
}

int asc_f32_unary(asc_f32_unary_op op, const float *x, float *y, int32_t n, float lo, float hi)
{
    if (x == 0 || y == 0 || n < 0) {
        return ASC_F32_ERR_ARG;
    }
    for (int32_t i = 0; i < n; i++) {
        const float v = x[i];
        switch (op) {
        case ASC_F32_RELU: y[i] = v > 0.0f ? v : 0.0f; break;
        case ASC_F32_SIGMOID: y[i] = 1.0f / (1.0f + asc_expf(-v)); break;
        case ASC_F32_SIN: y[i] = arm_sin_f32(v); break;
        case ASC_F32_SQRT: y[i] = sqrtf(v); break;
        case ASC_F32_SQUARE: y[i] = v * v; break;
        case ASC_F32_CLIP: y[i] = v < lo ? lo : (v > hi ? hi : v); break;
        default: return ASC_F32_ERR_ARG;
        }
    }
    return ASC_F32_OK;
}

int asc_f32_resize_nearest(const float *x, int32_t c, int32_t in_h, int32_t in_w, float *y, int32_t out_h,
                           int32_t out_w, const int32_t *row_index, const int32_t *col_index)
{
    if (x == 0 || y == 0 || row_index == 0 || col_index == 0 || c < 1) {
        return ASC_F32_ERR_ARG;
    }
    for (int32_t ch = 0; ch < c; ch++) {
        const float *xc = x + ch * in_h * in_w;
        float *yc = y + ch * out_h * out_w;
        for (int32_t oy = 0; oy < out_h; oy++) {
            const int32_t iy = row_index[oy];
            if (iy < 0 || iy >= in_h) {
                return ASC_F32_ERR_ARG;
            }
            for (int32_t ox = 0; ox < out_w; ox++) {
                const int32_t ix = col_index[ox];
                if (ix < 0 || ix >= in_w) {
                    return ASC_F32_ERR_ARG;
                }
                yc[oy * out_w + ox] = xc[iy * in_w + ix];
            }
        }
    }
    return ASC_F32_OK;
}
