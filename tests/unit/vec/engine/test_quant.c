/* test_quant.c -- the Q8 and BIN quantisers (quant.h): codes, padding,
 * round-trip error bounds, the distances built on the integer kernels, and
 * refusal of non-finite input.
 *
 * Round-trip bound (why it is not a magic number)
 *   Let m = max |x_i| (the range) and u = 2^-24.  Encoding computes
 *   s = fl(127 / m) and q = round(fl(x * s)): before rounding to an integer
 *   the value is off from x * 127 / m by at most 127 * (2u + u^2) (two
 *   roundings), and rounding to the nearest integer adds at most 1/2.
 *   Decoding computes fl(fl(q * m) / 127), two more roundings of a value of
 *   magnitude <= m.  So
 *       |decode(encode(x))_i - x_i| <= m/254 + m * (2.1u + 2.1u) < m * (1/254 + 5u).
 *   Half a step, m/254, is the real error and is nearly reached on random
 *   data; the test checks that too, so a quantiser that rounds toward zero
 *   (up to a whole step off) fails.
 *
 * Q8 distance bound
 *   For normalised x, y with decoded x', y' (|x_i - x'_i| <= e_x =
 *   m_x * (1/254 + 5u), likewise y): |x.y - x'.y'| <= e_x * sum|y'_i| + e_y *
 *   sum|x_i| <= sqrt(dim) * (e_x * (1 + e_y * sqrt(dim)) + e_y); the float
 *   arithmetic of quant_q8_cosine adds a few u.  The test checks the Q8
 *   distance against the exact (double) cosine distance with that bound. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engram/dist.h"
#include "engram/quant.h"
#include "engram/vecbase.h"
#include "testlib.h"

static const size_t test_dims[] = {1, 7, 15, 16, 17, 63, 64, 65, 100, 128, 768, 1536};
#define NDIMS (sizeof test_dims / sizeof test_dims[0])
#define U 0x1p-24

static uint64_t rng_state = 0xD1B54A32D192ED03ull;

static uint64_t rng_next(void)
{
    return test_rng_next(&rng_state);
}

/* Uniform in [-1, 1). */
static float rng_unit(void)
{
    return (float)((double)(rng_next() >> 11) * 0x1p-52 - 1.0);
}

static float *vec_random(size_t dim, float scale)
{
    float *x = malloc(dim * sizeof *x);
    assert_non_null(x);
    for (size_t i = 0; i < dim; i++) x[i] = rng_unit() * scale;
    return x;
}

static void vec_normalise(float *x, size_t dim)
{
    double s = 0;
    for (size_t i = 0; i < dim; i++) s += (double)x[i] * x[i];
    if (s == 0) return;
    float inv = (float)(1.0 / sqrt(s));
    for (size_t i = 0; i < dim; i++) x[i] *= inv;
}

static float max_abs(const float *x, size_t dim)
{
    float m = 0;
    for (size_t i = 0; i < dim; i++)
        if (fabsf(x[i]) > m) m = fabsf(x[i]);
    return m;
}

/* ---- Q8 ----------------------------------------------------------------------- */

/* Encodes x, checks the codes' invariants and the round-trip bound; returns
 * the largest error seen in units of half a step (m/254). */
static double q8_round_trip(const float *x, size_t dim)
{
    int8_t *q = malloc(dim);
    float *back = malloc(dim * sizeof *back), range = -1;
    assert_non_null(q);
    assert_non_null(back);
    assert_int_equal(quant_q8_encode(x, dim, q, &range), 0);
    float m = max_abs(x, dim);
    assert_true(range == m);
    int has127 = 0;
    for (size_t i = 0; i < dim; i++) {
        assert_true(q[i] >= -127 && q[i] <= 127); /* never -128 */
        if (fabsf(x[i]) == m) {
            assert_int_equal(q[i], x[i] > 0 ? 127 : -127);
            has127 = 1;
        }
        if (x[i] == 0.0f) assert_int_equal(q[i], 0);
    }
    assert_true(has127 || m == 0.0f);
    quant_q8_decode(q, dim, range, back);
    double worst = 0, bound = (double)m * (1.0 / 254 + 5 * U);
    for (size_t i = 0; i < dim; i++) {
        double err = fabs((double)back[i] - x[i]);
        if (err > bound) {
            print_error("q8 dim=%zu i=%zu: x=%.9g code=%d back=%.9g err=%.3g > bound %.3g\n", dim,
                        i, (double)x[i], q[i], (double)back[i], err, bound);
            fail();
        }
        if (m > 0 && err / (m / 254.0) > worst) worst = err / (m / 254.0);
    }
    free(q);
    free(back);
    return worst;
}

static void test_q8_round_trip(void **state)
{
    (void)state;
    static const float scales[] = {1.0f, 1e-3f, 1e3f, 1e-30f, 1e30f};
    double worst = 0;
    for (size_t d = 0; d < NDIMS; d++) {
        size_t dim = test_dims[d];
        for (size_t s = 0; s < sizeof scales / sizeof scales[0]; s++) {
            float *x = vec_random(dim, scales[s]);
            double w = q8_round_trip(x, dim);
            if (w > worst) worst = w;
            vec_normalise(x, dim);
            w = q8_round_trip(x, dim);
            if (w > worst) worst = w;
            free(x);
        }
    }
    print_message("[quant] q8 round trip: worst error %.4f half-steps (bound 1 + 5u*254)\n", worst);
    /* Round to nearest really happens: random data comes close to half a
     * step; truncation would exceed the bound above. */
    assert_true(worst > 0.9);
}

static void test_q8_special(void **state)
{
    (void)state;
    int8_t q[200];
    float x[200], back[200], range;

    /* All zero (and negative zero): range 0, codes 0, decodes to 0. */
    for (size_t i = 0; i < 200; i++) x[i] = i % 2 ? -0.0f : 0.0f;
    memset(q, 55, sizeof q);
    assert_int_equal(quant_q8_encode(x, 200, q, &range), 0);
    assert_true(range == 0.0f);
    for (size_t i = 0; i < 200; i++) assert_int_equal(q[i], 0);
    quant_q8_decode(q, 200, range, back);
    for (size_t i = 0; i < 200; i++) assert_true(back[i] == 0.0f);

    /* Extremes: every component +-range maps to +-127, never -128. */
    for (size_t i = 0; i < 200; i++) x[i] = i % 3 ? -2.5f : 2.5f;
    assert_int_equal(quant_q8_encode(x, 200, q, &range), 0);
    assert_true(range == 2.5f);
    for (size_t i = 0; i < 200; i++) assert_int_equal(q[i], i % 3 ? -127 : 127);
    quant_q8_decode(q, 200, range, back);
    for (size_t i = 0; i < 200; i++) assert_true(back[i] == x[i]);

    /* Halves round away from zero, as roundf (and Redis) does: with range
     * 127 the scale is exactly 1. */
    const float halves[] = {127.0f, 0.5f, -0.5f, 1.5f, -1.5f, 126.5f, -126.5f, -127.0f};
    const int8_t want[] = {127, 1, -1, 2, -2, 127, -127, -127};
    assert_int_equal(quant_q8_encode(halves, 8, q, &range), 0);
    for (size_t i = 0; i < 8; i++) assert_int_equal(q[i], want[i]);

    /* A range so small that 127 / range overflows: still +-127, no NaN. */
    const float tiny[] = {1e-44f, -1e-44f, 5e-45f, 0.0f};
    assert_int_equal(quant_q8_encode(tiny, 4, q, &range), 0);
    assert_true(range == 1e-44f);
    assert_int_equal(q[0], 127);
    assert_int_equal(q[1], -127);
    assert_int_equal(q[2], 73); /* 4 / 7 of the range: 72.57 */
    assert_int_equal(q[3], 0);

    /* Non-finite input: refused, nothing written. */
    const float bad[][3] = {{1, NAN, 2}, {INFINITY, 0, 0}, {0, 0, -INFINITY}};
    for (size_t b = 0; b < 3; b++) {
        memset(q, 55, 3);
        range = -7.0f;
        assert_int_equal(quant_q8_encode(bad[b], 3, q, &range), VEC_EVALUE);
        assert_true(range == -7.0f);
        for (size_t i = 0; i < 3; i++) assert_int_equal(q[i], 55);
    }
}

/* The exact cosine distance of two float vectors, in double. */
static double exact_cosine(const float *x, const float *y, size_t dim)
{
    double xy = 0, xx = 0, yy = 0;
    for (size_t i = 0; i < dim; i++) {
        xy += (double)x[i] * y[i];
        xx += (double)x[i] * x[i];
        yy += (double)y[i] * y[i];
    }
    return 1.0 - xy / sqrt(xx * yy);
}

static void test_q8_cosine(void **state)
{
    (void)state;
    const char *const *names = dist_i8_compiled_names();
    double worst = 0;
    for (size_t d = 0; d < NDIMS; d++) {
        size_t dim = test_dims[d];
        for (int rep = 0; rep < 8; rep++) {
            float *x = vec_random(dim, 1), *y = vec_random(dim, 1);
            vec_normalise(x, dim);
            vec_normalise(y, dim);
            /* Identical and opposite vectors: exact distance 0 and 2, the
             * ends the clamp guards. */
            if (rep == 1) memcpy(y, x, dim * sizeof *x);
            if (rep == 2)
                for (size_t i = 0; i < dim; i++) y[i] = -x[i];
            int8_t *qx = malloc(dim), *qy = malloc(dim);
            float rx, ry;
            assert_int_equal(quant_q8_encode(x, dim, qx, &rx), 0);
            assert_int_equal(quant_q8_encode(y, dim, qy, &ry), 0);
            int32_t dot = dist_scalar_i8.dot(qx, qy, dim);
            float got = quant_q8_cosine(dot, rx, ry);
            double ex = rx * (1.0 / 254 + 5 * U), ey = ry * (1.0 / 254 + 5 * U);
            double sd = sqrt((double)dim);
            double bound = sd * (ex * (1 + ey * sd) + ey) + 8 * U;
            double want = exact_cosine(x, y, dim), err = fabs(got - want);
            /* The clamp to [0, 2] only ever moves the value toward the
             * exact one (which lies in [0, 2]). */
            assert_true(got >= 0.0f && got <= 2.0f);
            if (err > bound) {
                print_error("q8 cosine dim=%zu: got %.7g, exact %.7g, bound %.3g\n", dim,
                            (double)got, want, bound);
                fail();
            }
            if (err / bound > worst) worst = err / bound;
            /* Every int8 variant gives the same dot, hence the same distance. */
            for (size_t v = 0; names[v]; v++) {
                const dist_i8_kernels *k = dist_i8_by_name(names[v]);
                if (k) assert_true(quant_q8_cosine(k->dot(qx, qy, dim), rx, ry) == got);
            }
            free(qx);
            free(qy);
            free(x);
            free(y);
        }
    }
    print_message("[quant] q8 cosine: worst error %.3f of the bound\n", worst);

    /* A zero vector is at distance 1 from everything (Redis's rule). */
    assert_true(quant_q8_cosine(0, 0.0f, 1.0f) == 1.0f);
    assert_true(quant_q8_cosine(12345, 1.0f, 0.0f) == 1.0f);
    /* Clamped to [0, 2]. */
    assert_true(quant_q8_cosine(16129 * 2, 1.0f, 1.0f) == 0.0f);
    assert_true(quant_q8_cosine(-16129 * 2, 1.0f, 1.0f) == 2.0f);
    /* Unclamped: 1 - dot * (ra / 127) * (rb / 127). */
    assert_true(quant_q8_cosine(0, 0.5f, 0.5f) == 1.0f);
    assert_float_equal(quant_q8_cosine(8064, 1.0f, 1.0f), 1.0 - 8064.0 / 16129.0, 1e-6);
    assert_float_equal(quant_q8_cosine(-4000, 0.25f, 0.5f), 1.0 + 4000.0 * 0.125 / 16129.0, 1e-6);
}

/* ---- BIN ---------------------------------------------------------------------- */

static void test_bin_encode(void **state)
{
    (void)state;
    for (size_t d = 0; d < NDIMS; d++) {
        size_t dim = test_dims[d], words = quant_bin_words(dim);
        assert_int_equal(words, (dim + 63) / 64);
        assert_int_equal(quant_bytes(QUANT_BIN, dim), words * 8);
        float *x = vec_random(dim, 1), *back = malloc(dim * sizeof *back);
        uint64_t *bits = malloc(words * sizeof *bits);
        x[0] = 0.0f; /* zero counts as negative */
        if (dim > 1) x[1] = -0.0f;
        memset(bits, 0xFF, words * sizeof *bits); /* padding must be cleared */
        assert_int_equal(quant_bin_encode(x, dim, bits), 0);
        for (size_t i = 0; i < dim; i++) {
            int bit = (int)((bits[i / 64] >> (i % 64)) & 1);
            assert_int_equal(bit, x[i] > 0.0f);
        }
        if (dim % 64) assert_true(bits[words - 1] >> (dim % 64) == 0);
        quant_bin_decode(bits, dim, back);
        for (size_t i = 0; i < dim; i++) assert_true(back[i] == (x[i] > 0.0f ? 1.0f : -1.0f));
        free(x);
        free(back);
        free(bits);
    }
    /* Non-finite input: refused, nothing written. */
    const float bad[] = {1.0f, NAN, -1.0f};
    uint64_t w = 0x1234;
    assert_int_equal(quant_bin_encode(bad, 3, &w), VEC_EVALUE);
    assert_true(w == 0x1234);
}

/* 2 * hamming / dim is the exact cosine distance of the decoded +-1
 * vectors, and every Hamming variant gives the same count. */
static void test_bin_cosine(void **state)
{
    (void)state;
    const char *const *names = dist_bin_compiled_names();
    for (size_t d = 0; d < NDIMS; d++) {
        size_t dim = test_dims[d], words = quant_bin_words(dim);
        for (int rep = 0; rep < 4; rep++) {
            float *x = vec_random(dim, 1), *y = vec_random(dim, 1);
            if (rep == 1) memcpy(y, x, dim * sizeof *x);
            if (rep == 2)
                for (size_t i = 0; i < dim; i++) y[i] = x[i] == 0.0f ? 1.0f : -x[i];
            uint64_t *bx = malloc(words * 8), *by = malloc(words * 8);
            float *dx = malloc(dim * sizeof *dx), *dy = malloc(dim * sizeof *dy);
            assert_int_equal(quant_bin_encode(x, dim, bx), 0);
            assert_int_equal(quant_bin_encode(y, dim, by), 0);
            uint64_t h = dist_scalar_bin.hamming(bx, by, words);
            float got = quant_bin_cosine(h, dim);
            quant_bin_decode(bx, dim, dx);
            quant_bin_decode(by, dim, dy);
            assert_float_equal(got, exact_cosine(dx, dy, dim), 1e-6);
            assert_true(got >= 0.0f && got <= 2.0f);
            if (rep == 1) assert_true(got == 0.0f);
            if (rep == 2) assert_true(got == 2.0f);
            for (size_t v = 0; names[v]; v++) {
                const dist_bin_kernels *k = dist_bin_by_name(names[v]);
                if (k) assert_true(k->hamming(bx, by, words) == h);
            }
            free(bx);
            free(by);
            free(dx);
            free(dy);
            free(x);
            free(y);
        }
    }
}

static void test_bytes(void **state)
{
    (void)state;
    assert_int_equal(quant_bytes(QUANT_NONE, 768), 768 * 4);
    assert_int_equal(quant_bytes(QUANT_Q8, 768), 768);
    assert_int_equal(quant_bytes(QUANT_BIN, 768), 96);
    assert_int_equal(quant_bytes(QUANT_BIN, 1), 8);
    assert_int_equal(quant_bytes(QUANT_BIN, 64), 8);
    assert_int_equal(quant_bytes(QUANT_BIN, 65), 16);
    assert_int_equal(quant_bin_words(0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_q8_round_trip), cmocka_unit_test(test_q8_special),
        cmocka_unit_test(test_q8_cosine),     cmocka_unit_test(test_bin_encode),
        cmocka_unit_test(test_bin_cosine),    cmocka_unit_test(test_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
