/* ev_kqueue.c -- the macOS/BSD readiness backend (see ev_backend.h).
 *
 * Owns one kqueue and the array kevent fills.  kqueue has one filter per
 * direction (EVFILT_READ, EVFILT_WRITE), so a change touches each direction
 * separately and a poll may report one fd twice; ev.c merges those so the
 * read-before-write (or EV_BARRIER) order still holds per fd.
 *
 * Filters are level-triggered (no EV_CLEAR), matching epoll's behaviour.
 * EV_EOF and EV_ERROR arrive on the filter that saw them; the registered
 * handler's next read or write gets the real error.
 *
 * Threads: loop thread only.  A kqueue is not inherited across fork(). */
#include "ev_backend.h"

#include "engram/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <sys/event.h>
#include <sys/time.h>
#include <sys/types.h>
#include <unistd.h>

struct ev_be {
    int kq;
    int cap;
    struct kevent *events;   /* cap entries, filled by kevent */
};

ev_be *ev_be_new(int cap)
{
    int kq = kqueue();
    if (kq < 0) return NULL;
    (void)fcntl(kq, F_SETFD, FD_CLOEXEC);
    ev_be *b = mem_alloc(sizeof *b);
    b->kq = kq;
    b->cap = cap;
    b->events = mem_alloc((size_t)cap * sizeof *b->events);
    return b;
}

void ev_be_free(ev_be *b)
{
    if (!b) return;
    close(b->kq);
    mem_free(b->events);
    mem_free(b);
}

int ev_be_resize(ev_be *b, int cap)
{
    b->events = mem_realloc(b->events, (size_t)cap * sizeof *b->events);
    b->cap = cap;
    return 0;
}

static int ev_kqueue_change(ev_be *b, int fd, int filter, int flags)
{
    struct kevent ke;
    EV_SET(&ke, (uintptr_t)fd, filter, flags, 0, 0, NULL);
    return kevent(b->kq, &ke, 1, NULL, 0, NULL) < 0 ? -errno : 0;
}

int ev_be_add(ev_be *b, int fd, int old, int add)
{
    (void)old;
    if (add & EV_READ) {
        int rc = ev_kqueue_change(b, fd, EVFILT_READ, EV_ADD);
        if (rc) return rc;
    }
    if (add & EV_WRITE) {
        int rc = ev_kqueue_change(b, fd, EVFILT_WRITE, EV_ADD);
        if (rc) {
            /* Undo the read half so a failed add leaves nothing behind. */
            if (add & EV_READ) (void)ev_kqueue_change(b, fd, EVFILT_READ, EV_DELETE);
            return rc;
        }
    }
    return 0;
}

void ev_be_del(ev_be *b, int fd, int old, int del)
{
    (void)old;
    /* Errors ignored: closing an fd already removed its filters. */
    if (del & EV_READ) (void)ev_kqueue_change(b, fd, EVFILT_READ, EV_DELETE);
    if (del & EV_WRITE) (void)ev_kqueue_change(b, fd, EVFILT_WRITE, EV_DELETE);
}

int ev_be_poll(ev_be *b, int timeout_ms, ev_fired *out)
{
    struct timespec ts, *tp = NULL;
    if (timeout_ms >= 0) {
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
        tp = &ts;
    }
    int n = kevent(b->kq, NULL, 0, b->events, b->cap, tp);
    if (n < 0) return errno == EINTR ? 0 : -errno;
    int k = 0;
    for (int i = 0; i < n; i++) {
        const struct kevent *e = &b->events[i];
        int mask = e->filter == EVFILT_READ ? EV_READ
                 : e->filter == EVFILT_WRITE ? EV_WRITE : 0;
        if (!mask) continue;
        out[k].fd = (int)e->ident;
        out[k].mask = mask;
        k++;
    }
    return k;
}

const char *ev_backend_name(void)
{
    return "kqueue";
}
