/* vkeys.c -- vector sets as keys (contract in vkeys.h).
 *
 * A set's embedder is found by name (models.h) and attached to the set as
 * its owner data, so that the name travels with the set (snapshots, COPY)
 * and a search on a worker can embed text with it. */
#include "vkeys.h"

#include <stdio.h>
#include <string.h>

#include "engram/vindex.h"
#include "evict.h"
#include "keyspace.h"
#include "models.h"
#include "server.h"

vset *vkey_get(client *c, const char *key, size_t klen, int *wrongtype)
{
    kv_entry *e = key_lookup(c, key, klen);
    if (wrongtype) *wrongtype = e && kv_type(e) != OBJ_VSET;
    return e && kv_type(e) == OBJ_VSET ? kv_obj(e) : NULL;
}

vset *vkey_peek(server *s, int db, const char *key, size_t klen)
{
    kv_entry *e = kv_peek(db_kv(s, db), key, klen);
    return e && kv_type(e) == OBJ_VSET ? kv_obj(e) : NULL;
}

int vkey_adopt(server *s, int db, const char *key, size_t klen, vset *set, const char *embed,
               size_t elen, char *err, size_t errcap)
{
    if (elen && models_attach(s, set, embed, elen) < 0) {
        snprintf(err, errcap, "ERR could not attach embedder '%.*s'", (int)(elen < 64 ? elen : 64),
                 embed);
        vset_release(set);
        return -1;
    }
    kv_set_obj(db_kv(s, db), key, klen, OBJ_VSET, set, NULL);
    return 0;
}

vset *vkey_create(server *s, int db, const char *key, size_t klen, const vindex_params *p,
                  const char *embed, size_t elen, uint32_t proj_in, char *err, size_t errcap)
{
    int rc = 0;
    vindex_params counted = *p;
    counted.alloc = &evict_vec_allocator;       /* used_memory counts it (evict.h) */
    vset *set = vset_new(&counted, &rc);
    if (set && proj_in && (rc = vset_set_projection(set, proj_in)) != 0) {
        vset_release(set);
        set = NULL;
    }
    if (!set) {
        snprintf(err, errcap, "ERR could not create the index: %s", vindex_strerror(rc));
        return NULL;
    }
    if (vkey_adopt(s, db, key, klen, set, embed, elen, err, errcap) < 0) return NULL;
    return set;
}

vset *vkey_clone(server *s, vset *set)
{
    vindex *copy = NULL;
    vindex_load_opts o = {.alloc = &evict_vec_allocator};
    if (vindex_clone(vset_index(set), &o, &copy) < 0) return NULL;
    vset *n = vset_adopt(copy);
    if (!n) {
        vindex_free(copy);
        return NULL;
    }
    const vproj *pj = vset_projection(set);
    if (pj && vset_set_projection(n, vproj_in_dim(pj)) != 0) {
        vset_release(n);
        return NULL;
    }
    vset_set_nodes(n, vset_nodes(set));
    const char *emb = models_name(set);
    if (emb && models_attach(s, n, emb, strlen(emb)) < 0) {
        vset_release(n);
        return NULL;
    }
    return n;
}
