/* bench_filter.c -- the cost of a FILTER test per candidate: a compiled
 * expression (vfilter) over attribute blocks parsed once (vattr), against
 * parsing each candidate's JSON again on every test (what keeping only the
 * text would cost).
 *
 * Data: N movie-like attribute objects of ten members (year, genre, rating,
 * votes, director, title, tags, active, language, runtime; ~230 bytes of
 * JSON each), members in a fixed order, values from a seeded PRNG.
 *
 * Per filter, one line:
 *   ns_compiled   per vfilter_match over the blocks, in their order (a
 *                 search reads candidates in graph order: no cache help
 *                 beyond what N blocks in a row get)
 *   ns_reparse    per test when each one first builds the block from the
 *                 text (vattr_new + vfilter_match + vattr_free)
 *   speedup       ns_reparse / ns_compiled
 *   pass_pct      how many objects pass (the filter's selectivity)
 * And one line for the parse itself: ns per object, block and text bytes.
 * Figures are the best of many timed passes (noise only adds time).
 *
 * Usage: bench_filter [N]   (default 4096)
 *
 * A benchmark, never a test: it prints one JSON line per result and asserts
 * nothing about speed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engram/vattr.h"
#include "engram/vfilter.h"

#define BUDGET_NS 3e8 /* per measurement */

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static uint64_t rng(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static const char *const GENRES[] = { "drama", "comedy", "action", "horror", "documentary", "sci-fi" };
static const char *const DIRECTORS[] = { "Spielberg", "Nolan", "Kubrick", "Bigelow", "Varda",
                                         "Kurosawa", "Scorsese", "Gerwig" };
static const char *const TAGS[] = { "sale", "new", "classic", "award", "4k", "family" };
static const char *const LANGS[] = { "en", "fr", "ja", "it", "de" };

static size_t make_json(char *b, size_t cap, uint64_t *s, int k)
{
    int n = snprintf(b, cap,
                     "{\"year\": %d, \"genre\": \"%s\", \"rating\": %.1f, \"votes\": %d, "
                     "\"director\": \"%s\", \"title\": \"Movie number %d, part %d\", \"tags\": [",
                     1950 + (int)(rng(s) % 75), GENRES[rng(s) % 6], 1 + (double)(rng(s) % 90) / 10,
                     (int)(rng(s) % 100000), DIRECTORS[rng(s) % 8], k, (int)(rng(s) % 4) + 1);
    int nt = (int)(rng(s) % 4);
    for (int t = 0; t < nt; t++) n += snprintf(b + n, cap - (size_t)n, "%s\"%s\"", t ? ", " : "", TAGS[rng(s) % 6]);
    n += snprintf(b + n, cap - (size_t)n, "], \"active\": %s, \"language\": \"%s\", \"runtime\": %d}",
                  rng(s) % 2 ? "true" : "false", LANGS[rng(s) % 5], 80 + (int)(rng(s) % 100));
    return (size_t)n;
}

static void json_escaped(const char *s)
{
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') putchar('\\');
        putchar(*s);
    }
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 4096;
    if (n <= 0) n = 4096;
    char **texts = calloc((size_t)n, sizeof *texts);
    size_t *lens = calloc((size_t)n, sizeof *lens);
    vattr **attrs = calloc((size_t)n, sizeof *attrs);
    uint64_t seed = 42;
    size_t json_bytes = 0, block_bytes = 0;
    for (int k = 0; k < n; k++) {
        char buf[512];
        lens[k] = make_json(buf, sizeof buf, &seed, k);
        texts[k] = malloc(lens[k]);
        memcpy(texts[k], buf, lens[k]);
        json_bytes += lens[k];
        if (vattr_new(NULL, texts[k], lens[k], 0, &attrs[k], NULL)) {
            fprintf(stderr, "bench_filter: attribute %d did not parse\n", k);
            return 1;
        }
        block_bytes += vattr_size(attrs[k]);
    }

    /* the parse alone */
    double best = 1e30;
    for (double spent = 0; spent < BUDGET_NS;) {
        double t0 = now_ns();
        for (int k = 0; k < n; k++) {
            vattr *a;
            if (vattr_new(NULL, texts[k], lens[k], 0, &a, NULL) == 0) vattr_free(NULL, a);
        }
        double dt = now_ns() - t0;
        spent += dt;
        if (dt < best) best = dt;
    }
    printf("{\"bench\":\"vattr_parse\",\"attrs\":%d,\"json_bytes_avg\":%.1f,\"block_bytes_avg\":%.1f,"
           "\"ns_per_object\":%.1f}\n",
           n, (double)json_bytes / n, (double)block_bytes / n, best / n);

    static const char *const filters[] = {
        ".year > 2000 and .genre == \"drama\"",
        ".rating >= 7.5",
        ".director in [\"Spielberg\", \"Nolan\", \"Kubrick\"]",
        "\"sale\" in .tags or .votes > 50000",
        "(.year - 2000) ** 2 < 100 and .rating / 2 > 4",
        "not .active and .language != \"en\" and .runtime < 120",
        ".missing == 1",
    };
    volatile int sink = 0;
    for (size_t q = 0; q < sizeof filters / sizeof filters[0]; q++) {
        vfilter *f;
        vfilter_error err;
        if (vfilter_compile(NULL, filters[q], strlen(filters[q]), &f, &err)) {
            fprintf(stderr, "bench_filter: %s: %s\n", filters[q], err.what);
            return 1;
        }
        int pass = 0;
        for (int k = 0; k < n; k++) pass += vfilter_match(f, attrs[k]);
        double best_c = 1e30, best_r = 1e30;
        for (double spent = 0; spent < BUDGET_NS;) {
            double t0 = now_ns();
            int acc = 0;
            for (int k = 0; k < n; k++) acc += vfilter_match(f, attrs[k]);
            double dt = now_ns() - t0;
            sink += acc;
            spent += dt;
            if (dt < best_c) best_c = dt;
        }
        for (double spent = 0; spent < BUDGET_NS;) {
            double t0 = now_ns();
            int acc = 0;
            for (int k = 0; k < n; k++) {
                vattr *a;
                if (vattr_new(NULL, texts[k], lens[k], 0, &a, NULL)) continue;
                acc += vfilter_match(f, a);
                vattr_free(NULL, a);
            }
            double dt = now_ns() - t0;
            sink += acc;
            spent += dt;
            if (dt < best_r) best_r = dt;
        }
        printf("{\"bench\":\"filter\",\"filter\":\"");
        json_escaped(filters[q]);
        printf("\",\"attrs\":%d,\"pass_pct\":%.1f,\"ns_compiled\":%.1f,\"ns_reparse\":%.1f,"
               "\"speedup\":%.1f}\n",
               n, 100.0 * pass / n, best_c / n, best_r / n, best_r / best_c);
        vfilter_free(f);
    }
    for (int k = 0; k < n; k++) {
        vattr_free(NULL, attrs[k]);
        free(texts[k]);
    }
    free(texts);
    free(lens);
    free(attrs);
    return sink == -1;
}
