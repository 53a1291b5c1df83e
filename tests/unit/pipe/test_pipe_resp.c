/* test_pipe_resp.c -- engram-pipe's RESP2 encoder and reply reader.
 *
 * pipe_resp.c is the engram_client library (engram-pipe's RESP side); this
 * test links it alone.
 *
 * The core check is split-invariance, as for the server's parser: the trace
 * of replies decoded from one feed must equal the trace from the same bytes
 * fed one byte at a time and split at every offset.  Then the errors (each
 * sticky until reset), the limits, and encode -> decode round trips. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engram/util.h"
#include "pipe_resp.h"

/* ---- trace ---------------------------------------------------------------- */

typedef struct trace {
    char buf[8192];
    size_t len;
} trace;

static void tr_put(trace *t, const char *s, size_t n)
{
    assert_true(t->len + n < sizeof(t->buf));
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

/* Bytes with NUL shown as \0, so traces compare as C strings. */
static void tr_bytes(trace *t, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\0')
            tr_put(t, "\\0", 2);
        else
            tr_put(t, s + i, 1);
    }
}

static void tr_reply(trace *t, const pipe_reply *r)
{
    char tmp[64];
    switch (r->type) {
    case PIPE_REPLY_STATUS: tr_put(t, "S(", 2); tr_bytes(t, r->str, r->len); tr_put(t, ")", 1); break;
    case PIPE_REPLY_ERROR: tr_put(t, "E(", 2); tr_bytes(t, r->str, r->len); tr_put(t, ")", 1); break;
    case PIPE_REPLY_BULK: tr_put(t, "B(", 2); tr_bytes(t, r->str, r->len); tr_put(t, ")", 1); break;
    case PIPE_REPLY_NIL: tr_put(t, "nil", 3); break;
    case PIPE_REPLY_INT:
        snprintf(tmp, sizeof(tmp), "I(%lld)", r->integer);
        tr_put(t, tmp, strlen(tmp));
        break;
    case PIPE_REPLY_ARRAY:
        tr_put(t, "[", 1);
        for (size_t i = 0; i < r->nelem; i++) {
            if (i)
                tr_put(t, ",", 1);
            tr_reply(t, &r->elem[i]);
        }
        tr_put(t, "]", 1);
        break;
    }
    if (r->str)
        assert_int_equal(r->str[r->len], '\0');
}

/* Decode everything that is complete; append "|" per reply, "#code" on error. */
static void drain(pipe_reader *r, trace *t)
{
    pipe_reply *rep;
    int rc;
    while ((rc = pipe_reader_next(r, &rep)) == 1) {
        tr_reply(t, rep);
        tr_put(t, "|", 1);
        pipe_reply_free(rep);
    }
    if (rc < 0) {
        char tmp[32];
        snprintf(tmp, sizeof(tmp), "#%d", rc);
        tr_put(t, tmp, strlen(tmp));
    }
}

/* Feed data in pieces cut at the given offsets (sorted, within len). */
static void run_split(const char *data, size_t len, const size_t *cuts, size_t ncuts, trace *t)
{
    pipe_reader r;
    pipe_reader_init(&r);
    size_t from = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : len;
        assert_int_equal(pipe_reader_feed(&r, data + from, to - from), 0);
        drain(&r, t);
        from = to;
    }
    pipe_reader_fini(&r);
}

static void check_split_invariance(const char *data, size_t len, const char *want)
{
    trace whole = {{0}, 0};
    run_split(data, len, NULL, 0, &whole);
    assert_string_equal(whole.buf, want);

    size_t *cuts = malloc((len + 1) * sizeof(size_t));
    assert_non_null(cuts);
    for (size_t i = 0; i + 1 < len; i++)
        cuts[i] = i + 1;
    trace bytes = {{0}, 0};
    run_split(data, len, cuts, len ? len - 1 : 0, &bytes);
    assert_string_equal(bytes.buf, want);

    for (size_t at = 0; at <= len; at++) {
        trace two = {{0}, 0};
        run_split(data, len, &at, 1, &two);
        assert_string_equal(two.buf, want);
    }
    free(cuts);
}

/* ---- tests ----------------------------------------------------------------- */

static void test_all_types_any_split(void **state)
{
    (void)state;
    static const char in[] =
        "+OK\r\n"
        "-ERR no such index 'logs'\r\n"
        ":42\r\n"
        ":-7\r\n"
        "$3\r\nabc\r\n"
        "$6\r\na\r\nb\0c\r\n"          /* binary: CRLF and NUL inside */
        "$0\r\n\r\n"
        "$-1\r\n"
        "*-1\r\n"
        "*0\r\n"
        "*4\r\n$2\r\nid\r\n$3\r\n0.5\r\n*1\r\n:1\r\n$-1\r\n";
    check_split_invariance(in, sizeof(in) - 1,
                           "S(OK)|E(ERR no such index 'logs')|I(42)|I(-7)|B(abc)|B(a\r\nb\\0c)|"
                           "B()|nil|nil|[]|[B(id),B(0.5),[I(1)],nil]|");
}

static void test_integers(void **state)
{
    (void)state;
    static const char in[] = ":9223372036854775807\r\n:-9223372036854775808\r\n:0\r\n";
    check_split_invariance(in, sizeof(in) - 1,
                           "I(9223372036854775807)|I(-9223372036854775808)|I(0)|");
}

static void expect_error(const char *in, size_t len, int code)
{
    pipe_reader r;
    pipe_reader_init(&r);
    assert_int_equal(pipe_reader_feed(&r, in, len), 0);
    pipe_reply *rep = NULL;
    assert_int_equal(pipe_reader_next(&r, &rep), code);
    /* sticky, also after more bytes */
    assert_int_equal(pipe_reader_feed(&r, "+OK\r\n", 5), 0);
    assert_int_equal(pipe_reader_next(&r, &rep), code);
    /* reset starts again on a clean boundary */
    pipe_reader_reset(&r);
    assert_int_equal(pipe_reader_feed(&r, "+OK\r\n", 5), 0);
    assert_int_equal(pipe_reader_next(&r, &rep), 1);
    assert_int_equal(rep->type, PIPE_REPLY_STATUS);
    pipe_reply_free(rep);
    pipe_reader_fini(&r);
}

static void test_protocol_errors(void **state)
{
    (void)state;
    expect_error("?x\r\n", 4, PIPE_RESP_EPROTO);
    expect_error("\0x\r\n", 4, PIPE_RESP_EPROTO);
    expect_error("$3\r\nabcd\r\n", 10, PIPE_RESP_EPROTO);
    expect_error("+OK\rX", 5, PIPE_RESP_EPROTO);
    expect_error(":12a\r\n", 6, PIPE_RESP_EPROTO);
    expect_error(":\r\n", 3, PIPE_RESP_EPROTO);
    expect_error(":-\r\n", 4, PIPE_RESP_EPROTO);
    expect_error(":9223372036854775808\r\n", 22, PIPE_RESP_EPROTO);
    expect_error("$-2\r\n", 5, PIPE_RESP_EPROTO);
    expect_error("*-2\r\n", 5, PIPE_RESP_EPROTO);
    expect_error("$ 1\r\n", 5, PIPE_RESP_EPROTO);
    expect_error("*2\r\n:1\r\n!x\r\n", 12, PIPE_RESP_EPROTO);
}

static void test_limits(void **state)
{
    (void)state;
    expect_error("$536870913\r\n", 12, PIPE_RESP_ELIMIT);
    expect_error("*1048577\r\n", 10, PIPE_RESP_ELIMIT);

    char deep[64] = "";
    for (int i = 0; i <= PIPE_RESP_DEPTH_MAX; i++)
        strcat(deep, "*1\r\n");
    strcat(deep, ":1\r\n");
    expect_error(deep, strlen(deep), PIPE_RESP_ELIMIT);
    /* one level less is fine */
    pipe_reader r;
    pipe_reader_init(&r);
    assert_int_equal(pipe_reader_feed(&r, deep + 4, strlen(deep) - 4), 0);
    pipe_reply *rep;
    assert_int_equal(pipe_reader_next(&r, &rep), 1);
    pipe_reply_free(rep);
    pipe_reader_fini(&r);

    /* a status line without its CRLF beyond the line limit */
    size_t n = PIPE_RESP_LINE_MAX + 2;
    char *big = malloc(n);
    assert_non_null(big);
    big[0] = '+';
    memset(big + 1, 'x', n - 1);
    expect_error(big, n, PIPE_RESP_ELIMIT);
    /* ... but up to the limit it is only "need more" */
    pipe_reader_init(&r);
    assert_int_equal(pipe_reader_feed(&r, big, PIPE_RESP_LINE_MAX), 0);
    assert_int_equal(pipe_reader_next(&r, &rep), 0);
    pipe_reader_fini(&r);
    free(big);
}

/* A big bulk arriving in small pieces: "need more" until the last byte. */
static void test_big_bulk_in_pieces(void **state)
{
    (void)state;
    const size_t n = 1u << 20;
    char head[32];
    int hl = snprintf(head, sizeof(head), "$%zu\r\n", n);
    pipe_reader r;
    pipe_reader_init(&r);
    pipe_reply *rep = NULL;
    assert_int_equal(pipe_reader_feed(&r, head, (size_t)hl), 0);
    assert_int_equal(pipe_reader_next(&r, &rep), 0);
    assert_int_equal(r.need, (size_t)hl + n + 2);
    char chunk[4096];
    memset(chunk, 'z', sizeof(chunk));
    for (size_t done = 0; done < n; done += sizeof(chunk)) {
        assert_int_equal(pipe_reader_feed(&r, chunk, sizeof(chunk)), 0);
        assert_int_equal(pipe_reader_next(&r, &rep), 0);
    }
    assert_int_equal(pipe_reader_feed(&r, "\r", 1), 0);
    assert_int_equal(pipe_reader_next(&r, &rep), 0);
    assert_int_equal(pipe_reader_feed(&r, "\n:5\r\n", 5), 0);
    assert_int_equal(pipe_reader_next(&r, &rep), 1);
    assert_int_equal(rep->type, PIPE_REPLY_BULK);
    assert_int_equal(rep->len, n);
    assert_int_equal(rep->str[0], 'z');
    assert_int_equal(rep->str[n - 1], 'z');
    pipe_reply_free(rep);
    assert_int_equal(pipe_reader_next(&r, &rep), 1);
    assert_int_equal(rep->integer, 5);
    pipe_reply_free(rep);
    assert_int_equal(pipe_reader_next(&r, &rep), 0);
    pipe_reader_fini(&r);
}

static void test_encode(void **state)
{
    (void)state;
    const char *argv[] = {"VADD", "logs", "*", "TEXT", "a\r\nb"};
    size_t lens[] = {4, 4, 1, 4, 4};
    size_t n = pipe_resp_encoded_len(5, lens);
    char *out = malloc(n + 1);
    assert_non_null(out);
    out[n] = '#';
    assert_int_equal(pipe_resp_encode(out, 5, argv, lens), n);
    assert_int_equal(out[n], '#');
    static const char want[] = "*5\r\n$4\r\nVADD\r\n$4\r\nlogs\r\n$1\r\n*\r\n$4\r\nTEXT\r\n$4\r\na\r\nb\r\n";
    assert_int_equal(n, sizeof(want) - 1);
    assert_memory_equal(out, want, n);
    free(out);

    const char *empty[] = {""};
    size_t zero[] = {0};
    char small[16];
    n = pipe_resp_encode(small, 1, empty, zero);
    assert_int_equal(n, pipe_resp_encoded_len(1, zero));
    assert_memory_equal(small, "*1\r\n$0\r\n\r\n", n);
}

/* An encoded request is itself an array of bulks: decoding gives it back. */
static void test_encode_decode_roundtrip(void **state)
{
    (void)state;
    uint64_t seed = 12345;
    for (int round = 0; round < 200; round++) {
        int argc = 1 + (int)(util_rand64(&seed) % 12);
        char *args[12];
        size_t lens[12];
        for (int i = 0; i < argc; i++) {
            lens[i] = (size_t)(util_rand64(&seed) % (round % 10 == 0 ? 20000 : 40));
            args[i] = malloc(lens[i] + 1);
            assert_non_null(args[i]);
            for (size_t j = 0; j < lens[i]; j++)
                args[i][j] = (char)(util_rand64(&seed) & 0xff);
        }
        size_t n = pipe_resp_encoded_len(argc, lens);
        char *wire = malloc(n);
        assert_non_null(wire);
        assert_int_equal(pipe_resp_encode(wire, argc, (const char *const *)args, lens), n);
        pipe_reader r;
        pipe_reader_init(&r);
        size_t step = 1 + (size_t)(util_rand64(&seed) % 97);
        pipe_reply *rep = NULL;
        int got = 0;
        for (size_t off = 0; off < n; off += step) {
            size_t k = n - off < step ? n - off : step;
            assert_int_equal(pipe_reader_feed(&r, wire + off, k), 0);
            int rc = pipe_reader_next(&r, &rep);
            assert_true(rc == 0 || (rc == 1 && off + k == n));
            got |= rc == 1;
        }
        assert_true(got);
        assert_int_equal(rep->type, PIPE_REPLY_ARRAY);
        assert_int_equal(rep->nelem, (size_t)argc);
        for (int i = 0; i < argc; i++) {
            assert_int_equal(rep->elem[i].type, PIPE_REPLY_BULK);
            assert_int_equal(rep->elem[i].len, lens[i]);
            if (lens[i])
                assert_memory_equal(rep->elem[i].str, args[i], lens[i]);
            free(args[i]);
        }
        pipe_reply_free(rep);
        pipe_reader_fini(&r);
        free(wire);
    }
}

static void test_strerror(void **state)
{
    (void)state;
    assert_string_equal(pipe_resp_strerror(PIPE_RESP_EPROTO), "protocol error in server reply");
    assert_string_equal(pipe_resp_strerror(PIPE_RESP_ELIMIT), "server reply exceeds the client's limits");
    assert_string_equal(pipe_resp_strerror(-ENOMEM), strerror(ENOMEM));
    pipe_reply_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_types_any_split),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_protocol_errors),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_big_bulk_in_pieces),
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_encode_decode_roundtrip),
        cmocka_unit_test(test_strerror),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
