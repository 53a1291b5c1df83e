/* notify.h -- keyspace notifications (Redis's notify.c): what a command or
 * expiry did to a key, published on pub/sub channels (pubsub.h) when
 * notify-keyspace-events asks for it.
 *
 * notify_keyspace_event(s, type, event, db, key, klen), with type a class
 * bit of engram/config.h (NOTIFY_STRING, NOTIFY_HASH, ...), publishes if
 * that class is on:
 *   with K: on channel __keyspace@<db>__:<key>, the message <event>;
 *   with E: on channel __keyevent@<db>__:<event>, the message <key>.
 * With neither K nor E nothing is published, whatever the classes.  When
 * the classes are off a call costs one test (the inline wrapper).
 *
 * Where to call it: after the change is made (a subscriber may read the
 * key as soon as the message arrives), once per key and event, in Redis's
 * order: "new" (when the command created the key) before the command's
 * own event, and the command's event before "expire" (SET ... EX).  Events
 * of one command reach a subscriber in the order they were published.
 *
 * Events engram publishes (Redis's names and classes; docs/commands.md):
 *   n  new          a key was created: by a write, RENAME's or COPY's
 *                   destination, MOVE's key in the target database
 *   g  del          DEL, UNLINK, GETDEL; EXPIRE or GETEX to a time already
 *                   past; VDROP
 *      expire       EXPIRE family, SET/SETEX/PSETEX/GETEX with a TTL
 *      persist      PERSIST, GETEX PERSIST
 *      rename_from  RENAME(NX)'s source, then rename_to its destination
 *      move_from    MOVE, in the source database, then move_to in the target
 *      copy_to      COPY's destination, in its database
 *   $  set          SET, SETNX, SETEX, PSETEX, GETSET, MSET, MSETNX
 *      setrange  append  incrby (INCR, DECR, INCRBY, DECRBY)  incrbyfloat
 *   x  expired      a key found past its deadline: on access or by the cron;
 *                   SET with EXAT/PXAT already past (engram deletes it at once)
 *   m  keymiss      a read found no key (GET, MGET, EXISTS, TYPE, TTL, ...)
 *   d  vadd vrem vsetattr -- engram's own: Redis 8's vector-set module
 *                   publishes nothing.  VADD (both dialects), VREM and VDEL,
 *                   VSETATTR; VNEW and a first VADD publish n new.
 *   h  for the hash type (hkeys.c publishes them for cmd_hash.c), Redis's:
 *      hset          HSET, HSETNX, HMSET (HSETEX: hset, then hexpire)
 *      hdel          HDEL; then g del when the hash became empty and went
 *      hincrby       HINCRBY
 *      hincrbyfloat  HINCRBYFLOAT
 *      hexpire       HEXPIRE, HPEXPIRE, HEXPIREAT, HPEXPIREAT
 *      hpersist      HPERSIST
 *      hexpired      fields found expired (on access, by the cron, or given a
 *                    time already past); then g del if the hash became empty
 *   e (evicted), l s z t: never -- engram does not evict, nor have those types.
 *
 * Loop thread only. */
#ifndef ENGRAM_NOTIFY_H
#define ENGRAM_NOTIFY_H

#include <stddef.h>

#include "engram/config.h"
#include "ftspec.h"
#include "server.h"

/* Publish event on key to the channels notify-keyspace-events selects,
 * whatever the classes (notify_keyspace_event checks them first). */
void notify_publish(server *s, const char *event, int db, const char *key, size_t klen);

/* Search indices follow the keys of database 0 through these events,
 * whatever notify-keyspace-events says (ftspec.h's ft_key_event). */

static inline void notify_keyspace_event(server *s, unsigned type, const char *event, int db,
                                         const char *key, size_t klen)
{
    if (db == 0 && s->ft_on) ft_key_event(s, event, db, key, klen);
    if ((unsigned)s->cfg.notify_keyspace_events & type)
        notify_publish(s, event, db, key, klen);
}

/* The same for a key of the database client c has selected. */
static inline void notify_key(client *c, unsigned type, const char *event, const char *key,
                              size_t klen)
{
    notify_keyspace_event(c->srv, type, event, c->db, key, klen);
}

#endif
