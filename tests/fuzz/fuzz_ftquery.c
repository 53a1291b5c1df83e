/* fuzz_ftquery.c -- the FT.SEARCH query compiler (ftquery.h: ftq_compile)
 * against a fixed schema, and the executor (ftexec.c) on a small index.
 *
 * Feeds: byte 0 as the options (bit 0 VERBATIM, bit 1 NOSTOPWORDS, bit 2
 * INORDER, bit 3 a SLOP of 0..3 from bits 4-5, bit 6 Redis 8's strict
 * unknown fields, bit 7 a MAXEXPANSIONS of 3), byte 1 as the scorer; the
 * rest as the query text, with the PARAMS of tests/unit/search's tests
 * ($k, $blob, $lo, $hi, $w, $t, $bad, $ef, $alias).  The schema is that of
 * test_ftquery.c (title, body, nost TEXT; tags, ctag TAG; price NUMERIC;
 * vec VECTOR); the index holds a dozen documents with stems, stopwords,
 * tags and prices, and holes left by deleted ones.
 *
 * Checks: a refused query has no tree, a code among FTQ_ESYNTAX /
 * FTQ_EFIELD / FTQ_EPARAM equal to err.code, a message, and an offset
 * within the text; a compiled one dumps within its buffer, and its three
 * ways of running agree -- the set ftq_run returns (ascending ids, finite
 * scores), ftq_match asked per document, and the prefilter bitmap
 * (ftq_filter_new) -- for every document id, as test_ftexec.c checks on
 * generated queries. */
#include "fuzz.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "engram/ftquery.h"

static ftidx *ix;
#define NDOCS 16u

static const ftq_param params[] = {
    { "k", 1, "10", 2 },   { "blob", 4, "\x01\x02\x03\x04", 4 }, { "lo", 2, "(5", 2 },
    { "hi", 2, "100", 3 }, { "w", 1, "Hello", 5 },              { "t", 1, "Blue Sky", 8 },
    { "bad", 3, "x1", 2 }, { "ef", 2, "50", 2 },                { "alias", 5, "dist", 4 },
};

static const char *docs[][5] = {  /* title, body, tags, ctag, price */
    { "hello world", "the quick brown fox", "blue,red", "Blue", "10" },
    { "Running runners", "run ran running", "green", "Green", "5" },
    { "hello", "world hello world", "blue sky,new york", "Blue Sky", "100" },
    { "a b c", "and the of to", "a-b,c.d", "New York", "-3.5" },
    { "fox", "jumped over the lazy dog", "red", "red", "1e3" },
    { "héllo wörld", "unicode text", "blue", "BLUE", "7" },
    { "", "hello", "", "", "0" },
    { "numbers 123 456", "hello-world hello_world", "x", "X", "inf" },
    { "prefix prefer preference", "pre", "pre,prefix", "Pre", "42" },
    { "the", "the the the", "the", "the", "5" },
    { "quick quicker quickest", "brown browner", "brown", "Brown", "6" },
    { "hello world again", "fox dog cat", "blue,green", "Green", "99" },
};
#define NSRC (sizeof docs / sizeof docs[0])

static void setup(void)
{
    if (ix) return;
    ftidx_field_def f[] = {
        { .name = "title", .name_len = 5, .kind = FTIDX_TEXT, .weight = 2 },
        { .name = "body", .name_len = 4, .kind = FTIDX_TEXT },
        { .name = "tags", .name_len = 4, .kind = FTIDX_TAG },
        { .name = "ctag", .name_len = 4, .kind = FTIDX_TAG, .casesensitive = 1 },
        { .name = "price", .name_len = 5, .kind = FTIDX_NUMERIC },
        { .name = "vec", .name_len = 3, .kind = FTIDX_VECTOR },
        { .name = "nost", .name_len = 4, .kind = FTIDX_TEXT, .nostem = 1 },
    };
    int err;
    ix = ftidx_new(f, sizeof f / sizeof f[0], NULL, NULL, &err);
    FUZZ_CHECK(ix != NULL, "ftidx_new: %d", err);
    for (uint32_t d = 0; d < NDOCS; d++) {
        const char *const *s = docs[d % NSRC];
        ftidx_value v[6];
        size_t n = 0;
        for (uint32_t i = 0; i < 5; i++) v[n++] = (ftidx_value){ i, s[i], strlen(s[i]) };
        v[n++] = (ftidx_value){ 6, s[1], strlen(s[1]) };
        int rc = ftidx_put(ix, d, v, n, 1.0 + d % 3);
        FUZZ_CHECK(rc == 0 || rc == FTIDX_EVALUE, "ftidx_put %u: %d", d, rc);
    }
    ftidx_del(ix, 3);
    ftidx_del(ix, 13);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    if (size < 2) return 0;
    uint8_t fl = data[0];
    ftq_opts o = {
        .params = params, .nparams = sizeof params / sizeof params[0],
        .verbatim = fl & 1, .nostopwords = (fl >> 1) & 1, .inorder = (fl >> 2) & 1,
        .slop = (fl & 8) ? (fl >> 4) & 3 : -1, .has_slop = (fl >> 3) & 1,
        .strict_fields = (fl >> 6) & 1, .max_expansions = (fl & 128) ? 3 : 0,
    };
    ftq_scorer sc = (ftq_scorer)(data[1] % 6);
    const char *text = (const char *)data + 2;
    size_t len = size - 2;
    char *copy = malloc(len ? len : 1);   /* ASan: reads past the text */
    FUZZ_CHECK(copy != NULL, "out of memory");
    if (len) memcpy(copy, text, len);

    ftq *q = NULL;
    ftq_error err;
    memset(&err, 0, sizeof err);
    int rc = ftq_compile(ix, copy, len, &o, &q, &err);
    if (rc != 0) {
        FUZZ_CHECK(q == NULL, "a query on failure");
        FUZZ_CHECK(rc == -ENOMEM || (rc == err.code && (rc == FTQ_ESYNTAX || rc == FTQ_EFIELD ||
                                                        rc == FTQ_EPARAM)),
                   "code %d, err.code %d", rc, err.code);
        FUZZ_CHECK(memchr(err.msg, 0, sizeof err.msg) && err.msg[0], "no message");
        FUZZ_CHECK(err.offset <= len, "offset %zu past the text (%zu)", err.offset, len);
        free(copy);
        return 0;
    }
    char dump[256];
    size_t full = ftq_dump(q, dump, sizeof dump);
    FUZZ_CHECK(strlen(dump) < sizeof dump && strlen(dump) <= full, "dump");

    ftq_result res;
    FUZZ_CHECK(ftq_run(q, ix, sc, &res) == 0, "ftq_run");
    ftq_filter *flt = NULL;
    FUZZ_CHECK(ftq_filter_new(q, ix, &flt) == 0, "ftq_filter_new");
    FUZZ_CHECK(ftq_filter_count(flt) == res.n, "bitmap holds %zu, run found %zu",
               ftq_filter_count(flt), res.n);
    size_t at = 0;
    for (uint32_t d = 0; d < NDOCS + 2; d++) {
        int got = at < res.n && res.hits[at].doc == d;
        if (got) {
            FUZZ_CHECK(!isnan(res.hits[at].score), "score NaN for doc %u", d);
            at++;
        }
        FUZZ_CHECK(ftq_match(q, ix, d) == got, "doc %u: run says %d, match says %d (%s)", d, got,
                   !got, dump);
        FUZZ_CHECK(ftq_filter_accept(flt, d) == got, "doc %u: run says %d, bitmap %d (%s)", d,
                   got, !got, dump);
    }
    FUZZ_CHECK(at == res.n, "hits not ascending, or beyond the documents");
    ftq_sort_by_score(res.hits, res.n);
    ftq_filter_free(flt);
    ftq_result_fini(&res);
    ftq_free(q);
    free(copy);
    return 0;
}
