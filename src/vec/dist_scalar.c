/* dist_scalar.c -- the reference kernels: one plain loop per metric.
 *
 * Every SIMD variant is tested against these, and the kernel benchmark
 * reports its speed-ups over them, so two things matter more than speed:
 *
 *   - Precision is float, like the SIMD variants.  Accumulating in double
 *     would make the reference "more right" than the code it checks and make
 *     the benchmark's speed-up dishonest (a double loop is also slower).  The
 *     tests therefore compare with a bound derived from float summation error
 *     (see tests/unit/test_dist.c), not with bit equality.
 *   - The compiler must not vectorise or contract it: CMake builds this file
 *     with -fno-tree-vectorize -fno-tree-slp-vectorize -ffp-contract=off, so
 *     each term is rounded as written ((a-b) rounded, squared and rounded,
 *     added and rounded) and summed strictly left to right.
 *
 * The one-to-many kernels simply call the pair kernels: the reference should
 * be obviously right, not clever.
 *
 * The int8 dot product and the Hamming distance (quantised vectors, see
 * quant.h) are exact integer results, so there every variant must equal
 * these bit for bit.  They too are plain loops under the same flags: the
 * speed-ups the benchmark reports are over one product or one popcount at
 * a time, and the popcount is the portable bit-slicing one (no POPCNT
 * instruction: this file is built for the baseline ISA).  Pure functions;
 * any thread. */
#include "engram/dist.h"
#include "engram/quant.h"

#include <stdint.h>

static float scalar_l2sq(const void *va, const void *vb, size_t dim)
{
    const float *a = va, *b = vb;
    float sum = 0.0f;
    for (size_t i = 0; i < dim; i++) {
        float d = a[i] - b[i];
        sum += d * d;
    }
    return sum;
}

static float scalar_dot(const void *va, const void *vb, size_t dim)
{
    const float *a = va, *b = vb;
    float sum = 0.0f;
    for (size_t i = 0; i < dim; i++)
        sum += a[i] * b[i];
    return sum;
}

static void scalar_l2sq_many(const float *q, const float *base, size_t n,
                             size_t stride, size_t dim, float *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = scalar_l2sq(q, base + i * stride, dim);
}

static void scalar_dot_many(const float *q, const float *base, size_t n,
                            size_t stride, size_t dim, float *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = scalar_dot(q, base + i * stride, dim);
}

const dist_kernels dist_scalar_kernels = {
    .name = "scalar",
    .l2sq = scalar_l2sq,
    .dot = scalar_dot,
    .l2sq_many = scalar_l2sq_many,
    .dot_many = scalar_dot_many,
};

/* Products of int8 values fit int16, and n <= DIST_I8_DIM_MAX keeps every
 * partial sum inside int32 (dist.h), in this order or any other. */
static int32_t scalar_i8_dot(const int8_t *a, const int8_t *b, size_t n)
{
    int32_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (int32_t)a[i] * (int32_t)b[i];
    return sum;
}

/* Bits set in x, by adding neighbouring fields of 1, 2, 4 bits, then the
 * eight byte counts at once with one multiply (each byte <= 8, so the sum,
 * <= 64, fits the top byte). */
static unsigned scalar_popcount64(uint64_t x)
{
    x = x - ((x >> 1) & 0x5555555555555555ull);
    x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0Full;
    return (unsigned)((x * 0x0101010101010101ull) >> 56);
}

static uint64_t scalar_hamming(const uint64_t *a, const uint64_t *b, size_t words)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < words; i++)
        sum += scalar_popcount64(a[i] ^ b[i]);
    return sum;
}

QUANT_Q8_RECORD_DIST(scalar_i8_q8_dist, scalar_i8_dot)

const dist_i8_kernels dist_scalar_i8 = {
    .name = "scalar",
    .dot = scalar_i8_dot,
    .q8_dist = scalar_i8_q8_dist,
};

QUANT_BIN_RECORD_DIST(scalar_bin_dist, scalar_hamming)

const dist_bin_kernels dist_scalar_bin = {
    .name = "scalar",
    .hamming = scalar_hamming,
    .bin_dist = scalar_bin_dist,
};
