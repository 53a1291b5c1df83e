/* test_io.c -- the file-I/O seam: the POSIX table's calls and errors, the
 * write/read loops, private mappings (copy-on-write, discard), and every
 * fault the injector offers (failed Nth write, short writes, failed fsync,
 * failed map, crash at byte N).
 *
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
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "engram/io.h"

static char tmpdir[PATH_MAX];

/* A path inside the temp dir; two rotating buffers, so one call may pass
 * two paths (rename). */
static const char *tmp_path(const char *name)
{
    static char buf[2][PATH_MAX + 32];
    static int next;
    char *b = buf[next ^= 1];
    snprintf(b, sizeof buf[0], "%s/%s", tmpdir, name);
    return b;
}

static int setup(void **state)
{
    strcpy(tmpdir, "/tmp/engram-test-io-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    static const char *names[] = { "a", "b", "c", "d", "e" };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) unlink(tmp_path(names[i]));
    return rmdir(tmpdir);
}

static uint64_t size_of(io_ops *io, int fd)
{
    uint64_t n = 0;
    assert_int_equal(io->file_size(io, fd, &n), 0);
    return n;
}

/* ---- io_posix ------------------------------------------------------------ */

static void test_posix_calls(void **state)
{
    io_ops *io = io_posix();
    int fd = -1;
    char buf[16];
    assert_string_equal(io->name, "posix");
    assert_int_equal(io->open(io, tmp_path("missing/x"), O_RDONLY, 0, &fd), -ENOENT);
    assert_int_equal(io->open(io, tmp_path("a"), O_RDWR | O_CREAT | O_TRUNC, 0644, &fd), 0);
    assert_true(fd >= 0);
    assert_int_equal(io->pwrite(io, fd, "hello world", 11, 0), 11);
    assert_int_equal(io->pwrite(io, fd, "W", 1, 6), 1);
    assert_int_equal(size_of(io, fd), 11);
    assert_int_equal(io->pread(io, fd, buf, sizeof buf, 0), 11);
    assert_memory_equal(buf, "hello World", 11);
    assert_int_equal(io->pread(io, fd, buf, sizeof buf, 11), 0);       /* EOF */
    assert_int_equal(io->fsync(io, fd), 0);
    assert_int_equal(io->ftruncate(io, fd, 5), 0);
    assert_int_equal(size_of(io, fd), 5);
    assert_int_equal(io->close(io, fd), 0);
    assert_int_equal(io->pread(io, fd, buf, 1, 0), -EBADF);
    assert_int_equal(io->fsync(io, fd), -EBADF);

    assert_int_equal(io->rename(io, tmp_path("a"), tmp_path("b")), 0);
    assert_int_equal(io->rename(io, tmp_path("a"), tmp_path("b")), -ENOENT);
    assert_int_equal(io->fsync_dir(io, tmpdir), 0);
    assert_int_equal(io_fsync_parent(io, tmp_path("b")), 0);
    assert_int_equal(io_fsync_parent(io, "relative-name"), 0);     /* "." */
    assert_int_equal(io->fsync_dir(io, tmp_path("nope")), -ENOENT);
    assert_int_equal(io->unlink(io, tmp_path("b")), 0);
    assert_int_equal(io->unlink(io, tmp_path("b")), -ENOENT);
}

/* A table whose pwrite makes no progress: io_write_all must not spin. */
static ssize_t stuck_pwrite(io_ops *io, int fd, const void *buf, size_t len, uint64_t off)
{
    return 0;
}

static void test_write_all_and_read_full(void **state)
{
    io_ops *io = io_posix();
    io_faulty *f = io_faulty_new(io);
    io_ops *fio = io_faulty_ops(f);
    char big[10000], back[10000];
    int fd;
    for (size_t i = 0; i < sizeof big; i++) big[i] = (char)(i * 7 + 3);

    assert_int_equal(fio->open(fio, tmp_path("c"), O_RDWR | O_CREAT | O_TRUNC, 0644, &fd), 0);
    io_faulty_short_writes(f, 3);
    assert_int_equal(fio->pwrite(fio, fd, big, 10, 0), 3);        /* raw: short */
    assert_int_equal(io_write_all(fio, fd, big, sizeof big, 0), 0); /* loop: all */
    assert_int_equal(io_faulty_bytes_persisted(f), 3 + sizeof big);
    assert_int_equal(io_read_full(fio, fd, back, sizeof back, 0), (ssize_t)sizeof back);
    assert_memory_equal(back, big, sizeof big);
    assert_int_equal(io_read_full(fio, fd, back, sizeof back, 9000), 1000);  /* EOF */
    assert_int_equal(io_write_all(fio, fd, big, 0, 0), 0);

    io_ops stuck = *io;
    stuck.pwrite = stuck_pwrite;
    assert_int_equal(io_write_all(&stuck, fd, big, 5, 0), -EIO);
    assert_int_equal(fio->close(fio, fd), 0);
    io_faulty_free(f);
    io_faulty_free(NULL);
}

/* ---- io_faulty -------------------------------------------------------------- */

static void test_fail_nth_write(void **state)
{
    io_faulty *f = io_faulty_new(io_posix());
    io_ops *fio = io_faulty_ops(f);
    int fd;
    char buf[8];
    assert_int_equal(fio->open(fio, tmp_path("d"), O_RDWR | O_CREAT | O_TRUNC, 0644, &fd), 0);
    io_faulty_fail_write(f, 3, ENOSPC);
    assert_int_equal(fio->pwrite(fio, fd, "ab", 2, 0), 2);
    assert_int_equal(fio->pwrite(fio, fd, "cd", 2, 2), 2);
    assert_int_equal(fio->pwrite(fio, fd, "ef", 2, 4), -ENOSPC);  /* nothing written */
    assert_int_equal(size_of(fio, fd), 4);
    assert_int_equal(fio->pwrite(fio, fd, "gh", 2, 4), 2);        /* one-shot */

    /* Short writes then a failure: a prefix reaches the file, as when a
     * device fills up in the middle of a buffer. */
    io_faulty_short_writes(f, 3);
    io_faulty_fail_write(f, 3, EIO);
    assert_int_equal(io_write_all(fio, fd, "0123456789", 10, 6), -EIO);
    assert_int_equal(size_of(fio, fd), 12);
    assert_int_equal(fio->pread(fio, fd, buf, 8, 4), 8);
    assert_memory_equal(buf, "gh012345", 8);

    io_faulty_fail_fsync(f, 2, EIO);
    assert_int_equal(fio->fsync(fio, fd), 0);
    assert_int_equal(fio->fsync(fio, fd), -EIO);
    assert_int_equal(fio->fsync(fio, fd), 0);
    io_faulty_fail_fsync(f, 1, EIO);
    assert_int_equal(fio->fsync_dir(fio, tmpdir), -EIO);
    assert_int_equal(fio->close(fio, fd), 0);
    io_faulty_free(f);
}

static void test_crash_at_byte(void **state)
{
    io_ops *io = io_posix();
    io_faulty *f = io_faulty_new(io);
    io_ops *fio = io_faulty_ops(f);
    char buf[32];
    int fd;

    for (unsigned n = 0; n <= 12; n++) {
        assert_int_equal(fio->open(fio, tmp_path("e"), O_RDWR | O_CREAT | O_TRUNC, 0644, &fd), 0);
        io_faulty_reset(f);
        uint64_t before = io_faulty_bytes_persisted(f);
        io_faulty_crash_at(f, n);
        assert_int_equal(io_faulty_crashed(f), n == 0);
        /* Every call reports success: the process cannot tell. */
        assert_int_equal(io_write_all(fio, fd, "abcde", 5, 0), 0);
        assert_int_equal(io_write_all(fio, fd, "fghij", 5, 5), 0);
        assert_int_equal(fio->fsync(fio, fd), 0);
        assert_int_equal(fio->ftruncate(fio, fd, 2), 0);  /* dropped if crashed */
        assert_int_equal(io_faulty_crashed(f), n <= 10);
        uint64_t expect = n > 10 ? 2 : n;      /* n > 10: the truncate happened */
        assert_int_equal(size_of(io, fd), expect);
        assert_int_equal(io->pread(io, fd, buf, sizeof buf, 0), (ssize_t)expect);
        assert_memory_equal(buf, "abcdefghij", expect);
        if (n <= 10) assert_int_equal(io_faulty_bytes_persisted(f) - before, n);
        /* After the crash, names do not change either. */
        assert_int_equal(fio->rename(fio, tmp_path("e"), tmp_path("a")), 0);
        if (n <= 10) {
            assert_int_equal(access(tmp_path("a"), F_OK), -1);
            int fd2;        /* O_TRUNC after the crash is dropped too */
            assert_int_equal(fio->open(fio, tmp_path("e"), O_RDWR | O_TRUNC, 0644, &fd2), 0);
            assert_int_equal(size_of(io, fd2), expect);
            assert_int_equal(io->close(io, fd2), 0);
        } else {
            assert_int_equal(io->rename(io, tmp_path("a"), tmp_path("e")), 0);
        }
        assert_int_equal(fio->unlink(fio, tmp_path("e")), 0);
        assert_int_equal(io->close(io, fd), 0);
        io_faulty_reset(f);
    }
    assert_int_equal(io_faulty_bytes_requested(f), 13 * 10);
    unlink(tmp_path("e"));
    io_faulty_free(f);
}

/* ---- mappings -------------------------------------------------------------- */

static void test_map(void **state)
{
    io_ops *io = io_posix();
    size_t page = (size_t)sysconf(_SC_PAGESIZE), len = 3 * page + 100;
    char *data = malloc(len), *back = malloc(len);
    void *m;
    int fd;
    for (size_t i = 0; i < len; i++) data[i] = (char)(i * 13 + 1);
    assert_int_equal(io->open(io, tmp_path("a"), O_RDWR | O_CREAT | O_TRUNC, 0644, &fd), 0);
    assert_int_equal(io_write_all(io, fd, data, len, 0), 0);
    assert_int_equal(io->map(io, fd, 0, &m), -EINVAL);
    assert_int_equal(io->map(io, fd, len, &m), 0);
    assert_int_equal(io->close(io, fd), 0);          /* the mapping stays */
    char *p = m;
    assert_int_equal((uintptr_t)p % page, 0);
    assert_memory_equal(p, data, len);

    /* Private: writes stay in memory, the file never sees them. */
    memset(p + 10, 'x', 2 * page);
    assert_int_equal(io->open(io, tmp_path("a"), O_RDONLY, 0, &fd), 0);
    assert_int_equal(io_read_full(io, fd, back, len, 0), (ssize_t)len);
    assert_memory_equal(back, data, len);

    /* Discard gives back whole pages only: the partial first page keeps its
     * private copy.  (On Linux the dropped page reads as the file again.) */
    assert_int_equal(io->discard(io, p + 10, 2 * page), 0);
    assert_int_equal(io->discard(io, p + 1, 10), 0);             /* no whole page: no-op */
    assert_int_equal(io->discard(io, p + page, 0), 0);
    assert_true(p[10] == 'x' && p[page - 1] == 'x');
#ifdef __linux__
    assert_memory_equal(p + page, data + page, page);
#endif
    assert_int_equal(io->unmap(io, m, len), 0);

    /* The injector forwards, and fails the nth map on request. */
    io_faulty *f = io_faulty_new(io);
    io_ops *fio = io_faulty_ops(f);
    io_faulty_fail_map(f, 2, ENOMEM);
    assert_int_equal(fio->map(fio, fd, len, &m), 0);
    assert_int_equal(fio->discard(fio, m, len), 0);
    assert_int_equal(fio->unmap(fio, m, len), 0);
    assert_int_equal(fio->map(fio, fd, len, &m), -ENOMEM);
    assert_int_equal(fio->map(fio, fd, len, &m), 0);             /* one-shot */
    assert_int_equal(fio->unmap(fio, m, len), 0);
    io_faulty_fail_map(f, 1, EACCES);
    io_faulty_reset(f);                                          /* disarms it */
    assert_int_equal(fio->map(fio, fd, len, &m), 0);
    assert_int_equal(fio->unmap(fio, m, len), 0);
    io_faulty_crash_at(f, 0);                                    /* reads still work */
    assert_int_equal(fio->map(fio, fd, len, &m), 0);
    assert_memory_equal(m, data, len);
    assert_int_equal(fio->unmap(fio, m, len), 0);
    assert_int_equal(io->close(io, fd), 0);
    io_faulty_free(f);
    free(data);
    free(back);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_posix_calls),
        cmocka_unit_test(test_write_all_and_read_full),
        cmocka_unit_test(test_fail_nth_write),
        cmocka_unit_test(test_crash_at_byte),
        cmocka_unit_test(test_map),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
