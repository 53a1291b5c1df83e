/* test_reply.c -- exact bytes of every reply encoder in RESP2 and RESP3
 * (the double and error texts as redis-server 7.0 sends them), deferred
 * headers before large tails, and the output buffer's drain/compaction. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engram/mem.h"
#include "engram/reply.h"
#include "engram/util.h"

/* The pending bytes must be exactly `want`; then they are drained. */
static void expect_n(reply *r, const char *want, size_t n)
{
    size_t got = reply_pending(r);
    if (got != n || memcmp(r->data + r->sent, want, n) != 0)
        fail_msg("want '%.*s' (%zu), got '%.*s' (%zu)", (int)n, want, n,
                 (int)got, r->data + r->sent, got);
    reply_consumed(r, got);
    assert_int_equal(reply_pending(r), 0);
}
#define EXPECT(r, lit) expect_n(r, lit, sizeof(lit) - 1)

/* Run the same encoder in both protocols. */
typedef struct both {
    reply r2, r3;
} both;

static void both_init(both *b)
{
    reply_init(&b->r2, 2);
    reply_init(&b->r3, 3);
}

static void both_fini(both *b)
{
    reply_fini(&b->r2);
    reply_fini(&b->r3);
}

static void test_simple_types(void **state)
{
    (void)state;
    for (int proto = 2; proto <= 3; proto++) {
        reply r;
        reply_init(&r, proto);
        reply_ok(&r);
        EXPECT(&r, "+OK\r\n");
        reply_simple(&r, "PONG");
        EXPECT(&r, "+PONG\r\n");
        reply_simple(&r, "");
        EXPECT(&r, "+\r\n");
        reply_simple(&r, "a\r\nb\nc\r");        /* cannot break framing */
        EXPECT(&r, "+a  b c \r\n");
        reply_int(&r, 0);
        EXPECT(&r, ":0\r\n");
        reply_int(&r, -1);
        EXPECT(&r, ":-1\r\n");
        reply_int(&r, 1234567890123LL);
        EXPECT(&r, ":1234567890123\r\n");
        reply_int(&r, LLONG_MAX);
        EXPECT(&r, ":9223372036854775807\r\n");
        reply_int(&r, LLONG_MIN);
        EXPECT(&r, ":-9223372036854775808\r\n");
        reply_bulk(&r, "hello", 5);
        EXPECT(&r, "$5\r\nhello\r\n");
        reply_bulk(&r, "", 0);
        EXPECT(&r, "$0\r\n\r\n");
        reply_bulk(&r, NULL, 0);
        EXPECT(&r, "$0\r\n\r\n");
        reply_bulk(&r, "a\0\r\nb", 5);
        EXPECT(&r, "$5\r\na\0\r\nb\r\n");
        reply_bulk_cstr(&r, "xyz");
        EXPECT(&r, "$3\r\nxyz\r\n");
        reply_bulk_ll(&r, 42);
        EXPECT(&r, "$2\r\n42\r\n");
        reply_bulk_ll(&r, 0);
        EXPECT(&r, "$1\r\n0\r\n");
        reply_bulk_ll(&r, LLONG_MIN);
        EXPECT(&r, "$20\r\n-9223372036854775808\r\n");
        reply_array(&r, 3);
        EXPECT(&r, "*3\r\n");
        reply_array(&r, 0);
        EXPECT(&r, "*0\r\n");
        reply_raw(&r, "+RAW\r\n", 6);
        EXPECT(&r, "+RAW\r\n");
        reply_raw(&r, NULL, 0);
        EXPECT(&r, "");
        reply_fini(&r);
    }
}

static void test_proto_dependent(void **state)
{
    (void)state;
    both b;
    both_init(&b);
#define BOTH(call, want2, want3)            \
    do {                                    \
        call(&b.r2);                        \
        EXPECT(&b.r2, want2);               \
        call(&b.r3);                        \
        EXPECT(&b.r3, want3);               \
    } while (0)
#define NULL_(r) reply_null(r)
#define NULLARR(r) reply_null_array(r)
#define NULLCSTR(r) reply_bulk_cstr(r, NULL)
#define MAP2(r) reply_map(r, 2)
#define MAP0(r) reply_map(r, 0)
#define SET3(r) reply_set(r, 3)
#define PUSH3(r) reply_push(r, 3)
#define PUSH12(r) reply_push(r, 12)
#define BOOLT(r) reply_bool(r, 1)
#define BOOLF(r) reply_bool(r, 0)
#define BOOL7(r) reply_bool(r, 7)
    BOTH(NULL_, "$-1\r\n", "_\r\n");
    BOTH(NULLARR, "*-1\r\n", "_\r\n");
    BOTH(NULLCSTR, "$-1\r\n", "_\r\n");
    BOTH(MAP2, "*4\r\n", "%2\r\n");
    BOTH(MAP0, "*0\r\n", "%0\r\n");
    BOTH(SET3, "*3\r\n", "~3\r\n");
    BOTH(PUSH3, "*3\r\n", ">3\r\n");
    BOTH(PUSH12, "*12\r\n", ">12\r\n");
    BOTH(BOOLT, ":1\r\n", "#t\r\n");
    BOTH(BOOLF, ":0\r\n", "#f\r\n");
    BOTH(BOOL7, ":1\r\n", "#t\r\n");
    both_fini(&b);
}

/* ZSCORE as Redis 7.2+/8 replies (d2string: shortest round trip, integers
 * within +-2^62 in full), in RESP2 and after HELLO 3. */
static void test_double(void **state)
{
    (void)state;
    both b;
    both_init(&b);
    static const struct { double v; const char *r2, *r3; } cases[] = {
        { 0.1, "$3\r\n0.1\r\n", ",0.1\r\n" },
        { 3.0, "$1\r\n3\r\n", ",3\r\n" },
        { INFINITY, "$3\r\ninf\r\n", ",inf\r\n" },
        { -INFINITY, "$4\r\n-inf\r\n", ",-inf\r\n" },
        { 1e300, "$6\r\n1e+300\r\n", ",1e+300\r\n" },
        { 5e-324, "$6\r\n5e-324\r\n", ",5e-324\r\n" },
        { 123456789012345678.0, "$18\r\n123456789012345680\r\n", ",123456789012345680\r\n" },
        { 1e-7, "$4\r\n1e-7\r\n", ",1e-7\r\n" },
        { 1.5e21, "$7\r\n1.5e+21\r\n", ",1.5e+21\r\n" },
        { 0.0, "$1\r\n0\r\n", ",0\r\n" },
        { -0.0, "$2\r\n-0\r\n", ",-0\r\n" },
        { -2.5, "$4\r\n-2.5\r\n", ",-2.5\r\n" },
        { NAN, "$3\r\nnan\r\n", ",nan\r\n" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        reply_double(&b.r2, cases[i].v);
        expect_n(&b.r2, cases[i].r2, strlen(cases[i].r2));
        reply_double(&b.r3, cases[i].v);
        expect_n(&b.r3, cases[i].r3, strlen(cases[i].r3));
    }
    both_fini(&b);
}

static void test_float(void **state)
{
    (void)state;
    both b;
    both_init(&b);
    reply_float(&b.r2, 0.1f);
    EXPECT(&b.r2, "$3\r\n0.1\r\n");
    reply_float(&b.r3, 0.1f);
    EXPECT(&b.r3, ",0.1\r\n");
    reply_float(&b.r2, 1.0f / 3.0f);
    EXPECT(&b.r2, "$10\r\n0.33333334\r\n");
    reply_float(&b.r3, -100.0f);
    EXPECT(&b.r3, ",-100\r\n");
    reply_float(&b.r3, INFINITY);
    EXPECT(&b.r3, ",inf\r\n");
    reply_float(&b.r2, NAN);
    EXPECT(&b.r2, "$3\r\nnan\r\n");
    both_fini(&b);
}

static void test_verbatim(void **state)
{
    (void)state;
    both b;
    both_init(&b);
    reply_verbatim(&b.r2, "hello", 5, "txt");
    EXPECT(&b.r2, "$5\r\nhello\r\n");
    reply_verbatim(&b.r3, "hello", 5, "txt");
    EXPECT(&b.r3, "=9\r\ntxt:hello\r\n");
    reply_verbatim(&b.r3, "# x\r\ny", 6, "mkd");
    EXPECT(&b.r3, "=10\r\nmkd:# x\r\ny\r\n");
    reply_verbatim(&b.r3, "", 0, NULL);
    EXPECT(&b.r3, "=4\r\ntxt:\r\n");
    reply_verbatim(&b.r3, "z", 1, "ab");            /* short format: space padded */
    EXPECT(&b.r3, "=5\r\nab :z\r\n");
    reply_verbatim(&b.r3, "z", 1, "toolong");       /* only 3 bytes of it */
    EXPECT(&b.r3, "=5\r\ntoo:z\r\n");
    both_fini(&b);
}

static void test_errors(void **state)
{
    (void)state;
    for (int proto = 2; proto <= 3; proto++) {
        reply r;
        reply_init(&r, proto);
        reply_error(&r, "syntax error");
        EXPECT(&r, "-ERR syntax error\r\n");
        reply_error(&r, "ERR syntax error");
        EXPECT(&r, "-ERR syntax error\r\n");
        reply_error(&r, "WRONGTYPE Operation against a key holding the wrong kind of value");
        EXPECT(&r, "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
        reply_error(&r, "NOAUTH Authentication required.");
        EXPECT(&r, "-NOAUTH Authentication required.\r\n");
        reply_error(&r, "WRONGPASS invalid username-password pair or user is disabled.");
        EXPECT(&r, "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
        reply_error(&r, "EXECABORT Transaction discarded because of previous errors.");
        EXPECT(&r, "-EXECABORT Transaction discarded because of previous errors.\r\n");
        reply_error(&r, "BUSY Redis is busy running a script.");
        EXPECT(&r, "-BUSY Redis is busy running a script.\r\n");
        reply_error(&r, "NOPROTO unsupported protocol version");
        EXPECT(&r, "-NOPROTO unsupported protocol version\r\n");
        reply_error(&r, "NOPERM this user has no permissions");
        EXPECT(&r, "-NOPERM this user has no permissions\r\n");
        /* capitalised words that are not codes: Redis sends these as -ERR */
        reply_error(&r, "EXEC without MULTI");
        EXPECT(&r, "-ERR EXEC without MULTI\r\n");
        reply_error(&r, "MULTI calls can not be nested");
        EXPECT(&r, "-ERR MULTI calls can not be nested\r\n");
        reply_error(&r, "XX and NX options at the same time are not compatible");
        EXPECT(&r, "-ERR XX and NX options at the same time are not compatible\r\n");
        reply_error(&r, "DB index is out of range");
        EXPECT(&r, "-ERR DB index is out of range\r\n");
        reply_error(&r, "Protocol error: invalid multibulk length");
        EXPECT(&r, "-ERR Protocol error: invalid multibulk length\r\n");
        reply_error(&r, "WRONGTYPE");                /* no text after the code */
        EXPECT(&r, "-ERR WRONGTYPE\r\n");
        reply_error(&r, "BUSYX foo");
        EXPECT(&r, "-ERR BUSYX foo\r\n");
        reply_error(&r, "wrongtype lower case");
        EXPECT(&r, "-ERR wrongtype lower case\r\n");
        /* an explicit code, as Redis's addReplyError("-CODE ...") */
        reply_error(&r, "-VECDIM wrong dimension");
        EXPECT(&r, "-VECDIM wrong dimension\r\n");
        reply_error(&r, "");
        EXPECT(&r, "-ERR \r\n");
        /* CR/LF: trimmed at the ends, spaces inside */
        reply_error(&r, "bad\r\nthing\nhere\r");
        EXPECT(&r, "-ERR bad  thing here\r\n");
        reply_error(&r, "\r\n\nWRONGTYPE x\r\n");
        EXPECT(&r, "-WRONGTYPE x\r\n");
        reply_error(&r, "-CODE a\rb");
        EXPECT(&r, "-CODE a b\r\n");
        reply_fini(&r);
    }
}

static void test_errorf(void **state)
{
    (void)state;
    reply r;
    reply_init(&r, 2);
    reply_errorf(&r, "unknown command '%s', with args beginning with: ", "foo");
    EXPECT(&r, "-ERR unknown command 'foo', with args beginning with: \r\n");
    reply_errorf(&r, "wrong vector dimension: index expects %d, got %d", 768, 3);
    EXPECT(&r, "-ERR wrong vector dimension: index expects 768, got 3\r\n");
    reply_errorf(&r, "WRONGTYPE %s", "Operation against a key");
    EXPECT(&r, "-WRONGTYPE Operation against a key\r\n");
    reply_errorf(&r, "name '%s'", "a\r\nb");        /* user text cannot inject a reply */
    EXPECT(&r, "-ERR name 'a  b'\r\n");
    /* longer than the stack buffer */
    char big[3000];
    memset(big, 'q', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    reply_errorf(&r, "x %s y", big);
    char want[3100];
    int n = snprintf(want, sizeof(want), "-ERR x %s y\r\n", big);
    expect_n(&r, want, (size_t)n);
    reply_fini(&r);
}

static void test_large_bulk(void **state)
{
    (void)state;
    reply r;
    reply_init(&r, 2);
    size_t n = 3 * 1024 * 1024 + 7;
    char *v = malloc(n);
    uint64_t seed = 1;
    for (size_t i = 0; i < n; i++) v[i] = (char)util_rand64(&seed);
    reply_int(&r, 1);
    reply_bulk(&r, v, n);
    reply_int(&r, 2);
    char hdr[32];
    int hn = snprintf(hdr, sizeof(hdr), ":1\r\n$%zu\r\n", n);
    assert_int_equal(reply_pending(&r), (size_t)hn + n + 2 + 4);
    assert_memory_equal(r.data, hdr, (size_t)hn);
    assert_memory_equal(r.data + hn, v, n);
    assert_memory_equal(r.data + hn + n, "\r\n:2\r\n", 6);
    reply_fini(&r);
    free(v);
}

/* ---- deferred headers --------------------------------------------------- */

static void test_defer(void **state)
{
    (void)state;
    both b;
    both_init(&b);
    for (int proto = 2; proto <= 3; proto++) {
        reply *r = proto == 2 ? &b.r2 : &b.r3;
        reply_ok(r);
        size_t h = reply_defer(r);
        reply_bulk(r, "a", 1);
        reply_bulk(r, "b", 1);
        reply_defer_array(r, h, 2);
        EXPECT(r, "+OK\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n");

        /* empty */
        h = reply_defer(r);
        reply_defer_array(r, h, 0);
        EXPECT(r, "*0\r\n");

        /* map */
        h = reply_defer(r);
        reply_bulk(r, "k", 1);
        reply_int(r, 1);
        reply_defer_map(r, h, 1);
        if (proto == 2) EXPECT(r, "*2\r\n$1\r\nk\r\n:1\r\n");
        else EXPECT(r, "%1\r\n$1\r\nk\r\n:1\r\n");

        /* nested: innermost first */
        size_t outer = reply_defer(r);
        reply_int(r, 7);
        size_t inner = reply_defer(r);
        reply_int(r, 8);
        reply_int(r, 9);
        reply_defer_array(r, inner, 2);
        reply_defer_array(r, outer, 2);
        EXPECT(r, "*2\r\n:7\r\n*2\r\n:8\r\n:9\r\n");

        /* after a partial write, the handle is still where it was */
        reply_bulk(r, "abcdef", 6);
        reply_consumed(r, 3);
        h = reply_defer(r);
        reply_int(r, 1);
        reply_defer_array(r, h, 1);
        EXPECT(r, "\nabcdef\r\n*1\r\n:1\r\n");
    }
    both_fini(&b);
}

static void test_defer_large_tail(void **state)
{
    (void)state;
    /* 100k elements (~1.2 MB) after the handle, header inserted before
     * them, with a count long enough to need more digits than any guess. */
    reply r;
    reply_init(&r, 3);
    reply_simple(&r, "before");
    size_t h = reply_defer(&r);
    long long n = 100000;
    for (long long i = 0; i < n; i++) reply_int(&r, i);
    size_t tail = r.len - h;
    reply_defer_map(&r, h, n / 2);
    const char *want_hdr = "+before\r\n%50000\r\n";
    size_t wl = strlen(want_hdr);
    assert_int_equal(r.len, wl + tail);
    assert_memory_equal(r.data, want_hdr, wl);
    /* the elements are intact after the move */
    const char *p = r.data + wl;
    for (long long i = 0; i < n; i++) {
        char e[32];
        int el = snprintf(e, sizeof(e), ":%lld\r\n", i);
        assert_memory_equal(p, e, (size_t)el);
        p += el;
    }
    assert_ptr_equal(p, r.data + r.len);

    /* a header that makes the buffer grow exactly at the insert */
    reply_fini(&r);
    reply_init(&r, 2);
    h = reply_defer(&r);
    reply_raw(&r, "x", 1);
    while (r.len < r.cap) reply_raw(&r, "x", 1);
    assert_int_equal(r.len, r.cap);
    size_t before = r.len;
    reply_defer_array(&r, h, 1234567890123LL);
    assert_int_equal(r.len, before + 16);
    assert_memory_equal(r.data, "*1234567890123\r\nxxx", 19);
    assert_int_equal(r.data[r.len - 1], 'x');
    reply_fini(&r);
}

/* ---- draining ----------------------------------------------------------- */

/* reply_reserve: room now, exact size, growth doubles from there. */
static void test_reserve_small(void **state)
{
    (void)state;
    reply r;
    reply_init(&r, 2);
    reply_reserve(&r, 64);
    assert_int_equal(r.cap, 64);
    reply_reserve(&r, 10);                           /* room already */
    assert_int_equal(r.cap, 64);
    reply_bulk(&r, "0123456789012345678901234567890123456789", 40);   /* 47 bytes */
    assert_int_equal(r.cap, 64);
    reply_bulk(&r, "0123456789012345678901234567890123456789", 40);
    assert_int_equal(r.cap, 128);
    reply_reserve(&r, 100);                          /* 94 used: room for 100 more */
    assert_true(r.cap - r.len >= 100);
    EXPECT(&r, "$40\r\n0123456789012345678901234567890123456789\r\n"
               "$40\r\n0123456789012345678901234567890123456789\r\n");
    reply_fini(&r);
}

static void test_consumed_reset_and_shrink(void **state)
{
    (void)state;
    reply r;
    reply_init(&r, 2);
    assert_int_equal(reply_pending(&r), 0);
    reply_ok(&r);
    reply_consumed(&r, 2);
    assert_int_equal(reply_pending(&r), 3);
    assert_memory_equal(r.data + r.sent, "K\r\n", 3);
    reply_consumed(&r, 3);
    /* drained: back to the start of the buffer */
    assert_int_equal(r.len, 0);
    assert_int_equal(r.sent, 0);
    reply_consumed(&r, 0);
    assert_int_equal(r.len, 0);

    /* a huge reply does not pin its buffer once written out */
    char *v = calloc(1, 4 * 1024 * 1024);
    reply_bulk(&r, v, 4 * 1024 * 1024);
    assert_true(r.cap >= 4 * 1024 * 1024);
    reply_consumed(&r, reply_pending(&r));
    assert_true(r.cap <= 64 * 1024);
    free(v);
    /* still usable */
    reply_int(&r, 5);
    EXPECT(&r, ":5\r\n");
    reply_fini(&r);
    reply_fini(&r);                                  /* idempotent */
}

static void test_drain_in_small_writes(void **state)
{
    (void)state;
    /* 8 MB drained 100 bytes at a time.  Compacting on every call would be
     * 80k memmoves of megabytes (minutes); the policy moves < 8 MB in all. */
    reply r;
    reply_init(&r, 2);
    size_t n = 8 * 1024 * 1024;
    char *v = malloc(n);
    uint64_t seed = 5;
    for (size_t i = 0; i < n; i++) v[i] = (char)util_rand64(&seed);
    reply_raw(&r, v, n);
    size_t got = 0;
    int compactions = 0;
    while (reply_pending(&r)) {
        size_t k = reply_pending(&r) < 100 ? reply_pending(&r) : 100;
        assert_memory_equal(r.data + r.sent, v + got, k);
        size_t sent_before = r.sent;
        reply_consumed(&r, k);
        got += k;
        if (r.sent < sent_before + k && reply_pending(&r)) compactions++;
    }
    assert_int_equal(got, n);
    assert_true(compactions <= 32);
    reply_fini(&r);
    free(v);
}

static void test_append_while_draining(void **state)
{
    (void)state;
    /* A slow reader and a pipelining writer: the pending bytes must always
     * be exactly the model's, and the buffer must not grow without bound. */
    reply r;
    reply_init(&r, 2);
    size_t mcap = 1 << 20, mhead = 0, mtail = 0;
    char *model = malloc(mcap);
    uint64_t seed = 11;
    size_t maxcap = 0;
    for (int step = 0; step < 200000; step++) {
        if (util_rand64(&seed) % 3) {
            long long v = (long long)(util_rand64(&seed) % 100000);
            reply_int(&r, v);
            char e[32];
            int el = snprintf(e, sizeof(e), ":%lld\r\n", v);
            if (mtail + (size_t)el > mcap) {
                memmove(model, model + mhead, mtail - mhead);
                mtail -= mhead;
                mhead = 0;
            }
            memcpy(model + mtail, e, (size_t)el);
            mtail += (size_t)el;
        } else {
            size_t k = util_rand64(&seed) % 40;
            if (k > reply_pending(&r)) k = reply_pending(&r);
            reply_consumed(&r, k);
            mhead += k;
        }
        assert_int_equal(reply_pending(&r), mtail - mhead);
        if (step % 97 == 0)
            assert_memory_equal(r.data + r.sent, model + mhead, mtail - mhead);
        if (r.cap > maxcap) maxcap = r.cap;
    }
    assert_memory_equal(r.data + r.sent, model + mhead, mtail - mhead);
    /* the reader keeps up on average, so compaction keeps the buffer small */
    assert_true(maxcap <= 64 * 1024);
    reply_fini(&r);
    free(model);
}

static void test_no_leaks(void **state)
{
    (void)state;
    size_t before = mem_used();
    reply r;
    reply_init(&r, 3);
    for (int i = 0; i < 1000; i++) {
        reply_errorf(&r, "%0*d", 600, i);
        reply_double(&r, i / 7.0);
    }
    reply_fini(&r);
    assert_int_equal(mem_used(), before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_types),
        cmocka_unit_test(test_proto_dependent),
        cmocka_unit_test(test_double),
        cmocka_unit_test(test_float),
        cmocka_unit_test(test_verbatim),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_errorf),
        cmocka_unit_test(test_large_bulk),
        cmocka_unit_test(test_defer),
        cmocka_unit_test(test_defer_large_tail),
        cmocka_unit_test(test_reserve_small),
        cmocka_unit_test(test_consumed_reset_and_shrink),
        cmocka_unit_test(test_drain_in_small_writes),
        cmocka_unit_test(test_append_while_draining),
        cmocka_unit_test(test_no_leaks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
