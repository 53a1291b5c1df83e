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
    const vec_pair *a = pa, *b = pb;
    if (a->dist != b->dist) return a->dist < b->dist ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* Brute-force top k over live ids (accept filter optional). */
static uint32_t brute_topk(dist_metric m, const float *x, const uint8_t *live, uint32_t n,
                           uint32_t dim, const float *q, uint32_t k, vec_filter_fn *acc,
                           vec_pair *out)
{
    vec_pair *all = malloc((size_t)n * sizeof *all);
    uint32_t c = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!live[i] || (acc && !acc(NULL, i))) continue;
        all[c++] = (vec_pair){ brute_dist(m, q, x + (size_t)i * dim, dim), i };
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
    vec_pair *got = malloc(n * sizeof *got), *want = malloc(n * sizeof *want);
    for (uint32_t qi = 0; qi < nq; qi++) {
        const float *q = x + (size_t)(n + qi) * dim;
        for (uint32_t t = 0; t < 4; t++) {
            vec_filter_fn *acc = (qi & 1) ? accept_mod3 : NULL;
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
    vec_pair out[20];
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
    vec_pair out[3];
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
    /* No realloc: growth takes the allocate-copy-free way here (the
     * in-place way is covered by test_hnsw's ENOMEM test and test_vindex). */
    vec_allocator al = { b_alloc, b_free, NULL, NULL };
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

/* ---- ranges and merging: the split a multi-threaded search relies on ---- */

/* A flat of n vectors from x with free slots in runs of every length from 1
 * to 40 (short gaps are read through, long ones skipped: both paths), plus
 * an all-dead block; live[] mirrors it. */
static flat *holey_flat(dist_metric m, uint32_t dim, const float *x, uint32_t n,
                        const dist_kernels *kern, uint8_t *live, uint64_t seed)
{
    flat_params p = { .dim = dim, .metric = m, .kernels = kern };
    flat *f = flat_new(&p, NULL);
    assert_non_null(f);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t id;
        assert_int_equal(flat_insert(f, x + (size_t)i * dim, &id), 0);
        live[i] = 1;
    }
    for (uint32_t i = 3; i + 40 < n;) {
        uint32_t run = 1 + (uint32_t)(rng_next(&seed) % 40);
        for (uint32_t j = i; j < i + run; j++) {
            assert_int_equal(flat_delete(f, j), 0);
            live[j] = 0;
        }
        i += run + 1 + (uint32_t)(rng_next(&seed) % 60);
    }
    for (uint32_t j = 1024; j < 1024 + 300 && j < n; j++)
        if (live[j]) {
            assert_int_equal(flat_delete(f, j), 0);
            live[j] = 0;
        }
    return f;
}

/* Brute force over ids [lo, hi) only (hi clamped to n). */
static uint32_t brute_range(dist_metric m, const float *x, const uint8_t *live, uint32_t n,
                            uint32_t dim, const float *q, uint32_t k, uint32_t lo, uint32_t hi,
                            vec_filter_fn *acc, vec_pair *out)
{
    uint8_t *in = calloc(n ? n : 1, 1);
    for (uint32_t i = lo; i < hi && i < n; i++) in[i] = live[i];
    uint32_t r = brute_topk(m, x, in, n, dim, q, k, acc, out);
    free(in);
    return r;
}

static void assert_pairs_equal(const vec_pair *a, uint32_t na, const vec_pair *b,
                               uint32_t nb)
{
    assert_int_equal(na, nb);
    for (uint32_t i = 0; i < na; i++) {
        assert_int_equal(a[i].id, b[i].id);
        assert_true(a[i].dist == b[i].dist);
    }
}

static void range_case(dist_metric m, uint32_t dim, const dist_kernels *kern)
{
    const uint32_t n = 2000, nq = 12;
    uint64_t seed = 77 + dim;
    float *x = m == DIST_COSINE ? unit_data(n + nq, dim, seed) : int_data(n + nq, dim, seed);
    uint8_t *live = malloc(n);
    flat *f = holey_flat(m, dim, x, n, kern, live, seed);
    assert_int_equal(flat_used(f), n);
    vec_pair *got = malloc(n * sizeof *got), *want = malloc(n * sizeof *want);
    for (uint32_t qi = 0; qi < nq; qi++) {
        const float *q = x + (size_t)(n + qi) * dim;
        vec_filter_fn *acc = (qi & 1) ? accept_mod3 : NULL;
        for (uint32_t t = 0; t < 40; t++) {
            /* Empty (lo == hi, lo > hi), clamped (hi past the end, lo past
             * the end), tiny, block-straddling and whole ranges. */
            uint32_t lo = (uint32_t)(rng_next(&seed) % (n + 50));
            uint32_t hi = t % 5 == 0 ? lo : t % 5 == 1 ? lo + (uint32_t)(rng_next(&seed) % 8)
                        : t % 5 == 2 ? (uint32_t)(rng_next(&seed) % (n + 50))
                        : t % 5 == 3 ? UINT32_MAX : lo + 1 + (uint32_t)(rng_next(&seed) % 700);
            if (t == 39) lo = 0, hi = n;
            static const uint32_t ks[] = { 1, 10, 37, 3000 };
            uint32_t k = ks[t % 4], ng = 99;
            uint32_t nw = lo < hi ? brute_range(m, x, live, n, dim, q, k, lo, hi, acc, want) : 0;
            assert_int_equal(flat_search_range(f, q, k, lo, hi, acc, NULL, got, &ng), 0);
            assert_pairs_equal(got, ng, want, nw);
        }
    }
    free(got);
    free(want);
    free(live);
    free(x);
    flat_free(f);
}

static void each_kernel(void (*fn)(dist_metric, uint32_t, const dist_kernels *), dist_metric m,
                        uint32_t dim)
{
    for (const char *const *name = dist_compiled_names(); *name; name++) {
        const dist_kernels *k = dist_kernels_by_name(*name);
        if (k) fn(m, dim, k);
    }
}

/* Free gaps under 512 bytes of vectors are read through, longer ones
 * skipped: dim 1 bridges gaps up to 128 slots, 16 up to 8, 200 none (the
 * cosine data need at least 16 entries). */
static void test_range_brute(void **state)
{
    (void)state;
    static const dist_metric ms[] = { DIST_L2, DIST_COSINE, DIST_DOT };
    static const uint32_t dims[] = { 1, 16, 200 };
    for (int mi = 0; mi < 3; mi++)
        for (int di = 0; di < 3; di++)
            each_kernel(range_case, ms[mi], ms[mi] == DIST_COSINE && dims[di] < 16 ? 16 : dims[di]);
}

static void split_case(dist_metric m, uint32_t dim, const dist_kernels *kern)
{
    const uint32_t n = 1500, nq = 10;
    uint64_t seed = 99 + dim;
    float *x = m == DIST_COSINE ? unit_data(n + nq, dim, seed) : int_data(n + nq, dim, seed);
    uint8_t *live = malloc(n);
    flat *f = holey_flat(m, dim, x, n, kern, live, seed);
    vec_pair *whole = malloc(n * sizeof *whole), *merged = malloc(n * sizeof *merged);
    vec_pair *partbuf = malloc((size_t)FLAT_MERGE_MAX * n * sizeof *partbuf);
    for (uint32_t qi = 0; qi < nq; qi++) {
        const float *q = x + (size_t)(n + qi) * dim;
        vec_filter_fn *acc = (qi % 3 == 2) ? accept_mod3 : NULL;
        for (uint32_t t = 0; t < 12; t++) {
            static const uint32_t ks[] = { 1, 10, 37, 2000 };
            uint32_t k = ks[t % 4], nwhole, nmerged;
            int parts = 1 + (int)(rng_next(&seed) % 8);
            if (t == 11) parts = FLAT_MERGE_MAX;
            /* Cuts in [0, n + 20]: parts may be empty or run past the end. */
            uint32_t cut[FLAT_MERGE_MAX + 1];
            cut[0] = 0;
            for (int p = 1; p < parts; p++) cut[p] = (uint32_t)(rng_next(&seed) % (n + 21));
            for (int p = 1; p < parts; p++)          /* insertion sort */
                for (int r = p; r > 1 && cut[r - 1] > cut[r]; r--) {
                    uint32_t tmp = cut[r];
                    cut[r] = cut[r - 1];
                    cut[r - 1] = tmp;
                }
            cut[parts] = t % 2 ? UINT32_MAX : n;
            const vec_pair *pp[FLAT_MERGE_MAX];
            uint32_t np[FLAT_MERGE_MAX];
            for (int p = 0; p < parts; p++) {
                vec_pair *o = partbuf + (size_t)p * n;
                assert_int_equal(flat_search_range(f, q, k, cut[p], cut[p + 1], acc, NULL, o,
                                                   &np[p]), 0);
                pp[p] = o;
            }
            assert_int_equal(flat_search(f, q, k, acc, NULL, whole, &nwhole), 0);
            flat_merge(pp, np, parts, k, merged, &nmerged);
            assert_pairs_equal(merged, nmerged, whole, nwhole);
        }
    }
    free(partbuf);
    free(whole);
    free(merged);
    free(live);
    free(x);
    flat_free(f);
}

static void test_split_merge(void **state)
{
    (void)state;
    each_kernel(split_case, DIST_L2, 16);
    each_kernel(split_case, DIST_L2, 37);
    each_kernel(split_case, DIST_DOT, 16);
    each_kernel(split_case, DIST_COSINE, 16);
    each_kernel(split_case, DIST_COSINE, 64);
}

/* Ranges of more than 16 MiB of vectors take the prefetching path (kernel
 * calls in chunks): same answers.  dim 1000 leaves kernel tails. */
static void streaming_case(dist_metric m, uint32_t dim, const dist_kernels *kern)
{
    const uint32_t n = 4400, nq = 4;           /* 4400 x 4000 bytes: 17.6 MB */
    uint64_t seed = 5;
    float *x = m == DIST_COSINE ? unit_data(n + nq, dim, seed) : int_data(n + nq, dim, seed);
    uint8_t *live = malloc(n);
    flat *f = holey_flat(m, dim, x, n, kern, live, seed);
    vec_pair got[64], want[64], *parts[2] = { got + 16, got + 40 };
    for (uint32_t qi = 0; qi < nq; qi++) {
        const float *q = x + (size_t)(n + qi) * dim;
        vec_filter_fn *acc = (qi & 1) ? accept_mod3 : NULL;
        uint32_t ng, nw = brute_range(m, x, live, n, dim, q, 10, 0, n, acc, want);
        assert_int_equal(flat_search_range(f, q, 10, 0, UINT32_MAX, acc, NULL, got, &ng), 0);
        assert_pairs_equal(got, ng, want, nw);
        nw = brute_range(m, x, live, n, dim, q, 10, 7, n - 3, acc, want);
        assert_int_equal(flat_search_range(f, q, 10, 7, n - 3, acc, NULL, got, &ng), 0);
        assert_pairs_equal(got, ng, want, nw);
        /* Two halves, one above the prefetch size and one below, merged. */
        uint32_t np[2];
        const vec_pair *cp[2] = { parts[0], parts[1] };
        assert_int_equal(flat_search_range(f, q, 10, 0, 4300, acc, NULL, parts[0], &np[0]), 0);
        assert_int_equal(flat_search_range(f, q, 10, 4300, n, acc, NULL, parts[1], &np[1]), 0);
        flat_merge(cp, np, 2, 10, got, &ng);
        nw = brute_range(m, x, live, n, dim, q, 10, 0, n, acc, want);
        assert_pairs_equal(got, ng, want, nw);
    }
    free(live);
    free(x);
    flat_free(f);
}

static void test_range_streaming(void **state)
{
    (void)state;
    each_kernel(streaming_case, DIST_L2, 1000);
    each_kernel(streaming_case, DIST_COSINE, 1000);
    each_kernel(streaming_case, DIST_DOT, 1000);
}

/* k past the range: every live id of the range, in order; ties by id. */
static void test_range_k_large(void **state)
{
    (void)state;
    flat_params p = { .dim = 2, .metric = DIST_L2 };
    flat *f = flat_new(&p, NULL);
    const float v[2] = { 1, 1 };
    uint32_t id, n = 77;
    for (int i = 0; i < 40; i++) assert_int_equal(flat_insert(f, v, &id), 0);
    assert_int_equal(flat_delete(f, 12), 0);
    vec_pair out[100];
    assert_int_equal(flat_search_range(f, v, 100, 10, 16, NULL, NULL, out, &n), 0);
    assert_int_equal(n, 5);
    static const uint32_t want[5] = { 10, 11, 13, 14, 15 };
    for (uint32_t i = 0; i < 5; i++) {
        assert_int_equal(out[i].id, want[i]);
        assert_true(out[i].dist == 0.0f);
    }
    assert_int_equal(flat_search_range(f, v, 100, 35, 1000, NULL, NULL, out, &n), 0);
    assert_int_equal(n, 5);
    assert_int_equal(out[4].id, 39);
    assert_int_equal(flat_search_range(f, v, 0, 0, 40, NULL, NULL, out, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(flat_search_range(f, v, 5, 40, 1000, NULL, NULL, out, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(flat_search_range(f, v, 5, 12, 13, NULL, NULL, out, &n), 0);
    assert_int_equal(n, 0);                  /* only a free slot */
    flat_free(f);
}

/* flat_merge alone: empty inputs, k cuts, ties across parts by id. */
static void test_merge_pure(void **state)
{
    (void)state;
    const vec_pair a[] = { { 1, 4 }, { 2, 0 }, { 2, 9 }, { 5, 1 } };
    const vec_pair b[] = { { 1, 2 }, { 2, 3 } };
    const vec_pair *parts[3] = { a, NULL, b };
    const uint32_t np[3] = { 4, 0, 2 };
    vec_pair out[8];
    uint32_t n = 99;
    flat_merge(parts, np, 0, 5, out, &n);
    assert_int_equal(n, 0);
    flat_merge(parts, np, 3, 0, out, &n);
    assert_int_equal(n, 0);
    flat_merge(parts, np, 3, 8, out, &n);
    static const uint32_t ids[6] = { 2, 4, 0, 3, 9, 1 };
    assert_int_equal(n, 6);
    for (uint32_t i = 0; i < 6; i++) assert_int_equal(out[i].id, ids[i]);
    flat_merge(parts, np, 3, 3, out, &n);
    assert_int_equal(n, 3);
    assert_int_equal(out[2].id, 0);
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
        cmocka_unit_test(test_range_brute),
        cmocka_unit_test(test_split_merge),
        cmocka_unit_test(test_range_streaming),
        cmocka_unit_test(test_range_k_large),
        cmocka_unit_test(test_merge_pure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
