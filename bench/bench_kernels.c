/* bench_kernels.c -- speed of every distance kernel variant this CPU runs.
 *
 * For each supported variant, metric (l2, dot) and dimension it measures:
 *   pair-l1    k->l2sq / k->dot over a query and 4 base vectors that stay
 *              in L1 (at most 30 KB) -- the HNSW case: one distance per call,
 *              through the function pointer, as the index calls it.
 *   many-l1    k->*_many over 8 base vectors in L1 (at most 54 KB with the
 *              query; L2-resident at 1536): the best case the kernels reach.
 *   many-dram  k->*_many over a 64 MB block, one pass, so the vectors stream
 *              from memory: reports GB/s of base vectors read.
 * Cosine is not measured separately: vectors are normalised on insert, so
 * cosine runs the dot kernel (1 - dot).
 *
 * Quantised vectors (quant.h): for every supported int8 dot-product and
 * Hamming variant, at dims 128, 768 and 1536 (or the dims given, rounded up
 * to whole 64-bit words for Hamming), mode pair-l1 as above: one call per
 * distance over 4 base vectors in L1.  Lines "kernel-quant", with
 *   ns, speedup_vs_scalar   as above (scalar: the plain-loop reference of
 *                           dist_scalar.c, measured in the same run);
 *   gdims_per_s             dimensions per ns: int8 components, or bits.
 *
 * Figures
 *   ns         per distance; the best of many short timed samples, since
 *              noise (other processes on shared cores) only ever adds time.
 *   gflops     2*dim flops per dot (mul+add, one FMA), 3*dim per l2 (sub,
 *              mul, add) divided by ns.
 *   speedup_vs_scalar  scalar's ns / this ns, same metric, dim, mode, run.
 *   pct_of_peak        gflops / the measured peak below.
 *   fma_pct_of_peak    2*dim/ns / peak: how busy the FMA units are (the
 *              same as pct_of_peak for dot; for l2 the sub runs beside it).
 * Peak: on x86 the AVX-512 / AVX2 files carry a probe that runs only
 * independent FMAs on registers (no loads); its rate is the core's peak FMA
 * throughput at the current clock.  A chain of dependent integer adds (one
 * per cycle) estimates that clock, giving FMAs per cycle as a sanity check
 * against the CPU's data sheet.
 *
 * Usage: bench_kernels [--quant] [dim ...]
 *   (default dims: 128 384 768 1536 for float, 128 768 1536 for quantised;
 *   --quant: only the quantised kernels)
 *
 * A benchmark, never a test: it prints one JSON line per result and asserts
 * nothing about speed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engram/dist.h"

/* Many short samples, keep the best: on shared cores noise only ever adds
 * time, and a clean 0.2 ms window is far likelier than a clean 20 ms one.
 * In-cache cases take samples of >= BENCH_SAMPLE_NS until BENCH_BUDGET_NS
 * is spent; a DRAM sample is one full pass, BENCH_DRAM_SAMPLES of them. */
#define BENCH_SAMPLE_NS 2e5
#define BENCH_BUDGET_NS 6e7
#define BENCH_DRAM_SAMPLES 11
#define BENCH_DRAM_BYTES (64u << 20)
#define BENCH_PAIR_VECS 4
#define BENCH_MANY_VECS 8

static const size_t bench_default_dims[] = {128, 384, 768, 1536};
static const size_t bench_quant_dims[] = {128, 768, 1536};
#define BENCH_MAX_DIM 65536
enum { MODE_PAIR_L1, MODE_MANY_L1, MODE_MANY_DRAM, MODE_COUNT };
static const char *const mode_names[] = {"pair-l1", "many-l1", "many-dram"};

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* `bytes` bytes, 64-byte aligned: the benchmark measures the kernels, not
 * line splits (the tests cover unaligned pointers).  Exits when out of
 * memory. */
static void *bench_alloc(size_t bytes)
{
    void *p = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (!p) {
        fprintf(stderr, "bench_kernels: out of memory\n");
        exit(1);
    }
    return p;
}

/* xorshift64: deterministic filler, one step per value. */
static uint64_t bench_rand(uint64_t *s)
{
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}

static float *floats_new(size_t n)
{
    float *p = bench_alloc(n * sizeof(float));
    uint64_t s = 0x2545F4914F6CDD1Dull ^ n;
    for (size_t i = 0; i < n; i++)
        p[i] = (float)((double)(bench_rand(&s) >> 40) / (double)(1u << 23) - 1.0);
    return p;
}

/* The sink keeps results observable so no call can be elided. */
static volatile float bench_sink;

typedef struct bench_data {
    const float *q, *base;  /* base: n vectors, dim floats apart */
    size_t n, dim;
    float *out;
} bench_data;

/* Runs `reps` repetitions of one mode; returns distances computed.  The
 * fields are copied to locals first: through `d` the compiler would have to
 * reload them after every call (the callee might change *d), and that alone
 * costs the pair kernels ~25% at dim 768 -- a cost of this loop, not of the
 * kernels. */
static size_t bench_run(const dist_kernels *k, int l2, int mode, const bench_data *d,
                        size_t reps)
{
    const float *q = d->q, *base = d->base;
    const size_t n = d->n, dim = d->dim;
    float *out = d->out, acc = 0.0f;
    dist_pair_fn *pair = l2 ? k->l2sq : k->dot;
    dist_many_fn *many = l2 ? k->l2sq_many : k->dot_many;
    for (size_t r = 0; r < reps; r++) {
        if (mode == MODE_PAIR_L1) {
            for (size_t i = 0; i < n; i++) acc += pair(q, base + i * dim, dim);
        } else {
            many(q, base, n, dim, dim, out);
            acc += out[r % n];
        }
    }
    bench_sink = acc;
    return reps * n;
}

/* Runs `reps` repetitions of one measurement; returns distances computed. */
typedef size_t bench_fn(const void *ctx, size_t reps);

/* ns per distance: the best of many samples (see BENCH_SAMPLE_NS).  A
 * streaming measurement (dram) is one pass per sample, not calibrated. */
static double bench_best_ns(bench_fn *run, const void *ctx, int dram)
{
    size_t reps = 1;
    if (!dram) {
        for (;;) { /* calibrate; also warms the caches */
            double t0 = now_ns();
            run(ctx, reps);
            if (now_ns() - t0 >= BENCH_SAMPLE_NS) break;
            reps *= 2;
        }
    }
    double best = 1e300, start = now_ns();
    for (int s = 0;; s++) {
        double t0 = now_ns();
        size_t count = run(ctx, reps);
        double t1 = now_ns(), ns = (t1 - t0) / (double)count;
        if (ns < best) best = ns;
        if (dram ? s + 1 >= BENCH_DRAM_SAMPLES : t1 - start >= BENCH_BUDGET_NS) break;
    }
    return best;
}

typedef struct bench_float {
    const dist_kernels *k;
    int l2, mode;
    const bench_data *d;
} bench_float;

static size_t bench_float_run(const void *ctx, size_t reps)
{
    const bench_float *f = ctx;
    return bench_run(f->k, f->l2, f->mode, f->d, reps);
}

static double bench_ns(const dist_kernels *k, int l2, int mode, const bench_data *d)
{
    bench_float f = {.k = k, .l2 = l2, .mode = mode, .d = d};
    return bench_best_ns(bench_float_run, &f, mode == MODE_MANY_DRAM);
}

/* ---- quantised vectors ------------------------------------------------------- */

/* A query and BENCH_PAIR_VECS base vectors, `bytes` apart: int8 codes in
 * [-127, 127] or random bit words. */
typedef struct bench_quant {
    const dist_i8_kernels *i8; /* exactly one of i8, bin */
    const dist_bin_kernels *bin;
    const void *q, *base;
    size_t dim, bytes;
} bench_quant;

static size_t bench_quant_run(const void *ctx, size_t reps)
{
    const bench_quant *b = ctx;
    const unsigned char *q = b->q, *base = b->base;
    const size_t dim = b->dim, bytes = b->bytes, words = bytes / sizeof(uint64_t);
    uint64_t acc = 0;
    if (b->i8) {
        dist_i8_dot_fn *dot = b->i8->dot;
        for (size_t r = 0; r < reps; r++)
            for (size_t i = 0; i < BENCH_PAIR_VECS; i++)
                acc += (uint64_t)dot((const int8_t *)q, (const int8_t *)(base + i * bytes), dim);
    } else {
        dist_hamming_fn *ham = b->bin->hamming;
        for (size_t r = 0; r < reps; r++)
            for (size_t i = 0; i < BENCH_PAIR_VECS; i++)
                acc += ham((const uint64_t *)q, (const uint64_t *)(base + i * bytes), words);
    }
    bench_sink = (float)acc;
    return reps * BENCH_PAIR_VECS;
}

/* n random bytes; for int8 codes (codes set), each in [-127, 127]. */
static void *bytes_new(size_t n, int codes)
{
    unsigned char *p = bench_alloc(n);
    uint64_t s = 0x9E3779B97F4A7C15ull ^ n;
    for (size_t i = 0; i < n; i++) {
        uint64_t r = bench_rand(&s);
        p[i] = codes ? (unsigned char)(int8_t)((int)(r % 255u) - 127) : (unsigned char)r;
    }
    return p;
}

static void bench_quant_print(const char *kernel, const char *variant, size_t dim, double ns,
                              double scalar_ns)
{
    printf("{\"bench\":\"kernel-quant\",\"kernel\":\"%s\",\"variant\":\"%s\",\"dim\":%zu,"
           "\"mode\":\"pair-l1\",\"ns\":%.2f,\"gdims_per_s\":%.2f,\"speedup_vs_scalar\":%.2f}\n",
           kernel, variant, dim, ns, (double)dim / ns, scalar_ns / ns);
    fflush(stdout);
}

/* Every supported int8 and Hamming variant at one dim, scalar first. */
static void bench_quant_dim(size_t dim)
{
    for (int binary = 0; binary <= 1; binary++) {
        size_t bytes = binary ? (dim + 63) / 64 * sizeof(uint64_t) : dim;
        size_t bits = binary ? bytes * 8 : dim;
        bench_quant b = {.q = bytes_new(bytes, !binary),
                         .base = bytes_new(bytes * BENCH_PAIR_VECS, !binary),
                         .dim = dim,
                         .bytes = bytes};
        const char *const *names = binary ? dist_bin_compiled_names() : dist_i8_compiled_names();
        const char *kernel = binary ? "hamming" : "int8-dot";
        b.i8 = binary ? NULL : &dist_scalar_i8;
        b.bin = binary ? &dist_scalar_bin : NULL;
        double scalar_ns = bench_best_ns(bench_quant_run, &b, 0);
        bench_quant_print(kernel, "scalar", bits, scalar_ns, scalar_ns);
        for (size_t v = 0; names[v]; v++) {
            b.i8 = binary ? NULL : dist_i8_by_name(names[v]);
            b.bin = binary ? dist_bin_by_name(names[v]) : NULL;
            if (!b.i8 && !b.bin) continue; /* the CPU lacks it */
            if (b.i8 == &dist_scalar_i8 || b.bin == &dist_scalar_bin) continue;
            bench_quant_print(kernel, names[v], bits, bench_best_ns(bench_quant_run, &b, 0),
                              scalar_ns);
        }
        free((void *)b.q);
        free((void *)b.base);
    }
}

/* ---- peak -------------------------------------------------------------------- */

#if defined(__x86_64__)
/* Bench-only hooks in src/vec/dist_avx2.c and src/vec/dist_avx512.c, not part of
 * dist.h: iters x (12 x 8 | 16 x 16) lanes of independent FMAs. */
float dist_avx2_peak_probe(size_t iters);
float dist_avx512_peak_probe(size_t iters);

/* One dependent add per cycle, ten per iteration: the loop's own counter
 * runs in parallel, so the chain sets the pace. */
static double bench_ghz(void)
{
    const size_t iters = 100000; /* ~0.3 ms */
    double best = 0;
    for (int s = 0; s < 200; s++) {
        uint64_t x = 0;
        double t0 = now_ns();
        for (size_t i = 0; i < iters; i++)
            __asm__ volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
                             "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
                             "add $1, %0\n\tadd $1, %0"
                             : "+r"(x));
        double ghz = (double)iters * 10.0 / (now_ns() - t0);
        if (ghz > best) best = ghz;
    }
    return best;
}

/* GFLOP/s of the probe for `name`, or 0 if the CPU lacks it. */
static double bench_peak(const char *name, int *lanes)
{
    float (*probe)(size_t);
    double flops_per_iter;
    if (strcmp(name, "avx512") == 0) {
        probe = dist_avx512_peak_probe, flops_per_iter = 16.0 * 16 * 2, *lanes = 16;
    } else if (strcmp(name, "avx2") == 0) {
        probe = dist_avx2_peak_probe, flops_per_iter = 12.0 * 8 * 2, *lanes = 8;
    } else {
        return 0;
    }
    if (!dist_kernels_by_name(name)) return 0;
    const size_t iters = 100000; /* ~0.2 ms */
    double best = 0;
    for (int s = 0; s < 200; s++) {
        double t0 = now_ns();
        bench_sink = probe(iters);
        double g = (double)iters * flops_per_iter / (now_ns() - t0);
        if (g > best) best = g;
    }
    return best;
}

/* Prints one line per probe and returns the machine's peak (the best). */
static double bench_report_peak(void)
{
    double ghz = bench_ghz(), peak = 0;
    const char *names[] = {"avx512", "avx2"};
    for (int i = 0; i < 2; i++) {
        int lanes = 0;
        double g = bench_peak(names[i], &lanes);
        if (g <= 0) continue;
        printf("{\"bench\":\"kernel-peak\",\"variant\":\"%s\",\"gflops\":%.1f,"
               "\"ghz_est\":%.2f,\"fma_per_cycle\":%.2f,\"lanes\":%d}\n",
               names[i], g, ghz, g / (ghz * 2.0 * lanes), lanes);
        if (g > peak) peak = g;
    }
    return peak;
}
#else
static double bench_report_peak(void)
{
    return 0; /* no probe for this architecture: pct_of_peak omitted */
}
#endif

/* ---- main -------------------------------------------------------------------- */

static void bench_print(const char *variant, int l2, size_t dim, int mode, double ns,
                        double scalar_ns, double peak)
{
    double flops = (l2 ? 3.0 : 2.0) * (double)dim, gflops = flops / ns;
    printf("{\"bench\":\"kernel\",\"variant\":\"%s\",\"metric\":\"%s\",\"dim\":%zu,"
           "\"mode\":\"%s\",\"ns\":%.2f,\"gflops\":%.2f,\"speedup_vs_scalar\":%.2f",
           variant, l2 ? "l2" : "dot", dim, mode_names[mode], ns, gflops, scalar_ns / ns);
    if (peak > 0)
        printf(",\"pct_of_peak\":%.1f,\"fma_pct_of_peak\":%.1f", 100.0 * gflops / peak,
               100.0 * 2.0 * (double)dim / ns / peak);
    if (mode == MODE_MANY_DRAM) printf(",\"gbps\":%.2f", (double)dim * sizeof(float) / ns);
    printf("}\n");
    fflush(stdout);
}

/* Every float variant at one dim, in each mode and metric, scalar first. */
static void bench_float_dim(size_t dim, float *block, size_t block_floats, float *out,
                            double peak)
{
    const char *const *names = dist_compiled_names();
    float *q = floats_new(dim);
    for (int mode = 0; mode < MODE_COUNT; mode++) {
        bench_data d = {.q = q, .base = block, .dim = dim, .out = out};
        d.n = mode == MODE_PAIR_L1   ? BENCH_PAIR_VECS
              : mode == MODE_MANY_L1 ? BENCH_MANY_VECS
                                     : block_floats / dim;
        for (int l2 = 0; l2 <= 1; l2++) {
            double scalar_ns = bench_ns(&dist_scalar_kernels, l2, mode, &d);
            bench_print("scalar", l2, dim, mode, scalar_ns, scalar_ns, peak);
            for (size_t v = 0; names[v]; v++) {
                const dist_kernels *k = dist_kernels_by_name(names[v]);
                if (!k || k == &dist_scalar_kernels) continue;
                bench_print(k->name, l2, dim, mode, bench_ns(k, l2, mode, &d), scalar_ns, peak);
            }
        }
    }
    free(q);
}

int main(int argc, char **argv)
{
    size_t dims[64], ndims = 0;
    int quant_only = argc > 1 && strcmp(argv[1], "--quant") == 0;
    for (int a = 1 + quant_only; a < argc && ndims < 64; a++) {
        char *end;
        unsigned long d = strtoul(argv[a], &end, 10);
        if (*end || d == 0 || d > BENCH_MAX_DIM) {
            fprintf(stderr, "usage: bench_kernels [--quant] [dim ...]  (1..%d)\n", BENCH_MAX_DIM);
            return 2;
        }
        dims[ndims++] = d;
    }
    /* Dims given apply to both kinds; otherwise each has its default. */
    const size_t *fdims = ndims ? dims : bench_default_dims;
    size_t nf = ndims ? ndims : sizeof bench_default_dims / sizeof bench_default_dims[0];
    const size_t *qdims = ndims ? dims : bench_quant_dims;
    size_t nq = ndims ? ndims : sizeof bench_quant_dims / sizeof bench_quant_dims[0];

    if (!quant_only) {
        printf("{\"bench\":\"kernel-note\",\"note\":\"cosine runs the dot kernel (1 - dot of "
               "normalised vectors); flops: dot 2*dim, l2 3*dim\"}\n");
        double peak = bench_report_peak();
        size_t dram_floats = BENCH_DRAM_BYTES / sizeof(float);
        float *block = floats_new(dram_floats + BENCH_MAX_DIM);
        float *out = malloc((dram_floats + 1) * sizeof *out);
        if (!out) return 1;
        for (size_t di = 0; di < nf; di++) bench_float_dim(fdims[di], block, dram_floats, out, peak);
        free(out);
        free(block);
    }
    for (size_t di = 0; di < nq; di++) bench_quant_dim(qdims[di]);
    return 0;
}
