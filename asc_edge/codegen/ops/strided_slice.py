"""STRIDED_SLICE of a 4-D tensor → ``asc_strided_slice_s8`` (a byte gather).

TFLite ``strided_slice.cc`` with begin/end masks (no ellipsis / new-axis / shrink-axis masks);
input and output share quantisation. tflite-micro is the reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from . import Op, OpCase, register
from .conv import _range


@dataclass(frozen=True)
class SliceParams:
    """Start index and step per NHWC dimension (the output shape gives the counts)."""
    begin: tuple
    stride: tuple


def slice_begin(ctx, op, in_shape, out_shape) -> SliceParams:
    o = op.options
    if o.get("ellipsisMask") or o.get("newAxisMask") or o.get("shrinkAxisMask"):
        ctx.fail(op, "ellipsis / new-axis / shrink-axis masks", "only plain 4-D slices are supported")
    if len(in_shape) != 4:
        ctx.fail(op, "a non-4-D input", "4-D slices only")
    begin, end, strides = (ctx.values(t, op, "begin/end/strides") for t in op.inputs[1:4])
    b_out, s_out = [], []
    for k in range(4):
        d, s = in_shape[k], strides[k]
        if s == 0:
            ctx.fail(op, "stride 0", "invalid model")
        if o.get("beginMask", 0) >> k & 1:
            b = 0 if s > 0 else d - 1
        else:
            b = begin[k] + d if begin[k] < 0 else begin[k]
            b = min(max(b, 0), d - 1) if s < 0 else min(max(b, 0), d)
        if o.get("endMask", 0) >> k & 1:
            e = d if s > 0 else -1
        else:
            e = end[k] + d if end[k] < 0 else end[k]
            e = min(max(e, -1), d - 1) if s < 0 else min(max(e, 0), d)
        n = max(0, math.ceil((e - b) / s))
        if n != out_shape[k]:
            ctx.fail(op, f"slice count {n} on dim {k} differs from the output shape {list(out_shape)}",
                     "unexpected STRIDED_SLICE semantics; report the model")
        b_out.append(int(b))
        s_out.append(int(s))
    return SliceParams(tuple(b_out), tuple(s_out))


@register
class StridedSlice(Op):
    kind = "strided_slice"
    builtins = ("STRIDED_SLICE",)
    c_function = "asc_strided_slice_s8"

    def parse(self, ctx, op):
        x_id, y_id = ctx.act(op.inputs[0], op), ctx.act(op.outputs[0], op)
        if not ctx.same_quant(x_id, y_id):
            ctx.fail(op, "input and output quantisation differ", "int8 STRIDED_SLICE copies bytes")
        p = slice_begin(ctx, op, ctx.tensors[x_id].shape, ctx.tensors[y_id].shape)
        return ctx.layer(self.kind, op, [x_id], y_id, p)

    def emit(self, L, em):
        p = L.params
        return [f"static const asc_nn_dims in_d = {em.dims(em.T[L.inputs[0]].dims)}, b_d = {em.dims(p.begin)}, "
                f"s_d = {em.dims(p.stride)}, out_d = {em.dims(em.T[L.output].dims)};",
                f"st = {self.c_function}(&in_d, {em.ptr(L.inputs[0])}, &b_d, &s_d, &out_d, {em.ptr(L.output)});"]

    def cases(self, rng):
        out = []
        for i in range(3):
            shape = [1, int(rng.integers(3, 10)), int(rng.integers(3, 10)), int(rng.integers(3, 17))]
            b = [0, int(rng.integers(0, 2)), int(rng.integers(0, 2)), 0]
            s = [1, int(rng.integers(1, 3)), int(rng.integers(1, 3)), 1]
            out.append(OpCase(f"slice_{i}", shape, _range(rng),
                              lambda tf, x, b=b, s=s, e=shape: tf.strided_slice(x, b, e, s), ("STRIDED_SLICE",)))
        return out
