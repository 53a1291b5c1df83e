/* fttok.c -- the text tokenizer and stopword lists (contract in fttok.h).
 *
 * Learned from RediSearch: src/toksep.h (the separator table, the
 * backslash rule), src/tokenize.c (normalisation, stopwords, positions,
 * which tokens are stemmed), src/stopwords.h (the default list),
 * src/stemmer.c (a stem equal to its token is not stored; a stored stem
 * carries the '+' prefix) and src/forward_index.c (what the index does
 * with each).  Our own words and code.
 *
 * Where engram differs:
 *   - RediSearch lowers and case-folds UTF-8 letters in newer versions;
 *     engram lowers ASCII only (bytes >= 0x80 are kept as they are), in
 *     the index and in queries alike, so matching is consistent.
 *   - (Not a difference, a quirk kept:) RediSearch 2.6 keeps only the
 *     first 128 bytes of a document token (FTTOK_TOKEN_MAX; later versions
 *     fixed this as MOD-6786); query terms are not cut, so a longer query
 *     word matches nothing.
 *
 * Stopword lists: a sorted array of lowered words (binary search); the
 * default list is a static one. */
#include "engram/fttok.h"

#include <stdlib.h>
#include <string.h>

#include "engram/stem.h"

struct fttok_stopwords {
    size_t n;
    size_t bytes;
    char **w;
    size_t *len;
};

#define DEFAULT_WORDS                                                                  \
    W("a") W("an") W("and") W("are") W("as") W("at") W("be") W("but") W("by") W("for") \
    W("if") W("in") W("into") W("is") W("it") W("no") W("not") W("of") W("on") W("or") \
    W("such") W("that") W("the") W("their") W("then") W("there") W("these") W("they")  \
    W("this") W("to") W("was") W("will") W("with")
#define W(s) s,
static const char *const default_words[] = { DEFAULT_WORDS };
#undef W
#define W(s) sizeof(s) - 1,
static size_t default_lens[] = { DEFAULT_WORDS };
#undef W
#define NDEFAULT (sizeof default_words / sizeof default_words[0])

/* Sorted (fttok_stopwords_has searches it); never written. */
static fttok_stopwords default_list = { NDEFAULT, 0, (char **)default_words, default_lens };

const fttok_stopwords *fttok_stopwords_default(void)
{
    return &default_list;
}

static int cmp_word(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al > bl) - (al < bl);
}

static void lower_ascii(char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] >= 'A' && s[i] <= 'Z') s[i] = (char)(s[i] - 'A' + 'a');
}

fttok_stopwords *fttok_stopwords_new(const char *const *words, const size_t *lens, size_t n)
{
    fttok_stopwords *sw = calloc(1, sizeof *sw);
    if (!sw) return NULL;
    sw->w = calloc(n ? n : 1, sizeof *sw->w);
    sw->len = calloc(n ? n : 1, sizeof *sw->len);
    if (!sw->w || !sw->len) goto fail;
    sw->bytes = sizeof *sw + n * (sizeof *sw->w + sizeof *sw->len);
    for (size_t i = 0; i < n; i++) {
        char *c = malloc(lens[i] + 1);
        if (!c) goto fail;
        memcpy(c, words[i], lens[i]);
        c[lens[i]] = 0;
        lower_ascii(c, lens[i]);
        /* insertion into the sorted array, duplicates dropped */
        size_t j = sw->n;
        while (j > 0 && cmp_word(sw->w[j - 1], sw->len[j - 1], c, lens[i]) > 0) j--;
        if (j > 0 && cmp_word(sw->w[j - 1], sw->len[j - 1], c, lens[i]) == 0) {
            free(c);
            continue;
        }
        memmove(sw->w + j + 1, sw->w + j, (sw->n - j) * sizeof *sw->w);
        memmove(sw->len + j + 1, sw->len + j, (sw->n - j) * sizeof *sw->len);
        sw->w[j] = c;
        sw->len[j] = lens[i];
        sw->n++;
        sw->bytes += lens[i] + 1;
    }
    return sw;
fail:
    fttok_stopwords_free(sw);
    return NULL;
}

void fttok_stopwords_free(fttok_stopwords *sw)
{
    if (!sw || sw == &default_list) return;
    for (size_t i = 0; i < sw->n; i++) free(sw->w[i]);
    free(sw->w);
    free(sw->len);
    free(sw);
}

int fttok_stopwords_has(const fttok_stopwords *sw, const char *w, size_t len)
{
    if (!sw) return 0;
    size_t lo = 0, hi = sw->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = cmp_word(sw->w[mid], sw->len[mid], w, len);
        if (c == 0) return 1;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return 0;
}

size_t fttok_stopwords_count(const fttok_stopwords *sw)
{
    return sw ? sw->n : 0;
}

const char *fttok_stopwords_word(const fttok_stopwords *sw, size_t i, size_t *len)
{
    *len = sw->len[i];
    return sw->w[i];
}

size_t fttok_stopwords_memory(const fttok_stopwords *sw)
{
    return sw ? sw->bytes : 0;
}

/* ---- the tokenizer ------------------------------------------------------- */

static const unsigned char sepmap[256] = {
    [' '] = 1, ['\t'] = 1, [','] = 1, ['.'] = 1, ['/'] = 1, ['('] = 1, [')'] = 1, ['{'] = 1,
    ['}'] = 1, ['['] = 1, [']'] = 1, [':'] = 1, [';'] = 1, ['~'] = 1, ['!'] = 1, ['@'] = 1,
    ['#'] = 1, ['$'] = 1, ['%'] = 1, ['^'] = 1, ['&'] = 1, ['*'] = 1, ['-'] = 1, ['='] = 1,
    ['+'] = 1, ['|'] = 1, ['\''] = 1, ['`'] = 1, ['"'] = 1, ['<'] = 1, ['>'] = 1, ['?'] = 1,
};

int fttok_is_sep(unsigned char c)
{
    return sepmap[c];
}

void fttok_init(fttok *t, const char *text, size_t len, char *buf, char *stembuf,
                const fttok_stopwords *sw, int stem, uint32_t pos)
{
    const char *nul = memchr(text, 0, len);
    if (nul) len = (size_t)(nul - text);
    memcpy(buf, text, len);
    *t = (fttok){ .buf = buf, .len = len, .stembuf = stembuf, .sw = sw, .stem = stem, .pos = pos };
}

/* Normalise s[0..n) in place (RediSearch's DefaultNormalize): returns the
 * new length. */
static size_t normalize(char *s, size_t n)
{
    size_t o = 0;
    int escaped = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z') {
            s[o++] = (char)(c - 'A' + 'a');
        } else if (((c == ' ' || c == '\t') && !escaped) || c < 0x20 || c == 0x7f) {
            /* dropped */
        } else if (c == '\\' && !escaped) {
            escaped = 1;
            continue;
        } else {
            s[o++] = (char)c;
        }
        escaped = 0;
    }
    return o;
}

int fttok_next(fttok *t, fttok_token *tok)
{
    while (t->at < t->len) {
        size_t start = t->at, i = start;
        /* a separator ends the token unless a backslash precedes it */
        while (i < t->len && !(sepmap[(unsigned char)t->buf[i]] && (i == start || t->buf[i - 1] != '\\')))
            i++;
        t->at = i < t->len ? i + 1 : i;
        /* RediSearch 2.6 normalises (and so keeps) a token's first 128
         * bytes only */
        size_t raw = i - start < FTTOK_TOKEN_MAX ? i - start : FTTOK_TOKEN_MAX;
        size_t n = normalize(t->buf + start, raw);
        if (n == 0 || fttok_stopwords_has(t->sw, t->buf + start, n)) continue;
        *tok = (fttok_token){ .text = t->buf + start, .len = n, .pos = ++t->pos };
        if (t->stem && n >= FTTOK_MIN_STEM_LEN) {
            size_t sl = stem_english(tok->text, n, t->stembuf + 1);
            if (sl != n || memcmp(t->stembuf + 1, tok->text, n) != 0) {
                t->stembuf[0] = FTTOK_STEM_PREFIX;
                tok->stem = t->stembuf;
                tok->stem_len = sl + 1;
            }
        }
        return 1;
    }
    return 0;
}

size_t fttok_normalize_query(char *s, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\\' && i + 1 < len) {
            unsigned char d = (unsigned char)s[i + 1];
            if ((d > 0x20 && d < 0x7f && !((d >= '0' && d <= '9') || (d >= 'a' && d <= 'z') ||
                                           (d >= 'A' && d <= 'Z'))) ||
                d == ' ' || (d >= '\t' && d <= '\r'))
                continue;
        }
        s[o++] = (char)((c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c);
    }
    return o;
}
