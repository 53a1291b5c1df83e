/* fuzz_oplog.c -- the log's payload decoders (oplog.h: op_decode,
 * op_batch_next, op_indb, op_hfield_next), what replay reads from every
 * record of the write-ahead log.
 *
 * Feeds: byte 0 as the record type (any byte: unknown types included), the
 * rest as its payload, decoded under two sets of limits: a live server's
 * (512 MB strings, 32768 dimensions, 16 databases) and tight ones (16-byte
 * strings, 8 dimensions, 2 databases).  OP_BATCH payloads are walked item
 * by item and OP_INDB payloads opened, each inner payload decoded the same
 * way.
 *
 * Checks: the decoder accepts exactly the layout (oplog.h): whatever it
 * accepts, encoded again with the op_put_* encoders from the decoded
 * fields, gives back the payload byte for byte; a hash record's fields
 * walk (op_hfield_next) yields exactly its count and ends at the end of
 * its bytes; limits only ever turn an accepted payload into -EFBIG (never
 * a malformed one into an accepted one); the only codes are 0, -EBADMSG
 * and -EFBIG. */
#include "fuzz.h"

#include <errno.h>
#include <string.h>

#include "engram/oplog.h"

static const op_limits live_lim = {
    .string_max = 512u << 20, .dim_max = 32768, .m_max = 512, .ef_max = 1u << 20,
    .capacity_max = 1u << 30, .payload_max = 512u << 20, .db_max = 16,
};
static const op_limits tight_lim = {
    .string_max = 16, .dim_max = 8, .m_max = 16, .ef_max = 64,
    .capacity_max = 100, .payload_max = 16, .db_max = 2,
};

/* Encode o again (a plain record: not BATCH, not INDB). */
static void reencode(const op *o, opbuf *b)
{
    switch (o->type) {
    case OP_SET: op_put_set(b, o->key, o->klen, o->val, o->vlen, o->expire_ms); break;
    case OP_DEL: op_put_del(b, o->key, o->klen); break;
    case OP_FLUSHALL: case OP_FLUSHDB: break;
    case OP_SETRANGE: op_put_setrange(b, o->key, o->klen, o->offset, o->val, o->vlen); break;
    case OP_EXPIRE: op_put_expire(b, o->key, o->klen, o->expire_ms); break;
    case OP_RENAME: op_put_rename(b, o->key, o->klen, o->val, o->vlen); break;
    case OP_MOVE: op_put_move(b, o->key, o->klen, o->db); break;
    case OP_COPY: op_put_copy(b, o->key, o->klen, o->val, o->vlen, o->db, o->replace); break;
    case OP_SWAPDB: op_put_swapdb(b, o->db, o->db2); break;
    case OP_VNEW:
        op_put_vnew_ex(b, o->name, o->nlen, o->vtype, o->metric, o->dim, o->M, o->efc, o->efs,
                       o->seed, o->capacity, o->embed, o->elen, o->quant, o->proj_in,
                       o->keep_float);
        break;
    case OP_VADD: {
        float *v = malloc((size_t)o->dim * sizeof *v);
        FUZZ_CHECK(v != NULL, "out of memory (dim %u)", o->dim);
        for (uint32_t i = 0; i < o->dim; i++) v[i] = op_vec_at(o, i);
        op_put_vadd_outcome(b, o->name, o->nlen, o->key, o->klen, v, o->dim,
                            o->flags & (OP_VADD_AUTOID | OP_VADD_DROP), o->payload, o->plen,
                            o->ef, o->outcome, (o->flags & OP_VADD_OUTCOME) ? o->olen : 0);
        free(v);
        break;
    }
    case OP_VSETATTR:
        op_put_vsetattr(b, o->name, o->nlen, o->key, o->klen, o->drop, o->payload, o->plen);
        break;
    case OP_VDEL: op_put_vdel(b, o->name, o->nlen, o->key, o->klen); break;
    case OP_VDROP: op_put_vdrop(b, o->name, o->nlen); break;
    case OP_HSET: case OP_HDEL: case OP_HEXPIRE: case OP_FTDEF: {
        op_put_hhead(b, o->key, o->klen, o->flags, o->nfields);
        size_t pos = 0;
        uint32_t n = 0;
        op_hfield f;
        while (op_hfield_next(o, &pos, &f)) {
            n++;
            FUZZ_CHECK(n <= o->nfields, "more fields than the count %u", o->nfields);
            op_put_hfield(b, o->type, f.f, f.flen, f.v, f.vlen, f.expire_ms);
        }
        FUZZ_CHECK(n == o->nfields && pos == o->fields_len,
                   "%u of %u fields, %zu of %zu bytes", n, o->nfields, pos, o->fields_len);
        break;
    }
    default:
        FUZZ_CHECK(0, "decoded an unknown type %u", o->type);
    }
}

static void decode_one(uint8_t type, const uint8_t *p, size_t len, int depth);

static void decode_plain(uint8_t type, const uint8_t *p, size_t len)
{
    op o, t;
    int rc = op_decode(type, p, len, &live_lim, &o);
    int rt = op_decode(type, p, len, &tight_lim, &t);
    FUZZ_CHECK(rc == 0 || rc == -EBADMSG || rc == -EFBIG, "code %d", rc);
    FUZZ_CHECK(rt == 0 || rt == -EBADMSG || rt == -EFBIG, "code %d", rt);
    FUZZ_CHECK((rc == -EBADMSG) == (rt == -EBADMSG), "the layout's verdict depends on limits");
    FUZZ_CHECK(rt != 0 || rc == 0, "accepted under tight limits, not under a server's");
    if (rc == -EBADMSG) return;
    /* -EFBIG still decoded the layout: it must round-trip as well. */
    opbuf b = { 0 };
    reencode(&o, &b);
    FUZZ_CHECK(b.len == len && (len == 0 || memcmp(b.p, p, len) == 0),
               "type %u: %zu bytes re-encode as %zu different ones", type, len, b.len);
    opbuf_fini(&b);
}

static void decode_one(uint8_t type, const uint8_t *p, size_t len, int depth)
{
    if (type == OP_BATCH) {
        size_t pos = 0;
        uint8_t t;
        const void *item;
        uint32_t ilen;
        int rc;
        while ((rc = op_batch_next(p, len, &pos, &t, &item, &ilen)) == 1) {
            FUZZ_CHECK(t != OP_BATCH && t != 0 && pos <= len, "item type %u at %zu", t, pos);
            FUZZ_CHECK((const uint8_t *)item >= p && (const uint8_t *)item + ilen <= p + len,
                       "an item outside its batch");
            decode_one(t, item, ilen, depth + 1);
        }
        FUZZ_CHECK(rc == 0 || rc == -EBADMSG, "batch code %d", rc);
        return;
    }
    if (type == OP_INDB) {
        uint32_t db, ilen;
        uint8_t t;
        const void *inner;
        int rc = op_indb(p, len, &live_lim, &db, &t, &inner, &ilen);
        FUZZ_CHECK(rc == 0 || rc == -EBADMSG || rc == -EFBIG, "indb code %d", rc);
        if (rc == -EBADMSG) return;
        FUZZ_CHECK(t != 0 && t != OP_BATCH && t != OP_INDB, "inner type %u", t);
        FUZZ_CHECK((const uint8_t *)inner == p + 5 && ilen == len - 5, "inner payload");
        FUZZ_CHECK(rc == 0 || db >= live_lim.db_max, "-EFBIG for db %u", db);
        decode_one(t, inner, ilen, depth + 1);
        return;
    }
    decode_plain(type, p, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    /* The payload in its own block, so ASan sees a read past its end. */
    uint8_t *p = malloc(size - 1 ? size - 1 : 1);
    FUZZ_CHECK(p != NULL, "out of memory");
    memcpy(p, data + 1, size - 1);
    decode_one(data[0], p, size - 1, 0);
    free(p);
    return 0;
}
