/* test_vattr.c -- attribute blocks: what JSON is accepted and what is
 * rejected (with the byte offset), every escape, numbers at their edges,
 * nesting, duplicates (the first wins, as in Redis), how values read back,
 * hash collisions, prefixes of a document read from exact-size buffers (no
 * read past the end), memory accounting and failure at every allocation. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engram/vattr.h"

#include "testlib.h"

/* Parse s strictly; the block or a failed test. */
static vattr *parse_ok(const char *s)
{
    vattr *a = NULL;
    vattr_error e;
    int rc = vattr_new(NULL, s, strlen(s), 0, &a, &e);
    if (rc) fail_msg("rejected %s: %d at %zu: %s", s, rc, e.offset, e.what);
    assert_null(e.what);
    return a;
}

/* s must be rejected with code at offset. */
static void parse_bad(const char *s, size_t len, int code, size_t offset)
{
    vattr *a = (vattr *)1;
    vattr_error e;
    int rc = vattr_new(NULL, s, len, 0, &a, &e);
    if (rc != code || e.offset != offset)
        fail_msg("%.*s: got %d at %zu (%s), want %d at %zu", (int)len, s, rc, e.offset,
                 e.what ? e.what : "-", code, offset);
    assert_null(a);
    assert_non_null(e.what);
}
#define BAD(s, off) parse_bad(s, strlen(s), VEC_ESYNTAX, off)

/* The string member k of a, which must be there. */
static vattr_value get(const vattr *a, const char *k)
{
    vattr_value v;
    if (!vattr_get(a, k, strlen(k), &v)) fail_msg("no member %s", k);
    return v;
}

static void assert_str(const vattr *a, const char *k, const char *want, size_t wlen)
{
    vattr_value v = get(a, k);
    assert_int_equal(v.type, VATTR_STRING);
    assert_int_equal(v.len, wlen);
    assert_memory_equal(v.str, want, wlen);
}

static void test_members(void **state)
{
    (void)state;
    const char *j = " {\"year\": 1984, \"name\":\"The Matrix\" , \"on\": true, \"off\":false,"
                    "\"none\":null, \"tags\":[\"a\", 2, true, null, [1, [2]], \"\"], \"o\":{\"x\":[{}]},"
                    "\"mixed\":[1, {\"y\":2}], \"empty\":[], \"\":7} \n";
    vattr *a = parse_ok(j);
    assert_true(vattr_valid(a));
    assert_int_equal(vattr_count(a), 10);
    size_t len;
    assert_string_equal(vattr_json(a, &len), j);
    assert_int_equal(len, strlen(j));

    vattr_value v = get(a, "year");
    assert_int_equal(v.type, VATTR_NUMBER);
    assert_true(v.num == 1984);
    assert_str(a, "name", "The Matrix", 10);
    v = get(a, "on");
    assert_true(v.type == VATTR_NUMBER && v.num == 1);
    v = get(a, "off");
    assert_true(v.type == VATTR_NUMBER && v.num == 0);
    assert_int_equal(get(a, "none").type, VATTR_NULL);
    assert_int_equal(get(a, "o").type, VATTR_OTHER);
    assert_int_equal(get(a, "mixed").type, VATTR_OTHER); /* an object inside */
    v = get(a, "empty");
    assert_true(v.type == VATTR_ARRAY && v.len == 0);
    v = get(a, "");
    assert_true(v.type == VATTR_NUMBER && v.num == 7);

    vattr_value t = get(a, "tags"), it;
    assert_int_equal(t.type, VATTR_ARRAY);
    assert_int_equal(t.len, 6);
    assert_true(vattr_item(a, &t, 0, &it) && it.type == VATTR_STRING && it.len == 1 && it.str[0] == 'a');
    assert_true(vattr_item(a, &t, 1, &it) && it.type == VATTR_NUMBER && it.num == 2);
    assert_true(vattr_item(a, &t, 2, &it) && it.type == VATTR_NUMBER && it.num == 1);
    assert_true(vattr_item(a, &t, 3, &it) && it.type == VATTR_NULL);
    assert_true(vattr_item(a, &t, 4, &it) && it.type == VATTR_NESTED);
    assert_true(vattr_item(a, &t, 5, &it) && it.type == VATTR_STRING && it.len == 0);
    assert_false(vattr_item(a, &t, 6, &it));
    assert_false(vattr_item(a, &v, 0, &it)); /* not an array */

    assert_false(vattr_get(a, "x", 1, &v)); /* nested members are not members */
    assert_false(vattr_get(a, "yea", 3, &v));
    assert_false(vattr_get(a, "years", 5, &v));
    vattr_free(NULL, a);
    vattr_free(NULL, NULL);
}

static void test_escapes(void **state)
{
    (void)state;
    vattr *a = parse_ok("{\"s\":\"q\\\" b\\\\ s\\/ \\b\\f\\n\\r\\t\", \"u\":\"\\u0041\\u00e9\\u20AC\\ud83d\\ude00\","
                        "\"z\":\"a\\u0000b\", \"raw\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\","
                        "\"k\\u0065y\":1}");
    assert_str(a, "s", "q\" b\\ s/ \b\f\n\r\t", 14);
    assert_str(a, "u", "A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 10);
    assert_str(a, "z", "a\0b", 3);
    assert_str(a, "raw", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9);
    assert_int_equal(get(a, "key").type, VATTR_NUMBER); /* names are decoded too */
    vattr_free(NULL, a);

    BAD("{\"s\":\"\\x\"}", 6);
    BAD("{\"s\":\"\\'\"}", 6);
    BAD("{\"s\":\"\\ud83d\"}", 6);         /* lone high surrogate */
    BAD("{\"s\":\"\\ude00\"}", 6);         /* lone low surrogate */
    BAD("{\"s\":\"\\ud83d\\u0041\"}", 6);  /* high + not low */
    BAD("{\"s\":\"\\ud83dx\"}", 6);
    BAD("{\"s\":\"\\u12G4\"}", 6);
    BAD("{\"s\":\"\\u12\"}", 6);
    BAD("{\"s\":\"\\ud83d\\uZZZZ\"}", 6);
    BAD("{\"s\":\"a\tb\"}", 7);            /* raw control character */
    BAD("{\"s\":\"a\nb\"}", 7);
    BAD("{\"s\":\"abc}", 5);               /* unterminated */
    BAD("{\"s\":\"abc\\", 5);
    BAD("{\"s\":\"\xc0\x80\"}", 6);        /* overlong */
    BAD("{\"s\":\"\xe0\x80\xaf\"}", 6);    /* overlong, 3 bytes */
    BAD("{\"s\":\"\xed\xa0\x80\"}", 6);    /* a surrogate in UTF-8 */
    BAD("{\"s\":\"\xf4\x90\x80\x80\"}", 6); /* past U+10FFFF */
    BAD("{\"s\":\"\xf5\x80\x80\x80\"}", 6);
    BAD("{\"s\":\"\xe2\x82\"}", 6);        /* truncated */
    BAD("{\"s\":\"\x80\"}", 6);            /* stray continuation */
    BAD("{\"s\":\"ab\xff\"}", 8);
    BAD("{\"\xff\":1}", 2);                /* in a name too */
}

static void test_numbers(void **state)
{
    (void)state;
    static const struct { const char *text; double want; } ok[] = {
        { "0", 0 },       { "-0", -0.0 },       { "1.5", 1.5 },    { "-1.5e10", -1.5e10 },
        { "1E+2", 100 },  { "1e-2", 0.01 },     { "10", 10 },      { "0.000001", 1e-6 },
        { "123456789012345678901234567890", 123456789012345678901234567890.0 },
        { "1e400", INFINITY }, { "-1e400", -INFINITY }, { "1e-400", 0 },
    };
    for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++) {
        char j[128];
        snprintf(j, sizeof j, "{\"n\":%s}", ok[k].text);
        vattr *a = parse_ok(j);
        vattr_value v = get(a, "n");
        assert_int_equal(v.type, VATTR_NUMBER);
        if (v.num != ok[k].want) fail_msg("%s read as %g", ok[k].text, v.num);
        vattr_free(NULL, a);
    }
    static const struct { const char *text; size_t off; } bad[] = {
        { "01", 5 },  { "-", 5 },    { "+1", 5 },  { "1.", 7 },   { ".5", 5 },  { "1e", 7 },
        { "1e+", 8 }, { "--1", 5 },  { "0x10", 6 }, { "NaN", 5 }, { "Infinity", 5 },
        { "-a", 5 },  { "1.e3", 7 }, { "00", 5 },  { "1 2", 7 },
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char j[128];
        snprintf(j, sizeof j, "{\"n\":%s}", bad[k].text);
        BAD(j, bad[k].off);
    }
    /* 255 characters are fine, 256 are past the limit */
    char j[600];
    strcpy(j, "{\"n\":");
    memset(j + 5, '1', 255);
    strcpy(j + 260, "}");
    vattr *a = parse_ok(j);
    vattr_free(NULL, a);
    memset(j + 5, '1', 256);
    strcpy(j + 261, "}");
    parse_bad(j, strlen(j), VEC_ELIMIT, 5);
}

static void test_literals_and_structure(void **state)
{
    (void)state;
    BAD("{\"a\":tru}", 5);
    BAD("{\"a\":nul}", 5);
    BAD("{\"a\":True}", 5);
    BAD("{\"a\":truex}", 9);
    BAD("{", 1);
    BAD("{\"a\"}", 4);
    BAD("{\"a\":}", 5);
    BAD("{\"a\":1,}", 7);
    BAD("{,}", 1);
    BAD("{\"a\" 1}", 5);
    BAD("{\"a\":1 \"b\":2}", 7);
    BAD("{a:1}", 1);
    BAD("{'a':1}", 1);
    BAD("{\"a\":[1,]}", 8);
    BAD("{\"a\":[1 2]}", 8);
    BAD("{\"a\":[1}", 7);
    BAD("{\"a\":{\"b\"}}", 9);
    BAD("{\"a\":1}}", 7);   /* trailing data */
    BAD("{} x", 3);
    BAD("{}{}", 2);
    parse_bad("{}\0", 3, VEC_ESYNTAX, 2);
    BAD("\xef\xbb\xbf{}", 0); /* a BOM */
    BAD("[1]", 0);            /* valid JSON, but not an object */
    BAD("5", 0);
    BAD("\"x\"", 0);
    BAD("null", 0);
    BAD("  ", 2);
    BAD("\v{}", 0);           /* JSON whitespace is space, tab, LF, CR */
    parse_bad("", 0, -EINVAL, 0);

    vattr *a = parse_ok(" \t\r\n{ \t\r\n} \t\r\n");
    assert_int_equal(vattr_count(a), 0);
    vattr_free(NULL, a);
    a = parse_ok("{\"a\":[],\"b\":{},\"c\":[[]],\"d\":[{}]}");
    assert_int_equal(get(a, "a").type, VATTR_ARRAY);
    assert_int_equal(get(a, "b").type, VATTR_OTHER);
    assert_int_equal(get(a, "c").type, VATTR_ARRAY);
    assert_int_equal(get(a, "d").type, VATTR_OTHER);
    vattr_free(NULL, a);
}

static void test_depth(void **state)
{
    (void)state;
    /* the top object is level 1: 127 arrays inside reach the limit */
    char j[1024];
    for (int levels = 126; levels <= 128; levels++) {
        size_t n = 0;
        n += (size_t)sprintf(j + n, "{\"a\":");
        for (int k = 0; k < levels; k++) j[n++] = '[';
        for (int k = 0; k < levels; k++) j[n++] = ']';
        j[n++] = '}';
        j[n] = '\0';
        if (levels < 128) {
            vattr *a = parse_ok(j);
            assert_int_equal(get(a, "a").type, VATTR_ARRAY);
            vattr_free(NULL, a);
        } else {
            parse_bad(j, n, VEC_ELIMIT, 5 + 127);
        }
    }
    /* objects count the same */
    size_t n = 0;
    n += (size_t)sprintf(j + n, "{");
    for (int k = 0; k < 128; k++) n += (size_t)sprintf(j + n, "\"%c\":{", 'a' + k % 26);
    n += (size_t)sprintf(j + n, "\"z\":1");
    for (int k = 0; k < 129; k++) j[n++] = '}';
    j[n] = '\0';
    parse_bad(j, n, VEC_ELIMIT, 1 + 5 * 128 - 1);
}

static void test_duplicates(void **state)
{
    (void)state;
    /* Redis seeks the first occurrence; so does the block */
    vattr *a = parse_ok("{\"a\":1,\"b\":\"x\",\"a\":2,\"a\":\"s\",\"b\":null}");
    assert_int_equal(vattr_count(a), 2);
    assert_true(get(a, "a").num == 1);
    assert_str(a, "b", "x", 1);
    vattr_free(NULL, a);
    /* one written with an escape is the same name */
    a = parse_ok("{\"ab\":1,\"a\\u0062\":2}");
    assert_int_equal(vattr_count(a), 1);
    assert_true(get(a, "ab").num == 1);
    vattr_free(NULL, a);
}

static uint32_t fnv(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

typedef struct hn {
    uint32_t h, k;
} hn;

static int hn_cmp(const void *x, const void *y)
{
    const hn *a = x, *b = y;
    return a->h < b->h ? -1 : a->h > b->h ? 1 : (a->k > b->k) - (a->k < b->k);
}

/* Two names with the same 32-bit hash (some 8 pairs are expected among 2^18
 * names), and many members: every one is found. */
static void test_collisions_and_many(void **state)
{
    (void)state;
    uint32_t n = 1u << 18;
    hn *t = malloc(n * sizeof *t);
    char name[32];
    for (uint32_t k = 0; k < n; k++) {
        int l = snprintf(name, sizeof name, "k%u", k);
        t[k] = (hn){ fnv(name, (size_t)l), k };
    }
    qsort(t, n, sizeof *t, hn_cmp);
    uint32_t x = UINT32_MAX, y = 0;
    for (uint32_t k = 1; k < n && x == UINT32_MAX; k++)
        if (t[k].h == t[k - 1].h) x = t[k - 1].k, y = t[k].k;
    free(t);
    assert_true(x != UINT32_MAX);
    char j[256];
    snprintf(j, sizeof j, "{\"k%u\":1,\"zz\":3,\"k%u\":2,\"k%u\":9}", y, x, y);
    vattr *a = parse_ok(j);
    assert_int_equal(vattr_count(a), 3);
    snprintf(name, sizeof name, "k%u", x);
    assert_true(get(a, name).num == 2);
    snprintf(name, sizeof name, "k%u", y);
    assert_true(get(a, name).num == 1);
    vattr_free(NULL, a);

    size_t cap = 64 + 2000 * 24, len = 0;
    char *big = malloc(cap);
    big[len++] = '{';
    for (int k = 0; k < 2000; k++)
        len += (size_t)snprintf(big + len, cap - len, "%s\"m%d\":%d", k ? "," : "", k, k);
    big[len++] = '}';
    big[len] = '\0';
    a = parse_ok(big);
    assert_int_equal(vattr_count(a), 2000);
    for (int k = 0; k < 2000; k++) {
        snprintf(name, sizeof name, "m%d", k);
        assert_true(get(a, name).num == k);
    }
    vattr_value v;
    assert_false(vattr_get(a, "m2000", 5, &v));
    vattr_free(NULL, a);
    free(big);
}

/* A string's number is Redis's: strtod over the whole string, < 256 bytes. */
static void test_string_numbers(void **state)
{
    (void)state;
    char j[700];
    strcpy(j, "{\"a\":\"12.5\",\"b\":\"abc\",\"c\":\" 5\",\"d\":\"5 \",\"e\":\"\",\"f\":\"0x10\",\"g\":\"1e3\","
              "\"h\":\"-2\",\"i\":\"");
    size_t n = strlen(j);
    memset(j + n, '1', 256);
    strcpy(j + n + 256, "\"}");
    vattr *a = parse_ok(j);
    static const struct { const char *k; double v; } want[] = {
        { "a", 12.5 }, { "b", 0 }, { "c", 5 }, { "d", 0 }, { "e", 0 },
        { "f", 16 },   { "g", 1000 }, { "h", -2 }, { "i", 0 },
    };
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        vattr_value v = get(a, want[k].k);
        assert_int_equal(v.type, VATTR_STRING);
        if (v.num != want[k].v) fail_msg("\"%s\" reads as %g", want[k].k, v.num);
    }
    vattr_free(NULL, a);
}

/* Every prefix of a document, each in a buffer of exactly its size (ASan
 * sees any read past it), is rejected; the whole is accepted. */
static void test_prefixes(void **state)
{
    (void)state;
    const char *doc = "{\"a\": [1, -2.5e3, \"x\\u00e9\\ud83d\\ude00\", true, false, null, [[]], {}],"
                      " \"b\": {\"c\": \"\\n\"}, \"d\": \"\xe2\x82\xac\"}";
    size_t n = strlen(doc);
    for (size_t len = 1; len <= n; len++) {
        char *buf = malloc(len);
        memcpy(buf, doc, len);
        vattr *a = NULL;
        vattr_error e;
        int rc = vattr_new(NULL, buf, len, 0, &a, &e);
        if (len < n) {
            assert_int_equal(rc, VEC_ESYNTAX);
            assert_true(e.offset <= len);
            assert_null(a);
        } else {
            assert_int_equal(rc, 0);
            vattr_free(NULL, a);
        }
        free(buf);
    }
}

static void test_keep_invalid(void **state)
{
    (void)state;
    static const char *texts[] = { "invalid json", "[1,2]", "{\"a\":1", "{{invalid json}}", "5" };
    for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++) {
        vattr *a = NULL;
        vattr_error e;
        assert_int_equal(vattr_new(NULL, texts[k], strlen(texts[k]), VATTR_KEEP_INVALID, &a, &e), 0);
        assert_non_null(a);
        assert_non_null(e.what);
        assert_false(vattr_valid(a));
        assert_int_equal(vattr_count(a), 0);
        size_t len;
        assert_string_equal(vattr_json(a, &len), texts[k]);
        vattr_value v;
        assert_false(vattr_get(a, "a", 1, &v));
        vattr_free(NULL, a);
    }
    vattr *a = NULL;
    vattr_error e;
    assert_int_equal(vattr_new(NULL, "{\"a\":1}", 7, VATTR_KEEP_INVALID, &a, &e), 0);
    assert_null(e.what);
    assert_true(vattr_valid(a));
    vattr_free(NULL, a);
    /* empty text: refused strictly, kept (an empty, invalid block) as Redis
     * keeps an empty attribute on a new element */
    assert_int_equal(vattr_new(NULL, "", 0, 0, &a, &e), -EINVAL);
    assert_null(a);
    assert_int_equal(vattr_new(NULL, NULL, 0, VATTR_KEEP_INVALID, &a, &e), 0);
    assert_non_null(e.what);
    assert_false(vattr_valid(a));
    size_t len = 99;
    assert_string_equal(vattr_json(a, &len), "");
    assert_int_equal(len, 0);
    vattr_free(NULL, a);
    assert_int_equal(vattr_new(NULL, NULL, 3, VATTR_KEEP_INVALID, &a, &e), -EINVAL);
    assert_int_equal(vattr_new(NULL, "{}", 2, 0, NULL, &e), -EINVAL);
    /* past the size limit: kept as text alone */
    size_t big = VATTR_JSON_MAX + 1;
    char *t = malloc(big);
    assert_non_null(t);
    memset(t, ' ', big);
    t[0] = '{';
    t[big - 1] = '}';
    assert_int_equal(vattr_new(NULL, t, big, 0, &a, &e), VEC_ELIMIT);
    assert_int_equal(vattr_new(NULL, t, big, VATTR_KEEP_INVALID, &a, &e), 0);
    assert_false(vattr_valid(a));
    assert_int_equal(vattr_size(a) >= big, 1);
    vattr_free(NULL, a);
    free(t);
}

static void test_memory(void **state)
{
    (void)state;
    const char *j = "{\"a\":[1,2,3],\"b\":\"hello\",\"c\":{\"d\":1}}";
    vec_mem m;
    vec_mem_init(&m, NULL);
    vattr *a = NULL;
    assert_int_equal(vattr_new(&m, j, strlen(j), 0, &a, NULL), 0);
    assert_int_equal(m.bytes, vattr_size(a));
    assert_true(vattr_size(a) > strlen(j));
    vattr_free(&m, a);
    assert_int_equal(m.bytes, 0);

    /* an allocation failure leaves nothing behind */
    fail_alloc fa = { .countdown = 0 };
    vec_allocator al = { f_alloc, f_free, &fa, NULL };
    vec_mem_init(&m, &al);
    assert_int_equal(vattr_new(&m, j, strlen(j), 0, &a, NULL), -ENOMEM);
    assert_null(a);
    assert_int_equal(fa.live, 0);
    assert_int_equal(m.bytes, 0);
    fa.countdown = 0;
    assert_int_equal(vattr_new(&m, "x", 1, VATTR_KEEP_INVALID, &a, NULL), -ENOMEM);
    fa.countdown = -1;
    assert_int_equal(vattr_new(&m, j, strlen(j), 0, &a, NULL), 0);
    assert_int_equal(fa.live, 1);
    vattr_free(&m, a);
    assert_int_equal(fa.live, 0);
    assert_int_equal(m.bytes, 0);

    /* more than 32 members sort in temporaries: fail each allocation */
    char big[1024];
    size_t n = 0;
    big[n++] = '{';
    for (int k = 0; k < 40; k++) n += (size_t)sprintf(big + n, "%s\"m%d\":%d", k ? "," : "", 39 - k, k);
    big[n++] = '}';
    for (long k = 0;; k++) {
        fa = (fail_alloc){ .countdown = k };
        vec_mem_init(&m, &al);
        int rc = vattr_new(&m, big, n, 0, &a, NULL);
        if (rc == 0) {
            assert_int_equal(k, 3);
            assert_int_equal(fa.live, 1);
            assert_int_equal(vattr_count(a), 40);
            vattr_free(&m, a);
            break;
        }
        assert_int_equal(rc, -ENOMEM);
        assert_null(a);
        assert_int_equal(fa.live, 0);
        assert_int_equal(m.bytes, 0);
    }

    /* past the size limit */
    assert_int_equal(vattr_new(NULL, j, (size_t)VATTR_JSON_MAX + 1, 0, &a, NULL), VEC_ELIMIT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_members),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_literals_and_structure),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_collisions_and_many),
        cmocka_unit_test(test_string_numbers),
        cmocka_unit_test(test_prefixes),
        cmocka_unit_test(test_keep_invalid),
        cmocka_unit_test(test_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
