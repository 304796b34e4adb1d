"""MEAN over H and W of a 4-D tensor → ``asc_mean_s8`` (the global pooling head).

TFLite(-Micro) int8 MEAN (``reduce.cc``, ``QuantizedMeanOrSum``): multiplier / shift from
``input_scale / output_scale`` with ``1 / (H·W)`` folded in by the kernel
(:func:`asc_edge.codegen.quant.mean_params`). tflite-micro is the reference.
"""

from __future__ import annotations

from asc_edge.codegen import c_abi, quant

from . import Op, OpCase, register
from .conv import _range


@register
class Mean(Op):
    kind = "mean"
    builtins = ("MEAN",)
    c_function = "asc_mean_s8"

    def parse(self, ctx, op):
        x_id, y_id = ctx.act(op.inputs[0], op), ctx.act(op.outputs[0], op)
        axes = ctx.values(op.inputs[1], op, "axes")
        axes = axes if isinstance(axes, list) else [axes]
        x, y = ctx.tensors[x_id], ctx.tensors[y_id]
        if sorted(int(a) % 4 for a in axes) != [1, 2] or len(x.shape) != 4:
            ctx.fail(op, f"MEAN over axes {axes}", "only the mean over H and W (axes 1, 2) of a 4-D tensor is supported")
        p = quant.mean_params(x.scale, x.zero_point, y.scale, y.zero_point)
        return ctx.layer(self.kind, op, [x_id], y_id,
                         c_abi.params("asc_nn_mean_params", activation=(-128, 127), **p))

    def emit(self, L, em):
        return [f"static const asc_nn_mean_params p = {em.init(L.params)};",
                f"static const asc_nn_dims in_d = {em.dims(em.T[L.inputs[0]].dims)};",
                f"st = {self.c_function}(&p, &in_d, {em.ptr(L.inputs[0])}, {em.ptr(L.output)});"]

    def cases(self, rng):
        out = []
        for i in range(4):
            shape = [1, int(rng.integers(1, 20)), int(rng.integers(1, 20)), int(rng.integers(3, 33)) | 1]
            out.append(OpCase(f"mean_hw_{i}", shape, _range(rng),
                              lambda tf, x, k=bool(i % 2): tf.reduce_mean(x, axis=[1, 2], keepdims=k), ("MEAN",)))
        return out
