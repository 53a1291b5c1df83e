/* test_vfilter.c -- the FILTER language operator by operator: precedence
 * and associativity, the value types and their conversions, the missing-
 * field rule, tuples and `in` (membership and substrings), null,
 * arithmetic edge cases, literals and the tokenizer's quirks, syntax errors
 * quoted from the positions Redis 8.8 reports (tokenizer, compiler and
 * engram's own), Redis's error text, limits, allocation failure, many
 * threads on one program; and a randomized comparison with a direct
 * recursive interpreter written here over generated expression trees and
 * attribute objects (tens of thousands of cases). */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engram/vfilter.h"

#include "testlib.h"

/* ---- helpers ------------------------------------------------------------ */

static vfilter *compile_ok(const char *e)
{
    vfilter *f = NULL;
    vfilter_error err;
    int rc = vfilter_compile(NULL, e, strlen(e), &f, &err);
    if (rc) fail_msg("%s: %d at %zu: %s", e, rc, err.offset, err.what);
    return f;
}

/* expr against json (NULL: an element without attributes). */
static int eval(const char *json, const char *expr)
{
    vattr *a = NULL;
    if (json) {
        vattr_error e;
        int rc = vattr_new(NULL, json, strlen(json), VATTR_KEEP_INVALID, &a, &e);
        if (rc) fail_msg("json %s: %d", json, rc);
    }
    vfilter *f = compile_ok(expr);
    int r = vfilter_match(f, a);
    vfilter_free(f);
    vattr_free(NULL, a);
    return r;
}

/* One attribute object the operator tests share. */
static const char *J = "{\"a\":1, \"b\":0, \"c\":0, \"year\":1984, \"name\":\"Alice\", \"city\":\"New York\","
                       " \"e\":\"\", \"zero\":\"0\", \"ten\":\"10\", \"on\":true, \"off\":false, \"n\":null,"
                       " \"tags\":[\"sale\", 1, null, \"\"], \"nested\":[[1]], \"none\":[], \"o\":{\"x\":1},"
                       " \"mixed\":[1, {\"y\":2}], \"year-2000\":7, \"5\":5, \"a_b\":2, \"A1\":3,"
                       " \"dq\":\"a\\\"b\", \"sq\":\"O'Brien\", \"bs\":\"x\\\\y\", \"nl\":\"l1\\nl2\","
                       " \"uni\":\"\\u00e9\", \"A\":\"\\u0041\"}";

#define T(expr) do { if (!eval(J, expr)) fail_msg("should pass: %s", expr); } while (0)
#define F(expr) do { if (eval(J, expr)) fail_msg("should fail: %s", expr); } while (0)

/* The expression (len bytes) must not compile, failing with code, and
 * VSIM's reply must quote it from where Redis 8.8 does: near (nlen bytes)
 * is the reply's text after "near: ", the expression's last nlen bytes
 * (all of them for position 0). */
static void bad_code(const char *e, size_t len, int code, const char *near, size_t nlen)
{
    static const char pre[] = "syntax error in FILTER expression near: ";
    if (nlen > len || memcmp(e + len - nlen, near, nlen) != 0)
        fail_msg("'%.*s': the test quotes '%.*s', not its end", (int)len, e, (int)nlen, near);
    size_t at = len - nlen;
    vfilter *f = (vfilter *)1;
    vfilter_error err;
    int rc = vfilter_compile(NULL, e, len, &f, &err);
    if (rc != code || err.offset != at)
        fail_msg("'%.*s': got %d at %zu (%s), want %d at %zu ('%.*s')", (int)len, e, rc,
                 err.offset, err.what ? err.what : "-", code, at, (int)nlen, near);
    assert_null(f);
    assert_non_null(err.what);
    size_t n = vfilter_format_error(NULL, 0, e, len, &err);
    char *buf = malloc(n + 1);
    assert_non_null(buf);
    assert_int_equal(vfilter_format_error(buf, n + 1, e, len, &err), n);
    assert_int_equal(n, sizeof pre - 1 + nlen);
    assert_memory_equal(buf, pre, sizeof pre - 1);
    assert_memory_equal(buf + sizeof pre - 1, near, nlen);
    free(buf);
}
/* e must fail to compile, and VSIM's reply quote near. */
#define BAD(e, near) bad_code(e, strlen(e), VEC_ESYNTAX, near, strlen(near))
/* The same with literals holding NUL bytes. */
#define BADN(e, near) bad_code(e, sizeof e - 1, VEC_ESYNTAX, near, sizeof near - 1)

/* ---- operators ---------------------------------------------------------- */

static void test_precedence(void **state)
{
    (void)state;
    T("1 + 2 * 3 == 7");
    T("(1 + 2) * 3 == 9");
    T("2 ** 3 ** 2 == 512");     /* right-associative */
    T("(2 ** 3) ** 2 == 64");
    T("2 * 3 ** 2 == 18");
    T("10 - 4 - 3 == 3");        /* left-associative */
    T("100 / 10 / 5 == 2");
    T("2 * 3 % 4 == 2");         /* (2*3)%4, not 2*(3%4) */
    T("7 - 2 + 1 == 6");
    T("1 + 2 > 2");              /* arithmetic above comparison */
    T("1 < 2 < 3");              /* (1<2) < 3 */
    F("3 > 2 > 1");              /* (3>2) > 1 is 1 > 1 */
    T("1 == 1 == 1");
    T("1 + 1 in [2]");           /* + binds tighter than in */
    T("2 in [2] == 1");          /* in and == share a level, left to right */
    F("!.a and .b");             /* (!1) and 0 */
    T("!(.a and .b)");
    T(".a or .b and .c");        /* 1 or (0 and 0) */
    F("(.a or .b) and .c");
    T(".b and .c or .a");
    T(".a || .b && .c");
    F("(.a || .b) && .c");
    T("!2 ** 2 == 0");           /* (!2) ** 2 */
    T("not 1 == 0");             /* (not 1) == 0 */
    T("!.b == 1");
    T("-2 ** 2 == 4");           /* a negative literal, not a unary minus */
    T("!0 + 1 == 2");
    T("((((1))))");
    T("(1 + (2 * (3 - (4 / 2)))) == 3");
}

static void test_not(void **state)
{
    (void)state;
    /* tests/filter_double_not.py */
    T("!!.on");
    F("!!.off");
    T("not not .on");
    F("!!!.on");
    T("!!!.off");
    T("!!.year == 1");
    T("!.on or !!.on");
    T(".year > 1 and not not .on");
    T("!.off");
    T("not.off");
    T("!(.off)");
    T("! ! ! .off");
}

static void test_logic(void **state)
{
    (void)state;
    T("1 and 1");
    F("1 and 0");
    T("0 or 1");
    F("0 or 0");
    T("1 && 2");
    T("0 || 'x'");
    F("0 || ''");
    T("null or 1");
    F("null and 1");
    T("[] and 1");               /* a tuple is true, even empty */
    T(".tags and .none");
}

static void test_types(void **state)
{
    (void)state;
    /* truth */
    T("1");
    F("0");
    T("-1");
    T("0.5");
    T("'x'");
    F("''");
    T("'0'");                    /* a non-empty string, whatever it says */
    F("null");
    T("[]");
    T("[0]");
    T(".name");
    F(".e");
    T(".zero");
    T(".on");
    F(".off");
    F(".n");
    T("!.n");
    T(".tags");
    T(".none");
    T("0 / 0");                  /* NaN is not 0 */
    /* == between types */
    T("'10' == 10");
    T("10 == '10'");
    T(".ten == 10");
    T("'abc' == 0");             /* a string that is not a number is 0 */
    T(".name == 0");
    T("'' == 0");
    T("' 5' == 5");              /* strtod skips leading space */
    F("'5 ' == 5");              /* ... but must read the whole string */
    T("'0x10' == 16");
    T("'1e2' == 100");
    T("'abc' == 'abc'");
    F("'abc' == 'abd'");
    T("'abc' != 'abd'");
    F("'10' == '10.0'");         /* two strings compare bytes */
    T("'10' == 10.0");
    T(".on == 1");
    T(".off == 0");
    T("[1] == 0");               /* a tuple is 0 as a number */
    T(".tags == 0");
    T("[1] != 1");
    /* null */
    T("null == null");
    T(".n == null");
    F("null == 0");
    F("0 == null");
    F("null == ''");
    T("null != 0");
    F(".n == 0");
    T(".name != null");
    /* ordering compares numbers only */
    F("'b' > 'a'");              /* 0 > 0 */
    T("'b' >= 'a'");
    F("'2' > '10'");             /* 2 > 10 */
    T("'10' > '9'");
    T(".name < 1");
    T("null < 1");
    T("null + 1 == 1");
    T("'3' * '4' == 12");
    T(".ten + 1 == 11");
    T(".year > 1980 and .name == \"Alice\"");
}

static void test_missing(void **state)
{
    (void)state;
    F(".missing");
    F("!.missing");              /* the whole expression, not the operand */
    F("not .missing");
    F(".missing or 1");
    F("1 or .missing");
    F(".missing == null");
    F(".missing != 1");
    F("!(.missing and 0)");
    F(".o");                     /* an object member reads as missing */
    F("!.o");
    F(".o == null");
    F(".mixed");                 /* ... so does an array holding one */
    F("1 in .mixed");
    F(".x");                     /* nested members are out of reach */
    /* an element without attributes passes nothing */
    assert_false(eval(NULL, "1"));
    assert_false(eval(NULL, "!.a"));
    /* unreadable attributes (kept the Redis way) pass selector-free
     * expressions only, as in Redis */
    assert_true(eval("invalid json", "1"));
    assert_false(eval("invalid json", ".a"));
    assert_false(eval("invalid json", "!.a"));
    assert_true(eval("[1, 2]", "1 + 1 == 2"));
    assert_false(eval("{}", ".a"));
    assert_true(eval("{}", "1"));
}

static void test_in(void **state)
{
    (void)state;
    T("2 in [1, 2, 3]");
    F("4 in [1, 2, 3]");
    T("'b' in ['a', 'b']");
    T("'b' in [\"a\", \"b\"]");
    F("'c' in ['a', 'b']");
    T("'2' in [1, 2]");          /* == between types */
    T("2 in ['2']");
    T("0 in ['abc']");
    F("null in [0]");
    F("1 in []");
    T("1 in [1,]");              /* a trailing comma */
    T("-1 in [-1, -2]");
    T("[1] in [0]");             /* a tuple is 0 */
    T(".year in [1984, 2000]");
    T(".name in ['Alice', 'David']");
    F(".name in ['alice']");
    /* tests/filter_expr.py: substrings */
    T("'lic' in .name");
    T("'ork' in .city");
    F("'xyz' in .name");
    T("'Ali' in .name");
    T("'ice' in .name");
    T("'Alice' in .name");
    F("'Alicex' in .name");
    T("'A' in .name");
    T("'' in .name");
    F(".name in ''");
    T("'' in '' && '' in .name");
    T("'a\\\"' in .dq");
    F("5 in '15'");              /* substrings are for two strings */
    F("'1' in 15");
    F("null in 'null'");
    /* a JSON array is a tuple */
    T("'sale' in .tags");
    T("1 in .tags");
    T("null in .tags");
    T("'' in .tags");
    T("'1' in .tags");
    F("'x' in .tags");
    F("1 in .none");
    /* a nested array is a tuple too: 0 as a number */
    T("0 in .nested");
    T("'x' in .nested");
    F("1 in .nested");
    F("null in .nested");
}

static void test_arithmetic(void **state)
{
    (void)state;
    T("1 / 0 > 1e300");
    T("-1 / 0 < -1e300");
    F("0 / 0 == 0 / 0");         /* NaN */
    T("0 / 0 != 0 / 0");
    F("!(0 / 0)");
    F("5 % 0 == 5 % 0");         /* fmod(x, 0) is NaN */
    T("7 % 3 == 1");
    T("-7 % 3 == -1");           /* fmod keeps the sign */
    T("7.5 % 2 == 1.5");
    T("2 ** 0.5 > 1.414 and 2 ** 0.5 < 1.415");
    T("2 ** -1 == 0.5");
    T("0 ** 0 == 1");
    T("(-8) ** (1 / 3) != (-8) ** (1 / 3)"); /* NaN */
    T("3 -2 == 1");              /* after a value, - subtracts */
    T("3 - -2 == 5");
    T("3*-2 == -6");
    T("3--2 == 5");
    T("(-5) == -5");
    T("1e3 == 1000");
    T("1E3 == 1000");
    T("1.5 == 1.5");
    T("1. == 1");
    T("0.1 + 0.2 != 0.3");
    T("(.year - 2000) ** 2 < 300");
    T(".year % 2 == 0");
    T(".year / 4 == 496");
}

static void test_literals(void **state)
{
    (void)state;
    /* selectors: letters, digits, _ and - */
    T(".year-2000 == 7");        /* ONE selector */
    T(".year - 2000 == -16");
    T(".5 == 5");
    T(".a_b == 2");
    T(".A1 == 3");
    /* strings: either quote, backslash escapes (tests/filter_string_escape.py) */
    T(".dq == \"a\\\"b\"");
    T(".sq == 'O\\'Brien'");
    T(".bs == \"x\\\\y\"");
    T(".nl == \"l1\\nl2\"");
    T("\"\\\"b\" in .dq");
    T(".dq in [\"zzz\", \"a\\\"b\"]");
    T("'a\"b' == .dq");
    T(".sq == \"O'Brien\"");
    T("'\\t' == '\t'");
    T("'\\r\\b\\f' == '\r\b\f'");
    T("'\\q' == 'q'");           /* any other escaped character is itself */
    T("'\\u00e9' == .uni");
    T("'\xc3\xa9' == .uni");     /* raw UTF-8 */
    T("'\\u0041' == 'A'");
    T(".A == 'A'");              /* JSON's \u0041 too */
    T("'\\ud83d\\ude00' == '\xf0\x9f\x98\x80'");
    T("'a\\\\' == 'a\\\\'");
    /* keywords */
    T("notnull");                /* not null: the run is split */
    T("(.n == null)");
    T("null==null");
    T("1 in[1]");
    T("(1)and(1)");
    T("!(0)");
    T("\t1\n==\r1 ");
}

/* ---- errors ------------------------------------------------------------- */

/* Positions as Redis 8.8 reports them (the "Errors" rules atop vfilter.c):
 * each case gives the text the reply quotes after "near: ". */

/* The tokenizer: where its scanning stopped. */
static void test_errors_tokenizer(void **state)
{
    (void)state;
    /* AT a character that starts no token */
    BAD(".x == @y", "@y");
    BAD("@", "@");
    BAD("#", "#");
    BAD("1 # 2", "# 2");
    BAD("1 ^ 2", "^ 2");
    BAD("1 , 2", ", 2");
    BAD(".a == 1 ]", "]");
    BAD("{", "{");
    BAD(". a", ". a");           /* a "." not followed by a selector character */
    BAD(".a == . a", ". a");
    BAD("\x80", "\x80");
    BAD("'x' \xc3\xa9", "\xc3\xa9");
    /* ... or AT what a tuple cannot hold there */
    BAD("[1, .a]", ".a]");
    BAD("[1, null]", "null]");
    BAD("[[1]]", "[1]]");
    BAD("[1 2]", "2]");
    BAD("[,]", ",]");
    BAD("[1,,2]", ",2]");
    BAD(".a in [1, x] or 1", "x] or 1");
    /* AFTER the run read for a word with no operator at its start */
    BAD(".x == foo and 1", " and 1");
    BAD("1 AND 1", " 1");        /* keywords are lowercase */
    BAD("1 andy 1", " 1");       /* "and", then the run "y" */
    BAD("1 & 2", " 2");
    BAD("1 | 2", " 2");
    BAD("1 = 2", " 2");
    BAD("1 === 2", " 2");        /* "==", then "=" */
    BAD(".a !== 1", " 1");       /* "!=", then "=" */
    BAD("foo(.a) or 1", ".a) or 1"); /* the run is "foo(" */
    BAD("0x10 == 16", "10 == 16"); /* "0", then the run "x" */
    BAD("nullx or 1", " or 1");
    /* ... or for a number strtod rejects: the run stops at a sign */
    BAD(".a == 1e-5", "-5");
    BAD("1e-5 == 0", "-5 == 0");
    BAD("1e+5", "+5");
    BAD("1.2.3 == 1", " == 1");
    BAD("1e == 1", " == 1");
    BAD("[-] == 1", "] == 1");
    BAD("[-]", "]");
    BAD("[1e-5]", "-5]");
    /* at the 256th character of a number longer than 255 */
    char num[320];
    memset(num, '1', 300);
    num[300] = '\0';
    BAD(num, num + 255);
    num[256] = '\0';
    BAD(num, "1");
    num[255] = '\0';
    vfilter_free(compile_ok(num));
    /* a position at or past the end is 0: the whole expression */
    BAD("'abc", "'abc");         /* unterminated strings */
    BAD(".a == \"x", ".a == \"x");
    BAD("\"abc'", "\"abc'");
    BAD("'abc\\'", "'abc\\'");
    BAD("[", "[");               /* unterminated tuples */
    BAD("[1", "[1");
    BAD("[1,", "[1,");
    BAD(".a in [1, 2", ".a in [1, 2");
    BAD("AND", "AND");           /* a bad word ending the text */
    BAD(".a == true", ".a == true"); /* no boolean keywords */
    BAD("true", "true");
    BAD("foo", "foo");
    BAD(".a and foo", ".a and foo");
    BAD("NULL", "NULL");
    BAD("nullx", "nullx");
    BAD("andy", "andy");
    BAD("1 &", "1 &");
    BAD("1e", "1e");             /* a bad number ending the text */
    BAD("1.2.3", "1.2.3");
    BAD("1 + 1e", "1 + 1e");
}

/* The compiler: its errors always quote the whole expression. */
static void test_errors_compiler(void **state)
{
    (void)state;
    BAD("", "");
    BAD("   ", "   ");
    BAD("(.a == 1", "(.a == 1"); /* unbalanced parentheses */
    BAD(".a == 1)", ".a == 1)");
    BAD("(1", "(1");
    BAD("((1) + (2)", "((1) + (2)");
    BAD("1)", "1)");
    BAD("(1))", "(1))");
    BAD("()", "()");
    BAD(".a ==", ".a ==");       /* missing operands */
    BAD(".a and", ".a and");
    BAD("1 +", "1 +");
    BAD("== 1", "== 1");
    BAD("!", "!");
    BAD("not", "not");
    BAD("-", "-");               /* no unary minus */
    BAD("-.a", "-.a");
    BAD("- 1", "- 1");
    BAD("-(1)", "-(1)");
    BAD("1 1", "1 1");           /* two values in a row */
    BAD("1 2", "1 2");
    BAD(".a .b", ".a .b");
    BAD(".a.b", ".a.b");
    BAD("1 !2", "1 !2");
    BAD("1 (2)", "1 (2)");
    BAD("1 [2]", "1 [2]");
    BAD("1 null", "1 null");
    BAD("1 + * 2", "1 + * 2");   /* two binary operators in a row */
    BAD("1 ==== 2", "1 ==== 2"); /* "==" "==" */
}

/* engram's own errors (the differences atop vfilter.c). */
static void test_errors_engram(void **state)
{
    (void)state;
    /* Redis's compiler only counts operands and accepts these (3) */
    BAD("1 2 +", "1 2 +");
    BAD("+ 1 2", "+ 1 2");
    /* bad \u escapes (Redis 8.8 does not decode): from the backslash */
    BAD("'\\u12'", "\\u12'");
    BAD("'\\uZZZZ'", "\\uZZZZ'");
    BAD("'\\ud800'", "\\ud800'");
    BAD(".a == '\\u12' or 1", "\\u12' or 1");
    /* a "." ending the text (Redis: an empty selector) */
    BAD(".", ".");
    BAD(".a == .", ".");
    /* NUL bytes (Redis: the end of the expression) */
    BADN("1\0", "\0");
    BADN("1 == 1\0 or 1", "\0 or 1");

    vfilter *f = (vfilter *)1;
    assert_int_equal(vfilter_compile(NULL, NULL, 1, &f, NULL), -EINVAL);
    assert_int_equal(vfilter_compile(NULL, "1", 1, NULL, NULL), -EINVAL);
    assert_int_equal(vfilter_compile(NULL, "(", 1, &f, NULL), VEC_ESYNTAX);
    assert_null(f);
}

static void test_error_text(void **state)
{
    (void)state;
    char buf[128];
    vfilter_error err = { 6, "x" };
    const char *e = ".a == foo";
    size_t n = vfilter_format_error(buf, sizeof buf, e, strlen(e), &err);
    assert_string_equal(buf, "syntax error in FILTER expression near: foo");
    assert_int_equal(n, strlen(buf));
    /* at the end: from the start, as Redis does */
    err.offset = 3;
    vfilter_format_error(buf, sizeof buf, "1 +", 3, &err);
    assert_string_equal(buf, "syntax error in FILTER expression near: 1 +");
    /* no CR or LF in an error line */
    err.offset = 0;
    vfilter_format_error(buf, sizeof buf, "1\r\n+", 4, &err);
    assert_string_equal(buf, "syntax error in FILTER expression near: 1  +");
    /* truncated, NUL-terminated, full length returned */
    n = vfilter_format_error(buf, 10, e, strlen(e), &err);
    assert_string_equal(buf, "syntax er");
    assert_int_equal(n, 40 + strlen(e));
    assert_int_equal(vfilter_format_error(NULL, 0, e, strlen(e), &err), 40 + strlen(e));
}

static void test_limits(void **state)
{
    (void)state;
    /* values pending at once: 1+(1+(1+...)) holds every 1 until the end */
    char e[2048];
    for (unsigned k = VFILTER_STACK_MAX; k <= VFILTER_STACK_MAX + 1; k++) {
        size_t n = 0;
        for (unsigned j = 0; j < k; j++) n += (size_t)sprintf(e + n, j + 1 < k ? "1+(" : "1");
        for (unsigned j = 1; j < k; j++) e[n++] = ')';
        e[n] = '\0';
        if (k == VFILTER_STACK_MAX) {
            vfilter *f = compile_ok(e);
            assert_true(vfilter_match(f, NULL) == 0);
            vattr *a = NULL;
            assert_int_equal(vattr_new(NULL, "{}", 2, 0, &a, NULL), 0);
            assert_true(vfilter_match(f, a));
            vattr_free(NULL, a);
            vfilter_free(f);
        } else {
            bad_code(e, n, VEC_ELIMIT, e, n); /* the whole expression */
        }
    }
    /* parentheses and prefix operators cost nothing on that stack */
    size_t big = 30000, n = 0;
    char *d = malloc(2 * big + 8);
    for (size_t j = 0; j < big; j++) d[n++] = '(';
    d[n++] = '1';
    for (size_t j = 0; j < big; j++) d[n++] = ')';
    d[n] = '\0';
    vfilter_free(compile_ok(d));
    n = 0;
    for (size_t j = 0; j < big; j++) d[n++] = '!';
    d[n++] = '0';
    d[n] = '\0';
    vattr *a = NULL;
    assert_int_equal(vattr_new(NULL, "{}", 2, 0, &a, NULL), 0);
    vfilter *f = compile_ok(d);
    assert_false(vfilter_match(f, a)); /* an even number of nots */
    vfilter_free(f);
    vattr_free(NULL, a);
    /* the length limit: the whole expression too */
    vfilter_error err = { 7, NULL };
    assert_int_equal(vfilter_compile(NULL, d, (size_t)VFILTER_LEN_MAX + 1, &f, &err), VEC_ELIMIT);
    assert_int_equal(err.offset, 0);
    assert_non_null(err.what);
    free(d);
}

static void test_alloc_failure(void **state)
{
    (void)state;
    const char *e = "(.year > 1980 and .name in ['Alice', \"Bob\"]) or !(.tags) or 'x' in .city";
    for (long k = 0;; k++) {
        fail_alloc fa = { .countdown = k };
        vec_allocator al = { f_alloc, f_free, &fa, f_realloc };
        vfilter *f = NULL;
        int rc = vfilter_compile(&al, e, strlen(e), &f, NULL);
        if (rc == 0) {
            assert_int_equal(fa.live, 1);
            vattr *a = NULL;
            assert_int_equal(vattr_new(NULL, J, strlen(J), 0, &a, NULL), 0);
            assert_true(vfilter_match(f, a));
            vattr_free(NULL, a);
            vfilter_free(f);
            assert_int_equal(fa.live, 0);
            assert_true(k > 2);
            break;
        }
        assert_int_equal(rc, -ENOMEM);
        assert_null(f);
        assert_int_equal(fa.live, 0);
    }
}

/* ---- threads ------------------------------------------------------------ */

#define NATTR 64

typedef struct th_arg {
    const vfilter *f;
    vattr **attrs;
    const int *want;
    int rounds, bad;
} th_arg;

static void *th_run(void *p)
{
    th_arg *t = p;
    for (int r = 0; r < t->rounds; r++)
        for (int k = 0; k < NATTR; k++)
            if (vfilter_match(t->f, t->attrs[k]) != t->want[k]) t->bad++;
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    vattr *attrs[NATTR];
    int want[NATTR];
    vfilter *f = compile_ok(".year > 2000 and .genre == \"drama\" or 'x' in .tags");
    for (int k = 0; k < NATTR; k++) {
        char j[160];
        snprintf(j, sizeof j, "{\"year\":%d,\"genre\":\"%s\",\"tags\":[%s]}", 1990 + k % 30,
                 k % 3 ? "drama" : "comedy", k % 5 ? "\"y\"" : "\"x\", 1");
        assert_int_equal(vattr_new(NULL, j, strlen(j), 0, &attrs[k], NULL), 0);
        want[k] = vfilter_match(f, attrs[k]);
    }
    pthread_t th[4];
    th_arg args[4];
    for (int t = 0; t < 4; t++) {
        args[t] = (th_arg){ f, attrs, want, 2000, 0 };
        assert_int_equal(pthread_create(&th[t], NULL, th_run, &args[t]), 0);
    }
    for (int t = 0; t < 4; t++) {
        pthread_join(th[t], NULL);
        assert_int_equal(args[t].bad, 0);
    }
    vfilter_free(f);
    for (int k = 0; k < NATTR; k++) vattr_free(NULL, attrs[k]);
}

/* ---- the randomized comparison ------------------------------------------
 * A reference written from the language's description (vfilter.h), on
 * trees, sharing no code with the library: generate an attribute object
 * and an expression tree, print both as text (the JSON with random
 * whitespace and escapes, the expression with only the parentheses
 * precedence needs plus random extra ones and random spacing), and compare
 * vfilter_match on the texts with the tree interpreter on the trees. */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int rnd(uint64_t *s, int n)
{
    return (int)(rng_next(s) % (uint64_t)n);
}

enum { R_NUM, R_STR, R_NULL, R_TUP, R_NESTED, R_OBJ, R_OBJARR }; /* last two: unreadable */

typedef struct rv {
    int t;
    double num;
    const char *s; /* R_STR */
    size_t len;
    const struct rv *el; /* R_TUP */
    int nel;
    int is_bool;   /* JSON true/false (an R_NUM) */
} rv;

static const char *const STRS[] = { "", "a", "ab", "b", "10", "2", "1e1", " 5", "abc", "x\ny", "q\"'\\",
                                    "\xc3\xa9", "Ab" };
#define NSTRS (sizeof STRS / sizeof STRS[0])
static const double NUMS[] = { -3, -1, 0, 1, 2, 3, 5, 10, 2.5, 0.5, 1984 };
#define NNUMS (sizeof NUMS / sizeof NUMS[0])
static const char *const NAMES[] = { "a", "b", "c", "d", "e", "f", "missing" };

static rv rnd_prim(uint64_t *s)
{
    rv v = { 0 };
    switch (rnd(s, 5)) {
    case 0:
    case 1: v.t = R_NUM; v.num = NUMS[rnd(s, NNUMS)]; break;
    case 2: v.t = R_STR; v.s = STRS[rnd(s, NSTRS)]; v.len = strlen(v.s); break;
    case 3: v.t = R_NUM; v.num = rnd(s, 2); v.is_bool = 1; break;
    default: v.t = R_NULL; break;
    }
    return v;
}

typedef struct model {
    int n;
    const char *name[8];
    rv val[8];
    rv el[8][4];
} model;

static void rnd_model(model *m, uint64_t *s)
{
    m->n = rnd(s, 8);
    for (int k = 0; k < m->n; k++) {
        m->name[k] = NAMES[rnd(s, 6)]; /* repeats happen: the first counts */
        rv v = { 0 };
        int kind = rnd(s, 10);
        if (kind < 6) {
            v = rnd_prim(s);
        } else if (kind < 8) {
            v.t = R_TUP;
            v.nel = rnd(s, 4);
            for (int j = 0; j < v.nel; j++) {
                m->el[k][j] = rnd_prim(s);
                if (rnd(s, 8) == 0) m->el[k][j] = (rv){ .t = R_NESTED };
            }
            v.el = m->el[k];
            if (rnd(s, 10) == 0) v.t = R_OBJARR;
        } else {
            v.t = R_OBJ;
        }
        m->val[k] = v;
    }
}

static size_t put(char *b, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(b + n, 8192 - n, fmt, ap);
    va_end(ap);
    return n + (size_t)w;
}

static size_t json_str(char *b, size_t n, const char *s, size_t len, uint64_t *r)
{
    b[n++] = '"';
    for (size_t j = 0; j < len; j++) {
        unsigned char c = (unsigned char)s[j];
        if (c == '"' || c == '\\') n = put(b, n, "\\%c", c);
        else if (c == '\n') n = put(b, n, rnd(r, 2) ? "\\n" : "\\u000a");
        else if (c < 0x80 && rnd(r, 6) == 0) n = put(b, n, "\\u%04x", c);
        else b[n++] = (char)c;
    }
    b[n++] = '"';
    return n;
}

static size_t json_val(char *b, size_t n, const rv *v, uint64_t *r)
{
    const char *ws[] = { "", " ", "\n\t" };
    switch (v->t) {
    case R_NUM:
        if (v->is_bool) return put(b, n, v->num ? "true" : "false");
        return put(b, n, "%.17g", v->num);
    case R_STR: return json_str(b, n, v->s, v->len, r);
    case R_NULL: return put(b, n, "null");
    case R_NESTED: return put(b, n, "[1, [\"x\"]]");
    case R_OBJ: return put(b, n, "{\"x\": [1, {\"y\": null}]}");
    default:
        b[n++] = '[';
        for (int j = 0; j < v->nel; j++) {
            if (j) n = put(b, n, ",%s", ws[rnd(r, 3)]);
            n = json_val(b, n, &v->el[j], r);
        }
        if (v->t == R_OBJARR) n = put(b, n, "%s{}", v->nel ? "," : "");
        b[n++] = ']';
        return n;
    }
}

static size_t model_json(const model *m, char *b, uint64_t *r)
{
    const char *ws[] = { "", " ", "\r\n  " };
    size_t n = put(b, 0, "%s{", ws[rnd(r, 3)]);
    for (int k = 0; k < m->n; k++) {
        n = put(b, n, "%s%s", k ? "," : "", ws[rnd(r, 3)]);
        n = json_str(b, n, m->name[k], strlen(m->name[k]), r);
        n = put(b, n, "%s:%s", ws[rnd(r, 3)], ws[rnd(r, 3)]);
        n = json_val(b, n, &m->val[k], r);
    }
    return put(b, n, "%s}%s", ws[rnd(r, 3)], ws[rnd(r, 3)]);
}

/* Expression trees. */
enum { X_LIT, X_SEL, X_NOT, X_BIN };
static const char *const BINOPS[] = { "**", "*", "/", "%", "+", "-", ">", ">=", "<", "<=",
                                      "==", "!=", "in", "and", "&&", "or", "||" };
static const int BINPREC[] = { 5, 4, 4, 4, 3, 3, 2, 2, 2, 2, 2, 2, 2, 1, 1, 0, 0 };
#define NBIN (sizeof BINOPS / sizeof BINOPS[0])

typedef struct xn {
    int kind, op, l, r;
    rv lit;
    rv el[4];
    const char *sel;
} xn;

typedef struct tree {
    xn n[64];
    int nn;
} tree;

static int gen(tree *t, uint64_t *s, int depth)
{
    int k = t->nn++;
    xn *x = &t->n[k];
    memset(x, 0, sizeof *x);
    if (depth == 0 || rnd(s, 10) < 3) {
        int leaf = rnd(s, 20);
        if (leaf < 8) {
            x->kind = X_SEL;
            x->sel = NAMES[rnd(s, 7)];
        } else {
            x->kind = X_LIT;
            if (leaf < 17) {
                x->lit = rnd_prim(s);
                if (x->lit.is_bool) x->lit = (rv){ .t = R_NUM, .num = x->lit.num };
            } else {
                x->lit.t = R_TUP;
                x->lit.nel = rnd(s, 4);
                for (int j = 0; j < x->lit.nel; j++) {
                    rv e;
                    do e = rnd_prim(s);
                    while (e.t == R_NULL || e.is_bool);
                    x->el[j] = e;
                }
            }
        }
        return k;
    }
    if (rnd(s, 7) == 0) {
        x->kind = X_NOT;
        int c = gen(t, s, depth - 1);
        t->n[k].l = c;
        return k;
    }
    x->kind = X_BIN;
    x->op = rnd(s, (int)NBIN);
    int l = gen(t, s, depth - 1);
    int r = gen(t, s, depth - 1);
    t->n[k].l = l;
    t->n[k].r = r;
    return k;
}

static int xprec(const tree *t, int k)
{
    const xn *x = &t->n[k];
    return x->kind == X_BIN ? BINPREC[x->op] : x->kind == X_NOT ? 6 : 7;
}

static size_t expr_str(char *b, size_t n, const char *s, size_t len, uint64_t *r)
{
    char q = rnd(r, 2) ? '"' : '\'';
    b[n++] = q;
    for (size_t j = 0; j < len; j++) {
        unsigned char c = (unsigned char)s[j];
        if (c == (unsigned char)q || c == '\\') n = put(b, n, "\\%c", c);
        else if (c == '\n') n = put(b, n, "\\n");
        else if (c < 0x80 && rnd(r, 8) == 0) n = put(b, n, "\\u%04X", c);
        else b[n++] = (char)c;
    }
    b[n++] = q;
    return n;
}

static size_t expr_num(char *b, size_t n, double v)
{
    if (v == (double)(long)v) return put(b, n, "%ld", (long)v);
    return put(b, n, "%g", v); /* 2.5, 0.5: no exponent */
}

static size_t print_x(const tree *t, int k, char *b, size_t n, uint64_t *r);

static size_t print_sub(const tree *t, int k, int paren, char *b, size_t n, uint64_t *r)
{
    if (!paren && rnd(r, 12) == 0) paren = 1;
    if (paren) n = put(b, n, rnd(r, 2) ? "(" : "( ");
    n = print_x(t, k, b, n, r);
    if (paren) n = put(b, n, rnd(r, 2) ? ")" : " )");
    return n;
}

static size_t print_x(const tree *t, int k, char *b, size_t n, uint64_t *r)
{
    const xn *x = &t->n[k];
    switch (x->kind) {
    case X_SEL:
        return put(b, n, ".%s ", x->sel); /* a space: a selector swallows a '-' */
    case X_LIT:
        if (x->lit.t == R_NUM) return expr_num(b, n, x->lit.num);
        if (x->lit.t == R_STR) return expr_str(b, n, x->lit.s, x->lit.len, r);
        if (x->lit.t == R_NULL) return put(b, n, "null");
        b[n++] = '[';
        for (int j = 0; j < x->lit.nel; j++) {
            if (j) n = put(b, n, rnd(r, 2) ? "," : " , ");
            n = x->el[j].t == R_NUM ? expr_num(b, n, x->el[j].num) : expr_str(b, n, x->el[j].s, x->el[j].len, r);
        }
        if (x->lit.nel && rnd(r, 4) == 0) b[n++] = ',';
        b[n++] = ']';
        return n;
    case X_NOT:
        n = put(b, n, rnd(r, 2) ? "!" : "not ");
        return print_sub(t, x->l, xprec(t, x->l) < 6, b, n, r);
    default: {
        int p = BINPREC[x->op], pow = x->op == 0, lp = xprec(t, x->l), rp = xprec(t, x->r);
        int word = BINOPS[x->op][0] >= 'a';
        n = print_sub(t, x->l, lp < p || (lp == p && pow), b, n, r);
        n = put(b, n, word || rnd(r, 2) ? " %s " : "%s", BINOPS[x->op]);
        return print_sub(t, x->r, rp < p || (rp == p && !pow), b, n, r);
    }
    }
}

/* The reference interpreter. */
typedef struct rctx {
    const model *m;
    int missing;
} rctx;

static double ref_num(const rv *v)
{
    if (v->t == R_NUM) return v->num;
    if (v->t != R_STR || v->len >= 256) return 0;
    char buf[256], *end;
    memcpy(buf, v->s, v->len);
    buf[v->len] = '\0';
    double d = strtod(buf, &end);
    return *end ? 0 : d;
}

static int ref_truth(const rv *v)
{
    if (v->t == R_NUM) return v->num != 0;
    if (v->t == R_STR) return v->len > 0;
    return v->t != R_NULL;
}

static int ref_eq(const rv *a, const rv *b)
{
    if (a->t == R_STR && b->t == R_STR) return a->len == b->len && memcmp(a->s, b->s, a->len) == 0;
    if (a->t == R_NUM && b->t == R_NUM) return a->num == b->num;
    if (a->t == R_NULL || b->t == R_NULL) return a->t == b->t;
    return ref_num(a) == ref_num(b);
}

static rv ref_eval(rctx *c, const tree *t, int k)
{
    const xn *x = &t->n[k];
    rv out = { .t = R_NUM };
    if (x->kind == X_LIT) {
        out = x->lit;
        if (out.t == R_TUP) out.el = x->el;
        return out;
    }
    if (x->kind == X_SEL) {
        for (int j = 0; j < c->m->n; j++) {
            if (strcmp(c->m->name[j], x->sel) != 0) continue;
            const rv *v = &c->m->val[j];
            if (v->t == R_OBJ || v->t == R_OBJARR) break;
            return *v;
        }
        c->missing = 1;
        return (rv){ .t = R_NULL };
    }
    if (x->kind == X_NOT) {
        rv v = ref_eval(c, t, x->l);
        out.num = !ref_truth(&v);
        return out;
    }
    rv a = ref_eval(c, t, x->l), b = ref_eval(c, t, x->r);
    double p = ref_num(&a), q = ref_num(&b);
    const char *op = BINOPS[x->op];
    if (!strcmp(op, "**")) out.num = pow(p, q);
    else if (!strcmp(op, "*")) out.num = p * q;
    else if (!strcmp(op, "/")) out.num = p / q;
    else if (!strcmp(op, "%")) out.num = fmod(p, q);
    else if (!strcmp(op, "+")) out.num = p + q;
    else if (!strcmp(op, "-")) out.num = p - q;
    else if (!strcmp(op, ">")) out.num = p > q;
    else if (!strcmp(op, ">=")) out.num = p >= q;
    else if (!strcmp(op, "<")) out.num = p < q;
    else if (!strcmp(op, "<=")) out.num = p <= q;
    else if (!strcmp(op, "==")) out.num = ref_eq(&a, &b);
    else if (!strcmp(op, "!=")) out.num = !ref_eq(&a, &b);
    else if (!strcmp(op, "in")) {
        out.num = 0;
        if (b.t == R_TUP) {
            for (int j = 0; j < b.nel; j++)
                if (ref_eq(&a, &b.el[j])) out.num = 1;
        } else if (a.t == R_STR && b.t == R_STR) {
            for (size_t j = 0; j + a.len <= b.len; j++)
                if (memcmp(b.s + j, a.s, a.len) == 0) out.num = 1;
        }
    } else if (op[0] == 'a' || op[0] == '&') out.num = ref_truth(&a) && ref_truth(&b);
    else out.num = ref_truth(&a) || ref_truth(&b);
    return out;
}

static void test_random_vs_reference(void **state)
{
    (void)state;
#ifdef TEST_SLOW
    const int NEXPR = 600;
#else
    const int NEXPR = 3000;
#endif
    const int NMODEL = 24;
    uint64_t s = 0x5eed;
    static model models[24];
    static char jsons[24][8192];
    vattr *attrs[24];
    long checked = 0, passed = 0;
    for (int k = 0; k < NMODEL; k++) {
        rnd_model(&models[k], &s);
        size_t n = model_json(&models[k], jsons[k], &s);
        jsons[k][n] = '\0';
        vattr_error e;
        if (vattr_new(NULL, jsons[k], n, 0, &attrs[k], &e))
            fail_msg("json %s: %s at %zu", jsons[k], e.what, e.offset);
    }
    static tree t;
    char *text = malloc(8192);
    for (int x = 0; x < NEXPR; x++) {
        t.nn = 0;
        int root = gen(&t, &s, 1 + rnd(&s, 4));
        size_t n = print_sub(&t, root, 0, text, 0, &s);
        text[n] = '\0';
        vfilter *f = NULL;
        vfilter_error e;
        if (vfilter_compile(NULL, text, n, &f, &e))
            fail_msg("'%s' did not compile: %s at %zu", text, e.what, e.offset);
        for (int k = 0; k < NMODEL; k++) {
            rctx c = { &models[k], 0 };
            rv v = ref_eval(&c, &t, root);
            int want = !c.missing && ref_truth(&v);
            int got = vfilter_match(f, attrs[k]);
            if (got != want) fail_msg("'%s' on %s: got %d, want %d", text, jsons[k], got, want);
            checked++;
            passed += got;
        }
        vfilter_free(f);
    }
    /* both outcomes are well represented */
    assert_true(passed > checked / 20 && passed < checked - checked / 20);
    free(text);
    for (int k = 0; k < NMODEL; k++) vattr_free(NULL, attrs[k]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_not),
        cmocka_unit_test(test_logic),
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_missing),
        cmocka_unit_test(test_in),
        cmocka_unit_test(test_arithmetic),
        cmocka_unit_test(test_literals),
        cmocka_unit_test(test_errors_tokenizer),
        cmocka_unit_test(test_errors_compiler),
        cmocka_unit_test(test_errors_engram),
        cmocka_unit_test(test_error_text),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_alloc_failure),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_random_vs_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
