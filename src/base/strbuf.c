/* strbuf.c -- the growable text buffer (strbuf.h): vsnprintf into what is
 * left, and on a short buffer grow to twice what the text needs and format
 * again (so a long INFO costs a logarithmic number of copies). */
#include "engram/strbuf.h"

#include <stdarg.h>
#include <stdio.h>

#include "engram/mem.h"

void strbuf_printf(strbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if (b->p && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        b->cap = (b->cap + (size_t)n + 1) * 2;
        b->p = mem_realloc(b->p, b->cap);
    }
}

void strbuf_free(strbuf *b)
{
    mem_free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}
