"""The residual ADD fused into the projection of asc_inverted_residual_s8_packed (asc_pw_gemm_add).

With the speed build's tables (pre-widened projection filter + requantisation records) and the ADD in
asc_add_s8's table form (one input with multiplier 2^30 / shift 0, full activation), the projection
writes the ADD's outputs itself (asc_pw_2x2_rq_adda / _addb on the Cortex-M4, their C twin on the
host). Checked: the block's bytes == expansion, depthwise, projection and ADD run one by one in the
portable build, for add_project_first 0 / 1, the 2^30 side on the projection or on the block input,
in place and not, odd widths (a last step with an odd pixel count falls back mid-block), scratch
sizes of 4 / 3 / 2 rows, a projection-row area too small for the table, ADDs outside the table form,
odd channel counts and missing tables (the unfused path); on the host DSP emulation, the portable
build and the real Cortex-M4 build under qemu-arm. Projection records of another output offset show
that the fused path reads them.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from asc_edge.codegen import quant
from asc_edge.codegen.kernels_host import NN_DIR, HostKernels, kernel_sources
from asc_edge.codegen.speed_tables import widen_1x1_filter
from asc_edge.codegen.speed_tables import pack_1x1_requant

import kernel_models  # noqa: E402  (tests/ is on sys.path, as for conftest)

SEED = 5150
N_CASES = 40


def _arr(name, ctype, a, align=""):
    return f"static const {ctype} {name}[] {align}= {{{','.join(str(int(v)) for v in np.asarray(a).ravel())}}};\n"


def _scratch_bytes(h, w, c, ce, rows):
    """asc_ir_scratch of asc_fused_s8.c (3x3 depthwise, stride 1, with the ADD)."""
    return (rows + 2) * w * ce + rows * w * ce + rows * w * c


def _case(rng, i, P):
    """One block with an ADD: its C declarations / call and the portable layer-by-layer result."""
    c = int(rng.choice([2, 4, 8, 32, 32, 56, 3, 7])) if i % 9 else 32
    ce = int(rng.choice([8, 12, 16, 24, 64, 120, 5]))
    h = int(rng.integers(1, 7))
    w = int(rng.choice([1, 2, 3, 9, 17, 17, 24]))
    rows = int(rng.choice([4, 4, 3, 2]))
    x = rng.integers(-128, 128, size=(1, h, w, c)).astype(np.int8)
    we = rng.integers(-128, 128, size=(ce, 1, 1, c)).astype(np.int8)
    wd = rng.integers(-128, 128, size=(1, 3, 3, ce)).astype(np.int8)
    wp = rng.integers(-128, 128, size=(c, 1, 1, ce)).astype(np.int8)
    be, bd, bp = (rng.integers(-20000, 20000, size=n) for n in (ce, ce, c))
    me, md, mp = (rng.integers(1 << 30, 1 << 31, size=n) for n in (ce, ce, c))
    se, sd, sp = rng.integers(-11, -6, size=ce), rng.integers(-9, -4, size=ce), rng.integers(-11, -6, size=c)
    ie, oe, id_, od, ip, op = (int(v) for v in rng.integers(-127, 128, size=6))
    act_e = (-128, 127) if i % 4 else (int(rng.integers(-128, 0)), 127)
    # ADD: TFLite parameters (the larger scale gets multiplier 2^30: the projection or x), equal scales
    # (both 2^30), or outside the table form (a clamped activation)
    s1, s2, so = (float(v) for v in 10 ** rng.uniform(-2, 0, size=3))
    if i % 7 == 3:
        s2 = s1
    pa = quant.add_params(s1, int(rng.integers(-128, 128)), s2, int(rng.integers(-128, 128)), so,
                          int(rng.integers(-128, 128)))
    act_a = (-128, 127) if i % 6 != 5 else (int(rng.integers(-128, -60)), int(rng.integers(60, 128)))
    first = int(i % 2)
    inplace = i % 3 != 2
    tables = i % 10 != 9  # else: asc_inverted_residual_s8 (no tables)
    # projection records of another output offset (every 4th case): the kernel must read them
    op_rq = op + 9 if i % 4 == 1 and c % 2 == 0 and w >= 2 else op  # (1 pixel: the int8 path)
    rqp = pack_1x1_requant(mp, sp, bp, k=ce, input_offset=ip, output_offset=op_rq)
    rqe = pack_1x1_requant(me, se, be, k=c, input_offset=ie, output_offset=oe, activation=act_e)
    if rqp is None:  # odd c (no pair) or k > 128: the run-time requantisation, no records
        op_rq = op
    e = P.conv(x, we, be, input_offset=ie, output_offset=oe, multipliers=me, shifts=se, out_hw=(h, w),
               activation=act_e, kernel="asc_convolve_1x1_s8")
    d = P.depthwise_conv(e, wd, bd, input_offset=id_, output_offset=od, multipliers=md, shifts=sd, padding=(1, 1),
                         out_hw=(h, w), activation=act_e)
    ys = []
    for o in (op, op_rq if tables else op):  # the portable build reads no records, the DSP builds do
        pr = P.conv(d, wp, bp, input_offset=ip, output_offset=o, multipliers=mp, shifts=sp, out_hw=(h, w),
                    kernel="asc_convolve_1x1_s8")
        ys.append(P.add(pr, x, params=pa, activation=act_a) if first else P.add(x, pr, params=pa, activation=act_a))
    size = _scratch_bytes(h, w, c, ce, rows)
    mis = int(i % 5 == 4)  # scratch one byte past an aligned start (the table's alignment)
    decls = [_arr(f"x{i}", "int8_t", x, "__attribute__((aligned(4))) "), _arr(f"we{i}", "int8_t", we),
             _arr(f"wd{i}", "int8_t", wd), _arr(f"wp{i}", "int8_t", wp), _arr(f"be{i}", "int32_t", be),
             _arr(f"bd{i}", "int32_t", bd), _arr(f"bp{i}", "int32_t", bp), _arr(f"me{i}", "int32_t", me),
             _arr(f"md{i}", "int32_t", md), _arr(f"mp{i}", "int32_t", mp), _arr(f"se{i}", "int32_t", se),
             _arr(f"sd{i}", "int32_t", sd), _arr(f"sp{i}", "int32_t", sp),
             _arr(f"ve{i}", "int32_t", widen_1x1_filter(we)), _arr(f"vp{i}", "int32_t", widen_1x1_filter(wp))]
    decls += [_arr(f"re{i}", "int32_t", rqe)] if rqe is not None else []
    decls += [_arr(f"rp{i}", "int32_t", rqp)] if rqp is not None else []
    vals = ", ".join(str(int(pa[k])) for k in (
        "input1_offset", "input1_multiplier", "input1_shift", "input2_offset", "input2_multiplier", "input2_shift",
        "left_shift", "output_offset", "output_multiplier", "output_shift"))
    n = h * w * c
    src = f"xin{i}" if inplace else f"x{i}"
    call = (
        f"{{ static int8_t scr{i}[{size + 4}] __attribute__((aligned(4)));\n"
        f"  static int8_t xin{i}[{n}] __attribute__((aligned(4)));\n"
        f"  for (int j = 0; j < {n}; j++) xin{i}[j] = x{i}[j];\n"
        f"  asc_nn_context ctx = {{scr{i} + {mis}, {size}}};\n"
        f"  asc_nn_conv_params pe = {{{ie}, {oe}, {{1, 1}}, {{0, 0}}, {{1, 1}}, {{{act_e[0]}, {act_e[1]}}}}};\n"
        f"  asc_nn_dw_conv_params pd = {{{id_}, {od}, 1, {{1, 1}}, {{1, 1}}, {{1, 1}}, {{{act_e[0]}, {act_e[1]}}}}};\n"
        f"  asc_nn_conv_params pp = {{{ip}, {op}, {{1, 1}}, {{0, 0}}, {{1, 1}}, {{-128, 127}}}};\n"
        f"  asc_nn_add_params pa = {{{vals}, {{{act_a[0]}, {act_a[1]}}}}};\n"
        f"  asc_nn_inverted_residual_params p = {{&pe, {{me{i}, se{i}}}, we{i}, be{i}, {ce}, &pd, {{md{i}, sd{i}}},"
        f" {{1, 3, 3, {ce}}}, wd{i}, bd{i}, &pp, {{mp{i}, sp{i}}}, wp{i}, bp{i}, &pa, {first}}};\n"
        f"  asc_nn_inverted_residual_tables t = {{ve{i}, vp{i}, {f're{i}' if rqe is not None else '0'},"
        f" {f'rp{i}' if rqp is not None else '0'}, 0}};\n"
        f"  asc_nn_dims in_d = {{1, {h}, {w}, {c}}};\n  (void)t; (void)xin{i};\n"
        f"  int8_t *y = {'xin' if inplace else 'out'}{i if inplace else ''};\n"
        f"  asc_nn_status st = {'asc_inverted_residual_s8_packed(&ctx, &p, &t' if tables else 'asc_inverted_residual_s8(&ctx, &p'},"
        f" &in_d, {src}, &in_d, y);\n"
        f"  for (int j = 0; j < {n}; j++) out[j] = y[j];\n"
        f"  emit(st, {n}); }}\n")
    return decls, call, ys


def _cases(dsp):
    """Declarations, calls and expected outputs (of the DSP builds, else of the portable build)."""
    rng = np.random.default_rng(SEED)
    P = HostKernels("portable")
    decls, calls, expected = [], [], []
    for i in range(N_CASES):
        d, c, ys = _case(rng, i, P)
        decls += d
        calls.append(c)
        expected.append(ys[1] if dsp else ys[0])
    return decls, calls, expected


_HOST_PRELUDE = r"""
#include <stdint.h>
#include <stdio.h>
#include "asc_nn.h"
static int8_t out[65536];
static void emit(int32_t status, int32_t n) { fwrite(&status, 4, 1, stdout); fwrite(out, 1, (size_t)n, stdout); }
"""


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
@pytest.mark.parametrize("variant", ["dsp", "portable"])
def test_fused_add_host(tmp_path, variant):
    decls, calls, expected = _cases(variant == "dsp")
    src, exe = tmp_path / "fa.c", tmp_path / "fa"
    src.write_text(_HOST_PRELUDE + "".join(decls) + "int main(void) {\n" + "".join(calls) + "return 0; }\n")
    flags = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror"] + (["-DASC_NN_EMULATE_DSP"] if variant == "dsp" else [])
    r = subprocess.run(["gcc", *flags, f"-I{NN_DIR}", str(src), *map(str, kernel_sources()), "-o", str(exe)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    blob = subprocess.run([str(exe)], capture_output=True, timeout=120, check=True).stdout
    pos = 0
    for i, exp in enumerate(expected):
        st = int(np.frombuffer(blob[pos:pos + 4], dtype="<i4")[0])
        got = np.frombuffer(blob[pos + 4:pos + 4 + exp.size], dtype=np.int8)
        pos += 4 + exp.size
        assert st == 0, i
        assert np.array_equal(got, exp.ravel()), f"case {i}: {(got != exp.ravel()).sum()} bytes differ"
    assert pos == len(blob)


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-arm") is None,
                    reason="needs arm-none-eabi-gcc and qemu-arm")
def test_fused_add_cortex_m4_under_qemu(tmp_path):
    decls, calls, expected = _cases(True)
    calls[0] = "(void)scratch; /* the prelude's (each case has its own) */\n" + calls[0]
    dis = kernel_models.run_m4_cases(tmp_path, decls, calls, expected)
    assert "<asc_pw_2x2_rq_adda>:" in dis and "<asc_pw_2x2_rq_addb>:" in dis
