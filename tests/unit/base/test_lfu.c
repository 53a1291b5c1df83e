/* test_lfu.c -- the LFU counter's arithmetic (lfu.h): the probability
 * rule at its edges, decay with the 8-bit minute wrapping, and the counts
 * Redis's redis.conf table gives for lfu-log-factor 10 (100 hits ~ 10,
 * 1K ~ 18, 100K ~ 142, 1M ~ 255) reproduced with a fixed-seed generator. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "engram/lfu.h"
#include "engram/util.h"

static void test_incr_edges(void **state)
{
    (void)state;
    assert_int_equal(lfu_log_incr(255, 10, 0.0), 255);       /* saturates */
    assert_int_equal(lfu_log_incr(0, 10, 0.999), 1);          /* below LFU_INIT: p = 1 */
    assert_int_equal(lfu_log_incr(LFU_INIT, 10, 0.999), LFU_INIT + 1);
    /* counter 6: p = 1 / (1 * 10 + 1) */
    assert_int_equal(lfu_log_incr(6, 10, 1.0 / 11 - 1e-9), 7);
    assert_int_equal(lfu_log_incr(6, 10, 1.0 / 11 + 1e-9), 6);
    /* log factor 0: every hit counts */
    assert_int_equal(lfu_log_incr(200, 0, 0.999), 201);
}

static void test_decay(void **state)
{
    (void)state;
    assert_int_equal(lfu_decayed(lfu_pack(10, 20), 10, 1), 20);
    assert_int_equal(lfu_decayed(lfu_pack(10, 20), 13, 1), 17);
    assert_int_equal(lfu_decayed(lfu_pack(10, 20), 13, 2), 19);   /* 3 / 2 periods */
    assert_int_equal(lfu_decayed(lfu_pack(10, 20), 200, 1), 0);    /* never below 0 */
    assert_int_equal(lfu_decayed(lfu_pack(10, 20), 200, 0), 20);   /* 0: no decay */
    /* the minute wraps at 256: 250 -> 4 is 10 minutes */
    assert_int_equal(lfu_decayed(lfu_pack(250, 20), 4, 1), 10);
    /* a touch decays first, then counts, and stamps the minute */
    uint16_t c = lfu_touch(lfu_pack(10, 20), 15, 1, 10, 0.999);
    assert_int_equal(lfu_counter(c), 15);
    assert_int_equal(c >> 8, 15);
    assert_int_equal(lfu_minute(60000LL * 257), 1);
    assert_int_equal(lru_idle(lru_clock(5000), lru_clock(65535000LL)), 6);   /* wraps */
}

static uint8_t hits(long n, uint64_t *rng)
{
    uint8_t c = LFU_INIT;
    for (long i = 0; i < n; i++)
        c = lfu_log_incr(c, 10, (double)(util_rand64(rng) >> 11) / 9007199254740992.0);
    return c;
}

static void test_redis_table(void **state)
{
    (void)state;
    uint64_t rng = 42;
    uint8_t h100 = hits(100, &rng), h1k = hits(1000, &rng), h100k = hits(100000, &rng),
            h1m = hits(1000000, &rng);
    assert_in_range(h100, 8, 13);
    assert_in_range(h1k, 15, 22);
    assert_in_range(h100k, 130, 155);
    assert_in_range(h1m, 240, 255);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_incr_edges),
        cmocka_unit_test(test_decay),
        cmocka_unit_test(test_redis_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
