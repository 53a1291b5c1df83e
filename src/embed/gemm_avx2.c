/* gemm_avx2.c -- the AVX2+FMA micro-kernel (gemm.h): a 6 x 16 tile held in
 * 12 ymm accumulators; per k, two loads of the panel and six broadcasts of
 * A feed twelve FMAs.  Built with -mavx2 -mfma; chosen at run time only on
 * a CPU (and OS) with both (gemm.c). */
#include <immintrin.h>

#include "engram/gemm.h"

#define AV_MR 6

static void gemm_avx2_tile(size_t k, const float *a, size_t lda, const float *p, float *c,
                           size_t ldc, const float *init)
{
    __m256 c0[AV_MR], c1[AV_MR];
#pragma GCC unroll 6
    for (int r = 0; r < AV_MR; r++) {
        const float *s = init ? init : c + r * ldc;
        c0[r] = _mm256_loadu_ps(s);
        c1[r] = _mm256_loadu_ps(s + 8);
    }
    for (size_t kk = 0; kk < k; kk++) {
        __m256 b0 = _mm256_loadu_ps(p + kk * 16), b1 = _mm256_loadu_ps(p + kk * 16 + 8);
#pragma GCC unroll 6
        for (int r = 0; r < AV_MR; r++) {
            __m256 x = _mm256_broadcast_ss(a + r * lda + kk);
            c0[r] = _mm256_fmadd_ps(x, b0, c0[r]);
            c1[r] = _mm256_fmadd_ps(x, b1, c1[r]);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < AV_MR; r++) {
        _mm256_storeu_ps(c + r * ldc, c0[r]);
        _mm256_storeu_ps(c + r * ldc + 8, c1[r]);
    }
}

const gemm_kernels gemm_avx2_kernels = {.name = "avx2", .mr = AV_MR, .nr = 16, .tile = gemm_avx2_tile};
