/* deferred.c -- replies computed off the loop, answered in request order
 * and in batches (the contract and the reasons are in deferred.h).
 *
 * A client's queue is a singly linked list head..tail in request order,
 * with `front` the first reply still running: everything before front is
 * finished and may be released.  Whether it is released now or held for
 * its batch is `go`: set once the finished run at the head has reached a
 * job marked `last` (the end of what the client sent in one go), or when
 * nothing is running any more.  Held clients sit on the server's held list
 * (oldest first) until their batch completes or DEFERRED_HOLD_MS pass.
 *
 * Wake-ups (pool.h): the job marked last asks the pool to wake the loop
 * when it finishes.  If it finishes while an earlier job of the same
 * client still runs, the wake is passed on to that earlier job -- it is
 * now all the batch waits for.
 *
 * Loop thread only. */
#include "deferred.h"

#include <stdatomic.h>

#include "engram/util.h"
#include "server.h"

void deferred_server_init(deferred_server *ds)
{
    dlist_init(&ds->held);
    ds->timer = 0;
}

int deferred_busy(const client *c) { return c->dq.n > 0; }
int deferred_room(const client *c)
{
    return c->dq.n < DEFERRED_MAX_INFLIGHT && c->dq.nbarrier == 0;
}

static void deferred_enqueue(client *c, deferred *d)
{
    deferred_queue *q = &c->dq;
    d->c = c;
    d->next = NULL;
    if (q->tail) q->tail->next = d;
    else q->head = d;
    q->tail = d;
    if (!d->finished && !q->front) q->front = d;
    q->n++;
}

void deferred_start(client *c, deferred *d)
{
    d->finished = 0;
    d->last = 0;
    if (d->barrier) c->dq.nbarrier++;
    deferred_enqueue(c, d);
}

void deferred_answer(client *c, deferred *d)
{
    deferred_batch_end(c);       /* the replies before it are a batch */
    d->finished = 1;
    d->last = 0;
    deferred_enqueue(c, d);
}

static int deferred_hold_timer(ev_loop *l, long long id, void *ud);

static void deferred_unhold(client *c)
{
    deferred_server *ds = &c->srv->dsrv;
    if (!dlist_linked(&c->dq.held)) return;
    dlist_remove(&c->dq.held);
    if (dlist_empty(&ds->held) && ds->timer) {
        ev_timer_del(c->srv->loop, ds->timer);
        ds->timer = 0;
    }
}

static void deferred_hold(client *c)
{
    server *s = c->srv;
    if (dlist_linked(&c->dq.held)) return;
    c->dq.held_ms = util_mono_ms();
    dlist_push(&s->dsrv.held, &c->dq.held);   /* appended: oldest first */
    if (!s->dsrv.timer)
        s->dsrv.timer = ev_timer_add(s->loop, DEFERRED_HOLD_MS, deferred_hold_timer, s);
}

/* The replies before front have finished: release them in request order
 * if `go`, else hold them; then let a paused client go on. */
static void deferred_flush(client *c, int go)
{
    deferred_queue *q = &c->dq;
    if (q->head == q->front) return;            /* the head is still running */
    if (!go) {
        deferred_hold(c);
        return;
    }
    deferred_unhold(c);
    q->go = 0;
    while (q->head != q->front) {
        deferred *d = q->head;
        q->head = d->next;
        if (!q->head) q->tail = NULL;
        q->n--;
        reply_raw(&c->out, d->out.data, d->out.len);
        d->release(d);
    }
    if (c->flags & CLIENT_BLOCKED) client_unblock(c);   /* may free c */
    else {
        client_mark_pending(c);
        client_check_obuf(c);
    }
}

void deferred_done(deferred *d)
{
    client *c = d->c;
    d->finished = 1;
    if (!c) {                   /* its client is gone */
        d->release(d);
        return;
    }
    deferred_queue *q = &c->dq;
    if (d->barrier) q->nbarrier--;
    if (d != q->front) {
        /* An earlier job still runs.  If this one ends a batch, that one is
         * now all the batch waits for: it should wake the loop too.  (If it
         * finished meanwhile, it is already on the pool's done queue, which
         * before-sleep drains until empty.) */
        if (d->last) atomic_store_explicit(&q->front->job.wake, 1, memory_order_relaxed);
        return;
    }
    for (; q->front && q->front->finished; q->front = q->front->next) q->go |= q->front->last;
    /* Still waiting for an earlier job of a finished batch: pass the wake
     * on to it. */
    if (q->front && !q->go && atomic_load_explicit(&d->job.wake, memory_order_relaxed))
        atomic_store_explicit(&q->front->job.wake, 1, memory_order_relaxed);
    deferred_flush(c, q->go || !q->front);
}

/* Release what was held DEFERRED_HOLD_MS or more; come back for the rest
 * when the first of them is due. */
static int deferred_hold_timer(ev_loop *l, long long id, void *ud)
{
    server *s = ud;
    (void)l;
    (void)id;
    /* The rest of a batch may have finished unannounced (pool.h): collect
     * it first, so the batch still goes out whole. */
    srv_pool_drain(s);
    deferred_release_held(s, 0);
    dlist_node *first = dlist_first(&s->dsrv.held);
    if (!first) {
        s->dsrv.timer = 0;
        return EV_TIMER_STOP;
    }
    int64_t due = DLIST_ENTRY(first, client, dq.held)->dq.held_ms + DEFERRED_HOLD_MS;
    int64_t wait = due - util_mono_ms();
    return wait > 0 ? (int)wait : 0;
}

void deferred_release_held(server *s, int all)
{
    /* Oldest first, so stop at the first not due.  Each flush may run the
     * client's pipelined commands, which may free other held clients
     * (CLIENT KILL) or hold new ones (at the tail, not due): so take the
     * head afresh each time. */
    int64_t now = util_mono_ms();
    dlist_node *n;
    while ((n = dlist_first(&s->dsrv.held)) != NULL) {
        client *c = DLIST_ENTRY(n, client, dq.held);
        if (!all && now - c->dq.held_ms < DEFERRED_HOLD_MS) break;
        deferred_unhold(c);
        deferred_flush(c, 1);               /* may free c */
    }
}

/* Mark the client's last reply in flight (the tail, unless the tail is an
 * immediate reply queued behind others: then the job before it, marked by
 * deferred_answer).  A mark set after the job finished is harmless: the
 * loop drains the pool until it is empty before it sleeps, so the job is
 * collected anyway. */
void deferred_batch_end(client *c)
{
    deferred *t = c->dq.tail;
    if (t && !t->finished && !t->last) {
        t->last = 1;
        atomic_store_explicit(&t->job.wake, 1, memory_order_relaxed);
    }
}

void deferred_detach(client *c)
{
    deferred_queue *q = &c->dq;
    for (deferred *d = q->head, *next; d; d = next) {
        next = d->next;
        if (d->finished) d->release(d);   /* never submitted, or done */
        else d->c = NULL;                 /* deferred_done releases it */
    }
    q->head = q->tail = q->front = NULL;
    q->n = 0;
    q->go = 0;
    deferred_unhold(c);
}
