"""One error type for everything a user can get wrong; the CLI prints it as one line.

Every error names the problem *and* the fix, e.g.::

    raise DataError(f"{path}: not a WAV file (soundfile: {exc})",
                    hint="re-export the clip as 16-bit PCM WAV or drop it from the CSV")
"""

from __future__ import annotations


class AscEdgeError(Exception):
    """Base class: ``message`` says what is wrong, ``hint`` says how to fix it."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} (fix: {self.hint})" if self.hint else self.message


class DataError(AscEdgeError):
    """Bad dataset layout, CSV rows, or audio files."""


class ConfigError(AscEdgeError):
    """Inconsistent or unknown settings (model name, split, frontend, flags)."""


class BudgetError(AscEdgeError):
    """A model over the DCASE Task 1 complexity budget (128,000 parameter bytes, 30 M MACs)."""


class CheckpointError(AscEdgeError):
    """A checkpoint that cannot be read or does not match the expected model."""


class ExportError(AscEdgeError):
    """A model that cannot be exported or whose exported form disagrees with its source
    (ONNX parity, converter failure, unsupported or non-int8 operators, corrupt files)."""


class DeviceError(AscEdgeError):
    """The device side: a missing cross-compiler or emulator, a firmware build or link failure
    (e.g. over the 128 KiB SRAM), an emulator that faults, hangs or times out, no debug probe."""
