/* strbuf.h -- a growable text buffer for replies built from many printf
 * pieces (INFO, CLIENT LIST).  A zeroed strbuf is empty and ready; the
 * caller owns p and frees it with strbuf_free.  Allocation is counted
 * (mem.h) and fatal on exhaustion, as everywhere in the server. */
#ifndef ENGRAM_STRBUF_H
#define ENGRAM_STRBUF_H

#include <stddef.h>

typedef struct strbuf {
    char *p;                 /* NUL-terminated once anything was added; NULL when empty */
    size_t len, cap;
} strbuf;

/* Append the formatted text, growing as needed. */
void strbuf_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Give the memory back; b is empty again. */
void strbuf_free(strbuf *b);

#endif
