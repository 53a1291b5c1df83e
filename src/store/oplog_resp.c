/* oplog_resp.c -- a write-ahead-log record as the replication stream's
 * commands (the mapping is in oplog_resp.h).
 *
 * Invariant: a record is written whole or not at all -- every part of it
 * is decoded before anything is appended (a BATCH's items into the scratch
 * body first), so a record that does not decode leaves the stream as it
 * was.  The database the stream has selected (seldb) moves only with what
 * is appended. */
#include "engram/oplog_resp.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "engram/mem.h"
#include "engram/oplog.h"

/* Our own records: only the layouts are checked, not a server's limits. */
static const op_limits any_size = {
    .string_max = UINT64_MAX, .dim_max = UINT32_MAX, .m_max = UINT32_MAX,
    .ef_max = UINT32_MAX, .capacity_max = UINT32_MAX, .payload_max = UINT32_MAX,
    .db_max = UINT32_MAX,
};

static const struct {
    uint8_t type;
    const char *name;
} op_names[] = {
    {OP_SET, "SET"},         {OP_DEL, "DEL"},         {OP_FLUSHALL, "FLUSHALL"},
    {OP_SETRANGE, "SETRANGE"}, {OP_EXPIRE, "EXPIRE"}, {OP_RENAME, "RENAME"},
    {OP_MOVE, "MOVE"},       {OP_COPY, "COPY"},       {OP_SWAPDB, "SWAPDB"},
    {OP_FLUSHDB, "FLUSHDB"}, {OP_HSET, "HSET"},       {OP_HDEL, "HDEL"},
    {OP_HEXPIRE, "HEXPIRE"}, {OP_VNEW, "VNEW"},       {OP_VADD, "VADD"},
    {OP_VDEL, "VDEL"},       {OP_VDROP, "VDROP"},     {OP_VSETATTR, "VSETATTR"},
    {OP_FTDEF, "FTDEF"},
};

const char *op_resp_name(uint8_t type, char *buf, size_t cap)
{
    for (size_t i = 0; i < sizeof op_names / sizeof op_names[0]; i++)
        if (op_names[i].type == type) return op_names[i].name;
    snprintf(buf, cap, "%u", type);
    return buf;
}

int op_resp_type(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof op_names / sizeof op_names[0]; i++)
        if (strlen(op_names[i].name) == len && !strncasecmp(op_names[i].name, name, len))
            return op_names[i].type;
    unsigned v = 0;
    if (len == 0 || len > 3) return -1;
    for (size_t i = 0; i < len; i++) {
        if (name[i] < '0' || name[i] > '9') return -1;
        v = v * 10 + (unsigned)(name[i] - '0');
    }
    return v >= 1 && v <= 255 && v != OP_BATCH && v != OP_INDB ? (int)v : -1;
}

void op_resp_init(op_resp *e)
{
    memset(e, 0, sizeof *e);
    e->seldb = -1;
}

void op_resp_fini(op_resp *e) { opbuf_fini(&e->body); }

static void put_raw(opbuf *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) cap *= 2;
        b->p = mem_realloc(b->p, cap);
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, p, n);
    b->len += n;
}

/* A command built argument by argument: the count goes first, so callers
 * count before they add. */
static void cmd_head(opbuf *r, int argc)
{
    char h[24];
    put_raw(r, h, (size_t)snprintf(h, sizeof h, "*%d\r\n", argc));
}

static void arg_bytes(opbuf *r, const void *p, size_t n)
{
    char h[32];
    put_raw(r, h, (size_t)snprintf(h, sizeof h, "$%zu\r\n", n));
    put_raw(r, p, n);
    put_raw(r, "\r\n", 2);
}

static void arg_str(opbuf *r, const char *s) { arg_bytes(r, s, strlen(s)); }

static void arg_ll(opbuf *r, long long v)
{
    char d[24];
    arg_bytes(r, d, (size_t)snprintf(d, sizeof d, "%lld", v));
}

void op_resp_argv(opbuf *out, int argc, const char *const *argv, const size_t *lens)
{
    cmd_head(out, argc);
    for (int i = 0; i < argc; i++) arg_bytes(out, argv[i], lens[i]);
}

static void emit_select(op_resp *e, opbuf *r, int db)
{
    cmd_head(r, 2);
    arg_str(r, "SELECT");
    arg_ll(r, db);
    e->seldb = db;
}

/* Fields [from, to) of a hash record (indices in op_hfield order) with the
 * same deadline, as HPEXPIREAT (or HPERSIST for none). */
static void emit_hexpire(opbuf *r, const op *o, uint32_t from, uint32_t to, int64_t at)
{
    cmd_head(r, (at < 0 ? 4 : 5) + (int)(to - from));
    arg_str(r, at < 0 ? "HPERSIST" : "HPEXPIREAT");
    arg_bytes(r, o->key, o->klen);
    if (at >= 0) arg_ll(r, at);
    arg_str(r, "FIELDS");
    arg_ll(r, to - from);
    size_t pos = 0;
    op_hfield f;
    for (uint32_t i = 0; i < to && op_hfield_next(o, &pos, &f); i++)
        if (i >= from) arg_bytes(r, f.f, f.flen);
}

/* The fields of o in runs of equal deadlines, one command per run (runs
 * without a deadline skipped when skip_none: HSET already cleared them). */
static void emit_hexpire_runs(opbuf *r, const op *o, int skip_none, int *ncmd)
{
    size_t pos = 0;
    op_hfield f;
    uint32_t i = 0, start = 0;
    int64_t run = 0;
    int open = 0;
    while (op_hfield_next(o, &pos, &f)) {
        if (open && f.expire_ms != run) {
            if (!(skip_none && run < 0)) {
                emit_hexpire(r, o, start, i, run);
                (*ncmd)++;
            }
            open = 0;
        }
        if (!open) {
            start = i;
            run = f.expire_ms;
            open = 1;
        }
        i++;
    }
    if (open && !(skip_none && run < 0)) {
        emit_hexpire(r, o, start, i, run);
        (*ncmd)++;
    }
}

static void emit_hash(opbuf *r, const op *o, int *ncmd)
{
    size_t pos = 0;
    op_hfield f;
    if (o->type == OP_HSET) {
        if (o->flags & OP_HSET_NEW) {
            cmd_head(r, 2);
            arg_str(r, "DEL");
            arg_bytes(r, o->key, o->klen);
            (*ncmd)++;
        }
        cmd_head(r, 2 + 2 * (int)o->nfields);
        arg_str(r, "HSET");
        arg_bytes(r, o->key, o->klen);
        while (op_hfield_next(o, &pos, &f)) {
            arg_bytes(r, f.f, f.flen);
            arg_bytes(r, f.v, f.vlen);
        }
        (*ncmd)++;
        emit_hexpire_runs(r, o, 1, ncmd);
    } else if (o->type == OP_HDEL) {
        cmd_head(r, 2 + (int)o->nfields);
        arg_str(r, "HDEL");
        arg_bytes(r, o->key, o->klen);
        while (op_hfield_next(o, &pos, &f)) arg_bytes(r, f.f, f.flen);
        (*ncmd)++;
    } else {
        emit_hexpire_runs(r, o, 0, ncmd);
    }
}

/* 1 if a record of this type acts on the selected database. */
static int needs_db(uint8_t type) { return type != OP_FLUSHALL && type != OP_SWAPDB; }

/* One record that is neither a batch nor INDB, about database db, into r. */
static int emit_one(op_resp *e, opbuf *r, int db, uint8_t type, const void *payload, size_t len,
                    int *ncmd)
{
    op o;
    char nbuf[8];
    if (op_decode(type, payload, len, &any_size, &o) < 0) return -EBADMSG;
    if (needs_db(type) && e->seldb != db) emit_select(e, r, db);
    (*ncmd)++;
    switch (type) {
    case OP_SET:
        cmd_head(r, o.expire_ms >= 0 ? 5 : 3);
        arg_str(r, "SET");
        arg_bytes(r, o.key, o.klen);
        arg_bytes(r, o.val, o.vlen);
        if (o.expire_ms >= 0) {
            arg_str(r, "PXAT");
            arg_ll(r, o.expire_ms);
        }
        return 0;
    case OP_DEL:
        cmd_head(r, 2);
        arg_str(r, "DEL");
        arg_bytes(r, o.key, o.klen);
        return 0;
    case OP_FLUSHALL:
        cmd_head(r, 1);
        arg_str(r, "FLUSHALL");
        return 0;
    case OP_FLUSHDB:
        cmd_head(r, 1);
        arg_str(r, "FLUSHDB");
        return 0;
    case OP_SETRANGE:
        if (o.vlen == 0) {
            cmd_head(r, 3);
            arg_str(r, "APPEND");
            arg_bytes(r, o.key, o.klen);
            arg_bytes(r, "", 0);
            return 0;
        }
        cmd_head(r, 4);
        arg_str(r, "SETRANGE");
        arg_bytes(r, o.key, o.klen);
        arg_ll(r, o.offset);
        arg_bytes(r, o.val, o.vlen);
        return 0;
    case OP_EXPIRE:
        cmd_head(r, o.expire_ms >= 0 ? 3 : 2);
        arg_str(r, o.expire_ms >= 0 ? "PEXPIREAT" : "PERSIST");
        arg_bytes(r, o.key, o.klen);
        if (o.expire_ms >= 0) arg_ll(r, o.expire_ms);
        return 0;
    case OP_RENAME:
        cmd_head(r, 3);
        arg_str(r, "RENAME");
        arg_bytes(r, o.key, o.klen);
        arg_bytes(r, o.val, o.vlen);
        return 0;
    case OP_MOVE:
        cmd_head(r, 3);
        arg_str(r, "MOVE");
        arg_bytes(r, o.key, o.klen);
        arg_ll(r, o.db);
        return 0;
    case OP_COPY:
        cmd_head(r, o.replace ? 6 : 5);
        arg_str(r, "COPY");
        arg_bytes(r, o.key, o.klen);
        arg_bytes(r, o.val, o.vlen);
        arg_str(r, "DB");
        arg_ll(r, o.db);
        if (o.replace) arg_str(r, "REPLACE");
        return 0;
    case OP_SWAPDB:
        cmd_head(r, 3);
        arg_str(r, "SWAPDB");
        arg_ll(r, o.db);
        arg_ll(r, o.db2);
        return 0;
    case OP_HSET:
    case OP_HDEL:
    case OP_HEXPIRE:
        (*ncmd)--;
        emit_hash(r, &o, ncmd);
        return 0;
    case OP_FTDEF: {
        /* the command itself, so the replica indexes what it holds */
        static const char *const verb[] = {"FT.CREATE", "FT.DROPINDEX", "FT.ALTER"};
        if (o.flags > 2) return -EBADMSG;
        cmd_head(r, 2 + (o.flags == 2 ? 2 : 0) + (int)o.nfields);
        arg_str(r, verb[o.flags]);
        arg_bytes(r, o.key, o.klen);
        if (o.flags == 2) {
            arg_str(r, "SCHEMA");
            arg_str(r, "ADD");
        }
        size_t pos = 0;
        op_hfield f;
        while (op_hfield_next(&o, &pos, &f)) arg_bytes(r, f.f, f.flen);
        return 0;
    }
    default:
        cmd_head(r, 3);
        arg_str(r, "REPLAY");
        arg_str(r, op_resp_name(type, nbuf, sizeof nbuf));
        arg_bytes(r, payload, len);
        return 0;
    }
}

/* An item that may be INDB-wrapped: its database, type and payload. */
static int unwrap(uint8_t type, const void *payload, size_t len, int *db, uint8_t *t,
                  const void **p, size_t *n)
{
    if (type != OP_INDB) {
        *db = 0;
        *t = type;
        *p = payload;
        *n = len;
        return 0;
    }
    uint32_t d, ilen;
    if (op_indb(payload, len, &any_size, &d, t, p, &ilen) < 0) return -EBADMSG;
    *db = (int)d;
    *n = ilen;
    return 0;
}

/* The database the record's first command acts on, or -1 (none, or the
 * record does not decode: emit_one finds that). */
static int first_db(uint8_t type, const void *payload, size_t len)
{
    int db;
    uint8_t t;
    const void *p;
    size_t n;
    if (type != OP_BATCH)
        return unwrap(type, payload, len, &db, &t, &p, &n) == 0 && needs_db(t) ? db : -1;
    size_t pos = 0;
    const void *item;
    uint32_t ilen;
    uint8_t it;
    while (op_batch_next(payload, len, &pos, &it, &item, &ilen) > 0)
        if (unwrap(it, item, ilen, &db, &t, &p, &n) == 0 && needs_db(t)) return db;
    return -1;
}

int op_resp_encode(op_resp *e, opbuf *out, uint8_t type, const void *payload, size_t len)
{
    int db, ncmd = 0, saved = e->seldb;
    size_t out0 = out->len;
    uint8_t t;
    const void *p;
    size_t n;
    opbuf *body = &e->body;
    body->len = 0;
    /* The first command's SELECT goes before a MULTI, as Redis sends it. */
    int first = first_db(type, payload, len);
    if (first >= 0 && e->seldb != first) emit_select(e, out, first);
    if (type != OP_BATCH) {
        if (unwrap(type, payload, len, &db, &t, &p, &n) < 0 ||
            emit_one(e, body, db, t, p, n, &ncmd) < 0)
            goto bad;
    } else {
        size_t pos = 0;
        const void *item;
        uint32_t ilen;
        uint8_t it;
        int r;
        while ((r = op_batch_next(payload, len, &pos, &it, &item, &ilen)) > 0) {
            if (unwrap(it, item, ilen, &db, &t, &p, &n) < 0 ||
                emit_one(e, body, db, t, p, n, &ncmd) < 0)
                goto bad;
        }
        if (r < 0) goto bad;
    }
    if (ncmd > 1) {
        cmd_head(out, 1);
        arg_str(out, "MULTI");
        put_raw(out, body->p, body->len);
        cmd_head(out, 1);
        arg_str(out, "EXEC");
    } else {
        put_raw(out, body->p, body->len);
    }
    if (body->cap > (1u << 20)) opbuf_fini(body);     /* give a burst back */
    return 0;
bad:
    e->seldb = saved;
    out->len = out0;
    body->len = 0;
    return -EBADMSG;
}
