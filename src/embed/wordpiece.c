/* wordpiece.c -- BERT's BasicTokenizer + WordpieceTokenizer (contract in
 * include/engram/wordpiece.h).
 *
 * The reference is Hugging Face's slow tokenizer (transformers'
 * tokenization_bert.py), which Google's original follows:
 *   _clean_text             drop cp 0, U+FFFD and _is_control (category C*
 *                           but \t \n \r); _is_whitespace (" \t\n\r", Zs)
 *                           becomes a space
 *   _tokenize_chinese_chars spaces around _is_chinese_char
 *   whitespace_tokenize     str.split(): after cleaning, that also splits
 *                           on U+2028/2029 (Zl, Zp), which cleaning keeps
 *   per word: lower() and _run_strip_accents (NFD, drop Mn), then
 *   _run_split_on_punc      each _is_punctuation char a word of its own
 *   WordpieceTokenizer      > max_input_chars_per_word chars: unk; greedy
 *                           longest-match-first with "##" continuations;
 *                           any unmatched part: the whole word is unk.
 * It is done here in one pass over the text, character by character, with
 * no allocation: every step but final sigma is a function of one
 * character, and the word being built is at most WP_WORD_MAX bytes (a
 * longer word is [UNK] whatever its bytes, so only its length is counted
 * past that).  The classes, lower() and NFD-strip come from
 * wp_unicode.h, generated from Python's unicodedata; Hangul syllables are
 * decomposed by the Unicode formula (their jamo are not Mn, so they stay).
 *
 * Final sigma: Python lowers U+03A3 to final U+03C2 when the preceding
 * character (skipping case-ignorable ones) is cased and the following one
 * is not.  Here "cased" is approximated by a letter with case in the Latin,
 * Greek and Cyrillic blocks and "case-ignorable" by Mn and a few
 * apostrophes and dots; the context is the whitespace-separated word, as
 * in Python (punctuation does not end it).
 *
 * Vocabulary: the file's bytes, kept, and an open-addressing table
 * (power of two, load <= 1/2, FNV-1a) of (offset, length, id).
 *
 * Threads: immutable once built; wp_encode uses only the stack. */
#include "engram/wordpiece.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "embed_impl.h"
#include "engram/util.h"
#include "wp_unicode.h"

enum { WPC_OTHER, WPC_SPACE, WPC_DROP, WPC_PUNCT, WPC_CJK, WPC_MN };

typedef struct wp_slot {
    uint32_t off, len;
    int32_t id;               /* -1: empty */
} wp_slot;

struct wp_tokenizer {
    char *text;               /* vocab.txt */
    size_t len;
    wp_slot *slot;
    uint32_t mask;
    uint32_t nvocab;
    int32_t cls, sep, unk, pad;
    int lowercase, strip, cjk;
    uint32_t max_chars;
};

/* ---- Unicode ------------------------------------------------------------------ */

static int wp_class(uint32_t cp)
{
    if (cp < 128) { /* the common case, without the search */
        if (cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r') return WPC_SPACE;
        if (cp < 32 || cp == 127) return WPC_DROP;
        if ((cp >= '0' && cp <= '9') || ((cp | 32) >= 'a' && (cp | 32) <= 'z')) return WPC_OTHER;
        return WPC_PUNCT;
    }
    size_t lo = 0, hi = sizeof WP_CLASS_RUNS / sizeof WP_CLASS_RUNS[0];
    while (hi - lo > 1) { /* the last run starting at or before cp */
        size_t mid = lo + (hi - lo) / 2;
        if ((WP_CLASS_RUNS[mid] >> 3) <= cp) lo = mid;
        else hi = mid;
    }
    return (int)(WP_CLASS_RUNS[lo] & 7);
}

static uint32_t wp_lower1(uint32_t cp)
{
    if (cp < 128) return cp - 'A' < 26u ? cp + 32 : cp;
    size_t lo = 0, hi = sizeof WP_LOWER / sizeof WP_LOWER[0];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (WP_LOWER[mid].last < cp) lo = mid + 1;
        else hi = mid;
    }
    if (lo < sizeof WP_LOWER / sizeof WP_LOWER[0] && WP_LOWER[lo].first <= cp &&
        (cp - WP_LOWER[lo].first) % WP_LOWER[lo].stride == 0)
        return (uint32_t)((int32_t)cp + WP_LOWER[lo].delta);
    return cp;
}

static int wp_cased(uint32_t cp)
{
    return wp_lower1(cp) != cp || cp - 'a' < 26u || (cp >= 0xDF && cp <= 0x24F && cp != 0xF7) ||
           (cp >= 0x3AC && cp <= 0x3FF) || (cp >= 0x430 && cp <= 0x52F);
}

static int wp_case_ignorable(uint32_t cp)
{
    return wp_class(cp) == WPC_MN || cp == '\'' || cp == '.' || cp == ':' || cp == '^' ||
           cp == '`' || cp == 0xA8 || cp == 0xAD || cp == 0xAF || cp == 0xB4 || cp == 0xB7 ||
           cp == 0xB8 || cp == 0x2019;
}

/* NFD with Mn dropped, of one character that is not Mn: out[] (1..3). */
static int wp_strip_char(uint32_t cp, uint32_t out[3])
{
    if (cp >= 0xAC00 && cp <= 0xD7A3) { /* Hangul syllable: L V [T] */
        uint32_t s = cp - 0xAC00;
        out[0] = 0x1100 + s / 588;
        out[1] = 0x1161 + s % 588 / 28;
        if (s % 28) {
            out[2] = 0x11A7 + s % 28;
            return 3;
        }
        return 2;
    }
    if (cp >= 0xC0) {
        size_t lo = 0, hi = sizeof WP_STRIP1 / sizeof WP_STRIP1[0];
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (WP_STRIP1[mid].cp < cp) lo = mid + 1;
            else hi = mid;
        }
        if (lo < sizeof WP_STRIP1 / sizeof WP_STRIP1[0] && WP_STRIP1[lo].cp == cp) {
            out[0] = WP_STRIP1[lo].to;
            return 1;
        }
        for (size_t i = 0; i < sizeof WP_STRIP2 / sizeof WP_STRIP2[0]; i++)
            if (WP_STRIP2[i].cp == cp) {
                int n = 0;
                while (n < 3 && WP_STRIP2[i].to[n]) out[n] = WP_STRIP2[i].to[n], n++;
                return n;
            }
    }
    out[0] = cp;
    return 1;
}

/* Decode one character at s[0..n) (n >= 1); invalid: U+FFFD, 1 byte. */
static uint32_t wp_utf8(const uint8_t *s, size_t n, size_t *used)
{
    unsigned c = s[0];
    size_t l;
    uint32_t min;
    *used = 1;
    if (c < 0x80) return c;
    if (c >= 0xC2 && c <= 0xDF) l = 2, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) l = 3, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) l = 4, min = 0x10000;
    else return 0xFFFD;
    if (l > n) return 0xFFFD;
    uint32_t cp = c & (0x7Fu >> l);
    for (size_t i = 1; i < l; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0xFFFD;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0xFFFD;
    *used = l;
    return cp;
}

/* ---- vocabulary --------------------------------------------------------------- */

static uint32_t wp_hash(const char *s, size_t n, int cont)
{
    uint32_t h = 2166136261u;
    if (cont) h = (h ^ '#') * 16777619u, h = (h ^ '#') * 16777619u;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

/* The id of ("##" if cont) + s[0..n), or -1. */
static int32_t wp_find(const wp_tokenizer *t, const char *s, size_t n, int cont)
{
    size_t full = n + (cont ? 2 : 0);
    for (uint32_t i = wp_hash(s, n, cont) & t->mask;; i = (i + 1) & t->mask) {
        const wp_slot *sl = &t->slot[i];
        if (sl->id < 0) return -1;
        if (sl->len != full) continue;
        const char *v = t->text + sl->off;
        if (cont && (v[0] != '#' || v[1] != '#')) continue;
        if (!memcmp(v + (cont ? 2 : 0), s, n)) return sl->id;
    }
}

int32_t wp_id(const wp_tokenizer *t, const char *tok, size_t len)
{
    return t && (tok || !len) ? wp_find(t, tok, len, 0) : -1;
}

static int wp_build(wp_tokenizer *t, const char *name, const wp_opts *o, char *err, size_t errlen)
{
    uint32_t lines = 0;
    for (size_t i = 0; i < t->len; i++) lines += t->text[i] == '\n';
    if (t->len && t->text[t->len - 1] != '\n') lines++;
    if (lines == 0)
        return embed_fail(err, errlen, EMBED_EFORMAT, "%s: empty vocabulary", name);
    if (lines > WP_VOCAB_MAX)
        return embed_fail(err, errlen, EMBED_EFORMAT, "%s: %u lines, more than %u", name, lines,
                          WP_VOCAB_MAX);
    uint32_t cap = 16;
    while (cap < 2 * lines) cap *= 2;
    t->slot = malloc((size_t)cap * sizeof *t->slot);
    if (!t->slot) return embed_fail(err, errlen, -ENOMEM, "%s: out of memory", name);
    for (uint32_t i = 0; i < cap; i++) t->slot[i].id = -1;
    t->mask = cap - 1;
    size_t p = 0;
    for (uint32_t id = 0; id < lines; id++) {
        const char *nl = memchr(t->text + p, '\n', t->len - p);
        size_t e = nl ? (size_t)(nl - t->text) : t->len;
        if (e - p > WP_TOKEN_MAX)
            return embed_fail(err, errlen, EMBED_EFORMAT, "%s: line %u: token longer than %u bytes",
                              name, id + 1, WP_TOKEN_MAX);
        /* Insert, or overwrite the id of an earlier equal line. */
        uint32_t i = wp_hash(t->text + p, e - p, 0) & t->mask;
        for (;; i = (i + 1) & t->mask) {
            wp_slot *sl = &t->slot[i];
            if (sl->id < 0) {
                *sl = (wp_slot){.off = (uint32_t)p, .len = (uint32_t)(e - p), .id = (int32_t)id};
                break;
            }
            if (sl->len == e - p && !memcmp(t->text + sl->off, t->text + p, e - p)) {
                sl->id = (int32_t)id;
                break;
            }
        }
        p = e + 1;
    }
    t->nvocab = lines;
    const char *names[4] = {o->cls ? o->cls : "[CLS]", o->sep ? o->sep : "[SEP]",
                            o->unk ? o->unk : "[UNK]", o->pad ? o->pad : "[PAD]"};
    int32_t *ids[4] = {&t->cls, &t->sep, &t->unk, &t->pad};
    for (int k = 0; k < 4; k++) {
        *ids[k] = wp_find(t, names[k], strlen(names[k]), 0);
        if (*ids[k] < 0)
            return embed_fail(err, errlen, EMBED_EFORMAT, "%s: special token '%s' is missing",
                              name, names[k]);
    }
    t->lowercase = o->lowercase != 0;
    t->strip = o->strip_accents < 0 ? t->lowercase : o->strip_accents != 0;
    t->cjk = o->split_cjk != 0;
    t->max_chars = o->max_chars ? o->max_chars : 100;
    if (t->max_chars > WP_WORD_MAX / 4)
        return embed_fail(err, errlen, -EINVAL, "%s: max_chars %u is more than %u", name,
                          t->max_chars, WP_WORD_MAX / 4);
    return 0;
}

static int wp_finish(wp_tokenizer *t, const char *name, const wp_opts *o, wp_tokenizer **out,
                     char *err, size_t errlen)
{
    wp_opts d = WP_OPTS_DEFAULT;
    int rc = wp_build(t, name, o ? o : &d, err, errlen);
    if (rc < 0) {
        wp_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

int wp_load(const char *path, const wp_opts *o, wp_tokenizer **out, char *err, size_t errlen)
{
    if (!path || !out) return -EINVAL;
    *out = NULL;
    wp_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return embed_fail(err, errlen, -ENOMEM, "out of memory");
    uint8_t *buf;
    int rc = embed_read_file(path, (size_t)WP_VOCAB_MAX * (WP_TOKEN_MAX + 1), &buf, &t->len, err,
                             errlen);
    if (rc < 0) {
        free(t);
        return rc;
    }
    t->text = (char *)buf;
    const char *base = strrchr(path, '/');
    return wp_finish(t, base ? base + 1 : path, o, out, err, errlen);
}

int wp_new(const char *vocab, size_t len, const char *name, const wp_opts *o, wp_tokenizer **out,
           char *err, size_t errlen)
{
    if ((!vocab && len) || !out) return -EINVAL;
    *out = NULL;
    wp_tokenizer *t = calloc(1, sizeof *t);
    if (!t || !(t->text = malloc(len + 1))) {
        free(t);
        return embed_fail(err, errlen, -ENOMEM, "out of memory");
    }
    if (len) memcpy(t->text, vocab, len);
    t->len = len;
    return wp_finish(t, name ? name : "vocab", o, out, err, errlen);
}

void wp_free(wp_tokenizer *t)
{
    if (!t) return;
    free(t->slot);
    free(t->text);
    free(t);
}

uint32_t wp_vocab_size(const wp_tokenizer *t) { return t ? t->nvocab : 0; }
int32_t wp_cls(const wp_tokenizer *t) { return t->cls; }
int32_t wp_sep(const wp_tokenizer *t) { return t->sep; }
int32_t wp_unk(const wp_tokenizer *t) { return t->unk; }
int32_t wp_pad(const wp_tokenizer *t) { return t->pad; }

size_t wp_memory(const wp_tokenizer *t)
{
    return t ? sizeof *t + t->len + 1 + ((size_t)t->mask + 1) * sizeof(wp_slot) : 0;
}

/* ---- the basic tokenizer ------------------------------------------------------ */

/* A word being built: its UTF-8 bytes (up to WP_WORD_MAX) and characters. */
typedef struct wp_word {
    char b[WP_WORD_MAX + 4];
    size_t len;
    uint32_t nchars;
} wp_word;

typedef int wp_word_fn(void *ud, const char *word, size_t wlen, uint32_t nchars);

typedef struct wp_scan {
    const wp_tokenizer *t;
    const uint8_t *s;
    size_t len, pos;
    wp_word w;
    int prev_cased;           /* final sigma: the word so far ends in a cased char */
    wp_word_fn *fn;
    void *ud;
    size_t words;
    int stop;
} wp_scan;

static void wp_flush(wp_scan *sc)
{
    if (!sc->w.nchars || sc->stop) {
        sc->w.len = sc->w.nchars = 0;
        return;
    }
    sc->words++;
    if (sc->fn(sc->ud, sc->w.b, sc->w.len, sc->w.nchars)) sc->stop = 1;
    sc->w.len = sc->w.nchars = 0;
}

static void wp_add(wp_scan *sc, uint32_t cp)
{
    if (sc->w.len + 4 <= WP_WORD_MAX) sc->w.len += util_utf8_put(sc->w.b + sc->w.len, cp);
    sc->w.nchars++;
}

/* Final sigma: is the next non-ignorable character of this whitespace word
 * cased?  Looks ahead from pos without consuming. */
static int wp_next_cased(const wp_scan *sc)
{
    for (size_t p = sc->pos; p < sc->len;) {
        size_t used;
        uint32_t cp = wp_utf8(sc->s + p, sc->len - p, &used);
        p += used;
        int c = wp_class(cp);
        if (c == WPC_DROP) continue;
        if (c == WPC_SPACE) return 0;
        if (wp_case_ignorable(cp)) continue;
        return wp_cased(cp);
    }
    return 0;
}

/* One character of text, after cleaning: lower, strip, split punctuation. */
static void wp_char(wp_scan *sc, uint32_t cp)
{
    const wp_tokenizer *t = sc->t;
    uint32_t out[3];
    int n = 1, cased = wp_cased(cp), ignorable = wp_case_ignorable(cp);
    out[0] = cp;
    if (t->lowercase) {
        if (cp == 0x130) { /* 'İ'.lower() is "i" + U+0307 */
            out[0] = 'i', out[1] = 0x307, n = 2;
        } else if (cp == 0x3A3) {
            out[0] = sc->prev_cased && !wp_next_cased(sc) ? 0x3C2 : 0x3C3;
        } else {
            out[0] = wp_lower1(cp);
        }
    }
    if (!ignorable) sc->prev_cased = cased;
    for (int i = 0; i < n; i++) {
        uint32_t parts[3];
        int m = 1;
        parts[0] = out[i];
        if (t->strip) {
            if (wp_class(out[i]) == WPC_MN) continue;
            m = wp_strip_char(out[i], parts);
        }
        for (int k = 0; k < m; k++) {
            if (wp_class(parts[k]) == WPC_PUNCT) {
                wp_flush(sc);
                wp_add(sc, parts[k]);
                wp_flush(sc);
            } else {
                wp_add(sc, parts[k]);
            }
        }
    }
}

static size_t wp_scan_text(const wp_tokenizer *t, const void *text, size_t len, wp_word_fn *fn,
                           void *ud)
{
    wp_scan *sc = &(wp_scan){.t = t, .s = text, .len = len, .fn = fn, .ud = ud};
    while (sc->pos < sc->len && !sc->stop) {
        size_t used;
        uint32_t cp = wp_utf8(sc->s + sc->pos, sc->len - sc->pos, &used);
        sc->pos += used;
        switch (wp_class(cp)) {
        case WPC_DROP: break;
        case WPC_SPACE:
            wp_flush(sc);
            sc->prev_cased = 0;
            break;
        case WPC_CJK:
            if (t->cjk) {
                wp_flush(sc);
                wp_add(sc, cp);
                wp_flush(sc);
                sc->prev_cased = 0; /* the space BERT puts after it */
                break;
            }
            /* fall through */
        default: wp_char(sc, cp);
        }
    }
    wp_flush(sc);
    return sc->words;
}

size_t wp_basic(const wp_tokenizer *t, const void *text, size_t len, wp_word_fn *fn, void *ud)
{
    if (!t || (!text && len) || !fn) return 0;
    return wp_scan_text(t, text, len, fn, ud);
}

/* ---- WordPiece ---------------------------------------------------------------- */

typedef struct wp_enc {
    const wp_tokenizer *t;
    int32_t *ids;
    uint32_t n, cap;          /* cap: room for pieces (max_tokens - 1: [SEP] kept) */
} wp_enc;

/* Add a piece; non-zero when full (the caller stops). */
static int wp_emit(wp_enc *e, int32_t id)
{
    if (e->n < e->cap) e->ids[e->n++] = id;
    return e->n >= e->cap;
}

static int wp_piece_word(void *ud, const char *w, size_t wlen, uint32_t nchars)
{
    wp_enc *e = ud;
    const wp_tokenizer *t = e->t;
    if (nchars > t->max_chars) return wp_emit(e, t->unk);
    /* Character boundaries: wlen <= WP_WORD_MAX since nchars <= max_chars. */
    uint16_t at[WP_WORD_MAX / 4 + 2];
    uint32_t nc = 0;
    for (size_t i = 0; i < wlen; i++)
        if (((uint8_t)w[i] & 0xC0) != 0x80) at[nc++] = (uint16_t)i;
    at[nc] = (uint16_t)wlen;
    int32_t found[WP_WORD_MAX / 4 + 1];
    uint32_t nf = 0, start = 0;
    while (start < nc) {
        int32_t id = -1;
        uint32_t end;
        for (end = nc; end > start; end--) {
            id = wp_find(t, w + at[start], (size_t)(at[end] - at[start]), start > 0);
            if (id >= 0) break;
        }
        if (id < 0) return wp_emit(e, t->unk);
        found[nf++] = id;
        start = end;
    }
    for (uint32_t i = 0; i < nf; i++)
        if (wp_emit(e, found[i])) return 1;
    return 0;
}

int wp_encode(const wp_tokenizer *t, const void *text, size_t len, uint32_t max_tokens,
              int32_t *ids, uint32_t *pieces)
{
    if (!t || !ids || max_tokens < 2 || (!text && len)) return -EINVAL;
    wp_enc e = {.t = t, .ids = ids, .n = 1, .cap = max_tokens - 1};
    ids[0] = t->cls;
    if (e.n < e.cap) wp_scan_text(t, text, len, wp_piece_word, &e);
    ids[e.n++] = t->sep;
    if (pieces) *pieces = e.n - 2;
    return (int)e.n;
}
