"""TRANSPOSE of a 4-D tensor → ``asc_transpose_s8`` (a byte gather).

TFLite ``transpose.cc``: output dimension ``k`` is input dimension ``perm[k]``; input and output
share quantisation. onnx2tf writes TRANSPOSE → STRIDED_SLICE → TRANSPOSE for a channel slice of an
NCHW model (Res2Net's channel groups). tflite-micro is the reference.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import Op, OpCase, register
from .conv import _range


@dataclass(frozen=True)
class TransposeParams:
    """The permutation: output dimension k is input dimension ``perm[k]`` (NHWC indices)."""
    perm: tuple


@register
class Transpose(Op):
    kind = "transpose"
    builtins = ("TRANSPOSE",)
    c_function = "asc_transpose_s8"

    def parse(self, ctx, op):
        x_id, y_id = ctx.act(op.inputs[0], op), ctx.act(op.outputs[0], op)
        perm = [int(v) for v in ctx.values(op.inputs[1], op, "permutation")]
        x, y = ctx.tensors[x_id], ctx.tensors[y_id]
        if len(x.shape) != 4 or sorted(perm) != [0, 1, 2, 3]:
            ctx.fail(op, f"permutation {perm} of a rank-{len(x.shape)} tensor", "4-D TRANSPOSE only")
        if not ctx.same_quant(x_id, y_id) or [x.shape[p] for p in perm] != list(y.shape):
            ctx.fail(op, "output quantisation or shape does not follow the permutation", "invalid TRANSPOSE")
        return ctx.layer(self.kind, op, [x_id], y_id, TransposeParams(tuple(perm)))

    def emit(self, L, em):
        return [f"static const asc_nn_dims in_d = {em.dims(em.T[L.inputs[0]].dims)}, "
                f"perm = {em.dims(L.params.perm)}, out_d = {em.dims(em.T[L.output].dims)};",
                f"st = {self.c_function}(&in_d, {em.ptr(L.inputs[0])}, &perm, &out_d, {em.ptr(L.output)});"]

    def cases(self, rng):
        out = []
        for perm in ((0, 3, 1, 2), (0, 2, 3, 1), (0, 2, 1, 3)):
            shape = [1, int(rng.integers(2, 9)), int(rng.integers(2, 9)), int(rng.integers(2, 9))]
            out.append(OpCase(f"transpose_{''.join(map(str, perm))}", shape, _range(rng),
                              lambda tf, x, p=perm: tf.transpose(x, p), ("TRANSPOSE",)))
        return out
