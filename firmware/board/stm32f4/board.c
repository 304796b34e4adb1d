/* board.c - STM32F405 board layer: USART1 console, USART2 binary data channel, TIM2 counter, stack high-water, exit,
 * printf-free number formatting, newlib assert()/abort() hooks. No heap, no interrupts. */
#include "board.h"

#include "asc_semihost.h"

/* ---- registers (RM0090) ---------------------------------------------------------------- */
#define ASC_REG32(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

#define ASC_RCC_BASE      0x40023800u
#define ASC_RCC_AHB1ENR   ASC_REG32(ASC_RCC_BASE + 0x30u)
#define ASC_RCC_APB1ENR   ASC_REG32(ASC_RCC_BASE + 0x40u)
#define ASC_RCC_APB2ENR   ASC_REG32(ASC_RCC_BASE + 0x44u)

#define ASC_GPIOA_BASE    0x40020000u
#define ASC_GPIOA_MODER   ASC_REG32(ASC_GPIOA_BASE + 0x00u)
#define ASC_GPIOA_AFRH    ASC_REG32(ASC_GPIOA_BASE + 0x24u)

/* USART1: QEMU's netduinoplus2 connects its first -serial to USART1 (0x40011000). */
#define ASC_USART1_BASE   0x40011000u
/* USART2: the binary data channel (Renode writes it to a file; see asc_board_data_write). */
#define ASC_USART2_BASE   0x40004400u
#define ASC_USART_SR_OF(base)  ASC_REG32((base) + 0x00u)
#define ASC_USART_DR_OF(base)  ASC_REG32((base) + 0x04u)
#define ASC_USART_BRR_OF(base) ASC_REG32((base) + 0x08u)
#define ASC_USART_CR1_OF(base) ASC_REG32((base) + 0x0Cu)
#define ASC_USART_SR      ASC_USART_SR_OF(ASC_USART1_BASE)
#define ASC_USART_DR      ASC_USART_DR_OF(ASC_USART1_BASE)
#define ASC_USART_BRR     ASC_USART_BRR_OF(ASC_USART1_BASE)
#define ASC_USART_CR1     ASC_USART_CR1_OF(ASC_USART1_BASE)
#define ASC_USART_SR_TXE  (1u << 7)
#define ASC_USART_CR1_UE  (1u << 13)
#define ASC_USART_CR1_TE  (1u << 3)
/* 115200 baud from the 16 MHz HSI, oversampling 16: USARTDIV = 8.6875 -> mantissa 8, fraction 11 */
#define ASC_USART_BRR_115200_HSI 0x008Bu

#define ASC_TIM2_BASE     0x40000000u
#define ASC_TIM2_CR1      ASC_REG32(ASC_TIM2_BASE + 0x00u)
#define ASC_TIM2_EGR      ASC_REG32(ASC_TIM2_BASE + 0x14u)
#define ASC_TIM2_CNT      ASC_REG32(ASC_TIM2_BASE + 0x24u)
#define ASC_TIM2_PSC      ASC_REG32(ASC_TIM2_BASE + 0x28u)
#define ASC_TIM2_ARR      ASC_REG32(ASC_TIM2_BASE + 0x2Cu)
#define ASC_TIM_CR1_CEN   (1u << 0)
#define ASC_TIM_EGR_UG    (1u << 0)

/* Linker-script symbols (addresses only). */
extern uint32_t __stack_bottom[];
extern uint32_t __stack_top[];

static uint8_t asc_board_ready;
#if ASC_BOARD_SEMIHOSTING
static int32_t asc_console_handle = -1;
#endif

/* asc_board_init: clocks on (no-ops under QEMU, whose RCC is unimplemented), PA9 = USART1_TX
 * (AF7), USART1 115200 8N1 transmit-only, TIM2 started. */
void asc_board_init(void)
{
    if (asc_board_ready) {
        return;
    }
    ASC_RCC_AHB1ENR |= 1u << 0;   /* GPIOAEN */
    ASC_RCC_APB2ENR |= 1u << 4;   /* USART1EN */
    ASC_RCC_APB1ENR |= 1u << 0;   /* TIM2EN */
    (void)ASC_RCC_APB1ENR;        /* read back: clock-enable delay (RM0090 errata) */

    ASC_GPIOA_MODER = (ASC_GPIOA_MODER & ~(3u << 18)) | (2u << 18);      /* PA9 alternate */
    ASC_GPIOA_AFRH = (ASC_GPIOA_AFRH & ~(0xFu << 4)) | (7u << 4);        /* AF7 = USART1 */

    ASC_USART_CR1 = 0u;
    ASC_USART_BRR = ASC_USART_BRR_115200_HSI;
    ASC_USART_CR1 = ASC_USART_CR1_UE | ASC_USART_CR1_TE;

    asc_board_counter_start();
    asc_board_ready = 1u;
}

/* asc_board_uart_write: len bytes out of USART1, waiting for TXE before each (bytes). */
void asc_board_uart_write(const char *buf, uint32_t len)
{
    for (uint32_t i = 0; i < len; i++) {
        while ((ASC_USART_SR & ASC_USART_SR_TXE) == 0u) {
        }
        ASC_USART_DR = (uint8_t)buf[i];
    }
}

/* asc_board_data_write: len raw bytes out of USART2 (enabled on first use: clock, 115200 8N1
 * transmit-only; pins are not routed, which the emulators do not need). */
void asc_board_data_write(const void *buf, uint32_t len)
{
    static uint8_t ready;
    const uint8_t *b = (const uint8_t *)buf;
    if (!ready) {
        ASC_RCC_APB1ENR |= 1u << 17;  /* USART2EN */
        (void)ASC_RCC_APB1ENR;
        ASC_USART_CR1_OF(ASC_USART2_BASE) = 0u;
        ASC_USART_BRR_OF(ASC_USART2_BASE) = ASC_USART_BRR_115200_HSI;
        ASC_USART_CR1_OF(ASC_USART2_BASE) = ASC_USART_CR1_UE | ASC_USART_CR1_TE;
        ready = 1u;
    }
    for (uint32_t i = 0; i < len; i++) {
        while ((ASC_USART_SR_OF(ASC_USART2_BASE) & ASC_USART_SR_TXE) == 0u) {
        }
        ASC_USART_DR_OF(ASC_USART2_BASE) = b[i];
    }
}

/* asc_board_write: len bytes to the semihosting console (a ":tt" handle opened on first use)
 * and to USART1. */
void asc_board_write(const char *buf, uint32_t len)
{
    if (len == 0u) {
        return;
    }
#if ASC_BOARD_SEMIHOSTING
    if (asc_console_handle < 0) {
        asc_console_handle = asc_semihost_open(":tt", 4u /* "w": console output */);
    }
    if (asc_console_handle >= 0) {
        (void)asc_semihost_write(asc_console_handle, buf, len);
    }
#endif
    asc_board_uart_write(buf, len);
}

/* asc_board_puts: NUL-terminated string to the console. */
void asc_board_puts(const char *s)
{
    uint32_t n = 0u;
    while (s[n] != '\0') {
        n++;
    }
    asc_board_write(s, n);
}

/* asc_fmt_u32: unsigned decimal into out (>= 11 bytes); returns the character count. */
uint32_t asc_fmt_u32(char *out, uint32_t v)
{
    char tmp[10];
    uint32_t n = 0u;
    do {
        tmp[n++] = (char)('0' + (v % 10u));
        v /= 10u;
    } while (v != 0u);
    for (uint32_t i = 0; i < n; i++) {
        out[i] = tmp[n - 1u - i];
    }
    out[n] = '\0';
    return n;
}

/* asc_fmt_i32: signed decimal into out (>= 12 bytes); returns the character count. */
uint32_t asc_fmt_i32(char *out, int32_t v)
{
    if (v < 0) {
        out[0] = '-';
        /* magnitude in unsigned arithmetic: correct for INT32_MIN too */
        return 1u + asc_fmt_u32(out + 1, 0u - (uint32_t)v);
    }
    return asc_fmt_u32(out, (uint32_t)v);
}

/* asc_fmt_hex32: "0x" + 8 lowercase hex digits into out (>= 11 bytes); returns 10. */
uint32_t asc_fmt_hex32(char *out, uint32_t v)
{
    static const char digits[] = "0123456789abcdef";
    out[0] = '0';
    out[1] = 'x';
    for (uint32_t i = 0; i < 8u; i++) {
        out[2u + i] = digits[(v >> (28u - 4u * i)) & 0xFu];
    }
    out[10] = '\0';
    return 10u;
}

/* asc_board_put_u32: decimal to the console. */
void asc_board_put_u32(uint32_t v)
{
    char buf[12];
    asc_board_write(buf, asc_fmt_u32(buf, v));
}

/* asc_board_put_i32: signed decimal to the console. */
void asc_board_put_i32(int32_t v)
{
    char buf[12];
    asc_board_write(buf, asc_fmt_i32(buf, v));
}

/* asc_board_put_hex32: 0x%08x to the console. */
void asc_board_put_hex32(uint32_t v)
{
    char buf[12];
    asc_board_write(buf, asc_fmt_hex32(buf, v));
}

/* asc_board_counter_start: TIM2 stopped, prescaler 0 (one tick per timer-clock cycle), 32-bit
 * auto-reload 0xFFFFFFFF (free running), update event to load PSC and clear CNT, then enable. */
void asc_board_counter_start(void)
{
    ASC_TIM2_CR1 = 0u;
    ASC_TIM2_PSC = 0u;
    ASC_TIM2_ARR = 0xFFFFFFFFu;
    ASC_TIM2_CNT = 0u;
    ASC_TIM2_EGR = ASC_TIM_EGR_UG;
    ASC_TIM2_CR1 = ASC_TIM_CR1_CEN;
}

/* asc_board_counter_read: TIM2->CNT in ticks (see board.h for what a tick is). */
uint32_t asc_board_counter_read(void)
{
    return ASC_TIM2_CNT;
}

/* asc_board_stack_size_bytes: reservation size in bytes. */
uint32_t asc_board_stack_size_bytes(void)
{
    return (uint32_t)((uintptr_t)__stack_top - (uintptr_t)__stack_bottom);
}

/* asc_board_stack_high_water_bytes: bytes between the stack top and the lowest word that no
 * longer holds the paint pattern (0 if the stack was never used below its top). */
uint32_t asc_board_stack_high_water_bytes(void)
{
    const volatile uint32_t *p = __stack_bottom;
    const volatile uint32_t *top = __stack_top;
    while (p < top && *p == ASC_BOARD_STACK_PAINT) {
        p++;
    }
    return (uint32_t)((uintptr_t)top - (uintptr_t)p);
}

/* asc_board_exit: stack-overflow check on the bottom word, then semihosting exit. */
void asc_board_exit(int32_t code)
{
    if (__stack_bottom[0] != ASC_BOARD_STACK_PAINT) {
        asc_board_puts("\nasc board: STACK OVERFLOW: the stack used all ");
        asc_board_put_u32(asc_board_stack_size_bytes());
        asc_board_puts(" bytes of its reservation (raise STACK_SIZE)\n");
        code = ASC_BOARD_EXIT_STACK_OVERFLOW;
    }
#if ASC_BOARD_SEMIHOSTING
    asc_semihost_exit((uint32_t)code & 0xFFu);
#else
    (void)code;
    for (;;) {
        __asm__ volatile("wfi");
    }
#endif
}

/* __assert_func: newlib's assert() target; prints "assertion failed" and exits with
 * ASC_BOARD_EXIT_ASSERT (replaces newlib's, which needs stdio and syscalls). */
void __assert_func(const char *file, int line, const char *func, const char *expr)
    __attribute__((noreturn));
void __assert_func(const char *file, int line, const char *func, const char *expr)
{
    asc_board_puts("\nasc board: assertion failed: ");
    asc_board_puts(expr != 0 ? expr : "?");
    asc_board_puts(" (");
    asc_board_puts(file != 0 ? file : "?");
    asc_board_puts(":");
    asc_board_put_i32((int32_t)line);
    if (func != 0) {
        asc_board_puts(", ");
        asc_board_puts(func);
    }
    asc_board_puts(")\n");
    asc_board_exit(ASC_BOARD_EXIT_ASSERT);
}

/* abort: exits with ASC_BOARD_EXIT_ASSERT (newlib's needs the kill/getpid syscalls). */
void abort(void) __attribute__((noreturn));
void abort(void)
{
    asc_board_puts("\nasc board: abort() called\n");
    asc_board_exit(ASC_BOARD_EXIT_ASSERT);
}

/* _exit: target of newlib's exit() after atexit handlers. */
void _exit(int code) __attribute__((noreturn));
void _exit(int code)
{
    asc_board_exit((int32_t)code);
}
