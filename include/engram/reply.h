/* reply.h -- RESP2/RESP3 reply encoder into a growable output buffer.
 *
 * A `reply` is a connection's pending output: bytes [sent, len) are encoded
 * and not yet written to the socket.  The encoder only appends; the
 * connection writes from data+sent and calls reply_consumed().  No I/O here.
 *
 * `proto` (2 or 3) selects the encoding of the types that differ:
 *   null        RESP2 "$-1"          RESP3 "_"
 *   null array  RESP2 "*-1"          RESP3 "_"
 *   map         RESP2 flat array*2n  RESP3 "%n"
 *   set         RESP2 array          RESP3 "~n"
 *   double      RESP2 bulk string    RESP3 ",d"
 *   bool        RESP2 integer 1/0    RESP3 "#t"/"#f"
 *   verbatim    RESP2 bulk string    RESP3 "=len\r\ntxt:..."
 *   push        RESP2 array          RESP3 ">n" (an out-of-band message:
 *                                    pub/sub; same length as the array header)
 *
 * Memory: buffers come from mem_*, which aborts on exhaustion, so these
 * functions cannot fail.  Thread safety: one reply per connection; a worker
 * thread may fill a private reply and hand the bytes to the loop. */
#ifndef ENGRAM_REPLY_H
#define ENGRAM_REPLY_H

#include <stddef.h>
#include <stdarg.h>

typedef struct reply {
    char *data;
    size_t len;      /* bytes encoded */
    size_t sent;     /* bytes already written out */
    size_t cap;
    int proto;       /* 2 or 3 */
} reply;

void reply_init(reply *r, int proto);
/* Make room for at least n bytes now; the buffer then grows by doubling
 * from its size (a fresh one otherwise starts at 16 KB: a connection's
 * output; a small private reply can start small). */
void reply_reserve(reply *r, size_t n);
void reply_fini(reply *r);
static inline size_t reply_pending(const reply *r) { return r->len - r->sent; }
/* n more bytes were written out (n <= reply_pending).  A drained buffer
 * restarts at offset 0 (and shrinks if one reply made it grow past 1 MB);
 * otherwise the pending tail moves to the front only when the written-out
 * prefix is bigger than it, so draining costs O(bytes), never O(n^2). */
void reply_consumed(reply *r, size_t n);
void reply_raw(reply *r, const void *p, size_t n);     /* append bytes as-is */

void reply_ok(reply *r);                               /* +OK */
void reply_simple(reply *r, const char *s);            /* +s (CR/LF in s become spaces) */
/* -<text>.  "ERR " is prepended unless the text starts with one of Redis's
 * error codes followed by a space ("WRONGTYPE ...", "NOAUTH ...", "WRONGPASS
 * ...", "NOPERM", "EXECABORT", "BUSY", "BUSYKEY", "NOSCRIPT", "LOADING",
 * "READONLY", "MASTERDOWN", "MISCONF", "OOM", "NOPROTO", "NOREPLICAS",
 * "NOGROUP", "BUSYGROUP", "UNBLOCKED", "CROSSSLOT", "MOVED", "ASK",
 * "TRYAGAIN", "CLUSTERDOWN", "NOTBUSY", "UNKILLABLE", "ERR" itself) -- a list,
 * not "any capitalised word", because Redis messages such as "EXEC without
 * MULTI", "XX and NX options ..." and "DB index is out of range" go out as
 * "-ERR ...".  Any other code: start the text with '-' ("-MYCODE text"), as
 * with Redis's addReplyError.  As Redis's addReplyErrorFormat does, CR/LF at
 * either end are trimmed and the ones inside become spaces, so a reply can
 * never break framing. */
void reply_error(reply *r, const char *text);
void reply_errorf(reply *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void reply_int(reply *r, long long v);
void reply_bulk(reply *r, const void *p, size_t n);
void reply_bulk_cstr(reply *r, const char *s);         /* NULL: reply_null */
void reply_bulk_ll(reply *r, long long v);             /* integer as a bulk string */
void reply_null(reply *r);
void reply_null_array(reply *r);
void reply_array(reply *r, long long n);
void reply_map(reply *r, long long npairs);
void reply_set(reply *r, long long n);
/* A push of n elements (pub/sub messages and confirmations): RESP3 ">n",
 * RESP2 "*n".  The two headers differ only in their first byte. */
void reply_push(reply *r, long long n);
/* Redis 8's d2string: shortest round-trip digits, integers within +-2^62
 * in full ("3", "0.1", "1e-7", "1.5e+21", "inf", "-inf", "nan"); see
 * util_d2str. */
void reply_double(reply *r, double d);
void reply_float(reply *r, float f);                   /* shortest round-trip f32 */
void reply_bool(reply *r, int b);
void reply_verbatim(reply *r, const char *p, size_t n, const char *fmt3); /* fmt3: "txt" */

/* Aggregates whose length is known only afterwards: reply_defer() returns a
 * handle; emit the elements; then reply_defer_array/map(handle, n) inserts
 * the header at the handle's position (moving what follows it).  The handle
 * is an offset into data, so: no reply_consumed() between the two calls (it
 * may compact the buffer), and with several open handles set the most
 * recent one first (nested aggregates: innermost first), because an insert
 * moves every position after it. */
size_t reply_defer(reply *r);
void reply_defer_array(reply *r, size_t handle, long long n);
void reply_defer_map(reply *r, size_t handle, long long npairs);

#endif
