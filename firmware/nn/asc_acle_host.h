/*
 * asc_acle_host.h - portable C emulation of the few ACLE DSP intrinsics (<arm_acle.h>) that the
 * asc_nn Cortex-M4 paths use, so the DSP code paths can be built and tested on a host
 * (compile with -DASC_NN_EMULATE_DSP). Semantics follow the Arm ARM for SXTAB16, SXTB16,
 * SADD16 and SMLAD (wrap-around; the Q flag is not modelled).
 */
#ifndef ASC_ACLE_HOST_H
#define ASC_ACLE_HOST_H

#include <stdint.h>

#if defined(__ARM_FEATURE_DSP) && !defined(ASC_NN_FORCE_EMULATION)
#error "asc_acle_host.h is for hosts without the Arm DSP extension; use <arm_acle.h>"
#endif

typedef int32_t asc_int16x2_t;
typedef int32_t asc_int8x4_t;

static inline int32_t asc_emu_lane16(int32_t v, int lane)
{
    return (int32_t)(int16_t)(uint16_t)(((uint32_t)v >> (16 * lane)) & 0xFFFFu);
}

static inline int32_t asc_emu_lane8(int32_t v, int lane)
{
    return (int32_t)(int8_t)(uint8_t)(((uint32_t)v >> (8 * lane)) & 0xFFu);
}

static inline int32_t asc_emu_make16x2(int32_t lo, int32_t hi)
{
    return (int32_t)(((uint32_t)lo & 0xFFFFu) | (((uint32_t)hi & 0xFFFFu) << 16));
}

/* SXTB16: sign-extend bytes 0 and 2 to two int16 lanes. */
static inline asc_int16x2_t __sxtb16(asc_int8x4_t a)
{
    return asc_emu_make16x2(asc_emu_lane8(a, 0), asc_emu_lane8(a, 2));
}

/* SXTAB16: a.lane + sign-extended byte (0 / 2) of b, per int16 lane, modulo 2^16. */
static inline asc_int16x2_t __sxtab16(asc_int16x2_t a, asc_int8x4_t b)
{
    return asc_emu_make16x2(asc_emu_lane16(a, 0) + asc_emu_lane8(b, 0),
                            asc_emu_lane16(a, 1) + asc_emu_lane8(b, 2));
}

/* SADD16: lane-wise int16 addition, modulo 2^16. */
static inline asc_int16x2_t __sadd16(asc_int16x2_t a, asc_int16x2_t b)
{
    return asc_emu_make16x2(asc_emu_lane16(a, 0) + asc_emu_lane16(b, 0),
                            asc_emu_lane16(a, 1) + asc_emu_lane16(b, 1));
}

/* SMLAD: c + a.lo*b.lo + a.hi*b.hi, wrapping modulo 2^32. */
static inline int32_t __smlad(asc_int16x2_t a, asc_int16x2_t b, int32_t c)
{
    const uint32_t p0 = (uint32_t)(asc_emu_lane16(a, 0) * asc_emu_lane16(b, 0));
    const uint32_t p1 = (uint32_t)(asc_emu_lane16(a, 1) * asc_emu_lane16(b, 1));
    return (int32_t)((uint32_t)c + p0 + p1);
}

#endif /* ASC_ACLE_HOST_H */
