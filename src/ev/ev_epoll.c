/* ev_epoll.c -- the Linux readiness backend (see ev_backend.h).
 *
 * Owns one epoll instance and the array epoll_wait fills.  Level-triggered:
 * a handler that leaves bytes unread is called again next iteration, which
 * is what ev.c's callers expect.  One epoll_event per fd carries both
 * directions, so an fd is never reported twice in one poll.
 *
 * EPOLLERR and EPOLLHUP are reported as both directions: the handler that is
 * registered will then read or write, get the real error from the kernel and
 * close the connection.  ev.c drops the bits nobody registered.
 *
 * Threads: loop thread only. */
#include "ev_backend.h"

#include "engram/mem.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

struct ev_be {
    int epfd;
    int cap;
    struct epoll_event *events;   /* cap entries, filled by epoll_wait */
};

ev_be *ev_be_new(int cap)
{
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) return NULL;
    ev_be *b = mem_alloc(sizeof *b);
    b->epfd = epfd;
    b->cap = cap;
    b->events = mem_alloc((size_t)cap * sizeof *b->events);
    return b;
}

void ev_be_free(ev_be *b)
{
    if (!b) return;
    close(b->epfd);
    mem_free(b->events);
    mem_free(b);
}

int ev_be_resize(ev_be *b, int cap)
{
    b->events = mem_realloc(b->events, (size_t)cap * sizeof *b->events);
    b->cap = cap;
    return 0;
}

static uint32_t ev_epoll_bits(int mask)
{
    uint32_t e = 0;
    if (mask & EV_READ) e |= EPOLLIN;
    if (mask & EV_WRITE) e |= EPOLLOUT;
    return e;
}

int ev_be_add(ev_be *b, int fd, int old, int add)
{
    struct epoll_event ee;
    memset(&ee, 0, sizeof ee);      /* valgrind: the union has padding */
    ee.events = ev_epoll_bits(old | add);
    ee.data.fd = fd;
    /* An fd with no bits yet is not in the epoll set; one with bits is. */
    int op = old ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(b->epfd, op, fd, &ee) < 0) return -errno;
    return 0;
}

void ev_be_del(ev_be *b, int fd, int old, int del)
{
    struct epoll_event ee;
    memset(&ee, 0, sizeof ee);
    int left = old & ~del;
    ee.events = ev_epoll_bits(left);
    ee.data.fd = fd;
    /* Errors are ignored on purpose: if the fd was already closed the kernel
     * dropped it from the set itself (EBADF/ENOENT), which is what we want. */
    (void)epoll_ctl(b->epfd, left ? EPOLL_CTL_MOD : EPOLL_CTL_DEL, fd, &ee);
}

int ev_be_poll(ev_be *b, int timeout_ms, ev_fired *out)
{
    int n = epoll_wait(b->epfd, b->events, b->cap, timeout_ms);
    if (n < 0) return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        uint32_t e = b->events[i].events;
        int mask = 0;
        if (e & EPOLLIN) mask |= EV_READ;
        if (e & EPOLLOUT) mask |= EV_WRITE;
        if (e & (EPOLLERR | EPOLLHUP)) mask |= EV_READ | EV_WRITE;
        out[i].fd = b->events[i].data.fd;
        out[i].mask = mask;
    }
    return n;
}

const char *ev_backend_name(void)
{
    return "epoll";
}
