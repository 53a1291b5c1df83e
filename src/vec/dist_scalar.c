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
 * be obviously right, not clever.  Pure functions; any thread. */
#include "engram/dist.h"

static float scalar_l2sq(const float *a, const float *b, size_t dim)
{
    float sum = 0.0f;
    for (size_t i = 0; i < dim; i++) {
        float d = a[i] - b[i];
        sum += d * d;
    }
    return sum;
}

static float scalar_dot(const float *a, const float *b, size_t dim)
{
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
