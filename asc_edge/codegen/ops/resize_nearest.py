"""RESIZE_NEAREST_NEIGHBOR → ``asc_resize_nearest_s8`` (a byte gather).

TFLite ``resize_nearest_neighbor.cc`` (``reference_ops::ResizeNearestNeighbor``): the source
index of each output row / column from the float32 scale ``in / out`` (or ``(in-1)/(out-1)`` with
``align_corners``), with the op's ``align_corners`` / ``half_pixel_centers``; input and output
share quantisation. Up-sampling of a gate (GhostNetV2's DFC attention) converts to this.
tflite-micro is the reference.
"""

from __future__ import annotations

from asc_edge.codegen import c_abi

from . import Op, OpCase, register
from .conv import _range


@register
class ResizeNearest(Op):
    kind = "resize_nearest"
    builtins = ("RESIZE_NEAREST_NEIGHBOR",)
    c_function = "asc_resize_nearest_s8"

    def parse(self, ctx, op):
        x_id, y_id = ctx.act(op.inputs[0], op), ctx.act(op.outputs[0], op)
        x, y = ctx.tensors[x_id], ctx.tensors[y_id]
        if len(x.shape) != 4 or not ctx.same_quant(x_id, y_id):
            ctx.fail(op, "not a 4-D tensor with the output's quantisation", "int8 RESIZE_NEAREST_NEIGHBOR copies bytes")
        size = ctx.values(op.inputs[1], op, "size")
        if list(size) != list(y.shape[1:3]):
            ctx.fail(op, f"size {size} ≠ output {y.shape}", "invalid model")
        o = op.options
        return ctx.layer(self.kind, op, [x_id], y_id, c_abi.params(
            "asc_nn_resize_nearest_params", align_corners=int(bool(o.get("alignCorners"))),
            half_pixel_centers=int(bool(o.get("halfPixelCenters")))))

    def emit(self, L, em):
        return [f"static const asc_nn_resize_nearest_params p = {em.init(L.params)};",
                f"static const asc_nn_dims in_d = {em.dims(em.T[L.inputs[0]].dims)}, out_d = {em.dims(em.T[L.output].dims)};",
                f"st = {self.c_function}(&p, &in_d, {em.ptr(L.inputs[0])}, &out_d, {em.ptr(L.output)});"]

    def cases(self, rng):
        out = []
        for i, (size, ac, hp) in enumerate([((2, 2), False, False), ((3, 2), False, True), ((5, 7), True, False),
                                            ((1, 3), False, False), ((0.5, 1), False, True)]):
            shape = [1, int(rng.integers(2, 7)), int(rng.integers(2, 7)), int(rng.integers(1, 9))]
            new = [max(1, int(round(shape[1] * size[0]))), max(1, int(round(shape[2] * size[1])))]
            out.append(OpCase(f"resize_{i}_{new[0]}x{new[1]}{'_ac' if ac else ''}{'_hp' if hp else ''}", shape,
                              _range(rng), lambda tf, x, n=new, a=ac, h=hp: tf.compat.v1.image.resize_nearest_neighbor(
                                  x, n, align_corners=a, half_pixel_centers=h), ("RESIZE_NEAREST_NEIGHBOR",)))
        return out
