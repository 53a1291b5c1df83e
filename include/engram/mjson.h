/* mjson.h -- a minimal JSON reader for the small files that come with a
 * model (config.json, tokenizer_config.json, special_tokens_map.json) and
 * for safetensors headers.  Pure: no I/O, no globals.
 *
 * mjson_parse validates the whole text (RFC 8259: one value, optionally
 * surrounded by blanks; strings with escapes and valid UTF-8 surrogate
 * pairs; numbers in JSON's grammar) and turns it into a flat array of
 * tokens in document order, jsmn-style: a container's members follow it,
 * and every token records `span`, the number of tokens of its subtree, so
 * a sibling is one addition away.  An object's members are key, value,
 * key, value...; keys are string tokens.  Nothing points into a structure
 * that can move: tokens hold byte offsets into the caller's text, which
 * must outlive the mjson (it is not copied).
 *
 * Limits: nesting depth MJSON_DEPTH_MAX, text up to MJSON_LEN_MAX bytes;
 * beyond them the text is refused like a malformed one.
 *
 * Errors: 0 or -EINVAL (malformed; err names the byte offset and what was
 * expected), -ENOMEM.  Accessors return 0 or -EINVAL for a token of the
 * wrong type or a value that does not fit.
 *
 * Threads: an mjson is immutable once parsed. */
#ifndef ENGRAM_MJSON_H
#define ENGRAM_MJSON_H

#include <stddef.h>
#include <stdint.h>

#define MJSON_DEPTH_MAX 64
#define MJSON_LEN_MAX ((size_t)1 << 30)

typedef enum mjson_type {
    MJSON_NULL, MJSON_FALSE, MJSON_TRUE, MJSON_NUMBER, MJSON_STRING, MJSON_ARRAY, MJSON_OBJECT
} mjson_type;

typedef struct mjson_tok {
    uint8_t type;       /* mjson_type */
    uint32_t start;     /* byte offset of the value's first byte (a string's
                         * opening quote) */
    uint32_t end;       /* one past its last byte */
    uint32_t n;         /* arrays: elements; objects: members */
    uint32_t span;      /* tokens in the subtree, this one included */
} mjson_tok;

typedef struct mjson {
    const char *text;
    size_t len;
    mjson_tok *t;       /* t[0] is the root */
    uint32_t ntok;
} mjson;

/* Parse text[0..len).  Returns 0 and fills *j (free with mjson_fini), or
 * -EINVAL / -ENOMEM with a message in err; *j is then empty. */
int mjson_parse(mjson *j, const char *text, size_t len, char *err, size_t errlen);
void mjson_fini(mjson *j);

/* The value of member `key` of object token obj (the last one if the key
 * repeats, as Python's json does), or -1 (absent, or obj not an object). */
int mjson_get(const mjson *j, int obj, const char *key);
/* Index of element i of array token arr, or -1. */
int mjson_at(const mjson *j, int arr, uint32_t i);

/* Iteration over an object's members: k = mjson_first(j, obj) gives the
 * first key token (-1: none); its value is k + 1; mjson_next(j, k) the
 * next key or -1. */
int mjson_first(const mjson *j, int obj);
int mjson_next(const mjson *j, int key);

/* Numbers.  mjson_int: an integer written without fraction or exponent,
 * within int64_t.  mjson_num: any number (double). */
int mjson_int(const mjson *j, int tok, int64_t *out);
int mjson_num(const mjson *j, int tok, double *out);
/* 1 for true, 0 for false; -EINVAL otherwise. */
int mjson_bool(const mjson *j, int tok);
/* A string's value, unescaped, as UTF-8 into out[cap] (NUL-terminated).
 * Returns its length in bytes, or -EINVAL (not a string, or it does not
 * fit: length + 1 > cap). */
int mjson_str(const mjson *j, int tok, char *out, size_t cap);
/* 1 if string token tok equals s (after unescaping), else 0. */
int mjson_streq(const mjson *j, int tok, const char *s);

#endif
