/* test_vindex_quant.c -- quantised indices (Q8 and BIN, cosine HNSW): what
 * is refused, that every distance is the record distance of quant.h (the
 * query encoded like the stored vectors), recall against exact cosine,
 * the decoded approximation vindex_get returns, records, links and
 * levels, random ids, the effort bound of filtered searches, and that an
 * image (vindex_clone) brings the quantisation back. */
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
#include "engram/quant.h"
#include "engram/vattr.h"
#include "engram/vindex.h"

#include "testlib.h"

#define DIM 48
#ifdef TEST_SLOW
#define RECALL_N 1500u
#else
#define RECALL_N 4000u
#endif

static void rand_vec(float *v, uint32_t dim, uint64_t *s)
{
    for (uint32_t j = 0; j < dim; j++)
        v[j] = (float)((double)(test_rng_next(s) >> 11) * 0x1.0p-53 * 2 - 1);
}

static vindex *make_q(quant_type q, uint32_t dim)
{
    vindex_params p;
    vindex_params_init(&p, VINDEX_HNSW, dim, DIST_COSINE);
    p.quant = q;
    p.M = 16;
    p.ef_construction = 100;
    int err = 1;
    vindex *v = vindex_new(&p, &err);
    if (!v) fail_msg("vindex_new: %d", err);
    return v;
}

static void key_of(char *buf, size_t cap, uint32_t i)
{
    snprintf(buf, cap, "e%u", i);
}

/* Fill v with n random vectors, kept in vecs (n * dim). */
static void fill(vindex *v, float *vecs, uint32_t n, uint32_t dim, uint64_t seed)
{
    uint64_t s = seed;
    char k[16];
    for (uint32_t i = 0; i < n; i++) {
        rand_vec(vecs + (size_t)i * dim, dim, &s);
        key_of(k, sizeof k, i);
        assert_int_equal(vindex_add(v, k, strlen(k), vecs + (size_t)i * dim, dim), 1);
    }
}

static float cosine_dist(const float *a, const float *b, uint32_t dim)
{
    double ab = 0, aa = 0, bb = 0;
    for (uint32_t j = 0; j < dim; j++) {
        ab += (double)a[j] * b[j];
        aa += (double)a[j] * a[j];
        bb += (double)b[j] * b[j];
    }
    return (float)(1.0 - ab / sqrt(aa * bb));
}

static void normalise(const float *x, float *out, uint32_t dim)
{
    double s = 0;
    for (uint32_t j = 0; j < dim; j++) s += (double)x[j] * x[j];
    double n = sqrt(s);
    for (uint32_t j = 0; j < dim; j++) out[j] = (float)(x[j] / n);
}

static void check_valid(const vindex *v)
{
    char err[256] = "";
    if (vindex_validate(v, err, sizeof err)) fail_msg("validate: %s", err);
}

static void test_refused(void **state)
{
    (void)state;
    vindex_params p;
    int err = 0;
    vindex_params_init(&p, VINDEX_FLAT, 8, DIST_COSINE);
    p.quant = QUANT_Q8;
    assert_null(vindex_new(&p, &err));
    assert_int_equal(err, -EINVAL);
    vindex_params_init(&p, VINDEX_HNSW, 8, DIST_L2);
    p.quant = QUANT_BIN;
    assert_null(vindex_new(&p, &err));
    assert_int_equal(err, -EINVAL);
    vindex_params_init(&p, VINDEX_HNSW, 8, DIST_DOT);
    p.quant = QUANT_Q8;
    assert_null(vindex_new(&p, &err));
    vindex_params_init(&p, VINDEX_HNSW, 8, DIST_COSINE);
    p.quant = (quant_type)7;
    assert_null(vindex_new(&p, &err));
    /* a NaN is refused before anything changes */
    vindex *v = make_q(QUANT_Q8, 4);
    const float bad[4] = { 1, NAN, 0, 0 };
    assert_int_equal(vindex_add(v, "x", 1, bad, 4), VINDEX_EVALUE);
    assert_int_equal(vindex_count(v), 0);
    vindex_free(v);
}

/* Every reported distance is quant.h's distance between the query's record
 * and the hit's stored record. */
static void test_distances_are_record_distances(void **state)
{
    (void)state;
    static const quant_type qs[] = { QUANT_Q8, QUANT_BIN };
    for (int t = 0; t < 2; t++) {
        const uint32_t n = 300;
        float *vecs = malloc((size_t)n * DIM * sizeof *vecs);
        vindex *v = make_q(qs[t], DIM);
        fill(v, vecs, n, DIM, 5 + (uint64_t)t);
        check_valid(v);
        vindex_search_ctx *ctx = vindex_search_ctx_new(NULL);
        uint64_t s = 99;
        float q[DIM], qn[DIM];
        unsigned char qrec[4 * DIM + 8];
        for (int round = 0; round < 20; round++) {
            rand_vec(q, DIM, &s);
            normalise(q, qn, DIM);
            assert_int_equal(quant_encode(qs[t], qn, DIM, qrec), 0);
            vindex_query vq;
            vindex_query_init(&vq, q, DIM, 10);
            vindex_hit hits[10];
            uint32_t nh;
            assert_int_equal(vindex_search(v, ctx, &vq, hits, &nh), 0);
            assert_int_equal(nh, 10);
            for (uint32_t i = 0; i < nh; i++) {
                size_t len;
                float norm;
                const void *rec = vindex_record(v, hits[i].id, &len, &norm);
                assert_non_null(rec);
                assert_int_equal(len, quant_record_bytes(qs[t], DIM));
                float want;
                if (qs[t] == QUANT_Q8) {
                    int32_t dot = dist_scalar_i8.dot((const int8_t *)qrec, rec, DIM);
                    want = quant_q8_cosine(dot, quant_q8_record_range(qrec, DIM),
                                           quant_q8_record_range(rec, DIM));
                } else {
                    uint64_t h = dist_scalar_bin.hamming((const uint64_t *)(const void *)qrec, rec,
                                                         quant_bin_words(DIM));
                    want = quant_bin_cosine(h, DIM);
                }
                assert_true(hits[i].dist == want);
                if (i) assert_true(hits[i - 1].dist <= hits[i].dist);
            }
        }
        vindex_search_ctx_free(ctx);
        vindex_free(v);
        free(vecs);
    }
}

/* Recall@10 against exact float cosine: Q8 keeps nearly all of it; BIN,
 * one bit a dimension, keeps some. */
static void test_recall(void **state)
{
    (void)state;
    static const quant_type qs[] = { QUANT_NONE, QUANT_Q8, QUANT_BIN };
    static const double want[] = { 0.95, 0.9, 0.15 };
    const uint32_t n = RECALL_N, nq = 40, k = 10;
    float *vecs = malloc((size_t)n * DIM * sizeof *vecs);
    for (int t = 0; t < 3; t++) {
        vindex *v = make_q(qs[t], DIM);
        fill(v, vecs, n, DIM, 77);
        vindex_search_ctx *ctx = vindex_search_ctx_new(NULL);
        uint64_t s = 1234;
        uint32_t found = 0;
        for (uint32_t r = 0; r < nq; r++) {
            float q[DIM];
            rand_vec(q, DIM, &s);
            /* exact top k */
            uint32_t best[10];
            float bd[10];
            uint32_t nb = 0;
            for (uint32_t i = 0; i < n; i++) {
                float d = cosine_dist(q, vecs + (size_t)i * DIM, DIM);
                if (nb < k || d < bd[nb - 1]) {
                    uint32_t j = nb < k ? nb++ : k - 1;
                    while (j > 0 && bd[j - 1] > d) {
                        bd[j] = bd[j - 1];
                        best[j] = best[j - 1];
                        j--;
                    }
                    bd[j] = d;
                    best[j] = i;
                }
            }
            vindex_query vq;
            vindex_query_init(&vq, q, DIM, k);
            vq.ef = 200;
            vindex_hit hits[10];
            uint32_t nh;
            assert_int_equal(vindex_search(v, ctx, &vq, hits, &nh), 0);
            for (uint32_t i = 0; i < nh; i++)
                for (uint32_t j = 0; j < k; j++) {
                    char kb[16];
                    key_of(kb, sizeof kb, best[j]);
                    if (hits[i].klen == strlen(kb) && !memcmp(hits[i].key, kb, hits[i].klen))
                        found++;
                }
        }
        /* the exact scan over stored records: for float32 it is the
         * brute force above (same top k, up to float rounding of ties) */
        if (qs[t] == QUANT_NONE) {
            float q[DIM];
            uint64_t s2 = 4321;
            rand_vec(q, DIM, &s2);
            vindex_query vq;
            vindex_query_init(&vq, q, DIM, k);
            vindex_hit ex[10];
            uint32_t ne;
            assert_int_equal(vindex_search_exact(v, ctx, &vq, ex, &ne), 0);
            assert_int_equal(ne, k);
            for (uint32_t i = 0; i < ne; i++) {
                char kb[16] = "";
                memcpy(kb, ex[i].key, ex[i].klen < 15 ? ex[i].klen : 15);
                size_t at = strtoul(kb + 1, NULL, 10);
                float exact = cosine_dist(q, vecs + at * DIM, DIM);
                assert_true(fabsf(ex[i].dist - exact) < 1e-5f);
                if (i) assert_true(ex[i - 1].dist <= ex[i].dist);
            }
        }
        double recall = (double)found / (nq * k);
        print_message("quant %d: recall@10 %.3f\n", (int)qs[t], recall);
        assert_true(recall >= want[t]);
        vindex_search_ctx_free(ctx);
        vindex_free(v);
    }
    free(vecs);
}

/* vindex_get: Q8 decodes within a step of the range times the norm; BIN
 * gives the signs as +-1 (not scaled). */
static void test_get_approximation(void **state)
{
    (void)state;
    const uint32_t n = 50;
    float *vecs = malloc((size_t)n * DIM * sizeof *vecs);
    for (int t = 0; t < 2; t++) {
        quant_type q = t ? QUANT_BIN : QUANT_Q8;
        vindex *v = make_q(q, DIM);
        fill(v, vecs, n, DIM, 31);
        char k[16];
        for (uint32_t i = 0; i < n; i++) {
            key_of(k, sizeof k, i);
            float out[DIM];
            const float *x = vecs + (size_t)i * DIM;
            assert_int_equal(vindex_get(v, k, strlen(k), out), 1);
            double norm = 0, maxabs = 0;
            for (uint32_t j = 0; j < DIM; j++) norm += (double)x[j] * x[j];
            norm = sqrt(norm);
            for (uint32_t j = 0; j < DIM; j++)
                if (fabs(x[j]) > maxabs) maxabs = fabs(x[j]);
            for (uint32_t j = 0; j < DIM; j++) {
                if (q == QUANT_Q8) {
                    assert_true(fabs(out[j] - x[j]) <= maxabs / 127.0 * 0.5 + 1e-5);
                } else {
                    assert_true(out[j] == (x[j] > 0 ? 1.0f : -1.0f));
                }
            }
            uint32_t id;
            assert_int_equal(vindex_exists(v, k, strlen(k), &id), 1);
            float nr;
            assert_non_null(vindex_record(v, id, NULL, &nr));
            assert_true(fabs(nr - norm) <= 1e-5 * norm);
        }
        assert_null(vindex_record(v, 100000, NULL, NULL));
        vindex_free(v);
    }
    free(vecs);
}

/* Levels and links: every link names a live id, none is the node itself,
 * layer 0 keeps at most 2M, upper layers M; a node's level is at most the
 * index's top layer, which some node reaches. */
static void test_links_and_levels(void **state)
{
    (void)state;
    const uint32_t n = 800;
    float *vecs = malloc((size_t)n * DIM * sizeof *vecs);
    vindex *v = make_q(QUANT_Q8, DIM);
    fill(v, vecs, n, DIM, 3);
    vindex_stats st;
    vindex_stats_get(v, &st);
    assert_int_equal(st.quant, QUANT_Q8);
    assert_true(st.max_level >= 1);
    int top = -1;
    uint32_t links[64];
    for (uint32_t id = 0; id < n; id++) {
        int lv = vindex_level(v, id);
        assert_true(lv >= 0 && lv <= st.max_level);
        if (lv > top) top = lv;
        for (int l = 0; l <= lv; l++) {
            int c = vindex_links(v, id, l, links, 64);
            assert_true(c >= 0 && c <= (l ? 16 : 32));
            for (int i = 0; i < c; i++) {
                assert_true(links[i] != id);
                size_t kl;
                assert_non_null(vindex_key(v, links[i], &kl));
                assert_true(vindex_level(v, links[i]) >= l);
                float d = vindex_id_dist(v, id, links[i]);
                assert_true(d >= 0.0f && d <= 2.0f);
            }
        }
        assert_int_equal(vindex_links(v, id, lv + 1, links, 64), -EINVAL);
    }
    assert_int_equal(top, st.max_level);
    assert_int_equal(vindex_level(v, n + 5), -1);
    assert_int_equal(vindex_links(v, n + 5, 0, links, 64), -EINVAL);
    free(vecs);
    vindex_free(v);
}

static void test_random_id(void **state)
{
    (void)state;
    vindex *v = make_q(QUANT_BIN, 8);
    assert_int_equal(vindex_random_id(v, 12345), VINDEX_NO_ID);
    float x[8];
    uint64_t s = 4;
    char k[16];
    for (uint32_t i = 0; i < 20; i++) {
        rand_vec(x, 8, &s);
        key_of(k, sizeof k, i);
        assert_int_equal(vindex_add(v, k, strlen(k), x, 8), 1);
    }
    for (uint32_t i = 0; i < 20; i += 2) {
        key_of(k, sizeof k, i);
        assert_int_equal(vindex_del(v, k, strlen(k)), 1);
    }
    int seen[20] = { 0 };
    for (uint64_t r = 0; r < 2000; r++) {
        uint32_t id = vindex_random_id(v, test_rng_next(&s));
        assert_true(id != VINDEX_NO_ID);
        size_t kl;
        assert_non_null(vindex_key(v, id, &kl));
        assert_true(id < 20);
        seen[id] = 1;
    }
    int distinct = 0;
    for (int i = 0; i < 20; i++) distinct += seen[i];
    assert_int_equal(distinct, 10);
    vindex_free(v);
}

/* A filter accepting one id in 50: with no effort bound the search walks
 * on until it has k accepted ids; with effort 1 it stops at the entry. */
static int accept_every_50th(void *ud, uint32_t id)
{
    (*(uint32_t *)ud)++;
    return id % 50 == 0;
}

static void test_effort(void **state)
{
    (void)state;
    const uint32_t n = 2000;
    float *vecs = malloc((size_t)n * DIM * sizeof *vecs);
    vindex *v = make_q(QUANT_Q8, DIM);
    fill(v, vecs, n, DIM, 8);
    vindex_search_ctx *ctx = vindex_search_ctx_new(NULL);
    float q[DIM];
    uint64_t s = 17;
    rand_vec(q, DIM, &s);
    vindex_query vq;
    vindex_query_init(&vq, q, DIM, 10);
    uint32_t calls = 0;
    vq.accept = accept_every_50th;
    vq.accept_ud = &calls;
    vindex_hit hits[10];
    uint32_t nh;
    assert_int_equal(vindex_search(v, ctx, &vq, hits, &nh), 0);
    assert_int_equal(nh, 10);
    for (uint32_t i = 0; i < nh; i++) assert_int_equal(hits[i].id % 50, 0);
    uint32_t unbounded = calls;
    calls = 0;
    vq.effort = 1;
    assert_int_equal(vindex_search(v, ctx, &vq, hits, &nh), 0);
    assert_true(nh <= 1);
    assert_true(calls <= 1);
    calls = 0;
    vq.effort = 30;
    assert_int_equal(vindex_search(v, ctx, &vq, hits, &nh), 0);
    assert_true(calls < unbounded);
    assert_true(nh < 10);
    vindex_search_ctx_free(ctx);
    vindex_free(v);
    free(vecs);
}

/* An image brings the quantisation back: same records, same searches; and
 * the copy goes on accepting adds. */
static void test_clone(void **state)
{
    (void)state;
    static const quant_type qs[] = { QUANT_Q8, QUANT_BIN };
    for (int t = 0; t < 2; t++) {
        const uint32_t n = 400;
        float *vecs = malloc((size_t)n * DIM * sizeof *vecs);
        vindex *v = make_q(qs[t], DIM);
        fill(v, vecs, n, DIM, 41);
        vindex *c = NULL;
        assert_int_equal(vindex_clone(v, NULL, &c), 0);
        check_valid(c);
        vindex_stats st;
        vindex_stats_get(c, &st);
        assert_int_equal(st.quant, qs[t]);
        for (uint32_t id = 0; id < n; id++) {
            size_t la, lb;
            float na, nb;
            const void *a = vindex_record(v, id, &la, &na), *b = vindex_record(c, id, &lb, &nb);
            assert_int_equal(la, lb);
            assert_memory_equal(a, b, la);
            assert_true(na == nb);
        }
        vindex_search_ctx *ctx = vindex_search_ctx_new(NULL);
        uint64_t s = 5;
        for (int r = 0; r < 10; r++) {
            float q[DIM];
            rand_vec(q, DIM, &s);
            vindex_query vq;
            vindex_query_init(&vq, q, DIM, 10);
            vindex_hit h1[10], h2[10];
            uint32_t n1, n2;
            assert_int_equal(vindex_search(v, ctx, &vq, h1, &n1), 0);
            assert_int_equal(vindex_search(c, ctx, &vq, h2, &n2), 0);
            assert_int_equal(n1, n2);
            for (uint32_t i = 0; i < n1; i++) {
                assert_int_equal(h1[i].id, h2[i].id);
                assert_true(h1[i].dist == h2[i].dist);
            }
        }
        float x[DIM];
        rand_vec(x, DIM, &s);
        assert_int_equal(vindex_add(c, "new", 3, x, DIM), 1);
        check_valid(c);
        vindex_search_ctx_free(ctx);
        vindex_free(c);
        vindex_free(v);
        free(vecs);
    }
}

/* Payloads are attribute blocks: a JSON object's members are there for a
 * filter, any other text is kept as given with none; the text comes back
 * unchanged either way, through a clone too. */
static void test_payload_attributes(void **state)
{
    (void)state;
    vindex *v = make_q(QUANT_Q8, 4);
    const float x[4] = { 1, 2, 3, 4 };
    static const char *const texts[] = { "{\"year\": 1999, \"tag\": \"x\"}", "not json", "" };
    for (int i = 0; i < 3; i++) {
        char k[8];
        snprintf(k, sizeof k, "k%d", i);
        vindex_add_args a;
        vindex_add_args_init(&a, k, strlen(k), x, 4);
        a.has_payload = 1;
        a.payload = texts[i];
        a.plen = strlen(texts[i]);
        assert_int_equal(vindex_add_ex(v, &a, NULL), 1);
    }
    /* set, replace, drop without touching the vector */
    assert_int_equal(vindex_set_payload(v, "nokey", 5, "x", 1, 0), 0);
    assert_int_equal(vindex_set_payload(v, "k0", 2, NULL, 3, 0), -EINVAL);
    assert_int_equal(vindex_set_payload(v, "k1", 2, "{\"b\":2}", 7, 0), 1);
    assert_int_equal(vindex_attr(v, 1) != NULL && vattr_count(vindex_attr(v, 1)) == 1, 1);
    assert_int_equal(vindex_set_payload(v, "k1", 2, NULL, 0, 1), 1);
    assert_null(vindex_attr(v, 1));
    assert_int_equal(vindex_set_payload(v, "k1", 2, NULL, 0, 1), 1);
    assert_int_equal(vindex_set_payload(v, "k1", 2, texts[1], strlen(texts[1]), 0), 1);
    float back[4];
    assert_int_equal(vindex_get(v, "k1", 2, back), 1);
    for (int j = 0; j < 4; j++) assert_true(fabsf(back[j] - x[j]) < 0.05f);
    vindex *c = NULL;
    assert_int_equal(vindex_clone(v, NULL, &c), 0);
    for (int w = 0; w < 2; w++) {
        const vindex *ix = w ? c : v;
        for (uint32_t id = 0; id < 3; id++) {
            size_t len;
            const char *p = vindex_payload(ix, id, &len);
            assert_non_null(p);
            assert_int_equal(len, strlen(texts[id]));
            assert_memory_equal(p, texts[id], len);
            const vattr *at = vindex_attr(ix, id);
            assert_non_null(at);
            vattr_value val;
            assert_int_equal(vattr_get(at, "year", 4, &val), id == 0);
            if (id == 0) assert_true(val.type == VATTR_NUMBER && val.num == 1999);
            assert_int_equal(vattr_valid(at), id == 0);
        }
        assert_null(vindex_attr(ix, 3));
    }
    vindex_free(c);
    vindex_free(v);
}

/* A build beam per add (Redis's VADD ... EF): beams past ef_construction
 * (the index's is 100) and past VINDEX_EF_MAX work and keep the graph
 * valid; the recall of a graph built with a wide beam is no worse. */
static void test_build_ef(void **state)
{
    (void)state;
    vindex *v = make_q(QUANT_NONE, 16);
    uint64_t s = 21;
    char k[16];
    for (uint32_t i = 0; i < 600; i++) {
        float x[16];
        rand_vec(x, 16, &s);
        key_of(k, sizeof k, i);
        vindex_add_args a;
        vindex_add_args_init(&a, k, strlen(k), x, 16);
        a.ef = i % 3 == 0 ? 400 : i % 3 == 1 ? VINDEX_EF_MAX + 5 : 1;
        assert_true(vindex_add_ex(v, &a, NULL) >= 0);
        if (i % 97 == 0) {      /* an overwrite with a wide beam too */
            a.ef = 1000;
            assert_int_equal(vindex_add_ex(v, &a, NULL), 0);
        }
    }
    check_valid(v);
    assert_int_equal(vindex_count(v), 600);
    vindex_free(v);
}

/* A float copy (keep_float): re-ranking reports float32 cosine distances,
 * brings Q8's recall to NOQUANT's at the same beam and BIN's far above its
 * own; the copy survives an image; the exact scan with rerank is exact. */
static void test_rerank(void **state)
{
    (void)state;
    const uint32_t n = RECALL_N / 2, nq = 30, k = 10;
    float *vecs = malloc((size_t)n * DIM * sizeof *vecs);
    double rec[3][2];      /* [NONE, Q8, BIN][plain, rerank] */
    static const quant_type qs[] = { QUANT_NONE, QUANT_Q8, QUANT_BIN };
    for (int t = 0; t < 3; t++) {
        vindex_params p;
        vindex_params_init(&p, VINDEX_HNSW, DIM, DIST_COSINE);
        p.quant = qs[t];
        p.keep_float = 1;
        p.M = 16;
        p.ef_construction = 100;
        int err;
        vindex *v0 = vindex_new(&p, &err);
        assert_non_null(v0);
        fill(v0, vecs, n, DIM, 55);
        vindex *v = NULL;
        assert_int_equal(vindex_clone(v0, NULL, &v), 0);     /* the copy is in the image */
        vindex_free(v0);
        vindex_stats st;
        vindex_stats_get(v, &st);
        assert_int_equal(st.keep_float, qs[t] != QUANT_NONE);
        vindex_search_ctx *ctx = vindex_search_ctx_new(NULL);
        for (int rr = 0; rr < 2; rr++) {
            uint64_t s = 999;
            uint32_t found = 0;
            for (uint32_t r = 0; r < nq; r++) {
                float q[DIM];
                rand_vec(q, DIM, &s);
                vindex_query vq;
                vindex_query_init(&vq, q, DIM, k);
                vq.rerank = 1;
                vindex_hit ex[10], hits[10];
                uint32_t ne, nh;
                assert_int_equal(vindex_search_exact(v, ctx, &vq, ex, &ne), 0);
                for (uint32_t i = 0; i < ne; i++) {
                    char kb[16] = "";
                    memcpy(kb, ex[i].key, ex[i].klen < 15 ? ex[i].klen : 15);
                    float exact = cosine_dist(q, vecs + strtoul(kb + 1, NULL, 10) * DIM, DIM);
                    assert_true(fabsf(ex[i].dist - exact) < 1e-5f);
                }
                vq.rerank = rr;
                vq.ef = 40;
                assert_int_equal(vindex_search(v, ctx, &vq, hits, &nh), 0);
                for (uint32_t i = 0; i < nh; i++) {
                    if (rr) {
                        char kb[16] = "";
                        memcpy(kb, hits[i].key, hits[i].klen < 15 ? hits[i].klen : 15);
                        float exact = cosine_dist(q, vecs + strtoul(kb + 1, NULL, 10) * DIM, DIM);
                        assert_true(fabsf(hits[i].dist - exact) < 1e-5f);
                    }
                    for (uint32_t j = 0; j < ne; j++) found += hits[i].id == ex[j].id;
                }
            }
            rec[t][rr] = (double)found / (nq * k);
        }
        print_message("quant %d: recall@10 at ef 40 %.3f, reranked %.3f\n", (int)qs[t], rec[t][0],
                      rec[t][1]);
        vindex_search_ctx_free(ctx);
        vindex_free(v);
    }
    assert_true(rec[1][1] >= rec[0][1] - 0.01);     /* Q8 + rerank ~ NOQUANT */
    assert_true(rec[2][1] > rec[2][0] + 0.2);       /* BIN gains the most */
    free(vecs);
}

/* Two indexes with the same links on every layer of every id. */
static void same_graph(const vindex *a, const vindex *b)
{
    assert_int_equal(vindex_count(a), vindex_count(b));
    uint32_t la[64], lb[64];
    for (uint32_t id = 0; id < vindex_count(a) + 16; id++) {
        int lv = vindex_level(a, id);
        assert_int_equal(lv, vindex_level(b, id));
        for (int l = 0; l <= lv; l++) {
            int na = vindex_links(a, id, l, la, 64), nb = vindex_links(b, id, l, lb, 64);
            assert_int_equal(na, nb);
            assert_memory_equal(la, lb, (size_t)na * sizeof *la);
        }
    }
}

/* A planned add (Redis's CAS) gives the graph a direct add gives: with
 * the index unchanged in between (the plan is used), and after another
 * add slipped in (the plan is stale: the add is done directly).  FLAT has
 * nothing to plan. */
static void test_prepared_add(void **state)
{
    (void)state;
    static const quant_type qs[] = { QUANT_NONE, QUANT_Q8, QUANT_BIN };
    for (int t = 0; t < 3; t++) {
        vindex *a = make_q(qs[t], 16), *b = make_q(qs[t], 16);
        uint64_t s = 77;
        char k[16];
        for (uint32_t i = 0; i < 400; i++) {
            float x[16];
            rand_vec(x, 16, &s);
            key_of(k, sizeof k, i);
            assert_int_equal(vindex_add(a, k, strlen(k), x, 16), 1);
            assert_int_equal(vindex_add(b, k, strlen(k), x, 16), 1);
        }
        vindex_search_ctx *ctx = vindex_search_ctx_new(NULL);
        vindex_prepared *p = vindex_prepared_new();
        assert_non_null(p);
        for (uint32_t i = 400; i < 500; i++) {
            float x[16], y[16];
            rand_vec(x, 16, &s);
            rand_vec(y, 16, &s);
            key_of(k, sizeof k, i);
            uint32_t ef = i % 2 ? 0 : 300;
            assert_int_equal(vindex_prepare_add(b, ctx, x, 16, ef, p), 0);
            if (i % 5 == 0) {        /* another add in between: the plan goes stale */
                assert_int_equal(vindex_add(a, "other", 5, y, 16) >= 0, 1);
                assert_int_equal(vindex_add(b, "other", 5, y, 16) >= 0, 1);
            }
            vindex_add_args aa;
            vindex_add_args_init(&aa, k, strlen(k), x, 16);
            aa.ef = ef;
            assert_int_equal(vindex_add_ex(a, &aa, NULL), 1);
            aa.prepared = p;
            vindex_add_result res;
            assert_int_equal(vindex_add_ex(b, &aa, &res), 1);
            assert_int_equal(res.planned, i % 5 != 0);
        }
        check_valid(b);
        same_graph(a, b);
        /* a plan for another index is not used */
        assert_int_equal(vindex_prepare_add(a, ctx, (const float[16]){ 1 }, 16, 0, p), 0);
        vindex_add_args aa;
        vindex_add_args_init(&aa, "z", 1, (const float[16]){ 1 }, 16);
        aa.prepared = p;
        vindex_add_result res;
        assert_int_equal(vindex_add_ex(b, &aa, &res), 1);
        assert_int_equal(res.planned, 0);
        check_valid(b);
        assert_int_equal(vindex_prepare_add(a, ctx, (const float[8]){ 1 }, 8, 0, p), VINDEX_EDIM);
        vindex_prepared_free(p);
        vindex_search_ctx_free(ctx);
        vindex_free(a);
        vindex_free(b);
    }
    vindex_params fp;
    vindex_params_init(&fp, VINDEX_FLAT, 4, DIST_COSINE);
    vindex *f = vindex_new(&fp, NULL);
    vindex_search_ctx *ctx = vindex_search_ctx_new(NULL);
    vindex_prepared *p = vindex_prepared_new();
    assert_int_equal(vindex_prepare_add(f, ctx, (const float[4]){ 1 }, 4, 0, p), -ENOTSUP);
    vindex_prepared_free(p);
    vindex_search_ctx_free(ctx);
    vindex_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_distances_are_record_distances),
        cmocka_unit_test(test_recall),
        cmocka_unit_test(test_get_approximation),
        cmocka_unit_test(test_links_and_levels),
        cmocka_unit_test(test_random_id),
        cmocka_unit_test(test_effort),
        cmocka_unit_test(test_clone),
        cmocka_unit_test(test_payload_attributes),
        cmocka_unit_test(test_build_ef),
        cmocka_unit_test(test_rerank),
        cmocka_unit_test(test_prepared_add),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
