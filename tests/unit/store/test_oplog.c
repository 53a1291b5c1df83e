/* test_oplog.c -- the write-ahead log's payload codec: every record type
 * round-trips, batches iterate, and no malformed payload decodes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engram/oplog.h"

/* The server's limits (persist_load.c): 2 GiB strings, dimension 32768,
 * M 64, ef 100000, rings of 2^30, payloads of 512 MiB. */
static const op_limits LIM = {
    .string_max = 2048ULL << 20, .dim_max = 32768, .m_max = 64, .ef_max = 100000,
    .capacity_max = 1u << 30, .payload_max = 1u << 29, .db_max = 16,
};

/* Every strict prefix and one-byte extension of a valid payload is refused. */
static void check_strict(uint8_t type, const opbuf *b)
{
    op o;
    for (size_t n = 0; n < b->len; n++) {
        int rc = op_decode(type, b->p, n, &LIM, &o);
        /* The only prefix that may be valid is none: layouts have fixed
         * parts after every variable one. */
        assert_int_equal(rc, -EBADMSG);
    }
    unsigned char big[4096];
    assert_true(b->len < sizeof big);
    memcpy(big, b->p, b->len);
    big[b->len] = 0;
    assert_int_equal(op_decode(type, big, b->len + 1, &LIM, &o), -EBADMSG);
}

static void test_set_del(void **state)
{
    opbuf b = {0};
    op o;
    op_put_set(&b, "k\0y", 3, "val", 3, 1234567890123LL);
    assert_int_equal(op_decode(OP_SET, b.p, b.len, &LIM, &o), 0);
    assert_int_equal(o.klen, 3);
    assert_memory_equal(o.key, "k\0y", 3);
    assert_int_equal(o.vlen, 3);
    assert_memory_equal(o.val, "val", 3);
    assert_int_equal(o.expire_ms, 1234567890123LL);
    check_strict(OP_SET, &b);

    opbuf_reset(&b);
    op_put_set(&b, "", 0, "", 0, -1);
    assert_int_equal(op_decode(OP_SET, b.p, b.len, &LIM, &o), 0);
    assert_int_equal(o.klen, 0);
    assert_int_equal(o.vlen, 0);
    assert_int_equal(o.expire_ms, -1);

    opbuf_reset(&b);
    op_put_del(&b, "gone", 4);
    assert_int_equal(op_decode(OP_DEL, b.p, b.len, &LIM, &o), 0);
    assert_memory_equal(o.key, "gone", 4);
    check_strict(OP_DEL, &b);

    assert_int_equal(op_decode(OP_FLUSHALL, "", 0, &LIM, &o), 0);
    assert_int_equal(op_decode(OP_FLUSHALL, "x", 1, &LIM, &o), -EBADMSG);
    assert_int_equal(op_decode(0, "", 0, &LIM, &o), -EBADMSG);
    assert_int_equal(op_decode(99, "", 0, &LIM, &o), -EBADMSG);
    assert_int_equal(op_decode(OP_BATCH, "", 0, &LIM, &o), -EBADMSG);
    opbuf_fini(&b);
}

static void test_setrange(void **state)
{
    opbuf b = {0};
    op o;
    op_put_setrange(&b, "k", 1, 7, "abc", 3);
    assert_int_equal(op_decode(OP_SETRANGE, b.p, b.len, &LIM, &o), 0);
    assert_int_equal(o.offset, 7);
    assert_int_equal(o.vlen, 3);
    assert_memory_equal(o.val, "abc", 3);
    check_strict(OP_SETRANGE, &b);
    /* The layout holds an end up to 4 GiB; a server never writes one past
     * its string limit (2 GiB), so one is a damaged or crafted log. */
    opbuf_reset(&b);
    op_put_setrange(&b, "k", 1, UINT32_MAX - 1, "abc", 3);
    assert_int_equal(op_decode(OP_SETRANGE, b.p, b.len, &LIM, &o), -EFBIG);
    opbuf_reset(&b);
    op_put_setrange(&b, "k", 1, (2048u << 20) - 3, "abc", 3);     /* ends at the limit */
    assert_int_equal(op_decode(OP_SETRANGE, b.p, b.len, &LIM, &o), 0);
    opbuf_reset(&b);
    op_put_setrange(&b, "k", 1, (2048u << 20) - 2, "abc", 3);     /* one past it */
    assert_int_equal(op_decode(OP_SETRANGE, b.p, b.len, &LIM, &o), -EFBIG);
    opbuf_fini(&b);
}

/* Every size a record can ask for is refused one past its limit and
 * accepted at it. */
static void test_limits(void **state)
{
    opbuf b = {0};
    op o;
    struct { uint32_t dim, M, efc, efs, cap; int rc; } vnew[] = {
        {32768, 64, 100000, 100000, 1u << 30, 0},
        {32769, 16, 200, 100, 0, -EFBIG},
        {128, 65, 200, 100, 0, -EFBIG},
        {128, 16, 100001, 100, 0, -EFBIG},
        {128, 16, 200, 100001, 0, -EFBIG},
        {128, 16, 200, 100, (1u << 30) + 1, -EFBIG},
        {UINT32_MAX, 16, 200, 100, 0, -EFBIG},
    };
    for (size_t i = 0; i < sizeof vnew / sizeof vnew[0]; i++) {
        opbuf_reset(&b);
        op_put_vnew(&b, "ix", 2, 0, 1, vnew[i].dim, vnew[i].M, vnew[i].efc, vnew[i].efs, 1,
                    vnew[i].cap, "", 0);
        assert_int_equal(op_decode(OP_VNEW, b.p, b.len, &LIM, &o), vnew[i].rc);
    }
    /* A VADD's dimension: at the limit, past it (the vector's bytes are
     * there either way: the limit, not the layout, refuses it). */
    float *v = calloc(32769, sizeof *v);
    assert_non_null(v);
    opbuf_reset(&b);
    op_put_vadd(&b, "ix", 2, "k", 1, v, 32768, 0, NULL, 0);
    assert_int_equal(op_decode(OP_VADD, b.p, b.len, &LIM, &o), 0);
    opbuf_reset(&b);
    op_put_vadd(&b, "ix", 2, "k", 1, v, 32769, 0, NULL, 0);
    assert_int_equal(op_decode(OP_VADD, b.p, b.len, &LIM, &o), -EFBIG);
    free(v);
    /* A payload past its limit, under a tighter limit for the test. */
    op_limits tight = LIM;
    tight.payload_max = 4;
    float one = 1.0f;
    opbuf_reset(&b);
    op_put_vadd(&b, "ix", 2, "k", 1, &one, 1, 0, "abcd", 4);
    assert_int_equal(op_decode(OP_VADD, b.p, b.len, &tight, &o), 0);
    opbuf_reset(&b);
    op_put_vadd(&b, "ix", 2, "k", 1, &one, 1, 0, "abcde", 5);
    assert_int_equal(op_decode(OP_VADD, b.p, b.len, &tight, &o), -EFBIG);
    /* Keys and values, likewise. */
    tight.string_max = 3;
    opbuf_reset(&b);
    op_put_set(&b, "abc", 3, "xyz", 3, -1);
    assert_int_equal(op_decode(OP_SET, b.p, b.len, &tight, &o), 0);
    opbuf_reset(&b);
    op_put_set(&b, "abcd", 4, "x", 1, -1);
    assert_int_equal(op_decode(OP_SET, b.p, b.len, &tight, &o), -EFBIG);
    opbuf_reset(&b);
    op_put_set(&b, "a", 1, "wxyz", 4, -1);
    assert_int_equal(op_decode(OP_SET, b.p, b.len, &tight, &o), -EFBIG);
    opbuf_fini(&b);
}

static void test_vector_ops(void **state)
{
    opbuf b = {0};
    op o;
    op_put_vnew(&b, "idx", 3, 1, 2, 128, 16, 200, 100, 0x0123456789abcdefULL, 5000, "hash", 4);
    assert_int_equal(op_decode(OP_VNEW, b.p, b.len, &LIM, &o), 0);
    assert_memory_equal(o.name, "idx", 3);
    assert_int_equal(o.vtype, 1);
    assert_int_equal(o.metric, 2);
    assert_int_equal(o.dim, 128);
    assert_int_equal(o.M, 16);
    assert_int_equal(o.efc, 200);
    assert_int_equal(o.efs, 100);
    assert_true(o.seed == 0x0123456789abcdefULL);
    assert_int_equal(o.capacity, 5000);
    assert_int_equal(o.elen, 4);
    assert_memory_equal(o.embed, "hash", 4);
    check_strict(OP_VNEW, &b);

    float v[5] = {1.5f, -0.0f, 3.25e-20f, -7e30f, 0.1f};
    opbuf_reset(&b);
    op_put_vadd(&b, "idx", 3, "key", 3, v, 5, 0, NULL, 0);
    assert_int_equal(op_decode(OP_VADD, b.p, b.len, &LIM, &o), 0);
    assert_int_equal(o.dim, 5);
    assert_int_equal(o.flags, 0);
    assert_null(o.payload);
    for (uint32_t i = 0; i < 5; i++) {
        float f = op_vec_at(&o, i);
        assert_memory_equal(&f, &v[i], 4);     /* bit-exact, -0.0 included */
    }
    check_strict(OP_VADD, &b);
    opbuf_reset(&b);
    op_put_vadd(&b, "idx", 3, "17", 2, v, 5, 1, "a line\0", 7);
    assert_int_equal(op_decode(OP_VADD, b.p, b.len, &LIM, &o), 0);
    assert_int_equal(o.flags, OP_VADD_AUTOID | OP_VADD_PAYLOAD);
    assert_int_equal(o.plen, 7);
    assert_memory_equal(o.payload, "a line\0", 7);
    check_strict(OP_VADD, &b);
    /* Unknown flag bits are refused. */
    b.p[b.len - 12] |= 0x80;
    assert_int_equal(op_decode(OP_VADD, b.p, b.len, &LIM, &o), -EBADMSG);

    /* Redis's vector sets: a quantised set with a projection, an add that
     * drops the payload with a build beam, one that sets it, a VSETATTR. */
    opbuf_reset(&b);
    op_put_vnew_ex(&b, "vs", 2, 0, 1, 50, 16, 200, 100, 7, 0, "", 0, 2, 100, 1);
    assert_int_equal(op_decode(OP_VNEW, b.p, b.len, &LIM, &o), 0);
    assert_int_equal(o.quant, 2);
    assert_int_equal(o.keep_float, 1);
    assert_int_equal(o.proj_in, 100);
    assert_int_equal(o.dim, 50);
    check_strict(OP_VNEW, &b);
    opbuf_reset(&b);
    op_put_vnew_ex(&b, "vs", 2, 0, 1, 50, 16, 200, 100, 7, 0, "", 0, 1, 0, 0);
    assert_int_equal(op_decode(OP_VNEW, b.p, b.len, &LIM, &o), 0);
    assert_int_equal(o.quant, 1);
    assert_int_equal(o.keep_float, 0);
    assert_int_equal(o.proj_in, 0);
    b.p[2 + 4 + 2] = 3;               /* no quantisation 3 */
    assert_int_equal(op_decode(OP_VNEW, b.p, b.len, &LIM, &o), -EBADMSG);
    opbuf_reset(&b);
    op_put_vnew_ex(&b, "vs", 2, 0, 1, 50, 16, 200, 100, 7, 0, "", 0, 0, LIM.dim_max + 1, 0);
    assert_int_equal(op_decode(OP_VNEW, b.p, b.len, &LIM, &o), -EFBIG);
    opbuf_reset(&b);
    op_put_vadd_ex(&b, "idx", 3, "key", 3, v, 5, OP_VADD_DROP, NULL, 0, 500);
    assert_int_equal(op_decode(OP_VADD, b.p, b.len, &LIM, &o), 0);
    assert_int_equal(o.flags, OP_VADD_DROP | OP_VADD_EF);
    assert_int_equal(o.ef, 500);
    check_strict(OP_VADD, &b);
    opbuf_reset(&b);
    op_put_vadd_ex(&b, "idx", 3, "key", 3, v, 5, OP_VADD_DROP, "{}", 2, 0);
    assert_int_equal(op_decode(OP_VADD, b.p, b.len, &LIM, &o), 0);
    assert_int_equal(o.flags, OP_VADD_PAYLOAD);     /* a payload wins over a drop */
    opbuf_reset(&b);
    op_put_vadd_ex(&b, "idx", 3, "key", 3, v, 5, 0, NULL, 0, LIM.ef_max + 1);
    assert_int_equal(op_decode(OP_VADD, b.p, b.len, &LIM, &o), -EFBIG);
    opbuf_reset(&b);
    /* an insert's outcome, after the payload and the beam */
    op_put_vadd_outcome(&b, "idx", 3, "key", 3, v, 5, 0, "{}", 2, 300, "\x01\x08\x00\x00", 4);
    assert_int_equal(op_decode(OP_VADD, b.p, b.len, &LIM, &o), 0);
    assert_int_equal(o.flags, OP_VADD_PAYLOAD | OP_VADD_EF | OP_VADD_OUTCOME);
    assert_int_equal(o.ef, 300);
    assert_int_equal(o.olen, 4);
    assert_memory_equal(o.outcome, "\x01\x08\x00\x00", 4);
    check_strict(OP_VADD, &b);
    b.p[b.len - 8] = 0;                /* an empty outcome is refused */
    assert_int_equal(op_decode(OP_VADD, b.p, b.len - 4, &LIM, &o), -EBADMSG);
    opbuf_reset(&b);
    op_put_vadd_outcome(&b, "idx", 3, "key", 3, v, 5, 0, NULL, 0, 0, NULL, 0);
    assert_int_equal(op_decode(OP_VADD, b.p, b.len, &LIM, &o), 0);
    assert_int_equal(o.flags, 0);
    assert_null(o.outcome);
    opbuf_reset(&b);
    op_put_vsetattr(&b, "idx", 3, "key", 3, 0, "{\"a\":1}", 7);
    assert_int_equal(op_decode(OP_VSETATTR, b.p, b.len, &LIM, &o), 0);
    assert_int_equal(o.drop, 0);
    assert_memory_equal(o.payload, "{\"a\":1}", 7);
    check_strict(OP_VSETATTR, &b);
    opbuf_reset(&b);
    op_put_vsetattr(&b, "idx", 3, "key", 3, 1, "ignored", 7);
    assert_int_equal(op_decode(OP_VSETATTR, b.p, b.len, &LIM, &o), 0);
    assert_int_equal(o.drop, 1);
    assert_int_equal(o.plen, 0);
    b.p[3 + 4 + 3 + 4] = 2;
    assert_int_equal(op_decode(OP_VSETATTR, b.p, b.len, &LIM, &o), -EBADMSG);

    opbuf_reset(&b);
    op_put_vdel(&b, "idx", 3, "key", 3);
    assert_int_equal(op_decode(OP_VDEL, b.p, b.len, &LIM, &o), 0);
    assert_memory_equal(o.key, "key", 3);
    check_strict(OP_VDEL, &b);

    opbuf_reset(&b);
    op_put_vdrop(&b, "idx", 3);
    assert_int_equal(op_decode(OP_VDROP, b.p, b.len, &LIM, &o), 0);
    check_strict(OP_VDROP, &b);
    opbuf_fini(&b);
}

/* Hash records: fields round-trip in order with their values and
 * deadlines; flags, counts and deadlines are checked; lengths over the
 * limit are -EFBIG. */
static void test_hash_ops(void **state)
{
    (void)state;
    opbuf b = {0};
    op o;
    op_hfield f;
    size_t pos = 0;

    op_put_hhead(&b, "h", 1, OP_HSET_NEW, 3);
    op_put_hfield(&b, OP_HSET, "f1", 2, "v1", 2, -1);
    op_put_hfield(&b, OP_HSET, "f\0", 2, "", 0, 1700000000123LL);
    op_put_hfield(&b, OP_HSET, "", 0, "x", 1, 0);
    assert_int_equal(op_decode(OP_HSET, b.p, b.len, &LIM, &o), 0);
    assert_int_equal(o.klen, 1);
    assert_int_equal(o.flags, OP_HSET_NEW);
    assert_int_equal(o.nfields, 3);
    assert_int_equal(op_hfield_next(&o, &pos, &f), 1);
    assert_int_equal(f.flen, 2);
    assert_memory_equal(f.f, "f1", 2);
    assert_memory_equal(f.v, "v1", 2);
    assert_int_equal(f.expire_ms, -1);
    assert_int_equal(op_hfield_next(&o, &pos, &f), 1);
    assert_memory_equal(f.f, "f\0", 2);
    assert_int_equal(f.vlen, 0);
    assert_int_equal(f.expire_ms, 1700000000123LL);
    assert_int_equal(op_hfield_next(&o, &pos, &f), 1);
    assert_int_equal(f.flen, 0);
    assert_int_equal(f.expire_ms, 0);
    assert_int_equal(op_hfield_next(&o, &pos, &f), 0);
    check_strict(OP_HSET, &b);
    /* the same bytes are not an HDEL or an HEXPIRE */
    assert_int_equal(op_decode(OP_HDEL, b.p, b.len, &LIM, &o), -EBADMSG);
    assert_int_equal(op_decode(OP_HEXPIRE, b.p, b.len, &LIM, &o), -EBADMSG);

    opbuf_reset(&b);
    op_put_hhead(&b, "h", 1, 0, 2);
    op_put_hfield(&b, OP_HDEL, "a", 1, "ignored", 7, 5);
    op_put_hfield(&b, OP_HDEL, "bb", 2, NULL, 0, -1);
    assert_int_equal(op_decode(OP_HDEL, b.p, b.len, &LIM, &o), 0);
    pos = 0;
    assert_int_equal(op_hfield_next(&o, &pos, &f), 1);
    assert_memory_equal(f.f, "a", 1);
    assert_int_equal(f.vlen, 0);
    assert_int_equal(f.expire_ms, -1);
    assert_int_equal(op_hfield_next(&o, &pos, &f), 1);
    assert_int_equal(f.flen, 2);
    assert_int_equal(op_hfield_next(&o, &pos, &f), 0);
    check_strict(OP_HDEL, &b);

    /* OP_FTDEF has OP_HDEL's layout; its action is 0..2 */
    opbuf_reset(&b);
    op_put_hhead(&b, "idx", 3, 2, 2);
    op_put_hfield(&b, OP_FTDEF, "SCHEMA", 6, NULL, 0, 0);
    op_put_hfield(&b, OP_FTDEF, "t", 1, NULL, 0, 0);
    assert_int_equal(op_decode(OP_FTDEF, b.p, b.len, &LIM, &o), 0);
    assert_int_equal(o.flags, 2);
    assert_int_equal(o.nfields, 2);
    assert_memory_equal(o.key, "idx", 3);
    pos = 0;
    assert_int_equal(op_hfield_next(&o, &pos, &f), 1);
    assert_memory_equal(f.f, "SCHEMA", 6);
    assert_int_equal(op_hfield_next(&o, &pos, &f), 1);
    assert_memory_equal(f.f, "t", 1);
    assert_int_equal(op_hfield_next(&o, &pos, &f), 0);
    check_strict(OP_FTDEF, &b);
    b.p[4 + 3] = 3;                                   /* no action 3 */
    assert_int_equal(op_decode(OP_FTDEF, b.p, b.len, &LIM, &o), -EBADMSG);

    opbuf_reset(&b);
    op_put_hhead(&b, "h", 1, 0, 1);
    op_put_hfield(&b, OP_HEXPIRE, "a", 1, NULL, 0, 99);
    assert_int_equal(op_decode(OP_HEXPIRE, b.p, b.len, &LIM, &o), 0);
    pos = 0;
    assert_int_equal(op_hfield_next(&o, &pos, &f), 1);
    assert_int_equal(f.expire_ms, 99);
    check_strict(OP_HEXPIRE, &b);

    /* flags: only HSET's bit 0, and only on HSET */
    opbuf_reset(&b);
    op_put_hhead(&b, "h", 1, OP_HSET_NEW, 0);
    assert_int_equal(op_decode(OP_HSET, b.p, b.len, &LIM, &o), 0);
    assert_int_equal(op_decode(OP_HDEL, b.p, b.len, &LIM, &o), -EBADMSG);
    opbuf_reset(&b);
    op_put_hhead(&b, "h", 1, 2, 0);
    assert_int_equal(op_decode(OP_HSET, b.p, b.len, &LIM, &o), -EBADMSG);

    /* a count the bytes cannot hold; a deadline below -1 */
    opbuf_reset(&b);
    op_put_hhead(&b, "h", 1, 0, 0xffffffffu);
    op_put_hfield(&b, OP_HDEL, "a", 1, NULL, 0, -1);
    assert_int_equal(op_decode(OP_HDEL, b.p, b.len, &LIM, &o), -EBADMSG);
    opbuf_reset(&b);
    op_put_hhead(&b, "h", 1, 0, 1);
    op_put_hfield(&b, OP_HEXPIRE, "a", 1, NULL, 0, -2);
    assert_int_equal(op_decode(OP_HEXPIRE, b.p, b.len, &LIM, &o), -EBADMSG);

    /* lengths past the caller's limit */
    op_limits small = LIM;
    small.string_max = 3;
    opbuf_reset(&b);
    op_put_hhead(&b, "h", 1, 0, 1);
    op_put_hfield(&b, OP_HSET, "a", 1, "four", 4, -1);
    assert_int_equal(op_decode(OP_HSET, b.p, b.len, &small, &o), -EFBIG);
    assert_int_equal(op_decode(OP_HSET, b.p, b.len, &LIM, &o), 0);
    opbuf_reset(&b);
    op_put_hhead(&b, "h", 1, 0, 1);
    op_put_hfield(&b, OP_HDEL, "abcd", 4, NULL, 0, -1);
    assert_int_equal(op_decode(OP_HDEL, b.p, b.len, &small, &o), -EFBIG);
    opbuf_fini(&b);
}

static void test_batch(void **state)
{
    opbuf one = {0}, b = {0};
    op_put_set(&one, "a", 1, "1", 1, -1);
    op_put_batch_item(&b, OP_SET, one.p, (uint32_t)one.len);
    opbuf_reset(&one);
    op_put_del(&one, "b", 1);
    op_put_batch_item(&b, OP_DEL, one.p, (uint32_t)one.len);
    op_put_batch_item(&b, OP_FLUSHALL, NULL, 0);

    size_t pos = 0;
    uint8_t t;
    const void *item;
    uint32_t ilen;
    op o;
    uint8_t want[] = {OP_SET, OP_DEL, OP_FLUSHALL};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(op_batch_next(b.p, b.len, &pos, &t, &item, &ilen), 1);
        assert_int_equal(t, want[i]);
        assert_int_equal(op_decode(t, item, ilen, &LIM, &o), 0);
    }
    assert_int_equal(op_batch_next(b.p, b.len, &pos, &t, &item, &ilen), 0);

    /* A cut batch is refused at the element it cuts (never an overrun). */
    for (size_t n = 1; n < b.len; n++) {
        int r;
        pos = 0;
        while ((r = op_batch_next(b.p, n, &pos, &t, &item, &ilen)) > 0)
            assert_true((const unsigned char *)item + ilen <= b.p + n);
        if (r == 0) assert_true(pos == n);
    }
    /* No nesting, no type 0. */
    opbuf nested = {0};
    op_put_batch_item(&nested, OP_BATCH, b.p, (uint32_t)b.len);
    pos = 0;
    assert_int_equal(op_batch_next(nested.p, nested.len, &pos, &t, &item, &ilen), -EBADMSG);
    opbuf_reset(&nested);
    op_put_batch_item(&nested, 0, "", 0);
    pos = 0;
    assert_int_equal(op_batch_next(nested.p, nested.len, &pos, &t, &item, &ilen), -EBADMSG);
    opbuf_fini(&nested);
    opbuf_fini(&one);
    opbuf_fini(&b);
}

/* The key commands' records (any type of key) and OP_INDB. */
static void test_key_ops_and_databases(void **state)
{
    (void)state;
    opbuf b = {0};
    op o;
    op_put_expire(&b, "k", 1, 1700000000123LL);
    assert_int_equal(op_decode(OP_EXPIRE, b.p, b.len, &LIM, &o), 0);
    assert_memory_equal(o.key, "k", 1);
    assert_true(o.expire_ms == 1700000000123LL);
    check_strict(OP_EXPIRE, &b);

    opbuf_reset(&b);
    op_put_rename(&b, "old", 3, "new\0", 4);
    assert_int_equal(op_decode(OP_RENAME, b.p, b.len, &LIM, &o), 0);
    assert_memory_equal(o.key, "old", 3);
    assert_int_equal(o.vlen, 4);
    assert_memory_equal(o.val, "new\0", 4);
    check_strict(OP_RENAME, &b);

    opbuf_reset(&b);
    op_put_move(&b, "k", 1, 15);
    assert_int_equal(op_decode(OP_MOVE, b.p, b.len, &LIM, &o), 0);
    assert_int_equal(o.db, 15);
    check_strict(OP_MOVE, &b);
    opbuf_reset(&b);
    op_put_move(&b, "k", 1, 16);                 /* past db_max */
    assert_int_equal(op_decode(OP_MOVE, b.p, b.len, &LIM, &o), -EFBIG);

    opbuf_reset(&b);
    op_put_copy(&b, "a", 1, "b", 1, 3, 1);
    assert_int_equal(op_decode(OP_COPY, b.p, b.len, &LIM, &o), 0);
    assert_int_equal(o.db, 3);
    assert_int_equal(o.replace, 1);
    check_strict(OP_COPY, &b);
    b.p[b.len - 1] = 2;                          /* replace is 0 or 1 */
    assert_int_equal(op_decode(OP_COPY, b.p, b.len, &LIM, &o), -EBADMSG);

    opbuf_reset(&b);
    op_put_swapdb(&b, 0, 15);
    assert_int_equal(op_decode(OP_SWAPDB, b.p, b.len, &LIM, &o), 0);
    assert_int_equal(o.db, 0);
    assert_int_equal(o.db2, 15);
    check_strict(OP_SWAPDB, &b);
    opbuf_reset(&b);
    op_put_swapdb(&b, 16, 0);
    assert_int_equal(op_decode(OP_SWAPDB, b.p, b.len, &LIM, &o), -EFBIG);

    assert_int_equal(op_decode(OP_FLUSHDB, "", 0, &LIM, &o), 0);
    assert_int_equal(op_decode(OP_FLUSHDB, "x", 1, &LIM, &o), -EBADMSG);

    /* OP_INDB: a database and one inner record of another type */
    opbuf inner = {0};
    op_put_set(&inner, "k", 1, "v", 1, -1);
    opbuf_reset(&b);
    op_put_indb(&b, 7, OP_SET);
    unsigned char rec[64];                       /* the head, then the inner payload */
    assert_true(b.len + inner.len <= sizeof rec);
    memcpy(rec, b.p, b.len);
    memcpy(rec + b.len, inner.p, inner.len);
    uint32_t db, ilen;
    uint8_t t;
    const void *in;
    assert_int_equal(op_indb(rec, b.len + inner.len, &LIM, &db, &t, &in, &ilen), 0);
    assert_int_equal(db, 7);
    assert_int_equal(t, OP_SET);
    assert_int_equal(ilen, inner.len);
    assert_memory_equal(in, inner.p, inner.len);
    assert_int_equal(op_decode(t, in, ilen, &LIM, &o), 0);
    assert_memory_equal(o.val, "v", 1);
    /* too short; a database past the limit; batches and nesting refused */
    assert_int_equal(op_indb(rec, 4, &LIM, &db, &t, &in, &ilen), -EBADMSG);
    opbuf_reset(&b);
    op_put_indb(&b, 16, OP_FLUSHDB);
    assert_int_equal(op_indb(b.p, b.len, &LIM, &db, &t, &in, &ilen), -EFBIG);
    opbuf_reset(&b);
    op_put_indb(&b, 1, OP_BATCH);
    assert_int_equal(op_indb(b.p, b.len, &LIM, &db, &t, &in, &ilen), -EBADMSG);
    opbuf_reset(&b);
    op_put_indb(&b, 1, OP_INDB);
    assert_int_equal(op_indb(b.p, b.len, &LIM, &db, &t, &in, &ilen), -EBADMSG);
    opbuf_reset(&b);
    op_put_indb(&b, 1, 0);
    assert_int_equal(op_indb(b.p, b.len, &LIM, &db, &t, &in, &ilen), -EBADMSG);
    opbuf_fini(&inner);
    opbuf_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_del),
        cmocka_unit_test(test_setrange),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_key_ops_and_databases),
        cmocka_unit_test(test_vector_ops),
        cmocka_unit_test(test_hash_ops),
        cmocka_unit_test(test_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
