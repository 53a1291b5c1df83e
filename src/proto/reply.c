/* reply.c -- RESP2/RESP3 reply encoding into one growable byte buffer.
 *
 * What it owns: r->data.  Bytes [0, sent) are written out and dead, [sent,
 * len) are pending, [len, cap) are free.  Every encoder reserves the whole
 * encoding once and writes it in place; numbers are formatted by hand (no
 * printf on the hot path).  The only memmoves are a deferred header's insert
 * and compaction in reply_consumed().
 *
 * Compaction policy (why it is O(total)): a fully drained buffer is reset to
 * empty for free; otherwise the pending tail is moved to the front only when
 * the dead prefix is bigger than the tail and at least REPLY_COMPACT_MIN.
 * Each move copies fewer bytes than were written out since the previous
 * one, so draining N bytes in writes of any size moves at most N bytes.
 *
 * The text rules follow Redis 7.0 networking.c (addReplyDouble,
 * addReplyErrorLength, addReplyErrorFormat, addReplyVerbatim).
 *
 * Threads: a reply belongs to one thread at a time; no globals are written. */
#include "engram/reply.h"
#include "engram/mem.h"
#include "engram/util.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#define REPLY_INIT_CAP 16384
#define REPLY_COMPACT_MIN 16384
#define REPLY_SHRINK_CAP (1024 * 1024)  /* drained buffers bigger than this shrink */
#define REPLY_HDR_MAX 24                /* type byte + 20 digits + CRLF, rounded up */

void reply_init(reply *r, int proto)
{
    r->data = NULL;
    r->len = r->sent = r->cap = 0;
    r->proto = proto == 3 ? 3 : 2;
}

void reply_reserve(reply *r, size_t n)
{
    if (r->cap - r->len >= n) return;
    r->data = mem_realloc(r->data, r->len + n);
    r->cap = r->len + n;
}

void reply_fini(reply *r)
{
    mem_free(r->data);
    r->data = NULL;
    r->len = r->sent = r->cap = 0;
}

/* Room for n more bytes; returns where they go.  The caller bumps r->len. */
static char *reply_room(reply *r, size_t n)
{
    if (r->cap - r->len < n) {
        size_t want = r->len + n;
        size_t cap = r->cap ? r->cap : REPLY_INIT_CAP;
        while (cap < want) cap = cap > SIZE_MAX / 2 ? want : cap * 2;
        r->data = mem_realloc(r->data, cap);
        r->cap = cap;
    }
    return r->data + r->len;
}

void reply_consumed(reply *r, size_t n)
{
    assert(n <= r->len - r->sent);
    r->sent += n;
    if (r->sent == r->len) {
        r->sent = r->len = 0;
        /* One huge reply must not pin its buffer on an idle connection. */
        if (r->cap > REPLY_SHRINK_CAP) {
            r->data = mem_realloc(r->data, REPLY_INIT_CAP);
            r->cap = REPLY_INIT_CAP;
        }
        return;
    }
    size_t tail = r->len - r->sent;
    if (r->sent >= REPLY_COMPACT_MIN && r->sent > tail) {
        memmove(r->data, r->data + r->sent, tail);
        r->len = tail;
        r->sent = 0;
    }
}

/* Digits of v written backwards ending at `end`; returns the first one. */
static inline char *fmt_ll(char *end, long long v)
{
    unsigned long long u = v < 0 ? 0 - (unsigned long long)v : (unsigned long long)v;
    char *p = end;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) *--p = '-';
    return p;
}

/* "<type><v>\r\n" straight into the buffer. */
static void put_header(reply *r, char type, long long v)
{
    char tmp[REPLY_HDR_MAX];
    char *end = tmp + sizeof(tmp);
    char *p = fmt_ll(end, v);
    size_t n = (size_t)(end - p);
    char *w = reply_room(r, n + 3);
    w[0] = type;
    memcpy(w + 1, p, n);
    w[n + 1] = '\r';
    w[n + 2] = '\n';
    r->len += n + 3;
}

static void put_lit(reply *r, const char *s, size_t n)
{
    memcpy(reply_room(r, n), s, n);
    r->len += n;
}

void reply_raw(reply *r, const void *p, size_t n)
{
    if (n) put_lit(r, p, n);
}

/* A type byte, s with CR/LF turned into spaces, CRLF. */
static void put_line(reply *r, char type, const char *s, size_t n)
{
    char *w = reply_room(r, n + 3);
    w[0] = type;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        w[i + 1] = (c == '\r' || c == '\n') ? ' ' : c;
    }
    w[n + 1] = '\r';
    w[n + 2] = '\n';
    r->len += n + 3;
}

void reply_ok(reply *r)
{
    put_lit(r, "+OK\r\n", 5);
}

void reply_simple(reply *r, const char *s)
{
    put_line(r, '+', s, strlen(s));
}

/* Redis's error codes: text starting with one of these and a space is sent
 * as is; anything else gets "ERR ".  See reply.h for why it is a list. */
static const char *const reply_error_codes[] = {
    "ERR", "WRONGTYPE", "NOAUTH", "WRONGPASS", "NOPERM", "EXECABORT", "BUSY",
    "BUSYKEY", "BUSYGROUP", "NOSCRIPT", "LOADING", "READONLY", "MASTERDOWN",
    "MISCONF", "OOM", "NOPROTO", "NOREPLICAS", "NOGROUP", "UNBLOCKED",
    "CROSSSLOT", "MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN", "NOTBUSY",
    "UNKILLABLE",
};

static int error_has_code(const char *s, size_t n)
{
    size_t w = 0;
    while (w < n && s[w] >= 'A' && s[w] <= 'Z') w++;
    if (w == 0 || w == n || s[w] != ' ') return 0;
    for (size_t i = 0; i < sizeof(reply_error_codes) / sizeof(*reply_error_codes); i++)
        if (strlen(reply_error_codes[i]) == w && memcmp(reply_error_codes[i], s, w) == 0)
            return 1;
    return 0;
}

static void put_error(reply *r, const char *s, size_t n)
{
    /* Trim CR/LF at both ends (sdstrim in addReplyErrorFormat). */
    while (n && (s[0] == '\r' || s[0] == '\n')) s++, n--;
    while (n && (s[n - 1] == '\r' || s[n - 1] == '\n')) n--;
    if (n && s[0] == '-') {
        put_line(r, '-', s + 1, n - 1);
        return;
    }
    if (!error_has_code(s, n)) {
        /* "-ERR " then the text: one reservation, then the line. */
        reply_room(r, n + 7);
        put_lit(r, "-ERR", 4);
        put_line(r, ' ', s, n);
        return;
    }
    put_line(r, '-', s, n);
}

void reply_error(reply *r, const char *text)
{
    put_error(r, text, strlen(text));
}

void reply_errorf(reply *r, const char *fmt, ...)
{
    char small[512];
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        put_error(r, "error formatting error text", 27);
        return;
    }
    if ((size_t)n < sizeof(small)) {
        put_error(r, small, (size_t)n);
        return;
    }
    char *big = mem_alloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    put_error(r, big, (size_t)n);
    mem_free(big);
}

void reply_int(reply *r, long long v)
{
    put_header(r, ':', v);
}

void reply_bulk(reply *r, const void *p, size_t n)
{
    char tmp[REPLY_HDR_MAX];
    char *end = tmp + sizeof(tmp);
    char *d = fmt_ll(end, (long long)n);
    size_t dn = (size_t)(end - d);
    char *w = reply_room(r, 1 + dn + 2 + n + 2);
    *w++ = '$';
    memcpy(w, d, dn);
    w += dn;
    *w++ = '\r';
    *w++ = '\n';
    if (n) memcpy(w, p, n);
    w += n;
    *w++ = '\r';
    *w++ = '\n';
    r->len += 1 + dn + 2 + n + 2;
}

void reply_bulk_cstr(reply *r, const char *s)
{
    if (!s) reply_null(r);
    else reply_bulk(r, s, strlen(s));
}

void reply_bulk_ll(reply *r, long long v)
{
    char tmp[REPLY_HDR_MAX];
    char *end = tmp + sizeof(tmp);
    char *p = fmt_ll(end, v);
    reply_bulk(r, p, (size_t)(end - p));
}

void reply_null(reply *r)
{
    if (r->proto == 3) put_lit(r, "_\r\n", 3);
    else put_lit(r, "$-1\r\n", 5);
}

void reply_null_array(reply *r)
{
    if (r->proto == 3) put_lit(r, "_\r\n", 3);
    else put_lit(r, "*-1\r\n", 5);
}

void reply_array(reply *r, long long n)
{
    put_header(r, '*', n);
}

void reply_map(reply *r, long long npairs)
{
    if (r->proto == 3) put_header(r, '%', npairs);
    else put_header(r, '*', npairs * 2);
}

void reply_set(reply *r, long long n)
{
    put_header(r, r->proto == 3 ? '~' : '*', n);
}

void reply_push(reply *r, long long n)
{
    put_header(r, r->proto == 3 ? '>' : '*', n);
}

/* RESP3 ",<text>\r\n" or RESP2 bulk of the same text. */
static void put_number_text(reply *r, const char *s, size_t n)
{
    if (r->proto == 3) {
        char *w = reply_room(r, n + 3);
        w[0] = ',';
        memcpy(w + 1, s, n);
        w[n + 1] = '\r';
        w[n + 2] = '\n';
        r->len += n + 3;
    } else {
        reply_bulk(r, s, n);
    }
}

void reply_double(reply *r, double d)
{
    char buf[64];
    put_number_text(r, buf, util_d2str(buf, sizeof(buf), d));
}

void reply_float(reply *r, float f)
{
    char buf[64];
    put_number_text(r, buf, util_f2str(buf, sizeof(buf), f));
}

void reply_bool(reply *r, int b)
{
    if (r->proto == 3) put_lit(r, b ? "#t\r\n" : "#f\r\n", 4);
    else put_lit(r, b ? ":1\r\n" : ":0\r\n", 4);
}

void reply_verbatim(reply *r, const char *p, size_t n, const char *fmt3)
{
    if (r->proto != 3) {
        reply_bulk(r, p, n);
        return;
    }
    /* "=<n+4>\r\n" "txt:" text "\r\n"; the format is exactly 3 bytes. */
    char fmt[3] = { 't', 'x', 't' };
    if (fmt3) {
        size_t fl = strnlen(fmt3, 3);
        memcpy(fmt, fmt3, fl);
        for (size_t i = fl; i < 3; i++) fmt[i] = ' ';
    }
    put_header(r, '=', (long long)n + 4);
    char *w = reply_room(r, 4 + n + 2);
    memcpy(w, fmt, 3);
    w[3] = ':';
    if (n) memcpy(w + 4, p, n);
    w[4 + n] = '\r';
    w[5 + n] = '\n';
    r->len += n + 6;
}

size_t reply_defer(reply *r)
{
    return r->len;
}

/* Insert "<type><n>\r\n" at handle h, moving the elements written since. */
static void defer_set(reply *r, size_t h, char type, long long n)
{
    assert(h >= r->sent && h <= r->len);
    char tmp[REPLY_HDR_MAX];
    char *end = tmp + sizeof(tmp);
    char *p = fmt_ll(end, n);
    *--p = type;
    size_t hn = (size_t)(end - p) + 2;
    reply_room(r, hn);
    memmove(r->data + h + hn, r->data + h, r->len - h);
    memcpy(r->data + h, p, hn - 2);
    r->data[h + hn - 2] = '\r';
    r->data[h + hn - 1] = '\n';
    r->len += hn;
}

void reply_defer_array(reply *r, size_t handle, long long n)
{
    defer_set(r, handle, '*', n);
}

void reply_defer_map(reply *r, size_t handle, long long npairs)
{
    if (r->proto == 3) defer_set(r, handle, '%', npairs);
    else defer_set(r, handle, '*', npairs * 2);
}
