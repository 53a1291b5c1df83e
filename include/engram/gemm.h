/* gemm.h -- the matrix product under the neural embedder: C = A * W^T + bias,
 * with W a weight matrix stored as PyTorch stores a Linear layer's (N
 * output rows of K inputs), packed once, at load time, for the kernel that
 * will multiply by it.
 *
 * Kernels, one file per ISA (gemm_scalar.c, gemm_avx2.c, gemm_avx512.c,
 * gemm_neon.c), each a register-tile "micro-kernel" that computes an MR x
 * NR block of C from MR rows of A and one packed panel of W: for every k,
 * NR consecutive floats of W^T, so the panel streams through with unit
 * stride and each A element is broadcast once per k.  gemm.c holds what is
 * not ISA-specific: the table of variants and which the CPU runs (the same
 * levels as the distance kernels, dist.h: "avx512", "avx2", "neon",
 * "scalar"; gemm_active() follows the level dist_select() chose, so the
 * `simd` setting governs both), packing, and the blocked driver (K in
 * slices of GEMM_KC so a panel's slice stays in L1 while MR-row tiles of A
 * stream past it, rows in blocks of GEMM_MC so those A rows stay in L2).
 * Edges (M not a multiple of MR, N not of NR) go through a padded tile on
 * the stack; packing pads W with zero columns.
 *
 * The scalar kernel is the reference (compiled with vectorisation and FMA
 * contraction off); the others are tested against it.  Results differ
 * from it by rounding only (FMA, and the order of the sums).
 *
 * Threads: kernels and the driver are pure; a packed matrix is read-only.
 * No allocation in gemm_run. */
#ifndef ENGRAM_GEMM_H
#define ENGRAM_GEMM_H

#include <stddef.h>
#include <stdint.h>

#define GEMM_KC 256
#define GEMM_MC 192
#define GEMM_MR_MAX 8
#define GEMM_NR_MAX 32

/* C[MR x NR] (row stride ldc) = S + A[MR x k] (row stride lda) * P[k x NR]
 * (the packed panel slice: NR floats per k, contiguous), where S is C
 * itself when init is NULL, else init[0..NR) in every row (the bias: the
 * first K slice never reads C, which is cold then). */
typedef void gemm_tile_fn(size_t k, const float *a, size_t lda, const float *p, float *c,
                          size_t ldc, const float *init);

typedef struct gemm_kernels {
    const char *name;       /* "scalar", "avx2", "avx512", "neon" */
    unsigned mr, nr;        /* the tile: mr <= GEMM_MR_MAX, nr <= GEMM_NR_MAX */
    gemm_tile_fn *tile;
} gemm_kernels;

extern const gemm_kernels gemm_scalar_kernels;
extern const gemm_kernels gemm_avx2_kernels;
extern const gemm_kernels gemm_avx512_kernels;
extern const gemm_kernels gemm_neon_kernels;

/* The variant for the level dist_active() names (never NULL). */
const gemm_kernels *gemm_active(void);
/* A variant by name if compiled in and this CPU runs it, else NULL. */
const gemm_kernels *gemm_by_name(const char *name);

/* W (n x k, row-major) packed for kernel g: ceil(n / nr) panels of k x nr
 * floats, zero-padded.  Owned by the caller (gemm_packed_fini). */
typedef struct gemm_packed {
    const gemm_kernels *g;
    size_t n, k;
    float *p;
} gemm_packed;

/* 0 or -ENOMEM. */
int gemm_pack(gemm_packed *out, const gemm_kernels *g, const float *w, size_t n, size_t k);
void gemm_packed_fini(gemm_packed *pk);
size_t gemm_packed_bytes(const gemm_packed *pk);

/* C[m x n] (row stride ldc) = A[m x k] (row stride lda) * W^T + bias[n]
 * (bias may be NULL), with W packed in w (w->g's kernel runs). */
void gemm_run(const gemm_packed *w, const float *a, size_t m, size_t lda, const float *bias,
              float *c, size_t ldc);

#endif
