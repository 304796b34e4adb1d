/* asc_resize_nearest_s8.c - RESIZE_NEAREST_NEIGHBOR int8 (tflite-micro
 * kernels/resize_nearest_neighbor.cc -> reference_ops::ResizeNearestNeighbor / GetNearestNeighbor).
 *
 * The source index is computed like TFLite, in IEEE single precision (float scale, float product,
 * floor or round half away from zero), so non-integer ratios pick the same pixels bit for bit
 * (the Cortex-M4F's single-precision FPU and an x86-64 host's SSE give identical float results;
 * -ffp-contract=off keeps the multiply unfused). The value is >= 0, so floor is a truncating
 * conversion and round is truncation + (fraction >= 0.5); no libm call.
 *
 * No DSP path: the kernel is a row / pixel copy (memcpy of C bytes per output pixel, whole output
 * rows copied when the source row repeats); the DSP extension has nothing to add to a copy. */
#include "asc_nn_internal.h"

static int32_t asc_nearest(int32_t i, int32_t in_size, int32_t out_size, int align, int half)
{
    const float scale = (align && out_size > 1) ? (float)(in_size - 1) / (float)(out_size - 1)
                                                : (float)in_size / (float)out_size;
    const float offset = half ? 0.5f : 0.0f;
    const float v = ((float)i + offset) * scale; /* >= 0 */
    int32_t r = (int32_t)v;                      /* floor */
    if (align) {
        const float frac = v - (float)r; /* exact */
        r += frac >= 0.5f ? 1 : 0;       /* std::round: half away from zero */
    }
    r = ASC_NN_MIN(r, in_size - 1);
    if (half) {
        r = ASC_NN_MAX(r, 0);
    }
    return r;
}

asc_nn_status asc_resize_nearest_s8(const asc_nn_resize_nearest_params *p,
                                    const asc_nn_dims *in, const int8_t *input,
                                    const asc_nn_dims *out, int8_t *output)
{
    if (!p || !in || !out || !input || !output || in->n <= 0 || in->h <= 0 || in->w <= 0 ||
        in->c <= 0 || out->n != in->n || out->c != in->c || out->h <= 0 || out->w <= 0 ||
        in->h > (1 << 24) || in->w > (1 << 24) || out->h > (1 << 24) || out->w > (1 << 24)) {
        return ASC_NN_ARG_ERROR;
    }
    const int align = p->align_corners != 0, half = p->half_pixel_centers != 0;
    const int32_t ch = in->c;
    const int64_t in_row = (int64_t)in->w * ch, out_row = (int64_t)out->w * ch;
    for (int32_t b = 0; b < in->n; b++) {
        const int8_t *img = input + (int64_t)b * in->h * in_row;
        int8_t *dst = output + (int64_t)b * out->h * out_row;
        int32_t prev_y = -1;
        for (int32_t oy = 0; oy < out->h; oy++, dst += out_row) {
            const int32_t iy = asc_nearest(oy, in->h, out->h, align, half);
            if (iy == prev_y) {
                memcpy(dst, dst - out_row, (size_t)out_row); /* the same source row: copy the row */
                continue;
            }
            prev_y = iy;
            const int8_t *src = img + iy * in_row;
            if (ch == 1) {
                for (int32_t ox = 0; ox < out->w; ox++) {
                    dst[ox] = src[asc_nearest(ox, in->w, out->w, align, half)];
                }
            } else {
                for (int32_t ox = 0; ox < out->w; ox++) {
                    const int32_t ix = asc_nearest(ox, in->w, out->w, align, half);
                    memcpy(dst + (int64_t)ox * ch, src + (int64_t)ix * ch, (size_t)ch);
                }
            }
        }
    }
    return ASC_NN_OK;
}
