/* wordpiece.h -- BERT's tokenizer: Hugging Face's BasicTokenizer followed
 * by its WordpieceTokenizer, with a vocab.txt.  Pure: no I/O but reading
 * the vocabulary file it is given.
 *
 * What text becomes (BasicTokenizer, then WordPiece; src/embed/wordpiece.c
 * has the details and where they come from):
 *   1. Bytes are decoded as UTF-8; an invalid sequence is U+FFFD.
 *   2. NUL, U+FFFD and every "C*" category character but tab, LF and CR are
 *      removed (they join their neighbours); whitespace (Zs, tab, LF, CR,
 *      and U+2028/2029, which Python's str.split() also splits on) separates
 *      words; each CJK ideograph (BERT's ranges) is a word of its own.
 *   3. With lowercasing, each word is lower-cased as Python's str.lower()
 *      does (Greek final sigma included, approximately: see wordpiece.c),
 *      and then, with accent stripping (by default: whenever lowercasing),
 *      decomposed (NFD) with the Mn marks dropped.
 *   4. Each punctuation character (BERT's: ASCII non-alphanumerics and
 *      every P* category) becomes a word of its own.
 *   5. WordPiece: a word longer than max_chars (100) characters is [UNK];
 *      otherwise it is split greedily, longest match first, continuation
 *      pieces looked up with a "##" prefix; if some part matches nothing the
 *      whole word is [UNK].
 *   6. [CLS] first and [SEP] last; pieces beyond max_tokens - 2 are dropped.
 * The Unicode tables are generated from Python's unicodedata
 * (wp_unicode.py), so the classes match the slow tokenizer running on that
 * Unicode version.  Not done: HF's NFC normalisation of the whole text
 * (which matters only for decomposed input to a model that does not strip
 * accents) and recognising special tokens written in the text ("[SEP]" in
 * a sentence is punctuation and letters here).
 *
 * vocab.txt: one token per line, its id the line's index (from 0); only
 * "\n" ends a line (a "\r" stays part of the token, as with HF's loader);
 * a token listed twice takes the later id.  At most WP_VOCAB_MAX lines of at
 * most WP_TOKEN_MAX bytes; the special tokens must be present.
 *
 * Errors: 0 or -errno / -ENOMEM / -EINVAL / EMBED_EFORMAT (embed.h) with a
 * message naming the file and line.  Threads: immutable once built; any
 * number of threads may encode at once (no allocation while encoding). */
#ifndef ENGRAM_WORDPIECE_H
#define ENGRAM_WORDPIECE_H

#include <stddef.h>
#include <stdint.h>

#define WP_VOCAB_MAX (1u << 22)
#define WP_TOKEN_MAX 1024u

typedef struct wp_opts {
    int lowercase;            /* BERT uncased: 1 */
    int strip_accents;        /* -1: as lowercase (HF's None); 0 or 1 */
    int split_cjk;            /* tokenize_chinese_chars: 1 */
    uint32_t max_chars;       /* 0: 100 (max_input_chars_per_word) */
    /* special tokens; NULL: "[UNK]", "[CLS]", "[SEP]", "[PAD]" */
    const char *unk, *cls, *sep, *pad;
} wp_opts;

/* wp_opts as BERT uncased has them. */
#define WP_OPTS_DEFAULT ((wp_opts){.lowercase = 1, .strip_accents = -1, .split_cjk = 1})

typedef struct wp_tokenizer wp_tokenizer;

/* Load vocab.txt from path / from bytes (copied; name for messages). */
int wp_load(const char *path, const wp_opts *o, wp_tokenizer **out, char *err, size_t errlen);
int wp_new(const char *vocab, size_t len, const char *name, const wp_opts *o, wp_tokenizer **out,
           char *err, size_t errlen);
void wp_free(wp_tokenizer *t);            /* NULL ok */

/* Lines in the vocabulary (the largest id + 1). */
uint32_t wp_vocab_size(const wp_tokenizer *t);
/* The id of token (len bytes), or -1. */
int32_t wp_id(const wp_tokenizer *t, const char *tok, size_t len);
/* The ids of the special tokens. */
int32_t wp_cls(const wp_tokenizer *t);
int32_t wp_sep(const wp_tokenizer *t);
int32_t wp_unk(const wp_tokenizer *t);
int32_t wp_pad(const wp_tokenizer *t);
size_t wp_memory(const wp_tokenizer *t);

/* Encode text (len bytes; NULL if len is 0) as [CLS] pieces [SEP] into
 * ids[max_tokens] (max_tokens >= 2).  Returns the number of ids written
 * (2 + pieces kept); *pieces (may be NULL) gets the pieces kept. */
int wp_encode(const wp_tokenizer *t, const void *text, size_t len, uint32_t max_tokens,
              int32_t *ids, uint32_t *pieces);

/* The basic tokenizer alone (steps 1-4), for tests: calls fn for each word
 * (UTF-8, not NUL-terminated) until fn returns non-zero.  Words longer than
 * WP_WORD_MAX bytes are cut there (step 5 makes them [UNK] anyway).  Returns
 * the number of words seen. */
#define WP_WORD_MAX 1024u
size_t wp_basic(const wp_tokenizer *t, const void *text, size_t len,
                int (*fn)(void *ud, const char *word, size_t wlen, uint32_t nchars), void *ud);

#endif
