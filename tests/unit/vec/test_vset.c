/* test_registry.c -- names, ordering, lifetimes and the index locks.
 * The concurrent tests run under TSan in the test command: searches on
 * worker threads under read locks while the main thread writes under the
 * write lock, and an index dropped while searches still hold it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engram/registry.h"

#define DIM 8

static vindex_params params(vindex_type t)
{
    vindex_params p;
    vindex_params_init(&p, t, DIM, DIST_L2);
    p.seed = 42;
    return p;
}

static void rand_vec(float *v, unsigned *seed)
{
    for (int i = 0; i < DIM; i++) v[i] = (float)rand_r(seed) / (float)RAND_MAX;
}

static void test_create_find_drop(void **state)
{
    vreg *r = vreg_new();
    vindex_params p = params(VINDEX_HNSW);
    vreg_entry *e = NULL;
    (void)state;
    assert_int_equal(vreg_create(r, "a", 1, &p, &e), 0);
    assert_non_null(e);
    assert_ptr_equal(vreg_find(r, "a", 1), e);
    assert_null(vreg_find(r, "A", 1));                 /* case-sensitive */
    assert_int_equal(vreg_create(r, "a", 1, &p, NULL), -EEXIST);
    p.dim = 0;
    assert_true(vreg_create(r, "bad", 3, &p, NULL) < 0);
    assert_null(vreg_find(r, "bad", 3));
    assert_int_equal(vreg_count(r), 1);
    assert_int_equal(vreg_drop(r, "a", 1), 1);
    assert_int_equal(vreg_drop(r, "a", 1), 0);
    assert_int_equal(vreg_count(r), 0);
    vreg_free(r);
}

static void test_sorted_binary_names(void **state)
{
    static const char *names[] = {"zeta", "alpha", "a\0b", "a", "", "beta", "a\0a"};
    static const size_t lens[] = {4, 5, 3, 1, 0, 4, 3};
    const size_t n = sizeof lens / sizeof lens[0];
    vreg *r = vreg_new();
    vindex_params p = params(VINDEX_FLAT);
    (void)state;
    for (size_t i = 0; i < n; i++) assert_int_equal(vreg_create(r, names[i], lens[i], &p, NULL), 0);
    /* Grow past the initial table: the map stays consistent. */
    for (int i = 0; i < 100; i++) {
        char nm[16];
        int l = snprintf(nm, sizeof nm, "idx%03d", i);
        assert_int_equal(vreg_create(r, nm, (size_t)l, &p, NULL), 0);
    }
    assert_int_equal(vreg_count(r), n + 100);
    for (size_t i = 1; i < vreg_count(r); i++) {
        size_t la, lb;
        const char *a = vreg_name(vreg_at(r, i - 1), &la);
        const char *b = vreg_name(vreg_at(r, i), &lb);
        int c = memcmp(a, b, la < lb ? la : lb);
        assert_true(c < 0 || (c == 0 && la < lb));
    }
    size_t l0;
    vreg_name(vreg_at(r, 0), &l0);
    assert_int_equal(l0, 0);                           /* "" sorts first */
    assert_null(vreg_at(r, vreg_count(r)));
    assert_int_equal(vreg_drop_all(r), n + 100);
    assert_int_equal(vreg_count(r), 0);
    vreg_free(r);
}

/* A dropped index stays usable through a reference taken before the drop. */
static void test_drop_while_referenced(void **state)
{
    vreg *r = vreg_new();
    vindex_params p = params(VINDEX_FLAT);
    vreg_entry *e;
    float v[DIM];
    unsigned seed = 1;
    (void)state;
    assert_int_equal(vreg_create(r, "x", 1, &p, &e), 0);
    rand_vec(v, &seed);
    assert_int_equal(vindex_add(vreg_index(e), "k", 1, v, DIM), 1);
    vreg_entry *ref = vreg_acquire(e);
    assert_int_equal(vreg_drop(r, "x", 1), 1);
    assert_true(vreg_dropped(ref));
    assert_null(vreg_find(r, "x", 1));
    assert_int_equal(vindex_count(vreg_index(ref)), 1);   /* still alive */
    vreg_release(ref);                                     /* now freed (ASan checks) */
    vreg_free(r);
}

typedef struct searcher {
    vreg_entry *e;
    _Atomic int *stop;
    long searches;
    _Atomic long dropped_seen;   /* read by the main thread while running */
} searcher;

static void *search_loop(void *arg)
{
    searcher *s = arg;
    vindex_search_ctx *ctx = vindex_search_ctx_new(NULL);
    vindex_hit hits[10];
    float q[DIM];
    unsigned seed = 7;
    while (!atomic_load(s->stop)) {
        uint32_t n = 0;
        vindex_query qq;
        rand_vec(q, &seed);
        vindex_query_init(&qq, q, DIM, 10);
        vreg_read_lock(s->e);
        if (vreg_dropped(s->e)) s->dropped_seen++;
        assert_int_equal(vindex_search(vreg_index(s->e), ctx, &qq, hits, &n), 0);
        assert_true(n <= 10);
        vreg_read_unlock(s->e);
        vreg_count_search(s->e);
        s->searches++;
    }
    vindex_search_ctx_free(ctx);
    return NULL;
}

/* Writers make progress while readers search continuously (writer
 * preference), and the index stays valid. */
static void test_concurrent_search_and_write(void **state)
{
    enum { READERS = 2, WRITES = 1500 };
    vreg *r = vreg_new();
    vindex_params p = params(VINDEX_HNSW);
    vreg_entry *e;
    pthread_t th[READERS];
    searcher s[READERS];
    _Atomic int stop = 0;
    float v[DIM];
    unsigned seed = 3;
    char key[16];
    (void)state;
    assert_int_equal(vreg_create(r, "idx", 3, &p, &e), 0);
    for (int i = 0; i < 200; i++) {
        rand_vec(v, &seed);
        int kl = snprintf(key, sizeof key, "k%d", i);
        assert_int_equal(vindex_add(vreg_index(e), key, (size_t)kl, v, DIM), 1);
    }
    for (int t = 0; t < READERS; t++) {
        s[t] = (searcher){vreg_acquire(e), &stop, 0, 0};
        assert_int_equal(pthread_create(&th[t], NULL, search_loop, &s[t]), 0);
    }
    for (int i = 0; i < WRITES; i++) {
        rand_vec(v, &seed);
        int kl = snprintf(key, sizeof key, "k%d", 200 + i);
        vreg_write_lock(e);
        assert_true(vindex_add(vreg_index(e), key, (size_t)kl, v, DIM) >= 0);
        if (i % 3 == 0) {
            kl = snprintf(key, sizeof key, "k%d", i);
            vindex_del(vreg_index(e), key, (size_t)kl);
        }
        vreg_write_unlock(e);
    }
    atomic_store(&stop, 1);
    long total = 0;
    for (int t = 0; t < READERS; t++) {
        pthread_join(th[t], NULL);
        total += s[t].searches;
        vreg_release(s[t].e);
    }
    char err[256];
    assert_int_equal(vindex_validate(vreg_index(e), err, sizeof err), 0);
    assert_int_equal(vreg_searches(e), (uint64_t)total);
    vreg_free(r);
}

/* VDROP while searches hold references: they finish on a live index and the
 * last release frees it. */
static void test_drop_during_search(void **state)
{
    enum { READERS = 2 };
    vreg *r = vreg_new();
    vindex_params p = params(VINDEX_FLAT);
    vreg_entry *e;
    pthread_t th[READERS];
    searcher s[READERS];
    _Atomic int stop = 0;
    float v[DIM];
    unsigned seed = 5;
    (void)state;
    assert_int_equal(vreg_create(r, "gone", 4, &p, &e), 0);
    for (int i = 0; i < 500; i++) {
        char key[16];
        int kl = snprintf(key, sizeof key, "k%d", i);
        rand_vec(v, &seed);
        vindex_add(vreg_index(e), key, (size_t)kl, v, DIM);
    }
    for (int t = 0; t < READERS; t++) {
        s[t] = (searcher){vreg_acquire(e), &stop, 0, 0};
        pthread_create(&th[t], NULL, search_loop, &s[t]);
    }
    assert_int_equal(vreg_drop(r, "gone", 4), 1);
    /* Let the readers run on the dropped index for a while. */
    while (s[0].dropped_seen < 50 || s[1].dropped_seen < 50) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&stop, 1);
    for (int t = 0; t < READERS; t++) {
        pthread_join(th[t], NULL);
        vreg_release(s[t].e);
    }
    vreg_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_find_drop),
        cmocka_unit_test(test_sorted_binary_names),
        cmocka_unit_test(test_drop_while_referenced),
        cmocka_unit_test(test_concurrent_search_and_write),
        cmocka_unit_test(test_drop_during_search),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
