/*
 * asc_frontend.h - streaming log-mel frontend for the asc-edge models (float32 real FFT).
 *
 * Computes, for one clip of ASC_FE_N_SAMPLES samples at ASC_FE_SAMPLE_RATE_HZ, the same features
 * as the training frontend asc_edge.features.logmel.LogMel (torchaudio MelSpectrogram of the
 * DCASE 2024 Task 1 baseline, then log(x + ASC_FE_LOG_OFFSET)):
 *
 *   frame t (0 <= t < ASC_FE_N_FRAMES) is centred on sample t * ASC_FE_HOP_LENGTH; the clip is
 *   reflect-padded by ASC_FE_N_FFT / 2 samples at both ends exactly as torch.stft(center=True,
 *   pad_mode="reflect") (x[-i] = x[i], x[N-1+i] = x[N-1-i]); the periodic Hann window of
 *   ASC_FE_WIN_LENGTH samples sits at offset ASC_FE_WIN_OFFSET = (N_FFT - WIN_LENGTH) / 2 of the
 *   ASC_FE_N_FFT-point frame (zeros elsewhere); the real FFT as arm_rfft_fast_f32 defines it (a
 *   complex FFT of the N_FFT / 2 (even, odd) sample pairs - the frontend's own, asc_fe_cfft - then
 *   the split step with the same float operations as CMSIS-DSP's stage_rfft_f32, done in place and
 *   fused with the power spectrum);
 *   power re^2 + im^2 of the ASC_FE_N_FREQS = N_FFT / 2 + 1 bins; mel[m] = sum_b fb[b][m] *
 *   power[b] over the non-zero weights of band m (sparse table); y = asc_logf(mel +
 *   ASC_FE_LOG_OFFSET) (its branch-free core asc_logf_normal, same bits).
 *
 * Output layout = the model's NHWC input (1, N_MELS, N_FRAMES, 1): element [mel * N_FRAMES + t].
 *   float:  asc_fe_logmel_f32 writes y (natural-log units).
 *   int8:   asc_fe_logmel_s8 writes q = clamp(round_half_away(y / ASC_FE_INPUT_SCALE)
 *           + ASC_FE_INPUT_ZERO_POINT, -128, 127), TFLite's Quantize reference (divide, not
 *           multiply by the reciprocal).
 *
 * Streaming: the samples are pulled through a read callback, a hop at a time, in order, each
 * sample exactly once; the clip is never held in RAM. Only a sliding window of ASC_FE_RING_LEN
 * float32 samples is kept (the samples the current and later frames still need, including the
 * reflected ones at both ends).
 *
 * RAM: the caller passes a work buffer of at least 4 * (ASC_FE_RING_LEN + ASC_FE_N_FFT) bytes
 * (= ASC_FE_WORK_BYTES of tables generated since issue 16; older tables reserved 4 * (RING_LEN +
 * 2 * N_FFT), which still works) (4-byte aligned; e.g. carved out of the model's tensor arena, as
 * long as it does not overlap the output): ring [ASC_FE_RING_LEN floats] | FFT buffer [ASC_FE_N_FFT
 * floats]: windowed frame -> complex FFT (in place) -> power spectrum (in place, packed: bin b <=
 * N/4 at [2b], bin N/2 - b at [2b + 1]) -> mel sums in its upper half. No heap, no static buffers;
 * 264 bytes of stack (-O2, Cortex-M4, read from the bench ELF's prologues: asc_fe_run 152 +
 * asc_fe_cfft_fast 112, each 9 core registers, d8-d15 and its locals).
 * Flash: the generated tables (asc_frontend_tables.c): window (WIN_LENGTH floats), sparse mel
 * matrix (2 x N_MELS uint16 + ASC_FE_MEL_N_WEIGHTS floats), plus the FFT's fixed tables for N_FFT
 * (asc_fe_fft_tables.h) and CMSIS-DSP's real-FFT split twiddles (twiddleCoef_rfft_<N_FFT>).
 * Measured (arm-none-eabi-gcc 12.2, -O2, --gc-sections) for the 32 kHz and 44.1 kHz presets:
 * work 28,672 bytes of RAM; tables 29,580 / 29,576 bytes + FFT tables 16,320 + 3,968 bytes +
 * CMSIS-DSP's twiddleCoef_rfft_4096 16,384 bytes (before: arm_cfft_f32's and the split's tables,
 * 40,400 bytes); instructions per clip: benchmarks/results/frontend_fft.md. With the compact tables of
 * export --optimize size (ASC_FE_COMPACT_TABLES 1): half window, uint16 mel weights, one
 * quarter-wave cosine table and asc_frontend.c's compact radix-4 FFT, 19,406 bytes of
 * tables in all at 32 kHz (benchmarks/results/device_bench.md has its instructions).
 *
 * The configuration (sizes, quantisation) comes from the generated asc_frontend_config.h
 * (asc_edge.device.frontend_c.emit_frontend_tables). Build with -ffp-contract=off, no fast-math,
 * and -DARM_MATH_LOOPUNROLL: the host build and the Cortex-M4 build then give identical bits.
 */
#ifndef ASC_FRONTEND_H
#define ASC_FRONTEND_H

#include <stdint.h>

#include "asc_frontend_config.h"
#include "asc_logf.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Read callback: copy the next n (1 <= n <= ASC_FE_RING_LEN) samples of the clip, float32 at
 * ASC_FE_SAMPLE_RATE_HZ, into dst. Returns the number of samples written (1..n; fewer than n is
 * fine, the frontend asks again), or <= 0 on error / end of stream. Samples are requested in
 * order and never twice; at most ASC_FE_N_SAMPLES in total. */
typedef int32_t (*asc_fe_read_fn)(void *ctx, float *dst, int32_t n);

typedef enum {
    ASC_FE_OK = 0,
    ASC_FE_ERR_ARG = -1,      /* NULL callback / work / output, or work not 4-byte aligned */
    ASC_FE_ERR_WORK = -2,     /* work_bytes < 4 * (ASC_FE_RING_LEN + ASC_FE_N_FFT) */
    ASC_FE_ERR_READ = -3,     /* the read callback returned <= 0 or more than asked */
    ASC_FE_ERR_FFT = -4,      /* (no longer returned: arm_rfft_fast_init_<N_FFT>_f32 failed) */
    ASC_FE_ERR_INTERNAL = -5  /* the sliding window would overflow (tables / sources mismatch) */
} asc_fe_status_t;

/* ---- generated tables (asc_frontend_tables.c, const: in flash) --------------------------- */
/* Band m covers FFT bins [asc_fe_mel_first_bin[m], + asc_fe_mel_n_bins[m]) (0 bins: empty band). */
extern const uint16_t asc_fe_mel_first_bin[ASC_FE_N_MELS];
extern const uint16_t asc_fe_mel_n_bins[ASC_FE_N_MELS];
#if defined(ASC_FE_COMPACT_TABLES) && ASC_FE_COMPACT_TABLES
/* Compact tables (export --optimize size; ASC_FE_COMPACT_TABLES 1 in the generated config):
 * the window's first half, w[0 .. WIN_LENGTH / 2] (w[k] = w[WIN_LENGTH - k]); the mel weights as
 * round(w / w_max * 65535), decoded as q16 * ASC_FE_MEL_Q16_SCALE (= w_max / 65535, float32);
 * the FFT's twiddles from one quarter-wave table cos(2 pi j / N_FFT), 0 <= j <= N_FFT / 4, with
 * the frontend's own radix-2 FFT instead of CMSIS-DSP's (whose tables are 40,384 bytes at 4096). */
extern const float asc_fe_window_half[ASC_FE_WIN_LENGTH / 2 + 1];
extern const uint16_t asc_fe_mel_weights_q16[ASC_FE_MEL_WEIGHTS_LEN];
extern const float asc_fe_cos_quarter[ASC_FE_N_FFT / 4 + 1];
#else
/* Periodic Hann window, w[n] = 0.5 - 0.5 cos(2 pi n / WIN_LENGTH), float64 rounded to float32. */
extern const float asc_fe_window[ASC_FE_WIN_LENGTH];
/* The weights of band 0, then band 1, ...: the float32 values of mel_filterbank(cfg)[bin, m]. */
extern const float asc_fe_mel_weights[ASC_FE_MEL_WEIGHTS_LEN];
#endif
/* Provenance of the tables: FrontendConfig.key() of the configuration they were made for. */
extern const char asc_fe_config_key[];

/* Stages of one frame, in order, as ASC_FE_PROFILE reports them (asc_frontend.c): reading and
 * sliding the sample window; windowing + zero padding; the complex FFT (asc_fe_cfft, N_FFT / 2
 * points; arm_cfft_f32 before); the real-FFT split fused with the power spectrum; the sparse mel product; log (and int8
 * quantisation). Before issue 16 the split was counted in FFT (arm_rfft_fast_f32). */
#define ASC_FE_PART_STREAM 0
#define ASC_FE_PART_WINDOW 1
#define ASC_FE_PART_FFT 2
#define ASC_FE_PART_POWER 3
#define ASC_FE_PART_MEL 4
#define ASC_FE_PART_LOG 5
#define ASC_FE_N_PARTS 6

/* ---- API ------------------------------------------------------------------------------------ */
/* ASC_FE_WORK_BYTES: the work buffer size the generated configuration reserves (>= the
 * 4 * (RING_LEN + N_FFT) bytes the frontend needs). */
int32_t asc_fe_work_bytes(void);

/* The window value (0 <= k < WIN_LENGTH) and mel weight (0 <= i < ASC_FE_MEL_N_WEIGHTS, band
 * after band) the frontend multiplies by, decoded from whichever tables were generated; 0.0f
 * outside the range. For checks against the training frontend. */
float asc_fe_window_value(int32_t k);
float asc_fe_mel_weight_value(int32_t i);

/* Log-mel of one clip as float32: out[ASC_FE_N_MELS * ASC_FE_N_FRAMES], element [mel * N_FRAMES + t].
 * work: ASC_FE_WORK_BYTES bytes, 4-byte aligned, not overlapping out. Reads exactly the samples
 * the frames need (all ASC_FE_N_SAMPLES for the standard configurations). Returns ASC_FE_OK or an
 * error code (out is then incomplete). */
asc_fe_status_t asc_fe_logmel_f32(asc_fe_read_fn read, void *ctx, void *work, int32_t work_bytes,
                                  float *out);

/* As asc_fe_logmel_f32, quantised to the model's int8 input: out[ASC_FE_N_MELS * ASC_FE_N_FRAMES]. */
asc_fe_status_t asc_fe_logmel_s8(asc_fe_read_fn read, void *ctx, void *work, int32_t work_bytes,
                                 int8_t *out);

/* TFLite int8 quantisation of one feature value: clamp(round_half_away(x / ASC_FE_INPUT_SCALE)
 * + ASC_FE_INPUT_ZERO_POINT, -128, 127), x / scale in float32. NaN gives the zero point. */
int8_t asc_fe_quantize(float x);

/* The frontend's forward complex FFT, X[k] = sum_n x[n] e^(-2 pi i n k / L), of L = ASC_FE_N_FFT / 2
 * interleaved (re, im) float32 values x[2 L], in place, natural order out: the transform the
 * frontend applies to each frame's (even, odd) sample pairs (speed build: asc_fe_cfft_fast, radix-4
 * with a fixed twiddle table; compact tables: asc_fe_cfft_compact). For tests (host == device,
 * against a float64 FFT); unused in an application it is dropped by --gc-sections. */
void asc_fe_cfft(float *x);

/* The frame's stages after the complex FFT: x[2 L] (L = ASC_FE_N_FFT / 2, the complex FFT's output,
 * interleaved re, im) is overwritten by the packed power spectrum (speed build: 4 |X_b|^2, the
 * split without its 0.5; compact tables: |X_b|^2) and mel[ASC_FE_N_MELS] receives the frame's mel
 * sums (before the log), as asc_fe_logmel_f32 computes them. For tests (host == device on random
 * spectra); unused in an application it is dropped by --gc-sections. */
void asc_fe_power_mel(float *x, float *mel);

/* ---- ready-made readers for a clip already in memory ---------------------------------------- */
typedef struct {
    const float *samples;  /* n samples, float32 */
    int32_t n;
    int32_t pos;           /* next sample to hand out; start at 0 */
} asc_fe_mem_f32_t;

typedef struct {
    const int16_t *samples; /* n samples, 16-bit PCM; converted as s / 32768 (exact, = soundfile) */
    int32_t n;
    int32_t pos;
} asc_fe_mem_s16_t;

/* asc_fe_read_fn over an asc_fe_mem_f32_t / asc_fe_mem_s16_t (ctx); 0 at the end of the data. */
int32_t asc_fe_read_mem_f32(void *ctx, float *dst, int32_t n);
int32_t asc_fe_read_mem_s16(void *ctx, float *dst, int32_t n);

#ifdef __cplusplus
}
#endif

#endif /* ASC_FRONTEND_H */
