"""Constant tables of a speed build: what the DSP kernels would otherwise compute on every call.

The int8 DSP kernels (``firmware/nn``) derive, per call, constants that depend only on the layer:
the 1x1 GEMM's requantisation constants per output-channel pair (``asc_pw_prep`` in
``asc_conv_s8.c``) and the 3x3 depthwise kernel's per-group table of doubled weights, biases and
requantisation constants (``asc_dw3_table`` in ``asc_depthwise_conv_s8.c``). Inside a fused
inverted-residual block those calls happen every four output rows, so the set-up is repeated up
to 16 times per layer (CP-Mobile: 16 at 64 rows, 8 at 32). A speed build computes them here once,
at export, and keeps them in flash, with the filters pre-widened to int16 lanes
(:func:`widen_1x1_filter`; layouts: ``ASC_PW_RQ_WORDS`` and ``ASC_DW3_TABLE_WORDS`` in
``firmware/nn/asc_nn.h``); a size build does not (the kernels compute the same values at run time:
same results, tested).

The ``pack_*`` functions return ``None`` unless *every* pair / group is in the kernels' fast form,
so a table is either complete or absent; the kernels then take their run-time path.

Requantisation (TFLite ``MultiplyByQuantizedMultiplier``, double rounding) in the SMMLAR form of the
kernels: with ``A = 2 acc``, ``r = -shift`` (1..20) and ``kc = 2^(r-1) + output_offset 2^r``,
``out = SSAT8(SMMLAR(A, m, kc + (A >> 31)) >> r)`` (derivation in ``asc_conv_s8.c``).
"""

from __future__ import annotations

import numpy as np

from . import c_abi

#: int32 words per output-channel pair of :func:`pack_1x1_requant` (``ASC_PW_RQ_WORDS``, read from the header)
PW_RQ_WORDS = c_abi.define("ASC_PW_RQ_WORDS")
#: int32 words per group of 4 channels of :func:`pack_dw3` (``ASC_DW3_TABLE_WORDS``, read from the header)
DW3_TABLE_WORDS = c_abi.define("ASC_DW3_TABLE_WORDS")


def _kc(shift: np.ndarray, output_offset: int) -> np.ndarray:
    r = -shift.astype(np.int64)
    return ((1 << (r - 1)) + output_offset * (1 << r)).astype(np.int64)


def _fast_channels(multiplier: np.ndarray, shift: np.ndarray, bias: np.ndarray, bias_limit: int) -> bool:
    return bool(np.all(multiplier >= 0) and np.all((shift <= -1) & (shift >= -20))
                and np.all(np.abs(bias) <= bias_limit))


def _as_i32(words: np.ndarray) -> np.ndarray:
    w = np.asarray(words, dtype=np.int64)
    assert np.all((w >= -(1 << 31)) & (w < (1 << 32))), "table word out of 32 bits"
    return (w & 0xFFFFFFFF).astype(np.uint32).view(np.int32)


def widen_1x1_filter(filt: np.ndarray) -> np.ndarray:
    """A 1x1 filter [out, 1, 1, in] (int8) in the pre-widened int32 layout of the DSP kernels
    (``asc_convolve_1x1_s8_widen_filter`` in firmware/nn/asc_nn.h): per output-channel pair
    (o, o+1) (an odd last channel is left out), per group g of 4 input channels (zero-padded),
    the words L(o, 4g, 4g+2), L(o, 4g+1, 4g+3), L(o+1, 4g, 4g+2), L(o+1, 4g+1, 4g+3), where L(o, i, j)
    holds 2*w[o][i] in bits 0-15 and 2*w[o][j] in bits 16-31 (int16 lanes; the factor 2 makes the
    kernels' accumulator 2*acc for their requantisation)."""
    f = np.asarray(filt, dtype=np.int64)
    o, k = f.shape[0], int(np.prod(f.shape[1:]))
    g = (k + 3) // 4
    w = np.zeros((o // 2 * 2, 4 * g), dtype=np.int64)
    w[:, :k] = 2 * f.reshape(o, k)[: o // 2 * 2]
    w = w.reshape(o // 2, 2, g, 4)  # pair, channel of the pair, group, lane
    lo_hi = [(0, 2), (1, 3)]
    words = np.stack([(w[..., a] & 0xFFFF) | ((w[..., b] & 0xFFFF) << 16) for a, b in lo_hi], axis=-1)
    words = words.transpose(0, 2, 1, 3).reshape(-1)  # pair, group, channel, word
    return words.astype(np.uint32).view(np.int32)


def pack_1x1_requant(multiplier, shift, bias, *, k: int, input_offset: int, output_offset: int,
                     activation: tuple[int, int] = (-128, 127), max_k: int = 128) -> np.ndarray | None:
    """Requantisation records of a 1x1 convolution for the DSP GEMM (``ASC_PW_RQ_WORDS`` layout).

    Args:
        multiplier, shift: per output channel ``(out_c,)`` (TFLite ``QuantizeMultiplier``; shift > 0
            is a left shift).
        bias: ``(out_c,)`` int32, or ``None``.
        k: input channels (the dot-product length).
        input_offset, output_offset: ``-input_zero_point``, ``+output_zero_point``.
        activation: the fused clamp in the output's quantised domain; the fast form needs (-128, 127).
        max_k: ``ASC_PW_MAX_K`` (the kernel's longest dot product on this path).

    Returns:
        int32 ``(out_c // 2 * 10,)``: per pair ``[2b0, 2b1, 2b0, 2b1, kc0, kc1, m0, m1, r0, r1]``; or
        ``None`` when the layer or any channel is outside the fast form (the kernel then computes
        the constants itself, on its int8 fallback where needed).
    """
    m = np.asarray(multiplier, dtype=np.int64).reshape(-1)
    s = np.asarray(shift, dtype=np.int64).reshape(-1)
    n = m.size
    b = np.zeros(n, np.int64) if bias is None else np.asarray(bias, dtype=np.int64).reshape(-1)
    if (tuple(activation) != (-128, 127) or k > max_k or n < 2 or not -255 <= input_offset <= 255
            or not -256 <= output_offset <= 256):
        return None
    blim = (1 << 30) - 1 - k * (128 + abs(input_offset)) * 128
    if blim < 0 or not _fast_channels(m, s, b, blim):
        return None
    p = n // 2 * 2
    b2, kc, r = 2 * b[:p], _kc(s[:p], output_offset), -s[:p]
    e, o = slice(0, p, 2), slice(1, p, 2)
    rec = np.stack([b2[e], b2[o], b2[e], b2[o], kc[e], kc[o], m[:p][e], m[:p][o], r[e], r[o]], axis=1)
    return _as_i32(rec.reshape(-1))


def pack_dw3(filt, multiplier, shift, bias, *, input_offset: int, output_offset: int,
             dilation: tuple[int, int] = (1, 1), ch_mult: int = 1) -> np.ndarray | None:
    """Tables of the 3x3 DSP depthwise path (``ASC_DW3_TABLE_WORDS`` layout).

    Args:
        filt: the DEPTHWISE_CONV_2D filter ``(1, 3, 3, C)`` int8 (.tflite layout).
        multiplier, shift: per channel ``(C,)``.
        bias: ``(C,)`` int32, or ``None``.
        input_offset, output_offset: ``-input_zero_point``, ``+output_zero_point``.
        dilation, ch_mult: the layer's; the path needs (1, 1) and 1.

    Returns:
        int32 ``(C // 4 * 38,)``: per group of 4 channels ``[kc, m, r] x 4``, ``2b x 4``, ``2b x 4``,
        9 taps x ``(lanes 2w of channels (c0, c0+2), (c0+1, c0+3))``; or ``None`` when the layer or
        any group is outside the fast form (the kernel builds what it can at run time). The
        activation does not matter: the kernel clamps a fused ReLU range afterwards.
    """
    f = np.asarray(filt, dtype=np.int64)
    if f.ndim != 4 or f.shape[:3] != (1, 3, 3) or tuple(dilation) != (1, 1) or ch_mult != 1:
        return None
    c = f.shape[3]
    g = c // 4
    m = np.asarray(multiplier, dtype=np.int64).reshape(-1)[: 4 * g]
    s = np.asarray(shift, dtype=np.int64).reshape(-1)[: 4 * g]
    b = (np.zeros(c, np.int64) if bias is None else np.asarray(bias, dtype=np.int64).reshape(-1))[: 4 * g]
    if g == 0 or not -255 <= input_offset <= 255 or not -256 <= output_offset <= 256:
        return None
    blim = (1 << 30) - 1 - 9 * (128 + abs(input_offset)) * 128
    if not _fast_channels(m, s, b, blim):
        return None
    kmr = np.stack([_kc(s, output_offset), m, -s], axis=1).reshape(g, 12)
    b2 = (2 * b).reshape(g, 4)
    w2 = (2 * f[0, :, :, : 4 * g]).reshape(9, g, 4)  # tap, group, channel of the group
    lo_hi = [(0, 2), (1, 3)]
    wl = np.stack([(w2[..., a] & 0xFFFF) | ((w2[..., bb] & 0xFFFF) << 16) for a, bb in lo_hi], axis=-1)
    wl = wl.transpose(1, 0, 2).reshape(g, 18)  # group, tap, word
    return _as_i32(np.concatenate([kmr, b2, b2, wl], axis=1).reshape(-1))


def pack_conv(filt, multiplier, shift, bias, *, input_offset: int, output_offset: int,
              activation: tuple[int, int] = (-128, 127), max_k: int = 128) -> tuple[np.ndarray, np.ndarray] | None:
    """Pre-widened filter and requantisation records of an ungrouped CONV_2D for the DSP GEMM
    (``asc_convolve_s8_packed`` / ``asc_convolve_1x1_s8_packed`` in ``firmware/nn/asc_nn.h``).

    The filter ``(C_out, kh, kw, C_in)`` is K-major (K = kh · kw · C_in), the order of the kernels'
    im2col patches, so the general convolution's GEMM is the 1×1 GEMM of ``(C_out, 1, 1, K)``: the
    same two layouts as a 1×1 layer of K input channels.

    Args:
        filt: ``(C_out, kh, kw, C_in)`` int8 (.tflite layout; groups 1).
        multiplier, shift, bias, input_offset, output_offset, activation, max_k: as for
            :func:`pack_1x1_requant` (with ``k = K``).

    Returns:
        ``(w16, rq)``: int32 ``(C_out // 2 · 4 · ceil(K / 4),)`` (``widen_1x1_filter`` layout) and
        ``(C_out // 2 · 10,)`` (:func:`pack_1x1_requant`); or ``None`` when the records do not
        exist (a channel or the layer outside the fast form: the kernels then widen and prepare at
        run time, and a widened filter alone is not worth its flash here).
    """
    f = np.asarray(filt)
    k = int(np.prod(f.shape[1:]))
    rq = pack_1x1_requant(multiplier, shift, bias, k=k, input_offset=input_offset, output_offset=output_offset,
                          activation=activation, max_k=max_k)
    if rq is None:
        return None
    return widen_1x1_filter(f), rq
