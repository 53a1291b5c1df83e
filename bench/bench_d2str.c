/* bench_d2str.c -- the cost of util_d2str (a double as Redis 8 writes it in
 * replies) against util_d2str_slow, the printf/strtod reference it must
 * equal byte for byte (src/base/d2str.c).  One JSON line per value set:
 *
 *   scores  uniform doubles in [0, 2), all 53 bits random: what VSIM ...
 *           WITHSCORES and FT.SEARCH ... WITHSCORES format (almost all
 *           need 16-17 digits)
 *   bits    random 64-bit patterns, the finite ones: every exponent,
 *           subnormals included
 *
 * Figures
 *   fast_ns, slow_ns   ns a value; the best of many timed passes over
 *                      BENCH_VALUES values (in cache), as CPU time of this
 *                      thread: on shared cores noise only ever adds time,
 *                      and a descheduled thread is not charged for it
 *   speedup            slow_ns / fast_ns, the same run
 *   snprintf_17g_ns    snprintf("%.17g") on the same values, for scale
 *                      (what Redis before 7.2 wrote; not the same text)
 *   mismatches         values whose two texts differ (must be 0)
 *
 * Usage: bench_d2str [values-per-set]
 *
 * A benchmark, never a test: it asserts nothing about speed. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engram/util.h"

#define BENCH_VALUES 1024
#define BENCH_BUDGET_NS 4e8           /* per set and implementation */

typedef size_t (*fmt_fn)(char *buf, size_t cap, double v);

static double cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static size_t fmt_17g(char *buf, size_t cap, double v)
{
    int n = snprintf(buf, cap, "%.17g", v);
    return n > 0 ? (size_t)n : 0;
}

/* Best ns a value over passes of fn across vals[0..n), until the budget is
 * spent (at least 3 passes). */
static double time_fn(fmt_fn fn, const double *vals, size_t n)
{
    char buf[64];
    volatile size_t sink = 0;
    double best = 1e30, spent = 0;
    for (int pass = 0; pass < 3 || spent < BENCH_BUDGET_NS; pass++) {
        double t0 = cpu_ns();
        size_t len = 0;
        for (size_t i = 0; i < n; i++) len += fn(buf, sizeof buf, vals[i]);
        double dt = cpu_ns() - t0;
        sink += len;
        spent += dt;
        if (dt < best) best = dt;
    }
    (void)sink;
    return best / (double)n;
}

static void run_set(const char *name, const double *vals, size_t n)
{
    char a[64], b[64];
    size_t mismatches = 0;
    for (size_t i = 0; i < n; i++) {
        size_t na = util_d2str(a, sizeof a, vals[i]);
        size_t nb = util_d2str_slow(b, sizeof b, vals[i]);
        if (na != nb || memcmp(a, b, na) != 0) mismatches++;
    }
    double fast = time_fn(util_d2str, vals, n);
    double slow = time_fn(util_d2str_slow, vals, n);
    double g17 = time_fn(fmt_17g, vals, n);
    printf("{\"bench\":\"d2str\",\"set\":\"%s\",\"values\":%zu,\"fast_ns\":%.1f,"
           "\"slow_ns\":%.1f,\"speedup\":%.1f,\"snprintf_17g_ns\":%.1f,\"mismatches\":%zu}\n",
           name, n, fast, slow, slow / fast, g17, mismatches);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : BENCH_VALUES;
    if (n == 0) n = BENCH_VALUES;
    double *vals = malloc(n * sizeof *vals);
    if (!vals) return 1;
    uint64_t seed = 20261207;

    for (size_t i = 0; i < n; i++)                    /* [0, 2), 53 random bits */
        vals[i] = (double)(util_rand64(&seed) >> 11) * 0x1p-52;
    run_set("scores", vals, n);

    for (size_t i = 0; i < n;) {
        uint64_t bits = util_rand64(&seed);
        double v;
        memcpy(&v, &bits, sizeof v);
        if (isfinite(v)) vals[i++] = v;
    }
    run_set("bits", vals, n);
    free(vals);
    return 0;
}
