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

from asc_edge.report.io import write_text_atomic

from .planner import scratch_id

__all__ = ["emit_model", "render_model"]


def _arr(ctype: str, name: str, values: np.ndarray, per_line: int = 24) -> str:
    vals = [str(int(v)) for v in np.asarray(values).reshape(-1)]
    lines = [", ".join(vals[i:i + per_line]) for i in range(0, len(vals), per_line)]
    align = " __attribute__((aligned(4)))" if ctype == "int8_t" else ""
    body = ",\n    ".join(lines)
    return f"static const {ctype} {name}[{len(vals)}]{align} = {{\n    {body}\n}};\n"


def _dims(d) -> str:
    return "{%d, %d, %d, %d}" % tuple(int(v) for v in d)


def _tile(t) -> str:
    return "{%d, %d}" % (int(t[0]), int(t[1]))


def _float(x: float) -> str:
    return f"{float(np.float32(x)):.9g}f"


PW16_MAX_K = 128  # ASC_PW_MAX_K of firmware/nn/asc_conv_s8.c: larger K never reads the widened filter


def widen_1x1_filter(filt: np.ndarray) -> np.ndarray:
    """A 1x1 filter [out, 1, 1, in] (int8) in the pre-widened int32 layout of the DSP kernels
    (``asc_convolve_1x1_s8_widen_filter`` in firmware/nn/asc_nn.h): per output-channel pair
    (o, o+1) (an odd last channel is left out), per group g of 4 input channels (zero-padded),
    the words L(o, 4g, 4g+2), L(o, 4g+1, 4g+3), L(o+1, 4g, 4g+2), L(o+1, 4g+1, 4g+3), where L(o, i, j)
    holds 2*w[o][i] in bits 0-15 and 2*w[o][j] in bits 16-31 (int16 lanes; the factor 2 makes the
    kernels' accumulator 2*acc for their requantisation)."""
    f = np.asarray(filt, dtype=np.int64)
    o, k = f.shape[0], int(np.prod(f.shape[1:]))
    g = (k + 3) // 4
    w = np.zeros((o // 2 * 2, 4 * g), dtype=np.int64)
    w[:, :k] = 2 * f.reshape(o, k)[: o // 2 * 2]
    w = w.reshape(o // 2, 2, g, 4)  # pair, channel of the pair, group, lane
    lo_hi = [(0, 2), (1, 3)]
    words = np.stack([(w[..., a] & 0xFFFF) | ((w[..., b] & 0xFFFF) << 16) for a, b in lo_hi], axis=-1)
    words = words.transpose(0, 2, 1, 3).reshape(-1)  # pair, group, channel, word
    return words.astype(np.uint32).view(np.int32)


def _fused_block(graph, plan, b, ptr, conv_consts, conv_params, dw_params, add_params, consts) -> list[str]:
    """C for one fused inverted-residual block (``asc_inverted_residual_s8_w16``: with the 1x1 filters
    also pre-widened for the DSP kernels)."""
    T = graph.tensors
    E, D, P = (graph.layers[i] for i in b.layers[:3])
    A = graph.layers[b.layers[3]] if len(b.layers) == 4 else None
    biases = [conv_consts(L) for L in (E, D, P)]
    sb = plan.buffers[scratch_id(b.first)]
    y = ptr(b.output)
    names = "+".join(f"{graph.layers[i].kind}" for i in b.layers)
    where = f"arena+{plan.offsets[b.output]}" + (" (in place over the input)" if b.in_place else "")
    code = [f"    /* layers {b.first}..{b.last}: fused inverted residual ({names}), out {T[b.output].shape} @ {where}; "
            f"row buffers {sb.size} B @ arena+{sb.offset} */",
            "    {",
            f"        static const asc_nn_conv_params pe = {conv_params(E)}, pp = {conv_params(P)};",
            f"        static const asc_nn_dw_conv_params pd = {dw_params(D)};"]
    add_ptr = "0"
    if A is not None:
        code.append(f"        static const asc_nn_add_params pa = {add_params(A)};")
        add_ptr = "&pa"
    fd = D.params["filter_dims"]
    w16 = []
    for L in (E, P):  # the 1x1 filters also pre-widened for the DSP kernels (flash, read-only)
        words = widen_1x1_filter(L.consts["filter"])
        if L.consts["filter"].shape[-1] > PW16_MAX_K:  # the DSP kernel would not use them
            words = words[:0]
        if words.size:
            consts.append(_arr("int32_t", f"L{L.index}_w16", words))
        w16.append(f"L{L.index}_w16" if words.size else "0")
    code += [f"        static const asc_nn_inverted_residual_params p = {{",
             f"            &pe, {{L{E.index}_mult, L{E.index}_shift}}, L{E.index}_filter, {biases[0]}, {T[E.output].dims[3]},",
             f"            &pd, {{L{D.index}_mult, L{D.index}_shift}}, {_dims(fd)}, L{D.index}_filter, {biases[1]},",
             f"            &pp, {{L{P.index}_mult, L{P.index}_shift}}, L{P.index}_filter, {biases[2]},",
             f"            {add_ptr}, {int(b.add_project_first)}}};",
             f"        static const asc_nn_dims in_d = {_dims(T[b.input].dims)}, out_d = {_dims(T[b.output].dims)};",
             f"        const asc_nn_context ctx = {{arena + {sb.offset}, {sb.size}}};",
             f"        st = asc_inverted_residual_s8_w16(&ctx, &p, {w16[0]}, {w16[1]}, &in_d, {ptr(b.input)}, &out_d, {y});",
             f"        if (st != ASC_NN_OK) return -{b.last + 1};",
             f"        if (cb) cb({b.last}, {y}, {T[b.output].size}, user);",
             "        ASC_MODEL_LAYER_DONE(" + str(b.last) + ");",
             "    }"]
    return code


def render_model(graph, plan, source_sha256: str | None = None) -> tuple[str, str]:
    """(model.h text, model.c text) for a :class:`~asc_edge.codegen.graph.Graph` and its
    :class:`~asc_edge.codegen.planner.Plan`; ``source_sha256`` (default: the graph's own
    ``.tflite`` hash) is recorded in both headers."""
    source_sha256 = graph.source_sha256 if source_sha256 is None else source_sha256
    T = graph.tensors
    xin, xout = T[graph.input], T[graph.output]
    guard = "ASC_MODEL_H"
    h = [
        "/* model.h - generated by asc_edge.codegen.emit_c; do not edit. */",
        f"/* source .tflite sha256: {source_sha256} */",
        f"#ifndef {guard}", f"#define {guard}", "", "#include <stdint.h>", "",
        "#ifdef __cplusplus", 'extern "C" {', "#endif", "",
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

    def ptr(tid: int) -> str:
        if graph.root(tid) == graph.input:
            return "((int8_t *)input)"
        return f"((int8_t *)(arena + {plan.offsets[tid]}))"

    consts, body = [], []

    def conv_consts(L) -> str:
        """Emit a conv-like layer's filter / bias / multiplier / shift arrays; returns the bias name."""
        pre = f"L{L.index}"
        consts.append(_arr("int8_t", f"{pre}_filter", L.consts["filter"]))
        bias = "0"
        if L.consts.get("bias") is not None:
            consts.append(_arr("int32_t", f"{pre}_bias", L.consts["bias"]))
            bias = f"{pre}_bias"
        consts.append(_arr("int32_t", f"{pre}_mult", L.consts["multiplier"]))
        consts.append(_arr("int32_t", f"{pre}_shift", L.consts["shift"]))
        return bias

    def conv_params(L) -> str:
        p = L.params
        return (f"{{{p['input_offset']}, {p['output_offset']}, {_tile(p['stride'])}, {_tile(p['padding'])}, "
                f"{_tile(p['dilation'])}, {_tile(p['activation'])}}}")

    def dw_params(L) -> str:
        p = L.params
        return (f"{{{p['input_offset']}, {p['output_offset']}, {p['ch_mult']}, {_tile(p['stride'])}, "
                f"{_tile(p['padding'])}, {_tile(p['dilation'])}, {_tile(p['activation'])}}}")

    def add_params(L) -> str:
        p = L.params
        fields = ["input1_offset", "input1_multiplier", "input1_shift", "input2_offset", "input2_multiplier",
                  "input2_shift", "left_shift", "output_offset", "output_multiplier", "output_shift"]
        return "{" + ", ".join(str(int(p[f])) for f in fields) + f", {_tile(p['activation'])}}}"

    for st in plan.steps:
        if not isinstance(st, int):
            body += _fused_block(graph, plan, st, ptr, conv_consts, conv_params, dw_params, add_params, consts)
            continue
        L = graph.layers[st]
        i = L.index
        pre = f"L{i}"
        y = ptr(L.output)
        ydims = _dims(T[L.output].dims)
        ops = ",".join(map(str, L.op_indices))
        code = [f"    /* layer {i}: {L.op} (tflite op {ops}) -> {L.kind}, out {T[L.output].shape} @ "
                + (f"arena+{plan.offsets[L.output]}" if graph.root(L.output) != graph.input else "input") + " */",
                "    {"]
        p = L.params
        if L.kind in ("conv", "conv1x1", "depthwise", "fc"):
            bias = conv_consts(L)
            x = ptr(L.inputs[0])
            xd = _dims(T[L.inputs[0]].dims)
            fd = _dims(p["filter_dims"])
            code += [f"        static const asc_nn_per_channel_quant q = {{{pre}_mult, {pre}_shift}};",
                     f"        static const asc_nn_dims in_d = {xd}, f_d = {fd}, out_d = {ydims};"]
            if L.kind == "fc":
                code += [f"        static const asc_nn_fc_params p = {{{p['input_offset']}, {p['filter_offset']}, "
                         f"{p['output_offset']}, {_tile(p['activation'])}}};",
                         f"        st = asc_fully_connected_s8(&p, &q, {p['per_channel']}, &in_d, {x}, &f_d, "
                         f"{pre}_filter, {bias}, &out_d, {y});"]
            elif L.kind == "depthwise":
                code += [f"        static const asc_nn_dw_conv_params p = {dw_params(L)};",
                         f"        st = asc_depthwise_conv_s8(0, &p, &q, &in_d, {x}, &f_d, {pre}_filter, {bias}, "
                         f"&out_d, {y});"]
            else:
                fn = "asc_convolve_1x1_s8" if L.kind == "conv1x1" else "asc_convolve_s8"
                ctx = "0"
                sb = plan.buffers.get(scratch_id(i))
                if L.kind == "conv" and sb is not None:
                    code += [f"        const asc_nn_context ctx = {{arena + {sb.offset}, {sb.size}}};"]
                    ctx = "&ctx"
                code += [f"        static const asc_nn_conv_params p = {conv_params(L)};",
                         f"        st = {fn}({ctx}, &p, &q, &in_d, {x}, &f_d, {pre}_filter, {bias}, &out_d, {y});"]
        elif L.kind in ("add", "mul"):
            srcs, dims = [], []
            for k, tid in enumerate(L.inputs):
                if tid < 0:
                    consts.append(_arr("int8_t", f"{pre}_c{k}", L.consts[f"const{k}"]))
                    srcs.append(f"{pre}_c{k}")
                    dims.append(_dims(L.consts[f"const{k}_dims"]))
                else:
                    srcs.append(ptr(tid))
                    dims.append(_dims(T[tid].dims))
            if L.kind == "add":
                pv, struct = add_params(L), "asc_nn_add_params"
            else:
                fields = ["input1_offset", "input2_offset", "output_offset", "output_multiplier", "output_shift"]
                pv = "{" + ", ".join(str(int(p[f])) for f in fields) + f", {_tile(p['activation'])}}}"
                struct = "asc_nn_mul_params"
            code += [f"        static const {struct} p = {pv};",
                     f"        static const asc_nn_dims a_d = {dims[0]}, b_d = {dims[1]}, out_d = {ydims};",
                     f"        st = asc_{L.kind}_s8(&p, &a_d, {srcs[0]}, &b_d, {srcs[1]}, &out_d, {y});"]
        elif L.kind == "avgpool":
            code += [f"        static const asc_nn_pool_params p = {{{_tile(p['filter'])}, {_tile(p['stride'])}, "
                     f"{_tile(p['padding'])}, {_tile(p['activation'])}}};",
                     f"        static const asc_nn_dims in_d = {_dims(T[L.inputs[0]].dims)}, out_d = {ydims};",
                     f"        st = asc_avgpool_s8(&p, &in_d, {ptr(L.inputs[0])}, &out_d, {y});"]
        elif L.kind == "mean":
            code += [f"        static const asc_nn_mean_params p = {{{p['input_offset']}, {p['output_offset']}, "
                     f"{p['multiplier']}, {p['shift']}, {_tile(p['activation'])}}};",
                     f"        static const asc_nn_dims in_d = {_dims(T[L.inputs[0]].dims)};",
                     f"        st = asc_mean_s8(&p, &in_d, {ptr(L.inputs[0])}, {y});"]
        elif L.kind == "strided_slice":
            code += [f"        static const asc_nn_dims in_d = {_dims(T[L.inputs[0]].dims)}, b_d = {_dims(p['begin'])}, "
                     f"s_d = {_dims(p['stride'])}, out_d = {ydims};",
                     f"        st = asc_strided_slice_s8(&in_d, {ptr(L.inputs[0])}, &b_d, &s_d, &out_d, {y});"]
        elif L.kind == "concat":
            n = len(L.inputs)
            code += [f"        const int8_t *const ins[{n}] = {{{', '.join(ptr(t) for t in L.inputs)}}};",
                     f"        static const asc_nn_dims in_d[{n}] = {{{', '.join(_dims(T[t].dims) for t in L.inputs)}}};",
                     f"        static const asc_nn_dims out_d = {ydims};",
                     f"        st = asc_concatenation_s8(ins, in_d, {n}, {p['axis']}, &out_d, {y});"]
        elif L.kind == "reshape":
            if T[L.output].alias_of is not None:
                code += ["        /* alias of the input buffer: no copy */", "        st = ASC_NN_OK;"]
            else:
                code += [f"        st = asc_reshape_s8({ptr(L.inputs[0])}, {y}, {T[L.output].size});"]
        else:  # pragma: no cover - graph.py only makes the kinds above
            raise AssertionError(L.kind)
        code += [f"        if (st != ASC_NN_OK) return -{i + 1};",
                 f"        if (cb) cb({i}, {y}, {T[L.output].size}, user);",
                 f"        ASC_MODEL_LAYER_DONE({i});",
                 "    }"]
        body += code

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
         f"    memcpy(output, {ptr(graph.output)}, {xout.size});",
         "    return 0;",
         "}", "",
         "int asc_model_invoke(const int8_t *input, int8_t *output, uint8_t *arena)",
         "{", "    return asc_model_run(input, output, arena, 0, 0);", "}", "",
         "int asc_model_invoke_debug(const int8_t *input, int8_t *output, uint8_t *arena,",
         "                           asc_model_layer_fn callback, void *user)",
         "{", "    return asc_model_run(input, output, arena, callback, user);", "}", ""]
    return "\n".join(h), "\n".join(c)


def emit_model(graph, plan, out_dir, source_sha256: str | None = None) -> dict:
    """Write ``out_dir/model.h`` and ``out_dir/model.c`` atomically; returns
    ``{"model.h": sha256, "model.c": sha256, "bytes": {...}}``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    htext, ctext = render_model(graph, plan, source_sha256)
    write_text_atomic(out_dir / "model.h", htext)
    write_text_atomic(out_dir / "model.c", ctext)
    return {"model.h": hashlib.sha256(htext.encode()).hexdigest(),
            "model.c": hashlib.sha256(ctext.encode()).hexdigest(),
            "bytes": {"model.h": len(htext.encode()), "model.c": len(ctext.encode())}}
