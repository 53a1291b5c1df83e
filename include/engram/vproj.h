/* vproj.h -- the REDUCE projection of Redis vector sets: a fixed matrix
 * that maps an in_dim vector to out_dim <= in_dim floats, applied to each
 * vector VADD ... REDUCE dim receives (and to each query of that set)
 * before it is normalised or quantised.
 *
 * The matrix is Redis 8's, entry for entry, so that a set reduced here and
 * one reduced by Redis hold the same vectors (up to float summation order):
 *
 *   M[i][j] = (popcount(i & j) even ? +1 : -1) * s,  s = (float)(1/sqrt(in_dim))
 *   out[i]  = sum_j M[i][j] * in[j]                  (float32)
 *
 * i < out_dim, j < in_dim.  There is no seed: two servers, a primary and
 * its replica, or a server before and after a restart, build the same
 * matrix.  When in_dim is a power of two these are rows of the Sylvester
 * Hadamard matrix scaled to unit length, hence orthonormal: the projection
 * then keeps a vector's coordinates in an out_dim-dimensional subspace,
 * and preserves distances and dot products of vectors lying in it.
 *
 * Errors: 0 or negative (-EINVAL, -ENOMEM), as the rest of the vector
 * library (vecbase.h).  Threads: a vproj is immutable once built, so any
 * number of threads may call vproj_apply on it at once. */
#ifndef ENGRAM_VPROJ_H
#define ENGRAM_VPROJ_H

#include <stddef.h>
#include <stdint.h>

#include "engram/dist.h"
#include "engram/vecbase.h"

typedef struct vproj vproj;

/* The out_dim x in_dim projection above, materialised.  out_dim in
 * 1..in_dim, in_dim in 1..VEC_DIM_MAX; alloc NULL = malloc/free (copied:
 * it must outlive the vproj, not the call).  NULL with *err (err may be
 * NULL) = -EINVAL for dimensions out of range, -ENOMEM when an allocation
 * fails (nothing is then held). */
vproj *vproj_new(uint32_t out_dim, uint32_t in_dim, const vec_allocator *alloc, int *err);

/* Give back everything vproj_new allocated.  p NULL: nothing. */
void vproj_free(vproj *p);

uint32_t vproj_in_dim(const vproj *p);
uint32_t vproj_out_dim(const vproj *p);

/* out[0..out_dim) = M * in[0..in_dim): one k->dot per row (k NULL =
 * dist_active()), so the result rounds as that kernel sums, not
 * necessarily as Redis's left-to-right loop.  in and out need no
 * alignment and must not overlap. */
void vproj_apply(const vproj *p, const dist_kernels *k, const float *in, float *out);

/* Bytes held: the struct plus the matrix block (out_dim rows of in_dim
 * floats, each row padded to a multiple of 16 floats so that it starts on
 * a 64-byte boundary, plus 64 bytes of alignment slack). */
size_t vproj_memory(const vproj *p);

#endif
