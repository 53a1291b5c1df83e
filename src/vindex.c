/* vindex.c -- the front every vector index has: keys, validation, cosine
 * preparation, counters, and dispatch to an engine (HNSW or FLAT).
 *
 * Keys.  A key is any byte string (NULs included, case-sensitive).  Each
 * live key has one heap block {len, hash, bytes} pointed to from keys[id];
 * the hash table maps key -> id with open addressing: slots hold only the
 * 4-byte id (UINT32_MAX = empty), probing is linear, deletion shifts the
 * following run back (no tombstones, so a table under churn never silts
 * up), and the load stays <= 3/4.  The stored 32-bit hash lets a probe skip
 * non-matching keys after one compare and makes rehashing free.
 *
 * Ids come from the engine (dense, the most recently freed reused first);
 * the per-id arrays here (keys, and norms for cosine) are sized to the
 * engine's capacity.  That is where per-entry payload bytes and the FIFO
 * insertion order will go when capacity-bounded eviction arrives: both are
 * per-id data beside keys[], and eviction is just vindex_del of the oldest.
 *
 * Vectors.  Checked (dimension, finiteness) before anything changes.  For
 * cosine they are stored L2-normalised with the original norm kept per id:
 * the engine then computes 1 - dot on unit vectors, and vindex_get scales
 * back.  A zero vector stays zero (norm 0: distance 1 to everything).
 *
 * Failure atomicity.  vindex_add reserves everything it may need (table
 * slots, engine capacity, per-id arrays, the key block) before the engine
 * insert, whose own failure leaves the graph untouched; only then does it
 * link the key in.  So any error leaves the index as it was.
 *
 * Threads.  None of its own; see vindex.h.  Const functions only read, and
 * search scratch is in the caller's vindex_search_ctx. */
#include "engram/vindex.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engram/flat.h"
#include "engram/hnsw.h"

#define VINDEX_NONE UINT32_MAX
#define VINDEX_SLOTS_MAX (1u << 31)

typedef struct vkey {
    uint32_t len;
    uint32_t hash;
    unsigned char bytes[];
} vkey;

/* What vindex needs from an engine; one table per engine type. */
typedef struct vindex_ops {
    const char *name;
    int (*reserve)(void *e, uint32_t n);
    int (*insert)(void *e, const float *vec, uint32_t *id);
    int (*update)(void *e, uint32_t id, const float *vec);
    int (*del)(void *e, uint32_t id);
    int (*live)(const void *e, uint32_t id);
    const float *(*vector)(const void *e, uint32_t id);
    uint32_t (*capacity)(const void *e);
    size_t (*memory)(const void *e);
    const dist_kernels *(*kernels)(const void *e);
    int (*max_level)(const void *e);
    int (*search)(const void *e, vindex_search_ctx *c, const float *q, uint32_t k,
                  uint32_t ef, vindex_filter_fn *accept, void *ud, vindex_pair *out,
                  uint32_t *n);
    int (*validate)(const void *e, char *err, size_t errlen);
    void (*destroy)(void *e);
} vindex_ops;

struct vindex_search_ctx {
    vindex_allocator al;
    hnsw_search_ctx *hc;
    vindex_pair *pairs;
    uint32_t pcap;
    float *q;               /* the prepared (normalised) query */
    uint32_t qcap;
};

struct vindex {
    vindex_allocator al;
    size_t mem;             /* bytes held here (not the engine's) */
    vindex_type type;
    dist_metric metric;
    uint32_t dim, M, efc, efs;
    const vindex_ops *ops;
    void *eng;
    vkey **keys;            /* per id; NULL = free */
    float *norms;           /* per id, cosine only */
    uint32_t idcap;
    uint32_t *slots;
    uint32_t nslots, count;
    uint32_t hseed;
    float *prep;            /* dim floats: the vector being added, prepared */
};

/* ---- allocator ---------------------------------------------------------- */

static void *vindex_malloc(void *ud, size_t n)
{
    (void)ud;
    return malloc(n ? n : 1);
}

static void vindex_mfree(void *ud, void *p, size_t n)
{
    (void)ud;
    (void)n;
    free(p);
}

const vindex_allocator vindex_default_allocator = { vindex_malloc, vindex_mfree, NULL };

static void *vx_alloc(vindex *v, size_t n)
{
    void *p = v->al.alloc(v->al.ud, n);
    if (p) v->mem += n;
    return p;
}

static void vx_free(vindex *v, void *p, size_t n)
{
    if (!p) return;
    v->al.free(v->al.ud, p, n);
    v->mem -= n;
}

const char *vindex_strerror(int err)
{
    switch (err) {
    case 0: return "ok";
    case -EINVAL: return "invalid argument";
    case -ENOMEM: return "out of memory";
    case VINDEX_EDIM: return "wrong vector dimension";
    case VINDEX_EVALUE: return "vector component is NaN or infinite";
    case VINDEX_ECORRUPT: return "index structure is corrupt";
    case VINDEX_EFULL: return "index is full";
    default: return "unknown error";
    }
}

/* ---- engine adapters ---------------------------------------------------- */

static int eh_reserve(void *e, uint32_t n) { return hnsw_reserve(e, n); }
static int eh_insert(void *e, const float *v, uint32_t *id) { return hnsw_insert(e, v, id); }
static int eh_update(void *e, uint32_t id, const float *v) { return hnsw_update(e, id, v); }
static int eh_del(void *e, uint32_t id) { return hnsw_delete(e, id); }
static int eh_live(const void *e, uint32_t id) { return hnsw_is_live(e, id); }
static const float *eh_vector(const void *e, uint32_t id) { return hnsw_vector(e, id); }
static uint32_t eh_capacity(const void *e) { return hnsw_capacity(e); }
static size_t eh_memory(const void *e) { return hnsw_memory(e); }
static const dist_kernels *eh_kernels(const void *e) { return hnsw_kernels(e); }
static int eh_max_level(const void *e) { return hnsw_max_level(e); }
static int eh_validate(const void *e, char *err, size_t n) { return hnsw_validate(e, err, n); }
static void eh_destroy(void *e) { hnsw_free(e); }
static int eh_search(const void *e, vindex_search_ctx *c, const float *q, uint32_t k,
                     uint32_t ef, vindex_filter_fn *accept, void *ud, vindex_pair *out,
                     uint32_t *n)
{
    return hnsw_search(e, c->hc, q, k, ef, accept, ud, out, n);
}

static const vindex_ops vindex_hnsw_ops = {
    "hnsw", eh_reserve, eh_insert, eh_update, eh_del, eh_live, eh_vector, eh_capacity,
    eh_memory, eh_kernels, eh_max_level, eh_search, eh_validate, eh_destroy,
};

static int ef_reserve(void *e, uint32_t n) { return flat_reserve(e, n); }
static int ef_insert(void *e, const float *v, uint32_t *id) { return flat_insert(e, v, id); }
static int ef_update(void *e, uint32_t id, const float *v) { return flat_update(e, id, v); }
static int ef_del(void *e, uint32_t id) { return flat_delete(e, id); }
static int ef_live(const void *e, uint32_t id) { return flat_is_live(e, id); }
static const float *ef_vector(const void *e, uint32_t id) { return flat_vector(e, id); }
static uint32_t ef_capacity(const void *e) { return flat_capacity(e); }
static size_t ef_memory(const void *e) { return flat_memory(e); }
static const dist_kernels *ef_kernels(const void *e) { return flat_kernels(e); }
static int ef_max_level(const void *e) { (void)e; return -1; }
static int ef_validate(const void *e, char *err, size_t n) { return flat_validate(e, err, n); }
static void ef_destroy(void *e) { flat_free(e); }
static int ef_search(const void *e, vindex_search_ctx *c, const float *q, uint32_t k,
                     uint32_t ef, vindex_filter_fn *accept, void *ud, vindex_pair *out,
                     uint32_t *n)
{
    (void)c;
    (void)ef;
    return flat_search(e, q, k, accept, ud, out, n);
}

static const vindex_ops vindex_flat_ops = {
    "flat", ef_reserve, ef_insert, ef_update, ef_del, ef_live, ef_vector, ef_capacity,
    ef_memory, ef_kernels, ef_max_level, ef_search, ef_validate, ef_destroy,
};

/* ---- key map ------------------------------------------------------------ */

/* Seeded 64-bit multiply-xorshift over 8-byte words, folded to 32 bits. */
static uint32_t vindex_hash(const void *p, size_t n, uint32_t seed)
{
    const unsigned char *s = p;
    uint64_t h = seed ^ ((uint64_t)n * 0x9E3779B97F4A7C15ull);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        w *= 0xBF58476D1CE4E5B9ull;
        h = (h ^ (w ^ (w >> 31))) * 0x94D049BB133111EBull;
        s += 8;
        n -= 8;
    }
    uint64_t t = 0;
    for (size_t i = 0; i < n; i++) t |= (uint64_t)s[i] << (8 * i);
    h = (h ^ t) * 0xBF58476D1CE4E5B9ull;
    h ^= h >> 29;
    h *= 0x94D049BB133111EBull;
    h ^= h >> 32;
    return (uint32_t)h;
}

/* The id of key, or VINDEX_NONE; *slot is where it is or would go. */
static uint32_t map_find(const vindex *v, const void *key, size_t klen, uint32_t hash,
                         uint32_t *slot)
{
    if (v->nslots == 0) return VINDEX_NONE;
    uint32_t mask = v->nslots - 1;
    for (uint32_t i = hash & mask;; i = (i + 1) & mask) {
        uint32_t id = v->slots[i];
        if (id == VINDEX_NONE) { *slot = i; return VINDEX_NONE; }
        const vkey *k = v->keys[id];
        if (k->hash == hash && k->len == klen && (klen == 0 || memcmp(k->bytes, key, klen) == 0)) {
            *slot = i;
            return id;
        }
    }
}

/* Room for n keys at load <= 3/4.  0 or -ENOMEM (table unchanged). */
static int map_reserve(vindex *v, uint32_t n)
{
    if ((uint64_t)n * 4 <= (uint64_t)v->nslots * 3) return 0;
    uint64_t ns = v->nslots ? (uint64_t)v->nslots * 2 : 16;
    while ((uint64_t)n * 4 > ns * 3) ns *= 2;
    if (ns > VINDEX_SLOTS_MAX) return VINDEX_EFULL;
    uint32_t *slots = vx_alloc(v, ns * sizeof *slots);
    if (!slots) return -ENOMEM;
    memset(slots, 0xFF, ns * sizeof *slots);
    uint32_t mask = (uint32_t)ns - 1;
    for (uint32_t i = 0; i < v->nslots; i++) {
        uint32_t id = v->slots[i];
        if (id == VINDEX_NONE) continue;
        uint32_t j = v->keys[id]->hash & mask;
        while (slots[j] != VINDEX_NONE) j = (j + 1) & mask;
        slots[j] = id;
    }
    vx_free(v, v->slots, (size_t)v->nslots * sizeof *v->slots);
    v->slots = slots;
    v->nslots = (uint32_t)ns;
    return 0;
}

/* Empty slot i and shift back any entry of the run after it that would no
 * longer be found (its home slot is not cyclically within (i, j]). */
static void map_remove(vindex *v, uint32_t i)
{
    uint32_t mask = v->nslots - 1;
    for (uint32_t j = i;;) {
        j = (j + 1) & mask;
        uint32_t id = v->slots[j];
        if (id == VINDEX_NONE) break;
        uint32_t home = v->keys[id]->hash & mask;
        int stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (stays) continue;
        v->slots[i] = id;
        i = j;
    }
    v->slots[i] = VINDEX_NONE;
}

/* Per-id arrays cover ids < n.  0 or -ENOMEM (unchanged). */
static int ids_reserve(vindex *v, uint32_t n)
{
    if (n <= v->idcap) return 0;
    vkey **keys = vx_alloc(v, (size_t)n * sizeof *keys);
    float *norms = NULL;
    if (keys && v->metric == DIST_COSINE && !(norms = vx_alloc(v, (size_t)n * sizeof *norms))) {
        vx_free(v, keys, (size_t)n * sizeof *keys);
        keys = NULL;
    }
    if (!keys) return -ENOMEM;
    memset(keys, 0, (size_t)n * sizeof *keys);
    if (v->idcap) memcpy(keys, v->keys, (size_t)v->idcap * sizeof *keys);
    if (norms && v->idcap) memcpy(norms, v->norms, (size_t)v->idcap * sizeof *norms);
    vx_free(v, v->keys, (size_t)v->idcap * sizeof *keys);
    vx_free(v, v->norms, v->norms ? (size_t)v->idcap * sizeof *norms : 0);
    v->keys = keys;
    v->norms = norms;
    v->idcap = n;
    return 0;
}

/* ---- life cycle --------------------------------------------------------- */

void vindex_params_init(vindex_params *p, vindex_type type, uint32_t dim, dist_metric metric)
{
    memset(p, 0, sizeof *p);
    p->type = type;
    p->dim = dim;
    p->metric = metric;
    p->M = VINDEX_M_DEFAULT;
    p->ef_construction = VINDEX_EFC_DEFAULT;
    p->ef_search = VINDEX_EFS_DEFAULT;
    p->seed = 0x5EEDF00Dull;
}

static int vindex_make_engine(vindex *v, const vindex_params *p)
{
    int err = -EINVAL;
    if (p->type == VINDEX_HNSW) {
        hnsw_params hp = { .dim = p->dim, .metric = p->metric, .M = v->M,
                           .ef_construction = v->efc, .ef_search = v->efs, .seed = p->seed,
                           .initial_capacity = p->initial_capacity, .kernels = p->kernels,
                           .alloc = &v->al };
        v->ops = &vindex_hnsw_ops;
        v->eng = hnsw_new(&hp, &err);
    } else if (p->type == VINDEX_FLAT) {
        flat_params fp = { .dim = p->dim, .metric = p->metric,
                           .initial_capacity = p->initial_capacity, .kernels = p->kernels,
                           .alloc = &v->al };
        v->ops = &vindex_flat_ops;
        v->eng = flat_new(&fp, &err);
    }
    return v->eng ? 0 : err;
}

vindex *vindex_new(const vindex_params *p, int *err)
{
    const vindex_allocator *al = p->alloc ? p->alloc : &vindex_default_allocator;
    int e = -EINVAL;
    vindex *v = NULL;
    if ((p->type != VINDEX_HNSW && p->type != VINDEX_FLAT) || p->dim < 1 ||
        p->dim > VINDEX_DIM_MAX)
        goto fail;
    e = -ENOMEM;
    if (!(v = al->alloc(al->ud, sizeof *v))) goto fail;
    memset(v, 0, sizeof *v);
    v->al = *al;
    v->type = p->type;
    v->metric = p->metric;
    v->dim = p->dim;
    v->M = p->M ? p->M : VINDEX_M_DEFAULT;
    v->efc = p->ef_construction ? p->ef_construction : VINDEX_EFC_DEFAULT;
    v->efs = p->ef_search ? p->ef_search : VINDEX_EFS_DEFAULT;
    v->hseed = (uint32_t)(p->seed * 0x9E3779B97F4A7C15ull >> 32);
    if ((e = vindex_make_engine(v, p)) != 0) goto fail;
    e = -ENOMEM;
    if (!(v->prep = vx_alloc(v, (size_t)v->dim * sizeof *v->prep)) ||
        ids_reserve(v, v->ops->capacity(v->eng)))
        goto fail;
    return v;
fail:
    vindex_free(v);
    if (err) *err = e;
    return NULL;
}

void vindex_free(vindex *v)
{
    if (!v) return;
    for (uint32_t id = 0; id < v->idcap; id++)
        if (v->keys[id]) vx_free(v, v->keys[id], sizeof(vkey) + v->keys[id]->len);
    vx_free(v, v->keys, (size_t)v->idcap * sizeof *v->keys);
    vx_free(v, v->norms, v->norms ? (size_t)v->idcap * sizeof *v->norms : 0);
    vx_free(v, v->slots, (size_t)v->nslots * sizeof *v->slots);
    vx_free(v, v->prep, (size_t)v->dim * sizeof *v->prep);
    if (v->eng) v->ops->destroy(v->eng);
    v->al.free(v->al.ud, v, sizeof *v);
}

/* ---- vectors ------------------------------------------------------------ */

static int vec_finite(const float *x, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

/* Normalise in -> out for cosine; *norm gets the original length.  The sum
 * is in double so no finite input overflows; a norm beyond FLT_MAX cannot
 * be stored and is VINDEX_EVALUE. */
static int vec_normalise(const float *in, float *out, uint32_t dim, float *norm)
{
    double s = 0.0;
    for (uint32_t i = 0; i < dim; i++) s += (double)in[i] * in[i];
    double n = sqrt(s);
    if (!isfinite((float)n)) return VINDEX_EVALUE;
    *norm = (float)n;
    for (uint32_t i = 0; i < dim; i++) out[i] = n > 0.0 ? (float)(in[i] / n) : 0.0f;
    return 0;
}

/* ---- mutations ---------------------------------------------------------- */

/* Make every reservation a new key needs; nothing visible changes. */
static int vindex_reserve_new(vindex *v)
{
    if (v->count >= VINDEX_SLOTS_MAX / 4 * 3) return VINDEX_EFULL;
    int rc = map_reserve(v, v->count + 1);
    if (!rc) rc = v->ops->reserve(v->eng, v->count + 1);
    if (!rc) rc = ids_reserve(v, v->ops->capacity(v->eng));
    return rc;
}

int vindex_add(vindex *v, const void *key, size_t klen, const float *vec, uint32_t vdim)
{
    if (vdim != v->dim) return VINDEX_EDIM;
    if ((!key && klen) || klen > UINT32_MAX || !vec) return -EINVAL;
    if (!vec_finite(vec, vdim)) return VINDEX_EVALUE;
    const float *src = vec;
    float norm = 1.0f;
    if (v->metric == DIST_COSINE) {
        int rc = vec_normalise(vec, v->prep, v->dim, &norm);
        if (rc) return rc;
        src = v->prep;
    }
    uint32_t hash = vindex_hash(key, klen, v->hseed), slot = 0;
    uint32_t id = map_find(v, key, klen, hash, &slot);
    if (id != VINDEX_NONE) {
        int rc = v->ops->update(v->eng, id, src);
        if (rc) return rc;
        if (v->norms) v->norms[id] = norm;
        return 0;
    }
    int rc = vindex_reserve_new(v);
    if (rc) return rc;
    vkey *k = vx_alloc(v, sizeof *k + klen);
    if (!k) return -ENOMEM;
    if ((rc = v->ops->insert(v->eng, src, &id)) != 0) {
        vx_free(v, k, sizeof *k + klen);
        return rc;
    }
    k->len = (uint32_t)klen;
    k->hash = hash;
    if (klen) memcpy(k->bytes, key, klen);
    map_find(v, key, klen, hash, &slot);   /* the table may have grown */
    v->slots[slot] = id;
    v->keys[id] = k;
    if (v->norms) v->norms[id] = norm;
    v->count++;
    return 1;
}

int vindex_del(vindex *v, const void *key, size_t klen)
{
    if ((!key && klen) || klen > UINT32_MAX) return 0;
    uint32_t slot = 0;
    uint32_t id = map_find(v, key, klen, vindex_hash(key, klen, v->hseed), &slot);
    if (id == VINDEX_NONE) return 0;
    int rc = v->ops->del(v->eng, id);
    if (rc) return rc;  /* cannot happen: the map and the engine agree */
    map_remove(v, slot);
    vx_free(v, v->keys[id], sizeof(vkey) + v->keys[id]->len);
    v->keys[id] = NULL;
    v->count--;
    return 1;
}

/* ---- reads -------------------------------------------------------------- */

static uint32_t vindex_lookup(const vindex *v, const void *key, size_t klen)
{
    if ((!key && klen) || klen > UINT32_MAX) return VINDEX_NONE;
    uint32_t slot;
    return map_find(v, key, klen, vindex_hash(key, klen, v->hseed), &slot);
}

int vindex_get(const vindex *v, const void *key, size_t klen, float *out)
{
    uint32_t id = vindex_lookup(v, key, klen);
    if (id == VINDEX_NONE) return 0;
    const float *x = v->ops->vector(v->eng, id);
    if (v->norms) {
        for (uint32_t i = 0; i < v->dim; i++) out[i] = x[i] * v->norms[id];
    } else {
        memcpy(out, x, (size_t)v->dim * sizeof *out);
    }
    return 1;
}

int vindex_exists(const vindex *v, const void *key, size_t klen, uint32_t *id)
{
    uint32_t x = vindex_lookup(v, key, klen);
    if (x == VINDEX_NONE) return 0;
    if (id) *id = x;
    return 1;
}

const void *vindex_key(const vindex *v, uint32_t id, size_t *klen)
{
    if (id >= v->idcap || !v->keys[id]) return NULL;
    *klen = v->keys[id]->len;
    return v->keys[id]->bytes;
}

int vindex_iter(const vindex *v, uint32_t *cursor, uint32_t *id, const void **key, size_t *klen)
{
    for (uint32_t i = *cursor; i < v->idcap; i++) {
        if (!v->keys[i]) continue;
        *id = i;
        *key = v->keys[i]->bytes;
        *klen = v->keys[i]->len;
        *cursor = i + 1;
        return 1;
    }
    *cursor = v->idcap;
    return 0;
}

int vindex_repair(vindex *v)
{
    return v->type == VINDEX_HNSW ? hnsw_reconnect(v->eng) : 0;
}

uint32_t vindex_count(const vindex *v) { return v->count; }
size_t vindex_memory(const vindex *v) { return sizeof *v + v->mem + v->ops->memory(v->eng); }
uint32_t vindex_dim(const vindex *v) { return v->dim; }
dist_metric vindex_metric(const vindex *v) { return v->metric; }
vindex_type vindex_type_of(const vindex *v) { return v->type; }

void vindex_stats_get(const vindex *v, vindex_stats *s)
{
    memset(s, 0, sizeof *s);
    s->type = v->type;
    s->metric = v->metric;
    s->dim = v->dim;
    s->count = v->count;
    s->capacity = v->ops->capacity(v->eng);
    s->M = v->type == VINDEX_HNSW ? v->M : 0;
    s->ef_construction = v->type == VINDEX_HNSW ? v->efc : 0;
    s->ef_search = v->type == VINDEX_HNSW ? v->efs : 0;
    s->max_level = v->ops->max_level(v->eng);
    s->memory = vindex_memory(v);
    s->engine_memory = v->ops->memory(v->eng);
    s->kernel = v->ops->kernels(v->eng)->name;
}

static int vindex_fail(char *err, size_t errlen, const char *what, uint32_t id)
{
    if (errlen) snprintf(err, errlen, "%s (id %u)", what, id);
    return VINDEX_ECORRUPT;
}

int vindex_validate(const vindex *v, char *err, size_t errlen)
{
    uint32_t nkeys = 0, nslots = 0;
    for (uint32_t id = 0; id < v->idcap; id++) {
        int live = v->ops->live(v->eng, id);
        if (live != (v->keys[id] != NULL))
            return vindex_fail(err, errlen, "key map and engine disagree on liveness", id);
        if (!live) continue;
        nkeys++;
        const vkey *k = v->keys[id];
        if (k->hash != vindex_hash(k->bytes, k->len, v->hseed) ||
            vindex_lookup(v, k->bytes, k->len) != id)
            return vindex_fail(err, errlen, "key does not map back to its id", id);
    }
    for (uint32_t i = 0; i < v->nslots; i++) nslots += v->slots[i] != VINDEX_NONE;
    if (nkeys != v->count || nslots != v->count)
        return vindex_fail(err, errlen, "count disagrees with keys or table", v->count);
    return v->ops->validate(v->eng, err, errlen);
}

/* ---- search ------------------------------------------------------------- */

vindex_search_ctx *vindex_search_ctx_new(const vindex_allocator *alloc)
{
    if (!alloc) alloc = &vindex_default_allocator;
    vindex_search_ctx *c = alloc->alloc(alloc->ud, sizeof *c);
    if (!c) return NULL;
    memset(c, 0, sizeof *c);
    c->al = *alloc;
    if (!(c->hc = hnsw_search_ctx_new(alloc))) {
        alloc->free(alloc->ud, c, sizeof *c);
        return NULL;
    }
    return c;
}

void vindex_search_ctx_free(vindex_search_ctx *c)
{
    if (!c) return;
    hnsw_search_ctx_free(c->hc);
    if (c->pairs) c->al.free(c->al.ud, c->pairs, (size_t)c->pcap * sizeof *c->pairs);
    if (c->q) c->al.free(c->al.ud, c->q, (size_t)c->qcap * sizeof *c->q);
    c->al.free(c->al.ud, c, sizeof *c);
}

static int sctx_reserve(vindex_search_ctx *c, uint32_t k, uint32_t dim)
{
    if (c->pcap < k) {
        vindex_pair *p = c->al.alloc(c->al.ud, (size_t)k * sizeof *p);
        if (!p) return -ENOMEM;
        if (c->pairs) c->al.free(c->al.ud, c->pairs, (size_t)c->pcap * sizeof *c->pairs);
        c->pairs = p;
        c->pcap = k;
    }
    if (c->qcap < dim) {
        float *q = c->al.alloc(c->al.ud, (size_t)dim * sizeof *q);
        if (!q) return -ENOMEM;
        if (c->q) c->al.free(c->al.ud, c->q, (size_t)c->qcap * sizeof *c->q);
        c->q = q;
        c->qcap = dim;
    }
    return 0;
}

void vindex_query_init(vindex_query *q, const float *vec, uint32_t dim, uint32_t k)
{
    memset(q, 0, sizeof *q);
    q->vec = vec;
    q->dim = dim;
    q->k = k;
    q->maxdist = INFINITY;
}

int vindex_search(const vindex *v, vindex_search_ctx *c, const vindex_query *q,
                  vindex_hit *hits, uint32_t *nhits)
{
    *nhits = 0;
    if (q->dim != v->dim) return VINDEX_EDIM;
    if (!q->vec) return -EINVAL;
    if (!vec_finite(q->vec, q->dim)) return VINDEX_EVALUE;
    if (q->k == 0 || v->count == 0) return 0;
    uint32_t k = q->k < v->count ? q->k : v->count;
    uint32_t ef = q->ef > VINDEX_EF_MAX ? VINDEX_EF_MAX : q->ef;
    int rc = sctx_reserve(c, k, v->metric == DIST_COSINE ? v->dim : 0);
    if (rc) return rc;
    const float *qv = q->vec;
    if (v->metric == DIST_COSINE) {
        float norm;
        if ((rc = vec_normalise(q->vec, c->q, v->dim, &norm)) != 0) return rc;
        qv = c->q;
    }
    uint32_t n = 0;
    if ((rc = v->ops->search(v->eng, c, qv, k, ef, q->accept, q->accept_ud, c->pairs, &n)) != 0)
        return rc;
    uint32_t m = 0;
    for (uint32_t i = 0; i < n; i++) {
        float d = dist_report(v->metric, c->pairs[i].dist);
        if (d > q->maxdist) break;  /* ascending: the rest are farther */
        const vkey *key = v->keys[c->pairs[i].id];
        hits[m++] = (vindex_hit){ key->bytes, key->len, d, c->pairs[i].id };
    }
    *nhits = m;
    return 0;
}
