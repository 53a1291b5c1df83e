/* dist.c -- which distance kernels exist, which the CPU can run, and which
 * one the process uses.
 *
 * Design
 *   - CMake decides which variant files are compiled (dist_avx2.c and
 *     dist_avx512.c on x86-64, dist_neon.c on aarch64) and tells this file through
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
 *   - "auto" picks the first usable entry of dist_levels[], which is
 *     ordered best first; scalar, last, needs nothing.
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
    size_t level;   /* its rank in dist_levels */
    const dist_kernels *f; /* NULL: not compiled into this binary */
} dist_variant;

#if defined(ENGRAM_ARCH_x86_64)
#define DIST_X86(k) (&(k))
#define DIST_ARM(k) NULL
static const char *const dist_compiled[] = {"avx512", "avx2", "scalar", NULL};
#elif defined(ENGRAM_ARCH_aarch64)
#define DIST_X86(k) NULL
#define DIST_ARM(k) (&(k))
static const char *const dist_compiled[] = {"neon", "scalar", NULL};
#else
#define DIST_X86(k) NULL
#define DIST_ARM(k) NULL
static const char *const dist_compiled[] = {"scalar", NULL};
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

#define DIST_COUNT(t) (sizeof(t) / sizeof((t)[0]))

static const dist_kernels *dist_current = &dist_scalar_kernels;
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
    return v->f && (v->needs & ~features) == 0;
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

const dist_kernels *dist_kernels_by_name(const char *name)
{
    const dist_variant *v = dist_find(dist_levels, DIST_COUNT(dist_levels), name);
    return v && dist_usable(v, dist_cpu_features()) ? v->f : NULL;
}

int dist_select(const char *name)
{
    if (!name) return -EINVAL;
    unsigned features = dist_cpu_features();
    const dist_variant *lv;
    if (strcasecmp(name, "auto") == 0) {
        lv = dist_best(dist_levels, DIST_COUNT(dist_levels), 0, features);
    } else {
        lv = dist_find(dist_levels, DIST_COUNT(dist_levels), name);
        if (!lv) return -EINVAL;
        if (!dist_usable(lv, features)) return -ENOTSUP;
    }
    dist_current = lv->f;
    return 0;
}

const dist_kernels *dist_active(void)
{
    return dist_current;
}

const char *const *dist_compiled_names(void)
{
    return dist_compiled;
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
