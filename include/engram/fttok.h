/* fttok.h -- RediSearch's text tokenizer: how a TEXT field's value (and a
 * query term) becomes index terms, with its stopword lists.
 *
 *   "Hello, World-wide WEB of the a\-b" -> hello(1) world(2) wide(3)
 *                                           web(4) a-b(5)   (of, the: stopwords)
 *
 * Rules (RediSearch's src/tokenize.c, toksep.h; details in fttok.c):
 *   - Separators: space, tab and  , . / ( ) { } [ ] : ; ~ ! @ # $ % ^ & * -
 *     = + | ' ` " < > ?  -- but not one preceded by a backslash.  A NUL
 *     ends the text (RediSearch reads C strings).
 *   - Each token (its first FTTOK_TOKEN_MAX bytes) is normalised: ASCII
 *     upper case lowered, unescaped blanks
 *     and control bytes dropped, a backslash dropped (the byte after it
 *     kept as it is).  A token that normalises to nothing is no token.
 *   - Stopwords are skipped and take no position: positions count the
 *     tokens kept, from 1 (or from where the previous field left off).
 *   - A token of 4 bytes or more also yields its stem (stem.h) when the
 *     stem differs from it; the index stores the stem as "+stem" (the
 *     STEM prefix) beside the token itself, so a query can find "running"
 *     from "runs" without confusing the stem with a real word "run".
 *
 * Threads: a stopword list is immutable once made (any thread may read
 * it); a tokenizer is one caller's cursor.
 * Ownership: fttok_stopwords_new copies the words; the default list is
 * static and never freed. */
#ifndef ENGRAM_FTTOK_H
#define ENGRAM_FTTOK_H

#include <stddef.h>
#include <stdint.h>

#define FTTOK_STEM_PREFIX '+'
#define FTTOK_MIN_STEM_LEN 4   /* RediSearch stems tokens of 4 bytes and more */
#define FTTOK_TOKEN_MAX 128u   /* a document token's bytes kept (RediSearch 2.6) */

typedef struct fttok_stopwords fttok_stopwords;

/* RediSearch's default English list (33 words: a is the an and are as at
 * be but by for if in into it no not of on or such that their then there
 * these they this to was will with). */
const fttok_stopwords *fttok_stopwords_default(void);
/* A list of n words (lowered as they are stored, as RediSearch does);
 * n == 0 is the empty list (FT.CREATE ... STOPWORDS 0).  NULL: -ENOMEM. */
fttok_stopwords *fttok_stopwords_new(const char *const *words, const size_t *lens, size_t n);
/* NULL and the default list: nothing. */
void fttok_stopwords_free(fttok_stopwords *sw);
/* 1 if the len bytes at w (already lower-case) are a stopword. sw NULL:
 * no stopwords. */
int fttok_stopwords_has(const fttok_stopwords *sw, const char *w, size_t len);
size_t fttok_stopwords_count(const fttok_stopwords *sw);
/* The i-th word (i < count), for FT.INFO's stopwords_list. */
const char *fttok_stopwords_word(const fttok_stopwords *sw, size_t i, size_t *len);
/* Bytes held (the default list: 0). */
size_t fttok_stopwords_memory(const fttok_stopwords *sw);

/* A token: the normalised text (inside the tokenizer's buffer, valid until
 * the next call), its position, and the stem with its '+' prefix when
 * there is one (stem_len 0: none). */
typedef struct fttok_token {
    const char *text;
    size_t len;
    uint32_t pos;
    const char *stem;
    size_t stem_len;
} fttok_token;

/* A cursor over one text.  buf is the caller's scratch of at least len
 * bytes and stembuf of at least len + 1: tokens are normalised in place
 * in buf (a copy of the text), as RediSearch does in its own buffer. */
typedef struct fttok {
    char *buf;
    size_t len, at;
    char *stembuf;
    const fttok_stopwords *sw;
    int stem;
    uint32_t pos; /* the last position given out */
} fttok;

/* Start tokenizing len bytes of text (copied into buf).  stem: produce
 * stems; pos: the position before the first token (0 for a new
 * document). */
void fttok_init(fttok *t, const char *text, size_t len, char *buf, char *stembuf,
                const fttok_stopwords *sw, int stem, uint32_t pos);
/* The next token into *tok: 1, or 0 at the end. */
int fttok_next(fttok *t, fttok_token *tok);

/* Is c one of the default separators? */
int fttok_is_sep(unsigned char c);

/* Normalise a query term in place as RediSearch's query parser does
 * (rm_strdupcase): drop a backslash before punctuation or a blank, lower
 * ASCII.  Returns the new length. */
size_t fttok_normalize_query(char *s, size_t len);

#endif
