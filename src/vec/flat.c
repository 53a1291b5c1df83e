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
 * Search.  A search is a scan of one id range [lo, hi): flat_search is the
 * range [0, hwm), and a caller with threads splits [0, hwm) into disjoint
 * ranges, searches each on its own thread and joins the sorted answers
 * with flat_merge (ids are disjoint, so the join is exact, ties by id).
 * The scan is bound by memory bandwidth once the vectors outgrow the
 * caches (a 384-d vector is 1.5 KB read for ~100 flops), so the loop's only
 * jobs are to keep the kernel streaming and to cost nothing else:
 *   - Distances come FLAT_BLOCK at a time from the one-to-many kernel
 *     (dist_kernels.l2sq_many / dot_many), which reads the block's vectors
 *     front to back (hardware prefetchers follow; the kernel prefetches the
 *     next group itself), into a stack buffer.
 *   - Free slots: one memchr over the block's live bytes; a block without
 *     a hole (the usual case: inserts refill holes first) is one kernel
 *     call with no per-entry live test.  A block with holes is scanned run
 *     by run, so a hole costs a byte test rather than a vector read; gaps
 *     under FLAT_BRIDGE_BYTES of vectors are read through instead (a
 *     kernel call costs more than it would skip) and then tested per entry.
 *   - Selection: a bounded max-heap of k ordered by (distance, id), held in
 *     the caller's output array, so a search allocates nothing.  Once it is
 *     full, its worst distance is a threshold; eight distances at a time are
 *     compared with it in compiler vectors and only a group holding a
 *     better one goes near the heap.  For k small next to the range that is
 *     almost never: the selection stays a few percent of the kernel's time.
 *   Measured with bench/bench_flat.c (and bench/flat.sh against numpy).
 *
 * Snapshots.  flat_save writes three sections; flat_load uses the vector
 * section in place (borrowed) and copies the rest.  A loaded index holds
 * only the hwm slots the image has (pcap, the slots present, is hwm, below
 * the capacity cap; so loading allocates nothing a damaged capacity could
 * inflate): the first insert needing slot hwm moves to arrays of the same
 * capacity and releases the borrowed range, so growth goes on as without
 * the snapshot.  That capacity is trusted only as far as growth explains
 * it: past 2^20 slots, at most twice the slots used (as hnsw.c).
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
 * Threads.  flat_search, flat_search_range and flat_save only read; any
 * number may run, on any threads, while no mutation does.  Mutations are
 * exclusive (the server's rwlock).  flat_merge touches no index. */
#include "engram/flat.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engram/le.h"

#define FLAT_NONE   UINT32_MAX
#define FLAT_ID_MAX (UINT32_MAX - 2)
/* Capacities up to this load whatever the slots used (flat_load_check). */
#define FLAT_LOAD_FREE_CAP (1u << 20)
#define FLAT_BLOCK  256     /* distances per kernel call: 1 KiB of stack */
#define FLAT_BRIDGE_BYTES 512 /* free gaps smaller than this are read through */
/* Software prefetch (the scan loop's header comment says why and when). */
#define FLAT_PF_MIN_BYTES (16u << 20)   /* ranges smaller than this: none */
#define FLAT_PF_AHEAD     12288u        /* bytes ahead of the kernel call */
#define FLAT_PF_CHUNK     12288u        /* bytes per kernel call meanwhile */

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "flat snapshots store the vector array as little-endian words");

struct flat {
    vec_mem mem;            /* allocator and bytes held through it */
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

static float *flat_vec(const flat *f, uint32_t id)
{
    return f->vecs + (size_t)id * f->dim;
}

static int flat_params_ok(const flat_params *p)
{
    return p->dim >= 1 && p->dim <= VEC_DIM_MAX &&
           (p->metric == DIST_L2 || p->metric == DIST_COSINE || p->metric == DIST_DOT);
}

/* An index with no slots. */
static flat *flat_create(const flat_params *p, int *err)
{
    const vec_allocator *al = p->alloc ? p->alloc : &vec_default_allocator;
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
    vec_mem_init(&f->mem, al);
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
    vec_mem_free(&f->mem, f->vecs_raw, f->vecs_bytes);
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
    vec_mem_free(&f->mem, f->live, f->pcap);
    f->mem.al.free(f->mem.al.ud, f, sizeof *f);
}

/* Make the arrays ncap >= cap slots long, in place where the allocator
 * can (see hnsw_grow).  The vectors first (their size is kept with them),
 * then the live flags (pcap bytes until the end): a failure leaves the
 * index as it was. */
static int flat_grow(flat *f, uint32_t ncap)
{
    const size_t vb = (size_t)f->dim * sizeof(float);
    void *nv = vec_mem_resize_vecs(&f->mem, &f->vecs_raw, &f->vecs_bytes, f->vecs,
                                   (size_t)ncap * vb, (size_t)f->hwm * vb);
    if (!nv) return -ENOMEM;
    f->vecs = nv;
    if (f->bvec) {      /* copied out of the snapshot: give the range back */
        if (f->release) f->release(f->release_ud, f->bvec, f->bvec_len);
        f->bvec = NULL;
        f->bvec_len = 0;
    }
    uint8_t *live = vec_mem_resize(&f->mem, f->live, f->pcap, ncap, f->hwm);
    if (!live) return -ENOMEM;
    f->live = live;
    f->cap = f->pcap = ncap;
    return 0;
}

int flat_reserve(flat *f, uint32_t n)
{
    if (n <= f->pcap) return 0;     /* pcap <= cap */
    if (n > FLAT_ID_MAX) return VEC_EFULL;
    /* Within capacity but past the slots a load left: same capacity. */
    return flat_grow(f, n <= f->cap ? f->cap : vec_grow_capacity(f->cap, n, FLAT_ID_MAX));
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
uint32_t flat_used(const flat *f) { return f->hwm; }
uint32_t flat_capacity(const flat *f) { return f->cap; }
size_t flat_memory(const flat *f) { return sizeof *f + f->mem.bytes + f->bvec_len; }
const dist_kernels *flat_kernels(const flat *f) { return f->kern; }

/* Bounded max-heap of the k best (dist, id) so far, in out[0..*n). */
static void topk_offer(vec_pair *hp, uint32_t *n, uint32_t k, vec_pair x)
{
    uint32_t i;
    if (*n < k) {
        i = (*n)++;
        while (i > 0 && vec_pair_lt(hp[(i - 1) / 2], x)) {
            hp[i] = hp[(i - 1) / 2];
            i = (i - 1) / 2;
        }
        hp[i] = x;
        return;
    }
    if (!vec_pair_lt(x, hp[0])) return;
    for (i = 0;;) {
        uint32_t c = 2 * i + 1;
        if (c >= k) break;
        if (c + 1 < k && vec_pair_lt(hp[c], hp[c + 1])) c++;
        if (!vec_pair_lt(x, hp[c])) break;
        hp[i] = hp[c];
        i = c;
    }
    hp[i] = x;
}

static void topk_sort(vec_pair *a, uint32_t n)
{
    /* Heap-sort the max-heap: repeatedly move the largest to the end. */
    for (uint32_t m = n; m > 1; m--) {
        vec_pair last = a[m - 1];
        a[m - 1] = a[0];
        uint32_t i = 0;
        for (;;) {
            uint32_t c = 2 * i + 1;
            if (c >= m - 1) break;
            if (c + 1 < m - 1 && vec_pair_lt(a[c], a[c + 1])) c++;
            if (!vec_pair_lt(last, a[c])) break;
            a[i] = a[c];
            i = c;
        }
        a[i] = last;
    }
}

/* The search state a scan carries from run to run. */
typedef struct flat_scan {
    vec_pair *hp;        /* the caller's out: a max-heap of n <= k */
    uint32_t n, k;
    float thr;              /* hp[0].dist once n == k */
    vec_filter_fn *accept;
    void *ud;
    const char *pf_end;     /* end of the range's vectors; NULL: no prefetch */
    uint32_t pf_chunk;      /* vectors per kernel call when prefetching */
} flat_scan;

static void flat_offer(const flat *f, flat_scan *s, float x, uint32_t id, int check_live)
{
    if (s->n == s->k && !(x < s->thr)) return;
    if (check_live && !f->live[id]) return;
    if (s->accept && !s->accept(s->ud, id)) return;
    topk_offer(s->hp, &s->n, s->k, (vec_pair){ x, id });
    if (s->n == s->k) s->thr = s->hp[0].dist;
}

/* Generic (compiler) vectors: SSE2 on any x86-64, NEON on aarch64, plain
 * code elsewhere; no ISA flags, so this file stays safe on every CPU. */
typedef float flat_v4f __attribute__((vector_size(16)));
typedef int32_t flat_v4i __attribute__((vector_size(16)));

/* d[i] = kernel(q, vector base + i) for i < nb.  In a range that streams
 * from memory the kernel runs a chunk at a time, each call preceded by
 * prefetches of the lines FLAT_PF_AHEAD further on (never past the range:
 * in a split search the next bytes are another thread's).  The kernel's own
 * prefetch runs one group of four vectors ahead, which on its own leaves a
 * core short of misses in flight: measured on the 2-core EPYC VM this was
 * tuned on (bench_flat, 384-d), this lifted one thread from ~26 to ~30 GB/s
 * on 1.5 GB with 4 KiB pages and ~8% with huge pages.  On data the caches
 * hold, the extra prefetches only take load slots from the kernel (25-30%
 * slower at 3 MB, still slower at 12 MB, ahead from 24 MB on): hence
 * FLAT_PF_MIN_BYTES, a guess at "bigger than a core's share of L3". */
static void flat_distances(const flat *f, const float *q, uint32_t base, uint32_t nb,
                           float *d, const flat_scan *s)
{
    if (!s->pf_end) {
        f->many(q, flat_vec(f, base), nb, f->dim, f->dim, d);
        return;
    }
    const size_t vb = (size_t)f->dim * sizeof(float);
    for (uint32_t c = 0; c < nb; c += s->pf_chunk) {
        uint32_t cn = nb - c < s->pf_chunk ? nb - c : s->pf_chunk;
        const char *p = (const char *)flat_vec(f, base + c) + FLAT_PF_AHEAD;
        const char *e = p + cn * vb;
        if (e > s->pf_end) e = s->pf_end;
        for (; p < e; p += 64) __builtin_prefetch(p, 0, 3);
        f->many(q, flat_vec(f, base + c), cn, f->dim, f->dim, d + c);
    }
}

/* Distances of slots [base, base+nb) offered to the heap; check_live says
 * the span holds free slots (bridged gaps) to drop.  Ids rise through a
 * scan, so a candidate that only ties the heap's worst loses on id: the
 * strict `<` against thr is the whole (distance, id) order.  Once the heap
 * is full almost every entry loses, so eight at a time are turned into
 * internal distances and tested together, and only a group holding a
 * candidate is offered one by one (the same values: the test is exact). */
static void flat_scan_run(const flat *f, const float *q, uint32_t base, uint32_t nb,
                          int check_live, float *d, flat_scan *s)
{
    const float off = f->off, sgn = f->sgn;
    uint32_t i = 0;
    flat_distances(f, q, base, nb, d, s);
    for (; i < nb && s->n < s->k; i++) flat_offer(f, s, off + sgn * d[i], base + i, check_live);
    for (; i + 8 <= nb; i += 8) {
        flat_v4f a, b;
        memcpy(&a, d + i, sizeof a);
        memcpy(&b, d + i + 4, sizeof b);
        a = off + sgn * a;
        b = off + sgn * b;
        flat_v4i hit = (a < s->thr) | (b < s->thr);
        if (!(hit[0] | hit[1] | hit[2] | hit[3])) continue;
        memcpy(d + i, &a, sizeof a);
        memcpy(d + i + 4, &b, sizeof b);
        for (uint32_t j = i; j < i + 8; j++)     /* the heap stays full */
            if (d[j] < s->thr) flat_offer(f, s, d[j], base + j, check_live);
    }
    for (; i < nb; i++) flat_offer(f, s, off + sgn * d[i], base + i, check_live);
}

/* One block [base, end).  With no free slot in it (the usual case: the
 * free list refills holes first) it is one kernel call after one memchr.
 * Otherwise the kernel runs over the live runs, so a free slot costs a byte
 * test rather than a vector read -- except that gaps shorter than `bridge`
 * slots are read through (their offers dropped by the live test): for short
 * vectors another kernel call costs more than the bytes it would skip. */
static void flat_scan_block(const flat *f, const float *q, uint32_t base, uint32_t end,
                            uint32_t bridge, float *d, flat_scan *s)
{
    const uint8_t *live = f->live;
    if (!memchr(live + base, 0, end - base)) {
        flat_scan_run(f, q, base, end - base, 0, d, s);
        return;
    }
    for (uint32_t i = base;;) {
        while (i < end && !live[i]) i++;
        if (i == end) return;
        uint32_t last = i, holes = 0;       /* last live slot of the run */
        for (uint32_t j = i + 1; j < end; j++) {
            if (!live[j]) {
                if (j - last > bridge) break;   /* the gap outgrew the bridge */
                continue;
            }
            holes += j - last - 1;
            last = j;
        }
        flat_scan_run(f, q, i, last + 1 - i, holes != 0, d, s);
        i = last + 1;
    }
}

int flat_search_range(const flat *f, const float *q, uint32_t k, uint32_t lo, uint32_t hi,
                      vec_filter_fn *accept, void *ud, vec_pair *out, uint32_t *nout)
{
    float d[FLAT_BLOCK];
    const size_t vb = (size_t)f->dim * sizeof(float);
    flat_scan s = { out, 0, k, INFINITY, accept, ud, NULL, 0 };
    /* Bridge a gap when its vectors are under FLAT_BRIDGE_BYTES. */
    uint32_t bridge = (uint32_t)(FLAT_BRIDGE_BYTES / vb);
    *nout = 0;
    if (hi > f->hwm) hi = f->hwm;
    if (k == 0 || f->count == 0 || lo >= hi) return 0;
    if ((size_t)(hi - lo) * vb >= FLAT_PF_MIN_BYTES) {
        /* Whole groups of four (the kernels' unit), at least one. */
        size_t c = (FLAT_PF_CHUNK / vb) & ~(size_t)3;
        s.pf_chunk = c < 4 ? 4 : c > FLAT_BLOCK ? FLAT_BLOCK : (uint32_t)c;
        s.pf_end = (const char *)flat_vec(f, hi);
    }
    for (uint32_t base = lo; base < hi;) {
        uint32_t end = hi - base < FLAT_BLOCK ? hi : base + FLAT_BLOCK;
        flat_scan_block(f, q, base, end, bridge, d, &s);
        base = end;
    }
    topk_sort(out, s.n);
    *nout = s.n;
    return 0;
}

int flat_search(const flat *f, const float *q, uint32_t k,
                vec_filter_fn *accept, void *ud,
                vec_pair *out, uint32_t *nout)
{
    return flat_search_range(f, q, k, 0, f->hwm, accept, ud, out, nout);
}

void flat_merge(const vec_pair *const *parts, const uint32_t *nparts, int count,
                uint32_t k, vec_pair *out, uint32_t *nout)
{
    uint32_t at[FLAT_MERGE_MAX] = { 0 }, n = 0;
    assert(count >= 0 && count <= FLAT_MERGE_MAX);
    /* A linear pick of the least head: parts are few (one per worker). */
    while (n < k) {
        int best = -1;
        for (int p = 0; p < count; p++)
            if (at[p] < nparts[p] &&
                (best < 0 || vec_pair_lt(parts[p][at[p]], parts[best][at[best]])))
                best = p;
        if (best < 0) break;
        out[n++] = parts[best][at[best]++];
    }
    *nout = n;
}


int flat_validate(const flat *f, char *err, size_t errlen)
{
    uint32_t live = 0, nfree = 0;
    for (uint32_t i = 0; i < f->hwm; i++) live += f->live[i] != 0;
    if (live != f->count) return vec_corruptf(err, errlen, "count %u but %u live slots", f->count, live);
    for (uint32_t id = f->free_head; id != FLAT_NONE;) {
        if (id >= f->hwm || f->live[id] || ++nfree > f->hwm - live)
            return vec_corruptf(err, errlen, "free list broken at %u", id);
        memcpy(&id, flat_vec(f, id), sizeof id);
    }
    if (nfree != f->hwm - live)
        return vec_corruptf(err, errlen, "free list holds %u of %u free slots", nfree, f->hwm - live);
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
    if (src->n != 3) return vec_corruptf(err, errlen, "flat image: %zu sections, expected 3", src->n);
    for (size_t i = 0; i < 3; i++) {
        if (src->sec[i].kind != kinds[i])
            return vec_corruptf(err, errlen, "flat image: section %zu is kind 0x%04x, expected 0x%04x",
                             i, src->sec[i].kind, kinds[i]);
        if (src->sec[i].len && !src->sec[i].data)
            return vec_corruptf(err, errlen, "flat image: section 0x%04x has no data", kinds[i]);
    }
    if (src->sec[0].len != FLAT_META_LEN)
        return vec_corruptf(err, errlen, "flat image: meta section is %zu bytes, expected %u",
                         src->sec[0].len, FLAT_META_LEN);
    for (size_t i = 0; i < 8; i++) w[i] = le_get32((const uint8_t *)src->sec[0].data + 4 * i);
    uint32_t cap = w[3], hwm = w[4], count = w[5];
    if (w[0] != FLAT_IMG_VERSION)
        return vec_corruptf(err, errlen, "flat image: version %u, this build reads %u", w[0],
                         FLAT_IMG_VERSION);
    if (w[1] != p->dim)
        return vec_corruptf(err, errlen, "flat image: dimension is %u, the index expects %u", w[1],
                         p->dim);
    if (w[2] != (uint32_t)p->metric)
        return vec_corruptf(err, errlen, "flat image: metric is %u, the index expects %u", w[2],
                         (uint32_t)p->metric);
    if (w[7] != 0) return vec_corruptf(err, errlen, "flat image: reserved meta word not zero");
    if (cap > FLAT_ID_MAX || hwm > cap || count > hwm)
        return vec_corruptf(err, errlen, "flat image: capacity %u, used %u, live %u out of order",
                         cap, hwm, count);
    /* Loading allocates only the hwm slots, but the first insert after it
     * sizes the index's per-id arrays (vindex_reserve_new) to the capacity,
     * which only the image states: a forged one made that insert allocate
     * tens of gigabytes (found by tests/fuzz/fuzz_snapshot).  As in
     * hnsw_load: growth (1.5x) never leaves more than about half the slots
     * unused, so past FLAT_LOAD_FREE_CAP slots a capacity over twice the
     * slots used is refused. */
    if (cap > FLAT_LOAD_FREE_CAP && cap > 2ull * hwm + 16)
        return vec_corruptf(err, errlen, "flat image: capacity %u for %u slots used: more than "
                            "growth ever leaves", cap, hwm);
    uint64_t vb = (uint64_t)hwm * p->dim * sizeof(float);
    if (src->sec[1].len != vb)
        return vec_corruptf(err, errlen, "flat image: vector section is %zu bytes, %u slots need %llu",
                         src->sec[1].len, hwm, (unsigned long long)vb);
    if (src->sec[2].len != hwm)
        return vec_corruptf(err, errlen, "flat image: live section is %zu bytes, expected %u",
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
        if (!(f->live = vec_mem_alloc(&f->mem, hwm))) goto nomem;
        f->pcap = hwm;
        if (sv->page_aligned && ((uintptr_t)sv->data & 63) == 0) {
            f->vecs = f->bvec = sv->data;
            f->bvec_len = sv->len;
        } else {
            size_t vb = sv->len + 64;
            if (!(f->vecs_raw = vec_mem_alloc(&f->mem, vb))) goto nomem;
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
            rc = vec_corruptf(err, errlen, "flat image: live flag %u of slot %u", f->live[i], i);
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
