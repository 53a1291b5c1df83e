/* hash_image.h -- a keyspace's hashes written as, and loaded from, one
 * image section.
 *
 * The section is of kind HASH_IMG_KIND (packed, not page-aligned: it is
 * always copied); its byte layout is specified in the header comment of
 * src/kv/hash_image.c: a hash count, then per hash its key, key expiry,
 * flags and live fields with their deadlines, little-endian.
 *
 * The keyspace stores a hash as an object of a type byte its owner picks
 * (kv.h); these functions take that byte.
 *
 * Threads: the caller's only.  hash_image_save only reads, so it may run in
 * a forked child on the child's copy of the keyspace. */
#ifndef ENGRAM_HASH_IMAGE_H
#define ENGRAM_HASH_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "engram/hash.h"
#include "engram/image.h"
#include "engram/kv.h"

#define HASH_IMG_KIND 0x0201u

/* Write every key of db holding a hash (objects of type `type`) that is
 * live at now_ms and has a field live at now_ms, with those fields, as one
 * section through s.  db is not modified.  Returns 0 or the first error
 * the sink reported. */
int hash_image_save(kv *db, uint8_t type, int64_t now_ms, img_sink *s);

/* Load the hashes of sec into db as objects of type `type`, encoded by
 * lim; *rng (util_rand64 state) seeds their tables.  Each key must be new
 * to db.  Deadlines are restored as written, past ones included.  Every
 * count and length is checked against the section before it is used.
 * Returns 0, or -EBADMSG with a message naming the byte offset and the
 * fault in err (hashes before the fault are loaded). */
int hash_image_load(kv *db, uint8_t type, const img_section *sec, const hash_limits *lim,
                    uint64_t *rng, char *err, size_t errlen);

#endif
