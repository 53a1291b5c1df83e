/* kv.h -- the keyspace: binary-safe string keys to typed values (a string,
 * or an object of a type the caller defines: a vector set, a hash), with
 * millisecond expiry.  Pure: no I/O, no clock (callers pass `now`), no
 * threads; owned and touched by the event-loop thread only.
 *
 * Objects.  kv stores an object as an opaque pointer with a type byte
 * (1..255; KV_STRING is 0) and never looks inside: whenever a key that
 * holds one is deleted, overwritten or cleared, kv hands the object to the
 * owner's free function (kv_set_obj_ops), which may free it at once or
 * later (a reference count, a background thread).  Renaming, moving to
 * another keyspace and kv_swap move the pointer without freeing.
 * kv_del_entry_take deletes a key and gives its object back instead.
 *
 * Expiry follows Redis: a key whose deadline has passed is deleted when it is
 * looked up (lazy), and kv_expire_cycle() samples keys that carry a TTL and
 * deletes the expired ones (active).  Every deletion caused by expiry calls
 * the expire hook, so the server can invalidate WATCHes and, later, log a DEL.
 * "Expired at now_ms" means now_ms > deadline, as Redis's keyIsExpired (a key
 * is still alive at its deadline).  The hook runs once per key, after the key
 * has left the table and before its memory is freed; it must not modify the
 * keyspace.  kv_del, kv_del_entry, kv_rename's overwrite and kv_clear are not
 * expiry and do not call it.
 *
 * The table grows and shrinks by incremental rehashing (a little work per
 * operation), so no single command pays for rehashing millions of keys.
 * kv_scan() uses Redis's reverse-binary cursor: every key present for the
 * whole scan is returned at least once, even across resizes.
 *
 * Ownership: kv copies keys and values in; pointers returned by accessors are
 * valid until the next call that modifies the keyspace.  kv_find and
 * kv_random count as modifying (lazy expiry, rehash steps), and so does
 * kv_set even on an existing key: it may return a different entry than the
 * one a previous kv_find returned.  Keys and values are followed by a NUL
 * byte that is not part of them (the bytes themselves may contain NULs).
 * Keys and values are limited to 4 GiB - 2 bytes (an always-on assert). */
#ifndef ENGRAM_KV_H
#define ENGRAM_KV_H

#include <stddef.h>
#include <stdint.h>

typedef struct kv kv;
typedef struct kv_entry kv_entry;

enum { KV_STRING = 0 };

/* What kv calls for objects.  free: the key holding obj is gone (called
 * after the key left the table, on the thread that deleted it -- a
 * keyspace swapped out by kv_swap and freed on a background thread frees
 * its objects there); memory: the bytes obj holds, for kv_entry_memory.
 * Either may be NULL. */
typedef struct kv_obj_ops {
    void (*free)(void *ud, uint8_t type, void *obj);
    size_t (*memory)(void *ud, uint8_t type, const void *obj);
} kv_obj_ops;

typedef void kv_expire_hook(void *ud, const char *key, size_t klen);

kv *kv_new(uint64_t hash_seed);
void kv_free(kv *db);                              /* NULL ok */
void kv_set_expire_hook(kv *db, kv_expire_hook *fn, void *ud);
/* ops is borrowed (usually static) and must outlive db. */
void kv_set_obj_ops(kv *db, const kv_obj_ops *ops, void *ud);

size_t kv_size(const kv *db);                      /* keys, expired-not-yet-reclaimed included */
size_t kv_expires_size(const kv *db);              /* keys carrying a TTL */

/* Look up key; if it has expired at now_ms it is deleted (hook called) and
 * NULL is returned. */
kv_entry *kv_find(kv *db, const void *key, size_t klen, int64_t now_ms);

/* Look up key with no side effect: no lazy expiry, no rehash step, no
 * check against a running scan.  An expired-not-reclaimed key is returned
 * as it is (callers look at kv_get_expire).  For the write-ahead log, which
 * records a key's state right after a command changed it. */
kv_entry *kv_peek(kv *db, const void *key, size_t klen);

/* Set key's value (creating the key if needed).  The TTL of an existing key
 * is kept: callers clear it with kv_set_expire(e, -1) when SET semantics say
 * so.  *created (optional) is 1 if the key was new.  Returns the entry. */
kv_entry *kv_set(kv *db, const void *key, size_t klen, const void *val, size_t vlen, int *created);

/* Set key to hold obj, of type (not KV_STRING), creating the key if
 * needed; an old value is dropped (an old object freed through the ops).
 * The TTL of an existing key is kept.  kv owns obj from now on. */
kv_entry *kv_set_obj(kv *db, const void *key, size_t klen, uint8_t type, void *obj, int *created);

/* Key and value accessors.  kv_val only for KV_STRING entries (an
 * always-on assert); kv_obj returns the object, NULL for a string. */
const char *kv_key(const kv_entry *e, size_t *klen);
const char *kv_val(const kv_entry *e, size_t *vlen);
uint8_t kv_type(const kv_entry *e);
void *kv_obj(const kv_entry *e);
/* The bytes e holds: its entry, its value's blob, its object (ops). */
size_t kv_entry_memory(const kv *db, const kv_entry *e);
/* Resize e's value to newlen bytes, zero-filling growth; returns a writable
 * pointer to the value (for APPEND, SETRANGE, INCR).  May move e's value. */
char *kv_val_resize(kv *db, kv_entry *e, size_t newlen);

int64_t kv_get_expire(const kv_entry *e);          /* absolute ms, or -1 */
/* -1 removes the TTL; any other negative is stored as 0 (already past). */
void kv_set_expire(kv *db, kv_entry *e, int64_t at_ms);

/* The access clock: 16 bits per entry that kv keeps for its owner and
 * never interprets (the server's LRU / LFU clocks, lfu.h).  A new entry
 * starts with the keyspace's new-entry clock (kv_set_new_clock; 0 until
 * set); kv_set's rebuilds and kv_rename keep an entry's clock; kv_move and
 * kv_swap move it with the entry. */
uint16_t kv_clock(const kv_entry *e);
void kv_set_clock(kv_entry *e, uint16_t clock);
void kv_set_new_clock(kv *db, uint16_t clock);

/* A uniformly random key that carries a TTL, possibly expired (nothing is
 * deleted, nothing moves), or NULL when none has one.  For eviction's
 * volatile-* policies. */
kv_entry *kv_random_volatile(kv *db, uint64_t *rng);

/* Delete; returns 1 if the key existed (expired or not), 0 otherwise. */
int kv_del(kv *db, const void *key, size_t klen);
void kv_del_entry(kv *db, kv_entry *e);            /* e: a live entry of db */
/* Delete e like kv_del_entry but give its object (NULL for a string) to
 * the caller instead of freeing it (UNLINK frees big objects elsewhere). */
void *kv_del_entry_take(kv *db, kv_entry *e);
void kv_clear(kv *db);

/* Move src's value and TTL to newkey (overwriting newkey), delete src.
 * Returns the new entry (src is invalid afterwards).  If newkey equals src's
 * key nothing changes and src is returned.  newkey may point into any
 * entry's key. */
kv_entry *kv_rename(kv *db, kv_entry *src, const void *newkey, size_t nklen);

/* Move e, with its value and TTL, from `from` to `to`, whose keyspace must
 * not hold its key (the caller checks).  Nothing is copied; returns e, now
 * an entry of `to`. */
kv_entry *kv_move(kv *from, kv_entry *e, kv *to);
/* Exchange the contents of a and b (SWAPDB; and FLUSHALL ASYNC, which
 * swaps with a new keyspace and frees the old one elsewhere).  Each keeps
 * its own expire hook and object ops. */
void kv_swap(kv *a, kv *b);

/* A uniformly-ish random live key (expired ones are deleted as found, hook
 * called), or NULL when no live key exists.  At most 100 expired keys are
 * deleted per call; after that the call looks for a live key without
 * deleting, so a keyspace that is nearly all expired cannot make one call
 * delete millions. */
kv_entry *kv_random(kv *db, int64_t now_ms, uint64_t *rng);

/* One SCAN step: calls fn for the keys of the next bucket(s) until at least
 * `count` keys were seen or the table is exhausted; returns the next cursor
 * (0 when the scan is complete).  Like Redis, one call visits at most
 * 10 * count buckets, so it may return fewer keys with a nonzero cursor.
 * Expired-not-yet-reclaimed keys are passed too: the caller filters them
 * (kv_get_expire).  fn must not modify the keyspace: kv_find, kv_set,
 * kv_del*, kv_rename, kv_random, kv_expire_cycle and kv_clear called from fn
 * abort on an assertion (the expire hook is held to the same rule). */
typedef void kv_scan_fn(void *ud, kv_entry *e);
uint64_t kv_scan(kv *db, uint64_t cursor, size_t count, kv_scan_fn *fn, void *ud);

/* Visit every entry once (KEYS, digests, snapshots), expired ones included.
 * fn must not modify db (enforced as for kv_scan). */
void kv_foreach(kv *db, kv_scan_fn *fn, void *ud);

/* Active expiry: test up to `samples` random keys that carry a TTL and delete
 * the expired ones; returns how many were deleted.  Redis repeats a round
 * while more than 25% of a sample had expired, within a time budget; the
 * caller drives that loop.  Each call also advances an unfinished rehash by
 * up to 100 buckets, so an idle keyspace finishes resizing from the cron. */
size_t kv_expire_cycle(kv *db, int64_t now_ms, size_t samples, uint64_t *rng);

/* The bucket arrays' bytes, and the TTL array's (MEMORY STATS's
 * overhead.hashtable.main / .expires). */
size_t kv_table_memory(const kv *db);
size_t kv_expires_memory(const kv *db);

/* Approximate bytes used by the keyspace (tables, entries, values). */
size_t kv_memory(const kv *db);

#endif
