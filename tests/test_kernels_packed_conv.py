"""asc_convolve_s8_packed: the general convolution's DSP GEMM with a pre-widened filter and
requantisation records computed at export.

The filter ``(C_out, kh, kw, C_in)`` is K-major (K = kh · kw · C_in), the order of the kernel's
patches, so its tables are those of a 1x1 layer of K input channels
(``asc_edge.codegen.speed_tables.pack_conv``: ``widen_1x1_filter`` + ``pack_1x1_requant``). Checked:
the same bytes as ``asc_convolve_s8`` (DSP, tables built at run time) and as the portable build, on
the host DSP emulation and on the real Cortex-M4 build under qemu-arm, for 3x3 / 1x3 / 3x1 / 5x3 /
2x2 / 4x4 / padded 1x1 kernels, strides 1-3, paddings 0-2, dilations 2, C_in % 4 != 0 (the gathers,
K % 4 tails) and C_in % 4 == 0 (interior pixels widened straight from the input, border pixels
through im2col), K up to 128, odd / even pixel counts, several chunks, odd channel counts (tables
unused); that the tables are read (records of another output offset give that offset's outputs, the
widened copy of another filter that filter's outputs); that ``pack_conv``'s filter is the C widening
of the filter viewed as ``(C_out, 1, 1, K)``, and that it gives no tables outside the fast form.
"""

from __future__ import annotations

import ctypes as C
import shutil

import numpy as np
import pytest

from asc_edge.codegen.kernels_host import (ConvParams, Context, Dims, HostKernels, PerChannelQuant, Tile, _i32,
                                           _ptr8, _ptr32)
from asc_edge.codegen.kernels_host import _act as _act_struct
from asc_edge.codegen.speed_tables import PW_RQ_WORDS, pack_conv

import kernel_models  # noqa: E402  (tests/ is on sys.path, as for conftest)

SEED = 5151

#: (kh, kw, C_in) of the cases: K = 9 (CP-Mobile layer 0, gather1), 72 (layer 1), K % 4 tails,
#: K = 128 (the largest the path takes), C_in % 4 != 0 (the generic gather)
SHAPES = [(3, 3, 1), (3, 3, 8), (3, 3, 3), (3, 3, 5), (1, 3, 7), (3, 1, 4), (5, 3, 2), (2, 2, 32), (4, 4, 8),
          (3, 3, 14), (1, 1, 13), (3, 3, 12), (2, 3, 6)]


@pytest.fixture(scope="module")
def libs():
    return {"portable": HostKernels("portable"), "dsp": HostKernels("dsp")}


def _blim(k, in_off):
    return (1 << 30) - 1 - k * (128 + abs(in_off)) * 128


def _case(rng, it):
    """One random general convolution with every channel in the fast form (so pack_conv gives
    tables); returns (x, wt, b, m, s, in_off, out_off, conv keyword arguments)."""
    kh, kw, cin = SHAPES[it % len(SHAPES)]
    cout = int(rng.choice([2, 4, 8, 10, 32, 3, 7]))
    stride = [(1, 1), (2, 2), (1, 2), (2, 1), (3, 2)][int(rng.integers(0, 5))]
    dil = {5: (2, 2), 8: (2, 1), 10: (1, 2)}.get(it % 11, (1, 1))
    pad = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
    if (kh, kw) == (1, 1):
        pad = (1, int(rng.integers(0, 2)))  # a padded 1x1 takes the general kernel
    big = it % 6 == 0  # several chunks of ASC_PW_CONV_XBUF_WORDS
    h = int(rng.integers(18, 40)) if big else int(rng.integers(1, 9))
    w = int(rng.integers(18, 40)) if big else int(rng.integers(1, 9))
    eh, ew = dil[0] * (kh - 1) + 1, dil[1] * (kw - 1) + 1
    h, w = max(h, eh - 2 * pad[0]), max(w, ew - 2 * pad[1])
    oh, ow = (h + 2 * pad[0] - eh) // stride[0] + 1, (w + 2 * pad[1] - ew) // stride[1] + 1
    k = kh * kw * cin
    x = rng.integers(-128, 128, size=(1, h, w, cin)).astype(np.int8)
    wt = rng.integers(-128, 128, size=(cout, kh, kw, cin)).astype(np.int8)
    if it % 7 == 0:  # the largest sums: every product 128 * 128 (or -128 * 255)
        wt[:] = -128
        x[:] = -128 if it % 2 else 127
    in_off = int(rng.choice([128, -127, 8, int(rng.integers(-127, 129))]))
    out_off = int(rng.choice([-128, 127, int(rng.integers(-128, 128))]))
    m = rng.integers(1 << 30, 1 << 31, size=cout)
    m = np.where(rng.random(cout) < 0.1, 0, m)
    m = np.where(rng.random(cout) < 0.1, 1 << 30, m)
    m = np.where(rng.random(cout) < 0.05, (1 << 31) - 1, m)
    s = rng.integers(-14, -4, size=cout)
    r = rng.random(cout)
    s = np.where(r < 0.15, -1, np.where(r < 0.3, -20, s))
    lim = _blim(k, in_off)
    b = rng.integers(-60000, 60000, size=cout)
    sel = rng.random(cout)
    b = np.where(sel < 0.1, lim, np.where(sel < 0.2, -lim, b))
    kw_ = dict(stride=stride, padding=pad, dilation=dil, out_hw=(oh, ow))
    return x, wt, b, m, s, in_off, out_off, kw_


def _tables(wt, b, m, s, in_off, out_off):
    t = pack_conv(wt, m, s, b, input_offset=in_off, output_offset=out_off)
    assert t is not None
    w16, rq = t
    k = int(np.prod(wt.shape[1:]))
    assert w16.dtype == rq.dtype == np.int32
    assert w16.size == wt.shape[0] // 2 * 4 * ((k + 3) // 4) and rq.size == wt.shape[0] // 2 * PW_RQ_WORDS
    return w16, rq


def _packed(lib, x, wt, b, m, s, in_off, out_off, kw_, w16, rq):
    out = np.zeros(x.shape[:1] + kw_["out_hw"] + (wt.shape[0],), dtype=np.int8)
    size = int(lib.lib.asc_convolve_s8_get_buffer_size(C.byref(Dims(*x.shape)), C.byref(Dims(*wt.shape))))
    scratch = np.zeros(max(size, 1), dtype=np.int8)
    ctx = Context(scratch.ctypes.data_as(C.c_void_p), size)
    mult, sh, bias = _i32(m), _i32(s), _i32(b)
    prm = ConvParams(int(in_off), int(out_off), Tile(*kw_["stride"]), Tile(*kw_["padding"]), Tile(*kw_["dilation"]),
                     _act_struct((-128, 127)))
    q = PerChannelQuant(_ptr32(mult), _ptr32(sh))
    w16 = None if w16 is None else np.ascontiguousarray(w16, dtype=np.int32)
    rq = None if rq is None else np.ascontiguousarray(rq, dtype=np.int32)
    st = lib.lib.asc_convolve_s8_packed(C.byref(ctx), C.byref(prm), C.byref(q), C.byref(Dims(*x.shape)), _ptr8(x),
                                        C.byref(Dims(*wt.shape)), _ptr8(wt), _ptr32(w16), _ptr32(rq), _ptr32(bias),
                                        C.byref(Dims(*out.shape)), _ptr8(out))
    assert st == 0
    return out


def _ref(lib, x, wt, b, m, s, in_off, out_off, kw_):
    return lib.conv(x, wt, b, input_offset=in_off, output_offset=out_off, multipliers=m, shifts=s,
                    kernel="asc_convolve_s8", **kw_)


def test_packed_conv_equals_reference_host(libs):
    rng = np.random.default_rng(SEED)
    P, D = libs["portable"], libs["dsp"]
    for it in range(120):
        x, wt, b, m, s, in_off, out_off, kw_ = _case(rng, it)
        args = (x, wt, b, m, s, in_off, out_off, kw_)
        ref = _ref(P, *args)
        assert np.array_equal(ref, _ref(D, *args)), it
        w16, rq = _tables(wt, b, m, s, in_off, out_off)
        for lib in (P, D):
            for ww, rr in ((w16, rq), (None, rq), (w16, None), (None, None)):
                got = _packed(lib, *args, ww, rr)
                assert np.array_equal(ref, got), (it, lib.variant, ww is None, rr is None, x.shape, wt.shape, kw_)


def test_packed_conv_reads_the_records(libs):
    """Records of output offset o2 make the DSP kernel produce the reference for o2 (even C_out and
    at least 2 output pixels: the DSP GEMM path), the widened copy of another filter that filter's
    outputs; the portable build ignores the records."""
    rng = np.random.default_rng(SEED + 1)
    P, D = libs["portable"], libs["dsp"]
    n_diff = n_run = 0
    for it in range(40):
        x, wt, b, m, s, in_off, out_off, kw_ = _case(rng, it)
        if wt.shape[0] % 2:
            wt, b, m, s = wt[:-1], b[:-1], m[:-1], s[:-1]
        if kw_["out_hw"][0] * kw_["out_hw"][1] < 2:
            continue
        n_run += 1
        o2 = out_off + 37 if out_off < 90 else out_off - 37
        _, rq2 = _tables(wt, b, m, s, in_off, o2)
        w16 = _tables(wt, b, m, s, in_off, out_off)[0]
        ref, ref2 = _ref(P, x, wt, b, m, s, in_off, out_off, kw_), _ref(P, x, wt, b, m, s, in_off, o2, kw_)
        n_diff += int(not np.array_equal(ref, ref2))
        for ww in (w16, None):
            assert np.array_equal(_packed(D, x, wt, b, m, s, in_off, out_off, kw_, ww, rq2), ref2), it
            assert np.array_equal(_packed(P, x, wt, b, m, s, in_off, out_off, kw_, ww, rq2), ref), it
        # the widened filter of another filter wt2 gives wt2's outputs (with and without records)
        wt2 = rng.integers(-128, 128, size=wt.shape).astype(np.int8)
        w16b = _tables(wt2, b, m, s, in_off, out_off)[0]
        ref3 = _ref(P, x, wt2, b, m, s, in_off, out_off, kw_)
        n_diff += int(not np.array_equal(ref, ref3))
        for rr in (_tables(wt, b, m, s, in_off, out_off)[1], None):
            assert np.array_equal(_packed(D, x, wt, b, m, s, in_off, out_off, kw_, w16b, rr), ref3), it
    assert n_run > 25 and n_diff > 40


def test_pack_conv_layout_and_refusals(libs):
    """pack_conv's filter is asc_convolve_1x1_s8_widen_filter of the filter viewed as (C_out, 1, 1, K);
    no tables for K > ASC_PW_MAX_K, a clamped activation or a channel outside the fast form."""
    D = libs["dsp"]
    rng = np.random.default_rng(SEED + 2)
    for kh, kw, cin in SHAPES:
        cout = int(rng.choice([2, 7, 32]))
        wt = rng.integers(-128, 128, size=(cout, kh, kw, cin)).astype(np.int8)
        k = kh * kw * cin
        m, s, b = rng.integers(1 << 30, 1 << 31, size=cout), np.full(cout, -8), rng.integers(-999, 999, size=cout)
        w16, _ = _tables(wt, b, m, s, 128, -128)
        fd = Dims(cout, 1, 1, k)
        n = int(D.lib.asc_convolve_1x1_s8_widened_size(C.byref(fd)))
        dst = np.zeros(n, dtype=np.int32)
        D.lib.asc_convolve_1x1_s8_widen_filter(C.byref(fd), _ptr8(np.ascontiguousarray(wt)), _ptr32(dst))
        assert np.array_equal(dst, w16), (kh, kw, cin)
        kw_ = dict(input_offset=128, output_offset=-128)
        assert pack_conv(wt, m, s, b, activation=(0, 127), **kw_) is None
        s2 = s.copy()
        s2[-1] = 0
        assert pack_conv(wt, m, s2, b, **kw_) is None
    wt = np.ones((4, 3, 3, 15), np.int8)  # K = 135
    assert pack_conv(wt, np.full(4, 1 << 30), np.full(4, -8), None, input_offset=1, output_offset=0) is None
    assert pack_conv(wt[..., :14], np.full(4, 1 << 30), np.full(4, -8), None, input_offset=1, output_offset=0)


def _arr(name, ctype, a, align=""):
    return f"static const {ctype} {name}[]{align} = {{{','.join(str(int(v)) for v in np.asarray(a).ravel())}}};\n"


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-arm") is None,
                    reason="needs arm-none-eabi-gcc and qemu-arm")
def test_packed_conv_cortex_m4_under_qemu(libs, tmp_path):
    rng = np.random.default_rng(SEED + 3)
    P = libs["portable"]
    decls, calls, expected = [], [], []
    for i in range(40):
        x, wt, b, m, s, in_off, out_off, kw_ = _case(rng, i)
        n, h, w, cin = x.shape
        cout, kh, kw = wt.shape[:3]
        (oh, ow), (sh, sw), (ph, pw), (dh, dw) = kw_["out_hw"], kw_["stride"], kw_["padding"], kw_["dilation"]
        w16, rq = _tables(wt, b, m, s, in_off, out_off)
        with_w16, with_rq = i % 4 != 3, i % 8 != 7
        o2 = out_off
        if i % 6 == 5 and cout % 2 == 0 and oh * ow >= 2:  # records of another output offset: are they read?
            o2 = out_off + 11 if out_off < 100 else out_off - 11
            rq = _tables(wt, b, m, s, in_off, o2)[1]
            with_rq = True
        expected.append(_ref(P, x, wt, b, m, s, in_off, out_off if not with_rq else o2, kw_))
        decls += [_arr(f"x{i}", "int8_t", x), _arr(f"w{i}", "int8_t", wt), _arr(f"b{i}", "int32_t", b),
                  _arr(f"m{i}", "int32_t", m), _arr(f"s{i}", "int32_t", s)]
        decls += [_arr(f"r{i}", "int32_t", rq)] if with_rq else []
        decls += [_arr(f"v{i}", "int32_t", w16)] if with_w16 else []
        calls.append(
            f"{{ asc_nn_context ctx = {{scratch, {2 * kh * kw * cin}}};\n"
            f"  asc_nn_conv_params p = {{{in_off}, {out_off}, {{{sh}, {sw}}}, {{{ph}, {pw}}}, {{{dh}, {dw}}}, "
            f"{{-128, 127}}}};\n"
            f"  asc_nn_per_channel_quant q = {{m{i}, s{i}}};\n"
            f"  asc_nn_dims id = {{{n}, {h}, {w}, {cin}}}, fd = {{{cout}, {kh}, {kw}, {cin}}}, "
            f"od = {{{n}, {oh}, {ow}, {cout}}};\n"
            f"  emit(asc_convolve_s8_packed(&ctx, &p, &q, &id, x{i}, &fd, w{i}, {f'v{i}' if with_w16 else '0'},"
            f" {f'r{i}' if with_rq else '0'}, b{i}, &od, out), {oh * ow * cout}); }}\n")
    dis = kernel_models.run_m4_cases(tmp_path, decls, calls, expected)
    assert "<asc_pw_2x2_rq>:" in dis and "<asc_convolve_s8_packed>:" in dis
