/* dataset.c -- what a snapshot holds, in which sections (the container,
 * its checksums and its atomic replacement are snapfile.c's; each structure's
 * sections are its own: kv_image.c, vindex_image.c, hnsw.c, flat.c).
 *
 * Sections, in order (kinds from image.h's ranges; little-endian; str =
 * u32 length + bytes):
 *
 *   0x0001 META    u32 format (5), u32 vector sets in the file, u64 keys
 *                  written, i64 created_ms, u64 seq, str engram version
 *   then per database that has keys, in ascending number:
 *   0x0002 DB      u32 the database's number
 *   0x0200 ...     its string keys (kv_save: keys not expired at
 *                  created_ms, with absolute expiry times)
 *   0x0201 HASHES  its hashes (hash_image.c: keys not expired at
 *                  created_ms with a field not expired then, those fields
 *                  with their absolute deadlines); exactly one
 *   then per key of that database holding a vector set, in byte order:
 *   0x0011 VSET    str key, str embedder name ("" = none), i64 absolute
 *                  expiry ms (-1 = none), u32 the input dim of a REDUCE
 *                  projection (0 = none; the matrix follows from the two
 *                  dims, vproj.h), u64 nodes ever inserted (VINFO's
 *                  hnsw-max-node-uid)
 *   0x0100-0x01ff  the set's own sections (vindex_save), up to the next
 *                  VSET, DB or the end
 *   then, when search indices exist, last:
 *   0x0003 FTDEFS  u32 n, then per index: str name, str u32 argument count,
 *                  that many str -- FT.CREATE's arguments after the name with
 *                  FT.ALTER's additions (ftspec.c); the documents are not
 *                  saved: the indices are rebuilt from the hashes after the
 *                  load, as RediSearch rebuilds from an RDB
 *
 * Format 4 (no FTDEFS), format 3 (no HASHES section), format 2 (VSET without the last two
 * fields: no projection, nodes = the set's size) and format 1 (before
 * databases and before vector sets were keys) are still loaded: META (format 1, u32 number of indices, ...), one keyspace
 * section, then per index 0x0010 INDEX {str name, str embedder} and its
 * sections -- all into database 0, the indices as vector-set keys without
 * a TTL.
 *
 * Loading maps the file (snap_open verifies every byte first), loads each
 * keyspace section (copied), and hands each set its run of sections; the
 * big arrays (vectors, layer-0 links) are used in place from the private
 * mapping, so loading a million vectors parses almost nothing.  Anything
 * that does not fit this layout is refused with the file, the section at
 * fault and what is wrong -- a file with no sections, only META, sections
 * out of order, a database the server is not configured for (databases),
 * a number of sets other than META's: a damaged snapshot never loads
 * half-way (the caller refuses to start), and a refusal reads only
 * sections that exist.
 *
 * Threads: the loop thread at start-up (loading), the forked snapshot
 * child (saving: it reads memory without locks, as the only writer, the
 * loop thread, does not exist in the child). */
#include "dataset.h"
#include "evict.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engram/hash_image.h"
#include "engram/kv_image.h"
#include "engram/le.h"
#include "engram/mem.h"
#include "engram/snapfile.h"
#include "engram/vindex.h"
#include "ftspec.h"
#include "hkeys.h"
#include "keyspace.h"
#include "models.h"
#include "server.h"
#include "vkeys.h"

#define SNAPSHOT_FORMAT  5u
#define SEC_META         0x0001u
#define SEC_DB           0x0002u
#define SEC_FTDEFS       0x0003u     /* format 5: the search indices' definitions */
#define SEC_INDEX_V1     0x0010u
#define SEC_VSET         0x0011u
#define SEC_VEC_FIRST    0x0100u
#define SEC_VEC_LAST     0x01ffu

static int snapshot_parent;     /* set in a snapshot child */

void dataset_set_parent(int pid) { snapshot_parent = pid; }

/* ---- saving -------------------------------------------------------------- */

static int put_section(img_sink *sk, uint32_t kind, const void *p, size_t n)
{
    int rc = sk->begin(sk, kind, 0);
    if (!rc && n) rc = sk->write(sk, p, n);
    if (!rc) rc = sk->end(sk);
    return rc;
}

/* The vector-set keys of one database that are alive at `now`. */
typedef struct vset_keys {
    kv_entry **e;
    size_t n, cap;
    int64_t now;
} vset_keys;

static void collect_vset(void *ud, kv_entry *e)
{
    vset_keys *k = ud;
    int64_t at = kv_get_expire(e);
    if (kv_type(e) != OBJ_VSET || (at != -1 && k->now > at)) return;
    if (k->n == k->cap) {
        k->cap = k->cap ? k->cap * 2 : 16;
        k->e = mem_realloc(k->e, k->cap * sizeof *k->e);
    }
    k->e[k->n++] = e;
}

static int key_cmp(const void *a, const void *b)
{
    size_t la, lb;
    const char *ka = kv_key(*(kv_entry *const *)a, &la), *kb = kv_key(*(kv_entry *const *)b, &lb);
    int r = memcmp(ka, kb, la < lb ? la : lb);
    return r ? r : (la > lb) - (la < lb);
}

static void count_vset(void *ud, kv_entry *e)
{
    vset_keys *k = ud;
    int64_t at = kv_get_expire(e);
    if (kv_type(e) == OBJ_VSET && (at == -1 || k->now <= at)) k->n++;
}

static int save_vset(img_sink *sk, kv_entry *e)
{
    size_t klen;
    const char *key = kv_key(e, &klen);
    vset *set = kv_obj(e);
    const char *emb = models_name(set);
    size_t elen = emb ? strlen(emb) : 0;
    unsigned char h[8];
    int rc = sk->begin(sk, SEC_VSET, 0);
    le_put32(h, (uint32_t)klen);
    if (!rc) rc = sk->write(sk, h, 4);
    if (!rc && klen) rc = sk->write(sk, key, klen);
    le_put32(h, (uint32_t)elen);
    if (!rc) rc = sk->write(sk, h, 4);
    if (!rc && elen) rc = sk->write(sk, emb, elen);
    le_put64(h, (uint64_t)kv_get_expire(e));
    if (!rc) rc = sk->write(sk, h, 8);
    const vproj *pj = vset_projection(set);
    le_put32(h, pj ? vproj_in_dim(pj) : 0);
    if (!rc) rc = sk->write(sk, h, 4);
    le_put64(h, vset_nodes(set));
    if (!rc) rc = sk->write(sk, h, 8);
    if (!rc) rc = sk->end(sk);
    if (!rc) rc = vindex_save(vset_index(set), sk);
    return rc;
}

/* Database db's sections: DB, its strings, its hashes, its vector sets. */
static int save_db(server *s, int db, int64_t created_ms, img_sink *sk, const char **what)
{
    unsigned char h[4];
    le_put32(h, (uint32_t)db);
    *what = "a database";
    int rc = put_section(sk, SEC_DB, h, 4);
    if (!rc) {
        *what = "a keyspace";
        rc = kv_save(db_kv(s, db), created_ms, sk);
    }
    if (!rc) {
        *what = "the hashes";
        rc = hash_image_save(db_kv(s, db), OBJ_HASH, created_ms, sk);
    }
    vset_keys k = {NULL, 0, 0, created_ms};
    kv_foreach(db_kv(s, db), collect_vset, &k);
    if (k.n) qsort(k.e, k.n, sizeof *k.e, key_cmp);
    *what = "a vector set";
    for (size_t i = 0; i < k.n && !rc; i++) rc = save_vset(sk, k.e[i]);
    mem_free(k.e);
    return rc;
}

int dataset_save(server *s, io_ops *io, const char *dir, uint64_t seq, int64_t created_ms,
                 char *err, size_t errcap)
{
    char tmp[4096], final[4096];
    snprintf(tmp, sizeof tmp, "%s/engram.snap.tmp.%d", dir, (int)getpid());
    snprintf(final, sizeof final, "%s/engram.snap", dir);
    snap_writer *w;
    int rc = snap_writer_open(io, tmp, seq, created_ms, &w);
    if (rc < 0) {
        snprintf(err, errcap, "can't create %s: %s", tmp, strerror(-rc));
        return -1;
    }
    img_sink *sk = snap_writer_sink(w);
    vset_keys count = {NULL, 0, 0, created_ms};
    uint64_t keys = 0;
    for (int db = 0; db < s->ndbs; db++) {
        kv_foreach(db_kv(s, db), count_vset, &count);
        keys += kv_size(db_kv(s, db));
    }
    unsigned char meta[64 + sizeof ENGRAM_VERSION];
    size_t vlen = strlen(ENGRAM_VERSION);
    le_put32(meta, SNAPSHOT_FORMAT);
    le_put32(meta + 4, (uint32_t)count.n);
    le_put64(meta + 8, keys);
    le_put64(meta + 16, (uint64_t)created_ms);
    le_put64(meta + 24, seq);
    le_put32(meta + 32, (uint32_t)vlen);
    memcpy(meta + 36, ENGRAM_VERSION, vlen);
    const char *what = "the header";
    rc = put_section(sk, SEC_META, meta, 36 + vlen);
    for (int db = 0; db < s->ndbs && !rc; db++)
        if (kv_size(db_kv(s, db))) rc = save_db(s, db, created_ms, sk, &what);
    if (!rc && ft_count(s)) {
        unsigned char *defs;
        size_t dlen;
        ft_defs_encode(s, &defs, &dlen);
        what = "the search index definitions";
        rc = put_section(sk, SEC_FTDEFS, defs, dlen);
        mem_free(defs);
    }
    if (rc < 0) {
        snprintf(err, errcap, "writing %s to %s: %s", what, tmp, strerror(-rc));
        snap_writer_abort(w);
        return -1;
    }
    if (snapshot_parent && getppid() != snapshot_parent) {
        snprintf(err, errcap, "the server exited while its snapshot was written; discarded");
        snap_writer_abort(w);
        return -1;
    }
    if ((rc = snap_writer_commit(w, final)) < 0) {
        snprintf(err, errcap, "committing %s: %s", final, strerror(-rc));
        return -1;
    }
    return 0;
}

/* ---- loading ------------------------------------------------------------- */

typedef struct loader {
    server *s;
    snap *sp;
    const char *path;
    size_t n;               /* sections */
    uint32_t format;
    char *err;
    size_t errcap;
} loader;

/* Refuse the file, naming it, the section at fault and what is wrong.
 * i may be L->n for what is wrong with the file as a whole (a section
 * that is missing): no section is read then.  Returns -1. */
static int refuse(loader *L, size_t i, const char *what)
{
    if (i < L->n)
        snprintf(L->err, L->errcap, "%s: section %zu (kind 0x%04x): %s; refusing to start",
                 L->path, i, snap_section(L->sp, i)->kind, what);
    else
        snprintf(L->err, L->errcap, "%s: %s; refusing to start", L->path, what);
    return -1;
}

/* Read a str at *at of sec (bounded by sec->len); 0 or -1. */
static int get_str(const img_section *sec, size_t *at, const char **p, size_t *len)
{
    const unsigned char *d = sec->data;
    if (sec->len - *at < 4) return -1;
    size_t l = le_get32(d + *at);
    if (l > sec->len - *at - 4) return -1;
    *p = (const char *)d + *at + 4;
    *len = l;
    *at += 4 + l;
    return 0;
}

/* Sections [i, *end) of a vector set's own kinds, from i on. */
static size_t vec_run_end(loader *L, size_t i)
{
    while (i < L->n && snap_section(L->sp, i)->kind >= SEC_VEC_FIRST &&
           snap_section(L->sp, i)->kind <= SEC_VEC_LAST)
        i++;
    return i;
}

/* The set whose header is section i (VSET, or INDEX in format 1) and whose
 * sections follow, into database db.  Returns the index past its run, or
 * 0 after refusing. */
static size_t load_vset(loader *L, int db, size_t i)
{
    const img_section *sec = snap_section(L->sp, i);
    const char *key, *emb;
    size_t klen, elen, at = 0;
    int64_t expire = -1;
    uint32_t proj_in = 0;
    uint64_t nodes = 0;
    int has_nodes = 0;
    int ok = get_str(sec, &at, &key, &klen) == 0 && get_str(sec, &at, &emb, &elen) == 0;
    if (ok && L->format >= 2) {
        const unsigned char *b = (const unsigned char *)sec->data + at;
        ok = sec->len - at == (L->format >= 3 ? 20u : 8u);
        if (ok) expire = (int64_t)le_get64(b);
        if (ok && L->format >= 3) {
            proj_in = le_get32(b + 8);
            nodes = le_get64(b + 12);
            has_nodes = 1;
        }
        ok = ok && expire >= -1;
    } else {
        ok = ok && at == sec->len;
    }
    if (!ok) return refuse(L, i, "malformed vector-set header"), 0;
    if (kv_peek(db_kv(L->s, db), key, klen)) return refuse(L, i, "a key repeated"), 0;
    size_t j = vec_run_end(L, i + 1);
    img_source src;
    vindex *v = NULL;
    char e[256];
    snap_source(L->sp, i + 1, j - i - 1, &src);
    vindex_load_opts o = {.alloc = &evict_vec_allocator};     /* counted: evict.h */
    int rc = vindex_load(&src, &o, &v, e, sizeof e);
    if (rc < 0) {
        char why[400];
        snprintf(why, sizeof why, "vector set '%.*s': %s", (int)(klen < 64 ? klen : 64), key,
                 rc == -ENOMEM ? "out of memory" : e);
        return refuse(L, i, why), 0;
    }
    if (elen && models_check(L->s, emb, elen, vindex_dim(v), e, sizeof e) < 0) {
        vindex_free(v);
        return refuse(L, i, e + 4), 0;
    }
    if (proj_in && (proj_in < vindex_dim(v) || proj_in > VINDEX_DIM_MAX ||
                    vindex_type_of(v) != VINDEX_HNSW)) {
        vindex_free(v);
        return refuse(L, i, "vector set with a projection from fewer dimensions than it has"), 0;
    }
    vset *set = vset_adopt(v);
    if (!set) {
        vindex_free(v);
        return refuse(L, i, "out of memory"), 0;
    }
    vset_set_nodes(set, has_nodes ? nodes : vindex_count(v));
    if (proj_in && vset_set_projection(set, proj_in) != 0) {
        vset_release(set);
        return refuse(L, i, "out of memory"), 0;
    }
    if (vkey_adopt(L->s, db, key, klen, set, emb, elen, e, sizeof e) < 0)
        return refuse(L, i, e + 4), 0;
    if (expire != -1) kv_set_expire(db_kv(L->s, db), kv_peek(db_kv(L->s, db), key, klen), expire);
    return j;
}

/* The keyspace sections from i on into database db; the index past them,
 * or 0 after refusing. */
static size_t load_strings(loader *L, int db, size_t i)
{
    size_t j = i;
    while (j < L->n && snap_section(L->sp, j)->kind == KV_IMG_KIND) j++;
    if (j == i) return refuse(L, i < L->n ? i : L->n, "expected a keyspace section"), 0;
    img_source src;
    char e[256];
    snap_source(L->sp, i, j - i, &src);
    if (kv_load(db_kv(L->s, db), &src, e, sizeof e) < 0) return refuse(L, i, e), 0;
    return j;
}

/* Format 4's HASHES section at i into database db; the index past it, or 0
 * after refusing. */
static size_t load_hashes(loader *L, int db, size_t i)
{
    if (i >= L->n || snap_section(L->sp, i)->kind != HASH_IMG_KIND)
        return refuse(L, i < L->n ? i : L->n, "expected a hashes section"), 0;
    img_source src;
    char e[256];
    hash_limits lim = hkey_limits(L->s);
    snap_source(L->sp, i, 1, &src);
    int rc = hash_image_load(db_kv(L->s, db), OBJ_HASH, &src.sec[0], &lim, &L->s->rng, e, sizeof e);
    src.release(src.release_ud, src.sec[0].data, src.sec[0].len);
    if (rc < 0) return refuse(L, i, e), 0;
    return i + 1;
}

/* Formats 2 to 5: per database, DB then its strings (then its hashes, from
 * format 4) then its sets; from format 5, the search indices' definitions
 * last, when there are any. */
static int load_v2(loader *L, uint32_t *sets)
{
    size_t i = 1;
    int last = -1;
    while (i < L->n) {
        const img_section *sec = snap_section(L->sp, i);
        if (L->format >= 5 && sec->kind == SEC_FTDEFS && i == L->n - 1) {
            char why[300];
            if (ft_defs_decode(L->s, sec->data, sec->len, why, sizeof why) < 0)
                return refuse(L, i, why);
            return 0;
        }
        if (sec->kind != SEC_DB || sec->len != 4) return refuse(L, i, "expected a database section");
        uint32_t db = le_get32(sec->data);
        char why[160];
        if (db >= (uint32_t)L->s->ndbs) {
            snprintf(why, sizeof why, "database %u, but the server has %d (raise databases)", db,
                     L->s->ndbs);
            return refuse(L, i, why);
        }
        if ((int)db <= last) return refuse(L, i, "databases out of order");
        last = (int)db;
        if (!(i = load_strings(L, (int)db, i + 1))) return -1;
        if (L->format >= 4 && !(i = load_hashes(L, (int)db, i))) return -1;
        while (i < L->n && snap_section(L->sp, i)->kind == SEC_VSET) {
            if (!(i = load_vset(L, (int)db, i))) return -1;
            (*sets)++;
        }
    }
    return 0;
}

/* Format 1: one keyspace, then INDEX runs, all database 0. */
static int load_v1(loader *L, uint32_t *sets)
{
    size_t i = load_strings(L, 0, 1);
    if (!i) return -1;
    while (i < L->n) {
        if (snap_section(L->sp, i)->kind != SEC_INDEX_V1) return refuse(L, i, "unexpected section");
        if (!(i = load_vset(L, 0, i))) return -1;
        (*sets)++;
    }
    return 0;
}

int dataset_load(server *s, const char *path, uint64_t *seq, char *err, size_t errcap)
{
    snap *sp;
    snap_error se;
    /* The mapping's releases may run on a search worker (the last
     * reference to a dropped index), so it gets the thread-safe io_posix,
     * never the loop's fault injector. */
    int rc = snap_open(io_posix(), path, &sp, &se);
    if (rc == -ENOENT) return -ENOENT;
    if (rc < 0) {
        if (rc == -EBADMSG) snprintf(err, errcap, "%s; refusing to start", se.msg);
        else if (rc == -ENOTSUP) snprintf(err, errcap, "%s: unknown snapshot format version "
                                          "(written by a newer engram?)", path);
        else snprintf(err, errcap, "can't read %s: %s", path, strerror(-rc));
        return -1;
    }
    loader L = {s, sp, path, snap_nsections(sp), 0, err, errcap};
    const img_section *m = L.n ? snap_section(sp, 0) : NULL;
    if (L.n == 0) rc = refuse(&L, L.n, "the file has no sections (a snapshot starts with its "
                                       "header section)");
    else if (m->kind != SEC_META || m->len < 36 ||
             (le_get32(m->data) < 1 || le_get32(m->data) > SNAPSHOT_FORMAT) ||
             le_get64((const unsigned char *)m->data + 24) != snap_seq(sp))
        rc = refuse(&L, 0, "missing or unknown header section");
    else if (L.n == 1 && le_get32(m->data) == 1)
        rc = refuse(&L, L.n, "no keyspace section after the header section");
    if (rc < 0) {
        snap_close(sp);
        return rc;
    }
    L.format = le_get32(m->data);
    uint32_t want = le_get32((const unsigned char *)m->data + 4), sets = 0;
    rc = L.format == 1 ? load_v1(&L, &sets) : load_v2(&L, &sets);
    if (rc == 0 && sets != want) {
        char why[128];
        snprintf(why, sizeof why, "the header announces %u vector sets, the file holds %u", want,
                 sets);
        rc = refuse(&L, L.n, why);
    }
    if (rc == 0) *seq = snap_seq(sp);
    snap_close(sp);      /* borrowed ranges keep the mapping alive */
    return rc;
}
