"""Emit ``model.h`` / ``model.c``: the int8 model as constant arrays + a sequence of firmware/nn calls.

Generated API (see the emitted header)::

    int asc_model_invoke(const int8_t *input, int8_t *output, uint8_t *arena);
    int asc_model_invoke_debug(const int8_t *input, int8_t *output, uint8_t *arena,
                               asc_model_layer_fn callback, void *user);

``input``: int8 NHWC ``(1, H, W, C)`` quantised with ``ASC_MODEL_INPUT_SCALE`` /
``ASC_MODEL_INPUT_ZERO_POINT``; ``output``: ``ASC_MODEL_OUTPUT_SIZE`` int8 logits
(``ASC_MODEL_OUTPUT_SCALE`` / ``..._ZERO_POINT``); ``arena``: ``ASC_MODEL_ARENA_SIZE`` bytes,
16-byte aligned, scratch (the input is read in place and never written). Returns 0, or
``-(layer + 1)`` when a kernel rejects its arguments. The debug variant calls
``callback(layer, data, bytes, user)`` after every layer with that layer's output (the host uses
it for the layer-by-layer comparison with tflite-micro).

Output is a pure function of the graph and plan (no timestamps, no dict-order dependence), so the
same ``.tflite`` always gives the same bytes. Files are written atomically.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from asc_edge.errors import ExportError
from asc_edge.report.io import write_text_atomic

from . import c_abi
from . import ops as registry
from .graph import scratch_id
from .patterns import PATTERNS

__all__ = ["emit_model", "render_model", "Emitter"]


def _arr(ctype: str, name: str, values: np.ndarray, per_line: int = 24) -> str:
    vals = [str(int(v)) for v in np.asarray(values).reshape(-1)]
    lines = [", ".join(vals[i:i + per_line]) for i in range(0, len(vals), per_line)]
    align = " __attribute__((aligned(4)))" if ctype == "int8_t" else ""
    body = ",\n    ".join(lines)
    return f"static const {ctype} {name}[{len(vals)}]{align} = {{\n    {body}\n}};\n"


def _float(x: float) -> str:
    return f"{float(np.float32(x)):.9g}f"


OPTIMIZE = ("speed", "size")


class Emitter:
    """What an operator's or pattern's ``emit`` works with: tensor pointers in the arena, constant
    arrays (collected for the top of ``model.c``), designated initialisers and scratch contexts.
    ``optimize``: ``"speed"`` (extra flash tables that make kernels faster: pre-widened filters,
    requantisation records, depthwise tables, :mod:`asc_edge.codegen.speed_tables`) or ``"size"``
    (every weight stored once, int8)."""

    def __init__(self, graph, plan, optimize: str = "speed"):
        if optimize not in OPTIMIZE:
            raise ExportError(f"unknown optimisation goal {optimize!r}", hint=f"use one of {', '.join(OPTIMIZE)}")
        self.graph, self.plan, self.T = graph, plan, graph.tensors
        self.optimize = optimize
        self.consts: list[str] = []

    def ptr(self, tid: int) -> str:
        """C expression of tensor ``tid``'s data (the caller's input buffer or an arena offset)."""
        if self.graph.root(tid) == self.graph.input:
            return "((int8_t *)input)"
        return f"((int8_t *)(arena + {self.plan.offsets[tid]}))"

    def where(self, tid: int) -> str:
        return "input" if self.graph.root(tid) == self.graph.input else f"arena+{self.plan.offsets[tid]}"

    @staticmethod
    def dims(d) -> str:
        """Designated ``asc_nn_dims`` initialiser of an (n, h, w, c) tuple."""
        return c_abi.initializer(c_abi.params("asc_nn_dims", **dict(zip("nhwc", (int(v) for v in d)))))

    @staticmethod
    def init(value) -> str:
        """Designated initialiser of a :func:`~asc_edge.codegen.c_abi.params` value."""
        return c_abi.initializer(value)

    def array(self, layer, suffix: str, ctype: str, values) -> str:
        """Add ``static const <ctype> L<index>_<suffix>[]`` to the constants; returns its name."""
        name = f"L{layer.index}_{suffix}"
        self.consts.append(_arr(ctype, name, values))
        return name

    def scratch(self, step) -> tuple[list, str]:
        """(declaration lines, context expression) for a layer's or fused step's planned scratch;
        ``(lines, "0")`` when it has none."""
        first = step.index if hasattr(step, "index") else step.first
        sb = self.plan.buffers.get(scratch_id(first))
        if sb is None:
            return [], "0"
        return [f"const asc_nn_context ctx = {{.buf = arena + {sb.offset}, .size = {sb.size}}};"], "&ctx"


def _step_code(lines: list, last: int, out_tid: int, em: Emitter) -> list:
    T = em.T
    return (["    {"] + [f"        {ln}" for ln in lines] +
            [f"        if (st != ASC_NN_OK) return -{last + 1};",
             f"        if (cb) cb({last}, {em.ptr(out_tid)}, {T[out_tid].size}, user);",
             f"        ASC_MODEL_LAYER_DONE({last});",
             "    }"])


def render_model(graph, plan, source_sha256: str | None = None, optimize: str = "speed") -> tuple[str, str]:
    """(model.h text, model.c text) for a :class:`~asc_edge.codegen.graph.Graph` and its
    :class:`~asc_edge.codegen.planner.Plan`; ``source_sha256`` (default: the graph's own
    ``.tflite`` hash) is recorded in both headers. ``optimize``: see :class:`Emitter`; a size build's
    model.h defines ``ASC_MODEL_OPTIMIZE_SIZE`` (the firmware build then compiles with ``-Os``).

    Raises:
        ExportError: an unknown ``optimize``."""
    source_sha256 = graph.source_sha256 if source_sha256 is None else source_sha256
    T = graph.tensors
    xin, xout = T[graph.input], T[graph.output]
    guard = "ASC_MODEL_H"
    h = [
        "/* model.h - generated by asc_edge.codegen.emit_c; do not edit. */",
        f"/* source .tflite sha256: {source_sha256} */",
        f"#ifndef {guard}", f"#define {guard}", "", "#include <stdint.h>", "",
        "#ifdef __cplusplus", 'extern "C" {', "#endif", "",
        *(["#define ASC_MODEL_OPTIMIZE_SIZE 1  /* export --optimize size: weights stored once; build -Os */"]
          if optimize == "size" else []),
        f"#define ASC_MODEL_ARENA_SIZE {plan.arena}",
        f"#define ASC_MODEL_NUM_LAYERS {len(graph.layers)}",
        f"#define ASC_MODEL_NUM_STEPS {len(plan.steps)}",
        "/* Device layout: the input tensor and the frontend's work area inside the arena (-1: not planned). */",
        f"#define ASC_MODEL_INPUT_OFFSET {-1 if plan.input_offset is None else plan.input_offset}",
        f"#define ASC_MODEL_FRONTEND_WORK_OFFSET {-1 if plan.pre_scratch_offset is None else plan.pre_scratch_offset}",
        f"#define ASC_MODEL_FRONTEND_WORK_SIZE {plan.pre_scratch}",
        f"#define ASC_MODEL_INPUT_SCALE {_float(xin.scale)}",
        f"#define ASC_MODEL_INPUT_ZERO_POINT {xin.zero_point}",
        f"#define ASC_MODEL_OUTPUT_SCALE {_float(xout.scale)}",
        f"#define ASC_MODEL_OUTPUT_ZERO_POINT {xout.zero_point}",
    ]
    for nm, t in (("INPUT", xin), ("OUTPUT", xout)):
        d = t.dims
        h += [f"#define ASC_MODEL_{nm}_N {d[0]}", f"#define ASC_MODEL_{nm}_H {d[1]}",
              f"#define ASC_MODEL_{nm}_W {d[2]}", f"#define ASC_MODEL_{nm}_C {d[3]}",
              f"#define ASC_MODEL_{nm}_SIZE {t.size}"]
    h += ["",
          "/* Debug hook: called after each layer with its output (bytes = its size). */",
          "typedef void (*asc_model_layer_fn)(int32_t layer, const int8_t *data, int32_t bytes, void *user);",
          "",
          "/* input: int8 NHWC, ASC_MODEL_INPUT_SIZE bytes; output: ASC_MODEL_OUTPUT_SIZE int8 logits;",
          " * arena: ASC_MODEL_ARENA_SIZE bytes, 16-byte aligned. Returns 0 or -(layer+1) on a kernel error. */",
          "int asc_model_invoke(const int8_t *input, int8_t *output, uint8_t *arena);",
          "int asc_model_invoke_debug(const int8_t *input, int8_t *output, uint8_t *arena,",
          "                           asc_model_layer_fn callback, void *user);",
          "", "#ifdef __cplusplus", "}", "#endif", "", f"#endif /* {guard} */", ""]

    em = Emitter(graph, plan, optimize)
    body = []
    for st in plan.steps:
        if isinstance(st, int):
            L = graph.layers[st]
            ops = ",".join(map(str, L.op_indices))
            body.append(f"    /* layer {L.index}: {L.op} (tflite op {ops}) -> {L.kind}, out {T[L.output].shape} @ "
                        f"{em.where(L.output)} */")
            body += _step_code(registry.op_for(L.kind).emit(L, em), L.index, L.output, em)
        else:
            pat = PATTERNS[st.pattern]
            sb = plan.buffers.get(scratch_id(st.first))
            names = "+".join(graph.layers[i].kind for i in st.layers)
            body.append(f"    /* layers {st.first}..{st.last}: fused {pat.name} ({names}), out {T[st.output].shape} @ "
                        f"{em.where(st.output)}" + (" (in place over the input)" if st.in_place else "")
                        + (f"; scratch {sb.size} B @ arena+{sb.offset}" if sb is not None else "") + " */")
            body += _step_code(pat.emit(st, em), st.last, st.output, em)
    consts = em.consts

    c = ["/* model.c - generated by asc_edge.codegen.emit_c; do not edit. */",
         f"/* source .tflite sha256: {source_sha256} */",
         f"/* {len(graph.layers)} layers from {graph.source_ops} tflite operators in {len(plan.steps)} steps; arena "
         f"{plan.arena} bytes (naive {plan.naive}, live-tensor lower bound of this schedule {plan.lower_bound}) */",
         '#include <string.h>', '#include "asc_nn.h"', '#include "model.h"', "",
         "/* Per-layer hook for instruction counting on the device (e.g. -DASC_MODEL_LAYER_DONE=bench_layer_done):",
         " * called after each executed step with the index of the last layer it computed. */",
         "#ifndef ASC_MODEL_LAYER_DONE", "#define ASC_MODEL_LAYER_DONE(layer) ((void)0)", "#else",
         "void ASC_MODEL_LAYER_DONE(int32_t layer);", "#endif", "",
         *consts, "",
         "static int asc_model_run(const int8_t *input, int8_t *output, uint8_t *arena,",
         "                         asc_model_layer_fn cb, void *user)",
         "{",
         "    asc_nn_status st;",
         *body,
         f"    memcpy(output, {em.ptr(graph.output)}, {xout.size});",
         "    return 0;",
         "}", "",
         "int asc_model_invoke(const int8_t *input, int8_t *output, uint8_t *arena)",
         "{", "    return asc_model_run(input, output, arena, 0, 0);", "}", "",
         "int asc_model_invoke_debug(const int8_t *input, int8_t *output, uint8_t *arena,",
         "                           asc_model_layer_fn callback, void *user)",
         "{", "    return asc_model_run(input, output, arena, callback, user);", "}", ""]
    return "\n".join(h), "\n".join(c)


def emit_model(graph, plan, out_dir, source_sha256: str | None = None, optimize: str = "speed") -> dict:
    """Write ``out_dir/model.h`` and ``out_dir/model.c`` atomically (``optimize``: see
    :func:`render_model`); returns ``{"model.h": sha256, "model.c": sha256, "bytes": {...}}``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    htext, ctext = render_model(graph, plan, source_sha256, optimize)
    write_text_atomic(out_dir / "model.h", htext)
    write_text_atomic(out_dir / "model.c", ctext)
    return {"model.h": hashlib.sha256(htext.encode()).hexdigest(),
            "model.c": hashlib.sha256(ctext.encode()).hexdigest(),
            "bytes": {"model.h": len(htext.encode()), "model.c": len(ctext.encode())}}
