"""CONCATENATION of 4-D tensors → ``asc_concatenation_s8`` (byte copies).

tflite-micro's int8 CONCATENATION copies bytes: the inputs must share the output's scale and zero
point (the converter inserts a QUANTIZE otherwise). tflite-micro is the reference.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import Op, OpCase, register
from .conv import _range


@dataclass(frozen=True)
class ConcatParams:
    """Concatenation axis in NHWC (0 = n … 3 = c)."""
    axis: int


@register
class Concatenation(Op):
    kind = "concat"
    builtins = ("CONCATENATION",)
    c_function = "asc_concatenation_s8"

    def parse(self, ctx, op):
        ids = [ctx.act(t, op) for t in op.inputs]
        y_id = ctx.act(op.outputs[0], op)
        y = ctx.tensors[y_id]
        axis = int(op.options.get("axis", 0))
        axis = axis + len(y.shape) if axis < 0 else axis
        if len(y.shape) != 4:
            ctx.fail(op, f"rank-{len(y.shape)} concatenation", "4-D only")
        if op.options.get("fusedActivationFunction") not in (None, "NONE"):
            ctx.fail(op, "fused activation", "not supported on CONCATENATION")
        if not all(ctx.same_quant(t, y_id) for t in ids):
            ctx.fail(op, "inputs with another quantisation than the output",
                     "tflite-micro copies bytes; requantising concatenation is not implemented")
        return ctx.layer(self.kind, op, ids, y_id, ConcatParams(axis))

    def emit(self, L, em):
        n = len(L.inputs)
        return [f"const int8_t *const ins[{n}] = {{{', '.join(em.ptr(t) for t in L.inputs)}}};",
                f"static const asc_nn_dims in_d[{n}] = {{{', '.join(em.dims(em.T[t].dims) for t in L.inputs)}}};",
                f"static const asc_nn_dims out_d = {em.dims(em.T[L.output].dims)};",
                f"st = {self.c_function}(ins, in_d, {n}, {L.params.axis}, &out_d, {em.ptr(L.output)});"]

    def cases(self, rng):
        """Two slices of one input concatenated (slices keep the input's quantisation, as the
        converter needs for a byte-copy CONCATENATION)."""
        out = []
        for axis in (1, 2, 3):
            shape = [1, int(rng.integers(3, 8)), int(rng.integers(3, 8)), int(rng.integers(3, 9))]
            k = int(rng.integers(1, shape[axis]))

            def build(tf, x, ax=axis, k=k):
                a = x[tuple(slice(0, k) if d == ax else slice(None) for d in range(4))]  # STRIDED_SLICE
                return tf.concat([x, a], ax)

            out.append(OpCase(f"concat_axis{axis}", shape, _range(rng), build, ("CONCATENATION",)))
        return out
