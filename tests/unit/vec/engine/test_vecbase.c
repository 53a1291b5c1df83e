/* test_vecbase.c -- the base of the vector library on its own: the
 * default allocator's big blocks (mappings of their own on Linux, grown by
 * mremap), the counted resize, the growth policy, the error strings and
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
    /* vec_al_resize counts the change */
    size_t mem = 0;
    void *b = vec_al_resize(al, &mem, NULL, 0, 6 * MB, 0);
    assert_non_null(b);
    assert_int_equal(mem, 6 * MB);
    b = vec_al_resize(al, &mem, b, 6 * MB, 10 * MB, 6 * MB);
    assert_non_null(b);
    assert_int_equal(mem, 10 * MB);
    al->free(al->ud, b, 10 * MB);
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
        cmocka_unit_test(test_grow_capacity),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
