/* embed_hash.c -- the "hash" kind: feature hashing of words, word bigrams
 * and character 3-grams into dim signed buckets.  Needs no file and holds no
 * state beyond the embedder object; words come from the shared tokeniser
 * (embed.c).  Features are counted in a table on embed_text's stack, so any
 * number of threads may embed with one hash embedder at once.
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
 *   here and in embed_impl.h: buckets and signs are the same on every machine and run; the float
 *   values depend only on IEEE arithmetic and on log() for counts >= 2.
 *   Counting: keys go through a small open-addressing table on the stack
 *   (EH_SLOTS_MAX slots, fewer for short texts); counted features are added
 *   to out[] in the order of their first occurrence.  A text with more than
 *   EH_DISTINCT distinct features (a hundred-odd distinct words) is counted
 *   in windows of that many: a feature seen in two windows adds
 *   w(1 + ln c1) + w(1 + ln c2) instead of w(1 + ln(c1 + c2)).  Still
 *   deterministic, and exact for the short texts (log lines) this is for.
 *   Finally out is divided by its L2 norm (summed in double); no feature, or
 *   an exact cancellation (tiny dims), leaves the zero vector. */
#include "embed_impl.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define EH_SLOTS_MAX 1024u          /* feature counter slots (16 KiB of stack) */
#define EH_SLOTS_MIN 32u
#define EH_DISTINCT (EH_SLOTS_MAX / 4 * 3) /* distinct features per window */

/* Hash constants.  Changing any of them (or embed_impl.h's) changes every
 * hash embedding. */
#define EH_BASIS     (0xcbf29ce484222325ULL ^ 0x656e6772616d3031ULL) /* FNV basis ^ "engram01" */
#define EH_K_WORD    0x9e3779b97f4a7c15ULL
#define EH_K_NUMERAL 0xc2b2ae3d27d4eb4fULL
#define EH_K_GRAM    0x165667b19e3779f9ULL
#define EH_K_BIGRAM  0x27d4eb2f165667c5ULL
#define EH_K_PAIR    0xff51afd7ed558ccdULL /* bigram: prev * K_PAIR + this */

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
            nh = (nh ^ ch) * EMBED_FNV_PRIME;
            if (in_run) continue;         /* a digit run is one '0' */
            in_run = 1;
            ch = '0';
        } else {
            in_run = 0;
            ch = embed_fold(ch);
            nh = (nh ^ ch) * EMBED_FNV_PRIME;
        }
        wh = (wh ^ ch) * EMBED_FNV_PRIME;
        if (grams) {
            g = ((g << 8) | ch) & 0xffffffu;
            if (++gn >= 3) eh_add(c, embed_fmix64(g ^ EH_K_GRAM), EH_GRAM);
        }
    }
    if (grams) {
        g = ((g << 8) | '>') & 0xffffffu;
        if (++gn >= 3) eh_add(c, embed_fmix64(g ^ EH_K_GRAM), EH_GRAM);
    }
    eh_add(c, embed_fmix64(wh ^ EH_K_WORD), grams ? EH_WORD : EH_NUMBER);
    if (cls & 1) eh_add(c, embed_fmix64(nh ^ EH_K_NUMERAL), EH_NUMERAL);
    if (!grams) return 0;                 /* numbers are transparent to bigrams */
    if (have_prev) eh_add(c, embed_fmix64((*prev * EH_K_PAIR + wh) ^ EH_K_BIGRAM), EH_BIGRAM);
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
    embed_l2_normalise(out, e->dim);
    return tokens > INT_MAX ? INT_MAX : (int)tokens;
}

static void eh_free(embedder *e) { free(e); }

static const embed_ops EH_OPS = {
    .kind = "hash",
    .text = eh_embed,
    .lookup = NULL,
    .free = eh_free,
};

int embed_hash_new(uint32_t dim, embedder **out, char *err, size_t errlen)
{
    if (!out) return embed_fail(err, errlen, -EINVAL, "no output pointer");
    *out = NULL;
    if (dim < 1 || dim > EMBED_DIM_MAX)
        return embed_fail(err, errlen, -EINVAL, "dimension must be between 1 and %u, got %u",
                          EMBED_DIM_MAX, dim);
    embedder *e = calloc(1, sizeof *e);
    if (!e) return embed_fail(err, errlen, -ENOMEM, "out of memory");
    e->ops = &EH_OPS;
    e->dim = dim;
    e->format = "hash";
    e->mem = sizeof *e;
    *out = e;
    return 0;
}
