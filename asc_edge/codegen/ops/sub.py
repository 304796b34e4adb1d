"""SUB → ``asc_sub_s8`` (4-D broadcasting; an operand may be a constant).

tflite-micro int8 SUB (``sub.cc``, ``reference_ops::SubElementwise`` / ``BroadcastQuantSubSlow``):
ADD's arithmetic on both rescaled inputs with their difference, and ADD's parameters
(:func:`asc_edge.codegen.quant.add_params`: ratios in double, as the pinned tflite-micro computes
them — a float32 variant of the ratios differs by one LSB on some inputs). ResNorm / instance normalisation
(``x − mean``) converts to it. tflite-micro is the reference.
"""

from __future__ import annotations

from asc_edge.codegen import quant

from . import Op, OpCase, register
from .add import binary_cases, emit_binary, parse_binary
from .conv import _range


@register
class Sub(Op):
    kind = "sub"
    builtins = ("SUB",)
    c_function = "asc_sub_s8"

    def parse(self, ctx, op):
        return parse_binary(ctx, op, self.kind, "asc_nn_add_params", quant.add_params)

    def emit(self, L, em):
        return emit_binary(L, em, self.c_function)

    def cases(self, rng):
        out = binary_cases(rng, "sub", "SUB", lambda tf, a, b: a - b)
        for axis in (1, 2):  # x - mean(x) along one axis (ResNorm): a (1, 1, W, C) / (1, H, 1, C) operand
            shape = [1, int(rng.integers(2, 12)), int(rng.integers(2, 12)), int(rng.integers(2, 9))]
            out.append(OpCase(f"sub_mean_axis{axis}", shape, _range(rng),
                              lambda tf, x, a=axis: x - tf.reduce_mean(x, axis=a, keepdims=True), ("SUB",)))
        return out
