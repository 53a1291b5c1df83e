/* dist_quant_avx2.c -- int8 dot product and Hamming distance with AVX2 (built
 * with -mavx2 alone; dist.c selects them after checking AVX2 and that the OS
 * saves YMM state).  The float AVX2 kernels live in dist_avx2.c.
 *
 * int8 dot: the sign trick, and why -128 must never occur
 *   AVX2 has no int8 x int8 multiply.  vpmaddubsw multiplies unsigned bytes
 *   by signed bytes and adds neighbouring pairs into int16 with saturation.
 *   Write a_i * b_i = |a_i| * (b_i * sign(a_i)): vpabsb gives |a_i| as an
 *   unsigned byte, vpsignb gives b_i negated where a_i < 0 (zero where
 *   a_i = 0).  With every component in [-127, 127] (dist.h's contract):
 *     - b_i * sign(a_i) is still an int8 (negating -128 would wrap);
 *     - a pair sum is at most 2 * 127 * 127 = 32258 <= 32767, so the
 *       saturating add never saturates and the int16 is exact (with -128,
 *       2 * 128 * 128 = 32768 would clip to 32767).
 *   vpmaddwd against ones then widens neighbouring int16 pairs into int32
 *   lanes, exactly.  Five instructions per 32 bytes, against eight for
 *   sign-extending both operands to int16 (vpmovsxbw x 4, vpmaddwd x 2,
 *   vpaddd x 2).  Two accumulators, 64 bytes per iteration; the last n % 32
 *   bytes go through a scalar loop.
 *
 * Hamming: popcount by nibble lookup
 *   AVX2 has no vector popcount.  vpshufb looks up 32 bytes at once in a
 *   16-entry table, so the popcount of each byte is table[low nibble] +
 *   table[high nibble] (0..8), and vpsadbw against zero adds each group of
 *   eight bytes into a 64-bit lane.  The 1-3 words past the last full
 *   vector are loaded with vpmaskmovq (masked-off lanes read as zero and
 *   never touch memory), so no scalar popcount is needed: this file does not
 *   require the POPCNT instruction.
 *
 * Integer sums are exact in any order: every result equals the scalar
 * reference.  Pure functions; any thread. */
#include "engram/dist.h"
#include "engram/quant.h"

#include <immintrin.h>

static inline int32_t avx2_hsum_epi32(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

/* acc + the int32 pair sums of a * b over 32 bytes (see the header). */
static inline __m256i avx2_i8_term(__m256i a, __m256i b, __m256i acc)
{
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i p16 = _mm256_maddubs_epi16(_mm256_abs_epi8(a), _mm256_sign_epi8(b, a));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p16, ones));
}

static int32_t avx2_i8_dot(const int8_t *a, const int8_t *b, size_t n)
{
    __m256i s0 = _mm256_setzero_si256(), s1 = s0;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = avx2_i8_term(_mm256_loadu_si256((const __m256i *)(a + i)),
                          _mm256_loadu_si256((const __m256i *)(b + i)), s0);
        s1 = avx2_i8_term(_mm256_loadu_si256((const __m256i *)(a + i + 32)),
                          _mm256_loadu_si256((const __m256i *)(b + i + 32)), s1);
    }
    if (i + 32 <= n) {
        s0 = avx2_i8_term(_mm256_loadu_si256((const __m256i *)(a + i)),
                          _mm256_loadu_si256((const __m256i *)(b + i)), s0);
        i += 32;
    }
    int32_t sum = avx2_hsum_epi32(_mm256_add_epi32(s0, s1));
    for (; i < n; i++)
        sum += (int32_t)a[i] * (int32_t)b[i];
    return sum;
}

/* Four 64-bit counts: the set bits of each 64-bit lane of x. */
static inline __m256i avx2_popcnt_epi64(__m256i x)
{
    const __m256i table = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                           0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i nibble = _mm256_set1_epi8(0x0F);
    __m256i lo = _mm256_and_si256(x, nibble);
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), nibble);
    __m256i bytes = _mm256_add_epi8(_mm256_shuffle_epi8(table, lo), _mm256_shuffle_epi8(table, hi));
    return _mm256_sad_epu8(bytes, _mm256_setzero_si256());
}

static inline __m256i avx2_xor_load(const uint64_t *a, const uint64_t *b)
{
    return _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)a),
                            _mm256_loadu_si256((const __m256i *)b));
}

static uint64_t avx2_hamming(const uint64_t *a, const uint64_t *b, size_t words)
{
    __m256i s0 = _mm256_setzero_si256(), s1 = s0;
    size_t i = 0;
    for (; i + 8 <= words; i += 8) {
        s0 = _mm256_add_epi64(s0, avx2_popcnt_epi64(avx2_xor_load(a + i, b + i)));
        s1 = _mm256_add_epi64(s1, avx2_popcnt_epi64(avx2_xor_load(a + i + 4, b + i + 4)));
    }
    if (i + 4 <= words) {
        s0 = _mm256_add_epi64(s0, avx2_popcnt_epi64(avx2_xor_load(a + i, b + i)));
        i += 4;
    }
    if (i < words) {
        /* Lane j is loaded when j < words - i (1..3): the sign bit of each
         * mask lane decides. */
        __m256i left = _mm256_set1_epi64x((long long)(words - i));
        __m256i mask = _mm256_cmpgt_epi64(left, _mm256_setr_epi64x(0, 1, 2, 3));
        __m256i x = _mm256_xor_si256(_mm256_maskload_epi64((const long long *)(a + i), mask),
                                     _mm256_maskload_epi64((const long long *)(b + i), mask));
        s1 = _mm256_add_epi64(s1, avx2_popcnt_epi64(x));
    }
    __m256i s = _mm256_add_epi64(s0, s1);
    __m128i h = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    return (uint64_t)_mm_cvtsi128_si64(h) + (uint64_t)_mm_extract_epi64(h, 1);
}

QUANT_Q8_RECORD_DIST(avx2_i8_q8_dist, avx2_i8_dot)

const dist_i8_kernels dist_avx2_i8 = {
    .name = "avx2",
    .dot = avx2_i8_dot,
    .q8_dist = avx2_i8_q8_dist,
};

QUANT_BIN_RECORD_DIST(avx2_bin_dist, avx2_hamming)

const dist_bin_kernels dist_avx2_bin = {
    .name = "avx2",
    .hamming = avx2_hamming,
    .bin_dist = avx2_bin_dist,
};
