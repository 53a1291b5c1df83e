/* mem.c -- counted allocation for the server.
 *
 * The count uses the allocator's own idea of a block's size
 * (malloc_usable_size on glibc, malloc_size on Apple), so no header is added
 * to every block.  Where neither exists the count stays 0 rather than lie.
 * Exhaustion is fatal: see mem.h. */
#include "engram/mem.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__APPLE__)
#include <malloc/malloc.h>
#define MEM_SIZE(p) malloc_size(p)
#elif defined(__GLIBC__) || defined(__linux__)
#include <malloc.h>
#define MEM_SIZE(p) malloc_usable_size(p)
#else
#define MEM_SIZE(p) ((size_t)0)
#endif

static _Atomic size_t mem_used_bytes;

static void mem_oom(size_t n)
{
    fprintf(stderr, "engram: out of memory allocating %zu bytes\n", n);
    fflush(stderr);
    abort();
}

void *mem_alloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) mem_oom(n);
    atomic_fetch_add_explicit(&mem_used_bytes, MEM_SIZE(p), memory_order_relaxed);
    return p;
}

void *mem_calloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (!p) mem_oom(count * n);
    atomic_fetch_add_explicit(&mem_used_bytes, MEM_SIZE(p), memory_order_relaxed);
    return p;
}

void *mem_realloc(void *p, size_t n)
{
    if (n == 0) {
        mem_free(p);
        return NULL;
    }
    size_t old = p ? MEM_SIZE(p) : 0;
    void *q = realloc(p, n);
    if (!q) mem_oom(n);
    size_t now = MEM_SIZE(q);
    if (now >= old)
        atomic_fetch_add_explicit(&mem_used_bytes, now - old, memory_order_relaxed);
    else
        atomic_fetch_sub_explicit(&mem_used_bytes, old - now, memory_order_relaxed);
    return q;
}

void mem_free(void *p)
{
    if (!p) return;
    atomic_fetch_sub_explicit(&mem_used_bytes, MEM_SIZE(p), memory_order_relaxed);
    free(p);
}

char *mem_strndup(const char *s, size_t n)
{
    char *d = mem_alloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

size_t mem_used(void)
{
    return atomic_load_explicit(&mem_used_bytes, memory_order_relaxed);
}
