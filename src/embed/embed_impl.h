/* embed_impl.h -- the private seam between embed.c (the embedder object,
 * the tokeniser, the public accessors) and the files that implement one kind
 * each: embed_hash.c ("hash") and embed_wordvec.c ("model": static word
 * vectors).  Nothing outside src/embed includes this.
 *
 * Both kinds tokenise with EMBED_CLASS and embed_fold (the rule is written
 * in embed.c) and hash words with FNV-1a finished by embed_fmix64: the
 * tokeniser and these constants are shared, so a word means the same bytes
 * to every kind.  Changing any of them changes every embedding.
 *
 * Threads: as embed.h: an embedder is immutable once created. */
#ifndef ENGRAM_EMBED_IMPL_H
#define ENGRAM_EMBED_IMPL_H

#include "engram/embed.h"

#include <stddef.h>
#include <stdint.h>

#define EMBED_FNV_PRIME 0x00000100000001b3ULL

/* What a kind provides; the only place embed.c learns which kind it holds.
 * embed.c has checked the arguments (e, out and, when len > 0, the text or
 * word are not NULL) before it calls text or lookup. */
typedef struct embed_ops {
    const char *kind;        /* embed_kind's answer */
    /* embed_text: out[dim] normalised; the number of contributing words */
    int (*text)(const embedder *e, const uint8_t *p, size_t len, float *out);
    /* embed_lookup: 1 known, 0 unknown.  NULL if the kind has no
     * vocabulary (embed_lookup then returns -EINVAL). */
    int (*lookup)(const embedder *e, const uint8_t *w, size_t len, float *out, float *weight);
    void (*free)(embedder *e);   /* everything the embedder holds, e too */
} embed_ops;

struct embedder {
    const embed_ops *ops;
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
extern const uint8_t EMBED_CLASS[256];

static inline unsigned embed_fold(unsigned c) { return c + ((c - 'A' < 26u) << 5); }

/* murmur3's 64-bit finaliser: every input bit reaches every output bit. */
static inline uint64_t embed_fmix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* Write the message to err (if errlen > 0) and return code. */
int embed_fail(char *err, size_t errlen, int code, const char *fmt, ...);

/* Divide out[0..dim) by its L2 norm; leave a zero vector alone. */
void embed_l2_normalise(float *out, uint32_t dim);

#endif
