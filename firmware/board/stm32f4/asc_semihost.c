/* asc_semihost.c - ARM semihosting (Thumb: `bkpt 0xab`, operation in r0, argument in r1, result
 * in r0). Parameter blocks are arrays of 32-bit words on the caller's stack. */
#include "asc_semihost.h"

#include <stddef.h>

/* asc_strlen: length of a NUL-terminated string in bytes (no libc dependency). */
static uint32_t asc_strlen(const char *s)
{
    uint32_t n = 0u;
    while (s[n] != '\0') {
        n++;
    }
    return n;
}

/* asc_semihost_call: one semihosting trap. The "memory" clobber makes the compiler write out any
 * parameter block before the trap and re-read buffers the host filled after it. */
int32_t asc_semihost_call(uint32_t op, uintptr_t arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register uintptr_t r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return (int32_t)r0;
}

/* asc_semihost_open: SYS_OPEN {path, mode, strlen(path)}; returns handle or -1. */
int32_t asc_semihost_open(const char *path, uint32_t mode)
{
    uint32_t block[3] = {(uint32_t)(uintptr_t)path, mode, asc_strlen(path)};
    return asc_semihost_call(ASC_SH_SYS_OPEN, (uintptr_t)block);
}

/* asc_semihost_close: SYS_CLOSE {handle}; 0 or -1. */
int32_t asc_semihost_close(int32_t handle)
{
    uint32_t block[1] = {(uint32_t)handle};
    return asc_semihost_call(ASC_SH_SYS_CLOSE, (uintptr_t)block);
}

/* asc_semihost_write: SYS_WRITE {handle, buf, len}; bytes not written (0 = all). */
int32_t asc_semihost_write(int32_t handle, const void *buf, uint32_t len)
{
    uint32_t block[3] = {(uint32_t)handle, (uint32_t)(uintptr_t)buf, len};
    return asc_semihost_call(ASC_SH_SYS_WRITE, (uintptr_t)block);
}

/* asc_semihost_read: SYS_READ {handle, buf, len}; bytes not read (len = EOF). */
int32_t asc_semihost_read(int32_t handle, void *buf, uint32_t len)
{
    uint32_t block[3] = {(uint32_t)handle, (uint32_t)(uintptr_t)buf, len};
    return asc_semihost_call(ASC_SH_SYS_READ, (uintptr_t)block);
}

/* asc_semihost_flen: SYS_FLEN {handle}; file length in bytes or -1. */
int32_t asc_semihost_flen(int32_t handle)
{
    uint32_t block[1] = {(uint32_t)handle};
    return asc_semihost_call(ASC_SH_SYS_FLEN, (uintptr_t)block);
}

/* asc_semihost_write0: SYS_WRITE0 with r1 = the string itself. */
void asc_semihost_write0(const char *s)
{
    (void)asc_semihost_call(ASC_SH_SYS_WRITE0, (uintptr_t)s);
}

/* asc_semihost_get_cmdline: SYS_GET_CMDLINE {buf, cap}; the host rewrites word 1 with the
 * length it stored. */
int32_t asc_semihost_get_cmdline(char *buf, uint32_t cap)
{
    if (buf == NULL || cap < 2u) {
        return -1;
    }
    volatile uint32_t block[2] = {(uint32_t)(uintptr_t)buf, cap};
    if (asc_semihost_call(ASC_SH_SYS_GET_CMDLINE, (uintptr_t)block) != 0) {
        buf[0] = '\0';
        return -1;
    }
    uint32_t n = block[1];
    if (n >= cap) {
        buf[cap - 1u] = '\0';
        return -1;
    }
    buf[n] = '\0';
    return (int32_t)n;
}

/* asc_semihost_read_file: whole-file read into a caller buffer; length, -1 or -2 (too long). */
int32_t asc_semihost_read_file(const char *path, void *buf, uint32_t cap)
{
    int32_t h = asc_semihost_open(path, ASC_SH_MODE_RB);
    if (h < 0) {
        return -1;
    }
    int32_t len = asc_semihost_flen(h);
    int32_t result;
    if (len < 0) {
        result = -1;
    } else if ((uint32_t)len > cap) {
        result = -2;
    } else {
        /* SYS_READ may return short: loop until the whole file is in. */
        uint8_t *dst = (uint8_t *)buf;
        uint32_t done = 0u;
        result = len;
        while (done < (uint32_t)len) {
            uint32_t want = (uint32_t)len - done;
            int32_t left = asc_semihost_read(h, dst + done, want);
            if (left < 0 || (uint32_t)left >= want) {
                result = -1; /* error, or end of file before the reported length */
                break;
            }
            done += want - (uint32_t)left;
        }
    }
    (void)asc_semihost_close(h);
    return result;
}

/* asc_semihost_write_file: create/truncate and write; 0 or -1. */
int32_t asc_semihost_write_file(const char *path, const void *buf, uint32_t len)
{
    int32_t h = asc_semihost_open(path, ASC_SH_MODE_WB);
    if (h < 0) {
        return -1;
    }
    int32_t result = 0;
    if (len > 0u && asc_semihost_write(h, buf, len) != 0) {
        result = -1;
    }
    if (asc_semihost_close(h) != 0) {
        result = -1;
    }
    return result;
}

/* asc_semihost_exit: SYS_EXIT_EXTENDED {ADP_Stopped_ApplicationExit, code} so the exit status
 * survives on AArch32 (plain SYS_EXIT only reports success / failure there). */
void asc_semihost_exit(uint32_t code)
{
    uint32_t block[2] = {ASC_SH_ADP_STOPPED_APPLICATION_EXIT, code};
    (void)asc_semihost_call(ASC_SH_SYS_EXIT_EXTENDED, (uintptr_t)block);
    /* Only reached if the host ignored the exit request (no debugger): park the core. */
    for (;;) {
        __asm__ volatile("wfi");
    }
}
