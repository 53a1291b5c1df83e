/* net.h -- sockets: listening, accepting, connecting (a replica to its
 * master), per-socket options.  The only
 * file that calls socket(2)/bind(2)/accept(2).  Errors: 0 / -errno, or -1
 * with a message in err for the listener (which needs to say which address
 * failed). */
#ifndef ENGRAM_NET_H
#define ENGRAM_NET_H

#include <stddef.h>

#define NET_MAX_LISTEN 16

/* Listen on every address in `bind` (space separated; IPv4 or IPv6 literals
 * or "*" / "::*" for any) at `port`.  Sockets are non-blocking, CLOEXEC,
 * SO_REUSEADDR.  Fills fds, returns how many, or -1 with err set. */
int net_listen(const char *bind, int port, int backlog, int *fds, int maxfds,
               char *err, size_t errcap);

/* Accept one connection, non-blocking + CLOEXEC + TCP_NODELAY.  Returns the
 * fd, or -errno (-EAGAIN when none is pending).  addr/laddr get "ip:port". */
int net_accept(int lfd, char *addr, size_t addrcap, char *laddr, size_t laddrcap);

int net_set_keepalive(int fd, int interval_s);
/* The port a listening socket is bound to (for --port 0). */
int net_bound_port(int fd);
/* Close a socket we have just written a refusal to: read away what the
 * peer already sent (closing with unread input sends a reset, which can
 * destroy the refusal before the peer reads it), end our side, close. */
void net_close_gently(int fd);

/* Start a non-blocking connection to host:port (a name is resolved first,
 * blocking).  The fd (CLOEXEC, TCP_NODELAY; writable once connected:
 * net_connect_result then says how it went), or -errno. */
int net_connect(const char *host, int port);
/* 0 once fd is connected, or -errno (SO_ERROR). */
int net_connect_result(int fd);
/* The peer's and our own "ip:port" of a connected socket. */
void net_addrs(int fd, char *addr, size_t addrcap, char *laddr, size_t laddrcap);

#endif
