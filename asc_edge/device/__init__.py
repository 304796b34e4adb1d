"""The device side: build Cortex-M4 firmware for the STM32F405 (``firmware/Makefile``), read its
flash / RAM use from the ELF, and run it on QEMU's ``netduinoplus2`` board.

    from asc_edge.device import build_firmware, run_qemu
    img = build_firmware("selftest", "firmware/build/selftest")
    res = run_qemu(img.elf, workdir="runs/qemu", timeout_s=30)

All failures raise :class:`asc_edge.errors.DeviceError` ("message (fix: hint)").
"""

from asc_edge.device.build import DEFAULT_STACK_BYTES, FIRMWARE_DIR, FirmwareImage, build_firmware
from asc_edge.device.elfinfo import (
    FLASH_BYTES,
    FLASH_ORIGIN,
    SRAM_BYTES,
    SRAM_ORIGIN,
    MemoryUsage,
    Symbol,
    memory_usage,
    section_sizes,
    symbol,
)
from asc_edge.device.qemu import QemuResult, qemu_command, run_qemu
from asc_edge.device.toolchain import build_tools, find_tool, qemu_system_arm

__all__ = [
    "DEFAULT_STACK_BYTES",
    "FIRMWARE_DIR",
    "FLASH_BYTES",
    "FLASH_ORIGIN",
    "SRAM_BYTES",
    "SRAM_ORIGIN",
    "FirmwareImage",
    "MemoryUsage",
    "QemuResult",
    "Symbol",
    "build_firmware",
    "build_tools",
    "find_tool",
    "memory_usage",
    "qemu_command",
    "qemu_system_arm",
    "run_qemu",
    "section_sizes",
    "symbol",
]
