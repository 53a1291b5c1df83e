/* hkeys.h -- hashes as keys (OBJ_HASH, hash.h): opening one for a command
 * (WRONGTYPE, creating it), what a command's end sets off (the fields lazy
 * expiry removed meanwhile, deleting a hash left without fields, WATCH,
 * the dirty counter, the log), and the active expiry of fields.
 *
 * Active expiry.  Each database has a registry: the names of its keys
 * whose hashes have (or had) fields with deadlines -- a kv.h keyspace of
 * names, so a random one is one kv_random away.  A write that leaves a
 * hash with deadlines registers its key (hkey_commit), and so do the key
 * commands that give a key a hash (RENAME, MOVE, COPY: hkeys_track) and
 * the end of loading (hkeys_track_all); SWAPDB swaps the registries and
 * FLUSH* clears them.  The cron samples names (hkeys_expire_cycle): a name
 * whose key is gone or holds no deadline any more leaves the registry, a
 * hash with expired fields loses a bounded number of them, and a hash
 * left without fields is deleted.  A name is never missing while its hash
 * has deadlines, so every expired field is found eventually.
 *
 * Field expiry is counted (INFO expired_subkeys) and touches WATCH, as key
 * expiry does, and is not logged: the deadline is (oplog.h).
 *
 * Keyspace events (notify.h), in Redis's order: "hexpired" when fields
 * were found expired, "new" when the command made the key, the command's
 * own (k->event, k->event2, set by the handler before hkey_commit), then
 * "del" when the hash was left without fields.
 *
 * Loop thread only. */
#ifndef ENGRAM_HKEYS_H
#define ENGRAM_HKEYS_H

#include <stddef.h>
#include <stdint.h>

#include "engram/hash.h"

typedef struct server server;
typedef struct client client;

/* One command's hold on a hash key (argv[1]). */
typedef struct hkey {
    client *c;
    server *s;
    int db;
    const char *key;
    size_t klen;
    hash *h;                 /* NULL: the key does not exist */
    int created;             /* this command made the key */
    int emptied;             /* the hash lost its last field and the key went */
    const char *event;       /* the keyspace event(s) hkey_commit publishes */
    const char *event2;      /* (notify.h: "hset", "hdel", ...; NULL: none) */
    int64_t now;             /* the command's time */
    uint64_t expired0;       /* hash_expired(h) when opened */
} hkey;

/* How hkey_commit logs the fields a command changed (still present). */
enum { HKEY_LOG_VALUES = 0, HKEY_LOG_TTLS = 1 };

/* Open argv[1] of c's command: 1 (k->h the hash, or NULL), or 0 after
 * replying WRONGTYPE.  read: count keyspace hits and misses. */
int hkey_open(hkey *k, client *c, int read);
/* k's hash, created empty (k->created set) if the key is missing. */
hash *hkey_create(hkey *k);
/* The command is done reading: count and announce the fields expiry
 * removed meanwhile, and delete the key if its hash has no field left
 * ("del"). */
void hkey_close(hkey *k);
/* The command changed the hash: hkey_close, then WATCH, the dirty counter,
 * the registry and the log.  Logged: the fields argv[first + i * step]
 * for i < n whose mask[i] is set (mask NULL: all), in their resulting
 * state -- those present as one OP_HSET with their values
 * (HKEY_LOG_VALUES) or one OP_HEXPIRE with their deadlines
 * (HKEY_LOG_TTLS), those gone as one OP_HDEL; a key the command created
 * and left empty as OP_DEL. */
void hkey_commit(hkey *k, int mode, int first, int step, int n, const unsigned char *mask);

/* The encodings' thresholds from the settings. */
hash_limits hkey_limits(const server *s);

/* The registries (keyspace.c calls these). */
void hkeys_init(server *s);
void hkeys_fini(server *s);
/* key of database db holds a hash with deadlines: register it. */
void hkeys_track(server *s, int db, const char *key, size_t klen);
/* Register every such key (after loading). */
void hkeys_track_all(server *s);
void hkeys_clear(server *s, int db);          /* db -1: every database */
void hkeys_swap(server *s, int a, int b);
/* One active-expiry round in database db; returns the fields deleted. */
size_t hkeys_expire_cycle(server *s, int db, int64_t now);

#endif
