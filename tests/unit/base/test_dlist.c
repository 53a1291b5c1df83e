/* test_dlist.c -- the intrusive list (include/engram/dlist.h): order,
 * O(1) removal anywhere, and the "unlinked node" rules (zeroed memory is
 * unlinked; removing an unlinked node does nothing). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "engram/dlist.h"

typedef struct item {
    int v;
    dlist_node node;
} item;

/* The values on l, front to back, into out; returns how many. */
static int walk(const dlist *l, int *out, int max)
{
    int n = 0;
    for (dlist_node *p = dlist_first(l); p && n < max; p = dlist_next(l, p))
        out[n++] = DLIST_ENTRY(p, item, node)->v;
    return n;
}

static void test_empty(void **state)
{
    (void)state;
    dlist l;
    dlist_init(&l);
    assert_true(dlist_empty(&l));
    assert_null(dlist_first(&l));
    item a = {0};
    assert_false(dlist_linked(&a.node));      /* zeroed = unlinked */
    dlist_remove(&a.node);                    /* a no-op */
    assert_false(dlist_linked(&a.node));
    assert_true(dlist_empty(&l));
}

static void test_order_and_removal(void **state)
{
    (void)state;
    dlist l;
    item it[5] = {{0}};
    int got[8];
    dlist_init(&l);
    for (int i = 0; i < 5; i++) {
        it[i].v = i;
        dlist_push(&l, &it[i].node);
        assert_true(dlist_linked(&it[i].node));
    }
    assert_int_equal(walk(&l, got, 8), 5);
    for (int i = 0; i < 5; i++) assert_int_equal(got[i], i);
    dlist_remove(&it[2].node);                /* middle */
    dlist_remove(&it[0].node);                /* head */
    dlist_remove(&it[4].node);                /* tail */
    assert_false(dlist_linked(&it[2].node));
    assert_int_equal(walk(&l, got, 8), 2);
    assert_int_equal(got[0], 1);
    assert_int_equal(got[1], 3);
    dlist_push(&l, &it[0].node);              /* back on, at the tail */
    assert_int_equal(walk(&l, got, 8), 3);
    assert_int_equal(got[2], 0);
    dlist_remove(&it[1].node);
    dlist_remove(&it[3].node);
    dlist_remove(&it[0].node);
    assert_true(dlist_empty(&l));
}

/* Removing the node being visited, with its successor taken first, is the
 * way the server walks a list whose members may leave. */
static void test_remove_while_walking(void **state)
{
    (void)state;
    dlist l;
    item it[6] = {{0}};
    int got[8];
    dlist_init(&l);
    for (int i = 0; i < 6; i++) {
        it[i].v = i;
        dlist_push(&l, &it[i].node);
    }
    for (dlist_node *p = dlist_first(&l), *next; p; p = next) {
        next = dlist_next(&l, p);
        if (DLIST_ENTRY(p, item, node)->v % 2) dlist_remove(p);
    }
    assert_int_equal(walk(&l, got, 8), 3);
    assert_int_equal(got[0], 0);
    assert_int_equal(got[1], 2);
    assert_int_equal(got[2], 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_order_and_removal),
        cmocka_unit_test(test_remove_while_walking),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
