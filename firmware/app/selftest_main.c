/* selftest_main.c - exercises the STM32F405 board layer under QEMU (tests/test_device_qemu.py).
 *
 * The mode is read over semihosting from `mode.txt` in the emulator's working directory:
 *   "normal <input-file>"  (default when mode.txt is absent: "normal" without file I/O)
 *       console + UART output, the semihosting command line, a file round trip (reads
 *       <input-file>, prints its length and FNV-1a hash, writes <input-file>.out holding the bytes
 *       reversed and XORed with 0x5A), an FPU check, the TIM2 instruction counter (fixed loops,
 *       each measured twice; "mix" adds a load and a division per iteration), and the stack high-water mark before / after a 2 KiB stack user.
 *   "fault"   a load from a reserved address (0x30000000): BusFault escalated to HardFault.
 *   "udf"     an undefined instruction: UsageFault escalated to HardFault.
 *   "hang"    spins forever (for the runner's timeout).
 *   "recurse <bytes>"  recursion using about <bytes> of stack (past STACK_SIZE: a stack overflow).
 *   "exit <n>" returns n from main.
 * A UART-only build (-DASC_BOARD_SEMIHOSTING=0, for Renode) takes the mode from the compile-time
 * string ASC_SELFTEST_MODE instead (e.g. -DASC_SELFTEST_MODE='"hang"').
 * Exit status: 0 on success, 1 if a check inside the self-test failed (message printed).
 *
 * -DASC_SELFTEST_EXTRA_BSS_BYTES=<n> adds an n-byte static buffer (the RAM-overflow link test);
 * -DASC_SELFTEST_EXTRA_RODATA_BYTES=<n> an n-byte constant table (the flash-overflow link test).
 */
#include <stdint.h>
#include <string.h>

#include "asc_semihost.h"
#include "board.h"

#define ASC_SELFTEST_FILE_CAP 4096u
#define ASC_SELFTEST_STACK_USE 2048u

static uint8_t asc_selftest_in[ASC_SELFTEST_FILE_CAP];
static uint8_t asc_selftest_out[ASC_SELFTEST_FILE_CAP];

#ifdef ASC_SELFTEST_EXTRA_BSS_BYTES
static uint8_t asc_selftest_extra_bss[ASC_SELFTEST_EXTRA_BSS_BYTES];
#endif
#ifdef ASC_SELFTEST_EXTRA_RODATA_BYTES
static const uint8_t asc_selftest_extra_rodata[ASC_SELFTEST_EXTRA_RODATA_BYTES] = {1u};
#endif

/* asc_selftest_line: print "label value\n" with value in decimal. */
static void asc_selftest_line(const char *label, uint32_t value)
{
    asc_board_puts(label);
    asc_board_put_u32(value);
    asc_board_puts("\n");
}

/* asc_selftest_fail: print "selftest: FAIL <why>" and return exit status 1. */
static int asc_selftest_fail(const char *why)
{
    asc_board_puts("selftest: FAIL ");
    asc_board_puts(why);
    asc_board_puts("\n");
    return 1;
}

/* asc_selftest_spin_asm: reads TIM2->CNT, runs `subs; bne` n times (n >= 1), reads TIM2->CNT
 * again, all in one asm block; returns the tick delta. Between the two loads execute exactly
 * 2n instructions, so one tick per instruction gives 2n + 1 (the first load itself counts). */
static uint32_t asc_selftest_spin_asm(uint32_t n)
{
    uint32_t t0, t1;
    __asm__ volatile(
        "ldr  %[t0], [%[cnt]]      \n"
        "1:                        \n"
        "subs %[n], %[n], #1       \n"
        "bne  1b                   \n"
        "ldr  %[t1], [%[cnt]]      \n"
        : [t0] "=&r"(t0), [t1] "=&r"(t1), [n] "+r"(n)
        : [cnt] "r"(0x40000024u)
        : "cc", "memory");
    return t1 - t0;
}

/* asc_selftest_mix_asm: like asc_selftest_spin_asm but each iteration also does a load and an
 * integer division (multi-cycle on a real Cortex-M4: LDR 2, UDIV 2..12 cycles): 4n instructions
 * between the loads, so an instruction counter reads 4n + 1 whatever the cycle cost. */
static uint32_t asc_selftest_mix_asm(uint32_t n)
{
    static const uint32_t divisor = 7u;
    uint32_t t0, t1, tmp, acc = 0xFFFFFFFFu;
    __asm__ volatile(
        "ldr  %[t0], [%[cnt]]      \n"
        "1:                        \n"
        "ldr  %[tmp], [%[dp]]      \n"
        "udiv %[acc], %[acc], %[tmp] \n"
        "subs %[n], %[n], #1       \n"
        "bne  1b                   \n"
        "ldr  %[t1], [%[cnt]]      \n"
        : [t0] "=&r"(t0), [t1] "=&r"(t1), [n] "+r"(n), [tmp] "=&r"(tmp), [acc] "+r"(acc)
        : [cnt] "r"(0x40000024u), [dp] "r"(&divisor)
        : "cc", "memory");
    return t1 - t0;
}

/* asc_selftest_spin: a 2n-instruction loop (n >= 1) as a separate function. */
__attribute__((noinline)) static void asc_selftest_spin(uint32_t n)
{
    __asm__ volatile(
        "1:                        \n"
        "subs %[n], %[n], #1       \n"
        "bne  1b                   \n"
        : [n] "+r"(n)
        :
        : "cc");
}

/* asc_selftest_timed_api: asc_board_counter_start(), spin(n), asc_board_counter_read():
 * ticks of the loop plus a constant call overhead. */
static uint32_t asc_selftest_timed_api(uint32_t n)
{
    asc_board_counter_start();
    uint32_t t0 = asc_board_counter_read();
    asc_selftest_spin(n);
    uint32_t t1 = asc_board_counter_read();
    return t1 - t0;
}

/* asc_selftest_stack_user: touches `bytes` bytes of stack (volatile, so it is not optimised away);
 * returns a checksum. */
__attribute__((noinline)) static uint32_t asc_selftest_stack_user(uint32_t bytes)
{
    volatile uint8_t buf[ASC_SELFTEST_STACK_USE];
    uint32_t n = bytes < ASC_SELFTEST_STACK_USE ? bytes : ASC_SELFTEST_STACK_USE;
    for (uint32_t i = 0; i < n; i++) {
        buf[i] = (uint8_t)i;
    }
    uint32_t sum = 0u;
    for (uint32_t i = 0; i < n; i++) {
        sum += buf[i];
    }
    return sum;
}

/* asc_selftest_recurse: uses about `bytes` bytes of thread stack in 256-byte frames (not a tail
 * call: the frame is read after the recursive call returns); returns a checksum. */
__attribute__((noinline)) static uint32_t asc_selftest_recurse(uint32_t bytes)
{
    volatile uint8_t frame[256];
    frame[0] = (uint8_t)bytes;
    frame[255] = (uint8_t)(bytes >> 8);
    if (bytes <= sizeof(frame)) {
        return frame[0];
    }
    uint32_t below = asc_selftest_recurse(bytes - (uint32_t)sizeof(frame));
    return below + frame[0] + frame[255];
}

/* asc_selftest_streq_prefix: 1 if s starts with the word w followed by NUL / space / newline. */
static int asc_selftest_word_is(const char *s, const char *w)
{
    while (*w != '\0') {
        if (*s++ != *w++) {
            return 0;
        }
    }
    return *s == '\0' || *s == ' ' || *s == '\n' || *s == '\r' || *s == '\t';
}

/* asc_selftest_next_word: pointer to the start of the second whitespace-separated word of s
 * (NUL-terminating that word in place), or 0 if there is none. */
static char *asc_selftest_second_word(char *s)
{
    while (*s != '\0' && *s != ' ' && *s != '\t' && *s != '\n' && *s != '\r') {
        s++;
    }
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    if (*s == '\0' || *s == '\n' || *s == '\r') {
        return 0;
    }
    char *w = s;
    while (*s != '\0' && *s != ' ' && *s != '\t' && *s != '\n' && *s != '\r') {
        s++;
    }
    *s = '\0';
    return w;
}

/* asc_selftest_atou: decimal digits -> uint32 (stops at the first non-digit). */
static uint32_t asc_selftest_atou(const char *s)
{
    uint32_t v = 0u;
    while (*s >= '0' && *s <= '9') {
        v = v * 10u + (uint32_t)(*s++ - '0');
    }
    return v;
}

/* asc_selftest_file_round_trip: read `name`, print length + FNV-1a, write name + ".out". */
static int asc_selftest_file_round_trip(const char *name)
{
    int32_t n = asc_semihost_read_file(name, asc_selftest_in, ASC_SELFTEST_FILE_CAP);
    if (n == -2) {
        return asc_selftest_fail("input file larger than 4096 bytes");
    }
    if (n < 0) {
        return asc_selftest_fail("cannot read the input file");
    }
    uint32_t hash = 2166136261u;
    for (int32_t i = 0; i < n; i++) {
        hash = (hash ^ asc_selftest_in[i]) * 16777619u;
        asc_selftest_out[i] = (uint8_t)(asc_selftest_in[n - 1 - i] ^ 0x5Au);
    }
    asc_board_puts("file: in=");
    asc_board_puts(name);
    asc_board_puts(" bytes=");
    asc_board_put_u32((uint32_t)n);
    asc_board_puts(" fnv1a=");
    asc_board_put_hex32(hash);
    asc_board_puts("\n");

    char out_name[128];
    uint32_t len = 0u;
    while (name[len] != '\0' && len < sizeof(out_name) - 5u) {
        out_name[len] = name[len];
        len++;
    }
    if (name[len] != '\0') {
        return asc_selftest_fail("input file name too long");
    }
    out_name[len++] = '.';
    out_name[len++] = 'o';
    out_name[len++] = 'u';
    out_name[len++] = 't';
    out_name[len] = '\0';
    if (asc_semihost_write_file(out_name, asc_selftest_out, (uint32_t)n) != 0) {
        return asc_selftest_fail("cannot write the output file");
    }
    asc_board_puts("file: wrote ");
    asc_board_puts(out_name);
    asc_board_puts("\n");
    return 0;
}

/* asc_selftest_normal: the full self-test; returns the exit status. */
static int asc_selftest_normal(const char *input)
{
    asc_board_puts("selftest: start\n");
    asc_board_uart_write("uart: hello\n", 12u);

    char cmdline[128];
    if (asc_semihost_get_cmdline(cmdline, sizeof(cmdline)) >= 0) {
        asc_board_puts("cmdline: ");
        asc_board_puts(cmdline);
        asc_board_puts("\n");
    }

    if (input != 0) {
        int rc = asc_selftest_file_round_trip(input);
        if (rc != 0) {
            return rc;
        }
    }

    /* FPU: would UsageFault (NOCP) if the reset handler had not enabled CP10/CP11. */
    volatile float a = 1.5f;
    volatile float b = 2.75f;
    float c = a * b + 0.125f; /* 4.25 */
    asc_selftest_line("fpu: 4.25*1000=", (uint32_t)(c * 1000.0f));

    static const uint32_t loops[3] = {1000u, 1000u, 4000u};
    for (uint32_t i = 0; i < 3u; i++) {
        asc_board_puts("counter: asm n=");
        asc_board_put_u32(loops[i]);
        asc_selftest_line(" delta=", asc_selftest_spin_asm(loops[i]));
    }
    for (uint32_t i = 0; i < 2u; i++) {
        asc_board_puts("counter: mix n=");
        asc_board_put_u32(loops[i]);
        asc_selftest_line(" delta=", asc_selftest_mix_asm(loops[i]));
    }
    for (uint32_t i = 0; i < 3u; i++) {
        asc_board_puts("counter: api n=");
        asc_board_put_u32(loops[i]);
        asc_selftest_line(" delta=", asc_selftest_timed_api(loops[i]));
    }

    uint32_t before = asc_board_stack_high_water_bytes();
    uint32_t sum = asc_selftest_stack_user(ASC_SELFTEST_STACK_USE);
    uint32_t after = asc_board_stack_high_water_bytes();
    asc_board_puts("stack: before=");
    asc_board_put_u32(before);
    asc_board_puts(" after=");
    asc_board_put_u32(after);
    asc_board_puts(" size=");
    asc_board_put_u32(asc_board_stack_size_bytes());
    asc_selftest_line(" sum=", sum);

#ifdef ASC_SELFTEST_EXTRA_BSS_BYTES
    ((volatile uint8_t *)asc_selftest_extra_bss)[ASC_SELFTEST_EXTRA_BSS_BYTES - 1] = 1u;
#endif
#ifdef ASC_SELFTEST_EXTRA_RODATA_BYTES
    asc_selftest_line("rodata: last=",
                      ((const volatile uint8_t *)asc_selftest_extra_rodata)[ASC_SELFTEST_EXTRA_RODATA_BYTES - 1]);
#endif
    asc_board_puts("selftest: done\n");
    return 0;
}

int main(void)
{
    static char mode[160];
#ifdef ASC_SELFTEST_MODE
    int32_t n = (int32_t)strlen(ASC_SELFTEST_MODE);
    memcpy(mode, ASC_SELFTEST_MODE, (size_t)n < sizeof(mode) - 1u ? (size_t)n + 1u : sizeof(mode));
    mode[sizeof(mode) - 1u] = '\0';
#else
    int32_t n = asc_semihost_read_file("mode.txt", mode, sizeof(mode) - 1u);
    if (n < 0) {
        n = 0; /* no mode file: plain run */
    }
    mode[n] = '\0';
#endif

    if (asc_selftest_word_is(mode, "fault")) {
        asc_board_puts("selftest: provoking a bus fault\n");
        volatile uint32_t *bad = (volatile uint32_t *)0x30000000u; /* reserved on the F405 */
        return (int)*bad;
    }
    if (asc_selftest_word_is(mode, "udf")) {
        asc_board_puts("selftest: provoking an undefined instruction\n");
        __asm__ volatile("udf #7");
        return 0;
    }
    if (asc_selftest_word_is(mode, "hang")) {
        asc_board_puts("selftest: hanging on purpose\n");
        volatile uint32_t spins = 0u;
        for (;;) {
            spins++;
        }
    }
    if (asc_selftest_word_is(mode, "recurse")) {
        char *arg = asc_selftest_second_word(mode);
        uint32_t bytes = arg != 0 ? asc_selftest_atou(arg) : 0u;
        asc_board_puts("selftest: recursing through ");
        asc_board_put_u32(bytes);
        asc_board_puts(" bytes of stack\n");
        uint32_t sum = asc_selftest_recurse(bytes);
        asc_board_puts("recurse: high_water=");
        asc_board_put_u32(asc_board_stack_high_water_bytes());
        asc_selftest_line(" sum=", sum);
        return 0;
    }
    if (asc_selftest_word_is(mode, "exit")) {
        char *arg = asc_selftest_second_word(mode);
        return (int)(arg != 0 ? asc_selftest_atou(arg) : 0u);
    }
    if (n == 0 || asc_selftest_word_is(mode, "normal")) {
        return asc_selftest_normal(asc_selftest_second_word(mode));
    }
    return asc_selftest_fail("unknown mode in mode.txt (normal|fault|udf|hang|recurse|exit)");
}
