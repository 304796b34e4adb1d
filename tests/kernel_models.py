"""Cortex-M4 kernel test programs under qemu-arm (Linux user mode), shared by the kernel tests.

:data:`QEMU_USER_PRELUDE` is the C start of such a program (raw write/exit system calls, scratch and
output buffers; ``emit(status, n)`` writes the status and ``n`` output bytes to stdout);
:func:`run_m4_cases` builds one with the Cortex-M4 DSP build of firmware/nn, runs it and checks
every case's bytes. (Single-operator models against tflite-micro: tests/op_models.py and
tests/test_ops.py, driven by the operator registry.)
"""

from __future__ import annotations

from pathlib import Path

# C prelude of the Cortex-M4 kernel test programs run under qemu-arm (Linux user mode): raw
# write/exit system calls, scratch and output buffers, emit(status, n) writes both to stdout.
QEMU_USER_PRELUDE = r"""
#include <stdint.h>
#include "asc_nn.h"
static long sys_write(int fd, const void *buf, unsigned long n) {
    register long r0 __asm__("r0") = fd; register long r1 __asm__("r1") = (long)buf;
    register long r2 __asm__("r2") = (long)n; register long r7 __asm__("r7") = 4;
    __asm__ volatile("svc 0" : "+r"(r0) : "r"(r1), "r"(r2), "r"(r7) : "memory"); return r0; }
static void sys_exit(int code) {
    register long r0 __asm__("r0") = code; register long r7 __asm__("r7") = 1;
    __asm__ volatile("svc 0" : : "r"(r0), "r"(r7) : "memory"); for (;;) {} }
static int8_t scratch[4096];
static int8_t out[65536];
static void emit(int32_t status, int32_t n) { sys_write(1, &status, 4); sys_write(1, out, (unsigned long)n); }
int main(void);
void _start(void) { sys_exit(main()); }
"""


def run_m4_cases(tmp_path: Path, decls: list[str], calls: list[str], expected: list, extra_flags=()) -> str:
    """Build a qemu-arm program of :data:`QEMU_USER_PRELUDE` + ``decls`` + ``main`` calling ``calls``
    (each ends with ``emit(status, n)``) with the Cortex-M4 DSP build of firmware/nn (``extra_flags``
    after the usual ones, e.g. ``-Os`` for the size build's paths), run it, and
    assert that every case returns status 0 and exactly its ``expected`` int8 array. Returns the
    program's disassembly (``arm-none-eabi-objdump -d``) for checks of the instructions used."""
    import subprocess

    import numpy as np

    from asc_edge.codegen.kernels_host import CORTEX_M4_FLAGS, NN_DIR, kernel_sources

    src, elf = tmp_path / "harness.c", tmp_path / "harness.elf"
    src.write_text(QEMU_USER_PRELUDE + "".join(decls) + "int main(void) {\n" + "".join(calls) + "return 0; }\n")
    cmd = ["arm-none-eabi-gcc", *CORTEX_M4_FLAGS, *extra_flags, "-nostartfiles", "-static", f"-I{NN_DIR}", str(src),
           *map(str, kernel_sources()), "-o", str(elf), "-lc"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(["qemu-arm", "-cpu", "max", str(elf)], capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    blob, pos = r.stdout, 0
    for i, exp in enumerate(expected):
        status = int(np.frombuffer(blob[pos:pos + 4], dtype="<i4")[0])
        pos += 4
        got = np.frombuffer(blob[pos:pos + exp.size], dtype=np.int8)
        pos += exp.size
        assert status == 0, i
        assert np.array_equal(got, exp.ravel()), f"case {i}: {(got != exp.ravel()).sum()} bytes differ"
    assert pos == len(blob)
    return subprocess.run(["arm-none-eabi-objdump", "-d", str(elf)], capture_output=True, text=True).stdout
