/* vecbase.h -- the base of the vector library: what the engines (hnsw.h,
 * flat.h) and the index front (vindex.h) share, and all an engine needs
 * besides the kernels (dist.h).  An engine links with the kernels and this
 * base alone; the index front builds on them.
 *
 *   - the sized allocator, the default one (which grows big blocks with
 *     mremap on Linux), and the counted allocator (vec_mem) every
 *     structure allocates through, with the resize helpers the engines
 *     grow through;
 *   - the engines' growth policy;
 *   - results (pairs of distance and id) and search filters;
 *   - the error codes of the whole vector library with their strerror, and
 *     the one formatter validators and image loaders report corruption with;
 *   - the limits the engines check (dimension, M, ef);
 *   - stored-vector formats: what an engine keeps per vector and the one
 *     call that compares two.
 *
 * Threads: nothing here has state; the default allocator may be called
 * from any thread. */
#ifndef ENGRAM_VECBASE_H
#define ENGRAM_VECBASE_H

#include <stddef.h>
#include <stdint.h>

#include "engram/dist.h"
#include "engram/quant.h"

/* Sized allocator: alloc returns NULL on exhaustion (never aborts, as far as
 * the engine is concerned); free gets back the size that was requested, so
 * counting needs no header.  Blocks need only malloc's alignment. */
typedef struct vec_allocator {
    void *(*alloc)(void *ud, size_t size);
    void (*free)(void *ud, void *p, size_t size);
    void *ud;
    /* Optional (NULL: alloc, copy, free).  Resize block p of `old` bytes to
     * `size`, keeping its contents, as realloc does; NULL on failure, with
     * p unchanged.  The engines' node arrays grow through it, so that a
     * big index growing does not copy them: the default allocator moves a
     * block of 4 MB or more with mremap (vecbase.c). */
    void *(*realloc)(void *ud, void *p, size_t old, size_t size);
} vec_allocator;

/* malloc/free/realloc. */
extern const vec_allocator vec_default_allocator;

/* The counted allocator: an allocator and the bytes held through it (the
 * sizes requested, not the allocator's overhead).  Every engine, index and
 * search context keeps one, so its memory figure is a field, not a walk.
 * The struct holding it is allocated through al but not counted in bytes
 * (its owner adds its size when it reports memory). */
typedef struct vec_mem {
    vec_allocator al;
    size_t bytes;
} vec_mem;

/* al NULL: vec_default_allocator (copied). */
static inline void vec_mem_init(vec_mem *m, const vec_allocator *al)
{
    m->al = al ? *al : vec_default_allocator;
    m->bytes = 0;
}

/* n bytes, counted; NULL on exhaustion. */
static inline void *vec_mem_alloc(vec_mem *m, size_t n)
{
    void *p = m->al.alloc(m->al.ud, n);
    if (p) m->bytes += n;
    return p;
}

/* Give back block p of n bytes (the size it was allocated or resized to);
 * p NULL: nothing. */
static inline void vec_mem_free(vec_mem *m, void *p, size_t n)
{
    if (!p) return;
    m->al.free(m->al.ud, p, n);
    m->bytes -= n;
}

/* Resize block p (old bytes; NULL: a new block) to size bytes, keeping its
 * first `keep` bytes, and count the change: al.realloc if set, else a new
 * block, a copy and a free.  NULL on failure, with p and the count
 * unchanged. */
void *vec_mem_resize(vec_mem *m, void *p, size_t old, size_t size, size_t keep);

/* The engines' vector array: n bytes, 64-byte aligned, inside the block
 * *raw of *bytes bytes (n + 64).  Make it hold n bytes, keeping the first
 * `keep` of the array now at vecs; *raw NULL means vecs is not ours (a
 * range borrowed from a snapshot, or nothing yet): it is copied into a new
 * block and the caller gives it back.  Returns the array's new address,
 * or NULL (-ENOMEM) with everything unchanged. */
void *vec_mem_resize_vecs(vec_mem *m, void **raw, size_t *bytes, const void *vecs, size_t n,
                          size_t keep);

/* An engine-level result: internal distance (see dist.h) and id. */
typedef struct vec_pair {
    float dist;
    uint32_t id;
} vec_pair;

/* The order of every result list: by distance, ties by the smaller id. */
static inline int vec_pair_lt(vec_pair a, vec_pair b)
{
    return a.dist < b.dist || (a.dist == b.dist && a.id < b.id);
}

/* Search filter: return non-zero to accept id as a result.  Called from the
 * searching thread with the index read-locked; must not modify the index.
 * Rejected ids are still traversed by HNSW (they route), never returned. */
typedef int vec_filter_fn(void *ud, uint32_t id);

/* Project error codes of the vector library (negative, reserved range
 * -10000..-10099). */
#define VEC_EDIM     (-10001) /* vector length differs from the index's dim */
#define VEC_EVALUE   (-10002) /* a component is NaN or infinite */
#define VEC_ECORRUPT (-10003) /* validator found a broken invariant */
#define VEC_EFULL    (-10004) /* id space exhausted (2^32 - 2 entries) */
#define VEC_ESYNTAX  (-10005) /* malformed JSON attributes or FILTER expression */
#define VEC_ELIMIT   (-10006) /* attributes or expression past a stated limit */

/* The engines' growth policy: the slot count to grow to so that n fit --
 * 1.5x the current capacity (amortised O(1) inserts without doubling
 * memory), at least n and 16, at most max. */
static inline uint32_t vec_grow_capacity(uint32_t cap, uint32_t n, uint32_t max)
{
    uint64_t want = (uint64_t)cap + cap / 2;
    if (want < n) want = n;
    if (want < 16) want = 16;
    if (want > max) want = max;
    return (uint32_t)want;
}

/* Format a message into err (when errlen > 0) and return VEC_ECORRUPT:
 * the one way the validators and image loaders of vindex, hnsw and flat
 * report what they found. */
int vec_corruptf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Static description of any code the vector library returns (also
 * -EINVAL/-ENOMEM). */
const char *vec_strerror(int err);

/* ---- stored-vector formats ----------------------------------------------
 * What an engine stores per vector and how it compares two: the metric and
 * the quantisation (quant.h) fix the record size, the pair function and how
 * its result becomes the internal distance, off + sgn * pair(a, b, dim):
 *     L2      squared distance    (l2sq;      off 0, sgn  1)
 *     cosine  1 - dot             (dot;       off 1, sgn -1)
 *     dot     -dot                (dot;       off 0, sgn -1)
 *     Q8/BIN  their cosine distance, as quant.h computes it (off 0, sgn 1)
 * Quantised formats are for cosine only: vectors are normalised before
 * they are encoded.  The float kernels are the engine's (its params);
 * the int8 and Hamming ones are the process's (dist_i8_active,
 * dist_bin_active). */
typedef struct vec_format {
    quant_type quant;
    size_t bytes;            /* one record */
    dist_pair_fn *pair;
    float off, sgn;
} vec_format;

/* 1 if the metric and quantisation go together (and are known). */
int vec_format_ok(dist_metric m, quant_type q);
/* Fill f for a valid (m, q) (vec_format_ok) and dim; k: the float kernels. */
void vec_format_init(vec_format *f, dist_metric m, quant_type q, uint32_t dim,
                     const dist_kernels *k);

/* Limits the engines check their parameters against. */
#define VEC_DIM_MAX 65536u
#define VEC_M_MAX   64u     /* HNSW links per node; layer 0 keeps 2*M */
#define VEC_EF_MAX  100000u /* HNSW beam */

#endif
