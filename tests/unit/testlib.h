/* testlib.h -- what several unit tests share: knowing when they run slowly
 * (AddressSanitizer, or the aarch64 build under qemu-user, some 30x slower)
 * so they can shrink their sizes, an allocator that fails on request
 * (failure-atomicity tests), and a deterministic random generator.
 * Header-only; include after <stdlib.h>. */
#ifndef ENGRAM_TESTLIB_H
#define ENGRAM_TESTLIB_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#endif
/* Sizes shrink where everything runs several times slower. */
#if defined(TEST_ASAN) || defined(__aarch64__)
#define TEST_SLOW 1
#endif

/* A vec_allocator ud: the countdown-th allocation (or resize) from now
 * fails (countdown < 0: none does); live counts blocks not yet freed. */
typedef struct fail_alloc {
    long countdown;
    long live;
} fail_alloc;

static inline void *f_alloc(void *ud, size_t n)
{
    fail_alloc *f = ud;
    if (f->countdown >= 0 && f->countdown-- == 0) return NULL;
    f->live++;
    return malloc(n ? n : 1);
}

static inline void f_free(void *ud, void *p, size_t n)
{
    (void)n;
    ((fail_alloc *)ud)->live--;
    free(p);
}

/* Resizing counts as an allocation for the countdown. */
static inline void *f_realloc(void *ud, void *p, size_t old, size_t n)
{
    fail_alloc *f = ud;
    (void)old;
    if (f->countdown >= 0 && f->countdown-- == 0) return NULL;
    return realloc(p, n ? n : 1);
}

/* xorshift64*: deterministic, so a failure reproduces.  *state must start
 * non-zero; each test file keeps its own. */
static inline uint64_t test_rng_next(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 0x2545F4914F6CDD1Dull;
}

#endif
