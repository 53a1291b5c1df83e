/* bench_ann.c -- ANN build and search benchmark of engram's vindex on TEXMEX
 * fvecs/ivecs data; one JSON line per result.
 *
 *   bench_ann --base B.fvecs --query Q.fvecs --gt G.ivecs [--M 16] [--efc 200]
 *             [--ef 10,20,40,80,120,200,400] [--metric l2|cosine|ip] [--k 10]
 *             [--type hnsw|flat] [--kernel auto|scalar|avx2|avx512]
 *             [--min-queries 10000] [--seed N]
 *
 * Prints a "build" line (seconds, inserts/s, bytes per vector: whole index
 * and engine only), then per ef a "search" line: recall@k against the
 * ground truth, single-thread QPS, mean and p99 latency in microseconds.
 * The query set is repeated until --min-queries have run so that small sets
 * (siftsmall has 100 queries) still give a stable QPS; recall comes from the
 * first pass.  Rates come twice: by wall time and by this thread's CPU time
 * ("cpu_" fields, comparable on a busy machine).  bench/hnswlib_ann.cpp
 * prints the same lines for hnswlib. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vecio.h"

#include "engram/dist.h"
#include "engram/vindex.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* This thread's CPU time: unlike wall time, blind to being descheduled, so
 * figures from a shared machine stay comparable ("cpu_" fields). */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void die(const char *msg, const char *arg)
{
    fprintf(stderr, "bench_ann: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
    exit(2);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* "siftsmall" from ".../siftsmall_base.fvecs". */
static void dataset_name(const char *path, char *out, size_t n)
{
    const char *s = strrchr(path, '/');
    s = s ? s + 1 : path;
    snprintf(out, n, "%s", s);
    char *u = strstr(out, "_base");
    if (!u) u = strrchr(out, '.');
    if (u) *u = '\0';
}

typedef struct opts {
    const char *base, *query, *gt, *kernel;
    char ef_list[256];
    uint32_t M, efc, k, min_queries;
    uint64_t seed;
    dist_metric metric;
    vindex_type type;
} opts;

static void parse_args(int argc, char **argv, opts *o)
{
    *o = (opts){ .kernel = "auto", .M = 16, .efc = 200, .k = 10, .min_queries = 10000,
                 .seed = 42, .metric = DIST_L2, .type = VINDEX_HNSW };
    snprintf(o->ef_list, sizeof o->ef_list, "10,20,40,80,120,200,400");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) die("missing value for", a);
        i++;
        if (!strcmp(a, "--base")) o->base = v;
        else if (!strcmp(a, "--query")) o->query = v;
        else if (!strcmp(a, "--gt")) o->gt = v;
        else if (!strcmp(a, "--kernel")) o->kernel = v;
        else if (!strcmp(a, "--ef")) snprintf(o->ef_list, sizeof o->ef_list, "%s", v);
        else if (!strcmp(a, "--M")) o->M = (uint32_t)atoi(v);
        else if (!strcmp(a, "--efc")) o->efc = (uint32_t)atoi(v);
        else if (!strcmp(a, "--k")) o->k = (uint32_t)atoi(v);
        else if (!strcmp(a, "--min-queries")) o->min_queries = (uint32_t)atoi(v);
        else if (!strcmp(a, "--seed")) o->seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--type")) o->type = !strcmp(v, "flat") ? VINDEX_FLAT : VINDEX_HNSW;
        else if (!strcmp(a, "--metric")) {
            if (dist_metric_parse(v, strlen(v), &o->metric)) die("unknown metric", v);
        } else die("unknown option", a);
    }
    if (!o->base || !o->query || !o->gt) die("need --base, --query and --gt", NULL);
}

static vindex *build(const opts *o, const vecs *base, const char *ds)
{
    vindex_params p;
    vindex_params_init(&p, o->type, base->dim, o->metric);
    p.M = o->M;
    p.ef_construction = o->efc;
    p.seed = o->seed;
    p.initial_capacity = base->n;
    int err = 0;
    vindex *v = vindex_new(&p, &err);
    if (!v) die("vindex_new failed", vindex_strerror(err));
    double t0 = now_s(), c0 = cpu_s();
    for (uint32_t i = 0; i < base->n; i++) {
        int rc = vindex_add(v, &i, sizeof i, (const float *)base->data + (size_t)i * base->dim,
                            base->dim);
        if (rc != 1) die("vindex_add failed", vindex_strerror(rc));
    }
    double t = now_s() - t0, ct = cpu_s() - c0;
    vindex_stats st;
    vindex_stats_get(v, &st);
    printf("{\"bench\":\"ann\",\"engine\":\"engram\",\"phase\":\"build\",\"dataset\":\"%s\","
           "\"type\":\"%s\",\"n\":%u,\"dim\":%u,\"metric\":\"%s\",\"M\":%u,\"efc\":%u,"
           "\"kernel\":\"%s\",\"build_s\":%.3f,\"inserts_per_s\":%.1f,\"cpu_inserts_per_s\":%.1f,"
           "\"bytes_per_vector\":%.1f,\"engine_bytes_per_vector\":%.1f,\"max_level\":%d}\n",
           ds, o->type == VINDEX_FLAT ? "flat" : "hnsw", base->n, base->dim,
           dist_metric_name(o->metric), o->M, o->efc, st.kernel, t, base->n / t, base->n / ct,
           (double)st.memory / base->n, (double)st.engine_memory / base->n, st.max_level);
    fflush(stdout);
    return v;
}

static void search_at(const opts *o, const vindex *v, const vecs *q, const vecs *gt,
                      uint32_t ef, const char *ds)
{
    uint32_t passes = (o->min_queries + q->n - 1) / q->n, total = passes * q->n, hit = 0;
    vindex_search_ctx *c = vindex_search_ctx_new(NULL);
    vindex_hit *hits = malloc(o->k * sizeof *hits);
    double *lat = malloc(total * sizeof *lat);
    if (!c || !hits || !lat) die("out of memory", NULL);
    double t0 = now_s(), c0 = cpu_s();
    for (uint32_t r = 0; r < total; r++) {
        uint32_t qi = r % q->n, nh = 0;
        vindex_query qq;
        vindex_query_init(&qq, (const float *)q->data + (size_t)qi * q->dim, q->dim, o->k);
        qq.ef = ef;
        double t1 = now_s();
        if (vindex_search(v, c, &qq, hits, &nh)) die("search failed", NULL);
        lat[r] = now_s() - t1;
        if (r >= q->n) continue;
        const int32_t *g = (const int32_t *)gt->data + (size_t)qi * gt->dim;
        for (uint32_t a = 0; a < nh; a++) {
            uint32_t id;
            memcpy(&id, hits[a].key, sizeof id);
            for (uint32_t b = 0; b < o->k && b < gt->dim; b++)
                if ((uint32_t)g[b] == id) { hit++; break; }
        }
    }
    double t = now_s() - t0, ct = cpu_s() - c0, sum = 0;
    for (uint32_t r = 0; r < total; r++) sum += lat[r];
    qsort(lat, total, sizeof *lat, cmp_double);
    printf("{\"bench\":\"ann\",\"engine\":\"engram\",\"phase\":\"search\",\"dataset\":\"%s\","
           "\"M\":%u,\"efc\":%u,\"ef\":%u,\"k\":%u,\"recall\":%.4f,\"qps\":%.1f,"
           "\"cpu_qps\":%.1f,\"mean_us\":%.2f,\"p99_us\":%.2f,\"queries\":%u}\n",
           ds, o->M, o->efc, ef, o->k, (double)hit / ((double)q->n * o->k), total / t, total / ct,
           sum / total * 1e6, lat[(size_t)(total * 0.99)] * 1e6, total);
    fflush(stdout);
    free(lat);
    free(hits);
    vindex_search_ctx_free(c);
}

int main(int argc, char **argv)
{
    opts o;
    parse_args(argc, argv, &o);
    if (dist_select(o.kernel)) die("kernel not available", o.kernel);
    vecs base = vecio_read("bench_ann", o.base), q = vecio_read("bench_ann", o.query), gt = vecio_read("bench_ann", o.gt);
    if (q.dim != base.dim || gt.n < q.n) die("base, query and ground truth do not match", NULL);
    char ds[128];
    dataset_name(o.base, ds, sizeof ds);
    vindex *v = build(&o, &base, ds);
    char *list = o.ef_list;
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ","))
        search_at(&o, v, &q, &gt, (uint32_t)atoi(tok), ds);
    vindex_free(v);
    free(base.data);
    free(q.data);
    free(gt.data);
    return 0;
}
