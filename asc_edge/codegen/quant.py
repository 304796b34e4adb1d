"""TFLite integer-quantisation arithmetic, reproduced exactly in Python.

``quantize_multiplier`` is TFLite's ``QuantizeMultiplier`` (tensorflow/lite/kernels/internal/
quantization_util.cc): frexp in double precision, round half away from zero of q * 2^31, the
q_fixed == 2^31 renormalisation and the shift < -31 flush to zero.  The helpers below compute the
per-op parameters the way TFLite(-Micro) ``Prepare`` functions do (scales are float32 in the
flatbuffer and are widened to double before any arithmetic).
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

__all__ = [
    "quantize_multiplier",
    "round_half_away",
    "conv_multipliers",
    "add_params",
    "mul_params",
    "mean_params",
    "activation_range",
    "ADD_LEFT_SHIFT",
    "squared_difference_params",
    "tflite_padding",
    "requantize_ref",
]

ADD_LEFT_SHIFT = 20  # TFLite int8 ADD (int16 uses 15)


def round_half_away(x: float) -> int:
    """std::round: nearest integer, ties away from zero (exact for doubles)."""
    if x >= 0:
        r = math.floor(x)
        return int(r + 1) if x - r >= 0.5 else int(r)
    return -round_half_away(-x)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite ``QuantizeMultiplier(double)`` -> (int32 multiplier, shift); shift > 0 = left shift."""
    real = float(real)
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)  # real = q * 2^shift, 0.5 <= |q| < 1
    q_fixed = round_half_away(q * float(1 << 31))
    if abs(q_fixed) > (1 << 31):
        raise ValueError(f"quantize_multiplier: q_fixed out of range for {real!r}")
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if q_fixed > 2**31 - 1:
        raise ValueError(f"quantize_multiplier: multiplier overflow for {real!r}")
    if shift < -31:
        shift = 0
        q_fixed = 0
    return int(q_fixed), int(shift)


def _f(x) -> float:
    """A flatbuffer float32 scale widened to double (as static_cast<double>(float))."""
    return float(np.float32(x))


def conv_multipliers(input_scale: float, filter_scales: Iterable[float], output_scale: float
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (multiplier, shift) arrays for CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED:
    effective scale = input_scale * filter_scale[c] / output_scale, in double."""
    mults, shifts = [], []
    for fs in np.atleast_1d(np.asarray(list(filter_scales) if not isinstance(filter_scales, np.ndarray)
                                       else filter_scales, dtype=np.float32)):
        m, s = quantize_multiplier(_f(input_scale) * _f(fs) / _f(output_scale))
        mults.append(m)
        shifts.append(s)
    return np.asarray(mults, dtype=np.int32), np.asarray(shifts, dtype=np.int32)


def add_params(s1: float, zp1: int, s2: float, zp2: int, so: float, zpo: int) -> dict:
    """TFLite(-Micro) int8 ADD parameters (CalculateOpDataAdd), left_shift = 20, ratios in double.
    SUB uses the same: measured against the tflite-micro interpreter the project pins, whose SUB
    takes double ratios (its float-ratio source variant differs by one LSB on about 2 % of
    broadcast cases)."""
    twice_max = 2.0 * _f(max(np.float32(s1), np.float32(s2)))
    m1, sh1 = quantize_multiplier(_f(s1) / twice_max)
    m2, sh2 = quantize_multiplier(_f(s2) / twice_max)
    mo, sho = quantize_multiplier(twice_max / (float(1 << ADD_LEFT_SHIFT) * _f(so)))
    return dict(input1_offset=-int(zp1), input1_multiplier=m1, input1_shift=sh1,
                input2_offset=-int(zp2), input2_multiplier=m2, input2_shift=sh2,
                left_shift=ADD_LEFT_SHIFT, output_offset=int(zpo),
                output_multiplier=mo, output_shift=sho)


def squared_difference_params(s1: float, zp1: int, s2: float, zp2: int, so: float, zpo: int) -> dict:
    """tflite-micro int8 SQUARED_DIFFERENCE (``squared_difference.cc`` PrepareQuantized):
    ``left_shift = 7``, ``twice_max = 2·max(s1, s2)`` in double, input multipliers
    ``s_i / twice_max``, output multiplier ``twice_max² / (float(2^14)·s_out)`` (the product in
    float32, then double). The ``asc_nn_squared_difference_params`` fields (without activation)."""
    left = 7
    twice_max = 2.0 * _f(max(np.float32(s1), np.float32(s2)))
    m1, sh1 = quantize_multiplier(_f(s1) / twice_max)
    m2, sh2 = quantize_multiplier(_f(s2) / twice_max)
    mo, sho = quantize_multiplier(twice_max * twice_max / float(np.float32(1 << (2 * left)) * np.float32(so)))
    return dict(input1_offset=-int(zp1), input1_multiplier=m1, input1_shift=sh1,
                input2_offset=-int(zp2), input2_multiplier=m2, input2_shift=sh2,
                left_shift=left, output_offset=int(zpo), output_multiplier=mo, output_shift=sho)


def mul_params(s1: float, zp1: int, s2: float, zp2: int, so: float, zpo: int) -> dict:
    """TFLite(-Micro) int8 MUL: real multiplier = s1 * s2 / so (double)."""
    m, sh = quantize_multiplier(_f(s1) * _f(s2) / _f(so))
    return dict(input1_offset=-int(zp1), input2_offset=-int(zp2), output_offset=int(zpo),
                output_multiplier=m, output_shift=sh)


def mean_params(si: float, zpi: int, so: float, zpo: int) -> dict:
    """TFLite(-Micro) int8 MEAN: QuantizeMultiplier(si / so); 1/N is folded in by the kernel."""
    m, sh = quantize_multiplier(_f(si) / _f(so))
    return dict(input_offset=-int(zpi), output_offset=int(zpo), multiplier=m, shift=sh)


def activation_range(activation: str | None, scale: float, zero_point: int,
                     qmin: int = -128, qmax: int = 127) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for int8 (quantise in float32 like TFLite)."""

    def q(v: float) -> int:
        return int(zero_point) + round_half_away(float(np.float32(v) / np.float32(scale)))

    act = (activation or "NONE").upper()
    if act == "NONE":
        return qmin, qmax
    if act == "RELU":
        return max(qmin, q(0.0)), qmax
    if act == "RELU6":
        return max(qmin, q(0.0)), min(qmax, q(6.0))
    if act == "RELU_N1_TO_1":
        return max(qmin, q(-1.0)), min(qmax, q(1.0))
    raise ValueError(f"unsupported fused activation {activation!r}")


def requantize_ref(x: Sequence[int] | np.ndarray, multiplier: int, shift: int) -> np.ndarray:
    """Python model of MultiplyByQuantizedMultiplier (double rounding), for tests."""
    out = []
    for v in np.asarray(x, dtype=np.int64).ravel():
        left = shift if shift > 0 else 0
        right = -shift if shift < 0 else 0
        a = (int(v) << left) & 0xFFFFFFFF  # int32 wrap-around of x * 2^left
        a = a - (1 << 32) if a >= (1 << 31) else a
        b = int(multiplier)
        if a == b == -(2**31):
            h = 2**31 - 1
        else:
            ab = a * b
            nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
            t = ab + nudge
            h = abs(t) // (1 << 31) * (1 if t >= 0 else -1)  # truncation toward zero
        mask = (1 << right) - 1
        rem = h & mask
        thr = (mask >> 1) + (1 if h < 0 else 0)
        out.append((h >> right) + (1 if rem > thr else 0))
    return np.asarray(out, dtype=np.int64)


def tflite_padding(in_size: int, filter_size: int, stride: int, dilation: int = 1,
                   padding: str = "SAME") -> tuple[int, int]:
    """TFLite ComputePaddingHeightWidth for one spatial dim -> (pad_before, out_size).
    The extra odd pixel of SAME padding goes after (bottom/right), as in TFLite."""
    eff = (filter_size - 1) * dilation + 1
    if padding.upper() == "SAME":
        out = (in_size + stride - 1) // stride
    elif padding.upper() == "VALID":
        out = (in_size + stride - eff) // stride
    else:
        raise ValueError(f"unknown padding {padding!r}")
    total = max(0, (out - 1) * stride + eff - in_size)
    return total // 2, out
