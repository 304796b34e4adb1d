/*
 * asc_rt_io.h - the minimal file I/O the frontend test runner needs (asc_fe_runner.c).
 * Implemented for qemu-arm user mode by asc_linux_user_arm.c (Linux system calls).
 * All functions return a byte count / file descriptor >= 0, or a negative error.
 */
#ifndef ASC_RT_IO_H
#define ASC_RT_IO_H

#include <stdint.h>

int32_t asc_rt_open_read(const char *path);
int32_t asc_rt_open_write(const char *path);             /* create / truncate, mode 0644 */
int32_t asc_rt_read(int32_t fd, void *buf, int32_t n);   /* up to n bytes; 0 at end of file */
int32_t asc_rt_write(int32_t fd, const void *buf, int32_t n);
int32_t asc_rt_close(int32_t fd);
void asc_rt_exit(int32_t code) __attribute__((noreturn));

#endif /* ASC_RT_IO_H */
