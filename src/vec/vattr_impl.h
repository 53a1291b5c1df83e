/* vattr_impl.h -- the attribute block's layout, private to src/vec/: vattr.c
 * writes it, vfilter.c reads it once per candidate (so the lookup is inline
 * here), and both use the same value record and string rules.
 *
 * Block layout (one allocation, native endianness, in memory only: what
 * persists is the JSON text, parsed again on load):
 *
 *   struct vattr              40 bytes, below
 *   uint32_t hash[nfields]    FNV-1a of each name, ascending, right after
 *                             the header (the lookup's scan starts in the
 *                             header's cache line)
 *   vattr_field field[]       at field_off (8-aligned), in hash order, names
 *                             unique (room for the members counted before
 *                             duplicates went: a few spare records then)
 *   vattr_val item[nitems]    at item_off: the items of the top-level arrays,
 *                             each array's items contiguous
 *   char str[]                at str_off: the decoded bytes of the names and
 *                             strings that hold escapes
 *   char json[json_len + 1]   at json_off: the text as given, NUL-terminated;
 *                             a name or string without escapes is read here
 *
 * A string's offset (in a vattr_val or vattr_field) is from the start of
 * the block, wherever its bytes are; an array's is the index of its first
 * item.  A member costs 28 bytes (hash and field) and an item 16, besides
 * the text (bench/bench_filter.c reports the total). */
#ifndef ENGRAM_VATTR_IMPL_H
#define ENGRAM_VATTR_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "engram/vattr.h"

/* One value: 16 bytes.  lt packs the length (STRING: bytes; ARRAY: items)
 * above a vattr_type in the low 3 bits.  num is the number a FILTER reads
 * from the value: the number itself, a string's number (vattr_str_num), 0
 * for null and arrays: so arithmetic never looks at the type. */
typedef struct vattr_val {
    double num;
    uint32_t off; /* STRING: bytes at block + off; ARRAY: first item index */
    uint32_t lt;
} vattr_val;

#define VATTR_LEN_MAX ((1u << 29) - 1) /* above VATTR_JSON_MAX */

static inline unsigned vattr_val_type(const vattr_val *v)
{
    return v->lt & 7u;
}

static inline uint32_t vattr_val_len(const vattr_val *v)
{
    return v->lt >> 3;
}

static inline void vattr_val_set(vattr_val *v, unsigned type, double num, uint32_t off, uint32_t len)
{
    v->num = num;
    v->off = off;
    v->lt = len << 3 | type;
}

typedef struct vattr_field {
    uint32_t name_off, name_len; /* name_off: from the block's start */
    vattr_val v;
} vattr_field;

#define VATTR_F_INVALID 1u /* kept from malformed text: no fields */

struct vattr {
    uint32_t size;      /* bytes of the block */
    uint32_t flags;
    uint32_t nfields;
    uint32_t nitems;
    uint32_t field_off; /* these four: from the block's start */
    uint32_t item_off;
    uint32_t str_off;
    uint32_t json_off;
    uint32_t json_len;
    uint32_t pad_;
};

static inline const uint32_t *vattr_hashes(const vattr *a)
{
    return (const uint32_t *)(const void *)(a + 1);
}

static inline const vattr_field *vattr_fields(const vattr *a)
{
    return (const vattr_field *)(const void *)((const char *)a + a->field_off);
}

static inline const vattr_val *vattr_items(const vattr *a)
{
    return (const vattr_val *)(const void *)((const char *)a + a->item_off);
}

/* What string offsets count from. */
static inline const char *vattr_strs(const vattr *a)
{
    return (const char *)a;
}

/* FNV-1a: names are short, and one multiply per byte beats anything with a
 * setup cost. */
static inline uint32_t vattr_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* The member named (name, len) with hash h, or NULL. */
static inline const vattr_val *vattr_lookup(const vattr *a, uint32_t h, const char *name,
                                            size_t len)
{
    const uint32_t *hs = vattr_hashes(a);
    uint32_t lo = 0, hi = a->nfields;
    while (lo < hi) { /* first hash >= h */
        uint32_t mid = lo + (hi - lo) / 2;
        if (hs[mid] < h) lo = mid + 1;
        else hi = mid;
    }
    const vattr_field *f = vattr_fields(a);
    const char *str = vattr_strs(a);
    for (; lo < a->nfields && hs[lo] == h; lo++)
        if (f[lo].name_len == len && memcmp(str + f[lo].name_off, name, len) == 0) return &f[lo].v;
    return NULL;
}

/* The number Redis reads from a string (its "to number" rule): the whole
 * string must be one strtod number, and shorter than 256 bytes; else 0. */
double vattr_str_num(const char *s, size_t len);

/* Code point of 4 hex digits at s, or -1. */
static inline long vattr_hex4(const char *s)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int c = (unsigned char)s[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Decode a \u escape whose 'u' is at s[0] (n bytes readable from s): the
 * code point (a surrogate pair takes a second \u), *used = bytes consumed
 * after the backslash; -1 if the hex is bad, -2 for a lone surrogate. */
static inline long vattr_unicode_escape(const char *s, size_t n, size_t *used)
{
    if (n < 5) return -1;
    long cp = vattr_hex4(s + 1);
    if (cp < 0) return -1;
    *used = 5;
    if (cp >= 0xDC00 && cp <= 0xDFFF) return -2;
    if (cp < 0xD800 || cp > 0xDBFF) return cp;
    if (n < 11 || s[5] != '\\' || s[6] != 'u') return -2;
    long lo = vattr_hex4(s + 7);
    if (lo < 0) return -1;
    if (lo < 0xDC00 || lo > 0xDFFF) return -2;
    *used = 11;
    return 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
}

/* UTF-8 of cp into d (NULL: just count); bytes written. */
static inline size_t vattr_utf8_put(char *d, long cp)
{
    unsigned char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (unsigned char)(0xC0 | (cp >> 6));
        b[1] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (unsigned char)(0xE0 | (cp >> 12));
        b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (unsigned char)(0xF0 | (cp >> 18));
        b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    if (d) memcpy(d, b, n);
    return n;
}

#endif
