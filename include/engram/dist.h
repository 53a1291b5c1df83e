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
 * Quantised vectors (quant.h says how floats become them, and how a
 * distance comes out of these integer results) have kernels of their own,
 * chosen the same way but per kernel, since the instructions that make them
 * fast are separate CPU features (AVX-512 VNNI, VPOPCNTDQ, Arm's dotprod):
 *   int8 dot     dist_i8_kernels:  "scalar", "avx2", "avx512bw", "avx512vnni",
 *                "neon", "neon-dotprod" (dist_quant_<isa>.c);
 *   Hamming      dist_bin_kernels: "scalar", "avx2", "avx512bw",
 *                "avx512vpopcntdq", "neon".
 * Both are exact integer results, so every variant must equal the scalar
 * reference bit for bit.
 *
 * Levels.  The `simd` setting names a level -- "auto", "avx512", "avx2",
 * "neon", "scalar" -- and dist_select() takes the float kernels of exactly
 * that level and, for int8 and Hamming, the best kernel the CPU runs at that
 * level or below (ordered as dist.c's tables): "avx512" on a CPU with
 * AVX512F but no AVX512BW gets the AVX2 int8 kernel, "avx2" never gets an
 * AVX-512 one, "scalar" gets the scalar ones throughout.
 *
 * Thread safety: kernels are pure.  dist_select() and dist_cpu_hide() write
 * process-wide state and must run before any worker thread starts. */
#ifndef ENGRAM_DIST_H
#define ENGRAM_DIST_H

#include <stddef.h>
#include <stdint.h>

typedef enum dist_metric { DIST_L2 = 0, DIST_COSINE = 1, DIST_DOT = 2 } dist_metric;

/* One-to-one: a and b need no particular alignment.  The pointers are
 * untyped so that one function type serves every stored-vector format
 * (vecbase.h's vec_format): the float kernels below read dim floats; the
 * quantised formats' distances (q8_dist, bin_dist below) read records as
 * quant.h lays them out. */
typedef float dist_pair_fn(const void *a, const void *b, size_t dim);
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

/* ---- quantised vectors ------------------------------------------------------- */

/* The exact dot product sum a_i * b_i of two int8 vectors of n components.
 * Every component must lie in [-127, 127]: the Q8 quantiser never produces
 * -128, and the SIMD variants rely on it (|a_i * b_i| <= 127^2 lets two
 * products share an int16, and -b_i is always an int8; see their files).
 * With n <= DIST_I8_DIM_MAX no partial sum leaves int32 (2^17 * 127^2 <
 * 2^31).  a and b need no particular alignment. */
typedef int32_t dist_i8_dot_fn(const int8_t *a, const int8_t *b, size_t n);
#define DIST_I8_DIM_MAX 131072u

/* The Hamming distance of two bit vectors of `words` 64-bit words: how many
 * bits differ.  Bits past the dimension must be equal in both (the BIN
 * quantiser clears them) or they count.  Any address a uint64_t may have. */
typedef uint64_t dist_hamming_fn(const uint64_t *a, const uint64_t *b, size_t words);

typedef struct dist_i8_kernels {
    const char *name; /* "scalar", "avx2", "avx512bw", "avx512vnni", "neon", "neon-dotprod" */
    dist_i8_dot_fn *dot;
    dist_pair_fn *q8_dist;   /* cosine distance of two Q8 records (quant.h), via dot */
} dist_i8_kernels;

typedef struct dist_bin_kernels {
    const char *name; /* "scalar", "avx2", "avx512bw", "avx512vpopcntdq", "neon" */
    dist_hamming_fn *hamming;
    dist_pair_fn *bin_dist;  /* cosine distance of two BIN records (quant.h), via hamming */
} dist_bin_kernels;

/* Variant tables, defined in their own files (only where compiled). */
extern const dist_i8_kernels dist_scalar_i8, dist_avx2_i8, dist_avx512bw_i8,
    dist_avx512vnni_i8, dist_neon_i8, dist_neon_dotprod_i8;
extern const dist_bin_kernels dist_scalar_bin, dist_avx2_bin, dist_avx512bw_bin,
    dist_avx512vpopcntdq_bin, dist_neon_bin;

/* ---- selection ---------------------------------------------------------------- */

/* Select the process-wide kernels: "auto" (the best the CPU supports) or a
 * level, which fixes the float kernels and bounds the int8 and Hamming ones
 * (see Levels above).  Returns 0, -EINVAL for an unknown name, -ENOTSUP
 * when that level is not compiled into this binary or the CPU lacks it; on
 * failure nothing changes. */
int dist_select(const char *name);
/* The selected kernel (scalar until dist_select runs). Never NULL. */
const dist_kernels *dist_active(void);
/* The selected int8 / Hamming kernels (scalar until dist_select runs), for
 * the engines and for INFO/VINFO to name.  Never NULL. */
const dist_i8_kernels *dist_i8_active(void);
const dist_bin_kernels *dist_bin_active(void);
/* A variant by name if compiled in and supported by this CPU, else NULL. */
const dist_kernels *dist_kernels_by_name(const char *name);
const dist_i8_kernels *dist_i8_by_name(const char *name);
const dist_bin_kernels *dist_bin_by_name(const char *name);
/* Names of all variants compiled into this binary, NULL-terminated, best
 * first. */
const char *const *dist_compiled_names(void);
const char *const *dist_i8_compiled_names(void);
const char *const *dist_bin_compiled_names(void);

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
