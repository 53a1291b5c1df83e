/* test_vecbase.c -- the base of the vector library on its own: the
 * default allocator's big blocks (mappings of their own on Linux, grown by
 * mremap), the counted allocator, the growth policy, the error strings and
 * the corruption formatter. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engram/vecbase.h"

/* The default allocator's blocks of 4 MB and more (mappings of their own
 * on Linux, moved by mremap when they grow): contents kept through growing,
 * shrinking, and crossing to and from the small kind. */
static void test_default_allocator_big_blocks(void **state)
{
    (void)state;
    const vec_allocator *al = &vec_default_allocator;
    const size_t MB = 1u << 20;
    size_t sizes[] = { 8 * MB + 123, 21 * MB, 21 * MB + 5, 6 * MB, 1 * MB, 5 * MB + 7, 24 * MB,
                       3 * MB, 2 };
    size_t cur = 5 * MB;
    unsigned char *p = al->alloc(al->ud, cur);
    assert_non_null(p);
    for (size_t i = 0; i < cur; i++) p[i] = (unsigned char)(i * 31 + 7);
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        size_t n = sizes[k];
        unsigned char *q = al->realloc(al->ud, p, cur, n);
        assert_non_null(q);
        size_t keep = cur < n ? cur : n;
        for (size_t i = 0; i < keep; i += 4093) assert_int_equal(q[i], (unsigned char)(i * 31 + 7));
        assert_int_equal(q[keep - 1], (unsigned char)((keep - 1) * 31 + 7));
        for (size_t i = keep; i < n; i++) q[i] = (unsigned char)(i * 31 + 7);   /* the new part is ours */
        p = q;
        cur = n;
    }
    al->free(al->ud, p, cur);
    /* vec_mem_resize counts the change */
    vec_mem m;
    vec_mem_init(&m, NULL);
    void *b = vec_mem_resize(&m, NULL, 0, 6 * MB, 0);
    assert_non_null(b);
    assert_int_equal(m.bytes, 6 * MB);
    b = vec_mem_resize(&m, b, 6 * MB, 10 * MB, 6 * MB);
    assert_non_null(b);
    assert_int_equal(m.bytes, 10 * MB);
    vec_mem_free(&m, b, 10 * MB);
    assert_int_equal(m.bytes, 0);
}

/* An allocator without realloc that counts its live blocks. */
static void *n_alloc(void *ud, size_t n)
{
    ++*(long *)ud;
    return malloc(n ? n : 1);
}

static void n_free(void *ud, void *p, size_t n)
{
    (void)n;
    --*(long *)ud;
    free(p);
}

/* The counted allocator: bytes follow every alloc, free and resize (also
 * through alloc-copy-free when the allocator has no realloc); the vector
 * array stays 64-byte aligned with its kept floats, and a borrowed range
 * is copied, not freed. */
static void test_counted(void **state)
{
    (void)state;
    long live = 0;
    const vec_allocator al = { n_alloc, n_free, &live, NULL };
    vec_mem m;
    vec_mem_init(&m, &al);
    char *a = vec_mem_alloc(&m, 100);
    assert_non_null(a);
    memset(a, 7, 100);
    assert_int_equal(m.bytes, 100);
    a = vec_mem_resize(&m, a, 100, 300, 100);
    assert_non_null(a);
    assert_int_equal(m.bytes, 300);
    assert_int_equal(a[99], 7);
    vec_mem_free(&m, NULL, 5);
    vec_mem_free(&m, a, 300);
    assert_int_equal(m.bytes, 0);

    float borrowed[10];
    for (int i = 0; i < 10; i++) borrowed[i] = (float)i;
    void *raw = NULL;
    size_t bytes = 0;
    float *v = vec_mem_resize_vecs(&m, &raw, &bytes, borrowed, 40 * sizeof(float),
                                   10 * sizeof(float));
    assert_non_null(v);
    assert_non_null(raw);
    assert_int_equal(bytes, 40 * sizeof(float) + 64);
    assert_int_equal(m.bytes, bytes);
    assert_int_equal((uintptr_t)v & 63, 0);
    v[39] = 39.0f;
    v = vec_mem_resize_vecs(&m, &raw, &bytes, v, 1000 * sizeof(float), 40 * sizeof(float));
    assert_non_null(v);
    assert_int_equal((uintptr_t)v & 63, 0);
    for (int i = 0; i < 10; i++) assert_true(v[i] == (float)i);
    assert_true(v[39] == 39.0f);
    assert_int_equal(m.bytes, 1000 * sizeof(float) + 64);
    vec_mem_free(&m, raw, bytes);
    assert_int_equal(m.bytes, 0);
    assert_int_equal(live, 0);
}

/* 1.5x, at least the need and 16, at most the limit. */
static void test_grow_capacity(void **state)
{
    (void)state;
    assert_int_equal(vec_grow_capacity(0, 1, UINT32_MAX), 16);
    assert_int_equal(vec_grow_capacity(100, 101, UINT32_MAX), 150);
    assert_int_equal(vec_grow_capacity(100, 400, UINT32_MAX), 400);
    assert_int_equal(vec_grow_capacity(3000000000u, 3000000001u, UINT32_MAX - 2), UINT32_MAX - 2);
}

/* Every code has its own words; a message is cut to the room given, and
 * no room means no write. */
static void test_errors(void **state)
{
    (void)state;
    const int codes[] = { 0, -EINVAL, -ENOMEM, VEC_EDIM, VEC_EVALUE, VEC_ECORRUPT,
                          VEC_EFULL };
    for (size_t i = 0; i < sizeof codes / sizeof *codes; i++) {
        assert_string_not_equal(vec_strerror(codes[i]), "unknown error");
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(vec_strerror(codes[i]), vec_strerror(codes[j]));
    }
    assert_string_equal(vec_strerror(-10099), "unknown error");
    char err[8] = "xxxxxxx";
    assert_int_equal(vec_corruptf(err, 0, "node %u", 12345u), VEC_ECORRUPT);
    assert_string_equal(err, "xxxxxxx");
    assert_int_equal(vec_corruptf(err, sizeof err, "node %u", 12345u), VEC_ECORRUPT);
    assert_string_equal(err, "node 12");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_allocator_big_blocks),
        cmocka_unit_test(test_counted),
        cmocka_unit_test(test_grow_capacity),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
