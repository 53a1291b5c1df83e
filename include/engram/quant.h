/* quant.h -- quantised vectors, as Redis 8's vector sets store them: Q8 (the
 * default), BIN and NOQUANT (float32).  Encoding runs once per insert (and
 * once per query), so it is plain scalar code (src/vec/quant.c); the
 * distances between stored vectors come from the int8 dot-product and
 * Hamming kernels of dist.h, and the functions here turn those exact
 * integers into the distances Redis reports.
 *
 * What Redis does (read from redis/redis, modules/vector-sets/hnsw.c:
 * quantize_to_q8, quantize_to_bin, vectors_distance_q8,
 * vectors_distance_bin, hnsw_get_node_vector, hnsw_quants_bytes; vset.c's
 * VADD option parsing and VSIM's score), restated, not copied:
 *   - Vectors are L2-normalised before they are quantised (the only metric
 *     is cosine), and the norm is kept beside the codes so VEMB can scale
 *     the decoded vector back.  Normalising is the caller's job, not this
 *     module's: these functions take any finite vector.
 *   - Q8, per vector: range = max |x_i|, the one float stored with the
 *     codes.  code_i = round(x_i * (127 / range)), rounding halves away
 *     from zero (roundf), so codes lie in [-127, 127]: the component with
 *     |x_i| = range maps to +-127 and -128 never occurs (the int8 kernels
 *     rely on that; dist.h).  An all-zero vector has range 0 and all-zero
 *     codes.  Decoding: x_i ~ code_i * range / 127.
 *   - Q8 distance of two normalised vectors: with dot = sum qa_i * qb_i
 *     (exact, dist_i8_kernels), 1 - dot * (range_a / 127) * (range_b / 127),
 *     clamped to [0, 2]; 1 (orthogonal) when either range is 0.
 *   - BIN: bit i (bit i % 64 of 64-bit word i / 64, least significant bit
 *     first) is 1 when x_i > 0, else 0 -- zero counts as negative.  The
 *     vector takes ceil(dim / 64) whole words and the bits past dim are 0 in
 *     every vector, so XOR + popcount over whole words never counts them.
 *     Decoding: +1 for a set bit, -1 otherwise (no scaling back by the norm).
 *   - BIN distance: 2 * hamming / dim, in [0, 2].  That is exactly the
 *     cosine distance of the two decoded +-1 vectors: their dot product is
 *     dim - 2 * hamming, their norms sqrt(dim).
 *   - VSIM's similarity score is 1 - distance / 2 for every type.
 *
 * Errors: the encoders return 0, or VEC_EVALUE (vecbase.h) if a component is
 * NaN or infinite, and then write nothing.  Pure functions; any thread. */
#ifndef ENGRAM_QUANT_H
#define ENGRAM_QUANT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef enum quant_type {
    QUANT_NONE = 0, /* NOQUANT: float32 */
    QUANT_Q8 = 1,   /* int8 codes + one float range (the default) */
    QUANT_BIN = 2,  /* one bit per dimension */
} quant_type;

/* 64-bit words of a BIN vector of dim components: ceil(dim / 64). */
static inline size_t quant_bin_words(size_t dim)
{
    return (dim + 63) / 64;
}

/* Bytes of one stored vector: 4 * dim, dim (the Q8 range is stored
 * beside), or 8 * quant_bin_words(dim). */
size_t quant_bytes(quant_type t, size_t dim);

/* Q8-encode x[dim] into codes[dim] and *range (max |x_i|). */
int quant_q8_encode(const float *x, size_t dim, int8_t *codes, float *range);
/* out[i] = codes[i] * range / 127. */
void quant_q8_decode(const int8_t *codes, size_t dim, float range, float *out);
/* The cosine distance of two normalised Q8 vectors from their exact int8
 * dot product and their ranges, as above: in [0, 2].  (Inline: the record
 * distances below run it once per distance in the search loop.) */
static inline float quant_q8_cosine(int32_t dot, float range_a, float range_b)
{
    if (range_a == 0.0f || range_b == 0.0f) return 1.0f;
    float scale = (range_a / 127.0f) * (range_b / 127.0f);
    float d = 1.0f - (float)dot * scale;
    if (d < 0.0f) d = 0.0f;
    if (d > 2.0f) d = 2.0f;
    return d;
}

/* BIN-encode x[dim] into bits[quant_bin_words(dim)], padding bits 0. */
int quant_bin_encode(const float *x, size_t dim, uint64_t *bits);
/* out[i] = +1 if bit i is set, else -1. */
void quant_bin_decode(const uint64_t *bits, size_t dim, float *out);
/* 2 * hamming / dim, in [0, 2] (dim > 0). */
static inline float quant_bin_cosine(uint64_t hamming, size_t dim)
{
    return (float)hamming * 2.0f / (float)dim;
}

/* ---- records: one stored vector as the engines keep it --------------------
 *
 *   QUANT_NONE  dim float32
 *   QUANT_Q8    dim int8 codes, zero bytes up to a multiple of 4, then the
 *               range as one float32 (native byte order, 4-byte aligned
 *               within the record)
 *   QUANT_BIN   quant_bin_words(dim) 64-bit words
 *
 * A record is everything a distance needs, so an engine stores records of
 * quant_record_bytes each and compares two with one call (dist.h's
 * q8_dist / bin_dist, or the float kernels).  Engines keep records in
 * arrays aligned to 64 bytes with sizes a multiple of 4 (8 for BIN), so
 * every field is on its natural alignment. */
size_t quant_record_bytes(quant_type t, size_t dim);

static inline size_t quant_q8_range_offset(size_t dim)
{
    return (dim + 3) & ~(size_t)3;
}

static inline float quant_q8_record_range(const void *rec, size_t dim)
{
    float r;
    memcpy(&r, (const unsigned char *)rec + quant_q8_range_offset(dim), sizeof r);
    return r;
}

/* Encode x[dim] (normalised by the caller) as a record; 0 or VEC_EVALUE
 * (nothing written). */
int quant_encode(quant_type t, const float *x, size_t dim, void *rec);
/* The record's vector as floats (Q8: codes * range / 127; BIN: +-1). */
void quant_decode(quant_type t, const void *rec, size_t dim, float *out);

/* The record distances of one int8 / Hamming kernel, for its file to
 * define beside the kernel (so the kernel call inlines):
 *     QUANT_Q8_RECORD_DIST(avx2_i8_q8_dist, avx2_i8_dot)
 * defines static float avx2_i8_q8_dist(const void *a, const void *b, size_t dim). */
#define QUANT_Q8_RECORD_DIST(name, dotfn)                                                   \
    static float name(const void *a, const void *b, size_t dim)                             \
    {                                                                                       \
        return quant_q8_cosine(dotfn((const int8_t *)a, (const int8_t *)b, dim),            \
                               quant_q8_record_range(a, dim), quant_q8_record_range(b, dim)); \
    }
#define QUANT_BIN_RECORD_DIST(name, hamfn)                                                  \
    static float name(const void *a, const void *b, size_t dim)                             \
    {                                                                                       \
        return quant_bin_cosine(hamfn((const uint64_t *)a, (const uint64_t *)b,             \
                                      quant_bin_words(dim)),                                \
                                dim);                                                       \
    }

#endif
