/* dist_quant_neon_dotprod.c -- int8 dot product with the Armv8.2 dot-product
 * instructions (FEAT_DotProd: Cortex-A55/A75 and later, Neoverse N1/V1,
 * Apple M1 and later).  CMake builds this file with whichever flag makes the
 * compiler accept them (-march=armv8.2-a+dotprod for GCC,
 * -mcpu=generic+dotprod for zig's clang), and dist.c selects it only when
 * the OS reports the feature (HWCAP_ASIMDDP on Linux, sysctl
 * hw.optional.arm.FEAT_DotProd on macOS; dist_cpu_*.c).
 *
 * sdot multiplies 16 int8 pairs and adds each group of four products into
 * an int32 lane: one instruction per 16 bytes, against three for the
 * widening path of dist_quant_neon.c.  Signed by signed, so unlike x86's
 * VNNI no bias is needed, and it would be exact even with -128.  Four
 * accumulators (64 bytes per iteration) hide sdot's latency; then 16-byte
 * steps, an 8-byte step with the 64-bit form, and a scalar loop for the
 * last n % 8 bytes.  Every result equals the scalar reference.  Pure
 * functions; any thread. */
#include "engram/dist.h"
#include "engram/quant.h"

#include <arm_neon.h>

static int32_t neon_dotprod_i8_dot(const int8_t *a, const int8_t *b, size_t n)
{
    int32x4_t s0 = vdupq_n_s32(0), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = vdotq_s32(s0, vld1q_s8(a + i), vld1q_s8(b + i));
        s1 = vdotq_s32(s1, vld1q_s8(a + i + 16), vld1q_s8(b + i + 16));
        s2 = vdotq_s32(s2, vld1q_s8(a + i + 32), vld1q_s8(b + i + 32));
        s3 = vdotq_s32(s3, vld1q_s8(a + i + 48), vld1q_s8(b + i + 48));
    }
    for (; i + 16 <= n; i += 16)
        s0 = vdotq_s32(s0, vld1q_s8(a + i), vld1q_s8(b + i));
    int32_t sum = vaddvq_s32(vaddq_s32(vaddq_s32(s0, s1), vaddq_s32(s2, s3)));
    if (i + 8 <= n) {
        sum += vaddv_s32(vdot_s32(vdup_n_s32(0), vld1_s8(a + i), vld1_s8(b + i)));
        i += 8;
    }
    for (; i < n; i++)
        sum += (int32_t)a[i] * (int32_t)b[i];
    return sum;
}

QUANT_Q8_RECORD_DIST(neon_dotprod_i8_q8_dist, neon_dotprod_i8_dot)

const dist_i8_kernels dist_neon_dotprod_i8 = {
    .name = "neon-dotprod",
    .dot = neon_dotprod_i8_dot,
    .q8_dist = neon_dotprod_i8_q8_dist,
};
