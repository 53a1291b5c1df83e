/* gemm.c -- the matrix product's driver, packing and variant table
 * (contract and design in include/engram/gemm.h).
 *
 * As dist.c: CMake compiles the ISA files an architecture has and says
 * which through ENGRAM_ARCH_<arch>; the only #if is at file level, turning
 * a variant's table into a pointer or NULL.  This file is compiled without
 * ISA flags; the CPU's features come from dist_cpu_features() (one probe
 * for the whole process) and the level from dist_active().
 *
 * Loop order of gemm_run, outermost first: K slices of GEMM_KC, row blocks
 * of GEMM_MC, panels of NR columns, tiles of MR rows.  The panel's K slice
 * (KC x NR floats: 16 KB at NR 16, 32 KB at NR 32) is reused by every
 * tile of the row block from L1; the row block's A slice (MC x KC: 192 KB)
 * by every panel from L2.  The first slice starts each tile from the bias
 * (C is not read: in a large product it is cold, and a tile that waits
 * for sixteen cache misses before its first FMA ran at a fifth of the
 * speed at 2048 x 1536); later slices add to C, with the next tile's rows
 * prefetched while the current one runs.
 *
 * Threads: pure. */
#include "engram/gemm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engram/dist.h"

#if defined(ENGRAM_ARCH_x86_64)
#define GEMM_X86(k) (&(k))
#define GEMM_ARM(k) NULL
#elif defined(ENGRAM_ARCH_aarch64)
#define GEMM_X86(k) NULL
#define GEMM_ARM(k) (&(k))
#else
#define GEMM_X86(k) NULL
#define GEMM_ARM(k) NULL
#endif

static const struct {
    const char *name;
    unsigned needs;
    const gemm_kernels *k;
} gemm_variants[] = {
    {"avx512", DIST_CPU_AVX2 | DIST_CPU_FMA | DIST_CPU_AVX512F, GEMM_X86(gemm_avx512_kernels)},
    {"avx2", DIST_CPU_AVX2 | DIST_CPU_FMA, GEMM_X86(gemm_avx2_kernels)},
    {"neon", 0, GEMM_ARM(gemm_neon_kernels)},
    {"scalar", 0, &gemm_scalar_kernels},
};
#define GEMM_NVARIANTS (sizeof gemm_variants / sizeof gemm_variants[0])

const gemm_kernels *gemm_by_name(const char *name)
{
    unsigned f = dist_cpu_features();
    for (size_t i = 0; name && i < GEMM_NVARIANTS; i++)
        if (!strcmp(name, gemm_variants[i].name))
            return gemm_variants[i].k && (gemm_variants[i].needs & ~f) == 0 ? gemm_variants[i].k
                                                                            : NULL;
    return NULL;
}

const gemm_kernels *gemm_active(void)
{
    const gemm_kernels *g = gemm_by_name(dist_active()->name);
    return g ? g : &gemm_scalar_kernels;
}

int gemm_pack(gemm_packed *out, const gemm_kernels *g, const float *w, size_t n, size_t k)
{
    memset(out, 0, sizeof *out);
    size_t nr = g->nr, panels = (n + nr - 1) / nr;
    if (k && panels > SIZE_MAX / sizeof(float) / nr / k) return -ENOMEM;
    float *p = calloc(panels * nr * (k ? k : 1), sizeof *p);
    if (!p) return -ENOMEM;
    for (size_t pi = 0; pi < panels; pi++)
        for (size_t j = 0; j < nr && pi * nr + j < n; j++) {
            const float *row = w + (pi * nr + j) * k;
            float *dst = p + pi * nr * k + j;
            for (size_t kk = 0; kk < k; kk++) dst[kk * nr] = row[kk];
        }
    *out = (gemm_packed){.g = g, .n = n, .k = k, .p = p};
    return 0;
}

void gemm_packed_fini(gemm_packed *pk)
{
    free(pk->p);
    memset(pk, 0, sizeof *pk);
}

size_t gemm_packed_bytes(const gemm_packed *pk)
{
    size_t nr = pk->g ? pk->g->nr : 1;
    return (pk->n + nr - 1) / nr * nr * pk->k * sizeof(float);
}

/* A tile at the edge: rows [m0, m0 + mr) x columns [n0, n0 + nc) of C, with
 * mr <= MR and nc <= NR, through a padded copy of A's rows and of C. */
static void gemm_edge(const gemm_kernels *g, size_t kc, const float *a, size_t lda, size_t mr,
                      const float *panel, float *c, size_t ldc, size_t nc, const float *init)
{
    float abuf[GEMM_MR_MAX * GEMM_KC];
    float cbuf[GEMM_MR_MAX * GEMM_NR_MAX];
    float ibuf[GEMM_NR_MAX];
    memset(abuf, 0, sizeof(float) * g->mr * kc);
    memset(cbuf, 0, sizeof(float) * g->mr * g->nr);
    for (size_t r = 0; r < mr; r++) {
        memcpy(abuf + r * kc, a + r * lda, kc * sizeof(float));
        if (!init) memcpy(cbuf + r * g->nr, c + r * ldc, nc * sizeof(float));
    }
    if (init) {
        memset(ibuf, 0, sizeof ibuf);
        memcpy(ibuf, init, nc * sizeof(float));
    }
    g->tile(kc, abuf, kc, panel, cbuf, g->nr, init ? ibuf : NULL);
    for (size_t r = 0; r < mr; r++) memcpy(c + r * ldc, cbuf + r * g->nr, nc * sizeof(float));
}

void gemm_run(const gemm_packed *w, const float *a, size_t m, size_t lda, const float *bias,
              float *c, size_t ldc)
{
    const gemm_kernels *g = w->g;
    size_t n = w->n, k = w->k, mr = g->mr, nr = g->nr;
    float zero[GEMM_NR_MAX] = {0};
    if (k == 0) {
        for (size_t i = 0; i < m; i++) {
            if (bias) memcpy(c + i * ldc, bias, n * sizeof(float));
            else memset(c + i * ldc, 0, n * sizeof(float));
        }
        return;
    }
    for (size_t k0 = 0; k0 < k; k0 += GEMM_KC) {
        size_t kc = k - k0 < GEMM_KC ? k - k0 : GEMM_KC;
        for (size_t m0 = 0; m0 < m; m0 += GEMM_MC) {
            size_t mb = m - m0 < GEMM_MC ? m - m0 : GEMM_MC;
            for (size_t n0 = 0; n0 < n; n0 += nr) {
                const float *panel = w->p + n0 * k + k0 * nr; /* panel n0/nr, row k0 */
                size_t nc = n - n0 < nr ? n - n0 : nr;
                /* The first slice starts from the bias (C is not read). */
                const float *init = k0 ? NULL : bias ? bias + n0 : zero;
                for (size_t i = m0; i < m0 + mb; i += mr) {
                    const float *ai = a + i * lda + k0;
                    float *ci = c + i * ldc + n0;
                    size_t rows = m0 + mb - i < mr ? m0 + mb - i : mr;
                    /* Later slices read C, far away in a large product:
                     * ask for the next tile's rows while this one runs. */
                    if (k0 && i + mr < m0 + mb)
                        for (size_t r = 0; r < mr && i + mr + r < m0 + mb; r++)
                            __builtin_prefetch(ci + (mr + r) * ldc), __builtin_prefetch(ci + (mr + r) * ldc + nr - 1);
                    if (rows == mr && nc == nr) g->tile(kc, ai, lda, panel, ci, ldc, init);
                    else gemm_edge(g, kc, ai, lda, rows, panel, ci, ldc, nc, init);
                }
            }
        }
    }
}
