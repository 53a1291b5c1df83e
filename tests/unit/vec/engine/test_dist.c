/* test_dist.c -- every compiled and supported kernel variant against the
 * scalar reference and against an exact (double) sum; selection; metric
 * names; dist_report.
 *
 * Tolerance (why it is not a magic number)
 *   Let u = 2^-24 (unit roundoff of float) and gamma(k) = k*u / (1 - k*u).
 *   A kernel computes n terms t_i (dot: a*b, one rounding; l2: (a-b)^2, two
 *   roundings, fewer with FMA) and adds them in *some* tree -- the scalar
 *   reference left to right, the SIMD variants lane-wise then across lanes.
 *   In any summation tree a term passes through at most n-1 additions, so
 *   with its own <= 2 roundings (Higham, "Accuracy and Stability of
 *   Numerical Algorithms", 2nd ed., sec. 3.1 and 4.2):
 *       |computed - exact| <= gamma(n + 1) * sum |t_i|
 *   We check every variant (scalar included) against the exact sum computed
 *   in double with gamma(n + 2) * sum|t_i| (one u of slack for the double
 *   reference itself), and a variant against scalar with twice that, since
 *   both sides may err in opposite directions.  At n = 768 that is
 *   4.6e-5 (vs exact) and 9.2e-5 (vs scalar) of sum|t_i| -- a worst case;
 *   typical errors grow like sqrt(n)*u and are far smaller, which is why a
 *   second, exact test exists (below).
 *   Inputs are multiples of 2^-23 in [-1, 1), so no product or square can
 *   underflow and no absolute term is needed.
 *
 * Exactness test
 *   Small integers (|x| <= 8) make every term an integer <= 256 and every
 *   partial sum < 1536 * 256 < 2^24, so every order of summation is exact:
 *   there the variants must equal scalar bit for bit.  This catches an
 *   off-by-one in a tail or a skipped chunk that a relative bound at
 *   large n might let through.
 *
 * Layout
 *   Every vector is allocated on its own with exactly the floats it needs,
 *   offset 0..3 floats from malloc's alignment, so ASan sees any read past
 *   the end and the loads are genuinely unaligned.  In one-to-many tests
 *   the gaps between records (stride > dim) hold NaN, so reading a
 *   neighbouring record's padding poisons the result; out[n] is a sentinel
 *   that must stay untouched.
 *
 * Variants the build lacks or the CPU cannot run are skipped (cmocka
 * "SKIPPED"), and each test prints which variant it ran. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engram/dist.h"
#include "testlib.h"

static const size_t test_dims[] = {1,  2,  3,  7,  8,   15,  16,  17,  31,  33,  63,
                                   64, 65, 100, 127, 128, 129, 384, 768, 1536};
#define NDIMS (sizeof test_dims / sizeof test_dims[0])

static const char *const all_names[] = {"avx512", "avx2", "neon", "scalar"};

/* ---- data ----------------------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng_next(void)
{
    return test_rng_next(&rng_state);
}

/* A multiple of 2^-23 in [-1, 1): exact in float, never underflows. */
static float rng_unit(void)
{
    return (float)((int32_t)(rng_next() >> 40) - (1 << 23)) / (float)(1 << 23);
}

static float rng_small_int(void)
{
    return (float)((int)(rng_next() >> 60) - 8); /* -8 .. 7 */
}

typedef struct buf {
    float *mem; /* what malloc returned */
    float *v;   /* mem + offset */
} buf;

static buf buf_new(size_t nfloats, size_t offset, int ints)
{
    buf b;
    b.mem = malloc((nfloats + offset) * sizeof(float));
    assert_non_null(b.mem);
    b.v = b.mem + offset;
    for (size_t i = 0; i < nfloats; i++) b.v[i] = ints ? rng_small_int() : rng_unit();
    return b;
}

/* ---- reference and bound -------------------------------------------------- */

typedef struct exact {
    double sum;  /* the exact (double) value of the metric */
    double mag;  /* sum of |t_i| */
} exact;

static exact exact_metric(int l2, const float *a, const float *b, size_t dim)
{
    exact e = {0, 0};
    for (size_t i = 0; i < dim; i++) {
        double t = l2 ? ((double)a[i] - b[i]) * ((double)a[i] - b[i]) : (double)a[i] * b[i];
        e.sum += t;
        e.mag += fabs(t);
    }
    return e;
}

static double gamma_k(size_t k)
{
    const double u = 0x1p-24;
    return (double)k * u / (1.0 - (double)k * u);
}

/* Largest |got - exact| / (u * sum|t_i|) seen by the current test, to show
 * how far inside the bound real errors stay. */
static double worst_in_u;

/* |got - exact| within gamma(n+2)*mag, and |got - ref| within twice that. */
static void check_value(const char *what, const char *variant, size_t dim, float got,
                        float ref, exact e)
{
    double bound = gamma_k(dim + 2) * e.mag;
    if (e.mag > 0) {
        double err = fabs((double)got - e.sum) / (0x1p-24 * e.mag);
        if (err > worst_in_u) worst_in_u = err;
    }
    if (fabs((double)got - e.sum) > bound || fabs((double)got - ref) > 2.0 * bound) {
        print_error("%s %s dim=%zu: got %.9g, scalar %.9g, exact %.9g, bound %.3g\n", variant,
                    what, dim, (double)got, (double)ref, e.sum, bound);
        fail();
    }
}

static const dist_kernels *variant_or_skip(const char *name)
{
    const dist_kernels *k = dist_kernels_by_name(name);
    if (!k) {
        print_message("[dist] %s: not compiled into this build or not supported by this CPU: skipped\n",
                      name);
        skip();
    }
    print_message("[dist] %s: running\n", name);
    return k;
}

/* ---- pair kernels ---------------------------------------------------------- */

static void test_pair(void **state)
{
    const char *name = *state;
    const dist_kernels *k = variant_or_skip(name);
    const dist_kernels *s = &dist_scalar_kernels;
    worst_in_u = 0;
    for (size_t di = 0; di < NDIMS; di++) {
        size_t dim = test_dims[di];
        for (size_t oa = 0; oa < 4; oa++) {
            size_t ob = (oa * 3 + 1) % 4; /* mix offsets: (0,1) (1,0) (2,3) (3,2) */
            buf a = buf_new(dim, oa, 0), b = buf_new(dim, ob, 0);
            exact el = exact_metric(1, a.v, b.v, dim), ed = exact_metric(0, a.v, b.v, dim);
            check_value("l2sq", name, dim, k->l2sq(a.v, b.v, dim), s->l2sq(a.v, b.v, dim), el);
            check_value("dot", name, dim, k->dot(a.v, b.v, dim), s->dot(a.v, b.v, dim), ed);
            /* Every term of l2sq(a, a) is exactly 0, in any order. */
            assert_true(k->l2sq(a.v, a.v, dim) == 0.0f);
            free(a.mem);
            free(b.mem);
        }
    }
    print_message("[dist] %s pair: worst error %.1f u * sum|t| (bound at dim 1536: %.0f u)\n",
                  name, worst_in_u, gamma_k(1536 + 2) / 0x1p-24);
}

static void test_pair_exact(void **state)
{
    const char *name = *state;
    const dist_kernels *k = variant_or_skip(name);
    const dist_kernels *s = &dist_scalar_kernels;
    for (size_t di = 0; di < NDIMS; di++) {
        size_t dim = test_dims[di];
        buf a = buf_new(dim, 1, 1), b = buf_new(dim, 2, 1);
        exact el = exact_metric(1, a.v, b.v, dim), ed = exact_metric(0, a.v, b.v, dim);
        assert_true(s->l2sq(a.v, b.v, dim) == (float)el.sum);
        assert_true(s->dot(a.v, b.v, dim) == (float)ed.sum);
        assert_true(k->l2sq(a.v, b.v, dim) == (float)el.sum);
        assert_true(k->dot(a.v, b.v, dim) == (float)ed.sum);
        free(a.mem);
        free(b.mem);
    }
}

/* ---- one-to-many kernels --------------------------------------------------- */

static const size_t test_ns[] = {0, 1, 2, 3, 4, 5, 7, 8, 9, 13};
static const size_t test_pads[] = {0, 1, 3, 16};

/* n records `stride` floats apart, the last one ending exactly at the end of
 * its allocation, gaps filled with NaN. */
static buf records_new(size_t n, size_t stride, size_t dim, size_t offset, int ints)
{
    size_t total = n ? (n - 1) * stride + dim : 1;
    buf b = buf_new(total, offset, ints);
    for (size_t i = 0; i < total; i++)
        if (i % stride >= dim) b.v[i] = NAN;
    return b;
}

static void run_many(const char *name, const dist_kernels *k, int ints)
{
    const dist_kernels *s = &dist_scalar_kernels;
    for (size_t di = 0; di < NDIMS; di++) {
        size_t dim = test_dims[di];
        for (size_t ni = 0; ni < sizeof test_ns / sizeof test_ns[0]; ni++) {
            size_t n = test_ns[ni];
            for (size_t pi = 0; pi < sizeof test_pads / sizeof test_pads[0]; pi++) {
                size_t stride = dim + test_pads[pi];
                size_t off = (di + ni + pi) % 4;
                buf q = buf_new(dim, (off + 1) % 4, ints);
                buf base = records_new(n, stride, dim, off, ints);
                float *out = malloc((n + 1) * sizeof *out);
                assert_non_null(out);
                for (int l2 = 0; l2 <= 1; l2++) {
                    out[n] = -12345.0f;
                    (l2 ? k->l2sq_many : k->dot_many)(q.v, base.v, n, stride, dim, out);
                    assert_true(out[n] == -12345.0f);
                    for (size_t i = 0; i < n; i++) {
                        const float *v = base.v + i * stride;
                        float ref = l2 ? s->l2sq(q.v, v, dim) : s->dot(q.v, v, dim);
                        exact e = exact_metric(l2, q.v, v, dim);
                        if (ints)
                            assert_true(out[i] == (float)e.sum);
                        else
                            check_value(l2 ? "l2sq_many" : "dot_many", name, dim, out[i], ref, e);
                    }
                }
                free(out);
                free(q.mem);
                free(base.mem);
            }
        }
    }
}

static void test_many(void **state)
{
    const char *name = *state;
    worst_in_u = 0;
    run_many(name, variant_or_skip(name), 0);
    print_message("[dist] %s many: worst error %.1f u * sum|t|\n", name, worst_in_u);
}

static void test_many_exact(void **state)
{
    const char *name = *state;
    run_many(name, variant_or_skip(name), 1);
}

/* ---- selection ------------------------------------------------------------- */

static void test_default_is_scalar(void **state)
{
    (void)state;
    /* Must run before any dist_select in this process. */
    assert_ptr_equal(dist_active(), &dist_scalar_kernels);
    assert_string_equal(dist_active()->name, "scalar");
}

static void test_compiled_names(void **state)
{
    (void)state;
    const char *const *names = dist_compiled_names();
    int has_scalar = 0;
    size_t count = 0;
    print_message("[dist] compiled:");
    for (; names[count]; count++) {
        const dist_kernels *k = dist_kernels_by_name(names[count]);
        print_message(" %s%s", names[count], k ? "" : "(cpu lacks it)");
        if (strcmp(names[count], "scalar") == 0) has_scalar = 1;
        if (k) assert_string_equal(k->name, names[count]);
    }
    print_message("\n");
    assert_true(has_scalar);
    /* No build has every variant: at least one known name is not compiled. */
    assert_true(count < sizeof all_names / sizeof all_names[0]);
}

static void test_select_auto(void **state)
{
    (void)state;
    const dist_kernels *want = NULL;
    for (size_t i = 0; i < sizeof all_names / sizeof all_names[0] && !want; i++)
        want = dist_kernels_by_name(all_names[i]);
    assert_int_equal(dist_select("auto"), 0);
    assert_ptr_equal(dist_active(), want);
    print_message("[dist] auto selected: %s\n", dist_active()->name);
#if defined(__x86_64__) && defined(__GNUC__)
    /* Independent of dist.c's own cpuid code: the compiler's view. */
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        assert_string_equal(dist_active()->name, "avx512");
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        assert_string_equal(dist_active()->name, "avx2");
#elif defined(__aarch64__)
    assert_string_equal(dist_active()->name, "neon");
#endif
    assert_int_equal(dist_select("AUTO"), 0);
    assert_ptr_equal(dist_active(), want);
}

static void test_select_named(void **state)
{
    (void)state;
    int notsup = 0;
    for (size_t i = 0; i < sizeof all_names / sizeof all_names[0]; i++) {
        const dist_kernels *k = dist_kernels_by_name(all_names[i]);
        int rc = dist_select(all_names[i]);
        if (k) {
            assert_int_equal(rc, 0);
            assert_ptr_equal(dist_active(), k);
        } else {
            assert_int_equal(rc, -ENOTSUP);
            notsup++;
        }
    }
    assert_true(notsup >= 1); /* see test_compiled_names */
    const dist_kernels *before = dist_active();
    assert_int_equal(dist_select("sse9"), -EINVAL);
    assert_int_equal(dist_select(""), -EINVAL);
    assert_int_equal(dist_select(NULL), -EINVAL);
    assert_ptr_equal(dist_active(), before); /* a failed select changes nothing */
    assert_null(dist_kernels_by_name("sse9"));
    assert_null(dist_kernels_by_name(NULL));
    assert_int_equal(dist_select("scalar"), 0);
    assert_ptr_equal(dist_active(), &dist_scalar_kernels);
}

/* The probe against the compiler's own (libgcc's cpuid code, which also
 * checks that the OS saves the registers), bit by bit. */
static void test_cpu_features(void **state)
{
    (void)state;
    unsigned f = dist_cpu_features();
    print_message("[dist] cpu features: 0x%x\n", f);
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    assert_int_equal(!!(f & DIST_CPU_AVX2), !!__builtin_cpu_supports("avx2"));
    assert_int_equal(!!(f & DIST_CPU_FMA), !!__builtin_cpu_supports("fma"));
    assert_int_equal(!!(f & DIST_CPU_AVX512F), !!__builtin_cpu_supports("avx512f"));
    assert_int_equal(!!(f & DIST_CPU_AVX512BW), !!__builtin_cpu_supports("avx512bw"));
    assert_int_equal(!!(f & DIST_CPU_AVX512VNNI), !!__builtin_cpu_supports("avx512vnni"));
    assert_int_equal(!!(f & DIST_CPU_AVX512VPOPCNTDQ), !!__builtin_cpu_supports("avx512vpopcntdq"));
    assert_int_equal(f & DIST_CPU_DOTPROD, 0);
#elif defined(__aarch64__)
    assert_int_equal(f & (DIST_CPU_AVX2 | DIST_CPU_FMA | DIST_CPU_AVX512F), 0);
#endif
}

/* A variant whose features are hidden is refused, by name and by select,
 * and "auto" passes it over: with everything hidden only the variants that
 * need nothing remain. */
static void test_select_hidden(void **state)
{
    (void)state;
    unsigned have = dist_cpu_features();
    dist_cpu_hide(~0u);
    assert_int_equal(dist_cpu_features(), 0);
    for (size_t i = 0; i < sizeof all_names / sizeof all_names[0]; i++) {
        const char *n = all_names[i];
        if (strcmp(n, "scalar") == 0 || strcmp(n, "neon") == 0) continue;
        assert_null(dist_kernels_by_name(n));
        assert_int_equal(dist_select(n), -ENOTSUP);
    }
    assert_int_equal(dist_select("auto"), 0);
    assert_true(dist_active() == &dist_scalar_kernels || strcmp(dist_active()->name, "neon") == 0);
    if (have & DIST_CPU_AVX512F) { /* only AVX-512 hidden: AVX2 takes over */
        dist_cpu_hide(DIST_CPU_AVX512F);
        assert_null(dist_kernels_by_name("avx512"));
        assert_int_equal(dist_select("auto"), 0);
        assert_string_equal(dist_active()->name, "avx2");
    }
    dist_cpu_hide(0);
    assert_int_equal(dist_cpu_features(), have);
    assert_int_equal(dist_select("scalar"), 0);
}

/* ---- metrics --------------------------------------------------------------- */

static void parse_ok(const char *s, dist_metric want)
{
    dist_metric m = (dist_metric)-1;
    assert_int_equal(dist_metric_parse(s, strlen(s), &m), 0);
    assert_int_equal(m, want);
}

static void test_metric_parse(void **state)
{
    (void)state;
    parse_ok("l2", DIST_L2);
    parse_ok("L2", DIST_L2);
    parse_ok("euclidean", DIST_L2);
    parse_ok("EucLidean", DIST_L2);
    parse_ok("cosine", DIST_COSINE);
    parse_ok("COSINE", DIST_COSINE);
    parse_ok("dot", DIST_DOT);
    parse_ok("Dot", DIST_DOT);
    parse_ok("ip", DIST_DOT);
    parse_ok("IP", DIST_DOT);

    dist_metric m = DIST_COSINE;
    /* Counted: only the first len bytes count, no NUL needed. */
    assert_int_equal(dist_metric_parse("l2 trailing", 2, &m), 0);
    assert_int_equal(m, DIST_L2);
    assert_int_equal(dist_metric_parse("cosine", 3, &m), -EINVAL);
    assert_int_equal(dist_metric_parse("cosines", 7, &m), -EINVAL);
    assert_int_equal(dist_metric_parse("l", 1, &m), -EINVAL);
    assert_int_equal(dist_metric_parse("", 0, &m), -EINVAL);
    assert_int_equal(dist_metric_parse("hamming", 7, &m), -EINVAL);
    assert_int_equal(dist_metric_parse(NULL, 0, &m), -EINVAL);
    assert_int_equal(m, DIST_L2); /* unchanged by failures */

    assert_string_equal(dist_metric_name(DIST_L2), "l2");
    assert_string_equal(dist_metric_name(DIST_COSINE), "cosine");
    assert_string_equal(dist_metric_name(DIST_DOT), "dot");
    for (int i = DIST_L2; i <= DIST_DOT; i++) { /* names parse back */
        const char *n = dist_metric_name((dist_metric)i);
        assert_int_equal(dist_metric_parse(n, strlen(n), &m), 0);
        assert_int_equal(m, i);
    }
}

static void test_report(void **state)
{
    (void)state;
    assert_true(dist_report(DIST_L2, 4.0f) == 2.0f);
    assert_true(dist_report(DIST_L2, 0.0f) == 0.0f);
    assert_true(dist_report(DIST_L2, -1e-7f) == 0.0f); /* rounding below zero */
    assert_true(isnan(dist_report(DIST_L2, NAN)));
    assert_true(dist_report(DIST_COSINE, 0.25f) == 0.25f);
    assert_true(dist_report(DIST_DOT, -3.5f) == -3.5f);

    /* dist_internal with the active kernel: unit vectors e0, e1. */
    float e0[3] = {1, 0, 0}, e1[3] = {0, 1, 0};
    const dist_kernels *k = dist_active();
    assert_true(dist_report(DIST_L2, dist_internal(k, DIST_L2, e0, e1, 3)) == sqrtf(2.0f));
    assert_true(dist_internal(k, DIST_COSINE, e0, e1, 3) == 1.0f);
    assert_true(dist_internal(k, DIST_COSINE, e0, e0, 3) == 0.0f);
    assert_true(dist_internal(k, DIST_DOT, e0, e0, 3) == -1.0f);
}

/* Named "<variant>/<test>" so cmocka's report says which variant ran. */
#define VARIANT_TEST(name, fn) {name "/" #fn, fn, NULL, NULL, (void *)name}
#define VARIANT_TESTS(name)                                              \
    VARIANT_TEST(name, test_pair), VARIANT_TEST(name, test_pair_exact), \
    VARIANT_TEST(name, test_many), VARIANT_TEST(name, test_many_exact)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_is_scalar),
        cmocka_unit_test(test_compiled_names),
        VARIANT_TESTS("scalar"),
        VARIANT_TESTS("avx2"),
        VARIANT_TESTS("avx512"),
        VARIANT_TESTS("neon"),
        cmocka_unit_test(test_select_auto),
        cmocka_unit_test(test_select_named),
        cmocka_unit_test(test_cpu_features),
        cmocka_unit_test(test_select_hidden),
        cmocka_unit_test(test_metric_parse),
        cmocka_unit_test(test_report),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
