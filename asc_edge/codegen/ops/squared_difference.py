"""SQUARED_DIFFERENCE → ``asc_squared_difference_s8`` (4-D broadcasting).

tflite-micro int8 SQUARED_DIFFERENCE (``squared_difference.cc``): both inputs rescaled with
``left_shift = 7``, the difference squared and requantised (parameters:
:func:`asc_edge.codegen.quant.squared_difference_params`). The variance of instance
normalisation (ResNorm) converts to it. tflite-micro is the reference.
"""

from __future__ import annotations

from asc_edge.codegen import c_abi, quant

from . import Op, OpCase, register
from .add import binary_cases, binary_operands, emit_binary
from .conv import _range


@register
class SquaredDifference(Op):
    kind = "squared_difference"
    builtins = ("SQUARED_DIFFERENCE",)
    c_function = "asc_squared_difference_s8"

    def parse(self, ctx, op):
        ids, qp, consts, y_id = binary_operands(ctx, op)
        y = ctx.tensors[y_id]
        p = quant.squared_difference_params(qp[0][0], qp[0][1], qp[1][0], qp[1][1], y.scale, y.zero_point)
        return ctx.layer(self.kind, op, ids, y_id,
                         c_abi.params("asc_nn_squared_difference_params", activation=(-128, 127), **p), consts)

    def emit(self, L, em):
        return emit_binary(L, em, self.c_function)

    def cases(self, rng):
        out = binary_cases(rng, "sqdiff", "SQUARED_DIFFERENCE", lambda tf, a, b: tf.math.squared_difference(a, b))
        for axis in (1, 2):
            shape = [1, int(rng.integers(2, 12)), int(rng.integers(2, 12)), int(rng.integers(2, 9))]
            out.append(OpCase(f"sqdiff_mean_axis{axis}", shape, _range(rng), lambda tf, x, a=axis: tf.math.squared_difference(
                x, tf.reduce_mean(x, axis=a, keepdims=True)), ("SQUARED_DIFFERENCE",)))
        return out
