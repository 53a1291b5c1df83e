/* test_vindex.c -- the front both engines share: binary keys, validation
 * that rejects without changing anything, cosine scale round trip,
 * overwrite, search edge cases, the key table under churn, and failure
 * atomicity at every allocation. */
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
#include "engram/vindex.h"

#include "testlib.h"

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void rand_vec(float *v, uint32_t dim, uint64_t *s)
{
    for (uint32_t j = 0; j < dim; j++) v[j] = (float)((double)(rng_next(s) >> 11) * 0x1.0p-53 * 20 - 10);
}

static vindex *make(vindex_type t, uint32_t dim, dist_metric m)
{
    vindex_params p;
    vindex_params_init(&p, t, dim, m);
    p.M = 8;
    p.ef_construction = 64;
    int err = 1;
    vindex *v = vindex_new(&p, &err);
    assert_non_null(v);
    return v;
}

static void check_valid(const vindex *v)
{
    char err[256] = "";
    if (vindex_validate(v, err, sizeof err)) fail_msg("validate: %s", err);
}

static void test_binary_keys(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        vindex *v = make(t ? VINDEX_FLAT : VINDEX_HNSW, 3, DIST_L2);
        const float a[3] = { 1, 0, 0 }, b[3] = { 0, 1, 0 }, c[3] = { 0, 0, 1 }, e[3] = { 5, 5, 5 };
        assert_int_equal(vindex_add(v, "a\0b", 3, a, 3), 1);
        assert_int_equal(vindex_add(v, "a\0c", 3, b, 3), 1);
        assert_int_equal(vindex_add(v, "a", 1, c, 3), 1);
        assert_int_equal(vindex_add(v, "A", 1, c, 3), 1);     /* case-sensitive */
        assert_int_equal(vindex_add(v, "", 0, e, 3), 1);      /* the empty key is a key */
        assert_int_equal(vindex_count(v), 5);
        float out[3];
        assert_int_equal(vindex_get(v, "a\0c", 3, out), 1);
        assert_memory_equal(out, b, sizeof b);
        assert_int_equal(vindex_get(v, "a\0d", 3, out), 0);
        assert_int_equal(vindex_exists(v, "a\0b", 2, NULL), 0);
        uint32_t id = 99;
        assert_int_equal(vindex_exists(v, "", 0, &id), 1);
        size_t kl;
        const void *k = vindex_key(v, id, &kl);
        assert_int_equal(kl, 0);
        assert_non_null(k);
        vindex_search_ctx *ctx = vindex_search_ctx_new(NULL);
        vindex_query q;
        vindex_query_init(&q, a, 3, 2);
        vindex_hit hits[2];
        uint32_t n;
        assert_int_equal(vindex_search(v, ctx, &q, hits, &n), 0);
        assert_int_equal(n, 2);
        assert_int_equal(hits[0].klen, 3);
        assert_memory_equal(hits[0].key, "a\0b", 3);
        assert_true(hits[0].dist == 0.0f);
        assert_true(fabsf(hits[1].dist - sqrtf(2.0f)) < 1e-6f);   /* reported: sqrt */
        assert_int_equal(vindex_del(v, "a\0b", 3), 1);
        assert_int_equal(vindex_del(v, "a\0b", 3), 0);
        assert_int_equal(vindex_get(v, "a\0c", 3, out), 1);
        assert_int_equal(vindex_count(v), 4);
        check_valid(v);
        vindex_search_ctx_free(ctx);
        vindex_free(v);
    }
    vindex_free(NULL);
    vindex_search_ctx_free(NULL);
}

static void test_cosine_scale(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        vindex *v = make(t ? VINDEX_FLAT : VINDEX_HNSW, 5, DIST_COSINE);
        const float x[5] = { 3, -4, 0, 120, 0.5f }, z[5] = { 0 };
        assert_int_equal(vindex_add(v, "x", 1, x, 5), 1);
        assert_int_equal(vindex_add(v, "z", 1, z, 5), 1);   /* zero vector accepted */
        float out[5];
        assert_int_equal(vindex_get(v, "x", 1, out), 1);
        for (int j = 0; j < 5; j++) assert_true(fabsf(out[j] - x[j]) <= 1e-5f * fabsf(x[j]) + 1e-6f);
        assert_int_equal(vindex_get(v, "z", 1, out), 1);
        assert_memory_equal(out, z, sizeof z);
        vindex_search_ctx *ctx = vindex_search_ctx_new(NULL);
        const float q[5] = { 30, -40, 0, 1200, 5 };          /* same direction */
        vindex_query qq;
        vindex_query_init(&qq, q, 5, 2);
        vindex_hit hits[2];
        uint32_t n;
        assert_int_equal(vindex_search(v, ctx, &qq, hits, &n), 0);
        assert_int_equal(n, 2);
        assert_memory_equal(hits[0].key, "x", 1);
        assert_true(fabsf(hits[0].dist) < 1e-6f);
        assert_true(fabsf(hits[1].dist - 1.0f) < 1e-6f);    /* zero vector: distance 1 */
        vindex_search_ctx_free(ctx);
        check_valid(v);
        vindex_free(v);
    }
}

static void test_invalid_rejected(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        vindex *v = make(t ? VINDEX_FLAT : VINDEX_HNSW, 4, DIST_COSINE);
        const float good[4] = { 1, 2, 3, 4 };
        assert_int_equal(vindex_add(v, "k", 1, good, 4), 1);
        size_t mem = vindex_memory(v);
        float bad[4] = { 1, 2, 3, 4 };
        bad[2] = NAN;
        assert_int_equal(vindex_add(v, "n", 1, bad, 4), VINDEX_EVALUE);
        assert_int_equal(vindex_add(v, "k", 1, bad, 4), VINDEX_EVALUE);
        bad[2] = INFINITY;
        assert_int_equal(vindex_add(v, "k", 1, bad, 4), VINDEX_EVALUE);
        bad[2] = -INFINITY;
        assert_int_equal(vindex_add(v, "i", 1, bad, 4), VINDEX_EVALUE);
        assert_int_equal(vindex_add(v, "k", 1, good, 3), VINDEX_EDIM);
        assert_int_equal(vindex_add(v, "d", 1, good, 5), VINDEX_EDIM);
        const float huge[4] = { 3e38f, 3e38f, 3e38f, 3e38f };   /* norm beyond FLT_MAX */
        assert_int_equal(vindex_add(v, "h", 1, huge, 4), VINDEX_EVALUE);
        assert_int_equal(vindex_add(v, NULL, 1, good, 4), -EINVAL);
        assert_int_equal(vindex_count(v), 1);
        assert_int_equal(vindex_memory(v), mem);
        assert_int_equal(vindex_exists(v, "n", 1, NULL), 0);
        float out[4];
        assert_int_equal(vindex_get(v, "k", 1, out), 1);
        for (int j = 0; j < 4; j++) assert_true(fabsf(out[j] - good[j]) < 1e-5f);
        vindex_search_ctx *ctx = vindex_search_ctx_new(NULL);
        vindex_query q;
        vindex_hit hits[1];
        uint32_t n = 7;
        vindex_query_init(&q, good, 3, 1);
        assert_int_equal(vindex_search(v, ctx, &q, hits, &n), VINDEX_EDIM);
        assert_int_equal(n, 0);
        bad[0] = NAN;
        vindex_query_init(&q, bad, 4, 1);
        assert_int_equal(vindex_search(v, ctx, &q, hits, &n), VINDEX_EVALUE);
        vindex_search_ctx_free(ctx);
        check_valid(v);
        vindex_free(v);
    }
    assert_string_equal(vindex_strerror(VINDEX_EDIM), "wrong vector dimension");
    assert_string_equal(vindex_strerror(-ENOMEM), "out of memory");
}

static void test_bad_params(void **state)
{
    (void)state;
    vindex_params p;
    int err = 0;
    vindex_params_init(&p, VINDEX_HNSW, 0, DIST_L2);
    assert_null(vindex_new(&p, &err));
    assert_int_equal(err, -EINVAL);
    vindex_params_init(&p, VINDEX_HNSW, 8, DIST_L2);
    p.M = 1;
    assert_null(vindex_new(&p, &err));
    assert_int_equal(err, -EINVAL);
    p.M = VINDEX_M_MAX + 1;
    assert_null(vindex_new(&p, &err));
    vindex_params_init(&p, (vindex_type)7, 8, DIST_L2);
    assert_null(vindex_new(&p, &err));
    vindex_params_init(&p, VINDEX_FLAT, 8, (dist_metric)9);
    assert_null(vindex_new(&p, &err));
    assert_int_equal(err, -EINVAL);
}

static void test_search_edges(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        vindex *v = make(t ? VINDEX_FLAT : VINDEX_HNSW, 2, DIST_L2);
        vindex_search_ctx *ctx = vindex_search_ctx_new(NULL);
        const float q[2] = { 0, 0 };
        vindex_query qq;
        vindex_hit hits[8];
        uint32_t n = 5;
        vindex_query_init(&qq, q, 2, 8);
        assert_int_equal(vindex_search(v, ctx, &qq, hits, &n), 0);   /* empty index */
        assert_int_equal(n, 0);
        for (int i = 0; i < 5; i++) {
            float x[2] = { (float)i, 0 };
            char key[8];
            snprintf(key, sizeof key, "p%d", i);
            assert_int_equal(vindex_add(v, key, strlen(key), x, 2), 1);
        }
        qq.k = 0;
        assert_int_equal(vindex_search(v, ctx, &qq, hits, &n), 0);
        assert_int_equal(n, 0);
        qq.k = 8;                                                      /* k > count */
        assert_int_equal(vindex_search(v, ctx, &qq, hits, &n), 0);
        assert_int_equal(n, 5);
        for (uint32_t i = 0; i < n; i++) assert_true(hits[i].dist == (float)i);
        qq.maxdist = 2.5f;
        assert_int_equal(vindex_search(v, ctx, &qq, hits, &n), 0);
        assert_int_equal(n, 3);
        vindex_search_ctx_free(ctx);
        vindex_free(v);
    }
}

static void test_overwrite(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        vindex *v = make(t ? VINDEX_FLAT : VINDEX_HNSW, 8, DIST_L2);
        uint64_t s = 3;
        float x[8], y[8], out[8];
        for (int i = 0; i < 300; i++) {
            char key[16];
            rand_vec(x, 8, &s);
            snprintf(key, sizeof key, "k%d", i);
            assert_int_equal(vindex_add(v, key, strlen(key), x, 8), 1);
        }
        uint32_t id0, id1;
        assert_int_equal(vindex_exists(v, "k42", 3, &id0), 1);
        rand_vec(y, 8, &s);
        assert_int_equal(vindex_add(v, "k42", 3, y, 8), 0);
        assert_int_equal(vindex_exists(v, "k42", 3, &id1), 1);
        assert_int_equal(id0, id1);                                     /* id kept */
        assert_int_equal(vindex_count(v), 300);
        assert_int_equal(vindex_get(v, "k42", 3, out), 1);
        assert_memory_equal(out, y, sizeof y);
        vindex_search_ctx *ctx = vindex_search_ctx_new(NULL);
        vindex_query q;
        vindex_hit hit;
        uint32_t n;
        vindex_query_init(&q, y, 8, 1);
        assert_int_equal(vindex_search(v, ctx, &q, &hit, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(hit.klen, 3);
        assert_memory_equal(hit.key, "k42", 3);
        vindex_search_ctx_free(ctx);
        check_valid(v);
        vindex_free(v);
    }
}

/* The key table under churn: backward-shift deletion must keep every
 * remaining key findable; iteration sees exactly the live keys. */
static void test_key_churn(void **state)
{
    (void)state;
    const uint32_t n = 4000;
    vindex *v = make(VINDEX_HNSW, 4, DIST_L2);
    uint8_t *present = calloc(n, 1);
    uint64_t s = 17;
    float x[4];
    for (uint32_t round = 0; round < 6 * n; round++) {
        uint32_t i = (uint32_t)(rng_next(&s) % n);
        if (present[i]) {
            assert_int_equal(vindex_del(v, &i, sizeof i), 1);
            present[i] = 0;
        } else {
            rand_vec(x, 4, &s);
            assert_int_equal(vindex_add(v, &i, sizeof i, x, 4), 1);
            present[i] = 1;
        }
        if (round % 4000 == 0) check_valid(v);
    }
    uint32_t live = 0, seen = 0, cursor = 0, id;
    for (uint32_t i = 0; i < n; i++) {
        live += present[i];
        assert_int_equal(vindex_exists(v, &i, sizeof i, NULL), present[i]);
    }
    assert_int_equal(vindex_count(v), live);
    const void *key;
    size_t kl;
    while (vindex_iter(v, &cursor, &id, &key, &kl)) {
        uint32_t i;
        assert_int_equal(kl, sizeof i);
        memcpy(&i, key, sizeof i);
        assert_true(present[i]);
        seen++;
    }
    assert_int_equal(seen, live);
    vindex_stats st;
    vindex_stats_get(v, &st);
    assert_int_equal(st.count, live);
    assert_true(st.capacity <= n + n / 2 + 16);
    assert_int_equal(vindex_repair(v), 0);      /* nothing was cut off */
    check_valid(v);
    free(present);
    vindex_free(v);
}

/* Fail the j-th allocation for every j: each failing add returns -ENOMEM
 * and leaves count, contents and structure exactly as they were. */
static void test_enomem_every_allocation(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        fail_alloc fa = { -1, 0 };
        vindex_allocator al = { f_alloc, f_free, &fa, f_realloc };
        vindex_params p;
        vindex_params_init(&p, t ? VINDEX_FLAT : VINDEX_HNSW, 6, DIST_COSINE);
        p.M = 4;
        p.ef_construction = 16;
        p.alloc = &al;
        vindex *v = vindex_new(&p, NULL);
        assert_non_null(v);
        uint64_t s = 5;
        uint32_t failures = 0;
        for (uint32_t i = 0; i < 400; i++) {
            float x[6];
            rand_vec(x, 6, &s);
            for (long j = 0;; j++) {
                uint32_t before = vindex_count(v);
                size_t mem = vindex_memory(v);
                fa.countdown = j;
                int rc = vindex_add(v, &i, sizeof i, x, 6);
                fa.countdown = -1;
                if (rc == 1) break;
                assert_int_equal(rc, -ENOMEM);
                assert_int_equal(vindex_count(v), before);
                assert_int_equal(vindex_exists(v, &i, sizeof i, NULL), 0);
                assert_true(vindex_memory(v) >= mem);  /* only reservations may remain */
                failures++;
            }
        }
        check_valid(v);
        assert_true(failures > 0);
        /* vindex_new under failure, at every allocation. */
        for (long j = 0;; j++) {
            fa.countdown = j;
            int err = 0;
            vindex *w = vindex_new(&p, &err);
            fa.countdown = -1;
            if (w) {
                vindex_free(w);
                break;
            }
            assert_int_equal(err, -ENOMEM);
        }
        vindex_free(v);
        assert_int_equal(fa.live, 0);           /* everything given back */
    }
}

/* Both engines grown far past the allocator's 4 MB threshold (1,000
 * vectors of 1,024 floats take 4 MB), through several in-place growths:
 * every vector reads back as added, the structure validates, and a wide
 * search finds (every 97th of) them as their own nearest neighbours. */
static void test_growth_through_big_blocks(void **state)
{
    (void)state;
#ifdef TEST_SLOW
    const uint32_t dim = 1024, n = 1500;
#else
    const uint32_t dim = 1024, n = 3000;
#endif
    float *x = malloc((size_t)n * dim * sizeof *x), *out = malloc(dim * sizeof *out);
    uint64_t seed = 11;
    for (uint32_t i = 0; i < n; i++) rand_vec(x + (size_t)i * dim, dim, &seed);
    for (int t = 0; t < 2; t++) {
        vindex_params p;
        vindex_params_init(&p, t ? VINDEX_FLAT : VINDEX_HNSW, dim, DIST_L2);
        p.M = 8;
        p.ef_construction = 64;
        int err = 1;
        vindex *v = vindex_new(&p, &err);
        assert_non_null(v);
        char key[16];
        for (uint32_t i = 0; i < n; i++) {
            snprintf(key, sizeof key, "v%u", i);
            assert_int_equal(vindex_add(v, key, strlen(key), x + (size_t)i * dim, dim), 1);
        }
        check_valid(v);
        vindex_search_ctx *ctx = vindex_search_ctx_new(NULL);
        vindex_hit hit;
        uint32_t probes = 0, missed = 0;
        for (uint32_t i = 0; i < n; i++) {
            snprintf(key, sizeof key, "v%u", i);
            assert_int_equal(vindex_get(v, key, strlen(key), out), 1);
            assert_memory_equal(out, x + (size_t)i * dim, dim * sizeof *out);
            if (i % 97) continue;
            vindex_query q;
            uint32_t got = 0;
            vindex_query_init(&q, x + (size_t)i * dim, dim, 1);
            q.ef = 400;
            assert_int_equal(vindex_search(v, ctx, &q, &hit, &got), 0);
            assert_int_equal(got, 1);
            probes++;
            missed += hit.dist != 0.0f;
        }
        /* FLAT is exact; HNSW on uniform random 1,024-d data (the hardest
         * case for a graph: all distances alike) misses a few */
        if (t) assert_int_equal(missed, 0);
        else assert_true(missed * 20 <= probes);
        vindex_search_ctx_free(ctx);
        vindex_free(v);
    }
    free(out);
    free(x);
}

/* Same ids, levels and links on every layer. */
static void assert_same_graph(const vindex *a, const vindex *b, uint32_t idend)
{
    uint32_t la[256], lb[256];
    for (uint32_t id = 0; id < idend; id++) {
        int lev = vindex_level(a, id);
        assert_int_equal(lev, vindex_level(b, id));
        for (int l = 0; l <= lev; l++) {
            int na = vindex_links(a, id, l, la, 256), nb = vindex_links(b, id, l, lb, 256);
            assert_int_equal(na, nb);
            if (na > 0) assert_memory_equal(la, lb, (size_t)na * sizeof *la);
        }
    }
}

/* A log replay builds the same graph as the inserts did: each new key's
 * outcome (vindex_insert_outcome) replayed with vindex_add_args.outcome
 * skips the search and gives the very graph, deletes and overwrites in
 * between included; an outcome that does not fit (a wrong level, a dead
 * neighbour, garbage) is ignored and the insert searches as usual, still
 * giving the same graph. */
static void test_replay_outcome(void **state)
{
    (void)state;
    enum { N = 1500, DIM = 12 };
    vindex *live = make(VINDEX_HNSW, DIM, DIST_COSINE);
    vindex *replay = make(VINDEX_HNSW, DIM, DIST_COSINE);
    vindex *bad = make(VINDEX_HNSW, DIM, DIST_COSINE);
    uint64_t rs = 7;
    float v[DIM];
    unsigned char oc[VINDEX_OUTCOME_MAX], junk[VINDEX_OUTCOME_MAX];
    uint64_t expect_used = 0;
    for (uint32_t i = 0; i < N; i++) {
        char key[16];
        int kl = snprintf(key, sizeof key, "k%u", i % 1200);   /* some overwrites */
        rand_vec(v, DIM, &rs);
        vindex_add_args a;
        vindex_add_args_init(&a, key, (size_t)kl, v, DIM);
        vindex_add_result r;
        assert_true(vindex_add_ex(live, &a, &r) >= 0);
        size_t n = vindex_insert_outcome(live, key, (size_t)kl, oc, sizeof oc);
        assert_true(r.created ? n > 0 : n == 0);
        vindex_add_args b = a;
        b.outcome = n ? oc : NULL;
        b.outcome_len = n;
        assert_true(vindex_add_ex(replay, &b, NULL) >= 0);
        /* the third index gets a damaged outcome: level + 1, or a neighbour
         * past the ids, or bytes that do not parse */
        vindex_add_args c = a;
        if (n) {
            memcpy(junk, oc, n);
            if (i % 3 == 0) junk[0]++;
            else if (i % 3 == 1 && n > 7) junk[3] = junk[4] = junk[5] = junk[6] = 0xff;
            c.outcome = junk;
            c.outcome_len = i % 3 == 2 ? n - 1 : n;
            expect_used++;
        }
        assert_true(vindex_add_ex(bad, &c, NULL) >= 0);
        if (i % 7 == 3) {               /* deletes in between */
            snprintf(key, sizeof key, "k%u", i / 2);
            int d = vindex_del(live, key, strlen(key));
            assert_int_equal(vindex_del(replay, key, strlen(key)), d);
            assert_int_equal(vindex_del(bad, key, strlen(key)), d);
            assert_int_equal(vindex_insert_outcome(live, key, strlen(key), oc, sizeof oc), 0);
        }
    }
    assert_int_equal(vindex_outcomes_used(replay), expect_used);
    assert_true(vindex_outcomes_used(bad) < expect_used / 2);
    assert_same_graph(live, replay, N);
    assert_same_graph(live, bad, N);
    check_valid(replay);
    /* FLAT has no outcome */
    vindex *flat = make(VINDEX_FLAT, DIM, DIST_L2);
    rand_vec(v, DIM, &rs);
    assert_int_equal(vindex_add(flat, "x", 1, v, DIM), 1);
    assert_int_equal(vindex_insert_outcome(flat, "x", 1, oc, sizeof oc), 0);
    vindex_free(flat);
    vindex_free(live);
    vindex_free(replay);
    vindex_free(bad);
}

int main(void)
{
    assert_int_equal(dist_select("auto"), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binary_keys),
        cmocka_unit_test(test_cosine_scale),
        cmocka_unit_test(test_invalid_rejected),
        cmocka_unit_test(test_bad_params),
        cmocka_unit_test(test_search_edges),
        cmocka_unit_test(test_overwrite),
        cmocka_unit_test(test_key_churn),
        cmocka_unit_test(test_enomem_every_allocation),
        cmocka_unit_test(test_growth_through_big_blocks),
        cmocka_unit_test(test_replay_outcome),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
