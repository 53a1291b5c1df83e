/* keyspace.c -- the server's databases, their object types, freeing them
 * (here or on the lazy-free thread), and what a key change sets off
 * (contract in keyspace.h).
 *
 * Each database is a kv with two hooks: the expire hook (a key expired:
 * WATCH invalidation, the expired_keys counter, the "expired" keyspace
 * event: notify.h) and the object ops (kv_obj_ops: how a vector set or a
 * hash is freed and measured).  The hooks need the database's number, so
 * each kv's hook data is a small dbctx.
 *
 * The lazy-free thread is a pool of one worker at the lowest priority;
 * its jobs free what no client can reach any more: a vector set whose key
 * is gone (releasing the key's reference), a hash whose key is gone, or a
 * whole keyspace swapped out by FLUSHALL ASYNC.  Their done() runs on the loop thread when the pool is
 * drained in before-sleep (srv_pool_drain) and only frees the job. */
#include "keyspace.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "engram/hash.h"
#include "engram/mem.h"
#include "engram/pool.h"
#include "engram/util.h"
#include "engram/vset.h"
#include "evict.h"
#include "ftspec.h"
#include "hkeys.h"
#include "notify.h"
#include "persist.h"
#include "server.h"
#include "vkeys.h"

typedef struct dbctx {
    server *s;
    int id;
} dbctx;

/* ---- freeing objects ----------------------------------------------------------- */

/* Bytes handed to the lazy-free thread and not freed yet (evict.h counts
 * them as freed at once).  The thread subtracts a job's share once it has
 * freed it. */
static _Atomic size_t lazy_bytes;

typedef struct lazy_job {
    pool_job job;
    size_t bytes;           /* its share of lazy_bytes */
    vset *set;              /* a set to release, or */
    hash *h;                /* a hash to free, or */
    kv *db;                 /* a keyspace to free */
} lazy_job;

static void lazy_work(pool_job *pj, int worker)
{
    lazy_job *j = (lazy_job *)pj;
    (void)worker;
    if (j->set) vset_release(j->set);
    hash_free(j->h);
    if (j->db) kv_free(j->db);
    atomic_fetch_sub_explicit(&lazy_bytes, j->bytes, memory_order_relaxed);
#if defined(__GLIBC__)
    /* What goes here is big (or a whole keyspace): give the freed pages
     * back to the system rather than keep them in malloc's arenas (a freed
     * 1M-vector set left 136 of 354 MB resident without this). */
    malloc_trim(0);
#endif
}

static void lazy_done(pool_job *pj) { mem_free(pj); }

static void lazy_submit(server *s, vset *set, hash *h, kv *db, size_t bytes)
{
    lazy_job *j = mem_calloc(1, sizeof *j);
    j->bytes = bytes;
    atomic_fetch_add_explicit(&lazy_bytes, bytes, memory_order_relaxed);
    j->job.work = lazy_work;
    j->job.done = lazy_done;
    j->set = set;
    j->h = h;
    j->db = db;
    pool_submit(s->lazyfree, &j->job);
}

static size_t obj_memory(uint8_t type, const void *obj)
{
    if (type == OBJ_VSET) return vset_memory(obj);
    if (type == OBJ_HASH) return hash_memory(obj);
    return 0;
}

/* A key's object is gone from the keyspace: drop its reference (free a
 * hash), on the lazy-free thread when it is big or `async` and the thread
 * runs (not at shutdown, when the databases are freed after the thread). */
static void obj_drop(server *s, uint8_t type, void *obj, int async)
{
    if (type != OBJ_VSET && type != OBJ_HASH) return;
    if (type == OBJ_VSET) vset_mark_dropped(obj);
    if (s->lazyfree && !s->shutting_down && (async || obj_memory(type, obj) >= KEYSPACE_LAZYFREE_BYTES))
        lazy_submit(s, type == OBJ_VSET ? obj : NULL, type == OBJ_HASH ? obj : NULL, NULL,
                    obj_memory(type, obj));
    else if (type == OBJ_VSET)
        vset_release(obj);
    else
        hash_free(obj);
}

static void ops_free(void *ud, uint8_t type, void *obj)
{
    obj_drop(((dbctx *)ud)->s, type, obj, 0);
}

/* A keyspace being freed on the lazy-free thread releases its objects
 * there. */
static void ops_free_here(void *ud, uint8_t type, void *obj)
{
    (void)ud;
    if (type == OBJ_HASH) hash_free(obj);
    if (type != OBJ_VSET) return;
    vset_mark_dropped(obj);
    vset_release(obj);
}

static size_t ops_memory(void *ud, uint8_t type, const void *obj)
{
    (void)ud;
    return obj_memory(type, obj);
}

static const kv_obj_ops keyspace_ops = {ops_free, ops_memory};
static const kv_obj_ops keyspace_ops_lazy = {ops_free_here, ops_memory};

/* ---- databases ---------------------------------------------------------------- */

static void on_expire(void *ud, const char *key, size_t klen)
{
    dbctx *d = ud;
    d->s->st.expired_keys++;
    srv_watch_touch(d->s, d->id, key, klen);
    notify_keyspace_event(d->s, NOTIFY_EXPIRED, "expired", d->id, key, klen);
}

static kv *db_new(server *s, dbctx *ctx)
{
    kv *db = kv_new(util_rand64(&s->rng));
    kv_set_expire_hook(db, on_expire, ctx);
    kv_set_obj_ops(db, &keyspace_ops, ctx);
    return db;
}

int keyspace_init(server *s, char *err, size_t errcap)
{
    int n = s->cfg.databases;
    s->ndbs = n;
    s->dbs = mem_calloc((size_t)n, sizeof *s->dbs);
    s->dbctx = mem_calloc((size_t)n, sizeof(dbctx));
    dbctx *ctx = s->dbctx;
    for (int i = 0; i < n; i++) {
        ctx[i] = (dbctx){s, i};
        s->dbs[i] = db_new(s, &ctx[i]);
    }
    hkeys_init(s);
    ft_init(s);
    int e = 0;
    s->lazyfree = pool_new(1, 19, NULL, NULL, &e);
    if (!s->lazyfree) {
        snprintf(err, errcap, "could not start the lazy-free thread: %s", strerror(-e));
        return -1;
    }
    return 0;
}

void keyspace_fini(server *s)
{
    pool_free(s->lazyfree);       /* finishes what is queued */
    s->lazyfree = NULL;
    ft_fini(s);
    for (int i = 0; i < s->ndbs; i++) kv_free(s->dbs[i]);
    hkeys_fini(s);
    mem_free(s->dbs);
    mem_free(s->dbctx);
    s->dbs = NULL;
    s->dbctx = NULL;
    s->ndbs = 0;
}

kv *db_kv(server *s, int db) { return s->dbs[db]; }
kv *client_kv(const client *c) { return c->srv->dbs[c->db]; }

const char *obj_type_name(uint8_t type)
{
    switch (type) {
    case OBJ_STRING: return "string";
    case OBJ_VSET: return "vectorset";
    case OBJ_HASH: return "hash";
    default: return "none";
    }
}

kv_entry *key_lookup(client *c, const char *key, size_t klen)
{
    server *s = c->srv;
    kv_entry *e = kv_find(client_kv(c), key, klen, s->cmd_time_ms);
    if (e) evict_touch(s, e, s->clock_mode);     /* LRU / LFU policies only */
    return e;
}

kv_entry *key_lookup_read(client *c, const char *key, size_t klen)
{
    kv_entry *e = key_lookup(c, key, klen);
    if (e) c->srv->st.keyspace_hits++;
    else c->srv->st.keyspace_misses++;
    if (!e) notify_key(c, NOTIFY_KEY_MISS, "keymiss", key, klen);
    return e;
}

/* ---- changes ------------------------------------------------------------------ */

void key_touched(server *s, int db, const char *key, size_t klen)
{
    s->dirty++;
    srv_watch_touch(s, db, key, klen);
}

void key_modified(server *s, int db, const char *key, size_t klen)
{
    key_touched(s, db, key, klen);
    if (persist_logging(s)) persist_log_key(s, db, key, klen);
}

void key_range_modified(server *s, int db, const char *key, size_t klen, size_t off,
                        const char *bytes, size_t n)
{
    s->dirty++;
    srv_watch_touch(s, db, key, klen);
    if (persist_logging(s)) persist_log_range(s, db, key, klen, off, bytes, n);
}

void db_flushed(server *s, int db)
{
    s->dirty++;
    srv_watch_touch_db(s, db);
    if (persist_logging(s)) persist_log_flush(s, db);
    ft_db_flushed(s, db);
}

static void db_clear_one(server *s, int i, int async)
{
    if (!async || !s->lazyfree || kv_size(s->dbs[i]) == 0) {
        kv_clear(s->dbs[i]);
        return;
    }
    /* Swap the contents into a keyspace of their own and free that on the
     * lazy-free thread, objects included. */
    kv *old = kv_new(0);
    kv_set_obj_ops(old, &keyspace_ops_lazy, NULL);
    kv_swap(s->dbs[i], old);
    lazy_submit(s, NULL, NULL, old, kv_memory(old));   /* its objects: not counted (evict.h) */
}

void db_clear(server *s, int db, int async)
{
    for (int i = db < 0 ? 0 : db; i < (db < 0 ? s->ndbs : db + 1); i++) db_clear_one(s, i, async);
    hkeys_clear(s, db);
}

void key_unlink(server *s, int db, kv_entry *e)
{
    uint8_t type = kv_type(e);
    void *obj = kv_del_entry_take(s->dbs[db], e);
    if (obj) obj_drop(s, type, obj, 1);
}

int key_copy(server *s, kv_entry *src, int dstdb, const char *newkey, size_t nklen)
{
    kv *dst = s->dbs[dstdb];
    int64_t at = kv_get_expire(src);
    kv_entry *e;
    if (kv_type(src) == OBJ_VSET) {
        vset *copy = vkey_clone(s, kv_obj(src));
        if (!copy) return -ENOMEM;
        e = kv_set_obj(dst, newkey, nklen, OBJ_VSET, copy, NULL);
    } else if (kv_type(src) == OBJ_HASH) {
        e = kv_set_obj(dst, newkey, nklen, OBJ_HASH, hash_dup(kv_obj(src), util_rand64(&s->rng)),
                       NULL);
    } else {
        /* kv_set may reorganise the table: hand it a copy, not src's bytes
         * (newkey may point into a key too: kv copies it first). */
        size_t vlen;
        const char *v = kv_val(src, &vlen);
        char *buf = mem_alloc(vlen ? vlen : 1);
        memcpy(buf, v, vlen);
        e = kv_set(dst, newkey, nklen, buf, vlen, NULL);
        mem_free(buf);
    }
    kv_set_expire(dst, e, at);
    hkeys_track(s, dstdb, newkey, nklen);
    return 0;
}

size_t keyspace_memory(const server *s)
{
    size_t n = 0;
    for (int i = 0; i < s->ndbs; i++) n += kv_memory(s->dbs[i]);
    return n;
}

size_t keyspace_lazyfree_bytes(const server *s)
{
    (void)s;
    return atomic_load_explicit(&lazy_bytes, memory_order_relaxed);
}

size_t keyspace_lazyfree_pending(const server *s)
{
    return s->lazyfree ? pool_inflight(s->lazyfree) : 0;
}

size_t keyspace_expire_cycle(server *s, int64_t now_ms, size_t samples)
{
    size_t n = 0;
    for (int i = 0; i < s->ndbs; i++) {
        n += kv_expire_cycle(s->dbs[i], now_ms, samples, &s->rng);
        n += hkeys_expire_cycle(s, i, now_ms);
    }
    return n;
}
