/* resp.c -- the RESP request parser: bytes in, argc/argv out, no I/O.
 *
 * What it owns: the parse position of one connection's current request, the
 * argv/argvlen/argoff arrays (reused from request to request) and the copies
 * of inline arguments.  It never owns or copies the request bytes of a
 * multibulk request: arguments are recorded as offsets into the caller's
 * buffer and become pointers only when the request is complete, because the
 * caller may realloc the buffer between calls.
 *
 * The state machine, in the order the bytes arrive:
 *
 *   kind 0     nothing of the request seen: its first byte picks the form
 *              ('*' multibulk, anything else inline -- as Redis).
 *   inline     wait for '\n' (from `scan`, never rescanning); split the line.
 *   multibulk  mbulk_left == 0: wait for "*<n>\r" and one byte more (any
 *              byte: Redis does not check it is '\n');
 *              then per argument: bulk_len == -1: wait for "$<len>\r" and one
 *              byte more; else wait until len - pos >= bulk_len + 2 without
 *              looking at the bytes, record the argument and skip it.
 *
 * Every "wait" returns RESP_AGAIN with the state saved, so a call with more
 * bytes resumes exactly where the previous one stopped: a line is searched
 * once (`scan`), a bulk is never searched at all.  That also makes the
 * result independent of how the bytes were split into calls, which
 * test_resp.c checks at every split offset.
 *
 * Speed: a count line that is all there and plain ("$3\r\n") is read in one
 * inline pass (line_fast); only partial or odd lines pay for memchr and
 * the exact-Redis checks.  No per-byte calls, no allocation per request.
 *
 * Redis 7 (networking.c processInlineBuffer/processMultibulkBuffer) is the
 * reference for every accept/reject decision and error text, quirks
 * included; see resp.h for the list and the one deliberate difference.
 *
 * Threads: a parser belongs to one connection; no globals. */
#include "engram/resp.h"
#include "engram/mem.h"
#include "engram/util.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#define RESP_KIND_MBULK '*'
#define RESP_KIND_INLINE 'i'

#define RESP_DEFAULT_MAX_BULK (512LL * 1024 * 1024)
#define RESP_UNAUTH_MAX_MBULK 10        /* Redis 7 authRequired() limits */
#define RESP_UNAUTH_MAX_BULK 16384
#define RESP_ARGV_RESERVE 1024          /* most slots reserved from a count */
#define RESP_ARGV_KEEP 1024             /* bigger argv arrays are freed on reset */

/* `scan` value for a line that can never end: it holds a NUL before its
 * terminator, which Redis's strchr() never looks past. */
#define RESP_SCAN_BLOCKED SIZE_MAX

/* Results of line_find(). */
#define RESP_LINE_FOUND 0
#define RESP_LINE_AGAIN 1
#define RESP_LINE_TOO_BIG (-1)

/* parse_inline() result for an empty line, next to RESP_OK/AGAIN/ERR_*. */
#define RESP_SKIP 2

/* ---- limits ------------------------------------------------------------- */

static void limits_apply(resp_parser *p, const resp_limits *lim)
{
    resp_limits l = { 0, 0, 0, 0 };
    if (lim) l = *lim;
    if (l.max_bulk_len <= 0) l.max_bulk_len = RESP_DEFAULT_MAX_BULK;
    /* argc is an int: Redis rejects counts above INT_MAX whatever else. */
    if (l.max_multibulk <= 0 || l.max_multibulk > INT_MAX) l.max_multibulk = INT_MAX;
    if (l.max_inline == 0) l.max_inline = RESP_INLINE_MAX;
    p->lim = l;
}

void resp_init(resp_parser *p, const resp_limits *lim)
{
    memset(p, 0, sizeof(*p));
    p->bulk_len = -1;
    limits_apply(p, lim);
}

void resp_set_limits(resp_parser *p, const resp_limits *lim)
{
    limits_apply(p, lim);
}

static void free_inline_args(resp_parser *p)
{
    if (p->inl_argv || p->inl_lens) util_free_args(p->inl_argv, p->inl_lens, p->inl_argc);
    p->inl_argv = NULL;
    p->inl_lens = NULL;
    p->inl_argc = 0;
}

static void free_argv(resp_parser *p)
{
    mem_free((void *)p->argv);
    mem_free(p->argvlen);
    mem_free(p->argoff);
    p->argv = NULL;
    p->argvlen = NULL;
    p->argoff = NULL;
    p->argv_cap = 0;
}

void resp_fini(resp_parser *p)
{
    free_inline_args(p);
    free_argv(p);
}

void resp_reset(resp_parser *p)
{
    free_inline_args(p);
    /* One 1M-argument MSET must not pin megabytes on an idle connection. */
    if (p->argv_cap > RESP_ARGV_KEEP) free_argv(p);
    p->argc = 0;
    p->kind = 0;
    p->pos = p->start = p->scan = 0;
    p->mbulk_left = 0;
    p->bulk_len = -1;
    p->bad_char = 0;
}

size_t resp_consumed(const resp_parser *p)
{
    return p->pos;
}

/* Make room for `want` arguments. */
static void argv_reserve(resp_parser *p, long long want)
{
    if (want <= p->argv_cap) return;
    size_t n = (size_t)want;
    p->argv = mem_realloc((void *)p->argv, n * sizeof(*p->argv));
    p->argvlen = mem_realloc(p->argvlen, n * sizeof(*p->argvlen));
    p->argoff = mem_realloc(p->argoff, n * sizeof(*p->argoff));
    p->argv_cap = (int)want;
}

/* ---- lines -------------------------------------------------------------- */

/* Redis's string2ll() rules (no '+', no leading zeros, no "-0", at most 20
 * characters).  The common case -- a short plain count -- is parsed right
 * here; signs, zeros and 19-20 digit numbers go to util_str2ll. */
static inline int parse_count(const char *s, size_t n, long long *out)
{
    if (n == 0 || n > 18 || s[0] < '1' || s[0] > '9') return util_str2ll(s, n, out);
    long long v = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)(unsigned char)s[i] - '0';
        if (d > 9) return 0;
        v = v * 10 + (long long)d;          /* 18 digits cannot overflow */
    }
    *out = v;
    return 1;
}

/* The common case of a count line, "<type><digits>\r" and one more byte all
 * in the buffer with a plain count (no sign, no leading zero, at most 18
 * digits), read in one pass without memchr or a call.  Anything else returns
 * 0 and takes the general path (line_find, parse_count), which gives the
 * same answer for these lines -- so this is purely a shortcut. */
static inline int line_fast(const char *buf, size_t len, size_t line, size_t max,
                             long long *out, size_t *eol)
{
    size_t i = line + 1;
    if (i >= len) return 0;
    unsigned d = (unsigned)(unsigned char)buf[i] - '0';
    if (d > 9) return 0;
    long long v = d;
    i++;
    if (d != 0) {
        size_t stop = len - line > 19 ? line + 19 : len;    /* 18 digits */
        while (i < stop && (d = (unsigned)(unsigned char)buf[i] - '0') <= 9) {
            v = v * 10 + (long long)d;
            i++;
        }
    }
    if (i + 1 >= len || buf[i] != '\r' || i - line > max) return 0;
    *out = v;
    *eol = i;
    return 1;
}

/* The line starting at `line` whose terminator `term` is still awaited:
 * RESP_LINE_FOUND with *eol at the terminator; RESP_LINE_AGAIN; or
 * RESP_LINE_TOO_BIG once more than max_inline bytes came without one.
 * `need_after` is 1 for count lines: Redis wants one byte after the '\r'
 * (it skips it unchecked) before it reads the count.
 *
 * The search starts where the last one stopped (p->scan) and never looks
 * further than max_inline bytes into the line, so a line costs O(its length)
 * however it is fed. The limit is checked on the terminator's offset, not on
 * what happens to be buffered, so one write and byte-by-byte agree. */
static int line_find(resp_parser *p, const char *buf, size_t len, size_t line,
                     char term, size_t need_after, size_t *eol)
{
    size_t max = p->lim.max_inline;

    if (p->scan == RESP_SCAN_BLOCKED)
        return len - line > max ? RESP_LINE_TOO_BIG : RESP_LINE_AGAIN;
    size_t from = p->scan > line ? p->scan : line;
    size_t limit = len - line > max ? line + max + 1 : len;
    const char *hit = from < limit ? memchr(buf + from, term, limit - from) : NULL;
    if (!hit) {
        p->scan = limit;
        return len - line > max ? RESP_LINE_TOO_BIG : RESP_LINE_AGAIN;
    }
    size_t at = (size_t)(hit - buf);
    p->scan = at;
    if (at + need_after >= len) return RESP_LINE_AGAIN;
    *eol = at;
    return RESP_LINE_FOUND;
}

/* A line that holds a NUL before its terminator never ends for Redis
 * (strchr stops at the NUL), so instead of the parse error the bytes would
 * give, the client gets the "too big" error once max_inline bytes are
 * buffered -- Redis's own protocol-desync test relies on this.  Count lines
 * call it only on their error paths (a valid count holds no NUL); inline
 * lines once, when their '\n' is found.
 * Returns 1 if the line is blocked (p->scan marks it), 0 otherwise. */
static int line_blocked(resp_parser *p, const char *buf, size_t line, size_t eol)
{
    if (!memchr(buf + line, '\0', eol - line)) return 0;
    p->scan = RESP_SCAN_BLOCKED;
    return 1;
}

/* ---- inline ------------------------------------------------------------- */

/* Returns RESP_OK, RESP_AGAIN, an error, or RESP_SKIP for a line without
 * arguments (blank, or only whitespace). */
static int parse_inline(resp_parser *p, const char *buf, size_t len)
{
    size_t eol;
    int rc = line_find(p, buf, len, p->start, '\n', 0, &eol);

    if (rc == RESP_LINE_AGAIN) return RESP_AGAIN;
    if (rc == RESP_LINE_TOO_BIG) return RESP_ERR_BIG_INLINE;
    if (line_blocked(p, buf, p->start, eol))
        return len - p->start > p->lim.max_inline ? RESP_ERR_BIG_INLINE : RESP_AGAIN;

    size_t end = eol;
    if (end > p->start && buf[end - 1] == '\r') end--;
    char **argv;
    size_t *lens;
    int argc = util_split_args(buf + p->start, end - p->start, &argv, &lens);
    if (argc < 0) return RESP_ERR_UNBALANCED;
    p->pos = eol + 1;
    if (argc == 0) {
        util_free_args(argv, lens, 0);
        return RESP_SKIP;
    }
    p->inl_argv = argv;
    p->inl_lens = lens;
    p->inl_argc = argc;
    argv_reserve(p, argc);
    for (int i = 0; i < argc; i++) {
        p->argv[i] = argv[i];
        p->argvlen[i] = lens[i];
    }
    p->argc = argc;
    return RESP_OK;
}

/* ---- the parser --------------------------------------------------------- */

int resp_parse(resp_parser *p, const char *buf, size_t len)
{
    size_t eol;
    long long ll;
    int rc;

next_request:
    if (p->kind == 0) {
        if (p->start >= len) return RESP_AGAIN;
        p->kind = buf[p->start] == '*' ? RESP_KIND_MBULK : RESP_KIND_INLINE;
        p->pos = p->start;
    }

    if (p->kind == RESP_KIND_INLINE) {
        rc = parse_inline(p, buf, len);
        if (rc != RESP_SKIP) return rc;
        goto skip_request;
    }

    /* "*<count>\r\n": the element count. */
    if (p->mbulk_left == 0) {
        size_t line = p->start;
        if (!line_fast(buf, len, line, p->lim.max_inline, &ll, &eol)) {
            rc = line_find(p, buf, len, line, '\r', 1, &eol);
            if (rc == RESP_LINE_AGAIN) return RESP_AGAIN;
            if (rc == RESP_LINE_TOO_BIG) return RESP_ERR_BIG_MBULK;
            if (!parse_count(buf + line + 1, eol - line - 1, &ll)) ll = LLONG_MAX;
        }
        if (ll > p->lim.max_multibulk) {
            if (line_blocked(p, buf, line, eol))
                return len - line > p->lim.max_inline ? RESP_ERR_BIG_MBULK : RESP_AGAIN;
            return RESP_ERR_MBULK_LEN;
        }
        if (p->lim.unauthenticated && ll > RESP_UNAUTH_MAX_MBULK) return RESP_ERR_UNAUTH_MBULK;
        p->pos = eol + 2;              /* the byte after '\r' is not checked */
        if (ll <= 0) goto skip_request;
        p->mbulk_left = ll;
        p->bulk_len = -1;
        p->argc = 0;
        /* A count is only a claim: reserve for at most RESP_ARGV_RESERVE
         * arguments and grow as they actually arrive. */
        argv_reserve(p, ll < RESP_ARGV_RESERVE ? ll : RESP_ARGV_RESERVE);
    }

    while (p->mbulk_left > 0) {
        /* "$<len>\r\n": the next argument's length. */
        if (p->bulk_len < 0) {
            size_t line = p->pos;
            if (!(p->pos < len && buf[line] == '$' && line_fast(buf, len, line, p->lim.max_inline, &ll, &eol))) {
                rc = line_find(p, buf, len, line, '\r', 1, &eol);
                if (rc == RESP_LINE_AGAIN) return RESP_AGAIN;
                if (rc == RESP_LINE_TOO_BIG) return RESP_ERR_BIG_BULK;
                if (buf[line] != '$') {
                    if (line_blocked(p, buf, line, eol))
                        return len - line > p->lim.max_inline ? RESP_ERR_BIG_BULK : RESP_AGAIN;
                    p->bad_char = buf[line];
                    return RESP_ERR_EXPECTED_DOLLAR;
                }
                if (!parse_count(buf + line + 1, eol - line - 1, &ll)) ll = -1;
            }
            if (ll < 0 || ll > p->lim.max_bulk_len) {
                if (line_blocked(p, buf, line, eol))
                    return len - line > p->lim.max_inline ? RESP_ERR_BIG_BULK : RESP_AGAIN;
                return RESP_ERR_BULK_LEN;
            }
            if (p->lim.unauthenticated && ll > RESP_UNAUTH_MAX_BULK) return RESP_ERR_UNAUTH_BULK;
            p->pos = eol + 2;
            p->bulk_len = ll;
        }

        /* The bulk and two more bytes (Redis skips them without checking
         * for "\r\n").  Until they are all here, the bytes are not touched:
         * a 100 MB value costs one comparison per read. */
        if (len - p->pos < (size_t)p->bulk_len + 2) return RESP_AGAIN;
        if (p->argc == p->argv_cap) {
            long long want = (long long)p->argv_cap * 2;
            long long most = (long long)p->argc + p->mbulk_left;
            argv_reserve(p, want < most ? want : most);
        }
        p->argoff[p->argc] = p->pos;
        p->argvlen[p->argc] = (size_t)p->bulk_len;
        p->argc++;
        p->pos += (size_t)p->bulk_len + 2;
        p->bulk_len = -1;
        p->mbulk_left--;
    }

    /* Complete: only now do offsets become pointers into this buf. */
    for (int i = 0; i < p->argc; i++) p->argv[i] = buf + p->argoff[i];
    return RESP_OK;

skip_request:
    /* An empty request ("\r\n", "*0", "*-1"): Redis resets the client and
     * goes on; its bytes are counted in resp_consumed() of the next one. */
    p->start = p->pos;
    p->scan = p->pos;
    p->kind = 0;
    goto next_request;
}

const char *resp_strerror(int code, const resp_parser *p, char *scratch, size_t cap)
{
    switch (code) {
    case RESP_OK: return "ok";
    case RESP_AGAIN: return "incomplete request";
    case RESP_ERR_MBULK_LEN: return "Protocol error: invalid multibulk length";
    case RESP_ERR_BULK_LEN: return "Protocol error: invalid bulk length";
    case RESP_ERR_EXPECTED_DOLLAR: {
        /* Redis formats the byte with %c and then turns CR/LF into spaces. */
        char c = p ? p->bad_char : '?';
        if (c == '\r' || c == '\n') c = ' ';
        if (!scratch || cap == 0) return "Protocol error: expected '$'";
        snprintf(scratch, cap, "Protocol error: expected '$', got '%c'", c);
        return scratch;
    }
    case RESP_ERR_UNBALANCED: return "Protocol error: unbalanced quotes in request";
    case RESP_ERR_BIG_INLINE: return "Protocol error: too big inline request";
    case RESP_ERR_BIG_MBULK: return "Protocol error: too big mbulk count string";
    case RESP_ERR_BIG_BULK: return "Protocol error: too big bulk count string";
    case RESP_ERR_UNAUTH_MBULK: return "Protocol error: unauthenticated multibulk length";
    case RESP_ERR_UNAUTH_BULK: return "Protocol error: unauthenticated bulk length";
    case RESP_ERR_NOMEM: return "out of memory";
    default: return "Protocol error: unknown error";
    }
}
