"""DEPTHWISE_CONV_2D (and CONV_2D with ``groups == in_channels``) → ``asc_depthwise_conv_s8``.

Filter ``(1, kh, kw, C_in · ch_mult)``, per-channel symmetric int8; output channel ``c · ch_mult +
m`` reads input channel ``c`` (TFLite ``depthwise_conv.cc``). Parsing is shared with
:mod:`.conv`. tflite-micro is the reference.
"""

from __future__ import annotations

import numpy as np

from . import Op, OpCase, register
from .conv import _range, conv_call, conv_cases, conv_like


@register
class DepthwiseConv2D(Op):
    kind = "depthwise"
    builtins = ("DEPTHWISE_CONV_2D",)
    report_type = "depthwise"
    c_function = "asc_depthwise_conv_s8"

    def parse(self, ctx, op):
        return conv_like(ctx, op, depthwise_builtin=True)

    def emit(self, L, em):
        return conv_call(L, em, self.c_function, "0")

    def macs(self, L, graph):
        f = L.consts["filter"].shape
        return int(np.prod(graph.tensors[L.output].dims)) * int(f[1]) * int(f[2])

    def cases(self, rng):
        out = []
        strides = [(1, 1), (2, 2), (1, 2), (2, 1), (1, 1), (2, 2)]
        for j, stride in enumerate(strides):
            mult = 2 if j % 3 == 2 else 1
            c = int(rng.integers(3, 21)) | 1 if rng.integers(0, 2) else int(rng.integers(2, 12)) * 4
            out.append(_dw_case(rng, c, mult, (3, 3), stride, "VALID" if j % 4 == 3 else "SAME"))
        out.append(_dw_case(rng, 16, 1, (5, 5), (2, 2), "SAME"))
        out.append(conv_cases(rng, (3, 3), (1, 2), 10, groups=10, padding="SAME", name="grouped"))
        return out


def _dw_case(rng, c, mult, k, stride, padding):
    h, w = int(rng.integers(4, 14)), int(rng.integers(4, 14))
    wmag = float(10 ** rng.uniform(-2.5, 0.5))
    filt = (rng.standard_normal((k[0], k[1], c, mult)) * wmag).astype(np.float32)
    bias = (rng.standard_normal(c * mult) * wmag).astype(np.float32)
    act = ["NONE", "RELU", "RELU6"][int(rng.integers(0, 3))]

    def build(tf, x):
        y = tf.nn.bias_add(tf.nn.depthwise_conv2d(x, filt, strides=[1, *stride, 1], padding=padding), bias)
        return {"NONE": y, "RELU": tf.nn.relu(y), "RELU6": tf.nn.relu6(y)}[act]

    return OpCase(f"dw_k{k[0]}_s{stride[0]}{stride[1]}_{padding}_c{c}m{mult}", [1, h, w, c], _range(rng), build,
                  ("DEPTHWISE_CONV_2D",))
