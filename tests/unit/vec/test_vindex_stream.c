/* test_vindex_stream.c -- the streaming side of vindex: capacity-bounded
 * rings with first-in first-out eviction, per-entry payloads, all-time
 * counters and auto ids.
 *
 * What is checked: the ring's order against a reference model kept here,
 * under random inserts, overwrites, deletes and evictions, for both engines
 * and all metrics (which key each eviction reports, the order walk, every
 * payload, the counters); memory and slots flat under endless ingestion
 * with HNSW still valid and accurate at the end; payload set / keep /
 * replace / drop / empty, none left behind by an eviction; auto ids; and
 * failure atomicity of ring adds at every allocation.  Snapshots of rings
 * are in test_vimage.c. */
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

#ifdef TEST_SLOW
#define ENDLESS_INSERTS 60000u
#else
#define ENDLESS_INSERTS 200000u
#endif

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float rng_f(uint64_t *s) { return (float)((double)(rng_next(s) >> 11) * 0x1.0p-53 * 2 - 1); }

static void rand_vec(float *v, uint32_t dim, uint64_t *s)
{
    for (uint32_t j = 0; j < dim; j++) v[j] = rng_f(s) * 3;
}

static vindex *ring_new(vindex_type t, dist_metric m, uint32_t dim, uint32_t capacity,
                        const vindex_allocator *al)
{
    vindex_params p;
    vindex_params_init(&p, t, dim, m);
    p.M = 6;
    p.ef_construction = 32;
    p.ef_search = 48;
    p.capacity = capacity;
    p.alloc = al;
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

/* ---- the reference model ------------------------------------------------ */

#define KEYSPACE 160u
#define PAYMAX   48u

/* Key k: mostly "k<k>", key 0 the empty key, some with a NUL inside. */
static size_t key_of(char *buf, uint32_t k)
{
    if (k == 0) return 0;
    int n = snprintf(buf, 32, "k%u", k);
    if (k % 7 == 0) {
        buf[n] = '\0';
        buf[n + 1] = 'z';
        return (size_t)n + 2;
    }
    return (size_t)n;
}

/* Payload bytes from a tag: len and contents follow from it. */
static size_t pay_of(uint8_t *buf, uint32_t tag)
{
    size_t len = tag % (PAYMAX + 1);
    for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)(tag * 31 + i * 7);
    return len;
}

typedef struct model {
    uint32_t order[KEYSPACE];   /* keys, oldest first */
    uint32_t n;
    int present[KEYSPACE];
    int has_pay[KEYSPACE];
    uint32_t pay_tag[KEYSPACE];
    uint64_t ingested, evicted;
} model;

static void model_remove(model *m, uint32_t k)
{
    uint32_t i = 0;
    while (m->order[i] != k) i++;
    memmove(&m->order[i], &m->order[i + 1], (m->n - i - 1) * sizeof m->order[0]);
    m->n--;
    m->present[k] = 0;
    m->has_pay[k] = 0;
}

/* The index says what the model says: count, counters, the order walk,
 * every live key's payload. */
static void model_check(const vindex *v, const model *m, uint32_t capacity)
{
    assert_int_equal(vindex_count(v), m->n);
    vindex_stats st;
    vindex_stats_get(v, &st);
    assert_int_equal(st.ingested, m->ingested);
    assert_int_equal(st.evicted, m->evicted);
    assert_int_equal(st.ring_capacity, capacity);
    uint32_t id = vindex_fifo_first(v), npay = 0;
    char key[40];
    uint8_t pay[PAYMAX];
    for (uint32_t i = 0; i < m->n; i++) {
        assert_int_not_equal(id, VINDEX_NO_ID);
        size_t kl, want = key_of(key, m->order[i]);
        const void *kb = vindex_key(v, id, &kl);
        assert_non_null(kb);
        assert_int_equal(kl, want);
        if (kl) assert_memory_equal(kb, key, kl);
        size_t pl;
        const void *pb = vindex_payload(v, id, &pl);
        if (m->has_pay[m->order[i]]) {
            size_t plw = pay_of(pay, m->pay_tag[m->order[i]]);
            assert_non_null(pb);
            assert_int_equal(pl, plw);
            if (pl) assert_memory_equal(pb, pay, pl);
            npay++;
        } else {
            assert_null(pb);
            assert_int_equal(pl, 0);
        }
        id = vindex_fifo_next(v, id);
    }
    assert_int_equal(id, VINDEX_NO_ID);
    assert_int_equal(st.payloads, npay);
}

/* One random operation on both the index and the model. */
static void model_step(vindex *v, model *m, uint32_t capacity, uint32_t dim, uint64_t *s)
{
    uint32_t r = (uint32_t)(rng_next(s) % 100), k;
    if (r < 20 && m->n > 0) {           /* delete something present */
        k = m->order[rng_next(s) % m->n];
    } else {
        k = (uint32_t)(rng_next(s) % KEYSPACE);
    }
    char key[40];
    size_t kl = key_of(key, k);
    if (r < 30) {                       /* delete (present or not) */
        assert_int_equal(vindex_del(v, key, kl), m->present[k]);
        if (m->present[k]) model_remove(m, k);
        return;
    }
    float vec[64];
    rand_vec(vec, dim, s);
    uint8_t pay[PAYMAX];
    uint32_t tag = (uint32_t)rng_next(s);
    uint32_t pop = (uint32_t)(rng_next(s) % 3);  /* 0 none/keep, 1 set, 2 drop */
    char ebuf[40];
    vindex_add_args a;
    vindex_add_args_init(&a, key, kl, vec, dim);
    if (pop == 1) {
        a.has_payload = 1;
        a.plen = pay_of(pay, tag);
        a.payload = a.plen ? pay : NULL;
    }
    a.drop_payload = pop == 2;
    a.evicted_key = ebuf;
    a.evicted_cap = (tag & 8) ? sizeof ebuf : 2;     /* sometimes too small: cut */
    vindex_add_result res;
    memset(&res, 0xAB, sizeof res);
    int rc = vindex_add_ex(v, &a, &res);
    assert_int_equal(rc, !m->present[k]);
    assert_int_equal(res.created, rc);
    uint32_t id;
    assert_int_equal(vindex_exists(v, key, kl, &id), 1);
    assert_int_equal(res.id, id);
    if (m->present[k]) {                /* overwrite: same place, no eviction */
        assert_int_equal(res.evicted, 0);
        if (pop == 1) {
            m->has_pay[k] = 1;
            m->pay_tag[k] = tag;
        } else if (pop == 2) {
            m->has_pay[k] = 0;
        }
        return;
    }
    if (capacity && m->n == capacity) {
        uint32_t old = m->order[0];
        char okey[40];
        size_t okl = key_of(okey, old);
        assert_int_equal(res.evicted, 1);
        assert_int_equal(res.evicted_klen, okl);
        size_t copied = okl < a.evicted_cap ? okl : a.evicted_cap;
        if (copied) assert_memory_equal(ebuf, okey, copied);
        assert_int_equal(vindex_exists(v, okey, okl, NULL), 0);
        assert_int_not_equal(res.evicted_id, res.id);
        model_remove(m, old);
        m->evicted++;
    } else {
        assert_int_equal(res.evicted, 0);
    }
    m->order[m->n++] = k;
    m->present[k] = 1;
    m->has_pay[k] = pop == 1;
    m->pay_tag[k] = tag;
    m->ingested++;
}

static void test_fifo_model(void **state)
{
    (void)state;
    const dist_metric metrics[] = { DIST_L2, DIST_COSINE, DIST_DOT };
    const uint32_t caps[] = { 1, 37 };
    for (int t = 0; t < 2; t++)
        for (int mi = 0; mi < 3; mi++)
            for (int ci = 0; ci < 2; ci++) {
                const uint32_t dim = 5, cap = caps[ci];
                vindex *v = ring_new(t ? VINDEX_FLAT : VINDEX_HNSW, metrics[mi], dim, cap, NULL);
                model *m = calloc(1, sizeof *m);
                assert_non_null(m);
                uint64_t s = 1000 + (uint64_t)(t * 10 + mi * 3 + ci);
                for (uint32_t i = 0; i < 3000; i++) {
                    model_step(v, m, cap, dim, &s);
                    if (i % 97 == 0) {
                        model_check(v, m, cap);
                        check_valid(v);
                    }
                }
                model_check(v, m, cap);
                check_valid(v);
                assert_true(m->evicted > 0);
                free(m);
                vindex_free(v);
            }
}

/* An unbounded index keeps no order and never evicts; counters still run. */
static void test_unbounded(void **state)
{
    (void)state;
    vindex *v = ring_new(VINDEX_FLAT, DIST_L2, 3, 0, NULL);
    const float x[3] = { 1, 2, 3 };
    for (uint32_t i = 0; i < 100; i++) assert_int_equal(vindex_add(v, &i, sizeof i, x, 3), 1);
    assert_int_equal(vindex_add(v, "a", 1, x, 3), 1);
    assert_int_equal(vindex_add(v, "a", 1, x, 3), 0);
    assert_int_equal(vindex_del(v, "a", 1), 1);
    vindex_stats st;
    vindex_stats_get(v, &st);
    assert_int_equal(st.count, 100);
    assert_int_equal(st.ingested, 101);
    assert_int_equal(st.evicted, 0);
    assert_int_equal(st.ring_capacity, 0);
    assert_int_equal(vindex_capacity(v), 0);
    assert_int_equal(vindex_fifo_first(v), VINDEX_NO_ID);
    assert_int_equal(vindex_fifo_next(v, 0), VINDEX_NO_ID);
    check_valid(v);
    vindex_free(v);
}

static void test_params(void **state)
{
    (void)state;
    vindex_params p;
    vindex_params_init(&p, VINDEX_HNSW, 4, DIST_L2);
    int err = 0;
    p.capacity = VINDEX_CAPACITY_MAX + 1;
    assert_null(vindex_new(&p, &err));
    assert_int_equal(err, -EINVAL);
    /* A large hint is cut to what the ring can use. */
    p.capacity = 50;
    p.initial_capacity = 100000;
    vindex *v = vindex_new(&p, &err);
    assert_non_null(v);
    vindex_stats st;
    vindex_stats_get(v, &st);
    assert_true(st.capacity <= 51);
    assert_int_equal(vindex_capacity(v), 50);
    vindex_free(v);
    /* Growth stops at capacity + 1 slots. */
    for (int t = 0; t < 2; t++) {
        const uint32_t caps[] = { 1, 5, 16, 100, 1000 };
        for (size_t ci = 0; ci < sizeof caps / sizeof *caps; ci++) {
            v = ring_new(t ? VINDEX_FLAT : VINDEX_HNSW, DIST_L2, 2, caps[ci], NULL);
            for (uint32_t i = 0; i < 3 * caps[ci] + 20; i++) {
                const float x[2] = { (float)i, 1 };
                assert_int_equal(vindex_add(v, &i, sizeof i, x, 2), 1);
            }
            vindex_stats_get(v, &st);
            assert_int_equal(st.count, caps[ci]);
            assert_true(st.capacity <= (caps[ci] + 1 < 16 ? 16 : caps[ci] + 1));
            check_valid(v);
            vindex_free(v);
        }
    }
}

/* ---- endless ingestion -------------------------------------------------- */

static float l2sq(const float *a, const float *b, uint32_t dim)
{
    float s = 0;
    for (uint32_t j = 0; j < dim; j++) s += (a[j] - b[j]) * (a[j] - b[j]);
    return s;
}

/* recall@10 of the index's search against a brute-force scan of its live
 * entries (l2). */
static double recall_at_10(const vindex *v, uint32_t dim, uint64_t seed)
{
    const uint32_t n = vindex_count(v), nq = 100, k = 10;
    float *vecs = malloc((size_t)n * dim * sizeof *vecs);
    uint32_t *ids = malloc(n * sizeof *ids);
    assert_non_null(vecs);
    assert_non_null(ids);
    uint32_t cur = 0, id, i = 0;
    const void *key;
    size_t kl;
    while (vindex_iter(v, &cur, &id, &key, &kl)) {
        assert_int_equal(vindex_get(v, key, kl, vecs + (size_t)i * dim), 1);
        ids[i++] = id;
    }
    assert_int_equal(i, n);
    vindex_search_ctx *c = vindex_search_ctx_new(NULL);
    uint64_t s = seed;
    uint32_t found = 0;
    for (uint32_t q = 0; q < nq; q++) {
        float x[64];
        rand_vec(x, dim, &s);
        /* The true 10 nearest by insertion into a sorted list. */
        float bd[10];
        uint32_t bi[10], nb = 0;
        for (uint32_t j = 0; j < n; j++) {
            float d = l2sq(x, vecs + (size_t)j * dim, dim);
            if (nb == k && d >= bd[k - 1]) continue;
            uint32_t at = nb < k ? nb++ : k - 1;
            while (at > 0 && bd[at - 1] > d) {
                bd[at] = bd[at - 1];
                bi[at] = bi[at - 1];
                at--;
            }
            bd[at] = d;
            bi[at] = ids[j];
        }
        vindex_query qq;
        vindex_query_init(&qq, x, dim, k);
        qq.ef = 100;
        vindex_hit hits[10];
        uint32_t nh;
        assert_int_equal(vindex_search(v, c, &qq, hits, &nh), 0);
        for (uint32_t a = 0; a < nh; a++)
            for (uint32_t b = 0; b < nb; b++) found += hits[a].id == bi[b];
    }
    vindex_search_ctx_free(c);
    free(vecs);
    free(ids);
    return (double)found / (nq * k);
}

static void test_endless_ingestion(void **state)
{
    (void)state;
    const uint32_t cap = 1000, dim = 12, warm = 20000;
    for (int t = 0; t < 2; t++) {
        vindex *v = ring_new(t ? VINDEX_FLAT : VINDEX_HNSW, DIST_L2, dim, cap, NULL);
        uint64_t s = 77 + (uint64_t)t;
        size_t mem_warm = 0, mem_max = 0;
        uint32_t slots_warm = 0;
        uint8_t pay[32];
        for (uint32_t i = 0; i < ENDLESS_INSERTS; i++) {
            float x[16];
            rand_vec(x, dim, &s);
            char key[24];
            int kl = snprintf(key, sizeof key, "%u", i + 1);
            vindex_add_args a;
            vindex_add_args_init(&a, key, (size_t)kl, x, dim);
            a.has_payload = 1;
            a.payload = pay;
            a.plen = (size_t)(i % 3 ? 32 : 0);
            memset(pay, (int)i, sizeof pay);
            vindex_add_result r;
            assert_int_equal(vindex_add_ex(v, &a, &r), 1);
            assert_int_equal(r.evicted, i >= cap);
            vindex_stats st;
            if (i + 1 == warm) {
                vindex_stats_get(v, &st);
                mem_warm = st.memory;
                slots_warm = st.capacity;
            } else if (i + 1 > warm && i % 1000 == 0) {
                vindex_stats_get(v, &st);
                if (st.memory > mem_max) mem_max = st.memory;
                assert_int_equal(st.capacity, slots_warm);
            }
        }
        vindex_stats st;
        vindex_stats_get(v, &st);
        assert_int_equal(st.count, cap);
        assert_int_equal(st.capacity, cap + 1);
        assert_int_equal(st.ingested, ENDLESS_INSERTS);
        assert_int_equal(st.evicted, ENDLESS_INSERTS - cap);
        assert_int_equal(st.payloads, cap);
        assert_int_equal(st.next_id, (uint64_t)ENDLESS_INSERTS + 1);
        /* The live entries are exactly the last cap, oldest first. */
        uint32_t id = vindex_fifo_first(v);
        for (uint32_t i = ENDLESS_INSERTS - cap; i < ENDLESS_INSERTS; i++) {
            char key[24];
            int kl = snprintf(key, sizeof key, "%u", i + 1);
            size_t got;
            const void *kb = vindex_key(v, id, &got);
            assert_int_equal(got, (size_t)kl);
            assert_memory_equal(kb, key, got);
            size_t pl;
            assert_non_null(vindex_payload(v, id, &pl));
            assert_int_equal(pl, i % 3 ? 32u : 0u);
            id = vindex_fifo_next(v, id);
        }
        assert_int_equal(id, VINDEX_NO_ID);
        print_message("%s: memory %zu after warm-up, at most %zu after\n", t ? "flat" : "hnsw",
                      mem_warm, mem_max);
        assert_true(mem_max <= mem_warm + mem_warm / 20);
        check_valid(v);
        double rec = recall_at_10(v, dim, 4242);
        print_message("%s: recall@10 %.3f over the live entries\n", t ? "flat" : "hnsw", rec);
        assert_true(rec >= 0.9);
        vindex_free(v);
    }
}

/* ---- payloads ----------------------------------------------------------- */

static int add_pay(vindex *v, const char *key, const float *x, uint32_t dim, const void *p,
                   size_t plen, int mode)
{
    vindex_add_args a;
    vindex_add_args_init(&a, key, strlen(key), x, dim);
    a.has_payload = mode == 1;
    a.drop_payload = mode == 2;
    a.payload = p;
    a.plen = plen;
    return vindex_add_ex(v, &a, NULL);
}

static const void *pay_by_key(const vindex *v, const char *key, size_t *len)
{
    uint32_t id;
    assert_int_equal(vindex_exists(v, key, strlen(key), &id), 1);
    return vindex_payload(v, id, len);
}

static void test_payloads(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        vindex *v = ring_new(t ? VINDEX_FLAT : VINDEX_HNSW, DIST_COSINE, 3, 3, NULL);
        const float x[3] = { 1, 2, 3 }, y[3] = { -1, 0, 4 };
        size_t len, m0 = vindex_memory(v);
        /* new without, new with, new with empty */
        assert_int_equal(add_pay(v, "none", x, 3, NULL, 0, 0), 1);
        assert_null(pay_by_key(v, "none", &len));
        assert_int_equal(len, 0);
        assert_int_equal(add_pay(v, "p", x, 3, "hello", 5, 1), 1);
        const void *p = pay_by_key(v, "p", &len);
        assert_int_equal(len, 5);
        assert_memory_equal(p, "hello", 5);
        assert_int_equal(add_pay(v, "e", x, 3, NULL, 0, 1), 1);
        p = pay_by_key(v, "e", &len);
        assert_non_null(p);                  /* empty, not absent */
        assert_int_equal(len, 0);
        assert_true(vindex_memory(v) > m0);
        /* overwrite: keep, replace, drop, set on one that had none */
        assert_int_equal(add_pay(v, "p", y, 3, NULL, 0, 0), 0);
        p = pay_by_key(v, "p", &len);
        assert_int_equal(len, 5);
        assert_memory_equal(p, "hello", 5);
        float out[3];
        assert_int_equal(vindex_get(v, "p", 1, out), 1);
        assert_true(fabsf(out[2] - 4) < 1e-5f);
        assert_int_equal(add_pay(v, "p", y, 3, "bye", 3, 1), 0);
        p = pay_by_key(v, "p", &len);
        assert_int_equal(len, 3);
        assert_memory_equal(p, "bye", 3);
        assert_int_equal(add_pay(v, "none", y, 3, "late", 4, 1), 0);
        p = pay_by_key(v, "none", &len);
        assert_int_equal(len, 4);
        size_t m1 = vindex_memory(v);
        assert_int_equal(add_pay(v, "none", y, 3, "ignored", 7, 2), 0);
        assert_null(pay_by_key(v, "none", &len));
        assert_true(vindex_memory(v) < m1);
        vindex_stats st;
        vindex_stats_get(v, &st);
        assert_int_equal(st.payloads, 2);
        assert_int_equal(st.payload_bytes, 3);
        /* bad payloads: nothing changes */
        vindex_add_args a;
        vindex_add_args_init(&a, "q", 1, x, 3);
        a.has_payload = 1;
        a.plen = 4;
        assert_int_equal(vindex_add_ex(v, &a, NULL), -EINVAL);
        a.payload = "xxxx";
        a.plen = (size_t)VINDEX_PAYLOAD_MAX + 1;
        assert_int_equal(vindex_add_ex(v, &a, NULL), -EINVAL);
        assert_int_equal(vindex_exists(v, "q", 1, NULL), 0);
        /* a big one */
        size_t big = 1u << 20;
        uint8_t *b = malloc(big);
        assert_non_null(b);
        for (size_t i = 0; i < big; i++) b[i] = (uint8_t)(i * 13);
        assert_int_equal(add_pay(v, "e", x, 3, b, big, 1), 0);
        p = pay_by_key(v, "e", &len);
        assert_int_equal(len, big);
        assert_memory_equal(p, b, big);
        assert_true(vindex_memory(v) > big);
        /* delete: payload gone, memory back */
        size_t m2 = vindex_memory(v);
        assert_int_equal(vindex_del(v, "e", 1), 1);
        assert_true(vindex_memory(v) + big <= m2);
        free(b);
        /* eviction takes the payload; the id it frees comes back without one */
        assert_int_equal(add_pay(v, "e2", x, 3, "E2", 2, 1), 1);   /* ring: none, p, e2 */
        uint32_t pid;
        assert_int_equal(vindex_exists(v, "none", 4, &pid), 1);
        vindex_add_result r;
        vindex_add_args_init(&a, "n1", 2, y, 3);
        assert_int_equal(vindex_add_ex(v, &a, &r), 1);               /* evicts "none" */
        assert_int_equal(r.evicted, 1);
        assert_int_equal(r.evicted_id, pid);
        assert_int_equal(r.evicted_klen, 4);
        vindex_add_args_init(&a, "n2", 2, y, 3);
        assert_int_equal(vindex_add_ex(v, &a, &r), 1);               /* evicts "p" (had "bye") */
        assert_int_equal(r.evicted, 1);
        assert_null(vindex_payload(v, r.evicted_id, &len));
        vindex_add_args_init(&a, "n3", 2, y, 3);
        assert_int_equal(vindex_add_ex(v, &a, &r), 1);               /* reuses p's id */
        assert_null(pay_by_key(v, "n3", &len));
        assert_null(pay_by_key(v, "n2", &len));
        vindex_stats_get(v, &st);
        assert_int_equal(st.payloads, 0);    /* e2 was evicted by n3 */
        assert_int_equal(st.payload_bytes, 0);
        assert_null(vindex_payload(v, 123456, &len));
        check_valid(v);
        vindex_free(v);
    }
}

/* ---- auto ids ----------------------------------------------------------- */

static void test_auto_ids(void **state)
{
    (void)state;
    vindex *v = ring_new(VINDEX_HNSW, DIST_L2, 2, 5, NULL);
    const float x[2] = { 1, 1 };
    assert_int_equal(vindex_next_id(v), 1);
    /* A server's "*": format next, skip keys that exist. */
    for (int i = 0; i < 8; i++) {
        char key[24];
        int kl;
        for (;;) {
            uint64_t id = vindex_next_id(v);
            kl = snprintf(key, sizeof key, "%llu", (unsigned long long)id);
            if (!vindex_exists(v, key, (size_t)kl, NULL)) break;
            vindex_note_id(v, id);
        }
        assert_int_equal(vindex_add(v, key, (size_t)kl, x, 2), 1);
    }
    assert_int_equal(vindex_next_id(v), 9);
    /* Explicit numeric keys move it; other keys do not. */
    assert_int_equal(vindex_add(v, "100", 3, x, 2), 1);
    assert_int_equal(vindex_next_id(v), 101);
    assert_int_equal(vindex_add(v, "50", 2, x, 2), 1);
    assert_int_equal(vindex_next_id(v), 101);
    const char *not_numbers[] = { "0200", "-300", "300a", "+300", " 300", "", "0",
                                  "18446744073709551616", "99999999999999999999" };
    for (size_t i = 0; i < sizeof not_numbers / sizeof *not_numbers; i++)
        assert_true(vindex_add(v, not_numbers[i], strlen(not_numbers[i]), x, 2) >= 0);
    assert_int_equal(vindex_next_id(v), 101);
    /* A failed add notes nothing. */
    const float bad[2] = { NAN, 1 };
    assert_int_equal(vindex_add(v, "500", 3, bad, 2), VINDEX_EVALUE);
    assert_int_equal(vindex_next_id(v), 101);
    /* Overwrites note too (same key, already noted); note_id never lowers. */
    vindex_note_id(v, 7);
    assert_int_equal(vindex_next_id(v), 101);
    vindex_note_id(v, 101);
    assert_int_equal(vindex_next_id(v), 102);
    /* The last id: exhausted, and it stays so. */
    assert_int_equal(vindex_add(v, "18446744073709551614", 20, x, 2), 1);
    assert_true(vindex_next_id(v) == UINT64_MAX);
    assert_int_equal(vindex_add(v, "18446744073709551615", 20, x, 2), 1);
    assert_int_equal(vindex_next_id(v), 0);
    vindex_note_id(v, 5);
    assert_int_equal(vindex_next_id(v), 0);
    vindex_stats st;
    vindex_stats_get(v, &st);
    assert_int_equal(st.next_id, 0);
    check_valid(v);
    vindex_free(v);
}

/* ---- failure atomicity -------------------------------------------------- */

/* Everything observable about a ring, as bytes (plain malloc). */
typedef struct shot { uint8_t *b; size_t n, cap; } shot;

static void shot_put(shot *s, const void *p, size_t n)
{
    if (s->n + n > s->cap) {
        s->cap = (s->n + n) * 2 + 256;
        assert_non_null(s->b = realloc(s->b, s->cap));
    }
    if (n) memcpy(s->b + s->n, p, n);
    s->n += n;
}

static void shot_take(const vindex *v, shot *s)
{
    s->n = 0;
    vindex_stats st;
    vindex_stats_get(v, &st);
    shot_put(s, &st.count, sizeof st.count);
    shot_put(s, &st.ingested, sizeof st.ingested);
    shot_put(s, &st.evicted, sizeof st.evicted);
    shot_put(s, &st.next_id, sizeof st.next_id);
    shot_put(s, &st.payloads, sizeof st.payloads);
    shot_put(s, &st.payload_bytes, sizeof st.payload_bytes);
    for (uint32_t id = vindex_fifo_first(v); id != VINDEX_NO_ID; id = vindex_fifo_next(v, id)) {
        size_t kl, pl;
        const void *k = vindex_key(v, id, &kl);
        const void *p = vindex_payload(v, id, &pl);
        float x[8];
        assert_int_equal(vindex_get(v, k, kl, x), 1);
        shot_put(s, &id, sizeof id);
        shot_put(s, &kl, sizeof kl);
        shot_put(s, k, kl);
        int has = p != NULL;
        shot_put(s, &has, sizeof has);
        shot_put(s, &pl, sizeof pl);
        shot_put(s, p, pl);
        shot_put(s, x, vindex_dim(v) * sizeof *x);
    }
}

static void test_enomem_ring(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        fail_alloc fa = { -1, 0 };
        vindex_allocator al = { f_alloc, f_free, &fa, f_realloc };
        const uint32_t dim = 6, cap = 24;
        vindex *v = ring_new(t ? VINDEX_FLAT : VINDEX_HNSW, DIST_COSINE, dim, cap, &al);
        uint64_t s = 5 + (uint64_t)t;
        uint32_t failures = 0;
        shot before = { 0 }, after = { 0 };
        for (uint32_t i = 0; i < 300; i++) {
            float x[6];
            rand_vec(x, dim, &s);
            char key[24], pay[40];
            /* mostly new numeric keys, some overwrites of live ones */
            uint32_t k = i % 5 == 4 ? i - 2 : i;
            int kl = snprintf(key, sizeof key, "%u", k + 1);
            vindex_add_args a;
            vindex_add_args_init(&a, key, (size_t)kl, x, dim);
            a.has_payload = i % 3 != 0;
            a.drop_payload = i % 3 == 0 && i % 2;
            a.payload = pay;
            a.plen = (size_t)snprintf(pay, sizeof pay, "payload of %u", i);
            for (long j = 0;; j++) {
                shot_take(v, &before);
                size_t mem = vindex_memory(v);
                fa.countdown = j;
                vindex_add_result r;
                int rc = vindex_add_ex(v, &a, &r);
                fa.countdown = -1;
                if (rc >= 0) break;
                assert_int_equal(rc, -ENOMEM);
                shot_take(v, &after);
                assert_int_equal(after.n, before.n);
                assert_memory_equal(after.b, before.b, before.n);
                assert_true(vindex_memory(v) >= mem);  /* only reservations may remain */
                failures++;
            }
            if (i % 50 == 0) check_valid(v);
        }
        check_valid(v);
        assert_true(failures > 0);
        vindex_stats st;
        vindex_stats_get(v, &st);
        assert_int_equal(st.count, cap);
        assert_true(st.evicted > 0);
        free(before.b);
        free(after.b);
        vindex_free(v);
        assert_int_equal(fa.live, 0);
    }
}

int main(void)
{
    assert_int_equal(dist_select("auto"), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_model),
        cmocka_unit_test(test_unbounded),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_endless_ingestion),
        cmocka_unit_test(test_payloads),
        cmocka_unit_test(test_auto_ids),
        cmocka_unit_test(test_enomem_ring),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
