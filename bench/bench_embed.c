/* bench_embed.c -- text embedder throughput on synthetic log lines.
 *
 * Lines are generated up front from templates with an ISO timestamp and
 * random hosts, paths, users, addresses and numbers (a fixed PRNG seed:
 * every run embeds the same text), about 110 bytes each.  Results, one JSON line each:
 *   embed_hash    lines/s and MB/s of the hash embedder at each dim, on one
 *                 core; the comparison figure is util_hash (SipHash) over
 *                 the same lines, the floor of touching every byte once.
 *   model_load    a synthetic text model (.vec, header, `words` x 300 dims,
 *                 written to a temporary directory and removed afterwards):
 *                 load time and MB/s.
 *   embed_model   lines/s of that model on the same lines (most words known).
 *
 * Usage: bench_embed [lines] [model_words] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engram/embed.h"
#include "engram/util.h"

#define MODEL_DIM 300

static const char *const HOSTS[] = { "web-1", "web-2", "db-primary", "cache-7", "worker-13", "lb-0" };
static const char *const USERS[] = { "alice", "bob", "carol", "dave", "mallory", "root", "deploy" };
static const char *const PATHS[] = { "/var", "/var/log", "/home", "/tmp", "/srv/data", "/opt/app" };
static const char *const TEMPLATES[] = {
    "%s kernel: [%u.%06u] EXT4-fs warning (device sda%u): disk full on %s, %u blocks left",
    "%s sshd[%u]: Accepted publickey for %s from 10.%u.%u.%u port %u ssh2",
    "%s app[%u]: ERROR write failed on %s: No space left on device (errno %u)",
    "%s nginx: 10.%u.%u.%u - %s \"GET /api/v1/items/%u HTTP/1.1\" %u %u",
    "%s postgres[%u]: LOG: checkpoint complete: wrote %u buffers (%u.%u%%) for %s",
    "%s app[%u]: user %s logged in from 192.168.%u.%u after %u ms",
};

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static unsigned r(unsigned n) { return (unsigned)(util_rand64(&rng) % n); }
#define PICK(a) a[r(sizeof a / sizeof a[0])]

static size_t make_line(char *buf, size_t cap)
{
    int t = (int)r(sizeof TEMPLATES / sizeof TEMPLATES[0]);
    int k = snprintf(buf, cap, "2024-05-%02uT%02u:%02u:%02u.%03uZ ", 1 + r(28), r(24), r(60), r(60), r(1000));
    if (k < 0 || (size_t)k >= cap) return 0;
    buf += k;
    cap -= (size_t)k;
    size_t stamp = (size_t)k;
    switch (t) {
    case 0: k = snprintf(buf, cap, TEMPLATES[0], PICK(HOSTS), r(99999), r(999999), r(9), PICK(PATHS), r(5000)); break;
    case 1: k = snprintf(buf, cap, TEMPLATES[1], PICK(HOSTS), r(65535), PICK(USERS), r(256), r(256), r(256), r(65535)); break;
    case 2: k = snprintf(buf, cap, TEMPLATES[2], PICK(HOSTS), r(65535), PICK(PATHS), r(140)); break;
    case 3: k = snprintf(buf, cap, TEMPLATES[3], PICK(HOSTS), r(256), r(256), r(256), PICK(USERS), r(100000), 200 + r(400), r(90000)); break;
    case 4: k = snprintf(buf, cap, TEMPLATES[4], PICK(HOSTS), r(65535), r(100000), r(100), r(10), PICK(USERS)); break;
    default: k = snprintf(buf, cap, TEMPLATES[5], PICK(HOSTS), r(65535), PICK(USERS), r(256), r(256), r(5000)); break;
    }
    return stamp + (k < 0 ? 0 : (size_t)k < cap ? (size_t)k : cap - 1);
}

static double rate(size_t n, int64_t us) { return us > 0 ? (double)n * 1e6 / (double)us : 0; }

/* Embed every line `rounds` times; returns microseconds. */
static int64_t run(const embedder *e, char *const *line, const size_t *len, size_t n, float *out, int rounds)
{
    int64_t t0 = util_mono_us();
    for (int k = 0; k < rounds; k++)
        for (size_t i = 0; i < n; i++) embed_text(e, line[i], len[i], out);
    return util_mono_us() - t0;
}

/* Write a model whose vocabulary is every word of the lines plus filler up
 * to `words` entries, in a fresh temporary directory. */
static int write_model(const char *path, char *const *line, const size_t *len, size_t n, size_t words)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "%zu %d\n", words, MODEL_DIM);
    size_t w = 0;
    for (size_t i = 0; i < n && i < 2000 && w < words; i++) {
        const char *p = line[i], *end = p + len[i];
        while (p < end && w < words) {
            while (p < end && !((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z')) p++;
            const char *s = p;
            while (p < end && ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z')) p++;
            if (p == s) break;
            fprintf(f, "%.*s", (int)(p - s), s);   /* duplicates are skipped by the loader */
            for (int d = 0; d < MODEL_DIM; d++) fprintf(f, " %.5f", (double)r(20001) / 10000.0 - 1.0);
            fputc('\n', f);
            w++;
        }
    }
    for (; w < words; w++) {
        fprintf(f, "filler%zu", w);
        for (int d = 0; d < MODEL_DIM; d++) fprintf(f, " %.5f", (double)r(20001) / 10000.0 - 1.0);
        fputc('\n', f);
    }
    return fclose(f);
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 200000;
    size_t words = argc > 2 ? strtoull(argv[2], NULL, 10) : 50000;
    if (n == 0) n = 1;
    if (words < 1000) words = 1000;
    char **line = malloc(n * sizeof *line);
    size_t *len = malloc(n * sizeof *len);
    float *out = malloc(EMBED_DIM_MAX * sizeof *out);
    if (!line || !len || !out) return 1;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        char buf[256];
        len[i] = make_line(buf, sizeof buf);
        line[i] = malloc(len[i] + 1);
        if (!line[i]) return 1;
        memcpy(line[i], buf, len[i] + 1);
        bytes += len[i];
    }
    double avg = (double)bytes / (double)n;

    /* The comparison: one keyed hash over each line. */
    volatile uint64_t sink = 0;
    int64_t t0 = util_mono_us();
    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < n; i++) sink += util_hash(line[i], len[i], 1);
    double hash_rate = rate(3 * n, util_mono_us() - t0);

    static const uint32_t DIMS[] = { 256, 384, 768, 1 };
    char err[256];
    for (size_t d = 0; d < sizeof DIMS / sizeof DIMS[0]; d++) {
        embedder *e;
        if (embed_hash_new(DIMS[d], &e, err, sizeof err) != 0) {
            fprintf(stderr, "bench_embed: %s\n", err);
            return 1;
        }
        run(e, line, len, n < 10000 ? n : 10000, out, 1);              /* warm up */
        int64_t us = run(e, line, len, n, out, 3);
        double lps = rate(3 * n, us);
        printf("{\"bench\":\"embed_hash\",\"dim\":%u,\"lines\":%zu,\"avg_line_bytes\":%.1f,"
               "\"lines_per_s\":%.0f,\"mb_per_s\":%.1f,\"ns_per_line\":%.0f,\"siphash_lines_per_s\":%.0f}\n",
               DIMS[d], n, avg, lps, lps * avg / 1e6, lps > 0 ? 1e9 / lps : 0, hash_rate);
        fflush(stdout);
        embed_free(e);
    }

    char dir[] = "/tmp/engram-bench-embed-XXXXXX", path[64];
    if (!mkdtemp(dir)) return 1;
    snprintf(path, sizeof path, "%s/model.vec", dir);
    if (write_model(path, line, len, n, words) != 0) {
        fprintf(stderr, "bench_embed: cannot write %s\n", path);
        return 1;
    }
    FILE *f = fopen(path, "rb");
    long fsize = 0;
    if (f) {
        fseek(f, 0, SEEK_END);
        fsize = ftell(f);
        fclose(f);
    }
    embedder *m;
    t0 = util_mono_us();
    int rc = embed_model_load(path, &m, err, sizeof err);
    int64_t load_us = util_mono_us() - t0;
    unlink(path);
    rmdir(dir);
    if (rc != 0) {
        fprintf(stderr, "bench_embed: %s\n", err);
        return 1;
    }
    printf("{\"bench\":\"model_load\",\"format\":\"%s\",\"words\":%u,\"dim\":%u,\"file_mb\":%.1f,"
           "\"seconds\":%.3f,\"mb_per_s\":%.1f,\"memory_mb\":%.1f}\n",
           embed_format(m), embed_vocab_size(m), embed_dim(m), (double)fsize / 1e6, (double)load_us / 1e6,
           load_us > 0 ? (double)fsize / (double)load_us : 0, (double)embed_memory(m) / 1e6);
    size_t known = 0;
    for (size_t i = 0; i < n && i < 1000; i++) known += (size_t)embed_text(m, line[i], len[i], out);
    run(m, line, len, n < 10000 ? n : 10000, out, 1);
    int64_t us = run(m, line, len, n, out, 1);
    double lps = rate(n, us);
    printf("{\"bench\":\"embed_model\",\"dim\":%u,\"lines\":%zu,\"known_words_per_line\":%.1f,"
           "\"lines_per_s\":%.0f,\"ns_per_line\":%.0f,\"siphash_lines_per_s\":%.0f}\n",
           embed_dim(m), n, (double)known / (double)(n < 1000 ? n : 1000), lps,
           lps > 0 ? 1e9 / lps : 0, hash_rate);
    embed_free(m);
    for (size_t i = 0; i < n; i++) free(line[i]);
    free(line);
    free(len);
    free(out);
    (void)sink;
    return 0;
}
