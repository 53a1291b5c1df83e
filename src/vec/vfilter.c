/* vfilter.c -- the FILTER language of Redis vector sets: a compiler from
 * expression text to a postfix program, and its evaluator over attribute
 * blocks (vattr_impl.h).
 *
 * ==== The language, as Redis defines it ====================================
 * Learned from redis/redis modules/vector-sets: expr.c (the compiler and
 * evaluator) at a9ec7407, what Redis 8.8 ships ("8.8" below); fastjson.c
 * (how a JSON value becomes a filter value), vset.c (how VSIM calls the
 * filter and words its errors), README.md ("FILTER expressions
 * capabilities"), and tests/filter_expr.py; tests/filter_double_not.py
 * (ad67f21d) and filter_string_escape.py describe a later expr.c, which
 * engram follows where the list of differences below says so.  Written
 * here in our own words; no code copied.
 *
 * Tokens (whitespace, C's isspace, only separates them):
 *   - Numbers start with a digit, or with '-' right before a digit where an
 *     operand is expected (at the start, after '(' or after any operator
 *     but ')').  So "3 -2" subtracts, "3 * -2" multiplies by a negative
 *     literal, and nothing else has a unary minus ("-.a", "-(1)" are
 *     errors).  A literal is the longest run of digits, '.', 'e', 'E' (and
 *     that leading '-'), and strtod must read the whole run: "1e5" and "1."
 *     are numbers, "1e-5" and "1e+5" are errors (the run stops at the
 *     sign); at most 255 characters.
 *   - Strings are quoted with ' or "; a backslash takes the next character
 *     along, so either quote can be escaped.  Whether the escapes are then
 *     decoded differs (see the differences below); engram decodes \n \r \t
 *     \b \f and \uXXXX (surrogate pairs too), as its JSON does, and any
 *     other \c is c.
 *   - null is a keyword.  There are no true/false keywords: booleans are
 *     the numbers 1 and 0 (JSON true/false read as 1 and 0).
 *   - Tuples [a, b, ...] hold number and string literals only (no
 *     selectors, null or nesting); [] and a trailing comma [1,] are fine.
 *   - A selector is '.' then one or more of A-Z a-z 0-9 _ -, naming a
 *     top-level member: ".year-2000" is ONE selector (write ".year - 2000"),
 *     ".5" is the member "5", and ".a.b" is two selectors in a row (an
 *     error: members of nested objects cannot be reached).
 *   - Operators: a run of letters and of +-*%/!()<>=|& is read and the
 *     longest operator starting it is taken; the rest of the run is read
 *     again.  So "notnull" is "not null", "!!" two nots, "!==" is "!="
 *     and then a stray "=" (an error).  Keywords are lowercase only.
 *
 * Precedence, tightest first (Redis's operator table):
 *     6  ! not           prefix, right-associative ("!!x": 8.8 rejects
 *                        it, see the differences below)
 *     5  **              right-associative: 2 ** 3 ** 2 is 512
 *     4  * / %
 *     3  + -
 *     2  > >= < <= == != in
 *     1  and &&
 *     0  or ||
 * All binary operators but ** are left-associative, comparisons included
 * (1 < 2 < 3 is (1 < 2) < 3).  "!.a == 1" is "(!.a) == 1", "!2 ** 2" is
 * "(!2) ** 2".  Parentheses group.
 *
 * Values and operators (each operator yields a number, 1/0 for tests):
 *   - As a number: a number is itself; a string is what strtod reads when
 *     it reads all of it and it is under 256 bytes, else 0 ("abc" and ""
 *     are 0, " 5" is 5, "0x10" is 16); null and tuples are 0.
 *   - As a truth: a number unless 0 (NaN is true); a string unless empty
 *     ("0" is true); null is false; a tuple is true, even [].
 *   - + - * / % ** work on the numbers in IEEE arithmetic: 1/0 is inf, 0/0
 *     NaN, x % 0 NaN (fmod), ** is pow.  No run-time errors.
 *   - > >= < <= compare the numbers, so strings compare as numbers too
 *     ("b" > "a" is 0 > 0: false).
 *   - == and !=: two strings compare their bytes, two numbers their values;
 *     if either side is null they are equal only when both are; anything
 *     else compares as numbers ("abc" == 0, "10" == 10, [1] == 0 are true).
 *   - x in tuple: some element == x (the rule above); str in str: substring
 *     ("" is in every string); anything else is false ("5 in '15'" too).
 *   - and, or: both sides are evaluated, then their truths combined.
 *   - An element passes when the final value is true.
 * A selector reads the element's member: numbers, strings, 1/0 for
 * true/false, null, an array as a tuple.  A selector naming a member the
 * element lacks -- or one holding an object, or an array with an object
 * inside -- makes the WHOLE expression false, not just its operand:
 * "!.missing", ".missing or 1" and ".missing == null" are all false.  An
 * element without attributes never passes.  One whose attributes are not a
 * readable object passes only expressions without selectors (Redis reads
 * the text per selector and evaluates "1" to true on any attribute).
 *
 * Errors: VSIM replies "ERR syntax error in FILTER expression near: " and
 * the expression from a position to its end (vfilter_format_error; the
 * position is vfilter_compile's err->offset).  Redis tokenizes the whole
 * text, then compiles the tokens, and the position depends on the stage
 * that failed:
 *   - The tokenizer (numbers, strings, selectors, tuples, operator words,
 *     null) gives where its scanning stopped.  That is AT a character that
 *     starts no token ("@", "#", "^", "{", "," or a "." not followed by a
 *     selector character, a byte >= 0x80), or that a tuple cannot hold
 *     where it stands (".a", "null", "[" or "," as an element; "2" in
 *     "[1 2]"); AFTER the run it read for a word that starts with no
 *     operator ("foo", "AND", "true", "=", "&", the "y" of "andy") or for a
 *     number strtod rejects ("1e-5" stops before its "-": "-5" is quoted);
 *     at the 256th character of a number longer than 255; at the end for an
 *     unterminated string or tuple.
 *   - A position at or past the end becomes 0: an unterminated string or
 *     tuple, and a bad word or number that ends the text, quote the whole
 *     expression.
 *   - Redis's compiler never records where its tokens were (their offsets
 *     stay 0), so every error it finds quotes the whole expression:
 *     unbalanced parentheses, a missing operand, two values or two binary
 *     operators in a row, nothing at all ("" quotes "", "   " quotes
 *     "   ").
 *
 * ==== Where engram differs, on purpose ====================================
 * Error positions are Redis's (above) wherever Redis also fails; the
 * errors that are engram's own get a tokenizer position where one is
 * natural, else 0, as each item says.
 *   - Two prefix operators in a row ("!!x", "not not x", "! !x"): 8.8's
 *     compiler rejects them (the second pops the first before it has an
 *     operand; the whole expression is quoted); the later expr.c of
 *     filter_double_not.py accepts them, and so does engram.
 *   - Escapes: 8.8 keeps a backslash and the character after it in the
 *     literal as they are ('a\"b' is the four bytes a\"b, never equal to
 *     the JSON string a"b, which fastjson decodes); the later expr.c of
 *     filter_string_escape.py decodes \" \' \\ and \n; engram decodes as
 *     said above, so '\q' is "q" here and "\q" in 8.8.  A bad \u escape
 *     ("\u12", "\uZZZZ", a lone surrogate) is an error only in engram,
 *     quoted from its backslash.
 *   - Order is checked: Redis's compiler only counts operands, so it also
 *     accepts non-infix forms ("1 2 +", "+ 1 2" are 3 there); engram
 *     rejects them ("expected an operator" / "expected a value"), quoting
 *     the whole expression as Redis's compiler errors do.
 *   - null is recognised before any non-letter: Redis wants the whole run
 *     of letters and operator characters to be "null", so "(.a == null)"
 *     (run "null)", no operator at its start, ending the text) is a syntax
 *     error there quoting the whole expression; engram reads it.
 *   - A "." ending the text: Redis's test for a selector character accepts
 *     the C string's terminating NUL, so it reads an empty selector (the
 *     member "") and ".a == ." compiles; engram rejects the ".", quoted
 *     from it (as a "." followed by a space is in both).
 *   - NUL bytes: VSIM reads the argument as a C string, so a NUL ends the
 *     expression ("1\0junk" is "1"); engram reads all len bytes, and a NUL
 *     is a character that starts no token, quoted from it.
 *   - Limits: 1 MB of text, 64 values pending (VFILTER_STACK_MAX); none in
 *     Redis.  Both errors (VEC_ELIMIT) quote the whole expression.  The
 *     255-character number limit is Redis's own.
 *
 * ==== The program ==========================================================
 * Postfix instructions (8 bytes each) over a value stack; literals are
 * vattr_val records like the attribute block's, with each string's number
 * computed at compile time, so evaluation never parses anything; selectors
 * carry their name hash, so a lookup is a scan of the block's sorted
 * hashes.  Compiling: a scanner makes tokens, then a shunting-yard pass
 * with an explicit operand/operator state (iterative: no recursion, any
 * nesting) orders them and counts the stack depth; the program is then
 * packed into one allocation.  Evaluation uses a VFILTER_STACK_MAX array on
 * the caller's stack: no allocation, no shared state.
 *
 * Threads: compile anywhere; a compiled program is read-only, so any
 * number of threads may evaluate it at once. */
#include "engram/vfilter.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vattr_impl.h"

/* ---- operators ---------------------------------------------------------- */

enum {
    OP_OPEN, OP_CLOSE, OP_NOT, OP_POW, OP_MUL, OP_DIV, OP_MOD, OP_ADD, OP_SUB,
    OP_GT, OP_GE, OP_LT, OP_LE, OP_EQ, OP_NE, OP_IN, OP_AND, OP_OR
};

static const struct {
    const char *name;
    unsigned char len, op, prec, arity;
} optab[] = {
    { "(", 1, OP_OPEN, 7, 0 },   { ")", 1, OP_CLOSE, 7, 0 }, { "!", 1, OP_NOT, 6, 1 },
    { "not", 3, OP_NOT, 6, 1 },  { "**", 2, OP_POW, 5, 2 },  { "*", 1, OP_MUL, 4, 2 },
    { "/", 1, OP_DIV, 4, 2 },    { "%", 1, OP_MOD, 4, 2 },   { "+", 1, OP_ADD, 3, 2 },
    { "-", 1, OP_SUB, 3, 2 },    { ">", 1, OP_GT, 2, 2 },    { ">=", 2, OP_GE, 2, 2 },
    { "<", 1, OP_LT, 2, 2 },     { "<=", 2, OP_LE, 2, 2 },   { "==", 2, OP_EQ, 2, 2 },
    { "!=", 2, OP_NE, 2, 2 },    { "in", 2, OP_IN, 2, 2 },   { "and", 3, OP_AND, 1, 2 },
    { "&&", 2, OP_AND, 1, 2 },   { "or", 2, OP_OR, 0, 2 },   { "||", 2, OP_OR, 0, 2 },
};
#define NOPS (sizeof optab / sizeof optab[0])

static int op_prec(int op)
{
    for (size_t j = 0; j < NOPS; j++)
        if (optab[j].op == op) return optab[j].prec;
    return -1;
}

static int op_arity(int op)
{
    for (size_t j = 0; j < NOPS; j++)
        if (optab[j].op == op) return optab[j].arity;
    return -1;
}

/* C-locale character classes, on bytes (no locale, no sign trouble). */
static int c_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}
static int c_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}
static int c_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static int c_opchar(unsigned char c)
{
    return c && strchr("+-*%/!()<>=|&", c) != NULL;
}
static int c_selchar(unsigned char c)
{
    return c_alpha(c) || c_digit(c) || c == '_' || c == '-';
}

/* ---- the program -------------------------------------------------------- */

/* Instructions: I_PUSH pushes consts[arg], I_SEL the element's member
 * sels[arg]; the others are the operators (arg unused). */
enum { I_PUSH = 100, I_SEL };

typedef struct vf_ins {
    uint32_t op;
    uint32_t arg;
} vf_ins;

typedef struct vf_sel {
    uint32_t hash, off, len; /* name at str + off */
} vf_sel;

struct vfilter {
    vec_allocator al;
    size_t size;
    uint32_t nins;
    const vf_ins *ins;
    const vattr_val *consts; /* NUMBER, STRING, NULL or ARRAY (a tuple) */
    const vattr_val *items;  /* the tuples' elements */
    const vf_sel *sels;
    const char *str;         /* decoded strings, then selector names */
};

/* ---- compiling ---------------------------------------------------------- */

enum { T_NUM, T_STR, T_NULL, T_TUPLE, T_SEL, T_OP, T_END };

typedef struct tok {
    unsigned char kind, op;
    uint32_t a, b; /* STR: decoded (off, len) in cc.str; SEL: name (off,
                    * len) in the expression; TUPLE: first item, count */
    double num;    /* NUM; STR: its number */
} tok;

typedef struct cc {
    vec_mem m; /* temporaries */
    const char *s;
    size_t n;
    tok *toks;
    uint32_t ntok, captok;
    vattr_val *items;
    uint32_t nitems, capitems;
    char *str; /* decoded strings: never longer than their source */
    size_t nstr;
    uint32_t *rpn, nrpn; /* token indices in postfix order */
    vfilter_error *err;
} cc;

/* at: where the scanner stopped, in Redis's sense (see "Errors" at the
 * top), or 0 for an error found after scanning; at or past the end it
 * becomes 0, as VSIM's reply does. */
static int cc_fail(cc *c, size_t at, int code, const char *what)
{
    c->err->offset = at < c->n ? at : 0;
    c->err->what = what;
    return code;
}

/* Make room for need elements of elem bytes in *p (capacity *cap). */
static int cc_grow(cc *c, void **p, uint32_t *cap, uint32_t need, size_t elem)
{
    if (need <= *cap) return 0;
    uint32_t nc = *cap ? *cap : 16;
    while (nc < need) nc *= 2;
    void *q = vec_mem_resize(&c->m, *p, (size_t)*cap * elem, (size_t)nc * elem, (size_t)*cap * elem);
    if (!q) return -ENOMEM;
    *p = q;
    *cap = nc;
    return 0;
}

/* Redis's number rule (see the top): from *pi, into *out. */
static int lex_number(cc *c, size_t *pi, double *out)
{
    size_t st = *pi, i = st;
    while (i < c->n) {
        unsigned char ch = (unsigned char)c->s[i];
        if (!(c_digit(ch) || ch == '.' || ch == 'e' || ch == 'E' || (i == st && ch == '-'))) break;
        i++;
    }
    /* Redis copies the run into 256 bytes and stops at the 256th character */
    if (i - st > 255)
        return cc_fail(c, st + 255, VEC_ESYNTAX, "number longer than 255 characters");
    char buf[256], *end;
    memcpy(buf, c->s + st, i - st);
    buf[i - st] = '\0';
    *out = strtod(buf, &end);
    if (i == st || end != buf + (i - st)) return cc_fail(c, i, VEC_ESYNTAX, "invalid number");
    *pi = i;
    return 0;
}

/* The quoted string at *pi, decoded into c->str. */
static int lex_string(cc *c, size_t *pi, uint32_t *off, uint32_t *len)
{
    size_t st = *pi, i = st + 1;
    char q = c->s[st], *d = c->str + c->nstr;
    size_t o = 0;
    for (;;) {
        if (i >= c->n) return cc_fail(c, i, VEC_ESYNTAX, "unterminated string");
        char ch = c->s[i];
        if (ch == q) break;
        if (ch != '\\' || i + 1 >= c->n) {
            d[o++] = ch;
            i++;
            continue;
        }
        char e = c->s[i + 1];
        if (e == 'u') {
            size_t used = 0;
            long cp = vattr_unicode_escape(c->s + i + 1, c->n - i - 1, &used);
            if (cp == -1) return cc_fail(c, i, VEC_ESYNTAX, "invalid \\u escape");
            if (cp == -2) return cc_fail(c, i, VEC_ESYNTAX, "unpaired surrogate in \\u escape");
            o += vattr_utf8_put(d + o, cp);
            i += 1 + used;
            continue;
        }
        d[o++] = e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t' : e == 'b' ? '\b' : e == 'f' ? '\f' : e;
        i += 2;
    }
    *off = (uint32_t)c->nstr;
    *len = (uint32_t)o;
    c->nstr += o;
    *pi = i + 1;
    return 0;
}

static void skip_space(const cc *c, size_t *i)
{
    while (*i < c->n && c_space((unsigned char)c->s[*i])) (*i)++;
}

/* The tuple at *pi ('['): its elements go to c->items. */
static int lex_tuple(cc *c, size_t *pi, uint32_t *first, uint32_t *count)
{
    size_t st = *pi, i = st + 1;
    int rc;
    *first = c->nitems;
    for (;;) {
        skip_space(c, &i);
        if (i >= c->n) return cc_fail(c, i, VEC_ESYNTAX, "unterminated tuple");
        if (c->s[i] == ']') break;
        vattr_val v;
        memset(&v, 0, sizeof v);
        unsigned char ch = (unsigned char)c->s[i];
        if (c_digit(ch) || ch == '-') {
            double num;
            if ((rc = lex_number(c, &i, &num))) return rc;
            vattr_val_set(&v, VATTR_NUMBER, num, 0, 0);
        } else if (ch == '"' || ch == '\'') {
            uint32_t off, len;
            if ((rc = lex_string(c, &i, &off, &len))) return rc;
            vattr_val_set(&v, VATTR_STRING, vattr_str_num(c->str + off, len), off, len);
        } else {
            return cc_fail(c, i, VEC_ESYNTAX, "a tuple holds number and string literals only");
        }
        if ((rc = cc_grow(c, (void **)&c->items, &c->capitems, c->nitems + 1, sizeof v))) return rc;
        c->items[c->nitems++] = v;
        skip_space(c, &i);
        if (i >= c->n) return cc_fail(c, i, VEC_ESYNTAX, "unterminated tuple");
        if (c->s[i] == ']') break;
        if (c->s[i] != ',') return cc_fail(c, i, VEC_ESYNTAX, "expected ',' or ']' in the tuple");
        i++;
    }
    *count = c->nitems - *first;
    *pi = i + 1;
    return 0;
}

/* An operator or null at *pi (see "Operators" at the top).  Every
 * operator is spelled with run characters, so "the longest operator
 * starting the run" is the longest one matching here: no need to measure
 * the run (which made "((((...": quadratic). */
static int lex_word(cc *c, size_t *pi, tok *t)
{
    size_t i = *pi, left = c->n - i;
    if (left >= 4 && memcmp(c->s + i, "null", 4) == 0 &&
        (left == 4 || !c_alpha((unsigned char)c->s[i + 4]))) {
        t->kind = T_NULL;
        *pi = i + 4;
        return 0;
    }
    size_t best = 0;
    for (size_t k = 0; k < NOPS; k++) {
        if (optab[k].len > left || optab[k].len <= best) continue;
        if (memcmp(c->s + i, optab[k].name, optab[k].len) != 0) continue;
        best = optab[k].len;
        t->op = optab[k].op;
    }
    if (!best) {
        /* Redis gives up after reading the whole run (measured only here,
         * once) */
        size_t j = i;
        while (j < c->n && (c_alpha((unsigned char)c->s[j]) || c_opchar((unsigned char)c->s[j])))
            j++;
        return cc_fail(c, j, VEC_ESYNTAX, "unknown operator or keyword");
    }
    t->kind = T_OP;
    *pi = i + best;
    return 0;
}

static int lex(cc *c)
{
    size_t i = 0;
    for (;;) {
        int rc = 0;
        skip_space(c, &i);
        tok t;
        memset(&t, 0, sizeof t);
        const tok *prev = c->ntok ? &c->toks[c->ntok - 1] : NULL;
        /* where an operand is expected, "-digit" starts a number */
        int operand = !prev || (prev->kind == T_OP && prev->op != OP_CLOSE);
        unsigned char ch = i < c->n ? (unsigned char)c->s[i] : 0;
        if (i >= c->n) {
            t.kind = T_END;
        } else if (c_digit(ch) ||
                   (operand && ch == '-' && i + 1 < c->n && c_digit((unsigned char)c->s[i + 1]))) {
            t.kind = T_NUM;
            rc = lex_number(c, &i, &t.num);
        } else if (ch == '"' || ch == '\'') {
            t.kind = T_STR;
            rc = lex_string(c, &i, &t.a, &t.b);
            if (!rc) t.num = vattr_str_num(c->str + t.a, t.b);
        } else if (ch == '.' && i + 1 < c->n && c_selchar((unsigned char)c->s[i + 1])) {
            t.kind = T_SEL;
            size_t j = i + 1;
            while (j < c->n && c_selchar((unsigned char)c->s[j])) j++;
            t.a = (uint32_t)(i + 1);
            t.b = (uint32_t)(j - i - 1);
            i = j;
            rc = 0;
        } else if (ch == '[') {
            t.kind = T_TUPLE;
            rc = lex_tuple(c, &i, &t.a, &t.b);
        } else if (c_alpha(ch) || c_opchar(ch)) {
            rc = lex_word(c, &i, &t);
        } else {
            rc = cc_fail(c, i, VEC_ESYNTAX, "unexpected character");
        }
        if (t.kind != T_END && rc) return rc;
        if ((rc = cc_grow(c, (void **)&c->toks, &c->captok, c->ntok + 1, sizeof t))) return rc;
        c->toks[c->ntok++] = t;
        if (t.kind == T_END) return 0;
    }
}

/* Order the tokens into postfix (c->rpn), checking that operands and
 * operators alternate; *depth: the most values pending at once.  Every
 * error here is at 0 (the whole expression), like every error of Redis's
 * compiler. */
static int order(cc *c, uint32_t *depth)
{
    uint32_t *ops = vec_mem_alloc(&c->m, (size_t)c->ntok * sizeof *ops);
    c->rpn = vec_mem_alloc(&c->m, (size_t)c->ntok * sizeof *c->rpn);
    if (!ops || !c->rpn) {
        vec_mem_free(&c->m, ops, (size_t)c->ntok * sizeof *ops);
        return -ENOMEM;
    }
    uint32_t nops = 0, d = 0, maxd = 0;
    int want_operand = 1, rc = 0;
#define EMIT_OP()                                                    \
    do {                                                             \
        uint32_t k_ = ops[--nops];                                   \
        c->rpn[c->nrpn++] = k_;                                      \
        d -= (uint32_t)op_arity(c->toks[k_].op) - 1;                 \
    } while (0)
    for (uint32_t k = 0; k < c->ntok && !rc; k++) {
        const tok *t = &c->toks[k];
        if (want_operand) {
            if (t->kind == T_OP && (t->op == OP_OPEN || op_arity(t->op) == 1)) {
                ops[nops++] = k; /* prefix operators wait for their operand */
            } else if (t->kind == T_OP || t->kind == T_END) {
                rc = cc_fail(c, 0, VEC_ESYNTAX,
                             t->kind == T_END ? "unexpected end of expression: a value is missing"
                                              : "expected a value");
            } else {
                c->rpn[c->nrpn++] = k;
                if (++d > maxd) maxd = d;
                if (d > VFILTER_STACK_MAX)
                    rc = cc_fail(c, 0, VEC_ELIMIT, "expression nested too deeply");
                want_operand = 0;
            }
            continue;
        }
        if (t->kind == T_END) {
            while (nops && !rc) {
                if (c->toks[ops[nops - 1]].op == OP_OPEN)
                    rc = cc_fail(c, 0, VEC_ESYNTAX, "unmatched '('");
                else
                    EMIT_OP();
            }
            break;
        }
        if (t->kind != T_OP || t->op == OP_OPEN || op_arity(t->op) == 1) {
            rc = cc_fail(c, 0, VEC_ESYNTAX, "expected an operator");
        } else if (t->op == OP_CLOSE) {
            while (nops && c->toks[ops[nops - 1]].op != OP_OPEN) EMIT_OP();
            if (!nops) rc = cc_fail(c, 0, VEC_ESYNTAX, "unmatched ')'");
            else nops--;
        } else {
            /* pop what binds tighter, or as tight and left-associative */
            int p = op_prec(t->op);
            while (nops && c->toks[ops[nops - 1]].op != OP_OPEN) {
                int tp = op_prec(c->toks[ops[nops - 1]].op);
                if (tp < p || (tp == p && t->op == OP_POW)) break;
                EMIT_OP();
            }
            ops[nops++] = k;
            want_operand = 1;
        }
    }
#undef EMIT_OP
    vec_mem_free(&c->m, ops, (size_t)c->ntok * sizeof *ops);
    *depth = maxd;
    return rc;
}

static size_t align8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

/* Pack the ordered program into one allocation. */
static int pack(cc *c, const vec_allocator *alloc, vfilter **out)
{
    uint32_t nconst = 0, nsel = 0;
    size_t selbytes = 0;
    for (uint32_t j = 0; j < c->nrpn; j++) {
        const tok *t = &c->toks[c->rpn[j]];
        if (t->kind == T_SEL) {
            nsel++;
            selbytes += t->b;
        } else if (t->kind != T_OP) {
            nconst++;
        }
    }
    size_t o_consts = align8(sizeof(vfilter));
    size_t o_items = o_consts + (size_t)nconst * sizeof(vattr_val);
    size_t o_ins = o_items + (size_t)c->nitems * sizeof(vattr_val);
    size_t o_sels = o_ins + (size_t)c->nrpn * sizeof(vf_ins);
    size_t o_str = o_sels + (size_t)nsel * sizeof(vf_sel);
    size_t size = o_str + c->nstr + selbytes;
    vec_mem m;
    vec_mem_init(&m, alloc);
    char *b = vec_mem_alloc(&m, size);
    if (!b) return -ENOMEM;
    vfilter *f = (vfilter *)(void *)b;
    vattr_val *consts = (vattr_val *)(void *)(b + o_consts);
    vf_ins *ins = (vf_ins *)(void *)(b + o_ins);
    vf_sel *sels = (vf_sel *)(void *)(b + o_sels);
    char *str = b + o_str;
    f->al = m.al;
    f->size = size;
    f->nins = c->nrpn;
    f->ins = ins;
    f->consts = consts;
    f->items = (vattr_val *)(void *)(b + o_items);
    f->sels = sels;
    f->str = str;
    if (c->nitems) memcpy(b + o_items, c->items, (size_t)c->nitems * sizeof(vattr_val));
    if (c->nstr) memcpy(str, c->str, c->nstr);
    size_t so = c->nstr;
    nconst = nsel = 0;
    for (uint32_t j = 0; j < c->nrpn; j++) {
        const tok *t = &c->toks[c->rpn[j]];
        vattr_val v;
        memset(&v, 0, sizeof v);
        switch (t->kind) {
        case T_OP:
            ins[j] = (vf_ins){ t->op, 0 };
            continue;
        case T_SEL:
            memcpy(str + so, c->s + t->a, t->b);
            sels[nsel] = (vf_sel){ vattr_hash(c->s + t->a, t->b), (uint32_t)so, t->b };
            so += t->b;
            ins[j] = (vf_ins){ I_SEL, nsel++ };
            continue;
        case T_NUM: vattr_val_set(&v, VATTR_NUMBER, t->num, 0, 0); break;
        case T_STR: vattr_val_set(&v, VATTR_STRING, t->num, t->a, t->b); break;
        case T_NULL: vattr_val_set(&v, VATTR_NULL, 0, 0, 0); break;
        default: vattr_val_set(&v, VATTR_ARRAY, 0, t->a, t->b); break;
        }
        consts[nconst] = v;
        ins[j] = (vf_ins){ I_PUSH, nconst++ };
    }
    *out = f;
    return 0;
}

int vfilter_compile(const vec_allocator *alloc, const char *expr, size_t len, vfilter **out,
                    vfilter_error *err)
{
    vfilter_error dummy;
    if (!err) err = &dummy;
    err->offset = 0;
    err->what = NULL;
    if (!out || (!expr && len)) return -EINVAL;
    *out = NULL;
    if (len > VFILTER_LEN_MAX) {
        err->what = "expression longer than 1 MB";
        return VEC_ELIMIT;
    }
    cc c;
    memset(&c, 0, sizeof c);
    vec_mem_init(&c.m, alloc);
    c.s = expr;
    c.n = len;
    c.err = err;
    c.str = vec_mem_alloc(&c.m, len + 1);
    uint32_t depth = 0;
    int rc = c.str ? lex(&c) : -ENOMEM;
    if (!rc) rc = order(&c, &depth);
    if (!rc) rc = pack(&c, alloc, out);
    vec_mem_free(&c.m, c.str, len + 1);
    vec_mem_free(&c.m, c.toks, (size_t)c.captok * sizeof *c.toks);
    vec_mem_free(&c.m, c.items, (size_t)c.capitems * sizeof *c.items);
    vec_mem_free(&c.m, c.rpn, (size_t)c.ntok * sizeof *c.rpn);
    return rc;
}

void vfilter_free(vfilter *f)
{
    if (!f) return;
    vec_allocator al = f->al;
    al.free(al.ud, f, f->size);
}

size_t vfilter_format_error(char *buf, size_t cap, const char *expr, size_t len,
                            const vfilter_error *err)
{
    static const char pre[] = "syntax error in FILTER expression near: ";
    size_t off = err && err->offset < len ? err->offset : 0;
    size_t total = sizeof pre - 1 + (len - off), w = 0;
    for (size_t j = 0; j < total && w + 1 < cap; j++) {
        char ch = j < sizeof pre - 1 ? pre[j] : expr[off + j - (sizeof pre - 1)];
        buf[w++] = ch == '\r' || ch == '\n' ? ' ' : ch;
    }
    if (cap) buf[w] = '\0';
    return total;
}

/* ---- evaluating --------------------------------------------------------- */

typedef struct vf_val {
    double num;
    const char *s;          /* STRING: bytes; ARRAY: its items' string area */
    const vattr_val *items; /* ARRAY */
    uint32_t len;
    uint32_t type;
} vf_val;

static inline void vf_load(vf_val *d, const vattr_val *v, const char *str, const vattr_val *items)
{
    d->num = v->num;
    d->type = vattr_val_type(v);
    d->len = vattr_val_len(v);
    d->s = d->type == VATTR_STRING ? str + v->off : str;
    d->items = d->type == VATTR_ARRAY ? items + v->off : NULL;
}

static inline int vf_truth(const vf_val *v)
{
    switch (v->type) {
    case VATTR_NUMBER: return v->num != 0;
    case VATTR_STRING: return v->len != 0;
    case VATTR_NULL: return 0;
    default: return 1; /* tuples */
    }
}

static inline int vf_eq(const vf_val *a, const vf_val *b)
{
    if (a->type == VATTR_STRING && b->type == VATTR_STRING)
        return a->len == b->len && memcmp(a->s, b->s, a->len) == 0;
    if (a->type == VATTR_NULL || b->type == VATTR_NULL) return a->type == b->type;
    return a->num == b->num; /* numbers, and everything else as a number */
}

static int vf_contains(const char *h, size_t hn, const char *nd, size_t nn)
{
    if (nn == 0) return 1;
    if (nn > hn) return 0;
    const char *last = h + (hn - nn);
    for (const char *p = h; p <= last; p++) {
        p = memchr(p, (unsigned char)nd[0], (size_t)(last - p) + 1);
        if (!p) return 0;
        if (memcmp(p, nd, nn) == 0) return 1;
    }
    return 0;
}

static int vf_in(const vf_val *a, const vf_val *b)
{
    if (b->type == VATTR_ARRAY) {
        for (uint32_t j = 0; j < b->len; j++) {
            vf_val e;
            vf_load(&e, &b->items[j], b->s, NULL);
            if (vf_eq(a, &e)) return 1;
        }
        return 0;
    }
    if (a->type == VATTR_STRING && b->type == VATTR_STRING)
        return vf_contains(b->s, b->len, a->s, a->len);
    return 0;
}

int vfilter_match(const vfilter *f, const vattr *a)
{
    if (!a) return 0;
    vf_val st[VFILTER_STACK_MAX];
    uint32_t sp = 0;
    const char *astr = vattr_strs(a);
    const vattr_val *aitems = vattr_items(a);
    for (uint32_t k = 0; k < f->nins; k++) {
        const vf_ins in = f->ins[k];
        if (in.op == I_PUSH) {
            vf_load(&st[sp++], &f->consts[in.arg], f->str, f->items);
            continue;
        }
        if (in.op == I_SEL) {
            const vf_sel *s = &f->sels[in.arg];
            const vattr_val *v = vattr_lookup(a, s->hash, f->str + s->off, s->len);
            if (!v || vattr_val_type(v) == VATTR_OTHER) return 0; /* the missing-field rule */
            vf_load(&st[sp++], v, astr, aitems);
            continue;
        }
        if (in.op == OP_NOT) {
            vf_val *x = &st[sp - 1];
            x->num = !vf_truth(x);
            x->type = VATTR_NUMBER;
            continue;
        }
        vf_val *x = &st[sp - 2];
        const vf_val *y = &st[sp - 1];
        double r;
        switch (in.op) {
        case OP_POW: r = pow(x->num, y->num); break;
        case OP_MUL: r = x->num * y->num; break;
        case OP_DIV: r = x->num / y->num; break;
        case OP_MOD: r = fmod(x->num, y->num); break;
        case OP_ADD: r = x->num + y->num; break;
        case OP_SUB: r = x->num - y->num; break;
        case OP_GT: r = x->num > y->num; break;
        case OP_GE: r = x->num >= y->num; break;
        case OP_LT: r = x->num < y->num; break;
        case OP_LE: r = x->num <= y->num; break;
        case OP_EQ: r = vf_eq(x, y); break;
        case OP_NE: r = !vf_eq(x, y); break;
        case OP_IN: r = vf_in(x, y); break;
        case OP_AND: r = vf_truth(x) && vf_truth(y); break;
        default: r = vf_truth(x) || vf_truth(y); break; /* OP_OR */
        }
        sp--;
        x->num = r;
        x->type = VATTR_NUMBER;
    }
    return vf_truth(&st[0]);
}
