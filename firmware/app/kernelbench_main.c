/* kernelbench_main.c - instruction counts of the asc_nn kernels on the CP-Mobile workload shapes.
 *
 * Build with NN_ALWAYS=1 (NN=dsp or NN=portable), run under QEMU with -icount shift=0 (TIM2 then
 * counts executed instructions exactly; asc_edge.device.run_qemu). benchmarks/kernels_m4.py drives
 * both builds and writes benchmarks/results/kernels_m4.{json,md}.
 *
 * Every case runs one kernel call (as the fused inverted-residual executor or the layer-by-layer
 * code issues it) on deterministic pseudo-random data, with per-channel multipliers / shifts in the
 * range real models have, and prints one line
 *     KB <name> <kind> <macs> <instructions> <fnv1a-of-output>
 * The instruction count has the counter read overhead (measured on an empty region) subtracted.
 * The output hash lets the driver check that the DSP and portable builds agree bit for bit.
 * A final line "KB_DONE <n>" marks a complete run.
 */
#include <stdint.h>
#include <string.h>

#include "asc_nn.h"
#include "board.h"

#define KB_MAX_IN 12288
#define KB_MAX_FILTER 16384
#define KB_MAX_OUT 8192
#define KB_MAX_CH 128

static int8_t kb_in[KB_MAX_IN];
static int8_t kb_in2[KB_MAX_IN];
static int8_t kb_filter[KB_MAX_FILTER];
static int8_t kb_out[KB_MAX_OUT];
static int8_t kb_scratch[2048];
static int32_t kb_bias[KB_MAX_CH];
static int32_t kb_mult[KB_MAX_CH];
static int32_t kb_shift[KB_MAX_CH];

static uint32_t kb_state = 0x12345678u;
static uint32_t kb_overhead;

static uint32_t kb_rand(void)
{
    /* xorshift32 */
    uint32_t x = kb_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    kb_state = x;
    return x;
}

static void kb_fill(int8_t *p, int32_t n)
{
    for (int32_t i = 0; i < n; i++) {
        p[i] = (int8_t)(kb_rand() >> 24);
    }
}

/* per-channel quantisation typical of a trained int8 conv: multiplier in [2^30, 2^31),
 * shift in [-10, -5]; bias of the magnitude a conv bias has. */
static void kb_quant(int32_t n)
{
    for (int32_t i = 0; i < n; i++) {
        kb_mult[i] = (int32_t)((1u << 30) | (kb_rand() >> 2));
        kb_shift[i] = -5 - (int32_t)(kb_rand() % 6u);
        kb_bias[i] = (int32_t)(kb_rand() % 20001u) - 10000;
    }
}

static uint32_t kb_hash(const int8_t *p, int32_t n)
{
    uint32_t h = 2166136261u;
    for (int32_t i = 0; i < n; i++) {
        h = (h ^ (uint8_t)p[i]) * 16777619u;
    }
    return h;
}

static void kb_report(const char *name, const char *kind, uint32_t macs, uint32_t ticks, int32_t status,
                      int32_t out_n)
{
    asc_board_puts("KB ");
    asc_board_puts(name);
    asc_board_puts(" ");
    asc_board_puts(kind);
    asc_board_puts(" ");
    asc_board_put_u32(macs);
    asc_board_puts(" ");
    asc_board_put_u32(ticks - kb_overhead);
    asc_board_puts(" ");
    asc_board_put_hex32(status == 0 ? kb_hash(kb_out, out_n) : 0xDEADDEADu);
    asc_board_puts("\n");
}

/* 1x1 convolution on one row of W pixels: (1,h,W,cin) -> (1,h,W,cout). */
static void kb_conv1x1(const char *name, int32_t h, int32_t w, int32_t cin, int32_t cout, int32_t in_zp,
                       int32_t out_zp, int32_t act_min, int32_t act_max)
{
    kb_fill(kb_in, h * w * cin);
    kb_fill(kb_filter, cout * cin);
    kb_quant(cout);
    const asc_nn_conv_params p = {-in_zp, out_zp, {1, 1}, {0, 0}, {1, 1}, {act_min, act_max}};
    const asc_nn_per_channel_quant q = {kb_mult, kb_shift};
    const asc_nn_dims id = {1, h, w, cin}, fd = {cout, 1, 1, cin}, od = {1, h, w, cout};
    asc_board_counter_start();
    const uint32_t t0 = asc_board_counter_read();
    const int32_t st = asc_convolve_1x1_s8(0, &p, &q, &id, kb_in, &fd, kb_filter, kb_bias, &od, kb_out);
    const uint32_t t1 = asc_board_counter_read();
    kb_report(name, "conv1x1", (uint32_t)(h * w * cin * cout), t1 - t0, st, h * w * cout);
}

/* general convolution kh x kw, stride, padding on an input slab. */
/* ctx_bytes: scratch handed to the kernel (0: asc_convolve_s8_get_buffer_size()) */
static void kb_conv(const char *name, int32_t ih, int32_t iw, int32_t cin, int32_t cout, int32_t k,
                    int32_t stride, int32_t pad, int32_t in_zp, int32_t out_zp, int32_t ctx_bytes)
{
    const int32_t oh = (ih + 2 * pad - k) / stride + 1;
    const int32_t ow = (iw + 2 * pad - k) / stride + 1;
    kb_fill(kb_in, ih * iw * cin);
    kb_fill(kb_filter, cout * k * k * cin);
    kb_quant(cout);
    const asc_nn_conv_params p = {-in_zp, out_zp, {stride, stride}, {pad, pad}, {1, 1}, {in_zp < 0 ? -128 : in_zp, 127}};
    const asc_nn_per_channel_quant q = {kb_mult, kb_shift};
    const asc_nn_dims id = {1, ih, iw, cin}, fd = {cout, k, k, cin}, od = {1, oh, ow, cout};
    const int32_t need = ctx_bytes > 0 ? ctx_bytes : asc_convolve_s8_get_buffer_size(&id, &fd);
    const asc_nn_context ctx = {kb_scratch, need};
    asc_board_counter_start();
    const uint32_t t0 = asc_board_counter_read();
    const int32_t st = need <= (int32_t)sizeof(kb_scratch)
                           ? asc_convolve_s8(&ctx, &p, &q, &id, kb_in, &fd, kb_filter, kb_bias, &od, kb_out)
                           : -1;
    const uint32_t t1 = asc_board_counter_read();
    kb_report(name, "conv", (uint32_t)(oh * ow * cout * k * k * cin), t1 - t0, st, oh * ow * cout);
}

/* depthwise 3x3 (ch_mult 1) on a window of rows producing one output row. */
static void kb_dw(const char *name, int32_t rows, int32_t iw, int32_t c, int32_t sh, int32_t sw, int32_t pad_h,
                  int32_t pad_w, int32_t in_zp, int32_t out_zp)
{
    const int32_t ow = (iw + 2 * pad_w - 3) / sw + 1;
    kb_fill(kb_in, rows * iw * c);
    kb_fill(kb_filter, 9 * c);
    kb_quant(c);
    const asc_nn_dw_conv_params p = {-in_zp, out_zp, 1, {sh, sw}, {pad_h, pad_w}, {1, 1}, {-128, 127}};
    const asc_nn_per_channel_quant q = {kb_mult, kb_shift};
    const asc_nn_dims id = {1, rows, iw, c}, fd = {1, 3, 3, c}, od = {1, 1, ow, c};
    /* MACs: taps inside the image */
    uint32_t macs = 0;
    for (int32_t ox = 0; ox < ow; ox++) {
        for (int32_t ky = 0; ky < 3; ky++) {
            for (int32_t kx = 0; kx < 3; kx++) {
                const int32_t iy = ky - pad_h, ix = ox * sw - pad_w + kx;
                macs += (iy >= 0 && iy < rows && ix >= 0 && ix < iw) ? (uint32_t)c : 0u;
            }
        }
    }
    asc_board_counter_start();
    const uint32_t t0 = asc_board_counter_read();
    const int32_t st = asc_depthwise_conv_s8(0, &p, &q, &id, kb_in, &fd, kb_filter, kb_bias, &od, kb_out);
    const uint32_t t1 = asc_board_counter_read();
    kb_report(name, "dw", macs, t1 - t0, st, ow * c);
}

/* ADD of two rows (n elements), TFLite int8 parameters of a residual add. */
static void kb_add(const char *name, int32_t w, int32_t c)
{
    kb_fill(kb_in, w * c);
    kb_fill(kb_in2, w * c);
    const asc_nn_add_params p = {7, 1518500250, -1, -3, 1073741824, 0, 20, -5, 1789569707, -19, {-128, 127}};
    const asc_nn_dims d = {1, 1, w, c};
    asc_board_counter_start();
    const uint32_t t0 = asc_board_counter_read();
    const int32_t st = asc_add_s8(&p, &d, kb_in, &d, kb_in2, &d, kb_out);
    const uint32_t t1 = asc_board_counter_read();
    kb_report(name, "add", (uint32_t)(w * c), t1 - t0, st, w * c);
}

int main(void)
{
    /* counter read overhead */
    asc_board_counter_start();
    {
        const uint32_t t0 = asc_board_counter_read();
        const uint32_t t1 = asc_board_counter_read();
        kb_overhead = t1 - t0;
    }
    int n = 0;
    /* 1x1 convolutions: one row per call (fused inverted-residual blocks) */
    kb_conv1x1("pw_17x32x64", 1, 17, 32, 64, -3, 5, -128, 127), n++;
    kb_conv1x1("pw_17x64x32", 1, 17, 64, 32, 11, -7, -128, 127), n++;
    kb_conv1x1("pw_9x64x32", 1, 9, 64, 32, 2, 9, -128, 127), n++;
    kb_conv1x1("pw_9x32x64", 1, 9, 32, 64, -20, -128, -128, 127), n++;
    kb_conv1x1("pw_9x64x56", 1, 9, 64, 56, 4, 3, -128, 127), n++;
    kb_conv1x1("pw_9x56x120", 1, 9, 56, 120, -1, -128, -128, 127), n++;
    kb_conv1x1("pw_9x120x56", 1, 9, 120, 56, 6, 2, -128, 127), n++;
    kb_conv1x1("pw_9x120x104", 1, 9, 120, 104, 1, -128, -128, 127), n++;
    /* layer-level 1x1 (the classifier 104 -> 10), 4 rows of the 32x9 map */
    kb_conv1x1("pw_4x9x104x10", 4, 9, 104, 10, -5, 13, -128, 127), n++;
    /* ReLU-clamped variant (activation narrower than int8) */
    kb_conv1x1("pw_17x32x64_relu", 1, 17, 32, 64, -3, -128, -128, 100), n++;
    /* general 3x3 stride-2 convolutions (layer level, on slabs of input rows, pad folded) */
    kb_conv("conv3x3s2_33x8x32", 9, 33, 8, 32, 3, 2, 1, -128, -128, 0), n++;
    kb_conv("conv3x3s2_65x1x8", 9, 65, 1, 8, 3, 2, 1, 10, -128, 0), n++;
    /* with a one-patch scratch (kh*kw*c bytes: what asc_edge/codegen/planner.py reserves today) */
    kb_conv("conv3x3s2_33x8x32_ctx1", 9, 33, 8, 32, 3, 2, 1, -128, -128, 72), n++;
    /* depthwise 3x3 on row windows */
    kb_dw("dw_17x64_s11", 3, 17, 64, 1, 1, 0, 1, -128, 3), n++;
    kb_dw("dw_17x64_s11_top", 2, 17, 64, 1, 1, 1, 1, -128, 3), n++;
    kb_dw("dw_17x64_s12", 3, 17, 64, 1, 2, 0, 1, -128, 3), n++;
    kb_dw("dw_9x64_s21", 3, 9, 64, 2, 1, 0, 1, -128, 3), n++;
    kb_dw("dw_9x120_s11", 3, 9, 120, 1, 1, 0, 1, -128, 3), n++;
    /* residual ADD on rows */
    kb_add("add_17x32", 17, 32), n++;
    kb_add("add_9x32", 9, 32), n++;
    kb_add("add_9x56", 9, 56), n++;
    asc_board_puts("KB_DONE ");
    asc_board_put_u32((uint32_t)n);
    asc_board_puts("\n");
    return 0;
}
