/* hnsw.c -- Hierarchical Navigable Small World graph (Malkov & Yashunin,
 * arXiv:1603.09320) on dense uint32 ids, with real deletion.
 *
 * What it owns.  Vectors (prepared by the caller: normalised for cosine),
 * link lists for every layer, the entry point, a free list of ids, reverse
 * hints, and the write-side scratch used by inserts and deletes.  Keys live
 * in vindex.c.
 *
 * Layout.  Vectors are one 64-byte aligned array of records, one per id
 * (vb bytes: dim floats, or a quantised record of quant.h; the distance
 * call and its scaling come from vecbase.h's vec_format), apart
 * from the links: a search reads a node's links when it expands the node
 * and a neighbour's vector when it scores it, never both for the same node
 * at once, so side-by-side arrays cost no locality and keep every vector on
 * its natural alignment (a 128-d vector is exactly 8 cache lines).  Layer 0
 * is one flat array of fixed records of s0 = 2 + M0 words:
 *     w[0]  link count (bits 0-7) | hint count nh (8-15) | level (16-23) |
 *           HNSW_FREE (bit 24)
 *     w[1]  in-degree on layer 0 (how many lists hold this id)
 *     w[2 .. 2+M0)  out-links from the front, reverse hints from the back
 * A node of level L >= 1 also has one block of L upper lists of s1 = 2 + M
 * words (same shape, count/nh in w[0]), pointed to from up[id].  A free
 * slot has HNSW_FREE set and the next free id in w[2].  The two big arrays
 * ask for transparent huge pages: searches touch a few lines in many pages.
 * Per vector: vb (4*dim float32, about dim + 4 Q8, dim/8 BIN) + 4*M0 + 8
 * (layer 0) + 8 (up pointer) + ~5 (upper lists) + 2 (visited marks of the
 * write context) + ~2.7 (overflow hints).
 *
 * Building.  Standard HNSW: a level drawn as floor(-ln U / ln M) from the
 * index's own seeded RNG (same seed + same operations = same graph, see
 * hnsw_digest), greedy descent on the upper layers, a beam of
 * ef_construction below, neighbours chosen by the paper's heuristic (Alg.
 * 4), links made in both directions, an overfull list re-pruned with the
 * same heuristic.  An insert is two phases: a read-only planning phase that
 * may allocate (search heaps) and so may fail, then a commit phase that
 * writes only into memory reserved beforehand and cannot fail.  That is how
 * a failed insert leaves the graph untouched.
 *
 * Deletion.  Links are directed and pruning drops back-links, so "who
 * points at x" cannot be read from x's list.  Every link change therefore
 * goes through link_added/link_removed, which keep per node and layer an
 * exact in-degree and a set of reverse hints: the ids that link here one
 * way.  Hints live in the free tail of the node's own list (average degree
 * is about half of M0), and when that is full in a fixed-size per-layer
 * overflow table.  A delete, per layer of the node: drops its out-links
 * (the reciprocal ones become hints), then repairs every node its hints
 * name, re-choosing that node's list with the heuristic from (its remaining
 * links + the deleted node's links) and filling back to its former degree.
 * Only when a hint was dropped for room (the overflow table is at its
 * budget; hubs after heavy churn) does the in-degree say in-links are still
 * missing; then the 2-hop neighbourhood, a beam search around the node,
 * and at last a scan of the layer find them (hnsw_stats counts how often).
 * The entry point moves to a node on the highest remaining layer; the id
 * goes on the free list and the next insert reuses it, so an index under
 * churn does not grow.
 *
 * Reachability.  Whenever a node's in-degree on a layer drops to zero it
 * is linked in again from a node a search from the entry point reaches
 * (hnsw_fix_orphan).  A prune can still, rarely, cut off a group whose
 * members only link to each other (seen with inner product in few
 * dimensions), so hnsw_reconnect walks layer 0 every count/4 + 256
 * mutations and links such groups back in.
 *
 * Searching.  Visited marks with a generation counter and both heaps live
 * in the caller's hnsw_search_ctx.  The hot loop collects a node's
 * unvisited neighbours, prefetches vectors a few ahead of the one being
 * scored and the next candidate's links, and keeps everything in locals.
 *
 * Filtered searches.  A beam of ef *accepted* nodes at selectivity s walks
 * the region of the ef/s nearest nodes: a 10% filter at ef 40 did the work
 * of an unfiltered ef 400, 6-9 times the unfiltered query.  Yet what makes
 * a beam search find the true neighbours is how densely it explores around
 * them, and a filtered walk explores densely by construction: every
 * rejected node on the way is scored and expanded too.  So the filtered
 * beam keeps max(k, ef/2) accepted nodes and, so that a permissive filter
 * never walks less than an unfiltered search would, the 2*ef nearest
 * scored nodes of any kind (a second heap); the walk closes on the larger
 * of the two bounds.  Measured on siftsmall and MNIST at 1-70%
 * (bench/bench_fsearch.c, docs/benchmarks.md "Filtered VSIM"): a third
 * to two fifths fewer distances at 5-30%, the same walk at 1% (FILTER-EF
 * ends it) and at 50%, recall@10 within 0.003 of the old beam's
 * everywhere.  The filter is tested only for a node closer than the
 * accepted beam's bound, once per node.
 *
 * Snapshots.  hnsw_save writes everything the graph's future depends on
 * (not only its present): the RNG state, the free list, the capacity (it
 * decides when the arrays and the overflow tables grow, and so whether a
 * hint is dropped), the overflow tables slot by slot (probe order decides
 * the order of repairs), the sweep debt and the counters.  hnsw_load checks
 * everything a later mutation trusts -- bounds, levels, in-degrees, no
 * link twice, every reverse hint a real one-way link named once (see
 * "load checks") -- in a few passes over the arrays plus one read per hint
 * (measured, 200,000 x 32-d, M = 16, 2.4 hints a node, 66,000 of them in
 * the overflow table: 0.022 s without the hint checks, 0.050 s with them;
 * with 775,000 in the table and none dropped, 0.066 s and 0.11 s), then
 * uses the vector and layer-0 arrays in place.  hnsw_validate (0.4 s for
 * the same graph) adds only reachability, which a graph recovers by
 * itself (hnsw_reconnect), and is left to tests and to the operator.  A
 * loaded graph's arrays hold only the hwm slots the image has (pcap, the
 * slots present, is hwm, below the capacity cap): the first insert that
 * needs slot hwm moves them into allocated arrays of the same capacity
 * (hnsw_grow) and releases the borrowed ranges, so growth continues as it
 * would have without the snapshot.  Writes to a borrowed array before
 * that land in the source's copy-on-write mapping.
 *
 * Snapshot sections, in order.  Integers little-endian; the array sections
 * are the in-memory words (so this file only builds for little-endian
 * targets, see the static assertion below).  Unused words (link slots
 * between the links and the hints, free records past word 2, vectors of
 * free ids) are written as zero, so a snapshot never carries stale heap
 * bytes and a loaded graph saves byte-identical sections.
 *
 *   0x0110 HNSW_IMG_META, packed, 104 bytes
 *     offset  size  field
 *          0     4  version, 1
 *          4     4  dim
 *          8     4  metric (0 l2, 1 cosine, 2 dot)
 *         12     4  M
 *         16     4  ef_construction
 *         20     4  ef_search
 *         24     4  cap: slots allocated (growth continues from here)
 *         28     4  hwm: slots ever used; the array sections hold hwm
 *         32     4  count: live nodes
 *         36     4  free_head (0xFFFFFFFF: none); the chain runs through
 *                   word 2 of free layer-0 records
 *         40     4  entry point (0xFFFFFFFF when empty)
 *         44     4  max_level, signed (-1 when empty)
 *         48     4  sweep_debt: mutations since the last reconnect
 *         52     4  quantisation (quant.h: 0 float32, 1 Q8, 2 BIN; was
 *                   "reserved, 0", so older images are float32)
 *         56     8  rng: the splitmix64 level-draw state
 *         64     8  hints_dropped
 *         72     8  orphans_fixed
 *         80     8  reconnected
 *         88     8  inlink_misses
 *         96     8  inlink_scans
 *
 *   0x0111 HNSW_IMG_VECS, page-aligned: hwm records (dim float32, or the
 *     quantised record quant.h lays out), id-major (zeros for free ids).
 *     Borrowed on load.
 *
 *   0x0112 HNSW_IMG_L0, page-aligned: hwm records of s0 = 2 + 2M uint32
 *     words, the layer-0 record described under Layout: word 0 = link
 *     count | hint count << 8 | level << 16 (a free id: exactly 1 << 24),
 *     word 1 = in-degree (free: 0), words 2.. = links from the front and
 *     hints from the back (free: word 2 = next free id).  Borrowed on load.
 *
 *   0x0113 HNSW_IMG_UPPER, packed: for every live id of level L >= 1, in
 *     id order, its L lists of s1 = 2 + M words (layer 1 first), each
 *     shaped like a layer-0 list with no level bits.  Copied on load, one
 *     allocation per node (they are freed one by one on delete).
 *
 *   0x0114 HNSW_IMG_HINTS, packed: for each layer 0..HNSW_MAX_LEVEL,
 *          0     4  table size (slots): 0 if cap is 0, else exactly what
 *                   xh_size_for gives for cap
 *          4     4  n: entries, n * 4 <= size * 3
 *          8  12*n  entries in ascending slot order: slot, target, source
 *     Copied on load into tables of the same size, each entry at its slot.
 *
 * Threads.  Any number of concurrent hnsw_search calls, each with its own
 * hnsw_search_ctx, while no insert/update/delete runs: searches never write
 * index state.  Inserts, updates, deletes and hnsw_reconnect are exclusive
 * (the server holds a rwlock); they use the write-side scratch h->w and the
 * fixed scratch arrays.  hnsw_save reads only, like a search. */
#include "engram/hnsw.h"

/* Capacities up to this load whatever the slots used (hnsw_load_meta). */
#define HNSW_LOAD_FREE_CAP (1u << 20)

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engram/check.h"
#include "engram/img_out.h"
#include "engram/le.h"

#define HNSW_FREE        (1u << 24)
#define HNSW_LEVEL_SHIFT 16
#define HNSW_LINKS       2          /* links start at word 2 of every list */
#define HNSW_ID_MAX      (UINT32_MAX - 2)

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "hnsw snapshots store the in-memory arrays as little-endian words");

/* Keep-pruned-connections (paper, Alg. 4) per use, as measured on siftsmall
 * and MNIST against hnswlib.  A new node tops its M links up from the
 * pruned candidates: higher recall at the same ef for about the same cost
 * per query (a clear win at low ef, neutral above).  Overflow re-prunes
 * keep only the diverse set: filling those too slowed building by a fifth
 * for no recall gain at equal cost.  Repairs after a delete fill back to
 * the node's former degree: a node that just lost a neighbour needs links
 * more than diversity. */
#ifndef HNSW_FILL_NEW
#define HNSW_FILL_NEW 1
#endif
#ifndef HNSW_FILL_PRUNE
#define HNSW_FILL_PRUNE 0
#endif
#define HNSW_FILL_REPAIR 1

/* Neighbour vectors prefetched ahead of the one being scored; and whether
 * to prefetch the link list of the next node to expand. */
#ifndef HNSW_PREFETCH_LINKS
#define HNSW_PREFETCH_LINKS 1
#endif
#ifndef HNSW_PREFETCH_AHEAD
#define HNSW_PREFETCH_AHEAD 4
#endif

struct hnsw_search_ctx {
    vec_mem mem;
    uint16_t *mark;             /* visited: mark[id] == gen */
    uint32_t mcap;
    uint16_t gen;
    vec_pair *cand;          /* min-heap of nodes to expand */
    uint32_t ncand, ccap;
    vec_pair *res;           /* max-heap of the best ef so far */
    uint32_t nres, rcap;
    vec_pair *near;          /* filtered: max-heap of the best scored, accepted or not */
    uint32_t ncap;
    uint32_t *rec;              /* if set: record visited ids (deletes) */
    uint32_t nrec, reccap;
    vec_pair *pcand;            /* planning an insert off the loop (hnsw_prepare): */
    uint32_t *ppruned;          /* the candidates and the ones pruned, pcap each */
    uint32_t pcap;
};

typedef struct hnsw_hint_map {
    uint64_t *e;
    uint32_t cap, n;
} hnsw_hint_map;

/* A range borrowed from a snapshot (p NULL: none). */
typedef struct hnsw_borrow {
    void *p;
    size_t len;
} hnsw_borrow;

struct hnsw {
    vec_mem mem;                /* allocator and bytes held through it */
    const dist_kernels *kern;
    dist_pair_fn *pair;         /* l2sq or dot */
    float off, sgn;             /* internal distance = off + sgn * pair() */
    dist_metric metric;
    uint32_t dim, M, M0, efc, efs;
    uint32_t s0, s1;            /* words per layer-0 / upper list */
    double mult;                /* level multiplier 1/ln(M) */
    uint64_t rng;
    uint64_t muts;              /* mutations so far (a prepared insert checks it) */
    uint32_t cap, hwm, count;   /* slots allocated / ever used / live */
    uint32_t free_head, entry, dying;
    int max_level;
    unsigned char *vecs;        /* vb bytes per id (vec_format) */
    size_t vb;
    quant_type quant;
    void *vecs_raw;
    size_t vecs_bytes;
    uint32_t *l0;
    size_t l0_bytes;            /* allocated (0 while borrowed) */
    uint32_t **up;              /* pcap slots */
    hnsw_search_ctx *w;         /* write-side search scratch */
    /* Fixed scratch for mutations, sized at creation (one block). */
    void *scratch;
    size_t scratch_bytes;
    vec_pair *cand;          /* ncmax */
    uint32_t *pruned;           /* ncmax */
    uint32_t *sel, *old, *dl, *tmp; /* M0 + 1 each */
    uint32_t *plan;             /* (HNSW_MAX_LEVEL + 1) * M */
    uint32_t plan_n[HNSW_MAX_LEVEL + 1];
    hnsw_prepared last;         /* the last insert's outcome (hnsw_last_plan);
                                   level -1 after any other mutation */
    uint32_t ncmax;
    uint64_t hints_dropped;     /* hints not kept for lack of room */
    uint64_t orphans_fixed;     /* nodes re-attached after losing all in-links */
    uint64_t reconnected;       /* nodes re-attached by hnsw_reconnect */
    uint32_t sweep_debt;        /* mutations since the last reconnect */
    int attach_depth;           /* recursion guard, hnsw_attach_reachable */
    hnsw_hint_map xh[HNSW_MAX_LEVEL + 1]; /* overflow hints per layer */
    uint64_t inlink_misses;     /* layer unlinks the hints did not cover */
    uint64_t inlink_scans;      /* ... that needed the full-layer scan */
    uint32_t *rec;              /* visited ids recorded by a delete's search */
    uint32_t reccap;
    uint32_t pcap;              /* slots present in vecs/l0/up: cap, or hwm after a load */
    hnsw_borrow bvec, bl0;      /* vecs / l0 borrowed from a snapshot */
    size_t borrowed;            /* their bytes */
    img_release_fn *release;    /* gives them back; set once a load succeeded */
    void *release_ud;
};

/* ---- small helpers ------------------------------------------------------ */

static inline uint32_t *hnsw_l0(const hnsw *h, uint32_t id)
{
    return h->l0 + (size_t)id * h->s0;
}

static inline uint32_t *hnsw_list(const hnsw *h, uint32_t id, int layer)
{
    return layer == 0 ? hnsw_l0(h, id) : h->up[id] + (size_t)(layer - 1) * h->s1;
}

static inline uint32_t list_count(const uint32_t *l) { return l[0] & 0xFFu; }

static inline void list_set_count(uint32_t *l, uint32_t n)
{
    l[0] = (l[0] & ~0xFFu) | n;
}

static inline int hnsw_level(const hnsw *h, uint32_t id)
{
    return (int)((hnsw_l0(h, id)[0] >> HNSW_LEVEL_SHIFT) & 0xFFu);
}

static inline uint32_t hnsw_maxdeg(const hnsw *h, int layer)
{
    return layer == 0 ? h->M0 : h->M;
}

static inline const void *hnsw_vec(const hnsw *h, uint32_t id)
{
    return h->vecs + (size_t)id * h->vb;
}

static inline float hnsw_dist(const hnsw *h, const void *a, const void *b)
{
    return h->off + h->sgn * h->pair(a, b, h->dim);
}

static int list_has(const uint32_t *l, uint32_t id)
{
    uint32_t n = list_count(l);
    for (uint32_t i = 0; i < n; i++)
        if (l[HNSW_LINKS + i] == id) return 1;
    return 0;
}

static uint64_t hnsw_rand(uint64_t *s)
{
    /* splitmix64: one state word, good enough for level draws. */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The level a draw from *rng gives (advancing *rng). */
static int hnsw_level_from(const hnsw *h, uint64_t *rng)
{
    double u = (double)((hnsw_rand(rng) >> 11) + 1) * 0x1.0p-53; /* (0,1] */
    double l = -log(u) * h->mult;
    return l >= HNSW_MAX_LEVEL ? HNSW_MAX_LEVEL : (int)l;
}

static int hnsw_random_level(hnsw *h) { return hnsw_level_from(h, &h->rng); }

static int pair_cmp(const void *x, const void *y)
{
    vec_pair a = *(const vec_pair *)x, b = *(const vec_pair *)y;
    return vec_pair_lt(a, b) ? -1 : vec_pair_lt(b, a);
}

static void pairs_sort(vec_pair *a, uint32_t n)
{
    /* Insertion sort: the lists sorted here hold at most 2*M0 entries. */
    for (uint32_t i = 1; i < n; i++) {
        vec_pair x = a[i];
        uint32_t j = i;
        while (j > 0 && vec_pair_lt(x, a[j - 1])) { a[j] = a[j - 1]; j--; }
        a[j] = x;
    }
}

/* ---- heaps (candidates: min-heap; results: max-heap) --------------------- *
 * Ordered by distance alone: the (distance, id) order costs a float
 * equality test per comparison in the hottest loop, and exact ties only
 * matter for the order results are reported in, fixed by hnsw_search. */

static inline void minheap_push(vec_pair *hp, uint32_t *n, vec_pair x)
{
    uint32_t i = (*n)++;
    while (i > 0) {
        uint32_t p = (i - 1) >> 1;
        if (!(x.dist < hp[p].dist)) break;
        hp[i] = hp[p];
        i = p;
    }
    hp[i] = x;
}

static inline vec_pair minheap_pop(vec_pair *hp, uint32_t *n)
{
    vec_pair top = hp[0], x = hp[--(*n)];
    uint32_t i = 0, m = *n;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && hp[c + 1].dist < hp[c].dist) c++;
        if (!(hp[c].dist < x.dist)) break;
        hp[i] = hp[c];
        i = c;
    }
    hp[i] = x;
    return top;
}

static inline void maxheap_siftdown(vec_pair *hp, uint32_t m, uint32_t i, vec_pair x)
{
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && hp[c].dist < hp[c + 1].dist) c++;
        if (!(x.dist < hp[c].dist)) break;
        hp[i] = hp[c];
        i = c;
    }
    hp[i] = x;
}

static inline void maxheap_push(vec_pair *hp, uint32_t *n, vec_pair x)
{
    uint32_t i = (*n)++;
    while (i > 0) {
        uint32_t p = (i - 1) >> 1;
        if (!(hp[p].dist < x.dist)) break;
        hp[i] = hp[p];
        i = p;
    }
    hp[i] = x;
}

/* Heap-sort the result max-heap in place: afterwards res[0..n) ascends. */
static void maxheap_sort(vec_pair *hp, uint32_t n)
{
    for (uint32_t m = n; m > 1; m--) {
        vec_pair last = hp[m - 1];
        hp[m - 1] = hp[0];
        maxheap_siftdown(hp, m - 1, 0, last);
    }
}

/* ---- search context ----------------------------------------------------- */

hnsw_search_ctx *hnsw_search_ctx_new(const vec_allocator *alloc)
{
    if (!alloc) alloc = &vec_default_allocator;
    hnsw_search_ctx *c = alloc->alloc(alloc->ud, sizeof *c);
    if (!c) return NULL;
    memset(c, 0, sizeof *c);
    vec_mem_init(&c->mem, alloc);
    return c;
}

void hnsw_search_ctx_free(hnsw_search_ctx *c)
{
    if (!c) return;
    vec_mem_free(&c->mem, c->mark, (size_t)c->mcap * sizeof *c->mark);
    vec_mem_free(&c->mem, c->cand, (size_t)c->ccap * sizeof *c->cand);
    vec_mem_free(&c->mem, c->res, (size_t)c->rcap * sizeof *c->res);
    vec_mem_free(&c->mem, c->near, (size_t)c->ncap * sizeof *c->near);
    vec_mem_free(&c->mem, c->pcand, (size_t)c->pcap * sizeof *c->pcand);
    vec_mem_free(&c->mem, c->ppruned, (size_t)c->pcap * sizeof *c->ppruned);
    c->mem.al.free(c->mem.al.ud, c, sizeof *c);
}

/* Replace *arr (cap *cap elements of size sz) with a larger one; keep the
 * first `keep` elements.  Old contents are kept only when keep > 0. */
static int ctx_regrow(hnsw_search_ctx *c, void **arr, uint32_t *cap, uint32_t want,
                      size_t sz, uint32_t keep)
{
    void *p = vec_mem_alloc(&c->mem, (size_t)want * sz);
    if (!p) return -ENOMEM;
    if (keep) memcpy(p, *arr, (size_t)keep * sz);
    vec_mem_free(&c->mem, *arr, (size_t)*cap * sz);
    *arr = p;
    *cap = want;
    return 0;
}

/* Marks for ids < nmarks (an index capacity) and a result heap of ef + 1.
 * Fresh marks are zero, so the generation restarts. */
static int ctx_reserve(hnsw_search_ctx *c, uint32_t nmarks, uint32_t ef)
{
    if (c->mcap < nmarks) {
        uint32_t want = nmarks;     /* callers pass a capacity, which grows geometrically */
        if (ctx_regrow(c, (void **)&c->mark, &c->mcap, want, sizeof *c->mark, 0)) return -ENOMEM;
        memset(c->mark, 0, (size_t)want * sizeof *c->mark);
        c->gen = 0;
    }
    if (c->rcap < ef + 1 &&
        ctx_regrow(c, (void **)&c->res, &c->rcap, ef + 1, sizeof *c->res, 0)) return -ENOMEM;
    uint32_t cwant = 2 * ef + 64;
    if (c->ccap < cwant &&
        ctx_regrow(c, (void **)&c->cand, &c->ccap, cwant, sizeof *c->cand, 0)) return -ENOMEM;
    return 0;
}

static inline uint16_t ctx_next_gen(hnsw_search_ctx *c)
{
    if (++c->gen == 0) {        /* wrapped: old marks could alias, clear */
        memset(c->mark, 0, (size_t)c->mcap * sizeof *c->mark);
        c->gen = 1;
    }
    return c->gen;
}

/* ---- search ------------------------------------------------------------- */

/* Greedy walk on an upper layer: move to any closer neighbour until none. */
static uint32_t hnsw_greedy(const hnsw *h, const void *q, uint32_t cur, float *dcur, int layer)
{
    for (int changed = 1; changed;) {
        changed = 0;
        const uint32_t *l = hnsw_list(h, cur, layer);
        uint32_t n = list_count(l);
        for (uint32_t i = 0; i < n; i++)
            __builtin_prefetch(hnsw_vec(h, l[HNSW_LINKS + i]));
        for (uint32_t i = 0; i < n; i++) {
            uint32_t id = l[HNSW_LINKS + i];
            float d = hnsw_dist(h, q, hnsw_vec(h, id));
            if (d < *dcur) { *dcur = d; cur = id; changed = 1; }
        }
    }
    return cur;
}

/* The beam search of the paper (Alg. 2) on one layer from one entry point:
 * leaves the best ef accepted nodes in c->res as a max-heap.  Expanding a
 * node first collects its unvisited neighbours, then scores them while the
 * vectors of the next few are being prefetched, so memory fetches overlap
 * instead of queueing behind each distance (prefetching all of them at once
 * only stalls on the CPU's miss buffers).  Everything the loop touches is
 * held in locals: stores through the context would otherwise force reloads
 * of its fields on every neighbour.
 *
 * Routed (a filtered search, hnsw_search_effort): the beam's bound is the
 * larger of two, the ef-th best accepted node's distance (res) and the
 * wef-th best scored node's, accepted or not (c->near, a second max-heap):
 * the walk closes only when both sets are full and nothing closer is left.
 * `routed` is a constant at each call (the function is inlined into two
 * wrappers), so the unfiltered walk carries none of it. */
static inline __attribute__((always_inline)) int
search_layer(const hnsw *h, hnsw_search_ctx *c, const void *q, uint32_t ep, float epd,
             uint32_t ef, int layer, vec_filter_fn *accept, void *ud, uint32_t effort,
             const int routed, uint32_t wef)
{
    const uint16_t gen = ctx_next_gen(c);
    uint16_t *const mark = c->mark;
    uint32_t *const rec = c->rec;
    const unsigned char *const vecs = h->vecs;
    const size_t vb = h->vb, dim = h->dim;
    dist_pair_fn *const pair = h->pair;
    const float off = h->off, sgn = h->sgn;
    vec_pair *cand = c->cand, *const res = c->res, *const near = c->near;
    uint32_t ncand = 0, nres = 0, nnear = 0, nrec = c->nrec;
    uint32_t batch[2 * VEC_M_MAX];
    int rc = 0;

    vec_pair e = { epd, ep };
    mark[ep] = gen;
    minheap_push(cand, &ncand, e);
    if (!accept || accept(ud, ep)) maxheap_push(res, &nres, e);
    float rbound = nres >= ef ? res[0].dist : INFINITY, nbound = INFINITY;
    if (routed) {
        maxheap_push(near, &nnear, e);
        if (nnear >= wef) nbound = near[0].dist;
    }
    float bound = routed && nbound > rbound ? nbound : rbound;
    /* Nodes expanded so far, the entry point counting as one (as Redis
     * counts a filtered search's effort). */
    uint32_t expanded = 1;

    while (ncand) {
        if (effort && expanded >= effort) break;
        vec_pair cur = minheap_pop(cand, &ncand);
        expanded++;
        if (cur.dist > bound) break;
        const uint32_t *l = hnsw_list(h, cur.id, layer);
        uint32_t n = list_count(l), m = 0;
        /* Branch-free: whether a neighbour was seen is a coin toss the
         * predictor loses; always store, advance only for the unseen. */
        for (uint32_t i = 0; i < n; i++) {
            uint32_t id = l[HNSW_LINKS + i];
            uint32_t fresh = mark[id] != gen;
            mark[id] = gen;
            batch[m] = id;
            m += fresh;
        }
        if (__builtin_expect(rec != NULL, 0))
            for (uint32_t j = 0; j < m && nrec < c->reccap; j++) rec[nrec++] = batch[j];
        for (uint32_t j = 0; j < m && j < HNSW_PREFETCH_AHEAD; j++)
            __builtin_prefetch(vecs + (size_t)batch[j] * vb);
        for (uint32_t j = 0; j < m; j++) {
            uint32_t id = batch[j];
            if (j + HNSW_PREFETCH_AHEAD < m)
                __builtin_prefetch(vecs + (size_t)batch[j + HNSW_PREFETCH_AHEAD] * vb);
            float d = off + sgn * pair(q, vecs + (size_t)id * vb, dim);
            if (!(d < bound)) continue;
            if (__builtin_expect(ncand == c->ccap, 0)) {
                c->ncand = ncand;
                if ((rc = ctx_regrow(c, (void **)&c->cand, &c->ccap, c->ccap * 2,
                                     sizeof *c->cand, ncand)) != 0) goto out;
                cand = c->cand;
            }
            vec_pair x = { d, id };
            minheap_push(cand, &ncand, x);
            if (routed) {
                if (d < nbound) {
                    if (nnear < wef) maxheap_push(near, &nnear, x);
                    else maxheap_siftdown(near, nnear, 0, x);
                    if (nnear >= wef) nbound = near[0].dist;
                }
                /* Only a node that would enter res costs a filter test. */
                if (d < rbound && accept(ud, id)) {
                    if (nres < ef) maxheap_push(res, &nres, x);
                    else maxheap_siftdown(res, nres, 0, x);
                    if (nres >= ef) rbound = res[0].dist;
                }
                bound = nbound > rbound ? nbound : rbound;
                continue;
            }
            if (accept && !accept(ud, id)) continue;
            if (nres < ef) maxheap_push(res, &nres, x);
            else maxheap_siftdown(res, nres, 0, x);
            if (nres >= ef) bound = res[0].dist;
        }
#if HNSW_PREFETCH_LINKS
        /* The next node to expand: its links are the next dependent load. */
        if (ncand) __builtin_prefetch(hnsw_list(h, cand[0].id, layer));
#endif
    }
out:
    c->ncand = ncand;
    c->nres = nres;
    c->nrec = nrec;
    return rc;
}

static int hnsw_search_layer(const hnsw *h, hnsw_search_ctx *c, const void *q,
                             uint32_t ep, float epd, uint32_t ef, int layer,
                             vec_filter_fn *accept, void *ud, uint32_t effort)
{
    return search_layer(h, c, q, ep, epd, ef, layer, accept, ud, effort, 0, 0);
}

/* The filtered walk of layer 0: ef accepted, and at least the wef nearest
 * scored nodes seen (c->near holds wef + 1). */
static int hnsw_search_routed(const hnsw *h, hnsw_search_ctx *c, const void *q,
                              uint32_t ep, float epd, uint32_t ef, vec_filter_fn *accept,
                              void *ud, uint32_t effort, uint32_t wef)
{
    return search_layer(h, c, q, ep, epd, ef, 0, accept, ud, effort, 1, wef);
}

int hnsw_search(const hnsw *h, hnsw_search_ctx *c, const void *q, uint32_t k,
                uint32_t ef, vec_filter_fn *accept, void *ud,
                vec_pair *out, uint32_t *nout)
{
    return hnsw_search_effort(h, c, q, k, ef, accept, ud, 0, out, nout);
}

int hnsw_search_effort(const hnsw *h, hnsw_search_ctx *c, const void *q, uint32_t k,
                       uint32_t ef, vec_filter_fn *accept, void *ud, uint32_t effort,
                       vec_pair *out, uint32_t *nout)
{
    *nout = 0;
    if (k == 0 || h->count == 0) return 0;
    if (ef == 0) ef = h->efs;
    if (ef < k) ef = k;
    if (ctx_reserve(c, h->cap, ef)) return -ENOMEM;

    uint32_t cur = h->entry;
    float d = hnsw_dist(h, q, hnsw_vec(h, cur));
    for (int l = h->max_level; l > 0; l--) cur = hnsw_greedy(h, q, cur, &d, l);
    int rc;
    if (accept) {
        /* The filtered beam (see hnsw.h): half as many accepted nodes as
         * ef asks for, but never a narrower walk than an unfiltered one
         * with twice the beam. */
        uint32_t acc = ef / 2 > k ? ef / 2 : k, wef = 2 * ef;
        if (c->ncap < wef + 1 &&
            ctx_regrow(c, (void **)&c->near, &c->ncap, wef + 1, sizeof *c->near, 0))
            return -ENOMEM;
        rc = hnsw_search_routed(h, c, q, cur, d, acc, accept, ud, effort, wef);
    } else {
        rc = hnsw_search_layer(h, c, q, cur, d, ef, 0, NULL, NULL, 0);
    }
    if (rc) return rc;
    maxheap_sort(c->res, c->nres);
    uint32_t n = c->nres < k ? c->nres : k;
    /* The heap orders by distance alone, so a group of equal distances
     * straddling the k-th place is in heap order: sort that group by id
     * before cutting, so ties go to the smaller ids as vindex.h promises. */
    if (n > 0 && n < c->nres && c->res[n].dist == c->res[n - 1].dist) {
        float t = c->res[n - 1].dist;
        uint32_t lo = n - 1, hi = n + 1;
        while (lo > 0 && c->res[lo - 1].dist == t) lo--;
        while (hi < c->nres && c->res[hi].dist == t) hi++;
        /* The group can be as large as ef (all distances equal): qsort, not
         * the insertion sort meant for short link lists. */
        qsort(c->res + lo, hi - lo, sizeof *c->res, pair_cmp);
    }
    memcpy(out, c->res, (size_t)n * sizeof *out);
    pairs_sort(out, n);     /* exact ties by id; already sorted otherwise: O(k) */
    *nout = n;
    return 0;
}

/* ---- neighbour selection and link maintenance --------------------------- */

/* The paper's heuristic (Alg. 4): walk candidates closest first (cand is
 * sorted by distance to the base node) and keep one only if it is closer
 * to the base than to every neighbour kept so far, up to max; then top up
 * from the discarded ones, closest first, to fill_to (keepPrunedConnections;
 * 0 = no top-up).  Returns how many went to out. */
static uint32_t hnsw_select(const hnsw *h, const vec_pair *cand, uint32_t n,
                            uint32_t max, uint32_t fill_to, uint32_t *out, uint32_t *pruned)
{
    uint32_t m = 0, np = 0;
    for (uint32_t i = 0; i < n && m < max; i++) {
        const void *vc = hnsw_vec(h, cand[i].id);
        int good = 1;
        for (uint32_t j = 0; j < m && good; j++)
            if (hnsw_dist(h, vc, hnsw_vec(h, out[j])) < cand[i].dist) good = 0;
        if (good) out[m++] = cand[i].id;
        else pruned[np++] = cand[i].id;
    }
    for (uint32_t j = 0; j < np && m < fill_to; j++) out[m++] = pruned[j];
    return m;
}

/* ---- link bookkeeping: in-degrees and reverse hints --------------------- *
 *
 * Every change to a link list goes through link_added / link_removed, which
 * keep two things exact for each node a on each layer:
 *   indeg(a)  the number of lists holding a (word 1 of a's list);
 *   hints(a)  the ids b with b -> a but not a -> b ("one-way in-links").
 * Hints live in the unused tail of a's own list (slots maxdeg-nh ..
 * maxdeg-1; nh in bits 8-15 of word 0; out-links fill from the front), and
 * when that is full, in a per-layer overflow map (below) that only hubs
 * need.  So a node's in-links are always its reciprocal out-neighbours plus
 * its hints, and a delete finds them without searching.  Only if the
 * overflow map cannot grow (allocator exhausted) is a hint dropped; the
 * in-degree still knows the link exists and a delete then searches. */

static inline uint32_t list_nhint(const uint32_t *l) { return (l[0] >> 8) & 0xFFu; }

static inline void list_set_nhint(uint32_t *l, uint32_t n)
{
    l[0] = (l[0] & ~0xFF00u) | (n << 8);
}

static inline uint32_t *list_hints(uint32_t *l, uint32_t max)
{
    return l + HNSW_LINKS + max - list_nhint(l);
}

/* Overflow hints, one table per layer: open addressing over 64-bit entries
 * (target << 32 | source) hashed by target, so all of a target's entries
 * share one probe run; linear probing, deletion by shifting the run back
 * (no tombstones).  Its size is fixed with the node arrays (hnsw_grow: one
 * slot per three node slots on that layer, filled to 3/4 at most), so
 * memory depends on capacity alone, never on how much churn there was. */
#define XH_EMPTY UINT64_MAX
#ifndef HNSW_XH_DIV
#define HNSW_XH_DIV 3       /* node slots per overflow slot */
#endif

static inline uint32_t xh_home(const hnsw_hint_map *m, uint32_t target)
{
    uint32_t hash = (uint32_t)(((uint64_t)target * 0x9E3779B97F4A7C15ull) >> 32);
    return (uint32_t)(((uint64_t)hash * m->cap) >> 32);    /* any size: no power of 2 */
}

static inline uint32_t xh_next(const hnsw_hint_map *m, uint32_t i)
{
    return i + 1 == m->cap ? 0 : i + 1;
}

static int64_t xh_find(const hnsw_hint_map *m, uint32_t target, uint32_t source)
{
    if (m->n == 0) return -1;
    uint64_t key = (uint64_t)target << 32 | source;
    for (uint32_t i = xh_home(m, target);; i = xh_next(m, i)) {
        if (m->e[i] == XH_EMPTY) return -1;
        if (m->e[i] == key) return i;
    }
}

/* Some source hinted for target, or HNSW_NONE. */
static uint32_t xh_any(const hnsw_hint_map *m, uint32_t target)
{
    if (m->n == 0) return HNSW_NONE;
    for (uint32_t i = xh_home(m, target);; i = xh_next(m, i)) {
        if (m->e[i] == XH_EMPTY) return HNSW_NONE;
        if ((uint32_t)(m->e[i] >> 32) == target) return (uint32_t)m->e[i];
    }
}

static void xh_put(hnsw_hint_map *m, uint64_t key)
{
    uint32_t i = xh_home(m, (uint32_t)(key >> 32));
    while (m->e[i] != XH_EMPTY) i = xh_next(m, i);
    m->e[i] = key;
    m->n++;
}

/* 0, or -ENOSPC when the table is at its load limit (the hint is dropped). */
static int xh_add(hnsw *h, int layer, uint32_t target, uint32_t source)
{
    hnsw_hint_map *m = &h->xh[layer];
    if ((uint64_t)(m->n + 1) * 4 > (uint64_t)m->cap * 3) return -ENOSPC;
    xh_put(m, (uint64_t)target << 32 | source);
    return 0;
}

/* Slots of layer's table for ncap node slots.  Tables only grow and only
 * with the node arrays (hnsw_grow, all layers or none), so a table's size
 * is always exactly this for the current capacity: hnsw_load relies on it. */
static uint32_t xh_size_for(const hnsw *h, int layer, uint32_t ncap)
{
    double nodes = ncap;
    for (int l = 0; l < layer; l++) nodes /= h->M;          /* expected population */
    return (uint32_t)(nodes / HNSW_XH_DIV) + 16;
}

/* Move layer's entries into e (want slots, already allocated) and free the
 * old table. */
static void xh_rehash(hnsw *h, int layer, uint64_t *e, uint32_t want)
{
    hnsw_hint_map *m = &h->xh[layer], old = *m;
    memset(e, 0xFF, (size_t)want * sizeof *e);
    *m = (hnsw_hint_map){ e, want, 0 };
    for (uint32_t i = 0; i < old.cap; i++)
        if (old.e[i] != XH_EMPTY) xh_put(m, old.e[i]);
    vec_mem_free(&h->mem, old.e, (size_t)old.cap * sizeof *old.e);
}

static void xh_del_at(hnsw_hint_map *m, uint32_t i)
{
    for (uint32_t j = i;;) {
        j = xh_next(m, j);
        if (m->e[j] == XH_EMPTY) break;
        uint32_t home = xh_home(m, (uint32_t)(m->e[j] >> 32));
        int stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (stays) continue;
        m->e[i] = m->e[j];
        i = j;
    }
    m->e[i] = XH_EMPTY;
    m->n--;
}

/* Record b as a one-way in-link of a. */
static void hint_add(hnsw *h, uint32_t a, int layer, uint32_t b)
{
    uint32_t *l = hnsw_list(h, a, layer), max = hnsw_maxdeg(h, layer);
    uint32_t nh = list_nhint(l), *hs = list_hints(l, max);
    for (uint32_t i = 0; i < nh; i++)
        if (hs[i] == b) return;
    if (list_count(l) + nh < max) {
        hs[-1] = b;
        list_set_nhint(l, nh + 1);
        return;
    }
    if (xh_find(&h->xh[layer], a, b) < 0 && xh_add(h, layer, a, b)) h->hints_dropped++;
}

static void hint_del(hnsw *h, uint32_t a, int layer, uint32_t b)
{
    uint32_t *l = hnsw_list(h, a, layer), max = hnsw_maxdeg(h, layer);
    uint32_t nh = list_nhint(l), *hs = list_hints(l, max);
    for (uint32_t i = 0; i < nh; i++)
        if (hs[i] == b) {
            hs[i] = hs[0];
            list_set_nhint(l, nh - 1);
            return;
        }
    int64_t at = xh_find(&h->xh[layer], a, b);
    if (at >= 0) xh_del_at(&h->xh[layer], (uint32_t)at);
}

/* node's out-list is about to hold n links: move the hints in the way to
 * the overflow map. */
static void hint_make_room(hnsw *h, uint32_t node, int layer, uint32_t n)
{
    uint32_t *l = hnsw_list(h, node, layer), max = hnsw_maxdeg(h, layer);
    uint32_t nh = list_nhint(l);
    if (n + nh <= max) return;
    uint32_t keep = max - n, *hs = list_hints(l, max);
    for (uint32_t i = 0; i < nh - keep; i++)   /* the innermost go */
        if (xh_add(h, layer, node, hs[i])) h->hints_dropped++;
    list_set_nhint(l, keep);
}

static inline void indeg_add(hnsw *h, uint32_t id, int layer, int delta)
{
    uint32_t *l = hnsw_list(h, id, layer);
    CHECK(delta > 0 || l[1] > 0);
    l[1] += (uint32_t)delta;
}

/* a -> b now exists (a's list already updated). */
static void link_added(hnsw *h, uint32_t a, uint32_t b, int layer)
{
    indeg_add(h, b, layer, 1);
    if (list_has(hnsw_list(h, b, layer), a)) hint_del(h, a, layer, b);
    else hint_add(h, b, layer, a);
}

/* a -> b is gone (a's list already updated). */
static void link_removed(hnsw *h, uint32_t a, uint32_t b, int layer)
{
    indeg_add(h, b, layer, -1);
    hint_del(h, b, layer, a);
    if (list_has(hnsw_list(h, b, layer), a)) hint_add(h, a, layer, b);
}

/* Append a -> b; the caller checked there is room for the link. */
static void link_append(hnsw *h, uint32_t a, uint32_t b, int layer)
{
    uint32_t *l = hnsw_list(h, a, layer), n = list_count(l);
    hint_make_room(h, a, layer, n + 1);
    l[HNSW_LINKS + n] = b;
    list_set_count(l, n + 1);
    link_added(h, a, b, layer);
}

static int ids_has(const uint32_t *a, uint32_t n, uint32_t id)
{
    for (uint32_t i = 0; i < n; i++)
        if (a[i] == id) return 1;
    return 0;
}

static int try_attach(hnsw *h, uint32_t y, uint32_t x, int layer, int replace);
static void hnsw_mutated(hnsw *h);

/* x has just lost its last in-link on this layer: give it one from a node
 * that is certainly reachable -- one a search from the entry point visits,
 * the closest to x first -- by appending, or else by replacing a link whose
 * target keeps another in-link.  (Attaching x from its own out-neighbours
 * would be cheaper but can close a cycle that nothing else reaches.)  The
 * entry point needs no in-link; the node being deleted gets none. */
static void hnsw_attach_reachable(hnsw *h, uint32_t x, int layer, const uint8_t *seen)
{
    const void *v = hnsw_vec(h, x);
    uint32_t cur = h->entry;
    float d = hnsw_dist(h, v, hnsw_vec(h, cur));
    for (int l = h->max_level; l > layer; l--) cur = hnsw_greedy(h, v, cur, &d, l);
    hnsw_search_ctx *c = h->w;
    uint32_t n = 0;
    if (hnsw_search_layer(h, c, v, cur, d, h->M, layer, NULL, NULL, 0) == 0) {
        maxheap_sort(c->res, c->nres);
        n = c->nres;
    }
    /* The search descends through upper layers, so its layer-0 start (and
     * what it finds) is only probably reachable on layer 0; the sweep knows
     * the reachable set and passes it in to be sure. */
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++)
        if (!seen || seen[c->res[i].id]) c->res[k++] = c->res[i];
    n = k;
    for (int replace = 0; replace < 2; replace++) {
        for (uint32_t i = 0; i < n; i++)
            if (try_attach(h, c->res[i].id, x, layer, replace)) return;
        if (try_attach(h, h->entry, x, layer, replace)) return;
    }
    /* Every candidate's list is full of links that are their targets' only
     * in-link (seen with inner product in few dimensions).  Displace the
     * last link of the closest candidate and re-home the displaced node in
     * turn, a few levels deep at most. */
    uint32_t y = n ? c->res[0].id : h->entry;
    uint32_t *ly = hnsw_list(h, y, layer), m = list_count(ly);
    if (h->attach_depth >= 4 || y == x || y == h->dying || m == 0) return;
    uint32_t victim = ly[HNSW_LINKS + m - 1];
    ly[HNSW_LINKS + m - 1] = x;
    link_removed(h, y, victim, layer);
    link_added(h, y, x, layer);
    if (hnsw_list(h, victim, layer)[1] == 0 && victim != h->dying && victim != h->entry) {
        h->attach_depth++;
        hnsw_attach_reachable(h, victim, layer, seen);
        h->attach_depth--;
    }
}

static void hnsw_fix_orphan(hnsw *h, uint32_t x, int layer)
{
    if (x == h->entry || x == h->dying) return;
    h->orphans_fixed++;
    hnsw_attach_reachable(h, x, layer, NULL);
}

/* Add the link y -> x on this layer if y has room, or (replace) instead of
 * y's last link whose target has another in-link.  1 if done. */
static int try_attach(hnsw *h, uint32_t y, uint32_t x, int layer, int replace)
{
    if (y == x || y == h->dying || y == HNSW_NONE) return 0;
    uint32_t *ly = hnsw_list(h, y, layer);
    uint32_t n = list_count(ly);
    if (list_has(ly, x)) return 1;          /* already linked: nothing to add */
    if (!replace) {
        if (n >= hnsw_maxdeg(h, layer)) return 0;
        link_append(h, y, x, layer);
        return 1;
    }
    for (uint32_t j = n; j-- > 0;) {
        uint32_t v = ly[HNSW_LINKS + j];
        if (hnsw_list(h, v, layer)[1] < 2) continue;
        ly[HNSW_LINKS + j] = x;
        link_removed(h, y, v, layer);
        link_added(h, y, x, layer);
        return 1;
    }
    return 0;
}

/* Make sel[0..m) the links of node on this layer (hooks keep in-degrees and
 * hints exact) and re-attach any node that lost its last in-link. */
static void hnsw_list_replace(hnsw *h, uint32_t node, int layer, const uint32_t *sel, uint32_t m)
{
    uint32_t *l = hnsw_list(h, node, layer);
    uint32_t n = list_count(l);
    memcpy(h->old, l + HNSW_LINKS, (size_t)n * sizeof *h->old);
    hint_make_room(h, node, layer, m);
    memmove(l + HNSW_LINKS, sel, (size_t)m * sizeof *sel);
    list_set_count(l, m);
    for (uint32_t i = 0; i < n; i++)
        if (!ids_has(l + HNSW_LINKS, m, h->old[i])) link_removed(h, node, h->old[i], layer);
    for (uint32_t i = 0; i < m; i++)
        if (!ids_has(h->old, n, l[HNSW_LINKS + i])) link_added(h, node, l[HNSW_LINKS + i], layer);
    for (uint32_t i = 0; i < n; i++)
        if (hnsw_list(h, h->old[i], layer)[1] == 0) hnsw_fix_orphan(h, h->old[i], layer);
}

/* Add node -> x.  If the list would grow into its hints, re-choose it from
 * its links + x instead: hints are worth more than a few extra links, which
 * the heuristic would mostly prune later anyway. */
static void hnsw_link_add(hnsw *h, uint32_t node, uint32_t x, int layer)
{
    uint32_t *l = hnsw_list(h, node, layer);
    uint32_t n = list_count(l), max = hnsw_maxdeg(h, layer), nh = list_nhint(l);
    if (n + nh < max) {
        link_append(h, node, x, layer);
        return;
    }
    const void *vn = hnsw_vec(h, node);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t y = l[HNSW_LINKS + i];
        h->cand[i] = (vec_pair){ hnsw_dist(h, vn, hnsw_vec(h, y)), y };
    }
    h->cand[n] = (vec_pair){ hnsw_dist(h, vn, hnsw_vec(h, x)), x };
    pairs_sort(h->cand, n + 1);
    uint32_t m = hnsw_select(h, h->cand, n + 1, max, HNSW_FILL_PRUNE ? max - nh : 0, h->sel,
                             h->pruned);
    hnsw_list_replace(h, node, layer, h->sel, m);
}

/* ---- insert ------------------------------------------------------------- */

/* Planning phase: find and choose the neighbours of a node with vector v on
 * layers min(level, max_level)..0 into plan (M ids per layer) and plan_n,
 * with beam ef, searching with c and choosing through cand and pruned
 * (room for ef each).  Reads the graph only -- the write side's scratch
 * for an insert on the loop, a worker's for hnsw_prepare; `self` (an
 * updated node) is never chosen.  0 or -ENOMEM. */
static int hnsw_plan(const hnsw *h, hnsw_search_ctx *c, vec_pair *cand, uint32_t *pruned,
                     uint32_t *plan, uint32_t *plan_n, const void *v, int level, uint32_t self,
                     uint32_t ef)
{
    memset(plan_n, 0, (HNSW_MAX_LEVEL + 1) * sizeof *plan_n);
    if (h->entry == HNSW_NONE) return 0;
    uint32_t cur = h->entry;
    float d = hnsw_dist(h, v, hnsw_vec(h, cur));
    for (int l = h->max_level; l > level; l--) cur = hnsw_greedy(h, v, cur, &d, l);
    for (int l = level < h->max_level ? level : h->max_level; l >= 0; l--) {
        int rc = hnsw_search_layer(h, c, v, cur, d, ef, l, NULL, NULL, 0);
        if (rc) return rc;
        maxheap_sort(c->res, c->nres);
        uint32_t n = 0;
        for (uint32_t i = 0; i < c->nres; i++)
            if (c->res[i].id != self) cand[n++] = c->res[i];
        if (n == 0) continue;
        plan_n[l] = hnsw_select(h, cand, n, h->M, HNSW_FILL_NEW ? h->M : 0,
                                plan + (size_t)l * h->M, pruned);
        cur = cand[0].id;
        d = cand[0].dist;
    }
    return 0;
}

static int hnsw_plan_here(hnsw *h, const void *v, int level, uint32_t self, uint32_t ef)
{
    return hnsw_plan(h, h->w, h->cand, h->pruned, h->plan, h->plan_n, v, level, self, ef);
}

/* Commit phase: link id to its planned neighbours and back.  No allocation. */
static void hnsw_connect(hnsw *h, uint32_t id, int level, const uint32_t *plan,
                         const uint32_t *plan_n)
{
    int top = level < h->max_level ? level : h->max_level;
    for (int l = 0; l <= top; l++) {
        const uint32_t *p = plan + (size_t)l * h->M;
        uint32_t n = plan_n[l];
        uint32_t *li = hnsw_list(h, id, l);
        CHECK(list_count(li) == 0 && list_nhint(li) == 0);
        memcpy(li + HNSW_LINKS, p, (size_t)n * sizeof *p);
        list_set_count(li, n);
        for (uint32_t i = 0; i < n; i++) link_added(h, id, p[i], l);
        for (uint32_t i = 0; i < n; i++) hnsw_link_add(h, p[i], id, l);
    }
    for (int l = 0; l <= top; l++)
        if (hnsw_list(h, id, l)[1] == 0) hnsw_fix_orphan(h, id, l);
}

/* Ask for transparent huge pages on a large, randomly read array: a search
 * touches a few cache lines in each of many pages, so with 4 KiB pages most
 * neighbour fetches also miss the TLB (measured: the prefetches stall on
 * page walks).  Only the page-aligned interior is advised; where the memory
 * is not anonymous or THP is off, the kernel just says no. */
static void hnsw_advise_huge(void *p, size_t n)
{
#ifdef MADV_HUGEPAGE
    const uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)p + pg - 1) & ~(pg - 1), b = ((uintptr_t)p + n) & ~(pg - 1);
    if (n >= (2u << 20) && b > a) (void)madvise((void *)a, b - a, MADV_HUGEPAGE);
#else
    (void)p;
    (void)n;
#endif
}

int hnsw_borrows(const hnsw *h, const void *p)
{
    return p && (p == h->bvec.p || p == h->bl0.p);
}

/* Give back the vector and layer-0 arrays: free what was allocated (pcap
 * slots), release what was borrowed from a snapshot. */
static void hnsw_unborrow(hnsw *h, hnsw_borrow *b)
{
    if (!b->p) return;
    if (h->release) h->release(h->release_ud, b->p, b->len);
    h->borrowed -= b->len;
    *b = (hnsw_borrow){ NULL, 0 };
}

static void hnsw_drop_arrays(hnsw *h)
{
    vec_mem_free(&h->mem, h->vecs_raw, h->vecs_bytes);
    if (!h->bl0.p) vec_mem_free(&h->mem, h->l0, h->l0_bytes);
    hnsw_unborrow(h, &h->bvec);
    hnsw_unborrow(h, &h->bl0);
    h->vecs_raw = NULL;
    h->vecs_bytes = 0;
    h->vecs = NULL;
    h->l0 = NULL;
    h->l0_bytes = 0;
}

/* Make the node arrays ncap >= cap slots long (ncap == cap: out of the
 * short ones a load leaves, see hnsw_load_arrays).  They grow in place
 * where the allocator can (vec_mem_resize; the default allocator moves a
 * big array's pages with mremap, vecbase.c), so an insert that grows a
 * large index does not stop the server for the time of a copy (300,000 x
 * 128-d: ~0.4 s on the test VM).
 * What may fail is done first (the overflow tables of all layers, the
 * write-side scratch); then vectors, layer 0 and the upper-layer pointers,
 * each one's size kept with it, so a failure part way leaves the graph as
 * it was, some array merely longer. */
static int hnsw_grow(hnsw *h, uint32_t ncap)
{
    size_t lb = (size_t)ncap * h->s0 * sizeof(uint32_t);
    size_t ub = (size_t)ncap * sizeof(uint32_t *);
    uint64_t *xe[HNSW_MAX_LEVEL + 1] = { NULL };
    uint32_t xcap[HNSW_MAX_LEVEL + 1];
    int failed = 0;
    for (int l = 0; l <= HNSW_MAX_LEVEL && !failed; l++) {
        xcap[l] = xh_size_for(h, l, ncap);
        if (xcap[l] > h->xh[l].cap)
            failed = !(xe[l] = vec_mem_alloc(&h->mem, (size_t)xcap[l] * sizeof *xe[l]));
    }
    if (failed || ctx_reserve(h->w, ncap, h->efc)) goto fail;
    /* vectors (copied out of a borrowed range: vecs_raw is NULL then) */
    void *nv = vec_mem_resize_vecs(&h->mem, &h->vecs_raw, &h->vecs_bytes, h->vecs,
                                   (size_t)ncap * h->vb, (size_t)h->hwm * h->vb);
    if (!nv) goto fail;
    h->vecs = nv;
    hnsw_unborrow(h, &h->bvec);
    hnsw_advise_huge(h->vecs_raw, h->vecs_bytes);
    /* layer 0 */
    size_t keep = (size_t)h->hwm * h->s0 * sizeof(uint32_t);
    uint32_t *l0 = h->bl0.p ? vec_mem_alloc(&h->mem, lb)
                            : vec_mem_resize(&h->mem, h->l0, h->l0_bytes, lb, keep);
    if (!l0) goto fail;
    if (h->bl0.p) {
        memcpy(l0, h->l0, keep);
        hnsw_unborrow(h, &h->bl0);
    }
    h->l0 = l0;
    h->l0_bytes = lb;
    hnsw_advise_huge(l0, lb);
    /* upper-layer pointers: pcap slots until here */
    uint32_t **up = vec_mem_resize(&h->mem, h->up, (size_t)h->pcap * sizeof *up, ub,
                                   (size_t)h->hwm * sizeof *up);
    if (!up) goto fail;
    memset(up + h->hwm, 0, (size_t)(ncap - h->hwm) * sizeof *up);
    h->up = up;
    for (int l = 0; l <= HNSW_MAX_LEVEL; l++)
        if (xe[l]) xh_rehash(h, l, xe[l], xcap[l]);
    h->cap = h->pcap = ncap;
    return 0;
fail:
    for (int l = 0; l <= HNSW_MAX_LEVEL; l++)
        if (xe[l]) vec_mem_free(&h->mem, xe[l], (size_t)xcap[l] * sizeof *xe[l]);
    return -ENOMEM;
}

int hnsw_reserve(hnsw *h, uint32_t n)
{
    if (n <= h->pcap) return 0;     /* pcap <= cap */
    if (n > HNSW_ID_MAX) return VEC_EFULL;
    /* Within capacity but past the slots a load left: same capacity. */
    return hnsw_grow(h, n <= h->cap ? h->cap : vec_grow_capacity(h->cap, n, HNSW_ID_MAX));
}

static size_t hnsw_upper_bytes(const hnsw *h, int level)
{
    return (size_t)level * h->s1 * sizeof(uint32_t);
}

static int hnsw_scratch_for(hnsw *h, uint32_t ef);
static void hnsw_commit_insert(hnsw *h, const void *vec, int level, uint32_t *upper,
                               const uint32_t *plan, const uint32_t *plan_n, uint32_t *id_out);

/* Room for a mutation's beam of ef (0: ef_construction); the beam used. */
static int hnsw_beam(hnsw *h, uint32_t *ef)
{
    if (*ef == 0) *ef = h->efc;
    if (*ef > VEC_EF_MAX) *ef = VEC_EF_MAX;
    if (hnsw_scratch_for(h, *ef) || ctx_reserve(h->w, h->pcap, *ef)) return -ENOMEM;
    return 0;
}

int hnsw_insert(hnsw *h, const void *vec, uint32_t *id_out)
{
    return hnsw_insert_ef(h, vec, 0, id_out);
}

int hnsw_insert_ef(hnsw *h, const void *vec, uint32_t ef, uint32_t *id_out)
{
    int rc = hnsw_reserve(h, h->count + 1);
    if (!rc) rc = hnsw_beam(h, &ef);
    if (rc) return rc;
    uint64_t rng_before = h->rng;
    int level = hnsw_random_level(h);
    uint32_t *upper = NULL;
    if (level > 0) {
        upper = vec_mem_alloc(&h->mem, hnsw_upper_bytes(h, level));
        if (!upper) { h->rng = rng_before; return -ENOMEM; }
        memset(upper, 0, hnsw_upper_bytes(h, level));
    }
    if ((rc = hnsw_plan_here(h, vec, level, HNSW_NONE, ef)) != 0) {
        vec_mem_free(&h->mem, upper, hnsw_upper_bytes(h, level));
        h->rng = rng_before;
        return rc;
    }
    hnsw_commit_insert(h, vec, level, upper, h->plan, h->plan_n, id_out);
    return 0;
}

/* Commit an insert planned for this level: nothing here can fail. */
static void hnsw_commit_insert(hnsw *h, const void *vec, int level, uint32_t *upper,
                               const uint32_t *plan, const uint32_t *plan_n, uint32_t *id_out)
{
    uint32_t id = h->free_head;
    if (id != HNSW_NONE) h->free_head = hnsw_l0(h, id)[HNSW_LINKS];
    else id = h->hwm++;
    uint32_t *r = hnsw_l0(h, id);
    r[0] = (uint32_t)level << HNSW_LEVEL_SHIFT;
    r[1] = 0;
    h->up[id] = upper;
    memcpy(h->vecs + (size_t)id * h->vb, vec, h->vb);
    hnsw_connect(h, id, level, plan, plan_n);
    if (h->entry == HNSW_NONE || level > h->max_level) {
        h->entry = id;
        h->max_level = level;
    }
    h->count++;
    *id_out = id;
    hnsw_mutated(h);
    /* after hnsw_mutated, which forgets the previous outcome */
    h->last.level = level;
    h->last.M = h->M;
    memcpy(h->last.n, plan_n, sizeof h->last.n);
    memcpy(h->last.ids, plan, (size_t)(level + 1) * h->M * sizeof *plan);
}

/* ---- inserts planned off the loop ------------------------------------------
 * hnsw_prepare runs the planning phase of an insert under a read lock, on
 * any thread, with the caller's search context for scratch: it peeks at
 * the level the next insert would draw (without drawing it) and plans
 * exactly as hnsw_insert would, so that committing the plan while the
 * graph has not changed gives the very graph a direct insert would have
 * given (replaying the log reproduces it).  Whether the graph changed is
 * the mutation counter's and the RNG's to say. */

int hnsw_prepare(const hnsw *h, hnsw_search_ctx *c, const void *vec, uint32_t ef,
                 hnsw_prepared *out)
{
    if (ef == 0) ef = h->efc;
    if (ef > VEC_EF_MAX) ef = VEC_EF_MAX;
    uint32_t need = ef > 2 * h->M0 + 2 ? ef : 2 * h->M0 + 2;
    if (c->pcap < need) {
        vec_pair *pc = vec_mem_alloc(&c->mem, (size_t)need * sizeof *pc);
        uint32_t *pp = vec_mem_alloc(&c->mem, (size_t)need * sizeof *pp);
        if (!pc || !pp) {
            vec_mem_free(&c->mem, pc, (size_t)need * sizeof *pc);
            vec_mem_free(&c->mem, pp, (size_t)need * sizeof *pp);
            return -ENOMEM;
        }
        vec_mem_free(&c->mem, c->pcand, (size_t)c->pcap * sizeof *c->pcand);
        vec_mem_free(&c->mem, c->ppruned, (size_t)c->pcap * sizeof *c->ppruned);
        c->pcand = pc;
        c->ppruned = pp;
        c->pcap = need;
    }
    if (ctx_reserve(c, h->pcap, ef)) return -ENOMEM;
    uint64_t rng = h->rng;
    out->level = hnsw_level_from(h, &rng);
    out->muts = h->muts;
    out->rng = h->rng;
    out->M = h->M;
    return hnsw_plan(h, c, c->pcand, c->ppruned, out->ids, out->n, vec, out->level, HNSW_NONE,
                     ef);
}

int hnsw_insert_prepared(hnsw *h, const void *vec, const hnsw_prepared *p, uint32_t *id_out)
{
    if (p->muts != h->muts || p->rng != h->rng || p->M != h->M) return -EAGAIN;
    int rc = hnsw_reserve(h, h->count + 1);
    if (rc) return rc;
    uint32_t *upper = NULL;
    if (p->level > 0) {
        upper = vec_mem_alloc(&h->mem, hnsw_upper_bytes(h, p->level));
        if (!upper) return -ENOMEM;
        memset(upper, 0, hnsw_upper_bytes(h, p->level));
    }
    int level = hnsw_random_level(h);       /* the draw the plan peeked at */
    CHECK(level == p->level);
    hnsw_commit_insert(h, vec, level, upper, p->ids, p->n, id_out);
    return 0;
}

/* ---- inserts replayed from their outcome ----------------------------------
 * An insert's outcome -- its level and the neighbours it chose on each
 * layer -- is all hnsw_connect needs: replaying it on the graph it was
 * made on gives the same graph without the neighbour search (the log and
 * the replication stream carry it, oplog.h's OP_VADD_OUTCOME).  Nothing
 * here trusts the outcome: a level other than the next draw, or a
 * neighbour that is not a live node of that layer, makes it -EAGAIN. */

int hnsw_last_plan(const hnsw *h, hnsw_prepared *out)
{
    if (h->last.level < 0) return 0;
    *out = h->last;
    return 1;
}

int hnsw_insert_planned(hnsw *h, const void *vec, const hnsw_prepared *p, uint32_t *id_out)
{
    uint64_t rng = h->rng;
    if (p->level < 0 || p->level > HNSW_MAX_LEVEL || p->M != h->M ||
        hnsw_level_from(h, &rng) != p->level)
        return -EAGAIN;
    int top = h->entry == HNSW_NONE ? -1 : p->level < h->max_level ? p->level : h->max_level;
    for (int l = 0; l <= HNSW_MAX_LEVEL; l++) {
        if (p->n[l] > (l <= top ? h->M : 0)) return -EAGAIN;
        const uint32_t *ids = p->ids + (size_t)l * h->M;
        for (uint32_t i = 0; i < p->n[l]; i++) {
            if (ids[i] >= h->hwm || !hnsw_is_live(h, ids[i]) || hnsw_node_level(h, ids[i]) < l)
                return -EAGAIN;
            for (uint32_t j = 0; j < i; j++)
                if (ids[j] == ids[i]) return -EAGAIN;
        }
    }
    int rc = hnsw_reserve(h, h->count + 1);
    if (rc) return rc;
    uint32_t *upper = NULL;
    if (p->level > 0) {
        upper = vec_mem_alloc(&h->mem, hnsw_upper_bytes(h, p->level));
        if (!upper) return -ENOMEM;
        memset(upper, 0, hnsw_upper_bytes(h, p->level));
    }
    int level = hnsw_random_level(h);       /* the draw checked above */
    hnsw_commit_insert(h, vec, level, upper, p->ids, p->n, id_out);
    return 0;
}

/* ---- delete ------------------------------------------------------------- */

/* x links to h->dying on this layer: re-choose x's list from its other
 * links and the dying node's former links (h->dl[0..ndl)). */
static void hnsw_repair(hnsw *h, uint32_t x, int layer, uint32_t ndl)
{
    const uint32_t *lx = hnsw_list(h, x, layer);
    uint32_t n = list_count(lx), k = 0;
    const void *vx = hnsw_vec(h, x);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t y = lx[HNSW_LINKS + i];
        if (y != h->dying) h->cand[k++] = (vec_pair){ hnsw_dist(h, vx, hnsw_vec(h, y)), y };
    }
    for (uint32_t i = 0; i < ndl; i++) {
        uint32_t y = h->dl[i], dup = (y == x);
        for (uint32_t j = 0; j < k && !dup; j++) dup = h->cand[j].id == y;
        if (!dup) h->cand[k++] = (vec_pair){ hnsw_dist(h, vx, hnsw_vec(h, y)), y };
    }
    pairs_sort(h->cand, k);
    /* Fill back to the degree x had, not beyond: the lost link is replaced,
     * the list does not swell over the hints. */
    uint32_t max = hnsw_maxdeg(h, layer), room = max - list_nhint(lx);
    uint32_t fill = HNSW_FILL_REPAIR ? (n < room ? n : room) : 0;
    uint32_t m = hnsw_select(h, h->cand, k, max, fill, h->sel, h->pruned);
    hnsw_list_replace(h, x, layer, h->sel, m);
}

/* If x (still) links to h->dying on this layer, repair it.  1 if it did. */
static int hnsw_check_inlink(hnsw *h, uint32_t x, int layer, uint32_t ndl)
{
    if (x == h->dying || !hnsw_is_live(h, x) || hnsw_level(h, x) < layer ||
        !list_has(hnsw_list(h, x, layer), h->dying))
        return 0;
    hnsw_repair(h, x, layer, ndl);
    return 1;
}

/* Beam search (ef_construction) for the dying node's vector on this layer,
 * checking every node it touches: finds in-links whose hints were dropped
 * when they come from near the dying node. */
static void hnsw_inlinks_by_search(hnsw *h, int layer, uint32_t ndl)
{
    const uint32_t *indeg = &hnsw_list(h, h->dying, layer)[1];
    const void *v = hnsw_vec(h, h->dying);
    uint32_t cur = h->entry;
    float d = hnsw_dist(h, v, hnsw_vec(h, cur));
    for (int l = h->max_level; l > layer; l--) cur = hnsw_greedy(h, v, cur, &d, l);
    hnsw_search_ctx *c = h->w;
    c->rec = h->rec;
    c->nrec = 0;
    c->reccap = h->reccap;
    /* If the heap cannot grow, the search stops early with fewer nodes
     * recorded; the scan after it still finds the rest. */
    (void)hnsw_search_layer(h, c, v, cur, d, h->efc, layer, NULL, NULL, 0);
    c->rec = NULL;
    for (uint32_t i = 0; i < c->nrec && *indeg; i++) hnsw_check_inlink(h, h->rec[i], layer, ndl);
}

/* Find every node still linking to h->dying on this layer and repair it.
 * The hints name them all unless some were dropped for room; then the
 * dying node's neighbourhood, a search, and at last the whole layer.  The
 * in-degree counter says when all have been found. */
static void hnsw_repair_inlinks(hnsw *h, int layer, uint32_t ndl)
{
    uint32_t *l = hnsw_list(h, h->dying, layer);
    uint32_t nh = list_nhint(l);
    memcpy(h->tmp, list_hints(l, hnsw_maxdeg(h, layer)), (size_t)nh * sizeof *h->tmp);
    for (uint32_t i = 0; i < nh && l[1]; i++) hnsw_check_inlink(h, h->tmp[i], layer, ndl);
    /* Each repair removes its own entry from the overflow map. */
    for (uint32_t x; l[1] && (x = xh_any(&h->xh[layer], h->dying)) != HNSW_NONE;)
        CHECK(hnsw_check_inlink(h, x, layer, ndl));
    for (uint32_t i = 0; i < ndl && l[1]; i++) hnsw_check_inlink(h, h->dl[i], layer, ndl);
    if (!l[1]) return;
    h->inlink_misses++;
    for (uint32_t i = 0; i < ndl && l[1]; i++) {
        const uint32_t *ly = hnsw_list(h, h->dl[i], layer);
        uint32_t n = list_count(ly);
        memcpy(h->tmp, ly + HNSW_LINKS, (size_t)n * sizeof *h->tmp);
        for (uint32_t j = 0; j < n && l[1]; j++) hnsw_check_inlink(h, h->tmp[j], layer, ndl);
    }
    if (l[1]) hnsw_inlinks_by_search(h, layer, ndl);
    if (l[1]) h->inlink_scans++;
    for (uint32_t x = 0; x < h->hwm && l[1]; x++) hnsw_check_inlink(h, x, layer, ndl);
}

static void hnsw_unlink_layer(hnsw *h, int layer)
{
    uint32_t id = h->dying;
    uint32_t *l = hnsw_list(h, id, layer);
    uint32_t ndl = list_count(l);
    memcpy(h->dl, l + HNSW_LINKS, (size_t)ndl * sizeof *h->dl);
    list_set_count(l, 0);
    /* Former reciprocal neighbours become hints here, beside the others. */
    for (uint32_t i = 0; i < ndl; i++) link_removed(h, id, h->dl[i], layer);
    if (l[1]) hnsw_repair_inlinks(h, layer, ndl);
    CHECK(l[1] == 0 && list_nhint(l) == 0);
    for (uint32_t i = 0; i < ndl; i++)
        if (hnsw_list(h, h->dl[i], layer)[1] == 0) hnsw_fix_orphan(h, h->dl[i], layer);
}

/* The entry point is going away: prefer a neighbour on the top layer (same
 * level, O(1)); if it was alone up there, scan for the highest node. */
static void hnsw_move_entry(hnsw *h, uint32_t id)
{
    const uint32_t *l = hnsw_list(h, id, h->max_level);
    if (list_count(l) > 0) {
        h->entry = l[HNSW_LINKS];
        return;
    }
    uint32_t best = HNSW_NONE;
    int bl = -1;
    for (uint32_t x = 0; x < h->hwm; x++)
        if (x != id && hnsw_is_live(h, x) && hnsw_level(h, x) > bl) {
            best = x;
            bl = hnsw_level(h, x);
        }
    h->entry = best;
    h->max_level = bl;
}

static void hnsw_unlink(hnsw *h, uint32_t id, int level)
{
    h->dying = id;
    for (int l = 0; l <= level; l++) hnsw_unlink_layer(h, l);
    h->dying = HNSW_NONE;
}

int hnsw_delete(hnsw *h, uint32_t id)
{
    if (!hnsw_is_live(h, id)) return -EINVAL;
    int level = hnsw_level(h, id);
    if (id == h->entry) hnsw_move_entry(h, id);
    hnsw_unlink(h, id, level);
    vec_mem_free(&h->mem, h->up[id], hnsw_upper_bytes(h, level));
    h->up[id] = NULL;
    uint32_t *r = hnsw_l0(h, id);
    r[0] = HNSW_FREE;
    r[1] = 0;
    r[HNSW_LINKS] = h->free_head;
    h->free_head = id;
    h->count--;
    hnsw_mutated(h);
    return 0;
}

int hnsw_update(hnsw *h, uint32_t id, const void *vec)
{
    return hnsw_update_ef(h, id, vec, 0);
}

int hnsw_update_ef(hnsw *h, uint32_t id, const void *vec, uint32_t ef)
{
    if (!hnsw_is_live(h, id)) return -EINVAL;
    int level = hnsw_level(h, id);
    int rc = hnsw_beam(h, &ef);
    if (!rc) rc = hnsw_plan_here(h, vec, level, id, ef);
    if (rc) return rc;
    /* Commit: unlink with the old vector, relink with the new.  The node
     * keeps its level, so the entry point (maybe this node) stays valid. */
    hnsw_unlink(h, id, level);
    memcpy(h->vecs + (size_t)id * h->vb, vec, h->vb);
    hnsw_connect(h, id, level, h->plan, h->plan_n);
    hnsw_mutated(h);
    return 0;
}

/* ---- reachability sweep ------------------------------------------------ */

/* Mark everything reachable on layer 0 from start (queue q, bitmap seen). */
static void hnsw_bfs0(const hnsw *h, uint32_t start, uint32_t *q, uint8_t *seen)
{
    uint32_t head = 0, tail = 0;
    if (seen[start]) return;
    seen[start] = 1;
    q[tail++] = start;
    while (head < tail) {
        const uint32_t *l = hnsw_l0(h, q[head++]);
        for (uint32_t i = 0; i < list_count(l); i++) {
            uint32_t y = l[HNSW_LINKS + i];
            if (!seen[y]) { seen[y] = 1; q[tail++] = y; }
        }
    }
}

/* Pruning keeps every node's in-degree >= 1 (hnsw_fix_orphan), but a prune
 * can still cut the last link from the reachable part into a group whose
 * members only link to each other: rare with true metrics, common with
 * inner product in few dimensions.  No local rule sees that, so this walk
 * finds such groups and links each in from a reachable node.  It runs by
 * itself once the mutations since the last walk pass count/4 + 256 (an
 * amortised handful of link reads per mutation) and can be called. */
int hnsw_reconnect(hnsw *h)
{
    h->muts++;
    h->sweep_debt = 0;
    if (h->count == 0) return 0;
    size_t qb = (size_t)h->hwm * sizeof(uint32_t);
    uint32_t *q = vec_mem_alloc(&h->mem, qb);
    uint8_t *seen = vec_mem_alloc(&h->mem, h->hwm);
    int fixed = 0;
    if (!q || !seen) {
        fixed = -ENOMEM;
        goto out;
    }
    /* Re-linking can displace links (see hnsw_attach_reachable), so walk
     * again until a walk finds nothing, a few times at most. */
    for (int pass = 0, found = 1; found && pass < 4; pass++) {
        found = 0;
        memset(seen, 0, h->hwm);
        hnsw_bfs0(h, h->entry, q, seen);
        for (uint32_t x = 0; x < h->hwm; x++) {
            if (seen[x] || !hnsw_is_live(h, x)) continue;
            hnsw_attach_reachable(h, x, 0, seen);
            hnsw_bfs0(h, x, q, seen);
            found++;
        }
        fixed += found;
    }
    h->reconnected += (uint64_t)fixed;
out:
    vec_mem_free(&h->mem, q, qb);
    vec_mem_free(&h->mem, seen, h->hwm);
    return fixed;
}

/* After each successful mutation. */
static void hnsw_mutated(hnsw *h)
{
    h->muts++;
    h->last.level = -1;
    if (++h->sweep_debt > h->count / 4 + 256) (void)hnsw_reconnect(h);
}

/* ---- life cycle --------------------------------------------------------- */

static int hnsw_params_ok(const hnsw_params *p)
{
    return p->dim >= 1 && p->dim <= VEC_DIM_MAX && p->M >= 2 && p->M <= VEC_M_MAX &&
           p->ef_construction >= 1 && p->ef_construction <= VEC_EF_MAX &&
           p->ef_search >= 1 && p->ef_search <= VEC_EF_MAX &&
           vec_format_ok(p->metric, p->quant);
}

/* The fixed scratch with room for a beam of ef candidates (cand, pruned):
 * kept if big enough, else replaced by a bigger block (its contents live
 * only within one mutation).  0 or -ENOMEM with the old block kept. */
static int hnsw_scratch_for(hnsw *h, uint32_t ef)
{
    uint32_t want = ef > 2 * h->M0 + 2 ? ef : 2 * h->M0 + 2;
    if (h->scratch && want <= h->ncmax) return 0;
    size_t words = (size_t)want * 3 + 4 * (size_t)(h->M0 + 1) +
                   (size_t)(HNSW_MAX_LEVEL + 1) * h->M;
    uint32_t *p = vec_mem_alloc(&h->mem, words * sizeof(uint32_t));
    if (!p) return -ENOMEM;
    vec_mem_free(&h->mem, h->scratch, h->scratch_bytes);
    h->scratch = p;
    h->scratch_bytes = words * sizeof(uint32_t);
    h->ncmax = want;
    h->cand = (vec_pair *)p;  p += 2 * (size_t)h->ncmax;
    h->pruned = p;               p += h->ncmax;
    h->sel = p;                  p += h->M0 + 1;
    h->old = p;                  p += h->M0 + 1;
    h->dl = p;                   p += h->M0 + 1;
    h->tmp = p;                  p += h->M0 + 1;
    h->plan = p;
    return 0;
}

static int hnsw_alloc_scratch(hnsw *h)
{
    if (hnsw_scratch_for(h, h->efc)) return -ENOMEM;
    h->reccap = h->efc * h->M0;
    h->rec = vec_mem_alloc(&h->mem, (size_t)h->reccap * sizeof *h->rec);
    return h->rec ? 0 : -ENOMEM;
}

/* A graph with no slots: everything but the node arrays. */
static hnsw *hnsw_create(const hnsw_params *p, int *err)
{
    int e = -EINVAL;
    const vec_allocator *al = p->alloc ? p->alloc : &vec_default_allocator;
    hnsw *h = NULL;
    if (!hnsw_params_ok(p)) goto fail;
    e = -ENOMEM;
    if (!(h = al->alloc(al->ud, sizeof *h))) goto fail;
    memset(h, 0, sizeof *h);
    vec_mem_init(&h->mem, al);
    h->kern = p->kernels ? p->kernels : dist_active();
    h->metric = p->metric;
    vec_format fmt;
    vec_format_init(&fmt, p->metric, p->quant, p->dim, h->kern);
    h->quant = p->quant;
    h->vb = fmt.bytes;
    h->pair = fmt.pair;
    h->off = fmt.off;
    h->sgn = fmt.sgn;
    h->dim = p->dim;
    h->M = p->M;
    h->M0 = 2 * p->M;
    h->efc = p->ef_construction;
    h->efs = p->ef_search;
    h->s0 = HNSW_LINKS + h->M0;
    h->s1 = HNSW_LINKS + h->M;
    h->mult = 1.0 / log((double)p->M);
    h->rng = p->seed;
    h->last.level = -1;
    h->free_head = h->entry = h->dying = HNSW_NONE;
    h->max_level = -1;
    if (!(h->w = hnsw_search_ctx_new(al)) || hnsw_alloc_scratch(h) ||
        ctx_reserve(h->w, 0, h->efc))
        goto fail;
    return h;
fail:
    hnsw_free(h);
    if (err) *err = e;
    return NULL;
}

hnsw *hnsw_new(const hnsw_params *p, int *err)
{
    hnsw *h = hnsw_create(p, err);
    if (h && p->initial_capacity && hnsw_reserve(h, p->initial_capacity)) {
        hnsw_free(h);
        if (err) *err = -ENOMEM;
        return NULL;
    }
    return h;
}

void hnsw_free(hnsw *h)
{
    if (!h) return;
    for (uint32_t id = 0; h->up && id < h->hwm; id++)
        if (h->up[id]) vec_mem_free(&h->mem, h->up[id], hnsw_upper_bytes(h, hnsw_level(h, id)));
    hnsw_drop_arrays(h);
    vec_mem_free(&h->mem, h->up, (size_t)h->pcap * sizeof *h->up);
    vec_mem_free(&h->mem, h->scratch, h->scratch_bytes);
    vec_mem_free(&h->mem, h->rec, (size_t)h->reccap * sizeof *h->rec);
    for (int l = 0; l <= HNSW_MAX_LEVEL; l++)
        vec_mem_free(&h->mem, h->xh[l].e, (size_t)h->xh[l].cap * sizeof *h->xh[l].e);
    hnsw_search_ctx_free(h->w);
    h->mem.al.free(h->mem.al.ud, h, sizeof *h);
}

/* ---- accessors ---------------------------------------------------------- */

int hnsw_is_live(const hnsw *h, uint32_t id)
{
    return id < h->hwm && !(hnsw_l0(h, id)[0] & HNSW_FREE);
}

int hnsw_node_level(const hnsw *h, uint32_t id)
{
    return hnsw_is_live(h, id) ? hnsw_level(h, id) : -1;
}

int hnsw_links(const hnsw *h, uint32_t id, int layer, uint32_t *out, uint32_t cap)
{
    if (!hnsw_is_live(h, id) || layer < 0 || layer > hnsw_level(h, id)) return -EINVAL;
    const uint32_t *l = hnsw_list(h, id, layer);
    uint32_t n = list_count(l);
    for (uint32_t i = 0; i < n && i < cap; i++) out[i] = l[HNSW_LINKS + i];
    return (int)n;
}

const void *hnsw_vector(const hnsw *h, uint32_t id)
{
    return hnsw_is_live(h, id) ? hnsw_vec(h, id) : NULL;
}

uint32_t hnsw_count(const hnsw *h) { return h->count; }
uint32_t hnsw_capacity(const hnsw *h) { return h->cap; }
int hnsw_max_level(const hnsw *h) { return h->max_level; }
uint32_t hnsw_entry(const hnsw *h) { return h->entry; }
const dist_kernels *hnsw_kernels(const hnsw *h) { return h->kern; }

size_t hnsw_memory(const hnsw *h)
{
    /* The node arrays hold cap slots, hwm of them ever used: the slots past
     * hwm were never written, so the kernel backs none of their pages (big
     * arrays are mappings of their own, vecbase.c) -- they are address
     * space, not memory, and counting them made the figure jump by a third
     * at each growth. */
    size_t slack = 0;
    if (h->vecs_raw && h->vecs_bytes > (size_t)h->hwm * h->vb + 64)
        slack += h->vecs_bytes - 64 - (size_t)h->hwm * h->vb;
    if (!h->bl0.p && h->l0_bytes > (size_t)h->hwm * h->s0 * sizeof(uint32_t))
        slack += h->l0_bytes - (size_t)h->hwm * h->s0 * sizeof(uint32_t);
    return sizeof *h + h->mem.bytes - slack + sizeof *h->w + h->w->mem.bytes + h->borrowed;
}

void hnsw_stats_get(const hnsw *h, hnsw_stats *s)
{
    uint64_t links = 0;
    for (uint32_t id = 0; id < h->hwm; id++)
        if (hnsw_is_live(h, id)) links += list_count(hnsw_l0(h, id));
    uint64_t nonrecip = 0, hinted = 0, full = 0;
    for (uint32_t a = 0; a < h->hwm; a++) {
        if (!hnsw_is_live(h, a)) continue;
        uint32_t *la = hnsw_l0(h, a);
        full += list_count(la) + list_nhint(la) == h->M0;
        hinted += list_nhint(la);
        for (uint32_t i = 0; i < list_count(la); i++)
            nonrecip += !list_has(hnsw_l0(h, la[HNSW_LINKS + i]), a);
    }
    s->nonrecip0 = nonrecip;
    s->hinted0 = hinted + h->xh[0].n;
    s->overflow0 = h->xh[0].n;
    s->full0 = full;
    s->count = h->count;
    s->capacity = h->cap;
    s->max_level = h->max_level;
    s->avg_degree0 = h->count ? (double)links / h->count : 0.0;
    s->inlink_scans = h->inlink_scans;
    s->inlink_misses = h->inlink_misses;
    s->hints_dropped = h->hints_dropped;
    s->orphans_fixed = h->orphans_fixed;
    s->reconnected = h->reconnected;
}

/* ---- validation and digest ---------------------------------------------- */


/* Per-node checks on one layer; counts actual in-links into indeg[]. */
static int hnsw_check_layer(const hnsw *h, int l, uint32_t *indeg, char *err, size_t errlen)
{
    memset(indeg, 0, (size_t)h->hwm * sizeof *indeg);
    for (uint32_t x = 0; x < h->hwm; x++) {
        if (!hnsw_is_live(h, x) || hnsw_level(h, x) < l) continue;
        const uint32_t *lx = hnsw_list(h, x, l);
        uint32_t n = list_count(lx);
        if (n > hnsw_maxdeg(h, l))
            return vec_corruptf(err, errlen, "node %u has %u links on layer %d", x, n, l);
        for (uint32_t i = 0; i < n; i++) {
            uint32_t y = lx[HNSW_LINKS + i];
            if (y == x) return vec_corruptf(err, errlen, "node %u links to itself (%u) on layer %d", x, y, l);
            if (!hnsw_is_live(h, y) || hnsw_level(h, y) < l)
                return vec_corruptf(err, errlen, "node %u links to dead or low node %u on layer %d", x, y, l);
            for (uint32_t j = 0; j < i; j++)
                if (lx[HNSW_LINKS + j] == y)
                    return vec_corruptf(err, errlen, "node %u links twice to %u on layer %d", x, y, l);
            indeg[y]++;
        }
    }
    for (uint32_t x = 0; x < h->hwm; x++)
        if (hnsw_is_live(h, x) && hnsw_level(h, x) >= l && indeg[x] != hnsw_list(h, x, l)[1])
            return vec_corruptf(err, errlen, "node %u: in-degree %u recorded wrong on layer %d", x,
                             indeg[x], l);
    return 0;
}

static int hnsw_check_globals(const hnsw *h, char *err, size_t errlen)
{
    uint32_t live = 0, top = 0;
    int maxl = -1;
    for (uint32_t x = 0; x < h->hwm; x++) {
        if (!hnsw_is_live(h, x)) continue;
        live++;
        if (hnsw_level(h, x) > maxl) { maxl = hnsw_level(h, x); top = x; }
        if ((hnsw_level(h, x) > 0) != (h->up[x] != NULL))
            return vec_corruptf(err, errlen, "node %u: upper block and level %d disagree", x,
                             hnsw_level(h, x));
    }
    if (live != h->count) return vec_corruptf(err, errlen, "count %u but %u live nodes", h->count, live);
    if (maxl != h->max_level)
        return vec_corruptf(err, errlen, "max level %d (node %u) recorded as %d", maxl, top,
                         h->max_level);
    if (live && (!hnsw_is_live(h, h->entry) || hnsw_level(h, h->entry) != maxl))
        return vec_corruptf(err, errlen, "entry point %u not live on the top layer", h->entry);
    if (!live && h->entry != HNSW_NONE)
        return vec_corruptf(err, errlen, "empty graph has entry %u", h->entry);
    uint32_t nfree = 0;
    for (uint32_t x = h->free_head; x != HNSW_NONE; x = hnsw_l0(h, x)[HNSW_LINKS]) {
        if (x >= h->hwm || hnsw_is_live(h, x) || ++nfree > h->hwm - live)
            return vec_corruptf(err, errlen, "free list broken at %u (%u entries)", x, nfree);
    }
    if (nfree != h->hwm - live)
        return vec_corruptf(err, errlen, "free list holds %u of %u free slots", nfree, h->hwm - live);
    return 0;
}

static int inline_hinted(const hnsw *h, uint32_t a, int l, uint32_t b)
{
    uint32_t *la = hnsw_list(h, a, l), nh = list_nhint(la), *hs = list_hints(la, hnsw_maxdeg(h, l));
    for (uint32_t i = 0; i < nh; i++)
        if (hs[i] == b) return 1;
    return 0;
}

/* Hints name exactly the one-way in-links: each names a live node linking
 * here one way, once; and unless some were dropped, every one-way link is
 * named. */
static int hnsw_check_hints(const hnsw *h, int l, char *err, size_t errlen)
{
    const hnsw_hint_map *m = &h->xh[l];
    for (uint32_t x = 0; x < h->hwm; x++) {
        if (!hnsw_is_live(h, x) || hnsw_level(h, x) < l) continue;
        uint32_t *lx = hnsw_list(h, x, l), nh = list_nhint(lx);
        uint32_t *hs = list_hints(lx, hnsw_maxdeg(h, l));
        if (list_count(lx) + nh > hnsw_maxdeg(h, l))
            return vec_corruptf(err, errlen, "node %u: links and hints overlap on layer %d", x, l);
        for (uint32_t i = 0; i < nh; i++) {
            uint32_t b = hs[i];
            if (!hnsw_is_live(h, b) || hnsw_level(h, b) < l || b == x ||
                !list_has(hnsw_list(h, b, l), x) || list_has(lx, b) || xh_find(m, x, b) >= 0)
                return vec_corruptf(err, errlen, "node %u: bad hint %u on layer %d", x, b, l);
            for (uint32_t j = 0; j < i; j++)
                if (hs[j] == b) return vec_corruptf(err, errlen, "node %u: hint %u twice", x, b);
        }
        for (uint32_t i = 0; h->hints_dropped == 0 && i < list_count(lx); i++) {
            uint32_t y = lx[HNSW_LINKS + i];
            if (!list_has(hnsw_list(h, y, l), x) && !inline_hinted(h, y, l, x) && xh_find(m, y, x) < 0)
                return vec_corruptf(err, errlen, "link %u -> %u on layer %d has no hint", x, y, l);
        }
    }
    for (uint32_t i = 0; i < m->cap; i++) {
        if (m->e[i] == XH_EMPTY) continue;
        uint32_t t = (uint32_t)(m->e[i] >> 32), src = (uint32_t)m->e[i];
        if (!hnsw_is_live(h, t) || !hnsw_is_live(h, src) || hnsw_level(h, t) < l ||
            hnsw_level(h, src) < l || !list_has(hnsw_list(h, src, l), t) ||
            list_has(hnsw_list(h, t, l), src) || inline_hinted(h, t, l, src) ||
            xh_find(m, t, src) != (int64_t)i)
            return vec_corruptf(err, errlen, "overflow hint %u -> %u bad on layer %d", src, t, l);
    }
    return 0;
}

int hnsw_validate(const hnsw *h, char *err, size_t errlen)
{
    int rc = hnsw_check_globals(h, err, errlen);
    if (rc || h->count == 0) return rc;
    size_t qb = (size_t)h->hwm * sizeof(uint32_t);
    uint32_t *buf = h->mem.al.alloc(h->mem.al.ud, qb);
    uint8_t *seen = h->mem.al.alloc(h->mem.al.ud, h->hwm);
    if (!buf || !seen) { rc = -ENOMEM; goto out; }
    for (int l = 0; l <= h->max_level && !rc; l++) {
        rc = hnsw_check_layer(h, l, buf, err, errlen);
        if (!rc) rc = hnsw_check_hints(h, l, err, errlen);
    }
    if (!rc) {
        memset(seen, 0, h->hwm);
        hnsw_bfs0(h, h->entry, buf, seen);
        uint32_t reached = 0;
        for (uint32_t x = 0; x < h->hwm; x++) reached += seen[x];
        for (uint32_t x = 0; x < h->hwm && reached != h->count; x++)
            if (hnsw_is_live(h, x) && !seen[x]) {
                rc = vec_corruptf(err, errlen, "node %u unreachable on layer 0 (%u of %u reached)", x,
                               reached, h->count);
                break;
            }
    }
out:
    if (buf) h->mem.al.free(h->mem.al.ud, buf, qb);
    if (seen) h->mem.al.free(h->mem.al.ud, seen, h->hwm);
    return rc;
}

static uint64_t fnv_word(uint64_t d, uint32_t w)
{
    for (int i = 0; i < 4; i++) {
        d ^= (w >> (8 * i)) & 0xFFu;
        d *= 0x100000001B3ull;
    }
    return d;
}

uint64_t hnsw_digest(const hnsw *h)
{
    uint64_t d = 0xCBF29CE484222325ull;
    d = fnv_word(d, h->entry);
    d = fnv_word(d, (uint32_t)h->max_level);
    d = fnv_word(d, h->hwm);
    for (uint32_t x = 0; x < h->hwm; x++) {
        d = fnv_word(d, hnsw_l0(h, x)[0]);
        if (!hnsw_is_live(h, x)) continue;
        for (int l = 0; l <= hnsw_level(h, x); l++) {
            const uint32_t *lx = hnsw_list(h, x, l);
            for (uint32_t i = 0; i < list_count(lx); i++) d = fnv_word(d, lx[HNSW_LINKS + i]);
        }
    }
    return d;
}

/* ---- snapshots (the layout is in the header comment) --------------------- */

#define HNSW_IMG_VERSION 1u
#define HNSW_META_LEN    104u

/* A list of max link slots as saved: header, links, zeros, hints. */
static void list_canon(const uint32_t *l, uint32_t max, uint32_t *out)
{
    uint32_t n = list_count(l), nh = list_nhint(l);
    out[0] = l[0];
    out[1] = l[1];
    memcpy(out + HNSW_LINKS, l + HNSW_LINKS, (size_t)n * sizeof *out);
    memset(out + HNSW_LINKS + n, 0, (size_t)(max - n - nh) * sizeof *out);
    memcpy(out + HNSW_LINKS + max - nh, l + HNSW_LINKS + max - nh, (size_t)nh * sizeof *out);
}

static void hnsw_save_meta(const hnsw *h, img_out *o)
{
    uint8_t m[HNSW_META_LEN];
    const uint32_t w[] = { HNSW_IMG_VERSION, h->dim, (uint32_t)h->metric, h->M, h->efc, h->efs,
                           h->cap, h->hwm, h->count, h->free_head, h->entry,
                           (uint32_t)h->max_level, h->sweep_debt, (uint32_t)h->quant };
    const uint64_t d[] = { h->rng, h->hints_dropped, h->orphans_fixed, h->reconnected,
                           h->inlink_misses, h->inlink_scans };
    for (size_t i = 0; i < sizeof w / sizeof *w; i++) le_put32(m + 4 * i, w[i]);
    for (size_t i = 0; i < sizeof d / sizeof *d; i++) le_put64(m + 56 + 8 * i, d[i]);
    img_out_begin(o, HNSW_IMG_META, 0);
    img_out_put(o, m, sizeof m);
    img_out_end(o);
}

static void hnsw_save_arrays(const hnsw *h, img_out *o)
{
    const size_t vb = h->vb;
    img_out_begin(o, HNSW_IMG_VECS, 1);
    for (uint32_t x = 0, y; x < h->hwm && !o->rc; x = y) {
        for (y = x; y < h->hwm && hnsw_is_live(h, y); y++) {}
        if (y > x) {
            img_out_put(o, hnsw_vec(h, x), (size_t)(y - x) * vb);
        } else {
            img_out_zero(o, vb);
            y++;
        }
    }
    img_out_end(o);

    uint32_t rec[HNSW_LINKS + 2 * VEC_M_MAX];
    img_out_begin(o, HNSW_IMG_L0, 1);
    for (uint32_t x = 0; x < h->hwm && !o->rc; x++) {
        const uint32_t *r = hnsw_l0(h, x);
        if (r[0] & HNSW_FREE) {
            memset(rec, 0, (size_t)h->s0 * sizeof *rec);
            rec[0] = HNSW_FREE;
            rec[HNSW_LINKS] = r[HNSW_LINKS];
        } else {
            list_canon(r, h->M0, rec);
        }
        img_out_put(o, rec, (size_t)h->s0 * sizeof *rec);
    }
    img_out_end(o);

    img_out_begin(o, HNSW_IMG_UPPER, 0);
    for (uint32_t x = 0; x < h->hwm && !o->rc; x++) {
        if (!hnsw_is_live(h, x)) continue;
        for (int l = 1; l <= hnsw_level(h, x); l++) {
            list_canon(hnsw_list(h, x, l), h->M, rec);
            img_out_put(o, rec, (size_t)h->s1 * sizeof *rec);
        }
    }
    img_out_end(o);
}

static void hnsw_save_hints(const hnsw *h, img_out *o)
{
    img_out_begin(o, HNSW_IMG_HINTS, 0);
    for (int l = 0; l <= HNSW_MAX_LEVEL; l++) {
        const hnsw_hint_map *m = &h->xh[l];
        uint8_t b[12];
        le_put32(b, m->cap);
        le_put32(b + 4, m->n);
        img_out_put(o, b, 8);
        for (uint32_t i = 0; i < m->cap; i++) {
            if (m->e[i] == XH_EMPTY) continue;
            le_put32(b, i);
            le_put32(b + 4, (uint32_t)(m->e[i] >> 32));
            le_put32(b + 8, (uint32_t)m->e[i]);
            img_out_put(o, b, 12);
        }
    }
    img_out_end(o);
}

int hnsw_save(const hnsw *h, img_sink *s)
{
    img_out o;
    o.s = s;
    o.rc = 0;
    o.n = 0;
    hnsw_save_meta(h, &o);
    hnsw_save_arrays(h, &o);
    hnsw_save_hints(h, &o);
    return o.rc;
}

/* The meta section, decoded. */
typedef struct hnsw_img_meta {
    uint32_t version, dim, metric, M, efc, efs, cap, hwm, count, free_head, entry;
    uint32_t max_level, sweep_debt, quant;
    uint64_t rng, hints_dropped, orphans_fixed, reconnected, inlink_misses, inlink_scans;
} hnsw_img_meta;

static int hnsw_load_meta(const hnsw_params *p, const img_source *src, hnsw_img_meta *m,
                          char *err, size_t errlen)
{
    static const uint32_t kinds[] = { HNSW_IMG_META, HNSW_IMG_VECS, HNSW_IMG_L0,
                                      HNSW_IMG_UPPER, HNSW_IMG_HINTS };
    if (src->n != 5) return vec_corruptf(err, errlen, "hnsw image: %zu sections, expected 5", src->n);
    for (size_t i = 0; i < 5; i++) {
        if (src->sec[i].kind != kinds[i])
            return vec_corruptf(err, errlen, "hnsw image: section %zu is kind 0x%04x, expected 0x%04x",
                             i, src->sec[i].kind, kinds[i]);
        if (src->sec[i].len && !src->sec[i].data)
            return vec_corruptf(err, errlen, "hnsw image: section 0x%04x has no data", kinds[i]);
    }
    const img_section *s = &src->sec[0];
    if (s->len != HNSW_META_LEN)
        return vec_corruptf(err, errlen, "hnsw image: meta section is %zu bytes, expected %u", s->len,
                         HNSW_META_LEN);
    const uint8_t *b = s->data;
    *m = (hnsw_img_meta){
        .version = le_get32(b), .dim = le_get32(b + 4), .metric = le_get32(b + 8), .M = le_get32(b + 12),
        .efc = le_get32(b + 16), .efs = le_get32(b + 20), .cap = le_get32(b + 24), .hwm = le_get32(b + 28),
        .count = le_get32(b + 32), .free_head = le_get32(b + 36), .entry = le_get32(b + 40),
        .max_level = le_get32(b + 44), .sweep_debt = le_get32(b + 48), .quant = le_get32(b + 52),
        .rng = le_get64(b + 56), .hints_dropped = le_get64(b + 64), .orphans_fixed = le_get64(b + 72),
        .reconnected = le_get64(b + 80), .inlink_misses = le_get64(b + 88),
        .inlink_scans = le_get64(b + 96),
    };
    if (m->version != HNSW_IMG_VERSION)
        return vec_corruptf(err, errlen, "hnsw image: version %u, this build reads %u", m->version,
                         HNSW_IMG_VERSION);
    const struct { const char *what; uint32_t img, want; } f[] = {
        { "dimension", m->dim, p->dim }, { "metric", m->metric, (uint32_t)p->metric },
        { "M", m->M, p->M }, { "ef_construction", m->efc, p->ef_construction },
        { "ef_search", m->efs, p->ef_search }, { "quantization", m->quant, (uint32_t)p->quant },
    };
    for (size_t i = 0; i < sizeof f / sizeof *f; i++)
        if (f[i].img != f[i].want)
            return vec_corruptf(err, errlen, "hnsw image: %s is %u, the index expects %u", f[i].what,
                             f[i].img, f[i].want);
    if (m->cap > HNSW_ID_MAX || m->hwm > m->cap || m->count > m->hwm)
        return vec_corruptf(err, errlen, "hnsw image: capacity %u, used %u, live %u out of order",
                         m->cap, m->hwm, m->count);
    /* The overflow tables are sized by the capacity, which only the image
     * states: a forged one could make loading allocate gigabytes.  Growth
     * (1.5x, vec_grow_capacity) never leaves more than about half the
     * slots unused, so past HNSW_LOAD_FREE_CAP slots a capacity over twice
     * the slots used is refused (an index reserved far ahead of its size
     * saves and loads below that bound only). */
    if (m->cap > HNSW_LOAD_FREE_CAP && m->cap > 2ull * m->hwm + 16)
        return vec_corruptf(err, errlen, "hnsw image: capacity %u for %u slots used: more than "
                            "growth ever leaves", m->cap, m->hwm);
    if ((int32_t)m->max_level < -1 || (int32_t)m->max_level > HNSW_MAX_LEVEL)
        return vec_corruptf(err, errlen, "hnsw image: max level %d", (int)(int32_t)m->max_level);
    uint64_t vb = (uint64_t)m->hwm * quant_record_bytes(p->quant, p->dim);
    uint64_t lb = (uint64_t)m->hwm * (HNSW_LINKS + 2 * p->M) * sizeof(uint32_t);
    if (src->sec[1].len != vb)
        return vec_corruptf(err, errlen, "hnsw image: vector section is %zu bytes, %u slots need %llu",
                         src->sec[1].len, m->hwm, (unsigned long long)vb);
    if (src->sec[2].len != lb)
        return vec_corruptf(err, errlen, "hnsw image: layer-0 section is %zu bytes, %u slots need %llu",
                         src->sec[2].len, m->hwm, (unsigned long long)lb);
    return 0;
}

/* The overflow tables are the one thing sized by capacity rather than by
 * the image's data: before anything is allocated, each table's size must be
 * what the capacity gives, so a damaged capacity (or size) cannot ask for
 * an absurd amount of memory.  The entries are read by hnsw_load_hints. */
static int hnsw_check_hint_sizes(const hnsw *h, const img_section *s, uint32_t cap, char *err,
                                 size_t errlen)
{
    const uint8_t *b = s->data;
    size_t at = 0;
    for (int l = 0; l <= HNSW_MAX_LEVEL; l++) {
        if (s->len - at < 8)
            return vec_corruptf(err, errlen, "hnsw image: hint section ends at layer %d", l);
        uint32_t size = le_get32(b + at), n = le_get32(b + at + 4);
        uint32_t want = cap ? xh_size_for(h, l, cap) : 0;
        if (size != want)
            return vec_corruptf(err, errlen, "hnsw image: hint section: layer %d overflow table "
                             "has %u slots, capacity %u gives %u", l, size, cap, want);
        if ((uint64_t)n * 4 > (uint64_t)size * 3 || (s->len - at - 8) / 12 < n)
            return vec_corruptf(err, errlen, "hnsw image: hint section: layer %d overflow table: "
                             "%u entries do not fit (%u slots, %zu bytes left)", l, n, size,
                             s->len - at - 8);
        at += 8 + (size_t)n * 12;
    }
    if (at != s->len)
        return vec_corruptf(err, errlen, "hnsw image: hint section has %zu bytes past the tables",
                         s->len - at);
    return 0;
}

/* A section the graph may keep pointers into: page-aligned in the file,
 * so (image.h) 64-byte aligned in memory. */
static int img_borrowable(const img_section *s)
{
    return s->page_aligned && s->len && ((uintptr_t)s->data & 63) == 0;
}

/* Scalars and the node arrays: borrowed when allowed, else copied.  The
 * arrays get only the hwm slots the image holds (pcap = hwm), whatever the
 * capacity says: loading never allocates more than the image's own size
 * (the overflow tables aside, whose size is cross-checked), and the first
 * insert needing slot hwm moves everything to arrays of cap slots, as the
 * original would have had. */
static int hnsw_load_arrays(hnsw *h, const hnsw_img_meta *m, const img_source *src)
{
    const img_section *sv = &src->sec[1], *sl = &src->sec[2];
    const uint32_t n = m->hwm;
    h->cap = m->cap;
    h->count = m->count;
    h->free_head = m->free_head;
    h->entry = m->entry;
    h->max_level = (int32_t)m->max_level;
    h->sweep_debt = m->sweep_debt;
    h->rng = m->rng;
    h->last.level = -1;
    h->hints_dropped = m->hints_dropped;
    h->orphans_fixed = m->orphans_fixed;
    h->reconnected = m->reconnected;
    h->inlink_misses = m->inlink_misses;
    h->inlink_scans = m->inlink_scans;
    if (n == 0) return 0;
    if (!(h->up = vec_mem_alloc(&h->mem, (size_t)n * sizeof *h->up))) return -ENOMEM;
    memset(h->up, 0, (size_t)n * sizeof *h->up);
    h->pcap = n;    /* from here on hnsw_free frees n slots */
    if (img_borrowable(sv)) {
        h->vecs = sv->data;
        h->bvec = (hnsw_borrow){ sv->data, sv->len };
        h->borrowed += sv->len;
    } else {
        size_t vb = sv->len + 64;
        if (!(h->vecs_raw = vec_mem_alloc(&h->mem, vb))) return -ENOMEM;
        h->vecs_bytes = vb;
        h->vecs = (unsigned char *)(((uintptr_t)h->vecs_raw + 63) & ~(uintptr_t)63);
        hnsw_advise_huge(h->vecs_raw, vb);
        memcpy(h->vecs, sv->data, sv->len);
    }
    if (img_borrowable(sl)) {
        h->l0 = sl->data;
        h->bl0 = (hnsw_borrow){ sl->data, sl->len };
        h->borrowed += sl->len;
    } else {
        if (!(h->l0 = vec_mem_alloc(&h->mem, sl->len))) return -ENOMEM;
        h->l0_bytes = sl->len;
        hnsw_advise_huge(h->l0, sl->len);
        memcpy(h->l0, sl->data, sl->len);
    }
    h->hwm = n;
    return ctx_reserve(h->w, n, h->efc);
}

/* ---- load checks ----------------------------------------------------------
 *
 * What a delete trusts, and so what an image must prove before it is used
 * (a snapshot may come from a peer: nothing in it may stop the process).
 * For every live node a and every layer l <= level(a):
 *   1. a's list fits (links + hints <= the layer's degree) and its links
 *      name other live nodes on layer l, none twice (a link twice makes a
 *      later re-choice of the list drop one copy and keep the in-degree);
 *   2. a's in-degree word is the number of lists on l holding a (else a
 *      delete's in-link search comes up short and its CHECK fires, or a
 *      counter underflows);
 *   3. each hint of a, in its list or in the overflow table, names a live
 *      node b on l with b -> a and not a -> b, and no (a, b) is hinted
 *      twice, in the list, in the table or in both (else the repair that
 *      clears a hint as it drops the link leaves one behind, and the CHECKs
 *      of hnsw_unlink_layer and hnsw_repair_inlinks fire);
 *   4. unless the image says hints were dropped, every one-way link is
 *      hinted (as hnsw_validate requires; a missing hint is what a dropped
 *      one is, so a delete would only search more).
 * 1-3 are exact.  4 is a sum: every link x -> y adds t(x, y), signed by
 * direction so that a reciprocal pair cancels, and every hint (checked
 * and distinct by 3) subtracts the term of its link; what is left is the
 * terms of the one-way links without a hint, and a rest that is not 0 is
 * then located exactly, to name the node.  Terms that cancel by chance
 * (or by design) cost nothing but the check of 4.  Reachability is not
 * checked: hnsw_reconnect restores it, hnsw_validate reports it.
 *
 * Cost: one pass over the lists, which were read before anyway; per link,
 * two small side arrays indexed by its target (counters, levels and
 * marks); per hint, one read of the hinting node's list, the only random
 * read into the big arrays, started a few records ahead; per overflow
 * entry, the lists of both ends.  Nothing is allocated per node; the
 * scratch, 10 bytes per slot and a bit per layer-0 link slot when there
 * are overflow entries, is a fraction of the sections it checks. */

/* Per slot, for the load checks: lv = level + 1 of a live node (0: a free
 * slot), and seen = the low byte of (node + 1) of the list that named it
 * last.  A list that meets its own byte again checks its own earlier ids
 * to tell a repeat from a list 256 * k nodes back.  Two bytes, beside
 * 4-byte in-link counters: the checks follow every link into both, so
 * they are kept small (reading the targets' layer-0 headers instead would
 * be a cache miss per link, 1.6 s per million nodes). */
typedef struct hnsw_nd {
    uint8_t lv, seen;
} hnsw_nd;

/* Scratch for the load checks: nd and the in-link counters of every slot;
 * the nodes above layer 0; per layer, the rest of invariant 4's sum. */
typedef struct hnsw_chk {
    hnsw_nd *nd;
    uint32_t *deg;
    uint32_t *ups;              /* live nodes above layer 0 */
    uint32_t nup;
    int sum;                    /* invariant 4 applies: no hint was dropped */
    uint64_t rest[HNSW_MAX_LEVEL + 1];
} hnsw_chk;

/* The term of the link x -> y in invariant 4's sum: t(x, y) = -t(y, x),
 * never 0 (x != y), and a mix of x ^ y, so that the terms of unrelated
 * links cancel only by a coincidence of their ids. */
static inline uint64_t link_term(uint32_t x, uint32_t y)
{
    uint64_t k = (uint64_t)(x ^ y) * 0x9E3779B97F4A7C15ull;
    k ^= k >> 29;
    return x < y ? k : 0 - k;
}

/* Whether list l of max slots links to id, its count clamped to max (it
 * may belong to a node not checked yet). */
static int list_has_upto(const uint32_t *l, uint32_t max, uint32_t id)
{
    uint32_t n = list_count(l), hit = 0;
    if (n > max) n = max;
    for (uint32_t i = 0; i < n; i++) hit |= l[HNSW_LINKS + i] == id;
    return (int)hit;
}

/* One list of node x on layer l: counts fit; links name other live nodes
 * present on layer l, once each (counted into deg); hints name other live
 * nodes on l that link here, not linked from here, once each (invariants
 * 1 and 3 above, for the hints kept in the list). */
static int hnsw_check_list(const hnsw *h, hnsw_chk *c, uint32_t x, int l,
                           const uint32_t *lx, char *err, size_t errlen)
{
    uint32_t max = hnsw_maxdeg(h, l), n = list_count(lx), nh = list_nhint(lx);
    const uint8_t mark = (uint8_t)(x + 1);
    hnsw_nd *nd = c->nd;
    uint64_t rest = 0;
    if (l > 0 && lx[0] >> 16)
        return vec_corruptf(err, errlen, "hnsw image: node %u: layer %d list header %#x", x, l, lx[0]);
    if (n + nh > max)
        return vec_corruptf(err, errlen, "hnsw image: node %u: %u links and %u hints on layer %d, "
                         "room for %u", x, n, nh, l, max);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t y = lx[HNSW_LINKS + i];
        if (y >= h->hwm || y == x || nd[y].lv <= l)
            return vec_corruptf(err, errlen, "hnsw image: node %u links to %u on layer %d (itself, "
                             "out of range, free or not on the layer)", x, y, l);
        if (nd[y].seen == mark && ids_has(lx + HNSW_LINKS, i, y))
            return vec_corruptf(err, errlen, "hnsw image: node %u links twice to %u on layer %d",
                             x, y, l);
        nd[y].seen = mark;
        c->deg[y]++;
        if (c->sum) rest += link_term(x, y);
    }
    const uint32_t *hs = lx + HNSW_LINKS + max - nh;
    for (uint32_t i = 0; i < nh; i++) {
        uint32_t b = hs[i];
        if (b >= h->hwm)
            return vec_corruptf(err, errlen, "hnsw image: node %u: hint %u out of range on layer %d",
                             x, b, l);
        if (b == x || nd[b].lv <= l)
            return vec_corruptf(err, errlen, "hnsw image: node %u: hint %u names itself, a free "
                             "node or one not on layer %d", x, b, l);
        if (nd[b].seen == mark && (list_has(lx, b) || ids_has(hs, i, b)))
            return vec_corruptf(err, errlen, list_has(lx, b)
                             ? "hnsw image: node %u: hint %u names a node it links to on layer %d"
                             : "hnsw image: node %u: hint %u twice on layer %d", x, b, l);
        nd[b].seen = mark;
        if (!list_has_upto(hnsw_list(h, b, l), max, x))
            return vec_corruptf(err, errlen, "hnsw image: node %u: hint %u does not link to it on "
                             "layer %d", x, b, l);
        if (c->sum) rest -= link_term(b, x);
    }
    c->rest[l] += rest;
    return 0;
}

/* Layer-0 records, in two passes: headers first (into lv), then the lists
 * (hnsw_check_list), fetching the hinting nodes' lists a few records
 * ahead; then the recorded in-degrees against the counts. */
#ifndef HNSW_CHK_AHEAD
#define HNSW_CHK_AHEAD 8
#endif
static int hnsw_load_l0(const hnsw *h, hnsw_chk *c, char *err, size_t errlen)
{
    for (uint32_t x = 0; x < h->hwm; x++) {
        const uint32_t *r = hnsw_l0(h, x);
        if (r[0] & HNSW_FREE) {
            if (r[0] != HNSW_FREE || r[1] != 0)
                return vec_corruptf(err, errlen, "hnsw image: free slot %u has header %#x %#x", x,
                                 r[0], r[1]);
            c->nd[x] = (hnsw_nd){ 0, 0 };
            continue;
        }
        uint32_t level = r[0] >> HNSW_LEVEL_SHIFT;
        if (level > HNSW_MAX_LEVEL)
            return vec_corruptf(err, errlen, "hnsw image: node %u: level field %u above %d", x,
                             level, HNSW_MAX_LEVEL);
        c->nd[x] = (hnsw_nd){ (uint8_t)(level + 1), 0 };
        if (level > 0) c->ups[c->nup++] = x;
    }
    memset(c->deg, 0, (size_t)h->hwm * sizeof *c->deg);
    for (uint32_t x = 0; x < h->hwm; x++) {
        /* The lists that the hints of a record a few ahead name: the one
         * read that jumps around the big array, and it depends on nothing
         * else.  (Written here: GCC drops a call to a function that only
         * prefetches, taking it for pure.) */
        const uint32_t *ra = hnsw_l0(h, x + HNSW_CHK_AHEAD < h->hwm ? x + HNSW_CHK_AHEAD : x);
        for (uint32_t i = 0, nh = list_nhint(ra); i < nh && nh <= h->M0; i++) {
            uint32_t b = ra[HNSW_LINKS + h->M0 - 1 - i];
            if (b < h->hwm)
                for (uint32_t w = 0; w < h->s0; w += 16) __builtin_prefetch(hnsw_l0(h, b) + w);
        }
        if (!c->nd[x].lv) continue;
        int rc = hnsw_check_list(h, c, x, 0, hnsw_l0(h, x), err, errlen);
        if (rc) return rc;
    }
    for (uint32_t x = 0; x < h->hwm; x++)
        if (c->nd[x].lv && c->deg[x] != hnsw_l0(h, x)[1])
            return vec_corruptf(err, errlen, "hnsw image: node %u: in-degree %u recorded, %u links "
                             "on layer 0", x, hnsw_l0(h, x)[1], c->deg[x]);
    return 0;
}

/* One block per node above layer 0, copied from the packed section. */
static int hnsw_load_upper(hnsw *h, const hnsw_chk *c, const img_section *s, char *err,
                           size_t errlen)
{
    size_t at = 0;
    for (uint32_t i = 0; i < c->nup; i++) {
        uint32_t x = c->ups[i];
        int level = hnsw_level(h, x);
        size_t nb = hnsw_upper_bytes(h, level);
        if (s->len - at < nb)
            return vec_corruptf(err, errlen, "hnsw image: upper-list section ends at node %u (%zu "
                             "bytes)", x, s->len);
        if (!(h->up[x] = vec_mem_alloc(&h->mem, nb))) return -ENOMEM;
        memcpy(h->up[x], (const uint8_t *)s->data + at, nb);
        at += nb;
    }
    if (at != s->len)
        return vec_corruptf(err, errlen, "hnsw image: upper-list section is %zu bytes, the levels "
                         "need %zu", s->len, at);
    return 0;
}

/* The upper lists, layer by layer: the lists, then in-degrees.  A link on
 * layer l targets a node on it, itself in ups: clearing the counters of
 * ups clears all. */
static int hnsw_check_upper(const hnsw *h, hnsw_chk *c, char *err, size_t errlen)
{
    for (int l = 1; l <= HNSW_MAX_LEVEL; l++) {
        for (uint32_t i = 0; i < c->nup; i++) c->deg[c->ups[i]] = 0;
        for (uint32_t i = 0; i < c->nup; i++) {
            uint32_t x = c->ups[i];
            if (c->nd[x].lv <= l) continue;
            int rc = hnsw_check_list(h, c, x, l, hnsw_list(h, x, l), err, errlen);
            if (rc) return rc;
        }
        for (uint32_t i = 0; i < c->nup; i++) {
            uint32_t x = c->ups[i];
            if (c->nd[x].lv > l && c->deg[x] != hnsw_list(h, x, l)[1])
                return vec_corruptf(err, errlen, "hnsw image: node %u: in-degree %u recorded, %u "
                                 "links on layer %d", x, hnsw_list(h, x, l)[1], c->deg[x], l);
        }
    }
    return 0;
}

/* A slot whose entry a lookup would not reach (an empty slot lies between
 * its home and it), or -1.  One sweep, starting after an empty slot (the
 * fill limit guarantees one): an entry is reachable when its home is among
 * the occupied slots run up to it.  (Calling xh_find per entry instead
 * costs the square of a hub's hint count.) */
static int64_t xh_misplaced(const hnsw_hint_map *m)
{
    uint32_t start = 0, run = 0;
    while (m->e[start] != XH_EMPTY) start++;
    for (uint32_t k = 1; k <= m->cap; k++) {
        uint32_t i = (uint32_t)(((uint64_t)start + k) % m->cap);
        if (m->e[i] == XH_EMPTY) {
            run = 0;
            continue;
        }
        run++;
        uint32_t home = xh_home(m, (uint32_t)(m->e[i] >> 32));
        uint32_t d = i >= home ? i - home : i + m->cap - home;
        if (d >= run) return i;
    }
    return -1;
}

/* One overflow entry, source -> target on layer l, is a hint (invariant 3):
 * both live on l, the link exists one way, the list does not hint it too,
 * and no other entry does: each entry claims its link, bit src * max + i
 * of claim for the link in slot i of the source's list.  (The lists were
 * checked before, so their counts hold.) */
static int xh_check_entry(const hnsw *h, hnsw_chk *c, int l, uint32_t t, uint32_t src,
                          uint64_t *claim, char *err, size_t errlen)
{
    if (t == src || !hnsw_is_live(h, t) || !hnsw_is_live(h, src) || hnsw_level(h, t) < l ||
        hnsw_level(h, src) < l)
        return vec_corruptf(err, errlen, "hnsw image: layer %d overflow hint %u -> %u names a bad "
                         "node", l, src, t);
    const uint32_t *ls = hnsw_list(h, src, l), max = hnsw_maxdeg(h, l);
    uint32_t i = 0, n = list_count(ls);
    while (i < n && ls[HNSW_LINKS + i] != t) i++;
    size_t bit = (size_t)src * max + i;
    const char *why = i == n ? "no such link"
                    : list_has(hnsw_list(h, t, l), src) ? "the target links back"
                    : inline_hinted(h, t, l, src) ? "also a hint in its list"
                    : claim[bit >> 6] >> (bit & 63) & 1 ? "twice" : NULL;
    if (why)
        return vec_corruptf(err, errlen, "hnsw image: layer %d overflow hint %u -> %u: %s", l, src,
                         t, why);
    claim[bit >> 6] |= 1ull << (bit & 63);
    if (c->sum) c->rest[l] -= link_term(src, t);
    return 0;
}

/* The overflow tables (sizes already checked), each entry back at its
 * slot: entries are distinct hints (xh_check_entry, with a bit per link
 * slot of layer 0 as scratch, 1/34 of that section or less), and every
 * entry is where a lookup finds it (the fill is within the load limit,
 * so probes end). */
static int hnsw_load_hints(hnsw *h, hnsw_chk *c, const img_section *s, char *err, size_t errlen)
{
    const uint8_t *b = s->data;
    const size_t cb = ((size_t)h->hwm * h->M0 + 63) / 64 * sizeof(uint64_t);
    uint64_t *claim = NULL;
    size_t at = 0;
    int rc = 0;
    for (int l = 0; l <= HNSW_MAX_LEVEL && !rc; l++) {
        uint32_t cap = le_get32(b + at), n = le_get32(b + at + 4);
        at += 8;
        if (cap == 0) continue;
        hnsw_hint_map *m = &h->xh[l];
        /* (No live node, no claim: every entry is refused before.) */
        if (!(m->e = vec_mem_alloc(&h->mem, (size_t)cap * sizeof *m->e)) ||
            (n && cb && !claim && !(claim = vec_mem_alloc(&h->mem, cb)))) {
            rc = -ENOMEM;
            break;
        }
        memset(m->e, 0xFF, (size_t)cap * sizeof *m->e);
        m->cap = cap;
        if (n && claim) memset(claim, 0, cb);
        for (uint32_t i = 0, prev = 0; i < n && !rc; i++, at += 12) {
            uint32_t slot = le_get32(b + at), t = le_get32(b + at + 4), src = le_get32(b + at + 8);
            /* The lists of an entry a few ahead: they are anywhere. */
            for (int k = 4; l == 0 && k <= 8 && i + HNSW_CHK_AHEAD < n; k += 4) {
                uint32_t ahead = le_get32(b + at + 12 * HNSW_CHK_AHEAD + (size_t)k);
                if (ahead < h->hwm)
                    for (uint32_t w = 0; w < h->s0; w += 16) __builtin_prefetch(hnsw_l0(h, ahead) + w);
            }
            if (slot >= cap || (i > 0 && slot <= prev))
                rc = vec_corruptf(err, errlen, "hnsw image: layer %d overflow slot %u out of range "
                                  "or order", l, slot);
            else if (!(rc = xh_check_entry(h, c, l, t, src, claim, err, errlen)))
                m->e[slot] = (uint64_t)t << 32 | src;
            prev = slot;
        }
        m->n = n;
        int64_t bad = rc ? -1 : xh_misplaced(m);
        if (bad >= 0)
            rc = vec_corruptf(err, errlen, "hnsw image: layer %d overflow slot %lld is not where "
                              "its hash leads", l, (long long)bad);
    }
    vec_mem_free(&h->mem, claim, claim ? cb : 0);
    return rc;
}

/* Invariant 4 failed on layer l (the rest is not 0): name a node with a
 * one-way in-link that has no hint.  Only on this refusal, so it may read
 * every link's target: count per node the one-way in-links its list does
 * not hint, less its overflow entries (each a distinct such link, checked
 * above); a node left above zero lacks a hint. */
static int hnsw_missing_hint(const hnsw *h, hnsw_chk *c, int l, char *err, size_t errlen)
{
    memset(c->deg, 0, (size_t)h->hwm * sizeof *c->deg);
    for (uint32_t x = 0; x < h->hwm; x++) {
        if (c->nd[x].lv <= l) continue;
        const uint32_t *lx = hnsw_list(h, x, l);
        for (uint32_t i = 0; i < list_count(lx); i++) {
            uint32_t y = lx[HNSW_LINKS + i];
            if (!list_has(hnsw_list(h, y, l), x) && !inline_hinted(h, y, l, x)) c->deg[y]++;
        }
    }
    const hnsw_hint_map *m = &h->xh[l];
    for (uint32_t i = 0; i < m->cap; i++)
        if (m->e[i] != XH_EMPTY) c->deg[m->e[i] >> 32]--;
    for (uint32_t x = 0; x < h->hwm; x++)
        if (c->deg[x])
            return vec_corruptf(err, errlen, "hnsw image: node %u: a one-way link to it on layer %d "
                             "has no hint, and the image says none was dropped", x, l);
    return vec_corruptf(err, errlen, "hnsw image: layer %d: a one-way link has no hint, and the "
                     "image says none was dropped", l);
}

/* All checks of the node arrays, the upper lists and the overflow tables,
 * with their scratch. */
static int hnsw_load_graph(hnsw *h, const img_source *src, char *err, size_t errlen)
{
    hnsw_chk c = { NULL, NULL, NULL, 0, h->hints_dropped == 0, { 0 } };
    if (h->hwm == 0) {
        int rc = hnsw_check_globals(h, err, errlen);
        return rc ? rc : hnsw_load_hints(h, &c, &src->sec[4], err, errlen);
    }
    size_t nb = (size_t)h->hwm * sizeof *c.nd, wb = (size_t)h->hwm * sizeof(uint32_t);
    int rc = -ENOMEM;
    if ((c.nd = vec_mem_alloc(&h->mem, nb)) && (c.deg = vec_mem_alloc(&h->mem, wb)) &&
        (c.ups = vec_mem_alloc(&h->mem, wb)) && !(rc = hnsw_load_l0(h, &c, err, errlen)) &&
        !(rc = hnsw_load_upper(h, &c, &src->sec[3], err, errlen)) &&
        !(rc = hnsw_check_upper(h, &c, err, errlen)) &&
        !(rc = hnsw_check_globals(h, err, errlen)))
        rc = hnsw_load_hints(h, &c, &src->sec[4], err, errlen);
    for (int l = 0; !rc && c.sum && l <= HNSW_MAX_LEVEL; l++)
        if (c.rest[l]) rc = hnsw_missing_hint(h, &c, l, err, errlen);
    vec_mem_free(&h->mem, c.nd, nb);
    vec_mem_free(&h->mem, c.deg, wb);
    vec_mem_free(&h->mem, c.ups, wb);
    return rc;
}

int hnsw_load(const hnsw_params *p, const img_source *src, hnsw **out, char *err, size_t errlen)
{
    hnsw_img_meta m = { 0 };
    int rc;
    *out = NULL;
    if (errlen) err[0] = '\0';
    if (!p || !src || (src->n && !src->sec) || !hnsw_params_ok(p)) return -EINVAL;
    if ((rc = hnsw_load_meta(p, src, &m, err, errlen)) != 0) return rc;
    hnsw *h = hnsw_create(p, &rc);
    if (!h) return rc;
    /* h->release stays NULL until the end: a failed load releases nothing. */
    if (!(rc = hnsw_check_hint_sizes(h, &src->sec[4], m.cap, err, errlen)) &&
        !(rc = hnsw_load_arrays(h, &m, src)))
        rc = hnsw_load_graph(h, src, err, errlen);
    if (rc) {
        hnsw_free(h);
        return rc;
    }
    h->release = src->release;
    h->release_ud = src->release_ud;
    *out = h;
    return 0;
}
