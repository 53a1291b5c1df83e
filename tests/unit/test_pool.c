/* test_pool.c -- the worker pool: every job's work runs once on a worker,
 * every done runs once on the completing thread, notify wakes the loop,
 * and pool_free drains.  Runs under TSan in the test command. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "engram/pool.h"

typedef struct tjob {
    pool_job base;
    int work_runs;               /* written by the worker, read after done */
    int worker;
    int done_runs;
    pthread_t done_thread;
} tjob;

static _Atomic int notified;
static _Atomic long work_total;

static void tjob_work(pool_job *j, int worker_id)
{
    tjob *t = (tjob *)j;
    t->work_runs++;
    t->worker = worker_id;
    atomic_fetch_add(&work_total, 1);
}

static void tjob_done(pool_job *j)
{
    tjob *t = (tjob *)j;
    t->done_runs++;
    t->done_thread = pthread_self();
}

static void on_notify(void *ud)
{
    (void)ud;
    atomic_fetch_add(&notified, 1);
}

static void test_bad_args(void **state)
{
    int err = 0;
    (void)state;
    assert_null(pool_new(0, NULL, NULL, &err));
    assert_int_equal(err, -EINVAL);
    assert_null(pool_new(257, NULL, NULL, &err));
    assert_int_equal(err, -EINVAL);
    pool_free(NULL);
}

static void test_many_jobs(void **state)
{
    enum { N = 20000, T = 4 };
    int err = 0, completed = 0;
    tjob *jobs = calloc(N, sizeof *jobs);
    (void)state;
    atomic_store(&notified, 0);
    atomic_store(&work_total, 0);
    pool *p = pool_new(T, on_notify, NULL, &err);
    assert_non_null(p);
    assert_int_equal(pool_threads(p), T);
    for (int i = 0; i < N; i++) {
        jobs[i].base.work = tjob_work;
        jobs[i].base.done = tjob_done;
        jobs[i].worker = -1;
        pool_submit(p, &jobs[i].base);
    }
    while (completed < N) {
        int n = pool_complete(p);
        completed += n;
        if (!n) usleep(100);
    }
    assert_int_equal(pool_inflight(p), 0);
    assert_int_equal(pool_complete(p), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(jobs[i].work_runs, 1);
        assert_int_equal(jobs[i].done_runs, 1);
        assert_true(jobs[i].worker >= 0 && jobs[i].worker < T);
        assert_true(pthread_equal(jobs[i].done_thread, pthread_self()));
    }
    assert_int_equal(atomic_load(&work_total), N);
    /* At least one wake, and at most one per finished job. */
    assert_true(atomic_load(&notified) >= 1 && atomic_load(&notified) <= N);
    pool_free(p);
    free(jobs);
}

/* A done() that submits a follow-up job: no pool lock is held in done(). */
static pool *chain_pool;
static _Atomic int chain_left;
static void chain_done(pool_job *j);
static void chain_work(pool_job *j, int w) { (void)j; (void)w; }
static void chain_done(pool_job *j)
{
    if (atomic_fetch_sub(&chain_left, 1) > 1) pool_submit(chain_pool, j);
}

static void test_resubmit_from_done(void **state)
{
    pool_job j = {chain_work, chain_done, NULL};
    int err = 0;
    (void)state;
    atomic_store(&chain_left, 100);
    chain_pool = pool_new(2, NULL, NULL, &err);
    assert_non_null(chain_pool);
    pool_submit(chain_pool, &j);
    while (atomic_load(&chain_left) > 0) {
        if (!pool_complete(chain_pool)) usleep(50);
    }
    pool_free(chain_pool);
    assert_int_equal(atomic_load(&chain_left), 0);
}

/* pool_free with jobs still queued runs all of them, then their done(). */
static void test_free_drains(void **state)
{
    enum { N = 500 };
    tjob jobs[N] = {0};
    int err = 0;
    (void)state;
    pool *p = pool_new(1, NULL, NULL, &err);
    assert_non_null(p);
    for (int i = 0; i < N; i++) {
        jobs[i].base.work = tjob_work;
        jobs[i].base.done = tjob_done;
        pool_submit(p, &jobs[i].base);
    }
    pool_free(p);
    for (int i = 0; i < N; i++) {
        assert_int_equal(jobs[i].work_runs, 1);
        assert_int_equal(jobs[i].done_runs, 1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_many_jobs),
        cmocka_unit_test(test_resubmit_from_done),
        cmocka_unit_test(test_free_drains),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
