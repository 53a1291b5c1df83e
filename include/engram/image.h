/* image.h -- the vocabulary a data structure uses to write itself into a
 * snapshot and to come back from one.  Only types: no code, no I/O.
 *
 * Writing.  A structure (the keyspace, one vector index) is written as a
 * run of sections through an img_sink.  Each section has a kind (a small
 * number the structure chooses from its own range below) and a byte string
 * written in pieces between begin and end.  A section begun with page_align
 * starts on a page boundary in the file (IMG_PAGE), so that a reader can
 * map it and use it in place; the others are packed.  The sink (snapfile.c)
 * checksums every section and records where it lies.
 *
 * Reading.  The reader hands the structure back the same run of sections,
 * as pointers into memory (normally a private, copy-on-write mapping of the
 * file: the bytes may be read and also written in place; writes never reach
 * the file).  A loader may keep pointers into that memory instead of copying
 * ("borrowing"), provided the section was page-aligned (then it is also
 * 64-byte aligned).  When the structure no longer needs a borrowed range
 * (it grew out of it, or it is freed) it calls release(ud, p, len) once for
 * that range, so the owner of the mapping can give the pages back.
 *
 * Section kinds, one range per owner:
 *   0x0001-0x00ff  the snapshot itself (persist.c: meta, keyspace, index headers)
 *   0x0100-0x010f  vindex_image.c (index meta, keys, norms, ...)
 *   0x0110-0x011f  hnsw.c
 *   0x0120-0x012f  flat.c
 *   0x0130-0x01ff  reserved for the vector side (payloads, FIFO order, ...)
 *   0x0200-0x02ff  kv_image.c (the keyspace)
 *
 * Errors: 0 or -errno from every sink call; a structure's save function
 * returns the first error its sink reported and stops there. */
#ifndef ENGRAM_IMAGE_H
#define ENGRAM_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#define IMG_PAGE 4096u      /* alignment of page_align sections in the file */

typedef struct img_sink img_sink;
struct img_sink {
    int (*begin)(img_sink *s, uint32_t kind, int page_align);
    int (*write)(img_sink *s, const void *p, size_t n);
    int (*end)(img_sink *s);
};

typedef struct img_section {
    uint32_t kind;
    int page_aligned;       /* it was written with page_align (so 64-byte aligned in memory) */
    void *data;             /* len bytes; writable (copy-on-write) */
    size_t len;
} img_section;

typedef void img_release_fn(void *ud, void *p, size_t len);

typedef struct img_source {
    const img_section *sec; /* the structure's sections, in the order written */
    size_t n;
    img_release_fn *release;/* NULL: the memory is never given back (borrowing is
                               still allowed; it lives as long as the process) */
    void *release_ud;
} img_source;

#endif
