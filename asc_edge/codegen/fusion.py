"""Fused per-row execution: find inverted-residual blocks and build the execution schedule.

A MobileNetV2-style inverted-residual block (CP-Mobile's blocks) is the layer chain

    X → conv1x1 E (expand) → depthwise D → conv1x1 P (project) [→ ADD A(P, X)]

Layer by layer, the expanded tensor E and the depthwise output D exist in full (CP-Mobile's
first stage: 64×17×64 = 69,632 bytes each), which is why tflite-micro needs ~228 KB of arena.
Executed row by row (``asc_inverted_residual_s8`` in ``firmware/nn/asc_fused_s8.c``), only
``kh`` expanded rows, one depthwise row and (with the ADD) one projected row are alive; with a
fused ADD whose other operand ``X`` dies there, the output is written over ``X`` in place. The
arithmetic per element is unchanged, so the fused model is bit-identical to the layer graph.

Fused when: E is a 1×1 stride-1 unpadded convolution whose output feeds only D; D is a depthwise
convolution with channel multiplier 1 and dilation 1 whose output feeds only P; P is a 1×1 stride-1
convolution of D's output. The ADD joins the block when P's output feeds only an ADD whose other
operand is X with the same shape (no broadcasting). In place when X is not the graph input and
the ADD is X's last use.

:func:`schedule` returns the execution steps consumed by the planner and the C emitter.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FusedBlock", "find_inverted_residuals", "schedule", "IR_ROWS"]

# output rows per step of asc_inverted_residual_s8 (ASC_IR_ROWS in firmware/nn/asc_fused_s8.c)
IR_ROWS = 4


@dataclass
class FusedBlock:
    """One fused inverted-residual block.

    ``layers``: layer indices ``[E, D, P]`` or ``[E, D, P, A]``; ``input`` / ``output``: tensor ids
    of X and of the block's result (P's or A's output); ``internal``: tensor ids that never exist
    in full (E, D and, with an ADD, P outputs); ``scratch``: bytes of row buffers
    (``((R-1)·stride_h + kh)·W·Ce + R·Wo·Ce (+ R·Wo·Cout)``, R = :data:`IR_ROWS` output rows per
    step); ``in_place``: the output overwrites X.
    """
    layers: list
    input: int
    output: int
    internal: list
    scratch: int
    add_project_first: bool = True
    in_place: bool = False

    @property
    def first(self) -> int:
        return self.layers[0]

    @property
    def last(self) -> int:
        return self.layers[-1]


def _consumers(graph) -> dict:
    """root tensor id → list of layer indices reading it."""
    out: dict[int, list[int]] = {}
    for L in graph.layers:
        for t in L.inputs:
            if t >= 0:
                out.setdefault(graph.root(t), []).append(L.index)
    return out


def find_inverted_residuals(graph) -> list[FusedBlock]:
    """Every fusable inverted-residual block of ``graph`` (see the module docstring), in order."""
    cons = _consumers(graph)
    by_out = {L.output: L for L in graph.layers}
    T = graph.tensors
    blocks = []
    for D in graph.layers:
        if D.kind != "depthwise" or D.params["ch_mult"] != 1 or tuple(D.params["dilation"]) != (1, 1):
            continue
        E = by_out.get(D.inputs[0])
        if E is None or E.kind != "conv1x1" or tuple(E.params["stride"]) != (1, 1):
            continue
        if cons.get(graph.root(E.output)) != [D.index] or T[E.output].alias_of is not None:
            continue
        users = cons.get(graph.root(D.output), [])
        if len(users) != 1:
            continue
        P = graph.layers[users[0]]
        if P.kind != "conv1x1" or tuple(P.params["stride"]) != (1, 1) or P.inputs[0] != D.output:
            continue
        x = E.inputs[0]
        if T[x].dims[0] != 1:
            continue
        layers, internal, out = [E.index, D.index, P.index], [E.output, D.output], P.output
        add_first, in_place = True, False
        p_users = cons.get(graph.root(P.output), [])
        if len(p_users) == 1 and P.output != graph.output:
            A = graph.layers[p_users[0]]
            if (A.kind == "add" and len(A.inputs) == 2 and all(t >= 0 for t in A.inputs)
                    and graph.root(x) in (graph.root(A.inputs[0]), graph.root(A.inputs[1]))
                    and A.inputs.count(P.output) == 1
                    and T[A.inputs[0]].dims == T[A.inputs[1]].dims == T[A.output].dims):
                layers.append(A.index)
                internal.append(P.output)
                out = A.output
                add_first = A.inputs[0] == P.output
                x_last = max(cons.get(graph.root(x), [A.index]))
                in_place = (graph.root(x) != graph.input and x_last == A.index and graph.root(x) != graph.output
                            and T[A.output].alias_of is None)
        kh, sh = D.params["filter_dims"][1], D.params["stride"][0]
        w_in, ce = T[x].dims[2], T[E.output].dims[3]
        wo, co = T[out].dims[2], T[out].dims[3]
        # asc_inverted_residual_s8_get_buffer_size: ROWS output rows per step (ASC_IR_ROWS)
        rows = IR_ROWS
        scratch = ((rows - 1) * sh + kh) * w_in * ce + rows * wo * ce + (rows * wo * co if len(layers) == 4 else 0)
        blocks.append(FusedBlock(layers, x, out, internal, int(scratch), add_first, in_place))
    return blocks


def schedule(graph, fuse: bool = True) -> list:
    """Execution steps in order: a layer index (int) or a :class:`FusedBlock`. Every layer of the
    graph appears exactly once (inside a block or alone)."""
    blocks = {b.first: b for b in find_inverted_residuals(graph)} if fuse else {}
    inside = {i for b in blocks.values() for i in b.layers}
    steps = []
    for L in graph.layers:
        if L.index in blocks:
            b = blocks[L.index]
            # a block's layers must be consecutive in execution order to be one step
            if b.layers == list(range(b.first, b.last + 1)):
                steps.append(b)
                continue
            inside -= set(b.layers)
        if L.index in inside:
            continue
        steps.append(L.index)
    return steps
