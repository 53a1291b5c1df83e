/* bench_bert.c -- the BERT embedder's speed on one core, for a
 * MiniLM-L6-shaped model (6 layers, hidden 384, 12 heads, intermediate
 * 1536, 30,522-token vocabulary, 512 positions) with random weights (speed
 * does not depend on them), written to a temporary directory and loaded as
 * the server loads it.
 *
 * Prints one JSON line per result:
 *   {"bench":"gemm_peak", ...}   the micro-kernel alone on L1-resident data
 *                                (the measured peak the others compare with)
 *   {"bench":"gemm", ...}        gemm_run on the model's four shapes
 *   {"bench":"bert", ...}        sentences/s at 16 and 64 tokens, batch 1 and
 *                                32, and the GFLOP/s this is (the products
 *                                and attention, 2 flops per multiply-add)
 *                                with its share of the first peak figure
 *   {"bench":"gemm_peak_best"}   the best of three peak measurements (on a
 *                                shared machine, divide by this one too)
 * Usage: bench_bert [seconds per figure, default 1] [kernel]
 *        bench_bert write DIR   (only write the model into DIR, which must
 *                                exist: for bench/bert_ingest.sh) */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engram/dist.h"
#include "engram/embed.h"
#include "engram/gemm.h"

enum { H = 384, L = 6, A = 12, I = 1536, P = 512, V = 30522 };

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static float frand(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 40) / (double)(1 << 24)) - 0.5f;
}

/* ---- a random model on disk --------------------------------------------------- */

typedef struct tensor {
    char name[96];
    size_t n0, n1;
} tensor;

static int write_model(const char *dir)
{
    char path[512];
    FILE *f;
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (!(f = fopen(path, "w"))) return -1;
    fprintf(f, "{\"hidden_size\": %d, \"num_hidden_layers\": %d, \"num_attention_heads\": %d, "
               "\"intermediate_size\": %d, \"max_position_embeddings\": %d, \"vocab_size\": %d, "
               "\"type_vocab_size\": 2, \"layer_norm_eps\": 1e-12, \"hidden_act\": \"gelu\", "
               "\"model_type\": \"bert\"}\n", H, L, A, I, P, V);
    fclose(f);
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    if (!(f = fopen(path, "w"))) return -1;
    fprintf(f, "[PAD]\n[UNK]\n[CLS]\n[SEP]\n");
    for (int i = 4; i < V; i++) fprintf(f, "w%d\n", i);
    fclose(f);

    tensor t[16 + 16 * L];
    size_t n = 0;
#define T(nm, a, b) (snprintf(t[n].name, sizeof t[n].name, "%s", nm), t[n].n0 = (a), t[n].n1 = (b), n++)
    T("embeddings.word_embeddings.weight", V, H);
    T("embeddings.position_embeddings.weight", P, H);
    T("embeddings.token_type_embeddings.weight", 2, H);
    T("embeddings.LayerNorm.weight", H, 0);
    T("embeddings.LayerNorm.bias", H, 0);
    for (int l = 0; l < L; l++) {
        static const struct { const char *s; int n0, n1; } parts[] = {
            {"attention.self.query.weight", H, H}, {"attention.self.query.bias", H, 0},
            {"attention.self.key.weight", H, H}, {"attention.self.key.bias", H, 0},
            {"attention.self.value.weight", H, H}, {"attention.self.value.bias", H, 0},
            {"attention.output.dense.weight", H, H}, {"attention.output.dense.bias", H, 0},
            {"attention.output.LayerNorm.weight", H, 0}, {"attention.output.LayerNorm.bias", H, 0},
            {"intermediate.dense.weight", I, H}, {"intermediate.dense.bias", I, 0},
            {"output.dense.weight", H, I}, {"output.dense.bias", H, 0},
            {"output.LayerNorm.weight", H, 0}, {"output.LayerNorm.bias", H, 0},
        };
        for (size_t k = 0; k < sizeof parts / sizeof parts[0]; k++) {
            snprintf(t[n].name, sizeof t[n].name, "encoder.layer.%d.%s", l, parts[k].s);
            t[n].n0 = (size_t)parts[k].n0, t[n].n1 = (size_t)parts[k].n1, n++;
        }
    }
    char *hdr = malloc(1 << 16);
    size_t hl = 0, off = 0;
    hl += (size_t)sprintf(hdr + hl, "{");
    for (size_t i = 0; i < n; i++) {
        size_t cnt = t[i].n0 * (t[i].n1 ? t[i].n1 : 1);
        if (t[i].n1)
            hl += (size_t)sprintf(hdr + hl, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%zu,%zu],\"data_offsets\":[%zu,%zu]}",
                                  i ? "," : "", t[i].name, t[i].n0, t[i].n1, off, off + 4 * cnt);
        else
            hl += (size_t)sprintf(hdr + hl, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%zu],\"data_offsets\":[%zu,%zu]}",
                                  i ? "," : "", t[i].name, t[i].n0, off, off + 4 * cnt);
        off += 4 * cnt;
    }
    hl += (size_t)sprintf(hdr + hl, "}");
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (!(f = fopen(path, "wb"))) return -1;
    uint64_t le = hl;
    fwrite(&le, 8, 1, f); /* little-endian hosts only: a benchmark */
    fwrite(hdr, 1, hl, f);
    free(hdr);
    float buf[4096];
    for (size_t i = 0; i < n; i++) {
        size_t cnt = t[i].n0 * (t[i].n1 ? t[i].n1 : 1);
        int ln = strstr(t[i].name, "LayerNorm.weight") != NULL;
        while (cnt) {
            size_t k = cnt < 4096 ? cnt : 4096;
            for (size_t j = 0; j < k; j++) buf[j] = ln ? 1.0f : frand() * 0.1f;
            fwrite(buf, 4, k, f);
            cnt -= k;
        }
    }
    return fclose(f);
}

static void cleanup(const char *dir)
{
    char path[512];
    const char *files[] = {"config.json", "vocab.txt", "model.safetensors"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

/* ---- figures ------------------------------------------------------------------ */

static double peak(const gemm_kernels *g, double secs)
{
    size_t k = GEMM_KC;
    float *a = malloc(sizeof(float) * g->mr * k), *p = malloc(sizeof(float) * g->nr * k),
          *c = calloc(g->mr * g->nr, sizeof(float));
    for (size_t i = 0; i < g->mr * k; i++) a[i] = frand() * 1e-3f;
    for (size_t i = 0; i < g->nr * k; i++) p[i] = frand() * 1e-3f;
    long calls = 0;
    double t0 = now(), t;
    do {
        for (int r = 0; r < 1000; r++) g->tile(k, a, k, p, c, g->nr, NULL);
        calls += 1000;
    } while ((t = now() - t0) < secs);
    double gf = 2.0 * g->mr * g->nr * k * calls / t / 1e9;
    printf("{\"bench\":\"gemm_peak\",\"kernel\":\"%s\",\"tile\":\"%ux%u\",\"k\":%zu,\"gflops\":%.1f,\"check\":%g}\n",
           g->name, g->mr, g->nr, k, gf, (double)c[0]);
    free(a), free(p), free(c);
    return gf;
}

static void gemm_shape(const gemm_kernels *g, size_t m, size_t n, size_t k, double secs, double pk)
{
    float *w = malloc(sizeof(float) * n * k), *a = malloc(sizeof(float) * m * k),
          *c = malloc(sizeof(float) * m * n);
    for (size_t i = 0; i < n * k; i++) w[i] = frand();
    for (size_t i = 0; i < m * k; i++) a[i] = frand();
    gemm_packed pw;
    if (gemm_pack(&pw, g, w, n, k) < 0) exit(1);
    long runs = 0;
    double t0 = now(), t;
    do {
        gemm_run(&pw, a, m, k, NULL, c, n);
        runs++;
    } while ((t = now() - t0) < secs);
    double gf = 2.0 * m * n * k * runs / t / 1e9;
    printf("{\"bench\":\"gemm\",\"kernel\":\"%s\",\"m\":%zu,\"n\":%zu,\"k\":%zu,\"gflops\":%.1f,"
           "\"peak_gflops\":%.1f,\"of_peak\":%.2f}\n", g->name, m, n, k, gf, pk, gf / pk);
    gemm_packed_fini(&pw);
    free(w), free(a), free(c);
}

static void sentences(const embedder *e, const char *kernel, int tokens, int batch, double secs,
                      double pk)
{
    char **texts = malloc(sizeof *texts * (size_t)batch);
    size_t *lens = malloc(sizeof *lens * (size_t)batch);
    for (int b = 0; b < batch; b++) {
        texts[b] = malloc((size_t)tokens * 8 + 1);
        size_t l = 0;
        for (int i = 0; i < tokens - 2; i++)
            l += (size_t)sprintf(texts[b] + l, "%sw%d", i ? " " : "", 4 + (b * 97 + i * 31) % (V - 4));
        lens[b] = l;
    }
    float *out = malloc(sizeof(float) * H * (size_t)batch);
    long n = 0;
    double t0 = now(), t;
    do {
        if (embed_texts(e, (size_t)batch, (const void *const *)texts, lens, out, NULL) < 0) exit(1);
        n += batch;
    } while ((t = now() - t0) < secs);
    double T = tokens;
    double flops = L * (2.0 * T * (4.0 * H * H + 2.0 * H * I) + 4.0 * T * T * H);
    double sps = n / t, gf = sps * flops / 1e9;
    printf("{\"bench\":\"bert\",\"model\":\"MiniLM-L6-shaped\",\"kernel\":\"%s\",\"threads\":1,"
           "\"tokens\":%d,\"batch\":%d,\"sentences_per_s\":%.1f,\"ms_per_sentence\":%.3f,"
           "\"gflops\":%.1f,\"peak_gflops\":%.1f,\"of_peak\":%.2f}\n",
           kernel, tokens, batch, sps, 1e3 / sps, gf, pk, gf / pk);
    fflush(stdout);
    for (int b = 0; b < batch; b++) free(texts[b]);
    free(texts), free(lens), free(out);
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "write")) return write_model(argv[2]) < 0;
    double secs = argc > 1 ? atof(argv[1]) : 1.0;
    dist_select("auto");
    const gemm_kernels *g = argc > 2 ? gemm_by_name(argv[2]) : gemm_active();
    if (!g) {
        fprintf(stderr, "kernel not available\n");
        return 1;
    }
    char dir[] = "/tmp/bench-bert-XXXXXX";
    if (!mkdtemp(dir) || write_model(dir) < 0) {
        fprintf(stderr, "cannot write the model: %s\n", strerror(errno));
        return 1;
    }
    embedder *e;
    char err[512];
    embed_bert_opts o = {.kernel = g->name};
    double t0 = now();
    int rc = embed_bert_load(dir, &o, &e, err, sizeof err);
    double tl = now() - t0;
    cleanup(dir);
    if (rc < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    printf("{\"bench\":\"bert_load\",\"kernel\":\"%s\",\"seconds\":%.2f,\"mbytes\":%.1f}\n", g->name,
           tl, embed_memory(e) / 1e6);
    /* The machine may be shared: the peak is the best of three short
     * measurements, one before the figures and two after. */
    double pk = peak(g, secs / 2);
    gemm_shape(g, 32 * 16, 3 * H, H, secs, pk);
    gemm_shape(g, 32 * 16, I, H, secs, pk);
    gemm_shape(g, 32 * 16, H, I, secs, pk);
    static const int tok[] = {16, 64}, bat[] = {1, 32};
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) sentences(e, g->name, tok[i], bat[j], secs, pk);
    for (int r = 0; r < 2; r++) {
        double p2 = peak(g, secs / 2);
        if (p2 > pk) pk = p2;
    }
    printf("{\"bench\":\"gemm_peak_best\",\"kernel\":\"%s\",\"gflops\":%.1f}\n", g->name, pk);
    embed_free(e);
    return 0;
}
