/* gemm_neon.c -- the NEON micro-kernel (gemm.h): a 6 x 16 tile held in 24
 * q-register accumulators; per k, four loads of the panel and six scalar
 * multiplies-by-element (vfmaq_n_f32) of A.  NEON is part of the aarch64
 * base ISA: no flag, no run-time condition. */
#include <arm_neon.h>

#include "engram/gemm.h"

#define NE_MR 6

static void gemm_neon_tile(size_t k, const float *a, size_t lda, const float *p, float *c,
                           size_t ldc, const float *init)
{
    float32x4_t acc[NE_MR][4];
#pragma GCC unroll 6
    for (int r = 0; r < NE_MR; r++)
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) acc[r][j] = vld1q_f32((init ? init : c + r * ldc) + 4 * j);
    for (size_t kk = 0; kk < k; kk++) {
        float32x4_t b0 = vld1q_f32(p + kk * 16), b1 = vld1q_f32(p + kk * 16 + 4),
                    b2 = vld1q_f32(p + kk * 16 + 8), b3 = vld1q_f32(p + kk * 16 + 12);
#pragma GCC unroll 6
        for (int r = 0; r < NE_MR; r++) {
            float x = a[r * lda + kk];
            acc[r][0] = vfmaq_n_f32(acc[r][0], b0, x);
            acc[r][1] = vfmaq_n_f32(acc[r][1], b1, x);
            acc[r][2] = vfmaq_n_f32(acc[r][2], b2, x);
            acc[r][3] = vfmaq_n_f32(acc[r][3], b3, x);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < NE_MR; r++)
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) vst1q_f32(c + r * ldc + 4 * j, acc[r][j]);
}

const gemm_kernels gemm_neon_kernels = {.name = "neon", .mr = NE_MR, .nr = 16, .tile = gemm_neon_tile};
