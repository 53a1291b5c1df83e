/* keyspace.h -- the server's databases: `databases` keyspaces (kv.h), the
 * object types their keys may hold besides strings, how those objects are
 * freed, and what a change to a key sets off (WATCH, the write-ahead log,
 * the dirty counter).
 *
 * Types: a key holds a string (KV_STRING) or an object: OBJ_VSET, a vector
 * set (vset.h; the key holds one reference), or OBJ_HASH, a hash (hash.h;
 * the key owns it; hkeys.h).  obj_type_name gives TYPE's answer.  A
 * command on a key of another type answers WRONGTYPE_ERR.
 *
 * Freeing: deleting, overwriting, expiring or flushing a key that holds a
 * vector set marks the set dropped and drops the key's reference (searches
 * running on it keep theirs and finish).  When that reference is the last
 * and the set is big (KEYSPACE_LAZYFREE_BYTES), the set is freed on the
 * lazy-free thread, so freeing a large index never stalls the loop; UNLINK
 * and FLUSHALL/FLUSHDB ASYNC send everything there whatever its size.  A
 * hash is freed the same way (nothing else can hold it).
 *
 * Loop thread only, except the lazy-free thread's jobs (which free what
 * nobody else can reach any more). */
#ifndef ENGRAM_KEYSPACE_H
#define ENGRAM_KEYSPACE_H

#include <stddef.h>
#include <stdint.h>

#include "engram/kv.h"

typedef struct server server;
typedef struct client client;

enum { OBJ_STRING = KV_STRING, OBJ_VSET = 1, OBJ_HASH = 2 };

#define WRONGTYPE_ERR "WRONGTYPE Operation against a key holding the wrong kind of value"

/* A vector set or hash this big or bigger is freed on the lazy-free thread
 * even by DEL, expiry and overwrites. */
#define KEYSPACE_LAZYFREE_BYTES (1u << 20)

/* Create the databases (and the lazy-free thread).  -1 with a message. */
int keyspace_init(server *s, char *err, size_t errcap);
/* Free every database (objects synchronously) and stop the thread. */
void keyspace_fini(server *s);

/* Database number db's keyspace, and the one c has selected. */
kv *db_kv(server *s, int db);
kv *client_kv(const client *c);

/* TYPE's name for a type byte: "string", "vectorset", "hash". */
const char *obj_type_name(uint8_t type);

/* Look key up in c's database at the command's time (lazy expiry):
 * key_lookup for writes, key_lookup_read for reads (it counts
 * keyspace_hits / keyspace_misses, and a miss is a "keymiss" event). */
kv_entry *key_lookup(client *c, const char *key, size_t klen);
kv_entry *key_lookup_read(client *c, const char *key, size_t klen);

/* Key changes.  After a command changed a key of db (written, deleted, its
 * TTL set): WATCH invalidation, the dirty counter, and the log (the key's
 * new state; see persist.h).  key_range_modified: APPEND/SETRANGE wrote n
 * bytes at off (the log records only them). */
void key_modified(server *s, int db, const char *key, size_t klen);
/* The same without logging, for commands that log an operation instead
 * (RENAME, COPY, MOVE). */
void key_touched(server *s, int db, const char *key, size_t klen);
void key_range_modified(server *s, int db, const char *key, size_t klen, size_t off,
                        const char *bytes, size_t n);
/* Database db (-1: every one) was emptied (FLUSHDB, FLUSHALL). */
void db_flushed(server *s, int db);

/* Empty database db (-1: all), freeing synchronously or (async) on the
 * lazy-free thread.  Does not log (db_flushed does). */
void db_clear(server *s, int db, int async);
/* Delete e (a key of database db): its object goes to the lazy-free
 * thread (UNLINK), a string is freed at once. */
void key_unlink(server *s, int db, kv_entry *e);

/* Copy src's value (a vector set or hash whole) and TTL to newkey in database
 * dstdb, replacing what newkey holds there.  0, or -ENOMEM (nothing
 * changed). */
int key_copy(server *s, kv_entry *src, int dstdb, const char *newkey, size_t nklen);

/* Bytes the databases' tables, entries and strings hold (not the objects). */
size_t keyspace_memory(const server *s);

/* Bytes of the objects (and keyspaces' entries) waiting for the lazy-free
 * thread: evict.h counts them as freed already.  Any thread. */
size_t keyspace_lazyfree_bytes(const server *s);
/* Objects waiting for the lazy-free thread (INFO lazyfree_pending_objects). */
size_t keyspace_lazyfree_pending(const server *s);

/* Active expiry: one sampling round over every database (the cron), keys
 * and hash fields (hkeys.h).  Returns the keys and fields deleted. */
size_t keyspace_expire_cycle(server *s, int64_t now_ms, size_t samples);

#endif
