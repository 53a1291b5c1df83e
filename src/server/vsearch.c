/* vsearch.c -- the VSEARCH job (vsearch.h): the search on a worker, the
 * reply encoded there under the index's read lock (hit keys and payloads
 * are borrowed from the index), exact FLAT scans split across the pool,
 * and the jobs kept for reuse.
 *
 * Reuse: finished jobs are kept (up to VSEARCH_JOB_CACHE) with their reply
 * buffers and query buffers, so a job and its buffers are allocated and
 * freed on the loop thread only, the workers do not allocate in the common
 * case (they keep up to VSEARCH_SMALL_K hits on their stack), and the
 * allocator never hands memory from one thread's arena back to another's:
 * a pipelined batch used to free 64 query buffers at once, more than
 * glibc's per-thread cache holds.
 *
 * Threads: vsearch_run and the parts' work on workers; the rest on the
 * loop thread. */
#include "vsearch.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "engram/mem.h"
#include "engram/pool.h"
#include "server.h"

/* ---- encoding and running ----------------------------------------------------- */

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

int vsearch_accept(void *ud, uint32_t id)
{
    const vsearch_filter *u = ud;
    return vfilter_match(u->f, vindex_attr(u->x, id));
}

int vsearch_filter_compile(reply *r, const char *expr, size_t len, vfilter **f)
{
    vfilter_error fe;
    vfilter_free(*f);
    *f = NULL;
    if (vfilter_compile(NULL, expr, len, f, &fe) == 0) return 1;
    size_t cap = len + 128;
    char *msg = mem_alloc(cap);
    vfilter_format_error(msg, cap, expr, len, &fe);
    reply_errorf(r, "ERR %s", msg);
    mem_free(msg);
    return 0;
}

void vsearch_run(vset *e, const char *key, size_t klen, vindex_search_ctx *ctx,
                 const vindex_query *q0, const vfilter *filter, int withp, reply *r)
{
    vindex_query qf = *q0;
    const vindex_query *q = &qf;
    vsearch_filter ud = { vset_index(e), filter };
    if (filter) {
        qf.accept = vsearch_accept;
        qf.accept_ud = &ud;
    }
    uint32_t n = 0;
    vindex_hit small[VSEARCH_SMALL_K];     /* the common k: no allocation */
    vindex_hit *hits = q->k > VSEARCH_SMALL_K ? mem_alloc((size_t)q->k * sizeof *hits) : small;
    vset_read_lock(e);
    if (vset_dropped(e)) {
        vset_read_unlock(e);
        reply_errorf(r, "ERR no such index '%.*s'", (int)(klen < 128 ? klen : 128), key);
        if (hits != small) mem_free(hits);
        return;
    }
    int rc = q->k ? vindex_search(vset_index(e), ctx, q, hits, &n) : 0;
    if (rc < 0) reply_errorf(r, "ERR search failed: %s", vindex_strerror(rc));
    else vsearch_encode(r, withp ? vset_index(e) : NULL, hits, n);   /* keys and payloads are
                                                                    borrowed: encode under the lock */
    vset_read_unlock(e);
    vset_count_search(e);
    if (hits != small) mem_free(hits);
}


/* ---- jobs ------------------------------------------------------------------ */

#define VSEARCH_JOB_CACHE 512
#define VSEARCH_JOB_KEEP_OUT 4096      /* largest reply buffer kept */
#define VSEARCH_JOB_KEEP_VEC 1024      /* largest query vector (floats) kept */
#define VSEARCH_JOB_KEEP_NAME 256      /* largest key name kept */

static void vsearch_release(deferred *d);

vsearch_job *vsearch_job_new(server *s, int proto)
{
    vsearch_job *j = s->vjob_cache;
    if (!j) {
        j = mem_calloc(1, sizeof *j);
        reply_init(&j->d.out, proto);
        reply_reserve(&j->d.out, 512);     /* k = 10 takes about 250 bytes */
    } else {
        s->vjob_cache = (vsearch_job *)j->d.next;
        s->vjob_ncache--;
        j->d.next = NULL;
        j->d.out.proto = proto == 3 ? 3 : 2;
    }
    j->srv = s;
    j->d.release = vsearch_release;
    return j;
}

/* Back to the cache (or freed).  Loop thread. */
static void vsearch_release(deferred *d)
{
    vsearch_job *j = (vsearch_job *)d;
    server *s = j->srv;
    if (j->e) vset_release(j->e);
    vfilter_free(j->vs.filter);
    mem_free(j->text);
    for (int i = 0; i < j->nparts; i++) mem_free(j->pairs[i]);
    mem_free(j->pairs);
    mem_free(j->npairs);
    mem_free(j->gens);
    mem_free(j->rcs);
    if (s->vjob_ncache < VSEARCH_JOB_CACHE && j->d.out.cap <= VSEARCH_JOB_KEEP_OUT) {
        reply out = j->d.out;
        float *vec = j->veccap <= VSEARCH_JOB_KEEP_VEC ? j->vec : NULL;
        uint32_t veccap = vec ? j->veccap : 0;
        char *name = j->namecap <= VSEARCH_JOB_KEEP_NAME ? j->name : NULL;
        size_t namecap = name ? j->namecap : 0;
        if (!vec) mem_free(j->vec);
        if (!name) mem_free(j->name);
        memset(j, 0, sizeof *j);
        j->d.out = out;
        j->d.out.len = j->d.out.sent = 0;
        j->vec = vec;
        j->veccap = veccap;
        j->name = name;
        j->namecap = namecap;
        j->d.next = (deferred *)s->vjob_cache;
        s->vjob_cache = j;
        s->vjob_ncache++;
        return;
    }
    mem_free(j->vec);
    mem_free(j->name);
    reply_fini(&j->d.out);
    mem_free(j);
}

void vsearch_job_discard(vsearch_job *j) { vsearch_release(&j->d); }

void vsearch_cache_free(server *s)
{
    while (s->vjob_cache) {
        vsearch_job *j = s->vjob_cache;
        s->vjob_cache = (vsearch_job *)j->d.next;
        mem_free(j->vec);
        mem_free(j->name);
        reply_fini(&j->d.out);
        mem_free(j);
    }
    s->vjob_ncache = 0;
}

static void vsearch_work(pool_job *pj, int worker)
{
    vsearch_job *j = (vsearch_job *)pj;
    if (j->text) {
        int w = embed_text(j->embed, j->text, j->tlen, j->vec);
        if (w <= 0) {
            reply_error(&j->d.out, w == -ENOMEM ? "ERR out of memory embedding the text"
                                                : "ERR text has no words to embed");
            return;
        }
    }
    if (j->vs.on) vsim_run(j->e, srv_worker_ctx(j->srv, worker), j, &j->d.out);
    else vsearch_run(j->e, j->name, j->nlen, srv_worker_ctx(j->srv, worker), &j->q,
                     j->vs.filter, j->withpayload, &j->d.out);
}

static void vsearch_done(pool_job *pj) { deferred_done(&((vsearch_job *)pj)->d); }

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
    vset_read_lock(j->e);
    int same = !vset_dropped(j->e);
    uint64_t g = vset_generation(j->e);
    for (int i = 0; i < j->nparts && same; i++) same = j->gens[i] == g && j->rcs[i] == 0;
    if (same) {
        uint32_t n = 0;
        vindex_hit *hits = mem_alloc((size_t)j->q.k * sizeof *hits);
        vindex_pair *scratch = mem_alloc((size_t)j->q.k * sizeof *scratch);
        int rc = vindex_search_join(vset_index(j->e), &j->q, (const vindex_pair *const *)j->pairs,
                                    j->npairs, j->nparts, scratch, hits, &n);
        if (rc == 0) vsearch_encode(&j->d.out, j->withpayload ? vset_index(j->e) : NULL, hits, n);
        vset_read_unlock(j->e);
        mem_free(scratch);
        mem_free(hits);
        if (rc == 0) {
            vset_count_search(j->e);
            return;
        }
    } else {
        vset_read_unlock(j->e);
    }
    vsearch_run(j->e, j->name, j->nlen, ctx, &j->q, j->vs.filter, j->withpayload,
                &j->d.out);   /* in one piece */
}

static void vpart_work(pool_job *pj, int worker)
{
    vsearch_part *p = (vsearch_part *)pj;
    vsearch_job *j = p->j;
    vindex_search_ctx *ctx = srv_worker_ctx(j->srv, worker);
    vset_read_lock(j->e);
    j->gens[p->part] = vset_generation(j->e);
    j->rcs[p->part] = vset_dropped(j->e) ? 1 :
        vindex_search_part(vset_index(j->e), ctx, &j->q, (uint32_t)p->part, (uint32_t)j->nparts,
                           j->pairs[p->part], &j->npairs[p->part]);
    vset_read_unlock(j->e);
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
    if (last) deferred_done(&j->d);      /* the others no longer touch j */
}

/* Submit j as parts if its index is worth splitting; 0 if not. */
static int vsearch_split(server *s, vsearch_job *j, vset *e)
{
    uint64_t bytes = (uint64_t)vindex_split_slots(vset_index(e)) * vindex_dim(vset_index(e)) * 4;
    uint64_t parts = bytes / VSEARCH_PART_BYTES;
    if (parts > (uint64_t)s->nworkers) parts = (uint64_t)s->nworkers;
    if (parts > 64) parts = 64;
    if (parts < 2 || j->q.k == 0 || j->vs.on || j->vs.filter || j->text) return 0;
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

void vsearch_start(client *c, vsearch_job *j, vset *e, const char *key, size_t klen)
{
    if (klen > j->namecap) {
        j->name = mem_realloc(j->name, klen);
        j->namecap = klen;
    }
    if (klen) memcpy(j->name, key, klen);
    j->nlen = klen;
    j->e = vset_acquire(e);
    j->d.job.work = vsearch_work;
    j->d.job.done = vsearch_done;
    deferred_start(c, &j->d);
    if (!vsearch_split(c->srv, j, e)) pool_submit(c->srv->pool, &j->d.job);
}
