/*
 * asc_fe_profile_main.c - instruction counts of the log-mel frontend and of CMSIS-DSP real FFT
 * variants on the emulated STM32F405 (QEMU netduinoplus2, -icount shift=0: TIM2 counts executed
 * instructions). Built by benchmarks/frontend_fft.py (make APP=feprofile APP_SRC=<this file>) with
 * the frontend, its generated tables, a generated clip (asc_fe_profile_clip.c: float32 samples
 * and the host build's int8 output hash) and the CMSIS-DSP sources of the f32 / q31 / q15 FFTs
 * (the frontend's own FFT, asc_fe_cfft, is measured beside them).
 *
 * Console lines:
 *   FEP total <instructions>                  one asc_fe_logmel_s8 call (one clip)
 *   FEP part <index> <instructions>           per ASC_FE_PART_* stage, all frames
 *   FEP hash <fnv1a of the int8 output> <expected (host build)>
 *   FFT <name> <instructions per call>        one N_FFT-point frame
 */
#include <stdint.h>
#include <string.h>

#include "arm_math.h"
#include "asc_frontend.h"
#include "board.h"

extern const float asc_fe_profile_clip[ASC_FE_N_SAMPLES];
extern const uint32_t asc_fe_profile_hash;

/* frontend work, later reused for the FFT variants: q31 in (N) + out (2 N) words */
static uint32_t big[3 * ASC_FE_N_FFT] __attribute__((aligned(8)));
static int8_t out[ASC_FE_N_MELS * ASC_FE_N_FRAMES];
static uint32_t parts[ASC_FE_N_PARTS];
static uint32_t t_prev;

void fe_profile_hook(int32_t part)
{
    const uint32_t now = asc_board_counter_read();
    if (part >= 0 && part < ASC_FE_N_PARTS) {
        parts[part] += now - t_prev;
    }
    t_prev = now;
}

static void line(const char *a, const char *b, uint32_t v)
{
    asc_board_puts(a);
    asc_board_puts(b);
    asc_board_put_u32(v);
    asc_board_puts("\n");
}

/* windowed frame 10 of the clip (no reflection), float32, zero-padded, into f */
static void frame(float *f)
{
    const int32_t i0 = 10 * ASC_FE_HOP_LENGTH + ASC_FE_WIN_OFFSET - ASC_FE_N_FFT / 2;
    memset(f, 0, sizeof(float) * ASC_FE_N_FFT);
    for (int32_t k = 0; k < ASC_FE_WIN_LENGTH; k++) {
        f[ASC_FE_WIN_OFFSET + k] = asc_fe_profile_clip[i0 + k] * asc_fe_window[k];
    }
}

/* block scaling: the frame's peak to just below full scale by a power of two, then to q31 / q15 */
static int32_t to_fixed(const float *f, void *dst, int32_t bits)
{
    float peak = 0.0f;
    int32_t e = 0;
    float s;
    for (int32_t k = 0; k < ASC_FE_N_FFT; k++) {
        const float a = f[k] < 0.0f ? -f[k] : f[k];
        peak = a > peak ? a : peak;
    }
    while (peak > 0.0f && peak < 0.5f && e < 60) {
        peak *= 2.0f;
        e++;
    }
    s = (bits == 31 ? 2147483648.0f : 32768.0f);
    for (int32_t i = 0; i < e; i++) {
        s *= 2.0f;
    }
    s *= 0.99f;
    for (int32_t k = 0; k < ASC_FE_N_FFT; k++) {
        const float v = f[k] * s;
        if (bits == 31) {
            ((int32_t *)dst)[k] = (int32_t)v;
        } else {
            ((int16_t *)dst)[k] = (int16_t)v;
        }
    }
    return e;
}

int main(void)
{
    asc_fe_mem_f32_t src = {asc_fe_profile_clip, ASC_FE_N_SAMPLES, 0};
    uint32_t t0;
    uint32_t t1;
    uint32_t h = 2166136261u;
    asc_fe_status_t st;

    asc_board_counter_start();
    t_prev = asc_board_counter_read();
    t0 = t_prev;
    st = asc_fe_logmel_s8(asc_fe_read_mem_f32, &src, big, (int32_t)ASC_FE_WORK_BYTES, out);
    t1 = asc_board_counter_read();
    if (st != ASC_FE_OK) {
        line("FEP error ", "", (uint32_t)(-(int32_t)st));
        return 1;
    }
    line("FEP total ", "", t1 - t0);
    for (int32_t p = 0; p < ASC_FE_N_PARTS; p++) {
        asc_board_puts("FEP part ");
        asc_board_put_u32((uint32_t)p);
        line(" ", "", parts[p]);
    }
    for (int32_t i = 0; i < ASC_FE_N_MELS * ASC_FE_N_FRAMES; i++) {
        h = (h ^ (uint8_t)out[i]) * 16777619u;
    }
    asc_board_puts("FEP hash ");
    asc_board_put_u32(h);
    line(" ", "", asc_fe_profile_hash);

    {   /* f32: the frontend's own complex FFT (asc_fe_cfft: asc_fe_cfft_fast in this speed build),
         * arm_rfft_fast_f32 (cfft in place + split into a second buffer), arm_cfft_f32 alone */
        float *f = (float *)big;
        float *o = f + ASC_FE_N_FFT;
        arm_rfft_fast_instance_f32 S;
        ASC_FE_RFFT_INIT(&S);
        frame(f);
        t0 = asc_board_counter_read();
        asc_fe_cfft(f);
        line("FFT ", "cfft_fast_half ", asc_board_counter_read() - t0);
        frame(f);
        t0 = asc_board_counter_read();
        arm_rfft_fast_f32(&S, f, o, 0);
        line("FFT ", "rfft_fast_f32 ", asc_board_counter_read() - t0);
        frame(f);
        t0 = asc_board_counter_read();
        arm_cfft_f32(&S.Sint, f, 0, 1);
        line("FFT ", "cfft_f32_half ", asc_board_counter_read() - t0);
    }
    {   /* q31: block scaling + arm_rfft_q31 (output 2 N words) */
        float *f = (float *)big;
        q31_t *in = (q31_t *)big;
        q31_t *o = (q31_t *)(big + ASC_FE_N_FFT);
        arm_rfft_instance_q31 S;
        if (arm_rfft_init_q31(&S, ASC_FE_N_FFT, 0, 1) != ARM_MATH_SUCCESS) {
            return 2;
        }
        frame(f);
        t0 = asc_board_counter_read();
        (void)to_fixed(f, in, 31);
        line("FFT ", "block_scale_q31 ", asc_board_counter_read() - t0);
        t0 = asc_board_counter_read();
        arm_rfft_q31(&S, in, o);
        line("FFT ", "rfft_q31 ", asc_board_counter_read() - t0);
    }
    {   /* q15 */
        float *f = (float *)big;
        q15_t *in = (q15_t *)(big + ASC_FE_N_FFT);
        q15_t *o = (q15_t *)(big + 2 * ASC_FE_N_FFT) - 0;
        arm_rfft_instance_q15 S;
        if (arm_rfft_init_q15(&S, ASC_FE_N_FFT, 0, 1) != ARM_MATH_SUCCESS) {
            return 3;
        }
        frame(f);
        t0 = asc_board_counter_read();
        (void)to_fixed(f, in, 15);
        line("FFT ", "block_scale_q15 ", asc_board_counter_read() - t0);
        o = (q15_t *)big; /* 2 N q15 = N words, over the float frame (consumed) */
        t0 = asc_board_counter_read();
        arm_rfft_q15(&S, in, o);
        line("FFT ", "rfft_q15 ", asc_board_counter_read() - t0);
    }
    return 0;
}
