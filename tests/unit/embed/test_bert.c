/* test_bert.c -- the "bert" embedder as a whole, on a tiny random model
 * written here (2 layers, hidden 16, 2 heads, a 48-token vocabulary): it
 * loads; every matrix kernel this CPU runs gives the scalar kernel's
 * vectors (1e-5); a batch gives what one text at a time gives; vectors are
 * normalised (or not); pooling and max tokens behave; a text without a
 * token is the zero vector; model.safetensors truncated at every 7th byte,
 * or with a flipped byte in its header, is refused naming the file (and
 * never crashes); a missing file, a wrong shape and a vocabulary of the
 * wrong size are refused naming the file and the tensor.  The numerical
 * reference (numpy) is tests/integration/test_bert.py; this one runs
 * under the sanitizers and, in the aarch64 build, on NEON under qemu. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engram/embed.h"
#include "testlib.h"

enum { H = 16, L = 2, A = 2, I = 32, P = 24, V = 48 };

static char dir[64];
static uint8_t *model;   /* model.safetensors as written */
static size_t model_len;

static void put_file(const char *name, const void *buf, size_t len)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    fclose(f);
}

static void put_text(const char *name, const char *text) { put_file(name, text, strlen(text)); }

/* The tensors of the model, in file order; `skip` leaves one out and
 * `bad_shape` gives one a wrong first dimension. */
static void write_weights(const char *skip, const char *bad_shape)
{
    static char names[64][96];
    static size_t d0[64], d1[64];
    size_t n = 0;
#define T(nm, a, b) (snprintf(names[n], 96, "%s", nm), d0[n] = (a), d1[n] = (b), n++)
    T("embeddings.word_embeddings.weight", V, H);
    T("embeddings.position_embeddings.weight", P, H);
    T("embeddings.token_type_embeddings.weight", 2, H);
    T("embeddings.LayerNorm.weight", H, 0);
    T("embeddings.LayerNorm.bias", H, 0);
    const char *parts[] = {"attention.self.query", "attention.self.key", "attention.self.value",
                           "attention.output.dense", "intermediate.dense", "output.dense"};
    size_t po[] = {H, H, H, H, I, H}, pi[] = {H, H, H, H, H, I};
    for (int l = 0; l < L; l++) {
        char nm[96];
        for (int k = 0; k < 6; k++) {
            snprintf(nm, sizeof nm, "bert.encoder.layer.%d.%s.weight", l, parts[k]); /* prefixed */
            T(nm, po[k], pi[k]);
            snprintf(nm, sizeof nm, "bert.encoder.layer.%d.%s.bias", l, parts[k]);
            T(nm, po[k], 0);
        }
        const char *lns[] = {"attention.output.LayerNorm", "output.LayerNorm"};
        for (int k = 0; k < 2; k++) {
            snprintf(nm, sizeof nm, "bert.encoder.layer.%d.%s.weight", l, lns[k]);
            T(nm, H, 0);
            snprintf(nm, sizeof nm, "bert.encoder.layer.%d.%s.bias", l, lns[k]);
            T(nm, H, 0);
        }
    }
    char *hdr = malloc(1 << 15);
    size_t hl = (size_t)sprintf(hdr, "{\"__metadata__\":{\"format\":\"pt\"}");
    size_t off = 0, total = 0;
    for (size_t i = 0; i < n; i++) total += d0[i] * (d1[i] ? d1[i] : 1);
    float *data = malloc((total + 64) * 4); /* room for one grown tensor */
    uint64_t rng = 11;
    for (size_t i = 0; i < n; i++) {
        if (skip && strstr(names[i], skip)) continue;
        size_t a = d0[i] + (bad_shape && strstr(names[i], bad_shape) ? 1 : 0);
        size_t cnt = a * (d1[i] ? d1[i] : 1);
        if (d1[i])
            hl += (size_t)sprintf(hdr + hl, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%zu,%zu],\"data_offsets\":[%zu,%zu]}",
                                  names[i], a, d1[i], off, off + 4 * cnt);
        else
            hl += (size_t)sprintf(hdr + hl, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%zu],\"data_offsets\":[%zu,%zu]}",
                                  names[i], a, off, off + 4 * cnt);
        int ln = strstr(names[i], "LayerNorm.weight") != NULL;
        for (size_t k = 0; k < cnt; k++)
            data[off / 4 + k] = ln ? 1.0f + (float)((int)(test_rng_next(&rng) % 200) - 100) / 1000
                                   : (float)((int)(test_rng_next(&rng) % 2001) - 1000) / 2500;
        off += 4 * cnt;
    }
    hl += (size_t)sprintf(hdr + hl, "}");
    free(model);
    model_len = 8 + hl + off;
    model = malloc(model_len);
    for (int i = 0; i < 8; i++) model[i] = (uint8_t)(hl >> (8 * i));
    memcpy(model + 8, hdr, hl);
    memcpy(model + 8 + hl, data, off);
    put_file("model.safetensors", model, model_len);
    free(hdr);
    free(data);
}

static void write_vocab(int extra)
{
    char buf[1024];
    size_t n = (size_t)sprintf(buf, "[PAD]\n[UNK]\n[CLS]\n[SEP]\n");
    const char *words[] = {"disk", "full", "no", "space", "left", "on", "device", "the", "a",
                           "##s", "##ing", ",", ".", "!", "cafe", "user", "log", "##ged", "in"};
    size_t nw = sizeof words / sizeof words[0];
    for (size_t i = 0; i < nw; i++) n += (size_t)sprintf(buf + n, "%s\n", words[i]);
    for (size_t i = 4 + nw; i < (size_t)V + (size_t)extra; i++) n += (size_t)sprintf(buf + n, "x%zu\n", i);
    put_file("vocab.txt", buf, n);
}

static void write_model(void)
{
    char cfg[512];
    snprintf(cfg, sizeof cfg,
             "{\"hidden_size\": %d, \"num_hidden_layers\": %d, \"num_attention_heads\": %d,"
             " \"intermediate_size\": %d, \"max_position_embeddings\": %d, \"vocab_size\": %d,"
             " \"layer_norm_eps\": 1e-12, \"hidden_act\": \"gelu\", \"model_type\": \"bert\"}",
             H, L, A, I, P, V);
    put_text("config.json", cfg);
    put_text("tokenizer_config.json", "{\"do_lower_case\": true, \"model_max_length\": 1000000000000000019884624838656}");
    write_vocab(0);
    write_weights(NULL, NULL);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/engram-bert-XXXXXX");
    assert_non_null(mkdtemp(dir));
    write_model();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    const char *files[] = {"config.json", "tokenizer_config.json", "vocab.txt", "model.safetensors"};
    char path[128];
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
    free(model);
    return 0;
}

static embedder *load(const embed_bert_opts *o)
{
    embedder *e = NULL;
    char err[256];
    int rc = embed_bert_load(dir, o, &e, err, sizeof err);
    if (rc < 0) fail_msg("load: %s", err);
    return e;
}

static const char *TEXTS[] = {
    "Disk full, no space left on device!", "the user logged in", "", "cafe", "a a a a a a a a a a a a a a a a a a a a a a a a a a a a",
    "unknown zzz words", "...",
};
#define NT (sizeof TEXTS / sizeof TEXTS[0])

static void embed_all(const embedder *e, float *out, int *counts)
{
    size_t lens[NT];
    for (size_t i = 0; i < NT; i++) lens[i] = strlen(TEXTS[i]);
    assert_int_equal(embed_texts(e, NT, (const void *const *)TEXTS, lens, out, counts), 0);
}

static void test_load_and_embed(void **state)
{
    (void)state;
    embedder *e = load(NULL);
    assert_string_equal(embed_kind(e), "bert");
    assert_int_equal(embed_dim(e), H);
    assert_int_equal(embed_vocab_size(e), V);
    assert_int_equal(embed_max_tokens(e), P); /* model_max_length is a sentinel: ignored */
    assert_string_equal(embed_format(e), "F32");
    assert_true(embed_memory(e) > (size_t)V * H * 4);
    float out[NT * H], one[H];
    int counts[NT];
    embed_all(e, out, counts);
    assert_int_equal(counts[0], 9);    /* disk full , no space left on device ! */
    assert_int_equal(counts[2], 0);
    assert_int_equal(counts[4], P - 2); /* truncated */
    for (size_t i = 0; i < NT; i++) {
        double ss = 0;
        for (int k = 0; k < H; k++) ss += (double)out[i * H + k] * out[i * H + k];
        if (i == 2) assert_true(ss == 0);
        else assert_true(fabs(ss - 1) < 1e-5);
        /* One at a time: the same vector. */
        int c = embed_text(e, TEXTS[i], strlen(TEXTS[i]), one);
        assert_int_equal(c, counts[i]);
        for (int k = 0; k < H; k++) assert_true(fabsf(one[k] - out[i * H + k]) < 1e-6f);
    }
    int32_t ids[64];
    int n = embed_tokenize(e, "Disk full!", 10, ids, 64);
    assert_int_equal(n, 5);
    assert_int_equal(ids[0], 2);
    assert_int_equal(ids[1], 4);
    assert_int_equal(ids[4], 3);
    assert_int_equal(embed_tokenize(e, "Disk full!", 10, ids, 3), 3);
    assert_int_equal(embed_texts(e, 0, NULL, NULL, NULL, NULL), 0);
    embed_free(e);
}

static void test_kernels_agree(void **state)
{
    (void)state;
    embed_bert_opts o = {.kernel = "scalar"};
    embedder *ref = load(&o);
    float want[NT * H], got[NT * H];
    embed_all(ref, want, NULL);
    const char *names[] = {"avx2", "avx512", "neon"};
    for (int v = 0; v < 3; v++) {
        o.kernel = names[v];
        embedder *e = NULL;
        char err[128];
        if (embed_bert_load(dir, &o, &e, err, sizeof err) < 0) {
            assert_non_null(strstr(err, "not available"));
            continue;
        }
        embed_all(e, got, NULL);
        for (size_t i = 0; i < NT * H; i++)
            if (fabsf(got[i] - want[i]) > 1e-5f) fail_msg("%s [%zu]: %g vs %g", names[v], i, got[i], want[i]);
        embed_free(e);
    }
    embed_free(ref);
}

static void test_options(void **state)
{
    (void)state;
    embed_bert_opts o = {.pooling = EMBED_POOL_CLS, .no_normalize = 1, .max_tokens = 4};
    embedder *e = load(&o);
    assert_int_equal(embed_max_tokens(e), 4);
    float a[H], b[H];
    assert_int_equal(embed_text(e, "disk full no space", 18, a), 2);
    assert_int_equal(embed_text(e, "disk full", 9, b), 2);
    assert_memory_equal(a, b, sizeof a);      /* cut to the same tokens */
    double ss = 0;
    for (int k = 0; k < H; k++) ss += (double)a[k] * a[k];
    assert_true(fabs(ss - 1) > 1e-3);         /* not normalised */
    embed_free(e);
    o = (embed_bert_opts){.max_tokens = P + 1};
    char err[128];
    assert_int_equal(embed_bert_load(dir, &o, &e, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "max-tokens 25 is outside [2, 24]"));
    o = (embed_bert_opts){.kernel = "mmx"};
    assert_int_equal(embed_bert_load(dir, &o, &e, err, sizeof err), -EINVAL);
}

static void expect_refused(const char *want)
{
    embedder *e = NULL;
    char err[256] = "";
    int rc = embed_bert_load(dir, NULL, &e, err, sizeof err);
    assert_true(rc < 0);
    assert_null(e);
    if (!strstr(err, want)) fail_msg("'%s' does not say '%s'", err, want);
}

static void test_bad_files(void **state)
{
    (void)state;
    uint8_t *good = malloc(model_len);
    size_t good_len = model_len;
    memcpy(good, model, model_len);
    /* Truncations (every 7th byte: the whole file is a few KB) */
    size_t step = 7;
#ifdef TEST_SLOW
    step = 61;
#endif
    for (size_t l = 0; l < good_len; l += step) {
        put_file("model.safetensors", good, l);
        expect_refused("model.safetensors");
    }
    /* A byte of the header changed: refused or (a digit to another digit
     * that still fits) loaded -- never a crash or a read outside. */
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | good[i];
    uint64_t rng = 5;
    for (int t = 0; t < 200; t++) {
        uint8_t *bad = malloc(good_len);
        memcpy(bad, good, good_len);
        size_t at = 8 + test_rng_next(&rng) % hl;
        bad[at] = (uint8_t)(bad[at] ^ (1u << (test_rng_next(&rng) % 8)));
        put_file("model.safetensors", bad, good_len);
        embedder *e = NULL;
        char err[256];
        if (embed_bert_load(dir, NULL, &e, err, sizeof err) == 0) {
            float v[H];
            embed_text(e, "disk", 4, v);
            embed_free(e);
        }
        free(bad);
    }
    put_file("model.safetensors", good, good_len);
    free(good);

    write_weights("layer.1.output.dense.weight", NULL);
    expect_refused("model.safetensors: missing tensor 'encoder.layer.1.output.dense.weight'");
    write_weights(NULL, "layer.0.intermediate.dense.bias");
    expect_refused("model.safetensors: tensor 'bert.encoder.layer.0.intermediate.dense.bias' has shape [33], expected [32]");
    write_weights(NULL, NULL);
    write_vocab(1);
    expect_refused("vocab.txt: 49 tokens, config.json says vocab_size 48");
    write_vocab(0);
    put_text("config.json", "{\"hidden_size\": 16,");
    expect_refused("config.json: JSON");
    char path[128];
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    unlink(path);
    write_model();
    unlink(path);
    expect_refused("vocab.txt");
    write_model();
    embedder *e = load(NULL);
    embed_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_and_embed),
        cmocka_unit_test(test_kernels_agree),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_bad_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
