/* test_snapfile.c -- the snapshot container (snapfile.h): writer, reader, lifetime.
 *
 * What is covered
 *   round trips: many sections of mixed alignment and sizes (empty ones, one
 *   written in 1..17-byte pieces, one over 8 MiB written in one call so it
 *   bypasses the buffer), page_align sections 4096/64-byte aligned in
 *   memory, header fields, snap_find, an empty snapshot;
 *   damage: every single-bit flip of every byte of a 3-page file is refused
 *   with -EBADMSG and an offset at or before the flipped byte (run over an
 *   in-memory io table so it takes well under a second), truncation at
 *   every length and extension are refused, exact messages, -ENOENT,
 *   -ENOTSUP for a newer version or flags, a failed map;
 *   atomicity: with the fault injector (EIO/ENOSPC at every write, short
 *   writes, fsync failures, crash at byte N across the whole file, a failed
 *   rename) the final path always holds the old or the new complete
 *   snapshot, and the temporary file is removed whenever the process
 *   survives;
 *   lifetime: close with nothing borrowed unmaps; borrowed sections keep
 *   the mapping until the last byte is released (whole, in parts, handed
 *   out twice, from several threads); released ranges are discarded;
 *   copy-on-write never reaches the file; over-release aborts;
 *   writer misuse is -EINVAL and leaves the final path alone.
 *
 * Files live in a private mkdtemp directory, removed at the end. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "engram/crc32c.h"
#include "engram/snapfile.h"

static char tmpdir[PATH_MAX];

static const char *tmp_path(const char *name)
{
    static char buf[4][PATH_MAX + 300];
    static int next;
    char *b = buf[next = (next + 1) % 4];
    snprintf(b, sizeof buf[0], "%s/%s", tmpdir, name);
    return b;
}

/* A path held across other tmp_path calls (whose buffers rotate). */
#define PATH_VAR(var, name) char var[PATH_MAX + 32]; snprintf(var, sizeof var, "%s/%s", tmpdir, name)

static int setup(void **state)
{
    strcpy(tmpdir, "/tmp/engram-test-snap-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    DIR *d = opendir(tmpdir);
    struct dirent *de;
    if (!d) return -1;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) unlink(tmp_path(de->d_name));
    closedir(d);
    return rmdir(tmpdir);
}

static int exists(const char *path) { return access(path, F_OK) == 0; }

/* As in test_wal: power loss is modelled by io_faulty, not by the disk, so
 * the loops run on io_posix_nosync (fsync a no-op); test_round_trip uses
 * real fsyncs. */

/* ---- reference sections ---------------------------------------------------- */

typedef struct spec {
    uint32_t kind;
    int page;
    size_t len;
    size_t piece;               /* 0: one write; else pieces of 1..piece bytes */
} spec;

static uint8_t val(size_t sec, uint64_t j)
{
    return (uint8_t)(((j * 2654435761u) >> 13) + sec * 97 + (j >> 12) + 1);
}

static void fill(size_t sec, uint64_t off, uint8_t *buf, size_t n)
{
    for (size_t k = 0; k < n; k++) buf[k] = val(sec, off + k);
}

/* Write specs as a snapshot.  A failing sink call is followed by commit,
 * which must report the same sticky error.  Returns commit's result. */
static int write_snap(io_ops *io, const char *final, uint64_t seq, const spec *sp, size_t n)
{
    snap_writer *w;
    int rc = snap_writer_open(io, tmp_path("snap.tmp"), seq, (int64_t)seq * 1000 - 7, &w);
    if (rc < 0) return rc;
    img_sink *s = snap_writer_sink(w);
    size_t maxlen = 1;
    for (size_t i = 0; i < n; i++) if (sp[i].len > maxlen) maxlen = sp[i].len;
    uint8_t *buf = malloc(maxlen);
    assert_non_null(buf);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = s->begin(s, sp[i].kind, sp[i].page);
        fill(i, 0, buf, sp[i].len);
        for (size_t off = 0, step; rc == 0 && off < sp[i].len; off += step) {
            step = sp[i].piece ? 1 + (off * 7 + i) % sp[i].piece : sp[i].len;
            if (step > sp[i].len - off) step = sp[i].len - off;
            rc = s->write(s, buf + off, step);
        }
        if (rc == 0) rc = s->end(s);
    }
    free(buf);
    int crc = snap_writer_commit(w, final);
    if (rc < 0) assert_int_equal(crc, rc);
    return crc;
}

/* The snapshot at path is exactly (seq, specs); returns it open. */
static snap *check_snap(io_ops *io, const char *path, uint64_t seq, const spec *sp, size_t n)
{
    snap *s;
    snap_error e;
    int rc = snap_open(io, path, &s, &e);
    if (rc != 0) fail_msg("snap_open: %d %s", rc, e.msg);
    assert_int_equal(snap_seq(s), seq);
    assert_int_equal(snap_created_ms(s), (int64_t)seq * 1000 - 7);
    assert_int_equal(snap_nsections(s), n);
    uint8_t *buf = malloc(1 << 16);
    for (size_t i = 0; i < n; i++) {
        const img_section *c = snap_section(s, i);
        assert_int_equal(c->kind, sp[i].kind);
        assert_int_equal(c->page_aligned, sp[i].page != 0);
        assert_int_equal(c->len, sp[i].len);
        if (sp[i].page) assert_int_equal((uintptr_t)c->data % IMG_PAGE, 0);
        else assert_int_equal((uintptr_t)c->data % 8, 0);
        for (size_t off = 0; off < c->len; off += 1 << 16) {
            size_t m = c->len - off < (1 << 16) ? c->len - off : (1 << 16);
            fill(i, off, buf, m);
            assert_memory_equal((uint8_t *)c->data + off, buf, m);
        }
    }
    free(buf);
    return s;
}

static void check_and_close(io_ops *io, const char *path, uint64_t seq, const spec *sp, size_t n)
{
    snap_close(check_snap(io, path, seq, sp, n));
}

/* ---- round trips --------------------------------------------------------------- */

static const spec mixed[] = {
    { 0x0001, 0, 40, 0 },       { 0x0200, 0, 0, 0 },         { 0x0100, 1, 0, 0 },
    { 0x0101, 1, 1, 0 },        { 0x0102, 0, 7, 0 },         { 0x0103, 0, 8, 0 },
    { 0x0110, 1, 4096, 0 },     { 0x0111, 1, 4097, 0 },      { 0x0112, 0, 4095, 0 },
    { 0x0113, 0, 63, 0 },       { 0x0114, 1, 64, 0 },        { 0x0120, 0, 5000, 17 },
    { 0x0121, 1, 12345, 1 },    { 0x0122, 0, 100000, 0 },    { 0x0123, 1, 300001, 4099 },
    { 0x0130, 0, 0, 0 },        { 0x0131, 0, 0, 0 },         { 0x0132, 1, 9u << 20 | 123, 0 },
    { 0x0133, 0, 3, 0 },        { 0x0134, 1, (1u << 20) - 5, 0 }, { 0x0135, 0, 1u << 20, 0 },
    { 0x0136, 1, 2000000, 65536 }, { 0x0200, 0, 1, 0 },      { 0x02ff, 1, 0, 0 },
};
#define NMIXED (sizeof mixed / sizeof *mixed)

static void test_round_trip(void **state)
{
    io_ops *io = io_posix();
    PATH_VAR(path, "rt.snap");
    assert_int_equal(write_snap(io, path, 42, mixed, NMIXED), 0);
    assert_false(exists(tmp_path("snap.tmp")));
    snap *s = check_snap(io, path, 42, mixed, NMIXED);
    assert_int_equal(snap_find(s, 0x0200, 0), 1);
    assert_int_equal(snap_find(s, 0x0200, 2), 22);
    assert_int_equal(snap_find(s, 0x0200, 23), NMIXED);
    assert_int_equal(snap_find(s, 0x7777, 0), NMIXED);
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    assert_int_equal(snap_file_size(s), (uint64_t)ftell(f));
    fclose(f);
    assert_int_equal((uintptr_t)snap_section(s, 14)->data % 64, 0);
    snap_close(s);

    /* Overwrite with an empty snapshot (no sections at all). */
    assert_int_equal(write_snap(io, path, 0, NULL, 0), 0);
    s = check_snap(io, path, 0, NULL, 0);
    assert_int_equal(snap_file_size(s), SNAP_HEADER_SIZE);
    img_source src;
    assert_int_equal(snap_source(s, 0, 0, &src), 0);
    assert_int_equal(src.n, 0);
    assert_int_equal(snap_source(s, 0, 1, &src), -EINVAL);
    snap_close(s);
    snap_close(NULL);
}

/* ---- an in-memory table for the exhaustive damage loops ----------------------
 * open("mem") succeeds, the file is mem.buf[0..mem.len), map returns
 * mem.buf itself and unmap does nothing: no system call per iteration. */
static struct { uint8_t *buf; size_t len; } mem;

static int mem_open(io_ops *io, const char *path, int flags, int mode, int *fd)
{
    if (strcmp(path, "mem") != 0) return -ENOENT;
    *fd = 1000;
    return 0;
}
static int mem_close(io_ops *io, int fd) { return 0; }
static int mem_file_size(io_ops *io, int fd, uint64_t *out) { *out = mem.len; return 0; }
static int mem_map(io_ops *io, int fd, uint64_t len, void **out)
{
    assert_int_equal(len, mem.len);
    *out = mem.buf;
    return 0;
}
static int mem_unmap(io_ops *io, void *p, uint64_t len) { return 0; }
static int mem_discard(io_ops *io, void *p, uint64_t len) { return 0; }

static io_ops mem_io = { "mem", mem_open, mem_close, NULL, NULL, NULL, NULL, mem_file_size,
                         NULL, NULL, NULL, mem_map, mem_unmap, mem_discard };

static const spec small[] = {
    { 0x0101, 1, 100, 0 }, { 0x0001, 0, 13, 0 }, { 0x0002, 0, 0, 0 },
    { 0x0110, 1, 0, 0 },   { 0x0003, 0, 40, 0 }, { 0x0111, 1, 300, 7 },
};
#define NSMALL (sizeof small / sizeof *small)

/* Read a whole file into a fresh malloc'd buffer of exactly its size. */
static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*len ? *len : 1);
    assert_int_equal(fread(b, 1, *len, f), *len);
    fclose(f);
    return b;
}

static void spit(const char *path, const void *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, len, f), len);
    fclose(f);
}

static void test_every_bit_flip(void **state)
{
    PATH_VAR(path, "flip.snap");
    size_t len;
    assert_int_equal(write_snap(io_posix_nosync(), path, 7, small, NSMALL), 0);
    uint8_t *file = slurp(path, &len);
    assert_true(len > 3 * IMG_PAGE && len < 4 * IMG_PAGE);
    mem.len = len;
    mem.buf = file;
    snap *s;
    snap_error e;
    assert_int_equal(snap_open(&mem_io, "mem", &s, &e), 0);  /* the loop's baseline */
    snap_close(s);

    for (size_t i = 0; i < len; i++) {
        for (int b = 0; b < 8; b++) {
            file[i] ^= (uint8_t)(1u << b);
            int rc = snap_open(&mem_io, "mem", &s, &e);
            if (rc != -EBADMSG || e.offset > i)
                fail_msg("flip byte %zu bit %d: rc %d offset %llu: %s", i, b, rc,
                         (unsigned long long)e.offset, e.msg);
            file[i] ^= (uint8_t)(1u << b);
        }
    }
    assert_null(s);                 /* *out is cleared on failure */

    /* Messages name the file, the offset and the fault. */
    const img_section *c;
    assert_int_equal(snap_open(&mem_io, "mem", &s, &e), 0);
    c = snap_section(s, 5);
    size_t off5 = (size_t)((uint8_t *)c->data - file);
    snap_close(s);
    assert_int_equal(off5, 3 * IMG_PAGE);
    file[off5 + 299] ^= 0x10;
    assert_int_equal(snap_open(&mem_io, "mem", &s, &e), -EBADMSG);
    assert_string_equal(e.msg, "mem: section 5 (kind 0x111) at offset 12288: checksum mismatch");
    assert_int_equal(e.offset, 12288);
    file[off5 + 299] ^= 0x10;
    file[100 + IMG_PAGE + 2] = 1;   /* padding after section 0 (100 bytes at 4096) */
    assert_int_equal(snap_open(&mem_io, "mem", &s, &e), -EBADMSG);
    assert_string_equal(e.msg, "mem: offset 4198: non-zero padding before section 1");
    assert_int_equal(e.offset, 4198);
    file[100 + IMG_PAGE + 2] = 0;
    file[0] = 'X';
    assert_int_equal(snap_open(&mem_io, "mem", &s, &e), -EBADMSG);
    assert_string_equal(e.msg, "mem: offset 0: bad magic (not an engram snapshot)");
    free(file);
}

static void test_truncated_and_extended(void **state)
{
    PATH_VAR(path, "trunc.snap");
    size_t len;
    snap *s;
    snap_error e;
    assert_int_equal(write_snap(io_posix_nosync(), path, 9, small, NSMALL), 0);
    uint8_t *file = slurp(path, &len);

    /* Every shorter length, each in a buffer of exactly that size (so an
     * out-of-bounds read trips ASan). */
    for (size_t l = 0; l < len; l++) {
        mem.len = l;
        mem.buf = malloc(l ? l : 1);
        memcpy(mem.buf, file, l);
        int rc = snap_open(&mem_io, "mem", &s, &e);
        if (rc != -EBADMSG || e.offset > l)
            fail_msg("truncated to %zu: rc %d offset %llu: %s", l, rc, (unsigned long long)e.offset, e.msg);
        free(mem.buf);
    }
    /* Longer: zero bytes appended after the TOC. */
    mem.len = len + 8;
    mem.buf = calloc(1, len + 8);
    memcpy(mem.buf, file, len);
    assert_int_equal(snap_open(&mem_io, "mem", &s, &e), -EBADMSG);
    assert_int_equal(e.offset, len);
    free(mem.buf);

    /* The same through real files. */
    size_t cuts[] = { 0, 1, 59, 4095, 4096, 4097, 8191, len - 33, len - 1 };
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        spit(path, file, cuts[i]);
        assert_int_equal(snap_open(io_posix(), path, &s, &e), -EBADMSG);
        assert_true(e.offset <= cuts[i]);
        assert_non_null(strstr(e.msg, path));
    }
    free(file);
    unlink(path);
}

static void test_open_errors(void **state)
{
    PATH_VAR(path, "ver.snap");
    size_t len;
    snap *s;
    snap_error e;
    assert_int_equal(snap_open(io_posix(), tmp_path("absent.snap"), &s, &e), -ENOENT);
    assert_non_null(strstr(e.msg, "absent.snap"));
    assert_int_equal(snap_open(io_posix(), tmp_path("absent.snap"), &s, NULL), -ENOENT);

    assert_int_equal(write_snap(io_posix_nosync(), path, 3, small, NSMALL), 0);
    uint8_t *file = slurp(path, &len);
    /* A valid header from a newer writer: -ENOTSUP, not damage. */
    file[8] = 2;
    uint32_t c = crc32c(0, file, 56);
    for (int i = 0; i < 4; i++) file[56 + i] = (uint8_t)(c >> (8 * i));
    spit(path, file, len);
    assert_int_equal(snap_open(io_posix(), path, &s, &e), -ENOTSUP);
    assert_non_null(strstr(e.msg, "version 2"));
    file[8] = 1;
    file[12] = 4;                   /* unknown flags */
    c = crc32c(0, file, 56);
    for (int i = 0; i < 4; i++) file[56 + i] = (uint8_t)(c >> (8 * i));
    spit(path, file, len);
    assert_int_equal(snap_open(io_posix(), path, &s, &e), -ENOTSUP);
    free(file);

    /* A failed map is reported as such. */
    assert_int_equal(write_snap(io_posix_nosync(), path, 3, small, NSMALL), 0);
    io_faulty *f = io_faulty_new(io_posix());
    io_faulty_fail_map(f, 1, ENOMEM);
    assert_int_equal(snap_open(io_faulty_ops(f), path, &s, &e), -ENOMEM);
    assert_non_null(strstr(e.msg, "cannot map"));
    assert_int_equal(snap_open(io_faulty_ops(f), path, &s, &e), 0);
    snap_close(s);
    io_faulty_free(f);
    unlink(path);
}

/* ---- atomicity under faults ------------------------------------------------------ */

static const spec old_specs[] = { { 0x0001, 0, 77, 0 }, { 0x0110, 1, 5000, 0 } };
static const spec new_specs[] = {
    { 0x0001, 0, 99, 0 }, { 0x0110, 1, 20000, 0 }, { 0x0200, 0, 3000, 13 }, { 0x0111, 1, 9000, 0 },
};
static const spec big_specs[] = { { 0x0001, 0, 100, 0 }, { 0x0110, 1, 2500000, 0 }, { 0x0200, 0, 700000, 1000 } };

/* The final path holds the old snapshot or the new one, complete. */
static int final_is_new(const char *final, const spec *nsp, size_t nn)
{
    snap *s;
    assert_int_equal(snap_open(io_posix(), final, &s, NULL), 0);
    uint64_t seq = snap_seq(s);
    snap_close(s);
    assert_true(seq == 1 || seq == 2);
    if (seq == 1) check_and_close(io_posix(), final, 1, old_specs, 2);
    else check_and_close(io_posix(), final, 2, nsp, nn);
    return seq == 2;
}

static void reset_old(const char *final)
{
    unlink(tmp_path("snap.tmp"));
    assert_int_equal(write_snap(io_posix_nosync(), final, 1, old_specs, 2), 0);
}

static void test_write_faults(void **state)
{
    PATH_VAR(final, "final.snap");
    const size_t nn = sizeof new_specs / sizeof *new_specs;
    io_faulty *f = io_faulty_new(io_posix_nosync());
    io_ops *fio = io_faulty_ops(f);
    static const int errs[] = { EIO, ENOSPC };

    /* The nth write fails, for every n: small and big snapshots (the big
     * one flushes its buffer several times and bypasses it once), and the
     * small one with short writes too. */
    const size_t nb = sizeof big_specs / sizeof *big_specs;
    for (int round = 0; round < 4; round++) {
        int shorts = round == 2, big = round == 3;
        const spec *sp = big ? big_specs : new_specs;
        size_t n = big ? nb : nn;
        int err = errs[round % 2];
        int done = 0;
        for (unsigned nth = 1; !done; nth++) {
            reset_old(final);
            io_faulty_reset(f);
            if (shorts) io_faulty_short_writes(f, 777);
            io_faulty_fail_write(f, nth, err);
            int rc = write_snap(fio, final, 2, sp, n);
            if (rc == 0) {
                done = 1;               /* nth beyond the last write */
                assert_true(nth > 2);
                assert_true(final_is_new(final, sp, n));
            } else {
                assert_int_equal(rc, -err);
                assert_false(final_is_new(final, sp, n));
            }
            assert_false(exists(tmp_path("snap.tmp")));
        }
    }

    /* fsync of the file fails: old stays.  fsync of the directory fails:
     * the new file is in place (its name may not be durable) and the
     * error is still reported. */
    reset_old(final);
    io_faulty_reset(f);
    io_faulty_fail_fsync(f, 1, EIO);
    assert_int_equal(write_snap(fio, final, 2, new_specs, nn), -EIO);
    assert_false(final_is_new(final, new_specs, nn));
    assert_false(exists(tmp_path("snap.tmp")));
    io_faulty_fail_fsync(f, 2, EIO);
    assert_int_equal(write_snap(fio, final, 2, new_specs, nn), -EIO);
    assert_true(final_is_new(final, new_specs, nn));
    assert_false(exists(tmp_path("snap.tmp")));

    /* A rename that fails (no such directory) leaves nothing behind. */
    reset_old(final);
    io_faulty_reset(f);
    assert_int_equal(write_snap(fio, tmp_path("nodir/x.snap"), 2, new_specs, nn), -ENOENT);
    assert_false(exists(tmp_path("snap.tmp")));
    assert_false(final_is_new(final, new_specs, nn));
    io_faulty_free(f);
}

/* Power loss after n bytes, for n across the whole file: before every byte
 * of the header's last write the old file is there; once all bytes are
 * written the new one is. */
/* Every byte of the first and last 64, every step-th in between. */
static uint64_t next_crash(uint64_t at, uint64_t total, uint64_t step)
{
    if (at < 64 || at + 64 > total) return at + 1;
    return at + step + 64 > total ? total - 63 : at + step;
}

static void crash_sweep(const spec *sp, size_t n, uint64_t step)
{
    PATH_VAR(final, "final.snap");
    io_faulty *f = io_faulty_new(io_posix_nosync());
    uint64_t total;
    reset_old(final);
    uint64_t before = io_faulty_bytes_requested(f);
    assert_int_equal(write_snap(io_faulty_ops(f), final, 2, sp, n), 0);
    total = io_faulty_bytes_requested(f) - before;

    for (uint64_t at = 0; at <= total + 1; at = next_crash(at, total, step)) {
        reset_old(final);
        io_faulty_reset(f);
        io_faulty_crash_at(f, at);
        assert_int_equal(write_snap(io_faulty_ops(f), final, 2, sp, n), 0);  /* it cannot tell */
        int crashed = io_faulty_crashed(f);
        assert_int_equal(crashed, at <= total);
        assert_int_equal(final_is_new(final, sp, n), !crashed);
    }
    unlink(tmp_path("snap.tmp"));
    io_faulty_free(f);
}

static void test_crash_small(void **state)
{
    crash_sweep(new_specs, sizeof new_specs / sizeof *new_specs, 97);
}

static void test_crash_big(void **state)
{
    /* Several 1 MiB buffer flushes and a bypassing 2.5 MB write. */
    crash_sweep(big_specs, sizeof big_specs / sizeof *big_specs, 99991);
}

/* ---- writer misuse ------------------------------------------------------------- */

static void test_writer_misuse(void **state)
{
    PATH_VAR(final, "misuse.snap");
    snap_writer *w;
    reset_old(final);
    assert_int_equal(snap_writer_open(io_posix_nosync(), tmp_path("nodir/t"), 1, 0, &w), -ENOENT);
    assert_null(w);

    assert_int_equal(snap_writer_open(io_posix_nosync(), tmp_path("snap.tmp"), 5, 0, &w), 0);
    img_sink *s = snap_writer_sink(w);
    assert_int_equal(snap_writer_size(w), SNAP_HEADER_SIZE);
    assert_int_equal(s->write(s, "x", 1), -EINVAL);
    assert_int_equal(s->end(s), -EINVAL);
    assert_int_equal(s->begin(s, 0, 0), -EINVAL);
    assert_int_equal(s->begin(s, 1, 1), 0);
    assert_int_equal(snap_writer_size(w), SNAP_HEADER_SIZE);
    assert_int_equal(s->begin(s, 2, 0), -EINVAL);
    assert_int_equal(s->write(s, "abc", 3), 0);
    assert_int_equal(snap_writer_size(w), SNAP_HEADER_SIZE + 3);
    assert_int_equal(snap_writer_commit(w, final), -EINVAL);   /* section still open */
    assert_false(exists(tmp_path("snap.tmp")));
    assert_false(final_is_new(final, NULL, 0));

    assert_int_equal(snap_writer_open(io_posix_nosync(), tmp_path("snap.tmp"), 5, 0, &w), 0);
    assert_true(exists(tmp_path("snap.tmp")));
    snap_writer_abort(w);
    assert_false(exists(tmp_path("snap.tmp")));
    snap_writer_abort(NULL);
}

/* ---- lifetime -------------------------------------------------------------------- */

/* posix, counting maps, unmaps and discards. */
static struct { unsigned maps, unmaps, discards; uint64_t discarded; } cnt;

static int cnt_map(io_ops *io, int fd, uint64_t len, void **out)
{
    cnt.maps++;
    return io_posix()->map(io_posix(), fd, len, out);
}
static int cnt_unmap(io_ops *io, void *p, uint64_t len)
{
    cnt.unmaps++;
    return io_posix()->unmap(io_posix(), p, len);
}
static int cnt_discard(io_ops *io, void *p, uint64_t len)
{
    __atomic_fetch_add(&cnt.discards, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&cnt.discarded, len, __ATOMIC_RELAXED);
    return io_posix()->discard(io_posix(), p, len);
}

static io_ops *io_count(void)
{
    static io_ops t;
    if (!t.name) {
        t = *io_posix_nosync();
        t.name = "counting";
        t.map = cnt_map;
        t.unmap = cnt_unmap;
        t.discard = cnt_discard;
    }
    memset(&cnt, 0, sizeof cnt);
    return &t;
}

static void release_all(const img_source *src)
{
    for (size_t i = 0; i < src->n; i++) src->release(src->release_ud, src->sec[i].data, src->sec[i].len);
}

/* A loader copies what it borrows out of the img_section during the load:
 * after snap_close the sec array is not promised to stay. */
typedef struct rel_job { img_section sec; img_release_fn *release; void *ud; } rel_job;

static void *release_thread(void *arg)
{
    rel_job *j = arg;
    /* In four parts, to exercise partial releases from several threads. */
    size_t q = j->sec.len / 4;
    uint8_t *d = j->sec.data;
    j->release(j->ud, d, q);
    j->release(j->ud, d + q, q);
    j->release(j->ud, d + 2 * q, j->sec.len - 3 * q);
    j->release(j->ud, d + 3 * q, q);    /* len 0 if q == 0 */
    return NULL;
}

static void test_lifetime(void **state)
{
    PATH_VAR(path, "life.snap");
    io_ops *io;
    snap *s;
    img_source src, src2;
    assert_int_equal(write_snap(io_posix_nosync(), path, 4, small, NSMALL), 0);

    /* Nothing borrowed: close unmaps. */
    io = io_count();
    s = check_snap(io, path, 4, small, NSMALL);
    assert_int_equal(cnt.maps, 1);
    snap_close(s);
    assert_int_equal(cnt.unmaps, 1);

    /* Borrowed: the mapping outlives the handle until the last byte. */
    io = io_count();
    s = check_snap(io, path, 4, small, NSMALL);
    assert_int_equal(snap_source(s, 0, NSMALL, &src), 0);
    assert_int_equal(snap_source(s, 5, 1, &src2), 0);        /* section 5 twice */
    assert_int_equal(snap_source(s, 6, 1, &src2), -EINVAL);
    assert_int_equal(snap_source(s, 7, 0, &src2), -EINVAL);
    assert_int_equal(snap_source(s, NSMALL, 0, &src2), 0);   /* empty run: nothing counted */
    assert_int_equal(src.n, NSMALL);
    assert_ptr_equal(src.sec, snap_section(s, 0));
    snap_close(s);
    assert_int_equal(cnt.unmaps, 0);
    /* Copy-on-write: patch a borrowed section in place. */
    uint8_t *d0 = src.sec[0].data;
    d0[0] ^= 0xff;
    for (size_t i = 0; i + 1 < NSMALL; i++) src.release(src.release_ud, src.sec[i].data, src.sec[i].len);
    assert_int_equal(cnt.unmaps, 0);
    const img_section *c5 = &src.sec[5];
    src.release(src.release_ud, c5->data, c5->len);
    assert_int_equal(cnt.unmaps, 0);                     /* handed out once more */
    src.release(src.release_ud, (uint8_t *)c5->data + 100, c5->len - 100);
    assert_int_equal(cnt.unmaps, 0);
    src.release(src.release_ud, c5->data, 100);
    assert_int_equal(cnt.unmaps, 1);
    assert_int_equal(cnt.discarded, 100 + 13 + 40 + 300 + (300 - 100) + 100);
    check_and_close(io_posix(), path, 4, small, NSMALL);  /* the file never changed */

    /* Released from several threads at once. */
    io = io_count();
    s = check_snap(io, path, 4, small, NSMALL);
    assert_int_equal(snap_source(s, 0, NSMALL, &src), 0);
    pthread_t th[NSMALL];
    rel_job jobs[NSMALL];
    for (size_t i = 0; i < NSMALL; i++) jobs[i] = (rel_job){ src.sec[i], src.release, src.release_ud };
    snap_close(s);
    for (size_t i = 0; i < NSMALL; i++)
        assert_int_equal(pthread_create(&th[i], NULL, release_thread, &jobs[i]), 0);
    for (size_t i = 0; i < NSMALL; i++) pthread_join(th[i], NULL);
    assert_int_equal(cnt.unmaps, 1);

    /* Closing the handle last also works. */
    io = io_count();
    s = check_snap(io, path, 4, small, NSMALL);
    assert_int_equal(snap_source(s, 1, 2, &src), 0);
    release_all(&src);
    assert_int_equal(cnt.unmaps, 0);
    snap_close(s);
    assert_int_equal(cnt.unmaps, 1);
}

/* Releasing bytes that were not handed out is a loader bug: abort. */
static void test_over_release_aborts(void **state)
{
    PATH_VAR(path, "abort.snap");
    assert_int_equal(write_snap(io_posix_nosync(), path, 4, small, NSMALL), 0);
    for (int mode = 0; mode < 3; mode++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            snap *s;
            img_source src;
            int devnull = open("/dev/null", O_WRONLY);
            if (devnull >= 0) dup2(devnull, 2);
            if (snap_open(io_posix(), path, &s, NULL) != 0) _exit(1);
            snap_source(s, 0, 1, &src);
            uint8_t *d = src.sec[0].data;
            if (mode == 0) {            /* twice */
                src.release(src.release_ud, d, src.sec[0].len);
                src.release(src.release_ud, d, src.sec[0].len);
            } else if (mode == 1) {     /* past the section's end */
                src.release(src.release_ud, d + 50, src.sec[0].len);
            } else {                    /* never handed out */
                src.release(src.release_ud, snap_section(s, 5)->data, 10);
            }
            _exit(0);
        }
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_every_bit_flip),
        cmocka_unit_test(test_truncated_and_extended),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_write_faults),
        cmocka_unit_test(test_crash_small),
        cmocka_unit_test(test_crash_big),
        cmocka_unit_test(test_writer_misuse),
        cmocka_unit_test(test_lifetime),
        cmocka_unit_test(test_over_release_aborts),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
