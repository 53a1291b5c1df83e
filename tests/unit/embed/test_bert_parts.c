/* test_bert_parts.c -- the pieces under the BERT embedder: the JSON reader
 * (valid and invalid texts, escapes, lookups, every truncation refused),
 * the safetensors reader (a good file, F16/BF16 conversion, every
 * truncation and corrupt headers refused with the tensor named), the
 * WordPiece tokenizer (expected ids for punctuation, accents, CJK, unknown
 * and long words, truncation; the vocabulary's rules) and the matrix
 * product (each kernel against a double-precision product, and against the
 * scalar kernel, at edge sizes). */
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

#include "engram/embed.h"
#include "engram/gemm.h"
#include "engram/mjson.h"
#include "engram/safetensors.h"
#include "engram/wordpiece.h"
#include "testlib.h"

/* ---- mjson -------------------------------------------------------------------- */

static void test_json_valid(void **state)
{
    (void)state;
    const char *s = " {\"a\": 1, \"b\": [true, false, null, -2.5e3, \"x\\u00e9\\n\"],"
                    " \"c\": {\"d\": \"\\ud83d\\ude00\"}, \"a\": 7, \"e\": {}, \"f\": []} ";
    mjson j;
    char err[128];
    assert_int_equal(mjson_parse(&j, s, strlen(s), err, sizeof err), 0);
    assert_int_equal(j.t[0].type, MJSON_OBJECT);
    assert_int_equal(j.t[0].n, 6);
    int64_t v;
    assert_int_equal(mjson_int(&j, mjson_get(&j, 0, "a"), &v), 0);
    assert_int_equal(v, 7); /* the last one wins */
    int b = mjson_get(&j, 0, "b");
    assert_int_equal(j.t[b].n, 5);
    assert_int_equal(mjson_bool(&j, mjson_at(&j, b, 0)), 1);
    assert_int_equal(mjson_bool(&j, mjson_at(&j, b, 1)), 0);
    assert_int_equal(j.t[mjson_at(&j, b, 2)].type, MJSON_NULL);
    double d;
    assert_int_equal(mjson_num(&j, mjson_at(&j, b, 3), &d), 0);
    assert_true(d == -2500.0);
    assert_int_equal(mjson_int(&j, mjson_at(&j, b, 3), &v), -EINVAL);
    char out[16];
    assert_int_equal(mjson_str(&j, mjson_at(&j, b, 4), out, sizeof out), 4);
    assert_string_equal(out, "x\xc3\xa9\n");
    assert_int_equal(mjson_at(&j, b, 5), -1);
    int c = mjson_get(&j, 0, "c");
    assert_int_equal(mjson_str(&j, mjson_get(&j, c, "d"), out, sizeof out), 4);
    assert_string_equal(out, "\xf0\x9f\x98\x80");
    assert_int_equal(mjson_str(&j, mjson_get(&j, c, "d"), out, 4), -EINVAL); /* no room */
    assert_int_equal(mjson_get(&j, 0, "zz"), -1);
    assert_int_equal(mjson_get(&j, mjson_get(&j, 0, "e"), "a"), -1);
    assert_int_equal(j.t[mjson_get(&j, 0, "f")].n, 0);
    int keys = 0;
    for (int k = mjson_first(&j, 0); k >= 0; k = mjson_next(&j, k)) keys++;
    assert_int_equal(keys, 6);
    mjson_fini(&j);

    const char *big = "[9223372036854775807, -9223372036854775808, 9223372036854775808]";
    assert_int_equal(mjson_parse(&j, big, strlen(big), err, sizeof err), 0);
    assert_int_equal(mjson_int(&j, mjson_at(&j, 0, 0), &v), 0);
    assert_true(v == INT64_MAX);
    assert_int_equal(mjson_int(&j, mjson_at(&j, 0, 1), &v), 0);
    assert_true(v == INT64_MIN);
    assert_int_equal(mjson_int(&j, mjson_at(&j, 0, 2), &v), -EINVAL);
    mjson_fini(&j);
}

static void test_json_invalid(void **state)
{
    (void)state;
    const char *bad[] = {"", " ", "{", "}", "[1,]", "{\"a\" 1}", "{\"a\":}", "{a:1}", "01", "1.",
                         "-", "1e", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"",
                         "\"\\udc00\"", "\"a\x01\"", "\"\xff\"", "\"\xc0\x80\"", "tru", "nul",
                         "[1] 2", "{\"a\":1,}", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
                         "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
                         "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mjson j;
        char err[128] = "";
        assert_int_equal(mjson_parse(&j, bad[i], strlen(bad[i]), err, sizeof err), -EINVAL);
        assert_non_null(strstr(err, "at byte"));
        assert_null(j.t);
    }
    /* Every proper prefix of a valid document is refused. */
    const char *s = "{\"k\": [1, 2.5, \"s\\\"\", {\"x\": null}], \"t\": true}";
    for (size_t l = 0; l < strlen(s); l++) {
        mjson j;
        assert_int_equal(mjson_parse(&j, s, l, NULL, 0), -EINVAL);
    }
}

/* ---- safetensors -------------------------------------------------------------- */

/* A file: header text (padded with blanks to hlen if hlen > its length)
 * then data. */
static size_t st_make(uint8_t *buf, const char *hdr, const void *data, size_t dlen)
{
    size_t hl = strlen(hdr);
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)(hl >> (8 * i));
    memcpy(buf + 8, hdr, hl);
    memcpy(buf + 8 + hl, data, dlen);
    return 8 + hl + dlen;
}

static void test_st_good(void **state)
{
    (void)state;
    uint8_t buf[512], data[32];
    float f[4] = {1.5f, -2, 0, 3.25f};
    memcpy(data, f, 16);
    uint16_t h[4] = {0x3C00, 0xC000, 0x0001, 0x7C00}; /* 1, -2, smallest subnormal, inf */
    memcpy(data + 16, h, 8);
    uint16_t bf[2] = {0x3FC0, 0xC040}; /* 1.5, -3 */
    memcpy(data + 24, bf, 4);
    const char *hdr = "{\"__metadata__\":{\"format\":\"pt\"},"
                      "\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                      "\"h\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[16,24]},"
                      "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[24,28]},"
                      "\"e\":{\"dtype\":\"I64\",\"shape\":[0,3],\"data_offsets\":[28,28]}}";
    size_t n = st_make(buf, hdr, data, 32); /* 4 bytes of padding at the end */
    st_file *sf;
    char err[256];
    assert_int_equal(st_open_mem(buf, n, "m.safetensors", &sf, err, sizeof err), 0);
    assert_int_equal(st_count(sf), 4);
    const st_tensor *t = st_find(sf, "w");
    assert_non_null(t);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->count, 4);
    float out[4];
    assert_int_equal(st_to_f32(t, out), 0);
    assert_memory_equal(out, f, 16);
    assert_int_equal(st_to_f32(st_find(sf, "h"), out), 0);
    assert_true(out[0] == 1 && out[1] == -2 && out[2] == ldexpf(1, -24) && isinf(out[3]));
    assert_int_equal(st_to_f32(st_find(sf, "b"), out), 0);
    assert_true(out[0] == 1.5f && out[1] == -3);
    assert_int_equal(st_to_f32(st_find(sf, "e"), out), EMBED_EFORMAT);
    assert_null(st_find(sf, "x"));
    st_free(sf);

    /* Every truncation is refused (the last tensor ends at byte 28 of the
     * data; the padding may go). */
    for (size_t l = 0; l < n - 4; l++) {
        err[0] = 0;
        assert_int_equal(st_open_mem(buf, l, "m.safetensors", &sf, err, sizeof err),
                         EMBED_EFORMAT);
        assert_non_null(strstr(err, "m.safetensors"));
    }
}

static void st_bad(const char *hdr, size_t dlen, const char *want)
{
    uint8_t buf[1024], data[64] = {0};
    size_t n = st_make(buf, hdr, data, dlen);
    st_file *sf = NULL;
    char err[256] = "";
    assert_int_equal(st_open_mem(buf, n, "m.safetensors", &sf, err, sizeof err), EMBED_EFORMAT);
    assert_null(sf);
    if (!strstr(err, want)) fail_msg("'%s' does not say '%s'", err, want);
}

static void test_st_bad(void **state)
{
    (void)state;
    st_bad("[]", 0, "not a JSON object");
    st_bad("{\"a\":", 0, "header: JSON");
    st_bad("{\"a\":{\"dtype\":\"F8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, "tensor 'a': unsupported dtype 'F8'");
    st_bad("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 'a': no dtype");
    st_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "shape[0]");
    st_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, "shape[0]");
    st_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, "shape is not");
    st_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 8, "needs 8");
    st_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 8, "outside");
    st_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 8, "outside");
    st_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 8, "data_offsets is not");
    st_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
           "\"data_offsets\":[0,4]}}", 8, "needs more than");
    st_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
           "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 16, "overlap");
    st_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
           "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "twice");
    st_bad("{\"__metadata__\":1}", 0, "__metadata__");
    /* A header length beyond the file. */
    uint8_t buf[16] = {0xff, 0xff, 0, 0, 0, 0, 0, 0, '{', '}'};
    st_file *sf;
    char err[256];
    assert_int_equal(st_open_mem(buf, 10, "m.safetensors", &sf, err, sizeof err), EMBED_EFORMAT);
    assert_non_null(strstr(err, "header length 65535"));
    buf[0] = 2, buf[1] = 0;
    assert_int_equal(st_open_mem(buf, 10, "m.safetensors", &sf, err, sizeof err), 0);
    st_free(sf);
    assert_int_equal(st_open("/nonexistent/x.safetensors", &sf, err, sizeof err), -ENOENT);
}

/* ---- WordPiece ---------------------------------------------------------------- */

static const char *VOCAB[] = {
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "world", ",", "!", "un", "##aff", "##able",
    "cafe", "naive", "\xe4\xb8\xad", "\xe6\x96\x87", "the", "##s", "a", "##b", "##c", ".",
    "\xcf\x83\xce\xbf\xcf\x86\xce\xbf\xcf\x82", "'", "don", "t", "i", "$", "5", "x", "##x",
    "\xe1\x84\x92", "##\xe1\x85\xa1", "##\xe1\x86\xab", "##\xcc\x81",
};
#define NVOCAB (sizeof VOCAB / sizeof VOCAB[0])

static wp_tokenizer *wp_make(const wp_opts *o)
{
    char buf[1024];
    size_t n = 0;
    for (size_t i = 0; i < NVOCAB; i++) n += (size_t)sprintf(buf + n, "%s\n", VOCAB[i]);
    wp_tokenizer *t;
    char err[128];
    assert_int_equal(wp_new(buf, n, "vocab.txt", o, &t, err, sizeof err), 0);
    return t;
}

static int32_t vid(const char *tok)
{
    for (size_t i = 0; i < NVOCAB; i++)
        if (!strcmp(VOCAB[i], tok)) return (int32_t)i;
    fail_msg("no token %s", tok);
    return -1;
}

/* Encode and compare with the expected tokens (specials included). */
static void wp_expect(const wp_tokenizer *t, const char *text, uint32_t max, const char *const *want)
{
    int32_t ids[64];
    int n = wp_encode(t, text, strlen(text), max, ids, NULL);
    int k = 0;
    for (; want[k]; k++) {
        if (k >= n) fail_msg("'%s': %d ids, expected more (%s)", text, n, want[k]);
        if (ids[k] != vid(want[k])) fail_msg("'%s': id %d is %d, expected %s", text, k, ids[k], want[k]);
    }
    if (k != n) fail_msg("'%s': %d ids, expected %d", text, n, k);
}

#define W(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_wp_encode(void **state)
{
    (void)state;
    wp_tokenizer *t = wp_make(NULL);
    assert_int_equal(wp_vocab_size(t), NVOCAB);
    wp_expect(t, "Hello, World!", 64, W("[CLS]", "hello", ",", "world", "!", "[SEP]"));
    wp_expect(t, "unaffable", 64, W("[CLS]", "un", "##aff", "##able", "[SEP]"));
    wp_expect(t, "unaffablez", 64, W("[CLS]", "[UNK]", "[SEP]"));
    /* Accents stripped (precomposed and combining), case folded. */
    wp_expect(t, "Caf\xc3\xa9 NA\xc3\x8fVE cafe\xcc\x81", 64, W("[CLS]", "cafe", "naive", "cafe", "[SEP]"));
    /* CJK split per character, even inside a word. */
    wp_expect(t, "a\xe4\xb8\xad\xe6\x96\x87" "a", 64, W("[CLS]", "a", "\xe4\xb8\xad", "\xe6\x96\x87", "a", "[SEP]"));
    /* Control characters removed (joining), odd whitespace splits. */
    wp_expect(t, "hel\x01lo\xe2\x80\xa8world\xc2\xa0" "a\tthe\xe3\x80\x80s", 64,
              W("[CLS]", "hello", "world", "a", "the", "[UNK]", "[SEP]"));
    wp_expect(t, "thes don't $5", 64, W("[CLS]", "the", "##s", "don", "'", "t", "$", "5", "[SEP]"));
    /* Greek final sigma: upper case lowered with the final form. */
    wp_expect(t, "\xce\xa3\xce\x9f\xce\xa6\xce\x9f\xce\xa3.", 64,
              W("[CLS]", "\xcf\x83\xce\xbf\xcf\x86\xce\xbf\xcf\x82", ".", "[SEP]"));
    /* U+0130 lowers to i + U+0307, which stripping drops. */
    wp_expect(t, "\xc4\xb0", 64, W("[CLS]", "i", "[SEP]"));
    /* Hangul: decomposed into jamo when stripping. */
    wp_expect(t, "\xed\x95\x9c", 64, W("[CLS]", "\xe1\x84\x92", "##\xe1\x85\xa1", "##\xe1\x86\xab", "[SEP]"));
    /* Invalid UTF-8 dropped. */
    wp_expect(t, "a\xff\xc0" "b", 64, W("[CLS]", "a", "##b", "[SEP]"));
    /* Words over 100 characters are [UNK]; exactly 100 are split. */
    char w[256];
    memset(w, 'x', 101);
    w[101] = 0;
    int32_t ids[128];
    assert_int_equal(wp_encode(t, w, 101, 128, ids, NULL), 3);
    assert_int_equal(ids[1], vid("[UNK]"));
    assert_int_equal(wp_encode(t, w, 100, 128, ids, NULL), 102);
    assert_int_equal(ids[1], vid("x"));
    assert_int_equal(ids[100], vid("##x"));
    /* Truncation keeps [SEP]. */
    wp_expect(t, "hello world hello", 4, W("[CLS]", "hello", "world", "[SEP]"));
    wp_expect(t, "unaffable", 3, W("[CLS]", "un", "[SEP]"));
    wp_expect(t, "hello", 2, W("[CLS]", "[SEP]"));
    wp_expect(t, "", 64, W("[CLS]", "[SEP]"));
    assert_int_equal(wp_encode(t, "x", 1, 1, ids, NULL), -EINVAL);
    wp_free(t);

    /* Cased: no lowering, no stripping. */
    wp_opts o = WP_OPTS_DEFAULT;
    o.lowercase = 0;
    t = wp_make(&o);
    wp_expect(t, "Hello hello cafe\xcc\x81", 64, W("[CLS]", "[UNK]", "hello", "cafe", "##\xcc\x81", "[SEP]"));
    wp_free(t);
}

static void test_wp_vocab(void **state)
{
    (void)state;
    wp_tokenizer *t;
    char err[128];
    /* Later duplicates win; "\r" is part of a token; no final newline. */
    const char *v = "[PAD]\n[UNK]\n[CLS]\n[SEP]\nab\nab\ncd\r\nef";
    assert_int_equal(wp_new(v, strlen(v), "vocab.txt", NULL, &t, err, sizeof err), 0);
    assert_int_equal(wp_vocab_size(t), 8);
    assert_int_equal(wp_id(t, "ab", 2), 5);
    assert_int_equal(wp_id(t, "cd", 2), -1);
    assert_int_equal(wp_id(t, "cd\r", 3), 6);
    assert_int_equal(wp_id(t, "ef", 2), 7);
    wp_free(t);
    v = "[PAD]\n[CLS]\n[SEP]\n";
    assert_int_equal(wp_new(v, strlen(v), "vocab.txt", NULL, &t, err, sizeof err), EMBED_EFORMAT);
    assert_string_equal(err, "vocab.txt: special token '[UNK]' is missing");
    assert_int_equal(wp_new("", 0, "vocab.txt", NULL, &t, err, sizeof err), EMBED_EFORMAT);
}

/* ---- gemm --------------------------------------------------------------------- */

static void test_gemm(void **state)
{
    (void)state;
    const char *names[] = {"scalar", "avx2", "avx512", "neon"};
    const size_t ms[] = {1, 5, 8, 13, 200}, ns[] = {1, 7, 16, 33, 64}, ks[] = {1, 15, 64, 300};
    uint64_t rng = 42;
    for (size_t v = 0; v < 4; v++) {
        const gemm_kernels *g = gemm_by_name(names[v]);
        if (!g) continue;
        for (size_t a = 0; a < 5; a++)
            for (size_t b = 0; b < 5; b++)
                for (size_t c = 0; c < 4; c++) {
                    size_t m = ms[a], n = ns[b], k = ks[c], lda = k + 3;
                    float *A = malloc(m * lda * 4), *W = malloc(n * k * 4), *bias = malloc(n * 4),
                          *C = malloc(m * (n + 1) * 4);
                    for (size_t i = 0; i < m * lda; i++) A[i] = (float)(test_rng_next(&rng) % 2001) / 1000 - 1;
                    for (size_t i = 0; i < n * k; i++) W[i] = (float)(test_rng_next(&rng) % 2001) / 1000 - 1;
                    for (size_t i = 0; i < n; i++) bias[i] = (float)i;
                    gemm_packed pk;
                    assert_int_equal(gemm_pack(&pk, g, W, n, k), 0);
                    gemm_run(&pk, A, m, lda, bias, C, n + 1);
                    for (size_t i = 0; i < m; i++)
                        for (size_t j = 0; j < n; j++) {
                            double s = bias[j];
                            for (size_t kk = 0; kk < k; kk++) s += (double)A[i * lda + kk] * W[j * k + kk];
                            if (fabs(s - C[i * (n + 1) + j]) > 1e-4 * (1 + sqrt((double)k)))
                                fail_msg("%s m=%zu n=%zu k=%zu [%zu,%zu]: %g vs %g", g->name, m, n, k, i, j,
                                         C[i * (n + 1) + j], s);
                        }
                    gemm_packed_fini(&pk);
                    free(A), free(W), free(bias), free(C);
                }
    }
    assert_non_null(gemm_active());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_valid), cmocka_unit_test(test_json_invalid),
        cmocka_unit_test(test_st_good),    cmocka_unit_test(test_st_bad),
        cmocka_unit_test(test_wp_encode),  cmocka_unit_test(test_wp_vocab),
        cmocka_unit_test(test_gemm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
