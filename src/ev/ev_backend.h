/* ev_backend.h -- the private seam between ev.c and the one readiness
 * backend CMake compiled in (ev_epoll.c on Linux, ev_kqueue.c on macOS/BSD).
 * Only ev.c and the backend files include this; nothing above ev.h knows
 * which backend runs.
 *
 * A backend knows kernel readiness and nothing else: no handlers, no timers,
 * no fd table.  ev.c keeps the per-fd masks and passes the old mask on every
 * change, so a backend needs no table of its own.  Masks given to a backend
 * hold only EV_READ and EV_WRITE (never EV_BARRIER).
 *
 * Capacity: ev.c sizes the backend for setsize + 1 (its own wake-pipe fd
 * rides along outside the fd table).  A backend reports at most `cap`
 * readiness records per poll; more are reported by the next poll.  It may
 * report the same fd twice in one poll (kqueue has one filter per direction);
 * ev.c merges them before dispatch.
 *
 * Threads: loop thread only.  Errors: 0 or -errno. */
#ifndef ENGRAM_EV_BACKEND_H
#define ENGRAM_EV_BACKEND_H

#include "engram/ev.h"

typedef struct ev_be ev_be;

typedef struct ev_fired {
    int fd;
    int mask;   /* EV_READ and/or EV_WRITE */
} ev_fired;

/* NULL on failure with errno set. */
ev_be *ev_be_new(int cap);
void ev_be_free(ev_be *b);                   /* NULL ok */
int ev_be_resize(ev_be *b, int cap);         /* cap >= 1 */

/* Start watching the bits in `add` (none of which is in `old`, the mask the
 * fd already has).  On error nothing changed. */
int ev_be_add(ev_be *b, int fd, int old, int add);
/* Stop watching the bits in `del` (all of which are in `old`).  Cannot fail
 * in a way the caller can act on: a closed fd has left the kernel set. */
void ev_be_del(ev_be *b, int fd, int old, int del);

/* Wait up to timeout_ms (-1 = forever, 0 = don't block) and write up to cap
 * records into out.  Returns their number; an interrupted wait (EINTR)
 * returns 0; any other failure -errno. */
int ev_be_poll(ev_be *b, int timeout_ms, ev_fired *out);

/* Each backend also defines ev_backend_name() from ev.h. */

#endif
