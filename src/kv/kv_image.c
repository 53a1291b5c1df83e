/* kv_image.c -- the keyspace as an image section (save and load).
 *
 * This comment is the section's specification.
 *
 * SECTION LAYOUT (kind 0x0200, packed; all integers little-endian)
 *
 *     offset  size  field
 *          0     8  count: the number of records that follow
 *          8        count records, back to back, then nothing
 *
 *   Record (9 or 17 bytes + klen + vlen)
 *     offset  size  field
 *          0     1  flags: bit 0 = the key has an expiry; other bits zero
 *          1     4  klen, <= 2^32 - 2 (kv's limit)
 *          5     4  vlen, <= 2^32 - 2
 *          9     8  expiry: absolute Unix time in ms, >= 0 (only if bit 0)
 *      9 / 17  klen  key bytes (binary; may hold NULs; may be empty)
 *             vlen  value bytes
 *
 * Keys without a TTL pay no expiry field.  No checksum here: the snapshot
 * container checksums every section.  The loader still trusts nothing: the
 * count must fit the section (each record takes at least 9 bytes), every
 * length is checked against the bytes left before it is used, reserved
 * flag bits must be zero, an expiry must not be negative, a key may occur
 * only once, and the records must end exactly at the section's end.
 *
 * Saving skips keys that are expired at now_ms (they would be deleted on
 * first touch anyway); loading keeps every expiry as written, so a key
 * whose deadline passed between save and load is expired by the keyspace
 * as usual.  kv_save walks the keyspace twice (count, then records) with
 * kv_foreach, which never modifies it, and stages small records in a
 * 64 KiB buffer so the sink sees large writes; a large value goes to the
 * sink directly.
 *
 * Threads: the caller's (kv is single-threaded). */
#include "engram/kv_image.h"

#include "engram/le.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KVI_HAS_EXPIRY 1u
#define KVI_MAX_LEN    (UINT32_MAX - 1)     /* kv.h: 4 GiB - 2 */
#define KVI_REC_MIN    9u                   /* flags + klen + vlen */
#define KVI_STAGE      (64u * 1024)

/* ---- save ---------------------------------------------------------------- */

typedef struct saver {
    img_sink *s;
    int64_t now;
    int err;                    /* first sink error; later keys are skipped */
    uint64_t count;
    uint8_t *stage;
    size_t len;
} saver;

/* A key kv_save writes: a string (objects are their owners' to save),
 * not expired at now. */
static int live_at(const kv_entry *e, int64_t now)
{
    int64_t at = kv_get_expire(e);
    return kv_type(e) == KV_STRING && (at == -1 || now <= at);
}

static void count_key(void *ud, kv_entry *e)
{
    saver *sv = ud;
    if (live_at(e, sv->now)) sv->count++;
}

static int stage_flush(saver *sv)
{
    int rc = sv->len ? sv->s->write(sv->s, sv->stage, sv->len) : 0;
    sv->len = 0;
    return rc;
}

/* Append n bytes: staged if they fit, else straight to the sink. */
static int stage_put(saver *sv, const void *p, size_t n)
{
    if (sv->len + n > KVI_STAGE) {
        int rc = stage_flush(sv);
        if (rc < 0) return rc;
        if (n > KVI_STAGE / 2) return sv->s->write(sv->s, p, n);
    }
    memcpy(sv->stage + sv->len, p, n);
    sv->len += n;
    return 0;
}

static void save_key(void *ud, kv_entry *e)
{
    saver *sv = ud;
    size_t klen, vlen;
    uint8_t h[17];
    if (sv->err || !live_at(e, sv->now)) return;
    const char *k = kv_key(e, &klen), *v = kv_val(e, &vlen);
    int64_t at = kv_get_expire(e);
    h[0] = at == -1 ? 0 : KVI_HAS_EXPIRY;
    le_put32(h + 1, (uint32_t)klen);
    le_put32(h + 5, (uint32_t)vlen);
    if (at != -1) le_put64(h + 9, (uint64_t)at);
    int rc = stage_put(sv, h, at == -1 ? 9 : 17);
    if (rc == 0) rc = stage_put(sv, k, klen);
    if (rc == 0) rc = stage_put(sv, v, vlen);
    if (rc < 0) sv->err = rc;
    else sv->count--;
}

int kv_save(kv *db, int64_t now_ms, img_sink *s)
{
    saver sv = { s, now_ms, 0, 0, NULL, 0 };
    uint8_t c[8];
    if (!(sv.stage = malloc(KVI_STAGE))) return -ENOMEM;
    kv_foreach(db, count_key, &sv);
    le_put64(c, sv.count);
    int rc = s->begin(s, KV_IMG_KIND, 0);
    if (rc == 0) rc = s->write(s, c, sizeof c);
    if (rc == 0) {
        kv_foreach(db, save_key, &sv);
        rc = sv.err;
    }
    if (rc == 0) rc = stage_flush(&sv);
    /* The count was promised up front; the second walk must agree. */
    if (rc == 0 && sv.count != 0) rc = -EINVAL;
    if (rc == 0) rc = s->end(s);
    free(sv.stage);
    return rc;
}

/* ---- load ---------------------------------------------------------------- */

static int bad(char *err, size_t errlen, const char *fmt, ...)
{
    if (errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -EBADMSG;
}

/* Load one section; idx names it in messages. */
static int load_section(kv *db, const img_section *sec, size_t idx, char *err, size_t errlen)
{
    const uint8_t *p = sec->data;
    size_t len = sec->len, off = 8;
    if (sec->kind != KV_IMG_KIND)
        return bad(err, errlen, "keyspace section %zu: unexpected kind 0x%" PRIx32, idx, sec->kind);
    if (len < 8)
        return bad(err, errlen, "keyspace section %zu at byte 0: %zu bytes, too short for the key count", idx, len);
    uint64_t count = le_get64(p);
    if (count > (len - 8) / KVI_REC_MIN)
        return bad(err, errlen, "keyspace section %zu at byte 0: %" PRIu64 " keys cannot fit in %zu bytes",
                   idx, count, len);
    for (uint64_t i = 0; i < count; i++) {
        size_t rec = off;
        if (len - off < KVI_REC_MIN)
            return bad(err, errlen, "keyspace section %zu at byte %zu: record %" PRIu64 " runs past the end",
                       idx, rec, i);
        uint8_t flags = p[off];
        uint32_t klen = le_get32(p + off + 1), vlen = le_get32(p + off + 5);
        int64_t at = -1;
        off += KVI_REC_MIN;
        if (flags & ~KVI_HAS_EXPIRY)
            return bad(err, errlen, "keyspace section %zu at byte %zu: record %" PRIu64 " has unknown flags 0x%x",
                       idx, rec, i, flags);
        if (klen > KVI_MAX_LEN || vlen > KVI_MAX_LEN)
            return bad(err, errlen, "keyspace section %zu at byte %zu: record %" PRIu64 " length over the 4 GiB - 2 limit",
                       idx, rec, i);
        if (flags & KVI_HAS_EXPIRY) {
            if (len - off < 8)
                return bad(err, errlen, "keyspace section %zu at byte %zu: record %" PRIu64 " runs past the end",
                           idx, rec, i);
            at = (int64_t)le_get64(p + off);
            off += 8;
            if (at < 0)
                return bad(err, errlen, "keyspace section %zu at byte %zu: record %" PRIu64 " has a negative expiry",
                           idx, rec, i);
        }
        if (len - off < (uint64_t)klen + vlen)
            return bad(err, errlen, "keyspace section %zu at byte %zu: record %" PRIu64 " (key %" PRIu32
                       " + value %" PRIu32 " bytes) runs past the end (%zu bytes left)",
                       idx, rec, i, klen, vlen, len - off);
        int created = 0;
        kv_entry *e = kv_set(db, p + off, klen, p + off + klen, vlen, &created);
        if (!created)
            return bad(err, errlen, "keyspace section %zu at byte %zu: record %" PRIu64 " repeats a key",
                       idx, rec, i);
        if (at != -1) kv_set_expire(db, e, at);
        off += (size_t)klen + vlen;
    }
    if (off != len)
        return bad(err, errlen, "keyspace section %zu at byte %zu: %zu bytes after the last record",
                   idx, off, len - off);
    return 0;
}

int kv_load(kv *db, const img_source *src, char *err, size_t errlen)
{
    int rc = 0;
    if (errlen > 0) err[0] = '\0';
    if (kv_size(db) != 0) {
        rc = -EINVAL;
        if (errlen > 0) snprintf(err, errlen, "keyspace load: the keyspace is not empty");
    }
    for (size_t i = 0; rc == 0 && i < src->n; i++)
        rc = load_section(db, &src->sec[i], i, err, errlen);
    if (src->release)
        for (size_t i = 0; i < src->n; i++)
            src->release(src->release_ud, src->sec[i].data, src->sec[i].len);
    return rc;
}
