/* embed_tool.c -- a command-line harness over the embed library for the
 * integration tests (tests/integration/test_bert.py) and for trying a
 * model by hand.  Reads one text per line from stdin.
 *
 *   embed_tool tokens DIR [options]   one line of token ids per text
 *   embed_tool embed DIR [options]    n x dim float32 (native order) on stdout
 *   options: pooling mean|cls, normalize yes|no, max-tokens N,
 *            kernel scalar|avx2|avx512|neon, batch N (texts per call; 0: all),
 *            simd LEVEL (dist_select first)
 * Exit status 0, 1 usage, 2 the model was refused (message on stderr). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engram/dist.h"
#include "engram/embed.h"

static int usage(void)
{
    fprintf(stderr, "usage: embed_tool tokens|embed DIR [pooling mean|cls] [normalize yes|no] "
                    "[max-tokens N] [kernel K] [batch N] [simd LEVEL]\n");
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 3) return usage();
    embed_bert_opts o = {0};
    size_t batch = 0;
    for (int i = 3; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "pooling")) o.pooling = !strcmp(v, "cls") ? EMBED_POOL_CLS : EMBED_POOL_MEAN;
        else if (!strcmp(k, "normalize")) o.no_normalize = !strcmp(v, "no");
        else if (!strcmp(k, "max-tokens")) o.max_tokens = (uint32_t)atoi(v);
        else if (!strcmp(k, "kernel")) o.kernel = v;
        else if (!strcmp(k, "batch")) batch = (size_t)atol(v);
        else if (!strcmp(k, "simd")) {
            if (dist_select(v) < 0) return usage();
        } else return usage();
    }
    embedder *e;
    char err[512];
    if (embed_bert_load(argv[2], &o, &e, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    size_t n = 0, cap = 0;
    char **texts = NULL;
    size_t *lens = NULL;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t l;
    while ((l = getline(&line, &lcap, stdin)) >= 0) {
        if (l && line[l - 1] == '\n') l--;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            texts = realloc(texts, cap * sizeof *texts);
            lens = realloc(lens, cap * sizeof *lens);
        }
        texts[n] = malloc((size_t)l + 1);
        memcpy(texts[n], line, (size_t)l);
        lens[n++] = (size_t)l;
    }
    free(line);
    uint32_t dim = embed_dim(e);
    if (!strcmp(argv[1], "tokens")) {
        int32_t *ids = malloc(embed_max_tokens(e) * sizeof *ids);
        for (size_t i = 0; i < n; i++) {
            int k = embed_tokenize(e, texts[i], lens[i], ids, embed_max_tokens(e));
            for (int j = 0; j < k; j++) printf(j ? " %d" : "%d", ids[j]);
            printf("\n");
        }
        free(ids);
    } else {
        float *out = malloc((n ? n : 1) * dim * sizeof *out);
        if (!batch) batch = n ? n : 1;
        for (size_t i = 0; i < n; i += batch) {
            size_t k = n - i < batch ? n - i : batch;
            if (embed_texts(e, k, (const void *const *)(texts + i), lens + i, out + i * dim, NULL) < 0) {
                fprintf(stderr, "embed_texts failed\n");
                return 2;
            }
        }
        fwrite(out, sizeof *out, n * dim, stdout);
        free(out);
    }
    for (size_t i = 0; i < n; i++) free(texts[i]);
    free(texts), free(lens);
    embed_free(e);
    return 0;
}
