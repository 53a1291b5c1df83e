/* test_crc32c.c -- CRC-32C: the RFC 3720 (iSCSI) vectors, every compiled
 * and supported implementation against a bit-at-a-time reference, chaining, first-use
 * selection from several threads, and crc32c_select's errors.
 *
 * The comparison runs every length 0..1100 (so every head/word/tail split
 * of an 8-byte loop) at every start misalignment 0..7, each buffer in its
 * own exact-size allocation so ASan sees a read past the end.  Chained
 * checks split each buffer into three pieces at pseudo-random points.
 * Implementations the build lacks or the CPU cannot run are skipped, and
 * each test is named after the implementation it runs. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engram/crc32c.h"

#define MAX_LEN 1100
#define MAX_MISALIGN 8

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint32_t rng(void)
{
    /* xorshift64*: fixed seed, so a failure reproduces. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1Dull) >> 32);
}

/* Bit at a time, straight from the definition: the reference for all
 * implementations, the table one included. */
static uint32_t crc32c_bitwise(uint32_t crc, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    uint32_t c = ~crc;
    while (len--) {
        c ^= *p++;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
    }
    return ~c;
}

static void check_vectors(crc32c_fn *fn)
{
    unsigned char b[32];

    assert_int_equal(fn(0, "123456789", 9), 0xE3069283u);
    memset(b, 0x00, sizeof b);
    assert_int_equal(fn(0, b, sizeof b), 0x8A9136AAu);
    memset(b, 0xFF, sizeof b);
    assert_int_equal(fn(0, b, sizeof b), 0x62A8AB43u);
    for (int i = 0; i < 32; i++) b[i] = (unsigned char)i;
    assert_int_equal(fn(0, b, sizeof b), 0x46DD794Eu);
    for (int i = 0; i < 32; i++) b[i] = (unsigned char)(31 - i);
    assert_int_equal(fn(0, b, sizeof b), 0x113FDB5Cu);
    /* Empty input leaves any crc unchanged, NULL buffer included. */
    assert_int_equal(fn(0, NULL, 0), 0u);
    assert_int_equal(fn(0xDEADBEEFu, NULL, 0), 0xDEADBEEFu);
}

static void test_vectors_bitwise(void **state)
{
    check_vectors(crc32c_bitwise);
}

static void test_vectors(void **state)
{
    const char *name = *state;
    crc32c_fn *fn = crc32c_impl(name);
    if (!fn) skip();
    print_message("[ impl     ] %s\n", name);
    check_vectors(fn);
}

static void test_against_bitwise(void **state)
{
    const char *name = *state;
    crc32c_fn *fn = crc32c_impl(name), *ref = crc32c_bitwise;
    if (!fn) skip();
    print_message("[ impl     ] %s\n", name);

    for (size_t len = 0; len <= MAX_LEN; len++) {
        for (size_t off = 0; off < MAX_MISALIGN; off++) {
            unsigned char *mem = malloc(off + len + 1); /* +1: malloc(0) */
            unsigned char *p = mem + off;
            assert_non_null(mem);
            for (size_t i = 0; i < len; i++) p[i] = (unsigned char)rng();
            uint32_t seed = (off & 1) ? rng() : 0;
            uint32_t want = ref(seed, p, len);
            assert_int_equal(fn(seed, p, len), want);

            size_t a = len ? rng() % (len + 1) : 0;
            size_t b = a + (len - a ? rng() % (len - a + 1) : 0);
            uint32_t c = fn(seed, p, a);
            c = fn(c, p + a, b - a);
            c = fn(c, p + b, len - b);
            assert_int_equal(c, want);
            free(mem);
        }
    }
}

static void test_chain_bytewise(void **state)
{
    const char *name = *state;
    crc32c_fn *fn = crc32c_impl(name);
    const char *s = "123456789";
    uint32_t c = 0;
    if (!fn) skip();
    for (size_t i = 0; i < 9; i++) c = fn(c, s + i, 1);
    assert_int_equal(c, 0xE3069283u);
}

static void *first_use_thread(void *arg)
{
    uint32_t *out = arg;
    *out = crc32c(0, "123456789", 9);
    return NULL;
}

/* Runs first, before anything selected an implementation: several threads
 * race through the first-use choice (TSan sees it in the sanitizer stage). */
static void test_first_use_threads(void **state)
{
    pthread_t t[4];
    uint32_t out[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, first_use_thread, &out[i]), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(out[i], 0xE3069283u);
    }
}

static void test_default_is_best(void **state)
{
    const char *best = crc32c_impl("sse42") ? "sse42"
                       : crc32c_impl("armv8") ? "armv8" : "table";
    print_message("[ impl     ] auto -> %s\n", crc32c_impl_name());
    assert_string_equal(crc32c_impl_name(), best);
    assert_int_equal(crc32c_select("auto"), 0);
    assert_string_equal(crc32c_impl_name(), best);
}

static void test_select(void **state)
{
    static const char *const names[] = {"sse42", "armv8", "table"};
    unsigned char b[32];
    memset(b, 0xFF, sizeof b);

    for (size_t i = 0; i < 3; i++) {
        int rc = crc32c_select(names[i]);
        if (crc32c_impl(names[i])) {
            assert_int_equal(rc, 0);
            assert_string_equal(crc32c_impl_name(), names[i]);
            assert_int_equal(crc32c(0, b, sizeof b), 0x62A8AB43u);
        } else {
            /* Not compiled in or not supported: the choice stays. */
            const char *before = crc32c_impl_name();
            assert_int_equal(rc, -ENOTSUP);
            assert_string_equal(crc32c_impl_name(), before);
        }
    }
    assert_int_equal(crc32c_select("TABLE"), 0);
    assert_string_equal(crc32c_impl_name(), "table");
    assert_int_equal(crc32c_select("crc64"), -EINVAL);
    assert_int_equal(crc32c_select(""), -EINVAL);
    assert_int_equal(crc32c_select(NULL), -EINVAL);
    assert_string_equal(crc32c_impl_name(), "table");
    assert_null(crc32c_impl("auto"));
    assert_null(crc32c_impl("crc64"));
    assert_null(crc32c_impl(NULL));
    assert_non_null(crc32c_impl("table"));
    assert_int_equal(crc32c_select("auto"), 0);
}

#define IMPL_TEST(name, fn) {name "/" #fn, fn, NULL, NULL, (void *)name}
#define IMPL_TESTS(name)                                              \
    IMPL_TEST(name, test_vectors), IMPL_TEST(name, test_against_bitwise), \
    IMPL_TEST(name, test_chain_bytewise)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_use_threads),
        cmocka_unit_test(test_default_is_best),
        cmocka_unit_test(test_vectors_bitwise),
        IMPL_TESTS("table"),
        IMPL_TESTS("sse42"),
        IMPL_TESTS("armv8"),
        cmocka_unit_test(test_select),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
