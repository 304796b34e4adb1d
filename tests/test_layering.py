"""Dependencies flow one way (docs: /work/shared/ARCHITECTURE.md, issue 10 item 6).

``data → features → models → train`` and ``export → codegen → device``: every ``import`` of every
module under ``asc_edge/`` (module level and inside functions, parsed with :mod:`ast`, nothing is
executed) is resolved to the package it names; an import of a shared top-level module
(``checkpoint.py``, ``complexity.py``, ``report/`` …) is followed to what *that* module imports, so a
backward edge cannot hide behind a helper. Also: only ``asc_edge/codegen`` reads ``.tflite``
flatbuffers (through :mod:`asc_edge.codegen.tflite_reader`).
"""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "asc_edge"
LAYERS = ("data", "features", "models", "train", "export", "codegen", "device")
ENTRY_POINTS = ("cli", "__main__")  # may import everything; nothing imports them

FORBIDDEN = [
    ("export", "train"), ("device", "train"),
    ("codegen", "export"),
    ("codegen", "device"), ("codegen", "train"),
    ("models", "train"),
    ("features", "models"), ("features", "train"),
    ("data", "features"), ("data", "models"), ("data", "train"),
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _imports(path: Path) -> set[str]:
    """Absolute names of every asc_edge module (or module attribute) ``path`` imports, at any depth."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[:len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)  # `from asc_edge import train`
    return {m for m in out if m == "asc_edge" or m.startswith("asc_edge.")}


def _top(module: str) -> str | None:
    """``asc_edge.export.tflite`` → ``export``; ``asc_edge`` → None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


@lru_cache(maxsize=None)
def _edges() -> dict[str, dict[str, list[str]]]:
    """module → {layer it reaches → the import chain}, following shared (non-layer) modules."""
    modules = _modules()
    direct = {m: _imports(p) for m, p in modules.items()}

    def resolve(target: str) -> str | None:  # the module file an imported name lives in
        while target and target not in modules:
            target = target.rpartition(".")[0]
        return target or None

    reach: dict[str, dict[str, list[str]]] = {}
    for start in modules:
        found: dict[str, list[str]] = {}
        stack, seen = [(start, [start])], {start}
        while stack:
            mod, chain = stack.pop()
            for imp in sorted(direct[mod]):
                top = _top(imp)
                if top in LAYERS:
                    found.setdefault(top, chain + [imp])
                    continue
                target = resolve(imp)
                if target and target not in seen and _top(target) not in ENTRY_POINTS:
                    seen.add(target)
                    stack.append((target, chain + [target]))
        reach[start] = found
    return reach


def test_import_parser_sees_the_known_edges():
    """Sanity check of the parser itself: relative, function-level and `from pkg import module` imports."""
    edges = _edges()
    assert "models" in edges["asc_edge.checkpoint"]           # from .models import ... (module level)
    assert "codegen" in edges["asc_edge.export.pipeline"]     # imports inside export_model()
    assert "train" in edges["asc_edge.cli"]                   # from .train import ... inside a command
    assert _top("asc_edge.features.splits") == "features"


@pytest.mark.parametrize("src,dst", FORBIDDEN)
def test_no_backward_import(src, dst):
    bad = {m: found[dst] for m, found in _edges().items() if _top(m) == src and dst in found}
    assert not bad, f"{src} must not import {dst}:\n" + "\n".join(" -> ".join(chain) for chain in bad.values())


def test_only_codegen_reads_tflite_flatbuffers():
    """One ``.tflite`` reader (:mod:`asc_edge.codegen.tflite_reader`): outside ``asc_edge/codegen`` no
    module imports the PyPI ``tflite`` package or any ``schema_py_generated`` binding."""
    bad = []
    for mod, path in _modules().items():
        if _top(mod) == "codegen":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            bad += [f"{mod}: {n}" for n in names if n == "tflite" or n.startswith("tflite.")
                    or n.endswith("schema_py_generated")]
    assert not bad, "read .tflite files with asc_edge.codegen.tflite_reader.read_tflite:\n" + "\n".join(bad)
