/* test_ftexec.c -- src/search/ftexec.c: running queries.
 *   - scores against RediSearch's own published numbers (its
 *     tests/pytests/test_scorers.py corpora: BM25STD, BM25 and TFIDF with
 *     a title of weight 10, document scores and slop) and against values
 *     computed here by hand from the formulas;
 *   - each operator on a small corpus;
 *   - a randomised comparison: random documents and random queries, every
 *     result set (ftq_run, ftq_match per document, the prefilter bitmap)
 *     against a brute-force evaluator written here from the semantics,
 *     and single-word BM25STD scores against a model computed from the
 *     documents' words. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engram/ftquery.h"
#include "engram/stem.h"
#include "testlib.h"

static ftq *compile(ftidx *ix, const char *q)
{
    ftq *c = NULL;
    ftq_error err;
    int rc = ftq_compile(ix, q, strlen(q), NULL, &c, &err);
    if (rc) fprintf(stderr, "compile %s: %s\n", q, err.msg);
    assert_int_equal(rc, 0);
    return c;
}

/* Score of doc for q (asserting it matches). */
static double score(ftidx *ix, const char *q, ftq_scorer sc, uint32_t doc)
{
    ftq *c = compile(ix, q);
    ftq_result r;
    assert_int_equal(ftq_run(c, ix, sc, &r), 0);
    double s = NAN;
    for (size_t i = 0; i < r.n; i++)
        if (r.hits[i].doc == doc) s = r.hits[i].score;
    ftq_result_fini(&r);
    ftq_free(c);
    assert_false(isnan(s));
    return s;
}

static double round2(double v)
{
    return floor(v * 100 + 0.5) / 100;
}

static ftidx *title_body_index(void)
{
    ftidx_field_def f[] = {
        { .name = "title", .name_len = 5, .kind = FTIDX_TEXT, .weight = 10 },
        { .name = "body", .name_len = 4, .kind = FTIDX_TEXT },
    };
    int err;
    ftidx *ix = ftidx_new(f, 2, NULL, NULL, &err);
    assert_non_null(ix);
    return ix;
}

static void put2(ftidx *ix, uint32_t doc, const char *title, const char *body, double dscore)
{
    ftidx_value v[2] = { { 0, title, strlen(title) }, { 1, body ? body : "", body ? strlen(body) : 0 } };
    assert_int_equal(ftidx_put(ix, doc, v, body ? 2 : 1, dscore), 0);
}

/* testBM25STDScorerExplanation: per-term 0.27 / 0.26, totals 0.53, 0.52, 0.52. */
static void test_bm25std_redisearch(void **state)
{
    (void)state;
    ftidx *ix = title_body_index();
    put2(ix, 1, "hello world", "lorem ist ipsum", 1);
    put2(ix, 2, "hello space world", "lorem ist ipsum lorem lorem", 1);
    put2(ix, 3, "hello more space world", "lorem ist ipsum lorem lorem", 1);
    assert_true(round2(score(ix, "hello world", FTQ_BM25STD, 1)) == 0.53);
    assert_true(round2(score(ix, "hello world", FTQ_BM25STD, 2)) == 0.52);
    assert_true(round2(score(ix, "hello world", FTQ_BM25STD, 3)) == 0.52);
    assert_true(round2(score(ix, "hello", FTQ_BM25STD, 1)) == 0.27);
    assert_true(round2(score(ix, "hello", FTQ_BM25STD, 3)) == 0.26);
    /* by hand: N 3, df 3, f 10, len 23 / 35 / 45, avg 103/3 */
    double idf = log(1 + 0.5 / 3.5), avg = 103.0 / 3;
    double want1 = 2 * idf * 10 * (1.2f + 1) / (10 + 1.2f * (1.0f - 0.5f + 0.5f * (23.0 / avg)));
    assert_true(fabs(score(ix, "hello world", FTQ_BM25STD, 1) - want1) < 1e-12);
    /* weights from query attributes: ((hello=>{0.5}|world)=>{0.7})=>{0.3} */
    double w = score(ix, "((@title:(hello => {$weight: 0.5;}|world) => {$weight: 0.7;}) => {$weight: 0.3;})",
                     FTQ_BM25STD, 1);
    assert_true(round2(w) == 0.12);
    ftidx_free(ix);
}

/* testBM25ScorerExplanation and testTFIDFScorerExplanation (' body' is no
 * field there, so lengths are 20, 30, 40). */
static void test_bm25_tfidf_redisearch(void **state)
{
    (void)state;
    ftidx *ix = title_body_index();
    put2(ix, 1, "hello world", NULL, 0.5);
    put2(ix, 2, "hello another world", NULL, 1);
    put2(ix, 3, "hello yet another world", NULL, 0.1);
    /* BM25: each term 10 / (10 + 1.2 * (0.5 + 0.5 * 30)) = 0.35; slop 1, 2, 3 */
    double t = 10.0 / (10 + 1.2f * (1.0f - 0.5f + 0.5f * 30.0));
    assert_true(round2(t) == 0.35);
    assert_true(fabs(score(ix, "hello world", FTQ_BM25, 1) - 0.5 * 2 * t / 1) < 1e-12);
    assert_true(fabs(score(ix, "hello world", FTQ_BM25, 2) - 1.0 * 2 * t / 2) < 1e-12);
    assert_true(fabs(score(ix, "hello world", FTQ_BM25, 3) - 0.1 * 2 * t / 3) < 1e-12);
    /* TFIDF: words 20 (TF 10 * IDF 1, twice) * score / norm 10 / slop */
    assert_true(fabs(score(ix, "hello world", FTQ_TFIDF, 1) - 0.5 * 20 / 10 / 1) < 1e-12);
    assert_true(fabs(score(ix, "hello world", FTQ_TFIDF, 2) - 1.0 * 20 / 10 / 2) < 1e-12);
    assert_true(fabs(score(ix, "hello world", FTQ_TFIDF, 3) - 0.1 * 20 / 10 / 3) < 1e-12);
    /* hello(world(world)): words TFIDF 30, slop 1 */
    assert_true(fabs(score(ix, "hello(world(world))", FTQ_TFIDF, 1) - 0.5 * 30 / 10 / 1) < 1e-12);
    /* TFIDF.DOCNORM divides by the length (20, 30, 40) */
    assert_true(fabs(score(ix, "hello world", FTQ_TFIDF_DOCNORM, 2) - 1.0 * 20 / 30 / 2) < 1e-12);
    /* DOCSCORE, DISMAX (sum of frequencies over the intersection) */
    assert_true(score(ix, "hello world", FTQ_DOCSCORE, 3) == 0.1);
    assert_true(score(ix, "hello world", FTQ_DISMAX, 1) == 20);
    assert_true(score(ix, "hello|world", FTQ_DISMAX, 1) == 10);
    ftidx_free(ix);
}

/* The TFIDF idf is a whole number (logb) and grows with rarity; stems
 * count a fifth of the field weight, never less than 1. */
static void test_tfidf_idf_and_stems(void **state)
{
    (void)state;
    ftidx *ix = title_body_index();
    put2(ix, 0, "rare word", "running", 1);
    for (uint32_t d = 1; d < 8; d++) put2(ix, d, "word", NULL, 1);
    /* N 8: rare df 1 -> logb(1 + 9) = 3; word df 8 -> logb(1 + 9/8) = 1 */
    assert_true(score(ix, "rare", FTQ_TFIDF, 0) == 1.0 * 10 * 3 / 10);
    assert_true(score(ix, "word", FTQ_TFIDF, 0) == 1.0 * 10 * 1 / 10);
    /* "runs" reaches "running" through +run (freq max(1, (int)(1 * 0.2)) = 1) */
    double s = score(ix, "runs", FTQ_TFIDF, 0);
    assert_true(s == 1.0 * 1 * 3 / 10);
    ftidx_free(ix);
}

/* ---- operators on a small corpus ---------------------------------------------- */

static ftidx *small;

static const char *H(const char *q)
{
    static char buf[256];
    ftq *c = compile(small, q);
    ftq_result r;
    assert_int_equal(ftq_run(c, small, FTQ_BM25STD, &r), 0);
    size_t o = 0;
    buf[0] = 0;
    for (size_t i = 0; i < r.n; i++) o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%u", i ? " " : "", r.hits[i].doc);
    for (size_t i = 0; i < r.n; i++) assert_true(ftq_match(c, small, r.hits[i].doc));
    ftq_result_fini(&r);
    ftq_free(c);
    return buf;
}

static void test_operators(void **state)
{
    (void)state;
    ftidx_field_def f[] = {
        { .name = "t", .name_len = 1, .kind = FTIDX_TEXT },
        { .name = "b", .name_len = 1, .kind = FTIDX_TEXT },
        { .name = "g", .name_len = 1, .kind = FTIDX_TAG },
        { .name = "n", .name_len = 1, .kind = FTIDX_NUMERIC },
    };
    int err;
    small = ftidx_new(f, 4, NULL, NULL, &err);
    const char *docs[][4] = {
        { "the quick brown fox", "jumps over the lazy dog", "animal,fast", "5" },
        { "quick brown dogs", "are running fast", "animal", "10" },
        { "brown sugar", "sweet and quick", "food", "15" },
        { "fox news", "quick report", "media,fast", "20" },
    };
    for (uint32_t d = 0; d < 4; d++) {
        ftidx_value v[4];
        for (uint32_t k = 0; k < 4; k++) v[k] = (ftidx_value){ k, docs[d][k], strlen(docs[d][k]) };
        assert_int_equal(ftidx_put(small, d + 1, v, 4, 1.0), 0);
    }
    assert_string_equal(H("quick"), "1 2 3 4");
    assert_string_equal(H("quick brown"), "1 2 3");
    assert_string_equal(H("fox | sugar"), "1 3 4");
    assert_string_equal(H("quick -fox"), "2 3");
    assert_string_equal(H("-fox"), "2 3");
    assert_string_equal(H("~fox"), "1 2 3 4");
    assert_string_equal(H("@t:quick"), "1 2");
    assert_string_equal(H("@b:quick"), "3 4");
    assert_string_equal(H("@t|b:fox"), "1 4");
    assert_string_equal(H("dog"), "1 2");      /* dogs -> +dog */
    assert_string_equal(H("run"), "2");        /* running -> +run */
    assert_string_equal(H("\"quick brown\""), "1 2");
    assert_string_equal(H("\"brown quick\""), "");
    assert_string_equal(H("\"quick fox\""), "");
    assert_string_equal(H("\"brown fox jumps\""), "1");  /* positions run on across fields */
    assert_string_equal(H("bro*"), "1 2 3");
    assert_string_equal(H("*own"), "1 2 3");
    assert_string_equal(H("*ee*"), "3");
    assert_string_equal(H("b*"), "");          /* shorter than MINPREFIX */
    assert_string_equal(H("%quack%"), "1 2 3 4");
    assert_string_equal(H("%%brawn%%"), "1 2 3");
    assert_string_equal(H("@g:{fast}"), "1 4");
    assert_string_equal(H("@g:{fast | food}"), "1 3 4");
    assert_string_equal(H("@g:{fa*}"), "1 4");
    assert_string_equal(H("@g:{f*}"), "");     /* MINPREFIX applies to tags too */
    assert_string_equal(H("@n:[10 15]"), "2 3");
    assert_string_equal(H("@n:[(10 15]"), "3");
    assert_string_equal(H("@n:[10 (15]"), "2");
    assert_string_equal(H("@n:[-inf (10]"), "1");
    assert_string_equal(H("@n:[20]"), "4");
    assert_string_equal(H("@n:[(20 +inf]"), "");
    assert_string_equal(H("quick @g:{animal} -@n:[10 10]"), "1");
    assert_string_equal(H("*"), "1 2 3 4");
    assert_string_equal(H("the"), "");
    assert_string_equal(H("nothing"), "");
    /* SLOP / INORDER through attributes */
    assert_string_equal(H("(quick dog)=>{$slop: 5; $inorder: true}"), "1 2");
    assert_string_equal(H("(quick dog)=>{$slop: 4; $inorder: true}"), "2");
    assert_string_equal(H("(quick dog)=>{$slop: 1}"), "2");
    assert_string_equal(H("(dog quick)=>{$slop: 5; $inorder: true}"), "");
    ftidx_free(small);
}

static void test_prefilter(void **state)
{
    (void)state;
    ftidx_field_def f[] = {
        { .name = "g", .name_len = 1, .kind = FTIDX_TAG },
        { .name = "v", .name_len = 1, .kind = FTIDX_VECTOR },
    };
    int err;
    ftidx *ix = ftidx_new(f, 2, NULL, NULL, &err);
    for (uint32_t d = 0; d < 200; d++) {
        ftidx_value v = { 0, d % 3 ? "b" : "a", 1 };
        assert_int_equal(ftidx_put(ix, d, &v, 1, 1.0), 0);
    }
    ftq_param p = { "x", 1, "blob", 4 };
    ftq_opts o = { .params = &p, .nparams = 1, .slop = -1 };
    ftq *c;
    ftq_error e;
    const char *q = "(@g:{a})=>[KNN 3 @v $x]";
    assert_int_equal(ftq_compile(ix, q, strlen(q), &o, &c, &e), 0);
    assert_non_null(ftq_get_knn(c));
    assert_true(ftq_get_knn(c)->has_filter);
    ftq_filter *flt;
    assert_int_equal(ftq_filter_new(c, ix, &flt), 0);
    assert_int_equal(ftq_filter_count(flt), 67);
    for (uint32_t d = 0; d < 300; d++) {
        int want = d < 200 && d % 3 == 0;
        assert_int_equal(ftq_filter_accept(flt, d), want);
        assert_int_equal(ftq_match(c, ix, d), want);
    }
    ftq_filter_free(flt);
    ftq_filter_free(NULL);
    ftq_free(c);
    q = "*=>[KNN 3 @v $x]";
    assert_int_equal(ftq_compile(ix, q, strlen(q), &o, &c, &e), 0);
    assert_false(ftq_get_knn(c)->has_filter);
    ftq_free(c);
    ftidx_free(ix);
}

/* VECTOR_RANGE: the documents the caller found within range, combined with
 * the rest of the query; none given, none match. */
static void test_vector_range(void **state)
{
    (void)state;
    ftidx_field_def f[] = {
        { .name = "g", .name_len = 1, .kind = FTIDX_TAG },
        { .name = "v", .name_len = 1, .kind = FTIDX_VECTOR },
    };
    int err;
    ftidx *ix = ftidx_new(f, 2, NULL, NULL, &err);
    for (uint32_t d = 0; d < 30; d++) {
        ftidx_value v = { 0, d % 3 ? "b" : "a", 1 };
        assert_int_equal(ftidx_put(ix, d, &v, 1, 1.0), 0);
    }
    ftq_param p[] = { { "x", 1, "blob", 4 }, { "r", 1, "0.2", 3 } };
    ftq_opts o = { .params = p, .nparams = 2, .slop = -1 };
    ftq *c;
    ftq_error e;
    const char *q = "(@v:[VECTOR_RANGE $r $x]=>{$YIELD_DISTANCE_AS: d} @g:{a})";
    assert_int_equal(ftq_compile(ix, q, strlen(q), &o, &c, &e), 0);
    ftq_result r;
    assert_int_equal(ftq_run(c, ix, FTQ_BM25STD, &r), 0);
    assert_int_equal(r.n, 0);            /* no documents handed over yet */
    ftq_result_fini(&r);
    assert_false(ftq_match(c, ix, 3));
    uint32_t in[] = { 1, 3, 4, 6, 29, 40 };   /* 40: not in the index */
    assert_int_equal(ftq_set_range_docs(c, 0, in, 6), 0);
    assert_int_equal(ftq_run(c, ix, FTQ_BM25STD, &r), 0);
    assert_int_equal(r.n, 2);            /* 3 and 6: in range and tagged a */
    assert_int_equal(r.hits[0].doc, 3);
    assert_int_equal(r.hits[1].doc, 6);
    ftq_result_fini(&r);
    for (uint32_t d = 0; d < 45; d++) assert_int_equal(ftq_match(c, ix, d), d == 3 || d == 6);
    ftq_filter *flt;
    assert_int_equal(ftq_filter_new(c, ix, &flt), 0);
    assert_int_equal(ftq_filter_count(flt), 2);
    ftq_filter_free(flt);
    ftq_free(c);
    /* alone, negated, or'ed */
    q = "@v:[VECTOR_RANGE 1 $x]";
    assert_int_equal(ftq_compile(ix, q, strlen(q), &o, &c, &e), 0);
    assert_int_equal(ftq_set_range_docs(c, 0, in, 6), 0);
    assert_int_equal(ftq_run(c, ix, FTQ_TFIDF, &r), 0);
    assert_int_equal(r.n, 5);
    ftq_result_fini(&r);
    ftq_free(c);
    q = "-@v:[VECTOR_RANGE 1 $x] | @g:{a}";
    assert_int_equal(ftq_compile(ix, q, strlen(q), &o, &c, &e), 0);
    assert_int_equal(ftq_set_range_docs(c, 0, in, 6), 0);
    assert_int_equal(ftq_run(c, ix, FTQ_BM25STD, &r), 0);
    assert_int_equal(r.n, 30 - 5 + 2);   /* outside the range, or tagged a (3, 6) */
    ftq_result_fini(&r);
    ftq_free(c);
    ftidx_free(ix);
}

/* ---- the randomised comparison ---------------------------------------------------- */

static const char *vocab[] = { "run", "running", "runs", "cat", "cats", "jump", "jumping",
                               "jumps", "blue", "red", "fast", "the", "of", "caterer" };
#define NV (sizeof vocab / sizeof vocab[0])
#define NDOCS 120

typedef struct mdoc {
    int present;
    int nw;
    const char *w[10];
    int field[10];  /* 0 title, 1 body */
    int tags;       /* bits x y z */
    int has_n;
    int n;
} mdoc;

static mdoc md[NDOCS];

static int is_stop(const char *w)
{
    return !strcmp(w, "the") || !strcmp(w, "of");
}

static size_t stem_of(const char *w, char *out)
{
    size_t n = stem_english(w, strlen(w), out);
    out[n] = 0;
    return n;
}

/* Does word w (as a query word) match token t? */
static int word_hits(const char *w, const char *t)
{
    char sw[32], st[32];
    stem_of(w, sw);
    stem_of(t, st);
    if (!strcmp(t, w)) return 1;
    if (strlen(t) >= 4 && strcmp(st, t) != 0 && !strcmp(st, sw)) return 1; /* +stem */
    if (strcmp(sw, w) != 0 && !strcmp(t, sw)) return 1;
    return 0;
}

typedef struct qn {
    int type; /* 0 word 1 fword 2 tag 3 num 4 prefix 5 phrase 6 and 7 or 8 not */
    const char *w, *w2;
    int field, tags, lo, hi, lo_ex, hi_ex;
    struct qn *a, *b;
} qn;

static qn pool[64];
static int npool;

static const char *nonstop(uint64_t *rng)
{
    for (;;) {
        const char *w = vocab[test_rng_next(rng) % NV];
        if (!is_stop(w)) return w;
    }
}

static qn *gen(uint64_t *rng, int depth)
{
    qn *q = &pool[npool++];
    memset(q, 0, sizeof *q);
    int t = (int)(test_rng_next(rng) % (depth > 0 ? 9 : 6));
    q->type = t;
    switch (t) {
    case 0: case 1: q->w = nonstop(rng); q->field = (int)(test_rng_next(rng) % 2); break;
    case 2: q->tags = 1 + (int)(test_rng_next(rng) % 7); break;
    case 3:
        q->lo = (int)(test_rng_next(rng) % 10);
        q->hi = q->lo + (int)(test_rng_next(rng) % 6);
        q->lo_ex = (int)(test_rng_next(rng) % 2);
        q->hi_ex = (int)(test_rng_next(rng) % 2);
        break;
    case 4: { static const char *pf[] = { "ru", "ca", "ju", "bl", "run" }; q->w = pf[test_rng_next(rng) % 5]; break; }
    case 5:
        q->w = nonstop(rng);
        do q->w2 = nonstop(rng);
        while (!strcmp(q->w, q->w2));
        break;
    default:
        q->a = gen(rng, depth - 1);
        if (t != 8) q->b = gen(rng, depth - 1);
    }
    return q;
}

static size_t render(const qn *q, char *out, size_t cap)
{
    static const char *tagn[] = { "x", "y", "z" };
    char a[384], b[384];
    switch (q->type) {
    case 0: return (size_t)snprintf(out, cap, "%s", q->w);
    case 1: return (size_t)snprintf(out, cap, "@%s:%s", q->field ? "body" : "title", q->w);
    case 2: {
        size_t o = (size_t)snprintf(out, cap, "@tags:{");
        int first = 1;
        for (int i = 0; i < 3; i++)
            if (q->tags & (1 << i)) {
                o += (size_t)snprintf(out + o, cap - o, "%s%s", first ? "" : " | ", tagn[i]);
                first = 0;
            }
        return o + (size_t)snprintf(out + o, cap - o, "}");
    }
    case 3:
        return (size_t)snprintf(out, cap, "@n:[%s%d %s%d]", q->lo_ex ? "(" : "", q->lo, q->hi_ex ? "(" : "", q->hi);
    case 4: return (size_t)snprintf(out, cap, "%s*", q->w);
    case 5: return (size_t)snprintf(out, cap, "\"%s %s\"", q->w, q->w2);
    case 6: render(q->a, a, sizeof a); render(q->b, b, sizeof b); return (size_t)snprintf(out, cap, "(%s %s)", a, b);
    case 7: render(q->a, a, sizeof a); render(q->b, b, sizeof b); return (size_t)snprintf(out, cap, "(%s|%s)", a, b);
    default: render(q->a, a, sizeof a); return (size_t)snprintf(out, cap, "-(%s)", a);
    }
}

/* Non-stopword positions of word index i in doc d (1-based). */
static int pos_of(const mdoc *d, int i)
{
    int p = 0;
    for (int k = 0; k <= i; k++)
        if (!is_stop(d->w[k])) p++;
    return p;
}

static int model(const qn *q, const mdoc *d)
{
    switch (q->type) {
    case 0:
    case 1:
        for (int i = 0; i < d->nw; i++)
            if ((q->type == 0 || d->field[i] == q->field) && !is_stop(d->w[i]) && word_hits(q->w, d->w[i]))
                return 1;
        return 0;
    case 2: return (d->tags & q->tags) != 0;
    case 3: {
        if (!d->has_n) return 0;
        int lo_ok = q->lo_ex ? d->n > q->lo : d->n >= q->lo;
        int hi_ok = q->hi_ex ? d->n < q->hi : d->n <= q->hi;
        return lo_ok && hi_ok;
    }
    case 4:
        for (int i = 0; i < d->nw; i++)
            if (!is_stop(d->w[i]) && !strncmp(d->w[i], q->w, strlen(q->w))) return 1;
        return 0;
    case 5:
        for (int i = 0; i < d->nw; i++)
            for (int j = 0; j < d->nw; j++)
                if (!strcmp(d->w[i], q->w) && !strcmp(d->w[j], q->w2) && pos_of(d, j) == pos_of(d, i) + 1)
                    return 1;
        return 0;
    case 6: return model(q->a, d) && model(q->b, d);
    case 7: return model(q->a, d) || model(q->b, d);
    default: return !model(q->a, d);
    }
}

static void build_docs(ftidx *ix, uint64_t *rng)
{
    for (uint32_t d = 0; d < NDOCS; d++) {
        mdoc *m = &md[d];
        memset(m, 0, sizeof *m);
        if (test_rng_next(rng) % 10 == 0) continue; /* absent */
        m->present = 1;
        int nt = 1 + (int)(test_rng_next(rng) % 4), nb = (int)(test_rng_next(rng) % 6);
        char title[128] = "", body[128] = "";
        for (int i = 0; i < nt + nb; i++) {
            m->w[m->nw] = vocab[test_rng_next(rng) % NV];
            m->field[m->nw] = i >= nt;
            char *dst = i < nt ? title : body;
            strcat(dst, m->w[m->nw]);
            strcat(dst, i % 3 ? " " : ", ");
            m->nw++;
        }
        m->tags = (int)(test_rng_next(rng) % 8);
        char tags[32] = "";
        if (m->tags & 1) strcat(tags, "x,");
        if (m->tags & 2) strcat(tags, " Y ,");
        if (m->tags & 4) strcat(tags, "z");
        m->has_n = test_rng_next(rng) % 4 != 0;
        m->n = (int)(test_rng_next(rng) % 12);
        char num[16];
        snprintf(num, sizeof num, "%d", m->n);
        ftidx_value v[4];
        size_t k = 0;
        v[k++] = (ftidx_value){ 0, title, strlen(title) };
        if (nb) v[k++] = (ftidx_value){ 1, body, strlen(body) };
        v[k++] = (ftidx_value){ 2, tags, strlen(tags) };
        if (m->has_n) v[k++] = (ftidx_value){ 3, num, strlen(num) };
        assert_int_equal(ftidx_put(ix, d, v, k, 1.0), 0);
    }
}

/* BM25STD of a single word, from the model documents. */
static double model_bm25std(const char *w, const mdoc *d)
{
    char sw[32];
    stem_of(w, sw);
    const char *terms[3];
    char plus[40];
    snprintf(plus, sizeof plus, "+%s", sw);
    int nterms = 0;
    terms[nterms++] = w;
    terms[nterms++] = plus;
    if (strcmp(sw, w)) terms[nterms++] = sw;
    double ndocs = 0, total = 0;
    for (int i = 0; i < NDOCS; i++)
        if (md[i].present) {
            ndocs++;
            for (int k = 0; k < md[i].nw; k++) total += !is_stop(md[i].w[k]);
        }
    double avg = total / ndocs, len = 0;
    for (int k = 0; k < d->nw; k++) len += !is_stop(d->w[k]);
    double sum = 0;
    for (int t = 0; t < nterms; t++) {
        /* a document's "frequency" of term t, and t's document count */
        double df = 0, f = 0;
        for (int i = 0; i < NDOCS; i++) {
            if (!md[i].present) continue;
            int c = 0;
            for (int k = 0; k < md[i].nw; k++) {
                const char *tok = md[i].w[k];
                if (is_stop(tok)) continue;
                if (t == 1) {
                    char st[32];
                    stem_of(tok, st);
                    c += strlen(tok) >= 4 && strcmp(st, tok) && !strcmp(st, sw);
                } else {
                    c += !strcmp(tok, terms[t]);
                }
            }
            df += c > 0;
            if (&md[i] == d) f = c;
        }
        if (f == 0) continue;
        double idf = log(1 + (ndocs - df + 0.5) / (df + 0.5));
        sum += idf * f * (1.2f + 1) / (f + 1.2f * (1.0f - 0.5f + 0.5f * (double)(float)len / avg));
    }
    return sum;
}

static void test_random_vs_model(void **state)
{
    (void)state;
    ftidx_field_def f[] = {
        { .name = "title", .name_len = 5, .kind = FTIDX_TEXT },
        { .name = "body", .name_len = 4, .kind = FTIDX_TEXT },
        { .name = "tags", .name_len = 4, .kind = FTIDX_TAG },
        { .name = "n", .name_len = 1, .kind = FTIDX_NUMERIC },
    };
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    int rounds = 30;
    for (int round = 0; round < rounds; round++) {
        int err;
        ftidx *ix = ftidx_new(f, 4, NULL, NULL, &err);
        build_docs(ix, &rng);
        /* some deletions and re-adds, so ids have holes */
        for (uint32_t d = 0; d < NDOCS; d += 7)
            if (md[d].present) {
                assert_int_equal(ftidx_del(ix, d), 1);
                md[d].present = 0;
            }
        for (int qi = 0; qi < 60; qi++) {
            npool = 0;
            qn *q = gen(&rng, 3);
            char text[1024];
            render(q, text, sizeof text);
            ftq *c = compile(ix, text);
            ftq_result r;
            assert_int_equal(ftq_run(c, ix, FTQ_BM25STD, &r), 0);
            ftq_filter *flt;
            assert_int_equal(ftq_filter_new(c, ix, &flt), 0);
            size_t at = 0;
            for (uint32_t d = 0; d < NDOCS; d++) {
                int want = md[d].present && model(q, &md[d]);
                int got = at < r.n && r.hits[at].doc == d;
                if (got) at++;
                if (want != got) fprintf(stderr, "query %s doc %u: want %d got %d\n", text, d, want, got);
                assert_int_equal(want, got);
                assert_int_equal(ftq_match(c, ix, d), want);
                assert_int_equal(ftq_filter_accept(flt, d), want);
                if (got && q->type == 0) {
                    double m = model_bm25std(q->w, &md[d]);
                    assert_true(fabs(r.hits[at - 1].score - m) < 1e-9 * (1 + m));
                }
            }
            assert_int_equal(at, r.n);
            ftq_filter_free(flt);
            ftq_result_fini(&r);
            ftq_free(c);
        }
        ftidx_free(ix);
    }
}

static void test_sort(void **state)
{
    (void)state;
    ftq_hit h[] = { { 3, 1.0 }, { 1, 2.0 }, { 2, 1.0 }, { 0, 0.5 } };
    ftq_sort_by_score(h, 4);
    assert_int_equal(h[0].doc, 1);
    assert_int_equal(h[1].doc, 2);
    assert_int_equal(h[2].doc, 3);
    assert_int_equal(h[3].doc, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bm25std_redisearch),
        cmocka_unit_test(test_bm25_tfidf_redisearch),
        cmocka_unit_test(test_tfidf_idf_and_stems),
        cmocka_unit_test(test_operators),
        cmocka_unit_test(test_prefilter),
        cmocka_unit_test(test_vector_range),
        cmocka_unit_test(test_random_vs_model),
        cmocka_unit_test(test_sort),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
