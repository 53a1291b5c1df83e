/* vindex.h -- one vector index behind one API: HNSW or FLAT, keyed by bytes.
 *
 * This is the contract the server uses.  A vindex owns:
 *   - a binary-safe, case-sensitive key <-> id map (its own hash table);
 *   - vector validation (dimension, NaN/Inf) done before anything changes;
 *   - cosine preparation: vectors are stored L2-normalised and the original
 *     norm is kept per id, so vindex_get returns the caller's scale;
 *   - quantisation (cosine HNSW only): with params.quant Q8 or BIN the
 *     normalised vector is stored as a quant.h record and every distance
 *     is computed on records, the query's included (encoded the same way),
 *     as Redis's vector sets do; vindex_get then returns the decoded
 *     approximation (BIN: +-1, not scaled back).  With params.keep_float
 *     the normalised float32 vector is kept too (4 * dim bytes more per
 *     entry), and a query may re-rank its candidates with it;
 *   - the engine (hnsw.h or flat.h), which only ever sees dense uint32 ids
 *     and prepared vectors;
 *   - per-index counters (count, memory).
 *
 * Ids.  Every live key has an id: a small integer, stable for as long as the
 * key exists (an overwrite keeps it), reused after the key is deleted (most
 * recently freed first).  Ids are what filter callbacks receive and what
 * breaks exact distance ties (smaller id first); with no deletions, ids are
 * assigned 0, 1, 2, ... in insertion order.
 *
 * Rings.  An index created with params.capacity = C > 0 holds at most C
 * entries: adding a new key to a full ring evicts the oldest live entry by
 * insertion order (first in, first out; a real delete, so memory stays
 * flat under endless ingestion).  Overwriting a key keeps
 * its place in the order and never evicts; deleting a key takes it out of
 * the order.  The order costs 8 bytes per id and exists only in rings.
 * Mechanically the new entry goes in first and the oldest is evicted
 * after it (the engine's insert may fail, its delete cannot: that is what
 * keeps a failed add free of side effects), so a ring of C briefly holds
 * C + 1 entries and the engines keep C + 1 slots; the id the new entry
 * gets is the one the previous eviction freed.  The capacity is fixed at
 * creation.
 *
 * Payloads.  Every entry may carry one opaque byte string (0 to
 * VINDEX_PAYLOAD_MAX bytes), set by vindex_add_ex, kept when a later add of
 * the key gives none, removed with the entry (deletion or eviction).  "No
 * payload" and "an empty payload" are different states.
 *
 * Counters and auto ids.  ingested counts every insert of a new key,
 * evicted every eviction, both over the index's life (snapshots keep
 * them).  vindex_next_id hands out stream-style ids 1, 2, 3, ... for keys
 * the caller formats in decimal; every successful add whose key is a
 * canonical decimal number (no sign, no leading zero, at most 2^64 - 1)
 * moves it past that number, so replaying the resolved keys of a log
 * gives the same next id, and an auto id never repeats a numeric key that
 * was ever added.
 *
 * Errors.  Functions returning int return 0 (or the documented non-negative
 * value) on success and a negative code on failure: -EINVAL (bad argument),
 * -ENOMEM (the allocator returned NULL), or one of VINDEX_E* below (reserved
 * range -10000..-10099; vindex_strerror names them).  A failed call changes
 * nothing visible: count, contents and graph are as before (capacity
 * reserved by a failed insert may remain).  Server-facing wording ("wrong
 * vector dimension: index expects D, got N") is the caller's job.
 *
 * Threads.  No internal locking.  Any number of threads may call the const
 * functions (search, get, exists, count, memory, key, validate, iter) at the
 * same time, each with its own vindex_search_ctx, provided no thread is in a
 * mutating call (add, del, free) on the same index: the server wraps each
 * index in a rwlock.  Searches never write index state.
 *
 * Memory.  All allocation goes through the vindex_allocator given at
 * creation (default malloc/free), including the engine's.  vindex_memory
 * reports the bytes requested through it for this index, plus the ranges
 * a loaded index borrows from its snapshot (vindex_load).
 *
 * Snapshots.  vindex_save writes the index as image.h sections (layout in
 * vindex_image.c's header comment, then the engine's: hnsw.c / flat.c);
 * vindex_load brings it back exactly, using the big arrays in place. */
#ifndef ENGRAM_VINDEX_H
#define ENGRAM_VINDEX_H

#include <stddef.h>
#include <stdint.h>

#include "engram/dist.h"
#include "engram/image.h"
#include "engram/quant.h"
#include "engram/vattr.h"
#include "engram/vecbase.h"

/* ---- the base's vocabulary (vecbase.h) in this API's words --------------
 * The index's allocator, results, filters, error codes and limits are the
 * vector base's, shared with the engines; its users know them by these
 * names. */

typedef vec_allocator vindex_allocator;  /* sized allocator */
typedef vec_pair vindex_pair;            /* (internal distance, id) */
typedef vec_filter_fn vindex_filter_fn;  /* search filter */

#define VINDEX_EDIM     VEC_EDIM     /* vector length differs from the index's dim */
#define VINDEX_EVALUE   VEC_EVALUE   /* a component is NaN or infinite */
#define VINDEX_ECORRUPT VEC_ECORRUPT /* validator found a broken invariant */
#define VINDEX_EFULL    VEC_EFULL    /* id space exhausted (2^32 - 2 entries) */

#define VINDEX_DIM_MAX  VEC_DIM_MAX
#define VINDEX_M_MAX    VEC_M_MAX
#define VINDEX_EF_MAX   VEC_EF_MAX

/* Static description of any code returned here (also -EINVAL/-ENOMEM). */
static inline const char *vindex_strerror(int err) { return vec_strerror(err); }

/* ---- the index ---------------------------------------------------------- */

typedef enum vindex_type { VINDEX_HNSW = 0, VINDEX_FLAT = 1 } vindex_type;

#define VINDEX_M_DEFAULT    16u
#define VINDEX_EFC_DEFAULT  200u
#define VINDEX_EFS_DEFAULT  100u
#define VINDEX_CAPACITY_MAX (1u << 30)  /* largest ring (params.capacity) */
#define VINDEX_PAYLOAD_MAX  (1u << 29)  /* 512 MiB, a Redis string's limit */
#define VINDEX_NO_ID        UINT32_MAX  /* "no id" from the order walk */

typedef struct vindex_params {
    vindex_type type;
    uint32_t dim;            /* 1..VINDEX_DIM_MAX */
    dist_metric metric;
    quant_type quant;        /* QUANT_NONE (the default), or Q8/BIN: cosine HNSW only */
    int keep_float;          /* quantised: also keep each normalised vector as
                              * float32, for re-ranking (vindex_query.rerank);
                              * ignored when not quantised */
    uint32_t M;              /* HNSW links per node, upper layers; 0 = 16 */
    uint32_t ef_construction;/* HNSW build beam; 0 = 200 */
    uint32_t ef_search;      /* default beam when a query gives none; 0 = 100 */
    uint64_t seed;           /* level RNG: same seed + same operations = same graph */
    uint32_t initial_capacity; /* slots to allocate up front (a hint; a ring
                                * uses at most capacity + 1) */
    uint32_t capacity;       /* ring bound, 0..VINDEX_CAPACITY_MAX; 0 = unbounded */
    const dist_kernels *kernels; /* NULL = dist_active() at creation */
    const vindex_allocator *alloc; /* NULL = malloc/free; copied */
} vindex_params;

/* Defaults for everything but type/dim/metric. */
void vindex_params_init(vindex_params *p, vindex_type type, uint32_t dim, dist_metric metric);

typedef struct vindex vindex;

/* A new empty index.  Returns NULL and sets *err (if err) to -EINVAL for out
 * of range parameters (also a quantisation other than QUANT_NONE with FLAT
 * or a metric other than cosine) or -ENOMEM.  Free with vindex_free. */
vindex *vindex_new(const vindex_params *p, int *err);
/* Frees the index and everything it owns; NULL is a no-op.  Pointers handed
 * out by the index (hit keys, vindex_key) become invalid. */
void vindex_free(vindex *v);

/* Insert or overwrite key (klen bytes, any bytes, may be empty) with vec
 * (vdim floats, read only during the call).  Returns 1 when the key is new,
 * 0 when an existing key's vector was replaced (its id is kept), or
 * VINDEX_EDIM, VINDEX_EVALUE, -EINVAL (klen > 2^32-1), -ENOMEM, VINDEX_EFULL.
 * Zero vectors are accepted (for cosine their distance to anything is 1).
 * A payload is kept; in a full ring a new key evicts the oldest entry
 * (vindex_add_ex with no payload and no result). */
int vindex_add(vindex *v, const void *key, size_t klen, const float *vec, uint32_t vdim);

/* Everything an add can say.  vindex_add_args_init zeroes it and sets the
 * four required fields. */
typedef struct vindex_add_args {
    const void *key;         /* klen bytes (NULL only when klen is 0) */
    size_t klen;
    const float *vec;        /* dim floats, read only during the call */
    uint32_t dim;
    int has_payload;         /* 1: the entry's payload becomes payload/plen
                              * (plen 0: an empty payload, payload may be NULL) */
    int drop_payload;        /* 1 with has_payload 0: the entry loses its payload */
    const void *payload;     /* copied; plen <= VINDEX_PAYLOAD_MAX */
    size_t plen;
    uint32_t ef;             /* HNSW build beam for this add (0 = ef_construction;
                              * at most VINDEX_EF_MAX is used) */
    const struct vindex_prepared *prepared; /* a new key's insert planned for
                              * this index and vector (vindex_prepare_add),
                              * used if the index has not changed since */
    const void *outcome;     /* a new key's insert as it was made before
                              * (vindex_insert_outcome's bytes, replaying a
                              * log): the neighbours it chose are used
                              * instead of searching, if they fit the index
                              * (else an ordinary insert) */
    size_t outcome_len;
    void *evicted_key;       /* where an evicted entry's key is copied: */
    size_t evicted_cap;      /* min(its length, evicted_cap) bytes; NULL/0 = not wanted */
} vindex_add_args;

void vindex_add_args_init(vindex_add_args *a, const void *key, size_t klen, const float *vec,
                          uint32_t dim);

typedef struct vindex_add_result {
    int created;             /* 1: a new key; 0: an existing key overwritten */
    uint32_t id;             /* the key's id */
    int evicted;             /* 1: the ring was full and its oldest entry went */
    uint32_t evicted_id;     /* ... its former id (free after the call) */
    size_t evicted_klen;     /* ... its key's full length (see evicted_cap) */
    int planned;             /* 1: args.prepared was used (not stale) */
} vindex_add_result;

/* vindex_add with payloads and eviction reports.  Payload rules: a new key
 * gets the given payload or none; an overwrite replaces it when
 * has_payload, removes it when drop_payload, else keeps it.  In a ring
 * with count == capacity a new key evicts the oldest entry (its payload
 * goes with it); an overwrite never evicts and keeps its place in the
 * order.  Returns 1 (new) or 0 (overwrite) and fills *r (if r), or what
 * vindex_add returns (-EINVAL also for a bad payload: NULL with plen > 0,
 * or plen > VINDEX_PAYLOAD_MAX); on failure nothing changed (not the order,
 * not the counters, not the payloads) and *r is untouched. */
int vindex_add_ex(vindex *v, const vindex_add_args *a, vindex_add_result *r);
/* The outcome of the last add if it inserted key (a new key; no add or
 * delete since): the HNSW level and neighbours it chose, as at most
 * VINDEX_OUTCOME_MAX bytes into buf -- a log records them so that replaying
 * the add (vindex_add_args.outcome) skips the neighbour search and makes
 * the same graph.  The bytes, or 0: none (another key, a FLAT index, a
 * ring's insert that evicted, cap too small).  The layout is the engine's
 * (vindex_hnsw.c). */
#define VINDEX_OUTCOME_MAX (2 + 17 * (1 + 4 * 64))
size_t vindex_insert_outcome(const vindex *v, const void *key, size_t klen, void *buf,
                             size_t cap);
/* Inserts made from a recorded outcome so far (tests, INFO). */
uint64_t vindex_outcomes_used(const vindex *v);

/* Replace an existing key's payload with payload/plen (plen 0: an empty
 * payload), or remove it (drop).  1 if the key exists (even when it had no
 * payload to drop), 0 if not; -EINVAL (bad payload) or -ENOMEM with
 * nothing changed.  The vector and the key's place are untouched. */
int vindex_set_payload(vindex *v, const void *key, size_t klen, const void *payload,
                       size_t plen, int drop);
/* ---- adds planned off the loop ----------------------------------------------
 * The expensive half of an HNSW insert -- finding the neighbours -- only
 * reads the graph, so it can run on a worker under the read lock while
 * searches go on; the loop then commits it under the write lock in
 * microseconds (Redis's VADD ... CAS).  If anything changed the index in
 * between, the commit does the whole insert itself, so the result is
 * always what a direct add gives. */
typedef struct vindex_prepared vindex_prepared;
typedef struct vindex_search_ctx vindex_search_ctx;
/* Room for a plan for any index; NULL when out of memory. */
vindex_prepared *vindex_prepared_new(void);
void vindex_prepared_free(vindex_prepared *p);
/* Plan adding vec (dim floats) as a new key with build beam ef (0: the
 * index's): read-only, any thread (under the read lock), ctx for scratch
 * (not shared with a running search).  0, VINDEX_EDIM, VINDEX_EVALUE,
 * -ENOMEM, or -ENOTSUP for an engine with nothing to plan (FLAT: add
 * directly).  Pass it as vindex_add_args.prepared with the same vector and
 * ef. */
int vindex_prepare_add(const vindex *v, vindex_search_ctx *ctx, const float *vec, uint32_t dim,
                       uint32_t ef, vindex_prepared *out);

/* Remove key (and its payload, and its place in a ring's order).  Returns
 * 1 if it was there, 0 if not.  Never fails otherwise: deletion does not
 * allocate.  The id is freed for reuse. */
int vindex_del(vindex *v, const void *key, size_t klen);
/* Copy key's vector, in the scale it was added, into out (dim floats).
 * Returns 1 if found, 0 if not (out untouched).  Quantised: the decoded
 * approximation times the norm (BIN: +-1 as stored). */
int vindex_get(const vindex *v, const void *key, size_t klen, float *out);
/* A live id's stored record (quant.h's layout for the index's
 * quantisation; dim floats, normalised for cosine, when QUANT_NONE), its
 * length in *len and the vector's original norm in *norm (1 when the
 * metric keeps none).  Borrowed until the next mutation; NULL if id is not
 * live. */
const void *vindex_record(const vindex *v, uint32_t id, size_t *len, float *norm);
/* HNSW structure, for inspection (Redis's VLINKS): a live id's top layer
 * (0 for FLAT, -1 if not live), and its out-links on a layer <= that into
 * out (room for cap): their count (at most cap written), or -EINVAL (not
 * live, layer out of range, FLAT). */
int vindex_level(const vindex *v, uint32_t id);
int vindex_links(const vindex *v, uint32_t id, int layer, uint32_t *out, uint32_t cap);
/* The reported distance between two live ids' stored vectors. */
float vindex_id_dist(const vindex *v, uint32_t a, uint32_t b);
/* A live id chosen from the random number r (the first live id at or after
 * r mod the id space, wrapping), or VINDEX_NO_ID when empty. */
uint32_t vindex_random_id(const vindex *v, uint64_t r);
/* 1 if key exists, 0 if not; *id (if id) set when found. */
int vindex_exists(const vindex *v, const void *key, size_t klen, uint32_t *id);
/* The key of a live id (borrowed: valid until the next mutating call), or
 * NULL if id is not live.  For filter callbacks and result formatting. */
const void *vindex_key(const vindex *v, uint32_t id, size_t *klen);
/* Enumerate live entries in id order: start with *cursor = 0; returns 1 and
 * sets id/key/klen (borrowed) for the next entry, 0 when done.  Mutations
 * during an enumeration may skip or repeat entries. */
int vindex_iter(const vindex *v, uint32_t *cursor, uint32_t *id, const void **key, size_t *klen);

/* The payload of a live id (borrowed: valid until the next mutating call)
 * with its length in *len, or NULL (*len = 0) when id is not live or has
 * no payload.  An empty payload is a non-NULL pointer with *len = 0. */
const void *vindex_payload(const vindex *v, uint32_t id, size_t *len);
/* The same payload as an attribute block (vattr.h: its members when the
 * text is a JSON object, none otherwise), for FILTER expressions; NULL when
 * id is not live or has none.  Borrowed as above; searches may read it
 * under the read lock. */
const vattr *vindex_attr(const vindex *v, uint32_t id);

/* Rings: live ids in insertion order, oldest first.  vindex_fifo_first
 * gives the oldest, vindex_fifo_next the one inserted after id (a live id
 * of the ring); VINDEX_NO_ID at the end, when empty, and always for an
 * unbounded index (which keeps no order). */
uint32_t vindex_fifo_first(const vindex *v);
uint32_t vindex_fifo_next(const vindex *v, uint32_t id);

/* The next auto id (1 for a new index), or 0 once 2^64 - 1 has been used.
 * The caller formats it in decimal and, if that key exists, notes it and
 * asks again.  vindex_note_id records that `used` was taken: next becomes
 * max(next, used + 1) (mutating: under the write lock).  Adds of canonical
 * decimal keys note themselves (see "Counters and auto ids" above). */
uint64_t vindex_next_id(const vindex *v);
void vindex_note_id(vindex *v, uint64_t used);

uint32_t vindex_count(const vindex *v);
/* The ring bound given at creation (0 = unbounded). */
uint32_t vindex_capacity(const vindex *v);
/* Bytes this index holds through its allocator (plus its own struct). */
size_t vindex_memory(const vindex *v);
uint32_t vindex_dim(const vindex *v);
dist_metric vindex_metric(const vindex *v);
vindex_type vindex_type_of(const vindex *v);

typedef struct vindex_stats {
    vindex_type type;
    dist_metric metric;
    quant_type quant;
    int keep_float;                  /* a float copy is kept for re-ranking */
    uint32_t dim, count, capacity;   /* capacity: slots allocated */
    uint32_t M, ef_construction, ef_search;
    int max_level;                   /* HNSW top layer, -1 if empty or FLAT */
    size_t memory, engine_memory;    /* whole index / engine part only */
    const char *kernel;              /* dist_kernels name in use */
    uint32_t ring_capacity;          /* params.capacity: 0 = unbounded */
    uint32_t payloads;               /* live entries with a payload */
    size_t payload_bytes;            /* their bytes (memory counts them too) */
    uint64_t ingested, evicted;      /* all-time new keys / evictions */
    uint64_t next_id;                /* vindex_next_id */
} vindex_stats;
void vindex_stats_get(const vindex *v, vindex_stats *out);

/* Check every invariant (key map <-> ids, ring order, payloads, counters,
 * engine structure; for HNSW also degree bounds, link liveness,
 * reachability).  Returns 0, VINDEX_ECORRUPT
 * with a description in err (if errlen > 0), or -ENOMEM. Read-only. */
int vindex_validate(const vindex *v, char *err, size_t errlen);

/* HNSW: walk the graph and re-link any node a search could no longer reach
 * (pruning can, rarely, cut a group off; this also runs by itself every
 * count/4 + 256 mutations).  FLAT: nothing to do.  Mutating.  Returns the
 * number of nodes re-linked, or -ENOMEM (nothing changed). */
int vindex_repair(vindex *v);

/* ---- snapshots ---------------------------------------------------------- */

/* Section kinds written by vindex_save (image.h's vindex range): META, KEYS,
 * NORMS (cosine only), STREAM (unless the index never had a key and is
 * not a ring), PAYLOADS (when some entry has one), then the engine's
 * sections (hnsw.h HNSW_IMG_*, flat.h FLAT_IMG_*). */
#define VINDEX_IMG_META     0x0100u
#define VINDEX_IMG_KEYS     0x0101u
#define VINDEX_IMG_NORMS    0x0102u
#define VINDEX_IMG_STREAM   0x0103u  /* ring bound, counters, next id, order */
#define VINDEX_IMG_PAYLOADS 0x0104u
#define VINDEX_IMG_FLOATS   0x0105u  /* the float copy of a keep_float index */

/* Write the index.  Read-only (may run beside searches, under the read
 * lock); allocates nothing.  Returns 0 or the first error the sink
 * reported, having stopped there. */
int vindex_save(const vindex *v, img_sink *s);

typedef struct vindex_load_opts {
    const dist_kernels *kernels;   /* NULL = dist_active() at load */
    const vindex_allocator *alloc; /* NULL = malloc/free; copied */
} vindex_load_opts;

/* Rebuild an index from exactly the sections vindex_save wrote for it
 * (src->sec[0..n): the caller frames indices).  o may be NULL (defaults).
 *
 * Everything is checked before use -- sizes, counts, ids, the key <-> id
 * bijection, duplicate keys, and the engine's own structure (hnsw_load,
 * flat_load) -- so a malformed image gives VINDEX_ECORRUPT with a message
 * in err (if errlen > 0) naming what is wrong, never an out-of-bounds
 * access.  vindex_validate checks more (HNSW hints, reachability) at a cost
 * of seconds per million vectors; an index that loads but fails it is safe
 * to search, not to mutate (see hnsw_load).
 *
 * Borrowing: the engine's page-aligned vector array (and HNSW's layer-0
 * array) are used in place: src's memory must stay valid and writable
 * (copy-on-write) until each such range is given back with
 * src->release(src->release_ud, data, len), exactly once, when the index
 * first grows past it or at vindex_free, in the thread making that call.
 * release may be NULL.  Every other section is copied and released
 * before this returns, so the source's owner (snapfile.h counts every byte it
 * hands out) can give those pages back at once: each non-empty section is
 * released exactly once over the index's life.
 *
 * Returns 0 and *out, or -EINVAL, -ENOMEM, VINDEX_ECORRUPT; on failure
 * *out = NULL, nothing is borrowed and every non-empty section has been
 * released. */
int vindex_load(const img_source *src, const vindex_load_opts *o, vindex **out,
                char *err, size_t errlen);

/* An exact copy of v (keys, ids, vectors, graph, payloads, ring order,
 * counters), owning all its memory: v is saved into memory and loaded back
 * (o as for vindex_load; NULL = defaults).  Read-only on v (may run under
 * its read lock).  0 and *out, or -ENOMEM (*out NULL). */
int vindex_clone(const vindex *v, const vindex_load_opts *o, vindex **out);

/* ---- search ------------------------------------------------------------- */

/* Per-thread scratch for searches: visited marks with a generation counter,
 * heaps, the prepared query.  Not tied to one index; grows as needed.  One
 * context must not be used by two threads at once. */
typedef struct vindex_search_ctx vindex_search_ctx;
/* NULL alloc = malloc/free.  Returns NULL on exhaustion. */
vindex_search_ctx *vindex_search_ctx_new(const vindex_allocator *alloc);
void vindex_search_ctx_free(vindex_search_ctx *c);

typedef struct vindex_query {
    const float *vec;        /* the query, in the caller's scale */
    uint32_t dim;            /* must equal the index's dim */
    uint32_t k;              /* results wanted; hits must hold k entries */
    uint32_t ef;             /* HNSW beam; 0 = index default; max(ef, k) is used */
    vindex_filter_fn *accept;/* NULL = accept all */
    void *accept_ud;
    float maxdist;           /* drop hits farther than this (reported scale) */
    uint32_t effort;         /* with accept, HNSW: stop after expanding this many
                              * nodes of layer 0 (0 = no bound; hnsw.h) */
    int rerank;              /* an index with a float copy (keep_float): take the
                              * max(ef, k) best by the quantised distance, then
                              * order them by the float32 one and keep k; the
                              * distances reported are the float ones */
} vindex_query;

/* Zero everything, maxdist = +inf. */
void vindex_query_init(vindex_query *q, const float *vec, uint32_t dim, uint32_t k);

typedef struct vindex_hit {
    const void *key;         /* borrowed: valid until the next mutating call */
    size_t klen;
    float dist;              /* reported distance: sqrt for l2, 1-cos, -dot */
    uint32_t id;
} vindex_hit;

/* Nearest neighbours of q->vec, closest first, ties by smaller id.  Writes
 * *nhits <= min(k, count) hits (fewer only when the filter or maxdist drops
 * some, or, for HNSW, when the graph offers fewer).  FLAT is exact; HNSW is
 * approximate.  Returns 0, VINDEX_EDIM, VINDEX_EVALUE, or -ENOMEM (context
 * growth); on error *nhits = 0.  Empty index or k = 0: 0 hits, returns 0. */
/* ---- exact search split in parts (FLAT), for several threads ------------- *
 * A FLAT search may be cut into nparts disjoint id ranges, each searched by
 * vindex_search_part (any thread, its own context, under the read lock),
 * and the parts joined by vindex_search_join: the answer equals
 * vindex_search's when the index did not change in between (the caller
 * checks that; see registry.h's generation).  vindex_split_slots says how
 * many slots a split divides (0: the index cannot be split: HNSW). */
uint32_t vindex_split_slots(const vindex *v);
/* The k best (internal distance, id) of part `part` of nparts into out
 * (room for q->k).  0, VINDEX_EDIM, VINDEX_EVALUE, -ENOMEM, -EINVAL (not
 * FLAT, bad part). */
int vindex_search_part(const vindex *v, vindex_search_ctx *ctx, const vindex_query *q,
                       uint32_t part, uint32_t nparts, vindex_pair *out, uint32_t *nout);
/* Join count (<= 64) part results into hits (room for q->k), as
 * vindex_search reports them (maxdist applied); scratch has room for q->k.
 * 0, or -EINVAL if a part's id is no longer live (the index changed). */
int vindex_search_join(const vindex *v, const vindex_query *q, const vindex_pair *const *parts,
                       const uint32_t *nparts, int count, vindex_pair *scratch,
                       vindex_hit *hits, uint32_t *nhits);

int vindex_search(const vindex *v, vindex_search_ctx *ctx, const vindex_query *q,
                  vindex_hit *hits, uint32_t *nhits);
/* The same by a linear scan of every live entry (the filter applied to
 * each; ef and effort unused): exact for either engine, O(count) -- Redis's
 * VSIM ... TRUTH, and the ground truth tests compare with.  With rerank on
 * an index with a float copy, exact in float32. */
int vindex_search_exact(const vindex *v, vindex_search_ctx *ctx, const vindex_query *q,
                        vindex_hit *hits, uint32_t *nhits);

#endif
