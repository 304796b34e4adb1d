/* bench_main.c - the device side of `asc-edge bench`: log-mel frontend + generated model (int8, or an fp16
 * export's float32 kernels) on the STM32F405, many clips per boot, instruction counts per stage and step.
 *
 * Input: a "clips.bin" image (little-endian):
 *   uint32 magic 'ASCB' (0x42435341), version (1), kind (0: float32 audio, ASC_FE_N_SAMPLES per
 *   item; 1: model input, ASC_MODEL_INPUT_SIZE int8 values per item, or float32 for an fp16 export),
 *   n_items, item_bytes,
 *   debug_item (index of the item whose stage outputs are dumped, or 0xFFFFFFFF), 2 x reserved;
 *   then n_items items of item_bytes.
 *   ASC_BENCH_IO_SEMIHOST (QEMU): read from the file "clips.bin" via semihosting, streamed a hop
 *   at a time (the clip is never held in RAM); debug dumps go to "debug.bin".
 *   ASC_BENCH_IO_MEMORY (Renode): the image is at ASC_BENCH_CLIPS_ADDR (sysbus LoadBinary); debug
 *   dumps go out raw on USART2 (asc_board_data_write), which Renode writes to "debug.bin".
 *
 * Output: text lines on the console (semihosting + USART1):
 *   ASC-BENCH v1 items=<n> kind=<k> classes=<c> steps=<s> arena=<bytes>
 *   R <item> <frontend instr> <model instr> <logit 0> ... <logit c-1>   (int8 logits; an fp16 export's
 *     float32 logits as the decimal of their 32-bit pattern)
 *   S <item> <instr of step 0> ... <instr of step s-1>
 *   P <item> <expand> <depthwise> <project> <add>   (instructions inside fused blocks, by part)
 *   F <item> <stream> <window> <fft> <power> <mel> <log>   (frontend instructions by stage, all frames)
 *   ASC-BENCH stack <high-water bytes> <reserved bytes>
 *   ASC-BENCH done
 * Instruction counts come from TIM2, one tick per executed instruction under QEMU -icount shift=0
 * (see firmware/board/stm32f4/README.md). Exit status 0, or 10 + an error code.
 */
#include <stdint.h>
#include <string.h>

#include "asc_frontend.h"
#include "board.h"
#include "model.h"
#if defined(ASC_BENCH_IO_SEMIHOST)
#include "asc_semihost.h"
#elif !defined(ASC_BENCH_IO_MEMORY)
#error "define ASC_BENCH_IO_SEMIHOST or ASC_BENCH_IO_MEMORY"
#endif

#ifndef ASC_BENCH_CLIPS_ADDR
#define ASC_BENCH_CLIPS_ADDR 0x60000000u
#endif
#define ASC_BENCH_MAGIC 0x42435341u
#define ASC_BENCH_NO_DEBUG 0xFFFFFFFFu
#define ASC_BENCH_PARTS 4

#if ASC_MODEL_INPUT_OFFSET < 0 || ASC_MODEL_FRONTEND_WORK_OFFSET < 0
#error "the model was generated without the device layout (input + frontend work inside the arena)"
#endif
#if ASC_MODEL_FRONTEND_WORK_SIZE < ASC_FE_WORK_BYTES
#error "the arena's frontend work area is smaller than ASC_FE_WORK_BYTES: regenerate the export"
#endif
#if ASC_MODEL_INPUT_SIZE != ASC_FE_N_MELS * ASC_FE_N_FRAMES
#error "frontend output and model input sizes differ"
#endif

/* An fp16 export (model.h defines ASC_MODEL_FLOAT): float32 log-mel in, float32 logits out, printed
 * as the unsigned 32-bit pattern of each float so that the host compares bits. */
#if defined(ASC_MODEL_FLOAT)
typedef float asc_model_value_t;
#define ASC_BENCH_FRONTEND asc_fe_logmel_f32
#else
typedef int8_t asc_model_value_t;
#define ASC_BENCH_FRONTEND asc_fe_logmel_s8
#endif
#define ASC_BENCH_INPUT_BYTES ((uint32_t)ASC_MODEL_INPUT_SIZE * (uint32_t)sizeof(asc_model_value_t))

typedef struct {
    uint32_t magic, version, kind, n_items, item_bytes, debug_item, reserved[2];
} bench_header_t;

/* -DASC_ARENA_EXTERNAL_RAM: the arena in the external SRAM on the FSMC (section .ext_ram, see
 * board/stm32f4/stm32f405.ld) for a model whose arena exceeds the 128 KiB SRAM (Renode only). */
#if defined(ASC_ARENA_EXTERNAL_RAM)
#define ASC_ARENA_SECTION __attribute__((section(".ext_ram")))
#else
#define ASC_ARENA_SECTION
#endif
static uint8_t arena[ASC_MODEL_ARENA_SIZE] ASC_ARENA_SECTION __attribute__((aligned(16)));
static asc_model_value_t logits[ASC_MODEL_OUTPUT_SIZE];
static uint32_t step_instr[ASC_MODEL_NUM_STEPS];
static uint32_t part_instr[ASC_BENCH_PARTS];
static uint32_t fe_part_instr[ASC_FE_N_PARTS];
static uint32_t t_fe;
static uint32_t n_steps_done, t_last, t_part;

/* ---- instruction-count hooks (model.c: ASC_MODEL_LAYER_DONE, asc_fused_s8.c: ASC_NN_PROFILE) ---- */
void bench_layer_done(int32_t layer)
{
    const uint32_t now = asc_board_counter_read();
    (void)layer;
    if (n_steps_done < ASC_MODEL_NUM_STEPS) {
        step_instr[n_steps_done] = now - t_last;
    }
    n_steps_done++;
    t_last = now;
    t_part = now;
}

void bench_profile(int32_t part)
{
    const uint32_t now = asc_board_counter_read();
    if (part >= 0 && part < ASC_BENCH_PARTS) {
        part_instr[part] += now - t_part;
    }
    t_part = now;
}

/* asc_frontend.c: ASC_FE_PROFILE, at the end of each stage of each frame */
void bench_fe_profile(int32_t part)
{
    const uint32_t now = asc_board_counter_read();
    if (part >= 0 && part < ASC_FE_N_PARTS) {
        fe_part_instr[part] += now - t_fe;
    }
    t_fe = now;
}

static void put(const char *s) { asc_board_puts(s); }
static void put_u(uint32_t v) { asc_board_put_u32(v); }
static void put_i(int32_t v) { asc_board_put_i32(v); }

/* ---- input ---- */
typedef struct {
#if defined(ASC_BENCH_IO_SEMIHOST)
    int32_t fd;
#else
    const uint8_t *p;
#endif
    uint32_t left; /* bytes left in the current item */
} bench_src_t;

static int32_t src_read(bench_src_t *s, void *dst, uint32_t n)
{
    if (n > s->left) {
        n = s->left;
    }
    if (n == 0) {
        return 0;
    }
#if defined(ASC_BENCH_IO_SEMIHOST)
    if (asc_semihost_read(s->fd, dst, n) != 0) { /* returns the bytes NOT read */
        return -1;
    }
#else
    memcpy(dst, s->p, n);
    s->p += n;
#endif
    s->left -= n;
    return (int32_t)n;
}

static int32_t fe_read(void *ctx, float *dst, int32_t n)
{
    const int32_t got = src_read((bench_src_t *)ctx, dst, (uint32_t)n * 4u);
    return got <= 0 ? got : got / 4;
}

/* ---- debug dump of one item: int8 input, then every step's output ---- */
#if defined(ASC_BENCH_IO_SEMIHOST)
static int32_t dbg_fd = -1;
static void dump(const void *data, uint32_t n)
{
    if (dbg_fd >= 0) {
        (void)asc_semihost_write(dbg_fd, data, n);
    }
}
#else
static void dump(const void *data, uint32_t n)
{
    asc_board_data_write(data, n);
}
#endif

static void dump_layer(int32_t layer, const int8_t *data, int32_t bytes, void *user)
{
    uint32_t hdr[2] = {(uint32_t)layer, (uint32_t)bytes};
    (void)user;
    dump(hdr, sizeof hdr);
    dump(data, (uint32_t)bytes);
    bench_layer_done(layer);
}

int main(void)
{
    bench_header_t h;
    bench_src_t src;
    asc_model_value_t *input = (asc_model_value_t *)(arena + ASC_MODEL_INPUT_OFFSET);
    void *fe_work = arena + ASC_MODEL_FRONTEND_WORK_OFFSET;

    asc_board_init();
    asc_board_counter_start();
#if defined(ASC_BENCH_IO_SEMIHOST)
    src.fd = asc_semihost_open("clips.bin", ASC_SH_MODE_RB);
    if (src.fd < 0) {
        put("ASC-BENCH error: cannot open clips.bin\n");
        return 11;
    }
    src.left = sizeof h;
    if (src_read(&src, &h, sizeof h) != (int32_t)sizeof h) {
        put("ASC-BENCH error: short header\n");
        return 12;
    }
#else
    memcpy(&h, (const void *)ASC_BENCH_CLIPS_ADDR, sizeof h);
    src.p = (const uint8_t *)ASC_BENCH_CLIPS_ADDR + sizeof h;
#endif
    const uint32_t want = h.kind == 0 ? (uint32_t)ASC_FE_N_SAMPLES * 4u : ASC_BENCH_INPUT_BYTES;
    if (h.magic != ASC_BENCH_MAGIC || h.version != 1 || h.kind > 1 || h.item_bytes != want) {
        put("ASC-BENCH error: bad clips.bin header (magic/version/kind/item size)\n");
        return 13;
    }
    put("ASC-BENCH v1 items=");
    put_u(h.n_items);
    put(" kind=");
    put_u(h.kind);
    put(" classes=");
    put_u(ASC_MODEL_OUTPUT_SIZE);
    put(" steps=");
    put_u(ASC_MODEL_NUM_STEPS);
    put(" arena=");
    put_u(ASC_MODEL_ARENA_SIZE);
    put("\n");

    for (uint32_t it = 0; it < h.n_items; it++) {
        const int debug = it == h.debug_item;
        src.left = h.item_bytes;
        memset(fe_part_instr, 0, sizeof fe_part_instr);
        uint32_t t0 = asc_board_counter_read();
        t_fe = t0;
        if (h.kind == 0) {
            const asc_fe_status_t st = ASC_BENCH_FRONTEND(fe_read, &src, fe_work, ASC_MODEL_FRONTEND_WORK_SIZE, input);
            if (st != ASC_FE_OK) {
                put("ASC-BENCH error: frontend status ");
                put_i((int32_t)st);
                put("\n");
                return 14;
            }
        } else if (src_read(&src, input, h.item_bytes) != (int32_t)h.item_bytes) {
            put("ASC-BENCH error: short item\n");
            return 15;
        }
        while (src.left > 0) { /* samples the frontend did not need */
            uint8_t skip[64];
            if (src_read(&src, skip, src.left < sizeof skip ? src.left : sizeof skip) <= 0) {
                return 15;
            }
        }
        const uint32_t t1 = asc_board_counter_read();
        uint32_t t_model;
        n_steps_done = 0;
        memset(part_instr, 0, sizeof part_instr);
        int rc;
        if (debug) {
#if defined(ASC_BENCH_IO_SEMIHOST)
            dbg_fd = asc_semihost_open("debug.bin", ASC_SH_MODE_WB);
#else
            put("ASC-BENCH debug begin\n");
#endif
            dump(input, ASC_BENCH_INPUT_BYTES);
            t_last = t_part = t_model = asc_board_counter_read();
            rc = asc_model_invoke_debug(input, logits, arena, dump_layer, 0);
#if defined(ASC_BENCH_IO_SEMIHOST)
            if (dbg_fd >= 0) {
                (void)asc_semihost_close(dbg_fd);
                dbg_fd = -1;
            }
#else
            put("ASC-BENCH debug end\n");
#endif
        } else {
            t_last = t_part = t_model = asc_board_counter_read();
            rc = asc_model_invoke(input, logits, arena);
        }
        const uint32_t t2 = asc_board_counter_read();
        if (rc != 0) {
            put("ASC-BENCH error: model kernel error ");
            put_i(rc);
            put("\n");
            return 16;
        }
        put("R ");
        put_u(it);
        put(" ");
        put_u(t1 - t0);
        put(" ");
        put_u(t2 - t_model); /* the same counter read starts the model and its first step */
        for (int32_t k = 0; k < ASC_MODEL_OUTPUT_SIZE; k++) {
            put(" ");
#if defined(ASC_MODEL_FLOAT)
            uint32_t bits;
            memcpy(&bits, &logits[k], sizeof bits);
            put_u(bits);
#else
            put_i(logits[k]);
#endif
        }
        put("\nS ");
        put_u(it);
        for (uint32_t k = 0; k < ASC_MODEL_NUM_STEPS; k++) {
            put(" ");
            put_u(step_instr[k]);
        }
        put("\nP ");
        put_u(it);
        for (uint32_t k = 0; k < ASC_BENCH_PARTS; k++) {
            put(" ");
            put_u(part_instr[k]);
        }
        put("\nF ");
        put_u(it);
        for (uint32_t k = 0; k < ASC_FE_N_PARTS; k++) {
            put(" ");
            put_u(fe_part_instr[k]);
        }
        put("\n");
    }
#if defined(ASC_BENCH_IO_SEMIHOST)
    (void)asc_semihost_close(src.fd);
#endif
    put("ASC-BENCH stack ");
    put_u(asc_board_stack_high_water_bytes());
    put(" ");
    put_u(asc_board_stack_size_bytes());
    put("\nASC-BENCH done\n");
#if defined(ASC_BENCH_IO_MEMORY)
    for (;;) {
    }
#endif
    return 0;
}
