# asc_icount_timer.py - Renode Python peripheral standing in for TIM2 (0x40000000, 1 KiB) so that the
# firmware's counter (firmware/board/stm32f4/board.c: TIM2->CNT, prescaler 0) counts executed
# instructions exactly, as it does under QEMU -icount shift=0.
#
# Attached by bench.resc:  machine PyDevFromFile $ORIGIN/asc_icount_timer.py 0x40000000 0x400 True "timer2"
# Why: Renode's STM32 timer model advances once per time quantum (100 us = 1,600 ticks at 16 MHz by
# default), so a TIM2 difference is only accurate to a quantum. `sysbus.cpu ExecutedInstructions` is
# exact; reading CNT here returns it, minus the value captured when CNT was last written, modulo 2^32.
# Every other register reads back what was written (reset value 0); ARR resets to 0xFFFFFFFF.
# IronPython 2 (Renode's), no standard-library imports.
from Antmicro.Renode.Core import EmulationManager

ASC_TIM_CNT = 0x24
ASC_TIM_ARR = 0x2C


def asc_tim_cpu():
    for m in EmulationManager.Instance.CurrentEmulation.Machines:
        for cpu in m.SystemBus.GetCPUs():
            return cpu
    return None


if request.isInit:
    asc_tim_regs = {ASC_TIM_ARR: 0xFFFFFFFF}
    asc_tim_base = 0
elif request.isRead:
    if request.offset == ASC_TIM_CNT:
        request.value = (int(asc_tim_cpu().ExecutedInstructions) - asc_tim_base) & 0xFFFFFFFF
    else:
        request.value = asc_tim_regs.get(int(request.offset), 0)
elif request.isWrite:
    if request.offset == ASC_TIM_CNT:
        asc_tim_base = (int(asc_tim_cpu().ExecutedInstructions) - int(request.value)) & 0xFFFFFFFFFFFFFFFF
    else:
        asc_tim_regs[int(request.offset)] = int(request.value) & 0xFFFFFFFF
