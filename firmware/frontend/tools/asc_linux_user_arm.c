/*
 * asc_linux_user_arm.c - process entry and file I/O for Cortex-M4 test programs run under QEMU's
 * Linux user-mode emulator (qemu-arm), without a C library's startup code or stdio.
 *
 * The program is compiled for the Cortex-M4 (-mcpu=cortex-m4 -mthumb -mfloat-abi=hard
 * -mfpu=fpv4-sp-d16) and linked with -nostartfiles; qemu-arm loads the ELF, zero-fills .bss, and
 * starts at _start with sp -> [argc, argv[0..argc-1], NULL, envp..., NULL, auxv...] (the Linux
 * process stack layout). File access uses Linux ARM EABI system calls: the call number in r7,
 * arguments in r0..r2, "svc #0", result (or -errno) in r0.
 */
#include <stdint.h>

#include "asc_rt_io.h"

#if !defined(__arm__)
#error "asc_linux_user_arm.c is for 32-bit Arm targets run under qemu-arm"
#endif

#define ASC_NR_EXIT_GROUP 248
#define ASC_NR_READ 3
#define ASC_NR_WRITE 4
#define ASC_NR_OPEN 5
#define ASC_NR_CLOSE 6

/* Linux (Arm) open(2) flags */
#define ASC_O_RDONLY 0x0
#define ASC_O_WRONLY 0x1
#define ASC_O_CREAT 0x40
#define ASC_O_TRUNC 0x200

int main(int argc, char **argv);

static int32_t asc_syscall3(int32_t nr, int32_t a0, int32_t a1, int32_t a2)
{
    register int32_t r0 __asm__("r0") = a0;
    register int32_t r1 __asm__("r1") = a1;
    register int32_t r2 __asm__("r2") = a2;
    register int32_t r7 __asm__("r7") = nr;
    __asm__ volatile("svc #0" : "+r"(r0) : "r"(r1), "r"(r2), "r"(r7) : "memory");
    return r0;
}

void asc_rt_exit(int32_t code)
{
    for (;;) {
        (void)asc_syscall3(ASC_NR_EXIT_GROUP, code, 0, 0);
    }
}

int32_t asc_rt_open_read(const char *path)
{
    return asc_syscall3(ASC_NR_OPEN, (int32_t)(uintptr_t)path, ASC_O_RDONLY, 0);
}

int32_t asc_rt_open_write(const char *path)
{
    return asc_syscall3(ASC_NR_OPEN, (int32_t)(uintptr_t)path, ASC_O_WRONLY | ASC_O_CREAT | ASC_O_TRUNC,
                        0644);
}

int32_t asc_rt_read(int32_t fd, void *buf, int32_t n)
{
    return asc_syscall3(ASC_NR_READ, fd, (int32_t)(uintptr_t)buf, n);
}

int32_t asc_rt_write(int32_t fd, const void *buf, int32_t n)
{
    return asc_syscall3(ASC_NR_WRITE, fd, (int32_t)(uintptr_t)buf, n);
}

int32_t asc_rt_close(int32_t fd)
{
    return asc_syscall3(ASC_NR_CLOSE, fd, 0, 0);
}

/* C entry: sp points at argc. */
__attribute__((noreturn, used)) void asc_rt_entry(uint32_t *sp)
{
    const int argc = (int)sp[0];
    char **argv = (char **)(void *)(sp + 1);
    asc_rt_exit(main(argc, argv));
    for (;;) {
    }
}

/* Process entry point: pass the initial stack pointer to asc_rt_entry. */
__attribute__((naked, noreturn)) void _start(void)
{
    __asm__ volatile(
        "mov r0, sp\n"
        "bic r1, r0, #7\n"   /* AAPCS: 8-byte aligned stack at calls */
        "mov sp, r1\n"
        "bl asc_rt_entry\n");
}
