/* rwlock.h -- a writer-preferring readers/writer lock (a mutex and two
 * condition variables).
 *
 * Why not pthread_rwlock_t: glibc's default prefers readers, so under a
 * constant stream of searches (readers, on the worker pool) the loop
 * thread's writes would starve.  Here a new reader yields to a waiting
 * writer, and a releasing writer hands the lock to the next writer before
 * the readers.  Not recursive; a thread holds it once.
 *
 * Used by vector sets (vset.h) and search indices (the server's ftspec.h). */
#ifndef ENGRAM_RWLOCK_H
#define ENGRAM_RWLOCK_H

#include <pthread.h>

typedef struct rwlock {
    pthread_mutex_t mu;
    pthread_cond_t readers_ok, writer_ok;
    int readers;          /* holding the lock */
    int writer;           /* 1 while a writer holds it */
    int writers_waiting;
} rwlock;

void rwlock_init(rwlock *l);
void rwlock_fini(rwlock *l);
void rwlock_rdlock(rwlock *l);
void rwlock_rdunlock(rwlock *l);
void rwlock_wrlock(rwlock *l);
void rwlock_wrunlock(rwlock *l);

#endif
