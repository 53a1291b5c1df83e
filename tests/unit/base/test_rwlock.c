/* test_rwlock.c -- the writer-preferring rwlock (rwlock.h): readers share
 * it, a writer excludes everyone, and a waiting writer holds back new
 * readers (the property the loop thread's writes rely on under constant
 * searching). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "engram/rwlock.h"

static rwlock L;
static atomic_int in_read, in_write, order_reader, step;

static void nap(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void *reader(void *arg)
{
    (void)arg;
    rwlock_rdlock(&L);
    atomic_fetch_add(&in_read, 1);
    order_reader = atomic_fetch_add(&step, 1);
    nap(20);
    atomic_fetch_sub(&in_read, 1);
    rwlock_rdunlock(&L);
    return NULL;
}

static int order_writer;

static void *writer(void *arg)
{
    (void)arg;
    rwlock_wrlock(&L);
    assert_int_equal(atomic_load(&in_read), 0);
    atomic_fetch_add(&in_write, 1);
    order_writer = atomic_fetch_add(&step, 1);
    nap(10);
    atomic_fetch_sub(&in_write, 1);
    rwlock_wrunlock(&L);
    return NULL;
}

/* Two readers hold it together. */
static void test_readers_share(void **state)
{
    (void)state;
    rwlock_init(&L);
    rwlock_rdlock(&L);
    pthread_t t;
    pthread_create(&t, NULL, reader, NULL);
    for (int i = 0; i < 200 && atomic_load(&in_read) == 0; i++) nap(5);
    assert_int_equal(atomic_load(&in_read), 1);     /* got in beside us */
    rwlock_rdunlock(&L);
    pthread_join(t, NULL);
    rwlock_fini(&L);
}

/* With a reader in and a writer waiting, a new reader waits for the
 * writer: the writer goes first. */
static void test_writer_preferred(void **state)
{
    (void)state;
    rwlock_init(&L);
    atomic_store(&step, 0);
    rwlock_rdlock(&L);                                /* the running search */
    pthread_t w, r;
    pthread_create(&w, NULL, writer, NULL);
    for (int i = 0; i < 200; i++) {                   /* until the writer waits */
        pthread_mutex_lock(&L.mu);
        int waiting = L.writers_waiting;
        pthread_mutex_unlock(&L.mu);
        if (waiting) break;
        nap(5);
    }
    pthread_create(&r, NULL, reader, NULL);
    nap(30);
    assert_int_equal(atomic_load(&in_read), 0);       /* the new reader is held back */
    rwlock_rdunlock(&L);
    pthread_join(w, NULL);
    pthread_join(r, NULL);
    assert_int_equal(order_writer, 0);
    assert_int_equal(order_reader, 1);
    rwlock_fini(&L);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readers_share),
        cmocka_unit_test(test_writer_preferred),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
