/* d2str.c -- util_d2str: a double as Redis 7.2+/8 writes it in replies
 * (d2string), and util_d2str_slow, the reference it must equal byte for
 * byte.  Pure and re-entrant; nothing allocates.
 *
 * The text.  Redis 7.2 moved double replies from %.17g to d2string: an
 * exact integer within +-2^62 prints as one (its double2ll test), anything
 * else as the shortest digits that read back (grisu2 in deps/fpconv), laid
 * out by fpconv's emit_digits rules -- see d2str_layout.  Of the shortest
 * we take the nearest to v, an exact tie to the even last digit (as
 * printf rounds).  On rare inputs grisu2 returns a digit more, or a less
 * close string of the same length; there Redis's text differs from ours,
 * both reading back as the same v.
 *
 * Which decimals "read back".  strtod rounds to nearest, ties to an even
 * mantissa, so the decimals that give v back form the interval I between
 * the midpoints to v's neighbours, ends included iff v's mantissa is even.
 * The lower neighbour of a power of two is half as far as the upper one.
 *
 * Two ways to the digits, which must agree on every double:
 *
 * The reference (d2str_shortest_slow) asks libc: printf for candidates,
 * strtod to test them; 0.7-2 us a value.  Kept as util_d2str_slow, which
 * the unit test and bench_d2str compare the fast path with.
 *
 * The fast path (d2str_shortest) is the scheme of Ulf Adams's Ryu (PLDI
 * 2018), written here from the paper's description.  With v = mv x 2^e2,
 * mv = 4m (two spare bits, so that the midpoints mv + 2 and mv - 2 -- or
 * mv - 1 below a power of two -- are integers too), pick a decimal scale
 * 10^e10 a little finer than I is wide and compute exactly
 *     vr = floor(v / 10^e10), vp = floor(upper end / 10^e10),
 *     vm = floor(lower end / 10^e10)
 * by one 64x128-bit multiplication each with a 125-bit power of five
 * (d2str_table.h; for e2 >= 0 its reciprocal).  Then drop the last digit
 * of all three while vp / 10 > vm / 10, i.e. while some number with one
 * digit fewer still lies in I.  What is left is the shortest length, and
 * vr or vr + 1 is the nearest in I at that length: vr + 1 when the first
 * dropped digit is >= 5 or vr fell below I.  Exact ends and exact ties
 * need to know whether the dropped digits (and the scaling itself) were
 * all zeros -- the *_zeros flags, found by divisibility of mv, mv + 2 and
 * the lower end by 5^q or 2^q.  The table's 125 bits are more than the
 * precision the paper proves enough for floor() above to be exact for
 * every 55-bit multiplier, not merely close; so, unlike Grisu2 (Redis's
 * fpconv), no input needs a fallback.  test_d2str.c compares both paths
 * on the families where this could go wrong (ties, exact ends, powers of
 * two, subnormals, the range ends) and on 11 million random values.
 *
 * Candidates the reference hands to printf/strtod are written "DIGITSe<k>",
 * without a decimal point, so that neither depends on the locale's radix
 * character. */
#include "engram/util.h"
#include "engram/check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "d2str_table.h"

/* A decimal: dig[0..nd) (no leading zero) times 10^k. */
typedef struct {
    char dig[24];
    int nd;
    int k;
} d2str_dec;

static void d2str_trim(d2str_dec *d)
{
    while (d->nd > 1 && d->dig[d->nd - 1] == '0') {
        d->nd--;
        d->k++;
    }
}

/* ---- the reference: printf and strtod ------------------------------------
 *
 * The 17-digit printf rounding s17 always lies in I.  Call t the
 * truncation of s17 to p digits and u one unit in its p-th digit.  If any
 * decimal of at most p significant digits lies in I, then t or t+u does:
 * such a decimal w is either below 10^E <= t (E: s17's exponent), or a
 * multiple of u, hence <= t or >= t+u; in each case t or t+u lies between
 * w and s17, and I is an interval.  So "some p-digit decimal reads back",
 * which only gets truer as p grows, is decided by two strtod calls, and a
 * binary search over p finds the shortest length in ~5 steps rather than
 * up to 17 printf calls (~10 us).  Of the two candidates we try the one
 * nearer v first (s17's digits after p say which; on an exact 5000...
 * printf, which rounds v itself, decides). */

static int d2str_reads_back(const d2str_dec *d, double a)
{
    char s[48];
    memcpy(s, d->dig, (size_t)d->nd);
    snprintf(s + d->nd, sizeof(s) - (size_t)d->nd, "e%d", d->k);
    return strtod(s, NULL) == a;
}

/* printf's correctly rounded prec-digit form of a (> 0), as a decimal. */
static void d2str_printf(double a, int prec, d2str_dec *d)
{
    char s[48];
    const char *q;
    snprintf(s, sizeof(s), "%.*e", prec - 1, a);
    d->nd = 0;
    for (q = s; *q != 'e' && *q != 'E' && *q; q++)
        if (*q >= '0' && *q <= '9' && d->nd < (int)sizeof(d->dig)) d->dig[d->nd++] = *q;
    CHECK(d->nd == prec && *q);
    d->k = (int)strtol(q + 1, NULL, 10) - (prec - 1);
}

/* Set *out to a decimal of at most p digits that reads back as a -- the
 * nearest such -- and return 1; 0 if there is none.  s17: a's digits as
 * d2str_printf(a, 17) gives them, p in 1..16. */
static int d2str_try(double a, const d2str_dec *s17, int p, d2str_dec *out)
{
    d2str_dec c[3];
    int nc = 0, tail = 0, i;

    for (i = p; i < 17 && tail == 0; i++)             /* s17's rest vs 5000... */
        tail = s17->dig[i] - (i == p ? '5' : '0');
    if (tail == 0) d2str_printf(a, p, &c[nc++]);      /* a tie in s17: printf decides */
    d2str_dec *t = &c[nc], *up = &c[nc + 1];
    memcpy(t->dig, s17->dig, (size_t)p);
    t->nd = p;
    t->k = s17->k + (17 - p);
    *up = *t;
    for (i = p - 1; i >= 0 && up->dig[i] == '9'; i--) up->dig[i] = '0';
    if (i >= 0) {
        up->dig[i]++;
    } else {                                          /* 99..9 + 1 = 10^p */
        up->dig[0] = '1';
        up->nd = 1;
        up->k += p;
    }
    if (tail > 0) {
        d2str_dec tmp = *t;
        *t = *up;
        *up = tmp;
    }
    nc += 2;
    for (i = 0; i < nc; i++) {
        if (d2str_reads_back(&c[i], a)) {
            *out = c[i];
            d2str_trim(out);
            return 1;
        }
    }
    return 0;
}

/* The shortest (then nearest) decimal that strtod reads back as a > 0. */
static void d2str_shortest_slow(double a, d2str_dec *out)
{
    d2str_dec s17, cand;
    int lo = 1, hi;

    d2str_printf(a, 17, &s17);             /* 17 digits always read back */
    /* Most doubles met in practice need 15-17 digits (those from a
     * computation) or few (those a user typed): test 15 first. */
    if (!d2str_try(a, &s17, 15, out)) {
        if (!d2str_try(a, &s17, 16, out)) {
            *out = s17;
            d2str_trim(out);
        }
        return;
    }
    for (hi = 15; lo < hi;) {
        int mid = lo + (hi - lo) / 2;
        if (d2str_try(a, &s17, mid, &cand)) {
            hi = mid;
            *out = cand;
        } else {
            lo = mid + 1;
        }
    }
}

/* ---- the fast path: exact scaling by powers of five --------------------- */

/* floor(log2(5^e)) + 1, floor(e log10 2), floor(e log10 5): exact for
 * 0 <= e <= 1100 (d2str_table.py checks), and doubles need e <= 1076. */
static inline int d2str_pow5_bits(int e) { return (int)(((uint32_t)e * 1217359u) >> 19) + 1; }
static inline int d2str_log10_pow2(int e) { return (int)(((uint32_t)e * 78913u) >> 18); }
static inline int d2str_log10_pow5(int e) { return (int)(((uint32_t)e * 732923u) >> 20); }

/* floor(m x mul / 2^j) for the 125-bit mul = {low, high}, 64 <= j < 128;
 * the callers' ranges keep the result below 2^64. */
#if defined(__SIZEOF_INT128__) && !defined(D2STR_PORTABLE_MUL)
static inline uint64_t d2str_mul_shift(uint64_t m, const uint64_t mul[2], int j)
{
    unsigned __int128 lo = (unsigned __int128)m * mul[0];
    unsigned __int128 hi = (unsigned __int128)m * mul[1];
    return (uint64_t)(((lo >> 64) + hi) >> (j - 64));
}
#else
/* The same with 32-bit halves, for compilers without a 128-bit type. */
static uint64_t d2str_mul_hi(uint64_t a, uint64_t b, uint64_t *low)
{
    uint64_t a0 = (uint32_t)a, a1 = a >> 32, b0 = (uint32_t)b, b1 = b >> 32;
    uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    uint64_t mid = (p00 >> 32) + (uint32_t)p01 + (uint32_t)p10;
    *low = (mid << 32) | (uint32_t)p00;
    return p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
}

static uint64_t d2str_mul_shift(uint64_t m, const uint64_t mul[2], int j)
{
    uint64_t lo_lo, hi_lo;
    uint64_t lo_hi = d2str_mul_hi(m, mul[0], &lo_lo);
    uint64_t hi_hi = d2str_mul_hi(m, mul[1], &hi_lo);
    uint64_t sum_lo = hi_lo + lo_hi, sum_hi = hi_hi + (sum_lo < lo_hi);
    int s = j - 64;                                  /* (sum_hi:sum_lo) >> s */
    (void)lo_lo;
    if (s == 0) return sum_lo;
    if (s >= 64) return sum_hi >> (s - 64);
    return (sum_hi << (64 - s)) | (sum_lo >> s);
}
#endif

static inline int d2str_pow5_divides(uint64_t x, int q)    /* 5^q | x, x > 0 */
{
    for (; q > 0; q--, x /= 5)
        if (x % 5 != 0) return 0;
    return 1;
}

static inline int d2str_pow2_divides(uint64_t x, int q)    /* 2^q | x, x > 0 */
{
    return q < 64 && (x & ((UINT64_C(1) << q) - 1)) == 0;
}

static const char D2STR_PAIRS[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

static inline int d2str_count_digits(uint64_t x)  /* x < 10^17 */
{
    int n = 1;
    for (uint64_t p = 10; x >= p; p *= 10) n++;
    return n;
}

/* The shortest (then nearest, then even) decimal in I, for the bits of a
 * finite double > 0. */
static void d2str_shortest(uint64_t bits, d2str_dec *out)
{
    uint64_t frac = bits & ((UINT64_C(1) << 52) - 1);
    int bexp = (int)(bits >> 52) & 0x7ff;
    uint64_t m2 = bexp ? frac | UINT64_C(1) << 52 : frac;
    int e2 = (bexp ? bexp : 1) - 1075 - 2;           /* v = mv x 2^e2 */
    int even = (m2 & 1) == 0;                        /* ends of I included */
    uint64_t mv = 4 * m2, mp = mv + 2;
    uint64_t mm = mv - 1 - (frac != 0 || bexp <= 1); /* nearer below 2^k */
    uint64_t vr, vp, vm;
    int e10, q, vr_zeros, vm_zeros = 0;

    if (e2 >= 0) {
        /* 10^q <= 2^e2 / 10: vp - vm >= 30, so a digit always drops */
        q = d2str_log10_pow2(e2) - (e2 > 3);
        CHECK(q < D2STR_POW5_INV_COUNT);
        int j = q - e2 + D2STR_POW5_BITS + d2str_pow5_bits(q) - 1;
        e10 = q;
        vr = d2str_mul_shift(mv, D2STR_POW5_INV[q], j);
        vp = d2str_mul_shift(mp, D2STR_POW5_INV[q], j);
        vm = d2str_mul_shift(mm, D2STR_POW5_INV[q], j);
        /* x 2^e2 / 10^q is exact iff 5^q divides (2^q does, e2 > q);
         * 5^24 > 2^55 > mp, so past q = 23 nothing does. */
        vr_zeros = q <= 23 && d2str_pow5_divides(mv, q);
        if (q <= 23 && even) vm_zeros = d2str_pow5_divides(mm, q);
        else if (q <= 23) vp -= (uint64_t)d2str_pow5_divides(mp, q);  /* end excluded */
    } else {
        q = d2str_log10_pow5(-e2) - (-e2 > 1);
        int i = -e2 - q;                             /* v / 10^e10 = mv 5^i / 2^q */
        CHECK(i < D2STR_POW5_COUNT);
        int j = q - (d2str_pow5_bits(i) - D2STR_POW5_BITS);
        e10 = q + e2;
        vr = d2str_mul_shift(mv, D2STR_POW5[i], j);
        vp = d2str_mul_shift(mp, D2STR_POW5[i], j);
        vm = d2str_mul_shift(mm, D2STR_POW5[i], j);
        vr_zeros = d2str_pow2_divides(mv, q);
        if (even) vm_zeros = d2str_pow2_divides(mm, q);
        else vp -= (uint64_t)d2str_pow2_divides(mp, q);
    }

    int removed = 0;
    unsigned last = 0;                               /* the last digit dropped */
    uint64_t digits;
    if (vm_zeros || vr_zeros) {
        /* Rare: an end of I or v itself is exact at some scale. */
        while (vp / 10 > vm / 10) {
            vm_zeros &= vm % 10 == 0;
            vr_zeros &= last == 0;
            last = (unsigned)(vr % 10);
            vr /= 10, vp /= 10, vm /= 10, removed++;
        }
        if (vm_zeros) {                              /* vm is in I: shorten to it */
            while (vm % 10 == 0) {
                vr_zeros &= last == 0;
                last = (unsigned)(vr % 10);
                vr /= 10, vp /= 10, vm /= 10, removed++;
            }
        }
        if (vr_zeros && last == 5 && vr % 2 == 0) last = 4;   /* exact tie: even */
        digits = vr + ((vr == vm && (!even || !vm_zeros)) || last >= 5);
    } else {
        /* Common: no end is exact, so vm is outside I and no tie. */
        while (vp / 100 > vm / 100) {
            last = (unsigned)(vr % 100) / 10;
            vr /= 100, vp /= 100, vm /= 100, removed += 2;
        }
        if (vp / 10 > vm / 10) {
            last = (unsigned)(vr % 10);
            vr /= 10, vp /= 10, vm /= 10, removed++;
        }
        digits = vr + (vr == vm || last >= 5);
    }

    /* Rounding up can carry into zeros (1999 -> 2000). */
    CHECK(digits != 0);
    while (digits % 10 == 0) digits /= 10, removed++;
    CHECK(digits < UINT64_C(100000000000000000));    /* at most 17 digits */
    out->nd = d2str_count_digits(digits);
    out->k = e10 + removed;
    char *p = out->dig + out->nd;                    /* two digits a division */
    for (; digits >= 100; digits /= 100) {
        p -= 2;
        memcpy(p, D2STR_PAIRS + 2 * (digits % 100), 2);
    }
    if (digits >= 10) memcpy(p - 2, D2STR_PAIRS + 2 * digits, 2);
    else p[-1] = (char)('0' + digits);
}

/* fpconv's emit_digits: the value is dig x 10^k and its first digit has
 * exponent x = k + nd - 1.  Integers whose exponent is below nd + 7 in
 * full; fractions with k > -7, or |x| < 4, in fixed notation; the rest
 * "d.ddde<sign><exponent>", the exponent without zero padding. */
static int d2str_layout(int neg, const d2str_dec *d, char *out)
{
    int n = 0, nd = d->nd, k = d->k, x = k + nd - 1;
    int ax = x < 0 ? -x : x;

    if (neg) out[n++] = '-';
    if (k >= 0 && ax < nd + 7) {
        memcpy(out + n, d->dig, (size_t)nd);
        n += nd;
        memset(out + n, '0', (size_t)k);
        n += k;
    } else if (k < 0 && (k > -7 || ax < 4)) {
        int whole = nd + k;                       /* digits before the point */
        if (whole <= 0) {
            out[n++] = '0';
            out[n++] = '.';
            memset(out + n, '0', (size_t)-whole);
            n += -whole;
            memcpy(out + n, d->dig, (size_t)nd);
            n += nd;
        } else {
            memcpy(out + n, d->dig, (size_t)whole);
            n += whole;
            out[n++] = '.';
            memcpy(out + n, d->dig + whole, (size_t)(nd - whole));
            n += nd - whole;
        }
    } else {
        out[n++] = d->dig[0];
        if (nd > 1) {
            out[n++] = '.';
            memcpy(out + n, d->dig + 1, (size_t)nd - 1);
            n += nd - 1;
        }
        char e[4];
        int ne = 0;
        out[n++] = 'e';
        out[n++] = x < 0 ? '-' : '+';
        do {
            e[ne++] = (char)('0' + ax % 10);
            ax /= 10;
        } while (ax);
        while (ne) out[n++] = e[--ne];
    }
    out[n] = '\0';
    return n;
}

/* ---- entry points ------------------------------------------------------- */

static size_t d2str_format(char *buf, size_t cap, double v, int slow)
{
    char out[48];
    size_t n;

    if (isnan(v)) {
        n = (size_t)snprintf(out, sizeof(out), "nan");
    } else if (isinf(v)) {
        n = (size_t)snprintf(out, sizeof(out), v > 0 ? "inf" : "-inf");
    } else if (v == 0) {
        n = (size_t)snprintf(out, sizeof(out), signbit(v) ? "-0" : "0");
    } else if (v >= -0x1p62 && v <= 0x1p62 && (double)(long long)v == v) {
        /* Redis's double2ll: [-(LLONG_MAX/2), LLONG_MAX/2] as doubles is
         * [-2^62, 2^62], where the cast is exact. */
        n = util_ll2str(out, sizeof(out), (long long)v);
    } else {
        d2str_dec d;
        if (slow) {
            d2str_shortest_slow(fabs(v), &d);
        } else {
            uint64_t bits;
            memcpy(&bits, &v, sizeof(bits));
            d2str_shortest(bits & ~(UINT64_C(1) << 63), &d);
        }
        n = (size_t)d2str_layout(v < 0, &d, out);
    }
    if (n + 1 > cap) return 0;
    memcpy(buf, out, n + 1);
    return n;
}

size_t util_d2str(char *buf, size_t cap, double v)
{
    return d2str_format(buf, cap, v, 0);
}

size_t util_d2str_slow(char *buf, size_t cap, double v)
{
    return d2str_format(buf, cap, v, 1);
}
