/* fuzz_vfilter.c -- the FILTER expression compiler and its evaluator
 * (vfilter.h: VSIM ... FILTER, VSEARCH ... FILTER).
 *
 * Feeds: the input up to its first NUL byte as the expression; what
 * follows the NUL (if any) as an element's JSON attributes (kept as Redis
 * keeps them, valid or not).
 *
 * Checks: a refused expression gives VEC_ESYNTAX or VEC_ELIMIT with an
 * offset inside the text (or 0) and a static reason, and Redis's error
 * reply formats within its buffer; a compiled one evaluates to 0 or 1
 * against no attributes (always 0), a few fixed attribute blocks and the
 * fuzzed one, the same answer twice (it is immutable and allocation-free). */
#include "fuzz.h"

#include <string.h>

#include "engram/vfilter.h"

static const char *fixed_attrs[] = {
    "{\"year\": 1999, \"genre\": \"drama\", \"rating\": 7.5, \"tags\": [\"a\", \"b\", 3]}",
    "{\"x\": null, \"sold_out\": true, \"name\": \"42\", \"nested\": {\"a\": 1}}",
    "{\"a\": [[1]], \"b\": \"\", \"c\": -0.0, \"d\": 1e308, \"e\": false}",
    "not json at all",
};
#define NFIXED (sizeof fixed_attrs / sizeof fixed_attrs[0])

static vattr *fixed[NFIXED];

static void init_fixed(void)
{
    if (fixed[0]) return;
    for (size_t i = 0; i < NFIXED; i++) {
        vattr_error e;
        int rc = vattr_new(NULL, fixed_attrs[i], strlen(fixed_attrs[i]), VATTR_KEEP_INVALID,
                           &fixed[i], &e);
        FUZZ_CHECK(rc == 0, "fixed attributes %zu: %d", i, rc);
    }
}

static void match(const vfilter *f, const vattr *a)
{
    int m = vfilter_match(f, a);
    FUZZ_CHECK(m == 0 || m == 1, "match returned %d", m);
    FUZZ_CHECK(vfilter_match(f, a) == m, "two evaluations differ");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_fixed();
    if (size == 0) data = (const uint8_t *)"";   /* libFuzzer's empty input may be NULL */
    const char *expr = (const char *)data;
    const uint8_t *nul = memchr(data, 0, size);
    size_t len = nul ? (size_t)(nul - data) : size;

    vfilter *f = NULL;
    vfilter_error err = { 0, NULL };
    int rc = vfilter_compile(NULL, expr, len, &f, &err);
    if (rc != 0) {
        FUZZ_CHECK(f == NULL, "a filter on failure");
        FUZZ_CHECK(rc == VEC_ESYNTAX || rc == VEC_ELIMIT, "code %d", rc);
        FUZZ_CHECK(err.what != NULL, "no reason");
        FUZZ_CHECK(err.offset == 0 || err.offset < len, "offset %zu, length %zu", err.offset, len);
        char msg[128];
        size_t full = vfilter_format_error(msg, sizeof msg, expr, len, &err);
        FUZZ_CHECK(strlen(msg) < sizeof msg && strlen(msg) <= full, "error text");
        return 0;
    }
    FUZZ_CHECK(f != NULL, "no filter");
    FUZZ_CHECK(vfilter_match(f, NULL) == 0, "an element without attributes passed");
    for (size_t i = 0; i < NFIXED; i++) match(f, fixed[i]);
    if (nul) {
        vattr *a = NULL;
        vattr_error e;
        const char *json = (const char *)nul + 1;
        size_t jlen = size - len - 1;
        if (jlen && vattr_new(NULL, json, jlen, VATTR_KEEP_INVALID, &a, &e) == 0) {
            match(f, a);
            vattr_free(NULL, a);
        }
    }
    vfilter_free(f);
    return 0;
}
