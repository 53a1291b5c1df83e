/* flat.h -- exact nearest-neighbour search by linear scan, on dense uint32
 * ids and prepared vectors (normalised for cosine by the caller).
 *
 * Ids are slots in one contiguous vector array; a deleted slot goes on a
 * free list and the next insert reuses it (most recently freed first), so
 * ids are stable for the life of an entry and ties between equal distances
 * are broken by the smaller id.
 *
 * Threads: concurrent flat_search calls are safe while no mutation runs;
 * mutations are exclusive (the server's rwlock).
 *
 * Errors: 0 or negative (-EINVAL, -ENOMEM, VEC_E* from vecbase.h). */
#ifndef ENGRAM_FLAT_H
#define ENGRAM_FLAT_H

#include <stddef.h>
#include <stdint.h>

#include "engram/dist.h"
#include "engram/image.h"
#include "engram/vecbase.h"

typedef struct flat flat;

typedef struct flat_params {
    uint32_t dim;
    dist_metric metric;
    uint32_t initial_capacity;
    const dist_kernels *kernels;   /* NULL = dist_active() now */
    const vec_allocator *alloc;    /* NULL = malloc/free; copied */
} flat_params;

/* NULL with *err = -EINVAL or -ENOMEM on failure. */
flat *flat_new(const flat_params *p, int *err);
void flat_free(flat *f);

/* Room for n live entries without allocation by inserts; 0 or -ENOMEM. */
int flat_reserve(flat *f, uint32_t n);
/* Store vec in a free slot; *id receives it. 0, -ENOMEM or VEC_EFULL. */
int flat_insert(flat *f, const float *vec, uint32_t *id);
/* Replace a live id's vector. 0 or -EINVAL. */
int flat_update(flat *f, uint32_t id, const float *vec);
/* Free a live id. 0 or -EINVAL; never allocates. */
int flat_delete(flat *f, uint32_t id);

int flat_is_live(const flat *f, uint32_t id);
const float *flat_vector(const flat *f, uint32_t id); /* NULL if not live */
uint32_t flat_count(const flat *f);
uint32_t flat_capacity(const flat *f);
/* Bytes held through the allocator plus the struct, plus a vector range
 * borrowed from a snapshot (the index's data, counted as if allocated). */
size_t flat_memory(const flat *f);
const dist_kernels *flat_kernels(const flat *f);

/* The exact k nearest of q by (internal distance, id), ascending, into out
 * (room for k); *nout = min(k, accepted live entries).  Never allocates. */
int flat_search(const flat *f, const float *q, uint32_t k,
                vec_filter_fn *accept, void *ud,
                vec_pair *out, uint32_t *nout);

/* flat_search over ids [lo, hi) only (hi clamped to flat_used; lo >= hi is
 * an empty range: *nout = 0), so one query can be split into disjoint
 * ranges run on different threads and their results joined by flat_merge:
 * the join of any split of [0, flat_used) equals flat_search's answer.
 * Same contract as flat_search otherwise: out has room for k, results
 * ascending by (internal distance, id), accept is called (on this thread)
 * only for live ids in the range, nothing is allocated, and any number of
 * searches may run at once while no mutation does.  A part should hold a
 * few MB of vectors at least: below that, waking a thread costs more than
 * the scan it saves (bench/bench_flat --sweep measures where). */
int flat_search_range(const flat *f, const float *q, uint32_t k, uint32_t lo, uint32_t hi,
                      vec_filter_fn *accept, void *ud, vec_pair *out, uint32_t *nout);

/* Ids in use are below this (the high-water mark of slots; free slots
 * included): split [0, flat_used) to search in parts. */
uint32_t flat_used(const flat *f);

#define FLAT_MERGE_MAX 64   /* parts flat_merge joins at most */

/* The k least of `count` (<= FLAT_MERGE_MAX) result lists, each ascending
 * by (distance, id) as flat_search_range leaves them, with no id in two
 * lists: into out (room for k; not overlapping any part), ascending, ties
 * by id; *nout = min(k, total).  Pure: no index, no allocation. */
void flat_merge(const vec_pair *const *parts, const uint32_t *nparts, int count,
                uint32_t k, vec_pair *out, uint32_t *nout);

/* Free list and live flags consistent.  0 or VEC_ECORRUPT. */
int flat_validate(const flat *f, char *err, size_t errlen);

/* ---- snapshots (byte layout: flat.c's header comment) ------------------- */

#define FLAT_IMG_META 0x0120u   /* scalars */
#define FLAT_IMG_VECS 0x0121u   /* page-aligned: hwm * dim floats */
#define FLAT_IMG_LIVE 0x0122u   /* hwm live flags */

/* Write the three sections above.  Read-only; allocates nothing.  0 or the
 * first error the sink reported. */
int flat_save(const flat *f, img_sink *s);

/* Rebuild from exactly the sections flat_save wrote.  p gives allocator and
 * kernels; its dim and metric must match the image (else VEC_ECORRUPT);
 * initial_capacity is ignored.  Sizes, counts, flags and the free list are
 * checked first: a malformed image is VEC_ECORRUPT with a message in
 * err.  A non-empty page-aligned vector section is borrowed (used in place)
 * and given back once with src->release(src->release_ud, data, len) when an
 * insert first needs a slot past it (the vectors then move to an allocated
 * array of the same capacity) or at flat_free; the live flags are copied.
 * Returns 0 and *out, or -EINVAL, -ENOMEM, VEC_ECORRUPT; on failure
 * *out = NULL and release is never called. */
int flat_load(const flat_params *p, const img_source *src, flat **out, char *err, size_t errlen);
/* 1 if p is the start of a range f still borrows from its image. */
int flat_borrows(const flat *f, const void *p);

#endif
