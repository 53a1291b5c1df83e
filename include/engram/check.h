/* check.h -- the always-on assertion every module uses for its invariants
 * (release builds included: an invariant that fails means memory is no
 * longer what the code believes, and going on could corrupt data or a
 * snapshot).  CHECK(c) prints "engram: file:line: assertion failed: c" to
 * stderr and aborts. */
#ifndef ENGRAM_CHECK_H
#define ENGRAM_CHECK_H

_Noreturn void check_fail(const char *file, int line, const char *what);

#define CHECK(c) ((c) ? (void)0 : check_fail(__FILE__, __LINE__, #c))

#endif
