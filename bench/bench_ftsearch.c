/* bench_ftsearch.c -- FT.SEARCH KNN over hashes against VSIM on a vector
 * set of the same data, over the wire, in the same run (issue 15): ingest
 * (HSET into an existing index against VADD), then search throughput,
 * recall@k and the server's CPU per query at several EF_RUNTIME values,
 * unpipelined and pipelined at the same client concurrency.  One JSON line
 * per result; medians and ratios are bench/ftsearch_summary.py's.  Its
 * client is bench/respc.h.
 *
 *   bench_ftsearch --host 127.0.0.1 --port P --base B.fvecs --query Q.fvecs
 *                  --gt G.ivecs [--conns 4] [--pipeline 8] [--k 10] [--M 16]
 *                  [--ef 10,20,40,80,160] [--rounds 5] [--secs 0.5]
 *                  [--load-rounds 3] [--load-conns 1] [--load-pipeline 8]
 *                  [--cosine] [--server-pid PID] [--variants ft,vsim,...]
 *
 * Data.  Row i of the base file is the hash doc:<i> with one field v, the
 * row as little-endian FLOAT32 bytes, and the element "<i>" of the vector
 * set vset.  The index:
 *   FT.CREATE idx ON HASH PREFIX 1 doc: SCHEMA v VECTOR HNSW 12 TYPE FLOAT32
 *             DIM d DISTANCE_METRIC L2 M 16 EF_CONSTRUCTION 200 EF_RUNTIME 40
 * and the sets: VADD vset FP32 blob i NOQUANT M 16 EF 200 (float32, as
 * the index keeps them: the like-for-like reference) and VADD vset_q8 FP32
 * blob i M 16 EF 200 (VADD's default quantisation, Q8 as in Redis 8).
 *
 * Ingest (phase "load").  --load-rounds rounds; each starts from an empty
 * server (FT.DROPINDEX idx, FLUSHALL SYNC), creates idx, then loads the rows
 * in order as HSET, VADD NOQUANT, VADD (Q8) and with --cosine HSET into
 * idxc, the order rotated by one each round, each
 * over --load-conns connections with two batches of --load-pipeline
 * commands in flight per connection (--load-rounds 0: no load, the data of
 * an earlier run is searched, e.g. to profile the searches alone).  Rows in order over one connection
 * (the default) make each graph the same every round.  Printed: vectors/s
 * and the server's CPU per vector.
 *
 * Metrics.  Vector sets are cosine only (Redis 8's too), the data sets are
 * L2 with L2 ground truth (--gt).  So every search line carries two
 * recalls: recall_l2 against the data set's ground truth and recall_cos
 * against the cosine ground truth this program computes by an exact scan
 * (double precision, ties to the smaller row); recall_at_k is the one of
 * the variant's own metric.  With --cosine a second index idxc on the same
 * hashes' copies cdoc:<i> (PREFIX 1 cdoc:, DISTANCE_METRIC COSINE) exists
 * too, loaded as its own ingest variant "hset_cos": the same metric as
 * VSIM, for a like-for-like comparison of ingest and search.
 *
 * Variants (phase "search"):
 *   ft        FT.SEARCH idx "*=>[KNN k @v $q]" PARAMS 2 q blob DIALECT 2
 *             RETURN 1 __v_score (EF_RUNTIME ef inside the brackets
 *             unless ef is the index's 40)
 *   ft_nc     the same with NOCONTENT instead of RETURN: keys only
 *   ft_cos    (--cosine) as ft on idxc
 *   vsim_ws   VSIM vset FP32 blob COUNT k EF ef WITHSCORES
 *   vsim      the same without WITHSCORES: names only
 *   vsim_q8_ws  VSIM vset_q8 ... WITHSCORES: the Q8 set
 * Each run is --secs seconds over --conns connections in one of two modes:
 * "p1" one command in flight per connection (request, reply), "pN" two
 * batches of --pipeline commands in flight per connection.  Per round, for
 * each mode and ef, every variant runs once, their order rotated by one
 * each round.  Every line has the server's CPU time per query (/proc, loop
 * thread plus workers) when --server-pid is given.  --variants keeps only
 * the search variants named (to profile one path). */
#define _GNU_SOURCE        /* memmem */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "respc.h"
#include "vecio.h"

#define MAX_LIST 16
#define MAX_VARIANTS 8

typedef struct opts {
    const char *base, *query, *gt;
    uint32_t conns, pipeline, k, M, rounds, load_rounds, load_conns, load_pipeline;
    double secs;
    uint32_t ef[MAX_LIST], nef;
    int cosine;
    const char *only;       /* --variants: a comma list of search variants, NULL all */
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
    O = (opts){ .conns = 4, .pipeline = 8, .k = 10, .M = 16, .rounds = 5, .secs = 0.5,
                .load_rounds = 3, .load_conns = 1, .load_pipeline = 8 };
    O.nef = parse_list("10,20,40,80,160", O.ef);
    g_host = "127.0.0.1";
    g_port = 6380;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--cosine")) {
            O.cosine = 1;
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
        else if (!strcmp(a, "--load-rounds")) O.load_rounds = (uint32_t)atoi(v);
        else if (!strcmp(a, "--load-conns")) O.load_conns = (uint32_t)atoi(v);
        else if (!strcmp(a, "--load-pipeline")) O.load_pipeline = (uint32_t)atoi(v);
        else if (!strcmp(a, "--ef")) O.nef = parse_list(v, O.ef);
        else if (!strcmp(a, "--server-pid")) g_server_pid = atoi(v);
        else if (!strcmp(a, "--variants")) O.only = v;
        else die("unknown option", a);
    }
    if (!O.base || !O.query || !O.gt) die("need --base, --query and --gt", NULL);
    if (!O.conns || !O.pipeline || !O.k || O.secs <= 0 || !O.rounds ||
        !O.load_conns || !O.load_pipeline)
        die("bad --conns/--pipeline/--k/--secs/--rounds/--load-*", NULL);
    if (O.load_conns > O.conns) O.conns = O.load_conns;
}

static vecs B, Q;

/* ---- ground truth: L2 from the file, cosine computed ---------------------------- */

static int32_t *truth_l2, *truth_cos;      /* Q.n x k each */

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

static void truth_load(void)
{
    double t0 = now_s();
    uint32_t k = O.k, dim = B.dim;
    vecs G = vecio_read(g_prog, O.gt);
    if (G.n < Q.n || G.dim < k) die("the ground truth has too few queries or neighbours", O.gt);
    truth_l2 = xmalloc((size_t)Q.n * k * sizeof *truth_l2);
    for (uint32_t q = 0; q < Q.n; q++)
        memcpy(truth_l2 + (size_t)q * k, (int32_t *)G.data + (size_t)q * G.dim, k * sizeof(int32_t));
    free(G.data);
    double *ub = unit_rows(&B), *uq = unit_rows(&Q), *bd = xmalloc(k * sizeof *bd);
    truth_cos = xmalloc((size_t)Q.n * k * sizeof *truth_cos);
    uint64_t same = 0;
    for (uint32_t q = 0; q < Q.n; q++) {
        uint32_t bn = 0;
        const double *qv = uq + (size_t)q * dim;
        for (uint32_t i = 0; i < B.n; i++) {
            const double *bv = ub + (size_t)i * dim;
            double s4[4] = { 0, 0, 0, 0 };
            uint32_t j = 0;
            for (; j + 4 <= dim; j += 4)
                for (int l = 0; l < 4; l++) s4[l] += qv[j + l] * bv[j + l];
            for (; j < dim; j++) s4[0] += qv[j] * bv[j];
            topk_push(bd, truth_cos + (size_t)q * k, &bn, k, 1 - ((s4[0] + s4[1]) + (s4[2] + s4[3])),
                      (int32_t)i);
        }
        for (uint32_t j = bn; j < k; j++) truth_cos[(size_t)q * k + j] = -1;
        for (uint32_t a = 0; a < k; a++)
            for (uint32_t b = 0; b < k; b++)
                if (truth_l2[(size_t)q * k + a] == truth_cos[(size_t)q * k + b]) {
                    same++;
                    break;
                }
    }
    printf("{\"bench\":\"ftsearch\",\"phase\":\"truth\",\"queries\":%u,\"k\":%u,"
           "\"cosine_method\":\"exact scan in the client, double precision\","
           "\"l2_cos_overlap\":%.4f,\"seconds\":%.2f}\n",
           Q.n, k, (double)same / ((double)Q.n * k), now_s() - t0);
    fflush(stdout);
    free(ub);
    free(uq);
    free(bd);
}

/* ---- pipelined loading ----------------------------------------------------------- */

typedef void encode_fn(buf *b, uint32_t i);

typedef struct streamer {
    conn *c;
    pthread_t th;
    uint32_t first, step, n;
    encode_fn *enc;
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
        for (; i < S->n && inflight[cur] < O.load_pipeline; i += S->step, inflight[cur]++)
            S->enc(&b[cur], i);
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

static void stream_all(conn **cs, uint32_t nconns, uint32_t n, encode_fn *enc, const char *what)
{
    streamer *S = xmalloc(nconns * sizeof *S);
    for (uint32_t i = 0; i < nconns; i++) {
        S[i] = (streamer){ .c = cs[i], .first = i, .step = nconns, .n = n, .enc = enc, .what = what };
        if (pthread_create(&S[i].th, NULL, stream_main, &S[i])) die("pthread_create", NULL);
    }
    for (uint32_t i = 0; i < nconns; i++) pthread_join(S[i].th, NULL);
    free(S);
}

static void enc_hset_p(buf *b, uint32_t row, const char *prefix)
{
    char key[32];
    snprintf(key, sizeof key, "%s%u", prefix, row);
    cmd_begin(b, 4);
    cmd_str(b, "HSET");
    cmd_str(b, key);
    cmd_str(b, "v");
    cmd_vec(b, (const float *)B.data + (size_t)row * B.dim, B.dim);
}

static void enc_hset(buf *b, uint32_t row) { enc_hset_p(b, row, "doc:"); }
static void enc_hset_cos(buf *b, uint32_t row) { enc_hset_p(b, row, "cdoc:"); }

/* quant: NULL for VADD's default (Q8, as in Redis 8), else the option. */
static void enc_vadd_q(buf *b, uint32_t row, const char *key, const char *quant)
{
    cmd_begin(b, 9 + (quant != NULL));
    cmd_str(b, "VADD");
    cmd_str(b, key);
    cmd_str(b, "FP32");
    cmd_vec(b, (const float *)B.data + (size_t)row * B.dim, B.dim);
    cmd_u(b, row);
    if (quant) cmd_str(b, quant);
    cmd_str(b, "M");
    cmd_u(b, O.M);
    cmd_str(b, "EF");
    cmd_str(b, "200");
}

static void enc_vadd(buf *b, uint32_t row) { enc_vadd_q(b, row, "vset", "NOQUANT"); }
static void enc_vadd_q8(buf *b, uint32_t row) { enc_vadd_q(b, row, "vset_q8", NULL); }

static void call_ok(conn *c, int argc, const char *const *argv, int allow_err)
{
    rval v;
    conn_cmdv(c, &v, argc, argv);
    if (v.type == '-' && !allow_err) die_reply(argv[0], &v);
    conn_skip(c, &v);
}

static void create_index(conn *c, const char *name, const char *prefix, const char *metric)
{
    char dim[16], m[16];
    snprintf(dim, sizeof dim, "%u", B.dim);
    snprintf(m, sizeof m, "%u", O.M);
    const char *argv[] = { "FT.CREATE", name, "ON", "HASH", "PREFIX", "1", prefix, "SCHEMA", "v",
                           "VECTOR", "HNSW", "12", "TYPE", "FLOAT32", "DIM", dim,
                           "DISTANCE_METRIC", metric, "M", m, "EF_CONSTRUCTION", "200",
                           "EF_RUNTIME", "40" };
    call_ok(c, (int)(sizeof argv / sizeof *argv), argv, 0);
}

static void load_one(conn **cs, const char *what, uint32_t round, int first)
{
    int hset = !strncmp(what, "hset", 4);
    encode_fn *enc = !strcmp(what, "hset") ? enc_hset : !strcmp(what, "hset_cos") ? enc_hset_cos
                   : !strcmp(what, "vadd_q8") ? enc_vadd_q8 : enc_vadd;
    srv_cpu c0 = server_cpu();
    double cl0 = client_cpu_s(), t0 = now_s();
    stream_all(cs, O.load_conns, B.n, enc, hset ? "HSET" : "VADD");
    double t = now_s() - t0;
    srv_cpu c1 = server_cpu();
    double cl1 = client_cpu_s();
    printf("{\"bench\":\"ftsearch\",\"phase\":\"load\",\"variant\":\"%s\",\"round\":%u,\"first\":%d,"
           "\"n\":%u,\"dim\":%u,\"M\":%u,\"conns\":%u,\"inflight_per_conn\":%u,\"seconds\":%.3f,"
           "\"vectors_per_s\":%.1f",
           what, round, first, B.n, B.dim, O.M, O.load_conns, 2 * O.load_pipeline, t, B.n / t);
    print_cpu(c0, c1, cl0, cl1, t);
    if (c0.ok && c1.ok)
        printf(",\"server_us_per_vector\":%.2f",
               (c1.loop_s - c0.loop_s + c1.workers_s - c0.workers_s) / B.n * 1e6);
    printf("}\n");
    fflush(stdout);
}

/* FT.INFO name's "indexing" and "num_docs" (flat name, value pairs). */
static void ft_info(conn *c, const char *name, double *indexing, double *docs)
{
    rval v;
    conn_cmdv(c, &v, 2, (const char *const[]){ "FT.INFO", name });
    if (v.type != '*') die_reply("FT.INFO", &v);
    int want = 0;
    *indexing = *docs = -1;
    for (long long i = 0; i < v.n; i++) {
        rval e;
        conn_head(c, &e);
        if (i % 2 == 0) {
            want = e.type == '$' && e.slen == 8 && !memcmp(e.s, "indexing", 8) ? 1
                 : e.type == '$' && e.slen == 8 && !memcmp(e.s, "num_docs", 8) ? 2 : 0;
        } else if (want) {
            double x = e.type == ':' ? (double)e.n : e.type == '$' ? strtod(e.s, NULL) : -1;
            if (want == 1) *indexing = x;
            else *docs = x;
        }
        conn_skip(c, &e);
    }
}

/* ---- searching ------------------------------------------------------------------- */

enum { V_FT, V_FT_NC, V_FT_COS, V_VSIM_WS, V_VSIM, V_VSIM_Q8_WS };

typedef struct variant {
    const char *name;
    int kind;
    int cos;                /* its own metric is cosine */
} variant;

static variant V[MAX_VARIANTS];
static uint32_t NV;

typedef struct qset {
    buf cmds;
    size_t *off;            /* Q.n + 1 */
    int kind;
} qset;

static void qset_build(qset *s, const variant *v, uint32_t ef)
{
    s->cmds.len = 0;
    s->kind = v->kind;
    char q[96];
    if (ef == 40) snprintf(q, sizeof q, "*=>[KNN %u @v $q]", O.k);
    else snprintf(q, sizeof q, "*=>[KNN %u @v $q EF_RUNTIME %u]", O.k, ef);
    for (uint32_t i = 0; i < Q.n; i++) {
        const float *x = (const float *)Q.data + (size_t)i * Q.dim;
        s->off[i] = s->cmds.len;
        buf *b = &s->cmds;
        if (v->kind >= V_VSIM_WS) {
            int ws = v->kind != V_VSIM;
            cmd_begin(b, 8 + ws);
            cmd_str(b, "VSIM");
            cmd_str(b, v->kind == V_VSIM_Q8_WS ? "vset_q8" : "vset");
            cmd_str(b, "FP32");
            cmd_vec(b, x, Q.dim);
            cmd_str(b, "COUNT");
            cmd_u(b, O.k);
            cmd_str(b, "EF");
            cmd_u(b, ef);
            if (ws) cmd_str(b, "WITHSCORES");
            continue;
        }
        int nc = v->kind == V_FT_NC;
        cmd_begin(b, nc ? 10 : 12);
        cmd_str(b, "FT.SEARCH");
        cmd_str(b, v->kind == V_FT_COS ? "idxc" : "idx");
        cmd_str(b, q);
        cmd_str(b, "PARAMS");
        cmd_str(b, "2");
        cmd_str(b, "q");
        cmd_vec(b, x, Q.dim);
        cmd_str(b, "DIALECT");
        cmd_str(b, "2");
        if (nc) {
            cmd_str(b, "NOCONTENT");
        } else {
            cmd_str(b, "RETURN");
            cmd_str(b, "1");
            cmd_str(b, "__v_score");
        }
    }
    s->off[Q.n] = s->cmds.len;
}

typedef struct searcher {
    conn *c;
    pthread_t th;
    const qset *qs;
    uint32_t first, step, batch, nbatches;
    double deadline, t_end;
    uint64_t done;
    int32_t *hits_l2, *hits_cos;    /* per query, its first answer; -1 none */
    uint64_t returned;
} searcher;

static int32_t row_of(const char *s, size_t n)
{
    char t[32];
    if (n >= 4 && !memcmp(s, "doc:", 4)) s += 4, n -= 4;
    else if (n >= 5 && !memcmp(s, "cdoc:", 5)) s += 5, n -= 5;
    if (n >= sizeof t) n = sizeof t - 1;
    memcpy(t, s, n);
    t[n] = '\0';
    return (int32_t)strtol(t, NULL, 10);
}

static void read_reply(searcher *S, uint32_t qi)
{
    rval v;
    conn_head(S->c, &v);
    if (v.type == '-') die_reply("search", &v);
    if (v.type != '*') die("search: an array was expected", NULL);
    int ft = S->qs->kind <= V_FT_COS, ws = S->qs->kind == V_VSIM_WS || S->qs->kind == V_VSIM_Q8_WS;
    int32_t ids[64];
    uint32_t n = 0;
    for (long long i = 0; i < v.n; i++) {
        rval e;
        conn_head(S->c, &e);
        if (ft) {
            /* total, then key [fields] pairs: top-level bulk strings are keys */
            if (i > 0 && e.type == '$' && n < 64) ids[n++] = row_of(e.s, e.slen);
            conn_skip(S->c, &e);
        } else if (!ws || i % 2 == 0) {
            if (e.type != '$') die("search: a name is not a bulk string", NULL);
            if (n < 64) ids[n++] = row_of(e.s, e.slen);
        }
    }
    S->returned += n;
    if (S->hits_l2[qi] >= 0) return;
    const int32_t *gl = truth_l2 + (size_t)qi * O.k, *gc = truth_cos + (size_t)qi * O.k;
    int32_t hl = 0, hc = 0;
    for (uint32_t a = 0; a < n; a++) {
        for (uint32_t b = 0; b < O.k; b++)
            if (gl[b] == ids[a]) {
                hl++;
                break;
            }
        for (uint32_t b = 0; b < O.k; b++)
            if (gc[b] == ids[a]) {
                hc++;
                break;
            }
    }
    S->hits_l2[qi] = hl;
    S->hits_cos[qi] = hc;
}

/* nbatches (1 or 2) batches of `batch` commands in flight. */
static void *search_main(void *arg)
{
    searcher *S = arg;
    const qset *qs = S->qs;
    buf b[2] = { { 0 }, { 0 } };
    uint32_t *ids[2] = { xmalloc(S->batch * sizeof(uint32_t)), xmalloc(S->batch * sizeof(uint32_t)) };
    uint32_t inflight[2] = { 0, 0 };
    uint64_t pos = S->first;
    int cur = 0;
    for (;;) {
        b[cur].len = 0;
        inflight[cur] = 0;
        if (now_s() < S->deadline) {
            for (; inflight[cur] < S->batch; pos += S->step) {
                uint32_t qi = (uint32_t)(pos % Q.n);
                buf_put(&b[cur], qs->cmds.p + qs->off[qi], qs->off[qi + 1] - qs->off[qi]);
                ids[cur][inflight[cur]++] = qi;
            }
            conn_write(S->c, b[cur].p, b[cur].len);
        }
        int prev = S->nbatches == 2 ? cur ^ 1 : cur;
        for (uint32_t i = 0; i < inflight[prev]; i++) read_reply(S, ids[prev][i]);
        S->done += inflight[prev];
        if (S->nbatches == 1) {
            if (!inflight[cur]) break;
            continue;
        }
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

static void search_run(conn **cs, const qset *qs, const variant *v, uint32_t round, uint32_t ef,
                       int pipelined)
{
    uint32_t nq = Q.n;
    searcher *S = xmalloc(O.conns * sizeof *S);
    int32_t *hl = xmalloc((size_t)O.conns * nq * sizeof *hl), *hc = xmalloc((size_t)O.conns * nq * sizeof *hc);
    for (size_t i = 0; i < (size_t)O.conns * nq; i++) hl[i] = hc[i] = -1;
    uint32_t batch = pipelined ? O.pipeline : 1, nb = pipelined ? 2 : 1;
    srv_cpu c0 = server_cpu();
    double cl0 = client_cpu_s(), t0 = now_s();
    for (uint32_t i = 0; i < O.conns; i++) {
        S[i] = (searcher){ .c = cs[i], .qs = qs, .first = i * (nq / O.conns), .step = 1,
                           .batch = batch, .nbatches = nb, .deadline = t0 + O.secs,
                           .hits_l2 = hl + (size_t)i * nq, .hits_cos = hc + (size_t)i * nq };
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
    uint64_t sl = 0, sc = 0;
    uint32_t answered = 0;
    for (uint32_t qi = 0; qi < nq; qi++)
        for (uint32_t i = 0; i < O.conns; i++)
            if (hl[(size_t)i * nq + qi] >= 0) {
                sl += (uint64_t)hl[(size_t)i * nq + qi];
                sc += (uint64_t)hc[(size_t)i * nq + qi];
                answered++;
                break;
            }
    double rl = answered ? (double)sl / ((double)answered * O.k) : 0;
    double rc = answered ? (double)sc / ((double)answered * O.k) : 0;
    printf("{\"bench\":\"ftsearch\",\"phase\":\"search\",\"variant\":\"%s\",\"mode\":\"%s\","
           "\"round\":%u,\"ef\":%u,\"k\":%u,\"conns\":%u,\"inflight_per_conn\":%u,\"queries\":%llu,"
           "\"seconds\":%.3f,\"qps\":%.1f,\"recall_at_k\":%.4f,\"recall_l2\":%.4f,\"recall_cos\":%.4f,"
           "\"recall_queries\":%u,\"returned_per_query\":%.2f",
           v->name, pipelined ? "pipelined" : "p1", round, ef, O.k, O.conns, batch * nb,
           (unsigned long long)done, t, done / t, v->cos ? rc : rl, rl, rc, answered,
           done ? (double)returned / done : 0.0);
    print_cpu(c0, c1, cl0, cl1, t);
    if (c0.ok && c1.ok && done)
        printf(",\"server_us_per_query\":%.2f",
               (c1.loop_s - c0.loop_s + c1.workers_s - c0.workers_s) / done * 1e6);
    printf("}\n");
    fflush(stdout);
    free(hl);
    free(hc);
    free(S);
}

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
    g_prog = "bench_ftsearch";
    parse_args(argc, argv);
    B = vecio_read(g_prog, O.base);
    Q = vecio_read(g_prog, O.query);
    if (Q.dim != B.dim) die("base and query dimensions differ", NULL);

    conn **cs = xmalloc(O.conns * sizeof *cs);
    for (uint32_t i = 0; i < O.conns; i++) cs[i] = conn_open();
    double load1 = -1;
    FILE *lf = fopen("/proc/loadavg", "r");
    if (lf) {
        if (fscanf(lf, "%lf", &load1) != 1) load1 = -1;
        fclose(lf);
    }
    printf("{\"bench\":\"ftsearch\",\"phase\":\"setup\",\"n\":%u,\"queries\":%u,\"dim\":%u,\"k\":%u,"
           "\"M\":%u,\"conns\":%u,\"pipeline\":%u,\"secs\":%.2f,\"rounds\":%u,\"load_rounds\":%u,"
           "\"search_threads\":%d,\"cores\":%ld,\"loadavg_1m\":%.2f}\n",
           B.n, Q.n, B.dim, O.k, O.M, O.conns, O.pipeline, O.secs, O.rounds, O.load_rounds,
           server_search_threads(cs[0]), sysconf(_SC_NPROCESSORS_ONLN), load1);
    fflush(stdout);
    truth_load();

    for (uint32_t r = 0; r < O.load_rounds; r++) {
        call_ok(cs[0], 2, (const char *const[]){ "FT.DROPINDEX", "idx" }, 1);
        call_ok(cs[0], 2, (const char *const[]){ "FT.DROPINDEX", "idxc" }, 1);
        call_ok(cs[0], 2, (const char *const[]){ "FLUSHALL", "SYNC" }, 0);
        create_index(cs[0], "idx", "doc:", "L2");
        if (O.cosine) create_index(cs[0], "idxc", "cdoc:", "COSINE");
        sleep_us(200000);
        static const char *const loads[] = { "hset", "vadd", "vadd_q8", "hset_cos" };
        uint32_t nl = O.cosine ? 4 : 3;
        for (uint32_t i = 0; i < nl; i++) load_one(cs, loads[(i + r) % nl], r, (int)i);
    }
    double indexing, docs;
    ft_info(cs[0], "idx", &indexing, &docs);
    if ((uint32_t)docs != B.n) die("idx does not hold every row", NULL);

    V[NV++] = (variant){ "ft", V_FT, 0 };
    V[NV++] = (variant){ "ft_nc", V_FT_NC, 0 };
    if (O.cosine) {
        ft_info(cs[0], "idxc", &indexing, &docs);
        if ((uint32_t)docs != B.n) die("idxc does not hold every row", NULL);
        V[NV++] = (variant){ "ft_cos", V_FT_COS, 1 };
    }
    V[NV++] = (variant){ "vsim_ws", V_VSIM_WS, 1 };
    V[NV++] = (variant){ "vsim", V_VSIM, 1 };
    V[NV++] = (variant){ "vsim_q8_ws", V_VSIM_Q8_WS, 1 };

    if (O.only) {           /* keep the variants named (for profiling one path) */
        uint32_t m = 0;
        for (uint32_t i = 0; i < NV; i++) {
            char list[256];
            snprintf(list, sizeof list, ",%s,", O.only);
            char want[32];
            snprintf(want, sizeof want, ",%s,", V[i].name);
            if (strstr(list, want)) V[m++] = V[i];
        }
        NV = m;
    }
    qset qs = { 0 };
    qs.off = xmalloc(((size_t)Q.n + 1) * sizeof *qs.off);
    for (uint32_t r = 0; r < O.rounds; r++)
        for (int p = 0; p < 2; p++)
            for (uint32_t e = 0; e < O.nef; e++)
                for (uint32_t i = 0; i < NV; i++) {
                    const variant *v = &V[(i + r) % NV];
                    qset_build(&qs, v, O.ef[e]);
                    search_run(cs, &qs, v, r, O.ef[e], p);
                }
    free(qs.off);
    free(qs.cmds.p);
    for (uint32_t i = 0; i < O.conns; i++) conn_close(cs[i]);
    free(cs);
    free(truth_l2);
    free(truth_cos);
    free(B.data);
    free(Q.data);
    return 0;
}
