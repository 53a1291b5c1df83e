/* check.h -- the always-on assertion every module uses for its invariants
 * (release builds included: an invariant that fails means memory is no
 * longer what the code believes, and going on could corrupt data or a
 * snapshot).  CHECK(c) prints "engram: file:line: assertion failed: c" to
 * stderr in one write(2) (whole even when threads fail at once) and
 * aborts, for a core dump and a stack trace.
 *
 * Header-only, so that every library may use it without linking another
 * (the vector engines link the kernels and the vector base alone). */
#ifndef ENGRAM_CHECK_H
#define ENGRAM_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline _Noreturn void check_fail(const char *file, int line, const char *what)
{
    char msg[512];
    int n = snprintf(msg, sizeof msg, "engram: %s:%d: assertion failed: %s\n", file, line, what);
    if (n > 0) {
        size_t len = (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1;
        if (write(2, msg, len) < 0) { /* nothing more to do: we abort anyway */ }
    }
    abort();
}

#define CHECK(c) (__builtin_expect(!!(c), 1) ? (void)0 : check_fail(__FILE__, __LINE__, #c))

#endif
