/* test_ftquery.c -- src/search/ftquery.c: the query compiler.  Each
 * operator and its precedence (through ftq_dump's notation), stopwords,
 * stem expansion, escapes, tags, ranges, PARAMS, query attributes, the KNN
 * clause in its forms, and the errors with RediSearch's texts and offsets
 * (including the scanner's quirk of quoting the previous token's text). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engram/ftquery.h"

static ftidx *ix;

static int setup(void **state)
{
    (void)state;
    ftidx_field_def f[] = {
        { .name = "title", .name_len = 5, .kind = FTIDX_TEXT },
        { .name = "body", .name_len = 4, .kind = FTIDX_TEXT },
        { .name = "tags", .name_len = 4, .kind = FTIDX_TAG },
        { .name = "ctag", .name_len = 4, .kind = FTIDX_TAG, .casesensitive = 1 },
        { .name = "price", .name_len = 5, .kind = FTIDX_NUMERIC },
        { .name = "vec", .name_len = 3, .kind = FTIDX_VECTOR },
        { .name = "nost", .name_len = 4, .kind = FTIDX_TEXT, .nostem = 1 },
    };
    int err;
    ix = ftidx_new(f, sizeof f / sizeof f[0], NULL, NULL, &err);
    return ix ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    ftidx_free(ix);
    return 0;
}

static ftq_param params[] = {
    { "k", 1, "10", 2 },        { "blob", 4, "\x01\x02\x03\x04", 4 }, { "lo", 2, "(5", 2 },
    { "hi", 2, "100", 3 },      { "w", 1, "Hello", 5 },              { "t", 1, "Blue Sky", 8 },
    { "bad", 3, "x1", 2 },      { "ef", 2, "50", 2 },                { "alias", 5, "dist", 4 },
    { "r", 1, "0.5", 3 },
};

static char dumpbuf[1024];
static int strict = 1; /* Redis 8's unknown-field errors */

/* The dump of q, or "ERR <message>". */
static const char *D(const char *q)
{
    ftq_opts o = { .params = params, .nparams = sizeof params / sizeof params[0], .slop = -1,
                   .strict_fields = strict };
    ftq *c = NULL;
    ftq_error err;
    int rc = ftq_compile(ix, q, strlen(q), &o, &c, &err);
    if (rc) {
        snprintf(dumpbuf, sizeof dumpbuf, "ERR %s", err.msg);
        assert_null(c);
        assert_int_equal(rc, err.code);
        return dumpbuf;
    }
    ftq_dump(c, dumpbuf, sizeof dumpbuf);
    ftq_free(c);
    return dumpbuf;
}

#define EQ(q, want) assert_string_equal(D(q), want)

static void test_terms_and_expansion(void **state)
{
    (void)state;
    EQ("hello", "(or hello +hello)");
    EQ("running", "(or running +run run)");
    EQ("Running", "(or running +run run)");
    EQ("run", "(or run +run)");
    EQ("hello world", "(and (or hello +hello) (or world +world))");
    EQ("hello, world.", "(and (or hello +hello) (or world +world))");
    EQ("123", "(or 123 +123)");
    EQ("the", "none");
    EQ("the cat", "(or cat +cat)");
    EQ("", "none");
    EQ("   ", "none");
    EQ("\"the\"", "none");
    EQ("hello\\-world", "(or hello-world +hello-world)");
    EQ("snake_case", "(or snake_case +snake_cas snake_cas)");
    EQ("@nost:running", "running/m4");
    EQ("@nost|title:running", "(or running/m5 +run/m5 run/m5)");
}

static void test_precedence(void **state)
{
    (void)state;
    EQ("a1 b1 | c1 d1", "(or (and (or a1 +a1) (or b1 +b1)) (and (or c1 +c1) (or d1 +d1)))");
    EQ("-a1 b1", "(and (not (or a1 +a1)) (or b1 +b1))");
    EQ("-a1|b1", "(or (not (or a1 +a1)) (or b1 +b1))");
    EQ("-(a1 b1)", "(not (and (or a1 +a1) (or b1 +b1)))");
    EQ("~a1 b1", "(and (opt (or a1 +a1)) (or b1 +b1))");
    EQ("a1 (b1 | c1)", "(and (or a1 +a1) (or (or b1 +b1) (or c1 +c1)))");
    EQ("a1 | b1 | c1", "(or (or a1 +a1) (or b1 +b1) (or c1 +c1))");
    EQ("a1 | the", "(or a1 +a1)");
    EQ("@title:a1 b1", "(and (or a1/m1 +a1/m1) (or b1 +b1))");
    EQ("@title:(a1 b1)", "(and (or a1/m1 +a1/m1) (or b1/m1 +b1/m1))");
    EQ("@title:a1|b1", "(or (or a1/m1 +a1/m1) (or b1 +b1))");
    EQ("@title|body:a1", "(or a1/m3 +a1/m3)");
    EQ("@title:-a1", "(not (or a1/m1 +a1/m1))");
    EQ("@title:(@body:x)", "ERR Syntax error at offset 8 near body");
}

static void test_phrases_affixes(void **state)
{
    (void)state;
    EQ("\"hello world\"", "(phrase hello world)");
    EQ("\"Hello the World\"", "(phrase hello world)");
    EQ("\"running\"", "running");
    EQ("@body:\"a1 b1\"", "(phrase a1/m2 b1/m2)");
    EQ("hel*", "hel*");
    EQ("*llo", "*llo");
    EQ("*ll*", "*ll*");
    EQ("@title:hel*", "hel*/m1");
    EQ("$w*", "hello*");
    EQ("%hello%", "%hello%1");
    EQ("%%hello%%", "%hello%2");
    EQ("$w", "(or hello +hello)");
    EQ("\"$w\"", "$w");
    EQ("\"$w x1\"", "(phrase hello x1)");
}

static void test_tags(void **state)
{
    (void)state;
    EQ("@tags:{Blue}", "(tag:tags {blue})");
    EQ("@ctag:{Blue}", "(tag:ctag {Blue})");
    EQ("@tags:{a | b c | d\\ e}", "(tag:tags {a} {b c} {d e})");
    EQ("@tags:{New York}", "(tag:tags {new york})");
    EQ("@ctag:{New\\ York}", "(tag:ctag {New York})");
    EQ("@tags:{pre*}", "(tag:tags {pre*})");
    EQ("@tags:{$t}", "(tag:tags {blue sky})");
    EQ("@ctag:{$t}", "(tag:ctag {Blue Sky})");
    EQ("@tags:{a\\-b|c\\.d}", "(tag:tags {a-b} {c.d})");
    EQ("@tags:{the}", "(tag:tags {the})");
    EQ("@title:{x}", "none");
    EQ("@tags:{}", "ERR Syntax error at offset 7 near tags");
    EQ("@tags:{a|}", "ERR Syntax error at offset 9 near a");
    EQ("@tags:{a", "ERR Syntax error at offset 7 near a");
}

static void test_ranges(void **state)
{
    (void)state;
    EQ("@price:[1 5]", "[price 1 5]");
    EQ("@price:[(1 (5]", "[price (1 (5]");
    EQ("@price:[-inf +inf]", "[price -inf +inf]");
    EQ("@price:[-5 inf]", "[price -5 +inf]");
    EQ("@price:[- 5 1.5e2]", "[price -5 150]");
    EQ("@price:[7]", "[price 7 7]");
    EQ("@price:[$lo $hi]", "[price (5 100]");
    EQ("@price:[($hi 200]", "[price (100 200]");
    EQ("@price:[1 $bad]", "ERR Invalid numeric value (x1) for parameter `bad`");
    EQ("@price:[1 $nope]", "ERR No such parameter `nope`");
    EQ("@price:[1 2 3]", "ERR Syntax error at offset 13 near 3");
    EQ("@price:[1 2", "ERR Syntax error at offset 10 near 2");
    EQ("@price:[a b]", "ERR GEOSHAPE queries are not supported");
    EQ("@tags:[1 2]", "none");
    EQ("@price:[1 2] @tags:{x}", "(and [price 1 2] (tag:tags {x}))");
    EQ("-@price:[1 2]", "(not [price 1 2])");
}

/* @vec:[VECTOR_RANGE r $blob]=>{$YIELD_DISTANCE_AS: d; $EPSILON: e}, as
 * redisvl's RangeQuery and SemanticCache send it. */
static void test_vector_range(void **state)
{
    (void)state;
    EQ("@vec:[VECTOR_RANGE 2 $blob]", "(vrange vec 2 __vec_score)");
    EQ("@vec:[VECTOR_RANGE $r $blob]=>{$YIELD_DISTANCE_AS: vector_distance}",
       "(vrange vec 0.5 vector_distance)");
    EQ("@vec:[vector_range $r $blob]=>{$yield_distance_as: d; $EPSILON: 0.01}", "(vrange vec 0.5 d)");
    EQ("(@vec:[VECTOR_RANGE $r $blob]=>{$YIELD_DISTANCE_AS: d} @tags:{x})",
       "(and (vrange vec 0.5 d) (tag:tags {x}))");
    EQ("@vec:[VECTOR_RANGE 1 $blob]=>[KNN 3 @vec $blob]", "(knn 3 vec __vec_score (vrange vec 1 __vec_score))");
    EQ("@vec:[VECTOR_RANGE $r $blob]=>{$YIELD_DISTANCE_AS: $alias}", "(vrange vec 0.5 dist)");
    EQ("@price:[VECTOR_RANGE 1 $blob]", "ERR Expected a VECTOR field at offset 0 near price");
    EQ("@vec:[VECTOR_RANGE 1 $nosuch]", "ERR No such parameter `nosuch`");
    EQ("@vec:[VECTOR_RANGE $bad $blob]", "ERR Invalid numeric value (x1) for parameter `bad`");
    EQ("@vec:[VECTOR_RANGE 1 blob]", "ERR Syntax error at offset 21 near blob");
    EQ("@vec:[VECTOR_RANGE 1 $blob]=>{$EPSILON: -1}", "ERR Invalid value (-1) for `EPSILON`");
    EQ("@tags:{x}=>{$yield_distance_as: d}", "ERR Invalid attribute yield_distance_as");
    EQ("@vec:[GEOSHAPE $blob]", "ERR GEOSHAPE queries are not supported");
    /* the clauses, for the caller to resolve */
    ftq_opts o = { .params = params, .nparams = sizeof params / sizeof params[0], .slop = -1 };
    const char *q = "(@vec:[VECTOR_RANGE $r $blob]=>{$YIELD_DISTANCE_AS: d; $EPSILON: 0.01} | "
                    "@vec:[VECTOR_RANGE 3 $blob])";
    ftq *c = NULL;
    ftq_error err;
    assert_int_equal(ftq_compile(ix, q, strlen(q), &o, &c, &err), 0);
    assert_int_equal(ftq_range_count(c), 2);
    const ftq_range *r0 = ftq_get_range(c, 0), *r1 = ftq_get_range(c, 1);
    assert_int_equal(r0->field, 5);
    assert_true(r0->radius == 0.5);
    assert_int_equal(r0->vec_len, 4);
    assert_memory_equal(r0->vec, "\x01\x02\x03\x04", 4);
    assert_true(r0->has_epsilon && r0->epsilon == 0.01);
    assert_int_equal(r0->alias_len, 1);
    assert_memory_equal(r0->alias, "d", 1);
    assert_true(r1->radius == 3 && !r1->has_epsilon);
    assert_string_equal(r1->alias, "__vec_score");
    assert_null(ftq_get_range(c, 2));
    uint32_t docs[] = { 1, 5 };
    assert_int_equal(ftq_set_range_docs(c, 1, docs, 2), 0);
    assert_int_equal(ftq_set_range_docs(c, 2, docs, 2), -EINVAL);
    ftq_free(c);
    q = "@tags:{x}";
    assert_int_equal(ftq_compile(ix, q, strlen(q), &o, &c, &err), 0);
    assert_int_equal(ftq_range_count(c), 0);
    ftq_free(c);
}

static void test_star_and_knn(void **state)
{
    (void)state;
    EQ("*", "*");
    EQ("(*)", "*");
    EQ("((*))", "*");
    EQ("*=>[KNN 10 @vec $blob]", "(knn 10 vec __vec_score *)");
    EQ("* => [KNN $k @vec $blob AS dist]", "(knn 10 vec dist *)");
    EQ("*=>[knn 3 @vec $blob EF_RUNTIME $ef AS $alias]", "(knn 3 vec dist ef=50 *)");
    EQ("*=>[KNN 3 @vec $blob EF_RUNTIME 20]", "(knn 3 vec __vec_score ef=20 *)");
    EQ("(@tags:{x})=>[KNN 3 @vec $blob]", "(knn 3 vec __vec_score (tag:tags {x}))");
    EQ("@tags:{x}=>[KNN 3 @vec $blob]", "(knn 3 vec __vec_score (tag:tags {x}))");
    EQ("@price:[1 2] =>[KNN 3 @vec $blob]", "(knn 3 vec __vec_score [price 1 2])");
    EQ("hello=>[KNN 3 @vec $blob]", "(knn 3 vec __vec_score (or hello +hello))");
    EQ("@title:hello=>[KNN 3 @vec $blob]", "(knn 3 vec __vec_score (or hello/m1 +hello/m1))");
    EQ("(a1 b1)=>[KNN 3 @vec $blob]", "(knn 3 vec __vec_score (and (or a1 +a1) (or b1 +b1)))");
    EQ("the=>[KNN 3 @vec $blob]", "(knn 3 vec __vec_score *)");
    /* the clause's parameters as query attributes (RediSearch 2.6+) */
    EQ("*=>[KNN 3 @vec $blob]=>{$yield_distance_as: d}", "(knn 3 vec d *)");
    EQ("*=>[KNN 3 @vec $blob]=>{$YIELD_DISTANCE_AS: $alias; $EF_RUNTIME: 40}", "(knn 3 vec dist ef=40 *)");
    EQ("(@tags:{x})=>[KNN 3 @vec $blob]=>{$HYBRID_POLICY: ADHOC_BF; $weight: 2}",
       "(knn 3 vec __vec_score (tag:tags {x}))");
    EQ("*=>[KNN 3 @vec $blob EF_RUNTIME 5]=>{$EF_RUNTIME: 6}",
       "ERR Error parsing vector similarity parameters: Field was specified twice");
    EQ("*=>[KNN 3 @vec $blob]=>{$yield_distance_as: title}", "ERR Property `title` already exists in schema");
    EQ("*=>[KNN 3 @vec $blob]=>{$slop: 1}", "ERR Invalid attribute slop");
    EQ("*=>[KNN 3 @vec $blob AS title]", "ERR Property `title` already exists in schema");
    EQ("*=>[KNN 3 @vec $blob EF_RUNTIME -42]",
       "ERR Error parsing vector similarity parameters: Attribute not supported for term");
    EQ("*=>[KNN 3 @vec $blob EF_RUNTIME 2.71828]",
       "ERR Error parsing vector similarity parameters: Attribute not supported for term");
    EQ("*=>[KNN 3 @vec $blob EF_RUNTIME 5 EF_RUNTIME 6]",
       "ERR Error parsing vector similarity parameters: Field was specified twice");
    EQ("*=>[KNN 3 @vec $blob FOO 5]", "ERR Error parsing vector similarity parameters: Invalid option");
    /* a prefilter of more than one unit needs parentheses */
    EQ("a1 b1=>[KNN 3 @vec $blob]", "ERR Syntax error at offset 7 near >[");
    EQ("a1|b1=>[KNN 3 @vec $blob]", "ERR Syntax error at offset 7 near >[");
    EQ("-a1=>[KNN 3 @vec $blob]", "ERR Syntax error at offset 5 near >[");
    EQ("(a1=>[KNN 3 @vec $blob])", "ERR Syntax error at offset 5 near >[");
    EQ("*=>[FOO 3 @vec $blob]", "ERR Syntax error: Expecting Vector Similarity command at offset 4 near FOO");
    EQ("*=>[KNN 3.5 @vec $blob]", "ERR Syntax error at offset 8 near 3.5");
    EQ("*=>[KNN $nope @vec $blob]", "ERR No such parameter `nope`");
    EQ("*=>[KNN 3 @vec $nope]", "ERR No such parameter `nope`");
    EQ("*=>[KNN 3 @nofield $blob]", "ERR Unknown field at offset 10 near nofield");
    EQ("*=>[KNN 3 @vec $blob] x", "ERR Syntax error at offset 22 near x");
    EQ("*=>[KNN 3 @vec $blob", "ERR Syntax error at offset 15 near blob");
    EQ("* hello", "ERR Syntax error at offset 2 near hello");
    EQ("hello *", "ERR Syntax error at offset 6 near hello");
    EQ("(* hello)", "ERR Syntax error at offset 3 near hello");
}

/* RediSearch 2.6: an unknown field matches nothing, no error. */
static void test_lenient_fields(void **state)
{
    (void)state;
    strict = 0;
    EQ("@nope:hello", "(or hello/m0 +hello/m0)");
    EQ("@nope:{a}", "none");
    EQ("@nope:[1 2] x1", "(and none (or x1 +x1))");
    EQ("*=>[KNN 3 @nope $blob]", "(knn 3 ? __nope_score *)");
    strict = 1;
}

/* The queries AI frameworks send (/work/notes/search-transcripts). */
static void test_client_forms(void **state)
{
    (void)state;
    EQ("* => [KNN 4 @vec $blob AS vector_score]", "(knn 4 vec vector_score *)");
    EQ("@title:(a\\-1|b) => [KNN 4 @vec $blob AS vector_score]",
       "(knn 4 vec vector_score (or (or a-1/m1 +a-1/m1) (or b/m1 +b/m1)))");
    EQ("@tags:{alice}=>[KNN 3 @vec $blob AS vector_distance]",
       "(knn 3 vec vector_distance (tag:tags {alice}))");
    EQ("@tags:{alice} =>[KNN 5 @vec $blob AS __vector_score]",
       "(knn 5 vec __vector_score (tag:tags {alice}))");
    EQ("@tags:{0a1b2c3d\\-0000\\-1111\\-2222\\-333344445555}",
       "(tag:tags {0a1b2c3d-0000-1111-2222-333344445555})");
}

static void test_errors(void **state)
{
    (void)state;
    /* the text quoted is the token's own, or for punctuation the previous one's */
    EQ("hello )", "ERR Syntax error at offset 6 near hello");
    EQ("(hello", "ERR Syntax error at offset 1 near hello");
    EQ("hello |", "ERR Syntax error at offset 6 near hello");
    EQ("| hello", "ERR Syntax error at offset 0 near ");
    EQ("()", "ERR Syntax error at offset 1 near ");
    EQ("(@g:\"af-forge\") (test)", "ERR Syntax error at offset 7 near af");
    EQ("@title:", "ERR Syntax error at offset 6 near title");
    EQ("@title hello", "ERR Syntax error at offset 7 near hello");
    EQ("@nope:hello", "ERR Unknown field at offset 0 near nope");
    EQ("x1 @nope:{a}", "ERR Unknown field at offset 3 near nope");
    EQ("@title|nope:hello", "ERR Unknown field at offset 7 near nope");
    EQ("'quoted'", "ERR Syntax error at offset 0 near quoted");
    EQ("hello $nope", "ERR No such parameter `nope`");
    EQ("\"hello", "ERR Syntax error at offset 1 near hello");
    EQ("hello=>{$weight: x}", "ERR Invalid value (x) for `weight`");
    char deep[610];
    memset(deep, '(', 300);
    strcpy(deep + 300, "a");
    memset(deep + 301, ')', 300);
    deep[601] = 0;
    EQ(deep, "ERR Parser stack overflow. Try moving nested parentheses more to the left");
}

static void test_attributes(void **state)
{
    (void)state;
    EQ("hello=>{$weight: 2.5}", "(or hello +hello)^2.5");
    EQ("a1 b1=>{$weight: 2;}", "(and (or a1 +a1) (or b1 +b1)^2)");
    EQ("(a1 b1)=>{$slop: 1; $inorder: true}", "(and~s1~o (or a1 +a1) (or b1 +b1))");
    EQ("hello=>{$weight: $hi}", "(or hello +hello)^100");
}

static void test_opts(void **state)
{
    (void)state;
    ftq *c;
    ftq_error err;
    ftq_opts o = { .verbatim = 1, .slop = -1 };
    assert_int_equal(ftq_compile(ix, "running fast", 12, &o, &c, &err), 0);
    ftq_dump(c, dumpbuf, sizeof dumpbuf);
    assert_string_equal(dumpbuf, "(and running fast)");
    ftq_free(c);
    o = (ftq_opts){ .slop = 2, .has_slop = 1, .inorder = 1 };
    assert_int_equal(ftq_compile(ix, "a1 b1", 5, &o, &c, &err), 0);
    ftq_dump(c, dumpbuf, sizeof dumpbuf);
    assert_string_equal(dumpbuf, "(and~s2~o (or a1 +a1) (or b1 +b1))");
    ftq_free(c);
    assert_int_equal(ftq_compile(ix, NULL, 0, NULL, &c, &err), 0);
    ftq_free(c);
    assert_int_equal(ftq_compile(ix, "x", 1, NULL, NULL, &err), -EINVAL);
    o = (ftq_opts){ .nostopwords = 1, .slop = -1 };
    assert_int_equal(ftq_compile(ix, "the cat", 7, &o, &c, &err), 0);
    ftq_dump(c, dumpbuf, sizeof dumpbuf);
    assert_string_equal(dumpbuf, "(and (or the +the) (or cat +cat))");
    ftq_free(c);
    /* the KNN clause's pieces */
    ftq_opts p = { .params = params, .nparams = sizeof params / sizeof params[0], .slop = -1 };
    const char *q = "(@tags:{x})=>[KNN $k @vec $blob EF_RUNTIME 7 EPSILON 0.5 AS d]";
    assert_int_equal(ftq_compile(ix, q, strlen(q), &p, &c, &err), 0);
    const ftq_knn *k = ftq_get_knn(c);
    assert_non_null(k);
    assert_int_equal(k->k, 10);
    assert_int_equal(k->field, 5);
    assert_int_equal(k->vec_len, 4);
    assert_memory_equal(k->vec, "\x01\x02\x03\x04", 4);
    assert_true(k->has_ef);
    assert_int_equal(k->ef_runtime, 7);
    assert_true(k->has_epsilon);
    assert_int_equal(k->alias_len, 1);
    assert_true(k->has_filter);
    ftq_free(c);
    assert_int_equal(ftq_compile(ix, "hello", 5, &p, &c, &err), 0);
    assert_null(ftq_get_knn(c));
    ftq_free(c);
    assert_int_equal(ftq_scorer_parse("bm25std", 7), FTQ_BM25STD);
    assert_int_equal(ftq_scorer_parse("TFIDF.DOCNORM", 13), FTQ_TFIDF_DOCNORM);
    assert_int_equal(ftq_scorer_parse("nope", 4), -1);
}

/* Random bytes never crash the compiler, and errors always carry text. */
static void test_fuzz(void **state)
{
    (void)state;
    const char alphabet[] = "ab1 -|()@{}[]:;\"*%$~=>\\.,'_tiT";
    uint64_t seed = 42;
    ftq_opts o = { .params = params, .nparams = sizeof params / sizeof params[0], .slop = -1 };
    for (int i = 0; i < 20000; i++) {
        char q[24];
        size_t n = (size_t)(seed % 20);
        for (size_t j = 0; j < n; j++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            q[j] = alphabet[(seed >> 33) % (sizeof alphabet - 1)];
        }
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        ftq *c = NULL;
        ftq_error err;
        int rc = ftq_compile(ix, q, n, &o, &c, &err);
        if (rc) {
            assert_null(c);
            assert_true(err.msg[0] != 0);
        } else {
            ftq_dump(c, dumpbuf, sizeof dumpbuf);
            ftq_free(c);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_terms_and_expansion),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_phrases_affixes),
        cmocka_unit_test(test_tags),
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_star_and_knn),
        cmocka_unit_test(test_vector_range),
        cmocka_unit_test(test_client_forms),
        cmocka_unit_test(test_lenient_fields),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_attributes),
        cmocka_unit_test(test_opts),
        cmocka_unit_test(test_fuzz),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
