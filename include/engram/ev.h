/* ev.h -- the event loop: readiness of file descriptors, timers, and a
 * thread-safe wake-up.  One loop per process, run by one thread.
 *
 * The loop sits on exactly one backend (ev_epoll.c on Linux, ev_kqueue.c on
 * macOS/BSD, chosen by CMake) behind the private interface in
 * src/ev/ev_backend.h; nothing above this header knows which one runs.
 *
 * Each iteration: call the before-sleep hook (the server flushes its log and
 * then replies there), poll until the nearest timer deadline (computed after
 * the hook, so a timer it adds counts), call the after-sleep hook, run the
 * wake handler if ev_wake() was called, dispatch fd events (readable before
 * writable for the same fd, unless EV_BARRIER is set on it, which inverts
 * that), then run the timers that were due when the pass began (a timer
 * added or rescheduled by a callback waits for the next iteration).
 *
 * Any callback may add or delete fds and timers, resize the loop or stop it;
 * a direction deleted by an earlier handler in the same iteration is not
 * called.
 *
 * Threads: everything here is loop-thread only, except ev_wake(), which any
 * thread may call; it makes the loop's poll return and run the wake handler
 * on the loop thread.
 *
 * Errors: 0 or -errno. */
#ifndef ENGRAM_EV_H
#define ENGRAM_EV_H

#include <stdint.h>

#define EV_NONE     0
#define EV_READ     1
#define EV_WRITE    2
#define EV_BARRIER  4   /* on this fd, run the write handler before the read one */

#define EV_TIMER_STOP (-1)   /* timer callback return: do not reschedule */

typedef struct ev_loop ev_loop;
/* Called once per ready direction; mask is EV_READ or EV_WRITE, the one
 * being dispatched (the same fn registered for both is called twice). */
typedef void ev_file_fn(ev_loop *l, int fd, void *ud, int mask);
/* Return EV_TIMER_STOP (any negative), or the number of ms from now until
 * the timer fires again (0 = next iteration); the id stays the same. */
typedef int ev_timer_fn(ev_loop *l, long long id, void *ud);
typedef void ev_hook_fn(ev_loop *l, void *ud);

/* setsize: fds the loop can watch (0 .. setsize-1); the loop's own wake pipe
 * does not use a slot.  NULL on failure (setsize <= 0, or the kernel refused
 * the epoll/kqueue instance or the pipe). */
ev_loop *ev_new(int setsize);
void ev_free(ev_loop *l);                   /* NULL ok; closes the wake pipe */
int ev_get_setsize(const ev_loop *l);
/* Grow or shrink; -ERANGE if an fd >= setsize is registered, -EINVAL if
 * setsize <= 0.  On error nothing changed. */
int ev_resize(ev_loop *l, int setsize);

/* Watch fd for mask (EV_READ|EV_WRITE[|EV_BARRIER]), added to what it has.
 * One handler per direction; fn replaces the handler of the given bits.
 * -ERANGE if fd >= setsize, -EBADF if fd < 0, -EINVAL if mask has no
 * direction or fn is NULL, or the kernel's -errno (e.g. -EPERM for a regular
 * file on epoll).  On error nothing changed. */
int ev_add(ev_loop *l, int fd, int mask, ev_file_fn *fn, void *ud);
/* Stop watching these bits; unknown fds are ignored.  Removing EV_WRITE
 * also removes EV_BARRIER.  Call it before close(fd). */
void ev_del(ev_loop *l, int fd, int mask);
int ev_get_mask(const ev_loop *l, int fd);  /* 0 for unwatched/out of range */

/* Timers: fire after ms (monotonic clock; negative = 0); the id is > 0
 * (-EINVAL if fn is NULL).  Equal deadlines fire in the order added.
 * ev_timer_del returns -ENOENT for an unknown id.  A timer may delete itself
 * or others from its callback; deleting itself overrides its return value. */
long long ev_timer_add(ev_loop *l, long long ms, ev_timer_fn *fn, void *ud);
int ev_timer_del(ev_loop *l, long long id);

void ev_set_before_sleep(ev_loop *l, ev_hook_fn *fn, void *ud);
void ev_set_after_sleep(ev_loop *l, ev_hook_fn *fn, void *ud);

/* Wake-up from other threads (self-pipe).  The handler runs on the loop
 * thread, once per batch of wakes.  ev_wake is async-signal-safe too, and
 * anything the caller wrote before ev_wake() is visible to the handler.  The
 * loop must outlive every thread that may call ev_wake on it. */
void ev_set_wake_handler(ev_loop *l, ev_hook_fn *fn, void *ud);
void ev_wake(ev_loop *l);

/* Run until ev_stop(); returns 0, or -errno if the backend's poll fails.
 * ev_run_once processes one iteration, waiting at most timeout_ms (-1 = until
 * an event, 0 = not at all).  Returns the callbacks run (the wake batch
 * counts one even without a handler), or -errno if the poll failed.
 * ev_stop (loop thread) makes ev_run return after the current iteration. */
int ev_run(ev_loop *l);
int ev_run_once(ev_loop *l, int timeout_ms);
void ev_stop(ev_loop *l);

const char *ev_backend_name(void);           /* "epoll" or "kqueue" */

#endif
