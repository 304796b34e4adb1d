"""CMSIS-DSP sources for the log-mel frontend: fetch the pinned sdist, unpack it once, list the files.

Arm's CMSIS-DSP (Apache-2.0) is published on PyPI as the ``cmsisdsp`` source distribution, which
carries the complete C library (``Include/``, ``PrivateInclude/``, ``Source/``) next to its Python
wrapper. We only use the C sources: :func:`ensure_cmsis_dsp` runs ``pip download`` for the pinned
version into a cache (default ``~/.cache/asc-edge/cmsis-dsp/``, :func:`default_cache_root`), checks the sdist's sha256 and unpacks it once. The importable ``cmsisdsp`` Python package is
neither needed nor used.

:func:`frontend_sources` lists the ``.c`` files the frontend links: only the common tables, for
the real-FFT split's twiddles (its complex FFT is its own). CMSIS-DSP 1.10 no longer supports
``ARM_DSP_CONFIG_TABLES`` (``arm_math_types.h`` stops with an #error), so the size of the tables in
flash is controlled the other way CMSIS-DSP documents: the frontend names the one table of its FFT
size (``twiddleCoef_rfft_<N>``) and every CMSIS-DSP file is compiled with ``-ffunction-sections
-fdata-sections`` and linked with ``--gc-sections``, so only that table stays in the image
(:data:`CMSIS_DSP_CFLAGS`, :data:`CMSIS_DSP_LDFLAGS`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from asc_edge.device.toolchain import unpack_tar_gz
from asc_edge.errors import DeviceError
from asc_edge.report.io import file_sha256

__all__ = [
    "CMSIS_DSP_VERSION",
    "CMSIS_DSP_SDIST",
    "CMSIS_DSP_SHA256",
    "CMSIS_DSP_DEFINES",
    "CMSIS_DSP_CFLAGS",
    "CMSIS_DSP_LDFLAGS",
    "FRONTEND_SOURCES",
    "default_cache_root",
    "ensure_cmsis_dsp",
    "frontend_sources",
    "include_dirs",
    "python_package_present",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIM_DIR = REPO_ROOT / "firmware" / "cmsis_shim"

CMSIS_DSP_VERSION = "1.10.3"
CMSIS_DSP_SDIST = f"cmsisdsp-{CMSIS_DSP_VERSION}.tar.gz"
#: sha256 of ``cmsisdsp-1.10.3.tar.gz`` as served by PyPI (measured on the first download; PyPI
#: files are immutable, so any other digest means a corrupt or substituted file).
CMSIS_DSP_SHA256 = "307d32298faa7c58db912851027fce35f886fec7eb1a27c4b309ce1a97f47519"

#: Preprocessor defines for every CMSIS-DSP file and the frontend (host and Cortex-M4 alike).
CMSIS_DSP_DEFINES = ["-DARM_MATH_LOOPUNROLL"]
#: Flags that let the linker drop unused functions and tables (``--gc-sections``).
CMSIS_DSP_CFLAGS = ["-ffunction-sections", "-fdata-sections"]
CMSIS_DSP_LDFLAGS = ["-Wl,--gc-sections"]

#: CMSIS-DSP sources the log-mel frontend links (paths relative to the unpacked root): only
#: ``arm_common_tables.c``, for ``twiddleCoef_rfft_<N>``, the real-FFT split's twiddles that
#: ``asc_fe_split_power`` reads (--gc-sections drops the file's other tables). The frontend's
#: complex FFT is its own (``asc_fe_cfft_fast``, fixed tables in ``firmware/frontend/asc_fe_fft_tables.h``;
#: until then ``arm_cfft_f32``, set up by ``arm_rfft_fast_init_<N>_f32``); the split is fused with
#: the power spectrum (issue 16) and windowing is the frontend's own loop.
FRONTEND_SOURCES = (
    "Source/CommonTables/arm_common_tables.c",
)

PIP_TIMEOUT_S = 300


def default_cache_root() -> Path:
    """``<cache_root>/cmsis-dsp`` (:func:`asc_edge.paths.cache_root`; the pinned sdist, checked by sha256)."""
    from asc_edge.paths import cache_root

    return cache_root() / "cmsis-dsp"


def python_package_present() -> bool:
    """Whether the optional ``cmsisdsp`` Python package is importable (informational only)."""
    import importlib.util

    return importlib.util.find_spec("cmsisdsp") is not None


def _looks_unpacked(root: Path) -> bool:
    return all((root / d).is_dir() for d in ("Include", "PrivateInclude", "Source")) and all(
        (root / s).is_file() for s in FRONTEND_SOURCES)


def _pip_download(cache: Path, timeout_s: float) -> None:
    """``python -m pip download`` the pinned sdist into ``cache``. Raises DeviceError on failure."""
    sdist = cache / CMSIS_DSP_SDIST
    # --no-build-isolation: pip prepares the sdist's metadata with the running environment instead
    # of building numpy & co. from source in an isolated one (what --no-binary :all: would do).
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           "--no-build-isolation", "--disable-pip-version-check", "-d", str(cache),
           f"cmsisdsp=={CMSIS_DSP_VERSION}"]
    hint = (f"connect to PyPI, or download {CMSIS_DSP_SDIST} (sha256 {CMSIS_DSP_SHA256}) by hand "
            f"and place it at {sdist}")
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise DeviceError(f"pip download of cmsisdsp=={CMSIS_DSP_VERSION} timed out after {timeout_s:g} s",
                          hint=hint) from None
    except OSError as exc:
        raise DeviceError(f"pip download failed: cannot run {sys.executable} -m pip ({exc})", hint=hint) from None
    if res.returncode != 0 or not sdist.is_file():
        out = "\n".join(ln for ln in (res.stdout + res.stderr).splitlines() if ln.strip())[-1500:]
        raise DeviceError(f"pip download failed for cmsisdsp=={CMSIS_DSP_VERSION} (exit {res.returncode}):\n{out}",
                          hint=hint)


def _verify_sdist(sdist: Path) -> None:
    """Compare the sdist's sha256 with the pinned one; record it beside the file."""
    digest = file_sha256(sdist)
    if digest != CMSIS_DSP_SHA256:
        raise DeviceError(
            f"{sdist}: sha256 {digest} does not match the pinned {CMSIS_DSP_SHA256} of "
            f"cmsisdsp {CMSIS_DSP_VERSION}",
            hint=f"delete {sdist} and run again to download it from PyPI")
    record = sdist.with_name(sdist.name + ".sha256")
    if not record.is_file() or record.read_text().split()[:1] != [digest]:
        tmp = record.with_name(f"{record.name}.tmp{os.getpid()}")
        tmp.write_text(f"{digest}  {sdist.name}\n")
        os.replace(tmp, record)


def _unpack(sdist: Path, dest: Path) -> None:
    """Extract the sdist's top folder into ``dest`` atomically (temp dir in the same cache, rename)."""
    def root_of(tmp: Path) -> Path:
        root = next((p for p in tmp.iterdir() if p.is_dir() and _looks_unpacked(p)), None)
        if root is None:
            raise DeviceError(f"{sdist}: no Include/, PrivateInclude/ and Source/ with the FFT sources inside",
                              hint=f"delete {sdist}; the pinned cmsisdsp {CMSIS_DSP_VERSION} sdist has them")
        return root

    unpack_tar_gz(sdist, dest, root_of, complete=_looks_unpacked,
                  hint=f"delete {sdist} and run again to download it afresh")


def ensure_cmsis_dsp(cache_root: str | os.PathLike[str] | None = None, *,
                     timeout_s: float = PIP_TIMEOUT_S) -> Path:
    """Root of an unpacked CMSIS-DSP source tree (has ``Include/``, ``PrivateInclude/``, ``Source/``).

    On first use: ``python -m pip download --no-deps --no-binary :all: cmsisdsp==1.10.3`` into
    ``cache_root`` (default :func:`default_cache_root`) with a timeout of ``timeout_s`` seconds,
    verify the sdist's sha256 against :data:`CMSIS_DSP_SHA256` (and record it in
    ``<sdist>.sha256``), then unpack it into ``cache_root/cmsisdsp-1.10.3/`` (temp dir + rename).
    Later calls return the unpacked tree without network access. A sdist already placed in the
    cache by hand is used as is (after the sha256 check).

    Raises:
        DeviceError: the download fails (offline, PyPI unreachable, timeout), the sdist's sha256 is
            wrong, or it cannot be unpacked; the hint says where to put the file by hand.
    """
    cache = Path(cache_root) if cache_root is not None else default_cache_root()
    dest = cache / f"cmsisdsp-{CMSIS_DSP_VERSION}"
    if _looks_unpacked(dest):
        return dest
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DeviceError(f"cannot create the CMSIS-DSP cache {cache}: {exc}",
                          hint="pass a writable cache_root") from None
    import fcntl

    # One process at a time (pytest -n 2 builds firmware in two workers): the others wait, then
    # find the tree unpacked.
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _looks_unpacked(dest):
            return dest
        sdist = cache / CMSIS_DSP_SDIST
        if not sdist.is_file():
            _pip_download(cache, timeout_s)
        _verify_sdist(sdist)
        _unpack(sdist, dest)  # replaces a partial tree from an interrupted run
    return dest


def frontend_sources(root: str | os.PathLike[str]) -> list[Path]:
    """Absolute paths of :data:`FRONTEND_SOURCES` under the unpacked tree ``root``.

    Raises DeviceError when one is missing (not a cmsisdsp 1.10.x tree).
    """
    root = Path(root)
    paths = [root / s for s in FRONTEND_SOURCES]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise DeviceError(f"CMSIS-DSP tree {root} lacks {', '.join(missing)}",
                          hint="use the tree returned by ensure_cmsis_dsp()")
    return paths


def include_dirs(root: str | os.PathLike[str]) -> list[Path]:
    """Include directories for CMSIS-DSP code: ``Include/``, ``PrivateInclude/`` and our
    ``firmware/cmsis_shim`` (which stands in for CMSIS-Core's ``cmsis_compiler.h``)."""
    root = Path(root)
    return [root / "Include", root / "PrivateInclude", SHIM_DIR]
