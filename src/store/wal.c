/* wal.c -- the write-ahead log: its file format, writer, and replay.
 *
 * This comment is the format's specification.
 *
 * FILE LAYOUT
 *
 * All integers are little-endian, written byte by byte (no struct I/O), so
 * the file is identical on every architecture.  A log file is a 24-byte
 * header followed by zero or more records, back to back, with no padding:
 *
 *   File header (24 bytes)
 *     offset  size  field
 *          0     8  magic "ENGRAMWL" (ASCII, no terminator)
 *          8     4  format version, currently 1
 *         12     8  base_seq: the records in this file carry sequence
 *                   numbers base_seq+1, base_seq+2, ... (a log started after
 *                   a snapshot at seq S has base_seq S)
 *         20     4  CRC-32C of bytes 0..19
 *
 *   Record (20 + len bytes)
 *     offset  size  field
 *          0     4  len: payload length in bytes, <= 2^30
 *          4     4  crc: CRC-32C of bytes 0..3, then bytes 8..19, then the
 *                   payload (the CRC is chained in that order)
 *          8     1  type: non-zero; meaning belongs to the caller
 *          9     3  reserved, zero
 *         12     8  seq: sequence number, exactly one more than the
 *                   previous record's (or base_seq+1 for the first)
 *         20   len  payload
 *
 * The CRC covers every byte of the record except itself.  Covering len means
 * a damaged length is caught rather than used to frame the next record;
 * covering type and seq means a flipped bit there cannot replay as a
 * different command; covering the reserved bytes keeps them usable later.
 * Type 0 is invalid so that zero-filled space (which some filesystems leave
 * after a crash when a file's size was extended before its data) never
 * decodes: a zero header's CRC field (0) is also never CRC-32C of its bytes.
 *
 * RECOVERY RULE (wal_scan below)
 *
 * Records are read from offset 24.  A record at offset X is *good* if its
 * whole header and payload lie before end of file, it decodes (CRC matches,
 * reserved bytes zero, type non-zero, len <= 2^30) and its seq is the next
 * expected one.  Good records are replayed.  At the first record that is not
 * good, call its offset X (the bad offset):
 *
 *   - If no *plausible* record starts at any offset Y > X, the bytes from X
 *     to EOF are a torn tail: the remains of one interrupted append (a short
 *     header, a length running past EOF, a payload cut short, or a CRC
 *     mismatch because the last bytes never reached the disk).  They are cut
 *     off: the file is truncated to X and fsynced, and replay succeeds.
 *     Plausible means: the record decodes, lies wholly before EOF, and its
 *     seq is greater than the last good seq and no greater than the last
 *     good seq + 1 + (EOF - X) / 20 (no more records than could fit).
 *
 *   - Otherwise valid data follows damaged data, which no interrupted append
 *     can produce (appends only ever add at the end): the log is corrupt.
 *     Replay stops at X and returns -EBADMSG with X reported; nothing is
 *     truncated, because the operator may want the later records back.  With
 *     the truncate_on_corruption option it cuts at X instead, as for a tail.
 *
 * So a flipped bit in the last record's bytes cuts that record as torn, and a
 * flipped bit in any earlier record (including its length field, which would
 * otherwise make the framing skip) is -EBADMSG at that record's offset,
 * because the following record is still intact and is found by the search.
 * A false positive of the search needs 32 garbage bits to match a CRC and a
 * plausible seq; if it happens, the result errs on the safe side (corruption
 * is reported, nothing is silently dropped).  If a disk reorders writes and
 * loses a middle page while a later one survives, that also reads as
 * corruption: correct, since the records after the hole were never synced
 * together with the hole.
 *
 * The file header: a file shorter than 24 bytes is an interrupted creation
 * (the writer fsyncs the header before any record), i.e. an empty log; it is
 * truncated to 0 bytes and wal_open writes a fresh header.  A file of 24
 * bytes or more whose magic or header CRC is wrong is -EBADMSG at offset 0;
 * a valid header with another version is -ENOTSUP.
 *
 * WRITER
 *
 * wal_append encodes into a memory buffer; wal_flush writes the buffer at the
 * end of the valid prefix with io_write_all; wal_sync fsyncs.  The server
 * calls flush+sync once per event-loop iteration, before replies go out
 * (group commit: one fsync covers every write of the iteration).  Any write
 * or fsync error makes the writer failed for good, because after a failed
 * fsync the kernel may already have dropped the dirty pages and marked them
 * clean, so a retry could report success for data that is gone.  The only
 * way on is to close and reopen, which rereads the file from disk and
 * applies the recovery rule to whatever the failure left behind.
 *
 * Ownership: a wal owns its descriptor and buffer; wal_close frees both.
 * Threads: one thread at a time per wal; wal_replay is reentrant. */
#include "engram/wal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "engram/crc32c.h"
#include "engram/le.h"

static const char wal_magic[8] = { 'E', 'N', 'G', 'R', 'A', 'M', 'W', 'L' };

#define WAL_READ_WINDOW (64u * 1024)    /* bytes fetched per replay read */
#define WAL_KEEP_BUFFER (1u << 20)      /* writer buffer kept across flushes */

/* ---- little-endian codec ----------------------------------------------- */

static void header_encode(uint8_t h[WAL_FILE_HEADER], uint64_t base_seq)
{
    memcpy(h, wal_magic, 8);
    le_put32(h + 8, WAL_VERSION);
    le_put64(h + 12, base_seq);
    le_put32(h + 20, crc32c(0, h, 20));
}

/* The CRC of a record whose header is at h and payload at payload. */
static uint32_t record_crc(const uint8_t *h, const void *payload, uint32_t len)
{
    uint32_t c = crc32c(0, h, 4);           /* len */
    c = crc32c(c, h + 8, 12);               /* type, reserved, seq */
    return crc32c(c, payload, len);
}

void wal_record_encode(void *dst, uint8_t type, uint64_t seq, const void *payload, uint32_t len)
{
    uint8_t *h = dst;
    le_put32(h, len);
    h[8] = type;
    h[9] = h[10] = h[11] = 0;
    le_put64(h + 12, seq);
    if (len) memcpy(h + WAL_RECORD_HEADER, payload, len);
    le_put32(h + 4, record_crc(h, h + WAL_RECORD_HEADER, len));
}

int wal_record_decode(const void *buf, size_t avail, wal_record *out)
{
    const uint8_t *h = buf;
    if (avail < WAL_RECORD_HEADER) return 0;
    uint32_t len = le_get32(h);
    if (len > WAL_PAYLOAD_MAX || h[8] == 0 || h[9] || h[10] || h[11]) return -EBADMSG;
    if (avail - WAL_RECORD_HEADER < len) return 0;
    if (record_crc(h, h + WAL_RECORD_HEADER, len) != le_get32(h + 4)) return -EBADMSG;
    out->type = h[8];
    out->seq = le_get64(h + 12);
    out->len = len;
    out->payload = h + WAL_RECORD_HEADER;
    return (int)wal_record_size(len);
}

/* ---- replay ----------------------------------------------------------------- */

/* A read window over the file: replay reads forward in WAL_READ_WINDOW
 * chunks instead of two preads per record. */
typedef struct reader {
    io_ops *io;
    int fd;
    uint64_t size;
    uint8_t *buf;
    size_t cap;
    uint64_t win_off;
    size_t win_len;
} reader;

/* Point *p at len bytes at off (the caller guarantees off + len <= size).
 * Returns 0 or -errno/-ENOMEM. */
static int rd_get(reader *r, uint64_t off, size_t len, const uint8_t **p)
{
    if (off >= r->win_off && off + len <= r->win_off + r->win_len) {
        *p = r->buf + (off - r->win_off);
        return 0;
    }
    size_t want = len > WAL_READ_WINDOW ? len : WAL_READ_WINDOW;
    if (want > r->size - off) want = (size_t)(r->size - off);
    if (want > r->cap) {
        uint8_t *nb = realloc(r->buf, want);
        if (!nb) return -ENOMEM;
        r->buf = nb;
        r->cap = want;
    }
    ssize_t n = io_read_full(r->io, r->fd, r->buf, want, off);
    if (n < 0) return (int)n;
    r->win_off = off;
    r->win_len = (size_t)n;
    if ((size_t)n < len) return -EIO;       /* the file shrank under us */
    *p = r->buf;
    return 0;
}

/* Is the record at off good with the given expected seq?  Returns its size
 * (> 0), 0 if not, or a negative I/O error.  rec gets the record. */
static int rd_record(reader *r, uint64_t off, wal_record *rec)
{
    const uint8_t *p;
    uint64_t avail = r->size - off;
    if (avail < WAL_RECORD_HEADER) return 0;
    int rc = rd_get(r, off, WAL_RECORD_HEADER, &p);
    if (rc < 0) return rc;
    uint32_t len = le_get32(p);
    if (len > WAL_PAYLOAD_MAX || avail - WAL_RECORD_HEADER < len) return 0;
    /* Cheap header checks before reading (and CRC-ing) a payload. */
    if (p[8] == 0 || p[9] || p[10] || p[11]) return 0;
    if ((rc = rd_get(r, off, wal_record_size(len), &p)) < 0) return rc;
    rc = wal_record_decode(p, wal_record_size(len), rec);
    return rc > 0 ? rc : 0;
}

/* The tail test of the recovery rule: does a plausible record start at any
 * offset after bad?  Returns 1, 0, or a negative I/O error. */
static int rd_valid_after(reader *r, uint64_t bad, uint64_t last_seq)
{
    uint64_t max_seq = last_seq + 1 + (r->size - bad) / WAL_RECORD_HEADER;
    for (uint64_t y = bad + 1; y + WAL_RECORD_HEADER <= r->size; y++) {
        const uint8_t *p;
        int rc = rd_get(r, y, WAL_RECORD_HEADER, &p);
        if (rc < 0) return rc;
        uint64_t seq = le_get64(p + 12);
        if (seq <= last_seq || seq > max_seq) continue;   /* before any CRC work */
        wal_record rec;
        rc = rd_record(r, y, &rec);
        if (rc != 0) return rc > 0 ? 1 : rc;
    }
    return 0;
}

static int cut(io_ops *io, int fd, uint64_t at)
{
    int rc = io->ftruncate(io, fd, at);
    return rc < 0 ? rc : io->fsync(io, fd);
}

/* Apply the recovery rule to the open file fd (see the top of this file). */
static int wal_scan(io_ops *io, int fd, wal_replay_fn *cb, void *ud,
                    const wal_replay_opts *opts, wal_replay_result *res)
{
    static const wal_replay_opts defaults;
    reader r = { io, fd, 0, NULL, 0, 0, 0 };
    const uint8_t *p;
    int rc;

    if (!opts) opts = &defaults;
    memset(res, 0, sizeof *res);
    if ((rc = io->file_size(io, fd, &r.size)) < 0) return rc;
    res->file_size = res->bad_offset = r.size;

    if (r.size < WAL_FILE_HEADER) {         /* interrupted creation */
        res->torn = r.size > 0;
        res->bad_offset = 0;
        if (r.size > 0 && !opts->read_only) {
            if ((rc = cut(io, fd, 0)) < 0) return rc;
            res->dropped = r.size;
        }
        return 0;
    }
    if ((rc = rd_get(&r, 0, WAL_FILE_HEADER, &p)) < 0) goto out;
    if (memcmp(p, wal_magic, 8) != 0 || crc32c(0, p, 20) != le_get32(p + 20)) {
        res->corrupt = 1;
        res->bad_offset = 0;
        rc = -EBADMSG;
        if (opts->truncate_on_corruption && !opts->read_only) {
            if ((rc = cut(io, fd, 0)) == 0) res->dropped = r.size;
        }
        goto out;
    }
    if (le_get32(p + 8) != WAL_VERSION) { rc = -ENOTSUP; goto out; }
    res->base_seq = res->last_seq = le_get64(p + 12);

    uint64_t off = WAL_FILE_HEADER;
    while (off < r.size) {
        wal_record rec;
        rc = rd_record(&r, off, &rec);
        if (rc < 0) goto out;
        if (rc == 0 || rec.seq != res->last_seq + 1) break;
        if (cb && (rc = cb(ud, rec.type, rec.seq, rec.payload, rec.len)) != 0) goto out;
        off += wal_record_size(rec.len);
        res->last_seq = rec.seq;
        res->records++;
    }
    res->valid_end = off;
    rc = 0;
    if (off == r.size) goto out;

    res->bad_offset = off;
    int found = rd_valid_after(&r, off, res->last_seq);
    if (found < 0) { rc = found; goto out; }
    res->torn = !found;
    res->corrupt = found;
    if (found && !opts->truncate_on_corruption) { rc = -EBADMSG; goto out; }
    if (!opts->read_only) {
        if ((rc = cut(io, fd, off)) < 0) goto out;
        res->dropped = r.size - off;
    }
out:
    free(r.buf);
    return rc;
}

int wal_replay(io_ops *io, const char *path, wal_replay_fn *cb, void *ud,
               const wal_replay_opts *opts, wal_replay_result *res)
{
    wal_replay_result local;
    int fd, rc, ro = opts && opts->read_only;
    if (!res) res = &local;
    memset(res, 0, sizeof *res);
    if ((rc = io->open(io, path, ro ? O_RDONLY : O_RDWR, 0, &fd)) < 0) return rc;
    rc = wal_scan(io, fd, cb, ud, opts, res);
    int crc = io->close(io, fd);
    return rc ? rc : crc;
}

/* ---- writer ------------------------------------------------------------------- */

struct wal {
    io_ops *io;
    int fd;
    int err;                    /* sticky: first write/fsync failure */
    uint64_t base_seq;
    uint64_t last_seq;          /* last appended */
    uint64_t flushed_seq;       /* last written to the file */
    uint64_t durable_seq;       /* last fsynced */
    uint64_t end;               /* file offset where the next flush writes */
    uint8_t *buf;               /* encoded records not yet flushed */
    size_t len, cap;
};

/* Give the (possibly new, possibly torn-at-creation) empty file its header.
 * The directory is fsynced too: a fresh file's name is not durable until
 * its directory is. */
static int wal_init_file(wal *w, const char *path, uint64_t base_seq)
{
    uint8_t h[WAL_FILE_HEADER];
    header_encode(h, base_seq);
    int rc = io_write_all(w->io, w->fd, h, sizeof h, 0);
    if (rc == 0) rc = w->io->fsync(w->io, w->fd);
    if (rc == 0) rc = io_fsync_parent(w->io, path);
    if (rc < 0) return rc;
    w->base_seq = w->last_seq = w->flushed_seq = w->durable_seq = base_seq;
    w->end = WAL_FILE_HEADER;
    return 0;
}

int wal_open(io_ops *io, const char *path, uint64_t base_seq, wal **out)
{
    wal_replay_result res;
    wal *w = calloc(1, sizeof *w);
    int rc;

    *out = NULL;
    if (!w) return -ENOMEM;
    w->io = io;
    if ((rc = io->open(io, path, O_RDWR | O_CREAT, 0644, &w->fd)) < 0) {
        free(w);
        return rc;
    }
    rc = wal_scan(io, w->fd, NULL, NULL, NULL, &res);
    if (rc == 0 && res.valid_end == 0) {
        rc = wal_init_file(w, path, base_seq);
    } else if (rc == 0) {
        w->base_seq = res.base_seq;
        w->last_seq = w->flushed_seq = w->durable_seq = res.last_seq;
        w->end = res.valid_end;
        /* What we found may sit only in the page cache (the previous
         * process died before its fsync); make it durable before building
         * on it, so a later record is never durable while an earlier one
         * is not. */
        rc = io->fsync(io, w->fd);
    }
    if (rc < 0) {
        io->close(io, w->fd);
        free(w);
        return rc;
    }
    *out = w;
    return 0;
}

int wal_close(wal *w)
{
    if (!w) return 0;
    int rc = w->err ? w->err : wal_commit(w);
    int crc = w->io->close(w->io, w->fd);
    free(w->buf);
    free(w);
    return rc ? rc : crc;
}

int wal_append(wal *w, uint8_t type, const void *payload, uint32_t len, uint64_t *seq_out)
{
    if (w->err) return w->err;
    if (type == 0 || len > WAL_PAYLOAD_MAX) return -EINVAL;
    size_t need = wal_record_size(len);
    if (w->cap - w->len < need) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap - w->len < need) cap *= 2;   /* need <= 2^30 + 20: no overflow on 64-bit */
        uint8_t *nb = realloc(w->buf, cap);
        if (!nb) return -ENOMEM;
        w->buf = nb;
        w->cap = cap;
    }
    wal_record_encode(w->buf + w->len, type, w->last_seq + 1, payload, len);
    w->len += need;
    w->last_seq++;
    if (seq_out) *seq_out = w->last_seq;
    return 0;
}

int wal_flush(wal *w)
{
    if (w->err) return w->err;
    if (w->len == 0) return 0;
    int rc = io_write_all(w->io, w->fd, w->buf, w->len, w->end);
    if (rc < 0) return w->err = rc;
    w->end += w->len;
    w->len = 0;
    w->flushed_seq = w->last_seq;
    if (w->cap > WAL_KEEP_BUFFER) {     /* one huge record must not pin memory */
        free(w->buf);
        w->buf = NULL;
        w->cap = 0;
    }
    return 0;
}

int wal_sync(wal *w)
{
    if (w->err) return w->err;
    if (w->durable_seq == w->flushed_seq) return 0;
    int rc = w->io->fsync(w->io, w->fd);
    if (rc < 0) return w->err = rc;
    w->durable_seq = w->flushed_seq;
    return 0;
}

int wal_commit(wal *w)
{
    int rc = wal_flush(w);
    return rc ? rc : wal_sync(w);
}

uint64_t wal_last_seq(const wal *w) { return w->last_seq; }
uint64_t wal_durable_seq(const wal *w) { return w->durable_seq; }
uint64_t wal_base_seq(const wal *w) { return w->base_seq; }
uint64_t wal_size(const wal *w) { return w->end; }
size_t wal_pending(const wal *w) { return w->len; }
int wal_error(const wal *w) { return w->err; }

int wal_fd(const wal *w) { return w->fd; }
uint64_t wal_flushed_seq(const wal *w) { return w->flushed_seq; }
