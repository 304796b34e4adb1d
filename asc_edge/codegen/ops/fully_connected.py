"""FULLY_CONNECTED → ``asc_fully_connected_s8``.

Filter ``(units, depth)`` int8 (per-tensor or per-channel scales), int32 bias, fused activation
(TFLite ``fully_connected.cc``); the input is read as ``(batch, depth)`` whatever its rank.
tflite-micro is the reference.
"""

from __future__ import annotations

import numpy as np

from asc_edge.codegen import c_abi, quant

from . import Op, OpCase, register
from .conv import _range, emit_weights, quant_init


@register
class FullyConnected(Op):
    kind = "fc"
    builtins = ("FULLY_CONNECTED",)
    c_function = "asc_fully_connected_s8"

    def parse(self, ctx, op):
        x_id, y_id = ctx.act(op.inputs[0], op), ctx.act(op.outputs[0], op)
        filt = ctx.const(op.inputs[1], op, np.int8, "filter")
        if filt.ndim != 2:
            ctx.fail(op, f"{filt.ndim}-D filter", "FULLY_CONNECTED filters are 2-D")
        w = ctx.info(op.inputs[1])
        y = ctx.tensors[y_id]
        mult, shift = quant.conv_multipliers(ctx.tensors[x_id].scale, w.scales, y.scale)
        bias = None
        if len(op.inputs) > 2 and op.inputs[2] >= 0:
            bias = ctx.const(op.inputs[2], op, np.int32, "bias").astype(np.int32)
        params = c_abi.params("asc_nn_fc_params", input_offset=-ctx.tensors[x_id].zero_point,
                              filter_offset=-int(w.zero_points[0]), output_offset=y.zero_point,
                              activation=quant.activation_range(op.options.get("fusedActivationFunction"),
                                                                y.scale, y.zero_point))
        return ctx.layer(self.kind, op, [x_id], y_id, params,
                         dict(filter=filt, bias=bias, multiplier=mult, shift=shift))

    def emit(self, L, em):
        bias = emit_weights(L, em)
        units, depth = L.consts["filter"].shape
        x, y = em.T[L.inputs[0]], em.T[L.output]
        return [f"static const asc_nn_per_channel_quant q = {quant_init(L)};",
                f"static const asc_nn_dims in_d = {em.dims(x.dims)}, f_d = {em.dims((units, 1, 1, depth))}, "
                f"out_d = {em.dims(y.dims)};",
                f"static const asc_nn_fc_params p = {em.init(L.params)};",
                f"st = {self.c_function}(&p, &q, {int(len(L.consts['multiplier']) > 1)}, &in_d, {em.ptr(L.inputs[0])}, "
                f"&f_d, L{L.index}_filter, {bias}, &out_d, {em.ptr(L.output)});"]

    def macs(self, L, graph):
        return int(np.prod(graph.tensors[L.output].dims)) * int(L.consts["filter"].shape[1])

    def cases(self, rng):
        out = []
        for i in range(3):
            depth, units = int(rng.integers(4, 70)), int(rng.integers(2, 16))
            wmag = float(10 ** rng.uniform(-2, 0.5))
            wt = (rng.standard_normal((depth, units)) * wmag).astype(np.float32)
            b = (rng.standard_normal(units) * wmag).astype(np.float32)
            relu = i == 1

            def build(tf, x, wt=wt, b=b, relu=relu, depth=depth):
                y = tf.matmul(tf.reshape(x, [1, depth]), wt) + b
                return tf.nn.relu(y) if relu else y

            out.append(OpCase(f"fc_{depth}x{units}_{i}", [1, 1, 1, depth], _range(rng), build, ("FULLY_CONNECTED",)))
        return out
