/* dist_neon.c -- AArch64 Advanced SIMD (NEON) kernels.  NEON is part of the
 * AArch64 base ISA, so this file needs no extra flags and dist.c always
 * considers it supported when it is compiled (CMake compiles it on aarch64
 * only).
 *
 * Why the loops look the way they do
 *   - A 128-bit FMLA has a latency of ~4 cycles and cores issue two
 *     (Cortex-A72, Neoverse N1) to four (Neoverse V1/V2, Apple M) per
 *     cycle.  The pair kernels are bound by loads (two per FMA) rather than
 *     by FMAs, so four chains would do for throughput; they keep eight
 *     (32 floats per iteration) to shorten the dependency chain of a single
 *     call, which HNSW waits on.  With 32 vector registers the one-to-many
 *     kernels also afford eight (4 vectors x 2 chunks) and load each query
 *     chunk once for four base vectors.
 *   - NEON has no masked loads; the last dim % 4 elements go through a
 *     short scalar loop.  vld1q_f32 has no alignment requirement.
 *   - The one-to-many kernels prefetch the next group of base vectors (see
 *     dist_avx512.c).
 *
 * The summation order differs from the scalar reference; the tests bound the
 * difference (and run this file under qemu-aarch64, tests/cross/arm64.sh).
 * Pure functions; any thread. */
#include "engram/dist.h"

#include <arm_neon.h>

#define NEON_GROUP 4
/* Helpers taking an `l2` flag are always inlined: the flag is a constant at
 * each call site only after inlining, and only then does the compiler emit
 * separate branch-free l2 and dot loops (at -O2 GCC otherwise keeps one
 * shared out-of-line copy that tests the flag inside the loop). */
#define NEON_INLINE static inline __attribute__((always_inline))

NEON_INLINE float32x4_t neon_term(int l2, float32x4_t x, float32x4_t y, float32x4_t acc)
{
    if (l2) {
        float32x4_t d = vsubq_f32(x, y);
        return vfmaq_f32(acc, d, d);
    }
    return vfmaq_f32(acc, x, y);
}

NEON_INLINE float neon_tail(int l2, const float *a, const float *b, size_t i, size_t dim)
{
    float t = 0.0f;
    for (; i < dim; i++) {
        float d = a[i] - b[i];
        t += l2 ? d * d : a[i] * b[i];
    }
    return t;
}

NEON_INLINE float neon_pair(int l2, const float *a, const float *b, size_t dim)
{
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0, s2 = s0, s3 = s0;
    float32x4_t s4 = s0, s5 = s0, s6 = s0, s7 = s0;
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        s0 = neon_term(l2, vld1q_f32(a + i), vld1q_f32(b + i), s0);
        s1 = neon_term(l2, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4), s1);
        s2 = neon_term(l2, vld1q_f32(a + i + 8), vld1q_f32(b + i + 8), s2);
        s3 = neon_term(l2, vld1q_f32(a + i + 12), vld1q_f32(b + i + 12), s3);
        s4 = neon_term(l2, vld1q_f32(a + i + 16), vld1q_f32(b + i + 16), s4);
        s5 = neon_term(l2, vld1q_f32(a + i + 20), vld1q_f32(b + i + 20), s5);
        s6 = neon_term(l2, vld1q_f32(a + i + 24), vld1q_f32(b + i + 24), s6);
        s7 = neon_term(l2, vld1q_f32(a + i + 28), vld1q_f32(b + i + 28), s7);
    }
    /* At most seven chunks left: alternate two chains rather than one. */
    for (; i + 8 <= dim; i += 8) {
        s0 = neon_term(l2, vld1q_f32(a + i), vld1q_f32(b + i), s0);
        s1 = neon_term(l2, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4), s1);
    }
    if (i + 4 <= dim) {
        s2 = neon_term(l2, vld1q_f32(a + i), vld1q_f32(b + i), s2);
        i += 4;
    }
    /* Add as a tree: balanced rounding, short dependency chain. */
    float32x4_t s = vaddq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)),
                              vaddq_f32(vaddq_f32(s4, s5), vaddq_f32(s6, s7)));
    return vaddvq_f32(s) + neon_tail(l2, a, b, i, dim);
}

static float neon_l2sq(const void *va, const void *vb, size_t dim)
{
    const float *a = va, *b = vb;
    return neon_pair(1, a, b, dim);
}

static float neon_dot(const void *va, const void *vb, size_t dim)
{
    const float *a = va, *b = vb;
    return neon_pair(0, a, b, dim);
}

NEON_INLINE void neon_prefetch4(const float *v0, const float *v1, const float *v2,
                                const float *v3, size_t at)
{
    __builtin_prefetch(v0 + at);
    __builtin_prefetch(v1 + at);
    __builtin_prefetch(v2 + at);
    __builtin_prefetch(v3 + at);
}

/* Four base vectors per pass, two chunks each: eight named accumulators
 * (e = even chunk, o = odd chunk), the query chunk loaded once for four. */
NEON_INLINE void neon_many(int l2, const float *q, const float *base, size_t n,
                           size_t stride, size_t dim, float *out)
{
    size_t i = 0;
    for (; i + NEON_GROUP <= n; i += NEON_GROUP) {
        const float *v0 = base + i * stride, *v1 = v0 + stride;
        const float *v2 = v1 + stride, *v3 = v2 + stride;
        /* Prefetch only while the next group exists (see dist_avx512.c). */
        int pf = i + 2 * NEON_GROUP <= n;
        size_t ahead = NEON_GROUP * stride;
        float32x4_t e0 = vdupq_n_f32(0.0f), e1 = e0, e2 = e0, e3 = e0;
        float32x4_t o0 = e0, o1 = e0, o2 = e0, o3 = e0;
        size_t j = 0;
        for (; j + 8 <= dim; j += 8) {
            /* One prefetch per 64-byte line: every other 8-float step. */
            if (pf && (j & 15) == 0) neon_prefetch4(v0, v1, v2, v3, ahead + j);
            float32x4_t qe = vld1q_f32(q + j), qo = vld1q_f32(q + j + 4);
            e0 = neon_term(l2, qe, vld1q_f32(v0 + j), e0);
            e1 = neon_term(l2, qe, vld1q_f32(v1 + j), e1);
            e2 = neon_term(l2, qe, vld1q_f32(v2 + j), e2);
            e3 = neon_term(l2, qe, vld1q_f32(v3 + j), e3);
            o0 = neon_term(l2, qo, vld1q_f32(v0 + j + 4), o0);
            o1 = neon_term(l2, qo, vld1q_f32(v1 + j + 4), o1);
            o2 = neon_term(l2, qo, vld1q_f32(v2 + j + 4), o2);
            o3 = neon_term(l2, qo, vld1q_f32(v3 + j + 4), o3);
        }
        if (j + 4 <= dim) {
            float32x4_t qe = vld1q_f32(q + j);
            e0 = neon_term(l2, qe, vld1q_f32(v0 + j), e0);
            e1 = neon_term(l2, qe, vld1q_f32(v1 + j), e1);
            e2 = neon_term(l2, qe, vld1q_f32(v2 + j), e2);
            e3 = neon_term(l2, qe, vld1q_f32(v3 + j), e3);
            j += 4;
        }
        out[i] = vaddvq_f32(vaddq_f32(e0, o0)) + neon_tail(l2, q, v0, j, dim);
        out[i + 1] = vaddvq_f32(vaddq_f32(e1, o1)) + neon_tail(l2, q, v1, j, dim);
        out[i + 2] = vaddvq_f32(vaddq_f32(e2, o2)) + neon_tail(l2, q, v2, j, dim);
        out[i + 3] = vaddvq_f32(vaddq_f32(e3, o3)) + neon_tail(l2, q, v3, j, dim);
    }
    for (; i < n; i++)
        out[i] = neon_pair(l2, q, base + i * stride, dim);
}

static void neon_l2sq_many(const float *q, const float *base, size_t n, size_t stride,
                           size_t dim, float *out)
{
    neon_many(1, q, base, n, stride, dim, out);
}

static void neon_dot_many(const float *q, const float *base, size_t n, size_t stride,
                          size_t dim, float *out)
{
    neon_many(0, q, base, n, stride, dim, out);
}

const dist_kernels dist_neon_kernels = {
    .name = "neon",
    .l2sq = neon_l2sq,
    .dot = neon_dot,
    .l2sq_many = neon_l2sq_many,
    .dot_many = neon_dot_many,
};
