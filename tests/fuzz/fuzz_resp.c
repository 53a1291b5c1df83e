/* fuzz_resp.c -- the RESP request parser (resp.h) fed in random chunk sizes.
 *
 * Feeds: byte 0 chooses the limits (bit 0: an unauthenticated client,
 * bit 1: small limits -- a 4..67-byte line, bulks of at most 64 bytes, 5
 * arguments -- so the error paths are reached with short inputs), byte 1
 * seeds the chunk sizes; the rest is what a client sends, parsed twice:
 * once as one buffer and once the way a connection gets it, in random
 * chunks of 1..64 bytes (sometimes 1), each call handed a freshly
 * allocated buffer of exactly the pending bytes (so the buffer moves, as
 * after a realloc, and ASan sees any read past its end).
 *
 * Checks: both runs give the same requests (argc, every argument's bytes),
 * then the same ending -- "need more" with the same number of unconsumed
 * bytes, or the same error code and error text; a request consumes at
 * least one byte and no more than it was given; an error repeats when the
 * parser is called again (resp.h's contract). */
#include "fuzz.h"

#include <string.h>

#include "engram/resp.h"

typedef struct trace {
    uint8_t *p;
    size_t len, cap;
} trace;

static void trace_add(trace *l, const void *p, size_t n)
{
    if (l->len + n > l->cap) {
        size_t c = l->cap ? l->cap : 256;
        while (c < l->len + n) c *= 2;
        l->p = realloc(l->p, c);
        FUZZ_CHECK(l->p != NULL, "out of memory");
        l->cap = c;
    }
    memcpy(l->p + l->len, p, n);
    l->len += n;
}

static void trace_request(trace *l, const resp_parser *p)
{
    trace_add(l, "R", 1);
    trace_add(l, &p->argc, sizeof p->argc);
    for (int i = 0; i < p->argc; i++) {
        trace_add(l, &p->argvlen[i], sizeof p->argvlen[i]);
        trace_add(l, p->argv[i], p->argvlen[i]);
    }
}

/* The ending: unconsumed bytes after AGAIN, or the error and its text. */
static void trace_end(trace *l, resp_parser *p, int rc, const char *buf, size_t pending)
{
    char scratch[64];
    if (rc == RESP_AGAIN) {
        trace_add(l, "A", 1);
        trace_add(l, &pending, sizeof pending);
        return;
    }
    FUZZ_CHECK(rc < 0, "unexpected code %d", rc);
    const char *msg = resp_strerror(rc, p, scratch, sizeof scratch);
    trace_add(l, "E", 1);
    trace_add(l, &rc, sizeof rc);
    trace_add(l, msg, strlen(msg));
    int again = resp_parse(p, buf, pending);
    FUZZ_CHECK(again == rc, "error %d then %d", rc, again);
}

static void limits_from(uint8_t b, resp_limits *lim)
{
    memset(lim, 0, sizeof *lim);
    lim->unauthenticated = b & 1;
    if (b & 2) {
        lim->max_inline = 4 + (b >> 2);
        lim->max_bulk_len = 64;
        lim->max_multibulk = 5;
    }
}

static void parse_whole(const resp_limits *lim, const char *buf, size_t len, trace *l)
{
    resp_parser p;
    resp_init(&p, lim);
    size_t off = 0;
    for (;;) {
        int rc = resp_parse(&p, buf + off, len - off);
        if (rc != RESP_OK) {
            trace_end(l, &p, rc, buf + off, len - off);
            break;
        }
        size_t used = resp_consumed(&p);
        FUZZ_CHECK(used > 0 && used <= len - off, "consumed %zu of %zu", used, len - off);
        trace_request(l, &p);
        off += used;
        resp_reset(&p);
    }
    resp_fini(&p);
}

static void parse_chunked(const resp_limits *lim, const char *in, size_t len, uint64_t seed,
                          trace *l)
{
    resp_parser p;
    resp_init(&p, lim);
    char *pend = NULL;
    size_t plen = 0, off = 0;
    int rc = RESP_AGAIN;
    while (rc == RESP_AGAIN || rc == RESP_OK) {
        if (off == len) break;
        uint64_t r = fuzz_rand(&seed);
        size_t n = (r & 3) == 0 ? 1 : 1 + (size_t)((r >> 8) % 64);
        if (n > len - off) n = len - off;
        char *q = malloc(plen + n ? plen + n : 1);
        FUZZ_CHECK(q != NULL, "out of memory");
        if (plen) memcpy(q, pend, plen);
        memcpy(q + plen, in + off, n);
        free(pend);
        pend = q;
        plen += n;
        off += n;
        while ((rc = resp_parse(&p, pend, plen)) == RESP_OK) {
            size_t used = resp_consumed(&p);
            FUZZ_CHECK(used > 0 && used <= plen, "consumed %zu of %zu", used, plen);
            trace_request(l, &p);
            q = malloc(plen - used ? plen - used : 1);
            FUZZ_CHECK(q != NULL, "out of memory");
            memcpy(q, pend + used, plen - used);
            free(pend);
            pend = q;
            plen -= used;
            resp_reset(&p);
        }
    }
    if (len == 0) rc = resp_parse(&p, "", 0);
    trace_end(l, &p, rc, pend ? pend : "", plen);
    free(pend);
    resp_fini(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    resp_limits lim;
    limits_from(data[0], &lim);
    uint64_t seed = data[1];
    const char *in = (const char *)data + 2;
    size_t len = size - 2;

    trace whole = { 0 }, chunked = { 0 };
    parse_whole(&lim, in, len, &whole);
    parse_chunked(&lim, in, len, seed, &chunked);
    FUZZ_CHECK(whole.len == chunked.len && memcmp(whole.p, chunked.p, whole.len) == 0,
               "one buffer and chunks differ (%zu vs %zu bytes of results)", whole.len,
               chunked.len);
    free(whole.p);
    free(chunked.p);
    return 0;
}
