/* safetensors.c -- the safetensors reader (format and every check in
 * include/engram/safetensors.h).
 *
 * Order of checks: the 8-byte length against the file's size before the
 * header is touched; the header as JSON (mjson, itself bounded); then per
 * tensor its dtype, shape (with an overflow-checked product), offsets and
 * the byte count they imply; last, overlaps, by sorting the tensors by
 * their first byte.  Only after all of it does a tensor's data pointer
 * exist, so no caller ever sees a tensor that reaches outside the file.
 *
 * Threads: st_open runs on one thread; the result is read-only. */
#include "engram/safetensors.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed_impl.h"
#include "engram/mjson.h"

struct st_file {
    uint8_t *buf;            /* the whole file */
    size_t len;
    st_tensor *t;
    size_t n;
};

static const struct {
    const char *name;
    unsigned size;
} st_dtypes[] = {
    [ST_F32] = {"F32", 4}, [ST_F16] = {"F16", 2}, [ST_BF16] = {"BF16", 2}, [ST_F64] = {"F64", 8},
    [ST_I64] = {"I64", 8}, [ST_I32] = {"I32", 4}, [ST_I16] = {"I16", 2},  [ST_I8] = {"I8", 1},
    [ST_U8] = {"U8", 1},   [ST_BOOL] = {"BOOL", 1},
};
#define ST_NDTYPES (sizeof st_dtypes / sizeof st_dtypes[0])

const char *st_dtype_name(st_dtype d)
{
    return (unsigned)d < ST_NDTYPES ? st_dtypes[d].name : "?";
}

/* One tensor's description, checked; t->data is set by the caller. */
static int st_parse_tensor(const mjson *j, int v, st_tensor *t, uint64_t datalen,
                           const char *fname, char *err, size_t errlen)
{
    char dt[16];
    const char *nm = t->name;
    if (j->t[v].type != MJSON_OBJECT)
        return embed_fail(err, errlen, EMBED_EFORMAT, "%s: tensor '%s': not an object", fname, nm);
    int d = mjson_get(j, v, "dtype"), s = mjson_get(j, v, "shape"),
        o = mjson_get(j, v, "data_offsets");
    if (d < 0 || mjson_str(j, d, dt, sizeof dt) < 0)
        return embed_fail(err, errlen, EMBED_EFORMAT, "%s: tensor '%s': no dtype string", fname, nm);
    size_t k;
    for (k = 0; k < ST_NDTYPES; k++)
        if (!strcmp(dt, st_dtypes[k].name)) break;
    if (k == ST_NDTYPES)
        return embed_fail(err, errlen, EMBED_EFORMAT, "%s: tensor '%s': unsupported dtype '%s'",
                          fname, nm, dt);
    t->dtype = (st_dtype)k;
    if (s < 0 || j->t[s].type != MJSON_ARRAY || j->t[s].n > ST_NDIM_MAX)
        return embed_fail(err, errlen, EMBED_EFORMAT,
                          "%s: tensor '%s': shape is not an array of at most %d integers", fname,
                          nm, ST_NDIM_MAX);
    t->ndim = (int)j->t[s].n;
    uint64_t count = 1;
    int overflow = 0;
    for (int i = 0; i < t->ndim; i++) {
        int64_t x;
        if (mjson_int(j, mjson_at(j, s, (uint32_t)i), &x) < 0 || x < 0)
            return embed_fail(err, errlen, EMBED_EFORMAT,
                              "%s: tensor '%s': shape[%d] is not a non-negative integer", fname,
                              nm, i);
        t->shape[i] = (uint64_t)x;
        if (x && count > UINT64_MAX / (uint64_t)x) overflow = 1;
        else count *= (uint64_t)x;
    }
    int64_t b, e;
    if (o < 0 || j->t[o].type != MJSON_ARRAY || j->t[o].n != 2 ||
        mjson_int(j, mjson_at(j, o, 0), &b) < 0 || mjson_int(j, mjson_at(j, o, 1), &e) < 0)
        return embed_fail(err, errlen, EMBED_EFORMAT,
                          "%s: tensor '%s': data_offsets is not two integers", fname, nm);
    if (b < 0 || e < b || (uint64_t)e > datalen)
        return embed_fail(err, errlen, EMBED_EFORMAT,
                          "%s: tensor '%s': data_offsets [%lld, %lld] outside the %llu data bytes "
                          "(file truncated?)", fname, nm, (long long)b, (long long)e,
                          (unsigned long long)datalen);
    uint64_t need = count * st_dtypes[k].size;
    if (overflow || need / st_dtypes[k].size != count || need != (uint64_t)(e - b))
        return embed_fail(err, errlen, EMBED_EFORMAT,
                          "%s: tensor '%s': data_offsets [%lld, %lld] hold %lld bytes, the shape "
                          "of %s needs %s%llu", fname, nm, (long long)b, (long long)e,
                          (long long)(e - b), dt, overflow ? "more than " : "",
                          overflow ? (unsigned long long)UINT64_MAX : (unsigned long long)need);
    t->count = count;
    t->nbytes = need;
    t->data = (const uint8_t *)(uintptr_t)(uint64_t)b; /* an offset until all are checked */
    return 0;
}

static int st_cmp_off(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const st_tensor *)a)->data, y = (uintptr_t)((const st_tensor *)b)->data;
    return x < y ? -1 : x > y;
}

static int st_cmp_name(const void *a, const void *b)
{
    return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

static int st_parse(st_file *f, const char *fname, char *err, size_t errlen)
{
    if (f->len < 8)
        return embed_fail(err, errlen, EMBED_EFORMAT, "%s: %zu bytes, too short for a header length",
                          fname, f->len);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | f->buf[i];
    if (hl > ST_HEADER_MAX || hl > f->len - 8)
        return embed_fail(err, errlen, EMBED_EFORMAT,
                          "%s: header length %llu exceeds the file (%zu bytes) or %llu",
                          fname, (unsigned long long)hl, f->len, (unsigned long long)ST_HEADER_MAX);
    mjson j;
    char jerr[128];
    int rc = mjson_parse(&j, (const char *)f->buf + 8, (size_t)hl, jerr, sizeof jerr);
    if (rc == -ENOMEM) return embed_fail(err, errlen, -ENOMEM, "%s: out of memory", fname);
    if (rc < 0) return embed_fail(err, errlen, EMBED_EFORMAT, "%s: header: %s", fname, jerr);
    uint64_t datalen = f->len - 8 - hl;
    const uint8_t *data = f->buf + 8 + hl;
    if (j.t[0].type != MJSON_OBJECT) {
        mjson_fini(&j);
        return embed_fail(err, errlen, EMBED_EFORMAT, "%s: header is not a JSON object", fname);
    }
    f->t = calloc(j.t[0].n ? j.t[0].n : 1, sizeof *f->t);
    if (!f->t) {
        mjson_fini(&j);
        return embed_fail(err, errlen, -ENOMEM, "%s: out of memory", fname);
    }
    rc = 0;
    for (int k = mjson_first(&j, 0); k >= 0 && rc == 0; k = mjson_next(&j, k)) {
        if (mjson_streq(&j, k, "__metadata__")) {
            if (j.t[k + 1].type != MJSON_OBJECT)
                rc = embed_fail(err, errlen, EMBED_EFORMAT, "%s: __metadata__ is not an object",
                                fname);
            continue;
        }
        size_t cap = j.t[k].end - j.t[k].start; /* >= the unescaped length + 1 */
        st_tensor *t = &f->t[f->n];
        t->name = malloc(cap);
        if (!t->name) {
            rc = embed_fail(err, errlen, -ENOMEM, "%s: out of memory", fname);
            break;
        }
        f->n++;
        mjson_str(&j, k, t->name, cap);
        rc = st_parse_tensor(&j, k + 1, t, datalen, fname, err, errlen);
    }
    mjson_fini(&j);
    if (rc < 0) return rc;
    qsort(f->t, f->n, sizeof *f->t, st_cmp_name);
    for (size_t i = 1; i < f->n; i++)
        if (!strcmp(f->t[i - 1].name, f->t[i].name))
            return embed_fail(err, errlen, EMBED_EFORMAT, "%s: tensor '%s' appears twice", fname,
                              f->t[i].name);
    /* Overlaps: sorted by first byte, each must end before the next starts
     * (empty tensors overlap nothing). */
    st_tensor *by = malloc((f->n ? f->n : 1) * sizeof *by);
    if (!by) return embed_fail(err, errlen, -ENOMEM, "%s: out of memory", fname);
    memcpy(by, f->t, f->n * sizeof *by);
    qsort(by, f->n, sizeof *by, st_cmp_off);
    uint64_t end = 0;
    const char *prev = NULL;
    for (size_t i = 0; i < f->n; i++) {
        uint64_t b = (uint64_t)(uintptr_t)by[i].data;
        if (by[i].nbytes && b < end) {
            rc = embed_fail(err, errlen, EMBED_EFORMAT, "%s: tensors '%s' and '%s' overlap",
                            fname, prev, by[i].name);
            break;
        }
        if (by[i].nbytes) end = b + by[i].nbytes, prev = by[i].name;
    }
    free(by);
    if (rc < 0) return rc;
    for (size_t i = 0; i < f->n; i++) f->t[i].data = data + (uintptr_t)f->t[i].data;
    return 0;
}

void st_free(st_file *f)
{
    if (!f) return;
    for (size_t i = 0; i < f->n; i++) free(f->t[i].name);
    free(f->t);
    free(f->buf);
    free(f);
}

static int st_finish(st_file *f, const char *name, st_file **out, char *err, size_t errlen)
{
    int rc = st_parse(f, name, err, errlen);
    if (rc < 0) {
        st_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

int st_open(const char *path, st_file **out, char *err, size_t errlen)
{
    if (!path || !out) return -EINVAL;
    *out = NULL;
    st_file *f = calloc(1, sizeof *f);
    if (!f) return embed_fail(err, errlen, -ENOMEM, "out of memory");
    int rc = embed_read_file(path, SIZE_MAX, &f->buf, &f->len, err, errlen);
    if (rc < 0) {
        free(f);
        return rc;
    }
    const char *base = strrchr(path, '/');
    return st_finish(f, base ? base + 1 : path, out, err, errlen);
}

int st_open_mem(const void *buf, size_t len, const char *name, st_file **out, char *err,
                size_t errlen)
{
    if ((!buf && len) || !out) return -EINVAL;
    *out = NULL;
    st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->buf = malloc(len ? len : 1))) {
        free(f);
        return embed_fail(err, errlen, -ENOMEM, "out of memory");
    }
    if (len) memcpy(f->buf, buf, len);
    f->len = len;
    return st_finish(f, name ? name : "safetensors", out, err, errlen);
}

size_t st_count(const st_file *f) { return f ? f->n : 0; }

const st_tensor *st_at(const st_file *f, size_t i) { return f && i < f->n ? &f->t[i] : NULL; }

const st_tensor *st_find(const st_file *f, const char *name)
{
    if (!f || !name) return NULL;
    size_t lo = 0, hi = f->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(f->t[mid].name, name);
        if (!c) return &f->t[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

float st_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = h >> 10 & 31, man = h & 1023, bits;
    if (exp == 31) {
        bits = sign | 0x7F800000u | man << 13;       /* inf, NaN */
    } else if (exp) {
        bits = sign | (exp + 112) << 23 | man << 13;  /* normal: rebias 15 -> 127 */
    } else if (man) {                                 /* subnormal: normalise */
        int e = 113;
        while (!(man & 1024)) man <<= 1, e--;
        bits = sign | (uint32_t)e << 23 | (man & 1023) << 13;
    } else {
        bits = sign;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

float st_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

int st_to_f32(const st_tensor *t, float *out)
{
    const uint8_t *p = t->data;
    switch (t->dtype) {
    case ST_F32:
        for (uint64_t i = 0; i < t->count; i++) {
            uint32_t b = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
                         (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
            memcpy(&out[i], &b, 4);
        }
        return 0;
    case ST_F16:
        for (uint64_t i = 0; i < t->count; i++)
            out[i] = st_f16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        return 0;
    case ST_BF16:
        for (uint64_t i = 0; i < t->count; i++)
            out[i] = st_bf16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        return 0;
    default: return EMBED_EFORMAT;
    }
}
