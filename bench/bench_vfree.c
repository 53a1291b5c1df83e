/* bench_vfree.c -- PING latency while a big vector set is freed: UNLINK,
 * DEL, FLUSHALL ASYNC and FLUSHALL of one HNSW vector set of --n random
 * vectors; one JSON line per result.  Its client is bench/respc.h.
 *
 *   bench_vfree --host 127.0.0.1 --port P [--n 1000000] [--dim 32] [--M 16]
 *               [--build-ef 10] [--quant Q8] [--attrs] [--conns 4]
 *               [--pipeline 64] [--ops unlink,del,flushall_async,flushall]
 *               [--rounds 2] [--ping-interval-us 1000] [--server-pid PID]
 *
 * Each op gets a set built for it (a set copied with COPY would not do: a
 * copy is loaded from an image, its keys in one arena, so it frees faster
 * than a set grown by VADD):
 *   1. "build": VADD vfree:big FP32 blob i <quant> M m EF build-ef [SETATTR
 *      {"bucket": i % 100}] for i < n over --conns pipelined connections;
 *      row i is the same random vector (uniform in [-1, 1)) in every build.
 *      MEMORY USAGE and the server's RSS after it.  The build beam is
 *      small (EF 10): the graph's quality does not matter here, only what
 *      there is to free, and that does not depend on it (fixed-size
 *      level-0 records, one key block per element, upper-level lists by
 *      each element's random level); at 1M x 32-d a build takes 35-55 s
 *      on the shared 2-core VM, against ~85 s at EF 20.
 *   2. "ping_idle": the PING probe alone for one second: the reference,
 *      measured just before the op, on the same server with the same set.
 *   3. the op, with the probe running (a separate connection sends PING,
 *      waits for +PONG, sleeps --ping-interval-us, repeats): the op's own
 *      reply time (cmd_us), then INFO memory polled every 5 ms on another
 *      connection until lazyfree_pending_objects is 0 (free_ms: from
 *      sending the op until then, to the poll's resolution), then 200 ms
 *      more of probing; server_cmd_us is the op's time in the server's
 *      handler (INFO commandstats), cmd_us as the client saw it.
 *      "during_free" is the PINGs sent from the op to
 *      the end of the free; "window" all of them, from 200 ms before the
 *      op.  With --server-pid: free_cpu_s, the CPU time of every server
 *      thread but the loop over the op (the lazy-free thread's work: what
 *      the loop would have spent had it freed the set itself), loop_cpu_s,
 *      loop_runq_wait_ms (the loop thread's time runnable but waiting for a
 *      CPU: a stall that is the machine's, not the server's), and the RSS
 *      before and after.
 * Rounds rotate the order of the ops; medians are the driver's job
 * (bench/unlink.sh). */
#define _GNU_SOURCE        /* memmem */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "respc.h"

#define KEY "vfree:big"
#define MAX_OPS 8

typedef struct opts {
    uint32_t n, dim, M, build_ef, conns, pipeline, rounds;
    const char *quant;
    int attrs;
    long ping_interval_us;
    const char *ops[MAX_OPS];
    uint32_t nops;
} opts;

static opts O;

static void parse_args(int argc, char **argv)
{
    static char opsbuf[256] = "unlink,del,flushall_async,flushall";
    O = (opts){ .n = 1000000, .dim = 32, .M = 16, .build_ef = 10, .conns = 4, .pipeline = 64,
                .rounds = 2, .quant = "Q8", .ping_interval_us = 1000 };
    g_host = "127.0.0.1";
    g_port = 6380;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--attrs")) {
            O.attrs = 1;
            continue;
        }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) die("missing value for", a);
        i++;
        if (!strcmp(a, "--host")) g_host = v;
        else if (!strcmp(a, "--port")) g_port = atoi(v);
        else if (!strcmp(a, "--n")) O.n = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--dim")) O.dim = (uint32_t)atoi(v);
        else if (!strcmp(a, "--M")) O.M = (uint32_t)atoi(v);
        else if (!strcmp(a, "--build-ef")) O.build_ef = (uint32_t)atoi(v);
        else if (!strcmp(a, "--quant")) O.quant = v;
        else if (!strcmp(a, "--conns")) O.conns = (uint32_t)atoi(v);
        else if (!strcmp(a, "--pipeline")) O.pipeline = (uint32_t)atoi(v);
        else if (!strcmp(a, "--rounds")) O.rounds = (uint32_t)atoi(v);
        else if (!strcmp(a, "--ping-interval-us")) O.ping_interval_us = atol(v);
        else if (!strcmp(a, "--ops")) snprintf(opsbuf, sizeof opsbuf, "%s", v);
        else if (!strcmp(a, "--server-pid")) g_server_pid = atoi(v);
        else die("unknown option", a);
    }
    for (char *tok = strtok(opsbuf, ","); tok && O.nops < MAX_OPS; tok = strtok(NULL, ",")) {
        if (strcmp(tok, "unlink") && strcmp(tok, "del") && strcmp(tok, "flushall_async") &&
            strcmp(tok, "flushall"))
            die("--ops takes unlink, del, flushall_async, flushall", tok);
        O.ops[O.nops++] = tok;
    }
    if (!O.n || !O.dim || !O.conns || !O.pipeline || !O.rounds || !O.nops)
        die("bad --n/--dim/--conns/--pipeline/--rounds/--ops", NULL);
}

/* ---- the server's side ---------------------------------------------------------- */

static long long rss_kb(void)
{
    if (g_server_pid <= 0) return -1;
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", g_server_pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long long kb = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kb = atoll(line + 6);
    fclose(f);
    return kb;
}

/* INFO memory's lazyfree_pending_objects. */
static long long lazy_pending(conn *c)
{
    rval v;
    conn_cmdv(c, &v, 2, (const char *const[]){ "INFO", "memory" });
    if (v.type != '$' || v.n < 0) die_reply("INFO", &v);
    const char *p = memmem(v.s, v.slen, "lazyfree_pending_objects:", 25);
    if (!p) die("INFO memory has no lazyfree_pending_objects", NULL);
    return atoll(p + 25);
}

/* INFO commandstats' usec for command name (lower case), 0 if absent: the
 * server's own time in its handler, whatever the client's scheduling. */
static long long cmd_usec(conn *c, const char *name)
{
    rval v;
    conn_cmdv(c, &v, 2, (const char *const[]){ "INFO", "commandstats" });
    if (v.type != '$' || v.n < 0) die_reply("INFO", &v);
    char pat[64];
    snprintf(pat, sizeof pat, "cmdstat_%s:", name);
    const char *p = memmem(v.s, v.slen, pat, strlen(pat));
    if (!p) return 0;
    const char *u = memmem(p, v.slen - (size_t)(p - v.s), "usec=", 5);
    return u ? atoll(u + 5) : 0;
}

static void wait_lazy_idle(conn *c)
{
    while (lazy_pending(c) > 0) sleep_us(5000);
}

/* ---- building the set ------------------------------------------------------------- */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void enc_vadd(buf *b, uint32_t row, float *tmp)
{
    uint64_t s = row * 0x632be59bd9b4e019ull + 1;
    for (uint32_t j = 0; j < O.dim; j++)
        tmp[j] = (float)((double)(splitmix(&s) >> 11) * 0x1p-53 * 2.0 - 1.0);
    cmd_begin(b, 10 + 2 * O.attrs);
    cmd_str(b, "VADD");
    cmd_str(b, KEY);
    cmd_str(b, "FP32");
    cmd_vec(b, tmp, O.dim);
    cmd_u(b, row);
    cmd_str(b, O.quant);
    cmd_str(b, "M");
    cmd_u(b, O.M);
    cmd_str(b, "EF");
    cmd_u(b, O.build_ef);
    if (O.attrs) {
        char js[48];
        snprintf(js, sizeof js, "{\"bucket\": %u}", row % 100);
        cmd_str(b, "SETATTR");
        cmd_str(b, js);
    }
}

typedef struct loader {
    conn *c;
    pthread_t th;
    uint32_t first, step;
} loader;

static void *load_main(void *arg)
{
    loader *L = arg;
    buf b[2] = { { 0 }, { 0 } };
    float *tmp = xmalloc(O.dim * sizeof *tmp);
    uint32_t inflight[2] = { 0, 0 }, row = L->first;
    int cur = 0;
    for (;;) {
        b[cur].len = 0;
        inflight[cur] = 0;
        for (; row < O.n && inflight[cur] < O.pipeline; row += L->step, inflight[cur]++)
            enc_vadd(&b[cur], row, tmp);
        if (inflight[cur]) conn_write(L->c, b[cur].p, b[cur].len);
        int prev = cur ^ 1;
        for (uint32_t i = 0; i < inflight[prev]; i++) {
            rval v;
            conn_head(L->c, &v);
            if (v.type != ':') die_reply("VADD", &v);
        }
        inflight[prev] = 0;
        if (!inflight[cur]) break;
        cur = prev;
    }
    free(tmp);
    free(b[0].p);
    free(b[1].p);
    return NULL;
}

static void build(conn **cs, uint32_t round, const char *op)
{
    loader *L = xmalloc(O.conns * sizeof *L);
    srv_cpu c0 = server_cpu();
    double cl0 = client_cpu_s(), t0 = now_s();
    for (uint32_t i = 0; i < O.conns; i++) {
        L[i] = (loader){ .c = cs[i], .first = i, .step = O.conns };
        if (pthread_create(&L[i].th, NULL, load_main, &L[i])) die("pthread_create", NULL);
    }
    for (uint32_t i = 0; i < O.conns; i++) pthread_join(L[i].th, NULL);
    double t = now_s() - t0;
    srv_cpu c1 = server_cpu();
    double cl1 = client_cpu_s();
    rval v;
    conn_cmdv(cs[0], &v, 2, (const char *const[]){ "VCARD", KEY });
    long long card = v.type == ':' ? v.n : -1;
    conn_cmdv(cs[0], &v, 3, (const char *const[]){ "MEMORY", "USAGE", KEY });
    long long mu = v.type == ':' ? v.n : -1;
    printf("{\"bench\":\"vfree\",\"phase\":\"build\",\"round\":%u,\"for\":\"%s\",\"n\":%u,\"count\":%lld,"
           "\"dim\":%u,\"quant\":\"%s\",\"M\":%u,\"build_ef\":%u,\"attrs\":%d,\"seconds\":%.2f,"
           "\"vadd_per_s\":%.0f,\"memory_usage\":%lld,\"bytes_per_vector\":%.1f,\"rss_kb\":%lld",
           round, op, O.n, card, O.dim, O.quant, O.M, O.build_ef, O.attrs, t, O.n / t, mu,
           card > 0 ? (double)mu / card : 0.0, rss_kb());
    print_cpu(c0, c1, cl0, cl1, t);
    printf("}\n");
    fflush(stdout);
    free(L);
}

/* ---- one op under the probe -------------------------------------------------------- */

static void ping_line(pinger *pg, const char *phase, uint32_t round, const char *op, double from,
                      double to)
{
    double *lat = xmalloc((pg->n ? pg->n : 1) * sizeof *lat);
    size_t m = 0;
    for (size_t i = 0; i < pg->n; i++)
        if (pg->at[i] >= from && pg->at[i] <= to) lat[m++] = pg->lat[i];
    printf("{\"bench\":\"vfree\",\"phase\":\"%s\",\"round\":%u,\"op\":\"%s\",\"interval_us\":%ld",
           phase, round, op, O.ping_interval_us);
    print_latency(lat, m);
    printf("}\n");
    fflush(stdout);
    free(lat);
}

static void run_op(conn **cs, pinger *pg, uint32_t round, const char *op)
{
    /* the reference: the probe alone, the set in place */
    pinger_start(pg);
    sleep_us(1000000);
    pinger_stop(pg);
    ping_line(pg, "ping_idle", round, op, 0, 1e300);

    const char *argv[2];
    int argc = 2;
    if (!strcmp(op, "unlink")) argv[0] = "UNLINK", argv[1] = KEY;
    else if (!strcmp(op, "del")) argv[0] = "DEL", argv[1] = KEY;
    else if (!strcmp(op, "flushall_async")) argv[0] = "FLUSHALL", argv[1] = "ASYNC";
    else argv[0] = "FLUSHALL", argc = 1;

    char lname[16];
    snprintf(lname, sizeof lname, "%s", argv[0]);
    for (char *q = lname; *q; q++) *q = (char)(*q | 0x20);
    long long us0 = cmd_usec(cs[1], lname);
    long long rss0 = rss_kb();
    pinger_start(pg);
    double tw = now_s();
    sleep_us(200000);
    srv_cpu c0 = server_cpu();
    double t0 = now_s();
    rval v;
    conn_cmdv(cs[0], &v, argc, argv);
    double tcmd = now_s() - t0;
    if (v.type == '-') die_reply(op, &v);
    /* Poll until the lazy-free thread has nothing left (never before the
     * first poll: a free that is quicker than one poll shows as one). */
    double tfree;
    do {
        tfree = now_s();
        if (lazy_pending(cs[1]) == 0) break;
        sleep_us(5000);
    } while (1);
    srv_cpu c1 = server_cpu();
    sleep_us(200000);
    pinger_stop(pg);
    long long rss1 = rss_kb();
    long long us1 = cmd_usec(cs[1], lname);
    printf("{\"bench\":\"vfree\",\"phase\":\"op\",\"round\":%u,\"op\":\"%s\",\"n\":%u,\"cmd_us\":%.1f,"
           "\"server_cmd_us\":%lld,\"free_ms\":%.1f",
           round, op, O.n, tcmd * 1e6, us1 - us0, (tfree - t0) * 1e3);
    if (c0.ok && c1.ok)
        printf(",\"free_cpu_s\":%.3f,\"loop_cpu_s\":%.3f,\"loop_runq_wait_ms\":%.2f",
               c1.workers_s - c0.workers_s, c1.loop_s - c0.loop_s,
               (c1.loop_wait_s - c0.loop_wait_s) * 1e3);
    printf(",\"rss_kb_before\":%lld,\"rss_kb_after\":%lld}\n", rss0, rss1);
    fflush(stdout);
    ping_line(pg, "during_free", round, op, t0, tfree);
    ping_line(pg, "window", round, op, tw, 1e300);
}

int main(int argc, char **argv)
{
    g_prog = "bench_vfree";
    parse_args(argc, argv);
    conn **cs = xmalloc(O.conns * sizeof *cs);
    for (uint32_t i = 0; i < O.conns; i++) cs[i] = conn_open();
    if (O.conns < 2) die("--conns must be at least 2 (one polls INFO during the free)", NULL);
    pinger pg;
    memset(&pg, 0, sizeof pg);
    pg.c = conn_open();
    pg.interval_us = O.ping_interval_us;
    double load1 = -1;
    FILE *lf = fopen("/proc/loadavg", "r");
    if (lf) {
        if (fscanf(lf, "%lf", &load1) != 1) load1 = -1;
        fclose(lf);
    }
    printf("{\"bench\":\"vfree\",\"phase\":\"setup\",\"n\":%u,\"dim\":%u,\"quant\":\"%s\",\"M\":%u,"
           "\"build_ef\":%u,\"attrs\":%d,\"rounds\":%u,\"ping_interval_us\":%ld,\"loadavg_1m\":%.2f}\n",
           O.n, O.dim, O.quant, O.M, O.build_ef, O.attrs, O.rounds, O.ping_interval_us, load1);
    fflush(stdout);
    for (uint32_t r = 0; r < O.rounds; r++)
        for (uint32_t i = 0; i < O.nops; i++) {
            const char *op = O.ops[(i + r) % O.nops];
            wait_lazy_idle(cs[0]);
            build(cs, r, op);
            run_op(cs, &pg, r, op);
        }
    wait_lazy_idle(cs[0]);
    for (uint32_t i = 0; i < O.conns; i++) conn_close(cs[i]);
    conn_close(pg.c);
    free(cs);
    free(pg.lat);
    free(pg.at);
    return 0;
}
