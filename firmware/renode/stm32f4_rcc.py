# stm32f4_rcc.py - Renode Python peripheral: the STM32F405/F407 RCC (reset and clock control,
# RM0090 section 7.3) as a register file with the hardware-set status bits modelled.
#
# Attached by bench.resc:  machine PyDevFromFile $ORIGIN/stm32f4_rcc.py 0x40023800 0x400 True "rcc"
# Renode runs this script (IronPython 2) once with request.isInit and then on every bus access,
# keeping its global variables between runs. Offsets are relative to 0x40023800.
#
# Behaviour: every register reads back what was written (reset values from RM0090), except
#   CR    HSIRDY = HSION, HSERDY = HSEON, PLLRDY = PLLON, PLLI2SRDY = PLLI2SON (read-only bits:
#         an oscillator or PLL is "ready" as soon as it is switched on),
#   CFGR  SWS = SW (the requested system clock is in use at once),
#   BDCR  LSERDY = LSEON,   CSR  LSIRDY = LSION.
# Clock frequencies are not derived from these registers: the timers run at the fixed frequency
# declared in stm32f405.repl. Written to run unchanged under IronPython 2 and CPython 3 (the
# tests exercise it with CPython).

ASC_RCC_RESET = {
    0x00: 0x00000083,  # CR: HSION, HSIRDY, HSITRIM = 16
    0x04: 0x24003010,  # PLLCFGR
    0x08: 0x00000000,  # CFGR
    0x0C: 0x00000000,  # CIR
    0x10: 0x00000000,  # AHB1RSTR
    0x14: 0x00000000,  # AHB2RSTR
    0x18: 0x00000000,  # AHB3RSTR
    0x20: 0x00000000,  # APB1RSTR
    0x24: 0x00000000,  # APB2RSTR
    0x30: 0x00100000,  # AHB1ENR: CCMDATARAMEN
    0x34: 0x00000000,  # AHB2ENR
    0x38: 0x00000000,  # AHB3ENR
    0x40: 0x00000000,  # APB1ENR
    0x44: 0x00000000,  # APB2ENR
    0x50: 0x7E6791FF,  # AHB1LPENR
    0x54: 0x000000F1,  # AHB2LPENR
    0x58: 0x00000001,  # AHB3LPENR
    0x60: 0x36FEC9FF,  # APB1LPENR
    0x64: 0x00075F33,  # APB2LPENR
    0x70: 0x00000000,  # BDCR
    0x74: 0x0E000000,  # CSR: PINRSTF, PORRSTF, BORRSTF
    0x80: 0x00000000,  # SSCGR
    0x84: 0x20003000,  # PLLI2SCFGR
}

# (register offset, read-only "ready" bit, the enable bit it follows)
ASC_RCC_READY = (
    (0x00, 1, 0),    # CR.HSIRDY    <- HSION
    (0x00, 17, 16),  # CR.HSERDY    <- HSEON
    (0x00, 25, 24),  # CR.PLLRDY    <- PLLON
    (0x00, 27, 26),  # CR.PLLI2SRDY <- PLLI2SON
    (0x70, 1, 0),    # BDCR.LSERDY  <- LSEON
    (0x74, 1, 0),    # CSR.LSIRDY   <- LSION
)


def asc_rcc_field(req, name):
    """A field of Renode's request object: newer Renode names them IsInit/IsRead/Offset/Value,
    older releases isInit/isRead/offset/value."""
    upper = name[0].upper() + name[1:]
    if hasattr(req, upper):
        return getattr(req, upper)
    return getattr(req, name)


def asc_rcc_set_value(req, value):
    if hasattr(req, "Value"):
        req.Value = value
    else:
        req.value = value


def asc_rcc_read(regs, offset):
    value = regs.get(offset, 0)
    for reg, ready_bit, enable_bit in ASC_RCC_READY:
        if reg == offset:
            value &= ~(1 << ready_bit)
            if value & (1 << enable_bit):
                value |= 1 << ready_bit
    if offset == 0x08:
        value = (value & ~0xC) | ((value & 0x3) << 2)  # CFGR.SWS = CFGR.SW
    return value & 0xFFFFFFFF


def asc_rcc_write(regs, offset, value):
    value &= 0xFFFFFFFF
    for reg, ready_bit, enable_bit in ASC_RCC_READY:
        if reg == offset:
            value &= ~(1 << ready_bit)  # read-only: recomputed on read
    if offset == 0x08:
        value &= ~0xC  # SWS is read-only
    regs[offset] = value


if asc_rcc_field(request, "isInit"):
    asc_rcc_regs = dict(ASC_RCC_RESET)
elif asc_rcc_field(request, "isRead"):
    asc_rcc_set_value(request, asc_rcc_read(asc_rcc_regs, int(asc_rcc_field(request, "offset"))))
elif asc_rcc_field(request, "isWrite"):
    asc_rcc_write(asc_rcc_regs, int(asc_rcc_field(request, "offset")), int(asc_rcc_field(request, "value")))
