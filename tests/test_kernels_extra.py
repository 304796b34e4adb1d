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
from asc_edge.codegen.kernels_host import (CORTEX_M4_FLAGS, NN_DIR, Context, ConvParams, Dims, HostKernels,
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
    src = tmp_path / "harness.c"
    src.write_text(kernel_models.QEMU_USER_PRELUDE + "".join(decls) + "int main(void) {\n" + "".join(calls) + "return 0; }\n")
    elf = tmp_path / "harness.elf"
    cmd = ["arm-none-eabi-gcc", *CORTEX_M4_FLAGS, "-nostartfiles", "-static", f"-I{NN_DIR}", str(src),
           *map(str, kernel_sources()), "-o", str(elf), "-lc"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(["qemu-arm", "-cpu", "max", str(elf)], capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    blob, pos = r.stdout, 0
    for i, exp in enumerate(expected):
        status = int(np.frombuffer(blob[pos:pos + 4], dtype="<i4")[0])
        pos += 4
        got = np.frombuffer(blob[pos:pos + exp.size], dtype=np.int8)
        pos += exp.size
        assert status == 0, i
        assert np.array_equal(got, exp.ravel()), f"case {i}: {(got != exp.ravel()).sum()} bytes differ"
    assert pos == len(blob)
