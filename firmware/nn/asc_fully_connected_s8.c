/* asc_fully_connected_s8.c - FULLY_CONNECTED int8 (TFLite reference_integer_ops::FullyConnected). */
#include "asc_nn_internal.h"

asc_nn_status asc_fully_connected_s8(const asc_nn_fc_params *p, const asc_nn_per_channel_quant *q,
                                     int32_t per_channel,
                                     const asc_nn_dims *in, const int8_t *input,
                                     const asc_nn_dims *f, const int8_t *filter,
                                     const int32_t *bias,
                                     const asc_nn_dims *out, int8_t *output)
{
    if (!p || !q || !q->multiplier || !q->shift || !in || !f || !out || !input || !filter || !output) {
        return ASC_NN_ARG_ERROR;
    }
    const int32_t batches = in->n;
    const int32_t depth = f->c;
    const int32_t units = f->n;
    if (batches <= 0 || depth <= 0 || units <= 0 || in->h * in->w * in->c != depth ||
        out->c != units || out->n != batches || !asc_act_ok(&p->activation)) {
        return ASC_NN_ARG_ERROR;
    }
    for (int32_t b = 0; b < batches; b++) {
        for (int32_t u = 0; u < units; u++) {
            int32_t acc = asc_dot_s8(input + b * depth, filter + u * depth, depth, p->input_offset,
                                     p->filter_offset, 0);
            if (bias) {
                acc += bias[u];
            }
            const int32_t k = per_channel ? u : 0;
            acc = asc_mbqm(acc, q->multiplier[k], q->shift[k]) + p->output_offset;
            output[b * units + u] = asc_clamp_s8(acc, &p->activation);
        }
    }
    return ASC_NN_OK;
}
