/* pipe_resp.h -- the client side of RESP2 for engram-pipe: encode a command,
 * decode replies.  No I/O, no server state, no globals.
 *
 * Encoding: a command is always sent as a multibulk request
 * (*<argc>\r\n then $<len>\r\n<bytes>\r\n per argument), so arguments may
 * hold any bytes.  The caller sizes the output with pipe_resp_encoded_len and
 * owns it.
 *
 * Decoding follows hiredis's read.c: the reader buffers what the socket gave
 * it and pipe_reader_next() returns one whole reply or "need more".  Feeding
 * the same bytes in any split (one at a time, or all at once) gives the same
 * replies.  A partial reply is re-parsed from its first byte when more bytes
 * arrive, but only once the buffer holds at least as many bytes as the last
 * attempt proved necessary (a bulk's announced length), so a big bulk
 * arriving in small reads is not re-scanned on every read.
 *
 * Types: RESP2 only (engram-pipe never sends HELLO 3): +status, -error,
 * :integer, $bulk ($-1 is nil), *array (*-1 is nil).  Any other type byte is
 * a protocol error.
 *
 * Limits (a server that exceeds them is treated as broken, PIPE_RESP_ELIMIT):
 * bulk length PIPE_RESP_BULK_MAX (the server's own 512 MB cap), array length
 * PIPE_RESP_ARRAY_MAX, nesting depth PIPE_RESP_DEPTH_MAX, status/error/count
 * line PIPE_RESP_LINE_MAX bytes.
 *
 * Errors: 0 / 1 or a negative code: -ENOMEM, PIPE_RESP_EPROTO (malformed
 * input), PIPE_RESP_ELIMIT (a limit above).  After an error the reader keeps
 * returning it until pipe_reader_reset().  pipe_resp_strerror() names a code.
 *
 * Ownership: a reply returned by pipe_reader_next() belongs to the caller
 * (pipe_reply_free); its strings are NUL-terminated copies, independent of
 * the reader's buffer.
 *
 * Threads: a reader belongs to one thread; the functions share no state. */
#ifndef ENGRAM_PIPE_RESP_H
#define ENGRAM_PIPE_RESP_H

#include <stddef.h>

/* Project error codes (negative, reserved range -10200..-10299). */
#define PIPE_RESP_EPROTO (-10200)   /* malformed reply */
#define PIPE_RESP_ELIMIT (-10201)   /* reply exceeds a limit below */

#define PIPE_RESP_BULK_MAX  (512LL * 1024 * 1024)
#define PIPE_RESP_ARRAY_MAX (1LL << 20)
#define PIPE_RESP_DEPTH_MAX 8
#define PIPE_RESP_LINE_MAX  (64u * 1024)

typedef enum pipe_reply_type {
    PIPE_REPLY_STATUS = 1,   /* +OK          str/len */
    PIPE_REPLY_ERROR,        /* -ERR ...     str/len (without the '-') */
    PIPE_REPLY_INT,          /* :42          integer */
    PIPE_REPLY_BULK,         /* $3 abc       str/len (binary-safe) */
    PIPE_REPLY_NIL,          /* $-1 or *-1 */
    PIPE_REPLY_ARRAY         /* *n           elem[0..n) */
} pipe_reply_type;

typedef struct pipe_reply {
    pipe_reply_type type;
    long long integer;
    char *str;               /* NUL-terminated; NULL for INT, NIL, ARRAY */
    size_t len;
    struct pipe_reply *elem; /* ARRAY: nelem replies in one allocation */
    size_t nelem;
} pipe_reply;

typedef struct pipe_reader {
    char *buf;
    size_t pos;              /* first unconsumed byte */
    size_t len;              /* bytes held */
    size_t cap;
    size_t need;             /* do not parse before len - pos >= need */
    int err;                 /* sticky error, 0 if none */
} pipe_reader;

/* Bytes needed to encode argv as one multibulk request. */
size_t pipe_resp_encoded_len(int argc, const size_t *lens);

/* Write the request into out (pipe_resp_encoded_len bytes).  Returns the
 * number of bytes written. */
size_t pipe_resp_encode(char *out, int argc, const char *const *argv, const size_t *lens);

void pipe_reader_init(pipe_reader *r);
void pipe_reader_fini(pipe_reader *r);   /* frees the buffer; r may be reused after init */

/* Drop every buffered byte and any sticky error: the connection is gone and
 * a new one starts on a reply boundary. */
void pipe_reader_reset(pipe_reader *r);

/* Append n bytes.  Returns 0, or -ENOMEM (nothing appended). */
int pipe_reader_feed(pipe_reader *r, const void *p, size_t n);

/* The next whole reply.  Returns 1 and sets *out (caller frees), 0 when more
 * bytes are needed (*out untouched), or a negative code (sticky). */
int pipe_reader_next(pipe_reader *r, pipe_reply **out);

void pipe_reply_free(pipe_reply *rep);   /* NULL ok */

/* Static text for a code from this module (or strerror's for -errno). */
const char *pipe_resp_strerror(int err);

#endif
