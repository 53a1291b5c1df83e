/* vset.h -- a vector set: one vindex with its lock, its references and
 * its counters.  A vector set is the value of a key (the keyspace holds a
 * reference); searches on worker threads hold references of their own.
 *
 * LOCK ORDER: there is one lock per set and no other lock above it, so a
 * thread holds at most one set's lock at a time.  Searches (worker
 * threads) take only a set's read lock, on a set they hold a reference
 * to; they never touch the keyspace.  The loop thread takes a set's write
 * lock to change it (VADD, VDEL), so writing one set never stalls
 * searches on another.
 *
 * The lock prefers writers: once a writer waits, new readers queue behind
 * it, so a stream of searches cannot starve a VADD; the writer waits only
 * for the searches already running on that set.
 *
 * Lifetime: whoever creates a set holds one reference (the keyspace, once
 * the set is a key's value); a search takes another (vset_acquire) before
 * it is queued and drops it when done.  Deleting the key marks the set
 * dropped and drops the keyspace's reference; whoever drops the last
 * reference frees the index -- so a set deleted while searches run is
 * freed when the last of them finishes, never under them.
 *
 * Errors: 0 or negative (-EINVAL, -ENOMEM, vindex's codes). */
#ifndef ENGRAM_VSET_H
#define ENGRAM_VSET_H

#include <stddef.h>
#include <stdint.h>

#include "engram/vindex.h"
#include "engram/vproj.h"

typedef struct vset vset;

/* A new empty set (one reference, the caller's).  NULL and *err (if err)
 * on failure: vindex_new's error, or -ENOMEM. */
vset *vset_new(const vindex_params *p, int *err);
/* A set around an index built elsewhere (loaded from a snapshot); on
 * success it owns v, on failure (NULL: out of memory) the caller still
 * does. */
vset *vset_adopt(vindex *v);

/* Take / drop a reference (any thread).  The last release frees the set,
 * its index and its owner data (udata_free), on the releasing thread. */
vset *vset_acquire(vset *s);
void vset_release(vset *s);

vindex *vset_index(vset *s);
/* Data the owner attaches (set before the set is shared with other
 * threads, read-only afterwards); free_fn (may be NULL) runs when the set
 * is freed, in whichever thread drops the last reference. */
void vset_set_udata(vset *s, void *udata, void (*free_fn)(void *));
void *vset_udata(const vset *s);
/* The key holding the set is gone (deleted, expired, flushed): a search
 * that has not begun yet may refuse to start.  Loop thread. */
void vset_mark_dropped(vset *s);
int vset_dropped(const vset *s);

/* The set's lock (writer-preferring). */
void vset_read_lock(vset *s);
void vset_read_unlock(vset *s);
void vset_write_lock(vset *s);
void vset_write_unlock(vset *s);

/* Counters (atomic; any thread). */
void vset_count_search(vset *s);
uint64_t vset_searches(const vset *s);
/* Bumped by every vset_write_unlock: two reads under read locks that give
 * the same value saw the same index (a search split in parts checks it). */
uint64_t vset_generation(const vset *s);
/* Bytes the set holds: its index, its projection and its own struct. */
size_t vset_memory(const vset *s);

/* ---- what Redis's vector sets keep beside the index ------------------------
 * A set made by `VADD key REDUCE dim ...` projects every input vector from
 * in_dim to the index's dim first (vproj.h: a fixed matrix, so only in_dim
 * is saved).  Set once, before the set is shared (creation, loading).
 * 0, -EINVAL (in_dim below the index's dim or past VEC_DIM_MAX), -ENOMEM. */
int vset_set_projection(vset *s, uint32_t in_dim);
/* NULL when the set has none. */
const vproj *vset_projection(const vset *s);
/* VINFO's vset-uid: a number per set object this process made (creation,
 * loading, copying), from 0.  Any thread. */
uint64_t vset_uid(const vset *s);
/* VINFO's hnsw-max-node-uid: nodes ever inserted (an update counts, as in
 * Redis, where it is a delete and an insert).  Loop thread (writes under the
 * write lock); kept in snapshots. */
uint64_t vset_nodes(const vset *s);
void vset_set_nodes(vset *s, uint64_t n);
void vset_count_node(vset *s);

#endif
