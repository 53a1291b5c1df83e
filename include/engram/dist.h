/* dist.h -- vector distance kernels, one file per ISA, chosen at run time.
 *
 * Each variant (dist_scalar.c, dist_avx2.c, dist_avx512.c, dist_neon.c) fills
 * a `dist_kernels` table; dist.c knows which variants were compiled in
 * (CMake decides per architecture) and which the CPU supports, and selects
 * one once at start-up.  The scalar variant is the reference: it is compiled
 * with vectorisation off and every other variant is tested against it.
 *
 * Metrics, all "smaller is closer":
 *   DIST_L2      Euclidean.  Internally the squared distance (monotone, no
 *                sqrt in the search loop); reported as sqrt.
 *   DIST_COSINE  1 - cos(a,b).  Vectors are L2-normalised on insert (and the
 *                query before search), so internally 1 - dot(a,b).
 *   DIST_DOT     -dot(a,b).
 *
 * Thread safety: kernels are pure.  dist_select() and dist_cpu_hide() write
 * process-wide state and must run before any worker thread starts. */
#ifndef ENGRAM_DIST_H
#define ENGRAM_DIST_H

#include <stddef.h>

typedef enum dist_metric { DIST_L2 = 0, DIST_COSINE = 1, DIST_DOT = 2 } dist_metric;

/* One-to-one: a and b need no particular alignment. */
typedef float dist_pair_fn(const float *a, const float *b, size_t dim);
/* One-to-many: out[i] = f(q, base + i*stride) for i < n; stride >= dim, in
 * floats, so vectors embedded in larger records can be scanned in place. */
typedef void dist_many_fn(const float *q, const float *base, size_t n,
                          size_t stride, size_t dim, float *out);

typedef struct dist_kernels {
    const char *name;          /* "scalar", "avx2", "avx512", "neon" */
    dist_pair_fn *l2sq;        /* sum (a_i - b_i)^2 */
    dist_pair_fn *dot;         /* sum a_i * b_i */
    dist_many_fn *l2sq_many;
    dist_many_fn *dot_many;
} dist_kernels;

/* Variant tables, defined in their own files (only where compiled). */
extern const dist_kernels dist_scalar_kernels;
extern const dist_kernels dist_avx2_kernels;
extern const dist_kernels dist_avx512_kernels;
extern const dist_kernels dist_neon_kernels;

/* ---- selection ---------------------------------------------------------------- */

/* Select the process-wide kernel: "auto" (best the CPU supports), or a name.
 * Returns 0, -EINVAL for an unknown name, -ENOTSUP when that variant is not
 * compiled into this binary or the CPU lacks it; on failure nothing
 * changes. */
int dist_select(const char *name);
/* The selected kernel (scalar until dist_select runs). Never NULL. */
const dist_kernels *dist_active(void);
/* A variant by name if compiled in and supported by this CPU, else NULL. */
const dist_kernels *dist_kernels_by_name(const char *name);
/* Names of all variants compiled into this binary, NULL-terminated, best
 * first. */
const char *const *dist_compiled_names(void);

/* CPU features the variants need.  A bit is set only when the OS also
 * saves the registers involved (YMM for AVX2, ZMM and opmasks for
 * AVX-512*), so a set bit means "safe to execute". */
#define DIST_CPU_AVX2 (1u << 0)
#define DIST_CPU_FMA (1u << 1)
#define DIST_CPU_AVX512F (1u << 2)
#define DIST_CPU_AVX512BW (1u << 3)
#define DIST_CPU_AVX512VNNI (1u << 4)
#define DIST_CPU_AVX512VPOPCNTDQ (1u << 5)
#define DIST_CPU_DOTPROD (1u << 8) /* Armv8.2 SDOT/UDOT (FEAT_DotProd); NEON
                                    * itself is part of the aarch64 base ISA */

/* What this CPU offers (DIST_CPU_* bits), minus the hidden ones. */
unsigned dist_cpu_features(void);
/* Treat the `features` bits as absent from now on (0: hide nothing): the
 * variants needing them are refused by name and skipped by "auto".  For
 * tests on machines that have everything, and for ruling an instruction set
 * out.  Does not change the selection: call dist_select() afterwards. */
void dist_cpu_hide(unsigned features);

/* Parse "l2"/"euclidean", "cosine", "dot"/"ip" (case-insensitive).
 * Returns 0 and sets *m, or -EINVAL. */
int dist_metric_parse(const char *s, size_t len, dist_metric *m);
const char *dist_metric_name(dist_metric m);

/* Internal distance under a metric, with kernel k (vectors prepared as the
 * metric requires: normalised for cosine). */
static inline float dist_internal(const dist_kernels *k, dist_metric m,
                                  const float *a, const float *b, size_t dim)
{
    switch (m) {
    case DIST_L2: return k->l2sq(a, b, dim);
    case DIST_COSINE: return 1.0f - k->dot(a, b, dim);
    default: return -k->dot(a, b, dim);
    }
}
/* Internal distance -> the distance reported to users (sqrt for l2). */
float dist_report(dist_metric m, float internal);

#endif
