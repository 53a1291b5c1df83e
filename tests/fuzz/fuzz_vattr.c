/* fuzz_vattr.c -- the JSON attribute parser of vector-set elements
 * (vattr.h: VADD ... SETATTR, VSETATTR).
 *
 * Feeds: the input as the attribute text, parsed strictly (the server's
 * default) and with VATTR_KEEP_INVALID (Redis's behaviour).
 *
 * Checks: the two modes agree -- valid text gives a valid block either
 * way, with the same size and member count; malformed text is refused
 * strictly (VEC_ESYNTAX / VEC_ELIMIT, -EINVAL only when empty) and kept as
 * a block with no members otherwise, both naming the same offset (within
 * the text) and fault; the block returns the text as given, NUL-terminated;
 * and every member found by name (each quoted string of the input is
 * tried as a name), with every item of an array member, reads back with a
 * known type and its string inside the block. */
#include "fuzz.h"

#include <errno.h>
#include <string.h>

#include "engram/vattr.h"

static void read_value(const vattr *a, const vattr_value *v, int depth)
{
    FUZZ_CHECK(v->type >= VATTR_NUMBER && v->type <= VATTR_OTHER, "type %d", (int)v->type);
    if (v->type == VATTR_STRING && v->len) {
        volatile char sink = v->str[0];
        sink = v->str[v->len - 1];   /* ASan: inside the block */
        (void)sink;
    }
    if (v->type != VATTR_ARRAY) return;
    FUZZ_CHECK(depth == 0, "an array item is an array");
    vattr_value it;
    size_t i = 0;
    while (vattr_item(a, v, i, &it)) {
        read_value(a, &it, depth + 1);
        i++;
        FUZZ_CHECK(i <= v->len, "more items (%zu) than the array's length %zu", i, v->len);
    }
    FUZZ_CHECK(i == v->len, "%zu items, length %zu", i, v->len);
}

/* Try each "..." of the text (raw bytes between quotes, up to 64) as a
 * member name. */
static void read_members(const vattr *a, const char *t, size_t len)
{
    uint32_t found = 0;
    for (size_t i = 0; i < len; i++) {
        if (t[i] != '"') continue;
        size_t j = i + 1;
        while (j < len && t[j] != '"' && j - i <= 64) j++;
        if (j >= len || t[j] != '"') continue;
        vattr_value v;
        if (vattr_get(a, t + i + 1, j - i - 1, &v)) {
            read_value(a, &v, 0);
            found++;
        }
        i = j;
    }
    (void)found;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) data = (const uint8_t *)"";   /* libFuzzer's empty input may be NULL */
    const char *json = (const char *)data;
    vattr *a = NULL, *b = NULL;
    vattr_error e = { 0 }, k = { 0 };
    int rc = vattr_new(NULL, json, size, 0, &a, &e);
    int rk = vattr_new(NULL, json, size, VATTR_KEEP_INVALID, &b, &k);

    FUZZ_CHECK(rk == 0 && b, "KEEP_INVALID refused: %d", rk);
    size_t tl;
    const char *text = vattr_json(b, &tl);
    FUZZ_CHECK(tl == size && (size == 0 || memcmp(text, json, size) == 0) && text[tl] == '\0',
               "the kept text differs from the input");
    if (rc == 0) {
        FUZZ_CHECK(a && vattr_valid(a) && vattr_valid(b) && k.what == NULL,
                   "valid strictly, not kept as valid (%s)", k.what ? k.what : "");
        FUZZ_CHECK(vattr_size(a) == vattr_size(b) && vattr_count(a) == vattr_count(b),
                   "the two blocks differ");
        text = vattr_json(a, &tl);
        FUZZ_CHECK(tl == size && memcmp(text, json, size) == 0, "the text differs");
        read_members(a, json, size);
    } else {
        FUZZ_CHECK(a == NULL, "a block on failure");
        FUZZ_CHECK(rc == VEC_ESYNTAX || rc == VEC_ELIMIT || (rc == -EINVAL && size == 0),
                   "code %d", rc);
        FUZZ_CHECK(!vattr_valid(b) && vattr_count(b) == 0, "malformed text kept with members");
        if (size) {
            FUZZ_CHECK(e.what && k.what && strcmp(e.what, k.what) == 0 && e.offset == k.offset,
                       "strict and kept disagree: %s at %zu / %s at %zu", e.what ? e.what : "-",
                       e.offset, k.what ? k.what : "-", k.offset);
            FUZZ_CHECK(e.offset <= size, "offset %zu past the text (%zu)", e.offset, size);
        }
    }
    vattr_free(NULL, a);
    vattr_free(NULL, b);
    return 0;
}
