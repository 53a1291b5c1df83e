/* test_vproj.c -- the REDUCE projection against Redis 8's rule, linked
 * with the kernels and the vector base alone: every entry is
 * +-(float)(1/sqrt(in_dim)) with the sign of popcount(i & j)'s parity;
 * rows are orthonormal when in_dim is a power of two; vproj_apply agrees
 * with a double-precision product within the float summation bound, with
 * every kernel compiled in; dimensions out of range are -EINVAL; and a
 * failing allocator gives -ENOMEM with nothing held (the ASan build checks
 * for leaks). */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engram/dist.h"
#include "engram/vecbase.h"
#include "engram/vproj.h"

/* Written apart from vproj.c's parity fold, on purpose. */
static int sign_of(uint32_t i, uint32_t j)
{
    int ones = 0;
    for (uint32_t x = i & j; x; x &= x - 1) ones++;
    return ones % 2 ? -1 : 1;
}

static float scale_of(uint32_t in_dim)
{
    return (float)(1.0 / sqrt((double)in_dim));     /* as Redis: 1.0f / sqrt(n) */
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static float frand(void)   /* uniform in [-1, 1) */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 40) / 8388608.0 - 1.0);
}

/* The whole matrix, read back through vproj_apply on the unit vectors:
 * column j is M * e_j, exact with any kernel (one nonzero product). */
static float *read_matrix(const vproj *p)
{
    uint32_t in = vproj_in_dim(p), out = vproj_out_dim(p);
    float *m = malloc((size_t)in * out * sizeof *m);
    float *e = calloc(in, sizeof *e), *col = malloc(out * sizeof *col);
    assert_non_null(m);
    assert_non_null(e);
    assert_non_null(col);
    for (uint32_t j = 0; j < in; j++) {
        e[j] = 1.0f;
        vproj_apply(p, NULL, e, col);
        e[j] = 0.0f;
        for (uint32_t i = 0; i < out; i++) m[(size_t)i * in + j] = col[i];
    }
    free(e);
    free(col);
    return m;
}

static void test_entries_and_scale(void **state)
{
    (void)state;
    static const uint32_t dims[][2] = { { 1, 1 }, { 1, 2 }, { 3, 7 }, { 5, 5 }, { 16, 16 },
                                        { 10, 100 }, { 20, 33 }, { 2, 1536 } };
    for (size_t t = 0; t < sizeof dims / sizeof *dims; t++) {
        uint32_t out = dims[t][0], in = dims[t][1];
        int err = 1;
        vproj *p = vproj_new(out, in, NULL, &err);
        assert_non_null(p);
        assert_int_equal(err, 1);                        /* untouched on success */
        assert_int_equal(vproj_out_dim(p), out);
        assert_int_equal(vproj_in_dim(p), in);
        float *m = read_matrix(p);
        float s = scale_of(in);
        for (uint32_t i = 0; i < out; i++)
            for (uint32_t j = 0; j < in; j++)
                assert_true(m[(size_t)i * in + j] == (float)sign_of(i, j) * s);
        /* n entries of s^2 make a row of unit length, within float rounding */
        assert_true(fabs((double)s * s * in - 1.0) < 1e-6);
        free(m);
        vproj_free(p);
    }
    /* a few entries written out: in_dim 4, s = 0.5 */
    vproj *p = vproj_new(4, 4, NULL, NULL);
    assert_non_null(p);
    float *m = read_matrix(p);
    static const float want[16] = { 0.5f, 0.5f,  0.5f,  0.5f, 0.5f, -0.5f, 0.5f,  -0.5f,
                                    0.5f, 0.5f, -0.5f, -0.5f, 0.5f, -0.5f, -0.5f, 0.5f };
    assert_memory_equal(m, want, sizeof want);
    free(m);
    vproj_free(p);
    /* no seed: two builds are bit-identical */
    vproj *a = vproj_new(37, 300, NULL, NULL), *b = vproj_new(37, 300, NULL, NULL);
    float *ma = read_matrix(a), *mb = read_matrix(b);
    assert_memory_equal(ma, mb, (size_t)37 * 300 * sizeof *ma);
    free(ma);
    free(mb);
    vproj_free(a);
    vproj_free(b);
}

/* in_dim a power of two: M M^T = I.  The products of entries are exact in
 * double (24-bit significands) and so are their sums, so distinct rows give
 * exactly 0; a row with itself gives n * s^2, 1 within float rounding of s. */
static void test_rows_orthonormal(void **state)
{
    (void)state;
    static const uint32_t dims[][2] = { { 1, 1 }, { 2, 2 }, { 1, 4 }, { 8, 8 }, { 5, 64 },
                                        { 128, 128 }, { 32, 128 }, { 256, 256 }, { 32, 1024 } };
    for (size_t t = 0; t < sizeof dims / sizeof *dims; t++) {
        uint32_t out = dims[t][0], in = dims[t][1];
        vproj *p = vproj_new(out, in, NULL, NULL);
        assert_non_null(p);
        float *m = read_matrix(p);
        float *y = malloc(out * sizeof *y);
        assert_non_null(y);
        for (uint32_t i = 0; i < out; i++) {
            const float *ri = m + (size_t)i * in;
            for (uint32_t k = i; k < out; k++) {
                const float *rk = m + (size_t)k * in;
                double d = 0;
                for (uint32_t j = 0; j < in; j++) d += (double)ri[j] * rk[j];
                if (i == k) assert_true(fabs(d - 1.0) < 1e-6);
                else assert_true(d == 0.0);
            }
            /* and through the projection itself: M row_i = e_i */
            vproj_apply(p, NULL, ri, y);
            for (uint32_t k = 0; k < out; k++) assert_true(fabs(y[k] - (k == i ? 1.0 : 0.0)) < 1e-5);
        }
        free(y);
        free(m);
        vproj_free(p);
    }
}

/* vproj_apply against sum_j M[i][j] * in[j] in double, with the entries
 * from the rule (not from vproj).  Any float summation order is within
 * (n + 1) * 2^-24 * sum_j |M[i][j] in[j]| of the exact sum (the standard
 * bound for n products and n - 1 additions, FMA or not). */
static void check_apply(const dist_kernels *k, uint32_t out, uint32_t in)
{
    vproj *p = vproj_new(out, in, NULL, NULL);
    assert_non_null(p);
    float *x = malloc(in * sizeof *x), *y = malloc(out * sizeof *y), *y2 = malloc(out * sizeof *y2);
    assert_non_null(x);
    assert_non_null(y);
    assert_non_null(y2);
    double s = scale_of(in);
    for (int rep = 0; rep < 4; rep++) {
        for (uint32_t j = 0; j < in; j++) x[j] = frand() * (rep == 3 ? 1000.0f : 1.0f);
        vproj_apply(p, k, x, y);
        for (uint32_t i = 0; i < out; i++) {
            double ref = 0, mag = 0;
            for (uint32_t j = 0; j < in; j++) {
                double t = sign_of(i, j) * s * x[j];
                ref += t;
                mag += fabs(t);
            }
            double tol = (in + 1) * ldexp(1.0, -24) * mag + 1e-30;
            if (fabs(y[i] - ref) > tol)
                fail_msg("%s (%u,%u) row %u: %.9g vs %.9g (tol %.3g)", k ? k->name : "active",
                         out, in, i, (double)y[i], ref, tol);
        }
        /* k NULL is the active kernel */
        if (k == dist_active()) {
            vproj_apply(p, NULL, x, y2);
            assert_memory_equal(y, y2, out * sizeof *y);
        }
    }
    free(x);
    free(y);
    free(y2);
    vproj_free(p);
}

static void test_apply_vs_naive(void **state)
{
    (void)state;
    static const uint32_t dims[][2] = { { 1, 1 }, { 3, 7 }, { 50, 100 }, { 80, 100 },
                                        { 32, 128 }, { 300, 1536 }, { 17, 17 }, { 1, 768 } };
    const char *const *names = dist_compiled_names();
    for (size_t t = 0; t < sizeof dims / sizeof *dims; t++) {
        check_apply(&dist_scalar_kernels, dims[t][0], dims[t][1]);
        check_apply(dist_active(), dims[t][0], dims[t][1]);
        for (size_t v = 0; names[v]; v++) {
            const dist_kernels *k = dist_kernels_by_name(names[v]);
            if (k) check_apply(k, dims[t][0], dims[t][1]);   /* NULL: this CPU lacks it */
        }
    }
    /* (1,1) is the identity: s = 1 */
    vproj *p = vproj_new(1, 1, NULL, NULL);
    float x = -3.25f, y = 0;
    vproj_apply(p, NULL, &x, &y);
    assert_true(y == -3.25f);
    vproj_free(p);
    /* the largest input dimension */
    p = vproj_new(2, VEC_DIM_MAX, NULL, NULL);
    assert_non_null(p);
    float *e = calloc(VEC_DIM_MAX, sizeof *e);
    float out2[2];
    assert_non_null(e);
    e[VEC_DIM_MAX - 1] = 1.0f;          /* popcount(1 & 32767) is odd */
    vproj_apply(p, NULL, e, out2);
    assert_true(out2[0] == scale_of(VEC_DIM_MAX));
    assert_true(out2[1] == -scale_of(VEC_DIM_MAX));
    free(e);
    vproj_free(p);
}

static void test_einval(void **state)
{
    (void)state;
    static const uint32_t bad[][2] = { { 0, 1 }, { 0, 0 }, { 1, 0 }, { 8, 7 }, { 101, 100 },
                                       { 1, VEC_DIM_MAX + 1 }, { VEC_DIM_MAX + 1, VEC_DIM_MAX + 1 },
                                       { UINT32_MAX, UINT32_MAX } };
    for (size_t t = 0; t < sizeof bad / sizeof *bad; t++) {
        int err = 0;
        assert_null(vproj_new(bad[t][0], bad[t][1], NULL, &err));
        assert_int_equal(err, -EINVAL);
        assert_null(vproj_new(bad[t][0], bad[t][1], NULL, NULL));   /* err may be NULL */
    }
    vproj_free(NULL);
}

/* An allocator that fails after `budget` successes and counts what is
 * live: blocks and bytes. */
typedef struct counting {
    long budget, blocks;
    size_t bytes;
} counting;

static void *c_alloc(void *ud, size_t n)
{
    counting *c = ud;
    if (c->budget-- <= 0) return NULL;
    void *p = malloc(n);
    if (p) {
        c->blocks++;
        c->bytes += n;
    }
    return p;
}

static void c_free(void *ud, void *p, size_t n)
{
    counting *c = ud;
    if (!p) return;
    c->blocks--;
    c->bytes -= n;
    free(p);
}

static void test_enomem_and_memory(void **state)
{
    (void)state;
    counting c = { 0 };
    vec_allocator al = { c_alloc, c_free, &c, NULL };
    for (long budget = 0; budget < 2; budget++) {        /* the struct, then the matrix */
        c.budget = budget;
        int err = 0;
        assert_null(vproj_new(50, 100, &al, &err));
        assert_int_equal(err, -ENOMEM);
        assert_int_equal(c.blocks, 0);
        assert_int_equal(c.bytes, 0);
    }
    c.budget = 2;
    int err = 0;
    vproj *p = vproj_new(50, 100, &al, &err);
    assert_non_null(p);
    assert_int_equal(c.blocks, 2);
    /* what vproj_memory reports is what it holds from the allocator */
    assert_int_equal(vproj_memory(p), c.bytes);
    /* 50 rows of 100 floats padded to 112, plus 64 bytes of slack */
    assert_true(vproj_memory(p) >= (size_t)50 * 112 * sizeof(float) + 64);
    assert_true(vproj_memory(p) < (size_t)50 * 112 * sizeof(float) + 64 + 256);
    /* the copied allocator still works after `al` is gone from view */
    memset(&al, 0, sizeof al);
    float x[100], y[50];
    for (int j = 0; j < 100; j++) x[j] = frand();
    vproj_apply(p, NULL, x, y);
    vproj_free(p);
    assert_int_equal(c.blocks, 0);
    assert_int_equal(c.bytes, 0);
    /* 1536 -> 300: exactly the matrix, no padding needed */
    c.budget = 2;
    p = vproj_new(300, 1536, &(vec_allocator){ c_alloc, c_free, &c, NULL }, NULL);
    assert_non_null(p);
    assert_int_equal(vproj_memory(p), c.bytes);
    assert_true(vproj_memory(p) >= (size_t)300 * 1536 * sizeof(float) + 64);
    assert_true(vproj_memory(p) < (size_t)300 * 1536 * sizeof(float) + 64 + 256);
    vproj_free(p);
    assert_int_equal(c.blocks, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entries_and_scale),
        cmocka_unit_test(test_rows_orthonormal),
        cmocka_unit_test(test_apply_vs_naive),
        cmocka_unit_test(test_einval),
        cmocka_unit_test(test_enomem_and_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
