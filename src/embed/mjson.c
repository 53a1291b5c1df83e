/* mjson.c -- the minimal JSON reader (contract in include/engram/mjson.h).
 *
 * A recursive-descent parser over the caller's bytes, depth bounded by
 * MJSON_DEPTH_MAX, that appends one token per value to a growing array.
 * A container's token is appended before its members and its n/span are
 * filled in when it closes, so the array is in document order and
 * t[i + t[i].span] is the token after i's subtree.
 *
 * Strings are validated when parsed (escapes, control bytes, UTF-8,
 * surrogate pairs) and unescaped only on demand (mjson_str), so a file
 * with long strings nobody asks for costs one scan.
 *
 * Threads: a parsed mjson is read-only. */
#include "engram/mjson.h"
#include "engram/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct mjp {
    mjson *j;
    const unsigned char *s;
    size_t len, pos;
    uint32_t cap;
    char *err;
    size_t errlen;
    int nomem;
} mjp;

static int mjp_fail(mjp *p, const char *what)
{
    if (p->err && p->errlen)
        snprintf(p->err, p->errlen, "JSON: %s at byte %zu", what, p->pos);
    return -1;
}

static void mjp_ws(mjp *p)
{
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

/* Append a token; its index, or -1 (out of memory). */
static int mjp_tok(mjp *p, mjson_type type)
{
    mjson *j = p->j;
    if (j->ntok == p->cap) {
        uint32_t nc = p->cap ? p->cap * 2 : 64;
        mjson_tok *t = realloc(j->t, (size_t)nc * sizeof *t);
        if (!t) {
            p->nomem = 1;
            return -1;
        }
        j->t = t;
        p->cap = nc;
    }
    mjson_tok *t = &j->t[j->ntok];
    memset(t, 0, sizeof *t);
    t->type = (uint8_t)type;
    t->start = (uint32_t)p->pos;
    t->span = 1;
    return (int)j->ntok++;
}

static int mjp_hex4(mjp *p, unsigned *out)
{
    unsigned v = 0;
    if (p->len - p->pos < 4) return -1;
    for (int i = 0; i < 4; i++) {
        unsigned c = p->s[p->pos++], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if ((c | 32) >= 'a' && (c | 32) <= 'f') d = (c | 32) - 'a' + 10;
        else return -1;
        v = v * 16 + d;
    }
    *out = v;
    return 0;
}

/* Length of the valid UTF-8 sequence at s[0..n) (2..4), or 0. */
static int utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    int l;
    unsigned min;
    if (c >= 0xC2 && c <= 0xDF) l = 2, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) l = 3, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) l = 4, min = 0x10000;
    else return 0;
    if ((size_t)l > n) return 0;
    unsigned cp = c & (0x7F >> l);
    for (int i = 1; i < l; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return l;
}

static int mjp_string(mjp *p)
{
    int t = mjp_tok(p, MJSON_STRING);
    if (t < 0) return -1;
    p->pos++; /* the opening quote */
    for (;;) {
        if (p->pos >= p->len) return mjp_fail(p, "unterminated string");
        unsigned c = p->s[p->pos];
        if (c == '"') break;
        if (c < 0x20) return mjp_fail(p, "control character in string");
        if (c == '\\') {
            p->pos++;
            if (p->pos >= p->len) return mjp_fail(p, "unterminated string");
            c = p->s[p->pos++];
            if (c == 'u') {
                unsigned u, lo;
                if (mjp_hex4(p, &u) < 0) return mjp_fail(p, "bad \\u escape");
                if (u >= 0xDC00 && u <= 0xDFFF) return mjp_fail(p, "lone low surrogate");
                if (u >= 0xD800 && u <= 0xDBFF) {
                    if (p->len - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
                        return mjp_fail(p, "lone high surrogate");
                    p->pos += 2;
                    if (mjp_hex4(p, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF)
                        return mjp_fail(p, "bad surrogate pair");
                }
            } else if (!strchr("\"\\/bfnrt", (int)c) || c == 0) {
                p->pos--;
                return mjp_fail(p, "bad escape");
            }
        } else if (c < 0x80) {
            p->pos++;
        } else {
            int l = utf8_len(p->s + p->pos, p->len - p->pos);
            if (!l) return mjp_fail(p, "invalid UTF-8 in string");
            p->pos += (size_t)l;
        }
    }
    p->pos++;
    p->j->t[t].end = (uint32_t)p->pos;
    return t;
}

static int mjp_number(mjp *p)
{
    int t = mjp_tok(p, MJSON_NUMBER);
    if (t < 0) return -1;
    const unsigned char *s = p->s;
#define DIGIT(i) ((i) < p->len && s[i] >= '0' && s[i] <= '9')
    if (p->pos < p->len && s[p->pos] == '-') p->pos++;
    if (!DIGIT(p->pos)) return mjp_fail(p, "expected a digit");
    if (s[p->pos] == '0') p->pos++;
    else
        while (DIGIT(p->pos)) p->pos++;
    if (p->pos < p->len && s[p->pos] == '.') {
        p->pos++;
        if (!DIGIT(p->pos)) return mjp_fail(p, "expected a digit after '.'");
        while (DIGIT(p->pos)) p->pos++;
    }
    if (p->pos < p->len && (s[p->pos] | 32) == 'e') {
        p->pos++;
        if (p->pos < p->len && (s[p->pos] == '+' || s[p->pos] == '-')) p->pos++;
        if (!DIGIT(p->pos)) return mjp_fail(p, "expected a digit in the exponent");
        while (DIGIT(p->pos)) p->pos++;
    }
#undef DIGIT
    p->j->t[t].end = (uint32_t)p->pos;
    return t;
}

static int mjp_value(mjp *p, int depth);

/* An array or an object: the token, then its members; n and span set
 * when it closes. */
static int mjp_container(mjp *p, int depth, int object)
{
    if (depth >= MJSON_DEPTH_MAX) return mjp_fail(p, "nesting too deep");
    int t = mjp_tok(p, object ? MJSON_OBJECT : MJSON_ARRAY);
    if (t < 0) return -1;
    unsigned char close = object ? '}' : ']';
    uint32_t n = 0;
    p->pos++;
    mjp_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
    } else {
        for (;;) {
            mjp_ws(p);
            if (object) {
                if (p->pos >= p->len || p->s[p->pos] != '"') return mjp_fail(p, "expected a key");
                if (mjp_string(p) < 0) return -1;
                mjp_ws(p);
                if (p->pos >= p->len || p->s[p->pos] != ':') return mjp_fail(p, "expected ':'");
                p->pos++;
            }
            if (mjp_value(p, depth + 1) < 0) return -1;
            n++;
            mjp_ws(p);
            if (p->pos < p->len && p->s[p->pos] == ',') {
                p->pos++;
                continue;
            }
            if (p->pos < p->len && p->s[p->pos] == close) {
                p->pos++;
                break;
            }
            return mjp_fail(p, object ? "expected ',' or '}'" : "expected ',' or ']'");
        }
    }
    mjson_tok *tk = &p->j->t[t];
    tk->n = n;
    tk->end = (uint32_t)p->pos;
    tk->span = p->j->ntok - (uint32_t)t;
    return t;
}

static int mjp_word(mjp *p, const char *w, mjson_type type)
{
    size_t l = strlen(w);
    if (p->len - p->pos < l || memcmp(p->s + p->pos, w, l)) return mjp_fail(p, "unexpected character");
    int t = mjp_tok(p, type);
    if (t < 0) return -1;
    p->pos += l;
    p->j->t[t].end = (uint32_t)p->pos;
    return t;
}

static int mjp_value(mjp *p, int depth)
{
    mjp_ws(p);
    if (p->pos >= p->len) return mjp_fail(p, "unexpected end of text");
    switch (p->s[p->pos]) {
    case '{': return mjp_container(p, depth, 1);
    case '[': return mjp_container(p, depth, 0);
    case '"': return mjp_string(p);
    case 't': return mjp_word(p, "true", MJSON_TRUE);
    case 'f': return mjp_word(p, "false", MJSON_FALSE);
    case 'n': return mjp_word(p, "null", MJSON_NULL);
    default: return mjp_number(p);
    }
}

int mjson_parse(mjson *j, const char *text, size_t len, char *err, size_t errlen)
{
    memset(j, 0, sizeof *j);
    if (!text && len) return -EINVAL;
    mjp p = {.j = j, .s = (const unsigned char *)text, .len = len, .err = err, .errlen = errlen};
    if (len > MJSON_LEN_MAX) {
        mjp_fail(&p, "text too long");
        return -EINVAL;
    }
    j->text = text;
    j->len = len;
    int rc = mjp_value(&p, 0);
    if (rc >= 0) {
        mjp_ws(&p);
        if (p.pos != len) rc = mjp_fail(&p, "trailing characters after the value");
    }
    if (rc < 0) {
        int code = p.nomem ? -ENOMEM : -EINVAL;
        if (p.nomem && err && errlen) snprintf(err, errlen, "JSON: out of memory");
        mjson_fini(j);
        return code;
    }
    return 0;
}

void mjson_fini(mjson *j)
{
    free(j->t);
    memset(j, 0, sizeof *j);
}

static int mjson_ok(const mjson *j, int tok, mjson_type type)
{
    return j && tok >= 0 && (uint32_t)tok < j->ntok && j->t[tok].type == type;
}

int mjson_first(const mjson *j, int obj)
{
    if (!mjson_ok(j, obj, MJSON_OBJECT) || j->t[obj].n == 0) return -1;
    return obj + 1;
}

int mjson_next(const mjson *j, int key)
{
    if (!mjson_ok(j, key, MJSON_STRING) || (uint32_t)key + 1 >= j->ntok) return -1;
    uint32_t nk = (uint32_t)key + 1 + j->t[key + 1].span;
    if (nk >= j->ntok) return -1;
    /* The parent is not recorded, but JSON's grammar decides: after a
     * member's value comes ',' (another member follows) or '}' (the object
     * ends), blanks aside. */
    size_t i = j->t[key + 1].end;
    while (i < j->len && (j->text[i] == ' ' || j->text[i] == '\t' || j->text[i] == '\n' ||
                          j->text[i] == '\r'))
        i++;
    if (i >= j->len || j->text[i] != ',') return -1;
    return (int)nk;
}

int mjson_get(const mjson *j, int obj, const char *key)
{
    int found = -1;
    for (int k = mjson_first(j, obj); k >= 0; k = mjson_next(j, k))
        if (mjson_streq(j, k, key)) found = k + 1;
    return found;
}

int mjson_at(const mjson *j, int arr, uint32_t i)
{
    if (!mjson_ok(j, arr, MJSON_ARRAY) || i >= j->t[arr].n) return -1;
    uint32_t t = (uint32_t)arr + 1;
    while (i--) t += j->t[t].span;
    return (int)t;
}

int mjson_int(const mjson *j, int tok, int64_t *out)
{
    if (!mjson_ok(j, tok, MJSON_NUMBER)) return -EINVAL;
    const char *s = j->text + j->t[tok].start;
    size_t l = j->t[tok].end - j->t[tok].start;
    int neg = s[0] == '-';
    uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (size_t i = (size_t)neg; i < l; i++) {
        if (s[i] < '0' || s[i] > '9') return -EINVAL; /* fraction or exponent */
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (lim - d) / 10) return -EINVAL;
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

int mjson_num(const mjson *j, int tok, double *out)
{
    if (!mjson_ok(j, tok, MJSON_NUMBER)) return -EINVAL;
    char buf[64];
    size_t l = j->t[tok].end - j->t[tok].start;
    if (l >= sizeof buf) return -EINVAL;
    memcpy(buf, j->text + j->t[tok].start, l);
    buf[l] = '\0';
    *out = strtod(buf, NULL);
    return 0;
}

int mjson_bool(const mjson *j, int tok)
{
    if (mjson_ok(j, tok, MJSON_TRUE)) return 1;
    if (mjson_ok(j, tok, MJSON_FALSE)) return 0;
    return -EINVAL;
}

static unsigned hexval(const char *s)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = (unsigned char)s[i];
        v = v * 16 + (c <= '9' ? c - '0' : (c | 32) - 'a' + 10);
    }
    return v;
}

int mjson_str(const mjson *j, int tok, char *out, size_t cap)
{
    if (!mjson_ok(j, tok, MJSON_STRING) || !out || !cap) return -EINVAL;
    /* Validated by the parser: escapes are well formed. */
    const char *s = j->text + j->t[tok].start + 1, *e = j->text + j->t[tok].end - 1;
    size_t n = 0;
    while (s < e) {
        char tmp[4];
        size_t l;
        if (*s != '\\') {
            tmp[0] = *s++;
            l = 1;
        } else {
            char c = s[1];
            s += 2;
            if (c == 'u') {
                unsigned cp = hexval(s);
                s += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (hexval(s + 2) - 0xDC00);
                    s += 6;
                }
                l = util_utf8_put(tmp, cp);
            } else {
                tmp[0] = c == 'b' ? '\b' : c == 'f' ? '\f' : c == 'n' ? '\n' : c == 'r' ? '\r'
                         : c == 't' ? '\t' : c;
                l = 1;
            }
        }
        if (n + l + 1 > cap) return -EINVAL;
        memcpy(out + n, tmp, l);
        n += l;
    }
    out[n] = '\0';
    return (int)n;
}

int mjson_streq(const mjson *j, int tok, const char *s)
{
    if (!mjson_ok(j, tok, MJSON_STRING)) return 0;
    size_t want = strlen(s);
    size_t raw = j->t[tok].end - j->t[tok].start - 2;
    /* Fast path: no escapes possible in a string of exactly that length
     * unless it has a backslash; compare the raw bytes first. */
    if (raw == want && !memchr(j->text + j->t[tok].start + 1, '\\', raw))
        return memcmp(j->text + j->t[tok].start + 1, s, want) == 0;
    if (raw < want) return 0; /* unescaping only shortens */
    char buf[256];
    if (want + 1 > sizeof buf) return 0;
    int l = mjson_str(j, tok, buf, sizeof buf);
    return l >= 0 && (size_t)l == want && memcmp(buf, s, want) == 0;
}
