/* kv_image.h -- the keyspace written as, and loaded from, image sections.
 *
 * The keyspace is one section of kind KV_IMG_KIND (packed, not
 * page-aligned: it is always copied, never borrowed).  Its byte layout is
 * specified in the header comment of src/kv/kv_image.c: a key count, then per
 * key {flags, klen, vlen, [expiry], key, value}, little-endian.
 *
 * Threads: like kv.h, the caller's thread only.  kv_save only reads db, so
 * it may run in a forked child on the child's copy of the keyspace. */
#ifndef ENGRAM_KV_IMAGE_H
#define ENGRAM_KV_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "engram/image.h"
#include "engram/kv.h"

#define KV_IMG_KIND 0x0200u

/* Write every string key not expired at now_ms (kv.h: expired means
 * now_ms > deadline) with its value and absolute expiry, as one section
 * through s.  Keys that hold objects are left out: their owners save them.
 * db is not modified (no lazy expiry, no rehash step).
 * Returns 0, -ENOMEM, or the first error the sink reported (nothing more is
 * written after it). */
int kv_save(kv *db, int64_t now_ms, img_sink *s);

/* Load the keys of src into db, which must be empty.  Every section must
 * be of kind KV_IMG_KIND (kv_save writes one; several are loaded in turn).
 * Expiries are restored as written, including ones already past: the
 * keyspace expires those lazily or actively, as usual (the expire hook
 * fires then, not here).  Every length is checked against the section's
 * size before use: malformed input never reads out of bounds.
 * kv copies everything: when src->release is set, each section of src is
 * released (release(ud, data, len)) before kv_load returns, success or not.
 * Returns 0; -EINVAL if db is not empty; -EBADMSG if a section is
 * malformed (keys before the fault are loaded: free db or kv_clear it).
 * On failure err (if errlen > 0) holds a NUL-terminated message naming
 * the section, the byte offset inside it and the fault. */
int kv_load(kv *db, const img_source *src, char *err, size_t errlen);

#endif
