/* fuzz_snapshot.c -- the snapshot loader: the container (snapfile.h:
 * snap_open over a file, with its mapping and release accounting), then
 * the pure loaders of what it holds: the keyspace (kv_load), the hashes
 * (hash_image_load) and vector sets with their graphs (vindex_load, which
 * runs hnsw_load / flat_load).  dataset_load, which frames these for the
 * server (META, DB, VSET, FTDEFS), needs a server; this target walks the
 * sections by kind instead, so every loader sees what any file can hold.
 *
 * Feeds: the input as a snapshot file (an in-memory file behind the io
 * seam: its mapping is a heap block of exactly the file's size, and
 * released pages are poisoned for ASan).  Every byte of a snapshot is
 * under a CRC-32C, so a custom mutator reads the input as its sections,
 * mutates one (its bytes, its kind, its alignment flag; or drops, repeats
 * or swaps sections) and writes a valid file back -- or, one time in six,
 * mutates the raw bytes, so snap_open's own checks are fuzzed.
 * Reproducers are plain snapshot files.
 *
 * Checks:
 *  - snap_open either refuses (-EBADMSG / -ENOTSUP, a message naming the
 *    file, an offset within it, nothing left mapped or open) or gives
 *    sections that lie inside the file;
 *  - each loader refuses with its own error and a message, or loads; a
 *    loaded keyspace or hash set saves and reloads to the same number of
 *    keys and bytes; a loaded index can be searched (graph and exact
 *    scan), iterated (count keys) and, when vindex_validate passes, saves,
 *    reloads and saves again to the same bytes, and takes an insert and a
 *    delete;
 *  - every byte handed out is released exactly once: after snap_close
 *    and the loaders' frees, the mapping is gone (snapfile.h's rule). */
#include "fuzz.h"

#include <errno.h>
#include <string.h>

#include "engram/crc32c.h"
#include "engram/hash.h"
#include "engram/hash_image.h"
#include "engram/kv_image.h"
#include "engram/le.h"
#include "engram/snapfile.h"
#include "engram/vindex.h"

#define T_HASH 1

static const hash_limits hlim = { 128, 64 };

static void free_obj(void *ud, uint8_t type, void *obj)
{
    (void)ud;
    FUZZ_CHECK(type == T_HASH, "object type %u", type);
    hash_free(obj);
}

static const kv_obj_ops hops = { free_obj, NULL };

static size_t image_bytes(const fuzz_image *im)
{
    size_t n = 0;
    for (size_t i = 0; i < im->n; i++) n += im->sec[i].len;
    return n;
}

/* ---- the keyspace --------------------------------------------------------- */

static void load_strings(snap *sp, size_t i, size_t j)
{
    img_source src;
    char err[256] = "";
    FUZZ_CHECK(snap_source(sp, i, j - i, &src) == 0, "snap_source");
    kv *db = kv_new(1);
    int rc = kv_load(db, &src, err, sizeof err);
    FUZZ_CHECK(rc == 0 || (rc == -EBADMSG && err[0]), "kv_load: %d %s", rc, err);
    if (rc == 0) {
        fuzz_image a, b;
        fuzz_image_init(&a);
        fuzz_image_init(&b);
        FUZZ_CHECK(kv_save(db, INT64_MIN, &a.sink) == 0, "kv_save");
        kv *db2 = kv_new(2);
        img_source s2 = fuzz_image_source(&a);
        rc = kv_load(db2, &s2, err, sizeof err);
        FUZZ_CHECK(rc == 0, "a saved keyspace does not load: %s", err);
        FUZZ_CHECK(kv_size(db2) == kv_size(db), "%zu keys, %zu after a round trip",
                   kv_size(db), kv_size(db2));
        FUZZ_CHECK(kv_save(db2, INT64_MIN, &b.sink) == 0, "kv_save");
        FUZZ_CHECK(image_bytes(&a) == image_bytes(&b), "saved again: %zu bytes, then %zu",
                   image_bytes(&a), image_bytes(&b));
        kv_free(db2);
        fuzz_image_fini(&a);
        fuzz_image_fini(&b);
    }
    kv_free(db);
}

/* ---- the hashes ------------------------------------------------------------- */

static kv *hash_db(uint64_t seed)
{
    kv *db = kv_new(seed);
    kv_set_obj_ops(db, &hops, NULL);
    return db;
}

static void load_hashes(snap *sp, size_t i)
{
    img_source src;
    char err[256] = "";
    uint64_t rng = 7;
    FUZZ_CHECK(snap_source(sp, i, 1, &src) == 0, "snap_source");
    kv *db = hash_db(3);
    int rc = hash_image_load(db, T_HASH, &src.sec[0], &hlim, &rng, err, sizeof err);
    src.release(src.release_ud, src.sec[0].data, src.sec[0].len);
    FUZZ_CHECK(rc == 0 || (rc == -EBADMSG && err[0]), "hash_image_load: %d %s", rc, err);
    if (rc == 0) {
        fuzz_image a, b;
        fuzz_image_init(&a);
        fuzz_image_init(&b);
        FUZZ_CHECK(hash_image_save(db, T_HASH, INT64_MIN, &a.sink) == 0 && a.n == 1,
                   "hash_image_save");
        kv *db2 = hash_db(4);
        rc = hash_image_load(db2, T_HASH, &a.sec[0], &hlim, &rng, err, sizeof err);
        FUZZ_CHECK(rc == 0, "saved hashes do not load: %s", err);
        FUZZ_CHECK(hash_image_save(db2, T_HASH, INT64_MIN, &b.sink) == 0, "hash_image_save");
        FUZZ_CHECK(image_bytes(&a) == image_bytes(&b), "saved again: %zu bytes, then %zu",
                   image_bytes(&a), image_bytes(&b));
        kv_free(db2);
        fuzz_image_fini(&a);
        fuzz_image_fini(&b);
    }
    kv_free(db);
}

/* ---- vector sets ------------------------------------------------------------ */

static void search(const vindex *v)
{
    uint32_t dim = vindex_dim(v);
    float *q = malloc((size_t)dim * sizeof *q);
    FUZZ_CHECK(q != NULL, "out of memory (dim %u)", dim);
    for (uint32_t i = 0; i < dim; i++) q[i] = (float)((int)(i % 5) - 2);
    vindex_search_ctx *ctx = vindex_search_ctx_new(NULL);
    FUZZ_CHECK(ctx != NULL, "out of memory");
    vindex_query qu;
    vindex_query_init(&qu, q, dim, 4);
    vindex_hit hits[4];
    uint32_t nh = 0;
    int rc = vindex_search(v, ctx, &qu, hits, &nh);
    FUZZ_CHECK(rc == 0 && nh <= 4 && nh <= vindex_count(v), "vindex_search: %d, %u hits", rc, nh);
    rc = vindex_search_exact(v, ctx, &qu, hits, &nh);
    FUZZ_CHECK(rc == 0 && nh <= 4, "vindex_search_exact: %d, %u hits", rc, nh);
    vindex_search_ctx_free(ctx);
    free(q);

    uint32_t cursor = 0, id, n = 0;
    const void *key;
    size_t klen, plen;
    while (vindex_iter(v, &cursor, &id, &key, &klen)) {
        n++;
        FUZZ_CHECK(n <= vindex_count(v), "more keys than the count %u", vindex_count(v));
        vindex_payload(v, id, &plen);
        vindex_attr(v, id);
        vindex_level(v, id);
    }
    FUZZ_CHECK(n == vindex_count(v), "%u keys, count %u", n, vindex_count(v));
}

/* What an index that passes validation must also do. */
static void round_trip_and_mutate(vindex *v)
{
    fuzz_image a, b;
    fuzz_image_init(&a);
    fuzz_image_init(&b);
    FUZZ_CHECK(vindex_save(v, &a.sink) == 0, "vindex_save");
    img_source s = fuzz_image_source(&a);
    vindex *v2 = NULL;
    char err[256] = "";
    int rc = vindex_load(&s, NULL, &v2, err, sizeof err);
    FUZZ_CHECK(rc == 0, "a saved index does not load: %d %s", rc, err);
    FUZZ_CHECK(vindex_save(v2, &b.sink) == 0, "vindex_save");
    FUZZ_CHECK(fuzz_image_equal(&a, &b), "an index saved, loaded and saved again differs");
    vindex_free(v2);
    fuzz_image_fini(&a);
    fuzz_image_fini(&b);

    uint32_t dim = vindex_dim(v);
    float *x = malloc((size_t)dim * sizeof *x);
    FUZZ_CHECK(x != NULL, "out of memory");
    for (uint32_t i = 0; i < dim; i++) x[i] = (float)(i % 3) + 0.5f;
    rc = vindex_add(v, "fuzz:new", 8, x, dim);
    FUZZ_CHECK(rc >= 0 || rc == VINDEX_EFULL || rc == -ENOMEM, "vindex_add: %d", rc);
    uint32_t cursor = 0, id;
    const void *key;
    size_t klen;
    if (vindex_iter(v, &cursor, &id, &key, &klen)) {
        char *k = malloc(klen ? klen : 1);
        memcpy(k, key, klen);
        FUZZ_CHECK(vindex_del(v, k, klen) == 1, "an iterated key is not there");
        free(k);
    }
    free(x);
    search(v);
}

static void load_vset(snap *sp, size_t i, size_t j)
{
    img_source src;
    char err[256] = "";
    FUZZ_CHECK(snap_source(sp, i, j - i, &src) == 0, "snap_source");
    vindex *v = NULL;
    int rc = vindex_load(&src, NULL, &v, err, sizeof err);
    FUZZ_CHECK(rc == 0 || ((rc == VINDEX_ECORRUPT || rc == -EINVAL) && !v),
               "vindex_load: %d %s", rc, err);
    if (rc != 0) return;
    search(v);
    if (vindex_validate(v, err, sizeof err) == 0) round_trip_and_mutate(v);
    vindex_free(v);
}

/* ---- the file ------------------------------------------------------------------ */

static int is_vec(uint32_t kind) { return kind >= 0x0100 && kind <= 0x01ff; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_memio_set(data, size);
    snap *sp = NULL;
    snap_error e;
    memset(&e, 0, sizeof e);
    int rc = snap_open(fuzz_memio(), "fuzz.snap", &sp, &e);
    if (rc != 0) {
        FUZZ_CHECK(sp == NULL, "a handle on failure");
        FUZZ_CHECK(rc == -EBADMSG || rc == -ENOTSUP, "snap_open: %d", rc);
        if (rc == -EBADMSG)
            FUZZ_CHECK(strstr(e.msg, "fuzz.snap") && e.offset <= size,
                       "message '%s', offset %llu of %zu", e.msg,
                       (unsigned long long)e.offset, size);
        FUZZ_CHECK(fuzz_memio_live_maps() == 0 && fuzz_memio_open_files() == 0,
                   "a refused file left a mapping or a descriptor");
        return 0;
    }
    size_t n = snap_nsections(sp);
    FUZZ_CHECK(snap_file_size(sp) == size, "file size");
    for (size_t i = 0; i < n; i++) {
        const img_section *s = snap_section(sp, i);
        FUZZ_CHECK(s->kind != 0, "kind 0");
        if (s->page_aligned) FUZZ_CHECK(((uintptr_t)s->data & 63) == 0, "misaligned");
    }
    for (size_t i = 0; i < n;) {
        uint32_t kind = snap_section(sp, i)->kind;
        size_t j = i + 1;
        if (kind == KV_IMG_KIND) {
            while (j < n && snap_section(sp, j)->kind == KV_IMG_KIND) j++;
            load_strings(sp, i, j);
        } else if (kind == HASH_IMG_KIND) {
            load_hashes(sp, i);
        } else if (is_vec(kind)) {
            while (j < n && is_vec(snap_section(sp, j)->kind)) j++;
            load_vset(sp, i, j);
        }
        i = j;
    }
    snap_close(sp);
    FUZZ_CHECK(fuzz_memio_live_maps() == 0, "the mapping outlives every loader: bytes never released");
    FUZZ_CHECK(fuzz_memio_open_files() == 0, "a descriptor left open");
    return 0;
}

/* ---- the mutator: mutate sections, rewrite a valid file ----------------------- */

#define MAXSEC 128

typedef struct msec {
    uint32_t kind;
    int page;
    const uint8_t *p;
    size_t len;
} msec;

static const uint32_t kinds[] = {
    0x0001, 0x0002, 0x0003, 0x0010, 0x0011, 0x0100, 0x0101, 0x0102, 0x0103, 0x0104, 0x0105,
    0x0110, 0x0111, 0x0112, 0x0113, 0x0114, 0x0120, 0x0121, 0x0122, 0x0200, 0x0201,
};

static int parse(const uint8_t *d, size_t n, msec *s, size_t *ns)
{
    if (n < SNAP_HEADER_SIZE || memcmp(d, "ENGRAMSN", 8) != 0) return -1;
    uint64_t toc = le_get64(d + 40);
    uint32_t cnt = le_get32(d + 48);
    if (cnt > MAXSEC || toc > n || (n - toc) / SNAP_TOC_ENTRY < cnt) return -1;
    for (uint32_t i = 0; i < cnt; i++) {
        const uint8_t *t = d + toc + (size_t)i * SNAP_TOC_ENTRY;
        uint64_t off = le_get64(t + 8), len = le_get64(t + 16);
        if (off > n || len > n - off) return -1;
        s[i] = (msec){ le_get32(t) ? le_get32(t) : 1, le_get32(t + 4) & 1, d + off, (size_t)len };
    }
    *ns = cnt;
    return 0;
}

static size_t align_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

/* Lay the sections out as snapfile.c's writer does; 0 if over max. */
static size_t build(uint8_t *out, size_t max, const uint8_t *hdr, const msec *s, size_t ns)
{
    if (max < SNAP_HEADER_SIZE) return 0;
    memset(out, 0, SNAP_HEADER_SIZE);
    size_t off = SNAP_HEADER_SIZE;
    uint64_t offs[MAXSEC];
    for (size_t i = 0; i < ns; i++) {
        size_t at = align_up(off, s[i].page ? IMG_PAGE : 8);
        if (at > max || s[i].len > max - at) return 0;
        memset(out + off, 0, at - off);
        memcpy(out + at, s[i].p, s[i].len);
        offs[i] = at;
        off = at + s[i].len;
    }
    size_t toc = align_up(off, 8);
    if (toc > max || ns * SNAP_TOC_ENTRY > max - toc) return 0;
    memset(out + off, 0, toc - off);
    for (size_t i = 0; i < ns; i++) {
        uint8_t *t = out + toc + i * SNAP_TOC_ENTRY;
        memset(t, 0, SNAP_TOC_ENTRY);
        le_put32(t, s[i].kind);
        le_put32(t + 4, (uint32_t)s[i].page);
        le_put64(t + 8, offs[i]);
        le_put64(t + 16, s[i].len);
        le_put32(t + 24, s[i].len ? crc32c(0, s[i].p, s[i].len) : 0);
    }
    size_t size = toc + ns * SNAP_TOC_ENTRY;
    memcpy(out, "ENGRAMSN", 8);
    le_put32(out + 8, SNAP_VERSION);
    memcpy(out + 16, hdr + 16, 16);            /* seq, created_ms */
    le_put64(out + 32, size);
    le_put64(out + 40, toc);
    le_put32(out + 48, (uint32_t)ns);
    le_put32(out + 52, crc32c(0, out + toc, ns * SNAP_TOC_ENTRY));
    le_put32(out + 56, crc32c(0, out, 56));
    return size;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    uint64_t r = seed;
    uint64_t x = fuzz_rand(&r);
    msec s[MAXSEC + 1];
    size_t ns = 0;
    if (x % 6 == 0 || parse(data, size, s, &ns) < 0) return LLVMFuzzerMutate(data, size, max_size);

    uint8_t *scratch = NULL;
    switch ((x >> 8) % 12) {
    default:                                          /* a section's bytes */
        if (ns) {
            size_t i = (size_t)(fuzz_rand(&r) % ns);
            size_t cap = s[i].len * 2 + 128;
            if (cap > max_size) cap = max_size;
            if (!(scratch = malloc(cap))) abort();
            size_t keep = s[i].len < cap ? s[i].len : cap;
            memcpy(scratch, s[i].p, keep);
            s[i].len = LLVMFuzzerMutate(scratch, keep, cap);
            s[i].p = scratch;
        }
        break;
    case 6:                                           /* a kind */
        if (ns) s[fuzz_rand(&r) % ns].kind = kinds[fuzz_rand(&r) % (sizeof kinds / sizeof kinds[0])];
        break;
    case 7:                                           /* drop one */
        if (ns) {
            size_t i = (size_t)(fuzz_rand(&r) % ns);
            memmove(s + i, s + i + 1, (ns - i - 1) * sizeof *s);
            ns--;
        }
        break;
    case 8:                                           /* repeat one */
        if (ns && ns < MAXSEC) {
            size_t i = (size_t)(fuzz_rand(&r) % ns);
            memmove(s + i + 1, s + i, (ns - i) * sizeof *s);
            ns++;
        }
        break;
    case 9:                                           /* swap two neighbours */
        if (ns > 1) {
            size_t i = (size_t)(fuzz_rand(&r) % (ns - 1));
            msec t = s[i];
            s[i] = s[i + 1];
            s[i + 1] = t;
        }
        break;
    case 10:                                          /* the alignment flag */
        if (ns) s[fuzz_rand(&r) % ns].page ^= 1;
        break;
    }
    uint8_t *out = malloc(max_size ? max_size : 1);
    if (!out) abort();
    size_t len = build(out, max_size, data, s, ns);
    if (len) memcpy(data, out, len);
    free(out);
    free(scratch);
    return len ? len : LLVMFuzzerMutate(data, size, max_size);
}
