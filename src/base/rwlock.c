/* rwlock.c -- the writer-preferring readers/writer lock (rwlock.h). */
#include "engram/rwlock.h"

void rwlock_init(rwlock *l)
{
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->readers_ok, NULL);
    pthread_cond_init(&l->writer_ok, NULL);
    l->readers = l->writer = l->writers_waiting = 0;
}

void rwlock_fini(rwlock *l)
{
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->readers_ok);
    pthread_cond_destroy(&l->writer_ok);
}

void rwlock_rdlock(rwlock *l)
{
    pthread_mutex_lock(&l->mu);
    /* New readers yield to a waiting writer: that is what keeps writes from
     * starving under continuous searching. */
    while (l->writer || l->writers_waiting) pthread_cond_wait(&l->readers_ok, &l->mu);
    l->readers++;
    pthread_mutex_unlock(&l->mu);
}

void rwlock_rdunlock(rwlock *l)
{
    pthread_mutex_lock(&l->mu);
    if (--l->readers == 0 && l->writers_waiting) pthread_cond_signal(&l->writer_ok);
    pthread_mutex_unlock(&l->mu);
}

void rwlock_wrlock(rwlock *l)
{
    pthread_mutex_lock(&l->mu);
    l->writers_waiting++;
    while (l->writer || l->readers) pthread_cond_wait(&l->writer_ok, &l->mu);
    l->writers_waiting--;
    l->writer = 1;
    pthread_mutex_unlock(&l->mu);
}

void rwlock_wrunlock(rwlock *l)
{
    pthread_mutex_lock(&l->mu);
    l->writer = 0;
    if (l->writers_waiting) pthread_cond_signal(&l->writer_ok);
    else pthread_cond_broadcast(&l->readers_ok);
    pthread_mutex_unlock(&l->mu);
}
