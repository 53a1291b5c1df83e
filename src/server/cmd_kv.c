/* cmd_kv.c -- the key-value commands: strings (GET, SET and friends, the
 * counters, ranges), key lifetime (EXPIRE family, TTL family, PERSIST) and
 * the keyspace (DEL, EXISTS, KEYS, SCAN, RENAME, COPY, FLUSH*).  Replies
 * and error texts are Redis 7.0's, checked against a real redis-server.
 *
 * Every handler follows the server.h contract: parse and validate all
 * arguments, then mutate, then reply once.  Two wrinkles:
 *   - Commands that return the old value (SET ... GET, GETSET, GETDEL,
 *     GETEX) reply before they mutate, because a kv pointer to the old value
 *     dies with the mutation; by then nothing can fail any more.
 *   - A lookup (kv_find) may delete an expired key, which invalidates other
 *     kv pointers; handlers that look up two keys (RENAME, COPY) look up the
 *     destination first and keep only its existence, never its pointer.
 *
 * Expiry: all "now" decisions use srv_now_ms(), fixed for the command.  A
 * key is expired when now > deadline (Redis keyIsExpired); a deadline set to
 * <= now (EXPIRE with a past time, SET/GETEX EXAT in the past) deletes the
 * key at once, as Redis's checkAlreadyExpired does.
 *
 * Speed: GET, plain SET, INCR and MSET do one hash lookup per key and no
 * allocation beyond kv's own; option parsing is skipped when there are no
 * options.
 *
 * Loop thread only (the RANDOMKEY generator below is the file's one piece of
 * state, for the same reason). */
#include "server.h"
#include "handlers.h"
#include "evict.h"
#include "ftspec.h"
#include "hkeys.h"
#include "notify.h"
#include "persist.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engram/lfu.h"
#include "engram/mem.h"
#include "engram/util.h"

/* The first argument (the key) as the (pointer, length) pair kv takes. */
#define KEY(c) (c)->argv[1], (c)->argvlen[1]

/* A write's lookup: as Redis's lookupKeyWrite, an access for the LRU / LFU
 * clocks (evict.h; a store only under those policies). */
static kv_entry *find_write(client *c, kv *db, const char *key, size_t klen)
{
    kv_entry *e = kv_find(db, key, klen, srv_now_ms(c->srv));
    if (e) evict_touch(c->srv, e, c->srv->clock_mode);
    return e;
}

/* Redis's MAX_LONG_DOUBLE_CHARS: room for %.17Lf of the largest long double. */
#define LD_STR_MAX 5120

/* ---- shared helpers ------------------------------------------------------ */

static int key_expired(const kv_entry *e, int64_t now)
{
    int64_t at = kv_get_expire(e);
    return at >= 0 && now > at;
}

/* A key that holds something other than a string: reply WRONGTYPE and
 * return 1 (string commands then stop). */
static int wrongtype(client *c, const kv_entry *e)
{
    if (!e || kv_type(e) == KV_STRING) return 0;
    reply_error(&c->out, WRONGTYPE_ERR);
    return 1;
}

/* Keyspace events (notify.h) for a string the command wrote: "new" when it
 * created the key, then its own event. */
static void notify_written(client *c, const char *key, size_t klen, int created, const char *event)
{
    if (created) notify_key(c, NOTIFY_NEW, "new", key, klen);
    notify_key(c, NOTIFY_STRING, event, key, klen);
}

/* A read found no key ("keymiss"; key_lookup_read sends it itself). */
static void notify_miss(client *c, const kv_entry *e)
{
    if (!e) notify_key(c, NOTIFY_KEY_MISS, "keymiss", KEY(c));
}

/* A write that skips the lookup overwrites a stale key in place.  With
 * keyspace events on, look it up first, so it is reaped as Redis reaps it:
 * "expired", then the write's "new". */
static void reap_for_events(client *c, kv *db, const char *key, size_t klen)
{
    if (c->srv->cfg.notify_keyspace_events) kv_find(db, key, klen, srv_now_ms(c->srv));
}

/* SET semantics: the new value replaces the old one and drops its TTL.
 * kv_set keeps the TTL of an existing key (even a stale one), hence the
 * explicit clear. */
static void set_plain(client *c, kv *db, const char *key, size_t klen,
                      const char *val, size_t vlen)
{
    int created;
    reap_for_events(c, db, key, klen);
    kv_entry *e = kv_set(db, key, klen, val, vlen, &created);
    if (!created) evict_touch(c->srv, e, c->srv->clock_mode);   /* an overwrite is an access */
    if (kv_get_expire(e) != -1) kv_set_expire(db, e, -1);
    key_modified(c->srv, c->db, key, klen);
    notify_written(c, key, klen, created, "set");
}

/* Give e the absolute deadline at_ms, or delete it when the deadline is
 * already due (Redis: an EXPIRE in the past is a DEL).  Returns 1 if it
 * deleted e. */
static int apply_deadline(client *c, kv *db, kv_entry *e, int64_t at_ms)
{
    if (at_ms > srv_now_ms(c->srv)) {
        kv_set_expire(db, e, at_ms);
        return 0;
    }
    kv_del_entry(db, e);
    return 1;
}

/* Redis's checkStringLength: would size + add bytes exceed
 * proto-max-bulk-len?  Replies the error and returns 0 if so. */
static int check_string_len(client *c, unsigned long long size, unsigned long long add)
{
    unsigned long long max = (unsigned long long)srv_config(c->srv)->proto_max_bulk_len;
    if (size > max || add > max - size) {
        reply_error(&c->out, "ERR string exceeds maximum allowed size (proto-max-bulk-len)");
        return 0;
    }
    return 1;
}

static void reply_invalid_expire(client *c, const char *cmdname)
{
    reply_errorf(&c->out, "ERR invalid expire time in '%s' command", cmdname);
}

/* ---- SET / GETEX options ------------------------------------------------- */

enum {
    SETOPT_NX = 1 << 0,
    SETOPT_XX = 1 << 1,
    SETOPT_GET = 1 << 2,
    SETOPT_KEEPTTL = 1 << 3,
    SETOPT_PERSIST = 1 << 4,   /* GETEX only */
    SETOPT_EX = 1 << 5,
    SETOPT_PX = 1 << 6,
    SETOPT_EXAT = 1 << 7,
    SETOPT_PXAT = 1 << 8,
};
#define SETOPT_EXPIRE (SETOPT_EX | SETOPT_PX | SETOPT_EXAT | SETOPT_PXAT)

typedef struct set_opts {
    unsigned flags;
    int expire_arg;            /* argv index of the EX/PX/EXAT/PXAT value, 0 = none */
} set_opts;

/* Redis's parseExtendedStringArgumentsOrReply: options from argv[first] on,
 * any order, case-insensitive.  A repeated option is allowed (the last
 * expiry wins); conflicting ones (NX+XX, two expiry units, KEEPTTL or
 * PERSIST with an expiry) and options the command does not take are
 * "syntax error".  is_set selects SET's options, else GETEX's. */
static int parse_set_opts(client *c, int first, int is_set, set_opts *o)
{
    static const struct { const char *name; unsigned flag; } units[] = {
        {"ex", SETOPT_EX}, {"px", SETOPT_PX}, {"exat", SETOPT_EXAT}, {"pxat", SETOPT_PXAT},
    };

    o->flags = 0;
    o->expire_arg = 0;
    for (int j = first; j < c->argc; j++) {
        unsigned f = o->flags;
        int matched = 0;

        if (is_set && arg_is(c, j, "nx") && !(f & SETOPT_XX)) {
            o->flags |= SETOPT_NX;
            continue;
        }
        if (is_set && arg_is(c, j, "xx") && !(f & SETOPT_NX)) {
            o->flags |= SETOPT_XX;
            continue;
        }
        if (is_set && arg_is(c, j, "get")) {
            o->flags |= SETOPT_GET;
            continue;
        }
        if (is_set && arg_is(c, j, "keepttl") && !(f & (SETOPT_PERSIST | SETOPT_EXPIRE))) {
            o->flags |= SETOPT_KEEPTTL;
            continue;
        }
        if (!is_set && arg_is(c, j, "persist") && !(f & (SETOPT_KEEPTTL | SETOPT_EXPIRE))) {
            o->flags |= SETOPT_PERSIST;
            continue;
        }
        for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
            unsigned others = SETOPT_EXPIRE & ~units[u].flag;
            if (arg_is(c, j, units[u].name) && !(f & (SETOPT_KEEPTTL | SETOPT_PERSIST | others)) &&
                j + 1 < c->argc) {
                o->flags |= units[u].flag;
                o->expire_arg = ++j;
                matched = 1;
                break;
            }
        }
        if (!matched) {
            reply_err_syntax(c);
            return 0;
        }
    }
    return 1;
}

/* Redis's getExpireMillisecondsOrReply: the value of argv[i] as an absolute
 * deadline in ms.  It must be a positive integer, and neither the unit
 * conversion nor adding "now" (EX/PX) may overflow. */
static int parse_set_expire(client *c, int i, unsigned flags, const char *cmdname, int64_t *at_ms)
{
    long long v;

    if (!arg_ll(c, i, &v)) return 0;
    if (v <= 0 || ((flags & (SETOPT_EX | SETOPT_EXAT)) && v > LLONG_MAX / 1000)) {
        reply_invalid_expire(c, cmdname);
        return 0;
    }
    if (flags & (SETOPT_EX | SETOPT_EXAT)) v *= 1000;
    if (flags & (SETOPT_EX | SETOPT_PX)) {
        int64_t now = srv_now_ms(c->srv);
        if (v > LLONG_MAX - now) {
            reply_invalid_expire(c, cmdname);
            return 0;
        }
        v += now;
    }
    *at_ms = v;
    return 1;
}

/* ---- strings ------------------------------------------------------------- */

static void reply_entry_value(client *c, const kv_entry *e)
{
    size_t vlen;
    const char *v;

    if (!e) {
        reply_null(&c->out);
        return;
    }
    v = kv_val(e, &vlen);
    reply_bulk(&c->out, v, vlen);
}

void cmd_get(client *c)
{
    kv_entry *e = key_lookup_read(c, KEY(c));
    if (!wrongtype(c, e)) reply_entry_value(c, e);
}

/* SET key value [NX|XX] [GET] [EX s|PX ms|EXAT ts|PXAT ms-ts|KEEPTTL] */
void cmd_set(client *c)
{
    kv *db = client_kv(c);
    set_opts o;
    int64_t at = -1;
    kv_entry *e;

    if (c->argc == 3) {        /* the hot path: no options, one lookup */
        set_plain(c, db, KEY(c), c->argv[2], c->argvlen[2]);
        reply_ok(&c->out);
        return;
    }
    if (!parse_set_opts(c, 3, 1, &o)) return;
    if (o.expire_arg && !parse_set_expire(c, o.expire_arg, o.flags, "set", &at)) return;

    /* KEEPTTL needs the lookup too: it reaps a stale key, whose TTL must not
     * be kept by the overwrite. */
    if (o.flags & (SETOPT_NX | SETOPT_XX | SETOPT_GET | SETOPT_KEEPTTL)) {
        e = find_write(c, db, KEY(c));
        if (o.flags & SETOPT_GET) notify_miss(c, e);
        /* GET replies before the overwrite kills the old value (7.0 allows
         * NX with GET: the old value is returned and nothing is set); a
         * value that is not a string stops the command. */
        if ((o.flags & SETOPT_GET) && wrongtype(c, e)) return;
        if (o.flags & SETOPT_GET) reply_entry_value(c, e);
        if (((o.flags & SETOPT_NX) && e) || ((o.flags & SETOPT_XX) && !e)) {
            if (!(o.flags & SETOPT_GET)) reply_null(&c->out);
            return;
        }
    }
    int created, gone = 0;
    reap_for_events(c, db, KEY(c));
    e = kv_set(db, KEY(c), c->argv[2], c->argvlen[2], &created);
    if (!created && !(o.flags & (SETOPT_NX | SETOPT_XX | SETOPT_GET | SETOPT_KEEPTTL)))
        evict_touch(c->srv, e, c->srv->clock_mode);     /* not looked up above */
    if (o.expire_arg) gone = apply_deadline(c, db, e, at);
    else if (!(o.flags & SETOPT_KEEPTTL) && kv_get_expire(e) != -1) kv_set_expire(db, e, -1);
    key_modified(c->srv, c->db, KEY(c));
    notify_written(c, KEY(c), created, "set");
    if (o.expire_arg) notify_key(c, NOTIFY_GENERIC, "expire", KEY(c));
    /* A deadline already past: Redis keeps the key until it is found
     * expired; engram deletes it now and says so the same way. */
    if (gone) notify_key(c, NOTIFY_EXPIRED, "expired", KEY(c));
    if (!(o.flags & SETOPT_GET)) reply_ok(&c->out);
}

/* SETEX / PSETEX key ttl value */
static void setex_generic(client *c, unsigned unit, const char *cmdname)
{
    kv *db = client_kv(c);
    int64_t at;
    kv_entry *e;

    if (!parse_set_expire(c, 2, unit, cmdname, &at)) return;
    int created;
    reap_for_events(c, db, KEY(c));
    e = kv_set(db, KEY(c), c->argv[3], c->argvlen[3], &created);
    kv_set_expire(db, e, at);  /* relative and > 0, so always in the future */
    key_modified(c->srv, c->db, KEY(c));
    notify_written(c, KEY(c), created, "set");
    notify_key(c, NOTIFY_GENERIC, "expire", KEY(c));
    reply_ok(&c->out);
}

void cmd_setex(client *c) { setex_generic(c, SETOPT_EX, "setex"); }
void cmd_psetex(client *c) { setex_generic(c, SETOPT_PX, "psetex"); }

void cmd_setnx(client *c)
{
    kv *db = client_kv(c);

    if (find_write(c, db, KEY(c))) {
        reply_int(&c->out, 0);
        return;
    }
    kv_set(db, KEY(c), c->argv[2], c->argvlen[2], NULL);
    key_modified(c->srv, c->db, KEY(c));
    notify_written(c, KEY(c), 1, "set");
    reply_int(&c->out, 1);
}

void cmd_getset(client *c)
{
    kv *db = client_kv(c);
    kv_entry *e = find_write(c, db, KEY(c));

    if (wrongtype(c, e)) return;
    notify_miss(c, e);
    reply_entry_value(c, e);
    set_plain(c, db, KEY(c), c->argv[2], c->argvlen[2]);
}

void cmd_getdel(client *c)
{
    kv *db = client_kv(c);
    kv_entry *e = kv_find(db, KEY(c), srv_now_ms(c->srv));

    if (wrongtype(c, e)) return;
    notify_miss(c, e);
    reply_entry_value(c, e);
    if (!e) return;
    kv_del_entry(db, e);
    key_modified(c->srv, c->db, KEY(c));
    notify_key(c, NOTIFY_GENERIC, "del", KEY(c));
}

/* GETEX key [EX s|PX ms|EXAT ts|PXAT ms-ts|PERSIST] */
void cmd_getex(client *c)
{
    kv *db = client_kv(c);
    set_opts o;
    int64_t at = -1;
    kv_entry *e;

    if (!parse_set_opts(c, 2, 0, &o)) return;
    e = find_write(c, db, KEY(c));
    /* As Redis: a missing key answers nil before the expiry value is
     * checked ("GETEX nokey EX abc" is nil, not an error). */
    if (!e) {
        notify_miss(c, e);
        reply_null(&c->out);
        return;
    }
    if (wrongtype(c, e)) return;
    if (o.expire_arg && !parse_set_expire(c, o.expire_arg, o.flags, "getex", &at)) return;
    reply_entry_value(c, e);
    if (o.expire_arg) {
        int gone = apply_deadline(c, db, e, at);
        key_modified(c->srv, c->db, KEY(c));
        notify_key(c, NOTIFY_GENERIC, gone ? "del" : "expire", KEY(c));
    } else if ((o.flags & SETOPT_PERSIST) && kv_get_expire(e) != -1) {
        kv_set_expire(db, e, -1);
        key_modified(c->srv, c->db, KEY(c));
        notify_key(c, NOTIFY_GENERIC, "persist", KEY(c));
    }
}

void cmd_mget(client *c)
{

    reply_array(&c->out, c->argc - 1);
    for (int j = 1; j < c->argc; j++) {
        kv_entry *e = key_lookup_read(c, c->argv[j], c->argvlen[j]);
        reply_entry_value(c, e && kv_type(e) == KV_STRING ? e : NULL);   /* other types: nil */
    }
}

/* MSET / MSETNX key value [key value ...]: the arity (-3) lets an odd
 * number of arguments through; Redis reports that as an arity error. */
void cmd_mset(client *c)
{
    kv *db = client_kv(c);

    if (c->argc % 2 == 0) {
        reply_err_arity(c);
        return;
    }
    for (int j = 1; j < c->argc; j += 2)
        set_plain(c, db, c->argv[j], c->argvlen[j], c->argv[j + 1], c->argvlen[j + 1]);
    reply_ok(&c->out);
}

void cmd_msetnx(client *c)
{
    kv *db = client_kv(c);
    int64_t now = srv_now_ms(c->srv);

    if (c->argc % 2 == 0) {
        reply_err_arity(c);
        return;
    }
    for (int j = 1; j < c->argc; j += 2) {
        if (kv_find(db, c->argv[j], c->argvlen[j], now)) {
            reply_int(&c->out, 0);
            return;
        }
    }
    for (int j = 1; j < c->argc; j += 2)
        set_plain(c, db, c->argv[j], c->argvlen[j], c->argv[j + 1], c->argvlen[j + 1]);
    reply_int(&c->out, 1);
}

void cmd_append(client *c)
{
    kv *db = client_kv(c);
    kv_entry *e = find_write(c, db, KEY(c));
    size_t olen, alen = c->argvlen[2];
    char *p;

    if (wrongtype(c, e)) return;
    if (!e) {
        kv_set(db, KEY(c), c->argv[2], alen, NULL);
        key_modified(c->srv, c->db, KEY(c));
        notify_written(c, KEY(c), 1, "append");
        reply_int(&c->out, (long long)alen);
        return;
    }
    kv_val(e, &olen);
    if (!check_string_len(c, olen, alen)) return;
    p = kv_val_resize(db, e, olen + alen);     /* keeps the TTL, as Redis */
    memcpy(p + olen, c->argv[2], alen);
    key_range_modified(c->srv, c->db, KEY(c), olen, c->argv[2], alen);
    notify_written(c, KEY(c), 0, "append");
    reply_int(&c->out, (long long)(olen + alen));
}

void cmd_strlen(client *c)
{
    kv_entry *e = key_lookup_read(c, KEY(c));
    size_t vlen = 0;

    if (wrongtype(c, e)) return;
    if (e) kv_val(e, &vlen);
    reply_int(&c->out, (long long)vlen);
}

/* GETRANGE key start end: inclusive, negative indexes count from the end,
 * clamped to the string; a missing key is an empty string. */
void cmd_getrange(client *c)
{
    long long start, end, len;
    size_t vlen;
    const char *v;
    kv_entry *e;

    if (!arg_ll(c, 2, &start) || !arg_ll(c, 3, &end)) return;
    e = key_lookup_read(c, KEY(c));
    if (wrongtype(c, e)) return;
    if (!e || (start < 0 && end < 0 && start > end)) {
        reply_bulk(&c->out, "", 0);
        return;
    }
    v = kv_val(e, &vlen);
    len = (long long)vlen;
    if (start < 0) start += len;
    if (end < 0) end += len;
    if (start < 0) start = 0;
    if (end < 0) end = 0;
    if (end >= len) end = len - 1;
    if (len == 0 || start > end) reply_bulk(&c->out, "", 0);
    else reply_bulk(&c->out, v + start, (size_t)(end - start + 1));
}

/* SETRANGE key offset value: zero-pads a gap; an empty value changes
 * nothing (and does not create a missing key). */
void cmd_setrange(client *c)
{
    kv *db = client_kv(c);
    size_t olen = 0, alen = c->argvlen[3], nlen;
    long long off;
    kv_entry *e;
    char *p;

    if (!arg_ll(c, 2, &off)) return;
    if (off < 0) {
        reply_error(&c->out, "ERR offset is out of range");
        return;
    }
    e = find_write(c, db, KEY(c));
    if (wrongtype(c, e)) return;
    if (e) kv_val(e, &olen);
    if (alen == 0) {
        reply_int(&c->out, (long long)olen);
        return;
    }
    if (!check_string_len(c, (unsigned long long)off, alen)) return;

    nlen = (size_t)off + alen;
    if (nlen < olen) nlen = olen;
    int created = !e;
    if (created) e = kv_set(db, KEY(c), "", 0, NULL);
    p = kv_val_resize(db, e, nlen);            /* growth is zero-filled */
    memcpy(p + off, c->argv[3], alen);
    /* A key this command created (perhaps over an expired one that the log
     * still holds) is logged whole: replay must not patch the old value. */
    if (created) key_modified(c->srv, c->db, KEY(c));
    else key_range_modified(c->srv, c->db, KEY(c), (size_t)off, c->argv[3], alen);
    notify_written(c, KEY(c), created, "setrange");
    reply_int(&c->out, (long long)nlen);
}

/* Store v's text as key's value, in place when the key exists (keeping its
 * TTL, as Redis's INCR does); event is the command's keyspace event. */
static void store_number(client *c, kv *db, kv_entry *e, const char *txt, size_t n,
                         const char *event)
{
    if (e) memcpy(kv_val_resize(db, e, n), txt, n);
    else kv_set(db, KEY(c), txt, n, NULL);
    key_modified(c->srv, c->db, KEY(c));
    notify_written(c, KEY(c), !e, event);
}

/* INCR, DECR, INCRBY, DECRBY: the value must be a strict base-10 int64. */
static void incr_generic(client *c, long long by)
{
    kv *db = client_kv(c);
    kv_entry *e = find_write(c, db, KEY(c));
    long long v = 0;
    char buf[24];
    size_t n;

    if (wrongtype(c, e)) return;
    if (e) {
        size_t vlen;
        const char *s = kv_val(e, &vlen);
        if (!util_str2ll(s, vlen, &v)) {
            reply_err_int(c);
            return;
        }
    }
    if ((by < 0 && v < 0 && by < LLONG_MIN - v) || (by > 0 && v > 0 && by > LLONG_MAX - v)) {
        reply_error(&c->out, "ERR increment or decrement would overflow");
        return;
    }
    v += by;
    n = util_ll2str(buf, sizeof buf, v);
    store_number(c, db, e, buf, n, "incrby");
    reply_int(&c->out, v);
}

void cmd_incr(client *c) { incr_generic(c, 1); }
void cmd_decr(client *c) { incr_generic(c, -1); }

void cmd_incrby(client *c)
{
    long long by;
    if (arg_ll(c, 2, &by)) incr_generic(c, by);
}

void cmd_decrby(client *c)
{
    long long by;

    if (!arg_ll(c, 2, &by)) return;
    if (by == LLONG_MIN) {     /* -by does not exist */
        reply_error(&c->out, "ERR decrement would overflow");
        return;
    }
    incr_generic(c, -by);
}

/* INCRBYFLOAT key incr: long double arithmetic; the stored value is the
 * formatted result (what the reply shows), never the binary number. */
void cmd_incrbyfloat(client *c)
{
    kv *db = client_kv(c);
    kv_entry *e = find_write(c, db, KEY(c));
    long double v = 0, by;
    char buf[LD_STR_MAX];
    size_t n;

    if (wrongtype(c, e)) return;
    if (e) {
        size_t vlen;
        const char *s = kv_val(e, &vlen);
        if (!util_str2ld(s, vlen, &v)) goto not_float;
    }
    if (!util_str2ld(c->argv[2], c->argvlen[2], &by)) goto not_float;
    v += by;
    if (isnan(v) || isinf(v)) {
        reply_error(&c->out, "ERR increment would produce NaN or Infinity");
        return;
    }
    n = util_ld2str(buf, sizeof buf, v);
    store_number(c, db, e, buf, n, "incrbyfloat");
    reply_bulk(&c->out, buf, n);
    return;
not_float:
    reply_error(&c->out, "ERR value is not a valid float");
}

/* ---- expiry -------------------------------------------------------------- */

enum { EXP_NX = 1, EXP_XX = 2, EXP_GT = 4, EXP_LT = 8 };

/* EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT key time [NX|XX|GT|LT]: base is
 * added to the time (now for the relative forms, 0 for the absolute). */
static void expire_generic(client *c, int64_t base, int seconds, const char *cmdname)
{
    kv *db = client_kv(c);
    unsigned flags = 0;
    long long when;
    int64_t cur;
    kv_entry *e;

    /* Options first: Redis reports a bad option before a bad time. */
    for (int j = 3; j < c->argc; j++) {
        if (arg_is(c, j, "nx")) flags |= EXP_NX;
        else if (arg_is(c, j, "xx")) flags |= EXP_XX;
        else if (arg_is(c, j, "gt")) flags |= EXP_GT;
        else if (arg_is(c, j, "lt")) flags |= EXP_LT;
        else {
            reply_errorf(&c->out, "ERR Unsupported option %.*s", (int)c->argvlen[j], c->argv[j]);
            return;
        }
    }
    if ((flags & EXP_NX) && (flags & (EXP_XX | EXP_GT | EXP_LT))) {
        reply_error(&c->out, "ERR NX and XX, GT or LT options at the same time are not compatible");
        return;
    }
    if ((flags & EXP_GT) && (flags & EXP_LT)) {
        reply_error(&c->out, "ERR GT and LT options at the same time are not compatible");
        return;
    }
    if (!arg_ll(c, 2, &when)) return;
    /* Negative times are allowed (they delete); only overflow is an error. */
    if (seconds) {
        if (when > LLONG_MAX / 1000 || when < LLONG_MIN / 1000) goto invalid;
        when *= 1000;
    }
    if (when > LLONG_MAX - base) goto invalid;
    when += base;

    e = find_write(c, db, KEY(c));
    if (!e) {
        reply_int(&c->out, 0);
        return;
    }
    cur = kv_get_expire(e);
    /* No TTL counts as an infinite one: GT never beats it, LT always does. */
    if (((flags & EXP_NX) && cur != -1) || ((flags & EXP_XX) && cur == -1) ||
        ((flags & EXP_GT) && (cur == -1 || when <= cur)) ||
        ((flags & EXP_LT) && cur != -1 && when >= cur)) {
        reply_int(&c->out, 0);
        return;
    }
    int gone = apply_deadline(c, db, e, when);
    key_modified(c->srv, c->db, KEY(c));
    notify_key(c, NOTIFY_GENERIC, gone ? "del" : "expire", KEY(c));
    reply_int(&c->out, 1);
    return;
invalid:
    reply_invalid_expire(c, cmdname);
}

void cmd_expire(client *c) { expire_generic(c, srv_now_ms(c->srv), 1, "expire"); }
void cmd_pexpire(client *c) { expire_generic(c, srv_now_ms(c->srv), 0, "pexpire"); }
void cmd_expireat(client *c) { expire_generic(c, 0, 1, "expireat"); }
void cmd_pexpireat(client *c) { expire_generic(c, 0, 0, "pexpireat"); }

/* TTL, PTTL, EXPIRETIME, PEXPIRETIME: -2 missing key, -1 no TTL.  Seconds
 * are rounded to nearest ((ms + 500) / 1000), as Redis does. */
static void ttl_generic(client *c, int absolute, int ms)
{
    int64_t now = srv_now_ms(c->srv);
    kv_entry *e = key_lookup_read(c, KEY(c));
    int64_t t;

    if (!e) {
        reply_int(&c->out, -2);
        return;
    }
    t = kv_get_expire(e);
    if (t == -1) {
        reply_int(&c->out, -1);
        return;
    }
    if (!absolute) t -= now;
    if (t < 0) t = 0;
    reply_int(&c->out, ms ? t : (t + 500) / 1000);
}

void cmd_ttl(client *c) { ttl_generic(c, 0, 0); }
void cmd_pttl(client *c) { ttl_generic(c, 0, 1); }
void cmd_expiretime(client *c) { ttl_generic(c, 1, 0); }
void cmd_pexpiretime(client *c) { ttl_generic(c, 1, 1); }

void cmd_persist(client *c)
{
    kv *db = client_kv(c);
    kv_entry *e = find_write(c, db, KEY(c));

    if (!e || kv_get_expire(e) == -1) {
        reply_int(&c->out, 0);
        return;
    }
    kv_set_expire(db, e, -1);
    key_modified(c->srv, c->db, KEY(c));
    notify_key(c, NOTIFY_GENERIC, "persist", KEY(c));
    reply_int(&c->out, 1);
}

/* ---- keyspace ------------------------------------------------------------ */

/* DEL and UNLINK: UNLINK hands the keys' objects to the lazy-free thread
 * (DEL frees big ones there too: keyspace.h).  A stale key is reaped by
 * the lookup and not counted, as Redis's expireIfNeeded. */
static void del_generic(client *c, int lazy)
{
    kv *db = client_kv(c);
    int64_t now = srv_now_ms(c->srv);
    long long n = 0;

    for (int j = 1; j < c->argc; j++) {
        kv_entry *e = kv_find(db, c->argv[j], c->argvlen[j], now);
        if (!e) continue;
        if (lazy) key_unlink(c->srv, c->db, e);
        else kv_del_entry(db, e);
        key_modified(c->srv, c->db, c->argv[j], c->argvlen[j]);
        notify_key(c, NOTIFY_GENERIC, "del", c->argv[j], c->argvlen[j]);
        n++;
    }
    reply_int(&c->out, n);
}

void cmd_del(client *c) { del_generic(c, 0); }
void cmd_unlink(client *c) { del_generic(c, 1); }

/* EXISTS and TOUCH: count the arguments naming a live key (repeats count). */
void cmd_exists(client *c)
{
    long long n = 0;

    for (int j = 1; j < c->argc; j++)
        if (key_lookup_read(c, c->argv[j], c->argvlen[j])) n++;
    reply_int(&c->out, n);
}

void cmd_type(client *c)
{
    kv_entry *e = key_lookup_read(c, KEY(c));
    reply_simple(&c->out, e ? obj_type_name(kv_type(e)) : "none");
}

typedef struct match_ctx {
    reply *out;
    const char *pat;           /* NULL = every key */
    size_t plen;
    int64_t now;
    const char *type;          /* SCAN TYPE: only keys of this type (NULL: all) */
    size_t tlen;
    long long n;
} match_ctx;

/* KEYS/SCAN visitor: emit e's key if live and matching.  The iterators may
 * not modify the keyspace, so stale keys are skipped, not reaped. */
static void match_emit(void *ud, kv_entry *e)
{
    match_ctx *m = ud;
    size_t klen;
    const char *k = kv_key(e, &klen);

    if (m->type && !util_eq_nocase(m->type, m->tlen, obj_type_name(kv_type(e)))) return;
    if (m->pat && !util_glob_match(m->pat, m->plen, k, klen, 0)) return;
    if (key_expired(e, m->now)) return;
    reply_bulk(m->out, k, klen);
    m->n++;
}

static int is_match_all(const char *pat, size_t plen) { return plen == 1 && pat[0] == '*'; }

void cmd_keys(client *c)
{
    match_ctx m = {&c->out, c->argv[1], c->argvlen[1], srv_now_ms(c->srv), NULL, 0, 0};
    size_t h;

    if (is_match_all(m.pat, m.plen)) m.pat = NULL;
    h = reply_defer(&c->out);
    kv_foreach(client_kv(c), match_emit, &m);
    reply_defer_array(&c->out, h, m.n);
}

/* SCAN cursor [MATCH pattern] [COUNT n] [TYPE type] */
void cmd_scan(client *c)
{
    uint64_t cursor;
    long long count = 10;
    match_ctx m = {NULL, NULL, 0, srv_now_ms(c->srv), NULL, 0, 0};
    reply keys;

    if (!arg_cursor(c, 1, &cursor)) return;
    for (int j = 2; j < c->argc; j += 2) {
        if (j + 1 >= c->argc) goto syntax;
        if (arg_is(c, j, "count")) {
            if (!arg_ll(c, j + 1, &count)) return;
            if (count < 1) goto syntax;
        } else if (arg_is(c, j, "match")) {
            m.pat = c->argv[j + 1];
            m.plen = c->argvlen[j + 1];
        } else if (arg_is(c, j, "type")) {
            m.type = c->argv[j + 1];
            m.tlen = c->argvlen[j + 1];
        } else {
            goto syntax;
        }
    }
    if (m.pat && is_match_all(m.pat, m.plen)) m.pat = NULL;

    /* The cursor heads the reply but is known only after the step, so the
     * keys are encoded into a side buffer first.  An unknown TYPE matches
     * nothing, as in Redis 7.0. */
    reply_init(&keys, c->out.proto);
    m.out = &keys;
    cursor = kv_scan(client_kv(c), cursor, (size_t)count, match_emit, &m);
    reply_scan(c, cursor, &keys, m.n);
    return;
syntax:
    reply_err_syntax(c);
}

void cmd_randomkey(client *c)
{
    /* RANDOMKEY's generator: seeded once, used only on the loop thread. */
    static uint64_t rng;
    size_t klen;
    const char *k;
    kv_entry *e;

    if (!rng) rng = (uint64_t)util_wall_us() ^ 0x9e3779b97f4a7c15ULL;
    e = kv_random(client_kv(c), srv_now_ms(c->srv), &rng);
    if (!e) {
        reply_null(&c->out);
        return;
    }
    k = kv_key(e, &klen);
    reply_bulk(&c->out, k, klen);
}

static int same_key(const client *c, int a, int b)
{
    return c->argvlen[a] == c->argvlen[b] && !memcmp(c->argv[a], c->argv[b], c->argvlen[a]);
}

/* RENAME / RENAMENX src dst: the value and TTL move; renaming a key to
 * itself is a no-op that still needs src to exist. */
static void rename_generic(client *c, int nx)
{
    kv *db = client_kv(c);
    int64_t now = srv_now_ms(c->srv);
    int same = same_key(c, 1, 2);
    int dst_exists = 0;
    kv_entry *src;

    /* dst first: its lookup may reap it, which would invalidate src. */
    if (!same) dst_exists = kv_find(db, c->argv[2], c->argvlen[2], now) != NULL;
    src = kv_find(db, KEY(c), now);
    if (!src) {
        reply_error(&c->out, "ERR no such key");
        return;
    }
    if (same || (nx && dst_exists)) {
        if (nx) reply_int(&c->out, 0);
        else reply_ok(&c->out);
        return;
    }
    kv_rename(db, src, c->argv[2], c->argvlen[2]);
    key_touched(c->srv, c->db, KEY(c));
    key_touched(c->srv, c->db, c->argv[2], c->argvlen[2]);
    hkeys_track(c->srv, c->db, c->argv[2], c->argvlen[2]);
    persist_log_rename(c->srv, c->db, KEY(c), c->argv[2], c->argvlen[2]);
    notify_key(c, NOTIFY_NEW, "new", c->argv[2], c->argvlen[2]);   /* as Redis, even over a key */
    notify_key(c, NOTIFY_GENERIC, "rename_from", KEY(c));
    notify_key(c, NOTIFY_GENERIC, "rename_to", c->argv[2], c->argvlen[2]);
    if (nx) reply_int(&c->out, 1);
    else reply_ok(&c->out);
}

void cmd_rename(client *c) { rename_generic(c, 0); }
void cmd_renamenx(client *c) { rename_generic(c, 1); }

/* COPY src dst [DB n] [REPLACE]: the value (a vector set is copied whole)
 * and the TTL, into this or another database. */
void cmd_copy(client *c)
{
    int64_t now = srv_now_ms(c->srv);
    int replace = 0, dstdb = c->db;
    kv_entry *e;

    for (int j = 3; j < c->argc; j++) {
        if (arg_is(c, j, "replace")) {
            replace = 1;
        } else if (arg_is(c, j, "db") && j + 1 < c->argc) {
            long long id;
            if (!arg_ll(c, j + 1, &id)) return;
            if (id < 0 || id >= c->srv->ndbs) {
                reply_error(&c->out, "ERR DB index is out of range");
                return;
            }
            dstdb = (int)id;
            j++;
        } else {
            reply_err_syntax(c);
            return;
        }
    }
    if (dstdb == c->db && same_key(c, 1, 2)) {
        reply_error(&c->out, "ERR source and destination objects are the same");
        return;
    }
    /* dst first: its lookup may reap it, which would invalidate src. */
    kv *dst = db_kv(c->srv, dstdb);
    int dst_exists = kv_find(dst, c->argv[2], c->argvlen[2], now) != NULL;
    e = kv_find(client_kv(c), KEY(c), now);
    notify_miss(c, e);
    if (!e || (dst_exists && !replace)) {
        reply_int(&c->out, 0);
        return;
    }
    if (key_copy(c->srv, e, dstdb, c->argv[2], c->argvlen[2]) < 0) {
        reply_error(&c->out, "ERR out of memory copying the key");
        return;
    }
    key_touched(c->srv, dstdb, c->argv[2], c->argvlen[2]);
    persist_log_copy(c->srv, c->db, KEY(c), c->argv[2], c->argvlen[2], dstdb, replace);
    notify_keyspace_event(c->srv, NOTIFY_NEW, "new", dstdb, c->argv[2], c->argvlen[2]);
    notify_keyspace_event(c->srv, NOTIFY_GENERIC, "copy_to", dstdb, c->argv[2], c->argvlen[2]);
    reply_int(&c->out, 1);
}

/* MOVE key db: to another database whose keyspace does not hold the key. */
void cmd_move(client *c)
{
    long long id;
    if (!arg_ll(c, 2, &id)) return;
    if (id < 0 || id >= c->srv->ndbs) {
        reply_error(&c->out, "ERR DB index is out of range");
        return;
    }
    if (id == c->db) {
        reply_error(&c->out, "ERR source and destination objects are the same");
        return;
    }
    int64_t now = srv_now_ms(c->srv);
    kv *dst = db_kv(c->srv, (int)id);
    kv_entry *e = kv_find(client_kv(c), KEY(c), now);
    if (!e || kv_find(dst, KEY(c), now)) {
        reply_int(&c->out, 0);
        return;
    }
    kv_move(client_kv(c), e, dst);
    key_touched(c->srv, c->db, KEY(c));
    key_touched(c->srv, (int)id, KEY(c));
    hkeys_track(c->srv, (int)id, KEY(c));
    persist_log_move(c->srv, c->db, KEY(c), (int)id);
    notify_keyspace_event(c->srv, NOTIFY_NEW, "new", (int)id, KEY(c));
    notify_key(c, NOTIFY_GENERIC, "move_from", KEY(c));
    notify_keyspace_event(c->srv, NOTIFY_GENERIC, "move_to", (int)id, KEY(c));
    reply_int(&c->out, 1);
}

/* SWAPDB a b: the two databases exchange their contents (clients keep
 * their selected numbers). */
void cmd_swapdb(client *c)
{
    long long a, b;
    if (!util_str2ll(c->argv[1], c->argvlen[1], &a) || a < 0 || a >= c->srv->ndbs) {
        reply_error(&c->out, !util_str2ll(c->argv[1], c->argvlen[1], &a)
                                 ? "ERR invalid first DB index" : "ERR DB index is out of range");
        return;
    }
    if (!util_str2ll(c->argv[2], c->argvlen[2], &b) || b < 0 || b >= c->srv->ndbs) {
        reply_error(&c->out, !util_str2ll(c->argv[2], c->argvlen[2], &b)
                                 ? "ERR invalid second DB index" : "ERR DB index is out of range");
        return;
    }
    if (a != b) {
        kv_swap(db_kv(c->srv, (int)a), db_kv(c->srv, (int)b));
        hkeys_swap(c->srv, (int)a, (int)b);
        c->srv->dirty++;
        srv_watch_touch_db(c->srv, (int)a);
        srv_watch_touch_db(c->srv, (int)b);
        persist_log_swapdb(c->srv, (int)a, (int)b);
        ft_db_swapped(c->srv, (int)a, (int)b);
    }
    reply_ok(&c->out);
}

void cmd_dbsize(client *c)
{
    /* As Redis: stale keys not yet reaped still count. */
    reply_int(&c->out, (long long)kv_size(client_kv(c)));
}

/* FLUSHDB / FLUSHALL [ASYNC|SYNC]: ASYNC hands the keys to the lazy-free
 * thread (the databases are empty at once either way). */
static void flush_generic(client *c, int db)
{
    int async = 0;
    if (c->argc > 2 || (c->argc == 2 && !arg_is(c, 1, "sync") && !(async = arg_is(c, 1, "async")))) {
        reply_err_syntax(c);
        return;
    }
    db_clear(c->srv, db, async);
    db_flushed(c->srv, db);
    reply_ok(&c->out);
}

void cmd_flushdb(client *c) { flush_generic(c, c->db); }
void cmd_flushall(client *c) { flush_generic(c, -1); }

/* ---- OBJECT, MEMORY ---------------------------------------------------------- */

/* OBJECT ENCODING key, as Redis names its encodings: a string is "int"
 * when it spells a 64-bit integer (at most 20 bytes), "embstr" up to 44
 * bytes, "raw" beyond; a hash "listpack", "listpackex" or "hashtable"
 * (hash.h); a vector set, like any module type, "raw". */
void cmd_object_encoding(client *c)
{
    kv_entry *e = key_lookup_read(c, c->argv[2], c->argvlen[2]);
    if (!e) {
        reply_null(&c->out);
        return;
    }
    const char *enc = "raw";
    if (kv_type(e) == KV_STRING) {
        size_t vlen;
        const char *v = kv_val(e, &vlen);
        long long ll;
        if (vlen <= 20 && util_str2ll(v, vlen, &ll)) enc = "int";
        else if (vlen <= 44) enc = "embstr";
    } else if (kv_type(e) == OBJ_HASH) {
        enc = hash_encoding_name(kv_obj(e));
    }
    reply_bulk_cstr(&c->out, enc);
}

/* OBJECT FREQ key: the key's LFU counter, decayed to now (evict.h; lfu.h),
 * read without counting as an access; Redis's error when no LFU policy is
 * set (the counter is not kept then). */
void cmd_object_freq(client *c)
{
    server *s = c->srv;
    kv_entry *e = kv_find(client_kv(c), c->argv[2], c->argvlen[2], s->cmd_time_ms);
    if (!e) {
        reply_null(&c->out);
        return;
    }
    if (s->clock_mode != EVICT_CLOCK_LFU) {
        reply_error(&c->out, "ERR An LFU maxmemory policy is not selected, access frequency not "
                    "tracked. Please note that when switching between policies at runtime LRU "
                    "and LFU data will take some time to adjust.");
        return;
    }
    reply_int(&c->out, lfu_decayed(kv_clock(e), lfu_minute(s->cmd_time_ms), s->cfg.lfu_decay_time));
}

void cmd_object_help(client *c)
{
    static const char *const lines[] = {
        "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ENCODING <key>",
        "    Return the kind of internal representation used in order to store the value",
        "    associated with a <key>.",
        "FREQ <key>",
        "    Return the access frequency index of the <key>. The returned integer is",
        "    proportional to the logarithm of the recent access frequency of the key.",
        "HELP", "    Print this help.", NULL};
    reply_help(c, lines);
}

/* MEMORY USAGE key [SAMPLES count]: the bytes the key holds -- its entry,
 * its value, a vector set whole (engram counts exactly, so SAMPLES changes
 * nothing). */
void cmd_memory_usage(client *c)
{
    for (int j = 3; j < c->argc; j += 2) {
        long long n;
        if (!arg_is(c, j, "samples") || j + 1 >= c->argc) {
            reply_err_syntax(c);
            return;
        }
        if (!arg_ll(c, j + 1, &n)) return;
        if (n < 0) {
            reply_err_syntax(c);
            return;
        }
    }
    kv_entry *e = key_lookup_read(c, c->argv[2], c->argvlen[2]);
    if (!e) reply_null(&c->out);
    else reply_int(&c->out, (long long)kv_entry_memory(client_kv(c), e));
}

void cmd_memory_help(client *c)
{
    static const char *const lines[] = {
        "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "DOCTOR",
        "    Return memory problems reports.",
        "STATS",
        "    Return information about the memory usage of the server.",
        "USAGE <key> [SAMPLES <count>]",
        "    Return memory in bytes used by <key> and its value.",
        "HELP", "    Print this help.", NULL};
    reply_help(c, lines);
}
