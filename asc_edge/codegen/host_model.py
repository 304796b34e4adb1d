"""Host build of a generated C model (model.c + firmware/nn portable kernels) and its bit-exactness
check against the tflite-micro oracle.

:func:`build_host_model` compiles with the host ``gcc`` (``-std=c99 -O2 -ffp-contract=off -Wall
-Wextra -Werror -fPIC -shared``) into ``build/host_model/libasc_model_<hash>.so``, the hash
covering the generated sources, the kernel sources and the flags (so a rebuild happens only when
something changed). :class:`HostModel` wraps it with ctypes. :func:`compare_with_oracle` runs N
clips through both and reports every byte; on a mismatch it names the first diverging layer and
element (using :meth:`~asc_edge.export.oracle.TflmOracle.intermediates`).
"""

from __future__ import annotations

import ctypes as C
from pathlib import Path

import numpy as np

from asc_edge.errors import ExportError
from asc_edge.paths import build_root

from .kernels_host import NN_DIR, REPO_ROOT, VARIANT_FLAGS, KernelError, build_kernels, build_shared_library

__all__ = ["build_host_model", "HostModel", "compare_with_oracle", "HOST_MODEL_CFLAGS"]

HOST_MODEL_CFLAGS = ["-std=c99", "-O2", "-fPIC", "-shared", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off"]
BUILD_DIR = build_root() / "host_model"

_LAYER_FN = C.CFUNCTYPE(None, C.c_int32, C.POINTER(C.c_int8), C.c_int32, C.c_void_p)


def build_host_model(model_dir, cc: str | None = None, build_dir=None, variant: str = "portable") -> Path:
    """Compile ``model_dir/model.c`` into a shared library linked against the host build of
    ``firmware/nn`` (:func:`~asc_edge.codegen.kernels_host.build_kernels`, compiled once per variant
    and cached); returns its path. ``variant``: ``"portable"`` (plain C paths) or ``"dsp"`` (the Cortex-M4 DSP paths with
    the ACLE intrinsics emulated, ``-DASC_NN_EMULATE_DSP``). Raises ExportError (with the
    compiler's message) on failure."""
    model_dir = Path(model_dir)
    if variant not in VARIANT_FLAGS:
        raise ExportError(f"unknown kernel variant {variant!r}", hint="portable or dsp")
    try:
        kernels = build_kernels(variant, cc=cc)  # compiled once per variant, shared by every model
        return build_shared_library(f"asc_model_{variant}", [model_dir / "model.c", kernels],
                                    [model_dir, NN_DIR],
                                    HOST_MODEL_CFLAGS + VARIANT_FLAGS[variant] + [f"-Wl,-rpath,{kernels.parent}"],
                                    cc=cc, build_dir=build_dir or BUILD_DIR)
    except KernelError as exc:
        raise ExportError(f"host build of the generated model failed:\n{exc}", hint="a code generator bug") from exc


class HostModel:
    """ctypes wrapper of a built model library.

    Args:
        lib_path: from :func:`build_host_model`.
        graph: the :class:`~asc_edge.codegen.graph.Graph` it was generated from (shapes, layer →
            tensor mapping for debug mode).
        arena_size: ``ASC_MODEL_ARENA_SIZE`` (bytes).
    """

    def __init__(self, lib_path, graph, arena_size: int):
        self.path = Path(lib_path)
        self.lib = C.CDLL(str(self.path))
        self.graph = graph
        self.arena_size = int(arena_size)
        self.lib.asc_model_invoke.argtypes = [C.POINTER(C.c_int8), C.POINTER(C.c_int8), C.c_void_p]
        self.lib.asc_model_invoke.restype = C.c_int
        self.lib.asc_model_invoke_debug.argtypes = [C.POINTER(C.c_int8), C.POINTER(C.c_int8), C.c_void_p,
                                                    _LAYER_FN, C.c_void_p]
        self.lib.asc_model_invoke_debug.restype = C.c_int
        t_in, t_out = graph.tensors[graph.input], graph.tensors[graph.output]
        self.input_shape, self.output_size = tuple(t_in.dims), t_out.size
        self._arena = (C.c_uint8 * (self.arena_size + 16))()

    def _arena_ptr(self) -> int:
        a = C.addressof(self._arena)
        return (a + 15) // 16 * 16

    def _prep(self, q) -> np.ndarray:
        q = np.ascontiguousarray(q)
        if q.dtype != np.int8 or q.size != int(np.prod(self.input_shape)):
            raise ExportError(f"host model input {q.dtype} {q.shape}, expected int8 {self.input_shape}",
                              hint="quantize() the features (NHWC)")
        return q

    def invoke(self, q, debug: bool = False):
        """One clip: int8 NHWC ``(1, H, W, C)`` (or ``(H, W, C)``) → int8 logits ``(n_classes,)``.
        With ``debug=True`` returns ``(logits, [layer outputs as int8 arrays in layer order])``
        (each shaped like its tensor).

        Raises:
            ExportError: wrong input, or the model returned a kernel error ``-(layer+1)``.
        """
        q = self._prep(q)
        out = np.zeros(self.output_size, np.int8)
        ip, op = q.ctypes.data_as(C.POINTER(C.c_int8)), out.ctypes.data_as(C.POINTER(C.c_int8))
        if not debug:
            rc = self.lib.asc_model_invoke(ip, op, self._arena_ptr())
            layers = None
        else:
            layers = [None] * len(self.graph.layers)

            def cb(idx, data, nbytes, _user):
                layers[idx] = np.ctypeslib.as_array(data, shape=(nbytes,)).copy()

            fn = _LAYER_FN(cb)
            rc = self.lib.asc_model_invoke_debug(ip, op, self._arena_ptr(), fn, None)
            for L in self.graph.layers:
                if layers[L.index] is not None:
                    layers[L.index] = layers[L.index].reshape(self.graph.tensors[L.output].shape)
        if rc != 0:
            raise ExportError(f"generated model: kernel error in layer {-rc - 1}", hint="a code generator bug")
        return (out, layers) if debug else out


def compare_with_oracle(oracle, host: HostModel, features, n: int | None = None, *, debug_layers: int = 0) -> dict:
    """Host C vs the tflite-micro oracle on ``n`` clips (``features``: float ``(N, C, M, T)`` NCHW log-mel).

    ``oracle``: an object with ``quantize(features)``, ``invoke(q)`` and ``intermediates(q)`` (the
    :class:`~asc_edge.export.oracle.TflmOracle` of the same ``.tflite``; passed in, so the code
    generator does not depend on the export stage); ``host``: the :class:`HostModel` built from the
    generated C.

    Every output byte is compared. The first ``debug_layers`` clips (and any clip whose output
    differs) are also compared layer by layer: every layer output the C model materialises (the
    internal tensors of a fused step never exist; its result is compared under its last layer).
    Returns ``{"n_clips", "n_equal", "all_equal", "layers_checked_clips", "layer_outputs_compared",
    "first_mismatch"}`` where ``first_mismatch`` is None or ``{"clip", "layer", "op", "kind",
    "tflite_ops", "tensor", "element" (NHWC index), "host", "oracle", "n_diff"}`` — the first layer
    (in execution order) whose output differs.
    """
    graph = host.graph
    x = np.asarray(features, dtype=np.float32)
    n = len(x) if n is None else min(int(n), len(x))
    qs = oracle.quantize(x[:n])
    n_equal, first = 0, None
    layer_clips = layers_compared = 0
    for i in range(n):
        ref = oracle.invoke(qs[i:i + 1]).reshape(-1)
        need_layers = i < debug_layers
        got = host.invoke(qs[i:i + 1])
        equal = np.array_equal(got, ref)
        n_equal += int(equal)
        if (need_layers or not equal) and (first is None):
            layer_clips += 1
            _, layers = host.invoke(qs[i:i + 1], debug=True)
            refs = {r["tensor"]: r["data"] for r in oracle.intermediates(qs[i:i + 1])}
            for L in graph.layers:
                r = refs.get(L.output)
                h = layers[L.index]
                if r is None or h is None:
                    continue
                layers_compared += 1
                r = np.asarray(r).reshape(h.shape)
                if not np.array_equal(r.astype(np.int8), h):
                    diff = np.argwhere(r.astype(np.int8) != h)[0]
                    first = {"clip": i, "layer": L.index, "op": L.op, "kind": L.kind, "tflite_ops": L.op_indices,
                             "tensor": graph.tensors[L.output].name, "element": [int(v) for v in diff],
                             "host": int(h[tuple(diff)]), "oracle": int(r[tuple(diff)]),
                             "n_diff": int((r.astype(np.int8) != h).sum())}
                    break
            if first is None and not equal:
                first = {"clip": i, "layer": None, "op": "output", "element": [int(np.argmax(got != ref))],
                         "host": None, "oracle": None}
    return {"n_clips": n, "n_equal": n_equal, "all_equal": n_equal == n, "layers_checked_clips": layer_clips,
            "layer_outputs_compared": layers_compared,
            "first_mismatch": first}
