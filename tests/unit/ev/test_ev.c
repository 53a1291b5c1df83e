/* test_ev.c -- the event loop's contract (include/engram/ev.h), run against
 * whichever backend CMake compiled in.
 *
 * Readiness comes from real pipes and socketpairs; no test sleeps to wait for
 * something to happen: waits are bounded ev_run_once timeouts that only
 * matter when the code is broken.  The cross-thread tests are the reason
 * this file is also run under TSan. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "engram/ev.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXLOG 256

/* What the callbacks saw, in order. */
typedef struct rec {
    int n;
    char what[MAXLOG][16];
    int fd[MAXLOG];
} rec;

static void rec_add(rec *r, const char *what, int fd)
{
    assert_true(r->n < MAXLOG);
    snprintf(r->what[r->n], sizeof r->what[0], "%s", what);
    r->fd[r->n] = fd;
    r->n++;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void make_pipe(int p[2])
{
    assert_int_equal(pipe(p), 0);
    assert_int_equal(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
    assert_int_equal(fcntl(p[1], F_SETFL, O_NONBLOCK), 0);
}

static void make_socketpair(int s[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, s), 0);
    assert_int_equal(fcntl(s[0], F_SETFL, O_NONBLOCK), 0);
    assert_int_equal(fcntl(s[1], F_SETFL, O_NONBLOCK), 0);
}

static void on_read(ev_loop *l, int fd, void *ud, int mask)
{
    assert_int_equal(mask, EV_READ);
    char buf[64];
    while (read(fd, buf, sizeof buf) > 0) {}
    rec_add(ud, "r", fd);
}

static void on_write(ev_loop *l, int fd, void *ud, int mask)
{
    assert_int_equal(mask, EV_WRITE);
    rec_add(ud, "w", fd);
}

/* ---- basics ---------------------------------------------------------------- */

static void test_backend_name(void **state)
{
    const char *n = ev_backend_name();
    assert_true(strcmp(n, "epoll") == 0 || strcmp(n, "kqueue") == 0);
    assert_null(ev_new(0));
    assert_null(ev_new(-5));
    ev_free(NULL);
    ev_loop *l = ev_new(16);
    assert_non_null(l);
    assert_int_equal(ev_get_setsize(l), 16);
    /* Nothing registered, no timers: a zero wait returns at once. */
    assert_int_equal(ev_run_once(l, 0), 0);
    ev_free(l);
}

static void test_pipe_read(void **state)
{
    ev_loop *l = ev_new(64);
    rec r = {0};
    int p[2];
    make_pipe(p);
    assert_int_equal(ev_add(l, p[0], EV_READ, on_read, &r), 0);
    assert_int_equal(ev_get_mask(l, p[0]), EV_READ);

    assert_int_equal(ev_run_once(l, 0), 0);    /* not readable yet */
    assert_int_equal(r.n, 0);
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_int_equal(ev_run_once(l, 5000), 1);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.what[0], "r");
    assert_int_equal(r.fd[0], p[0]);

    ev_del(l, p[0], EV_READ);
    assert_int_equal(ev_get_mask(l, p[0]), 0);
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_int_equal(ev_run_once(l, 0), 0);
    assert_int_equal(r.n, 1);
    close(p[0]);
    close(p[1]);
    ev_free(l);
}

static void test_socketpair_directions(void **state)
{
    ev_loop *l = ev_new(64);
    rec r = {0};
    int s[2];
    make_socketpair(s);
    assert_int_equal(ev_add(l, s[0], EV_READ, on_read, &r), 0);
    assert_int_equal(ev_add(l, s[0], EV_WRITE, on_write, &r), 0);
    assert_int_equal(ev_get_mask(l, s[0]), EV_READ | EV_WRITE);

    /* An empty socket buffer is writable, not readable. */
    assert_int_equal(ev_run_once(l, 5000), 1);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.what[0], "w");

    /* Deleting the write direction keeps the read one. */
    ev_del(l, s[0], EV_WRITE);
    assert_int_equal(ev_get_mask(l, s[0]), EV_READ);
    assert_int_equal(ev_run_once(l, 0), 0);
    assert_int_equal(write(s[1], "hi", 2), 2);
    assert_int_equal(ev_run_once(l, 5000), 1);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.what[1], "r");

    /* And the other way round. */
    assert_int_equal(ev_add(l, s[0], EV_WRITE, on_write, &r), 0);
    ev_del(l, s[0], EV_READ);
    assert_int_equal(ev_get_mask(l, s[0]), EV_WRITE);
    assert_int_equal(write(s[1], "hi", 2), 2);
    assert_int_equal(ev_run_once(l, 5000), 1);
    assert_int_equal(r.n, 3);
    assert_string_equal(r.what[2], "w");

    ev_del(l, s[0], EV_WRITE);
    assert_int_equal(ev_get_mask(l, s[0]), 0);
    assert_int_equal(ev_run_once(l, 0), 0);
    close(s[0]);
    close(s[1]);
    ev_free(l);
}

static void test_add_errors(void **state)
{
    ev_loop *l = ev_new(8);
    rec r = {0};
    assert_int_equal(ev_add(l, 8, EV_READ, on_read, &r), -ERANGE);
    assert_int_equal(ev_add(l, 1000, EV_READ, on_read, &r), -ERANGE);
    assert_int_equal(ev_add(l, -1, EV_READ, on_read, &r), -EBADF);
    assert_int_equal(ev_add(l, 3, EV_BARRIER, on_read, &r), -EINVAL);
    assert_int_equal(ev_add(l, 3, EV_READ, NULL, &r), -EINVAL);
    assert_int_equal(ev_get_mask(l, 8), 0);
    assert_int_equal(ev_get_mask(l, -1), 0);
    ev_del(l, 100, EV_READ);    /* ignored */
    ev_del(l, -1, EV_READ);

    if (strcmp(ev_backend_name(), "epoll") == 0) {
        /* epoll refuses regular files: the error comes back, table untouched. */
        char path[] = "/tmp/test_ev_XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        unlink(path);
        ev_free(l);
        l = ev_new(fd + 1);
        assert_int_equal(ev_add(l, fd, EV_READ, on_read, &r), -EPERM);
        assert_int_equal(ev_get_mask(l, fd), 0);
        assert_int_equal(ev_resize(l, 1), 0);   /* nothing registered */
        close(fd);
    }
    ev_free(l);
}

/* ---- EV_BARRIER ------------------------------------------------------------ */

static void test_barrier(void **state)
{
    ev_loop *l = ev_new(64);
    rec r = {0};
    int s[2];
    make_socketpair(s);
    assert_int_equal(ev_add(l, s[0], EV_READ, on_read, &r), 0);
    assert_int_equal(ev_add(l, s[0], EV_WRITE, on_write, &r), 0);

    /* Readable and writable at once: read runs first by default. */
    assert_int_equal(write(s[1], "a", 1), 1);
    assert_int_equal(ev_run_once(l, 5000), 2);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.what[0], "r");
    assert_string_equal(r.what[1], "w");

    /* With the barrier, write runs first. */
    assert_int_equal(ev_add(l, s[0], EV_WRITE | EV_BARRIER, on_write, &r), 0);
    assert_int_equal(ev_get_mask(l, s[0]), EV_READ | EV_WRITE | EV_BARRIER);
    assert_int_equal(write(s[1], "a", 1), 1);
    assert_int_equal(ev_run_once(l, 5000), 2);
    assert_int_equal(r.n, 4);
    assert_string_equal(r.what[2], "w");
    assert_string_equal(r.what[3], "r");

    /* The barrier goes with the write direction. */
    ev_del(l, s[0], EV_WRITE);
    assert_int_equal(ev_get_mask(l, s[0]), EV_READ);
    assert_int_equal(ev_add(l, s[0], EV_WRITE, on_write, &r), 0);
    assert_int_equal(write(s[1], "a", 1), 1);
    assert_int_equal(ev_run_once(l, 5000), 2);
    assert_string_equal(r.what[4], "r");
    assert_string_equal(r.what[5], "w");

    close(s[0]);
    close(s[1]);
    ev_free(l);
}

/* A read handler that deletes the write direction of its own fd: the write
 * handler, though reported ready by the same poll, must not run. */
static void on_read_del_write(ev_loop *l, int fd, void *ud, int mask)
{
    on_read(l, fd, ud, mask);
    ev_del(l, fd, EV_WRITE);
}

static void test_delete_during_dispatch(void **state)
{
    ev_loop *l = ev_new(64);
    rec r = {0};
    int s[2];
    make_socketpair(s);
    assert_int_equal(ev_add(l, s[0], EV_READ, on_read_del_write, &r), 0);
    assert_int_equal(ev_add(l, s[0], EV_WRITE, on_write, &r), 0);
    assert_int_equal(write(s[1], "a", 1), 1);
    assert_int_equal(ev_run_once(l, 5000), 1);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.what[0], "r");
    close(s[0]);
    close(s[1]);
    ev_free(l);
}

/* Two readable pipes whose handler deletes the *other* one (and the last one
 * shrinks the table below it): exactly one of them runs, whatever order the
 * backend reports them in, and nothing reads past the shrunk table. */
typedef struct pair_ctx {
    rec r;
    int a, b;
} pair_ctx;

static void on_read_del_other(ev_loop *l, int fd, void *ud, int mask)
{
    pair_ctx *c = ud;
    on_read(l, fd, &c->r, mask);
    int other = fd == c->a ? c->b : c->a;
    ev_del(l, other, EV_READ);
    if (other > fd) assert_int_equal(ev_resize(l, fd + 1), 0);
}

static void test_delete_other_and_shrink(void **state)
{
    ev_loop *l = ev_new(256);
    pair_ctx c = {0};
    int p[2], q[2];
    make_pipe(p);
    make_pipe(q);
    c.a = p[0];
    c.b = dup2(q[0], 200);
    assert_int_equal(c.b, 200);
    assert_int_equal(ev_add(l, c.a, EV_READ, on_read_del_other, &c), 0);
    assert_int_equal(ev_add(l, c.b, EV_READ, on_read_del_other, &c), 0);
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_int_equal(write(q[1], "x", 1), 1);
    /* Both are ready before the poll. */
    assert_int_equal(ev_run_once(l, 5000), 1);
    assert_int_equal(c.r.n, 1);
    close(p[0]); close(p[1]); close(q[0]); close(q[1]); close(200);
    ev_free(l);
}

/* ---- resize ----------------------------------------------------------------- */

static void test_resize(void **state)
{
    ev_loop *l = ev_new(64);
    rec r = {0};
    int p[2];
    make_pipe(p);
    int hi = dup2(p[0], 40);
    assert_int_equal(hi, 40);
    assert_int_equal(ev_add(l, hi, EV_READ, on_read, &r), 0);

    assert_int_equal(ev_resize(l, 40), -ERANGE);
    assert_int_equal(ev_resize(l, 10), -ERANGE);
    assert_int_equal(ev_get_setsize(l), 64);
    assert_int_equal(ev_resize(l, 0), -EINVAL);
    assert_int_equal(ev_resize(l, 41), 0);
    assert_int_equal(ev_get_setsize(l), 41);
    assert_int_equal(ev_get_mask(l, hi), EV_READ);
    assert_int_equal(ev_add(l, 41, EV_READ, on_read, &r), -ERANGE);

    /* Still works after the shrink. */
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_int_equal(ev_run_once(l, 5000), 1);
    assert_int_equal(r.fd[0], hi);

    /* Grow: new slots are empty and usable. */
    assert_int_equal(ev_resize(l, 300), 0);
    for (int fd = 41; fd < 300; fd++) assert_int_equal(ev_get_mask(l, fd), 0);
    int hi2 = dup2(p[0], 250);
    assert_int_equal(hi2, 250);
    assert_int_equal(ev_add(l, hi2, EV_READ, on_read, &r), 0);
    assert_int_equal(ev_resize(l, 250), -ERANGE);
    ev_del(l, hi2, EV_READ);
    assert_int_equal(ev_resize(l, 250), 0);
    ev_del(l, hi, EV_READ);
    assert_int_equal(ev_resize(l, 1), 0);   /* nothing registered any more */

    close(hi2); close(hi); close(p[0]); close(p[1]);
    ev_free(l);
}

/* ---- timers ----------------------------------------------------------------- */

typedef struct tctx {
    rec *r;
    const char *name;
    int ret;            /* what the callback returns */
    int times;          /* how often it has run */
    int stop_after;     /* > 0: return EV_TIMER_STOP on this run */
    long long del_id;   /* > 0: ev_timer_del this id when run */
    int del_rc;
    long long self;
} tctx;

static tctx tctx_make(rec *r, const char *name, int ret)
{
    tctx t = {.r = r, .name = name, .ret = ret};
    return t;
}

static int on_timer(ev_loop *l, long long id, void *ud)
{
    tctx *t = ud;
    t->times++;
    if (t->self) assert_int_equal(id, t->self);
    rec_add(t->r, t->name, (int)id);
    if (t->del_id) {
        t->del_rc = ev_timer_del(l, t->del_id);
        t->del_id = 0;
    }
    if (t->stop_after && t->times >= t->stop_after) return EV_TIMER_STOP;
    return t->ret;
}

static void run_until(ev_loop *l, int *flag, int want)
{
    int64_t end = now_ms() + 5000;
    while (*flag < want && now_ms() < end) assert_true(ev_run_once(l, 100) >= 0);
    assert_int_equal(*flag, want);
}

static void test_timers_order(void **state)
{
    ev_loop *l = ev_new(16);
    rec r = {0};
    tctx a = tctx_make(&r, "30", EV_TIMER_STOP), b = tctx_make(&r, "10", EV_TIMER_STOP),
         c = tctx_make(&r, "20", EV_TIMER_STOP), d = tctx_make(&r, "0a", EV_TIMER_STOP),
         e = tctx_make(&r, "0b", EV_TIMER_STOP);
    int64_t t0 = now_ms();
    long long ida = ev_timer_add(l, 30, on_timer, &a);
    long long idb = ev_timer_add(l, 10, on_timer, &b);
    long long idc = ev_timer_add(l, 20, on_timer, &c);
    long long idd = ev_timer_add(l, 0, on_timer, &d);
    long long ide = ev_timer_add(l, -7, on_timer, &e);   /* negative = 0 */
    assert_true(ida > 0 && idb > ida && idc > idb && idd > idc && ide > idd);
    assert_int_equal(ev_timer_add(l, 1, NULL, NULL), -EINVAL);

    run_until(l, &r.n, 5);
    assert_true(now_ms() - t0 >= 30);       /* never early */
    assert_string_equal(r.what[0], "0a");   /* equal deadlines: order added */
    assert_string_equal(r.what[1], "0b");
    assert_string_equal(r.what[2], "10");
    assert_string_equal(r.what[3], "20");
    assert_string_equal(r.what[4], "30");
    assert_int_equal(ev_timer_del(l, ida), -ENOENT);    /* stopped ones are gone */
    assert_int_equal(ev_timer_del(l, 12345), -ENOENT);
    assert_int_equal(ev_timer_del(l, 0), -ENOENT);
    ev_free(l);
}

static void test_timer_reschedule(void **state)
{
    ev_loop *l = ev_new(16);
    rec r = {0};
    tctx a = tctx_make(&r, "a", 5);
    a.stop_after = 3;
    a.self = ev_timer_add(l, 1, on_timer, &a);
    run_until(l, &a.times, 3);
    for (int i = 0; i < 3; i++) assert_int_equal(r.fd[i], (int)a.self);  /* same id */
    assert_int_equal(ev_timer_del(l, a.self), -ENOENT);
    /* Nothing left: a zero wait returns at once with nothing done. */
    assert_int_equal(ev_run_once(l, 0), 0);
    assert_int_equal(a.times, 3);
    ev_free(l);
}

static void test_timer_delete_self(void **state)
{
    ev_loop *l = ev_new(16);
    rec r = {0};
    tctx a = tctx_make(&r, "a", 1);     /* would reschedule itself... */
    a.self = ev_timer_add(l, 0, on_timer, &a);
    a.del_id = a.self;         /* ...but deletes itself first */
    run_until(l, &a.times, 1);
    assert_int_equal(a.del_rc, 0);
    assert_int_equal(ev_timer_del(l, a.self), -ENOENT);
    for (int i = 0; i < 5; i++) ev_run_once(l, 5);
    assert_int_equal(a.times, 1);
    ev_free(l);
}

static void test_timer_delete_other(void **state)
{
    ev_loop *l = ev_new(16);
    rec r = {0};
    /* Both due in the same pass; a runs first (added first) and deletes b. */
    tctx a = tctx_make(&r, "a", EV_TIMER_STOP), b = tctx_make(&r, "b", EV_TIMER_STOP),
         c = tctx_make(&r, "c", 1);
    ev_timer_add(l, 0, on_timer, &a);
    long long idb = ev_timer_add(l, 0, on_timer, &b);
    /* c reschedules every ms until a later a-like timer deletes it. */
    long long idc = ev_timer_add(l, 0, on_timer, &c);
    a.del_id = idb;
    run_until(l, &a.times, 1);
    assert_int_equal(a.del_rc, 0);
    assert_int_equal(b.times, 0);

    tctx k = tctx_make(&r, "k", EV_TIMER_STOP);
    k.del_id = idc;
    ev_timer_add(l, 3, on_timer, &k);
    run_until(l, &k.times, 1);
    assert_int_equal(k.del_rc, 0);
    int seen = c.times;
    assert_true(seen >= 1);
    for (int i = 0; i < 5; i++) ev_run_once(l, 2);
    assert_int_equal(c.times, seen);
    assert_int_equal(b.times, 0);
    ev_free(l);
}

/* A timer that returns 0 and one that adds a 0 ms timer: each runs once per
 * iteration, never in a loop inside one. */
static int on_timer_spawn(ev_loop *l, long long id, void *ud)
{
    tctx *t = ud;
    t->times++;
    ev_timer_add(l, 0, on_timer, t + 1);
    return EV_TIMER_STOP;
}

static void test_timer_zero_no_starvation(void **state)
{
    ev_loop *l = ev_new(16);
    rec r = {0};
    tctx z = tctx_make(&r, "z", 0);
    ev_timer_add(l, 0, on_timer, &z);
    assert_int_equal(ev_run_once(l, 0), 1);
    assert_int_equal(z.times, 1);
    assert_int_equal(ev_run_once(l, 0), 1);
    assert_int_equal(z.times, 2);
    ev_free(l);

    l = ev_new(16);
    tctx sp[2] = {tctx_make(&r, "s", 0), tctx_make(&r, "child", EV_TIMER_STOP)};
    ev_timer_add(l, 0, on_timer_spawn, &sp[0]);
    assert_int_equal(ev_run_once(l, 0), 1);
    assert_int_equal(sp[0].times, 1);
    assert_int_equal(sp[1].times, 0);
    assert_int_equal(ev_run_once(l, 0), 1);
    assert_int_equal(sp[1].times, 1);
    ev_free(l);
}

/* A timer wakes a poll that would otherwise block forever. */
static void test_timer_bounds_poll(void **state)
{
    ev_loop *l = ev_new(16);
    rec r = {0};
    tctx a = tctx_make(&r, "a", EV_TIMER_STOP);
    int64_t t0 = now_ms();
    ev_timer_add(l, 20, on_timer, &a);
    while (a.times == 0) assert_true(ev_run_once(l, -1) >= 0);
    assert_true(now_ms() - t0 >= 20);
    ev_free(l);
}

/* ---- hooks ------------------------------------------------------------------ */

typedef struct hook_ctx {
    rec r;
    int wfd;            /* before-sleep writes here once */
} hook_ctx;

static void before_hook(ev_loop *l, void *ud)
{
    hook_ctx *h = ud;
    rec_add(&h->r, "before", -1);
    if (h->wfd >= 0) {
        assert_int_equal(write(h->wfd, "x", 1), 1);
        h->wfd = -1;
    }
}

static void after_hook(ev_loop *l, void *ud)
{
    rec_add(&((hook_ctx *)ud)->r, "after", -1);
}

static void on_read_h(ev_loop *l, int fd, void *ud, int mask)
{
    on_read(l, fd, &((hook_ctx *)ud)->r, mask);
}

static void test_hooks(void **state)
{
    ev_loop *l = ev_new(64);
    hook_ctx h = {.wfd = -1};
    ev_set_before_sleep(l, before_hook, &h);
    ev_set_after_sleep(l, after_hook, &h);
    for (int i = 0; i < 3; i++) assert_int_equal(ev_run_once(l, 0), 0);
    assert_int_equal(h.r.n, 6);
    for (int i = 0; i < 6; i += 2) {
        assert_string_equal(h.r.what[i], "before");
        assert_string_equal(h.r.what[i + 1], "after");
    }

    /* Before-sleep runs before the poll: what it writes is seen by the same
     * iteration, even with a zero wait. */
    int p[2];
    make_pipe(p);
    assert_int_equal(ev_add(l, p[0], EV_READ, on_read_h, &h), 0);
    h.r.n = 0;
    h.wfd = p[1];
    assert_int_equal(ev_run_once(l, 0), 1);
    assert_int_equal(h.r.n, 3);
    assert_string_equal(h.r.what[0], "before");
    assert_string_equal(h.r.what[1], "after");
    assert_string_equal(h.r.what[2], "r");

    ev_set_before_sleep(l, NULL, NULL);
    ev_set_after_sleep(l, NULL, NULL);
    h.r.n = 0;
    ev_run_once(l, 0);
    assert_int_equal(h.r.n, 0);
    close(p[0]);
    close(p[1]);
    ev_free(l);
}

/* A before-sleep hook that adds a 0 ms timer: the poll must not block on it. */
static void before_add_timer(ev_loop *l, void *ud)
{
    tctx *t = ud;
    if (!t->times && !t->del_rc) {
        t->del_rc = 1;  /* used as "added" */
        ev_timer_add(l, 0, on_timer, t);
    }
}

static void test_before_sleep_timer(void **state)
{
    ev_loop *l = ev_new(16);
    rec r = {0};
    tctx t = tctx_make(&r, "t", EV_TIMER_STOP);
    ev_set_before_sleep(l, before_add_timer, &t);
    int64_t t0 = now_ms();
    assert_int_equal(ev_run_once(l, 10000), 1);   /* not 10 s */
    assert_true(now_ms() - t0 < 5000);
    assert_int_equal(t.times, 1);
    ev_free(l);
}

/* ---- wake ------------------------------------------------------------------- */

typedef struct wake_ctx {
    ev_loop *l;
    pthread_t loop_thread;
    atomic_int posted;      /* work items other threads queued */
    int seen;               /* what the handler saw; loop thread only */
    int calls;
    int on_loop_thread;
    int delay_ms;
    int per_thread;
} wake_ctx;

static void on_wake(ev_loop *l, void *ud)
{
    wake_ctx *w = ud;
    w->calls++;
    w->on_loop_thread = pthread_equal(pthread_self(), w->loop_thread);
    w->seen = atomic_load(&w->posted);
}

static void *waker(void *arg)
{
    wake_ctx *w = arg;
    if (w->delay_ms) {
        struct timespec ts = {0, (long)w->delay_ms * 1000000L};
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < w->per_thread; i++) {
        atomic_fetch_add(&w->posted, 1);
        ev_wake(w->l);
    }
    return NULL;
}

static void test_wake_from_thread(void **state)
{
    wake_ctx w = {.delay_ms = 50, .per_thread = 1};
    w.l = ev_new(16);
    w.loop_thread = pthread_self();
    ev_set_wake_handler(w.l, on_wake, &w);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, waker, &w), 0);
    /* Blocks (nothing else can end the wait early) until the thread wakes us. */
    int64_t t0 = now_ms();
    int n = ev_run_once(w.l, 20000);
    assert_true(now_ms() - t0 < 10000);
    assert_int_equal(n, 1);
    assert_int_equal(w.calls, 1);
    assert_true(w.on_loop_thread);
    assert_int_equal(w.seen, 1);
    pthread_join(t, NULL);
    ev_free(w.l);
}

static void test_wake_batches(void **state)
{
    wake_ctx w = {0};
    w.l = ev_new(16);
    w.loop_thread = pthread_self();
    ev_set_wake_handler(w.l, on_wake, &w);
    for (int i = 0; i < 1000; i++) ev_wake(w.l);
    assert_int_equal(ev_run_once(w.l, 0), 1);
    assert_int_equal(w.calls, 1);
    assert_int_equal(ev_run_once(w.l, 0), 0);     /* drained */
    assert_int_equal(w.calls, 1);
    /* Without a handler a wake still ends the poll. */
    ev_set_wake_handler(w.l, NULL, NULL);
    ev_wake(w.l);
    assert_int_equal(ev_run_once(w.l, 0), 1);
    assert_int_equal(w.calls, 1);
    ev_free(w.l);
}

/* Many threads post and wake as fast as they can; the loop sleeps with no
 * timeout between batches.  A lost wake shows up as the loop never seeing
 * the final count (the bounded wait then fails the test instead of hanging). */
static void test_wake_no_lost_wakes(void **state)
{
    enum { THREADS = 4, PER = 20000 };
    wake_ctx w = {.per_thread = PER};
    w.l = ev_new(16);
    w.loop_thread = pthread_self();
    ev_set_wake_handler(w.l, on_wake, &w);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, waker, &w), 0);
    int64_t end = now_ms() + 60000;
    while (w.seen < THREADS * PER && now_ms() < end)
        assert_true(ev_run_once(w.l, 10000) >= 0);
    assert_int_equal(w.seen, THREADS * PER);
    assert_true(w.on_loop_thread);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    ev_free(w.l);
}

/* ---- stop ------------------------------------------------------------------- */

static int on_timer_stop(ev_loop *l, long long id, void *ud)
{
    tctx *t = ud;
    if (++t->times == 3) {
        ev_stop(l);
        return EV_TIMER_STOP;
    }
    return 1;
}

static void on_read_stop(ev_loop *l, int fd, void *ud, int mask)
{
    char c;
    while (read(fd, &c, 1) > 0) {}
    ++*(int *)ud;
    ev_stop(l);
}

static void test_stop(void **state)
{
    ev_loop *l = ev_new(64);
    tctx t = {0};
    ev_timer_add(l, 1, on_timer_stop, &t);
    assert_int_equal(ev_run(l), 0);
    assert_int_equal(t.times, 3);

    /* Stopped from a file handler; ev_run can be entered again afterwards. */
    int p[2], hits = 0;
    make_pipe(p);
    assert_int_equal(ev_add(l, p[0], EV_READ, on_read_stop, &hits), 0);
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_int_equal(ev_run(l), 0);
    assert_int_equal(hits, 1);
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_int_equal(ev_run(l), 0);
    assert_int_equal(hits, 2);
    close(p[0]);
    close(p[1]);
    ev_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backend_name),
        cmocka_unit_test(test_pipe_read),
        cmocka_unit_test(test_socketpair_directions),
        cmocka_unit_test(test_add_errors),
        cmocka_unit_test(test_barrier),
        cmocka_unit_test(test_delete_during_dispatch),
        cmocka_unit_test(test_delete_other_and_shrink),
        cmocka_unit_test(test_resize),
        cmocka_unit_test(test_timers_order),
        cmocka_unit_test(test_timer_reschedule),
        cmocka_unit_test(test_timer_delete_self),
        cmocka_unit_test(test_timer_delete_other),
        cmocka_unit_test(test_timer_zero_no_starvation),
        cmocka_unit_test(test_timer_bounds_poll),
        cmocka_unit_test(test_hooks),
        cmocka_unit_test(test_before_sleep_timer),
        cmocka_unit_test(test_wake_from_thread),
        cmocka_unit_test(test_wake_batches),
        cmocka_unit_test(test_wake_no_lost_wakes),
        cmocka_unit_test(test_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
