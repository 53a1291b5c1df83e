/* safetensors.h -- a reader for Hugging Face's safetensors files.  Pure
 * apart from reading the one file it is given.
 *
 * The format: an 8-byte little-endian unsigned N, then N bytes of JSON (the
 * header), then the data.  The header is an object mapping each tensor's
 * name to {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin,
 * end]}, offsets relative to the start of the data; an optional
 * "__metadata__" member maps strings to strings.
 *
 * Nothing in the file is trusted.  st_open refuses (EMBED_EFORMAT, with a
 * message naming the file and, where there is one, the tensor) a file
 * shorter than 8 bytes, N larger than the rest of the file or than
 * ST_HEADER_MAX, a header that is not a JSON object, a tensor with an
 * unknown dtype, a shape that is not an array of at most ST_NDIM_MAX
 * non-negative integers, offsets that are not two integers with begin <=
 * end <= the data's size, a byte count (product of the shape x the dtype's
 * size, overflow checked) different from end - begin, two tensors whose
 * bytes overlap, and a name used twice.  Bytes that no tensor covers are
 * allowed (some writers pad).
 *
 * The whole file is read into memory once; tensors point into it.
 *
 * Errors: 0, -errno from open/read/fstat, -ENOMEM, EMBED_EFORMAT
 * (embed.h).  Threads: an st_file is immutable once opened. */
#ifndef ENGRAM_SAFETENSORS_H
#define ENGRAM_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define ST_HEADER_MAX ((uint64_t)100 << 20) /* as the reference implementation */
#define ST_NDIM_MAX 8

typedef enum st_dtype {
    ST_F32, ST_F16, ST_BF16, ST_F64, ST_I64, ST_I32, ST_I16, ST_I8, ST_U8, ST_BOOL
} st_dtype;

typedef struct st_tensor {
    char *name;
    st_dtype dtype;
    int ndim;
    uint64_t shape[ST_NDIM_MAX];
    uint64_t count;          /* elements: the product of the shape */
    const uint8_t *data;     /* count elements of dtype, little-endian, unaligned */
    uint64_t nbytes;
} st_tensor;

typedef struct st_file st_file;

/* Open and check path.  Returns 0 and sets *out, or a negative code with a
 * message in err ("model.safetensors: tensor 'x': data_offsets [0, 12]
 * hold 12 bytes, shape [2, 3] of F32 needs 24"). */
int st_open(const char *path, st_file **out, char *err, size_t errlen);
/* The same from bytes in memory (copied); name is used in messages. */
int st_open_mem(const void *buf, size_t len, const char *name, st_file **out, char *err,
                size_t errlen);
void st_free(st_file *f);                  /* NULL ok */

size_t st_count(const st_file *f);
const st_tensor *st_at(const st_file *f, size_t i);
/* The tensor called name, or NULL. */
const st_tensor *st_find(const st_file *f, const char *name);

/* "F32", "F16", ... */
const char *st_dtype_name(st_dtype d);

/* Convert a float tensor (F32, F16 or BF16) to count floats at out.
 * Returns 0, or EMBED_EFORMAT for another dtype. */
int st_to_f32(const st_tensor *t, float *out);

/* IEEE half and bfloat16 to float (exact). */
float st_f16_to_f32(uint16_t h);
float st_bf16_to_f32(uint16_t h);

#endif
