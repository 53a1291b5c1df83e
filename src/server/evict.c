/* evict.c -- used memory, the engines' counted allocator, access clocks and
 * eviction at maxmemory (contract in evict.h).
 *
 * The eviction pool is Redis's (evict.c: evictionPoolPopulate): an array of
 * EVICT_POOL candidates in ascending order of score -- seconds idle (LRU),
 * 255 minus the decayed counter (LFU), or how soon the key expires (TTL) --
 * each with its database and a copy of its key.  A round samples every
 * database, inserts what scores better than the worst kept, then takes
 * the best candidate, checking it against the keyspace (it may have been
 * deleted, or lost its TTL, since it was sampled).  Every eviction samples
 * afresh; the pool is kept between evictions and commands, so the good
 * candidates of earlier rounds compete with the new sample.
 *
 * Loop thread only; the allocators' counter is atomic (workers and the
 * lazy-free thread free through them). */
#include "evict.h"

#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "engram/lfu.h"
#include "engram/mem.h"
#include "engram/util.h"
#include "keyspace.h"
#include "notify.h"
#include "persist.h"
#include "server.h"

/* ---- the counted allocators ------------------------------------------------ */

static _Atomic size_t engine_bytes;

static void count_add(size_t n) { atomic_fetch_add_explicit(&engine_bytes, n, memory_order_relaxed); }
static void count_sub(size_t n) { atomic_fetch_sub_explicit(&engine_bytes, n, memory_order_relaxed); }

static void *vec_count_alloc(void *ud, size_t n)
{
    (void)ud;
    void *p = vec_default_allocator.alloc(vec_default_allocator.ud, n);
    if (p) count_add(n);
    return p;
}

static void vec_count_free(void *ud, void *p, size_t n)
{
    (void)ud;
    if (!p) return;
    vec_default_allocator.free(vec_default_allocator.ud, p, n);
    count_sub(n);
}

static void *vec_count_realloc(void *ud, void *p, size_t old, size_t n)
{
    (void)ud;
    void *q = vec_default_allocator.realloc(vec_default_allocator.ud, p, old, n);
    if (q) {
        count_add(n);
        count_sub(p ? old : 0);
    }
    return q;
}

const vec_allocator evict_vec_allocator = {vec_count_alloc, vec_count_free, NULL,
                                           vec_count_realloc};

static void *ft_count_alloc(void *ud, size_t n)
{
    (void)ud;
    void *p = malloc(n ? n : 1);
    if (p) count_add(n);
    return p;
}

static void *ft_count_realloc(void *ud, void *p, size_t old, size_t n)
{
    (void)ud;
    void *q = realloc(p, n ? n : 1);
    if (q) {
        count_add(n);
        count_sub(p ? old : 0);
    }
    return q;
}

static void ft_count_free(void *ud, void *p, size_t n)
{
    (void)ud;
    if (!p) return;
    free(p);
    count_sub(n);
}

const ftidx_allocator evict_ft_allocator = {ft_count_alloc, ft_count_realloc, ft_count_free, NULL};

size_t evict_engine_bytes(void)
{
    return atomic_load_explicit(&engine_bytes, memory_order_relaxed);
}

size_t evict_used_memory(const server *s)
{
    size_t used = mem_used() + evict_engine_bytes();
    size_t pending = keyspace_lazyfree_bytes(s);
    return used > pending ? used - pending : 0;
}

/* ---- clocks ---------------------------------------------------------------- */

static int policy_clock(int policy)
{
    switch (policy) {
    case MAXMEMORY_ALLKEYS_LRU: case MAXMEMORY_VOLATILE_LRU: return EVICT_CLOCK_LRU;
    case MAXMEMORY_ALLKEYS_LFU: case MAXMEMORY_VOLATILE_LFU: return EVICT_CLOCK_LFU;
    default: return EVICT_CLOCK_NONE;
    }
}

void evict_refresh(server *s)
{
    int64_t now = util_wall_ms();
    s->clock_mode = policy_clock(s->cfg.maxmemory_policy);
    uint16_t clk = s->clock_mode == EVICT_CLOCK_LFU ? lfu_pack(lfu_minute(now), LFU_INIT)
                                                    : lru_clock(now);
    for (int i = 0; i < s->ndbs; i++) kv_set_new_clock(db_kv(s, i), clk);
}

void evict_touch_slow(server *s, kv_entry *e)
{
    int64_t now = s->cmd_time_ms;
    if (s->clock_mode == EVICT_CLOCK_LRU) {
        kv_set_clock(e, lru_clock(now));
        return;
    }
    double r = (double)(util_rand64(&s->rng) >> 11) / 9007199254740992.0;   /* [0, 1) */
    kv_set_clock(e, lfu_touch(kv_clock(e), lfu_minute(now), s->cfg.lfu_decay_time,
                              s->cfg.lfu_log_factor, r));
}

/* ---- the pool --------------------------------------------------------------- */

#define EVICT_POOL 16

typedef struct evict_cand {
    unsigned long long score;   /* higher: evict first */
    int db;
    char *key;                  /* NULL: an empty slot */
    size_t klen;
} evict_cand;

struct evict_pool {
    evict_cand c[EVICT_POOL];   /* the used slots first, ascending by score */
    int n;
};

void evict_init(server *s)
{
    s->evpool = mem_calloc(1, sizeof *s->evpool);
    evict_refresh(s);
    s->mem_startup = evict_used_memory(s);
}

void evict_fini(server *s)
{
    if (!s->evpool) return;
    for (int i = 0; i < s->evpool->n; i++) mem_free(s->evpool->c[i].key);
    mem_free(s->evpool);
    s->evpool = NULL;
}

static int volatile_policy(int policy)
{
    return policy == MAXMEMORY_VOLATILE_LRU || policy == MAXMEMORY_VOLATILE_LFU ||
           policy == MAXMEMORY_VOLATILE_RANDOM || policy == MAXMEMORY_VOLATILE_TTL;
}

static unsigned long long evict_score(server *s, const kv_entry *e, int64_t now)
{
    switch (s->cfg.maxmemory_policy) {
    case MAXMEMORY_ALLKEYS_LRU: case MAXMEMORY_VOLATILE_LRU:
        return lru_idle(lru_clock(now), kv_clock(e));
    case MAXMEMORY_ALLKEYS_LFU: case MAXMEMORY_VOLATILE_LFU:
        return 255 - lfu_decayed(kv_clock(e), lfu_minute(now), s->cfg.lfu_decay_time);
    default:    /* volatile-ttl: the sooner, the better */
        return ULLONG_MAX - (unsigned long long)kv_get_expire(e);
    }
}

/* Put e in the pool if it scores better than the worst kept (or there is
 * room), unless it is there already. */
static void pool_offer(struct evict_pool *p, int db, const kv_entry *e, unsigned long long score)
{
    size_t klen;
    const char *key = kv_key(e, &klen);
    for (int i = 0; i < p->n; i++)
        if (p->c[i].db == db && p->c[i].klen == klen && !memcmp(p->c[i].key, key, klen)) return;
    int at = 0;
    while (at < p->n && p->c[at].score < score) at++;
    if (p->n == EVICT_POOL) {
        if (at == 0) return;            /* worse than everything kept */
        mem_free(p->c[0].key);          /* drop the worst */
        memmove(&p->c[0], &p->c[1], sizeof p->c[0] * (size_t)(at - 1));
        at--;
    } else {
        memmove(&p->c[at + 1], &p->c[at], sizeof p->c[0] * (size_t)(p->n - at));
        p->n++;
    }
    p->c[at] = (evict_cand){score, db, mem_strndup(key, klen), klen};
}

static void pool_populate(server *s, int64_t now)
{
    int vol = volatile_policy(s->cfg.maxmemory_policy);
    for (int db = 0; db < s->ndbs; db++) {
        kv *d = db_kv(s, db);
        if (!kv_size(d) || (vol && !kv_expires_size(d))) continue;
        for (int i = 0; i < s->cfg.maxmemory_samples; i++) {
            kv_entry *e = vol ? kv_random_volatile(d, &s->rng) : kv_random(d, now, &s->rng);
            if (!e) break;
            pool_offer(s->evpool, db, e, evict_score(s, e, now));
        }
    }
}

/* The best candidate still in the keyspace (and with a TTL under volatile-*),
 * taken out of the pool; NULL when the pool runs dry. */
static kv_entry *pool_take(server *s, int *db)
{
    struct evict_pool *p = s->evpool;
    int vol = volatile_policy(s->cfg.maxmemory_policy);
    while (p->n > 0) {
        evict_cand c = p->c[--p->n];
        kv_entry *e = kv_peek(db_kv(s, c.db), c.key, c.klen);
        mem_free(c.key);
        if (e && (!vol || kv_get_expire(e) >= 0)) {
            *db = c.db;
            return e;
        }
    }
    return NULL;
}

/* A random key (with a TTL under volatile-random), databases in turn. */
static kv_entry *random_take(server *s, int64_t now, int *db)
{
    int vol = s->cfg.maxmemory_policy == MAXMEMORY_VOLATILE_RANDOM;
    for (int k = 0; k < s->ndbs; k++) {
        int i = (s->evict_db + k) % s->ndbs;
        kv *d = db_kv(s, i);
        kv_entry *e = vol ? kv_random_volatile(d, &s->rng) : (kv_size(d) ? kv_random(d, now, &s->rng) : NULL);
        if (e) {
            s->evict_db = (i + 1) % s->ndbs;
            *db = i;
            return e;
        }
    }
    return NULL;
}

/* Delete e as DEL does (the log gets its DEL, WATCH and the search indices
 * hear of it), with the `evicted` event. */
static void evict_key(server *s, int db, kv_entry *e)
{
    size_t klen;
    const char *k = kv_key(e, &klen);
    char *key = mem_strndup(k, klen);    /* e's own bytes go with it */
    kv_del_entry(db_kv(s, db), e);
    key_modified(s, db, key, klen);
    notify_keyspace_event(s, NOTIFY_EVICTED, "evicted", db, key, klen);
    s->st.evicted_keys++;
    mem_free(key);
}

/* One eviction by the policy; 0 when nothing is left to evict. */
static int evict_one(server *s, int64_t now)
{
    int policy = s->cfg.maxmemory_policy, db = 0;
    kv_entry *e;
    if (policy == MAXMEMORY_ALLKEYS_RANDOM || policy == MAXMEMORY_VOLATILE_RANDOM) {
        e = random_take(s, now, &db);
    } else {
        /* A fresh sample every time, as Redis: taking the pool's leftovers
         * without one would evict every key ever sampled, good or bad. */
        pool_populate(s, now);
        e = pool_take(s, &db);
    }
    if (!e) return 0;
    evict_key(s, db, e);
    return 1;
}

int evict_room(server *s, client *c)
{
    size_t limit = (size_t)s->cfg.maxmemory;
    if (!limit) return 1;
    size_t used = evict_used_memory(s);
    if (used > s->mem_peak) s->mem_peak = used;
    if (used <= limit) return 1;
    if (s->cfg.maxmemory_policy == MAXMEMORY_NOEVICTION) return 0;
    int64_t now = util_wall_ms();
    s->cmd_time_ms = now;
    if (s->ps) persist_cmd_begin(s, c);
    while (used > limit && evict_one(s, now)) used = evict_used_memory(s);
    if (s->ps) persist_cmd_end(s, c);
    return used <= limit;
}
