/* vset.c -- a vector set: an index, its lock, its references (contract
 * and lock order in vset.h).
 *
 * The lock is rwlock.h's writer-preferring one: glibc's default rwlock
 * prefers readers, which under constant search load would starve the loop
 * thread's writes. */
#include "engram/vset.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "engram/rwlock.h"

struct vset {
    _Atomic int refs;
    _Atomic int dropped;
    _Atomic uint64_t searches;
    _Atomic uint64_t gen;         /* write-lock releases: changes when the index may have */
    vindex *idx;
    rwlock lock;
    void *udata;          /* the server's per-set data (its embedder) */
    void (*udata_free)(void *);
    vproj *proj;          /* REDUCE: input vectors projected first (NULL: none) */
    uint64_t uid;         /* VINFO vset-uid */
    uint64_t nodes;       /* VINFO hnsw-max-node-uid */
};

static _Atomic uint64_t vset_next_uid;

/* ---- the lock ------------------------------------------------------------- */

void vset_read_lock(vset *e) { rwlock_rdlock(&e->lock); }
void vset_read_unlock(vset *e) { rwlock_rdunlock(&e->lock); }
void vset_write_lock(vset *e) { rwlock_wrlock(&e->lock); }

void vset_write_unlock(vset *e)
{
    atomic_fetch_add(&e->gen, 1);
    rwlock_wrunlock(&e->lock);
}

/* ---- the set ---------------------------------------------------------------- */

vset *vset_adopt(vindex *v)
{
    vset *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    atomic_init(&s->refs, 1);
    s->idx = v;
    s->uid = atomic_fetch_add(&vset_next_uid, 1);
    rwlock_init(&s->lock);
    return s;
}

vset *vset_new(const vindex_params *p, int *err)
{
    int e = 0;
    vindex *v = vindex_new(p, &e);
    if (!v) {
        if (err) *err = e;
        return NULL;
    }
    vset *s = vset_adopt(v);
    if (!s) {
        vindex_free(v);
        if (err) *err = -ENOMEM;
    }
    return s;
}

vset *vset_acquire(vset *e)
{
    atomic_fetch_add(&e->refs, 1);
    return e;
}

void vset_release(vset *e)
{
    if (atomic_fetch_sub(&e->refs, 1) != 1) return;
    if (e->udata_free) e->udata_free(e->udata);
    vproj_free(e->proj);
    vindex_free(e->idx);
    rwlock_fini(&e->lock);
    free(e);
}

vindex *vset_index(vset *e) { return e->idx; }

void vset_set_udata(vset *e, void *udata, void (*free_fn)(void *))
{
    e->udata = udata;
    e->udata_free = free_fn;
}

void *vset_udata(const vset *e) { return e->udata; }
void vset_mark_dropped(vset *e) { atomic_store(&e->dropped, 1); }
int vset_dropped(const vset *e) { return atomic_load(&((vset *)e)->dropped); }
void vset_count_search(vset *e) { atomic_fetch_add(&e->searches, 1); }
uint64_t vset_searches(const vset *e) { return atomic_load(&((vset *)e)->searches); }
uint64_t vset_generation(const vset *e) { return atomic_load(&((vset *)e)->gen); }
size_t vset_memory(const vset *e)
{
    return sizeof *e + vindex_memory(e->idx) + (e->proj ? vproj_memory(e->proj) : 0);
}

int vset_set_projection(vset *e, uint32_t in_dim)
{
    int err = 0;
    vproj *p = vproj_new(vindex_dim(e->idx), in_dim, NULL, &err);
    if (!p) return err;
    vproj_free(e->proj);
    e->proj = p;
    return 0;
}

const vproj *vset_projection(const vset *e) { return e->proj; }
uint64_t vset_uid(const vset *e) { return e->uid; }
uint64_t vset_nodes(const vset *e) { return e->nodes; }
void vset_set_nodes(vset *e, uint64_t n) { e->nodes = n; }
void vset_count_node(vset *e) { e->nodes++; }
