/* kv.c -- the keyspace: a chained hash table of binary-safe keys, resized
 * by incremental rehashing, plus a dense array of the keys that carry a TTL.
 * Contract in kv.h.  Event-loop thread only; no locks, no clock, no I/O.
 *
 * Entries: one allocation per key
 *     [kv_entry header, 32 B][key bytes][NUL][value area: icap bytes + NUL]
 *   A value of at most KV_EMBED_MAX bytes lives in the value area, so a small
 *   key costs one malloc and one cache line or two.  A larger value (or one
 *   grown past icap by APPEND/SETRANGE) lives in a separate kv_blob
 *   [cap][bytes][NUL] whose pointer is stored, unaligned, in the value area;
 *   icap >= 7 guarantees the area (icap + 1 bytes) can always hold it.  icap
 *   is fixed for the entry's life: the entry never moves under a caller,
 *   except that kv_set() may rebuild it when the new value fits its inline
 *   area badly, and kv_rename() makes a new one -- both return the new
 *   entry, and both are "modifying calls" in kv.h's sense.  Keys and values
 *   are followed by a NUL that is not part of them, so either may be handed
 *   to a C-string parser; the bytes themselves may contain NULs.  Lengths
 *   are 32-bit (KV_MAX_LEN); Redis caps strings at 512 MB anyway.
 *
 * Tables and incremental rehash (the shape of Redis's dict.c)
 *   t[0] is the table; t[1] exists only while rehashing, and then every
 *   bucket of t[0] below `rehash` is empty (already moved).  Lookups look in
 *   t[0] (unless the bucket is below `rehash`) and then t[1]; inserts during
 *   a rehash go to t[1], so t[0] only drains.  kv_find, kv_set and kv_del
 *   move one bucket first, and so do kv_random and kv_expire_cycle before
 *   each key they delete; a step skips at most KV_EMPTY_VISITS empty buckets
 *   (KV_EMPTY_VISITS_SHRINK when shrinking) so a sparse table cannot turn
 *   one step into a long walk.  kv_expire_cycle, which the server's cron
 *   calls, also moves KV_CRON_STEPS buckets, so an idle keyspace finishes.
 *   The table grows to double when used reaches size (load 1) and shrinks
 *   to the next power of two >= used when less than 1/KV_SHRINK_RATIO full,
 *   never below KV_MIN_SIZE.  No resize starts while one is in progress;
 *   the shrink test runs after every delete and when a rehash finishes.  A
 *   shrink moves a bucket without rehashing its keys: with power-of-two
 *   sizes, bucket i of the big table maps to bucket i & small_mask.  Entries
 *   never move in memory during a rehash -- only their chain links change --
 *   so entry pointers survive it.
 *
 * SCAN cursor (Redis's reverse-binary iteration)
 *   The cursor is a bucket index incremented from its high bit down (reverse
 *   the bits, add one, reverse back).  Buckets that share their low bits are
 *   then visited consecutively, and a bucket b of a table of size 2^n is
 *   exactly the union of buckets {b, b + 2^n, ...} of any larger table, so a
 *   cursor's order is compatible with every size: after a grow the visited
 *   prefix covers the same keys, after a shrink some keys may come twice, but
 *   none present throughout is missed.  During a rehash one step emits bucket
 *   v of the smaller table and then every bucket of the larger table that
 *   expands it.  kv_scan and kv_foreach never rehash; db->frozen turns a
 *   callback that changes the table's shape (kv_find included: it may
 *   expire a key or take a rehash step) into an assertion failure instead
 *   of a silently skipped or repeated key.  The expire hook runs frozen too.
 *
 * TTL sampling
 *   db->ttl[] is a dense array of the entries that have a deadline; an
 *   entry's `slot` is its index there (KV_NO_SLOT otherwise).  Adding
 *   appends, removing swaps the last element in, so both are O(1), and a
 *   uniform random TTL key is one random index -- which is what active
 *   expiry samples.  The array shrinks by half when under a quarter full.
 *   A key is expired when now_ms > deadline, as Redis's keyIsExpired.
 *
 * Ownership: kv owns every entry, blob, table and the TTL array.  Accessor
 * pointers stay valid until the next call that modifies the keyspace (the
 * lazy-expiry and rehash steps make kv_find and kv_random modifying calls).
 * The expire hook runs after the key left the table and before its memory
 * is freed; it must not modify the keyspace. */
#include "engram/kv.h"

#include "engram/check.h"
#include "engram/mem.h"
#include "engram/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KV_MIN_SIZE 4            /* smallest table, in buckets */
#define KV_SHRINK_RATIO 10       /* shrink when used < size / 10 */
#define KV_EMPTY_VISITS 10       /* empty buckets a rehash step may skip, per bucket */
#define KV_EMPTY_VISITS_SHRINK 100 /* the same while shrinking (see kv_rehash_step) */
#define KV_CRON_STEPS 100        /* buckets moved per kv_expire_cycle call */
#define KV_EMBED_MAX 64          /* larger values go to a blob */
#define KV_ICAP_MIN 7            /* icap + 1 >= sizeof(kv_blob *) */
#define KV_MAX_LEN (UINT32_MAX - 1)
#define KV_NO_SLOT UINT32_MAX
#define KV_IDLE SIZE_MAX         /* db->rehash when not rehashing */
#define KV_RANDOM_PROBES 64      /* random buckets tried before a linear walk */
#define KV_RANDOM_EXPIRED 100    /* expired keys kv_random deletes per call */
#define KV_TTL_MIN_CAP 16
#define KV_GREEDY_LIMIT (1024 * 1024) /* blob growth: double below, +1 MB above */

struct kv_entry {
    kv_entry *next;    /* bucket chain */
    int64_t expire;    /* absolute ms, -1 when none */
    uint32_t slot;     /* index in db->ttl, KV_NO_SLOT when no TTL */
    uint32_t klen;
    uint32_t vlen;
    uint8_t icap : 7;  /* inline value capacity (NUL excluded), fixed */
    uint8_t blob : 1;  /* value is in a kv_blob; the area holds its pointer */
    uint8_t type;      /* KV_STRING, or the caller's object type: the area
                          then holds the object's pointer (vlen 0) */
    uint16_t clock;    /* the owner's access clock (kv_clock: LRU / LFU) */
    char key[];        /* klen bytes, NUL, then the value area */
};
/* The access clock took the 16 bits icap and blob gave up: the header
 * stays 32 bytes, key included in its second half-line. */
_Static_assert(sizeof(kv_entry) == 32, "kv_entry header should stay 32 bytes");
_Static_assert(KV_EMBED_MAX <= 127, "icap is 7 bits");

typedef struct kv_blob {
    uint64_t cap;      /* value capacity, NUL excluded */
    char data[];
} kv_blob;
_Static_assert(KV_ICAP_MIN + 1 >= sizeof(kv_blob *), "the value area must fit a blob pointer");

typedef struct kv_table {
    kv_entry **b;      /* NULL when size == 0 */
    size_t size;       /* 0 or a power of two */
    size_t used;
} kv_table;

struct kv {
    kv_table t[2];
    const kv_obj_ops *ops;   /* what frees and measures objects (NULL: none) */
    void *ops_ud;
    size_t rehash;     /* next t[0] bucket to move, or KV_IDLE */
    uint64_t seed;
    kv_entry **ttl;    /* the entries with a deadline, dense */
    size_t ttl_n, ttl_cap;
    size_t bytes;      /* entries + blobs, as requested from mem_alloc */
    int frozen;        /* > 0 inside scan/foreach callbacks and the hook */
    kv_expire_hook *hook;
    void *hook_ud;
    uint16_t clock_new;  /* a new entry's access clock (kv_set_new_clock) */
};

/* ---- small helpers --------------------------------------------------- */

static int kv_rehashing(const kv *db) { return db->rehash != KV_IDLE; }

/* Entry points that may add, delete or move keys call this first, so a
 * misbehaving callback fails at once rather than only when it happens to
 * hit an expired key or a rehash. */
static void kv_check_mutable(const kv *db) { CHECK(db->frozen == 0); }

static uint64_t kv_hash(const kv *db, const void *key, size_t klen)
{
    return util_hash(key, klen, db->seed);
}

static int kv_expired(const kv_entry *e, int64_t now_ms)
{
    return e->expire >= 0 && now_ms > e->expire;
}

static int kv_key_eq(const kv_entry *e, const void *key, size_t klen)
{
    return e->klen == klen && (klen == 0 || memcmp(e->key, key, klen) == 0);
}

static size_t kv_pow2(size_t n)
{
    size_t s = KV_MIN_SIZE;
    while (s < n) {
        CHECK(s <= SIZE_MAX / 2);
        s *= 2;
    }
    return s;
}

/* Reverse the bits of v (the SCAN cursor runs on reversed indices). */
static uint64_t kv_rev64(uint64_t v)
{
    v = ((v >> 1) & 0x5555555555555555ULL) | ((v & 0x5555555555555555ULL) << 1);
    v = ((v >> 2) & 0x3333333333333333ULL) | ((v & 0x3333333333333333ULL) << 2);
    v = ((v >> 4) & 0x0f0f0f0f0f0f0f0fULL) | ((v & 0x0f0f0f0f0f0f0f0fULL) << 4);
    v = ((v >> 8) & 0x00ff00ff00ff00ffULL) | ((v & 0x00ff00ff00ff00ffULL) << 8);
    v = ((v >> 16) & 0x0000ffff0000ffffULL) | ((v & 0x0000ffff0000ffffULL) << 16);
    return (v >> 32) | (v << 32);
}

/* ---- entries and values ---------------------------------------------- */

static size_t kv_entry_bytes(size_t klen, size_t icap)
{
    return sizeof(kv_entry) + klen + 1 + icap + 1;
}

static size_t kv_blob_bytes(size_t cap) { return sizeof(kv_blob) + cap + 1; }

static char *kv_area(const kv_entry *e) { return (char *)e->key + e->klen + 1; }

static kv_blob *kv_blob_of(const kv_entry *e)
{
    kv_blob *b;
    memcpy(&b, kv_area(e), sizeof b);
    return b;
}

static void kv_blob_attach(kv_entry *e, kv_blob *b)
{
    memcpy(kv_area(e), &b, sizeof b);
    e->blob = 1;
}

static kv_blob *kv_blob_new(kv *db, size_t cap)
{
    kv_blob *b = mem_alloc(kv_blob_bytes(cap));
    b->cap = cap;
    db->bytes += kv_blob_bytes(cap);
    return b;
}

static kv_blob *kv_blob_realloc(kv *db, kv_blob *b, size_t cap)
{
    db->bytes -= kv_blob_bytes(b->cap);
    b = mem_realloc(b, kv_blob_bytes(cap));
    b->cap = cap;
    db->bytes += kv_blob_bytes(cap);
    return b;
}

static void kv_blob_free(kv *db, kv_blob *b)
{
    db->bytes -= kv_blob_bytes(b->cap);
    mem_free(b);
}

static char *kv_valptr(const kv_entry *e) { return e->blob ? kv_blob_of(e)->data : kv_area(e); }

/* Objects: the area holds the pointer, as it holds a blob's. */
static void *kv_obj_of(const kv_entry *e)
{
    void *o;
    memcpy(&o, kv_area(e), sizeof o);
    return o;
}

static void kv_obj_attach(kv_entry *e, uint8_t type, void *obj)
{
    memcpy(kv_area(e), &obj, sizeof obj);
    e->type = type;
    e->vlen = 0;
}

/* Give e's object to its owner's free function; e becomes an empty string. */
static void kv_obj_drop(kv *db, kv_entry *e)
{
    void *o = kv_obj_of(e);
    uint8_t type = e->type;
    e->type = KV_STRING;
    e->vlen = 0;
    kv_area(e)[0] = '\0';
    if (db->ops && db->ops->free) db->ops->free(db->ops_ud, type, o);
}

/* Blob capacity for a value that grows to n: room to double (APPEND in a
 * loop is amortised O(1)), but never more than a megabyte of slack. */
static size_t kv_greedy(size_t n)
{
    size_t cap = n < KV_GREEDY_LIMIT ? n * 2 : n + KV_GREEDY_LIMIT;
    return cap > KV_MAX_LEN ? KV_MAX_LEN : cap;
}

/* Capacity far beyond need is worth giving back when a value is replaced. */
static int kv_roomy(size_t cap, size_t len) { return cap > 2 * len + 32; }

/* A fresh, unlinked entry without TTL holding a copy of key and val. */
static kv_entry *kv_entry_new(kv *db, const void *key, size_t klen, const void *val, size_t vlen)
{
    CHECK(klen <= KV_MAX_LEN && vlen <= KV_MAX_LEN);
    int inl = vlen <= KV_EMBED_MAX;
    size_t icap = inl && vlen > KV_ICAP_MIN ? vlen : KV_ICAP_MIN;
    kv_entry *e = mem_alloc(kv_entry_bytes(klen, icap));
    db->bytes += kv_entry_bytes(klen, icap);
    e->next = NULL;
    e->expire = -1;
    e->slot = KV_NO_SLOT;
    e->klen = (uint32_t)klen;
    e->vlen = (uint32_t)vlen;
    e->icap = (uint8_t)icap & 0x7f;
    e->blob = 0;
    e->type = KV_STRING;
    e->clock = db->clock_new;
    if (klen) memcpy(e->key, key, klen);
    e->key[klen] = '\0';
    if (!inl) kv_blob_attach(e, kv_blob_new(db, vlen));
    char *v = kv_valptr(e);
    if (vlen) memcpy(v, val, vlen);
    v[vlen] = '\0';
    return e;
}

/* Free an entry that is out of the table and out of the TTL array. */
static void kv_entry_free(kv *db, kv_entry *e)
{
    CHECK(e->slot == KV_NO_SLOT);
    if (e->type != KV_STRING) kv_obj_drop(db, e);
    if (e->blob) kv_blob_free(db, kv_blob_of(e));
    db->bytes -= kv_entry_bytes(e->klen, e->icap);
    mem_free(e);
}

/* ---- the TTL array --------------------------------------------------- */

static void kv_ttl_add(kv *db, kv_entry *e)
{
    CHECK(e->slot == KV_NO_SLOT && db->ttl_n < KV_NO_SLOT);
    if (db->ttl_n == db->ttl_cap) {
        db->ttl_cap = db->ttl_cap ? db->ttl_cap * 2 : KV_TTL_MIN_CAP;
        db->ttl = mem_realloc(db->ttl, db->ttl_cap * sizeof *db->ttl);
    }
    e->slot = (uint32_t)db->ttl_n;
    db->ttl[db->ttl_n++] = e;
}

/* Swap-remove e from the TTL array (no-op without TTL); clears its deadline. */
static void kv_ttl_remove(kv *db, kv_entry *e)
{
    if (e->slot == KV_NO_SLOT) return;
    CHECK(e->slot < db->ttl_n && db->ttl[e->slot] == e);
    kv_entry *last = db->ttl[--db->ttl_n];
    db->ttl[e->slot] = last;
    last->slot = e->slot;
    e->slot = KV_NO_SLOT;
    e->expire = -1;
    /* Give memory back after a mass expiry; halving at a quarter (not a
     * half) keeps add/remove at a boundary from reallocating every time.
     * The last KV_TTL_MIN_CAP slots stay until kv_clear. */
    if (db->ttl_cap > KV_TTL_MIN_CAP && db->ttl_n < db->ttl_cap / 4) {
        db->ttl_cap /= 2;
        db->ttl = mem_realloc(db->ttl, db->ttl_cap * sizeof *db->ttl);
    }
}

/* `to` takes `from`'s deadline and TTL slot; `from` is left without TTL. */
static void kv_ttl_transfer(kv *db, kv_entry *from, kv_entry *to)
{
    CHECK(to->slot == KV_NO_SLOT);
    if (from->slot == KV_NO_SLOT) return;
    to->slot = from->slot;
    to->expire = from->expire;
    db->ttl[to->slot] = to;
    from->slot = KV_NO_SLOT;
    from->expire = -1;
}

/* ---- tables, resize and rehash --------------------------------------- */

static void kv_rehash_finish(kv *db)
{
    CHECK(db->t[0].used == 0);
    mem_free(db->t[0].b);
    db->t[0] = db->t[1];
    db->t[1] = (kv_table){0};
    db->rehash = KV_IDLE;
}

/* Start moving to a table of kv_pow2(want) buckets (or install the first). */
static void kv_resize(kv *db, size_t want)
{
    CHECK(!kv_rehashing(db) && db->frozen == 0);
    size_t size = kv_pow2(want);
    if (size == db->t[0].size) return;
    CHECK(size <= SIZE_MAX / sizeof(kv_entry *));
    kv_table nt = {mem_calloc(size, sizeof(kv_entry *)), size, 0};
    if (db->t[0].size == 0) {
        db->t[0] = nt;
        return;
    }
    db->t[1] = nt;
    db->rehash = 0;
    if (db->t[0].used == 0) kv_rehash_finish(db);
}

static void kv_grow_if_needed(kv *db)
{
    if (kv_rehashing(db)) return;
    if (db->t[0].size == 0)
        kv_resize(db, KV_MIN_SIZE);
    else if (db->t[0].used >= db->t[0].size)
        kv_resize(db, db->t[0].used + 1);
}

static void kv_shrink_if_needed(kv *db)
{
    const kv_table *t = &db->t[0];
    if (kv_rehashing(db) || t->size <= KV_MIN_SIZE) return;
    if (t->used * KV_SHRINK_RATIO < t->size) kv_resize(db, t->used);
}

/* Move up to n non-empty buckets from t[0] to t[1]. */
static void kv_rehash_step(kv *db, size_t n)
{
    if (!kv_rehashing(db)) return;
    CHECK(db->frozen == 0);
    kv_table *from = &db->t[0], *to = &db->t[1];
    int shrinking = to->size < from->size;
    /* A shrink starts below 1/KV_SHRINK_RATIO full, so most of t[0] is
     * empty: with Redis's 10 skips per step, a stream of deletes would
     * trigger the next shrink before this one ends, and t[0] would stay
     * huge and nearly empty.  Skipping is a sequential read of pointers,
     * so 100 stays cheap and bounded. */
    size_t empty = n * (shrinking ? KV_EMPTY_VISITS_SHRINK : KV_EMPTY_VISITS);
    while (n-- && from->used) {
        CHECK(db->rehash < from->size);
        while (!from->b[db->rehash]) {
            db->rehash++;
            CHECK(db->rehash < from->size); /* used > 0: a chain remains */
            if (--empty == 0) return;
        }
        kv_entry *e = from->b[db->rehash];
        while (e) {
            kv_entry *next = e->next;
            size_t i = shrinking ? db->rehash & (to->size - 1)
                                 : kv_hash(db, e->key, e->klen) & (to->size - 1);
            e->next = to->b[i];
            to->b[i] = e;
            from->used--;
            to->used++;
            e = next;
        }
        from->b[db->rehash++] = NULL;
    }
    if (from->used == 0) {
        kv_rehash_finish(db);
        /* Deletes during a shrink may have left the new table sparse too;
         * without this a keyspace that stopped deleting would stay sparse
         * (and kv_random slow) for good. */
        kv_shrink_if_needed(db);
    }
}

/* The link (pointer to the pointer) holding key, or NULL; *tix its table. */
static kv_entry **kv_lookup(kv *db, const void *key, size_t klen, uint64_t h, int *tix)
{
    for (int t = 0; t < 2; t++) {
        kv_table *tb = &db->t[t];
        if (tb->size == 0) return NULL;
        size_t i = h & (tb->size - 1);
        if (t == 1 || !kv_rehashing(db) || i >= db->rehash) {
            for (kv_entry **l = &tb->b[i]; *l; l = &(*l)->next) {
                if (kv_key_eq(*l, key, klen)) {
                    *tix = t;
                    return l;
                }
            }
        }
        if (!kv_rehashing(db)) return NULL;
    }
    return NULL;
}

static kv_entry **kv_link_of(kv *db, const kv_entry *e, int *tix)
{
    kv_entry **l = kv_lookup(db, e->key, e->klen, kv_hash(db, e->key, e->klen), tix);
    CHECK(l && *l == e); /* e must be a live entry of this db */
    return l;
}

static void kv_link(kv *db, kv_entry *e, uint64_t h)
{
    CHECK(db->frozen == 0);
    kv_grow_if_needed(db);
    kv_table *t = &db->t[kv_rehashing(db) ? 1 : 0];
    size_t i = h & (t->size - 1);
    e->next = t->b[i];
    t->b[i] = e;
    t->used++;
}

static void kv_unlink(kv *db, kv_entry **link, int tix)
{
    CHECK(db->frozen == 0 && db->t[tix].used > 0);
    kv_entry *e = *link;
    *link = e->next;
    e->next = NULL;
    db->t[tix].used--;
    if (kv_rehashing(db) && db->t[0].used == 0) kv_rehash_finish(db);
    kv_shrink_if_needed(db);
}

/* Unlink, drop the TTL, tell the hook if expiry did it, free. */
static void kv_delete(kv *db, kv_entry **link, int tix, int expired)
{
    kv_entry *e = *link;
    kv_unlink(db, link, tix);
    kv_ttl_remove(db, e);
    if (expired && db->hook) {
        db->frozen++;
        db->hook(db->hook_ud, e->key, e->klen);
        db->frozen--;
    }
    kv_entry_free(db, e);
}

/* ---- public: lifetime ------------------------------------------------ */

kv *kv_new(uint64_t hash_seed)
{
    kv *db = mem_calloc(1, sizeof *db);
    db->rehash = KV_IDLE;
    db->seed = hash_seed;
    return db;
}

void kv_clear(kv *db)
{
    kv_check_mutable(db);
    for (int t = 0; t < 2; t++) {
        for (size_t i = 0; i < db->t[t].size; i++) {
            kv_entry *e = db->t[t].b[i];
            while (e) {
                kv_entry *next = e->next;
                e->slot = KV_NO_SLOT; /* the whole TTL array goes below */
                kv_entry_free(db, e);
                e = next;
            }
        }
        mem_free(db->t[t].b);
        db->t[t] = (kv_table){0};
    }
    db->rehash = KV_IDLE;
    mem_free(db->ttl);
    db->ttl = NULL;
    db->ttl_n = db->ttl_cap = 0;
    CHECK(db->bytes == 0); /* every entry and blob was accounted for */
}

void kv_free(kv *db)
{
    if (!db) return;
    kv_clear(db);
    mem_free(db);
}

void kv_set_expire_hook(kv *db, kv_expire_hook *fn, void *ud)
{
    db->hook = fn;
    db->hook_ud = ud;
}

size_t kv_size(const kv *db) { return db->t[0].used + db->t[1].used; }

size_t kv_expires_size(const kv *db) { return db->ttl_n; }

size_t kv_table_memory(const kv *db)
{
    return (db->t[0].size + db->t[1].size) * sizeof(kv_entry *);
}

size_t kv_expires_memory(const kv *db) { return db->ttl_cap * sizeof *db->ttl; }

size_t kv_memory(const kv *db)
{
    return sizeof *db + (db->t[0].size + db->t[1].size) * sizeof(kv_entry *) +
           db->ttl_cap * sizeof *db->ttl + db->bytes;
}

/* ---- public: keys and values ----------------------------------------- */

kv_entry *kv_find(kv *db, const void *key, size_t klen, int64_t now_ms)
{
    kv_check_mutable(db);
    kv_rehash_step(db, 1);
    int t;
    kv_entry **l = kv_lookup(db, key, klen, kv_hash(db, key, klen), &t);
    if (!l) return NULL;
    if (kv_expired(*l, now_ms)) {
        kv_delete(db, l, t, 1);
        return NULL;
    }
    return *l;
}

kv_entry *kv_peek(kv *db, const void *key, size_t klen)
{
    int t;
    kv_entry **l = kv_lookup(db, key, klen, kv_hash(db, key, klen), &t);
    return l ? *l : NULL;
}

/* Put a new value into the existing entry at *link; returns the entry,
 * which is a new one if the old inline area fits the value badly.  val may
 * point into the old value: every copy happens before anything is freed. */
static kv_entry *kv_value_replace(kv *db, kv_entry **link, const void *val, size_t vlen)
{
    kv_entry *e = *link;
    if (vlen <= KV_EMBED_MAX) {
        if (vlen > e->icap || kv_roomy(e->icap, vlen)) {
            kv_entry *n = kv_entry_new(db, e->key, e->klen, val, vlen);
            n->next = e->next;
            n->clock = e->clock;
            *link = n;
            kv_ttl_transfer(db, e, n);
            kv_entry_free(db, e);
            return n;
        }
        kv_blob *old = e->blob ? kv_blob_of(e) : NULL;
        char *v = kv_area(e);
        if (vlen) memmove(v, val, vlen); /* val may be the old inline value */
        v[vlen] = '\0';
        e->blob = 0;
        e->vlen = (uint32_t)vlen;
        if (old) kv_blob_free(db, old);
        return e;
    }
    CHECK(vlen <= KV_MAX_LEN);
    kv_blob *old = e->blob ? kv_blob_of(e) : NULL;
    if (old && vlen <= old->cap && !kv_roomy(old->cap, vlen)) {
        memmove(old->data, val, vlen);
        old->data[vlen] = '\0';
    } else {
        kv_blob *b = kv_blob_new(db, vlen);
        memcpy(b->data, val, vlen);
        b->data[vlen] = '\0';
        kv_blob_attach(e, b);
        if (old) kv_blob_free(db, old);
    }
    e->vlen = (uint32_t)vlen;
    return e;
}

kv_entry *kv_set(kv *db, const void *key, size_t klen, const void *val, size_t vlen, int *created)
{
    kv_check_mutable(db);
    kv_rehash_step(db, 1);
    uint64_t h = kv_hash(db, key, klen);
    int t;
    kv_entry **l = kv_lookup(db, key, klen, h, &t);
    if (created) *created = l == NULL;
    if (l) {
        if ((*l)->type != KV_STRING) kv_obj_drop(db, *l);   /* val is not inside it */
        return kv_value_replace(db, l, val, vlen);
    }
    kv_entry *e = kv_entry_new(db, key, klen, val, vlen);
    kv_link(db, e, h);
    return e;
}

kv_entry *kv_set_obj(kv *db, const void *key, size_t klen, uint8_t type, void *obj, int *created)
{
    CHECK(type != KV_STRING);
    kv_check_mutable(db);
    kv_rehash_step(db, 1);
    uint64_t h = kv_hash(db, key, klen);
    int t;
    kv_entry **l = kv_lookup(db, key, klen, h, &t);
    if (created) *created = l == NULL;
    kv_entry *e;
    if (l) {
        e = *l;
        if (e->type != KV_STRING) kv_obj_drop(db, e);
        if (e->blob) {
            kv_blob_free(db, kv_blob_of(e));
            e->blob = 0;
        }
    } else {
        e = kv_entry_new(db, key, klen, NULL, 0);
        kv_link(db, e, h);
    }
    kv_obj_attach(e, type, obj);
    return e;
}

uint8_t kv_type(const kv_entry *e) { return e->type; }

void *kv_obj(const kv_entry *e) { return e->type != KV_STRING ? kv_obj_of(e) : NULL; }

void kv_set_obj_ops(kv *db, const kv_obj_ops *ops, void *ud)
{
    db->ops = ops;
    db->ops_ud = ud;
}

size_t kv_entry_memory(const kv *db, const kv_entry *e)
{
    size_t n = kv_entry_bytes(e->klen, e->icap);
    if (e->blob) n += kv_blob_bytes(kv_blob_of(e)->cap);
    if (e->type != KV_STRING && db->ops && db->ops->memory)
        n += db->ops->memory(db->ops_ud, e->type, kv_obj_of(e));
    return n;
}

const char *kv_key(const kv_entry *e, size_t *klen)
{
    if (klen) *klen = e->klen;
    return e->key;
}

const char *kv_val(const kv_entry *e, size_t *vlen)
{
    CHECK(e->type == KV_STRING);
    if (vlen) *vlen = e->vlen;
    return kv_valptr(e);
}

char *kv_val_resize(kv *db, kv_entry *e, size_t newlen)
{
    CHECK(newlen <= KV_MAX_LEN && e->type == KV_STRING);
    size_t old = e->vlen;
    char *v;
    if (newlen <= e->icap) {
        /* Fits inline (again): bring a blob value home. */
        v = kv_area(e);
        if (e->blob) {
            kv_blob *b = kv_blob_of(e);
            memcpy(v, b->data, old < newlen ? old : newlen);
            e->blob = 0;
            kv_blob_free(db, b);
        }
    } else if (!e->blob) {
        kv_blob *b = kv_blob_new(db, kv_greedy(newlen));
        memcpy(b->data, kv_area(e), old);
        kv_blob_attach(e, b);
        v = b->data;
    } else {
        kv_blob *b = kv_blob_of(e);
        if (newlen > b->cap)
            b = kv_blob_realloc(db, b, kv_greedy(newlen));
        else if (b->cap > KV_EMBED_MAX && newlen < b->cap / 4)
            b = kv_blob_realloc(db, b, newlen); /* shrank a lot: return the slack */
        kv_blob_attach(e, b);
        v = b->data;
    }
    if (newlen > old) memset(v + old, 0, newlen - old);
    v[newlen] = '\0';
    e->vlen = (uint32_t)newlen;
    return v;
}

int64_t kv_get_expire(const kv_entry *e) { return e->expire; }

uint16_t kv_clock(const kv_entry *e) { return e->clock; }
void kv_set_clock(kv_entry *e, uint16_t clock) { e->clock = clock; }
void kv_set_new_clock(kv *db, uint16_t clock) { db->clock_new = clock; }

kv_entry *kv_random_volatile(kv *db, uint64_t *rng)
{
    return db->ttl_n ? db->ttl[util_rand64(rng) % db->ttl_n] : NULL;
}

void kv_set_expire(kv *db, kv_entry *e, int64_t at_ms)
{
    if (at_ms == -1) {
        kv_ttl_remove(db, e);
        return;
    }
    /* Other negatives are deadlines in the past: keep them distinct from
     * the -1 sentinel. */
    if (at_ms < 0) at_ms = 0;
    if (e->slot == KV_NO_SLOT) kv_ttl_add(db, e);
    e->expire = at_ms;
}

int kv_del(kv *db, const void *key, size_t klen)
{
    kv_check_mutable(db);
    kv_rehash_step(db, 1);
    int t;
    kv_entry **l = kv_lookup(db, key, klen, kv_hash(db, key, klen), &t);
    if (!l) return 0;
    kv_delete(db, l, t, 0);
    return 1;
}

void kv_del_entry(kv *db, kv_entry *e)
{
    kv_check_mutable(db);
    int t;
    kv_entry **l = kv_link_of(db, e, &t);
    kv_delete(db, l, t, 0);
}

void *kv_del_entry_take(kv *db, kv_entry *e)
{
    void *o = NULL;
    if (e->type != KV_STRING) {
        o = kv_obj_of(e);
        e->type = KV_STRING;        /* the entry no longer owns it */
        e->vlen = 0;
    }
    kv_del_entry(db, e);
    return o;
}

kv_entry *kv_rename(kv *db, kv_entry *src, const void *newkey, size_t nklen)
{
    kv_check_mutable(db);
    if (kv_key_eq(src, newkey, nklen)) return src;
    /* Build the new entry first: newkey may point into the destination's
     * (or src's) own key, which is freed below. */
    kv_entry *n;
    if (src->type != KV_STRING) {
        n = kv_entry_new(db, newkey, nklen, NULL, 0);
        kv_obj_attach(n, src->type, kv_obj_of(src));
        src->type = KV_STRING;      /* the object now belongs to n */
        src->vlen = 0;
    } else if (src->blob) {
        n = kv_entry_new(db, newkey, nklen, NULL, 0);
        kv_blob_attach(n, kv_blob_of(src));
        n->vlen = src->vlen;
        src->blob = 0; /* the blob now belongs to n */
        src->vlen = 0;
    } else {
        n = kv_entry_new(db, newkey, nklen, kv_area(src), src->vlen);
    }
    kv_ttl_transfer(db, src, n);
    n->clock = src->clock;
    uint64_t h = kv_hash(db, n->key, nklen);
    int t;
    kv_entry **l = kv_lookup(db, n->key, nklen, h, &t);
    if (l) kv_delete(db, l, t, 0);
    l = kv_link_of(db, src, &t); /* after the delete: it may have resized */
    kv_unlink(db, l, t);
    kv_entry_free(db, src);
    kv_link(db, n, h);
    return n;
}

kv_entry *kv_move(kv *from, kv_entry *e, kv *to)
{
    kv_check_mutable(from);
    kv_check_mutable(to);
    CHECK(from != to);
    int t;
    kv_entry **l = kv_link_of(from, e, &t);
    int64_t expire = e->expire;
    kv_unlink(from, l, t);
    kv_ttl_remove(from, e);
    /* the entry and its blob change owner without moving */
    size_t bytes = kv_entry_bytes(e->klen, e->icap) + (e->blob ? kv_blob_bytes(kv_blob_of(e)->cap) : 0);
    from->bytes -= bytes;
    to->bytes += bytes;
    uint64_t h = kv_hash(to, e->key, e->klen);
    CHECK(kv_lookup(to, e->key, e->klen, h, &t) == NULL);   /* the caller checked */
    kv_link(to, e, h);
    if (expire != -1) kv_set_expire(to, e, expire);
    return e;
}

void kv_swap(kv *a, kv *b)
{
    kv_check_mutable(a);
    kv_check_mutable(b);
    kv ta = *a, tb = *b;
    *a = tb;
    *b = ta;
    /* The owners' settings stay with the owners: only the contents move. */
    a->hook = ta.hook;
    a->hook_ud = ta.hook_ud;
    a->ops = ta.ops;
    a->ops_ud = ta.ops_ud;
    b->hook = tb.hook;
    b->hook_ud = tb.hook_ud;
    b->ops = tb.ops;
    b->ops_ud = tb.ops_ud;
    a->clock_new = ta.clock_new;
    b->clock_new = tb.clock_new;
}

/* ---- public: random keys and active expiry --------------------------- */

/* The bucket at position i of the live bucket range: t[0] from `rehash` on,
 * then all of t[1]. */
static kv_entry **kv_bucket_at(kv *db, size_t i, int *tix)
{
    *tix = i < db->t[0].size ? 0 : 1;
    return *tix == 0 ? &db->t[0].b[i] : &db->t[1].b[i - db->t[0].size];
}

/* A link to a random entry (random non-empty bucket, random chain element).
 * The table is at least 1/KV_SHRINK_RATIO full except transiently, so a few
 * random probes almost always hit; a walk from a random bucket bounds the
 * rest.  db must not be empty. */
static kv_entry **kv_pick(kv *db, uint64_t *rng, int *tix)
{
    CHECK(kv_size(db) > 0);
    size_t lo = kv_rehashing(db) ? db->rehash : 0;
    size_t span = db->t[0].size - lo + db->t[1].size;
    kv_entry **l = NULL;
    for (int p = 0; p < KV_RANDOM_PROBES; p++) {
        l = kv_bucket_at(db, lo + util_rand64(rng) % span, tix);
        if (*l) break;
    }
    if (!*l) {
        size_t start = util_rand64(rng) % span;
        for (size_t k = 0; k < span && !*l; k++)
            l = kv_bucket_at(db, lo + (start + k) % span, tix);
    }
    CHECK(*l);
    size_t len = 0;
    for (kv_entry *e = *l; e; e = e->next) len++;
    for (size_t k = util_rand64(rng) % len; k; k--) l = &(*l)->next;
    return l;
}

/* The first live entry from a random bucket on, without deleting: the
 * last resort once kv_random has deleted its quota of expired keys. */
static kv_entry *kv_first_live(kv *db, int64_t now_ms, uint64_t *rng)
{
    size_t lo = kv_rehashing(db) ? db->rehash : 0;
    size_t span = db->t[0].size - lo + db->t[1].size;
    size_t start = util_rand64(rng) % span;
    int t;
    for (size_t k = 0; k < span; k++) {
        for (kv_entry *e = *kv_bucket_at(db, lo + (start + k) % span, &t); e; e = e->next)
            if (!kv_expired(e, now_ms)) return e;
    }
    return NULL;
}

kv_entry *kv_random(kv *db, int64_t now_ms, uint64_t *rng)
{
    kv_check_mutable(db);
    for (int deleted = 0; kv_size(db) > 0; deleted++) {
        /* A step per pick, as every delete in Redis takes one: a burst of
         * expired keys must not outrun a shrink and leave t[0] sparse. */
        kv_rehash_step(db, 1);
        int t;
        kv_entry **l = kv_pick(db, rng, &t);
        if (!kv_expired(*l, now_ms)) return *l;
        /* Like Redis, delete what we run into -- but a keyspace that is
         * nearly all expired must not make one call delete millions. */
        if (deleted == KV_RANDOM_EXPIRED) return kv_first_live(db, now_ms, rng);
        kv_delete(db, l, t, 1);
    }
    return NULL;
}

size_t kv_expire_cycle(kv *db, int64_t now_ms, size_t samples, uint64_t *rng)
{
    kv_check_mutable(db);
    size_t deleted = 0;
    for (size_t i = 0; i < samples && db->ttl_n > 0; i++) {
        kv_entry *e = db->ttl[util_rand64(rng) % db->ttl_n];
        if (!kv_expired(e, now_ms)) continue;
        kv_rehash_step(db, 1); /* as in kv_random; e does not move */
        int t;
        kv_entry **l = kv_link_of(db, e, &t);
        kv_delete(db, l, t, 1);
        deleted++;
    }
    /* The cron calls this even when no command runs: let it finish a
     * rehash that commands left half done. */
    kv_rehash_step(db, KV_CRON_STEPS);
    return deleted;
}

/* ---- public: iteration ----------------------------------------------- */

static size_t kv_emit_bucket(kv_entry *e, kv_scan_fn *fn, void *ud)
{
    size_t n = 0;
    while (e) {
        kv_entry *next = e->next;
        fn(ud, e);
        n++;
        e = next;
    }
    return n;
}

/* Emit one cursor position and return the next cursor (see the file
 * comment).  Setting the bits above the mask before the reversed increment
 * makes the carry skip them, so the cursor stays below the table size. */
static uint64_t kv_scan_step(kv *db, uint64_t v, kv_scan_fn *fn, void *ud, size_t *seen)
{
    if (!kv_rehashing(db)) {
        uint64_t m0 = db->t[0].size - 1;
        *seen += kv_emit_bucket(db->t[0].b[v & m0], fn, ud);
        v |= ~m0;
        return kv_rev64(kv_rev64(v) + 1);
    }
    const kv_table *small = &db->t[0], *big = &db->t[1];
    if (small->size > big->size) {
        small = &db->t[1];
        big = &db->t[0];
    }
    uint64_t m0 = small->size - 1, m1 = big->size - 1;
    *seen += kv_emit_bucket(small->b[v & m0], fn, ud);
    /* Every bucket of the big table that expands small bucket v & m0. */
    do {
        *seen += kv_emit_bucket(big->b[v & m1], fn, ud);
        v |= ~m1;
        v = kv_rev64(kv_rev64(v) + 1);
    } while (v & (m0 ^ m1));
    return v;
}

uint64_t kv_scan(kv *db, uint64_t cursor, size_t count, kv_scan_fn *fn, void *ud)
{
    if (kv_size(db) == 0) return 0;
    if (count == 0) count = 1;
    /* Like Redis, bound the empty buckets one call may visit. */
    size_t budget = count <= SIZE_MAX / 10 ? count * 10 : SIZE_MAX;
    size_t seen = 0;
    db->frozen++;
    do {
        cursor = kv_scan_step(db, cursor, fn, ud, &seen);
    } while (cursor != 0 && seen < count && --budget > 0);
    db->frozen--;
    return cursor;
}

void kv_foreach(kv *db, kv_scan_fn *fn, void *ud)
{
    db->frozen++;
    for (int t = 0; t < 2; t++)
        for (size_t i = 0; i < db->t[t].size; i++) kv_emit_bucket(db->t[t].b[i], fn, ud);
    db->frozen--;
}
