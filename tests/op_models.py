"""Single-operator int8 ``.tflite`` models from the operator registry's cases, for tests/test_ops.py.

Every registry entry (:mod:`asc_edge.codegen.ops`) lists random :class:`~asc_edge.codegen.ops.OpCase`
objects: a one-input TensorFlow function and a calibration range. This script (run in the project
venv, which has TensorFlow and tflite-micro; the test process never imports TensorFlow) converts
each to a full-integer model with ``tf.lite.TFLiteConverter`` (int8 input/output, per-channel int8
weights, int32 bias, representative data uniform in the case's range, so scales vary over orders
of magnitude), checks that the model contains the builtins the case expects, and writes
``<out>/<kind>/<case>.tflite`` plus ``manifest.json``::

    .venv/bin/python tests/op_models.py --out build/op_cases/<key> --seed 20261206

:func:`case_list` (numpy only) is also what the test collects its parameters from.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import zlib
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SEED = 20261206


def case_list(seed: int = SEED) -> list:
    """(kind, OpCase) for every registry entry, each entry's cases from its own seeded generator."""
    from asc_edge.codegen import ops

    ops.load()
    out = []
    for kind in sorted(ops.KINDS):
        rng = np.random.default_rng([seed, zlib.crc32(kind.encode())])
        out += [(kind, c) for c in ops.KINDS[kind].cases(rng)]
    return out


def convert(tf, case, seed: int) -> bytes:
    fn = tf.function(lambda x: case.build(tf, x), input_signature=[tf.TensorSpec(case.shape, tf.float32)])
    concrete = fn.get_concrete_function()
    rng = np.random.default_rng([seed, zlib.crc32(case.name.encode())])
    lo, hi = case.range

    def rep():
        for _ in range(24):
            yield [rng.uniform(lo, hi, size=case.shape).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_concrete_functions([concrete], fn)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    # int8 kernels where TFLite has them; float builtins (wrapped in DEQUANTIZE / QUANTIZE) where it
    # has none, e.g. SIN: what onnx2tf produces for Snake (the LUT entry's islands)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert()


def generate(out: Path, seed: int) -> list:
    import tensorflow as tf

    from asc_edge.codegen.tflite_reader import read_tflite

    manifest = []
    for kind, case in case_list(seed):
        path = out / kind / f"{case.name}.tflite"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = convert(tf, case, seed)
        ops = sorted({o.op for o in read_tflite(data).ops})
        missing = set(case.expect_ops) - set(ops)
        if missing:
            raise SystemExit(f"case {kind}/{case.name}: converted model has {ops}, not {sorted(missing)}")
        path.write_bytes(data)
        manifest.append({"kind": kind, "case": case.name, "file": str(path.relative_to(out)), "ops": ops})
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=SEED)
    a = ap.parse_args(argv)
    m = generate(a.out, a.seed)
    (a.out / "DONE").write_text("ok\n")
    print(f"wrote {len(m)} cases to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
