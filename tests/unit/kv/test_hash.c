/* test_hash.c -- the hash type (hash.h) through its public API only.
 *
 * What is covered
 *   basic get/set/del/peek in each encoding, binary fields and values
 *   (NULs, empty strings); the conversion thresholds (entries and value
 *   length, each exactly at and one past the limit; never back) and
 *   hash_enable_ttl; the compact orders Redis keeps (insertion order for a
 *   listpack; by deadline, fields without one last, for a listpackex);
 *   field deadlines: lazy expiry in hash_get and hash_set (a replaced
 *   expired field counts as new and drops its deadline, KEEPTTL included),
 *   hash_expire (front run of a compact hash, sampling of a table),
 *   hash_expire_all, hash_count_live, the expired counter; hash_scan visits
 *   every live field; hash_random (unique picks are distinct, count >= len
 *   gives everything in order, repeats give exactly count, every field is
 *   reachable); hash_dup is exact and independent; hash_memory grows and
 *   shrinks and mem_used() returns to its start after hash_free; and 100k
 *   random operations against a naive model that keeps Redis's orders,
 *   compared field by field (and in order while compact) after each step. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engram/hash.h"
#include "engram/mem.h"
#include "engram/util.h"
#include "testlib.h"

static const hash_limits LIM = {8, 16};

/* ---- helpers ----------------------------------------------------------------------- */

static int set_s(hash *h, const char *f, const char *v, int64_t exp, unsigned flags, int64_t now)
{
    return hash_set(h, f, strlen(f), v, strlen(v), exp, flags, now, &LIM);
}

static void assert_get(hash *h, const char *f, int64_t now, const char *want)
{
    const char *v;
    size_t vlen;
    int found = hash_get(h, f, strlen(f), now, &v, &vlen, NULL);
    if (!want) {
        assert_int_equal(found, 0);
        return;
    }
    assert_int_equal(found, 1);
    assert_int_equal(vlen, strlen(want));
    assert_memory_equal(v, want, vlen);
}

/* hash_foreach into "f=v;f=v;..." (storage order). */
typedef struct text {
    char s[4096];
    size_t n;
} text;

static void to_text(void *ud, const char *f, size_t flen, const char *v, size_t vlen, int64_t exp)
{
    text *t = ud;
    (void)exp;
    assert_true(t->n + flen + vlen + 2 < sizeof t->s);
    memcpy(t->s + t->n, f, flen);
    t->n += flen;
    t->s[t->n++] = '=';
    memcpy(t->s + t->n, v, vlen);
    t->n += vlen;
    t->s[t->n++] = ';';
    t->s[t->n] = '\0';
}

static const char *order(hash *h, int64_t now)
{
    static text t;
    t.n = 0;
    t.s[0] = '\0';
    hash_foreach(h, now, to_text, &t);
    return t.s;
}

/* ---- basics ------------------------------------------------------------------------ */

static void test_basics(void **state)
{
    (void)state;
    size_t base = mem_used();
    hash *h = hash_new(1);
    assert_int_equal(hash_len(h), 0);
    assert_int_equal(hash_encoding(h), HASH_COMPACT);
    assert_string_equal(hash_encoding_name(h), "listpack");
    assert_int_equal(set_s(h, "a", "1", -1, 0, 0), 1);
    assert_int_equal(set_s(h, "b", "2", -1, 0, 0), 1);
    assert_int_equal(set_s(h, "a", "11", -1, 0, 0), 0);
    assert_get(h, "a", 0, "11");
    assert_get(h, "b", 0, "2");
    assert_get(h, "c", 0, NULL);
    assert_string_equal(order(h, 0), "a=11;b=2;");
    /* binary and empty */
    assert_int_equal(hash_set(h, "x\0y", 3, "\0\0", 2, -1, 0, 0, &LIM), 1);
    assert_int_equal(hash_set(h, "", 0, "", 0, -1, 0, 0, &LIM), 1);
    const char *v;
    size_t vlen;
    assert_true(hash_get(h, "x\0y", 3, 0, &v, &vlen, NULL));
    assert_int_equal(vlen, 2);
    assert_memory_equal(v, "\0\0", 2);
    assert_false(hash_get(h, "x", 1, 0, NULL, NULL, NULL));
    assert_true(hash_peek(h, "", 0, NULL, &vlen, NULL));
    assert_int_equal(vlen, 0);
    assert_int_equal(hash_len(h), 4);
    assert_int_equal(hash_del(h, "a", 1), 1);
    assert_int_equal(hash_del(h, "a", 1), 0);
    assert_int_equal(hash_len(h), 3);
    hash_free(h);
    hash_free(NULL);
    assert_int_equal(mem_used(), base);
}

/* ---- conversions ------------------------------------------------------------------- */

static void test_thresholds(void **state)
{
    (void)state;
    char f[32];
    hash *h = hash_new(2);
    for (int i = 0; i < 8; i++) {
        snprintf(f, sizeof f, "f%d", i);
        set_s(h, f, "v", -1, 0, 0);
    }
    assert_int_equal(hash_encoding(h), HASH_COMPACT);   /* exactly max_entries */
    set_s(h, "f0", "w", -1, 0, 0);                       /* an update adds nothing */
    assert_int_equal(hash_encoding(h), HASH_COMPACT);
    set_s(h, "f8", "v", -1, 0, 0);
    assert_int_equal(hash_encoding(h), HASH_TABLE);
    assert_string_equal(hash_encoding_name(h), "hashtable");
    for (int i = 0; i <= 8; i++) {
        snprintf(f, sizeof f, "f%d", i);
        assert_get(h, f, 0, i == 0 ? "w" : "v");
        hash_del(h, f, strlen(f));
    }
    assert_int_equal(hash_len(h), 0);
    assert_int_equal(hash_encoding(h), HASH_TABLE);     /* never back */
    hash_free(h);

    /* value length: 16 stays, 17 converts; so does a 17-byte field */
    h = hash_new(3);
    set_s(h, "a", "0123456789abcdef", -1, 0, 0);
    assert_int_equal(hash_encoding(h), HASH_COMPACT);
    set_s(h, "b", "0123456789abcdefg", -1, 0, 0);
    assert_int_equal(hash_encoding(h), HASH_TABLE);
    assert_get(h, "a", 0, "0123456789abcdef");
    hash_free(h);
    h = hash_new(3);
    set_s(h, "0123456789abcdefg", "v", -1, 0, 0);
    assert_int_equal(hash_encoding(h), HASH_TABLE);
    hash_free(h);

    /* listpackex: by deadline or on request; sticky; converts with its deadlines */
    h = hash_new(4);
    set_s(h, "a", "1", -1, 0, 0);
    hash_enable_ttl(h);
    assert_int_equal(hash_encoding(h), HASH_COMPACT_TTL);
    assert_string_equal(hash_encoding_name(h), "listpackex");
    assert_get(h, "a", 0, "1");
    hash_set_expire(h, "a", 1, 500);
    hash_set_expire(h, "a", 1, -1);
    assert_int_equal(hash_encoding(h), HASH_COMPACT_TTL);
    assert_int_equal(hash_volatile(h), 0);
    hash_set_expire(h, "a", 1, 500);
    hash_convert(h);
    assert_int_equal(hash_encoding(h), HASH_TABLE);
    int64_t exp;
    assert_true(hash_peek(h, "a", 1, NULL, NULL, &exp));
    assert_int_equal(exp, 500);
    assert_int_equal(hash_volatile(h), 1);
    hash_free(h);

    h = hash_new(5);
    set_s(h, "a", "1", 100, 0, 0);             /* a deadline makes a listpackex */
    assert_int_equal(hash_encoding(h), HASH_COMPACT_TTL);
    hash_free(h);
}

static void test_orders(void **state)
{
    (void)state;
    hash *h = hash_new(6);
    set_s(h, "a", "1", -1, 0, 0);
    set_s(h, "b", "2", -1, 0, 0);
    set_s(h, "c", "3", -1, 0, 0);
    set_s(h, "b", "22", -1, 0, 0);             /* in place */
    hash_del(h, "a", 1);
    set_s(h, "a", "1", -1, 0, 0);              /* appended */
    assert_string_equal(order(h, 0), "b=22;c=3;a=1;");

    /* listpackex: soonest first, equal deadlines newest first, none last */
    hash_set_expire(h, "a", 1, 300);
    assert_string_equal(order(h, 0), "a=1;b=22;c=3;");
    hash_set_expire(h, "c", 1, 100);
    assert_string_equal(order(h, 0), "c=3;a=1;b=22;");
    hash_set_expire(h, "b", 1, 300);
    assert_string_equal(order(h, 0), "c=3;b=22;a=1;");
    set_s(h, "d", "4", -1, 0, 0);
    assert_string_equal(order(h, 0), "c=3;b=22;a=1;d=4;");
    set_s(h, "c", "33", -1, HASH_KEEPTTL, 0);  /* keeps deadline and place */
    assert_string_equal(order(h, 0), "c=33;b=22;a=1;d=4;");
    set_s(h, "c", "3", -1, 0, 0);              /* loses its deadline: to the end */
    assert_string_equal(order(h, 0), "b=22;a=1;d=4;c=3;");
    hash_set_expire(h, "b", 1, -1);
    assert_string_equal(order(h, 0), "a=1;d=4;c=3;b=22;");
    set_s(h, "e", "5", 200, 0, 0);
    assert_string_equal(order(h, 0), "e=5;a=1;d=4;c=3;b=22;");
    assert_int_equal(hash_volatile(h), 2);
    hash_free(h);
}

/* ---- expiry ------------------------------------------------------------------------ */

static void check_expiry(int table)
{
    hash *h = hash_new(7);
    if (table) hash_convert(h);
    set_s(h, "a", "1", 100, 0, 0);
    set_s(h, "b", "2", 200, 0, 0);
    set_s(h, "c", "3", -1, 0, 0);
    assert_int_equal(hash_volatile(h), 2);
    assert_get(h, "a", 100, "1");             /* alive at its deadline */
    assert_int_equal(hash_count_live(h, 150), 2);
    assert_int_equal(hash_len(h), 3);
    assert_string_equal(table ? "" : order(h, 150), table ? "" : "b=2;c=3;");
    assert_get(h, "a", 101, NULL);            /* lazily deleted */
    assert_int_equal(hash_len(h), 2);
    assert_int_equal(hash_expired(h), 1);
    assert_true(hash_peek(h, "b", 1, NULL, NULL, NULL));
    /* a replaced expired field is new, and KEEPTTL keeps no dead deadline */
    assert_int_equal(set_s(h, "b", "22", -1, HASH_KEEPTTL, 500), 1);
    assert_int_equal(hash_expired(h), 2);
    int64_t exp;
    assert_true(hash_get(h, "b", 1, 10000, NULL, NULL, &exp));
    assert_int_equal(exp, -1);
    /* KEEPTTL on a live field keeps it */
    set_s(h, "d", "4", 1000, 0, 0);
    assert_int_equal(set_s(h, "d", "44", -1, HASH_KEEPTTL, 500), 0);
    assert_true(hash_peek(h, "d", 1, NULL, NULL, &exp));
    assert_int_equal(exp, 1000);
    assert_int_equal(set_s(h, "d", "4", 2000, 0, 500), 0);
    assert_true(hash_peek(h, "d", 1, NULL, NULL, &exp));
    assert_int_equal(exp, 2000);
    /* a deleted field goes whether expired or not */
    set_s(h, "e", "5", 10, 0, 0);
    assert_int_equal(hash_del(h, "e", 1), 1);
    /* expire_all */
    set_s(h, "f", "6", 10, 0, 0);
    set_s(h, "g", "7", 20, 0, 0);
    assert_int_equal(hash_expire_all(h, 5), 0);
    assert_int_equal(hash_expire_all(h, 15), 1);
    assert_int_equal(hash_expire_all(h, 3000), 2);
    assert_int_equal(hash_len(h), 2);               /* b, c */
    assert_int_equal(hash_volatile(h), 0);
    assert_int_equal(hash_expired(h), 5);
    /* now < 0 never expires */
    set_s(h, "h", "8", 0, 0, -1);
    assert_get(h, "h", -1, "8");
    hash_free(h);
}

static void test_expiry(void **state)
{
    (void)state;
    check_expiry(0);
    check_expiry(1);
}

static void test_active_expire(void **state)
{
    (void)state;
    char f[32];
    for (int table = 0; table < 2; table++) {
        hash *h = hash_new(8);
        hash_limits big = {1000, 64};
        if (table) hash_convert(h);
        for (int i = 0; i < 200; i++) {
            snprintf(f, sizeof f, "f%d", i);
            hash_set(h, f, strlen(f), "v", 1, i % 2 ? 100 + i : -1, 0, 0, &big);
        }
        if (!table) {
            /* the expired ones are a run at the front, deleted up to max */
            assert_int_equal(hash_expire(h, 150, 10), 10);
            assert_int_equal(hash_expire(h, 150, 1000), 15);
            assert_int_equal(hash_expire(h, 150, 1000), 0);
        } else {
            size_t n = 0;
            for (int round = 0; round < 1000 && n < 25; round++) n += hash_expire(h, 150, 20);
            assert_int_equal(n, 25);
        }
        assert_int_equal(hash_expired(h), 25);
        assert_int_equal(hash_len(h), 175);
        assert_int_equal(hash_count_live(h, 150), 175);
        assert_int_equal(hash_count_live(h, 10000), 100);
        assert_int_equal(hash_expire_all(h, 10000), 75);
        assert_int_equal(hash_volatile(h), 0);
        hash_free(h);
    }
}

/* ---- scan, random, dup, memory ---------------------------------------------------- */

typedef struct seen {
    int hits[512];
    size_t calls;
    char last[32];
} seen;

static void count_hit(void *ud, const char *f, size_t flen, const char *v, size_t vlen, int64_t exp)
{
    seen *s = ud;
    char buf[32];
    (void)v;
    (void)vlen;
    (void)exp;
    assert_true(flen < sizeof buf);
    memcpy(buf, f, flen);
    buf[flen] = '\0';
    int i = atoi(buf + 1);
    assert_true(i >= 0 && i < 512);
    s->hits[i]++;
    s->calls++;
}

static hash *numbered(int n, int table)
{
    char f[32];
    hash *h = hash_new(9);
    hash_limits big = {1000, 64};
    if (table) hash_convert(h);
    for (int i = 0; i < n; i++) {
        snprintf(f, sizeof f, "f%d", i);
        hash_set(h, f, strlen(f), f, strlen(f), -1, 0, 0, &big);
    }
    return h;
}

static void test_scan(void **state)
{
    (void)state;
    for (int table = 0; table < 2; table++) {
        hash *h = numbered(300, table);
        hash_set_expire(h, "f7", 2, 5);
        seen s = {{0}, 0, ""};
        uint64_t cur = 0;
        int steps = 0;
        do {
            cur = hash_scan(h, cur, 10, 100, count_hit, &s);
            steps++;
        } while (cur != 0);
        assert_true(table ? steps > 1 : steps == 1);
        for (int i = 0; i < 300; i++) {
            if (i == 7) assert_int_equal(s.hits[i], 0);  /* expired: not reported */
            else assert_true(s.hits[i] >= 1);
        }
        hash_free(h);
    }
}

static void test_random(void **state)
{
    (void)state;
    uint64_t rng = 42;
    for (int table = 0; table < 2; table++) {
        for (int n = 1; n <= 300; n = n * 3 + 1) {
            hash *h = numbered(n, table);
            size_t counts[] = {1, 2, (size_t)n / 2 + 1, (size_t)n / 4 + 1, (size_t)n, (size_t)n + 5};
            for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
                seen s = {{0}, 0, ""};
                hash_random(h, counts[k], 1, &rng, count_hit, &s);
                size_t want = counts[k] < (size_t)n ? counts[k] : (size_t)n;
                assert_int_equal(s.calls, want);
                for (int i = 0; i < n; i++) assert_true(s.hits[i] <= 1);
                seen r = {{0}, 0, ""};
                hash_random(h, counts[k], 0, &rng, count_hit, &r);
                assert_int_equal(r.calls, counts[k]);
            }
            /* every field reachable, roughly evenly */
            seen s = {{0}, 0, ""};
            hash_random(h, (size_t)n * 200, 0, &rng, count_hit, &s);
            for (int i = 0; i < n; i++) assert_true(s.hits[i] > 20 && s.hits[i] < 1000);
            hash_free(h);
        }
    }
    /* count >= len: everything, in storage order */
    hash *h = numbered(5, 0);
    text t = {"", 0};
    hash_random(h, 9, 1, &rng, to_text, &t);
    assert_string_equal(t.s, "f0=f0;f1=f1;f2=f2;f3=f3;f4=f4;");
    hash_free(h);
}

static void test_dup_and_memory(void **state)
{
    (void)state;
    size_t base = mem_used();
    for (int table = 0; table < 2; table++) {
        hash *h = numbered(100, table);
        hash_set_expire(h, "f3", 2, 777);
        size_t m1 = hash_memory(h);
        assert_true(m1 > 100 * 4);
        hash *d = hash_dup(h, 99);
        assert_int_equal(hash_encoding(d), hash_encoding(h));
        assert_int_equal(hash_len(d), 100);
        assert_int_equal(hash_volatile(d), 1);
        int64_t exp;
        assert_true(hash_peek(d, "f3", 2, NULL, NULL, &exp));
        assert_int_equal(exp, 777);
        if (!table) assert_string_equal(order(d, 0), order(h, 0));
        hash_del(h, "f4", 2);                 /* independent */
        assert_true(hash_peek(d, "f4", 2, NULL, NULL, NULL));
        for (int i = 0; i < 100; i++) {
            char f[32];
            snprintf(f, sizeof f, "f%d", i);
            hash_del(d, f, strlen(f));
        }
        assert_true(hash_memory(d) < m1);
        hash_free(d);
        hash_free(h);
    }
    assert_int_equal(mem_used(), base);
}

/* hash_append rebuilds what hash_foreach gave, in the same order and
 * encoding, puts a field that cannot go last where it belongs, and
 * refuses repeats. */
typedef struct rebuild {
    hash *h;
    const hash_limits *lim;
} rebuild;

static void append_to(void *ud, const char *f, size_t flen, const char *v, size_t vlen,
                      int64_t exp)
{
    rebuild *r = ud;
    assert_int_equal(hash_append(r->h, f, flen, v, vlen, exp, r->lim), 0);
}

static void test_append(void **state)
{
    (void)state;
    hash *h = hash_new(10);
    set_s(h, "a", "1", 300, 0, 0);
    set_s(h, "b", "2", 300, 0, 0);
    set_s(h, "c", "3", -1, 0, 0);
    set_s(h, "d", "4", 100, 0, 0);
    assert_string_equal(order(h, 0), "d=4;b=2;a=1;c=3;");
    rebuild r = {hash_new(11), &LIM};
    hash_foreach(h, -1, append_to, &r);
    assert_int_equal(hash_encoding(r.h), HASH_COMPACT_TTL);
    assert_string_equal(order(r.h, 0), "d=4;b=2;a=1;c=3;");
    assert_int_equal(hash_volatile(r.h), 3);
    assert_int_equal(hash_append(r.h, "a", 1, "x", 1, -1, &LIM), -1);     /* repeat */
    assert_int_equal(hash_append(r.h, "e", 1, "x", 1, 500, &LIM), 0);     /* goes in order */
    assert_string_equal(order(r.h, 0), "d=4;b=2;a=1;e=x;c=3;");
    hash_free(r.h);
    r.h = hash_new(12);
    assert_int_equal(hash_append(r.h, "a", 1, "x", 1, 500, &LIM), 0);
    assert_int_equal(hash_append(r.h, "b", 1, "x", 1, 500, &LIM), 0);     /* ties keep order */
    assert_int_equal(hash_append(r.h, "c", 1, "x", 1, 400, &LIM), 0);
    assert_string_equal(order(r.h, 0), "c=x;a=x;b=x;");
    hash_free(r.h);
    /* plain order, and past the limits a table */
    hash_free(h);
    h = hash_new(13);
    for (int i = 0; i < 12; i++) {
        char f[8];
        snprintf(f, sizeof f, "f%d", 11 - i);
        set_s(h, f, "v", -1, 0, 0);
    }
    assert_int_equal(hash_encoding(h), HASH_TABLE);
    hash_limits big = {100, 100};
    r.h = hash_new(14);
    r.lim = &big;
    hash_foreach(h, -1, append_to, &r);
    assert_int_equal(hash_encoding(r.h), HASH_COMPACT);
    assert_int_equal(hash_len(r.h), 12);
    r.lim = &LIM;
    assert_int_equal(hash_append(r.h, "x", 1, "01234567890123456", 17, -1, &LIM), 0);
    assert_int_equal(hash_encoding(r.h), HASH_TABLE);
    assert_int_equal(hash_append(r.h, "x", 1, "y", 1, -1, &LIM), -1);
    hash_free(r.h);
    hash_free(h);
}

/* ---- against a model --------------------------------------------------------------- */

/* The model: an array in Redis's storage order while the hash is compact
 * (insertion order; by deadline once "ttl"), any order once a table. */
#define MF 64
typedef struct mfield {
    char f[8], v[24];
    size_t flen, vlen;
    int64_t exp;
} mfield;

typedef struct model {
    mfield e[MF];
    int n;
    int ttl, table;
    uint64_t expired;
} model;

static int m_find(const model *m, const char *f, size_t flen)
{
    for (int i = 0; i < m->n; i++)
        if (m->e[i].flen == flen && !memcmp(m->e[i].f, f, flen)) return i;
    return -1;
}

static void m_remove(model *m, int i)
{
    memmove(&m->e[i], &m->e[i + 1], (size_t)(m->n - i - 1) * sizeof m->e[0]);
    m->n--;
}

static int m_pos_for(const model *m, int64_t exp)
{
    if (exp < 0 || !m->ttl || m->table) return m->n;
    for (int i = 0; i < m->n; i++)
        if (m->e[i].exp < 0 || m->e[i].exp >= exp) return i;
    return m->n;
}

static void m_insert(model *m, int pos, const mfield *x)
{
    memmove(&m->e[pos + 1], &m->e[pos], (size_t)(m->n - pos) * sizeof m->e[0]);
    m->e[pos] = *x;
    m->n++;
}

static int m_expired(int64_t exp, int64_t now) { return exp >= 0 && now > exp; }

static void m_place(model *m, int i, mfield *x)
{
    if (i >= 0 && (!m->ttl || m->table || m->e[i].exp == x->exp)) {
        m->e[i] = *x;
        return;
    }
    if (i >= 0) m_remove(m, i);
    m_insert(m, m_pos_for(m, x->exp), x);
}

static int m_set(model *m, mfield *x, unsigned flags, int64_t now, const hash_limits *lim)
{
    if (!m->table && (x->flen > lim->max_value || x->vlen > lim->max_value)) m->table = 1;
    int i = m_find(m, x->f, x->flen);
    int live = i >= 0 && !m_expired(m->e[i].exp, now);
    if (i >= 0 && !live) m->expired++;
    if (flags & HASH_KEEPTTL) x->exp = live ? m->e[i].exp : -1;
    if (x->exp >= 0) m->ttl = 1;
    m_place(m, i, x);
    if (!m->table && (size_t)m->n > lim->max_entries) m->table = 1;
    return !live;
}

/* The hash's fields in the model's form, in storage order. */
typedef struct dump {
    mfield e[MF];
    int n;
} dump;

static void to_dump(void *ud, const char *f, size_t flen, const char *v, size_t vlen, int64_t exp)
{
    dump *d = ud;
    assert_true(d->n < MF && flen <= sizeof d->e[0].f && vlen <= sizeof d->e[0].v);
    mfield *x = &d->e[d->n++];
    memcpy(x->f, f, flen);
    memcpy(x->v, v, vlen);
    x->flen = flen;
    x->vlen = vlen;
    x->exp = exp;
}

static int same_field(const mfield *a, const mfield *b)
{
    return a->flen == b->flen && !memcmp(a->f, b->f, a->flen) && a->vlen == b->vlen &&
           !memcmp(a->v, b->v, a->vlen) && a->exp == b->exp;
}

static void m_check(model *m, hash *h)
{
    dump d = {.n = 0};
    hash_foreach(h, -1, to_dump, &d);
    assert_int_equal(d.n, m->n);
    assert_int_equal(hash_len(h), (size_t)m->n);
    assert_int_equal(hash_expired(h), m->expired);
    assert_int_equal(hash_encoding(h), m->table ? HASH_TABLE : m->ttl ? HASH_COMPACT_TTL : HASH_COMPACT);
    size_t vol = 0;
    for (int i = 0; i < m->n; i++) {
        vol += m->e[i].exp >= 0;
        if (!m->table) {
            assert_true(same_field(&d.e[i], &m->e[i]));
        } else {
            int j = 0;
            while (j < d.n && !same_field(&d.e[j], &m->e[i])) j++;
            assert_true(j < d.n);
        }
    }
    assert_int_equal(hash_volatile(h), vol);
}

static void test_model(void **state)
{
    (void)state;
    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    size_t base = mem_used();
    int rounds = 8;
#ifdef TEST_SLOW
    rounds = 2;
#endif
    for (int round = 0; round < rounds; round++) {
        hash_limits lim = {4 + test_rng_next(&rng) % 40, 4 + test_rng_next(&rng) % 16};
        hash *h = hash_new(round);
        model m = {.n = 0};
        int64_t now = 1000;
        for (int step = 0; step < 12500; step++) {
            uint64_t r = test_rng_next(&rng);
            mfield x;
            memset(&x, 0, sizeof x);
            x.flen = (size_t)snprintf(x.f, sizeof x.f, "k%u", (unsigned)(r % 48));
            x.vlen = (r >> 8) % 21;
            for (size_t j = 0; j < x.vlen; j++) x.v[j] = (char)('a' + (r >> (j % 40)) % 26);
            x.exp = (r >> 16) % 3 == 0 ? now + (int64_t)((r >> 20) % 50) : -1;
            if ((r >> 30) % 5 == 0) now += (int64_t)((r >> 33) % 20);
            int i = m_find(&m, x.f, x.flen);
            switch ((r >> 40) % 9) {
            case 0: case 1: case 2: {
                unsigned flags = (r >> 50) % 3 == 0 ? HASH_KEEPTTL : 0;
                mfield y = x;
                int want = m_set(&m, &y, flags, now, &lim);
                assert_int_equal(hash_set(h, x.f, x.flen, x.v, x.vlen, x.exp, flags, now, &lim), want);
                break;
            }
            case 3: {
                const char *v;
                size_t vlen;
                int live = i >= 0 && !m_expired(m.e[i].exp, now);
                int found = hash_get(h, x.f, x.flen, now, &v, &vlen, NULL);
                assert_int_equal(found, live);
                if (live) {
                    assert_int_equal(vlen, m.e[i].vlen);
                    assert_memory_equal(v, m.e[i].v, vlen);
                } else if (i >= 0) {
                    m_remove(&m, i);
                    m.expired++;
                }
                break;
            }
            case 4:
                assert_int_equal(hash_del(h, x.f, x.flen), i >= 0);
                if (i >= 0) m_remove(&m, i);
                break;
            case 5: {
                int64_t at = (r >> 52) % 4 == 0 ? -1 : x.exp >= 0 ? x.exp : now + 5;
                assert_int_equal(hash_set_expire(h, x.f, x.flen, at), i >= 0);
                if (i >= 0) {
                    mfield y = m.e[i];
                    if (at >= 0) m.ttl = 1;
                    if (y.exp != at) {
                        y.exp = at;
                        m_place(&m, i, &y);
                    }
                }
                break;
            }
            case 6:
                if (!m.table && !m.ttl && (r >> 52) % 8 == 0) {
                    hash_enable_ttl(h);
                    m.ttl = 1;
                }
                if ((r >> 55) % 64 == 0) {
                    hash_convert(h);
                    m.table = 1;
                }
                break;
            case 7: {
                size_t live = 0;
                for (int j = 0; j < m.n; j++) live += !m_expired(m.e[j].exp, now);
                assert_int_equal(hash_count_live(h, now), live);
                break;
            }
            case 8: {
                size_t got = (r >> 52) % 2 ? hash_expire_all(h, now) : hash_expire(h, now, 8);
                size_t gone = 0;
                /* the model drops exactly the fields the hash no longer has,
                 * each of which must have expired */
                for (int j = m.n - 1; j >= 0; j--) {
                    if (hash_peek(h, m.e[j].f, m.e[j].flen, NULL, NULL, NULL)) continue;
                    assert_true(m_expired(m.e[j].exp, now));
                    m_remove(&m, j);
                    gone++;
                }
                assert_int_equal(got, gone);
                m.expired += gone;
                break;
            }
            }
            m_check(&m, h);
        }
        hash_free(h);
    }
    assert_int_equal(mem_used(), base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basics),
        cmocka_unit_test(test_thresholds),
        cmocka_unit_test(test_orders),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_active_expire),
        cmocka_unit_test(test_scan),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_dup_and_memory),
        cmocka_unit_test(test_append),
        cmocka_unit_test(test_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
