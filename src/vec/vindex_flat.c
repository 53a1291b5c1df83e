/* vindex_flat.c -- FLAT as an engine of the index front: its table of
 * operations (vindex_engine.h), each a call into flat.h.  A linear scan
 * needs no search scratch and has nothing to repair or layer, so those
 * operations are absent; it is the engine that splits an exact search
 * into parts (flat_search_range, flat_merge).  FLAT stores float32 only
 * (vindex refuses a quantised FLAT), so its records are dim floats.  No
 * state; threads as in vindex_engine.h. */
#include "vindex_engine.h"

#include <errno.h>

#include "engram/flat.h"

static flat_params params_of(const vindex_params *p)
{
    return (flat_params){ .dim = p->dim, .metric = p->metric,
                          .initial_capacity = p->initial_capacity, .kernels = p->kernels,
                          .alloc = p->alloc };
}

static void *op_create(const vindex_params *p, int *err)
{
    flat_params fp = params_of(p);
    return flat_new(&fp, err);
}

static int op_load(const vindex_params *p, const img_source *src, void **out, char *err,
                   size_t errlen)
{
    flat_params fp = params_of(p);
    flat *f = NULL;
    int rc = flat_load(&fp, src, &f, err, errlen);
    *out = f;
    return rc;
}

static void op_destroy(void *e) { flat_free(e); }
static int op_save(const void *e, img_sink *s) { return flat_save(e, s); }
static int op_borrows(const void *e, const void *p) { return flat_borrows(e, p); }
static int op_reserve(void *e, uint32_t n) { return flat_reserve(e, n); }
static int op_insert(void *e, const void *v, uint32_t ef, uint32_t *id)
{
    (void)ef;
    return flat_insert(e, v, id);
}

static int op_update(void *e, uint32_t id, const void *v, uint32_t ef)
{
    (void)ef;
    return flat_update(e, id, v);
}
static int op_del(void *e, uint32_t id) { return flat_delete(e, id); }
static const void *op_vector(const void *e, uint32_t id) { return flat_vector(e, id); }
static uint32_t op_count(const void *e) { return flat_count(e); }
static uint32_t op_capacity(const void *e) { return flat_capacity(e); }
static size_t op_memory(const void *e) { return flat_memory(e); }
static const dist_kernels *op_kernels(const void *e) { return flat_kernels(e); }
static int op_validate(const void *e, char *err, size_t n) { return flat_validate(e, err, n); }
static uint32_t op_slots(const void *e) { return flat_used(e); }

static int op_search(const void *e, void *scratch, const void *q, uint32_t k, uint32_t ef,
                     vec_filter_fn *accept, void *ud, uint32_t effort, vec_pair *out,
                     uint32_t *n)
{
    (void)scratch;
    (void)ef;
    (void)effort;
    return flat_search(e, q, k, accept, ud, out, n);
}

static int op_search_range(const void *e, const float *q, uint32_t k, uint32_t lo, uint32_t hi,
                           vec_filter_fn *accept, void *ud, vec_pair *out, uint32_t *n)
{
    return flat_search_range(e, q, k, lo, hi, accept, ud, out, n);
}

static int op_merge(const vec_pair *const *parts, const uint32_t *nparts, int count, uint32_t k,
                    vec_pair *out, uint32_t *n)
{
    if (count < 0 || count > FLAT_MERGE_MAX) return -EINVAL;
    flat_merge(parts, nparts, count, k, out, n);
    return 0;
}

const vindex_engine vindex_flat_engine = {
    .create = op_create,
    .load = op_load,
    .destroy = op_destroy,
    .save = op_save,
    .borrows = op_borrows,
    .reserve = op_reserve,
    .insert = op_insert,
    .update = op_update,
    .del = op_del,
    .vector = op_vector,
    .count = op_count,
    .capacity = op_capacity,
    .memory = op_memory,
    .kernels = op_kernels,
    .validate = op_validate,
    .search = op_search,
    .slots = op_slots,
    .search_range = op_search_range,
    .merge = op_merge,
};
