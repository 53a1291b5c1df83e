/* test_vset.c -- a vector set's lifetime and lock.  The concurrent tests
 * run under TSan in the test command: searches on worker threads under
 * read locks while the main thread writes under the write lock, and a set
 * whose key was deleted while searches still hold it. */
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

#include "engram/vset.h"

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

static int udata_freed;
static void count_free(void *p)
{
    assert_ptr_equal(p, &udata_freed);
    udata_freed++;
}

static void test_new_adopt_release(void **state)
{
    (void)state;
    vindex_params p = params(VINDEX_HNSW);
    int err = 0;
    vset *s = vset_new(&p, &err);
    assert_non_null(s);
    assert_false(vset_dropped(s));
    assert_true(vset_memory(s) > vindex_memory(vset_index(s)));
    vset_set_udata(s, &udata_freed, count_free);
    assert_ptr_equal(vset_udata(s), &udata_freed);
    vset_release(s);                 /* the only reference: freed (ASan checks) */
    assert_int_equal(udata_freed, 1);
    /* bad parameters: vindex_new's error */
    p.dim = 0;
    assert_null(vset_new(&p, &err));
    assert_int_equal(err, -EINVAL);
    /* adopting an index built elsewhere */
    p = params(VINDEX_FLAT);
    vindex *v = vindex_new(&p, NULL);
    assert_non_null(v);
    s = vset_adopt(v);
    assert_ptr_equal(vset_index(s), v);
    vset_release(s);
}

static void test_drop_while_referenced(void **state)
{
    (void)state;
    vindex_params p = params(VINDEX_FLAT);
    vset *s = vset_new(&p, NULL);
    float v[DIM] = {1};
    assert_int_equal(vindex_add(vset_index(s), "k", 1, v, DIM), 1);
    vset *ref = vset_acquire(s);
    vset_mark_dropped(s);            /* the key is gone ... */
    vset_release(s);                 /* ... and the keyspace's reference with it */
    assert_true(vset_dropped(ref));
    assert_int_equal(vindex_count(vset_index(ref)), 1);   /* still alive */
    vset_release(ref);                                     /* now freed (ASan checks) */
}

typedef struct searcher {
    vset *s;
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
        vset_read_lock(s->s);
        if (vset_dropped(s->s)) s->dropped_seen++;
        assert_int_equal(vindex_search(vset_index(s->s), ctx, &qq, hits, &n), 0);
        assert_true(n <= 10);
        vset_read_unlock(s->s);
        vset_count_search(s->s);
        s->searches++;
    }
    vindex_search_ctx_free(ctx);
    return NULL;
}

/* Writers make progress while readers search continuously (writer
 * preference), and the index stays valid. */
static void test_concurrent_search_and_write(void **state)
{
    enum { READERS = 3, WRITES = 2000 };
    vindex_params p = params(VINDEX_HNSW);
    pthread_t th[READERS];
    searcher sr[READERS];
    _Atomic int stop = 0;
    float v[DIM];
    unsigned seed = 1;
    (void)state;
    vset *s = vset_new(&p, NULL);
    for (int i = 0; i < 200; i++) {
        char key[16];
        int kl = snprintf(key, sizeof key, "k%d", i);
        rand_vec(v, &seed);
        assert_int_equal(vindex_add(vset_index(s), key, (size_t)kl, v, DIM), 1);
    }
    for (int t = 0; t < READERS; t++) {
        sr[t] = (searcher){vset_acquire(s), &stop, 0, 0};
        pthread_create(&th[t], NULL, search_loop, &sr[t]);
    }
    uint64_t gen0 = vset_generation(s);
    for (int i = 0; i < WRITES; i++) {
        char key[16];
        int kl = snprintf(key, sizeof key, "w%d", i);
        rand_vec(v, &seed);
        vset_write_lock(s);
        assert_true(vindex_add(vset_index(s), key, (size_t)kl, v, DIM) >= 0);
        if (i % 3 == 0) {
            kl = snprintf(key, sizeof key, "w%d", i / 2);
            vindex_del(vset_index(s), key, (size_t)kl);
        }
        vset_write_unlock(s);
    }
    assert_int_equal(vset_generation(s), gen0 + WRITES);
    atomic_store(&stop, 1);
    long total = 0;
    for (int t = 0; t < READERS; t++) {
        pthread_join(th[t], NULL);
        total += sr[t].searches;
        vset_release(sr[t].s);
    }
    char err[256];
    assert_int_equal(vindex_validate(vset_index(s), err, sizeof err), 0);
    assert_int_equal(vset_searches(s), (uint64_t)total);
    vset_release(s);
}

/* The key is deleted while searches hold the set: they go on searching it
 * (and see it marked dropped), and the last release frees it. */
static void test_drop_during_search(void **state)
{
    enum { READERS = 2 };
    vindex_params p = params(VINDEX_FLAT);
    pthread_t th[READERS];
    searcher sr[READERS];
    _Atomic int stop = 0;
    float v[DIM];
    unsigned seed = 5;
    (void)state;
    vset *s = vset_new(&p, NULL);
    for (int i = 0; i < 500; i++) {
        char key[16];
        int kl = snprintf(key, sizeof key, "k%d", i);
        rand_vec(v, &seed);
        vindex_add(vset_index(s), key, (size_t)kl, v, DIM);
    }
    for (int t = 0; t < READERS; t++) {
        sr[t] = (searcher){vset_acquire(s), &stop, 0, 0};
        pthread_create(&th[t], NULL, search_loop, &sr[t]);
    }
    vset_mark_dropped(s);
    vset_release(s);
    /* Let the readers run on the dropped set for a while. */
    while (sr[0].dropped_seen < 50 || sr[1].dropped_seen < 50) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&stop, 1);
    for (int t = 0; t < READERS; t++) {
        pthread_join(th[t], NULL);
        vset_release(sr[t].s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_adopt_release),
        cmocka_unit_test(test_drop_while_referenced),
        cmocka_unit_test(test_concurrent_search_and_write),
        cmocka_unit_test(test_drop_during_search),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
