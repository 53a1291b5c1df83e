/* embed_bert.c -- the "bert" kind: a BERT-family sentence encoder in plain
 * C (contract in embed.h).
 *
 * The model directory
 *   config.json             hidden_size, num_hidden_layers,
 *                           num_attention_heads, intermediate_size,
 *                           max_position_embeddings, vocab_size (required);
 *                           type_vocab_size (2), layer_norm_eps (1e-12),
 *                           hidden_act ("gelu": erf; "gelu_new",
 *                           "gelu_pytorch_tanh": tanh form; "relu"),
 *                           model_type ("bert" if present),
 *                           position_embedding_type ("absolute" if present)
 *   model.safetensors       the weights under Hugging Face BertModel names,
 *                           with or without a "bert." prefix; F32, F16 or
 *                           BF16 (converted to float once, at load);
 *                           pooler.* and anything else unused is ignored
 *   vocab.txt               as wordpiece.h; its line count must equal
 *                           vocab_size
 *   tokenizer_config.json   do_lower_case (true), strip_accents (null),
 *   (optional)              tokenize_chinese_chars (true), model_max_length,
 *                           and the special tokens
 *   special_tokens_map.json unk/cls/sep/pad_token (a string or
 *   (optional)              {"content": ...}); wins over tokenizer_config
 *   sentence_bert_config.json  max_seq_length (optional)
 * Every tensor is looked up by name and its shape checked against
 * config.json before a byte is used; a missing one, a wrong shape or an
 * unsupported dtype is refused naming the file and the tensor.  The
 * safetensors reader checks the file itself (safetensors.h).
 *
 * The forward pass (bert_forward), for a batch of texts:
 *   tokens     each text's [CLS] pieces [SEP] (at most max_tokens); the
 *              texts' tokens are concatenated, unpadded: M rows in all
 *   embedding  word + position (0..T-1 within its text) + token type 0,
 *              then layer norm
 *   per layer  QKV = X Wqkv^T + b (one product: the three weights packed
 *              as one 3H x H matrix); per text and head, softmax(Q K^T /
 *              sqrt(d)) V over that text's tokens only -- what the padding
 *              mask gives a padded batch, where a masked score adds
 *              float32's lowest value and its exp is exactly 0;
 *              X = LN(X + ctx Wo^T + bo); X = LN(X + act(X W1^T + b1)
 *              W2^T + b2)
 *   pooling    mean over the text's tokens, [CLS] and [SEP] included
 *              (sentence-transformers' mean pooling with its attention
 *              mask), or the [CLS] row; then L2 normalisation (unless
 *              turned off)
 * Texts are taken in chunks of at most BERT_CHUNK_TOKENS tokens (a text is
 * never split), so the activations of a call are bounded: at most
 * BERT_CHUNK_TOKENS x (5 hidden + intermediate) floats (14 MB for MiniLM),
 * one allocation per call, sized down when the texts cannot fill a chunk
 * (one text: max_tokens rows).  1024 rows keep the products efficient
 * (gemm.h's blocks are 192 rows) while several workers embedding at once
 * do not each hold 50 MB.  The four products per layer are gemm.h's (packed at load for the
 * kernel of the active SIMD level); attention uses the distance kernels'
 * dot product and is a few per cent of the work at 64 tokens.
 *
 * Threads: the model is immutable once loaded; a forward pass allocates
 * its own activations, so any number of threads may embed at once. */
#include "embed_impl.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engram/dist.h"
#include "engram/gemm.h"
#include "engram/mjson.h"
#include "engram/safetensors.h"
#include "engram/wordpiece.h"

#define BERT_CHUNK_TOKENS 1024u
#define BERT_JSON_MAX ((size_t)1 << 20)   /* config files are small */
#define BERT_HIDDEN_MAX 16384u
#define BERT_LAYERS_MAX 128u
#define BERT_INTER_MAX 65536u
#define BERT_POS_MAX 8192u
#define BERT_TYPES_MAX 1024u

enum { ACT_GELU, ACT_GELU_TANH, ACT_RELU };

typedef struct bert_layer {
    gemm_packed qkv, ao, ff1, ff2;
    float *qkv_b, *ao_b, *ln1_g, *ln1_b, *ff1_b, *ff2_b, *ln2_g, *ln2_b;
} bert_layer;

typedef struct bert {
    embedder base;            /* first: embed.c sees an embedder */
    wp_tokenizer *tok;
    uint32_t hidden, layers, heads, inter, positions, vocab, types, max_tokens;
    float eps;
    int act, pooling, normalize;
    float *wemb, *pemb, *temb, *eln_g, *eln_b;
    bert_layer *l;
    const gemm_kernels *g;
} bert;

/* ---- loading: JSON files ------------------------------------------------------ */

typedef struct bert_json {
    uint8_t *buf;
    size_t len;
    mjson j;
    const char *name;
} bert_json;

/* Read dir/name and parse it.  1 loaded, 0 absent (and optional), <0. */
static int bert_json_load(bert_json *bj, const char *dir, const char *name, int optional,
                          char *err, size_t errlen)
{
    char path[4096];
    memset(bj, 0, sizeof *bj);
    bj->name = name;
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return embed_fail(err, errlen, -EINVAL, "%s: path too long", dir);
    int rc = embed_read_file(path, BERT_JSON_MAX, &bj->buf, &bj->len, err, errlen);
    if (rc == -ENOENT && optional) return 0;
    if (rc < 0) return rc;
    char jerr[128];
    rc = mjson_parse(&bj->j, (const char *)bj->buf, bj->len, jerr, sizeof jerr);
    if (rc == 0 && bj->j.t[0].type != MJSON_OBJECT) {
        mjson_fini(&bj->j);
        snprintf(jerr, sizeof jerr, "not a JSON object");
        rc = -EINVAL;
    }
    if (rc < 0) {
        free(bj->buf);
        bj->buf = NULL;
        return embed_fail(err, errlen, rc == -ENOMEM ? -ENOMEM : EMBED_EFORMAT, "%s: %s", name, jerr);
    }
    return 1;
}

static void bert_json_fini(bert_json *bj)
{
    if (bj->buf) mjson_fini(&bj->j);
    free(bj->buf);
    bj->buf = NULL;
}

/* An integer member in [lo, hi]: 0 set, 1 absent (*out untouched), <0. */
static int bert_json_u32(const bert_json *bj, const char *key, uint32_t lo, uint32_t hi,
                         uint32_t *out, char *err, size_t errlen)
{
    int t = bj->buf ? mjson_get(&bj->j, 0, key) : -1;
    if (t < 0 || bj->j.t[t].type == MJSON_NULL) return 1;
    int64_t v;
    if (mjson_int(&bj->j, t, &v) < 0 || v < lo || v > hi)
        return embed_fail(err, errlen, EMBED_EFORMAT, "%s: %s must be an integer in [%u, %u]",
                          bj->name, key, lo, hi);
    *out = (uint32_t)v;
    return 0;
}

/* A boolean member: 0/1, or dflt when absent or null; <0 otherwise. */
static int bert_json_bool(const bert_json *bj, const char *key, int dflt, char *err, size_t errlen)
{
    int t = bj->buf ? mjson_get(&bj->j, 0, key) : -1;
    if (t < 0 || bj->j.t[t].type == MJSON_NULL) return dflt;
    int b = mjson_bool(&bj->j, t);
    if (b < 0) return embed_fail(err, errlen, EMBED_EFORMAT, "%s: %s must be true or false", bj->name, key);
    return b;
}

/* A string member (or {"content": string}, as special tokens are written)
 * into out[cap]: 0 set, 1 absent, <0. */
static int bert_json_str(const bert_json *bj, const char *key, char *out, size_t cap, char *err,
                         size_t errlen)
{
    int t = bj->buf ? mjson_get(&bj->j, 0, key) : -1;
    if (t < 0 || bj->j.t[t].type == MJSON_NULL) return 1;
    if (bj->j.t[t].type == MJSON_OBJECT) t = mjson_get(&bj->j, t, "content");
    if (mjson_str(&bj->j, t, out, cap) < 0)
        return embed_fail(err, errlen, EMBED_EFORMAT, "%s: %s must be a string (under %zu bytes)",
                          bj->name, key, cap);
    return 0;
}

static int bert_config(bert *b, const char *dir, char *err, size_t errlen)
{
    bert_json c;
    int rc = bert_json_load(&c, dir, "config.json", 0, err, errlen);
    if (rc < 0) return rc;
    static const struct {
        const char *key;
        uint32_t lo, hi;
        size_t off;
    } req[] = {
        {"hidden_size", 1, BERT_HIDDEN_MAX, offsetof(bert, hidden)},
        {"num_hidden_layers", 1, BERT_LAYERS_MAX, offsetof(bert, layers)},
        {"num_attention_heads", 1, BERT_HIDDEN_MAX, offsetof(bert, heads)},
        {"intermediate_size", 1, BERT_INTER_MAX, offsetof(bert, inter)},
        {"max_position_embeddings", 2, BERT_POS_MAX, offsetof(bert, positions)},
        {"vocab_size", 4, WP_VOCAB_MAX, offsetof(bert, vocab)},
    };
    for (size_t i = 0; i < sizeof req / sizeof req[0] && rc >= 0; i++) {
        uint32_t *f = (uint32_t *)((char *)b + req[i].off);
        rc = bert_json_u32(&c, req[i].key, req[i].lo, req[i].hi, f, err, errlen);
        if (rc == 1) rc = embed_fail(err, errlen, EMBED_EFORMAT, "config.json: no %s", req[i].key);
    }
    b->types = 2;
    if (rc >= 0) rc = bert_json_u32(&c, "type_vocab_size", 1, BERT_TYPES_MAX, &b->types, err, errlen);
    if (rc >= 0 && b->hidden % b->heads)
        rc = embed_fail(err, errlen, EMBED_EFORMAT,
                        "config.json: hidden_size %u is not a multiple of num_attention_heads %u",
                        b->hidden, b->heads);
    char s[64];
    b->eps = 1e-12f;
    int t = mjson_get(&c.j, 0, "layer_norm_eps");
    double eps;
    if (rc >= 0 && t >= 0) {
        if (mjson_num(&c.j, t, &eps) < 0 || !(eps >= 0 && eps < 1))
            rc = embed_fail(err, errlen, EMBED_EFORMAT, "config.json: layer_norm_eps must be a number in [0, 1)");
        else b->eps = (float)eps;
    }
    b->act = ACT_GELU;
    if (rc >= 0 && (rc = bert_json_str(&c, "hidden_act", s, sizeof s, err, errlen)) == 0) {
        if (!strcmp(s, "gelu")) b->act = ACT_GELU;
        else if (!strcmp(s, "gelu_new") || !strcmp(s, "gelu_pytorch_tanh")) b->act = ACT_GELU_TANH;
        else if (!strcmp(s, "relu")) b->act = ACT_RELU;
        else rc = embed_fail(err, errlen, EMBED_EFORMAT, "config.json: unsupported hidden_act '%s'", s);
    }
    if (rc >= 0 && (rc = bert_json_str(&c, "model_type", s, sizeof s, err, errlen)) == 0 &&
        strcmp(s, "bert"))
        rc = embed_fail(err, errlen, EMBED_EFORMAT,
                        "config.json: model_type '%s' is not supported (only bert)", s);
    if (rc >= 0 && (rc = bert_json_str(&c, "position_embedding_type", s, sizeof s, err, errlen)) == 0 &&
        strcmp(s, "absolute"))
        rc = embed_fail(err, errlen, EMBED_EFORMAT,
                        "config.json: position_embedding_type '%s' is not supported (only absolute)", s);
    bert_json_fini(&c);
    return rc < 0 ? rc : 0;
}

/* The tokenizer: options from tokenizer_config.json and
 * special_tokens_map.json, vocab.txt, and max tokens. */
static int bert_tokenizer(bert *b, const char *dir, const embed_bert_opts *o, char *err,
                          size_t errlen)
{
    bert_json tc, sm, sb;
    int rc = bert_json_load(&tc, dir, "tokenizer_config.json", 1, err, errlen);
    if (rc < 0) return rc;
    rc = bert_json_load(&sm, dir, "special_tokens_map.json", 1, err, errlen);
    if (rc < 0) {
        bert_json_fini(&tc);
        return rc;
    }
    rc = bert_json_load(&sb, dir, "sentence_bert_config.json", 1, err, errlen);
    if (rc < 0) {
        bert_json_fini(&tc), bert_json_fini(&sm);
        return rc;
    }
    wp_opts wo = WP_OPTS_DEFAULT;
    char special[4][64];
    const char *keys[4] = {"unk_token", "cls_token", "sep_token", "pad_token"};
    const char **slots[4] = {&wo.unk, &wo.cls, &wo.sep, &wo.pad};
    rc = 0;
    for (int i = 0; i < 4 && rc >= 0; i++) {
        rc = bert_json_str(&sm, keys[i], special[i], sizeof special[i], err, errlen);
        if (rc == 1) rc = bert_json_str(&tc, keys[i], special[i], sizeof special[i], err, errlen);
        if (rc == 0) *slots[i] = special[i];
    }
    if (rc >= 0 && (rc = bert_json_bool(&tc, "do_lower_case", 1, err, errlen)) >= 0) wo.lowercase = rc;
    if (rc >= 0 && (rc = bert_json_bool(&tc, "strip_accents", -1, err, errlen)) >= -1) wo.strip_accents = rc;
    if (rc >= -1 && (rc = bert_json_bool(&tc, "tokenize_chinese_chars", 1, err, errlen)) >= 0)
        wo.split_cjk = rc;
    /* max tokens: the option, else sentence-transformers' max_seq_length,
     * else model_max_length (tokenizers write huge sentinels there: only a
     * value within the positions counts), else the positions. */
    uint32_t mt = b->positions, v = 0;
    if (rc >= 0 && (rc = bert_json_u32(&sb, "max_seq_length", 2, BERT_POS_MAX, &v, err, errlen)) == 0)
        mt = v;
    else if (rc == 1) {
        int t = tc.buf ? mjson_get(&tc.j, 0, "model_max_length") : -1;
        int64_t x;
        if (t >= 0 && mjson_int(&tc.j, t, &x) == 0 && x >= 2 && x < b->positions) mt = (uint32_t)x;
        rc = 0;
    }
    if (rc >= 0 && o->max_tokens) {
        if (o->max_tokens < 2 || o->max_tokens > b->positions)
            rc = embed_fail(err, errlen, -EINVAL, "max-tokens %u is outside [2, %u] (max_position_embeddings)",
                            o->max_tokens, b->positions);
        else mt = o->max_tokens;
    }
    if (mt > b->positions) mt = b->positions;
    b->max_tokens = mt;
    if (rc >= 0) {
        char path[4096];
        snprintf(path, sizeof path, "%s/vocab.txt", dir);
        rc = wp_load(path, &wo, &b->tok, err, errlen);
    }
    if (rc >= 0 && wp_vocab_size(b->tok) != b->vocab)
        rc = embed_fail(err, errlen, EMBED_EFORMAT, "vocab.txt: %u tokens, config.json says vocab_size %u",
                        wp_vocab_size(b->tok), b->vocab);
    bert_json_fini(&tc), bert_json_fini(&sm), bert_json_fini(&sb);
    return rc < 0 ? rc : 0;
}

/* ---- loading: weights --------------------------------------------------------- */

typedef struct bert_loader {
    bert *b;
    st_file *f;
    char *err;
    size_t errlen;
    int dtype_rank;           /* the smallest dtype seen: 0 F32, 1 BF16, 2 F16 */
} bert_loader;

/* The tensor `name` (with or without "bert."), of shape [d0] or [d0, d1]
 * (d1 == 0: one dimension), as floats (malloc'd).  NULL with err set. */
static float *bert_tensor(bert_loader *L, const char *name, uint64_t d0, uint64_t d1)
{
    char full[160];
    const st_tensor *t = st_find(L->f, name);
    if (!t) {
        snprintf(full, sizeof full, "bert.%s", name);
        t = st_find(L->f, full);
    }
    if (!t) {
        embed_fail(L->err, L->errlen, EMBED_EFORMAT, "model.safetensors: missing tensor '%s'", name);
        return NULL;
    }
    int nd = d1 ? 2 : 1;
    if (t->ndim != nd || t->shape[0] != d0 || (nd == 2 && t->shape[1] != d1)) {
        char got[96] = "[";
        for (int i = 0; i < t->ndim; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%llu", i ? ", " : "",
                     (unsigned long long)t->shape[i]);
        strncat(got, "]", sizeof got - strlen(got) - 1);
        if (nd == 2)
            embed_fail(L->err, L->errlen, EMBED_EFORMAT,
                       "model.safetensors: tensor '%s' has shape %s, expected [%llu, %llu]",
                       t->name, got, (unsigned long long)d0, (unsigned long long)d1);
        else
            embed_fail(L->err, L->errlen, EMBED_EFORMAT,
                       "model.safetensors: tensor '%s' has shape %s, expected [%llu]", t->name, got,
                       (unsigned long long)d0);
        return NULL;
    }
    if (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16) {
        embed_fail(L->err, L->errlen, EMBED_EFORMAT,
                   "model.safetensors: tensor '%s' is %s (F32, F16 or BF16 expected)", t->name,
                   st_dtype_name(t->dtype));
        return NULL;
    }
    int rank = t->dtype == ST_F32 ? 0 : t->dtype == ST_BF16 ? 1 : 2;
    if (rank > L->dtype_rank) L->dtype_rank = rank;
    float *out = malloc((size_t)t->count * sizeof *out + 1);
    if (!out) {
        embed_fail(L->err, L->errlen, -ENOMEM, "model.safetensors: out of memory for '%s'", t->name);
        return NULL;
    }
    st_to_f32(t, out);
    L->b->base.mem += (size_t)t->count * sizeof *out;
    return out;
}

/* A Linear layer's weight [n, k], packed; bias [n] into *bias. */
static int bert_linear(bert_loader *L, const char *prefix, uint32_t n, uint32_t k,
                       gemm_packed *w, float **bias)
{
    char name[160];
    snprintf(name, sizeof name, "%s.weight", prefix);
    float *wt = bert_tensor(L, name, n, k);
    if (!wt) return -1;
    snprintf(name, sizeof name, "%s.bias", prefix);
    *bias = bert_tensor(L, name, n, 0);
    int rc = *bias ? gemm_pack(w, L->b->g, wt, n, k) : -1;
    L->b->base.mem -= (size_t)n * k * sizeof(float);
    free(wt);
    if (rc == -ENOMEM)
        return embed_fail(L->err, L->errlen, -ENOMEM, "model.safetensors: out of memory packing '%s'", prefix);
    if (rc == 0) L->b->base.mem += gemm_packed_bytes(w);
    return rc;
}

/* Q, K and V: three [H, H] weights packed as one [3H, H]. */
static int bert_qkv(bert_loader *L, uint32_t li, bert_layer *ly)
{
    uint32_t h = L->b->hidden;
    const char *part[3] = {"query", "key", "value"};
    float *w = malloc((size_t)3 * h * h * sizeof *w), *bias = malloc((size_t)3 * h * sizeof *bias);
    int rc = w && bias ? 0 : embed_fail(L->err, L->errlen, -ENOMEM, "model.safetensors: out of memory");
    for (int i = 0; i < 3 && rc == 0; i++) {
        char name[160];
        snprintf(name, sizeof name, "encoder.layer.%u.attention.self.%s.weight", li, part[i]);
        float *t = bert_tensor(L, name, h, h);
        if (!t) { rc = -1; break; }
        memcpy(w + (size_t)i * h * h, t, (size_t)h * h * sizeof *t);
        free(t);
        snprintf(name, sizeof name, "encoder.layer.%u.attention.self.%s.bias", li, part[i]);
        if (!(t = bert_tensor(L, name, h, 0))) { rc = -1; break; }
        memcpy(bias + (size_t)i * h, t, (size_t)h * sizeof *t);
        free(t);
        L->b->base.mem -= ((size_t)h * h + h) * sizeof(float);
    }
    if (rc == 0 && gemm_pack(&ly->qkv, L->b->g, w, (size_t)3 * h, h) < 0)
        rc = embed_fail(L->err, L->errlen, -ENOMEM, "model.safetensors: out of memory");
    free(w);
    if (rc < 0) {
        free(bias);
        return rc;
    }
    ly->qkv_b = bias;
    L->b->base.mem += gemm_packed_bytes(&ly->qkv) + (size_t)3 * h * sizeof(float);
    return 0;
}

static int bert_layer_load(bert_loader *L, uint32_t li, bert_layer *ly)
{
    bert *b = L->b;
    uint32_t h = b->hidden, in = b->inter;
    char p[160], q[160];
    if (bert_qkv(L, li, ly) < 0) return -1;
    snprintf(p, sizeof p, "encoder.layer.%u.attention.output.dense", li);
    if (bert_linear(L, p, h, h, &ly->ao, &ly->ao_b) < 0) return -1;
    snprintf(p, sizeof p, "encoder.layer.%u.attention.output.LayerNorm.weight", li);
    snprintf(q, sizeof q, "encoder.layer.%u.attention.output.LayerNorm.bias", li);
    if (!(ly->ln1_g = bert_tensor(L, p, h, 0)) || !(ly->ln1_b = bert_tensor(L, q, h, 0))) return -1;
    snprintf(p, sizeof p, "encoder.layer.%u.intermediate.dense", li);
    if (bert_linear(L, p, in, h, &ly->ff1, &ly->ff1_b) < 0) return -1;
    snprintf(p, sizeof p, "encoder.layer.%u.output.dense", li);
    if (bert_linear(L, p, h, in, &ly->ff2, &ly->ff2_b) < 0) return -1;
    snprintf(p, sizeof p, "encoder.layer.%u.output.LayerNorm.weight", li);
    snprintf(q, sizeof q, "encoder.layer.%u.output.LayerNorm.bias", li);
    if (!(ly->ln2_g = bert_tensor(L, p, h, 0)) || !(ly->ln2_b = bert_tensor(L, q, h, 0))) return -1;
    return 0;
}

static int bert_weights(bert *b, const char *dir, char *err, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    bert_loader L = {.b = b, .err = err, .errlen = errlen};
    int rc = st_open(path, &L.f, err, errlen);
    if (rc < 0) return rc;
    uint32_t h = b->hidden;
    rc = -1;
    if ((b->wemb = bert_tensor(&L, "embeddings.word_embeddings.weight", b->vocab, h)) &&
        (b->pemb = bert_tensor(&L, "embeddings.position_embeddings.weight", b->positions, h)) &&
        (b->temb = bert_tensor(&L, "embeddings.token_type_embeddings.weight", b->types, h)) &&
        (b->eln_g = bert_tensor(&L, "embeddings.LayerNorm.weight", h, 0)) &&
        (b->eln_b = bert_tensor(&L, "embeddings.LayerNorm.bias", h, 0))) {
        b->l = calloc(b->layers, sizeof *b->l);
        if (!b->l) {
            rc = embed_fail(err, errlen, -ENOMEM, "out of memory");
        } else {
            rc = 0;
            for (uint32_t i = 0; i < b->layers && rc == 0; i++) rc = bert_layer_load(&L, i, &b->l[i]);
        }
    }
    static const char *dtypes[] = {"F32", "BF16", "F16"};
    b->base.format = dtypes[L.dtype_rank];
    st_free(L.f);
    /* The messages were written by bert_tensor; its -1 means EMBED_EFORMAT
     * unless it said -ENOMEM (then err says so). */
    if (rc == -1) rc = strstr(err, "out of memory") ? -ENOMEM : EMBED_EFORMAT;
    return rc;
}

/* ---- the forward pass --------------------------------------------------------- */

static void bert_layernorm(float *x, uint32_t h, const float *g, const float *b, float eps)
{
    double s = 0, ss = 0;
    for (uint32_t i = 0; i < h; i++) s += x[i];
    double mean = s / h;
    for (uint32_t i = 0; i < h; i++) ss += (x[i] - mean) * (x[i] - mean);
    float inv = (float)(1.0 / sqrt(ss / h + eps));
    for (uint32_t i = 0; i < h; i++) x[i] = (float)((x[i] - mean) * inv) * g[i] + b[i];
}

static void bert_act(float *x, size_t n, int act)
{
    switch (act) {
    case ACT_GELU:
        for (size_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
        break;
    case ACT_GELU_TANH:
        for (size_t i = 0; i < n; i++)
            x[i] = 0.5f * x[i] *
                   (1.0f + tanhf(0.7978845608028654f * (x[i] + 0.044715f * x[i] * x[i] * x[i])));
        break;
    default:
        for (size_t i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0;
    }
}

/* o += w * v.  restrict (and the vectoriser's dynamic cost model for this
 * file, CMakeLists.txt) let the compiler vectorise it with the baseline
 * ISA: as a scalar loop it was an eighth of the time at 64 tokens. */
static void bert_axpy(float *restrict o, const float *restrict v, float w, uint32_t d)
{
    for (uint32_t k = 0; k < d; k++) o[k] += w * v[k];
}

/* Self-attention of one text (rows [0, t) of qkv, stride 3h) into ctx
 * (stride h).  p: t floats of scratch. */
static void bert_attend(const bert *b, const float *qkv, uint32_t t, float *ctx, float *p)
{
    uint32_t h = b->hidden, d = h / b->heads;
    dist_pair_fn *dot = dist_active()->dot;
    float scale = 1.0f / sqrtf((float)d);
    for (uint32_t hd = 0; hd < b->heads; hd++)
        for (uint32_t i = 0; i < t; i++) {
            const float *q = qkv + (size_t)i * 3 * h + hd * d;
            float mx = -INFINITY, sum = 0;
            for (uint32_t j = 0; j < t; j++) {
                p[j] = dot(q, qkv + (size_t)j * 3 * h + h + hd * d, d) * scale;
                if (p[j] > mx) mx = p[j];
            }
            for (uint32_t j = 0; j < t; j++) sum += p[j] = expf(p[j] - mx);
            float inv = 1.0f / sum, *o = ctx + (size_t)i * h + hd * d;
            memset(o, 0, d * sizeof *o);
            for (uint32_t j = 0; j < t; j++)
                bert_axpy(o, qkv + (size_t)j * 3 * h + 2 * h + hd * d, p[j] * inv, d);
        }
}

/* Encode n texts whose ids are ids[off[i] .. off[i+1]) into out[n * h]
 * (pooled, normalised if asked).  work: m x (5h + inter) + maxlen floats. */
static void bert_forward(const bert *b, size_t n, const int32_t *ids, const uint32_t *off,
                         float *work, float *out)
{
    uint32_t h = b->hidden;
    size_t m = off[n];
    float *x = work, *qkv = x + m * h, *ctx = qkv + m * 3 * h, *ff = ctx + m * h,
          *p = ff + m * b->inter;
    for (size_t s = 0; s < n; s++)
        for (uint32_t i = off[s]; i < off[s + 1]; i++) {
            float *row = x + (size_t)i * h;
            const float *w = b->wemb + (size_t)ids[i] * h, *pe = b->pemb + (size_t)(i - off[s]) * h;
            for (uint32_t k = 0; k < h; k++) row[k] = w[k] + pe[k] + b->temb[k];
            bert_layernorm(row, h, b->eln_g, b->eln_b, b->eps);
        }
    for (uint32_t li = 0; li < b->layers; li++) {
        const bert_layer *ly = &b->l[li];
        gemm_run(&ly->qkv, x, m, h, ly->qkv_b, qkv, 3 * (size_t)h);
        for (size_t s = 0; s < n; s++)
            bert_attend(b, qkv + (size_t)off[s] * 3 * h, off[s + 1] - off[s], ctx + (size_t)off[s] * h, p);
        gemm_run(&ly->ao, ctx, m, h, ly->ao_b, qkv, h); /* qkv is free again: reuse */
        for (size_t i = 0; i < m; i++) {
            float *r = x + i * h;
            const float *a = qkv + i * h;
            for (uint32_t k = 0; k < h; k++) r[k] += a[k];
            bert_layernorm(r, h, ly->ln1_g, ly->ln1_b, b->eps);
        }
        gemm_run(&ly->ff1, x, m, h, ly->ff1_b, ff, b->inter);
        bert_act(ff, m * b->inter, b->act);
        gemm_run(&ly->ff2, ff, m, b->inter, ly->ff2_b, qkv, h);
        for (size_t i = 0; i < m; i++) {
            float *r = x + i * h;
            const float *a = qkv + i * h;
            for (uint32_t k = 0; k < h; k++) r[k] += a[k];
            bert_layernorm(r, h, ly->ln2_g, ly->ln2_b, b->eps);
        }
    }
    for (size_t s = 0; s < n; s++) {
        float *o = out + s * h;
        uint32_t t = off[s + 1] - off[s];
        if (b->pooling == EMBED_POOL_CLS) {
            memcpy(o, x + (size_t)off[s] * h, h * sizeof *o);
        } else {
            for (uint32_t k = 0; k < h; k++) {
                double acc = 0;
                for (uint32_t i = off[s]; i < off[s + 1]; i++) acc += x[(size_t)i * h + k];
                o[k] = (float)(acc / t);
            }
        }
        if (b->normalize) embed_l2_normalise(o, h);
    }
}

/* Embed texts [0, n): tokenise, then forward in chunks of at most
 * BERT_CHUNK_TOKENS tokens of texts with at least one piece. */
static int bert_texts(const embedder *e, size_t n, const void *const *texts, const size_t *lens,
                      float *out, int *counts)
{
    const bert *b = (const bert *)e;
    uint32_t h = b->hidden, mt = b->max_tokens;
    if (n == 0) return 0;
    /* Room for the chunk: BERT_CHUNK_TOKENS, or less when the texts
     * cannot fill it (a single text needs max_tokens rows at most). */
    size_t cap = BERT_CHUNK_TOKENS > mt ? BERT_CHUNK_TOKENS : mt;
    if (n < cap / mt) cap = n * mt;
    size_t maxn = cap / 2;
    int32_t *ids = malloc(cap * sizeof *ids);
    uint32_t *off = malloc((maxn + 1) * sizeof *off);
    size_t *which = malloc(maxn * sizeof *which);
    float *work = malloc((cap * (5 * (size_t)h + b->inter) + mt) * sizeof *work);
    float *pooled = malloc(maxn * h * sizeof *pooled);
    int rc = 0;
    if (!ids || !off || !which || !work || !pooled) rc = -ENOMEM;
    size_t i = 0;
    while (rc == 0 && i < n) {
        size_t k = 0;
        off[0] = 0;
        /* Fill the chunk: texts until the next might not fit. */
        while (i < n && k < maxn && off[k] + mt <= cap) {
            uint32_t pieces;
            int got = wp_encode(b->tok, texts[i], lens[i], mt, ids + off[k], &pieces);
            if (counts) counts[i] = (int)pieces;
            if (pieces == 0) {
                memset(out + i * h, 0, h * sizeof *out);
            } else {
                which[k] = i;
                off[k + 1] = off[k] + (uint32_t)got;
                k++;
            }
            i++;
        }
        if (k == 0) continue;
        bert_forward(b, k, ids, off, work, pooled);
        for (size_t s = 0; s < k; s++) memcpy(out + which[s] * h, pooled + s * h, h * sizeof *out);
    }
    free(ids), free(off), free(which), free(work), free(pooled);
    return rc;
}

static int bert_text(const embedder *e, const uint8_t *p, size_t len, float *out)
{
    const void *t = p;
    int count = 0;
    int rc = bert_texts(e, 1, &t, &len, out, &count);
    return rc < 0 ? rc : count;
}

static int bert_tokenize(const embedder *e, const uint8_t *p, size_t len, int32_t *ids, uint32_t cap)
{
    const bert *b = (const bert *)e;
    return wp_encode(b->tok, p, len, cap < b->max_tokens ? cap : b->max_tokens, ids, NULL);
}

static uint32_t bert_max_tokens(const embedder *e) { return ((const bert *)e)->max_tokens; }

static void bert_free(embedder *e)
{
    bert *b = (bert *)e;
    wp_free(b->tok);
    free(b->wemb), free(b->pemb), free(b->temb), free(b->eln_g), free(b->eln_b);
    for (uint32_t i = 0; b->l && i < b->layers; i++) {
        bert_layer *ly = &b->l[i];
        gemm_packed_fini(&ly->qkv), gemm_packed_fini(&ly->ao);
        gemm_packed_fini(&ly->ff1), gemm_packed_fini(&ly->ff2);
        free(ly->qkv_b), free(ly->ao_b), free(ly->ln1_g), free(ly->ln1_b);
        free(ly->ff1_b), free(ly->ff2_b), free(ly->ln2_g), free(ly->ln2_b);
    }
    free(b->l);
    free(b);
}

static const embed_ops BERT_OPS = {
    .kind = "bert",
    .text = bert_text,
    .lookup = NULL,
    .free = bert_free,
    .texts = bert_texts,
    .tokenize = bert_tokenize,
    .max_tokens = bert_max_tokens,
};

int embed_bert_load(const char *dir, const embed_bert_opts *opts, embedder **out, char *err,
                    size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    if (!dir || !out) return embed_fail(err, errlen, -EINVAL, "no model directory");
    *out = NULL;
    embed_bert_opts o = {0};
    if (opts) o = *opts;
    if (o.pooling != EMBED_POOL_MEAN && o.pooling != EMBED_POOL_CLS)
        return embed_fail(err, errlen, -EINVAL, "unknown pooling");
    const gemm_kernels *g = o.kernel ? gemm_by_name(o.kernel) : gemm_active();
    if (!g) return embed_fail(err, errlen, -EINVAL, "matrix kernel '%s' is not available", o.kernel);
    bert *b = calloc(1, sizeof *b);
    if (!b) return embed_fail(err, errlen, -ENOMEM, "out of memory");
    b->base.ops = &BERT_OPS;
    b->base.mem = sizeof *b;
    b->base.format = "F32";
    b->g = g;
    b->pooling = o.pooling;
    b->normalize = !o.no_normalize;
    int rc = bert_config(b, dir, err, errlen);
    if (rc == 0) rc = bert_tokenizer(b, dir, &o, err, errlen);
    if (rc == 0) rc = bert_weights(b, dir, err, errlen);
    if (rc < 0) {
        bert_free(&b->base);
        return rc;
    }
    b->base.dim = b->hidden;
    b->base.vocab = b->vocab;
    b->base.mem += wp_memory(b->tok);
    *out = &b->base;
    return 0;
}
