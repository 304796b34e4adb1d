"""Termination signals handled like Ctrl-C, for the command line and the benchmark scripts.

SIGTERM (``timeout``, ``kill``, a CI runner's cancel) and SIGHUP (a closed terminal) would otherwise end
Python at once: no ``finally`` runs, so temporary folders stay behind and emulator process groups
(QEMU, Renode) outlive the command. Here they raise :class:`Terminated`, a ``KeyboardInterrupt``, in
the main thread, so the clean-up written for Ctrl-C runs for them too: temporary folders removed,
emulator and build process groups killed (:func:`asc_edge.device.toolchain.run_bounded`), atomic
writes abandoned before their rename.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from typing import Callable, Iterator

#: The signals that end a run the way Ctrl-C does.
TERMINATING = (signal.SIGTERM, signal.SIGHUP)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread like Ctrl-C's KeyboardInterrupt; ``signum`` is
    the signal's number (the exit status is 128 + it)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _terminate(signum, frame) -> None:
    for s in (*TERMINATING, signal.SIGINT):  # a second signal must not cut the clean-up short
        signal.signal(s, signal.SIG_IGN)
    raise Terminated(signum)


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise :class:`Terminated`; the previous handlers (also
    SIGINT's, which the first signal sets to ignore) are restored on leaving, so in-process callers
    (tests, notebooks) get their own back. Off the main thread, where Python cannot install signal
    handlers, it changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _terminate) for s in TERMINATING}
    previous[signal.SIGINT] = signal.getsignal(signal.SIGINT)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def run_script(main: Callable[[], None]) -> None:
    """Run a benchmark script's ``main()`` so that Ctrl-C, SIGTERM and SIGHUP clean up (temporary
    folders, emulators) and end with one line on stderr and exit status 130 / 128 + the signal's
    number. Result files are written atomically (each script writes them at its end, or after each
    finished model where it says so), so a stopped run leaves every file whole: the new one or the old."""
    with terminate_as_interrupt():
        try:
            main()
        except Terminated as exc:
            print(f"terminated by {signal.Signals(exc.signum).name}: temporary files and emulators cleaned up, "
                  "result files as last written", file=sys.stderr)
            sys.exit(128 + exc.signum)
        except KeyboardInterrupt:
            print("interrupted: temporary files and emulators cleaned up, result files as last written", file=sys.stderr)
            sys.exit(130)
