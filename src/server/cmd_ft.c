/* cmd_ft.c -- the search-index commands over hashes, as RediSearch answers
 * them: FT.CREATE, FT.SEARCH, FT.INFO, FT._LIST, FT.DROPINDEX (and FT.DROP),
 * FT.ALTER, FT.TAGVALS, FT.EXPLAIN.  Indices are ftspec.h's; the query language and
 * the scorers are the search library's (ftquery.h).
 *
 * FT.SEARCH runs on the worker pool (deferred.h), as VSEARCH does: the
 * handler compiles the query on the loop thread (the schema belongs to
 * it), a worker runs it under the index's read lock -- the text query, or
 * the vector clause with its prefilter -- and copies out the matching keys
 * with their scores; the job's done() then, back on the loop thread, reads
 * the hashes (RETURN fields, SORTBY values) and writes the reply.  Inside
 * EXEC, or without a pool, the same steps run inline.
 *
 * The vector clause.  k nearest documents among those the prefilter
 * matches: without a prefilter one graph search (EF_RUNTIME, else the
 * field's); with one, the prefilter is first built as a bitmap over
 * document ids (ftq_filter_new) and then either every matching document is
 * compared (when at most FT_EXACT_MAX documents, or a tenth of the index,
 * match: exact, and cheaper than a walk that must reject nine nodes in
 * ten) or the graph walk takes the bitmap as its filter; a walk that finds
 * fewer than k while more match falls back to the exact scan, so k results
 * come back whenever k documents match.  Distances are RediSearch's: L2
 * squared, COSINE 1 - cos, IP 1 - dot.
 *
 * VECTOR_RANGE clauses.  The query library cannot see vectors: before the
 * query runs, the worker scans each clause's field exactly for the
 * documents within the radius (run_ranges) and hands them to the query
 * (ftq_set_range_docs); the first clause's distances are kept to be
 * yielded under its $YIELD_DISTANCE_AS name (RETURN, SORTBY).
 *
 * Errors are RediSearch's texts, sent as a module sends them (no "ERR"
 * prefix: "idx: no such index", "Unknown Index name", "Index already
 * exists"); docs/commands.md lists them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engram/ftquery.h"
#include "engram/hash.h"
#include "engram/le.h"
#include "engram/mem.h"
#include "engram/oplog.h"
#include "engram/util.h"
#include "ftspec.h"
#include "handlers.h"
#include "notify.h"
#include "persist.h"
#include "server.h"

#define FT_EXACT_MAX 4096u     /* prefilters matching this few documents are scanned */
#define FT_LIMIT_MAX 1000000LL /* RediSearch's MAXSEARCHRESULTS default */

/* ---- shared ---------------------------------------------------------------------- */

static ftspec *ft_get(client *c, int i, reply *r, int search_err)
{
    ftspec *f = ft_find(c->srv, c->argv[i], c->argvlen[i]);
    if (f) return f;
    if (search_err)
        reply_errorf(r, "-%.*s: no such index", (int)(c->argvlen[i] < 200 ? c->argvlen[i] : 200),
                     c->argv[i]);
    else
        reply_error(r, "-Unknown Index name");
    return NULL;
}

/* The definition change in the log (OP_FTDEF, database 0): action 0 create,
 * 1 drop, 2 alter, with its arguments. */
static void log_def(server *s, unsigned action, const char *name, size_t nlen, int argc,
                    const char *const *argv, const size_t *lens)
{
    struct opbuf *b = persist_log_open(s, 0, OP_FTDEF);
    if (!b) return;
    op_put_hhead(b, name, (uint32_t)nlen, action, (uint32_t)argc);
    for (int i = 0; i < argc; i++) op_put_hfield(b, OP_HDEL, argv[i], (uint32_t)lens[i], NULL, 0, 0);
    persist_log_close(s);
}

/* ---- FT.CREATE, FT.ALTER, FT.DROPINDEX, FT._LIST -------------------------------------- */

void cmd_ft_create(client *c)
{
    char err[512];
    if (c->db != 0) {
        reply_error(&c->out, "-Cannot create index on db != 0");
        return;
    }
    if (ft_create(c->srv, c->argv[1], c->argvlen[1], c->argc - 2, c->argv + 2, c->argvlen + 2, 0,
                  err, sizeof err) < 0) {
        reply_errorf(&c->out, "-%s", err);
        return;
    }
    log_def(c->srv, 0, c->argv[1], c->argvlen[1], c->argc - 2, c->argv + 2, c->argvlen + 2);
    c->srv->dirty++;
    reply_ok(&c->out);
}

/* FT.ALTER idx [SKIPINITIALSCAN] SCHEMA ADD field options ... */
void cmd_ft_alter(client *c)
{
    ftspec *f = ft_get(c, 1, &c->out, 0);
    if (!f) return;
    int i = 2;
    if (i < c->argc && arg_is(c, i, "SKIPINITIALSCAN")) i++;   /* accepted; see ft_alter */
    if (i + 1 >= c->argc || !arg_is(c, i, "SCHEMA") || !arg_is(c, i + 1, "ADD")) {
        reply_error(&c->out, "-Unknown action passed to ALTER SCHEMA");
        return;
    }
    i += 2;
    if (i >= c->argc) {
        reply_error(&c->out, "-No fields provided");
        return;
    }
    char err[512];
    if (ft_alter(c->srv, f, c->argc - i, c->argv + i, c->argvlen + i, err, sizeof err) < 0) {
        reply_errorf(&c->out, "-%s", err);
        return;
    }
    log_def(c->srv, 2, c->argv[1], c->argvlen[1], c->argc - i, c->argv + i, c->argvlen + i);
    c->srv->dirty++;
    reply_ok(&c->out);
}

/* FT.DROPINDEX idx [DD]: DD deletes the indexed hashes as DEL would.
 * FT.DROP idx [KEEPDOCS], RediSearch 1.x's name that 2.x kept (redis-py 4.x
 * still sends it): deletes them unless KEEPDOCS.  Any other third argument
 * deletes them too, as RediSearch 2.0-2.4 did -- redis-py 4's
 * dropindex(delete_documents=True) sends `FT.DROP idx ""` (Redis 8 answers
 * "Unknown argument" there). */
void cmd_ft_dropindex(client *c)
{
    int drop = !strcmp(c->cur->name, "ft.drop");   /* the table's name: renames don't matter */
    if (c->argc > 3) {
        reply_err_arity(c);
        return;
    }
    ftspec *f = ft_get(c, 1, &c->out, 0);
    if (!f) return;
    int dd = drop;
    if (c->argc == 3) {
        if (arg_is(c, 2, "_FORCEKEEPDOCS") || (drop && arg_is(c, 2, "KEEPDOCS"))) {
            dd = 0;
        } else if (!drop) {
            if (!arg_is(c, 2, "DD")) {
                reply_error(&c->out, "-Unknown argument");
                return;
            }
            dd = 1;
        }
    }
    server *s = c->srv;
    ft_acquire(f);
    ft_drop(s, f);
    log_def(s, 1, c->argv[1], c->argvlen[1], 0, NULL, NULL);
    s->dirty++;
    if (dd) {
        kv *db = db_kv(s, 0);
        int64_t now = srv_now_ms(s);
        for (uint32_t d = 0; d < f->nslots; d++) {
            size_t klen;
            const char *key = ft_doc_key(f, d, &klen);
            if (!key) continue;
            kv_entry *e = kv_find(db, key, klen, now);
            if (!e) continue;
            kv_del_entry(db, e);
            key_modified(s, 0, key, klen);
            notify_keyspace_event(s, NOTIFY_GENERIC, "del", 0, key, klen);
        }
    }
    ft_release(f);
    reply_ok(&c->out);
}

void cmd_ft_list(client *c)
{
    size_t n = ft_count(c->srv);
    reply_set(&c->out, (long long)n);
    for (size_t i = 0; i < n; i++) {
        ftspec *f = ft_at(c->srv, i);
        reply_bulk(&c->out, f->name, f->nlen);
    }
}

/* ---- FT.INFO ----------------------------------------------------------------------- */

static void kv_str(reply *r, const char *k, const char *v)
{
    reply_bulk_cstr(r, k);
    reply_bulk_cstr(r, v);
}

/* A double as RediSearch 2.6 sends it (RedisModule_ReplyWithDouble). */
static void kv_dbl(reply *r, const char *k, double v)
{
    reply_bulk_cstr(r, k);
    reply_double(r, v);
}

static const char *metric_name(dist_metric m)
{
    return m == DIST_L2 ? "L2" : m == DIST_DOT ? "IP" : "COSINE";
}

static const char *kind_name(ftidx_kind k)
{
    return k == FTIDX_TEXT ? "TEXT" : k == FTIDX_TAG ? "TAG" : k == FTIDX_NUMERIC ? "NUMERIC" :
           "VECTOR";
}

/* One schema field as FT.INFO shows it: identifier, attribute, type, the
 * type's options as pairs (VECTOR with 2.8.10's detail, which redisvl
 * reads), then its flags -- RESP2 a flat array with the flags appended as
 * bare words, RESP3 a map with them in a "flags" array. */
static void info_attribute(reply *r, const ftfield *fd, int r3)
{
    int pairs = 3 + (fd->kind == FTIDX_TEXT || fd->kind == FTIDX_TAG);
    if (fd->kind == FTIDX_VECTOR) pairs += 4 + (fd->algo == VINDEX_HNSW ? 2 : 0);
    int cs = fd->kind == FTIDX_TAG && fd->casesensitive, ns = fd->kind == FTIDX_TEXT && fd->nostem;
    int nflags = cs + fd->sortable + ns + fd->noindex;
    if (r3) reply_map(r, pairs + 1);
    else reply_array(r, 2LL * pairs + nflags);
    reply_bulk_cstr(r, "identifier");
    reply_bulk(r, fd->name, fd->nlen);
    reply_bulk_cstr(r, "attribute");
    reply_bulk(r, fd->alias, fd->alen);
    kv_str(r, "type", kind_name(fd->kind));
    if (fd->kind == FTIDX_TEXT) kv_dbl(r, "WEIGHT", fd->weight);
    if (fd->kind == FTIDX_TAG) {
        char sep[2] = {fd->sep, 0};
        kv_str(r, "SEPARATOR", sep);
    }
    if (fd->kind == FTIDX_VECTOR) {
        kv_str(r, "algorithm", fd->algo == VINDEX_HNSW ? "HNSW" : "FLAT");
        kv_str(r, "data_type", "FLOAT32");
        reply_bulk_cstr(r, "dim");
        reply_int(r, fd->dim);
        kv_str(r, "distance_metric", metric_name(fd->metric));
        if (fd->algo == VINDEX_HNSW) {
            reply_bulk_cstr(r, "M");
            reply_int(r, fd->M);
            reply_bulk_cstr(r, "ef_construction");
            reply_int(r, fd->efc);
        }
    }
    if (r3) {
        reply_bulk_cstr(r, "flags");
        reply_array(r, nflags);
    }
    if (cs) reply_bulk_cstr(r, "CASESENSITIVE");
    if (fd->sortable) reply_bulk_cstr(r, "SORTABLE");
    if (ns) reply_bulk_cstr(r, "NOSTEM");
    if (fd->noindex) reply_bulk_cstr(r, "NOINDEX");
}

/* FT.INFO idx: RediSearch 2.6's fields in its order (node-redis 4 reads them
 * by position); RESP3 the same keys as a map. */
void cmd_ft_info(client *c)
{
    reply *r = &c->out;
    ftspec *f = ft_get(c, 1, r, 1);     /* Redis 8's text (2.6 said "Unknown Index name") */
    if (!f) return;
    int r3 = r->proto == 3;
    ftidx_stats st;
    rwlock_rdlock(&f->lock);
    ftidx_get_stats(f->ix, &st);
    size_t vecmem = 0;
    for (int k = 0; k < f->nvec; k++) vecmem += vindex_memory(f->vec[k]);
    rwlock_rdunlock(&f->lock);
    const double MB = 1024.0 * 1024.0;
    int custom_sw = f->nstop >= 0;
    int npairs = 25 + custom_sw;
    if (r3) reply_map(r, npairs);
    else reply_array(r, 2LL * npairs);
    kv_str(r, "index_name", f->name);
    reply_bulk_cstr(r, "index_options");
    reply_array(r, 0);
    reply_bulk_cstr(r, "index_definition");
    /* prefixes always: without PREFIX, RediSearch's rule holds one empty
     * prefix and prints [""] (redisvl reads index_definition[3][0]) */
    int ndef = 3 + (f->score_field != NULL);
    if (r3) reply_map(r, ndef);
    else reply_array(r, 2LL * ndef);
    kv_str(r, "key_type", "HASH");
    reply_bulk_cstr(r, "prefixes");
    reply_array(r, f->nprefix ? f->nprefix : 1);
    for (int i = 0; i < f->nprefix; i++) reply_bulk(r, f->prefixes[i], f->plens[i]);
    if (!f->nprefix) reply_bulk(r, "", 0);
    kv_dbl(r, "default_score", f->default_score);
    if (f->score_field) kv_str(r, "score_field", f->score_field);
    reply_bulk_cstr(r, "attributes");
    reply_array(r, f->nfields);
    for (int i = 0; i < f->nfields; i++) {
        info_attribute(r, &f->fields[i], r3);
    }
    kv_dbl(r, "num_docs", (double)st.num_docs);
    kv_dbl(r, "max_doc_id", (double)f->max_doc_id);
    kv_dbl(r, "num_terms", (double)st.num_terms);
    kv_dbl(r, "num_records", (double)st.num_records);
    kv_dbl(r, "inverted_sz_mb", (double)(float)(st.inverted_bytes / MB));
    kv_dbl(r, "vector_index_sz_mb", (double)(float)(vecmem / MB));
    kv_dbl(r, "total_inverted_index_blocks", (double)st.num_terms);
    kv_dbl(r, "offset_vectors_sz_mb", 0);
    kv_dbl(r, "doc_table_size_mb", (double)(float)(st.doc_bytes / MB));
    kv_dbl(r, "sortable_values_size_mb", 0);
    kv_dbl(r, "key_table_size_mb", (double)(float)(kv_memory(f->docs) / MB));
    kv_dbl(r, "records_per_doc_avg", st.num_docs ? (double)st.num_records / st.num_docs : NAN);
    kv_dbl(r, "bytes_per_record_avg",
           st.num_records ? (double)st.inverted_bytes / st.num_records : NAN);
    kv_dbl(r, "offsets_per_term_avg", st.num_records ? 0.0 : NAN);
    kv_dbl(r, "offset_bits_per_record_avg", st.num_records ? 0.0 : NAN);
    kv_dbl(r, "hash_indexing_failures", (double)f->failures);
    kv_dbl(r, "indexing", f->indexing);
    double pct = 1.0;
    if (f->indexing && f->scan_total) {
        pct = (double)f->scanned / (double)f->scan_total;
        if (pct > 0.99) pct = 0.99;
    }
    kv_dbl(r, "percent_indexed", pct);
    reply_bulk_cstr(r, "number_of_uses");
    reply_int(r, (long long)f->uses);
    reply_bulk_cstr(r, "gc_stats");
    static const char *const gc[] = {"bytes_collected", "total_ms_run", "total_cycles",
                                     "average_cycle_time_ms", "last_run_time_ms",
                                     "gc_numeric_trees_missed", "gc_blocks_denied"};
    if (r3) reply_map(r, 7);
    else reply_array(r, 14);
    for (int i = 0; i < 7; i++) kv_dbl(r, gc[i], i == 3 ? NAN : 0);
    reply_bulk_cstr(r, "cursor_stats");
    static const char *const cur[] = {"global_idle", "global_total", "index_capacity",
                                      "index_total"};
    if (r3) reply_map(r, 4);
    else reply_array(r, 8);
    for (int i = 0; i < 4; i++) {
        reply_bulk_cstr(r, cur[i]);
        reply_int(r, i == 2 ? 128 : 0);
    }
    if (custom_sw) {
        reply_bulk_cstr(r, "stopwords_list");
        reply_array(r, f->nstop);
        for (int i = 0; i < f->nstop; i++) reply_bulk_cstr(r, f->stopwords[i]);
    }
}

/* ---- FT.TAGVALS, FT.EXPLAIN --------------------------------------------------------- */

typedef struct tagvals_ctx {
    reply *r;
    long long n;
} tagvals_ctx;

static void tagval_emit(void *ud, const char *v, size_t len)
{
    tagvals_ctx *t = ud;
    reply_bulk(t->r, v, len);
    t->n++;
}

void cmd_ft_tagvals(client *c)
{
    ftspec *f = ft_get(c, 1, &c->out, 0);
    if (!f) return;
    int i = ft_field_by_alias(f, c->argv[2], c->argvlen[2]);
    if (i < 0) {
        reply_errorf(&c->out, "-No such field `%.*s`", (int)(c->argvlen[2] < 200 ?
                     c->argvlen[2] : 200), c->argv[2]);
        return;
    }
    if (f->fields[i].kind != FTIDX_TAG) {
        reply_error(&c->out, "-Not a tag field");
        return;
    }
    tagvals_ctx t = {&c->out, 0};
    size_t h = reply_defer(&c->out);
    rwlock_rdlock(&f->lock);
    ftidx_tag_values(f->ix, (uint32_t)i, tagval_emit, &t);
    rwlock_rdunlock(&f->lock);
    reply_defer_array(&c->out, h, t.n);
}

/* ---- FT.SEARCH ------------------------------------------------------------------------ */

typedef struct ft_hit {
    char *key;             /* owned copy */
    size_t klen;
    double score;          /* the scorer's, or the vector distance */
    double rdist;          /* the yielding VECTOR_RANGE clause's distance */
    int has_rdist;
} ft_hit;

/* A VECTOR_RANGE clause, resolved against the schema. */
typedef struct ft_vrange {
    const ftfield *vf;     /* NULL: matches nothing (an unknown field); else &vfc */
    ftfield vfc;           /* a copy: FT.ALTER may move the schema's array meanwhile */
    float *vec;
    double radius;
} ft_vrange;

typedef struct ftsearch_job {
    deferred d;            /* first */
    server *srv;
    ftspec *f;             /* a reference */
    ftq *q;
    ftq_scorer scorer;
    /* the vector clause */
    int knn;
    const ftfield *vf;     /* &vfc */
    ftfield vfc;           /* a copy of the field: FT.ALTER may move the schema's array
                              while the job waits (the names it points to stay) */
    float *vec;
    uint32_t k, ef;
    char *alias;           /* the distance's name */
    size_t alen;
    /* VECTOR_RANGE clauses; the first one's distances are yielded */
    ft_vrange *vr;
    size_t nvr;
    char *ralias;          /* its $YIELD_DISTANCE_AS name */
    size_t ralen;
    uint32_t *rdoc;        /* the documents it matched, ascending, and their distances */
    double *rdist;
    size_t nrdoc;
    /* the reply's shape */
    int nocontent, withscores, withpayloads, sortby, sort_desc;   /* sortby: field, -1 score,
                                                                      -2 none */
    int sort_alias;        /* SORTBY names the distance */
    int sort_range;        /* SORTBY names the VECTOR_RANGE distance */
    long long off, num;
    int nret;              /* RETURN's fields (-1: everything) */
    char **ret;            /* requested names, and the names replies use */
    size_t *retlen;
    char **retas;
    size_t *retaslen;
    /* the result */
    ft_hit *hits;
    size_t nhits;
    size_t total;
    char *err;             /* an error found by the worker */
    int replied;           /* the worker wrote the reply (needs_hashes() == 0) */
} ftsearch_job;

static void job_free(ftsearch_job *j)
{
    for (size_t i = 0; i < j->nhits; i++) mem_free(j->hits[i].key);
    mem_free(j->hits);
    for (int i = 0; i < j->nret; i++) {
        mem_free(j->ret[i]);
        mem_free(j->retas[i]);
    }
    mem_free(j->ret);
    mem_free(j->retlen);
    mem_free(j->retas);
    mem_free(j->retaslen);
    mem_free(j->vec);
    mem_free(j->alias);
    for (size_t i = 0; i < j->nvr; i++) mem_free(j->vr[i].vec);
    mem_free(j->vr);
    mem_free(j->ralias);
    mem_free(j->rdoc);
    mem_free(j->rdist);
    mem_free(j->err);
    ftq_free(j->q);
    if (j->f) ft_release(j->f);
    reply_fini(&j->d.out);
    mem_free(j);
}

static void job_release(deferred *d) { job_free((ftsearch_job *)d); }

/* Reported distance from the index's (vindex.h: sqrt for L2, -dot for IP). */
static double rs_distance(dist_metric m, float d)
{
    if (m == DIST_L2) return (double)d * (double)d;
    if (m == DIST_DOT) return 1.0 + (double)d;
    return d;
}

/* L2's distance as RediSearch reports it: the squared distance summed in
 * float32 from the stored vector (squaring the index's sqrt would show its
 * rounding: 17.9999983724 for 18). */
static double rs_l2sq(const vindex *x, uint32_t id, const float *q, uint32_t dim, float reported)
{
    size_t len;
    float norm;
    const float *rec = vindex_record(x, id, &len, &norm);
    if (!rec || len != (size_t)dim * sizeof(float)) return (double)reported * (double)reported;
    float sum = 0;
    for (uint32_t i = 0; i < dim; i++) {
        float d = rec[i] - q[i];
        sum += d * d;
    }
    return sum;
}

typedef struct knn_filter {
    const vindex *x;
    ftq_filter *f;
} knn_filter;

static int knn_accept(void *ud, uint32_t id)
{
    knn_filter *k = ud;
    size_t kl;
    const unsigned char *key = vindex_key(k->x, id, &kl);
    return key && kl == 4 && ftq_filter_accept(k->f, le_get32(key));
}

static void add_hit(ftsearch_job *j, uint32_t doc, const char *key, size_t klen, double score)
{
    ft_hit *h = &j->hits[j->nhits++];
    h->key = mem_strndup(key, klen);
    h->klen = klen;
    h->score = score;
    size_t lo = 0, hi = j->nrdoc;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (j->rdoc[mid] < doc) lo = mid + 1;
        else hi = mid;
    }
    if (lo < j->nrdoc && j->rdoc[lo] == doc) {
        h->rdist = j->rdist[lo];
        h->has_rdist = 1;
    }
}

typedef struct rpair {
    uint32_t doc;
    double dist;
} rpair;

static int rpair_cmp(const void *a, const void *b)
{
    const rpair *x = a, *y = b;
    return x->doc < y->doc ? -1 : x->doc > y->doc;
}

/* Each VECTOR_RANGE clause's documents, by an exact scan of its field's
 * vectors (under the read lock), handed to the query; the first clause's
 * distances kept for the reply.  0, or -1 with j->err set. */
static int run_ranges(ftsearch_job *j, vindex_search_ctx *ctx)
{
    for (size_t i = 0; i < j->nvr; i++) {
        const ft_vrange *r = &j->vr[i];
        if (!r->vf) continue;
        vindex *x = j->f->vec[r->vf->vslot];
        uint32_t cnt = vindex_count(x);
        vindex_query q;
        vindex_query_init(&q, r->vec, r->vf->dim, cnt);
        /* the radius in the index's reported scale, a little wide: the
         * exact test below decides */
        double m = r->vf->metric == DIST_L2 ? sqrt(r->radius) :
                   r->vf->metric == DIST_DOT ? r->radius - 1.0 : r->radius;
        q.maxdist = (float)(m + 1e-6 + fabs(m) * 1e-6);
        vindex_hit *hits = mem_alloc(((size_t)cnt + 1) * sizeof *hits);
        uint32_t n = 0;
        int rc = cnt ? vindex_search_exact(x, ctx, &q, hits, &n) : 0;
        if (rc < 0) {
            mem_free(hits);
            j->err = mem_strndup(vindex_strerror(rc), strlen(vindex_strerror(rc)));
            return -1;
        }
        rpair *pr = mem_alloc(((size_t)n + 1) * sizeof *pr);
        size_t m2 = 0;
        for (uint32_t k = 0; k < n; k++) {
            if (hits[k].klen != 4) continue;
            double d = r->vf->metric == DIST_L2 ?
                       rs_l2sq(x, hits[k].id, r->vec, r->vf->dim, hits[k].dist) :
                       rs_distance(r->vf->metric, hits[k].dist);
            if (d <= r->radius) pr[m2++] = (rpair){le_get32(hits[k].key), d};
        }
        mem_free(hits);
        qsort(pr, m2, sizeof *pr, rpair_cmp);
        uint32_t *docs = mem_alloc((m2 + 1) * sizeof *docs);
        for (size_t k = 0; k < m2; k++) docs[k] = pr[k].doc;
        rc = ftq_set_range_docs(j->q, i, docs, m2);
        if (rc == 0 && i == 0 && j->ralias) {
            j->rdoc = docs;
            j->rdist = mem_alloc((m2 + 1) * sizeof *j->rdist);
            for (size_t k = 0; k < m2; k++) j->rdist[k] = pr[k].dist;
            j->nrdoc = m2;
        } else {
            mem_free(docs);
        }
        mem_free(pr);
        if (rc < 0) {
            j->err = mem_strndup("Out of memory", 13);
            return -1;
        }
    }
    return 0;
}

static int hit_cmp_score_desc(const void *a, const void *b)
{
    const ft_hit *x = a, *y = b;
    return x->score > y->score ? -1 : x->score < y->score ? 1 : 0;
}

/* The vector clause, under the read lock. */
static void run_knn(ftsearch_job *j, vindex_search_ctx *ctx)
{
    ftspec *f = j->f;
    vindex *x = f->vec[j->vf->vslot];
    const ftq_knn *kq = ftq_get_knn(j->q);
    uint32_t k = j->k, cnt = vindex_count(x);
    if (k > cnt) k = cnt;
    ftq_filter *flt = NULL;
    knn_filter kf = {x, NULL};
    vindex_query q;
    vindex_query_init(&q, j->vec, j->vf->dim, k);
    q.ef = j->ef;
    int exact = 0;
    if (kq->has_filter) {
        if (ftq_filter_new(j->q, f->ix, &flt) < 0) {
            j->err = mem_strndup("Out of memory", 13);
            return;
        }
        kf.f = flt;
        q.accept = knn_accept;
        q.accept_ud = &kf;
        size_t m = ftq_filter_count(flt);
        if (m < k) k = q.k = (uint32_t)m;
        exact = m <= FT_EXACT_MAX || m <= cnt / 10 || vindex_type_of(x) == VINDEX_FLAT;
    }
    vindex_hit *hits = mem_alloc(((size_t)k + 1) * sizeof *hits);
    uint32_t n = 0;
    int rc = 0;
    if (k) {
        rc = exact ? vindex_search_exact(x, ctx, &q, hits, &n) : vindex_search(x, ctx, &q, hits, &n);
        if (rc == 0 && !exact && flt && n < k) rc = vindex_search_exact(x, ctx, &q, hits, &n);
    }
    j->hits = mem_calloc((size_t)n + 1, sizeof *j->hits);
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        size_t dl;
        uint32_t doc = le_get32(hits[i].key);
        const char *key = ft_doc_key(f, doc, &dl);
        double d = j->vf->metric == DIST_L2 ? rs_l2sq(x, hits[i].id, j->vec, j->vf->dim, hits[i].dist)
                                            : rs_distance(j->vf->metric, hits[i].dist);
        if (key) add_hit(j, doc, key, dl, d);
    }
    if (rc < 0) j->err = mem_strndup(vindex_strerror(rc), strlen(vindex_strerror(rc)));
    j->total = j->nhits;
    mem_free(hits);
    ftq_filter_free(flt);
}

/* The text query, under the read lock: every match counted, the ones the
 * reply can show copied (all of them when SORTBY needs the hashes). */
static void run_text(ftsearch_job *j)
{
    ftq_result res = {0};
    if (ftq_run(j->q, j->f->ix, j->scorer, &res) < 0) {
        j->err = mem_strndup("Out of memory", 13);
        return;
    }
    j->total = res.n;
    size_t keep = res.n;
    if (j->sortby == -2 || j->sortby == -1) {
        ftq_sort_by_score(res.hits, res.n);
        if (j->sortby == -1 && !j->sort_desc) {      /* SORTBY the score ascending */
            for (size_t a = 0, b = res.n ? res.n - 1 : 0; a < b; a++, b--) {
                ftq_hit t = res.hits[a];
                res.hits[a] = res.hits[b];
                res.hits[b] = t;
            }
        }
        unsigned long long want = (unsigned long long)j->off + (unsigned long long)j->num;
        if (want < keep) keep = (size_t)want;
    }
    j->hits = mem_calloc(keep + 1, sizeof *j->hits);
    for (size_t i = 0; i < keep; i++) {
        size_t kl;
        const char *key = ft_doc_key(j->f, res.hits[i].doc, &kl);
        if (key) add_hit(j, res.hits[i].doc, key, kl, res.hits[i].score);
    }
    ftq_result_fini(&res);
}

static void search_run(ftsearch_job *j, vindex_search_ctx *ctx)
{
    ftspec *f = j->f;
    rwlock_rdlock(&f->lock);
    if (f->dropped) {
        char buf[256];
        snprintf(buf, sizeof buf, "%.*s: no such index", (int)(f->nlen < 200 ? f->nlen : 200),
                 f->name);
        j->err = mem_strndup(buf, strlen(buf));
    } else if (run_ranges(j, ctx) < 0) {
        /* j->err says why */
    } else if (j->knn) {
        run_knn(j, ctx);
    } else {
        run_text(j);
    }
    rwlock_rdunlock(&f->lock);
}

/* ---- the reply (loop thread) ---- */

/* A number the engine made (the distance), as RediSearch prints one:
 * integers as such, else %.12g. */
static size_t num_text(char *buf, size_t cap, double v)
{
    if (v == floor(v) && fabs(v) < 1e15) return (size_t)snprintf(buf, cap, "%lld", (long long)v);
    return (size_t)snprintf(buf, cap, "%.12g", v);
}

static hash *doc_hash(server *s, const ft_hit *h)
{
    kv_entry *e = kv_peek(db_kv(s, 0), h->key, h->klen);
    int64_t now = srv_now_ms(s);
    if (!e || kv_type(e) != OBJ_HASH) return NULL;
    if (kv_get_expire(e) >= 0 && kv_get_expire(e) <= now) return NULL;
    return kv_obj(e);
}

static int field_live(hash *h, const char *name, size_t len, int64_t now, const char **v,
                      size_t *vl)
{
    int64_t exp;
    if (!h || !hash_peek(h, name, len, v, vl, &exp)) return 0;
    return exp < 0 || exp > now;
}

typedef struct fields_ctx {
    reply *r;
    long long n;
} fields_ctx;

static void field_emit(void *ud, const char *f, size_t flen, const char *v, size_t vlen,
                       int64_t exp)
{
    (void)exp;
    fields_ctx *x = ud;
    reply_bulk(x->r, f, flen);
    reply_bulk(x->r, v, vlen);
    x->n++;
}

/* The document's fields (pairs) into r: 2 * pairs elements, in a deferred
 * aggregate so missing fields are simply left out. */
static void emit_fields(ftsearch_job *j, reply *r, const ft_hit *hit, hash *h, int as_map)
{
    int64_t now = h ? srv_now_ms(j->srv) : 0;     /* no hash: maybe a worker */
    size_t handle = reply_defer(r);
    long long pairs = 0;
    char num[64];
    if (j->nret < 0) {
        if (j->knn) {
            reply_bulk(r, j->alias, j->alen);
            reply_bulk(r, num, num_text(num, sizeof num, hit->score));
            pairs++;
        }
        if (hit->has_rdist) {
            reply_bulk(r, j->ralias, j->ralen);
            reply_bulk(r, num, num_text(num, sizeof num, hit->rdist));
            pairs++;
        }
        fields_ctx x = {r, 0};
        if (h) hash_foreach(h, now, field_emit, &x);
        pairs += x.n;
    } else {
        for (int i = 0; i < j->nret; i++) {
            if (j->knn && j->retlen[i] == j->alen && !memcmp(j->ret[i], j->alias, j->alen)) {
                reply_bulk(r, j->retas[i], j->retaslen[i]);
                reply_bulk(r, num, num_text(num, sizeof num, hit->score));
                pairs++;
                continue;
            }
            if (j->ralias && j->retlen[i] == j->ralen && !memcmp(j->ret[i], j->ralias, j->ralen)) {
                if (!hit->has_rdist) continue;
                reply_bulk(r, j->retas[i], j->retaslen[i]);
                reply_bulk(r, num, num_text(num, sizeof num, hit->rdist));
                pairs++;
                continue;
            }
            const char *name = j->ret[i];
            size_t nl = j->retlen[i];
            int fi = ft_field_by_alias(j->f, name, nl);
            if (fi >= 0) {
                name = j->f->fields[fi].name;
                nl = j->f->fields[fi].nlen;
            }
            const char *v;
            size_t vl;
            if (!field_live(h, name, nl, now, &v, &vl)) continue;
            reply_bulk(r, j->retas[i], j->retaslen[i]);
            reply_bulk(r, v, vl);
            pairs++;
        }
    }
    if (as_map) reply_defer_map(r, handle, pairs);
    else reply_defer_array(r, handle, 2 * pairs);
}

/* SORTBY a field: its value in each hit's hash (loop thread). */
typedef struct sort_item {
    ft_hit hit;
    int have;
    double num;
    const char *s;
    size_t slen;
} sort_item;

static int sort_numeric, sort_desc_flag;

static int sort_cmp(const void *a, const void *b)
{
    const sort_item *x = a, *y = b;
    if (x->have != y->have) return x->have ? -1 : 1;      /* missing values last */
    int c = 0;
    if (x->have) {
        if (sort_numeric) c = x->num < y->num ? -1 : x->num > y->num;
        else {
            size_t m = x->slen < y->slen ? x->slen : y->slen;
            c = strncasecmp(x->s, y->s, m);
            if (!c) c = x->slen < y->slen ? -1 : x->slen > y->slen;
        }
        if (sort_desc_flag) c = -c;
    }
    return c;
}

static void sort_by_field(ftsearch_job *j)
{
    const ftfield *fd = &j->f->fields[j->sortby];
    int64_t now = srv_now_ms(j->srv);
    sort_item *it = mem_calloc(j->nhits + 1, sizeof *it);
    for (size_t i = 0; i < j->nhits; i++) {
        it[i].hit = j->hits[i];
        hash *h = doc_hash(j->srv, &j->hits[i]);
        const char *v;
        size_t vl;
        if (field_live(h, fd->name, fd->nlen, now, &v, &vl)) {
            it[i].s = v;
            it[i].slen = vl;
            it[i].have = fd->kind != FTIDX_NUMERIC || util_str2d(v, vl, &it[i].num);
        }
    }
    sort_numeric = fd->kind == FTIDX_NUMERIC;
    sort_desc_flag = j->sort_desc;
    qsort(it, j->nhits, sizeof *it, sort_cmp);     /* stable enough: ties keep no order */
    for (size_t i = 0; i < j->nhits; i++) j->hits[i] = it[i].hit;
    mem_free(it);
}

static int dist_cmp_asc(const void *a, const void *b)
{
    const ft_hit *x = a, *y = b;
    return x->score < y->score ? -1 : x->score > y->score ? 1 : 0;
}

static int rdist_cmp(const ft_hit *x, const ft_hit *y)
{
    if (x->has_rdist != y->has_rdist) return x->has_rdist ? -1 : 1;     /* missing last */
    return x->rdist < y->rdist ? -1 : x->rdist > y->rdist ? 1 : 0;
}

static int rdist_cmp_asc(const void *a, const void *b) { return rdist_cmp(a, b); }
static int rdist_cmp_desc(const void *a, const void *b)
{
    const ft_hit *x = a, *y = b;
    if (x->has_rdist != y->has_rdist) return x->has_rdist ? -1 : 1;
    return -rdist_cmp(a, b);
}

/* Whether the reply reads the documents' hashes (keyspace: loop thread
 * only): not with NOCONTENT, nor when RETURN names only the vector
 * clause's distance, and no SORTBY of a field. */
static int needs_hashes(const ftsearch_job *j)
{
    if (j->sortby >= 0) return 1;
    if (j->nocontent) return 0;
    if (j->nret < 0 || !j->knn) return 1;
    for (int i = 0; i < j->nret; i++)
        if (j->retlen[i] != j->alen || memcmp(j->ret[i], j->alias, j->alen)) return 1;
    return 0;
}

/* Order, page and write the reply into r. */
static void search_reply(ftsearch_job *j, reply *r)
{
    if (j->err) {
        reply_errorf(r, "-%s", j->err);
        return;
    }
    if (j->sortby >= 0) {
        sort_by_field(j);
    } else if (j->sort_range) {
        qsort(j->hits, j->nhits, sizeof *j->hits, j->sort_desc ? rdist_cmp_desc : rdist_cmp_asc);
    } else if (j->knn) {
        qsort(j->hits, j->nhits, sizeof *j->hits, j->sort_desc ? hit_cmp_score_desc : dist_cmp_asc);
    }
    size_t from = j->off < 0 ? 0 : (size_t)j->off;
    if (from > j->nhits) from = j->nhits;
    size_t n = j->nhits - from;
    if ((unsigned long long)n > (unsigned long long)j->num) n = (size_t)j->num;
    int r3 = r->proto == 3;
    if (r3) {
        reply_map(r, 5);
        reply_bulk_cstr(r, "attributes");
        reply_array(r, 0);
        reply_bulk_cstr(r, "format");
        reply_bulk_cstr(r, "STRING");
        reply_bulk_cstr(r, "results");
        reply_array(r, (long long)n);
    } else {
        long long per = 1 + j->withscores + j->withpayloads + !j->nocontent;
        reply_array(r, 1 + per * (long long)n);
        reply_int(r, (long long)j->total);
    }
    int read_hashes = needs_hashes(j);
    for (size_t i = from; i < from + n; i++) {
        const ft_hit *hit = &j->hits[i];
        hash *h = read_hashes ? doc_hash(j->srv, hit) : NULL;
        double score = j->knn ? 0.0 : hit->score;
        if (r3) {
            reply_map(r, 2 + j->withscores + j->withpayloads + !j->nocontent);
            reply_bulk_cstr(r, "id");
            reply_bulk(r, hit->key, hit->klen);
            if (j->withscores) {
                reply_bulk_cstr(r, "score");
                reply_double(r, score);
            }
            if (j->withpayloads) {
                reply_bulk_cstr(r, "payload");
                reply_null(r);
            }
            if (!j->nocontent) {
                reply_bulk_cstr(r, "extra_attributes");
                emit_fields(j, r, hit, h, 1);
            }
            reply_bulk_cstr(r, "values");
            reply_array(r, 0);
            continue;
        }
        reply_bulk(r, hit->key, hit->klen);
        if (j->withscores) reply_double(r, score);
        if (j->withpayloads) reply_null(r);
        if (!j->nocontent) emit_fields(j, r, hit, h, 0);
    }
    if (r3) {
        reply_bulk_cstr(r, "total_results");
        reply_int(r, (long long)j->total);
        reply_bulk_cstr(r, "warning");
        reply_array(r, 0);
    }
}

/* A reply that reads no hash is written here, on the worker, as VSIM's
 * is; the others on the loop thread (search_done). */
static void search_work(pool_job *pj, int worker)
{
    ftsearch_job *j = (ftsearch_job *)pj;
    search_run(j, srv_worker_ctx(j->srv, worker));
    if (!needs_hashes(j)) {
        search_reply(j, &j->d.out);
        j->replied = 1;
    }
}

static void search_done(pool_job *pj)
{
    ftsearch_job *j = (ftsearch_job *)pj;
    if (!j->replied) search_reply(j, &j->d.out);
    deferred_done(&j->d);
}

/* ---- parsing ---- */

static int arg_num(client *c, int i, long long *v)
{
    return i < c->argc && util_str2ll(c->argv[i], c->argvlen[i], v);
}

static void bad_arg(reply *r, client *c, int i)
{
    reply_errorf(r, "-Unknown argument `%.*s` at position %d for <main>",
                 (int)(c->argvlen[i] < 100 ? c->argvlen[i] : 100), c->argv[i], i - 3 + 1);
}

/* Strip the '@' a field name may carry. */
static void field_word(const char **p, size_t *n)
{
    if (*n && (*p)[0] == '@') (*p)++, (*n)--;
}

/* Parse FT.SEARCH's options into j and the query's opts (params point
 * into argv).  1, or 0 after replying an error into r. */
static int search_parse(client *c, ftsearch_job *j, ftq_opts *o, ftq_param **params, reply *r)
{
    const char *sortname = NULL;
    size_t sortlen = 0;
    j->off = 0;
    j->num = 10;
    j->nret = -1;
    j->sortby = -2;
    j->scorer = FTQ_BM25STD;
    for (int i = 3; i < c->argc; i++) {
        long long v;
        if (arg_is(c, i, "NOCONTENT")) j->nocontent = 1;
        else if (arg_is(c, i, "WITHSCORES")) j->withscores = 1;
        else if (arg_is(c, i, "WITHPAYLOADS")) j->withpayloads = 1;
        else if (arg_is(c, i, "VERBATIM")) o->verbatim = 1;
        else if (arg_is(c, i, "NOSTOPWORDS")) o->nostopwords = 1;
        else if (arg_is(c, i, "INORDER")) o->inorder = 1;
        else if (arg_is(c, i, "WITHSORTKEYS") || arg_is(c, i, "EXPLAINSCORE")) {
            reply_errorf(r, "-engram does not support %.*s", (int)c->argvlen[i], c->argv[i]);
            return 0;
        } else if (arg_is(c, i, "SLOP")) {
            if (!arg_num(c, i + 1, &v) || v < 0) {
                reply_error(r, "-Bad arguments for SLOP: Could not convert argument to expected type");
                return 0;
            }
            o->slop = (int)v;
            o->has_slop = 1;
            i++;
        } else if (arg_is(c, i, "TIMEOUT")) {
            if (!arg_num(c, i + 1, &v) || v < 0) {
                reply_error(r, "-Bad arguments for TIMEOUT: Could not convert argument to expected type");
                return 0;
            }
            i++;        /* queries run to the end: engram does not cut them short */
        } else if (arg_is(c, i, "LANGUAGE") || arg_is(c, i, "EXPANDER") ||
                   arg_is(c, i, "PAYLOAD")) {
            if (i + 1 >= c->argc) {
                reply_errorf(r, "-Bad arguments for %.*s: Expected an argument",
                             (int)c->argvlen[i], c->argv[i]);
                return 0;
            }
            i++;
        } else if (arg_is(c, i, "SCORER")) {
            int sc = i + 1 < c->argc ? ftq_scorer_parse(c->argv[i + 1], c->argvlen[i + 1]) : -1;
            if (sc < 0) {
                reply_errorf(r, "-Scoring function `%.*s` not found",
                             i + 1 < c->argc ? (int)c->argvlen[i + 1] : 0,
                             i + 1 < c->argc ? c->argv[i + 1] : "");
                return 0;
            }
            j->scorer = (ftq_scorer)sc;
            i++;
        } else if (arg_is(c, i, "DIALECT")) {
            if (!arg_num(c, i + 1, &v) || v < 1 || v > 4) {
                reply_error(r, "-DIALECT requires a non negative integer >=1 and <= 4");
                return 0;
            }
            o->dialect = (int)v;
            i++;
        } else if (arg_is(c, i, "LIMIT")) {
            long long n;
            if (!arg_num(c, i + 1, &v) || !arg_num(c, i + 2, &n) || v < 0 || n < 0) {
                reply_error(r, "-Bad arguments for LIMIT: Could not convert argument to expected type");
                return 0;
            }
            if (n > FT_LIMIT_MAX || v > FT_LIMIT_MAX - n) {
                reply_error(r, "-LIMIT exceeds maximum of 1000000");
                return 0;
            }
            j->off = v;
            j->num = n;
            i += 2;
        } else if (arg_is(c, i, "SORTBY")) {
            if (i + 1 >= c->argc) {
                reply_error(r, "-Bad arguments for SORTBY: Expected an argument");
                return 0;
            }
            sortname = c->argv[i + 1];
            sortlen = c->argvlen[i + 1];
            i++;
            if (i + 1 < c->argc && arg_is(c, i + 1, "ASC")) i++;
            else if (i + 1 < c->argc && arg_is(c, i + 1, "DESC")) j->sort_desc = 1, i++;
        } else if (arg_is(c, i, "RETURN")) {
            if (!arg_num(c, i + 1, &v) || v < 0 || v > c->argc - i - 2) {
                reply_error(r, "-Bad arguments for RETURN: Expected a number of fields");
                return 0;
            }
            int n = (int)v, k = i + 2, end = i + 2 + n;
            for (int x = 0; x < j->nret; x++) {      /* a second RETURN replaces the first */
                mem_free(j->ret[x]);
                mem_free(j->retas[x]);
            }
            mem_free(j->ret);
            mem_free(j->retlen);
            mem_free(j->retas);
            mem_free(j->retaslen);
            j->ret = mem_calloc((size_t)n + 1, sizeof *j->ret);
            j->retlen = mem_calloc((size_t)n + 1, sizeof *j->retlen);
            j->retas = mem_calloc((size_t)n + 1, sizeof *j->retas);
            j->retaslen = mem_calloc((size_t)n + 1, sizeof *j->retaslen);
            j->nret = 0;
            while (k < end) {
                const char *nm = c->argv[k];
                size_t nl = c->argvlen[k];
                field_word(&nm, &nl);
                const char *as = nm;
                size_t al = nl;
                k++;
                if (k < end && arg_is(c, k, "AS")) {
                    if (k + 1 >= end) {
                        reply_error(r, "-Bad arguments for RETURN: AS needs a name");
                        return 0;
                    }
                    as = c->argv[k + 1];
                    al = c->argvlen[k + 1];
                    k += 2;
                }
                j->ret[j->nret] = mem_strndup(nm, nl);
                j->retlen[j->nret] = nl;
                j->retas[j->nret] = mem_strndup(as, al);
                j->retaslen[j->nret++] = al;
            }
            if (n == 0) j->nocontent = 1;
            i = end - 1;
        } else if (arg_is(c, i, "PARAMS")) {
            if (!arg_num(c, i + 1, &v) || v < 0 || v % 2 || v > c->argc - i - 2) {
                reply_error(r, "-Bad arguments for PARAMS: Expected an even number of arguments");
                return 0;
            }
            int n = (int)v / 2;
            *params = mem_realloc(*params, (o->nparams + (size_t)n + 1) * sizeof **params);
            for (int k = 0; k < n; k++) {
                ftq_param *p = &(*params)[o->nparams++];
                p->name = c->argv[i + 2 + 2 * k];
                p->name_len = c->argvlen[i + 2 + 2 * k];
                p->value = c->argv[i + 3 + 2 * k];
                p->value_len = c->argvlen[i + 3 + 2 * k];
            }
            o->params = *params;
            i += 1 + (int)v;
        } else if (arg_is(c, i, "FILTER") || arg_is(c, i, "GEOFILTER") ||
                   arg_is(c, i, "INKEYS") || arg_is(c, i, "INFIELDS") ||
                   arg_is(c, i, "SUMMARIZE") || arg_is(c, i, "HIGHLIGHT")) {
            reply_errorf(r, "-engram does not support %.*s (use the query language)",
                         (int)c->argvlen[i], c->argv[i]);
            return 0;
        } else {
            bad_arg(r, c, i);
            return 0;
        }
    }
    if (sortname) {
        field_word(&sortname, &sortlen);
        j->sortby = -3;         /* resolved once the vector clause's alias is known */
        j->alias = mem_strndup(sortname, sortlen);   /* kept here until then */
        j->alen = sortlen;
    }
    return 1;
}

void cmd_ft_search(client *c)
{
    server *s = c->srv;
    ftsearch_job *j = mem_calloc(1, sizeof *j);
    reply_init(&j->d.out, c->resp);
    j->srv = s;
    j->d.release = job_release;
    reply *r = deferred_busy(c) ? &j->d.out : &c->out;
    ftq_param *params = NULL;
    ftspec *f = ft_get(c, 1, r, 1);
    if (!f) goto immediate;
    ftq_opts o = {0};
    o.strict_fields = 1;
    if (!search_parse(c, j, &o, &params, r)) goto immediate;
    char *sortname = NULL;
    size_t sortlen = 0;
    if (j->sortby == -3) {
        sortname = j->alias;
        sortlen = j->alen;
        j->alias = NULL;
    }
    ftq_error qe;
    if (ftq_compile(f->ix, c->argv[2], c->argvlen[2], &o, &j->q, &qe) < 0) {
        mem_free(sortname);
        reply_errorf(r, "-%s", qe.msg);
        goto immediate;
    }
    const ftq_knn *kq = ftq_get_knn(j->q);
    if (kq) {
        if (kq->field < 0 || f->fields[kq->field].kind != FTIDX_VECTOR) {
            mem_free(sortname);
            reply_error(r, "-Error parsing vector similarity query: the field is not a VECTOR field");
            goto immediate;
        }
        const ftfield *vf = &f->fields[kq->field];
        if (kq->vec_len != (size_t)vf->dim * 4) {
            mem_free(sortname);
            reply_errorf(r, "-Error parsing vector similarity query: query vector blob size (%zu) "
                         "does not match index's expected size (%zu).", kq->vec_len,
                         (size_t)vf->dim * 4);
            goto immediate;
        }
        j->knn = 1;
        j->vfc = *vf;
        j->vf = &j->vfc;
        j->k = kq->k;
        j->ef = kq->has_ef ? kq->ef_runtime : vf->ef_runtime;
        if (j->ef < j->k) j->ef = j->k;
        if (j->ef > VINDEX_EF_MAX) j->ef = VINDEX_EF_MAX;
        j->vec = mem_alloc((size_t)vf->dim * sizeof *j->vec + 1);
        memcpy(j->vec, kq->vec, (size_t)vf->dim * 4);
        for (uint32_t i = 0; i < vf->dim; i++)
            if (!isfinite(j->vec[i])) {
                mem_free(sortname);
                reply_error(r, "-Error parsing vector similarity query: the vector holds a NaN or "
                            "infinity");
                goto immediate;
            }
        j->alias = mem_strndup(kq->alias, kq->alias_len);
        j->alen = kq->alias_len;
    }
    size_t nvr = ftq_range_count(j->q);
    if (nvr) {
        j->vr = mem_calloc(nvr, sizeof *j->vr);
        j->nvr = nvr;
    }
    for (size_t i = 0; i < nvr; i++) {
        const ftq_range *rc = ftq_get_range(j->q, i);
        if (rc->field < 0) continue;        /* an unknown field: matches nothing */
        const ftfield *vf = &f->fields[rc->field];
        if (vf->kind != FTIDX_VECTOR) {
            mem_free(sortname);
            reply_error(r, "-Error parsing vector similarity query: the field is not a VECTOR field");
            goto immediate;
        }
        if (rc->vec_len != (size_t)vf->dim * 4) {
            mem_free(sortname);
            reply_errorf(r, "-Error parsing vector similarity query: query vector blob size (%zu) "
                         "does not match index's expected size (%zu).", rc->vec_len,
                         (size_t)vf->dim * 4);
            goto immediate;
        }
        float *v = mem_alloc((size_t)vf->dim * sizeof *v + 1);
        memcpy(v, rc->vec, (size_t)vf->dim * 4);
        j->vr[i] = (ft_vrange){NULL, *vf, v, rc->radius};
        j->vr[i].vf = &j->vr[i].vfc;
        for (uint32_t d = 0; d < vf->dim; d++)
            if (!isfinite(v[d])) {
                mem_free(sortname);
                reply_error(r, "-Error parsing vector similarity query: the vector holds a NaN or "
                            "infinity");
                goto immediate;
            }
        if (i == 0) {
            j->ralias = mem_strndup(rc->alias, rc->alias_len);
            j->ralen = rc->alias_len;
        }
    }
    if (sortname) {
        if (j->knn && sortlen == j->alen && !memcmp(sortname, j->alias, sortlen)) {
            j->sortby = -1;
        } else if (j->ralias && sortlen == j->ralen && !memcmp(sortname, j->ralias, sortlen)) {
            j->sortby = -4;
            j->sort_range = 1;
        } else {
            int fi = ft_field_by_alias(f, sortname, sortlen);
            if (fi < 0 || f->fields[fi].kind == FTIDX_VECTOR) {
                reply_errorf(r, "-Property `%.*s` not loaded nor in schema", (int)(sortlen < 200 ?
                             sortlen : 200), sortname);
                mem_free(sortname);
                goto immediate;
            }
            j->sortby = fi;
        }
        mem_free(sortname);
    }
    mem_free(params);
    params = NULL;
    j->f = ft_acquire(f);
    f->uses++;
    if ((c->flags & CLIENT_IN_EXEC) || !s->pool) {
        search_run(j, srv_loop_ctx(s));
        search_reply(j, r);
        goto immediate;
    }
    j->d.job.work = search_work;
    j->d.job.done = search_done;
    deferred_start(c, &j->d);
    pool_submit(s->pool, &j->d.job);
    return;
immediate:
    mem_free(params);
    if (r == &j->d.out) deferred_answer(c, &j->d);
    else job_free(j);
}

/* FT.EXPLAIN idx query [DIALECT d]: the compiled query in engram's notation
 * (ftquery.h's ftq_dump), one bulk string -- not RediSearch's layout. */
void cmd_ft_explain(client *c)
{
    ftspec *f = ft_get(c, 1, &c->out, 1);
    if (!f) return;
    ftq_opts o = {0};
    o.strict_fields = 1;
    ftq_param *params = NULL;
    for (int i = 3; i < c->argc; i++) {
        long long v;
        if (arg_is(c, i, "DIALECT") && arg_num(c, i + 1, &v)) {
            o.dialect = (int)v;
            i++;
        } else if (arg_is(c, i, "PARAMS") && arg_num(c, i + 1, &v) && v >= 0 && !(v % 2) &&
                   v <= c->argc - i - 2) {
            params = mem_realloc(params, ((size_t)v / 2 + 1) * sizeof *params);
            for (int k = 0; k < v / 2; k++)
                params[k] = (ftq_param){c->argv[i + 2 + 2 * k], c->argvlen[i + 2 + 2 * k],
                                        c->argv[i + 3 + 2 * k], c->argvlen[i + 3 + 2 * k]};
            o.params = params;
            o.nparams = (size_t)v / 2;
            i += 1 + (int)v;
        } else {
            mem_free(params);
            bad_arg(&c->out, c, i);
            return;
        }
    }
    ftq *q;
    ftq_error qe;
    int rc = ftq_compile(f->ix, c->argv[2], c->argvlen[2], &o, &q, &qe);
    mem_free(params);
    if (rc < 0) {
        reply_errorf(&c->out, "-%s", qe.msg);
        return;
    }
    size_t n = ftq_dump(q, NULL, 0);
    char *buf = mem_alloc(n + 2);
    ftq_dump(q, buf, n + 1);
    buf[n] = '\n';
    reply_bulk(&c->out, buf, n + 1);
    mem_free(buf);
    ftq_free(q);
}
