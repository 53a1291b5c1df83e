/* quant.c -- Q8 and BIN encoding, decoding and distances (quant.h, which
 * also says what Redis does and where we read it).
 *
 * Arithmetic follows Redis's operation for operation, in float, so that a
 * vector encodes to the same codes and a pair of codes gives the same
 * distance as in Redis:
 *   code  = roundf(x_i * (127.0f / range))
 *   x_i  ~= ((float)code * range) / 127.0f
 *   dist  = 1 - (float)dot * ((range_a / 127) * (range_b / 127)), clamped
 *   dist  = (float)hamming * 2 / (float)dim
 * Two guards Redis does without, neither of which changes a result for a
 * normalised vector:
 *   - 127 / range overflows to infinity when range < ~3.7e-37 (a tiny,
 *     unnormalised vector), and x * inf would be inf or NaN; then each
 *     component is divided by range first.
 *   - codes are clamped to [-127, 127].  round(x * (127 / range)) cannot
 *     leave that interval -- |x| <= range and the product is off by a few
 *     ulps of 127, far from 127.5 -- but -128 would break the int8 kernels'
 *     contract (dist.h), so the bound is enforced where codes are made.
 * Pure functions; any thread. */
#include "engram/quant.h"

#include <math.h>
#include <string.h>

#include "engram/vecbase.h"

#define QUANT_Q8_MAX 127

size_t quant_bytes(quant_type t, size_t dim)
{
    switch (t) {
    case QUANT_Q8: return dim;
    case QUANT_BIN: return quant_bin_words(dim) * sizeof(uint64_t);
    case QUANT_NONE: break;
    }
    return dim * sizeof(float);
}

static int quant_all_finite(const float *x, size_t dim)
{
    for (size_t i = 0; i < dim; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

static int8_t quant_q8_code(float scaled)
{
    float r = roundf(scaled);
    if (r > QUANT_Q8_MAX) r = QUANT_Q8_MAX;
    if (r < -QUANT_Q8_MAX) r = -QUANT_Q8_MAX;
    return (int8_t)r;
}

int quant_q8_encode(const float *x, size_t dim, int8_t *codes, float *range)
{
    if (!quant_all_finite(x, dim)) return VEC_EVALUE;
    float max = 0.0f;
    for (size_t i = 0; i < dim; i++)
        if (fabsf(x[i]) > max) max = fabsf(x[i]);
    *range = max;
    if (max == 0.0f) {
        memset(codes, 0, dim);
        return 0;
    }
    float scale = (float)QUANT_Q8_MAX / max;
    if (isinf(scale)) {
        for (size_t i = 0; i < dim; i++)
            codes[i] = quant_q8_code(x[i] / max * (float)QUANT_Q8_MAX);
    } else {
        for (size_t i = 0; i < dim; i++)
            codes[i] = quant_q8_code(x[i] * scale);
    }
    return 0;
}

void quant_q8_decode(const int8_t *codes, size_t dim, float range, float *out)
{
    for (size_t i = 0; i < dim; i++)
        out[i] = ((float)codes[i] * range) / (float)QUANT_Q8_MAX;
}

int quant_bin_encode(const float *x, size_t dim, uint64_t *bits)
{
    if (!quant_all_finite(x, dim)) return VEC_EVALUE;
    memset(bits, 0, quant_bin_words(dim) * sizeof(uint64_t));
    for (size_t i = 0; i < dim; i++)
        if (x[i] > 0.0f) bits[i / 64] |= 1ull << (i % 64);
    return 0;
}

void quant_bin_decode(const uint64_t *bits, size_t dim, float *out)
{
    for (size_t i = 0; i < dim; i++)
        out[i] = (bits[i / 64] >> (i % 64)) & 1u ? 1.0f : -1.0f;
}

size_t quant_record_bytes(quant_type t, size_t dim)
{
    switch (t) {
    case QUANT_Q8: return quant_q8_range_offset(dim) + sizeof(float);
    case QUANT_BIN: return quant_bin_words(dim) * sizeof(uint64_t);
    case QUANT_NONE: break;
    }
    return dim * sizeof(float);
}

int quant_encode(quant_type t, const float *x, size_t dim, void *rec)
{
    switch (t) {
    case QUANT_Q8: {
        float range;
        unsigned char *r = rec;
        int rc = quant_q8_encode(x, dim, (int8_t *)rec, &range);
        if (rc) return rc;
        memset(r + dim, 0, quant_q8_range_offset(dim) - dim);
        memcpy(r + quant_q8_range_offset(dim), &range, sizeof range);
        return 0;
    }
    case QUANT_BIN: return quant_bin_encode(x, dim, rec);
    case QUANT_NONE: break;
    }
    if (!quant_all_finite(x, dim)) return VEC_EVALUE;
    memcpy(rec, x, dim * sizeof(float));
    return 0;
}

void quant_decode(quant_type t, const void *rec, size_t dim, float *out)
{
    switch (t) {
    case QUANT_Q8:
        quant_q8_decode(rec, dim, quant_q8_record_range(rec, dim), out);
        return;
    case QUANT_BIN:
        quant_bin_decode(rec, dim, out);
        return;
    case QUANT_NONE: break;
    }
    memcpy(out, rec, dim * sizeof(float));
}
