/* fuzz.h -- what the libFuzzer targets of tests/fuzz/ share: a check that
 * stops the run (libFuzzer keeps the input as a crash), a small PRNG for
 * chunk sizes and mutations, an in-memory file behind the io seam (io.h),
 * and an in-memory image sink (image.h) for save-and-reload round trips.
 *
 * Nothing here is part of engram: it is test code, built only with
 * -DENGRAM_FUZZ=ON (clang), and one fuzzing process is single-threaded. */
#ifndef ENGRAM_FUZZ_H
#define ENGRAM_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "engram/image.h"
#include "engram/io.h"

/* libFuzzer's entry points (a target defines the first, may define the
 * custom mutator; LLVMFuzzerMutate is libFuzzer's own mutator). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

/* A property the target checks failed: print why and abort, so libFuzzer
 * saves the input.  Always on (not assert). */
#define FUZZ_CHECK(cond, ...)                                                    \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                        \
            fputc('\n', stderr);                                                 \
            abort();                                                             \
        }                                                                        \
    } while (0)

/* splitmix64: deterministic from the input, so a crash reproduces. */
static inline uint64_t fuzz_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* FNV-1a of the input: the seed of everything a target draws at random. */
uint64_t fuzz_seed(const uint8_t *data, size_t size);

/* ---- one in-memory file behind io_ops -------------------------------------
 * Every path names the same file.  pread/pwrite/ftruncate/file_size work on
 * a heap buffer; fsync, rename, unlink and fsync_dir succeed and do
 * nothing; map copies the file into a page-aligned block of exactly its
 * size (so ASan sees any read past the end), and discard poisons the whole
 * pages of the range for ASan (a loader that reads memory it released is
 * caught; io.h says those bytes must not be relied on). */
io_ops *fuzz_memio(void);
void fuzz_memio_set(const void *data, size_t len);   /* the file's contents */
const uint8_t *fuzz_memio_data(size_t *len);          /* what it holds now */
int fuzz_memio_open_files(void);                      /* descriptors not closed */
int fuzz_memio_live_maps(void);                       /* mappings not unmapped */

/* ---- an in-memory image (sections written through an img_sink) ---------- */
#define FUZZ_IMAGE_MAXSEC 64

typedef struct fuzz_image {
    img_sink sink;
    img_section sec[FUZZ_IMAGE_MAXSEC];
    size_t n;
    int open, overflow;
    uint8_t *buf;           /* the section being written */
    size_t blen, bcap;
} fuzz_image;

void fuzz_image_init(fuzz_image *im);
void fuzz_image_fini(fuzz_image *im);
/* The sections as a source (release NULL: the image keeps them). */
img_source fuzz_image_source(const fuzz_image *im);
/* 1 if a and b hold the same sections, byte for byte. */
int fuzz_image_equal(const fuzz_image *a, const fuzz_image *b);

#endif
