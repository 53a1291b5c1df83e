/* test_util.c -- src/base/util.c against Redis's rules: string2ll/string2ld edge
 * cases, INCRBYFLOAT's number formatting, Redis 8's doubles (d2string:
 * shortest round trip, fpconv's layout; src/base/d2str.c, whose fast path
 * test_d2str.c compares with its reference), shortest float round trips, stringmatchlen globbing (checked against a slow recursive
 * reference on random patterns), sdssplitargs quoting, and a hash whose
 * values must never change between builds. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engram/mem.h"
#include "engram/util.h"

/* ---- str2ll ------------------------------------------------------------- */

static int ll_ok(const char *s, long long want)
{
    long long v = 12345;
    return util_str2ll(s, strlen(s), &v) == 1 && v == want;
}

static int ll_bad(const char *s)
{
    long long v = 12345;
    return util_str2ll(s, strlen(s), &v) == 0 && v == 12345;
}

static void test_str2ll(void **state)
{
    (void)state;
    assert_true(ll_ok("0", 0));
    assert_true(ll_ok("1", 1));
    assert_true(ll_ok("-1", -1));
    assert_true(ll_ok("10", 10));
    assert_true(ll_ok("123456789", 123456789));
    assert_true(ll_ok("9223372036854775807", LLONG_MAX));
    assert_true(ll_ok("-9223372036854775808", LLONG_MIN));
    assert_true(ll_ok("-1000000000000000000", -1000000000000000000LL)); /* 20 chars */
    assert_true(ll_ok("999999999999999999", 999999999999999999LL));     /* 18 digits */
    assert_true(ll_ok("1000000000000000000", 1000000000000000000LL));   /* 19 digits */

    assert_true(ll_bad(""));
    assert_true(ll_bad("-"));
    assert_true(ll_bad("-0"));
    assert_true(ll_bad("+1"));
    assert_true(ll_bad("+0"));
    assert_true(ll_bad("007"));
    assert_true(ll_bad("00"));
    assert_true(ll_bad("-07"));
    assert_true(ll_bad(" 1"));
    assert_true(ll_bad("1 "));
    assert_true(ll_bad("1a"));
    assert_true(ll_bad("a1"));
    assert_true(ll_bad("1.0"));
    assert_true(ll_bad("1e3"));
    assert_true(ll_bad("--1"));
    assert_true(ll_bad("9223372036854775808"));
    assert_true(ll_bad("-9223372036854775809"));
    assert_true(ll_bad("18446744073709551615"));
    assert_true(ll_bad("18446744073709551616"));
    assert_true(ll_bad("99999999999999999999"));      /* 20 digits, overflow */
    assert_true(ll_bad("12345678901234567890"));
    assert_true(ll_bad("00000000000000000001"));
    assert_true(ll_bad("100000000000000000000"));     /* 21 chars */
    assert_true(ll_bad("-00000000000000000001"));

    /* counted, not NUL-terminated */
    long long v = 0;
    assert_int_equal(util_str2ll("123xyz", 3, &v), 1);
    assert_int_equal(v, 123);
    assert_int_equal(util_str2ll("1\0", 2, &v), 0);

    /* every value round-trips through ll2str */
    uint64_t seed = 42;
    for (int i = 0; i < 20000; i++) {
        long long x = (long long)util_rand64(&seed);
        if (i % 3 == 0) x >>= (i % 63);
        char buf[32];
        size_t n = util_ll2str(buf, sizeof(buf), x);
        assert_int_equal(n, strlen(buf));
        long long y;
        assert_int_equal(util_str2ll(buf, n, &y), 1);
        assert_true(x == y);
        char ref[32];
        snprintf(ref, sizeof(ref), "%lld", x);
        assert_string_equal(buf, ref);
    }
}

static void test_ll2str(void **state)
{
    (void)state;
    char buf[32];
    assert_int_equal(util_ll2str(buf, sizeof(buf), 0), 1);
    assert_string_equal(buf, "0");
    assert_int_equal(util_ll2str(buf, sizeof(buf), LLONG_MIN), 20);
    assert_string_equal(buf, "-9223372036854775808");
    assert_int_equal(util_ll2str(buf, sizeof(buf), LLONG_MAX), 19);
    assert_string_equal(buf, "9223372036854775807");
    assert_int_equal(util_ll2str(buf, 21, LLONG_MIN), 20);
    assert_int_equal(util_ll2str(buf, 3, 123), 0);      /* no room for the NUL */
    assert_int_equal(util_ll2str(buf, 4, 123), 3);
}

/* ---- str2ld / ld2str (INCRBYFLOAT) --------------------------------------- */

static const char *ld_fmt(long double v, char *buf, size_t cap)
{
    size_t n = util_ld2str(buf, cap, v);
    assert_int_equal(n, strlen(buf));
    return buf;
}

static long double ld(const char *s)
{
    long double v;
    assert_int_equal(util_str2ld(s, strlen(s), &v), 1);
    return v;
}

static void test_ld2str(void **state)
{
    (void)state;
    char buf[5200];
    /* The Redis test suite's INCRBYFLOAT cases.  They need a long double
     * wider than double, as Redis's do (x86 80-bit, aarch64 128-bit). */
#if LDBL_MANT_DIG >= 64
    assert_string_equal(ld_fmt(ld("10.5") + ld("0.1"), buf, sizeof(buf)), "10.6");
    assert_string_equal(ld_fmt(ld("0.1"), buf, sizeof(buf)), "0.1");
#endif
    assert_string_equal(ld_fmt(ld("5.0e3"), buf, sizeof(buf)), "5000");
    assert_string_equal(ld_fmt(ld("5.0e3") + ld("2.0e2"), buf, sizeof(buf)), "5200");
    assert_string_equal(ld_fmt(ld("-0"), buf, sizeof(buf)), "0");
    assert_string_equal(ld_fmt(-0.0L, buf, sizeof(buf)), "0");
    assert_string_equal(ld_fmt(ld("1.5") - ld("1.5"), buf, sizeof(buf)), "0");
    assert_string_equal(ld_fmt(3.0L, buf, sizeof(buf)), "3");
    assert_string_equal(ld_fmt(-1.25L, buf, sizeof(buf)), "-1.25");
    assert_string_equal(ld_fmt(ld("17179869184"), buf, sizeof(buf)), "17179869184");
    assert_string_equal(ld_fmt(1e20L, buf, sizeof(buf)), "100000000000000000000");
    assert_string_equal(ld_fmt(100.0L, buf, sizeof(buf)), "100");   /* zeros before '.' stay */
#if LDBL_MANT_DIG == 64
    /* 17 places show x87 long double's error, exactly as Redis 7.0 on x86 */
    assert_string_equal(ld_fmt(ld("3.0e3") + ld("1.1"), buf, sizeof(buf)), "3001.10000000000000009");
#elif LDBL_MANT_DIG == 113
    assert_string_equal(ld_fmt(ld("3.0e3") + ld("1.1"), buf, sizeof(buf)), "3001.1");
#endif
    /* a tiny negative rounds to "-0" at 17 places, which Redis prints as "0" */
    assert_string_equal(ld_fmt(-1e-30L, buf, sizeof(buf)), "0");
    assert_string_equal(ld_fmt((long double)INFINITY, buf, sizeof(buf)), "inf");
    assert_string_equal(ld_fmt(-(long double)INFINITY, buf, sizeof(buf)), "-inf");
    assert_string_equal(ld_fmt((long double)NAN, buf, sizeof(buf)), "nan");
    /* no room: 0, never a truncated number */
    assert_int_equal(util_ld2str(buf, 4, 10.5L), 0);
    assert_int_equal(util_ld2str(buf, 3, -(long double)INFINITY), 0);
}

static void test_str2ld(void **state)
{
    (void)state;
    long double v;
    assert_int_equal(util_str2ld("1.5", 3, &v), 1);
    assert_true(v == 1.5L);
    assert_int_equal(util_str2ld("-1e3", 4, &v), 1);
    assert_true(v == -1000.0L);
    assert_int_equal(util_str2ld("inf", 3, &v), 1);        /* strtold accepts it */
    assert_true(isinf(v));
    assert_int_equal(util_str2ld("0x10", 4, &v), 1);       /* so does Redis */
    assert_true(v == 16.0L);
    assert_int_equal(util_str2ld("", 0, &v), 0);
    assert_int_equal(util_str2ld(" 1", 2, &v), 0);
    assert_int_equal(util_str2ld("\t1", 2, &v), 0);
    assert_int_equal(util_str2ld("1 ", 2, &v), 0);
    assert_int_equal(util_str2ld("1x", 2, &v), 0);
    assert_int_equal(util_str2ld("nan", 3, &v), 0);
    assert_int_equal(util_str2ld("abc", 3, &v), 0);
    assert_int_equal(util_str2ld("1e999999", 8, &v), 0);  /* overflow */
    assert_int_equal(util_str2ld("1e-999999", 9, &v), 0); /* underflow to zero */
    assert_int_equal(util_str2ld("1.5\0", 4, &v), 0);
    /* Redis's buffer is MAX_LONG_DOUBLE_CHARS (5120) with the NUL. */
    char big[5200];
    memset(big, '0', sizeof(big));
    big[0] = '0';
    big[1] = '.';
    assert_int_equal(util_str2ld(big, 5119, &v), 1);       /* 0.000...0 fits */
    assert_int_equal(util_str2ld(big, 5120, &v), 0);       /* one more does not */
}

static void test_str2d(void **state)
{
    (void)state;
    double d;
    assert_int_equal(util_str2d("0.1", 3, &d), 1);
    assert_true(d == 0.1);
    assert_int_equal(util_str2d("-inf", 4, &d), 1);
    assert_true(isinf(d) && d < 0);
    assert_int_equal(util_str2d("nan", 3, &d), 0);
    assert_int_equal(util_str2d(" 1", 2, &d), 0);
    assert_int_equal(util_str2d("1 ", 2, &d), 0);
    assert_int_equal(util_str2d("", 0, &d), 0);
    assert_int_equal(util_str2d("1e400", 5, &d), 0);
    assert_int_equal(util_str2d("1.5\0", 4, &d), 0);       /* a NUL is not the end */
    assert_int_equal(util_str2d("12", 1, &d), 1);          /* counted */
    assert_true(d == 1.0);
}

/* ---- f2str -------------------------------------------------------------- */

/* Significant digits of a decimal: no leading or trailing zeros. */
static int sig_digits(const char *s)
{
    char d[64];
    int n = 0;
    for (; *s && *s != 'e'; s++) {
        if (!isdigit((unsigned char)*s)) continue;
        if (n == 0 && *s == '0') continue;
        d[n++] = *s;
    }
    while (n > 1 && d[n - 1] == '0') n--;
    return n ? n : 1;
}

static void check_f2str(float f)
{
    char buf[64], shorter[64];
    size_t n = util_f2str(buf, sizeof(buf), f);
    assert_true(n > 0);
    assert_int_equal(n, strlen(buf));
    float back = strtof(buf, NULL);
    assert_memory_equal(&back, &f, sizeof(f));          /* exact, sign of zero too */
    int digits = sig_digits(buf);
    assert_true(digits <= 9);
    /* and no shorter decimal would have done */
    if (digits > 1) {
        snprintf(shorter, sizeof(shorter), "%.*e", digits - 2, (double)f);
        assert_true(strtof(shorter, NULL) != f);
    }
    /* of the decimals that short, the closest to f (ties to even, as the
     * correctly rounded printf): unless that one does not read back as f,
     * where a float's interval is lopsided */
    snprintf(shorter, sizeof(shorter), "%.*e", digits - 1, (double)f);
    if (strtof(shorter, NULL) == f) assert_true(strtod(shorter, NULL) == strtod(buf, NULL));
}

static void test_f2str(void **state)
{
    (void)state;
    char buf[64];
    struct { float v; const char *s; } cases[] = {
        { 0.1f, "0.1" }, { 0.5f, "0.5" }, { 1.0f, "1" }, { -2.0f, "-2" },
        { 1.0f / 3.0f, "0.33333334" }, { 16777216.0f, "16777216" },
        { 0.0f, "0" }, { -0.0f, "-0" }, { 0.3f, "0.3" }, { -1234.5f, "-1234.5" },
        { 3.14159274f, "3.1415927" }, { 123456.7f, "123456.7" },
        /* notation as %.17g chooses: fixed for exponents -4..16 */
        { 100.0f, "100" }, { 1e10f, "10000000000" }, { 1e16f, "10000000000000000" },
        { 1e17f, "1e+17" }, { 1e-4f, "0.0001" }, { 0.00012345f, "0.00012345" },
        { 1e-5f, "1e-05" }, { 1e-45f, "1e-45" },
        { FLT_MAX, "3.4028235e+38" }, { FLT_MIN, "1.1754944e-38" },
        { INFINITY, "inf" }, { -INFINITY, "-inf" }, { NAN, "nan" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        size_t n = util_f2str(buf, sizeof(buf), cases[i].v);
        assert_int_equal(n, strlen(cases[i].s));
        assert_string_equal(buf, cases[i].s);
    }
    /* random bit patterns: every finite float, normal or not */
    uint64_t seed = 7;
    for (int i = 0; i < 200000; i++) {
        uint32_t bits = (uint32_t)util_rand64(&seed);
        float f;
        memcpy(&f, &bits, sizeof(f));
        if (isnan(f) || isinf(f)) continue;
        check_f2str(f);
    }
    /* random "nice" values, as distances come out */
    for (int i = 0; i < 100000; i++) {
        float f = (float)((double)(util_rand64(&seed) >> 11) / 9007199254740992.0 * 4.0 - 2.0);
        check_f2str(f);
    }
    /* short binary fractions: exact ties between two shortest decimals */
    for (int i = 0; i < 20000; i++) check_f2str((float)(util_rand64(&seed) % 100000000) / 16.0f);
    for (int i = 0; i < 20000; i++) check_f2str((float)(util_rand64(&seed) % 1000000) / 256.0f);
    /* powers of two, where the rounding interval is lopsided */
    for (int e = -149; e <= 127; e++) check_f2str(ldexpf(1.0f, e));
    assert_int_equal(util_f2str(buf, 2, 0.25f), 0);
}

/* ---- d2str (Redis 8's d2string) ----------------------------------------- */

/* The decimal a text denotes, as significant digits (no leading or trailing
 * zeros) times 10^*k: "0.0012" -> "12", -4; "1.5e+21" -> "15", 20. */
static int dec_value(const char *s, char *dig, int *k)
{
    int nd = 0, frac = 0, seen_point = 0;
    *k = 0;
    if (*s == '-') s++;
    for (; *s && *s != 'e'; s++) {
        if (*s == '.') {
            seen_point = 1;
            continue;
        }
        assert_true(isdigit((unsigned char)*s));
        if (seen_point) frac++;
        if (nd == 0 && *s == '0') continue;
        dig[nd++] = *s;
    }
    if (*s == 'e') *k = (int)strtol(s + 1, NULL, 10);
    *k -= frac;
    while (nd > 1 && dig[nd - 1] == '0') {
        nd--;
        (*k)++;
    }
    dig[nd] = '\0';
    return nd;
}

/* The slow, obviously right search: the fewest digits whose correctly
 * rounded printf form reads back as v.  Writes that form to out. */
static int naive_shortest(double v, char *out, size_t cap)
{
    int p;
    for (p = 1; p < 17; p++) {
        snprintf(out, cap, "%.*e", p - 1, v);
        if (strtod(out, NULL) == v) return p;
    }
    snprintf(out, cap, "%.16e", v);
    return 17;
}

static int is_ll_exact(double v)
{
    return v >= -0x1p62 && v <= 0x1p62 && (double)(long long)v == v;
}

static void check_d2str(double v)
{
    char buf[64], naive[64], d1[32], d2[32];
    int k1, k2;
    size_t n = util_d2str(buf, sizeof(buf), v);
    assert_true(n > 0 && n < 26);
    assert_int_equal(n, strlen(buf));
    double back = strtod(buf, NULL);
    assert_memory_equal(&back, &v, sizeof(v));          /* exact, sign of zero too */
    if (v == 0 || isinf(v)) return;
    if (is_ll_exact(v)) {                               /* double2ll: in full */
        snprintf(naive, sizeof(naive), "%lld", (long long)v);
        assert_string_equal(buf, naive);
        return;
    }
    /* No fewer digits read back: at most as many as the naive search
     * needs; fewer only where the interval is lopsided (a power of two),
     * and then the naive one, correctly rounded, falls outside it. */
    int nd = dec_value(buf, d1, &k1);
    int np = naive_shortest(v, naive, sizeof(naive));
    assert_true(nd <= np && nd <= 17);
    if (nd < np) {
        int e;
        assert_true(frexp(fabs(v), &e) == 0.5);
    } else {
        /* of the shortest, the closest: the correctly rounded one */
        int nn = dec_value(naive, d2, &k2);
        assert_int_equal(nn, nd);
        assert_string_equal(d1, d2);
        assert_int_equal(k1, k2);
    }
    /* the notation fpconv's emit_digits picks for nd digits x 10^k1 */
    int x = k1 + nd - 1, ax = abs(x);
    if (k1 >= 0 && ax < nd + 7) assert_true(strchr(buf, '.') == NULL && strchr(buf, 'e') == NULL);
    else if (k1 < 0 && (k1 > -7 || ax < 4)) assert_true(strchr(buf, '.') && !strchr(buf, 'e'));
    else assert_true(strchr(buf, 'e') != NULL);
}

static void test_d2str_cases(void **state)
{
    (void)state;
    char buf[64];
    struct { double v; const char *s; } cases[] = {
        /* special values */
        { NAN, "nan" }, { -NAN, "nan" }, { INFINITY, "inf" }, { -INFINITY, "-inf" },
        { 0.0, "0" }, { -0.0, "-0" },
        /* integers within +-2^62 in full (double2ll) */
        { 3.0, "3" }, { -3.0, "-3" }, { 100.0, "100" }, { 1e16, "10000000000000000" },
        { 1e18, "1000000000000000000" }, { 0x1p53, "9007199254740992" },
        { 0x1p62, "4611686018427387904" }, { -0x1p62, "-4611686018427387904" },
        { 0x1p62 - 512, "4611686018427387392" },
        /* past 2^62: shortest digits, zeros while the exponent is < nd + 7 */
        { 0x1p63, "9223372036854776000" }, { 0x1p62 + 1024, "4611686018427389000" },
        { -0x1p62 - 1024, "-4611686018427389000" }, { 0x1p64, "18446744073709552000" },
        { 123456789012345680000.0, "123456789012345680000" },
        { 1.2345678901234567e23, "123456789012345670000000" },
        { 5e18, "5e+18" }, { 1e21, "1e+21" }, { 1.5e21, "1.5e+21" }, { -1.5e21, "-1.5e+21" },
        { 1e22, "1e+22" }, { 1e23, "1e+23" }, { 1.2e25, "1.2e+25" },
        { 1e100, "1e+100" }, { 1e300, "1e+300" }, { DBL_MAX, "1.7976931348623157e+308" },
        /* fractions: fixed while k > -7 or |x| < 4 */
        { 0.1, "0.1" }, { -0.1, "-0.1" }, { 0.3, "0.3" }, { 0.1 + 0.2, "0.30000000000000004" },
        { 1 / 3.0, "0.3333333333333333" }, { 12.5, "12.5" }, { -2.5, "-2.5" },
        { 100.5, "100.5" }, { 123.456, "123.456" }, { 1234567.125, "1234567.125" },
        { 1e-5, "0.00001" }, { 3e-5, "0.00003" }, { 1.5e-5, "0.000015" },
        { 0.00012, "0.00012" }, { 0.000001, "0.000001" }, { 0.0012345, "0.0012345" },
        { (double)0.18208661f, "0.18208661675453186" },
        /* else scientific, the exponent unpadded */
        { 0.0000001, "1e-7" }, { -1e-7, "-1e-7" }, { 1.5e-6, "1.5e-6" },
        { 0.00012345, "1.2345e-4" }, { 1.5e-300, "1.5e-300" },
        { DBL_MIN, "2.2250738585072014e-308" }, { 5e-324, "5e-324" }, { -5e-324, "-5e-324" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        size_t n = util_d2str(buf, sizeof(buf), cases[i].v);
        assert_string_equal(buf, cases[i].s);
        assert_int_equal(n, strlen(cases[i].s));
        if (!isnan(cases[i].v)) check_d2str(cases[i].v);
    }
    /* cap counts the NUL; the longest text (25 bytes) fits in 26 */
    assert_int_equal(util_d2str(buf, 3, 0.5), 0);
    assert_int_equal(util_d2str(buf, 4, 0.5), 3);
    assert_int_equal(util_d2str(buf, 3, -INFINITY), 0);
    assert_int_equal(util_d2str(buf, 26, -1.2345678901234567e23), 25);
    assert_string_equal(buf, "-123456789012345670000000");
    assert_int_equal(util_d2str(buf, 25, -1.2345678901234567e23), 0);
}

static void test_d2str_roundtrip(void **state)
{
    (void)state;
    uint64_t seed = 11;
    /* random bit patterns: every finite double, normal or not */
    for (int i = 0; i < 100000; i++) {
        uint64_t bits = util_rand64(&seed);
        double v;
        memcpy(&v, &bits, sizeof(v));
        if (isnan(v) || isinf(v)) continue;
        check_d2str(v);
    }
    /* computed values of ordinary size, as scores come out */
    static const double scale[] = { 1e-9, 1e-3, 1, 1000, 1e6, 1e17, 1e21 };
    for (int i = 0; i < 60000; i++) {
        double u = (double)(util_rand64(&seed) >> 11) / 9007199254740992.0;
        check_d2str((u * 2 - 1) * scale[i % 7]);
    }
    /* typed values: short decimals, and their exact ties */
    for (int i = 0; i < 30000; i++) {
        double m = (double)(util_rand64(&seed) % 10000000);
        check_d2str(m / scale[i % 3 + 2] / 100);
        check_d2str(m / 1024);
    }
    /* integers either side of 2^62, and around 2^53 */
    for (int i = -2000; i <= 2000; i++) {
        check_d2str(nextafter(0x1p62, i < 0 ? 0 : INFINITY) + (double)i * 1024);
        check_d2str(-0x1p62 + (double)i * 1024);
        check_d2str(0x1p53 + (double)i * 2);
        check_d2str(0x1p53 + (double)i + 0.5);
    }
    /* powers of two, where the rounding interval is lopsided */
    for (int e = -1074; e <= 1023; e++) {
        check_d2str(ldexp(1.0, e));
        check_d2str(-ldexp(1.0, e));
        check_d2str(nextafter(ldexp(1.0, e), 0));
    }
}

/* ---- glob --------------------------------------------------------------- */

static int glob(const char *pat, const char *s)
{
    return util_glob_match(pat, strlen(pat), s, strlen(s), 0);
}

static int globi(const char *pat, const char *s)
{
    return util_glob_match(pat, strlen(pat), s, strlen(s), 1);
}

static void test_glob_basic(void **state)
{
    (void)state;
    assert_true(glob("", ""));
    assert_false(glob("", "a"));
    assert_true(glob("*", ""));          /* see util.c: Redis's callers special-case "*" */
    assert_true(glob("**", ""));
    assert_true(glob("*", "anything"));
    assert_true(glob("h?llo", "hello"));
    assert_true(glob("h?llo", "hallo"));
    assert_false(glob("h?llo", "hllo"));
    assert_true(glob("h*llo", "hllo"));
    assert_true(glob("h*llo", "heeeello"));
    assert_true(glob("h[ae]llo", "hello"));
    assert_true(glob("h[ae]llo", "hallo"));
    assert_false(glob("h[ae]llo", "hillo"));
    assert_true(glob("h[^e]llo", "hallo"));
    assert_false(glob("h[^e]llo", "hello"));
    assert_true(glob("h[a-b]llo", "hbllo"));
    assert_false(glob("h[a-b]llo", "hcllo"));
    assert_true(glob("h[b-a]llo", "hallo"));     /* reversed range */
    assert_true(glob("[0-9][0-9]", "42"));
    assert_false(glob("[0-9]", "x"));
    /* "[a-]": "a-]" is the range ']'..'a' and the class is never closed */
    assert_true(glob("[a-]", "]"));
    assert_true(glob("[a-]", "_"));
    assert_false(glob("[a-]", "-"));
    assert_true(glob("a[bc", "ab"));             /* unterminated class runs to the end */
    assert_false(glob("[", "["));
    assert_false(glob("[]", "a"));               /* empty class */
    assert_true(glob("[^]", "x"));               /* negated empty class */
    assert_false(glob("[]]", "]"));              /* ']' right after '[' closes it */
    /* escapes */
    assert_true(glob("\\*", "*"));
    assert_false(glob("\\*", "a"));
    assert_true(glob("\\?", "?"));
    assert_false(glob("\\?", "x"));
    assert_true(glob("\\\\", "\\"));
    assert_true(glob("a\\", "a\\"));             /* trailing backslash is literal */
    assert_true(glob("[\\]]", "]"));
    assert_true(glob("[\\^a]", "^"));
    assert_true(glob("[\\-]", "-"));
    assert_true(glob("[\\[]", "["));
    assert_true(glob("*\\*", "abc*"));
    /* stars */
    assert_true(glob("a*", "a"));
    assert_true(glob("*a", "a"));
    assert_true(glob("*a*", "bab"));
    assert_false(glob("*a*", "bbb"));
    assert_true(glob("a*b*c", "aXXbYYc"));
    assert_false(glob("a*b*c", "aXXbYY"));
    assert_true(glob("*.txt", "file.txt"));
    assert_false(glob("*.txt", "file.txt.bak"));
    assert_true(glob("user:*:name", "user:1000:name"));
    /* binary bytes */
    assert_true(util_glob_match("a?c", 3, "a\0c", 3, 0));
    assert_true(util_glob_match("a\0*", 3, "a\0zz", 4, 0));
    assert_false(util_glob_match("a\0*", 3, "a\1zz", 4, 0));
    assert_true(util_glob_match("[\x80-\xff]", 5, "\xc3", 1, 0));
}

static void test_glob_nocase(void **state)
{
    (void)state;
    assert_true(globi("HELLO", "hello"));
    assert_true(globi("h*O", "HellO"));
    assert_false(glob("HELLO", "hello"));
    assert_true(globi("[A-C]x", "bX"));
    assert_true(globi("[a-c]", "B"));
    assert_true(globi("[^a]", "x"));
    assert_false(globi("[^a]", "A"));
    assert_true(globi("[xyz]", "Y"));
    assert_true(globi("\\A", "a"));              /* escape outside a class folds */
    assert_false(globi("[\\A]", "a"));           /* inside one it is exact (Redis) */
    assert_false(globi("[Z-a]", "z"));           /* ordered, then folded: 'z'..'a' */
    assert_false(globi("[Z-a]", "_"));
    assert_true(glob("[Z-a]", "_"));             /* case-sensitive: 'Z'..'a' */
}

/* A slow, obviously correct recursive matcher with the same rules, for
 * differential testing on random small patterns. */
static int ref_fold(int c, int nocase) { return nocase ? tolower(c) : c; }

static int ref_class(const unsigned char **pp, const unsigned char *pe, int c, int nocase)
{
    const unsigned char *p = *pp;
    int neg = 0, match = 0;
    if (p < pe && *p == '^') neg = 1, p++;
    while (p < pe && *p != ']') {
        if (*p == '\\' && pe - p >= 2) {
            if (p[1] == c) match = 1;
            p += 2;
        } else if (pe - p >= 3 && p[1] == '-') {
            int lo = p[0], hi = p[2];
            if (lo > hi) { int t = lo; lo = hi; hi = t; }
            int cc = ref_fold(c, nocase);
            if (cc >= ref_fold(lo, nocase) && cc <= ref_fold(hi, nocase)) match = 1;
            p += 3;
        } else {
            if (ref_fold(*p, nocase) == ref_fold(c, nocase)) match = 1;
            p++;
        }
    }
    if (p < pe) p++;
    *pp = p;
    return neg ? !match : match;
}

static int ref_match(const unsigned char *p, const unsigned char *pe,
                     const unsigned char *s, const unsigned char *se, int nocase)
{
    if (p == pe) return s == se;
    if (*p == '*') {
        for (const unsigned char *t = s; ; t++) {
            if (ref_match(p + 1, pe, t, se, nocase)) return 1;
            if (t == se) return 0;
        }
    }
    if (s == se) return 0;
    if (*p == '?') return ref_match(p + 1, pe, s + 1, se, nocase);
    if (*p == '[') {
        const unsigned char *q = p + 1;
        if (!ref_class(&q, pe, *s, nocase)) return 0;
        return ref_match(q, pe, s + 1, se, nocase);
    }
    if (*p == '\\' && pe - p >= 2) p++;
    if (ref_fold(*p, nocase) != ref_fold(*s, nocase)) return 0;
    return ref_match(p + 1, pe, s + 1, se, nocase);
}

static void test_glob_random_vs_reference(void **state)
{
    (void)state;
    const char palp[] = "ab*?[]^-\\A";
    const char pals[] = "abAB-]^\\[";
    uint64_t seed = 99;
    char pat[12], str[10];
    for (int i = 0; i < 300000; i++) {
        size_t pl = util_rand64(&seed) % sizeof(pat);
        size_t sl = util_rand64(&seed) % sizeof(str);
        for (size_t j = 0; j < pl; j++) pat[j] = palp[util_rand64(&seed) % (sizeof(palp) - 1)];
        for (size_t j = 0; j < sl; j++) str[j] = pals[util_rand64(&seed) % (sizeof(pals) - 1)];
        int nocase = (int)(util_rand64(&seed) & 1);
        int want = ref_match((const unsigned char *)pat, (const unsigned char *)pat + pl,
                             (const unsigned char *)str, (const unsigned char *)str + sl, nocase);
        int got = util_glob_match(pat, pl, str, sl, nocase);
        if (want != got)
            fail_msg("pattern '%.*s' string '%.*s' nocase %d: want %d got %d",
                     (int)pl, pat, (int)sl, str, nocase, want, got);
    }
}

static void test_glob_pathological(void **state)
{
    (void)state;
    /* Exponential for naive backtracking; must stay polynomial here. */
    size_t n = 20000;
    char *s = mem_alloc(n + 1);
    memset(s, 'a', n);
    s[n] = '\0';
    const char *pat = "a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b";
    assert_false(util_glob_match(pat, strlen(pat), s, n, 0));
    const char *pat2 = "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a";
    assert_true(util_glob_match(pat2, strlen(pat2), s, n, 0));
    const char *pat3 = "*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*[^a]";
    assert_false(util_glob_match(pat3, strlen(pat3), s, n, 1));
    const char *pat4 = "****************************************************************c";
    assert_false(util_glob_match(pat4, strlen(pat4), s, n, 0));
    mem_free(s);
}

/* ---- split_args --------------------------------------------------------- */

/* Split `line`; check the result is exactly the NULL-terminated list of
 * (bytes, length) pairs given. */
static void check_split(const char *line, size_t len, int want_argc, ...)
{
    char **argv = NULL;
    size_t *lens = NULL;
    int argc = util_split_args(line, len, &argv, &lens);
    if (argc != want_argc) fail_msg("'%.*s': argc %d, want %d", (int)len, line, argc, want_argc);
    va_list ap;
    va_start(ap, want_argc);
    for (int i = 0; i < argc; i++) {
        const char *w = va_arg(ap, const char *);
        size_t wl = va_arg(ap, size_t);
        if (lens[i] != wl || memcmp(argv[i], w, wl) != 0)
            fail_msg("'%.*s': arg %d is '%.*s'", (int)len, line, i, (int)lens[i], argv[i]);
        assert_int_equal(argv[i][lens[i]], '\0');        /* NUL-terminated copies */
    }
    va_end(ap);
    if (argc >= 0) util_free_args(argv, lens, argc);
}

#define S(lit) lit, sizeof(lit) - 1
#define A(lit) (const char *)lit, (size_t)(sizeof(lit) - 1)

static void test_split_plain(void **state)
{
    (void)state;
    check_split(S(""), 0);
    check_split(S("   "), 0);
    check_split(S(" \t\r\n\v\f "), 0);
    check_split(S("a"), 1, A("a"));
    check_split(S("set k v"), 3, A("set"), A("k"), A("v"));
    check_split(S("  set \t k   v  "), 3, A("set"), A("k"), A("v"));
    check_split(S("a\rb\nc\td"), 4, A("a"), A("b"), A("c"), A("d"));
    /* \v and \f separate arguments only between them, not inside a word */
    check_split(S("a\vb"), 1, A("a\vb"));
    check_split(S("\va\f"), 1, A("a\f"));
    /* a quote inside a word opens a quoted part */
    check_split(S("a\"b"), -1);
    check_split(S("ab'cd"), -1);
}

static void test_split_quotes(void **state)
{
    (void)state;
    check_split(S("\"a b\""), 1, A("a b"));
    check_split(S("set k \"a b\""), 3, A("set"), A("k"), A("a b"));
    check_split(S("\"\""), 1, A(""));
    check_split(S("''"), 1, A(""));
    check_split(S("'' \"\""), 2, A(""), A(""));
    check_split(S("'a b'"), 1, A("a b"));
    /* double-quote escapes */
    check_split(S("\"\\n\\r\\t\\b\\a\\\\\\\"\""), 1, A("\n\r\t\b\a\\\""));
    check_split(S("\"\\x41\\x62\\x00\\xff\""), 1, A("Ab\0\xff"));
    check_split(S("\"\\xAf\""), 1, A("\xaf"));
    check_split(S("\"\\xg1\""), 1, A("xg1"));          /* not hex: \x is just x */
    check_split(S("\"\\x4\""), 1, A("x4"));            /* one digit: not an escape */
    check_split(S("\"\\q\""), 1, A("q"));              /* unknown escape: the char */
    check_split(S("\"a'b\""), 1, A("a'b"));
    /* single quotes: only \' is an escape */
    check_split(S("'it\\'s'"), 1, A("it's"));
    check_split(S("'a\\nb'"), 1, A("a\\nb"));
    check_split(S("'a\"b'"), 1, A("a\"b"));
    check_split(S("'a\\b'"), 1, A("a\\b"));
    check_split(S("'\\\\'"), -1);                  /* '\\' then \' escapes the close */
    /* a word may open a quote mid-way; the quote then runs to its close */
    check_split(S("ab\"c d\""), 1, A("abc d"));
    check_split(S("ab'c d'"), 1, A("abc d"));
    /* closing quote followed by whitespace or the end */
    check_split(S("\"a\"\tb"), 2, A("a"), A("b"));
    check_split(S("\"a\"\nb"), 2, A("a"), A("b"));
    check_split(S("\"a\"\vb"), 2, A("a"), A("b"));
}

static void test_split_unbalanced(void **state)
{
    (void)state;
    check_split(S("\"abc"), -1);
    check_split(S("'abc"), -1);
    check_split(S("set k \"abc"), -1);
    check_split(S("\"ab\"c"), -1);              /* closing quote then a letter */
    check_split(S("'ab'c"), -1);
    check_split(S("\"a\"\"b\""), -1);
    check_split(S("\"abc\\\""), -1);             /* escaped closing quote */
    check_split(S("'abc\\'"), -1);
    check_split(S("\"abc\\"), -1);               /* backslash at the very end */
    check_split(S("\""), -1);
    check_split(S("'"), -1);
    /* nothing leaks on the error path (ASan build checks) */
    size_t before = mem_used();
    char **argv;
    size_t *lens;
    assert_int_equal(util_split_args(S("a b c d e f g h i j k \"open"), &argv, &lens), -1);
    assert_int_equal(mem_used(), before);
}

static void test_split_nul(void **state)
{
    (void)state;
    /* sdssplitargs works on C strings: a NUL ends the line.  (This used to
     * loop forever.) */
    check_split(S("a\0b"), 1, A("a"));
    check_split(S("set k v\0 junk"), 3, A("set"), A("k"), A("v"));
    check_split(S("\0abc"), 0);
    check_split(S("\"ab\0c\""), -1);
    /* a NUL produced by an escape is just a byte */
    check_split(S("\"\\x00\" x"), 2, A("\0"), A("x"));
}

static void test_split_many(void **state)
{
    (void)state;
    /* argv grows past its first allocation */
    char line[4000];
    size_t n = 0;
    for (int i = 0; i < 1000; i++) n += (size_t)snprintf(line + n, sizeof(line) - n, "%d ", i % 10);
    char **argv;
    size_t *lens;
    int argc = util_split_args(line, n, &argv, &lens);
    assert_int_equal(argc, 1000);
    for (int i = 0; i < argc; i++) {
        assert_int_equal(lens[i], 1);
        assert_int_equal(argv[i][0], '0' + i % 10);
    }
    util_free_args(argv, lens, argc);
}

/* ---- misc --------------------------------------------------------------- */

static void test_eq_nocase(void **state)
{
    (void)state;
    assert_true(util_eq_nocase("GET", 3, "get"));
    assert_true(util_eq_nocase("gEt", 3, "GeT"));
    assert_false(util_eq_nocase("GET", 3, "gets"));
    assert_false(util_eq_nocase("GETS", 4, "get"));
    assert_false(util_eq_nocase("GET", 2, "get"));
    assert_true(util_eq_nocase("", 0, ""));
    assert_false(util_eq_nocase("a\0", 2, "a"));
}

static void test_hash_stable(void **state)
{
    (void)state;
    /* Fixed outputs: persisted structures and tests may depend on them, so
     * a change here is a format change. */
    assert_true(util_hash("", 0, 0) == util_hash("", 0, 0));
    const char *in[] = { "", "a", "abc", "hello world", "0123456789abcdef",
                         "The quick brown fox jumps over the lazy dog" };
    const uint64_t want[][2] = {
        { 0xef9fb0286ce25a33ULL, 0x5ecf43d3c2b54ecfULL },
        { 0x5d625450daca3c29ULL, 0x4a46dc8350d0898aULL },
        { 0xee101fd1235832c2ULL, 0xca69f0fa7c4ac4c8ULL },
        { 0x2a3cccbc680e5e25ULL, 0x462043ac570a6040ULL },
        { 0x60becd30dbb84882ULL, 0xa8d1396481c10e15ULL },
        { 0xb3890f6176a26416ULL, 0xe4529d749f20b8ebULL },
    };
    for (size_t i = 0; i < sizeof(in) / sizeof(*in); i++) {
        uint64_t h0 = util_hash(in[i], strlen(in[i]), 0);
        uint64_t h1 = util_hash(in[i], strlen(in[i]), 0x0123456789abcdefULL);
        if (h0 != want[i][0] || h1 != want[i][1])
            fail_msg("hash of '%s': 0x%016llx 0x%016llx", in[i],
                     (unsigned long long)h0, (unsigned long long)h1);
    }
    /* the seed matters, the length matters, every byte matters */
    assert_true(util_hash("abc", 3, 1) != util_hash("abc", 3, 2));
    assert_true(util_hash("a", 1, 0) != util_hash("a\0", 2, 0));
    char buf[64];
    memset(buf, 'x', sizeof(buf));
    uint64_t base = util_hash(buf, sizeof(buf), 5);
    for (size_t i = 0; i < sizeof(buf); i++) {
        buf[i] ^= 1;
        assert_true(util_hash(buf, sizeof(buf), 5) != base);
        buf[i] ^= 1;
    }
    /* unaligned input gives the same value */
    char al[80];
    memcpy(al + 3, "The quick brown fox", 19);
    assert_true(util_hash(al + 3, 19, 9) == util_hash("The quick brown fox", 19, 9));
}

static void test_rand64(void **state)
{
    (void)state;
    uint64_t a = 1, b = 1;
    for (int i = 0; i < 100; i++) assert_true(util_rand64(&a) == util_rand64(&b));
    uint64_t z = 0;
    assert_true(util_rand64(&z) != 0);
}

static void test_clocks(void **state)
{
    (void)state;
    int64_t m0 = util_mono_us();
    int64_t w = util_wall_ms();
    assert_true(w > 1600000000000LL);               /* after 2020 */
    assert_true(util_mono_us() >= m0);
    assert_true(util_mono_ms() >= m0 / 1000);
    assert_true(util_wall_us() / 1000 >= w);
}

/* ---- bitmaps ------------------------------------------------------------- */

static uint64_t ref_popcount(const unsigned char *s, size_t n)
{
    uint64_t c = 0;
    for (size_t i = 0; i < n * 8; i++) c += (s[i / 8] >> (7 - i % 8)) & 1;
    return c;
}

static long long ref_bitpos(const unsigned char *s, size_t n, int bit)
{
    for (size_t i = 0; i < n * 8; i++)
        if ((int)((s[i / 8] >> (7 - i % 8)) & 1) == bit) return (long long)i;
    return bit ? -1 : (long long)n * 8;
}

static void test_popcount_bitpos(void **state)
{
    (void)state;
    unsigned char buf[300] = {0};
    uint64_t rng = 42;

    assert_int_equal(util_popcount(buf, 0), 0);
    assert_int_equal(util_bitpos(buf, 0, 1), -1);
    assert_int_equal(util_bitpos(buf, 0, 0), 0);
    memset(buf, 0xff, sizeof buf);
    assert_int_equal(util_popcount(buf, sizeof buf), 8 * sizeof buf);
    assert_int_equal(util_bitpos(buf, sizeof buf, 0), 8 * (long long)sizeof buf);
    assert_int_equal(util_bitpos(buf, sizeof buf, 1), 0);
    buf[7] = 0xfe;
    assert_int_equal(util_bitpos(buf, sizeof buf, 0), 63);
    memset(buf, 0, sizeof buf);
    assert_int_equal(util_bitpos(buf, sizeof buf, 1), -1);
    buf[299] = 1;
    assert_int_equal(util_bitpos(buf, sizeof buf, 1), 299 * 8 + 7);
    assert_int_equal(util_popcount(buf, sizeof buf), 1);

    /* Random buffers, sparse and dense, at every offset and length, against
     * the bit-at-a-time references. */
    for (int round = 0; round < 2000; round++) {
        size_t n = (size_t)(util_rand64(&rng) % sizeof buf);
        size_t off = (size_t)(util_rand64(&rng) % (sizeof buf - n + 1));
        int mode = round % 4;
        for (size_t i = 0; i < sizeof buf; i++) {
            uint64_t r = util_rand64(&rng);
            buf[i] = mode == 0 ? (unsigned char)r
                   : mode == 1 ? (r % 97 == 0 ? (unsigned char)(1u << (r % 8)) : 0)
                   : mode == 2 ? (r % 97 == 0 ? (unsigned char)~(1u << (r % 8)) : 0xff)
                               : (unsigned char)(r & (r >> 8));
        }
        assert_int_equal(util_popcount(buf + off, n), ref_popcount(buf + off, n));
        assert_int_equal(util_bitpos(buf + off, n, 1), ref_bitpos(buf + off, n, 1));
        assert_int_equal(util_bitpos(buf + off, n, 0), ref_bitpos(buf + off, n, 0));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_str2ll),
        cmocka_unit_test(test_ll2str),
        cmocka_unit_test(test_ld2str),
        cmocka_unit_test(test_str2ld),
        cmocka_unit_test(test_str2d),
        cmocka_unit_test(test_f2str),
        cmocka_unit_test(test_d2str_cases),
        cmocka_unit_test(test_d2str_roundtrip),
        cmocka_unit_test(test_glob_basic),
        cmocka_unit_test(test_glob_nocase),
        cmocka_unit_test(test_glob_random_vs_reference),
        cmocka_unit_test(test_glob_pathological),
        cmocka_unit_test(test_split_plain),
        cmocka_unit_test(test_split_quotes),
        cmocka_unit_test(test_split_unbalanced),
        cmocka_unit_test(test_split_nul),
        cmocka_unit_test(test_split_many),
        cmocka_unit_test(test_eq_nocase),
        cmocka_unit_test(test_hash_stable),
        cmocka_unit_test(test_rand64),
        cmocka_unit_test(test_clocks),
        cmocka_unit_test(test_popcount_bitpos),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
