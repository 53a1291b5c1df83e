/* dist_quant_avx512vnni.c -- int8 dot product with AVX-512 VNNI (built with
 * -mavx512f -mavx512bw -mavx512vnni; dist.c selects it after checking those
 * three, AVX2 and FMA, and that the OS saves ZMM state).  Ice Lake, Sapphire
 * Rapids, Zen 4 and later.
 *
 * vpdpbusd multiplies 64 unsigned bytes by 64 signed bytes and adds each
 * group of four products into an int32 lane: one instruction per 64 bytes
 * instead of four (dist_quant_avx512bw.c).  Both our operands are signed,
 * so one is biased into the unsigned range: flipping the sign bit
 * (XOR 0x80) turns the int8 a_i into the uint8 a_i + 128, and
 *     sum (a_i + 128) * b_i  =  sum a_i * b_i  +  128 * sum b_i.
 * A second vpdpbusd with all-ones bytes as the unsigned operand computes
 * sum b_i in lanes of its own, and each lane subtracts 128 times it at the
 * end.  Why this is exact:
 *   - vpdpbusd (unlike vpdpbusds) never saturates: its four products, each
 *     at most 255 * 127 in magnitude, are summed in 32 bits and added to the
 *     lane modulo 2^32.
 *   - A lane sees n / 16 components, so with n <= DIST_I8_DIM_MAX its biased
 *     sum stays below 2^13 * 255 * 127 < 2^28 and never even wraps.  (Were
 *     it to wrap, the result would still be exact: the lanes compute modulo
 *     2^32, and the corrected value of a lane -- the sum of a_i * b_i over
 *     its components -- fits int32.)  So does the sum of the lanes.
 *   - The alternative, the sign trick of the BW kernel (|a| as the unsigned
 *     operand, b negated where a < 0), needs vpabsb, vpmovb2m and a masked
 *     vpsubb beside one vpdpbusd: four instructions per 64 bytes, against
 *     three here (vpxord and two vpdpbusd).
 * The last n % 64 bytes come in through zero-masked loads: a masked-off a
 * byte becomes 0 ^ 0x80 = 128 after the bias, but its b byte is 0, so it adds
 * nothing to either sum.  Two product and two sum accumulators, 128 bytes
 * per iteration.  Every result equals the scalar reference.  Pure
 * functions; any thread. */
#include "engram/dist.h"
#include "engram/quant.h"

#include <immintrin.h>

static int32_t avx512vnni_i8_dot(const int8_t *a, const int8_t *b, size_t n)
{
    const __m512i bias = _mm512_set1_epi8((char)0x80), ones = _mm512_set1_epi8(1);
    __m512i p0 = _mm512_setzero_si512(), p1 = p0, s0 = p0, s1 = p0;
    size_t i = 0;
    for (; i + 128 <= n; i += 128) {
        __m512i b0 = _mm512_loadu_si512(b + i), b1 = _mm512_loadu_si512(b + i + 64);
        p0 = _mm512_dpbusd_epi32(p0, _mm512_xor_si512(_mm512_loadu_si512(a + i), bias), b0);
        p1 = _mm512_dpbusd_epi32(p1, _mm512_xor_si512(_mm512_loadu_si512(a + i + 64), bias), b1);
        s0 = _mm512_dpbusd_epi32(s0, ones, b0);
        s1 = _mm512_dpbusd_epi32(s1, ones, b1);
    }
    if (i + 64 <= n) {
        __m512i b0 = _mm512_loadu_si512(b + i);
        p0 = _mm512_dpbusd_epi32(p0, _mm512_xor_si512(_mm512_loadu_si512(a + i), bias), b0);
        s0 = _mm512_dpbusd_epi32(s0, ones, b0);
        i += 64;
    }
    if (i < n) {
        __mmask64 m = (__mmask64)(~0ull >> (64 - (n - i))); /* n - i in [1, 63] */
        __m512i b1 = _mm512_maskz_loadu_epi8(m, b + i);
        p1 = _mm512_dpbusd_epi32(p1, _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, a + i), bias), b1);
        s1 = _mm512_dpbusd_epi32(s1, ones, b1);
    }
    /* Per lane: biased products - 128 * sum of b (modulo 2^32, see above). */
    __m512i p = _mm512_add_epi32(p0, p1), s = _mm512_add_epi32(s0, s1);
    return _mm512_reduce_add_epi32(_mm512_sub_epi32(p, _mm512_slli_epi32(s, 7)));
}

QUANT_Q8_RECORD_DIST(avx512vnni_i8_q8_dist, avx512vnni_i8_dot)

const dist_i8_kernels dist_avx512vnni_i8 = {
    .name = "avx512vnni",
    .dot = avx512vnni_i8_dot,
    .q8_dist = avx512vnni_i8_q8_dist,
};
