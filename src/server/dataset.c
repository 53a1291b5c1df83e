/* dataset.c -- what a snapshot holds, in which sections (the container,
 * its checksums and its atomic replacement are snapfile.c's; each structure's
 * sections are its own: kv_image.c, vindex_image.c, hnsw.c, flat.c).
 *
 * Sections, in order (kinds from image.h's ranges; little-endian):
 *
 *   0x0001 META    u32 format (1), u32 number of indices, u64 keys written,
 *                  i64 created_ms, u64 seq, u32 len + engram version text
 *   0x0200 ...     the keyspace (kv_save: keys not expired at created_ms,
 *                  with absolute expiry times)
 *   then per index, in name order:
 *   0x0010 INDEX   u32 len + name bytes, u32 len + embedder name ("" = none)
 *   0x0100-0x01ff  the index's own sections (vindex_save), up to the next
 *                  INDEX section or the end
 *
 * Loading maps the file (snap_open verifies every byte first), loads the
 * keyspace (copied), and hands each index its run of sections; the big
 * arrays (vectors, layer-0 links) are used in place from the private
 * mapping, so loading a million vectors parses almost nothing.  Anything
 * that does not fit this layout is refused with the file, the section at
 * fault and what is wrong -- a file with no sections, only META, the
 * keyspace before META, more or fewer indices than META announces: a
 * damaged snapshot never loads half-way (the caller refuses to start), and
 * a refusal reads only sections that exist. */
#include "dataset.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engram/kv_image.h"
#include "engram/le.h"
#include "engram/snapfile.h"
#include "engram/vindex.h"
#include "server.h"
#include "models.h"

#define SNAPSHOT_FORMAT  1u
#define SEC_META         0x0001u
#define SEC_INDEX        0x0010u
#define SEC_VEC_FIRST    0x0100u
#define SEC_VEC_LAST     0x01ffu

static int snapshot_parent;     /* set in a snapshot child */

void dataset_set_parent(int pid) { snapshot_parent = pid; }

static int put_section(img_sink *sk, uint32_t kind, const void *p, size_t n)
{
    int rc = sk->begin(sk, kind, 0);
    if (!rc && n) rc = sk->write(sk, p, n);
    if (!rc) rc = sk->end(sk);
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
    size_t nidx = vreg_count(s->vreg);

    unsigned char meta[64 + sizeof ENGRAM_VERSION];
    size_t vlen = strlen(ENGRAM_VERSION);
    le_put32(meta, SNAPSHOT_FORMAT);
    le_put32(meta + 4, (uint32_t)nidx);
    le_put64(meta + 8, (uint64_t)kv_size(s->db));
    le_put64(meta + 16, (uint64_t)created_ms);
    le_put64(meta + 24, seq);
    le_put32(meta + 32, (uint32_t)vlen);
    memcpy(meta + 36, ENGRAM_VERSION, vlen);
    const char *what = "the header";
    rc = put_section(sk, SEC_META, meta, 36 + vlen);
    if (!rc) {
        what = "the keyspace";
        rc = kv_save(s->db, created_ms, sk);
    }
    for (size_t i = 0; i < nidx && !rc; i++) {
        vreg_entry *e = vreg_at(s->vreg, i);
        if (!e) {
            rc = -ENOMEM;
            break;
        }
        size_t nlen;
        const char *name = vreg_name(e, &nlen);
        const char *emb = models_name(e);
        size_t elen = emb ? strlen(emb) : 0;
        unsigned char hdr[4], ehdr[4];
        le_put32(hdr, (uint32_t)nlen);
        le_put32(ehdr, (uint32_t)elen);
        what = "an index";
        rc = sk->begin(sk, SEC_INDEX, 0);
        if (!rc) rc = sk->write(sk, hdr, 4);
        if (!rc && nlen) rc = sk->write(sk, name, nlen);
        if (!rc) rc = sk->write(sk, ehdr, 4);
        if (!rc && elen) rc = sk->write(sk, emb, elen);
        if (!rc) rc = sk->end(sk);
        if (!rc) rc = vindex_save(vreg_index(e), sk);
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

/* Refuse the file, naming it, the section at fault and what is wrong.
 * i may be snap_nsections(sp) for what is wrong with the file as a whole
 * (a section that is missing): no section is read then. */
static int refuse(char *err, size_t errcap, const char *path, const snap *sp, size_t i,
                  const char *what)
{
    if (i < snap_nsections(sp))
        snprintf(err, errcap, "%s: section %zu (kind 0x%04x): %s; refusing to start", path, i,
                 snap_section(sp, i)->kind, what);
    else
        snprintf(err, errcap, "%s: %s; refusing to start", path, what);
    return -1;
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
    size_t n = snap_nsections(sp);
    const char *bad = NULL;
    if (n == 0) bad = "the file has no sections (a snapshot starts with its header section)";
    else if (n == 1) bad = "no keyspace section after the header section";
    if (bad) {
        rc = refuse(err, errcap, path, sp, n, bad);
        snap_close(sp);
        return rc;
    }
    const img_section *m = snap_section(sp, 0);
    if (m->kind != SEC_META || m->len < 36 || le_get32(m->data) != SNAPSHOT_FORMAT ||
        le_get64((const unsigned char *)m->data + 24) != snap_seq(sp)) {
        rc = refuse(err, errcap, path, sp, 0, "missing or unknown header section");
        snap_close(sp);
        return rc;
    }
    if (snap_section(sp, 1)->kind != KV_IMG_KIND) {
        rc = refuse(err, errcap, path, sp, 1, "expected the keyspace section after the header");
        snap_close(sp);
        return rc;
    }
    uint32_t nidx = le_get32((const unsigned char *)m->data + 4);
    uint32_t found = 0;
    size_t i = 1;
    char e[256];
    int kv_done = 0;
    while (i < n) {
        const img_section *sec = snap_section(sp, i);
        if (sec->kind == KV_IMG_KIND && !kv_done) {
            size_t j = i;
            while (j < n && snap_section(sp, j)->kind == KV_IMG_KIND) j++;
            img_source src;
            snap_source(sp, i, j - i, &src);
            if (kv_load(s->db, &src, e, sizeof e) < 0) {
                rc = refuse(err, errcap, path, sp, i, e);
                snap_close(sp);
                return rc;
            }
            kv_done = 1;
            i = j;
            continue;
        }
        const unsigned char *d = sec->data;
        size_t nlen = 0, elen = 0;
        int ok = sec->kind == SEC_INDEX && sec->len >= 8;
        if (ok) nlen = le_get32(d);
        ok = ok && nlen <= sec->len - 8;
        if (ok) elen = le_get32(d + 4 + nlen);
        if (!ok || elen != sec->len - 8 - nlen) {
            rc = refuse(err, errcap, path, sp, i, "unexpected section");
            snap_close(sp);
            return rc;
        }
        const char *name = (const char *)d + 4, *emb = (const char *)d + 8 + nlen;
        size_t j = i + 1;
        while (j < n && snap_section(sp, j)->kind >= SEC_VEC_FIRST &&
               snap_section(sp, j)->kind <= SEC_VEC_LAST)
            j++;
        img_source src;
        vindex *v = NULL;
        snap_source(sp, i + 1, j - i - 1, &src);
        rc = vindex_load(&src, NULL, &v, e, sizeof e);
        if (rc < 0) {
            char why[400];
            snprintf(why, sizeof why, "index '%.*s': %s", (int)(nlen < 64 ? nlen : 64), name,
                     rc == -ENOMEM ? "out of memory" : e);
            rc = refuse(err, errcap, path, sp, i, why);
            snap_close(sp);
            return rc;
        }
        vreg_entry *ne;
        if (elen && models_check(s, emb, elen, vindex_dim(v), e, sizeof e) < 0) {
            vindex_free(v);
            rc = refuse(err, errcap, path, sp, i, e + 4);
            snap_close(sp);
            return rc;
        }
        if ((rc = vreg_adopt(s->vreg, name, nlen, v, &ne)) < 0) {
            vindex_free(v);
            rc = refuse(err, errcap, path, sp, i, rc == -EEXIST ? "index name repeated" : "out of memory");
            snap_close(sp);
            return rc;
        }
        if (elen && models_attach(s, ne, emb, elen) < 0) {
            rc = refuse(err, errcap, path, sp, i, "out of memory");
            snap_close(sp);
            return rc;
        }
        found++;
        i = j;
    }
    if (found != nidx) {
        char why[128];
        snprintf(why, sizeof why, "the header announces %u indices, the file holds %u", nidx, found);
        rc = refuse(err, errcap, path, sp, n, why);
        snap_close(sp);
        return rc;
    }
    *seq = snap_seq(sp);
    snap_close(sp);      /* borrowed ranges keep the mapping alive */
    return 0;
}
