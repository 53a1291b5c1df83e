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
 * Payloads.  One heap block {len, bytes} per entry that has one, pointed to
 * from pays[id] (NULL: none; a block of length 0: an empty payload).  A
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
 * Snapshots.  vindex_save writes the sections below, then the engine's
 * (hnsw.c, flat.c: their headers give their layouts).  vindex_load checks
 * them, loads the engine (which borrows its big arrays in place), then
 * rebuilds the key map: all key blocks in one allocation (the arena; a
 * malloc per key would dominate loading a million keys), and the hash
 * table at its saved size.  A loaded key deleted later just leaves its
 * bytes in the arena, which is freed with its last key.  The engine gets
 * the snapshot's release callback through vindex_relay, which stays mute
 * until the load has succeeded: a failed load releases nothing.
 *
 * Integers little-endian.
 *
 *   0x0100 VINDEX_IMG_META, packed, 56 bytes
 *     offset  size  field
 *          0     4  version, 1
 *          4     4  type (0 HNSW, 1 FLAT)
 *          8     4  dim
 *         12     4  metric (0 l2, 1 cosine, 2 dot)
 *         16     4  M            (as given, even for FLAT)
 *         20     4  ef_construction
 *         24     4  ef_search
 *         28     4  hseed: the key hash seed, derived from seed (checked)
 *         32     8  seed given at creation (the engine's RNG state is its own)
 *         40     4  count: live keys
 *         44     4  nslots: key table size, 0 or a power of two >= 16
 *         48     4  id_end: 1 + the highest live id (0 when empty)
 *         52     4  flags: bit 0 = a STREAM section follows the keys (and
 *                   norms); other bits 0.  (Was "reserved, 0": images
 *                   from before rings load as unbounded, with ingested =
 *                   count, evicted 0, next id past their numeric keys.)
 *
 *   0x0101 VINDEX_IMG_KEYS, packed: one record per live key, ascending id:
 *          varint  id - (previous id + 1)   (the first: its id)
 *          varint  key length
 *          bytes   the key
 *     varint: unsigned LEB128, 7 bits a byte, low first, at most 5 bytes.
 *
 *   0x0102 VINDEX_IMG_NORMS, page-aligned, cosine only: id_end float32, the
 *     original norm of each id (0 for free ids).  Copied (4 bytes a vector).
 *
 *   0x0103 VINDEX_IMG_STREAM, packed, 40 + 4 * norder bytes; written when
 *     the index is a ring or any counter differs from a new index's
 *     (meta flag bit 0 says so):
 *     offset  size  field
 *          0     4  version, 1
 *          4     4  capacity: ring bound, 0 = unbounded, <= 2^30
 *          8     4  norder: count for a ring, else 0
 *         12     4  npayloads: live entries with a payload (<= count); the
 *                   PAYLOADS section follows iff it is not 0
 *         16     8  ingested (>= count + evicted)
 *         24     8  evicted (0 unless a ring)
 *         32     8  next_id: the next auto id, 0 = exhausted
 *         40  4*n   the ring's live ids, oldest first, each exactly once
 *
 *   0x0104 VINDEX_IMG_PAYLOADS, packed: one record per live id that has a
 *     payload, ascending id, exactly npayloads of them filling the section:
 *          varint  id - (previous id + 1)   (the first: its id)
 *          varint  payload length (<= VINDEX_PAYLOAD_MAX; 0 = empty payload)
 *          bytes   the payload
 *     Copied on load, a block per payload.
 *
 * The engine's sections follow the last of these (hnsw.c, flat.c).
 *
 * Threads.  None of its own; see vindex.h.  Const functions only read, and
 * search scratch is in the caller's vindex_search_ctx. */
#include "engram/vindex.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engram/img_out.h"
#include "engram/le.h"

#include "vindex_engine.h"
#include "vindex_impl.h"

#define VINDEX_ASSERT(c) \
    do { if (__builtin_expect(!(c), 0)) vindex_assert_fail(#c, __LINE__); } while (0)

static void vindex_assert_fail(const char *what, int line)
{
    fprintf(stderr, "vindex.c:%d: invariant failed: %s\n", line, what);
    abort();
}

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
    float *q;               /* the prepared (normalised) query */
    uint32_t qcap;
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

/* Per-id arrays cover ids < n: all of them are allocated before any is
 * replaced.  0 or -ENOMEM (unchanged). */
int vindex_ids_reserve(vindex *v, uint32_t n)
{
    if (n <= v->idcap) return 0;
    const int cos = v->metric == DIST_COSINE, ring = v->ring != 0, pay = v->pays != NULL;
    const size_t o = v->idcap;
    vkey **keys = ids_regrow(v, v->keys, sizeof *keys, n, 0);
    float *norms = cos ? ids_regrow(v, v->norms, sizeof *norms, n, 0) : NULL;
    uint32_t *fprev = ring ? ids_regrow(v, v->fprev, sizeof *fprev, n, 0xFF) : NULL;
    uint32_t *fnext = ring ? ids_regrow(v, v->fnext, sizeof *fnext, n, 0xFF) : NULL;
    vpay **pays = pay ? ids_regrow(v, v->pays, sizeof *pays, n, 0) : NULL;
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

static size_t vpay_size(uint32_t len) { return sizeof(vpay) + len; }

/* The pointer array, made with the first payload.  0 or -ENOMEM. */
int vindex_pays_ensure(vindex *v)
{
    if (v->pays) return 0;
    VINDEX_ASSERT(v->idcap > 0);    /* callers reserved the entry's id */
    vpay **p = vec_mem_alloc(&v->mem, (size_t)v->idcap * sizeof *p);
    if (!p) return -ENOMEM;
    memset(p, 0, (size_t)v->idcap * sizeof *p);
    v->pays = p;
    return 0;
}

/* A block holding len bytes of p (len <= VINDEX_PAYLOAD_MAX), or NULL. */
vpay *vindex_pay_new(vindex *v, const void *p, size_t len)
{
    vpay *b = vec_mem_alloc(&v->mem, vpay_size((uint32_t)len));
    if (!b) return NULL;
    b->len = (uint32_t)len;
    if (len) memcpy(b->bytes, p, len);
    return b;
}

static void pay_free(vindex *v, vpay *b)
{
    if (b) vec_mem_free(&v->mem, b, vpay_size(b->len));
}

/* id no longer has a payload. */
static void pay_drop(vindex *v, uint32_t id)
{
    vpay *b = v->pays ? v->pays[id] : NULL;
    if (!b) return;
    v->pays[id] = NULL;
    v->npays--;
    v->pbytes -= b->len;
    pay_free(v, b);
}

/* id's payload becomes b (the old one, if any, is freed). */
void vindex_pay_set(vindex *v, uint32_t id, vpay *b)
{
    pay_drop(v, id);
    v->pays[id] = b;
    v->npays++;
    v->pbytes += b->len;
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
        p->dim > VINDEX_DIM_MAX || p->capacity > VINDEX_CAPACITY_MAX)
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
    v->M = p->M ? p->M : VINDEX_M_DEFAULT;
    v->efc = p->ef_construction ? p->ef_construction : VINDEX_EFC_DEFAULT;
    v->efs = p->ef_search ? p->ef_search : VINDEX_EFS_DEFAULT;
    v->seed = p->seed;
    v->hseed = vindex_hseed(p->seed);
    if ((e = vindex_make_engine(v, p)) != 0) goto fail;
    e = -ENOMEM;
    if (!(v->prep = vec_mem_alloc(&v->mem, (size_t)v->dim * sizeof *v->prep)) ||
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
    VINDEX_ASSERT(found == id);
    r->evicted = 1;
    r->evicted_id = id;
    r->evicted_klen = k->len;
    if (a->evicted_key && a->evicted_cap && k->len)
        memcpy(a->evicted_key, k->bytes, k->len < a->evicted_cap ? k->len : a->evicted_cap);
    int rc = vindex_remove(v, id, slot);     /* k is gone after this */
    VINDEX_ASSERT(rc == 0);
    v->evicted++;
}

static int vindex_overwrite(vindex *v, const vindex_add_args *a, uint32_t id, const float *src,
                            float norm, vindex_add_result *r)
{
    vpay *p = NULL;
    if (a->has_payload) {
        int rc = vindex_pays_ensure(v);
        if (rc) return rc;
        if (!(p = vindex_pay_new(v, a->payload, a->plen))) return -ENOMEM;
    }
    int rc = v->ops->update(v->eng, id, src);
    if (rc) {
        pay_free(v, p);
        return rc;
    }
    if (v->norms) v->norms[id] = norm;
    if (p) vindex_pay_set(v, id, p);
    else if (a->drop_payload) pay_drop(v, id);
    *r = (vindex_add_result){ .created = 0, .id = id, .evicted_id = VINDEX_NO_ID };
    return 0;
}

static int vindex_insert(vindex *v, const vindex_add_args *a, const float *src, float norm,
                         uint32_t hash, vindex_add_result *r)
{
    int rc = vindex_reserve_new(v);
    if (!rc && a->has_payload) rc = vindex_pays_ensure(v);
    if (rc) return rc;
    vkey *k = vec_mem_alloc(&v->mem, vkey_size((uint32_t)a->klen));
    vpay *p = NULL;
    uint32_t id = 0, slot = 0;
    if (!k || (a->has_payload && !(p = vindex_pay_new(v, a->payload, a->plen)))) rc = -ENOMEM;
    else rc = v->ops->insert(v->eng, src, &id);
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
    if (p) vindex_pay_set(v, id, p);
    if (v->ring) vindex_fifo_append(v, id);
    v->count++;
    v->ingested++;
    *r = (vindex_add_result){ .created = 1, .id = id, .evicted_id = VINDEX_NO_ID };
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
    const float *src = a->vec;
    float norm = 1.0f;
    if (v->metric == DIST_COSINE) {
        int rc = vec_normalise(a->vec, v->prep, v->dim, &norm);
        if (rc) return rc;
        src = v->prep;
    }
    uint32_t hash = vindex_hash(a->key, a->klen, v->hseed), slot = 0;
    uint32_t id = map_find(v, a->key, a->klen, hash, &slot);
    vindex_add_result res;
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
    if ((!key && klen) || klen > UINT32_MAX) return 0;
    uint32_t slot = 0;
    uint32_t id = map_find(v, key, klen, vindex_hash(key, klen, v->hseed), &slot);
    if (id == VINDEX_NONE) return 0;
    int rc = vindex_remove(v, id, slot);
    return rc ? rc : 1;    /* rc cannot happen: the map and the engine agree */
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
    return v->ops->repair ? v->ops->repair(v->eng) : 0;     /* none: nothing is ever cut off */
}

const void *vindex_payload(const vindex *v, uint32_t id, size_t *len)
{
    *len = 0;
    if (!v->pays || id >= v->idcap || !v->pays[id]) return NULL;   /* only live ids have one */
    *len = v->pays[id]->len;
    return v->pays[id]->bytes;
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
        if (!v->keys[id] || v->pays[id]->len > VINDEX_PAYLOAD_MAX)
            return vindex_fail(err, errlen, "payload on a free id or too long", id);
        np++;
        nb += v->pays[id]->len;
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
    if ((rc = v->ops->search(v->eng, c->scratch[v->type], qv, k, ef, q->accept, q->accept_ud,
                             c->pairs, &n)) != 0)
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
    int rc = sctx_reserve(c, 1, v->metric == DIST_COSINE ? v->dim : 0);
    if (rc) return rc;
    const float *qv = q->vec;
    if (v->metric == DIST_COSINE) {
        float norm;
        if ((rc = vec_normalise(q->vec, c->q, v->dim, &norm)) != 0) return rc;
        qv = c->q;
    }
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

/* ---- snapshots (the layout is in the header comment) --------------------- */

#define VINDEX_IMG_VERSION 1u
#define VINDEX_META_LEN    56u
#define VINDEX_META_STREAM 1u       /* meta flags: a STREAM section follows */
#define VINDEX_STREAM_VERSION 1u
#define VINDEX_STREAM_LEN  40u      /* its fixed part */

/* Whether the index has stream state worth a section: anything a new
 * unbounded index would not have. */
static int vindex_has_stream(const vindex *v)
{
    return v->ring || v->ingested || v->evicted || v->next_id != 1 || v->npays;
}

static void vindex_save_stream(const vindex *v, img_out *o, uint32_t id_end)
{
    uint8_t h[VINDEX_STREAM_LEN];
    le_put32(h, VINDEX_STREAM_VERSION);
    le_put32(h + 4, v->ring);
    le_put32(h + 8, v->ring ? v->count : 0);
    le_put32(h + 12, v->npays);
    le_put64(h + 16, v->ingested);
    le_put64(h + 24, v->evicted);
    le_put64(h + 32, v->next_id);
    img_out_begin(o, VINDEX_IMG_STREAM, 0);
    img_out_put(o, h, sizeof h);
    for (uint32_t id = v->ring ? v->fhead : VINDEX_NONE; id != VINDEX_NONE && !o->rc;
         id = v->fnext[id]) {
        uint8_t b[4];
        le_put32(b, id);
        img_out_put(o, b, sizeof b);
    }
    img_out_end(o);
    if (!v->npays) return;
    img_out_begin(o, VINDEX_IMG_PAYLOADS, 0);
    for (uint32_t id = 0, next = 0; id < id_end && !o->rc; id++) {
        const vpay *p = v->pays[id];
        if (!p) continue;
        img_out_varint(o, id - next);
        img_out_varint(o, p->len);
        img_out_put(o, p->bytes, p->len);
        next = id + 1;
    }
    img_out_end(o);
}

int vindex_save(const vindex *v, img_sink *s)
{
    uint32_t id_end = v->idcap;
    while (id_end > 0 && !v->keys[id_end - 1]) id_end--;
    uint8_t m[VINDEX_META_LEN];
    const uint32_t w[] = { VINDEX_IMG_VERSION, (uint32_t)v->type, v->dim, (uint32_t)v->metric,
                           v->M, v->efc, v->efs, v->hseed };
    for (size_t i = 0; i < sizeof w / sizeof *w; i++) le_put32(m + 4 * i, w[i]);
    le_put32(m + 32, (uint32_t)v->seed);
    le_put32(m + 36, (uint32_t)(v->seed >> 32));
    le_put32(m + 40, v->count);
    le_put32(m + 44, v->nslots);
    le_put32(m + 48, id_end);
    le_put32(m + 52, vindex_has_stream(v) ? VINDEX_META_STREAM : 0);

    img_out o = { .s = s };
    img_out_begin(&o, VINDEX_IMG_META, 0);
    img_out_put(&o, m, sizeof m);
    img_out_end(&o);

    img_out_begin(&o, VINDEX_IMG_KEYS, 0);
    for (uint32_t id = 0, next = 0; id < id_end && !o.rc; id++) {
        const vkey *k = v->keys[id];
        if (!k) continue;
        img_out_varint(&o, id - next);
        img_out_varint(&o, k->len);
        img_out_put(&o, k->bytes, k->len);
        next = id + 1;
    }
    img_out_end(&o);

    if (v->metric == DIST_COSINE) {
        static const float zero = 0.0f;
        img_out_begin(&o, VINDEX_IMG_NORMS, 1);
        for (uint32_t id = 0; id < id_end && !o.rc; id++)
            img_out_put(&o, v->keys[id] ? &v->norms[id] : &zero, sizeof zero);
        img_out_end(&o);
    }
    if (vindex_has_stream(v)) vindex_save_stream(v, &o, id_end);
    return o.rc ? o.rc : v->ops->save(v->eng, s);
}

/* The engine's releases pass through here: mute while loading. */
static void vindex_relay(void *ud, void *p, size_t len)
{
    vindex *v = ud;
    if (v->release_armed && v->release) v->release(v->release_ud, p, len);
}

typedef struct vx_meta {
    uint32_t version, type, dim, metric, M, efc, efs, hseed, seed_lo, seed_hi;
    uint32_t count, nslots, id_end, flags;
    /* From the STREAM section (defaults without one), and where the
     * optional sections are (0: absent). */
    uint32_t capacity, norder, npays;
    uint64_t ingested, evicted, next_id;
    size_t stream_at, pays_at;
} vx_meta;

/* Smallest key table vindex would have made for n keys. */
static uint64_t map_size_for(uint64_t n)
{
    uint64_t ns = 16;
    while (n * 4 > ns * 3) ns *= 2;
    return ns;
}

/* Section i exists, is of kind, and has its data. */
static int vindex_expect(const img_source *src, size_t i, uint32_t kind, char *err, size_t errlen)
{
    if (i >= src->n)
        return vec_corruptf(err, errlen, "vindex image: %zu sections, too few", src->n);
    if (src->sec[i].kind != kind)
        return vec_corruptf(err, errlen, "vindex image: section %zu is kind 0x%04x, "
                           "expected 0x%04x", i, src->sec[i].kind, kind);
    if (src->sec[i].len && !src->sec[i].data)
        return vec_corruptf(err, errlen, "vindex image: section 0x%04x has no data", kind);
    return 0;
}

/* The STREAM section's fixed part, checked against the meta; the order it
 * carries is checked once the keys are in (vindex_load_order). */
static int vindex_load_stream_head(const img_section *s, vx_meta *m, char *err, size_t errlen)
{
    if (s->len < VINDEX_STREAM_LEN)
        return vec_corruptf(err, errlen, "vindex image: stream section is %zu bytes, less "
                           "than %u", s->len, VINDEX_STREAM_LEN);
    const uint8_t *b = s->data;
    uint32_t version = le_get32(b);
    m->capacity = le_get32(b + 4);
    m->norder = le_get32(b + 8);
    m->npays = le_get32(b + 12);
    m->ingested = le_get64(b + 16);
    m->evicted = le_get64(b + 24);
    m->next_id = le_get64(b + 32);
    if (version != VINDEX_STREAM_VERSION)
        return vec_corruptf(err, errlen, "vindex image: stream version %u, this build reads %u",
                           version, VINDEX_STREAM_VERSION);
    if (m->capacity > VINDEX_CAPACITY_MAX || (m->capacity && m->count > m->capacity))
        return vec_corruptf(err, errlen, "vindex image: ring capacity %u (limit %u) for %u keys",
                           m->capacity, VINDEX_CAPACITY_MAX, m->count);
    if (m->norder != (m->capacity ? m->count : 0) || (!m->capacity && m->evicted) ||
        s->len != VINDEX_STREAM_LEN + (uint64_t)m->norder * 4)
        return vec_corruptf(err, errlen, "vindex image: stream section of %zu bytes orders %u "
                           "of %u keys (capacity %u, %llu evicted)", s->len, m->norder,
                           m->count, m->capacity, (unsigned long long)m->evicted);
    if (m->npays > m->count || m->ingested < m->count || m->ingested - m->count < m->evicted)
        return vec_corruptf(err, errlen, "vindex image: %u payloads, %llu ingested, %llu "
                           "evicted for %u keys", m->npays, (unsigned long long)m->ingested,
                           (unsigned long long)m->evicted, m->count);
    return 0;
}

static int vindex_load_meta(const img_source *src, vx_meta *m, size_t *nown, char *err,
                            size_t errlen)
{
    if (src->n < 1 || src->sec[0].kind != VINDEX_IMG_META || src->sec[0].len != VINDEX_META_LEN ||
        !src->sec[0].data)
        return vec_corruptf(err, errlen, "vindex image: no %u-byte meta section (kind 0x%04x) "
                           "first", VINDEX_META_LEN, VINDEX_IMG_META);
    const uint8_t *b = src->sec[0].data;
    *m = (vx_meta){
        .version = le_get32(b), .type = le_get32(b + 4), .dim = le_get32(b + 8), .metric = le_get32(b + 12),
        .M = le_get32(b + 16), .efc = le_get32(b + 20), .efs = le_get32(b + 24), .hseed = le_get32(b + 28),
        .seed_lo = le_get32(b + 32), .seed_hi = le_get32(b + 36), .count = le_get32(b + 40),
        .nslots = le_get32(b + 44), .id_end = le_get32(b + 48), .flags = le_get32(b + 52),
    };
    if (m->version != VINDEX_IMG_VERSION)
        return vec_corruptf(err, errlen, "vindex image: version %u, this build reads %u",
                           m->version, VINDEX_IMG_VERSION);
    if (m->type > VINDEX_FLAT || m->dim < 1 || m->dim > VINDEX_DIM_MAX || m->metric > DIST_DOT ||
        (m->flags & ~VINDEX_META_STREAM) != 0)
        return vec_corruptf(err, errlen, "vindex image: type %u, dimension %u, metric %u "
                           "(flags %#x) out of range", m->type, m->dim, m->metric, m->flags);
    if (m->type == VINDEX_HNSW &&
        (m->M < 2 || m->M > VINDEX_M_MAX || m->efc < 1 || m->efc > VINDEX_EF_MAX || m->efs < 1 ||
         m->efs > VINDEX_EF_MAX))
        return vec_corruptf(err, errlen, "vindex image: M %u, ef_construction %u, ef_search %u "
                           "out of range", m->M, m->efc, m->efs);
    if (m->hseed != vindex_hseed((uint64_t)m->seed_hi << 32 | m->seed_lo))
        return vec_corruptf(err, errlen, "vindex image: hash seed %#x does not follow from the "
                           "seed", m->hseed);
    if (m->count > m->id_end ||
        (m->nslots && ((m->nslots & (m->nslots - 1)) || m->nslots < 16 ||
                       m->nslots > VINDEX_SLOTS_MAX)) ||
        (uint64_t)m->count * 4 > (uint64_t)m->nslots * 3)
        return vec_corruptf(err, errlen, "vindex image: %u keys below id %u in a table of %u "
                           "slots", m->count, m->id_end, m->nslots);
    /* Ours: META, KEYS, NORMS (cosine), STREAM (flag), PAYLOADS (STREAM
     * counts some); the engine's follow. */
    size_t n = m->metric == DIST_COSINE ? 3 : 2;
    static const uint32_t kinds[] = { VINDEX_IMG_META, VINDEX_IMG_KEYS, VINDEX_IMG_NORMS };
    for (size_t i = 1; i < n; i++) {
        int rc = vindex_expect(src, i, kinds[i], err, errlen);
        if (rc) return rc;
    }
    m->capacity = m->norder = m->npays = 0;   /* no STREAM: an unbounded index from before rings */
    m->ingested = m->count;
    m->evicted = 0;
    m->next_id = 1;
    m->stream_at = m->pays_at = 0;
    if (m->flags & VINDEX_META_STREAM) {
        int rc = vindex_expect(src, m->stream_at = n++, VINDEX_IMG_STREAM, err, errlen);
        if (!rc) rc = vindex_load_stream_head(&src->sec[m->stream_at], m, err, errlen);
        if (!rc && m->npays)
            rc = vindex_expect(src, m->pays_at = n++, VINDEX_IMG_PAYLOADS, err, errlen);
        if (rc) return rc;
    }
    *nown = n;
    if (src->n <= *nown)
        return vec_corruptf(err, errlen, "vindex image: %zu sections, too few", src->n);
    return 0;
}

static int vindex_load_engine(vindex *v, const vx_meta *m, const img_source *src, size_t nown,
                              const dist_kernels *kern, char *err, size_t errlen)
{
    img_source es = { src->sec + nown, src->n - nown, vindex_relay, v };
    vindex_params ep;
    vindex_engine_setup(v, kern, 0, &ep);
    int rc = v->ops->load(&ep, &es, &v->eng, err, errlen);
    if (rc) return rc;
    uint32_t n = v->ops->count(v->eng);
    if (n != m->count)
        return vec_corruptf(err, errlen, "vindex image: %u keys, but the engine holds %u vectors",
                           m->count, n);
    if (m->nslots > map_size_for((uint64_t)v->ops->capacity(v->eng) + 1))
        return vec_corruptf(err, errlen, "vindex image: key table of %u slots, more than "
                           "capacity %u ever needs", m->nslots, v->ops->capacity(v->eng));
    return 0;
}

/* 0, or -1 when the varint runs past end or past 32 bits. */
static int get_varint(const uint8_t *b, size_t len, size_t *at, uint32_t *out)
{
    uint64_t x = 0;
    for (int i = 0; i < 5 && *at < len; i++) {
        uint8_t c = b[(*at)++];
        x |= (uint64_t)(c & 0x7Fu) << (7 * i);
        if (!(c & 0x80u)) {
            if (x > UINT32_MAX) return -1;
            *out = (uint32_t)x;
            return 0;
        }
    }
    return -1;
}

/* Pass 1: every record inside the section, ids ascending and live in the
 * engine, exactly count of them ending at id_end; sizes the arena. */
static int vindex_scan_keys(const vindex *v, const img_section *s, const vx_meta *m,
                            size_t *arena, char *err, size_t errlen)
{
    const uint8_t *b = s->data;
    size_t at = 0;
    uint64_t next = 0;
    uint32_t n = 0;
    *arena = 0;
    while (at < s->len) {
        uint32_t gap, klen;
        if (get_varint(b, s->len, &at, &gap) || get_varint(b, s->len, &at, &klen) ||
            klen > s->len - at)
            return vec_corruptf(err, errlen, "vindex image: key record %u is cut short or "
                               "malformed", n);
        uint64_t id = next + gap;
        if (n == m->count || id >= m->id_end || !v->ops->vector(v->eng, (uint32_t)id))
            return vec_corruptf(err, errlen, "vindex image: key record %u names id %llu: past "
                               "%u keys, past id_end %u or no vector there", n,
                               (unsigned long long)id, m->count, m->id_end);
        at += klen;
        *arena += (vkey_size(klen) + 3) & ~(size_t)3;
        next = id + 1;
        n++;
    }
    if (n != m->count || next != m->id_end)
        return vec_corruptf(err, errlen, "vindex image: %u keys ending below id %llu, meta says "
                           "%u below %u", n, (unsigned long long)next, m->count, m->id_end);
    return 0;
}

/* Pass 3: the hash table at its saved size, straight into v->slots (a
 * probe reads one word per slot, never the occupant's key block unless the
 * hashes match), with the home slot of a key a few ahead prefetched.  A
 * key found twice is corruption. */
#define VINDEX_MAP_AHEAD 16

static uint32_t next_key(const vindex *v, uint32_t id, uint32_t end)
{
    while (id < end && !v->keys[id]) id++;
    return id;
}

static int vindex_load_map(vindex *v, uint32_t id_end, char *err, size_t errlen)
{
    uint64_t *e = v->slots;         /* all empty (vindex_load_keys) */
    const uint32_t mask = v->nslots - 1;
    uint32_t lead = next_key(v, 0, id_end);
    for (int k = 0; k < VINDEX_MAP_AHEAD && lead < id_end; k++) {
        __builtin_prefetch(&e[v->keys[lead]->hash & mask], 1);
        lead = next_key(v, lead + 1, id_end);
    }
    for (uint32_t id = next_key(v, 0, id_end); id < id_end; id = next_key(v, id + 1, id_end)) {
        if (lead < id_end) {
            __builtin_prefetch(&e[v->keys[lead]->hash & mask], 1);
            lead = next_key(v, lead + 1, id_end);
        }
        const vkey *k = v->keys[id];
        for (uint32_t i = k->hash & mask;; i = (i + 1) & mask) {
            if (e[i] == VX_SLOT_EMPTY) {
                e[i] = vx_slot(k->hash, id);
                break;
            }
            if (vx_slot_hash(e[i]) != k->hash) continue;
            const vkey *o = v->keys[vx_slot_id(e[i])];
            if (o->len == k->len && (k->len == 0 || memcmp(o->bytes, k->bytes, k->len) == 0))
                return vec_corruptf(err, errlen, "vindex image: ids %u and %u have the same key",
                                    vx_slot_id(e[i]), id);
        }
    }
    return 0;
}

/* Pass 2: key blocks into the arena (4-aligned, for vkey's words), then
 * the table. */
static int vindex_load_keys(vindex *v, const img_section *s, const vx_meta *m, char *err,
                            size_t errlen)
{
    size_t bytes;
    int rc = vindex_scan_keys(v, s, m, &bytes, err, errlen);
    if (rc) return rc;
    /* Per-id arrays for the ids the image has; the first add sizes them to
     * the engine's capacity (vindex_reserve_new). */
    if ((rc = vindex_ids_reserve(v, m->id_end)) != 0) return rc;
    if (m->nslots) {        /* empty here, filled by vindex_load_map */
        size_t tb = (size_t)m->nslots * sizeof *v->slots;
        if (!(v->slots = vec_mem_alloc(&v->mem, tb))) return -ENOMEM;
        memset(v->slots, 0xFF, tb);
        v->nslots = m->nslots;
    }
    if (bytes && !(v->karena = vec_mem_alloc(&v->mem, bytes))) return -ENOMEM;
    v->karena_bytes = bytes;
    const uint8_t *b = s->data;
    size_t at = 0, off = 0;
    for (uint32_t i = 0, id = 0; i < m->count; i++, id++) {
        uint32_t gap = 0, klen = 0;
        (void)get_varint(b, s->len, &at, &gap);
        (void)get_varint(b, s->len, &at, &klen);
        id += gap;
        vkey *k = (vkey *)(v->karena + off);
        off += (vkey_size(klen) + 3) & ~(size_t)3;
        k->len = klen;
        if (klen) memcpy(k->bytes, b + at, klen);
        at += klen;
        k->hash = vindex_hash(k->bytes, klen, v->hseed);
        v->keys[id] = k;
        v->karena_live++;
    }
    if (m->count && (rc = vindex_load_map(v, m->id_end, err, errlen)) != 0) return rc;
    v->count = m->count;
    return 0;
}

static int vindex_load_norms(vindex *v, const img_section *s, const vx_meta *m, char *err,
                             size_t errlen)
{
    if (s->len != (size_t)m->id_end * sizeof(float))
        return vec_corruptf(err, errlen, "vindex image: norm section is %zu bytes, %u ids need "
                           "%zu", s->len, m->id_end, (size_t)m->id_end * sizeof(float));
    if (s->len) memcpy(v->norms, s->data, s->len);
    for (uint32_t id = 0; id < m->id_end; id++)
        if (v->keys[id] && !(isfinite(v->norms[id]) && v->norms[id] >= 0.0f))
            return vec_corruptf(err, errlen, "vindex image: norm of id %u is not a length", id);
    return 0;
}

/* The ring's order: count distinct live ids (a repeat is seen as an id
 * already linked: the head, or one with a predecessor). */
static int vindex_load_order(vindex *v, const img_section *s, const vx_meta *m, char *err,
                             size_t errlen)
{
    const uint8_t *b = (const uint8_t *)s->data + VINDEX_STREAM_LEN;
    for (uint32_t i = 0; i < m->norder; i++) {
        uint32_t id = le_get32(b + 4 * (size_t)i);
        if (id >= m->id_end || !v->keys[id])
            return vec_corruptf(err, errlen, "vindex image: ring order entry %u names id %u, "
                               "which has no key", i, id);
        if (id == v->fhead || v->fprev[id] != VINDEX_NONE)
            return vec_corruptf(err, errlen, "vindex image: ring order names id %u twice", id);
        vindex_fifo_append(v, id);
    }
    return 0;
}

/* Payload records: ascending live ids, lengths within the section and the
 * limit, exactly npays of them filling it. */
static int vindex_load_pays(vindex *v, const img_section *s, const vx_meta *m, char *err,
                            size_t errlen)
{
    int rc = vindex_pays_ensure(v);    /* npays <= count, so ids exist */
    if (rc) return rc;
    const uint8_t *b = s->data;
    size_t at = 0;
    uint64_t next = 0;
    uint32_t n = 0;
    while (at < s->len) {
        uint32_t gap, len;
        if (get_varint(b, s->len, &at, &gap) || get_varint(b, s->len, &at, &len) ||
            len > s->len - at || len > VINDEX_PAYLOAD_MAX)
            return vec_corruptf(err, errlen, "vindex image: payload record %u is cut short or "
                               "malformed", n);
        uint64_t id = next + gap;
        if (n == m->npays || id >= m->id_end || !v->keys[id])
            return vec_corruptf(err, errlen, "vindex image: payload record %u names id %llu: "
                               "past %u records or no key there", n,
                               (unsigned long long)id, m->npays);
        vpay *p = vindex_pay_new(v, b + at, len);
        if (!p) return -ENOMEM;
        vindex_pay_set(v, (uint32_t)id, p);
        at += len;
        next = id + 1;
        n++;
    }
    if (n != m->npays)
        return vec_corruptf(err, errlen, "vindex image: %u payload records, the stream section "
                           "says %u", n, m->npays);
    return 0;
}

/* The source's owner counts every byte it handed out until it is released
 * (snapfile.h): give back at once every section that was copied, keeping only
 * the ranges the engine borrows (v NULL after a failed load: all of them). */
static void vindex_release_copied(const img_source *src, const vindex *v)
{
    if (!src->release) return;
    for (size_t i = 0; i < src->n; i++) {
        const img_section *s = &src->sec[i];
        if (s->len == 0 || (v && v->ops->borrows(v->eng, s->data))) continue;
        src->release(src->release_ud, s->data, s->len);
    }
}

int vindex_load(const img_source *src, const vindex_load_opts *o, vindex **out, char *err,
                size_t errlen)
{
    const vindex_allocator *al = o && o->alloc ? o->alloc : &vec_default_allocator;
    vx_meta m = { 0 };
    size_t nown = 0;
    int rc;
    *out = NULL;
    if (errlen) err[0] = '\0';
    if (!src || (src->n && !src->sec)) return -EINVAL;
    if ((rc = vindex_load_meta(src, &m, &nown, err, errlen)) != 0) {
        vindex_release_copied(src, NULL);
        return rc;
    }
    vindex *v = al->alloc(al->ud, sizeof *v);
    if (!v) {
        vindex_release_copied(src, NULL);
        return -ENOMEM;
    }
    vindex_init_fields(v, al);
    v->ring = m.capacity;       /* before the keys: it decides the per-id arrays */
    v->type = (vindex_type)m.type;
    v->metric = (dist_metric)m.metric;
    v->dim = m.dim;
    v->M = m.M;
    v->efc = m.efc;
    v->efs = m.efs;
    v->seed = (uint64_t)m.seed_hi << 32 | m.seed_lo;
    v->hseed = m.hseed;
    v->release = src->release;
    v->release_ud = src->release_ud;
    if ((rc = vindex_load_engine(v, &m, src, nown, o ? o->kernels : NULL, err, errlen)) != 0)
        goto fail;
    rc = -ENOMEM;
    if (!(v->prep = vec_mem_alloc(&v->mem, (size_t)v->dim * sizeof *v->prep))) goto fail;
    if ((rc = vindex_load_keys(v, &src->sec[1], &m, err, errlen)) != 0) goto fail;
    if (v->metric == DIST_COSINE && (rc = vindex_load_norms(v, &src->sec[2], &m, err, errlen)) != 0)
        goto fail;
    if (m.stream_at && (rc = vindex_load_order(v, &src->sec[m.stream_at], &m, err, errlen)) != 0)
        goto fail;
    if (m.pays_at && (rc = vindex_load_pays(v, &src->sec[m.pays_at], &m, err, errlen)) != 0)
        goto fail;
    v->ingested = m.ingested;
    v->evicted = m.evicted;
    v->next_id = m.next_id;
    if (!m.stream_at) {         /* from before rings: past every numeric key there is */
        uint64_t num;
        for (uint32_t id = 0; id < m.id_end; id++)
            if (v->keys[id] && vindex_key_decimal(v->keys[id]->bytes, v->keys[id]->len, &num))
                vindex_note_id(v, num);
    }
    v->release_armed = 1;
    vindex_release_copied(src, v);
    *out = v;
    return 0;
fail:
    vindex_free(v);     /* unarmed: the engine's releases go nowhere */
    vindex_release_copied(src, NULL);
    return rc;
}
