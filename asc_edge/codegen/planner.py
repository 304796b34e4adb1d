"""Arena memory planner for the generated C model: tensor lifetimes → byte offsets.

Lifetimes are in layer steps: a buffer is live from the layer that writes it to the last layer
that reads it (the graph output stays live to the end). RESHAPE aliases share their root's
buffer (the lifetime is the union). The graph input is the caller's buffer and is not planned.

Placement is TFLM's ``GreedyMemoryPlanner`` strategy: buffers sorted by size (largest first, ties
by first use then id, so the plan is deterministic), each placed at the lowest aligned offset
where it does not overlap any already placed buffer whose lifetime intersects its own
(first fit in the gaps). :func:`validate_plan` re-checks that no two simultaneously live buffers
overlap.

Reported (bytes): ``arena`` (planned), ``naive`` (sum of all planned buffers, no reuse) and
``lower_bound`` (max over layers of the bytes live at that layer — no layer-by-layer plan can
beat it); both count activation tensors only. The general convolution's scratch buffer (im2col
patch of one output pixel, used by the Cortex-M DSP path) is planned like a tensor that lives
during its layer only, so it lands in a gap and normally costs nothing.

Fused per-row execution (later): a layer group (e.g. expand 1×1 → depthwise 3×3 → project 1×1 of
an inverted-residual block) would be planned as one step whose intermediate buffers are row
rings of ``k`` rows instead of full tensors. The hook is :func:`plan_arena`'s ``buffer_sizes``
override: pass reduced sizes (and the fused layers' lifetimes collapse to one step) without
changing the placement algorithm.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from asc_edge.errors import ExportError

__all__ = ["Buffer", "Plan", "plan_arena", "validate_plan", "lifetimes", "scratch_sizes", "scratch_id"]


@dataclass
class Buffer:
    """One planned buffer: root tensor id, bytes, first/last layer step, offset (bytes)."""
    tensor: int
    size: int
    first: int
    last: int
    offset: int = -1

    def live_with(self, o: "Buffer") -> bool:
        return self.first <= o.last and o.first <= self.last


@dataclass
class Plan:
    buffers: dict  # root tensor id → Buffer
    arena: int
    naive: int
    lower_bound: int
    alignment: int
    offsets: dict = field(default_factory=dict)  # every tensor id (aliases included) → offset

    def to_dict(self) -> dict:
        return {"arena_bytes": self.arena, "naive_bytes": self.naive, "lower_bound_bytes": self.lower_bound,
                "alignment": self.alignment, "n_buffers": len(self.buffers)}


def _align(x: int, a: int) -> int:
    return (x + a - 1) // a * a


def scratch_sizes(graph) -> dict:
    """layer index → scratch bytes of the general CONV_2D kernel (``asc_convolve_s8_get_buffer_size``:
    one output pixel's im2col patch, kh·kw·(in_ch/groups) bytes; used by the DSP path)."""
    out = {}
    for L in graph.layers:
        if L.kind == "conv":
            f = L.params["filter_dims"]
            out[L.index] = int(f[1] * f[2] * f[3])
    return out


def scratch_id(layer_index: int) -> int:
    """Pseudo tensor id of a layer's scratch buffer in a :class:`Plan` (negative, never a tensor)."""
    return -(layer_index + 1)


def lifetimes(graph) -> dict:
    """root tensor id → (size bytes, first layer, last layer) for every non-input activation, plus
    each conv layer's scratch buffer (id :func:`scratch_id`, live during that layer only)."""
    life: dict[int, list] = {}
    n = len(graph.layers)
    for i, size in scratch_sizes(graph).items():
        life[scratch_id(i)] = [size, i, i]
    for layer in graph.layers:
        for tid in [layer.output] + [t for t in layer.inputs if t >= 0]:
            r = graph.root(tid)
            if r == graph.input:
                continue
            size = graph.tensors[r].size
            if r not in life:
                life[r] = [size, layer.index, layer.index]
            life[r][1] = min(life[r][1], layer.index)
            life[r][2] = max(life[r][2], layer.index)
    out_root = graph.root(graph.output)
    if out_root in life:
        life[out_root][2] = n - 1
    return {k: tuple(v) for k, v in life.items()}


def plan_arena(graph, alignment: int = 16, buffer_sizes: dict | None = None) -> Plan:
    """Greedy-by-size first-fit arena plan (TFLM GreedyMemoryPlanner strategy).

    Args:
        graph: :class:`~asc_edge.codegen.graph.Graph`.
        alignment: offset alignment in bytes (4 or 16; CMSIS-NN/TFLM use 16).
        buffer_sizes: optional root tensor id → bytes override (hook for fused per-row execution).

    Returns a :class:`Plan` (all sizes in bytes), validated with :func:`validate_plan`.
    """
    if alignment not in (4, 8, 16):
        raise ExportError(f"alignment {alignment}", hint="use 4 or 16 bytes")
    life = lifetimes(graph)
    bufs = {t: Buffer(t, int((buffer_sizes or {}).get(t, s)), f, l) for t, (s, f, l) in life.items()}
    order = sorted(bufs.values(), key=lambda b: (-b.size, b.first, b.tensor))
    placed: list[Buffer] = []
    for b in order:
        conflicts = sorted((p for p in placed if p.live_with(b)), key=lambda p: p.offset)
        off = 0
        for p in conflicts:
            if off + b.size <= p.offset:
                break
            off = max(off, _align(p.offset + p.size, alignment))
        b.offset = off
        placed.append(b)
    arena = _align(max((b.offset + b.size for b in placed), default=0), alignment)
    naive = sum(_align(b.size, alignment) for b in placed if b.tensor >= 0)
    lower = 0
    for step in range(len(graph.layers)):
        lower = max(lower, sum(b.size for b in placed if b.first <= step <= b.last and b.tensor >= 0))
    offsets = {}
    for tid in graph.tensors:
        r = graph.root(tid)
        if r in bufs:
            offsets[tid] = bufs[r].offset
    plan = Plan(buffers=bufs, arena=arena, naive=naive, lower_bound=lower, alignment=alignment, offsets=offsets)
    validate_plan(plan)
    return plan


def validate_plan(plan: Plan) -> None:
    """Raise ExportError if two buffers with intersecting lifetimes overlap in memory, a buffer
    leaves the arena, or an offset is misaligned."""
    bs = sorted(plan.buffers.values(), key=lambda b: b.tensor)
    for i, a in enumerate(bs):
        if a.offset < 0 or a.offset % plan.alignment or a.offset + a.size > plan.arena:
            raise ExportError(f"buffer of tensor {a.tensor} at {a.offset}+{a.size} is outside the "
                              f"{plan.arena}-byte arena or misaligned", hint="planner bug")
        for b in bs[i + 1:]:
            if a.live_with(b) and a.offset < b.offset + b.size and b.offset < a.offset + a.size:
                raise ExportError(f"tensors {a.tensor} and {b.tensor} are live together (layers "
                                  f"{max(a.first, b.first)}..{min(a.last, b.last)}) and overlap in the arena",
                                  hint="planner bug")
