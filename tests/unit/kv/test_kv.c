/* test_kv.c -- the keyspace (kv.h) through its public API only.
 *
 * Keys are binary: a key is its 32-bit id in little-endian followed by
 * 0..12 pattern bytes, so most keys contain NUL bytes and some differ only
 * after one; callbacks recover the id from the first four bytes.
 *
 * What is covered
 *   basic set/get/overwrite/delete across the value representations
 *   (inline, blob, inline-again, rebuild on a much smaller value); value
 *   resize growth (zero-filled, amortised) and shrink; TTL bookkeeping; lazy
 *   expiry and the hook (exactly once, right key); active expiry (only
 *   expired keys, hook count = return value); kv_random reaches every key
 *   and copes with expired and sparse tables; SCAN's guarantee while the
 *   table grows and while it shrinks (keys inserted/deleted between calls
 *   force rehashes); rename (TTL transfer, overwrite, onto itself, aliasing
 *   key pointers); a million keys in and out (the table shrinks and
 *   mem_used() returns to where it started); kv_clear; foreach mid-rehash;
 *   the guard that aborts a callback or hook modifying the keyspace (in a
 *   forked child); and 200k random operations against a naive model, synchronised through
 *   the expire hook, compared entry by entry. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "engram/kv.h"
#include "engram/mem.h"
#include "engram/util.h"

#define SEED 0x1234567890abcdefULL

/* ---- keys ---------------------------------------------------------- */

#define KEY_MAX 16

static size_t mk_key(uint32_t id, char *buf)
{
    size_t n = 4 + id % 13;
    buf[0] = (char)(id & 0xff);
    buf[1] = (char)((id >> 8) & 0xff);
    buf[2] = (char)((id >> 16) & 0xff);
    buf[3] = (char)((id >> 24) & 0xff);
    for (size_t j = 4; j < n; j++) buf[j] = (char)(j % 3 == 0 ? 0 : (id * 7 + j) & 0xff);
    return n;
}

static uint32_t key_id(const char *k, size_t klen)
{
    assert_true(klen >= 4);
    const unsigned char *u = (const unsigned char *)k;
    return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
}

static kv_entry *set_id(kv *db, uint32_t id, const char *val, size_t vlen)
{
    char k[KEY_MAX];
    return kv_set(db, k, mk_key(id, k), val, vlen, NULL);
}

static kv_entry *find_id(kv *db, uint32_t id, int64_t now)
{
    char k[KEY_MAX];
    return kv_find(db, k, mk_key(id, k), now);
}

static int del_id(kv *db, uint32_t id)
{
    char k[KEY_MAX];
    return kv_del(db, k, mk_key(id, k));
}

static void assert_val(const kv_entry *e, const void *val, size_t vlen)
{
    size_t n;
    const char *v = kv_val(e, &n);
    assert_int_equal(n, vlen);
    if (vlen) assert_memory_equal(v, val, vlen);
    assert_int_equal(v[n], '\0');
}

/* ---- the expire hook ----------------------------------------------- */

typedef struct hook_log {
    size_t calls;
    char last[KEY_MAX];
    size_t last_len;
} hook_log;

static void hook_record(void *ud, const char *key, size_t klen)
{
    hook_log *h = ud;
    h->calls++;
    assert_true(klen <= KEY_MAX);
    memcpy(h->last, key, klen);
    h->last_len = klen;
}

static void count_fn(void *ud, kv_entry *e)
{
    (void)e;
    (*(size_t *)ud)++;
}

/* ---- basic operations ---------------------------------------------- */

static void test_basic(void **state)
{
    (void)state;
    kv *db = kv_new(SEED);
    int created = -1;
    char big[1000];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (char)(i * 31);

    /* Keys that differ only after a NUL, and the empty key. */
    kv_entry *a = kv_set(db, "a\0b", 3, "one", 3, &created);
    assert_int_equal(created, 1);
    kv_set(db, "a\0c", 3, "two", 3, &created);
    assert_int_equal(created, 1);
    kv_set(db, "a", 1, "three", 5, &created);
    kv_set(db, "", 0, "empty", 5, &created);
    assert_int_equal(created, 1);
    assert_int_equal(kv_size(db), 4);
    (void)a;

    kv_entry *e = kv_find(db, "a\0b", 3, 0);
    assert_non_null(e);
    assert_val(e, "one", 3);
    size_t kl;
    const char *k = kv_key(e, &kl);
    assert_int_equal(kl, 3);
    assert_memory_equal(k, "a\0b", 3);
    assert_int_equal(k[3], '\0');
    assert_val(kv_find(db, "a\0c", 3, 0), "two", 3);
    assert_val(kv_find(db, "", 0, 0), "empty", 5);
    assert_null(kv_find(db, "a\0d", 3, 0));
    assert_null(kv_find(db, "a\0", 2, 0));

    /* Overwrite through every representation: inline -> blob -> blob ->
     * inline -> much smaller (rebuilt) -> empty. */
    const size_t lens[] = {3, 1000, 900, 200, 64, 65, 10, 0, 64, 7, 8, 0, 1000, 1};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        e = kv_set(db, "a\0b", 3, big, lens[i], &created);
        assert_int_equal(created, 0);
        assert_val(e, big, lens[i]);
        assert_val(kv_find(db, "a\0b", 3, 0), big, lens[i]);
    }
    /* Overwrite with the value's own bytes (aliasing). */
    e = kv_set(db, "a\0b", 3, big, 500, NULL);
    size_t vl;
    const char *v = kv_val(e, &vl);
    e = kv_set(db, "a\0b", 3, v + 10, 400, NULL);
    assert_val(e, big + 10, 400);
    v = kv_val(e, &vl);
    e = kv_set(db, "a\0b", 3, v + 5, 20, NULL);
    assert_val(e, big + 15, 20);
    v = kv_val(e, &vl);
    e = kv_set(db, "a\0b", 3, v + 1, 18, NULL);
    assert_val(e, big + 16, 18);
    assert_int_equal(kv_size(db), 4);

    assert_int_equal(kv_del(db, "a\0b", 3), 1);
    assert_int_equal(kv_del(db, "a\0b", 3), 0);
    assert_null(kv_find(db, "a\0b", 3, 0));
    assert_val(kv_find(db, "a\0c", 3, 0), "two", 3);
    kv_del_entry(db, kv_find(db, "", 0, 0));
    assert_null(kv_find(db, "", 0, 0));
    assert_int_equal(kv_size(db), 2);

    /* Many keys: every one findable with its own value. */
    for (uint32_t id = 0; id < 5000; id++) set_id(db, id, (char *)&id, sizeof id);
    assert_int_equal(kv_size(db), 5002);
    for (uint32_t id = 0; id < 5000; id++) assert_val(find_id(db, id, 0), &id, sizeof id);
    for (uint32_t id = 0; id < 5000; id += 2) assert_int_equal(del_id(db, id), 1);
    for (uint32_t id = 0; id < 5000; id++) {
        e = find_id(db, id, 0);
        if (id % 2) assert_val(e, &id, sizeof id);
        else assert_null(e);
    }
    assert_int_equal(kv_size(db), 2502);
    kv_free(db);
    kv_free(NULL);
}

static void test_val_resize(void **state)
{
    (void)state;
    kv *db = kv_new(SEED);
    kv_entry *e = kv_set(db, "k", 1, "abc", 3, NULL);

    /* Growth within and beyond the inline area is zero-filled. */
    char *v = kv_val_resize(db, e, 5);
    assert_memory_equal(v, "abc\0\0", 5);
    assert_int_equal(v[5], '\0');
    v = kv_val_resize(db, e, 100);
    assert_memory_equal(v, "abc", 3);
    for (int i = 3; i < 100; i++) assert_int_equal(v[i], 0);
    memset(v, 'x', 100);
    assert_val(kv_find(db, "k", 1, 0), memset((char[100]){0}, 'x', 100), 100);

    /* Shrink, then grow again: the regrown tail must be zeros, not stale x. */
    v = kv_val_resize(db, e, 10);
    assert_int_equal(v[10], '\0');
    v = kv_val_resize(db, e, 50);
    for (int i = 0; i < 10; i++) assert_int_equal(v[i], 'x');
    for (int i = 10; i < 50; i++) assert_int_equal(v[i], 0);
    /* Back into the inline area (3 bytes fits the original 7). */
    v = kv_val_resize(db, e, 3);
    assert_memory_equal(v, "xxx", 3);
    assert_val(e, "xxx", 3);
    v = kv_val_resize(db, e, 0);
    assert_val(e, "", 0);

    /* APPEND one byte at a time: amortised, the value moves rarely. */
    size_t moves = 0;
    char *last = NULL;
    for (size_t n = 1; n <= 20000; n++) {
        v = kv_val_resize(db, e, n);
        v[n - 1] = (char)(n % 251);
        if (v != last) moves++;
        last = v;
    }
    assert_true(moves < 40);
    for (size_t n = 1; n <= 20000; n++) assert_int_equal((unsigned char)v[n - 1], n % 251);

    /* A big shrink gives memory back. */
    size_t before = kv_memory(db);
    v = kv_val_resize(db, e, 100);
    assert_true(kv_memory(db) + 10000 < before);
    assert_int_equal((unsigned char)v[99], 100 % 251);
    kv_free(db);
}

/* ---- expiry --------------------------------------------------------- */

static void test_ttl(void **state)
{
    (void)state;
    kv *db = kv_new(SEED);
    kv_entry *e = kv_set(db, "k", 1, "v", 1, NULL);
    assert_int_equal(kv_get_expire(e), -1);
    assert_int_equal(kv_expires_size(db), 0);
    kv_set_expire(db, e, 5000);
    assert_int_equal(kv_get_expire(e), 5000);
    assert_int_equal(kv_expires_size(db), 1);
    kv_set_expire(db, e, 6000); /* changing a TTL does not add one */
    assert_int_equal(kv_expires_size(db), 1);
    assert_int_equal(kv_get_expire(kv_find(db, "k", 1, 100)), 6000);

    /* kv_set keeps the TTL, through every value representation. */
    char big[300] = {0};
    e = kv_set(db, "k", 1, big, sizeof big, NULL);
    assert_int_equal(kv_get_expire(e), 6000);
    e = kv_set(db, "k", 1, "w", 1, NULL);
    assert_int_equal(kv_get_expire(e), 6000);
    assert_int_equal(kv_expires_size(db), 1);

    kv_set_expire(db, e, -1);
    assert_int_equal(kv_get_expire(e), -1);
    assert_int_equal(kv_expires_size(db), 0);
    kv_set_expire(db, e, -1); /* removing twice is harmless */
    assert_int_equal(kv_expires_size(db), 0);

    /* A negative deadline other than -1 is in the past, not "no TTL". */
    kv_set_expire(db, e, -7);
    assert_int_equal(kv_get_expire(e), 0);
    assert_null(kv_find(db, "k", 1, 1));
    assert_int_equal(kv_size(db), 0);
    assert_int_equal(kv_expires_size(db), 0);

    /* Deleting a TTL key, and the swap-remove keeping the others' slots. */
    for (uint32_t id = 0; id < 100; id++) kv_set_expire(db, set_id(db, id, "x", 1), 1000 + id);
    assert_int_equal(kv_expires_size(db), 100);
    for (uint32_t id = 0; id < 100; id += 3) del_id(db, id);
    assert_int_equal(kv_expires_size(db), 66);
    for (uint32_t id = 1; id < 100; id += 3) kv_set_expire(db, find_id(db, id, 0), -1);
    assert_int_equal(kv_expires_size(db), 33);
    for (uint32_t id = 0; id < 100; id++) {
        e = find_id(db, id, 0);
        if (id % 3 == 0) assert_null(e);
        else assert_int_equal(kv_get_expire(e), id % 3 == 1 ? -1 : 1000 + (int64_t)id);
    }
    kv_free(db);
}

static void test_lazy_expiry(void **state)
{
    (void)state;
    kv *db = kv_new(SEED);
    hook_log h = {0};
    kv_set_expire_hook(db, hook_record, &h);
    kv_set_expire(db, kv_set(db, "gone\0x", 6, "v", 1, NULL), 1000);
    kv_set_expire(db, kv_set(db, "stay", 4, "v", 1, NULL), 5000);
    kv_set(db, "forever", 7, "v", 1, NULL);

    /* Alive up to and including the deadline (Redis: expired iff now > at). */
    assert_non_null(kv_find(db, "gone\0x", 6, 999));
    assert_non_null(kv_find(db, "gone\0x", 6, 1000));
    assert_int_equal(h.calls, 0);
    assert_null(kv_find(db, "gone\0x", 6, 1001));
    assert_int_equal(h.calls, 1);
    assert_int_equal(h.last_len, 6);
    assert_memory_equal(h.last, "gone\0x", 6);
    assert_null(kv_find(db, "gone\0x", 6, 1001));
    assert_int_equal(h.calls, 1); /* exactly once */
    assert_int_equal(kv_size(db), 2);
    assert_int_equal(kv_expires_size(db), 1);

    /* kv_del of an expired key counts it as existing and is no expiry. */
    assert_int_equal(kv_del(db, "stay", 4), 1);
    assert_int_equal(h.calls, 1);
    assert_non_null(kv_find(db, "forever", 7, INT64_MAX));
    assert_int_equal(kv_expires_size(db), 0);
    kv_free(db);
}

static void test_expire_cycle(void **state)
{
    (void)state;
    kv *db = kv_new(SEED);
    hook_log h = {0};
    kv_set_expire_hook(db, hook_record, &h);
    uint64_t rng = 42;
    const uint32_t n = 10000;
    /* id % 4: 0 expired, 1 expires later, 2 and 3 no TTL. */
    for (uint32_t id = 0; id < n; id++) {
        kv_entry *e = set_id(db, id, "v", 1);
        if (id % 4 == 0) kv_set_expire(db, e, 100 + id % 50);
        if (id % 4 == 1) kv_set_expire(db, e, 1000000);
    }
    assert_int_equal(kv_expires_size(db), n / 2);
    assert_int_equal(kv_expire_cycle(db, 50, 1000, &rng), 0); /* nothing due yet */

    size_t total = 0, rounds = 0;
    while (kv_expires_size(db) > n / 4) {
        size_t d = kv_expire_cycle(db, 1000, 20, &rng);
        assert_true(d <= 20);
        total += d;
        assert_int_equal(h.calls, total);
        assert_true(++rounds < 100000);
    }
    assert_int_equal(total, n / 4);
    assert_int_equal(kv_size(db), n - n / 4);
    /* Only the expired ones went. */
    for (uint32_t id = 0; id < n; id++) {
        kv_entry *e = find_id(db, id, 1000);
        if (id % 4 == 0) assert_null(e);
        else assert_non_null(e);
    }
    assert_int_equal(h.calls, n / 4);
    /* Empty TTL set: a cycle is a no-op. */
    for (uint32_t id = 1; id < n; id += 4) kv_set_expire(db, find_id(db, id, 0), -1);
    assert_int_equal(kv_expires_size(db), 0);
    assert_int_equal(kv_expire_cycle(db, INT64_MAX, 100, &rng), 0);
    kv_free(db);
}

/* ---- random keys ---------------------------------------------------- */

static void test_random(void **state)
{
    (void)state;
    kv *db = kv_new(SEED);
    uint64_t rng = 7;
    assert_null(kv_random(db, 0, &rng));

    const uint32_t n = 300;
    for (uint32_t id = 0; id < n; id++) set_id(db, id, "v", 1);
    unsigned hits[300] = {0};
    for (int i = 0; i < 300 * 60; i++) {
        size_t kl;
        kv_entry *e = kv_random(db, 0, &rng);
        assert_non_null(e);
        const char *k = kv_key(e, &kl);
        uint32_t id = key_id(k, kl);
        assert_true(id < n);
        hits[id]++;
    }
    /* Every key comes up, and none wildly more often than the mean (60). */
    for (uint32_t id = 0; id < n; id++) {
        assert_true(hits[id] > 0);
        assert_true(hits[id] < 400);
    }

    /* A sparse moment: grow big, delete down to a handful (mid-shrink). */
    for (uint32_t id = n; id < 50000; id++) set_id(db, id, "v", 1);
    for (uint32_t id = 5; id < 50000; id++) del_id(db, id);
    int seen[5] = {0};
    for (int i = 0; i < 1000; i++) {
        size_t kl;
        const char *k = kv_key(kv_random(db, 0, &rng), &kl);
        uint32_t id = key_id(k, kl);
        assert_true(id < 5);
        seen[id] = 1;
    }
    for (int i = 0; i < 5; i++) assert_true(seen[i]);

    /* Expired keys found are deleted (hook called); live ones returned. */
    hook_log h = {0};
    kv_set_expire_hook(db, hook_record, &h);
    for (uint32_t id = 0; id < 20000; id++) kv_set_expire(db, set_id(db, id, "v", 1), 10);
    kv_set(db, "live", 4, "v", 1, NULL);
    for (int i = 0; i < 50; i++) {
        size_t kl;
        kv_entry *e = kv_random(db, 100, &rng);
        assert_non_null(e);
        const char *k = kv_key(e, &kl);
        assert_int_equal(kl, 4);
        assert_memory_equal(k, "live", 4);
    }
    assert_int_equal(kv_size(db) + h.calls, 20001);
    assert_true(h.calls > 0);
    /* All expired: NULL, with a bounded number deleted per call. */
    kv_del(db, "live", 4);
    size_t before = kv_size(db), calls = h.calls;
    assert_true(before > 1000);
    assert_null(kv_random(db, 100, &rng));
    assert_int_equal(kv_size(db) + (h.calls - calls), before);
    assert_true(h.calls - calls <= 101);
    while (kv_size(db) > 0) assert_null(kv_random(db, 100, &rng));
    assert_int_equal(h.calls, 20000);
    kv_free(db);
}

/* ---- scan ----------------------------------------------------------- */

typedef struct scan_seen {
    uint32_t n;
    unsigned char *hits;
    size_t calls;
} scan_seen;

static void scan_record(void *ud, kv_entry *e)
{
    scan_seen *s = ud;
    size_t kl;
    const char *k = kv_key(e, &kl);
    uint32_t id = key_id(k, kl);
    assert_true(id < s->n);
    if (s->hits[id] < 255) s->hits[id]++;
    s->calls++;
}

static void test_scan_plain(void **state)
{
    (void)state;
    kv *db = kv_new(SEED);
    scan_seen s = {.n = 3000, .hits = calloc(3000, 1)};
    assert_int_equal(kv_scan(db, 0, 10, scan_record, &s), 0);
    assert_int_equal(s.calls, 0);
    for (uint32_t id = 0; id < s.n; id++) set_id(db, id, "v", 1);
    /* Let any rehash finish so the table is stable: exactly once each. */
    for (int i = 0; i < 10000; i++) find_id(db, 0, 0);
    uint64_t cur = 0;
    size_t calls = 0;
    do {
        size_t before = s.calls;
        cur = kv_scan(db, cur, 7, scan_record, &s);
        assert_true(cur == 0 || s.calls - before >= 7 || s.calls == before);
        calls++;
    } while (cur != 0);
    for (uint32_t id = 0; id < s.n; id++) assert_int_equal(s.hits[id], 1);
    assert_true(calls < 3000);
    /* A huge count finishes in one call. */
    memset(s.hits, 0, s.n);
    assert_int_equal(kv_scan(db, 0, SIZE_MAX, scan_record, &s), 0);
    for (uint32_t id = 0; id < s.n; id++) assert_int_equal(s.hits[id], 1);
    free(s.hits);
    kv_free(db);
}

/* Scan while the table changes under the cursor.  Keys [0, stable) are
 * present throughout and must all be seen; between scan calls `grow` new
 * keys are inserted and `shrink` of the churn keys deleted. */
static void scan_under_churn(uint32_t stable, uint32_t churn, uint32_t grow, uint32_t shrink,
                             size_t count, uint64_t seed)
{
    kv *db = kv_new(seed);
    uint32_t n = stable + churn + 100000; /* at most 100k inserted: ~7 doublings */
    scan_seen s = {.n = n, .hits = calloc(n, 1)};
    uint32_t next = stable + churn, lowest = stable;
    for (uint32_t id = 0; id < next; id++) set_id(db, id, "v", 1);
    uint64_t cur = 0;
    size_t steps = 0;
    do {
        cur = kv_scan(db, cur, count, scan_record, &s);
        for (uint32_t i = 0; i < grow && next < n; i++) set_id(db, next++, "v", 1);
        for (uint32_t i = 0; i < shrink && lowest < next; i++) assert_int_equal(del_id(db, lowest++), 1);
        assert_true(++steps < 10000000);
    } while (cur != 0);
    for (uint32_t id = 0; id < stable; id++) assert_true(s.hits[id] >= 1);
    free(s.hits);
    kv_free(db);
}

static void test_scan_grow(void **state)
{
    (void)state;
    /* 1000 keys become up to 100k: several doublings, each rehashed
     * incrementally while the scan is in progress. */
    scan_under_churn(1000, 0, 60, 0, 5, 1);
    scan_under_churn(1000, 0, 200, 0, 1, 2);
    scan_under_churn(100, 0, 3, 0, 1, 3);
}

static void test_scan_shrink(void **state)
{
    (void)state;
    /* 500 stable keys among 40000 that are deleted while scanning. */
    scan_under_churn(500, 40000, 0, 100, 3, 4);
    scan_under_churn(500, 40000, 0, 1000, 1, 5);
    scan_under_churn(50, 5000, 0, 7, 1, 6);
}

static void test_scan_mixed(void **state)
{
    (void)state;
    /* Grow and delete at once, at various rates and seeds. */
    for (uint64_t seed = 10; seed < 16; seed++)
        scan_under_churn(300, 3000, (uint32_t)(seed % 4) * 20, (uint32_t)(seed % 3) * 30 + 5, 1 + seed % 5, seed);
}

/* ---- rename --------------------------------------------------------- */

static void test_rename(void **state)
{
    (void)state;
    kv *db = kv_new(SEED);
    char big[500];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (char)i;

    /* Inline value with a TTL to a new name. */
    kv_entry *e = kv_set(db, "src", 3, "hello", 5, NULL);
    kv_set_expire(db, e, 9000);
    e = kv_rename(db, e, "d\0st", 4);
    assert_val(e, "hello", 5);
    assert_int_equal(kv_get_expire(e), 9000);
    assert_null(kv_find(db, "src", 3, 0));
    e = kv_find(db, "d\0st", 4, 0);
    assert_val(e, "hello", 5);
    assert_int_equal(kv_get_expire(e), 9000);
    assert_int_equal(kv_size(db), 1);
    assert_int_equal(kv_expires_size(db), 1);

    /* Blob value without TTL over an existing destination with a TTL:
     * the destination's TTL goes with it. */
    kv_entry *s = kv_set(db, "big", 3, big, sizeof big, NULL);
    e = kv_rename(db, s, "d\0st", 4);
    assert_val(e, big, sizeof big);
    assert_int_equal(kv_get_expire(e), -1);
    assert_int_equal(kv_size(db), 1);
    assert_int_equal(kv_expires_size(db), 0);
    assert_val(kv_find(db, "d\0st", 4, 0), big, sizeof big);

    /* Onto itself: nothing changes. */
    kv_set_expire(db, e, 1234);
    e = kv_rename(db, e, "d\0st", 4);
    assert_val(e, big, sizeof big);
    assert_int_equal(kv_get_expire(e), 1234);
    assert_int_equal(kv_size(db), 1);
    assert_int_equal(kv_expires_size(db), 1);

    /* newkey pointing into the destination's own key (freed by the call),
     * and into the source's key. */
    kv_entry *d = kv_set(db, "other", 5, "x", 1, NULL);
    kv_set_expire(db, d, 777);
    size_t dl;
    const char *dk = kv_key(d, &dl);
    e = kv_rename(db, kv_find(db, "d\0st", 4, 0), dk, dl);
    assert_val(e, big, sizeof big);
    assert_int_equal(kv_get_expire(e), 1234);
    assert_int_equal(kv_size(db), 1);
    assert_int_equal(kv_expires_size(db), 1);
    const char *sk = kv_key(e, &dl);
    e = kv_rename(db, e, sk + 1, dl - 1); /* "ther" */
    assert_val(kv_find(db, "ther", 4, 0), big, sizeof big);
    assert_null(kv_find(db, "other", 5, 0));

    /* Many renames while the table resizes. */
    for (uint32_t id = 0; id < 3000; id++) {
        e = set_id(db, id, (char *)&id, sizeof id);
        if (id % 2) kv_set_expire(db, e, 100000 + id);
    }
    for (uint32_t id = 0; id < 3000; id++) {
        char k[KEY_MAX];
        size_t kl = mk_key(id + 10000, k);
        e = kv_rename(db, find_id(db, id, 0), k, kl);
        assert_val(e, &id, sizeof id);
    }
    for (uint32_t id = 0; id < 3000; id++) {
        assert_null(find_id(db, id, 0));
        e = find_id(db, id + 10000, 0);
        assert_val(e, &id, sizeof id);
        assert_int_equal(kv_get_expire(e), id % 2 ? 100000 + (int64_t)id : -1);
    }
    assert_int_equal(kv_size(db), 3001);
    assert_int_equal(kv_expires_size(db), 1501);
    kv_free(db);
}

/* ---- a million keys, in and out --------------------------------------- */

static void test_million(void **state)
{
    (void)state;
    const uint32_t n = 1000000;
    size_t mem0 = mem_used();
    kv *db = kv_new(SEED);
    size_t mem_empty = mem_used();
    char k[16], v[16];
    memset(v, 'v', sizeof v);
    for (uint32_t id = 0; id < n; id++) {
        snprintf(k, sizeof k, "key:%011u", id); /* 15 chars + the id = 16 bytes */
        k[15] = (char)('a' + id % 26);
        kv_set(db, k, 16, v, 16, NULL);
    }
    assert_int_equal(kv_size(db), n);
    size_t mem_full = mem_used();
    print_message("kv: %u keys (16 B key, 16 B value): %.1f bytes/key by mem_used, "
                  "%.1f by kv_memory\n",
                  n, (double)(mem_full - mem_empty) / n, (double)kv_memory(db) / n);

    for (uint32_t id = 0; id < n; id++) {
        snprintf(k, sizeof k, "key:%011u", id);
        k[15] = (char)('a' + id % 26);
        assert_int_equal(kv_del(db, k, 16), 1);
    }
    assert_int_equal(kv_size(db), 0);
    /* The table shrank back to its minimum, and everything was returned. */
    assert_true(kv_memory(db) < 1024);
    assert_true(mem_used() - mem0 < 1024);
    kv_free(db);
    assert_int_equal(mem_used(), mem0);
}

static void test_clear(void **state)
{
    (void)state;
    size_t mem0 = mem_used();
    kv *db = kv_new(SEED);
    char big[200] = {1};
    for (uint32_t id = 0; id < 20000; id++) {
        kv_entry *e = set_id(db, id, big, id % 3 ? 5 : sizeof big);
        if (id % 2) kv_set_expire(db, e, 1000);
    }
    kv_clear(db);
    assert_int_equal(kv_size(db), 0);
    assert_int_equal(kv_expires_size(db), 0);
    assert_null(find_id(db, 1, 0));
    assert_true(kv_memory(db) < 512);
    size_t cnt = 0;
    kv_foreach(db, count_fn, &cnt);
    assert_int_equal(cnt, 0);
    /* Usable afterwards. */
    kv_set_expire(db, set_id(db, 1, "x", 1), 5);
    assert_val(find_id(db, 1, 0), "x", 1);
    assert_int_equal(kv_expires_size(db), 1);
    kv_clear(db);
    kv_free(db);
    assert_int_equal(mem_used(), mem0);
}

static void test_foreach(void **state)
{
    (void)state;
    kv *db = kv_new(SEED);
    scan_seen s = {.n = 20000, .hits = calloc(20000, 1)};
    /* Just past each power of two a rehash is usually in progress. */
    for (uint32_t id = 0; id < s.n; id++) {
        set_id(db, id, "v", 1);
        uint32_t c = id + 1;
        if ((c & (c - 1)) == 0 || ((c - 3) & (c - 4)) == 0) {
            memset(s.hits, 0, s.n);
            kv_foreach(db, scan_record, &s);
            for (uint32_t j = 0; j <= id; j++) assert_int_equal(s.hits[j], 1);
        }
    }
    free(s.hits);
    kv_free(db);
}

/* ---- the freeze guard ------------------------------------------------- */

/* Callbacks that break the "must not modify" rule, each run in a child
 * process that must die on the assertion (SIGABRT). */
static kv *guard_db;

static void guard_find(void *ud, kv_entry *e)
{
    (void)ud;
    (void)e;
    kv_find(guard_db, "zz", 2, 0); /* even a miss on a table at rest */
}

static void guard_set(void *ud, kv_entry *e)
{
    (void)ud;
    (void)e;
    kv_set(guard_db, "new", 3, "v", 1, NULL);
}

static void guard_hook(void *ud, const char *key, size_t klen)
{
    (void)ud;
    kv_del(guard_db, key, klen);
}

static int guard_child_dies(int which)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stderr)) _exit(3);
        guard_db = kv_new(SEED);
        kv_set(guard_db, "a", 1, "v", 1, NULL);
        if (which == 0) kv_foreach(guard_db, guard_find, NULL);
        if (which == 1) kv_scan(guard_db, 0, 10, guard_set, NULL);
        if (which == 2) {
            kv_set_expire_hook(guard_db, guard_hook, NULL);
            kv_set_expire(guard_db, kv_find(guard_db, "a", 1, 0), 5);
            kv_find(guard_db, "a", 1, 10);
        }
        _exit(0); /* the guard failed to fire */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

static void test_freeze_guard(void **state)
{
    (void)state;
    assert_true(guard_child_dies(0));
    assert_true(guard_child_dies(1));
    assert_true(guard_child_dies(2));
}

/* ---- randomized model test ------------------------------------------ */

#define MODEL_KEYS 2000

typedef struct model {
    unsigned char present[MODEL_KEYS];
    char *val[MODEL_KEYS];
    size_t vlen[MODEL_KEYS];
    int64_t expire[MODEL_KEYS];
    size_t count;
    int64_t now;
    size_t hook_calls;
} model;

static int model_expired(const model *m, uint32_t id)
{
    return m->expire[id] >= 0 && m->now > m->expire[id];
}

static void model_del(model *m, uint32_t id)
{
    assert_true(m->present[id]);
    free(m->val[id]);
    m->val[id] = NULL;
    m->present[id] = 0;
    m->count--;
}

static void model_set(model *m, uint32_t id, const char *val, size_t vlen)
{
    char *copy = malloc(vlen + 1);
    if (vlen) memcpy(copy, val, vlen);
    if (m->present[id]) free(m->val[id]);
    else {
        m->present[id] = 1;
        m->expire[id] = -1;
        m->count++;
    }
    m->val[id] = copy;
    m->vlen[id] = vlen;
}

/* The expire hook keeps the model in step, and checks the key was due. */
static void model_hook(void *ud, const char *key, size_t klen)
{
    model *m = ud;
    uint32_t id = key_id(key, klen);
    assert_true(id < MODEL_KEYS);
    char k[KEY_MAX];
    assert_int_equal(mk_key(id, k), klen);
    assert_memory_equal(k, key, klen);
    assert_true(m->present[id]);
    assert_true(model_expired(m, id));
    model_del(m, id);
    m->hook_calls++;
}

static void model_check_entry(void *ud, kv_entry *e)
{
    model *m = ud;
    size_t kl;
    const char *k = kv_key(e, &kl);
    uint32_t id = key_id(k, kl);
    assert_true(id < MODEL_KEYS && m->present[id]);
    assert_val(e, m->val[id], m->vlen[id]);
    assert_int_equal(kv_get_expire(e), m->expire[id]);
    m->present[id] = 2; /* seen */
}

static void model_compare(kv *db, model *m)
{
    assert_int_equal(kv_size(db), m->count);
    size_t ttl = 0;
    for (uint32_t id = 0; id < MODEL_KEYS; id++) ttl += m->present[id] && m->expire[id] >= 0;
    assert_int_equal(kv_expires_size(db), ttl);
    kv_foreach(db, model_check_entry, m);
    for (uint32_t id = 0; id < MODEL_KEYS; id++) {
        assert_true(m->present[id] != 1); /* every model key was visited */
        if (m->present[id]) m->present[id] = 1;
    }
}

static size_t rand_vlen(uint64_t *rng)
{
    uint64_t r = util_rand64(rng) % 100;
    if (r < 50) return (size_t)(util_rand64(rng) % 12);
    if (r < 80) return 55 + (size_t)(util_rand64(rng) % 20);
    if (r < 97) return 100 + (size_t)(util_rand64(rng) % 300);
    return 2000 + (size_t)(util_rand64(rng) % 3000);
}

static void test_model(void **state)
{
    (void)state;
    size_t mem0 = mem_used();
    model *m = calloc(1, sizeof *m);
    m->now = 1000;
    kv *db = kv_new(99);
    kv_set_expire_hook(db, model_hook, m);
    uint64_t rng = 2024, krng = 77;
    char buf[5000];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (char)(util_rand64(&rng) & 0xff);
    char k[KEY_MAX];

    for (int op = 0; op < 200000; op++) {
        /* Skewed key choice: a hot set plus the whole range, so keys both
         * accumulate and churn. */
        int phase = (op / 5000) % 5;
        uint32_t id = (uint32_t)(util_rand64(&rng) % (phase == 2 ? 300 : MODEL_KEYS));
        size_t kl = mk_key(id, k);
        uint64_t r = util_rand64(&rng) % 100;
        /* Phases 3 and 4 delete instead of setting and finding, so the
         * table also shrinks (and rehashes downwards) under the model. */
        if (r < 50 && phase >= 3) r = 55;
        if (r < 30) {
            size_t vlen = rand_vlen(&rng);
            const char *val = buf + util_rand64(&rng) % (sizeof buf - vlen + 1);
            int created;
            kv_entry *e = kv_set(db, k, kl, val, vlen, &created);
            assert_int_equal(created, !m->present[id]);
            model_set(m, id, val, vlen);
            assert_val(e, val, vlen);
        } else if (r < 50) {
            int live = m->present[id] && !model_expired(m, id);
            int due = m->present[id] && !live;
            size_t calls = m->hook_calls;
            kv_entry *e = kv_find(db, k, kl, m->now);
            if (live) assert_val(e, m->val[id], m->vlen[id]);
            else assert_null(e);
            assert_int_equal(m->hook_calls - calls, due); /* the hook removed it */
            assert_int_equal(m->present[id] != 0, live);
        } else if (r < 60) {
            int had = m->present[id];
            assert_int_equal(kv_del(db, k, kl), had);
            if (had) model_del(m, id);
        } else if (r < 70) {
            kv_entry *e = kv_find(db, k, kl, m->now);
            if (e) {
                int64_t at = util_rand64(&rng) % 4 ? m->now + (int64_t)(util_rand64(&rng) % 60) - 5 : -1;
                kv_set_expire(db, e, at);
                m->expire[id] = at;
            }
        } else if (r < 80) {
            kv_entry *e = kv_find(db, k, kl, m->now);
            if (e) {
                size_t nl = util_rand64(&rng) % 3 && m->vlen[id] < 8000
                                ? m->vlen[id] + rand_vlen(&rng)
                                : rand_vlen(&rng);
                char *v = kv_val_resize(db, e, nl);
                char *mv = realloc(m->val[id], nl + 1);
                if (nl > m->vlen[id]) memset(mv + m->vlen[id], 0, nl - m->vlen[id]);
                m->val[id] = mv;
                m->vlen[id] = nl;
                if (nl) {
                    size_t at = util_rand64(&rng) % nl;
                    v[at] = mv[at] = (char)util_rand64(&rng);
                }
                assert_val(e, mv, nl);
            }
        } else if (r < 86) {
            kv_entry *e = kv_find(db, k, kl, m->now);
            uint32_t to = (uint32_t)(util_rand64(&krng) % MODEL_KEYS);
            char nk[KEY_MAX];
            size_t nkl = mk_key(to, nk);
            if (e) {
                e = kv_rename(db, e, nk, nkl);
                if (to != id) {
                    if (m->present[to]) model_del(m, to);
                    m->present[to] = 1;
                    m->val[to] = m->val[id];
                    m->vlen[to] = m->vlen[id];
                    m->expire[to] = m->expire[id];
                    m->count++;
                    m->val[id] = NULL;
                    m->present[id] = 0;
                    m->count--;
                }
                assert_val(e, m->val[to], m->vlen[to]);
                assert_int_equal(kv_get_expire(e), m->expire[to]);
            }
        } else if (r < 90) {
            size_t calls = m->hook_calls;
            size_t d = kv_expire_cycle(db, m->now, 20, &rng);
            assert_int_equal(m->hook_calls - calls, d);
        } else if (r < 95) {
            kv_entry *e = kv_random(db, m->now, &rng);
            if (e) {
                size_t rkl;
                const char *rk = kv_key(e, &rkl);
                uint32_t rid = key_id(rk, rkl);
                assert_true(m->present[rid] && !model_expired(m, rid));
                assert_val(e, m->val[rid], m->vlen[rid]);
            } else {
                /* NULL only if nothing is live (expired leftovers may stay). */
                for (uint32_t j = 0; j < MODEL_KEYS; j++)
                    assert_false(m->present[j] && !model_expired(m, j));
            }
        } else if (r < 99) {
            m->now += (int64_t)(util_rand64(&rng) % 4);
        } else if (util_rand64(&rng) % 700 == 0) {
            kv_clear(db);
            for (uint32_t j = 0; j < MODEL_KEYS; j++)
                if (m->present[j]) model_del(m, j);
        }
        if (op % 2000 == 0) model_compare(db, m);
    }
    model_compare(db, m);
    print_message("kv model: %zu keys at end, %zu expired via hook\n", m->count, m->hook_calls);
    for (uint32_t j = 0; j < MODEL_KEYS; j++)
        if (m->present[j]) model_del(m, j);
    free(m);
    kv_free(db);
    assert_int_equal(mem_used(), mem0);
}

/* ---- objects, move, swap ------------------------------------------------ */

/* A test object: a counter of how many times the ops freed it. */
typedef struct tobj {
    int freed;
    size_t bytes;
} tobj;

static void tobj_free(void *ud, uint8_t type, void *obj)
{
    int *frees = ud;
    assert_int_equal(type, 7);
    ((tobj *)obj)->freed++;
    (*frees)++;
}

static size_t tobj_memory(void *ud, uint8_t type, const void *obj)
{
    (void)ud;
    (void)type;
    return ((const tobj *)obj)->bytes;
}

static const kv_obj_ops tobj_ops = {tobj_free, tobj_memory};

static void test_objects(void **state)
{
    (void)state;
    int frees = 0;
    size_t mem0 = mem_used();
    kv *db = kv_new(SEED);
    kv_set_obj_ops(db, &tobj_ops, &frees);
    tobj a = {0, 1000}, b = {0, 2000}, c = {0, 3000};
    int created = 0;
    kv_entry *e = kv_set_obj(db, "x", 1, 7, &a, &created);
    assert_true(created);
    assert_int_equal(kv_type(e), 7);
    assert_ptr_equal(kv_obj(e), &a);
    assert_true(kv_entry_memory(db, e) >= 1000);
    /* an object replaces an object: the old one is freed */
    kv_set_expire(db, e, 5000);
    e = kv_set_obj(db, "x", 1, 7, &b, &created);
    assert_false(created);
    assert_int_equal(a.freed, 1);
    assert_int_equal(kv_get_expire(e), 5000);          /* the TTL stays */
    /* a string replaces an object: freed; and back */
    e = kv_set(db, "x", 1, "hello", 5, NULL);
    assert_int_equal(b.freed, 1);
    assert_int_equal(kv_type(e), KV_STRING);
    assert_null(kv_obj(e));
    size_t vlen;
    assert_memory_equal(kv_val(e, &vlen), "hello", 5);
    char big[200];
    memset(big, 'z', sizeof big);
    kv_set(db, "x", 1, big, sizeof big, NULL);         /* a blob value */
    e = kv_set_obj(db, "x", 1, 7, &c, NULL);
    assert_ptr_equal(kv_obj(e), &c);
    /* rename moves the object, frees nothing; an overwritten destination's
     * object is freed */
    tobj d = {0, 10};
    kv_set_obj(db, "y", 1, 7, &d, NULL);
    e = kv_rename(db, kv_find(db, "x", 1, 0), "y", 1);
    assert_ptr_equal(kv_obj(e), &c);
    assert_int_equal(c.freed, 0);
    assert_int_equal(d.freed, 1);
    assert_null(kv_find(db, "x", 1, 0));
    /* take: deleted, object given back, not freed */
    assert_ptr_equal(kv_del_entry_take(db, e), &c);
    assert_int_equal(c.freed, 0);
    assert_int_equal(kv_size(db), 0);
    /* delete and clear free */
    kv_set_obj(db, "p", 1, 7, &c, NULL);
    tobj f = {0, 1};
    kv_set_obj(db, "q", 1, 7, &f, NULL);
    assert_int_equal(kv_del(db, "p", 1), 1);
    assert_int_equal(c.freed, 1);
    kv_clear(db);
    assert_int_equal(f.freed, 1);
    assert_int_equal(frees, 5);
    /* expiry frees, through the same ops */
    tobj g = {0, 1};
    e = kv_set_obj(db, "g", 1, 7, &g, NULL);
    kv_set_expire(db, e, 10);
    assert_null(kv_find(db, "g", 1, 11));
    assert_int_equal(g.freed, 1);
    kv_free(db);
    assert_int_equal(mem_used(), mem0);
}

static void test_move_and_swap(void **state)
{
    (void)state;
    int frees = 0;
    size_t mem0 = mem_used();
    kv *a = kv_new(SEED), *b = kv_new(SEED ^ 1);
    kv_set_obj_ops(a, &tobj_ops, &frees);
    kv_set_obj_ops(b, &tobj_ops, &frees);
    size_t base_a = kv_memory(a), base_b = kv_memory(b);
    /* many keys, strings and objects, some with TTLs, moved one by one */
    enum { N = 2000 };
    static tobj objs[N];
    char key[16];
    for (int i = 0; i < N; i++) {
        int n = snprintf(key, sizeof key, "k%d", i);
        kv_entry *e;
        if (i % 3 == 0) e = kv_set_obj(a, key, (size_t)n, 7, &objs[i], NULL);
        else e = kv_set(a, key, (size_t)n, key, (size_t)n, NULL);
        if (i % 5 == 0) kv_set_expire(a, e, 1000 + i);
    }
    for (int i = 0; i < N; i += 2) {
        int n = snprintf(key, sizeof key, "k%d", i);
        kv_entry *e = kv_move(a, kv_find(a, key, (size_t)n, 0), b);
        assert_ptr_equal(kv_find(b, key, (size_t)n, 0), e);
    }
    assert_int_equal(kv_size(a), N / 2);
    assert_int_equal(kv_size(b), N / 2);
    assert_int_equal(kv_expires_size(a) + kv_expires_size(b), (N + 4) / 5);
    for (int i = 0; i < N; i++) {
        int n = snprintf(key, sizeof key, "k%d", i);
        kv_entry *e = kv_find(i % 2 ? a : b, key, (size_t)n, 0);
        assert_non_null(e);
        assert_null(kv_find(i % 2 ? b : a, key, (size_t)n, 0));
        assert_int_equal(kv_get_expire(e), i % 5 == 0 ? 1000 + i : -1);
        if (i % 3 == 0) assert_ptr_equal(kv_obj(e), &objs[i]);
        else {
            size_t vlen;
            const char *v = kv_val(e, &vlen);
            assert_int_equal(vlen, (size_t)n);
            assert_memory_equal(v, key, vlen);
        }
    }
    assert_int_equal(frees, 0);
    /* swap: contents change places, each keeps its ops */
    kv_swap(a, b);
    assert_non_null(kv_find(a, "k0", 2, 0));
    assert_non_null(kv_find(b, "k1", 2, 0));
    assert_null(kv_find(a, "k1", 2, 0));
    kv_clear(a);
    kv_clear(b);
    assert_int_equal(frees, (N + 2) / 3);
    assert_int_equal(kv_memory(a), base_a);
    assert_int_equal(kv_memory(b), base_b);
    kv_free(a);
    kv_free(b);
    assert_int_equal(mem_used(), mem0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),        cmocka_unit_test(test_val_resize),
        cmocka_unit_test(test_ttl),          cmocka_unit_test(test_lazy_expiry),
        cmocka_unit_test(test_expire_cycle), cmocka_unit_test(test_random),
        cmocka_unit_test(test_scan_plain),   cmocka_unit_test(test_scan_grow),
        cmocka_unit_test(test_scan_shrink),  cmocka_unit_test(test_scan_mixed),
        cmocka_unit_test(test_rename),       cmocka_unit_test(test_million),
        cmocka_unit_test(test_clear),        cmocka_unit_test(test_foreach),
        cmocka_unit_test(test_freeze_guard), cmocka_unit_test(test_model),
        cmocka_unit_test(test_objects),      cmocka_unit_test(test_move_and_swap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
