/* fuzz_wal.c -- the write-ahead log's record codec and recovery rule
 * (wal.h: wal_record_decode, wal_replay, wal_open), with every valid
 * record's payload decoded as replay does (oplog.h).
 *
 * Feeds: the input as a log file (an in-memory file behind the io seam,
 * fuzz.h).  Records carry a CRC-32C, which random mutation almost never
 * keeps right, so a custom mutator reads the input as a header and
 * records, mutates one payload (or a type, or drops, repeats or reorders
 * records, or cuts the file anywhere), and writes it back with valid CRCs
 * and seqs -- or, one time in five, mutates the raw bytes unsealed, so the
 * CRC and tail checks themselves are fuzzed.  Reproducers are plain files.
 *
 * Checks:
 *  - the codec: a decoded record lies within the bytes given, and
 *    walking the file with it finds what a read-only replay finds;
 *  - a read-only replay reports sizes that add up (valid_end <= size,
 *    bad_offset, torn xor corrupt) and seqs base+1, base+2, ... in order;
 *  - a replay that cuts a torn tail replays the same records, leaves the
 *    file exactly valid_end bytes long, and a second replay then finds a
 *    clean log; a corrupt log is left untouched unless told to cut, and
 *    after truncate_on_corruption it replays cleanly;
 *  - wal_open on the recovered file continues it: an appended record
 *    replays as seq last+1 after all the others. */
#include "fuzz.h"

#include <errno.h>
#include <string.h>

#include "engram/crc32c.h"
#include "engram/le.h"
#include "engram/oplog.h"
#include "engram/wal.h"

static const op_limits lim = {
    .string_max = 512u << 20, .dim_max = 32768, .m_max = 512, .ef_max = 1u << 20,
    .capacity_max = 1u << 30, .payload_max = 512u << 20, .db_max = 16,
};

typedef struct seen {
    uint64_t next_seq;      /* expected */
    uint64_t n;
    int check_seq;
} seen;

static void decode_payload(uint8_t type, const void *p, uint32_t len, int depth)
{
    op o;
    if (type == OP_BATCH && depth == 0) {
        size_t pos = 0;
        uint8_t t;
        const void *item;
        uint32_t ilen;
        while (op_batch_next(p, len, &pos, &t, &item, &ilen) == 1) decode_payload(t, item, ilen, 1);
        return;
    }
    if (type == OP_INDB) {
        uint32_t db, ilen;
        uint8_t t;
        const void *inner;
        if (op_indb(p, len, &lim, &db, &t, &inner, &ilen) == 0) decode_payload(t, inner, ilen, 1);
        return;
    }
    if (op_decode(type, p, len, &lim, &o) == 0 &&
        (type == OP_HSET || type == OP_HDEL || type == OP_HEXPIRE || type == OP_FTDEF)) {
        size_t pos = 0;
        op_hfield f;
        while (op_hfield_next(&o, &pos, &f)) {}
    }
}

static int on_record(void *ud, uint8_t type, uint64_t seq, const void *payload, uint32_t len)
{
    seen *s = ud;
    FUZZ_CHECK(type != 0, "type 0 replayed");
    if (s->check_seq) FUZZ_CHECK(seq == s->next_seq, "seq %llu, expected %llu",
                                 (unsigned long long)seq, (unsigned long long)s->next_seq);
    s->next_seq = seq + 1;
    s->n++;
    /* The payload in its own block: ASan sees reads past it. */
    void *p = malloc(len ? len : 1);
    FUZZ_CHECK(p != NULL, "out of memory");
    memcpy(p, payload, len);
    decode_payload(type, p, len, 0);
    free(p);
    return 0;
}

/* Walk the records with the pure codec: how many decode in sequence. */
static uint64_t codec_walk(const uint8_t *d, size_t n)
{
    if (n < WAL_FILE_HEADER) return 0;
    uint64_t seq = le_get64(d + 12), count = 0;
    size_t off = WAL_FILE_HEADER;
    while (off < n) {
        wal_record r;
        int rc = wal_record_decode(d + off, n - off, &r);
        if (rc <= 0) break;
        FUZZ_CHECK((size_t)rc == wal_record_size(r.len) && (size_t)rc <= n - off,
                   "record size %d at %zu", rc, off);
        FUZZ_CHECK(r.payload == d + off + WAL_RECORD_HEADER, "payload pointer");
        if (r.seq != seq + 1) break;
        seq = r.seq;
        count++;
        off += (size_t)rc;
    }
    return count;
}

static int replay(const wal_replay_opts *o, seen *s, wal_replay_result *res)
{
    return wal_replay(fuzz_memio(), "fuzz.log", on_record, s, o, res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    FUZZ_CHECK(copy != NULL, "out of memory");
    if (size) memcpy(copy, data, size);

    /* 1. read-only */
    fuzz_memio_set(data, size);
    wal_replay_opts ro = { .read_only = 1 };
    wal_replay_result r0;
    seen s0 = { 0, 0, 0 };
    int rc0 = replay(&ro, &s0, &r0);
    size_t now_len;
    const uint8_t *now = fuzz_memio_data(&now_len);
    FUZZ_CHECK(now_len == size && (size == 0 || memcmp(now, data, size) == 0), "a read-only replay wrote");
    FUZZ_CHECK(rc0 == 0 || rc0 == -EBADMSG || rc0 == -ENOTSUP, "code %d", rc0);
    FUZZ_CHECK(r0.file_size == size, "file_size");
    if (rc0 == -ENOTSUP) goto done;
    FUZZ_CHECK(r0.records == s0.n, "%llu records reported, %llu seen",
               (unsigned long long)r0.records, (unsigned long long)s0.n);
    if (size >= WAL_FILE_HEADER && !(r0.corrupt && r0.bad_offset == 0)) {
        FUZZ_CHECK(r0.valid_end <= size && r0.valid_end >= WAL_FILE_HEADER, "valid_end");
        FUZZ_CHECK(r0.last_seq == r0.base_seq + r0.records, "seqs not consecutive");
        FUZZ_CHECK(codec_walk(copy, size) == r0.records, "the codec and replay disagree");
        if (r0.valid_end < size)
            FUZZ_CHECK(r0.torn + r0.corrupt == 1 && r0.bad_offset == r0.valid_end,
                       "bad bytes at %llu neither torn nor corrupt",
                       (unsigned long long)r0.valid_end);
        else
            FUZZ_CHECK(!r0.torn && !r0.corrupt && rc0 == 0, "a clean log reported bad");
    }

    /* 2. the default rule: cut a torn tail, refuse corruption */
    wal_replay_result r1;
    seen s1 = { r0.base_seq + 1, 0, 1 };
    int rc1 = replay(NULL, &s1, &r1);
    FUZZ_CHECK(rc1 == rc0 && s1.n == s0.n, "a cutting replay differs from a read-only one");
    now = fuzz_memio_data(&now_len);
    if (rc1 == -EBADMSG) {
        FUZZ_CHECK(now_len == size && memcmp(now, copy, size) == 0, "a refused log was changed");
        wal_replay_opts cut = { .truncate_on_corruption = 1 };
        seen s2 = { 0, 0, 0 };
        int rc2 = replay(&cut, &s2, &r1);
        FUZZ_CHECK(rc2 == 0, "truncate_on_corruption failed: %d", rc2);
        FUZZ_CHECK(s2.n == s0.n, "truncate_on_corruption replayed %llu records, not %llu",
                   (unsigned long long)s2.n, (unsigned long long)s0.n);
    } else if (size >= WAL_FILE_HEADER) {
        FUZZ_CHECK(now_len == r0.valid_end, "after the cut: %zu bytes, valid_end %llu", now_len,
                   (unsigned long long)r0.valid_end);
    } else {
        FUZZ_CHECK(now_len == 0, "a short file not emptied");
    }

    /* 3. the recovered log replays cleanly */
    wal_replay_result r3;
    seen s3 = { 0, 0, 0 };
    FUZZ_CHECK(replay(NULL, &s3, &r3) == 0 && !r3.torn && !r3.corrupt, "not clean after recovery");
    uint64_t last = r3.last_seq, count = s3.n;

    /* 4. wal_open continues it */
    fuzz_memio_data(&now_len);
    int empty = now_len == 0;     /* a short file was emptied: wal_open creates it */
    wal *w = NULL;
    int rc = wal_open(fuzz_memio(), "fuzz.log", 7, &w);
    FUZZ_CHECK(rc == 0, "wal_open on a recovered log: %d", rc);
    uint64_t seq = 0;
    FUZZ_CHECK(wal_last_seq(w) == (empty ? 7 : last), "wal_open's last seq");
    FUZZ_CHECK(wal_append(w, OP_FLUSHALL, NULL, 0, &seq) == 0, "append");
    FUZZ_CHECK(wal_close(w) == 0, "close");
    seen s4 = { 0, 0, 0 };
    wal_replay_result r4;
    FUZZ_CHECK(replay(NULL, &s4, &r4) == 0 && !r4.torn && !r4.corrupt, "not clean after append");
    FUZZ_CHECK(s4.n == (empty ? 0 : count) + 1 && r4.last_seq == seq,
               "appended record not replayed last");
done:
    FUZZ_CHECK(fuzz_memio_open_files() == 0, "a descriptor left open");
    free(copy);
    return 0;
}

/* ---- the mutator: mutate records, reseal the CRCs ------------------------- */

#define MAXREC 256

typedef struct rec {
    uint8_t type;
    uint64_t seq;
    const uint8_t *p;
    uint32_t len;
} rec;

/* Header and whole-looking records of d; the index where the tail starts. */
static size_t parse(const uint8_t *d, size_t n, rec *r, size_t *nr)
{
    size_t off = WAL_FILE_HEADER;
    *nr = 0;
    while (*nr < MAXREC && n - off >= WAL_RECORD_HEADER) {
        uint32_t len = le_get32(d + off);
        if (len > n - off - WAL_RECORD_HEADER) break;
        r[*nr] = (rec){ d[off + 8] ? d[off + 8] : 1, le_get64(d + off + 12),
                        d + off + WAL_RECORD_HEADER, len };
        (*nr)++;
        off += WAL_RECORD_HEADER + len;
    }
    return off;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    uint64_t s = seed;
    uint64_t x = fuzz_rand(&s);
    if (x % 5 == 0 || size < WAL_FILE_HEADER || memcmp(data, "ENGRAMWL", 8) != 0)
        return LLVMFuzzerMutate(data, size, max_size);

    rec r[MAXREC + 1];
    size_t nr;
    size_t tail = parse(data, size, r, &nr);
    uint8_t *scratch = malloc(max_size + 64);   /* the mutated payload */
    uint8_t *out = malloc(max_size);
    if (!scratch || !out) abort();

    int keep_seqs = 0, cut = 0;
    switch ((x >> 8) % 8) {
    case 0: case 1: case 2: case 3:           /* a payload */
        if (nr) {
            size_t i = (size_t)(fuzz_rand(&s) % nr);
            size_t cap = r[i].len * 2 + 64 < max_size ? r[i].len * 2 + 64 : max_size;
            memcpy(scratch, r[i].p, r[i].len);
            r[i].len = (uint32_t)LLVMFuzzerMutate(scratch, r[i].len, cap);
            r[i].p = scratch;
        }
        break;
    case 4:                                   /* a type */
        if (nr) r[fuzz_rand(&s) % nr].type = (uint8_t)(1 + fuzz_rand(&s) % 40);
        break;
    case 5:                                   /* drop or repeat one */
        if (nr) {
            size_t i = (size_t)(fuzz_rand(&s) % nr);
            if (fuzz_rand(&s) & 1) {
                memmove(r + i, r + i + 1, (nr - i - 1) * sizeof *r);
                nr--;
            } else if (nr < MAXREC) {
                memmove(r + i + 1, r + i, (nr - i) * sizeof *r);
                nr++;
            }
        }
        break;
    case 6:                                   /* seqs as they were (gaps, repeats) */
        keep_seqs = 1;
        if (nr) r[fuzz_rand(&s) % nr].seq += (fuzz_rand(&s) % 5) - 2;
        break;
    case 7:                                   /* a torn write: cut anywhere */
        cut = 1;
        break;
    }

    size_t len = 0;
    if (WAL_FILE_HEADER > max_size) goto raw;
    memcpy(out, data, WAL_FILE_HEADER);
    le_put32(out + 8, WAL_VERSION);
    le_put32(out + 20, crc32c(0, out, 20));
    len = WAL_FILE_HEADER;
    uint64_t seq = le_get64(out + 12);
    for (size_t i = 0; i < nr; i++) {
        size_t need = wal_record_size(r[i].len);
        if (len + need > max_size) break;
        wal_record_encode(out + len, r[i].type, keep_seqs ? r[i].seq : ++seq, r[i].p, r[i].len);
        len += need;
    }
    if (tail < size && len + (size - tail) <= max_size) {
        memcpy(out + len, data + tail, size - tail);
        len += size - tail;
    }
    if (cut && len > 0) len = (size_t)(fuzz_rand(&s) % len) + 1;
    memcpy(data, out, len);
    free(scratch);
    free(out);
    return len;
raw:
    free(scratch);
    free(out);
    return LLVMFuzzerMutate(data, size, max_size);
}
