/* test_d2str.c -- src/base/d2str.c: util_d2str (shortest digits by exact
 * scaling) must write the very bytes util_d2str_slow (printf and strtod,
 * the reference) writes, for every double.  What it looks at:
 *   - the special values and integers (shared code, but checked anyway);
 *   - families where a scaling algorithm goes wrong, each with its
 *     neighbours: powers of ten and of two (the lopsided interval),
 *     subnormals, DBL_MIN, DBL_MAX, values on either side of the layout's
 *     switches between integer, fixed and exponent forms, and mantissas
 *     with few bits set (exact ends of the interval, exact ties);
 *   - 500,000 random bit patterns and 1 million random short decimals
 *     ("nice" values, as typed), deterministic seeds.
 * The random values run on every CPU (up to 8): the reference costs ~2 us
 * a random bit pattern (printf and strtod work in multiple precision at
 * large exponents), so the 500,000 take ~1 s of CPU (the sanitizer
 * stages and qemu run this test too, 10-30x slower).  ENGRAM_D2STR_RANDOM=n sets
 * their number for a run by hand (10000000 took ~20 s of CPU; 62 million
 * values were compared once, offline, with no difference).  test_util.c checks the texts themselves against Redis's. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engram/util.h"

#define RANDOM_BITS 500000
#define RANDOM_DECIMALS 1000000
#define MAX_THREADS 8

/* Both texts of v; 1 if they are the same bytes. */
static int same_text(double v, char *fast, char *slow)
{
    size_t nf = util_d2str(fast, 64, v);
    size_t ns = util_d2str_slow(slow, 64, v);
    return nf > 0 && nf == ns && memcmp(fast, slow, nf + 1) == 0;
}

static void check_same(double v)
{
    char fast[64], slow[64];
    if (!same_text(v, fast, slow)) {
        print_error("v = %a (%.17g): util_d2str \"%s\", util_d2str_slow \"%s\"\n", v, v, fast, slow);
        fail();
    }
}

/* v, -v and their neighbours on either side. */
static void check_around(double v)
{
    double a[] = { v, nextafter(v, INFINITY), nextafter(v, -INFINITY) };
    for (int i = 0; i < 3; i++) {
        if (!isfinite(a[i])) continue;
        check_same(a[i]);
        check_same(-a[i]);
    }
}

static double from_bits(uint64_t bits)
{
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static void test_d2str_specials(void **state)
{
    (void)state;
    static const struct { double v; const char *s; } cases[] = {
        { 0.0, "0" }, { -0.0, "-0" }, { NAN, "nan" }, { -NAN, "nan" },
        { INFINITY, "inf" }, { -INFINITY, "-inf" },
    };
    char fast[64], slow[64];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        assert_true(same_text(cases[i].v, fast, slow));
        assert_string_equal(fast, cases[i].s);
    }
    /* a NaN with any payload */
    assert_true(same_text(from_bits(0x7ff0000000000001u), fast, slow));
    assert_string_equal(fast, "nan");
    /* cap counts the NUL, on both paths */
    assert_int_equal(util_d2str(fast, 3, 0.5), 0);
    assert_int_equal(util_d2str_slow(slow, 3, 0.5), 0);
    assert_int_equal(util_d2str(fast, 4, 0.5), 3);
    assert_int_equal(util_d2str(fast, 25, -1.2345678901234567e23), 0);
    assert_int_equal(util_d2str(fast, 26, -1.2345678901234567e23), 25);
}

static void test_d2str_integers(void **state)
{
    (void)state;
    for (int i = -10000; i <= 10000; i++) check_same((double)i);
    for (int i = -3000; i <= 3000; i++) {
        check_same(0x1p53 + 2.0 * i);
        check_same(0x1p62 + 1024.0 * i);              /* the double2ll edge */
        check_same(-0x1p62 + 1024.0 * i);
        check_same(0x1p63 + 2048.0 * i);
        check_same(0x1p64 + 4096.0 * i);
    }
    for (int e = 0; e <= 971; e++)                    /* (2^53 - 1) x 2^e */
        check_around(ldexp(0x1.fffffffffffffp52, e));
}

static void test_d2str_powers(void **state)
{
    (void)state;
    char s[32];
    for (int e = -330; e <= 310; e++) {               /* powers of ten, +- 1 ulp */
        snprintf(s, sizeof s, "1e%d", e);
        check_around(strtod(s, NULL));
        for (int d = 2; d <= 9; d++) {
            snprintf(s, sizeof s, "%de%d", d, e);
            check_around(strtod(s, NULL));
        }
    }
    for (int e = -1074; e <= 1023; e++) {             /* powers of two, +- 1 ulp */
        check_around(ldexp(1.0, e));
        check_around(ldexp(3.0, e - 1));
    }
}

static void test_d2str_range_ends(void **state)
{
    (void)state;
    uint64_t seed = 5;
    check_around(DBL_MAX);
    check_around(DBL_MIN);
    check_around(DBL_TRUE_MIN);
    check_around(DBL_EPSILON);
    for (uint64_t m = 1; m < 5000; m++) {             /* the smallest subnormals */
        check_same(from_bits(m));
        check_same(from_bits(0x000fffffffffffffu - m + 1));  /* the largest */
        check_same(from_bits(0x7fefffffffffffffu - m));      /* near DBL_MAX */
        check_same(from_bits(0x0010000000000000u + m));      /* above DBL_MIN */
    }
    for (int i = 0; i < 100000; i++) {                /* random subnormals */
        uint64_t bits = util_rand64(&seed) & 0x800fffffffffffffu;
        if (bits << 1) check_same(from_bits(bits));
    }
}

/* The layout changes at an exponent: integers in full while it is below
 * nd + 7, fixed fractions while k > -7 or |x| < 4.  Every length 1..17,
 * every decimal exponent from -12 to 30, and the neighbours. */
static void test_d2str_layout_switches(void **state)
{
    (void)state;
    uint64_t seed = 7;
    char s[48];
    for (int nd = 1; nd <= 17; nd++) {
        for (int x = -12; x <= 30; x++) {
            for (int r = 0; r < 20; r++) {
                uint64_t lo = 1, dig;
                for (int i = 1; i < nd; i++) lo *= 10;
                dig = lo + util_rand64(&seed) % (lo * 9);        /* nd digits */
                if (r == 0) dig = lo;                            /* 100...0 */
                if (r == 1) dig = lo * 10 - 1;                   /* 999...9 */
                snprintf(s, sizeof s, "%llue%d", (unsigned long long)dig, x - nd + 1);
                check_around(strtod(s, NULL));
            }
        }
    }
}

/* Few mantissa bits: the ends of the rounding interval and the midpoint
 * between two candidates can be exact decimals, where ties are decided. */
static void test_d2str_exact_ends(void **state)
{
    (void)state;
    uint64_t seed = 9;
    for (uint64_t m = 1; m < 64; m++)
        for (int e = -1074; e <= 1023; e++)
            if (isfinite(ldexp((double)m, e))) check_same(ldexp((double)m, e));
    for (int i = 0; i < 200000; i++) {
        uint64_t r = util_rand64(&seed);
        int keep = (int)(r % 14);                             /* top mantissa bits kept */
        uint64_t mant = util_rand64(&seed) & 0x000fffffffffffffu;
        mant &= ~((UINT64_C(1) << (52 - keep)) - 1);
        uint64_t bexp = (r >> 8) % 2047;
        check_same(from_bits(bexp << 52 | mant));
    }
    for (int i = 0; i < 100000; i++) {                        /* m x 2^e, m small */
        uint64_t r = util_rand64(&seed);
        double v = ldexp((double)(r % 1000000), (int)((r >> 32) % 2110) - 1085);
        if (isfinite(v)) check_same(v);
    }
}

/* ---- random values, compared on every CPU (up to 8) ---------------------- */

typedef double (*gen_fn)(uint64_t *seed);      /* a value, or NaN to skip */

typedef struct {
    gen_fn gen;
    uint64_t seed;
    long n, mismatches;
    double first;                     /* the first value that differed */
} cmp_job;

static void *cmp_run(void *arg)
{
    cmp_job *job = arg;
    char fast[64], slow[64];
    for (long i = 0; i < job->n; i++) {
        double v = job->gen(&job->seed);
        if (isnan(v)) continue;
        if (!same_text(v, fast, slow) && job->mismatches++ == 0) job->first = v;
    }
    return NULL;
}

/* n values of gen compared, split over the CPUs; cmocka's asserts stay on
 * this thread. */
static void compare_parallel(gen_fn gen, long n, uint64_t seed)
{
    pthread_t th[MAX_THREADS];
    cmp_job jobs[MAX_THREADS];
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int nt = cpus < 1 ? 1 : cpus > MAX_THREADS ? MAX_THREADS : (int)cpus;
    for (int t = 0; t < nt; t++) {
        jobs[t] = (cmp_job){ .gen = gen, .seed = seed + (uint64_t)t, .n = n / nt + (t < n % nt) };
        assert_int_equal(pthread_create(&th[t], NULL, cmp_run, &jobs[t]), 0);
    }
    for (int t = 0; t < nt; t++) assert_int_equal(pthread_join(th[t], NULL), 0);
    for (int t = 0; t < nt; t++) {
        if (jobs[t].mismatches) check_same(jobs[t].first);   /* prints both texts */
        assert_int_equal(jobs[t].mismatches, 0);
    }
}

static double gen_bits(uint64_t *seed)
{
    double v = from_bits(util_rand64(seed));
    return isinf(v) ? NAN : v;
}

/* Values as typed: 1-8 significant digits, a scale from 1e-10 to 1e10
 * (0.25, 3.14159, 1250000, 0.0003); half of them read from the text, half
 * computed (m / 10^s, which need not be the double nearest the text). */
static double gen_decimal(uint64_t *seed)
{
    static const uint32_t pow10[] = { 1, 10, 100, 1000, 10000, 100000, 1000000,
                                      10000000, 100000000 };
    uint64_t r = util_rand64(seed);
    int nd = 1 + (int)(r % 8), x = (int)((r >> 8) % 21) - 10;
    uint64_t dig = (r >> 16) % pow10[nd];
    double v;
    if (r >> 62 & 1) {
        char s[48];
        snprintf(s, sizeof s, "%llue%d", (unsigned long long)dig, x);
        v = strtod(s, NULL);
    } else {
        v = x < 0 ? (double)dig / pow(10, -x) : (double)dig * pow(10, x);
    }
    return r >> 63 ? -v : v;
}

static void test_d2str_random_bits(void **state)
{
    (void)state;
    const char *e = getenv("ENGRAM_D2STR_RANDOM");
    compare_parallel(gen_bits, e && atol(e) > 0 ? atol(e) : RANDOM_BITS, 1000);
}

static void test_d2str_random_decimals(void **state)
{
    (void)state;
    compare_parallel(gen_decimal, RANDOM_DECIMALS, 2000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_d2str_specials),
        cmocka_unit_test(test_d2str_integers),
        cmocka_unit_test(test_d2str_powers),
        cmocka_unit_test(test_d2str_range_ends),
        cmocka_unit_test(test_d2str_layout_switches),
        cmocka_unit_test(test_d2str_exact_ends),
        cmocka_unit_test(test_d2str_random_bits),
        cmocka_unit_test(test_d2str_random_decimals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
