"""Arena memory planner for the generated C model: tensor lifetimes → byte offsets.

Lifetimes are in layer steps: a buffer is live from the layer that writes it to the last layer
that reads it (the graph output stays live to the end). RESHAPE aliases share their root's
buffer (the lifetime is the union). The graph input is the caller's buffer and is not planned.

Placement is first fit (each buffer at the lowest aligned offset where it does not overlap an
already placed buffer whose lifetime intersects its own), tried in several deterministic orders —
TFLM's ``GreedyMemoryPlanner`` order (largest first, ties by first use then id), by first use,
by size × lifetime, plus seeded shuffles — keeping the smallest arena. :func:`validate_plan` re-checks that no two simultaneously live buffers
overlap.

Reported (bytes): ``arena`` (planned), ``naive`` (sum of all planned buffers, no reuse) and
``lower_bound`` (max over layers of the bytes live at that layer — no layer-by-layer plan can
beat it); both count activation tensors only. The general convolution's scratch buffer (im2col
patch of one output pixel, used by the Cortex-M DSP path) is planned like a tensor that lives
during its layer only, so it lands in a gap and normally costs nothing.

Fused per-row execution: with a ``steps`` schedule from :func:`asc_edge.codegen.fusion.schedule`,
time is counted in steps; a fused inverted-residual block is one step whose internal tensors are
not planned at all (its row buffers are one scratch buffer live during the step) and whose output
shares the input's buffer when the block runs in place.

Device layout (optional): ``input_in_arena`` plans the graph input as an arena buffer too (live
from a "step -1" until its last reader), and ``pre_scratch`` reserves that many bytes at step -1,
disjoint from the input (the log-mel frontend's work buffers on the device, which fill the input
frame by frame and are dead before layer 0 runs).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from asc_edge.errors import ExportError

__all__ = ["Buffer", "Plan", "plan_arena", "validate_plan", "lifetimes", "scratch_sizes", "scratch_id",
           "PRE_SCRATCH_ID"]

PRE_SCRATCH_ID = -(1 << 30)  # pseudo tensor id of the frontend work area (pre_scratch)


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
    steps: list = field(default_factory=list)  # execution schedule (layer index or FusedBlock)
    input_offset: int | None = None  # graph input's offset when planned in the arena
    pre_scratch: int = 0
    pre_scratch_offset: int | None = None

    def to_dict(self) -> dict:
        fused = [b for b in self.steps if not isinstance(b, int)]
        return {"arena_bytes": self.arena, "naive_bytes": self.naive, "lower_bound_bytes": self.lower_bound,
                "alignment": self.alignment, "n_buffers": len(self.buffers), "n_steps": len(self.steps),
                "fused_blocks": [{"layers": b.layers, "scratch_bytes": b.scratch, "in_place": b.in_place}
                                 for b in fused],
                "input_offset": self.input_offset, "pre_scratch_bytes": self.pre_scratch,
                "pre_scratch_offset": self.pre_scratch_offset}


def _align(x: int, a: int) -> int:
    return (x + a - 1) // a * a


def scratch_sizes(graph) -> dict:
    """layer index → scratch bytes of the general CONV_2D kernel (``asc_convolve_s8_get_buffer_size``:
    the im2col patches of two output pixels, 2·kh·kw·(in_ch/groups) bytes; used by the DSP path)."""
    out = {}
    for L in graph.layers:
        if L.kind == "conv":
            f = L.params["filter_dims"]
            out[L.index] = int(2 * f[1] * f[2] * f[3])
    return out


def scratch_id(layer_index: int) -> int:
    """Pseudo tensor id of a layer's scratch buffer in a :class:`Plan` (negative, never a tensor)."""
    return -(layer_index + 1)


def _default_steps(graph) -> list:
    return [L.index for L in graph.layers]


def lifetimes(graph, steps: list | None = None, input_in_arena: bool = False, pre_scratch: int = 0) -> tuple[dict, dict]:
    """(lifetimes, alias) for a schedule. ``lifetimes``: buffer id → (size bytes, first step, last
    step) for every planned activation (root tensor ids), each general conv's / fused block's
    scratch (:func:`scratch_id` of its first layer, live during its step) and, at step -1, the
    graph input (``input_in_arena``) and the ``pre_scratch`` area (:data:`PRE_SCRATCH_ID`).
    ``alias``: tensor id → buffer id for tensors stored in another's buffer (RESHAPE, in-place
    blocks). ``steps`` defaults to one step per layer."""
    steps = _default_steps(graph) if steps is None else steps
    conv_scratch = scratch_sizes(graph)
    alias: dict[int, int] = {}
    internal: set[int] = set()
    for st in steps:
        if not isinstance(st, int):
            internal.update(graph.root(t) for t in st.internal)
            if st.in_place:  # chains resolve to the first buffer (block 2 runs in place over block 1's)
                x = graph.root(st.input)
                alias[st.output] = alias.get(x, x)

    def root(t: int) -> int:
        r = graph.root(t)
        return alias.get(r, r)

    life: dict[int, list] = {}

    def touch(bid: int, size: int, step: int) -> None:
        if bid not in life:
            life[bid] = [size, step, step]
        life[bid][1] = min(life[bid][1], step)
        life[bid][2] = max(life[bid][2], step)

    if input_in_arena:
        touch(graph.root(graph.input), graph.tensors[graph.root(graph.input)].size, -1)
    if pre_scratch > 0:
        touch(PRE_SCRATCH_ID, int(pre_scratch), -1)
    for s_idx, st in enumerate(steps):
        if isinstance(st, int):
            L = graph.layers[st]
            if st in conv_scratch:
                touch(scratch_id(st), conv_scratch[st], s_idx)
            tids = [L.output] + [t for t in L.inputs if t >= 0]
        else:
            touch(scratch_id(st.first), st.scratch, s_idx)
            tids = [st.input, st.output]
        for tid in tids:
            r = root(tid)
            if r in internal:
                raise ExportError(f"tensor {tid} is internal to a fused block but used outside it",
                                  hint="fusion bug")
            if r == graph.root(graph.input) and not input_in_arena:
                continue
            touch(r, graph.tensors[r].size, s_idx)
    out_root = root(graph.output)
    if out_root in life:
        life[out_root][2] = len(steps) - 1
    return {k: tuple(v) for k, v in life.items()}, alias


# Placement orders tried (the smallest arena wins): TFLM's greedy by size, by first use (a stack-like
# order suits chains with a few long-lived buffers), by size x lifetime, by lifetime, and
# _N_RANDOM_ORDERS shuffles from a fixed seed (deterministic; ~30 buffers make this cheap).
_ORDERS = (
    lambda b: (-b.size, b.first, b.tensor),
    lambda b: (b.first, -b.size, b.tensor),
    lambda b: (-b.size * (b.last - b.first + 1), b.first, b.tensor),
    lambda b: (-(b.last - b.first), -b.size, b.tensor),
)


_N_RANDOM_ORDERS = 400


def _first_fit(order: list, alignment: int) -> dict:
    """buffer id → offset: each buffer at the lowest aligned offset free of every already placed
    buffer whose lifetime intersects its own."""
    placed: list[tuple[int, Buffer]] = []
    offs: dict[int, int] = {}
    for b in order:
        conflicts = sorted(((o, p) for o, p in placed if p.live_with(b)), key=lambda t: (t[0], t[1].tensor))
        off = 0
        for o, p in conflicts:
            if off + b.size <= o:
                break
            off = max(off, _align(o + p.size, alignment))
        offs[b.tensor] = off
        placed.append((off, b))
    return offs


def plan_arena(graph, alignment: int = 16, buffer_sizes: dict | None = None, *, steps: list | None = None,
               input_in_arena: bool = False, pre_scratch: int = 0) -> Plan:
    """Greedy-by-size first-fit arena plan (TFLM GreedyMemoryPlanner strategy).

    Args:
        graph: :class:`~asc_edge.codegen.graph.Graph`.
        alignment: offset alignment in bytes (4, 8 or 16; CMSIS-NN/TFLM use 16).
        buffer_sizes: optional buffer id → bytes override.
        steps: execution schedule (:func:`asc_edge.codegen.fusion.schedule`); default one step
            per layer (no fusion).
        input_in_arena: plan the graph input inside the arena (device builds).
        pre_scratch: bytes reserved at step -1 beside the input (frontend work buffers).

    Returns a :class:`Plan` (all sizes in bytes), validated with :func:`validate_plan`.
    """
    if alignment not in (4, 8, 16):
        raise ExportError(f"alignment {alignment}", hint="use 4 or 16 bytes")
    steps = _default_steps(graph) if steps is None else list(steps)
    life, alias = lifetimes(graph, steps, input_in_arena, pre_scratch)
    bufs = {t: Buffer(t, int((buffer_sizes or {}).get(t, s)), f, l) for t, (s, f, l) in life.items()}
    best = None
    base = sorted(bufs.values(), key=_ORDERS[0])
    rng = random.Random(0)  # fixed seed: the plan is a pure function of the graph
    orders = [sorted(bufs.values(), key=k) for k in _ORDERS]
    for _ in range(_N_RANDOM_ORDERS):
        o = list(base)
        rng.shuffle(o)
        orders.append(o)
    for order in orders:
        offs = _first_fit(order, alignment)
        end = max((offs[b.tensor] + b.size for b in bufs.values()), default=0)
        if best is None or end < best[0]:
            best = (end, offs)
    for b in bufs.values():
        b.offset = best[1][b.tensor]
    placed = list(bufs.values())
    arena = _align(best[0], alignment)
    naive = sum(_align(b.size, alignment) for b in placed if b.tensor >= 0)
    lower = 0
    for step in range(-1, len(steps)):
        lower = max(lower, sum(b.size for b in placed if b.first <= step <= b.last and b.tensor >= 0))
    offsets = {}
    for tid in graph.tensors:
        r = graph.root(tid)
        r = alias.get(r, r)
        if r in bufs:
            offsets[tid] = bufs[r].offset
    in_root = graph.root(graph.input)
    plan = Plan(buffers=bufs, arena=arena, naive=naive, lower_bound=lower, alignment=alignment, offsets=offsets,
                steps=steps, input_offset=bufs[in_root].offset if input_in_arena else None,
                pre_scratch=int(pre_scratch),
                pre_scratch_offset=bufs[PRE_SCRATCH_ID].offset if pre_scratch > 0 else None)
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


def plan_for_device(graph, pre_scratch: int = 0, alignment: int = 16) -> Plan:
    """The plan ``asc-edge export`` emits: inverted-residual blocks fused row by row
    (:func:`asc_edge.codegen.fusion.schedule`), the int8 input planned inside the arena, and
    ``pre_scratch`` bytes (the frontend's work area, bytes) beside it before layer 0."""
    from .fusion import schedule

    return plan_arena(graph, alignment, steps=schedule(graph), input_in_arena=True, pre_scratch=pre_scratch)
