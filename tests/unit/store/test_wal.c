/* test_wal.c -- the write-ahead log: record codec round trips, replay after
 * truncation at every byte, a flipped bit at every bit position, and I/O
 * failures injected through the seam (short writes, EIO/ENOSPC, failed
 * fsync, crash at every byte N of a log's creation and appends).
 *
 * The reference log is NREC records with varied payload sizes (0 to 100
 * bytes, ~870 bytes in all), small enough that the exhaustive loops (every
 * cut, every bit, every crash byte) stay well under a second natively.
 * Files live in a private mkdtemp directory, removed at the end. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "engram/crc32c.h"
#include "engram/io.h"
#include "engram/wal.h"

#define NREC 20
#define BASE 100u               /* base_seq of every test log */
#define MAXREC 64

static char tmpdir[PATH_MAX];
static char logpath[PATH_MAX + 32];

/* Real fsyncs would make the exhaustive loops take seconds and prove nothing
 * here: power loss is modelled by io_faulty's crash_at, not by the disk.  So
 * the tests run on io_posix_nosync; the real fsync paths are exercised by
 * test_io and test_big_and_empty_payloads. */

/* ---- the reference records ------------------------------------------------ */

static uint32_t rec_len(int i)
{
    static const uint32_t lens[] = { 0, 1, 7, 20, 33, 3, 64, 0, 12, 100,
                                     5, 19, 21, 2, 48, 9, 0, 70, 4, 27 };
    return lens[i % (int)(sizeof lens / sizeof *lens)];
}
static uint8_t rec_type(int i) { return (uint8_t)(1 + i % 5); }
static void rec_fill(int i, uint8_t *buf)
{
    for (uint32_t j = 0; j < rec_len(i); j++) buf[j] = (uint8_t)(i * 37 + j * 11 + 1);
}
/* File offset where record i starts (i == n: where record n-1 ends). */
static uint64_t rec_off(int i)
{
    uint64_t off = WAL_FILE_HEADER;
    for (int k = 0; k < i; k++) off += wal_record_size(rec_len(k));
    return off;
}

/* ---- replay collector -------------------------------------------------------- */

typedef struct coll {
    int n;
    uint8_t type[MAXREC];
    uint64_t seq[MAXREC];
    uint32_t len[MAXREC];
    uint8_t payload[MAXREC][128];
} coll;

static int collect(void *ud, uint8_t type, uint64_t seq, const void *payload, uint32_t len)
{
    coll *c = ud;
    if (c->n >= MAXREC || len > 128) return -E2BIG;
    c->type[c->n] = type;
    c->seq[c->n] = seq;
    c->len[c->n] = len;
    memcpy(c->payload[c->n], payload, len);
    c->n++;
    return 0;
}

/* The collector holds exactly reference records 0..k-1 with seqs BASE+1... */
static void check_prefix(const coll *c, int k)
{
    uint8_t want[128];
    assert_int_equal(c->n, k);
    for (int i = 0; i < k; i++) {
        assert_int_equal(c->type[i], rec_type(i));
        assert_int_equal(c->seq[i], BASE + 1 + (uint64_t)i);
        assert_int_equal(c->len[i], rec_len(i));
        rec_fill(i, want);
        assert_memory_equal(c->payload[i], want, rec_len(i));
    }
}

static int replay(io_ops *io, coll *c, const wal_replay_opts *o, wal_replay_result *r)
{
    memset(c, 0, sizeof *c);
    return wal_replay(io, logpath, collect, c, o, r);
}

/* ---- files -------------------------------------------------------------------- */

static int setup(void **state)
{
    strcpy(tmpdir, "/tmp/engram-test-wal-XXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    snprintf(logpath, sizeof logpath, "%s/engram.wal", tmpdir);
    return 0;
}

static int teardown(void **state)
{
    unlink(logpath);
    return rmdir(tmpdir);
}

static uint8_t *slurp(size_t *len)
{
    FILE *f = fopen(logpath, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)n + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return p;
}

/* Replace the log with len bytes.  Unlink first: truncating a file to zero
 * makes ext4 flush it on close (auto_da_alloc), which would slow the
 * exhaustive loops ten-fold. */
static void spit(const uint8_t *p, size_t len)
{
    unlink(logpath);
    FILE *f = fopen(logpath, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static uint64_t file_size(void)
{
    struct stat st;
    assert_int_equal(stat(logpath, &st), 0);
    return (uint64_t)st.st_size;
}

/* Append reference records [from, to) committing every `every` records.
 * Returns the first error. */
static int append_range(wal *w, int from, int to, int every)
{
    uint8_t buf[128];
    for (int i = from; i < to; i++) {
        uint64_t seq;
        rec_fill(i, buf);
        int rc = wal_append(w, rec_type(i), buf, rec_len(i), &seq);
        if (rc) return rc;
        assert_int_equal(seq, BASE + 1 + (uint64_t)i);
        if ((i + 1 - from) % every == 0 && (rc = wal_commit(w)) != 0) return rc;
    }
    return wal_commit(w);
}

/* A fresh reference log of n records written through io. */
static void make_log(io_ops *io, int n)
{
    wal *w;
    unlink(logpath);
    assert_int_equal(wal_open(io, logpath, BASE, &w), 0);
    assert_int_equal(append_range(w, 0, n, 3), 0);
    assert_int_equal(wal_close(w), 0);
}

/* ---- codec ---------------------------------------------------------------------- */

static void test_codec_round_trip(void **state)
{
    static uint8_t buf[WAL_RECORD_HEADER + 300];
    uint8_t payload[256];
    wal_record rec;
    for (int i = 0; i < 256; i++) payload[i] = (uint8_t)(255 - i);

    for (unsigned type = 1; type <= 255; type++) {
        uint32_t len = type % 3 == 0 ? 0 : type;
        uint64_t seq = (uint64_t)type << 40 | 0x0102030405ull;
        wal_record_encode(buf, (uint8_t)type, seq, len ? payload : NULL, len);
        assert_int_equal(wal_record_decode(buf, wal_record_size(len) + 7, &rec), (int)wal_record_size(len));
        assert_int_equal(rec.type, type);
        assert_int_equal(rec.seq, seq);
        assert_int_equal(rec.len, len);
        assert_ptr_equal(rec.payload, buf + WAL_RECORD_HEADER);
        assert_memory_equal(rec.payload, payload, len);
        /* Every short buffer asks for more, never fails. */
        for (size_t a = 0; a < wal_record_size(len); a++)
            assert_int_equal(wal_record_decode(buf, a, &rec), 0);
    }
    /* The layout is little-endian, field by field. */
    wal_record_encode(buf, 7, 0x1122334455667788ull, "xyz", 3);
    assert_memory_equal(buf, "\x03\0\0\0", 4);
    assert_memory_equal(buf + 8, "\x07\0\0\0\x88\x77\x66\x55\x44\x33\x22\x11xyz", 15);
    /* Type 0 and non-zero reserved bytes never decode. */
    buf[8] = 0;
    assert_int_equal(wal_record_decode(buf, 23, &rec), -EBADMSG);
    wal_record_encode(buf, 7, 1, "xyz", 3);
    buf[10] = 1;
    assert_int_equal(wal_record_decode(buf, 23, &rec), -EBADMSG);
    /* A zero-filled region is not a record. */
    memset(buf, 0, 40);
    assert_int_equal(wal_record_decode(buf, 40, &rec), -EBADMSG);
    /* An absurd length is corrupt, not "need more". */
    wal_record_encode(buf, 7, 1, "xyz", 3);
    buf[3] = 0x80;
    assert_int_equal(wal_record_decode(buf, 23, &rec), -EBADMSG);
}

/* A 1 MB payload through the writer and replay. */
static int check_big(void *ud, uint8_t type, uint64_t seq, const void *payload, uint32_t len)
{
    int *n = ud;
    const uint8_t *p = payload;
    if (*n == 0) {
        if (type != 9 || seq != 6 || len != (1u << 20)) return -1;
        for (uint32_t j = 0; j < len; j++)
            if (p[j] != (uint8_t)(j * 13 + j / 256)) return -2;
    } else if (type != 3 || seq != 7 || len != 0) {
        return -3;
    }
    (*n)++;
    return 0;
}

static void test_big_and_empty_payloads(void **state)
{
    wal *w;
    uint32_t big = 1u << 20;
    uint8_t *p = malloc(big);
    assert_non_null(p);
    for (uint32_t j = 0; j < big; j++) p[j] = (uint8_t)(j * 13 + j / 256);
    unlink(logpath);
    assert_int_equal(wal_open(io_posix(), logpath, 5, &w), 0);
    assert_int_equal(wal_base_seq(w), 5);
    assert_int_equal(wal_append(w, 0, p, 1, NULL), -EINVAL);
    assert_int_equal(wal_append(w, 1, p, WAL_PAYLOAD_MAX + 1, NULL), -EINVAL);
    assert_int_equal(wal_append(w, 9, p, big, NULL), 0);
    assert_int_equal(wal_append(w, 3, NULL, 0, NULL), 0);
    assert_int_equal(wal_pending(w), 2 * WAL_RECORD_HEADER + big);
    assert_int_equal(wal_durable_seq(w), 5);
    assert_int_equal(wal_commit(w), 0);
    assert_int_equal(wal_durable_seq(w), 7);
    assert_int_equal(wal_size(w), WAL_FILE_HEADER + 2 * WAL_RECORD_HEADER + big);
    assert_int_equal(wal_close(w), 0);
    free(p);

    int n = 0;
    wal_replay_result r;
    assert_int_equal(wal_replay(io_posix(), logpath, check_big, &n, NULL, &r), 0);
    assert_int_equal(n, 2);
    assert_int_equal(r.records, 2);
    assert_int_equal(r.base_seq, 5);
    assert_int_equal(r.last_seq, 7);
    assert_false(r.torn || r.corrupt || r.dropped);
    assert_int_equal(r.valid_end, r.file_size);
}

static void test_writer_reopen_continues(void **state)
{
    coll c;
    wal_replay_result r;
    wal *w;
    make_log(io_posix_nosync(), 7);
    assert_int_equal(file_size(), rec_off(7));
    /* base_seq is ignored for an existing file. */
    assert_int_equal(wal_open(io_posix_nosync(), logpath, 999, &w), 0);
    assert_int_equal(wal_base_seq(w), BASE);
    assert_int_equal(wal_last_seq(w), BASE + 7);
    assert_int_equal(wal_durable_seq(w), BASE + 7);
    assert_int_equal(append_range(w, 7, NREC, 4), 0);
    assert_int_equal(wal_close(w), 0);
    assert_int_equal(replay(io_posix_nosync(), &c, NULL, &r), 0);
    check_prefix(&c, NREC);
    assert_int_equal(r.valid_end, rec_off(NREC));
    assert_int_equal(wal_replay(io_posix_nosync(), tmpdir, NULL, NULL, NULL, NULL) < 0, 1);
    unlink(logpath);
    assert_int_equal(wal_replay(io_posix_nosync(), logpath, NULL, NULL, NULL, &r), -ENOENT);
    assert_int_equal(wal_close(NULL), 0);
}

/* ---- truncation at every byte -------------------------------------------------- */

static void test_truncate_every_byte(void **state)
{
    size_t len;
    coll c;
    wal_replay_result r;
    make_log(io_posix_nosync(), NREC);
    uint8_t *img = slurp(&len);
    assert_int_equal(len, rec_off(NREC));

    for (size_t cut = 0; cut <= len; cut++) {
        spit(img, cut);
        int k = 0;                                  /* complete records */
        while (k < NREC && rec_off(k + 1) <= cut) k++;
        uint64_t keep = cut < WAL_FILE_HEADER ? 0 : rec_off(k);

        /* read_only reports without touching the file */
        wal_replay_opts ro = { 0, 1 };
        assert_int_equal(replay(io_posix_nosync(), &c, &ro, &r), 0);
        check_prefix(&c, k);
        assert_int_equal(r.dropped, 0);
        assert_int_equal(file_size(), cut);

        assert_int_equal(replay(io_posix_nosync(), &c, NULL, &r), 0);
        check_prefix(&c, k);
        assert_int_equal(r.records, k);
        assert_int_equal(r.torn, keep != cut);
        assert_int_equal(r.corrupt, 0);
        assert_int_equal(r.dropped, cut - keep);
        assert_int_equal(r.bad_offset, keep == cut ? cut : keep);
        assert_int_equal(file_size(), keep);

        /* Appending continues cleanly after the valid prefix. */
        wal *w;
        assert_int_equal(wal_open(io_posix_nosync(), logpath, BASE, &w), 0);
        assert_int_equal(wal_last_seq(w), BASE + (uint64_t)k);
        assert_int_equal(append_range(w, k, k + 2, 1), 0);
        assert_int_equal(wal_close(w), 0);
        assert_int_equal(replay(io_posix_nosync(), &c, NULL, &r), 0);
        check_prefix(&c, k + 2);
        assert_int_equal(r.dropped, 0);
    }
    free(img);
}

/* ---- a flipped bit anywhere --------------------------------------------------- */

/* Every bit of the log, one at a time: a flip in the file header is
 * corruption at 0; in record k < last it is corruption at k's offset with
 * records 0..k-1 replayed and the file untouched; in the last record it is
 * a torn tail, cut.  Never is a different record replayed. */
static void test_flip_every_bit(void **state)
{
    size_t len;
    coll c;
    wal_replay_result r;
    make_log(io_posix_nosync(), NREC);
    uint8_t *img = slurp(&len);

    for (size_t byte = 0; byte < len; byte++) {
        int k = 0;
        while (k < NREC && rec_off(k + 1) <= byte) k++;
        for (int bit = 0; bit < 8; bit++) {
            img[byte] ^= (uint8_t)(1u << bit);
            spit(img, len);
            int rc = replay(io_posix_nosync(), &c, NULL, &r);
            if (byte < WAL_FILE_HEADER) {
                assert_int_equal(rc, -EBADMSG);
                assert_int_equal(r.bad_offset, 0);
                assert_int_equal(c.n, 0);
                assert_int_equal(file_size(), len);
            } else if (k == NREC - 1) {
                assert_int_equal(rc, 0);
                assert_int_equal(r.torn, 1);
                check_prefix(&c, k);
                assert_int_equal(r.dropped, len - rec_off(k));
                assert_int_equal(file_size(), rec_off(k));
            } else {
                assert_int_equal(rc, -EBADMSG);
                assert_int_equal(r.corrupt, 1);
                assert_int_equal(r.bad_offset, rec_off(k));
                check_prefix(&c, k);
                assert_int_equal(r.dropped, 0);
                assert_int_equal(file_size(), len);
            }
            img[byte] ^= (uint8_t)(1u << bit);
        }
    }

    /* truncate_on_corruption cuts at the damage instead. */
    img[rec_off(5) + 2] ^= 0x10;
    spit(img, len);
    wal_replay_opts cut = { 1, 0 };
    assert_int_equal(replay(io_posix_nosync(), &c, &cut, &r), 0);
    check_prefix(&c, 5);
    assert_int_equal(r.corrupt, 1);
    assert_int_equal(r.dropped, len - rec_off(5));
    assert_int_equal(file_size(), rec_off(5));

    /* A wrong version behind a valid header CRC is not ours to read. */
    make_log(io_posix_nosync(), 2);
    free(img);
    img = slurp(&len);
    img[8] = 2;                                 /* version 2, CRC fixed */
    uint32_t hc = crc32c(0, img, 20);
    for (int i = 0; i < 4; i++) img[20 + i] = (uint8_t)(hc >> (8 * i));
    spit(img, len);
    wal *w;
    assert_int_equal(replay(io_posix_nosync(), &c, NULL, &r), -ENOTSUP);
    assert_int_equal(wal_open(io_posix_nosync(), logpath, BASE, &w), -ENOTSUP);
    assert_null(w);
    img[8] = 1;                                 /* and a bad header CRC */
    spit(img, len);
    assert_int_equal(wal_open(io_posix_nosync(), logpath, BASE, &w), -EBADMSG);
    free(img);
}

/* A bad record followed by garbage that contains no plausible record is a
 * torn tail; followed by a valid record (seq in range) it is corruption. */
static void test_tail_rule(void **state)
{
    size_t len;
    coll c;
    wal_replay_result r;
    make_log(io_posix_nosync(), 4);
    uint8_t *img = slurp(&len);
    uint8_t *big = calloc(1, len + 300);
    memcpy(big, img, len);
    /* 300 zero bytes after the log: zero fill is not a record. */
    spit(big, len + 300);
    assert_int_equal(replay(io_posix_nosync(), &c, NULL, &r), 0);
    check_prefix(&c, 4);
    assert_int_equal(r.torn, 1);
    assert_int_equal(r.dropped, 300);
    /* Garbage, then a well-formed record with the next seq: corruption. */
    memset(big + len, 0xA5, 50);
    uint8_t p[128];
    rec_fill(4, p);
    wal_record_encode(big + len + 50, rec_type(4), BASE + 5, p, 4);
    spit(big, len + 50 + wal_record_size(4));
    assert_int_equal(replay(io_posix_nosync(), &c, NULL, &r), -EBADMSG);
    assert_int_equal(r.bad_offset, len);
    /* The same record with a seq from the past is not plausible: torn. */
    wal_record_encode(big + len + 50, rec_type(4), BASE + 2, p, 4);
    spit(big, len + 50 + wal_record_size(4));
    assert_int_equal(replay(io_posix_nosync(), &c, NULL, &r), 0);
    assert_int_equal(r.torn, 1);
    /* A CRC-valid record with a seq gap, at the end: it is a bad record
     * (not the next seq) with nothing after it, so it is cut. */
    memcpy(big, img, len);
    wal_record_encode(big + len, rec_type(4), BASE + 9, p, 4);
    spit(big, len + wal_record_size(4));
    assert_int_equal(replay(io_posix_nosync(), &c, NULL, &r), 0);
    check_prefix(&c, 4);
    assert_int_equal(r.dropped, wal_record_size(4));
    free(big);
    free(img);
}

/* ---- I/O failures ---------------------------------------------------------------- */

static void test_short_writes(void **state)
{
    coll c;
    io_faulty *f = io_faulty_new(io_posix_nosync());
    io_faulty_short_writes(f, 7);
    make_log(io_faulty_ops(f), NREC);
    assert_int_equal(replay(io_posix_nosync(), &c, NULL, NULL), 0);
    check_prefix(&c, NREC);
    io_faulty_free(f);
}

/* A write error (after `partial` short-write chunks of 7 bytes reached the
 * file) fails the writer for good; reopening recovers the synced prefix. */
static void write_error_case(int err, unsigned partial)
{
    coll c;
    wal_replay_result r;
    io_faulty *f = io_faulty_new(io_posix_nosync());
    io_ops *fio = io_faulty_ops(f);
    wal *w;
    unlink(logpath);
    assert_int_equal(wal_open(fio, logpath, BASE, &w), 0);
    assert_int_equal(append_range(w, 0, 5, 5), 0);
    assert_int_equal(wal_durable_seq(w), BASE + 5);

    io_faulty_short_writes(f, partial ? 7 : 0);
    io_faulty_fail_write(f, partial + 1, err);
    assert_int_equal(append_range(w, 5, 9, 100), -err);
    assert_int_equal(wal_error(w), -err);
    assert_int_equal(wal_durable_seq(w), BASE + 5);
    /* The device works again, but the writer stays failed. */
    io_faulty_reset(f);
    assert_int_equal(wal_append(w, 1, "x", 1, NULL), -err);
    assert_int_equal(wal_flush(w), -err);
    assert_int_equal(wal_sync(w), -err);
    assert_int_equal(wal_commit(w), -err);
    assert_int_equal(wal_durable_seq(w), BASE + 5);
    assert_int_equal(wal_close(w), -err);
    uint64_t end = rec_off(5) + 7 * partial;
    assert_int_equal(file_size(), end);

    /* Records the failed flush wrote whole may survive (they were never
     * acknowledged, so either outcome is allowed); the torn rest is cut. */
    int k = 5;
    while (rec_off(k + 1) <= end) k++;
    assert_int_equal(replay(io_posix_nosync(), &c, NULL, &r), 0);
    check_prefix(&c, k);
    assert_int_equal(r.dropped, end - rec_off(k));
    assert_int_equal(r.torn, end != rec_off(k));
    assert_int_equal(wal_open(io_posix_nosync(), logpath, BASE, &w), 0);
    assert_int_equal(append_range(w, k, 9, 2), 0);
    assert_int_equal(wal_close(w), 0);
    assert_int_equal(replay(io_posix_nosync(), &c, NULL, &r), 0);
    check_prefix(&c, 9);
    io_faulty_free(f);
}

static void test_write_errors(void **state)
{
    write_error_case(EIO, 0);
    write_error_case(EIO, 3);
    write_error_case(ENOSPC, 0);
    write_error_case(ENOSPC, 5);
}

static void test_fsync_error(void **state)
{
    coll c;
    io_faulty *f = io_faulty_new(io_posix_nosync());
    wal *w;
    unlink(logpath);
    assert_int_equal(wal_open(io_faulty_ops(f), logpath, BASE, &w), 0);
    assert_int_equal(append_range(w, 0, 3, 3), 0);
    assert_int_equal(append_range(w, 3, 5, 100) , 0);
    assert_int_equal(wal_durable_seq(w), BASE + 5);
    uint8_t p[128];
    rec_fill(5, p);
    assert_int_equal(wal_append(w, rec_type(5), p, rec_len(5), NULL), 0);
    io_faulty_fail_fsync(f, 1, EIO);
    assert_int_equal(wal_flush(w), 0);
    assert_int_equal(wal_sync(w), -EIO);
    assert_int_equal(wal_error(w), -EIO);
    assert_int_equal(wal_durable_seq(w), BASE + 5);   /* record 6 never acknowledged */
    assert_int_equal(wal_sync(w), -EIO);              /* no retry can "succeed" */
    assert_int_equal(wal_append(w, 1, NULL, 0, NULL), -EIO);
    assert_int_equal(wal_close(w), -EIO);
    /* The unacknowledged record reached the page cache, so here it
     * survives; the contract allows either outcome, the synced five must. */
    assert_int_equal(replay(io_posix_nosync(), &c, NULL, NULL), 0);
    assert_true(c.n >= 5);
    check_prefix(&c, c.n);

    /* fsync failing while creating the file fails wal_open. */
    unlink(logpath);
    io_faulty_fail_fsync(f, 1, EIO);
    assert_int_equal(wal_open(io_faulty_ops(f), logpath, BASE, &w), -EIO);
    unlink(logpath);
    io_faulty_fail_fsync(f, 2, EIO);                  /* the directory fsync */
    assert_int_equal(wal_open(io_faulty_ops(f), logpath, BASE, &w), -EIO);
    io_faulty_free(f);
}

/* Crash at every byte of a log's life (creation, then appends committed in
 * groups of 3): reopening and replaying gives exactly the records wholly
 * written before the crash byte, and appending then works. */
static void test_crash_every_byte(void **state)
{
    coll c;
    wal_replay_result r;
    io_faulty *f = io_faulty_new(io_posix_nosync());
    uint64_t total = rec_off(NREC);

    for (uint64_t n = 0; n <= total; n++) {
        unlink(logpath);
        io_faulty_reset(f);
        io_faulty_crash_at(f, n);
        make_log(io_faulty_ops(f), NREC);   /* every call "succeeds" */
        assert_true(io_faulty_crashed(f));
        io_faulty_reset(f);

        int k = 0;
        while (k < NREC && rec_off(k + 1) <= n) k++;
        uint64_t keep = n < WAL_FILE_HEADER ? 0 : rec_off(k);
        assert_int_equal(replay(io_posix_nosync(), &c, NULL, &r), 0);
        check_prefix(&c, k);
        assert_int_equal(r.dropped, n - keep);
        assert_int_equal(file_size(), keep);
        if (n % 7 == 0 || n == total) {     /* reopen and continue */
            wal *w;
            assert_int_equal(wal_open(io_posix_nosync(), logpath, BASE, &w), 0);
            assert_int_equal(append_range(w, k, k + 1, 1), 0);
            assert_int_equal(wal_close(w), 0);
            assert_int_equal(replay(io_posix_nosync(), &c, NULL, &r), 0);
            check_prefix(&c, k + 1);
        }
    }
    io_faulty_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_round_trip),
        cmocka_unit_test(test_big_and_empty_payloads),
        cmocka_unit_test(test_writer_reopen_continues),
        cmocka_unit_test(test_truncate_every_byte),
        cmocka_unit_test(test_flip_every_bit),
        cmocka_unit_test(test_tail_rule),
        cmocka_unit_test(test_short_writes),
        cmocka_unit_test(test_write_errors),
        cmocka_unit_test(test_fsync_error),
        cmocka_unit_test(test_crash_every_byte),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
