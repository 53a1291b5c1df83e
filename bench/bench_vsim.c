/* bench_vsim.c -- Redis 8's vector-set commands over the wire: VSIM
 * throughput and recall for each quantisation (NOQUANT, Q8, BIN, and with
 * --rerank Q8 RERANK) against engram's own VSEARCH on a float32 cosine
 * index of the same data, filtered VSIM at several selectivities, and bytes
 * per vector; one JSON line per result.  Its client is bench/respc.h.
 *
 *   bench_vsim --host 127.0.0.1 --port P --base B.fvecs --query Q.fvecs
 *              [--gt G.ivecs] [--conns 4] [--pipeline 8] [--k 10] [--M 16]
 *              [--ef 10,20,40,80,160,320] [--rounds 3] [--secs 1]
 *              [--sel 1,10,50] [--filter-search-ef 40[,...]] [--filter-ef 0,500,200]
 *              [--rerank] [--withscores] [--server-pid PID]
 *
 * Ground truth.  The data sets are L2 sets with L2 ground truth; vector sets
 * are always cosine, so this program computes the cosine ground truth itself
 * by an exact scan in double precision (ties to the smaller row, as engram
 * breaks them), unfiltered and for each selectivity; --gt only adds how
 * much the L2 and cosine answers overlap ("truth" line).  The "truth_check"
 * lines compare it with VSIM ... TRUTH (engram's exact scan of the NOQUANT
 * set, with the same FILTER): the fraction of the top k they share.
 *
 * The sets.  Element i is row i of the base file, named by its decimal row
 * number.  Each variant is one key:
 *   noquant, q8, bin   VADD vsim:<v> FP32 blob i NOQUANT|Q8|BIN M m
 *   q8_rerank          VADD vsim:q8_rerank FP32 blob i Q8 RERANK M m, and
 *                      every VSIM on it adds RERANK (only with --rerank; if
 *                      the server answers an error, a "skip" line says so
 *                      and the variant is left out)
 *   noquant_ws         (only with --withscores) VSIM ... WITHSCORES on the
 *                      NOQUANT set: a reply as big as VSEARCH's
 *   vsearch            SELECT 1, then VNEW vsim:noquant dim METRIC cosine
 *                      M m EF_CONSTRUCTION 200 and engram's VADD
 *                      vsim:noquant i blob: the reference, queried with
 *                      VSEARCH vsim:noquant blob k EF ef (in database 1)
 * Every set is built with ef_construction 200 (VADD's default) by
 * pipelined VADD over one connection, rows in order.  A graph depends only
 * on the key's name (its seed) and the order of the inserts, so the NOQUANT
 * set and the VSEARCH index -- same name, other database -- are the same
 * graph: whatever differs between them is the command, not the index.  A "memory" line per set gives
 * MEMORY USAGE / VCARD, VINFO FULL's memory and bytes_per_vector, and
 * INFO's used_memory and vector_memory growth over the load / VCARD
 * (engram's used_memory leaves the vector sets out), first without
 * attributes, then again after VSETATTR gave every element of the VSIM sets
 * {"bucket": i % 100} (the filters below read it).
 *
 * Searches.  Each run sends one query stream for 1 to --secs seconds over
 * --conns connections, each keeping two batches of --pipeline commands in
 * flight (so conns x 2 x pipeline queries in flight; the defaults give 4
 * x 16), cycling through the query set; recall@k is over the first answer
 * to each query.  Per round (--rounds), for each ef of --ef, every variant
 * runs once, the order of the variants rotated by one each round (phase
 * "search"); then, for each selectivity s of --sel (in percent: FILTER
 * ".bucket < s"), each EF of --filter-search-ef, each FILTER-EF of
 * --filter-ef (0: not sent, the server's default COUNT x 100) and each VSIM
 * variant (phase "filtered"; recall against the exact filtered answer;
 * noquant, q8 and bin only).  Every line carries the server's CPU time
 * over the run when --server-pid is given.
 * Medians and ratios are the driver's job (bench/vsim.sh).
 *
 * VSIM replies are element names (WITHSCORES: name, score pairs); VSEARCH
 * replies are key, distance pairs, so it formats and sends more. */
#define _GNU_SOURCE        /* memmem */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "respc.h"
#include "vecio.h"

#define MAX_VARIANTS 5
#define MAX_LIST 16

/* ---- options ---------------------------------------------------------------- */

typedef struct opts {
    const char *base, *query, *gt;
    uint32_t conns, pipeline, k, M, rounds;
    double secs;
    uint32_t ef[MAX_LIST], nef;
    uint32_t sel[MAX_LIST], nsel;
    uint32_t fef[MAX_LIST], nfef;
    uint32_t fse[MAX_LIST], nfse;       /* the filtered runs' EFs */
    int rerank, withscores;
} opts;

static opts O;

static uint32_t parse_list(const char *s, uint32_t *out)
{
    uint32_t n = 0;
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s", s);
    for (char *tok = strtok(tmp, ","); tok && n < MAX_LIST; tok = strtok(NULL, ","))
        out[n++] = (uint32_t)strtoul(tok, NULL, 10);
    return n;
}

static void parse_args(int argc, char **argv)
{
    O = (opts){ .conns = 4, .pipeline = 8, .k = 10, .M = 16, .rounds = 3,
                .secs = 1.0 };
    O.nef = parse_list("10,20,40,80,160,320", O.ef);
    O.nsel = parse_list("1,10,50", O.sel);
    O.nfef = parse_list("0,500,200", O.fef);
    O.nfse = parse_list("40", O.fse);
    g_host = "127.0.0.1";
    g_port = 6380;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--rerank")) {
            O.rerank = 1;
            continue;
        }
        if (!strcmp(a, "--withscores")) {
            O.withscores = 1;
            continue;
        }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) die("missing value for", a);
        i++;
        if (!strcmp(a, "--host")) g_host = v;
        else if (!strcmp(a, "--port")) g_port = atoi(v);
        else if (!strcmp(a, "--base")) O.base = v;
        else if (!strcmp(a, "--query")) O.query = v;
        else if (!strcmp(a, "--gt")) O.gt = v;
        else if (!strcmp(a, "--conns")) O.conns = (uint32_t)atoi(v);
        else if (!strcmp(a, "--pipeline")) O.pipeline = (uint32_t)atoi(v);
        else if (!strcmp(a, "--k")) O.k = (uint32_t)atoi(v);
        else if (!strcmp(a, "--M")) O.M = (uint32_t)atoi(v);
        else if (!strcmp(a, "--rounds")) O.rounds = (uint32_t)atoi(v);
        else if (!strcmp(a, "--secs")) O.secs = atof(v);
        else if (!strcmp(a, "--ef")) O.nef = parse_list(v, O.ef);
        else if (!strcmp(a, "--sel")) O.nsel = parse_list(v, O.sel);
        else if (!strcmp(a, "--filter-ef")) O.nfef = parse_list(v, O.fef);
        else if (!strcmp(a, "--filter-search-ef")) O.nfse = parse_list(v, O.fse);
        else if (!strcmp(a, "--server-pid")) g_server_pid = atoi(v);
        else die("unknown option", a);
    }
    if (!O.base || !O.query) die("need --base and --query", NULL);
    if (!O.conns || !O.pipeline || !O.k || O.secs <= 0 || !O.rounds)
        die("bad --conns/--pipeline/--k/--secs/--rounds", NULL);
    for (uint32_t i = 0; i < O.nsel; i++)
        if (O.sel[i] < 1 || O.sel[i] > 100) die("--sel takes percentages 1..100", NULL);
}

/* ---- variants --------------------------------------------------------------- */

typedef struct variant {
    const char *name;       /* as printed */
    const char *key;
    const char *quant;      /* VADD's option; NULL: engram's dialect (vsearch) */
    int rerank;             /* VADD ... RERANK and VSIM ... RERANK */
    int ws;                 /* VSIM ... WITHSCORES on another variant's set */
    int db;                 /* the database its key is in */
    int skipped;
} variant;

static variant V[MAX_VARIANTS];
static uint32_t NV;

static int is_vsim(const variant *v) { return v->quant != NULL; }

/* The variants the filtered runs cover: one per VSIM set. */
static int filters(const variant *v) { return is_vsim(v) && !v->ws && !v->rerank; }

/* ---- cosine ground truth ------------------------------------------------------- */

static vecs B, Q;

/* Rows of base and query scaled to unit length (double precision). */
static double *unit_rows(const vecs *v)
{
    double *u = xmalloc((size_t)v->n * v->dim * sizeof *u);
    const float *f = v->data;
    for (uint32_t i = 0; i < v->n; i++) {
        double s = 0;
        for (uint32_t j = 0; j < v->dim; j++) s += (double)f[(size_t)i * v->dim + j] * f[(size_t)i * v->dim + j];
        s = s > 0 ? 1 / sqrt(s) : 0;
        for (uint32_t j = 0; j < v->dim; j++) u[(size_t)i * v->dim + j] = f[(size_t)i * v->dim + j] * s;
    }
    return u;
}

/* Keep the k smallest (dist, row) in best[0..*n), sorted; ties to the smaller
 * row (rows arrive in increasing order, so a tie never displaces). */
static void topk_push(double *bd, int32_t *bi, uint32_t *n, uint32_t k, double d, int32_t row)
{
    if (*n == k && !(d < bd[k - 1])) return;
    uint32_t i = *n < k ? (*n)++ : k - 1;
    while (i > 0 && bd[i - 1] > d) {
        bd[i] = bd[i - 1];
        bi[i] = bi[i - 1];
        i--;
    }
    bd[i] = d;
    bi[i] = row;
}

/* truth[f][q * k + j]: f = 0 unfiltered, f = 1 + s for selectivity O.sel[s]. */
static int32_t *truth[1 + MAX_LIST];

static void truth_compute(void)
{
    double t0 = now_s();
    double *ub = unit_rows(&B), *uq = unit_rows(&Q);
    uint32_t k = O.k, nf = 1 + O.nsel, dim = B.dim;
    double *bd = xmalloc((size_t)nf * k * sizeof *bd);
    uint32_t *bn = xmalloc(nf * sizeof *bn);
    for (uint32_t f = 0; f < nf; f++) truth[f] = xmalloc((size_t)Q.n * k * sizeof(int32_t));
    for (uint32_t q = 0; q < Q.n; q++) {
        memset(bn, 0, nf * sizeof *bn);
        const double *qv = uq + (size_t)q * dim;
        for (uint32_t i = 0; i < B.n; i++) {
            const double *bv = ub + (size_t)i * dim;
            /* four partial sums: the scan is not one long dependency chain */
            double s4[4] = { 0, 0, 0, 0 };
            uint32_t j = 0;
            for (; j + 4 <= dim; j += 4)
                for (int l = 0; l < 4; l++) s4[l] += qv[j + l] * bv[j + l];
            for (; j < dim; j++) s4[0] += qv[j] * bv[j];
            double d = 1 - ((s4[0] + s4[1]) + (s4[2] + s4[3]));
            topk_push(bd, truth[0] + (size_t)q * k, &bn[0], k, d, (int32_t)i);
            for (uint32_t s = 0; s < O.nsel; s++)
                if (i % 100 < O.sel[s])
                    topk_push(bd + (size_t)(1 + s) * k, truth[1 + s] + (size_t)q * k, &bn[1 + s], k,
                              d, (int32_t)i);
        }
        for (uint32_t f = 0; f < nf; f++)
            for (uint32_t j = bn[f]; j < k; j++) truth[f][(size_t)q * k + j] = -1;
    }
    printf("{\"bench\":\"vsim\",\"phase\":\"truth\",\"metric\":\"cosine\",\"method\":\"exact scan in "
           "the client, double precision\",\"queries\":%u,\"k\":%u,\"seconds\":%.2f",
           Q.n, k, now_s() - t0);
    if (O.gt) {
        /* How far the data set's own L2 answers are from the cosine ones. */
        vecs G = vecio_read(g_prog, O.gt);
        uint64_t same = 0;
        uint32_t gk = k < G.dim ? k : G.dim;
        for (uint32_t q = 0; q < Q.n && q < G.n; q++)
            for (uint32_t a = 0; a < gk; a++)
                for (uint32_t b = 0; b < k; b++)
                    if (((int32_t *)G.data)[(size_t)q * G.dim + a] == truth[0][(size_t)q * k + b]) {
                        same++;
                        break;
                    }
        printf(",\"l2_truth_overlap\":%.4f", (double)same / ((double)Q.n * gk));
        free(G.data);
    }
    printf("}\n");
    fflush(stdout);
    free(ub);
    free(uq);
    free(bd);
    free(bn);
}

/* ---- pipelined command streams over several connections ------------------------ */

/* One command per item i into b. */
typedef void encode_fn(buf *b, uint32_t i, const void *ud);

typedef struct streamer {
    conn *c;
    pthread_t th;
    uint32_t first, step, n;
    encode_fn *enc;
    const void *ud;
    const char *what;
} streamer;

static void *stream_main(void *arg)
{
    streamer *S = arg;
    buf b[2] = { { 0 }, { 0 } };
    uint32_t inflight[2] = { 0, 0 }, i = S->first;
    int cur = 0;
    for (;;) {
        b[cur].len = 0;
        inflight[cur] = 0;
        for (; i < S->n && inflight[cur] < O.pipeline; i += S->step, inflight[cur]++)
            S->enc(&b[cur], i, S->ud);
        if (inflight[cur]) conn_write(S->c, b[cur].p, b[cur].len);
        int prev = cur ^ 1;
        for (uint32_t j = 0; j < inflight[prev]; j++) {
            rval v;
            conn_head(S->c, &v);
            if (v.type == '-') die_reply(S->what, &v);
            conn_skip(S->c, &v);
        }
        inflight[prev] = 0;
        if (!inflight[cur]) break;
        cur = prev;
    }
    free(b[0].p);
    free(b[1].p);
    return NULL;
}

/* Items [from, n) of enc over the first nconns connections, pipelined; any
 * error reply ends the program. */
static void stream_all(conn **cs, uint32_t nconns, uint32_t from, uint32_t n, encode_fn *enc,
                       const void *ud, const char *what)
{
    streamer *S = xmalloc(nconns * sizeof *S);
    for (uint32_t i = 0; i < nconns; i++) {
        S[i] = (streamer){ .c = cs[i], .first = from + i, .step = nconns, .n = n, .enc = enc,
                           .ud = ud, .what = what };
        if (pthread_create(&S[i].th, NULL, stream_main, &S[i])) die("pthread_create", NULL);
    }
    for (uint32_t i = 0; i < nconns; i++) pthread_join(S[i].th, NULL);
    free(S);
}

/* ---- databases ------------------------------------------------------------------ */

static int cur_db;

/* Every connection to database db (they all follow the variant at hand). */
static void select_db(conn **cs, int db)
{
    if (db == cur_db) return;
    char d[8];
    snprintf(d, sizeof d, "%d", db);
    for (uint32_t i = 0; i < O.conns; i++) {
        rval v;
        conn_cmdv(cs[i], &v, 2, (const char *const[]){ "SELECT", d });
        if (v.type != '+') die_reply("SELECT", &v);
    }
    cur_db = db;
}

/* ---- loading -------------------------------------------------------------------- */

static void enc_vadd(buf *b, uint32_t row, const void *ud)
{
    const variant *v = ud;
    const float *x = (const float *)B.data + (size_t)row * B.dim;
    if (!is_vsim(v)) {
        cmd_begin(b, 4);
        cmd_str(b, "VADD");
        cmd_str(b, v->key);
        cmd_u(b, row);
        cmd_vec(b, x, B.dim);
        return;
    }
    cmd_begin(b, 8 + v->rerank);
    cmd_str(b, "VADD");
    cmd_str(b, v->key);
    cmd_str(b, "FP32");
    cmd_vec(b, x, B.dim);
    cmd_u(b, row);
    cmd_str(b, v->quant);
    if (v->rerank) cmd_str(b, "RERANK");
    cmd_str(b, "M");
    cmd_u(b, O.M);
}

static void enc_setattr(buf *b, uint32_t row, const void *ud)
{
    const variant *v = ud;
    char js[64];
    snprintf(js, sizeof js, "{\"bucket\": %u}", row % 100);
    cmd_begin(b, 4);
    cmd_str(b, "VSETATTR");
    cmd_str(b, v->key);
    cmd_u(b, row);
    cmd_str(b, js);
}

/* The integer reply of a one-line command, or -1 (error, nil). */
static long long call_int(conn *c, int argc, const char *const *argv)
{
    rval v;
    conn_cmdv(c, &v, argc, argv);
    conn_skip(c, &v);
    return v.type == ':' ? v.n : -1;
}

/* INFO's used_memory and vector_memory.  engram's used_memory counts only
 * the server's own allocations (mem.h), not the vector sets' (their
 * allocator is the index's); vector_memory ("# Vectors") counts the sets.
 * The "memory" lines print both growths, so the gap shows. */
typedef struct info_mem {
    long long used, vectors;
} info_mem;

static long long info_num(const rval *v, const char *name)
{
    size_t n = strlen(name);
    const char *p = memmem(v->s, v->slen, name, n);
    return p && p + n < v->s + v->slen && p[n] == ':' ? atoll(p + n + 1) : -1;
}

static info_mem info_memory(conn *c)
{
    rval v;
    conn_cmdv(c, &v, 1, (const char *const[]){ "INFO" });
    if (v.type != '$' || v.n < 0) die_reply("INFO", &v);
    return (info_mem){ info_num(&v, "used_memory"), info_num(&v, "vector_memory") };
}

/* VINFO key FULL's integer field name (a flat array of name, value). */
static long long vinfo_field(conn *c, const char *key, const char *name)
{
    const char *argv[] = { "VINFO", key, "FULL" };
    rval v;
    conn_cmdv(c, &v, 3, argv);
    if (v.type != '*') {
        conn_skip(c, &v);
        return -1;
    }
    long long out = -1;
    int want = 0;
    for (long long i = 0; i < v.n; i++) {
        rval e;
        conn_head(c, &e);
        if (i % 2 == 0) {
            want = e.type == '$' && e.slen == strlen(name) && !memcmp(e.s, name, e.slen);
        } else if (want) {
            if (e.type == ':') out = e.n;
            else if (e.type == '$') out = strtoll(e.s, NULL, 10);
        }
        conn_skip(c, &e);
    }
    return out;
}

static void print_memory(conn *c, const variant *v, const char *stage, info_mem m0)
{
    long long card = call_int(c, 2, (const char *const[]){ "VCARD", v->key });
    long long mu = call_int(c, 3, (const char *const[]){ "MEMORY", "USAGE", v->key });
    long long vm = vinfo_field(c, v->key, "memory"), vb = vinfo_field(c, v->key, "bytes_per_vector");
    printf("{\"bench\":\"vsim\",\"phase\":\"memory\",\"variant\":\"%s\",\"stage\":\"%s\","
           "\"count\":%lld,\"dim\":%u,\"M\":%u,\"memory_usage\":%lld,\"bytes_per_vector\":%.1f,"
           "\"vinfo_memory\":%lld,\"vinfo_bytes_per_vector\":%lld",
           v->name, stage, card, B.dim, O.M, mu, card > 0 ? (double)mu / card : 0.0, vm, vb);
    info_mem m1 = info_memory(c);
    if (card > 0 && m0.used >= 0 && m1.used >= 0)
        printf(",\"info_used_memory_growth_per_vector\":%.1f", (double)(m1.used - m0.used) / card);
    if (card > 0 && m0.vectors >= 0 && m1.vectors >= 0)
        printf(",\"info_vector_memory_growth_per_vector\":%.1f", (double)(m1.vectors - m0.vectors) / card);
    if (is_vsim(v) && !strcmp(v->quant, "NOQUANT")) printf(",\"target\":%u", 4 * B.dim + 250);
    if (is_vsim(v) && !strcmp(v->quant, "Q8") && !v->rerank) printf(",\"target\":%u", B.dim + 250);
    printf("}\n");
    fflush(stdout);
}

static void load_variant(conn **cs, variant *v)
{
    rval r;
    select_db(cs, v->db);
    conn_cmdv(cs[0], &r, 2, (const char *const[]){ "DEL", v->key });
    conn_skip(cs[0], &r);
    if (!is_vsim(v)) {
        char dim[16], m[16];
        snprintf(dim, sizeof dim, "%u", B.dim);
        snprintf(m, sizeof m, "%u", O.M);
        const char *argv[] = { "VNEW", v->key, dim, "METRIC", "cosine", "M", m, "EF_CONSTRUCTION", "200" };
        conn_cmdv(cs[0], &r, 9, argv);
        if (r.type != '+') die_reply("VNEW", &r);
    }
    info_mem m0 = info_memory(cs[0]);
    /* Row 0 alone first: a variant the server refuses is skipped, not fatal. */
    buf b = { 0 };
    enc_vadd(&b, 0, v);
    conn_call(cs[0], &b, &r);
    free(b.p);
    if (r.type == '-') {
        printf("{\"bench\":\"vsim\",\"phase\":\"skip\",\"variant\":\"%s\",\"at\":\"VADD\","
               "\"error\":\"%.*s\"}\n", v->name, (int)(r.slen < 200 ? r.slen : 200), r.s);
        fflush(stdout);
        v->skipped = 1;
        return;
    }
    srv_cpu c0 = server_cpu();
    double cl0 = client_cpu_s(), t0 = now_s();
    stream_all(cs, 1, 1, B.n, enc_vadd, v, "VADD");      /* in order: see the top */
    double t = now_s() - t0;
    srv_cpu c1 = server_cpu();
    double cl1 = client_cpu_s();
    printf("{\"bench\":\"vsim\",\"phase\":\"load\",\"variant\":\"%s\",\"n\":%u,\"dim\":%u,\"M\":%u,"
           "\"conns\":1,\"pipeline\":%u,\"seconds\":%.3f,\"vadd_per_s\":%.1f",
           v->name, B.n, B.dim, O.M, O.pipeline, t, B.n / t);
    print_cpu(c0, c1, cl0, cl1, t);
    printf("}\n");
    fflush(stdout);
    print_memory(cs[0], v, "vectors", m0);
    if (is_vsim(v)) {
        stream_all(cs, O.conns, 0, B.n, enc_setattr, v, "VSETATTR");
        print_memory(cs[0], v, "with_attributes", m0);
    }
}

/* ---- searching -------------------------------------------------------------------- */

typedef struct qset {
    buf cmds;               /* every query's command, back to back */
    size_t *off;            /* Q.n + 1 offsets into cmds */
    uint32_t stride;        /* reply items per hit: 1 name, 2 name + score */
    const int32_t *truth;   /* Q.n x k */
} qset;

/* filter: NULL or a FILTER expression; fef 0: no FILTER-EF. */
static void qset_build(qset *s, const variant *v, uint32_t ef, const char *filter, uint32_t fef)
{
    s->cmds.len = 0;
    s->stride = is_vsim(v) && !v->ws ? 1 : 2;
    for (uint32_t i = 0; i < Q.n; i++) {
        const float *x = (const float *)Q.data + (size_t)i * Q.dim;
        s->off[i] = s->cmds.len;
        if (!is_vsim(v)) {
            cmd_begin(&s->cmds, 6);
            cmd_str(&s->cmds, "VSEARCH");
            cmd_str(&s->cmds, v->key);
            cmd_vec(&s->cmds, x, Q.dim);
            cmd_u(&s->cmds, O.k);
            cmd_str(&s->cmds, "EF");
            cmd_u(&s->cmds, ef);
            continue;
        }
        int argc = 8 + (filter ? 2 : 0) + (fef ? 2 : 0) + v->rerank + v->ws;
        cmd_begin(&s->cmds, argc);
        cmd_str(&s->cmds, "VSIM");
        cmd_str(&s->cmds, v->key);
        cmd_str(&s->cmds, "FP32");
        cmd_vec(&s->cmds, x, Q.dim);
        cmd_str(&s->cmds, "COUNT");
        cmd_u(&s->cmds, O.k);
        cmd_str(&s->cmds, "EF");
        cmd_u(&s->cmds, ef);
        if (filter) {
            cmd_str(&s->cmds, "FILTER");
            cmd_str(&s->cmds, filter);
        }
        if (fef) {
            cmd_str(&s->cmds, "FILTER-EF");
            cmd_u(&s->cmds, fef);
        }
        if (v->rerank) cmd_str(&s->cmds, "RERANK");
        if (v->ws) cmd_str(&s->cmds, "WITHSCORES");
    }
    s->off[Q.n] = s->cmds.len;
}

typedef struct searcher {
    conn *c;
    pthread_t th;
    const qset *qs;
    uint32_t first, step;
    double deadline, t_end;
    uint64_t done;
    int32_t *hits;          /* per query: hits in its first answer, -1 if none */
    uint64_t returned;      /* names received (a filter may leave fewer than k) */
} searcher;

static int read_reply(searcher *S, uint32_t qi)
{
    rval v;
    conn_head(S->c, &v);
    if (v.type == '-') return -1;
    if (v.type != '*') die("search: an array was expected", NULL);
    const int32_t *g = S->qs->truth + (size_t)qi * O.k;
    int32_t hit = 0;
    for (long long i = 0; i < v.n; i++) {
        rval e;
        conn_head(S->c, &e);
        if (i % S->qs->stride) continue;
        if (e.type != '$') die("search: a name is not a bulk string", NULL);
        char key[32];
        size_t kl = e.slen < sizeof key - 1 ? e.slen : sizeof key - 1;
        memcpy(key, e.s, kl);
        key[kl] = '\0';
        int32_t id = (int32_t)strtol(key, NULL, 10);
        S->returned++;
        for (uint32_t b = 0; b < O.k; b++)
            if (g[b] == id) {
                hit++;
                break;
            }
    }
    if (S->hits[qi] < 0) S->hits[qi] = hit;
    return 0;
}

static void *search_main(void *arg)
{
    searcher *S = arg;
    const qset *qs = S->qs;
    buf b[2] = { { 0 }, { 0 } };
    uint32_t *ids[2] = { xmalloc(O.pipeline * sizeof(uint32_t)), xmalloc(O.pipeline * sizeof(uint32_t)) };
    uint32_t inflight[2] = { 0, 0 };
    uint64_t pos = S->first;
    int cur = 0;
    for (;;) {
        b[cur].len = 0;
        inflight[cur] = 0;
        if (now_s() < S->deadline) {
            for (; inflight[cur] < O.pipeline; pos += S->step) {
                uint32_t qi = (uint32_t)(pos % Q.n);
                buf_put(&b[cur], qs->cmds.p + qs->off[qi], qs->off[qi + 1] - qs->off[qi]);
                ids[cur][inflight[cur]++] = qi;
            }
            conn_write(S->c, b[cur].p, b[cur].len);
        }
        int prev = cur ^ 1;
        for (uint32_t i = 0; i < inflight[prev]; i++)
            if (read_reply(S, ids[prev][i]) < 0) die("search: the server answered an error", NULL);
        S->done += inflight[prev];
        inflight[prev] = 0;
        if (!inflight[cur]) break;
        cur = prev;
    }
    S->t_end = now_s();
    free(ids[0]);
    free(ids[1]);
    free(b[0].p);
    free(b[1].p);
    return NULL;
}

/* One time-bounded run; prints its line (the caller's fields first). */
static void search_run(conn **cs, const qset *qs, const char *phase, const variant *v, uint32_t round,
                       uint32_t ef, uint32_t sel, uint32_t fef)
{
    uint32_t nq = Q.n;
    searcher *S = xmalloc(O.conns * sizeof *S);
    int32_t *hits = xmalloc((size_t)O.conns * nq * sizeof *hits);
    for (size_t i = 0; i < (size_t)O.conns * nq; i++) hits[i] = -1;
    srv_cpu c0 = server_cpu();
    double cl0 = client_cpu_s(), t0 = now_s();
    for (uint32_t i = 0; i < O.conns; i++) {
        S[i] = (searcher){ .c = cs[i], .qs = qs, .first = i, .step = O.conns,
                           .deadline = t0 + O.secs, .hits = hits + (size_t)i * nq };
        if (pthread_create(&S[i].th, NULL, search_main, &S[i])) die("pthread_create", NULL);
    }
    uint64_t done = 0, returned = 0;
    double t_end = t0;
    for (uint32_t i = 0; i < O.conns; i++) {
        pthread_join(S[i].th, NULL);
        done += S[i].done;
        returned += S[i].returned;
        if (S[i].t_end > t_end) t_end = S[i].t_end;
    }
    double t = t_end - t0;
    srv_cpu c1 = server_cpu();
    double cl1 = client_cpu_s();
    uint64_t hit = 0;
    uint32_t answered = 0;
    for (uint32_t qi = 0; qi < nq; qi++)
        for (uint32_t i = 0; i < O.conns; i++) {
            int32_t h = hits[(size_t)i * nq + qi];
            if (h >= 0) {
                hit += (uint64_t)h;
                answered++;
                break;
            }
        }
    printf("{\"bench\":\"vsim\",\"phase\":\"%s\",\"variant\":\"%s\",\"round\":%u,\"ef\":%u", phase,
           v->name, round, ef);
    if (sel) printf(",\"selectivity_pct\":%u,\"filter_ef\":%u", sel, fef ? fef : O.k * 100);
    printf(",\"k\":%u,\"conns\":%u,\"inflight_per_conn\":%u,\"queries\":%llu,\"seconds\":%.3f,\"qps\":%.1f,"
           "\"recall_at_k\":%.4f,\"returned_per_query\":%.2f",
           O.k, O.conns, 2 * O.pipeline, (unsigned long long)done, t, done / t,
           answered ? (double)hit / ((double)answered * O.k) : 0.0, done ? (double)returned / done : 0.0);
    if (answered != nq) printf(",\"recall_queries\":%u", answered);
    print_cpu(c0, c1, cl0, cl1, t);
    if (c0.ok && c1.ok && done)
        printf(",\"server_us_per_query\":%.2f",
               (c1.loop_s - c0.loop_s + c1.workers_s - c0.workers_s) / done * 1e6);
    printf("}\n");
    fflush(stdout);
    free(hits);
    free(S);
}

/* VSIM ... TRUTH on the NOQUANT set against the client's ground truth. */
static void truth_check(conn *c, const variant *v, uint32_t f, const char *filter)
{
    qset qs = { .stride = 1, .truth = truth[f] };
    qs.off = xmalloc(((size_t)Q.n + 1) * sizeof *qs.off);
    qset_build(&qs, v, 10, filter, 0);
    searcher S = { .c = c, .qs = &qs };
    S.hits = xmalloc(Q.n * sizeof *S.hits);
    uint64_t hit = 0;
    for (uint32_t q = 0; q < Q.n; q++) {
        /* the query's command with TRUTH spliced in before the end */
        buf b = { 0 };
        size_t len = qs.off[q + 1] - qs.off[q];
        const char *p = qs.cmds.p + qs.off[q];
        const char *nl = memchr(p, '\n', len);
        int argc = atoi(p + 1) + 1;
        cmd_begin(&b, argc);
        buf_put(&b, nl + 1, len - (size_t)(nl + 1 - p));
        cmd_str(&b, "TRUTH");
        conn_write(c, b.p, b.len);
        free(b.p);
        S.hits[q] = -1;
        if (read_reply(&S, q) < 0) die("VSIM TRUTH: the server answered an error", NULL);
        hit += (uint64_t)S.hits[q];
    }
    printf("{\"bench\":\"vsim\",\"phase\":\"truth_check\",\"variant\":\"%s\",\"selectivity_pct\":%u,"
           "\"queries\":%u,\"agreement\":%.4f}\n",
           v->name, f ? O.sel[f - 1] : 100, Q.n, (double)hit / ((double)Q.n * O.k));
    fflush(stdout);
    free(S.hits);
    free(qs.off);
    free(qs.cmds.p);
}

/* A variant the server cannot query (VSIM ... RERANK refused) is skipped. */
static void probe_query(conn *c, variant *v)
{
    qset qs = { 0 };
    qs.off = xmalloc(((size_t)Q.n + 1) * sizeof *qs.off);
    qset_build(&qs, v, 10, NULL, 0);
    rval r;
    conn_write(c, qs.cmds.p, qs.off[1]);
    conn_head(c, &r);
    if (r.type == '-') {
        printf("{\"bench\":\"vsim\",\"phase\":\"skip\",\"variant\":\"%s\",\"at\":\"search\","
               "\"error\":\"%.*s\"}\n", v->name, (int)(r.slen < 200 ? r.slen : 200), r.s);
        fflush(stdout);
        v->skipped = 1;
    }
    conn_skip(c, &r);
    free(qs.off);
    free(qs.cmds.p);
}

/* ---- main ---------------------------------------------------------------------------- */

static int server_search_threads(conn *c)
{
    rval v;
    conn_cmdv(c, &v, 1, (const char *const[]){ "INFO" });
    if (v.type != '$' || v.n < 0) return -1;
    const char *p = memmem(v.s, v.slen, "search_threads:", 15);
    return p ? atoi(p + 15) : -1;
}

int main(int argc, char **argv)
{
    g_prog = "bench_vsim";
    parse_args(argc, argv);
    B = vecio_read(g_prog, O.base);
    Q = vecio_read(g_prog, O.query);
    if (Q.dim != B.dim) die("base and query dimensions differ", NULL);

    V[NV++] = (variant){ .name = "noquant", .key = "vsim:noquant", .quant = "NOQUANT" };
    V[NV++] = (variant){ .name = "q8", .key = "vsim:q8", .quant = "Q8" };
    V[NV++] = (variant){ .name = "bin", .key = "vsim:bin", .quant = "BIN" };
    if (O.rerank) V[NV++] = (variant){ .name = "q8_rerank", .key = "vsim:q8_rerank", .quant = "Q8", .rerank = 1 };
    if (O.withscores)
        V[NV++] = (variant){ .name = "noquant_ws", .key = "vsim:noquant", .quant = "NOQUANT", .ws = 1 };
    V[NV++] = (variant){ .name = "vsearch", .key = "vsim:noquant", .db = 1 };

    conn **cs = xmalloc(O.conns * sizeof *cs);
    for (uint32_t i = 0; i < O.conns; i++) cs[i] = conn_open();
    double load1 = -1;
    FILE *lf = fopen("/proc/loadavg", "r");
    if (lf) {
        if (fscanf(lf, "%lf", &load1) != 1) load1 = -1;
        fclose(lf);
    }
    printf("{\"bench\":\"vsim\",\"phase\":\"setup\",\"n\":%u,\"queries\":%u,\"dim\":%u,\"k\":%u,"
           "\"M\":%u,\"conns\":%u,\"inflight_per_conn\":%u,\"secs\":%.2f,\"rounds\":%u,"
           "\"search_threads\":%d,\"cores\":%ld,\"loadavg_1m\":%.2f}\n",
           B.n, Q.n, B.dim, O.k, O.M, O.conns, 2 * O.pipeline, O.secs, O.rounds,
           server_search_threads(cs[0]), sysconf(_SC_NPROCESSORS_ONLN), load1);
    fflush(stdout);

    truth_compute();
    for (uint32_t i = 0; i < NV; i++)
        if (!V[i].ws) load_variant(cs, &V[i]);
    for (uint32_t i = 0; i < NV; i++)
        if (!V[i].skipped) {
            select_db(cs, V[i].db);
            probe_query(cs[0], &V[i]);
        }
    select_db(cs, V[0].db);
    truth_check(cs[0], &V[0], 0, NULL);
    char filt[MAX_LIST][32];
    for (uint32_t s = 0; s < O.nsel; s++) {
        snprintf(filt[s], sizeof filt[s], ".bucket < %u", O.sel[s]);
        truth_check(cs[0], &V[0], 1 + s, filt[s]);
    }

    qset qs = { 0 };
    qs.off = xmalloc(((size_t)Q.n + 1) * sizeof *qs.off);
    for (uint32_t r = 0; r < O.rounds; r++) {
        for (uint32_t e = 0; e < O.nef; e++)
            for (uint32_t i = 0; i < NV; i++) {
                variant *v = &V[(i + r) % NV];
                if (v->skipped) continue;
                select_db(cs, v->db);
                qset_build(&qs, v, O.ef[e], NULL, 0);
                qs.truth = truth[0];
                search_run(cs, &qs, "search", v, r, O.ef[e], 0, 0);
            }
        for (uint32_t s = 0; s < O.nsel; s++)
            for (uint32_t x = 0; x < O.nfse; x++)
                for (uint32_t f = 0; f < O.nfef; f++)
                    for (uint32_t i = 0; i < NV; i++) {
                        variant *v = &V[(i + r) % NV];
                        if (v->skipped || !filters(v)) continue;
                        select_db(cs, v->db);
                        qset_build(&qs, v, O.fse[x], filt[s], O.fef[f]);
                        qs.truth = truth[1 + s];
                        search_run(cs, &qs, "filtered", v, r, O.fse[x], O.sel[s], O.fef[f]);
                    }
    }

    free(qs.off);
    free(qs.cmds.p);
    for (uint32_t i = 0; i < O.conns; i++) conn_close(cs[i]);
    free(cs);
    for (uint32_t f = 0; f < 1 + O.nsel; f++) free(truth[f]);
    free(B.data);
    free(Q.data);
    return 0;
}
