/* bench_flat.c -- exact FLAT search against the machine's memory bandwidth,
 * on one thread and split over several.
 *
 * What it prints (one JSON line per result):
 *   membw        a streaming sum over a buffer, 1..T threads, each thread
 *                summing its own contiguous share: GB/s of buffer read, the
 *                better of a plain sum and one with software prefetch (both
 *                printed).  Measured over --bw-mb of memory (default 2048
 *                MiB, far past any cache here: "dram") and at each index's
 *                vector-data size ("index-size": the working set a query
 *                sweeps, partly cache-resident when small).  Best pass of
 *                several, since noise only ever slows a pass down.
 *   flat         top-k exact search of random queries over an index of N
 *                random vectors: per-query latency (mean, p50, min) of the
 *                best round, scan_gbps = N*dim*4 bytes / mean latency,
 *                pct_of_membw = scan_gbps / index-size membw and
 *                pct_of_dram = scan_gbps / dram membw, at the same thread
 *                count.  threads=1 is flat_search_range over [0, used);
 *                threads=T splits it into T equal ranges, runs one on the
 *                calling thread and the others on persistent worker threads
 *                (woken per query through a condition variable, as a
 *                server's pool would), then flat_merge -- dispatch, wait
 *                and merge are all in the latency.  speedup_vs_1t is the
 *                1-thread mean / this mean.  cpu_share is the calling
 *                thread's CPU time / wall time in that round: ~1 when the
 *                threads really ran side by side, ~1/T when they shared a
 *                core (another process busy on this machine).
 *   flat-kernel  the one-to-many kernel alone over the same vectors (no
 *                selection, no live bytes, no prefetch but the kernel's
 *                own): what the scan costs beyond it.
 *   flat-split   --sweep: the first index's prefix [0, n) for small n,
 *                1 vs T threads, to find the size below which splitting
 *                costs more (dispatch, wake-up) than it saves.
 *   flat-dispatch  the round trip of an empty job to the workers.
 * All timed cases of one index run interleaved, round by round, so a burst
 * of load from elsewhere hits them alike.
 * Vectors: uniform in [-1, 1); cosine normalises them (FLAT expects the
 * caller to), dot uses them as they are.  Queries are drawn the same way.
 *
 * Usage: bench_flat [--n 16384,1000000] [--dim 384] [--k 10]
 *                   [--metrics l2,cosine,dot] [--threads 2] [--queries 200]
 *                   [--rounds 3] [--kernel auto] [--bw-mb 2048]
 *                   [--pages small|huge] [--sweep] [--seed S]
 * Queries per round: enough to scan ~4 GB, but at most --queries and at
 * least 20.
 * --pages huge allocates the index and bandwidth buffers with
 * madvise(MADV_HUGEPAGE) (transparent huge pages where the kernel has
 * them): the engine's default allocator is malloc, i.e. small pages.
 *
 * A benchmark, never a test: it asserts nothing about speed. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "engram/dist.h"
#include "engram/flat.h"

#define BENCH_MAX_THREADS 16
#define BENCH_MAX_SIZES   16
#define BENCH_BW_PASSES   7
#define BENCH_MIN_SCAN    (4.0 * 1024 * 1024 * 1024)   /* bytes a round scans at least */
#define BENCH_MAX_K       1024

typedef struct bench_opts {
    uint32_t sizes[BENCH_MAX_SIZES];
    int nsizes;
    uint32_t dim, k;
    int metrics[3], nmetrics;
    int threads, queries, rounds, sweep, huge;
    size_t bw_bytes;
    const char *kernel;
    uint64_t seed;
} bench_opts;

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_flat: %s\n", what);
    exit(1);
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform [-1, 1), normalised for cosine. */
static void rand_vec(float *v, uint32_t dim, int metric, uint64_t *s)
{
    double norm = 0;
    for (uint32_t j = 0; j < dim; j += 2) {
        uint64_t r = rng_next(s);
        v[j] = (float)((double)(r >> 40) / (double)(1u << 23) - 1.0);
        if (j + 1 < dim) v[j + 1] = (float)((double)(r & 0xFFFFFF) / (double)(1u << 23) - 1.0);
    }
    if (metric != DIST_COSINE) return;
    for (uint32_t j = 0; j < dim; j++) norm += (double)v[j] * v[j];
    float inv = (float)(1.0 / sqrt(norm));
    for (uint32_t j = 0; j < dim; j++) v[j] *= inv;
}

/* ---- allocation: malloc, or huge-page-advised mappings ------------------- */

static void *huge_alloc(void *ud, size_t n)
{
    (void)ud;
    if (n < (2u << 20)) return malloc(n);
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    madvise(p, n, MADV_HUGEPAGE);   /* a hint: ignored where THP is off */
    return p;
}

static void huge_free(void *ud, void *p, size_t n)
{
    (void)ud;
    if (!p) return;
    if (n < (2u << 20)) free(p);
    else munmap(p, n);
}

/* No realloc: its big blocks are our own mappings (growth copies). */
static const vec_allocator huge_allocator = { huge_alloc, huge_free, NULL, NULL };

static const vec_allocator *bench_alloc(const bench_opts *o)
{
    return o->huge ? &huge_allocator : &vec_default_allocator;
}

/* ---- worker threads: typed jobs, woken by a condition variable ---------- */

typedef enum { JOB_NONE, JOB_SEARCH, JOB_SUM, JOB_KERNEL, JOB_EMPTY, JOB_QUIT } job_kind;

typedef struct job {
    job_kind kind;
    /* JOB_SEARCH / JOB_KERNEL */
    const flat *f;
    const float *q;
    uint32_t k, lo, hi;
    vec_pair *out;
    uint32_t nout;
    float *dist;            /* JOB_KERNEL: scratch for FLAT_KERNEL_CHUNK */
    /* JOB_SUM */
    uint64_t (*sum_fn)(const uint64_t *p, size_t words);
    const uint64_t *buf;
    size_t words;
    uint64_t sum;
} job;

typedef struct worker {
    pthread_t tid;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    job j;
    int posted, done;       /* guarded by lock */
} worker;

static worker workers[BENCH_MAX_THREADS];
static int nworkers;

/* Streaming sums: four independent vector accumulators per step, so the
 * loop is bound by loads, not by an add chain.  Generic vectors need no
 * intrinsics; on x86 the widest the CPU has is chosen at start-up (a sum of
 * 16-byte loads keeps up with DRAM but not with the caches, and the scan's
 * kernel reads 64 bytes a load).  Each comes plain and with a software
 * prefetch of every line STREAM_PF_AHEAD bytes on -- what flat.c does on
 * large ranges, and on some machines worth a good part of the bandwidth --
 * and the better of the two is the machine's figure. */
#define STREAM_PF_AHEAD 12288
#define STREAM_SUM_BODY(vec, pf)                                                \
    vec a = { 0 }, b = a, c = a, d = a;                                         \
    const size_t lanes = sizeof(vec) / 8;                                       \
    size_t i = 0;                                                               \
    for (; i + 4 * lanes <= words; i += 4 * lanes) {                            \
        vec x0, x1, x2, x3;                                                     \
        for (size_t o = 0; pf && o < 4 * sizeof(vec); o += 64)                  \
            __builtin_prefetch((const char *)(p + i) + STREAM_PF_AHEAD + o, 0, 3); \
        memcpy(&x0, p + i, sizeof x0);                                          \
        memcpy(&x1, p + i + lanes, sizeof x1);                                  \
        memcpy(&x2, p + i + 2 * lanes, sizeof x2);                              \
        memcpy(&x3, p + i + 3 * lanes, sizeof x3);                              \
        a += x0, b += x1, c += x2, d += x3;                                     \
    }                                                                           \
    a += b + c + d;                                                             \
    uint64_t r = 0;                                                             \
    for (size_t l = 0; l < lanes; l++) r += a[l];                               \
    for (; i < words; i++) r += p[i];                                           \
    return r

typedef uint64_t (*stream_sum_fn)(const uint64_t *p, size_t words);
typedef struct stream_sums {
    const char *name;
    stream_sum_fn plain, prefetch;
} stream_sums;

typedef uint64_t v2u __attribute__((vector_size(16)));
static uint64_t stream_sum16(const uint64_t *p, size_t words) { STREAM_SUM_BODY(v2u, 0); }
static uint64_t stream_sum16_pf(const uint64_t *p, size_t words) { STREAM_SUM_BODY(v2u, 1); }

#if defined(__x86_64__)
typedef uint64_t v4u __attribute__((vector_size(32)));
typedef uint64_t v8u __attribute__((vector_size(64)));
__attribute__((target("avx2")))
static uint64_t stream_sum32(const uint64_t *p, size_t words) { STREAM_SUM_BODY(v4u, 0); }
__attribute__((target("avx2")))
static uint64_t stream_sum32_pf(const uint64_t *p, size_t words) { STREAM_SUM_BODY(v4u, 1); }
__attribute__((target("avx512f")))
static uint64_t stream_sum64(const uint64_t *p, size_t words) { STREAM_SUM_BODY(v8u, 0); }
__attribute__((target("avx512f")))
static uint64_t stream_sum64_pf(const uint64_t *p, size_t words) { STREAM_SUM_BODY(v8u, 1); }

static stream_sums stream_sum_pick(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        return (stream_sums){ "avx512", stream_sum64, stream_sum64_pf };
    if (__builtin_cpu_supports("avx2"))
        return (stream_sums){ "avx2", stream_sum32, stream_sum32_pf };
    return (stream_sums){ "16-byte", stream_sum16, stream_sum16_pf };
}
#else
static stream_sums stream_sum_pick(void)
{
    return (stream_sums){ "16-byte", stream_sum16, stream_sum16_pf };
}
#endif

static stream_sums sums;   /* set once in main, before the workers start */

#define FLAT_KERNEL_CHUNK 256

/* The kernel alone over vectors [lo, hi) of f: what the scan cannot beat. */
static float kernel_only(const flat *f, const float *q, uint32_t lo, uint32_t hi, float *d,
                         int l2, uint32_t dim)
{
    const dist_kernels *kern = flat_kernels(f);
    dist_many_fn *many = l2 ? kern->l2sq_many : kern->dot_many;
    float acc = 0;
    for (uint32_t b = lo; b < hi; b += FLAT_KERNEL_CHUNK) {
        uint32_t nb = hi - b < FLAT_KERNEL_CHUNK ? hi - b : FLAT_KERNEL_CHUNK;
        /* Slots are contiguous from slot 0: flat_vector(f, 0) is the base. */
        many(q, flat_vector(f, 0) + (size_t)b * dim, nb, dim, dim, d);
        acc += d[0];
    }
    return acc;
}

static int kernel_l2;       /* JOB_KERNEL's metric: set before the timed runs */
static uint32_t kernel_dim;

static void job_run(job *j)
{
    switch (j->kind) {
    case JOB_SEARCH:
        flat_search_range(j->f, j->q, j->k, j->lo, j->hi, NULL, NULL, j->out, &j->nout);
        break;
    case JOB_SUM: j->sum = j->sum_fn(j->buf, j->words); break;
    case JOB_KERNEL: j->sum = (uint64_t)kernel_only(j->f, j->q, j->lo, j->hi, j->dist,
                                                     kernel_l2, kernel_dim); break;
    default: break;
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->lock);
        while (!w->posted) pthread_cond_wait(&w->cond, &w->lock);
        w->posted = 0;
        job_kind kind = w->j.kind;
        pthread_mutex_unlock(&w->lock);
        if (kind == JOB_QUIT) return NULL;
        job_run(&w->j);
        pthread_mutex_lock(&w->lock);
        w->done = 1;
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->lock);
    }
}

static void worker_post(worker *w, const job *j)
{
    pthread_mutex_lock(&w->lock);
    w->j = *j;
    w->posted = 1;
    w->done = 0;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static void worker_wait(worker *w)
{
    pthread_mutex_lock(&w->lock);
    while (!w->done) pthread_cond_wait(&w->cond, &w->lock);
    pthread_mutex_unlock(&w->lock);
}

static void workers_start(int n)
{
    for (int i = 0; i < n; i++) {
        worker *w = &workers[i];
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->cond, NULL);
        if (pthread_create(&w->tid, NULL, worker_main, w)) die("pthread_create failed");
    }
    nworkers = n;
}

static void workers_stop(void)
{
    job q = { .kind = JOB_QUIT };
    for (int i = 0; i < nworkers; i++) {
        worker_post(&workers[i], &q);
        pthread_join(workers[i].tid, NULL);
        pthread_mutex_destroy(&workers[i].lock);
        pthread_cond_destroy(&workers[i].cond);
    }
    nworkers = 0;
}

/* Run jobs[0..n): jobs 1.. on workers, job 0 here; wait for all. */
static void run_parallel(job *jobs, int n)
{
    for (int i = 1; i < n; i++) worker_post(&workers[i - 1], &jobs[i]);
    job_run(&jobs[0]);
    for (int i = 1; i < n; i++) {
        worker_wait(&workers[i - 1]);
        jobs[i] = workers[i - 1].j;
    }
}

/* ---- memory bandwidth ---------------------------------------------------- */

static volatile uint64_t bench_sink;
static double dram_bw[BENCH_MAX_THREADS + 1];   /* membw over --bw-mb, per thread count */

/* GB/s of the best of BENCH_BW_PASSES passes of t threads over buf. */
static double membw(const uint64_t *buf, size_t bytes, int t, stream_sum_fn fn)
{
    size_t words = bytes / 8, share = words / (size_t)t;
    job jobs[BENCH_MAX_THREADS];
    double best = 0;
    for (int pass = 0; pass < BENCH_BW_PASSES + 1; pass++) {   /* first: warm-up */
        for (int i = 0; i < t; i++)
            jobs[i] = (job){ .kind = JOB_SUM, .sum_fn = fn, .buf = buf + share * (size_t)i,
                             .words = i == t - 1 ? words - share * (size_t)i : share };
        double t0 = now_ns();
        run_parallel(jobs, t);
        double gbps = (double)bytes / (now_ns() - t0);
        for (int i = 0; i < t; i++) bench_sink += jobs[i].sum;
        if (pass > 0 && gbps > best) best = gbps;
    }
    return best;
}

static uint64_t *bw_buffer(const bench_opts *o, size_t bytes)
{
    const vec_allocator *al = bench_alloc(o);
    uint64_t *b = al->alloc(al->ud, bytes);
    if (!b) die("out of memory (bandwidth buffer)");
    for (size_t i = 0; i < bytes / 8; i++) b[i] = i;   /* fault every page in */
    return b;
}

/* membw at `bytes` for 1..threads threads into bw[1..threads] (the better
 * of plain and prefetching sums); printed. */
static void membw_report(const bench_opts *o, size_t bytes, const char *what, double *bw)
{
    uint64_t *b = bw_buffer(o, bytes);
    for (int t = 1; t <= o->threads; t++) {
        double plain = membw(b, bytes, t, sums.plain), pf = membw(b, bytes, t, sums.prefetch);
        bw[t] = plain > pf ? plain : pf;
        printf("{\"bench\":\"membw\",\"what\":\"%s\",\"bytes\":%zu,\"threads\":%d,"
               "\"pages\":\"%s\",\"loads\":\"%s\",\"gbps\":%.2f,\"gbps_plain\":%.2f,"
               "\"gbps_prefetch\":%.2f}\n",
               what, bytes, t, o->huge ? "huge" : "small", sums.name, bw[t], plain, pf);
        fflush(stdout);
    }
    bench_alloc(o)->free(NULL, b, bytes);
}

/* ---- searches ------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct timing {
    double mean_ns, p50_ns, min_ns;
    double cpu_share;       /* calling thread's CPU time / wall time, that round */
} timing;

static vec_pair part_out[BENCH_MAX_THREADS][BENCH_MAX_K];
static float kernel_scratch[BENCH_MAX_THREADS][FLAT_KERNEL_CHUNK];

/* One query over [0, n) in t parts; the answer into out. */
static uint32_t search_split(const flat *f, const float *q, uint32_t k, uint32_t n, int t,
                             job_kind kind, vec_pair *out)
{
    job jobs[BENCH_MAX_THREADS];
    const vec_pair *parts[BENCH_MAX_THREADS];
    uint32_t counts[BENCH_MAX_THREADS], nout = 0;
    for (int i = 0; i < t; i++)
        jobs[i] = (job){ .kind = kind, .f = f, .q = q, .k = k,
                         .lo = (uint32_t)((uint64_t)n * (uint64_t)i / (uint64_t)t),
                         .hi = (uint32_t)((uint64_t)n * (uint64_t)(i + 1) / (uint64_t)t),
                         .out = part_out[i], .dist = kernel_scratch[i] };
    if (t == 1 && kind == JOB_SEARCH) {
        flat_search_range(f, q, k, 0, n, NULL, NULL, out, &nout);
        return nout;
    }
    run_parallel(jobs, t);
    if (kind != JOB_SEARCH) {
        for (int i = 0; i < t; i++) bench_sink += jobs[i].sum;
        return 0;
    }
    for (int i = 0; i < t; i++) parts[i] = part_out[i], counts[i] = jobs[i].nout;
    flat_merge(parts, counts, t, k, out, &nout);
    return nout;
}

typedef struct bench_case {
    int threads;
    job_kind kind;
    timing best;            /* out: the round with the lowest mean */
} bench_case;

static double cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* `rounds` rounds of nq queries per case, the cases interleaved round by
 * round so that a burst of load from elsewhere hits them alike; each keeps
 * its best round (noise only ever slows a round down). */
static void time_cases(const flat *f, const float *qs, uint32_t nq, uint32_t dim, uint32_t k,
                       uint32_t n, bench_case *cases, int ncases, int rounds)
{
    double *lat = malloc(nq * sizeof *lat);
    vec_pair out[BENCH_MAX_K];
    if (!lat) die("out of memory");
    for (int c = 0; c < ncases; c++) {
        cases[c].best = (timing){ 1e300, 0, 0, 0 };
        search_split(f, qs, k, n, cases[c].threads, cases[c].kind, out);   /* warm-up */
    }
    for (int r = 0; r < rounds; r++) {
        for (int c = 0; c < ncases; c++) {
            double sum = 0, c0 = cpu_ns(), w0 = now_ns();
            for (uint32_t i = 0; i < nq; i++) {
                double t0 = now_ns();
                search_split(f, qs + (size_t)i * dim, k, n, cases[c].threads, cases[c].kind, out);
                lat[i] = now_ns() - t0;
                sum += lat[i];
            }
            double share = (cpu_ns() - c0) / (now_ns() - w0);
            qsort(lat, nq, sizeof *lat, cmp_double);
            if (sum / nq < cases[c].best.mean_ns)
                cases[c].best = (timing){ sum / nq, lat[nq / 2], lat[0], share };
        }
    }
    free(lat);
}

/* Every split answer must equal the single-thread one: a benchmark of a
 * wrong answer is worthless, so it checks before it times. */
static void check_split(const flat *f, const float *qs, uint32_t dim, uint32_t k, uint32_t n,
                        int t)
{
    vec_pair a[BENCH_MAX_K], b[BENCH_MAX_K];
    for (uint32_t i = 0; i < 3; i++) {
        uint32_t na = search_split(f, qs + (size_t)i * dim, k, n, 1, JOB_SEARCH, a);
        uint32_t nb = search_split(f, qs + (size_t)i * dim, k, n, t, JOB_SEARCH, b);
        if (na != nb || memcmp(a, b, na * sizeof *a)) die("split search differs from whole");
    }
}

static flat *build_index(const bench_opts *o, int metric, uint32_t n, const dist_kernels *kern,
                         double *build_s)
{
    flat_params p = { .dim = o->dim, .metric = (dist_metric)metric, .kernels = kern,
                      .alloc = bench_alloc(o) };
    int err = 0;
    flat *f = flat_new(&p, &err);
    float *v = malloc(o->dim * sizeof *v);
    uint64_t s = o->seed ^ ((uint64_t)n << 8) ^ (uint64_t)metric;
    double t0 = now_ns();
    if (!f || !v || flat_reserve(f, n)) die("out of memory (index)");
    for (uint32_t i = 0; i < n; i++) {
        uint32_t id;
        rand_vec(v, o->dim, metric, &s);
        if (flat_insert(f, v, &id)) die("insert failed");
    }
    *build_s = (now_ns() - t0) / 1e9;
    free(v);
    return f;
}

static void print_search(const char *bench, const bench_opts *o, const flat *f, int metric,
                         uint32_t n, int t, uint32_t nq, timing tm, double bw, double base_mean)
{
    double bytes = (double)n * o->dim * sizeof(float), gbps = bytes / tm.mean_ns;
    printf("{\"bench\":\"%s\",\"n\":%u,\"dim\":%u,\"metric\":\"%s\",\"k\":%u,\"threads\":%d,"
           "\"kernel\":\"%s\",\"pages\":\"%s\",\"queries\":%u,\"mean_us\":%.1f,\"p50_us\":%.1f,"
           "\"min_us\":%.1f,\"scan_gbps\":%.2f,\"membw_gbps\":%.2f,\"pct_of_membw\":%.1f,"
           "\"dram_gbps\":%.2f,\"pct_of_dram\":%.1f,\"speedup_vs_1t\":%.2f,\"cpu_share\":%.2f}\n",
           bench, n, o->dim, dist_metric_name((dist_metric)metric), o->k, t,
           flat_kernels(f)->name, o->huge ? "huge" : "small", nq, tm.mean_ns / 1e3,
           tm.p50_ns / 1e3, tm.min_ns / 1e3, gbps, bw, 100.0 * gbps / bw, dram_bw[t],
           100.0 * gbps / dram_bw[t], base_mean / tm.mean_ns, tm.cpu_share);
    fflush(stdout);
}

static void bench_size(const bench_opts *o, uint32_t n, const dist_kernels *kern)
{
    size_t bytes = (size_t)n * o->dim * sizeof(float);
    double bw[BENCH_MAX_THREADS + 1];
    membw_report(o, bytes, "index-size", bw);
    uint32_t nq = (uint32_t)(BENCH_MIN_SCAN / (double)bytes);
    if (nq > (uint32_t)o->queries) nq = (uint32_t)o->queries;
    if (nq < 20) nq = 20;
    for (int mi = 0; mi < o->nmetrics; mi++) {
        int metric = o->metrics[mi];
        double build_s;
        flat *f = build_index(o, metric, n, kern, &build_s);
        float *qs = malloc((size_t)nq * o->dim * sizeof *qs);
        uint64_t s = o->seed ^ 0x51ED2701u ^ (uint64_t)n;
        if (!qs) die("out of memory");
        for (uint32_t i = 0; i < nq; i++) rand_vec(qs + (size_t)i * o->dim, o->dim, metric, &s);
        printf("{\"bench\":\"flat-build\",\"n\":%u,\"dim\":%u,\"metric\":\"%s\",\"seconds\":%.2f}\n",
               n, o->dim, dist_metric_name((dist_metric)metric), build_s);
        /* flat at 1..T threads, then the kernel alone (the scan's own
         * ceiling) at 1..T, all interleaved. */
        bench_case cases[2 * BENCH_MAX_THREADS];
        int nc = 0;
        for (int kind = 0; kind < 2; kind++)
            for (int t = 1; t <= o->threads; t++)
                cases[nc++] = (bench_case){ t, kind ? JOB_KERNEL : JOB_SEARCH, { 0, 0, 0, 0 } };
        for (int t = 2; t <= o->threads; t++) check_split(f, qs, o->dim, o->k, n, t);
        kernel_l2 = metric == DIST_L2;
        kernel_dim = o->dim;
        time_cases(f, qs, nq, o->dim, o->k, n, cases, nc, o->rounds);
        for (int c = 0; c < nc; c++)
            print_search(cases[c].kind == JOB_KERNEL ? "flat-kernel" : "flat", o, f, metric, n,
                         cases[c].threads, nq, cases[c].best, bw[cases[c].threads],
                         cases[c - (cases[c].threads - 1)].best.mean_ns);
        if (o->sweep && mi == 0 && o->threads > 1) {
            for (uint32_t m = 256; m <= n; m *= 2) {
                uint32_t sq = nq * (n / m) < 20000 ? nq * (n / m) : 20000;
                float *sqs = malloc((size_t)sq * o->dim * sizeof *sqs);
                if (!sqs) die("out of memory");
                for (uint32_t i = 0; i < sq; i++)
                    rand_vec(sqs + (size_t)i * o->dim, o->dim, metric, &s);
                bench_case sc[2] = { { 1, JOB_SEARCH, { 0, 0, 0, 0 } },
                                     { o->threads, JOB_SEARCH, { 0, 0, 0, 0 } } };
                time_cases(f, sqs, sq, o->dim, o->k, m, sc, 2, o->rounds);
                timing t1 = sc[0].best, tt = sc[1].best;
                printf("{\"bench\":\"flat-split\",\"n\":%u,\"dim\":%u,\"metric\":\"%s\","
                       "\"threads\":%d,\"queries\":%u,\"mean_us_1t\":%.2f,\"mean_us\":%.2f,"
                       "\"p50_us_1t\":%.2f,\"p50_us\":%.2f,\"speedup_vs_1t\":%.2f}\n",
                       m, o->dim, dist_metric_name((dist_metric)metric), o->threads, sq,
                       t1.mean_ns / 1e3, tt.mean_ns / 1e3, t1.p50_ns / 1e3, tt.p50_ns / 1e3,
                       t1.mean_ns / tt.mean_ns);
                fflush(stdout);
                free(sqs);
                if (m > UINT32_MAX / 2) break;
            }
        }
        free(qs);
        flat_free(f);
    }
}

/* Round trip of an empty job to every worker: the floor of a split. */
static void bench_dispatch(int t)
{
    job jobs[BENCH_MAX_THREADS];
    double *lat = malloc(20000 * sizeof *lat), sum = 0;
    if (!lat) die("out of memory");
    for (int i = 0; i < 20000; i++) {
        for (int j = 0; j < t; j++) jobs[j] = (job){ .kind = JOB_EMPTY };
        double t0 = now_ns();
        run_parallel(jobs, t);
        lat[i] = now_ns() - t0;
        sum += lat[i];
    }
    qsort(lat, 20000, sizeof *lat, cmp_double);
    printf("{\"bench\":\"flat-dispatch\",\"threads\":%d,\"mean_us\":%.2f,\"p50_us\":%.2f,"
           "\"min_us\":%.2f}\n", t, sum / 20000 / 1e3, lat[10000] / 1e3, lat[0] / 1e3);
    free(lat);
}

/* ---- options ------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_flat [--n N,N..] [--dim D] [--k K] [--metrics l2,cosine,dot]\n"
            "                  [--threads T] [--queries Q] [--rounds R] [--kernel NAME]\n"
            "                  [--bw-mb MB] [--pages small|huge] [--sweep] [--seed S]\n");
    exit(2);
}

static unsigned long parse_num(const char *s, unsigned long lo, unsigned long hi)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) usage();
    return v;
}

static void parse_opts(int argc, char **argv, bench_opts *o)
{
    *o = (bench_opts){ .sizes = { 16384, 1000000 }, .nsizes = 2, .dim = 384, .k = 10,
                       .metrics = { DIST_L2, DIST_COSINE, DIST_DOT }, .nmetrics = 3,
                       .threads = 2, .queries = 200, .rounds = 3, .kernel = "auto",
                       .bw_bytes = (size_t)2048 << 20, .seed = 42 };
    for (int a = 1; a < argc; a++) {
        const char *opt = argv[a], *val = a + 1 < argc ? argv[a + 1] : NULL;
        if (strcmp(opt, "--sweep") == 0) {
            o->sweep = 1;
            continue;
        }
        if (!val) usage();
        a++;
        if (strcmp(opt, "--n") == 0 || strcmp(opt, "--metrics") == 0) {
            char buf[512], *save = NULL;
            int is_n = opt[2] == 'n';
            snprintf(buf, sizeof buf, "%s", val);
            if (is_n) o->nsizes = 0;
            else o->nmetrics = 0;
            for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                dist_metric m;
                if (is_n && o->nsizes < BENCH_MAX_SIZES)
                    o->sizes[o->nsizes++] = (uint32_t)parse_num(t, 1, 100000000);
                else if (!is_n && o->nmetrics < 3 && dist_metric_parse(t, strlen(t), &m) == 0)
                    o->metrics[o->nmetrics++] = (int)m;
                else usage();
            }
            if ((is_n && !o->nsizes) || (!is_n && !o->nmetrics)) usage();
        } else if (strcmp(opt, "--dim") == 0) o->dim = (uint32_t)parse_num(val, 1, 65536);
        else if (strcmp(opt, "--k") == 0) o->k = (uint32_t)parse_num(val, 1, BENCH_MAX_K);
        else if (strcmp(opt, "--threads") == 0)
            o->threads = (int)parse_num(val, 1, BENCH_MAX_THREADS);
        else if (strcmp(opt, "--queries") == 0) o->queries = (int)parse_num(val, 1, 1000000);
        else if (strcmp(opt, "--rounds") == 0) o->rounds = (int)parse_num(val, 1, 1000);
        else if (strcmp(opt, "--bw-mb") == 0) o->bw_bytes = parse_num(val, 1, 1 << 20) << 20;
        else if (strcmp(opt, "--seed") == 0) o->seed = parse_num(val, 0, ~0ul);
        else if (strcmp(opt, "--kernel") == 0) o->kernel = val;
        else if (strcmp(opt, "--pages") == 0) {
            if (strcmp(val, "huge") == 0) o->huge = 1;
            else if (strcmp(val, "small") != 0) usage();
        } else usage();
    }
}

int main(int argc, char **argv)
{
    bench_opts o;
    parse_opts(argc, argv, &o);
    if (dist_select(o.kernel)) die("unknown or unsupported --kernel");
    const dist_kernels *kern = dist_active();
    sums = stream_sum_pick();
    workers_start(o.threads - 1);
    printf("{\"bench\":\"flat-env\",\"kernel\":\"%s\",\"membw_loads\":\"%s\",\"cpus\":%ld,"
           "\"threads\":%d,\"pages\":\"%s\"}\n", kern->name, sums.name,
           sysconf(_SC_NPROCESSORS_ONLN), o.threads, o.huge ? "huge" : "small");
    membw_report(&o, o.bw_bytes, "dram", dram_bw);
    if (o.threads > 1) bench_dispatch(o.threads);
    for (int i = 0; i < o.nsizes; i++) bench_size(&o, o.sizes[i], kern);
    workers_stop();
    return 0;
}
