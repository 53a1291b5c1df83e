/* pipe_resp.c -- RESP2 request encoder and reply reader for engram-pipe.
 *
 * Owns the wire format on the client side; the contract (types, limits,
 * ownership) is in pipe_resp.h.  Pure: malloc only, -ENOMEM on failure.
 *
 * The reader keeps the unconsumed bytes in one buffer and parses a reply
 * from its first byte each time (a reply is small next to the cost of a
 * round trip; the replies engram-pipe reads are ids, OK, and search results).
 * What keeps this linear is the `need` hint: when a parse stops short, it
 * records how many bytes the buffer must hold before another attempt can get
 * further (a whole line, or a bulk's announced length plus CRLF), and
 * pipe_reader_next() returns 0 at once until that many have arrived.
 *
 * Strictness: a line must end in CRLF (a lone CR is a protocol error, as in
 * hiredis); counts and integers are plain base-10 with an optional '-', no
 * spaces, no '+', no overflow; a bulk must be followed by CRLF. */
#include "pipe_resp.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- encoder ------------------------------------------------------------- */

static size_t dec_len(size_t v)
{
    size_t n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

static size_t put_count(char *out, char type, size_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    size_t o = 0;
    out[o++] = type;
    while (n)
        out[o++] = tmp[--n];
    out[o++] = '\r';
    out[o++] = '\n';
    return o;
}

size_t pipe_resp_encoded_len(int argc, const size_t *lens)
{
    size_t total = 1 + dec_len((size_t)argc) + 2;
    for (int i = 0; i < argc; i++)
        total += 1 + dec_len(lens[i]) + 2 + lens[i] + 2;
    return total;
}

size_t pipe_resp_encode(char *out, int argc, const char *const *argv, const size_t *lens)
{
    size_t o = put_count(out, '*', (size_t)argc);
    for (int i = 0; i < argc; i++) {
        o += put_count(out + o, '$', lens[i]);
        if (lens[i])
            memcpy(out + o, argv[i], lens[i]);
        o += lens[i];
        out[o++] = '\r';
        out[o++] = '\n';
    }
    return o;
}

/* ---- reader buffer --------------------------------------------------------- */

void pipe_reader_init(pipe_reader *r)
{
    memset(r, 0, sizeof(*r));
}

void pipe_reader_fini(pipe_reader *r)
{
    free(r->buf);
    memset(r, 0, sizeof(*r));
}

void pipe_reader_reset(pipe_reader *r)
{
    r->pos = r->len = 0;
    r->need = 0;
    r->err = 0;
}

int pipe_reader_feed(pipe_reader *r, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    if (r->pos > 0 && r->len + n > r->cap) {
        /* Make room by moving the unconsumed tail to the front first. */
        memmove(r->buf, r->buf + r->pos, r->len - r->pos);
        r->len -= r->pos;
        r->pos = 0;
    }
    if (r->len + n > r->cap) {
        size_t cap = r->cap ? r->cap : 16384;
        while (cap < r->len + n) {
            if (cap > SIZE_MAX / 2)
                return -ENOMEM;
            cap *= 2;
        }
        char *nb = realloc(r->buf, cap);
        if (!nb)
            return -ENOMEM;
        r->buf = nb;
        r->cap = cap;
    }
    memcpy(r->buf + r->len, p, n);
    r->len += n;
    return 0;
}

/* ---- parser ---------------------------------------------------------------- */

typedef struct cursor {
    const char *buf;
    size_t pos;     /* next byte to parse */
    size_t end;     /* bytes available */
    size_t need;    /* on "incomplete": the end offset that would help */
} cursor;

static void reply_clear(pipe_reply *rep)
{
    if (rep->elem) {
        for (size_t i = 0; i < rep->nelem; i++)
            reply_clear(&rep->elem[i]);
        free(rep->elem);
    }
    free(rep->str);
    memset(rep, 0, sizeof(*rep));
}

void pipe_reply_free(pipe_reply *rep)
{
    if (!rep)
        return;
    reply_clear(rep);
    free(rep);
}

/* The line at c->pos (without its CRLF); advances past the CRLF. */
static int read_line(cursor *c, const char **line, size_t *len)
{
    const char *s = c->buf + c->pos;
    size_t avail = c->end - c->pos;
    size_t scan = avail < PIPE_RESP_LINE_MAX + 1 ? avail : PIPE_RESP_LINE_MAX + 1;
    const char *cr = memchr(s, '\r', scan);
    if (!cr) {
        if (avail > PIPE_RESP_LINE_MAX)
            return PIPE_RESP_ELIMIT;
        c->need = c->end + 1;
        return 0;
    }
    size_t n = (size_t)(cr - s);
    if (n + 1 >= avail) {
        c->need = c->pos + n + 2;
        return 0;
    }
    if (cr[1] != '\n')
        return PIPE_RESP_EPROTO;
    *line = s;
    *len = n;
    c->pos += n + 2;
    return 1;
}

static int parse_ll(const char *s, size_t len, long long *out)
{
    size_t i = 0;
    int neg = 0;
    if (len > 0 && s[0] == '-') {
        neg = 1;
        i = 1;
    }
    if (i == len)
        return 0;
    unsigned long long v = 0;
    unsigned long long lim = neg ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (lim - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    if (neg)
        *out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
    else
        *out = (long long)v;
    return 1;
}

static int copy_str(pipe_reply *rep, const char *s, size_t len)
{
    rep->str = malloc(len + 1);
    if (!rep->str)
        return -ENOMEM;
    if (len)
        memcpy(rep->str, s, len);
    rep->str[len] = '\0';
    rep->len = len;
    return 1;
}

static int parse_value(cursor *c, int depth, pipe_reply *rep);

static int parse_array(cursor *c, int depth, long long n, pipe_reply *rep)
{
    if (n > PIPE_RESP_ARRAY_MAX || depth >= PIPE_RESP_DEPTH_MAX)
        return PIPE_RESP_ELIMIT;
    rep->type = PIPE_REPLY_ARRAY;
    if (n == 0)
        return 1;
    rep->elem = calloc((size_t)n, sizeof(pipe_reply));
    if (!rep->elem)
        return -ENOMEM;
    for (long long i = 0; i < n; i++) {
        rep->nelem = (size_t)i + 1;     /* so reply_clear frees what exists */
        int rc = parse_value(c, depth + 1, &rep->elem[i]);
        if (rc <= 0)
            return rc;
    }
    return 1;
}

/* One value at c->pos into rep.  1 done, 0 incomplete (c->need set), <0 error.
 * On 0 or error rep may hold partial contents: the caller clears it. */
static int parse_value(cursor *c, int depth, pipe_reply *rep)
{
    if (c->pos >= c->end) {
        c->need = c->pos + 1;
        return 0;
    }
    char type = c->buf[c->pos];
    if (!strchr("+-:$*", type) || type == '\0')
        return PIPE_RESP_EPROTO;
    size_t start = c->pos;
    c->pos++;
    const char *line;
    size_t len;
    int rc = read_line(c, &line, &len);
    if (rc <= 0) {
        c->pos = start;
        return rc;
    }
    long long n;
    switch (type) {
    case '+':
    case '-':
        rep->type = type == '+' ? PIPE_REPLY_STATUS : PIPE_REPLY_ERROR;
        return copy_str(rep, line, len);
    case ':':
        if (!parse_ll(line, len, &n))
            return PIPE_RESP_EPROTO;
        rep->type = PIPE_REPLY_INT;
        rep->integer = n;
        return 1;
    case '$':
        if (!parse_ll(line, len, &n) || n < -1)
            return PIPE_RESP_EPROTO;
        if (n == -1) {
            rep->type = PIPE_REPLY_NIL;
            return 1;
        }
        if (n > PIPE_RESP_BULK_MAX)
            return PIPE_RESP_ELIMIT;
        if (c->end - c->pos < (size_t)n + 2) {
            c->need = c->pos + (size_t)n + 2;
            return 0;
        }
        if (c->buf[c->pos + (size_t)n] != '\r' || c->buf[c->pos + (size_t)n + 1] != '\n')
            return PIPE_RESP_EPROTO;
        rep->type = PIPE_REPLY_BULK;
        rc = copy_str(rep, c->buf + c->pos, (size_t)n);
        c->pos += (size_t)n + 2;
        return rc;
    default: /* '*' */
        if (!parse_ll(line, len, &n) || n < -1)
            return PIPE_RESP_EPROTO;
        if (n == -1) {
            rep->type = PIPE_REPLY_NIL;
            return 1;
        }
        return parse_array(c, depth, n, rep);
    }
}

int pipe_reader_next(pipe_reader *r, pipe_reply **out)
{
    if (r->err)
        return r->err;
    size_t avail = r->len - r->pos;
    if (avail == 0 || avail < r->need)
        return 0;
    pipe_reply *rep = calloc(1, sizeof(*rep));
    if (!rep)
        return -ENOMEM;     /* not sticky: the caller may retry */
    cursor c = {r->buf + r->pos, 0, avail, 0};
    int rc = parse_value(&c, 0, rep);
    if (rc <= 0) {
        pipe_reply_free(rep);
        if (rc == 0)
            r->need = c.need;
        else if (rc != -ENOMEM)
            r->err = rc;
        return rc;
    }
    r->pos += c.pos;
    r->need = 0;
    if (r->pos == r->len)
        r->pos = r->len = 0;
    *out = rep;
    return 1;
}

const char *pipe_resp_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case PIPE_RESP_EPROTO:
        return "protocol error in server reply";
    case PIPE_RESP_ELIMIT:
        return "server reply exceeds the client's limits";
    default:
        return err < 0 ? strerror(-err) : "unknown error";
    }
}
