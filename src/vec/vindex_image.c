/* vindex_image.c -- an index as snapshot sections (image.h): vindex_save
 * writes them, vindex_load checks them and rebuilds the index in place.
 * This comment is the sections' format.  The index's inside is shared
 * with vindex.c through vindex_impl.h.
 *
 * vindex_save writes the sections below, then the engine's (hnsw.c,
 * flat.c: their headers give their layouts).  vindex_load checks them,
 * loads the engine (which borrows its big arrays in place), then rebuilds
 * the key map: all key blocks in one allocation (the arena; a malloc per
 * key would dominate loading a million keys), and the hash table at its
 * saved size.  A loaded key deleted later just leaves its bytes in the
 * arena, which is freed with its last key.  The engine gets the
 * snapshot's release callback through vindex_relay, which stays mute
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
 *                   norms); bits 8-15 = the quantisation (quant.h: 0
 *                   float32, 1 Q8, 2 BIN; not 0 only for cosine HNSW);
 *                   bit 16 = a FLOATS section follows (quantised only);
 *                   other bits 0.  (Was "reserved, 0": images from before
 *                   rings load as unbounded, with ingested = count,
 *                   evicted 0, next id past their numeric keys; images
 *                   from before quantisation are float32.)
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
 *   0x0105 VINDEX_IMG_FLOATS, page-aligned, when meta flag bit 16 is set
 *     (a quantised index keeping a float copy): id_end x dim float32, the
 *     normalised vector of each id (zeros for free ids); after the STREAM
 *     and PAYLOADS sections, if any.  Copied.
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
 * Threads.  None of its own.  vindex_save only reads (it may run beside
 * searches, under the read lock); vindex_load builds an index no other
 * thread can see yet. */
#include "engram/vindex.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engram/img_out.h"
#include "engram/le.h"

#include "vindex_impl.h"

/* ---- snapshots (the layout is in the header comment) --------------------- */

#define VINDEX_IMG_VERSION 1u
#define VINDEX_META_LEN    56u
#define VINDEX_META_STREAM 1u       /* meta flags: a STREAM section follows */
#define VINDEX_META_QUANT 0xff00u    /* meta flags: the quantisation (quant_type) */
#define VINDEX_META_QUANT_SHIFT 8
#define VINDEX_META_FLOATS (1u << 16) /* meta flags: a FLOATS section follows */
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
        const vattr *p = v->pays[id];
        if (!p) continue;
        size_t plen;
        const char *text = vattr_json(p, &plen);
        img_out_varint(o, id - next);
        img_out_varint(o, (uint32_t)plen);
        img_out_put(o, text, plen);
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
    le_put32(m + 52, (vindex_has_stream(v) ? VINDEX_META_STREAM : 0) |
                         (uint32_t)v->quant << VINDEX_META_QUANT_SHIFT |
                         (v->keep_float ? VINDEX_META_FLOATS : 0));

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
    if (v->keep_float) {
        img_out_begin(&o, VINDEX_IMG_FLOATS, 1);
        for (uint32_t x = 0, y; x < id_end && !o.rc; x = y) {
            for (y = x; y < id_end && v->keys[y]; y++) {}
            if (y > x) {
                img_out_put(&o, v->fvec + (size_t)x * v->dim, (size_t)(y - x) * v->dim * 4);
            } else {
                img_out_zero(&o, (size_t)v->dim * 4);
                y++;
            }
        }
        img_out_end(&o);
    }
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
    size_t stream_at, pays_at, floats_at;
} vx_meta;

/* Smallest key table vindex would have made for n keys. */
static uint64_t map_size_for(uint64_t n)
{
    uint64_t ns = 16;
    while (n * 4 > ns * 3) ns *= 2;
    return ns;
}

/* Section i exists, is of kind (the `what` section), and has its data.
 * The messages name the section expected, never read one past src->n. */
static int vindex_expect(const img_source *src, size_t i, uint32_t kind, const char *what,
                         char *err, size_t errlen)
{
    if (i >= src->n)
        return vec_corruptf(err, errlen, "vindex image: %zu sections, no %s section (kind "
                           "0x%04x) at %zu", src->n, what, kind, i);
    if (src->sec[i].kind != kind)
        return vec_corruptf(err, errlen, "vindex image: section %zu is kind 0x%04x, expected "
                           "the %s section (0x%04x)", i, src->sec[i].kind, what, kind);
    if (src->sec[i].len && !src->sec[i].data)
        return vec_corruptf(err, errlen, "vindex image: %s section (0x%04x) has no data", what,
                           kind);
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
    uint32_t quant = (m->flags & VINDEX_META_QUANT) >> VINDEX_META_QUANT_SHIFT;
    if (m->type > VINDEX_FLAT || m->dim < 1 || m->dim > VINDEX_DIM_MAX || m->metric > DIST_DOT ||
        (m->flags & ~(VINDEX_META_STREAM | VINDEX_META_QUANT | VINDEX_META_FLOATS)) != 0 ||
        ((m->flags & VINDEX_META_FLOATS) && quant == QUANT_NONE) ||
        !vec_format_ok((dist_metric)m->metric, (quant_type)quant) ||
        (quant != QUANT_NONE && m->type != VINDEX_HNSW))
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
    static const char *const names[] = { "meta", "keys", "norms" };
    for (size_t i = 1; i < n; i++) {
        int rc = vindex_expect(src, i, kinds[i], names[i], err, errlen);
        if (rc) return rc;
    }
    m->capacity = m->norder = m->npays = 0;   /* no STREAM: an unbounded index from before rings */
    m->ingested = m->count;
    m->evicted = 0;
    m->next_id = 1;
    m->stream_at = m->pays_at = m->floats_at = 0;
    if (m->flags & VINDEX_META_STREAM) {
        int rc = vindex_expect(src, m->stream_at = n++, VINDEX_IMG_STREAM, "stream", err, errlen);
        if (!rc) rc = vindex_load_stream_head(&src->sec[m->stream_at], m, err, errlen);
        if (!rc && m->npays)
            rc = vindex_expect(src, m->pays_at = n++, VINDEX_IMG_PAYLOADS, "payloads", err,
                               errlen);
        if (rc) return rc;
    }
    if (m->flags & VINDEX_META_FLOATS) {
        int rc = vindex_expect(src, m->floats_at = n++, VINDEX_IMG_FLOATS, "floats", err, errlen);
        if (rc) return rc;
        uint64_t want = (uint64_t)m->id_end * m->dim * sizeof(float);
        if (src->sec[m->floats_at].len != want)
            return vec_corruptf(err, errlen, "vindex image: floats section is %zu bytes, %u ids "
                               "of %u dimensions need %llu", src->sec[m->floats_at].len,
                               m->id_end, m->dim, (unsigned long long)want);
    }
    *nown = n;
    if (src->n <= *nown)
        return vec_corruptf(err, errlen, "vindex image: %zu sections, no engine sections after "
                           "the index's %zu", src->n, n);
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
        vattr *p = vindex_pay_new(v, b + at, len);
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
    v->quant = (quant_type)((m.flags & VINDEX_META_QUANT) >> VINDEX_META_QUANT_SHIFT);
    v->keep_float = (m.flags & VINDEX_META_FLOATS) != 0;
    v->recbytes = quant_record_bytes(v->quant, v->dim);
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
    if (!(v->prep = vec_mem_alloc(&v->mem, (size_t)v->dim * sizeof *v->prep)) ||
        !(v->rec = vec_mem_alloc(&v->mem, v->recbytes)))
        goto fail;
    if ((rc = vindex_load_keys(v, &src->sec[1], &m, err, errlen)) != 0) goto fail;
    if (v->metric == DIST_COSINE && (rc = vindex_load_norms(v, &src->sec[2], &m, err, errlen)) != 0)
        goto fail;
    if (m.stream_at && (rc = vindex_load_order(v, &src->sec[m.stream_at], &m, err, errlen)) != 0)
        goto fail;
    if (m.pays_at && (rc = vindex_load_pays(v, &src->sec[m.pays_at], &m, err, errlen)) != 0)
        goto fail;
    if (m.floats_at) {          /* ids_reserve (keys) made the copy's room */
        const img_section *fs = &src->sec[m.floats_at];
        if (fs->len) memcpy(v->fvec, fs->data, fs->len);
        for (size_t i = 0; i < (size_t)m.id_end * v->dim; i++)
            if (!isfinite(v->fvec[i])) {
                rc = vec_corruptf(err, errlen, "vindex image: float copy of id %zu is not finite",
                                  i / v->dim);
                goto fail;
            }
    }
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

/* ---- clone --------------------------------------------------------------- *
 * A copy is a save into memory and a load from it: the one code path that
 * already reproduces an index exactly (keys, ids, graph, payloads, ring,
 * counters).  The sections are handed to the loader as not page-aligned,
 * so the engines copy their arrays instead of borrowing them, and the
 * buffers are freed as soon as the load returns. */

typedef struct mem_sink {
    img_sink base;
    img_section *sec;
    size_t n, cap;          /* sections, and the slots allocated */
    size_t scap;            /* bytes allocated for the open section */
} mem_sink;

static int mem_begin(img_sink *sk, uint32_t kind, int page_align)
{
    mem_sink *m = (mem_sink *)sk;
    (void)page_align;
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 8;
        img_section *sec = realloc(m->sec, cap * sizeof *sec);
        if (!sec) return -ENOMEM;
        m->sec = sec;
        m->cap = cap;
    }
    m->sec[m->n++] = (img_section){ kind, 0, NULL, 0 };
    m->scap = 0;
    return 0;
}

static int mem_write(img_sink *sk, const void *p, size_t len)
{
    mem_sink *m = (mem_sink *)sk;
    img_section *sec = &m->sec[m->n - 1];
    if (sec->len + len > m->scap) {
        size_t cap = m->scap ? m->scap : 256;
        while (cap < sec->len + len) cap *= 2;
        void *d = realloc(sec->data, cap);
        if (!d) return -ENOMEM;
        sec->data = d;
        m->scap = cap;
    }
    memcpy((char *)sec->data + sec->len, p, len);
    sec->len += len;
    return 0;
}

static int mem_end(img_sink *sk)
{
    (void)sk;
    return 0;
}

int vindex_clone(const vindex *v, const vindex_load_opts *o, vindex **out)
{
    mem_sink m = { { mem_begin, mem_write, mem_end }, NULL, 0, 0, 0 };
    char err[256];
    *out = NULL;
    int rc = vindex_save(v, &m.base);
    if (rc == 0) {
        img_source src = { m.sec, m.n, NULL, NULL };
        rc = vindex_load(&src, o, out, err, sizeof err);
    }
    for (size_t i = 0; i < m.n; i++) free(m.sec[i].data);
    free(m.sec);
    return rc;
}

