/* snapfile.h -- the snapshot file: a checksummed container of image sections.
 *
 * A snapshot holds the sections that the structures wrote through an
 * img_sink (image.h), each with its own CRC-32C, a table of contents, and a
 * header naming the write-ahead-log seq it covers.  The byte layout is
 * specified in the header comment of src/store/snapfile.c; in short (little-endian):
 *
 *   page 0 (4096 bytes): "ENGRAMSN", version, flags, seq, created_ms,
 *       file_size, toc_offset, nsections, toc_crc, header_crc; rest zero
 *   sections, in the order written: page-aligned ones at a multiple of
 *       4096, the others at a multiple of 8; gaps are zero
 *   table of contents (the last bytes): 32 bytes per section
 *       {kind, flags, offset, length, crc}
 *
 * Writing is atomic: the writer fills a temporary file, writes the header
 * last, fsyncs, renames it over the final name and fsyncs the directory.
 * Whatever fails or crashes, the final name holds either the previous
 * complete snapshot or the new complete one.
 *
 * Reading maps the file (private, copy-on-write) and verifies every byte
 * before handing anything out: the header CRC, the sizes, the TOC CRC,
 * every section's bounds and CRC, and that all padding is zero.  So any
 * damage, including any single flipped bit anywhere in the file, is
 * refused with -EBADMSG and the offset of the damage.
 *
 * Mapping lifetime (the rule snapfile.c enforces):
 *  - snap_open gives the caller a handle.  Sections handed out through
 *    snap_source are *outstanding*, byte for byte, until the loader calls
 *    the source's release for them.  A loader must release every byte it
 *    was given exactly once: right after copying (kv_load does this), or
 *    later when it stops borrowing.  Over-releasing aborts (assertion).
 *  - snap_close drops the handle.  The mapping is unmapped when the handle
 *    is closed and nothing is outstanding, whichever happens last; the
 *    release that brings the count to zero unmaps it.  A loader that never
 *    releases keeps the mapping (and the file's inode) until process exit:
 *    a leak, never a dangling pointer.
 *  - Released ranges are given back at once (io discard: MADV_DONTNEED on
 *    the whole pages inside the range), even while other ranges stay.
 *
 * Errors: 0 or -errno.  -EBADMSG = the file is damaged (see snap_error);
 * -ENOTSUP = a format version or flag this build does not know; -EINVAL =
 * misuse (writer calls out of order).
 *
 * Threads: a writer is used by one thread.  A snap's accessors and
 * snap_source by one thread at a time; the release callbacks may run on
 * any thread, concurrently (counters are atomic), provided the io_ops
 * given to snap_open may be used from those threads (io_posix may; an
 * io_faulty may not). */
#ifndef ENGRAM_SNAPFILE_H
#define ENGRAM_SNAPFILE_H

#include <stddef.h>
#include <stdint.h>

#include "engram/image.h"
#include "engram/io.h"

#define SNAP_VERSION     1u
#define SNAP_HEADER_SIZE 4096u      /* the header page */
#define SNAP_TOC_ENTRY   32u        /* bytes per table-of-contents entry */

/* ---- writer ------------------------------------------------------------- */

typedef struct snap_writer snap_writer;

/* Create (or truncate) the temporary file tmp_path and start a snapshot
 * covering the log up to seq, stamped created_ms (wall clock, caller's).
 * tmp_path must be in the same directory (filesystem) as the final path
 * given to snap_writer_commit, and private to this writer (e.g.
 * "dir/temp-<pid>.snap").  io must outlive the writer.
 * Returns 0 with *out set (finish with snap_writer_commit or
 * snap_writer_abort), -ENOMEM, or the open error (*out is then NULL). */
int snap_writer_open(io_ops *io, const char *tmp_path, uint64_t seq, int64_t created_ms,
                     snap_writer **out);

/* The sink the structures write their sections through; valid until
 * commit or abort.  begin: -EINVAL if a section is open or kind is 0;
 * write/end: -EINVAL outside a section.  Data is buffered (1 MiB) and
 * written through io in large chunks; writes of 1 MiB or more go straight
 * to the file.  Any I/O error makes the writer failed: that and every later
 * call return the same -errno. */
img_sink *snap_writer_sink(snap_writer *w);

/* Bytes the file holds so far (header page included, TOC not yet). */
uint64_t snap_writer_size(const snap_writer *w);

/* Finish: pad, write the TOC and then the header, fsync the file, rename
 * it to final_path, fsync final_path's directory.  w is freed in every
 * case.  Returns 0; the writer's sticky error; -EINVAL if a section is
 * still open; or the error of the step that failed.  On any failure before
 * the rename the temporary file is unlinked and final_path is untouched.
 * If only the directory fsync fails, final_path already holds the new
 * complete snapshot but its name may not be durable: the error is
 * returned all the same. */
int snap_writer_commit(snap_writer *w, const char *final_path);

/* Give up: close and unlink the temporary file, free w.  NULL is a no-op. */
void snap_writer_abort(snap_writer *w);

/* ---- reader --------------------------------------------------------------- */

typedef struct snap snap;

/* What snap_open found wrong.  msg names the file, the byte offset and the
 * fault, e.g. "dir/engram.snap: section 3 (kind 0x111) at offset 8192:
 * checksum mismatch".  offset: where the damage is (for a short file, its
 * size); 0 when the failure is not about the file's contents. */
typedef struct snap_error {
    uint64_t offset;
    char msg[512];
} snap_error;

/* Open, map and verify the snapshot at path.  io must outlive the mapping
 * (see the lifetime rule above).  e may be NULL; on failure it is filled.
 * Returns 0 with *out set; -ENOENT if there is no file; -EBADMSG if it is
 * damaged (any byte); -ENOTSUP for an unknown version or flags; -ENOMEM;
 * or another -errno from the seam (open, map). */
int snap_open(io_ops *io, const char *path, snap **out, snap_error *e);

/* Drop the caller's handle; the mapping goes when nothing is outstanding.
 * After this call s must not be used (released ranges still may be, until
 * released).  NULL is a no-op. */
void snap_close(snap *s);

uint64_t snap_seq(const snap *s);
int64_t snap_created_ms(const snap *s);
size_t snap_nsections(const snap *s);
uint64_t snap_file_size(const snap *s);

/* Section i (< snap_nsections) with data pointing into the mapping (not
 * counted as outstanding: for inspection while the handle is open; to keep
 * pointers past snap_close, go through snap_source).  Valid until
 * snap_close. */
const img_section *snap_section(const snap *s, size_t i);

/* Index of the first section at or after index from whose kind is kind,
 * or snap_nsections(s) if there is none. */
size_t snap_find(const snap *s, uint32_t kind, size_t from);

/* Fill *out with sections first .. first+n-1, release callback included,
 * and count their bytes as outstanding (a section handed out twice must be
 * released twice).  out->sec stays valid until snap_close and, after it,
 * while any byte of the snapshot is outstanding (a loader should copy the
 * img_sections it keeps); each data pointer until its bytes are released.
 * Returns 0, or -EINVAL if the run is out of range (nothing counted). */
int snap_source(snap *s, size_t first, size_t n, img_source *out);

#endif
