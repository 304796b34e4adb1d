"""The operator registry: one module per int8 operator, each one :class:`Op` entry.

TFLite Micro resolves an operator through one registration (``MicroMutableOpResolver``); tinygrad
keeps an op as one table entry. Here an entry declares

* ``kind`` — the layer kind it emits (the name reports and the generated C comments use) and
  ``builtins`` — the TFLite builtin operator(s) whose parsing it owns (an entry may parse into a
  layer of another entry's kind: ``CONV_2D`` with ``groups == in_channels`` becomes a depthwise
  layer);
* :meth:`Op.parse` — TFLite operator → :class:`~asc_edge.codegen.graph.Layer` with a typed, frozen
  parameter value (:func:`asc_edge.codegen.c_abi.params` of the kernel's C struct, or a dataclass
  of the module's own) and named constant arrays; ``None`` when the operator is folded away;
  :meth:`Op.claim` / :meth:`Op.parse_group` — a group of operators parsed as one layer (the
  element-wise islands of :mod:`.lut`);
* :meth:`Op.emit` — the C statements of the kernel call (they set ``st``);
* :meth:`Op.scratch_bytes` — scratch from the kernel's C ``*_get_buffer_size`` (host build);
* :meth:`Op.macs` — multiply-accumulates; ``report_type`` — the per-layer-type bucket of reports;
* :meth:`Op.overlap_lead_bytes` — whether (and how) the planner may overlap the output with the input;
* :meth:`Op.cases` — random single-operator test cases (built with TensorFlow, checked against
  tflite-micro through the generated C), or :meth:`Op.reference` for table-only functions.

Every module of this package is imported by :func:`load` (no list to edit): adding an operator is
one new module here, its kernel in ``firmware/nn`` and nothing else. The graph builder, the C
emitter, the bench's instruction accounting and the kernel tests iterate :data:`KINDS` /
:data:`BUILTINS`.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass

__all__ = ["Op", "OpCase", "register", "load", "KINDS", "BUILTINS", "op_for", "report_types", "row_major_lead"]

KINDS: dict = {}
"""layer kind → :class:`Op` (emit, scratch, MACs, report type)."""
BUILTINS: dict = {}
"""TFLite builtin name → the :class:`Op` that parses it."""


@dataclass
class OpCase:
    """One random single-operator test case: a one-input TensorFlow function that the test
    converts to a full-integer ``.tflite`` and runs through the generated C and tflite-micro.

    ``name``: unique id; ``shape``: the input's shape (NHWC or ``(batch, depth)``); ``range``: the
    float range (lo, hi) the representative data set is drawn from (it sets the input
    quantisation); ``build``: ``build(tf, x) -> output`` with TensorFlow ops (a second operand is
    derived from ``x``, e.g. ``x * c`` for another scale); ``expect_ops``: builtins the converted
    model must contain, so the case tests what it says."""
    name: str
    shape: list
    range: tuple
    build: object
    expect_ops: tuple = ()


class Op:
    """Base class of a registry entry (see the module docstring). Subclasses set ``kind``,
    ``builtins`` and override what applies."""
    kind: str = ""
    builtins: tuple = ()
    report_type: str = "other"
    c_function: str = ""

    def parse(self, ctx, op):
        """``ctx``: :class:`~asc_edge.codegen.graph.ParseContext`; ``op``:
        :class:`~asc_edge.codegen.tflite_reader.OpInfo`. Returns a Layer (added by the caller), a
        list of Layers (an operator with several outputs) or None (folded). Raises ExportError (via
        ``ctx.fail``) on what the kernel cannot do."""
        raise NotImplementedError

    def claim(self, model, consumers: dict) -> list:
        """Groups of TFLite operator indices this entry parses together, found before the
        per-operator parse (e.g. an element-wise island → one table); default none. ``model``:
        :class:`~asc_edge.codegen.tflite_reader.TfliteModel`; ``consumers``: tensor → reading ops."""
        return []

    def parse_group(self, ctx, ops: list):
        """Parse a claimed group (operators in execution order) into one Layer."""
        raise NotImplementedError

    def emit(self, layer, em) -> list:
        """C statements (each a line) that run ``layer`` and set ``st``; ``em``:
        :class:`~asc_edge.codegen.emit_c.Emitter`."""
        raise NotImplementedError

    def scratch_bytes(self, layer, graph) -> int:
        """Scratch bytes the kernel needs (0: none)."""
        return 0

    def macs(self, layer, graph) -> int:
        """Multiply-accumulates of ``layer`` (0 for data movement and element-wise ops)."""
        return 0

    def overlap_lead_bytes(self, layer, graph) -> int | None:
        """How far (bytes) the output buffer must start *before* the input buffer for the kernel to
        write its output over its own input safely (the input dies at this layer): every output byte
        is written only after every input byte at that address has been read for the last time.
        ``None`` (the default): the kernel cannot run with overlapping buffers."""
        return None

    def cases(self, rng) -> list:
        """Random :class:`OpCase` list for the registry-driven kernel tests."""
        return []


def row_major_lead(x_dims, y_dims, stride_h: int, pad_top: int, batch_pixels: int) -> int | None:
    """:meth:`Op.overlap_lead_bytes` of a kernel that computes output pixels in row-major order,
    reading each pixel's receptive field (input rows from ``r · stride_h − pad_top`` on) before it
    writes the pixel, at most ``batch_pixels`` pixels ahead of its writes. While output row ``r`` is
    written, input rows from ``(r − m) · stride_h − pad_top`` on may still be read, with ``m =
    ceil(batch_pixels / out_w) + 1`` rows of margin; so the output may start ``max_r [(r + 1) ·
    out_row_bytes − first_row(r − m) · in_row_bytes]`` bytes before the input (row granular,
    conservative; ``x_dims`` / ``y_dims``: NHWC int8). ``None`` for a batch above 1."""
    if x_dims[0] != 1 or y_dims[0] != 1:
        return None
    margin = -(-int(batch_pixels) // int(y_dims[2])) + 1
    in_row, out_row = int(x_dims[2]) * int(x_dims[3]), int(y_dims[2]) * int(y_dims[3])
    return max((r + 1) * out_row - (max(0, (r - margin) * stride_h - pad_top) * in_row if r >= margin else 0)
               for r in range(int(y_dims[1])))


def register(op_cls):
    """Class decorator: add one instance of ``op_cls`` to :data:`KINDS` and :data:`BUILTINS`."""
    inst = op_cls()
    if inst.kind in KINDS:
        raise ValueError(f"operator kind {inst.kind!r} registered twice")
    KINDS[inst.kind] = inst
    for b in inst.builtins:
        if b in BUILTINS:
            raise ValueError(f"TFLite builtin {b} parsed by both {BUILTINS[b].kind} and {inst.kind}")
        BUILTINS[b] = inst
    return op_cls


_loaded = False


def load() -> None:
    """Import every operator module of this package (idempotent)."""
    global _loaded
    if _loaded:
        return
    for m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        importlib.import_module(f"{__name__}.{m.name}")
    _loaded = True


def op_for(kind: str) -> Op:
    load()
    return KINDS[kind]


def report_types() -> list:
    """The per-layer-type buckets of reports, in registry order, ``"other"`` last."""
    load()
    seen = []
    for op in KINDS.values():
        if op.report_type not in seen and op.report_type != "other":
            seen.append(op.report_type)
    return seen + ["other"]
