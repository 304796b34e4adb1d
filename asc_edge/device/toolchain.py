"""Locate the host tools of the device flow (the Arm cross-compiler, ``make``, QEMU) and run
them time-bounded.

Each lookup raises :class:`asc_edge.errors.DeviceError` naming the missing program and the
Debian package that provides it.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass

from asc_edge.errors import DeviceError

#: apt command that installs the cross-compiler together with newlib (libc / libm / nano.specs).
GCC_APT_HINT = "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi"
QEMU_APT_HINT = "apt-get install qemu-system-arm"
MAKE_APT_HINT = "apt-get install make"

_HINTS = {
    "arm-none-eabi-gcc": GCC_APT_HINT,
    "arm-none-eabi-objcopy": GCC_APT_HINT,  # binutils-arm-none-eabi, a dependency of the above
    "arm-none-eabi-size": GCC_APT_HINT,
    "make": MAKE_APT_HINT,
    "qemu-system-arm": QEMU_APT_HINT,
}


def find_tool(name: str) -> str:
    """Absolute path of the program ``name`` on ``PATH``.

    Raises:
        DeviceError: the program is not on ``PATH`` (the hint gives the apt package).
    """
    path = shutil.which(name)
    if path is None:
        hint = _HINTS.get(name, f"install {name} and put it on PATH")
        raise DeviceError(f"{name} not found on PATH", hint=hint)
    return path


@dataclass(frozen=True)
class BuildTools:
    """Absolute paths of the programs a firmware build runs."""

    gcc: str
    objcopy: str
    make: str


def build_tools() -> BuildTools:
    """The cross-compiler, objcopy and make.

    Raises:
        DeviceError: one of them is missing (hint: the apt command that installs it).
    """
    return BuildTools(
        gcc=find_tool("arm-none-eabi-gcc"),
        objcopy=find_tool("arm-none-eabi-objcopy"),
        make=find_tool("make"),
    )


def qemu_system_arm() -> str:
    """Absolute path of ``qemu-system-arm``.

    Raises:
        DeviceError: it is not on ``PATH`` (hint: ``apt-get install qemu-system-arm``).
    """
    return find_tool("qemu-system-arm")


@dataclass(frozen=True)
class ProcessResult:
    """Outcome of :func:`run_bounded`: exit status (negative = killed by that signal), the
    combined stdout + stderr text, the wall time in seconds, and whether it was killed for
    running past its time limit."""

    returncode: int
    output: str
    wall_s: float
    timed_out: bool


def kill_group(proc, wait: bool = True) -> None:
    """SIGKILL the process group of ``proc`` (started with ``start_new_session=True``), if it still
    exists; then reap it unless ``wait`` is false."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if wait:
        proc.wait()


def run_bounded(
    cmd: list[str], *, cwd: str | None, timeout_s: float, env: dict[str, str] | None = None
) -> ProcessResult:
    """Run ``cmd`` in its own process group with stdout and stderr merged, for at most
    ``timeout_s`` seconds; on timeout the whole group (e.g. make and its compilers) is killed
    with SIGKILL and the output produced so far is returned with ``timed_out=True``.

    Raises:
        DeviceError: the program cannot be started (OSError).
    """
    start = time.monotonic()
    # A crashing emulator must not leave core files in the work dir: children inherit a zero core
    # limit set around the fork (preexec_fn is not safe in a threaded parent such as torch's).
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, hard))
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        raise DeviceError(f"cannot start {cmd[0]}: {exc}",
                          hint="check that the program is installed and executable") from exc
    finally:
        resource.setrlimit(resource.RLIMIT_CORE, (soft, hard))
    timed_out = False
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        kill_group(proc, wait=False)
        out, _ = proc.communicate()
    except BaseException:  # KeyboardInterrupt etc.: never leave the group running
        kill_group(proc)
        raise
    wall = time.monotonic() - start
    return ProcessResult(
        returncode=proc.returncode,
        output=(out or b"").decode("utf-8", errors="replace"),
        wall_s=wall,
        timed_out=timed_out,
    )


def tail(text: str, lines: int = 25) -> str:
    """The last ``lines`` non-empty lines of ``text`` (for error messages)."""
    kept = [ln for ln in text.splitlines() if ln.strip()]
    return "\n".join(kept[-lines:])


def unpack_tar_gz(tar, dest, find_root, *, complete, prepare=None, hint: str) -> None:
    """Extract the gzip tarball ``tar`` and move the folder ``find_root(extracted_dir)`` picks to
    ``dest``, atomically: extracted into a temporary folder beside ``dest`` (same file system), then
    one rename; an incomplete ``dest`` left by an interrupted run is replaced, a complete one made
    meanwhile by another process (``complete(dest)``) is kept. ``prepare(root)`` runs before the
    rename (e.g. to write a marker file). Used for the CMSIS-DSP sources and the TFLM bundle.

    Raises:
        DeviceError: the tarball cannot be read (``hint`` says what to do), or ``find_root`` raises it.
    """
    import tarfile
    import tempfile
    from pathlib import Path

    tar, dest = Path(tar), Path(dest)
    tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=dest.parent))
    try:
        try:
            with tarfile.open(tar, "r:gz") as tf:
                tf.extractall(tmp, filter="data")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise DeviceError(f"{tar}: cannot unpack ({exc})", hint=hint) from None
        root = find_root(tmp)
        if prepare is not None:
            prepare(root)
        if dest.exists() and not complete(dest):
            shutil.rmtree(dest)
        try:
            os.rename(root, dest)
        except OSError:
            if not complete(dest):  # lost a race against another process: theirs is fine
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
