"""Fused execution patterns: layer chains run as one step by one kernel, so their intermediate
tensors never exist in full.

A pattern is one registered object (the way :mod:`asc_edge.codegen.ops` registers operators):

* ``name`` and ``parts`` — the per-layer-type names of the profiled parts of its kernel, in the
  order the kernel reports them (the bench splits a fused step's instructions by them);
* :meth:`Pattern.match` — every occurrence in a graph, as :class:`FusedStep` objects (layers,
  input, output, internal tensors, in place or not);
* :meth:`Pattern.scratch_bytes` — from the kernel's C ``*_get_buffer_size``;
* :meth:`Pattern.emit` — the C statements of the fused call.

:func:`schedule` turns a graph into execution steps (a layer index, or a :class:`FusedStep`), the
schedule the planner and the C emitter consume. Every module of this package is imported by
:func:`load`.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field

__all__ = ["Pattern", "FusedStep", "register", "load", "PATTERNS", "schedule"]

PATTERNS: dict = {}


@dataclass
class FusedStep:
    """One fused step. ``pattern``: its :class:`Pattern`'s name; ``layers``: layer indices (in
    execution order, consecutive); ``input`` / ``output``: tensor ids; ``internal``: tensor ids that
    never exist in full; ``scratch``: bytes; ``in_place``: the output overwrites the input;
    ``info``: pattern-specific details (e.g. operand order)."""
    pattern: str
    layers: list
    input: int
    output: int
    internal: list
    scratch: int = 0
    in_place: bool = False
    info: dict = field(default_factory=dict)

    @property
    def first(self) -> int:
        return self.layers[0]

    @property
    def last(self) -> int:
        return self.layers[-1]

    @property
    def parts(self) -> tuple:
        return PATTERNS[self.pattern].parts


class Pattern:
    name: str = ""
    parts: tuple = ()

    def match(self, graph, consumers: dict) -> list:
        raise NotImplementedError

    def scratch_bytes(self, step: FusedStep, graph) -> int:
        raise NotImplementedError

    def emit(self, step: FusedStep, em) -> list:
        raise NotImplementedError


def register(cls):
    inst = cls()
    PATTERNS[inst.name] = inst
    return cls


_loaded = False


def load() -> None:
    global _loaded
    if not _loaded:
        for m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
            importlib.import_module(f"{__name__}.{m.name}")
        _loaded = True


def schedule(graph, fuse: bool = True) -> list:
    """Execution steps in order: a layer index (int) or a :class:`FusedStep`. Every layer appears
    exactly once; a match whose layers are not consecutive in execution order, or that overlaps an
    earlier match, stays unfused."""
    load()
    starts: dict[int, FusedStep] = {}
    if fuse:
        cons = graph.consumers()
        taken: set[int] = set()
        for pat in PATTERNS.values():
            for st in pat.match(graph, cons):
                if st.layers != list(range(st.first, st.last + 1)) or taken & set(st.layers):
                    continue
                st.scratch = int(pat.scratch_bytes(st, graph))
                starts[st.first] = st
                taken |= set(st.layers)
    steps, skip = [], set()
    for L in graph.layers:
        if L.index in skip:
            continue
        if L.index in starts:
            steps.append(starts[L.index])
            skip |= set(starts[L.index].layers)
        else:
            steps.append(L.index)
    return steps
