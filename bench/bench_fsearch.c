/* bench_fsearch.c -- a filtered HNSW search in process: what VSIM ...
 * FILTER costs the engine, without the wire, the server's threads or the
 * other helpers' noise on a shared machine (thread CPU time, best of a few
 * passes).
 *
 * Data: NAME_base.fvecs and NAME_query.fvecs in DATA_DIR.  The set is what
 * bench_vsim builds over the wire: a cosine HNSW index (M 16, ef 200), one
 * element per row named by its row number, inserted in order, NOQUANT or
 * Q8, element i with the attribute {"bucket": i % 100}; the filter is
 * ".bucket < s" for a selectivity of s percent.  The accept callback is the
 * server's (src/server/vsearch.c): vfilter_match on vindex_attr.
 *
 * One JSON line per (quantisation, selectivity, FILTER-EF): ns per query,
 * recall@COUNT against vindex_search_exact with the same filter, filter
 * tests per query, and the unfiltered query at the same EF in the same
 * pass -- ratio = unfiltered ns / filtered ns (the figure issue 14 asks to
 * be >= 0.25 at 10%) -- and, for NOQUANT, float distances per query,
 * filtered and unfiltered: work a shared machine's other tenants do not
 * move.
 *
 * Usage: bench_fsearch DATA_DIR [--quant noquant,q8] [--sel 1,10,50]
 *        [--filter-ef 0,200] [--ef 40] [--count 10] [--passes 5]
 *        [--time-exact 1]   (0: no ns_exact, the exact scan's time per query)
 *
 * A benchmark, never a test: it prints and asserts nothing about speed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engram/dist.h"
#include "engram/vattr.h"
#include "engram/vfilter.h"
#include "engram/vindex.h"
#include "vecio.h"

#define LIST_MAX 16

typedef struct filt {
    const vindex *x;
    const vfilter *f;
    uint64_t tests;
} filt;

static int accept_counted(void *ud, uint32_t id)
{
    filt *u = ud;
    u->tests++;
    return vfilter_match(u->f, vindex_attr(u->x, id));
}

/* Float distances computed (NOQUANT: every one goes through the index's
 * kernels, which are these: the selected ones with a counter in front).
 * Work the other tenants of a shared machine do not move, where time is
 * moved through the caches and the SMT sibling (this VM has no hardware
 * counters).  Q8's int8 kernels are the process's and are not counted. */
static uint64_t g_dists;
static dist_kernels g_counting;

static float dot_counted(const void *a, const void *b, size_t n)
{
    g_dists++;
    return dist_active()->dot(a, b, n);
}

static double cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int parse_list(const char *s, long *out)
{
    int n = 0;
    while (*s && n < LIST_MAX) {
        char *end;
        out[n++] = strtol(s, &end, 10);
        s = *end == ',' ? end + 1 : end;
        if (end == s && *s) break;
    }
    return n;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_fsearch: %s\n", what);
    exit(2);
}

static vindex *build(const vecs *b, quant_type qt)
{
    vindex_params p;
    vindex_params_init(&p, VINDEX_HNSW, b->dim, DIST_COSINE);
    p.quant = qt;
    p.M = 16;
    p.ef_construction = 200;
    p.seed = 0x656e6772616dULL;
    g_counting = *dist_active();
    g_counting.dot = dot_counted;
    p.kernels = &g_counting;
    int err;
    vindex *x = vindex_new(&p, &err);
    if (!x) die("vindex_new failed");
    for (uint32_t i = 0; i < b->n; i++) {
        char key[16], attr[48];
        int kl = snprintf(key, sizeof key, "%u", i);
        int al = snprintf(attr, sizeof attr, "{\"bucket\": %u}", i % 100);
        vindex_add_args a;
        vindex_add_args_init(&a, key, (size_t)kl, (const float *)b->data + (size_t)i * b->dim,
                             b->dim);
        a.has_payload = 1;
        a.payload = attr;
        a.plen = (size_t)al;
        if (vindex_add_ex(x, &a, NULL) < 0) die("vindex_add_ex failed");
    }
    return x;
}

/* ns per query over all queries (best of passes), and recall against the
 * exact answers in truth (count ids per query; NULL: no recall). */
static double run(const vindex *x, vindex_search_ctx *c, const vecs *q, const vindex_query *base,
                  int passes, const uint32_t *truth, const uint32_t *ntruth, double *recall)
{
    vindex_hit hits[1024];
    double best = 1e300;
    uint64_t found = 0, want = 0;
    for (int p = 0; p < passes; p++) {
        double t0 = cpu_ns();
        for (uint32_t i = 0; i < q->n; i++) {
            vindex_query vq = *base;
            vq.vec = (const float *)q->data + (size_t)i * q->dim;
            uint32_t n;
            if (vindex_search(x, c, &vq, hits, &n)) die("vindex_search failed");
            if (p == 0 && truth) {
                const uint32_t *t = truth + (size_t)i * base->k;
                for (uint32_t j = 0; j < ntruth[i]; j++)
                    for (uint32_t h = 0; h < n; h++)
                        if (hits[h].id == t[j]) { found++; break; }
                want += ntruth[i];
            }
        }
        double dt = (cpu_ns() - t0) / q->n;
        if (dt < best) best = dt;
    }
    if (recall) *recall = want ? (double)found / (double)want : 1.0;
    return best;
}

static void exact(const vindex *x, vindex_search_ctx *c, const vecs *q, const vindex_query *base,
                  uint32_t *truth, uint32_t *ntruth)
{
    vindex_hit hits[1024];
    for (uint32_t i = 0; i < q->n; i++) {
        vindex_query vq = *base;
        vq.vec = (const float *)q->data + (size_t)i * q->dim;
        uint32_t n;
        if (vindex_search_exact(x, c, &vq, hits, &n)) die("vindex_search_exact failed");
        for (uint32_t h = 0; h < n; h++) truth[(size_t)i * base->k + h] = hits[h].id;
        ntruth[i] = n;
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) die("usage: bench_fsearch DATA_DIR [--quant noquant,q8] [--sel 1,10,50] "
                      "[--filter-ef 0,200] [--ef 40] [--count 10] [--passes 5]");
    if (dist_select("auto")) die("dist_select failed");
    const char *dir = argv[1], *quants = "noquant,q8";
    long sel[LIST_MAX] = { 1, 10, 50 }, fef[LIST_MAX] = { 0, 200 };
    int nsel = 3, nfef = 2;
    long ef = 40, count = 10, passes = 5, time_exact = 1;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--quant")) quants = argv[i + 1];
        else if (!strcmp(argv[i], "--sel")) nsel = parse_list(argv[i + 1], sel);
        else if (!strcmp(argv[i], "--filter-ef")) nfef = parse_list(argv[i + 1], fef);
        else if (!strcmp(argv[i], "--ef")) ef = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--count")) count = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--passes")) passes = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--time-exact")) time_exact = atol(argv[i + 1]);
        else die("unknown option");
    }
    if (count <= 0 || count > 1024 || ef <= 0 || passes <= 0) die("bad --count, --ef or --passes");
    char path[4096], name[256];
    const char *slash = strrchr(dir, '/');
    snprintf(name, sizeof name, "%s", slash && slash[1] ? slash + 1 : dir);
    snprintf(path, sizeof path, "%s/%s_base.fvecs", dir, name);
    vecs b = vecio_read("bench_fsearch", path);
    snprintf(path, sizeof path, "%s/%s_query.fvecs", dir, name);
    vecs q = vecio_read("bench_fsearch", path);
    if (q.dim != b.dim) die("query and base dimensions differ");

    vindex_search_ctx *c = vindex_search_ctx_new(NULL);
    uint32_t *truth = malloc((size_t)q.n * (size_t)count * sizeof *truth);
    uint32_t *ntruth = malloc((size_t)q.n * sizeof *ntruth);
    if (!c || !truth || !ntruth) die("out of memory");
    for (int qi = 0; qi < 2; qi++) {
        const char *qname = qi ? "q8" : "noquant";
        if (!strstr(quants, qname)) continue;
        vindex *x = build(&b, qi ? QUANT_Q8 : QUANT_NONE);
        vindex_query base;
        vindex_query_init(&base, NULL, b.dim, (uint32_t)count);
        base.ef = (uint32_t)ef;
        exact(x, c, &q, &base, truth, ntruth);
        double r0;
        run(x, c, &q, &base, 1, truth, ntruth, &r0);
        for (int si = 0; si < nsel; si++) {
            char expr[64];
            int el = snprintf(expr, sizeof expr, ".bucket < %ld", sel[si]);
            vfilter *f;
            vfilter_error fe;
            if (vfilter_compile(NULL, expr, (size_t)el, &f, &fe)) die("filter did not compile");
            filt u = { x, f, 0 };
            vindex_query fq = base;
            fq.accept = accept_counted;
            fq.accept_ud = &u;
            exact(x, c, &q, &fq, truth, ntruth);
            for (int fi = 0; fi < nfef; fi++) {
                fq.effort = (uint32_t)(fef[fi] ? fef[fi] : count * 100);
                u.tests = 0;
                double rec, ns_u = run(x, c, &q, &base, (int)passes, NULL, NULL, NULL);
                uint64_t d0 = g_dists;
                double ns_f = run(x, c, &q, &fq, (int)passes, truth, ntruth, &rec);
                double tests = (double)u.tests / ((double)passes * q.n);
                double dists = (double)(g_dists - d0) / ((double)passes * q.n);
                d0 = g_dists;
                (void)run(x, c, &q, &base, 1, NULL, NULL, NULL);
                double dists_u = (double)(g_dists - d0) / q.n;
                double ns_u2 = run(x, c, &q, &base, (int)passes, NULL, NULL, NULL);
                double ns_x = 0;
                for (int p = 0; p < (time_exact ? passes : 0); p++) {
                    double t0 = cpu_ns();
                    exact(x, c, &q, &fq, truth, ntruth);
                    double dt = (cpu_ns() - t0) / q.n;
                    if (p == 0 || dt < ns_x) ns_x = dt;
                }
                if (ns_u2 < ns_u) ns_u = ns_u2;
                printf("{\"bench\":\"fsearch\",\"data\":\"%s\",\"quant\":\"%s\",\"sel_pct\":%ld,"
                       "\"filter_ef\":%u,\"ef\":%ld,\"count\":%ld,\"ns_filtered\":%.0f,"
                       "\"ns_unfiltered\":%.0f,\"ratio\":%.3f,\"recall\":%.4f,"
                       "\"recall_unfiltered\":%.4f,\"tests_per_query\":%.0f,\"ns_exact\":%.0f,"
                       "\"dists_filtered\":%.0f,\"dists_unfiltered\":%.0f}\n",
                       name, qname, sel[si], fq.effort, ef, count, ns_f, ns_u, ns_u / ns_f, rec,
                       r0, tests, ns_x, dists, dists_u);
                fflush(stdout);
            }
            vfilter_free(f);
        }
        vindex_free(x);
    }
    vindex_search_ctx_free(c);
    free(truth);
    free(ntruth);
    free(b.data);
    free(q.data);
    return 0;
}
