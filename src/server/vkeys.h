/* vkeys.h -- vector sets as keys: finding one (with WRONGTYPE for a key of
 * another type), creating one (VNEW, the first insert, replaying the log,
 * loading a snapshot), and copying one (COPY).  The set is the key's value
 * in the keyspace (keyspace.h, OBJ_VSET), which holds one reference; its
 * embedder, when it has one, is attached as the set's owner data
 * (models.h).
 *
 * Loop thread only. */
#ifndef ENGRAM_VKEYS_H
#define ENGRAM_VKEYS_H

#include <stddef.h>

#include "engram/kv.h"
#include "engram/vset.h"

typedef struct server server;
typedef struct client client;

/* The set held by key in c's database.  NULL when the key is missing or
 * holds another type; *wrongtype (if given) tells which. */
vset *vkey_get(client *c, const char *key, size_t klen, int *wrongtype);
/* The same in database db with no lazy expiry (replay). */
vset *vkey_peek(server *s, int db, const char *key, size_t klen);

/* A new empty set as the value of key in database db, which must not
 * exist; embed (elen bytes, may be empty) names its embedder (checked by
 * models_check before); proj_in, when not 0, the input dim of a REDUCE
 * projection to p->dim.  NULL with Redis-style reply text in err on
 * failure (nothing changed). */
vset *vkey_create(server *s, int db, const char *key, size_t klen, const vindex_params *p,
                  const char *embed, size_t elen, uint32_t proj_in, char *err, size_t errcap);
/* Make an existing set (loaded from a snapshot) the value of key; its
 * embedder attached by name.  0, or -1 with a message (set released). */
int vkey_adopt(server *s, int db, const char *key, size_t klen, vset *set, const char *embed,
               size_t elen, char *err, size_t errcap);

/* An independent copy of set, embedder included (COPY).  NULL on
 * exhaustion. */
vset *vkey_clone(server *s, vset *set);

#endif
