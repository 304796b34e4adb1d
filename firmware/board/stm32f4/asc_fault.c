/* asc_fault.c - the handler behind every unexpected exception (HardFault, MemManage, BusFault,
 * UsageFault, NMI, unused system handlers, any interrupt): prints the exception, the stacked
 * registers r0-r3, r12, lr, pc, xpsr and CFSR / HFSR / MMFAR / BFAR to the semihosting console
 * and USART1, then exits with ASC_BOARD_EXIT_FAULT (3). It runs on the handler stack (MSP), so a
 * thread stack (PSP) that overflowed below the SRAM is reported too ("STACK OVERFLOW", with the
 * frame marked as outside the SRAM, since the core could not push it). Example output:
 *
 *   *** asc board: HardFault ***
 *   r0=0x00000000 r1=... r2=... r3=... r12=... lr=0x08000123 pc=0x08000456 xpsr=0x61000000
 *   CFSR=0x00008200 HFSR=0x40000000 MMFAR=0xe000ed34 BFAR=0x3ffffff0 EXC_RETURN=0xfffffff9
 */
#include <stdint.h>

#include "asc_semihost.h"
#include "board.h"

#define ASC_SCB_CFSR  (*(volatile uint32_t *)0xE000ED28u)
#define ASC_SCB_HFSR  (*(volatile uint32_t *)0xE000ED2Cu)
#define ASC_SCB_MMFAR (*(volatile uint32_t *)0xE000ED34u)
#define ASC_SCB_BFAR  (*(volatile uint32_t *)0xE000ED38u)

extern uint32_t __stack_bottom[];
extern uint32_t __stack_top[];

void asc_fault_entry(void);
void asc_fault_report(const uint32_t *frame, uint32_t exc_return) __attribute__((noreturn, used));

/* asc_fault_entry: picks the stack the exception frame was pushed on (EXC_RETURN bit 2: 0 = MSP,
 * 1 = PSP) and passes it with EXC_RETURN to asc_fault_report. */
__attribute__((naked)) void asc_fault_entry(void)
{
    __asm__ volatile(
        "tst   lr, #4              \n"
        "ite   eq                  \n"
        "mrseq r0, msp             \n"
        "mrsne r0, psp             \n"
        "mov   r1, lr              \n"
        "b     asc_fault_report    \n");
}

/* asc_fault_name: exception number (IPSR) -> name; IRQs are printed as numbers by the caller. */
static const char *asc_fault_name(uint32_t exc)
{
    switch (exc) {
    case 2u: return "NMI";
    case 3u: return "HardFault";
    case 4u: return "MemManage";
    case 5u: return "BusFault";
    case 6u: return "UsageFault";
    case 11u: return "SVCall";
    case 12u: return "DebugMonitor";
    case 14u: return "PendSV";
    case 15u: return "SysTick";
    default: return 0;
    }
}

/* asc_fault_reg: print " name=0x%08x". */
static void asc_fault_reg(const char *name, uint32_t value)
{
    asc_board_puts(" ");
    asc_board_puts(name);
    asc_board_puts("=");
    asc_board_put_hex32(value);
}

/* asc_fault_report: frame = the 8 stacked words {r0, r1, r2, r3, r12, lr, pc, xpsr}. */
void asc_fault_report(const uint32_t *frame, uint32_t exc_return)
{
    uint32_t ipsr;
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    ipsr &= 0x1FFu;

    /* Read the status registers before printing (printing must not change them). */
    const uint32_t cfsr = ASC_SCB_CFSR;
    const uint32_t hfsr = ASC_SCB_HFSR;
    const uint32_t mmfar = ASC_SCB_MMFAR;
    const uint32_t bfar = ASC_SCB_BFAR;

    const char *name = asc_fault_name(ipsr);
    asc_board_puts("\n*** asc board: ");
    if (name != 0) {
        asc_board_puts(name);
    } else if (ipsr >= 16u) {
        asc_board_puts("unexpected interrupt IRQ");
        asc_board_put_u32(ipsr - 16u);
    } else {
        asc_board_puts("exception ");
        asc_board_put_u32(ipsr);
    }
    asc_board_puts(" ***\n");

    const uintptr_t f = (uintptr_t)frame;
    if (f >= 0x20000000u && f + 32u <= 0x20000000u + 128u * 1024u && (f & 3u) == 0u) {
        asc_fault_reg("r0", frame[0]);
        asc_fault_reg("r1", frame[1]);
        asc_fault_reg("r2", frame[2]);
        asc_fault_reg("r3", frame[3]);
        asc_fault_reg("r12", frame[4]);
        asc_fault_reg("lr", frame[5]);
        asc_fault_reg("pc", frame[6]);
        asc_fault_reg("xpsr", frame[7]);
    } else {
        asc_fault_reg("frame-outside-SRAM", (uint32_t)f);
    }
    asc_board_puts("\n");
    asc_fault_reg("CFSR", cfsr);
    asc_fault_reg("HFSR", hfsr);
    asc_fault_reg("MMFAR", mmfar);
    asc_fault_reg("BFAR", bfar);
    asc_fault_reg("EXC_RETURN", exc_return);
    asc_board_puts("\n");
    if (f < (uintptr_t)__stack_bottom + 32u || __stack_bottom[0] != ASC_BOARD_STACK_PAINT) {
        asc_board_puts("asc board: STACK OVERFLOW: the thread stack ran past the bottom of its ");
        asc_board_put_u32((uint32_t)((uintptr_t)__stack_top - (uintptr_t)__stack_bottom));
        asc_board_puts("-byte reservation (raise STACK_SIZE)\n");
    }
    /* Exit directly with the fault status (asc_board_exit would replace it by the overflow code). */
    asc_board_puts("asc board: exit status 3 (fault)\n");
#if ASC_BOARD_SEMIHOSTING
    asc_semihost_exit((uint32_t)ASC_BOARD_EXIT_FAULT);
#else
    for (;;) {
        __asm__ volatile("wfi");
    }
#endif
}
