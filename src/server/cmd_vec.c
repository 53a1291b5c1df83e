/* cmd_vec.c -- the vector commands: VNEW, VADD, VSEARCH, VDEL, VGET,
 * VEXISTS, VCARD, VINFO, VLIST, VDROP, VSAVE.
 *
 * Threading (see registry.h for the lock order):
 *   - Everything that changes an index (VNEW, VADD, VDEL, VDROP, FLUSHALL)
 *     runs on the loop thread; VADD/VDEL hold that index's write lock, so
 *     they wait only for searches already running on the same index.
 *   - VSEARCH is validated on the loop thread, then runs on the worker pool
 *     as a vsearch_job holding a reference to the index.  The worker encodes
 *     the reply under the index's read lock into the job's own buffer; the
 *     finished job comes back through the pool's completion queue, which
 *     wakes the loop.
 *   - Ordering: each client keeps its jobs in request order and replies are
 *     released from the head only (vsearch_flush), so pipelined VSEARCHes
 *     run in parallel yet answer in order.  A later VSEARCH may be parsed
 *     and submitted while earlier ones run (even its error reply then waits
 *     its turn in a job); any other command suspends the client
 *     (CLIENT_BLOCKED) until the searches before it are answered
 *     (vec_may_overtake).
 *   - Batching: the last search of what a client sent in one go is marked
 *     (vec_client_batch_end): finished replies are held until the run of
 *     finished jobs at the head reaches a marked one or the end of the
 *     queue, and that job wakes the loop once it has finished and the
 *     pool's queue is short (pool.h), so a pipelined batch is answered in
 *     one write, not one per wake-up (each write wakes the client, which
 *     costs more than a small search).  A reply is held at most
 *     VSEARCH_HOLD_MS, by a timer armed only while something is held
 *     (vsearch_hold_timer).
 *   - A client that disconnects while its searches run only detaches from
 *     them (job->c = NULL); they finish and are freed on the loop thread.
 *   - Inside EXEC, VSEARCH runs inline with the loop thread's own search
 *     context, so a transaction stays atomic.
 *
 * Vectors arrive either as one bulk string of dim little-endian float32
 * values, or as `VALUES n v1 ... vn` text numbers (a 6-byte blob is never a
 * valid vector, so the keyword is unambiguous). */
#include "server.h"

#include <errno.h>
#include <stdatomic.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engram/le.h"
#include "engram/mem.h"
#include "engram/pool.h"
#include "engram/registry.h"
#include "engram/util.h"
#include "engram/vindex.h"
#include "persist.h"
#include "models.h"

#define VSEARCH_K_MAX 10000u

/* ---- argument parsing --------------------------------------------------- */

static vreg_entry *vec_index_or_reply(client *c, reply *r, int i)
{
    vreg_entry *e = vreg_find(c->srv->vreg, c->argv[i], c->argvlen[i]);
    if (!e)
        reply_errorf(r, "ERR no such index '%.*s'",
                     (int)(c->argvlen[i] < 128 ? c->argvlen[i] : 128), c->argv[i]);
    return e;
}

/* `TEXT text` for an index with an embedder: the text embedded in the
 * server.  (A 4-byte blob spelling "TEXT" is a valid 1-d vector, so the
 * keyword counts only where an embedder makes it meaningful.) */
static int vec_parse_text(client *c, reply *r, vreg_entry *e, int a, float **out, uint32_t *dim)
{
    if (a + 1 >= c->argc) {
        reply_error(r, "ERR syntax error");
        return 0;
    }
    uint32_t d = vindex_dim(vreg_index(e));
    float *v = mem_alloc((size_t)d * sizeof *v);
    if (models_text(e, c->argv[a + 1], c->argvlen[a + 1], v) <= 0) {
        reply_error(r, "ERR text has no words to embed");
        mem_free(v);
        return 0;
    }
    *out = v;
    *dim = d;
    return 1;
}

/* Decode n little-endian float32 values from a blob at any alignment into
 * v; 0 if any is NaN or infinite (exponent bits all ones).  No early exit,
 * so the check is a few instructions per value rather than a branch. */
static int vec_decode_blob(const char *blob, uint32_t n, float *v)
{
    uint32_t bad = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(v, blob, (size_t)n * 4);
    const float *w = v;
#else
    const float *w = v;
    for (uint32_t j = 0; j < n; j++) {
        uint32_t u = le_get32(blob + 4 * (size_t)j);
        memcpy(&v[j], &u, 4);
    }
#endif
    for (uint32_t j = 0; j < n; j++) {
        uint32_t u;
        memcpy(&u, &w[j], 4);
        bad |= (uint32_t)((u & 0x7f800000u) == 0x7f800000u);
    }
    return !bad;
}

/* Parse the vector starting at argv[*i] (a blob, VALUES n ..., or TEXT t
 * when e has an embedder); on success *i is moved past it and the floats
 * are in *out: in `buf` (the caller's, bufcap floats) when a blob or VALUES
 * vector fits there, else mem_alloc'd for the caller to free.  *text (if
 * text) points at the TEXT argument, else NULL.  Replies the error into r
 * and returns 0 on failure. */
static int vec_parse(client *c, reply *r, vreg_entry *e, int *i, float **out, uint32_t *dim,
                     int *text, float *buf, uint32_t bufcap)
{
    int a = *i;
    if (text) *text = -1;
    if (a >= c->argc) {
        reply_error(r, "ERR syntax error");
        return 0;
    }
    if (util_eq_nocase(c->argv[a], c->argvlen[a], "text")) {
        if (e && models_name(e)) {
            if (!vec_parse_text(c, r, e, a, out, dim)) return 0;
            if (text) *text = a + 1;
            *i = a + 2;
            return 1;
        }
        if (a + 1 < c->argc) {    /* more words follow: meant as text */
            size_t nlen;
            const char *name = e ? vreg_name(e, &nlen) : "";
            if (!e) nlen = 0;
            reply_errorf(r, "ERR index '%.*s' has no embedder: create it with VNEW ... EMBED "
                         "name to use TEXT", (int)(nlen < 128 ? nlen : 128), name);
            return 0;
        }
    }
    if (util_eq_nocase(c->argv[a], c->argvlen[a], "values")) {
        long long n;
        if (a + 1 >= c->argc || !util_str2ll(c->argv[a + 1], c->argvlen[a + 1], &n) || n <= 0 ||
            n > VINDEX_DIM_MAX) {
            reply_errorf(r, "ERR invalid vector encoding: VALUES needs a count between 1 "
                         "and %u", VINDEX_DIM_MAX);
            return 0;
        }
        if (c->argc - (a + 2) < n) {
            reply_errorf(r, "ERR invalid vector encoding: VALUES %lld needs %lld numbers, got %d",
                         n, n, c->argc - (a + 2));
            return 0;
        }
        float *v = n <= bufcap ? buf : mem_alloc((size_t)n * sizeof *v);
        for (long long j = 0; j < n; j++) {
            double d;
            const char *s = c->argv[a + 2 + j];
            size_t sl = c->argvlen[a + 2 + j];
            if (!util_str2d(s, sl, &d) || !isfinite((float)d)) {
                reply_errorf(r, "ERR invalid vector encoding: '%.*s' is not a finite number",
                             (int)(sl < 64 ? sl : 64), s);
                if (v != buf) mem_free(v);
                return 0;
            }
            v[j] = (float)d;
        }
        *out = v;
        *dim = (uint32_t)n;
        *i = a + 2 + (int)n;
        return 1;
    }
    size_t len = c->argvlen[a];
    if (len == 0 || len % 4 || len / 4 > VINDEX_DIM_MAX) {
        reply_errorf(r, "ERR invalid vector encoding: %zu bytes is not 1 to %u float32 values",
                     len, VINDEX_DIM_MAX);
        return 0;
    }
    uint32_t n = (uint32_t)(len / 4);
    float *v = n <= bufcap ? buf : mem_alloc(len);
    if (!vec_decode_blob(c->argv[a], n, v)) {
        uint32_t j = 0;
        while (isfinite(v[j])) j++;
        reply_errorf(r, "ERR invalid vector encoding: value %u is NaN or infinite", j);
        if (v != buf) mem_free(v);
        return 0;
    }
    *out = v;
    *dim = n;
    *i = a + 1;
    return 1;
}

static int vec_check_dim(reply *r, vreg_entry *e, uint32_t dim)
{
    uint32_t want = vindex_dim(vreg_index(e));
    if (dim == want) return 1;
    reply_errorf(r, "ERR wrong vector dimension: index expects %u, got %u", want, dim);
    return 0;
}

/* An unsigned option value in [lo, hi]; replies naming the option on error. */
static int vec_arg_range(client *c, reply *r, int i, const char *what, long long lo, long long hi,
                         uint32_t *out)
{
    long long v;
    if (i >= c->argc) {
        reply_error(r, "ERR syntax error");
        return 0;
    }
    if (!util_str2ll(c->argv[i], c->argvlen[i], &v) || v < lo || v > hi) {
        reply_errorf(r, "ERR %s must be an integer between %lld and %lld, got '%.*s'", what,
                     lo, hi, (int)(c->argvlen[i] < 64 ? c->argvlen[i] : 64), c->argv[i]);
        return 0;
    }
    *out = (uint32_t)v;
    return 1;
}

/* ---- VNEW ----------------------------------------------------------------- */

static void cmd_vnew(client *c)
{
    vindex_params p;
    long long dim;
    dist_metric metric = DIST_COSINE;
    vindex_type type = VINDEX_HNSW;
    uint32_t M = VINDEX_M_DEFAULT, efc = VINDEX_EFC_DEFAULT, ef = VINDEX_EFS_DEFAULT;
    const char *embed = NULL;
    size_t embedlen = 0;
    uint32_t capacity = 0;

    if (!util_str2ll(c->argv[2], c->argvlen[2], &dim) || dim <= 0) {
        reply_errorf(&c->out, "ERR dimension must be a positive integer, got '%.*s'",
                     (int)(c->argvlen[2] < 64 ? c->argvlen[2] : 64), c->argv[2]);
        return;
    }
    if (dim > VINDEX_DIM_MAX) {
        reply_errorf(&c->out, "ERR dimension must be between 1 and %u, got %lld", VINDEX_DIM_MAX, dim);
        return;
    }
    for (int i = 3; i < c->argc; i += 2) {
        if (i + 1 >= c->argc) {
            reply_err_syntax(c);
            return;
        }
        if (arg_is(c, i, "metric")) {
            if (dist_metric_parse(c->argv[i + 1], c->argvlen[i + 1], &metric) < 0) {
                reply_errorf(&c->out, "ERR unknown metric '%.*s' (use cosine, l2 or dot)",
                             (int)(c->argvlen[i + 1] < 64 ? c->argvlen[i + 1] : 64), c->argv[i + 1]);
                return;
            }
        } else if (arg_is(c, i, "type")) {
            if (arg_is(c, i + 1, "hnsw")) type = VINDEX_HNSW;
            else if (arg_is(c, i + 1, "flat")) type = VINDEX_FLAT;
            else {
                reply_errorf(&c->out, "ERR unknown index type '%.*s' (use hnsw or flat)",
                             (int)(c->argvlen[i + 1] < 64 ? c->argvlen[i + 1] : 64), c->argv[i + 1]);
                return;
            }
        } else if (arg_is(c, i, "m")) {
            if (!vec_arg_range(c, &c->out, i + 1, "M", 2, VINDEX_M_MAX, &M)) return;
        } else if (arg_is(c, i, "ef_construction")) {
            if (!vec_arg_range(c, &c->out, i + 1, "EF_CONSTRUCTION", 1, VINDEX_EF_MAX, &efc)) return;
        } else if (arg_is(c, i, "ef")) {
            if (!vec_arg_range(c, &c->out, i + 1, "EF", 1, VINDEX_EF_MAX, &ef)) return;
        } else if (arg_is(c, i, "capacity")) {
            if (!vec_arg_range(c, &c->out, i + 1, "CAPACITY", 1, VINDEX_CAPACITY_MAX, &capacity)) return;
        } else if (arg_is(c, i, "embed")) {
            embed = c->argv[i + 1];
            embedlen = c->argvlen[i + 1];
        } else {
            reply_err_syntax(c);
            return;
        }
    }
    if (embed) {
        char err[256];
        if (models_check(c->srv, embed, embedlen, (uint32_t)dim, err, sizeof err) < 0) {
            reply_error(&c->out, err);
            return;
        }
    }
    if (vreg_find(c->srv->vreg, c->argv[1], c->argvlen[1])) {
        reply_error(&c->out, "ERR index already exists");
        return;
    }
    vindex_params_init(&p, type, (uint32_t)dim, metric);
    p.M = M;
    p.ef_construction = efc;
    p.ef_search = ef;
    p.capacity = capacity;
    /* Reproducible builds: the same name and the same inserts give the same
     * graph, run after run. */
    p.seed = util_hash(c->argv[1], c->argvlen[1], 0x656e6772616dULL);
    vreg_entry *ne;
    int rc = vreg_create(c->srv->vreg, c->argv[1], c->argvlen[1], &p, &ne);
    if (rc == 0 && embed && models_attach(c->srv, ne, embed, embedlen) < 0) {
        vreg_drop(c->srv->vreg, c->argv[1], c->argvlen[1]);
        rc = -ENOMEM;
    }
    if (rc < 0) {
        reply_errorf(&c->out, "ERR could not create the index: %s", vindex_strerror(rc));
        return;
    }
    persist_log_vnew(c->srv, c->argv[1], c->argvlen[1], &p, capacity, embed, embedlen);
    srv_vec_modified(c->srv);
    reply_ok(&c->out);
}

/* ---- VADD, VDEL ------------------------------------------------------------- */

static void cmd_vadd(client *c)
{
    float *v = NULL;
    uint32_t dim;
    int i = 3, text = -1, payload = -1;
    vreg_entry *e = vec_index_or_reply(c, &c->out, 1);
    if (!e) return;
    if (!vec_parse(c, &c->out, e, &i, &v, &dim, &text, NULL, 0)) return;
    if (i + 2 == c->argc && arg_is(c, i, "payload")) {
        payload = i + 1;
        i += 2;
    }
    if (i != c->argc) {
        reply_err_syntax(c);
        mem_free(v);
        return;
    }
    if (!vec_check_dim(&c->out, e, dim)) {
        mem_free(v);
        return;
    }
    vindex *x = vreg_index(e);
    /* VADD index * ...: the next free id of the index's counter, as XADD. */
    int autoid = c->argvlen[2] == 1 && c->argv[2][0] == '*';
    char idbuf[24];
    const char *key = c->argv[2];
    size_t klen = c->argvlen[2];
    vreg_write_lock(e);         /* the id counter is index state too */
    if (autoid) {
        uint64_t id;
        for (;;) {
            if ((id = vindex_next_id(x)) == 0) {
                vreg_write_unlock(e);
                reply_error(&c->out, "ERR the index's auto ids are exhausted");
                mem_free(v);
                return;
            }
            klen = (size_t)snprintf(idbuf, sizeof idbuf, "%llu", (unsigned long long)id);
            if (!vindex_exists(x, idbuf, klen, NULL)) break;
            vindex_note_id(x, id);      /* taken by an explicit key: skip it */
        }
        key = idbuf;
    }
    /* TEXT is also the payload, unless PAYLOAD says otherwise. */
    int pi = payload >= 0 ? payload : text;
    vindex_add_args a;
    vindex_add_args_init(&a, key, klen, v, dim);
    if (pi >= 0) {
        a.has_payload = 1;
        a.payload = c->argv[pi];
        a.plen = c->argvlen[pi];
    }
    int rc = vindex_add_ex(x, &a, NULL);
    vreg_write_unlock(e);
    if (rc >= 0)
        persist_log_vadd(c->srv, c->argv[1], c->argvlen[1], key, klen, v, dim, autoid,
                         pi >= 0 ? c->argv[pi] : NULL, pi >= 0 ? c->argvlen[pi] : 0);
    mem_free(v);
    if (rc < 0) {
        reply_errorf(&c->out, "ERR could not add the vector: %s", vindex_strerror(rc));
        return;
    }
    srv_vec_modified(c->srv);
    if (autoid) reply_bulk(&c->out, key, klen);
    else reply_int(&c->out, rc);
}

static void cmd_vdel(client *c)
{
    vreg_entry *e = vec_index_or_reply(c, &c->out, 1);
    if (!e) return;
    vreg_write_lock(e);
    int rc = vindex_del(vreg_index(e), c->argv[2], c->argvlen[2]);
    vreg_write_unlock(e);
    if (rc > 0) {
        persist_log_vdel(c->srv, c->argv[1], c->argvlen[1], c->argv[2], c->argvlen[2]);
        srv_vec_modified(c->srv);
    }
    reply_int(&c->out, rc > 0);
}

/* ---- reads on the loop thread ----------------------------------------------
 * These need no index lock: only the loop thread ever writes an index, and
 * the loop thread is the one running them. */

/* VGET index key [WITHPAYLOAD]: the vector blob; with WITHPAYLOAD an array
 * [vector, payload] (payload nil when the entry has none). */
static void cmd_vget(client *c)
{
    int withp = 0;
    if (c->argc == 4 && arg_is(c, 3, "withpayload")) withp = 1;
    else if (c->argc != 3) {
        reply_err_syntax(c);
        return;
    }
    vreg_entry *e = vec_index_or_reply(c, &c->out, 1);
    if (!e) return;
    vindex *x = vreg_index(e);
    uint32_t dim = vindex_dim(x), id;
    float *v = mem_alloc((size_t)dim * sizeof *v);
    if (!vindex_get(x, c->argv[2], c->argvlen[2], v)) {
        if (withp) reply_null_array(&c->out);
        else reply_null(&c->out);
        mem_free(v);
        return;
    }
    if (withp) reply_array(&c->out, 2);
    unsigned char *b = mem_alloc((size_t)dim * 4);
    for (uint32_t j = 0; j < dim; j++) {
        uint32_t u;
        memcpy(&u, &v[j], 4);
        b[4 * j] = (unsigned char)u;
        b[4 * j + 1] = (unsigned char)(u >> 8);
        b[4 * j + 2] = (unsigned char)(u >> 16);
        b[4 * j + 3] = (unsigned char)(u >> 24);
    }
    reply_bulk(&c->out, b, (size_t)dim * 4);
    if (withp) {
        size_t plen;
        vindex_exists(x, c->argv[2], c->argvlen[2], &id);
        const void *pl = vindex_payload(x, id, &plen);
        if (pl) reply_bulk(&c->out, pl, plen);
        else reply_null(&c->out);
    }
    mem_free(b);
    mem_free(v);
}

static void cmd_vexists(client *c)
{
    vreg_entry *e = vreg_find(c->srv->vreg, c->argv[1], c->argvlen[1]);
    reply_int(&c->out, e && vindex_exists(vreg_index(e), c->argv[2], c->argvlen[2], NULL));
}

static void cmd_vcard(client *c)
{
    vreg_entry *e = vec_index_or_reply(c, &c->out, 1);
    if (e) reply_int(&c->out, vindex_count(vreg_index(e)));
}

static void vinfo_field_int(client *c, const char *name, long long v)
{
    reply_bulk_cstr(&c->out, name);
    reply_int(&c->out, v);
}

static void vinfo_field_str(client *c, const char *name, const char *v)
{
    reply_bulk_cstr(&c->out, name);
    reply_bulk_cstr(&c->out, v);
}

static void cmd_vinfo(client *c)
{
    vindex_stats st;
    size_t nlen;
    vreg_entry *e = vec_index_or_reply(c, &c->out, 1);
    if (!e) return;
    vindex_stats_get(vreg_index(e), &st);
    const char *name = vreg_name(e, &nlen);
    reply_map(&c->out, 22);
    reply_bulk_cstr(&c->out, "name");
    reply_bulk(&c->out, name, nlen);
    vinfo_field_str(c, "type", st.type == VINDEX_HNSW ? "hnsw" : "flat");
    vinfo_field_str(c, "metric", dist_metric_name(st.metric));
    vinfo_field_int(c, "dim", st.dim);
    vinfo_field_int(c, "count", st.count);
    vinfo_field_int(c, "capacity", st.ring_capacity);
    vinfo_field_int(c, "ingested", (long long)st.ingested);
    vinfo_field_int(c, "evicted", (long long)st.evicted);
    vinfo_field_int(c, "next_id", (long long)st.next_id);
    vinfo_field_int(c, "payloads", st.payloads);
    vinfo_field_int(c, "payload_bytes", (long long)st.payload_bytes);
    vinfo_field_int(c, "slots", st.capacity);
    vinfo_field_int(c, "M", st.M);
    vinfo_field_int(c, "ef_construction", st.ef_construction);
    vinfo_field_int(c, "ef", st.ef_search);
    vinfo_field_int(c, "max_level", st.max_level);
    vinfo_field_int(c, "memory", (long long)st.memory);
    vinfo_field_int(c, "bytes_per_vector", st.count ? (long long)(st.memory / st.count) : 0);
    vinfo_field_str(c, "kernel", st.kernel ? st.kernel : dist_active()->name);
    vinfo_field_int(c, "searches", (long long)vreg_searches(e));
    vinfo_field_int(c, "vector_bytes", (long long)st.dim * 4);
    vinfo_field_str(c, "embed", models_name(e) ? models_name(e) : "");
}

static void cmd_vlist(client *c)
{
    vreg *r = c->srv->vreg;
    size_t n = vreg_count(r);
    reply_array(&c->out, (long long)n);
    for (size_t i = 0; i < n; i++) {
        size_t nlen;
        const char *name = vreg_name(vreg_at(r, i), &nlen);
        reply_bulk(&c->out, name, nlen);
    }
}

static void cmd_vdrop(client *c)
{
    if (!vreg_drop(c->srv->vreg, c->argv[1], c->argvlen[1])) {
        reply_errorf(&c->out, "ERR no such index '%.*s'",
                     (int)(c->argvlen[1] < 128 ? c->argvlen[1] : 128), c->argv[1]);
        return;
    }
    persist_log_vdrop(c->srv, c->argv[1], c->argvlen[1]);
    srv_vec_modified(c->srv);
    reply_ok(&c->out);
}

/* VSAVE: SAVE by another name (a snapshot holds keys and indices alike). */
static void cmd_vsave(client *c)
{
    char err[512];
    if (persist_save(c->srv, 0, err, sizeof err) < 0) reply_error(&c->out, err);
    else reply_ok(&c->out);
}

/* ---- VSEARCH -------------------------------------------------------------- */

/* The result as VSEARCH replies it: RESP2 a flat array key, distance, ...
 * (distances as the shortest decimal that round-trips the float32); RESP3
 * an array of [key, double] pairs. */
static void vsearch_payload(reply *r, const vindex *x, uint32_t id)
{
    size_t len;
    const void *p = vindex_payload(x, id, &len);
    if (p) reply_bulk(r, p, len);
    else reply_null(r);
}

/* With WITHPAYLOAD (x not NULL) each result is key, distance, payload (nil
 * when the entry has none). */
static void vsearch_encode(reply *r, const vindex *x, const vindex_hit *hits, uint32_t n)
{
    int per = x ? 3 : 2;
    if (r->proto == 3) {
        reply_array(r, n);
        for (uint32_t j = 0; j < n; j++) {
            reply_array(r, per);
            reply_bulk(r, hits[j].key, hits[j].klen);
            reply_float(r, hits[j].dist);
            if (x) vsearch_payload(r, x, hits[j].id);
        }
        return;
    }
    reply_array(r, (long long)per * n);
    for (uint32_t j = 0; j < n; j++) {
        reply_bulk(r, hits[j].key, hits[j].klen);
        reply_float(r, hits[j].dist);
        if (x) vsearch_payload(r, x, hits[j].id);
    }
}

#define VSEARCH_SMALL_K 64

/* Search e under its read lock and encode into r.  Any thread. */
static void vsearch_run(vreg_entry *e, vindex_search_ctx *ctx, const vindex_query *q, int withp,
                        reply *r)
{
    uint32_t n = 0;
    vindex_hit small[VSEARCH_SMALL_K];     /* the common k: no allocation */
    vindex_hit *hits = q->k > VSEARCH_SMALL_K ? mem_alloc((size_t)q->k * sizeof *hits) : small;
    vreg_read_lock(e);
    if (vreg_dropped(e)) {
        vreg_read_unlock(e);
        size_t nlen;
        const char *name = vreg_name(e, &nlen);
        reply_errorf(r, "ERR no such index '%.*s'", (int)(nlen < 128 ? nlen : 128), name);
        if (hits != small) mem_free(hits);
        return;
    }
    int rc = q->k ? vindex_search(vreg_index(e), ctx, q, hits, &n) : 0;
    if (rc < 0) reply_errorf(r, "ERR search failed: %s", vindex_strerror(rc));
    else vsearch_encode(r, withp ? vreg_index(e) : NULL, hits, n);   /* keys and payloads are
                                                                    borrowed: encode under the lock */
    vreg_read_unlock(e);
    vreg_count_search(e);
    if (hits != small) mem_free(hits);
}

/* A client may have this many searches in flight before it is suspended
 * until they drain; it bounds the memory one pipelining client can tie up. */
#define VSEARCH_MAX_INFLIGHT 256

/* A finished reply waits at most this long for the rest of its batch. */
#define VSEARCH_HOLD_MS 5

struct vsearch_job {
    pool_job base;
    server *srv;
    client *c;              /* loop thread only; NULL once the client left */
    vsearch_job *cnext;     /* the client's queue, in request order */
    int finished;           /* the reply in `out` is complete */
    int last;               /* the end of a batch (vec_client_batch_end) */
    vreg_entry *e;          /* a reference, or NULL for an immediate reply */
    vindex_query q;
    int withpayload;
    float *vec;             /* owned; kept with a recycled job */
    uint32_t veccap;        /* floats vec has room for */
    reply out;              /* the reply, built by the worker (or at once) */
    /* a FLAT search split in parts (vsearch_split): per part its results,
     * the index generation it saw and its return code */
    int nparts;
    _Atomic int left;       /* parts still running */
    vindex_pair **pairs;
    uint32_t *npairs;
    uint64_t *gens;
    int *rcs;
};

/* Finished jobs are kept for reuse, with their reply buffers: a job and
 * its buffer are then allocated and freed on the loop thread only, so the
 * workers do not allocate in the common case, and the allocator never
 * hands memory from one thread's arena back to another's. */
#define VSEARCH_JOB_CACHE 512
#define VSEARCH_JOB_KEEP_OUT 4096      /* largest reply buffer kept */
#define VSEARCH_JOB_KEEP_VEC 1024      /* largest query vector (floats) kept */

static vsearch_job *vsearch_job_new(server *s, int proto)
{
    vsearch_job *j = s->vjob_cache;
    if (!j) {
        j = mem_calloc(1, sizeof *j);
        reply_init(&j->out, proto);
        reply_reserve(&j->out, 512);     /* k = 10 takes about 250 bytes */
    } else {
        s->vjob_cache = j->cnext;
        s->vjob_ncache--;
        j->cnext = NULL;
        j->out.proto = proto == 3 ? 3 : 2;
    }
    j->srv = s;
    return j;
}

/* Loop thread. */
static void vsearch_free(vsearch_job *j)
{
    server *s = j->srv;
    if (j->e) vreg_release(j->e);
    for (int i = 0; i < j->nparts; i++) mem_free(j->pairs[i]);
    mem_free(j->pairs);
    mem_free(j->npairs);
    mem_free(j->gens);
    mem_free(j->rcs);
    if (s->vjob_ncache < VSEARCH_JOB_CACHE && j->out.cap <= VSEARCH_JOB_KEEP_OUT) {
        reply out = j->out;
        float *vec = j->veccap <= VSEARCH_JOB_KEEP_VEC ? j->vec : NULL;
        uint32_t veccap = vec ? j->veccap : 0;
        if (!vec) mem_free(j->vec);
        memset(j, 0, sizeof *j);
        j->out = out;
        j->out.len = j->out.sent = 0;
        j->vec = vec;
        j->veccap = veccap;
        j->cnext = s->vjob_cache;
        s->vjob_cache = j;
        s->vjob_ncache++;
        return;
    }
    mem_free(j->vec);
    reply_fini(&j->out);
    mem_free(j);
}

void vec_job_cache_free(server *s)
{
    while (s->vjob_cache) {
        vsearch_job *j = s->vjob_cache;
        s->vjob_cache = j->cnext;
        mem_free(j->vec);
        reply_fini(&j->out);
        mem_free(j);
    }
    s->vjob_ncache = 0;
}

static void vsearch_enqueue(client *c, vsearch_job *j)
{
    j->c = c;
    if (c->jobs_tail) c->jobs_tail->cnext = j;
    else c->jobs_head = j;
    c->jobs_tail = j;
    if (!j->finished && !c->jobs_front) c->jobs_front = j;
    c->jobs++;
}

static int vsearch_hold_timer(ev_loop *l, long long id, void *ud);

static void vsearch_unhold(client *c)
{
    server *s = c->srv;
    if (!c->held) return;
    if (c->held_prev) c->held_prev->held_next = c->held_next;
    else s->held = c->held_next;
    if (c->held_next) c->held_next->held_prev = c->held_prev;
    else s->held_tail = c->held_prev;
    c->held = 0;
    c->held_prev = c->held_next = NULL;
    if (!s->held && s->held_timer) {
        ev_timer_del(s->loop, s->held_timer);
        s->held_timer = 0;
    }
}

/* The replies before jobs_front have finished: release them, in request
 * order, if `go` (their run reached the end of a batch or of the queue, or
 * they were held long enough), else hold them; then let a suspended client
 * go on.  Loop thread. */
static void vsearch_flush(client *c, int go)
{
    if (c->jobs_head == c->jobs_front) return;   /* the head is still running */
    if (!go) {
        if (!c->held) {             /* appended: the list stays oldest first */
            server *s = c->srv;
            c->held = 1;
            c->held_ms = util_mono_ms();
            c->held_prev = s->held_tail;
            c->held_next = NULL;
            if (s->held_tail) s->held_tail->held_next = c;
            else s->held = c;
            s->held_tail = c;
            if (!s->held_timer)
                s->held_timer = ev_timer_add(s->loop, VSEARCH_HOLD_MS, vsearch_hold_timer, s);
        }
        return;
    }
    vsearch_unhold(c);
    c->jobs_go = 0;
    while (c->jobs_head != c->jobs_front) {
        vsearch_job *j = c->jobs_head;
        c->jobs_head = j->cnext;
        if (!c->jobs_head) c->jobs_tail = NULL;
        c->jobs--;
        reply_raw(&c->out, j->out.data, j->out.len);
        vsearch_free(j);
    }
    if (c->flags & CLIENT_BLOCKED) client_unblock(c);   /* may free c */
    else {
        client_mark_pending(c);
        client_check_obuf(c);
    }
}

/* Release what was held VSEARCH_HOLD_MS or more; come back for the rest
 * when the first of them is due. */
static int vsearch_hold_timer(ev_loop *l, long long id, void *ud)
{
    server *s = ud;
    (void)l;
    (void)id;
    /* The rest of a batch may have finished unannounced (pool.h): collect
     * it first, so the batch still goes out whole. */
    srv_pool_drain(s);
    vec_release_held(s, 0);
    if (!s->held) {
        s->held_timer = 0;
        return EV_TIMER_STOP;
    }
    int64_t wait = s->held->held_ms + VSEARCH_HOLD_MS - util_mono_ms();
    return wait > 0 ? (int)wait : 0;
}

void vec_release_held(server *s, int all)
{
    /* Oldest first, so stop at the first not due.  Each flush may run the
     * client's pipelined commands, which may free other held clients
     * (CLIENT KILL) or hold new ones (at the tail, not due): so take the
     * head afresh each time. */
    int64_t now = util_mono_ms();
    while (s->held && (all || now - s->held->held_ms >= VSEARCH_HOLD_MS)) {
        client *c = s->held;
        vsearch_unhold(c);
        vsearch_flush(c, 1);                /* may free c */
    }
}

static void vsearch_work(pool_job *pj, int worker)
{
    vsearch_job *j = (vsearch_job *)pj;
    vsearch_run(j->e, srv_worker_ctx(j->srv, worker), &j->q, j->withpayload, &j->out);
}

static void vsearch_done(pool_job *pj)
{
    vsearch_job *j = (vsearch_job *)pj;
    client *c = j->c;
    j->finished = 1;
    if (!c) {
        vsearch_free(j);             /* its client is gone */
        return;
    }
    if (j != c->jobs_front) {
        /* An earlier search still runs.  If this one ends a batch, that one
         * is now all the batch waits for: it should wake the loop too.  (If
         * it finished meanwhile, it is already on the done queue, and
         * srv_before_sleep drains until that is empty.) */
        if (j->last) atomic_store_explicit(&c->jobs_front->base.wake, 1, memory_order_relaxed);
        return;
    }
    for (; c->jobs_front && c->jobs_front->finished; c->jobs_front = c->jobs_front->cnext)
        c->jobs_go |= c->jobs_front->last;
    /* Still waiting for an earlier search of a finished batch: pass the
     * wake on to it. */
    if (c->jobs_front && !c->jobs_go && atomic_load_explicit(&j->base.wake, memory_order_relaxed))
        atomic_store_explicit(&c->jobs_front->base.wake, 1, memory_order_relaxed);
    vsearch_flush(c, c->jobs_go || !c->jobs_front);
}

/* ---- FLAT searches split across the pool ----------------------------------
 * An exact scan of a large FLAT index is cut into disjoint id ranges, one
 * pool job each (parts = min(workers, vector bytes / 6 MB, 64): below about
 * 6 MB, waking a worker costs more than the scan it saves).  Each part
 * searches its range under the index's read lock and notes the index's
 * generation; the part that finishes last joins the others' top-k and
 * encodes the reply.  If a write slipped in between the parts (generations
 * differ), the joiner searches again in one piece: a split search never
 * mixes two states of the index. */
#define VSEARCH_PART_BYTES (6u << 20)

typedef struct vsearch_part {
    pool_job base;
    vsearch_job *j;
    int part;
    int last;               /* this part joined the others (worker sets it) */
} vsearch_part;

static void vsearch_join(vsearch_job *j, vindex_search_ctx *ctx)
{
    vreg_read_lock(j->e);
    int same = !vreg_dropped(j->e);
    uint64_t g = vreg_generation(j->e);
    for (int i = 0; i < j->nparts && same; i++) same = j->gens[i] == g && j->rcs[i] == 0;
    if (same) {
        uint32_t n = 0;
        vindex_hit *hits = mem_alloc((size_t)j->q.k * sizeof *hits);
        vindex_pair *scratch = mem_alloc((size_t)j->q.k * sizeof *scratch);
        int rc = vindex_search_join(vreg_index(j->e), &j->q, (const vindex_pair *const *)j->pairs,
                                    j->npairs, j->nparts, scratch, hits, &n);
        if (rc == 0) vsearch_encode(&j->out, j->withpayload ? vreg_index(j->e) : NULL, hits, n);
        vreg_read_unlock(j->e);
        mem_free(scratch);
        mem_free(hits);
        if (rc == 0) {
            vreg_count_search(j->e);
            return;
        }
    } else {
        vreg_read_unlock(j->e);
    }
    vsearch_run(j->e, ctx, &j->q, j->withpayload, &j->out);   /* in one piece */
}

static void vpart_work(pool_job *pj, int worker)
{
    vsearch_part *p = (vsearch_part *)pj;
    vsearch_job *j = p->j;
    vindex_search_ctx *ctx = srv_worker_ctx(j->srv, worker);
    vreg_read_lock(j->e);
    j->gens[p->part] = vreg_generation(j->e);
    j->rcs[p->part] = vreg_dropped(j->e) ? 1 :
        vindex_search_part(vreg_index(j->e), ctx, &j->q, (uint32_t)p->part, (uint32_t)j->nparts,
                           j->pairs[p->part], &j->npairs[p->part]);
    vreg_read_unlock(j->e);
    /* The last part sees every other part's results (the decrement orders
     * their writes before it). */
    if (atomic_fetch_sub(&j->left, 1) != 1) return;
    p->last = 1;
    vsearch_join(j, ctx);
}

static void vpart_done(pool_job *pj)
{
    vsearch_part *p = (vsearch_part *)pj;
    vsearch_job *j = p->j;
    int last = p->last;
    mem_free(p);
    if (last) vsearch_done(&j->base);      /* the others no longer touch j */
}

/* Submit j as parts if its index is worth splitting; 0 if not. */
static int vsearch_split(server *s, vsearch_job *j, vreg_entry *e)
{
    uint64_t bytes = (uint64_t)vindex_split_slots(vreg_index(e)) * vindex_dim(vreg_index(e)) * 4;
    uint64_t parts = bytes / VSEARCH_PART_BYTES;
    if (parts > (uint64_t)s->nworkers) parts = (uint64_t)s->nworkers;
    if (parts > 64) parts = 64;
    if (parts < 2 || j->q.k == 0) return 0;
    s->vec_split_searches++;
    j->nparts = (int)parts;
    atomic_init(&j->left, (int)parts);
    j->pairs = mem_calloc(parts, sizeof *j->pairs);
    j->npairs = mem_calloc(parts, sizeof *j->npairs);
    j->gens = mem_calloc(parts, sizeof *j->gens);
    j->rcs = mem_calloc(parts, sizeof *j->rcs);
    for (int i = 0; i < j->nparts; i++) j->pairs[i] = mem_alloc((size_t)j->q.k * sizeof(vindex_pair));
    for (int i = 0; i < j->nparts; i++) {
        vsearch_part *p = mem_calloc(1, sizeof *p);
        p->base.work = vpart_work;
        p->base.done = vpart_done;
        p->j = j;
        p->part = i;
        p->base.wake = 1;       /* parts are long: answer once the last one is done and the
                                   queue is short (pool.h) */
        pool_submit(s->pool, &p->base);
    }
    return 1;
}

void vec_client_detach(client *c)
{
    for (vsearch_job *j = c->jobs_head, *next; j; j = next) {
        next = j->cnext;
        if (j->finished) vsearch_free(j);   /* never submitted, or done */
        else j->c = NULL;                   /* vsearch_done frees it */
    }
    c->jobs_head = c->jobs_tail = c->jobs_front = NULL;
    c->jobs = 0;
    c->jobs_go = 0;
    vsearch_unhold(c);
}

/* Mark the client's last search in flight (the tail, unless the tail is an
 * error reply queued behind searches: then the job before it, marked when
 * that reply was queued -- see cmd_vsearch).  A mark set after the search
 * finished is harmless: the loop drains the pool until it is empty before
 * it sleeps (srv_before_sleep), so the search is collected anyway. */
void vec_client_batch_end(client *c)
{
    if (c->jobs_tail && !c->jobs_tail->finished && !c->jobs_tail->last) {
        c->jobs_tail->last = 1;
        atomic_store_explicit(&c->jobs_tail->base.wake, 1, memory_order_relaxed);
    }
}

int vec_may_overtake(const client *c, int argc, const char *const *argv, const size_t *argvlen)
{
    /* A VSEARCH whose every possible reply comes from its handler (arity
     * fits, no MULTI queuing, no NOAUTH) can queue behind the others. */
    return argc >= 4 && util_eq_nocase(argv[0], argvlen[0], "vsearch") &&
           !(c->flags & CLIENT_MULTI) && !client_must_auth(c) && c->jobs < VSEARCH_MAX_INFLIGHT;
}

/* VSEARCH index vector k [EF n].  With searches already in flight, even an
 * error reply must wait its turn, so every reply is built in the job's own
 * buffer and released through the client's queue. */
static void cmd_vsearch(client *c)
{
    uint32_t dim, k, ef = 0;
    int i = 2;
    vsearch_job *j = vsearch_job_new(c->srv, c->resp);
    j->base.work = vsearch_work;
    j->base.done = vsearch_done;
    reply *r = c->jobs ? &j->out : &c->out;

    vreg_entry *e = vec_index_or_reply(c, r, 1);
    float *v;
    if (!e || !vec_parse(c, r, e, &i, &v, &dim, NULL, j->vec, j->veccap)) goto immediate;
    if (v != j->vec) {               /* did not fit the recycled buffer */
        mem_free(j->vec);
        j->vec = v;
        j->veccap = dim;
    }
    if (!vec_arg_range(c, r, i, "k", 0, VSEARCH_K_MAX, &k)) goto immediate;
    float maxdist = INFINITY;
    for (i++; i < c->argc; i += 2) {
        if (arg_is(c, i, "ef") && i + 1 < c->argc) {
            if (!vec_arg_range(c, r, i + 1, "EF", 1, VINDEX_EF_MAX, &ef)) goto immediate;
        } else if (arg_is(c, i, "withpayload")) {
            j->withpayload = 1;
            i--;                        /* a flag: no value */
        } else if (arg_is(c, i, "maxdist") && i + 1 < c->argc) {
            double d;
            if (!util_str2d(c->argv[i + 1], c->argvlen[i + 1], &d) || isnan(d) || d < 0) {
                reply_errorf(r, "ERR MAXDIST must be a non-negative number, got '%.*s'",
                             (int)(c->argvlen[i + 1] < 64 ? c->argvlen[i + 1] : 64), c->argv[i + 1]);
                goto immediate;
            }
            maxdist = (float)d;
        } else {
            reply_error(r, "ERR syntax error");
            goto immediate;
        }
    }
    if (!vec_check_dim(r, e, dim)) goto immediate;
    vindex_query_init(&j->q, j->vec, dim, k);
    j->q.ef = ef;
    j->q.maxdist = maxdist;
    if ((c->flags & CLIENT_IN_EXEC) || !c->srv->pool) {
        vsearch_run(e, srv_loop_ctx(c->srv), &j->q, j->withpayload, r);
        goto immediate;
    }
    j->e = vreg_acquire(e);
    vsearch_enqueue(c, j);
    if (!vsearch_split(c->srv, j, e)) pool_submit(c->srv->pool, &j->base);
    return;
immediate:
    if (r == &j->out) {          /* queue the reply behind the searches */
        vec_client_batch_end(c);    /* the searches before it are a batch */
        j->finished = 1;
        vsearch_enqueue(c, j);
    } else {
        vsearch_free(j);
    }
}

cmd cmd_vec_table[] = {
    {"vnew", cmd_vnew, -3, CMD_WRITE, 1, 1, 1, "vector",
     "Creates a vector index: VNEW index dim [METRIC m] [TYPE t] [M n] [EF_CONSTRUCTION n] [EF n].",
     "engram 0.1.0", 0, 0, 0, 0, NULL},
    {"vadd", cmd_vadd, -4, CMD_WRITE, 1, 1, 1, "vector",
     "Adds or replaces a key's vector in an index.", "engram 0.1.0", 0, 0, 0, 0, NULL},
    {"vsearch", cmd_vsearch, -4, CMD_READONLY, 1, 1, 1, "vector",
     "Returns the k nearest keys to a vector, closest first, with distances.", "engram 0.1.0", 0, 0, 0, 0, NULL},
    {"vdel", cmd_vdel, 3, CMD_WRITE | CMD_FAST, 1, 1, 1, "vector",
     "Removes a key from an index.", "engram 0.1.0", 0, 0, 0, 0, NULL},
    {"vget", cmd_vget, -3, CMD_READONLY | CMD_FAST, 1, 1, 1, "vector",
     "Returns a key's vector as little-endian float32 bytes (and its payload with WITHPAYLOAD).", "engram 0.1.0", 0, 0, 0, 0, NULL},
    {"vexists", cmd_vexists, 3, CMD_READONLY | CMD_FAST, 1, 1, 1, "vector",
     "Tells whether a key is in an index.", "engram 0.1.0", 0, 0, 0, 0, NULL},
    {"vcard", cmd_vcard, 2, CMD_READONLY | CMD_FAST, 1, 1, 1, "vector",
     "Returns the number of vectors in an index.", "engram 0.1.0", 0, 0, 0, 0, NULL},
    {"vinfo", cmd_vinfo, 2, CMD_READONLY | CMD_FAST, 1, 1, 1, "vector",
     "Returns an index's parameters and statistics.", "engram 0.1.0", 0, 0, 0, 0, NULL},
    {"vlist", cmd_vlist, 1, CMD_READONLY, 0, 0, 0, "vector",
     "Lists the index names.", "engram 0.1.0", 0, 0, 0, 0, NULL},
    {"vdrop", cmd_vdrop, 2, CMD_WRITE, 1, 1, 1, "vector",
     "Deletes an index and all its vectors.", "engram 0.1.0", 0, 0, 0, 0, NULL},
    {"vsave", cmd_vsave, 1, CMD_ADMIN, 0, 0, 0, "vector",
     "Saves every index to disk (needs persistence: --dir).", "engram 0.1.0", 0, 0, 0, 0, NULL},
    {NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL, 0, 0, 0, 0, NULL},
};
