/* evict.h -- memory limits: the used-memory figure, the counted allocator
 * the vector and search engines allocate through, the keys' access clocks,
 * and eviction at maxmemory (Redis's evict.c is the model).
 *
 * Used memory, in O(1) (INFO used_memory, the maxmemory test):
 *     mem_used()                    everything allocated through mem_*
 *   + evict_engine_bytes()          what vector indices and search indices
 *                                   hold through evict_vec_allocator /
 *                                   evict_ft_allocator (one atomic counter)
 *   - keyspace_lazyfree_bytes()     objects handed to the lazy-free thread
 *                                   and not freed yet: counted as freed at
 *                                   once, so eviction does not overshoot
 * Not counted: the ranges a loaded snapshot lends an index (file-backed
 * copy-on-write pages, which an index copies into counted memory when it
 * first grows), a vector set's own small struct and REDUCE matrix, and the
 * objects of a keyspace FLUSHALL ASYNC hands to the lazy-free thread (its
 * entries and strings are counted as freed).
 *
 * Clocks: with an LRU or LFU policy, every key lookup (key_lookup) stamps
 * the key's 16-bit clock (kv_clock; lfu.h says what the bits mean); under
 * other policies nothing is written.  New keys get the keyspace's
 * new-entry clock, refreshed by the cron and when the policy changes.
 *
 * Eviction (dispatch.c calls evict_room before a CMD_DENYOOM command, an
 * EXEC that queued one, or any command MULTI would queue): while used
 * memory is over maxmemory, keys are deleted by the policy -- through the
 * normal deletion path, so the write-ahead log records a DEL, WATCH sees
 * it, search indices drop the document and the keyspace event is
 * `evicted` -- until under the limit or nothing is left to evict.
 * Candidates for the LRU, LFU and TTL policies come from Redis's eviction
 * pool: each round samples maxmemory-samples keys of every database (keys
 * with a TTL for volatile-*) into a pool of the 16 best seen so far (most
 * idle, least used, soonest to expire), and evicts the best one still
 * there.
 *
 * Known limits: one call evicts until under the limit however many keys
 * that takes (Redis stops after a time budget and goes on in a timer), so
 * lowering maxmemory far below used memory makes the next write pay for
 * all of it; a vector set that a running search still holds is freed when
 * the search ends, so the evictions meanwhile do not see its bytes go and
 * may take more keys than needed.
 *
 * Loop thread only, except the allocators (any thread: atomic counter). */
#ifndef ENGRAM_EVICT_H
#define ENGRAM_EVICT_H

#include <stddef.h>

#include "engram/ftindex.h"
#include "engram/kv.h"
#include "engram/vecbase.h"

typedef struct server server;
typedef struct client client;

/* The allocators given to every vector index and search index the server
 * creates: vec_default_allocator / malloc, counted. */
extern const vec_allocator evict_vec_allocator;
extern const ftidx_allocator evict_ft_allocator;
/* Bytes held through them now. */
size_t evict_engine_bytes(void);

/* used_memory (see the top). */
size_t evict_used_memory(const server *s);

/* Set up / tear down the eviction pool. */
void evict_init(server *s);
void evict_fini(server *s);
/* The cron and CONFIG SET maxmemory-policy: which clock keys keep, and the
 * clock new keys start with. */
void evict_refresh(server *s);

/* A lookup found e: stamp its clock (LRU / LFU policies only). */
void evict_touch_slow(server *s, kv_entry *e);
static inline void evict_touch(server *s, kv_entry *e, int mode)
{
    if (mode) evict_touch_slow(s, e);
}

/* Before a command that may grow memory: 1 when used memory is within
 * maxmemory (after evicting what the policy allows), 0 when it is still
 * over (the caller refuses with -OOM).  c: the client whose command comes
 * next (the evictions' log records are its own). */
int evict_room(server *s, client *c);

/* MEMORY DOCTOR's text and MEMORY STATS' figures read these. */
#define EVICT_CLOCK_NONE 0
#define EVICT_CLOCK_LRU 1
#define EVICT_CLOCK_LFU 2

#endif
