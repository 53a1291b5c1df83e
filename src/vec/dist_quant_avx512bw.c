/* dist_quant_avx512bw.c -- int8 dot product and Hamming distance with
 * AVX-512BW (built with -mavx512f -mavx512bw; dist.c selects them after
 * checking AVX512F, AVX512BW -- and AVX2 and FMA, which GCC's -mavx512f
 * implies -- and that the OS saves ZMM state).  For CPUs with AVX-512 but
 * without VNNI (int8) or VPOPCNTDQ (Hamming): Skylake-SP, Cascade Lake's
 * popcount; dist_quant_avx512vnni.c and dist_quant_avx512vpopcntdq.c take
 * over where those exist.
 *
 * int8 dot: the sign trick of dist_quant_avx2.c on 64 bytes
 *   a_i * b_i = |a_i| * (b_i * sign(a_i)); vpmaddubsw multiplies the
 *   unsigned |a_i| by the signed b_i * sign(a_i) and adds pairs into int16,
 *   exactly because no component is -128 (a pair is at most 2 * 127^2 =
 *   32258; see that file).  AVX-512 dropped vpsignb, so the sign comes from
 *   a mask instead: vpmovb2m takes the sign bits of a, and a masked
 *   subtraction from zero negates b where a_i < 0 (where a_i = 0, |a_i| = 0
 *   and b's sign does not matter).  vpmaddwd against ones widens to int32.
 *   The last n % 64 bytes come in through a masked load (vmovdqu8 with a
 *   zeroing mask): masked-off bytes read as zero, contribute 0, and never
 *   touch memory, so there is no scalar tail.
 *
 * Hamming: the nibble-lookup popcount of dist_quant_avx2.c (vpshufb +
 *   vpsadbw) on 64 bytes; the last words % 8 words through a masked load.
 *
 * Two accumulators per kernel (128 bytes per iteration).  Integer sums are
 * exact in any order: every result equals the scalar reference.  Pure
 * functions; any thread. */
#include "engram/dist.h"
#include "engram/quant.h"

#include <immintrin.h>

/* acc + the int32 pair sums of a * b over 64 bytes (see the header). */
static inline __m512i avx512bw_i8_term(__m512i a, __m512i b, __m512i acc)
{
    const __m512i ones = _mm512_set1_epi16(1);
    __mmask64 negative = _mm512_movepi8_mask(a);
    __m512i signed_b = _mm512_mask_sub_epi8(b, negative, _mm512_setzero_si512(), b);
    __m512i p16 = _mm512_maddubs_epi16(_mm512_abs_epi8(a), signed_b);
    return _mm512_add_epi32(acc, _mm512_madd_epi16(p16, ones));
}

static int32_t avx512bw_i8_dot(const int8_t *a, const int8_t *b, size_t n)
{
    __m512i s0 = _mm512_setzero_si512(), s1 = s0;
    size_t i = 0;
    for (; i + 128 <= n; i += 128) {
        s0 = avx512bw_i8_term(_mm512_loadu_si512(a + i), _mm512_loadu_si512(b + i), s0);
        s1 = avx512bw_i8_term(_mm512_loadu_si512(a + i + 64), _mm512_loadu_si512(b + i + 64), s1);
    }
    if (i + 64 <= n) {
        s0 = avx512bw_i8_term(_mm512_loadu_si512(a + i), _mm512_loadu_si512(b + i), s0);
        i += 64;
    }
    if (i < n) {
        __mmask64 m = (__mmask64)(~0ull >> (64 - (n - i))); /* n - i in [1, 63] */
        s1 = avx512bw_i8_term(_mm512_maskz_loadu_epi8(m, a + i), _mm512_maskz_loadu_epi8(m, b + i),
                              s1);
    }
    return _mm512_reduce_add_epi32(_mm512_add_epi32(s0, s1));
}

/* Eight 64-bit counts: the set bits of each 64-bit lane of x. */
static inline __m512i avx512bw_popcnt_epi64(__m512i x)
{
    const __m512i table = _mm512_broadcast_i32x4(
        _mm_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4));
    const __m512i nibble = _mm512_set1_epi8(0x0F);
    __m512i lo = _mm512_and_si512(x, nibble);
    __m512i hi = _mm512_and_si512(_mm512_srli_epi16(x, 4), nibble);
    __m512i bytes = _mm512_add_epi8(_mm512_shuffle_epi8(table, lo), _mm512_shuffle_epi8(table, hi));
    return _mm512_sad_epu8(bytes, _mm512_setzero_si512());
}

static uint64_t avx512bw_hamming(const uint64_t *a, const uint64_t *b, size_t words)
{
    __m512i s0 = _mm512_setzero_si512(), s1 = s0;
    size_t i = 0;
    for (; i + 16 <= words; i += 16) {
        s0 = _mm512_add_epi64(s0, avx512bw_popcnt_epi64(_mm512_xor_si512(
                                      _mm512_loadu_si512(a + i), _mm512_loadu_si512(b + i))));
        s1 = _mm512_add_epi64(s1, avx512bw_popcnt_epi64(_mm512_xor_si512(
                                      _mm512_loadu_si512(a + i + 8), _mm512_loadu_si512(b + i + 8))));
    }
    if (i + 8 <= words) {
        s0 = _mm512_add_epi64(s0, avx512bw_popcnt_epi64(_mm512_xor_si512(
                                      _mm512_loadu_si512(a + i), _mm512_loadu_si512(b + i))));
        i += 8;
    }
    if (i < words) {
        __mmask8 m = (__mmask8)((1u << (words - i)) - 1u); /* words - i in [1, 7] */
        s1 = _mm512_add_epi64(s1, avx512bw_popcnt_epi64(_mm512_xor_si512(
                                      _mm512_maskz_loadu_epi64(m, a + i),
                                      _mm512_maskz_loadu_epi64(m, b + i))));
    }
    return (uint64_t)_mm512_reduce_add_epi64(_mm512_add_epi64(s0, s1));
}

QUANT_Q8_RECORD_DIST(avx512bw_i8_q8_dist, avx512bw_i8_dot)

const dist_i8_kernels dist_avx512bw_i8 = {
    .name = "avx512bw",
    .dot = avx512bw_i8_dot,
    .q8_dist = avx512bw_i8_q8_dist,
};

QUANT_BIN_RECORD_DIST(avx512bw_bin_dist, avx512bw_hamming)

const dist_bin_kernels dist_avx512bw_bin = {
    .name = "avx512bw",
    .hamming = avx512bw_hamming,
    .bin_dist = avx512bw_bin_dist,
};
