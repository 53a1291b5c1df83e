/* test_oplog_resp.c -- log records as replication commands: the exact RESP
 * of each mapping (oplog_resp.h), SELECT only when the database changes,
 * MULTI/EXEC around a record that makes several commands with its SELECT
 * before MULTI, REPLAY for the vector records, and a record that does not
 * decode leaving the stream and the selected database as they were. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engram/oplog.h"
#include "engram/oplog_resp.h"

/* Encode one record and compare the stream it adds with want. */
static void expect(op_resp *e, uint8_t type, const opbuf *payload, const char *want)
{
    opbuf out = {0};
    assert_int_equal(op_resp_encode(e, &out, type, payload->p, payload->len), 0);
    size_t n = strlen(want);
    if (out.len != n || memcmp(out.p, want, n) != 0)
        fail_msg("got %.*s\nwant %s", (int)out.len, (const char *)out.p, want);
    opbuf_fini(&out);
}

static void test_strings_and_keys(void **state)
{
    (void)state;
    op_resp e;
    opbuf b = {0};
    op_resp_init(&e);
    op_put_set(&b, "k", 1, "v", 1, -1);
    expect(&e, OP_SET, &b, "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n");
    opbuf_reset(&b);
    op_put_set(&b, "k", 1, "v", 1, 1700000000123LL);
    expect(&e, OP_SET, &b,
           "*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n$4\r\nPXAT\r\n$13\r\n1700000000123\r\n");
    opbuf_reset(&b);
    op_put_del(&b, "k", 1);
    expect(&e, OP_DEL, &b, "*2\r\n$3\r\nDEL\r\n$1\r\nk\r\n");
    opbuf_reset(&b);
    op_put_setrange(&b, "k", 1, 5, "ab", 2);
    expect(&e, OP_SETRANGE, &b, "*4\r\n$8\r\nSETRANGE\r\n$1\r\nk\r\n$1\r\n5\r\n$2\r\nab\r\n");
    opbuf_reset(&b);
    op_put_setrange(&b, "k", 1, 0, "", 0);     /* APPEND k "" made an empty key */
    expect(&e, OP_SETRANGE, &b, "*3\r\n$6\r\nAPPEND\r\n$1\r\nk\r\n$0\r\n\r\n");
    opbuf_reset(&b);
    op_put_expire(&b, "k", 1, 42);
    expect(&e, OP_EXPIRE, &b, "*3\r\n$9\r\nPEXPIREAT\r\n$1\r\nk\r\n$2\r\n42\r\n");
    opbuf_reset(&b);
    op_put_expire(&b, "k", 1, -1);
    expect(&e, OP_EXPIRE, &b, "*2\r\n$7\r\nPERSIST\r\n$1\r\nk\r\n");
    opbuf_reset(&b);
    op_put_rename(&b, "a", 1, "b", 1);
    expect(&e, OP_RENAME, &b, "*3\r\n$6\r\nRENAME\r\n$1\r\na\r\n$1\r\nb\r\n");
    opbuf_reset(&b);
    op_put_move(&b, "a", 1, 3);
    expect(&e, OP_MOVE, &b, "*3\r\n$4\r\nMOVE\r\n$1\r\na\r\n$1\r\n3\r\n");
    opbuf_reset(&b);
    op_put_copy(&b, "a", 1, "b", 1, 2, 1);
    expect(&e, OP_COPY, &b,
           "*6\r\n$4\r\nCOPY\r\n$1\r\na\r\n$1\r\nb\r\n$2\r\nDB\r\n$1\r\n2\r\n$7\r\nREPLACE\r\n");
    opbuf_reset(&b);
    op_put_swapdb(&b, 0, 1);
    expect(&e, OP_SWAPDB, &b, "*3\r\n$6\r\nSWAPDB\r\n$1\r\n0\r\n$1\r\n1\r\n");
    opbuf_reset(&b);
    expect(&e, OP_FLUSHALL, &b, "*1\r\n$8\r\nFLUSHALL\r\n");
    opbuf_fini(&b);
    op_resp_fini(&e);
}

static void test_databases(void **state)
{
    (void)state;
    op_resp e;
    opbuf b = {0}, in = {0};
    op_resp_init(&e);
    /* database 2: SELECT once, then not again */
    op_put_indb(&b, 2, OP_DEL);
    op_put_del(&b, "k", 1);
    expect(&e, OP_INDB, &b, "*2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n*2\r\n$3\r\nDEL\r\n$1\r\nk\r\n");
    expect(&e, OP_INDB, &b, "*2\r\n$3\r\nDEL\r\n$1\r\nk\r\n");
    /* FLUSHDB of database 2 needs no SELECT now; SWAPDB never does */
    opbuf_reset(&b);
    op_put_indb(&b, 2, OP_FLUSHDB);
    expect(&e, OP_INDB, &b, "*1\r\n$7\r\nFLUSHDB\r\n");
    assert_int_equal(e.seldb, 2);
    /* a batch: SELECT 0 before MULTI, SELECT 1 inside for the second item */
    opbuf_reset(&b);
    op_put_set(&in, "a", 1, "1", 1, -1);
    op_put_batch_item(&b, OP_SET, in.p, (uint32_t)in.len);
    opbuf_reset(&in);
    op_put_indb(&in, 1, OP_DEL);
    op_put_del(&in, "b", 1);
    op_put_batch_item(&b, OP_INDB, in.p, (uint32_t)in.len);
    expect(&e, OP_BATCH, &b,
           "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*1\r\n$5\r\nMULTI\r\n"
           "*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n"
           "*2\r\n$6\r\nSELECT\r\n$1\r\n1\r\n*2\r\n$3\r\nDEL\r\n$1\r\nb\r\n"
           "*1\r\n$4\r\nEXEC\r\n");
    assert_int_equal(e.seldb, 1);
    opbuf_fini(&b);
    opbuf_fini(&in);
    op_resp_fini(&e);
}

static void test_hashes(void **state)
{
    (void)state;
    op_resp e;
    opbuf b = {0};
    op_resp_init(&e);
    e.seldb = 0;
    /* created by the command, two fields with a deadline, one without:
     * DEL, HSET, HPEXPIREAT -- one record, so MULTI/EXEC */
    op_put_hhead(&b, "h", 1, OP_HSET_NEW, 3);
    op_put_hfield(&b, OP_HSET, "a", 1, "1", 1, 500);
    op_put_hfield(&b, OP_HSET, "b", 1, "2", 1, 500);
    op_put_hfield(&b, OP_HSET, "c", 1, "3", 1, -1);
    expect(&e, OP_HSET, &b,
           "*1\r\n$5\r\nMULTI\r\n*2\r\n$3\r\nDEL\r\n$1\r\nh\r\n"
           "*8\r\n$4\r\nHSET\r\n$1\r\nh\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\nc\r\n$1\r\n3\r\n"
           "*7\r\n$10\r\nHPEXPIREAT\r\n$1\r\nh\r\n$3\r\n500\r\n$6\r\nFIELDS\r\n$1\r\n2\r\n$1\r\na\r\n$1\r\nb\r\n"
           "*1\r\n$4\r\nEXEC\r\n");
    opbuf_reset(&b);
    op_put_hhead(&b, "h", 1, 0, 1);
    op_put_hfield(&b, OP_HSET, "a", 1, "9", 1, -1);
    expect(&e, OP_HSET, &b, "*4\r\n$4\r\nHSET\r\n$1\r\nh\r\n$1\r\na\r\n$1\r\n9\r\n");
    opbuf_reset(&b);
    op_put_hhead(&b, "h", 1, 0, 2);
    op_put_hfield(&b, OP_HDEL, "a", 1, NULL, 0, -1);
    op_put_hfield(&b, OP_HDEL, "b", 1, NULL, 0, -1);
    expect(&e, OP_HDEL, &b, "*4\r\n$4\r\nHDEL\r\n$1\r\nh\r\n$1\r\na\r\n$1\r\nb\r\n");
    opbuf_reset(&b);
    op_put_hhead(&b, "h", 1, 0, 2);
    op_put_hfield(&b, OP_HEXPIRE, "a", 1, NULL, 0, -1);
    op_put_hfield(&b, OP_HEXPIRE, "b", 1, NULL, 0, 7);
    expect(&e, OP_HEXPIRE, &b,
           "*1\r\n$5\r\nMULTI\r\n"
           "*5\r\n$8\r\nHPERSIST\r\n$1\r\nh\r\n$6\r\nFIELDS\r\n$1\r\n1\r\n$1\r\na\r\n"
           "*6\r\n$10\r\nHPEXPIREAT\r\n$1\r\nh\r\n$1\r\n7\r\n$6\r\nFIELDS\r\n$1\r\n1\r\n$1\r\nb\r\n"
           "*1\r\n$4\r\nEXEC\r\n");
    /* search index definitions as the FT commands */
    opbuf_reset(&b);
    op_put_hhead(&b, "ix", 2, 0, 3);
    op_put_hfield(&b, OP_HDEL, "SCHEMA", 6, NULL, 0, 0);
    op_put_hfield(&b, OP_HDEL, "t", 1, NULL, 0, 0);
    op_put_hfield(&b, OP_HDEL, "TEXT", 4, NULL, 0, 0);
    expect(&e, OP_FTDEF, &b, "*5\r\n$9\r\nFT.CREATE\r\n$2\r\nix\r\n$6\r\nSCHEMA\r\n$1\r\nt\r\n$4\r\nTEXT\r\n");
    opbuf_reset(&b);
    op_put_hhead(&b, "ix", 2, 2, 2);
    op_put_hfield(&b, OP_HDEL, "n", 1, NULL, 0, 0);
    op_put_hfield(&b, OP_HDEL, "NUMERIC", 7, NULL, 0, 0);
    expect(&e, OP_FTDEF, &b, "*6\r\n$8\r\nFT.ALTER\r\n$2\r\nix\r\n$6\r\nSCHEMA\r\n$3\r\nADD\r\n$1\r\nn\r\n$7\r\nNUMERIC\r\n");
    opbuf_reset(&b);
    op_put_hhead(&b, "ix", 2, 1, 0);
    expect(&e, OP_FTDEF, &b, "*2\r\n$12\r\nFT.DROPINDEX\r\n$2\r\nix\r\n");
    opbuf_fini(&b);
    op_resp_fini(&e);
}

static void test_vectors_and_bad_records(void **state)
{
    (void)state;
    op_resp e;
    opbuf b = {0}, out = {0};
    op_resp_init(&e);
    e.seldb = 0;
    op_put_vdel(&b, "s", 1, "x", 1);
    char head[64];
    int n = snprintf(head, sizeof head, "*3\r\n$6\r\nREPLAY\r\n$4\r\nVDEL\r\n$%zu\r\n", b.len);
    assert_int_equal(op_resp_encode(&e, &out, OP_VDEL, b.p, b.len), 0);
    assert_int_equal(out.len, (size_t)n + b.len + 2);
    assert_memory_equal(out.p, head, (size_t)n);
    assert_memory_equal(out.p + n, b.p, b.len);
    /* a truncated record: nothing appended, the database stays selected */
    out.len = 0;
    e.seldb = 5;
    op_put_set(&b, "k", 1, "v", 1, -1);
    assert_int_equal(op_resp_encode(&e, &out, OP_SET, b.p, 3), -EBADMSG);
    assert_int_equal(out.len, 0);
    assert_int_equal(e.seldb, 5);
    /* a batch whose second item is bad: nothing of the first either */
    opbuf batch = {0}, in = {0};
    op_put_indb(&in, 1, OP_DEL);
    op_put_del(&in, "a", 1);
    op_put_batch_item(&batch, OP_INDB, in.p, (uint32_t)in.len);
    op_put_batch_item(&batch, OP_SET, "xx", 2);
    assert_int_equal(op_resp_encode(&e, &out, OP_BATCH, batch.p, batch.len), -EBADMSG);
    assert_int_equal(out.len, 0);
    assert_int_equal(e.seldb, 5);
    /* names */
    char buf[8];
    assert_string_equal(op_resp_name(OP_VADD, buf, sizeof buf), "VADD");
    assert_string_equal(op_resp_name(99, buf, sizeof buf), "99");
    assert_int_equal(op_resp_type("vsetattr", 8), OP_VSETATTR);
    assert_int_equal(op_resp_type("99", 2), 99);
    assert_int_equal(op_resp_type("32", 2), -1);          /* OP_BATCH */
    assert_int_equal(op_resp_type("0", 1), -1);
    assert_int_equal(op_resp_type("nope", 4), -1);
    opbuf_fini(&b);
    opbuf_fini(&out);
    opbuf_fini(&batch);
    opbuf_fini(&in);
    op_resp_fini(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strings_and_keys),
        cmocka_unit_test(test_databases),
        cmocka_unit_test(test_hashes),
        cmocka_unit_test(test_vectors_and_bad_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
