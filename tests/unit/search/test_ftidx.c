/* test_ftidx.c -- src/search/ftidx.c: the document index.  Schema checks,
 * put / replace / delete and what each leaves in the statistics, TEXT
 * weights and stems in postings and document lengths, TAG splitting and
 * trimming and case, NUMERIC parsing (a bad value changes nothing), the
 * memory figure against an allocator that counts every byte, and failure
 * atomicity: an allocation failing at every point of a put leaves the
 * document absent and nothing leaked. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engram/ftindex.h"
#include "engram/ftquery.h"

/* Counts bytes outstanding; the countdown-th allocation fails. */
typedef struct counting {
    size_t bytes;
    long live;
    long countdown;
} counting;

static void *c_alloc(void *ud, size_t n)
{
    counting *c = ud;
    if (c->countdown >= 0 && c->countdown-- == 0) return NULL;
    c->bytes += n;
    c->live++;
    return malloc(n ? n : 1);
}

static void *c_realloc(void *ud, void *p, size_t old, size_t n)
{
    counting *c = ud;
    if (c->countdown >= 0 && c->countdown-- == 0) return NULL;
    void *q = realloc(p, n ? n : 1);
    if (q) c->bytes = c->bytes - old + n;
    return q;
}

static void c_free(void *ud, void *p, size_t n)
{
    counting *c = ud;
    c->bytes -= n;
    c->live--;
    free(p);
}

static const ftidx_field_def schema[] = {
    { .name = "title", .name_len = 5, .kind = FTIDX_TEXT, .weight = 10 },
    { .name = "body", .name_len = 4, .kind = FTIDX_TEXT },
    { .name = "tags", .name_len = 4, .kind = FTIDX_TAG },
    { .name = "ctag", .name_len = 4, .kind = FTIDX_TAG, .separator = '|', .casesensitive = 1 },
    { .name = "n", .name_len = 1, .kind = FTIDX_NUMERIC },
    { .name = "v", .name_len = 1, .kind = FTIDX_VECTOR },
    { .name = "raw", .name_len = 3, .kind = FTIDX_TEXT, .nostem = 1 },
    { .name = "skip", .name_len = 4, .kind = FTIDX_TEXT, .noindex = 1 },
};
#define NF (sizeof schema / sizeof schema[0])

static ftidx *mk(counting *c)
{
    ftidx_allocator al = { c_alloc, c_realloc, c_free, c };
    int err = 0;
    ftidx *ix = ftidx_new(schema, NF, NULL, c ? &al : NULL, &err);
    assert_non_null(ix);
    return ix;
}

static int put(ftidx *ix, uint32_t doc, const char *title, const char *body, const char *tags,
               const char *n)
{
    ftidx_value v[4];
    size_t k = 0;
    if (title) v[k++] = (ftidx_value){ 0, title, strlen(title) };
    if (body) v[k++] = (ftidx_value){ 1, body, strlen(body) };
    if (tags) v[k++] = (ftidx_value){ 2, tags, strlen(tags) };
    if (n) v[k++] = (ftidx_value){ 4, n, strlen(n) };
    return ftidx_put(ix, doc, v, k, 1.0);
}

/* The matching docs of q as "1 2 3". */
static const char *hits(ftidx *ix, const char *q)
{
    static char buf[512];
    ftq *c;
    ftq_error err;
    assert_int_equal(ftq_compile(ix, q, strlen(q), NULL, &c, &err), 0);
    ftq_result r;
    assert_int_equal(ftq_run(c, ix, FTQ_BM25STD, &r), 0);
    size_t o = 0;
    buf[0] = 0;
    for (size_t i = 0; i < r.n; i++) o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%u", i ? " " : "", r.hits[i].doc);
    ftq_result_fini(&r);
    ftq_free(c);
    return buf;
}

static void expect_stats(ftidx *ix, uint64_t docs, uint64_t terms, uint64_t records,
                         uint64_t tags, uint64_t nums, uint64_t len)
{
    ftidx_stats st;
    ftidx_get_stats(ix, &st);
    assert_int_equal(st.num_docs, docs);
    assert_int_equal(st.num_terms, terms);
    assert_int_equal(st.num_records, records);
    assert_int_equal(st.tag_values, tags);
    assert_int_equal(st.numeric_records, nums);
    assert_int_equal(st.total_doc_len, len);
}

static void test_schema(void **state)
{
    (void)state;
    int err = 0;
    assert_null(ftidx_new(schema, 0, NULL, NULL, &err));
    assert_int_equal(err, -EINVAL);
    ftidx_field_def dup[] = { schema[0], schema[0] };
    assert_null(ftidx_new(dup, 2, NULL, NULL, &err));
    assert_int_equal(err, -EINVAL);
    ftidx_field_def many[FTIDX_TEXT_MAX + 1];
    char names[FTIDX_TEXT_MAX + 1][8];
    for (size_t i = 0; i <= FTIDX_TEXT_MAX; i++) {
        snprintf(names[i], sizeof names[i], "f%zu", i);
        many[i] = (ftidx_field_def){ .name = names[i], .name_len = strlen(names[i]), .kind = FTIDX_TEXT };
    }
    assert_null(ftidx_new(many, FTIDX_TEXT_MAX + 1, NULL, NULL, &err));
    assert_int_equal(err, FTIDX_ELIMIT);
    ftidx *ix = ftidx_new(many, FTIDX_TEXT_MAX, NULL, NULL, &err);
    assert_non_null(ix);
    ftidx_free(ix);
    ix = mk(NULL);
    assert_int_equal(ftidx_nfields(ix), NF);
    assert_int_equal(ftidx_find(ix, "tags", 4), 2);
    assert_int_equal(ftidx_find(ix, "TAGS", 4), -1);
    assert_string_equal(ftidx_field(ix, 0)->name, "title");
    assert_true(ftidx_field(ix, 1)->weight == 1.0);
    assert_int_equal(ftidx_field(ix, 2)->separator, ',');
    assert_ptr_equal(ftidx_stopwords(ix), fttok_stopwords_default());
    ftidx_free(ix);
    ftidx_free(NULL);
    assert_string_equal(ft_strerror(FTIDX_EVALUE), "not a numeric value");
}

static void test_put_replace_delete(void **state)
{
    (void)state;
    ftidx *ix = mk(NULL);
    ftidx_stats st;
    assert_int_equal(put(ix, 1, "hello world", "running fast", "a, b ,c", "5"), 0);
    assert_int_equal(put(ix, 7, "hello", NULL, NULL, NULL), 0);
    ftidx_get_stats(ix, &st);
    assert_int_equal(st.max_doc_id, 7);
    /* terms: hello world running +run fast; length: title weight 10 (2
     * tokens * 10) + body 2 tokens, then 10 */
    expect_stats(ix, 2, 5, 6, 3, 1, 32);
    assert_true(ftidx_has(ix, 1) && ftidx_has(ix, 7) && !ftidx_has(ix, 2) && !ftidx_has(ix, 999));
    assert_string_equal(hits(ix, "hello"), "1 7");
    assert_string_equal(hits(ix, "@tags:{b}"), "1");
    assert_string_equal(hits(ix, "runs"), "1");
    /* replacing: the old entry goes completely */
    assert_int_equal(put(ix, 1, "goodbye", NULL, "z", NULL), 0);
    expect_stats(ix, 2, 3, 3, 1, 0, 20); /* goodbye +goodby hello */
    assert_string_equal(hits(ix, "hello"), "7");
    assert_string_equal(hits(ix, "@tags:{b}"), "");
    assert_string_equal(hits(ix, "@n:[-inf +inf]"), "");
    /* a bad number changes nothing */
    assert_int_equal(put(ix, 1, "other", NULL, NULL, "12x"), FTIDX_EVALUE);
    assert_int_equal(put(ix, 1, "other", NULL, NULL, "nan"), FTIDX_EVALUE);
    assert_int_equal(put(ix, 1, "other", NULL, NULL, ""), FTIDX_EVALUE);
    assert_string_equal(hits(ix, "goodbye"), "1");
    assert_int_equal(put(ix, 1, NULL, NULL, NULL, "-inf"), 0);
    assert_string_equal(hits(ix, "@n:[-inf 0]"), "1");
    assert_int_equal(put(ix, 1, NULL, NULL, NULL, "1e3"), 0);
    assert_string_equal(hits(ix, "@n:[1000 1000]"), "1");
    /* an empty document is a document */
    assert_int_equal(ftidx_put(ix, 3, NULL, 0, 1.0), 0);
    assert_string_equal(hits(ix, "*"), "1 3 7");
    assert_int_equal(ftidx_del(ix, 3), 1);
    assert_int_equal(ftidx_del(ix, 3), 0);
    assert_int_equal(ftidx_del(ix, 12345), 0);
    assert_int_equal(ftidx_del(ix, 1), 1);
    assert_int_equal(ftidx_del(ix, 7), 1);
    expect_stats(ix, 0, 0, 0, 0, 0, 0);
    ftidx_get_stats(ix, &st);
    assert_int_equal(st.max_doc_id, 7);
    /* bad arguments */
    ftidx_value bad = { 99, "x", 1 };
    assert_int_equal(ftidx_put(ix, 1, &bad, 1, 1.0), -EINVAL);
    assert_int_equal(ftidx_put(ix, 1, NULL, 0, -1.0), -EINVAL);
    assert_int_equal(ftidx_put(ix, FTIDX_DOC_MAX, NULL, 0, 1.0), FTIDX_ELIMIT);
    ftidx_free(ix);
}

/* FT.TAGVALS's callback: append "value|". */
static void tagval_cat(void *ud, const char *v, size_t len)
{
    char *out = ud;
    size_t n = strlen(out);
    memcpy(out + n, v, len);
    out[n + len] = '|';
    out[n + len + 1] = 0;
}

static void test_tags_numeric_text_details(void **state)
{
    (void)state;
    ftidx *ix = mk(NULL);
    ftidx_value v[] = {
        { 2, "  Blue Sky , red,,  , GREEN  ", 29 },
        { 3, "Blue Sky|red", 12 },
        { 6, "running runs", 12 },
        { 7, "ignored words", 13 },
        { 5, "\x01\x02\x03\x04", 4 },
    };
    assert_int_equal(ftidx_put(ix, 2, v, 5, 1.0), 0);
    assert_string_equal(hits(ix, "@tags:{blue sky}"), "2");
    assert_string_equal(hits(ix, "@tags:{Blue\\ Sky}"), "2");
    assert_string_equal(hits(ix, "@tags:{green}"), "2");
    assert_string_equal(hits(ix, "@tags:{GREEN}"), "2");
    assert_string_equal(hits(ix, "@ctag:{Blue\\ Sky}"), "2");
    assert_string_equal(hits(ix, "@ctag:{blue\\ sky}"), "");
    assert_string_equal(hits(ix, "@tags:{bl*}"), "2");
    assert_string_equal(hits(ix, "@tags:{*een}"), "2");
    ftidx_stats st;
    ftidx_get_stats(ix, &st);
    assert_int_equal(st.tag_values, 5);
    /* NOSTEM: no +run; NOINDEX: nothing */
    assert_int_equal(st.num_terms, 2);
    assert_string_equal(hits(ix, "run"), "");
    assert_string_equal(hits(ix, "running"), "2");
    assert_string_equal(hits(ix, "ignored"), "");
    /* a tag given twice in one value is one entry */
    ftidx_value t2 = { 2, "x,X,x", 5 };
    assert_int_equal(ftidx_put(ix, 4, &t2, 1, 1.0), 0);
    assert_string_equal(hits(ix, "@tags:{x}"), "4");
    /* FT.TAGVALS: each value once, in byte order; not for other kinds */
    char got[256] = "";
    assert_int_equal(ftidx_tag_values(ix, 2, tagval_cat, got), 4);
    assert_string_equal(got, "blue sky|green|red|x|");
    got[0] = 0;
    assert_int_equal(ftidx_tag_values(ix, 3, tagval_cat, got), 2);
    assert_string_equal(got, "Blue Sky|red|");
    assert_int_equal(ftidx_tag_values(ix, 6, tagval_cat, got), -EINVAL);
    assert_int_equal(ftidx_tag_values(ix, 99, tagval_cat, got), -EINVAL);
    ftidx_del(ix, 2);
    ftidx_del(ix, 4);
    got[0] = 0;
    assert_int_equal(ftidx_tag_values(ix, 2, tagval_cat, got), 0);
    assert_string_equal(got, "");
    ftidx_free(ix);
}

/* The memory figure is what the allocator holds; after deleting
 * everything and adding it again the figure is what it was. */
static void test_memory(void **state)
{
    (void)state;
    counting c = { .countdown = -1 };
    ftidx *ix = mk(&c);
    assert_int_equal(ftidx_memory(ix), c.bytes);
    char text[128];
    for (uint32_t d = 0; d < 300; d++) {
        snprintf(text, sizeof text, "word%u common term%u running", d % 37, d % 5);
        char num[16];
        snprintf(num, sizeof num, "%u", d);
        assert_int_equal(put(ix, d, text, "body text", d % 2 ? "odd" : "even,x", num), 0);
        assert_int_equal(ftidx_memory(ix), c.bytes);
    }
    size_t full = ftidx_memory(ix);
    ftidx_stats st;
    ftidx_get_stats(ix, &st);
    assert_true(st.inverted_bytes > 0 && st.tag_bytes > 0 && st.numeric_bytes > 0 && st.doc_bytes > 0);
    assert_true(st.inverted_bytes + st.tag_bytes + st.numeric_bytes + st.doc_bytes <= full);
    for (uint32_t d = 0; d < 300; d++) assert_int_equal(ftidx_del(ix, d), 1);
    assert_int_equal(ftidx_memory(ix), c.bytes);
    size_t empty = ftidx_memory(ix);
    assert_true(empty < full);
    for (uint32_t d = 0; d < 300; d++) {
        snprintf(text, sizeof text, "word%u common term%u running", d % 37, d % 5);
        char num[16];
        snprintf(num, sizeof num, "%u", d);
        assert_int_equal(put(ix, d, text, "body text", d % 2 ? "odd" : "even,x", num), 0);
    }
    for (uint32_t d = 0; d < 300; d++) assert_int_equal(ftidx_del(ix, d), 1);
    assert_int_equal(ftidx_memory(ix), empty);
    ftidx_free(ix);
    assert_int_equal(c.bytes, 0);
    assert_int_equal(c.live, 0);
}

/* Every allocation of a put failing in turn: -ENOMEM, the document
 * absent, the rest of the index as it was, and no leak at the end. */
static void test_enomem(void **state)
{
    (void)state;
    for (long fail = 0;; fail++) {
        counting c = { .countdown = -1 };
        ftidx *ix = mk(&c);
        assert_int_equal(put(ix, 1, "keep this", NULL, "k", "1"), 0);
        assert_int_equal(put(ix, 2, "old words", NULL, "o", "2"), 0);
        size_t before_terms;
        ftidx_stats st;
        ftidx_get_stats(ix, &st);
        before_terms = st.num_terms;
        c.countdown = fail;
        int rc = put(ix, 2, "hello running world hello", "more text here", "a,b,c", "3.5");
        c.countdown = -1;
        if (rc == 0) {
            assert_string_equal(hits(ix, "running"), "2");
            ftidx_free(ix);
            assert_int_equal(c.live, 0);
            break;
        }
        assert_int_equal(rc, -ENOMEM);
        assert_false(ftidx_has(ix, 2));
        assert_true(ftidx_has(ix, 1));
        assert_string_equal(hits(ix, "keep"), "1");
        assert_string_equal(hits(ix, "@tags:{a}"), "");
        ftidx_get_stats(ix, &st);
        assert_int_equal(st.num_docs, 1);
        assert_true(st.num_terms <= before_terms);
        assert_int_equal(ftidx_memory(ix), c.bytes);
        ftidx_free(ix);
        assert_int_equal(c.bytes, 0);
        assert_int_equal(c.live, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema),
        cmocka_unit_test(test_put_replace_delete),
        cmocka_unit_test(test_tags_numeric_text_details),
        cmocka_unit_test(test_memory),
        cmocka_unit_test(test_enomem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
