/*
 * asc_frontend_host.c - host-only entry points for the ctypes wrapper (asc_edge.device.frontend_c).
 * Not part of the device build.
 *
 * A host process may run with a non-default floating-point environment (a library built with
 * -ffast-math sets flush-to-zero / denormals-are-zero in MXCSR when it is loaded). The reference
 * must use plain IEEE-754 arithmetic like the Cortex-M4 (FPSCR reset value: round to nearest,
 * subnormals kept), so each entry point sets the default MXCSR for the call and restores the
 * caller's afterwards.
 */
#include <stdint.h>

#include "asc_frontend.h"

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
typedef unsigned int asc_fe_host_fpenv_t;
static asc_fe_host_fpenv_t asc_fe_host_fp_enter(void)
{
    const unsigned int saved = _mm_getcsr();
    _mm_setcsr(0x1F80u); /* all exceptions masked, round to nearest, no FTZ / DAZ */
    return saved;
}
static void asc_fe_host_fp_leave(asc_fe_host_fpenv_t saved)
{
    _mm_setcsr(saved);
}
#else
typedef int asc_fe_host_fpenv_t;
static asc_fe_host_fpenv_t asc_fe_host_fp_enter(void) { return 0; }
static void asc_fe_host_fp_leave(asc_fe_host_fpenv_t saved) { (void)saved; }
#endif

/* The caller's MXCSR (x86) so a test can see whether the process runs with FTZ/DAZ; -1 elsewhere. */
int64_t asc_fe_host_fpenv(void)
{
#if defined(__x86_64__) || defined(__i386__)
    return (int64_t)_mm_getcsr();
#else
    return -1;
#endif
}

/* Reader wrapper that hands out at most `chunk` samples per call and counts the calls. */
typedef struct {
    asc_fe_read_fn inner;
    void *inner_ctx;
    int32_t chunk;    /* <= 0: no limit */
    int32_t *stats;   /* [calls, samples delivered, largest request] or NULL */
} asc_fe_host_reader_t;

static int32_t asc_fe_host_read(void *ctx, float *dst, int32_t n)
{
    asc_fe_host_reader_t *r = (asc_fe_host_reader_t *)ctx;
    int32_t got;
    if (r->stats != NULL) {
        r->stats[0] += 1;
        if (n > r->stats[2]) {
            r->stats[2] = n;
        }
    }
    if (r->chunk > 0 && n > r->chunk) {
        n = r->chunk;
    }
    got = r->inner(r->inner_ctx, dst, n);
    if (r->stats != NULL && got > 0) {
        r->stats[1] += got;
    }
    return got;
}

/* Log-mel of audio[n] (float32, n = ASC_FE_N_SAMPLES) into out[N_MELS * N_FRAMES]; mode 0: float32
 * (out is float *), mode 1: int8 (out is int8_t *). If audio16 is not NULL, the clip is audio16[n]
 * 16-bit PCM read through asc_fe_read_mem_s16 instead. chunk > 0: the reader delivers at most
 * chunk samples per call. stats (may be NULL): int32[3] = read calls, samples read, largest request.
 * Returns an asc_fe_status_t. */
int32_t asc_fe_host_logmel(const float *audio, const int16_t *audio16, int32_t n, void *work,
                           int32_t work_bytes, void *out, int32_t mode, int32_t chunk, int32_t *stats)
{
    asc_fe_mem_f32_t mf;
    asc_fe_mem_s16_t ms;
    asc_fe_host_reader_t hr;
    asc_fe_read_fn read;
    void *ctx;
    asc_fe_status_t status;
    asc_fe_host_fpenv_t env;

    if (audio16 != NULL) {
        ms.samples = audio16;
        ms.n = n;
        ms.pos = 0;
        read = asc_fe_read_mem_s16;
        ctx = &ms;
    } else {
        mf.samples = audio;
        mf.n = n;
        mf.pos = 0;
        read = asc_fe_read_mem_f32;
        ctx = &mf;
    }
    hr.inner = read;
    hr.inner_ctx = ctx;
    hr.chunk = chunk;
    hr.stats = stats;
    env = asc_fe_host_fp_enter();
    if (mode == 0) {
        status = asc_fe_logmel_f32(asc_fe_host_read, &hr, work, work_bytes, (float *)out);
    } else {
        status = asc_fe_logmel_s8(asc_fe_host_read, &hr, work, work_bytes, (int8_t *)out);
    }
    asc_fe_host_fp_leave(env);
    return (int32_t)status;
}

/* asc_fe_cfft of x[2 * (ASC_FE_N_FFT / 2)] (interleaved complex float32) in place (FFT tests). */
void asc_fe_host_cfft(float *x)
{
    const asc_fe_host_fpenv_t env = asc_fe_host_fp_enter();
    asc_fe_cfft(x);
    asc_fe_host_fp_leave(env);
}

/* asc_fe_power_mel(x, mel): x[N_FFT] in place, mel[N_MELS] (host == device tests). */
void asc_fe_host_power_mel(float *x, float *mel)
{
    const asc_fe_host_fpenv_t env = asc_fe_host_fp_enter();
    asc_fe_power_mel(x, mel);
    asc_fe_host_fp_leave(env);
}

/* y[i] = asc_logf(x[i]), i < n (for the accuracy test). */
void asc_fe_host_logf(const float *x, float *y, int32_t n)
{
    int32_t i;
    const asc_fe_host_fpenv_t env = asc_fe_host_fp_enter();
    for (i = 0; i < n; ++i) {
        y[i] = asc_logf(x[i]);
    }
    asc_fe_host_fp_leave(env);
}

/* y[i] = asc_fe_quantize(x[i]), i < n. */
void asc_fe_host_quantize(const float *x, int8_t *y, int32_t n)
{
    int32_t i;
    const asc_fe_host_fpenv_t env = asc_fe_host_fp_enter();
    for (i = 0; i < n; ++i) {
        y[i] = asc_fe_quantize(x[i]);
    }
    asc_fe_host_fp_leave(env);
}

/* The generated configuration, for the wrapper: v[0..11] = sample rate (Hz), n_fft, win_length,
 * hop_length, n_mels, n_frames, n_samples, work bytes, ring length (samples), zero point,
 * input scale, log offset. */
void asc_fe_host_config(double *v)
{
    v[0] = ASC_FE_SAMPLE_RATE_HZ;
    v[1] = ASC_FE_N_FFT;
    v[2] = ASC_FE_WIN_LENGTH;
    v[3] = ASC_FE_HOP_LENGTH;
    v[4] = ASC_FE_N_MELS;
    v[5] = ASC_FE_N_FRAMES;
    v[6] = ASC_FE_N_SAMPLES;
    v[7] = ASC_FE_WORK_BYTES;
    v[8] = ASC_FE_RING_LEN;
    v[9] = ASC_FE_INPUT_ZERO_POINT;
    v[10] = (double)ASC_FE_INPUT_SCALE;
    v[11] = (double)ASC_FE_LOG_OFFSET;
}
