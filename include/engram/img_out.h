/* img_out.h -- a buffered writer into the section an img_sink has open, for
 * the save functions of the structures (vindex_image.c, hnsw.c): small
 * puts are gathered into sink writes of sizeof b bytes, large ones go
 * straight through, and the sink's first error sticks (later calls do
 * nothing), so a save function writes everything and checks o->rc once at
 * the end. */
#ifndef ENGRAM_IMG_OUT_H
#define ENGRAM_IMG_OUT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "engram/image.h"

typedef struct img_out {
    img_sink *s;
    int rc;                 /* the first error, or 0 */
    size_t n;               /* bytes gathered in b */
    uint8_t b[16384];
} img_out;

static inline void img_out_flush(img_out *o)
{
    if (!o->rc && o->n) o->rc = o->s->write(o->s, o->b, o->n);
    o->n = 0;
}

static inline void img_out_put(img_out *o, const void *p, size_t n)
{
    if (n >= sizeof o->b) {     /* long runs (vectors) go straight through */
        img_out_flush(o);
        if (!o->rc) o->rc = o->s->write(o->s, p, n);
        return;
    }
    if (o->n + n > sizeof o->b) img_out_flush(o);
    memcpy(o->b + o->n, p, n);
    o->n += n;
}

static inline void img_out_zero(img_out *o, size_t n)
{
    while (n) {
        if (o->n == sizeof o->b) img_out_flush(o);
        size_t k = sizeof o->b - o->n < n ? sizeof o->b - o->n : n;
        memset(o->b + o->n, 0, k);
        o->n += k;
        n -= k;
    }
}

/* LEB128: 7 bits a byte, low first, high bit = more. */
static inline void img_out_varint(img_out *o, uint32_t x)
{
    uint8_t b[5];
    size_t n = 0;
    do {
        b[n++] = (uint8_t)((x & 0x7Fu) | (x > 0x7Fu ? 0x80u : 0u));
        x >>= 7;
    } while (x);
    img_out_put(o, b, n);
}

static inline void img_out_begin(img_out *o, uint32_t kind, int page_align)
{
    o->n = 0;
    if (!o->rc) o->rc = o->s->begin(o->s, kind, page_align);
}

static inline void img_out_end(img_out *o)
{
    img_out_flush(o);
    if (!o->rc) o->rc = o->s->end(o->s);
}

#endif
