/* registry.c -- see registry.h for the lock order and lifetimes.
 *
 * The map is a small chained hash table keyed by name; the registry lock is a
 * pthread rwlock around it (written only by the loop thread).  Each entry's
 * index lock is our own writer-preferring rwlock (a mutex and two condition
 * variables): glibc's default rwlock prefers readers, which under constant
 * search load would starve the loop thread's writes.
 *
 * vreg_at() serves VLIST/INFO from a name-sorted array rebuilt lazily after
 * a change, so listing is deterministic. */
#include "engram/registry.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "engram/util.h"

typedef struct vlock {
    pthread_mutex_t mu;
    pthread_cond_t readers_ok, writer_ok;
    int readers;          /* holding the lock */
    int writer;           /* 1 while a writer holds it */
    int writers_waiting;
} vlock;

struct vreg_entry {
    vreg_entry *next;     /* hash chain (registry lock) */
    _Atomic int refs;
    _Atomic int dropped;
    _Atomic uint64_t searches;
    _Atomic uint64_t gen;         /* write-lock releases: changes when the index may have */
    vindex *idx;
    vlock lock;
    void *udata;          /* the server's per-index data (its embedder) */
    void (*udata_free)(void *);
    size_t nlen;
    char name[];
};

struct vreg {
    pthread_rwlock_t lock;
    vreg_entry **b;
    size_t nb, n;
    vreg_entry **sorted;  /* lazily rebuilt name order */
    int sorted_valid;
};

/* ---- the index lock ------------------------------------------------------ */

static void vlock_init(vlock *l)
{
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->readers_ok, NULL);
    pthread_cond_init(&l->writer_ok, NULL);
    l->readers = l->writer = l->writers_waiting = 0;
}

static void vlock_fini(vlock *l)
{
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->readers_ok);
    pthread_cond_destroy(&l->writer_ok);
}

void vreg_read_lock(vreg_entry *e)
{
    vlock *l = &e->lock;
    pthread_mutex_lock(&l->mu);
    /* New readers yield to a waiting writer: that is what keeps writes from
     * starving under continuous searching. */
    while (l->writer || l->writers_waiting) pthread_cond_wait(&l->readers_ok, &l->mu);
    l->readers++;
    pthread_mutex_unlock(&l->mu);
}

void vreg_read_unlock(vreg_entry *e)
{
    vlock *l = &e->lock;
    pthread_mutex_lock(&l->mu);
    if (--l->readers == 0 && l->writers_waiting) pthread_cond_signal(&l->writer_ok);
    pthread_mutex_unlock(&l->mu);
}

void vreg_write_lock(vreg_entry *e)
{
    vlock *l = &e->lock;
    pthread_mutex_lock(&l->mu);
    l->writers_waiting++;
    while (l->writer || l->readers) pthread_cond_wait(&l->writer_ok, &l->mu);
    l->writers_waiting--;
    l->writer = 1;
    pthread_mutex_unlock(&l->mu);
}

void vreg_write_unlock(vreg_entry *e)
{
    vlock *l = &e->lock;
    atomic_fetch_add(&e->gen, 1);
    pthread_mutex_lock(&l->mu);
    l->writer = 0;
    if (l->writers_waiting) pthread_cond_signal(&l->writer_ok);
    else pthread_cond_broadcast(&l->readers_ok);
    pthread_mutex_unlock(&l->mu);
}

/* ---- entries ---------------------------------------------------------------- */

vreg_entry *vreg_acquire(vreg_entry *e)
{
    atomic_fetch_add(&e->refs, 1);
    return e;
}

void vreg_release(vreg_entry *e)
{
    if (atomic_fetch_sub(&e->refs, 1) != 1) return;
    if (e->udata_free) e->udata_free(e->udata);
    vindex_free(e->idx);
    vlock_fini(&e->lock);
    free(e);
}

vindex *vreg_index(vreg_entry *e) { return e->idx; }

void vreg_set_udata(vreg_entry *e, void *udata, void (*free_fn)(void *))
{
    e->udata = udata;
    e->udata_free = free_fn;
}

void *vreg_udata(const vreg_entry *e) { return e->udata; }
int vreg_dropped(const vreg_entry *e) { return atomic_load(&((vreg_entry *)e)->dropped); }
void vreg_count_search(vreg_entry *e) { atomic_fetch_add(&e->searches, 1); }
uint64_t vreg_searches(const vreg_entry *e) { return atomic_load(&((vreg_entry *)e)->searches); }
uint64_t vreg_generation(const vreg_entry *e) { return atomic_load(&((vreg_entry *)e)->gen); }

const char *vreg_name(const vreg_entry *e, size_t *nlen)
{
    if (nlen) *nlen = e->nlen;
    return e->name;
}

/* ---- the map ----------------------------------------------------------------- */

static uint64_t vreg_hash(const void *name, size_t nlen)
{
    return util_hash(name, nlen, 0x7672656769737472ULL);
}

vreg *vreg_new(void)
{
    vreg *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->nb = 16;
    r->b = calloc(r->nb, sizeof *r->b);
    if (!r->b) {
        free(r);
        return NULL;
    }
    pthread_rwlock_init(&r->lock, NULL);
    return r;
}

static vreg_entry **vreg_slot(vreg *r, const void *name, size_t nlen)
{
    vreg_entry **pp = &r->b[vreg_hash(name, nlen) & (r->nb - 1)];
    while (*pp && !((*pp)->nlen == nlen && !memcmp((*pp)->name, name, nlen))) pp = &(*pp)->next;
    return pp;
}

static int vreg_grow(vreg *r)
{
    size_t nb = r->nb * 2;
    vreg_entry **b = calloc(nb, sizeof *b);
    if (!b) return -ENOMEM;
    for (size_t i = 0; i < r->nb; i++) {
        for (vreg_entry *e = r->b[i], *next; e; e = next) {
            next = e->next;
            size_t h = vreg_hash(e->name, e->nlen) & (nb - 1);
            e->next = b[h];
            b[h] = e;
        }
    }
    free(r->b);
    r->b = b;
    r->nb = nb;
    return 0;
}

vreg_entry *vreg_find(vreg *r, const void *name, size_t nlen)
{
    return *vreg_slot(r, name, nlen);
}

int vreg_create(vreg *r, const void *name, size_t nlen, const vindex_params *p, vreg_entry **out)
{
    int err = 0;
    if (*vreg_slot(r, name, nlen)) return -EEXIST;
    vindex *v = vindex_new(p, &err);
    if (!v) return err ? err : -ENOMEM;
    int rc = vreg_adopt(r, name, nlen, v, out);
    if (rc < 0) vindex_free(v);
    return rc;
}

int vreg_adopt(vreg *r, const void *name, size_t nlen, vindex *v, vreg_entry **out)
{
    if (*vreg_slot(r, name, nlen)) return -EEXIST;
    vreg_entry *e = calloc(1, sizeof *e + nlen + 1);
    if (!e) return -ENOMEM;
    memcpy(e->name, name, nlen);
    e->nlen = nlen;
    atomic_init(&e->refs, 1);          /* the registry's reference */
    vlock_init(&e->lock);
    pthread_rwlock_wrlock(&r->lock);
    if (r->n + 1 > r->nb && vreg_grow(r) < 0) {
        pthread_rwlock_unlock(&r->lock);
        vlock_fini(&e->lock);
        free(e);
        return -ENOMEM;
    }
    e->idx = v;
    vreg_entry **pp = vreg_slot(r, name, nlen);
    e->next = NULL;
    *pp = e;
    r->n++;
    r->sorted_valid = 0;
    pthread_rwlock_unlock(&r->lock);
    if (out) *out = e;
    return 0;
}

/* Unmap *pp (registry write lock held). */
static vreg_entry *vreg_unlink(vreg *r, vreg_entry **pp)
{
    vreg_entry *e = *pp;
    *pp = e->next;
    e->next = NULL;
    r->n--;
    r->sorted_valid = 0;
    atomic_store(&e->dropped, 1);
    return e;
}

int vreg_drop(vreg *r, const void *name, size_t nlen)
{
    pthread_rwlock_wrlock(&r->lock);
    vreg_entry **pp = vreg_slot(r, name, nlen);
    vreg_entry *e = *pp ? vreg_unlink(r, pp) : NULL;
    pthread_rwlock_unlock(&r->lock);
    if (!e) return 0;
    vreg_release(e);     /* outside the registry lock: may free the index */
    return 1;
}

size_t vreg_drop_all(vreg *r)
{
    vreg_entry *gone = NULL;
    size_t n = 0;
    pthread_rwlock_wrlock(&r->lock);
    for (size_t i = 0; i < r->nb; i++) {
        while (r->b[i]) {
            vreg_entry *e = vreg_unlink(r, &r->b[i]);
            e->next = gone;
            gone = e;
            n++;
        }
    }
    pthread_rwlock_unlock(&r->lock);
    while (gone) {
        vreg_entry *e = gone;
        gone = e->next;
        vreg_release(e);
    }
    return n;
}

size_t vreg_count(vreg *r) { return r->n; }

static int vreg_cmp(const void *a, const void *b)
{
    const vreg_entry *x = *(vreg_entry *const *)a, *y = *(vreg_entry *const *)b;
    size_t n = x->nlen < y->nlen ? x->nlen : y->nlen;
    int c = memcmp(x->name, y->name, n);
    return c ? c : (x->nlen > y->nlen) - (x->nlen < y->nlen);
}

vreg_entry *vreg_at(vreg *r, size_t i)
{
    if (i >= r->n) return NULL;
    if (!r->sorted_valid) {
        vreg_entry **s = realloc(r->sorted, r->n * sizeof *s);
        if (!s) return NULL;
        size_t k = 0;
        for (size_t j = 0; j < r->nb; j++)
            for (vreg_entry *e = r->b[j]; e; e = e->next) s[k++] = e;
        qsort(s, k, sizeof *s, vreg_cmp);
        r->sorted = s;
        r->sorted_valid = 1;
    }
    return r->sorted[i];
}

void vreg_lock_read(vreg *r) { pthread_rwlock_rdlock(&r->lock); }
void vreg_unlock_read(vreg *r) { pthread_rwlock_unlock(&r->lock); }

void vreg_free(vreg *r)
{
    if (!r) return;
    vreg_drop_all(r);
    pthread_rwlock_destroy(&r->lock);
    free(r->sorted);
    free(r->b);
    free(r);
}
