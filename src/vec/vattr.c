/* vattr.c -- JSON attributes of vector-set elements: a strict RFC 8259
 * parser that turns one JSON object into the compact block of
 * vattr_impl.h, once, when the attributes are set.
 *
 * What Redis does (learned from redis/redis modules/vector-sets: vset.c,
 * fastjson.c, expr.c, README.md and tests/filter_expr.py; read, not copied):
 *   - VSETATTR and VADD ... SETATTR store the argument as an opaque string:
 *     no JSON validation at all, so "invalid json" is accepted, stored, and
 *     returned by VGETATTR and WITHATTRIBS.  An empty string removes the
 *     attributes.  A filter never matches an element without attributes.
 *   - At filter time (fastjson.c) Redis seeks a top-level key in the raw
 *     text on every candidate: the text must start (after spaces) with '{';
 *     keys are compared as raw bytes, and the first occurrence of a key
 *     wins; nested objects are not reachable (".a.b" is not a path).
 *   - Values become filter values: numbers through strtod; strings with
 *     \n \r \t \\ \" decoded (other escapes, \uXXXX included, are copied
 *     without their backslash); true and false become the numbers 1 and 0;
 *     null is null; an array becomes a tuple when every item converts
 *     (nested arrays are tuples too); an object, or an array holding one,
 *     does not convert, and a filter reading it is false -- as it is for a
 *     missing key or unreadable JSON ("considered as not matching", README).
 *
 * What engram does differently, and why:
 *   - The text is parsed once, here, not per candidate: a filtered search
 *     then costs a hash lookup per selector (bench/bench_filter.c).
 *   - Validation is strict (UTF-8, every escape incl. surrogate pairs, the
 *     number grammar, nesting depth, no trailing data) and the top level
 *     must be an object.  The caller may still keep malformed text the
 *     Redis way (VATTR_KEEP_INVALID): a block with no members.
 *   - Every escape is decoded (\u0041 is "A", not "u0041"), and names are
 *     compared decoded.  Expression strings decode the same way
 *     (vfilter.c), so a string written with the same escape on both sides
 *     still compares equal, as it does in Redis.
 *
 * The parse: two passes of one iterative walk (no recursion: an explicit
 * stack of container kinds, bounded by VATTR_DEPTH_MAX).  The first
 * validates and counts members, array items and the bytes of strings with
 * escapes; the block is then allocated once, and the second pass fills it.
 * A name or string without escapes is read in the block's copy of the text,
 * so the block is the text plus 28 bytes a member, 16 an array item, and
 * the decoded strings (about 2.7 times the text for ten-member objects:
 * bench/bench_filter.c).  Members are sorted by name hash, duplicates
 * dropped (the first one stays); objects of up to SORT_STACK members sort
 * on the stack, so a typical parse allocates the block and nothing else.
 *
 * Threads: no state; a block is immutable once returned. */
#include "vattr_impl.h"

#include <errno.h>
#include "engram/check.h"
#include <stdlib.h>
#include <string.h>

#define NUM_MAX 255 /* characters in a number (a stack buffer for strtod) */

double vattr_str_num(const char *s, size_t len)
{
    char buf[256];
    if (len >= sizeof buf) return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    double v = strtod(buf, &end);
    return end == buf + len ? v : 0;
}

/* ---- the walk ----------------------------------------------------------- */

typedef struct jp {
    const char *s;
    size_t n, i;
    /* second pass: where values go (NULL in the first), and the offsets in
     * the block of the decoded strings and of the text's copy */
    vattr_field *fields;
    vattr_val *items;
    char *str;
    const char *base; /* the block */
    uint32_t str_off, json_off;
    /* counts, both passes */
    uint32_t nfields, nitems;
    size_t nstr;
    /* the error */
    int code;
    size_t where;
    const char *what;
} jp;

static int jp_fail(jp *p, size_t at, int code, const char *what)
{
    p->code = code;
    p->where = at;
    p->what = what;
    return -1;
}

static void jp_ws(jp *p)
{
    while (p->i < p->n) {
        char c = p->s[p->i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->i++;
    }
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Length of the well-formed UTF-8 sequence (2 to 4 bytes) at s, or 0:
 * no overlong forms, no surrogates, nothing past U+10FFFF. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0], lo = 0x80, hi = 0xBF;
    size_t k;
    if (c >= 0xC2 && c <= 0xDF) {
        k = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        k = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        k = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    if (n < k || s[1] < lo || s[1] > hi) return 0;
    for (size_t j = 2; j < k; j++)
        if ((s[j] & 0xC0) != 0x80) return 0;
    return k;
}

/* Scan the string whose opening quote is at p->i: validate it, count its
 * decoded bytes (*out) and say whether it holds escapes; with d, decode
 * into d.  The index past the closing quote, or -1. */
static long str_scan(jp *p, char *d, size_t *out, int *esc)
{
    size_t start = p->i, i = p->i + 1, o = 0;
    *esc = 0;
    for (;;) {
        if (i >= p->n) return jp_fail(p, start, VEC_ESYNTAX, "unterminated string");
        unsigned char c = (unsigned char)p->s[i];
        if (c == '"') break;
        if (c < 0x20) return jp_fail(p, i, VEC_ESYNTAX, "control character in string");
        if (c >= 0x80) {
            size_t k = utf8_seq((const unsigned char *)p->s + i, p->n - i);
            if (!k) return jp_fail(p, i, VEC_ESYNTAX, "invalid UTF-8 in string");
            if (d) memcpy(d + o, p->s + i, k);
            o += k;
            i += k;
            continue;
        }
        if (c != '\\') {
            if (d) d[o] = (char)c;
            o++;
            i++;
            continue;
        }
        *esc = 1;
        if (i + 1 >= p->n) return jp_fail(p, start, VEC_ESYNTAX, "unterminated string");
        char r;
        switch (p->s[i + 1]) {
        case '"': r = '"'; break;
        case '\\': r = '\\'; break;
        case '/': r = '/'; break;
        case 'b': r = '\b'; break;
        case 'f': r = '\f'; break;
        case 'n': r = '\n'; break;
        case 'r': r = '\r'; break;
        case 't': r = '\t'; break;
        case 'u': {
            size_t used = 0;
            long cp = vattr_unicode_escape(p->s + i + 1, p->n - i - 1, &used);
            if (cp == -1) return jp_fail(p, i, VEC_ESYNTAX, "invalid \\u escape");
            if (cp == -2) return jp_fail(p, i, VEC_ESYNTAX, "unpaired surrogate in \\u escape");
            o += vattr_utf8_put(d ? d + o : NULL, cp);
            i += 1 + used;
            continue;
        }
        default: return jp_fail(p, i, VEC_ESYNTAX, "invalid escape");
        }
        if (d) d[o] = r;
        o++;
        i += 2;
    }
    *out = o;
    return (long)i + 1;
}

/* The string at p->i (a '"').  keep: give back where its bytes are (an
 * offset in the block, known in the second pass): in the text's copy when
 * it has no escapes, else decoded into the string area (counted in both
 * passes, written in the second). */
static int jp_string(jp *p, int keep, uint32_t *off, uint32_t *len)
{
    size_t out;
    int esc;
    long end = str_scan(p, NULL, &out, &esc);
    if (end < 0) return -1;
    if (keep) {
        if (!esc) {
            *off = p->json_off + (uint32_t)p->i + 1;
        } else {
            if (p->str) str_scan(p, p->str + p->nstr, &out, &esc);
            *off = p->str_off + (uint32_t)p->nstr;
            p->nstr += out;
        }
        *len = (uint32_t)out;
    }
    p->i = (size_t)end;
    return 0;
}

/* The number at p->i, by RFC 8259's grammar; *out (if not NULL) gets its
 * value (past the double range: +-inf, as strtod and Redis give). */
static int jp_number(jp *p, double *out)
{
    const char *s = p->s;
    size_t st = p->i, i = p->i, n = p->n;
    if (s[i] == '-') i++;
    if (i >= n || !is_digit(s[i])) return jp_fail(p, st, VEC_ESYNTAX, "invalid number");
    if (s[i] == '0') {
        i++;
        if (i < n && is_digit(s[i])) return jp_fail(p, st, VEC_ESYNTAX, "invalid number: leading zero");
    } else {
        while (i < n && is_digit(s[i])) i++;
    }
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n || !is_digit(s[i]))
            return jp_fail(p, i, VEC_ESYNTAX, "invalid number: a digit must follow '.'");
        while (i < n && is_digit(s[i])) i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= n || !is_digit(s[i]))
            return jp_fail(p, i, VEC_ESYNTAX, "invalid number: a digit must follow the exponent");
        while (i < n && is_digit(s[i])) i++;
    }
    if (i - st > NUM_MAX) return jp_fail(p, st, VEC_ELIMIT, "number longer than 255 characters");
    if (out) {
        char buf[NUM_MAX + 1];
        memcpy(buf, s + st, i - st);
        buf[i - st] = '\0';
        *out = strtod(buf, NULL);
    }
    p->i = i;
    return 0;
}

static int jp_literal(jp *p, const char *lit, size_t len)
{
    if (p->n - p->i < len || memcmp(p->s + p->i, lit, len) != 0)
        return jp_fail(p, p->i, VEC_ESYNTAX, "invalid literal (true, false or null expected)");
    p->i += len;
    return 0;
}

enum { K_OBJ, K_ARR };
enum { S_KEY_OR_END, S_KEY, S_VALUE_OR_END, S_VALUE, S_NEXT };

/* Where a value sits: decides what is kept of it. */
enum { AT_MEMBER, AT_ITEM, AT_DEEP };

/* One scalar value at p->i into *v; keep: strings are kept and, in the
 * second pass, values filled in. */
static int jp_scalar(jp *p, int keep, vattr_val *v)
{
    char c = p->s[p->i];
    int fill = keep && p->str;
    if (c == '"') {
        uint32_t off = 0, len = 0;
        if (jp_string(p, keep, &off, &len)) return -1;
        vattr_val_set(v, VATTR_STRING, 0, off, len);
        if (fill) {
            /* the bytes are in place: in the text's copy, or just decoded */
            v->num = vattr_str_num((const char *)p->base + off, len);
        }
        return 0;
    }
    if (c == '-' || is_digit(c)) {
        double num = 0;
        if (jp_number(p, fill ? &num : NULL)) return -1;
        vattr_val_set(v, VATTR_NUMBER, num, 0, 0);
        return 0;
    }
    if (c == 't' || c == 'f') {
        vattr_val_set(v, VATTR_NUMBER, c == 't', 0, 0);
        return jp_literal(p, c == 't' ? "true" : "false", c == 't' ? 4 : 5);
    }
    if (c == 'n') {
        vattr_val_set(v, VATTR_NULL, 0, 0, 0);
        return jp_literal(p, "null", 4);
    }
    return jp_fail(p, p->i, VEC_ESYNTAX, "expected a value");
}

/* The whole text: one object.  Members (AT_MEMBER) get a field; items of a
 * top-level array (AT_ITEM) an item; deeper values are only validated. */
static int jp_walk(jp *p)
{
    unsigned char kind[VATTR_DEPTH_MAX];
    uint32_t depth = 0;
    uint32_t name_off = 0, name_len = 0;
    vattr_val scratch, *arr = NULL; /* the open top-level array's field */
    uint32_t arr_first = 0;
    int arr_other = 0; /* it holds an object somewhere */
    int st;

    jp_ws(p);
    if (p->i >= p->n || p->s[p->i] != '{')
        return jp_fail(p, p->i, VEC_ESYNTAX, "attributes must be a JSON object");
    p->i++;
    kind[depth++] = K_OBJ;
    st = S_KEY_OR_END;
    for (;;) {
        jp_ws(p);
        if (p->i >= p->n) return jp_fail(p, p->n, VEC_ESYNTAX, "unexpected end of input");
        char c = p->s[p->i];
        int close = 0;
        switch (st) {
        case S_KEY_OR_END:
            if (c == '}') {
                close = 1;
                break;
            }
            /* fall through */
        case S_KEY:
            if (c != '"') return jp_fail(p, p->i, VEC_ESYNTAX, "expected a string key");
            if (jp_string(p, depth == 1, &name_off, &name_len)) return -1;
            jp_ws(p);
            if (p->i >= p->n || p->s[p->i] != ':')
                return jp_fail(p, p->i, VEC_ESYNTAX, "expected ':' after the key");
            p->i++;
            st = S_VALUE;
            break;
        case S_VALUE_OR_END:
            if (c == ']') {
                close = 1;
                break;
            }
            /* fall through */
        case S_VALUE: {
            int at = depth == 1 ? AT_MEMBER : depth == 2 && kind[1] == K_ARR ? AT_ITEM : AT_DEEP;
            vattr_val *v = &scratch;
            if (at == AT_MEMBER) {
                uint32_t k = p->nfields++;
                if (p->fields) {
                    p->fields[k].name_off = name_off;
                    p->fields[k].name_len = name_len;
                    v = &p->fields[k].v;
                }
            } else if (at == AT_ITEM) {
                uint32_t k = p->nitems++;
                if (p->items) v = &p->items[k];
            }
            if (c == '[' || c == '{') {
                if (depth == VATTR_DEPTH_MAX)
                    return jp_fail(p, p->i, VEC_ELIMIT, "nesting deeper than 128");
                vattr_val_set(v, c == '{' ? VATTR_OTHER : at == AT_MEMBER ? VATTR_ARRAY : VATTR_NESTED,
                              0, 0, 0);
                if (c == '[' && at == AT_MEMBER) {
                    arr = v;
                    arr_first = p->nitems;
                    arr_other = 0;
                }
                if (c == '{' && depth >= 2 && kind[1] == K_ARR) arr_other = 1;
                kind[depth++] = c == '{' ? K_OBJ : K_ARR;
                p->i++;
                st = c == '{' ? S_KEY_OR_END : S_VALUE_OR_END;
                break;
            }
            if (jp_scalar(p, at != AT_DEEP, v)) return -1;
            st = S_NEXT;
            break;
        }
        case S_NEXT:
            if (c == ',') {
                p->i++;
                st = kind[depth - 1] == K_OBJ ? S_KEY : S_VALUE;
            } else if (c == (kind[depth - 1] == K_OBJ ? '}' : ']')) {
                close = 1;
            } else {
                return jp_fail(p, p->i, VEC_ESYNTAX,
                               kind[depth - 1] == K_OBJ ? "expected ',' or '}'" : "expected ',' or ']'");
            }
            break;
        }
        if (!close) continue;
        p->i++;
        depth--;
        if (depth == 1 && kind[1] == K_ARR) /* a member's array ends */
            vattr_val_set(arr, arr_other ? VATTR_OTHER : VATTR_ARRAY, 0, arr_first,
                          p->nitems - arr_first);
        if (depth == 0) break;
        st = S_NEXT;
    }
    jp_ws(p);
    if (p->i < p->n) return jp_fail(p, p->i, VEC_ESYNTAX, "unexpected data after the object");
    return 0;
}

/* ---- the block ---------------------------------------------------------- */

typedef struct field_key {
    uint32_t hash, idx;
} field_key;

static int key_cmp(const void *x, const void *y)
{
    const field_key *a = x, *b = y;
    if (a->hash != b->hash) return a->hash < b->hash ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx; /* document order */
}

#define SORT_STACK 32 /* members sorted without allocating (most objects) */

/* Sort a's members (f, in document order) by name hash, drop repeated
 * names (the first stays, as Redis's seek finds it first) and write the
 * hashes.  0, or -ENOMEM for an object of more than SORT_STACK members
 * (two temporaries). */
static int sort_fields(vec_mem *m, vattr *a, vattr_field *f)
{
    uint32_t n = a->nfields, k = 0;
    uint32_t *h = (uint32_t *)(void *)(a + 1);
    const char *base = (const char *)a;
    field_key kbuf[SORT_STACK], *key = kbuf;
    vattr_field dbuf[SORT_STACK], *doc = dbuf;
    if (n > SORT_STACK) {
        key = vec_mem_alloc(m, (size_t)n * sizeof *key);
        doc = vec_mem_alloc(m, (size_t)n * sizeof *doc);
        if (!key || !doc) {
            vec_mem_free(m, key, (size_t)n * sizeof *key);
            vec_mem_free(m, doc, (size_t)n * sizeof *doc);
            return -ENOMEM;
        }
    }
    for (uint32_t j = 0; j < n; j++) key[j] = (field_key){ vattr_hash(base + f[j].name_off, f[j].name_len), j };
    if (n > SORT_STACK) {
        qsort(key, n, sizeof *key, key_cmp);
    } else {
        for (uint32_t j = 1; j < n; j++) { /* insertion: few members */
            field_key x = key[j];
            uint32_t q = j;
            for (; q > 0 && key_cmp(&key[q - 1], &x) > 0; q--) key[q] = key[q - 1];
            key[q] = x;
        }
    }
    if (n) memcpy(doc, f, (size_t)n * sizeof *doc);
    for (uint32_t j = 0; j < n; j++) {
        const vattr_field *c = &doc[key[j].idx];
        int dup = 0;
        for (uint32_t q = k; q-- > 0 && h[q] == key[j].hash;)
            if (f[q].name_len == c->name_len &&
                memcmp(base + f[q].name_off, base + c->name_off, c->name_len) == 0)
                dup = 1;
        if (dup) continue;
        f[k] = *c;
        h[k++] = key[j].hash;
    }
    a->nfields = k;
    if (n > SORT_STACK) {
        vec_mem_free(m, key, (size_t)n * sizeof *key);
        vec_mem_free(m, doc, (size_t)n * sizeof *doc);
    }
    return 0;
}

static size_t align8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

/* Allocate a block for counts c (a first pass) and json into *out; header
 * filled and text copied, nothing else.  0, VEC_ELIMIT or -ENOMEM. */
static int block_new(vec_mem *m, const jp *c, const char *json, size_t len, vattr **out)
{
    size_t field_off = align8(sizeof(vattr) + (size_t)c->nfields * 4);
    size_t item_off = field_off + (size_t)c->nfields * sizeof(vattr_field);
    size_t str_off = item_off + (size_t)c->nitems * sizeof(vattr_val);
    size_t json_off = str_off + c->nstr;
    size_t size = json_off + len + 1;
    /* Unreachable under VATTR_JSON_MAX (a member takes 5 bytes of text and
     * 36 of block, an item 2 and 24): offsets stay 32-bit all the same. */
    if (size > UINT32_MAX) return VEC_ELIMIT;
    vattr *a = vec_mem_alloc(m, size);
    if (!a) return -ENOMEM;
    memset(a, 0, sizeof *a);
    a->size = (uint32_t)size;
    a->nfields = c->nfields;
    a->nitems = c->nitems;
    a->field_off = (uint32_t)field_off;
    a->item_off = (uint32_t)item_off;
    a->str_off = (uint32_t)str_off;
    a->json_off = (uint32_t)json_off;
    a->json_len = (uint32_t)len;
    if (len) memcpy((char *)a + json_off, json, len);
    ((char *)a)[json_off + len] = '\0';
    *out = a;
    return 0;
}

int vattr_new(vec_mem *m, const char *json, size_t len, unsigned flags, vattr **out,
              vattr_error *err)
{
    vattr_error dummy;
    vec_mem defmem;
    if (!err) err = &dummy;
    err->offset = 0;
    err->what = NULL;
    if (!out) return -EINVAL;
    *out = NULL;
    if (!m) {
        vec_mem_init(&defmem, NULL);
        m = &defmem;
    }
    if (!json && len) return -EINVAL;
    jp p = { .s = json, .n = len };
    int code = 0;
    if (len == 0) {
        err->what = "empty attributes";
        code = -EINVAL;
    } else if (len > VATTR_JSON_MAX) {
        err->what = "JSON text larger than 64 MB";
        code = VEC_ELIMIT;
    } else if (jp_walk(&p)) {
        err->offset = p.where;
        err->what = p.what;
        code = p.code;
    }
    if (code) {
        if (!(flags & VATTR_KEEP_INVALID)) return code;
        jp none = { 0 };
        vattr *a;
        int rc = block_new(m, &none, json, len, &a);
        if (rc) return rc;
        a->flags = VATTR_F_INVALID;
        *out = a;
        return 0;
    }
    vattr *a;
    int rc = block_new(m, &p, json, len, &a);
    if (rc) return rc;
    jp q = { .s = json, .n = len };
    q.fields = (vattr_field *)(void *)((char *)a + a->field_off);
    q.items = (vattr_val *)(void *)((char *)a + a->item_off);
    q.str = (char *)a + a->str_off;
    q.base = (const char *)a;
    q.str_off = a->str_off;
    q.json_off = a->json_off;
    CHECK(jp_walk(&q) == 0 && q.nfields == p.nfields && q.nitems == p.nitems && q.nstr == p.nstr);
    if ((rc = sort_fields(m, a, q.fields))) {
        vec_mem_free(m, a, a->size);
        return rc;
    }
    *out = a;
    return 0;
}

void vattr_free(vec_mem *m, vattr *a)
{
    if (!a) return;
    if (m) {
        vec_mem_free(m, a, a->size);
    } else {
        vec_mem d;
        vec_mem_init(&d, NULL);
        d.bytes = a->size;
        vec_mem_free(&d, a, a->size);
    }
}

const char *vattr_json(const vattr *a, size_t *len)
{
    if (len) *len = a->json_len;
    return (const char *)a + a->json_off;
}

size_t vattr_size(const vattr *a)
{
    return a->size;
}

int vattr_valid(const vattr *a)
{
    return !(a->flags & VATTR_F_INVALID);
}

uint32_t vattr_count(const vattr *a)
{
    return a->nfields;
}

static void value_out(const vattr *a, const vattr_val *v, vattr_value *out)
{
    unsigned t = vattr_val_type(v);
    out->type = (vattr_type)t;
    out->num = v->num;
    out->str = t == VATTR_STRING ? vattr_strs(a) + v->off : NULL;
    out->len = t == VATTR_STRING || t == VATTR_ARRAY ? vattr_val_len(v) : 0;
    out->first_ = t == VATTR_ARRAY ? v->off : 0;
}

int vattr_get(const vattr *a, const char *name, size_t len, vattr_value *out)
{
    const vattr_val *v = vattr_lookup(a, vattr_hash(name, len), name, len);
    if (!v) return 0;
    value_out(a, v, out);
    return 1;
}

int vattr_item(const vattr *a, const vattr_value *arr, size_t i, vattr_value *out)
{
    if (arr->type != VATTR_ARRAY || i >= arr->len) return 0;
    value_out(a, &vattr_items(a)[arr->first_ + i], out);
    return 1;
}
