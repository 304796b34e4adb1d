"""``asc-edge doctor``: is every tool each command needs installed? One :class:`Check` per tool.

It only looks (PATH lookups, package metadata, ``--version`` calls, the CMSIS-DSP cache folder): nothing
is downloaded, built or installed. The tool discovery is the commands' own —
:mod:`asc_edge.device.toolchain` (the cross-compiler, ``make``; their apt lines),
:func:`asc_edge.device.qemu.qemu_info`, :func:`asc_edge.device.renode.renode_info`, the pyOCD / OpenOCD
lookup of :mod:`asc_edge.device.flash` and :mod:`asc_edge.device.cmsis_dsp` — and the package pins come
from the files that install them: ``pyproject.toml`` (dependencies and extras) and
``scripts/requirements-export.txt`` (the export environment).

A check is *core* when ``train``, ``evaluate``, ``export`` or ``bench`` (on QEMU, the default) need it;
:func:`exit_status` is 1 when a core check fails, else 0. Renode (``bench --renode``), pyOCD / OpenOCD
(``flash``), the transformer teachers and ``qemu-arm`` (tests) are optional.
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from .paths import REPO_ROOT

#: What ``bash scripts/setup.sh`` is (installs every core tool on Debian); shown under a failing report.
SETUP_LINE = "bash scripts/setup.sh"
#: Core commands: a missing tool they need makes :func:`exit_status` 1.
CORE_COMMANDS = ("train", "evaluate", "export", "bench")

_TRAIN = "train, evaluate, export, bench"  # every command that loads a model or data
#: needed-by text per project dependency (default: :data:`_TRAIN`)
_NEEDED_BY = {
    "torchinfo": "train, complexity", "matplotlib": "train, bench (plots)", "pyelftools": "bench",
    "pycparser": "export, bench", "torch-pruning": "prune", "librosa": "train (pitch shift, time stretch)",
    "tensorboard": "train --logger tensorboard (the default)",
}
#: distribution name (lower case) → import name, where they differ beyond ``-`` → ``_``
_IMPORT_NAME = {"pyelftools": "elftools", "pyyaml": "yaml", "robotframework": "robot"}
#: import name → apt line for a shared library the module loads on import
_SYSTEM_LIBRARY = {"soundfile": "apt-get install libsndfile1"}
_TIMEOUT_S = 30
_FOUND_CHARS = 200  # longer "found" texts (e.g. a launcher's error output) are cut in the report, not in --json


@dataclass
class Check:
    """One line of the report: ``name`` (what is checked), ``needed_by`` (commands), ``core`` (see the
    module docstring), ``ok``, ``found`` (version / path, or why not) and ``install`` (the exact line
    that installs it; shown when it is missing)."""

    name: str
    needed_by: str
    core: bool
    ok: bool
    found: str
    install: str

    @property
    def status(self) -> str:
        return "OK" if self.ok else "MISSING"


# ------------------------------------------------------------------------------------------ helpers
def _py() -> str:
    """The interpreter to install Python packages into (this one: normally ``.venv/bin/python``)."""
    return sys.executable


def _pip(*specs: str, no_deps: bool = False) -> str:
    quoted = " ".join(f"'{s}'" if re.search(r"[<>=!~ ,\[]", s) else s for s in specs)
    return f"{_py()} -m pip install {'--no-deps ' if no_deps else ''}{quoted}"


def _first_line(cmd: list[str]) -> str:
    """First non-empty line of ``cmd``'s stdout (else stderr); raises OSError / TimeoutExpired."""
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=_TIMEOUT_S, stdin=subprocess.DEVNULL)
    lines = [ln.strip() for ln in (out.stdout + "\n" + out.stderr).splitlines() if ln.strip()]
    return lines[0] if lines else f"exit status {out.returncode}"


def _split_requirement(spec: str) -> tuple[str, str]:
    """``"torch==2.13.0"`` → ``("torch", "==2.13.0")`` (markers and extras dropped)."""
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*([^;]*)", spec)
    return (m.group(1), m.group(2).strip()) if m else (spec.strip(), "")


def _version_ok(version: str, spec: str) -> bool:
    if not spec:
        return True
    try:
        from packaging.specifiers import SpecifierSet

        return SpecifierSet(spec).contains(version, prereleases=True)
    except Exception:  # noqa: BLE001 - no packaging, or a version it cannot parse: do not guess
        return True


def _pyproject() -> dict:
    """``[project]`` of the checkout's pyproject.toml ({} outside a checkout)."""
    try:
        import tomllib

        return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8")).get("project", {})
    except (OSError, ValueError):
        return {}


def _dependencies() -> list[str]:
    deps = _pyproject().get("dependencies")
    if deps is None:  # an installed (non-checkout) asc-edge: its recorded metadata
        try:
            deps = [r for r in (md.requires("asc-edge") or []) if "extra ==" not in r]
        except md.PackageNotFoundError:
            deps = []
    return list(deps)


def _extra(name: str) -> list[str]:
    return list(_pyproject().get("optional-dependencies", {}).get(name, []))


def _export_requirements() -> list[tuple[str, bool]]:
    """``[(requirement, no_deps)]`` of scripts/requirements-export.txt (``#no-deps`` lines: True)."""
    path = REPO_ROOT / "scripts" / "requirements-export.txt"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return [(n, False) for n in ("tensorflow", "tf-keras", "onnx", "onnxruntime", "onnx-graphsurgeon",
                                     "sng4onnx", "sne4onnx", "psutil", "ai-edge-litert", "tflite-micro")] \
            + [("onnx2tf", True)]
    reqs = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#no-deps "):
            reqs.append((line.split(None, 1)[1].strip(), True))
        elif line and not line.startswith("#"):
            reqs.append((line, False))
    return reqs


def _package(spec: str, needed_by: str, core: bool, install: str | None = None, no_deps: bool = False) -> Check:
    """A Python distribution: importable here, and its version within ``spec``'s range."""
    dist, rng = _split_requirement(spec)
    module = _IMPORT_NAME.get(dist.lower(), dist.lower().replace("-", "_"))
    install = install or _pip(spec, no_deps=no_deps)
    name = f"python: {dist}"
    if importlib.util.find_spec(module) is None:
        return Check(name, needed_by, core, False, f"`import {module}` fails", install)
    try:
        version = md.version(dist)
    except md.PackageNotFoundError:
        version = "?"
    if version != "?" and not _version_ok(version, rng):
        return Check(name, needed_by, core, False, f"{version}, needs {rng}", install)
    if module in _SYSTEM_LIBRARY:
        try:
            importlib.import_module(module)
        except OSError as exc:  # e.g. soundfile without libsndfile
            return Check(name, needed_by, core, False, f"{version}, but {exc}", _SYSTEM_LIBRARY[module])
    return Check(name, needed_by, core, True, version, install)


def _program(name: str, needed_by: str, core: bool, install: str, version_args=("--version",)) -> Check:
    """A program on PATH and the first line of its ``--version``."""
    path = shutil.which(name)
    if path is None:
        return Check(name, needed_by, core, False, "not on PATH", install)
    try:
        version = _first_line([path, *version_args])
    except (OSError, subprocess.SubprocessError) as exc:  # on PATH but cannot run (permissions, a hang)
        return Check(name, needed_by, core, False, f"{path} does not run: {_one_line(exc)}", install)
    return Check(name, needed_by, core, True, f"{version} ({path})", install)


# ------------------------------------------------------------------------------------------- checks
def _python() -> list[Check]:
    want = _pyproject().get("requires-python", ">=3.11,<3.12")
    v = ".".join(map(str, sys.version_info[:3]))
    return [Check("python", "all commands", True, _version_ok(v, want), f"{v} ({sys.executable})" +
                  ("" if _version_ok(v, want) else f", needs {want}"),
                  "apt-get install python3.11 python3.11-venv, then " + SETUP_LINE)]


def _project_packages() -> list[Check]:
    return [_package(spec, _NEEDED_BY.get(_split_requirement(spec)[0].lower(), _TRAIN), True)
            for spec in _dependencies()]


def _export_environment() -> list[Check]:
    return [_package(spec, "export", True, no_deps=no_deps) for spec, no_deps in _export_requirements()]


def _host_compiler() -> list[Check]:
    cc = os.environ.get("CC", "gcc")  # what the host builds use (asc_edge.codegen.kernels_host)
    return [_program(cc, "export (host C check), bench", True, "apt-get install gcc (or set CC to a C99 compiler)")]


def _cross_toolchain() -> list[Check]:
    from .device.toolchain import GCC_APT_HINT, MAKE_APT_HINT

    checks = [_program("arm-none-eabi-gcc", "bench, flash", True, GCC_APT_HINT),
              _program("arm-none-eabi-objcopy", "bench, flash", True, GCC_APT_HINT),
              _program("make", "bench, flash", True, MAKE_APT_HINT)]
    gcc = shutil.which("arm-none-eabi-gcc")
    newlib = "apt-get install libnewlib-arm-none-eabi"
    if gcc is None:
        checks.append(Check("newlib (arm-none-eabi libc)", "bench, flash", True, False,
                            "no arm-none-eabi-gcc to ask", GCC_APT_HINT))
    else:
        specs = _first_line([gcc, "-print-file-name=nano.specs"])
        ok = os.path.isabs(specs) and os.path.isfile(specs)
        checks.append(Check("newlib (arm-none-eabi libc)", "bench, flash", True, ok,
                            str(Path(specs).resolve()) if ok else "nano.specs not found by arm-none-eabi-gcc",
                            newlib))
    return checks


def _qemu() -> list[Check]:
    from .device.qemu import qemu_info
    from .device.toolchain import QEMU_APT_HINT

    if shutil.which("qemu-system-arm") is None:
        return [Check("qemu-system-arm", "bench", True, False, "not on PATH", QEMU_APT_HINT)]
    i = qemu_info()
    return [Check("qemu-system-arm", "bench", True, True, f"{i['version']} ({i['qemu']}; machine {i['machine']})",
                  QEMU_APT_HINT)]


def _cmsis_dsp() -> list[Check]:
    from .device import cmsis_dsp

    cache = cmsis_dsp.default_cache_root()
    tree = cache / f"cmsisdsp-{cmsis_dsp.CMSIS_DSP_VERSION}"
    install = (f"{_py()} -c 'from asc_edge.device.cmsis_dsp import ensure_cmsis_dsp; ensure_cmsis_dsp()' "
               f"(downloads cmsisdsp=={cmsis_dsp.CMSIS_DSP_VERSION} from PyPI once)")
    name, needed_by = f"CMSIS-DSP {cmsis_dsp.CMSIS_DSP_VERSION} sources", "bench, export --precision fp16"
    if cmsis_dsp._looks_unpacked(tree):
        return [Check(name, needed_by, True, True, str(tree), install)]
    if (cache / cmsis_dsp.CMSIS_DSP_SDIST).is_file():
        return [Check(name, needed_by, True, True, f"{cache / cmsis_dsp.CMSIS_DSP_SDIST} (unpacked on first use)",
                      install)]
    return [Check(name, needed_by, True, False, f"not in the cache {cache}", install)]


def _renode() -> list[Check]:
    from .device.renode import renode_info, renode_python

    needed_by = "bench --renode (optional)"
    install = ("ASC_EDGE_RENODE=<Renode 1.14 tarball or folder> bash scripts/setup_renode.sh "
               "(or upstream's renode_1.14.0_amd64.deb)")
    robot_install = (f"{renode_python()} -m pip install " + " ".join(f"'{s}'" for s in _extra("renode"))
                     if _extra("renode") else f"{renode_python()} -m pip install -e '.[renode]'")
    try:
        i = renode_info()
    except Exception as exc:  # noqa: BLE001 - DeviceError (not installed), a launcher that cannot start
        return [Check("renode", needed_by, False, False, _one_line(exc), install),
                Check("python: robotframework (renode-test)", needed_by, False, False, "no Renode", robot_install)]
    version = _one_line(Exception(i["renode_version"]))
    robot = Check("python: robotframework (renode-test)", needed_by, False, i["robotframework"] is not None,
                  f"{i['robotframework'] or 'cannot import robot'} ({i['python']})", robot_install)
    if not re.match(r"renode,? version", version, re.I):  # the launcher ran, Renode did not (e.g. no mono)
        return [Check("renode", needed_by, False, False, f"{i['renode']} does not start: {version}",
                      "bash scripts/setup_renode.sh (installs Renode's mono runtime)"), robot]
    return [Check("renode", needed_by, False, True, f"{version} ({i['renode']})", install), robot]


def _flash_tools() -> list[Check]:
    from .device.flash import OPENOCD_APT_HINT, _pyocd_available

    pyocd = next((s for s in _extra("flash") if _split_requirement(s)[0] == "pyocd"), "pyocd")
    if _pyocd_available():
        checks = [_package(pyocd, "flash (optional; pyOCD or OpenOCD)", False)]
    else:
        checks = [Check("python: pyocd", "flash (optional; pyOCD or OpenOCD)", False, False, "`import pyocd` fails",
                        _pip(pyocd))]
    checks.append(_program("openocd", "flash (optional; pyOCD or OpenOCD)", False, OPENOCD_APT_HINT))
    return checks


def _teachers() -> list[Check]:
    needed_by = "train --model passt / ast (optional)"
    checks = [_package(spec, needed_by, False) for spec in _extra("teachers")]
    # PaSST's model code, installed without its declared dependencies (see pyproject.toml, teachers extra)
    checks.append(_package("hear21passt==0.0.26", "train --model passt (optional)", False, no_deps=True))
    return checks


def _qemu_user() -> list[Check]:
    return [_program("qemu-arm", "tests: Cortex-M4 DSP kernels (optional)", False,
                     "apt-get install qemu-user")]


#: (group, function) in report order
GROUPS = (("python", _python), ("python packages", _project_packages), ("export environment", _export_environment),
          ("host C compiler", _host_compiler), ("Arm cross-compiler", _cross_toolchain), ("QEMU", _qemu),
          ("CMSIS-DSP", _cmsis_dsp), ("Renode", _renode), ("flash tools", _flash_tools),
          ("transformer teachers", _teachers), ("qemu-user", _qemu_user))
_CORE_GROUPS = {"python", "python packages", "export environment", "host C compiler", "Arm cross-compiler", "QEMU",
                "CMSIS-DSP"}


def _one_line(exc: BaseException) -> str:
    return " | ".join(ln.strip() for ln in str(exc).splitlines() if ln.strip()) or type(exc).__name__


def run_checks() -> list[Check]:
    """Every check, in report order. Never raises: a check that fails unexpectedly is one MISSING
    line with the exception's message."""
    checks: list[Check] = []
    for group, fn in GROUPS:
        try:
            checks.extend(fn())
        except Exception as exc:  # noqa: BLE001 - the doctor reports, it does not crash
            checks.append(Check(group, "", group in _CORE_GROUPS, False, f"check failed: {_one_line(exc)}",
                                SETUP_LINE))
    return checks


def core_missing(checks: list[Check]) -> list[Check]:
    return [c for c in checks if c.core and not c.ok]


def exit_status(checks: list[Check]) -> int:
    """0 when everything the core commands need is there, 1 otherwise (optional tools do not count)."""
    return 1 if core_missing(checks) else 0


def to_json(checks: list[Check]) -> dict:
    return {"checks": [{**asdict(c), "status": c.status} for c in checks], "exit_status": exit_status(checks)}


def format_report(checks: list[Check]) -> list[str]:
    """One line per check (``OK``/``MISSING``, what, needed by, found), an ``install:`` line under each
    missing one, and a summary line."""
    w_name = max(len(c.name) for c in checks)
    w_need = max(len(c.needed_by) for c in checks)
    lines = [f"{'status':<8} {'check':<{w_name}}  {'needed by':<{w_need}}  found"]
    for c in checks:
        found = c.found if len(c.found) <= _FOUND_CHARS else c.found[:_FOUND_CHARS - 3] + "..."
        lines.append(f"{c.status:<8} {c.name:<{w_name}}  {c.needed_by:<{w_need}}  {found}".rstrip())
        if not c.ok:
            lines.append(f"{'':<8} install: {c.install}")
    core = core_missing(checks)
    optional = [c for c in checks if not c.core and not c.ok]
    if core:
        lines.append(f"{len(core)} missing for the core commands ({', '.join(CORE_COMMANDS)}): "
                     f"{', '.join(c.name for c in core)}; install them as shown, or run `{SETUP_LINE}` "
                     "(Debian: installs them all)")
    else:
        lines.append(f"everything the core commands ({', '.join(CORE_COMMANDS)}) need is installed"
                     + (f"; optional, not installed: {', '.join(c.name for c in optional)}" if optional else ""))
    return lines
