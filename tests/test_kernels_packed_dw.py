"""asc_depthwise_conv_s8_packed: the 3x3 DSP depthwise ("dw3") path reading the export's group
tables (asc_edge.codegen.speed_tables.pack_dw3, ASC_DW3_TABLE_WORDS layout) instead of building
them per call. With the tables it must give exactly what asc_depthwise_conv_s8 (tables built at run
time) and the portable build give: strides 1 / 2 on each axis, paddings 0..2, odd widths and widths
up to the 62-column buffer (and past it: the tables are then unused), C % 4 != 0 (the tail channels
have no table), shifts -1 / -20, biases at the exactness bound, input / output offsets at their
limits, ReLU-range activations. Host (DSP emulation) and the real Cortex-M4 build under qemu-arm.
"""

from __future__ import annotations

import ctypes as C
import shutil

import numpy as np
import pytest

from asc_edge.codegen.kernels_host import HostKernels, _act, _dims, _i32, _ptr8, _ptr32, _s
from asc_edge.codegen.speed_tables import DW3_TABLE_WORDS, pack_dw3

import kernel_models  # noqa: E402  (tests/ is on sys.path, as for conftest)

SEED = 4242


@pytest.fixture(scope="module")
def libs():
    return {"portable": HostKernels("portable"), "dsp": HostKernels("dsp")}


def _packed(lib, x, w, bias, tables, *, input_offset, output_offset, multipliers, shifts, stride, padding,
            out_hw, activation):
    """asc_depthwise_conv_s8_packed through ctypes (tables None: the NULL pointer)."""
    out = np.zeros((x.shape[0], out_hw[0], out_hw[1], w.shape[3]), dtype=np.int8)
    mult, sh = _i32(multipliers), _i32(shifts)
    b = None if bias is None else _i32(bias)
    t = None if tables is None else _i32(tables)
    prm = _s.DwConvParams(int(input_offset), int(output_offset), 1, _s.Tile(*stride), _s.Tile(*padding),
                          _s.Tile(1, 1), _act(activation))
    q = _s.PerChannelQuant(_ptr32(mult), _ptr32(sh))
    st = lib.lib.asc_depthwise_conv_s8_packed(None, C.byref(prm), C.byref(q), C.byref(_dims(x.shape)), _ptr8(x),
                                              C.byref(_s.Dims(*w.shape)), _ptr8(w), _ptr32(b), _ptr32(t),
                                              C.byref(_dims(out.shape)), _ptr8(out))
    assert st == 0
    return out


def _case(rng, it, widths):
    """One random fast-form layer: (x, w, bias, kwargs)."""
    c = int(rng.choice([4, 5, 7, 8, 12, 13, 64, 120]))
    h = int(rng.integers(1, 7))
    w = int(rng.choice(widths))
    stride = [(1, 1), (1, 2), (2, 1), (2, 2)][it % 4]
    pad = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
    oh = (h + 2 * pad[0] - 3) // stride[0] + 1
    ow = (w + 2 * pad[1] - 3) // stride[1] + 1
    if oh <= 0 or ow <= 0:
        return None
    zp_in = int(rng.choice([-128, 127, int(rng.integers(-128, 128))]))
    in_off = -zp_in
    out_off = int(rng.choice([-128, 127, 256, -256, int(rng.integers(-128, 128))]))
    m = rng.integers(0, 1 << 31, size=c)
    m = np.where(rng.random(c) < 0.05, 0, m)
    m = np.where(rng.random(c) < 0.05, (1 << 31) - 1, m)
    s = rng.integers(-12, -4, size=c)
    r = rng.random(c)
    s = np.where(r < 0.15, -1, s)
    s = np.where((r >= 0.15) & (r < 0.3), -20, s)
    lim = (1 << 30) - 1 - 9 * (128 + abs(in_off)) * 128
    b = rng.integers(-60000, 60000, size=c)
    sel = rng.random(c)
    b = np.where(sel < 0.1, lim, b)
    b = np.where((sel >= 0.1) & (sel < 0.2), -lim, b)
    if c % 4 and rng.random() < 0.5:  # a tail channel outside the fast form: it has no table
        s[-1], b[-1] = 0, lim + 1
    x = rng.integers(-128, 128, size=(1, h, w, c)).astype(np.int8)
    if it % 9 == 0:
        x[:] = -128 if it % 2 else 127
    wt = rng.integers(-128, 128, size=(1, 3, 3, c)).astype(np.int8)
    if it % 13 == 0:
        wt[:] = -128
    a = rng.random()
    act = (-128, 127) if a < 0.5 else ((0, 127) if a < 0.75 else (int(rng.integers(-128, 0)), int(rng.integers(0, 128))))
    kw = dict(input_offset=in_off, output_offset=out_off, multipliers=m, shifts=s, stride=stride, padding=pad,
              out_hw=(oh, ow), activation=act)
    return x, wt, (None if it % 17 == 0 else b), kw


def _tables(wt, b, kw):
    return pack_dw3(wt, kw["multipliers"], kw["shifts"], b, input_offset=kw["input_offset"],
                    output_offset=kw["output_offset"])


def test_pack_dw3_none_outside_the_fast_form():
    rng = np.random.default_rng(SEED)
    c = 12
    wt = rng.integers(-128, 128, size=(1, 3, 3, c)).astype(np.int8)
    m, s, b = np.full(c, 1 << 30), np.full(c, -8), np.zeros(c, np.int64)
    kw = dict(input_offset=128, output_offset=-5)
    t = pack_dw3(wt, m, s, b, **kw)
    assert t is not None and t.dtype == np.int32 and t.shape == (c // 4 * DW3_TABLE_WORDS,)
    lim = (1 << 30) - 1 - 9 * (128 + 128) * 128
    for k in range(c):  # one channel of one group outside: no tables at all
        for mm, ss, bb in (((-1), -8, 0), (1 << 30, 0, 0), (1 << 30, -21, 0), (1 << 30, -8, lim + 1),
                           (1 << 30, -8, -(lim + 1))):
            m2, s2, b2 = m.copy(), s.copy(), b.copy()
            m2[k], s2[k], b2[k] = mm, ss, bb
            assert pack_dw3(wt, m2, s2, b2, **kw) is None, (k, mm, ss, bb)
    # at the bounds: still fast
    b2 = b.copy()
    b2[0], b2[1] = lim, -lim
    s2 = s.copy()
    s2[2], s2[3] = -1, -20
    assert pack_dw3(wt, m, s2, b2, **kw) is not None
    # a channel past the last group (C % 4) does not matter
    wt13 = rng.integers(-128, 128, size=(1, 3, 3, 13)).astype(np.int8)
    assert pack_dw3(wt13, np.append(m, -1), np.append(s, 5), np.append(b, 1 << 31 - 1), **kw) is not None
    # offsets / layer outside the path
    assert pack_dw3(wt, m, s, b, input_offset=256, output_offset=0) is None
    assert pack_dw3(wt, m, s, b, input_offset=0, output_offset=257) is None
    assert pack_dw3(wt, m, s, b, input_offset=0, output_offset=0, dilation=(2, 1)) is None
    assert pack_dw3(wt[:, :2], m, s, b, input_offset=0, output_offset=0) is None


def test_packed_equals_unpacked_equals_portable(libs):
    rng = np.random.default_rng(SEED + 1)
    P, D = libs["portable"], libs["dsp"]
    n_packed = 0
    for it in range(160):
        case = _case(rng, it, [1, 2, 3, 8, 9, 16, 17, 33, 59, 60, 61, 70])
        if case is None:
            continue
        x, wt, b, kw = case
        t = _tables(wt, b, kw)
        assert t is not None, it
        n_packed += 1
        ref = P.depthwise_conv(x, wt, b, ch_mult=1, **kw)
        assert np.array_equal(ref, D.depthwise_conv(x, wt, b, ch_mult=1, **kw)), it
        assert np.array_equal(ref, _packed(D, x, wt, b, None, **kw)), it
        assert np.array_equal(ref, _packed(D, x, wt, b, t, **kw)), (it, x.shape, kw["stride"], kw["padding"])
        assert np.array_equal(ref, _packed(P, x, wt, b, t, **kw)), it  # portable: tables unused
    assert n_packed > 100


def _arr(name, ctype, a):
    return f"static const {ctype} {name}[] = {{{','.join(str(int(v)) for v in np.asarray(a).ravel())}}};\n"


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-arm") is None,
                    reason="needs arm-none-eabi-gcc and qemu-arm")
def test_cortex_m4_packed_under_qemu(libs, tmp_path):
    """The M4 build (asc_dw3_row / asc_dw3_row2_s1 / _s2 asm on flash-like const tables): packed and
    unpacked against the host portable build."""
    rng = np.random.default_rng(SEED + 2)
    P = libs["portable"]
    decls, calls, expected = [], ["(void)scratch;\n"], []
    i = 0
    for it in range(80):
        case = _case(rng, it, [1, 2, 3, 9, 17, 33, 60, 61])
        if case is None:
            continue
        x, wt, b, kw = case
        t = _tables(wt, b, kw)
        assert t is not None
        ref = P.depthwise_conv(x, wt, b, ch_mult=1, **kw)
        _, h, w, c = x.shape
        oh, ow = kw["out_hw"]
        (sh, sw), (ph, pw), (lo, hi) = kw["stride"], kw["padding"], kw["activation"]
        decls += [_arr(f"x{i}", "int8_t", x), _arr(f"w{i}", "int8_t", wt), _arr(f"m{i}", "int32_t", kw["multipliers"]),
                  _arr(f"s{i}", "int32_t", kw["shifts"]), _arr(f"t{i}", "int32_t", t)]
        bname = "0"
        if b is not None:
            decls.append(_arr(f"b{i}", "int32_t", b))
            bname = f"b{i}"
        head = (f"{{ asc_nn_dw_conv_params p = {{{kw['input_offset']}, {kw['output_offset']}, 1, {{{sh}, {sw}}},"
                f" {{{ph}, {pw}}}, {{1, 1}}, {{{lo}, {hi}}}}};\n"
                f"  asc_nn_per_channel_quant q = {{m{i}, s{i}}};\n"
                f"  asc_nn_dims id = {{1, {h}, {w}, {c}}}, fd = {{1, 3, 3, {c}}}, od = {{1, {oh}, {ow}, {c}}};\n")
        calls.append(head + f"  emit(asc_depthwise_conv_s8_packed(0, &p, &q, &id, x{i}, &fd, w{i}, {bname}, t{i},"
                            f" &od, out), {oh * ow * c}); }}\n")
        calls.append(head + f"  emit(asc_depthwise_conv_s8(0, &p, &q, &id, x{i}, &fd, w{i}, {bname}, &od, out),"
                            f" {oh * ow * c}); }}\n")
        expected += [ref, ref]
        i += 1
    assert i > 50
    kernel_models.run_m4_cases(tmp_path, decls, calls, expected)
