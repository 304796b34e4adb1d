"""The fp16 stage of ``asc-edge export --precision fp16``: ONNX → fp16-weight float C model, checked.

KT 2024 submits its Ghost-BC-Res2Net-Snake in fp16 (2 bytes a parameter toward the 128 kB
budget). :func:`export_fp16_c` generates the C (:mod:`asc_edge.codegen.float_c`), builds it for
the host and checks it on real clips against ONNX Runtime running the same ONNX file with every
float constant rounded to fp16 (:func:`~asc_edge.codegen.float_c.fp16_reference_onnx`): the two
hold identical weights, so they may differ only by float32 rounding. The tolerance
(:data:`FP16_TOL_REL`) is relative to the clip's largest reference logit: a generator bug (a wrong
stride, a transposed weight) moves logits by tens of percent, float32 rounding by about 1e-6.
The device build equals the host build of the same C bit for bit (``asc-edge bench``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from asc_edge.errors import ExportError

__all__ = ["export_fp16_c", "FP16_TOL_REL"]

#: max |host C − ONNX Runtime| ≤ FP16_TOL_REL × max(1, max |reference logit|) on every clip.
FP16_TOL_REL = 1e-3


def export_fp16_c(onnx_path, c_dir, fe, features: np.ndarray, n_check: int, work_dir) -> tuple:
    """Generate ``c_dir/model.{h,c}`` + the float frontend tables, build the host library, compare
    it with ONNX Runtime on ``features[:n_check]`` ``(N, 1, n_mels, frames)``.

    Returns ``(report, c_frontend, host_logits)``: the C model's report section (arena, files, the
    ONNX Runtime check), the frontend tables' record and the host C's float32 logits ``(N, n_classes)`` on all of ``features`` (for accuracy and the
    quality gate). Raises ExportError on an unsupported operator, a build failure or a clip
    outside the tolerance."""
    import onnxruntime as ort

    from asc_edge.codegen.float_c import (HOST_FLOAT_CFLAGS, HostFloatModel, build_host_float_model, emit_float_model,
                                          float_graph_record, fp16_reference_onnx)
    from asc_edge.device.frontend_c import emit_frontend_tables, work_bytes
    from asc_edge.report.io import write_json_atomic

    c_dir, work_dir = Path(c_dir), Path(work_dir)
    graph, plan, emitted = emit_float_model(onnx_path, c_dir, pre_scratch=work_bytes(fe))
    write_json_atomic(c_dir.parent / "graph.json", float_graph_record(graph, plan))
    # the float frontend output feeds the model directly: the int8 scale / zero point are unused
    fe_tables = emit_frontend_tables(fe, 1.0, 0, c_dir)
    from asc_edge.device.cmsis_dsp import ensure_cmsis_dsp, include_dirs

    root = ensure_cmsis_dsp()
    lib = build_host_float_model(c_dir, root, include_dirs(root), build_dir=work_dir / "host_float")
    host = HostFloatModel(lib, graph.tensors[graph.input].numel, graph.tensors[graph.output].numel, plan.arena)
    host_logits = host.predict(features)

    ref_path = fp16_reference_onnx(onnx_path, work_dir / "model_fp16_weights.onnx")
    sess = ort.InferenceSession(str(ref_path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    n = min(n_check, len(features))
    ref = np.stack([sess.run(None, {name: features[i:i + 1].astype(np.float32)})[0].reshape(-1) for i in range(n)])
    diff = np.abs(host_logits[:n] - ref).max(1) if n else np.zeros(0)
    bound = FP16_TOL_REL * np.maximum(1.0, np.abs(ref).max(1)) if n else np.zeros(0)
    bad = np.flatnonzero(diff > bound)
    check = {"n_clips": int(n), "tol_rel": FP16_TOL_REL, "max_abs_logit_diff": float(diff.max()) if n else 0.0,
             "max_rel_logit_diff": float((diff / np.maximum(1.0, np.abs(ref).max(1))).max()) if n else 0.0,
             "top1_agreement": float(np.mean(host_logits[:n].argmax(1) == ref.argmax(1))) if n else 1.0,
             "n_within_tol": int(n - len(bad)), "reference": "onnxruntime, float constants rounded to fp16"}
    if len(bad):
        i = int(bad[0])
        raise ExportError(f"fp16 host C differs from ONNX Runtime on {len(bad)}/{n} clips (clip {i}: max |diff| "
                          f"{diff[i]:.3g} > {bound[i]:.3g})", hint="a float kernel or code generator bug")
    report = {"files": emitted["files"], "bytes": emitted["bytes"], "n_layers": len(graph.layers),
              "fp16_constants": graph.n_params, "fp16_bytes": 2 * graph.n_params,
              "arena": {"arena_bytes": plan.arena, "naive_bytes": plan.naive, "input_bytes":
                        graph.tensors[graph.input].size, "frontend_work_bytes": plan.pre_scratch},
              "onnxruntime_check": check, "host_cflags": " ".join(HOST_FLOAT_CFLAGS)}
    c_frontend = {k: v for k, v in fe_tables.items() if k not in ("config_h", "tables_c")}
    return report, c_frontend, host_logits
