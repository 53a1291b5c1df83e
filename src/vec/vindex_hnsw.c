/* vindex_hnsw.c -- HNSW as an engine of the index front: its table of
 * operations (vindex_engine.h), each a call into hnsw.h.  The search
 * scratch is an hnsw_search_ctx; the repair is hnsw_reconnect.  HNSW
 * cannot split a search into exact parts (approximate by nature), so those
 * operations are absent.  No state; threads as in vindex_engine.h. */
#include "vindex_engine.h"

#include <errno.h>
#include <string.h>

#include "engram/hnsw.h"
#include "engram/le.h"

static hnsw_params params_of(const vindex_params *p)
{
    return (hnsw_params){ .dim = p->dim, .metric = p->metric, .quant = p->quant, .M = p->M,
                          .ef_construction = p->ef_construction, .ef_search = p->ef_search,
                          .seed = p->seed, .initial_capacity = p->initial_capacity,
                          .kernels = p->kernels, .alloc = p->alloc };
}

static void *op_create(const vindex_params *p, int *err)
{
    hnsw_params hp = params_of(p);
    return hnsw_new(&hp, err);
}

static int op_load(const vindex_params *p, const img_source *src, void **out, char *err,
                   size_t errlen)
{
    hnsw_params hp = params_of(p);
    hnsw *h = NULL;
    int rc = hnsw_load(&hp, src, &h, err, errlen);
    *out = h;
    return rc;
}

static void op_destroy(void *e) { hnsw_free(e); }
static int op_save(const void *e, img_sink *s) { return hnsw_save(e, s); }
static int op_borrows(const void *e, const void *p) { return hnsw_borrows(e, p); }
static int op_reserve(void *e, uint32_t n) { return hnsw_reserve(e, n); }
static int op_insert(void *e, const void *v, uint32_t ef, uint32_t *id)
{
    return hnsw_insert_ef(e, v, ef, id);
}

static int op_update(void *e, uint32_t id, const void *v, uint32_t ef)
{
    return hnsw_update_ef(e, id, v, ef);
}
static int op_prepare(const void *e, void *scratch, const void *vec, uint32_t ef, void *out)
{
    return hnsw_prepare(e, scratch, vec, ef, out);
}

static int op_insert_prepared(void *e, const void *vec, const void *p, uint32_t *id)
{
    return hnsw_insert_prepared(e, vec, p, id);
}

/* The outcome's bytes: u8 level, u8 M, then per layer 0..level u8 count
 * and count x u32 neighbour id (little-endian). */
static size_t op_outcome(const void *e, unsigned char *b, size_t cap)
{
    hnsw_prepared p;
    if (!hnsw_last_plan(e, &p) || cap < 2) return 0;
    size_t at = 0;
    b[at++] = (unsigned char)p.level;
    b[at++] = (unsigned char)p.M;
    for (int l = 0; l <= p.level; l++) {
        if (at + 1 + 4 * (size_t)p.n[l] > cap) return 0;
        b[at++] = (unsigned char)p.n[l];
        for (uint32_t i = 0; i < p.n[l]; i++, at += 4) le_put32(b + at, p.ids[(size_t)l * p.M + i]);
    }
    return at;
}

static int op_insert_outcome(void *e, const void *vec, const unsigned char *b, size_t n,
                             uint32_t *id)
{
    hnsw_prepared p;
    size_t at = 2;
    if (n < 2 || b[0] > HNSW_MAX_LEVEL || b[1] == 0 || b[1] > VEC_M_MAX) return -EAGAIN;
    memset(p.n, 0, sizeof p.n);
    p.level = b[0];
    p.M = b[1];
    for (int l = 0; l <= p.level; l++) {
        if (at >= n || b[at] > p.M || n - at - 1 < 4 * (size_t)b[at]) return -EAGAIN;
        p.n[l] = b[at++];
        for (uint32_t i = 0; i < p.n[l]; i++, at += 4) p.ids[(size_t)l * p.M + i] = le_get32(b + at);
    }
    if (at != n) return -EAGAIN;
    return hnsw_insert_planned(e, vec, &p, id);
}

static int op_del(void *e, uint32_t id) { return hnsw_delete(e, id); }
static int op_repair(void *e) { return hnsw_reconnect(e); }
static const void *op_vector(const void *e, uint32_t id) { return hnsw_vector(e, id); }
static int op_level(const void *e, uint32_t id) { return hnsw_node_level(e, id); }

static int op_links(const void *e, uint32_t id, int layer, uint32_t *out, uint32_t cap)
{
    return hnsw_links(e, id, layer, out, cap);
}
static uint32_t op_count(const void *e) { return hnsw_count(e); }
static uint32_t op_capacity(const void *e) { return hnsw_capacity(e); }
static size_t op_memory(const void *e) { return hnsw_memory(e); }
static const dist_kernels *op_kernels(const void *e) { return hnsw_kernels(e); }
static int op_max_level(const void *e) { return hnsw_max_level(e); }
static int op_validate(const void *e, char *err, size_t n) { return hnsw_validate(e, err, n); }
static void *op_scratch_new(const vec_allocator *al) { return hnsw_search_ctx_new(al); }
static void op_scratch_free(void *s) { hnsw_search_ctx_free(s); }

static int op_search(const void *e, void *scratch, const void *q, uint32_t k, uint32_t ef,
                     vec_filter_fn *accept, void *ud, uint32_t effort, vec_pair *out,
                     uint32_t *n)
{
    return hnsw_search_effort(e, scratch, q, k, ef, accept, ud, effort, out, n);
}

const vindex_engine vindex_hnsw_engine = {
    .create = op_create,
    .load = op_load,
    .destroy = op_destroy,
    .save = op_save,
    .borrows = op_borrows,
    .reserve = op_reserve,
    .insert = op_insert,
    .update = op_update,
    .prepared_size = sizeof(hnsw_prepared),
    .prepare = op_prepare,
    .insert_prepared = op_insert_prepared,
    .outcome = op_outcome,
    .insert_outcome = op_insert_outcome,
    .del = op_del,
    .repair = op_repair,
    .vector = op_vector,
    .level = op_level,
    .links = op_links,
    .count = op_count,
    .capacity = op_capacity,
    .memory = op_memory,
    .kernels = op_kernels,
    .max_level = op_max_level,
    .validate = op_validate,
    .scratch_new = op_scratch_new,
    .scratch_free = op_scratch_free,
    .search = op_search,
};
