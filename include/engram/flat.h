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
 * Errors: 0 or negative (-EINVAL, -ENOMEM, VINDEX_E* from vindex.h). */
#ifndef ENGRAM_FLAT_H
#define ENGRAM_FLAT_H

#include <stddef.h>
#include <stdint.h>

#include "engram/dist.h"
#include "engram/vindex.h"

typedef struct flat flat;

typedef struct flat_params {
    uint32_t dim;
    dist_metric metric;
    uint32_t initial_capacity;
    const dist_kernels *kernels;   /* NULL = dist_active() now */
    const vindex_allocator *alloc; /* NULL = malloc/free; copied */
} flat_params;

/* NULL with *err = -EINVAL or -ENOMEM on failure. */
flat *flat_new(const flat_params *p, int *err);
void flat_free(flat *f);

/* Room for n live entries without allocation by inserts; 0 or -ENOMEM. */
int flat_reserve(flat *f, uint32_t n);
/* Store vec in a free slot; *id receives it. 0, -ENOMEM or VINDEX_EFULL. */
int flat_insert(flat *f, const float *vec, uint32_t *id);
/* Replace a live id's vector. 0 or -EINVAL. */
int flat_update(flat *f, uint32_t id, const float *vec);
/* Free a live id. 0 or -EINVAL; never allocates. */
int flat_delete(flat *f, uint32_t id);

int flat_is_live(const flat *f, uint32_t id);
const float *flat_vector(const flat *f, uint32_t id); /* NULL if not live */
uint32_t flat_count(const flat *f);
uint32_t flat_capacity(const flat *f);
size_t flat_memory(const flat *f);
const dist_kernels *flat_kernels(const flat *f);

/* The exact k nearest of q by (internal distance, id), ascending, into out
 * (room for k); *nout = min(k, accepted live entries).  Never allocates. */
int flat_search(const flat *f, const float *q, uint32_t k,
                vindex_filter_fn *accept, void *ud,
                vindex_pair *out, uint32_t *nout);

/* Free list and live flags consistent.  0 or VINDEX_ECORRUPT. */
int flat_validate(const flat *f, char *err, size_t errlen);

#endif
