/* asc_pool_s8.c - AVERAGE_POOL_2D int8 (reference_integer_ops::AveragePool) and MEAN over H,W
 * (reference_ops::QuantizedMeanOrSum, the int8 MEAN path of TFLite Micro).
 *
 * AVERAGE_POOL_2D, DSP path (filter taps <= 255, so int16 lane sums are exact: |sum| <= 128 * 255):
 * window sums of 4 channels per 32-bit word, bytes (0, 2) and (1, 3) added into int16 lanes by
 * SXTAB16. The rounding division of a sum a by the valid count n (half away from zero) is
 *     r = floor((a + B) / n) - 128,   B = 128 n + (n - 1) / 2          (n odd: a / n is never a tie)
 *                                     B = 128 n + n / 2 - [a < 0]      (n even)
 * with a + B in [0, 255 n + n / 2]; for 3 <= n <= 16, floor(u / n) == (u * m) >> 16 for all such u,
 * m = ceil(2^16 / n) < 2^15 (checked exhaustively). Per lane one SMLABB / SMLATB gives
 * (a - [a < 0]) * m + B * m, whose high halfword is r + 128 in [0, 255] (< 2^24); two PKHTB and an
 * ORR pack the four bytes, EOR 0x80808080 subtracts 128. Other counts divide per lane (SDIV).
 *
 * Output rows are computed in order, each pixel after its window was read (the planner may place
 * the output over the dying input: codegen/ops/avg_pool.py overlap_lead_bytes), a row in column
 * blocks of one window shape (each border column alone, the interior columns as one run).
 * Windows of 2 or 3 in-image rows x 2 or 3 columns run in asm loops per pixel and group of 4
 * channels (3x3: 9 x (LDR, 2 SXTAB16), 4 SMLAxB, 2 PKHTB, ORR, EOR, STR, SUBS, BNE = 38
 * instructions per 4 outputs); at stride_h 1 the interior rows (3 window rows) keep the sums of
 * the window's rows 0 and 1 per column and group in a line buffer (stack, 4 * out_w * C bytes
 * <= 1.5 KB, C % 4 == 0), so each input row is summed once (28 instructions per 4 outputs at 3x3).
 * C % 4 channels and other windows take C loops. The average of int8 values is in [-128, 127]; a
 * narrower activation is applied afterwards by a byte-wise clamp (UQSUB8). */
#include "asc_nn_internal.h"

#if ASC_NN_USE_DSP
/* Window sums of 4 channels: int16 lanes (c, c+2) in s02, (c+1, c+3) in s13. */
ASC_INLINE void asc_avg_sum(const int8_t *r, int32_t row, int32_t ch, int32_t nfy, int32_t nfx, int32_t *s02,
                            int32_t *s13)
{
    int32_t a = 0, b = 0;
    for (int32_t fy = 0; fy < nfy; fy++, r += row) {
        const int8_t *px = r;
        for (int32_t fx = 0; fx < nfx; fx++, px += ch) {
            const int32_t v = asc_read_s8x4(px);
            a = __sxtab16(a, v);
            b = asc_sxtab16_ror8(b, v);
        }
    }
    *s02 = a;
    *s13 = b;
}

static inline int32_t asc_lo16(int32_t v)
{
    return (int32_t)(int16_t)(uint16_t)((uint32_t)v & 0xFFFFu);
}

static inline int32_t asc_hi16(int32_t v)
{
    return (int32_t)(int16_t)(uint16_t)((uint32_t)v >> 16);
}

/* Reciprocal division constants of a count n in [3, 16]: m = ceil(2^16 / n), k = B * m (B without
 * the [a < 0] term of an even n, which is subtracted from the sum). */
static inline void asc_avg_recip(int32_t n, int32_t *m, int32_t *k)
{
    *m = (65536 + n - 1) / n;
    *k = (128 * n + n / 2) * *m;
}

/* Lanes of an even count: a - [a < 0] per int16 lane (a negative lane is >= 0x8000 as a
 * halfword, so the subtraction never borrows across lanes). */
static inline int32_t asc_avg_even_fix(int32_t s)
{
    return (int32_t)((uint32_t)s - (((uint32_t)s >> 15) & 0x00010001u));
}

/* SMLATB: acc + hi16(a) * lo16(b);  PKHTB: hi16(a) : lo16(b >> 16)  (one instruction each). */
ASC_INLINE int32_t asc_avg_smlatb(int32_t a, int32_t b, int32_t acc)
{
#if ASC_NN_ASM
    int32_t r;
    __asm__("smlatb %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
    return r;
#else
    return (int32_t)((uint32_t)acc + (uint32_t)(asc_hi16(a) * asc_lo16(b)));
#endif
}

ASC_INLINE uint32_t asc_avg_pkhtb(uint32_t a, uint32_t b)
{
#if ASC_NN_ASM
    uint32_t r;
    __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
#else
    return (a & 0xFFFF0000u) | (b >> 16); /* b >= 0 here: ASR == LSR */
#endif
}

/* The four averages (int8, packed little-endian: channels c..c+3) of lanes s02 = (c, c+2),
 * s13 = (c+1, c+3): ((lane * m + k) >> 16) - 128 per lane. */
ASC_INLINE uint32_t asc_avg_pack(int32_t s02, int32_t s13, int32_t m, int32_t k)
{
    const uint32_t p0 = (uint32_t)asc_smlabb(s02, m, k), p2 = (uint32_t)asc_avg_smlatb(s02, m, k);
    const uint32_t p1 = (uint32_t)asc_smlabb(s13, m, k), p3 = (uint32_t)asc_avg_smlatb(s13, m, k);
    return (asc_avg_pkhtb(p2, p0) | (asc_avg_pkhtb(p3, p1) << 8)) ^ 0x80808080u;
}

static inline void asc_write_u32(int8_t *o, uint32_t w)
{
    memcpy(o, &w, 4);
}

/* One channel's average with the reciprocal constants (n in [3, 16]). */
static inline int8_t asc_avg_one(int32_t a, int32_t m, int32_t k, int32_t even)
{
    if (even && a < 0) {
        a -= 1;
    }
    return (int8_t)(((a * m + k) >> 16) - 128);
}

/* One channel's average, any count n in [1, 255]: round half away from zero (C division truncates). */
static inline int8_t asc_avg_div(int32_t a, int32_t n)
{
    return (int8_t)(a > 0 ? (a + n / 2) / n : (a - n / 2) / n);
}

/* Sum of one channel over an nfy x nfx window from x. */
static inline int32_t asc_avg_sum1(const int8_t *x, int32_t row, int32_t ch, int32_t nfy, int32_t nfx)
{
    int32_t s = 0;
    for (int32_t fy = 0; fy < nfy; fy++, x += row) {
        for (int32_t fx = 0; fx < nfx; fx++) {
            s += x[fx * ch];
        }
    }
    return s;
}

#if ASC_NN_ASM
/* asm text of one window row in the plain group loop: taps at p, p + ch [, p + 2 ch] (3 or 2
 * columns), p post-incremented by 4; the first row starts the sums (SXTB16), the others add. */
#define ASC_AVG_3COL_FIRST(P)                                                                                  \
    "ldr %[v0], [" P ", %[ch]]\n\t"                                                                            \
    "ldr %[v1], [" P ", %[ch], lsl #1]\n\t"                                                                    \
    "sxtb16 %[a], %[v0]\n\t"                                                                                   \
    "sxtb16 %[b], %[v0], ror #8\n\t"                                                                           \
    "ldr %[v0], [" P "], #4\n\t"                                                                               \
    "sxtab16 %[a], %[a], %[v1]\n\t"                                                                            \
    "sxtab16 %[b], %[b], %[v1], ror #8\n\t"                                                                    \
    "sxtab16 %[a], %[a], %[v0]\n\t"                                                                            \
    "sxtab16 %[b], %[b], %[v0], ror #8\n\t"
#define ASC_AVG_3COL(P)                                                                                        \
    "ldr %[v0], [" P ", %[ch]]\n\t"                                                                            \
    "ldr %[v1], [" P ", %[ch], lsl #1]\n\t"                                                                    \
    "sxtab16 %[a], %[a], %[v0]\n\t"                                                                            \
    "sxtab16 %[b], %[b], %[v0], ror #8\n\t"                                                                    \
    "ldr %[v0], [" P "], #4\n\t"                                                                               \
    "sxtab16 %[a], %[a], %[v1]\n\t"                                                                            \
    "sxtab16 %[b], %[b], %[v1], ror #8\n\t"                                                                    \
    "sxtab16 %[a], %[a], %[v0]\n\t"                                                                            \
    "sxtab16 %[b], %[b], %[v0], ror #8\n\t"
#define ASC_AVG_2COL_FIRST(P)                                                                                  \
    "ldr %[v0], [" P ", %[ch]]\n\t"                                                                            \
    "ldr %[v1], [" P "], #4\n\t"                                                                               \
    "sxtb16 %[a], %[v0]\n\t"                                                                                   \
    "sxtb16 %[b], %[v0], ror #8\n\t"                                                                           \
    "sxtab16 %[a], %[a], %[v1]\n\t"                                                                            \
    "sxtab16 %[b], %[b], %[v1], ror #8\n\t"
#define ASC_AVG_2COL(P)                                                                                        \
    "ldr %[v0], [" P ", %[ch]]\n\t"                                                                            \
    "ldr %[v1], [" P "], #4\n\t"                                                                               \
    "sxtab16 %[a], %[a], %[v0]\n\t"                                                                            \
    "sxtab16 %[b], %[b], %[v0], ror #8\n\t"                                                                    \
    "sxtab16 %[a], %[a], %[v1]\n\t"                                                                            \
    "sxtab16 %[b], %[b], %[v1], ror #8\n\t"
/* lanes - [lane < 0] (even counts), T0 / T1 scratch */
#define ASC_AVG_EVEN_FIX(T0, T1)                                                                               \
    "lsr %[" T0 "], %[a], #15\n\t"                                                                             \
    "lsr %[" T1 "], %[b], #15\n\t"                                                                             \
    "and %[" T0 "], %[" T0 "], #0x00010001\n\t"                                                                \
    "and %[" T1 "], %[" T1 "], #0x00010001\n\t"                                                                \
    "sub %[a], %[a], %[" T0 "]\n\t"                                                                            \
    "sub %[b], %[b], %[" T1 "]\n\t"
/* ((lane * m + k) >> 16) - 128 per lane, packed, stored (o post-incremented); next group while g
 * (T0 / T1 scratch). */
#define ASC_AVG_STORE(T0, T1)                                                                                  \
    "smlabb %[" T0 "], %[a], %[m], %[k]\n\t"                                                                   \
    "smlatb %[a], %[a], %[m], %[k]\n\t"                                                                        \
    "smlabb %[" T1 "], %[b], %[m], %[k]\n\t"                                                                   \
    "smlatb %[b], %[b], %[m], %[k]\n\t"                                                                        \
    "pkhtb %[a], %[a], %[" T0 "], asr #16\n\t"                                                                 \
    "pkhtb %[b], %[b], %[" T1 "], asr #16\n\t"                                                                 \
    "orr %[a], %[a], %[b], lsl #8\n\t"                                                                         \
    "eor %[a], %[a], #0x80808080\n\t"                                                                          \
    "str %[a], [%[o]], #4\n\t"                                                                                 \
    "subs %[g], %[g], #1\n\t"                                                                                  \
    "bne 1b\n\t"
/* Next pixel: the row pointers advance by din (the pixel step - C % 4), o by dout (C % 4),
 * g = groups, while npix. */
#define ASC_AVG_NEXT3                                                                                          \
    "ldr %[v0], %[din]\n\t"                                                                                    \
    "add %[p0], %[p0], %[v0]\n\t"                                                                              \
    "add %[p1], %[p1], %[v0]\n\t"                                                                              \
    "add %[p2], %[p2], %[v0]\n\t"                                                                              \
    "ldr %[v1], %[dout]\n\t"                                                                                   \
    "add %[o], %[o], %[v1]\n\t"                                                                                \
    "ldr %[g], %[groups]\n\t"                                                                                  \
    "ldr %[v0], %[npix]\n\t"                                                                                   \
    "subs %[v0], %[v0], #1\n\t"                                                                                \
    "str %[v0], %[npix]\n\t"                                                                                   \
    "bne 1b\n\t"
#define ASC_AVG_ASM(BODY)                                                                                      \
    __asm__ volatile("1:\n\t" BODY ASC_AVG_STORE("v0", "v1") ASC_AVG_NEXT3                                     \
                     : [p0] "+r"(r0), [p1] "+r"(r1), [p2] "+r"(r2), [o] "+r"(op), [g] "+r"(g), [a] "=&r"(a),    \
                       [b] "=&r"(b), [v0] "=&r"(v0), [v1] "=&r"(v1), [npix] "+m"(cnt)                          \
                     : [ch] "r"(ch), [m] "r"(m), [k] "r"(k), [din] "m"(din), [dout] "m"(dout),                 \
                       [groups] "m"(groups)                                                                    \
                     : "cc", "memory")

/* Line-buffer variant: the new window row's sums (3 or 2 taps at p, p + ch [, p + 2 ch], p
 * post-incremented by 4) into c, d. */
#define ASC_AVG_LINE3                                                                                          \
    "ldr %[v], [%[p], %[ch]]\n\t"                                                                              \
    "sxtb16 %[c], %[v]\n\t"                                                                                    \
    "sxtb16 %[d], %[v], ror #8\n\t"                                                                            \
    "ldr %[v], [%[p], %[ch], lsl #1]\n\t"                                                                      \
    "sxtab16 %[c], %[c], %[v]\n\t"                                                                             \
    "sxtab16 %[d], %[d], %[v], ror #8\n\t"                                                                     \
    "ldr %[v], [%[p]], #4\n\t"                                                                                 \
    "sxtab16 %[c], %[c], %[v]\n\t"                                                                             \
    "sxtab16 %[d], %[d], %[v], ror #8\n\t"
#define ASC_AVG_LINE2                                                                                          \
    "ldr %[v], [%[p], %[ch]]\n\t"                                                                              \
    "sxtb16 %[c], %[v]\n\t"                                                                                    \
    "sxtb16 %[d], %[v], ror #8\n\t"                                                                            \
    "ldr %[v], [%[p]], #4\n\t"                                                                                 \
    "sxtab16 %[c], %[c], %[v]\n\t"                                                                             \
    "sxtab16 %[d], %[d], %[v], ror #8\n\t"
/* Per group: the two buffered row sums (16 bytes at bp: older, newer) + the new row's; the entry
 * becomes (newer, new) and bp moves on to the next group / pixel. */
#define ASC_AVG_LB_ASM(LINE, FIX)                                                                              \
    __asm__ volatile("1:\n\t"                                                                                  \
                     "ldrd %[a], %[b], [%[bp]]\n\t"                                                            \
                     "ldrd %[c], %[d], [%[bp], #8]\n\t"                                                        \
                     "sadd16 %[a], %[a], %[c]\n\t"                                                             \
                     "sadd16 %[b], %[b], %[d]\n\t"                                                             \
                     "strd %[c], %[d], [%[bp]], #8\n\t" LINE                                                   \
                     "strd %[c], %[d], [%[bp]], #8\n\t"                                                        \
                     "sadd16 %[a], %[a], %[c]\n\t"                                                             \
                     "sadd16 %[b], %[b], %[d]\n\t" FIX ASC_AVG_STORE("c", "d")                                 \
                     "ldr %[v], %[din]\n\t"                                                                    \
                     "add %[p], %[p], %[v]\n\t"                                                                \
                     "ldr %[g], %[groups]\n\t"                                                                 \
                     "ldr %[v], %[npix]\n\t"                                                                   \
                     "subs %[v], %[v], #1\n\t"                                                                 \
                     "str %[v], %[npix]\n\t"                                                                   \
                     "bne 1b\n\t"                                                                              \
                     : [p] "+r"(pp), [bp] "+r"(bp), [o] "+r"(op), [g] "+r"(g), [a] "=&r"(a), [b] "=&r"(b),      \
                       [c] "=&r"(c), [d] "=&r"(d), [v] "=&r"(v), [npix] "+m"(cnt)                              \
                     : [ch] "r"(ch), [m] "r"(m), [k] "r"(k), [din] "m"(din), [groups] "m"(groups)              \
                     : "cc", "memory")
#endif

/* npix output pixels of one output row (in_step input bytes apart, outputs contiguous from o)
 * whose windows are nfy x nfx in-image taps (both 2 or 3) from x (row = input row pitch). Per
 * pixel and group of 4 channels, in asm: nfy x nfx x (LDR, 2 SXTAB16) [even count: 6 more],
 * 4 SMLAxB, 2 PKHTB, ORR, EOR, STR, SUBS, BNE (38 instructions at 3 x 3); the C % 4 channels in C. */
static __attribute__((noinline)) void asc_avg_run(const int8_t *x, int32_t row, int32_t ch, int32_t in_step, int8_t *o, int32_t npix,
                        int32_t nfy, int32_t nfx)
{
    const int32_t n = nfy * nfx, even = !(n & 1), c4 = ch & ~3;
    int32_t m, k;
    asc_avg_recip(n, &m, &k);
    if (c4 > 0) {
#if ASC_NN_ASM
        const int8_t *r0 = x, *r1 = x + row, *r2 = nfy == 3 ? r1 + row : r1;
        int8_t *op = o;
        int32_t a, b, v0, v1, g = c4 / 4, cnt = npix;
        const int32_t din = in_step - c4, dout = ch - c4, groups = c4 / 4;
        (void)even;
        switch ((nfy == 3 ? 2 : 0) + (nfx == 3 ? 1 : 0)) {
        case 3: /* n = 9 */
            ASC_AVG_ASM(ASC_AVG_3COL_FIRST("%[p0]") ASC_AVG_3COL("%[p1]") ASC_AVG_3COL("%[p2]"));
            break;
        case 2: /* 6 */
            ASC_AVG_ASM(ASC_AVG_2COL_FIRST("%[p0]") ASC_AVG_2COL("%[p1]") ASC_AVG_2COL("%[p2]")
                            ASC_AVG_EVEN_FIX("v0", "v1"));
            break;
        case 1: /* 6 */
            ASC_AVG_ASM(ASC_AVG_3COL_FIRST("%[p0]") ASC_AVG_3COL("%[p1]") ASC_AVG_EVEN_FIX("v0", "v1"));
            break;
        default: /* 4 */
            ASC_AVG_ASM(ASC_AVG_2COL_FIRST("%[p0]") ASC_AVG_2COL("%[p1]") ASC_AVG_EVEN_FIX("v0", "v1"));
            break;
        }
#else
        for (int32_t i = 0; i < npix; i++) {
            for (int32_t c = 0; c < c4; c += 4) {
                int32_t a, b;
                asc_avg_sum(x + i * in_step + c, row, ch, nfy, nfx, &a, &b);
                if (even) {
                    a = asc_avg_even_fix(a);
                    b = asc_avg_even_fix(b);
                }
                asc_write_u32(o + i * ch + c, asc_avg_pack(a, b, m, k));
            }
        }
#endif
    }
    for (int32_t i = 0; i < npix; i++) {
        for (int32_t c = c4; c < ch; c++) {
            o[i * ch + c] = asc_avg_one(asc_avg_sum1(x + i * in_step + c, row, ch, nfy, nfx), m, k, even);
        }
    }
}

/* Line buffer of the interior rows at stride_h 1 (3 window rows): per output column and group of
 * 4 channels the sums of the window's two lower rows (4 words), so that each input row is summed
 * once. At most ASC_AVG_LINEBUF_WORDS words on the stack (C % 4 == 0, 4 * out_w * C bytes). */
#define ASC_AVG_LINEBUF_WORDS 384
#define ASC_AVG_MAX_SEGS 8 /* column blocks of a row on the line-buffer path */

/* Fill the line buffer entries of npix pixels (windows of nfx columns from x, in_step apart) with
 * the sums of the window rows 0 and 1 (x, x + row). */
static void asc_avg_lb_init(const int8_t *x, int32_t row, int32_t ch, int32_t in_step, int32_t npix, int32_t nfx,
                            int32_t *lb)
{
    for (int32_t i = 0; i < npix; i++) {
        for (int32_t c = 0; c < ch; c += 4, lb += 4) {
            asc_avg_sum(x + i * in_step + c, 0, ch, 1, nfx, &lb[0], &lb[1]);
            asc_avg_sum(x + i * in_step + row + c, 0, ch, 1, nfx, &lb[2], &lb[3]);
        }
    }
}

/* Column blocks of one window shape in a row (line-buffer path): input offset of the first window's
 * first tap, pixels, window columns. */
typedef struct {
    int32_t xoff, npix, nfx;
} asc_avg_seg;

/* One interior output row at stride_h 1 whose windows are 3 rows x 2 or 3 columns (per block):
 * the sums of the window rows 0 and 1 come from the line buffer lb (which then holds rows 1 and 2
 * for the next output row), only the window row 2 (from x2) is read. Per pixel and group of 4
 * channels (asm): LDRD, LDRD, SADD16, SADD16, STRD, 3 x (LDR, 2 SXTAB16), STRD, SADD16, SADD16,
 * 4 SMLAxB, 2 PKHTB, ORR, EOR, STR, SUBS, BNE = 28 instructions at 3 x 3. C % 4 == 0.
 * (A function of its own: inlined beside the other asm loop, gcc's register allocation fails.) */
static __attribute__((noinline)) void asc_avg_row_lb(const int8_t *x2, int8_t *o, int32_t *lb, const asc_avg_seg *seg,
                                                     int32_t nseg, int32_t ch, int32_t in_step)
{
    for (int32_t s = 0; s < nseg; s++) {
        const int32_t nfx = seg[s].nfx, npix = seg[s].npix;
        /* asc_avg_recip of 9 and 6 */
        const int32_t m = nfx == 3 ? 7282 : 10923, k = nfx == 3 ? 1156 * 7282 : 771 * 10923;
#if ASC_NN_ASM
        const int8_t *pp = x2 + seg[s].xoff;
        int8_t *op = o;
        int32_t *bp = lb, a, b, c, d, v, g = ch / 4, cnt = npix;
        const int32_t din = in_step - ch, groups = ch / 4;
        if (nfx == 3) {
            ASC_AVG_LB_ASM(ASC_AVG_LINE3, "");
        } else {
            ASC_AVG_LB_ASM(ASC_AVG_LINE2, ASC_AVG_EVEN_FIX("c", "d"));
        }
        o = op;
        lb = bp;
#else
        const int8_t *xs = x2 + seg[s].xoff;
        for (int32_t i = 0; i < npix; i++) {
            for (int32_t ci = 0; ci < ch; ci += 4, lb += 4, o += 4) {
                int32_t a = __sadd16(lb[0], lb[2]), b = __sadd16(lb[1], lb[3]), c, d;
                asc_avg_sum(xs + i * in_step + ci, 0, ch, 1, nfx, &c, &d);
                lb[0] = lb[2];
                lb[1] = lb[3];
                lb[2] = c;
                lb[3] = d;
                a = __sadd16(a, c);
                b = __sadd16(b, d);
                if (nfx == 2) {
                    a = asc_avg_even_fix(a);
                    b = asc_avg_even_fix(b);
                }
                asc_write_u32(o, asc_avg_pack(a, b, m, k));
            }
        }
#endif
    }
}

/* One output pixel, any window: nfy x nfx in-image taps from x. */
static void asc_avg_pixel(const int8_t *x, int32_t row, int32_t ch, int32_t nfy, int32_t nfx, int8_t *o)
{
    const int32_t n = nfy * nfx;
    int32_t c = 0;
    if (n >= 3 && n <= 16) {
        const int32_t even = !(n & 1);
        int32_t m, k;
        asc_avg_recip(n, &m, &k);
        for (; c + 4 <= ch; c += 4) {
            int32_t a, b;
            asc_avg_sum(x + c, row, ch, nfy, nfx, &a, &b);
            if (even) {
                a = asc_avg_even_fix(a);
                b = asc_avg_even_fix(b);
            }
            asc_write_u32(o + c, asc_avg_pack(a, b, m, k));
        }
        for (; c < ch; c++) {
            o[c] = asc_avg_one(asc_avg_sum1(x + c, row, ch, nfy, nfx), m, k, even);
        }
        return;
    }
    for (; c + 4 <= ch; c += 4) {
        int32_t a, b;
        asc_avg_sum(x + c, row, ch, nfy, nfx, &a, &b);
        o[c] = asc_avg_div(asc_lo16(a), n);
        o[c + 1] = asc_avg_div(asc_lo16(b), n);
        o[c + 2] = asc_avg_div(asc_hi16(a), n);
        o[c + 3] = asc_avg_div(asc_hi16(b), n);
    }
    for (; c < ch; c++) {
        o[c] = asc_avg_div(asc_avg_sum1(x + c, row, ch, nfy, nfx), n);
    }
}

/* Activation clamp of n int8 values in place: bytes biased by 0x80 (unsigned order), max with lo
 * as lo + UQSUB8(v, lo), min with hi as hi - UQSUB8(hi, v) (no carry / borrow crosses a byte). */
static void asc_avg_clamp(int8_t *y, int32_t n, const asc_nn_activation *act)
{
    const uint32_t lo = ((uint32_t)(act->min + 128) & 0xFFu) * 0x01010101u;
    const uint32_t hi = ((uint32_t)(act->max + 128) & 0xFFu) * 0x01010101u;
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        uint32_t v;
        memcpy(&v, y + i, 4);
        v ^= 0x80808080u;
        v = lo + asc_uqsub8(v, lo);
        v = hi - asc_uqsub8(hi, v);
        asc_write_u32(y + i, v ^ 0x80808080u);
    }
    for (; i < n; i++) {
        y[i] = asc_clamp_s8(y[i], act);
    }
}

/* Output indices [lo, hi) whose windows lie inside the input (extent len, filter f, stride s,
 * padding pad): o * s - pad >= 0 and o * s - pad + f <= len; lo = hi = 0 when none. */
static void asc_avg_inner(int32_t len, int32_t f, int32_t s, int32_t pad, int32_t out_len, int32_t *lo, int32_t *hi)
{
    const int32_t a = pad <= 0 ? 0 : (pad + s - 1) / s;
    const int32_t lim = len - f + pad;
    const int32_t b = lim < 0 ? 0 : ASC_NN_MIN(lim / s + 1, out_len);
    *lo = a < b ? a : 0;
    *hi = a < b ? b : 0;
}

/* Output rows in order (the planner may place the output over the dying input, ops/avg_pool.py
 * overlap_lead_bytes: every output row is written after its windows were read, and later reads
 * start at most 2 output rows back), each cut into column blocks of one window shape: every border
 * column alone, the interior columns as one run. */
static asc_nn_status asc_avgpool_dsp(const asc_nn_pool_params *p, const asc_nn_dims *in, const int8_t *input,
                                     const asc_nn_dims *out, int8_t *output)
{
    const int32_t ch = in->c, row = in->w * ch, sh = p->stride.h, sw = p->stride.w;
    /* an empty window anywhere: TFLite fails; refuse before writing */
    for (int32_t oy = 0; oy < out->h; oy++) {
        const int32_t y0 = oy * sh - p->padding.h;
        if (ASC_NN_MIN(p->filter.h, in->h - y0) <= ASC_NN_MAX(0, -y0)) {
            return ASC_NN_ARG_ERROR;
        }
    }
    int32_t oya, oyb, oxa, oxb;
    asc_avg_inner(in->h, p->filter.h, sh, p->padding.h, out->h, &oya, &oyb);
    asc_avg_inner(in->w, p->filter.w, sw, p->padding.w, out->w, &oxa, &oxb);
    /* column blocks of one window shape: every border column alone, the interior columns as one */
    asc_avg_seg seg[ASC_AVG_MAX_SEGS];
    int32_t nseg = 0, lb_ok = ASC_NN_SPEED_PATHS && sh == 1 && p->filter.h == 3 && ch % 4 == 0 && out->w * ch <= ASC_AVG_LINEBUF_WORDS &&
                               oyb - oya >= 2;
    for (int32_t xs = 0, xe; xs < out->w; xs = xe) {
        xe = xs == oxa && oxb > oxa ? oxb : xs + 1;
        const int32_t x0 = xs * sw - p->padding.w, fx0 = ASC_NN_MAX(0, -x0);
        const int32_t nfx = ASC_NN_MIN(p->filter.w, in->w - x0) - fx0;
        if (nfx <= 0) {
            return ASC_NN_ARG_ERROR;
        }
        lb_ok = lb_ok && nfx >= 2 && nfx <= 3 && nseg < ASC_AVG_MAX_SEGS;
        if (lb_ok) {
            seg[nseg].xoff = (x0 + fx0) * ch;
            seg[nseg].npix = xe - xs;
            seg[nseg].nfx = nfx;
            nseg++;
        }
    }
    int32_t lb[ASC_AVG_LINEBUF_WORDS];
    for (int32_t b = 0; b < in->n; b++) {
        for (int32_t oy = 0; oy < out->h; oy++) {
            const int32_t y0 = oy * sh - p->padding.h, fy0 = ASC_NN_MAX(0, -y0);
            const int32_t nfy = ASC_NN_MIN(p->filter.h, in->h - y0) - fy0;
            const int8_t *xr = input + (b * in->h + y0 + fy0) * row;
            int8_t *orow = output + (b * out->h + oy) * out->w * ch;
            if (lb_ok && oy >= oya && oy < oyb) {
                /* interior row, stride_h 1: only the window's row 2 is read, rows 0, 1 are buffered */
                if (oy == oya) {
                    int32_t *l = lb;
                    for (int32_t s = 0; s < nseg; s++) {
                        asc_avg_lb_init(xr + seg[s].xoff, row, ch, sw * ch, seg[s].npix, seg[s].nfx, l);
                        l += seg[s].npix * ch;
                    }
                }
                asc_avg_row_lb(xr + 2 * row, orow, lb, seg, nseg, ch, sw * ch);
                continue;
            }
            for (int32_t xs = 0, xe; xs < out->w; xs = xe) {
                xe = xs == oxa && oxb > oxa ? oxb : xs + 1;
                const int32_t x0 = xs * sw - p->padding.w, fx0 = ASC_NN_MAX(0, -x0);
                const int32_t nfx = ASC_NN_MIN(p->filter.w, in->w - x0) - fx0, npix = xe - xs;
                const int8_t *x = xr + (x0 + fx0) * ch;
                int8_t *o = orow + xs * ch;
                if (ASC_NN_SPEED_PATHS && nfy >= 2 && nfy <= 3 && nfx >= 2 && nfx <= 3) {
                    asc_avg_run(x, row, ch, sw * ch, o, npix, nfy, nfx);
                } else {
                    for (int32_t i = 0; i < npix; i++) {
                        asc_avg_pixel(x + i * sw * ch, row, ch, nfy, nfx, o + i * ch);
                    }
                }
            }
        }
    }
    if (p->activation.min > -128 || p->activation.max < 127) {
        asc_avg_clamp(output, in->n * out->h * out->w * ch, &p->activation);
    }
    return ASC_NN_OK;
}
#endif

asc_nn_status asc_avgpool_s8(const asc_nn_pool_params *p,
                             const asc_nn_dims *in, const int8_t *input,
                             const asc_nn_dims *out, int8_t *output)
{
    if (!p || !in || !out || !input || !output || in->n <= 0 || in->h <= 0 || in->w <= 0 ||
        in->c <= 0 || out->n != in->n || out->c != in->c || out->h <= 0 || out->w <= 0 ||
        p->filter.h <= 0 || p->filter.w <= 0 || p->stride.h <= 0 || p->stride.w <= 0 ||
        !asc_act_ok(&p->activation)) {
        return ASC_NN_ARG_ERROR;
    }
#if ASC_NN_USE_DSP
    /* int16 lane sums are exact while taps * 128 <= 32767 */
    if (p->filter.h * p->filter.w <= 255) {
        return asc_avgpool_dsp(p, in, input, out, output);
    }
#endif
    const int32_t ch = in->c;
    for (int32_t b = 0; b < in->n; b++) {
        for (int32_t oy = 0; oy < out->h; oy++) {
            const int32_t y0 = oy * p->stride.h - p->padding.h;
            const int32_t fy0 = ASC_NN_MAX(0, -y0);
            const int32_t fy1 = ASC_NN_MIN(p->filter.h, in->h - y0);
            for (int32_t ox = 0; ox < out->w; ox++) {
                const int32_t x0 = ox * p->stride.w - p->padding.w;
                const int32_t fx0 = ASC_NN_MAX(0, -x0);
                const int32_t fx1 = ASC_NN_MIN(p->filter.w, in->w - x0);
                const int32_t count = (fy1 - fy0) * (fx1 - fx0);
                if (fy1 <= fy0 || fx1 <= fx0) {
                    return ASC_NN_ARG_ERROR; /* TFLite fails on an empty window as well */
                }
                int8_t *o = output + ((b * out->h + oy) * out->w + ox) * ch;
                for (int32_t c = 0; c < ch; c++) {
                    int32_t acc = 0;
                    for (int32_t fy = fy0; fy < fy1; fy++) {
                        const int8_t *row = input + ((b * in->h + y0 + fy) * in->w + x0) * ch + c;
                        for (int32_t fx = fx0; fx < fx1; fx++) {
                            acc += row[fx * ch];
                        }
                    }
                    /* round half away from zero; C division truncates toward zero */
                    acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                    o[c] = asc_clamp_s8(acc, &p->activation);
                }
            }
        }
    }
    return ASC_NN_OK;
}
asc_nn_status asc_mean_s8(const asc_nn_mean_params *p,
                          const asc_nn_dims *in, const int8_t *input,
                          int8_t *output)
{
    if (!p || !in || !input || !output || in->n <= 0 || in->h <= 0 || in->w <= 0 || in->c <= 0 ||
        p->shift > 31 || p->shift < -31 || !asc_act_ok(&p->activation)) {
        return ASC_NN_ARG_ERROR;
    }
    const int32_t num = in->h * in->w;
    /* Fold 1/num into the multiplier: shift = floor(log2(num)), bounded to 32 and 31 + shift. */
    int32_t sh = 0;
    while ((((int64_t)1) << (sh + 1)) <= (int64_t)num) {
        sh++;
    }
    sh = ASC_NN_MIN(sh, 32);
    sh = ASC_NN_MIN(sh, 31 + p->shift);
    int32_t mult = p->multiplier;
    int32_t shift = p->shift;
    if (sh >= 0) {
        mult = (int32_t)((((int64_t)p->multiplier) << sh) / (int64_t)num);
        shift = p->shift - sh;
    }
    const int32_t ch = in->c;
    const int32_t zp_sum = -p->input_offset * num;
    for (int32_t b = 0; b < in->n; b++) {
        for (int32_t c = 0; c < ch; c++) {
            int32_t sum = 0;
            const int8_t *x = input + (int64_t)b * num * ch + c;
            for (int32_t i = 0; i < num; i++) {
                sum += x[i * ch];
            }
            int32_t v = asc_mbqm(sum - zp_sum, mult, shift) + p->output_offset;
            output[b * ch + c] = asc_clamp_s8(v, &p->activation);
        }
    }
    return ASC_NN_OK;
}
