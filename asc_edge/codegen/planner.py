"""Arena memory planner for the generated C model: buffers with lifetimes in, byte offsets out.

:func:`place` knows nothing about graphs: it takes :class:`~asc_edge.codegen.graph.Buffer` objects
(id, bytes, first/last step) and assigns offsets. The lifetimes come from the graph
(:meth:`~asc_edge.codegen.graph.Graph.buffers`: a tensor is live from the step that writes it to
the last step that reads it, RESHAPE aliases share their root's buffer, scratch lives during its
step); :func:`plan_arena` composes the two. The graph input is the caller's buffer and is not
planned unless ``input_in_arena``.

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

Fused per-row execution: with a ``steps`` schedule from :func:`asc_edge.codegen.patterns.schedule`,
time is counted in steps; a fused inverted-residual block is one step whose internal tensors are
not planned at all (its row buffers are one scratch buffer live during the step) and whose output
shares the input's buffer when the block runs in place.

Overlapped input and output: a layer whose kernel writes its output in the order it consumes its
input (a strided convolution, :meth:`~asc_edge.codegen.ops.Op.overlap_lead_bytes`) may have its
output buffer start a few rows before its dying input's buffer and run over it; the two form a
pair (:func:`_overlap_pairs`): the placement puts one at the other's offset ∓ lead when that spot is
free, and the plan keeps this only when the arena gets smaller.

Device layout (optional): ``input_in_arena`` plans the graph input as an arena buffer too (live
from a "step -1" until its last reader), and ``pre_scratch`` reserves that many bytes at step -1,
disjoint from the input (the log-mel frontend's work buffers on the device, which fill the input
frame by frame and are dead before layer 0 runs).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from asc_edge.errors import ExportError

from .graph import PRE_SCRATCH_ID, Buffer, scratch_id

__all__ = ["Buffer", "Plan", "place", "plan_arena", "validate_plan", "scratch_id", "PRE_SCRATCH_ID",
           "plan_for_device"]


@dataclass
class Plan:
    buffers: dict  # buffer id → Buffer (root tensor ids; negative ids: scratch, frontend area)
    arena: int
    naive: int
    lower_bound: int
    alignment: int
    offsets: dict = field(default_factory=dict)  # every tensor id (aliases included) → offset
    steps: list = field(default_factory=list)  # execution schedule (layer index or FusedStep)
    input_offset: int | None = None  # graph input's offset when planned in the arena
    pre_scratch: int = 0
    pre_scratch_offset: int | None = None
    peak_step: int = -1  # the step (index into steps; -1 = before layer 0) with the most live bytes
    peak_buffers: list = field(default_factory=list)  # (buffer id, bytes) live then, largest first
    overlaps: dict = field(default_factory=dict)  # input buffer id → (output buffer id, lead bytes), see _overlap_pairs

    def peak(self) -> dict:
        """Where the memory goes: the step with the most live bytes, its layers and live buffers
        (buffer ids: tensor ids; negative: a step's scratch, or the frontend work area)."""
        st = None if self.peak_step < 0 else self.steps[self.peak_step]
        layers = [] if st is None else ([st] if isinstance(st, int) else list(st.layers))
        return {"step": self.peak_step, "layers": layers, "live_bytes": sum(n for _, n in self.peak_buffers),
                "buffers": [{"id": int(t), "bytes": int(n)} for t, n in self.peak_buffers]}

    def to_dict(self) -> dict:
        fused = [b for b in self.steps if not isinstance(b, int)]
        return {"arena_bytes": self.arena, "naive_bytes": self.naive, "lower_bound_bytes": self.lower_bound,
                "alignment": self.alignment, "n_buffers": len(self.buffers), "n_steps": len(self.steps),
                "fused_blocks": [{"layers": b.layers, "scratch_bytes": b.scratch, "in_place": b.in_place}
                                 for b in fused],
                "input_offset": self.input_offset, "pre_scratch_bytes": self.pre_scratch,
                "pre_scratch_offset": self.pre_scratch_offset, "peak": self.peak(),
                "overlaps": [{"input": int(x), "output": int(y), "lead_bytes": int(lead)}
                             for x, (y, lead) in sorted(self.overlaps.items())]}


def _align(x: int, a: int) -> int:
    return (x + a - 1) // a * a


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


def _chains(pairs: dict | None) -> dict:
    """Buffer id → {member id: offset relative to the chain's lowest member} for every buffer in an
    overlappable pair (``pairs``: input id → (output id, lead)); pairs sharing a buffer form one
    chain (an output that is the next pair's input)."""
    rel: dict[int, dict] = {}
    for x, (y, lead) in (pairs or {}).items():
        cx, cy = rel.get(x), rel.get(y)
        if cx is None and cy is None:
            c = {y: 0, x: lead}
        elif cy is None:
            c = {**cx, y: cx[x] - lead}
        elif cx is None:
            c = {**cy, x: cy[y] + lead}
        else:  # joining two chains (not produced by a linear graph; keep it simple)
            continue
        low = min(c.values())
        c = {k: v - low for k, v in c.items()}
        for k in c:
            rel[k] = c
    return rel


def _first_fit(order: list, alignment: int, pairs: dict | None = None) -> dict:
    """buffer id → offset: each buffer at the lowest aligned offset free of every already placed
    buffer whose lifetime intersects its own. The buffers of an overlappable chain (``pairs``:
    input id → (output id, lead bytes), :func:`_chains`) are placed together, at their fixed
    relative offsets, when the first of them comes up."""
    chains = _chains(pairs)
    by_id = {b.tensor: b for b in order}
    placed: list[tuple[int, Buffer]] = []
    offs: dict[int, int] = {}
    for b in order:
        if b.tensor in offs:
            continue
        group = chains.get(b.tensor, {b.tensor: 0})
        members = [(by_id[k], r) for k, r in group.items() if k in by_id]
        cands = {0}
        for m, r in members:
            cands.update(_align(o + p.size - r, alignment) for o, p in placed if p.live_with(m))
        for base in sorted(c for c in cands if c >= 0):
            if all(base + r + m.size <= o or o + p.size <= base + r
                   for m, r in members for o, p in placed if p.live_with(m)):
                break
        for m, r in members:
            offs[m.tensor] = base + r
            placed.append((base + r, m))
    return offs


def place(buffers: list, alignment: int = 16, pairs: dict | None = None) -> int:
    """Assign ``offset`` to every :class:`Buffer` (first fit in the best of several deterministic
    orders, see the module docstring) and return the arena size in bytes (aligned). ``pairs``:
    overlappable input → (output, lead bytes) buffer pairs (see :func:`_first_fit`)."""
    if alignment not in (4, 8, 16):
        raise ExportError(f"alignment {alignment}", hint="use 4 or 16 bytes")
    best = None
    base = sorted(buffers, key=_ORDERS[0])
    rng = random.Random(0)  # fixed seed: the plan is a pure function of the buffers
    orders = [sorted(buffers, key=k) for k in _ORDERS]
    for _ in range(_N_RANDOM_ORDERS):
        o = list(base)
        rng.shuffle(o)
        orders.append(o)
    for order in orders:
        offs = _first_fit(order, alignment, pairs)
        end = max((offs[b.tensor] + b.size for b in buffers), default=0)
        if best is None or end < best[0]:
            best = (end, offs)
    for b in buffers:
        b.offset = best[1][b.tensor]
    return _align(best[0], alignment)


def plan_arena(graph, alignment: int = 16, buffer_sizes: dict | None = None, *, steps: list | None = None,
               input_in_arena: bool = False, pre_scratch: int = 0, overlap: bool = False) -> Plan:
    """Lifetimes from the graph (:meth:`~asc_edge.codegen.graph.Graph.buffers`) placed by :func:`place`.

    Args:
        graph: :class:`~asc_edge.codegen.graph.Graph`.
        alignment: offset alignment in bytes (4, 8 or 16; CMSIS-NN/TFLM use 16).
        buffer_sizes: optional buffer id → bytes override.
        steps: execution schedule (:func:`asc_edge.codegen.patterns.schedule`); default one step
            per layer (no fusion).
        input_in_arena: plan the graph input inside the arena (device builds).
        pre_scratch: bytes reserved at step -1 beside the input (frontend work buffers).
        overlap: let layers whose kernels allow it write their output over their dying input
            (:func:`_overlap_pairs`); ``lower_bound`` and the peak then count a pair's shared bytes once.

    Returns a :class:`Plan` (all sizes in bytes), validated with :func:`validate_plan`.
    """
    steps = [L.index for L in graph.layers] if steps is None else list(steps)
    bufs, alias = graph.buffers(steps, input_in_arena, pre_scratch)
    for b in bufs:
        b.size = int((buffer_sizes or {}).get(b.tensor, b.size))
    arena = place(bufs, alignment)
    overlaps = _overlap_pairs(graph, steps, bufs, alias, alignment) if overlap else {}
    if overlaps:
        plain = {b.tensor: b.offset for b in bufs}
        arena_o = place(bufs, alignment, overlaps)
        if arena_o >= arena:  # no gain: the plain placement
            for b in bufs:
                b.offset = plain[b.tensor]
            overlaps = {}
        else:
            arena = arena_o
    naive = sum(_align(b.size, alignment) for b in bufs if b.tensor >= 0)
    by_id = {b.tensor: b for b in bufs}

    def live_bytes(bs: list) -> int:  # an overlapped pair live together shares its common bytes
        ids = {b.tensor for b in bs}
        shared = sum(max(0, min(by_id[y].size - lead, by_id[x].size)) for x, (y, lead) in overlaps.items()
                     if x in ids and y in ids)
        return sum(b.size for b in bs) - shared

    live = {k: [b for b in bufs if b.first <= k <= b.last] for k in range(-1, len(steps))}
    lower = max(live_bytes([b for b in live[k] if b.tensor >= 0]) for k in live)
    # the step with the most live bytes (tensors, scratch and the frontend area): where the memory goes
    peak_step = max(live, key=lambda k: (live_bytes(live[k]), -k))
    offsets = {}
    for tid in graph.tensors:
        r = graph.root(tid)
        r = alias.get(r, r)
        if r in by_id:
            offsets[tid] = by_id[r].offset
    in_root = graph.root(graph.input)
    plan = Plan(buffers=by_id, arena=arena, naive=naive, lower_bound=lower, alignment=alignment, offsets=offsets,
                steps=steps, input_offset=by_id[in_root].offset if input_in_arena else None,
                pre_scratch=int(pre_scratch),
                pre_scratch_offset=by_id[PRE_SCRATCH_ID].offset if pre_scratch > 0 else None,
                peak_step=peak_step, peak_buffers=sorted(((b.tensor, b.size) for b in live[peak_step]),
                                                         key=lambda t: (-t[1], t[0])),
                overlaps=overlaps)
    validate_plan(plan)
    return plan


def _overlap_pairs(graph, steps: list, bufs: list, alias: dict, alignment: int) -> dict:
    """``{input buffer id: (output buffer id, lead bytes)}`` for every single-layer step whose
    operator may write its output over its own input (:meth:`~asc_edge.codegen.ops.Op.overlap_lead_bytes`;
    the output then starts ``lead`` bytes, rounded up to ``alignment``, before the input), whose
    input buffer dies at that step (and is not the graph input) and whose output buffer is born
    there."""
    by_id = {b.tensor: b for b in bufs}
    g_in = graph.root(graph.input)
    pairs = {}
    for s_idx, st in enumerate(steps):
        if not isinstance(st, int):
            continue
        L = graph.layers[st]
        if len([t for t in L.inputs if t >= 0]) != 1:
            continue
        xr, yr = graph.root(L.inputs[0]), graph.root(L.output)
        xr, yr = alias.get(xr, xr), alias.get(yr, yr)
        X, Y = by_id.get(xr), by_id.get(yr)
        if X is None or Y is None or xr == g_in or xr == yr or X.last != s_idx or Y.first != s_idx:
            continue
        lead = L.entry.overlap_lead_bytes(L, graph)
        if lead is not None:
            pairs[xr] = (yr, _align(int(lead), alignment))
    return pairs


def _overlap_ok(overlaps: dict, x: Buffer, y: Buffer) -> bool:
    """Whether input buffer ``x`` may overlap output buffer ``y``: a declared pair with ``y``
    starting at least the kernel's lead before ``x``."""
    pair = overlaps.get(x.tensor)
    return pair is not None and pair[0] == y.tensor and x.offset - y.offset >= pair[1]


def validate_plan(plan: Plan) -> None:
    """Raise ExportError if two buffers with intersecting lifetimes overlap in memory (except an
    overlapped input / output pair with at least its lead, ``plan.overlaps``), a buffer leaves the
    arena, or an offset is misaligned."""
    bs = sorted(plan.buffers.values(), key=lambda b: b.tensor)
    for i, a in enumerate(bs):
        if a.offset < 0 or a.offset % plan.alignment or a.offset + a.size > plan.arena:
            raise ExportError(f"buffer of tensor {a.tensor} at {a.offset}+{a.size} is outside the "
                              f"{plan.arena}-byte arena or misaligned", hint="planner bug")
        for b in bs[i + 1:]:
            if (a.live_with(b) and a.offset < b.offset + b.size and b.offset < a.offset + a.size
                    and not _overlap_ok(plan.overlaps, a, b) and not _overlap_ok(plan.overlaps, b, a)):
                raise ExportError(f"tensors {a.tensor} and {b.tensor} are live together (layers "
                                  f"{max(a.first, b.first)}..{min(a.last, b.last)}) and overlap in the arena",
                                  hint="planner bug")


def plan_for_device(graph, pre_scratch: int = 0, alignment: int = 16) -> Plan:
    """The plan ``asc-edge export`` emits: inverted-residual blocks fused row by row
    (:func:`asc_edge.codegen.patterns.schedule`), the int8 input planned inside the arena,
    ``pre_scratch`` bytes (the frontend's work area, bytes) beside it before layer 0, and
    overlapped input / output buffers where the kernels allow it."""
    from .patterns import schedule

    return plan_arena(graph, alignment, steps=schedule(graph), input_in_arena=True, pre_scratch=pre_scratch,
                      overlap=True)
