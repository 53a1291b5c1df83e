/* gemm_scalar.c -- the reference micro-kernel (gemm.h): a 4 x 16 tile,
 * plain C, built with vectorisation and FMA contraction off
 * (src/embed/CMakeLists.txt) so it computes each sum in order, once
 * rounded per step.  Every other variant is tested against it. */
#include "engram/gemm.h"

#define SC_MR 4
#define SC_NR 16

static void gemm_scalar_tile(size_t k, const float *a, size_t lda, const float *p, float *c,
                             size_t ldc, const float *init)
{
    float acc[SC_MR][SC_NR];
    for (int r = 0; r < SC_MR; r++)
        for (int j = 0; j < SC_NR; j++) acc[r][j] = init ? init[j] : c[r * ldc + j];
    for (size_t kk = 0; kk < k; kk++)
        for (int r = 0; r < SC_MR; r++) {
            float x = a[r * lda + kk];
            for (int j = 0; j < SC_NR; j++) acc[r][j] += x * p[kk * SC_NR + j];
        }
    for (int r = 0; r < SC_MR; r++)
        for (int j = 0; j < SC_NR; j++) c[r * ldc + j] = acc[r][j];
}

const gemm_kernels gemm_scalar_kernels = {
    .name = "scalar", .mr = SC_MR, .nr = SC_NR, .tile = gemm_scalar_tile};
