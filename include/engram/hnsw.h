/* hnsw.h -- Hierarchical Navigable Small World graph (Malkov & Yashunin),
 * as a pure library on dense uint32 ids and prepared vectors.
 *
 * The caller (vindex.c) owns keys and vector preparation: for DIST_COSINE
 * the vectors given here must already be L2-normalised (the query too),
 * and in a quantised graph (params.quant, cosine only) they are records of
 * vec_format_bytes bytes as quant.h encodes them: vectors here are always
 * "stored records" -- dim floats for QUANT_NONE.
 * Ids are chosen by the graph: the most recently freed id first, otherwise
 * the next never-used one, so ids stay dense under insert/delete churn.
 *
 * Threads: any number of concurrent hnsw_search calls (each with its own
 * hnsw_search_ctx) while no insert/update/delete runs; mutations are
 * exclusive.  The graph has no lock of its own; the server's rwlock is it.
 *
 * Snapshots: hnsw_save writes the whole graph as image.h sections (their
 * byte layout is specified in hnsw.c's header comment); hnsw_load brings it
 * back exactly -- same digest, same searches, and the same future: equal
 * operations on the original and on the loaded copy give equal graphs.  The
 * vector and layer-0 sections are used in place (borrowed), see hnsw_load.
 *
 * Errors: 0 or negative (-EINVAL, -ENOMEM, VEC_E* from vecbase.h).  A
 * failed insert/update changes no links and no vectors. */
#ifndef ENGRAM_HNSW_H
#define ENGRAM_HNSW_H

#include <stddef.h>
#include <stdint.h>

#include "engram/dist.h"
#include "engram/image.h"
#include "engram/quant.h"
#include "engram/vecbase.h"

#define HNSW_MAX_LEVEL 16   /* level draws are capped here */
#define HNSW_NONE UINT32_MAX

typedef struct hnsw hnsw;
typedef struct hnsw_search_ctx hnsw_search_ctx;

typedef struct hnsw_params {
    uint32_t dim;
    dist_metric metric;
    quant_type quant;         /* QUANT_NONE, or Q8/BIN with DIST_COSINE */
    uint32_t M;               /* 2..VEC_M_MAX; layer 0 keeps M0 = 2*M */
    uint32_t ef_construction; /* >= 1 */
    uint32_t ef_search;       /* >= 1; default beam for hnsw_search ef = 0 */
    uint64_t seed;
    uint32_t initial_capacity;
    const dist_kernels *kernels;   /* NULL = dist_active() now */
    const vec_allocator *alloc;    /* NULL = malloc/free; copied */
} hnsw_params;

/* NULL with *err = -EINVAL or -ENOMEM on failure. */
hnsw *hnsw_new(const hnsw_params *p, int *err);
void hnsw_free(hnsw *h);

/* Make room for n live nodes without further allocation by inserts.
 * 0 or -ENOMEM (nothing changed). */
int hnsw_reserve(hnsw *h, uint32_t n);
/* Add vec (a prepared record) as a new node; *id receives its id.
 * 0, -ENOMEM or VEC_EFULL; on error nothing changed. */
int hnsw_insert(hnsw *h, const void *vec, uint32_t *id);
/* An insert planned off the loop (hnsw_prepare): the level the next insert
 * draws, and the neighbours chosen on each layer up to it -- valid while
 * the graph is as it was (the mutation count and the RNG say so). */
typedef struct hnsw_prepared {
    uint64_t muts, rng;
    uint32_t M;
    int level;
    uint32_t n[HNSW_MAX_LEVEL + 1];                 /* per layer */
    uint32_t ids[(HNSW_MAX_LEVEL + 1) * VEC_M_MAX];  /* M per layer */
} hnsw_prepared;

/* Plan the insert of vec (a prepared record) as hnsw_insert_ef(h, vec, ef)
 * would, without changing h: any thread, under the read lock, with c (a
 * search context of the caller's) for scratch.  0 or -ENOMEM. */
int hnsw_prepare(const hnsw *h, hnsw_search_ctx *c, const void *vec, uint32_t ef,
                 hnsw_prepared *out);
/* Insert vec with the plan p made for it.  If the graph changed since
 * (any insert, update, delete or reconnect), -EAGAIN and nothing changed:
 * insert it the ordinary way.  Otherwise as hnsw_insert (0, -ENOMEM,
 * VEC_EFULL), and the graph is the one hnsw_insert would have made. */
int hnsw_insert_prepared(hnsw *h, const void *vec, const hnsw_prepared *p, uint32_t *id);

/* The outcome of the last mutation if it was an insert (any of the above):
 * its level, and the neighbours it chose per layer, in *out (muts and rng
 * not set).  1, or 0 when the last mutation was not an insert. */
int hnsw_last_plan(const hnsw *h, hnsw_prepared *out);
/* Insert vec with a recorded outcome (p's level, M, n and ids; muts and
 * rng ignored) instead of searching: on the graph the outcome was made on
 * this gives the graph that insert gave.  -EAGAIN with nothing changed
 * when the outcome cannot be this graph's next insert (its level is not
 * the next draw, a neighbour is not a live node of its layer, a count is
 * past M): insert the ordinary way.  Otherwise as hnsw_insert. */
int hnsw_insert_planned(hnsw *h, const void *vec, const hnsw_prepared *p, uint32_t *id);

/* Replace live node id's vector and relink it (its level is kept).
 * 0, -EINVAL (not live) or -ENOMEM (nothing changed). */
int hnsw_update(hnsw *h, uint32_t id, const void *vec);
/* The same with a build beam of ef for this one mutation (0: the graph's
 * ef_construction; at most VEC_EF_MAX, larger is taken as that) -- Redis's
 * VADD ... EF.  A beam past the fixed scratch grows it (kept for later). */
int hnsw_insert_ef(hnsw *h, const void *vec, uint32_t ef, uint32_t *id);
int hnsw_update_ef(hnsw *h, uint32_t id, const void *vec, uint32_t ef);
/* Unlink id from every layer, repair its former neighbours, move the entry
 * point if needed, and free the id for reuse.  0 or -EINVAL (not live);
 * never fails otherwise (scratch is reserved by inserts). */
int hnsw_delete(hnsw *h, uint32_t id);

int hnsw_is_live(const hnsw *h, uint32_t id);
/* A live id's top layer (-1 if not live), and its out-links on a layer
 * <= it into out (room for cap): how many it has (at most cap written),
 * in list order, or -EINVAL (not live, or no such layer for it). */
int hnsw_node_level(const hnsw *h, uint32_t id);
int hnsw_links(const hnsw *h, uint32_t id, int layer, uint32_t *out, uint32_t cap);
/* The stored (prepared) record of a live id; borrowed until the next
 * mutation.  NULL if not live. */
const void *hnsw_vector(const hnsw *h, uint32_t id);
uint32_t hnsw_count(const hnsw *h);
/* Ids are < hnsw_capacity(h); it only grows. */
uint32_t hnsw_capacity(const hnsw *h);
/* Top layer (-1 when empty) and entry point (HNSW_NONE when empty). */
int hnsw_max_level(const hnsw *h);
uint32_t hnsw_entry(const hnsw *h);
/* Bytes held through the allocator plus the struct, plus the ranges
 * borrowed from a snapshot (hnsw_load): they are this graph's data, resident
 * or paged in from the file, so they are counted as if allocated.  The
 * node arrays' slots never used (growth reserves ahead) are not counted:
 * their pages are never touched, so never resident. */
size_t hnsw_memory(const hnsw *h);
const dist_kernels *hnsw_kernels(const hnsw *h);

/* Per-thread search scratch (any index); NULL alloc = malloc/free. */
hnsw_search_ctx *hnsw_search_ctx_new(const vec_allocator *alloc);
void hnsw_search_ctx_free(hnsw_search_ctx *c);

/* k nearest of q (prepared) with beam max(ef ? ef : ef_search, k); results
 * ascending by (dist, id) into out (room for k), count in *nout.  accept
 * (may be NULL) filters results without cutting routes: rejected nodes are
 * scored and walked through, never returned.  A filtered walk keeps
 * max(k, beam/2) accepted nodes in its beam, and does not close before the
 * 2 * beam nearest nodes it scored, accepted or not, are in: at
 * selectivity s its beam spans about beam/(2s) nodes rather than beam/s, and
 * never walks a narrower region than an unfiltered search of beam 2 * beam
 * (so where 2 * beam nodes hold beam accepted ones, s >= 1/2, as before).
 * accept is called at most once per node and search, and only for a node
 * closer than the accepted beam's bound.  0 or -ENOMEM. */
int hnsw_search(const hnsw *h, hnsw_search_ctx *c, const void *q, uint32_t k,
                uint32_t ef, vec_filter_fn *accept, void *ud,
                vec_pair *out, uint32_t *nout);
/* hnsw_search with a bound on a filtered search's effort (Redis's
 * FILTER-EF): when accept is given, the walk of layer 0 stops once it has
 * expanded `effort` nodes (the entry point counts as one; 0 = no bound),
 * since a selective filter would otherwise walk the whole graph looking
 * for k accepted nodes.  Fewer than k results may come back. */
int hnsw_search_effort(const hnsw *h, hnsw_search_ctx *c, const void *q, uint32_t k,
                       uint32_t ef, vec_filter_fn *accept, void *ud, uint32_t effort,
                       vec_pair *out, uint32_t *nout);

/* Structural check: links live, no self or duplicate links, degree bounds,
 * levels and in-degree counters consistent, free list exact, entry point on
 * the top layer, every live node reachable on layer 0 from the entry point.
 * 0, VEC_ECORRUPT (message in err) or -ENOMEM. */
int hnsw_validate(const hnsw *h, char *err, size_t errlen);
/* Walk layer 0 from the entry point and link in every node found
 * unreachable (see hnsw.c: pruning can, rarely, cut off a group).  Runs by
 * itself every count/4 + 256 mutations; callers may run it before
 * validating or persisting.  Returns how many nodes were re-attached, or
 * -ENOMEM (nothing changed). */
int hnsw_reconnect(hnsw *h);
/* FNV-1a digest of the graph (entry, levels, every link list in order):
 * equal digests for equal graphs. */
uint64_t hnsw_digest(const hnsw *h);

/* ---- snapshots ---------------------------------------------------------- */

/* Section kinds written by hnsw_save, in this order (image.h's hnsw range). */
#define HNSW_IMG_META   0x0110u  /* scalars: params, counters, RNG state */
#define HNSW_IMG_VECS   0x0111u  /* page-aligned: hwm * dim floats */
#define HNSW_IMG_L0     0x0112u  /* page-aligned: hwm layer-0 records */
#define HNSW_IMG_UPPER  0x0113u  /* upper-layer lists of every node above 0 */
#define HNSW_IMG_HINTS  0x0114u  /* the overflow hint tables */

/* Write the graph as the five sections above.  Read-only on h; allocates
 * nothing.  Returns 0 or the first error the sink reported. */
int hnsw_save(const hnsw *h, img_sink *s);

/* Rebuild a graph from exactly the sections hnsw_save wrote (src->sec[0..5)).
 * p supplies the allocator and kernels; its dim, metric, M,
 * ef_construction and ef_search must equal the image's (else
 * VEC_ECORRUPT naming the field); seed and initial_capacity are ignored
 * (the RNG state and capacity come from the image).
 *
 * A capacity past 2^20 slots and over twice the slots the image uses is
 * refused: the overflow tables are sized by it, so a forged one could ask
 * for gigabytes, and growth never leaves that much unused (an index
 * reserved far ahead of its size with hnsw_reserve does not load).
 * Every length, count, id, link, level, in-degree and hint-table entry is
 * checked against the section sizes and params before use: a malformed
 * image gives VEC_ECORRUPT with a message in err, never an out-of-bounds
 * access.  So is everything a later insert, update or delete relies on
 * (the list is in hnsw.c, "load checks"): no link twice in a list, each
 * in-degree exact, each reverse hint naming a live node that links here
 * one way, no hint twice, and -- unless the image counts dropped hints --
 * every one-way link hinted.  Not checked: reachability (hnsw_validate
 * reports it, at a cost of seconds per million nodes; hnsw_reconnect
 * repairs it).  A graph that loads is safe to search and to mutate,
 * whatever the image's origin.
 *
 * Borrowing: a non-empty page-aligned vectors or layer-0 section is used in
 * place (the source's memory must stay valid and writable until released);
 * the rest is copied.  A borrowed range is given back with
 * src->release(src->release_ud, data, len) exactly once: when the graph
 * first needs a slot past it (it then moves to allocated arrays of its
 * capacity) or at hnsw_free.  release may be NULL.  It runs in the thread
 * doing that mutation or free.
 *
 * Returns 0 and *out, or -EINVAL (bad p), -ENOMEM, VEC_ECORRUPT; on
 * failure *out = NULL, nothing was borrowed and release is never called. */
int hnsw_load(const hnsw_params *p, const img_source *src, hnsw **out, char *err, size_t errlen);
/* 1 if p is the start of a range h still borrows from its image. */
int hnsw_borrows(const hnsw *h, const void *p);

/* Build-quality statistics for tests and benchmarks. */
typedef struct hnsw_stats {
    uint32_t count, capacity;
    int max_level;
    double avg_degree0;       /* mean layer-0 out-degree */
    uint64_t nonrecip0, hinted0, full0;  /* layer-0 one-way links, hinted ones, full lists */
    uint64_t overflow0;       /* ... of the hints, those in the overflow map */
    uint64_t hints_dropped;   /* reverse hints not kept for lack of room */
    uint64_t orphans_fixed;   /* nodes re-attached after losing every in-link */
    uint64_t reconnected;     /* nodes re-attached by hnsw_reconnect */
    uint64_t inlink_misses;   /* layer unlinks the hints did not cover */
    uint64_t inlink_scans;    /* ... of which needed the full-layer scan */
} hnsw_stats;
void hnsw_stats_get(const hnsw *h, hnsw_stats *s);

#endif
