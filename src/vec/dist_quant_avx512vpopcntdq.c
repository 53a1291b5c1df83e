/* dist_quant_avx512vpopcntdq.c -- Hamming distance with AVX-512 VPOPCNTDQ
 * (built with -mavx512f -mavx512vpopcntdq; dist.c selects it after checking
 * both, AVX2 and FMA, and that the OS saves ZMM state).  Ice Lake, Zen 4
 * and later.
 *
 * vpopcntq counts the set bits of eight 64-bit lanes in one instruction,
 * replacing the five-instruction nibble lookup of dist_quant_avx512bw.c:
 * per 8 words, two loads, one XOR, one popcount, one add.  Two
 * accumulators (16 words per iteration); the last words % 8 words come in
 * through zero-masked loads (masked-off lanes read as zero and never touch
 * memory).  Every result equals the scalar reference.  Pure functions; any
 * thread. */
#include "engram/dist.h"
#include "engram/quant.h"

#include <immintrin.h>

static inline __m512i vpopcnt_xor_count(const uint64_t *a, const uint64_t *b)
{
    return _mm512_popcnt_epi64(_mm512_xor_si512(_mm512_loadu_si512(a), _mm512_loadu_si512(b)));
}

static uint64_t vpopcnt_hamming(const uint64_t *a, const uint64_t *b, size_t words)
{
    __m512i s0 = _mm512_setzero_si512(), s1 = s0;
    size_t i = 0;
    for (; i + 16 <= words; i += 16) {
        s0 = _mm512_add_epi64(s0, vpopcnt_xor_count(a + i, b + i));
        s1 = _mm512_add_epi64(s1, vpopcnt_xor_count(a + i + 8, b + i + 8));
    }
    if (i + 8 <= words) {
        s0 = _mm512_add_epi64(s0, vpopcnt_xor_count(a + i, b + i));
        i += 8;
    }
    if (i < words) {
        __mmask8 m = (__mmask8)((1u << (words - i)) - 1u); /* words - i in [1, 7] */
        __m512i x = _mm512_xor_si512(_mm512_maskz_loadu_epi64(m, a + i),
                                     _mm512_maskz_loadu_epi64(m, b + i));
        s1 = _mm512_add_epi64(s1, _mm512_popcnt_epi64(x));
    }
    return (uint64_t)_mm512_reduce_add_epi64(_mm512_add_epi64(s0, s1));
}

QUANT_BIN_RECORD_DIST(avx512vpopcntdq_bin_dist, vpopcnt_hamming)

const dist_bin_kernels dist_avx512vpopcntdq_bin = {
    .name = "avx512vpopcntdq",
    .hamming = vpopcnt_hamming,
    .bin_dist = avx512vpopcntdq_bin_dist,
};
