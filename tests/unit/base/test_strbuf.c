/* test_strbuf.c -- the growable text buffer (strbuf.h): appending keeps
 * every piece in order, text longer than the buffer grows it, and a freed
 * buffer is empty and usable again. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "engram/strbuf.h"

static void test_append(void **state)
{
    (void)state;
    strbuf b = {0};
    strbuf_printf(&b, "%s:%d\r\n", "a", 1);
    strbuf_printf(&b, "%s", "");
    strbuf_printf(&b, "b:%lld", 123456789012LL);
    assert_int_equal(b.len, strlen("a:1\r\nb:123456789012"));
    assert_string_equal(b.p, "a:1\r\nb:123456789012");
    strbuf_free(&b);
    assert_null(b.p);
    assert_int_equal(b.len, 0);
}

static void test_grows_past_any_size(void **state)
{
    (void)state;
    strbuf b = {0};
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    for (int i = 0; i < 50; i++) strbuf_printf(&b, "%d%s", i % 10, big);
    assert_int_equal(b.len, 50 * sizeof big);
    assert_true(b.cap > b.len);
    for (int i = 0; i < 50; i++) assert_int_equal(b.p[i * sizeof big], '0' + i % 10);
    assert_int_equal(b.p[b.len], '\0');
    strbuf_free(&b);
    strbuf_printf(&b, "again");                /* usable after free */
    assert_string_equal(b.p, "again");
    strbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append),
        cmocka_unit_test(test_grows_past_any_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
