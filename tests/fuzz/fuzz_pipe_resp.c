/* fuzz_pipe_resp.c -- engram-pipe's reply reader (src/pipe/pipe_resp.h).
 *
 * Feeds: byte 0 seeds the chunk sizes; the rest is what a server sends
 * back, read twice: fed whole, then in random chunks of 1..64 bytes
 * (sometimes 1), asking for replies after each chunk as engram-pipe does.
 *
 * Checks: both readings give the same replies (type, integer, bytes,
 * elements, recursively) and end the same way (need more, or the same
 * sticky error, which repeats); strings are NUL-terminated; and each
 * reply, encoded again as canonical RESP2, reads back as the same reply
 * (round trip through a fresh reader). */
#include "fuzz.h"

#include <inttypes.h>
#include <string.h>

#include "pipe_resp.h"

typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static void add(buf *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t c = b->cap ? b->cap : 256;
        while (c < b->len + n) c *= 2;
        b->p = realloc(b->p, c);
        FUZZ_CHECK(b->p != NULL, "out of memory");
        b->cap = c;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void addf(buf *b, const char *fmt, long long v)
{
    char t[32];
    int n = snprintf(t, sizeof t, fmt, v);
    add(b, t, (size_t)n);
}

/* Canonical RESP2 of r (also the comparison key: equal bytes, equal replies). */
static void encode(buf *b, const pipe_reply *r)
{
    switch (r->type) {
    case PIPE_REPLY_STATUS:
    case PIPE_REPLY_ERROR:
        FUZZ_CHECK(r->str && r->str[r->len] == '\0', "string not terminated");
        add(b, r->type == PIPE_REPLY_STATUS ? "+" : "-", 1);
        add(b, r->str, r->len);
        add(b, "\r\n", 2);
        break;
    case PIPE_REPLY_INT:
        addf(b, ":%lld\r\n", r->integer);
        break;
    case PIPE_REPLY_BULK:
        FUZZ_CHECK(r->str && r->str[r->len] == '\0', "bulk not terminated");
        addf(b, "$%lld\r\n", (long long)r->len);
        add(b, r->str, r->len);
        add(b, "\r\n", 2);
        break;
    case PIPE_REPLY_NIL:
        add(b, "$-1\r\n", 5);
        break;
    case PIPE_REPLY_ARRAY:
        addf(b, "*%lld\r\n", (long long)r->nelem);
        for (size_t i = 0; i < r->nelem; i++) encode(b, &r->elem[i]);
        break;
    default:
        FUZZ_CHECK(0, "unknown reply type %d", (int)r->type);
    }
}

/* The reply encoded as RESP2 must read back as itself. */
static void round_trip(const buf *enc, size_t from)
{
    pipe_reader r;
    pipe_reader_init(&r);
    FUZZ_CHECK(pipe_reader_feed(&r, enc->p + from, enc->len - from) == 0, "feed");
    pipe_reply *rep = NULL;
    int rc = pipe_reader_next(&r, &rep);
    FUZZ_CHECK(rc == 1, "re-encoded reply does not read back (%d)", rc);
    buf again = { 0 };
    encode(&again, rep);
    FUZZ_CHECK(again.len == enc->len - from && memcmp(again.p, enc->p + from, again.len) == 0,
               "re-encoded reply reads back differently");
    free(again.p);
    pipe_reply_free(rep);
    FUZZ_CHECK(pipe_reader_next(&r, &rep) == 0, "bytes left after a re-encoded reply");
    pipe_reader_fini(&r);
}

/* Take every reply ready; returns the code that stopped (0 or < 0). */
static int drain(pipe_reader *r, buf *out, int check_round_trip)
{
    for (;;) {
        pipe_reply *rep = NULL;
        int rc = pipe_reader_next(r, &rep);
        if (rc != 1) {
            FUZZ_CHECK(rc <= 0, "next returned %d", rc);
            return rc;
        }
        size_t from = out->len;
        encode(out, rep);
        pipe_reply_free(rep);
        if (check_round_trip) round_trip(out, from);
    }
}

static void end(pipe_reader *r, buf *out, int rc)
{
    add(out, "|", 1);
    addf(out, "%lld", rc);
    if (rc < 0) {
        pipe_reply *rep = NULL;
        FUZZ_CHECK(pipe_reader_next(r, &rep) == rc, "error not sticky");
        FUZZ_CHECK(pipe_resp_strerror(rc) != NULL, "no text for %d", rc);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint64_t seed = data[0];
    const char *in = (const char *)data + 1;
    size_t len = size - 1;

    buf whole = { 0 }, chunked = { 0 };
    pipe_reader r;
    pipe_reader_init(&r);
    FUZZ_CHECK(pipe_reader_feed(&r, in, len) == 0, "feed");
    end(&r, &whole, drain(&r, &whole, 1));
    pipe_reader_fini(&r);

    pipe_reader_init(&r);
    int rc = 0;
    for (size_t off = 0; off < len && rc == 0;) {
        uint64_t x = fuzz_rand(&seed);
        size_t n = (x & 3) == 0 ? 1 : 1 + (size_t)((x >> 8) % 64);
        if (n > len - off) n = len - off;
        FUZZ_CHECK(pipe_reader_feed(&r, in + off, n) == 0, "feed");
        off += n;
        rc = drain(&r, &chunked, 0);
    }
    end(&r, &chunked, rc);
    pipe_reader_fini(&r);

    FUZZ_CHECK(whole.len == chunked.len && memcmp(whole.p, chunked.p, whole.len) == 0,
               "whole and chunked readings differ");
    free(whole.p);
    free(chunked.p);
    return 0;
}
