/* hash.c -- the hash type's two encodings and the conversion between them
 * (contract in hash.h).  One thread at a time; no clock, no I/O.
 *
 * Compact encoding: one growable buffer of entries back to back,
 *     [deadline + 1, varint; HASH_COMPACT_TTL only][flen, varint][field]
 *     [vlen, varint][value]
 *   varints are LEB128 (7 bits a byte, low first), so a small field costs
 *   its bytes plus two; a deadline of 0 ("none") one byte more, a real one
 *   about six.  HASH_COMPACT keeps insertion order: a new field is
 *   appended, a new value replaces the old in place, a deletion closes the
 *   gap -- Redis's listpack order, so HGETALL on a small hash answers in
 *   the order Redis would.  HASH_COMPACT_TTL keeps the entries ordered by
 *   deadline, soonest first, the fields without one at the end (Redis's
 *   listpackex): a field given a deadline is moved before the first entry
 *   whose deadline is later or equal, or that has none; a field losing its
 *   deadline moves to the end; a value replaced without a deadline change
 *   stays where it is.  So the expired fields of a compact hash are always
 *   a run at its front, and active expiry deletes that run at once.
 *   Lookups scan the entries (at most hash-max-listpack-entries of them,
 *   each short): no index, no per-entry allocation.
 *
 * Table encoding: a kv.h keyspace of its own (fields are its keys,
 *   deadlines its TTLs), which brings incremental rehashing, SCAN's cursor,
 *   fair random picks and the dense TTL array active expiry samples.  Its
 *   expire hook counts the fields it expires (lazily in kv_find and
 *   kv_random, actively in kv_expire_cycle) into h->expired.
 *
 * Invariants: compact: n is the number of entries and nvol the number with
 *   a deadline (0 unless HASH_COMPACT_TTL); the entries fill buf[0, len)
 *   exactly.  A table never goes back to compact, a HASH_COMPACT_TTL hash
 *   never back to HASH_COMPACT. */
#include "engram/hash.h"

#include <string.h>

#include "engram/check.h"
#include "engram/kv.h"
#include "engram/mem.h"
#include "engram/util.h"

#define HASH_MAX_LEN (UINT32_MAX - 1)     /* kv.h's limit, for both encodings */
#define HASH_MIN_CAP 64
#define HASH_SUB_STRATEGY_MUL 3           /* HRANDFIELD: see h_random_unique_table */

struct hash {
    uint8_t enc;            /* HASH_COMPACT, HASH_COMPACT_TTL, HASH_TABLE */
    size_t n, nvol;         /* compact: entries, entries with a deadline */
    unsigned char *buf;     /* compact: the entries */
    size_t len, cap;
    kv *t;                  /* table */
    uint64_t seed;          /* the table's hash seed */
    uint64_t rng;           /* the table's active-expiry sampling */
    uint64_t expired;       /* fields expiry removed */
};

static int h_expired(int64_t exp, int64_t now) { return exp >= 0 && now >= 0 && now > exp; }

/* ---- varints ------------------------------------------------------------------ */

static size_t vi_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static size_t vi_put(unsigned char *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (unsigned char)v;
    return n;
}

/* The buffer is ours, so it is trusted: no bounds to check. */
static size_t vi_get(const unsigned char *p, uint64_t *v)
{
    uint64_t x = 0;
    size_t n = 0;
    int shift = 0;
    do {
        x |= (uint64_t)(p[n] & 0x7f) << shift;
        shift += 7;
    } while (p[n++] & 0x80);
    *v = x;
    return n;
}

/* ---- compact entries ---------------------------------------------------------- */

typedef struct cent {
    size_t off, end;        /* the entry is buf[off, end) */
    int64_t exp;
    const char *f, *v;
    size_t flen, vlen;
} cent;

static void c_read(const hash *h, size_t off, cent *e)
{
    const unsigned char *p = h->buf + off;
    uint64_t x;
    e->off = off;
    e->exp = -1;
    if (h->enc == HASH_COMPACT_TTL) {
        p += vi_get(p, &x);
        e->exp = (int64_t)x - 1;
    }
    p += vi_get(p, &x);
    e->flen = (size_t)x;
    e->f = (const char *)p;
    p += x;
    p += vi_get(p, &x);
    e->vlen = (size_t)x;
    e->v = (const char *)p;
    p += x;
    e->end = (size_t)(p - h->buf);
}

static int c_find(const hash *h, const void *f, size_t flen, cent *e)
{
    for (size_t off = 0; off < h->len; off = e->end) {
        c_read(h, off, e);
        if (e->flen == flen && (flen == 0 || memcmp(e->f, f, flen) == 0)) return 1;
    }
    return 0;
}

static size_t c_size(int ttl, int64_t exp, size_t flen, size_t vlen)
{
    return (ttl ? vi_len((uint64_t)(exp + 1)) : 0) + vi_len(flen) + flen + vi_len(vlen) + vlen;
}

static void c_write(unsigned char *p, int ttl, int64_t exp, const void *f, size_t flen,
                    const void *v, size_t vlen)
{
    if (ttl) p += vi_put(p, (uint64_t)(exp + 1));
    p += vi_put(p, flen);
    if (flen) memcpy(p, f, flen);
    p += flen;
    p += vi_put(p, vlen);
    if (vlen) memcpy(p, v, vlen);
}

/* Make buf[off, off + oldlen) newlen bytes long (the bytes after it move);
 * returns where the new bytes go.  Keeps the capacity within 2x of use. */
static unsigned char *c_splice(hash *h, size_t off, size_t oldlen, size_t newlen)
{
    size_t nl = h->len - oldlen + newlen, tail = h->len - off - oldlen;
    if (nl > h->cap) {
        size_t cap = h->cap ? h->cap : HASH_MIN_CAP;
        while (cap < nl) cap *= 2;
        h->buf = mem_realloc(h->buf, cap);
        h->cap = cap;
    }
    if (tail) memmove(h->buf + off + newlen, h->buf + off + oldlen, tail);
    h->len = nl;
    if (h->cap > HASH_MIN_CAP && nl < h->cap / 4) {
        h->cap /= 2;
        h->buf = mem_realloc(h->buf, h->cap);
    }
    return h->buf + off;
}

static void c_insert(hash *h, size_t off, int64_t exp, const void *f, size_t flen, const void *v,
                     size_t vlen)
{
    int ttl = h->enc == HASH_COMPACT_TTL;
    c_write(c_splice(h, off, 0, c_size(ttl, exp, flen, vlen)), ttl, exp, f, flen, v, vlen);
    h->n++;
    if (exp >= 0) h->nvol++;
}

static void c_delete(hash *h, const cent *e)
{
    c_splice(h, e->off, e->end - e->off, 0);
    h->n--;
    if (e->exp >= 0) h->nvol--;
}

/* Where an entry with deadline exp goes in a HASH_COMPACT_TTL hash: before
 * the first entry whose deadline is later or equal or absent. */
static size_t c_pos_for(const hash *h, int64_t exp)
{
    cent e;
    if (exp < 0 || h->enc != HASH_COMPACT_TTL) return h->len;
    for (size_t off = 0; off < h->len; off = e.end) {
        c_read(h, off, &e);
        if (e.exp < 0 || e.exp >= exp) return off;
    }
    return h->len;
}

/* Replace entry e by f = v with deadline exp: in place when the order
 * allows (same deadline, or no ordering), else moved.  f and v are not in
 * the buffer. */
static void c_replace(hash *h, const cent *e, int64_t exp, const void *f, size_t flen,
                      const void *v, size_t vlen)
{
    int ttl = h->enc == HASH_COMPACT_TTL;
    if (!ttl || exp == e->exp) {
        c_write(c_splice(h, e->off, e->end - e->off, c_size(ttl, exp, flen, vlen)), ttl, exp, f,
                flen, v, vlen);
        h->nvol += (exp >= 0) - (e->exp >= 0);
        return;
    }
    c_delete(h, e);
    c_insert(h, c_pos_for(h, exp), exp, f, flen, v, vlen);
}

/* The run of entries expired at now at the front of a HASH_COMPACT_TTL
 * hash, at most max of them: their count, *end the offset past them. */
static size_t c_expired_run(const hash *h, int64_t now, size_t max, size_t *end)
{
    size_t k = 0, off = 0;
    cent e;
    if (h->enc == HASH_COMPACT_TTL) {
        while (off < h->len && k < max) {
            c_read(h, off, &e);
            if (!h_expired(e.exp, now)) break;
            off = e.end;
            k++;
        }
    }
    *end = off;
    return k;
}

static size_t c_expire(hash *h, int64_t now, size_t max)
{
    size_t end, k = c_expired_run(h, now, max, &end);
    if (k) {
        c_splice(h, 0, end, 0);
        h->n -= k;
        h->nvol -= k;
        h->expired += k;
    }
    return k;
}

/* ---- the table ------------------------------------------------------------------ */

static void t_on_expire(void *ud, const char *key, size_t klen)
{
    (void)key;
    (void)klen;
    ((hash *)ud)->expired++;
}

static kv *t_new(hash *h)
{
    kv *t = kv_new(h->seed);
    kv_set_expire_hook(t, t_on_expire, h);
    return t;
}

static void t_put(kv *t, const char *f, size_t flen, const char *v, size_t vlen, int64_t exp)
{
    kv_entry *e = kv_set(t, f, flen, v, vlen, NULL);
    if (exp >= 0) kv_set_expire(t, e, exp);
}

static int t_set(hash *h, const void *f, size_t flen, const void *v, size_t vlen, int64_t expire,
                 unsigned flags, int64_t now)
{
    int created;
    kv_entry *e = kv_set(h->t, f, flen, v, vlen, &created);
    int64_t old = kv_get_expire(e);
    int live = !created && !h_expired(old, now);
    if (!created && !live) h->expired++;
    int64_t exp = (flags & HASH_KEEPTTL) ? (live ? old : -1) : expire;
    if (exp != old) kv_set_expire(h->t, e, exp);
    return !live;
}

/* kv_foreach / kv_scan callbacks handing live entries to a hash_fn. */
typedef struct t_visit {
    hash_fn *fn;
    void *ud;
    int64_t now;
    size_t n;
} t_visit;

static void t_emit(void *ud, kv_entry *e)
{
    t_visit *tv = ud;
    size_t flen, vlen;
    int64_t exp = kv_get_expire(e);
    if (h_expired(exp, tv->now)) return;
    const char *f = kv_key(e, &flen), *v = kv_val(e, &vlen);
    tv->n++;
    if (tv->fn) tv->fn(tv->ud, f, flen, v, vlen, exp);
}

/* ---- life ------------------------------------------------------------------------ */

hash *hash_new(uint64_t seed)
{
    hash *h = mem_calloc(1, sizeof *h);
    h->enc = HASH_COMPACT;
    h->seed = seed;
    h->rng = seed | 1;
    return h;
}

void hash_free(hash *h)
{
    if (!h) return;
    kv_free(h->t);
    mem_free(h->buf);
    mem_free(h);
}

static void t_copy(void *ud, kv_entry *e)
{
    size_t flen, vlen;
    const char *f = kv_key(e, &flen), *v = kv_val(e, &vlen);
    t_put(ud, f, flen, v, vlen, kv_get_expire(e));
}

hash *hash_dup(const hash *h, uint64_t seed)
{
    hash *d = hash_new(seed);
    d->enc = h->enc;
    d->n = h->n;
    d->nvol = h->nvol;
    if (h->enc == HASH_TABLE) {
        d->t = t_new(d);
        kv_foreach(h->t, t_copy, d->t);
    } else if (h->len) {
        d->buf = mem_alloc(h->len);
        memcpy(d->buf, h->buf, h->len);
        d->len = d->cap = h->len;
    }
    return d;
}

int hash_encoding(const hash *h) { return h->enc; }

const char *hash_encoding_name(const hash *h)
{
    static const char *const names[] = {"listpack", "listpackex", "hashtable"};
    return names[h->enc];
}

size_t hash_len(const hash *h) { return h->enc == HASH_TABLE ? kv_size(h->t) : h->n; }

size_t hash_volatile(const hash *h) { return h->enc == HASH_TABLE ? kv_expires_size(h->t) : h->nvol; }

size_t hash_memory(const hash *h)
{
    return sizeof *h + (h->enc == HASH_TABLE ? kv_memory(h->t) : h->cap);
}

uint64_t hash_expired(const hash *h) { return h->expired; }

/* ---- conversions ------------------------------------------------------------------ */

void hash_enable_ttl(hash *h)
{
    if (h->enc != HASH_COMPACT) return;
    /* Every entry gains a one-byte "no deadline"; the order stays. */
    unsigned char *nb = h->n ? mem_alloc(h->len + h->n) : NULL;
    size_t nl = 0;
    cent e;
    for (size_t off = 0; off < h->len; off = e.end) {
        c_read(h, off, &e);
        nb[nl++] = 0;
        memcpy(nb + nl, h->buf + e.off, e.end - e.off);
        nl += e.end - e.off;
    }
    mem_free(h->buf);
    h->buf = nb;
    h->len = h->cap = nl;
    h->enc = HASH_COMPACT_TTL;
}

void hash_convert(hash *h)
{
    if (h->enc == HASH_TABLE) return;
    kv *t = t_new(h);
    cent e;
    for (size_t off = 0; off < h->len; off = e.end) {
        c_read(h, off, &e);
        t_put(t, e.f, e.flen, e.v, e.vlen, e.exp);
    }
    mem_free(h->buf);
    h->buf = NULL;
    h->len = h->cap = h->n = h->nvol = 0;
    h->t = t;
    h->enc = HASH_TABLE;
}

/* ---- fields ---------------------------------------------------------------------- */

/* f's value and deadline: 1, or 0 if f is not stored -- or, with lazy,
 * if it has expired at now (it is deleted then). */
static int h_lookup(hash *h, const void *f, size_t flen, int64_t now, int lazy, const char **v,
                    size_t *vlen, int64_t *expire)
{
    const char *vp;
    size_t vl;
    int64_t exp;
    if (h->enc == HASH_TABLE) {
        kv_entry *e = lazy ? kv_find(h->t, f, flen, now) : kv_peek(h->t, f, flen);
        if (!e) return 0;
        vp = kv_val(e, &vl);
        exp = kv_get_expire(e);
    } else {
        cent e;
        if (!c_find(h, f, flen, &e)) return 0;
        if (lazy && h_expired(e.exp, now)) {
            c_delete(h, &e);
            h->expired++;
            return 0;
        }
        vp = e.v;
        vl = e.vlen;
        exp = e.exp;
    }
    if (v) *v = vp;
    if (vlen) *vlen = vl;
    if (expire) *expire = exp;
    return 1;
}

int hash_get(hash *h, const void *f, size_t flen, int64_t now, const char **v, size_t *vlen,
             int64_t *expire)
{
    return h_lookup(h, f, flen, now, 1, v, vlen, expire);
}

int hash_peek(const hash *h, const void *f, size_t flen, const char **v, size_t *vlen,
              int64_t *expire)
{
    /* without lazy expiry nothing changes: the cast is only kv_peek's */
    return h_lookup((hash *)h, f, flen, -1, 0, v, vlen, expire);
}

int hash_set(hash *h, const void *f, size_t flen, const void *v, size_t vlen, int64_t expire,
             unsigned flags, int64_t now, const hash_limits *lim)
{
    CHECK(flen <= HASH_MAX_LEN && vlen <= HASH_MAX_LEN && expire >= -1);
    if (h->enc != HASH_TABLE && (flen > lim->max_value || vlen > lim->max_value)) hash_convert(h);
    if (h->enc == HASH_TABLE) return t_set(h, f, flen, v, vlen, expire, flags, now);
    cent e;
    int found = c_find(h, f, flen, &e);
    int live = found && !h_expired(e.exp, now);
    if (found && !live) h->expired++;
    int64_t exp = (flags & HASH_KEEPTTL) ? (live ? e.exp : -1) : expire;
    if (exp >= 0 && h->enc == HASH_COMPACT) {
        hash_enable_ttl(h);       /* offsets changed: look again */
        found = c_find(h, f, flen, &e);
    }
    if (found) c_replace(h, &e, exp, f, flen, v, vlen);
    else c_insert(h, c_pos_for(h, exp), exp, f, flen, v, vlen);
    if (h->n > lim->max_entries) hash_convert(h);
    return !live;
}

int hash_append(hash *h, const void *f, size_t flen, const void *v, size_t vlen, int64_t exp,
                const hash_limits *lim)
{
    CHECK(flen <= HASH_MAX_LEN && vlen <= HASH_MAX_LEN && exp >= -1);
    if (h->enc != HASH_TABLE && (flen > lim->max_value || vlen > lim->max_value)) hash_convert(h);
    if (h->enc == HASH_TABLE) {
        if (kv_peek(h->t, f, flen)) return -1;
        t_put(h->t, f, flen, v, vlen, exp);
        return 0;
    }
    if (exp >= 0) hash_enable_ttl(h);
    cent e;
    int64_t last = -1;
    int any = 0;
    for (size_t off = 0; off < h->len; off = e.end) {
        c_read(h, off, &e);
        if (e.flen == flen && (flen == 0 || memcmp(e.f, f, flen) == 0)) return -1;
        last = e.exp;
        any = 1;
    }
    int in_order = exp < 0 || !any || (last >= 0 && exp >= last);
    c_insert(h, in_order ? h->len : c_pos_for(h, exp), exp, f, flen, v, vlen);
    if (h->n > lim->max_entries) hash_convert(h);
    return 0;
}

int hash_del(hash *h, const void *f, size_t flen)
{
    if (h->enc == HASH_TABLE) return kv_del(h->t, f, flen);
    cent e;
    if (!c_find(h, f, flen, &e)) return 0;
    c_delete(h, &e);
    return 1;
}

int hash_set_expire(hash *h, const void *f, size_t flen, int64_t at)
{
    CHECK(at >= -1);
    if (h->enc == HASH_TABLE) {
        kv_entry *e = kv_peek(h->t, f, flen);
        if (!e) return 0;
        kv_set_expire(h->t, e, at);
        return 1;
    }
    cent e;
    if (!c_find(h, f, flen, &e)) return 0;
    if (at == e.exp) return 1;
    if (h->enc == HASH_COMPACT) {
        hash_enable_ttl(h);
        c_find(h, f, flen, &e);
    }
    /* The entry moves: its field and value are copied out first. */
    char *copy = mem_alloc(e.flen + e.vlen + 1);
    size_t fl = e.flen, vl = e.vlen;
    memcpy(copy, e.f, fl);
    memcpy(copy + fl, e.v, vl);
    c_delete(h, &e);
    c_insert(h, c_pos_for(h, at), at, copy, fl, copy + fl, vl);
    mem_free(copy);
    return 1;
}

/* ---- expiry ----------------------------------------------------------------------- */

size_t hash_expire(hash *h, int64_t now, size_t max)
{
    if (h->enc != HASH_TABLE) return c_expire(h, now, max);
    if (kv_expires_size(h->t) == 0) return 0;
    return kv_expire_cycle(h->t, now, max, &h->rng);
}

typedef struct t_dead {
    int64_t now;
    char **f;
    size_t *flen;
    size_t n, cap;
} t_dead;

static void t_collect_expired(void *ud, kv_entry *e)
{
    t_dead *d = ud;
    if (!h_expired(kv_get_expire(e), d->now)) return;
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 16;
        d->f = mem_realloc(d->f, d->cap * sizeof *d->f);
        d->flen = mem_realloc(d->flen, d->cap * sizeof *d->flen);
    }
    size_t klen;
    const char *k = kv_key(e, &klen);
    d->f[d->n] = mem_strndup(k, klen);
    d->flen[d->n++] = klen;
}

size_t hash_expire_all(hash *h, int64_t now)
{
    if (h->enc != HASH_TABLE) return c_expire(h, now, SIZE_MAX);
    if (kv_expires_size(h->t) == 0) return 0;
    /* kv_foreach may not delete: collect the names, then delete. */
    t_dead d = {now, NULL, NULL, 0, 0};
    kv_foreach(h->t, t_collect_expired, &d);
    for (size_t i = 0; i < d.n; i++) {
        kv_del(h->t, d.f[i], d.flen[i]);
        mem_free(d.f[i]);
    }
    mem_free(d.f);
    mem_free(d.flen);
    h->expired += d.n;
    return d.n;
}

/* ---- iteration -------------------------------------------------------------------- */

void hash_foreach(hash *h, int64_t now, hash_fn *fn, void *ud)
{
    if (h->enc == HASH_TABLE) {
        t_visit tv = {fn, ud, now, 0};
        kv_foreach(h->t, t_emit, &tv);
        return;
    }
    cent e;
    for (size_t off = 0; off < h->len; off = e.end) {
        c_read(h, off, &e);
        if (!h_expired(e.exp, now)) fn(ud, e.f, e.flen, e.v, e.vlen, e.exp);
    }
}

size_t hash_count_live(hash *h, int64_t now)
{
    if (h->enc != HASH_TABLE) {
        size_t end;
        return h->n - c_expired_run(h, now, SIZE_MAX, &end);
    }
    if (kv_expires_size(h->t) == 0 || now < 0) return kv_size(h->t);
    t_visit tv = {NULL, NULL, now, 0};
    kv_foreach(h->t, t_emit, &tv);
    return tv.n;
}

uint64_t hash_scan(hash *h, uint64_t cursor, size_t count, int64_t now, hash_fn *fn, void *ud)
{
    if (h->enc != HASH_TABLE) {
        hash_foreach(h, now, fn, ud);
        return 0;
    }
    t_visit tv = {fn, ud, now, 0};
    return kv_scan(h->t, cursor, count, t_emit, &tv);
}

/* ---- random fields ---------------------------------------------------------------- */

static void t_emit_entry(const kv_entry *e, hash_fn *fn, void *ud)
{
    size_t flen, vlen;
    const char *f = kv_key(e, &flen), *v = kv_val(e, &vlen);
    fn(ud, f, flen, v, vlen, kv_get_expire(e));
}

/* Offsets of every compact entry, for picks by index. */
static size_t *c_offsets(const hash *h)
{
    size_t *o = mem_alloc(h->n * sizeof *o), i = 0;
    cent e;
    for (size_t off = 0; off < h->len; off = e.end) {
        c_read(h, off, &e);
        o[i++] = off;
    }
    return o;
}

static void c_emit_at(const hash *h, size_t off, hash_fn *fn, void *ud)
{
    cent e;
    c_read(h, off, &e);
    fn(ud, e.f, e.flen, e.v, e.vlen, e.exp);
}

/* count distinct entries of a compact hash, in storage order: selection
 * sampling (Knuth's algorithm S) -- each subset equally likely. */
static void c_random_unique(const hash *h, size_t count, uint64_t *rng, hash_fn *fn, void *ud)
{
    size_t left = h->n, need = count;
    cent e;
    for (size_t off = 0; off < h->len && need; off = e.end, left--) {
        c_read(h, off, &e);
        if (util_rand64(rng) % left < need) {
            fn(ud, e.f, e.flen, e.v, e.vlen, e.exp);
            need--;
        }
    }
}

static void t_collect(void *ud, kv_entry *e)
{
    kv_entry ***p = ud;
    *(*p)++ = e;
}

/* count distinct fields of a table, count < size.  Close to the size,
 * drop random entries from a list of all of them; far from it, pick at
 * random and skip repeats (Redis's CASE 3 and CASE 4).  Entries do not
 * move while nothing is deleted (kv.h), so the list stays valid. */
static void t_random_unique(hash *h, size_t count, uint64_t *rng, hash_fn *fn, void *ud)
{
    size_t size = kv_size(h->t);
    if (count * HASH_SUB_STRATEGY_MUL > size) {
        kv_entry **all = mem_alloc(size * sizeof *all), **p = all;
        kv_foreach(h->t, t_collect, &p);
        while (size > count) {
            size_t i = util_rand64(rng) % size;
            all[i] = all[--size];
        }
        for (size_t i = 0; i < size; i++) t_emit_entry(all[i], fn, ud);
        mem_free(all);
        return;
    }
    kv *seen = kv_new(util_rand64(rng));
    for (size_t added = 0; added < count;) {
        kv_entry *e = kv_random(h->t, -1, rng);
        size_t flen;
        const char *f = kv_key(e, &flen);
        int created;
        kv_set(seen, f, flen, "", 0, &created);
        if (!created) continue;
        added++;
        t_emit_entry(e, fn, ud);
    }
    kv_free(seen);
}

void hash_random(hash *h, size_t count, int unique, uint64_t *rng, hash_fn *fn, void *ud)
{
    size_t n = hash_len(h);
    CHECK(n > 0);
    if (unique && count >= n) {
        hash_foreach(h, -1, fn, ud);
        return;
    }
    if (unique) {
        if (h->enc == HASH_TABLE) t_random_unique(h, count, rng, fn, ud);
        else c_random_unique(h, count, rng, fn, ud);
        return;
    }
    if (h->enc == HASH_TABLE) {
        while (count--) t_emit_entry(kv_random(h->t, -1, rng), fn, ud);
        return;
    }
    size_t *off = c_offsets(h);
    while (count--) c_emit_at(h, off[util_rand64(rng) % n], fn, ud);
    mem_free(off);
}
