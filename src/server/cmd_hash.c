/* cmd_hash.c -- the hash commands: Redis 7.0's (HSET, HGET, ... HSCAN,
 * HRANDFIELD, HMSET) with its replies and error texts, checked against a
 * real redis-server, and Redis 7.4-8's field expiry (HEXPIRE and family,
 * HTTL and family, HPERSIST, HGETDEL, HGETEX, HSETEX) with the texts and
 * the order of checks of Redis 8's t_hash.c.
 *
 * Every handler opens its key through hkeys.h (WRONGTYPE, creation), works
 * on the hash (hash.h), and ends with hkey_close (a read) or hkey_commit
 * (a change: WATCH, dirty, the log, the active-expiry registry).  Validate,
 * then mutate, then reply: where Redis checks the key's type before the
 * arguments (HGETDEL, HGETEX, HEXPIRE, HTTL, HPERSIST) so do we.
 *
 * Expired fields: a field whose deadline has passed is absent for every
 * command, and the commands that look one up delete it (lazy expiry) --
 * except HDEL, which counts it as deleted, and HLEN, which counts it, as
 * Redis does.  HTTL and HPERSIST answer -2 for it without deleting it.
 *
 * Loop thread only. */
#include "server.h"
#include "handlers.h"
#include "hkeys.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engram/hash.h"
#include "engram/mem.h"
#include "engram/util.h"

/* Redis's HFE_MAX_ABS_TIME_MSEC: field deadlines stay below 2^46 ms. */
#define HFE_MAX_MS ((1LL << 46) - 1)
#define LD_STR_MAX 5120                /* as cmd_kv.c: %.17Lf of any long double */
#define HRANDFIELD_CHUNK 1000          /* repeats emitted between output-limit checks */

static const char *const ERR_NUMFIELDS_MATCH =
    "ERR The `numfields` parameter must match the number of arguments";
static const char *const ERR_FIELDS_MISSING =
    "ERR Mandatory argument FIELDS is missing or not at the right position";
static const char *const ERR_NUMFIELDS_POSITIVE = "ERR Number of fields must be a positive integer";

/* ---- shared ---------------------------------------------------------------------- */

static void reply_value(client *c, hash *h, const char *f, size_t flen, int64_t now)
{
    const char *v;
    size_t vlen;
    if (h && hash_get(h, f, flen, now, &v, &vlen, NULL)) reply_bulk(&c->out, v, vlen);
    else reply_null(&c->out);
}

/* "FIELDS numfields field..." with FIELDS at argv[pos]: 1 and *n, or 0
 * after the error (nummsg: Redis's text for a bad count, which differs by
 * command). */
static int parse_fields(client *c, int pos, const char *nummsg, long long *n)
{
    if (!arg_is(c, pos, "fields")) {
        reply_error(&c->out, ERR_FIELDS_MISSING);
        return 0;
    }
    if (pos + 1 >= c->argc) {
        reply_err_arity(c);
        return 0;
    }
    if (!util_str2ll(c->argv[pos + 1], c->argvlen[pos + 1], n) || *n < 1) {
        reply_error(&c->out, nummsg);
        return 0;
    }
    if (*n != c->argc - pos - 2) {
        reply_error(&c->out, ERR_NUMFIELDS_MATCH);
        return 0;
    }
    return 1;
}

/* Redis's parseExpireTime: argv[i] as an absolute field deadline in ms
 * (seconds: a unit of 1000 ms; base: now for the relative forms). */
static int parse_hexpire_time(client *c, int i, int seconds, int64_t base, int64_t *at)
{
    long long v;
    if (!arg_ll(c, i, &v)) return 0;
    if (v < 0) {
        reply_error(&c->out, "ERR invalid expire time, must be >= 0");
        return 0;
    }
    if ((seconds && v > HFE_MAX_MS / 1000) || (seconds ? v * 1000 : v) > HFE_MAX_MS - base) {
        reply_errorf(&c->out, "ERR invalid expire time in '%s' command", c->cur->fullname);
        return 0;
    }
    *at = (seconds ? v * 1000 : v) + base;
    return 1;
}

static void reply_ints(client *c, long long n, long long v)
{
    reply_array(&c->out, n);
    for (long long i = 0; i < n; i++) reply_int(&c->out, v);
}

/* ---- HSET, HMSET, HSETNX, HGET, HMGET, HDEL, HLEN, HSTRLEN, HEXISTS -------------- */

static void hset_generic(client *c, int ok_reply)
{
    hkey k;
    long long created = 0;
    if (c->argc % 2 == 1) {
        reply_err_arity(c);
        return;
    }
    if (!hkey_open(&k, c, 0)) return;
    hash *h = hkey_create(&k);
    hash_limits lim = hkey_limits(c->srv);
    for (int j = 2; j < c->argc; j += 2)
        created += hash_set(h, c->argv[j], c->argvlen[j], c->argv[j + 1], c->argvlen[j + 1], -1, 0,
                            k.now, &lim);
    k.event = "hset";
    hkey_commit(&k, HKEY_LOG_VALUES, 2, 2, (c->argc - 2) / 2, NULL);
    if (ok_reply) reply_ok(&c->out);
    else reply_int(&c->out, created);
}

void cmd_hset(client *c) { hset_generic(c, 0); }
void cmd_hmset(client *c) { hset_generic(c, 1); }

void cmd_hsetnx(client *c)
{
    hkey k;
    if (!hkey_open(&k, c, 0)) return;
    if (k.h && hash_get(k.h, c->argv[2], c->argvlen[2], k.now, NULL, NULL, NULL)) {
        hkey_close(&k);
        reply_int(&c->out, 0);
        return;
    }
    hash_limits lim = hkey_limits(c->srv);
    hash_set(hkey_create(&k), c->argv[2], c->argvlen[2], c->argv[3], c->argvlen[3], -1, 0, k.now,
             &lim);
    k.event = "hset";
    hkey_commit(&k, HKEY_LOG_VALUES, 2, 2, 1, NULL);
    reply_int(&c->out, 1);
}

void cmd_hget(client *c)
{
    hkey k;
    if (!hkey_open(&k, c, 1)) return;
    reply_value(c, k.h, c->argv[2], c->argvlen[2], k.now);
    hkey_close(&k);
}

void cmd_hmget(client *c)
{
    hkey k;
    if (!hkey_open(&k, c, 1)) return;
    reply_array(&c->out, c->argc - 2);
    for (int j = 2; j < c->argc; j++) reply_value(c, k.h, c->argv[j], c->argvlen[j], k.now);
    hkey_close(&k);
}

void cmd_hdel(client *c)
{
    hkey k;
    long long deleted = 0;
    if (!hkey_open(&k, c, 0)) return;
    if (!k.h) {
        reply_int(&c->out, 0);
        return;
    }
    int n = c->argc - 2;
    unsigned char *gone = mem_calloc((size_t)n, 1);
    for (int j = 0; j < n; j++) {
        gone[j] = (unsigned char)hash_del(k.h, c->argv[2 + j], c->argvlen[2 + j]);
        deleted += gone[j];
    }
    k.event = "hdel";
    if (deleted) hkey_commit(&k, HKEY_LOG_VALUES, 2, 1, n, gone);
    else hkey_close(&k);
    mem_free(gone);
    reply_int(&c->out, deleted);
}

void cmd_hlen(client *c)
{
    hkey k;
    if (!hkey_open(&k, c, 1)) return;
    reply_int(&c->out, k.h ? (long long)hash_len(k.h) : 0);
}

void cmd_hstrlen(client *c)
{
    hkey k;
    size_t vlen = 0;
    if (!hkey_open(&k, c, 1)) return;
    if (k.h && !hash_get(k.h, c->argv[2], c->argvlen[2], k.now, NULL, &vlen, NULL)) vlen = 0;
    hkey_close(&k);
    reply_int(&c->out, (long long)vlen);
}

void cmd_hexists(client *c)
{
    hkey k;
    if (!hkey_open(&k, c, 1)) return;
    int found = k.h && hash_get(k.h, c->argv[2], c->argvlen[2], k.now, NULL, NULL, NULL);
    hkey_close(&k);
    reply_int(&c->out, found);
}

/* ---- HINCRBY, HINCRBYFLOAT --------------------------------------------------------- */

/* Store the new number's text as field argv[2], keeping the field's
 * deadline (Redis's HASH_SET_KEEP_TTL), and reply. */
static void store_number(client *c, hkey *k, const char *txt, size_t n)
{
    hash_limits lim = hkey_limits(c->srv);
    hash_set(hkey_create(k), c->argv[2], c->argvlen[2], txt, n, -1, HASH_KEEPTTL, k->now, &lim);
    hkey_commit(k, HKEY_LOG_VALUES, 2, 1, 1, NULL);
}

void cmd_hincrby(client *c)
{
    hkey k;
    long long by, v = 0;
    const char *cur;
    size_t clen;
    char buf[24];
    if (!arg_ll(c, 3, &by) || !hkey_open(&k, c, 0)) return;
    if (k.h && hash_get(k.h, c->argv[2], c->argvlen[2], k.now, &cur, &clen, NULL) &&
        !util_str2ll(cur, clen, &v)) {
        hkey_close(&k);
        reply_error(&c->out, "ERR hash value is not an integer");
        return;
    }
    if ((by < 0 && v < 0 && by < LLONG_MIN - v) || (by > 0 && v > 0 && by > LLONG_MAX - v)) {
        hkey_close(&k);
        reply_error(&c->out, "ERR increment or decrement would overflow");
        return;
    }
    v += by;
    k.event = "hincrby";
    store_number(c, &k, buf, util_ll2str(buf, sizeof buf, v));
    reply_int(&c->out, v);
}

void cmd_hincrbyfloat(client *c)
{
    hkey k;
    long double by, v = 0;
    const char *cur;
    size_t clen;
    char buf[LD_STR_MAX];
    if (!util_str2ld(c->argv[3], c->argvlen[3], &by)) {
        reply_error(&c->out, "ERR value is not a valid float");
        return;
    }
    if (isnan(by) || isinf(by)) {
        reply_error(&c->out, "ERR value is NaN or Infinity");
        return;
    }
    if (!hkey_open(&k, c, 0)) return;
    if (k.h && hash_get(k.h, c->argv[2], c->argvlen[2], k.now, &cur, &clen, NULL) &&
        !util_str2ld(cur, clen, &v)) {
        hkey_close(&k);
        reply_error(&c->out, "ERR hash value is not a float");
        return;
    }
    v += by;
    if (isnan(v) || isinf(v)) {
        hkey_close(&k);
        reply_error(&c->out, "ERR increment would produce NaN or Infinity");
        return;
    }
    size_t n = util_ld2str(buf, sizeof buf, v);
    k.event = "hincrbyfloat";
    store_number(c, &k, buf, n);
    reply_bulk(&c->out, buf, n);
}

/* ---- HGETALL, HKEYS, HVALS, HSCAN -------------------------------------------------- */

enum { EMIT_FIELDS = 1, EMIT_VALUES = 2 };

typedef struct emit_ctx {
    reply *out;
    unsigned what;               /* EMIT_* */
    const char *pat;             /* HSCAN MATCH (NULL: all) */
    size_t plen;
    long long n;                 /* elements emitted (fields and values) */
} emit_ctx;

static void emit_field(void *ud, const char *f, size_t flen, const char *v, size_t vlen,
                       int64_t exp)
{
    emit_ctx *x = ud;
    (void)exp;
    if (x->pat && !util_glob_match(x->pat, x->plen, f, flen, 0)) return;
    if (x->what & EMIT_FIELDS) {
        reply_bulk(x->out, f, flen);
        x->n++;
    }
    if (x->what & EMIT_VALUES) {
        reply_bulk(x->out, v, vlen);
        x->n++;
    }
}

static void hgetall_generic(client *c, unsigned what)
{
    hkey k;
    int pairs = what == (EMIT_FIELDS | EMIT_VALUES);
    if (!hkey_open(&k, c, 1)) return;
    emit_ctx x = {&c->out, what, NULL, 0, 0};
    size_t h = reply_defer(&c->out);
    if (k.h) hash_foreach(k.h, k.now, emit_field, &x);
    if (pairs) reply_defer_map(&c->out, h, x.n / 2);
    else reply_defer_array(&c->out, h, x.n);
}

void cmd_hgetall(client *c) { hgetall_generic(c, EMIT_FIELDS | EMIT_VALUES); }
void cmd_hkeys(client *c) { hgetall_generic(c, EMIT_FIELDS); }
void cmd_hvals(client *c) { hgetall_generic(c, EMIT_VALUES); }

/* HSCAN key cursor [MATCH pattern] [COUNT count] [NOVALUES]: the cursor is
 * checked first, then the key, then the options (Redis's order). */
void cmd_hscan(client *c)
{
    hkey k;
    uint64_t cursor;
    long long count = 10;
    emit_ctx x = {NULL, EMIT_FIELDS | EMIT_VALUES, NULL, 0, 0};
    if (!arg_cursor(c, 2, &cursor) || !hkey_open(&k, c, 1)) return;
    if (!k.h) {
        reply_array(&c->out, 2);
        reply_bulk(&c->out, "0", 1);
        reply_array(&c->out, 0);
        return;
    }
    for (int j = 3; j < c->argc;) {
        if (arg_is(c, j, "count") && j + 1 < c->argc) {
            if (!arg_ll(c, j + 1, &count)) return;
            if (count < 1) goto syntax;
            j += 2;
        } else if (arg_is(c, j, "match") && j + 1 < c->argc) {
            x.pat = c->argv[j + 1];
            x.plen = c->argvlen[j + 1];
            j += 2;
        } else if (arg_is(c, j, "novalues")) {
            x.what = EMIT_FIELDS;
            j++;
        } else {
            goto syntax;
        }
    }
    if (x.pat && x.plen == 1 && x.pat[0] == '*') x.pat = NULL;
    /* The cursor heads the reply but is known only after the step. */
    reply items;
    reply_init(&items, c->out.proto);
    x.out = &items;
    cursor = hash_scan(k.h, cursor, (size_t)count, k.now, emit_field, &x);
    reply_scan(c, cursor, &items, x.n);
    return;
syntax:
    reply_err_syntax(c);
}

/* ---- HRANDFIELD ------------------------------------------------------------------ */

typedef struct rand_ctx {
    client *c;
    int withvalues;
} rand_ctx;

static void emit_random(void *ud, const char *f, size_t flen, const char *v, size_t vlen,
                        int64_t exp)
{
    rand_ctx *r = ud;
    (void)exp;
    if (r->withvalues && r->c->resp > 2) reply_array(&r->c->out, 2);
    reply_bulk(&r->c->out, f, flen);
    if (r->withvalues) reply_bulk(&r->c->out, v, vlen);
}

/* HRANDFIELD key [count [WITHVALUES]]: every expired field goes first (as
 * Redis 7.4); a positive count gives distinct fields, a negative one may
 * repeat; RESP3 pairs a field with its value. */
void cmd_hrandfield(client *c)
{
    static uint64_t rng;         /* the loop thread's, seeded once */
    hkey k;
    long long l = 0;
    int withcount = c->argc >= 3, withvalues = 0;
    if (!rng) rng = (uint64_t)util_wall_us() ^ 0x9e3779b97f4a7c15ULL;
    if (withcount) {
        if (!arg_ll(c, 2, &l)) return;
        if (l < -LLONG_MAX) {
            reply_errorf(&c->out, "ERR value is out of range, value must between %lld and %lld",
                         -LLONG_MAX, LLONG_MAX);
            return;
        }
        if (c->argc > 4 || (c->argc == 4 && !arg_is(c, 3, "withvalues"))) {
            reply_err_syntax(c);
            return;
        }
        withvalues = c->argc == 4;
        if (withvalues && (l < -LLONG_MAX / 2 || l > LLONG_MAX / 2)) {
            reply_error(&c->out, "ERR value is out of range");
            return;
        }
    }
    if (!hkey_open(&k, c, 1)) return;
    if (k.h) {
        hash_expire_all(k.h, k.now);
        hkey_close(&k);
    }
    if (!k.h || (withcount && l == 0)) {
        if (withcount) reply_array(&c->out, 0);
        else reply_null(&c->out);
        return;
    }
    rand_ctx r = {c, withvalues};
    size_t size = hash_len(k.h);
    if (!withcount) {
        hash_random(k.h, 1, 1, &rng, emit_random, &r);
        return;
    }
    int unique = l > 0;
    unsigned long long count = unique ? (unsigned long long)l : (unsigned long long)-l;
    unsigned long long replies = unique && count > size ? size : count;
    reply_array(&c->out, (long long)(withvalues && c->resp == 2 ? replies * 2 : replies));
    if (unique) {
        hash_random(k.h, (size_t)count, 1, &rng, emit_random, &r);
        return;
    }
    /* repeats may be asked for by the billion: stop if the output limit
     * closes the client meanwhile (Redis checks CLIENT_CLOSE_ASAP) */
    while (count) {
        size_t chunk = count > HRANDFIELD_CHUNK ? HRANDFIELD_CHUNK : (size_t)count;
        hash_random(k.h, chunk, 0, &rng, emit_random, &r);
        count -= chunk;
        if (count && client_check_obuf(c)) break;
    }
}

/* ---- HEXPIRE family, HTTL family, HPERSIST --------------------------------------- */

enum { HFE_NX = 1, HFE_XX = 2, HFE_GT = 4, HFE_LT = 8 };

/* HEXPIRE key time [NX|XX|GT|LT] FIELDS numfields field...: per field -2
 * no such field, 0 condition not met, 1 set, 2 deleted (a deadline not in
 * the future).  A field without a deadline meets LT and NX, not XX or GT
 * (Redis 8). */
static void hexpire_generic(client *c, int seconds, int absolute)
{
    hkey k;
    int64_t at;
    long long n;
    unsigned cond = 0;
    int pos = 3;
    if (!hkey_open(&k, c, 0)) return;
    if (!parse_hexpire_time(c, 2, seconds, absolute ? 0 : k.now, &at)) return;
    static const struct { const char *name; unsigned flag; } conds[] = {
        {"nx", HFE_NX}, {"xx", HFE_XX}, {"gt", HFE_GT}, {"lt", HFE_LT}};
    for (size_t i = 0; i < sizeof conds / sizeof conds[0]; i++)
        if (arg_is(c, 3, conds[i].name)) {
            cond = conds[i].flag;
            pos = 4;
        }
    if (!parse_fields(c, pos, "ERR Parameter `numFields` should be greater than 0", &n)) return;
    int first = pos + 2;
    if (!k.h) {
        reply_ints(c, n, -2);
        return;
    }
    hash_enable_ttl(k.h);
    unsigned char *changed = mem_calloc((size_t)n, 1);
    int any = 0;
    reply_array(&c->out, n);
    for (long long i = 0; i < n; i++) {
        const char *f = c->argv[first + i];
        size_t flen = c->argvlen[first + i];
        int64_t prev;
        int rc;
        if (!hash_get(k.h, f, flen, k.now, NULL, NULL, &prev)) {
            rc = -2;
        } else if ((prev == -1 && (cond & (HFE_XX | HFE_GT))) ||
                   (prev != -1 && (((cond & HFE_GT) && prev >= at) ||
                                   ((cond & HFE_LT) && prev <= at) || (cond & HFE_NX)))) {
            rc = 0;
        } else if (at <= k.now) {
            hash_del(k.h, f, flen);
            k.s->st.expired_subkeys++;
            rc = 2;
        } else {
            hash_set_expire(k.h, f, flen, at);
            rc = 1;
        }
        changed[i] = rc > 0;
        any |= rc > 0;
        reply_int(&c->out, rc);
    }
    k.event = "hexpire";
    if (any) hkey_commit(&k, HKEY_LOG_TTLS, first, 1, (int)n, changed);
    else hkey_close(&k);
    mem_free(changed);
}

void cmd_hexpire(client *c) { hexpire_generic(c, 1, 0); }
void cmd_hpexpire(client *c) { hexpire_generic(c, 0, 0); }
void cmd_hexpireat(client *c) { hexpire_generic(c, 1, 1); }
void cmd_hpexpireat(client *c) { hexpire_generic(c, 0, 1); }

/* HTTL key FIELDS numfields field...: -2 no such field (or expired), -1 no
 * deadline, else the time left (seconds rounded up, as Redis) or the
 * deadline itself.  Nothing is deleted. */
static void httl_generic(client *c, int seconds, int absolute)
{
    hkey k;
    long long n;
    if (!hkey_open(&k, c, 1) || !parse_fields(c, 2, ERR_NUMFIELDS_POSITIVE, &n)) return;
    int64_t base = absolute ? 0 : k.now;
    reply_array(&c->out, n);
    for (long long i = 0; i < n; i++) {
        int64_t exp;
        if (!k.h || !hash_peek(k.h, c->argv[4 + i], c->argvlen[4 + i], NULL, NULL, &exp) ||
            (exp != -1 && k.now > exp))
            reply_int(&c->out, -2);
        else if (exp == -1) reply_int(&c->out, -1);
        else reply_int(&c->out, seconds ? (exp + 999 - base) / 1000 : exp - base);
    }
}

void cmd_httl(client *c) { httl_generic(c, 1, 0); }
void cmd_hpttl(client *c) { httl_generic(c, 0, 0); }
void cmd_hexpiretime(client *c) { httl_generic(c, 1, 1); }
void cmd_hpexpiretime(client *c) { httl_generic(c, 0, 1); }

/* HPERSIST key FIELDS numfields field...: -2 no such field (or expired),
 * -1 no deadline, 1 deadline removed. */
void cmd_hpersist(client *c)
{
    hkey k;
    long long n;
    int any = 0;
    if (!hkey_open(&k, c, 0) || !parse_fields(c, 2, ERR_NUMFIELDS_POSITIVE, &n)) return;
    if (!k.h) {
        reply_ints(c, n, -2);
        return;
    }
    unsigned char *changed = mem_calloc((size_t)n, 1);
    reply_array(&c->out, n);
    for (long long i = 0; i < n; i++) {
        const char *f = c->argv[4 + i];
        size_t flen = c->argvlen[4 + i];
        int64_t exp;
        int rc;
        if (!hash_peek(k.h, f, flen, NULL, NULL, &exp) || (exp != -1 && k.now > exp)) {
            rc = -2;
        } else if (exp == -1) {
            rc = -1;
        } else {
            hash_set_expire(k.h, f, flen, -1);
            rc = 1;
        }
        changed[i] = rc == 1;
        any |= rc == 1;
        reply_int(&c->out, rc);
    }
    k.event = "hpersist";
    if (any) hkey_commit(&k, HKEY_LOG_TTLS, 4, 1, (int)n, changed);
    else hkey_close(&k);
    mem_free(changed);
}

/* ---- HGETDEL, HGETEX, HSETEX ------------------------------------------------------ */

/* HGETDEL key FIELDS numfields field...: the values (nil if absent), and
 * the fields go; so does a hash left without fields. */
void cmd_hgetdel(client *c)
{
    hkey k;
    long long n;
    long long deleted = 0;
    if (!hkey_open(&k, c, 0) || !parse_fields(c, 2, ERR_NUMFIELDS_POSITIVE, &n)) return;
    unsigned char *gone = mem_calloc((size_t)n, 1);
    reply_array(&c->out, n);
    for (long long i = 0; i < n; i++) {
        const char *f = c->argv[4 + i], *v;
        size_t flen = c->argvlen[4 + i], vlen;
        if (k.h && hash_get(k.h, f, flen, k.now, &v, &vlen, NULL)) {
            reply_bulk(&c->out, v, vlen);      /* copied before the field goes */
            hash_del(k.h, f, flen);
            gone[i] = 1;
            deleted++;
        } else {
            reply_null(&c->out);
        }
    }
    k.event = "hdel";
    if (deleted) hkey_commit(&k, HKEY_LOG_VALUES, 4, 1, (int)n, gone);
    else hkey_close(&k);
    mem_free(gone);
}

/* Expiry options of HGETEX and HSETEX. */
enum {
    HX_EX = 1, HX_PX = 2, HX_EXAT = 4, HX_PXAT = 8, HX_PERSIST = 16, HX_KEEPTTL = 32,
    HX_FXX = 64, HX_FNX = 128,
};
#define HX_TIME (HX_EX | HX_PX | HX_EXAT | HX_PXAT)

static unsigned hx_time_flag(const client *c, int i)
{
    if (arg_is(c, i, "ex")) return HX_EX;
    if (arg_is(c, i, "px")) return HX_PX;
    if (arg_is(c, i, "exat")) return HX_EXAT;
    if (arg_is(c, i, "pxat")) return HX_PXAT;
    return 0;
}

static int hx_parse_time(client *c, int i, unsigned flag, int64_t now, int64_t *at)
{
    return parse_hexpire_time(c, i, (flag & (HX_EX | HX_EXAT)) != 0,
                              (flag & (HX_EX | HX_PX)) ? now : 0, at);
}

/* HGETEX key [EX s|PX ms|EXAT ts|PXAT ms-ts|PERSIST] FIELDS numfields
 * field...: the values, and the fields found get the new deadline (one
 * not in the future deletes them) or lose theirs. */
void cmd_hgetex(client *c)
{
    hkey k;
    long long n;
    int64_t at = -1;
    int pos = 2;
    if (!hkey_open(&k, c, 0)) return;
    unsigned cond = hx_time_flag(c, 2);
    if (cond) {
        if (!hx_parse_time(c, 3, cond, k.now, &at)) return;
        pos = 4;
    } else if (arg_is(c, 2, "persist")) {
        cond = HX_PERSIST;
        pos = 3;
    }
    if (!parse_fields(c, pos, ERR_NUMFIELDS_POSITIVE, &n)) return;
    int first = pos + 2;
    if (!k.h) {
        reply_array(&c->out, n);
        for (long long i = 0; i < n; i++) reply_null(&c->out);
        return;
    }
    if (cond) hash_enable_ttl(k.h);
    unsigned char *changed = mem_calloc((size_t)n, 1);
    int any = 0;
    reply_array(&c->out, n);
    for (long long i = 0; i < n; i++) {
        const char *f = c->argv[first + i], *v;
        size_t flen = c->argvlen[first + i], vlen;
        int64_t exp;
        if (!hash_get(k.h, f, flen, k.now, &v, &vlen, &exp)) {
            reply_null(&c->out);
            continue;
        }
        reply_bulk(&c->out, v, vlen);
        if (cond == HX_PERSIST) {
            if (exp == -1) continue;
            hash_set_expire(k.h, f, flen, -1);
        } else if (cond && at <= k.now) {
            hash_del(k.h, f, flen);
            k.s->st.expired_subkeys++;
        } else if (cond) {
            hash_set_expire(k.h, f, flen, at);
        } else {
            continue;
        }
        changed[i] = 1;
        any = 1;
    }
    k.event = cond == HX_PERSIST ? "hpersist" : "hexpire";
    if (any) hkey_commit(&k, HKEY_LOG_TTLS, first, 1, (int)n, changed);
    else hkey_close(&k);
    mem_free(changed);
}

/* Redis's hsetexParseArgs: options in any order up to FIELDS, each checked
 * as it comes; *first: the first field; *n: the pairs. */
static int hsetex_parse(client *c, unsigned *flags, int64_t *at, int *first, long long *n)
{
    static const char *const ERR_TIME =
        "ERR Only one of EX, PX, EXAT, PXAT or KEEPTTL arguments can be specified";
    int64_t now = srv_now_ms(c->srv);
    *flags = 0;
    for (int i = 2; i < c->argc; i++) {
        unsigned t = hx_time_flag(c, i);
        if (arg_is(c, i, "fields")) {
            if (i >= c->argc - 3) break;
            if (!util_str2ll(c->argv[i + 1], c->argvlen[i + 1], n) || *n < 1 || *n > INT_MAX) {
                reply_error(&c->out, "ERR invalid number of fields");
                return 0;
            }
            long long rest = c->argc - i - 2;
            if (rest % 2 || *n != rest / 2) break;
            *first = i + 2;
            return 1;
        } else if (t || arg_is(c, i, "keepttl")) {
            if (*flags & (HX_TIME | HX_KEEPTTL)) {
                reply_error(&c->out, ERR_TIME);
                return 0;
            }
            if (!t) {
                *flags |= HX_KEEPTTL;
                continue;
            }
            if (i >= c->argc - 1) {
                reply_error(&c->out, "ERR missing expire time");
                return 0;
            }
            *flags |= t;
            if (!hx_parse_time(c, ++i, t, now, at)) return 0;
        } else if (arg_is(c, i, "fxx") || arg_is(c, i, "fnx")) {
            if (*flags & (HX_FXX | HX_FNX)) {
                reply_error(&c->out, "ERR Only one of FXX or FNX arguments can be specified");
                return 0;
            }
            *flags |= arg_is(c, i, "fxx") ? HX_FXX : HX_FNX;
        } else {
            reply_errorf(&c->out, "ERR unknown argument: %.*s", (int)c->argvlen[i], c->argv[i]);
            return 0;
        }
    }
    reply_err_arity(c);
    return 0;
}

/* HSETEX key [FNX|FXX] [EX s|PX ms|EXAT ts|PXAT ms-ts|KEEPTTL] FIELDS
 * numfields field value...: 1 when every field was set, 0 when FNX / FXX
 * refused (then nothing changes).  Without an expiry option the fields
 * lose their deadlines; a deadline not in the future deletes them. */
void cmd_hsetex(client *c)
{
    hkey k;
    unsigned flags;
    int64_t at = -1;
    int first;
    long long n;
    if (!hsetex_parse(c, &flags, &at, &first, &n) || !hkey_open(&k, c, 0)) return;
    if (!k.h && (flags & HX_FXX)) {
        reply_int(&c->out, 0);
        return;
    }
    if (k.h && (flags & (HX_FXX | HX_FNX))) {
        long long found = 0;
        for (long long i = 0; i < n; i++) {
            int here = hash_get(k.h, c->argv[first + 2 * i], c->argvlen[first + 2 * i], k.now,
                                NULL, NULL, NULL);
            found += here;
            if (here == !!(flags & HX_FNX)) break;
        }
        if (((flags & HX_FNX) && found) || ((flags & HX_FXX) && found != n)) {
            hkey_close(&k);
            reply_int(&c->out, 0);
            return;
        }
    }
    hash *h = hkey_create(&k);
    hash_limits lim = hkey_limits(c->srv);
    if (flags & HX_TIME) hash_enable_ttl(h);
    for (long long i = 0; i < n; i++) {
        const char *f = c->argv[first + 2 * i];
        size_t flen = c->argvlen[first + 2 * i];
        if ((flags & HX_TIME) && at <= k.now) {
            hash_set(h, f, flen, c->argv[first + 2 * i + 1], c->argvlen[first + 2 * i + 1], -1, 0,
                     k.now, &lim);
            hash_del(h, f, flen);
            k.s->st.expired_subkeys++;
            continue;
        }
        hash_set(h, f, flen, c->argv[first + 2 * i + 1], c->argvlen[first + 2 * i + 1],
                 (flags & HX_TIME) ? at : -1, (flags & HX_KEEPTTL) ? HASH_KEEPTTL : 0, k.now,
                 &lim);
    }
    k.event = "hset";
    k.event2 = (flags & HX_TIME) ? "hexpire" : NULL;
    hkey_commit(&k, HKEY_LOG_VALUES, first, 2, (int)n, NULL);
    reply_int(&c->out, 1);
}
