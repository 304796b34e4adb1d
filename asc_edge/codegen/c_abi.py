"""The C ABI of ``firmware/nn`` read from its header — the one source of truth for parameter structs
and shared constants.

``firmware/nn/asc_nn.h`` is preprocessed (``gcc -E``, with the fixed-width integer types declared
for the parser) and parsed with ``pycparser``. From each ``typedef struct {...} name;`` it derives

* :func:`params` — a frozen dataclass per struct (fields in header order, nested structs as tuples
  in their own field order, pointers as C expressions / symbol names): the typed parameters a
  :class:`~asc_edge.codegen.graph.Layer` carries;
* :func:`initializer` — the C *designated* initialiser of such a value (``{.input_offset = -3,
  .stride = {.h = 2, .w = 2}, ...}``), so a renamed or reordered field breaks the build rather than
  silently shifting values;
* :func:`ctypes_struct` — the ``ctypes.Structure`` with the same layout, for the host kernel tests;

and :func:`define` reads integer ``#define`` constants (``ASC_PW_MAX_K``), so no constant is copied
by hand into Python.
"""

from __future__ import annotations

import ctypes as C
import dataclasses
import functools
import re
import subprocess
from pathlib import Path

from asc_edge.errors import ExportError

__all__ = ["NN_HEADER", "structs", "params", "initializer", "ctypes_struct", "define", "StructField"]

NN_HEADER = Path(__file__).resolve().parents[2] / "firmware" / "nn" / "asc_nn.h"

_STDINT = """typedef signed char int8_t; typedef unsigned char uint8_t; typedef short int16_t;
typedef unsigned short uint16_t; typedef int int32_t; typedef unsigned int uint32_t;
typedef long long int64_t; typedef unsigned long long uint64_t;
"""
_SCALARS = {"int8_t": C.c_int8, "uint8_t": C.c_uint8, "int16_t": C.c_int16, "uint16_t": C.c_uint16,
            "int32_t": C.c_int32, "uint32_t": C.c_uint32, "int64_t": C.c_int64, "uint64_t": C.c_uint64,
            "int": C.c_int, "void": None}


@dataclasses.dataclass(frozen=True)
class StructField:
    """One struct member: ``name``; ``ctype`` (the scalar or struct type name); ``pointer``
    (pointer depth)."""
    name: str
    ctype: str
    pointer: int = 0


@functools.lru_cache(maxsize=None)
def _parse(header: str) -> tuple[dict, dict]:
    """(struct name → tuple of StructField, define name → int) of ``header``."""
    from pycparser import c_ast, c_parser

    path = Path(header)
    text = path.read_text()
    body = re.sub(r"#\s*include\s*<[^>]+>", "", text)
    try:
        pre = subprocess.run(["gcc", "-E", "-P", "-x", "c", "-"], input=_STDINT + body, capture_output=True,
                             text=True, check=True, cwd=path.parent).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise ExportError(f"cannot preprocess {path}: {exc}", hint="install gcc (scripts/setup.sh)") from None
    ast = c_parser.CParser().parse(pre, filename=str(path))
    structs: dict[str, tuple] = {}
    for node in ast.ext:
        if not isinstance(node, c_ast.Typedef) or not isinstance(node.type, c_ast.TypeDecl):
            continue
        st = node.type.type
        if not isinstance(st, c_ast.Struct) or st.decls is None:
            continue
        fields = []
        for d in st.decls:
            t, depth = d.type, 0
            while isinstance(t, c_ast.PtrDecl):
                t, depth = t.type, depth + 1
            if not isinstance(t, c_ast.TypeDecl) or not isinstance(t.type, c_ast.IdentifierType):
                raise ExportError(f"{path}: struct {node.name} member {d.name}: unsupported declarator",
                                  hint="parameter structs hold scalars, structs and pointers only")
            fields.append(StructField(d.name, " ".join(t.type.names), depth))
        structs[node.name] = tuple(fields)
    defines = {m.group(1): int(m.group(2), 0)
               for m in re.finditer(r"^\s*#\s*define\s+(ASC_\w+)\s+(-?(?:0x[0-9a-fA-F]+|\d+))\b", text, re.M)}
    return structs, defines


def structs(header: Path = NN_HEADER) -> dict:
    """struct name → tuple of :class:`StructField`, in declaration order."""
    return _parse(str(header))[0]


def define(name: str, header: Path = NN_HEADER) -> int:
    """An integer ``#define`` of the header (e.g. ``define("ASC_PW_MAX_K")`` → 128).

    Raises:
        ExportError: no such define."""
    d = _parse(str(header))[1]
    if name not in d:
        raise ExportError(f"{name} is not defined in {header}", hint="a kernel/code generator mismatch")
    return d[name]


def _fields(struct: str, header: Path) -> tuple:
    s = structs(header)
    if struct not in s:
        raise ExportError(f"no struct {struct} in {header}", hint="a kernel/code generator mismatch")
    return s[struct]


@functools.lru_cache(maxsize=None)
def _dataclass(struct: str, header: str):
    fields = []
    for f in _fields(struct, Path(header)):
        typ = object if f.pointer else (int if f.ctype in _SCALARS else tuple)
        fields.append((f.name, typ))
    cls = dataclasses.make_dataclass(struct, fields, frozen=True)
    cls.__doc__ = f"Parameters of the C struct ``{struct}`` (firmware/nn/asc_nn.h), fields in header order."
    return cls


def params(struct: str, header: Path = NN_HEADER, **values):
    """A frozen instance of ``struct``'s dataclass. Scalars are ints; a nested struct is a tuple in
    its own field order (``stride=(2, 1)``, ``activation=(-128, 127)``); a pointer is a C
    expression string (a symbol name, ``"0"`` for NULL).

    Raises:
        TypeError: a missing or unknown field."""
    cls = _dataclass(struct, str(header))
    v = {}
    for f in dataclasses.fields(cls):
        if f.name not in values:
            raise TypeError(f"{struct}: missing field {f.name!r}")
        x = values.pop(f.name)
        if f.type is tuple:  # nested struct: ints, or C expressions for its pointer members
            v[f.name] = tuple(a if isinstance(a, str) else int(a) for a in x)
        else:
            v[f.name] = int(x) if f.type is int else x
    if values:
        raise TypeError(f"{struct}: unknown field(s) {sorted(values)}")
    return cls(**v)


def _init_value(f: StructField, value, header: Path) -> str:
    if f.pointer:
        return str(value)
    if f.ctype in _SCALARS:
        return str(int(value))
    sub = _fields(f.ctype, header)
    if len(sub) != len(value):
        raise TypeError(f"{f.ctype} has {len(sub)} fields, got {value!r}")
    return "{" + ", ".join(f".{s.name} = {_init_value(s, x, header)}" for s, x in zip(sub, value)) + "}"


def initializer(value, header: Path = NN_HEADER) -> str:
    """The C designated initialiser of a :func:`params` value (or of any dataclass whose class name
    is the struct's name)."""
    struct = type(value).__name__
    return "{" + ", ".join(f".{f.name} = {_init_value(f, getattr(value, f.name), header)}"
                           for f in _fields(struct, header)) + "}"


@functools.lru_cache(maxsize=None)
def _ctypes(struct: str, header: str):
    fields = []
    for f in _fields(struct, Path(header)):
        if f.ctype in _SCALARS:
            base = _SCALARS[f.ctype]
        else:
            base = _ctypes(f.ctype, header)
        t = base
        for _ in range(f.pointer):
            t = C.c_void_p if t is None else C.POINTER(t)
        fields.append((f.name, t))
    return type(struct, (C.Structure,), {"_fields_": fields})


def ctypes_struct(struct: str, header: Path = NN_HEADER):
    """The ``ctypes.Structure`` subclass with ``struct``'s layout (nested structs included)."""
    return _ctypes(struct, str(header))


def to_ctypes(value, header: Path = NN_HEADER):
    """A :func:`params` value (pointer fields must be None or ctypes pointers) as its
    ``ctypes.Structure``."""
    struct = type(value).__name__
    cls = ctypes_struct(struct, header)

    def conv(f: StructField, x):
        if f.pointer or f.ctype in _SCALARS:
            return x if f.pointer else int(x)
        sub = _fields(f.ctype, header)
        return ctypes_struct(f.ctype, header)(*[conv(s, a) for s, a in zip(sub, x)])

    return cls(*[conv(f, getattr(value, f.name)) for f in _fields(struct, header)])
