/* vsearch.h -- the VSEARCH job: a vector search run on the worker pool and
 * answered through the deferred-reply mechanism (deferred.h), or inline on
 * the loop thread (inside EXEC, or without a pool).
 *
 * The same job carries Redis's VSIM (j->vs.on; cmd_vset.c formats its
 * reply with vsim_run).
 *
 * The handler (cmd_vec.c) parses and validates on the loop thread, takes a
 * job (vsearch_job_new), parses the query vector into its buffer, fills q
 * and withpayload, then either vsearch_start()s it or, for an immediate
 * reply, writes that reply and hands the job back (deferred_answer when
 * replies are in flight, else vsearch_job_discard).
 *
 * Threads: vsearch_run on any thread (it takes the index's read lock);
 * everything else on the loop thread. */
#ifndef ENGRAM_VSEARCH_H
#define ENGRAM_VSEARCH_H

#include <stdint.h>

#include "engram/embed.h"
#include "engram/vfilter.h"
#include "engram/vindex.h"
#include "engram/vset.h"
#include "deferred.h"

typedef struct server server;
typedef struct client client;
typedef struct vsearch_job vsearch_job;

struct vsearch_job {
    deferred d;             /* first: the reply, the pool job, its place in line */
    server *srv;
    vset *e;                /* a reference while the search runs */
    char *name;             /* the key the client named (for its errors); owned, */
    size_t nlen, namecap;   /* kept with a recycled job */
    vindex_query q;
    int withpayload;
    /* VSIM (cmd_vset.c): the reply Redis's vector sets give */
    struct {
        int on, withscores, withattribs, truth;
        float epsilon;          /* stop at the first hit with distance / 2 above it */
        vfilter *filter;        /* owned; NULL: none */
    } vs;
    float *vec;             /* the query vector (owned; kept with a recycled job) */
    /* VSEARCH ... TEXT with a neural embedder (models_heavy): the worker
     * embeds text into vec before searching (an error reply if the text has
     * no token); such a search is never split in parts */
    const embedder *embed;
    char *text;             /* owned; NULL: vec is ready */
    size_t tlen;
    uint32_t veccap;        /* floats vec has room for */
    /* a FLAT search split in parts (vsearch.c): per part its results, the
     * index generation it saw and its return code */
    int nparts;
    _Atomic int left;       /* parts still running */
    vindex_pair **pairs;
    uint32_t *npairs;
    uint64_t *gens;
    int *rcs;
};

/* A job for a client speaking `proto` (from the server's cache when it can). */
vsearch_job *vsearch_job_new(server *s, int proto);
/* Give back a job that was never started nor queued. */
void vsearch_job_discard(vsearch_job *j);
/* Run j's search on e, the set held by key (klen bytes), on the pool
 * (split in parts when e is a big FLAT index); its reply goes out in c's
 * request order. */
void vsearch_start(client *c, vsearch_job *j, vset *e, const char *key, size_t klen);
/* Search e under its read lock and encode the reply into r; a set whose
 * key was deleted meanwhile answers "no such index" naming key.  filter
 * (may be NULL) keeps only the entries whose attributes pass it.  Any
 * thread. */
void vsearch_run(vset *e, const char *key, size_t klen, vindex_search_ctx *ctx,
                 const vindex_query *q, const vfilter *filter, int withp, reply *r);

/* A FILTER as a search's accept callback: the index (read-locked) and the
 * compiled expression; an entry passes when its attributes do. */
typedef struct vsearch_filter {
    const vindex *x;
    const vfilter *f;
} vsearch_filter;
int vsearch_accept(void *ud, uint32_t id);
/* Compile a FILTER argument into *f (a previous one freed first: the last
 * FILTER wins), or reply Redis's syntax error into r and return 0. */
int vsearch_filter_compile(reply *r, const char *expr, size_t len, vfilter **f);
/* A VSIM job's search and reply (cmd_vset.c), under e's read lock.  Any
 * thread. */
void vsim_run(vset *e, vindex_search_ctx *ctx, const vsearch_job *j, reply *r);
/* Free the jobs kept for reuse (after the pool is gone). */
void vsearch_cache_free(server *s);

#endif
