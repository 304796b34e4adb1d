"""Sizes and symbols of a firmware ELF (pyelftools), for the flash / RAM report of the harness.

The memory map is the STM32F405's as laid out by ``firmware/board/stm32f4/stm32f405.ld``: 1 MiB
flash at 0x08000000 and the 128 KiB SRAM at 0x20000000 holding the thread stack (``.stack``), the
handler stack (``.handler_stack``), .data and .bss; the external SRAM on the FSMC (4 MiB at
0x64000000, section ``.ext_ram``) holds the activation arena of ``bench --external-ram`` images only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from asc_edge.errors import DeviceError

FLASH_ORIGIN = 0x0800_0000
FLASH_BYTES = 1024 * 1024
SRAM_ORIGIN = 0x2000_0000
SRAM_BYTES = 128 * 1024
EXT_RAM_ORIGIN = 0x6400_0000  # FSMC bank 1, NE2 (stm32f405.ld region EXTRAM)
EXT_RAM_BYTES = 2 * 1024 * 1024


def _in_flash(addr: int) -> bool:
    return FLASH_ORIGIN <= addr < FLASH_ORIGIN + FLASH_BYTES


def _in_sram(addr: int) -> bool:
    return SRAM_ORIGIN <= addr < SRAM_ORIGIN + SRAM_BYTES


def _in_ext_ram(addr: int) -> bool:
    return EXT_RAM_ORIGIN <= addr < EXT_RAM_ORIGIN + EXT_RAM_BYTES


@dataclass(frozen=True)
class MemoryUsage:
    """Static memory of a firmware image, all in bytes.

    ``flash_bytes``: what is programmed into flash (vector table, code, read-only data and the
    initial values of .data), i.e. the file size of the flash-addressed load segments.
    ``ram_bytes``: static SRAM use, .data + .bss + both stack reservations (no heap exists).
    ``stack_bytes``: the thread stack main() runs on (section ``.stack``, STACK_SIZE);
    ``handler_stack_bytes``: the exception handlers' stack (``.handler_stack``).
    ``ext_ram_bytes``: external SRAM (FSMC) use, section ``.ext_ram``; 0 unless the image was
    built with ``-DASC_ARENA_EXTERNAL_RAM``.
    ``sections``: every allocated section's size.
    """

    flash_bytes: int
    ram_bytes: int
    stack_bytes: int
    handler_stack_bytes: int
    data_bytes: int
    bss_bytes: int
    sections: dict[str, int] = field(default_factory=dict)
    ext_ram_bytes: int = 0

    @property
    def flash_free_bytes(self) -> int:
        """Flash left of the 1 MiB, in bytes."""
        return FLASH_BYTES - self.flash_bytes

    @property
    def ram_free_bytes(self) -> int:
        """SRAM left of the 128 KiB, in bytes."""
        return SRAM_BYTES - self.ram_bytes


@dataclass(frozen=True)
class Symbol:
    """An ELF symbol: ``address`` (bytes, Thumb bit cleared for functions), ``size`` in bytes,
    ``section`` the name of its section ('' if absolute / undefined)."""

    name: str
    address: int
    size: int
    section: str


def _open(elf: str | Path):
    path = Path(elf)
    if not path.is_file():
        raise DeviceError(f"{path}: firmware ELF not found", hint="build it first (asc_edge.device.build_firmware)")
    fh = path.open("rb")
    try:
        ef = ELFFile(fh)
    except ELFError as exc:
        fh.close()
        raise DeviceError(f"{path}: not an ELF file ({exc})",
                          hint="pass the .elf produced by the firmware build") from exc
    if ef["e_machine"] != "EM_ARM" or ef.elfclass != 32:
        fh.close()
        raise DeviceError(
            f"{path}: not a 32-bit Arm ELF (machine {ef['e_machine']}, class {ef.elfclass})",
            hint="pass the Cortex-M4 .elf built by firmware/Makefile",
        )
    return fh, ef


def section_sizes(elf: str | Path) -> dict[str, int]:
    """Size in bytes of every allocated (SHF_ALLOC) non-empty section, by name.

    Raises:
        DeviceError: the file is missing or not a 32-bit Arm ELF.
    """
    fh, ef = _open(elf)
    with fh:
        return {
            s.name: s["sh_size"]
            for s in ef.iter_sections()
            if s["sh_flags"] & SH_FLAGS.SHF_ALLOC and s["sh_size"] > 0
        }


def memory_usage(elf: str | Path) -> MemoryUsage:
    """Flash and static RAM use of the image (see :class:`MemoryUsage`), in bytes.

    Raises:
        DeviceError: the file is missing or not a 32-bit Arm ELF.
    """
    fh, ef = _open(elf)
    with fh:
        flash = sum(
            seg["p_filesz"]
            for seg in ef.iter_segments()
            if seg["p_type"] == "PT_LOAD" and _in_flash(seg["p_paddr"])
        )
        sections: dict[str, int] = {}
        ram = data = bss = stack = handler_stack = ext = 0
        for s in ef.iter_sections():
            size = s["sh_size"]
            if not (s["sh_flags"] & SH_FLAGS.SHF_ALLOC) or size == 0:
                continue
            sections[s.name] = size
            if _in_ext_ram(s["sh_addr"]):
                ext += size
            if not _in_sram(s["sh_addr"]):
                continue
            ram += size
            if s.name == ".stack":
                stack += size
            elif s.name == ".handler_stack":
                handler_stack += size
            elif s["sh_type"] == "SHT_NOBITS":
                bss += size
            else:
                data += size
    return MemoryUsage(
        flash_bytes=flash, ram_bytes=ram, stack_bytes=stack, handler_stack_bytes=handler_stack,
        data_bytes=data, bss_bytes=bss, sections=sections, ext_ram_bytes=ext,
    )


def flash_objects(elf: str | Path) -> dict[str, int]:
    """Size in bytes of every sized data object (``STT_OBJECT``) placed in flash: the image's
    constant tables, by symbol name (a name defined twice, e.g. two file-local statics, adds up).

    Raises:
        DeviceError: the ELF cannot be read or has no symbol table (stripped).
    """
    fh, ef = _open(elf)
    with fh:
        symtab = ef.get_section_by_name(".symtab")
        if not isinstance(symtab, SymbolTableSection):
            raise DeviceError(f"{elf}: no symbol table", hint="do not strip the firmware ELF")
        out: dict[str, int] = {}
        for sym in symtab.iter_symbols():
            if sym["st_info"]["type"] == "STT_OBJECT" and sym["st_size"] > 0 and _in_flash(sym["st_value"]):
                out[sym.name] = out.get(sym.name, 0) + sym["st_size"]
        return out


def symbol(elf: str | Path, name: str) -> Symbol:
    """Look up the symbol ``name`` (the first definition in .symtab).

    Raises:
        DeviceError: the ELF cannot be read, has no symbol table (stripped), or lacks ``name``
            (e.g. removed by --gc-sections because nothing references it).
    """
    fh, ef = _open(elf)
    with fh:
        symtab = ef.get_section_by_name(".symtab")
        if not isinstance(symtab, SymbolTableSection):
            raise DeviceError(f"{elf}: no symbol table", hint="do not strip the firmware ELF")
        for sym in symtab.get_symbol_by_name(name) or []:
            shndx = sym["st_shndx"]
            if shndx == "SHN_UNDEF":
                continue
            section = ef.get_section(shndx).name if isinstance(shndx, int) else ""
            addr = sym["st_value"]
            if sym["st_info"]["type"] == "STT_FUNC":
                addr &= ~1  # Thumb bit
            return Symbol(name=name, address=addr, size=sym["st_size"], section=section)
    raise DeviceError(
        f"{elf}: symbol {name!r} not found",
        hint="check the name, and that something references it (the link drops unused sections)",
    )
