/* board.h - STM32F405/F407 board layer of asc-edge (QEMU machine `netduinoplus2`, Cortex-M4F).
 *
 * What the startup code (startup_stm32f405.c) does before main():
 *   paints the thread stack with ASC_BOARD_STACK_PAINT and switches thread mode onto it (PSP),
 *   copies .data from flash, zeroes .bss, enables the FPU (CP10/CP11 full access), and calls
 *   asc_board_init() (USART1 + TIM2).
 * main()'s return value becomes the program's exit status (asc_board_exit), which QEMU returns
 * as its own exit status (semihosting SYS_EXIT_EXTENDED).
 *
 * Console output goes to BOTH the semihosting console (QEMU's stdout) and USART1 (the
 * first -serial of QEMU's netduinoplus2; PA9 at 115200 8N1 from the 16 MHz HSI on silicon).
 * Semihosting needs QEMU or an attached debugger; build with -DASC_BOARD_SEMIHOSTING=0 for a
 * board without one (console = USART1 only, exit parks the core).
 *
 * Memory: 1 MiB flash at 0x08000000, the 128 KiB SRAM at 0x20000000 (CCM unused). RAM holds the
 * thread stack (STACK_SIZE bytes, default 8192, at 0x20000000: main() runs on it via PSP), the
 * 512-byte handler stack (MSP, exception handlers), .data and .bss; no heap. A thread-stack
 * overflow runs below the SRAM and faults (reported as a STACK OVERFLOW, exit status 3) instead of
 * over-writing data.
 */
#ifndef ASC_BOARD_H
#define ASC_BOARD_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef ASC_BOARD_SEMIHOSTING
#define ASC_BOARD_SEMIHOSTING 1
#endif

/* Exit statuses used by the board layer (an application may use any other 0..255 value). */
#define ASC_BOARD_EXIT_OK             0
#define ASC_BOARD_EXIT_ASSERT         2   /* assert() failed, or abort() */
#define ASC_BOARD_EXIT_FAULT          3   /* HardFault / MemManage / BusFault / UsageFault / NMI /
                                             an unexpected interrupt: registers were printed */
#define ASC_BOARD_EXIT_STACK_OVERFLOW 4   /* at exit, the thread stack had reached the last word of
                                             its reservation (one more push would have faulted) */

/* Word written over the whole stack reservation at reset (stack high-water measurement). */
#define ASC_BOARD_STACK_PAINT 0xC5C5C5C5u

/* asc_board_init: bring up USART1 (115200 8N1) and start the TIM2 counter. Called once by the
 * reset handler before main(); calling it again is harmless. */
void asc_board_init(void);

/* asc_board_uart_write: send len bytes on USART1 (blocking, polls TXE). */
void asc_board_uart_write(const char *buf, uint32_t len);

/* asc_board_data_write: send len raw bytes on USART2, the binary data channel (blocking). Renode's
 * bench writes USART2 to a file (firmware/renode/bench.resc); the console stays on USART1. */
void asc_board_data_write(const void *buf, uint32_t len);

/* asc_board_write: send len bytes to the console (semihosting console + USART1). */
void asc_board_write(const char *buf, uint32_t len);

/* asc_board_puts: send a NUL-terminated string to the console (no newline added). */
void asc_board_puts(const char *s);

/* asc_board_put_u32 / _i32 / _hex32: print a number in decimal / signed decimal / "0x%08x". */
void asc_board_put_u32(uint32_t v);
void asc_board_put_i32(int32_t v);
void asc_board_put_hex32(uint32_t v);

/* asc_fmt_u32 / asc_fmt_i32 / asc_fmt_hex32: format into out (at least 12 bytes; 11 for hex),
 * NUL-terminated, without printf. Return the number of characters (without the NUL). */
uint32_t asc_fmt_u32(char *out, uint32_t v);
uint32_t asc_fmt_i32(char *out, int32_t v);
uint32_t asc_fmt_hex32(char *out, uint32_t v);

/* Instruction / cycle counter: TIM2 as a 32-bit free-running up-counter, prescaler 0.
 *
 * One tick is:
 *   - under QEMU with `-icount shift=0` (what asc_edge.device.qemu.run_qemu passes): exactly ONE
 *     executed guest instruction (QEMU's TIM2 counts 1 GHz of virtual time and shift=0 makes each
 *     instruction last 1 ns). Measured: a `subs; bne` loop of n iterations reads 2n + 1 ticks.
 *     Deterministic, but an instruction count, NOT Cortex-M4 cycles (no wait states, no pipeline
 *     effects, multi-cycle instructions count 1).
 *   - on silicon: one TIM2 kernel-clock cycle = one core (HCLK) cycle while APB1's prescaler is 1
 *     (the reset state: 16 MHz HSI; this board layer does not change the clock tree).
 * Wraps after 2^32 ticks; use unsigned subtraction of two reads.
 *
 * asc_board_counter_start: reset the counter to 0 and let it run.
 * asc_board_counter_read: the current count in ticks since the last start. */
void asc_board_counter_start(void);
uint32_t asc_board_counter_read(void);

/* asc_board_stack_high_water_bytes: deepest thread-stack use since reset in bytes (found by
 * scanning the painted reservation from its bottom for the first overwritten word). */
uint32_t asc_board_stack_high_water_bytes(void);

/* asc_board_stack_size_bytes: size of the thread-stack reservation in bytes (STACK_SIZE). */
uint32_t asc_board_stack_size_bytes(void);

/* asc_board_exit: end the program with exit status code (0..255). If the stack reached the bottom
 * of its reservation, prints a message and exits with ASC_BOARD_EXIT_STACK_OVERFLOW instead.
 * Does not return. */
void asc_board_exit(int32_t code) __attribute__((noreturn));

#ifdef __cplusplus
}
#endif

#endif /* ASC_BOARD_H */
