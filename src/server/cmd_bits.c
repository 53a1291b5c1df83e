/* cmd_bits.c -- bitmaps and string comparison: SETBIT, GETBIT, BITCOUNT,
 * BITPOS, BITOP, LCS.  Replies and error texts are Redis's (checked against
 * a real redis-server 7.0; BITOP's DIFF, DIFF1, ANDOR and ONE are Redis
 * 8.2's).  Bit 0 is the most significant bit of byte 0.  As Redis 7.2+,
 * BITCOUNT and BITPOS check all their arguments even on a missing key
 * (Redis 7.0 answered 0 whatever the range said); WRONGTYPE still comes
 * first, and BITCOUNT's BYTE|BIT is checked before an inverted negative
 * range answers 0 (7.0 did not look at it).
 *
 * Writes are logged as persist.h wants: SETBIT on an existing string logs
 * its one byte (key_range_modified; a byte past the end zero-pads on
 * replay, as SETRANGE's), a string it creates and BITOP's destination are
 * logged whole (key_modified).
 *
 * Loop thread only. */
#include "server.h"
#include "handlers.h"
#include "notify.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "engram/mem.h"
#include "engram/util.h"

#define KEY(c) (c)->argv[1], (c)->argvlen[1]

#define BIT_OFFSET_ERR "ERR bit offset is not an integer or out of range"

static int wrongtype(client *c, const kv_entry *e)
{
    if (!e || kv_type(e) == KV_STRING) return 0;
    reply_error(&c->out, WRONGTYPE_ERR);
    return 1;
}

/* Redis's getBitOffsetFromArgument: a bit offset whose byte lies below
 * proto-max-bulk-len (so no write can grow a string past it). */
static int arg_bit_offset(client *c, int i, uint64_t *out)
{
    long long v;
    unsigned long long max = (unsigned long long)srv_config(c->srv)->proto_max_bulk_len;
    if (!util_str2ll(c->argv[i], c->argvlen[i], &v) || v < 0 ||
        (unsigned long long)(v >> 3) >= max) {
        reply_error(&c->out, BIT_OFFSET_ERR);
        return 0;
    }
    *out = (uint64_t)v;
    return 1;
}

/* BYTE or BIT (case-insensitive): 1 for BIT, 0 for BYTE, -1 (syntax error
 * replied) otherwise. */
static int arg_unit(client *c, int i)
{
    if (util_eq_nocase(c->argv[i], c->argvlen[i], "bit")) return 1;
    if (util_eq_nocase(c->argv[i], c->argvlen[i], "byte")) return 0;
    reply_error(&c->out, "ERR syntax error");
    return -1;
}

/* ---- SETBIT / GETBIT ----------------------------------------------------- */

void cmd_setbit(client *c)
{
    kv *db = client_kv(c);
    uint64_t off;
    long long on;
    size_t olen = 0;

    if (!arg_bit_offset(c, 2, &off)) return;
    if (!util_str2ll(c->argv[3], c->argvlen[3], &on) || (on & ~1LL)) {
        reply_error(&c->out, "ERR bit is not an integer or out of range");
        return;
    }
    kv_entry *e = kv_find(db, KEY(c), srv_now_ms(c->srv));
    if (wrongtype(c, e)) return;

    size_t byte = (size_t)(off >> 3);
    int shift = 7 - (int)(off & 7);
    int created = !e;
    if (created) e = kv_set(db, KEY(c), "", 0, NULL);
    else kv_val(e, &olen);
    unsigned char *p = (unsigned char *)(byte >= olen ? kv_val_resize(db, e, byte + 1)  /* zero-filled */
                                                      : (char *)kv_val(e, &olen));
    int old = (p[byte] >> shift) & 1;
    p[byte] = (unsigned char)((p[byte] & ~(1u << shift)) | ((unsigned)on << shift));
    if (created) key_modified(c->srv, c->db, KEY(c));
    else key_range_modified(c->srv, c->db, KEY(c), byte, (const char *)p + byte, 1);
    if (created) notify_key(c, NOTIFY_NEW, "new", KEY(c));
    notify_key(c, NOTIFY_STRING, "setbit", KEY(c));
    reply_int(&c->out, old);
}

void cmd_getbit(client *c)
{
    uint64_t off;
    size_t vlen;

    if (!arg_bit_offset(c, 2, &off)) return;
    kv_entry *e = key_lookup_read(c, KEY(c));
    if (wrongtype(c, e)) return;
    if (!e) {
        reply_int(&c->out, 0);
        return;
    }
    const unsigned char *p = (const unsigned char *)kv_val(e, &vlen);
    size_t byte = (size_t)(off >> 3);
    reply_int(&c->out, byte < vlen ? (p[byte] >> (7 - (off & 7))) & 1 : 0);
}

/* ---- BITCOUNT / BITPOS --------------------------------------------------- */

/* Clamp [*start, *end] (negative: from the end) to a string of len units
 * (Redis's conversion). */
static void clamp_range(long long len, long long *start, long long *end)
{
    if (*start < 0) *start += len;
    if (*end < 0) *end += len;
    if (*start < 0) *start = 0;
    if (*end < 0) *end = 0;
    if (*end >= len) *end = len - 1;
}

/* The set bits among bits [start, end] of p (bit positions). */
static long long count_bits(const unsigned char *p, long long start, long long end)
{
    long long sb = start >> 3, eb = end >> 3;
    long long n = (long long)util_popcount(p + sb, (size_t)(eb - sb + 1));
    unsigned char first = (unsigned char)(~((1u << (8 - (start & 7))) - 1) & 0xff);
    unsigned char last = (unsigned char)((1u << (7 - (end & 7))) - 1);
    n -= __builtin_popcount(p[sb] & first);
    n -= __builtin_popcount(p[eb] & last);
    return n;
}

/* BITCOUNT key [start end [BYTE|BIT]] */
void cmd_bitcount(client *c)
{
    long long start = 0, end = 0;
    int isbit = 0, ranged = c->argc >= 4;
    size_t vlen = 0;

    kv_entry *e = key_lookup_read(c, KEY(c));
    if (wrongtype(c, e)) return;
    if (c->argc == 3 || c->argc > 5) {
        reply_error(&c->out, "ERR syntax error");
        return;
    }
    if (ranged) {
        if (!arg_ll(c, 2, &start) || !arg_ll(c, 3, &end)) return;
        if (c->argc == 5 && (isbit = arg_unit(c, 4)) < 0) return;
    }
    if (!e) {
        reply_int(&c->out, 0);
        return;
    }
    const unsigned char *p = (const unsigned char *)kv_val(e, &vlen);
    long long len = (long long)vlen;
    if (ranged) {
        if (start < 0 && end < 0 && start > end) {
            reply_int(&c->out, 0);
            return;
        }
        if (isbit) len <<= 3;
        clamp_range(len, &start, &end);
    } else {
        start = 0;
        end = len - 1;
    }
    if (start > end) {
        reply_int(&c->out, 0);
        return;
    }
    if (!isbit) {
        start <<= 3;
        end = (end << 3) + 7;
    }
    reply_int(&c->out, count_bits(p, start, end));
}

/* The first bit equal to bit among bits [start, end] of p, or -1. */
static long long find_bit(const unsigned char *p, long long start, long long end, int bit)
{
    long long sb = start >> 3, eb = end >> 3;
    unsigned char first = (unsigned char)(~((1u << (8 - (start & 7))) - 1) & 0xff);
    unsigned char last = (unsigned char)((1u << (7 - (end & 7))) - 1);
    /* Bits outside the range read as "no match" in the edge bytes. */
    unsigned char tmp = p[sb];
    if (sb == eb) first |= last;
    tmp = bit ? (unsigned char)(tmp & ~first) : (unsigned char)(tmp | first);
    long long pos = util_bitpos(&tmp, 1, bit);
    if (pos >= 0 && pos < 8) return (sb << 3) + pos;
    if (sb == eb) return -1;
    if (eb - sb > 1) {
        pos = util_bitpos(p + sb + 1, (size_t)(eb - sb - 1), bit);
        if (pos >= 0 && pos < (eb - sb - 1) * 8) return ((sb + 1) << 3) + pos;
    }
    tmp = bit ? (unsigned char)(p[eb] & ~last) : (unsigned char)(p[eb] | last);
    pos = util_bitpos(&tmp, 1, bit);
    if (pos >= 0 && pos < 8) return (eb << 3) + pos;
    return -1;
}

/* BITPOS key bit [start [end [BYTE|BIT]]] */
void cmd_bitpos(client *c)
{
    long long bit, start = 0, end = 0;
    int isbit = 0, end_given = 0;
    size_t vlen = 0;

    if (!arg_ll(c, 2, &bit)) return;
    if (bit != 0 && bit != 1) {
        reply_error(&c->out, "ERR The bit argument must be 1 or 0.");
        return;
    }
    kv_entry *e = key_lookup_read(c, KEY(c));
    if (wrongtype(c, e)) return;
    if (c->argc > 6) {
        reply_error(&c->out, "ERR syntax error");
        return;
    }
    if (c->argc >= 4) {
        if (!arg_ll(c, 3, &start)) return;
        if (c->argc == 6 && (isbit = arg_unit(c, 5)) < 0) return;
        if (c->argc >= 5) {
            if (!arg_ll(c, 4, &end)) return;
            end_given = 1;
        }
    }
    if (!e) {
        /* An endless run of zeros. */
        reply_int(&c->out, bit ? -1 : 0);
        return;
    }
    const unsigned char *p = (const unsigned char *)kv_val(e, &vlen);
    long long len = (long long)vlen;
    if (isbit) len <<= 3;
    if (c->argc >= 4) {
        if (!end_given) end = len - 1;
        clamp_range(len, &start, &end);
    } else {
        start = 0;
        end = len - 1;
    }
    if (start > end) {
        reply_int(&c->out, -1);
        return;
    }
    if (!isbit) {
        start <<= 3;
        end = (end << 3) + 7;
    }
    long long pos = find_bit(p, start, end, (int)bit);
    /* Without an explicit end, the string is padded with zeros on the
     * right: a clear bit not found is the first one past it. */
    if (pos < 0 && bit == 0 && !end_given) pos = end + 1;
    reply_int(&c->out, pos);
}

/* ---- BITOP --------------------------------------------------------------- */

enum { OP_AND, OP_OR, OP_XOR, OP_NOT, OP_DIFF, OP_DIFF1, OP_ANDOR, OP_ONE };

/* BITOP op dest key...: shorter sources read as zero-padded; the result is
 * as long as the longest source, stored as a plain string (no TTL) over
 * whatever dest held, or dest deleted when every source is empty. */
void cmd_bitop(client *c)
{
    static const char *const names[] = {"and", "or", "xor", "not", "diff", "diff1", "andor", "one"};
    int op = -1, nsrc = c->argc - 3;
    kv *db = client_kv(c);

    for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
        if (util_eq_nocase(c->argv[1], c->argvlen[1], names[i])) op = i;
    if (op < 0) {
        reply_error(&c->out, "ERR syntax error");
        return;
    }
    if (op == OP_NOT && nsrc != 1) {
        reply_error(&c->out, "ERR BITOP NOT must be called with a single source key.");
        return;
    }
    if ((op == OP_DIFF || op == OP_DIFF1 || op == OP_ANDOR) && nsrc < 2) {
        reply_errorf(&c->out, "ERR BITOP %s must be called with at least two source keys.",
                     op == OP_DIFF ? "DIFF" : op == OP_DIFF1 ? "DIFF1" : "ANDOR");
        return;
    }

    /* Every source is checked before anything is written.  Lookups may
     * reap expired keys but never delete a live one, so the pointers stay
     * valid until the result is stored. */
    const unsigned char **src = mem_alloc(sizeof *src * (size_t)nsrc);
    size_t *len = mem_alloc(sizeof *len * (size_t)nsrc);
    size_t maxlen = 0;
    for (int j = 0; j < nsrc; j++) {
        len[j] = 0;
        src[j] = NULL;
        kv_entry *e = key_lookup_read(c, c->argv[j + 3], c->argvlen[j + 3]);
        if (wrongtype(c, e)) {
            mem_free(src);
            mem_free(len);
            return;
        }
        if (e) src[j] = (const unsigned char *)kv_val(e, &len[j]);
        if (len[j] > maxlen) maxlen = len[j];
    }
    unsigned char *res = maxlen ? mem_alloc(maxlen) : NULL;
    for (size_t i = 0; i < maxlen; i++) {
#define BYTE_OF(j) ((i < len[j]) ? src[j][i] : 0u)
        unsigned x = BYTE_OF(0), acc = 0, once = 0, twice = 0;
        switch (op) {
        case OP_NOT: x = ~x; break;
        case OP_AND: for (int j = 1; j < nsrc; j++) x &= BYTE_OF(j); break;
        case OP_OR: for (int j = 1; j < nsrc; j++) x |= BYTE_OF(j); break;
        case OP_XOR: for (int j = 1; j < nsrc; j++) x ^= BYTE_OF(j); break;
        case OP_DIFF:
        case OP_DIFF1:
        case OP_ANDOR:
            for (int j = 1; j < nsrc; j++) acc |= BYTE_OF(j);
            x = op == OP_DIFF ? (x & ~acc) : op == OP_DIFF1 ? (~x & acc) : (x & acc);
            break;
        case OP_ONE:
            for (int j = 0; j < nsrc; j++) {
                unsigned b = BYTE_OF(j);
                twice |= once & b;
                once |= b;
            }
            x = once & ~twice;
            break;
        }
#undef BYTE_OF
        res[i] = (unsigned char)x;
    }
    mem_free(src);
    mem_free(len);

    const char *dest = c->argv[2];
    size_t dlen = c->argvlen[2];
    if (maxlen) {
        int created;
        if (c->srv->cfg.notify_keyspace_events) kv_find(db, dest, dlen, srv_now_ms(c->srv));
        kv_entry *e = kv_set(db, dest, dlen, (const char *)res, maxlen, &created);
        if (kv_get_expire(e) != -1) kv_set_expire(db, e, -1);
        key_modified(c->srv, c->db, dest, dlen);
        if (created) notify_key(c, NOTIFY_NEW, "new", dest, dlen);
        notify_key(c, NOTIFY_STRING, "set", dest, dlen);
    } else {
        kv_entry *e = kv_find(db, dest, dlen, srv_now_ms(c->srv));
        if (e) {
            kv_del_entry(db, e);
            key_modified(c->srv, c->db, dest, dlen);
            notify_key(c, NOTIFY_GENERIC, "del", dest, dlen);
        }
    }
    mem_free(res);
    reply_int(&c->out, (long long)maxlen);
}

/* ---- LCS ----------------------------------------------------------------- */

/* LCS a b [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]: the classic dynamic
 * programming table, (alen + 1) * (blen + 1) 32-bit cells, refused (Redis's
 * guard) when it would take more than proto-max-bulk-len bytes.  Missing
 * keys are empty strings.  IDX lists the matching ranges from the end of
 * the strings backwards, as Redis walks the table. */
void cmd_lcs(client *c)
{
    long long minmatchlen = 0;
    int getlen = 0, getidx = 0, withmatchlen = 0;
    const char *a = "", *b = "";
    size_t alen = 0, blen = 0;

    kv_entry *ea = key_lookup_read(c, c->argv[1], c->argvlen[1]);
    kv_entry *eb = key_lookup_read(c, c->argv[2], c->argvlen[2]);
    if ((ea && kv_type(ea) != KV_STRING) || (eb && kv_type(eb) != KV_STRING)) {
        reply_error(&c->out, "ERR The specified keys must contain string values");
        return;
    }
    for (int j = 3; j < c->argc; j++) {
        const char *opt = c->argv[j];
        size_t olen = c->argvlen[j];
        int moreargs = c->argc - 1 - j;
        if (util_eq_nocase(opt, olen, "idx")) getidx = 1;
        else if (util_eq_nocase(opt, olen, "len")) getlen = 1;
        else if (util_eq_nocase(opt, olen, "withmatchlen")) withmatchlen = 1;
        else if (util_eq_nocase(opt, olen, "minmatchlen") && moreargs) {
            if (!arg_ll(c, j + 1, &minmatchlen)) return;
            if (minmatchlen < 0) minmatchlen = 0;
            j++;
        } else {
            reply_error(&c->out, "ERR syntax error");
            return;
        }
    }
    if (getidx && getlen) {
        reply_error(&c->out, "ERR If you want both the length and indexes, please just use IDX.");
        return;
    }
    /* The second lookup cannot have deleted the first key (it is live). */
    if (ea) a = kv_val(ea, &alen);
    if (eb) b = kv_val(eb, &blen);
    if (alen >= UINT32_MAX - 1 || blen >= UINT32_MAX - 1) {
        reply_error(&c->out, "ERR String too long for LCS");
        return;
    }
    unsigned long long cells = (unsigned long long)(alen + 1) * (blen + 1);
    if (cells > (unsigned long long)srv_config(c->srv)->proto_max_bulk_len / sizeof(uint32_t)) {
        reply_error(&c->out, "ERR Insufficient memory, transient memory for LCS exceeds "
                             "proto-max-bulk-len");
        return;
    }

    uint32_t *dp = mem_alloc((size_t)cells * sizeof *dp);
#define LCS(I, J) dp[(J) + (I) * (blen + 1)]
    for (size_t i = 0; i <= alen; i++) {
        for (size_t j = 0; j <= blen; j++) {
            if (i == 0 || j == 0) LCS(i, j) = 0;
            else if (a[i - 1] == b[j - 1]) LCS(i, j) = LCS(i - 1, j - 1) + 1;
            else {
                uint32_t l1 = LCS(i - 1, j), l2 = LCS(i, j - 1);
                LCS(i, j) = l1 > l2 ? l1 : l2;
            }
        }
    }
    uint32_t total = LCS(alen, blen), idx = total;
    if (getlen) {
        mem_free(dp);
        reply_int(&c->out, total);
        return;
    }

    char *result = getidx ? NULL : mem_alloc(total ? total : 1);
    size_t handle = 0;
    long long nranges = 0;
    if (getidx) {
        reply_map(&c->out, 2);
        reply_bulk_cstr(&c->out, "matches");
        handle = reply_defer(&c->out);
    }
    /* Walk back from (alen, blen); a range grows while matches stay on the
     * diagonal and is emitted when it stops (or reaches a string's start). */
    size_t i = alen, j = blen;
    size_t as = alen, ae = 0, bs = 0, be = 0;      /* as == alen: no range open */
    while (i > 0 && j > 0) {
        int emit = 0;
        if (a[i - 1] == b[j - 1]) {
            if (result) result[idx - 1] = a[i - 1];
            if (as == alen) {
                as = ae = i - 1;
                bs = be = j - 1;
            } else if (as == i && bs == j) {
                as--;
                bs--;
            } else {
                emit = 1;
            }
            if (as == 0 || bs == 0) emit = 1;
            idx--;
            i--;
            j--;
        } else {
            if (LCS(i - 1, j) > LCS(i, j - 1)) i--;
            else j--;
            if (as != alen) emit = 1;
        }
        if (emit) {
            long long mlen = (long long)(ae - as + 1);
            if (getidx && (minmatchlen == 0 || mlen >= minmatchlen)) {
                reply_array(&c->out, 2 + withmatchlen);
                reply_array(&c->out, 2);
                reply_int(&c->out, (long long)as);
                reply_int(&c->out, (long long)ae);
                reply_array(&c->out, 2);
                reply_int(&c->out, (long long)bs);
                reply_int(&c->out, (long long)be);
                if (withmatchlen) reply_int(&c->out, mlen);
                nranges++;
            }
            as = alen;
        }
    }
#undef LCS
    mem_free(dp);
    if (getidx) {
        reply_defer_array(&c->out, handle, nranges);
        reply_bulk_cstr(&c->out, "len");
        reply_int(&c->out, total);
    } else {
        reply_bulk(&c->out, result, total);
        mem_free(result);
    }
}

/* ---- BITFIELD / BITFIELD_RO ---------------------------------------------- */

enum { BF_GET, BF_SET, BF_INCRBY };
enum { BF_WRAP, BF_SAT, BF_FAIL };

typedef struct bf_op {
    uint64_t offset;        /* in bits */
    long long i64;          /* SET's value, INCRBY's increment */
    int opcode, owtype, sign, bits;
} bf_op;

static uint64_t bf_get_u(const unsigned char *p, uint64_t off, int bits)
{
    uint64_t v = 0;
    for (int j = 0; j < bits; j++, off++) v = (v << 1) | ((p[off >> 3] >> (7 - (off & 7))) & 1);
    return v;
}

static int64_t bf_get_i(const unsigned char *p, uint64_t off, int bits)
{
    uint64_t v = bf_get_u(p, off, bits);
    if (bits < 64 && (v & ((uint64_t)1 << (bits - 1)))) v |= UINT64_MAX << bits;
    return (int64_t)v;
}

static void bf_set(unsigned char *p, uint64_t off, int bits, uint64_t v)
{
    for (int j = 0; j < bits; j++, off++) {
        unsigned bit = (unsigned)((v >> (bits - 1 - j)) & 1);
        unsigned char m = (unsigned char)(1u << (7 - (off & 7)));
        p[off >> 3] = (unsigned char)(bit ? (p[off >> 3] | m) : (p[off >> 3] & ~m));
    }
}

/* Redis's checkUnsignedBitfieldOverflow: nonzero on overflow, *limit the
 * value OVERFLOW WRAP or SAT stores. */
static int bf_overflow_u(uint64_t value, int64_t incr, int bits, int owtype, uint64_t *limit)
{
    uint64_t max = bits == 64 ? UINT64_MAX : (((uint64_t)1 << bits) - 1);
    int64_t maxincr = (int64_t)(max - value);
    int64_t minincr = (int64_t)(0 - value);

    if (value > max || (incr > 0 && incr > maxincr)) {
        if (owtype == BF_SAT) *limit = max;
        else if (owtype == BF_WRAP) goto wrap;
        return 1;
    } else if (incr < 0 && incr < minincr) {
        if (owtype == BF_SAT) *limit = 0;
        else if (owtype == BF_WRAP) goto wrap;
        return -1;
    }
    return 0;
wrap:
    *limit = (value + (uint64_t)incr) & ~(bits == 64 ? 0 : (UINT64_MAX << bits));
    return 1;
}

/* Redis's checkSignedBitfieldOverflow. */
static int bf_overflow_i(int64_t value, int64_t incr, int bits, int owtype, int64_t *limit)
{
    int64_t max = bits == 64 ? INT64_MAX : (int64_t)(((uint64_t)1 << (bits - 1)) - 1);
    int64_t min = -max - 1;
    int64_t maxincr = (int64_t)((uint64_t)max - (uint64_t)value);
    int64_t minincr = (int64_t)((uint64_t)min - (uint64_t)value);

    if (value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr)) {
        if (owtype == BF_SAT) *limit = max;
        else if (owtype == BF_WRAP) goto wrap;
        return 1;
    } else if (value < min || (bits != 64 && incr < minincr) ||
               (value < 0 && incr < 0 && incr < minincr)) {
        if (owtype == BF_SAT) *limit = min;
        else if (owtype == BF_WRAP) goto wrap;
        return -1;
    }
    return 0;
wrap: {
        uint64_t r = (uint64_t)value + (uint64_t)incr;
        if (bits < 64) {
            uint64_t mask = UINT64_MAX << bits;
            r = (r & ((uint64_t)1 << (bits - 1))) ? (r | mask) : (r & ~mask);
        }
        *limit = (int64_t)r;
        return 1;
    }
}

/* i1..i64 or u1..u63 (case-sensitive, as Redis). */
static int bf_arg_type(client *c, int i, int *sign, int *bits)
{
    const char *p = c->argv[i];
    size_t n = c->argvlen[i];
    long long v;
    if (n >= 1 && (p[0] == 'i' || p[0] == 'u') && util_str2ll(p + 1, n - 1, &v) && v >= 1 &&
        v <= (p[0] == 'i' ? 64 : 63)) {
        *sign = p[0] == 'i';
        *bits = (int)v;
        return 1;
    }
    reply_error(&c->out, "ERR Invalid bitfield type. Use something like i16 u8. "
                         "Note that u64 is not supported but i64 is.");
    return 0;
}

/* An offset, or #n: n times the type's width. */
static int bf_arg_offset(client *c, int i, int bits, uint64_t *out)
{
    const char *p = c->argv[i];
    size_t n = c->argvlen[i];
    int hash = n > 0 && p[0] == '#';
    long long v;
    unsigned long long max = (unsigned long long)srv_config(c->srv)->proto_max_bulk_len;

    if (!util_str2ll(p + hash, n - (size_t)hash, &v) ||
        (hash && (v > LLONG_MAX / bits || v < LLONG_MIN / bits))) {
        reply_error(&c->out, BIT_OFFSET_ERR);
        return 0;
    }
    if (hash) v *= bits;
    if (v < 0 || (unsigned long long)(v >> 3) >= max) {
        reply_error(&c->out, BIT_OFFSET_ERR);
        return 0;
    }
    *out = (uint64_t)v;
    return 1;
}

static void bitfield_generic(client *c, int ro)
{
    kv *db = client_kv(c);
    int owtype = BF_WRAP, readonly = 1, nops = 0;
    uint64_t highest = 0;
    bf_op *ops = mem_alloc(sizeof *ops * (size_t)(c->argc / 2 + 1));

    for (int j = 2; j < c->argc; j++) {
        int rem = c->argc - j - 1;
        const char *sub = c->argv[j];
        size_t sl = c->argvlen[j];
        bf_op op = {0};
        if (util_eq_nocase(sub, sl, "get") && rem >= 2) op.opcode = BF_GET;
        else if (util_eq_nocase(sub, sl, "set") && rem >= 3) op.opcode = BF_SET;
        else if (util_eq_nocase(sub, sl, "incrby") && rem >= 3) op.opcode = BF_INCRBY;
        else if (util_eq_nocase(sub, sl, "overflow") && rem >= 1) {
            j++;
            if (util_eq_nocase(c->argv[j], c->argvlen[j], "wrap")) owtype = BF_WRAP;
            else if (util_eq_nocase(c->argv[j], c->argvlen[j], "sat")) owtype = BF_SAT;
            else if (util_eq_nocase(c->argv[j], c->argvlen[j], "fail")) owtype = BF_FAIL;
            else {
                reply_error(&c->out, "ERR Invalid OVERFLOW type specified");
                goto done;
            }
            continue;
        } else {
            reply_error(&c->out, "ERR syntax error");
            goto done;
        }
        if (!bf_arg_type(c, j + 1, &op.sign, &op.bits)) goto done;
        if (!bf_arg_offset(c, j + 2, op.bits, &op.offset)) goto done;
        if (op.opcode != BF_GET) {
            readonly = 0;
            if (highest < op.offset + (uint64_t)op.bits - 1) highest = op.offset + (uint64_t)op.bits - 1;
            if (!arg_ll(c, j + 3, &op.i64)) goto done;
        }
        op.owtype = owtype;
        ops[nops++] = op;
        j += op.opcode == BF_GET ? 2 : 3;
    }

    kv_entry *e;
    unsigned char *p = NULL;
    size_t vlen = 0, olen = 0;
    int created = 0;
    if (readonly) {
        e = key_lookup_read(c, KEY(c));
        if (wrongtype(c, e)) goto done;
        if (e) p = (unsigned char *)kv_val(e, &vlen);
    } else {
        if (ro) {
            reply_error(&c->out, "ERR BITFIELD_RO only supports the GET subcommand");
            goto done;
        }
        e = kv_find(db, KEY(c), srv_now_ms(c->srv));
        if (wrongtype(c, e)) goto done;
        size_t need = (size_t)(highest >> 3) + 1;
        created = !e;
        if (created) e = kv_set(db, KEY(c), "", 0, NULL);
        else kv_val(e, &olen);
        p = (unsigned char *)(need > olen ? kv_val_resize(db, e, need) : (char *)kv_val(e, &vlen));
        kv_val(e, &vlen);
    }

    /* Bytes written: [lo, hi), for the log (growth counts as written). */
    size_t lo = vlen > olen ? olen : SIZE_MAX, hi = vlen > olen ? vlen : 0;
    reply_array(&c->out, nops);
    for (int j = 0; j < nops; j++) {
        bf_op *op = &ops[j];
        if (op->opcode == BF_GET) {
            /* Up to 9 bytes copied, zero-padded past the end. */
            unsigned char buf[9] = {0};
            uint64_t byte = op->offset >> 3;
            for (int i = 0; i < 9 && p && byte + (uint64_t)i < vlen; i++) buf[i] = p[byte + (uint64_t)i];
            uint64_t off = op->offset - byte * 8;
            if (op->sign) reply_int(&c->out, bf_get_i(buf, off, op->bits));
            else reply_int(&c->out, (long long)bf_get_u(buf, off, op->bits));
            continue;
        }
        int overflow;
        uint64_t newval, retval;
        if (op->sign) {
            int64_t oldv = bf_get_i(p, op->offset, op->bits), wrapped = 0, nv;
            if (op->opcode == BF_INCRBY) {
                overflow = bf_overflow_i(oldv, op->i64, op->bits, op->owtype, &wrapped);
                nv = overflow ? wrapped : (int64_t)((uint64_t)oldv + (uint64_t)op->i64);
                retval = (uint64_t)nv;
            } else {
                nv = op->i64;
                overflow = bf_overflow_i(nv, 0, op->bits, op->owtype, &wrapped);
                if (overflow) nv = wrapped;
                retval = (uint64_t)oldv;
            }
            newval = (uint64_t)nv;
        } else {
            uint64_t oldv = bf_get_u(p, op->offset, op->bits), wrapped = 0;
            if (op->opcode == BF_INCRBY) {
                newval = oldv + (uint64_t)op->i64;
                overflow = bf_overflow_u(oldv, op->i64, op->bits, op->owtype, &wrapped);
                if (overflow) newval = wrapped;
                retval = newval;
            } else {
                newval = (uint64_t)op->i64;
                overflow = bf_overflow_u(newval, 0, op->bits, op->owtype, &wrapped);
                if (overflow) newval = wrapped;
                retval = oldv;
            }
        }
        if (overflow && op->owtype == BF_FAIL) {
            reply_null(&c->out);
            continue;
        }
        reply_int(&c->out, (long long)retval);
        bf_set(p, op->offset, op->bits, newval);
        size_t b0 = (size_t)(op->offset >> 3), b1 = (size_t)((op->offset + (uint64_t)op->bits - 1) >> 3) + 1;
        if (b0 < lo) lo = b0;
        if (b1 > hi) hi = b1;
    }
    if (!readonly) {
        if (created) key_modified(c->srv, c->db, KEY(c));
        else if (lo < hi) key_range_modified(c->srv, c->db, KEY(c), lo, (const char *)p + lo, hi - lo);
        if (created) notify_key(c, NOTIFY_NEW, "new", KEY(c));
        if (created || lo < hi) notify_key(c, NOTIFY_STRING, "setbit", KEY(c));
    }
done:
    mem_free(ops);
}

/* BITFIELD key [GET type offset | SET type offset value |
 *               INCRBY type offset increment | OVERFLOW WRAP|SAT|FAIL]... */
void cmd_bitfield(client *c) { bitfield_generic(c, 0); }
/* BITFIELD_RO key [GET type offset]... */
void cmd_bitfield_ro(client *c) { bitfield_generic(c, 1); }
