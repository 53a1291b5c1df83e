/* fuzz_support.c -- the helpers fuzz.h declares: the input's seed, one
 * in-memory file behind the io seam, an in-memory image sink. */
#include "fuzz.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include <sanitizer/asan_interface.h>

uint64_t fuzz_seed(const uint8_t *data, size_t size)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < size; i++) h = (h ^ data[i]) * 0x100000001b3ull;
    return h;
}

/* ---- the in-memory file ---------------------------------------------------- */

static struct {
    uint8_t *p;
    size_t len, cap;
    int open_files, maps;
} mf;

static int mf_reserve(size_t n)
{
    if (n <= mf.cap) return 0;
    size_t c = mf.cap ? mf.cap : 4096;
    while (c < n) c *= 2;
    uint8_t *q = realloc(mf.p, c);
    if (!q) return -ENOMEM;
    mf.p = q;
    mf.cap = c;
    return 0;
}

void fuzz_memio_set(const void *data, size_t len)
{
    if (mf_reserve(len) < 0) abort();
    if (len) memcpy(mf.p, data, len);
    mf.len = len;
}

const uint8_t *fuzz_memio_data(size_t *len)
{
    *len = mf.len;
    return mf.p;
}

int fuzz_memio_open_files(void) { return mf.open_files; }
int fuzz_memio_live_maps(void) { return mf.maps; }

static int m_open(io_ops *io, const char *path, int flags, int mode, int *fd)
{
    (void)io, (void)path, (void)mode;
    if (flags & O_TRUNC) mf.len = 0;
    mf.open_files++;
    *fd = 3;
    return 0;
}

static int m_close(io_ops *io, int fd)
{
    (void)io, (void)fd;
    mf.open_files--;
    return 0;
}

static ssize_t m_pread(io_ops *io, int fd, void *buf, size_t len, uint64_t off)
{
    (void)io, (void)fd;
    if (off >= mf.len) return 0;
    size_t n = mf.len - off < len ? mf.len - (size_t)off : len;
    memcpy(buf, mf.p + off, n);
    return (ssize_t)n;
}

static ssize_t m_pwrite(io_ops *io, int fd, const void *buf, size_t len, uint64_t off)
{
    (void)io, (void)fd;
    if (off > (1u << 30) || len > (1u << 30)) return -EFBIG;
    if (mf_reserve((size_t)off + len) < 0) return -ENOMEM;
    if (off > mf.len) memset(mf.p + mf.len, 0, (size_t)off - mf.len);
    memcpy(mf.p + off, buf, len);
    if (off + len > mf.len) mf.len = (size_t)off + len;
    return (ssize_t)len;
}

static int m_ok_fd(io_ops *io, int fd) { (void)io, (void)fd; return 0; }
static int m_ok_path(io_ops *io, const char *p) { (void)io, (void)p; return 0; }
static int m_rename(io_ops *io, const char *a, const char *b) { (void)io, (void)a, (void)b; return 0; }

static int m_ftruncate(io_ops *io, int fd, uint64_t size)
{
    (void)io, (void)fd;
    if (size > (1u << 30)) return -EFBIG;
    if (mf_reserve((size_t)size) < 0) return -ENOMEM;
    if (size > mf.len) memset(mf.p + mf.len, 0, (size_t)size - mf.len);
    mf.len = (size_t)size;
    return 0;
}

static int m_file_size(io_ops *io, int fd, uint64_t *out)
{
    (void)io, (void)fd;
    *out = mf.len;
    return 0;
}

static int m_map(io_ops *io, int fd, uint64_t len, void **out)
{
    (void)io, (void)fd;
    if (len == 0) return -EINVAL;
    if (len > mf.len) return -EINVAL;   /* beyond the end would be SIGBUS */
    void *p = NULL;
    if (posix_memalign(&p, 4096, (size_t)len) != 0) return -ENOMEM;
    memcpy(p, mf.p, (size_t)len);
    mf.maps++;
    *out = p;
    return 0;
}

static int m_unmap(io_ops *io, void *p, uint64_t len)
{
    (void)io;
    ASAN_UNPOISON_MEMORY_REGION(p, (size_t)len);
    free(p);
    mf.maps--;
    return 0;
}

static int m_discard(io_ops *io, void *p, uint64_t len)
{
    (void)io;
    uintptr_t lo = ((uintptr_t)p + 4095) & ~(uintptr_t)4095;
    uintptr_t hi = ((uintptr_t)p + (uintptr_t)len) & ~(uintptr_t)4095;
    if (hi > lo) ASAN_POISON_MEMORY_REGION((void *)lo, hi - lo);
    return 0;
}

static io_ops memio_table = {
    "fuzz-memory",
    m_open, m_close, m_pread, m_pwrite, m_ok_fd,
    m_ftruncate, m_file_size, m_rename, m_ok_path, m_ok_path,
    m_map, m_unmap, m_discard,
};

io_ops *fuzz_memio(void) { return &memio_table; }

/* ---- the in-memory image ---------------------------------------------------- */

static int im_begin(img_sink *s, uint32_t kind, int page_align)
{
    fuzz_image *im = (fuzz_image *)s;
    if (im->open || kind == 0) return -EINVAL;
    if (im->n == FUZZ_IMAGE_MAXSEC) {
        im->overflow = 1;
        return -ENOSPC;
    }
    im->sec[im->n] = (img_section){ kind, page_align, NULL, 0 };
    im->open = 1;
    im->blen = 0;
    return 0;
}

static int im_write(img_sink *s, const void *p, size_t n)
{
    fuzz_image *im = (fuzz_image *)s;
    if (!im->open) return -EINVAL;
    if (im->blen + n > im->bcap) {
        size_t c = im->bcap ? im->bcap : 4096;
        while (c < im->blen + n) c *= 2;
        uint8_t *q = realloc(im->buf, c);
        if (!q) return -ENOMEM;
        im->buf = q;
        im->bcap = c;
    }
    memcpy(im->buf + im->blen, p, n);
    im->blen += n;
    return 0;
}

/* Page-aligned sections get their own pages (a loader may borrow them);
 * packed ones sit at an odd address, as they may in a file. */
static int im_end(img_sink *s)
{
    fuzz_image *im = (fuzz_image *)s;
    if (!im->open) return -EINVAL;
    img_section *sec = &im->sec[im->n];
    void *q = NULL;
    if (sec->page_aligned) {
        if (posix_memalign(&q, 4096, im->blen ? im->blen : 1) != 0) return -ENOMEM;
        sec->data = q;
    } else {
        if (!(q = malloc(im->blen + 1))) return -ENOMEM;
        sec->data = (uint8_t *)q + 1;
    }
    if (im->blen) memcpy(sec->data, im->buf, im->blen);
    sec->len = im->blen;
    im->n++;
    im->open = 0;
    return 0;
}

void fuzz_image_init(fuzz_image *im)
{
    memset(im, 0, sizeof *im);
    im->sink.begin = im_begin;
    im->sink.write = im_write;
    im->sink.end = im_end;
}

void fuzz_image_fini(fuzz_image *im)
{
    for (size_t i = 0; i < im->n; i++)
        free(im->sec[i].page_aligned ? im->sec[i].data : (uint8_t *)im->sec[i].data - 1);
    free(im->buf);
    memset(im, 0, sizeof *im);
}

img_source fuzz_image_source(const fuzz_image *im)
{
    return (img_source){ im->sec, im->n, NULL, NULL };
}

int fuzz_image_equal(const fuzz_image *a, const fuzz_image *b)
{
    if (a->n != b->n) return 0;
    for (size_t i = 0; i < a->n; i++) {
        const img_section *x = &a->sec[i], *y = &b->sec[i];
        if (x->kind != y->kind || x->page_aligned != y->page_aligned || x->len != y->len) return 0;
        if (x->len && memcmp(x->data, y->data, x->len) != 0) return 0;
    }
    return 1;
}
