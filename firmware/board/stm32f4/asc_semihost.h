/* asc_semihost.h - ARM semihosting calls (the `bkpt 0xab` convention of Arm's "Semihosting for
 * AArch32 and AArch64" specification) used by the firmware under QEMU or a debug probe.
 *
 * Every call traps into the debugger / emulator; on a board WITHOUT an attached debugger a
 * semihosting call raises a HardFault, so production images must not call these.
 * No function here allocates memory; all buffers are the caller's.
 */
#ifndef ASC_SEMIHOST_H
#define ASC_SEMIHOST_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Operation numbers (r0). */
#define ASC_SH_SYS_OPEN          0x01u
#define ASC_SH_SYS_CLOSE         0x02u
#define ASC_SH_SYS_WRITEC        0x03u
#define ASC_SH_SYS_WRITE0        0x04u
#define ASC_SH_SYS_WRITE         0x05u
#define ASC_SH_SYS_READ          0x06u
#define ASC_SH_SYS_FLEN          0x0Cu
#define ASC_SH_SYS_GET_CMDLINE   0x15u
#define ASC_SH_SYS_EXIT          0x18u
#define ASC_SH_SYS_EXIT_EXTENDED 0x20u

/* SYS_OPEN modes (ISO C fopen mode index). */
#define ASC_SH_MODE_RB 1u  /* "rb" */
#define ASC_SH_MODE_WB 5u  /* "wb" */
#define ASC_SH_MODE_AB 9u  /* "ab" */

/* Reason code of SYS_EXIT / SYS_EXIT_EXTENDED for a normal application exit. */
#define ASC_SH_ADP_STOPPED_APPLICATION_EXIT 0x20026u

/* asc_semihost_call: raw call; op -> r0, arg -> r1 (a pointer to the parameter block or a
 * scalar, per operation). Returns the host's r0. */
int32_t asc_semihost_call(uint32_t op, uintptr_t arg);

/* asc_semihost_open: open a host file (path relative to the emulator's working directory; the
 * special name ":tt" is the console). mode: ASC_SH_MODE_*. Returns a handle >= 0, or -1. */
int32_t asc_semihost_open(const char *path, uint32_t mode);

/* asc_semihost_close: close a handle. Returns 0 on success, -1 on error. */
int32_t asc_semihost_close(int32_t handle);

/* asc_semihost_write: write len bytes. Returns the number of bytes NOT written (0 = all
 * written; the semihosting convention), or -1 for a bad handle. */
int32_t asc_semihost_write(int32_t handle, const void *buf, uint32_t len);

/* asc_semihost_read: read up to len bytes into buf. Returns the number of bytes NOT read
 * (0 = buffer filled, len = end of file), or -1 on error. */
int32_t asc_semihost_read(int32_t handle, void *buf, uint32_t len);

/* asc_semihost_flen: length of an open file in bytes, or -1 on error. */
int32_t asc_semihost_flen(int32_t handle);

/* asc_semihost_write0: write a NUL-terminated string to the host console (emulator output). */
void asc_semihost_write0(const char *s);

/* asc_semihost_get_cmdline: copy the command line (QEMU: the -semihosting-config arg=... values,
 * space separated) into buf of cap bytes, NUL-terminated. Returns its length in bytes (without
 * the NUL), or -1 if unavailable or longer than cap - 1. */
int32_t asc_semihost_get_cmdline(char *buf, uint32_t cap);

/* asc_semihost_read_file: open path, read it whole into buf (cap bytes). Returns the file length
 * in bytes, -1 if it cannot be opened / read, or -2 if it is longer than cap. */
int32_t asc_semihost_read_file(const char *path, void *buf, uint32_t cap);

/* asc_semihost_write_file: create / truncate path and write len bytes. Returns 0 on success,
 * -1 on error. */
int32_t asc_semihost_write_file(const char *path, const void *buf, uint32_t len);

/* asc_semihost_exit: end the program with exit status `code` (0..255 reaches the host process
 * exit status; QEMU exits with it) via SYS_EXIT_EXTENDED (ADP_Stopped_ApplicationExit, code).
 * Does not return. */
void asc_semihost_exit(uint32_t code) __attribute__((noreturn));

#ifdef __cplusplus
}
#endif

#endif /* ASC_SEMIHOST_H */
