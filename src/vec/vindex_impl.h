/* vindex_impl.h -- the inside of an index, shared by the two files that
 * own it: vindex.c (keys, payloads, rings, mutations, searches) and
 * vindex_image.c (its snapshot sections).  Private to the vec library;
 * what the fields mean and which invariants hold between them is written
 * in vindex.c's header comment, the section layout in vindex_image.c's.
 *
 * Threads: as in vindex.h; nothing here adds any. */
#ifndef ENGRAM_VINDEX_IMPL_H
#define ENGRAM_VINDEX_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "engram/dist.h"
#include "engram/image.h"
#include "engram/vattr.h"
#include "engram/vecbase.h"
#include "engram/vindex.h"

#include "vindex_engine.h"

#define VINDEX_NONE UINT32_MAX
#define VINDEX_SLOTS_MAX (1u << 31)
#define VX_SLOT_EMPTY UINT64_MAX

/* A key table slot: the key's hash and its id in one word. */
static inline uint64_t vx_slot(uint32_t hash, uint32_t id) { return (uint64_t)hash << 32 | id; }
static inline uint32_t vx_slot_id(uint64_t e) { return (uint32_t)e; }
static inline uint32_t vx_slot_hash(uint64_t e) { return (uint32_t)(e >> 32); }

/* A live key's block (heap, or the arena of a loaded index). */
typedef struct vkey {
    uint32_t len;
    uint32_t hash;
    unsigned char bytes[];
} vkey;

static inline size_t vkey_size(uint32_t len) { return sizeof(vkey) + len; }

struct vindex {
    vec_mem mem;            /* allocator and bytes held here (not the engine's) */
    vindex_type type;
    dist_metric metric;
    quant_type quant;       /* QUANT_NONE unless cosine HNSW */
    int keep_float;         /* quantised with a float copy (fvec) */
    uint32_t dim, M, efc, efs;
    size_t recbytes;        /* one stored record (quant.h) */
    float *fvec;            /* keep_float: dim normalised floats per id, 64-byte
                             * aligned in fvec_raw; NULL otherwise */
    void *fvec_raw;
    size_t fvec_bytes;
    uint32_t fcap;          /* ids fvec covers (>= idcap once reserved) */
    const vindex_engine *ops;
    void *eng;
    vkey **keys;            /* per id; NULL = free */
    float *norms;           /* per id, cosine only */
    uint32_t idcap;
    uint64_t *slots;        /* hash << 32 | id, VX_SLOT_EMPTY: see vindex.c */
    uint32_t nslots, count;
    uint32_t hseed;
    uint64_t seed;          /* as created (saved for reference) */
    float *prep;            /* dim floats: the vector being added, normalised */
    void *rec;              /* recbytes: ... and encoded (quantised indices) */
    unsigned char *karena;  /* key blocks of a loaded index, one allocation */
    size_t karena_bytes;
    uint32_t karena_live;   /* keys still in it; it is freed with the last */
    img_release_fn *release;/* the snapshot's; the engine reaches it through */
    void *release_ud;       /* vindex_relay, once release_armed is set */
    int release_armed;
    uint32_t ring;          /* capacity bound, 0 = unbounded */
    uint32_t *fprev, *fnext;/* per id, rings only: the insertion order */
    uint32_t fhead, ftail;  /* oldest, newest (VINDEX_NONE: empty) */
    vattr **pays;           /* per id, NULL until the first payload */
    uint32_t npays;         /* live entries with a payload */
    size_t pbytes;          /* their payload bytes */
    uint64_t ingested, evicted;
    uint32_t outcome_id1;       /* 1 + the id the last add inserted (0: the last
                                   add was no insert): vindex_insert_outcome */
    uint64_t outcomes_used;     /* inserts made from a recorded outcome */
    uint64_t next_id;       /* 0: exhausted */
};

/* ---- vindex.c's helpers that loading needs -------------------------------- */

/* Fields every index starts with, new or loaded. */
void vindex_init_fields(vindex *v, const vindex_allocator *al);
/* The key hash seed that follows from the index's seed. */
uint32_t vindex_hseed(uint64_t seed);
/* Seeded hash of a key. */
uint32_t vindex_hash(const void *p, size_t n, uint32_t seed);
/* Point v->ops at the engine of v's type, and fill *ep with what that
 * engine is made or loaded with: the index's parameters (defaults filled
 * in), its allocator, kernels (NULL: dist_active()) and initial slots. */
void vindex_engine_setup(vindex *v, const dist_kernels *kern, uint32_t initial, vindex_params *ep);
/* Per-id arrays cover ids < n.  0 or -ENOMEM (unchanged). */
int vindex_ids_reserve(vindex *v, uint32_t n);
/* Append live id to a ring's order (the newest). */
void vindex_fifo_append(vindex *v, uint32_t id);
/* The payload pointer array, made with the first payload.  0 or -ENOMEM. */
int vindex_pays_ensure(vindex *v);
/* A block holding len bytes of p (len <= VINDEX_PAYLOAD_MAX), or NULL. */
vattr *vindex_pay_new(vindex *v, const void *p, size_t len);
/* id's payload becomes b (the old one, if any, is freed). */
void vindex_pay_set(vindex *v, uint32_t id, vattr *b);
/* 1 and *x if key spells a canonical decimal number below 2^64. */
int vindex_key_decimal(const void *key, size_t klen, uint64_t *x);

#endif
