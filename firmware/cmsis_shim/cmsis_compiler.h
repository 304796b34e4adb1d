/*
 * cmsis_compiler.h - asc-edge's minimal stand-in for CMSIS-Core's cmsis_compiler.h (GCC only).
 *
 * CMSIS-DSP's arm_math_types.h includes "cmsis_compiler.h" for the compiler keywords and the
 * core / SIMD intrinsics. CMSIS-Core is not published on the package registries we fetch from,
 * so this header provides exactly what the CMSIS-DSP headers and the FFT sources used by
 * firmware/frontend need, in two flavours:
 *
 *   - Arm targets (arm-none-eabi-gcc, e.g. -mcpu=cortex-m4): the ACLE intrinsics of GCC's
 *     <arm_acle.h> (__ssat, __qadd16, __smlad, ...), wrapped in the CMSIS-Core names and argument
 *     types. With __ARM_FEATURE_DSP (Cortex-M4/M7/M33+DSP) CMSIS-DSP defines ARM_MATH_DSP and
 *     uses the packed-SIMD intrinsics, which are then defined here.
 *   - Any other GCC/Clang target (the x86-64 host build): portable C for __CLZ, __SSAT, __USAT and
 *     __ROR. The packed-SIMD intrinsics are not defined here: without ARM_MATH_DSP, CMSIS-DSP's
 *     own dsp/none.h supplies C versions of them.
 *
 * Semantics follow the Arm ACLE / Armv7-M ARM (saturation, halving, dual 16-bit multiplies).
 * The Q (sticky saturation) flag is not modelled by the portable versions.
 */
#ifndef ASC_CMSIS_COMPILER_H
#define ASC_CMSIS_COMPILER_H

#include <stdint.h>

#if !defined(__GNUC__)
#error "firmware/cmsis_shim/cmsis_compiler.h supports GCC-compatible compilers only"
#endif

/* ---- compiler keywords -------------------------------------------------------------------- */
#ifndef __ASM
#define __ASM __asm
#endif
#ifndef __INLINE
#define __INLINE inline
#endif
#ifndef __STATIC_INLINE
#define __STATIC_INLINE static inline
#endif
#ifndef __STATIC_FORCEINLINE
#define __STATIC_FORCEINLINE __attribute__((always_inline)) static inline
#endif
#ifndef __NO_RETURN
#define __NO_RETURN __attribute__((__noreturn__))
#endif
#ifndef __USED
#define __USED __attribute__((used))
#endif
#ifndef __WEAK
#define __WEAK __attribute__((weak))
#endif
#ifndef __PACKED
#define __PACKED __attribute__((packed, aligned(1)))
#endif
#ifndef __PACKED_STRUCT
#define __PACKED_STRUCT struct __attribute__((packed, aligned(1)))
#endif
#ifndef __PACKED_UNION
#define __PACKED_UNION union __attribute__((packed, aligned(1)))
#endif
#ifndef __ALIGNED
#define __ALIGNED(x) __attribute__((aligned(x)))
#endif
#ifndef __RESTRICT
#define __RESTRICT __restrict
#endif

#if defined(__arm__) || defined(__thumb__)
/* ================================ Arm targets ============================================== */
#include <arm_acle.h>

/* Count leading zeros; 32 for 0 (CLZ instruction semantics). */
__STATIC_FORCEINLINE uint8_t __CLZ(uint32_t value)
{
    return (value == 0U) ? 32U : (uint8_t)__builtin_clz(value);
}

/* Rotate right by op2 mod 32 bits. */
__STATIC_FORCEINLINE uint32_t __ROR(uint32_t op1, uint32_t op2)
{
    op2 %= 32U;
    return (op2 == 0U) ? op1 : ((op1 >> op2) | (op1 << (32U - op2)));
}

#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
/* Signed saturation of ARG1 to ARG2 bits (1..32); ARG2 must be a compile-time constant. */
#define __SSAT(ARG1, ARG2) __ssat((int32_t)(ARG1), (ARG2))
/* Unsigned saturation of ARG1 to ARG2 bits (0..31); ARG2 must be a compile-time constant. */
#define __USAT(ARG1, ARG2) ((uint32_t)__usat((int32_t)(ARG1), (ARG2)))
#else
#define ASC_CMSIS_PORTABLE_SAT 1
#endif

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
/* 32-bit saturating add / subtract (QADD, QSUB). */
__STATIC_FORCEINLINE int32_t __QADD(int32_t op1, int32_t op2) { return __qadd(op1, op2); }
__STATIC_FORCEINLINE int32_t __QSUB(int32_t op1, int32_t op2) { return __qsub(op1, op2); }
#endif

#if defined(__ARM_FEATURE_SIMD32) && __ARM_FEATURE_SIMD32
/* Packed 8-bit / 16-bit SIMD (Armv7E-M DSP extension), CMSIS-Core argument types. */
__STATIC_FORCEINLINE uint32_t __QADD8(uint32_t a, uint32_t b) { return (uint32_t)__qadd8((int8x4_t)a, (int8x4_t)b); }
__STATIC_FORCEINLINE uint32_t __QSUB8(uint32_t a, uint32_t b) { return (uint32_t)__qsub8((int8x4_t)a, (int8x4_t)b); }
__STATIC_FORCEINLINE uint32_t __QADD16(uint32_t a, uint32_t b) { return (uint32_t)__qadd16((int16x2_t)a, (int16x2_t)b); }
__STATIC_FORCEINLINE uint32_t __QSUB16(uint32_t a, uint32_t b) { return (uint32_t)__qsub16((int16x2_t)a, (int16x2_t)b); }
__STATIC_FORCEINLINE uint32_t __SHADD16(uint32_t a, uint32_t b) { return (uint32_t)__shadd16((int16x2_t)a, (int16x2_t)b); }
__STATIC_FORCEINLINE uint32_t __SHSUB16(uint32_t a, uint32_t b) { return (uint32_t)__shsub16((int16x2_t)a, (int16x2_t)b); }
__STATIC_FORCEINLINE uint32_t __QASX(uint32_t a, uint32_t b) { return (uint32_t)__qasx((int16x2_t)a, (int16x2_t)b); }
__STATIC_FORCEINLINE uint32_t __QSAX(uint32_t a, uint32_t b) { return (uint32_t)__qsax((int16x2_t)a, (int16x2_t)b); }
__STATIC_FORCEINLINE uint32_t __SHASX(uint32_t a, uint32_t b) { return (uint32_t)__shasx((int16x2_t)a, (int16x2_t)b); }
__STATIC_FORCEINLINE uint32_t __SHSAX(uint32_t a, uint32_t b) { return (uint32_t)__shsax((int16x2_t)a, (int16x2_t)b); }
__STATIC_FORCEINLINE uint32_t __SXTB16(uint32_t a) { return (uint32_t)__sxtb16((int8x4_t)a); }
__STATIC_FORCEINLINE uint32_t __SMUAD(uint32_t a, uint32_t b) { return (uint32_t)__smuad((int16x2_t)a, (int16x2_t)b); }
__STATIC_FORCEINLINE uint32_t __SMUADX(uint32_t a, uint32_t b) { return (uint32_t)__smuadx((int16x2_t)a, (int16x2_t)b); }
__STATIC_FORCEINLINE uint32_t __SMUSD(uint32_t a, uint32_t b) { return (uint32_t)__smusd((int16x2_t)a, (int16x2_t)b); }
__STATIC_FORCEINLINE uint32_t __SMUSDX(uint32_t a, uint32_t b) { return (uint32_t)__smusdx((int16x2_t)a, (int16x2_t)b); }
__STATIC_FORCEINLINE uint32_t __SMLAD(uint32_t a, uint32_t b, uint32_t c)
{
    return (uint32_t)__smlad((int16x2_t)a, (int16x2_t)b, (int32_t)c);
}
__STATIC_FORCEINLINE uint32_t __SMLADX(uint32_t a, uint32_t b, uint32_t c)
{
    return (uint32_t)__smladx((int16x2_t)a, (int16x2_t)b, (int32_t)c);
}
__STATIC_FORCEINLINE uint32_t __SMLSDX(uint32_t a, uint32_t b, uint32_t c)
{
    return (uint32_t)__smlsdx((int16x2_t)a, (int16x2_t)b, (int32_t)c);
}
__STATIC_FORCEINLINE uint64_t __SMLALD(uint32_t a, uint32_t b, uint64_t acc)
{
    return (uint64_t)__smlald((int16x2_t)a, (int16x2_t)b, (int64_t)acc);
}
__STATIC_FORCEINLINE uint64_t __SMLALDX(uint32_t a, uint32_t b, uint64_t acc)
{
    return (uint64_t)__smlaldx((int16x2_t)a, (int16x2_t)b, (int64_t)acc);
}
/* Most-significant-word multiply-accumulate: op3 + ((op1 * op2) >> 32), truncating (SMMLA). */
__STATIC_FORCEINLINE int32_t __SMMLA(int32_t op1, int32_t op2, int32_t op3)
{
    int32_t result;
    __ASM("smmla %0, %1, %2, %3" : "=r"(result) : "r"(op1), "r"(op2), "r"(op3));
    return result;
}
/* Pack halfwords (PKHBT: bottom of ARG1, top of ARG2 << ARG3; PKHTB: top of ARG1, bottom of
 * ARG2 >> ARG3 arithmetic). Plain C: GCC selects the PKHBT / PKHTB instructions itself. */
#define __PKHBT(ARG1, ARG2, ARG3) \
    ((((uint32_t)(ARG1)) & 0x0000FFFFUL) | ((((uint32_t)(ARG2)) << (ARG3)) & 0xFFFF0000UL))
#define __PKHTB(ARG1, ARG2, ARG3) \
    ((((uint32_t)(ARG1)) & 0xFFFF0000UL) | (((uint32_t)(((int32_t)(ARG2)) >> (ARG3))) & 0x0000FFFFUL))
#endif /* __ARM_FEATURE_SIMD32 */

#else
/* ================================ host (x86-64, ...) ======================================= */
#define ASC_CMSIS_PORTABLE_SAT 1

/* Count leading zeros; 32 for 0. */
__STATIC_FORCEINLINE uint8_t __CLZ(uint32_t value)
{
    return (value == 0U) ? 32U : (uint8_t)__builtin_clz(value);
}

/* Rotate right by op2 mod 32 bits. */
__STATIC_FORCEINLINE uint32_t __ROR(uint32_t op1, uint32_t op2)
{
    op2 %= 32U;
    return (op2 == 0U) ? op1 : ((op1 >> op2) | (op1 << (32U - op2)));
}
#endif

#if defined(ASC_CMSIS_PORTABLE_SAT)
/* Signed saturation of val to sat bits (1..32): clamp to [-2^(sat-1), 2^(sat-1) - 1]. */
__STATIC_FORCEINLINE int32_t __SSAT(int32_t val, uint32_t sat)
{
    if (sat >= 1U && sat <= 32U) {
        const int32_t max = (int32_t)((1U << (sat - 1U)) - 1U);
        const int32_t min = -1 - max;
        if (val > max) {
            return max;
        }
        if (val < min) {
            return min;
        }
    }
    return val;
}

/* Unsigned saturation of val to sat bits (0..31): clamp to [0, 2^sat - 1]. */
__STATIC_FORCEINLINE uint32_t __USAT(int32_t val, uint32_t sat)
{
    if (sat <= 31U) {
        const uint32_t max = (1U << sat) - 1U;
        if (val > (int32_t)max) {
            return max;
        }
        if (val < 0) {
            return 0U;
        }
    }
    return (uint32_t)val;
}
#endif

#endif /* ASC_CMSIS_COMPILER_H */
