/* dist.c -- which distance kernels exist, which the CPU can run, and which
 * ones the process uses.
 *
 * Design
 *   - CMake decides which variant files are compiled (dist_avx2.c,
 *     dist_avx512.c and the dist_quant_avx*.c files on x86-64, dist_neon.c
 *     and dist_quant_neon*.c on aarch64) and tells this file through
 *     ENGRAM_ARCH_<arch>=1.  The only #if block here is at file level: two
 *     macros that turn a variant's table into a pointer, or NULL where it is
 *     not compiled, plus the lists of compiled names.  No function body
 *     branches on the architecture.
 *   - This file is compiled without ISA flags, so it never executes an
 *     instruction the CPU might lack.  What the CPU offers comes from the
 *     platform's probe (dist_cpu.h: CPUID/XGETBV on x86, HWCAP on Linux
 *     aarch64, sysctl on macOS) as DIST_CPU_* bits, and every variant
 *     lists the bits it needs: all that its file's compile flags let the
 *     compiler use (GCC's -mavx512f implies AVX2 and FMA, so every AVX-512
 *     variant needs those too; every AVX-512 CPU has them, but a hypervisor
 *     may mask features one by one).
 *   - Three tables, each ordered best first: the levels (the float
 *     kernels; the `simd` setting names one), the int8 kernels and the
 *     Hamming kernels.  Each int8/Hamming variant belongs to a level (its
 *     index in dist_levels); selecting a level takes the first usable
 *     int8/Hamming variant at that level or below, so "avx512" on a CPU
 *     without AVX512BW gets the AVX2 int8 kernel and "scalar" means scalar
 *     throughout.  "auto" takes the first usable entry of each table.
 *     Scalar, last in each, needs nothing, so there is always one.
 *
 * Threads: dist_select() and dist_cpu_hide() write plain variables and must
 * run before any worker thread starts (as dist.h says); everything else
 * only reads. */
#include "engram/dist.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <strings.h>

#include "dist_cpu.h"

typedef struct dist_variant {
    const char *name;
    unsigned needs; /* DIST_CPU_* bits */
    size_t level;   /* index into dist_levels of the level it belongs to */
    /* The kernels, in the field of the table's kind; NULL: not compiled
     * into this binary. */
    const dist_kernels *f;
    const dist_i8_kernels *i8;
    const dist_bin_kernels *bin;
} dist_variant;

#if defined(ENGRAM_ARCH_x86_64)
#define DIST_X86(k) (&(k))
#define DIST_ARM(k) NULL
static const char *const dist_compiled[] = {"avx512", "avx2", "scalar", NULL};
static const char *const dist_i8_compiled[] = {"avx512vnni", "avx512bw", "avx2", "scalar", NULL};
static const char *const dist_bin_compiled[] = {"avx512vpopcntdq", "avx512bw", "avx2", "scalar",
                                                NULL};
#elif defined(ENGRAM_ARCH_aarch64)
#define DIST_X86(k) NULL
#define DIST_ARM(k) (&(k))
static const char *const dist_compiled[] = {"neon", "scalar", NULL};
static const char *const dist_i8_compiled[] = {"neon-dotprod", "neon", "scalar", NULL};
static const char *const dist_bin_compiled[] = {"neon", "scalar", NULL};
#else
#define DIST_X86(k) NULL
#define DIST_ARM(k) NULL
static const char *const dist_compiled[] = {"scalar", NULL};
static const char *const dist_i8_compiled[] = {"scalar", NULL};
static const char *const dist_bin_compiled[] = {"scalar", NULL};
#endif

enum { DIST_LEVEL_AVX512, DIST_LEVEL_AVX2, DIST_LEVEL_NEON, DIST_LEVEL_SCALAR };

#define DIST_NEEDS_AVX2 (DIST_CPU_AVX2 | DIST_CPU_FMA)
#define DIST_NEEDS_AVX512 (DIST_NEEDS_AVX2 | DIST_CPU_AVX512F)

static const dist_variant dist_levels[] = {
    {.name = "avx512", .needs = DIST_NEEDS_AVX512, .level = DIST_LEVEL_AVX512,
     .f = DIST_X86(dist_avx512_kernels)},
    {.name = "avx2", .needs = DIST_NEEDS_AVX2, .level = DIST_LEVEL_AVX2,
     .f = DIST_X86(dist_avx2_kernels)},
    {.name = "neon", .level = DIST_LEVEL_NEON, .f = DIST_ARM(dist_neon_kernels)},
    {.name = "scalar", .level = DIST_LEVEL_SCALAR, .f = &dist_scalar_kernels},
};

static const dist_variant dist_i8_variants[] = {
    {.name = "avx512vnni", .level = DIST_LEVEL_AVX512,
     .needs = DIST_NEEDS_AVX512 | DIST_CPU_AVX512BW | DIST_CPU_AVX512VNNI,
     .i8 = DIST_X86(dist_avx512vnni_i8)},
    {.name = "avx512bw", .level = DIST_LEVEL_AVX512, .needs = DIST_NEEDS_AVX512 | DIST_CPU_AVX512BW,
     .i8 = DIST_X86(dist_avx512bw_i8)},
    /* dist_quant_avx2.c is built with -mavx2 alone: FMA is not needed. */
    {.name = "avx2", .level = DIST_LEVEL_AVX2, .needs = DIST_CPU_AVX2, .i8 = DIST_X86(dist_avx2_i8)},
    {.name = "neon-dotprod", .level = DIST_LEVEL_NEON, .needs = DIST_CPU_DOTPROD,
     .i8 = DIST_ARM(dist_neon_dotprod_i8)},
    {.name = "neon", .level = DIST_LEVEL_NEON, .i8 = DIST_ARM(dist_neon_i8)},
    {.name = "scalar", .level = DIST_LEVEL_SCALAR, .i8 = &dist_scalar_i8},
};

static const dist_variant dist_bin_variants[] = {
    {.name = "avx512vpopcntdq", .level = DIST_LEVEL_AVX512,
     .needs = DIST_NEEDS_AVX512 | DIST_CPU_AVX512VPOPCNTDQ,
     .bin = DIST_X86(dist_avx512vpopcntdq_bin)},
    {.name = "avx512bw", .level = DIST_LEVEL_AVX512, .needs = DIST_NEEDS_AVX512 | DIST_CPU_AVX512BW,
     .bin = DIST_X86(dist_avx512bw_bin)},
    {.name = "avx2", .level = DIST_LEVEL_AVX2, .needs = DIST_CPU_AVX2, .bin = DIST_X86(dist_avx2_bin)},
    {.name = "neon", .level = DIST_LEVEL_NEON, .bin = DIST_ARM(dist_neon_bin)},
    {.name = "scalar", .level = DIST_LEVEL_SCALAR, .bin = &dist_scalar_bin},
};

#define DIST_COUNT(t) (sizeof(t) / sizeof((t)[0]))

static const dist_kernels *dist_current = &dist_scalar_kernels;
static const dist_i8_kernels *dist_i8_current = &dist_scalar_i8;
static const dist_bin_kernels *dist_bin_current = &dist_scalar_bin;
static unsigned dist_hidden;

unsigned dist_cpu_features(void)
{
    return dist_cpu_detect() & ~dist_hidden;
}

void dist_cpu_hide(unsigned features)
{
    dist_hidden = features;
}

static int dist_usable(const dist_variant *v, unsigned features)
{
    return (v->f || v->i8 || v->bin) && (v->needs & ~features) == 0;
}

/* The entry called `name` (case-insensitive), or NULL. */
static const dist_variant *dist_find(const dist_variant *t, size_t n, const char *name)
{
    if (!name) return NULL;
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(name, t[i].name) == 0) return &t[i];
    return NULL;
}

/* The first usable entry at `level` or below.  Never NULL: scalar, last,
 * is at the lowest level and needs nothing. */
static const dist_variant *dist_best(const dist_variant *t, size_t n, size_t level,
                                     unsigned features)
{
    for (size_t i = 0; i < n; i++)
        if (t[i].level >= level && dist_usable(&t[i], features)) return &t[i];
    return &t[n - 1];
}

/* The entry called `name` if this CPU can run it, else NULL. */
static const dist_variant *dist_named(const dist_variant *t, size_t n, const char *name)
{
    const dist_variant *v = dist_find(t, n, name);
    return v && dist_usable(v, dist_cpu_features()) ? v : NULL;
}

const dist_kernels *dist_kernels_by_name(const char *name)
{
    const dist_variant *v = dist_named(dist_levels, DIST_COUNT(dist_levels), name);
    return v ? v->f : NULL;
}

const dist_i8_kernels *dist_i8_by_name(const char *name)
{
    const dist_variant *v = dist_named(dist_i8_variants, DIST_COUNT(dist_i8_variants), name);
    return v ? v->i8 : NULL;
}

const dist_bin_kernels *dist_bin_by_name(const char *name)
{
    const dist_variant *v = dist_named(dist_bin_variants, DIST_COUNT(dist_bin_variants), name);
    return v ? v->bin : NULL;
}

int dist_select(const char *name)
{
    if (!name) return -EINVAL;
    unsigned features = dist_cpu_features();
    const dist_variant *lv;
    size_t qlevel = 0; /* "auto": the best int8/Hamming kernels at any level */
    if (strcasecmp(name, "auto") == 0) {
        lv = dist_best(dist_levels, DIST_COUNT(dist_levels), 0, features);
    } else {
        lv = dist_find(dist_levels, DIST_COUNT(dist_levels), name);
        if (!lv) return -EINVAL;
        if (!dist_usable(lv, features)) return -ENOTSUP;
        qlevel = lv->level;
    }
    dist_current = lv->f;
    dist_i8_current = dist_best(dist_i8_variants, DIST_COUNT(dist_i8_variants), qlevel, features)->i8;
    dist_bin_current =
        dist_best(dist_bin_variants, DIST_COUNT(dist_bin_variants), qlevel, features)->bin;
    return 0;
}

const dist_kernels *dist_active(void)
{
    return dist_current;
}

const dist_i8_kernels *dist_i8_active(void)
{
    return dist_i8_current;
}

const dist_bin_kernels *dist_bin_active(void)
{
    return dist_bin_current;
}

const char *const *dist_compiled_names(void)
{
    return dist_compiled;
}

const char *const *dist_i8_compiled_names(void)
{
    return dist_i8_compiled;
}

const char *const *dist_bin_compiled_names(void)
{
    return dist_bin_compiled;
}

int dist_metric_parse(const char *s, size_t len, dist_metric *m)
{
    static const struct {
        const char *name;
        dist_metric metric;
    } names[] = {
        {"l2", DIST_L2},     {"euclidean", DIST_L2}, {"cosine", DIST_COSINE},
        {"dot", DIST_DOT},   {"ip", DIST_DOT},
    };
    if (!s || !m) return -EINVAL;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strlen(names[i].name) == len && strncasecmp(s, names[i].name, len) == 0) {
            *m = names[i].metric;
            return 0;
        }
    }
    return -EINVAL;
}

const char *dist_metric_name(dist_metric m)
{
    switch (m) {
    case DIST_L2: return "l2";
    case DIST_COSINE: return "cosine";
    case DIST_DOT: return "dot";
    }
    return "unknown";
}

float dist_report(dist_metric m, float internal)
{
    if (m == DIST_L2) {
        /* The squared sum of non-negative terms cannot be negative, but a
         * caller may pass a value derived by subtraction (e.g. from norms);
         * never hand sqrtf a tiny negative and report NaN. */
        if (internal < 0.0f) internal = 0.0f;
        return sqrtf(internal);
    }
    return internal;
}
