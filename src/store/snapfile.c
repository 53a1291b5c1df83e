/* snapfile.c -- the snapshot file: writer (an img_sink) and mapped reader.
 *
 * This comment is the format's specification.
 *
 * FILE LAYOUT
 *
 * All integers are little-endian, written byte by byte (no struct I/O).
 *
 *   Header page (offset 0, 4096 bytes)
 *     offset  size  field
 *          0     8  magic "ENGRAMSN" (ASCII, no terminator)
 *          8     4  format version, currently 1
 *         12     4  flags, 0 (a reader refuses flags it does not know)
 *         16     8  seq: the last write-ahead-log seq the snapshot covers
 *         24     8  created_ms: wall-clock ms (signed), the writer's stamp
 *         32     8  file_size: the file's exact size in bytes
 *         40     8  toc_offset: where the table of contents starts
 *         48     4  nsections
 *         52     4  toc_crc: CRC-32C of the nsections * 32 TOC bytes
 *         56     4  header_crc: CRC-32C of bytes 0..55
 *         60  4036  zero
 *
 *   Sections (from offset 4096), in the order they were written, each at
 *   the first offset after the previous one that is a multiple of 4096
 *   (page_align) or of 8 (the others).  Gaps are zero bytes.  A section
 *   is just its bytes; an empty one occupies no bytes.
 *
 *   Table of contents (the last nsections * 32 bytes, at toc_offset: the
 *   first multiple of 8 after the last section, 4096 if there is none),
 *   one entry per section, in file order:
 *     offset  size  field
 *          0     4  kind (non-zero; image.h lists the ranges)
 *          4     4  flags: bit 0 = page_aligned; other bits zero
 *          8     8  offset of the section's first byte
 *         16     8  length in bytes
 *         24     4  crc: CRC-32C of the section's bytes (0 if empty)
 *         28     4  zero
 *
 * So file_size = toc_offset + 32 * nsections.  A page_aligned section is
 * at a multiple of 4096 in the file, so in a mapping (page-aligned) it is
 * 4096- and 64-byte aligned in memory.
 *
 * WHAT IS CHECKED (snap_open), in this order; the first failure wins:
 *   1. the file holds at least the header page;
 *   2. magic, then header_crc (offset 0);  3. version and flags (-ENOTSUP);
 *   4. bytes 60..4095 are zero;  5. file_size equals the real size;
 *   6. 4096 <= toc_offset, toc_offset % 8 == 0, and the TOC fills exactly
 *      the rest of the file;  7. toc_crc;
 *   8. per entry: kind != 0, known flags, zero reserved word, offset
 *      aligned as its flag says, not before the previous section's end,
 *      and offset + length <= toc_offset;  the gap before it is zero; its
 *      crc matches;  9. the gap between the last section and the TOC is
 *      zero.
 * Every byte of the file is thereby covered by a CRC or a must-be-zero
 * rule, so any single flipped bit is refused (-EBADMSG), and the error
 * names the offset of the damaged region.  A valid header with another
 * version or non-zero flags is -ENOTSUP (a newer writer), never -EBADMSG.
 *
 * WRITING AND ATOMICITY
 *
 * The writer fills a temporary file: sections from offset 4096 through a
 * 1 MiB buffer (larger writes bypass it), each section's CRC computed as
 * its bytes pass; then the TOC; then the header page, last, at offset 0;
 * then one fsync, the rename over the final name, and an fsync of the
 * directory.  A crash before the rename leaves the final name as it was
 * (only a stale temporary file, which the owner of the directory removes);
 * after it, the final name is the new complete file, because everything
 * was durable before the rename.  Any I/O error makes the writer failed
 * (sticky), and commit then unlinks the temporary file.
 *
 * MAPPING LIFETIME (see snapfile.h)
 *
 * snap_open maps the whole file MAP_PRIVATE, PROT_READ|PROT_WRITE (via the
 * io seam) and closes the descriptor.  s->live counts one for the caller's
 * handle plus every byte handed out by snap_source and not yet released;
 * whoever brings it to zero (snap_close or the last release) unmaps and
 * frees.  Per-section counters catch a release of bytes never handed out.
 * A release gives back the whole pages inside its range at once
 * (io->discard, i.e. MADV_DONTNEED): those pages belong to no other range,
 * since sections never overlap.
 *
 * Threads: a writer is one thread's.  The release callback may run on any
 * thread (atomics); everything else on one thread at a time. */
#include "engram/snapfile.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engram/check.h"
#include "engram/crc32c.h"
#include "engram/le.h"

static const char snap_magic[8] = { 'E', 'N', 'G', 'R', 'A', 'M', 'S', 'N' };

#define SNAP_FIELDS      60u            /* header bytes before the zero fill */
#define SNAP_PACK_ALIGN  8u
#define SNAP_SEC_PAGE    1u             /* TOC flag: page_aligned */
#define SNAP_WBUF        (1u << 20)     /* writer buffer */

/* ---- little-endian codec ----------------------------------------------- */

typedef struct toc_entry {
    uint32_t kind, flags;
    uint64_t offset, length;
    uint32_t crc;
} toc_entry;

static void toc_encode(uint8_t e[SNAP_TOC_ENTRY], const toc_entry *t)
{
    le_put32(e, t->kind);
    le_put32(e + 4, t->flags);
    le_put64(e + 8, t->offset);
    le_put64(e + 16, t->length);
    le_put32(e + 24, t->crc);
    le_put32(e + 28, 0);
}

/* ---- writer ------------------------------------------------------------- */

struct snap_writer {
    img_sink sink;              /* first: the sink callbacks cast back */
    io_ops *io;
    int fd;
    int err;                    /* sticky: first I/O failure */
    int in_section;             /* toc[ntoc-1] is open */
    char *tmp_path;
    uint64_t seq;
    int64_t created_ms;
    uint64_t pos;               /* file offset of the next byte, buffer included */
    uint8_t *buf;               /* the blen bytes just before pos */
    size_t blen;
    toc_entry *toc;
    size_t ntoc, cap;
};

static const uint8_t zeros[IMG_PAGE];

static snap_writer *writer_of(img_sink *s) { return (snap_writer *)s; }

static int w_flush(snap_writer *w)
{
    if (w->err) return w->err;
    if (w->blen == 0) return 0;
    int rc = io_write_all(w->io, w->fd, w->buf, w->blen, w->pos - w->blen);
    if (rc < 0) return w->err = rc;
    w->blen = 0;
    return 0;
}

/* Append n bytes at pos: through the buffer, or straight to the file when
 * they would fill it anyway. */
static int w_put(snap_writer *w, const void *p, size_t n)
{
    if (w->err) return w->err;
    if (w->blen + n > SNAP_WBUF) {
        int rc = w_flush(w);
        if (rc < 0) return rc;
    }
    if (n >= SNAP_WBUF) {
        int rc = io_write_all(w->io, w->fd, p, n, w->pos);
        if (rc < 0) return w->err = rc;
    } else if (n > 0) {
        memcpy(w->buf + w->blen, p, n);
        w->blen += n;
    }
    w->pos += n;
    return 0;
}

static int w_pad(snap_writer *w, uint64_t align)
{
    size_t n = (size_t)((align - w->pos % align) % align);
    return w_put(w, zeros, n);          /* n < align <= sizeof zeros */
}

static int sink_begin(img_sink *s, uint32_t kind, int page_align)
{
    snap_writer *w = writer_of(s);
    if (w->err) return w->err;
    if (w->in_section || kind == 0) return -EINVAL;
    if (w->ntoc == UINT32_MAX) return -EOVERFLOW;
    if (w->ntoc == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        toc_entry *t = realloc(w->toc, cap * sizeof *t);
        if (!t) return -ENOMEM;
        w->toc = t;
        w->cap = cap;
    }
    int rc = w_pad(w, page_align ? IMG_PAGE : SNAP_PACK_ALIGN);
    if (rc < 0) return rc;
    w->toc[w->ntoc++] = (toc_entry){ kind, page_align ? SNAP_SEC_PAGE : 0, w->pos, 0, 0 };
    w->in_section = 1;
    return 0;
}

static int sink_write(img_sink *s, const void *p, size_t n)
{
    snap_writer *w = writer_of(s);
    if (w->err) return w->err;
    if (!w->in_section) return -EINVAL;
    toc_entry *t = &w->toc[w->ntoc - 1];
    int rc = w_put(w, p, n);
    if (rc < 0) return rc;
    t->crc = crc32c(t->crc, p, n);
    t->length += n;
    return 0;
}

static int sink_end(img_sink *s)
{
    snap_writer *w = writer_of(s);
    if (w->err) return w->err;
    if (!w->in_section) return -EINVAL;
    w->in_section = 0;
    return 0;
}

int snap_writer_open(io_ops *io, const char *tmp_path, uint64_t seq, int64_t created_ms,
                     snap_writer **out)
{
    snap_writer *w = calloc(1, sizeof *w);
    *out = NULL;
    if (!w || !(w->buf = malloc(SNAP_WBUF)) || !(w->tmp_path = strdup(tmp_path))) {
        if (w) free(w->buf);
        free(w);
        return -ENOMEM;
    }
    int rc = io->open(io, tmp_path, O_RDWR | O_CREAT | O_TRUNC, 0644, &w->fd);
    if (rc < 0) {
        free(w->tmp_path);
        free(w->buf);
        free(w);
        return rc;
    }
    w->sink = (img_sink){ sink_begin, sink_write, sink_end };
    w->io = io;
    w->seq = seq;
    w->created_ms = created_ms;
    w->pos = SNAP_HEADER_SIZE;          /* the header page is written last */
    *out = w;
    return 0;
}

img_sink *snap_writer_sink(snap_writer *w) { return &w->sink; }
uint64_t snap_writer_size(const snap_writer *w) { return w->pos; }

static void writer_free(snap_writer *w, int unlink_tmp)
{
    if (w->fd >= 0) w->io->close(w->io, w->fd);
    if (unlink_tmp) w->io->unlink(w->io, w->tmp_path);
    free(w->toc);
    free(w->buf);
    free(w->tmp_path);
    free(w);
}

void snap_writer_abort(snap_writer *w)
{
    if (w) writer_free(w, 1);
}

/* Pad, then the TOC; returns its CRC through *crc. */
static int w_write_toc(snap_writer *w, uint64_t *toc_offset, uint32_t *crc)
{
    int rc = w_pad(w, SNAP_PACK_ALIGN);
    if (rc < 0) return rc;
    *toc_offset = w->pos;
    *crc = 0;
    for (size_t i = 0; i < w->ntoc; i++) {
        uint8_t e[SNAP_TOC_ENTRY];
        toc_encode(e, &w->toc[i]);
        *crc = crc32c(*crc, e, sizeof e);
        if ((rc = w_put(w, e, sizeof e)) < 0) return rc;
    }
    return w_flush(w);
}

static int w_write_header(snap_writer *w, uint64_t toc_offset, uint32_t toc_crc)
{
    uint8_t *h = w->buf;                /* flushed: free to reuse */
    memset(h, 0, SNAP_HEADER_SIZE);
    memcpy(h, snap_magic, 8);
    le_put32(h + 8, SNAP_VERSION);
    le_put32(h + 12, 0);
    le_put64(h + 16, w->seq);
    le_put64(h + 24, (uint64_t)w->created_ms);
    le_put64(h + 32, w->pos);
    le_put64(h + 40, toc_offset);
    le_put32(h + 48, (uint32_t)w->ntoc);
    le_put32(h + 52, toc_crc);
    le_put32(h + 56, crc32c(0, h, 56));
    int rc = io_write_all(w->io, w->fd, h, SNAP_HEADER_SIZE, 0);
    return rc < 0 ? (w->err = rc) : 0;
}

int snap_writer_commit(snap_writer *w, const char *final_path)
{
    uint64_t toc_offset;
    uint32_t toc_crc;
    int rc = w->err ? w->err : w->in_section ? -EINVAL : 0;
    if (rc == 0) rc = w_write_toc(w, &toc_offset, &toc_crc);
    if (rc == 0) rc = w_write_header(w, toc_offset, toc_crc);
    /* Everything durable before the name points at it: after the rename a
     * crash must find the whole new file or, before it, the old one. */
    if (rc == 0) rc = w->io->fsync(w->io, w->fd);
    if (rc == 0) {
        rc = w->io->close(w->io, w->fd);
        w->fd = -1;
    }
    if (rc == 0) rc = w->io->rename(w->io, w->tmp_path, final_path);
    if (rc < 0) {
        writer_free(w, 1);
        return rc;
    }
    rc = io_fsync_parent(w->io, final_path);
    writer_free(w, 0);
    return rc;
}

/* ---- reader --------------------------------------------------------------- */

struct snap {
    io_ops *io;
    uint8_t *map;
    uint64_t size;
    uint64_t seq;
    int64_t created_ms;
    size_t n;
    img_section *sec;
    _Atomic uint64_t *out;      /* per section: bytes handed out, not released */
    _Atomic uint64_t live;      /* 1 for the handle + outstanding bytes */
};

/* Fill e (if any) with "path: <fmt>" and offset; returns rc. */
static int fail(snap_error *e, int rc, const char *path, uint64_t off, const char *fmt, ...)
{
    if (!e) return rc;
    va_list ap;
    int n = snprintf(e->msg, sizeof e->msg, "%s: ", path);
    if (n < 0 || (size_t)n >= sizeof e->msg) n = 0;
    va_start(ap, fmt);
    vsnprintf(e->msg + n, sizeof e->msg - (size_t)n, fmt, ap);
    va_end(ap);
    e->offset = off;
    return rc;
}

/* Offset of the first non-zero byte in [from, to), or to. */
static uint64_t first_nonzero(const uint8_t *m, uint64_t from, uint64_t to)
{
    while (from < to && m[from] == 0) from++;
    return from;
}

static void snap_free(snap *s)
{
    if (s->map) s->io->unmap(s->io, s->map, s->size);
    free(s->sec);
    free((void *)s->out);
    free(s);
}

/* Checks 2-7 of the list at the top: the header and the TOC as a whole. */
static int verify_header(snap *s, const char *path, uint64_t *toc_off, snap_error *e)
{
    const uint8_t *m = s->map;
    if (memcmp(m, snap_magic, 8) != 0)
        return fail(e, -EBADMSG, path, 0, "offset 0: bad magic (not an engram snapshot)");
    if (crc32c(0, m, 56) != le_get32(m + 56))
        return fail(e, -EBADMSG, path, 0, "header at offset 0: checksum mismatch");
    if (le_get32(m + 8) != SNAP_VERSION)
        return fail(e, -ENOTSUP, path, 8, "offset 8: unsupported snapshot version %" PRIu32
                    " (this build reads %u)", le_get32(m + 8), SNAP_VERSION);
    if (le_get32(m + 12) != 0)
        return fail(e, -ENOTSUP, path, 12, "offset 12: unsupported header flags 0x%" PRIx32,
                    le_get32(m + 12));
    uint64_t nz = first_nonzero(m, SNAP_FIELDS, SNAP_HEADER_SIZE);
    if (nz < SNAP_HEADER_SIZE)
        return fail(e, -EBADMSG, path, nz, "offset %" PRIu64 ": non-zero byte in the header's reserved area", nz);
    uint64_t claimed = le_get64(m + 32), toc = le_get64(m + 40);
    uint64_t nsec = le_get32(m + 48);
    if (claimed != s->size)
        return fail(e, -EBADMSG, path, claimed < s->size ? claimed : s->size,
                    "offset %" PRIu64 ": file is %" PRIu64 " bytes but its header says %" PRIu64
                    " (truncated or extended)", claimed < s->size ? claimed : s->size, s->size, claimed);
    if (toc < SNAP_HEADER_SIZE || toc % SNAP_PACK_ALIGN != 0 || toc > s->size ||
        s->size - toc != nsec * SNAP_TOC_ENTRY)
        return fail(e, -EBADMSG, path, 40, "offset 40: table of contents (offset %" PRIu64 ", %"
                    PRIu64 " sections) does not fit the file", toc, nsec);
    if (crc32c(0, m + toc, (size_t)(s->size - toc)) != le_get32(m + 52))
        return fail(e, -EBADMSG, path, toc, "table of contents at offset %" PRIu64 ": checksum mismatch", toc);
    s->seq = le_get64(m + 16);
    s->created_ms = (int64_t)le_get64(m + 24);
    s->n = (size_t)nsec;
    *toc_off = toc;
    return 0;
}

/* Check 8 for entry i (its gap and CRC included), then fill s->sec[i]. */
static int verify_section(snap *s, const char *path, uint64_t toc, size_t i, uint64_t *end,
                          snap_error *e)
{
    const uint8_t *t = s->map + toc + (uint64_t)i * SNAP_TOC_ENTRY;
    uint64_t at = toc + (uint64_t)i * SNAP_TOC_ENTRY;
    uint32_t kind = le_get32(t), flags = le_get32(t + 4);
    uint64_t off = le_get64(t + 8), len = le_get64(t + 16);
    uint64_t align = flags & SNAP_SEC_PAGE ? IMG_PAGE : SNAP_PACK_ALIGN;
    if (kind == 0 || (flags & ~SNAP_SEC_PAGE) != 0 || le_get32(t + 28) != 0 || off % align != 0 ||
        off < *end || off > toc || len > toc - off)
        return fail(e, -EBADMSG, path, at, "table of contents entry %zu at offset %" PRIu64
                    ": bad section (kind 0x%" PRIx32 ", offset %" PRIu64 ", length %" PRIu64 ")",
                    i, at, kind, off, len);
    uint64_t nz = first_nonzero(s->map, *end, off);
    if (nz < off)
        return fail(e, -EBADMSG, path, nz, "offset %" PRIu64 ": non-zero padding before section %zu", nz, i);
    if (crc32c(0, s->map + off, (size_t)len) != le_get32(t + 24))
        return fail(e, -EBADMSG, path, off, "section %zu (kind 0x%" PRIx32 ") at offset %" PRIu64
                    ": checksum mismatch", i, kind, off);
    s->sec[i] = (img_section){ kind, (flags & SNAP_SEC_PAGE) != 0, s->map + off, (size_t)len };
    *end = off + len;
    return 0;
}

static int verify(snap *s, const char *path, snap_error *e)
{
    uint64_t toc = 0, end = SNAP_HEADER_SIZE;
    int rc = verify_header(s, path, &toc, e);
    if (rc < 0) return rc;
    s->sec = calloc(s->n ? s->n : 1, sizeof *s->sec);
    s->out = calloc(s->n ? s->n : 1, sizeof *s->out);
    if (!s->sec || !s->out) return fail(e, -ENOMEM, path, 0, "out of memory");
    for (size_t i = 0; i < s->n; i++)
        if ((rc = verify_section(s, path, toc, i, &end, e)) < 0) return rc;
    uint64_t nz = first_nonzero(s->map, end, toc);
    if (nz < toc)
        return fail(e, -EBADMSG, path, nz, "offset %" PRIu64 ": non-zero padding before the table of contents", nz);
    return 0;
}

int snap_open(io_ops *io, const char *path, snap **out, snap_error *e)
{
    int fd, rc;
    *out = NULL;
    if (e) { e->offset = 0; e->msg[0] = '\0'; }
    if ((rc = io->open(io, path, O_RDONLY, 0, &fd)) < 0)
        return fail(e, rc, path, 0, "cannot open: %s", strerror(-rc));
    snap *s = calloc(1, sizeof *s);
    if (!s) {
        io->close(io, fd);
        return fail(e, -ENOMEM, path, 0, "out of memory");
    }
    s->io = io;
    if ((rc = io->file_size(io, fd, &s->size)) < 0) {
        fail(e, rc, path, 0, "cannot stat: %s", strerror(-rc));
    } else if (s->size < SNAP_HEADER_SIZE) {
        rc = fail(e, -EBADMSG, path, s->size, "offset %" PRIu64 ": file ends inside the %u-byte header",
                  s->size, SNAP_HEADER_SIZE);
    } else {
        void *m = NULL;
        if ((rc = io->map(io, fd, s->size, &m)) < 0)
            fail(e, rc, path, 0, "cannot map %" PRIu64 " bytes: %s", s->size, strerror(-rc));
        s->map = rc == 0 ? m : NULL;
    }
    io->close(io, fd);                  /* the mapping does not need it */
    if (rc == 0) rc = verify(s, path, e);
    if (rc < 0) {
        snap_free(s);
        return rc;
    }
    atomic_init(&s->live, 1);
    *out = s;
    return 0;
}

/* Drop n units of s->live; the last one out unmaps. */
static void snap_unref(snap *s, uint64_t n)
{
    uint64_t prev = atomic_fetch_sub(&s->live, n);
    CHECK(prev >= n);
    if (prev == n) snap_free(s);
}

void snap_close(snap *s)
{
    if (s) snap_unref(s, 1);
}

uint64_t snap_seq(const snap *s) { return s->seq; }
int64_t snap_created_ms(const snap *s) { return s->created_ms; }
size_t snap_nsections(const snap *s) { return s->n; }
uint64_t snap_file_size(const snap *s) { return s->size; }

const img_section *snap_section(const snap *s, size_t i)
{
    CHECK(i < s->n);
    return &s->sec[i];
}

size_t snap_find(const snap *s, uint32_t kind, size_t from)
{
    for (size_t i = from; i < s->n; i++)
        if (s->sec[i].kind == kind) return i;
    return s->n;
}

/* The release callback of every snap_source.  Finds the section holding
 * [p, p+len): the last one starting at or before p (an empty section may
 * share its start with the next one; the later, non-empty one holds p). */
static void snap_release(void *ud, void *p, size_t len)
{
    snap *s = ud;
    const uint8_t *b = p;
    if (len == 0) return;
    size_t lo = 0, hi = s->n;           /* first section starting after b */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if ((const uint8_t *)s->sec[mid].data <= b) lo = mid + 1;
        else hi = mid;
    }
    CHECK(lo > 0);
    const img_section *sec = &s->sec[lo - 1];
    CHECK(len <= sec->len && (size_t)(b - (const uint8_t *)sec->data) <= sec->len - len);
    uint64_t prev = atomic_fetch_sub(&s->out[lo - 1], (uint64_t)len);
    CHECK(prev >= len);           /* released more than was handed out */
    s->io->discard(s->io, p, len);      /* advisory: a failure only costs memory */
    snap_unref(s, len);
}

int snap_source(snap *s, size_t first, size_t n, img_source *out)
{
    if (first > s->n || n > s->n - first) return -EINVAL;
    uint64_t total = 0;
    for (size_t i = first; i < first + n; i++) {
        atomic_fetch_add(&s->out[i], (uint64_t)s->sec[i].len);
        total += s->sec[i].len;
    }
    atomic_fetch_add(&s->live, total);
    *out = (img_source){ s->sec + first, n, snap_release, s };
    return 0;
}
