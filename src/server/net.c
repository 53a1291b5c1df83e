/* net.c -- see net.h.  Loop thread only. */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int net_nonblock_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -errno;
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) return -errno;
    return 0;
}

static int net_listen_one(const char *host, int port, int backlog, char *err, size_t errcap)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int one = 1, fd;
    const char *h = host;

    memset(&ss, 0, sizeof ss);
    if (!strcmp(h, "*") || !strcmp(h, "0.0.0.0")) h = "0.0.0.0";
    if (!strcmp(h, "::*")) h = "::";
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, h, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((unsigned short)port);
        sl = sizeof *s4;
    } else if (inet_pton(AF_INET6, h, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((unsigned short)port);
        sl = sizeof *s6;
    } else {
        snprintf(err, errcap, "invalid bind address '%s'", host);
        return -1;
    }
    fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (fd < 0) goto fail;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ss.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, backlog) < 0 ||
        net_nonblock_cloexec(fd) < 0)
        goto fail;
    return fd;
fail:
    snprintf(err, errcap, "could not listen on %s:%d: %s", host, port, strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
}

int net_listen(const char *bind_addrs, int port, int backlog, int *fds, int maxfds,
               char *err, size_t errcap)
{
    char buf[1024], *save = NULL;
    int n = 0;

    snprintf(buf, sizeof buf, "%s", bind_addrs);
    for (char *tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        if (n == maxfds) {
            snprintf(err, errcap, "too many bind addresses (max %d)", maxfds);
            goto fail;
        }
        int fd = net_listen_one(tok, port, backlog, err, errcap);
        if (fd < 0) goto fail;
        fds[n++] = fd;
    }
    if (n == 0) {
        snprintf(err, errcap, "no bind address given");
        return -1;
    }
    return n;
fail:
    while (n) close(fds[--n]);
    return -1;
}

static void net_fmt_addr(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &s->sin_addr, ip, sizeof ip);
        port = ntohs(s->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof ip);
        port = ntohs(s->sin6_port);
    }
    snprintf(out, cap, "%s:%d", ip, port);
}

int net_accept(int lfd, char *addr, size_t addrcap, char *laddr, size_t laddrcap)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd, one = 1;

    do {
        fd = accept(lfd, (struct sockaddr *)&ss, &sl);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    if (net_nonblock_cloexec(fd) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    net_fmt_addr(&ss, addr, addrcap);
    sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) net_fmt_addr(&ss, laddr, laddrcap);
    else snprintf(laddr, laddrcap, "?:0");
    return fd;
}

int net_set_keepalive(int fd, int interval_s)
{
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one) < 0) return -errno;
#if defined(TCP_KEEPIDLE)
    int idle = interval_s, intvl = interval_s / 3 ? interval_s / 3 : 1, cnt = 3;
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
#elif defined(TCP_KEEPALIVE)
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPALIVE, &interval_s, sizeof interval_s);
#endif
    return 0;
}

int net_bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) return -errno;
    if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

int net_connect(const char *host, int port)
{
    struct addrinfo hints, *res, *ai;
    char ps[16];
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(ps, sizeof ps, "%d", port);
    /* A name is resolved here, blocking (an address literal costs nothing). */
    int rc = getaddrinfo(host, ps, &hints, &res);
    if (rc != 0) return rc == EAI_SYSTEM ? -errno : -EHOSTUNREACH;
    int fd = -ECONNREFUSED, one = 1;
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) {
            fd = -errno;
            continue;
        }
        if (net_nonblock_cloexec(fd) < 0 ||
            (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS)) {
            int e = errno;
            close(fd);
            fd = -e;
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        break;
    }
    freeaddrinfo(res);
    return fd;
}

int net_connect_result(int fd)
{
    int e = 0;
    socklen_t l = sizeof e;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l) < 0) return -errno;
    return -e;
}

void net_addrs(int fd, char *addr, size_t addrcap, char *laddr, size_t laddrcap)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) net_fmt_addr(&ss, addr, addrcap);
    else snprintf(addr, addrcap, "?:0");
    sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) net_fmt_addr(&ss, laddr, laddrcap);
    else snprintf(laddr, laddrcap, "?:0");
}

void net_close_gently(int fd)
{
    char junk[4096];
    while (recv(fd, junk, sizeof junk, MSG_DONTWAIT) > 0) {
    }
    shutdown(fd, SHUT_WR);
    close(fd);
}
