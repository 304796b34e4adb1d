"""MEAN of a 4-D tensor: over H and W → ``asc_mean_s8`` (kind ``mean``, the global pooling head);
over one axis → ``asc_mean_axis_s8`` (kind ``mean_axis``: BC-ResNet's frequency mean, ResNorm's
statistics).

TFLite(-Micro) int8 MEAN (``reduce.cc``, ``QuantizedMeanOrSum``): multiplier / shift from
``input_scale / output_scale`` with ``1 / N`` folded in by the kernel
(:func:`asc_edge.codegen.quant.mean_params`). tflite-micro is the reference.
"""

from __future__ import annotations

import numpy as np

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
        axes = sorted({int(a) % 4 for a in (axes if isinstance(axes, list) else [axes])})
        x, y = ctx.tensors[x_id], ctx.tensors[y_id]
        if len(x.shape) != 4 or axes != list(range(axes[0], axes[-1] + 1)):
            ctx.fail(op, f"MEAN over axes {axes} of a rank-{len(x.shape)} tensor",
                     "supported: the mean over one axis or a run of adjacent axes of a 4-D tensor")
        p = quant.mean_params(x.scale, x.zero_point, y.scale, y.zero_point)
        if axes == [1, 2]:
            return ctx.layer(self.kind, op, [x_id], y_id,
                             c_abi.params("asc_nn_mean_params", activation=(-128, 127), **p))
        # adjacent axes a..b are one axis of the row-major view (d0..d(a-1), d(a)·…·d(b), d(b+1)..): the
        # kernel sums the same N elements and divides once, so the result is the same
        a, b, d = axes[0], axes[-1], list(x.dims)
        merged = d[:a] + [int(np.prod(d[a:b + 1]))] + d[b + 1:]
        pad = 4 - len(merged)  # merging b - a + 1 axes into one frees that many - 1 leading dims
        view, axis = [1] * pad + merged, a + pad
        return ctx.layer("mean_axis", op, [x_id], y_id,
                         c_abi.params("asc_nn_mean_axis_params", axis=axis, activation=(-128, 127), **p),
                         {"view": np.array(view, np.int32)})

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


@register
class MeanAxis(Op):
    """MEAN over one axis (parsed by :class:`Mean`)."""
    kind = "mean_axis"
    c_function = "asc_mean_axis_s8"

    def emit(self, L, em):
        return [f"static const asc_nn_mean_axis_params p = {em.init(L.params)};",
                f"static const asc_nn_dims in_d = {em.dims(L.consts['view'])};",
                f"st = {self.c_function}(&p, &in_d, {em.ptr(L.inputs[0])}, {em.ptr(L.output)});"]

    def cases(self, rng):
        out = []
        for axes in ((2, 3), (1, 2, 3)):
            shape = [1, int(rng.integers(1, 9)), int(rng.integers(1, 12)), int(rng.integers(1, 17))]
            out.append(OpCase(f"mean_axes{''.join(map(str, axes))}", shape, _range(rng),
                              lambda tf, x, a=axes: tf.reduce_mean(x, axis=list(a), keepdims=True), ("MEAN",)))
        for i, axis in enumerate((1, 2, 1, 3, 2)):
            shape = [1, int(rng.integers(1, 40)), int(rng.integers(1, 20)), int(rng.integers(1, 17))]
            out.append(OpCase(f"mean_axis{axis}_{i}", shape, _range(rng),
                              lambda tf, x, a=axis, k=bool(i % 2): tf.reduce_mean(x, axis=a, keepdims=k), ("MEAN",)))
        return out
