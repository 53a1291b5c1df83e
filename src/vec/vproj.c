/* vproj.c -- the REDUCE projection (vproj.h): Redis 8's deterministic
 * +-1/sqrt(in_dim) matrix, built once and applied row by row with the
 * selected dot kernel.
 *
 * Why a materialised matrix.  The entries are a function of (i, j), and
 * when the dimensions allow, out = M * in is the first out_dim outputs of a
 * fast Walsh-Hadamard transform of in (zero-padded to a power of two):
 * O(n log n) against O(out_dim * in_dim).  We keep the matrix anyway:
 *   - Redis stores the matrix in its RDB rather than the rule, so that the
 *     rule may change ("we may change the weights generation"); a set
 *     loaded from such a file brings its own matrix, which only a
 *     materialised form can hold.  vproj builds Redis's current rule; the
 *     rows are plain floats a loader can fill.
 *   - A row is one k->dot over in_dim contiguous floats, the kernel every
 *     engine already uses and tests against the scalar reference at every
 *     ISA; a transform would be new numeric code with its own rounding.
 *   - The cost is bounded and paid once per VADD or query: 300 x 1536 is
 *     1.8 MB and ~0.5 M multiply-adds, small next to an HNSW insert.
 *
 * Layout.  Row i starts at rows + i * stride; stride is in_dim rounded up
 * to 16 floats, and the block comes from vec_mem_resize_vecs (64-byte
 * aligned, as the engines' vector arrays), so every row starts on a cache
 * line: the kernels load unaligned, but a load that splits two lines costs
 * more, and a row spans as few lines as it can.  The padding is zero and
 * never read (the kernels get in_dim).
 *
 * The scale is computed as Redis computes it, 1.0f / sqrt(in_dim) in double
 * then stored as float, so that M's entries are bit-identical to Redis's. */
#include "engram/vproj.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

struct vproj {
    vec_mem mem;            /* counts the matrix block */
    uint32_t in_dim, out_dim;
    size_t stride;          /* floats from one row to the next */
    void *raw;              /* the block, as allocated */
    size_t raw_bytes;
    float *rows;            /* 64-byte aligned, inside raw */
};

#define VPROJ_ROW_ALIGN 16u /* floats: 64 bytes */

/* 1 if x has an odd number of set bits. */
static uint32_t vproj_parity(uint32_t x)
{
    x ^= x >> 16;
    x ^= x >> 8;
    x ^= x >> 4;
    x ^= x >> 2;
    x ^= x >> 1;
    return x & 1u;
}

static void vproj_fill(vproj *p)
{
    const float s = (float)(1.0 / sqrt((double)p->in_dim));
    for (uint32_t i = 0; i < p->out_dim; i++) {
        float *row = p->rows + (size_t)i * p->stride;
        for (uint32_t j = 0; j < p->in_dim; j++) row[j] = vproj_parity(i & j) ? -s : s;
        for (size_t j = p->in_dim; j < p->stride; j++) row[j] = 0.0f;
    }
}

vproj *vproj_new(uint32_t out_dim, uint32_t in_dim, const vec_allocator *alloc, int *err)
{
    const vec_allocator *al = alloc ? alloc : &vec_default_allocator;
    if (in_dim < 1 || in_dim > VEC_DIM_MAX || out_dim < 1 || out_dim > in_dim) {
        if (err) *err = -EINVAL;
        return NULL;
    }
    size_t stride = ((size_t)in_dim + VPROJ_ROW_ALIGN - 1) / VPROJ_ROW_ALIGN * VPROJ_ROW_ALIGN;
    /* at most 2^15 rows of 2^15 floats: 4 GB, more than a 32-bit size_t */
    if ((uint64_t)out_dim * stride > (SIZE_MAX - 64) / sizeof(float)) {
        if (err) *err = -ENOMEM;
        return NULL;
    }
    vproj *p = al->alloc(al->ud, sizeof *p);
    if (!p) {
        if (err) *err = -ENOMEM;
        return NULL;
    }
    memset(p, 0, sizeof *p);
    vec_mem_init(&p->mem, al);
    p->in_dim = in_dim;
    p->out_dim = out_dim;
    p->stride = stride;
    if (!(p->rows = vec_mem_resize_vecs(&p->mem, &p->raw, &p->raw_bytes, NULL,
                                        (size_t)out_dim * stride * sizeof(float), 0))) {
        al->free(al->ud, p, sizeof *p);
        if (err) *err = -ENOMEM;
        return NULL;
    }
    vproj_fill(p);
    return p;
}

void vproj_free(vproj *p)
{
    if (!p) return;
    vec_mem_free(&p->mem, p->raw, p->raw_bytes);
    p->mem.al.free(p->mem.al.ud, p, sizeof *p);
}

uint32_t vproj_in_dim(const vproj *p) { return p->in_dim; }
uint32_t vproj_out_dim(const vproj *p) { return p->out_dim; }

void vproj_apply(const vproj *p, const dist_kernels *k, const float *in, float *out)
{
    if (!k) k = dist_active();
    for (uint32_t i = 0; i < p->out_dim; i++)
        out[i] = k->dot(p->rows + (size_t)i * p->stride, in, p->in_dim);
}

size_t vproj_memory(const vproj *p) { return sizeof *p + p->mem.bytes; }
