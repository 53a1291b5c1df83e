/* embed_wordvec.c -- the "model" kind: static word-embedding files
 * (word2vec / GloVe / fastText .vec text, word2vec binary): the buffered
 * file reader, locale-free number parsing, the loader and its format
 * detection, the vocabulary table and the SIF-weighted mean.  Words of a
 * text come from the shared tokeniser (embed.c), so a vocabulary word that
 * the tokeniser could never produce is skipped at load time.
 *
 * Threads: the loader runs on the creating thread only and publishes
 * nothing until it has succeeded; after that the embedder is immutable and
 * embed_text / embed_lookup only read it.
 *
 * Static models: formats
 *   Text (.vec / GloVe): lines "word v1 ... vdim", fields separated by
 *   spaces or tabs (runs allowed; leading and trailing blanks and a CR
 *   ignored), optionally preceded by a header line "count dim" (exactly two
 *   unsigned integers).  Without a header dim is the first line's field
 *   count minus one (GloVe).  Blank lines are skipped.  Numbers are parsed
 *   here, not by strtof (no locale): optional sign, digits, optional
 *   fraction, optional exponent; NaN, infinities, overflow and anything else
 *   are refused.
 *   word2vec binary: header "count dim\n", then count records: the word's
 *   bytes up to a space, dim little-endian IEEE-754 float32, an optional
 *   '\n' (newlines before a word are skipped).
 *   Detection: a first line that is not two integers means GloVe.  After a
 *   header the first record decides: if the bytes after its word up to the
 *   end of the line are not empty and all number characters (0-9 . - + e E
 *   and blanks) it is text, otherwise binary.
 *
 * Static models: what is refused (EMBED_EFORMAT, naming the line for text,
 * the byte offset for binary)
 *   An empty file; gzip data and fastText .bin models (use the .vec); a
 *   malformed header; dim outside 1..EMBED_DIM_MAX; a header count of zero,
 *   or larger than the file's size could hold (checked before anything is
 *   allocated from it); a line with fewer or more values than dim, or a
 *   value that is not a finite float32; a line longer than EMBED_LINE_MAX;
 *   in binary a word longer than EMBED_BWORD_MAX (or without its space), a
 *   truncated record, a non-finite value, data after the last record; fewer
 *   records than the header announces (text: more, too); a vocabulary with
 *   no usable word.  With max_words only that many entries are read and the
 *   rest of the file is not looked at.
 *   Skipped, not refused: a word containing a separator byte ("n't", "e.g.",
 *   "New_York", "</s>"), which no text could ever produce; a later duplicate
 *   after lower-casing ("Disk" then "disk": the first is kept); and, for
 *   GloVe 840B, a line with more than dim + 1 fields whose extra leading
 *   fields are not numbers (a word with spaces in it; if any extra field is
 *   a number the line is refused as a wrong column count).  Skipped entries
 *   keep their place in the rank order.
 *
 * Static models: vocabulary and embedding
 *   Words are stored lower-cased, back to back in one allocation (offsets
 *   in off[]), vectors in one n * dim float array in file order, ranks in
 *   rank[], and a power-of-two open-addressing table (linear probing, load
 *   <= 1/2) of {32-bit hash tag, index + 1}; the slot is tag & mask, so the
 *   table grows without rehashing the words.  Lookup hashes the text's word
 *   while case-folding it and compares folded bytes: nothing is copied.
 *   Digits are kept (models have "2010"), unlike in the hash features.
 *   Embedding = sum over known word tokens (repeats count) of weight(w) *
 *   vec(w), divided by its L2 norm (so the mean's division cancels); word
 *   vectors are used as stored, not normalised one by one.  SIF (Arora et
 *   al., 2017): weight = a / (a + p(w)).  Word files are ordered by
 *   frequency, so p(w) is estimated from the 1-based rank r of the word's
 *   entry in the file by Zipf's law, p = 1 / (r * H_N), with N the entries
 *   read and H_N the N-th harmonic number; a = 1e-3 by default.  Frequent
 *   words ("the", "is") get small weights, rare ones nearly 1.  SIF's
 *   common-component removal is not done (it needs a corpus).  plain_mean
 *   uses weight 1.  No known word gives the zero vector. */
#include "embed_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EMBED_LINE_MAX  (1u << 20)  /* text model line limit, bytes */
#define EMBED_BWORD_MAX 4096u       /* binary model word limit, bytes */

/* Vocabulary hash basis: FNV basis ^ "vocabula". */
#define EV_BASIS (0xcbf29ce484222325ULL ^ 0x766f636162756c61ULL)

/* A loaded model.  base comes first: the embedder * that embed.c holds is
 * this struct, converted back by the ops below. */
typedef struct wordvec {
    embedder base;           /* base.vocab: words stored */
    uint32_t maxwlen;        /* longest stored word: longer text words skip the lookup */
    uint32_t tmask;
    uint8_t *words;          /* lower-cased words back to back, wbytes long */
    size_t wbytes;
    uint32_t *off;           /* word i is words[off[i] .. off[i + 1]) */
    uint32_t *rank;          /* 1-based position of word i's entry in the file */
    float *vecs;             /* vocab * dim, file order */
    uint64_t *table;         /* (index + 1) << 32 | tag; 0 = empty */
    double sif_ah;           /* a * H_N; 0 = plain mean */
} wordvec;

/* ---- vocabulary (shared by the loader and lookups) ------------------------- */

/* Hash of a word, case-folded as it is read. */
static uint64_t vocab_hash(const uint8_t *w, size_t n)
{
    uint64_t h = EV_BASIS;
    for (size_t i = 0; i < n; i++) h = (h ^ embed_fold(w[i])) * EMBED_FNV_PRIME;
    return embed_fmix64(h);
}

/* Index + 1 of the word matching w[0..n) case-folded (stored words are
 * folded already), or 0. */
static uint32_t vocab_get(const uint64_t *table, uint32_t mask, const uint8_t *words,
                          const uint32_t *off, const uint8_t *w, size_t n, uint64_t h)
{
    uint32_t tag = (uint32_t)h;
    for (uint32_t i = tag & mask;; i = (i + 1) & mask) {
        uint64_t s = table[i];
        if (s == 0) return 0;
        if ((uint32_t)s != tag) continue;
        uint32_t idx = (uint32_t)(s >> 32) - 1;
        const uint8_t *sw = words + off[idx];
        if (off[idx + 1] - off[idx] != n) continue;
        size_t k = 0;
        while (k < n && sw[k] == embed_fold(w[k])) k++;
        if (k == n) return idx + 1;
    }
}

static void vocab_put(uint64_t *table, uint32_t mask, uint32_t tag, uint32_t idx)
{
    uint32_t i = tag & mask;
    while (table[i]) i = (i + 1) & mask;
    table[i] = ((uint64_t)(idx + 1) << 32) | tag;
}

/* ---- model embedding -------------------------------------------------------- */

static float model_weight(const wordvec *m, uint32_t idx)
{
    if (m->sif_ah == 0) return 1.0f;
    double x = m->sif_ah * m->rank[idx];     /* a / (a + 1/(r H)) */
    return (float)(x / (x + 1.0));
}

static int model_embed(const embedder *e, const uint8_t *p, size_t len, float *out)
{
    const wordvec *m = (const wordvec *)e;
    uint32_t dim = e->dim;
    memset(out, 0, (size_t)dim * sizeof *out);
    size_t known = 0, i = 0;
    while (i < len) {
        while (i < len && EMBED_CLASS[p[i]] == 0) i++;
        size_t s = i;
        uint64_t h = EV_BASIS;
        while (i < len && EMBED_CLASS[p[i]] != 0) h = (h ^ embed_fold(p[i++])) * EMBED_FNV_PRIME;
        if (i == s) break;
        if (i - s > m->maxwlen) continue;
        uint32_t hit = vocab_get(m->table, m->tmask, m->words, m->off, p + s, i - s, embed_fmix64(h));
        if (!hit) continue;
        const float *v = m->vecs + (size_t)(hit - 1) * dim;
        float w = model_weight(m, hit - 1);
        for (uint32_t k = 0; k < dim; k++) out[k] += w * v[k];
        known++;
    }
    embed_l2_normalise(out, dim);
    return known > INT_MAX ? INT_MAX : (int)known;
}

static int model_lookup(const embedder *e, const uint8_t *word, size_t len, float *out, float *weight)
{
    const wordvec *m = (const wordvec *)e;
    if (len == 0 || len > m->maxwlen) return 0;
    uint32_t hit = vocab_get(m->table, m->tmask, m->words, m->off, word, len, vocab_hash(word, len));
    if (!hit) return 0;
    if (out) memcpy(out, m->vecs + (size_t)(hit - 1) * e->dim, (size_t)e->dim * sizeof *out);
    if (weight) *weight = model_weight(m, hit - 1);
    return 1;
}

static void model_free(embedder *e)
{
    wordvec *m = (wordvec *)e;
    free(m->vecs);
    free(m->words);
    free(m->off);
    free(m->rank);
    free(m->table);
    free(m);
}

static const embed_ops MODEL_OPS = {
    .kind = "model",
    .text = model_embed,
    .lookup = model_lookup,
    .free = model_free,
};

/* ---- model files: a buffered reader ------------------------------------------ */

typedef struct rd {
    int fd;
    uint8_t *buf;
    size_t cap, pos, end;   /* unread bytes are buf[pos .. end) */
    uint64_t base;          /* file offset of buf[0] */
    int eof;
} rd;

/* Move the unread bytes to the front and read more.  0 or -errno. */
static int rd_fill(rd *r)
{
    if (r->pos > 0) {
        memmove(r->buf, r->buf + r->pos, r->end - r->pos);
        r->base += r->pos;
        r->end -= r->pos;
        r->pos = 0;
    }
    while (r->end < r->cap && !r->eof) {
        ssize_t k = read(r->fd, r->buf + r->end, r->cap - r->end);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (k == 0) r->eof = 1;
        r->end += (size_t)k;
        break;
    }
    return 0;
}

/* Make at least n (<= cap) unread bytes available, fewer only at EOF.
 * Returns the bytes available or -errno. */
static ssize_t rd_need(rd *r, size_t n)
{
    while (r->end - r->pos < n && !r->eof) {
        int rc = rd_fill(r);
        if (rc < 0) return rc;
    }
    return (ssize_t)(r->end - r->pos);
}

#define RD_TOOLONG 1000  /* rd_line: a line exceeds EMBED_LINE_MAX (positive) */

/* Next line without its '\n' (the last line may lack one).  Returns 1 with
 * *line / *n set (valid until the next call), 0 at EOF, RD_TOOLONG, or
 * -errno. */
static int rd_line(rd *r, const uint8_t **line, size_t *n)
{
    size_t scanned = 0;
    for (;;) {
        const uint8_t *s = r->buf + r->pos + scanned;
        const uint8_t *nl = memchr(s, '\n', r->end - r->pos - scanned);
        if (nl) {
            *line = r->buf + r->pos;
            *n = (size_t)(nl - *line);
            r->pos += *n + 1;
            return *n > EMBED_LINE_MAX ? RD_TOOLONG : 1;
        }
        scanned = r->end - r->pos;
        if (scanned > EMBED_LINE_MAX) return RD_TOOLONG;
        if (r->eof) {
            if (scanned == 0) return 0;
            *line = r->buf + r->pos;
            *n = scanned;
            r->pos = r->end;
            return 1;
        }
        int rc = rd_fill(r);
        if (rc < 0) return rc;
    }
}

/* ---- model files: numbers ------------------------------------------------------ */

static int is_blank(unsigned c) { return c == ' ' || c == '\t'; }
static int is_digit(unsigned c) { return c - '0' < 10u; }

/* Parse all of s[0..n) as a decimal float: [+-]digits[.digits][(e|E)[+-]digits]
 * (digits on at least one side of the point).  Locale-free: the first 19
 * significant digits are kept exactly, the rest only move the exponent,
 * and the value is m * 10^e in double, then rounded to float.  Returns 1
 * with *out set, 0 if malformed or not finite as a float32. */
static int parse_f32(const uint8_t *s, size_t n, float *out)
{
    static const double P10[] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
                                  1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
                                  1e20, 1e21, 1e22 };
    size_t i = 0;
    int neg = 0, digits = 0;
    uint64_t m = 0;
    long e10 = 0;
    if (i < n && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
    for (; i < n && is_digit(s[i]); i++, digits++) {
        if (m < 100000000000000000ULL) m = m * 10 + (s[i] - '0');
        else e10++;
    }
    if (i < n && s[i] == '.') {
        for (i++; i < n && is_digit(s[i]); i++, digits++) {
            if (m < 100000000000000000ULL) {
                m = m * 10 + (s[i] - '0');
                e10--;
            }
        }
    }
    if (digits == 0) return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        int eneg = 0;
        long x = 0;
        i++;
        if (i < n && (s[i] == '-' || s[i] == '+')) eneg = s[i++] == '-';
        if (i == n || !is_digit(s[i])) return 0;
        for (; i < n && is_digit(s[i]); i++)
            if (x < 100000) x = x * 10 + (s[i] - '0');
        e10 += eneg ? -x : x;
    }
    if (i != n) return 0;
    double v = (double)m;
    if (m != 0) {
        if (e10 > 400) return 0;                     /* overflows any float */
        if (e10 < -400) e10 = -400;                  /* underflows to 0 */
        while (e10 > 22) { v *= 1e22; e10 -= 22; }
        while (e10 < -22) { v /= 1e22; e10 += 22; }
        v = e10 >= 0 ? v * P10[e10] : v / P10[-e10];
    }
    float f = (float)v;
    if (!isfinite(f)) return 0;
    *out = neg ? -f : f;
    return 1;
}

/* Unsigned decimal integer, all of s[0..n), at most 19 digits. */
static int parse_u64(const uint8_t *s, size_t n, uint64_t *out)
{
    if (n == 0 || n > 19) return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i])) return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

static int all_digits(const uint8_t *s, const uint8_t *end)
{
    if (s == end) return 0;
    for (; s < end; s++)
        if (!is_digit(*s)) return 0;
    return 1;
}

/* Split a line into blank-separated fields.  Stores up to max field
 * [start, end) pairs in f (may be NULL with max 0) and returns the count. */
static size_t split_fields(const uint8_t *p, size_t n, const uint8_t **f, size_t max)
{
    size_t k = 0, i = 0;
    for (;;) {
        while (i < n && is_blank(p[i])) i++;
        if (i == n) return k;
        size_t s = i;
        while (i < n && !is_blank(p[i])) i++;
        if (k < max) {
            f[2 * k] = p + s;
            f[2 * k + 1] = p + i;
        }
        k++;
    }
}

/* ---- model files: the loader ------------------------------------------------ */

typedef struct loader {
    rd r;
    const char *path;
    char *err;
    size_t errlen;
    uint64_t fsize;
    uint32_t dim;
    uint64_t limit;          /* entries to read at most */
    uint64_t entries;        /* entries read so far: the next one's rank - 1 */
    uint64_t line;           /* text: number of the line being parsed */
    uint32_t n, cap;         /* words stored, room in vecs/off/rank */
    float *vecs;
    uint32_t *off;           /* cap + 1 */
    uint32_t *rank;
    uint8_t *words;
    size_t wlen, wcap;
    uint64_t *table;
    uint32_t tmask;
    uint32_t maxwlen;
} loader;

static void loader_fini(loader *L)
{
    free(L->r.buf);
    free(L->vecs);
    free(L->off);
    free(L->rank);
    free(L->words);
    free(L->table);
    if (L->r.fd >= 0) close(L->r.fd);
}

#define LFAIL(L, code, ...) lfail((L), (code), __VA_ARGS__)

static int lfail(loader *L, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int lfail(loader *L, int code, const char *fmt, ...)
{
    if (L->err && L->errlen) {
        int k = snprintf(L->err, L->errlen, "%s: ", L->path);
        if (k >= 0 && (size_t)k < L->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(L->err + k, L->errlen - (size_t)k, fmt, ap);
            va_end(ap);
        }
    }
    return code;
}

static int loader_oom(loader *L)
{
    return LFAIL(L, -ENOMEM, "out of memory after %u words of %u dimensions", L->n, L->dim);
}

/* Room for `want` words in vecs, off and rank. */
static int loader_reserve(loader *L, uint64_t want)
{
    if (want <= L->cap) return 0;
    if (want > UINT32_MAX - 1) return LFAIL(L, EMBED_EFORMAT, "more than %u usable words", UINT32_MAX - 2);
    if (want > SIZE_MAX / sizeof(float) / L->dim) return loader_oom(L);
    float *v = realloc(L->vecs, (size_t)want * L->dim * sizeof *v);
    if (!v) return loader_oom(L);
    L->vecs = v;
    uint32_t *o = realloc(L->off, ((size_t)want + 1) * sizeof *o);
    if (!o) return loader_oom(L);
    L->off = o;
    uint32_t *rk = realloc(L->rank, (size_t)want * sizeof *rk);
    if (!rk) return loader_oom(L);
    L->rank = rk;
    L->cap = (uint32_t)want;
    return 0;
}

/* Room for one more word (vector row L->n). */
static int loader_grow(loader *L)
{
    if (L->n < L->cap) return 0;
    uint64_t want = L->cap < 16 ? 16 : (uint64_t)L->cap * 2;
    if (want > UINT32_MAX - 1) want = UINT32_MAX - 1;
    if (L->limit < want) want = L->limit > L->n ? L->limit : L->n + 1;
    return loader_reserve(L, want);
}

/* Keep the table at load <= 1/2 for n + 1 words. */
static int loader_table(loader *L)
{
    uint64_t size = (uint64_t)L->tmask + 1;
    if (L->table && 2 * ((uint64_t)L->n + 1) <= size) return 0;
    uint64_t nsize = L->table ? size * 2 : 64;
    while (2 * ((uint64_t)L->n + 1) > nsize) nsize *= 2;
    if (nsize > ((uint64_t)1 << 32) || nsize > SIZE_MAX / sizeof(uint64_t)) return loader_oom(L);
    uint64_t *t = calloc((size_t)nsize, sizeof *t);
    if (!t) return loader_oom(L);
    uint32_t nmask = (uint32_t)(nsize - 1);
    if (L->table) {
        for (uint64_t i = 0; i < size; i++)
            if (L->table[i]) vocab_put(t, nmask, (uint32_t)L->table[i], (uint32_t)(L->table[i] >> 32) - 1);
        free(L->table);
    }
    L->table = t;
    L->tmask = nmask;
    return 0;
}

/* The vector of the entry just parsed is row L->n of vecs; the entry's word
 * is w[0..wn).  Store it unless it is unreachable or a duplicate.  Counts
 * the entry either way. */
static int loader_commit(loader *L, const uint8_t *w, size_t wn)
{
    uint64_t rank = ++L->entries;
    if (wn == 0) return 0;
    for (size_t i = 0; i < wn; i++)
        if (EMBED_CLASS[w[i]] == 0) return 0;   /* no text could produce it */
    if (L->wlen + wn > UINT32_MAX) return LFAIL(L, EMBED_EFORMAT, "vocabulary larger than 4 GiB");
    int rc = loader_table(L);
    if (rc < 0) return rc;
    uint64_t h = vocab_hash(w, wn);
    if (L->n && vocab_get(L->table, L->tmask, L->words, L->off, w, wn, h)) return 0;
    if (L->wlen + wn > L->wcap) {
        size_t ncap = L->wcap ? L->wcap : 4096;
        while (ncap < L->wlen + wn) ncap *= 2;
        uint8_t *nw = realloc(L->words, ncap);
        if (!nw) return loader_oom(L);
        L->words = nw;
        L->wcap = ncap;
    }
    for (size_t i = 0; i < wn; i++) L->words[L->wlen + i] = (uint8_t)embed_fold(w[i]);
    if (L->n == 0) L->off[0] = 0;
    L->wlen += wn;
    L->off[L->n + 1] = (uint32_t)L->wlen;
    L->rank[L->n] = rank > UINT32_MAX ? UINT32_MAX : (uint32_t)rank;
    vocab_put(L->table, L->tmask, (uint32_t)h, L->n);
    if (wn > L->maxwlen) L->maxwlen = (uint32_t)wn;
    L->n++;
    return 0;
}

static void show_token(char *dst, size_t cap, const uint8_t *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 5 < cap; i++) {
        unsigned c = s[i];
        if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') dst[k++] = (char)c;
        else k += (size_t)snprintf(dst + k, cap - k, "\\x%02x", c);
    }
    dst[k] = 0;
}

/* One text line (without '\n').  Returns 0 or an error. */
static int loader_text_line(loader *L, const uint8_t *p, size_t n)
{
    while (n && (is_blank(p[n - 1]) || p[n - 1] == '\r')) n--;
    size_t nf = split_fields(p, n, NULL, 0);
    if (nf == 0) return 0;                          /* blank line */
    const uint8_t *f[2];
    split_fields(p, n, f, 1);
    const uint8_t *w = f[0];
    size_t wn = (size_t)(f[1] - f[0]);
    const uint8_t *q = f[1];                        /* values start after the word */
    const uint8_t *end = p + n;
    int spaced = 0;                                 /* a word with blanks in it */
    if (nf - 1 != L->dim) {
        /* Too many fields is a word with blanks (GloVe 840B) only if none
         * of the extra leading fields is a number. */
        size_t extra = nf - 1 > L->dim ? nf - 1 - L->dim : 0;
        int numeric = 0;
        for (size_t k = 0; k < extra; k++) {
            while (q < end && is_blank(*q)) q++;
            const uint8_t *s = q;
            while (q < end && !is_blank(*q)) q++;
            float dummy;
            numeric |= parse_f32(s, (size_t)(q - s), &dummy);
        }
        if (extra == 0 || numeric)
            return LFAIL(L, EMBED_EFORMAT, "line %llu: expected %u values after the word, found %zu",
                         (unsigned long long)L->line, L->dim, nf - 1);
        spaced = 1;
    }
    int rc = loader_grow(L);
    if (rc < 0) return rc;
    float *row = L->vecs + (size_t)L->n * L->dim;
    for (uint32_t k = 0; k < L->dim; k++) {
        while (q < end && is_blank(*q)) q++;
        const uint8_t *s = q;
        while (q < end && !is_blank(*q)) q++;
        if (!parse_f32(s, (size_t)(q - s), &row[k])) {
            char tok[48];
            show_token(tok, sizeof tok, s, (size_t)(q - s) > 24 ? 24 : (size_t)(q - s));
            return LFAIL(L, EMBED_EFORMAT, "line %llu: value %u ('%s') is not a finite number",
                         (unsigned long long)L->line, k + 1, tok);
        }
    }
    if (spaced) {
        L->entries++;
        return 0;
    }
    return loader_commit(L, w, wn);
}

static int loader_read_error(loader *L, int rc)
{
    if (rc == RD_TOOLONG)
        return LFAIL(L, EMBED_EFORMAT, "line %llu: longer than %u bytes",
                     (unsigned long long)L->line, EMBED_LINE_MAX);
    return LFAIL(L, rc, "read failed: %s", strerror(-rc));
}

/* Text entries from the current position; `count` is the header's count
 * (0 = no header). */
static int loader_text(loader *L, uint64_t count)
{
    const uint8_t *line;
    size_t n;
    while (L->entries < L->limit) {
        L->line++;
        int rc = rd_line(&L->r, &line, &n);
        if (rc == 0) break;
        if (rc != 1) return loader_read_error(L, rc);
        if (count && L->entries == count) {
            while (n && (is_blank(line[n - 1]) || line[n - 1] == '\r')) n--;
            if (split_fields(line, n, NULL, 0) == 0) continue;   /* trailing blank lines */
            return LFAIL(L, EMBED_EFORMAT, "line %llu: more entries than the %llu the header announces",
                         (unsigned long long)L->line, (unsigned long long)count);
        }
        rc = loader_text_line(L, line, n);
        if (rc < 0) return rc;
    }
    if (count && L->entries < count && L->entries < L->limit)
        return LFAIL(L, EMBED_EFORMAT, "header announces %llu entries, the file has %llu",
                     (unsigned long long)count, (unsigned long long)L->entries);
    return 0;
}

/* word2vec binary records from the current position. */
static int loader_binary(loader *L, uint64_t count)
{
    rd *r = &L->r;
    size_t vbytes = (size_t)L->dim * 4;
    uint64_t want = count < L->limit ? count : L->limit;
    while (L->entries < want) {
        ssize_t av;
        for (;;) {                                   /* newlines before a word */
            av = rd_need(r, 1);
            if (av < 0) return loader_read_error(L, (int)av);
            if (av == 0 || r->buf[r->pos] != '\n') break;
            r->pos++;
        }
        uint64_t at = r->base + r->pos;
        if (av == 0)
            return LFAIL(L, EMBED_EFORMAT, "offset %llu: truncated: header announces %llu records, "
                         "the file ends after %llu", (unsigned long long)at,
                         (unsigned long long)count, (unsigned long long)L->entries);
        av = rd_need(r, EMBED_BWORD_MAX + 1);
        if (av < 0) return loader_read_error(L, (int)av);
        const uint8_t *w = r->buf + r->pos;
        const uint8_t *sp = memchr(w, ' ', (size_t)av < EMBED_BWORD_MAX + 1 ? (size_t)av : EMBED_BWORD_MAX + 1);
        if (!sp) {
            if ((size_t)av <= EMBED_BWORD_MAX)
                return LFAIL(L, EMBED_EFORMAT, "offset %llu: truncated: record %llu has no space after its word",
                             (unsigned long long)at, (unsigned long long)L->entries + 1);
            return LFAIL(L, EMBED_EFORMAT, "offset %llu: record %llu: word longer than %u bytes",
                         (unsigned long long)at, (unsigned long long)L->entries + 1, EMBED_BWORD_MAX);
        }
        size_t wn = (size_t)(sp - w);
        /* Copy the word out: rd_need below may move the buffer. */
        uint8_t word[EMBED_BWORD_MAX];
        memcpy(word, w, wn);
        r->pos += wn + 1;
        av = rd_need(r, vbytes);
        if (av < 0) return loader_read_error(L, (int)av);
        if ((size_t)av < vbytes)
            return LFAIL(L, EMBED_EFORMAT, "offset %llu: truncated: record %llu needs %zu bytes of "
                         "vector, the file has %zd", (unsigned long long)(r->base + r->pos),
                         (unsigned long long)L->entries + 1, vbytes, av);
        int rc = loader_grow(L);
        if (rc < 0) return rc;
        float *row = L->vecs + (size_t)L->n * L->dim;
        const uint8_t *b = r->buf + r->pos;
        for (uint32_t k = 0; k < L->dim; k++, b += 4) {
            uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
            if ((u & 0x7f800000u) == 0x7f800000u)
                return LFAIL(L, EMBED_EFORMAT, "offset %llu: record %llu: value %u is not finite",
                             (unsigned long long)(r->base + r->pos + 4 * (size_t)k),
                             (unsigned long long)L->entries + 1, k + 1);
            memcpy(&row[k], &u, 4);
        }
        r->pos += vbytes;
        rc = loader_commit(L, word, wn);
        if (rc < 0) return rc;
    }
    if (L->entries < count) return 0;                /* stopped by max_words */
    for (;;) {                                       /* only blank bytes may follow */
        ssize_t av = rd_need(r, 1);
        if (av < 0) return loader_read_error(L, (int)av);
        if (av == 0) return 0;
        uint8_t c = r->buf[r->pos];
        if (c != '\n' && c != '\r' && c != ' ')
            return LFAIL(L, EMBED_EFORMAT, "offset %llu: data after the %llu records the header announces",
                         (unsigned long long)(r->base + r->pos), (unsigned long long)count);
        r->pos++;
    }
}

/* After a "count dim" header: is the first record text?  See the file
 * comment for the rule. */
static int sniff_text(rd *r)
{
    ssize_t av = rd_need(r, EMBED_LINE_MAX);
    if (av <= 0) return 1;                           /* no record: text reports it */
    const uint8_t *p = r->buf + r->pos, *end = p + av;
    while (p < end && *p == '\n') p++;
    const uint8_t *sp = memchr(p, ' ', (size_t)(end - p));
    if (!sp) return 1;
    size_t k = 0;
    for (const uint8_t *q = sp + 1; q < end && *q != '\n'; q++, k++)
        if (!strchr("0123456789.-+eE \t\r", *q) || *q == 0) return 0;
    return k > 0;
}

/* Header or first line, format detection, then the entries. */
static int loader_run(loader *L, const char **format)
{
    ssize_t av = rd_need(&L->r, 4);
    if (av < 0) return loader_read_error(L, (int)av);
    const uint8_t *b = L->r.buf + L->r.pos;
    if (av == 0) return LFAIL(L, EMBED_EFORMAT, "empty file");
    if (av >= 2 && b[0] == 0x1f && b[1] == 0x8b)
        return LFAIL(L, EMBED_EFORMAT, "gzip-compressed; decompress it first");
    if (av >= 4 && b[0] == 0xba && b[1] == 0x16 && b[2] == 0x4f && b[3] == 0x2f)
        return LFAIL(L, EMBED_EFORMAT, "a fastText .bin model; use its .vec text file");

    const uint8_t *line;
    size_t n;
    L->line = 1;
    int rc = rd_line(&L->r, &line, &n);
    if (rc == 0) return LFAIL(L, EMBED_EFORMAT, "empty file");
    if (rc != 1) return loader_read_error(L, rc);
    while (n && (is_blank(line[n - 1]) || line[n - 1] == '\r')) n--;
    const uint8_t *f[4];
    size_t nf = split_fields(line, n, f, 2);
    uint64_t count, dim;
    if (nf == 2 && all_digits(f[0], f[1]) && all_digits(f[2], f[3])) {
        if (!parse_u64(f[0], (size_t)(f[1] - f[0]), &count) ||
            !parse_u64(f[2], (size_t)(f[3] - f[2]), &dim))
            return LFAIL(L, EMBED_EFORMAT, "line 1: header numbers out of range");
        if (dim < 1 || dim > EMBED_DIM_MAX)
            return LFAIL(L, EMBED_EFORMAT, "line 1: dimension %llu out of range 1..%u",
                         (unsigned long long)dim, EMBED_DIM_MAX);
        if (count == 0) return LFAIL(L, EMBED_EFORMAT, "line 1: header announces 0 words");
        L->dim = (uint32_t)dim;
        int text = sniff_text(&L->r);
        uint64_t at = L->r.base + L->r.pos;
        uint64_t rest = L->fsize > at ? L->fsize - at : 0;   /* 0 if it shrank meanwhile */
        uint64_t most = text ? (rest + 1) / (2 * dim + 2) : rest / (4 * dim + 1);
        if (count > most)
            return LFAIL(L, EMBED_EFORMAT, "line 1: header announces %llu words of %llu dimensions, "
                         "but the remaining %llu bytes can hold at most %llu",
                         (unsigned long long)count, (unsigned long long)dim,
                         (unsigned long long)rest, (unsigned long long)most);
        rc = loader_reserve(L, count < L->limit ? count : L->limit);
        if (rc < 0) return rc;
        *format = text ? "vec" : "word2vec-bin";
        return text ? loader_text(L, count) : loader_binary(L, count);
    }
    if (nf < 2)
        return LFAIL(L, EMBED_EFORMAT, "line 1: neither a \"count dim\" header nor \"word values...\"");
    if (nf - 1 > EMBED_DIM_MAX)
        return LFAIL(L, EMBED_EFORMAT, "line 1: %zu values, more than %u", nf - 1, EMBED_DIM_MAX);
    L->dim = (uint32_t)(nf - 1);
    *format = "glove";
    /* Lines are alike in GloVe files: size / first line is a close guess. */
    uint64_t guess = L->fsize / (n + 1) + 16;
    uint64_t most = L->fsize / (2 * (uint64_t)L->dim + 2) + 1;
    if (guess > most) guess = most;
    if (guess > L->limit) guess = L->limit;
    rc = loader_reserve(L, guess);
    if (rc < 0) return rc;
    rc = loader_text_line(L, line, n);
    if (rc < 0) return rc;
    return loader_text(L, 0);
}

/* Harmonic number H_n: exact sum when small, asymptotic expansion beyond
 * (error < 1e-15 there). */
static double harmonic(uint64_t n)
{
    if (n <= 10000) {
        double h = 0;
        for (uint64_t i = n; i >= 1; i--) h += 1.0 / (double)i;
        return h;
    }
    double x = (double)n;
    return log(x) + 0.57721566490153286 + 1 / (2 * x) - 1 / (12 * x * x);
}

/* Hand the loader's arrays to a new embedder, shrunk to size. */
static int loader_finish(loader *L, const embed_model_opts *o, const char *format, embedder **out)
{
    if (L->n == 0)
        return LFAIL(L, EMBED_EFORMAT, "no usable word in %llu entries", (unsigned long long)L->entries);
    wordvec *m = calloc(1, sizeof *m);
    if (!m) return loader_oom(L);
    size_t vb = (size_t)L->n * L->dim * sizeof(float);
    float *v = realloc(L->vecs, vb);
    if (v) L->vecs = v;
    uint8_t *w = realloc(L->words, L->wlen);
    if (w) L->words = w;
    uint32_t *of = realloc(L->off, ((size_t)L->n + 1) * sizeof *of);
    if (of) L->off = of;
    uint32_t *rk = realloc(L->rank, (size_t)L->n * sizeof *rk);
    if (rk) L->rank = rk;
    if (v && of && rk) L->cap = L->n;
    m->base.ops = &MODEL_OPS;
    m->base.dim = L->dim;
    m->base.vocab = L->n;
    m->base.format = format;
    m->maxwlen = L->maxwlen;
    m->words = L->words;
    m->wbytes = L->wlen;
    m->off = L->off;
    m->rank = L->rank;
    m->vecs = L->vecs;
    m->table = L->table;
    m->tmask = L->tmask;
    double a = o->sif_a > 0 ? o->sif_a : EMBED_SIF_A_DEFAULT;
    m->sif_ah = o->plain_mean ? 0 : a * harmonic(L->entries);
    m->base.mem = sizeof *m + vb + L->wlen + ((size_t)L->cap + 1) * sizeof *L->off +
                  (size_t)L->cap * sizeof *L->rank + ((size_t)L->tmask + 1) * sizeof *L->table;
    L->vecs = NULL;
    L->words = NULL;
    L->off = NULL;
    L->rank = NULL;
    L->table = NULL;
    *out = &m->base;
    return 0;
}

int embed_model_load_opts(const char *path, const embed_model_opts *opts,
                          embedder **out, char *err, size_t errlen)
{
    static const embed_model_opts defaults = { 0, 0, 0 };
    const embed_model_opts *o = opts ? opts : &defaults;
    if (!out) return embed_fail(err, errlen, -EINVAL, "no output pointer");
    *out = NULL;
    if (!path) return embed_fail(err, errlen, -EINVAL, "no path");
    if (!(o->sif_a >= 0) || !isfinite(o->sif_a))
        return embed_fail(err, errlen, -EINVAL, "SIF a must be a positive number (0 = default)");

    loader L;
    memset(&L, 0, sizeof L);
    L.r.fd = -1;
    L.path = path;
    L.err = err;
    L.errlen = errlen;
    L.limit = o->max_words ? o->max_words : UINT64_MAX;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return LFAIL(&L, -errno, "%s", strerror(errno));
    L.r.fd = fd;
    struct stat st;
    int rc;
    if (fstat(fd, &st) < 0) {
        rc = LFAIL(&L, -errno, "%s", strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        rc = LFAIL(&L, -EINVAL, "not a regular file");
    } else if (!(L.r.buf = malloc(EMBED_LINE_MAX + 1))) {
        rc = loader_oom(&L);
    } else {
        const char *format = "vec";
        L.fsize = (uint64_t)st.st_size;
        L.r.cap = EMBED_LINE_MAX + 1;
        rc = loader_run(&L, &format);
        if (rc == 0) rc = loader_finish(&L, o, format, out);
    }
    loader_fini(&L);
    return rc;
}

int embed_model_load(const char *path, embedder **out, char *err, size_t errlen)
{
    return embed_model_load_opts(path, NULL, out, err, errlen);
}
