/* vindex_engine.h -- an engine as the index front sees it: one table of
 * operations per engine, provided by a thin glue file for each
 * (vindex_hnsw.c, vindex_flat.c), through which vindex.c makes every
 * engine call.  So vindex.c names no engine, and an engine names no index
 * front: it links with the kernels and the vector base alone.  Private to
 * the vec library.
 *
 * The contract.  An engine stores prepared vectors (normalised for cosine
 * by the front) under dense uint32 ids that it chooses itself: stable while
 * live, the most recently freed reused first.  Results are ascending by
 * (internal distance, id).  A failed mutation changes nothing the front can
 * see.  Errors are 0 or negative: -EINVAL, -ENOMEM, VEC_E*.
 *
 * Cost.  One indirect call per operation (a mutation, a search, a lookup),
 * never one per distance: the engine's own loops run inside the call.
 *
 * Threads.  As in vindex.h: any number of const operations at once (each
 * search with its own scratch), mutations exclusive.
 *
 * Optional operations are NULL where the engine has no such thing; the
 * front says what that means where it calls them. */
#ifndef ENGRAM_VINDEX_ENGINE_H
#define ENGRAM_VINDEX_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "engram/dist.h"
#include "engram/image.h"
#include "engram/vecbase.h"
#include "engram/vindex.h"

typedef struct vindex_engine {
    /* A new empty engine for p (type, dim, metric, the HNSW parameters with
     * defaults filled in, seed, initial capacity, kernels, and the index's
     * allocator in p->alloc), or NULL with *err = -EINVAL or -ENOMEM. */
    void *(*create)(const vindex_params *p, int *err);
    /* Rebuild from exactly the engine's own sections (p as for create but
     * for initial_capacity); borrowing and release as in vindex.h.  0 and
     * *out, or -EINVAL, -ENOMEM, VEC_ECORRUPT (message in err). */
    int (*load)(const vindex_params *p, const img_source *src, void **out, char *err,
                size_t errlen);
    void (*destroy)(void *e);
    /* Write the engine's sections; 0 or the sink's first error. */
    int (*save)(const void *e, img_sink *s);
    /* 1 if p is the start of a range e still borrows from its image. */
    int (*borrows)(const void *e, const void *p);

    /* Room for n live entries without allocating in insert. */
    int (*reserve)(void *e, uint32_t n);
    /* vec: a prepared record (vecbase.h's vec_format for the params); ef:
     * the build beam for this one (0 = the engine's; ignored without one) */
    int (*insert)(void *e, const void *vec, uint32_t ef, uint32_t *id);
    int (*update)(void *e, uint32_t id, const void *vec, uint32_t ef);
    /* Inserts planned off the loop (hnsw.h's hnsw_prepare); all NULL/0
     * where the engine has no planning phase worth moving.  prepare: plan
     * vec's insert read-only into out (prepared_size bytes), scratch as
     * for search; insert_prepared: commit it, -EAGAIN if the engine
     * changed since (nothing done). */
    size_t prepared_size;
    int (*prepare)(const void *e, void *scratch, const void *vec, uint32_t ef, void *out);
    int (*insert_prepared)(void *e, const void *vec, const void *prepared, uint32_t *id);
    /* An insert's outcome as bytes (vindex.h's vindex_insert_outcome; NULL
     * where inserting has no search to skip): outcome writes the last
     * mutation's if it was an insert (its bytes; 0: none, or more than
     * cap); insert_outcome inserts vec with one, -EAGAIN (nothing done)
     * when it does not fit the engine's state or does not parse. */
    size_t (*outcome)(const void *e, unsigned char *buf, size_t cap);
    int (*insert_outcome)(void *e, const void *vec, const unsigned char *p, size_t n,
                          uint32_t *id);
    /* Never fails for a live id (never allocates). */
    int (*del)(void *e, uint32_t id);
    /* Re-link what searches could no longer reach: how many, or -ENOMEM.
     * NULL: nothing can be cut off. */
    int (*repair)(void *e);

    /* A live id's stored record, NULL if id is not live. */
    const void *(*vector)(const void *e, uint32_t id);
    /* A live id's top layer and its links on one layer (count, at most cap
     * written, or -EINVAL).  NULL: no layers, no links. */
    int (*level)(const void *e, uint32_t id);
    int (*links)(const void *e, uint32_t id, int layer, uint32_t *out, uint32_t cap);
    uint32_t (*count)(const void *e);
    /* Ids are below it; it only grows. */
    uint32_t (*capacity)(const void *e);
    size_t (*memory)(const void *e);
    const dist_kernels *(*kernels)(const void *e);
    /* Top layer, -1 when empty.  NULL: no layers (-1). */
    int (*max_level)(const void *e);
    /* 0, VEC_ECORRUPT (message in err) or -ENOMEM. */
    int (*validate)(const void *e, char *err, size_t errlen);

    /* Per-thread search scratch, good for any engine of this kind; NULL
     * scratch_new: searches need none (and get NULL). */
    void *(*scratch_new)(const vec_allocator *al);
    void (*scratch_free)(void *scratch);
    /* The k nearest of q (ef: the beam where there is one, 0 = default)
     * that accept takes (NULL: all) into out, ascending; *n of them.
     * effort: vindex_query's (an engine without a walk ignores it). */
    int (*search)(const void *e, void *scratch, const void *q, uint32_t k, uint32_t ef,
                  vec_filter_fn *accept, void *ud, uint32_t effort, vec_pair *out,
                  uint32_t *n);

    /* Exact search split in parts (vindex_search_part); all three NULL when
     * the engine cannot split.  slots: ids in use are below it.
     * search_range: search over ids [lo, hi) alone.  merge: the k least of
     * count disjoint part results (-EINVAL for too many parts). */
    uint32_t (*slots)(const void *e);
    int (*search_range)(const void *e, const float *q, uint32_t k, uint32_t lo, uint32_t hi,
                        vec_filter_fn *accept, void *ud, vec_pair *out, uint32_t *n);
    int (*merge)(const vec_pair *const *parts, const uint32_t *nparts, int count, uint32_t k,
                 vec_pair *out, uint32_t *n);
} vindex_engine;

extern const vindex_engine vindex_hnsw_engine;   /* vindex_hnsw.c */
extern const vindex_engine vindex_flat_engine;   /* vindex_flat.c */

#endif
