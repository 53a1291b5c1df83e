/* flat.c -- exact k-NN by a linear scan over one contiguous vector array.
 *
 * Storage.  Slot i holds the vector of id i at vecs + i*dim (64-byte aligned
 * base) and a live byte.  A deleted slot goes on a free list (the next-free
 * id is kept in the dead vector's first word) rather than being filled by
 * swapping the last vector in: ids are then stable for the life of an entry,
 * which vindex relies on (its key map, norms and, later, payloads and the
 * FIFO order are all indexed by id, and a swap would have to rewrite them
 * all), and ties are broken by an id the caller can reason about.  The cost
 * is that holes are scanned until reused; under churn the free list refills
 * them first, so the array stays dense.
 *
 * Search.  Distances come a block at a time from the one-to-many kernel
 * (dist_kernels.l2sq_many / dot_many) into a stack buffer; live, accepted
 * entries go through a bounded max-heap of k ordered by (distance, id), held
 * in the caller's output array, so a search allocates nothing.
 *
 * Threads.  flat_search only reads; any number may run while no mutation
 * does.  Mutations are exclusive (the server's rwlock). */
#include "engram/flat.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define FLAT_NONE   UINT32_MAX
#define FLAT_ID_MAX (UINT32_MAX - 2)
#define FLAT_BLOCK  256     /* distances per kernel call: 1 KiB of stack */

struct flat {
    vindex_allocator al;
    size_t mem;
    const dist_kernels *kern;
    dist_many_fn *many;
    float off, sgn;         /* internal distance = off + sgn * many() */
    dist_metric metric;
    uint32_t dim, cap, hwm, count, free_head;
    float *vecs;
    void *vecs_raw;
    size_t vecs_bytes;
    uint8_t *live;
};

static inline int pair_lt(vindex_pair a, vindex_pair b)
{
    return a.dist < b.dist || (a.dist == b.dist && a.id < b.id);
}

static void *flat_alloc(flat *f, size_t n)
{
    void *p = f->al.alloc(f->al.ud, n);
    if (p) f->mem += n;
    return p;
}

static void flat_dealloc(flat *f, void *p, size_t n)
{
    if (!p) return;
    f->al.free(f->al.ud, p, n);
    f->mem -= n;
}

static float *flat_vec(const flat *f, uint32_t id)
{
    return f->vecs + (size_t)id * f->dim;
}

flat *flat_new(const flat_params *p, int *err)
{
    const vindex_allocator *al = p->alloc ? p->alloc : &vindex_default_allocator;
    if (p->dim < 1 || p->dim > VINDEX_DIM_MAX ||
        (p->metric != DIST_L2 && p->metric != DIST_COSINE && p->metric != DIST_DOT)) {
        if (err) *err = -EINVAL;
        return NULL;
    }
    flat *f = al->alloc(al->ud, sizeof *f);
    if (!f) {
        if (err) *err = -ENOMEM;
        return NULL;
    }
    memset(f, 0, sizeof *f);
    f->al = *al;
    f->kern = p->kernels ? p->kernels : dist_active();
    f->metric = p->metric;
    f->many = p->metric == DIST_L2 ? f->kern->l2sq_many : f->kern->dot_many;
    f->off = p->metric == DIST_COSINE ? 1.0f : 0.0f;
    f->sgn = p->metric == DIST_L2 ? 1.0f : -1.0f;
    f->dim = p->dim;
    f->free_head = FLAT_NONE;
    if (p->initial_capacity && flat_reserve(f, p->initial_capacity)) {
        flat_free(f);
        if (err) *err = -ENOMEM;
        return NULL;
    }
    return f;
}

void flat_free(flat *f)
{
    if (!f) return;
    flat_dealloc(f, f->vecs_raw, f->vecs_bytes);
    flat_dealloc(f, f->live, f->cap);
    f->al.free(f->al.ud, f, sizeof *f);
}

static int flat_grow(flat *f, uint32_t ncap)
{
    size_t vb = (size_t)ncap * f->dim * sizeof(float) + 64;
    void *vraw = flat_alloc(f, vb);
    uint8_t *live = flat_alloc(f, ncap);
    if (!vraw || !live) {
        flat_dealloc(f, vraw, vb);
        flat_dealloc(f, live, ncap);
        return -ENOMEM;
    }
    float *vecs = (float *)(((uintptr_t)vraw + 63) & ~(uintptr_t)63);
    if (f->hwm) {
        memcpy(vecs, f->vecs, (size_t)f->hwm * f->dim * sizeof(float));
        memcpy(live, f->live, f->hwm);
    }
    flat_dealloc(f, f->vecs_raw, f->vecs_bytes);
    flat_dealloc(f, f->live, f->cap);
    f->vecs_raw = vraw;
    f->vecs_bytes = vb;
    f->vecs = vecs;
    f->live = live;
    f->cap = ncap;
    return 0;
}

int flat_reserve(flat *f, uint32_t n)
{
    if (n <= f->cap) return 0;
    if (n > FLAT_ID_MAX) return VINDEX_EFULL;
    return flat_grow(f, vindex_grow_capacity(f->cap, n, FLAT_ID_MAX));
}

int flat_insert(flat *f, const float *vec, uint32_t *id_out)
{
    int rc = flat_reserve(f, f->count + 1);
    if (rc) return rc;
    uint32_t id = f->free_head;
    if (id != FLAT_NONE) memcpy(&f->free_head, flat_vec(f, id), sizeof f->free_head);
    else id = f->hwm++;
    memcpy(flat_vec(f, id), vec, (size_t)f->dim * sizeof(float));
    f->live[id] = 1;
    f->count++;
    *id_out = id;
    return 0;
}

int flat_update(flat *f, uint32_t id, const float *vec)
{
    if (!flat_is_live(f, id)) return -EINVAL;
    memcpy(flat_vec(f, id), vec, (size_t)f->dim * sizeof(float));
    return 0;
}

int flat_delete(flat *f, uint32_t id)
{
    if (!flat_is_live(f, id)) return -EINVAL;
    float *v = flat_vec(f, id);
    /* Zeroed so a scanned hole costs a plain (finite) distance. */
    memset(v, 0, (size_t)f->dim * sizeof(float));
    memcpy(v, &f->free_head, sizeof f->free_head);
    f->free_head = id;
    f->live[id] = 0;
    f->count--;
    return 0;
}

int flat_is_live(const flat *f, uint32_t id) { return id < f->hwm && f->live[id]; }

const float *flat_vector(const flat *f, uint32_t id)
{
    return flat_is_live(f, id) ? flat_vec(f, id) : NULL;
}

uint32_t flat_count(const flat *f) { return f->count; }
uint32_t flat_capacity(const flat *f) { return f->cap; }
size_t flat_memory(const flat *f) { return sizeof *f + f->mem; }
const dist_kernels *flat_kernels(const flat *f) { return f->kern; }

/* Bounded max-heap of the k best (dist, id) so far, in out[0..*n). */
static void topk_offer(vindex_pair *hp, uint32_t *n, uint32_t k, vindex_pair x)
{
    uint32_t i;
    if (*n < k) {
        i = (*n)++;
        while (i > 0 && pair_lt(hp[(i - 1) / 2], x)) {
            hp[i] = hp[(i - 1) / 2];
            i = (i - 1) / 2;
        }
        hp[i] = x;
        return;
    }
    if (!pair_lt(x, hp[0])) return;
    for (i = 0;;) {
        uint32_t c = 2 * i + 1;
        if (c >= k) break;
        if (c + 1 < k && pair_lt(hp[c], hp[c + 1])) c++;
        if (!pair_lt(x, hp[c])) break;
        hp[i] = hp[c];
        i = c;
    }
    hp[i] = x;
}

static void topk_sort(vindex_pair *a, uint32_t n)
{
    /* Heap-sort the max-heap: repeatedly move the largest to the end. */
    for (uint32_t m = n; m > 1; m--) {
        vindex_pair last = a[m - 1];
        a[m - 1] = a[0];
        uint32_t i = 0;
        for (;;) {
            uint32_t c = 2 * i + 1;
            if (c >= m - 1) break;
            if (c + 1 < m - 1 && pair_lt(a[c], a[c + 1])) c++;
            if (!pair_lt(last, a[c])) break;
            a[i] = a[c];
            i = c;
        }
        a[i] = last;
    }
}

int flat_search(const flat *f, const float *q, uint32_t k,
                vindex_filter_fn *accept, void *ud,
                vindex_pair *out, uint32_t *nout)
{
    float d[FLAT_BLOCK];
    uint32_t n = 0;
    *nout = 0;
    if (k == 0 || f->count == 0) return 0;
    for (uint32_t base = 0; base < f->hwm; base += FLAT_BLOCK) {
        uint32_t nb = f->hwm - base < FLAT_BLOCK ? f->hwm - base : FLAT_BLOCK;
        f->many(q, flat_vec(f, base), nb, f->dim, f->dim, d);
        for (uint32_t i = 0; i < nb; i++) {
            uint32_t id = base + i;
            if (!f->live[id]) continue;
            vindex_pair x = { f->off + f->sgn * d[i], id };
            if (n == k && !pair_lt(x, out[0])) continue;   /* the common case */
            if (accept && !accept(ud, id)) continue;
            topk_offer(out, &n, k, x);
        }
    }
    topk_sort(out, n);
    *nout = n;
    return 0;
}

__attribute__((format(printf, 3, 4)))
static int flat_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return VINDEX_ECORRUPT;
}

int flat_validate(const flat *f, char *err, size_t errlen)
{
    uint32_t live = 0, nfree = 0;
    for (uint32_t i = 0; i < f->hwm; i++) live += f->live[i] != 0;
    if (live != f->count) return flat_fail(err, errlen, "count %u but %u live slots", f->count, live);
    for (uint32_t id = f->free_head; id != FLAT_NONE;) {
        if (id >= f->hwm || f->live[id] || ++nfree > f->hwm - live)
            return flat_fail(err, errlen, "free list broken at %u", id);
        memcpy(&id, flat_vec(f, id), sizeof id);
    }
    if (nfree != f->hwm - live)
        return flat_fail(err, errlen, "free list holds %u of %u free slots", nfree, f->hwm - live);
    return 0;
}
