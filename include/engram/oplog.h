/* oplog.h -- what the write-ahead log says: one record type per kind of
 * write, and their payloads.  Pure: encoding into a caller's buffer and
 * decoding from bytes; no I/O, no keyspace, no indices.
 *
 * The log records effects, not commands: after a key-value command the
 * server logs the key's resulting state (OP_SET with value and absolute
 * expiry, or OP_DEL), so replay needs no clock and no command semantics,
 * and EXPIRE 10 replayed tomorrow still means the instant it meant today.
 * APPEND and SETRANGE log only the bytes written (OP_SETRANGE), not the
 * whole value.  Vector writes log the operation with the vector as the
 * client gave it; HNSW is deterministic (seeded per index, see hnsw.c), so
 * replaying the same operations rebuilds the same graph.  Expiry itself is
 * not logged: the deadline is, and a replayed key past it is expired lazily.
 *
 * Keys of objects (vector sets) have no value to log: their changes are
 * logged as operations (OP_VNEW, OP_VADD, ...), and what a key command does
 * to one as OP_EXPIRE, OP_RENAME, OP_MOVE, OP_COPY (used for every type).
 * A hash logs the fields a command changed, in their resulting state: the
 * fields written with their values and absolute deadlines (OP_HSET), the
 * fields gone (OP_HDEL: deleted, or given a deadline already past), the
 * deadlines changed (OP_HEXPIRE).  As with keys, a field's expiry is not
 * logged: its deadline is, and a replayed field past it expires as usual.
 *
 * Databases: a record is about database 0 unless it is wrapped in OP_INDB,
 * which names the database and carries one record of another type (a log
 * from before databases existed is all database 0).
 *
 * Atomicity: a command that makes several changes (MSET, RENAME, EXEC) logs
 * them as one OP_BATCH record, so recovery sees all of them or none.
 *
 * Payload layouts (all integers little-endian; str = u32 length + bytes):
 *   OP_SET      str key, str value, i64 expire_ms (-1 = none)
 *   OP_DEL      str key
 *   OP_FLUSHALL (empty)                 keys and indices
 *   OP_SETRANGE str key, u32 offset, str bytes
 *                                       (zero-fills a gap; creates the key)
 *   OP_EXPIRE   str key, i64 expire_ms (-1 = none)   a key's TTL (any type)
 *   OP_RENAME   str key, str newkey     (newkey overwritten)
 *   OP_MOVE     str key, u32 db         to another database (absent there)
 *   OP_COPY     str key, str newkey, u32 db, u8 replace (0/1)
 *   OP_SWAPDB   u32 db1, u32 db2
 *   OP_HSET     str key, u8 flags, u32 n, n x {str field, str value,
 *               i64 expire_ms (-1 = none)}
 *               (flags: bit 0 the command created the key -- whatever
 *               replay finds there (a key that was stale live) is dropped
 *               first; other bits zero.  Creates the hash if missing)
 *   OP_HDEL     str key, u8 flags (0), u32 n, n x str field
 *               (a hash left without fields goes)
 *   OP_HEXPIRE  str key, u8 flags (0), u32 n, n x {str field, i64 expire_ms
 *               (-1 = none)}: stored fields' deadlines
 *   OP_FLUSHDB  (empty)                 the record's database
 *   OP_VNEW     str name, u8 type, u8 metric, u16 more, u32 dim, u32 M,
 *               u32 ef_construction, u32 ef_search, u64 seed, u32 capacity
 *               (0 = unbounded), str embedder name ("" = none),
 *               [u32 projection input dim]
 *               (more: bits 0-7 the quantisation, quant.h; bit 8: the
 *               projection's input dim follows -- a set made by Redis's
 *               VADD ... REDUCE; bit 9: a quantised set keeps a float
 *               copy (VADD ... RERANK); other bits zero.  Logs from before
 *               quantisation have more = 0.)
 *   OP_VADD     str name, str key, u32 dim, dim x f32, u8 flags,
 *               [str payload], [u32 ef], [str outcome]
 *               (flags: bit 0 the key is an auto id from VADD index *;
 *               bit 1 a payload follows; bit 2 the entry loses its
 *               payload (not with bit 1); bit 3 the build beam follows;
 *               bit 4 the insert's outcome follows (1 to OP_OUTCOME_MAX
 *               bytes: the HNSW level and neighbours it chose, the
 *               index's own layout, vindex_insert_outcome) -- replaying
 *               it skips the neighbour search, and an outcome that does
 *               not fit the index is ignored (an ordinary insert); other
 *               bits zero.  The vector is what the index was given,
 *               after any projection.  A full ring index evicts its
 *               oldest entry on replay exactly as it did live: evictions
 *               are not logged)
 *   OP_VSETATTR str name, str key, u8 drop (0/1), str attributes ("" when
 *               drop): an existing entry's payload replaced or removed
 *   OP_VDEL     str name, str key
 *   OP_VDROP    str name
 *   OP_FTDEF    str index, u8 action (0 create, 1 drop, 2 alter), u32 n,
 *               n x str argument (FT.CREATE's after the name; FT.ALTER's
 *               field definitions) -- laid out as OP_HDEL; always database 0
 *   OP_BATCH    repeated { u8 type, u32 len, payload[len] } (no nesting)
 *   OP_INDB     u32 db, u8 type, payload of that type (to the end; not a
 *               batch and not another OP_INDB)
 *
 * Limits: the layouts admit more than a live server ever writes (a
 * SETRANGE's offset + length up to 4 GiB, a dimension up to 2^32 - 1), so
 * the decoder also takes the caller's limits (op_limits) and refuses a
 * record that asks for more: replaying it could only be corruption, or an
 * attack through a crafted log, and must not make the server allocate 4
 * GiB or build an index no command could have created.
 *
 * Errors: decoders return 0, -EBADMSG when the payload does not match its
 * layout exactly (short, trailing bytes, bad enum), or -EFBIG when it
 * matches but asks for more than the limits. */
#ifndef ENGRAM_OPLOG_H
#define ENGRAM_OPLOG_H

#include <stddef.h>
#include <stdint.h>

enum {
    OP_SET = 1,
    OP_DEL = 2,
    OP_FLUSHALL = 3,
    OP_SETRANGE = 4,
    OP_EXPIRE = 5,
    OP_RENAME = 6,
    OP_MOVE = 7,
    OP_COPY = 8,
    OP_SWAPDB = 9,
    OP_FLUSHDB = 10,
    OP_HSET = 11,
    OP_HDEL = 12,
    OP_HEXPIRE = 13,
    OP_VNEW = 16,
    OP_VADD = 17,
    OP_VDEL = 18,
    OP_VDROP = 19,
    OP_VSETATTR = 20,
    OP_FTDEF = 21,
    OP_BATCH = 32,
    OP_INDB = 33,
};

/* A decoded operation: pointers into the payload (valid while it is). */
typedef struct op {
    uint8_t type;
    const char *key;  uint32_t klen;       /* SET, DEL, SETRANGE, EXPIRE, RENAME, MOVE,
                                              COPY, VADD, VDEL */
    const char *val;  uint32_t vlen;       /* SET value, SETRANGE bytes; RENAME, COPY: newkey */
    int64_t expire_ms;                     /* SET, EXPIRE */
    uint32_t db, db2;                      /* MOVE, COPY: db; SWAPDB: both */
    uint8_t replace;                       /* COPY */
    uint32_t offset;                       /* SETRANGE */
    const char *name; uint32_t nlen;       /* V* index name */
    uint8_t vtype, metric, quant, keep_float; /* VNEW */
    uint32_t proj_in;                      /* VNEW: projection input dim, 0 = none */
    uint32_t ef;                           /* VADD: build beam, 0 = the index's */
    uint8_t drop;                          /* VSETATTR */
    uint32_t dim, M, efc, efs;             /* VNEW; VADD: dim */
    uint64_t seed;                         /* VNEW */
    uint32_t capacity;                     /* VNEW */
    const char *embed; uint32_t elen;      /* VNEW */
    const unsigned char *vec;              /* VADD: dim little-endian f32 (unaligned) */
    uint8_t flags;                         /* VADD: OP_VADD_*; HSET: OP_HSET_NEW */
    const char *payload; uint32_t plen;    /* VADD, when OP_VADD_PAYLOAD; VSETATTR */
    const char *outcome; uint32_t olen;    /* VADD, when OP_VADD_OUTCOME */
    uint32_t nfields;                      /* HSET, HDEL, HEXPIRE: fields (op_hfield_next) */
    const unsigned char *fields;           /* ... their encoded list and */
    size_t fields_len;                     /* ... its bytes */
} op;

/* One field of an OP_HSET / OP_HDEL / OP_HEXPIRE record. */
typedef struct op_hfield {
    const char *f; uint32_t flen;
    const char *v; uint32_t vlen;          /* HSET */
    int64_t expire_ms;                     /* HSET, HEXPIRE: -1 = none */
} op_hfield;

#define OP_HSET_NEW 1u     /* HSET's flags: the command created the key */

#define OP_VADD_AUTOID  1u
#define OP_VADD_PAYLOAD 2u
#define OP_VADD_DROP    4u
#define OP_VADD_EF      8u
#define OP_VADD_OUTCOME 16u
#define OP_OUTCOME_MAX  65536u   /* an outcome's bytes, at most */
#define OP_VNEW_PROJ    0x100u   /* VNEW's `more`: a projection dim follows */
#define OP_VNEW_FLOAT   0x200u   /* VNEW's `more`: the set keeps a float copy */

/* A growable byte buffer the encoders append to (mem.h: aborts on OOM). */
typedef struct opbuf {
    unsigned char *p;
    size_t len, cap;
} opbuf;

void opbuf_fini(opbuf *b);
static inline void opbuf_reset(opbuf *b) { b->len = 0; }

/* Encoders: append one payload (not the record header) to b. */
void op_put_set(opbuf *b, const void *key, uint32_t klen, const void *val, uint32_t vlen, int64_t expire_ms);
void op_put_del(opbuf *b, const void *key, uint32_t klen);
void op_put_setrange(opbuf *b, const void *key, uint32_t klen, uint32_t offset, const void *bytes, uint32_t n);
void op_put_vnew(opbuf *b, const void *name, uint32_t nlen, uint8_t vtype, uint8_t metric,
                 uint32_t dim, uint32_t M, uint32_t efc, uint32_t efs, uint64_t seed,
                 uint32_t capacity, const void *embed, uint32_t elen);
/* With a quantisation, a projection input dim (0 = none) and whether a
 * quantised set keeps a float copy. */
void op_put_vnew_ex(opbuf *b, const void *name, uint32_t nlen, uint8_t vtype, uint8_t metric,
                    uint32_t dim, uint32_t M, uint32_t efc, uint32_t efs, uint64_t seed,
                    uint32_t capacity, const void *embed, uint32_t elen, uint8_t quant,
                    uint32_t proj_in, int keep_float);
/* payload may be NULL (no payload: the flag bit stays clear). */
void op_put_vadd(opbuf *b, const void *name, uint32_t nlen, const void *key, uint32_t klen,
                 const float *vec, uint32_t dim, int autoid, const void *payload, uint32_t plen);
/* flags: OP_VADD_AUTOID, OP_VADD_DROP (PAYLOAD and EF follow from payload
 * and ef != 0). */
void op_put_vadd_ex(opbuf *b, const void *name, uint32_t nlen, const void *key, uint32_t klen,
                    const float *vec, uint32_t dim, unsigned flags, const void *payload,
                    uint32_t plen, uint32_t ef);
/* The same with the insert's outcome (olen 0: none). */
void op_put_vadd_outcome(opbuf *b, const void *name, uint32_t nlen, const void *key,
                         uint32_t klen, const float *vec, uint32_t dim, unsigned flags,
                         const void *payload, uint32_t plen, uint32_t ef, const void *outcome,
                         uint32_t olen);
void op_put_vsetattr(opbuf *b, const void *name, uint32_t nlen, const void *key, uint32_t klen,
                     int drop, const void *attr, uint32_t alen);
void op_put_vdel(opbuf *b, const void *name, uint32_t nlen, const void *key, uint32_t klen);
void op_put_vdrop(opbuf *b, const void *name, uint32_t nlen);
void op_put_expire(opbuf *b, const void *key, uint32_t klen, int64_t expire_ms);
void op_put_rename(opbuf *b, const void *key, uint32_t klen, const void *newkey, uint32_t nklen);
void op_put_move(opbuf *b, const void *key, uint32_t klen, uint32_t db);
void op_put_copy(opbuf *b, const void *key, uint32_t klen, const void *newkey, uint32_t nklen,
                 uint32_t db, int replace);
void op_put_swapdb(opbuf *b, uint32_t db1, uint32_t db2);
/* Hash records: the head (type OP_HSET, OP_HDEL or OP_HEXPIRE; flags
 * OP_HSET_NEW for HSET only; n fields follow), then n fields of the
 * record's kind (op_put_hfield: v/vlen for HSET, expire_ms for HSET and
 * HEXPIRE; the others are not written). */
void op_put_hhead(opbuf *b, const void *key, uint32_t klen, unsigned flags, uint32_t n);
void op_put_hfield(opbuf *b, uint8_t type, const void *f, uint32_t flen, const void *v,
                   uint32_t vlen, int64_t expire_ms);
/* The head of an OP_INDB payload; the inner payload follows. */
void op_put_indb(opbuf *b, uint32_t db, uint8_t type);
/* One batch element header: u8 type, u32 len (the payload follows). */
void op_put_batch_item(opbuf *b, uint8_t type, const void *payload, uint32_t len);

/* The most a record may ask for: what the server that replays it accepts
 * from clients.  Each bound is inclusive. */
typedef struct op_limits {
    uint64_t string_max;     /* a string's length, and where a SETRANGE ends
                                (offset + length) */
    uint32_t dim_max;        /* VNEW and VADD dimension */
    uint32_t m_max, ef_max;  /* VNEW M, ef_construction, ef_search */
    uint32_t capacity_max;   /* VNEW ring capacity */
    uint32_t payload_max;    /* VADD payload length */
    uint32_t db_max;         /* databases: a db number must be below it */
} op_limits;

/* Decode a payload of the given type (not OP_BATCH) and check it against
 * lim: 0, -EBADMSG or -EFBIG (see Errors above). */
int op_decode(uint8_t type, const void *payload, size_t len, const op_limits *lim, op *out);

/* Walk an OP_BATCH payload: *pos starts at 0; returns 1 with the next
 * element's type/payload/len, 0 at the end, -EBADMSG if malformed (an
 * element that overruns, or a nested batch). */
int op_batch_next(const void *payload, size_t len, size_t *pos, uint8_t *type,
                  const void **item, uint32_t *ilen);

/* Open an OP_INDB payload: its database (checked against lim->db_max),
 * inner type and payload.  0, -EBADMSG (short, or an inner OP_BATCH /
 * OP_INDB / 0) or -EFBIG (db >= db_max). */
int op_indb(const void *payload, size_t len, const op_limits *lim, uint32_t *db, uint8_t *type,
            const void **inner, uint32_t *ilen);

/* The next field of a decoded OP_HSET / OP_HDEL / OP_HEXPIRE: *pos starts
 * at 0; 1 with *out, 0 after the last (op_decode checked them all). */
int op_hfield_next(const op *o, size_t *pos, op_hfield *out);

/* Read the i-th float of an OP_VADD vector (unaligned little-endian). */
float op_vec_at(const op *o, uint32_t i);

#endif
