/* test_pool.c -- the worker pool: every job's work runs once on a worker,
 * every done runs once on the completing thread, notify wakes the loop
 * (coalesced: when a worker goes idle, when a job asks for it and the
 * queue is short work, or when finished jobs have waited POOL_QUIET_NS),
 * workers take the requested nice value, and pool_free drains.  Runs under
 * TSan in the test command. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/resource.h>
#include <sys/syscall.h>
#endif

#include "engram/pool.h"

/* This test builds its own pool.c with the pool's times stretched
 * (tests/CMakeLists.txt): at 2 ms and 250 us they are too close to how
 * late a loaded machine may schedule a thread for a test that asserts on
 * when a wake-up comes. */
#if !defined(POOL_QUIET_NS) || !defined(POOL_REFILL_NS)
#error "test_pool needs POOL_QUIET_NS and POOL_REFILL_NS (see tests/CMakeLists.txt)"
#endif

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
    assert_null(pool_new(0, 0, NULL, NULL, &err));
    assert_int_equal(err, -EINVAL);
    assert_null(pool_new(257, 0, NULL, NULL, &err));
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
    pool *p = pool_new(T, 0, on_notify, NULL, &err);
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
    pool_job j = {chain_work, chain_done, NULL, 0};
    int err = 0;
    (void)state;
    atomic_store(&chain_left, 100);
    chain_pool = pool_new(2, 0, NULL, NULL, &err);
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
    pool *p = pool_new(1, 0, NULL, NULL, &err);
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

/* A job that blocks its worker until the test opens its gate. */
typedef struct gjob {
    pool_job base;
    _Atomic int open;
    _Atomic int started;
} gjob;

static void gjob_work(pool_job *j, int worker_id)
{
    gjob *g = (gjob *)j;
    (void)worker_id;
    atomic_store(&g->started, 1);
    while (!atomic_load(&g->open)) usleep(100);
}

static void gjob_done(pool_job *j) { (void)j; }

static void gjob_init(gjob *g)
{
    memset(g, 0, sizeof *g);
    g->base.work = gjob_work;
    g->base.done = gjob_done;
}

/* Wait up to 5 s for `notified` to reach n. */
static int wait_notified(int n)
{
    for (int i = 0; i < 50000 && atomic_load(&notified) < n; i++) usleep(100);
    return atomic_load(&notified) >= n;
}

/* A one-worker pool that counts its wake-ups in `notified` (reset). */
static pool *pool_counted(void)
{
    int err = 0;
    atomic_store(&notified, 0);
    pool *p = pool_new(1, 0, on_notify, NULL, &err);
    assert_non_null(p);
    return p;
}

/* Run pool_complete until `total` jobs have completed, counting `got`. */
static void complete_until(pool *p, int got, int total)
{
    while (got < total) {
        int n = pool_complete(p);
        got += n;
        if (!n) usleep(100);
    }
}

/* Submit n tjobs running `work`. */
static void submit_tjobs(pool *p, tjob *jobs, int n, void (*work)(pool_job *, int))
{
    for (int i = 0; i < n; i++) {
        jobs[i].base.work = work;
        jobs[i].base.done = tjob_done;
        pool_submit(p, &jobs[i].base);
    }
}

/* One worker runs a queue of jobs back to back: one wake for the lot, when
 * it runs dry, not one per job. */
static void test_wakes_coalesced(void **state)
{
    enum { N = 100 };
    tjob jobs[N];
    gjob gate;
    int got = 0;
    (void)state;
    memset(jobs, 0, sizeof jobs);
    gjob_init(&gate);
    pool *p = pool_counted();
    pool_submit(p, &gate.base);
    submit_tjobs(p, jobs, N, tjob_work);
    atomic_store(&gate.open, 1);
    assert_true(wait_notified(1));
    complete_until(p, got, N + 1);
    assert_int_equal(atomic_load(&notified), 1);
    for (int i = 0; i < N; i++) assert_int_equal(jobs[i].done_runs, 1);
    pool_free(p);
}

/* A job with `wake` set wakes the loop although its worker stays busy; one
 * without waits, unannounced, for pool_complete.  (A fresh pool: no job
 * has run, so one queued job is short work.) */
static void test_wake_flag(void **state)
{
    tjob a, b;
    gjob g1, g2, g3;
    (void)state;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    a.base.work = b.base.work = tjob_work;
    a.base.done = b.base.done = tjob_done;
    atomic_store(&a.base.wake, 1);
    gjob_init(&g1);
    gjob_init(&g2);
    gjob_init(&g3);
    atomic_store(&g1.open, 1);          /* g1 returns at once */
    pool *p = pool_counted();

    /* g1, a (wake), g2: a's end wakes the loop while g2 still runs. */
    pool_submit(p, &g1.base);
    pool_submit(p, &a.base);
    pool_submit(p, &g2.base);
    assert_true(wait_notified(1));
    while (!atomic_load(&g2.started)) usleep(100);
    assert_int_equal(pool_complete(p), 2);        /* g1 and a */
    assert_int_equal(a.done_runs, 1);

    /* g2 (open now), b (no wake), g3: b finishes, no wake while g3 runs;
     * the caller's own pool_complete collects it. */
    pool_submit(p, &b.base);
    pool_submit(p, &g3.base);
    atomic_store(&g2.open, 1);
    while (!atomic_load(&g3.started)) usleep(100);
    usleep(20 * 1000);
    assert_int_equal(atomic_load(&notified), 1);
    assert_int_equal(pool_complete(p), 2);        /* g2 and b */
    assert_int_equal(b.done_runs, 1);

    /* g3 ends with nothing queued: the idle worker wakes the loop. */
    atomic_store(&g3.open, 1);
    assert_true(wait_notified(2));
    assert_int_equal(pool_complete(p), 1);
    assert_int_equal(pool_inflight(p), 0);
    pool_free(p);
}

/* Let g run LONG_MS, then open it: a fresh pool then counts a job as about
 * LONG_MS / 8 (its running average), and one queued job behind it is
 * long work. */
#define LONG_MS (16 * POOL_REFILL_NS / 1000000)
static void hold_gate_long(gjob *g)
{
    while (!atomic_load(&g->started)) usleep(100);
    usleep(LONG_MS * 1000);
    atomic_store(&g->open, 1);
}

/* A `wake` job that finishes while the queue still holds long work does
 * not wake the loop at once: the workers stay busy a while, nothing needs
 * answering in a hurry.  The wake comes when the worker runs dry. */
static void test_wake_deferred_while_queue_long(void **state)
{
    tjob a;
    gjob g0, g1;
    (void)state;
    memset(&a, 0, sizeof a);
    a.base.work = tjob_work;
    a.base.done = tjob_done;
    atomic_store(&a.base.wake, 1);
    gjob_init(&g0);
    gjob_init(&g1);
    pool *p = pool_counted();
    /* g0 (long), a (wake), g1 (held): when a ends, g1 queued is long work. */
    pool_submit(p, &g0.base);
    pool_submit(p, &a.base);
    pool_submit(p, &g1.base);
    hold_gate_long(&g0);
    while (!atomic_load(&g1.started)) usleep(100);
    usleep(10 * 1000);
    assert_int_equal(atomic_load(&notified), 0);
    assert_int_equal(pool_complete(p), 2);        /* g0 and a, collected by the caller */
    assert_int_equal(a.done_runs, 1);
    atomic_store(&g1.open, 1);
    assert_true(wait_notified(1));                /* g1 ends, the worker runs dry */
    assert_int_equal(pool_complete(p), 1);
    pool_free(p);
}

/* What `notified` was when the probe job started (notify() runs on the
 * worker before it starts its next job, so this is exact). */
static _Atomic int probe_seen = -1;
static void probe_work(pool_job *j, int worker_id)
{
    (void)j;
    (void)worker_id;
    atomic_store(&probe_seen, atomic_load(&notified));
}

/* The deferred wake is not lost while the worker stays busy: once what is
 * queued is short work, the loop is woken, before the worker runs dry. */
static void test_deferred_wake_when_queue_short(void **state)
{
    enum { N = 64 };
    static tjob quick[N];
    tjob a, probe;
    gjob g0, g1;
    int err = 0;
    (void)state;
    memset(&a, 0, sizeof a);
    memset(&probe, 0, sizeof probe);
    memset(quick, 0, sizeof quick);
    a.base.work = tjob_work;
    probe.base.work = probe_work;
    a.base.done = probe.base.done = tjob_done;
    atomic_store(&a.base.wake, 1);
    gjob_init(&g0);
    gjob_init(&g1);
    atomic_store(&notified, 0);
    atomic_store(&probe_seen, -1);
    pool *p = pool_new(1, 0, on_notify, NULL, &err);
    assert_non_null(p);
    /* g0 (long), a (wake), 64 jobs of microseconds, the probe, g1 (held):
     * the average falls as the quick jobs run, and the queue becomes
     * short work about halfway through them, long before the probe. */
    pool_submit(p, &g0.base);
    pool_submit(p, &a.base);
    submit_tjobs(p, quick, N, tjob_work);
    pool_submit(p, &probe.base);
    pool_submit(p, &g1.base);
    hold_gate_long(&g0);
    while (!atomic_load(&g1.started)) usleep(100);
    assert_int_equal(atomic_load(&probe_seen), 1);
    complete_until(p, 0, N + 3);                  /* g0, a, the quick ones, the probe */
    assert_int_equal(a.done_runs, 1);
    atomic_store(&g1.open, 1);
    complete_until(p, 0, 1);
    pool_free(p);
}

static void sleepy_work(pool_job *j, int worker_id)
{
    (void)j;
    (void)worker_id;
    usleep(1000);
}

/* Jobs that keep finishing without a wake flag and without the worker
 * going idle still wake the loop once the first has waited POOL_QUIET_NS
 * (a gate holds the queue non-empty throughout). */
static void test_quiet_completions_announced(void **state)
{
    enum { N = 3 * (POOL_QUIET_NS / 1000000) };   /* N jobs of 1 ms */
    tjob jobs[N];
    gjob g1, g2;
    (void)state;
    memset(jobs, 0, sizeof jobs);
    gjob_init(&g1);
    gjob_init(&g2);
    pool *p = pool_counted();
    pool_submit(p, &g1.base);
    submit_tjobs(p, jobs, N, sleepy_work);
    pool_submit(p, &g2.base);
    atomic_store(&g1.open, 1);
    assert_true(wait_notified(1));          /* long before g2 */
    int got = pool_complete(p);
    assert_true(got >= 2 && got <= N + 1);
    atomic_store(&g2.open, 1);
    complete_until(p, got, N + 2);
    pool_free(p);
}

#if defined(__linux__)
static _Atomic int seen_nice = 100;
static void nice_work(pool_job *j, int worker_id)
{
    (void)j;
    (void)worker_id;
    atomic_store(&seen_nice, getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid)));
}

/* Workers run `nice` steps below the thread that made the pool (Linux keeps
 * a nice value per thread), and the caller's own priority is untouched. */
static void test_worker_nice(void **state)
{
    tjob j;
    int err = 0;
    (void)state;
    memset(&j, 0, sizeof j);
    j.base.work = nice_work;
    j.base.done = tjob_done;
    int base = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
    pool *p = pool_new(1, 5, NULL, NULL, &err);
    assert_non_null(p);
    pool_submit(p, &j.base);
    while (!pool_complete(p)) usleep(100);
    assert_int_equal(atomic_load(&seen_nice), base + 5 > 19 ? 19 : base + 5);
    assert_int_equal(getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid)), base);
    pool_free(p);
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_many_jobs),
        cmocka_unit_test(test_resubmit_from_done),
        cmocka_unit_test(test_free_drains),
        cmocka_unit_test(test_wakes_coalesced),
        cmocka_unit_test(test_wake_flag),
        cmocka_unit_test(test_wake_deferred_while_queue_long),
        cmocka_unit_test(test_deferred_wake_when_queue_short),
        cmocka_unit_test(test_quiet_completions_announced),
#if defined(__linux__)
        cmocka_unit_test(test_worker_nice),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
