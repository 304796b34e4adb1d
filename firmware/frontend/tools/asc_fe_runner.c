/*
 * asc_fe_runner.c - run the log-mel frontend on a clip stored in a file (test program for the
 * Cortex-M4 build under qemu-arm; see asc_edge.device.frontend_c.build_qemu_user_frontend).
 *
 *   asc_fe_runner f32  <clip.f32> <out.bin>   clip: ASC_FE_N_SAMPLES little-endian float32;
 *                                             out: N_MELS * N_FRAMES float32 ([mel * N_FRAMES + t])
 *   asc_fe_runner s8   <clip.f32> <out.bin>   out: N_MELS * N_FRAMES int8 (model input layout)
 *   asc_fe_runner logf <x.f32>    <out.bin>   out[i] = asc_logf(x[i]) for every float32 in x
 *   asc_fe_runner cfft <x.f32>    <out.bin>   x: N_FFT float32 (N_FFT / 2 complex values, re, im);
 *                                             out: asc_fe_cfft(x), N_FFT float32
 *   asc_fe_runner mel  <x.f32>    <out.bin>   x: N_FFT float32 (a complex FFT output); out: the
 *                                             power spectrum asc_fe_power_mel leaves in x (N_FFT
 *                                             float32), then its N_MELS mel sums
 *
 * The clip is streamed from the file through the frontend's read callback, a hop at a time, as a
 * microphone driver would; only the frontend's work buffer and the output are in RAM.
 * Exit status: 0 ok, 2 usage, 3 cannot open a file, 4 frontend error, 5 read/write error.
 */
#include <stdint.h>

#include "asc_frontend.h"
#include "asc_rt_io.h"

static float asc_runner_work[ASC_FE_WORK_BYTES / 4];
static union {
    float f32[ASC_FE_N_MELS * ASC_FE_N_FRAMES];
    int8_t s8[ASC_FE_N_MELS * ASC_FE_N_FRAMES];
} asc_runner_out;
static float asc_runner_chunk[2][1024];

static int asc_runner_streq(const char *a, const char *b)
{
    while (*a != '\0' && *a == *b) {
        ++a;
        ++b;
    }
    return *a == *b;
}

/* asc_fe_read_fn over a file descriptor of float32 samples. */
static int32_t asc_runner_read_fd(void *ctx, float *dst, int32_t n)
{
    const int32_t fd = *(const int32_t *)ctx;
    int32_t want = n * 4;
    uint8_t *p = (uint8_t *)dst;
    int32_t done = 0;
    while (done < want) {
        const int32_t got = asc_rt_read(fd, p + done, want - done);
        if (got <= 0) {
            break;
        }
        done += got;
    }
    return done / 4; /* a trailing partial sample is an error on the next call (0 returned) */
}

static int asc_runner_write_all(int32_t fd, const void *buf, int32_t n)
{
    const uint8_t *p = (const uint8_t *)buf;
    while (n > 0) {
        const int32_t put = asc_rt_write(fd, p, n);
        if (put <= 0) {
            return -1;
        }
        p += put;
        n -= put;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int32_t in;
    int32_t out;
    int rc = 0;
    if (argc != 4) {
        return 2;
    }
    in = asc_rt_open_read(argv[2]);
    if (in < 0) {
        return 3;
    }
    out = asc_rt_open_write(argv[3]);
    if (out < 0) {
        (void)asc_rt_close(in);
        return 3;
    }
    if (asc_runner_streq(argv[1], "f32") || asc_runner_streq(argv[1], "s8")) {
        const int is_f32 = asc_runner_streq(argv[1], "f32");
        asc_fe_status_t status;
        if (is_f32) {
            status = asc_fe_logmel_f32(asc_runner_read_fd, &in, asc_runner_work, (int32_t)sizeof asc_runner_work,
                                       asc_runner_out.f32);
        } else {
            status = asc_fe_logmel_s8(asc_runner_read_fd, &in, asc_runner_work, (int32_t)sizeof asc_runner_work,
                                      asc_runner_out.s8);
        }
        if (status != ASC_FE_OK) {
            rc = 4;
        } else if (asc_runner_write_all(out, is_f32 ? (const void *)asc_runner_out.f32 : (const void *)asc_runner_out.s8,
                                        is_f32 ? (int32_t)sizeof asc_runner_out.f32
                                               : (int32_t)sizeof asc_runner_out.s8) != 0) {
            rc = 5;
        }
    } else if (asc_runner_streq(argv[1], "cfft")) {
        /* asc_fe_cfft of N_FFT floats (N_FFT / 2 complex values), in the FFT part of the work area */
        float *x = asc_runner_work + (ASC_FE_WORK_BYTES / 4 - ASC_FE_N_FFT);
        if (asc_runner_read_fd(&in, x, ASC_FE_N_FFT) != ASC_FE_N_FFT) {
            rc = 5;
        } else {
            asc_fe_cfft(x);
            if (asc_runner_write_all(out, x, ASC_FE_N_FFT * 4) != 0) {
                rc = 5;
            }
        }
    } else if (asc_runner_streq(argv[1], "mel")) {
        /* asc_fe_power_mel of N_FFT floats in the FFT part of the work area (the mel sums in the
         * output buffer) */
        float *x = asc_runner_work + (ASC_FE_WORK_BYTES / 4 - ASC_FE_N_FFT);
        if (asc_runner_read_fd(&in, x, ASC_FE_N_FFT) != ASC_FE_N_FFT) {
            rc = 5;
        } else {
            asc_fe_power_mel(x, asc_runner_out.f32);
            if (asc_runner_write_all(out, x, ASC_FE_N_FFT * 4) != 0 ||
                asc_runner_write_all(out, asc_runner_out.f32, ASC_FE_N_MELS * 4) != 0) {
                rc = 5;
            }
        }
    } else if (asc_runner_streq(argv[1], "logf")) {
        for (;;) {
            int32_t n = asc_runner_read_fd(&in, asc_runner_chunk[0], 1024);
            int32_t i;
            if (n <= 0) {
                break;
            }
            for (i = 0; i < n; ++i) {
                asc_runner_chunk[1][i] = asc_logf(asc_runner_chunk[0][i]);
            }
            if (asc_runner_write_all(out, asc_runner_chunk[1], n * 4) != 0) {
                rc = 5;
                break;
            }
        }
    } else {
        rc = 2;
    }
    (void)asc_rt_close(in);
    if (asc_rt_close(out) < 0 && rc == 0) {
        rc = 5;
    }
    return rc;
}
