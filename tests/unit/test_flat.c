/* test_flat.c -- FLAT must be exactly the brute-force answer, ties by id.
 *
 * Exactness without tolerances: the data are small integers (l2, dot) or
 * vectors of 1, 4 or 16 entries of +-1 (cosine, so the normalised entries
 * are +-1, +-1/2, +-1/4), so every distance is exact in float whatever the
 * kernel's summation order, and ties are plentiful. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engram/dist.h"
#include "engram/flat.h"

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Integer entries in [-4, 4]; every 7th vector repeats an earlier one. */
static float *int_data(uint32_t n, uint32_t dim, uint64_t seed)
{
    float *x = malloc((size_t)n * dim * sizeof *x);
    assert_non_null(x);
    for (uint32_t i = 0; i < n; i++) {
        float *v = x + (size_t)i * dim;
        if (i > 0 && i % 7 == 0) {
            memcpy(v, x + (size_t)(rng_next(&seed) % i) * dim, dim * sizeof *v);
            continue;
        }
        for (uint32_t j = 0; j < dim; j++) v[j] = (float)((int)(rng_next(&seed) % 9) - 4);
    }
    return x;
}

/* Unit vectors with 1, 4 or 16 non-zero entries of +-1/sqrt(nz). */
static float *unit_data(uint32_t n, uint32_t dim, uint64_t seed)
{
    float *x = calloc((size_t)n * dim, sizeof *x);
    assert_non_null(x);
    for (uint32_t i = 0; i < n; i++) {
        static const uint32_t nzs[3] = { 1, 4, 16 };
        uint32_t nz = nzs[rng_next(&seed) % 3];
        float val = nz == 1 ? 1.0f : nz == 4 ? 0.5f : 0.25f;
        float *v = x + (size_t)i * dim;
        for (uint32_t k = 0; k < nz;) {
            uint32_t j = (uint32_t)(rng_next(&seed) % dim);
            if (v[j] != 0.0f) continue;
            v[j] = rng_next(&seed) & 1 ? val : -val;
            k++;
        }
    }
    return x;
}

/* The test's own brute force: exact for these data, in double. */
static float brute_dist(dist_metric m, const float *a, const float *b, uint32_t dim)
{
    double s = 0;
    for (uint32_t j = 0; j < dim; j++)
        s += m == DIST_L2 ? ((double)a[j] - b[j]) * ((double)a[j] - b[j]) : (double)a[j] * b[j];
    return (float)(m == DIST_L2 ? s : m == DIST_COSINE ? 1.0 - s : -s);
}

static int pair_cmp(const void *pa, const void *pb)
{
    const vindex_pair *a = pa, *b = pb;
    if (a->dist != b->dist) return a->dist < b->dist ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* Brute-force top k over live ids (accept filter optional). */
static uint32_t brute_topk(dist_metric m, const float *x, const uint8_t *live, uint32_t n,
                           uint32_t dim, const float *q, uint32_t k, vindex_filter_fn *acc,
                           vindex_pair *out)
{
    vindex_pair *all = malloc((size_t)n * sizeof *all);
    uint32_t c = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!live[i] || (acc && !acc(NULL, i))) continue;
        all[c++] = (vindex_pair){ brute_dist(m, q, x + (size_t)i * dim, dim), i };
    }
    qsort(all, c, sizeof *all, pair_cmp);
    uint32_t r = c < k ? c : k;
    memcpy(out, all, r * sizeof *out);
    free(all);
    return r;
}

static int accept_mod3(void *ud, uint32_t id)
{
    (void)ud;
    return id % 3 != 1;
}

static void exact_case_k(dist_metric m, uint32_t dim, const dist_kernels *kern);

/* Every kernel compiled in and supported here must give the exact answer. */
static void exact_case(dist_metric m, uint32_t dim)
{
    for (const char *const *name = dist_compiled_names(); *name; name++) {
        const dist_kernels *k = dist_kernels_by_name(*name);
        if (k) exact_case_k(m, dim, k);
    }
}

static void exact_case_k(dist_metric m, uint32_t dim, const dist_kernels *kern)
{
    const uint32_t n = 3000, nq = 60;
    float *x = m == DIST_COSINE ? unit_data(n + nq, dim, 9 + dim) : int_data(n + nq, dim, 9 + dim);
    flat_params p = { .dim = dim, .metric = m, .kernels = kern };
    flat *f = flat_new(&p, NULL);
    assert_non_null(f);
    uint8_t *live = calloc(n, 1);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t id;
        assert_int_equal(flat_insert(f, x + (size_t)i * dim, &id), 0);
        assert_int_equal(id, i);
        live[i] = 1;
    }
    /* Holes: deleted slots must never be returned. */
    for (uint32_t i = 5; i < n; i += 11) {
        assert_int_equal(flat_delete(f, i), 0);
        live[i] = 0;
    }
    static const uint32_t ks[] = { 1, 10, 37, 5000 };
    vindex_pair *got = malloc(n * sizeof *got), *want = malloc(n * sizeof *want);
    for (uint32_t qi = 0; qi < nq; qi++) {
        const float *q = x + (size_t)(n + qi) * dim;
        for (uint32_t t = 0; t < 4; t++) {
            vindex_filter_fn *acc = (qi & 1) ? accept_mod3 : NULL;
            uint32_t ng, nw = brute_topk(m, x, live, n, dim, q, ks[t], acc, want);
            assert_int_equal(flat_search(f, q, ks[t], acc, NULL, got, &ng), 0);
            assert_int_equal(ng, nw);
            for (uint32_t i = 0; i < ng; i++) {
                assert_int_equal(got[i].id, want[i].id);
                assert_true(got[i].dist == want[i].dist);
            }
        }
    }
    char err[128];
    assert_int_equal(flat_validate(f, err, sizeof err), 0);
    free(got);
    free(want);
    free(live);
    free(x);
    flat_free(f);
}

static void test_exact_l2(void **state) { (void)state; exact_case(DIST_L2, 16); exact_case(DIST_L2, 37); }
static void test_exact_dot(void **state) { (void)state; exact_case(DIST_DOT, 16); exact_case(DIST_DOT, 37); }
static void test_exact_cosine(void **state) { (void)state; exact_case(DIST_COSINE, 16); exact_case(DIST_COSINE, 64); }

static void test_ties_by_id(void **state)
{
    (void)state;
    flat_params p = { .dim = 3, .metric = DIST_L2 };
    flat *f = flat_new(&p, NULL);
    const float v[3] = { 1, 2, 3 }, w[3] = { 1, 2, 4 };
    uint32_t id;
    for (int i = 0; i < 20; i++) assert_int_equal(flat_insert(f, i % 2 ? w : v, &id), 0);
    vindex_pair out[20];
    uint32_t n;
    assert_int_equal(flat_search(f, v, 20, NULL, NULL, out, &n), 0);
    assert_int_equal(n, 20);
    for (uint32_t i = 0; i < 10; i++) {
        assert_int_equal(out[i].id, 2 * i);
        assert_int_equal(out[10 + i].id, 2 * i + 1);
    }
    flat_free(f);
}

static void test_free_list_reuse(void **state)
{
    (void)state;
    flat_params p = { .dim = 4, .metric = DIST_DOT };
    flat *f = flat_new(&p, NULL);
    const float v[4] = { 1, 0, 0, 0 };
    uint32_t id;
    for (int i = 0; i < 100; i++) assert_int_equal(flat_insert(f, v, &id), 0);
    uint32_t cap = flat_capacity(f);
    size_t mem = flat_memory(f);
    assert_int_equal(flat_delete(f, 10), 0);
    assert_int_equal(flat_delete(f, 20), 0);
    assert_int_equal(flat_delete(f, 20), -EINVAL);
    assert_null(flat_vector(f, 20));
    assert_int_equal(flat_insert(f, v, &id), 0);
    assert_int_equal(id, 20);               /* most recently freed first */
    assert_int_equal(flat_insert(f, v, &id), 0);
    assert_int_equal(id, 10);
    for (int round = 0; round < 1000; round++) {
        assert_int_equal(flat_delete(f, (uint32_t)(round * 37) % 100), 0);
        assert_int_equal(flat_insert(f, v, &id), 0);
    }
    assert_int_equal(flat_count(f), 100);
    assert_int_equal(flat_capacity(f), cap);
    assert_true(flat_memory(f) == mem);
    const float u[4] = { 0, 2, 0, 0 };
    assert_int_equal(flat_update(f, 7, u), 0);
    assert_memory_equal(flat_vector(f, 7), u, sizeof u);
    assert_int_equal(flat_validate(f, NULL, 0), 0);
    vindex_pair out[3];
    uint32_t n;
    assert_int_equal(flat_search(f, u, 0, NULL, NULL, out, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(flat_search(f, u, 3, NULL, NULL, out, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(out[0].id, 7);
    assert_true(out[0].dist == -4.0f);
    flat_free(f);
    flat_free(NULL);
}

static long budget;
static void *b_alloc(void *ud, size_t n) { (void)ud; return budget-- > 0 ? malloc(n) : NULL; }
static void b_free(void *ud, void *p, size_t n) { (void)ud; (void)n; free(p); }

static void test_enomem(void **state)
{
    (void)state;
    vindex_allocator al = { b_alloc, b_free, NULL };
    flat_params p = { .dim = 8, .metric = DIST_L2, .alloc = &al };
    budget = 1;
    flat *f = flat_new(&p, NULL);
    assert_non_null(f);
    float v[8] = { 0 };
    uint32_t id;
    budget = 1;                              /* vectors yes, live flags no */
    assert_int_equal(flat_insert(f, v, &id), -ENOMEM);
    assert_int_equal(flat_count(f), 0);
    budget = 100;
    assert_int_equal(flat_insert(f, v, &id), 0);
    assert_int_equal(flat_count(f), 1);
    budget = 0;
    int err = 0;
    assert_null(flat_new(&p, &err));
    assert_int_equal(err, -ENOMEM);
    p.dim = 0;
    assert_null(flat_new(&p, &err));
    assert_int_equal(err, -EINVAL);
    flat_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_l2),
        cmocka_unit_test(test_exact_dot),
        cmocka_unit_test(test_exact_cosine),
        cmocka_unit_test(test_ties_by_id),
        cmocka_unit_test(test_free_list_reuse),
        cmocka_unit_test(test_enomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
