/* vindex.c -- the front every vector index has: keys, validation, cosine
 * preparation, counters, and its engine (HNSW or FLAT), which it reaches
 * only through the engine's table of operations (vindex_engine.h; one
 * indirect call per mutation or search).
 *
 * Keys.  A key is any byte string (NULs included, case-sensitive).  Each
 * live key has one heap block {len, hash, bytes} pointed to from keys[id];
 * the hash table maps key -> id with open addressing: a slot holds the
 * key's 32-bit hash and its id in one word (hash << 32 | id; all ones =
 * empty), probing is linear, deletion shifts the following run back (no
 * tombstones, so a table under churn never silts up), and the load stays
 * <= 3/4.  With the hash in the slot a probe reads a key block only when
 * the hashes match, and growing the table is one pass over the old slots
 * that never touches a key block (at 200,000 keys, chasing each slot's key
 * block made the doubling ~12 ms on the loop thread).
 *
 * Ids come from the engine (dense, the most recently freed reused first);
 * the per-id arrays here (keys; norms for cosine; the order links of a
 * ring; payload pointers once any entry had a payload) are sized to the
 * engine's capacity (after a load, to the ids the image holds, until the
 * first add), all regrown together before anything is replaced.
 *
 * Rings.  The insertion order is a doubly linked list threaded through two
 * per-id arrays, fprev/fnext (8 bytes an id, rings only), with the oldest
 * at fhead and the newest at ftail: append, unlink and "oldest" are O(1),
 * an overwrite does not touch it, removal of any entry unlinks it.  A new
 * key in a full ring is inserted first and the oldest entry removed after
 * it, because an engine insert can fail (HNSW allocates upper-layer lists
 * and search heaps while planning) but a removal cannot: evicting first
 * would leave a failed add with an entry gone.  So a ring of C keeps C + 1
 * engine slots (vindex_reserve_new grows straight to C + 1 rather than
 * past it), the table holds C + 1 keys for a moment, and a new entry takes
 * the id freed by the previous eviction.  Eviction is the same removal as
 * vindex_del (for HNSW a real delete with repair, id reuse), so memory is
 * flat once the ring has filled.
 *
 * Payloads.  One attribute block (vattr.h) per entry that has one, pointed
 * to from pays[id] (NULL: none; a block of an empty text: an empty
 * payload).  The block keeps the text as given and, when it is a JSON
 * object, its members parsed once, which is what a FILTER reads (Redis's
 * vector sets call payloads attributes); any other text is kept as it is,
 * with no members (VATTR_KEEP_INVALID).  A
 * replacement block is allocated before the engine is touched, so a failed
 * add keeps the old one; every removal frees the block, so no payload
 * outlives its entry.  The pointer array itself appears with the first
 * payload: an index that never has one pays nothing.
 *
 * Counters.  ingested (new keys), evicted (evictions): u64, all-time.
 * next_id: the next auto id, 0 once 2^64 - 1 was used; adds of keys that
 * spell a canonical decimal number raise it past that number, so it
 * depends only on the keys added, never on how the caller chose them.
 * Invariant: ingested >= count + evicted (every live or evicted entry was
 * ingested once); evicted is 0 outside rings.
 *
 * Vectors.  Checked (dimension, finiteness) before anything changes.  For
 * cosine they are stored L2-normalised with the original norm kept per id:
 * the engine then computes 1 - dot on unit vectors, and vindex_get scales
 * back.  A zero vector stays zero (norm 0: distance 1 to everything).
 *
 * Failure atomicity.  vindex_add reserves everything it may need (table
 * slots, engine capacity, per-id arrays, the key and payload blocks)
 * before the engine insert or update, whose own failure leaves the graph
 * untouched; only then does it link the key in, and only after that does a
 * ring evict (which cannot fail).  So any error leaves the index as it
 * was: entries, order, payloads, counters and next id.
 *
 * Snapshots.  vindex_image.c writes and loads the index (its header
 * comment is the section layout).  A loaded index keeps its key blocks in
 * one allocation, the arena: a loaded key deleted later just leaves its
 * bytes there, and the arena is freed with its last key (key_drop).
 *
 * Threads.  None of its own; see vindex.h.  Const functions only read, and
 * search scratch is in the caller's vindex_search_ctx. */
#include "engram/vindex.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engram/check.h"
#include "vindex_engine.h"
#include "vindex_impl.h"

/* The engine of each type (vindex_engine.h). */
static const vindex_engine *const vindex_engines[] = {
    [VINDEX_HNSW] = &vindex_hnsw_engine,
    [VINDEX_FLAT] = &vindex_flat_engine,
};
#define VINDEX_NTYPES (sizeof vindex_engines / sizeof *vindex_engines)

struct vindex_search_ctx {
    vindex_allocator al;
    void *scratch[VINDEX_NTYPES]; /* each engine's, by type (NULL: it needs none) */
    vindex_pair *pairs;
    uint32_t pcap;
    float *q;               /* the prepared query: normalised floats, then (quantised
                             * indices) its record at qrec */
    unsigned char *qrec;
    size_t qcap;            /* bytes at q */
};

/* A planned add (vindex_prepare_add). */
struct vindex_prepared {
    const vindex *v;        /* the index planned for */
    int ok;
    _Alignas(8) unsigned char eng[]; /* the engine's plan */
};



/* ---- key map ------------------------------------------------------------ */

static int key_in_arena(const vindex *v, const vkey *k)
{
    return v->karena && (uintptr_t)k - (uintptr_t)v->karena < v->karena_bytes;
}

/* Forget id's key block: free it, or if it lives in the arena of a loaded
 * index, count it out (and free the arena with its last key). */
static void key_drop(vindex *v, uint32_t id)
{
    vkey *k = v->keys[id];
    v->keys[id] = NULL;
    if (!key_in_arena(v, k)) {
        vec_mem_free(&v->mem, k, vkey_size(k->len));
    } else if (--v->karena_live == 0) {
        vec_mem_free(&v->mem, v->karena, v->karena_bytes);
        v->karena = NULL;
        v->karena_bytes = 0;
    }
}

/* Seeded 64-bit multiply-xorshift over 8-byte words, folded to 32 bits. */
uint32_t vindex_hash(const void *p, size_t n, uint32_t seed)
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
        uint64_t e = v->slots[i];
        if (e == VX_SLOT_EMPTY) { *slot = i; return VINDEX_NONE; }
        if (vx_slot_hash(e) != hash) continue;
        uint32_t id = vx_slot_id(e);
        const vkey *k = v->keys[id];
        if (k->len == klen && (klen == 0 || memcmp(k->bytes, key, klen) == 0)) {
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
    uint64_t *slots = vec_mem_alloc(&v->mem, ns * sizeof *slots);
    if (!slots) return -ENOMEM;
    memset(slots, 0xFF, ns * sizeof *slots);
    uint32_t mask = (uint32_t)ns - 1;
    for (uint32_t i = 0; i < v->nslots; i++) {
        uint64_t e = v->slots[i];
        if (e == VX_SLOT_EMPTY) continue;
        uint32_t j = vx_slot_hash(e) & mask;
        while (slots[j] != VX_SLOT_EMPTY) j = (j + 1) & mask;
        slots[j] = e;
    }
    vec_mem_free(&v->mem, v->slots, (size_t)v->nslots * sizeof *v->slots);
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
        uint64_t e = v->slots[j];
        if (e == VX_SLOT_EMPTY) break;
        uint32_t home = vx_slot_hash(e) & mask;
        int stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (stays) continue;
        v->slots[i] = e;
        i = j;
    }
    v->slots[i] = VX_SLOT_EMPTY;
}

/* The per-id array old (idcap elements of esz bytes) copied into a new one
 * of n, the rest filled with byte `fill`; NULL on exhaustion. */
static void *ids_regrow(vindex *v, const void *old, size_t esz, uint32_t n, int fill)
{
    void *p = vec_mem_alloc(&v->mem, (size_t)n * esz);
    if (!p) return NULL;
    if (v->idcap) memcpy(p, old, (size_t)v->idcap * esz);
    memset((char *)p + (size_t)v->idcap * esz, fill, (size_t)(n - v->idcap) * esz);
    return p;
}

/* The float copy covers ids < n (grown in place where the allocator can,
 * like the engines' vectors).  0 or -ENOMEM (unchanged). */
static int fvec_reserve(vindex *v, uint32_t n)
{
    if (!v->keep_float) return 0;
    if (n <= v->fcap) return 0;
    size_t row = (size_t)v->dim * sizeof(float);
    void *p = vec_mem_resize_vecs(&v->mem, &v->fvec_raw, &v->fvec_bytes, v->fvec, n * row,
                                  v->fcap * row);
    if (!p) return -ENOMEM;
    memset((char *)p + v->fcap * row, 0, (n - v->fcap) * row);
    v->fvec = p;
    v->fcap = n;
    return 0;
}

/* Per-id arrays cover ids < n: all of them are allocated before any is
 * replaced (the float copy first: it grows in place, so its growing alone
 * changes nothing visible).  0 or -ENOMEM (unchanged). */
int vindex_ids_reserve(vindex *v, uint32_t n)
{
    if (n <= v->idcap) return 0;
    if (fvec_reserve(v, n)) return -ENOMEM;
    const int cos = v->metric == DIST_COSINE, ring = v->ring != 0, pay = v->pays != NULL;
    const size_t o = v->idcap;
    vkey **keys = ids_regrow(v, v->keys, sizeof *keys, n, 0);
    float *norms = cos ? ids_regrow(v, v->norms, sizeof *norms, n, 0) : NULL;
    uint32_t *fprev = ring ? ids_regrow(v, v->fprev, sizeof *fprev, n, 0xFF) : NULL;
    uint32_t *fnext = ring ? ids_regrow(v, v->fnext, sizeof *fnext, n, 0xFF) : NULL;
    vattr **pays = pay ? ids_regrow(v, v->pays, sizeof *pays, n, 0) : NULL;
    if (!keys || (cos && !norms) || (ring && (!fprev || !fnext)) || (pay && !pays)) {
        vec_mem_free(&v->mem, keys, (size_t)n * sizeof *keys);
        vec_mem_free(&v->mem, norms, (size_t)n * sizeof *norms);
        vec_mem_free(&v->mem, fprev, (size_t)n * sizeof *fprev);
        vec_mem_free(&v->mem, fnext, (size_t)n * sizeof *fnext);
        vec_mem_free(&v->mem, pays, (size_t)n * sizeof *pays);
        return -ENOMEM;
    }
    vec_mem_free(&v->mem, v->keys, o * sizeof *keys);
    vec_mem_free(&v->mem, v->norms, o * sizeof *norms);
    vec_mem_free(&v->mem, v->fprev, o * sizeof *fprev);
    vec_mem_free(&v->mem, v->fnext, o * sizeof *fnext);
    vec_mem_free(&v->mem, v->pays, o * sizeof *pays);
    v->keys = keys;
    v->norms = norms;
    v->fprev = fprev;
    v->fnext = fnext;
    v->pays = pays;
    v->idcap = n;
    return 0;
}

/* ---- ring order --------------------------------------------------------- */

void vindex_fifo_append(vindex *v, uint32_t id)
{
    v->fprev[id] = v->ftail;
    v->fnext[id] = VINDEX_NONE;
    if (v->ftail != VINDEX_NONE) v->fnext[v->ftail] = id;
    else v->fhead = id;
    v->ftail = id;
}

static void fifo_unlink(vindex *v, uint32_t id)
{
    uint32_t p = v->fprev[id], n = v->fnext[id];
    if (p != VINDEX_NONE) v->fnext[p] = n;
    else v->fhead = n;
    if (n != VINDEX_NONE) v->fprev[n] = p;
    else v->ftail = p;
}

/* ---- payloads ----------------------------------------------------------- */

/* The pointer array, made with the first payload.  0 or -ENOMEM. */
int vindex_pays_ensure(vindex *v)
{
    if (v->pays) return 0;
    CHECK(v->idcap > 0);    /* callers reserved the entry's id */
    vattr **p = vec_mem_alloc(&v->mem, (size_t)v->idcap * sizeof *p);
    if (!p) return -ENOMEM;
    memset(p, 0, (size_t)v->idcap * sizeof *p);
    v->pays = p;
    return 0;
}

/* A block holding len bytes of p (len <= VINDEX_PAYLOAD_MAX), or NULL. */
vattr *vindex_pay_new(vindex *v, const void *p, size_t len)
{
    vattr *b = NULL;
    return vattr_new(&v->mem, p, len, VATTR_KEEP_INVALID, &b, NULL) ? NULL : b;
}

static void pay_free(vindex *v, vattr *b)
{
    vattr_free(&v->mem, b);
}

static size_t pay_len(const vattr *b)
{
    size_t n;
    vattr_json(b, &n);
    return n;
}

/* id no longer has a payload. */
static void pay_drop(vindex *v, uint32_t id)
{
    vattr *b = v->pays ? v->pays[id] : NULL;
    if (!b) return;
    v->pays[id] = NULL;
    v->npays--;
    v->pbytes -= pay_len(b);
    pay_free(v, b);
}

/* id's payload becomes b (the old one, if any, is freed). */
void vindex_pay_set(vindex *v, uint32_t id, vattr *b)
{
    pay_drop(v, id);
    v->pays[id] = b;
    v->npays++;
    v->pbytes += pay_len(b);
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

uint32_t vindex_hseed(uint64_t seed)
{
    return (uint32_t)(seed * 0x9E3779B97F4A7C15ull >> 32);
}

/* Point v->ops at the engine of v's type, and fill *ep with what that
 * engine is made or loaded with: the index's parameters (defaults filled
 * in), its allocator, kernels (NULL: dist_active()) and initial slots. */
void vindex_engine_setup(vindex *v, const dist_kernels *kern, uint32_t initial, vindex_params *ep)
{
    v->ops = vindex_engines[v->type];
    vindex_params_init(ep, v->type, v->dim, v->metric);
    ep->M = v->M;
    ep->ef_construction = v->efc;
    ep->ef_search = v->efs;
    ep->quant = v->quant;
    ep->seed = v->seed;
    ep->initial_capacity = initial;
    ep->kernels = kern;
    ep->alloc = &v->mem.al;
}

static int vindex_make_engine(vindex *v, const vindex_params *p)
{
    vindex_params ep;
    int err = -EINVAL;
    vindex_engine_setup(v, p->kernels, p->initial_capacity, &ep);
    v->eng = v->ops->create(&ep, &err);
    return v->eng ? 0 : err;
}

/* Fields every index starts with, new or loaded. */
void vindex_init_fields(vindex *v, const vindex_allocator *al)
{
    memset(v, 0, sizeof *v);
    vec_mem_init(&v->mem, al);
    v->fhead = v->ftail = VINDEX_NONE;
    v->next_id = 1;
}

vindex *vindex_new(const vindex_params *p, int *err)
{
    const vindex_allocator *al = p->alloc ? p->alloc : &vec_default_allocator;
    int e = -EINVAL;
    vindex *v = NULL;
    vindex_params q = *p;
    if ((p->type != VINDEX_HNSW && p->type != VINDEX_FLAT) || p->dim < 1 ||
        p->dim > VINDEX_DIM_MAX || p->capacity > VINDEX_CAPACITY_MAX ||
        !vec_format_ok(p->metric, p->quant) || (p->type == VINDEX_FLAT && p->quant != QUANT_NONE))
        goto fail;
    /* A ring never needs more than capacity + 1 slots (the header). */
    if (q.capacity && q.initial_capacity > q.capacity + 1) q.initial_capacity = q.capacity + 1;
    p = &q;
    e = -ENOMEM;
    if (!(v = al->alloc(al->ud, sizeof *v))) goto fail;
    vindex_init_fields(v, al);
    v->ring = p->capacity;
    v->type = p->type;
    v->metric = p->metric;
    v->dim = p->dim;
    v->quant = p->quant;
    v->keep_float = p->keep_float && p->quant != QUANT_NONE;
    v->recbytes = quant_record_bytes(p->quant, p->dim);
    v->M = p->M ? p->M : VINDEX_M_DEFAULT;
    v->efc = p->ef_construction ? p->ef_construction : VINDEX_EFC_DEFAULT;
    v->efs = p->ef_search ? p->ef_search : VINDEX_EFS_DEFAULT;
    v->seed = p->seed;
    v->hseed = vindex_hseed(p->seed);
    if ((e = vindex_make_engine(v, p)) != 0) goto fail;
    e = -ENOMEM;
    if (!(v->prep = vec_mem_alloc(&v->mem, (size_t)v->dim * sizeof *v->prep)) ||
        !(v->rec = vec_mem_alloc(&v->mem, v->recbytes)) ||
        vindex_ids_reserve(v, v->ops->capacity(v->eng)))
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
    for (uint32_t id = 0; id < v->idcap; id++) {
        if (v->keys[id] && !key_in_arena(v, v->keys[id]))
            vec_mem_free(&v->mem, v->keys[id], vkey_size(v->keys[id]->len));
        if (v->pays) pay_free(v, v->pays[id]);
    }
    vec_mem_free(&v->mem, v->karena, v->karena_bytes);
    vec_mem_free(&v->mem, v->keys, (size_t)v->idcap * sizeof *v->keys);
    vec_mem_free(&v->mem, v->norms, (size_t)v->idcap * sizeof *v->norms);
    vec_mem_free(&v->mem, v->fprev, (size_t)v->idcap * sizeof *v->fprev);
    vec_mem_free(&v->mem, v->fnext, (size_t)v->idcap * sizeof *v->fnext);
    vec_mem_free(&v->mem, v->pays, (size_t)v->idcap * sizeof *v->pays);
    vec_mem_free(&v->mem, v->slots, (size_t)v->nslots * sizeof *v->slots);
    vec_mem_free(&v->mem, v->prep, (size_t)v->dim * sizeof *v->prep);
    vec_mem_free(&v->mem, v->rec, v->recbytes);
    vec_mem_free(&v->mem, v->fvec_raw, v->fvec_bytes);
    if (v->eng) v->ops->destroy(v->eng);
    v->mem.al.free(v->mem.al.ud, v, sizeof *v);
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

/* Make every reservation a new key needs; nothing visible changes.  A ring
 * holds capacity + 1 entries for a moment (insert, then evict) and never
 * more, so when the engine's next growth step (vec_grow_capacity, 1.5x)
 * would pass that, it grows to exactly capacity + 1 now instead. */
static int vindex_reserve_new(vindex *v)
{
    if (v->count >= VINDEX_SLOTS_MAX / 4 * 3) return VINDEX_EFULL;
    uint32_t need = v->count + 1, want = need, cap = v->ops->capacity(v->eng);
    if (v->ring && need > cap) {
        uint32_t full = v->ring + 1, g = vec_grow_capacity(cap, need, UINT32_MAX);
        if (g < full && vec_grow_capacity(g, g + 1, UINT32_MAX) > full) want = full;
    }
    int rc = map_reserve(v, need);
    if (!rc) rc = v->ops->reserve(v->eng, want);
    if (!rc) rc = vindex_ids_reserve(v, v->ops->capacity(v->eng));
    return rc;
}

/* Take live id (found at table slot `slot`) out of everything: engine,
 * table, ring order, payload, key.  Allocates nothing; the engine's delete
 * fails only if the map and the engine disagree (then nothing changed). */
static int vindex_remove(vindex *v, uint32_t id, uint32_t slot)
{
    int rc = v->ops->del(v->eng, id);
    if (rc) return rc;
    map_remove(v, slot);
    if (v->ring) fifo_unlink(v, id);
    pay_drop(v, id);
    key_drop(v, id);
    v->count--;
    return 0;
}

/* The ring is over its bound (the entry just added is the newest): remove
 * the oldest, reporting it in r and a's buffer. */
static void vindex_evict(vindex *v, const vindex_add_args *a, vindex_add_result *r)
{
    uint32_t id = v->fhead, slot = 0;
    const vkey *k = v->keys[id];
    uint32_t found = map_find(v, k->bytes, k->len, k->hash, &slot);
    CHECK(found == id);
    r->evicted = 1;
    r->evicted_id = id;
    r->evicted_klen = k->len;
    if (a->evicted_key && a->evicted_cap && k->len)
        memcpy(a->evicted_key, k->bytes, k->len < a->evicted_cap ? k->len : a->evicted_cap);
    int rc = vindex_remove(v, id, slot);     /* k is gone after this */
    CHECK(rc == 0);
    v->evicted++;
}

static int vindex_overwrite(vindex *v, const vindex_add_args *a, uint32_t id, const void *src,
                            float norm, vindex_add_result *r)
{
    vattr *p = NULL;
    if (a->has_payload) {
        int rc = vindex_pays_ensure(v);
        if (rc) return rc;
        if (!(p = vindex_pay_new(v, a->payload, a->plen))) return -ENOMEM;
    }
    int rc = v->ops->update(v->eng, id, src, a->ef);
    if (rc) {
        pay_free(v, p);
        return rc;
    }
    if (v->norms) v->norms[id] = norm;
    if (v->fvec) memcpy(v->fvec + (size_t)id * v->dim, v->prep, (size_t)v->dim * sizeof(float));
    if (p) vindex_pay_set(v, id, p);
    else if (a->drop_payload) pay_drop(v, id);
    *r = (vindex_add_result){ .created = 0, .id = id, .evicted_id = VINDEX_NO_ID };
    return 0;
}

static int vindex_insert(vindex *v, const vindex_add_args *a, const void *src, float norm,
                         uint32_t hash, vindex_add_result *r)
{
    int rc = vindex_reserve_new(v);
    if (!rc && a->has_payload) rc = vindex_pays_ensure(v);
    if (rc) return rc;
    vkey *k = vec_mem_alloc(&v->mem, vkey_size((uint32_t)a->klen));
    vattr *p = NULL;
    uint32_t id = 0, slot = 0;
    int planned = 0;
    if (!k || (a->has_payload && !(p = vindex_pay_new(v, a->payload, a->plen)))) {
        rc = -ENOMEM;
    } else {
        rc = -EAGAIN;
        if (a->outcome && v->ops->insert_outcome)
            rc = v->ops->insert_outcome(v->eng, src, a->outcome, a->outcome_len, &id);
        int replayed = rc != -EAGAIN;
        if (rc == -EAGAIN && a->prepared && a->prepared->v == v && a->prepared->ok &&
            v->ops->insert_prepared)
            rc = v->ops->insert_prepared(v->eng, src, a->prepared->eng, &id);
        planned = !replayed && rc != -EAGAIN;
        if (replayed && !rc) v->outcomes_used++;
        if (rc == -EAGAIN) rc = v->ops->insert(v->eng, src, a->ef, &id);
    }
    if (rc) {
        if (k) vec_mem_free(&v->mem, k, vkey_size((uint32_t)a->klen));
        pay_free(v, p);
        return rc;
    }
    /* Committed: nothing below can fail. */
    k->len = (uint32_t)a->klen;
    k->hash = hash;
    if (a->klen) memcpy(k->bytes, a->key, a->klen);
    map_find(v, a->key, a->klen, hash, &slot);   /* the table may have grown */
    v->slots[slot] = vx_slot(hash, id);
    v->keys[id] = k;
    if (v->norms) v->norms[id] = norm;
    if (v->fvec) memcpy(v->fvec + (size_t)id * v->dim, v->prep, (size_t)v->dim * sizeof(float));
    if (p) vindex_pay_set(v, id, p);
    if (v->ring) vindex_fifo_append(v, id);
    v->count++;
    v->ingested++;
    v->outcome_id1 = id + 1;
    *r = (vindex_add_result){ .created = 1, .id = id, .evicted_id = VINDEX_NO_ID,
                              .planned = planned };
    if (v->ring && v->count > v->ring) vindex_evict(v, a, r);
    return 0;
}

/* The number a canonical decimal key spells: "0", or 1-20 digits with no
 * leading zero and a value below 2^64.  1 and *x if it is one. */
int vindex_key_decimal(const void *key, size_t klen, uint64_t *x)
{
    const unsigned char *s = key;
    if (klen == 0 || klen > 20 || (s[0] == '0' && klen > 1)) return 0;
    uint64_t n = 0;
    for (size_t i = 0; i < klen; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        unsigned d = (unsigned)(s[i] - '0');
        if (n > (UINT64_MAX - d) / 10) return 0;
        n = n * 10 + d;
    }
    *x = n;
    return 1;
}

void vindex_add_args_init(vindex_add_args *a, const void *key, size_t klen, const float *vec,
                          uint32_t dim)
{
    memset(a, 0, sizeof *a);
    a->key = key;
    a->klen = klen;
    a->vec = vec;
    a->dim = dim;
}

int vindex_add_ex(vindex *v, const vindex_add_args *a, vindex_add_result *r)
{
    if (a->dim != v->dim) return VINDEX_EDIM;
    if ((!a->key && a->klen) || a->klen > UINT32_MAX || !a->vec) return -EINVAL;
    if (a->has_payload && ((!a->payload && a->plen) || a->plen > VINDEX_PAYLOAD_MAX))
        return -EINVAL;
    if (!vec_finite(a->vec, a->dim)) return VINDEX_EVALUE;
    const void *src = a->vec;
    float norm = 1.0f;
    if (v->metric == DIST_COSINE) {
        int rc = vec_normalise(a->vec, v->prep, v->dim, &norm);
        if (rc) return rc;
        src = v->prep;
    }
    if (v->quant != QUANT_NONE) {
        int rc = quant_encode(v->quant, src, v->dim, v->rec);
        if (rc) return rc;
        src = v->rec;
    }
    uint32_t hash = vindex_hash(a->key, a->klen, v->hseed), slot = 0;
    uint32_t id = map_find(v, a->key, a->klen, hash, &slot);
    vindex_add_result res;
    v->outcome_id1 = 0;
    int rc = id == VINDEX_NONE ? vindex_insert(v, a, src, norm, hash, &res)
                               : vindex_overwrite(v, a, id, src, norm, &res);
    if (rc) return rc;
    uint64_t num;
    if (vindex_key_decimal(a->key, a->klen, &num)) vindex_note_id(v, num);
    if (r) *r = res;
    return res.created;
}

int vindex_add(vindex *v, const void *key, size_t klen, const float *vec, uint32_t vdim)
{
    vindex_add_args a;
    vindex_add_args_init(&a, key, klen, vec, vdim);
    return vindex_add_ex(v, &a, NULL);
}

int vindex_del(vindex *v, const void *key, size_t klen)
{
    v->outcome_id1 = 0;
    if ((!key && klen) || klen > UINT32_MAX) return 0;
    uint32_t slot = 0;
    uint32_t id = map_find(v, key, klen, vindex_hash(key, klen, v->hseed), &slot);
    if (id == VINDEX_NONE) return 0;
    int rc = vindex_remove(v, id, slot);
    return rc ? rc : 1;    /* rc cannot happen: the map and the engine agree */
}

int vindex_set_payload(vindex *v, const void *key, size_t klen, const void *payload,
                       size_t plen, int drop)
{
    if ((!key && klen) || klen > UINT32_MAX) return 0;
    if (!drop && ((!payload && plen) || plen > VINDEX_PAYLOAD_MAX)) return -EINVAL;
    uint32_t slot;
    uint32_t id = map_find(v, key, klen, vindex_hash(key, klen, v->hseed), &slot);
    if (id == VINDEX_NONE) return 0;
    if (drop) {
        pay_drop(v, id);
        return 1;
    }
    int rc = vindex_pays_ensure(v);
    if (rc) return rc;
    vattr *b = vindex_pay_new(v, payload, plen);
    if (!b) return -ENOMEM;
    vindex_pay_set(v, id, b);
    return 1;
}

void vindex_note_id(vindex *v, uint64_t used)
{
    if (v->next_id == 0) return;            /* exhausted: stays so */
    if (used == UINT64_MAX) v->next_id = 0;
    else if (used >= v->next_id) v->next_id = used + 1;
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
    quant_decode(v->quant, v->ops->vector(v->eng, id), v->dim, out);
    /* BIN keeps only signs: its +-1 are not scaled back (as Redis's VEMB) */
    if (v->norms && v->quant != QUANT_BIN)
        for (uint32_t i = 0; i < v->dim; i++) out[i] *= v->norms[id];
    return 1;
}

const void *vindex_record(const vindex *v, uint32_t id, size_t *len, float *norm)
{
    if (id >= v->idcap || !v->keys[id]) return NULL;
    if (len) *len = v->recbytes;
    if (norm) *norm = v->norms ? v->norms[id] : 1.0f;
    return v->ops->vector(v->eng, id);
}

int vindex_links(const vindex *v, uint32_t id, int layer, uint32_t *out, uint32_t cap)
{
    if (id >= v->idcap || !v->keys[id] || !v->ops->links) return -EINVAL;
    return v->ops->links(v->eng, id, layer, out, cap);
}

int vindex_level(const vindex *v, uint32_t id)
{
    if (id >= v->idcap || !v->keys[id]) return -1;
    return v->ops->level ? v->ops->level(v->eng, id) : 0;
}

float vindex_id_dist(const vindex *v, uint32_t a, uint32_t b)
{
    const void *x = v->ops->vector(v->eng, a), *y = v->ops->vector(v->eng, b);
    vec_format f;
    vec_format_init(&f, v->metric, v->quant, v->dim, v->ops->kernels(v->eng));
    return dist_report(v->metric, f.off + f.sgn * f.pair(x, y, v->dim));
}

uint32_t vindex_random_id(const vindex *v, uint64_t r)
{
    if (v->count == 0) return VINDEX_NO_ID;
    /* A random slot, then the next live id after it (wrapping): ids are
     * dense (the engines reuse freed ones first), so the walk is short. */
    uint32_t start = (uint32_t)(r % v->idcap);
    for (uint32_t i = 0; i < v->idcap; i++) {
        uint32_t id = start + i < v->idcap ? start + i : start + i - v->idcap;
        if (v->keys[id]) return id;
    }
    return VINDEX_NO_ID;
}

size_t vindex_insert_outcome(const vindex *v, const void *key, size_t klen, void *buf,
                             size_t cap)
{
    if (!v->outcome_id1 || !v->ops->outcome) return 0;
    if (vindex_lookup(v, key, klen) != v->outcome_id1 - 1) return 0;
    return v->ops->outcome(v->eng, buf, cap);
}

uint64_t vindex_outcomes_used(const vindex *v) { return v->outcomes_used; }

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
    return v->ops->repair ? v->ops->repair(v->eng) : 0;     /* none: nothing is ever cut off */
}

const void *vindex_payload(const vindex *v, uint32_t id, size_t *len)
{
    *len = 0;
    if (!v->pays || id >= v->idcap || !v->pays[id]) return NULL;   /* only live ids have one */
    return vattr_json(v->pays[id], len);
}

const vattr *vindex_attr(const vindex *v, uint32_t id)
{
    if (!v->pays || id >= v->idcap) return NULL;
    return v->pays[id];
}

uint32_t vindex_fifo_first(const vindex *v)
{
    return v->ring ? v->fhead : VINDEX_NO_ID;
}

uint32_t vindex_fifo_next(const vindex *v, uint32_t id)
{
    if (!v->ring || id >= v->idcap || !v->keys[id]) return VINDEX_NO_ID;
    return v->fnext[id];
}

uint64_t vindex_next_id(const vindex *v) { return v->next_id; }
uint32_t vindex_capacity(const vindex *v) { return v->ring; }
uint32_t vindex_count(const vindex *v) { return v->count; }
size_t vindex_memory(const vindex *v) { return sizeof *v + v->mem.bytes + v->ops->memory(v->eng); }
uint32_t vindex_dim(const vindex *v) { return v->dim; }
dist_metric vindex_metric(const vindex *v) { return v->metric; }
vindex_type vindex_type_of(const vindex *v) { return v->type; }

void vindex_stats_get(const vindex *v, vindex_stats *s)
{
    memset(s, 0, sizeof *s);
    s->type = v->type;
    s->metric = v->metric;
    s->quant = v->quant;
    s->keep_float = v->keep_float;
    s->dim = v->dim;
    s->count = v->count;
    s->capacity = v->ops->capacity(v->eng);
    s->M = v->type == VINDEX_HNSW ? v->M : 0;
    s->ef_construction = v->type == VINDEX_HNSW ? v->efc : 0;
    s->ef_search = v->type == VINDEX_HNSW ? v->efs : 0;
    s->max_level = v->ops->max_level ? v->ops->max_level(v->eng) : -1;
    s->memory = vindex_memory(v);
    s->engine_memory = v->ops->memory(v->eng);
    s->kernel = v->ops->kernels(v->eng)->name;
    s->ring_capacity = v->ring;
    s->payloads = v->npays;
    s->payload_bytes = v->pbytes;
    s->ingested = v->ingested;
    s->evicted = v->evicted;
    s->next_id = v->next_id;
}

static int vindex_fail(char *err, size_t errlen, const char *what, uint32_t id)
{
    if (errlen) snprintf(err, errlen, "%s (id %u)", what, id);
    return VINDEX_ECORRUPT;
}

/* Ring order, payloads, counters.  A walk of the order that ends (next =
 * none) after count live ids, each pointing back at the one before, has
 * named each live id exactly once: a repeat would have made it a cycle. */
static int vindex_validate_stream(const vindex *v, char *err, size_t errlen)
{
    if (v->ring) {
        if (v->count > v->ring)
            return vindex_fail(err, errlen, "ring holds more than its capacity", v->count);
        uint32_t n = 0, prev = VINDEX_NONE;
        for (uint32_t id = v->fhead; id != VINDEX_NONE; prev = id, id = v->fnext[id]) {
            if (id >= v->idcap || !v->keys[id] || v->fprev[id] != prev || n == v->count)
                return vindex_fail(err, errlen, "ring order broken", id);
            n++;
        }
        if (n != v->count || v->ftail != prev)
            return vindex_fail(err, errlen, "ring order misses entries", n);
    } else if (v->evicted || v->fhead != VINDEX_NONE || v->fprev) {
        return vindex_fail(err, errlen, "unbounded index with ring state", 0);
    }
    uint32_t np = 0;
    size_t nb = 0;
    for (uint32_t id = 0; v->pays && id < v->idcap; id++) {
        if (!v->pays[id]) continue;
        if (!v->keys[id] || pay_len(v->pays[id]) > VINDEX_PAYLOAD_MAX)
            return vindex_fail(err, errlen, "payload on a free id or too long", id);
        np++;
        nb += pay_len(v->pays[id]);
    }
    if (np != v->npays || nb != v->pbytes)
        return vindex_fail(err, errlen, "payload count or bytes disagree", np);
    if (v->ingested < v->count || v->ingested - v->count < v->evicted)
        return vindex_fail(err, errlen, "ingested below count + evicted", v->count);
    return 0;
}

int vindex_validate(const vindex *v, char *err, size_t errlen)
{
    uint32_t nkeys = 0, nslots = 0;
    for (uint32_t id = 0; id < v->idcap; id++) {
        int live = v->ops->vector(v->eng, id) != NULL;
        if (live != (v->keys[id] != NULL))
            return vindex_fail(err, errlen, "key map and engine disagree on liveness", id);
        if (!live) continue;
        nkeys++;
        const vkey *k = v->keys[id];
        if (k->hash != vindex_hash(k->bytes, k->len, v->hseed) ||
            vindex_lookup(v, k->bytes, k->len) != id)
            return vindex_fail(err, errlen, "key does not map back to its id", id);
    }
    for (uint32_t i = 0; i < v->nslots; i++) {
        uint64_t e = v->slots[i];
        if (e == VX_SLOT_EMPTY) continue;
        nslots++;
        uint32_t id = vx_slot_id(e);
        if (id >= v->idcap || !v->keys[id] || v->keys[id]->hash != vx_slot_hash(e))
            return vindex_fail(err, errlen, "a table slot's hash is not its key's", id);
    }
    if (nkeys != v->count || nslots != v->count)
        return vindex_fail(err, errlen, "count disagrees with keys or table", v->count);
    int rc = vindex_validate_stream(v, err, errlen);
    return rc ? rc : v->ops->validate(v->eng, err, errlen);
}

/* ---- search ------------------------------------------------------------- */

vindex_search_ctx *vindex_search_ctx_new(const vindex_allocator *alloc)
{
    if (!alloc) alloc = &vec_default_allocator;
    vindex_search_ctx *c = alloc->alloc(alloc->ud, sizeof *c);
    if (!c) return NULL;
    memset(c, 0, sizeof *c);
    c->al = *alloc;
    for (size_t t = 0; t < VINDEX_NTYPES; t++) {
        const vindex_engine *e = vindex_engines[t];
        if (e->scratch_new && !(c->scratch[t] = e->scratch_new(alloc))) {
            vindex_search_ctx_free(c);
            return NULL;
        }
    }
    return c;
}

void vindex_search_ctx_free(vindex_search_ctx *c)
{
    if (!c) return;
    for (size_t t = 0; t < VINDEX_NTYPES; t++)
        if (c->scratch[t]) vindex_engines[t]->scratch_free(c->scratch[t]);
    if (c->pairs) c->al.free(c->al.ud, c->pairs, (size_t)c->pcap * sizeof *c->pairs);
    if (c->q) c->al.free(c->al.ud, c->q, c->qcap);
    c->al.free(c->al.ud, c, sizeof *c);
}

/* Room for k pairs and a prepared query of v (its floats and its record). */
static int sctx_reserve(vindex_search_ctx *c, const vindex *v, uint32_t k)
{
    size_t fb = ((size_t)v->dim * sizeof(float) + 7) & ~(size_t)7;
    size_t qb = fb + (v->quant != QUANT_NONE ? v->recbytes : 0);
    if (c->pcap < k) {
        vindex_pair *p = c->al.alloc(c->al.ud, (size_t)k * sizeof *p);
        if (!p) return -ENOMEM;
        if (c->pairs) c->al.free(c->al.ud, c->pairs, (size_t)c->pcap * sizeof *c->pairs);
        c->pairs = p;
        c->pcap = k;
    }
    if (c->qcap < qb) {
        float *q = c->al.alloc(c->al.ud, qb);
        if (!q) return -ENOMEM;
        if (c->q) c->al.free(c->al.ud, c->q, c->qcap);
        c->q = q;
        c->qcap = qb;
    }
    c->qrec = (unsigned char *)c->q + fb;
    return 0;
}

/* The query as the engine compares it: vec itself, or normalised (cosine)
 * into c->q, then encoded (quantised) into c->qrec.  0 or VINDEX_EVALUE. */
static int vindex_prepare_query(const vindex *v, vindex_search_ctx *c, const float *vec,
                                const void **out)
{
    const float *qv = vec;
    if (v->metric == DIST_COSINE) {
        float norm;
        int rc = vec_normalise(vec, c->q, v->dim, &norm);
        if (rc) return rc;
        qv = c->q;
    }
    if (v->quant == QUANT_NONE) {
        *out = qv;
        return 0;
    }
    *out = c->qrec;
    return quant_encode(v->quant, qv, v->dim, c->qrec);
}

void vindex_query_init(vindex_query *q, const float *vec, uint32_t dim, uint32_t k)
{
    memset(q, 0, sizeof *q);
    q->vec = vec;
    q->dim = dim;
    q->k = k;
    q->maxdist = INFINITY;
}

static int pair_cmp(const void *a, const void *b);

/* ---- adds planned off the loop ------------------------------------------------ */

static size_t prepared_size(void)
{
    size_t n = 0;
    for (size_t t = 0; t < VINDEX_NTYPES; t++)
        if (vindex_engines[t]->prepared_size > n) n = vindex_engines[t]->prepared_size;
    return sizeof(vindex_prepared) + n;
}

vindex_prepared *vindex_prepared_new(void)
{
    vindex_prepared *p = malloc(prepared_size());
    if (p) {
        p->v = NULL;
        p->ok = 0;
    }
    return p;
}

void vindex_prepared_free(vindex_prepared *p) { free(p); }

int vindex_prepare_add(const vindex *v, vindex_search_ctx *c, const float *vec, uint32_t dim,
                       uint32_t ef, vindex_prepared *out)
{
    out->v = v;
    out->ok = 0;
    if (!v->ops->prepare) return -ENOTSUP;
    if (dim != v->dim) return VINDEX_EDIM;
    if (!vec) return -EINVAL;
    if (!vec_finite(vec, dim)) return VINDEX_EVALUE;
    int rc = sctx_reserve(c, v, 1);
    if (rc) return rc;
    const void *qv;
    if ((rc = vindex_prepare_query(v, c, vec, &qv)) != 0) return rc;
    if ((rc = v->ops->prepare(v->eng, c->scratch[v->type], qv, ef, out->eng)) != 0) return rc;
    out->ok = 1;
    return 0;
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
    /* Re-ranking: the beam's best by the quantised distance, then the
     * float32 distance decides among them. */
    int rerank = q->rerank && v->fvec;
    uint32_t kk = k;
    if (rerank) {
        uint32_t beam = ef ? ef : v->efs;
        kk = beam > k ? beam : k;
        if (kk > v->count) kk = v->count;
    }
    int rc = sctx_reserve(c, v, kk);
    if (rc) return rc;
    const void *qv;
    if ((rc = vindex_prepare_query(v, c, q->vec, &qv)) != 0) return rc;
    uint32_t n = 0;
    if ((rc = v->ops->search(v->eng, c->scratch[v->type], qv, kk, ef, q->accept, q->accept_ud,
                             q->effort, c->pairs, &n)) != 0)
        return rc;
    if (rerank) {
        dist_pair_fn *dot = v->ops->kernels(v->eng)->dot;
        for (uint32_t i = 0; i < n; i++)
            c->pairs[i].dist = 1.0f - dot(c->q, v->fvec + (size_t)c->pairs[i].id * v->dim, v->dim);
        qsort(c->pairs, n, sizeof *c->pairs, pair_cmp);
        if (n > k) n = k;
    }
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

/* Exact search: every live id scored against the prepared query, the k
 * best kept in a max-heap on (distance, id) in c->pairs. */
static void exact_push(vindex_pair *h, uint32_t *n, uint32_t k, vindex_pair x)
{
    if (*n == k) {
        if (!vec_pair_lt(x, h[0])) return;
        /* replace the root, sift down */
        uint32_t i = 0;
        for (;;) {
            uint32_t l = 2 * i + 1, r = l + 1, m = i;
            vindex_pair mv = x;
            if (l < *n && vec_pair_lt(mv, h[l])) { m = l; mv = h[l]; }
            if (r < *n && vec_pair_lt(mv, h[r])) { m = r; mv = h[r]; }
            if (m == i) break;
            h[i] = h[m];
            i = m;
        }
        h[i] = x;
        return;
    }
    uint32_t i = (*n)++;
    while (i > 0 && vec_pair_lt(h[(i - 1) / 2], x)) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = x;
}

static int pair_cmp(const void *a, const void *b)
{
    vindex_pair x = *(const vindex_pair *)a, y = *(const vindex_pair *)b;
    return vec_pair_lt(x, y) ? -1 : vec_pair_lt(y, x);
}

int vindex_search_exact(const vindex *v, vindex_search_ctx *c, const vindex_query *q,
                        vindex_hit *hits, uint32_t *nhits)
{
    *nhits = 0;
    if (q->dim != v->dim) return VINDEX_EDIM;
    if (!q->vec) return -EINVAL;
    if (!vec_finite(q->vec, q->dim)) return VINDEX_EVALUE;
    if (q->k == 0 || v->count == 0) return 0;
    uint32_t k = q->k < v->count ? q->k : v->count;
    int rc = sctx_reserve(c, v, k);
    if (rc) return rc;
    const void *qv;
    if ((rc = vindex_prepare_query(v, c, q->vec, &qv)) != 0) return rc;
    vec_format f;
    vec_format_init(&f, v->metric, v->quant, v->dim, v->ops->kernels(v->eng));
    const int floats = q->rerank && v->fvec;     /* the float copy decides */
    dist_pair_fn *dot = v->ops->kernels(v->eng)->dot;
    uint32_t n = 0;
    for (uint32_t id = 0; id < v->idcap; id++) {
        if (!v->keys[id]) continue;
        if (q->accept && !q->accept(q->accept_ud, id)) continue;
        float d = floats ? 1.0f - dot(c->q, v->fvec + (size_t)id * v->dim, v->dim)
                         : f.off + f.sgn * f.pair(qv, v->ops->vector(v->eng, id), v->dim);
        exact_push(c->pairs, &n, k, (vindex_pair){ d, id });
    }
    qsort(c->pairs, n, sizeof *c->pairs, pair_cmp);
    uint32_t m = 0;
    for (uint32_t i = 0; i < n; i++) {
        float d = dist_report(v->metric, c->pairs[i].dist);
        if (d > q->maxdist) break;
        const vkey *key = v->keys[c->pairs[i].id];
        hits[m++] = (vindex_hit){ key->bytes, key->len, d, c->pairs[i].id };
    }
    *nhits = m;
    return 0;
}

/* ---- exact search in parts (engines that can split: FLAT) ----------------- */

uint32_t vindex_split_slots(const vindex *v)
{
    return v->ops->slots ? v->ops->slots(v->eng) : 0;
}

int vindex_search_part(const vindex *v, vindex_search_ctx *c, const vindex_query *q,
                       uint32_t part, uint32_t nparts, vindex_pair *out, uint32_t *nout)
{
    *nout = 0;
    if (!v->ops->search_range || nparts == 0 || part >= nparts) return -EINVAL;
    if (q->dim != v->dim) return VINDEX_EDIM;
    if (!q->vec) return -EINVAL;
    if (!vec_finite(q->vec, q->dim)) return VINDEX_EVALUE;
    if (q->k == 0 || v->count == 0) return 0;
    int rc = sctx_reserve(c, v, 1);
    if (rc) return rc;
    const void *qv;
    if ((rc = vindex_prepare_query(v, c, q->vec, &qv)) != 0) return rc;
    uint64_t used = v->ops->slots(v->eng);
    uint32_t lo = (uint32_t)(used * part / nparts), hi = (uint32_t)(used * (part + 1) / nparts);
    return v->ops->search_range(v->eng, qv, q->k, lo, hi, q->accept, q->accept_ud, out, nout);
}

int vindex_search_join(const vindex *v, const vindex_query *q, const vindex_pair *const *parts,
                       const uint32_t *nparts, int count, vindex_pair *scratch,
                       vindex_hit *hits, uint32_t *nhits)
{
    *nhits = 0;
    if (!v->ops->merge) return -EINVAL;
    uint32_t n = 0;
    int rc = v->ops->merge(parts, nparts, count, q->k, scratch, &n);
    if (rc) return rc;
    uint32_t m = 0;
    for (uint32_t i = 0; i < n; i++) {
        float d = dist_report(v->metric, scratch[i].dist);
        if (d > q->maxdist) break;  /* ascending: the rest are farther */
        const vkey *key = v->keys[scratch[i].id];
        if (!key) return -EINVAL;   /* the index changed between the parts */
        hits[m++] = (vindex_hit){ key->bytes, key->len, d, scratch[i].id };
    }
    *nhits = m;
    return 0;
}
