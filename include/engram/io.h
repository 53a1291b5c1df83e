/* io.h -- the file-I/O seam: every system call the durability code makes.
 *
 * The write-ahead log (wal.c) and snapshots (snapfile.c) never call open(),
 * pwrite(), fsync() or mmap() directly; they call through an io_ops table.
 * The real table is io_posix(); tests wrap it in io_faulty_new() to inject
 * short writes, EIO/ENOSPC, fsync failures, failed mappings and a "crash at
 * byte N" (power loss), the way SQLite's os_unix.c sits behind sqlite3_vfs.
 *
 * Conventions
 *  - Every operation returns 0 (or a byte count) on success and -errno on
 *    failure; nothing sets or relies on the global errno.
 *  - The raw operations are raw: pwrite may write fewer bytes than asked and
 *    pread may return fewer than asked before EOF.  io_write_all() and
 *    io_read_full() loop.  EINTR is retried inside io_posix, never surfaced.
 *  - There is no file position: reads and writes take explicit offsets, so a
 *    wrapper needs no per-fd state.
 *  - Every operation receives the table itself first, so a wrapper finds its
 *    own state by embedding io_ops as its first member.
 *
 * Thread safety: io_posix() is stateless and may be used from any thread.
 * An io_faulty is not synchronised: one thread at a time. */
#ifndef ENGRAM_IO_H
#define ENGRAM_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct io_ops io_ops;
struct io_ops {
    const char *name;
    /* open(2) with the POSIX flags given (O_CLOEXEC is always added) and
     * mode for O_CREAT.  On success *fd_out holds the descriptor. */
    int (*open)(io_ops *io, const char *path, int flags, int mode, int *fd_out);
    int (*close)(io_ops *io, int fd);
    /* Returns bytes read (0 at EOF, possibly fewer than len) or -errno. */
    ssize_t (*pread)(io_ops *io, int fd, void *buf, size_t len, uint64_t off);
    /* Returns bytes written (possibly fewer than len) or -errno. */
    ssize_t (*pwrite)(io_ops *io, int fd, const void *buf, size_t len, uint64_t off);
    /* Make the file's data and size durable (F_FULLFSYNC where it exists). */
    int (*fsync)(io_ops *io, int fd);
    int (*ftruncate)(io_ops *io, int fd, uint64_t size);
    int (*file_size)(io_ops *io, int fd, uint64_t *size_out);
    int (*rename)(io_ops *io, const char *from, const char *to);
    int (*unlink)(io_ops *io, const char *path);
    /* Make a directory's entries durable (after create, rename, unlink):
     * open(dir, O_RDONLY) + fsync.  Filesystems that cannot fsync a
     * directory (EINVAL) count as success. */
    int (*fsync_dir)(io_ops *io, const char *dirpath);
    /* Map the first len bytes (> 0) of fd privately: readable and writable,
     * copy-on-write (writes never reach the file; MAP_PRIVATE).  *out gets
     * the address, aligned to the system page (so to IMG_PAGE and 64 too).
     * The mapping does not need fd to stay open.  -EINVAL for len 0,
     * -EOVERFLOW if len does not fit the address space.  Touching the
     * mapping beyond the file's current end raises SIGBUS: map only files
     * nobody truncates (snapshots are replaced by rename, never rewritten). */
    int (*map)(io_ops *io, int fd, uint64_t len, void **out);
    /* Remove a mapping made by map (p and len exactly as mapped). */
    int (*unmap)(io_ops *io, void *p, uint64_t len);
    /* Give back the pages lying wholly inside [p, p+len) of a mapping made
     * by map (madvise MADV_DONTNEED): their private copies are dropped and
     * the memory returns to the system.  Partial pages at either end are
     * left alone, so the range need not be page-aligned.  The caller must
     * not rely on those bytes afterwards (on Linux they read as the file's
     * bytes again).  Returns 0 or -errno. */
    int (*discard)(io_ops *io, void *p, uint64_t len);
};

/* The real implementation.  A static table: never freed. */
io_ops *io_posix(void);
/* io_posix with fsync and fsync_dir as no-ops: for tests that model power
 * loss with io_faulty instead of the disk, and would otherwise spend their
 * time in fsync.  Never for data that must survive. */
io_ops *io_posix_nosync(void);

/* Write all len bytes at off, looping over short writes.  Returns 0 or
 * -errno; a pwrite that makes no progress (returns 0) yields -EIO so a
 * broken device cannot spin us forever.  On failure some prefix of buf may
 * have been written. */
int io_write_all(io_ops *io, int fd, const void *buf, size_t len, uint64_t off);

/* Read up to len bytes at off, looping until len bytes or EOF.  Returns the
 * number of bytes read (< len only at EOF) or -errno. */
ssize_t io_read_full(io_ops *io, int fd, void *buf, size_t len, uint64_t off);

/* fsync_dir of the directory containing path ("." if it has no '/').
 * Returns 0, -ENAMETOOLONG, or the fsync_dir error. */
int io_fsync_parent(io_ops *io, const char *path);

/* ---- fault injection (for tests) ----------------------------------------
 *
 * An io_faulty forwards every call to `under` except where told otherwise.
 * Counters are 1-based and count calls made through this wrapper since the
 * fault was armed.  Faults:
 *  - fail_write(nth, err): the nth pwrite from now returns -err and writes
 *    nothing; later writes succeed again (the writer must stay failed by
 *    itself, not because the device keeps failing).
 *  - short_writes(max): every pwrite writes at most max bytes (0 = off).
 *  - fail_fsync(nth, err): the nth fsync from now returns -err.  Data
 *    already written stays in the file (as in the page cache after a
 *    failed fsync: it may or may not be on disk).
 *  - crash_at(n): power loss after n more bytes of pwrite data.  The write
 *    that crosses the limit persists only its first bytes up to it; from
 *    then on every mutating call (pwrite, ftruncate, rename, unlink, and
 *    O_TRUNC on open) is silently dropped yet reports success, and fsync
 *    succeeds (creating a file still works: it stays empty): the process
 *    does not know it is already dead.  Reads still pass through, so a test
 *    can reopen with the plain table and see what survived; map, unmap
 *    and discard pass through too.
 *  - fail_map(nth, err): the nth map from now returns -err.
 * The wrapper owns no file descriptors and no mappings. */
typedef struct io_faulty io_faulty;

/* Returns NULL only when out of memory.  `under` must outlive the wrapper. */
io_faulty *io_faulty_new(io_ops *under);
void io_faulty_free(io_faulty *f);          /* NULL is a no-op */
io_ops *io_faulty_ops(io_faulty *f);        /* valid until io_faulty_free */
void io_faulty_fail_write(io_faulty *f, unsigned nth, int err);
void io_faulty_short_writes(io_faulty *f, size_t max);
void io_faulty_fail_fsync(io_faulty *f, unsigned nth, int err);
void io_faulty_fail_map(io_faulty *f, unsigned nth, int err);
void io_faulty_crash_at(io_faulty *f, uint64_t nbytes);
void io_faulty_reset(io_faulty *f);         /* disarm everything, un-crash; keeps the byte counters */
int io_faulty_crashed(const io_faulty *f);
/* Bytes pwrite reported written through this wrapper (including dropped
 * ones after a crash) and bytes that really reached `under`. */
uint64_t io_faulty_bytes_requested(const io_faulty *f);
uint64_t io_faulty_bytes_persisted(const io_faulty *f);

#endif
