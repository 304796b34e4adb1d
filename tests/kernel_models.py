"""Single-op int8 TFLite models for the kernel tests, and their tflite-micro reference outputs.

Runs ONLY in the TensorFlow environment (the project venv after scripts/setup.sh: tensorflow 2.21 +
tflite-micro); the project's own venv has neither.  ``tests/test_kernels.py`` calls this file as a
script::

    .venv/bin/python tests/kernel_models.py --out build/kernel_cases/<key> --seed 1234

For every random case it builds a tiny TF graph (one CONV_2D / DEPTHWISE_CONV_2D / ADD / ... op),
converts it with ``tf.lite.TFLiteConverter`` to a full-integer model (int8 input/output, per-channel
int8 weights, int32 bias; representative dataset drawn from a random range so that scales vary over
orders of magnitude), parses the flatbuffer with TensorFlow's bundled schema
(``tensorflow.lite.python.schema_py_generated``), runs a few random int8 inputs through the
**tflite-micro** interpreter, and writes one JSON file per case: the model's operators with their
options, every tensor's shape / quantisation / constant data, and the (input, output) byte pairs.
The test side needs nothing but numpy to read them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

RUNS_PER_CASE = 3

# ---------------------------------------------------------------------------------------------
# case specifications (pure python, seeded)
# ---------------------------------------------------------------------------------------------


def _rng_range(rng: np.random.Generator) -> tuple[float, float]:
    """A random calibration range spanning ~1e-3 .. ~1e2, sometimes one-sided."""
    mag = float(10 ** rng.uniform(-3, 2))
    kind = rng.integers(0, 4)
    if kind == 0:
        return 0.0, mag  # post-ReLU like
    if kind == 1:
        return -mag, 0.2 * mag
    return -mag * rng.uniform(0.3, 1.0), mag


def make_specs(seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    specs: list[dict] = []
    acts = ["NONE", "RELU", "RELU6"]

    def odd(lo, hi):
        v = int(rng.integers(lo, hi))
        return v | 1

    # CONV_2D: general KxK (stem-like 3x3 s2 with 1 input channel, strides (1,2)/(2,1), SAME/VALID)
    conv_cfgs = [
        dict(k=(3, 3), stride=(2, 2), cin=1, padding="SAME"),
        dict(k=(3, 3), stride=(2, 2), cin=3, padding="VALID"),
        dict(k=(3, 3), stride=(1, 1), cin=odd(3, 12), padding="SAME"),
        dict(k=(3, 3), stride=(1, 2), cin=odd(3, 12), padding="SAME"),
        dict(k=(3, 3), stride=(2, 1), cin=odd(3, 12), padding="SAME"),
        dict(k=(5, 3), stride=(2, 2), cin=odd(3, 9), padding="SAME"),
        dict(k=(3, 3), stride=(2, 2), cin=8, padding="EXPLICIT"),  # PAD + CONV_2D (pad folding)
        dict(k=(3, 3), stride=(1, 1), cin=odd(5, 16), padding="EXPLICIT"),
        dict(k=(1, 1), stride=(1, 1), cin=odd(9, 40), padding="VALID"),
        dict(k=(1, 1), stride=(1, 1), cin=odd(9, 40), padding="SAME"),
        dict(k=(1, 1), stride=(1, 1), cin=32, padding="VALID"),
        dict(k=(1, 1), stride=(2, 2), cin=odd(9, 24), padding="VALID"),
        dict(k=(3, 3), stride=(1, 1), cin=12, groups=3, padding="SAME"),
        dict(k=(3, 3), stride=(1, 2), cin=10, groups=10, padding="SAME"),  # grouped == depthwise
    ]
    # effective scale > 1 (positive shifts): zero-sum filters calibrated on channel-constant inputs
    conv_cfgs.append(dict(k=(1, 1), stride=(1, 1), cin=odd(5, 16), padding="VALID", cancel=True))
    conv_cfgs.append(dict(k=(3, 3), stride=(2, 2), cin=odd(5, 16), padding="SAME", cancel=True))
    for cfg in conv_cfgs:
        groups = cfg.get("groups", 1)
        cout = groups * int(rng.integers(1, 4)) if groups > 1 else odd(3, 24)
        specs.append(dict(op="conv", h=int(rng.integers(5, 14)), w=int(rng.integers(5, 14)),
                          cout=cout, act=acts[int(rng.integers(0, 3))], in_range=_rng_range(rng),
                          w_mag=float(10 ** rng.uniform(-2.5, 0.5)), bias=bool(rng.integers(0, 4) > 0),
                          explicit_pad=[int(v) for v in rng.integers(0, 3, size=4)],
                          zero_channel=bool(rng.integers(0, 3) == 0), **cfg))
    # DEPTHWISE_CONV_2D: channel multiplier 1 and 2, strides 1, 2, (1,2), (2,1)
    for j, stride in enumerate([(1, 1), (2, 2), (1, 2), (2, 1), (1, 1), (2, 2), (1, 2), (2, 1), (1, 1), (2, 2)]):
        mult = 2 if j % 3 == 2 else 1
        c = odd(3, 21) if rng.integers(0, 2) else int(rng.integers(2, 12)) * 4
        specs.append(dict(op="dw", h=int(rng.integers(4, 14)), w=int(rng.integers(4, 14)), c=c, mult=mult,
                          k=(3, 3), stride=stride, padding="VALID" if j % 4 == 3 else "SAME",
                          act=acts[int(rng.integers(0, 3))], in_range=_rng_range(rng),
                          w_mag=float(10 ** rng.uniform(-2.5, 0.5)), bias=True,
                          zero_channel=bool(rng.integers(0, 3) == 0)))
    specs.append(dict(op="dw", h=9, w=7, c=16, mult=1, k=(5, 5), stride=(2, 2), padding="SAME", act="RELU",
                      in_range=_rng_range(rng), w_mag=0.3, bias=True, zero_channel=False))
    # ADD (two activations, different scales; one broadcast)
    for i in range(6):
        shape = [1, int(rng.integers(2, 9)), int(rng.integers(2, 9)), odd(3, 33)]
        shape2 = list(shape) if i < 5 else [1, 1, 1, shape[3]]
        specs.append(dict(op="add", shape=shape, shape2=shape2, act=["NONE", "RELU"][i % 2],
                          in_range=_rng_range(rng), in_range2=_rng_range(rng)))
    # MUL (activation x activation, and activation x constant)
    for i in range(4):
        shape = [1, int(rng.integers(2, 9)), int(rng.integers(2, 9)), odd(3, 17)]
        specs.append(dict(op="mul", shape=shape, const=bool(i >= 2), act="NONE" if i != 1 else "RELU",
                          in_range=_rng_range(rng), in_range2=_rng_range(rng),
                          const_mag=float(10 ** rng.uniform(-1, 1))))
    # AVERAGE_POOL_2D
    for filt, stride, pad in [((2, 2), (2, 2), "VALID"), ((3, 3), (1, 1), "SAME"), ((3, 3), (2, 2), "SAME"),
                              ((2, 1), (2, 1), "VALID"), ((3, 2), (2, 1), "SAME")]:
        specs.append(dict(op="avgpool", shape=[1, int(rng.integers(4, 12)), int(rng.integers(4, 12)),
                                               odd(3, 25)], filter=filt, stride=stride, padding=pad,
                          in_range=_rng_range(rng)))
    # MEAN over H, W (the global pooling head)
    for i in range(5):
        shape = [1, int(rng.integers(1, 20)), int(rng.integers(1, 20)), odd(3, 33)]
        specs.append(dict(op="mean", shape=shape, keepdims=bool(i % 2), in_range=_rng_range(rng)))
    # FULLY_CONNECTED
    for i in range(3):
        specs.append(dict(op="fc", depth=odd(5, 64), units=odd(3, 17), act=["NONE", "RELU", "NONE"][i],
                          in_range=_rng_range(rng), w_mag=float(10 ** rng.uniform(-2, 0.5))))
    # data movement
    specs.append(dict(op="strided_slice", shape=[1, 9, 8, 7], begin=[0, 1, 0, 2], end=[1, 9, 8, 7],
                      strides=[1, 2, 3, 1], in_range=_rng_range(rng)))
    specs.append(dict(op="strided_slice", shape=[1, 6, 11, 5], begin=[0, 0, 1, 0], end=[1, 5, 11, 5],
                      strides=[1, 1, 2, 2], in_range=_rng_range(rng)))
    specs.append(dict(op="concat", shapes=[[1, 5, 4, 3], [1, 5, 4, 6]], axis=3, in_range=_rng_range(rng)))
    specs.append(dict(op="concat", shapes=[[1, 3, 4, 5], [1, 2, 4, 5], [1, 1, 4, 5]], axis=1,
                      in_range=_rng_range(rng)))
    specs.append(dict(op="pad", shape=[1, 5, 6, 3], pads=[[0, 0], [1, 0], [0, 1], [0, 0]],
                      in_range=_rng_range(rng)))
    specs.append(dict(op="pad", shape=[1, 4, 4, 5], pads=[[0, 0], [2, 1], [1, 2], [0, 0]],
                      in_range=_rng_range(rng)))
    for i, s in enumerate(specs):
        s["id"] = f"{i:03d}_{s['op']}"
        s["seed"] = int(rng.integers(0, 2**31 - 1))
    return specs


# ---------------------------------------------------------------------------------------------
# TF graph construction + conversion (TF env only)
# ---------------------------------------------------------------------------------------------


def _activation(tf, y, act):
    if act == "RELU":
        return tf.nn.relu(y)
    if act == "RELU6":
        return tf.nn.relu6(y)
    return y


def _weights(rng, shape, mag, out_axis, zero_channel):
    w = rng.standard_normal(shape).astype(np.float32) * mag
    # per-channel magnitude spread over two decades
    scale_shape = [1] * len(shape)
    scale_shape[out_axis] = shape[out_axis]
    w *= (10 ** rng.uniform(-1.5, 0.5, size=scale_shape)).astype(np.float32)
    if zero_channel and shape[out_axis] > 1:
        idx = [slice(None)] * len(shape)
        idx[out_axis] = int(rng.integers(0, shape[out_axis]))
        w[tuple(idx)] = 0.0
    return w


def build_graph(tf, spec: dict):
    """Returns (tf.function, list of input shapes, list of calibration ranges)."""
    rng = np.random.default_rng(spec["seed"])
    op = spec["op"]
    if op == "conv":
        cin, cout, groups = spec["cin"], spec["cout"], spec.get("groups", 1)
        kh, kw = spec["k"]
        wn = _weights(rng, [kh, kw, cin // groups, cout], spec["w_mag"], 3, spec["zero_channel"])
        bn = (rng.standard_normal(cout) * spec["w_mag"]).astype(np.float32)
        if spec.get("cancel"):
            wn -= wn.mean(axis=2, keepdims=True)
            bn *= 1e-3
        w, b = tf.constant(wn), tf.constant(bn)
        shape = [1, spec["h"], spec["w"], cin]
        if spec["padding"] == "EXPLICIT":
            t, bo, l, r = spec["explicit_pad"]
            padding = [[0, 0], [t, bo], [l, r], [0, 0]]
        else:
            padding = spec["padding"]

        def f(x):
            y = tf.nn.conv2d(x, w, strides=[1, *spec["stride"], 1], padding=padding)
            if spec["bias"]:
                y = tf.nn.bias_add(y, b)
            return _activation(tf, y, spec["act"])

        return f, [shape], [spec["in_range"]]
    if op == "dw":
        c, m = spec["c"], spec["mult"]
        kh, kw = spec["k"]
        w = tf.constant(_weights(rng, [kh, kw, c, m], spec["w_mag"], 2, spec["zero_channel"]))
        b = tf.constant((rng.standard_normal(c * m) * spec["w_mag"]).astype(np.float32))
        shape = [1, spec["h"], spec["w"], c]

        def f(x):
            y = tf.nn.depthwise_conv2d(x, w, strides=[1, *spec["stride"], 1], padding=spec["padding"])
            y = tf.nn.bias_add(y, b)
            return _activation(tf, y, spec["act"])

        return f, [shape], [spec["in_range"]]
    if op == "add":
        def f(x1, x2):
            return _activation(tf, x1 + x2, spec["act"])

        return f, [spec["shape"], spec["shape2"]], [spec["in_range"], spec["in_range2"]]
    if op == "mul":
        if spec["const"]:
            k = tf.constant((rng.uniform(-1, 1, size=[spec["shape"][3]]) * spec["const_mag"]).astype(np.float32))

            def f(x):
                return _activation(tf, x * k, spec["act"])

            return f, [spec["shape"]], [spec["in_range"]]

        def f(x1, x2):
            return _activation(tf, x1 * x2, spec["act"])

        return f, [spec["shape"], spec["shape"]], [spec["in_range"], spec["in_range2"]]
    if op == "avgpool":
        def f(x):
            return tf.nn.avg_pool2d(x, ksize=spec["filter"], strides=spec["stride"], padding=spec["padding"])

        return f, [spec["shape"]], [spec["in_range"]]
    if op == "mean":
        def f(x):
            return tf.reduce_mean(x, axis=[1, 2], keepdims=spec["keepdims"])

        return f, [spec["shape"]], [spec["in_range"]]
    if op == "fc":
        w = tf.constant(_weights(rng, [spec["depth"], spec["units"]], spec["w_mag"], 1, False))
        b = tf.constant((rng.standard_normal(spec["units"]) * spec["w_mag"]).astype(np.float32))

        def f(x):
            return _activation(tf, tf.matmul(x, w) + b, spec["act"])

        return f, [[1, spec["depth"]]], [spec["in_range"]]
    if op == "strided_slice":
        def f(x):
            return tf.strided_slice(x, spec["begin"], spec["end"], spec["strides"])

        return f, [spec["shape"]], [spec["in_range"]]
    if op == "concat":
        n = len(spec["shapes"])

        def f(*xs):
            return tf.concat(list(xs), axis=spec["axis"])

        return f, spec["shapes"], [spec["in_range"]] * n
    if op == "pad":
        def f(x):
            return tf.pad(x, spec["pads"])

        return f, [spec["shape"]], [spec["in_range"]]
    raise ValueError(op)


def convert(tf, spec: dict) -> bytes:
    fn, shapes, ranges = build_graph(tf, spec)
    sig = [tf.TensorSpec(s, tf.float32) for s in shapes]
    concrete = tf.function(fn, input_signature=sig).get_concrete_function()
    rng = np.random.default_rng(spec["seed"] + 1)

    def sample(s, lo, hi):
        if spec.get("cancel"):  # identical value in every channel
            return np.broadcast_to(rng.uniform(lo, hi, size=s[:-1] + [1]), s).astype(np.float32)
        return rng.uniform(lo, hi, size=s).astype(np.float32)

    def rep():
        for _ in range(24):
            yield [sample(s, lo, hi) for s, (lo, hi) in zip(shapes, ranges)]

    conv = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = rep
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert()


# ---------------------------------------------------------------------------------------------
# flatbuffer parsing (TensorFlow's bundled schema)
# ---------------------------------------------------------------------------------------------


def _enum_names(cls) -> dict[int, str]:
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


def parse_model(buf: bytes) -> dict:
    from tensorflow.lite.python import schema_py_generated as sch

    model = sch.ModelT.InitFromObj(sch.Model.GetRootAsModel(buf, 0))
    op_names = _enum_names(sch.BuiltinOperator)
    pad_names = _enum_names(sch.Padding)
    act_names = _enum_names(sch.ActivationFunctionType)
    type_names = _enum_names(sch.TensorType)
    sg = model.subgraphs[0]
    tensors = []
    for t in sg.tensors:
        q = t.quantization
        buf_data = model.buffers[t.buffer].data if t.buffer < len(model.buffers) else None
        dtype = type_names[t.type]
        data = None
        if buf_data is not None and len(buf_data) > 0:
            npt = {"INT8": np.int8, "INT32": np.int32, "FLOAT32": np.float32, "INT64": np.int64}[dtype]
            data = np.frombuffer(bytes(bytearray(buf_data)), dtype=npt).reshape(
                [int(v) for v in t.shape]).tolist()
        tensors.append(dict(
            name=t.name.decode() if isinstance(t.name, bytes) else t.name,
            shape=[int(v) for v in t.shape], dtype=dtype,
            scale=[float(v) for v in (q.scale if q is not None and q.scale is not None else [])],
            zero_point=[int(v) for v in (q.zeroPoint if q is not None and q.zeroPoint is not None else [])],
            quantized_dimension=int(q.quantizedDimension) if q is not None else 0,
            data=data))
    ops = []
    for o in sg.operators:
        code = model.operatorCodes[o.opcodeIndex]
        bcode = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        opts = {}
        if o.builtinOptions is not None:
            for k, v in vars(o.builtinOptions).items():
                if k == "padding":
                    v = pad_names[v]
                elif k == "fusedActivationFunction":
                    v = act_names[v]
                elif isinstance(v, np.ndarray):
                    v = v.tolist()
                opts[k] = v
        ops.append(dict(op=op_names[bcode], options=opts, inputs=[int(i) for i in o.inputs],
                        outputs=[int(i) for i in o.outputs]))
    return dict(tensors=tensors, operators=ops, inputs=[int(i) for i in sg.inputs],
                outputs=[int(i) for i in sg.outputs])


# ---------------------------------------------------------------------------------------------
# tflite-micro reference
# ---------------------------------------------------------------------------------------------


def tflm_interpreter(path: Path, arena_size: int = 1 << 20):
    """tflite-micro's Python interpreter (reference kernels) with an explicit arena size."""
    from tflite_micro.python.tflite_micro import runtime

    return runtime.Interpreter.from_file(str(path), arena_size=arena_size)


def run_tflm(interp, inputs: list[np.ndarray]) -> list[np.ndarray]:
    for i, x in enumerate(inputs):
        interp.set_input(x, i)
    interp.invoke()
    return [np.asarray(interp.get_output(0)).copy()]  # single-output models


def generate(out_dir: Path, seed: int, only: str | None = None) -> list[str]:
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    t0 = time.time()
    for spec in make_specs(seed):
        if only and only not in spec["id"]:
            continue
        buf = convert(tf, spec)
        model_path = out_dir / f"{spec['id']}.tflite"
        model_path.write_bytes(buf)
        info = parse_model(buf)
        rng = np.random.default_rng(spec["seed"] + 2)
        interp = tflm_interpreter(model_path)
        runs = []
        for r in range(RUNS_PER_CASE):
            xs = []
            for ti in info["inputs"]:
                t = info["tensors"][ti]
                if r == 0:  # extremes first: saturation / full range corners
                    x = rng.choice(np.array([-128, 127, -127, 0], dtype=np.int8), size=t["shape"])
                elif r == 1 and spec.get("cancel"):  # channel-constant: small, unsaturated outputs
                    x = np.broadcast_to(rng.integers(-128, 128, size=t["shape"][:-1] + [1], dtype=np.int16),
                                        t["shape"]).astype(np.int8)
                else:
                    x = rng.integers(-128, 128, size=t["shape"], dtype=np.int16).astype(np.int8)
                xs.append(x)
            ys = run_tflm(interp, xs)
            runs.append(dict(inputs=[x.tolist() for x in xs], outputs=[y.astype(np.int8).tolist() for y in ys]))
        rec = dict(spec=spec, model=info, runs=runs)
        (out_dir / f"{spec['id']}.json").write_text(json.dumps(rec))
        written.append(spec["id"])
    (out_dir / "DONE").write_text(json.dumps(dict(cases=written, seconds=round(time.time() - t0, 1))))
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--only", default=None, help="substring of case ids to generate")
    a = ap.parse_args(argv)
    cases = generate(a.out, a.seed, a.only)
    print(f"wrote {len(cases)} cases to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


# C prelude of the Cortex-M4 kernel test programs run under qemu-arm (Linux user mode): raw
# write/exit system calls, scratch and output buffers, emit(status, n) writes both to stdout.
QEMU_USER_PRELUDE = r"""
#include <stdint.h>
#include "asc_nn.h"
static long sys_write(int fd, const void *buf, unsigned long n) {
    register long r0 __asm__("r0") = fd; register long r1 __asm__("r1") = (long)buf;
    register long r2 __asm__("r2") = (long)n; register long r7 __asm__("r7") = 4;
    __asm__ volatile("svc 0" : "+r"(r0) : "r"(r1), "r"(r2), "r"(r7) : "memory"); return r0; }
static void sys_exit(int code) {
    register long r0 __asm__("r0") = code; register long r7 __asm__("r7") = 1;
    __asm__ volatile("svc 0" : : "r"(r0), "r"(r7) : "memory"); for (;;) {} }
static int8_t scratch[4096];
static int8_t out[65536];
static void emit(int32_t status, int32_t n) { sys_write(1, &status, 4); sys_write(1, out, (unsigned long)n); }
int main(void);
void _start(void) { sys_exit(main()); }
"""


def run_m4_cases(tmp_path: Path, decls: list[str], calls: list[str], expected: list) -> str:
    """Build a qemu-arm program of :data:`QEMU_USER_PRELUDE` + ``decls`` + ``main`` calling ``calls``
    (each ends with ``emit(status, n)``) with the Cortex-M4 DSP build of firmware/nn, run it, and
    assert that every case returns status 0 and exactly its ``expected`` int8 array. Returns the
    program's disassembly (``arm-none-eabi-objdump -d``) for checks of the instructions used."""
    import subprocess

    import numpy as np

    from asc_edge.codegen.kernels_host import CORTEX_M4_FLAGS, NN_DIR, kernel_sources

    src, elf = tmp_path / "harness.c", tmp_path / "harness.elf"
    src.write_text(QEMU_USER_PRELUDE + "".join(decls) + "int main(void) {\n" + "".join(calls) + "return 0; }\n")
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
    return subprocess.run(["arm-none-eabi-objdump", "-d", str(elf)], capture_output=True, text=True).stdout
