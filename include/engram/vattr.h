/* vattr.h -- the attributes of a vector-set element: one JSON object,
 * validated and parsed once (VADD ... SETATTR, VSETATTR) into a compact,
 * self-contained block that a FILTER expression (vfilter.h) reads per
 * candidate without parsing JSON again.
 *
 * What the block holds (layout: src/vec/vattr_impl.h):
 *   - the JSON text exactly as given (VGETATTR, WITHATTRIBS return it);
 *   - one entry per top-level member, found by name through a 32-bit hash
 *     (duplicate names: the first one counts, as in Redis);
 *   - each member's value: a number (double), a string (decoded bytes, and
 *     the number Redis would read from it, computed now), true/false as the
 *     numbers 1/0, null, an array of such values (a tuple for `in`), or
 *     "other" (an object, or an array holding an object somewhere): a FILTER
 *     reading an "other" member is false, as in Redis.
 * It is one allocation, holds no pointers (offsets only) and never changes
 * after vattr_new, so any number of threads may read it at once with no
 * lock; replacing an element's block (VSETATTR) must wait for the searches
 * reading it, which the index's write lock already does.
 *
 * Strictness: engram validates RFC 8259 JSON (UTF-8 in strings, every
 * escape incl. \uXXXX surrogate pairs, the number grammar, no trailing
 * data) and requires an object; Redis stores any string and its filter just
 * never matches an element whose attributes it cannot read.  The server
 * picks: reject (the default: an error names the byte offset and what is
 * wrong) or keep such text as Redis does (VATTR_KEEP_INVALID).
 *
 * Ownership: vattr_new copies the text; the block belongs to the caller and
 * goes back through vattr_free with the same vec_mem.  Memory is counted in
 * the vec_mem given (NULL: the default allocator, uncounted).
 *
 * Errors: 0 or negative: VEC_ESYNTAX (malformed; *err says where and what),
 * VEC_ELIMIT (past VATTR_JSON_MAX or VATTR_DEPTH_MAX; *err too), -EINVAL
 * (empty text: Redis reads an empty attribute as "remove it", which is the
 * server's to do; or NULL text with a length), -ENOMEM.  With
 * VATTR_KEEP_INVALID only -EINVAL for NULL text and -ENOMEM remain. */
#ifndef ENGRAM_VATTR_H
#define ENGRAM_VATTR_H

#include <stddef.h>
#include <stdint.h>

#include "engram/vecbase.h"

typedef struct vattr vattr;

#define VATTR_JSON_MAX  (64u << 20) /* bytes of JSON text */
#define VATTR_DEPTH_MAX 128u        /* nesting of objects and arrays */

/* vattr_new flags. */
#define VATTR_KEEP_INVALID 1u /* malformed or non-object JSON, an empty
                               * text, or one over VATTR_JSON_MAX: keep the
                               * text in a block with no members (Redis's
                               * behaviour: filters never match it); *err
                               * still says what was wrong */

/* Where and what: offset is a byte offset into the text. what is static. */
typedef struct vattr_error {
    size_t offset;
    const char *what;
} vattr_error;

/* Parse len bytes of JSON into a new block at *out.  err may be NULL; on
 * failure *out = NULL.  With VATTR_KEEP_INVALID, malformed text still
 * returns 0 (a block vattr_valid calls 0) and fills *err; err->what is NULL
 * when the text was valid.  Never reads past json + len. */
int vattr_new(vec_mem *m, const char *json, size_t len, unsigned flags, vattr **out,
              vattr_error *err);
/* NULL: nothing. */
void vattr_free(vec_mem *m, vattr *a);

/* The JSON text as given (NUL-terminated too), and its length. */
const char *vattr_json(const vattr *a, size_t *len);
/* Bytes of the block (what vattr_new counted in its vec_mem). */
size_t vattr_size(const vattr *a);
/* 0 for a block VATTR_KEEP_INVALID kept from malformed text, else 1. */
int vattr_valid(const vattr *a);
/* Distinct top-level members. */
uint32_t vattr_count(const vattr *a);

/* ---- reading members (the filter reads them the same way) ------------- */

typedef enum vattr_type {
    VATTR_NUMBER = 1, /* num (true and false are 1 and 0) */
    VATTR_STRING,     /* str, len bytes (not NUL-terminated); num: the
                       * number Redis reads from it (0 unless the whole
                       * string is one strtod number under 256 bytes) */
    VATTR_NULL,
    VATTR_ARRAY,      /* len items, read with vattr_item */
    VATTR_NESTED,     /* an array inside an array: a tuple with no
                       * readable items */
    VATTR_OTHER       /* an object, or an array with an object inside */
} vattr_type;

/* Borrowed from the block: valid while it lives. */
typedef struct vattr_value {
    vattr_type type;
    double num;
    const char *str;
    size_t len;
    uint32_t first_; /* VATTR_ARRAY: private */
} vattr_value;

/* Member name (len bytes) into *out: 1 if present, else 0. */
int vattr_get(const vattr *a, const char *name, size_t len, vattr_value *out);
/* Item i of an array value: 1, or 0 if i is past its end. */
int vattr_item(const vattr *a, const vattr_value *arr, size_t i, vattr_value *out);

#endif
