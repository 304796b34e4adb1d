"""asc_convolve_1x1_s8_packed: the DSP 1x1 GEMM with requantisation records computed at export.

The records (``asc_edge.codegen.speed_tables.pack_1x1_requant``, layout ``ASC_PW_RQ_WORDS`` in
firmware/nn/asc_nn.h) replace the kernel's per-call ``asc_pw_prep``; with a pre-widened filter too
(``widen_1x1_filter``) one asm call (``asc_pw_2x2_rq``) walks every channel pair of a chunk. Checked:
the same bytes as ``asc_convolve_1x1_s8`` (DSP) and as the portable build, on the host DSP emulation
and on the real Cortex-M4 build under qemu-arm, for odd / even pixel counts, several chunks, K % 4
tails, K up to 128, odd channel counts, shifts -1 / -20, biases at the bound, offsets at their
limits; that the records are really read (records of another output offset give that offset's
outputs); and that ``pack_1x1_requant`` refuses a layer with any channel outside the fast form.
"""

from __future__ import annotations

import ctypes as C
import shutil

import numpy as np
import pytest

from asc_edge.codegen.kernels_host import ConvParams, Dims, HostKernels, PerChannelQuant, Tile, _i32, _ptr8, _ptr32
from asc_edge.codegen.kernels_host import _act as _act_struct
from asc_edge.codegen.speed_tables import widen_1x1_filter
from asc_edge.codegen.speed_tables import PW_RQ_WORDS, pack_1x1_requant

import kernel_models  # noqa: E402  (tests/ is on sys.path, as for conftest)

SEED = 4242


@pytest.fixture(scope="module")
def libs():
    return {"portable": HostKernels("portable"), "dsp": HostKernels("dsp")}


def _blim(k, in_off):
    return (1 << 30) - 1 - k * (128 + abs(in_off)) * 128


def _case(rng, it):
    """One random 1x1 layer with every channel in the fast form (so pack_1x1_requant gives records)."""
    cin = int(rng.choice([1, 3, 4, 5, 8, 31, 32, 56, 64, 104, 120, 127, 128]))
    cout = int(rng.choice([2, 3, 4, 7, 10, 32]))
    h, w = int(rng.integers(1, 4)), int(rng.choice([1, 2, 3, 9, 17, 24, 40]))
    x = rng.integers(-128, 128, size=(1, h, w, cin)).astype(np.int8)
    wt = rng.integers(-128, 128, size=(cout, 1, 1, cin)).astype(np.int8)
    if it % 7 == 0:  # the largest sums: every product 128 * 128 (or -128 * 255)
        wt[:] = -128
        x[:] = -128 if it % 2 else 127
    in_off = int(rng.choice([128, -127, 255, -255, int(rng.integers(-127, 129))]))
    out_off = int(rng.choice([-128, 127, 256, -256, int(rng.integers(-128, 128))]))
    m = rng.integers(1 << 30, 1 << 31, size=cout)
    m = np.where(rng.random(cout) < 0.1, 0, m)
    m = np.where(rng.random(cout) < 0.1, 1 << 30, m)
    m = np.where(rng.random(cout) < 0.05, (1 << 31) - 1, m)
    s = rng.integers(-14, -4, size=cout)
    r = rng.random(cout)
    s = np.where(r < 0.15, -1, np.where(r < 0.3, -20, s))
    lim = _blim(cin, in_off)
    b = rng.integers(-60000, 60000, size=cout)
    sel = rng.random(cout)
    b = np.where(sel < 0.1, lim, np.where(sel < 0.2, -lim, b))
    return x, wt, b, m, s, in_off, out_off


def _records(wt, b, m, s, in_off, out_off):
    rq = pack_1x1_requant(m, s, b, k=wt.shape[-1], input_offset=in_off, output_offset=out_off)
    assert rq is not None and rq.dtype == np.int32 and rq.size == wt.shape[0] // 2 * PW_RQ_WORDS
    return rq


def _packed(lib, x, wt, b, m, s, in_off, out_off, w16, rq):
    fn = lib.lib.asc_convolve_1x1_s8_packed
    out = np.zeros(x.shape[:3] + (wt.shape[0],), dtype=np.int8)
    mult, sh, bias = _i32(m), _i32(s), _i32(b)
    prm = ConvParams(int(in_off), int(out_off), Tile(1, 1), Tile(0, 0), Tile(1, 1), _act_struct((-128, 127)))
    q = PerChannelQuant(_ptr32(mult), _ptr32(sh))
    w16 = None if w16 is None else np.ascontiguousarray(w16, dtype=np.int32)
    rq = None if rq is None else np.ascontiguousarray(rq, dtype=np.int32)
    st = fn(None, C.byref(prm), C.byref(q), C.byref(Dims(*x.shape)), _ptr8(x), C.byref(Dims(*wt.shape)), _ptr8(wt),
            _ptr32(w16), _ptr32(rq), _ptr32(bias), C.byref(Dims(*out.shape)), _ptr8(out))
    assert st == 0
    return out


def _ref(lib, x, wt, b, m, s, in_off, out_off):
    h, w = x.shape[1:3]
    return lib.conv(x, wt, b, input_offset=in_off, output_offset=out_off, multipliers=m, shifts=s,
                    stride=(1, 1), out_hw=(h, w), kernel="asc_convolve_1x1_s8")


def test_packed_1x1_equals_reference_host(libs):
    rng = np.random.default_rng(SEED)
    P, D = libs["portable"], libs["dsp"]
    for it in range(150):
        x, wt, b, m, s, in_off, out_off = _case(rng, it)
        args = (x, wt, b, m, s, in_off, out_off)
        ref = _ref(P, *args)
        assert np.array_equal(ref, _ref(D, *args)), it
        rq = _records(wt, b, m, s, in_off, out_off)
        w16 = widen_1x1_filter(wt)
        for lib in (P, D):
            for ww in (w16, None):
                for rr in (rq, None):
                    got = _packed(lib, *args, ww, rr)
                    assert np.array_equal(ref, got), (it, lib.variant, ww is None, rr is None, x.shape, wt.shape)


def test_packed_1x1_reads_the_records(libs):
    """Records of output offset o2 make the DSP kernel produce the reference for o2 (every output
    channel has a record: even out_c; at least 2 pixels, else the kernel takes its int8 path, which
    has no use for records); the portable build ignores them."""
    rng = np.random.default_rng(SEED + 1)
    P, D = libs["portable"], libs["dsp"]
    n_diff = 0
    for it in range(30):
        x, wt, b, m, s, in_off, out_off = _case(rng, it)
        if wt.shape[0] % 2:
            wt, b, m, s = wt[:-1], b[:-1], m[:-1], s[:-1]
        if x.shape[1] * x.shape[2] < 2:
            x = np.concatenate([x, x[:, :, ::-1]], axis=2)
        o2 = out_off + 37 if out_off < 200 else out_off - 37
        rq2 = _records(wt, b, m, s, in_off, o2)
        ref, ref2 = _ref(P, x, wt, b, m, s, in_off, out_off), _ref(P, x, wt, b, m, s, in_off, o2)
        n_diff += int(not np.array_equal(ref, ref2))
        for ww in (widen_1x1_filter(wt), None):
            assert np.array_equal(_packed(D, x, wt, b, m, s, in_off, out_off, ww, rq2), ref2), it
            assert np.array_equal(_packed(P, x, wt, b, m, s, in_off, out_off, ww, rq2), ref), it
    assert n_diff > 20


def test_pack_1x1_requant_refuses_slow_channels():
    rng = np.random.default_rng(SEED + 2)
    k, n, in_off, out_off = 64, 8, 128, -5
    m = rng.integers(1 << 30, 1 << 31, size=n)
    s = np.full(n, -8)
    b = rng.integers(-1000, 1000, size=n)
    kw = dict(k=k, input_offset=in_off, output_offset=out_off)
    assert pack_1x1_requant(m, s, b, **kw) is not None
    assert pack_1x1_requant(m, s, None, **kw) is not None
    lim = _blim(k, in_off)
    for i in (0, n - 1):
        for what, val in (("shift", 0), ("shift", 1), ("shift", -21), ("mult", -1), ("bias", lim + 1),
                          ("bias", -lim - 1)):
            mm, ss, bb = m.copy(), s.copy(), b.copy()
            {"shift": ss, "mult": mm, "bias": bb}[what][i] = val
            assert pack_1x1_requant(mm, ss, bb, **kw) is None, (i, what, val)
    b_edge = b.copy()
    b_edge[3] = -lim
    assert pack_1x1_requant(m, s, b_edge, **kw) is not None
    assert pack_1x1_requant(m, s, b, activation=(-128, 100), **kw) is None
    assert pack_1x1_requant(m, s, b, activation=(0, 127), **kw) is None
    assert pack_1x1_requant(m, s, b, k=129, input_offset=in_off, output_offset=out_off) is None
    assert pack_1x1_requant(m, s, b, k=k, input_offset=256, output_offset=out_off) is None
    assert pack_1x1_requant(m, s, b, k=k, input_offset=in_off, output_offset=257) is None
    assert pack_1x1_requant(m[:1], s[:1], b[:1], **kw) is None  # no channel pair


def _arr(name, ctype, a):
    return f"static const {ctype} {name}[] = {{{','.join(str(int(v)) for v in np.asarray(a).ravel())}}};\n"


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-arm") is None,
                    reason="needs arm-none-eabi-gcc and qemu-arm")
def test_packed_1x1_cortex_m4_under_qemu(libs, tmp_path):
    rng = np.random.default_rng(SEED + 3)
    P = libs["portable"]
    decls, calls, expected = [], [], []
    for i in range(48):
        x, wt, b, m, s, in_off, out_off = _case(rng, i)
        n, h, w, cin = x.shape
        cout = wt.shape[0]
        rq = _records(wt, b, m, s, in_off, out_off)
        with_w16, with_rq = i % 4 != 3, i % 8 != 7
        o2 = out_off
        if i % 6 == 5 and cout % 2 == 0 and h * w >= 2:  # records of another output offset: are they read?
            o2 = out_off + 11 if out_off < 200 else out_off - 11
            rq = _records(wt, b, m, s, in_off, o2)
            with_rq = True
        expected.append(_ref(P, x, wt, b, m, s, in_off, o2 if with_rq else out_off))
        # word-aligned inputs (the asm widening of whole chunks reads them with LDRD), every 5th one
        # byte past an aligned start (then widened pair by pair with LDR)
        mis = int(i % 5 == 4)
        xa = np.concatenate([np.zeros(mis, np.int8), x.ravel()])
        decls += [f"static const int8_t x{i}[] __attribute__((aligned(8))) = "
                  f"{{{','.join(str(int(v)) for v in xa)}}};\n",
                  _arr(f"w{i}", "int8_t", wt), _arr(f"b{i}", "int32_t", b),
                  _arr(f"m{i}", "int32_t", m), _arr(f"s{i}", "int32_t", s)]
        decls += [_arr(f"r{i}", "int32_t", rq)] if with_rq else []
        decls += [_arr(f"v{i}", "int32_t", widen_1x1_filter(wt))] if with_w16 else []
        calls.append(
            f"{{ asc_nn_context ctx = {{scratch, sizeof(scratch)}};\n"
            f"  asc_nn_conv_params p = {{{in_off}, {out_off}, {{1, 1}}, {{0, 0}}, {{1, 1}}, {{-128, 127}}}};\n"
            f"  asc_nn_per_channel_quant q = {{m{i}, s{i}}};\n"
            f"  asc_nn_dims id = {{{n}, {h}, {w}, {cin}}}, fd = {{{cout}, 1, 1, {cin}}}, od = {{{n}, {h}, {w}, {cout}}};\n"
            f"  emit(asc_convolve_1x1_s8_packed(&ctx, &p, &q, &id, x{i} + {mis}, &fd, w{i}, {f'v{i}' if with_w16 else '0'},"
            f" {f'r{i}' if with_rq else '0'}, b{i}, &od, out), {h * w * cout}); }}\n")
    dis = kernel_models.run_m4_cases(tmp_path, decls, calls, expected)
    assert "<asc_pw_2x2_rq>:" in dis and "<asc_pw_widen_rows>:" in dis
