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
 * Snapshots.  flat_save writes three sections; flat_load uses the vector
 * section in place (borrowed) and copies the rest.  A loaded index holds
 * only the hwm slots the image has (pcap, the slots present, is hwm, below
 * the capacity cap; so loading allocates nothing a damaged capacity could
 * inflate): the first insert needing slot hwm moves to arrays of the same
 * capacity and releases the borrowed range, so growth goes on as without
 * the snapshot.
 * Integers are little-endian; the vector section is the in-memory array
 * (little-endian targets only, asserted below).
 *
 *   0x0120 FLAT_IMG_META, packed, 32 bytes
 *     offset  size  field
 *          0     4  version, 1
 *          4     4  dim
 *          8     4  metric (0 l2, 1 cosine, 2 dot)
 *         12     4  cap: slots allocated (growth continues from here)
 *         16     4  hwm: slots ever used; the other sections hold hwm
 *         20     4  count: live slots
 *         24     4  free_head (0xFFFFFFFF: none)
 *         28     4  reserved, 0
 *
 *   0x0121 FLAT_IMG_VECS, page-aligned: hwm * dim float32, id-major.  A
 *     free slot is zero but for its first word: the next free id (uint32,
 *     0xFFFFFFFF ends the list).  Borrowed on load.
 *
 *   0x0122 FLAT_IMG_LIVE, packed: hwm bytes, 1 live, 0 free.  Copied.
 *
 * Threads.  flat_search only reads; any number may run while no mutation
 * does.  Mutations are exclusive (the server's rwlock).  flat_save only
 * reads. */
#include "engram/flat.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "engram/le.h"

#define FLAT_NONE   UINT32_MAX
#define FLAT_ID_MAX (UINT32_MAX - 2)
#define FLAT_BLOCK  256     /* distances per kernel call: 1 KiB of stack */

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "flat snapshots store the vector array as little-endian words");

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
    uint32_t pcap;          /* slots present in vecs/live: cap, or hwm after a load */
    void *bvec;             /* vecs borrowed from a snapshot (NULL: none) */
    size_t bvec_len;
    img_release_fn *release;/* gives bvec back; set once a load succeeded */
    void *release_ud;
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

static int flat_params_ok(const flat_params *p)
{
    return p->dim >= 1 && p->dim <= VINDEX_DIM_MAX &&
           (p->metric == DIST_L2 || p->metric == DIST_COSINE || p->metric == DIST_DOT);
}

/* An index with no slots. */
static flat *flat_create(const flat_params *p, int *err)
{
    const vindex_allocator *al = p->alloc ? p->alloc : &vindex_default_allocator;
    if (!flat_params_ok(p)) {
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
    return f;
}

flat *flat_new(const flat_params *p, int *err)
{
    flat *f = flat_create(p, err);
    if (f && p->initial_capacity && flat_reserve(f, p->initial_capacity)) {
        flat_free(f);
        if (err) *err = -ENOMEM;
        return NULL;
    }
    return f;
}

int flat_borrows(const flat *f, const void *p) { return p && p == f->bvec; }

/* Free the vector array, or release it if borrowed. */
static void flat_drop_vecs(flat *f)
{
    flat_dealloc(f, f->vecs_raw, f->vecs_bytes);
    if (f->bvec && f->release) f->release(f->release_ud, f->bvec, f->bvec_len);
    f->vecs_raw = NULL;
    f->vecs_bytes = 0;
    f->vecs = NULL;
    f->bvec = NULL;
    f->bvec_len = 0;
}

void flat_free(flat *f)
{
    if (!f) return;
    flat_drop_vecs(f);
    flat_dealloc(f, f->live, f->pcap);
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
    flat_drop_vecs(f);
    flat_dealloc(f, f->live, f->pcap);
    f->vecs_raw = vraw;
    f->vecs_bytes = vb;
    f->vecs = vecs;
    f->live = live;
    f->cap = f->pcap = ncap;
    return 0;
}

int flat_reserve(flat *f, uint32_t n)
{
    if (n <= f->pcap) return 0;     /* pcap <= cap */
    if (n > FLAT_ID_MAX) return VINDEX_EFULL;
    /* Within capacity but past the slots a load left: same capacity. */
    return flat_grow(f, n <= f->cap ? f->cap : vindex_grow_capacity(f->cap, n, FLAT_ID_MAX));
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
size_t flat_memory(const flat *f) { return sizeof *f + f->mem + f->bvec_len; }
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

/* ---- snapshots (the layout is in the header comment) --------------------- */

#define FLAT_IMG_VERSION 1u
#define FLAT_META_LEN    32u

/* One whole section; the sink's first error is returned. */
static int flat_put_section(img_sink *s, uint32_t kind, int page_align, const void *p, size_t n)
{
    int rc = s->begin(s, kind, page_align);
    if (!rc && n) rc = s->write(s, p, n);
    if (!rc) rc = s->end(s);
    return rc;
}

int flat_save(const flat *f, img_sink *s)
{
    uint8_t m[FLAT_META_LEN];
    const uint32_t w[] = { FLAT_IMG_VERSION, f->dim, (uint32_t)f->metric, f->cap, f->hwm,
                           f->count, f->free_head, 0 };
    for (size_t i = 0; i < sizeof w / sizeof *w; i++) le_put32(m + 4 * i, w[i]);
    int rc = flat_put_section(s, FLAT_IMG_META, 0, m, sizeof m);
    /* Free slots are already canonical: flat_delete zeroes them. */
    if (!rc) rc = flat_put_section(s, FLAT_IMG_VECS, 1, f->vecs,
                                   (size_t)f->hwm * f->dim * sizeof(float));
    if (!rc) rc = flat_put_section(s, FLAT_IMG_LIVE, 0, f->live, f->hwm);
    return rc;
}

static int flat_load_check(const flat_params *p, const img_source *src, uint32_t *w,
                           char *err, size_t errlen)
{
    static const uint32_t kinds[] = { FLAT_IMG_META, FLAT_IMG_VECS, FLAT_IMG_LIVE };
    if (src->n != 3) return flat_fail(err, errlen, "flat image: %zu sections, expected 3", src->n);
    for (size_t i = 0; i < 3; i++) {
        if (src->sec[i].kind != kinds[i])
            return flat_fail(err, errlen, "flat image: section %zu is kind 0x%04x, expected 0x%04x",
                             i, src->sec[i].kind, kinds[i]);
        if (src->sec[i].len && !src->sec[i].data)
            return flat_fail(err, errlen, "flat image: section 0x%04x has no data", kinds[i]);
    }
    if (src->sec[0].len != FLAT_META_LEN)
        return flat_fail(err, errlen, "flat image: meta section is %zu bytes, expected %u",
                         src->sec[0].len, FLAT_META_LEN);
    for (size_t i = 0; i < 8; i++) w[i] = le_get32((const uint8_t *)src->sec[0].data + 4 * i);
    uint32_t cap = w[3], hwm = w[4], count = w[5];
    if (w[0] != FLAT_IMG_VERSION)
        return flat_fail(err, errlen, "flat image: version %u, this build reads %u", w[0],
                         FLAT_IMG_VERSION);
    if (w[1] != p->dim)
        return flat_fail(err, errlen, "flat image: dimension is %u, the index expects %u", w[1],
                         p->dim);
    if (w[2] != (uint32_t)p->metric)
        return flat_fail(err, errlen, "flat image: metric is %u, the index expects %u", w[2],
                         (uint32_t)p->metric);
    if (w[7] != 0) return flat_fail(err, errlen, "flat image: reserved meta word not zero");
    if (cap > FLAT_ID_MAX || hwm > cap || count > hwm)
        return flat_fail(err, errlen, "flat image: capacity %u, used %u, live %u out of order",
                         cap, hwm, count);
    uint64_t vb = (uint64_t)hwm * p->dim * sizeof(float);
    if (src->sec[1].len != vb)
        return flat_fail(err, errlen, "flat image: vector section is %zu bytes, %u slots need %llu",
                         src->sec[1].len, hwm, (unsigned long long)vb);
    if (src->sec[2].len != hwm)
        return flat_fail(err, errlen, "flat image: live section is %zu bytes, expected %u",
                         src->sec[2].len, hwm);
    return 0;
}

int flat_load(const flat_params *p, const img_source *src, flat **out, char *err, size_t errlen)
{
    uint32_t w[8];
    int rc;
    *out = NULL;
    if (errlen) err[0] = '\0';
    if (!p || !src || (src->n && !src->sec) || !flat_params_ok(p)) return -EINVAL;
    if ((rc = flat_load_check(p, src, w, err, errlen)) != 0) return rc;
    const img_section *sv = &src->sec[1];
    uint32_t cap = w[3], hwm = w[4];
    flat *f = flat_create(p, &rc);
    if (!f) return rc;
    /* f->release stays NULL until the end: a failed load releases nothing. */
    f->cap = cap;
    if (hwm) {
        if (!(f->live = flat_alloc(f, hwm))) goto nomem;
        f->pcap = hwm;
        if (sv->page_aligned && ((uintptr_t)sv->data & 63) == 0) {
            f->vecs = f->bvec = sv->data;
            f->bvec_len = sv->len;
        } else {
            size_t vb = sv->len + 64;
            if (!(f->vecs_raw = flat_alloc(f, vb))) goto nomem;
            f->vecs_bytes = vb;
            f->vecs = (float *)(((uintptr_t)f->vecs_raw + 63) & ~(uintptr_t)63);
            memcpy(f->vecs, sv->data, sv->len);
        }
    }
    if (hwm) memcpy(f->live, src->sec[2].data, hwm);
    f->hwm = hwm;
    f->count = w[5];
    f->free_head = w[6];
    for (uint32_t i = 0; i < hwm; i++)
        if (f->live[i] > 1) {
            rc = flat_fail(err, errlen, "flat image: live flag %u of slot %u", f->live[i], i);
            goto fail;
        }
    if ((rc = flat_validate(f, err, errlen)) != 0) goto fail;
    f->release = src->release;
    f->release_ud = src->release_ud;
    *out = f;
    return 0;
nomem:
    rc = -ENOMEM;
fail:
    flat_free(f);
    return rc;
}
