/* cmd_vset.c -- Redis 8's vector-set commands: VADD (Redis's grammar), VSIM,
 * VREM, VDIM, VEMB, VLINKS, VINFO, VSETATTR, VGETATTR, VRANDMEMBER,
 * VISMEMBER, VRANGE.  VCARD is shared with engram's dialect (cmd_vec.c).
 *
 * One engine, two dialects.  A vector set is one kind of key whichever
 * dialect made it; these handlers answer exactly as Redis 8.8 does -- its
 * replies, its error texts and the order it checks things in (its sources,
 * modules/vector-sets/vset.c, are the reference: see docs/commands.md) --
 * so that redis-py's vset(), node-redis's vAdd/vSim and Redis's own tests
 * work unchanged.  VADD belongs to both dialects: its third argument decides
 * (REDUCE, FP32 or VALUES: Redis's grammar, here; anything else: engram's,
 * cmd_vec.c).  VINFO key is Redis's nine fields; VINFO key FULL is engram's
 * longer map (cmd_vec.c).
 *
 * What a set made here is: an HNSW index with the cosine metric, the
 * quantisation asked for (Q8 unless NOQUANT or BIN), M (16 unless given),
 * ef_construction 200 and search ef 100 (Redis's defaults), a seed from the
 * key's name (so a log replays into the same graph), and, with REDUCE, a
 * projection (vset.h).  Attributes are the index's payloads (vattr.h: a
 * JSON object's members parsed once, any other text kept as Redis keeps
 * it).  The set's key is deleted when VREM takes its last element, as in
 * Redis.
 *
 * Where engram differs, on purpose: M up to 64 (Redis: 4096) -- `ERR invalid
 * M` beyond; a vector with NaN or infinite components is refused (`ERR
 * invalid vector specification`) where Redis would store it; an update is
 * written to the log (Redis does not propagate an update that replies 0,
 * engram's durability needs it); RERANK (a float copy for re-ranking) is
 * engram's own.
 *
 * Threads: VSIM runs on the worker pool as a search job (vsearch.h) unless
 * NOTHREAD, inside EXEC, or without a pool; VADD ... CAS searches for its
 * neighbours on the pool and commits on the loop (below); everything else
 * runs on the loop thread, taking the set's write lock to change it (reads
 * need none: only the loop thread writes). */
#include "server.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engram/mem.h"
#include "engram/oplog.h"
#include "engram/pool.h"
#include "engram/quant.h"
#include "engram/util.h"
#include "engram/vfilter.h"
#include "engram/vindex.h"
#include "engram/vproj.h"
#include "engram/vset.h"
#include "handlers.h"
#include "keyspace.h"
#include "notify.h"
#include "persist.h"
#include "vkeys.h"
#include "vsearch.h"

#define VS_DIM_MAX      65536u      /* Redis's VSET_MAX_VECTOR_DIM */
#define VS_EF_MAX       1000000LL   /* VADD and VSIM EF */
#define VS_M_MIN        4LL         /* Redis's HNSW_MIN_M */
#define VS_BUILD_EF     200u        /* VSET_DEFAULT_C_EF */
#define VS_SEARCH_EF    100u        /* VSET_DEFAULT_SEARCH_EF */
#define VS_COUNT        10LL        /* VSET_DEFAULT_COUNT */
#define VS_ERR_SPEC     "ERR invalid vector specification"

/* ---- shared pieces ---------------------------------------------------------- */

/* Redis's module-level arity error: the command name as the client typed
 * it (the table's arity check names it in capitals, as Redis core does). */
static void vs_arity_typed(client *c)
{
    reply_errorf(&c->out, "ERR wrong number of arguments for '%.*s' command",
                 (int)(c->argvlen[0] < 64 ? c->argvlen[0] : 64), c->argv[0]);
}

static int vs_finite(const float *v, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return 0;
    return 1;
}

/* Redis's parseVector: [REDUCE dim] (FP32 blob | VALUES n v1..vn) from
 * argv[start].  REDUCE is looked for only when reduce is given and at least
 * two arguments follow it.  Returns the vector (mem_alloc'd) with *dim and
 * the arguments consumed, or NULL (the caller replies "invalid vector
 * specification"). */
static float *vs_parse_vector(client *c, int start, uint32_t *dim, uint32_t *reduce,
                              int *consumed)
{
    int used = 0;
    long long v;
    if (reduce) *reduce = 0;
    if (reduce && c->argc > start + 2 && arg_is(c, start, "reduce")) {
        if (!util_str2ll(c->argv[start + 1], c->argvlen[start + 1], &v) || v <= 0 ||
            v > VS_DIM_MAX)
            return NULL;
        *reduce = (uint32_t)v;
        start += 2;
        used += 2;
    }
    if (start >= c->argc) return NULL;
    float *vec = NULL;
    if (arg_is(c, start, "fp32")) {
        if (c->argc < start + 2) return NULL;
        size_t len = c->argvlen[start + 1];
        if (len % 4 || len < 4 || len / 4 > VS_DIM_MAX) return NULL;
        *dim = (uint32_t)(len / 4);
        vec = mem_alloc(len);
        memcpy(vec, c->argv[start + 1], len);    /* native float32, as Redis */
        used += 2;
    } else if (arg_is(c, start, "values")) {
        if (c->argc < start + 2) return NULL;
        if (!util_str2ll(c->argv[start + 1], c->argvlen[start + 1], &v) || v < 1 ||
            v > VS_DIM_MAX || c->argc < start + 2 + v)
            return NULL;
        *dim = (uint32_t)v;
        vec = mem_alloc((size_t)v * sizeof *vec);
        for (long long j = 0; j < v; j++) {
            double d;
            if (!util_str2d(c->argv[start + 2 + j], c->argvlen[start + 2 + j], &d)) {
                mem_free(vec);
                return NULL;
            }
            vec[j] = (float)d;
        }
        used += (int)v + 2;
    } else {
        return NULL;
    }
    if (reduce && *reduce > *dim) {
        mem_free(vec);
        return NULL;
    }
    *consumed = used;
    return vec;
}

/* in (proj's input dim floats) projected into a new vector of its output
 * dim; in is freed. */
static float *vs_project(const vproj *p, float *in)
{
    float *out = mem_alloc((size_t)vproj_out_dim(p) * sizeof *out);
    vproj_apply(p, NULL, in, out);
    mem_free(in);
    return out;
}

static const char *vs_quant_name(quant_type q)
{
    switch (q) {
    case QUANT_NONE: return "f32";
    case QUANT_Q8: return "int8";
    case QUANT_BIN: return "bin";
    }
    return "unknown";
}

/* The set at argv[1]: NULL with *wrongtype telling a key of another type
 * from a missing one. */
static vset *vs_get(client *c, int *wrongtype)
{
    return vkey_get(c, c->argv[1], c->argvlen[1], wrongtype);
}

/* The score Redis reports for an internal cosine distance: 1 - d/2. */
static double vs_score(float dist)
{
    return 1.0 - (double)dist / 2.0;
}

/* ---- VADD ... CAS: the neighbour search on the pool, the commit on the loop ----
 * Redis's CAS insert: a new element of an existing set has its neighbours
 * found on a worker under the set's read lock (searches go on meanwhile),
 * and the loop commits them under the write lock -- if the key still holds
 * the same set and the element is still absent (else nothing is done, as
 * in Redis: the other write won).  If anything changed the set in between,
 * the commit does the whole insert itself (vindex_prepare_add).  The reply
 * is 1 in every case, as Redis's; it goes out in request order through the
 * deferred replies (deferred.h), and the client's later commands wait for
 * it (VADD is not CMD_DEFERRED), as a blocked Redis client's do. */

typedef struct vadd_cas {
    deferred d;             /* first */
    server *srv;
    vset *e;                /* a reference while the job lives */
    int db;
    char *key, *el, *attr;  /* owned copies */
    size_t klen, ellen, alen;
    int has_attr;
    float *vec;             /* the vector the set stores (after any projection) */
    uint32_t dim, ef, logef;
    vindex_prepared *plan;
    int rc;                 /* vindex_prepare_add's */
} vadd_cas;

static void cas_work(pool_job *pj, int worker)
{
    vadd_cas *j = (vadd_cas *)pj;
    vset_read_lock(j->e);
    j->rc = vset_dropped(j->e) || !j->plan ? -ENOENT :
        vindex_prepare_add(vset_index(j->e), srv_worker_ctx(j->srv, worker), j->vec, j->dim,
                           j->ef, j->plan);
    vset_read_unlock(j->e);
}

static void cas_done(pool_job *pj)
{
    vadd_cas *j = (vadd_cas *)pj;
    server *s = j->srv;
    client *c = j->d.c;
    if (!c) {                   /* the client left: nothing is added (as a Redis
                                 * client unblocked by disconnecting), which also
                                 * keeps shutdown's pool_free from writing */
        deferred_done(&j->d);
        return;
    }
    const char *failed = persist_write_error(s);
    if (failed) {               /* the log failed meanwhile: refused, as writes are */
        reply_errorf(&j->d.out, "MISCONF Errors writing to the write-ahead log (%s). Writes are "
                     "refused until a snapshot succeeds; see INFO persistence.", failed);
        deferred_done(&j->d);
        return;
    }
    /* The commit is the client's write: its reply waits for the log as a
     * command's would (persist.h), and fails with it. */
    persist_cmd_begin(s, c);
    vset *cur = vkey_peek(s, j->db, j->key, j->klen);
    if (cur == j->e && !vindex_exists(vset_index(cur), j->el, j->ellen, NULL)) {
        vindex_add_args a;
        vindex_add_args_init(&a, j->el, j->ellen, j->vec, j->dim);
        a.ef = j->ef;
        a.prepared = j->rc == 0 && j->plan ? j->plan : NULL;
        if (j->has_attr) {
            a.has_payload = 1;
            a.payload = j->attr;
            a.plen = j->alen;
        }
        vset_write_lock(cur);
        vindex_add_result res = { 0 };
        int rc = vindex_add_ex(vset_index(cur), &a, &res);
        if (rc >= 0) vset_count_node(cur);
        vset_write_unlock(cur);
        if (rc >= 0) {
            persist_log_vadd(s, j->db, j->key, j->klen, j->el, j->ellen, j->vec, j->dim, 0,
                             j->has_attr ? j->attr : NULL, j->alen, j->logef);
            key_touched(s, j->db, j->key, j->klen);
            srv_vec_modified(s);
            s->vec_cas_planned += res.planned;
            notify_keyspace_event(s, NOTIFY_MODULE, "vadd", j->db, j->key, j->klen);
        }
    }
    persist_cmd_end(s, c);
    reply_bool(&j->d.out, 1);       /* whatever happened, as Redis's CAS answers */
    deferred_done(&j->d);
}

static void cas_release(deferred *d)
{
    vadd_cas *j = (vadd_cas *)d;
    vset_release(j->e);
    vindex_prepared_free(j->plan);
    mem_free(j->key);
    mem_free(j->el);
    mem_free(j->attr);
    mem_free(j->vec);
    reply_fini(&j->d.out);
    mem_free(j);
}

static char *dup_bytes(const char *p, size_t n)
{
    char *d = mem_alloc(n ? n : 1);
    if (n) memcpy(d, p, n);
    return d;
}

/* Start the CAS insert of element el (vec, owned by the job from here). */
static void cas_start(client *c, vset *e, int el, int attr, float *vec, uint32_t dim,
                      uint32_t ef, uint32_t logef)
{
    vadd_cas *j = mem_calloc(1, sizeof *j);
    reply_init(&j->d.out, c->resp);
    j->d.release = cas_release;
    j->d.job.work = cas_work;
    j->d.job.done = cas_done;
    j->srv = c->srv;
    j->e = vset_acquire(e);
    j->db = c->db;
    j->key = dup_bytes(c->argv[1], j->klen = c->argvlen[1]);
    j->el = dup_bytes(c->argv[el], j->ellen = c->argvlen[el]);
    if (attr >= 0) {
        j->has_attr = 1;
        j->attr = dup_bytes(c->argv[attr], j->alen = c->argvlen[attr]);
    }
    j->vec = vec;
    j->dim = dim;
    j->ef = ef;
    j->logef = logef;
    j->plan = vindex_prepared_new();
    c->srv->vec_cas++;
    j->d.barrier = 1;           /* the client's next commands see the element */
    deferred_start(c, &j->d);
    pool_submit(c->srv->pool, &j->d.job);
}

/* ---- VADD key [REDUCE dim] (FP32 blob | VALUES n ...) element [options] -------- */

void cmd_vadd_redis(client *c)
{
    if (c->argc < 5) {
        reply_error(&c->out, "ERR wrong number of arguments for 'VADD' command");
        return;
    }
    uint32_t dim = 0, reduce = 0;
    int consumed = 0;
    float *vec = vs_parse_vector(c, 2, &dim, &reduce, &consumed);
    if (!vec) {
        reply_error(&c->out, VS_ERR_SPEC);
        return;
    }
    if (c->argc - 2 - consumed < 1) {
        mem_free(vec);
        vs_arity_typed(c);
        return;
    }
    int el = 2 + consumed, attr = -1;
    long long ef = VS_BUILD_EF, M = VINDEX_M_DEFAULT, v;
    quant_type quant = QUANT_Q8;
    int keep_float = 0, cas = 0;
    for (int j = el + 1; j < c->argc; j++) {
        if (arg_is(c, j, "rerank")) {
            keep_float = 1;     /* engram: a new quantised set keeps a float copy */
        } else if (arg_is(c, j, "cas")) {
            cas = 1;
        } else if (arg_is(c, j, "ef") && j + 1 < c->argc) {
            if (!util_str2ll(c->argv[j + 1], c->argvlen[j + 1], &v) || v <= 0 || v > VS_EF_MAX) {
                mem_free(vec);
                reply_error(&c->out, "ERR invalid EF");
                return;
            }
            ef = v;
            j++;
        } else if (arg_is(c, j, "m") && j + 1 < c->argc) {
            if (!util_str2ll(c->argv[j + 1], c->argvlen[j + 1], &v) || v < VS_M_MIN ||
                v > VINDEX_M_MAX) {
                mem_free(vec);
                reply_error(&c->out, "ERR invalid M");
                return;
            }
            M = v;
            j++;
        } else if (arg_is(c, j, "setattr") && j + 1 < c->argc) {
            attr = ++j;
        } else if (arg_is(c, j, "noquant")) {
            quant = QUANT_NONE;
        } else if (arg_is(c, j, "bin")) {
            quant = QUANT_BIN;
        } else if (arg_is(c, j, "q8")) {
            quant = QUANT_Q8;
        } else {
            mem_free(vec);
            reply_error(&c->out, "ERR invalid option after element");
            return;
        }
    }
    if (!vs_finite(vec, dim)) {
        mem_free(vec);
        reply_error(&c->out, VS_ERR_SPEC);
        return;
    }
    int wrongtype, created = 0;
    vindex_params newp;
    vset *e = vs_get(c, &wrongtype);
    if (wrongtype) {
        mem_free(vec);
        reply_error(&c->out, WRONGTYPE_ERR);
        return;
    }
    if (!e) {
        created = 1;
        vindex_params p;
        vindex_params_init(&p, VINDEX_HNSW, reduce ? reduce : dim, DIST_COSINE);
        p.quant = quant;
        p.keep_float = keep_float;
        p.M = (uint32_t)M;
        p.ef_construction = VS_BUILD_EF;
        p.ef_search = VS_SEARCH_EF;
        p.seed = util_hash(c->argv[1], c->argvlen[1], 0x656e6772616dULL);
        char err[256];
        e = vkey_create(c->srv, c->db, c->argv[1], c->argvlen[1], &p, NULL, 0, reduce ? dim : 0,
                        err, sizeof err);
        if (!e) {
            mem_free(vec);
            reply_error(&c->out, err);
            return;
        }
        newp = p;               /* logged once the first add succeeded */
        if (reduce) {
            vec = vs_project(vset_projection(e), vec);
            dim = reduce;
        }
    } else {
        vindex *x = vset_index(e);
        vindex_stats st;
        vindex_stats_get(x, &st);
        const vproj *pj = vset_projection(e);
        if (st.quant != quant) {
            mem_free(vec);
            reply_error(&c->out, "ERR asked quantization mismatch with existing vector set");
            return;
        }
        if (st.type == VINDEX_HNSW && st.M != (uint32_t)M) {
            mem_free(vec);
            reply_error(&c->out, "ERR asked M value mismatch with existing vector set");
            return;
        }
        if ((!pj && st.dim != dim) || (pj && st.dim != reduce)) {
            mem_free(vec);
            reply_errorf(&c->out, "ERR Vector dimension mismatch - got %d but set has %d", (int)dim,
                         (int)st.dim);
            return;
        }
        if (reduce && !pj) {
            mem_free(vec);
            reply_error(&c->out, "ERR cannot add projection to existing set without projection");
            return;
        }
        if (pj) {
            if (dim != vproj_in_dim(pj)) {
                mem_free(vec);
                reply_errorf(&c->out, "ERR Input dimension mismatch for projection - got %d but "
                             "projection expects %d", (int)dim, (int)vproj_in_dim(pj));
                return;
            }
            vec = vs_project(pj, vec);
            dim = st.dim;
        }
    }

    vindex *x = vset_index(e);
    int exists = vindex_exists(x, c->argv[el], c->argvlen[el], NULL);
    uint32_t bef = (uint32_t)(ef < VINDEX_EF_MAX ? ef : VINDEX_EF_MAX);
    vindex_stats xs;
    vindex_stats_get(x, &xs);
    /* the log names the beam when replay would not use it by itself */
    uint32_t logef = bef == xs.ef_construction ? 0 : bef;
    /* CAS on a new element of a set that existed, outside a transaction
     * and with a pool to search on; anything else inserts here, as Redis
     * falls back to its synchronous path */
    if (cas && !created && !exists && !(c->flags & CLIENT_IN_EXEC) && c->srv->pool &&
        vindex_type_of(x) == VINDEX_HNSW && vindex_capacity(x) == 0) {
        cas_start(c, e, el, attr, vec, dim, bef, logef);
        return;
    }
    vindex_add_args a;
    vindex_add_args_init(&a, c->argv[el], c->argvlen[el], vec, dim);
    a.ef = bef;
    unsigned lflags = 0;
    if (attr >= 0) {
        /* An empty SETATTR removes the attribute of an element being
         * updated; a new element keeps it, empty (as Redis does). */
        if (exists && c->argvlen[attr] == 0) {
            a.drop_payload = 1;
            lflags |= OP_VADD_DROP;
        } else {
            a.has_payload = 1;
            a.payload = c->argv[attr];
            a.plen = c->argvlen[attr];
        }
    }
    vset_write_lock(e);
    int rc = vindex_add_ex(x, &a, NULL);
    if (rc >= 0) vset_count_node(e);
    vset_write_unlock(e);
    if (rc < 0) {
        mem_free(vec);
        if (created) {          /* no empty set is left behind (nothing was logged) */
            kv_entry *k = key_lookup(c, c->argv[1], c->argvlen[1]);
            kv_del_entry(client_kv(c), k);
        }
        reply_errorf(&c->out, "ERR could not add the vector: %s", vindex_strerror(rc));
        return;
    }
    if (created) {
        const vproj *pj = vset_projection(e);
        persist_log_vnew(c->srv, c->db, c->argv[1], c->argvlen[1], &newp, 0, NULL, 0,
                         pj ? vproj_in_dim(pj) : 0);
    }
    persist_log_vadd(c->srv, c->db, c->argv[1], c->argvlen[1], c->argv[el], c->argvlen[el], vec,
                     dim, lflags, a.has_payload ? c->argv[attr] : NULL,
                     a.has_payload ? c->argvlen[attr] : 0, logef);
    mem_free(vec);
    key_touched(c->srv, c->db, c->argv[1], c->argvlen[1]);
    srv_vec_modified(c->srv);
    if (created) notify_key(c, NOTIFY_NEW, "new", c->argv[1], c->argvlen[1]);
    notify_key(c, NOTIFY_MODULE, "vadd", c->argv[1], c->argvlen[1]);
    reply_bool(&c->out, rc == 1);
}

/* ---- VSIM --------------------------------------------------------------------- */

static void vs_attr_reply(reply *r, const vindex *x, uint32_t id)
{
    size_t len;
    const void *p = vindex_payload(x, id, &len);
    if (p) reply_bulk(r, p, len);
    else reply_null(r);
}

/* The search and its reply, under the set's read lock (hit keys and
 * attributes are borrowed from the index).  Any thread. */
void vsim_run(vset *e, vindex_search_ctx *ctx, const vsearch_job *j, reply *r)
{
    vindex_query q = j->q;
    vsearch_filter ud;
    vset_read_lock(e);
    vindex *x = vset_index(e);
    uint32_t n = 0, k = q.k < vindex_count(x) ? q.k : vindex_count(x);
    int rc = 0;
    vindex_hit *hits = k ? mem_alloc((size_t)k * sizeof *hits) : NULL;
    if (!vset_dropped(e) && k) {
        q.k = k;
        if (j->vs.filter) {
            ud = (vsearch_filter){ x, j->vs.filter };
            q.accept = vsearch_accept;
            q.accept_ud = &ud;
        }
        rc = j->vs.truth ? vindex_search_exact(x, ctx, &q, hits, &n)
                         : vindex_search(x, ctx, &q, hits, &n);
    }
    if (rc < 0) {
        reply_errorf(r, "ERR search failed: %s", vindex_strerror(rc));
    } else {
        uint32_t m = 0;     /* EPSILON: stop at the first past it, as Redis */
        while (m < n && !(hits[m].dist / 2 > j->vs.epsilon)) m++;
        int ws = j->vs.withscores, wa = j->vs.withattribs;
        if (vset_dropped(e)) reply_array(r, 0);     /* the key went: as a missing key */
        else if (r->proto == 3 && (ws || wa)) reply_map(r, m);
        else reply_array(r, (long long)m * (1 + ws + wa));
        for (uint32_t i = 0; i < m; i++) {
            reply_bulk(r, hits[i].key, hits[i].klen);
            if (r->proto == 3 && ws && wa) reply_array(r, 2);
            if (ws) reply_double(r, vs_score(hits[i].dist));
            if (wa) vs_attr_reply(r, x, hits[i].id);
        }
    }
    vset_read_unlock(e);
    vset_count_search(e);
    mem_free(hits);
}

void cmd_vsim(client *c)
{
    vsearch_job *j = vsearch_job_new(c->srv, c->resp);
    reply *r = deferred_busy(c) ? &j->d.out : &c->out;
    int wrongtype;
    vset *e = vs_get(c, &wrongtype);
    float *vec = NULL;
    if (!e) {
        if (wrongtype) reply_error(r, WRONGTYPE_ERR);
        else reply_array(r, 0);
        goto immediate;
    }
    vindex *x = vset_index(e);
    uint32_t setdim = vindex_dim(x), dim = 0;
    int consumed = 0;
    if (arg_is(c, 2, "ele")) {
        if (!vindex_exists(x, c->argv[3], c->argvlen[3], NULL)) {
            reply_error(r, "ERR element not found in set");
            goto immediate;
        }
        vec = mem_alloc((size_t)setdim * sizeof *vec);
        vindex_get(x, c->argv[3], c->argvlen[3], vec);
        dim = setdim;
        consumed = 2;
    } else {
        if (!(vec = vs_parse_vector(c, 2, &dim, NULL, &consumed))) {
            reply_error(r, VS_ERR_SPEC);
            goto immediate;
        }
        const vproj *pj = vset_projection(e);
        if (pj && dim != setdim) {
            if (dim != vproj_in_dim(pj)) {
                reply_errorf(r, "ERR Input dimension mismatch for projection - got %d but "
                             "projection expects %d", (int)dim, (int)vproj_in_dim(pj));
                goto immediate;
            }
            vec = vs_project(pj, vec);
            dim = setdim;
        }
    }
    if (dim != setdim) {
        reply_errorf(r, "ERR Vector dimension mismatch - got %d but set has %d", (int)dim,
                     (int)setdim);
        goto immediate;
    }
    long long count = VS_COUNT, ef = 0, filter_ef = 0, v;
    double epsilon = 2.0;
    int nothread = 0, rerank = 0;
    for (int i = 2 + consumed; i < c->argc;) {
        if (arg_is(c, i, "withscores")) {
            j->vs.withscores = 1;
            i++;
        } else if (arg_is(c, i, "withattribs")) {
            j->vs.withattribs = 1;
            i++;
        } else if (arg_is(c, i, "truth")) {
            j->vs.truth = 1;
            i++;
        } else if (arg_is(c, i, "nothread")) {
            nothread = 1;
            i++;
        } else if (arg_is(c, i, "rerank")) {
            rerank = 1;         /* engram: re-rank with the float copy */
            i++;
        } else if (arg_is(c, i, "count") && i + 1 < c->argc) {
            if (!util_str2ll(c->argv[i + 1], c->argvlen[i + 1], &v) || v <= 0) {
                reply_error(r, "ERR invalid COUNT");
                goto immediate;
            }
            count = v;
            i += 2;
        } else if (arg_is(c, i, "epsilon") && i + 1 < c->argc) {
            double d;
            if (!util_str2d(c->argv[i + 1], c->argvlen[i + 1], &d) || d <= 0) {
                reply_error(r, "ERR invalid EPSILON");
                goto immediate;
            }
            epsilon = d;
            i += 2;
        } else if (arg_is(c, i, "ef") && i + 1 < c->argc) {
            if (!util_str2ll(c->argv[i + 1], c->argvlen[i + 1], &v) || v <= 0 || v > VS_EF_MAX) {
                reply_error(r, "ERR invalid EF");
                goto immediate;
            }
            ef = v;
            i += 2;
        } else if (arg_is(c, i, "filter-ef") && i + 1 < c->argc) {
            if (!util_str2ll(c->argv[i + 1], c->argvlen[i + 1], &v) || v <= 0) {
                reply_error(r, "ERR invalid FILTER-EF");
                goto immediate;
            }
            filter_ef = v;
            i += 2;
        } else if (arg_is(c, i, "filter") && i + 1 < c->argc) {
            if (!vsearch_filter_compile(r, c->argv[i + 1], c->argvlen[i + 1], &j->vs.filter))
                goto immediate;
            i += 2;
        } else {
            reply_error(r, "ERR syntax error in VSIM command");
            goto immediate;
        }
    }
    if (!vs_finite(vec, dim)) {
        reply_error(r, VS_ERR_SPEC);
        goto immediate;
    }
    if (rerank) {
        vindex_stats st;
        vindex_stats_get(x, &st);
        if (st.quant != QUANT_NONE && !st.keep_float) {
            reply_error(r, "ERR RERANK needs a set that keeps float vectors: create it with "
                        "VADD ... RERANK");
            goto immediate;
        }
    }
    if (filter_ef == 0) filter_ef = count * 100;
    if (dim > j->veccap) {
        mem_free(j->vec);
        j->vec = mem_alloc((size_t)dim * sizeof *j->vec);
        j->veccap = dim;
    }
    memcpy(j->vec, vec, (size_t)dim * sizeof *vec);
    mem_free(vec);
    vec = NULL;
    vindex_query_init(&j->q, j->vec, dim, count > UINT32_MAX ? UINT32_MAX : (uint32_t)count);
    long long beam = ef ? ef : VS_SEARCH_EF;
    if (beam < count) beam = count;
    j->q.ef = beam > VINDEX_EF_MAX ? VINDEX_EF_MAX : (uint32_t)beam;
    j->q.effort = filter_ef > UINT32_MAX ? UINT32_MAX : (uint32_t)filter_ef;
    j->q.rerank = rerank;
    j->vs.on = 1;
    j->vs.epsilon = (float)epsilon;
    if (nothread || (c->flags & CLIENT_IN_EXEC) || !c->srv->pool) {
        vsim_run(e, srv_loop_ctx(c->srv), j, r);
        goto immediate;
    }
    vsearch_start(c, j, e, c->argv[1], c->argvlen[1]);
    return;
immediate:
    mem_free(vec);
    if (r == &j->d.out) deferred_answer(c, &j->d);
    else vsearch_job_discard(j);
}

/* ---- VREM, VISMEMBER, VDIM ------------------------------------------------------ */

void cmd_vrem(client *c)
{
    int wrongtype;
    vset *e = vs_get(c, &wrongtype);
    if (wrongtype) {
        reply_error(&c->out, WRONGTYPE_ERR);
        return;
    }
    if (!e) {
        reply_bool(&c->out, 0);
        return;
    }
    vset_write_lock(e);
    int rc = vindex_del(vset_index(e), c->argv[2], c->argvlen[2]);
    int empty = vindex_count(vset_index(e)) == 0;
    vset_write_unlock(e);
    if (rc > 0) {
        persist_log_vdel(c->srv, c->db, c->argv[1], c->argvlen[1], c->argv[2], c->argvlen[2]);
        if (empty) {    /* no empty vector sets: the key goes with its last element */
            kv_entry *k = key_lookup(c, c->argv[1], c->argvlen[1]);
            kv_del_entry(client_kv(c), k);
            key_modified(c->srv, c->db, c->argv[1], c->argvlen[1]);
        } else {
            key_touched(c->srv, c->db, c->argv[1], c->argvlen[1]);
        }
        srv_vec_modified(c->srv);
        notify_key(c, NOTIFY_MODULE, "vrem", c->argv[1], c->argvlen[1]);
        if (empty) notify_key(c, NOTIFY_GENERIC, "del", c->argv[1], c->argvlen[1]);
    }
    reply_bool(&c->out, rc > 0);
}

void cmd_vismember(client *c)
{
    int wrongtype;
    vset *e = vs_get(c, &wrongtype);
    if (wrongtype) reply_error(&c->out, WRONGTYPE_ERR);
    else reply_bool(&c->out, e && vindex_exists(vset_index(e), c->argv[2], c->argvlen[2], NULL));
}

void cmd_vdim(client *c)
{
    int wrongtype;
    vset *e = vs_get(c, &wrongtype);
    if (wrongtype) reply_error(&c->out, WRONGTYPE_ERR);
    else if (!e) reply_error(&c->out, "ERR key does not exist");
    else reply_int(&c->out, vindex_dim(vset_index(e)));
}

/* ---- VEMB key element [RAW] ------------------------------------------------------- */

void cmd_vemb(client *c)
{
    int raw = 0;
    for (int i = 3; i < c->argc; i++) {
        if (!arg_is(c, i, "raw")) {
            reply_error(&c->out, "ERR invalid option");
            return;
        }
        raw = 1;
    }
    int wrongtype;
    vset *e = vs_get(c, &wrongtype);
    uint32_t id;
    if (wrongtype) {
        reply_error(&c->out, WRONGTYPE_ERR);
        return;
    }
    if (!e || !vindex_exists(vset_index(e), c->argv[2], c->argvlen[2], &id)) {
        reply_null(&c->out);
        return;
    }
    vindex *x = vset_index(e);
    vindex_stats st;
    vindex_stats_get(x, &st);
    uint32_t dim = st.dim;
    if (!raw) {
        float *v = mem_alloc((size_t)dim * sizeof *v);
        vindex_get(x, c->argv[2], c->argvlen[2], v);
        reply_array(&c->out, dim);
        for (uint32_t i = 0; i < dim; i++) reply_double(&c->out, (double)v[i]);
        mem_free(v);
        return;
    }
    size_t len;
    float norm;
    const unsigned char *rec = vindex_record(x, id, &len, &norm);
    reply_array(&c->out, st.quant == QUANT_Q8 ? 4 : 3);
    reply_simple(&c->out, vs_quant_name(st.quant));
    /* the stored bytes: the normalised float32, the int8 codes or the bits */
    reply_bulk(&c->out, rec, quant_bytes(st.quant, dim));
    /* a zero vector has no norm to keep; Redis reports 1 for it */
    reply_double(&c->out, norm == 0.0f ? 1.0 : (double)norm);
    if (st.quant == QUANT_Q8) reply_double(&c->out, (double)quant_q8_record_range(rec, dim));
}

/* ---- VLINKS key element [WITHSCORES] --------------------------------------------- */

void cmd_vlinks(client *c)
{
    int withscores = 0;
    if (c->argc > 4 || (c->argc == 4 && !arg_is(c, 3, "withscores"))) {
        vs_arity_typed(c);
        return;
    }
    withscores = c->argc == 4;
    int wrongtype;
    vset *e = vs_get(c, &wrongtype);
    uint32_t id;
    if (wrongtype) {
        reply_error(&c->out, WRONGTYPE_ERR);
        return;
    }
    if (!e || !vindex_exists(vset_index(e), c->argv[2], c->argvlen[2], &id)) {
        reply_null(&c->out);
        return;
    }
    vindex *x = vset_index(e);
    int level = vindex_level(x, id);
    uint32_t links[2 * VINDEX_M_MAX];
    reply_array(&c->out, level + 1);
    for (int l = level; l >= 0; l--) {
        int n = vindex_links(x, id, l, links, 2 * VINDEX_M_MAX);
        if (n < 0) n = 0;
        if (withscores) reply_map(&c->out, n);
        else reply_array(&c->out, n);
        for (int i = 0; i < n; i++) {
            size_t kl;
            const void *k = vindex_key(x, links[i], &kl);
            reply_bulk(&c->out, k, kl);
            if (withscores) {
                /* computed in float, as Redis does, then widened */
                float s = 1.0f - vindex_id_dist(x, id, links[i]) / 2.0f;
                reply_double(&c->out, (double)s);
            }
        }
    }
}

/* ---- VINFO key [FULL] ------------------------------------------------------------- */

void cmd_vinfo(client *c)
{
    if (c->argc > 3 || (c->argc == 3 && !arg_is(c, 2, "full"))) {
        reply_error(&c->out, "ERR wrong number of arguments for 'VINFO' command");
        return;
    }
    if (c->argc == 3) {
        cmd_vinfo_full(c);
        return;
    }
    int wrongtype;
    vset *e = vs_get(c, &wrongtype);
    if (wrongtype) {
        reply_error(&c->out, WRONGTYPE_ERR);
        return;
    }
    if (!e) {
        reply_null_array(&c->out);
        return;
    }
    vindex_stats st;
    vindex_stats_get(vset_index(e), &st);
    const vproj *pj = vset_projection(e);
    reply_map(&c->out, 9);
    reply_simple(&c->out, "quant-type");
    reply_simple(&c->out, vs_quant_name(st.quant));
    reply_simple(&c->out, "hnsw-m");
    reply_int(&c->out, st.M);
    reply_simple(&c->out, "vector-dim");
    reply_int(&c->out, st.dim);
    reply_simple(&c->out, "projection-input-dim");
    reply_int(&c->out, pj ? vproj_in_dim(pj) : 0);
    reply_simple(&c->out, "size");
    reply_int(&c->out, st.count);
    reply_simple(&c->out, "max-level");
    reply_int(&c->out, st.max_level < 0 ? 0 : st.max_level);
    reply_simple(&c->out, "attributes-count");
    reply_int(&c->out, st.payloads);
    reply_simple(&c->out, "vset-uid");
    reply_int(&c->out, (long long)vset_uid(e));
    reply_simple(&c->out, "hnsw-max-node-uid");
    reply_int(&c->out, (long long)vset_nodes(e));
}

/* ---- VSETATTR key element json, VGETATTR key element ------------------------------ */

void cmd_vsetattr(client *c)
{
    int wrongtype;
    vset *e = vs_get(c, &wrongtype);
    if (wrongtype) {
        reply_error(&c->out, WRONGTYPE_ERR);
        return;
    }
    if (!e || !vindex_exists(vset_index(e), c->argv[2], c->argvlen[2], NULL)) {
        reply_bool(&c->out, 0);
        return;
    }
    int drop = c->argvlen[3] == 0;    /* an empty string removes the attribute */
    vset_write_lock(e);
    int rc = vindex_set_payload(vset_index(e), c->argv[2], c->argvlen[2], c->argv[3],
                                c->argvlen[3], drop);
    vset_write_unlock(e);
    if (rc < 0) {
        reply_errorf(&c->out, "ERR could not set the attributes: %s", vindex_strerror(rc));
        return;
    }
    persist_log_vsetattr(c->srv, c->db, c->argv[1], c->argvlen[1], c->argv[2], c->argvlen[2], drop,
                         c->argv[3], c->argvlen[3]);
    key_touched(c->srv, c->db, c->argv[1], c->argvlen[1]);
    srv_vec_modified(c->srv);
    notify_key(c, NOTIFY_MODULE, "vsetattr", c->argv[1], c->argvlen[1]);
    reply_bool(&c->out, 1);
}

void cmd_vgetattr(client *c)
{
    int wrongtype;
    vset *e = vs_get(c, &wrongtype);
    uint32_t id;
    if (wrongtype) {
        reply_error(&c->out, WRONGTYPE_ERR);
        return;
    }
    if (!e || !vindex_exists(vset_index(e), c->argv[2], c->argvlen[2], &id)) {
        reply_null(&c->out);
        return;
    }
    vs_attr_reply(&c->out, vset_index(e), id);
}

/* ---- VRANDMEMBER key [count] -------------------------------------------------------- */

static void vs_reply_key(client *c, const vindex *x, uint32_t id)
{
    size_t kl;
    const void *k = vindex_key(x, id, &kl);
    reply_bulk(&c->out, k, kl);
}

void cmd_vrandmember(client *c)
{
    long long count = 0;
    if (c->argc > 3) {
        vs_arity_typed(c);
        return;
    }
    if (c->argc == 3) {
        if (!util_str2ll(c->argv[2], c->argvlen[2], &count)) {
            reply_error(&c->out, "ERR COUNT value is not an integer");
            return;
        }
        if (count == LLONG_MIN) {
            reply_error(&c->out, "ERR COUNT value is out of range");
            return;
        }
        if (count == 0) {       /* before the key is even looked up, as Redis */
            reply_array(&c->out, 0);
            return;
        }
    }
    int wrongtype;
    vset *e = vs_get(c, &wrongtype);
    if (wrongtype) {
        reply_error(&c->out, WRONGTYPE_ERR);
        return;
    }
    if (!e) {
        if (c->argc == 3) reply_array(&c->out, 0);
        else reply_null(&c->out);
        return;
    }
    vindex *x = vset_index(e);
    uint32_t size = vindex_count(x);
    if (size == 0) {            /* an empty set (VNEW, VDEL) answers as no set */
        if (c->argc == 3) reply_array(&c->out, 0);
        else reply_null(&c->out);
        return;
    }
    if (c->argc == 2) {
        vs_reply_key(c, x, vindex_random_id(x, util_rand64(&c->srv->rng)));
        return;
    }
    if (count < 0) {            /* |count| picks, repeats allowed */
        unsigned long long n = 0ULL - (unsigned long long)count;
        reply_array(&c->out, (long long)n);
        for (unsigned long long i = 0; i < n; i++)
            vs_reply_key(c, x, vindex_random_id(x, util_rand64(&c->srv->rng)));
        return;
    }
    /* min(count, size) distinct ids: a partial Fisher-Yates shuffle of all
     * live ids (they are dense) */
    uint32_t want = (unsigned long long)count < size ? (uint32_t)count : size;
    uint32_t *ids = mem_alloc((size_t)size * sizeof *ids), n = 0, cur = 0, id;
    const void *k;
    size_t kl;
    while (vindex_iter(x, &cur, &id, &k, &kl)) ids[n++] = id;
    reply_array(&c->out, want);
    for (uint32_t i = 0; i < want; i++) {
        uint32_t r = i + (uint32_t)(util_rand64(&c->srv->rng) % (n - i));
        uint32_t t = ids[i];
        ids[i] = ids[r];
        ids[r] = t;
        vs_reply_key(c, x, ids[i]);
    }
    mem_free(ids);
}

/* ---- VRANGE key start end [count] --------------------------------------------------- */

typedef struct vs_bound {
    int kind;               /* 0 -, 1 +, 2 [inclusive, 3 (exclusive */
    const char *s;
    size_t n;
} vs_bound;

/* -1 bad format, 0 ok */
static int vs_parse_bound(const char *s, size_t n, vs_bound *b)
{
    if (n == 1 && s[0] == '-') b->kind = 0;
    else if (n == 1 && s[0] == '+') b->kind = 1;
    else if (n >= 2 && (s[0] == '[' || s[0] == '(')) b->kind = s[0] == '[' ? 2 : 3;
    else return -1;
    b->s = s + 1;
    b->n = n - 1;
    return 0;
}

static int vs_keycmp(const void *a, size_t an, const void *b, size_t bn)
{
    int r = memcmp(a, b, an < bn ? an : bn);
    return r ? r : (an > bn) - (an < bn);
}

/* Whether key k is at or past the start bound, and within the end bound. */
static int vs_after_start(const vs_bound *b, const void *k, size_t n)
{
    if (b->kind == 0) return 1;
    int r = vs_keycmp(k, n, b->s, b->n);
    return b->kind == 2 ? r >= 0 : r > 0;
}

static int vs_before_end(const vs_bound *b, const void *k, size_t n)
{
    if (b->kind == 1) return 1;
    int r = vs_keycmp(k, n, b->s, b->n);
    return b->kind == 2 ? r <= 0 : r < 0;
}

typedef struct vs_key {
    const void *k;
    size_t n;
} vs_key;

static int vs_key_sort(const void *a, const void *b)
{
    const vs_key *x = a, *y = b;
    return vs_keycmp(x->k, x->n, y->k, y->n);
}

/* Keep the `limit` smallest keys in range in a max-heap (heap[0] the
 * largest kept). */
static void vs_heap_push(vs_key *h, uint32_t *n, uint32_t limit, vs_key x)
{
    if (*n == limit) {
        if (vs_key_sort(&x, &h[0]) >= 0) return;
        uint32_t i = 0;
        for (;;) {
            uint32_t l = 2 * i + 1, r = l + 1, m = i;
            vs_key mv = x;
            if (l < *n && vs_key_sort(&mv, &h[l]) < 0) { m = l; mv = h[l]; }
            if (r < *n && vs_key_sort(&mv, &h[r]) < 0) { m = r; mv = h[r]; }
            if (m == i) break;
            h[i] = h[m];
            i = m;
        }
        h[i] = x;
        return;
    }
    uint32_t i = (*n)++;
    while (i > 0 && vs_key_sort(&h[(i - 1) / 2], &x) < 0) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = x;
}

void cmd_vrange(client *c)
{
    if (c->argc > 5) {
        vs_arity_typed(c);
        return;
    }
    long long count = -1;
    if (c->argc == 5 && !util_str2ll(c->argv[4], c->argvlen[4], &count)) {
        reply_error(&c->out, "ERR invalid COUNT value");
        return;
    }
    vs_bound lo, hi;
    if (vs_parse_bound(c->argv[2], c->argvlen[2], &lo) < 0) {
        reply_error(&c->out, "ERR invalid start range format");
        return;
    }
    if (vs_parse_bound(c->argv[3], c->argvlen[3], &hi) < 0) {
        reply_error(&c->out, "ERR invalid end range format");
        return;
    }
    if (lo.kind == 1 || hi.kind == 0) {
        reply_error(&c->out, "ERR '-' can only be used as first argument, '+' only as second");
        return;
    }
    int wrongtype;
    vset *e = vs_get(c, &wrongtype);
    if (wrongtype) {
        reply_error(&c->out, WRONGTYPE_ERR);
        return;
    }
    if (!e) {
        reply_array(&c->out, 0);
        return;
    }
    /* One pass over the keys keeping the `count` smallest in range (the
     * index keeps no order): O(n log count). */
    vindex *x = vset_index(e);
    uint32_t size = vindex_count(x);
    uint32_t limit = count < 0 || (unsigned long long)count > size ? size : (uint32_t)count;
    vs_key *h = mem_alloc(((size_t)limit + 1) * sizeof *h);
    uint32_t n = 0, cur = 0, id;
    const void *k;
    size_t kl;
    while (limit && vindex_iter(x, &cur, &id, &k, &kl))
        if (vs_after_start(&lo, k, kl) && vs_before_end(&hi, k, kl))
            vs_heap_push(h, &n, limit, (vs_key){ k, kl });
    qsort(h, n, sizeof *h, vs_key_sort);
    reply_array(&c->out, n);
    for (uint32_t i = 0; i < n; i++) reply_bulk(&c->out, h[i].k, h[i].n);
    mem_free(h);
}
