/* embed.h -- in-process text embedders: text bytes in, an L2-normalised
 * float vector out.  Pure: no server state, no clock, no threads of its own.
 *
 * Two kinds share one handle:
 *   "hash"   feature hashing of words, word bigrams and character 3-grams
 *            into dim signed buckets.  Needs no file; any dim in
 *            1..EMBED_DIM_MAX; the same text gives the same vector on every
 *            machine and run (fixed seeded hash, no locale, no randomness).
 *   "model"  a static word-embedding file (word2vec / GloVe / fastText text
 *            .vec, word2vec binary; format detected from content): the
 *            normalised mean of the known words' vectors, SIF-weighted by
 *            default.  dim comes from the file.
 *   "bert"   a BERT-family sentence encoder (sentence-transformers models
 *            such as all-MiniLM-L6-v2) loaded from a directory: config.json,
 *            model.safetensors (F32, F16 or BF16 weights), vocab.txt and
 *            optionally tokenizer_config.json, special_tokens_map.json and
 *            sentence_bert_config.json.  WordPiece tokens (wordpiece.h),
 *            the transformer, mean or CLS pooling, L2 normalisation
 *            (optional).  dim is hidden_size.  The loader, the forward pass
 *            and what is refused are in src/embed/embed_bert.c.
 * Each part is specified in the header comment of the file that implements
 * it: the tokeniser in src/embed/embed.c, the hash features and their
 * weights in src/embed/embed_hash.c, the model file formats, what is
 * refused and the SIF weights in src/embed/embed_wordvec.c.
 *
 * Texts are any bytes (NULs and invalid UTF-8 included).  A text with no
 * usable word -- empty, only punctuation, or (model) only unknown words --
 * gives the zero vector and embed_text returns 0: the caller decides whether
 * that is an error (a zero vector is at cosine distance 1 from everything).
 *
 * Errors: 0 or a negative code: -EINVAL (bad argument), -ENOMEM, -errno from
 * open/read of a model file, or EMBED_EFORMAT (malformed or unsupported
 * model file).  Functions taking err/errlen also write a one-line message
 * there (if errlen > 0): for file problems it names the path and the line
 * (text) or byte offset (binary), e.g.
 *   "glove.txt: line 17: expected 300 values after the word, found 299".
 * The message never ends in a newline.  Nothing is left allocated on error.
 *
 * Threads: an embedder is immutable once created; any number of threads may
 * call embed_text / embed_texts / embed_lookup / the accessors on one
 * embedder at the same time (hash and model: scratch lives on the caller's
 * stack, at most ~18 KiB; bert: ~12 KiB of stack, and heap buffers per call
 * that are freed before it returns).  embed_free must not race with them.
 *
 * Ownership: the caller owns the embedder (embed_free) and every out buffer;
 * nothing returned points into caller memory. */
#ifndef ENGRAM_EMBED_H
#define ENGRAM_EMBED_H

#include <stddef.h>
#include <stdint.h>

#define EMBED_DIM_MAX 65536u       /* as VINDEX_DIM_MAX */

/* Project error codes (negative, reserved range -10100..-10199). */
#define EMBED_EFORMAT (-10100)     /* model file malformed or unsupported */

typedef struct embedder embedder;

/* The built-in feature-hashing embedder with dim dimensions (1..EMBED_DIM_MAX).
 * Returns 0 and sets *out, or -EINVAL (dim out of range, out NULL) or
 * -ENOMEM, with a message in err. */
int embed_hash_new(uint32_t dim, embedder **out, char *err, size_t errlen);

/* Options for static models; a zeroed struct means the defaults. */
typedef struct embed_model_opts {
    uint32_t max_words;  /* 0 = the whole file; else read only the first
                            max_words entries (files are frequency-ordered,
                            so this keeps the most common words) */
    int plain_mean;      /* 0 = SIF weights (default), 1 = unweighted mean */
    double sif_a;        /* SIF's a: 0 = EMBED_SIF_A_DEFAULT, else finite > 0 */
} embed_model_opts;

#define EMBED_SIF_A_DEFAULT 1e-3

/* Load a static word-embedding model from path, with default options.
 * Returns 0 and sets *out; otherwise -EINVAL (bad arguments, not a regular
 * file), -errno from open/read (-ENOENT, -EACCES, ...), -ENOMEM, or
 * EMBED_EFORMAT; err says what and where. */
int embed_model_load(const char *path, embedder **out, char *err, size_t errlen);
int embed_model_load_opts(const char *path, const embed_model_opts *opts,
                          embedder **out, char *err, size_t errlen);

uint32_t embed_dim(const embedder *e);
/* "hash", "model" or "bert".  Static strings. */
const char *embed_kind(const embedder *e);
/* How the vectors were obtained: "hash", "vec" (text with a "count dim"
 * header), "glove" (text without header), "word2vec-bin", or for bert the
 * weights' dtype ("F32", "F16", "BF16"; the smallest if mixed).  Static. */
const char *embed_format(const embedder *e);
/* Words in the vocabulary (after skipping duplicates and unreachable words);
 * 0 for "hash". */
uint32_t embed_vocab_size(const embedder *e);

/* Embed len bytes of text (text may be NULL when len == 0) into out[dim]:
 * L2-normalised, or all zeros when nothing usable was found.  Returns the
 * number of word tokens that contributed (hash: every word; model: the
 * known ones; bert: the WordPiece tokens kept, [UNK] included, [CLS] and
 * [SEP] not; capped at INT_MAX), so 0 means "zero vector" (bert: a text
 * without a token gives the zero vector too, not the embedding of "[CLS]
 * [SEP]"); or -EINVAL (e or out NULL, or text NULL with len > 0), or
 * -ENOMEM (bert only).  A sum that cancels exactly also gives the zero
 * vector (possible with tiny dims) with a positive return.  hash and model
 * never allocate; bert does (its activations).  A bert embedder created
 * with normalize off returns the pooled vector as it is. */
int embed_text(const embedder *e, const void *text, size_t len, float *out);

/* Embed n texts at once into out[n * dim] (text i at out + i * dim): for
 * bert one forward pass over all of them (one matrix product per weight
 * for the whole batch); the other kinds embed one by one.  counts (may be
 * NULL) gets embed_text's count per text.  Returns 0, or -EINVAL /
 * -ENOMEM (then out is unspecified). */
int embed_texts(const embedder *e, size_t n, const void *const *texts, const size_t *lens,
                float *out, int *counts);

/* Options for BERT models; a zeroed struct means the defaults. */
typedef enum embed_pooling { EMBED_POOL_MEAN = 0, EMBED_POOL_CLS = 1 } embed_pooling;
typedef struct embed_bert_opts {
    embed_pooling pooling;   /* mean of every token's output (default; as
                                sentence-transformers) or the [CLS] token's */
    int no_normalize;        /* 1: do not L2-normalise the pooled vector */
    uint32_t max_tokens;     /* tokens per text, [CLS] and [SEP] included
                                (2..max_position_embeddings); 0: the model's
                                (sentence_bert_config.json max_seq_length,
                                else tokenizer_config.json model_max_length,
                                else max_position_embeddings; at most the
                                latter) */
    const char *kernel;      /* NULL: the matrix kernel of the active SIMD
                                level (gemm.h); else a variant's name (tests,
                                benchmarks) */
} embed_bert_opts;

/* Load a BERT model from directory dir.  Returns 0 and sets *out; otherwise
 * -EINVAL (bad arguments or options), -errno (a file cannot be read),
 * -ENOMEM, or EMBED_EFORMAT; err names the file and, for weights, the
 * tensor: "model.safetensors: tensor 'encoder.layer.1.output.dense.weight'
 * has shape [64, 128], expected [64, 256]". */
int embed_bert_load(const char *dir, const embed_bert_opts *opts, embedder **out, char *err,
                    size_t errlen);

/* bert only: the token ids embed_text would use for text ([CLS] ... [SEP],
 * truncated to the model's max tokens and to cap >= 2).  Returns how many,
 * or -EINVAL (not a bert embedder, bad arguments). */
int embed_tokenize(const embedder *e, const void *text, size_t len, int32_t *ids, uint32_t cap);
/* bert: the tokens per text, [CLS] and [SEP] included; 0 for other kinds. */
uint32_t embed_max_tokens(const embedder *e);

/* Model only: look word up (ASCII case-insensitively).  If known, copy its
 * vector as stored in the file (not normalised) to out[dim] (out may be
 * NULL) and its SIF weight to *weight (may be NULL; 1 with plain_mean) and
 * return 1; return 0 if unknown; -EINVAL for a hash embedder or NULL e. */
int embed_lookup(const embedder *e, const void *word, size_t len, float *out, float *weight);

void embed_free(embedder *e);            /* NULL ok */

/* Bytes held by the embedder (struct, vocabulary, vectors, table). */
size_t embed_memory(const embedder *e);

/* A static description of an error code from this module (or strerror's
 * text for -errno codes). */
const char *embed_strerror(int err);

#endif
