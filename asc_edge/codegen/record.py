"""The graph and memory plan an export used, as JSON (``<export>/graph.json``), so later stages
(``asc-edge bench``) read them instead of rebuilding them.

Schema (all sizes in bytes, offsets from the arena start)::

    {"format": 1, "source_sha256": ..., "input": tensor id, "output": tensor id,
     "tensors": {id: {"name", "shape" (NHWC), "scale", "zero_point", "alias_of", "offset"}},
     "layers": [{"index", "kind", "op", "tflite_ops", "inputs", "output", "macs", "report_type",
                 "params"}],
     "steps": [{"layers": [...], "pattern": null | name, "parts": [report types of the profiled
                parts], "scratch": bytes, "in_place": bool, "input", "output"}],
     "plan": {"arena_bytes", ..., "buffers": [{"id", "size", "first", "last", "offset"}]}}
"""

from __future__ import annotations

import dataclasses

from . import ops as registry
from .graph import scratch_id

__all__ = ["graph_record", "FORMAT"]

FORMAT = 1


def _params(p):
    if p is None:
        return None
    if dataclasses.is_dataclass(p):
        return {f.name: _params(getattr(p, f.name)) for f in dataclasses.fields(p)}
    if isinstance(p, tuple):
        return [_params(v) for v in p]
    return p if isinstance(p, (str, float, bool)) else int(p)


def graph_record(graph, plan) -> dict:
    """The JSON-serialisable record of ``graph`` and its ``plan`` (see the module docstring)."""
    macs = graph.macs()
    steps = []
    for st in plan.steps:
        if isinstance(st, int):
            L, sb = graph.layers[st], plan.buffers.get(scratch_id(st))  # the planned scratch, not recomputed
            steps.append({"layers": [st], "pattern": None, "parts": [], "scratch": 0 if sb is None else int(sb.size),
                          "in_place": False, "input": L.inputs[0] if L.inputs else -1, "output": L.output})
        else:
            steps.append({"layers": list(st.layers), "pattern": st.pattern, "parts": list(st.parts),
                          "scratch": int(st.scratch), "in_place": bool(st.in_place), "input": st.input,
                          "output": st.output})
    return {
        "format": FORMAT, "source_sha256": graph.source_sha256, "input": graph.input, "output": graph.output,
        "tensors": {str(t.id): {"name": t.name, "shape": [int(v) for v in t.shape], "scale": float(t.scale),
                                "zero_point": int(t.zero_point), "alias_of": t.alias_of,
                                "offset": plan.offsets.get(t.id)} for t in graph.tensors.values()},
        "layers": [{"index": L.index, "kind": L.kind, "op": L.op, "tflite_ops": list(L.op_indices),
                    "inputs": list(L.inputs), "output": L.output, "macs": int(macs[L.index]),
                    "report_type": registry.op_for(L.kind).report_type, "params": _params(L.params)}
                   for L in graph.layers],
        "steps": steps,
        "plan": {**plan.to_dict(), "buffers": [{"id": b.tensor, "size": b.size, "first": b.first, "last": b.last,
                                                "offset": b.offset} for b in plan.buffers.values()]},
    }
