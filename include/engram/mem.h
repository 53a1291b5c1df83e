/* mem.h -- the server's allocator: counted, and fatal on exhaustion.
 *
 * Every server-side allocation goes through these so INFO can report
 * used_memory.  On out-of-memory they log to stderr and abort(), as Redis
 * does: a server that cannot allocate a reply buffer has no sane way on.
 *
 * The pure algorithm modules (HNSW, FLAT) instead take an injectable
 * allocator and return -ENOMEM; see vecbase.h.
 *
 * Thread safety: all functions may be called from any thread; the counter is
 * a relaxed atomic. */
#ifndef ENGRAM_MEM_H
#define ENGRAM_MEM_H

#include <stddef.h>

void *mem_alloc(size_t n);              /* never NULL; aborts on OOM */
void *mem_calloc(size_t count, size_t n);
void *mem_realloc(void *p, size_t n);   /* p may be NULL; n == 0 frees and returns NULL */
void  mem_free(void *p);                /* p may be NULL */
char *mem_strndup(const char *s, size_t n); /* NUL-terminated copy */
size_t mem_used(void);                  /* bytes currently allocated through mem_* */

#endif
