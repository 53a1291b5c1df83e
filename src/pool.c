/* pool.c -- worker threads, a FIFO job queue and a completion queue.  See
 * pool.h for the contract and the lock order.
 *
 * Both queues are intrusive singly linked FIFOs (head/tail), each behind its
 * own mutex, so a worker finishing a job never contends with the loop
 * submitting one.  Workers sleep on a condition variable; nobody spins.
 * notify() is called after the completion mutex is released, and only when
 * the completion queue went from empty to non-empty: the loop drains the
 * whole queue per wake, so one wake per batch is enough. */
#include "engram/pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

typedef struct jobq {
    pool_job *head, *tail;
} jobq;

struct pool {
    pthread_mutex_t qlock;          /* guards queue and stopping */
    pthread_cond_t qcond;
    jobq queue;
    int stopping;

    pthread_mutex_t dlock;          /* guards done */
    jobq done;

    void (*notify)(void *ud);
    void *ud;
    _Atomic size_t inflight;
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

static void *pool_worker(void *arg)
{
    worker_arg wa = *(worker_arg *)arg;
    pool *p = wa.p;
    free(arg);

    for (;;) {
        pthread_mutex_lock(&p->qlock);
        while (!p->queue.head && !p->stopping) pthread_cond_wait(&p->qcond, &p->qlock);
        pool_job *j = jobq_pop(&p->queue);
        pthread_mutex_unlock(&p->qlock);
        if (!j) return NULL;          /* stopping and nothing left */

        j->work(j, wa.id);

        pthread_mutex_lock(&p->dlock);
        int was_empty = p->done.head == NULL;
        jobq_push(&p->done, j);
        pthread_mutex_unlock(&p->dlock);
        if (was_empty && p->notify) p->notify(p->ud);
    }
}

pool *pool_new(int nthreads, void (*notify)(void *ud), void *ud, int *err)
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
