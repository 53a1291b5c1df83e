/* check.c -- CHECK's failure path (check.h): one write(2) of the whole
 * message, so it stays whole when several threads fail at once, then
 * abort() for a core dump and a stack trace. */
#include "engram/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

_Noreturn void check_fail(const char *file, int line, const char *what)
{
    char msg[512];
    int n = snprintf(msg, sizeof msg, "engram: %s:%d: assertion failed: %s\n", file, line, what);
    if (n > 0) {
        size_t len = (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1;
        if (write(2, msg, len) < 0) { /* nothing more to do: we abort anyway */ }
    }
    abort();
}
