"""SPLIT / SPLIT_V → one ``asc_strided_slice_s8`` layer per output (kind ``strided_slice``).

Res2Net's channel groups (``torch.split`` / ``chunk``) convert to SPLIT (equal parts) or SPLIT_V
(given sizes) along one axis; each output is the contiguous slice ``[offset, offset + size)`` of
that axis, a byte copy (TFLite ``split.cc``: outputs share the input's quantisation).
tflite-micro is the reference.
"""

from __future__ import annotations

from . import Op, OpCase, register
from .conv import _range
from .strided_slice import SliceParams


@register
class Split(Op):
    kind = "split"
    builtins = ("SPLIT", "SPLIT_V")

    def parse(self, ctx, op):
        if op.op == "SPLIT":
            axis_t, x = op.inputs[0], op.inputs[1]
        else:
            x, axis_t = op.inputs[0], op.inputs[2]
        x_id = ctx.act(x, op)
        shape = ctx.tensors[x_id].shape
        if len(shape) != 4:
            ctx.fail(op, f"a rank-{len(shape)} input", "4-D SPLIT only")
        axis = ctx.values(axis_t, op, "axis")
        axis = int(axis[0] if isinstance(axis, list) else axis) % 4
        layers, offset = [], 0
        for t in op.outputs:
            y_id = ctx.act(t, op)
            if not ctx.same_quant(x_id, y_id):
                ctx.fail(op, "an output with another quantisation than the input", "int8 SPLIT copies bytes")
            begin = [0, 0, 0, 0]
            begin[axis] = offset
            offset += ctx.tensors[y_id].shape[axis]
            layers.append(ctx.layer("strided_slice", op, [x_id], y_id, SliceParams(tuple(begin), (1, 1, 1, 1))))
        if offset != shape[axis]:
            ctx.fail(op, f"outputs cover {offset} of {shape[axis]} along axis {axis}", "invalid SPLIT")
        return layers

    def cases(self, rng):
        out = []
        for i, axis in enumerate((3, 2, 3)):
            shape = [1, int(rng.integers(2, 7)), 2 * int(rng.integers(2, 5)), 4 * int(rng.integers(1, 5))]

            def build(tf, x, ax=axis, v=i == 2):
                if v:  # SPLIT_V: unequal parts
                    a, b = tf.split(x, [shape[ax] // 4, shape[ax] - shape[ax] // 4], axis=ax)
                else:
                    a, b = tf.split(x, 2, axis=ax)
                return tf.concat([b, a], ax)  # swapped: the test sees which part went where

            out.append(OpCase(f"split_{'v' if i == 2 else ''}axis{axis}_{i}", shape, _range(rng), build,
                              ("SPLIT_V" if i == 2 else "SPLIT",)))
        return out
