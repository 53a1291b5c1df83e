/* registry.h -- named vector indices, their locks and their lifetimes.
 *
 * The registry maps binary-safe, case-sensitive names to entries; each entry
 * owns one vindex, a reader/writer lock for it, and a reference count.
 *
 * LOCK ORDER (the one place it is written down):
 *     registry lock  ->  index lock
 * A thread may take an index lock while holding the registry lock, never the
 * other way round.  Searches (worker threads) take only an index read lock,
 * on an entry they hold a reference to; they never touch the map.  The loop
 * thread takes the registry write lock to add or remove names (VNEW, VDROP,
 * FLUSHALL) and an index write lock to change an index (VADD, VDEL), so
 * writing one index never stalls searches on another.
 *
 * Index locks prefer writers: once a writer waits, new readers queue behind
 * it, so a stream of searches cannot starve a VADD; the writer waits only for
 * the searches already running on that index.
 *
 * Lifetime: the registry holds one reference to each entry it maps; a search
 * takes another (vreg_acquire) before it is queued and drops it when done.
 * VDROP unmaps the entry and drops the registry's reference; whoever drops
 * the last reference frees the index.  So an index dropped while searches
 * run is freed when the last of them finishes, never under them.
 *
 * Errors: 0 or negative (-EEXIST, -EINVAL, -ENOMEM). */
#ifndef ENGRAM_REGISTRY_H
#define ENGRAM_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "engram/vindex.h"

typedef struct vreg vreg;
typedef struct vreg_entry vreg_entry;

vreg *vreg_new(void);                   /* NULL on exhaustion */
/* Drop every entry (as vreg_drop) and free the registry.  NULL ok. */
void vreg_free(vreg *r);

/* Create an index named name.  Returns 0 and sets *out (borrowed, valid while
 * mapped), -EEXIST if the name is taken, or vindex_new's error. */
int vreg_create(vreg *r, const void *name, size_t nlen, const vindex_params *p, vreg_entry **out);

/* Map name to an index built elsewhere (loaded from a snapshot).  On
 * success the registry owns v; on failure (-EEXIST, -ENOMEM) the caller
 * still does. */
int vreg_adopt(vreg *r, const void *name, size_t nlen, vindex *v, vreg_entry **out);

/* Look up a name.  Borrowed: valid until the entry is dropped; for the loop
 * thread (the only thread that drops), or under vreg_lock_read. */
vreg_entry *vreg_find(vreg *r, const void *name, size_t nlen);

/* Take / drop a reference (any thread). */
vreg_entry *vreg_acquire(vreg_entry *e);
void vreg_release(vreg_entry *e);

/* Unmap name and drop the registry's reference.  Returns 1 if it existed. */
int vreg_drop(vreg *r, const void *name, size_t nlen);
/* Unmap everything (FLUSHALL).  Returns how many were dropped. */
size_t vreg_drop_all(vreg *r);

size_t vreg_count(vreg *r);
/* The i-th entry in name order (0 <= i < count), borrowed, or NULL.  For
 * VLIST, INFO and snapshots; O(1) after the first call following a change. */
vreg_entry *vreg_at(vreg *r, size_t i);

/* The registry lock, for threads other than the loop that read the map. */
void vreg_lock_read(vreg *r);
void vreg_unlock_read(vreg *r);

/* Entry accessors. */
vindex *vreg_index(vreg_entry *e);
/* Data the owner attaches to an entry (set before the entry is shared with
 * other threads, read-only afterwards); free_fn (may be NULL) runs when the
 * entry is freed, in whichever thread drops the last reference. */
void vreg_set_udata(vreg_entry *e, void *udata, void (*free_fn)(void *));
void *vreg_udata(const vreg_entry *e);
const char *vreg_name(const vreg_entry *e, size_t *nlen);
int vreg_dropped(const vreg_entry *e);

/* The entry's index lock (writer-preferring). */
void vreg_read_lock(vreg_entry *e);
void vreg_read_unlock(vreg_entry *e);
void vreg_write_lock(vreg_entry *e);
void vreg_write_unlock(vreg_entry *e);

/* Counters kept per index (atomic; any thread). */
void vreg_count_search(vreg_entry *e);
uint64_t vreg_searches(const vreg_entry *e);
/* Bumped by every vreg_write_unlock: two reads under read locks that give
 * the same value saw the same index (a search split in parts checks it). */
uint64_t vreg_generation(const vreg_entry *e);

#endif
