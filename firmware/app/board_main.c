/* board_main.c - the board-side application of `asc-edge flash`: classifies one clip stored in
 * flash (16-bit PCM at ASC_FE_SAMPLE_RATE_HZ, generated clip_data.c) with the log-mel frontend and
 * the generated int8 model, forever, and prints the class and the timing on USART1:
 *   asc-edge: class=<name> score=<int8 logit> frontend=<ticks> model=<ticks>
 * A tick is one TIM2 clock: one core cycle at the reset clock on silicon (16 MHz HSI, APB1
 * prescaler 1), one executed instruction under QEMU -icount. Build: asc_edge.device.flash. */
#include <stdint.h>

#include "asc_frontend.h"
#include "board.h"
#include "model.h"

extern const int16_t asc_board_clip_pcm[];     /* ASC_FE_N_SAMPLES samples */
extern const char *const asc_board_labels[];   /* ASC_MODEL_OUTPUT_SIZE class names */
extern const char asc_board_clip_name[];

static uint8_t arena[ASC_MODEL_ARENA_SIZE] __attribute__((aligned(16)));
static int8_t logits[ASC_MODEL_OUTPUT_SIZE];

int main(void)
{
    int8_t *input = (int8_t *)(arena + ASC_MODEL_INPUT_OFFSET);
    asc_board_init();
    asc_board_counter_start();
    asc_board_puts("asc-edge board app: clip ");
    asc_board_puts(asc_board_clip_name);
    asc_board_puts("\n");
#ifdef ASC_BOARD_ITERATIONS
    for (int32_t n = 0; n < ASC_BOARD_ITERATIONS; n++) {
#else
    for (;;) {
#endif
        asc_fe_mem_s16_t src = {asc_board_clip_pcm, ASC_FE_N_SAMPLES, 0};
        const uint32_t t0 = asc_board_counter_read();
        if (asc_fe_logmel_s8(asc_fe_read_mem_s16, &src, arena + ASC_MODEL_FRONTEND_WORK_OFFSET,
                             ASC_MODEL_FRONTEND_WORK_SIZE, input) != ASC_FE_OK) {
            asc_board_puts("asc-edge: frontend error\n");
            return 1;
        }
        const uint32_t t1 = asc_board_counter_read();
        if (asc_model_invoke(input, logits, arena) != 0) {
            asc_board_puts("asc-edge: model error\n");
            return 1;
        }
        const uint32_t t2 = asc_board_counter_read();
        int32_t best = 0;
        for (int32_t k = 1; k < ASC_MODEL_OUTPUT_SIZE; k++) {
            if (logits[k] > logits[best]) {
                best = k;
            }
        }
        asc_board_puts("asc-edge: class=");
        asc_board_puts(asc_board_labels[best]);
        asc_board_puts(" score=");
        asc_board_put_i32(logits[best]);
        asc_board_puts(" frontend=");
        asc_board_put_u32(t1 - t0);
        asc_board_puts(" model=");
        asc_board_put_u32(t2 - t1);
        asc_board_puts("\n");
    }
    return 0;
}
