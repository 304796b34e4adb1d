"""MUL → ``asc_mul_s8`` (4-D broadcasting; an operand may be a constant).

TFLite(-Micro) int8 MUL (``mul.cc``): ``out = zp_out + MBQM((a + off_a)(b + off_b), M, shift)``
with ``M · 2^shift = s_a · s_b / s_out`` (:func:`asc_edge.codegen.quant.mul_params`).
tflite-micro is the reference.
"""

from __future__ import annotations

import numpy as np

from asc_edge.codegen import quant

from . import Op, OpCase, register
from .add import binary_cases, emit_binary, parse_binary
from .conv import _range


@register
class Mul(Op):
    kind = "mul"
    builtins = ("MUL",)
    c_function = "asc_mul_s8"

    def parse(self, ctx, op):
        return parse_binary(ctx, op, self.kind, "asc_nn_mul_params", quant.mul_params)

    def emit(self, L, em):
        return emit_binary(L, em, self.c_function)

    def cases(self, rng):
        out = binary_cases(rng, "mul", "MUL", lambda tf, a, b: a * b, 6)
        for i in range(2):  # activation x per-channel constant
            shape = [1, int(rng.integers(2, 9)), int(rng.integers(2, 9)), int(rng.integers(3, 17)) | 1]
            c = (rng.uniform(-1, 1, shape[3]) * 10 ** rng.uniform(-1, 1)).astype(np.float32)
            out.append(OpCase(f"mul_const_{i}", shape, _range(rng), lambda tf, a, c=c: a * c, ("MUL",)))
        return out
