/* startup_stm32f405.c - vector table and reset handler of the STM32F405/F407 (Cortex-M4F).
 *
 * Stacks: exceptions run on the handler stack (MSP, 512 bytes); main() runs in thread mode on the
 * thread stack (PSP, STACK_SIZE bytes at the bottom of the SRAM), so a thread-stack overflow
 * faults (BusFault below 0x20000000) and the fault handler still has a valid stack to report it.
 *
 * Reset_Handler (no stack use before the paint is done):
 *   1. paints the thread stack [__stack_bottom, __stack_top) with ASC_BOARD_STACK_PAINT and
 *      switches thread mode to it,
 *   2. copies .data from flash, zeroes .bss, enables CP10/CP11 (FPU) in CPACR,
 *   3. runs the .init_array constructors, asc_board_init(), main(),
 *   4. asc_board_exit(main's return value).
 * Every exception / interrupt other than reset goes to asc_fault_entry (asc_fault.c), which
 * prints the stacked registers and the fault status registers and exits with status 3; the
 * system handlers are weak aliases so an application can provide its own.
 */
#include <stdint.h>

#include "board.h"

extern uint32_t __data_start[];
extern uint32_t __data_end[];
extern uint32_t __data_load[];
extern uint32_t __bss_start[];
extern uint32_t __bss_end[];
extern uint32_t __stack_bottom[];
extern uint32_t __stack_top[];
extern uint32_t __handler_stack_top[];
extern void (*__init_array_start[])(void);
extern void (*__init_array_end[])(void);

int main(void);
void Reset_Handler(void);
void asc_reset_c(void) __attribute__((noreturn, used));
void asc_fault_entry(void);

#define ASC_CPACR (*(volatile uint32_t *)0xE000ED88u)

/* Weak system handlers: each tail-branches (LR = EXC_RETURN kept) to asc_fault_entry. */
#define ASC_WEAK_FAULT_HANDLER(name)                                                          \
    __attribute__((weak, naked)) void name(void)                                              \
    {                                                                                         \
        __asm__ volatile("b asc_fault_entry");                                                \
    }
void NMI_Handler(void);
void HardFault_Handler(void);
void MemManage_Handler(void);
void BusFault_Handler(void);
void UsageFault_Handler(void);
void SVC_Handler(void);
void DebugMon_Handler(void);
void PendSV_Handler(void);
void SysTick_Handler(void);
ASC_WEAK_FAULT_HANDLER(NMI_Handler)
ASC_WEAK_FAULT_HANDLER(HardFault_Handler)
ASC_WEAK_FAULT_HANDLER(MemManage_Handler)
ASC_WEAK_FAULT_HANDLER(BusFault_Handler)
ASC_WEAK_FAULT_HANDLER(UsageFault_Handler)
ASC_WEAK_FAULT_HANDLER(SVC_Handler)
ASC_WEAK_FAULT_HANDLER(DebugMon_Handler)
ASC_WEAK_FAULT_HANDLER(PendSV_Handler)
ASC_WEAK_FAULT_HANDLER(SysTick_Handler)

/* STM32F405/F407: 82 external interrupts (IRQ 0..81) after the 16 system entries. */
#define ASC_NUM_IRQS 82u

typedef void (*asc_vector_t)(void);

__attribute__((section(".isr_vector"), used))
const asc_vector_t asc_vector_table[16u + ASC_NUM_IRQS] = {
    [0] = (asc_vector_t)(uintptr_t)__handler_stack_top, /* initial MSP: the handler stack */
    [1] = Reset_Handler,
    [2] = NMI_Handler,
    [3] = HardFault_Handler,
    [4] = MemManage_Handler,
    [5] = BusFault_Handler,
    [6] = UsageFault_Handler,
    [11] = SVC_Handler,
    [12] = DebugMon_Handler,
    [14] = PendSV_Handler,
    [15] = SysTick_Handler,
    /* reserved 7..10, 13 stay 0; IRQs filled below */
    [16 ... (16 + ASC_NUM_IRQS - 1u)] = asc_fault_entry,
};

/* Reset_Handler: runs on the handler stack (MSP = __handler_stack_top from the vector table) and
 * uses registers only: paints the thread stack, points PSP at its top, switches thread mode to PSP
 * (CONTROL.SPSEL = 1), then continues in C on the thread stack. */
__attribute__((naked, noreturn)) void Reset_Handler(void)
{
    __asm__ volatile(
        "ldr   r0, =__handler_stack_top \n"
        "msr   msp, r0                  \n" /* also correct after a debugger-initiated reset */
        "ldr   r0, =__stack_bottom      \n"
        "ldr   r1, =__stack_top         \n"
        "ldr   r2, =0xC5C5C5C5          \n" /* ASC_BOARD_STACK_PAINT */
        "1:                             \n"
        "cmp   r0, r1                   \n"
        "bhs   2f                       \n"
        "str   r2, [r0], #4             \n"
        "b     1b                       \n"
        "2:                             \n"
        "msr   psp, r1                  \n"
        "movs  r0, #2                   \n" /* CONTROL.SPSEL: thread mode uses PSP */
        "msr   control, r0              \n"
        "isb                            \n"
        "b     asc_reset_c              \n"
        ".ltorg                         \n");
}

/* asc_reset_c: C runtime set-up, main(), exit. Word loops (not memcpy/memset) so nothing here
 * depends on the C library being usable before .data/.bss exist. */
void asc_reset_c(void)
{
    const volatile uint32_t *src = __data_load;
    for (volatile uint32_t *dst = __data_start; dst < __data_end; dst++, src++) {
        *dst = *src;
    }
    for (volatile uint32_t *dst = __bss_start; dst < __bss_end; dst++) {
        *dst = 0u;
    }

    /* FPU: CP10 and CP11 full access, then barriers before the first FP instruction. */
    ASC_CPACR |= (0xFu << 20);
    __asm__ volatile("dsb\n\tisb" ::: "memory");

    for (void (**fn)(void) = __init_array_start; fn < __init_array_end; fn++) {
        (*fn)();
    }

    asc_board_init();
    int rc = main();
    asc_board_exit((int32_t)rc);
}
