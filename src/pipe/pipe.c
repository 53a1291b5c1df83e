/* pipe.c -- engram-pipe: stream text lines into an engram index, search it
 * by text, or both at once (the "semantic radar").
 *
 *   tail -f app.log | engram-pipe --index logs --create
 *   engram-pipe --index logs --query "disk failure" -k 5
 *   tail -f app.log | engram-pipe --index logs --watch "disk failure" --maxdist 0.4
 *
 * One process, one thread, one server connection, poll() on stdin and the
 * socket.  The wire format lives in pipe_resp.c; this file owns the command
 * line, stdin framing, the in-flight queue, reconnection and the output.
 *
 * Input framing.  A line ends in \n; one \r before it is dropped; empty lines
 * are skipped; every other byte (NUL, invalid UTF-8) is sent as it is.  A
 * line longer than --max-line (default 64 KiB) is cut to that many bytes and
 * the rest of it is dropped: this bounds the memory a stuck server can make
 * us hold (window x max-line) and keeps one pasted binary blob from becoming
 * a 100 MB payload.  A last line without \n is sent at EOF.  A line the
 * server cannot embed ("ERR text has no words to embed": separators such as
 * "-----") is skipped and counted; every other error reply is fatal.
 *
 * Batching and back-pressure.  Every line becomes `VADD index * TEXT line`,
 * encoded once and kept in a ring (reqq) until its reply arrives.  Each loop
 * turn takes every line already buffered from stdin (up to the window of
 * PIPE_WINDOW commands in flight), writes all unsent commands at once, and
 * only then polls.  So a fast producer yields batches as large as one read()
 * of stdin, and a slow `tail -f` sees each line sent the moment it arrives:
 * "stdin has nothing more ready" is exactly when we go back to poll().  When
 * the window is full we stop reading stdin and wait for replies; the
 * producer then blocks on its full pipe.  That is the back-pressure.
 *
 * Reconnect (at-least-once).  A command leaves the ring only when its reply
 * has been read.  When the connection breaks (EOF, reset, write error) or the
 * server answers -LOADING, the socket is closed, the reader's partial bytes
 * are dropped, and every command still in the ring is marked unsent; after a
 * new connection (and AUTH, and --create's VNEW) they are written again in
 * the same order.  A command the old server executed but whose reply was
 * lost is therefore executed twice: with `*` keys that is a duplicate line
 * under a new id, never a lost one.  Retries back off from 50 ms to 1 s and
 * give up (exit 2) when --retry-secs have passed since the last good reply.
 * The first connection is not retried: a wrong --port fails at once.  A
 * connection that breaks while nothing is in flight is only re-opened when
 * there is something to send.  Query mode never retries.
 *
 * Watch.  Lines are sent as batches (up to PIPE_WINDOW VADDs) and each batch
 * is followed by `VSEARCH index TEXT query k MAXDIST d`.  The VADD replies
 * give the batch's ids; the search result's keys that are among them are the
 * new lines within the radius, printed in id order with the search's
 * distance and the line we sent (which is the stored payload).  Only one
 * batch is in flight in watch mode, so a re-query below sees no later line.
 * Older lines inside the radius compete for the k places (equal distances
 * are ordered oldest first), so k starts at batch size + the number of hits
 * of the previous search + 16, and when a result comes back full (k hits)
 * with some batch line unaccounted for, the search is repeated with 4k (up
 * to the server's 10000).  Exact on a FLAT index until more than ~10000
 * stored lines lie within the radius; on HNSW the search itself is
 * approximate, so a close line can occasionally be missed.
 *
 * Output (--query, --watch).  `distance<TAB>key<TAB>payload\n`, distance as
 * the server wrote it.  In key and payload the bytes \ TAB LF CR are written
 * as the two characters \\ \t \n \r, so one result is one line; every other
 * byte is copied.  A missing payload is an empty field.  With --json each
 * result is one object {"key":"..","distance":N,"payload":".."} (payload
 * null when missing); strings are valid JSON: " \ and control characters are
 * escaped, valid UTF-8 is copied, and each byte that is not part of valid
 * UTF-8 becomes \u00XX (XX = the byte).  Since valid non-ASCII characters
 * are never escaped, a \u0080..\u00ff escape always means a raw byte, so the
 * original bytes can be recovered exactly.
 *
 * Exit status: 0 done (EOF and every reply in), 1 usage, 2 cannot connect or
 * connection lost for good, 3 the server answered an error (or nonsense),
 * 4 local error (stdin or stdout I/O, out of memory).  A closed stdout
 * (| head) ends the process by SIGPIPE, as for any filter.  Messages go to
 * stderr only, prefixed "engram-pipe: ".
 *
 * Signals: SIGPIPE is ignored (a dead server must be an EPIPE we can
 * retry, on every platform); SIGINT/SIGTERM keep their default action, so
 * lines in flight at that moment may be lost. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "engram/check.h"
#include "engram/mem.h"
#include "engram/util.h"
#include "pipe_resp.h"

#define PIPE_WINDOW 256                      /* commands in flight */
#define PIPE_MAX_LINE_DEFAULT (64u * 1024)
#define PIPE_MAX_LINE_LIMIT (512u * 1024 * 1024 - 4096)  /* under the server's bulk cap */
#define PIPE_READ_CHUNK (64u * 1024)
#define PIPE_K_MAX 10000
#define PIPE_CONNECT_TIMEOUT_MS 5000

enum {
    PIPE_EXIT_OK = 0,
    PIPE_EXIT_USAGE = 1,
    PIPE_EXIT_CONNECT = 2,
    PIPE_EXIT_SERVER = 3,
    PIPE_EXIT_IO = 4
};

/* Connection-level outcomes besides -errno (private; pipe_resp uses -102xx). */
#define PIPE_ECLOSED  (-10290)   /* the server closed the connection */
#define PIPE_ELOADING (-10291)   /* the server is loading its data set */

typedef struct opts {
    const char *index, *query, *watch, *maxdist;
    const char *host, *password;
    const char *embed, *metric, *type;
    int port;
    long long k, dim, capacity, retry_secs;
    size_t max_line;
    int create, json, progress;
} opts;

static void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void die(int code, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fputs("engram-pipe: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(code);
}

/* ---- command line ------------------------------------------------------------ */

static void pipe_usage(FILE *f)
{
    fprintf(f,
"Usage: engram-pipe --index NAME [options] < lines        ingest stdin\n"
"       engram-pipe --index NAME --query TEXT [-k N] [--maxdist D] [--json]\n"
"       engram-pipe --index NAME --watch TEXT --maxdist D [--json] < lines\n"
"\n"
"Streams text lines into an engram vector index (each line becomes\n"
"VADD NAME * TEXT <line>), searches it by text, or both at once.\n"
"\n"
"Modes:\n"
"  (default)         ingest stdin until EOF, then exit once every reply is in\n"
"  --query TEXT      print the k stored lines nearest to TEXT and exit\n"
"  --watch TEXT      ingest stdin and print each new line within --maxdist of\n"
"                    TEXT as it arrives (approximate on HNSW indices)\n"
"\n"
"Options:\n"
"  --index NAME      the index (required)\n"
"  -k, --k N         results for --query (default 10, 0..10000)\n"
"  --maxdist D       only results at distance <= D (required with --watch)\n"
"  --json            one JSON object per result: {\"key\",\"distance\",\"payload\"}\n"
"  --create          create the index if missing:\n"
"                    VNEW NAME DIM [METRIC m] [TYPE t] [CAPACITY n] EMBED e\n"
"                    (an existing index is used as it is)\n"
"  --dim D           dimension for --create (default 256)\n"
"  --embed NAME      embedder for --create (default hash)\n"
"  --metric M        metric for --create: cosine, l2 or dot (server default)\n"
"  --type T          index type for --create: hnsw or flat (server default)\n"
"  --capacity N      for --create: the index keeps at most N lines\n"
"  --host HOST       server host (default 127.0.0.1)\n"
"  --port PORT       server port (default 6380)\n"
"  --password PASS   AUTH PASS after connecting\n"
"  --retry-secs S    when the connection is lost, reconnect for up to S seconds\n"
"                    and resend unanswered commands (default 30; 0 = give up)\n"
"  --max-line BYTES  cut longer lines to BYTES (default 65536)\n"
"  --progress        print \"N lines/s, M total\" on stderr about once a second\n"
"  -h, --help        this text\n"
"  --version         print the version\n"
"\n"
"Input: a line ends in \\n, a \\r before it is dropped, empty lines are skipped,\n"
"any other bytes are sent as they are; lines the server finds no word in\n"
"(\"-----\") are skipped.  Up to %d commands are in flight;\n"
"delivery is at-least-once: a reconnect may store a line twice.\n"
"\n"
"Output (--query, --watch): distance<TAB>key<TAB>payload, one result per line;\n"
"in key and payload, backslash, tab, newline and CR are written as \\\\ \\t \\n \\r.\n"
"--json: valid JSON; bytes that are not UTF-8 are written as \\u00XX.\n"
"\n"
"Exit status: 0 ok, 1 usage error, 2 server unreachable or connection lost\n"
"for good, 3 the server replied an error, 4 local error (stdin/stdout I/O,\n"
"out of memory).\n",
            PIPE_WINDOW);
}

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("engram-pipe: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'engram-pipe --help'.\n", stderr);
    exit(PIPE_EXIT_USAGE);
}

static long long opt_int(const char *name, const char *s, long long lo, long long hi)
{
    long long v;
    if (!util_str2ll(s, strlen(s), &v) || v < lo || v > hi)
        usage_error("%s must be an integer between %lld and %lld, got '%s'", name, lo, hi, s);
    return v;
}

static void opts_parse(opts *o, int argc, char **argv)
{
    enum { O_INDEX = 256, O_QUERY, O_WATCH, O_MAXDIST, O_JSON, O_CREATE, O_DIM, O_EMBED,
           O_METRIC, O_TYPE, O_CAPACITY, O_HOST, O_PORT, O_PASSWORD, O_RETRY, O_MAXLINE,
           O_PROGRESS, O_VERSION };
    static const struct option longopts[] = {
        {"index", required_argument, NULL, O_INDEX},
        {"query", required_argument, NULL, O_QUERY},
        {"watch", required_argument, NULL, O_WATCH},
        {"k", required_argument, NULL, 'k'},
        {"maxdist", required_argument, NULL, O_MAXDIST},
        {"json", no_argument, NULL, O_JSON},
        {"create", no_argument, NULL, O_CREATE},
        {"dim", required_argument, NULL, O_DIM},
        {"embed", required_argument, NULL, O_EMBED},
        {"metric", required_argument, NULL, O_METRIC},
        {"type", required_argument, NULL, O_TYPE},
        {"capacity", required_argument, NULL, O_CAPACITY},
        {"host", required_argument, NULL, O_HOST},
        {"port", required_argument, NULL, O_PORT},
        {"password", required_argument, NULL, O_PASSWORD},
        {"retry-secs", required_argument, NULL, O_RETRY},
        {"max-line", required_argument, NULL, O_MAXLINE},
        {"progress", no_argument, NULL, O_PROGRESS},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, O_VERSION},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof(*o));
    o->host = "127.0.0.1";
    o->port = 6380;
    o->k = 10;
    o->dim = 256;
    o->capacity = -1;
    o->embed = "hash";
    o->retry_secs = 30;
    o->max_line = PIPE_MAX_LINE_DEFAULT;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":k:h", longopts, NULL)) != -1) {
        switch (c) {
        case O_INDEX: o->index = optarg; break;
        case O_QUERY: o->query = optarg; break;
        case O_WATCH: o->watch = optarg; break;
        case 'k': o->k = opt_int("-k", optarg, 0, PIPE_K_MAX); break;
        case O_MAXDIST: {
            double d;
            if (!util_str2d(optarg, strlen(optarg), &d) || !isfinite(d))
                usage_error("--maxdist must be a finite number, got '%s'", optarg);
            o->maxdist = optarg;
            break;
        }
        case O_JSON: o->json = 1; break;
        case O_CREATE: o->create = 1; break;
        case O_DIM: o->dim = opt_int("--dim", optarg, 1, 65536); break;
        case O_EMBED: o->embed = optarg; break;
        case O_METRIC: o->metric = optarg; break;
        case O_TYPE: o->type = optarg; break;
        case O_CAPACITY: o->capacity = opt_int("--capacity", optarg, 1, LLONG_MAX); break;
        case O_HOST: o->host = optarg; break;
        case O_PORT: o->port = (int)opt_int("--port", optarg, 1, 65535); break;
        case O_PASSWORD: o->password = optarg; break;
        case O_RETRY: o->retry_secs = opt_int("--retry-secs", optarg, 0, 86400 * 365); break;
        case O_MAXLINE:
            o->max_line = (size_t)opt_int("--max-line", optarg, 1, PIPE_MAX_LINE_LIMIT);
            break;
        case O_PROGRESS: o->progress = 1; break;
        case 'h': pipe_usage(stdout); exit(PIPE_EXIT_OK);
        case O_VERSION: printf("engram-pipe %s\n", ENGRAM_VERSION); exit(PIPE_EXIT_OK);
        case ':': usage_error("option '%s' needs a value", argv[optind - 1]);
        default:
            if (optopt > 0 && optopt < 256)
                usage_error("unknown option '-%c'", optopt);
            usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        usage_error("unexpected argument '%s'", argv[optind]);
    if (!o->index || !*o->index)
        usage_error("--index NAME is required");
    if (o->query && o->watch)
        usage_error("--query and --watch cannot be used together");
    if (o->watch && !o->maxdist)
        usage_error("--watch needs --maxdist (the radius of the standing query)");
    if (o->capacity > 0 && !o->create)
        usage_error("--capacity only applies with --create");
}

/* ---- output -------------------------------------------------------------------- */

static void out_fail(void) __attribute__((noreturn));
static void out_fail(void)
{
    if (errno == EPIPE) {
        /* The reader went away (| head): end as any filter does. */
        signal(SIGPIPE, SIG_DFL);
        raise(SIGPIPE);
    }
    int e = errno;
    fprintf(stderr, "engram-pipe: write error on stdout: %s\n", strerror(e));
    exit(PIPE_EXIT_IO);
}

static void out_flush(void)
{
    if (fflush(stdout) != 0)
        out_fail();
}

static void out_bytes(const void *p, size_t n)
{
    if (n && fwrite(p, 1, n, stdout) != n)
        out_fail();
}

static void out_tsv_field(const char *s, size_t n)
{
    size_t run = 0;   /* bytes copied as they are, written in one fwrite */
    for (size_t i = 0; i < n; i++) {
        const char *esc = NULL;
        switch (s[i]) {
        case '\\': esc = "\\\\"; break;
        case '\t': esc = "\\t"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        default: continue;
        }
        out_bytes(s + run, i - run);
        out_bytes(esc, 2);
        run = i + 1;
    }
    out_bytes(s + run, n - run);
}

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no
 * surrogates, at most U+10FFFF), or 0 if s does not start one. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;   /* allowed range of the 2nd byte */
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) { len = 3; lo = 0xA0; }
    else if (c >= 0xE1 && c <= 0xEC) len = 3;
    else if (c == 0xED) { len = 3; hi = 0x9F; }
    else if (c >= 0xEE && c <= 0xEF) len = 3;
    else if (c == 0xF0) { len = 4; lo = 0x90; }
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else if (c == 0xF4) { len = 4; hi = 0x8F; }
    else return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

static void out_json_string(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    out_bytes("\"", 1);
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        char esc[8];
        if (c >= 0x80) {
            size_t k = utf8_seq(s + i, n - i);
            if (k) {
                out_bytes(s + i, k);
                i += k;
                continue;
            }
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            out_bytes(esc, 6);
        } else if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            out_bytes(esc, 2);
        } else if (c == '\n') {
            out_bytes("\\n", 2);
        } else if (c == '\r') {
            out_bytes("\\r", 2);
        } else if (c == '\t') {
            out_bytes("\\t", 2);
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            out_bytes(esc, 6);
        } else {
            out_bytes(s + i, 1);
        }
        i++;
    }
    out_bytes("\"", 1);
}

/* JSON's number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int json_number_ok(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && s[i] == '-') i++;
    if (i >= n) return 0;
    if (s[i] == '0') i++;
    else if (s[i] >= '1' && s[i] <= '9') while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    else return 0;
    if (i < n && s[i] == '.') {
        size_t d = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
        if (i == d) return 0;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        size_t d = i;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
        if (i == d) return 0;
    }
    return i == n;
}

/* One result.  payload NULL = none stored. */
static void out_hit(const opts *o, const char *dist, size_t distlen, const char *key, size_t keylen,
                    const char *payload, size_t paylen)
{
    if (o->json) {
        out_bytes("{\"key\":", 7);
        out_json_string(key, keylen);
        out_bytes(",\"distance\":", 12);
        if (json_number_ok(dist, distlen))
            out_bytes(dist, distlen);
        else
            out_json_string(dist, distlen);   /* "inf", "nan": keep it parseable */
        out_bytes(",\"payload\":", 11);
        if (payload)
            out_json_string(payload, paylen);
        else
            out_bytes("null", 4);
        out_bytes("}\n", 2);
    } else {
        out_tsv_field(dist, distlen);
        out_bytes("\t", 1);
        out_tsv_field(key, keylen);
        out_bytes("\t", 1);
        if (payload)
            out_tsv_field(payload, paylen);
        out_bytes("\n", 1);
    }
}

/* ---- connection ----------------------------------------------------------------- */

typedef struct peer {
    int fd;                 /* -1 while disconnected */
    pipe_reader rd;
} peer;

static const char *peer_strerror(int err)
{
    if (err == PIPE_ECLOSED)
        return "connection closed by server";
    if (err == PIPE_ELOADING)
        return "server is loading its data set";
    return pipe_resp_strerror(err);
}

static int fd_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    return 0;
}

/* Wait for events on fd; returns revents, or -errno; 0 on timeout. */
static int fd_wait(int fd, short events, int timeout_ms)
{
    struct pollfd p = {fd, events, 0};
    for (;;) {
        int rc = poll(&p, 1, timeout_ms);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            return -errno;
        return rc == 0 ? 0 : p.revents;
    }
}

/* A non-blocking TCP connection to host:port, or -1 with the cause in why. */
static int tcp_connect(const char *host, int port, int timeout_ms, char *why, size_t whylen)
{
    struct addrinfo hints, *res, *ai;
    char ps[16];
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(ps, sizeof(ps), "%d", port);
    int rc = getaddrinfo(host, ps, &hints, &res);
    if (rc != 0) {
        snprintf(why, whylen, "%s", gai_strerror(rc));
        return -1;
    }
    int fd = -1, last = ECONNREFUSED;
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) {
            last = errno;
            continue;
        }
        if (fd_nonblock(fd) == 0) {
            if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
                break;
            last = errno;
            if (errno == EINPROGRESS) {
                int ev = fd_wait(fd, POLLOUT, timeout_ms);
                int soerr = 0;
                socklen_t sl = sizeof(soerr);
                if (ev == 0)
                    last = ETIMEDOUT;
                else if (ev < 0)
                    last = -ev;
                else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
                    break;
                else
                    last = soerr ? soerr : errno;
            }
        } else {
            last = errno;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(why, whylen, "%s", strerror(last));
        return -1;
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static void peer_close(peer *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    pipe_reader_reset(&c->rd);
}

/* Read what the socket has into the reader.  Returns bytes read (> 0),
 * -EAGAIN when nothing is ready, PIPE_ECLOSED at EOF, or -errno. */
static ssize_t peer_fill(peer *c)
{
    char tmp[PIPE_READ_CHUNK];
    for (;;) {
        ssize_t n = read(c->fd, tmp, sizeof(tmp));
        if (n > 0) {
            if (pipe_reader_feed(&c->rd, tmp, (size_t)n) < 0)
                die(PIPE_EXIT_IO, "out of memory");
            return n;
        }
        if (n == 0)
            return PIPE_ECLOSED;
        if (errno == EINTR)
            continue;
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}

/* Blocking helpers for the few synchronous exchanges (AUTH, VNEW, query).
 * Return 0 or a negative connection error. */
static int peer_write_all(peer *c, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(c->fd, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int ev = fd_wait(c->fd, POLLOUT, -1);
            if (ev < 0)
                return ev;
            continue;
        }
        return w < 0 ? -errno : -EIO;
    }
    return 0;
}

static int peer_read_reply(peer *c, pipe_reply **out)
{
    for (;;) {
        int rc = pipe_reader_next(&c->rd, out);
        if (rc == 1)
            return 0;
        if (rc < 0)
            return rc;
        int ev = fd_wait(c->fd, POLLIN, -1);
        if (ev < 0)
            return ev;
        ssize_t n = peer_fill(c);
        if (n < 0 && n != -EAGAIN)
            return (int)n;
    }
}

static int peer_call(peer *c, int argc, const char **argv, const size_t *lens, pipe_reply **out)
{
    size_t n = pipe_resp_encoded_len(argc, lens);
    char *wire = mem_alloc(n);
    pipe_resp_encode(wire, argc, argv, lens);
    int rc = peer_write_all(c, wire, n);
    mem_free(wire);
    return rc < 0 ? rc : peer_read_reply(c, out);
}

static int starts_with(const pipe_reply *r, const char *prefix)
{
    size_t n = strlen(prefix);
    return r->str && r->len >= n && memcmp(r->str, prefix, n) == 0;
}

/* An error reply ends the program (exit 3), with a hint when we know one. */
static void server_error(const opts *o, const pipe_reply *r) __attribute__((noreturn));
static void server_error(const opts *o, const pipe_reply *r)
{
    const char *hint = "";
    if (starts_with(r, "ERR no such index") && !o->create)
        hint = " (use --create)";
    else if (starts_with(r, "NOAUTH") && !o->password)
        hint = " (use --password)";
    die(PIPE_EXIT_SERVER, "server: %.*s%s", (int)r->len, r->str ? r->str : "", hint);
}

static void unexpected_reply(const char *what) __attribute__((noreturn));
static void unexpected_reply(const char *what)
{
    die(PIPE_EXIT_SERVER, "server: unexpected reply to %s", what);
}

/* After a connection is made: AUTH, then --create's VNEW.  Returns 0, or a
 * connection error / PIPE_ELOADING (the caller may retry); exits 3 on any
 * other error reply. */
static int peer_setup(peer *c, const opts *o)
{
    pipe_reply *r = NULL;
    int rc;
    if (o->password) {
        const char *argv[] = {"AUTH", o->password};
        size_t lens[] = {4, strlen(o->password)};
        if ((rc = peer_call(c, 2, argv, lens, &r)) < 0)
            return rc;
        if (r->type == PIPE_REPLY_ERROR)
            server_error(o, r);
        pipe_reply_free(r);
    }
    if (o->create) {
        char dim[24], cap[24];
        const char *argv[12];
        size_t lens[12];
        int n = 0;
        snprintf(dim, sizeof(dim), "%lld", o->dim);
        snprintf(cap, sizeof(cap), "%lld", o->capacity);
        argv[n++] = "VNEW";
        argv[n++] = o->index;
        argv[n++] = dim;
        if (o->metric) { argv[n++] = "METRIC"; argv[n++] = o->metric; }
        if (o->type) { argv[n++] = "TYPE"; argv[n++] = o->type; }
        if (o->capacity > 0) { argv[n++] = "CAPACITY"; argv[n++] = cap; }
        argv[n++] = "EMBED";
        argv[n++] = o->embed;
        for (int i = 0; i < n; i++)
            lens[i] = strlen(argv[i]);
        if ((rc = peer_call(c, n, argv, lens, &r)) < 0)
            return rc;
        if (r->type == PIPE_REPLY_ERROR && starts_with(r, "LOADING")) {
            pipe_reply_free(r);
            return PIPE_ELOADING;
        }
        /* An existing index is used as it is, whatever its settings. */
        if (r->type == PIPE_REPLY_ERROR && !starts_with(r, "ERR index already exists"))
            server_error(o, r);
        pipe_reply_free(r);
    }
    return 0;
}

/* The first connection: failures are final (exit 2). */
static void peer_open(peer *c, const opts *o)
{
    char why[256];
    pipe_reader_init(&c->rd);
    c->fd = tcp_connect(o->host, o->port, PIPE_CONNECT_TIMEOUT_MS, why, sizeof(why));
    if (c->fd < 0)
        die(PIPE_EXIT_CONNECT, "cannot connect to %s:%d: %s", o->host, o->port, why);
    int rc = peer_setup(c, o);
    if (rc < 0)
        die(PIPE_EXIT_CONNECT, "connection to %s:%d failed: %s", o->host, o->port,
            peer_strerror(rc));
}

/* ---- stdin lines -------------------------------------------------------------------- */

typedef struct linebuf {
    char *buf;
    size_t cap, start, end;   /* unconsumed bytes are buf[start..end) */
    size_t scanned;           /* bytes after start known to hold no \n */
    size_t max;               /* longer lines are cut to max bytes */
    int eof;
    int skipping;             /* dropping the rest of a cut line */
    unsigned long long cut;   /* lines cut so far */
} linebuf;

/* One read() of stdin.  Returns > 0, 0 at EOF, or -errno.  Only called when
 * no whole line is buffered, so at most max bytes are kept across it. */
static ssize_t linebuf_fill(linebuf *l)
{
    if (l->start > 0) {
        memmove(l->buf, l->buf + l->start, l->end - l->start);
        l->end -= l->start;
        l->start = 0;
    }
    if (l->cap - l->end < PIPE_READ_CHUNK) {
        size_t cap = l->cap ? l->cap * 2 : 2 * PIPE_READ_CHUNK;
        if (cap < l->end + PIPE_READ_CHUNK)
            cap = l->end + PIPE_READ_CHUNK;
        l->buf = mem_realloc(l->buf, cap);
        l->cap = cap;
    }
    for (;;) {
        ssize_t n = read(0, l->buf + l->end, l->cap - l->end);
        if (n >= 0) {
            l->end += (size_t)n;
            if (n == 0)
                l->eof = 1;
            return n;
        }
        if (errno != EINTR)
            return -errno;
    }
}

/* The next non-empty line: 1 with *p and *n (valid until the next fill), or 0
 * when no whole line is buffered. */
static int linebuf_next(linebuf *l, const char **p, size_t *n)
{
    for (;;) {
        char *s = l->buf + l->start;
        size_t avail = l->end - l->start;
        if (avail == 0)
            return 0;
        /* Never rescan: a long line arriving in many reads stays linear. */
        char *nl = memchr(s + l->scanned, '\n', avail - l->scanned);
        l->scanned = nl ? 0 : avail;
        if (l->skipping) {
            if (!nl) {
                l->start = l->end;
                l->scanned = 0;
                return 0;
            }
            l->start += (size_t)(nl - s) + 1;
            l->skipping = 0;
            continue;
        }
        size_t len;
        if (nl) {
            len = (size_t)(nl - s);
            l->start += len + 1;
        } else if (avail > l->max) {
            /* Unterminated and already too long: send the head, drop the rest. */
            len = avail;
            l->start = l->end;
            l->scanned = 0;
            l->skipping = 1;
        } else if (l->eof) {
            len = avail;
            l->start = l->end;
            l->scanned = 0;
        } else {
            return 0;
        }
        if (len > 0 && s[len - 1] == '\r' && !l->skipping)
            len--;
        if (len > l->max) {
            len = l->max;
            l->cut++;
        }
        if (len == 0)
            continue;
        *p = s;
        *n = len;
        return 1;
    }
}

/* ---- in-flight queue ------------------------------------------------------------------ */

enum { REQ_VADD = 1, REQ_VSEARCH };

typedef struct req {
    char *wire;
    size_t len;
    int kind;
    size_t text_off, text_len;   /* VADD: the line inside wire */
} req;

typedef struct reqq {
    req v[2 * PIPE_WINDOW];      /* window VADDs + a watch search, with room */
    size_t head, count;
    size_t sent;                 /* entries from head written completely */
    size_t sent_off;             /* bytes of entry `sent` written */
} reqq;

#define REQQ_CAP (2 * PIPE_WINDOW)

static req *reqq_at(reqq *q, size_t i)
{
    return &q->v[(q->head + i) % REQQ_CAP];
}

static req *reqq_push(reqq *q, int kind, int argc, const char **argv, const size_t *lens)
{
    CHECK(q->count < REQQ_CAP);
    req *m = reqq_at(q, q->count++);
    m->len = pipe_resp_encoded_len(argc, lens);
    m->wire = mem_alloc(m->len);
    pipe_resp_encode(m->wire, argc, argv, lens);
    m->kind = kind;
    m->text_len = lens[argc - 1];
    m->text_off = m->len - 2 - m->text_len;
    return m;
}

static void reqq_pop(reqq *q)
{
    req *m = reqq_at(q, 0);
    mem_free(m->wire);
    m->wire = NULL;
    q->head = (q->head + 1) % REQQ_CAP;
    q->count--;
    q->sent--;
}

/* Write unsent commands without blocking.  Returns 0 (all written or the
 * socket is full) or -errno. */
static int reqq_flush(reqq *q, int fd)
{
    while (q->sent < q->count) {
        struct iovec iov[64];
        int n = 0;
        for (size_t i = q->sent; i < q->count && n < 64; i++) {
            req *m = reqq_at(q, i);
            size_t off = i == q->sent ? q->sent_off : 0;
            iov[n].iov_base = m->wire + off;
            iov[n].iov_len = m->len - off;
            n++;
        }
        ssize_t w = writev(fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return -errno;
        }
        size_t left = (size_t)w;
        while (left > 0) {
            req *m = reqq_at(q, q->sent);
            size_t rest = m->len - q->sent_off;
            if (left >= rest) {
                left -= rest;
                q->sent++;
                q->sent_off = 0;
            } else {
                q->sent_off += left;
                left = 0;
            }
        }
    }
    return 0;
}

/* ---- watch batches ---------------------------------------------------------------------- */

typedef struct watch_line {
    char *id, *line, *dist;      /* dist: NULL until the search places it */
    size_t idlen, linelen, distlen;
} watch_line;

typedef struct watch {
    int open;                    /* a batch (VADDs + search) is in flight */
    watch_line v[PIPE_WINDOW];
    size_t n;                    /* lines whose VADD reply came */
    long long k;                 /* k of the search in flight */
    size_t last_hits;            /* hits of the last complete search */
} watch;

static void watch_send_search(reqq *q, const opts *o, watch *w)
{
    char k[24];
    snprintf(k, sizeof(k), "%lld", w->k);
    const char *argv[] = {"VSEARCH", o->index, "TEXT", o->watch, k, "MAXDIST", o->maxdist};
    size_t lens[7];
    for (int i = 0; i < 7; i++)
        lens[i] = strlen(argv[i]);
    reqq_push(q, REQ_VSEARCH, 7, argv, lens);
}

static void watch_add(watch *w, const req *m, const char *id, size_t idlen)
{
    CHECK(w->n < PIPE_WINDOW);
    watch_line *l = &w->v[w->n++];
    l->id = mem_strndup(id, idlen);
    l->idlen = idlen;
    l->line = mem_strndup(m->wire + m->text_off, m->text_len);
    l->linelen = m->text_len;
    l->dist = NULL;
}

/* The search reply of the open batch.  Either prints the batch's hits and
 * closes it, or (result full, some line unplaced) queues a wider search. */
static void watch_result(watch *w, reqq *q, const opts *o, const pipe_reply *r)
{
    if (r->type != PIPE_REPLY_ARRAY || r->nelem % 2)
        unexpected_reply("VSEARCH");
    size_t hits = r->nelem / 2, placed = 0;
    for (size_t i = 0; i < w->n; i++)
        if (w->v[i].dist)
            placed++;
    for (size_t h = 0; h < hits; h++) {
        const pipe_reply *key = &r->elem[2 * h], *dist = &r->elem[2 * h + 1];
        if (key->type != PIPE_REPLY_BULK || dist->type != PIPE_REPLY_BULK)
            unexpected_reply("VSEARCH");
        for (size_t i = 0; i < w->n; i++) {
            watch_line *l = &w->v[i];
            if (!l->dist && l->idlen == key->len && memcmp(l->id, key->str, key->len) == 0) {
                l->dist = mem_strndup(dist->str, dist->len);
                l->distlen = dist->len;
                placed++;
                break;
            }
        }
    }
    if ((long long)hits >= w->k && placed < w->n && w->k < PIPE_K_MAX) {
        /* Older lines filled every place: some of ours may be just behind. */
        w->k = w->k * 4 < PIPE_K_MAX ? w->k * 4 : PIPE_K_MAX;
        watch_send_search(q, o, w);
        return;
    }
    for (size_t i = 0; i < w->n; i++) {
        watch_line *l = &w->v[i];
        if (l->dist)
            out_hit(o, l->dist, l->distlen, l->id, l->idlen, l->line, l->linelen);
        mem_free(l->id);
        mem_free(l->line);
        mem_free(l->dist);
    }
    out_flush();
    w->last_hits = hits;
    w->n = 0;
    w->open = 0;
}

/* ---- the stream loop ----------------------------------------------------------------------- */

typedef struct stream {
    const opts *o;
    peer c;
    linebuf in;
    reqq q;
    watch w;
    int64_t lost_at;             /* ms since trouble began; 0 = healthy */
    char lost_why[256];
    unsigned long long acked;    /* lines the server confirmed */
    unsigned long long skipped;  /* lines the server found no word in */
    int64_t t0, tick, tick_acked_ms;
    unsigned long long tick_acked;
} stream;

/* Move buffered stdin lines into the queue, as far as the window allows. */
static void stream_fill(stream *s)
{
    const char *line;
    size_t len;
    size_t added = 0;
    int watching = s->o->watch != NULL;
    if (watching && s->w.open)
        return;
    while (s->q.count < PIPE_WINDOW && linebuf_next(&s->in, &line, &len)) {
        const char *argv[] = {"VADD", s->o->index, "*", "TEXT", line};
        size_t lens[] = {4, strlen(s->o->index), 1, 4, len};
        reqq_push(&s->q, REQ_VADD, 5, argv, lens);
        added++;
    }
    if (watching && added) {
        long long k = (long long)(added + s->w.last_hits + 16);
        s->w.k = k < PIPE_K_MAX ? k : PIPE_K_MAX;
        s->w.open = 1;
        watch_send_search(&s->q, s->o, &s->w);
    }
}

static int stream_has_room(const stream *s)
{
    return s->o->watch ? !s->w.open : s->q.count < PIPE_WINDOW;
}

/* The connection broke: keep every unanswered command for the next one. */
static void stream_fault(stream *s, const char *why)
{
    peer_close(&s->c);
    s->q.sent = 0;
    s->q.sent_off = 0;
    /* The retry clock runs only while commands wait: an idle connection that
     * dies is re-opened when the next line comes, with a full --retry-secs. */
    if (s->q.count == 0)
        s->lost_at = 0;
    else if (s->lost_at == 0)
        s->lost_at = util_mono_ms();
    snprintf(s->lost_why, sizeof(s->lost_why), "%s", why);
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Reconnect with backoff until it works or --retry-secs run out (exit 2). */
static void stream_reconnect(stream *s)
{
    const opts *o = s->o;
    int64_t delay = 50;
    if (s->lost_at == 0)
        s->lost_at = util_mono_ms();
    for (;;) {
        int64_t left = s->lost_at + o->retry_secs * 1000 - util_mono_ms();
        if (left <= 0)
            die(PIPE_EXIT_CONNECT, "lost connection to %s:%d (%s); gave up after %lld s",
                o->host, o->port, s->lost_why, o->retry_secs);
        sleep_ms(delay < left ? delay : left);
        delay = delay * 2 < 1000 ? delay * 2 : 1000;
        left = s->lost_at + o->retry_secs * 1000 - util_mono_ms();
        if (left <= 0)
            continue;
        char why[256];
        s->c.fd = tcp_connect(o->host, o->port,
                              (int)(left < PIPE_CONNECT_TIMEOUT_MS ? left : PIPE_CONNECT_TIMEOUT_MS),
                              why, sizeof(why));
        if (s->c.fd < 0) {
            snprintf(s->lost_why, sizeof(s->lost_why), "%s", why);
            continue;
        }
        int rc = peer_setup(&s->c, o);
        if (rc == 0)
            return;
        peer_close(&s->c);
        snprintf(s->lost_why, sizeof(s->lost_why), "%s", peer_strerror(rc));
    }
}

/* The reply to the oldest command in flight.  Returns 0, or PIPE_ELOADING
 * (the server restarted and is loading: reconnect later and resend). */
static int stream_reply(stream *s, pipe_reply *r)
{
    /* Errors first: a protocol error can answer a command still being sent. */
    if (r->type == PIPE_REPLY_ERROR) {
        if (starts_with(r, "LOADING"))
            return PIPE_ELOADING;
        if (s->q.sent > 0 && reqq_at(&s->q, 0)->kind == REQ_VADD &&
            starts_with(r, "ERR text has no words")) {
            /* A line of punctuation ("-----"): nothing to embed, nothing lost. */
            s->skipped++;
            s->lost_at = 0;
            reqq_pop(&s->q);
            return 0;
        }
        server_error(s->o, r);
    }
    if (s->q.sent == 0)
        die(PIPE_EXIT_SERVER, "server: reply to a command that was not sent");
    req *m = reqq_at(&s->q, 0);
    s->lost_at = 0;
    if (m->kind == REQ_VADD) {
        char num[24];
        const char *id = r->str;
        size_t idlen = r->len;
        if (r->type == PIPE_REPLY_INT) {
            idlen = util_ll2str(num, sizeof(num), r->integer);
            id = num;
        } else if (r->type != PIPE_REPLY_BULK && r->type != PIPE_REPLY_STATUS) {
            unexpected_reply("VADD");
        }
        s->acked++;
        if (s->o->watch)
            watch_add(&s->w, m, id, idlen);
        reqq_pop(&s->q);
    } else {
        reqq_pop(&s->q);   /* first: a wider search goes to the back */
        watch_result(&s->w, &s->q, s->o, r);
    }
    return 0;
}

/* Socket readable: read, then handle every whole reply, then the EOF. */
static void stream_read(stream *s)
{
    ssize_t rc = 0;
    for (int i = 0; i < 16; i++) {
        rc = peer_fill(&s->c);
        if (rc < 0)
            break;
    }
    pipe_reply *r;
    int n;
    while ((n = pipe_reader_next(&s->c.rd, &r)) == 1) {
        int st = stream_reply(s, r);
        pipe_reply_free(r);
        if (st < 0) {
            stream_fault(s, peer_strerror(st));
            return;
        }
    }
    if (n == -ENOMEM)
        die(PIPE_EXIT_IO, "out of memory");
    if (n < 0)
        die(PIPE_EXIT_SERVER, "server: %s", pipe_resp_strerror(n));
    if (rc < 0 && rc != -EAGAIN)
        stream_fault(s, peer_strerror((int)rc));
}

static void stream_progress(stream *s, int final)
{
    int64_t now = util_mono_ms();
    if (!final && now < s->tick)
        return;
    double secs = (double)(now - s->tick_acked_ms) / 1000.0;
    if (final)
        secs = (double)(now - s->t0) / 1000.0;
    unsigned long long n = final ? s->acked : s->acked - s->tick_acked;
    double rate = secs > 0 ? (double)n / secs : 0;
    if (final)
        fprintf(stderr, "engram-pipe: done: %llu lines in %.1f s, %.0f lines/s", s->acked, secs, rate);
    else
        fprintf(stderr, "engram-pipe: %.0f lines/s, %llu total", rate, s->acked);
    if (s->in.cut)
        fprintf(stderr, ", %llu cut to %zu bytes", s->in.cut, s->o->max_line);
    if (s->skipped)
        fprintf(stderr, ", %llu without words skipped", s->skipped);
    fputc('\n', stderr);
    s->tick_acked = s->acked;
    s->tick_acked_ms = now;
    s->tick = now + 1000;
}

/* One wait: stdin (if there is room for lines), the socket (replies, and
 * writability while commands are unsent), and the progress clock. */
static void stream_poll(stream *s)
{
    struct pollfd p[2];
    int np = 0, in_i = -1, sock_i = -1;
    if (!s->in.eof && stream_has_room(s)) {
        in_i = np;
        p[np++] = (struct pollfd){0, POLLIN, 0};
    }
    if (s->c.fd >= 0) {
        sock_i = np;
        p[np++] = (struct pollfd){s->c.fd, (short)(POLLIN | (s->q.sent < s->q.count ? POLLOUT : 0)), 0};
    }
    int timeout = -1;
    if (s->o->progress) {
        int64_t left = s->tick - util_mono_ms();
        timeout = left > 0 ? (int)left : 0;
    }
    int rc = poll(p, (nfds_t)np, timeout);
    if (rc < 0 && errno != EINTR)
        die(PIPE_EXIT_IO, "poll: %s", strerror(errno));
    if (rc > 0 && in_i >= 0 && p[in_i].revents) {
        ssize_t n = linebuf_fill(&s->in);
        if (n < 0)
            die(PIPE_EXIT_IO, "read error on stdin: %s", strerror((int)-n));
    }
    if (rc > 0 && sock_i >= 0 && (p[sock_i].revents & (POLLIN | POLLHUP | POLLERR)))
        stream_read(s);
    if (s->o->progress)
        stream_progress(s, 0);
}

static int run_stream(const opts *o)
{
    static stream s;   /* large (the ring); one per process */
    memset(&s, 0, sizeof(s));
    s.o = o;
    s.in.max = o->max_line;
    peer_open(&s.c, o);
    s.t0 = s.tick_acked_ms = util_mono_ms();
    s.tick = s.t0 + 1000;
    for (;;) {
        /* Lines first, then write, then wait: a batch is whatever stdin had. */
        stream_fill(&s);
        if (s.in.eof && s.q.count == 0 && s.in.start == s.in.end)
            break;
        if (s.c.fd < 0 && s.q.count > 0) {
            if (o->retry_secs == 0)
                die(PIPE_EXIT_CONNECT, "lost connection to %s:%d: %s", o->host, o->port,
                    s.lost_why);
            stream_reconnect(&s);
        }
        if (s.c.fd >= 0 && s.q.sent < s.q.count) {
            int rc = reqq_flush(&s.q, s.c.fd);
            if (rc < 0) {
                /* Replies may still be readable (an error before a close). */
                stream_read(&s);
                if (s.c.fd >= 0)
                    stream_fault(&s, strerror(-rc));
                continue;
            }
        }
        stream_poll(&s);
    }
    if (o->progress)
        stream_progress(&s, 1);
    out_flush();
    peer_close(&s.c);
    pipe_reader_fini(&s.c.rd);
    mem_free(s.in.buf);
    return PIPE_EXIT_OK;
}

/* ---- query ------------------------------------------------------------------------------------ */

static int run_query(const opts *o)
{
    peer c;
    peer_open(&c, o);
    char k[24];
    snprintf(k, sizeof(k), "%lld", o->k);
    const char *argv[8] = {"VSEARCH", o->index, "TEXT", o->query, k};
    int n = 5;
    if (o->maxdist) {
        argv[n++] = "MAXDIST";
        argv[n++] = o->maxdist;
    }
    argv[n++] = "WITHPAYLOAD";
    size_t lens[8];
    for (int i = 0; i < n; i++)
        lens[i] = strlen(argv[i]);
    pipe_reply *r = NULL;
    int rc = peer_call(&c, n, argv, lens, &r);
    if (rc < 0)
        die(PIPE_EXIT_CONNECT, "lost connection to %s:%d: %s", o->host, o->port, peer_strerror(rc));
    if (r->type == PIPE_REPLY_ERROR)
        server_error(o, r);
    if (r->type != PIPE_REPLY_ARRAY || r->nelem % 3)
        unexpected_reply("VSEARCH");
    for (size_t i = 0; i < r->nelem; i += 3) {
        const pipe_reply *key = &r->elem[i], *dist = &r->elem[i + 1], *pl = &r->elem[i + 2];
        if (key->type != PIPE_REPLY_BULK || dist->type != PIPE_REPLY_BULK ||
            (pl->type != PIPE_REPLY_BULK && pl->type != PIPE_REPLY_NIL))
            unexpected_reply("VSEARCH");
        out_hit(o, dist->str, dist->len, key->str, key->len,
                pl->type == PIPE_REPLY_BULK ? pl->str : NULL, pl->len);
    }
    out_flush();
    pipe_reply_free(r);
    peer_close(&c);
    pipe_reader_fini(&c.rd);
    return PIPE_EXIT_OK;
}

int main(int argc, char **argv)
{
    opts o;
    opts_parse(&o, argc, argv);
    signal(SIGPIPE, SIG_IGN);
    return o.query ? run_query(&o) : run_stream(&o);
}
