"""Host build of the firmware/nn int8 kernel library + ctypes wrappers (for bit-exactness tests).

``build_kernels(variant)`` compiles every ``firmware/nn/*.c`` with the host ``gcc`` into a shared
library under ``build/host/`` (git-ignored); the file name carries a hash of the sources and flags,
so edits trigger a rebuild.  Variants:

* ``"portable"`` - plain C paths (what any compiler builds),
* ``"dsp"``      - the Cortex-M4 DSP-extension paths, with the ACLE intrinsics emulated in portable C
  (``-DASC_NN_EMULATE_DSP``, ``firmware/nn/asc_acle_host.h``).

``HostKernels(variant)`` exposes one numpy-friendly method per kernel; inputs are NHWC int8 arrays,
quantisation parameters are the integers from :mod:`asc_edge.codegen.quant`.
"""

from __future__ import annotations

import ctypes as C
import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Sequence

import numpy as np

from asc_edge.paths import build_root

from . import c_abi

REPO_ROOT = Path(__file__).resolve().parents[2]
NN_DIR = REPO_ROOT / "firmware" / "nn"
BUILD_DIR = build_root() / "host"

HOST_CFLAGS = ["-std=c99", "-O2", "-fPIC", "-shared", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off"]
VARIANT_FLAGS = {"portable": [], "dsp": ["-DASC_NN_EMULATE_DSP"]}
CORTEX_M4_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-O2",
                   "-ffp-contract=off", "-std=c99", "-Wall", "-Wextra", "-Werror"]


class KernelError(RuntimeError):
    pass


def kernel_sources() -> list[Path]:
    return sorted(NN_DIR.glob("*.c"))


def build_shared_library(name: str, sources: Sequence[Path], include_dirs: Sequence[Path], flags: Sequence[str],
                         cc: str | None = None, build_dir: Path | None = None) -> Path:
    """Compile ``sources`` (+ every header in ``include_dirs``, hashed) into ``lib<name>_<hash>.so``
    with ``cc`` (default ``$CC`` or ``gcc``) and ``flags``; returns its path. The hash covers the
    compiler, the flags and every source and header, so an existing library is reused only when
    nothing changed. Written to a temporary name, then renamed.

    Raises:
        KernelError: the compiler's message (and the command) on a build failure.
    """
    cc = cc or os.environ.get("CC", "gcc")
    h = hashlib.sha256(" ".join([cc, *flags]).encode())
    headers = [p for d in include_dirs for p in sorted(Path(d).glob("*.h"))]
    for p in [*sources, *headers]:
        h.update(Path(p).name.encode())
        h.update(Path(p).read_bytes())
    out_dir = Path(build_dir or BUILD_DIR)
    out_dir.mkdir(parents=True, exist_ok=True)
    lib = out_dir / f"lib{name}_{h.hexdigest()[:16]}.so"
    if lib.exists():
        return lib
    tmp = lib.with_suffix(f".tmp{os.getpid()}")
    cmd = [cc, *flags, *[f"-I{d}" for d in include_dirs], *map(str, sources), "-o", str(tmp)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise KernelError(f"host build failed ({' '.join(cmd)}):\n{res.stderr[-3000:]}")
    os.replace(tmp, lib)
    return lib


def build_kernels(variant: str = "portable", cc: str | None = None, build_dir: Path | None = None) -> Path:
    """Compile firmware/nn into a host shared library; returns its path (cached by content hash)."""
    if variant not in VARIANT_FLAGS:
        raise ValueError(f"unknown variant {variant!r}")
    return build_shared_library(f"asc_nn_{variant}", kernel_sources(), [NN_DIR], HOST_CFLAGS + VARIANT_FLAGS[variant],
                                cc=cc, build_dir=build_dir)


def cross_compile(out_dir: Path, cc: str = "arm-none-eabi-gcc", extra: Sequence[str] = ()) -> list[Path]:
    """Compile every kernel source for the Cortex-M4 (objects only); raises KernelError on failure."""
    if shutil.which(cc) is None:
        raise KernelError(f"{cc} not found")
    out_dir.mkdir(parents=True, exist_ok=True)
    objs = []
    for src in kernel_sources():
        obj = out_dir / (src.stem + ".o")
        cmd = [cc, *CORTEX_M4_FLAGS, *extra, f"-I{NN_DIR}", "-c", str(src), "-o", str(obj)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise KernelError(f"cross build failed ({' '.join(cmd)}):\n{res.stderr}")
        objs.append(obj)
    return objs


# ---------------------------------------------------------------------------------------------
# ctypes mirrors of asc_nn.h
# ---------------------------------------------------------------------------------------------
# ctypes mirrors of asc_nn.h, generated from the header (asc_edge.codegen.c_abi): one source of truth.
# Resolved on first use (module __getattr__), so importing this module runs no preprocessor.
_STRUCTS = {"Dims": "asc_nn_dims", "Tile": "asc_nn_tile", "Activation": "asc_nn_activation",
            "Context": "asc_nn_context", "PerChannelQuant": "asc_nn_per_channel_quant",
            "ConvParams": "asc_nn_conv_params", "DwConvParams": "asc_nn_dw_conv_params",
            "FcParams": "asc_nn_fc_params", "PoolParams": "asc_nn_pool_params", "AddParams": "asc_nn_add_params",
            "MulParams": "asc_nn_mul_params", "MeanParams": "asc_nn_mean_params"}


class _Structs:
    def __getattr__(self, name: str):
        return c_abi.ctypes_struct(_STRUCTS[name])


_s = _Structs()


def __getattr__(name: str):
    if name in _STRUCTS:
        return c_abi.ctypes_struct(_STRUCTS[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_SIZE_LIB: dict = {}


def buffer_size(function: str, *args) -> int:
    """Call a ``firmware/nn`` ``*_get_buffer_size`` function in the host build of the DSP kernels
    (the build the device runs) and return its result in bytes. Each argument is a ctypes
    structure (passed by pointer) or ``(struct name, tuple of field values)`` (e.g.
    ``("asc_nn_dims", (1, 17, 64, 32))``).

    Raises:
        ExportError: the function rejects its arguments (returns a negative size)."""
    from asc_edge.errors import ExportError

    if "dsp" not in _SIZE_LIB:
        _SIZE_LIB["dsp"] = C.CDLL(str(build_kernels("dsp")))
    fn = getattr(_SIZE_LIB["dsp"], function)
    fn.restype = C.c_int32
    cargs = []
    for a in args:
        if isinstance(a, tuple):
            a = c_abi.ctypes_struct(a[0])(*[int(v) for v in a[1]])
        cargs.append(C.byref(a))
    n = int(fn(*cargs))
    if n < 0:
        raise ExportError(f"{function} rejected its arguments ({n})", hint="a kernel/code generator mismatch")
    return n


_P = C.POINTER
_i8p = _P(C.c_int8)
_i32p = _P(C.c_int32)


def _dims(shape: Sequence[int]):
    """``asc_nn_dims`` of a shape of rank ≤ 4 (:func:`asc_edge.codegen.graph.nhwc`)."""
    from .graph import nhwc

    return _s.Dims(*nhwc(shape))


def _i8(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    if a.dtype != np.int8:
        raise TypeError(f"expected int8 array, got {a.dtype}")
    return a


def _i32(a) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.int64).astype(np.int32))


def _ptr8(a: np.ndarray):
    return a.ctypes.data_as(_i8p)


def _ptr32(a: np.ndarray | None):
    return None if a is None else a.ctypes.data_as(_i32p)


def _act(act):
    lo, hi = act if act is not None else (-128, 127)
    return _s.Activation(int(lo), int(hi))


class HostKernels:
    """ctypes wrappers around one host build of firmware/nn."""

    def __init__(self, variant: str = "portable", lib_path: Path | None = None):
        self.variant = variant
        self.path = Path(lib_path) if lib_path else build_kernels(variant)
        self.lib = C.CDLL(str(self.path))
        L = self.lib
        conv_sig = [_P(_s.Context), _P(_s.ConvParams), _P(_s.PerChannelQuant), _P(_s.Dims), _i8p, _P(_s.Dims), _i8p,
                    _i32p, _P(_s.Dims), _i8p]
        for name in ("asc_convolve_s8", "asc_convolve_1x1_s8", "asc_convolve_wrapper_s8"):
            getattr(L, name).argtypes = conv_sig
            getattr(L, name).restype = C.c_int
        L.asc_convolve_s8_get_buffer_size.argtypes = [_P(_s.Dims), _P(_s.Dims)]
        L.asc_convolve_s8_get_buffer_size.restype = C.c_int32
        L.asc_depthwise_conv_s8.argtypes = [_P(_s.Context), _P(_s.DwConvParams), _P(_s.PerChannelQuant), _P(_s.Dims),
                                            _i8p, _P(_s.Dims), _i8p, _i32p, _P(_s.Dims), _i8p]
        L.asc_depthwise_conv_s8.restype = C.c_int
        L.asc_fully_connected_s8.argtypes = [_P(_s.FcParams), _P(_s.PerChannelQuant), C.c_int32, _P(_s.Dims), _i8p,
                                             _P(_s.Dims), _i8p, _i32p, _P(_s.Dims), _i8p]
        L.asc_fully_connected_s8.restype = C.c_int
        L.asc_avgpool_s8.argtypes = [_P(_s.PoolParams), _P(_s.Dims), _i8p, _P(_s.Dims), _i8p]
        L.asc_avgpool_s8.restype = C.c_int
        L.asc_mean_s8.argtypes = [_P(_s.MeanParams), _P(_s.Dims), _i8p, _i8p]
        L.asc_mean_s8.restype = C.c_int
        L.asc_add_s8.argtypes = [_P(_s.AddParams), _P(_s.Dims), _i8p, _P(_s.Dims), _i8p, _P(_s.Dims), _i8p]
        L.asc_add_s8.restype = C.c_int
        L.asc_mul_s8.argtypes = [_P(_s.MulParams), _P(_s.Dims), _i8p, _P(_s.Dims), _i8p, _P(_s.Dims), _i8p]
        L.asc_mul_s8.restype = C.c_int
        L.asc_strided_slice_s8.argtypes = [_P(_s.Dims), _i8p, _P(_s.Dims), _P(_s.Dims), _P(_s.Dims), _i8p]
        L.asc_strided_slice_s8.restype = C.c_int
        L.asc_concatenation_s8.argtypes = [_P(_i8p), _P(_s.Dims), C.c_int32, C.c_int32, _P(_s.Dims), _i8p]
        L.asc_concatenation_s8.restype = C.c_int
        L.asc_pad_s8.argtypes = [_P(_s.Dims), _i8p, _P(_s.Dims), _P(_s.Dims), C.c_int8, _i8p]
        L.asc_pad_s8.restype = C.c_int
        L.asc_reshape_s8.argtypes = [_i8p, _i8p, C.c_int32]
        L.asc_reshape_s8.restype = C.c_int
        L.asc_nn_requantize.argtypes = [C.c_int32, C.c_int32, C.c_int32]
        L.asc_nn_requantize.restype = C.c_int32

    @staticmethod
    def _check(status: int, name: str) -> None:
        if status != 0:
            raise KernelError(f"{name} returned {status}")

    # -- requantisation -------------------------------------------------------------------------
    def requantize(self, x: int, multiplier: int, shift: int) -> int:
        return int(self.lib.asc_nn_requantize(int(x), int(multiplier), int(shift)))

    # -- convolutions ---------------------------------------------------------------------------
    def conv(self, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, *, input_offset: int,
             output_offset: int, multipliers, shifts, stride=(1, 1), padding=(0, 0), dilation=(1, 1),
             out_hw: tuple[int, int], activation=None, kernel: str = "asc_convolve_s8") -> np.ndarray:
        """CONV_2D. x: NHWC int8, w: OHWI int8 (I = C_in / groups), padding = (top, left)."""
        x, w = _i8(x), _i8(w)
        n, _, _, _ = x.shape
        oc = w.shape[0]
        out = np.zeros((n, out_hw[0], out_hw[1], oc), dtype=np.int8)
        mult, sh = _i32(multipliers), _i32(shifts)
        b = None if bias is None else _i32(bias)
        fd = _s.Dims(*w.shape)
        idims = _dims(x.shape)
        size = self.lib.asc_convolve_s8_get_buffer_size(C.byref(idims), C.byref(fd))
        scratch = np.zeros(max(int(size), 1), dtype=np.int8)
        ctx = _s.Context(scratch.ctypes.data_as(C.c_void_p), int(size))
        prm = _s.ConvParams(int(input_offset), int(output_offset), _s.Tile(*stride), _s.Tile(*padding),
                         _s.Tile(*dilation), _act(activation))
        q = _s.PerChannelQuant(_ptr32(mult), _ptr32(sh))
        st = getattr(self.lib, kernel)(C.byref(ctx), C.byref(prm), C.byref(q), C.byref(idims), _ptr8(x),
                                       C.byref(fd), _ptr8(w), _ptr32(b), C.byref(_dims(out.shape)),
                                       _ptr8(out))
        self._check(st, kernel)
        return out

    def depthwise_conv(self, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, *, input_offset: int,
                       output_offset: int, multipliers, shifts, ch_mult: int = 1, stride=(1, 1),
                       padding=(0, 0), dilation=(1, 1), out_hw: tuple[int, int], activation=None
                       ) -> np.ndarray:
        """DEPTHWISE_CONV_2D. x: NHWC int8, w: [1, KH, KW, C*ch_mult] int8."""
        x, w = _i8(x), _i8(w)
        n = x.shape[0]
        oc = w.shape[3]
        out = np.zeros((n, out_hw[0], out_hw[1], oc), dtype=np.int8)
        mult, sh = _i32(multipliers), _i32(shifts)
        b = None if bias is None else _i32(bias)
        prm = _s.DwConvParams(int(input_offset), int(output_offset), int(ch_mult), _s.Tile(*stride),
                           _s.Tile(*padding), _s.Tile(*dilation), _act(activation))
        q = _s.PerChannelQuant(_ptr32(mult), _ptr32(sh))
        st = self.lib.asc_depthwise_conv_s8(None, C.byref(prm), C.byref(q), C.byref(_dims(x.shape)),
                                            _ptr8(x), C.byref(_s.Dims(*w.shape)), _ptr8(w), _ptr32(b),
                                            C.byref(_dims(out.shape)), _ptr8(out))
        self._check(st, "asc_depthwise_conv_s8")
        return out

    def fully_connected(self, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, *, input_offset: int,
                        output_offset: int, multipliers, shifts, filter_offset: int = 0,
                        activation=None) -> np.ndarray:
        """FULLY_CONNECTED. x: [batch, depth] int8, w: [units, depth] int8."""
        x, w = _i8(x), _i8(w)
        batch = x.shape[0]
        depth = int(np.prod(x.shape[1:]))
        units = w.shape[0]
        out = np.zeros((batch, units), dtype=np.int8)
        mult, sh = _i32(np.atleast_1d(multipliers)), _i32(np.atleast_1d(shifts))
        per_channel = 1 if mult.size > 1 else 0
        b = None if bias is None else _i32(bias)
        prm = _s.FcParams(int(input_offset), int(filter_offset), int(output_offset), _act(activation))
        q = _s.PerChannelQuant(_ptr32(mult), _ptr32(sh))
        st = self.lib.asc_fully_connected_s8(C.byref(prm), C.byref(q), per_channel,
                                             C.byref(_s.Dims(batch, 1, 1, depth)), _ptr8(x),
                                             C.byref(_s.Dims(units, 1, 1, depth)), _ptr8(w), _ptr32(b),
                                             C.byref(_s.Dims(batch, 1, 1, units)), _ptr8(out))
        self._check(st, "asc_fully_connected_s8")
        return out

    # -- pooling --------------------------------------------------------------------------------
    def avgpool(self, x: np.ndarray, *, filter_hw, stride=(1, 1), padding=(0, 0), out_hw,
                activation=None) -> np.ndarray:
        x = _i8(x)
        out = np.zeros((x.shape[0], out_hw[0], out_hw[1], x.shape[3]), dtype=np.int8)
        prm = _s.PoolParams(_s.Tile(*filter_hw), _s.Tile(*stride), _s.Tile(*padding), _act(activation))
        st = self.lib.asc_avgpool_s8(C.byref(prm), C.byref(_dims(x.shape)), _ptr8(x),
                                     C.byref(_dims(out.shape)), _ptr8(out))
        self._check(st, "asc_avgpool_s8")
        return out

    def mean(self, x: np.ndarray, *, input_offset: int, output_offset: int, multiplier: int, shift: int,
             activation=None) -> np.ndarray:
        """MEAN over H, W of an NHWC tensor -> [n, c]."""
        x = _i8(x)
        out = np.zeros((x.shape[0], x.shape[3]), dtype=np.int8)
        prm = _s.MeanParams(int(input_offset), int(output_offset), int(multiplier), int(shift), _act(activation))
        st = self.lib.asc_mean_s8(C.byref(prm), C.byref(_dims(x.shape)), _ptr8(x), _ptr8(out))
        self._check(st, "asc_mean_s8")
        return out

    # -- elementwise ----------------------------------------------------------------------------
    @staticmethod
    def _bshape(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
        rank = max(a.ndim, b.ndim, 4)
        a4 = a.reshape((1,) * (rank - a.ndim) + a.shape)
        b4 = b.reshape((1,) * (rank - b.ndim) + b.shape)
        out_shape = np.broadcast_shapes(a4.shape, b4.shape)
        return a4, b4, out_shape

    def add(self, x1: np.ndarray, x2: np.ndarray, *, params: dict, activation=None) -> np.ndarray:
        x1, x2 = _i8(x1), _i8(x2)
        a, b, oshape = self._bshape(x1, x2)
        out = np.zeros(oshape, dtype=np.int8)
        prm = _s.AddParams(**{k: int(v) for k, v in params.items()}, activation=_act(activation))
        st = self.lib.asc_add_s8(C.byref(prm), C.byref(_dims(a.shape)), _ptr8(a), C.byref(_dims(b.shape)),
                                 _ptr8(b), C.byref(_dims(oshape)), _ptr8(out))
        self._check(st, "asc_add_s8")
        return out

    def mul(self, x1: np.ndarray, x2: np.ndarray, *, params: dict, activation=None) -> np.ndarray:
        x1, x2 = _i8(x1), _i8(x2)
        a, b, oshape = self._bshape(x1, x2)
        out = np.zeros(oshape, dtype=np.int8)
        prm = _s.MulParams(**{k: int(v) for k, v in params.items()}, activation=_act(activation))
        st = self.lib.asc_mul_s8(C.byref(prm), C.byref(_dims(a.shape)), _ptr8(a), C.byref(_dims(b.shape)),
                                 _ptr8(b), C.byref(_dims(oshape)), _ptr8(out))
        self._check(st, "asc_mul_s8")
        return out

    # -- data movement --------------------------------------------------------------------------
    def strided_slice(self, x: np.ndarray, begin: Sequence[int], strides: Sequence[int],
                      out_shape: Sequence[int]) -> np.ndarray:
        x = _i8(x)
        out = np.zeros(tuple(out_shape), dtype=np.int8)
        st = self.lib.asc_strided_slice_s8(C.byref(_dims(x.shape)), _ptr8(x), C.byref(_s.Dims(*begin)),
                                           C.byref(_s.Dims(*strides)), C.byref(_dims(out.shape)), _ptr8(out))
        self._check(st, "asc_strided_slice_s8")
        return out

    def concatenation(self, xs: Sequence[np.ndarray], axis: int) -> np.ndarray:
        xs = [_i8(x) for x in xs]
        axis = axis % 4
        out = np.zeros(np.concatenate(xs, axis=axis).shape, dtype=np.int8)
        ptrs = (_i8p * len(xs))(*[_ptr8(x) for x in xs])
        dims = (_s.Dims * len(xs))(*[_dims(x.shape) for x in xs])
        st = self.lib.asc_concatenation_s8(ptrs, dims, len(xs), axis, C.byref(_dims(out.shape)), _ptr8(out))
        self._check(st, "asc_concatenation_s8")
        return out

    def pad(self, x: np.ndarray, paddings: Sequence[Sequence[int]], pad_value: int) -> np.ndarray:
        """paddings: 4 x (before, after) for N, H, W, C."""
        x = _i8(x)
        p = [tuple(map(int, pp)) for pp in paddings]
        out_shape = tuple(s + a + b for s, (a, b) in zip(x.shape, p))
        out = np.zeros(out_shape, dtype=np.int8)
        st = self.lib.asc_pad_s8(C.byref(_dims(x.shape)), _ptr8(x), C.byref(_s.Dims(*[a for a, _ in p])),
                                 C.byref(_s.Dims(*[b for _, b in p])), int(pad_value), _ptr8(out))
        self._check(st, "asc_pad_s8")
        return out

    def reshape(self, x: np.ndarray, shape: Sequence[int]) -> np.ndarray:
        x = _i8(x)
        out = np.zeros(tuple(shape), dtype=np.int8)
        if out.size != x.size:
            raise ValueError("reshape: element count differs")
        self._check(self.lib.asc_reshape_s8(_ptr8(x), _ptr8(out), x.size), "asc_reshape_s8")
        return out
