/* cycleloop_main.c - two loops whose Cortex-M4 cycle counts the Technical Reference Manual fixes,
 * to validate asc_edge/device/cycles.py (tests/test_cycles.py). Prints their TIM2 deltas (one tick
 * per instruction under qemu -icount shift=0) and exits 0.
 *
 * Each measured stretch starts at a global label reached by a branch (so a QEMU translation block
 * starts there: the estimator's segment boundary) and ends at the next such label (reached by a
 * 16-bit `b` to a local label at the same address):
 *
 *   asc_cycleloop_alu_begin .. asc_cycleloop_alu_end, n = ASC_CYCLELOOP_N iterations:
 *       movs r3, #0                                  1 instruction, 1 cycle
 *     1: 8 x 16-bit ALU (adds eors lsls orrs ands mvns movs asrs)   1 cycle each  (TRM Table 3-1)
 *       smlad r4, r5, r6, r4                         1 cycle                      (TRM Table 3-1)
 *       subs r0, r0, #1                              1 cycle
 *       bne 1b                                       taken 1 + P, not taken 1     (TRM Table 3-1)
 *       b asc_cycleloop_alu_end                      1 + P
 *     instructions = 1 + 11 n + 1                      = 11 n + 2
 *     cycles = 1 + 10 n + (n - 1)(1 + P) + 1 + (1 + P)  = (11 + P) n + 2:
 *       P = 1 (the TRM's minimum refill):  12 n + 2
 *       P = 3 (its maximum):               14 n + 2
 *
 *   asc_cycleloop_ldr_begin .. asc_cycleloop_ldr_end, n iterations over a word pair in SRAM:
 *       movs r3, #0                                  1
 *     1: ldr r2, [r1]                                2                            (TRM Table 3-1)
 *       ldr r3, [r1, #4]                             1: pipelined after an LDR whose destination
 *                                                    is not its address register  (TRM 3.3.2)
 *       smlad r4, r2, r3, r4                         1
 *       subs r0, r0, #1                              1
 *       bne 1b                                       1 + P / 1
 *       b asc_cycleloop_ldr_end                      1 + P
 *     instructions = 1 + 5 n + 1                       = 5 n + 2
 *     cycles = 1 + 5 n + (n - 1)(1 + P) + 1 + (1 + P)   = (6 + P) n + 2:  P = 1: 7 n + 2
 *     zero-wait worst case (no pipelining: 6 per iteration, P = 3): 1 + 6n + 4(n-1) + 1 + 4 = 10 n + 2
 *
 * Both loops are 64-byte aligned (one 1 KiB QEMU page, whole 16-byte flash lines), so the
 * translation blocks and the flash lines they span are fixed; tests/test_cycles.py derives the
 * flash-wait-state bound from them by hand too.
 */
#include <stdint.h>

#include "board.h"

#ifndef ASC_CYCLELOOP_N
#define ASC_CYCLELOOP_N 1000
#endif

void asc_cycleloop_alu(uint32_t n);
void asc_cycleloop_ldr(uint32_t n, const uint32_t *pair);

__asm__(
    "    .syntax unified\n"
    "    .thumb\n"
    "    .text\n"
    "    .global asc_cycleloop_alu\n"
    "    .type asc_cycleloop_alu, %function\n"
    "    .p2align 6\n"
    "    .thumb_func\n"
    "asc_cycleloop_alu:\n"
    "    push {r4, r5, r6, r7, lr}\n"
    "    movs r1, #3\n"
    "    movs r2, #5\n"
    "    movs r4, #0\n"
    "    movs r5, #7\n"
    "    movs r6, #9\n"
    "    movs r7, #11\n"
    "    b asc_cycleloop_alu_begin\n"
    "    .p2align 6\n"
    "    .global asc_cycleloop_alu_begin\n"
    "    .type asc_cycleloop_alu_begin, %function\n"
    "    .thumb_func\n"
    "asc_cycleloop_alu_begin:\n"
    "    movs r3, #0\n"
    "1:  adds r2, r2, r1\n"
    "    eors r3, r3, r2\n"
    "    lsls r5, r2, #1\n"
    "    orrs r6, r6, r3\n"
    "    ands r7, r7, r5\n"
    "    mvns r5, r6\n"
    "    movs r6, r7\n"
    "    asrs r7, r3, #2\n"
    "    smlad r4, r5, r6, r4\n"
    "    subs r0, r0, #1\n"
    "    bne 1b\n"
    "    b 2f\n"
    "    .global asc_cycleloop_alu_end\n"
    "    .type asc_cycleloop_alu_end, %function\n"
    "    .thumb_func\n"
    "asc_cycleloop_alu_end:\n"
    "2:\n"
    "    pop {r4, r5, r6, r7, pc}\n"
    "    .size asc_cycleloop_alu, . - asc_cycleloop_alu\n"
    "\n"
    "    .global asc_cycleloop_ldr\n"
    "    .type asc_cycleloop_ldr, %function\n"
    "    .p2align 6\n"
    "    .thumb_func\n"
    "asc_cycleloop_ldr:\n"
    "    push {r4, lr}\n"
    "    movs r4, #0\n"
    "    b asc_cycleloop_ldr_begin\n"
    "    .p2align 6\n"
    "    .global asc_cycleloop_ldr_begin\n"
    "    .type asc_cycleloop_ldr_begin, %function\n"
    "    .thumb_func\n"
    "asc_cycleloop_ldr_begin:\n"
    "    movs r3, #0\n"
    "1:  ldr r2, [r1]\n"
    "    ldr r3, [r1, #4]\n"
    "    smlad r4, r2, r3, r4\n"
    "    subs r0, r0, #1\n"
    "    bne 1b\n"
    "    b 2f\n"
    "    .global asc_cycleloop_ldr_end\n"
    "    .type asc_cycleloop_ldr_end, %function\n"
    "    .thumb_func\n"
    "asc_cycleloop_ldr_end:\n"
    "2:\n"
    "    pop {r4, pc}\n"
    "    .size asc_cycleloop_ldr, . - asc_cycleloop_ldr\n");

static uint32_t asc_cycleloop_pair[2] = {0x00030002u, 0x00050004u};

int main(void)
{
    uint32_t t0 = asc_board_counter_read();
    asc_cycleloop_alu(ASC_CYCLELOOP_N);
    uint32_t t1 = asc_board_counter_read();
    asc_cycleloop_ldr(ASC_CYCLELOOP_N, asc_cycleloop_pair);
    uint32_t t2 = asc_board_counter_read();
    asc_board_puts("cycleloop n=");
    asc_board_put_u32(ASC_CYCLELOOP_N);
    asc_board_puts(" alu=");
    asc_board_put_u32(t1 - t0);
    asc_board_puts(" ldr=");
    asc_board_put_u32(t2 - t1);
    asc_board_puts("\n");
    return 0;
}
