"""The C log-mel frontend (``firmware/frontend``): table generator, host build, Cortex-M4 build.

* :func:`emit_frontend_tables` turns a :class:`~asc_edge.features.config.FrontendConfig` and the
  model's int8 input quantisation into ``asc_frontend_config.h`` (sizes, quantisation, RAM needed)
  and ``asc_frontend_tables.c`` (window and sparse mel matrix, ``const`` so they stay in flash).
* :func:`build_host_frontend` compiles ``firmware/frontend`` + the tables + the CMSIS-DSP FFT
  sources with the host ``gcc -O2 -ffp-contract=off`` into a shared library; :class:`HostFrontend`
  wraps it with ctypes. This host build is the *reference* the device build must match bit for bit.
* :func:`build_qemu_user_frontend` compiles the same sources for the Cortex-M4 (``-mcpu=cortex-m4
  -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 -O2 -ffp-contract=off``) into a test program that QEMU's
  Linux user-mode emulator runs (``firmware/frontend/tools``); :class:`QemuUserFrontend` feeds it a
  clip through files. :func:`m4_footprint` reports its flash use per symbol.

The definition the C code follows is the training frontend :class:`asc_edge.features.logmel.LogMel`
(reflect-padded centred frames, periodic Hann zero-padded to n_fft, |rfft|^2, HTK mel matrix, log);
the window is the float64 formula rounded once to float32, the mel weights are the float32 values
of :func:`asc_edge.features.logmel.mel_filterbank` (only the non-zeros are stored).
"""

from __future__ import annotations

import ctypes as C
import hashlib
import math
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asc_edge.codegen.kernels_host import KernelError, build_shared_library
from asc_edge.errors import ConfigError, DeviceError
from asc_edge.paths import build_root
from asc_edge.features.config import FrontendConfig

from . import cmsis_dsp

__all__ = [
    "FRONTEND_DIR",
    "HOST_CFLAGS",
    "M4_CFLAGS",
    "RFFT_SIZES",
    "FrontendTables",
    "frame_span",
    "ring_length",
    "work_bytes",
    "hann_window_f32",
    "emit_frontend_tables",
    "build_host_frontend",
    "HostFrontend",
    "build_qemu_user_frontend",
    "QemuUserFrontend",
    "m4_footprint",
    "quantize_reference",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
FRONTEND_DIR = REPO_ROOT / "firmware" / "frontend"
TOOLS_DIR = FRONTEND_DIR / "tools"
DEFAULT_BUILD_DIR = build_root() / "frontend"

#: FFT sizes with an ``arm_rfft_fast_init_<N>_f32`` in CMSIS-DSP 1.10.
RFFT_SIZES = (32, 64, 128, 256, 512, 1024, 2048, 4096)

_COMMON_CFLAGS = ["-std=c99", "-O2", "-ffp-contract=off", "-fno-fast-math", "-Wall", "-Wextra",
                  *cmsis_dsp.CMSIS_DSP_DEFINES, *cmsis_dsp.CMSIS_DSP_CFLAGS]
#: Host (reference) compile flags; ``-fPIC`` for the shared library.
HOST_CFLAGS = [*_COMMON_CFLAGS, "-fPIC"]
#: Cortex-M4 compile flags (hard-float FPv4-SP, Thumb-2, DSP extension).
M4_ARCH = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]
M4_CFLAGS = [*M4_ARCH, *_COMMON_CFLAGS]

_FRONTEND_SOURCES = ("asc_frontend.c", "asc_logf.c")
_CONFIG_H = "asc_frontend_config.h"
_TABLES_C = "asc_frontend_tables.c"
_COMPILE_TIMEOUT_S = 300
_QEMU_TIMEOUT_S = 120

_GCC_HINT = "apt-get install gcc (or set CC to a C99 compiler)"
_ARM_GCC_HINT = "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi"
_QEMU_HINT = "apt-get install qemu-user (provides qemu-arm)"


# ---------------------------------------------------------------------------------------------
# geometry (mirrors asc_frontend.c)
# ---------------------------------------------------------------------------------------------
def frame_span(cfg: FrontendConfig, t: int) -> tuple[int, int]:
    """(lowest, highest) original sample index (0-based, inclusive) that frame ``t`` reads.

    Frame t's window sample k (0 <= k < win_length) reads padded position i = t*hop + (n_fft -
    win_length)//2 - n_fft//2 + k of the clip, reflected into [0, n_samples) as torch's reflect
    padding does (i < 0 -> -i; i > N-1 -> 2(N-1) - i). Same rule as ``asc_fe_frame_span`` in C.
    """
    n, last = cfg.n_samples, cfg.n_samples - 1
    i0 = t * cfg.hop_length + (cfg.n_fft - cfg.win_length) // 2 - cfg.n_fft // 2
    i1 = i0 + cfg.win_length - 1
    lo, hi = math.inf, -math.inf
    d0, d1 = max(i0, 0), min(i1, last)
    if d0 <= d1:
        lo, hi = d0, d1
    if i0 < 0:
        e = min(i1, -1)
        lo, hi = min(lo, -e), max(hi, -i0)
    if i1 > last:
        s = max(i0, n)
        lo, hi = min(lo, 2 * last - i1), max(hi, 2 * last - s)
    return int(lo), int(hi)


def ring_length(cfg: FrontendConfig) -> int:
    """Samples (float32) the frontend's sliding window must hold.

    Before frame t the C code drops every sample below keep_t = min over frames u >= t of their
    lowest sample, then reads up to frame t's highest sample; the window holds [keep_t, max_{u<=t}
    hi_u], so its length is the maximum of that span over t (at least win_length). For the 32 kHz
    and 44.1 kHz presets (win 3072, hop 500) that is 3072: one window.
    """
    spans = [frame_span(cfg, t) for t in range(cfg.n_frames)]
    lows = [lo for lo, _ in spans]
    keep = lows[:]
    for t in range(len(keep) - 2, -1, -1):
        keep[t] = min(keep[t], keep[t + 1])
    hi_max = -1
    need = 0
    for t, (_, hi) in enumerate(spans):
        hi_max = max(hi_max, hi)
        need = max(need, hi_max - keep[t] + 1)
    return max(need, cfg.win_length)


def work_bytes(cfg: FrontendConfig) -> int:
    """RAM the C frontend needs, in bytes: 4 * (ring_length + n_fft) (sliding window; one FFT buffer
    that the complex FFT, the real-FFT split + power spectrum and the mel sums use in place; all
    float32). 28,672 bytes for the 32 kHz and 44.1 kHz presets (45,056 before issue 16, which had
    a separate FFT output buffer)."""
    return 4 * (ring_length(cfg) + cfg.n_fft)


def hann_window_f32(cfg: FrontendConfig) -> np.ndarray:
    """Periodic Hann window (win_length,) float32: w[n] = 0.5 - 0.5 cos(2 pi n / win_length) computed
    in float64 and rounded once (torch.hann_window(periodic=True) computes it in float32 and differs
    from this by a few float32 ulps at most)."""
    n = np.arange(cfg.win_length, dtype=np.float64)
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * n / cfg.win_length)).astype(np.float32)


def quantize_reference(x, scale: float, zero_point: int) -> np.ndarray:
    """TFLite int8 Quantize reference on float32 ``x``: clamp(round_half_away(x / scale) + zp,
    -128, 127) with the division in float32 and exact ties (as ``asc_fe_quantize``). Returns int8."""
    v = np.asarray(x, dtype=np.float32) / np.float32(scale)
    v = np.clip(v, np.float32(-1e6), np.float32(1e6))
    t = np.trunc(v)
    frac = v - t  # exact for |v| < 2^23
    r = t.astype(np.int64) + (frac >= 0.5) - (frac <= -0.5)
    return np.clip(r + int(zero_point), -128, 127).astype(np.int8)


# ---------------------------------------------------------------------------------------------
# table / config generator
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FrontendTables:
    """What :func:`emit_frontend_tables` wrote; sizes in samples / bytes."""

    config_h: Path
    tables_c: Path
    cfg: FrontendConfig
    input_scale: float          # as float32
    input_zero_point: int
    ring_len: int               # float32 samples of the sliding window
    work_bytes: int             # RAM the caller passes to asc_fe_logmel_*
    mel_weights: int            # non-zero mel weights stored
    table_bytes: int            # flash of the generated tables (window + mel first/len + weights [+ quarter cos])
    compact: bool = False       # export --optimize size's compact tables (emit_frontend_tables)

    def as_dict(self) -> dict:
        return {"config_h": self.config_h, "tables_c": self.tables_c, "ring_len": self.ring_len,
                "work_bytes": self.work_bytes, "mel_weights": self.mel_weights,
                "table_bytes": self.table_bytes, "input_scale": self.input_scale,
                "input_zero_point": self.input_zero_point, "n_mels": self.cfg.n_mels,
                "n_frames": self.cfg.n_frames, "n_samples": self.cfg.n_samples,
                "config_key": self.cfg.key(), "compact": self.compact}


def _c_float(v: float) -> str:
    """C literal of a float32 value that parses back to exactly the same float32."""
    f = float(np.float32(v))
    if not math.isfinite(f):
        raise ConfigError(f"frontend tables: non-finite value {v!r}", hint="check the frontend settings")
    s = f"{f:.9e}"
    return f"{s}f"


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _check_c_config(cfg: FrontendConfig, input_scale: float, input_zero_point: int) -> None:
    if cfg.n_fft not in RFFT_SIZES:
        raise ConfigError(
            f"frontend C: n_fft {cfg.n_fft} has no CMSIS-DSP arm_rfft_fast_f32 "
            f"(sizes {', '.join(map(str, RFFT_SIZES))})",
            hint="use a power-of-two n_fft between 32 and 4096")
    if cfg.n_mels > cfg.n_fft // 2 - 2:
        raise ConfigError(f"frontend C: {cfg.n_mels} mels exceed n_fft / 2 - 2 = {cfg.n_fft // 2 - 2} (the mel sums "
                          "live in the free half of the in-place FFT buffer)", hint="use a larger n_fft or fewer mels")
    if cfg.n_freqs > 0xFFFF or cfg.n_mels > 0xFFFF:
        raise ConfigError(f"frontend C: {cfg.n_freqs} FFT bins / {cfg.n_mels} mels do not fit the uint16 tables",
                          hint="use n_fft <= 4096 and n_mels <= 65535")
    if cfg.n_samples >= 2**30 or cfg.n_mels * cfg.n_frames >= 2**31:
        raise ConfigError(f"frontend C: clip of {cfg.n_samples} samples is too long for int32 indexing",
                          hint="use a shorter clip_seconds")
    if isinstance(input_scale, bool) or not isinstance(input_scale, (int, float, np.floating)) \
            or not math.isfinite(float(input_scale)) or float(np.float32(input_scale)) <= 0.0:
        raise ConfigError(f"frontend C: input scale must be a finite float32 > 0, got {input_scale!r}",
                          hint="pass the model input tensor's quantisation scale")
    if isinstance(input_zero_point, bool) or not isinstance(input_zero_point, (int, np.integer)) \
            or not -128 <= int(input_zero_point) <= 127:
        raise ConfigError(f"frontend C: int8 zero point must be an integer in [-128, 127], got {input_zero_point!r}",
                          hint="pass the model input tensor's zero point")


def emit_frontend_tables(cfg: FrontendConfig, input_scale: float, input_zero_point: int,
                         out_dir: str | os.PathLike[str], *, compact: bool = False) -> dict:
    """Write ``asc_frontend_config.h`` and ``asc_frontend_tables.c`` for ``cfg`` into ``out_dir``.

    ``input_scale`` / ``input_zero_point``: the model input tensor's int8 quantisation (scale in
    natural-log units per step, stored as float32; zero point in [-128, 127]).

    config.h defines ASC_FE_SAMPLE_RATE_HZ (Hz), ASC_FE_N_FFT, ASC_FE_WIN_LENGTH, ASC_FE_WIN_OFFSET,
    ASC_FE_HOP_LENGTH, ASC_FE_N_SAMPLES (samples), ASC_FE_N_FREQS, ASC_FE_N_MELS, ASC_FE_N_FRAMES,
    ASC_FE_LOG_OFFSET, ASC_FE_INPUT_SCALE, ASC_FE_INPUT_ZERO_POINT, ASC_FE_RING_LEN (samples),
    ASC_FE_WORK_BYTES (bytes), ASC_FE_MEL_WEIGHTS_LEN, ASC_FE_TABLE_BYTES (bytes) and
    ASC_FE_RFFT_INIT (the size-specific CMSIS-DSP init function). tables.c holds the float32 window
    (win_length), the sparse mel matrix (first bin and bin count per band, uint16; the non-zero
    weights band after band, float32) and the config key, all ``const``. Files are written to a
    temporary name and renamed.

    ``compact=True`` (``export --optimize size``) defines ``ASC_FE_COMPACT_TABLES 1`` and writes
    smaller tables instead: the window's first half (``win_length // 2 + 1`` floats; the periodic
    Hann window is symmetric, w[k] = w[win_length - k]), the mel weights as uint16
    ``round(w / w_max · 65535)`` decoded on the device as ``q · (w_max / 65535)`` (float32; an
    absolute weight error ≤ w_max / 131070, 7.6e-6 for the HTK filterbank's w_max ≤ 1), and one
    quarter-wave table ``cos(2π j / n_fft)``, j = 0 … n_fft / 4 (float64 rounded to float32), from
    which the frontend's compact radix-4 FFT and the real-FFT split take every twiddle, so neither
    the speed build's fixed FFT tables (``asc_fe_fft_tables.h``: 20,288 bytes at n_fft 4096) nor
    CMSIS-DSP's split twiddles (16,384 bytes) are linked. At 32 kHz (win 3072, n_fft 4096, 256
    mels): 19,406 bytes of tables instead of 29,580 + 20,288 + 16,384. The features still follow
    the training frontend within the tolerances of ``tests/test_frontend_c.py`` (measured there:
    max |C − torch| 2.9e-4 / 2.4e-4 where the mel power is > 1e-3, 32 / 44.1 kHz; CMSIS-DSP's FFT:
    2.1e-4 / 1.9e-4); host and device builds of the same tables stay bit-identical.

    Returns a dict: config_h, tables_c (paths), ring_len, work_bytes, mel_weights, table_bytes,
    input_scale, input_zero_point, n_mels, n_frames, n_samples, config_key, compact.

    Raises:
        ConfigError: ``cfg`` is not a FrontendConfig, n_fft is not a CMSIS-DSP rfft size (power of
            two in 32..4096), the scale is not a finite positive float32, or the zero point is not
            an integer in [-128, 127].
    """
    from asc_edge.features.logmel import sparse_mel

    if not isinstance(cfg, FrontendConfig):
        raise ConfigError(f"frontend C: expected a FrontendConfig, got {type(cfg).__name__}",
                          hint="pass asc_edge.features.config.FrontendConfig(...) or a preset")
    _check_c_config(cfg, input_scale, input_zero_point)
    scale32 = float(np.float32(input_scale))
    zp = int(input_zero_point)
    out = Path(out_dir)

    window = hann_window_f32(cfg)
    bands = sparse_mel(cfg)
    firsts = [b for b, _ in bands]
    lens = [len(w) for _, w in bands]
    weights = np.concatenate([w for _, w in bands]) if sum(lens) else np.zeros(0, np.float32)
    n_weights = int(weights.size)
    ring = ring_length(cfg)
    work = 4 * (ring + cfg.n_fft)
    if compact:
        w_max = float(weights.max()) if n_weights else 1.0
        q16 = np.rint(weights.astype(np.float64) / w_max * 65535.0).astype(np.int64) if n_weights \
            else np.zeros(1, np.int64)
        q_scale = float(np.float32(w_max / 65535.0))
        half = window[:cfg.win_length // 2 + 1]
        quarter = np.cos(2.0 * np.pi * np.arange(cfg.n_fft // 4 + 1, dtype=np.float64) / cfg.n_fft).astype(np.float32)
        table_bytes = 4 * half.size + 2 * 2 * cfg.n_mels + 2 * n_weights + 4 * quarter.size
    else:
        table_bytes = 4 * cfg.win_length + 2 * 2 * cfg.n_mels + 4 * n_weights
    key = cfg.key()

    q_scale_line = (f"#define ASC_FE_MEL_Q16_SCALE {_c_float(q_scale)}  /* float32 w_max / 65535: mel weight = q16 * this */\n"
                    if compact else "")
    h = f"""/* asc_frontend_config.h - GENERATED by asc_edge.device.frontend_c.emit_frontend_tables; do not edit.
 * FrontendConfig {key}: {cfg.to_dict()}
 * Model input: int8, scale {scale32!r}, zero point {zp}; layout (1, {cfg.n_mels} mels, {cfg.n_frames} frames, 1).
 */
#ifndef ASC_FRONTEND_CONFIG_H
#define ASC_FRONTEND_CONFIG_H

#define ASC_FE_SAMPLE_RATE_HZ {cfg.sample_rate}   /* Hz */
#define ASC_FE_N_SAMPLES {cfg.n_samples}          /* samples per clip ({cfg.clip_seconds:g} s) */
#define ASC_FE_N_FFT {cfg.n_fft}                  /* FFT size, samples */
#define ASC_FE_WIN_LENGTH {cfg.win_length}        /* periodic Hann window, samples */
#define ASC_FE_WIN_OFFSET {(cfg.n_fft - cfg.win_length) // 2}  /* window start in the FFT frame, (N_FFT - WIN) / 2 */
#define ASC_FE_HOP_LENGTH {cfg.hop_length}        /* frame step, samples */
#define ASC_FE_N_FREQS {cfg.n_freqs}              /* one-sided bins, N_FFT / 2 + 1 */
#define ASC_FE_N_MELS {cfg.n_mels}
#define ASC_FE_N_FRAMES {cfg.n_frames}            /* 1 + N_SAMPLES / HOP_LENGTH */
#define ASC_FE_F_MIN_HZ {_c_float(cfg.f_min)}
#define ASC_FE_F_MAX_HZ {_c_float(cfg.f_max_hz)}
#define ASC_FE_LOG_OFFSET {_c_float(cfg.log_offset)}  /* features are ln(mel power + this) */

#define ASC_FE_INPUT_SCALE {_c_float(scale32)}   /* int8 step, ln units */
#define ASC_FE_INPUT_ZERO_POINT ({zp})

#define ASC_FE_RING_LEN {ring}                    /* sliding window, float32 samples */
#define ASC_FE_WORK_BYTES {work}                  /* = 4 * (RING_LEN + N_FFT) bytes of caller RAM */
#define ASC_FE_MEL_N_WEIGHTS {n_weights}          /* non-zero mel weights */
#define ASC_FE_MEL_WEIGHTS_LEN {max(n_weights, 1)}
#define ASC_FE_TABLE_BYTES {table_bytes}          /* flash of asc_frontend_tables.c */
#define ASC_FE_RFFT_INIT arm_rfft_fast_init_{cfg.n_fft}_f32
#define ASC_FE_COMPACT_TABLES {int(compact)}             /* 1: export --optimize size's compact tables and radix-4 FFT */
{q_scale_line}#define ASC_FE_CONFIG_KEY "{key}"

#endif /* ASC_FRONTEND_CONFIG_H */
"""

    def rows(values, fmt, per_line):
        items = [fmt(v) for v in values]
        return ",\n".join("    " + ", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line))

    if compact:
        window_c = f"""/* periodic Hann, {cfg.win_length} samples: 0.5 - 0.5 cos(2 pi n / {cfg.win_length}), float64 rounded to
 * float32; n = 0 .. {cfg.win_length // 2} (w[n] = w[{cfg.win_length} - n]) */
const float asc_fe_window_half[ASC_FE_WIN_LENGTH / 2 + 1] = {{
{rows(half.tolist(), _c_float, 6)}
}};

/* cos(2 pi j / {cfg.n_fft}), j = 0 .. {cfg.n_fft // 4}, float64 rounded to float32: every FFT twiddle */
const float asc_fe_cos_quarter[ASC_FE_N_FFT / 4 + 1] = {{
{rows(quarter.tolist(), _c_float, 6)}
}};
"""
        weights_c = f"""/* {n_weights} non-zero weights of mel_filterbank(cfg), band after band, as round(w / {w_max!r} * 65535) */
const uint16_t asc_fe_mel_weights_q16[ASC_FE_MEL_WEIGHTS_LEN] = {{
{rows(q16.tolist(), str, 16)}
}};
"""
    else:
        window_c = f"""/* periodic Hann, {cfg.win_length} samples: 0.5 - 0.5 cos(2 pi n / {cfg.win_length}), float64 rounded to float32 */
const float asc_fe_window[ASC_FE_WIN_LENGTH] = {{
{rows(window.tolist(), _c_float, 6)}
}};
"""
        weights_c = f"""/* {n_weights} non-zero weights of mel_filterbank(cfg), band after band */
const float asc_fe_mel_weights[ASC_FE_MEL_WEIGHTS_LEN] = {{
{rows(weights.tolist() if n_weights else [0.0], _c_float, 6)}
}};
"""
    c = f"""/* asc_frontend_tables.c - GENERATED by asc_edge.device.frontend_c.emit_frontend_tables; do not edit.
 * FrontendConfig {key}. Flash: {table_bytes} bytes.
 */
#include <stdint.h>

#include "asc_frontend.h"

const char asc_fe_config_key[] = ASC_FE_CONFIG_KEY;

{window_c}
/* mel band m: FFT bins [first, first + n) */
const uint16_t asc_fe_mel_first_bin[ASC_FE_N_MELS] = {{
{rows(firsts, str, 16)}
}};

const uint16_t asc_fe_mel_n_bins[ASC_FE_N_MELS] = {{
{rows(lens, str, 16)}
}};

{weights_c}"""
    _write_atomic(out / _CONFIG_H, h)
    _write_atomic(out / _TABLES_C, c)
    return FrontendTables(config_h=out / _CONFIG_H, tables_c=out / _TABLES_C, cfg=cfg, input_scale=scale32,
                          input_zero_point=zp, ring_len=ring, work_bytes=work, mel_weights=n_weights,
                          table_bytes=table_bytes, compact=bool(compact)).as_dict()


# ---------------------------------------------------------------------------------------------
# builds
# ---------------------------------------------------------------------------------------------
def _which(name: str, hint: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise DeviceError(f"{name} not found on PATH", hint=hint)
    return path


def _run(cmd: list[str], what: str, hint: str, timeout_s: float = _COMPILE_TIMEOUT_S) -> subprocess.CompletedProcess:
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise DeviceError(f"{what} timed out after {timeout_s:g} s: {' '.join(cmd[:3])} ...", hint=hint) from None
    except OSError as exc:
        raise DeviceError(f"{what}: cannot run {cmd[0]} ({exc})", hint=hint) from None
    if res.returncode != 0:
        raise DeviceError(f"{what} failed (exit {res.returncode}):\n{(res.stderr or res.stdout)[-3000:]}",
                          hint=hint + "; the command was: " + " ".join(cmd))
    return res


def _digest(parts: list[bytes | str]) -> str:
    h = hashlib.sha256()
    for p in parts:
        b = p.encode() if isinstance(p, str) else p
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()[:16]


def _tables_sources(tables_dir: Path) -> tuple[Path, Path]:
    cfg_h, tab_c = tables_dir / _CONFIG_H, tables_dir / _TABLES_C
    if not cfg_h.is_file() or not tab_c.is_file():
        raise ConfigError(f"{tables_dir}: no {_CONFIG_H} / {_TABLES_C}",
                          hint="run emit_frontend_tables(cfg, scale, zero_point, tables_dir) first")
    return cfg_h, tab_c


def _cmsis_objects(cc: str, flags: list[str], obj_root: Path, cmsis_root: Path) -> list[Path]:
    """Compile the CMSIS-DSP FFT sources once per (compiler, flags); cached by a hash."""
    srcs = cmsis_dsp.frontend_sources(cmsis_root)
    shim = sorted(cmsis_dsp.SHIM_DIR.glob("*.h"))
    key = _digest([cc, " ".join(flags), str(cmsis_root), cmsis_dsp.CMSIS_DSP_SHA256,
                   *[p.read_bytes() for p in shim]])
    odir = obj_root / f"cmsis-{key}"
    objs = [odir / (s.stem + ".o") for s in srcs]
    if all(o.is_file() for o in objs):
        return objs
    odir.mkdir(parents=True, exist_ok=True)
    incs = [f"-I{d}" for d in cmsis_dsp.include_dirs(cmsis_root)]
    for s, o in zip(srcs, objs):
        if o.is_file():
            continue
        tmp = o.with_name(f".{o.name}.tmp{os.getpid()}")
        _run([cc, *flags, *incs, "-c", str(s), "-o", str(tmp)], f"compiling CMSIS-DSP {s.name}",
             hint="check the compiler and firmware/cmsis_shim/cmsis_compiler.h")
        os.replace(tmp, o)
    return objs


def build_host_frontend(tables_dir: str | os.PathLike[str], build_dir: str | os.PathLike[str] | None = None,
                        *, cc: str | None = None, cmsis_root: str | os.PathLike[str] | None = None) -> Path:
    """Shared library of the frontend for the host (the bit-exact reference); returns its path.

    Compiles ``firmware/frontend/{asc_frontend,asc_logf,asc_frontend_host}.c``, the generated
    ``asc_frontend_tables.c`` from ``tables_dir`` and the CMSIS-DSP FFT sources
    (:data:`cmsis_dsp.FRONTEND_SOURCES`, fetched by :func:`cmsis_dsp.ensure_cmsis_dsp` unless
    ``cmsis_root`` is given) with ``cc`` (default ``$CC`` or ``gcc``) and :data:`HOST_CFLAGS`
    (``-std=c99 -O2 -ffp-contract=off -DARM_MATH_LOOPUNROLL -fPIC``), linked ``-shared``, into
    ``build_dir`` (default ``<build_root>/frontend``, :func:`asc_edge.paths.build_root`) by the project's one host shared-library build,
    :func:`asc_edge.codegen.kernels_host.build_shared_library`: the file name carries a hash of the
    compiler, flags, sources, objects and headers; an existing library is reused. Written to a
    temporary name, then renamed.

    Raises:
        ConfigError: ``tables_dir`` lacks the generated files.
        DeviceError: no compiler, CMSIS-DSP cannot be fetched, or a compile / link error.
    """
    tables_dir = Path(tables_dir)
    _, tab_c = _tables_sources(tables_dir)
    cc = _which(cc or os.environ.get("CC", "gcc"), _GCC_HINT)
    root = Path(cmsis_root) if cmsis_root is not None else cmsis_dsp.ensure_cmsis_dsp()
    out_dir = Path(build_dir) if build_dir is not None else DEFAULT_BUILD_DIR
    objs = _cmsis_objects(cc, HOST_CFLAGS, out_dir / "obj-host", root)
    srcs = [FRONTEND_DIR / s for s in _FRONTEND_SOURCES] + [FRONTEND_DIR / "asc_frontend_host.c", tab_c]
    try:
        return build_shared_library("asc_frontend", [*srcs, *objs],
                                    [tables_dir, FRONTEND_DIR, *cmsis_dsp.include_dirs(root)],
                                    [*HOST_CFLAGS, "-Werror", "-shared", *cmsis_dsp.CMSIS_DSP_LDFLAGS], cc=cc,
                                    build_dir=out_dir)
    except KernelError as exc:
        raise DeviceError(f"host build of the C frontend failed: {exc}",
                          hint="fix the compile error in firmware/frontend or the tables") from None


def build_qemu_user_frontend(tables_dir: str | os.PathLike[str], build_dir: str | os.PathLike[str] | None = None,
                             *, cc: str | None = None, cmsis_root: str | os.PathLike[str] | None = None) -> Path:
    """Cortex-M4 ELF of ``firmware/frontend/tools/asc_fe_runner.c`` + the frontend + tables + CMSIS-DSP,
    for QEMU's Linux user-mode emulator (``qemu-arm``); returns its path.

    Compiled with ``arm-none-eabi-gcc`` and :data:`M4_CFLAGS` (``-mcpu=cortex-m4 -mthumb
    -mfloat-abi=hard -mfpu=fpv4-sp-d16 -std=c99 -O2 -ffp-contract=off -DARM_MATH_LOOPUNROLL
    -ffunction-sections -fdata-sections``), linked ``-nostartfiles -Wl,--gc-sections`` with newlib's
    libc (memcpy/memmove only) and libgcc; process start-up and file I/O are Linux system calls
    (``tools/asc_linux_user_arm.c``). The frontend code and tables are exactly those of the firmware.
    A ``.map`` file is written beside the ELF. Cached by a hash of sources and flags.

    Raises:
        ConfigError: ``tables_dir`` lacks the generated files.
        DeviceError: no cross-compiler, CMSIS-DSP cannot be fetched, or a compile / link error.
    """
    tables_dir = Path(tables_dir)
    cfg_h, tab_c = _tables_sources(tables_dir)
    cc = _which(cc or "arm-none-eabi-gcc", _ARM_GCC_HINT)
    root = Path(cmsis_root) if cmsis_root is not None else cmsis_dsp.ensure_cmsis_dsp()
    out_dir = Path(build_dir) if build_dir is not None else DEFAULT_BUILD_DIR
    objs = _cmsis_objects(cc, M4_CFLAGS, out_dir / "obj-m4", root)
    srcs = [FRONTEND_DIR / s for s in _FRONTEND_SOURCES] + [
        TOOLS_DIR / "asc_fe_runner.c", TOOLS_DIR / "asc_linux_user_arm.c", tab_c]
    headers = sorted(FRONTEND_DIR.glob("*.h")) + sorted(TOOLS_DIR.glob("*.h")) + [cfg_h]
    ldflags = ["-nostartfiles", *cmsis_dsp.CMSIS_DSP_LDFLAGS]
    key = _digest([cc, " ".join(M4_CFLAGS + ldflags), *[p.read_bytes() for p in srcs + headers],
                   *[o.read_bytes() for o in objs]])
    elf = out_dir / f"asc_fe_runner_m4_{key}.elf"
    if elf.is_file():
        return elf
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = elf.with_name(f".{elf.name}.tmp{os.getpid()}")
    tmp_map = elf.with_name(f".{elf.stem}.map.tmp{os.getpid()}")
    incs = [f"-I{tables_dir}", f"-I{FRONTEND_DIR}", f"-I{TOOLS_DIR}",
            *[f"-I{d}" for d in cmsis_dsp.include_dirs(root)]]
    _run([cc, *M4_CFLAGS, "-Werror", *incs, *map(str, srcs), *map(str, objs), *ldflags,
          f"-Wl,-Map={tmp_map}", "-lc", "-lgcc", "-o", str(tmp)],
         "Cortex-M4 build of the C frontend", hint="fix the compile / link error (arm-none-eabi-gcc)")
    os.replace(tmp_map, elf.with_suffix(".map"))
    os.replace(tmp, elf)
    return elf


# ---------------------------------------------------------------------------------------------
# runners
# ---------------------------------------------------------------------------------------------
_STATUS = {0: "ok", -1: "bad argument", -2: "work buffer too small", -3: "read callback error",
           -4: "rfft init failed", -5: "sliding window overflow"}


class HostFrontend:
    """ctypes wrapper of a library from :func:`build_host_frontend`.

    Attributes (from the library's generated config): ``n_samples``, ``n_mels``, ``n_frames``,
    ``sample_rate`` (Hz), ``work_bytes`` (bytes), ``input_scale``, ``input_zero_point``.
    """

    def __init__(self, lib_path: str | os.PathLike[str]):
        self.path = Path(lib_path)
        try:
            self.lib = C.CDLL(str(self.path))
        except OSError as exc:
            raise DeviceError(f"cannot load the host frontend {self.path}: {exc}",
                              hint="rebuild it with build_host_frontend()") from None
        L = self.lib
        L.asc_fe_work_bytes.restype = C.c_int32
        L.asc_fe_host_logmel.argtypes = [C.c_void_p, C.c_void_p, C.c_int32, C.c_void_p, C.c_int32,
                                         C.c_void_p, C.c_int32, C.c_int32, C.c_void_p]
        L.asc_fe_host_logmel.restype = C.c_int32
        L.asc_fe_host_logf.argtypes = [C.c_void_p, C.c_void_p, C.c_int32]
        L.asc_fe_host_logf.restype = None
        L.asc_fe_host_quantize.argtypes = [C.c_void_p, C.c_void_p, C.c_int32]
        L.asc_fe_host_quantize.restype = None
        L.asc_fe_host_fpenv.restype = C.c_int64
        L.asc_fe_host_config.argtypes = [C.c_void_p]
        L.asc_fe_host_config.restype = None
        L.asc_fe_window_value.argtypes = [C.c_int32]
        L.asc_fe_window_value.restype = C.c_float
        L.asc_fe_mel_weight_value.argtypes = [C.c_int32]
        L.asc_fe_mel_weight_value.restype = C.c_float
        cfgv = np.zeros(16, np.float64)
        L.asc_fe_host_config(cfgv.ctypes.data)
        (self.sample_rate, self.n_fft, self.win_length, self.hop_length, self.n_mels, self.n_frames,
         self.n_samples, self.work_bytes, self.ring_len, self.input_zero_point) = (int(v) for v in cfgv[:10])
        self.input_scale = float(np.float32(cfgv[10]))
        self.log_offset = float(np.float32(cfgv[11]))
        self.config_key = C.string_at(C.addressof(C.c_char.in_dll(L, "asc_fe_config_key"))).decode()
        # room for a larger work area than needed too (raw_call tests an older export's size)
        self._work = np.zeros(self.work_bytes // 4 + self.n_fft + 1, np.float32)

    # -- tables as compiled (for checks) --
    def window(self) -> np.ndarray:
        """The window the compiled frontend multiplies by, (win_length,) float32 (``asc_fe_window_value``:
        the full table, or the compact half table mirrored)."""
        return np.array([self.lib.asc_fe_window_value(k) for k in range(self.win_length)], np.float32)

    def mel_dense(self) -> np.ndarray:
        """The compiled sparse mel tables expanded to (n_fft // 2 + 1, n_mels) float32."""
        first = np.ctypeslib.as_array((C.c_uint16 * self.n_mels).in_dll(self.lib, "asc_fe_mel_first_bin"))
        nb = np.ctypeslib.as_array((C.c_uint16 * self.n_mels).in_dll(self.lib, "asc_fe_mel_n_bins"))
        total = int(nb.sum())
        w = np.array([self.lib.asc_fe_mel_weight_value(i) for i in range(total)], np.float32)
        fb = np.zeros((self.n_fft // 2 + 1, self.n_mels), np.float32)
        off = 0
        for m in range(self.n_mels):
            fb[first[m]:first[m] + nb[m], m] = w[off:off + nb[m]]
            off += int(nb[m])
        return fb

    def _audio(self, audio, dtype) -> np.ndarray:
        a = np.ascontiguousarray(audio)
        if a.ndim != 1 or a.shape[0] != self.n_samples:
            raise ConfigError(f"C frontend: audio of shape {a.shape}, expected ({self.n_samples},) samples "
                              f"at {self.sample_rate} Hz",
                              hint="pad/crop the clip to cfg.n_samples (load_audio(path, sr, duration_s=clip_seconds))")
        if a.dtype != dtype:
            raise ConfigError(f"C frontend: audio dtype {a.dtype}, expected {np.dtype(dtype).name}",
                              hint="convert with np.asarray(x, dtype=np.float32)" if dtype == np.float32
                              else "pass 16-bit PCM samples as np.int16")
        return a

    def raw_call(self, audio: np.ndarray | None, n: int, *, pcm16: np.ndarray | None = None, mode: int = 0,
                 work_bytes: int | None = None, chunk: int = 0) -> tuple[int, np.ndarray, dict]:
        """Call ``asc_fe_host_logmel`` without checks (for tests of the C error paths).

        ``audio``: float32 samples (or ``pcm16`` int16), of which the reader hands out ``n``;
        ``mode`` 0 float / 1 int8; ``work_bytes`` passed to C (default: the full buffer);
        ``chunk`` > 0 limits each read to that many samples. Returns (status, flat output,
        {"calls", "samples", "max_request"} of the read callback)."""
        out = np.zeros(self.n_mels * self.n_frames, np.float32 if mode == 0 else np.int8)
        stats = np.zeros(3, np.int32)
        wb = self._work.nbytes if work_bytes is None else int(work_bytes)
        rc = self.lib.asc_fe_host_logmel(
            audio.ctypes.data if audio is not None else None, pcm16.ctypes.data if pcm16 is not None else None,
            int(n), self._work.ctypes.data, min(wb, self._work.nbytes), out.ctypes.data, int(mode), int(chunk),
            stats.ctypes.data)
        return int(rc), out, {"calls": int(stats[0]), "samples": int(stats[1]), "max_request": int(stats[2])}

    def _call(self, audio, audio16, out: np.ndarray, mode: int, chunk: int = 0) -> np.ndarray:
        rc = self.lib.asc_fe_host_logmel(
            audio.ctypes.data if audio is not None else None, audio16.ctypes.data if audio16 is not None else None,
            self.n_samples, self._work.ctypes.data, self._work.nbytes, out.ctypes.data, mode, chunk, None)
        if rc != 0:
            raise DeviceError(f"C frontend returned {rc} ({_STATUS.get(rc, 'unknown')})",
                              hint="rebuild the library from tables generated for this configuration")
        return out.reshape(self.n_mels, self.n_frames)

    def logmel(self, audio: np.ndarray, *, chunk: int = 0) -> np.ndarray:
        """Log-mel of one clip: audio (n_samples,) float32 -> (n_mels, n_frames) float32 (natural log).
        ``chunk`` > 0: the read callback delivers at most that many samples per call (streaming test).
        Raises ConfigError for a wrong shape / dtype, DeviceError for a C error status."""
        a = self._audio(audio, np.float32)
        return self._call(a, None, np.zeros(self.n_mels * self.n_frames, np.float32), 0, chunk)

    def quantized(self, audio: np.ndarray) -> np.ndarray:
        """int8 model input of one clip: audio (n_samples,) float32 -> (n_mels, n_frames) int8
        (the NHWC (1, n_mels, n_frames, 1) input, squeezed)."""
        a = self._audio(audio, np.float32)
        return self._call(a, None, np.zeros(self.n_mels * self.n_frames, np.int8), 1)

    def logmel_pcm16(self, pcm: np.ndarray) -> np.ndarray:
        """As :meth:`logmel` for 16-bit PCM (n_samples,) int16, read through ``asc_fe_read_mem_s16``."""
        a = self._audio(pcm, np.int16)
        return self._call(None, a, np.zeros(self.n_mels * self.n_frames, np.float32), 0)

    def logf(self, x: np.ndarray) -> np.ndarray:
        """``asc_logf`` of every element of float32 ``x`` (same shape)."""
        a = np.ascontiguousarray(x, dtype=np.float32)
        y = np.empty_like(a)
        self.lib.asc_fe_host_logf(a.ctypes.data, y.ctypes.data, a.size)
        return y

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """``asc_fe_quantize`` of every element of float32 ``x`` -> int8 (same shape)."""
        a = np.ascontiguousarray(x, dtype=np.float32)
        y = np.empty(a.shape, np.int8)
        self.lib.asc_fe_host_quantize(a.ctypes.data, y.ctypes.data, a.size)
        return y

    def caller_mxcsr(self) -> int:
        """The process's MXCSR (x86) seen from C: FTZ is bit 15, DAZ bit 6 (the library sets the
        default 0x1F80 during each call and restores this afterwards); -1 on other hosts."""
        return int(self.lib.asc_fe_host_fpenv())


class QemuUserFrontend:
    """Runs an ELF from :func:`build_qemu_user_frontend` under ``qemu-arm`` (user mode).

    ``n_samples``, ``n_mels``, ``n_frames`` as for :class:`HostFrontend` (pass the config's values).
    qemu-arm 7.2 aborts on ELF loading with ``-cpu cortex-m4`` in user mode, so the Cortex-M4 code
    runs on the ``cpu`` model given (default ``cortex-a15``: Armv7 Thumb-2 with the DSP instructions,
    integer divide and VFPv4; the M4 code uses a subset). Floating point is QEMU's IEEE-754 model
    with the Linux default FPSCR (round to nearest, no flush-to-zero), as the Cortex-M4's reset
    FPSCR.
    """

    def __init__(self, elf: str | os.PathLike[str], cfg: FrontendConfig, *, cpu: str = "cortex-a15",
                 qemu: str | None = None, timeout_s: float = _QEMU_TIMEOUT_S):
        self.elf = Path(elf)
        self.cfg = cfg
        self.cpu = cpu
        self.qemu = _which(qemu or "qemu-arm", _QEMU_HINT)
        self.timeout_s = timeout_s

    def _run(self, mode: str, data: np.ndarray) -> bytes:
        with tempfile.TemporaryDirectory(prefix="asc-fe-qemu-") as d:
            fin, fout = Path(d) / "in.f32", Path(d) / "out.bin"
            fin.write_bytes(np.ascontiguousarray(data, dtype="<f4").tobytes())
            cmd = [self.qemu, "-cpu", self.cpu, str(self.elf), mode, str(fin), str(fout)]
            try:
                res = subprocess.run(cmd, capture_output=True, timeout=self.timeout_s)
            except subprocess.TimeoutExpired:
                raise DeviceError(f"qemu-arm run of {self.elf.name} timed out after {self.timeout_s:g} s",
                                  hint="check the runner; a hang means a frontend bug") from None
            if res.returncode != 0:
                meaning = {2: "usage", 3: "cannot open a file", 4: "frontend error status", 5: "I/O error"}
                raise DeviceError(
                    f"qemu-arm {self.elf.name} {mode} exited {res.returncode} "
                    f"({meaning.get(res.returncode, 'crash')}): {res.stderr.decode(errors='replace')[-800:]}",
                    hint="run the same command by hand: " + " ".join(cmd))
            return fout.read_bytes()

    def _audio(self, audio) -> np.ndarray:
        a = np.ascontiguousarray(audio, dtype=np.float32)
        if a.shape != (self.cfg.n_samples,):
            raise ConfigError(f"C frontend: audio of shape {a.shape}, expected ({self.cfg.n_samples},)",
                              hint="pad/crop the clip to cfg.n_samples")
        return a

    def logmel(self, audio: np.ndarray) -> np.ndarray:
        """(n_samples,) float32 -> (n_mels, n_frames) float32, computed by the Cortex-M4 code."""
        raw = self._run("f32", self._audio(audio))
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(self.cfg.n_mels, self.cfg.n_frames)

    def quantized(self, audio: np.ndarray) -> np.ndarray:
        """(n_samples,) float32 -> (n_mels, n_frames) int8, computed by the Cortex-M4 code."""
        raw = self._run("s8", self._audio(audio))
        return np.frombuffer(raw, dtype=np.int8).copy().reshape(self.cfg.n_mels, self.cfg.n_frames)

    def logf(self, x: np.ndarray) -> np.ndarray:
        """``asc_logf`` of every float32 in ``x`` (flattened), computed by the Cortex-M4 code."""
        a = np.ascontiguousarray(x, dtype=np.float32).ravel()
        return np.frombuffer(self._run("logf", a), dtype="<f4").astype(np.float32)


def m4_footprint(elf: str | os.PathLike[str]) -> dict[str, dict[str, int]]:
    """Flash use of the frontend in a Cortex-M4 ELF, bytes per symbol, from its symbol table.

    Returns {"tables": {symbol: bytes} for read-only data (the frontend's generated tables and the
    CMSIS-DSP twiddle / bit-reversal tables and structs that survived --gc-sections), "code":
    {symbol: bytes} for functions of the frontend (asc_fe_*, asc_logf) and CMSIS-DSP (arm_*)},
    and "total": {"tables": ..., "code": ...}.
    Raises DeviceError for an unreadable ELF.
    """
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    tables: dict[str, int] = {}
    code: dict[str, int] = {}
    try:
        with open(elf, "rb") as f:
            ef = ELFFile(f)
            secs = [ef.get_section(i) for i in range(ef.num_sections())]
            symtab = ef.get_section_by_name(".symtab")
            if not isinstance(symtab, SymbolTableSection):
                raise DeviceError(f"{elf}: no symbol table", hint="build without stripping")
            for s in symtab.iter_symbols():
                size, typ, shndx = s["st_size"], s["st_info"]["type"], s["st_shndx"]
                if size == 0 or not isinstance(shndx, int):
                    continue
                sec = secs[shndx]
                flags = sec["sh_flags"]
                name = s.name
                is_ours = name.startswith(("asc_fe_", "asc_logf", "arm_", "twiddleCoef", "armBitRev"))
                if not is_ours:
                    continue
                if typ == "STT_FUNC":
                    code[name] = int(size)
                elif typ == "STT_OBJECT" and not (flags & 0x1):  # SHF_WRITE unset: read-only
                    tables[name] = int(size)
    except (OSError, ELFError) as exc:
        raise DeviceError(f"cannot read {elf}: {exc}", hint="rebuild the ELF") from None
    return {"tables": tables, "code": code,
            "total": {"tables": sum(tables.values()), "code": sum(code.values())}}
