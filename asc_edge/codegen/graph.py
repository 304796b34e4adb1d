"""A small int8 IR built from a full-integer ``.tflite``, ready for C code generation.

:func:`build_graph` reads the flatbuffer once (:func:`~asc_edge.codegen.tflite_reader.read_tflite`)
and hands every operator to the registry entry that parses its builtin
(:data:`asc_edge.codegen.ops.BUILTINS`). The result is a :class:`Graph`: a list of :class:`Layer`
(one ``firmware/nn`` kernel call each, with a typed parameter value computed exactly like
TFLite(-Micro)'s ``Prepare`` via :mod:`asc_edge.codegen.quant`) and a table of :class:`Tensor`
(activation buffers; shapes NHWC, sizes in bytes, quantisation).

Before that, entries may *claim* groups of operators that become one layer (:meth:`Op.claim`: an
element-wise island becomes one 256-entry table, :mod:`asc_edge.codegen.ops.lut`); a group is
parsed at its last operator. The exact rewrites (PAD folded into the next convolution, grouped
CONV_2D as depthwise, RESHAPE as an alias, islands as tables) are recorded in
:attr:`Graph.rewrites`. An operator no entry
parses raises :class:`~asc_edge.errors.ExportError` naming the operator, its index in the
``.tflite`` and a hint.

:meth:`Graph.buffers` computes the buffer lifetimes of an execution schedule (the planner only
places them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from asc_edge.errors import ExportError

from . import ops as registry
from .tflite_reader import OpInfo, TensorInfo, read_tflite

__all__ = ["Tensor", "Layer", "Graph", "ParseContext", "build_graph", "supported_ops", "Buffer",
           "PRE_SCRATCH_ID", "scratch_id"]

PRE_SCRATCH_ID = -(1 << 30)  # pseudo buffer id of the frontend work area (pre_scratch)


def scratch_id(layer_index: int) -> int:
    """Pseudo buffer id of the scratch of the step starting at ``layer_index`` (negative)."""
    return -(layer_index + 1)


def supported_ops() -> tuple:
    """The TFLite builtins the registry parses."""
    registry.load()
    return tuple(sorted(registry.BUILTINS))


def nhwc(shape) -> tuple:
    """(n, h, w, c) as the kernels' ``asc_nn_dims`` from a shape of rank ≤ 4 (rank 2 ``[n, c]`` →
    ``(n, 1, 1, c)``, rank 3 / 1 padded with leading 1s)."""
    s = [int(v) for v in shape]
    if len(s) == 2:
        s = [s[0], 1, 1, s[1]]
    while len(s) < 4:
        s = [1] + s
    if len(s) != 4:
        raise ExportError(f"shape {list(shape)} has rank {len(shape)}", hint="only rank ≤ 4 is supported")
    return tuple(s)


@dataclass
class Tensor:
    """An int8 activation tensor. ``shape``: NHWC (rank ≤ 4 as in the .tflite); ``size``: bytes;
    ``alias_of``: tensor id whose buffer this one shares (RESHAPE), else None."""
    id: int
    name: str
    shape: list
    scale: float
    zero_point: int
    alias_of: int | None = None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1

    @property
    def dims(self) -> tuple:
        """(n, h, w, c) as the kernels' ``asc_nn_dims``."""
        return nhwc(self.shape)


@dataclass
class Layer:
    """One kernel call. ``kind``: the registry entry that emits it (:data:`asc_edge.codegen.ops.KINDS`);
    ``op``: the TFLite builtin; ``op_indices``: the .tflite operators it implements (a folded PAD +
    its conv); ``inputs`` / ``output``: tensor ids (-1 = a constant operand, in ``consts``);
    ``params``: the entry's frozen parameter value; ``consts``: name → numpy array (int8 filters,
    int32 bias / multipliers / shifts, int8 constant operands)."""
    index: int
    kind: str
    op: str
    op_indices: list
    inputs: list
    output: int
    params: object = None
    consts: dict = field(default_factory=dict)

    @property
    def entry(self):
        return registry.op_for(self.kind)


@dataclass
class Buffer:
    """One planned buffer: id (root tensor id, or a negative scratch id), bytes, first/last step,
    offset (bytes, set by the planner)."""
    tensor: int
    size: int
    first: int
    last: int
    offset: int = -1

    def live_with(self, o: "Buffer") -> bool:
        return self.first <= o.last and o.first <= self.last


@dataclass
class Graph:
    tensors: dict
    layers: list
    input: int
    output: int
    source_ops: int
    rewrites: dict = field(default_factory=dict)
    source_sha256: str = ""

    def root(self, tid: int) -> int:
        """The tensor id that owns ``tid``'s buffer (follows RESHAPE aliases)."""
        while self.tensors[tid].alias_of is not None:
            tid = self.tensors[tid].alias_of
        return tid

    def consumers(self) -> dict:
        """root tensor id → indices of the layers reading it."""
        out: dict[int, list[int]] = {}
        for L in self.layers:
            for t in L.inputs:
                if t >= 0:
                    out.setdefault(self.root(t), []).append(L.index)
        return out

    def macs(self) -> dict:
        """layer index → multiply-accumulates (the registry entry's count)."""
        return {L.index: int(L.entry.macs(L, self)) for L in self.layers}

    def buffers(self, steps: list | None = None, input_in_arena: bool = False,
                pre_scratch: int = 0) -> tuple[list, dict]:
        """The buffers of an execution schedule and their lifetimes (in steps).

        ``steps``: layer indices and fused steps (:mod:`asc_edge.codegen.patterns`; default one step
        per layer). Returns ``(buffers, alias)``: every planned activation (root tensor ids; the graph
        output stays live to the end), each step's scratch (:func:`scratch_id` of its first layer,
        live during its step), and — at step -1 — the graph input (``input_in_arena``) and the
        ``pre_scratch`` bytes (:data:`PRE_SCRATCH_ID`); ``alias``: tensor id → buffer id for tensors
        stored in another's buffer (RESHAPE, in-place fused steps).

        Raises:
            ExportError: a tensor internal to a fused step is used outside it.
        """
        steps = [L.index for L in self.layers] if steps is None else steps
        alias: dict[int, int] = {}
        internal: set[int] = set()
        for st in steps:
            if not isinstance(st, int):
                internal.update(self.root(t) for t in st.internal)
                if st.in_place:  # chains resolve to the first buffer
                    x = self.root(st.input)
                    alias[st.output] = alias.get(x, x)

        def root(t: int) -> int:
            r = self.root(t)
            return alias.get(r, r)

        life: dict[int, list] = {}

        def touch(bid: int, size: int, step: int) -> None:
            if bid not in life:
                life[bid] = [size, step, step]
            life[bid][1] = min(life[bid][1], step)
            life[bid][2] = max(life[bid][2], step)

        g_in = self.root(self.input)
        if input_in_arena:
            touch(g_in, self.tensors[g_in].size, -1)
        if pre_scratch > 0:
            touch(PRE_SCRATCH_ID, int(pre_scratch), -1)
        for s_idx, st in enumerate(steps):
            if isinstance(st, int):
                L = self.layers[st]
                scratch = int(L.entry.scratch_bytes(L, self))
                tids = [L.output] + [t for t in L.inputs if t >= 0]
                first = st
            else:
                scratch, tids, first = st.scratch, [st.input, st.output], st.first
            if scratch > 0:
                touch(scratch_id(first), scratch, s_idx)
            for tid in tids:
                r = root(tid)
                if r in internal:
                    raise ExportError(f"tensor {tid} is internal to a fused step but used outside it",
                                      hint="a fusion pattern bug")
                if r == g_in and not input_in_arena:
                    continue
                touch(r, self.tensors[r].size, s_idx)
        out_root = root(self.output)
        if out_root in life:
            life[out_root][2] = len(steps) - 1
        return [Buffer(k, int(v[0]), v[1], v[2]) for k, v in life.items()], alias


class ParseContext:
    """What a registry entry's ``parse`` works with: the model, the activation tensors found so
    far, the layers built so far, pending rewrites (a PAD waiting for its convolution) and the
    rewrite record."""

    def __init__(self, model):
        self.model = model
        self.tensors: dict[int, Tensor] = {}
        self.layers: list[Layer] = []
        self.consumers = model.consumers()
        self.folded_pad: dict[int, tuple] = {}  # consumer op index → (pad_top, pad_left, source tensor)
        self.rewrites: dict[str, list] = {"pad_folded": [], "grouped_as_depthwise": [], "reshape_alias": []}
        self.input = -1

    @staticmethod
    def fail(op: OpInfo, what: str, hint: str):
        raise ExportError(f"operator {op.index} ({op.op}): {what}", hint=hint)

    def info(self, tid: int) -> TensorInfo:
        return self.model.tensors[tid]

    def act(self, tid: int, op: OpInfo) -> int:
        """Register ``tid`` as an int8 activation tensor and return it; fails on anything else."""
        if tid < 0:
            self.fail(op, "missing tensor", "invalid model")
        t = self.model.tensors[tid]
        if t.dtype != "INT8" or not t.quantized:
            self.fail(op, f"tensor {t.name!r} is {t.dtype}, not quantised int8",
                      "convert with full-integer quantisation (convert_int8_tflite)")
        if tid not in self.tensors:
            self.tensors[tid] = Tensor(tid, t.name, list(t.shape), float(t.scales[0]), int(t.zero_point))
        return tid

    def const(self, tid: int, op: OpInfo, dtype, what: str) -> np.ndarray:
        """The constant array of tensor ``tid`` with ``dtype``; fails naming ``what`` otherwise."""
        t = self.model.tensor(tid)
        if t is None or t.data is None or t.data.dtype != dtype:
            self.fail(op, f"{what} is not a constant {np.dtype(dtype).name} tensor",
                      "full-integer quantisation needed")
        return t.data

    def values(self, tid: int, op: OpInfo, what: str) -> list:
        """A small constant int tensor (paddings, axes, slice bounds) as a (nested) list."""
        t = self.model.tensor(tid)
        if t is None or t.data is None or t.data.dtype not in (np.int32, np.int64):
            self.fail(op, f"non-constant {what}", "export a static graph")
        return t.data.tolist()

    def same_quant(self, a: int, b: int) -> bool:
        ta, tb = self.tensors[a], self.tensors[b]
        return (ta.scale, ta.zero_point) == (tb.scale, tb.zero_point)

    def layer(self, kind: str, op: OpInfo, inputs: list, output: int, params=None, consts=None,
              op_indices: list | None = None) -> Layer:
        return Layer(len(self.layers), kind, op.op, op_indices or [op.index], list(inputs), output, params,
                     consts or {})


def build_graph(tflite_model) -> Graph:
    """Build the IR from a full-integer int8 ``.tflite`` (path or bytes).

    Layers are in the .tflite execution order (folded PADs removed; a RESHAPE stays as a layer that
    emits no call when it aliases its input, so its output can still be reported per layer).

    Raises:
        ExportError: not a TFLite file; an operator no registry entry parses or with parameters
            its kernel does not support (the message names the operator and its index);
            non-int8 activations; more than one input/output.
    """
    registry.load()
    model = read_tflite(tflite_model if isinstance(tflite_model, (str, Path)) else bytes(tflite_model))
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ExportError(f"{len(model.inputs)} inputs / {len(model.outputs)} outputs",
                          hint="export a single-input classifier")
    ctx = ParseContext(model)
    ctx.input = ctx.act(model.inputs[0], OpInfo(-1, "INPUT", (), (), {}))
    groups: dict[int, tuple] = {}  # last op index of a claimed group → (entry, op indices)
    claimed: set[int] = set()
    for entry in registry.KINDS.values():
        for grp in entry.claim(model, ctx.consumers):
            if not claimed & set(grp):
                groups[max(grp)] = (entry, sorted(grp))
                claimed |= set(grp)
    for op in model.ops:
        if op.index in claimed:  # parsed as one layer at the group's last operator
            if op.index in groups:
                entry, grp = groups[op.index]
                ctx.layers.append(entry.parse_group(ctx, [model.ops[i] for i in grp]))
            continue
        entry = registry.BUILTINS.get(op.op)
        if entry is None:
            ctx.fail(op, "unsupported operator",
                     f"supported: {', '.join(supported_ops())}; change the model or add an operator "
                     "(README: adding an operator)")
        layer = entry.parse(ctx, op)  # a Layer, a list of Layers (one per output), or None (folded)
        for L in ([] if layer is None else layer if isinstance(layer, list) else [layer]):
            L.index = len(ctx.layers)
            ctx.layers.append(L)
    g_out = model.outputs[0]
    if g_out not in ctx.tensors:
        raise ExportError("graph output is not produced by any supported layer", hint="check the model")
    return Graph(tensors=ctx.tensors, layers=ctx.layers, input=ctx.input, output=g_out,
                 source_ops=len(model.ops), rewrites=ctx.rewrites, source_sha256=model.sha256)
