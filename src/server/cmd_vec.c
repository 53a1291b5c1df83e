/* cmd_vec.c -- the vector commands: VNEW, VADD, VSEARCH, VDEL, VGET,
 * VEXISTS, VCARD, VINFO, VLIST, VDROP, VSAVE.
 *
 * Threading (see registry.h for the lock order):
 *   - Everything that changes an index (VNEW, VADD, VDEL, VDROP, FLUSHALL)
 *     runs on the loop thread; VADD/VDEL hold that index's write lock, so
 *     they wait only for searches already running on the same index.
 *   - VSEARCH (CMD_DEFERRED) is validated here, on the loop thread, then
 *     runs on the worker pool as a vsearch_job (vsearch.h) holding a
 *     reference to the index; its reply goes out in request order through
 *     the deferred-reply mechanism (deferred.h).  While searches of the
 *     client are in flight, even an error reply of a later VSEARCH waits
 *     its turn behind them (deferred_answer).
 *   - Inside EXEC (and without a pool), VSEARCH runs inline with the loop
 *     thread's own search context, so a transaction stays atomic.
 *   - The reads below (VGET, VCARD, ...) need no index lock: only the loop
 *     thread ever writes an index, and the loop thread runs them.
 *
 * Vectors arrive either as one bulk string of dim little-endian float32
 * values, or as `VALUES n v1 ... vn` text numbers (a 6-byte blob is never a
 * valid vector, so the keyword is unambiguous). */
#include "server.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engram/le.h"
#include "engram/mem.h"
#include "engram/oplog.h"
#include "engram/vset.h"
#include "engram/util.h"
#include "engram/vindex.h"
#include "deferred.h"
#include "handlers.h"
#include "keyspace.h"
#include "models.h"
#include "notify.h"
#include "persist.h"
#include "vkeys.h"
#include "vsearch.h"

#define VSEARCH_K_MAX 10000u

/* ---- argument parsing --------------------------------------------------- */

/* The vector set held by argv[i] in c's database, or NULL after replying
 * WRONGTYPE (another type) or "no such index" (no key) into r. */
static vset *vec_index_or_reply(client *c, reply *r, int i)
{
    int wrongtype;
    vset *e = vkey_get(c, c->argv[i], c->argvlen[i], &wrongtype);
    if (wrongtype) reply_error(r, WRONGTYPE_ERR);
    else if (!e)
        reply_errorf(r, "ERR no such index '%.*s'",
                     (int)(c->argvlen[i] < 128 ? c->argvlen[i] : 128), c->argv[i]);
    return e;
}

/* `TEXT text` for an index with an embedder: the text embedded in the
 * server.  (A 4-byte blob spelling "TEXT" is a valid 1-d vector, so the
 * keyword counts only where an embedder makes it meaningful.) */
static int vec_parse_text(client *c, reply *r, vset *e, int a, float **out, uint32_t *dim)
{
    if (a + 1 >= c->argc) {
        reply_error(r, "ERR syntax error");
        return 0;
    }
    uint32_t d = vindex_dim(vset_index(e));
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
static int vec_parse(client *c, reply *r, vset *e, int *i, float **out, uint32_t *dim,
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
            size_t nlen = e ? c->argvlen[1] : 0;
            reply_errorf(r, "ERR index '%.*s' has no embedder: create it with VNEW ... EMBED "
                         "name to use TEXT", (int)(nlen < 128 ? nlen : 128), c->argv[1]);
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

static int vec_check_dim(reply *r, vset *e, uint32_t dim)
{
    uint32_t want = vindex_dim(vset_index(e));
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

void cmd_vnew(client *c)
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
    if (key_lookup(c, c->argv[1], c->argvlen[1])) {
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
    char err[256];
    if (!vkey_create(c->srv, c->db, c->argv[1], c->argvlen[1], &p, embed, embedlen, 0, err,
                     sizeof err)) {
        reply_error(&c->out, err);
        return;
    }
    persist_log_vnew(c->srv, c->db, c->argv[1], c->argvlen[1], &p, capacity, embed, embedlen, 0);
    srv_vec_modified(c->srv);
    notify_key(c, NOTIFY_NEW, "new", c->argv[1], c->argvlen[1]);
    reply_ok(&c->out);
}

/* ---- VADD, VDEL ------------------------------------------------------------- */

/* The insert of VADD (engram's grammar) into e, the key's set: the key (or
 * the next auto id), the vector, the payload; logged, counted, replied into
 * r (the new id, or 1/0, or the error).  Returns vindex_add_ex's result
 * (< 0: nothing changed).  The caller sends the keyspace notification. */
static int vadd_commit(server *s, int db, vset *e, const char *name, size_t nlen, const char *key,
                       size_t klen, int autoid, const float *v, uint32_t dim,
                       const char *payload, size_t plen, reply *r)
{
    vindex *x = vset_index(e);
    char idbuf[24];
    vset_write_lock(e);         /* the id counter is index state too */
    if (autoid) {
        uint64_t id;
        for (;;) {
            if ((id = vindex_next_id(x)) == 0) {
                vset_write_unlock(e);
                reply_error(r, "ERR the index's auto ids are exhausted");
                return -ERANGE;
            }
            klen = (size_t)snprintf(idbuf, sizeof idbuf, "%llu", (unsigned long long)id);
            if (!vindex_exists(x, idbuf, klen, NULL)) break;
            vindex_note_id(x, id);      /* taken by an explicit key: skip it */
        }
        key = idbuf;
    }
    vindex_add_args a;
    vindex_add_args_init(&a, key, klen, v, dim);
    if (payload) {
        a.has_payload = 1;
        a.payload = payload;
        a.plen = plen;
    }
    int rc = vindex_add_ex(x, &a, NULL);
    if (rc >= 0) vset_count_node(e);
    vset_write_unlock(e);
    if (rc < 0) {
        reply_errorf(r, "ERR could not add the vector: %s", vindex_strerror(rc));
        return rc;
    }
    persist_log_vadd(s, db, name, nlen, key, klen, v, dim, autoid ? OP_VADD_AUTOID : 0, payload,
                     payload ? plen : 0, 0);
    srv_vec_modified(s);
    if (autoid) reply_bulk(r, key, klen);
    else reply_int(r, rc);
    return rc;
}

/* ---- VADD ... TEXT with a neural embedder: embedded on the pool -------------
 * A BERT model takes milliseconds per text, too long for the loop: the
 * command is checked here, the text embedded on a worker (the model is
 * immutable and outlives the job; the set is not touched there), and the
 * insert done back on the loop by vadd_text_done -- if the key still holds
 * the same set (else the error says it changed).  As VADD ... CAS (see
 * cmd_vset.c): the reply goes out in request order through the deferred
 * replies, and the client's later commands wait for it (barrier); a client
 * that left meanwhile adds nothing.  Inside MULTI/EXEC, or without a pool,
 * the text is embedded inline. */

typedef struct vadd_text {
    deferred d;             /* first */
    server *srv;
    vset *e;                /* a reference while the job lives */
    const embedder *em;
    int db, autoid, has_payload;
    char *name, *key, *text, *payload;  /* owned copies */
    size_t nlen, klen, tlen, plen;
    float *vec;
    uint32_t dim;
    int words;              /* embed_text's result */
} vadd_text;

static void vadd_text_work(pool_job *pj, int worker)
{
    vadd_text *j = (vadd_text *)pj;
    (void)worker;
    j->words = embed_text(j->em, j->text, j->tlen, j->vec);
}

static void vadd_text_done(pool_job *pj)
{
    vadd_text *j = (vadd_text *)pj;
    server *s = j->srv;
    client *c = j->d.c;
    reply *r = &j->d.out;
    const char *failed;
    if (!c) {
        /* the client left: nothing is added */
    } else if (j->words == -ENOMEM) {
        reply_error(r, "ERR out of memory embedding the text");
    } else if (j->words <= 0) {
        reply_error(r, "ERR text has no words to embed");
    } else if ((failed = persist_write_error(s))) {
        reply_errorf(r, "MISCONF Errors writing to the write-ahead log (%s). Writes are refused "
                     "until a snapshot succeeds; see INFO persistence.", failed);
    } else if (vkey_peek(s, j->db, j->name, j->nlen) != j->e) {
        reply_errorf(r, "ERR index '%.*s' was dropped or replaced while the text was embedded",
                     (int)(j->nlen < 128 ? j->nlen : 128), j->name);
    } else {
        /* The insert is the client's write: its reply waits for the log as
         * a command's would, and it reaches replicas as one (persist.h). */
        persist_cmd_begin(s, c);
        const char *pl = j->has_payload ? j->payload : NULL;
        if (vadd_commit(s, j->db, j->e, j->name, j->nlen, j->key, j->klen, j->autoid, j->vec,
                        j->dim, pl, j->plen, r) >= 0) {
            key_touched(s, j->db, j->name, j->nlen);
            notify_keyspace_event(s, NOTIFY_MODULE, "vadd", j->db, j->name, j->nlen);
        }
        persist_cmd_end(s, c);
    }
    deferred_done(&j->d);
}

static void vadd_text_release(deferred *d)
{
    vadd_text *j = (vadd_text *)d;
    vset_release(j->e);
    mem_free(j->name);
    mem_free(j->key);
    mem_free(j->text);
    mem_free(j->payload);
    mem_free(j->vec);
    reply_fini(&j->d.out);
    mem_free(j);
}

static char *vec_dup(const char *p, size_t n)
{
    char *d = mem_alloc(n ? n : 1);
    if (n) memcpy(d, p, n);
    return d;
}

/* VADD index key|* TEXT text [PAYLOAD p], checked: start the job. */
static void vadd_text_start(client *c, vset *e, int text, int payload)
{
    vadd_text *j = mem_calloc(1, sizeof *j);
    reply_init(&j->d.out, c->resp);
    j->d.release = vadd_text_release;
    j->d.job.work = vadd_text_work;
    j->d.job.done = vadd_text_done;
    j->srv = c->srv;
    j->e = vset_acquire(e);
    j->em = models_embedder(e);
    j->db = c->db;
    j->autoid = c->argvlen[2] == 1 && c->argv[2][0] == '*';
    j->name = vec_dup(c->argv[1], j->nlen = c->argvlen[1]);
    j->key = vec_dup(c->argv[2], j->klen = c->argvlen[2]);
    j->text = vec_dup(c->argv[text], j->tlen = c->argvlen[text]);
    int pi = payload >= 0 ? payload : text;     /* TEXT is also the payload */
    j->has_payload = 1;
    j->payload = vec_dup(c->argv[pi], j->plen = c->argvlen[pi]);
    j->dim = vindex_dim(vset_index(e));
    j->vec = mem_alloc((size_t)j->dim * sizeof *j->vec);
    j->d.barrier = 1;           /* the client's next commands see the entry */
    deferred_start(c, &j->d);
    pool_submit(c->srv->pool, &j->d.job);
}

void cmd_vadd(client *c)
{
    /* Redis's grammar when the vector comes first (cmd_vset.c) */
    if (arg_is(c, 2, "fp32") || arg_is(c, 2, "values") || arg_is(c, 2, "reduce")) {
        cmd_vadd_redis(c);
        return;
    }
    float *v = NULL;
    uint32_t dim;
    int i = 3, text = -1, payload = -1;
    vset *e = vec_index_or_reply(c, &c->out, 1);
    if (!e) return;
    /* TEXT for a neural embedder: checked here, embedded on the pool. */
    if (c->argc >= 5 && arg_is(c, 3, "text") && models_heavy(e) &&
        !(c->flags & CLIENT_IN_EXEC) && c->srv->pool) {
        if (c->argc == 7 && arg_is(c, 5, "payload")) payload = 6;
        else if (c->argc != 5) {
            reply_err_syntax(c);
            return;
        }
        vadd_text_start(c, e, 4, payload);
        return;
    }
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
    /* VADD index * ...: the next free id of the index's counter, as XADD.
     * TEXT is also the payload, unless PAYLOAD says otherwise. */
    int autoid = c->argvlen[2] == 1 && c->argv[2][0] == '*';
    int pi = payload >= 0 ? payload : text;
    int rc = vadd_commit(c->srv, c->db, e, c->argv[1], c->argvlen[1], c->argv[2], c->argvlen[2],
                         autoid, v, dim, pi >= 0 ? c->argv[pi] : NULL, pi >= 0 ? c->argvlen[pi] : 0,
                         &c->out);
    mem_free(v);
    if (rc >= 0) notify_key(c, NOTIFY_MODULE, "vadd", c->argv[1], c->argvlen[1]);
}

void cmd_vdel(client *c)
{
    vset *e = vec_index_or_reply(c, &c->out, 1);
    if (!e) return;
    vset_write_lock(e);
    int rc = vindex_del(vset_index(e), c->argv[2], c->argvlen[2]);
    vset_write_unlock(e);
    if (rc > 0) {
        persist_log_vdel(c->srv, c->db, c->argv[1], c->argvlen[1], c->argv[2], c->argvlen[2]);
        srv_vec_modified(c->srv);
        notify_key(c, NOTIFY_MODULE, "vrem", c->argv[1], c->argvlen[1]);
    }
    reply_int(&c->out, rc > 0);
}

/* ---- reads on the loop thread (no index lock: see the top) ---------------- */

/* VGET index key [WITHPAYLOAD]: the vector blob; with WITHPAYLOAD an array
 * [vector, payload] (payload nil when the entry has none). */
void cmd_vget(client *c)
{
    int withp = 0;
    if (c->argc == 4 && arg_is(c, 3, "withpayload")) withp = 1;
    else if (c->argc != 3) {
        reply_err_syntax(c);
        return;
    }
    vset *e = vec_index_or_reply(c, &c->out, 1);
    if (!e) return;
    vindex *x = vset_index(e);
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
    for (uint32_t j = 0; j < dim; j++) le_putf32(b + 4 * (size_t)j, v[j]);
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

void cmd_vexists(client *c)
{
    int wrongtype;
    vset *e = vkey_get(c, c->argv[1], c->argvlen[1], &wrongtype);
    if (wrongtype) reply_error(&c->out, WRONGTYPE_ERR);
    else reply_int(&c->out, e && vindex_exists(vset_index(e), c->argv[2], c->argvlen[2], NULL));
}

/* VCARD of a missing key is 0, as Redis's vector sets answer. */
void cmd_vcard(client *c)
{
    int wrongtype;
    vset *e = vkey_get(c, c->argv[1], c->argvlen[1], &wrongtype);
    if (wrongtype) reply_error(&c->out, WRONGTYPE_ERR);
    else reply_int(&c->out, e ? vindex_count(vset_index(e)) : 0);
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

/* VINFO key FULL: Redis's nine fields (cmd_vset.c) and engram's. */
void cmd_vinfo_full(client *c)
{
    vindex_stats st;
    vset *e = vec_index_or_reply(c, &c->out, 1);
    if (!e) return;
    vindex_stats_get(vset_index(e), &st);
    const vproj *pj = vset_projection(e);
    reply_map(&c->out, 32);
    reply_bulk_cstr(&c->out, "quant-type");
    reply_bulk_cstr(&c->out, st.quant == QUANT_Q8 ? "int8" : st.quant == QUANT_BIN ? "bin" : "f32");
    vinfo_field_int(c, "hnsw-m", st.M);
    vinfo_field_int(c, "vector-dim", st.dim);
    vinfo_field_int(c, "projection-input-dim", pj ? vproj_in_dim(pj) : 0);
    vinfo_field_int(c, "size", st.count);
    vinfo_field_int(c, "max-level", st.max_level < 0 ? 0 : st.max_level);
    vinfo_field_int(c, "attributes-count", st.payloads);
    vinfo_field_int(c, "vset-uid", (long long)vset_uid(e));
    vinfo_field_int(c, "hnsw-max-node-uid", (long long)vset_nodes(e));
    vinfo_field_int(c, "float_copy", st.keep_float);
    reply_bulk_cstr(&c->out, "name");
    reply_bulk(&c->out, c->argv[1], c->argvlen[1]);
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
    vinfo_field_int(c, "searches", (long long)vset_searches(e));
    vinfo_field_int(c, "vector_bytes", (long long)st.dim * 4);
    vinfo_field_str(c, "embed", models_name(e) ? models_name(e) : "");
}

/* VLIST: the vector-set keys of the current database, in byte order (a
 * walk of the whole keyspace, as KEYS). */
typedef struct vlist_key {
    const char *key;
    size_t len;
} vlist_key;

typedef struct vlist_acc {
    vlist_key *k;
    size_t n, cap;
} vlist_acc;

static void vlist_collect(void *ud, kv_entry *e)
{
    vlist_acc *a = ud;
    if (kv_type(e) != OBJ_VSET) return;
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 16;
        a->k = mem_realloc(a->k, a->cap * sizeof *a->k);
    }
    a->k[a->n].key = kv_key(e, &a->k[a->n].len);
    a->n++;
}

static int vlist_cmp(const void *x, const void *y)
{
    const vlist_key *a = x, *b = y;
    int r = memcmp(a->key, b->key, a->len < b->len ? a->len : b->len);
    return r ? r : (a->len > b->len) - (a->len < b->len);
}

void cmd_vlist(client *c)
{
    vlist_acc a = {0};
    kv_foreach(client_kv(c), vlist_collect, &a);
    if (a.n) qsort(a.k, a.n, sizeof *a.k, vlist_cmp);
    reply_array(&c->out, (long long)a.n);
    for (size_t i = 0; i < a.n; i++) reply_bulk(&c->out, a.k[i].key, a.k[i].len);
    mem_free(a.k);
}

/* VDROP: DEL for a key that holds a vector set. */
void cmd_vdrop(client *c)
{
    kv_entry *k = key_lookup(c, c->argv[1], c->argvlen[1]);
    if (k && kv_type(k) != OBJ_VSET) {
        reply_error(&c->out, WRONGTYPE_ERR);
        return;
    }
    if (!k) {
        reply_errorf(&c->out, "ERR no such index '%.*s'",
                     (int)(c->argvlen[1] < 128 ? c->argvlen[1] : 128), c->argv[1]);
        return;
    }
    kv_del_entry(client_kv(c), k);
    key_modified(c->srv, c->db, c->argv[1], c->argvlen[1]);
    srv_vec_modified(c->srv);
    notify_key(c, NOTIFY_GENERIC, "del", c->argv[1], c->argvlen[1]);
    reply_ok(&c->out);
}

/* VSAVE: SAVE by another name (a snapshot holds keys and indices alike). */
void cmd_vsave(client *c)
{
    char err[512];
    if (persist_save(c->srv, 0, err, sizeof err) < 0) reply_error(&c->out, err);
    else reply_ok(&c->out);
}

/* ---- VSEARCH -------------------------------------------------------------- */

/* VSEARCH index vector k [EF n] [MAXDIST d] [WITHPAYLOAD] [FILTER expr]
 * [FILTER-EF n] (the FILTER language of VSIM, on the entries' payloads).
 * With searches
 * already in flight, even an error reply must wait its turn, so it is built
 * in the job's own buffer and queued behind them. */
void cmd_vsearch(client *c)
{
    uint32_t dim, k, ef = 0, fef = 0;
    int i = 2;
    vsearch_job *j = vsearch_job_new(c->srv, c->resp);
    reply *r = deferred_busy(c) ? &j->d.out : &c->out;

    vset *e = vec_index_or_reply(c, r, 1);
    float *v;
    int text = -1;
    if (!e) goto immediate;
    if (i + 1 < c->argc && arg_is(c, i, "text") && models_heavy(e) &&
        !(c->flags & CLIENT_IN_EXEC) && c->srv->pool) {
        /* A neural embedder: the worker embeds the text (vsearch.h). */
        text = i + 1;
        i += 2;
        dim = vindex_dim(vset_index(e));
        if (dim > j->veccap) {
            mem_free(j->vec);
            j->vec = mem_alloc((size_t)dim * sizeof *j->vec);
            j->veccap = dim;
        }
    } else {
        if (!vec_parse(c, r, e, &i, &v, &dim, NULL, j->vec, j->veccap)) goto immediate;
        if (v != j->vec) {           /* did not fit the recycled buffer */
            mem_free(j->vec);
            j->vec = v;
            j->veccap = dim;
        }
    }
    if (!vec_arg_range(c, r, i, "k", 0, VSEARCH_K_MAX, &k)) goto immediate;
    float maxdist = INFINITY;
    for (i++; i < c->argc; i += 2) {
        if (arg_is(c, i, "ef") && i + 1 < c->argc) {
            if (!vec_arg_range(c, r, i + 1, "EF", 1, VINDEX_EF_MAX, &ef)) goto immediate;
        } else if (arg_is(c, i, "withpayload")) {
            j->withpayload = 1;
            i--;                        /* a flag: no value */
        } else if (arg_is(c, i, "filter") && i + 1 < c->argc) {
            if (!vsearch_filter_compile(r, c->argv[i + 1], c->argvlen[i + 1], &j->vs.filter))
                goto immediate;
        } else if (arg_is(c, i, "filter-ef") && i + 1 < c->argc) {
            if (!vec_arg_range(c, r, i + 1, "FILTER-EF", 1, UINT32_MAX, &fef)) goto immediate;
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
    /* FILTER's effort bound, as VSIM's FILTER-EF: COUNT x 100 by default */
    j->q.effort = fef ? fef : (k > UINT32_MAX / 100 ? UINT32_MAX : k * 100);
    j->q.ef = ef;
    j->q.maxdist = maxdist;
    if ((c->flags & CLIENT_IN_EXEC) || !c->srv->pool) {
        vsearch_run(e, c->argv[1], c->argvlen[1], srv_loop_ctx(c->srv), &j->q, j->vs.filter,
                    j->withpayload, r);
        goto immediate;
    }
    if (text >= 0) {
        j->embed = models_embedder(e);
        j->tlen = c->argvlen[text];
        j->text = vec_dup(c->argv[text], j->tlen);
    }
    vsearch_start(c, j, e, c->argv[1], c->argvlen[1]);
    return;
immediate:
    if (r == &j->d.out) deferred_answer(c, &j->d);   /* behind the searches in flight */
    else vsearch_job_discard(j);
}

