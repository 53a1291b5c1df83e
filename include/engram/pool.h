/* pool.h -- a fixed pool of worker threads with a completion queue.
 *
 * Shape (libuv's threadpool): the loop thread submits typed jobs; a worker
 * runs job->work(job, worker_id); the finished job goes onto a completion
 * queue, and pool_complete(), on the loop thread, runs job->done(job) for
 * every finished job in the order they finished.
 *
 * Wake-ups are coalesced: the pool calls notify(ud) (the server passes
 * ev_wake) when a worker finishing a job finds nothing else queued, when a
 * job with its `wake` flag set has finished and what is still queued is
 * short work (under POOL_REFILL_NS, 250 us, per worker by the running
 * average of a job's time), or when a job finishing finds an earlier one
 * waiting unannounced for two milliseconds; and at most once between two
 * pool_complete() calls.  So a finished job waits unannounced only while
 * workers stay busy, and longer than two milliseconds only if every worker
 * is inside a long job: the caller must also call pool_complete() on its
 * own while pool_inflight() > 0 (the server does on every loop iteration,
 * and on a timer 10 ms after it last found something).  The server sets
 * `wake` on the last search of each pipelined batch a client sent, so the
 * batch is answered in one write once it is complete and the workers are
 * about to need new input.
 *
 * Ownership: the pool never allocates or frees jobs.  A job belongs to the
 * submitter until work() starts, to the worker while it runs, and to the
 * loop thread again from done() on; done() usually frees it.
 *
 * Lock order: the pool's two mutexes (queue, completions) are leaves: no
 * callback runs while the pool holds either, so work() and done() may take
 * any lock they like.
 *
 * Errors: 0 or -errno. */
#ifndef ENGRAM_POOL_H
#define ENGRAM_POOL_H

#include <stdatomic.h>
#include <stddef.h>

typedef struct pool pool;
typedef struct pool_job pool_job;

struct pool_job {
    void (*work)(pool_job *job, int worker_id);  /* on a worker thread */
    void (*done)(pool_job *job);                 /* on the loop thread */
    pool_job *next;                              /* the pool's link */
    /* Nonzero: notify once this job has finished and the queue is short
     * (above).  The submitter may set it at any time until done(); one set
     * after the job finished has no effect, so set it only while the
     * submitter will call pool_complete() anyway before it sleeps. */
    _Atomic int wake;
};

/* Start nthreads workers (1..256).  notify(ud) is called from a worker as
 * described above (it must be thread-safe and cheap: ev_wake).  nice > 0
 * lowers the workers' priority by that many steps (Linux, which keeps a
 * nice value per thread; ignored elsewhere), so the submitting thread wins
 * the CPU when both are runnable.  Returns NULL and sets *err to -errno on
 * failure. */
pool *pool_new(int nthreads, int nice, void (*notify)(void *ud), void *ud, int *err);
/* Drain and stop: waits until every submitted job has run work(), runs
 * done() for all of them on the calling (loop) thread, then joins the
 * workers and frees the pool.  NULL ok. */
void pool_free(pool *p);

int pool_threads(const pool *p);
/* Queue a job.  Loop thread (or any thread). */
void pool_submit(pool *p, pool_job *job);
/* Run done() for every finished job; returns how many.  Loop thread. */
int pool_complete(pool *p);
/* Jobs submitted and not yet completed (queued + running + finished). */
size_t pool_inflight(const pool *p);

#endif
