/* util.c -- small pure helpers: strict number parsing and formatting, glob
 * matching, Redis-style argument splitting, clocks, a PRNG and a keyed hash.
 *
 * Everything here is re-entrant and thread-safe; nothing allocates except
 * util_split_args (through mem_*). */
#include "engram/util.h"
#include "engram/check.h"
#include "engram/mem.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- numbers ------------------------------------------------------------ */

int util_str2ll(const char *s, size_t len, long long *out)
{
    const char *p = s;
    size_t plen = 0;
    int neg = 0;
    unsigned long long v;

    if (len == 0 || len > 20) return 0;
    if (len == 1 && p[0] == '0') {
        *out = 0;
        return 1;
    }
    if (p[0] == '-') {
        neg = 1;
        p++, plen++;
        if (plen == len) return 0;
    }
    /* No leading zeros: "007" is not the integer 7 for Redis. */
    if (p[0] < '1' || p[0] > '9') return 0;
    v = (unsigned long long)(p[0] - '0');
    p++, plen++;
    for (; plen < len; p++, plen++) {
        if (*p < '0' || *p > '9') return 0;
        if (v > ULLONG_MAX / 10) return 0;
        v *= 10;
        if (v > ULLONG_MAX - (unsigned long long)(*p - '0')) return 0;
        v += (unsigned long long)(*p - '0');
    }
    if (neg) {
        if (v > (unsigned long long)LLONG_MAX + 1) return 0;
        *out = (long long)(0 - v);
    } else {
        if (v > (unsigned long long)LLONG_MAX) return 0;
        *out = (long long)v;
    }
    return 1;
}

/* strtold/strtod need a NUL-terminated copy; numbers longer than this are
 * never valid for Redis either (MAX_LONG_DOUBLE_CHARS). */
#define UTIL_NUM_MAX 5120

int util_str2ld(const char *s, size_t len, long double *out)
{
    char buf[UTIL_NUM_MAX + 1];
    char *end;
    long double v;

    /* Redis: slen >= MAX_LONG_DOUBLE_CHARS fails (its buffer holds the NUL). */
    if (len == 0 || len >= UTIL_NUM_MAX) return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (isspace((unsigned char)buf[0])) return 0;
    errno = 0;
    v = strtold(buf, &end);
    /* All len bytes must be the number: "1.5\0" is not 1.5 (as Redis). */
    if (end != buf + len || isnan(v)) return 0;
    if (errno == ERANGE && (v == HUGE_VALL || v == -HUGE_VALL || v == 0)) return 0;
    *out = v;
    return 1;
}

int util_str2d(const char *s, size_t len, double *out)
{
    char buf[UTIL_NUM_MAX + 1];
    char *end;
    double v;

    if (len == 0 || len > UTIL_NUM_MAX) return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (isspace((unsigned char)buf[0])) return 0;
    errno = 0;
    v = strtod(buf, &end);
    if (end != buf + len || isnan(v)) return 0;
    if (errno == ERANGE && (v == HUGE_VAL || v == -HUGE_VAL || v == 0)) return 0;
    *out = v;
    return 1;
}

size_t util_ll2str(char *buf, size_t cap, long long v)
{
    char tmp[24];
    size_t n = 0;
    unsigned long long u = v < 0 ? 0 - (unsigned long long)v : (unsigned long long)v;

    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) tmp[n++] = '-';
    if (n + 1 > cap) return 0;
    for (size_t i = 0; i < n; i++) buf[i] = tmp[n - 1 - i];
    buf[n] = '\0';
    return n;
}

size_t util_ld2str(char *buf, size_t cap, long double v)
{
    int n;

    if (isinf(v) || isnan(v)) {
        /* Explicit, as Redis: libcs disagree ("-nan", "Infinity"). */
        n = snprintf(buf, cap, isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
        return n > 0 && (size_t)n < cap ? (size_t)n : 0;
    }
    n = snprintf(buf, cap, "%.17Lf", v);
    if (n <= 0 || (size_t)n >= cap) return 0;
    /* Trim "1.50000" to "1.5" and "3.000" to "3", as Redis's human form. */
    if (strchr(buf, '.')) {
        while (n > 0 && buf[n - 1] == '0') n--;
        if (n > 0 && buf[n - 1] == '.') n--;
        buf[n] = '\0';
    }
    if (n == 2 && buf[0] == '-' && buf[1] == '0') {
        buf[0] = '0';
        buf[1] = '\0';
        n = 1;
    }
    return (size_t)n;
}

/* Lay out the significant digits dig[0..nd) (no leading zero) of a value
 * whose first digit has decimal exponent x: fixed notation when x is in
 * [-4, 17) -- where %.17g also writes doubles fixed, so "100" rather than
 * "1e+02" -- otherwise "d.ddde+XX" as %e writes it.  Returns the length. */
static int f2str_layout(int neg, const char *dig, int nd, int x, char *out)
{
    int n = 0;
    while (nd > 1 && dig[nd - 1] == '0') nd--;      /* "1.50e+00" -> 1.5 */
    if (neg) out[n++] = '-';
    if (x < -4 || x >= 17) {
        out[n++] = dig[0];
        if (nd > 1) {
            out[n++] = '.';
            memcpy(out + n, dig + 1, (size_t)nd - 1);
            n += nd - 1;
        }
        int ax = x < 0 ? -x : x;
        out[n++] = 'e';
        out[n++] = x < 0 ? '-' : '+';
        out[n++] = (char)('0' + ax / 10);
        out[n++] = (char)('0' + ax % 10);
    } else if (x < 0) {
        out[n++] = '0';
        out[n++] = '.';
        for (int i = 0; i < -x - 1; i++) out[n++] = '0';
        memcpy(out + n, dig, (size_t)nd);
        n += nd;
    } else {
        for (int i = 0; i <= x; i++) out[n++] = i < nd ? dig[i] : '0';
        if (nd > x + 1) {
            out[n++] = '.';
            memcpy(out + n, dig + x + 1, (size_t)(nd - x - 1));
            n += nd - x - 1;
        }
    }
    out[n] = '\0';
    return n;
}

/* Powers of ten 1e-46 .. 1e60 as doubles (the exponents a float's shortest
 * form can need, plus its 9 digits). */
static const double f2str_p10[] = {1e-46, 1e-45, 1e-44, 1e-43, 1e-42, 1e-41, 1e-40, 1e-39, 1e-38, 1e-37, 1e-36, 1e-35, 1e-34, 1e-33, 1e-32, 1e-31, 1e-30, 1e-29, 1e-28, 1e-27, 1e-26, 1e-25, 1e-24, 1e-23, 1e-22, 1e-21, 1e-20, 1e-19, 1e-18, 1e-17, 1e-16, 1e-15, 1e-14, 1e-13, 1e-12, 1e-11, 1e-10, 1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22, 1e23, 1e24, 1e25, 1e26, 1e27, 1e28, 1e29, 1e30, 1e31, 1e32, 1e33, 1e34, 1e35, 1e36, 1e37, 1e38, 1e39, 1e40, 1e41, 1e42, 1e43, 1e44, 1e45, 1e46, 1e47, 1e48, 1e49, 1e50, 1e51, 1e52, 1e53, 1e54, 1e55, 1e56, 1e57, 1e58, 1e59, 1e60};
#define F2STR_P10(k) f2str_p10[(k) + 46]

/* Shortest digits by one scaling.  A float's rounding interval -- the reals
 * strtof maps back to it: half an ulp either side, a quarter below at a
 * power of two, ends included when the significand is even -- is exact in
 * double.  Scale it by 10^(8-x) (x: f's decimal exponent) to about
 * [1e8, 1e9) and strip decimal digits while the interval still holds a
 * multiple of the next power of ten; of the multiples left, take the one
 * closest to f.  That is the shortest decimal that reads back as f, and
 * the closest of those (as Ryu and Python's repr choose).  The scaling is
 * off by at most ~3e-7 absolute (two roundings of a value below 2^31), so
 * a decision within 1e-6 of a tie or of an interval end returns 0 and
 * printf decides (util_f2str's slow path).  |f| finite and nonzero.
 * Writes the digits (at most 10, no terminator); returns their count and
 * sets *x10 to the first digit's decimal exponent. */
static int f2str_fast(float f, char *dig, int *x10)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    int be = (int)((bits >> 23) & 0xff);
    uint32_t mant = bits & 0x7fffff;
    double a = fabs((double)f);
    /* ulp: 2^(be-150) for normals, 2^-149 for subnormals; built from bits */
    uint64_t ub = (uint64_t)((be ? be - 150 : -149) + 1023) << 52;
    double ulp;
    memcpy(&ulp, &ub, sizeof ulp);
    double up = ulp / 2, dn = (mant == 0 && be > 1) ? ulp / 4 : ulp / 2;

    /* decimal exponent: floor(log2(a) * log10(2)), then one correction */
    int x = be ? (((be - 127) * 78913) >> 18) : (int)floor(log10(a));
    if (x < -46 || x > 38) return 0;
    if (a < F2STR_P10(x)) x--;
    else if (x < 38 && a >= F2STR_P10(x + 1)) x++;
    int k = 8 - x;
    if (k < -46 || k > 60) return 0;
    double sc = F2STR_P10(k);
    double A = a * sc, L = (a - dn) * sc, H = (a + up) * sc;   /* ~[1e8, 1e9] */
    if (L < 1 || H > 4e9) return 0;

    uint64_t lf = (uint64_t)L, hf = (uint64_t)H;               /* floors */
    if (L - (double)lf < 1e-6 || (double)(lf + 1) - L < 1e-6 ||
        H - (double)hf < 1e-6 || (double)(hf + 1) - H < 1e-6)
        return 0;      /* an end too close to call (so whether ends count never matters) */
    uint64_t lo = lf + 1, hi = hf;                             /* integers inside */
    if (lo > hi) return 0;
    /* strip decimal digits while a multiple of the next power of ten stays
     * inside: lo, hi become the interval in units of 10^d */
    int d = 0;
    double unit = 1;
    for (;;) {
        uint64_t h2 = hi / 10, l2 = (lo + 9) / 10;
        if (h2 < l2) break;
        hi = h2;
        lo = l2;
        d++;
        unit *= 10;
    }
    /* the multiple closest to A, kept inside [lo, hi] */
    double q = A / unit;
    uint64_t fl = (uint64_t)q;
    double fr = q - (double)fl;
    uint64_t m = fr < 0.5 ? fl : fl + 1;
    if (fr > 0.5 - 1e-6 && fr < 0.5 + 1e-6) {
        /* A tie, or too close to call.  Exactly half (a short binary
         * fraction, e.g. 38516.6875 at 8 digits) only if the scaling was
         * exact; then round half to even, as printf does. */
        if (k < 0 || k > 22 || fr != 0.5 || fma(a, sc, -A) != 0 || fma(q, unit, -A) != 0)
            return 0;
        m = fl + (fl & 1);
    }
    if (m < lo) m = lo;
    if (m > hi) m = hi;
    char tmp[24];
    int nt = 0;
    for (uint64_t v = m; v; v /= 10) tmp[nt++] = (char)('0' + v % 10);
    for (int i = 0; i < nt; i++) dig[i] = tmp[nt - 1 - i];
    *x10 = x + (nt + d - 9);
    return nt;
}

size_t util_f2str(char *buf, size_t cap, float f)
{
    char dig[24], out[48];
    int n, nd, x;

    if (isnan(f)) n = snprintf(out, sizeof(out), "nan");
    else if (isinf(f)) n = snprintf(out, sizeof(out), f > 0 ? "inf" : "-inf");
    else if (f == 0) n = snprintf(out, sizeof(out), signbit(f) ? "-0" : "0");
    else if ((nd = f2str_fast(f, dig, &x)) > 0) {
        n = f2str_layout(f < 0, dig, nd, x, out);
    } else {
        /* Fewest significant digits that read back as the same float; 9
         * always suffice for binary32.  Each candidate is the correctly
         * rounded one (printf), which strtof maps back to f or not. */
        char e[32];
        int prec;
        for (prec = 1; prec < 9; prec++) {
            snprintf(e, sizeof(e), "%.*e", prec - 1, (double)f);
            if (strtof(e, NULL) == f) break;
        }
        if (prec == 9) snprintf(e, sizeof(e), "%.8e", (double)f);
        nd = 0;
        const char *q = e + (*e == '-');
        for (; *q != 'e'; q++)
            if (*q >= '0' && *q <= '9') dig[nd++] = *q;
        n = f2str_layout(f < 0, dig, nd, (int)strtol(q + 1, NULL, 10), out);
    }
    if (n <= 0 || (size_t)n >= cap) return 0;
    memcpy(buf, out, (size_t)n + 1);
    return (size_t)n;
}

/* ---- glob matching (Redis stringmatchlen semantics) --------------------- */

static int glob_fold(int c, int nocase)
{
    return nocase ? tolower(c) : c;
}

/* Match one character class starting after '['.  The pattern cursor (pp,
 * plen) is advanced past the closing ']' (or to the end if unterminated). */
static int glob_class(const char **pp, size_t *plen, unsigned char c, int nocase)
{
    const char *p = *pp;
    size_t n = *plen;
    int neg = 0, match = 0;

    if (n && *p == '^') {
        neg = 1;
        p++, n--;
    }
    while (n) {
        if (*p == '\\' && n >= 2) {
            /* Redis compares an escaped class member exactly, even nocase. */
            p++, n--;
            if ((unsigned char)*p == c) match = 1;
        } else if (*p == ']') {
            break;
        } else if (n >= 3 && p[1] == '-') {
            /* Redis orders the ends first and folds after, so nocase
             * "[Z-a]" is the empty range 'z'..'a'. */
            int lo = (unsigned char)p[0], hi = (unsigned char)p[2];
            if (lo > hi) { int t = lo; lo = hi; hi = t; }
            lo = glob_fold(lo, nocase);
            hi = glob_fold(hi, nocase);
            int cc = glob_fold(c, nocase);
            if (cc >= lo && cc <= hi) match = 1;
            p += 2, n -= 2;
        } else if (glob_fold((unsigned char)*p, nocase) == glob_fold(c, nocase)) {
            match = 1;
        }
        p++, n--;
    }
    if (n) p++, n--;   /* the ']' */
    *pp = p;
    *plen = n;
    return neg ? !match : match;
}

/* One deliberate difference from stringmatchlen(): there, a non-empty
 * pattern never matches the empty string (its loop needs a byte of string),
 * so "*" and "**" reject "" -- Redis's KEYS and SCAN special-case the
 * pattern "*" to hide that.  Here stars match the empty string, so callers
 * need no special case and KEYS * finds the key "". */
int util_glob_match(const char *pat, size_t plen, const char *s, size_t slen, int nocase)
{
    /* Iterative matcher: on a mismatch, retry from the last star consuming
     * one more byte of s.  Only the last star is ever revisited, so hostile
     * patterns (many stars, then a mismatch) cannot explode the way naive
     * recursion does. */
    const char *star_p = NULL, *star_s = NULL;
    size_t star_plen = 0, star_slen = 0;

    while (slen || plen) {
        if (plen) {
            char pc = *pat;
            if (pc == '*') {
                while (plen && *pat == '*') pat++, plen--;
                if (!plen) return 1;
                star_p = pat, star_plen = plen;
                star_s = s, star_slen = slen;
                continue;
            }
            if (slen) {
                const char *np = pat + 1;
                size_t nplen = plen - 1;
                int ok;
                if (pc == '?') {
                    ok = 1;
                } else if (pc == '[') {
                    ok = glob_class(&np, &nplen, (unsigned char)*s, nocase);
                } else if (pc == '\\' && plen >= 2) {
                    ok = glob_fold((unsigned char)pat[1], nocase) == glob_fold((unsigned char)*s, nocase);
                    np = pat + 2, nplen = plen - 2;
                } else {
                    ok = glob_fold((unsigned char)pc, nocase) == glob_fold((unsigned char)*s, nocase);
                }
                if (ok) {
                    pat = np, plen = nplen;
                    s++, slen--;
                    continue;
                }
            }
        }
        if (star_p && star_slen) {
            star_s++, star_slen--;
            pat = star_p, plen = star_plen;
            s = star_s, slen = star_slen;
            continue;
        }
        return 0;
    }
    return 1;
}

/* ---- argument splitting (Redis sdssplitargs rules) ---------------------- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Parse one token starting at line[*i]; appends bytes to tok.  Returns 0, or
 * -1 on unbalanced quotes. */
static int split_token(const char *line, size_t len, size_t *i, char *tok, size_t *toklen)
{
    size_t p = *i, n = 0;
    int inq = 0, insq = 0;

    for (;;) {
        if (inq) {
            if (p >= len) return -1;
            if (line[p] == '\\' && p + 3 < len && line[p + 1] == 'x' &&
                hexval((unsigned char)line[p + 2]) >= 0 && hexval((unsigned char)line[p + 3]) >= 0) {
                tok[n++] = (char)(hexval((unsigned char)line[p + 2]) * 16 + hexval((unsigned char)line[p + 3]));
                p += 3;
            } else if (line[p] == '\\' && p + 1 < len) {
                char c;
                p++;
                switch (line[p]) {
                case 'n': c = '\n'; break;
                case 'r': c = '\r'; break;
                case 't': c = '\t'; break;
                case 'b': c = '\b'; break;
                case 'a': c = '\a'; break;
                default: c = line[p]; break;
                }
                tok[n++] = c;
            } else if (line[p] == '"') {
                /* A closing quote must be followed by a space or the end. */
                if (p + 1 < len && !isspace((unsigned char)line[p + 1])) return -1;
                p++;
                break;
            } else {
                tok[n++] = line[p];
            }
        } else if (insq) {
            if (p >= len) return -1;
            if (line[p] == '\\' && p + 1 < len && line[p + 1] == '\'') {
                p++;
                tok[n++] = '\'';
            } else if (line[p] == '\'') {
                if (p + 1 < len && !isspace((unsigned char)line[p + 1])) return -1;
                p++;
                break;
            } else {
                tok[n++] = line[p];
            }
        } else {
            if (p >= len) break;
            switch (line[p]) {
            case ' ': case '\n': case '\r': case '\t': case '\0':
                goto done;
            case '"': inq = 1; break;
            case '\'': insq = 1; break;
            default: tok[n++] = line[p]; break;
            }
        }
        p++;
    }
done:
    *i = p;
    *toklen = n;
    return 0;
}

int util_split_args(const char *line, size_t len, char ***argv_out, size_t **lens_out)
{
    char **argv = NULL;
    size_t *lens = NULL;
    int argc = 0, cap = 0;
    char *tok;
    size_t i = 0;

    /* sdssplitargs works on a C string: a NUL ends the line.  (Treating it as
     * a separator instead made split_token return an empty token without
     * advancing -- an endless loop.) */
    const char *nul = memchr(line, '\0', len);
    if (nul) len = (size_t)(nul - line);
    tok = mem_alloc(len + 1);   /* a token is never longer than the line */

    for (;;) {
        while (i < len && isspace((unsigned char)line[i])) i++;
        if (i >= len) break;
        size_t toklen = 0;
        if (split_token(line, len, &i, tok, &toklen) < 0) {
            util_free_args(argv, lens, argc);
            mem_free(tok);
            return -1;
        }
        if (argc == cap) {
            cap = cap ? cap * 2 : 8;
            argv = mem_realloc(argv, (size_t)cap * sizeof(*argv));
            lens = mem_realloc(lens, (size_t)cap * sizeof(*lens));
        }
        argv[argc] = mem_strndup(tok, toklen);
        lens[argc] = toklen;
        argc++;
    }
    mem_free(tok);
    *argv_out = argv;
    *lens_out = lens;
    return argc;
}

void util_free_args(char **argv, size_t *lens, int argc)
{
    for (int i = 0; i < argc; i++) mem_free(argv[i]);
    mem_free(argv);
    mem_free(lens);
}

int util_eq_nocase(const char *s, size_t len, const char *cstr)
{
    size_t i;
    for (i = 0; i < len; i++) {
        if (cstr[i] == '\0') return 0;
        if (tolower((unsigned char)s[i]) != tolower((unsigned char)cstr[i])) return 0;
    }
    return cstr[i] == '\0';
}

/* ---- clocks ------------------------------------------------------------- */

static int64_t clock_us(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t util_wall_us(void) { return clock_us(CLOCK_REALTIME); }
int64_t util_wall_ms(void) { return clock_us(CLOCK_REALTIME) / 1000; }
int64_t util_mono_us(void) { return clock_us(CLOCK_MONOTONIC); }
int64_t util_mono_ms(void) { return clock_us(CLOCK_MONOTONIC) / 1000; }

/* ---- PRNG and hash ------------------------------------------------------ */

uint64_t util_rand64(uint64_t *state)
{
    /* splitmix64: every seed, even 0, gives a good stream. */
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

#define ROTL64(x, b) (((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND(v0, v1, v2, v3)                                  \
    do {                                                          \
        v0 += v1; v1 = ROTL64(v1, 13); v1 ^= v0; v0 = ROTL64(v0, 32); \
        v2 += v3; v3 = ROTL64(v3, 16); v3 ^= v2;                  \
        v0 += v3; v3 = ROTL64(v3, 21); v3 ^= v0;                  \
        v2 += v1; v1 = ROTL64(v1, 17); v1 ^= v2; v2 = ROTL64(v2, 32); \
    } while (0)

/* SipHash-1-3 (as Redis's dict uses): keyed, so clients cannot aim keys at
 * one bucket without knowing the seed. */
uint64_t util_hash(const void *data, size_t len, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t k0 = seed, k1 = seed ^ 0x5bd1e9955bd1e995ULL;
    uint64_t v0 = k0 ^ 0x736f6d6570736575ULL, v1 = k1 ^ 0x646f72616e646f6dULL;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ULL, v3 = k1 ^ 0x7465646279746573ULL;
    uint64_t b = (uint64_t)len << 56, m;
    size_t i;

    for (i = 0; i + 8 <= len; i += 8) {
        memcpy(&m, p + i, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        m = __builtin_bswap64(m);
#endif
        v3 ^= m;
        SIPROUND(v0, v1, v2, v3);
        v0 ^= m;
    }
    for (size_t j = 0; i + j < len; j++) b |= (uint64_t)p[i + j] << (8 * j);
    v3 ^= b;
    SIPROUND(v0, v1, v2, v3);
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND(v0, v1, v2, v3);
    SIPROUND(v0, v1, v2, v3);
    SIPROUND(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- bitmaps ------------------------------------------------------------- */

uint64_t util_popcount(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t count = 0;
    size_t i = 0;

    for (; i + 32 <= n; i += 32) {
        uint64_t w[4];
        memcpy(w, s + i, sizeof w);
        count += (uint64_t)__builtin_popcountll(w[0]) + (uint64_t)__builtin_popcountll(w[1]) +
                 (uint64_t)__builtin_popcountll(w[2]) + (uint64_t)__builtin_popcountll(w[3]);
    }
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, sizeof w);
        count += (uint64_t)__builtin_popcountll(w);
    }
    for (; i < n; i++) count += (uint64_t)__builtin_popcount(s[i]);
    return count;
}

long long util_bitpos(const void *p, size_t n, int bit)
{
    const unsigned char *s = p;
    const uint64_t skip = bit ? 0 : UINT64_MAX;     /* a word with no match */
    const unsigned char skipb = bit ? 0 : 0xff;
    size_t i = 0;

    while (i + 8 <= n) {
        uint64_t w;
        memcpy(&w, s + i, sizeof w);
        if (w != skip) break;
        i += 8;
    }
    for (; i < n; i++) {
        unsigned char b = s[i];
        if (b == skipb) continue;
        if (!bit) b = (unsigned char)~b;
        /* b != 0: its highest set bit is the first match. */
        return (long long)i * 8 + (__builtin_clz((unsigned)b) - 24);
    }
    return bit ? -1 : (long long)n * 8;
}

size_t util_utf8_put(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 63));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 63));
        o[2] = (char)(0x80 | (cp & 63));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 63));
    o[2] = (char)(0x80 | (cp >> 6 & 63));
    o[3] = (char)(0x80 | (cp & 63));
    return 4;
}
