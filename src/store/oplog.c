/* oplog.c -- encoders and decoders for the write-ahead log's payloads.
 * The layouts are specified in include/engram/oplog.h.
 *
 * Decoding is strict: every length is checked against the bytes present,
 * and a payload must be consumed exactly, so a record that passed its CRC
 * but does not parse is reported (-EBADMSG) rather than half-applied. */
#include "engram/oplog.h"

#include <errno.h>
#include <string.h>

#include "engram/le.h"
#include "engram/mem.h"

/* ---- encoding ------------------------------------------------------------ */

void opbuf_fini(opbuf *b)
{
    mem_free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

static unsigned char *ob_room(opbuf *b, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) cap *= 2;
        b->p = mem_realloc(b->p, cap);
        b->cap = cap;
    }
    unsigned char *p = b->p + b->len;
    b->len += n;
    return p;
}

static void ob_u8(opbuf *b, uint8_t v) { *ob_room(b, 1) = v; }
static void ob_u16(opbuf *b, uint16_t v) { le_put16(ob_room(b, 2), v); }
static void ob_u32(opbuf *b, uint32_t v) { le_put32(ob_room(b, 4), v); }
static void ob_u64(opbuf *b, uint64_t v) { le_put64(ob_room(b, 8), v); }

static void ob_bytes(opbuf *b, const void *p, size_t n)
{
    if (n) memcpy(ob_room(b, n), p, n);
}

static void ob_str(opbuf *b, const void *p, uint32_t n)
{
    ob_u32(b, n);
    ob_bytes(b, p, n);
}

void op_put_set(opbuf *b, const void *key, uint32_t klen, const void *val, uint32_t vlen, int64_t expire_ms)
{
    ob_str(b, key, klen);
    ob_str(b, val, vlen);
    ob_u64(b, (uint64_t)expire_ms);
}

void op_put_del(opbuf *b, const void *key, uint32_t klen) { ob_str(b, key, klen); }

void op_put_setrange(opbuf *b, const void *key, uint32_t klen, uint32_t offset, const void *bytes, uint32_t n)
{
    ob_str(b, key, klen);
    ob_u32(b, offset);
    ob_str(b, bytes, n);
}

void op_put_vnew(opbuf *b, const void *name, uint32_t nlen, uint8_t vtype, uint8_t metric,
                 uint32_t dim, uint32_t M, uint32_t efc, uint32_t efs, uint64_t seed,
                 uint32_t capacity, const void *embed, uint32_t elen)
{
    op_put_vnew_ex(b, name, nlen, vtype, metric, dim, M, efc, efs, seed, capacity, embed, elen,
                   0, 0, 0);
}

void op_put_vnew_ex(opbuf *b, const void *name, uint32_t nlen, uint8_t vtype, uint8_t metric,
                    uint32_t dim, uint32_t M, uint32_t efc, uint32_t efs, uint64_t seed,
                    uint32_t capacity, const void *embed, uint32_t elen, uint8_t quant,
                    uint32_t proj_in, int keep_float)
{
    ob_str(b, name, nlen);
    ob_u8(b, vtype);
    ob_u8(b, metric);
    ob_u16(b, (uint16_t)(quant | (proj_in ? OP_VNEW_PROJ : 0) |
                         (keep_float && quant ? OP_VNEW_FLOAT : 0)));
    ob_u32(b, dim);
    ob_u32(b, M);
    ob_u32(b, efc);
    ob_u32(b, efs);
    ob_u64(b, seed);
    ob_u32(b, capacity);
    ob_str(b, embed, elen);
    if (proj_in) ob_u32(b, proj_in);
}

void op_put_vadd(opbuf *b, const void *name, uint32_t nlen, const void *key, uint32_t klen,
                 const float *vec, uint32_t dim, int autoid, const void *payload, uint32_t plen)
{
    op_put_vadd_ex(b, name, nlen, key, klen, vec, dim, autoid ? OP_VADD_AUTOID : 0, payload,
                   plen, 0);
}

void op_put_vadd_ex(opbuf *b, const void *name, uint32_t nlen, const void *key, uint32_t klen,
                    const float *vec, uint32_t dim, unsigned flags, const void *payload,
                    uint32_t plen, uint32_t ef)
{
    op_put_vadd_outcome(b, name, nlen, key, klen, vec, dim, flags, payload, plen, ef, NULL, 0);
}

void op_put_vadd_outcome(opbuf *b, const void *name, uint32_t nlen, const void *key,
                         uint32_t klen, const float *vec, uint32_t dim, unsigned flags,
                         const void *payload, uint32_t plen, uint32_t ef, const void *outcome,
                         uint32_t olen)
{
    ob_str(b, name, nlen);
    ob_str(b, key, klen);
    ob_u32(b, dim);
    unsigned char *p = ob_room(b, (size_t)dim * 4);
    for (uint32_t i = 0; i < dim; i++) le_putf32(p + 4 * (size_t)i, vec[i]);
    flags &= OP_VADD_AUTOID | (payload ? 0 : OP_VADD_DROP);
    ob_u8(b, (uint8_t)(flags | (payload ? OP_VADD_PAYLOAD : 0) | (ef ? OP_VADD_EF : 0) |
                       (olen ? OP_VADD_OUTCOME : 0)));
    if (payload) ob_str(b, payload, plen);
    if (ef) ob_u32(b, ef);
    if (olen) ob_str(b, outcome, olen);
}

void op_put_vsetattr(opbuf *b, const void *name, uint32_t nlen, const void *key, uint32_t klen,
                     int drop, const void *attr, uint32_t alen)
{
    ob_str(b, name, nlen);
    ob_str(b, key, klen);
    ob_u8(b, drop ? 1 : 0);
    ob_str(b, drop ? "" : attr, drop ? 0 : alen);
}

void op_put_vdel(opbuf *b, const void *name, uint32_t nlen, const void *key, uint32_t klen)
{
    ob_str(b, name, nlen);
    ob_str(b, key, klen);
}

void op_put_vdrop(opbuf *b, const void *name, uint32_t nlen) { ob_str(b, name, nlen); }

void op_put_expire(opbuf *b, const void *key, uint32_t klen, int64_t expire_ms)
{
    ob_str(b, key, klen);
    ob_u64(b, (uint64_t)expire_ms);
}

void op_put_rename(opbuf *b, const void *key, uint32_t klen, const void *newkey, uint32_t nklen)
{
    ob_str(b, key, klen);
    ob_str(b, newkey, nklen);
}

void op_put_move(opbuf *b, const void *key, uint32_t klen, uint32_t db)
{
    ob_str(b, key, klen);
    ob_u32(b, db);
}

void op_put_copy(opbuf *b, const void *key, uint32_t klen, const void *newkey, uint32_t nklen,
                 uint32_t db, int replace)
{
    ob_str(b, key, klen);
    ob_str(b, newkey, nklen);
    ob_u32(b, db);
    ob_u8(b, replace ? 1 : 0);
}

void op_put_swapdb(opbuf *b, uint32_t db1, uint32_t db2)
{
    ob_u32(b, db1);
    ob_u32(b, db2);
}

void op_put_hhead(opbuf *b, const void *key, uint32_t klen, unsigned flags, uint32_t n)
{
    ob_str(b, key, klen);
    ob_u8(b, (uint8_t)flags);
    ob_u32(b, n);
}

void op_put_hfield(opbuf *b, uint8_t type, const void *f, uint32_t flen, const void *v,
                   uint32_t vlen, int64_t expire_ms)
{
    ob_str(b, f, flen);
    if (type == OP_HSET) ob_str(b, v, vlen);
    if (type != OP_HDEL && type != OP_FTDEF) ob_u64(b, (uint64_t)expire_ms);
}

void op_put_indb(opbuf *b, uint32_t db, uint8_t type)
{
    ob_u32(b, db);
    ob_u8(b, type);
}

void op_put_batch_item(opbuf *b, uint8_t type, const void *payload, uint32_t len)
{
    ob_u8(b, type);
    ob_str(b, payload, len);
}

/* ---- decoding ------------------------------------------------------------ */

typedef struct rd {
    const unsigned char *p;
    size_t left;
    int bad;
} rd;

static const unsigned char *rd_take(rd *r, size_t n)
{
    if (r->bad || n > r->left) {
        r->bad = 1;
        return NULL;
    }
    const unsigned char *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

static uint8_t rd_u8(rd *r)
{
    const unsigned char *p = rd_take(r, 1);
    return p ? p[0] : 0;
}

static uint16_t rd_u16(rd *r)
{
    const unsigned char *p = rd_take(r, 2);
    return p ? le_get16(p) : 0;
}

static uint32_t rd_u32(rd *r)
{
    const unsigned char *p = rd_take(r, 4);
    return p ? le_get32(p) : 0;
}

static uint64_t rd_u64(rd *r)
{
    const unsigned char *p = rd_take(r, 8);
    return p ? le_get64(p) : 0;
}

static const char *rd_str(rd *r, uint32_t *len)
{
    *len = rd_u32(r);
    const unsigned char *p = rd_take(r, *len);
    return p ? (const char *)p : "";
}

/* The sizes o asks for, against lim: 1 if within. */
static int op_within(const op *o, const op_limits *lim)
{
    if (o->klen > lim->string_max || o->vlen > lim->string_max) return 0;
    switch (o->type) {
    case OP_SETRANGE:
        return (uint64_t)o->offset + o->vlen <= lim->string_max;
    case OP_VNEW:
        return o->dim <= lim->dim_max && o->M <= lim->m_max && o->efc <= lim->ef_max &&
               o->efs <= lim->ef_max && o->capacity <= lim->capacity_max &&
               o->proj_in <= lim->dim_max;
    case OP_VADD:
        return o->dim <= lim->dim_max && o->plen <= lim->payload_max && o->ef <= lim->ef_max;
    case OP_VSETATTR:
        return o->plen <= lim->payload_max;
    case OP_MOVE:
    case OP_COPY:
        return o->db < lim->db_max;
    case OP_SWAPDB:
        return o->db < lim->db_max && o->db2 < lim->db_max;
    default:
        return 1;
    }
}

/* One field of a hash record at r (the layout of type); *big is set when a
 * length passes string_max. */
static void rd_hfield(rd *r, uint8_t type, uint64_t string_max, int *big, op_hfield *out)
{
    out->f = rd_str(r, &out->flen);
    out->v = "";
    out->vlen = 0;
    out->expire_ms = -1;
    if (type == OP_HSET) out->v = rd_str(r, &out->vlen);
    if (type != OP_HDEL && type != OP_FTDEF) {
        out->expire_ms = (int64_t)rd_u64(r);
        if (out->expire_ms < -1) r->bad = 1;
    }
    if (out->flen > string_max || out->vlen > string_max) *big = 1;
}

/* OP_HSET, OP_HDEL, OP_HEXPIRE (and OP_FTDEF, laid out as OP_HDEL): the head, then every field checked (the
 * count cannot promise more fields than the bytes hold: each takes at
 * least 4). */
static int rd_hash_record(rd *r, uint8_t type, const op_limits *lim, op *o)
{
    int big = 0;
    o->key = rd_str(r, &o->klen);
    o->flags = rd_u8(r);
    o->nfields = rd_u32(r);
    if (type == OP_FTDEF ? o->flags > 2 : (o->flags & ~(type == OP_HSET ? OP_HSET_NEW : 0u)))
        r->bad = 1;
    o->fields = r->p;
    o->fields_len = r->left;
    for (uint32_t i = 0; i < o->nfields && !r->bad; i++) {
        op_hfield f;
        rd_hfield(r, type, lim->string_max, &big, &f);
    }
    return big;
}

int op_hfield_next(const op *o, size_t *pos, op_hfield *out)
{
    if (*pos >= o->fields_len) return 0;
    rd r = {o->fields + *pos, o->fields_len - *pos, 0};
    int big = 0;
    rd_hfield(&r, o->type, UINT64_MAX, &big, out);
    if (r.bad) return 0;
    *pos = o->fields_len - r.left;
    return 1;
}

int op_decode(uint8_t type, const void *payload, size_t len, const op_limits *lim, op *o)
{
    int big = 0;
    rd r = {payload, len, 0};
    memset(o, 0, sizeof *o);
    o->type = type;
    o->expire_ms = -1;
    switch (type) {
    case OP_SET:
        o->key = rd_str(&r, &o->klen);
        o->val = rd_str(&r, &o->vlen);
        o->expire_ms = (int64_t)rd_u64(&r);
        break;
    case OP_DEL:
        o->key = rd_str(&r, &o->klen);
        break;
    case OP_FLUSHALL:
        break;
    case OP_SETRANGE:
        o->key = rd_str(&r, &o->klen);
        o->offset = rd_u32(&r);
        o->val = rd_str(&r, &o->vlen);
        break;
    case OP_VNEW:
        o->name = rd_str(&r, &o->nlen);
        o->vtype = rd_u8(&r);
        o->metric = rd_u8(&r);
        {
            uint16_t more = rd_u16(&r);
            o->quant = (uint8_t)more;
            o->keep_float = (more & OP_VNEW_FLOAT) != 0;
            if (o->quant > 2 || (more & ~(0xffu | OP_VNEW_PROJ | OP_VNEW_FLOAT)) ||
                (o->keep_float && o->quant == 0))
                r.bad = 1;
            o->dim = rd_u32(&r);
            o->M = rd_u32(&r);
            o->efc = rd_u32(&r);
            o->efs = rd_u32(&r);
            o->seed = rd_u64(&r);
            o->capacity = rd_u32(&r);
            o->embed = rd_str(&r, &o->elen);
            if (more & OP_VNEW_PROJ) {
                o->proj_in = rd_u32(&r);
                if (o->proj_in == 0) r.bad = 1;
            }
        }
        break;
    case OP_VADD:
        o->name = rd_str(&r, &o->nlen);
        o->key = rd_str(&r, &o->klen);
        o->dim = rd_u32(&r);
        /* the vector is taken only if the payload can hold it: dim * 4
         * must not wrap, and the limit is checked after the layout */
        if (o->dim == 0 || o->dim > UINT32_MAX / 4) r.bad = 1;
        else o->vec = rd_take(&r, (size_t)o->dim * 4);
        o->flags = rd_u8(&r);
        if ((o->flags & ~(OP_VADD_AUTOID | OP_VADD_PAYLOAD | OP_VADD_DROP | OP_VADD_EF |
                          OP_VADD_OUTCOME)) ||
            ((o->flags & OP_VADD_PAYLOAD) && (o->flags & OP_VADD_DROP)))
            r.bad = 1;
        if (o->flags & OP_VADD_PAYLOAD) o->payload = rd_str(&r, &o->plen);
        if (o->flags & OP_VADD_EF) {
            o->ef = rd_u32(&r);
            if (o->ef == 0) r.bad = 1;
        }
        if (o->flags & OP_VADD_OUTCOME) {
            o->outcome = rd_str(&r, &o->olen);
            if (o->olen == 0 || o->olen > OP_OUTCOME_MAX) r.bad = 1;
        }
        break;
    case OP_VSETATTR:
        o->name = rd_str(&r, &o->nlen);
        o->key = rd_str(&r, &o->klen);
        o->drop = rd_u8(&r);
        o->payload = rd_str(&r, &o->plen);
        if (o->drop > 1 || (o->drop && o->plen)) r.bad = 1;
        break;
    case OP_VDEL:
        o->name = rd_str(&r, &o->nlen);
        o->key = rd_str(&r, &o->klen);
        break;
    case OP_VDROP:
        o->name = rd_str(&r, &o->nlen);
        break;
    case OP_EXPIRE:
        o->key = rd_str(&r, &o->klen);
        o->expire_ms = (int64_t)rd_u64(&r);
        break;
    case OP_RENAME:
        o->key = rd_str(&r, &o->klen);
        o->val = rd_str(&r, &o->vlen);
        break;
    case OP_MOVE:
        o->key = rd_str(&r, &o->klen);
        o->db = rd_u32(&r);
        break;
    case OP_COPY:
        o->key = rd_str(&r, &o->klen);
        o->val = rd_str(&r, &o->vlen);
        o->db = rd_u32(&r);
        o->replace = rd_u8(&r);
        if (o->replace > 1) r.bad = 1;
        break;
    case OP_SWAPDB:
        o->db = rd_u32(&r);
        o->db2 = rd_u32(&r);
        break;
    case OP_FLUSHDB:
        break;
    case OP_HSET:
    case OP_HDEL:
    case OP_HEXPIRE:
    case OP_FTDEF:
        big = rd_hash_record(&r, type, lim, o);
        break;
    default:
        return -EBADMSG;
    }
    if (r.bad || r.left) return -EBADMSG;
    return op_within(o, lim) && !big ? 0 : -EFBIG;
}

int op_batch_next(const void *payload, size_t len, size_t *pos, uint8_t *type,
                  const void **item, uint32_t *ilen)
{
    if (*pos >= len) return 0;
    rd r = {(const unsigned char *)payload + *pos, len - *pos, 0};
    *type = rd_u8(&r);
    *item = rd_str(&r, ilen);
    if (r.bad || *type == OP_BATCH || *type == 0) return -EBADMSG;
    *pos = len - r.left;
    return 1;
}

int op_indb(const void *payload, size_t len, const op_limits *lim, uint32_t *db, uint8_t *type,
            const void **inner, uint32_t *ilen)
{
    rd r = {payload, len, 0};
    *db = rd_u32(&r);
    *type = rd_u8(&r);
    if (r.bad || *type == 0 || *type == OP_BATCH || *type == OP_INDB || r.left > UINT32_MAX)
        return -EBADMSG;
    *inner = r.p;
    *ilen = (uint32_t)r.left;
    return *db < lim->db_max ? 0 : -EFBIG;
}

float op_vec_at(const op *o, uint32_t i) { return le_getf32(o->vec + 4 * (size_t)i); }
