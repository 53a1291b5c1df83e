/* io.c -- the file-I/O seam: the POSIX table and the fault injector.
 *
 * io_posix is a thin, stateless layer over the system calls: it retries
 * EINTR, turns errno into a negative return, and hides the one platform
 * difference that matters for durability (macOS fsync() does not flush the
 * drive cache; F_FULLFSYNC does).  Only POSIX calls are used, so the file
 * builds on Linux and macOS alike; fdatasync is deliberately not used
 * (absent on macOS, and a WAL that grows needs its size made durable too).
 *
 * Mappings are private and writable (MAP_PRIVATE, PROT_READ|PROT_WRITE): a
 * loader may patch a section in place without the file ever changing, and
 * MADV_DONTNEED on such a mapping drops the private copies, which is how
 * borrowed snapshot memory is given back.
 *
 * io_faulty wraps another table to model failures; see io.h for the fault
 * semantics.  It holds counters only, no descriptors.
 *
 * Threads: io_posix from any thread; an io_faulty from one thread at a time. */
#include "engram/io.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- POSIX ------------------------------------------------------------- */

static int posix_open(io_ops *io, const char *path, int flags, int mode, int *fd_out)
{
    int fd;
    do fd = open(path, flags | O_CLOEXEC, (mode_t)mode);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) return -errno;
    *fd_out = fd;
    return 0;
}

static int posix_close(io_ops *io, int fd)
{
    /* Never retry close on EINTR: the descriptor is already gone on Linux
     * and a retry could close someone else's fd. */
    if (close(fd) < 0 && errno != EINTR) return -errno;
    return 0;
}

static ssize_t posix_pread(io_ops *io, int fd, void *buf, size_t len, uint64_t off)
{
    ssize_t n;
    if (off > (uint64_t)INT64_MAX) return -EOVERFLOW;
    do n = pread(fd, buf, len, (off_t)off);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

static ssize_t posix_pwrite(io_ops *io, int fd, const void *buf, size_t len, uint64_t off)
{
    ssize_t n;
    if (off > (uint64_t)INT64_MAX) return -EOVERFLOW;
    do n = pwrite(fd, buf, len, (off_t)off);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

static int posix_fsync(io_ops *io, int fd)
{
#ifdef F_FULLFSYNC
    /* macOS: plain fsync leaves data in the drive's cache.  Some
     * filesystems (network, FUSE) reject F_FULLFSYNC: fall back. */
    if (fcntl(fd, F_FULLFSYNC) == 0) return 0;
#endif
    int rc;
    do rc = fsync(fd);
    while (rc < 0 && errno == EINTR);
    return rc < 0 ? -errno : 0;
}

static int posix_ftruncate(io_ops *io, int fd, uint64_t size)
{
    int rc;
    if (size > (uint64_t)INT64_MAX) return -EOVERFLOW;
    do rc = ftruncate(fd, (off_t)size);
    while (rc < 0 && errno == EINTR);
    return rc < 0 ? -errno : 0;
}

static int posix_file_size(io_ops *io, int fd, uint64_t *size_out)
{
    struct stat st;
    if (fstat(fd, &st) < 0) return -errno;
    *size_out = (uint64_t)st.st_size;
    return 0;
}

static int posix_rename(io_ops *io, const char *from, const char *to)
{
    return rename(from, to) < 0 ? -errno : 0;
}

static int posix_unlink(io_ops *io, const char *path)
{
    return unlink(path) < 0 ? -errno : 0;
}

static int posix_fsync_dir(io_ops *io, const char *dirpath)
{
    int fd = -1, rc;
    rc = posix_open(io, dirpath, O_RDONLY, 0, &fd);
    if (rc < 0) return rc;
    do rc = fsync(fd);
    while (rc < 0 && errno == EINTR);
    rc = rc < 0 ? -errno : 0;
    close(fd);
    /* Some filesystems cannot sync a directory; their entries are then as
     * durable as they will ever be. */
    return rc == -EINVAL ? 0 : rc;
}

static int posix_map(io_ops *io, int fd, uint64_t len, void **out)
{
    if (len == 0) return -EINVAL;
    if (len > SIZE_MAX) return -EOVERFLOW;
    void *p = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) return -errno;
    *out = p;
    return 0;
}

static int posix_unmap(io_ops *io, void *p, uint64_t len)
{
    return munmap(p, (size_t)len) < 0 ? -errno : 0;
}

static int posix_discard(io_ops *io, void *p, uint64_t len)
{
    /* The system page, not IMG_PAGE: madvise wants its own alignment, and
     * on 16 KiB / 64 KiB page systems a 4 KiB-aligned range may hold no
     * whole page at all. */
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)p + page - 1) & ~(page - 1);
    uintptr_t hi = ((uintptr_t)p + (uintptr_t)len) & ~(page - 1);
    if (hi <= lo) return 0;
    return madvise((void *)lo, hi - lo, MADV_DONTNEED) < 0 ? -errno : 0;
}

static io_ops posix_table = {
    "posix",
    posix_open, posix_close, posix_pread, posix_pwrite, posix_fsync,
    posix_ftruncate, posix_file_size, posix_rename, posix_unlink, posix_fsync_dir,
    posix_map, posix_unmap, posix_discard,
};

io_ops *io_posix(void) { return &posix_table; }

static int nosync_fsync(io_ops *io, int fd) { return 0; }
static int nosync_fsync_dir(io_ops *io, const char *path) { return 0; }

static io_ops posix_nosync_table = {
    "posix-nosync",
    posix_open, posix_close, posix_pread, posix_pwrite, nosync_fsync,
    posix_ftruncate, posix_file_size, posix_rename, posix_unlink, nosync_fsync_dir,
    posix_map, posix_unmap, posix_discard,
};

io_ops *io_posix_nosync(void) { return &posix_nosync_table; }

/* ---- helpers ------------------------------------------------------------ */

int io_write_all(io_ops *io, int fd, const void *buf, size_t len, uint64_t off)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = io->pwrite(io, fd, p, len, off);
        if (n < 0) return (int)n;
        if (n == 0) return -EIO;
        p += n; len -= (size_t)n; off += (uint64_t)n;
    }
    return 0;
}

ssize_t io_read_full(io_ops *io, int fd, void *buf, size_t len, uint64_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = io->pread(io, fd, (char *)buf + got, len - got, off + got);
        if (n < 0) return n;
        if (n == 0) break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

int io_fsync_parent(io_ops *io, const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash) return io->fsync_dir(io, ".");
    size_t n = slash == path ? 1 : (size_t)(slash - path);   /* "/x" -> "/" */
    if (n >= sizeof dir) return -ENAMETOOLONG;
    memcpy(dir, path, n);
    dir[n] = '\0';
    return io->fsync_dir(io, dir);
}

/* ---- fault injection ---------------------------------------------------- */

struct io_faulty {
    io_ops ops;                 /* first: the callbacks cast io_ops* back */
    io_ops *under;
    unsigned write_nth;         /* 0 = not armed; counts down per pwrite */
    int write_err;
    unsigned fsync_nth;
    int fsync_err;
    unsigned map_nth;
    int map_err;
    size_t short_max;           /* 0 = writes are not shortened */
    int crash_armed;
    uint64_t crash_left;        /* bytes that may still persist */
    int crashed;
    uint64_t requested, persisted;
};

static io_faulty *faulty_of(io_ops *io) { return (io_faulty *)io; }

static int faulty_open(io_ops *io, const char *path, int flags, int mode, int *fd_out)
{
    io_faulty *f = faulty_of(io);
    /* Creating a name is not counted as a byte: a file created after the
     * crash exists but stays empty.  Truncating on open would destroy
     * bytes that survived the crash, so it is dropped. */
    if (f->crashed) flags &= ~O_TRUNC;
    return f->under->open(f->under, path, flags, mode, fd_out);
}

static int faulty_close(io_ops *io, int fd)
{
    return faulty_of(io)->under->close(faulty_of(io)->under, fd);
}

static ssize_t faulty_pread(io_ops *io, int fd, void *buf, size_t len, uint64_t off)
{
    return faulty_of(io)->under->pread(faulty_of(io)->under, fd, buf, len, off);
}

static ssize_t faulty_pwrite(io_ops *io, int fd, const void *buf, size_t len, uint64_t off)
{
    io_faulty *f = faulty_of(io);
    if (f->write_nth > 0 && --f->write_nth == 0) return -f->write_err;
    if (f->short_max > 0 && len > f->short_max) len = f->short_max;
    if (f->crashed) {           /* the machine is already off */
        f->requested += len;
        return (ssize_t)len;
    }
    size_t keep = len;
    if (f->crash_armed && keep > f->crash_left) keep = (size_t)f->crash_left;
    if (keep > 0) {
        ssize_t n = f->under->pwrite(f->under, fd, buf, keep, off);
        if (n < 0) return n;
        if ((size_t)n < keep) { /* a genuine short write below us */
            keep = len = (size_t)n;
        }
    }
    f->requested += len;
    f->persisted += keep;
    if (f->crash_armed) {
        f->crash_left -= keep;
        if (f->crash_left == 0) f->crashed = 1;
    }
    return (ssize_t)len;
}

static int faulty_fsync(io_ops *io, int fd)
{
    io_faulty *f = faulty_of(io);
    if (f->fsync_nth > 0 && --f->fsync_nth == 0) return -f->fsync_err;
    if (f->crashed) return 0;
    return f->under->fsync(f->under, fd);
}

static int faulty_ftruncate(io_ops *io, int fd, uint64_t size)
{
    io_faulty *f = faulty_of(io);
    return f->crashed ? 0 : f->under->ftruncate(f->under, fd, size);
}

static int faulty_file_size(io_ops *io, int fd, uint64_t *size_out)
{
    return faulty_of(io)->under->file_size(faulty_of(io)->under, fd, size_out);
}

static int faulty_rename(io_ops *io, const char *from, const char *to)
{
    io_faulty *f = faulty_of(io);
    return f->crashed ? 0 : f->under->rename(f->under, from, to);
}

static int faulty_unlink(io_ops *io, const char *path)
{
    io_faulty *f = faulty_of(io);
    return f->crashed ? 0 : f->under->unlink(f->under, path);
}

static int faulty_fsync_dir(io_ops *io, const char *dirpath)
{
    io_faulty *f = faulty_of(io);
    if (f->fsync_nth > 0 && --f->fsync_nth == 0) return -f->fsync_err;
    return f->crashed ? 0 : f->under->fsync_dir(f->under, dirpath);
}

static int faulty_map(io_ops *io, int fd, uint64_t len, void **out)
{
    io_faulty *f = faulty_of(io);
    if (f->map_nth > 0 && --f->map_nth == 0) return -f->map_err;
    return f->under->map(f->under, fd, len, out);
}

static int faulty_unmap(io_ops *io, void *p, uint64_t len)
{
    return faulty_of(io)->under->unmap(faulty_of(io)->under, p, len);
}

static int faulty_discard(io_ops *io, void *p, uint64_t len)
{
    return faulty_of(io)->under->discard(faulty_of(io)->under, p, len);
}

io_faulty *io_faulty_new(io_ops *under)
{
    io_faulty *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->ops = (io_ops){
        "faulty",
        faulty_open, faulty_close, faulty_pread, faulty_pwrite, faulty_fsync,
        faulty_ftruncate, faulty_file_size, faulty_rename, faulty_unlink, faulty_fsync_dir,
        faulty_map, faulty_unmap, faulty_discard,
    };
    f->under = under;
    return f;
}

void io_faulty_free(io_faulty *f) { free(f); }
io_ops *io_faulty_ops(io_faulty *f) { return &f->ops; }

void io_faulty_fail_write(io_faulty *f, unsigned nth, int err)
{
    f->write_nth = nth;
    f->write_err = err;
}

void io_faulty_short_writes(io_faulty *f, size_t max) { f->short_max = max; }

void io_faulty_fail_fsync(io_faulty *f, unsigned nth, int err)
{
    f->fsync_nth = nth;
    f->fsync_err = err;
}

void io_faulty_fail_map(io_faulty *f, unsigned nth, int err)
{
    f->map_nth = nth;
    f->map_err = err;
}

void io_faulty_crash_at(io_faulty *f, uint64_t nbytes)
{
    f->crash_armed = 1;
    f->crash_left = nbytes;
    f->crashed = nbytes == 0;
}

void io_faulty_reset(io_faulty *f)
{
    f->write_nth = f->fsync_nth = f->map_nth = 0;
    f->short_max = 0;
    f->crash_armed = f->crashed = 0;
    f->crash_left = 0;
}

int io_faulty_crashed(const io_faulty *f) { return f->crashed; }
uint64_t io_faulty_bytes_requested(const io_faulty *f) { return f->requested; }
uint64_t io_faulty_bytes_persisted(const io_faulty *f) { return f->persisted; }
