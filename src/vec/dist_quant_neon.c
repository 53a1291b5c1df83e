/* dist_quant_neon.c -- int8 dot product and Hamming distance with AArch64
 * Advanced SIMD (NEON), the base ISA: no extra flags, always usable where
 * compiled (aarch64 only).  Cores with the Armv8.2 dot-product instructions
 * use dist_quant_neon_dotprod.c for int8 instead.
 *
 * int8 dot: widening multiplies, two products per int16
 *   smull multiplies eight int8 pairs into int16 lanes (|a_i * b_i| <=
 *   127^2 = 16129), and smlal2 adds the products of the upper eight into the
 *   same lanes: each lane holds a_k b_k + a_(k+8) b_(k+8), at most 2 * 127^2
 *   = 32258 <= 32767 -- exact only because no component is -128 (2 * 128^2
 *   would wrap).  sadalp then adds neighbouring int16 lanes into int32
 *   accumulators.  Three instructions per 16 bytes; two accumulators, 32
 *   bytes per iteration; the last n % 16 bytes through a scalar loop (NEON
 *   has no masked loads).
 *
 * Hamming: cnt counts the bits of each byte (0..8), uadalp adds neighbouring
 *   byte counts into uint16 lanes.  A uint16 lane gains at most 16 per 16
 *   bytes, so the lanes are emptied into the total every NEON_HAM_BLOCK words,
 *   long before 65535.  An odd last word goes through the 64-bit forms.
 *
 * Integer sums are exact in any order: every result equals the scalar
 * reference (tests/cross/arm64.sh runs this file under qemu-aarch64).  Pure
 * functions; any thread. */
#include "engram/dist.h"
#include "engram/quant.h"

#include <arm_neon.h>

/* Words per round of the uint16 counters: a round feeds each of the two
 * accumulators at most 4096 / 4 + 1 steps of 16 bytes, each adding at most
 * 16 (two byte counts) to a lane: <= 16400, far below 65535. */
#define NEON_HAM_BLOCK 4096

static inline int32x4_t neon_i8_term(int8x16_t a, int8x16_t b, int32x4_t acc)
{
    int16x8_t p = vmull_s8(vget_low_s8(a), vget_low_s8(b));
    p = vmlal_high_s8(p, a, b);
    return vpadalq_s16(acc, p);
}

static int32_t neon_i8_dot(const int8_t *a, const int8_t *b, size_t n)
{
    int32x4_t s0 = vdupq_n_s32(0), s1 = s0;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = neon_i8_term(vld1q_s8(a + i), vld1q_s8(b + i), s0);
        s1 = neon_i8_term(vld1q_s8(a + i + 16), vld1q_s8(b + i + 16), s1);
    }
    if (i + 16 <= n) {
        s0 = neon_i8_term(vld1q_s8(a + i), vld1q_s8(b + i), s0);
        i += 16;
    }
    int32_t sum = vaddvq_s32(vaddq_s32(s0, s1));
    for (; i < n; i++)
        sum += (int32_t)a[i] * (int32_t)b[i];
    return sum;
}

static inline uint8x16_t neon_xor_count(const uint64_t *a, const uint64_t *b)
{
    return vcntq_u8(vreinterpretq_u8_u64(veorq_u64(vld1q_u64(a), vld1q_u64(b))));
}

static uint64_t neon_hamming(const uint64_t *a, const uint64_t *b, size_t words)
{
    uint64_t total = 0;
    size_t i = 0;
    while (i + 2 <= words) {
        size_t end = words - i > NEON_HAM_BLOCK ? i + NEON_HAM_BLOCK : words;
        uint16x8_t c0 = vdupq_n_u16(0), c1 = c0;
        for (; i + 4 <= end; i += 4) {
            c0 = vpadalq_u8(c0, neon_xor_count(a + i, b + i));
            c1 = vpadalq_u8(c1, neon_xor_count(a + i + 2, b + i + 2));
        }
        if (i + 2 <= end) {
            c0 = vpadalq_u8(c0, neon_xor_count(a + i, b + i));
            i += 2;
        }
        total += vaddlvq_u16(vaddq_u16(c0, c1));
    }
    if (i < words) {
        uint8x8_t x = vreinterpret_u8_u64(veor_u64(vld1_u64(a + i), vld1_u64(b + i)));
        total += vaddv_u8(vcnt_u8(x)); /* <= 64: fits the uint8 sum */
    }
    return total;
}

QUANT_Q8_RECORD_DIST(neon_i8_q8_dist, neon_i8_dot)

const dist_i8_kernels dist_neon_i8 = {
    .name = "neon",
    .dot = neon_i8_dot,
    .q8_dist = neon_i8_q8_dist,
};

QUANT_BIN_RECORD_DIST(neon_bin_dist, neon_hamming)

const dist_bin_kernels dist_neon_bin = {
    .name = "neon",
    .hamming = neon_hamming,
    .bin_dist = neon_bin_dist,
};
