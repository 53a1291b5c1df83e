/* bench_vserver.c -- VADD/VSEARCH throughput of a running engram over the
 * wire, and PING latency while searches saturate it; one JSON line per
 * result.  Its own minimal RESP2 client over plain blocking sockets.
 *
 *   bench_vserver --host 127.0.0.1 --port P --base B.fvecs --query Q.fvecs
 *                 --gt G.ivecs [--conns 4] [--ef 10,20,40,80] [--M 16]
 *                 [--efc 200] [--pipeline 64] [--k 10] [--secs 2]
 *                 [--index vbench] [--ping-interval-us 1000]
 *                 [--server-pid PID] [--no-1conn] [--floor]
 *
 * 1. "load": VDROP then VNEW the index (METRIC l2 M EF_CONSTRUCTION), then
 *    VADD every base row (key = row number in decimal) over --conns
 *    connections, each taking an interleaved share of the rows.
 * 2. "search", per ef: VSEARCH idx blob k EF ef over 1 connection, then over
 *    --conns connections (queries interleaved among them).  Each run is time
 *    bounded (--secs): every connection cycles through its share of the
 *    query set until the deadline, then drains what it has in flight.
 *    recall_at_k is from the first answer to each query (as bench_ann).
 * 3. "ping_idle" once, then "ping_under_vadd" during the load and
 *    "ping_under_load" during each N-connection search run: a separate
 *    connection sends one PING, waits for +PONG, sleeps --ping-interval-us,
 *    repeats; p50/p99/max in microseconds.
 *
 * Pipelining: a connection keeps two batches of --pipeline commands in
 * flight (it writes batch i+1 before reading the replies to batch i), so
 * the server never waits for the client between batches.  engram runs up
 * to 256 of a connection's VSEARCHes at once on its pool and answers them
 * in order, a batch's replies in one write.
 *
 * --k 0 measures the wire path alone: engram still parses the query and
 * sends it through the search pool, but skips the graph and answers an
 * empty array.  --floor adds one such run (phase "search", "k":0, over
 * --conns connections, PING probe on as "ping_under_floor") after the
 * others: the server's CPU per query there is what the wire costs when
 * searching costs nothing, a floor under the cost of every real search.
 *
 * With --server-pid (Linux), each line also carries the server's CPU time
 * over the run, split into the loop thread (tid == pid) and all other
 * threads (the search pool), from /proc/PID/task/TID/schedstat, and
 * server_loop_runs, how many times the loop thread was scheduled in (its
 * wake-ups, a cost of their own on a virtual machine); client_cpu_s
 * is this process's own CPU time (it shares the machine).
 *
 * The socket client needs nothing from engram_core; it is linked only
 * because bench/CMakeLists.txt links every bench_*.c that way. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "respc.h"
#include "vecio.h"

/* ---- options ---------------------------------------------------------------- */

typedef struct opts {
    const char *base, *query, *gt, *index;
    char ef_list[256];
    uint32_t M, efc, k, conns, pipeline;
    double secs;
    long ping_interval_us;
    int one_conn;
    int floor;              /* --floor: one more run at k = 0 */
} opts;

static opts O;

static void parse_args(int argc, char **argv)
{
    O = (opts){ .index = "vbench", .M = 16, .efc = 200, .k = 10, .conns = 4, .pipeline = 64,
                .secs = 2.0, .ping_interval_us = 1000, .one_conn = 1 };
    g_host = "127.0.0.1";
    g_port = 6380;
    snprintf(O.ef_list, sizeof O.ef_list, "10,20,40,80");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--no-1conn")) {
            O.one_conn = 0;
            continue;
        }
        if (!strcmp(a, "--floor")) {
            O.floor = 1;
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
        else if (!strcmp(a, "--index")) O.index = v;
        else if (!strcmp(a, "--ef")) snprintf(O.ef_list, sizeof O.ef_list, "%s", v);
        else if (!strcmp(a, "--M")) O.M = (uint32_t)atoi(v);
        else if (!strcmp(a, "--efc")) O.efc = (uint32_t)atoi(v);
        else if (!strcmp(a, "--k")) O.k = (uint32_t)atoi(v);
        else if (!strcmp(a, "--conns")) O.conns = (uint32_t)atoi(v);
        else if (!strcmp(a, "--pipeline")) O.pipeline = (uint32_t)atoi(v);
        else if (!strcmp(a, "--secs")) O.secs = atof(v);
        else if (!strcmp(a, "--ping-interval-us")) O.ping_interval_us = atol(v);
        else if (!strcmp(a, "--server-pid")) g_server_pid = atoi(v);
        else die("unknown option", a);
    }
    if (!O.base || !O.query || !O.gt) die("need --base, --query and --gt", NULL);
    if (!O.conns || !O.pipeline || O.secs <= 0) die("bad --conns/--pipeline/--secs", NULL);
}

/* ---- the PING prober ---------------------------------------------------------- */

static void ping_start(pinger *p)
{
    p->interval_us = O.ping_interval_us;
    pinger_start(p);
}

static void ping_stop(pinger *p) { pinger_stop(p); }

static void ping_report(pinger *p, const char *phase, int ef)
{
    printf("{\"bench\":\"vserver\",\"phase\":\"%s\"", phase);
    if (ef >= 0) printf(",\"ef\":%d", ef);
    printf(",\"conns\":%u,\"interval_us\":%ld", O.conns, O.ping_interval_us);
    print_latency(p->lat, p->n);
    printf("}\n");
    fflush(stdout);
}

/* ---- load: pipelined VADD ----------------------------------------------------- */

typedef struct loader {
    conn *c;
    pthread_t th;
    const vecs *base;
    uint32_t first, step;  /* rows first, first+step, ... */
    uint64_t done;
} loader;

static void vadd_encode(buf *b, const vecs *base, uint32_t row)
{
    cmd_begin(b, 4);
    cmd_str(b, "VADD");
    cmd_str(b, O.index);
    cmd_u(b, row);
    cmd_vec(b, (const float *)base->data + (size_t)row * base->dim, base->dim);
}

static void read_vadd_replies(conn *c, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        rval v;
        conn_head(c, &v);
        if (v.type != ':') die_reply("VADD", &v);
    }
}

static void *load_main(void *arg)
{
    loader *L = arg;
    buf b[2] = { { 0 }, { 0 } };
    uint32_t inflight[2] = { 0, 0 }, row = L->first;
    int cur = 0;
    /* Two batches in flight: write the next, then read the previous. */
    for (;;) {
        b[cur].len = 0;
        inflight[cur] = 0;
        for (; row < L->base->n && inflight[cur] < O.pipeline; row += L->step, inflight[cur]++)
            vadd_encode(&b[cur], L->base, row);
        if (inflight[cur]) conn_write(L->c, b[cur].p, b[cur].len);
        int prev = cur ^ 1;
        read_vadd_replies(L->c, inflight[prev]);
        L->done += inflight[prev];
        inflight[prev] = 0;
        if (!inflight[cur]) break;
        cur = prev;
    }
    free(b[0].p);
    free(b[1].p);
    return NULL;
}

static void load(conn **cs, pinger *pg, const vecs *base)
{
    buf b = { 0 };
    rval v;
    cmd_begin(&b, 2);
    cmd_str(&b, "VDROP");
    cmd_str(&b, O.index);
    conn_call(cs[0], &b, &v);            /* "no such index" is fine */
    b.len = 0;
    cmd_begin(&b, 9);
    cmd_str(&b, "VNEW");
    cmd_str(&b, O.index);
    cmd_u(&b, base->dim);
    cmd_str(&b, "METRIC");
    cmd_str(&b, "l2");
    cmd_str(&b, "M");
    cmd_u(&b, O.M);
    cmd_str(&b, "EF_CONSTRUCTION");
    cmd_u(&b, O.efc);
    conn_call(cs[0], &b, &v);
    if (v.type != '+') die_reply("VNEW", &v);
    free(b.p);

    loader *L = xmalloc(O.conns * sizeof *L);
    srv_cpu c0 = server_cpu();
    double cl0 = client_cpu_s(), t0 = now_s();
    ping_start(pg);
    for (uint32_t i = 0; i < O.conns; i++) {
        L[i] = (loader){ .c = cs[i], .base = base, .first = i, .step = O.conns };
        if (pthread_create(&L[i].th, NULL, load_main, &L[i])) die("pthread_create", NULL);
    }
    uint64_t done = 0;
    for (uint32_t i = 0; i < O.conns; i++) {
        pthread_join(L[i].th, NULL);
        done += L[i].done;
    }
    double t = now_s() - t0;
    ping_stop(pg);
    srv_cpu c1 = server_cpu();
    double cl1 = client_cpu_s();
    if (done != base->n) die("not every VADD was answered", NULL);
    printf("{\"bench\":\"vserver\",\"phase\":\"load\",\"n\":%u,\"dim\":%u,\"M\":%u,\"efc\":%u,"
           "\"conns\":%u,\"pipeline\":%u,\"seconds\":%.3f,\"vadd_per_s\":%.1f",
           base->n, base->dim, O.M, O.efc, O.conns, O.pipeline, t, base->n / t);
    print_cpu(c0, c1, cl0, cl1, t);
    printf("}\n");
    fflush(stdout);
    ping_report(pg, "ping_under_vadd", -1);
    free(L);
}

/* ---- search: pipelined VSEARCH ----------------------------------------------- */

typedef struct qset {
    const vecs *q, *gt;
    buf cmds;               /* every query's VSEARCH, back to back */
    size_t *off;            /* q->n + 1 offsets into cmds */
} qset;

static void qset_build(qset *s, uint32_t ef)
{
    s->cmds.len = 0;
    for (uint32_t i = 0; i < s->q->n; i++) {
        s->off[i] = s->cmds.len;
        cmd_begin(&s->cmds, 6);
        cmd_str(&s->cmds, "VSEARCH");
        cmd_str(&s->cmds, O.index);
        cmd_vec(&s->cmds, (const float *)s->q->data + (size_t)i * s->q->dim, s->q->dim);
        cmd_u(&s->cmds, O.k);
        cmd_str(&s->cmds, "EF");
        cmd_u(&s->cmds, ef);
    }
    s->off[s->q->n] = s->cmds.len;
}

typedef struct searcher {
    conn *c;
    pthread_t th;
    const qset *qs;
    uint32_t first, step;   /* query stream positions first, first+step, ... */
    double deadline;
    uint64_t done;
    double t_end;
    int32_t *hits;          /* per query: hits of its first answer, -1 if none */
} searcher;

/* One VSEARCH reply for query qi: count ground-truth hits in the top k. */
static void read_search_reply(searcher *S, uint32_t qi)
{
    rval v;
    conn_head(S->c, &v);
    if (v.type != '*') die_reply("VSEARCH", &v);
    const int32_t *g = (const int32_t *)S->qs->gt->data + (size_t)qi * S->qs->gt->dim;
    uint32_t gk = O.k < S->qs->gt->dim ? O.k : S->qs->gt->dim;
    int32_t hit = 0;
    for (long long i = 0; i < v.n; i++) {
        rval e;
        conn_head(S->c, &e);
        if (i & 1) continue;                 /* the distance */
        if (e.type != '$') die("VSEARCH: a key is not a bulk string", NULL);
        char key[32];
        size_t kl = e.slen < sizeof key - 1 ? e.slen : sizeof key - 1;
        memcpy(key, e.s, kl);
        key[kl] = '\0';
        int32_t id = (int32_t)strtol(key, NULL, 10);
        for (uint32_t b = 0; b < gk; b++)
            if (g[b] == id) {
                hit++;
                break;
            }
    }
    if (S->hits[qi] < 0) S->hits[qi] = hit;
}

static void *search_main(void *arg)
{
    searcher *S = arg;
    const qset *qs = S->qs;
    uint32_t nq = qs->q->n;
    buf b[2] = { { 0 }, { 0 } };
    uint32_t *ids[2] = { xmalloc(O.pipeline * sizeof(uint32_t)),
                         xmalloc(O.pipeline * sizeof(uint32_t)) };
    uint32_t inflight[2] = { 0, 0 };
    uint64_t pos = S->first;
    int cur = 0;
    for (;;) {
        b[cur].len = 0;
        inflight[cur] = 0;
        if (now_s() < S->deadline) {
            for (; inflight[cur] < O.pipeline; pos += S->step) {
                uint32_t qi = (uint32_t)(pos % nq);
                buf_put(&b[cur], qs->cmds.p + qs->off[qi], qs->off[qi + 1] - qs->off[qi]);
                ids[cur][inflight[cur]++] = qi;
            }
            conn_write(S->c, b[cur].p, b[cur].len);
        }
        int prev = cur ^ 1;
        for (uint32_t i = 0; i < inflight[prev]; i++) read_search_reply(S, ids[prev][i]);
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

static void search_run(conn **cs, uint32_t nconns, pinger *pg, const char *ping_phase,
                       const qset *qs, uint32_t ef)
{
    uint32_t nq = qs->q->n;
    searcher *S = xmalloc(nconns * sizeof *S);
    int32_t *hits = xmalloc(nconns * (size_t)nq * sizeof *hits);
    for (size_t i = 0; i < nconns * (size_t)nq; i++) hits[i] = -1;
    srv_cpu c0 = server_cpu();
    double cl0 = client_cpu_s(), t0 = now_s();
    if (pg) ping_start(pg);
    for (uint32_t i = 0; i < nconns; i++) {
        S[i] = (searcher){ .c = cs[i], .qs = qs, .first = i, .step = nconns,
                           .deadline = t0 + O.secs, .hits = hits + (size_t)i * nq };
        if (pthread_create(&S[i].th, NULL, search_main, &S[i])) die("pthread_create", NULL);
    }
    uint64_t done = 0;
    double t_end = t0;
    for (uint32_t i = 0; i < nconns; i++) {
        pthread_join(S[i].th, NULL);
        done += S[i].done;
        if (S[i].t_end > t_end) t_end = S[i].t_end;
    }
    double t = t_end - t0;
    if (pg) ping_stop(pg);
    srv_cpu c1 = server_cpu();
    double cl1 = client_cpu_s();
    uint64_t hit = 0;
    uint32_t answered = 0;
    for (uint32_t qi = 0; qi < nq; qi++) {
        for (uint32_t i = 0; i < nconns; i++) {
            int32_t h = hits[(size_t)i * nq + qi];
            if (h >= 0) {
                hit += (uint64_t)h;
                answered++;
                break;
            }
        }
    }
    printf("{\"bench\":\"vserver\",\"phase\":\"search\",\"ef\":%u,\"k\":%u,\"conns\":%u,"
           "\"pipeline\":%u,\"queries\":%llu,\"seconds\":%.3f,\"qps\":%.1f",
           ef, O.k, nconns, O.pipeline, (unsigned long long)done, t, done / t);
    if (O.k && answered) printf(",\"recall_at_%u\":%.4f", O.k, (double)hit / ((double)answered * O.k));
    else printf(",\"recall_at_%u\":null", O.k);
    if (answered != nq) printf(",\"recall_queries\":%u", answered);
    print_cpu(c0, c1, cl0, cl1, t);
    printf("}\n");
    fflush(stdout);
    if (pg) ping_report(pg, ping_phase, (int)ef);
    free(hits);
    free(S);
}

/* ---- main ---------------------------------------------------------------------- */

/* search_threads from INFO (engram's "vectors" section), or -1. */
static int server_search_threads(conn *c)
{
    static const char cmd[] = "*1\r\n$4\r\nINFO\r\n";
    conn_write(c, cmd, sizeof cmd - 1);
    rval v;
    conn_head(c, &v);
    if (v.type != '$' || v.n < 0) return -1;
    const char *p = v.s, *end = v.s + v.slen;
    static const char key[] = "search_threads:";
    for (; p + sizeof key - 1 < end; p++)
        if (!memcmp(p, key, sizeof key - 1)) return atoi(p + sizeof key - 1);
    return -1;
}

int main(int argc, char **argv)
{
    g_prog = "bench_vserver";
    parse_args(argc, argv);
    vecs base = vecio_read("bench_vserver", O.base), q = vecio_read("bench_vserver", O.query), gt = vecio_read("bench_vserver", O.gt);
    if (q.dim != base.dim || gt.n < q.n) die("base, query and ground truth do not match", NULL);

    conn **cs = xmalloc(O.conns * sizeof *cs);
    for (uint32_t i = 0; i < O.conns; i++) cs[i] = conn_open();
    pinger pg;
    memset(&pg, 0, sizeof pg);
    pg.c = conn_open();

    int st = server_search_threads(cs[0]);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    double load1 = -1;              /* how busy the (shared) machine was */
    FILE *lf = fopen("/proc/loadavg", "r");
    if (lf) {
        if (fscanf(lf, "%lf", &load1) != 1) load1 = -1;
        fclose(lf);
    }
    printf("{\"bench\":\"vserver\",\"phase\":\"setup\",\"host\":\"%s\",\"port\":%d,"
           "\"search_threads\":%d,\"cores\":%ld,\"n\":%u,\"queries\":%u,\"dim\":%u,"
           "\"conns\":%u,\"pipeline\":%u,\"secs\":%.1f,\"loadavg_1m\":%.2f}\n",
           g_host, g_port, st, cores, base.n, q.n, base.dim, O.conns, O.pipeline, O.secs, load1);
    fflush(stdout);

    /* Idle PING baseline. */
    ping_start(&pg);
    sleep_us(500000);
    ping_stop(&pg);
    ping_report(&pg, "ping_idle", -1);

    load(cs, &pg, &base);

    qset qs = { .q = &q, .gt = &gt };
    qs.off = xmalloc(((size_t)q.n + 1) * sizeof *qs.off);
    for (char *tok = strtok(O.ef_list, ","); tok; tok = strtok(NULL, ",")) {
        uint32_t ef = (uint32_t)atoi(tok);
        qset_build(&qs, ef);
        if (O.one_conn) search_run(cs, 1, NULL, NULL, &qs, ef);
        search_run(cs, O.conns, &pg, "ping_under_load", &qs, ef);
    }
    if (O.floor) {
        /* The same run with k = 0: the wire path alone (see the top). */
        O.k = 0;
        qset_build(&qs, 10);
        search_run(cs, O.conns, &pg, "ping_under_floor", &qs, 10);
    }

    free(qs.off);
    free(qs.cmds.p);
    for (uint32_t i = 0; i < O.conns; i++) conn_close(cs[i]);
    conn_close(pg.c);
    free(cs);
    free(pg.lat);
    free(pg.at);
    free(base.data);
    free(q.data);
    free(gt.data);
    return 0;
}
