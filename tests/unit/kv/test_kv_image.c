/* test_kv_image.c -- the keyspace as an image section (kv_image.h).
 *
 * What is covered
 *   round trip of many keys: binary keys and values full of NULs, the empty
 *   key, empty values, values of 100 KB and 5 MB (staged and bypassing
 *   writes), expiries in the future, at the save instant (still alive) and
 *   in the past (not written); the exact section bytes of a tiny keyspace;
 *   already-past expiries loaded as written; several sections loaded in
 *   turn; release called once per section, on success and failure;
 *   refusals with messages: non-empty db, wrong kind, duplicate key, bad
 *   flags, negative expiry, over-long lengths, impossible count, trailing
 *   bytes, every truncation; sink errors returned and writing stopped;
 *   and a fuzz loop of random mutations and truncations, each in a buffer
 *   of exactly its size so ASan sees any out-of-bounds read.
 *   The hashes' section (hash_image.h): round trip of compact, listpackex
 *   and table hashes (orders kept, deadlines and key expiries kept, expired
 *   fields and keys and hashes with no live field left out, strings and
 *   other objects ignored, encodings chosen by the loader's limits); its
 *   exact bytes; refusals (kind, count, flags, lengths, repeats, a key
 *   already there, trailing bytes, every truncation); sink errors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engram/hash.h"
#include "engram/hash_image.h"
#include "engram/kv.h"
#include "engram/kv_image.h"
#include "engram/mem.h"

#define SEED 0x5eedf00dULL
#define NOW 1000000

/* ---- a memory sink -------------------------------------------------------- */

typedef struct msec { uint32_t kind; int page; uint8_t *data; size_t len, cap; } msec;

typedef struct msink {
    img_sink sink;              /* first */
    msec sec[8];
    size_t n;
    int open;
    unsigned writes;            /* write calls seen */
    unsigned fail_at;           /* 0: never; else the nth write fails */
    int fail_begin;
} msink;

static int m_begin(img_sink *s, uint32_t kind, int page)
{
    msink *m = (msink *)s;
    if (m->fail_begin) return -ENOSPC;
    assert_false(m->open);
    assert_true(m->n < 8);
    m->sec[m->n++] = (msec){ kind, page, NULL, 0, 0 };
    m->open = 1;
    return 0;
}

static int m_write(img_sink *s, const void *p, size_t n)
{
    msink *m = (msink *)s;
    assert_true(m->open);
    if (m->fail_at && ++m->writes == m->fail_at) return -EIO;
    msec *c = &m->sec[m->n - 1];
    if (c->len + n > c->cap) {
        c->cap = (c->len + n) * 2;
        c->data = realloc(c->data, c->cap);
        assert_non_null(c->data);
    }
    memcpy(c->data + c->len, p, n);
    c->len += n;
    return 0;
}

static int m_end(img_sink *s)
{
    msink *m = (msink *)s;
    assert_true(m->open);
    m->open = 0;
    return 0;
}

static void msink_init(msink *m)
{
    memset(m, 0, sizeof *m);
    m->sink = (img_sink){ m_begin, m_write, m_end };
}

static void msink_fini(msink *m)
{
    for (size_t i = 0; i < m->n; i++) free(m->sec[i].data);
}

/* ---- a source over copies, counting releases -------------------------------- */

static struct { unsigned calls; size_t bytes; } rel;

static void count_release(void *ud, void *p, size_t len)
{
    const img_section *secs = ud;
    (void)secs;
    rel.calls++;
    rel.bytes += len;
}

static int load(kv *db, const img_section *secs, size_t n, char *err, size_t errlen)
{
    img_source src = { secs, n, count_release, (void *)secs };
    memset(&rel, 0, sizeof rel);
    int rc = kv_load(db, &src, err, errlen);
    assert_int_equal(rel.calls, n);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += secs[i].len;
    assert_int_equal(rel.bytes, total);
    return rc;
}

/* Load raw bytes as one section (copied into a buffer of exactly len). */
static int load_bytes(kv *db, const void *bytes, size_t len, uint32_t kind, char *err, size_t errlen)
{
    img_section sec = { kind, 0, malloc(len ? len : 1), len };
    memcpy(sec.data, bytes, len);
    int rc = load(db, &sec, 1, err, errlen);
    free(sec.data);
    return rc;
}

/* ---- the reference keyspace --------------------------------------------------- */

#define NKEYS 20000

static size_t key_of(int i, uint8_t *k)
{
    size_t n = (size_t)(i % 13);        /* i == 0: the empty key */
    if (i == 0) return 0;
    memcpy(k, &i, sizeof i);            /* NULs in most keys */
    for (size_t j = 0; j < n; j++) k[4 + j] = (uint8_t)(j * 31 + (unsigned)i);
    return 4 + n;
}

static size_t val_len(int i)
{
    if (i == 5) return 100000;
    if (i == 6) return 5u << 20;
    if (i % 7 == 0) return 0;
    return (size_t)(i % 97);
}

static void val_fill(int i, uint8_t *v, size_t n)
{
    for (size_t j = 0; j < n; j++) v[j] = (uint8_t)((j % 3 == 0) ? 0 : j * 7 + (unsigned)i);
}

/* Expiry of key i: none, future, exactly NOW (alive at its deadline), or
 * past (expired at NOW: not saved). */
static int64_t exp_of(int i)
{
    switch (i % 5) {
    case 0: return -1;
    case 1: return NOW + i;
    case 2: return NOW;
    case 3: return NOW - 1 - i % 1000;
    default: return -1;
    }
}

static int saved(int i) { return i % 5 != 3; }

static kv *make_db(void)
{
    kv *db = kv_new(SEED);
    uint8_t k[32], *v = malloc(5u << 20);
    for (int i = 0; i < NKEYS; i++) {
        size_t kl = key_of(i, k), vl = val_len(i);
        val_fill(i, v, vl);
        kv_entry *e = kv_set(db, k, kl, v, vl, NULL);
        kv_set_expire(db, e, exp_of(i));
    }
    free(v);
    return db;
}

static void check_db(kv *db)
{
    uint8_t k[32], *v = malloc(5u << 20);
    size_t live = 0;
    for (int i = 0; i < NKEYS; i++) {
        size_t kl = key_of(i, k), vl = val_len(i), got;
        kv_entry *e = kv_find(db, k, kl, NOW);
        if (!saved(i)) {
            assert_null(e);
            continue;
        }
        live++;
        assert_non_null(e);
        const char *p = kv_val(e, &got);
        assert_int_equal(got, vl);
        val_fill(i, v, vl);
        assert_memory_equal(p, v, vl);
        assert_int_equal(kv_get_expire(e), exp_of(i));
    }
    assert_int_equal(kv_size(db), live);
    free(v);
}

static void test_round_trip(void **state)
{
    kv *db = make_db(), *db2 = kv_new(SEED + 1);
    msink m;
    char err[256];
    msink_init(&m);
    assert_int_equal(kv_save(db, NOW, &m.sink), 0);
    assert_int_equal(m.n, 1);
    assert_int_equal(m.sec[0].kind, KV_IMG_KIND);
    assert_false(m.sec[0].page);
    assert_false(m.open);
    img_section sec = { m.sec[0].kind, 0, m.sec[0].data, m.sec[0].len };
    assert_int_equal(load(db2, &sec, 1, err, sizeof err), 0);
    check_db(db2);

    /* Loading again into a non-empty keyspace is refused (and releases). */
    assert_int_equal(load(db2, &sec, 1, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "not empty"));

    /* Save -> load -> save gives the same bytes (up to key order: the
     * sizes must match exactly). */
    msink m2;
    msink_init(&m2);
    assert_int_equal(kv_save(db2, NOW, &m2.sink), 0);
    assert_int_equal(m2.sec[0].len, m.sec[0].len);
    msink_fini(&m2);
    msink_fini(&m);
    kv_free(db);
    kv_free(db2);
}

/* The exact bytes of a tiny keyspace: the layout is what the spec says. */
static void test_exact_bytes(void **state)
{
    kv *db = kv_new(SEED);
    msink m;
    msink_init(&m);
    kv_entry *e = kv_set(db, "k", 1, "v\0w", 3, NULL);
    kv_set_expire(db, e, 0x0102030405LL);
    assert_int_equal(kv_save(db, 0, &m.sink), 0);
    static const uint8_t want[] = {
        1, 0, 0, 0, 0, 0, 0, 0,                 /* count */
        1, 1, 0, 0, 0, 3, 0, 0, 0,              /* flags, klen, vlen */
        5, 4, 3, 2, 1, 0, 0, 0,                 /* expiry */
        'k', 'v', 0, 'w',
    };
    assert_int_equal(m.sec[0].len, sizeof want);
    assert_memory_equal(m.sec[0].data, want, sizeof want);
    msink_fini(&m);

    kv_set_expire(db, e, -1);
    msink_init(&m);
    assert_int_equal(kv_save(db, 0, &m.sink), 0);
    static const uint8_t want2[] = { 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 'k', 'v', 0, 'w' };
    assert_int_equal(m.sec[0].len, sizeof want2);
    assert_memory_equal(m.sec[0].data, want2, sizeof want2);
    msink_fini(&m);

    /* An empty keyspace: just the count. */
    kv_clear(db);
    msink_init(&m);
    assert_int_equal(kv_save(db, 0, &m.sink), 0);
    assert_int_equal(m.sec[0].len, 8);
    assert_int_equal(load_bytes(db, m.sec[0].data, 8, KV_IMG_KIND, NULL, 0), 0);
    assert_int_equal(kv_size(db), 0);
    msink_fini(&m);
    kv_free(db);
}

static void check_expire(void *ud, kv_entry *e)
{
    size_t kl;
    const char *k = kv_key(e, &kl);
    assert_int_equal(kv_get_expire(e), k[0] == 'a' ? 500 : -1);
    (*(int *)ud)++;
}

/* Past expiries are loaded as written; the keyspace expires them itself. */
static void test_past_expiry_and_sections(void **state)
{
    kv *a = kv_new(SEED), *b = kv_new(SEED), *db = kv_new(SEED);
    msink ma, mb;
    char err[256];
    kv_set_expire(a, kv_set(a, "a1", 2, "x", 1, NULL), 500);
    kv_set_expire(a, kv_set(a, "a2", 2, "y", 1, NULL), 500);
    kv_set(b, "b1", 2, "z", 1, NULL);
    msink_init(&ma);
    msink_init(&mb);
    assert_int_equal(kv_save(a, 100, &ma.sink), 0);
    assert_int_equal(kv_save(b, 100, &mb.sink), 0);
    img_section secs[2] = {
        { KV_IMG_KIND, 0, ma.sec[0].data, ma.sec[0].len },
        { KV_IMG_KIND, 0, mb.sec[0].data, mb.sec[0].len },
    };
    assert_int_equal(load(db, secs, 2, err, sizeof err), 0);
    int seen = 0;
    kv_foreach(db, check_expire, &seen);
    assert_int_equal(seen, 3);
    assert_null(kv_find(db, "a1", 2, 501));          /* expired lazily, now */
    assert_non_null(kv_find(db, "b1", 2, 501));

    /* The same section twice: a duplicate key. */
    kv_clear(db);
    secs[1] = secs[0];
    assert_int_equal(load(db, secs, 2, err, sizeof err), -EBADMSG);
    assert_string_equal(err, "keyspace section 1 at byte 8: record 0 repeats a key");

    /* Another kind. */
    kv_clear(db);
    secs[0].kind = 0x0201;
    assert_int_equal(load(db, secs, 1, err, sizeof err), -EBADMSG);
    assert_string_equal(err, "keyspace section 0: unexpected kind 0x201");
    msink_fini(&ma);
    msink_fini(&mb);
    kv_free(a);
    kv_free(b);
    kv_free(db);
}

static void test_malformed(void **state)
{
    kv *db = kv_new(SEED);
    char err[256];
    /* One record "k" -> "v" with an expiry; variants of it. */
    uint8_t good[] = { 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 'k', 'v' };
    uint8_t b[sizeof good + 1];
    assert_int_equal(load_bytes(db, good, sizeof good, KV_IMG_KIND, err, sizeof err), 0);
    kv_clear(db);

    memcpy(b, good, sizeof good);
    b[8] = 3;
    assert_int_equal(load_bytes(db, b, sizeof good, KV_IMG_KIND, err, sizeof err), -EBADMSG);
    assert_string_equal(err, "keyspace section 0 at byte 8: record 0 has unknown flags 0x3");
    kv_clear(db);

    memcpy(b, good, sizeof good);
    b[24] = 0x80;                                   /* expiry's top byte */
    assert_int_equal(load_bytes(db, b, sizeof good, KV_IMG_KIND, err, sizeof err), -EBADMSG);
    assert_non_null(strstr(err, "negative expiry"));
    kv_clear(db);

    memcpy(b, good, sizeof good);
    memset(b + 9, 0xff, 4);                         /* klen 2^32 - 1 */
    assert_int_equal(load_bytes(db, b, sizeof good, KV_IMG_KIND, err, sizeof err), -EBADMSG);
    assert_non_null(strstr(err, "limit"));
    kv_clear(db);

    memcpy(b, good, sizeof good);
    b[13] = 2;                                      /* vlen 2: one byte short */
    assert_int_equal(load_bytes(db, b, sizeof good, KV_IMG_KIND, err, sizeof err), -EBADMSG);
    assert_string_equal(err, "keyspace section 0 at byte 8: record 0 (key 1 + value 2 bytes) "
                             "runs past the end (2 bytes left)");
    kv_clear(db);

    memcpy(b, good, sizeof good);
    b[0] = 3;                                       /* 3 records cannot fit in 27 bytes */
    assert_int_equal(load_bytes(db, b, sizeof good, KV_IMG_KIND, err, sizeof err), -EBADMSG);
    assert_non_null(strstr(err, "cannot fit"));
    kv_clear(db);

    memcpy(b, good, sizeof good);
    b[sizeof good] = 0;                             /* a trailing byte */
    assert_int_equal(load_bytes(db, b, sizeof b, KV_IMG_KIND, err, sizeof err), -EBADMSG);
    assert_string_equal(err, "keyspace section 0 at byte 27: 1 bytes after the last record");
    kv_clear(db);

    for (size_t l = 0; l < sizeof good; l++) {     /* every truncation */
        assert_int_equal(load_bytes(db, good, l, KV_IMG_KIND, err, sizeof err), -EBADMSG);
        assert_true(strlen(err) > 0);
        kv_clear(db);
    }
    /* A tiny err buffer is still NUL-terminated; none at all is fine. */
    assert_int_equal(load_bytes(db, good, 3, KV_IMG_KIND, err, 5), -EBADMSG);
    assert_int_equal(strlen(err), 4);
    assert_int_equal(load_bytes(db, good, 3, KV_IMG_KIND, NULL, 0), -EBADMSG);

    /* No release callback: nothing to call. */
    img_section sec = { KV_IMG_KIND, 0, good, sizeof good };
    img_source src = { &sec, 1, NULL, NULL };
    assert_int_equal(kv_load(db, &src, err, sizeof err), 0);
    assert_int_equal(kv_size(db), 1);
    kv_free(db);
}

static void test_sink_errors(void **state)
{
    kv *db = make_db();
    msink m;
    msink_init(&m);
    m.fail_begin = 1;
    assert_int_equal(kv_save(db, NOW, &m.sink), -ENOSPC);
    for (unsigned nth = 1; nth <= 5; nth++) {
        msink_init(&m);
        m.fail_at = nth;
        assert_int_equal(kv_save(db, NOW, &m.sink), -EIO);
        assert_int_equal(m.writes, nth);            /* nothing after the failure */
        assert_true(m.open);                        /* no end after a failure */
        msink_fini(&m);
    }
    kv_free(db);
}

/* Random damage to a real image: the loader answers 0 or -EBADMSG, never
 * crashes, never reads outside the buffer. */
static void test_fuzz(void **state)
{
    kv *db = kv_new(SEED);
    msink m;
    uint8_t k[32], v[300];
    for (int i = 0; i < 300; i++) {
        size_t kl = key_of(i, k), vl = (size_t)(i * 7 % 300);
        val_fill(i, v, vl);
        kv_set_expire(db, kv_set(db, k, kl, v, vl, NULL), i % 3 ? -1 : NOW + i);
    }
    msink_init(&m);
    assert_int_equal(kv_save(db, NOW, &m.sink), 0);
    kv_free(db);
    const uint8_t *img = m.sec[0].data;
    size_t len = m.sec[0].len;
    uint64_t rng = 0x9e3779b97f4a7c15ULL;
#define RND() (rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17, rng)
    unsigned ok = 0, bad = 0;
    char err[256];
    for (int it = 0; it < 20000; it++) {
        size_t l = len;
        if (RND() % 3 == 0) l = (size_t)(RND() % (len + 1));
        uint8_t *b = malloc(l ? l : 1);
        memcpy(b, img, l);
        int nmut = (int)(RND() % 4);
        for (int j = 0; j < nmut && l > 0; j++) {
            size_t at = (size_t)(RND() % l);
            switch (RND() % 4) {
            case 0: b[at] ^= (uint8_t)(1u << (RND() % 8)); break;
            case 1: b[at] = (uint8_t)RND(); break;
            case 2: b[at] = 0xff; break;
            default:                                /* a plausible-looking length */
                for (size_t q = 0; q < 4 && at + q < l; q++) b[at + q] = (uint8_t)(RND() % 64 >> (8 * q));
            }
        }
        db = kv_new(SEED);
        int rc = load_bytes(db, b, l, KV_IMG_KIND, err, sizeof err);
        if (rc == 0) ok++;
        else {
            assert_int_equal(rc, -EBADMSG);
            assert_true(strlen(err) > 0);
            bad++;
        }
        kv_free(db);
        free(b);
    }
    assert_true(ok > 100 && bad > 100);
    msink_fini(&m);
}

/* ---- the hashes' section ---------------------------------------------------- */

#define T_HASH 2

static const hash_limits HLIM = {8, 16};

static void hput(hash *h, const char *f, const char *v, int64_t exp)
{
    assert_true(hash_set(h, f, strlen(f), v, strlen(v), exp, 0, -1, &HLIM) >= 0);
}

typedef struct htext { char s[2048]; size_t n; } htext;

static void htext_add(void *ud, const char *f, size_t flen, const char *v, size_t vlen, int64_t exp)
{
    htext *t = ud;
    t->n += (size_t)snprintf(t->s + t->n, sizeof t->s - t->n, "%.*s=%.*s@%lld;", (int)flen, f,
                             (int)vlen, v, (long long)exp);
}

static const char *hdump(kv *db, const char *key)
{
    static htext t;
    kv_entry *e = kv_peek(db, key, strlen(key));
    t.n = 0;
    t.s[0] = 0;
    if (!e) return "(none)";
    assert_int_equal(kv_type(e), T_HASH);
    hash_foreach(kv_obj(e), -1, htext_add, &t);
    return t.s;
}

static void free_hash(void *ud, uint8_t type, void *obj)
{
    (void)ud;
    assert_int_equal(type, T_HASH);
    hash_free(obj);
}

static const kv_obj_ops HOPS = {free_hash, NULL};

static kv *hdb(void)
{
    kv *db = kv_new(SEED);
    kv_set_obj_ops(db, &HOPS, NULL);
    return db;
}

static void test_hash_round_trip(void **state)
{
    size_t base = mem_used();
    kv *db = hdb(), *db2 = hdb();
    hash *a = hash_new(1), *b = hash_new(2), *c = hash_new(3), *d = hash_new(4), *e = hash_new(5);
    hput(a, "x", "1", -1);                      /* a listpack in insertion order */
    hput(a, "", "", -1);                        /* the empty field */
    hput(a, "b", "2", -1);
    hput(b, "p", "1", NOW + 900);               /* a listpackex by deadline */
    hput(b, "q", "2", -1);
    hput(b, "r", "3", NOW + 900);
    hput(b, "s", "4", 50);                      /* expired at NOW: left out */
    for (int i = 0; i < 12; i++) {              /* a table */
        char f[8];
        snprintf(f, sizeof f, "f%d", i);
        hput(c, f, "v", i == 3 ? NOW + 5 : -1);
    }
    hput(d, "gone", "1", 10);                   /* no live field: left out */
    hput(e, "k", "v", -1);
    hash_enable_ttl(e);                         /* listpackex without deadlines */
    kv_set_obj(db, "a", 1, T_HASH, a, NULL);
    kv_set_expire(db, kv_set_obj(db, "b", 1, T_HASH, b, NULL), NOW + 7);
    kv_set_obj(db, "c", 1, T_HASH, c, NULL);
    kv_set_obj(db, "d", 1, T_HASH, d, NULL);
    kv_set_obj(db, "e", 1, T_HASH, e, NULL);
    kv_set_expire(db, kv_set_obj(db, "z", 1, T_HASH, hash_dup(a, 6), NULL), NOW - 1); /* expired key */
    kv_set(db, "str", 3, "s", 1, NULL);         /* strings are not ours */
    msink m;
    char err[256];
    msink_init(&m);
    assert_int_equal(hash_image_save(db, T_HASH, NOW, &m.sink), 0);
    assert_int_equal(m.n, 1);
    assert_int_equal(m.sec[0].kind, HASH_IMG_KIND);
    img_section sec = {HASH_IMG_KIND, 0, m.sec[0].data, m.sec[0].len};
    uint64_t rng = 7;
    assert_int_equal(hash_image_load(db2, T_HASH, &sec, &HLIM, &rng, err, sizeof err), 0);
    assert_int_equal(kv_size(db2), 4);
    assert_string_equal(hdump(db2, "a"), "x=1@-1;=@-1;b=2@-1;");
    assert_true(hash_peek(kv_obj(kv_peek(db2, "a", 1)), "", 0, NULL, NULL, NULL));
    assert_string_equal(hdump(db2, "b"), "r=3@1000900;p=1@1000900;q=2@-1;");
    assert_string_equal(hdump(db2, "d"), "(none)");
    assert_string_equal(hdump(db2, "z"), "(none)");
    assert_int_equal(kv_get_expire(kv_peek(db2, "b", 1)), NOW + 7);
    assert_int_equal(hash_encoding(kv_obj(kv_peek(db2, "a", 1))), HASH_COMPACT);
    assert_int_equal(hash_encoding(kv_obj(kv_peek(db2, "b", 1))), HASH_COMPACT_TTL);
    assert_int_equal(hash_encoding(kv_obj(kv_peek(db2, "e", 1))), HASH_COMPACT_TTL);
    hash *c2 = kv_obj(kv_peek(db2, "c", 1));
    assert_int_equal(hash_encoding(c2), HASH_TABLE);
    assert_int_equal(hash_len(c2), 12);
    int64_t exp;
    assert_true(hash_peek(c2, "f3", 2, NULL, NULL, &exp));
    assert_int_equal(exp, NOW + 5);
    /* the same bytes under bigger limits: the table comes back compact */
    hash_limits big = {100, 100};
    kv *db3 = hdb();
    assert_int_equal(hash_image_load(db3, T_HASH, &sec, &big, &rng, err, sizeof err), 0);
    assert_int_equal(hash_encoding(kv_obj(kv_peek(db3, "c", 1))), HASH_COMPACT_TTL);
    /* a key already there is refused */
    assert_int_equal(hash_image_load(db3, T_HASH, &sec, &big, &rng, err, sizeof err), -EBADMSG);
    assert_non_null(strstr(err, "repeated"));
    kv_free(db3);
    /* save -> load -> save: the same size */
    msink m2;
    msink_init(&m2);
    assert_int_equal(hash_image_save(db2, T_HASH, NOW, &m2.sink), 0);
    assert_int_equal(m2.sec[0].len, m.sec[0].len);
    msink_fini(&m2);
    /* an empty keyspace: the count alone; sink errors come back */
    kv *empty = hdb();
    msink_fini(&m);
    msink_init(&m);
    assert_int_equal(hash_image_save(empty, T_HASH, NOW, &m.sink), 0);
    assert_int_equal(m.sec[0].len, 8);
    msink_fini(&m);
    msink_init(&m);
    m.fail_at = 1;
    assert_int_equal(hash_image_save(db, T_HASH, NOW, &m.sink), -EIO);
    msink_fini(&m);
    kv_free(empty);
    kv_free(db);
    kv_free(db2);
    assert_int_equal(mem_used(), base);
}

static int hload_bytes(const uint8_t *p, size_t len, char *err, size_t errlen)
{
    kv *db = hdb();
    uint64_t rng = 1;
    img_section sec = {HASH_IMG_KIND, 0, malloc(len ? len : 1), len};
    memcpy(sec.data, p, len);
    int rc = hash_image_load(db, T_HASH, &sec, &HLIM, &rng, err, errlen);
    free(sec.data);
    kv_free(db);
    return rc;
}

static void test_hash_exact_and_malformed(void **state)
{
    size_t base = mem_used();
    kv *db = hdb();
    hash *h = hash_new(1);
    hput(h, "f", "v", 0x0102);
    kv_set_expire(db, kv_set_obj(db, "k", 1, T_HASH, h, NULL), 0x0304);
    msink m;
    msink_init(&m);
    assert_int_equal(hash_image_save(db, T_HASH, 0, &m.sink), 0);
    static const uint8_t want[] = {
        1, 0, 0, 0, 0, 0, 0, 0,                 /* count */
        3, 1, 0, 0, 0, 1, 0, 0, 0,              /* flags (expiry, listpackex), klen, nfields */
        4, 3, 0, 0, 0, 0, 0, 0, 'k',            /* key expiry, key */
        1, 1, 0, 0, 0, 1, 0, 0, 0,              /* field flags, flen, vlen */
        2, 1, 0, 0, 0, 0, 0, 0, 'f', 'v',       /* deadline, field, value */
    };
    assert_int_equal(m.sec[0].len, sizeof want);
    assert_memory_equal(m.sec[0].data, want, sizeof want);
    msink_fini(&m);
    kv_free(db);
    char err[256];
    uint8_t b[64];
    assert_int_equal(hload_bytes(want, sizeof want, err, sizeof err), 0);
    for (size_t n = 0; n < sizeof want; n++)          /* every truncation */
        assert_int_equal(hload_bytes(want, n, err, sizeof err), -EBADMSG);
    memcpy(b, want, sizeof want);
    b[sizeof want] = 0;                                /* a trailing byte */
    assert_int_equal(hload_bytes(b, sizeof want + 1, err, sizeof err), -EBADMSG);
    assert_non_null(strstr(err, "after the last"));
    struct { size_t at; uint8_t v; const char *msg; } cases[] = {
        {0, 9, "cannot fit"},                          /* count */
        {8, 7, "unknown flags"},                       /* hash flags */
        {13, 0, "fields cannot fit"},                  /* nfields 0 */
        {13, 200, "fields cannot fit"},                /* nfields past the bytes */
        {26, 3, "unknown flags"},                      /* field flags */
        {31, 200, "runs past the end"},                /* vlen */
        {26, 0, "after the last"},                     /* no deadline: the rest is left over */
        {24, 0x80, "negative expiry"},                 /* key expiry's top byte */
        {42, 0x80, "negative expiry"},                 /* field deadline's top byte */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(b, want, sizeof want);
        b[cases[i].at] = cases[i].v;
        assert_int_equal(hload_bytes(b, sizeof want, err, sizeof err), -EBADMSG);
        if (!strstr(err, cases[i].msg)) fail_msg("case %zu: %s", i, err);
    }
    /* a repeated field, and deadlines out of order */
    static const uint8_t two[] = {
        1, 0, 0, 0, 0, 0, 0, 0,
        0, 1, 0, 0, 0, 2, 0, 0, 0, 'k',
        0, 1, 0, 0, 0, 1, 0, 0, 0, 'f', 'v',
        1, 1, 0, 0, 0, 1, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 'f', 'w',
    };
    assert_int_equal(hload_bytes(two, sizeof two, err, sizeof err), -EBADMSG);
    assert_non_null(strstr(err, "field repeated"));
    memcpy(b, two, sizeof two);
    b[46] = 'g';                                       /* a deadline after a field without */
    assert_int_equal(hload_bytes(b, sizeof two, err, sizeof err), 0);
    assert_int_equal(mem_used(), base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_exact_bytes),
        cmocka_unit_test(test_past_expiry_and_sections),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_sink_errors),
        cmocka_unit_test(test_fuzz),
        cmocka_unit_test(test_hash_round_trip),
        cmocka_unit_test(test_hash_exact_and_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
