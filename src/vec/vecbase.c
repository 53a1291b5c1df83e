/* vecbase.c -- the base of the vector library (vecbase.h): the default
 * allocator, the counted allocator's resizes the engines grow through, the
 * error strings and the corruption formatter.
 *
 * Threads: no state of its own; every function may run on any thread. */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE     /* mremap (the allocator) */
#endif
#include "engram/vecbase.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- allocator ----------------------------------------------------------
 * malloc/free/realloc, except that on Linux a block of VEC_BIG bytes or
 * more (the node and vector arrays of a big index) is a mapping of its own,
 * 2 MB aligned, and grows by mremap to a 2 MB-aligned place: its pages,
 * transparent huge pages included, move without a copy.  (glibc's realloc
 * would mremap too, but its blocks start 16 bytes into a page, and a huge
 * page that does not land on a 2 MB boundary is split and copied: growing
 * 136 MB of vectors took 0.4 s on the test VM, 0.4 ms this way.)  The
 * allocator API passes every block's size, which tells the two kinds
 * apart. */
#if defined(__linux__) && defined(MREMAP_MAYMOVE) && defined(MREMAP_FIXED)
#define VEC_BIG (4u << 20)
#define VEC_BIG_ALIGN ((size_t)2 << 20)

static size_t big_len(size_t n)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    return (n + pg - 1) & ~(pg - 1);
}

/* n bytes (a multiple of the page size) of address space at a 2 MB
 * boundary, with protection prot; NULL if none.  A usable block is marked
 * for huge pages as a whole: the engines ask for them on their arrays
 * (hnsw_advise_huge), and a request covering part of a mapping would split
 * it in two, which mremap cannot move in one piece. */
static void *big_place(size_t n, int prot)
{
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | (prot == PROT_NONE ? MAP_NORESERVE : 0);
    char *r = mmap(NULL, n + VEC_BIG_ALIGN, prot, flags, -1, 0);
    if (r == MAP_FAILED) return NULL;
    char *a = (char *)(((uintptr_t)r + VEC_BIG_ALIGN - 1) & ~(uintptr_t)(VEC_BIG_ALIGN - 1));
    if (a > r) munmap(r, (size_t)(a - r));
    size_t tail = (size_t)(r + n + VEC_BIG_ALIGN - (a + n));
    if (tail) munmap(a + n, tail);
#ifdef MADV_HUGEPAGE
    if (prot != PROT_NONE) (void)madvise(a, n, MADV_HUGEPAGE);
#endif
    return a;
}
#endif

static void *default_alloc(void *ud, size_t n)
{
    (void)ud;
#ifdef VEC_BIG
    if (n >= VEC_BIG) return big_place(big_len(n), PROT_READ | PROT_WRITE);
#endif
    return malloc(n ? n : 1);
}

static void default_free(void *ud, void *p, size_t n)
{
    (void)ud;
#ifdef VEC_BIG
    if (p && n >= VEC_BIG) {
        munmap(p, big_len(n));
        return;
    }
#else
    (void)n;
#endif
    free(p);
}

static void *default_realloc(void *ud, void *p, size_t old, size_t n)
{
#ifdef VEC_BIG
    if (old >= VEC_BIG && n >= VEC_BIG) {
        size_t ol = big_len(old), nl = big_len(n);
        if (nl == ol) return p;
        if (nl < ol) {
            munmap((char *)p + nl, ol - nl);
            return p;
        }
        void *d = big_place(nl, PROT_NONE);     /* where it goes: replaced by mremap */
        if (!d) return NULL;
        void *q = mremap(p, ol, nl, MREMAP_MAYMOVE | MREMAP_FIXED, d);
        if (q != MAP_FAILED) return q;
        munmap(d, nl);
        /* (EFAULT: someone split the mapping after all) copy it, below */
    }
    if (old >= VEC_BIG || n >= VEC_BIG) {     /* one side small (or see above): copy */
        void *q = default_alloc(ud, n);
        if (!q) return NULL;
        memcpy(q, p, old < n ? old : n);
        default_free(ud, p, old);
        return q;
    }
#endif
    (void)ud;
    (void)old;
    return realloc(p, n ? n : 1);
}

const vec_allocator vec_default_allocator = { default_alloc, default_free, NULL, default_realloc };

/* ---- the counted allocator's resizes ------------------------------------ */

void *vec_mem_resize(vec_mem *m, void *p, size_t old, size_t size, size_t keep)
{
    const vec_allocator *al = &m->al;
    void *q;
    if (!p) {
        old = 0;
        q = al->alloc(al->ud, size);
    } else if (al->realloc) {
        q = al->realloc(al->ud, p, old, size);
    } else if ((q = al->alloc(al->ud, size)) != NULL) {
        memcpy(q, p, keep < size ? keep : size);
        al->free(al->ud, p, old);
    }
    if (q) m->bytes = m->bytes - old + size;
    return q;
}

void *vec_mem_resize_vecs(vec_mem *m, void **raw, size_t *bytes, const void *vecs, size_t n,
                          size_t keep)
{
    size_t nb = n + 64;
    size_t from = *raw ? (size_t)((const char *)vecs - (const char *)*raw) : 0;
    char *r = vec_mem_resize(m, *raw, *bytes, nb, from + keep);
    if (!r) return NULL;
    size_t off = (size_t)((((uintptr_t)r + 63) & ~(uintptr_t)63) - (uintptr_t)r);
    if (!*raw) {
        if (keep) memcpy(r + off, vecs, keep);
    } else if (off != from && keep) {
        memmove(r + off, r + from, keep);   /* a copying realloc may shift the alignment */
    }
    *raw = r;
    *bytes = nb;
    return r + off;
}

int vec_format_ok(dist_metric m, quant_type q)
{
    if (m != DIST_L2 && m != DIST_COSINE && m != DIST_DOT) return 0;
    if (q == QUANT_NONE) return 1;
    return (q == QUANT_Q8 || q == QUANT_BIN) && m == DIST_COSINE;
}

void vec_format_init(vec_format *f, dist_metric m, quant_type q, uint32_t dim,
                     const dist_kernels *k)
{
    f->quant = q;
    f->bytes = quant_record_bytes(q, dim);
    switch (q) {
    case QUANT_Q8:
        f->pair = dist_i8_active()->q8_dist;
        f->off = 0.0f;
        f->sgn = 1.0f;
        return;
    case QUANT_BIN:
        f->pair = dist_bin_active()->bin_dist;
        f->off = 0.0f;
        f->sgn = 1.0f;
        return;
    case QUANT_NONE: break;
    }
    f->pair = m == DIST_L2 ? k->l2sq : k->dot;
    f->off = m == DIST_COSINE ? 1.0f : 0.0f;
    f->sgn = m == DIST_L2 ? 1.0f : -1.0f;
}

const char *vec_strerror(int err)
{
    switch (err) {
    case 0: return "ok";
    case -EINVAL: return "invalid argument";
    case -ENOMEM: return "out of memory";
    case VEC_EDIM: return "wrong vector dimension";
    case VEC_EVALUE: return "vector component is NaN or infinite";
    case VEC_ECORRUPT: return "index structure is corrupt";
    case VEC_EFULL: return "index is full";
    case VEC_ESYNTAX: return "syntax error";
    case VEC_ELIMIT: return "too large or too deeply nested";
    default: return "unknown error";
    }
}

int vec_corruptf(char *err, size_t errlen, const char *fmt, ...)
{
    if (errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return VEC_ECORRUPT;
}
