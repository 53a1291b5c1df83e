/* ev.c -- the event loop: an fd table, a timer heap, hooks and a self-pipe,
 * on top of one readiness backend (ev_backend.h).  Contract in ev.h.
 *
 * What it owns
 *   files[setsize]  per-fd masks and handlers, indexed by fd.  maxfd is the
 *                   highest fd with a nonzero mask (-1 if none); ev_resize
 *                   refuses to cut the table below it.
 *   fired[]         what the last poll reported, merged to one record per fd.
 *                   Its capacity only grows, so a handler that shrinks the
 *                   loop never leaves the dispatch loop reading past the end.
 *   timers[]        a binary min-heap ordered by (deadline, seq).  Deadlines
 *                   are CLOCK_MONOTONIC microseconds; seq is a counter bumped
 *                   on every insertion, so equal deadlines fire in the order
 *                   they were scheduled and a pass can tell "was already
 *                   queued when the pass began" from "queued during it".
 *                   Timers are few (server cron, a handful of timeouts), so
 *                   ev_timer_del finds an id by a linear scan.
 *   wake pipe       non-blocking, close-on-exec.  Its read end is watched by
 *                   the backend directly and never appears in files[], so it
 *                   neither uses a slot of setsize nor blocks a shrink.
 *
 * Invariants
 *   files[fd].mask != 0  <=>  fd is in the backend's kernel set, with exactly
 *   the EV_READ/EV_WRITE bits of that mask.  EV_BARRIER never reaches the
 *   backend and never outlives the fd's last direction.
 *   Every handler may add or delete fds and timers, resize the loop or stop
 *   it: after each callback the code below re-reads the table through l
 *   (never a saved pointer) and re-checks the mask before the next call.
 *
 * Threads: the loop thread does everything, except that ev_wake() may run on
 * any thread or in a signal handler; it touches only wake_wr (immutable
 * after ev_new) and the atomic wake_pending. */
#include "engram/ev.h"

#include "ev_backend.h"
#include "engram/mem.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ev_wake must be async-signal-safe, so its flag may not hide a lock. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "ev_wake needs a lock-free atomic int");

#define EV_RW (EV_READ | EV_WRITE)

typedef struct ev_file {
    int mask;              /* EV_READ|EV_WRITE|EV_BARRIER being watched */
    int fired;             /* scratch for ev_fired_merge, 0 outside it */
    ev_file_fn *rfn, *wfn;
    void *rud, *wud;
} ev_file;

typedef struct ev_timer {
    int64_t when;          /* monotonic µs */
    uint64_t seq;
    long long id;
    ev_timer_fn *fn;
    void *ud;
} ev_timer;

struct ev_loop {
    int setsize;
    int maxfd;
    ev_file *files;
    ev_fired *fired;
    int fired_cap;
    ev_be *be;

    ev_timer *timers;
    size_t ntimers, timers_cap;
    long long timer_next_id;
    uint64_t timer_seq;
    long long timer_running;   /* id of the callback on the stack, or 0 */
    int timer_running_deleted; /* it called ev_timer_del on itself */

    int stop;
    ev_hook_fn *before_fn, *after_fn, *wake_fn;
    void *before_ud, *after_ud, *wake_ud;

    int wake_rd, wake_wr;
    atomic_int wake_pending;
};

static int64_t ev_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- wake pipe ------------------------------------------------------------ */

static int ev_fd_nonblock_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -errno;
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) return -errno;
    return 0;
}

static int ev_wake_open(ev_loop *l)
{
    int p[2];
    if (pipe(p) < 0) return -errno;
    l->wake_rd = p[0];
    l->wake_wr = p[1];
    int rc = ev_fd_nonblock_cloexec(p[0]);
    if (!rc) rc = ev_fd_nonblock_cloexec(p[1]);
    if (!rc) rc = ev_be_add(l->be, p[0], 0, EV_READ);
    return rc;
}

void ev_wake(ev_loop *l)
{
    /* Only the wake that flips wake_pending 0 -> 1 writes: while it is set a
     * byte is in the pipe (or about to be), and the loop clears the flag
     * only after draining, so no wake is lost and the pipe never fills.  The
     * acq_rel exchange publishes whatever the caller queued before waking. */
    if (atomic_exchange_explicit(&l->wake_pending, 1, memory_order_acq_rel))
        return;
    int saved = errno;          /* we may be inside a signal handler */
    ssize_t w;
    do {
        w = write(l->wake_wr, "", 1);
    } while (w < 0 && errno == EINTR);
    /* EAGAIN means the pipe is full, so the loop will wake anyway. */
    errno = saved;
}

static int ev_wake_process(ev_loop *l)
{
    char buf[64];
    ssize_t r;
    /* A short read emptied the pipe (it holds a byte or so: see ev_wake),
     * so no second read just to be told EAGAIN. */
    do {
        r = read(l->wake_rd, buf, sizeof buf);
    } while (r == (ssize_t)sizeof buf || (r < 0 && errno == EINTR));
    /* Drain first, then clear the flag, then run the handler: a wake that
     * lands after the clear writes a fresh byte (next iteration sees it); one
     * that lands before it is published to us by this exchange and its work
     * is seen by the handler below.  Clearing before draining could swallow
     * that fresh byte while leaving the flag set, and the loop would sleep
     * through every later wake. */
    atomic_exchange_explicit(&l->wake_pending, 0, memory_order_acq_rel);
    if (l->wake_fn) l->wake_fn(l, l->wake_ud);
    return 1;
}

void ev_set_wake_handler(ev_loop *l, ev_hook_fn *fn, void *ud)
{
    l->wake_fn = fn;
    l->wake_ud = ud;
}

/* ---- create, free, resize -------------------------------------------------- */

ev_loop *ev_new(int setsize)
{
    if (setsize <= 0 || setsize == INT_MAX) return NULL;
    ev_loop *l = mem_calloc(1, sizeof *l);
    l->setsize = setsize;
    l->maxfd = -1;
    l->wake_rd = l->wake_wr = -1;
    l->timer_next_id = 1;
    atomic_init(&l->wake_pending, 0);
    l->files = mem_calloc((size_t)setsize, sizeof *l->files);
    /* +1: the wake pipe is reported alongside up to setsize table fds. */
    l->fired_cap = setsize + 1;
    l->fired = mem_alloc((size_t)l->fired_cap * sizeof *l->fired);
    l->be = ev_be_new(setsize + 1);
    if (!l->be || ev_wake_open(l) < 0) {
        ev_free(l);
        return NULL;
    }
    return l;
}

void ev_free(ev_loop *l)
{
    if (!l) return;
    if (l->wake_rd >= 0) close(l->wake_rd);
    if (l->wake_wr >= 0) close(l->wake_wr);
    ev_be_free(l->be);
    mem_free(l->timers);
    mem_free(l->fired);
    mem_free(l->files);
    mem_free(l);
}

int ev_get_setsize(const ev_loop *l)
{
    return l->setsize;
}

int ev_resize(ev_loop *l, int setsize)
{
    if (setsize <= 0 || setsize == INT_MAX) return -EINVAL;
    if (setsize == l->setsize) return 0;
    if (l->maxfd >= setsize) return -ERANGE;
    int rc = ev_be_resize(l->be, setsize + 1);
    if (rc) return rc;
    l->files = mem_realloc(l->files, (size_t)setsize * sizeof *l->files);
    if (setsize > l->setsize)
        memset(l->files + l->setsize, 0, (size_t)(setsize - l->setsize) * sizeof *l->files);
    if (setsize + 1 > l->fired_cap) {
        l->fired_cap = setsize + 1;
        l->fired = mem_realloc(l->fired, (size_t)l->fired_cap * sizeof *l->fired);
    }
    l->setsize = setsize;
    return 0;
}

/* ---- file events ------------------------------------------------------------ */

int ev_add(ev_loop *l, int fd, int mask, ev_file_fn *fn, void *ud)
{
    if (fd < 0) return -EBADF;
    if (fd >= l->setsize) return -ERANGE;
    if (!fn || !(mask & EV_RW) || (mask & ~(EV_RW | EV_BARRIER))) return -EINVAL;
    ev_file *f = &l->files[fd];
    int add = mask & EV_RW & ~f->mask;
    if (add) {
        int rc = ev_be_add(l->be, fd, f->mask & EV_RW, add);
        if (rc) return rc;          /* table untouched: still matches kernel */
    }
    f->mask |= mask;
    if (mask & EV_READ) {
        f->rfn = fn;
        f->rud = ud;
    }
    if (mask & EV_WRITE) {
        f->wfn = fn;
        f->wud = ud;
    }
    if (fd > l->maxfd) l->maxfd = fd;
    return 0;
}

void ev_del(ev_loop *l, int fd, int mask)
{
    if (fd < 0 || fd >= l->setsize) return;
    ev_file *f = &l->files[fd];
    if (!f->mask) return;
    /* The barrier only orders writes after reads; it goes with the write
     * direction, so a later plain ev_add(EV_WRITE) does not inherit it. */
    if (mask & EV_WRITE) mask |= EV_BARRIER;
    int del = mask & f->mask & EV_RW;
    if (del) ev_be_del(l->be, fd, f->mask & EV_RW, del);
    f->mask &= ~mask;
    if (!(f->mask & EV_RW)) f->mask = 0;
    if (fd == l->maxfd && !f->mask) {
        while (l->maxfd >= 0 && !l->files[l->maxfd].mask) l->maxfd--;
    }
}

int ev_get_mask(const ev_loop *l, int fd)
{
    if (fd < 0 || fd >= l->setsize) return 0;
    return l->files[fd].mask;
}

/* Fold the backend's records into one per table fd, in first-seen order,
 * keeping only the bits that were registered when the poll returned.
 * Returns the record count; *wake is set if the wake pipe was readable.  No
 * callback runs in here, so the scratch field is clean again on return. */
static int ev_fired_merge(ev_loop *l, int n, int *wake)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        int fd = l->fired[i].fd;
        if (fd == l->wake_rd) {
            *wake = 1;
            continue;
        }
        if (fd < 0 || fd >= l->setsize) continue;
        ev_file *f = &l->files[fd];
        int bits = l->fired[i].mask & f->mask & EV_RW;
        if (!bits) continue;
        if (!f->fired) l->fired[k++].fd = fd;   /* k <= i: in place is safe */
        f->fired |= bits;
    }
    for (int j = 0; j < k; j++) {
        ev_file *f = &l->files[l->fired[j].fd];
        l->fired[j].mask = f->fired;
        f->fired = 0;
    }
    return k;
}

/* Call fd's handler for one direction if it is still wanted: an earlier
 * handler this iteration may have deleted it, or even shrunk the table. */
static int ev_file_call(ev_loop *l, int fd, int dir, int fired)
{
    if (fd >= l->setsize) return 0;
    ev_file *f = &l->files[fd];
    if (!(f->mask & fired & dir)) return 0;
    if (dir == EV_READ)
        f->rfn(l, fd, f->rud, EV_READ);
    else
        f->wfn(l, fd, f->wud, EV_WRITE);
    return 1;
}

static int ev_files_process(ev_loop *l, int n)
{
    int handled = 0;
    for (int i = 0; i < n; i++) {
        /* Copy out: a handler may resize the loop and move l->fired. */
        int fd = l->fired[i].fd, fired = l->fired[i].mask;
        /* Read first, then write: a reply to the request just read can then
         * go out in the same iteration.  EV_BARRIER inverts that, and this is
         * where the guarantee is kept: a reply produced by the read handler
         * is never written by the write handler of the same iteration, but
         * waits for before-sleep to run first (the server's log flush), so
         * no client sees a reply to a write that is not yet durable. */
        int barrier = fd < l->setsize ? l->files[fd].mask & EV_BARRIER : 0;
        if (!barrier) handled += ev_file_call(l, fd, EV_READ, fired);
        handled += ev_file_call(l, fd, EV_WRITE, fired);
        if (barrier) handled += ev_file_call(l, fd, EV_READ, fired);
    }
    return handled;
}

/* ---- timers ----------------------------------------------------------------- */

static int ev_timer_before(const ev_timer *a, const ev_timer *b)
{
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void ev_heap_up(ev_timer *h, size_t i)
{
    ev_timer t = h[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!ev_timer_before(&t, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = t;
}

static void ev_heap_down(ev_timer *h, size_t n, size_t i)
{
    ev_timer t = h[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && ev_timer_before(&h[c + 1], &h[c])) c++;
        if (!ev_timer_before(&h[c], &t)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = t;
}

static void ev_timer_push(ev_loop *l, ev_timer t)
{
    if (l->ntimers == l->timers_cap) {
        l->timers_cap = l->timers_cap ? 2 * l->timers_cap : 8;
        l->timers = mem_realloc(l->timers, l->timers_cap * sizeof *l->timers);
    }
    t.seq = l->timer_seq++;
    l->timers[l->ntimers++] = t;
    ev_heap_up(l->timers, l->ntimers - 1);
}

static ev_timer ev_timer_remove_at(ev_loop *l, size_t i)
{
    ev_timer t = l->timers[i];
    l->timers[i] = l->timers[--l->ntimers];
    if (i < l->ntimers) {
        /* The moved last entry may belong above or below slot i. */
        ev_heap_up(l->timers, i);
        ev_heap_down(l->timers, l->ntimers, i);
    }
    return t;
}

/* Deadline ms from now, clamped so that the addition cannot overflow. */
static int64_t ev_deadline(long long ms)
{
    const long long max_ms = 100LL * 365 * 24 * 3600 * 1000;   /* 100 years */
    if (ms < 0) ms = 0;
    if (ms > max_ms) ms = max_ms;
    return ev_now_us() + (int64_t)ms * 1000;
}

long long ev_timer_add(ev_loop *l, long long ms, ev_timer_fn *fn, void *ud)
{
    if (!fn) return -EINVAL;
    ev_timer t = { .when = ev_deadline(ms), .id = l->timer_next_id++, .fn = fn, .ud = ud };
    ev_timer_push(l, t);
    return t.id;
}

int ev_timer_del(ev_loop *l, long long id)
{
    if (id <= 0) return -ENOENT;
    /* The running timer is off the heap while its callback runs; mark it so
     * ev_timers_process does not put it back. */
    if (id == l->timer_running) {
        if (l->timer_running_deleted) return -ENOENT;
        l->timer_running_deleted = 1;
        return 0;
    }
    for (size_t i = 0; i < l->ntimers; i++) {
        if (l->timers[i].id == id) {
            ev_timer_remove_at(l, i);
            return 0;
        }
    }
    return -ENOENT;
}

/* Run every timer that was due when the pass began.  A timer queued during
 * the pass (new, or rescheduled with 0 ms) has seq >= seq_end and a deadline
 * >= now, so it sorts after every eligible one and waits for the next
 * iteration: a callback that keeps returning 0 cannot starve the fds. */
static int ev_timers_process(ev_loop *l)
{
    int handled = 0;
    int64_t now = ev_now_us();
    uint64_t seq_end = l->timer_seq;
    while (l->ntimers && l->timers[0].when <= now && l->timers[0].seq < seq_end) {
        ev_timer t = ev_timer_remove_at(l, 0);
        /* Saved and restored so a nested ev_run_once in a callback stays sane. */
        long long outer = l->timer_running;
        int outer_deleted = l->timer_running_deleted;
        l->timer_running = t.id;
        l->timer_running_deleted = 0;
        int ret = t.fn(l, t.id, t.ud);
        int deleted = l->timer_running_deleted;
        l->timer_running = outer;
        l->timer_running_deleted = outer_deleted;
        handled++;
        if (ret >= 0 && !deleted) {
            /* From the clock after the callback, so a slow callback does not
             * find itself due again at once. */
            t.when = ev_deadline(ret);
            ev_timer_push(l, t);
        }
    }
    return handled;
}

/* The poll timeout: the caller's bound, cut to the nearest timer (rounded up
 * so we do not wake a fraction of a ms early and spin an empty iteration). */
static int ev_wait_ms(ev_loop *l, int timeout_ms)
{
    if (l->stop) return 0;
    if (timeout_ms < 0) timeout_ms = -1;
    if (!l->ntimers) return timeout_ms;
    int64_t d = l->timers[0].when - ev_now_us();
    int t = d <= 0 ? 0 : d >= (int64_t)INT_MAX * 1000 ? INT_MAX : (int)((d + 999) / 1000);
    if (timeout_ms >= 0 && timeout_ms < t) t = timeout_ms;
    return t;
}

/* ---- hooks and running -------------------------------------------------------- */

void ev_set_before_sleep(ev_loop *l, ev_hook_fn *fn, void *ud)
{
    l->before_fn = fn;
    l->before_ud = ud;
}

void ev_set_after_sleep(ev_loop *l, ev_hook_fn *fn, void *ud)
{
    l->after_fn = fn;
    l->after_ud = ud;
}

int ev_run_once(ev_loop *l, int timeout_ms)
{
    /* Before-sleep runs after the previous iteration's handlers and before we
     * block, never after the poll: the server flushes its log there and only
     * then writes the replies queued this iteration, so nothing sits
     * unwritten while we sleep and no reply overtakes its log record.  The
     * wait is computed after the hook so a timer it adds (or an ev_stop it
     * calls) is honoured by this very poll. */
    if (l->before_fn) l->before_fn(l, l->before_ud);
    int n = ev_be_poll(l->be, ev_wait_ms(l, timeout_ms), l->fired);
    if (n < 0) return n;
    if (l->after_fn) l->after_fn(l, l->after_ud);

    int wake = 0;
    n = ev_fired_merge(l, n, &wake);
    int handled = 0;
    /* Wake-ups first: work that other threads finished before this poll is
     * older than the requests it is about to read. */
    if (wake) handled += ev_wake_process(l);
    handled += ev_files_process(l, n);
    handled += ev_timers_process(l);
    return handled;
}

int ev_run(ev_loop *l)
{
    l->stop = 0;
    int rc = 0;
    while (!l->stop && rc >= 0) rc = ev_run_once(l, -1);
    /* Consumed, so a later ev_run_once by hand blocks as asked again. */
    l->stop = 0;
    return rc < 0 ? rc : 0;
}

void ev_stop(ev_loop *l)
{
    l->stop = 1;
}
