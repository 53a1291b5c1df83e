/* vecio.h -- TEXMEX fvecs/ivecs reading for the C benchmark programs.
 *
 * Format: per vector an int32 dim, then dim 4-byte values (float32 for
 * fvecs, int32 for ivecs), little-endian; every record has the same dim.
 * Header-only because each benchmark is its own program; any error prints
 * "<prog>: <what>: <path>" and exits 2. */
#ifndef ENGRAM_BENCH_VECIO_H
#define ENGRAM_BENCH_VECIO_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct vecs {
    uint32_t n, dim;
    void *data;             /* n * dim floats or int32s; free() it */
} vecs;

static void vecio_die(const char *prog, const char *msg, const char *path)
{
    fprintf(stderr, "%s: %s: %s\n", prog, msg, path);
    exit(2);
}

static vecs vecio_read(const char *prog, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) vecio_die(prog, "cannot open", path);
    int32_t d;
    if (fread(&d, 4, 1, f) != 1 || d <= 0 || d > 1 << 20) vecio_die(prog, "bad header in", path);
    fseek(f, 0, SEEK_END);
    long bytes = ftell(f);
    fseek(f, 0, SEEK_SET);
    size_t rec = 4 + (size_t)d * 4;
    if (bytes <= 0 || (size_t)bytes % rec) vecio_die(prog, "size is not a whole number of vectors in", path);
    vecs v = { (uint32_t)((size_t)bytes / rec), (uint32_t)d, NULL };
    v.data = malloc((size_t)v.n * v.dim * 4);
    if (!v.data) vecio_die(prog, "out of memory reading", path);
    for (uint32_t i = 0; i < v.n; i++) {
        int32_t di;
        if (fread(&di, 4, 1, f) != 1 || di != d ||
            fread((char *)v.data + (size_t)i * v.dim * 4, 4, v.dim, f) != v.dim)
            vecio_die(prog, "short or inconsistent record in", path);
    }
    fclose(f);
    return v;
}

#endif
