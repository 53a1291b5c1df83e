/* dist.c -- which distance kernels exist, which the CPU can run, and which
 * one the process uses.
 *
 * Design
 *   - CMake decides which variant files are compiled (dist_avx2.c and
 *     dist_avx512.c on x86-64, dist_neon.c on aarch64) and tells this file
 *     through ENGRAM_ARCH_<arch>=1.  The only #if blocks here are at file
 *     level: the table of compiled variants and the per-architecture CPU
 *     probes.  No function body branches on the architecture.
 *   - This file is compiled without ISA flags, so it never executes an
 *     instruction the CPU might lack: detection uses cpuid/xgetbv only.
 *   - On x86 "the CPU has AVX" is not enough: the OS must also save the
 *     wider register state on context switches, or the upper halves of the
 *     registers would be silently corrupted.  XGETBV(0) reports what the OS
 *     enabled (XCR0): YMM needs bits 1-2 (SSE, AVX); ZMM additionally needs
 *     bits 5-7 (opmask, ZMM0-15 upper halves, ZMM16-31).  AVX2 kernels also
 *     use FMA, so both feature bits are required.
 *   - On aarch64 Advanced SIMD (NEON) is part of the base ISA.
 *   - "auto" picks the first supported entry of dist_variants[], which is
 *     ordered best first.
 *
 * Threads: dist_select() writes one plain pointer and must run before any
 * worker thread starts (as dist.h says); everything else only reads. */
#include "engram/dist.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <strings.h>

typedef struct dist_variant {
    const char *name;
    const dist_kernels *kernels;  /* NULL: not compiled into this binary */
    int (*supported)(void);       /* NULL: always supported once compiled */
} dist_variant;

#if defined(ENGRAM_ARCH_x86_64)
#include <cpuid.h>

#define DIST_XCR0_YMM 0x06u  /* XMM | YMM state */
#define DIST_XCR0_ZMM 0xE6u  /* XMM | YMM | opmask | ZMM_Hi256 | Hi16_ZMM */

/* XCR0 as the OS configured it.  Only valid when CPUID says OSXSAVE. */
static unsigned dist_xcr0(void)
{
    unsigned lo, hi;
    /* Encoded as bytes so assemblers that predate the mnemonic still work. */
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));
    (void)hi;
    return lo;
}

/* leaf1_ecx/leaf7_ebx of CPUID, and XCR0 if the OS exposes it (else 0). */
static void dist_cpuid(unsigned *leaf1_ecx, unsigned *leaf7_ebx, unsigned *xcr0)
{
    unsigned a, b, c, d;
    *leaf1_ecx = *leaf7_ebx = *xcr0 = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    *leaf1_ecx = c;
    if (c & bit_OSXSAVE) *xcr0 = dist_xcr0();
    /* __get_cpuid_count checks the highest supported leaf itself. */
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) *leaf7_ebx = b;
}

static int dist_has_avx2(void)
{
    unsigned ecx1, ebx7, xcr0;
    dist_cpuid(&ecx1, &ebx7, &xcr0);
    return (ecx1 & bit_OSXSAVE) && (ecx1 & bit_AVX) && (ecx1 & bit_FMA) &&
           (ebx7 & bit_AVX2) && (xcr0 & DIST_XCR0_YMM) == DIST_XCR0_YMM;
}

static int dist_has_avx512(void)
{
    unsigned ecx1, ebx7, xcr0;
    dist_cpuid(&ecx1, &ebx7, &xcr0);
    /* dist_avx512.c is built with -mavx512f -mfma, and to GCC -mavx512f
     * implies AVX2, so the compiler may use FMA and AVX2 instructions there
     * too.  Every AVX-512 CPU has both, but a hypervisor may mask features
     * one by one: check rather than assume. */
    return (ecx1 & bit_OSXSAVE) && (ecx1 & bit_AVX) && (ecx1 & bit_FMA) &&
           (ebx7 & bit_AVX2) && (ebx7 & bit_AVX512F) &&
           (xcr0 & DIST_XCR0_ZMM) == DIST_XCR0_ZMM;
}

static const dist_variant dist_variants[] = {
    {"avx512", &dist_avx512_kernels, dist_has_avx512},
    {"avx2", &dist_avx2_kernels, dist_has_avx2},
    {"neon", NULL, NULL},
    {"scalar", &dist_scalar_kernels, NULL},
};
static const char *const dist_compiled[] = {"avx512", "avx2", "scalar", NULL};

#elif defined(ENGRAM_ARCH_aarch64)
static const dist_variant dist_variants[] = {
    {"avx512", NULL, NULL},
    {"avx2", NULL, NULL},
    {"neon", &dist_neon_kernels, NULL},
    {"scalar", &dist_scalar_kernels, NULL},
};
static const char *const dist_compiled[] = {"neon", "scalar", NULL};

#else
static const dist_variant dist_variants[] = {
    {"avx512", NULL, NULL},
    {"avx2", NULL, NULL},
    {"neon", NULL, NULL},
    {"scalar", &dist_scalar_kernels, NULL},
};
static const char *const dist_compiled[] = {"scalar", NULL};
#endif

#define DIST_NVARIANTS (sizeof dist_variants / sizeof dist_variants[0])

static const dist_kernels *dist_current = &dist_scalar_kernels;

static int dist_variant_usable(const dist_variant *v)
{
    return v->kernels && (!v->supported || v->supported());
}

const dist_kernels *dist_kernels_by_name(const char *name)
{
    if (!name) return NULL;
    for (size_t i = 0; i < DIST_NVARIANTS; i++) {
        const dist_variant *v = &dist_variants[i];
        if (strcasecmp(name, v->name) == 0)
            return dist_variant_usable(v) ? v->kernels : NULL;
    }
    return NULL;
}

int dist_select(const char *name)
{
    if (!name) return -EINVAL;
    for (size_t i = 0; i < DIST_NVARIANTS; i++) {
        const dist_variant *v = &dist_variants[i];
        int match = strcasecmp(name, "auto") == 0 || strcasecmp(name, v->name) == 0;
        if (!match) continue;
        if (dist_variant_usable(v)) {
            dist_current = v->kernels;
            return 0;
        }
        /* "auto" falls through to the next (worse) variant; scalar, last,
         * is always usable, so the loop never ends on "auto". */
        if (strcasecmp(name, "auto") != 0) return -ENOTSUP;
    }
    return -EINVAL;
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
