"""Per-kernel tests of the firmware/nn int8 library.

* quantize_multiplier / requantisation arithmetic (TFLite's QuantizeMultiplier and double-rounding
  MultiplyByQuantizedMultiplier),
* portable == DSP path on many random shapes (no TF needed), kernels against numpy, bad arguments,
  Cortex-M4 build under qemu-arm.

Every operator against **tflite-micro**, through the code generator, is tests/test_ops.py (driven
by the operator registry).
* the library cross-compiles for the Cortex-M4 with -Wall -Wextra -Werror (when arm-none-eabi-gcc
  is installed).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from asc_edge.codegen import quant
from asc_edge.codegen.kernels_host import HostKernels, KernelError, cross_compile

sys.path.insert(0, str(Path(__file__).resolve().parent))
import kernel_models  # noqa: E402  (numpy-only at import time)

SEED = 20261121


# ---------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def libs() -> dict[str, HostKernels]:
    return {"portable": HostKernels("portable"), "dsp": HostKernels("dsp")}


# ---------------------------------------------------------------------------------------------
# quantisation arithmetic
# ---------------------------------------------------------------------------------------------
def test_quantize_multiplier_known_values():
    qm = quant.quantize_multiplier
    assert qm(0.0) == (0, 0)
    assert qm(0.5) == (1 << 30, 0)
    assert qm(1.0) == (1 << 30, 1)
    assert qm(0.25) == (1 << 30, -1)
    assert qm(3.0) == (3 << 29, 2)
    # q * 2^31 rounds up to 2^31 -> renormalised to 2^30 with shift + 1
    assert qm(1.0 - 2.0**-40) == (1 << 30, 1)
    # round half away from zero on an exact tie: q*2^31 = 2^30 + 0.5
    assert qm((2**30 + 0.5) / 2**31) == (2**30 + 1, 0)
    assert qm((2**30 + 1.5) / 2**31) == (2**30 + 2, 0)
    # shifts below -31 flush to zero
    assert qm(2.0**-33) == (0, 0)
    assert qm(2.0**-32) == (1 << 30, -31)


def test_quantize_multiplier_random_exact():
    rng = np.random.default_rng(SEED)
    for real in 10 ** rng.uniform(-9, 4, size=2000):
        m, s = quant.quantize_multiplier(float(real))
        if m == 0:
            assert real < 2.0**-32
            continue
        assert (1 << 30) <= m < (1 << 31)
        # exact check with rationals: |m - real*2^(31-s)| <= 1/2, ties away from zero
        exact = Fraction(float(real)) * Fraction(2) ** (31 - s)
        assert abs(Fraction(m) - exact) <= Fraction(1, 2)
        if abs(Fraction(m) - exact) == Fraction(1, 2):
            assert Fraction(m) > exact


def test_conv_multipliers_use_double_products():
    m, s = quant.conv_multipliers(np.float32(0.0123), np.array([0.5, 1e-3, 0.0], np.float32), np.float32(0.07))
    for i, fs in enumerate([0.5, 1e-3, 0.0]):
        real = float(np.float32(0.0123)) * float(np.float32(fs)) / float(np.float32(0.07))
        assert (int(m[i]), int(s[i])) == quant.quantize_multiplier(real)


def test_tflite_padding():
    assert quant.tflite_padding(10, 3, 2, 1, "SAME") == (0, 5)  # total 1 -> goes after
    assert quant.tflite_padding(9, 3, 2, 1, "SAME") == (1, 5)
    assert quant.tflite_padding(9, 3, 1, 1, "VALID") == (0, 7)
    assert quant.tflite_padding(8, 5, 1, 1, "SAME") == (2, 8)


@pytest.mark.parametrize("variant", ["portable", "dsp"])
def test_requantize_matches_reference_model(libs, variant):
    lib = libs[variant]
    rng = np.random.default_rng(SEED + 7)
    xs = np.concatenate([rng.integers(-(2**31), 2**31, 3000), rng.integers(-5000, 5000, 3000),
                         [-(2**31), 2**31 - 1, 0, 1, -1, 3, -3, 5, -5]])
    for x in xs:
        m = int(rng.integers(1 << 30, 1 << 31))
        s = int(rng.integers(-31, 1)) if rng.random() < 0.8 else int(rng.integers(1, 12))
        assert lib.requantize(int(x), m, s) == int(quant.requantize_ref([int(x)], m, s)[0]), (x, m, s)
    # ties at every right shift: x = (2k+1) * 2^(e-1) with multiplier 2^30 (x * 0.5 exactly)
    for e in range(1, 31):
        for x in (3 << (e - 1), -(3 << (e - 1))):
            if -(2**31) <= x < 2**31:
                assert lib.requantize(x, 1 << 30, 1 - e) == int(quant.requantize_ref([x], 1 << 30, 1 - e)[0])
    # the single saturating case of SaturatingRoundingDoublingHighMul
    assert lib.requantize(-(2**31), -(2**31), 0) == 2**31 - 1


# ---------------------------------------------------------------------------------------------
# portable == DSP path on many random shapes (pure C vs C, no TF)
# ---------------------------------------------------------------------------------------------
def _rand_q(rng, n):
    mult = rng.integers(1 << 30, 1 << 31, size=n)
    shift = rng.integers(-12, 2, size=n)
    return mult, shift


def test_portable_equals_dsp_conv_dw(libs):
    rng = np.random.default_rng(SEED + 11)
    P, D = libs["portable"], libs["dsp"]
    n_checked = 0
    for it in range(160):
        kind = it % 4
        h, w = int(rng.integers(1, 12)), int(rng.integers(1, 12))
        zp_in = int(rng.integers(-128, 128))
        zp_out = int(rng.integers(-128, 128))
        act = (int(rng.integers(-128, 0)), int(rng.integers(0, 128)))
        if kind in (0, 1):  # general / grouped conv
            groups = 1 if kind == 0 else int(rng.integers(2, 4))
            fc = int(rng.integers(1, 14))
            cin = fc * groups
            cout = groups * int(rng.integers(1, 6))
            kh, kw = int(rng.integers(1, 6)), int(rng.integers(1, 6))
            stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
            dil = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
            pad = (int(rng.integers(0, kh)), int(rng.integers(0, kw)))
            oh = (h + 2 * pad[0] - (kh - 1) * dil[0] - 1) // stride[0] + 1
            ow = (w + 2 * pad[1] - (kw - 1) * dil[1] - 1) // stride[1] + 1
            if oh <= 0 or ow <= 0:
                continue
            x = rng.integers(-128, 128, size=(1, h, w, cin), dtype=np.int16).astype(np.int8)
            wt = rng.integers(-128, 128, size=(cout, kh, kw, fc), dtype=np.int16).astype(np.int8)
            b = rng.integers(-50000, 50000, size=cout)
            m, s = _rand_q(rng, cout)
            kw_ = dict(input_offset=-zp_in, output_offset=zp_out, multipliers=m, shifts=s, stride=stride,
                       padding=pad, dilation=dil, out_hw=(oh, ow), activation=act)
            ref = P.conv(x, wt, b, **kw_)
            assert np.array_equal(ref, D.conv(x, wt, b, **kw_)), it
            # cross-check the portable kernel against a numpy reference as well
            assert np.array_equal(ref, _np_conv(x, wt, b, groups, **kw_)), it
        elif kind == 2:  # 1x1
            cin, cout = int(rng.integers(1, 70)), int(rng.integers(1, 20))
            stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
            oh, ow = (h - 1) // stride[0] + 1, (w - 1) // stride[1] + 1
            x = rng.integers(-128, 128, size=(1, h, w, cin), dtype=np.int16).astype(np.int8)
            wt = rng.integers(-128, 128, size=(cout, 1, 1, cin), dtype=np.int16).astype(np.int8)
            b = rng.integers(-50000, 50000, size=cout)
            m, s = _rand_q(rng, cout)
            kw_ = dict(input_offset=-zp_in, output_offset=zp_out, multipliers=m, shifts=s, stride=stride,
                       out_hw=(oh, ow), activation=act)
            ref = P.conv(x, wt, b, kernel="asc_convolve_1x1_s8", **kw_)
            assert np.array_equal(ref, D.conv(x, wt, b, kernel="asc_convolve_1x1_s8", **kw_))
            assert np.array_equal(ref, P.conv(x, wt, b, kernel="asc_convolve_s8", **kw_))
        else:  # depthwise
            c = int(rng.integers(1, 40))
            cm = int(rng.integers(1, 3))
            kh, kw = int(rng.integers(1, 6)), int(rng.integers(1, 6))
            stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
            dil = (1, 1) if rng.random() < 0.7 else (2, 2)
            pad = (int(rng.integers(0, kh)), int(rng.integers(0, kw)))
            oh = (h + 2 * pad[0] - (kh - 1) * dil[0] - 1) // stride[0] + 1
            ow = (w + 2 * pad[1] - (kw - 1) * dil[1] - 1) // stride[1] + 1
            if oh <= 0 or ow <= 0:
                continue
            x = rng.integers(-128, 128, size=(1, h, w, c), dtype=np.int16).astype(np.int8)
            wt = rng.integers(-128, 128, size=(1, kh, kw, c * cm), dtype=np.int16).astype(np.int8)
            b = rng.integers(-50000, 50000, size=c * cm)
            m, s = _rand_q(rng, c * cm)
            kw_ = dict(input_offset=-zp_in, output_offset=zp_out, multipliers=m, shifts=s, ch_mult=cm,
                       stride=stride, padding=pad, dilation=dil, out_hw=(oh, ow), activation=act)
            ref = P.depthwise_conv(x, wt, b, **kw_)
            assert np.array_equal(ref, D.depthwise_conv(x, wt, b, **kw_)), it
            # depthwise == grouped conv with groups = C (filter regrouped to OHWI, I = 1)
            if cm == 1:
                wg = np.transpose(wt, (3, 1, 2, 0)).copy()
                kwc = {k: v for k, v in kw_.items() if k != "ch_mult"}
                assert np.array_equal(ref, P.conv(x, wg, b, **kwc)), it
        n_checked += 1
    assert n_checked > 100


def _np_conv(x, w, b, groups, *, input_offset, output_offset, multipliers, shifts, stride, padding, dilation,
             out_hw, activation):
    """Straightforward numpy/int64 model of TFLite's ConvPerChannel (for cross-checking)."""
    _, h, wd, cin = x.shape
    cout, kh, kw, fc = w.shape
    per_group = cout // groups
    acc = np.zeros((out_hw[0], out_hw[1], cout), dtype=np.int64)
    xi = x.astype(np.int64)[0] + input_offset
    for oy in range(out_hw[0]):
        for ox in range(out_hw[1]):
            for ky in range(kh):
                iy = oy * stride[0] - padding[0] + ky * dilation[0]
                if not 0 <= iy < h:
                    continue
                for kx in range(kw):
                    ix = ox * stride[1] - padding[1] + kx * dilation[1]
                    if not 0 <= ix < wd:
                        continue
                    for oc in range(cout):
                        g = oc // per_group
                        acc[oy, ox, oc] += int(np.dot(xi[iy, ix, g * fc:(g + 1) * fc], w[oc, ky, kx].astype(np.int64)))
    acc += np.asarray(b, dtype=np.int64)
    out = np.zeros_like(acc)
    for oc in range(cout):
        col = acc[..., oc].ravel()
        wrapped = ((col + 2**31) % 2**32) - 2**31
        out[..., oc] = quant.requantize_ref(wrapped, int(multipliers[oc]), int(shifts[oc])).reshape(out_hw)
    out = np.clip(out + output_offset, activation[0], activation[1])
    return out.astype(np.int8)[None]


def test_data_movement_against_numpy(libs):
    rng = np.random.default_rng(SEED + 3)
    for lib in libs.values():
        x = rng.integers(-128, 128, size=(2, 5, 7, 6), dtype=np.int16).astype(np.int8)
        assert np.array_equal(lib.strided_slice(x, [1, 1, 6, 0], [1, 2, -2, 3], (1, 2, 4, 2)), x[1:, 1::2, 6::-2, ::3])
        assert np.array_equal(lib.pad(x, [[0, 1], [1, 0], [2, 3], [0, 0]], -7),
                              np.pad(x, [[0, 1], [1, 0], [2, 3], [0, 0]], constant_values=-7))
        for axis in range(4):
            ys = [x, x[:, :, :, :]]
            assert np.array_equal(lib.concatenation(ys, axis), np.concatenate(ys, axis=axis))
        assert np.array_equal(lib.reshape(x, (10, 42)), x.reshape(10, 42))


def test_kernels_reject_bad_arguments(libs):
    lib = libs["portable"]
    x = np.zeros((1, 4, 4, 3), np.int8)
    w = np.zeros((2, 3, 3, 2), np.int8)  # 3 input channels are not a multiple of filter depth 2
    with pytest.raises(KernelError):
        lib.conv(x, w, None, input_offset=0, output_offset=0, multipliers=[1 << 30] * 2, shifts=[0, 0],
                 out_hw=(2, 2))
    with pytest.raises(KernelError):
        lib.conv(x, np.zeros((2, 1, 1, 3), np.int8), None, input_offset=0, output_offset=0,
                 multipliers=[1 << 30] * 2, shifts=[0, 0], padding=(1, 1), out_hw=(6, 6),
                 kernel="asc_convolve_1x1_s8")


# ---------------------------------------------------------------------------------------------
# Cortex-M4 cross compilation
# ---------------------------------------------------------------------------------------------
def test_cross_compiles_for_cortex_m4_with_dsp(tmp_path):
    objs = cross_compile(tmp_path)
    assert len(objs) >= 6
    objdump = shutil.which("arm-none-eabi-objdump")
    if objdump:
        dis = "".join(subprocess.run([objdump, "-d", str(o)], capture_output=True, text=True).stdout for o in objs)
        assert "smlad" in dis and "sxtab16" in dis, "DSP path not compiled in for -mcpu=cortex-m4"
    # the same sources without the DSP extension (portable path on a Cortex-M0-class core) also build
    cross_compile(tmp_path / "m0", extra=["-mcpu=cortex-m0", "-mfloat-abi=soft", "-mfpu=auto"])


# ---------------------------------------------------------------------------------------------
# the real DSP instructions: Cortex-M4 (Thumb-2 + DSP) build executed by QEMU's ARM ISA model
# ---------------------------------------------------------------------------------------------


def _c_arr(name: str, ctype: str, a) -> str:
    vals = ",".join(str(int(v)) for v in np.asarray(a).ravel())
    return f"static const {ctype} {name}[] = {{{vals}}};\n"


def test_cortex_m4_dsp_build_under_qemu_equals_host_portable(libs, tmp_path):
    """Compile the kernels with -mcpu=cortex-m4 (real <arm_acle.h> SXTAB16/SMLAD), run them in
    qemu-arm (user mode, ARM ISA incl. the DSP extension) and compare with the host portable build."""
    rng = np.random.default_rng(SEED + 99)
    P = libs["portable"]
    decls, calls, expected = [], [], []
    for i in range(24):
        kind = i % 4
        zp_in, zp_out = int(rng.integers(-128, 128)), int(rng.integers(-128, 128))
        act = (int(rng.integers(-128, -60)), int(rng.integers(60, 128)))
        h, w = int(rng.integers(3, 10)), int(rng.integers(3, 10))
        if kind in (0, 1, 2):  # conv KxK (grouped sometimes), conv 1x1
            groups = int(rng.integers(2, 4)) if kind == 1 else 1
            fc = int(rng.integers(1, 12))
            cin, cout = fc * groups, groups * int(rng.integers(1, 5))
            kh, kw = (1, 1) if kind == 2 else (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
            stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
            pad = (0, 0) if kind == 2 else (int(rng.integers(0, kh)), int(rng.integers(0, kw)))
            oh, ow = (h + 2 * pad[0] - kh) // stride[0] + 1, (w + 2 * pad[1] - kw) // stride[1] + 1
            x = rng.integers(-128, 128, size=(1, h, w, cin)).astype(np.int8)
            wt = rng.integers(-128, 128, size=(cout, kh, kw, fc)).astype(np.int8)
            b = rng.integers(-40000, 40000, size=cout)
            m, s = _rand_q(rng, cout)
            expected.append(P.conv(x, wt, b, input_offset=-zp_in, output_offset=zp_out, multipliers=m, shifts=s,
                                   stride=stride, padding=pad, out_hw=(oh, ow), activation=act,
                                   kernel="asc_convolve_wrapper_s8"))
            decls += [_c_arr(f"x{i}", "int8_t", x), _c_arr(f"w{i}", "int8_t", wt), _c_arr(f"b{i}", "int32_t", b),
                      _c_arr(f"m{i}", "int32_t", m), _c_arr(f"s{i}", "int32_t", s)]
            calls.append(
                f"{{ asc_nn_context ctx = {{scratch, sizeof(scratch)}};\n"
                f"  asc_nn_conv_params p = {{{-zp_in}, {zp_out}, {{{stride[0]}, {stride[1]}}}, {{{pad[0]}, {pad[1]}}},"
                f" {{1, 1}}, {{{act[0]}, {act[1]}}}}};\n"
                f"  asc_nn_per_channel_quant q = {{m{i}, s{i}}};\n"
                f"  asc_nn_dims id = {{1, {h}, {w}, {cin}}}, fd = {{{cout}, {kh}, {kw}, {fc}}}, od = {{1, {oh}, {ow}, {cout}}};\n"
                f"  emit(asc_convolve_wrapper_s8(&ctx, &p, &q, &id, x{i}, &fd, w{i}, b{i}, &od, out), {oh * ow * cout}); }}\n")
        else:  # depthwise, ch_mult 1 or 2
            c, cm = int(rng.integers(1, 24)), int(rng.integers(1, 3))
            kh, kw = 3, 3
            stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
            pad = (int(rng.integers(0, 2)), int(rng.integers(0, 2)))
            oh, ow = (h + 2 * pad[0] - kh) // stride[0] + 1, (w + 2 * pad[1] - kw) // stride[1] + 1
            x = rng.integers(-128, 128, size=(1, h, w, c)).astype(np.int8)
            wt = rng.integers(-128, 128, size=(1, kh, kw, c * cm)).astype(np.int8)
            b = rng.integers(-40000, 40000, size=c * cm)
            m, s = _rand_q(rng, c * cm)
            expected.append(P.depthwise_conv(x, wt, b, input_offset=-zp_in, output_offset=zp_out, multipliers=m,
                                             shifts=s, ch_mult=cm, stride=stride, padding=pad, out_hw=(oh, ow),
                                             activation=act))
            decls += [_c_arr(f"x{i}", "int8_t", x), _c_arr(f"w{i}", "int8_t", wt), _c_arr(f"b{i}", "int32_t", b),
                      _c_arr(f"m{i}", "int32_t", m), _c_arr(f"s{i}", "int32_t", s)]
            calls.append(
                f"{{ asc_nn_dw_conv_params p = {{{-zp_in}, {zp_out}, {cm}, {{{stride[0]}, {stride[1]}}},"
                f" {{{pad[0]}, {pad[1]}}}, {{1, 1}}, {{{act[0]}, {act[1]}}}}};\n"
                f"  asc_nn_per_channel_quant q = {{m{i}, s{i}}};\n"
                f"  asc_nn_dims id = {{1, {h}, {w}, {c}}}, fd = {{1, {kh}, {kw}, {c * cm}}}, od = {{1, {oh}, {ow}, {c * cm}}};\n"
                f"  emit(asc_depthwise_conv_s8(0, &p, &q, &id, x{i}, &fd, w{i}, b{i}, &od, out), {oh * ow * c * cm}); }}\n")
    dis = kernel_models.run_m4_cases(tmp_path, decls, calls, expected)
    assert "smlad" in dis and "sxtab16" in dis


def test_host_library_cache_key_covers_compiler_and_sources(tmp_path):
    """A cached host library is reused only for the same compiler, flags and sources."""
    import shutil as _sh

    from asc_edge.codegen.kernels_host import build_shared_library

    src = tmp_path / "k.c"
    src.write_text("int k(void) { return 1; }\n")
    flags = ["-std=c99", "-O2", "-fPIC", "-shared"]
    a = build_shared_library("t", [src], [], flags, cc="gcc", build_dir=tmp_path / "b")
    assert build_shared_library("t", [src], [], flags, cc="gcc", build_dir=tmp_path / "b") == a
    other_cc = _sh.which("cc") or pytest.skip("no `cc` alias")
    assert build_shared_library("t", [src], [], flags, cc=other_cc, build_dir=tmp_path / "b") != a
    src.write_text("int k(void) { return 2; }\n")
    assert build_shared_library("t", [src], [], flags, cc="gcc", build_dir=tmp_path / "b") != a


@pytest.mark.parametrize("variant", ["portable", "dsp"])
def test_lut_equals_its_numpy_reference(libs, variant):
    """asc_lut_s8 (the element-wise island tables) against the registry entry's numpy reference:
    one table and one per channel, odd sizes (the 4-byte path and its tail), in place."""
    import ctypes as C

    from asc_edge.codegen.kernels_host import _dims
    from asc_edge.codegen.ops.lut import Lut

    lib = libs[variant].lib
    rng = np.random.default_rng(SEED + 21)
    for shape, per_channel, in_place in [((1, 3, 5, 7), False, False), ((1, 2, 3, 5), True, False),
                                         ((1, 1, 1, 3), False, True), ((1, 4, 4, 8), True, True)]:
        x = rng.integers(-128, 128, size=shape).astype(np.int8)
        tables = rng.integers(-128, 128, size=(shape[3] if per_channel else 1, 256)).astype(np.int8)
        ref = Lut.reference(x, tables)
        out = x.copy() if in_place else np.zeros_like(x)
        src = out if in_place else x
        p8 = C.POINTER(C.c_int8)
        st = lib.asc_lut_s8(tables.ctypes.data_as(p8), C.c_int32(len(tables)), C.byref(_dims(shape)),
                            src.ctypes.data_as(p8), out.ctypes.data_as(p8))
        assert st == 0 and np.array_equal(out, ref), (shape, per_channel, in_place)
