/* respc.h -- the benchmark programs' minimal RESP2 client: blocking sockets,
 * a read buffer, command encoding, reply heads; the server's CPU time per
 * thread from /proc; a PING prober on its own connection.
 *
 * Header-only, like vecio.h: each benchmark is one translation unit, which
 * sets g_prog (for messages), g_host and g_port before opening a
 * connection, and g_server_pid for server_cpu().  Functions are static
 * inline so a program that uses only some of them compiles without
 * warnings.  Any I/O error or unexpected reply prints "<prog>: <what>" and
 * exits 2: a benchmark has no use for a half-broken connection.
 *
 * Threads: a conn belongs to one thread at a time; the prober runs its own
 * thread on its own conn. */
#ifndef ENGRAM_BENCH_RESPC_H
#define ENGRAM_BENCH_RESPC_H

#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *g_prog = "bench";

/* ---- small helpers ------------------------------------------------------- */

static inline void die(const char *msg, const char *arg)
{
    fprintf(stderr, "%s: %s%s%s\n", g_prog, msg, arg ? ": " : "", arg ? arg : "");
    exit(2);
}

static inline double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static inline void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) die("out of memory", NULL);
    return p;
}

static inline void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p) die("out of memory", NULL);
    return p;
}

static inline void sleep_us(long us)
{
    struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static inline double client_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec * 1e-6;
}

static inline int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ---- a growable byte buffer and RESP command encoding --------------------- */

typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static inline void buf_put(buf *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t c = b->cap ? b->cap : 4096;
        while (c < b->len + n) c *= 2;
        b->p = xrealloc(b->p, c);
        b->cap = c;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static inline void buf_fmt(buf *b, const char *s) { buf_put(b, s, strlen(s)); }

static inline void cmd_begin(buf *b, int argc)
{
    char h[32];
    snprintf(h, sizeof h, "*%d\r\n", argc);
    buf_fmt(b, h);
}

static inline void cmd_arg(buf *b, const void *p, size_t n)
{
    char h[32];
    snprintf(h, sizeof h, "$%zu\r\n", n);
    buf_fmt(b, h);
    buf_put(b, p, n);
    buf_put(b, "\r\n", 2);
}

static inline void cmd_str(buf *b, const char *s) { cmd_arg(b, s, strlen(s)); }

static inline void cmd_u(buf *b, unsigned long v)
{
    char s[32];
    snprintf(s, sizeof s, "%lu", v);
    cmd_str(b, s);
}

/* The vector as dim little-endian float32, whatever the host. */
static inline void cmd_vec(buf *b, const float *v, uint32_t dim)
{
    unsigned char *t = xmalloc((size_t)dim * 4);
    for (uint32_t j = 0; j < dim; j++) {
        uint32_t u;
        memcpy(&u, &v[j], 4);
        t[4 * j] = (unsigned char)u;
        t[4 * j + 1] = (unsigned char)(u >> 8);
        t[4 * j + 2] = (unsigned char)(u >> 16);
        t[4 * j + 3] = (unsigned char)(u >> 24);
    }
    cmd_arg(b, t, (size_t)dim * 4);
    free(t);
}

/* ---- a blocking connection with a read buffer ----------------------------- */

typedef struct conn {
    int fd;
    char *rb;
    size_t rlen, rpos, rcap;
} conn;

static const char *g_host;
static int g_port;

static inline conn *conn_open(void)
{
    char port[16];
    struct addrinfo hints, *res;
    snprintf(port, sizeof port, "%d", g_port);
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(g_host, port, &hints, &res);
    if (rc) die("getaddrinfo", gai_strerror(rc));
    int fd = -1;
    /* The server may still be starting: retry for a few seconds. */
    for (int tries = 0; fd < 0 && tries < 100; tries++) {
        for (struct addrinfo *a = res; a; a = a->ai_next) {
            fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
            if (fd < 0) continue;
            if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
            close(fd);
            fd = -1;
        }
        if (fd < 0) sleep_us(50000);
    }
    freeaddrinfo(res);
    if (fd < 0) die("cannot connect to the server", strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conn *c = xmalloc(sizeof *c);
    c->fd = fd;
    c->rcap = 1 << 16;
    c->rb = xmalloc(c->rcap);
    c->rlen = c->rpos = 0;
    return c;
}

static inline void conn_close(conn *c)
{
    close(c->fd);
    free(c->rb);
    free(c);
}

static inline void conn_write(conn *c, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(c->fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            die("write to server", strerror(errno));
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Read more bytes; keeps [rpos, rlen). */
static inline void conn_fill(conn *c)
{
    if (c->rpos > 0 && c->rpos == c->rlen) c->rpos = c->rlen = 0;
    if (c->rcap - c->rlen < 4096) {
        if (c->rpos > 0) {
            memmove(c->rb, c->rb + c->rpos, c->rlen - c->rpos);
            c->rlen -= c->rpos;
            c->rpos = 0;
        }
        if (c->rcap - c->rlen < 4096) {
            c->rcap *= 2;
            c->rb = xrealloc(c->rb, c->rcap);
        }
    }
    ssize_t n;
    do {
        n = read(c->fd, c->rb + c->rlen, c->rcap - c->rlen);
    } while (n < 0 && errno == EINTR);
    if (n < 0) die("read from server", strerror(errno));
    if (n == 0) die("server closed the connection", NULL);
    c->rlen += (size_t)n;
}

/* One CRLF-terminated line (without the CRLF); valid until the next read. */
static inline const char *conn_line(conn *c, size_t *len)
{
    size_t scan = c->rpos;
    for (;;) {
        for (; scan + 1 < c->rlen; scan++) {
            if (c->rb[scan] == '\r' && c->rb[scan + 1] == '\n') {
                const char *l = c->rb + c->rpos;
                *len = scan - c->rpos;
                c->rpos = scan + 2;
                return l;
            }
        }
        size_t off = scan - c->rpos;
        conn_fill(c);            /* may move the data: keep the offset */
        scan = c->rpos + off;
    }
}

/* n bytes plus CRLF; valid until the next read. */
static inline const char *conn_bytes(conn *c, size_t n)
{
    while (c->rlen - c->rpos < n + 2) conn_fill(c);
    const char *p = c->rb + c->rpos;
    c->rpos += n + 2;
    return p;
}

/* The reply value in a small tree-free form: callers say what they expect.
 * Any reply starting with '-' is an error: its text goes to err. */
typedef struct rval {
    char type;              /* + - : $ * (RESP2) */
    long long n;            /* integer, bulk length, or array length */
    const char *s;          /* +/-/$ text (until the next read) */
    size_t slen;
} rval;

static inline void conn_head(conn *c, rval *v)
{
    size_t len;
    const char *l = conn_line(c, &len);
    if (len < 1) die("empty reply line", NULL);
    v->type = l[0];
    v->s = l + 1;
    v->slen = len - 1;
    v->n = 0;
    switch (v->type) {
    case '+':
    case '-':
        return;
    case ':':
    case '$':
    case '*':
        v->n = strtoll(l + 1, NULL, 10);
        if (v->type == '$' && v->n >= 0) {
            v->s = conn_bytes(c, (size_t)v->n);
            v->slen = (size_t)v->n;
        }
        return;
    default:
        die("unexpected reply type (RESP2 expected)", NULL);
    }
}

static inline void die_reply(const char *what, const rval *v)
{
    char msg[256];
    snprintf(msg, sizeof msg, "%s: %.*s", what, (int)(v->slen < 200 ? v->slen : 200), v->s);
    die(msg, NULL);
}

/* One command, one reply head (the caller reads the rest if any). */
static inline void conn_call(conn *c, const buf *cmd, rval *v)
{
    conn_write(c, cmd->p, cmd->len);
    conn_head(c, v);
}

/* Read and drop the rest of a reply whose head is v (arrays recursively;
 * RESP2 only, so maps never appear). */
static inline void conn_skip(conn *c, const rval *v)
{
    if (v->type != '*') return;
    for (long long i = 0; i < v->n; i++) {
        rval e;
        conn_head(c, &e);
        conn_skip(c, &e);
    }
}

/* Send the argc NUL-terminated words as one command; its reply head in *v
 * (the caller reads the rest, or conn_skip()s it). */
static inline void conn_cmdv(conn *c, rval *v, int argc, const char *const *argv)
{
    buf b = { 0 };
    cmd_begin(&b, argc);
    for (int i = 0; i < argc; i++) cmd_str(&b, argv[i]);
    conn_call(c, &b, v);
    free(b.p);
}

/* ---- server CPU time from /proc (Linux; zeros elsewhere) ------------------ */

typedef struct srv_cpu {
    double loop_s, workers_s;
    double loop_wait_s;             /* the loop thread's time runnable but not running */
    unsigned long long loop_runs;   /* times the loop thread was scheduled in */
    int ok;
} srv_cpu;

static int g_server_pid;

/* schedstat: "cpu_ns wait_ns timeslices"; *wait gets the second (in
 * seconds) and *runs the third (0 when only /proc/.../stat is there). */
static inline double task_cpu_s(int pid, const char *tid, unsigned long long *runs, double *wait)
{
    char path[128];
    FILE *f;
    *runs = 0;
    *wait = 0;
    snprintf(path, sizeof path, "/proc/%d/task/%s/schedstat", pid, tid);
    if ((f = fopen(path, "r"))) {
        unsigned long long ns = 0, wait_ns = 0;
        int got = fscanf(f, "%llu %llu %llu", &ns, &wait_ns, runs);
        fclose(f);
        *wait = wait_ns * 1e-9;
        if (got >= 1) return ns * 1e-9;
    }
    snprintf(path, sizeof path, "/proc/%d/task/%s/stat", pid, tid);
    if (!(f = fopen(path, "r"))) return 0;
    char line[1024];
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = '\0';
    char *p = strrchr(line, ')');
    unsigned long ut = 0, st = 0;
    /* after ") ": state ppid pgrp session tty tpgid flags minflt cminflt
     * majflt cmajflt utime stime */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static inline srv_cpu server_cpu(void)
{
    srv_cpu r = { 0, 0, 0, 0, 0 };
    if (g_server_pid <= 0) return r;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", g_server_pid);
    DIR *d = opendir(path);
    if (!d) return r;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        unsigned long long runs;
        double wait;
        double s = task_cpu_s(g_server_pid, e->d_name, &runs, &wait);
        if (atoi(e->d_name) == g_server_pid) {
            r.loop_s += s;
            r.loop_wait_s = wait;
            r.loop_runs = runs;
        } else {
            r.workers_s += s;
        }
    }
    closedir(d);
    r.ok = 1;
    return r;
}

/* Appends ,"server_cpu_s":..,... for the interval [a, b] of wall time t. */
static inline void print_cpu(srv_cpu a, srv_cpu b, double cli0, double cli1, double t)
{
    if (a.ok && b.ok) {
        double loop = b.loop_s - a.loop_s, work = b.workers_s - a.workers_s;
        printf(",\"server_cpu_s\":%.3f,\"server_loop_cpu_s\":%.3f,\"server_workers_cpu_s\":%.3f,"
               "\"server_cores\":%.2f,\"server_loop_runs\":%llu",
               loop + work, loop, work, (loop + work) / t, b.loop_runs - a.loop_runs);
    }
    printf(",\"client_cpu_s\":%.3f", cli1 - cli0);
}

/* ---- the PING prober ---------------------------------------------------------- */

/* A thread on its own connection: send one PING, wait for +PONG, record the
 * round trip in microseconds, sleep interval_us, repeat until stopped.
 * Each sample also keeps its start time (seconds, now_s()), so a caller can
 * pick out the samples of an interval. */
typedef struct pinger {
    conn *c;
    long interval_us;
    pthread_t th;
    atomic_int stop;
    double *lat, *at;
    size_t n, cap;
} pinger;

static inline void *pinger_main(void *arg)
{
    pinger *p = arg;
    static const char cmd[] = "*1\r\n$4\r\nPING\r\n";
    while (!atomic_load(&p->stop)) {
        double t0 = now_s();
        conn_write(p->c, cmd, sizeof cmd - 1);
        rval v;
        conn_head(p->c, &v);
        double t = now_s() - t0;
        if (v.type != '+') die_reply("PING", &v);
        if (p->n == p->cap) {
            p->cap = p->cap ? p->cap * 2 : 4096;
            p->lat = xrealloc(p->lat, p->cap * sizeof *p->lat);
            p->at = xrealloc(p->at, p->cap * sizeof *p->at);
        }
        p->at[p->n] = t0;
        p->lat[p->n++] = t * 1e6;
        if (p->interval_us > 0) sleep_us(p->interval_us);
    }
    return NULL;
}

static inline void pinger_start(pinger *p)
{
    p->n = 0;
    atomic_store(&p->stop, 0);
    if (pthread_create(&p->th, NULL, pinger_main, p)) die("pthread_create", NULL);
}

static inline void pinger_stop(pinger *p)
{
    atomic_store(&p->stop, 1);
    pthread_join(p->th, NULL);
}

/* ,"samples":n,"p50_us":..,"p99_us":..,"max_us":.. over lat[0..n) (sorted
 * in place). */
static inline void print_latency(double *lat, size_t n)
{
    printf(",\"samples\":%zu", n);
    if (!n) return;
    qsort(lat, n, sizeof *lat, cmp_double);
    size_t i99 = (size_t)(n * 0.99);
    if (i99 >= n) i99 = n - 1;
    printf(",\"p50_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f", lat[n / 2], lat[i99], lat[n - 1]);
}

#endif
