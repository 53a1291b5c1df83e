/* embed.c -- text embedders: feature hashing and static word-vector models.
 * Contract in embed.h.  An embedder is immutable once created: embed_text
 * reads it and writes only the caller's stack and out[], so any number of
 * threads may embed with one embedder at once.  The model loader runs on the
 * creating thread only and publishes nothing until it has succeeded.
 *
 * Tokeniser (both kinds)
 *   A word is a maximal run of word bytes: ASCII letters and digits, and
 *   every byte >= 0x80.  Everything else -- blanks, punctuation, '_', '-',
 *   '.', '/', control bytes, NUL -- separates words.  ASCII letters are
 *   lower-cased; bytes >= 0x80 are kept as they are, undecoded: UTF-8 words
 *   work as words (without case folding: "Ü" != "ü"), and invalid UTF-8 is
 *   just more word bytes.  "/var/log/syslog: Disk FULL" is var, log,
 *   syslog, disk, full.  No length limit (a 1 MB word is one word), no
 *   locale, no allocation.
 *
 * Hash features
 *   Each word is normalised once more: every maximal run of digits becomes
 *   one '0' ("10:42" -> 0 0, "eth1" -> eth0, "sha256" -> sha0), so
 *   timestamps, pids and addresses do not scatter otherwise equal log
 *   lines; the spelling as written survives as a light "numeral" feature
 *   (so "error 404" and "error 500" are near, not equal).  Per token:
 *     word     the normalised word                                  1.0
 *     number   replaces "word" when the token is all digits          0.25
 *     numeral  the token as written (lower-cased) if it has a digit  0.25
 *     gram     each character 3-gram of the normalised word between
 *              the markers '<' and '>' ("disk": <di dis isk sk>; "a":
 *              <a>); none for all-digit tokens                       0.25
 *   and per pair of adjacent words (across punctuation; all-digit tokens
 *   are transparent: "full at 10:42 on" gives full_at, at_on):
 *     bigram   (previous normalised word, this normalised word)     0.5
 *   A feature occurring c times in a text adds w * (1 + ln c).  Words
 *   dominate; bigrams add order (the same words in another order differ
 *   only by their bigrams); grams give inflections and typos something in
 *   common ("disk" / "disks": cosine ~0.15 rather than 0, while whole-word
 *   matches dominate); numbers weigh little, so log lines that differ only in
 *   timestamps, ids or addresses stay close (cosine ~0.97 for "disk full
 *   at 10:42" vs "... 11:07").  The weights are per feature: a 6-letter
 *   word brings 6 grams, 6 * 0.25^2 = 0.375 of its word feature's energy.
 *
 * Hashing
 *   Words and numerals: FNV-1a 64 over the normalised / written bytes from a
 *   seeded basis; bigrams: prev * K + this of the two word hashes (ordered);
 *   grams: the three bytes packed into an integer.  Each is xored with its
 *   kind's constant and finished with murmur3's fmix64 into a 64-bit key:
 *   bucket = ((key >> 32) * dim) >> 32 (Lemire's range reduction), sign =
 *   bit 0 (1 = negative).  Only integer arithmetic on constants written
 *   here: buckets and signs are the same on every machine and run; the float
 *   values depend only on IEEE arithmetic and on log() for counts >= 2.
 *   Counting: keys go through a small open-addressing table on the stack
 *   (EH_SLOTS_MAX slots, fewer for short texts); counted features are added
 *   to out[] in the order of their first occurrence.  A text with more than
 *   EH_DISTINCT distinct features (a hundred-odd distinct words) is counted
 *   in windows of that many: a feature seen in two windows adds
 *   w(1 + ln c1) + w(1 + ln c2) instead of w(1 + ln(c1 + c2)).  Still
 *   deterministic, and exact for the short texts (log lines) this is for.
 *   Finally out is divided by its L2 norm (summed in double); no feature, or
 *   an exact cancellation (tiny dims), leaves the zero vector.
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
#include "engram/embed.h"

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

#define EH_SLOTS_MAX 1024u          /* feature counter slots (16 KiB of stack) */
#define EH_SLOTS_MIN 32u
#define EH_DISTINCT (EH_SLOTS_MAX / 4 * 3) /* distinct features per window */

/* Hash constants.  Changing any of them changes every hash embedding. */
#define EH_FNV_PRIME 0x00000100000001b3ULL
#define EH_BASIS     (0xcbf29ce484222325ULL ^ 0x656e6772616d3031ULL) /* FNV basis ^ "engram01" */
#define EH_K_WORD    0x9e3779b97f4a7c15ULL
#define EH_K_NUMERAL 0xc2b2ae3d27d4eb4fULL
#define EH_K_GRAM    0x165667b19e3779f9ULL
#define EH_K_BIGRAM  0x27d4eb2f165667c5ULL
#define EH_K_PAIR    0xff51afd7ed558ccdULL /* bigram: prev * K_PAIR + this */
#define EV_BASIS     (0xcbf29ce484222325ULL ^ 0x766f636162756c61ULL) /* ^ "vocabula" */

enum { EMBED_HASH = 1, EMBED_MODEL = 2 };

struct embedder {
    int kind;
    uint32_t dim;
    const char *format;
    size_t mem;              /* bytes of everything below plus the struct */
    /* model only */
    uint32_t n;              /* words stored */
    uint32_t maxwlen;        /* longest stored word: longer text words skip the lookup */
    uint8_t *words;          /* lower-cased words back to back, wbytes long */
    size_t wbytes;
    uint32_t *off;           /* word i is words[off[i] .. off[i + 1]) */
    uint32_t *rank;          /* 1-based position of word i's entry in the file */
    float *vecs;             /* n * dim, file order */
    uint64_t *table;         /* (index + 1) << 32 | tag; 0 = empty */
    uint32_t tmask;
    double sif_ah;           /* a * H_N; 0 = plain mean */
};

/* Byte classes: 0 separator, 1 digit, 2 other word byte (letters, >= 0x80). */
static const uint8_t EMBED_CLASS[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* 00-1f */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0,  /* 20-3f */
    0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0,  /* 40-5f */
    0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0,  /* 60-7f */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,  /* 80-9f */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,  /* a0-bf */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,  /* c0-df */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,  /* e0-ff */
};

static inline unsigned fold(unsigned c) { return c + ((c - 'A' < 26u) << 5); }

/* murmur3's 64-bit finaliser: every input bit reaches every output bit. */
static inline uint64_t fmix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Divide out[0..dim) by its L2 norm; leave a zero vector alone. */
static void l2_normalise(float *out, uint32_t dim)
{
    double ss = 0;
    for (uint32_t i = 0; i < dim; i++) ss += (double)out[i] * out[i];
    if (ss == 0) return;
    double inv = 1.0 / sqrt(ss);
    for (uint32_t i = 0; i < dim; i++) out[i] = (float)(out[i] * inv);
}

/* ---- the hash embedder ----------------------------------------------------- */

enum { EH_WORD, EH_NUMBER, EH_NUMERAL, EH_GRAM, EH_BIGRAM, EH_KINDS };
static const double EH_WEIGHT[EH_KINDS] = { 1.0, 0.25, 0.25, 0.25, 0.5 };

typedef struct eh_slot {
    uint64_t key;
    uint32_t count;          /* 0 = empty */
    uint32_t kind;
} eh_slot;

/* Counts features of one text; lives on embed_text's stack. */
typedef struct eh_counter {
    eh_slot *slot;
    uint32_t mask, n, limit;
    float *out;
    uint32_t dim;
    uint16_t order[EH_DISTINCT];  /* slots in first-occurrence order */
} eh_counter;

/* Add every counted feature to out[] and empty the table. */
static void eh_flush(eh_counter *c)
{
    for (uint32_t i = 0; i < c->n; i++) {
        eh_slot *s = &c->slot[c->order[i]];
        double v = EH_WEIGHT[s->kind];
        if (s->count > 1) v *= 1.0 + log((double)s->count);
        uint32_t b = (uint32_t)(((s->key >> 32) * (uint64_t)c->dim) >> 32);
        float f = (float)v;
        c->out[b] += (s->key & 1) ? -f : f;
        s->count = 0;
    }
    c->n = 0;
}

static void eh_add(eh_counter *c, uint64_t key, unsigned kind)
{
    uint32_t i = (uint32_t)(key >> 8) & c->mask;
    for (;;) {
        eh_slot *s = &c->slot[i];
        if (s->count == 0) {
            s->key = key;
            s->count = 1;
            s->kind = kind;
            c->order[c->n++] = (uint16_t)i;
            if (c->n == c->limit) eh_flush(c);
            return;
        }
        if (s->key == key) {
            if (s->count != UINT32_MAX) s->count++;
            return;
        }
        i = (i + 1) & c->mask;
    }
}

/* One token w[0..n) whose byte classes or-ed together are cls (1: has a
 * digit, 2: has another byte).  *prev is the previous word's normalised
 * hash when have_prev.  Returns 1 if the token was a word (it is now
 * *prev), 0 for an all-digit token. */
static int eh_token(eh_counter *c, const uint8_t *w, size_t n, unsigned cls,
                    uint64_t *prev, int have_prev)
{
    uint64_t wh = EH_BASIS, nh = EH_BASIS;
    uint32_t g = '<';
    size_t gn = 1;                        /* bytes in the gram window so far */
    int grams = (cls & 2) != 0, in_run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned ch = w[i];
        if (ch - '0' < 10u) {
            nh = (nh ^ ch) * EH_FNV_PRIME;
            if (in_run) continue;         /* a digit run is one '0' */
            in_run = 1;
            ch = '0';
        } else {
            in_run = 0;
            ch = fold(ch);
            nh = (nh ^ ch) * EH_FNV_PRIME;
        }
        wh = (wh ^ ch) * EH_FNV_PRIME;
        if (grams) {
            g = ((g << 8) | ch) & 0xffffffu;
            if (++gn >= 3) eh_add(c, fmix64(g ^ EH_K_GRAM), EH_GRAM);
        }
    }
    if (grams) {
        g = ((g << 8) | '>') & 0xffffffu;
        if (++gn >= 3) eh_add(c, fmix64(g ^ EH_K_GRAM), EH_GRAM);
    }
    eh_add(c, fmix64(wh ^ EH_K_WORD), grams ? EH_WORD : EH_NUMBER);
    if (cls & 1) eh_add(c, fmix64(nh ^ EH_K_NUMERAL), EH_NUMERAL);
    if (!grams) return 0;                 /* numbers are transparent to bigrams */
    if (have_prev) eh_add(c, fmix64((*prev * EH_K_PAIR + wh) ^ EH_K_BIGRAM), EH_BIGRAM);
    *prev = wh;
    return 1;
}

static int eh_embed(const embedder *e, const uint8_t *p, size_t len, float *out)
{
    eh_slot slots[EH_SLOTS_MAX];
    eh_counter c;
    uint32_t nslots = EH_SLOTS_MIN;
    while (nslots < EH_SLOTS_MAX && nslots < 2 * (uint64_t)len + 16) nslots <<= 1;
    memset(slots, 0, nslots * sizeof slots[0]);
    c.slot = slots;
    c.mask = nslots - 1;
    c.n = 0;
    c.limit = nslots / 4 * 3;
    c.out = out;
    c.dim = e->dim;
    memset(out, 0, (size_t)e->dim * sizeof *out);

    uint64_t prev = 0;
    size_t tokens = 0, i = 0;
    int have_prev = 0;
    while (i < len) {
        while (i < len && EMBED_CLASS[p[i]] == 0) i++;
        size_t s = i;
        unsigned cls = 0;
        while (i < len && EMBED_CLASS[p[i]] != 0) cls |= EMBED_CLASS[p[i++]];
        if (i == s) break;
        have_prev |= eh_token(&c, p + s, i - s, cls, &prev, have_prev);
        tokens++;
    }
    eh_flush(&c);
    l2_normalise(out, e->dim);
    return tokens > INT_MAX ? INT_MAX : (int)tokens;
}

int embed_hash_new(uint32_t dim, embedder **out, char *err, size_t errlen)
{
    if (!out) return fail(err, errlen, -EINVAL, "no output pointer");
    *out = NULL;
    if (dim < 1 || dim > EMBED_DIM_MAX)
        return fail(err, errlen, -EINVAL, "dimension must be between 1 and %u, got %u",
                    EMBED_DIM_MAX, dim);
    embedder *e = calloc(1, sizeof *e);
    if (!e) return fail(err, errlen, -ENOMEM, "out of memory");
    e->kind = EMBED_HASH;
    e->dim = dim;
    e->format = "hash";
    e->mem = sizeof *e;
    *out = e;
    return 0;
}

/* ---- vocabulary (shared by the loader and lookups) ------------------------- */

/* Hash of a word, case-folded as it is read. */
static uint64_t vocab_hash(const uint8_t *w, size_t n)
{
    uint64_t h = EV_BASIS;
    for (size_t i = 0; i < n; i++) h = (h ^ fold(w[i])) * EH_FNV_PRIME;
    return fmix64(h);
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
        while (k < n && sw[k] == fold(w[k])) k++;
        if (k == n) return idx + 1;
    }
}

static void vocab_put(uint64_t *table, uint32_t mask, uint32_t tag, uint32_t idx)
{
    uint32_t i = tag & mask;
    while (table[i]) i = (i + 1) & mask;
    table[i] = ((uint64_t)(idx + 1) << 32) | tag;
}

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
    for (size_t i = 0; i < wn; i++) L->words[L->wlen + i] = (uint8_t)fold(w[i]);
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
    embedder *e = calloc(1, sizeof *e);
    if (!e) return loader_oom(L);
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
    e->kind = EMBED_MODEL;
    e->dim = L->dim;
    e->format = format;
    e->n = L->n;
    e->maxwlen = L->maxwlen;
    e->words = L->words;
    e->wbytes = L->wlen;
    e->off = L->off;
    e->rank = L->rank;
    e->vecs = L->vecs;
    e->table = L->table;
    e->tmask = L->tmask;
    double a = o->sif_a > 0 ? o->sif_a : EMBED_SIF_A_DEFAULT;
    e->sif_ah = o->plain_mean ? 0 : a * harmonic(L->entries);
    e->mem = sizeof *e + vb + L->wlen + ((size_t)L->cap + 1) * sizeof *L->off +
             (size_t)L->cap * sizeof *L->rank + ((size_t)L->tmask + 1) * sizeof *L->table;
    L->vecs = NULL;
    L->words = NULL;
    L->off = NULL;
    L->rank = NULL;
    L->table = NULL;
    *out = e;
    return 0;
}

int embed_model_load_opts(const char *path, const embed_model_opts *opts,
                          embedder **out, char *err, size_t errlen)
{
    static const embed_model_opts defaults = { 0, 0, 0 };
    const embed_model_opts *o = opts ? opts : &defaults;
    if (!out) return fail(err, errlen, -EINVAL, "no output pointer");
    *out = NULL;
    if (!path) return fail(err, errlen, -EINVAL, "no path");
    if (!(o->sif_a >= 0) || !isfinite(o->sif_a))
        return fail(err, errlen, -EINVAL, "SIF a must be a positive number (0 = default)");

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

/* ---- model embedding -------------------------------------------------------- */

static float model_weight(const embedder *e, uint32_t idx)
{
    if (e->sif_ah == 0) return 1.0f;
    double x = e->sif_ah * e->rank[idx];     /* a / (a + 1/(r H)) */
    return (float)(x / (x + 1.0));
}

static int model_embed(const embedder *e, const uint8_t *p, size_t len, float *out)
{
    uint32_t dim = e->dim;
    memset(out, 0, (size_t)dim * sizeof *out);
    size_t known = 0, i = 0;
    while (i < len) {
        while (i < len && EMBED_CLASS[p[i]] == 0) i++;
        size_t s = i;
        uint64_t h = EV_BASIS;
        while (i < len && EMBED_CLASS[p[i]] != 0) h = (h ^ fold(p[i++])) * EH_FNV_PRIME;
        if (i == s) break;
        if (i - s > e->maxwlen) continue;
        uint32_t hit = vocab_get(e->table, e->tmask, e->words, e->off, p + s, i - s, fmix64(h));
        if (!hit) continue;
        const float *v = e->vecs + (size_t)(hit - 1) * dim;
        float w = model_weight(e, hit - 1);
        for (uint32_t k = 0; k < dim; k++) out[k] += w * v[k];
        known++;
    }
    l2_normalise(out, dim);
    return known > INT_MAX ? INT_MAX : (int)known;
}

/* ---- the public accessors ----------------------------------------------------- */

int embed_text(const embedder *e, const void *text, size_t len, float *out)
{
    if (!e || !out || (!text && len)) return -EINVAL;
    if (e->kind == EMBED_HASH) return eh_embed(e, text, len, out);
    return model_embed(e, text, len, out);
}

int embed_lookup(const embedder *e, const void *word, size_t len, float *out, float *weight)
{
    if (!e || e->kind != EMBED_MODEL || (!word && len)) return -EINVAL;
    if (len == 0 || len > e->maxwlen) return 0;
    uint32_t hit = vocab_get(e->table, e->tmask, e->words, e->off, word, len, vocab_hash(word, len));
    if (!hit) return 0;
    if (out) memcpy(out, e->vecs + (size_t)(hit - 1) * e->dim, (size_t)e->dim * sizeof *out);
    if (weight) *weight = model_weight(e, hit - 1);
    return 1;
}

uint32_t embed_dim(const embedder *e) { return e ? e->dim : 0; }

const char *embed_kind(const embedder *e)
{
    return !e ? "" : e->kind == EMBED_HASH ? "hash" : "model";
}

const char *embed_format(const embedder *e) { return e ? e->format : ""; }

uint32_t embed_vocab_size(const embedder *e) { return e ? e->n : 0; }

size_t embed_memory(const embedder *e) { return e ? e->mem : 0; }

void embed_free(embedder *e)
{
    if (!e) return;
    free(e->vecs);
    free(e->words);
    free(e->off);
    free(e->rank);
    free(e->table);
    free(e);
}

const char *embed_strerror(int err)
{
    if (err == 0) return "ok";
    if (err == EMBED_EFORMAT) return "malformed or unsupported model file";
    if (err < 0 && err > -4096) return strerror(-err);
    return "unknown error";
}
