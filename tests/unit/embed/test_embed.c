/* test_embed.c -- src/embed: the hash embedder (fixed expected values,
 * normalisation, tokeniser edge cases, similarity and order properties,
 * the documented weights checked through exact cosines, threads) and static
 * models (text with and without header, GloVe quirks, word2vec binary,
 * lookup, case folding, averaging and SIF math by hand, malformed files
 * refused with a message, every truncation of a binary file, random
 * corruption never crashing).
 *
 * Model files are written to a private mkdtemp directory under /tmp and
 * removed at the end. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engram/embed.h"

static char tmpdir[64];
static char mpath[128];

/* ---- helpers ------------------------------------------------------------------ */

static embedder *hash_new(uint32_t dim)
{
    embedder *e = NULL;
    char err[128];
    assert_int_equal(embed_hash_new(dim, &e, err, sizeof err), 0);
    assert_non_null(e);
    return e;
}

static double dot(const float *a, const float *b, uint32_t dim)
{
    double s = 0;
    for (uint32_t i = 0; i < dim; i++) s += (double)a[i] * b[i];
    return s;
}

static double norm(const float *a, uint32_t dim) { return sqrt(dot(a, a, dim)); }

static int is_zero(const float *a, uint32_t dim)
{
    for (uint32_t i = 0; i < dim; i++)
        if (a[i] != 0) return 0;
    return 1;
}

/* Cosine of two texts' embeddings (both normalised, so the dot). */
static double cos_text(const embedder *e, const char *a, const char *b)
{
    uint32_t dim = embed_dim(e);
    float *va = malloc(dim * sizeof *va), *vb = malloc(dim * sizeof *vb);
    assert_non_null(va);
    assert_non_null(vb);
    assert_true(embed_text(e, a, strlen(a), va) > 0);
    assert_true(embed_text(e, b, strlen(b), vb) > 0);
    double c = dot(va, vb, dim);
    free(va);
    free(vb);
    return c;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void write_str(const char *s) { write_file(mpath, s, strlen(s)); }

/* Load mpath; on failure return the code with the message in err. */
static int load(embedder **e, const embed_model_opts *o, char *err, size_t errlen)
{
    err[0] = 0;
    return embed_model_load_opts(mpath, o, e, err, errlen);
}

static embedder *load_ok(const char *content, const embed_model_opts *o)
{
    char err[256];
    embedder *e = NULL;
    write_str(content);
    int rc = load(&e, o, err, sizeof err);
    if (rc != 0) fprintf(stderr, "unexpected load failure: %d %s\n", rc, err);
    assert_int_equal(rc, 0);
    assert_non_null(e);
    return e;
}

/* Refused with EMBED_EFORMAT (or `code`) and a message containing `want`. */
static void refuse(const void *content, size_t len, int code, const char *want)
{
    char err[256];
    embedder *e = (embedder *)1;
    write_file(mpath, content, len);
    int rc = load(&e, NULL, err, sizeof err);
    if (rc != code || !strstr(err, want))
        fprintf(stderr, "want %d \"%s\", got %d \"%s\"\n", code, want, rc, err);
    assert_int_equal(rc, code);
    assert_null(e);
    assert_non_null(strstr(err, want));
    assert_non_null(strstr(err, mpath));    /* names the file */
}

static void refuse_str(const char *content, const char *want)
{
    refuse(content, strlen(content), EMBED_EFORMAT, want);
}

static void expect_vec(const float *got, const float *want, uint32_t dim, double tol)
{
    for (uint32_t i = 0; i < dim; i++) {
        if (fabs((double)got[i] - want[i]) > tol)
            fprintf(stderr, "component %u: got %.9g want %.9g\n", i, got[i], want[i]);
        assert_true(fabs((double)got[i] - want[i]) <= tol);
    }
}

/* ---- hash embedder ------------------------------------------------------------ */

static void test_hash_args(void **state)
{
    (void)state;
    char err[128] = "";
    embedder *e = (embedder *)1;
    assert_int_equal(embed_hash_new(0, &e, err, sizeof err), -EINVAL);
    assert_null(e);
    assert_string_equal(err, "dimension must be between 1 and 65536, got 0");
    assert_int_equal(embed_hash_new(EMBED_DIM_MAX + 1, &e, err, sizeof err), -EINVAL);
    assert_int_equal(embed_hash_new(8, NULL, err, sizeof err), -EINVAL);
    assert_int_equal(embed_hash_new(8, &e, NULL, 0), 0);   /* no message buffer is fine */
    embed_free(e);

    e = hash_new(EMBED_DIM_MAX);
    assert_int_equal(embed_dim(e), EMBED_DIM_MAX);
    embed_free(e);

    e = hash_new(16);
    float v[16];
    assert_string_equal(embed_kind(e), "hash");
    assert_string_equal(embed_format(e), "hash");
    assert_int_equal(embed_vocab_size(e), 0);
    assert_true(embed_memory(e) > 0);
    assert_int_equal(embed_text(NULL, "a", 1, v), -EINVAL);
    assert_int_equal(embed_text(e, "a", 1, NULL), -EINVAL);
    assert_int_equal(embed_text(e, NULL, 1, v), -EINVAL);
    assert_int_equal(embed_text(e, NULL, 0, v), 0);
    assert_int_equal(embed_lookup(e, "a", 1, v, NULL), -EINVAL);
    embed_free(e);
    embed_free(NULL);
    assert_string_equal(embed_strerror(EMBED_EFORMAT), "malformed or unsupported model file");
    assert_string_equal(embed_strerror(-ENOENT), strerror(ENOENT));
}

/* Fixed expected values: a change here changes every stored hash
 * embedding, which needs a migration, not a test update. */
static void test_hash_golden(void **state)
{
    (void)state;
    static const float want8[8] = {
        -0.230940104f, 0.461880207f, 0.000000000f, -0.115470052f,
        0.461880207f, 0.115470052f, 0.692820311f, 0.115470052f,
    };
    embedder *e = hash_new(8);
    float v[8];
    assert_int_equal(embed_text(e, "disk full on /var", 17, v), 4);
    expect_vec(v, want8, 8, 1e-6);
    /* Case, punctuation and blanks between words do not matter. */
    float w[8];
    assert_int_equal(embed_text(e, "  DISK\tFull, on: /VAR!", 22, w), 4);
    assert_memory_equal(v, w, sizeof v);
    embed_free(e);

    /* dim 1: everything lands in one bucket: +1, -1 or 0. */
    e = hash_new(1);
    float one;
    assert_int_equal(embed_text(e, "disk full on /var", 17, &one), 4);
    assert_true(one == 1.0f || one == -1.0f);
    assert_int_equal(embed_text(e, "alpha", 5, &one), 1);
    assert_true(one == 1.0f || one == -1.0f || one == 0.0f);
    embed_free(e);
}

static const char *const TEXTS[] = {
    "disk full on /var",
    "the disk is full on /var/log",
    "user alice logged in from 10.0.0.1",
    "Jun  3 10:42:07 web-1 kernel: EXT4-fs warning (device sda1): ext4_dx_add_entry: Directory index full!",
    "a", "42", "x y z", "caf\xc3\xa9 cr\xc3\xa8me br\xc3\xbbl\xc3\xa9\x65",
};
#define NTEXTS (sizeof TEXTS / sizeof TEXTS[0])

static void test_hash_normalised_and_deterministic(void **state)
{
    (void)state;
    static const uint32_t dims[] = { 1, 2, 7, 16, 256, 384, 4096 };
    for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) {
        embedder *a = hash_new(dims[d]), *b = hash_new(dims[d]);
        float *va = malloc(dims[d] * sizeof *va), *vb = malloc(dims[d] * sizeof *vb);
        for (size_t t = 0; t < NTEXTS; t++) {
            int na = embed_text(a, TEXTS[t], strlen(TEXTS[t]), va);
            int nb = embed_text(b, TEXTS[t], strlen(TEXTS[t]), vb);
            assert_true(na > 0);
            assert_int_equal(na, nb);
            assert_memory_equal(va, vb, dims[d] * sizeof *va);   /* bit for bit */
            if (!is_zero(va, dims[d])) assert_true(fabs(norm(va, dims[d]) - 1) < 1e-5);
            else assert_true(dims[d] <= 2);                        /* only tiny dims cancel */
        }
        free(va);
        free(vb);
        embed_free(a);
        embed_free(b);
    }
}

static void test_hash_edge_cases(void **state)
{
    (void)state;
    const uint32_t dim = 64;
    embedder *e = hash_new(dim);
    float v[64], w[64];

    /* Nothing usable: the zero vector and 0. */
    memset(v, 0xff, sizeof v);
    assert_int_equal(embed_text(e, NULL, 0, v), 0);
    assert_true(is_zero(v, dim));
    memset(v, 0xff, sizeof v);
    assert_int_equal(embed_text(e, "", 0, v), 0);
    assert_true(is_zero(v, dim));
    const char *punct = " \t\r\n!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
    memset(v, 0xff, sizeof v);
    assert_int_equal(embed_text(e, punct, strlen(punct), v), 0);
    assert_true(is_zero(v, dim));

    /* NUL separates words like any other punctuation. */
    assert_int_equal(embed_text(e, "disk\0full", 9, v), 2);
    assert_int_equal(embed_text(e, "disk full", 9, w), 2);
    assert_memory_equal(v, w, sizeof v);
    assert_int_equal(embed_text(e, "\0\0\0", 3, v), 0);

    /* Bytes >= 0x80 are word bytes, valid UTF-8 or not. */
    assert_int_equal(embed_text(e, "\xff", 1, v), 1);
    assert_true(fabs(norm(v, dim) - 1) < 1e-5);
    static const char junk[] = "\xff\xfe\x80\xc3 disk \xc3";
    assert_int_equal(embed_text(e, junk, sizeof junk - 1, v), 3);
    assert_true(fabs(norm(v, dim) - 1) < 1e-5);
    /* No case folding beyond ASCII: "CAFÉ" is "cafÉ", near "café" (shared
     * grams) but not equal. */
    embedder *big = hash_new(4096);
    double c = cos_text(big, "caf\xc3\xa9", "CAF\xc3\x89");
    assert_true(c > 0.1 && c < 0.9);
    assert_true(cos_text(big, "caf\xc3\xa9", "CAF\xc3\xa9") > 0.99999);

    /* 1 MB of random bytes, 1 MB of words, a 1 MB word: defined, normalised. */
    size_t n = 1 << 20;
    unsigned char *big_text = malloc(n);
    assert_non_null(big_text);
    uint64_t x = 88172645463325252ULL;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        big_text[i] = (unsigned char)x;
    }
    assert_true(embed_text(e, big_text, n, v) > 1000);
    assert_true(fabs(norm(v, dim) - 1) < 1e-5);
    assert_true(embed_text(e, big_text, n, w) > 1000);
    assert_memory_equal(v, w, sizeof v);
    for (size_t i = 0; i < n; i++) big_text[i] = "disk full on var "[i % 17];
    assert_int_equal(embed_text(e, big_text, n, v), (int)((n / 17) * 4 + 4));  /* tail: "disk full on var" */
    assert_true(fabs(norm(v, dim) - 1) < 1e-5);
    /* Repetition only raises counts (log-scaled): still near one copy. */
    assert_int_equal(embed_text(e, "disk full on var", 16, w), 4);
    assert_true(dot(v, w, dim) > 0.8);
    for (size_t i = 0; i < n; i++) big_text[i] = (unsigned char)('a' + (i * 7 + i / 26) % 26);
    assert_int_equal(embed_text(e, big_text, n, v), 1);
    assert_true(fabs(norm(v, dim) - 1) < 1e-5);
    free(big_text);

    /* Many distinct words: counted in windows, still deterministic. */
    char *many = malloc(200000);
    size_t k = 0;
    for (int i = 0; k < 199000; i++) k += (size_t)sprintf(many + k, "w%xq%c ", (unsigned)i * 2654435761u, 'a' + i % 26);
    assert_true(embed_text(big, many, k, NULL) == -EINVAL);
    float *bv = malloc(4096 * sizeof *bv), *bw = malloc(4096 * sizeof *bw);
    assert_true(embed_text(big, many, k, bv) > 10000);
    assert_true(embed_text(big, many, k, bw) > 10000);
    assert_memory_equal(bv, bw, 4096 * sizeof *bv);
    assert_true(fabs(norm(bv, 4096) - 1) < 1e-5);
    free(bv);
    free(bw);
    free(many);
    embed_free(big);
    embed_free(e);
}

static void test_hash_similarity(void **state)
{
    (void)state;
    static const uint32_t dims[] = { 256, 384, 4096 };
    for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) {
        embedder *e = hash_new(dims[d]);
        double near = cos_text(e, "disk full on /var", "the disk is full on /var/log");
        double far = cos_text(e, "disk full on /var", "user alice logged in from 10.0.0.1");
        double far2 = cos_text(e, "the disk is full on /var/log", "user alice logged in from 10.0.0.1");
        assert_true(near > 0.5);
        assert_true(near > far + 0.4);
        assert_true(near > far2 + 0.4);
        /* Digit runs are one class: timestamps barely matter... */
        double t = cos_text(e, "disk full at 10:42", "disk full at 11:07");
        assert_true(t > 0.9 && t < 0.999);
        /* ...but the numbers as written still count a little. */
        double s = cos_text(e, "error 404", "error 500");
        assert_true(s > 0.8 && s < 0.99);
        assert_true(cos_text(e, "error 404", "error 404") > 0.99999);
        /* Character grams make inflections near. */
        assert_true(cos_text(e, "disks", "disk") > 0.1);
        embed_free(e);
    }
}

/* With 32768 buckets the few features below do not collide (checked by the
 * exact values), so cosines follow from the documented weights:
 * word 1, bigram 0.5, gram 0.25, number 0.25, numeral 0.25. */
static void test_hash_weights_order_bigrams(void **state)
{
    (void)state;
    embedder *e = hash_new(EMBED_DIM_MAX);
    const double g = 0.25 * 0.25, big = 0.5 * 0.5, num = 0.25 * 0.25;
    /* alpha: word + 5 grams; beta: word + 4 grams. */
    double words = 2 + 9 * g;

    /* Same words, other order: only the bigram differs. */
    double c = cos_text(e, "alpha beta", "beta alpha");
    assert_true(fabs(c - words / (words + big)) < 1e-5);
    /* Punctuation does not break a bigram. */
    assert_true(cos_text(e, "alpha beta", "alpha, (beta)") > 0.99999);
    /* Three words reversed: both bigrams differ. */
    double words3 = 3 + (5 + 4 + 5) * g;           /* alpha beta gamma */
    c = cos_text(e, "alpha beta gamma", "gamma beta alpha");
    assert_true(fabs(c - words3 / (words3 + 2 * big)) < 1e-5);
    /* Numbers are transparent to bigrams: "alpha 42 beta" keeps alpha_beta
     * and adds only the number and numeral features. */
    c = cos_text(e, "alpha 42 beta", "alpha beta");
    assert_true(fabs(c - sqrt((words + big) / (words + big + 2 * num))) < 1e-5);
    /* Counts are log-scaled: "disk disk" = (1 + ln 2) * disk + bigram. */
    double d = 1 + 4 * g, l = 1 + log(2.0);
    c = cos_text(e, "disk disk", "disk");
    assert_true(fabs(c - l * d / (sqrt(d) * sqrt(l * l * d + big))) < 1e-5);
    /* A digit run is one '0' inside a word: eth0 and eth1 share the word
     * and its grams, and differ by their numerals. */
    double w = 1 + 4 * g;                          /* word + <et eth th0 h0> */
    c = cos_text(e, "eth0", "eth1");
    assert_true(fabs(c - w / (w + num)) < 1e-5);
    embed_free(e);
}

typedef struct job {
    const embedder *e;
    float *out;        /* NTEXTS * dim */
    int rounds;
} job;

static void *embed_worker(void *arg)
{
    job *j = arg;
    uint32_t dim = embed_dim(j->e);
    for (int r = 0; r < j->rounds; r++)
        for (size_t t = 0; t < NTEXTS; t++)
            if (embed_text(j->e, TEXTS[t], strlen(TEXTS[t]), j->out + t * dim) < 0) return arg;
    return NULL;
}

/* Two threads embedding with one embedder at once get the single-threaded
 * results bit for bit. */
static void check_threads(const embedder *e)
{
    uint32_t dim = embed_dim(e);
    float *ref = malloc(NTEXTS * dim * sizeof *ref);
    for (size_t t = 0; t < NTEXTS; t++) embed_text(e, TEXTS[t], strlen(TEXTS[t]), ref + t * dim);
    job j[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        j[i].e = e;
        j[i].out = calloc(NTEXTS * dim, sizeof(float));
        j[i].rounds = 300;
        assert_int_equal(pthread_create(&th[i], NULL, embed_worker, &j[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        void *res;
        assert_int_equal(pthread_join(th[i], &res), 0);
        assert_null(res);
        assert_memory_equal(j[i].out, ref, NTEXTS * dim * sizeof *ref);
        free(j[i].out);
    }
    free(ref);
}

static void test_hash_threads(void **state)
{
    (void)state;
    embedder *e = hash_new(384);
    check_threads(e);
    embed_free(e);
}

/* ---- static models ----------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/engram-test-embed-XXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    snprintf(mpath, sizeof mpath, "%s/model", tmpdir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(mpath);
    return rmdir(tmpdir);
}

/* Six entries: "disk" repeats "Disk" (skipped: first kept), "n't" cannot be
 * produced by the tokeniser (skipped).  Ranks: the 1, disk 2, full 3, var 5. */
static const char *const MODEL_VEC =
    "6 3\n"
    "the 1 0 0\n"
    "Disk 0 1 0\n"
    "full 0 0 1\n"
    "disk 9 9 9\n"
    "var 0.5 -1.25e0 2\n"
    "n't 5 5 5\n";

static float sif(double r, double n_entries)
{
    double h = 0;
    for (int i = 1; i <= (int)n_entries; i++) h += 1.0 / i;
    double x = 1e-3 * h * r;
    return (float)(x / (x + 1));
}

static void test_model_text_header(void **state)
{
    (void)state;
    embedder *e = load_ok(MODEL_VEC, NULL);
    assert_string_equal(embed_kind(e), "model");
    assert_string_equal(embed_format(e), "vec");
    assert_int_equal(embed_dim(e), 3);
    assert_int_equal(embed_vocab_size(e), 4);
    assert_true(embed_memory(e) > 4 * 3 * sizeof(float));

    float v[3], wt;
    assert_int_equal(embed_lookup(e, "DISK", 4, v, &wt), 1);   /* case folded, first kept */
    expect_vec(v, (const float[]){ 0, 1, 0 }, 3, 0);
    assert_true(fabs(wt - sif(2, 6)) < 1e-7);
    assert_int_equal(embed_lookup(e, "var", 3, v, NULL), 1);
    expect_vec(v, (const float[]){ 0.5f, -1.25f, 2 }, 3, 0);
    assert_int_equal(embed_lookup(e, "n't", 3, v, NULL), 0);
    assert_int_equal(embed_lookup(e, "nt", 2, NULL, NULL), 0);
    assert_int_equal(embed_lookup(e, "vars", 4, NULL, NULL), 0);
    assert_int_equal(embed_lookup(e, "", 0, NULL, NULL), 0);

    /* SIF: normalise(w2 * disk + w3 * full). */
    float w2 = sif(2, 6), w3 = sif(3, 6), w5 = sif(5, 6);
    double n = sqrt((double)w2 * w2 + (double)w3 * w3);
    assert_int_equal(embed_text(e, "Disk FULL!", 10, v), 2);
    expect_vec(v, (const float[]){ 0, (float)(w2 / n), (float)(w3 / n) }, 3, 1e-6);
    /* Unknown words are ignored; repeats count. */
    assert_int_equal(embed_text(e, "the unknown var the", 19, v), 3);
    float s[3] = { 2 * sif(1, 6) + w5 * 0.5f, w5 * -1.25f, w5 * 2 };
    n = sqrt((double)s[0] * s[0] + (double)s[1] * s[1] + (double)s[2] * s[2]);
    expect_vec(v, (const float[]){ (float)(s[0] / n), (float)(s[1] / n), (float)(s[2] / n) }, 3, 1e-6);
    /* All unknown, or nothing: the zero vector and 0. */
    memset(v, 0xff, sizeof v);
    assert_int_equal(embed_text(e, "foo bar n't", 11, v), 0);
    assert_true(is_zero(v, 3));
    memset(v, 0xff, sizeof v);
    assert_int_equal(embed_text(e, "", 0, v), 0);
    assert_true(is_zero(v, 3));
    /* Digits and long words are looked up as written (and miss). */
    assert_int_equal(embed_text(e, "disk2 varvarvarvarvarvar", 24, v), 0);
    /* The same tokeniser as the hash embedder: "Disk-full" is two words. */
    assert_int_equal(embed_text(e, "Disk-full_var", 13, v), 3);
    embed_free(e);

    /* Plain mean: the hand computation without weights. */
    embed_model_opts o = { .plain_mean = 1 };
    e = load_ok(MODEL_VEC, &o);
    assert_int_equal(embed_lookup(e, "the", 3, NULL, &wt), 1);
    assert_true(wt == 1.0f);
    assert_int_equal(embed_text(e, "disk full", 9, v), 2);
    expect_vec(v, (const float[]){ 0, (float)(1 / sqrt(2)), (float)(1 / sqrt(2)) }, 3, 1e-7);
    assert_int_equal(embed_text(e, "the the disk var", 16, v), 4);   /* (2.5, -0.25, 2) */
    n = sqrt(2.5 * 2.5 + 0.25 * 0.25 + 4);
    expect_vec(v, (const float[]){ (float)(2.5 / n), (float)(-0.25 / n), (float)(2 / n) }, 3, 1e-7);
    check_threads(e);
    embed_free(e);

    /* A different SIF a changes the weights as the formula says. */
    o = (embed_model_opts){ .sif_a = 0.5 };
    e = load_ok(MODEL_VEC, &o);
    assert_int_equal(embed_lookup(e, "full", 4, NULL, &wt), 1);
    double h6 = 1 + 1 / 2.0 + 1 / 3.0 + 1 / 4.0 + 1 / 5.0 + 1 / 6.0;
    assert_true(fabs(wt - 0.5 / (0.5 + 1 / (3 * h6))) < 1e-6);
    embed_free(e);

    /* max_words: only the first entries are read, the rest never looked at. */
    o = (embed_model_opts){ .max_words = 2 };
    e = load_ok("3 3\nthe 1 0 0\nDisk 0 1 0\nfull 0 0\ngarbage\n", &o);
    assert_int_equal(embed_vocab_size(e), 2);
    assert_int_equal(embed_lookup(e, "disk", 4, NULL, NULL), 1);
    assert_int_equal(embed_lookup(e, "full", 4, NULL, NULL), 0);
    embed_free(e);
}

static void test_model_text_variants(void **state)
{
    (void)state;
    embed_model_opts o;
    /* GloVe: no header, dim from the first line; CRLF, tabs, runs of
     * blanks, trailing blanks and blank lines are all fine. */
    embedder *e = load_ok("the 0.1 0.2 0.3 0.4\r\n"
                          "of\t-1 -2 -3 -4 \n"
                          "\n"
                          "Caf\xc3\xa9  +1.5e-1   2E+1 -.5 5.\r\n"
                          "   \n"
                          "last 1 1 1 1", NULL);
    assert_string_equal(embed_format(e), "glove");
    assert_int_equal(embed_dim(e), 4);
    assert_int_equal(embed_vocab_size(e), 4);
    float v[4];
    assert_int_equal(embed_lookup(e, "THE", 3, v, NULL), 1);
    expect_vec(v, (const float[]){ 0.1f, 0.2f, 0.3f, 0.4f }, 4, 0);
    assert_int_equal(embed_lookup(e, "caf\xc3\xa9", 5, v, NULL), 1);
    expect_vec(v, (const float[]){ 0.15f, 20, -0.5f, 5 }, 4, 0);
    assert_int_equal(embed_lookup(e, "CAF\xc3\x89", 5, v, NULL), 0);  /* no folding beyond ASCII */
    assert_int_equal(embed_lookup(e, "last", 4, v, NULL), 1);
    embed_free(e);

    /* fastText .vec: header, trailing space on every line. */
    o = (embed_model_opts){ .plain_mean = 1 };
    e = load_ok("2 3 \nhello 0.25 0.5 0.75 \nworld -0.25 -0.5 -0.75 \n", &o);
    assert_string_equal(embed_format(e), "vec");
    assert_int_equal(embed_vocab_size(e), 2);
    assert_int_equal(embed_text(e, "Hello, World", 12, v), 2);
    assert_true(is_zero(v, 3));                /* they cancel exactly */
    embed_free(e);

    /* GloVe 840B: a word with spaces (non-numeric extra fields) is skipped
     * but keeps its rank; punctuation words are skipped too. */
    o = (embed_model_opts){ .plain_mean = 0 };
    e = load_ok("the 1 2\n. . . 3 4\nfull 5 6\n</s> 7 8\n", &o);
    assert_int_equal(embed_vocab_size(e), 2);
    float wt;
    assert_int_equal(embed_lookup(e, "full", 4, v, &wt), 1);
    assert_true(fabs(wt - sif(3, 4)) < 1e-7);
    expect_vec(v, (const float[]){ 5, 6 }, 2, 0);
    embed_free(e);

    /* Number parsing: many digits, tiny and large exponents. */
    e = load_ok("w 3.14159265358979323846264338327950288 1e-50 -1.0e+38 0.000001e6 12345678901234567890123\n", NULL);
    float p[5];
    assert_int_equal(embed_lookup(e, "w", 1, p, NULL), 1);
    assert_true(p[0] == 3.14159265f);
    assert_true(p[1] == 0.0f);
    assert_true(p[2] == -1.0e38f);
    assert_true(p[3] == 1.0f);
    assert_true(fabs(p[4] / 1.2345678901234567e22 - 1) < 1e-6);
    embed_free(e);
}

/* word2vec binary: "count dim\n" then word, space, dim LE float32, '\n'. */
static size_t bin_model(unsigned char *buf, int newlines)
{
    static const char *words[] = { "the", "Disk", "full" };
    static const float vals[3][2] = { { 1, 0 }, { 0.5f, -2 }, { 3.25f, 4 } };
    size_t k = (size_t)sprintf((char *)buf, "3 2\n");
    for (int i = 0; i < 3; i++) {
        k += (size_t)sprintf((char *)buf + k, "%s ", words[i]);
        for (int d = 0; d < 2; d++) {
            uint32_t u;
            memcpy(&u, &vals[i][d], 4);
            for (int b = 0; b < 4; b++) buf[k++] = (unsigned char)(u >> (8 * b));
        }
        if (newlines) buf[k++] = '\n';
    }
    return k;
}

static void test_model_binary(void **state)
{
    (void)state;
    unsigned char buf[256];
    for (int nl = 0; nl < 2; nl++) {
        size_t n = bin_model(buf, nl);
        write_file(mpath, buf, n);
        embedder *e = NULL;
        char err[256];
        assert_int_equal(load(&e, NULL, err, sizeof err), 0);
        assert_string_equal(embed_format(e), "word2vec-bin");
        assert_int_equal(embed_dim(e), 2);
        assert_int_equal(embed_vocab_size(e), 3);
        float v[2];
        assert_int_equal(embed_lookup(e, "disk", 4, v, NULL), 1);
        expect_vec(v, (const float[]){ 0.5f, -2 }, 2, 0);
        assert_int_equal(embed_lookup(e, "FULL", 4, v, NULL), 1);
        expect_vec(v, (const float[]){ 3.25f, 4 }, 2, 0);
        embed_free(e);
    }

    /* Every truncation is refused with a message, except dropping only the
     * final (optional) newline. */
    size_t n = bin_model(buf, 1);
    for (size_t cut = 0; cut < n; cut++) {
        write_file(mpath, buf, cut);
        embedder *e = NULL;
        char err[256] = "";
        int rc = load(&e, NULL, err, sizeof err);
        if (cut == n - 1) {
            assert_int_equal(rc, 0);
            embed_free(e);
            continue;
        }
        if (rc != EMBED_EFORMAT) fprintf(stderr, "cut %zu: %d %s\n", cut, rc, err);
        assert_int_equal(rc, EMBED_EFORMAT);
        assert_null(e);
        assert_true(strlen(err) > strlen(mpath) + 2);
    }
    refuse(buf, 39, EMBED_EFORMAT, "offset 36: truncated: record 3 needs 8 bytes of vector, the file has 3");

    /* A non-finite value, trailing data, a word without end. */
    n = bin_model(buf, 1);
    memcpy(buf + 4 + 4 + 4, "\x00\x00\x80\x7f", 4);    /* the: second value = +inf */
    refuse(buf, n, EMBED_EFORMAT, "offset 12: record 1: value 2 is not finite");
    n = bin_model(buf, 1);
    memcpy(buf + n, "junk", 4);
    refuse(buf, n + 4, EMBED_EFORMAT, "data after the 3 records the header announces");
    unsigned char *lw = malloc(6000);
    n = bin_model(lw, 1);                               /* keep the first record */
    memcpy(lw, "2", 1);
    memset(lw + 17, 'w', 5000);
    refuse(lw, 17 + 5000, EMBED_EFORMAT, "offset 17: record 2: word longer than 4096 bytes");
    free(lw);
    /* An absurd count is refused before anything is allocated for it. */
    n = bin_model(buf, 1);
    memcpy(buf, "9", 1);                                /* "9 2": 9 records of >= 9 bytes */
    refuse(buf, n, EMBED_EFORMAT, "header announces 9 words of 2 dimensions, but the remaining 41 bytes can hold at most 4");
}

static void test_model_malformed(void **state)
{
    (void)state;
    refuse_str("", "empty file");
    refuse_str("3 2\nthe 1\nof 1 2\nand 1 2\n", "line 2: expected 2 values after the word, found 1");
    refuse_str("3 2\nthe 1 2\nof 1 2 3\nand 1 2\n", "line 3: expected 2 values after the word, found 3");
    refuse_str("the 1 2 3\nof 1 2\n", "line 2: expected 3 values after the word, found 2");
    refuse_str("the 1 2\nof x 2\n", "line 2: value 1 ('x') is not a finite number");
    refuse_str("2 2\nthe 1 2\nof 1 nan\n", "line 3: value 2 ('nan') is not a finite number");
    refuse_str("the 1 inf\n", "line 1: value 2 ('inf') is not a finite number");
    refuse_str("the 1 1e39\n", "line 1: value 2 ('1e39') is not a finite number");
    refuse_str("the 1 1.2.3\n", "value 2 ('1.2.3')");
    refuse_str("the 1 -\n", "value 2 ('-')");
    refuse_str("the 1 1e\n", "value 2 ('1e')");
    refuse_str("the 1 .\n", "value 2 ('.')");
    refuse_str("the 1 2\nof 1 \x01\n", "value 2 ('\\x01')");
    refuse_str("hello\n", "line 1: neither a \"count dim\" header nor \"word values...\"");
    refuse_str("3 0\nthe\n", "line 1: dimension 0 out of range 1..65536");
    refuse_str("3 70000\n", "line 1: dimension 70000 out of range 1..65536");
    refuse_str("0 2\n", "line 1: header announces 0 words");
    refuse_str("1000000000 300\nthe 1 2\n", "line 1: header announces 1000000000 words of 300 dimensions");
    refuse_str("99999999999999999999 3\n", "line 1: header numbers out of range");
    refuse_str("3 2\nthe 1.0000 2.0000\nof 3.0000 4.0000\n", "header announces 3 entries, the file has 2");
    refuse_str("1 2\nthe 1 2\nof 3 4\n", "line 3: more entries than the 1 the header announces");
    refuse_str("2 2\nn't 1 2\n, 3 4\n", "no usable word in 2 entries");
    refuse("\x1f\x8b\x08\x00rest", 8, EMBED_EFORMAT, "gzip-compressed");
    refuse("\xba\x16\x4f\x2f\x0c\x00\x00\x00", 8, EMBED_EFORMAT, "fastText .bin");

    /* A line over the limit. */
    size_t n = (1u << 20) + 100;
    char *longline = malloc(n);
    memcpy(longline, "the", 3);
    for (size_t i = 3; i + 1 < n; i += 2) memcpy(longline + i, " 1", 2);
    longline[n - 1] = '\n';
    refuse(longline, n, EMBED_EFORMAT, "line 1: longer than 1048576 bytes");
    free(longline);

    /* Not a file, no file. */
    char err[256];
    embedder *e = (embedder *)1;
    assert_int_equal(embed_model_load(tmpdir, &e, err, sizeof err), -EINVAL);
    assert_null(e);
    assert_non_null(strstr(err, "not a regular file"));
    char missing[160];
    snprintf(missing, sizeof missing, "%s/missing.vec", tmpdir);
    assert_int_equal(embed_model_load(missing, &e, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "missing.vec"));
    assert_int_equal(embed_model_load(NULL, &e, err, sizeof err), -EINVAL);
    assert_int_equal(embed_model_load(missing, NULL, err, sizeof err), -EINVAL);
    embed_model_opts o = { .sif_a = -1 };
    assert_int_equal(embed_model_load_opts(missing, &o, &e, err, sizeof err), -EINVAL);
}

/* Random corruption of valid files: loads succeed or fail cleanly, and a
 * loaded model embeds.  ASan/UBSan do the checking. */
static void test_model_corruption(void **state)
{
    (void)state;
    unsigned char base[2][512], buf[512];
    size_t len[2];
    len[0] = strlen(MODEL_VEC);
    memcpy(base[0], MODEL_VEC, len[0]);
    len[1] = bin_model(base[1], 1);
    uint64_t x = 0x2545f4914f6cdd1dULL;
    for (int round = 0; round < 2000; round++) {
        int which = round & 1;
        memcpy(buf, base[which], len[which]);
        size_t n = len[which];
        for (int flips = 0; flips < 1 + round % 4; flips++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            size_t at = (size_t)(x % n);
            static const unsigned char pick[] = { ' ', '\n', '0', '9', '-', '.', 'e', 0, 0xff, 0x7f, 'a' };
            buf[at] = (x >> 40) & 1 ? (unsigned char)(x >> 48) : pick[(x >> 32) % sizeof pick];
        }
        if ((x >> 20) % 5 == 0) n = (size_t)((x >> 8) % n);
        write_file(mpath, buf, n);
        embedder *e = NULL;
        char err[256] = "";
        int rc = load(&e, NULL, err, sizeof err);
        if (rc == 0) {
            float v[64];
            if (embed_dim(e) <= 64) assert_true(embed_text(e, "the disk full var", 17, v) >= 0);
            embed_free(e);
        } else {
            assert_true(rc < 0);
            assert_null(e);
            assert_true(err[0] != 0);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_args),
        cmocka_unit_test(test_hash_golden),
        cmocka_unit_test(test_hash_normalised_and_deterministic),
        cmocka_unit_test(test_hash_edge_cases),
        cmocka_unit_test(test_hash_similarity),
        cmocka_unit_test(test_hash_weights_order_bigrams),
        cmocka_unit_test(test_hash_threads),
        cmocka_unit_test(test_model_text_header),
        cmocka_unit_test(test_model_text_variants),
        cmocka_unit_test(test_model_binary),
        cmocka_unit_test(test_model_malformed),
        cmocka_unit_test(test_model_corruption),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
