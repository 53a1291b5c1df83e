/* deferred.h -- replies computed off the loop thread and answered in
 * request order: a mechanism of the connection layer (Redis's blocked.c is
 * the model), used by commands flagged CMD_DEFERRED (VSEARCH today; a
 * blocking search, WAIT and replication waits tomorrow).
 *
 * A `deferred` is one reply in the making.  Its owner (a job type such as
 * VSEARCH's) embeds it first in its own struct, sets job.work / job.done,
 * and either
 *   - deferred_start(c, d), then submits d->job to the pool: the worker
 *     builds the reply in d->out, and the job's done() (loop thread) calls
 *     deferred_done(d); or
 *   - when other replies of c are still in flight, builds an immediate
 *     reply (an error) in d->out and calls deferred_answer(c, d): it goes
 *     out behind them.
 * Ownership: from deferred_start/deferred_answer on, the module owns d and
 * gives it back through d->release(d) (loop thread) once its reply has
 * been copied to the client, or once the client has left and the job is
 * done.  The owner never frees d itself.
 *
 * Ordering and batching.  Each client keeps its deferred replies in request
 * order; finished ones are released from the head only, so replies keep
 * the order of the requests even though jobs finish in any order.  While a
 * client has replies in flight, dispatch lets only CMD_DEFERRED commands
 * through (dispatch.c); anything else waits in the query buffer.  When the
 * loop has read all a client sent (deferred_batch_end), the client's last
 * reply in flight is marked as the end of a batch: finished replies are
 * held until the run of finished ones at the head reaches a marked one or
 * the end of the queue, so a pipelined batch leaves in one write, and the
 * marked job asks the pool to wake the loop when it finishes (pool.h).  A
 * finished reply is held at most DEFERRED_HOLD_MS, by a timer armed only
 * while something is held.  Why: each write wakes the client, which on
 * loopback and in VMs costs the loop more than a small search
 * (docs/benchmarks.md, issue 4).
 *
 * A client that leaves while jobs run only detaches from them (d->c =
 * NULL); they finish and are released on the loop thread.
 *
 * Loop thread only, except d->out while a worker runs the job. */
#ifndef ENGRAM_DEFERRED_H
#define ENGRAM_DEFERRED_H

#include <stdint.h>

#include "engram/dlist.h"
#include "engram/pool.h"
#include "engram/reply.h"

typedef struct client client;
typedef struct server server;
typedef struct deferred deferred;

/* A client may have this many replies in flight; past it, its input waits
 * until they drain (it bounds the memory one pipelining client ties up). */
#define DEFERRED_MAX_INFLIGHT 256

/* A finished reply waits at most this long for the rest of its batch: at
 * ef 80 a batch of 64 searches takes about 2 ms, and a shorter limit split
 * one batch in two writes about every other time. */
#define DEFERRED_HOLD_MS 5

struct deferred {
    pool_job job;            /* first: the pool sees a pool_job */
    reply out;               /* the reply, built by the worker (or at once) */
    void (*release)(deferred *d);   /* gives d back to its owner (loop thread) */
    /* the module's */
    client *c;               /* NULL once the client left */
    deferred *next;          /* the client's queue, in request order */
    int finished;            /* out is complete */
    int last;                /* ends a batch */
    int barrier;             /* set before deferred_start: nothing the client
                              * sends after it runs until it is done (a write
                              * finished on the loop: VADD ... CAS) */
};

/* A client's replies in flight. */
typedef struct deferred_queue {
    deferred *head, *tail;
    deferred *front;         /* the first still running (NULL: none) */
    int n;
    int nbarrier;            /* barriers not yet done */
    int go;                  /* the finished run at the head reached a batch end */
    dlist_node held;         /* on the server's held list (deferred_server) */
    int64_t held_ms;         /* since when */
} deferred_queue;

/* The server's clients holding finished replies, oldest first. */
typedef struct deferred_server {
    dlist held;
    long long timer;         /* releases them when due (0: none armed) */
} deferred_server;

void deferred_server_init(deferred_server *ds);

/* 1 while c has replies in flight; 1 while it may start another (not
 * while a barrier is in flight). */
int deferred_busy(const client *c);
int deferred_room(const client *c);

/* Queue d (not finished) on c; the caller then submits d->job. */
void deferred_start(client *c, deferred *d);
/* Queue d, whose reply is already complete, behind c's replies in flight
 * (only while deferred_busy(c)). */
void deferred_answer(client *c, deferred *d);
/* d's reply is complete: called by the job's done() on the loop thread.
 * Releases what is due; may resume the client, which may free it. */
void deferred_done(deferred *d);

/* The input of c is used up for now: its last reply in flight ends a batch. */
void deferred_batch_end(client *c);
/* c is being freed: its jobs finish without it. */
void deferred_detach(client *c);
/* Release the replies held DEFERRED_HOLD_MS or longer (all: every held
 * reply, as at shutdown). */
void deferred_release_held(server *s, int all);

#endif
