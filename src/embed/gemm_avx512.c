/* gemm_avx512.c -- the AVX-512F micro-kernel (gemm.h): an 8 x 32 tile held
 * in 16 zmm accumulators; per k, two loads of the panel and eight
 * broadcasts of A feed sixteen FMAs.  Built with -mavx512f -mfma; chosen at
 * run time only on a CPU (and OS) with AVX-512F, AVX2 and FMA (gemm.c). */
#include <immintrin.h>

#include "engram/gemm.h"

#define AX_MR 8

static void gemm_avx512_tile(size_t k, const float *a, size_t lda, const float *p, float *c,
                             size_t ldc, const float *init)
{
    __m512 c0[AX_MR], c1[AX_MR];
#pragma GCC unroll 8
    for (int r = 0; r < AX_MR; r++) {
        const float *s = init ? init : c + r * ldc;
        c0[r] = _mm512_loadu_ps(s);
        c1[r] = _mm512_loadu_ps(s + 16);
    }
    for (size_t kk = 0; kk < k; kk++) {
        __m512 b0 = _mm512_loadu_ps(p + kk * 32), b1 = _mm512_loadu_ps(p + kk * 32 + 16);
#pragma GCC unroll 8
        for (int r = 0; r < AX_MR; r++) {
            __m512 x = _mm512_set1_ps(a[r * lda + kk]);
            c0[r] = _mm512_fmadd_ps(x, b0, c0[r]);
            c1[r] = _mm512_fmadd_ps(x, b1, c1[r]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < AX_MR; r++) {
        _mm512_storeu_ps(c + r * ldc, c0[r]);
        _mm512_storeu_ps(c + r * ldc + 16, c1[r]);
    }
}

const gemm_kernels gemm_avx512_kernels = {
    .name = "avx512", .mr = AX_MR, .nr = 32, .tile = gemm_avx512_tile};
