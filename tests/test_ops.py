"""Registry-driven operator tests: every case of every registry entry (:mod:`asc_edge.codegen.ops`)
goes through the real code generator and is compared with tflite-micro.

For each case (a single-operator int8 ``.tflite`` from tests/op_models.py, random shapes and
quantisation): build the graph (it must use the entry under test), plan, emit ``model.c``, build
it on the host with the portable and the DSP (emulated) kernels, and compare every output byte
with tflite-micro on 16 random int8 inputs (plus the all -128 / all 127 extremes). A second test
builds every case's ``model.c`` for the Cortex-M4 (real ``<arm_acle.h>``) into one qemu-arm
program and checks DSP build == host portable build. An operator added to the registry is tested
here without editing this file.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import zlib
import sys
from pathlib import Path

import numpy as np
import pytest

from asc_edge.codegen.emit_c import emit_model
from asc_edge.codegen.graph import build_graph
from asc_edge.codegen.host_model import HostModel, build_host_model
from asc_edge.codegen.kernels_host import REPO_ROOT
from asc_edge.codegen.planner import plan_arena

sys.path.insert(0, str(Path(__file__).parent))
import op_models  # noqa: E402  (numpy-only at import time)

CASES = op_models.case_list()
CASES_ROOT = REPO_ROOT / "build" / "op_cases"


def _key() -> str:
    h = hashlib.sha256(str(op_models.SEED).encode())
    for p in sorted((REPO_ROOT / "asc_edge" / "codegen" / "ops").glob("*.py")) + [Path(op_models.__file__)]:
        h.update(p.read_bytes())
    return h.hexdigest()[:12]


@pytest.fixture(scope="session")
def case_dir() -> Path:
    """The converted cases (generated once per registry version; a file lock serialises the
    pytest-xdist workers)."""
    from filelock import FileLock

    out = CASES_ROOT / _key()
    CASES_ROOT.mkdir(parents=True, exist_ok=True)
    with FileLock(str(CASES_ROOT / ".lock")):
        if not (out / "DONE").exists():
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
            r = subprocess.run([sys.executable, op_models.__file__, "--out", str(out)], capture_output=True, text=True,
                               env=env, timeout=900)
            if r.returncode != 0:
                raise RuntimeError(f"op_models.py failed:\n{r.stdout[-3000:]}\n{r.stderr[-6000:]}")
    return out


def _inputs(shape, seed: int) -> list:
    rng = np.random.default_rng(seed)
    xs = [rng.integers(-128, 128, size=shape).astype(np.int8) for _ in range(16)]
    return xs + [np.full(shape, -128, np.int8), np.full(shape, 127, np.int8)]


def _generate(path: Path, kind: str, out: Path):
    from asc_edge.codegen import ops

    g = build_graph(path)
    builtins = ops.op_for(kind).builtins  # an entry may parse into another entry's kind (SPLIT → slices)
    assert any(L.kind == kind or L.op in builtins for L in g.layers), \
        f"{path.name}: no {kind} layer in {[(L.kind, L.op) for L in g.layers]}"
    plan = plan_arena(g)
    emit_model(g, plan, out)
    return g, plan


@pytest.mark.parametrize("kind,case", [(k, c.name) for k, c in CASES], ids=[f"{k}-{c.name}" for k, c in CASES])
def test_op_equals_tflite_micro(case_dir, kind, case, tmp_path):
    from asc_edge.export.oracle import TflmOracle

    path = case_dir / kind / f"{case}.tflite"
    g, plan = _generate(path, kind, tmp_path / "c")
    oracle = TflmOracle(path)
    xs = _inputs(oracle.input_shape, zlib.crc32(case.encode()))
    refs = [oracle.invoke(x) for x in xs]
    for variant in ("portable", "dsp"):
        host = HostModel(build_host_model(tmp_path / "c", variant=variant, build_dir=tmp_path / variant), g, plan.arena)
        for i, (x, ref) in enumerate(zip(xs, refs)):
            got = host.invoke(x)
            assert np.array_equal(got, ref.reshape(-1)), (variant, i, int((got != ref.reshape(-1)).sum()))


def test_every_entry_has_cases_or_is_structural():
    """Each registry entry that emits a kernel call is exercised by at least one case."""
    from asc_edge.codegen import ops

    ops.load()
    tested = {k for k, _ in CASES}
    structural = {"reshape"}  # aliased: covered by the CP-Mobile export tests
    assert set(ops.KINDS) - tested <= structural, set(ops.KINDS) - tested - structural


def test_m4_dsp_build_under_qemu_equals_host_portable(case_dir, tmp_path):
    """Every case's generated model.c, cross-compiled with the Cortex-M4 DSP kernels (real
    <arm_acle.h>) into one qemu-arm program (each model's entry points renamed with -D), gives
    the host portable build's output bytes."""
    import kernel_models

    from asc_edge.codegen.kernels_host import CORTEX_M4_FLAGS, NN_DIR, cross_compile

    objs = cross_compile(tmp_path / "nn")
    decls, calls, expected, model_objs = [], [], [], []
    for i, (kind, case) in enumerate(CASES):
        d = tmp_path / f"m{i}"
        g, plan = _generate(case_dir / kind / f"{case.name}.tflite", kind, d)
        shape = g.tensors[g.input].dims
        x = _inputs(shape, i)[0]
        host = HostModel(build_host_model(d, build_dir=d / "host"), g, plan.arena)
        expected.append(host.invoke(x))
        obj = d / "model.o"
        r = subprocess.run(["arm-none-eabi-gcc", *CORTEX_M4_FLAGS, f"-I{NN_DIR}", f"-I{d}",
                            f"-Dasc_model_invoke=m{i}_invoke", f"-Dasc_model_invoke_debug=m{i}_invoke_debug",
                            "-c", str(d / "model.c"), "-o", str(obj)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        model_objs.append(obj)
        decls.append(f"int m{i}_invoke(const int8_t *input, int8_t *output, uint8_t *arena);\n"
                     f"static uint8_t a{i}[{plan.arena + 16}] __attribute__((aligned(16)));\n"
                     f"static const int8_t x{i}[{x.size}] = {{{','.join(str(int(v)) for v in x.ravel())}}};\n")
        calls.append(f"emit(m{i}_invoke(x{i}, out, a{i}), {expected[-1].size});\n")
    src, elf = tmp_path / "harness.c", tmp_path / "harness.elf"
    src.write_text(kernel_models.QEMU_USER_PRELUDE + "".join(decls) + "int main(void) {\n(void)scratch;\n" + "".join(calls)
                   + "return 0; }\n")
    r = subprocess.run(["arm-none-eabi-gcc", *CORTEX_M4_FLAGS, "-nostartfiles", "-static", f"-I{NN_DIR}", str(src),
                        *map(str, model_objs), *map(str, objs), "-o", str(elf), "-lc"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(["qemu-arm", "-cpu", "max", str(elf)], capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr
    blob, pos = r.stdout, 0
    for (kind, case), exp in zip(CASES, expected):
        status = int(np.frombuffer(blob[pos:pos + 4], dtype="<i4")[0])
        got = np.frombuffer(blob[pos + 4:pos + 4 + exp.size], dtype=np.int8)
        pos += 4 + exp.size
        assert status == 0 and np.array_equal(got, exp), f"{kind}/{case.name}: status {status}"
    assert pos == len(blob)


def test_manifest_lists_every_case(case_dir):
    m = json.loads((case_dir / "manifest.json").read_text())
    assert [(e["kind"], e["case"]) for e in m] == [(k, c.name) for k, c in CASES]
