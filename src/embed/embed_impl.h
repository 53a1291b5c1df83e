/* embed_impl.h -- the private seam between embed.c (the embedder object,
 * the tokeniser, the public accessors) and the files that implement one kind
 * each: embed_hash.c ("hash") and embed_wordvec.c ("model": static word
 * vectors).  Nothing outside src/embed includes this.
 *
 * A kind is a constructor (declared in embed.h) that fills in the common
 * struct embedder below, ops included; embed.c reaches the kind only
 * through those ops, so adding a kind changes no other file of this folder.
 *
 * The tokeniser is shared: every kind splits and folds text with
 * EMBED_CLASS and embed_fold (the rule is written in embed.c), so a word is
 * the same bytes to every kind, and changing either changes every
 * embedding.  EMBED_FNV_PRIME and embed_fmix64 are under every hash
 * embedding's buckets; the model kind uses them only to place words in its
 * table.
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
    /* embed_texts; NULL: embed.c calls text once per text */
    int (*texts)(const embedder *e, size_t n, const void *const *texts, const size_t *lens,
                 float *out, int *counts);
    /* embed_tokenize / embed_max_tokens; NULL for kinds without tokens */
    int (*tokenize)(const embedder *e, const uint8_t *p, size_t len, int32_t *ids, uint32_t cap);
    uint32_t (*max_tokens)(const embedder *e);
} embed_ops;

/* What every kind has.  A kind with state of its own puts this first in
 * its struct and converts back in its ops (only they see its embedders). */
struct embedder {
    const embed_ops *ops;
    uint32_t dim;
    uint32_t vocab;          /* words in the vocabulary; 0 if none */
    const char *format;      /* embed_format's answer; static */
    size_t mem;              /* bytes held, the kind's struct included */
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
int embed_fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Read the whole regular file at path into a malloc'd buffer (*buf, *len;
 * a NUL follows the last byte, not counted).  0, or -errno / -EINVAL (not a
 * regular file, or larger than max bytes) / -ENOMEM with a message naming
 * the path in err. */
int embed_read_file(const char *path, size_t max, uint8_t **buf, size_t *len, char *err,
                    size_t errlen);

/* Divide out[0..dim) by its L2 norm; leave a zero vector alone. */
void embed_l2_normalise(float *out, uint32_t dim);

#endif
