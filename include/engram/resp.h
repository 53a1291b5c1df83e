/* resp.h -- incremental RESP request parser.  No I/O, no server state.
 *
 * The caller owns the bytes.  It keeps the bytes of the request being parsed
 * in one contiguous buffer, starting at the request's first byte, appends
 * what the socket delivers, and calls resp_parse() again with the whole
 * buffer.  The parser remembers how far it got (offsets, never pointers, so
 * the caller may realloc the buffer between calls), so a line is searched
 * once however it arrives, a 100 MB bulk arriving in 16 KB reads is never
 * scanned at all (one length check per read), and feeding one byte at a time
 * gives exactly the result of one big write.
 *
 * Two request forms, as Redis:
 *   multibulk   *<n>\r\n then n times $<len>\r\n<bytes>\r\n
 *               Arguments point into the caller's buffer (zero copy).
 *   inline      a line ending in \n (an optional \r before it is dropped),
 *               split with Redis's quoting rules (see util_split_args).
 *               Arguments point into storage owned by the parser.
 * Empty lines, "*0\r\n" and "*-N\r\n" are skipped: resp_parse() consumes
 * them and goes on with the next request in the buffer; resp_consumed()
 * counts them with the request that follows.  After RESP_AGAIN keep the
 * whole buffer (skipped bytes included): the parser's offsets refer to it.
 *
 * Exact Redis 7 behaviour, including its quirks: the byte after a count
 * line's \r and the two bytes after a bulk's data are skipped unchecked; a
 * NUL byte in a line hides its terminator (Redis searches with strchr), so
 * such a line only ends in the "too big" error.  One deliberate difference:
 * the 64 KB line limit applies to the line itself (terminator at offset >
 * max_inline = error), so the outcome never depends on how the bytes were
 * split into reads; Redis checks the buffered length after each read.
 *
 * Usage:
 *     int rc = resp_parse(&p, buf, len);
 *     if (rc == RESP_OK) {
 *         run(p.argc, p.argv, p.argvlen);   valid until the next resp_* call
 *                                           and while buf is unchanged
 *         drop resp_consumed(&p) bytes from the front of buf
 *         resp_reset(&p);
 *     } else if (rc == RESP_AGAIN) { read more; call again }
 *     else { reply_error(out, resp_strerror(rc, &p, scratch, sizeof scratch));
 *            close after replying }      ("-ERR Protocol error: ...", as Redis)
 *
 * Thread safety: a parser is owned by one connection; no shared state. */
#ifndef ENGRAM_RESP_H
#define ENGRAM_RESP_H

#include <stddef.h>

enum {
    RESP_OK = 0,              /* one request complete in argc/argv */
    RESP_AGAIN = 1,           /* need more bytes */
    /* protocol errors (negative); resp_strerror() gives Redis's text */
    RESP_ERR_MBULK_LEN = -1,      /* "Protocol error: invalid multibulk length" */
    RESP_ERR_BULK_LEN = -2,       /* "Protocol error: invalid bulk length" */
    RESP_ERR_EXPECTED_DOLLAR = -3,/* "Protocol error: expected '$', got 'X'" */
    RESP_ERR_UNBALANCED = -4,     /* "Protocol error: unbalanced quotes in request" */
    RESP_ERR_BIG_INLINE = -5,     /* "Protocol error: too big inline request" */
    RESP_ERR_BIG_MBULK = -6,      /* "Protocol error: too big mbulk count string" */
    RESP_ERR_BIG_BULK = -7,       /* "Protocol error: too big bulk count string" */
    RESP_ERR_UNAUTH_MBULK = -8,   /* "Protocol error: unauthenticated multibulk length" */
    RESP_ERR_UNAUTH_BULK = -9,    /* "Protocol error: unauthenticated bulk length" */
    RESP_ERR_NOMEM = -10
};

/* A zero max_* field means Redis's default. */
typedef struct resp_limits {
    long long max_bulk_len;     /* proto-max-bulk-len, Redis default 512 MB */
    long long max_multibulk;    /* max elements per request, Redis: INT_MAX
                                   (never more than INT_MAX: argc is an int) */
    size_t max_inline;          /* max inline line / count line, Redis: 64 KB */
    int unauthenticated;        /* non-zero: Redis's tighter limits for clients
                                   that still must AUTH (10 args, 16 KB bulks) */
} resp_limits;

#define RESP_INLINE_MAX (64 * 1024)

typedef struct resp_parser {
    /* result, valid after RESP_OK */
    int argc;
    const char **argv;          /* argv[i] points into buf (multibulk) or
                                   into parser storage (inline) */
    size_t *argvlen;
    /* private state */
    resp_limits lim;
    int kind;                   /* 0 unknown, '*' multibulk, 'i' inline */
    size_t pos;                 /* offset in buf of the next line or bulk of
                                   the current request (its end after OK) */
    size_t start;               /* offset of the current request's first byte
                                   (after skipped empty requests) */
    size_t scan;                /* the line being awaited has no terminator
                                   before this offset (never rescanned) */
    long long mbulk_left;       /* elements still to read */
    long long bulk_len;         /* -1 when the next $<len> line is due */
    int argv_cap;
    size_t *argoff;             /* offsets of multibulk args in buf */
    char **inl_argv;            /* inline args (owned) */
    size_t *inl_lens;
    int inl_argc;
    char bad_char;              /* the byte reported by EXPECTED_DOLLAR */
} resp_parser;

void resp_init(resp_parser *p, const resp_limits *lim);  /* lim copied; NULL = Redis defaults */
void resp_fini(resp_parser *p);
void resp_set_limits(resp_parser *p, const resp_limits *lim);

/* Parse from buf[0..len).  buf[0] must be the first byte not yet consumed,
 * and after RESP_AGAIN the next call must pass the same bytes again followed
 * by the new ones (buf may move).  Returns RESP_OK, RESP_AGAIN or a
 * RESP_ERR_* code (calling again gives the same code; resp_reset() makes the
 * parser usable again).  RESP_ERR_NOMEM is never returned today: mem_*
 * aborts on exhaustion.  Nothing large is reserved from a declared length:
 * argv grows with the arguments actually received. */
int resp_parse(resp_parser *p, const char *buf, size_t len);

/* Bytes of buf used by the request just returned (including any empty
 * requests skipped before it). Valid after RESP_OK. */
size_t resp_consumed(const resp_parser *p);

/* Forget the finished request (call after RESP_OK once the args are used,
 * or after an error to start afresh).  Keeps argv storage for reuse unless
 * a huge request made it big. */
void resp_reset(resp_parser *p);

/* Redis's error text for code, without the "-ERR " prefix.  Returns a
 * static string, or scratch (cap >= 64) for RESP_ERR_EXPECTED_DOLLAR, whose
 * text names the byte (a CR or LF shows as a space, as Redis prints it). */
const char *resp_strerror(int code, const resp_parser *p, char *scratch, size_t cap);

#endif
