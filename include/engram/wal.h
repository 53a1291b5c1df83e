/* wal.h -- the write-ahead log: record codec, writer, and replay.
 *
 * The full byte layout and the recovery rule are specified in the header
 * comment of src/store/wal.c; in short (all integers little-endian):
 *
 *   file header, 24 bytes:
 *     0  "ENGRAMWL"   8  u32 version (1)   12  u64 base_seq   20  u32 crc32c(0..19)
 *   then records, back to back, each 20 + len bytes:
 *     0  u32 len   4  u32 crc   8  u8 type (!= 0)   9  3 bytes zero   12  u64 seq
 *     20 payload[len]
 *   crc = CRC-32C of bytes 0..3, then 8..19, then the payload: every byte of
 *   the record except the crc field itself.  Record seqs are base_seq+1,
 *   base_seq+2, ... with no gaps.
 *
 * Recovery (wal_replay, and wal_open on an existing file): the log's valid
 * prefix is replayed up to the first bad record.  If no valid record starts
 * anywhere after that point, the bad bytes are a torn tail (an interrupted
 * append): they are cut off and replay succeeds.  Otherwise the log is
 * corrupt: -EBADMSG with the bad record's offset, unless the caller asks to
 * cut there anyway.
 *
 * Ordering contract for the server (group commit):
 *   1. a write command calls wal_append() (memory only, cannot lose data);
 *   2. once per event-loop iteration, before any reply is written to a
 *      socket, the loop calls wal_flush() then wal_sync();
 *   3. replies for commands with seq <= wal_durable_seq() may go out; if
 *      flush or sync fails, none of the pending replies may claim success.
 * A failed flush or sync leaves the writer failed for good: every later
 * call returns the same -errno (the server refuses writes).  Recovery is to
 * wal_close() it and reopen (wal_open runs the recovery rule, which cuts
 * whatever torn bytes the failure left).  Records appended but never synced
 * may or may not survive the reopen; acknowledged ones always do.
 *
 * Errors: 0 or -errno.  -EBADMSG = the log is corrupt (not a torn tail);
 * -ENOTSUP = a WAL format version this build does not read.
 *
 * Threads: a wal is used by one thread at a time (the event loop). */
#ifndef ENGRAM_WAL_H
#define ENGRAM_WAL_H

#include <stddef.h>
#include <stdint.h>

#include "engram/io.h"

#define WAL_VERSION        1u
#define WAL_FILE_HEADER    24u          /* bytes */
#define WAL_RECORD_HEADER  20u          /* bytes before the payload */
#define WAL_PAYLOAD_MAX    (1u << 30)   /* larger lengths are corrupt */

/* ---- record codec (pure; no I/O) --------------------------------------- */

typedef struct wal_record {
    uint8_t type;
    uint64_t seq;
    uint32_t len;
    const uint8_t *payload;     /* points into the decoded buffer */
} wal_record;

/* Bytes a record with a len-byte payload occupies. */
static inline size_t wal_record_size(uint32_t len) { return WAL_RECORD_HEADER + (size_t)len; }

/* Encode one record into dst, which must hold wal_record_size(len) bytes.
 * type must be non-zero (0 is reserved so zero-filled space never decodes);
 * len <= WAL_PAYLOAD_MAX; payload may be NULL when len is 0. */
void wal_record_encode(void *dst, uint8_t type, uint64_t seq, const void *payload, uint32_t len);

/* Decode the record at buf, of which avail bytes are present.
 * Returns the record's size (> 0) with *out filled (out->payload points into
 * buf); 0 if avail is too short to hold the header or the payload the
 * header announces (the record may be complete once more bytes come);
 * -EBADMSG if the bytes cannot be a record (bad crc, non-zero reserved
 * bytes, type 0, len > WAL_PAYLOAD_MAX).  The seq is not checked here. */
int wal_record_decode(const void *buf, size_t avail, wal_record *out);

/* ---- replay --------------------------------------------------------------- */

/* Called once per valid record, in order.  payload is valid only during the
 * call.  Return 0 to go on; any other value stops replay, which returns it. */
typedef int wal_replay_fn(void *ud, uint8_t type, uint64_t seq, const void *payload, uint32_t len);

typedef struct wal_replay_opts {
    int truncate_on_corruption; /* cut at a corrupt (non-tail) record too */
    int read_only;              /* never truncate; just report */
} wal_replay_opts;

typedef struct wal_replay_result {
    uint64_t base_seq;          /* from the file header (0 if none) */
    uint64_t last_seq;          /* last valid record's seq, else base_seq */
    uint64_t records;           /* valid records replayed */
    uint64_t valid_end;         /* offset just past the last valid record */
    uint64_t file_size;         /* size found on opening */
    uint64_t dropped;           /* bytes cut off (0 when read_only) */
    uint64_t bad_offset;        /* offset of the first bad byte; = file_size if none */
    int torn;                   /* 1: the bytes after valid_end were a torn tail */
    int corrupt;                /* 1: a corrupt record at bad_offset */
} wal_replay_result;

/* Replay the log at path through io.  opts and res may be NULL (defaults:
 * cut torn tails, fail on corruption).  cb may be NULL (scan only).
 * A file shorter than the header (an interrupted creation) is an empty log
 * with a torn tail: it is truncated to 0 bytes.
 * Returns 0 (also when a torn tail was cut: see res->torn, res->dropped);
 * -EBADMSG on corruption (records before it were replayed, nothing was
 * truncated unless truncate_on_corruption, res->bad_offset says where);
 * -ENOTSUP for an unknown version; -ENOENT if there is no file; another
 * -errno from the seam; or cb's non-zero return. */
int wal_replay(io_ops *io, const char *path, wal_replay_fn *cb, void *ud,
               const wal_replay_opts *opts, wal_replay_result *res);

/* ---- writer ----------------------------------------------------------------- */

typedef struct wal wal;

/* Open the log at path for appending.  If the file does not exist (or holds
 * less than a header: an interrupted creation) it is created with base_seq
 * in its header, fsynced, and its directory fsynced.  Otherwise the file is
 * scanned with wal_replay's recovery rule (no callback), a torn tail is cut,
 * base_seq is ignored, and appends continue after the last valid record.
 * Returns 0 with *out set (the caller owns it: wal_close), -EBADMSG if the
 * existing log is corrupt (run wal_replay with truncate_on_corruption to
 * repair), -ENOMEM, or another -errno. */
int wal_open(io_ops *io, const char *path, uint64_t base_seq, wal **out);

/* Flush and sync what is pending (unless the writer has failed), then close
 * the file and free w.  Returns 0 or the error that made the writer fail /
 * that the final flush, sync or close hit.  w is freed in every case.
 * NULL is a no-op returning 0. */
int wal_close(wal *w);

/* Append a record to the in-memory buffer; nothing reaches the file until
 * wal_flush.  The record's seq is wal_last_seq()+1; *seq_out gets it if
 * seq_out is not NULL.  The payload is copied.
 * Returns 0; -EINVAL for type 0 or len > WAL_PAYLOAD_MAX; -ENOMEM; or the
 * writer's sticky error if it has failed. */
int wal_append(wal *w, uint8_t type, const void *payload, uint32_t len, uint64_t *seq_out);

/* Write the buffered records to the file (looping over short writes) and
 * empty the buffer.  Not durable until wal_sync.  Returns 0 or -errno; on
 * failure the writer is failed (sticky). */
int wal_flush(wal *w);

/* fsync the file: everything flushed so far becomes durable and
 * wal_durable_seq() advances.  Returns 0 or -errno; on failure the writer
 * is failed (sticky): after a failed fsync the kernel may have dropped the
 * dirty pages, so retrying could falsely succeed. */
int wal_sync(wal *w);

/* wal_flush then wal_sync. */
int wal_commit(wal *w);

uint64_t wal_last_seq(const wal *w);     /* last appended (base_seq if none) */
uint64_t wal_durable_seq(const wal *w);  /* last synced */
uint64_t wal_base_seq(const wal *w);
uint64_t wal_size(const wal *w);         /* file bytes written (flushed) */
size_t wal_pending(const wal *w);        /* bytes appended, not yet flushed */
int wal_error(const wal *w);             /* 0, or the sticky -errno */
uint64_t wal_flushed_seq(const wal *w);  /* last written to the file */
/* The file descriptor, for an fsync run by another thread while this one
 * keeps appending (appendfsync everysec): fsync on a descriptor is safe
 * beside writes to it.  The caller must not close it, and must not
 * wal_close() while such an fsync runs. */
int wal_fd(const wal *w);

#endif
