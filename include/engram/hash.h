/* hash.h -- a hash: binary-safe fields to binary-safe values, each field
 * with an optional deadline (Redis 7.4's hash-field expiration).  The value
 * of a hash key in the keyspace (kv.h holds it as an object); pure: no
 * I/O, no clock (callers pass `now`), no threads; owned and touched by one
 * thread at a time.
 *
 * Encodings (OBJECT ENCODING's words in brackets), converted as Redis
 * converts them and never back:
 *   HASH_COMPACT     ["listpack"]   one flat array, fields and values inline,
 *                                   in insertion order; lookups scan it.
 *   HASH_COMPACT_TTL ["listpackex"] the same with a deadline in every entry,
 *                                   ordered by deadline (soonest first, the
 *                                   fields without one last, as Redis keeps
 *                                   its listpackex); a compact hash becomes
 *                                   one at its first deadline or at
 *                                   hash_enable_ttl, and stays one.
 *   HASH_TABLE       ["hashtable"]  a kv.h keyspace of its own: fields are
 *                                   its keys, deadlines its TTLs (sampled
 *                                   for active expiry as keys are).
 * A compact hash becomes a table when it would hold more than
 * lim->max_entries fields, or a field or value longer than lim->max_value
 * bytes (hash_set), or when asked (hash_convert).
 *
 * Expiry.  A field whose deadline has passed (now > deadline, as kv.h's
 * keys) is absent: hash_get, hash_set and hash_expire delete it when they
 * meet it (lazy expiry), and every field so removed counts in
 * hash_expired().  hash_len counts stored fields, expired ones not yet
 * removed included (Redis's HLEN does the same); hash_del deletes a stored
 * field whether or not it has expired.  `now` < 0 never expires anything.
 *
 * Ownership: the hash copies fields and values in.  Pointers it returns
 * (values, and the fields and values hash_fn sees) stay valid until the
 * next call that modifies it; hash_get counts as one (lazy expiry).  f and
 * v passed in must not point into the hash itself.  Fields and values are
 * limited to 4 GiB - 2 bytes (kv.h's limit; an always-on assert).
 *
 * Out of memory aborts (mem.h), as kv.h does. */
#ifndef ENGRAM_HASH_H
#define ENGRAM_HASH_H

#include <stddef.h>
#include <stdint.h>

typedef struct hash hash;

enum { HASH_COMPACT = 0, HASH_COMPACT_TTL = 1, HASH_TABLE = 2 };

/* When a compact hash becomes a table (hash-max-listpack-entries,
 * hash-max-listpack-value). */
typedef struct hash_limits {
    size_t max_entries;
    size_t max_value;
} hash_limits;

/* hash_set's flags. */
#define HASH_KEEPTTL 1u     /* an existing live field keeps its deadline */

/* What iteration hands out: one field, its value and its deadline (-1 =
 * none).  The callback must not modify the hash. */
typedef void hash_fn(void *ud, const char *f, size_t flen, const char *v, size_t vlen,
                     int64_t expire);

/* A new empty compact hash; seed keys its table if it becomes one. */
hash *hash_new(uint64_t seed);
void hash_free(hash *h);                           /* NULL ok */
/* An exact copy: the same fields, values, deadlines and encoding. */
hash *hash_dup(const hash *h, uint64_t seed);

int hash_encoding(const hash *h);                  /* HASH_COMPACT, ... */
/* OBJECT ENCODING's word for it: "listpack", "listpackex", "hashtable". */
const char *hash_encoding_name(const hash *h);
size_t hash_len(const hash *h);                    /* stored fields, expired included */
size_t hash_volatile(const hash *h);               /* stored fields with a deadline */
size_t hash_memory(const hash *h);                 /* bytes it holds, header included */
uint64_t hash_expired(const hash *h);              /* fields expiry removed, ever */

/* Field f live at now: 1 with *v / *vlen / *expire (each may be NULL),
 * else 0 (an expired field is deleted first). */
int hash_get(hash *h, const void *f, size_t flen, int64_t now, const char **v, size_t *vlen,
             int64_t *expire);
/* The same without expiry or any change: 1 if f is stored (live or not). */
int hash_peek(const hash *h, const void *f, size_t flen, const char **v, size_t *vlen,
              int64_t *expire);

/* Store f = v with deadline `expire` (-1: none; HASH_KEEPTTL: a live field
 * keeps its own, a new one gets none).  Returns 1 if f was not live (a new
 * field, or one that had expired, which is replaced), 0 if it replaced a
 * live field's value.  lim decides the encoding (see above). */
int hash_set(hash *h, const void *f, size_t flen, const void *v, size_t vlen, int64_t expire,
             unsigned flags, int64_t now, const hash_limits *lim);
/* Append f = v with deadline exp after every stored field: rebuilding a
 * hash in the order hash_foreach gave (a snapshot) keeps a compact hash's
 * order exactly.  Where a HASH_COMPACT_TTL hash's order forbids the end
 * (fields from a table come in no order), f goes where hash_set would put
 * it.  0, or -1 if f is already stored.  lim decides the encoding as for
 * hash_set; a deadline makes a compact hash HASH_COMPACT_TTL. */
int hash_append(hash *h, const void *f, size_t flen, const void *v, size_t vlen, int64_t exp,
                const hash_limits *lim);
/* Delete f: 1 if it was stored (expired or not), 0 if not. */
int hash_del(hash *h, const void *f, size_t flen);
/* Give the stored field f the deadline at (-1: none).  1, or 0 if f is not
 * stored.  A compact hash given a deadline becomes HASH_COMPACT_TTL. */
int hash_set_expire(hash *h, const void *f, size_t flen, int64_t at);

/* A compact hash becomes HASH_COMPACT_TTL (Redis converts a listpack to a
 * listpackex when a field-expiry command first touches it); no-op
 * otherwise. */
void hash_enable_ttl(hash *h);
/* A compact hash becomes a table; no-op for a table. */
void hash_convert(hash *h);

/* Active expiry: delete up to max fields expired at now; returns how many.
 * A compact hash deletes from the front (its soonest deadlines); a table
 * samples its fields with deadlines (kv_expire_cycle), so it may delete
 * fewer than are expired. */
size_t hash_expire(hash *h, int64_t now, size_t max);
/* Delete every field expired at now (HRANDFIELD starts with this);
 * returns how many. */
size_t hash_expire_all(hash *h, int64_t now);

/* Every field live at now, in storage order. */
void hash_foreach(hash *h, int64_t now, hash_fn *fn, void *ud);
/* Fields live at now (hash_len minus the expired ones). */
size_t hash_count_live(hash *h, int64_t now);

/* One HSCAN step (kv.h's cursor for a table; a compact hash is walked
 * whole, returning 0): calls fn for live fields, returns the next cursor. */
uint64_t hash_scan(hash *h, uint64_t cursor, size_t count, int64_t now, hash_fn *fn, void *ud);

/* Random fields for HRANDFIELD, from a hash with no expired field (call
 * hash_expire_all first) and at least one field.  unique: min(count,
 * hash_len) distinct fields (all of them, in storage order, when count >=
 * hash_len); else exactly count picks, repeats allowed.  rng: util_rand64
 * state. */
void hash_random(hash *h, size_t count, int unique, uint64_t *rng, hash_fn *fn, void *ud);

#endif
