/* hash_image.c -- a keyspace's hashes as one image section (save and load).
 *
 * This comment is the section's specification.
 *
 * SECTION LAYOUT (kind 0x0201, packed; all integers little-endian)
 *
 *     offset  size  field
 *          0     8  count: the number of hash records that follow
 *          8        count hash records, back to back, then nothing
 *
 *   Hash record (9 or 17 bytes + klen, then its fields)
 *          0     1  flags: bit 0 = the key has an expiry; bit 1 = the hash
 *                   keeps deadlines in its compact form (OBJECT ENCODING
 *                   listpackex) even if none is set; other bits zero
 *          1     4  klen, <= 2^32 - 2
 *          5     4  nfields, >= 1
 *          9     8  key expiry: absolute Unix time in ms, >= 0 (only if bit 0)
 *      9 / 17  klen  key bytes
 *                   nfields field records
 *
 *   Field record (9 or 17 bytes + flen + vlen)
 *          0     1  flags: bit 0 = the field has a deadline; other bits zero
 *          1     4  flen, <= 2^32 - 2
 *          5     4  vlen, <= 2^32 - 2
 *          9     8  deadline: absolute Unix time in ms, >= 0 (only if bit 0)
 *      9 / 17  flen  field bytes, then vlen value bytes
 *
 * Saving writes the hashes whose key is live at now and that have a live
 * field then, and only their live fields, in hash_foreach's order: loading
 * appends them in that order (hash_append), so a compact hash comes back
 * in the order it had -- insertion order, or by deadline (a table's
 * fields, in no order, find their places).  The encoding is
 * chosen again by the loader's limits (a table of 10 fields comes back
 * compact, as Redis's RDB loading does), except that bit 1 brings back a
 * listpackex.  No checksum here: the snapshot container checksums every
 * section.  The loader still trusts nothing: each count must fit the bytes
 * left (every record takes at least 9), every length is checked before it
 * is used, reserved flag bits must be zero, expiries must not be negative,
 * a key may occur once (and must be new to the keyspace), a field once
 * per hash, and the records must end exactly at the section's end.
 *
 * Threads: the caller's (kv and hash are single-threaded). */
#include "engram/hash_image.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engram/img_out.h"
#include "engram/le.h"
#include "engram/util.h"

#define HI_KEY_EXPIRY 1u
#define HI_COMPACT_TTL 2u
#define HI_FIELD_EXPIRY 1u
#define HI_MAX_LEN (UINT32_MAX - 1)
#define HI_REC_MIN 9u

/* ---- save ---------------------------------------------------------------------------- */

typedef struct saver {
    uint8_t type;
    int64_t now;
    uint64_t count;
    img_out out;
} saver;

/* The hash e holds if it is one to save (live key, a live field), else NULL. */
static hash *savable(const saver *sv, kv_entry *e, size_t *live)
{
    int64_t at = kv_get_expire(e);
    if (kv_type(e) != sv->type || (at != -1 && sv->now > at)) return NULL;
    hash *h = kv_obj(e);
    *live = hash_count_live(h, sv->now);
    return *live ? h : NULL;
}

static void count_hash(void *ud, kv_entry *e)
{
    saver *sv = ud;
    size_t live;
    if (savable(sv, e, &live)) sv->count++;
}

static void save_field(void *ud, const char *f, size_t flen, const char *v, size_t vlen,
                       int64_t exp)
{
    img_out *o = ud;
    uint8_t h[17];
    h[0] = exp >= 0 ? HI_FIELD_EXPIRY : 0;
    le_put32(h + 1, (uint32_t)flen);
    le_put32(h + 5, (uint32_t)vlen);
    if (exp >= 0) le_put64(h + 9, (uint64_t)exp);
    img_out_put(o, h, exp >= 0 ? 17 : 9);
    img_out_put(o, f, flen);
    img_out_put(o, v, vlen);
}

static void save_hash(void *ud, kv_entry *e)
{
    saver *sv = ud;
    size_t live, klen;
    hash *hs = savable(sv, e, &live);
    if (!hs || sv->out.rc) return;
    const char *key = kv_key(e, &klen);
    int64_t at = kv_get_expire(e);
    uint8_t h[17];
    h[0] = (uint8_t)((at != -1 ? HI_KEY_EXPIRY : 0) |
                     (hash_encoding(hs) == HASH_COMPACT_TTL ? HI_COMPACT_TTL : 0));
    le_put32(h + 1, (uint32_t)klen);
    le_put32(h + 5, (uint32_t)live);
    if (at != -1) le_put64(h + 9, (uint64_t)at);
    img_out_put(&sv->out, h, at != -1 ? 17 : 9);
    img_out_put(&sv->out, key, klen);
    hash_foreach(hs, sv->now, save_field, &sv->out);
    sv->count--;
}

int hash_image_save(kv *db, uint8_t type, int64_t now_ms, img_sink *s)
{
    saver *sv = calloc(1, sizeof *sv);
    if (!sv) return -ENOMEM;
    sv->type = type;
    sv->now = now_ms;
    sv->out.s = s;
    kv_foreach(db, count_hash, sv);
    uint8_t c[8];
    le_put64(c, sv->count);
    img_out_begin(&sv->out, HASH_IMG_KIND, 0);
    img_out_put(&sv->out, c, sizeof c);
    kv_foreach(db, save_hash, sv);
    img_out_end(&sv->out);
    /* The count was promised up front; the second walk must agree. */
    int rc = sv->out.rc ? sv->out.rc : sv->count ? -EINVAL : 0;
    free(sv);
    return rc;
}

/* ---- load ---------------------------------------------------------------------------- */

typedef struct loader {
    const uint8_t *p;
    size_t len, off;
    char *err;
    size_t errlen;
} loader;

static int bad(loader *L, size_t at, const char *fmt, ...)
{
    if (L->errlen > 0) {
        char what[200];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        snprintf(L->err, L->errlen, "hash section at byte %zu: %s", at, what);
    }
    return -EBADMSG;
}

/* A record head at L->off: flags, two lengths and an optional expiry
 * (flags & has_expiry); 0 or -EBADMSG. */
static int read_head(loader *L, unsigned allowed, unsigned has_expiry, uint8_t *flags, uint32_t *a,
                     uint32_t *b, int64_t *exp, const char *what)
{
    size_t at = L->off;
    if (L->len - L->off < HI_REC_MIN) return bad(L, at, "%s runs past the end", what);
    *flags = L->p[L->off];
    *a = le_get32(L->p + L->off + 1);
    *b = le_get32(L->p + L->off + 5);
    L->off += HI_REC_MIN;
    *exp = -1;
    if (*flags & ~allowed) return bad(L, at, "%s has unknown flags 0x%x", what, *flags);
    if (*flags & has_expiry) {
        if (L->len - L->off < 8) return bad(L, at, "%s runs past the end", what);
        *exp = (int64_t)le_get64(L->p + L->off);
        L->off += 8;
        if (*exp < 0) return bad(L, at, "%s has a negative expiry", what);
    }
    return 0;
}

static int load_fields(loader *L, hash *h, uint32_t n, const hash_limits *lim)
{
    for (uint32_t i = 0; i < n; i++) {
        size_t at = L->off;
        uint8_t flags;
        uint32_t flen, vlen;
        int64_t exp;
        int rc = read_head(L, HI_FIELD_EXPIRY, HI_FIELD_EXPIRY, &flags, &flen, &vlen, &exp, "a field");
        if (rc < 0) return rc;
        if (flen > HI_MAX_LEN || vlen > HI_MAX_LEN)
            return bad(L, at, "a field's length is over the 4 GiB - 2 limit");
        if (L->len - L->off < (uint64_t)flen + vlen)
            return bad(L, at, "a field (%" PRIu32 " + %" PRIu32 " bytes) runs past the end", flen, vlen);
        const uint8_t *f = L->p + L->off;
        if (hash_append(h, f, flen, f + flen, vlen, exp, lim) < 0)
            return bad(L, at, "a field repeated");
        L->off += (size_t)flen + vlen;
    }
    return 0;
}

static int load_hash(loader *L, kv *db, uint8_t type, const hash_limits *lim, uint64_t *rng)
{
    size_t at = L->off;
    uint8_t flags;
    uint32_t klen, n;
    int64_t exp;
    int rc = read_head(L, HI_KEY_EXPIRY | HI_COMPACT_TTL, HI_KEY_EXPIRY, &flags, &klen, &n, &exp,
                       "a hash");
    if (rc < 0) return rc;
    if (klen > HI_MAX_LEN) return bad(L, at, "a key's length is over the 4 GiB - 2 limit");
    if (L->len - L->off < klen) return bad(L, at, "a key (%" PRIu32 " bytes) runs past the end", klen);
    const uint8_t *key = L->p + L->off;
    L->off += klen;
    if (n == 0 || n > (L->len - L->off) / HI_REC_MIN)
        return bad(L, at, "%" PRIu32 " fields cannot fit in what is left", n);
    if (kv_peek(db, key, klen)) return bad(L, at, "a key repeated");
    hash *h = hash_new(util_rand64(rng));
    if (flags & HI_COMPACT_TTL) hash_enable_ttl(h);
    if ((rc = load_fields(L, h, n, lim)) < 0) {
        hash_free(h);
        return rc;
    }
    kv_entry *e = kv_set_obj(db, key, klen, type, h, NULL);
    if (exp != -1) kv_set_expire(db, e, exp);
    return 0;
}

int hash_image_load(kv *db, uint8_t type, const img_section *sec, const hash_limits *lim,
                    uint64_t *rng, char *err, size_t errlen)
{
    loader L = {sec->data, sec->len, 8, err, errlen};
    if (errlen > 0) err[0] = '\0';
    if (sec->kind != HASH_IMG_KIND) return bad(&L, 0, "unexpected kind 0x%" PRIx32, sec->kind);
    if (sec->len < 8) return bad(&L, 0, "%zu bytes, too short for the count", sec->len);
    uint64_t count = le_get64(L.p);
    if (count > (sec->len - 8) / HI_REC_MIN)
        return bad(&L, 0, "%" PRIu64 " hashes cannot fit in %zu bytes", count, sec->len);
    for (uint64_t i = 0; i < count; i++) {
        int rc = load_hash(&L, db, type, lim, rng);
        if (rc < 0) return rc;
    }
    if (L.off != L.len) return bad(&L, L.off, "%zu bytes after the last hash", L.len - L.off);
    return 0;
}
