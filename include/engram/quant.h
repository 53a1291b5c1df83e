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
 * dot product and their ranges, as above: in [0, 2]. */
float quant_q8_cosine(int32_t dot, float range_a, float range_b);

/* BIN-encode x[dim] into bits[quant_bin_words(dim)], padding bits 0. */
int quant_bin_encode(const float *x, size_t dim, uint64_t *bits);
/* out[i] = +1 if bit i is set, else -1. */
void quant_bin_decode(const uint64_t *bits, size_t dim, float *out);
/* 2 * hamming / dim, in [0, 2] (dim > 0). */
float quant_bin_cosine(uint64_t hamming, size_t dim);

#endif
