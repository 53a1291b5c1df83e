/* dist_avx512.c -- AVX-512F kernels (built with -mavx512f -mfma; dist.c only
 * selects them after checking AVX512F, FMA and that the OS saves ZMM state).
 *
 * Why the loops look the way they do
 *   - Loads bound the pair kernels: every FMA needs two fresh 512-bit loads
 *     (a and b), and a core loads at most two per cycle, so a pair kernel
 *     can issue at most one FMA per cycle -- half the peak of a core with
 *     two FMA units (Zen 4/5, Skylake-SP and later).  The one-to-many
 *     kernels beat that bound by loading each chunk of the query once for
 *     four base vectors (5 loads per 4 FMAs).
 *   - Latency: an FMA's result is ready ~4 cycles after issue.  With one
 *     accumulator the loop would wait on itself every step.  Four chains
 *     already match the load bound; the pair kernels keep eight (128 floats
 *     per iteration) to halve the dependency chain of a single call, which
 *     is what HNSW waits on: it inspects each distance before the next
 *     candidate.  The one-to-many kernels keep eight as well (4 vectors x
 *     2 chunks); AVX-512 has 32 registers, so none of this spills.
 *   - Tails use masked loads (_mm512_maskz_loadu_ps): masked-off lanes read
 *     as zero, contribute 0 to both sums, and never touch memory, so there is
 *     no scalar tail and no read past the end of a vector.
 *   - Unaligned loads everywhere: vectors live inside records at arbitrary
 *     float offsets, and on current cores an unaligned load that does not
 *     cross a cache line costs the same as an aligned one.
 *   - The one-to-many kernels prefetch the next group of four vectors, one
 *     line per vector per step, so records far apart (stride > dim) arrive
 *     before they are used.  For a dense block the hardware prefetcher does
 *     as well, and the extra prefetches cost nothing measurable in L1.
 *
 * The summation order differs from the scalar reference (16 lanes x 8
 * accumulators, then a tree), so results differ from it by rounding only;
 * the tests bound that difference.  Also holds the FMA peak probe used by
 * bench/bench_kernels.c.  Pure functions; any thread. */
#include "engram/dist.h"

#include <immintrin.h>

/* Base vectors handled together by the one-to-many kernels. */
#define AVX512_GROUP 4
/* Helpers taking an `l2` flag are always inlined: the flag is a constant at
 * each call site only after inlining, and only then does the compiler emit
 * separate branch-free l2 and dot loops (at -O2 GCC otherwise keeps one
 * shared out-of-line copy that tests the flag inside the loop). */
#define AVX512_INLINE static inline __attribute__((always_inline))

static inline __mmask16 avx512_tail_mask(size_t left)
{
    return (__mmask16)((1u << left) - 1u); /* left in [1, 15] */
}

AVX512_INLINE __m512 avx512_term(int l2, __m512 q, __m512 x, __m512 acc)
{
    if (l2) {
        __m512 d = _mm512_sub_ps(q, x);
        return _mm512_fmadd_ps(d, d, acc);
    }
    return _mm512_fmadd_ps(q, x, acc);
}

AVX512_INLINE float avx512_pair(int l2, const float *a, const float *b, size_t dim)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    __m512 s4 = s0, s5 = s0, s6 = s0, s7 = s0;
    size_t i = 0;
    for (; i + 128 <= dim; i += 128) {
        s0 = avx512_term(l2, _mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = avx512_term(l2, _mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
        s2 = avx512_term(l2, _mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
        s3 = avx512_term(l2, _mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
        s4 = avx512_term(l2, _mm512_loadu_ps(a + i + 64), _mm512_loadu_ps(b + i + 64), s4);
        s5 = avx512_term(l2, _mm512_loadu_ps(a + i + 80), _mm512_loadu_ps(b + i + 80), s5);
        s6 = avx512_term(l2, _mm512_loadu_ps(a + i + 96), _mm512_loadu_ps(b + i + 96), s6);
        s7 = avx512_term(l2, _mm512_loadu_ps(a + i + 112), _mm512_loadu_ps(b + i + 112), s7);
    }
    /* At most seven chunks left: alternate two chains rather than one. */
    for (; i + 32 <= dim; i += 32) {
        s0 = avx512_term(l2, _mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = avx512_term(l2, _mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    if (i + 16 <= dim) {
        s2 = avx512_term(l2, _mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s2);
        i += 16;
    }
    if (i < dim) {
        __mmask16 m = avx512_tail_mask(dim - i);
        s3 = avx512_term(l2, _mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s3);
    }
    /* Add as a tree: balanced rounding, short dependency chain. */
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)),
                             _mm512_add_ps(_mm512_add_ps(s4, s5), _mm512_add_ps(s6, s7)));
    return _mm512_reduce_add_ps(s);
}

static float avx512_l2sq(const void *va, const void *vb, size_t dim)
{
    const float *a = va, *b = vb;
    return avx512_pair(1, a, b, dim);
}

static float avx512_dot(const void *va, const void *vb, size_t dim)
{
    const float *a = va, *b = vb;
    return avx512_pair(0, a, b, dim);
}

AVX512_INLINE void avx512_prefetch4(const float *v0, const float *v1, const float *v2,
                                    const float *v3, size_t at)
{
    _mm_prefetch((const char *)(v0 + at), _MM_HINT_T0);
    _mm_prefetch((const char *)(v1 + at), _MM_HINT_T0);
    _mm_prefetch((const char *)(v2 + at), _MM_HINT_T0);
    _mm_prefetch((const char *)(v3 + at), _MM_HINT_T0);
}

/* One-to-many, four base vectors per pass, two chunks each: eight named
 * accumulators (e = even chunk, o = odd chunk), each query chunk loaded once
 * for four vectors.  Vectors left over (n % 4) go through the pair kernel. */
AVX512_INLINE void avx512_many(int l2, const float *q, const float *base, size_t n,
                               size_t stride, size_t dim, float *out)
{
    size_t i = 0;
    for (; i + AVX512_GROUP <= n; i += AVX512_GROUP) {
        const float *v0 = base + i * stride, *v1 = v0 + stride;
        const float *v2 = v1 + stride, *v3 = v2 + stride;
        /* Prefetch only while a next group exists: a prefetch past the end
         * cannot fault, but it would pull in memory that is not ours. */
        int pf = i + 2 * AVX512_GROUP <= n;
        size_t ahead = AVX512_GROUP * stride;
        __m512 e0 = _mm512_setzero_ps(), e1 = e0, e2 = e0, e3 = e0;
        __m512 o0 = e0, o1 = e0, o2 = e0, o3 = e0;
        size_t j = 0;
        for (; j + 32 <= dim; j += 32) {
            if (pf) {
                avx512_prefetch4(v0, v1, v2, v3, ahead + j);
                avx512_prefetch4(v0, v1, v2, v3, ahead + j + 16);
            }
            __m512 qe = _mm512_loadu_ps(q + j), qo = _mm512_loadu_ps(q + j + 16);
            e0 = avx512_term(l2, qe, _mm512_loadu_ps(v0 + j), e0);
            e1 = avx512_term(l2, qe, _mm512_loadu_ps(v1 + j), e1);
            e2 = avx512_term(l2, qe, _mm512_loadu_ps(v2 + j), e2);
            e3 = avx512_term(l2, qe, _mm512_loadu_ps(v3 + j), e3);
            o0 = avx512_term(l2, qo, _mm512_loadu_ps(v0 + j + 16), o0);
            o1 = avx512_term(l2, qo, _mm512_loadu_ps(v1 + j + 16), o1);
            o2 = avx512_term(l2, qo, _mm512_loadu_ps(v2 + j + 16), o2);
            o3 = avx512_term(l2, qo, _mm512_loadu_ps(v3 + j + 16), o3);
        }
        if (j + 16 <= dim) {
            if (pf) avx512_prefetch4(v0, v1, v2, v3, ahead + j);
            __m512 qe = _mm512_loadu_ps(q + j);
            e0 = avx512_term(l2, qe, _mm512_loadu_ps(v0 + j), e0);
            e1 = avx512_term(l2, qe, _mm512_loadu_ps(v1 + j), e1);
            e2 = avx512_term(l2, qe, _mm512_loadu_ps(v2 + j), e2);
            e3 = avx512_term(l2, qe, _mm512_loadu_ps(v3 + j), e3);
            j += 16;
        }
        if (j < dim) {
            if (pf) avx512_prefetch4(v0, v1, v2, v3, ahead + j);
            __mmask16 m = avx512_tail_mask(dim - j);
            __m512 qo = _mm512_maskz_loadu_ps(m, q + j);
            o0 = avx512_term(l2, qo, _mm512_maskz_loadu_ps(m, v0 + j), o0);
            o1 = avx512_term(l2, qo, _mm512_maskz_loadu_ps(m, v1 + j), o1);
            o2 = avx512_term(l2, qo, _mm512_maskz_loadu_ps(m, v2 + j), o2);
            o3 = avx512_term(l2, qo, _mm512_maskz_loadu_ps(m, v3 + j), o3);
        }
        out[i] = _mm512_reduce_add_ps(_mm512_add_ps(e0, o0));
        out[i + 1] = _mm512_reduce_add_ps(_mm512_add_ps(e1, o1));
        out[i + 2] = _mm512_reduce_add_ps(_mm512_add_ps(e2, o2));
        out[i + 3] = _mm512_reduce_add_ps(_mm512_add_ps(e3, o3));
    }
    for (; i < n; i++)
        out[i] = avx512_pair(l2, q, base + i * stride, dim);
}

static void avx512_l2sq_many(const float *q, const float *base, size_t n, size_t stride,
                             size_t dim, float *out)
{
    avx512_many(1, q, base, n, stride, dim, out);
}

static void avx512_dot_many(const float *q, const float *base, size_t n, size_t stride,
                            size_t dim, float *out)
{
    avx512_many(0, q, base, n, stride, dim, out);
}

const dist_kernels dist_avx512_kernels = {
    .name = "avx512",
    .l2sq = avx512_l2sq,
    .dot = avx512_dot,
    .l2sq_many = avx512_l2sq_many,
    .dot_many = avx512_dot_many,
};

/* Peak probe for bench/bench_kernels.c (not part of dist.h's contract):
 * iters x 16 independent 512-bit FMA chains with no memory traffic, so the
 * core's FMA units, not latency or loads, are the limit.  16 chains cover
 * latency 4 x 2 FMA units with margin.  Returns a value derived from every
 * chain so the compiler cannot drop any.  FLOPs = iters * 16 * 16 * 2. */
float dist_avx512_peak_probe(size_t iters);
float dist_avx512_peak_probe(size_t iters)
{
    /* Named variables, not an array: GCC -O2 would keep an array in memory
     * and the probe would measure store forwarding instead. */
    const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    /* Distinct starting values: equal chains would be merged into one. */
    __m512 a0 = _mm512_set1_ps(1.00f), a1 = _mm512_set1_ps(1.01f), a2 = _mm512_set1_ps(1.02f);
    __m512 a3 = _mm512_set1_ps(1.03f), a4 = _mm512_set1_ps(1.04f), a5 = _mm512_set1_ps(1.05f);
    __m512 a6 = _mm512_set1_ps(1.06f), a7 = _mm512_set1_ps(1.07f), a8 = _mm512_set1_ps(1.08f);
    __m512 a9 = _mm512_set1_ps(1.09f), a10 = _mm512_set1_ps(1.10f), a11 = _mm512_set1_ps(1.11f);
    __m512 a12 = _mm512_set1_ps(1.12f), a13 = _mm512_set1_ps(1.13f);
    __m512 a14 = _mm512_set1_ps(1.14f), a15 = _mm512_set1_ps(1.15f);
    for (size_t it = 0; it < iters; it++) {
        a0 = _mm512_fmadd_ps(a0, m, c), a1 = _mm512_fmadd_ps(a1, m, c);
        a2 = _mm512_fmadd_ps(a2, m, c), a3 = _mm512_fmadd_ps(a3, m, c);
        a4 = _mm512_fmadd_ps(a4, m, c), a5 = _mm512_fmadd_ps(a5, m, c);
        a6 = _mm512_fmadd_ps(a6, m, c), a7 = _mm512_fmadd_ps(a7, m, c);
        a8 = _mm512_fmadd_ps(a8, m, c), a9 = _mm512_fmadd_ps(a9, m, c);
        a10 = _mm512_fmadd_ps(a10, m, c), a11 = _mm512_fmadd_ps(a11, m, c);
        a12 = _mm512_fmadd_ps(a12, m, c), a13 = _mm512_fmadd_ps(a13, m, c);
        a14 = _mm512_fmadd_ps(a14, m, c), a15 = _mm512_fmadd_ps(a15, m, c);
    }
    __m512 s0 = _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3));
    __m512 s1 = _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7));
    __m512 s2 = _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11));
    __m512 s3 = _mm512_add_ps(_mm512_add_ps(a12, a13), _mm512_add_ps(a14, a15));
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}
