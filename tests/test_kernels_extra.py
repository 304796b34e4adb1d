"""Edge cases of the fast DSP paths of firmware/nn (1x1 / im2col GEMM core, depthwise, ADD).

The portable build is the reference here (tests/test_kernels.py checks it against tflite-micro and a
numpy model). These cases aim at what the DSP paths special-case: odd and tiny channel counts
(channel pairs, groups of 4, K % 8 / K % 4 tails), W = 1 and odd pixel counts (pixel pairs),
strides, requantisation shifts at and beyond the fast form's limits (shift -1 / -2 / -31 / >= 0,
multiplier 0, output offset folding), huge biases, activation ranges narrower than int8, a
one-patch im2col buffer, and ADD parameters inside / outside its fast path. Checked on the host
(DSP path with emulated intrinsics) and on the real Cortex-M4 build under qemu-arm.
"""

from __future__ import annotations

import ctypes as C
import shutil
import subprocess

import numpy as np
import pytest

from asc_edge.codegen import quant
from asc_edge.codegen.kernels_host import (NN_DIR, Context, ConvParams, Dims, HostKernels,
                                           PerChannelQuant, Tile, _i32, _ptr8, _ptr32, kernel_sources)
from asc_edge.codegen.kernels_host import _act as _act_struct

import kernel_models  # noqa: E402  (tests/ is on sys.path, as for conftest)

SEED = 777


@pytest.fixture(scope="module")
def libs():
    return {"portable": HostKernels("portable"), "dsp": HostKernels("dsp")}


def _q(rng, n, mode):
    """Per-channel (multiplier, shift) of a flavour."""
    m = rng.integers(1 << 30, 1 << 31, size=n)
    if mode == "real":
        s = rng.integers(-12, -1, size=n)
    elif mode == "edge":
        s = rng.choice([-31, -30, -22, -21, -20, -2, -1, 0, 1, 2], size=n)
        m = np.where(rng.random(n) < 0.1, 0, m)
        m = np.where(rng.random(n) < 0.1, (1 << 31) - 1, m)
        m = np.where(rng.random(n) < 0.1, 1 << 30, m)
    else:  # mixed
        s = rng.integers(-14, 3, size=n)
    return m, s


def _act(rng):
    r = rng.random()
    if r < 0.5:
        return (-128, 127)
    if r < 0.75:
        return (int(rng.integers(-128, 0)), 127)
    return (int(rng.integers(-128, 0)), int(rng.integers(0, 128)))


def _bias(rng, n):
    b = rng.integers(-50000, 50000, size=n)
    if rng.random() < 0.2:
        b = rng.integers(-(2**31), 2**31, size=n)  # wraps the int32 accumulator: exact wrap-around
    return b


def _cases_1x1(rng, n):
    for it in range(n):
        cin = int(rng.choice([1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 16, 31, 32, 56, 120]))
        cout = int(rng.choice([1, 2, 3, 4, 5, 10, 17]))
        h, w = int(rng.integers(1, 4)), int(rng.choice([1, 2, 3, 4, 9, 17]))
        stride = [(1, 1), (1, 1), (2, 1), (1, 2), (2, 2)][it % 5]
        yield cin, cout, h, w, stride


def test_1x1_edge_cases_portable_equals_dsp(libs):
    rng = np.random.default_rng(SEED)
    P, D = libs["portable"], libs["dsp"]
    for it, (cin, cout, h, w, stride) in enumerate(_cases_1x1(rng, 300)):
        oh, ow = (h - 1) // stride[0] + 1, (w - 1) // stride[1] + 1
        x = rng.integers(-128, 128, size=(1, h, w, cin)).astype(np.int8)
        wt = rng.integers(-128, 128, size=(cout, 1, 1, cin)).astype(np.int8)
        if it % 7 == 0:
            wt[:] = -128
            x[:] = 127 if it % 2 else -128
        m, s = _q(rng, cout, ["real", "edge", "mixed"][it % 3])
        zp_in = int(rng.choice([-128, 127, 0, int(rng.integers(-128, 128))]))
        zp_out = int(rng.choice([-128, 127, 0, int(rng.integers(-128, 128))]))
        kw_ = dict(input_offset=-zp_in, output_offset=zp_out, multipliers=m, shifts=s, stride=stride,
                   out_hw=(oh, ow), activation=_act(rng))
        b = None if it % 11 == 0 else _bias(rng, cout)
        ref = P.conv(x, wt, b, kernel="asc_convolve_1x1_s8", **kw_)
        got = D.conv(x, wt, b, kernel="asc_convolve_1x1_s8", **kw_)
        assert np.array_equal(ref, got), (it, cin, cout, h, w, stride)


def _conv_ctx(lib, x, w, b, ctx_bytes, *, input_offset, output_offset, multipliers, shifts, stride, padding,
              out_hw, activation):
    """asc_convolve_s8 with an explicit scratch size (HostKernels.conv always gives the full size)."""
    out = np.zeros((x.shape[0], out_hw[0], out_hw[1], w.shape[0]), dtype=np.int8)
    mult, sh = _i32(multipliers), _i32(shifts)
    bb = None if b is None else _i32(b)
    scratch = np.zeros(max(ctx_bytes, 1), dtype=np.int8)
    ctx = Context(scratch.ctypes.data_as(C.c_void_p), int(ctx_bytes))
    prm = ConvParams(int(input_offset), int(output_offset), Tile(*stride), Tile(*padding), Tile(1, 1),
                     _act_struct(activation))
    q = PerChannelQuant(_ptr32(mult), _ptr32(sh))
    st = lib.lib.asc_convolve_s8(C.byref(ctx), C.byref(prm), C.byref(q), C.byref(Dims(*x.shape)), _ptr8(x),
                                 C.byref(Dims(*w.shape)), _ptr8(w), _ptr32(bb), C.byref(Dims(*out.shape)),
                                 _ptr8(out))
    assert st == 0
    return out


def test_general_conv_im2col_buffers(libs):
    rng = np.random.default_rng(SEED + 1)
    P, D = libs["portable"], libs["dsp"]
    for it in range(120):
        cin = int(rng.choice([1, 2, 3, 5, 8, 9, 16]))
        cout = int(rng.choice([1, 2, 3, 8, 9, 32]))
        k = int(rng.choice([1, 2, 3, 5]))
        h, w = int(rng.integers(k, 12)), int(rng.integers(k, 12))
        stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        pad = (int(rng.integers(0, k)), int(rng.integers(0, k)))
        oh, ow = (h + 2 * pad[0] - k) // stride[0] + 1, (w + 2 * pad[1] - k) // stride[1] + 1
        x = rng.integers(-128, 128, size=(1, h, w, cin)).astype(np.int8)
        wt = rng.integers(-128, 128, size=(cout, k, k, cin)).astype(np.int8)
        m, s = _q(rng, cout, ["real", "edge", "mixed"][it % 3])
        kw_ = dict(input_offset=-int(rng.integers(-128, 128)), output_offset=int(rng.integers(-128, 128)),
                   multipliers=m, shifts=s, stride=stride, padding=pad, out_hw=(oh, ow), activation=_act(rng))
        b = _bias(rng, cout)
        ref = P.conv(x, wt, b, **kw_)
        assert np.array_equal(ref, D.conv(x, wt, b, **kw_)), it
        patch = k * k * cin
        for size in (patch, 2 * patch - 1, 0):  # one pixel at a time / no buffer (direct loop)
            assert np.array_equal(ref, _conv_ctx(D, x, wt, b, size, **kw_)), (it, size)


def test_depthwise_edge_cases_portable_equals_dsp(libs):
    rng = np.random.default_rng(SEED + 2)
    P, D = libs["portable"], libs["dsp"]
    for it in range(200):
        c = int(rng.choice([1, 3, 4, 5, 7, 8, 12, 64, 120]))
        kh, kw = [(3, 3), (3, 3), (1, 1), (2, 3), (3, 1), (5, 5), (1, 9)][it % 7]
        h, w = int(rng.integers(1, 6)), int(rng.choice([1, 2, 3, 9, 17]))
        stride = [(1, 1), (1, 2), (2, 1), (2, 2)][it % 4]
        dil = (1, 1) if it % 5 else (2, 2)
        pad = (int(rng.integers(0, kh)), int(rng.integers(0, kw)))
        oh = (h + 2 * pad[0] - (kh - 1) * dil[0] - 1) // stride[0] + 1
        ow = (w + 2 * pad[1] - (kw - 1) * dil[1] - 1) // stride[1] + 1
        if oh <= 0 or ow <= 0:
            continue
        x = rng.integers(-128, 128, size=(1, h, w, c)).astype(np.int8)
        wt = rng.integers(-128, 128, size=(1, kh, kw, c)).astype(np.int8)
        m, s = _q(rng, c, ["real", "edge", "mixed"][it % 3])
        kw_ = dict(input_offset=-int(rng.choice([-128, 127, int(rng.integers(-128, 128))])),
                   output_offset=int(rng.choice([-128, 127, int(rng.integers(-128, 128))])), multipliers=m,
                   shifts=s, ch_mult=1, stride=stride, padding=pad, dilation=dil, out_hw=(oh, ow),
                   activation=_act(rng))
        b = None if it % 9 == 0 else _bias(rng, c)
        assert np.array_equal(P.depthwise_conv(x, wt, b, **kw_), D.depthwise_conv(x, wt, b, **kw_)), it


def _add_params(rng, it):
    if it % 2 == 0:
        s1, s2, so = (float(v) for v in 10 ** rng.uniform(-3, 0, size=3))
        z1, z2, zo = (int(v) for v in rng.integers(-128, 128, size=3))
        return quant.add_params(s1, z1, s2, z2, so, zo)
    p = dict(input1_offset=int(rng.integers(-260, 260)), input1_multiplier=int(rng.integers(1 << 30, 1 << 31)),
             input1_shift=int(rng.choice([0, -1, -2, -7, -31, 1])), input2_offset=int(rng.integers(-260, 260)),
             input2_multiplier=int(rng.integers(1 << 30, 1 << 31)), input2_shift=int(rng.choice([0, -1, -5, -31])),
             left_shift=int(rng.choice([20, 20, 20, 19])), output_offset=int(rng.integers(-128, 128)),
             output_multiplier=int(rng.integers(1 << 30, 1 << 31)),
             output_shift=int(rng.choice([-1, -2, -10, -19, -21, -22, 0])))
    return p


def test_add_edge_cases_portable_equals_dsp(libs):
    rng = np.random.default_rng(SEED + 3)
    P, D = libs["portable"], libs["dsp"]
    for it in range(300):
        n = int(rng.integers(1, 70))
        x1 = rng.integers(-128, 128, size=(1, 1, 1, n)).astype(np.int8)
        x2 = rng.integers(-128, 128, size=(1, 1, 1, n)).astype(np.int8)
        x1[0, 0, 0, 0], x2[0, 0, 0, 0] = -128, 127
        prm, act = _add_params(rng, it), _act(rng)
        assert np.array_equal(P.add(x1, x2, params=prm, activation=act), D.add(x1, x2, params=prm, activation=act)), \
            (it, prm)


def test_requant_fast_form_matches_reference():
    """The DSP requantisation identities (asc_nn_internal.h / asc_elementwise_s8.c), checked in Python
    against quant.requantize_ref, ties included."""
    rng = np.random.default_rng(SEED + 4)
    for _ in range(20000):
        s = int(rng.integers(-31, -1))
        m = int(rng.integers(0, 1 << 31))
        if rng.random() < 0.5:
            a = int(rng.integers(-(2**31), 2**31))
        else:  # near ties of the final rounding
            r = -s
            m = 1 << 30
            a = int(np.clip((int(rng.integers(-2**18, 2**18)) * (1 << r) + (1 << (r - 1)) + int(rng.integers(-1, 2))) * 2,
                            -(2**31), 2**31 - 1))
        r = -s
        c = ((1 << (r - 2)) << 32) + (1 << 30) - ((1 << 31) if a < 0 else 0)
        assert ((a * m + c) >> 32) >> (r - 1) == int(quant.requantize_ref([a], m, s)[0]), (a, m, s)
    for _ in range(20000):  # SMMULR form of SaturatingRoundingDoublingHighMul for |a| < 2^30
        a = int(rng.integers(-(2**30) + 1, 2**30))
        m = int(rng.integers(0, 1 << 31))
        assert (2 * a * m + (1 << 31)) >> 32 == int(quant.requantize_ref([a], m, 0)[0]), (a, m)


# ---------------------------------------------------------------------------------------------
# the same kinds of cases with the real instructions (Cortex-M4 build under qemu-arm)
# ---------------------------------------------------------------------------------------------


def _arr(name, ctype, a):
    return f"static const {ctype} {name}[] = {{{','.join(str(int(v)) for v in np.asarray(a).ravel())}}};\n"


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-arm") is None,
                    reason="needs arm-none-eabi-gcc and qemu-arm")
def test_cortex_m4_build_edge_cases_under_qemu(libs, tmp_path):
    rng = np.random.default_rng(SEED + 5)
    P = libs["portable"]
    decls, calls, expected = [], [], []
    for i in range(60):
        kind = i % 4
        zp_in, zp_out = int(rng.choice([-128, 127, int(rng.integers(-128, 128))])), int(rng.integers(-128, 128))
        act = _act(rng)
        if kind in (0, 1):  # 1x1 / general conv
            cin = int(rng.choice([1, 3, 4, 5, 8, 13, 32, 56]))
            cout = int(rng.choice([1, 2, 3, 5, 8, 10]))
            k = 1 if kind == 0 else int(rng.choice([2, 3]))
            h, w = int(rng.integers(k, 5)), int(rng.choice([k, k + 1, 9, 17]))
            stride = (1, 1) if kind == 0 and i % 3 else (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
            pad = (0, 0) if k == 1 else (int(rng.integers(0, k)), int(rng.integers(0, k)))
            oh, ow = (h + 2 * pad[0] - k) // stride[0] + 1, (w + 2 * pad[1] - k) // stride[1] + 1
            x = rng.integers(-128, 128, size=(1, h, w, cin)).astype(np.int8)
            wt = rng.integers(-128, 128, size=(cout, k, k, cin)).astype(np.int8)
            b = _bias(rng, cout)
            m, s = _q(rng, cout, ["real", "edge", "mixed"][i % 3])
            expected.append(P.conv(x, wt, b, input_offset=-zp_in, output_offset=zp_out, multipliers=m, shifts=s,
                                   stride=stride, padding=pad, out_hw=(oh, ow), activation=act,
                                   kernel="asc_convolve_wrapper_s8"))
            ctx_size = "sizeof(scratch)" if i % 8 else str(k * k * cin)
            decls += [_arr(f"x{i}", "int8_t", x), _arr(f"w{i}", "int8_t", wt), _arr(f"b{i}", "int32_t", b),
                      _arr(f"m{i}", "int32_t", m), _arr(f"s{i}", "int32_t", s)]
            calls.append(
                f"{{ asc_nn_context ctx = {{scratch, {ctx_size}}};\n"
                f"  asc_nn_conv_params p = {{{-zp_in}, {zp_out}, {{{stride[0]}, {stride[1]}}}, {{{pad[0]}, {pad[1]}}},"
                f" {{1, 1}}, {{{act[0]}, {act[1]}}}}};\n"
                f"  asc_nn_per_channel_quant q = {{m{i}, s{i}}};\n"
                f"  asc_nn_dims id = {{1, {h}, {w}, {cin}}}, fd = {{{cout}, {k}, {k}, {cin}}}, od = {{1, {oh}, {ow}, {cout}}};\n"
                f"  emit(asc_convolve_wrapper_s8(&ctx, &p, &q, &id, x{i}, &fd, w{i}, b{i}, &od, out), {oh * ow * cout}); }}\n")
        elif kind == 2:  # depthwise
            c = int(rng.choice([3, 4, 5, 8, 12, 64]))
            kh, kw = [(3, 3), (3, 3), (2, 3), (1, 1)][(i // 4) % 4]
            h, w = int(rng.integers(1, 5)), int(rng.choice([1, 3, 9, 17]))
            stride = [(1, 1), (1, 2), (2, 1)][(i // 4) % 3]
            pad = (int(rng.integers(0, kh)), int(rng.integers(0, kw)))
            oh, ow = (h + 2 * pad[0] - kh) // stride[0] + 1, (w + 2 * pad[1] - kw) // stride[1] + 1
            if oh <= 0 or ow <= 0:
                continue
            x = rng.integers(-128, 128, size=(1, h, w, c)).astype(np.int8)
            wt = rng.integers(-128, 128, size=(1, kh, kw, c)).astype(np.int8)
            b = _bias(rng, c)
            m, s = _q(rng, c, ["real", "edge", "mixed"][i % 3])
            expected.append(P.depthwise_conv(x, wt, b, input_offset=-zp_in, output_offset=zp_out, multipliers=m,
                                             shifts=s, ch_mult=1, stride=stride, padding=pad, out_hw=(oh, ow),
                                             activation=act))
            decls += [_arr(f"x{i}", "int8_t", x), _arr(f"w{i}", "int8_t", wt), _arr(f"b{i}", "int32_t", b),
                      _arr(f"m{i}", "int32_t", m), _arr(f"s{i}", "int32_t", s)]
            calls.append(
                f"{{ asc_nn_dw_conv_params p = {{{-zp_in}, {zp_out}, 1, {{{stride[0]}, {stride[1]}}},"
                f" {{{pad[0]}, {pad[1]}}}, {{1, 1}}, {{{act[0]}, {act[1]}}}}};\n"
                f"  asc_nn_per_channel_quant q = {{m{i}, s{i}}};\n"
                f"  asc_nn_dims id = {{1, {h}, {w}, {c}}}, fd = {{1, {kh}, {kw}, {c}}}, od = {{1, {oh}, {ow}, {c}}};\n"
                f"  emit(asc_depthwise_conv_s8(0, &p, &q, &id, x{i}, &fd, w{i}, b{i}, &od, out), {oh * ow * c}); }}\n")
        else:  # ADD
            n = int(rng.integers(1, 60))
            x1 = rng.integers(-128, 128, size=(1, 1, 1, n)).astype(np.int8)
            x2 = rng.integers(-128, 128, size=(1, 1, 1, n)).astype(np.int8)
            prm = _add_params(rng, i // 4)
            expected.append(P.add(x1, x2, params=prm, activation=act))
            decls += [_arr(f"x{i}", "int8_t", x1), _arr(f"y{i}", "int8_t", x2)]
            vals = ", ".join(str(int(prm[k])) for k in (
                "input1_offset", "input1_multiplier", "input1_shift", "input2_offset", "input2_multiplier",
                "input2_shift", "left_shift", "output_offset", "output_multiplier", "output_shift"))
            calls.append(
                f"{{ asc_nn_add_params p = {{{vals}, {{{act[0]}, {act[1]}}}}};\n"
                f"  asc_nn_dims d = {{1, 1, 1, {n}}};\n"
                f"  emit(asc_add_s8(&p, &d, x{i}, &d, y{i}, &d, out), {n}); }}\n")
    kernel_models.run_m4_cases(tmp_path, decls, calls, expected)


# ---------------------------------------------------------------------------------------------
# the pre-widened int16 paths (pw16 GEMM for 1x1 / im2col conv, dw3 depthwise, SXTAB16 avgpool)
# ---------------------------------------------------------------------------------------------


def _q_pw(rng, n):
    """Per-channel (multiplier, shift) around the limits of the pw16 / dw3 fast requantisation
    (multiplier >= 0, shift in [-20, -1]); some channels outside it (int8 fallback)."""
    m = rng.integers(1 << 30, 1 << 31, size=n)
    s = rng.integers(-12, -4, size=n)
    r = rng.random(n)
    s = np.where(r < 0.1, -1, s)
    s = np.where((r >= 0.1) & (r < 0.2), -20, s)
    s = np.where((r >= 0.2) & (r < 0.23), -21, s)  # outside: int8 path for that channel (pair / group)
    s = np.where((r >= 0.23) & (r < 0.26), 0, s)
    m = np.where(rng.random(n) < 0.05, 0, m)
    m = np.where(rng.random(n) < 0.05, 1 << 30, m)
    return m, s


def _bias_pw(rng, n, k, in_off):
    """Biases around the exactness bound |bias| + K (128 + |in_off|) 128 < 2^30 of the 2*acc form."""
    lim = (1 << 30) - 1 - k * (128 + abs(in_off)) * 128
    b = rng.integers(-60000, 60000, size=n)
    sel = rng.random(n)
    b = np.where(sel < 0.05, lim, b)
    b = np.where((sel >= 0.05) & (sel < 0.1), -lim, b)
    b = np.where((sel >= 0.1) & (sel < 0.13), lim + 1, b)
    b = np.where((sel >= 0.13) & (sel < 0.16), -(lim + 1), b)
    return b


def test_smmlar_requant_form_matches_reference():
    """The pw16 / dw3 / ADD requantisation from the doubled accumulator, checked in Python against
    quant.requantize_ref (ties of the final rounding included): with kc = 2^(r-1) + off 2^r,
    ((2a m + 2^31 + (kc - [a < 0]) 2^32) >> 32) >> r == MultiplyByQuantizedMultiplier(a, m, -r) + off
    for m >= 0, 1 <= r <= 20, |off| <= 256, |a| < 2^30."""
    rng = np.random.default_rng(SEED + 18)
    for it in range(30000):
        r = int(rng.integers(1, 21))
        m = int(rng.choice([0, 1 << 30, (1 << 31) - 1, int(rng.integers(0, 1 << 31))]))
        off = int(rng.integers(-256, 257))
        if it % 2:
            a = int(rng.integers(-(2**30) + 1, 2**30))
        else:  # near ties: SRDHM(a, 2^30) = a / 2 exactly for even a, so aim a / 2 at k 2^r + 2^(r-1)
            m = 1 << 30
            k = int(rng.integers(-2**(28 - r), 2**(28 - r)))
            a = int(np.clip(2 * (k * (1 << r) + (1 << (r - 1))) + int(rng.integers(-2, 3)), -(2**30) + 1, 2**30 - 1))
        kc = (1 << (r - 1)) + off * (1 << r)
        c = kc - (1 if a < 0 else 0)
        got = (((2 * a * m + (1 << 31) + c * (1 << 32)) >> 32) >> r)
        assert got == int(quant.requantize_ref([a], m, -r)[0]) + off, (a, m, r, off)


def _widen_c(lib, w):
    fd = Dims(*w.shape)
    n = lib.lib.asc_convolve_1x1_s8_widened_size(C.byref(fd))
    dst = np.zeros(max(n, 1), dtype=np.int32)
    got = lib.lib.asc_convolve_1x1_s8_widen_filter(C.byref(fd), _ptr8(np.ascontiguousarray(w)), _ptr32(dst))
    assert got == n
    return dst[:n]


def test_widened_1x1_filter_layout_c_equals_python(libs):
    from asc_edge.codegen.speed_tables import widen_1x1_filter
    rng = np.random.default_rng(SEED + 10)
    for it in range(60):
        cout, cin = int(rng.integers(1, 20)), int(rng.integers(1, 40))
        w = rng.integers(-128, 128, size=(cout, 1, 1, cin)).astype(np.int8)
        py = widen_1x1_filter(w)
        assert py.size == (cout // 2) * 4 * ((cin + 3) // 4)
        for v in ("portable", "dsp"):
            assert np.array_equal(_widen_c(libs[v], w), py), (cout, cin, v)
    # known layout: lanes 2 * (w0, w2), 2 * (w1, w3) of channel o, then of channel o + 1
    w = np.arange(-8, 2, dtype=np.int8).reshape(2, 1, 1, 5)
    words = widen_1x1_filter(w).astype(np.int64) & 0xFFFFFFFF
    lanes = [[int(np.int16(x & 0xFFFF)) // 2, int(np.int16(x >> 16)) // 2] for x in words]
    assert lanes == [[-8, -6], [-7, -5], [-3, -1], [-2, 0], [-4, 0], [0, 0], [1, 0], [0, 0]]
    w = np.full((2, 1, 1, 4), -128, dtype=np.int8)
    assert np.all(widen_1x1_filter(w) == np.int32(np.uint32(0xFF00FF00).view(np.int32)))  # lanes -256


def _conv1x1_w16(lib, x, w, b, w16, *, input_offset, output_offset, multipliers, shifts):
    out = np.zeros((x.shape[0], x.shape[1], x.shape[2], w.shape[0]), dtype=np.int8)
    mult, sh = _i32(multipliers), _i32(shifts)
    prm = ConvParams(int(input_offset), int(output_offset), Tile(1, 1), Tile(0, 0), Tile(1, 1),
                     _act_struct((-128, 127)))
    q = PerChannelQuant(_ptr32(mult), _ptr32(sh))
    st = lib.lib.asc_convolve_1x1_s8_w16(None, C.byref(prm), C.byref(q), C.byref(Dims(*x.shape)), _ptr8(x),
                                         C.byref(Dims(*w.shape)), _ptr8(w), _ptr32(w16), _ptr32(b),
                                         C.byref(Dims(*out.shape)), _ptr8(out))
    assert st == 0
    return out


def test_1x1_pw16_portable_equals_dsp(libs):
    """pw16 GEMM: pixel pairs + odd last pixel, chunks of the widened-input buffer (K up to 128,
    many pixels), odd channel counts, K % 4 tails, shifts -1 / -20 / -21 / 0, multiplier 0,
    biases at the 2*acc bound, offsets at their limits, with and without a pre-widened filter."""
    rng = np.random.default_rng(SEED + 11)
    P, D = libs["portable"], libs["dsp"]
    for it in range(200):
        cin = int(rng.choice([1, 3, 4, 5, 8, 31, 32, 56, 64, 104, 120, 127, 128, 129]))
        cout = int(rng.choice([1, 2, 3, 4, 7, 10, 32]))
        h, w = int(rng.integers(1, 4)), int(rng.choice([1, 2, 3, 9, 17, 24, 40]))
        x = rng.integers(-128, 128, size=(1, h, w, cin)).astype(np.int8)
        wt = rng.integers(-128, 128, size=(cout, 1, 1, cin)).astype(np.int8)
        if it % 9 == 0:
            wt[:] = -128
            x[:] = -128 if it % 2 else 127
        zp_in = int(rng.choice([-128, 127, -127, int(rng.integers(-128, 128))]))
        zp_out = int(rng.choice([-128, 127, int(rng.integers(-128, 128))]))
        m, s = _q_pw(rng, cout)
        b = _bias_pw(rng, cout, cin, -zp_in)
        kw_ = dict(input_offset=-zp_in, output_offset=zp_out, multipliers=m, shifts=s)
        ref = P.conv(x, wt, b, kernel="asc_convolve_1x1_s8", stride=(1, 1), out_hw=(h, w), **kw_)
        got = D.conv(x, wt, b, kernel="asc_convolve_1x1_s8", stride=(1, 1), out_hw=(h, w), **kw_)
        assert np.array_equal(ref, got), (it, cin, cout, h, w)
        w16 = _widen_c(D, wt) if cout >= 2 else None
        got16 = _conv1x1_w16(D, x, wt, _i32(b), w16, **kw_)
        assert np.array_equal(ref, got16), (it, cin, cout, h, w, "w16")


def test_conv_pw16_portable_equals_dsp(libs):
    """General conv through the pw16 GEMM: im2col (C % 4 == 0) and the tap gather (C % 4 != 0,
    the single-channel interior fast path included), borders, strides, dilation, odd pixel counts."""
    rng = np.random.default_rng(SEED + 12)
    P, D = libs["portable"], libs["dsp"]
    for it in range(120):
        cin = int(rng.choice([1, 1, 2, 3, 4, 8, 12]))
        cout = int(rng.choice([2, 4, 8, 10, 32, 3]))
        k = int(rng.choice([1, 2, 3, 3]))
        if k * k * cin > 128:
            cin = 1
        dil = (1, 1) if it % 5 else (2, 1)
        h, w = int(rng.integers(k * dil[0], 12)), int(rng.integers(k, 20))
        stride = [(1, 1), (2, 2), (1, 2), (2, 1)][it % 4]
        pad = (int(rng.integers(0, k)), int(rng.integers(0, k)))
        oh = (h + 2 * pad[0] - dil[0] * (k - 1) - 1) // stride[0] + 1
        ow = (w + 2 * pad[1] - dil[1] * (k - 1) - 1) // stride[1] + 1
        if oh <= 0 or ow <= 0:
            continue
        x = rng.integers(-128, 128, size=(1, h, w, cin)).astype(np.int8)
        wt = rng.integers(-128, 128, size=(cout, k, k, cin)).astype(np.int8)
        zp_in = int(rng.choice([-128, 127, -8, int(rng.integers(-128, 128))]))
        zp_out = int(rng.integers(-128, 128))
        m, s = _q_pw(rng, cout)
        if it % 2:
            s = np.clip(s, -20, -1)  # every channel fast: the pw16 path runs
            m = np.abs(m)
        b = _bias_pw(rng, cout, k * k * cin, -zp_in) if it % 3 else None
        kw_ = dict(input_offset=-zp_in, output_offset=zp_out, multipliers=m, shifts=s, stride=stride,
                   padding=pad, dilation=dil, out_hw=(oh, ow))
        ref = P.conv(x, wt, b, kernel="asc_convolve_s8", **kw_)
        got = D.conv(x, wt, b, kernel="asc_convolve_s8", **kw_)
        assert np.array_equal(ref, got), (it, cin, cout, k, h, w, stride, pad, dil)


def test_conv_single_channel_3x3_rows_portable_equals_dsp(libs):
    """The single-channel 3x3 gather (asc_pw_gather1_run: one source pointer per output row, border
    pixels by the edge form) on model-sized rows: several buffer chunks, batches, odd pixel counts,
    paddings 0..2, every stride pair, widths where no column is interior."""
    rng = np.random.default_rng(SEED + 21)
    P, D = libs["portable"], libs["dsp"]
    for it in range(24):
        n = 2 if it % 3 == 0 else 1
        h, w = int(rng.integers(3, 24)), int(rng.choice([1, 2, 3, 4, 17, 65, 66]))
        stride = [(1, 1), (2, 2), (1, 2), (2, 1)][it % 4]
        pad = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
        oh, ow = (h + 2 * pad[0] - 3) // stride[0] + 1, (w + 2 * pad[1] - 3) // stride[1] + 1
        if oh <= 0 or ow <= 0:
            continue
        cout = int(rng.choice([2, 8]))
        x = rng.integers(-128, 128, size=(n, h, w, 1)).astype(np.int8)
        wt = rng.integers(-128, 128, size=(cout, 3, 3, 1)).astype(np.int8)
        zp_in = int(rng.choice([-128, 127, -8]))
        m, s = _q_pw(rng, cout)
        s, m = np.clip(s, -20, -1), np.abs(m)  # every channel fast: the pw16 path runs
        b = _bias_pw(rng, cout, 9, -zp_in)
        kw_ = dict(input_offset=-zp_in, output_offset=int(rng.integers(-128, 128)), multipliers=m, shifts=s,
                   stride=stride, padding=pad, out_hw=(oh, ow))
        ref = P.conv(x, wt, b, kernel="asc_convolve_s8", **kw_)
        assert np.array_equal(ref, D.conv(x, wt, b, kernel="asc_convolve_s8", **kw_)), (it, n, h, w, stride, pad)


def test_depthwise_dw3_portable_equals_dsp(libs):
    """dw3 path: 3x3 groups of 4 channels on the zero-padded widened rows: paddings 0..2 (also
    asymmetric output sizes), strides, widths up to the 62-column buffer and beyond (fallback),
    channel counts not a multiple of 4, groups outside the fast requantisation."""
    rng = np.random.default_rng(SEED + 13)
    P, D = libs["portable"], libs["dsp"]
    for it in range(150):
        c = int(rng.choice([4, 5, 8, 11, 12, 64, 120]))
        h = int(rng.integers(1, 6))
        w = int(rng.choice([1, 2, 3, 9, 17, 59, 60, 61, 70]))
        stride = [(1, 1), (1, 2), (2, 1), (2, 2)][it % 4]
        pad = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
        oh = (h + 2 * pad[0] - 3) // stride[0] + 1 + int(rng.integers(0, 2))
        ow = (w + 2 * pad[1] - 3) // stride[1] + 1 + int(rng.integers(0, 2))
        if oh <= 0 or ow <= 0:
            continue
        x = rng.integers(-128, 128, size=(1, h, w, c)).astype(np.int8)
        wt = rng.integers(-128, 128, size=(1, 3, 3, c)).astype(np.int8)
        zp_in = int(rng.choice([-128, 127, int(rng.integers(-128, 128))]))
        zp_out = int(rng.integers(-128, 128))
        m, s = _q_pw(rng, c)
        b = _bias_pw(rng, c, 9, -zp_in)
        kw_ = dict(input_offset=-zp_in, output_offset=zp_out, multipliers=m, shifts=s, ch_mult=1, stride=stride,
                   padding=pad, out_hw=(oh, ow))
        ref = P.depthwise_conv(x, wt, b, **kw_)
        got = D.depthwise_conv(x, wt, b, **kw_)
        assert np.array_equal(ref, got), (it, c, h, w, stride, pad, oh, ow)


def test_avgpool_portable_equals_dsp(libs):
    rng = np.random.default_rng(SEED + 14)
    P, D = libs["portable"], libs["dsp"]
    for it in range(100):
        c = int(rng.choice([1, 3, 4, 8, 13, 32]))
        fh, fw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        if it % 10 == 0:
            fh, fw = 16, 16  # count 256: int16 lanes could overflow, the generic loop
        h, w = int(rng.integers(1, 20)), int(rng.integers(1, 20))
        stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        pad = (int(rng.integers(0, fh)), int(rng.integers(0, fw)))
        oh, ow = (h + 2 * pad[0] - fh) // stride[0] + 1, (w + 2 * pad[1] - fw) // stride[1] + 1
        if oh <= 0 or ow <= 0 or pad[0] >= fh or pad[1] >= fw:
            continue
        x = rng.integers(-128, 128, size=(1, h, w, c)).astype(np.int8)
        if it % 7 == 0:
            x[:] = -128 if it % 2 else 127
        kw_ = dict(filter_hw=(fh, fw), stride=stride, padding=pad, out_hw=(oh, ow), activation=_act(rng))
        try:
            ref = P.avgpool(x, **kw_)
        except Exception:  # an empty window (TFLite fails too): both builds must refuse it
            with pytest.raises(Exception):
                D.avgpool(x, **kw_)
            continue
        assert np.array_equal(ref, D.avgpool(x, **kw_)), (it, c, fh, fw, h, w, stride, pad)


def test_avgpool_reciprocal_division_matches_reference():
    """The M4 avgpool's division of a window sum a (count n in [3, 16], a in [-128 n, 127 n]) by
    ((a' m + k) >> 16) - 128 with m = ceil(2^16 / n), k = (128 n + n // 2) m, a' = a - [a < 0] for
    an even n (asc_avg_recip / asc_avg_even_fix in firmware/nn/asc_pool_s8.c), against TFLite's
    rounding division (half away from zero), exhaustively."""
    for n in range(3, 17):
        a = np.arange(-128 * n, 127 * n + 1, dtype=np.int64)
        m = -(-65536 // n)
        k = (128 * n + n // 2) * m
        a2 = a - ((a < 0) & (n % 2 == 0))
        got = ((a2 * m + k) >> 16) - 128
        ref = np.where(a > 0, (a + n // 2) // n, -((-a + n // 2) // n))
        assert np.array_equal(got, ref), n


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-arm") is None,
                    reason="needs arm-none-eabi-gcc and qemu-arm")
@pytest.mark.parametrize("opt", ["-O2", "-Os"])
def test_cortex_m4_avgpool_in_place_under_qemu(libs, tmp_path, opt):
    """AVERAGE_POOL_2D's M4 paths (-O2: the 3x3 asm loops, the stride-1 line buffer; -Os, the size
    build, ASC_NN_SPEED_PATHS 0: the per-pixel form; both: the multiply-shift division) on the real build, with the output written over its own input at the lead the code
    planner allows (asc_edge/codegen/ops/avg_pool.py: row-major order): the model's case (64x17x32,
    3x3, stride (1, 2), pad 1) and random shapes, against the host portable build."""
    from asc_edge.codegen.ops import row_major_lead
    rng = np.random.default_rng(SEED + 22)
    P = libs["portable"]
    cases = [(64, 17, 32, 3, 3, 1, 2, 1, 1)]
    for i in range(70):
        c = int(rng.choice([3, 4, 8, 13, 32]))
        fh, fw = (3, 3) if i % 3 else (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        sh, sw = [(1, 1), (1, 2), (2, 1), (2, 2)][i % 4]
        ph, pw = int(rng.integers(0, min(fh, 2))), int(rng.integers(0, min(fw, 2)))
        cases.append((int(rng.integers(2, 20)), int(rng.integers(1, 18)), c, fh, fw, sh, sw, ph, pw))
    decls, calls, expected = ["static int8_t big[40000];\n"], [], []
    for i, (h, w, c, fh, fw, sh, sw, ph, pw) in enumerate(cases):
        oh, ow = (h + 2 * ph - fh) // sh + 1, (w + 2 * pw - fw) // sw + 1
        lead = row_major_lead((1, h, w, c), (1, oh, ow, c), sh, ph, 1) if oh > 0 and ow > 0 else None
        if lead is None or lead < 0 or lead + h * w * c > 40000:
            continue
        x = rng.integers(-128, 128, size=(1, h, w, c)).astype(np.int8)
        if i % 7 == 1:
            x[:] = -128 if i % 2 else 127
        expected.append(P.avgpool(x, filter_hw=(fh, fw), stride=(sh, sw), padding=(ph, pw), out_hw=(oh, ow),
                                  activation=(-128, 127)))
        decls.append(_arr(f"x{i}", "int8_t", x))
        calls.append(
            f"{{ asc_nn_pool_params p = {{{{{fh}, {fw}}}, {{{sh}, {sw}}}, {{{ph}, {pw}}}, {{-128, 127}}}};\n"
            f"  asc_nn_dims id = {{1, {h}, {w}, {c}}}, od = {{1, {oh}, {ow}, {c}}};\n"
            f"  for (int32_t q = 0; q < {h * w * c}; q++) big[{lead} + q] = x{i}[q];\n"
            f"  int32_t st = asc_avgpool_s8(&p, &id, big + {lead}, &od, big);\n"
            f"  for (int32_t q = 0; q < {oh * ow * c}; q++) out[q] = big[q];\n"
            f"  (void)scratch; emit(st, {oh * ow * c}); }}\n")
    assert len(expected) > 40
    kernel_models.run_m4_cases(tmp_path, decls, calls, expected, extra_flags=[opt])


def test_add_half_multiplier_path_portable_equals_dsp(libs):
    """ADD with TFLite's parameters (one input has multiplier 2^30, shift 0: the SMMLAR loop) and the
    full activation range, that input first or second, extreme zero points and every input byte."""
    rng = np.random.default_rng(SEED + 17)
    P, D = libs["portable"], libs["dsp"]
    grid = np.arange(-128, 128, dtype=np.int8)
    x1 = np.repeat(grid, 256).reshape(1, 1, 256, 256)
    x2 = np.tile(grid, 256).reshape(1, 1, 256, 256)
    for it in range(60):
        s1, s2, so = (float(v) for v in 10 ** rng.uniform(-3, 0, size=3))
        z1, z2, zo = (int(v) for v in rng.choice([-128, 127, int(rng.integers(-128, 128))], size=3))
        prm = quant.add_params(s1, z1, s2, z2, so, zo)
        assert (prm["input1_multiplier"], prm["input1_shift"]) == (1 << 30, 0) or \
            (prm["input2_multiplier"], prm["input2_shift"]) == (1 << 30, 0)
        assert np.array_equal(P.add(x1, x2, params=prm), D.add(x1, x2, params=prm)), (it, prm)


def test_mul_flat_paths_portable_equals_dsp(libs):
    """MUL with same shapes / a broadcast scalar (flat loops, SMLAL requantisation when the
    shift is in [-31, -2]) and a general broadcast, against the portable build."""
    rng = np.random.default_rng(SEED + 16)
    P, D = libs["portable"], libs["dsp"]
    for it in range(200):
        shape = (1, int(rng.integers(1, 5)), int(rng.integers(1, 9)), int(rng.integers(1, 33)))
        x1 = rng.integers(-128, 128, size=shape).astype(np.int8)
        kind = it % 4
        if kind == 0:
            x2 = rng.integers(-128, 128, size=shape).astype(np.int8)
        elif kind == 1:
            x2 = rng.integers(-128, 128, size=(1, 1, 1, 1)).astype(np.int8)
        elif kind == 2:
            x1, x2 = rng.integers(-128, 128, size=(1, 1, 1, 1)).astype(np.int8), x1
        else:
            x2 = rng.integers(-128, 128, size=(1, 1, 1, shape[3])).astype(np.int8)
        m, s = quant.quantize_multiplier(float(rng.choice([1e-4, 3e-3, 0.02, 0.3, 0.9, 1.7])))
        if it % 10 == 0:
            s = int(rng.choice([-1, 0, -31, -30]))
        prm = dict(input1_offset=int(rng.integers(-127, 129)), input2_offset=int(rng.integers(-127, 129)),
                   output_offset=int(rng.integers(-128, 128)), output_multiplier=int(m), output_shift=int(s))
        act = _act(rng)
        assert np.array_equal(P.mul(x1, x2, params=prm, activation=act), D.mul(x1, x2, params=prm, activation=act)), \
            (it, prm)


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-arm") is None,
                    reason="needs arm-none-eabi-gcc and qemu-arm")
def test_cortex_m4_pw16_dw3_asm_under_qemu(libs, tmp_path):
    """The hand-written Cortex-M4 assembly (asc_pw_2x2 / asc_pw_1x2 unrolled-loop entry points,
    asc_dw3_row, the inline SXTAB16 / SMMLAR loops) only runs in the real M4 build: 1x1 (with and
    without the pre-widened filter), general conv, 3x3 depthwise and ADD cases on their fast paths,
    against the host portable build."""
    from asc_edge.codegen.speed_tables import widen_1x1_filter
    rng = np.random.default_rng(SEED + 15)
    P = libs["portable"]
    decls, calls, expected = [], [], []
    for i in range(60):
        kind = i % 5
        zp_in, zp_out = int(rng.choice([-128, 127, int(rng.integers(-128, 128))])), int(rng.integers(-128, 128))
        if kind == 4:  # ADD with TFLite parameters (the SMMLAR loop of the 2^30-multiplier input)
            n = 4096
            x1 = rng.integers(-128, 128, size=(1, 1, 1, n)).astype(np.int8)
            x2 = rng.integers(-128, 128, size=(1, 1, 1, n)).astype(np.int8)
            s1, s2, so = (float(v) for v in 10 ** rng.uniform(-3, 0, size=3))
            prm = quant.add_params(s1, zp_in, s2, int(rng.integers(-128, 128)), so, zp_out)
            expected.append(P.add(x1, x2, params=prm))
            decls += [_arr(f"x{i}", "int8_t", x1), _arr(f"y{i}", "int8_t", x2)]
            vals = ", ".join(str(int(prm[k])) for k in (
                "input1_offset", "input1_multiplier", "input1_shift", "input2_offset", "input2_multiplier",
                "input2_shift", "left_shift", "output_offset", "output_multiplier", "output_shift"))
            calls.append(
                f"{{ asc_nn_add_params p = {{{vals}, {{-128, 127}}}};\n"
                f"  asc_nn_dims d = {{1, 1, 1, {n}}};\n"
                f"  emit(asc_add_s8(&p, &d, x{i}, &d, y{i}, &d, out), {n}); }}\n")
            continue
        if kind in (0, 1):  # 1x1, plain (0) / pre-widened filter (1)
            cin = int(rng.choice([1, 3, 4, 8, 32, 56, 64, 120, 128]))
            cout = int(rng.choice([2, 3, 8, 10, 32]))
            h, w = int(rng.integers(1, 3)), int(rng.choice([1, 2, 9, 17]))
            x = rng.integers(-128, 128, size=(1, h, w, cin)).astype(np.int8)
            wt = rng.integers(-128, 128, size=(cout, 1, 1, cin)).astype(np.int8)
            m, s = _q_pw(rng, cout)
            b = _bias_pw(rng, cout, cin, -zp_in)
            expected.append(P.conv(x, wt, b, input_offset=-zp_in, output_offset=zp_out, multipliers=m, shifts=s,
                                   out_hw=(h, w), kernel="asc_convolve_1x1_s8"))
            w16 = "0"
            if kind == 1:
                decls.append(_arr(f"v{i}", "int32_t", widen_1x1_filter(wt)))
                w16 = f"v{i}"
            decls += [_arr(f"x{i}", "int8_t", x), _arr(f"w{i}", "int8_t", wt), _arr(f"b{i}", "int32_t", b),
                      _arr(f"m{i}", "int32_t", m), _arr(f"s{i}", "int32_t", s)]
            calls.append(
                f"{{ asc_nn_conv_params p = {{{-zp_in}, {zp_out}, {{1, 1}}, {{0, 0}}, {{1, 1}}, {{-128, 127}}}};\n"
                f"  asc_nn_per_channel_quant q = {{m{i}, s{i}}};\n"
                f"  asc_nn_dims id = {{1, {h}, {w}, {cin}}}, fd = {{{cout}, 1, 1, {cin}}}, od = {{1, {h}, {w}, {cout}}};\n"
                f"  emit(asc_convolve_1x1_s8_w16(0, &p, &q, &id, x{i}, &fd, w{i}, {w16}, b{i}, &od, out), {h * w * cout}); }}\n")
        elif kind == 2:  # general conv
            cin = int(rng.choice([1, 3, 8]))
            cout = int(rng.choice([2, 8, 32]))
            k, stride = 3, (2, 2) if i % 8 == 2 else (1, 2)
            h, w = int(rng.integers(3, 8)), int(rng.choice([5, 9, 33]))
            pad = (1, 1)
            oh, ow = (h + 2 - k) // stride[0] + 1, (w + 2 - k) // stride[1] + 1
            x = rng.integers(-128, 128, size=(1, h, w, cin)).astype(np.int8)
            wt = rng.integers(-128, 128, size=(cout, k, k, cin)).astype(np.int8)
            m, s = _q_pw(rng, cout)
            s, m = np.clip(s, -20, -1), np.abs(m)
            b = _bias_pw(rng, cout, k * k * cin, -zp_in)
            expected.append(P.conv(x, wt, b, input_offset=-zp_in, output_offset=zp_out, multipliers=m, shifts=s,
                                   stride=stride, padding=pad, out_hw=(oh, ow)))
            decls += [_arr(f"x{i}", "int8_t", x), _arr(f"w{i}", "int8_t", wt), _arr(f"b{i}", "int32_t", b),
                      _arr(f"m{i}", "int32_t", m), _arr(f"s{i}", "int32_t", s)]
            calls.append(
                f"{{ asc_nn_context ctx = {{scratch, sizeof(scratch)}};\n"
                f"  asc_nn_conv_params p = {{{-zp_in}, {zp_out}, {{{stride[0]}, {stride[1]}}}, {{1, 1}}, {{1, 1}}, {{-128, 127}}}};\n"
                f"  asc_nn_per_channel_quant q = {{m{i}, s{i}}};\n"
                f"  asc_nn_dims id = {{1, {h}, {w}, {cin}}}, fd = {{{cout}, {k}, {k}, {cin}}}, od = {{1, {oh}, {ow}, {cout}}};\n"
                f"  emit(asc_convolve_s8(&ctx, &p, &q, &id, x{i}, &fd, w{i}, b{i}, &od, out), {oh * ow * cout}); }}\n")
        else:  # depthwise 3x3
            c = int(rng.choice([4, 8, 13, 64]))
            h, w = int(rng.integers(1, 5)), int(rng.choice([1, 3, 9, 17, 60]))
            stride = [(1, 1), (1, 2), (2, 1)][(i // 4) % 3]
            pad = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
            oh, ow = (h + 2 * pad[0] - 3) // stride[0] + 1, (w + 2 * pad[1] - 3) // stride[1] + 1
            if oh <= 0 or ow <= 0:
                continue
            x = rng.integers(-128, 128, size=(1, h, w, c)).astype(np.int8)
            wt = rng.integers(-128, 128, size=(1, 3, 3, c)).astype(np.int8)
            m, s = _q_pw(rng, c)
            b = _bias_pw(rng, c, 9, -zp_in)
            expected.append(P.depthwise_conv(x, wt, b, input_offset=-zp_in, output_offset=zp_out, multipliers=m,
                                             shifts=s, ch_mult=1, stride=stride, padding=pad, out_hw=(oh, ow)))
            decls += [_arr(f"x{i}", "int8_t", x), _arr(f"w{i}", "int8_t", wt), _arr(f"b{i}", "int32_t", b),
                      _arr(f"m{i}", "int32_t", m), _arr(f"s{i}", "int32_t", s)]
            calls.append(
                f"{{ asc_nn_dw_conv_params p = {{{-zp_in}, {zp_out}, 1, {{{stride[0]}, {stride[1]}}},"
                f" {{{pad[0]}, {pad[1]}}}, {{1, 1}}, {{-128, 127}}}};\n"
                f"  asc_nn_per_channel_quant q = {{m{i}, s{i}}};\n"
                f"  asc_nn_dims id = {{1, {h}, {w}, {c}}}, fd = {{1, 3, 3, {c}}}, od = {{1, {oh}, {ow}, {c}}};\n"
                f"  emit(asc_depthwise_conv_s8(0, &p, &q, &id, x{i}, &fd, w{i}, b{i}, &od, out), {oh * ow * c}); }}\n")
    kernel_models.run_m4_cases(tmp_path, decls, calls, expected)


_FUSED_HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "asc_nn.h"
static uint32_t rs = 12345u;
static int32_t rnd(int32_t lo, int32_t hi) { rs = rs * 1664525u + 1013904223u; return lo + (int32_t)((rs >> 8) % (uint32_t)(hi - lo + 1)); }
static void fill8(int8_t *p, int32_t n) { for (int32_t i = 0; i < n; i++) p[i] = (int8_t)rnd(-128, 127); }
static int run(int32_t h, int32_t w, int32_t ci, int32_t ce, int32_t co, int32_t sh, int32_t sw, int with_add, int act_full)
{
    int32_t ph = 1, pw = 1;
    int32_t oh = (h + 2 * ph - 3) / sh + 1, ow = (w + 2 * pw - 3) / sw + 1;
    if (with_add && (oh != h || ow != w || co != ci)) return 0;
    int8_t *x = malloc((size_t)(h * w * ci)), *we = malloc((size_t)(ce * ci)), *wd = malloc((size_t)(9 * ce)),
           *wp = malloc((size_t)(co * ce));
    int32_t *be = malloc(4 * (size_t)ce), *bd = malloc(4 * (size_t)ce), *bp = malloc(4 * (size_t)co);
    int32_t *me = malloc(4 * (size_t)ce), *se = malloc(4 * (size_t)ce), *md = malloc(4 * (size_t)ce),
            *sd = malloc(4 * (size_t)ce), *mp = malloc(4 * (size_t)co), *sp = malloc(4 * (size_t)co);
    fill8(x, h * w * ci); fill8(we, ce * ci); fill8(wd, 9 * ce); fill8(wp, co * ce);
    for (int32_t i = 0; i < ce; i++) { be[i] = rnd(-20000, 20000); bd[i] = rnd(-20000, 20000);
        me[i] = rnd(1 << 30, 0x7fffffff); se[i] = rnd(-11, -6); md[i] = rnd(1 << 30, 0x7fffffff); sd[i] = rnd(-9, -4); }
    for (int32_t i = 0; i < co; i++) { bp[i] = rnd(-20000, 20000); mp[i] = rnd(1 << 30, 0x7fffffff); sp[i] = rnd(-11, -6); }
    const int32_t lo = act_full ? -128 : rnd(-128, 0);
    asc_nn_conv_params pe = {rnd(-127, 128), rnd(-128, 127), {1, 1}, {0, 0}, {1, 1}, {lo, 127}};
    asc_nn_conv_params pp = {rnd(-127, 128), rnd(-128, 127), {1, 1}, {0, 0}, {1, 1}, {-128, 127}};
    asc_nn_dw_conv_params pd = {rnd(-127, 128), rnd(-128, 127), 1, {sh, sw}, {ph, pw}, {1, 1}, {lo, 127}};
    asc_nn_add_params pa = {rnd(-127, 128), 1073741824, 0, rnd(-127, 128), rnd(1 << 30, 0x7fffffff), rnd(-3, -1), 20,
                            rnd(-128, 127), rnd(1 << 30, 0x7fffffff), rnd(-20, -16), {-128, 127}};
    asc_nn_inverted_residual_params p = {&pe, {me, se}, we, be, ce, &pd, {md, sd}, {1, 3, 3, ce}, wd, bd,
                                         &pp, {mp, sp}, wp, bp, with_add ? &pa : 0, 1};
    asc_nn_dims in_d = {1, h, w, ci}, out_d = {1, oh, ow, co};
    /* reference: layer by layer */
    int8_t *e = malloc((size_t)(h * w * ce)), *d = malloc((size_t)(oh * ow * ce)), *ref = malloc((size_t)(oh * ow * co)),
           *pr = malloc((size_t)(oh * ow * co));
    asc_nn_dims ef = {ce, 1, 1, ci}, ed = {1, h, w, ce}, dd = {1, oh, ow, ce}, pf = {co, 1, 1, ce};
    int st = asc_convolve_1x1_s8(0, &pe, &p.expand_quant, &in_d, x, &ef, we, be, &ed, e);
    st |= asc_depthwise_conv_s8(0, &pd, &p.depthwise_quant, &ed, e, &p.depthwise_filter_dims, wd, bd, &dd, d);
    st |= asc_convolve_1x1_s8(0, &pp, &p.project_quant, &dd, d, &pf, wp, bp, &out_d, with_add ? pr : ref);
    if (with_add) st |= asc_add_s8(&pa, &out_d, pr, &out_d, x, &out_d, ref);
    if (st) { printf("ref status %d\n", st); return 1; }
    int32_t *w16e = malloc(4 * (size_t)(asc_convolve_1x1_s8_widened_size(&ef) + 1));
    int32_t *w16p = malloc(4 * (size_t)(asc_convolve_1x1_s8_widened_size(&pf) + 1));
    asc_convolve_1x1_s8_widen_filter(&ef, we, w16e);
    asc_convolve_1x1_s8_widen_filter(&pf, wp, w16p);
    const int32_t full = asc_inverted_residual_s8_get_buffer_size(&p, &in_d, &out_d);
    /* the R = 1 size: kh*W*Ce + Wo*Ce (+ Wo*Co) */
    const int32_t one = 3 * w * ce + ow * ce + (with_add ? ow * co : 0);
    const int32_t sizes[4] = {full, (full + one) / 2, one, one - 1};
    for (int k = 0; k < 4; k++) {
        for (int pre = 0; pre < 2; pre++) {
            int8_t *scr = malloc((size_t)sizes[k] + 1), *y;
            int8_t *xin = malloc((size_t)(h * w * ci));
            memcpy(xin, x, (size_t)(h * w * ci));
            y = with_add ? xin : malloc((size_t)(oh * ow * co)); /* in place with the ADD */
            asc_nn_context ctx = {scr, sizes[k]};
            st = pre ? asc_inverted_residual_s8_w16(&ctx, &p, w16e, w16p, &in_d, xin, &out_d, y)
                     : asc_inverted_residual_s8(&ctx, &p, &in_d, xin, &out_d, y);
            if (k == 3) { if (st != ASC_NN_ARG_ERROR) { printf("too small accepted\n"); return 1; } }
            else if (st || memcmp(y, ref, (size_t)(oh * ow * co))) {
                printf("mismatch h=%d w=%d ci=%d ce=%d co=%d s=%d,%d add=%d size=%d pre=%d st=%d\n", h, w, ci, ce, co,
                       sh, sw, with_add, sizes[k], pre, st);
                return 1;
            }
            if (!with_add) free(y);
            free(xin); free(scr);
        }
    }
    return 0;
}
int main(void) {
    int bad = 0, n = 0;
    for (int it = 0; it < 160; it++) {
        int32_t h = rnd(1, 11), w = rnd(1, 19), ci = rnd(1, 3) * 4 + rnd(0, 1) * rnd(1, 3), ce = rnd(1, 9) * 4 + rnd(0, 1) * rnd(1, 3);
        int32_t sh = 1 + (it % 3 == 1), sw = 1 + (it % 3 == 2), add = it % 2 == 0;
        if (add) { sh = sw = 1; }
        int32_t co = add ? ci : rnd(2, 12);
        bad |= run(h, w, ci, ce, co, sh, sw, add, it % 5 != 0);
        n++;
    }
    printf("%d cases, %s\n", n, bad ? "FAIL" : "ok");
    return bad;
}
"""


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
@pytest.mark.parametrize("variant", ["dsp", "portable"])
def test_fused_block_rows_per_step_and_prewidened_filters(tmp_path, variant):
    """asc_inverted_residual_s8(_w16) == the four layers run one by one, for every scratch size
    from the 4-row step down to the 1-row minimum (smaller: rejected), with and without the
    pre-widened filters, odd sizes, strides (2,1) / (1,2), in place with the ADD."""
    src = tmp_path / "fused.c"
    src.write_text(_FUSED_HARNESS)
    exe = tmp_path / "fused"
    flags = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror"] + (["-DASC_NN_EMULATE_DSP"] if variant == "dsp" else [])
    r = subprocess.run(["gcc", *flags, f"-I{NN_DIR}", str(src), *map(str, kernel_sources()), "-o", str(exe)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stdout[-2000:]
