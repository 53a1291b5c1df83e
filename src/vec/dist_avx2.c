/* dist_avx2.c -- AVX2 + FMA kernels (built with -mavx2 -mfma; dist.c only
 * selects them after checking AVX2, FMA and that the OS saves YMM state).
 *
 * Why the loops look the way they do
 *   - An FMA's result is ready ~4 cycles after it starts, and a core starts
 *     up to two per cycle, so about eight must be in flight to keep the FMA
 *     units busy; with one accumulator the loop would wait on its own
 *     previous result every step.  Both kinds of kernel therefore keep
 *     eight independent 8-float accumulators: 64 floats per iteration in the
 *     pair kernels, 4 vectors x 2 chunks in the one-to-many kernels.  That
 *     plus the two query chunks and a temporary fits the 16 YMM registers.
 *   - In the pair kernels every FMA needs two fresh loads, so the load
 *     ports, not the FMA units, set the pace (2-3 256-bit loads per cycle
 *     on current cores, i.e. 1-1.5 FMAs).  The one-to-many kernels load each
 *     chunk of the query once for four base vectors (5 loads per 4 FMAs).
 *   - The last dim % 8 elements go through a short scalar loop: AVX2's
 *     masked load (vmaskmovps) would work too, but for < 8 elements it is
 *     no faster and is slow on some older AMD cores.
 *   - Unaligned loads: vectors sit in records at arbitrary float offsets.
 *   - The one-to-many kernels prefetch the next group of base vectors (see
 *     dist_avx512.c).
 *
 * The summation order differs from the scalar reference; the tests bound the
 * difference.  Also holds the FMA peak probe used by bench/bench_kernels.c.
 * Pure functions; any thread. */
#include "engram/dist.h"

#include <immintrin.h>

#define AVX2_GROUP 4
/* Helpers taking an `l2` flag are always inlined: the flag is a constant at
 * each call site only after inlining, and only then does the compiler emit
 * separate branch-free l2 and dot loops (at -O2 GCC otherwise keeps one
 * shared out-of-line copy that tests the flag inside the loop). */
#define AVX2_INLINE static inline __attribute__((always_inline))

static inline float avx2_hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2_INLINE __m256 avx2_term(int l2, __m256 x, __m256 y, __m256 acc)
{
    if (l2) {
        __m256 d = _mm256_sub_ps(x, y);
        return _mm256_fmadd_ps(d, d, acc);
    }
    return _mm256_fmadd_ps(x, y, acc);
}

AVX2_INLINE float avx2_tail(int l2, const float *a, const float *b, size_t i, size_t dim)
{
    float t = 0.0f;
    for (; i < dim; i++) {
        float d = a[i] - b[i];
        t += l2 ? d * d : a[i] * b[i];
    }
    return t;
}

/* l2 is a compile-time constant at both call sites, so this inlines into two
 * branch-free loops.  The accumulators are named variables, not an array
 * indexed in an inner loop: GCC at -O2 does not fully unroll such a loop and
 * would keep the "registers" in memory. */
AVX2_INLINE float avx2_pair(int l2, const float *a, const float *b, size_t dim)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    __m256 s4 = s0, s5 = s0, s6 = s0, s7 = s0;
    size_t i = 0;
    for (; i + 64 <= dim; i += 64) {
        s0 = avx2_term(l2, _mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = avx2_term(l2, _mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = avx2_term(l2, _mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = avx2_term(l2, _mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
        s4 = avx2_term(l2, _mm256_loadu_ps(a + i + 32), _mm256_loadu_ps(b + i + 32), s4);
        s5 = avx2_term(l2, _mm256_loadu_ps(a + i + 40), _mm256_loadu_ps(b + i + 40), s5);
        s6 = avx2_term(l2, _mm256_loadu_ps(a + i + 48), _mm256_loadu_ps(b + i + 48), s6);
        s7 = avx2_term(l2, _mm256_loadu_ps(a + i + 56), _mm256_loadu_ps(b + i + 56), s7);
    }
    /* At most seven chunks left: alternate two chains rather than one. */
    for (; i + 16 <= dim; i += 16) {
        s0 = avx2_term(l2, _mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = avx2_term(l2, _mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    if (i + 8 <= dim) {
        s2 = avx2_term(l2, _mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s2);
        i += 8;
    }
    /* Add as a tree: balanced rounding, short dependency chain. */
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)),
                             _mm256_add_ps(_mm256_add_ps(s4, s5), _mm256_add_ps(s6, s7)));
    return avx2_hsum(s) + avx2_tail(l2, a, b, i, dim);
}

static float avx2_l2sq(const void *va, const void *vb, size_t dim)
{
    const float *a = va, *b = vb;
    return avx2_pair(1, a, b, dim);
}

static float avx2_dot(const void *va, const void *vb, size_t dim)
{
    const float *a = va, *b = vb;
    return avx2_pair(0, a, b, dim);
}

static inline void avx2_prefetch(const float *p)
{
    _mm_prefetch((const char *)p, _MM_HINT_T0);
}

/* Four base vectors per pass, two chunks each: eight named accumulators
 * (e = even chunk, o = odd chunk), the query chunk loaded once for four. */
AVX2_INLINE void avx2_many(int l2, const float *q, const float *base, size_t n,
                             size_t stride, size_t dim, float *out)
{
    size_t i = 0;
    for (; i + AVX2_GROUP <= n; i += AVX2_GROUP) {
        const float *v0 = base + i * stride, *v1 = v0 + stride;
        const float *v2 = v1 + stride, *v3 = v2 + stride;
        /* Prefetch only while the next group exists (see dist_avx512.c). */
        int pf = i + 2 * AVX2_GROUP <= n;
        size_t ahead = AVX2_GROUP * stride;
        __m256 e0 = _mm256_setzero_ps(), e1 = e0, e2 = e0, e3 = e0;
        __m256 o0 = e0, o1 = e0, o2 = e0, o3 = e0;
        size_t j = 0;
        for (; j + 16 <= dim; j += 16) {
            if (pf) {
                avx2_prefetch(v0 + ahead + j);
                avx2_prefetch(v1 + ahead + j);
                avx2_prefetch(v2 + ahead + j);
                avx2_prefetch(v3 + ahead + j);
            }
            __m256 qe = _mm256_loadu_ps(q + j), qo = _mm256_loadu_ps(q + j + 8);
            e0 = avx2_term(l2, qe, _mm256_loadu_ps(v0 + j), e0);
            e1 = avx2_term(l2, qe, _mm256_loadu_ps(v1 + j), e1);
            e2 = avx2_term(l2, qe, _mm256_loadu_ps(v2 + j), e2);
            e3 = avx2_term(l2, qe, _mm256_loadu_ps(v3 + j), e3);
            o0 = avx2_term(l2, qo, _mm256_loadu_ps(v0 + j + 8), o0);
            o1 = avx2_term(l2, qo, _mm256_loadu_ps(v1 + j + 8), o1);
            o2 = avx2_term(l2, qo, _mm256_loadu_ps(v2 + j + 8), o2);
            o3 = avx2_term(l2, qo, _mm256_loadu_ps(v3 + j + 8), o3);
        }
        if (j + 8 <= dim) {
            __m256 qe = _mm256_loadu_ps(q + j);
            e0 = avx2_term(l2, qe, _mm256_loadu_ps(v0 + j), e0);
            e1 = avx2_term(l2, qe, _mm256_loadu_ps(v1 + j), e1);
            e2 = avx2_term(l2, qe, _mm256_loadu_ps(v2 + j), e2);
            e3 = avx2_term(l2, qe, _mm256_loadu_ps(v3 + j), e3);
            j += 8;
        }
        out[i] = avx2_hsum(_mm256_add_ps(e0, o0)) + avx2_tail(l2, q, v0, j, dim);
        out[i + 1] = avx2_hsum(_mm256_add_ps(e1, o1)) + avx2_tail(l2, q, v1, j, dim);
        out[i + 2] = avx2_hsum(_mm256_add_ps(e2, o2)) + avx2_tail(l2, q, v2, j, dim);
        out[i + 3] = avx2_hsum(_mm256_add_ps(e3, o3)) + avx2_tail(l2, q, v3, j, dim);
    }
    for (; i < n; i++)
        out[i] = avx2_pair(l2, q, base + i * stride, dim);
}

static void avx2_l2sq_many(const float *q, const float *base, size_t n, size_t stride,
                           size_t dim, float *out)
{
    avx2_many(1, q, base, n, stride, dim, out);
}

static void avx2_dot_many(const float *q, const float *base, size_t n, size_t stride,
                          size_t dim, float *out)
{
    avx2_many(0, q, base, n, stride, dim, out);
}

const dist_kernels dist_avx2_kernels = {
    .name = "avx2",
    .l2sq = avx2_l2sq,
    .dot = avx2_dot,
    .l2sq_many = avx2_l2sq_many,
    .dot_many = avx2_dot_many,
};

/* Peak probe for bench/bench_kernels.c (not part of dist.h's contract):
 * iters x 12 independent 256-bit FMA chains, no memory traffic; 12 covers
 * latency 4 x 2 FMA units with margin and, with the two constants, fits the
 * 16 YMM registers.  FLOPs = iters * 12 * 8 * 2. */
float dist_avx2_peak_probe(size_t iters);
float dist_avx2_peak_probe(size_t iters)
{
    const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    /* Distinct starting values: equal chains would be merged into one, and
     * named variables, not an array, which GCC -O2 would keep in memory. */
    __m256 a0 = _mm256_set1_ps(1.00f), a1 = _mm256_set1_ps(1.01f), a2 = _mm256_set1_ps(1.02f);
    __m256 a3 = _mm256_set1_ps(1.03f), a4 = _mm256_set1_ps(1.04f), a5 = _mm256_set1_ps(1.05f);
    __m256 a6 = _mm256_set1_ps(1.06f), a7 = _mm256_set1_ps(1.07f), a8 = _mm256_set1_ps(1.08f);
    __m256 a9 = _mm256_set1_ps(1.09f), a10 = _mm256_set1_ps(1.10f), a11 = _mm256_set1_ps(1.11f);
    for (size_t it = 0; it < iters; it++) {
        a0 = _mm256_fmadd_ps(a0, m, c), a1 = _mm256_fmadd_ps(a1, m, c);
        a2 = _mm256_fmadd_ps(a2, m, c), a3 = _mm256_fmadd_ps(a3, m, c);
        a4 = _mm256_fmadd_ps(a4, m, c), a5 = _mm256_fmadd_ps(a5, m, c);
        a6 = _mm256_fmadd_ps(a6, m, c), a7 = _mm256_fmadd_ps(a7, m, c);
        a8 = _mm256_fmadd_ps(a8, m, c), a9 = _mm256_fmadd_ps(a9, m, c);
        a10 = _mm256_fmadd_ps(a10, m, c), a11 = _mm256_fmadd_ps(a11, m, c);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
    return avx2_hsum(s);
}
