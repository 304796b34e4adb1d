/* asc_elementwise_s8.c - ADD and MUL int8 (TFLite reference_integer_ops::AddElementwise /
 * MulElementwise semantics) with 4-D broadcasting. */
#include "asc_nn_internal.h"

/* Broadcast-compatible 4-D shapes: every input dim equals the output dim or is 1. */
static int asc_bcast_ok(const asc_nn_dims *a, const asc_nn_dims *o)
{
    return (a->n == o->n || a->n == 1) && (a->h == o->h || a->h == 1) && (a->w == o->w || a->w == 1) &&
           (a->c == o->c || a->c == 1) && o->n > 0 && o->h > 0 && o->w > 0 && o->c > 0;
}

static inline int32_t asc_bidx(const asc_nn_dims *a, int32_t n, int32_t h, int32_t w, int32_t c)
{
    return (((a->n == 1 ? 0 : n) * a->h + (a->h == 1 ? 0 : h)) * a->w + (a->w == 1 ? 0 : w)) * a->c +
           (a->c == 1 ? 0 : c);
}

static int asc_same(const asc_nn_dims *a, const asc_nn_dims *b)
{
    return a->n == b->n && a->h == b->h && a->w == b->w && a->c == b->c;
}

static inline int8_t asc_add_one(const asc_nn_add_params *p, int32_t x1, int32_t x2)
{
    const int32_t s1 = (int32_t)((uint32_t)(x1 + p->input1_offset) << p->left_shift);
    const int32_t s2 = (int32_t)((uint32_t)(x2 + p->input2_offset) << p->left_shift);
    const int32_t r1 = asc_mbqm(s1, p->input1_multiplier, p->input1_shift);
    const int32_t r2 = asc_mbqm(s2, p->input2_multiplier, p->input2_shift);
    const int32_t raw = asc_mbqm(r1 + r2, p->output_multiplier, p->output_shift) + p->output_offset;
    return asc_clamp_s8(raw, &p->activation);
}

asc_nn_status asc_add_s8(const asc_nn_add_params *p,
                         const asc_nn_dims *d1, const int8_t *in1,
                         const asc_nn_dims *d2, const int8_t *in2,
                         const asc_nn_dims *od, int8_t *out)
{
    if (!p || !d1 || !d2 || !od || !in1 || !in2 || !out || !asc_bcast_ok(d1, od) ||
        !asc_bcast_ok(d2, od) || p->left_shift < 0 || p->left_shift > 30 ||
        !asc_act_ok(&p->activation)) {
        return ASC_NN_ARG_ERROR;
    }
    if (asc_same(d1, od) && asc_same(d2, od)) {
        const int32_t size = od->n * od->h * od->w * od->c;
        for (int32_t i = 0; i < size; i++) {
            out[i] = asc_add_one(p, in1[i], in2[i]);
        }
        return ASC_NN_OK;
    }
    int32_t i = 0;
    for (int32_t n = 0; n < od->n; n++) {
        for (int32_t h = 0; h < od->h; h++) {
            for (int32_t w = 0; w < od->w; w++) {
                for (int32_t c = 0; c < od->c; c++) {
                    out[i++] = asc_add_one(p, in1[asc_bidx(d1, n, h, w, c)], in2[asc_bidx(d2, n, h, w, c)]);
                }
            }
        }
    }
    return ASC_NN_OK;
}

static inline int8_t asc_mul_one(const asc_nn_mul_params *p, int32_t x1, int32_t x2)
{
    const int32_t prod = (x1 + p->input1_offset) * (x2 + p->input2_offset);
    const int32_t raw = asc_mbqm(prod, p->output_multiplier, p->output_shift) + p->output_offset;
    return asc_clamp_s8(raw, &p->activation);
}

asc_nn_status asc_mul_s8(const asc_nn_mul_params *p,
                         const asc_nn_dims *d1, const int8_t *in1,
                         const asc_nn_dims *d2, const int8_t *in2,
                         const asc_nn_dims *od, int8_t *out)
{
    if (!p || !d1 || !d2 || !od || !in1 || !in2 || !out || !asc_bcast_ok(d1, od) ||
        !asc_bcast_ok(d2, od) || !asc_act_ok(&p->activation)) {
        return ASC_NN_ARG_ERROR;
    }
    int32_t i = 0;
    for (int32_t n = 0; n < od->n; n++) {
        for (int32_t h = 0; h < od->h; h++) {
            for (int32_t w = 0; w < od->w; w++) {
                for (int32_t c = 0; c < od->c; c++) {
                    out[i++] = asc_mul_one(p, in1[asc_bidx(d1, n, h, w, c)], in2[asc_bidx(d2, n, h, w, c)]);
                }
            }
        }
    }
    return ASC_NN_OK;
}
