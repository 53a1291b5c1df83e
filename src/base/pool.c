/* pool.c -- worker threads, a FIFO job queue and a completion queue.  See
 * pool.h for the contract and the lock order.
 *
 * Both queues are intrusive singly linked FIFOs (head/tail), each behind its
 * own mutex, so a worker finishing a job never contends with the loop
 * submitting one.  Workers sleep on a condition variable; nobody spins.
 *
 * Completion coalescing (interrupt moderation, as a NIC does it): waking
 * the loop costs a pipe write, a context switch and an epoll round trip,
 * and every wake makes the loop write replies, each write waking a client:
 * together more than a small search.  So a worker wakes the loop only when
 * it is about to go idle (nothing queued: whatever finished should go out
 * now), when a job that asks for it (job->wake: the end of a client's
 * pipelined batch) has finished and the queue is short, or when a finished
 * job has waited POOL_QUIET_NS unannounced, and never twice before the
 * loop drains the queue.
 *
 * "Short" is time, not a count: the workers keep a running average of how
 * long a job takes, and the queue is short once what is left would keep
 * them busy for less than POOL_REFILL_NS -- about the time the loop needs
 * to answer a client and read its next batch.  Until then an answer can
 * wait without starving anyone: the loop is awake for other reasons (new
 * input, a PING) often enough, and drains whatever finished every time, so
 * under a deep queue most batches go out with no wake-up of their own.
 * The caller covers the one case left -- every worker inside a long job --
 * by draining on a timer while jobs are in flight (pool.h).  The average
 * is one for all jobs: a few long ones (a split FLAT scan's parts) make
 * the queue look longer for a while, which delays a wake-up by at most
 * POOL_QUIET_NS.
 *
 * Priority: workers may run at a lower priority (a nice value, Linux) than
 * the loop thread, so that on a machine with no core to spare a PING or a
 * GET does not wait behind a search for the scheduler's time slice. */
#include "engram/pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#if defined(__linux__)
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

typedef struct jobq {
    pool_job *head, *tail;
} jobq;

struct pool {
    pthread_mutex_t qlock;          /* guards queue, queued and stopping */
    pthread_cond_t qcond;
    jobq queue;
    size_t queued;                  /* jobs in queue */
    int stopping;

    pthread_mutex_t dlock;          /* guards done, signalled, deferred, quiet_since */
    jobq done;
    int signalled;                  /* notify() called since the last drain */
    int deferred;                   /* a `wake` job finished unannounced (queue long) */
    int64_t quiet_since;            /* ns: first finished job not announced (0: none) */
    _Atomic int64_t job_ns;         /* running average of work() time (workers) */

    void (*notify)(void *ud);
    void *ud;
    _Atomic size_t inflight;
    int nice;                       /* workers' nice value (0: the caller's) */
    int nthreads;
    pthread_t *threads;
};

static void jobq_push(jobq *q, pool_job *j)
{
    j->next = NULL;
    if (q->tail) q->tail->next = j;
    else q->head = j;
    q->tail = j;
}

static pool_job *jobq_pop(jobq *q)
{
    pool_job *j = q->head;
    if (j) {
        q->head = j->next;
        if (!q->head) q->tail = NULL;
        j->next = NULL;
    }
    return j;
}

typedef struct worker_arg {
    pool *p;
    int id;
} worker_arg;

/* Lower the calling thread's priority by `nice` steps.  Linux keeps a nice
 * value per thread; elsewhere setpriority() would renice the whole process,
 * loop thread included, so there this does nothing. */
static void pool_lower_priority(int nice)
{
    if (nice <= 0) return;
#if defined(__linux__)
    errno = 0;
    int cur = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
    if (cur == -1 && errno) return;
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), cur + nice > 19 ? 19 : cur + nice);
#endif
}

/* A finished job waits at most this long unannounced while others finish.
 * (Both times may be set at build time: the unit test stretches them, so
 * its assertions about when a wake-up happens do not depend on how
 * promptly a loaded machine schedules threads.) */
#ifndef POOL_QUIET_NS
#define POOL_QUIET_NS 2000000
#endif
/* The queue is short once it holds less than this much work per worker. */
#ifndef POOL_REFILL_NS
#define POOL_REFILL_NS 250000
#endif

static int64_t pool_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Would `queued` jobs keep the workers busy for less than POOL_REFILL_NS? */
static int pool_queue_short(pool *p, size_t queued)
{
    int64_t avg = atomic_load_explicit(&p->job_ns, memory_order_relaxed);
    return (double)queued * (double)avg < (double)POOL_REFILL_NS * p->nthreads;
}

/* A job finished at `now`; `queued`: jobs still to run, counting the one
 * this worker takes next (0: this worker is about to sleep). */
static void pool_finished(pool *p, pool_job *j, size_t queued, int64_t now)
{
    int wake = 0;
    pthread_mutex_lock(&p->dlock);
    jobq_push(&p->done, j);
    /* A `wake` set after this read is seen by the submitter's next
     * pool_complete(), which takes dlock after setting it (pool.h). */
    if (!p->signalled) {
        if (atomic_load_explicit(&j->wake, memory_order_relaxed)) p->deferred = 1;
        if (!queued || (p->deferred && pool_queue_short(p, queued))) {
            wake = 1;
        } else if (!p->quiet_since) {
            p->quiet_since = now;
        } else if (now - p->quiet_since >= POOL_QUIET_NS) {
            wake = 1;
        }
        p->signalled = wake;
    }
    pthread_mutex_unlock(&p->dlock);
    /* Outside the lock: the woken loop goes straight to draining. */
    if (wake && p->notify) p->notify(p->ud);
}

static void *pool_worker(void *arg)
{
    worker_arg wa = *(worker_arg *)arg;
    pool *p = wa.p;
    pool_job *j = NULL;
    free(arg);
    pool_lower_priority(p->nice);

    for (;;) {
        if (!j) {
            pthread_mutex_lock(&p->qlock);
            while (!p->queue.head && !p->stopping) pthread_cond_wait(&p->qcond, &p->qlock);
            j = jobq_pop(&p->queue);
            if (j) p->queued--;
            pthread_mutex_unlock(&p->qlock);
            if (!j) return NULL;      /* stopping and nothing left */
        }
        int64_t t0 = pool_now_ns();
        j->work(j, wa.id);
        int64_t t1 = pool_now_ns();
        /* Average over the last ~8 jobs; a lost update between workers
         * only makes it a little staler. */
        int64_t avg = atomic_load_explicit(&p->job_ns, memory_order_relaxed);
        atomic_store_explicit(&p->job_ns, avg + (t1 - t0 - avg) / 8, memory_order_relaxed);
        /* Take the next job before reporting this one, so the report knows
         * how much is left, and whether this worker is about to sleep. */
        pthread_mutex_lock(&p->qlock);
        pool_job *next = jobq_pop(&p->queue);
        size_t queued = next ? p->queued-- : 0;
        pthread_mutex_unlock(&p->qlock);
        pool_finished(p, j, queued, t1);
        j = next;
    }
}

pool *pool_new(int nthreads, int nice, void (*notify)(void *ud), void *ud, int *err)
{
    pool *p;
    int e = 0;

    if (nthreads < 1 || nthreads > 256) {
        if (err) *err = -EINVAL;
        return NULL;
    }
    p = calloc(1, sizeof *p);
    if (!p || !(p->threads = calloc((size_t)nthreads, sizeof *p->threads))) {
        free(p);
        if (err) *err = -ENOMEM;
        return NULL;
    }
    pthread_mutex_init(&p->qlock, NULL);
    pthread_cond_init(&p->qcond, NULL);
    pthread_mutex_init(&p->dlock, NULL);
    p->notify = notify;
    p->ud = ud;
    p->nice = nice;
    for (int i = 0; i < nthreads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa) {
            e = -ENOMEM;
            break;
        }
        wa->p = p;
        wa->id = i;
        if ((e = -pthread_create(&p->threads[i], NULL, pool_worker, wa)) != 0) {
            free(wa);
            break;
        }
        p->nthreads++;
    }
    if (e) {
        pool_free(p);
        if (err) *err = e;
        return NULL;
    }
    return p;
}

int pool_threads(const pool *p) { return p->nthreads; }

size_t pool_inflight(const pool *p) { return atomic_load(&((pool *)p)->inflight); }

void pool_submit(pool *p, pool_job *job)
{
    atomic_fetch_add(&p->inflight, 1);
    pthread_mutex_lock(&p->qlock);
    jobq_push(&p->queue, job);
    p->queued++;
    pthread_mutex_unlock(&p->qlock);
    /* Signalled after unlocking, so the woken worker does not wake only to
     * block on the mutex the submitter still holds. */
    pthread_cond_signal(&p->qcond);
}

int pool_complete(pool *p)
{
    int n = 0;
    pthread_mutex_lock(&p->dlock);
    jobq batch = p->done;
    p->done.head = p->done.tail = NULL;
    p->signalled = 0;
    p->deferred = 0;
    p->quiet_since = 0;
    pthread_mutex_unlock(&p->dlock);
    /* done() runs with no pool lock held: it may submit new jobs. */
    for (pool_job *j; (j = jobq_pop(&batch)) != NULL; n++) {
        atomic_fetch_sub(&p->inflight, 1);
        j->done(j);
    }
    return n;
}

void pool_free(pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->qlock);
    p->stopping = 1;
    pthread_cond_broadcast(&p->qcond);
    pthread_mutex_unlock(&p->qlock);
    /* Workers leave only once the queue is empty, so every job ran. */
    for (int i = 0; i < p->nthreads; i++) pthread_join(p->threads[i], NULL);
    while (pool_complete(p) > 0) {
    }
    pthread_mutex_destroy(&p->qlock);
    pthread_cond_destroy(&p->qcond);
    pthread_mutex_destroy(&p->dlock);
    free(p->threads);
    free(p);
}
