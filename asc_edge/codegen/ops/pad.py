"""PAD (H/W, or any 4-D paddings) → folded into its only consumer, or ``asc_pad_s8``.

Folded (no layer): H/W padding whose only consumer is a CONV_2D / DEPTHWISE_CONV_2D becomes that
convolution's explicit ``padding`` — exact, since the kernels skip out-of-image taps and
``x + input_offset`` is 0 for a padded zero point. Otherwise a layer of its own: TFLite int8 PAD
(``pad.cc``) fills with the output zero point (PADV2: its constant value) and shares the input's
quantisation. tflite-micro is the reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import Op, OpCase, register
from .conv import _range


@dataclass(frozen=True)
class PadParams:
    """Elements added before / after each NHWC dimension, and the int8 fill value."""
    before: tuple
    after: tuple
    value: int


@register
class Pad(Op):
    kind = "pad"
    builtins = ("PAD", "PADV2")
    c_function = "asc_pad_s8"

    def parse(self, ctx, op):
        out = op.outputs[0]
        pads = ctx.values(op.inputs[1], op, "paddings")
        if len(pads) != 4 or len(ctx.info(op.inputs[0]).shape) != 4:
            ctx.fail(op, "non-4-D paddings", "4-D PAD only")
        src, dst = ctx.info(op.inputs[0]), ctx.info(out)
        if (src.scale, src.zero_point) != (dst.scale, dst.zero_point):
            ctx.fail(op, "PAD changes quantisation", "invalid int8 PAD")
        users = ctx.consumers.get(out, [])
        nxt = ctx.model.ops[users[0]] if len(users) == 1 else None
        if (op.op == "PAD" and pads[0] == [0, 0] and pads[3] == [0, 0] and nxt is not None
                and nxt.op in ("CONV_2D", "DEPTHWISE_CONV_2D") and nxt.inputs[0] == out and out not in ctx.model.outputs):
            ctx.act(op.inputs[0], op)
            ctx.folded_pad[nxt.index] = (pads[1][0], pads[2][0], op.inputs[0])
            ctx.rewrites["pad_folded"].append(op.index)
            return None
        x_id, y_id = ctx.act(op.inputs[0], op), ctx.act(out, op)
        value = ctx.tensors[y_id].zero_point
        if op.op == "PADV2" and len(op.inputs) > 2 and op.inputs[2] >= 0:
            value = int(ctx.const(op.inputs[2], op, np.int8, "pad value").reshape(-1)[0])
        return ctx.layer(self.kind, op, [x_id], y_id,
                         PadParams(tuple(int(p[0]) for p in pads), tuple(int(p[1]) for p in pads), int(value)))

    def emit(self, L, em):
        p = L.params
        return [f"static const asc_nn_dims in_d = {em.dims(em.T[L.inputs[0]].dims)}, b_d = {em.dims(p.before)}, "
                f"a_d = {em.dims(p.after)};",
                f"st = {self.c_function}(&in_d, {em.ptr(L.inputs[0])}, &b_d, &a_d, {p.value}, {em.ptr(L.output)});"]

    def cases(self, rng):
        out = []
        for i in range(3):
            shape = [1, int(rng.integers(2, 8)), int(rng.integers(2, 8)), int(rng.integers(1, 9))]
            pads = [[0, 0], [int(rng.integers(0, 3)), int(rng.integers(0, 3))],
                    [int(rng.integers(0, 3)), int(rng.integers(1, 3))], [0, int(i == 2)]]
            out.append(OpCase(f"pad_{i}", shape, _range(rng), lambda tf, x, p=pads: tf.pad(x, p), ("PAD",)))
        return out
