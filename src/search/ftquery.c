/* ftquery.c -- the FT.SEARCH query compiler (contract in ftquery.h, tree
 * in ftq_impl.h).
 *
 * ==== What RediSearch does (DIALECT 2), as engram reads it ===============
 * Learned from RediSearch's src/query_parser/v2/lexer.rl and parser.y (a
 * Ragel scanner feeding a Lemon LALR(1) parser), src/query.c and
 * src/ext/default.c (the stemming expander).  Our own words and code: a
 * hand-written scanner and recursive-descent parser that accept the same
 * strings and stop at the same token.
 *
 * Tokens (longest match; on a tie the one listed first):
 *   SIZE digits; NUMBER -?digits(.digits)?([eE]-?digits)?; MODIFIER @term;
 *   ATTRIBUTE $term; ARROW =>; AS "as" (any case); inf/+inf/-inf (a
 *   NUMBER); " | ( ) { } : ; - ~ * % [ ]; ISEMPTY; TERM: a run of bytes
 *   that are not punctuation, control or space (but '_' is in, and a
 *   backslash takes one punctuation or space byte in); PREFIX term*,
 *   SUFFIX *term, CONTAINS *term* (term, number or $attr inside); VERBATIM
 *   'text'; WILDCARD w'text'.  Blanks, control bytes and any other
 *   punctuation (. , ! # & ...) separate tokens and are otherwise ignored,
 *   so "hello, world." is hello world.  "123" is SIZE, "-5" and "1.5" are
 *   NUMBERs, "123abc" a TERM, "inf" a NUMBER.
 * Grammar, loosest first:
 *   query   := <empty> | star [=>[vector]] | unit [=>[vector]] | expr
 *   star    := * | ( star )            -- `*` only as the whole query
 *   expr    := and ( | and )*          -- OR below AND
 *   and     := unit unit ...           -- juxtaposition
 *   unit    := - unit | ~ unit | ( expr ) | text-atom | field-form,
 *              each optionally followed by => { $attr: value; ... }
 *   text-atom  := term | number | $param | "phrase ..." | prefix* | *suffix
 *                 | *contains* | %fuzzy% | %%fuzzy%% | %%%fuzzy%%%
 *   field-form := @f:text-unit | @f|g|h:text-unit | @f:{tags} | @f:[range]
 *   inside @f:( ... ) only text: no field forms.
 *   A stopword term is dropped (an AND or OR without it; a query of
 *   nothing but stopwords matches nothing); inside quotes too.
 * Error texts: "Syntax error at offset N near X" names the token the
 * parser could not take.  X is that token's text as RediSearch's scanner
 * left it: a punctuation token carries no text of its own, so it shows
 * the text of the token before it (in "(@g:\"af-forge\")" the error is at
 * the '-', offset 7, "near af"); an ARROW shows its '>' and the byte
 * after; the end of the query is the last token again.  Field names are
 * looked up after parsing: RediSearch 2.6 lets an unknown one match
 * nothing; Redis 8 (ftq_opts.strict_fields) replies "Unknown field at
 * offset N near NAME" (N: the '@').  KNN: "Property `A` already exists in
 * schema" for an AS naming a field, and VecSim's "Error parsing vector
 * similarity parameters: ..." texts for its attributes.  Parameters: "No such parameter `NAME`", "Invalid numeric value
 * (V) for parameter `NAME`".
 * Expansion: a term (not quoted, not VERBATIM, not only in NOSTEM fields)
 * becomes the union of itself, "+stem" (always) and the stem (when it
 * differs): "running" finds running, runs (+run) and run.
 *
 * ==== Where engram differs ================================================
 *   - Quoted phrases drop every stopword; RediSearch's termlist rule keeps
 *     the first two words even when they are stopwords (which then match
 *     nothing).  Tag lists keep all their words (tags are not stopworded).
 *   - A field of the wrong kind (@text:{x}, @tag:[1 2]) matches nothing,
 *     as in RediSearch 2.x; newer versions may reply an error.
 *   - Not implemented, refused with an error naming them: GEO and GEOSHAPE
 *     filters, ISEMPTY(), numeric comparison operators (@n>5), DIALECT 1's
 *     grammar.
 *   - VECTOR_RANGE ("@v:[VECTOR_RANGE r $blob]=>{$YIELD_DISTANCE_AS: d}")
 *     is a leaf whose documents the caller computes (ftq_set_range_docs);
 *     on a field that is not a VECTOR one it fails with "Expected a VECTOR
 *     field at offset N near NAME" (engram's wording).
 *   - Attribute texts: $weight, $slop, $inorder are applied, $phonetic
 *     ignored; others: "Invalid attribute NAME" (engram's wording).
 *
 * Threads: compiling reads the schema only; anywhere. */
#include "ftq_impl.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engram/stem.h"

/* ---- tokens ------------------------------------------------------------- */

enum {
    T_EOF, T_SIZE, T_NUMBER, T_MODIFIER, T_ATTRIBUTE, T_ARROW, T_AS, T_QUOTE, T_OR, T_LP,
    T_RP, T_LB, T_RB, T_COLON, T_SEMICOLON, T_MINUS, T_TILDE, T_STAR, T_PERCENT, T_LSQB,
    T_RSQB, T_ISEMPTY, T_TERM, T_PREFIX, T_SUFFIX, T_CONTAINS, T_VERBATIM, T_WILDCARD
};

typedef struct tok {
    int type;
    size_t pos;
    const char *s; /* the text errors quote (see above) */
    size_t len;
    double num;
    int is_attr;   /* PREFIX/SUFFIX/CONTAINS: the inside is a $param */
} tok;

static int is_punct(unsigned char c)
{
    return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
           (c >= 123 && c <= 126);
}

static int is_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static int is_cntrl(unsigned char c)
{
    return c < 32 || c == 127;
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* Length of the term at p (0: none). */
static size_t lex_term(const char *p, const char *e)
{
    const char *q = p;
    while (q < e) {
        unsigned char c = (unsigned char)*q;
        if (c == '\\') {
            if (q + 1 < e && (is_punct((unsigned char)q[1]) || is_space((unsigned char)q[1]))) {
                q += 2;
                continue;
            }
            break;
        }
        if (c == '_' || !(is_punct(c) || is_cntrl(c) || is_space(c))) {
            q++;
            continue;
        }
        break;
    }
    return (size_t)(q - p);
}

static size_t lex_digits(const char *p, const char *e)
{
    const char *q = p;
    while (q < e && is_digit((unsigned char)*q)) q++;
    return (size_t)(q - p);
}

static size_t lex_number(const char *p, const char *e)
{
    const char *q = p;
    if (q < e && *q == '-') q++;
    size_t d = lex_digits(q, e);
    if (!d) return 0;
    q += d;
    if (q + 1 < e && *q == '.' && is_digit((unsigned char)q[1])) q += 1 + lex_digits(q + 1, e);
    if (q < e && (*q == 'e' || *q == 'E')) {
        const char *r = q + 1;
        if (r < e && *r == '-') r++;
        size_t x = lex_digits(r, e);
        if (x) q = r + x;
    }
    return (size_t)(q - p);
}

static size_t lex_attr(const char *p, const char *e)
{
    if (p < e && *p == '$') {
        size_t t = lex_term(p + 1, e);
        if (t) return t + 1;
    }
    return 0;
}

/* term, number or $attr: the longest. */
static size_t lex_affix_body(const char *p, const char *e, int *is_attr)
{
    size_t a = lex_term(p, e), b = lex_number(p, e), c = lex_attr(p, e);
    size_t m = a > b ? a : b;
    *is_attr = c > m;
    return c > m ? c : m;
}

static size_t lex_verbatim(const char *p, const char *e)
{
    if (p >= e || *p != '\'') return 0;
    const char *q = p + 1;
    size_t inside = 0;
    while (q < e && *q != '\'') {
        if (*q == '\\') {
            if (q + 1 >= e) return 0;
            q += 2;
        } else {
            q++;
        }
        inside++;
    }
    if (q >= e || !inside) return 0;
    return (size_t)(q + 1 - p);
}

static int ci_word(const char *p, const char *e, const char *w)
{
    size_t n = strlen(w);
    return (size_t)(e - p) >= n && strncasecmp(p, w, n) == 0;
}

typedef struct lexer {
    tok *t;
    size_t n, cap;
} lexer;

/* Scan the whole query into lx.  0 or -ENOMEM. */
static int lex_all(const char *raw, size_t len, lexer *lx)
{
    const char *p = raw, *e = raw + len;
    const char *last_s = NULL;
    size_t last_len = 0;
    double last_num = 0;
    while (p < e) {
        unsigned char c = (unsigned char)*p;
        size_t best = 0;
        int type = -1, attr = 0;
#define CAND(L, T)                      \
    do {                                \
        size_t l_ = (L);                \
        if (l_ > best) {                \
            best = l_;                  \
            type = (T);                 \
        }                               \
    } while (0)
        CAND(lex_digits(p, e), T_SIZE);
        CAND(lex_number(p, e), T_NUMBER);
        if (c == '@') {
            size_t t = lex_term(p + 1, e);
            if (t) CAND(t + 1, T_MODIFIER);
        }
        CAND(lex_attr(p, e), T_ATTRIBUTE);
        if (c == '=' && p + 1 < e && p[1] == '>') CAND(2, T_ARROW);
        if (ci_word(p, e, "as")) CAND(2, T_AS);
        if ((size_t)(e - p) >= 3 && memcmp(p, "inf", 3) == 0) CAND(3, T_NUMBER);
        if ((c == '+' || c == '-') && (size_t)(e - p) >= 4 && memcmp(p + 1, "inf", 3) == 0)
            CAND(4, T_NUMBER);
        static const char singles[] = "\"|(){}:;-~*%[]";
        static const int stype[] = { T_QUOTE, T_OR, T_LP, T_RP, T_LB, T_RB, T_COLON,
                                     T_SEMICOLON, T_MINUS, T_TILDE, T_STAR, T_PERCENT,
                                     T_LSQB, T_RSQB };
        const char *sp = c ? strchr(singles, c) : NULL;
        if (sp) CAND(1, stype[sp - singles]);
        if (ci_word(p, e, "isempty")) CAND(7, T_ISEMPTY);
        CAND(lex_term(p, e), T_TERM);
        int ia = 0;
        size_t body = lex_affix_body(p, e, &ia);
        if (body && p + body < e && p[body] == '*' && body + 1 > best) {
            best = body + 1;
            type = T_PREFIX;
            attr = ia;
        }
        if (c == '*') {
            size_t b2 = lex_affix_body(p + 1, e, &ia);
            if (b2 && 1 + b2 > best) {
                best = 1 + b2;
                type = T_SUFFIX;
                attr = ia;
            }
            if (b2 && p + 1 + b2 < e && p[1 + b2] == '*' && 2 + b2 > best) {
                best = 2 + b2;
                type = T_CONTAINS;
                attr = ia;
            }
        }
        CAND(lex_verbatim(p, e), T_VERBATIM);
        if (c == 'w') {
            size_t v = lex_verbatim(p + 1, e);
            if (v) CAND(v + 1, T_WILDCARD);
        }
#undef CAND
        /* blanks, control bytes and other punctuation are skipped: so is a
         * lone '_' (the skip rules are listed before TERM's) */
        if (!best || (best == 1 && type == T_TERM && is_punct(c))) {
            p++;
            continue;
        }
        if (lx->n == lx->cap) {
            size_t nc = lx->cap ? lx->cap * 2 : 16;
            tok *nt = realloc(lx->t, nc * sizeof *nt);
            if (!nt) return -ENOMEM;
            lx->t = nt;
            lx->cap = nc;
        }
        tok *t = &lx->t[lx->n++];
        *t = (tok){ .type = type, .pos = (size_t)(p - raw), .s = last_s, .len = last_len,
                    .num = last_num, .is_attr = attr };
        switch (type) {
        case T_SIZE:
        case T_NUMBER:
            t->s = p;
            t->len = best;
            if (p[best - 1] == 'f') {
                t->num = *p == '-' ? -INFINITY : INFINITY;
            } else {
                char nb[64];
                size_t k = best < sizeof nb ? best : sizeof nb - 1;
                memcpy(nb, p, k);
                nb[k] = 0;
                t->num = strtod(nb, NULL);
            }
            break;
        case T_MODIFIER:
        case T_ATTRIBUTE:
            t->s = p + 1;
            t->len = best - 1;
            break;
        case T_ARROW:
            t->s = p + 1; /* RediSearch's scanner: one past the '=', two bytes */
            t->len = p + 2 < e ? 2 : 1;
            break;
        case T_AS:
        case T_ISEMPTY:
        case T_TERM:
            t->s = p;
            t->len = best;
            break;
        case T_PREFIX:
            t->s = p + attr;
            t->len = best - 1 - (size_t)attr;
            break;
        case T_SUFFIX:
            t->s = p + 1 + attr;
            t->len = best - 1 - (size_t)attr;
            break;
        case T_CONTAINS:
            t->s = p + 1 + attr;
            t->len = best - 2 - (size_t)attr;
            break;
        case T_VERBATIM:
            t->s = p + 1;
            t->len = best - 2;
            break;
        case T_WILDCARD:
            t->pos += 2;
            t->s = p + 2;
            t->len = best - 3;
            break;
        default:
            break; /* punctuation: the previous token's text */
        }
        last_s = t->s;
        last_len = t->len;
        last_num = t->num;
        p += best;
    }
    return 0;
}

/* ---- the parser ------------------------------------------------------------ */

/* Nesting (parentheses, - and ~ chains) past this is refused with the text
 * of RediSearch's parser-stack overflow (its stack holds 256 entries; the
 * depth at which it overflows differs a little). */
#define FTQ_DEPTH_MAX 128

typedef struct parser {
    const ftidx *ix;
    const ftq_opts *o;
    const char *raw;
    tok *t;
    size_t n, i;
    ftq_error *err;
    int failed;
    int vec_ok;       /* the unit being parsed may be followed by =>[ */
    int depth;        /* units being parsed inside each other */
    ftq *q;
} parser;

static void fail(parser *P, int code, size_t offset, const char *fmt, ...)
{
    if (P->failed) return;
    P->failed = code;
    if (P->err) {
        P->err->code = code;
        P->err->offset = offset;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(P->err->msg, sizeof P->err->msg, fmt, ap);
        va_end(ap);
    }
}

static const tok *cur(const parser *P)
{
    static const tok eof = { .type = T_EOF };
    return P->i < P->n ? &P->t[P->i] : &eof;
}

static int peek(const parser *P, size_t ahead)
{
    return P->i + ahead < P->n ? P->t[P->i + ahead].type : T_EOF;
}

/* RediSearch's %syntax_error: the token it stopped at (at the end: the
 * last token again). */
static void syntax_error(parser *P)
{
    const tok *t = P->i < P->n ? &P->t[P->i] : (P->n ? &P->t[P->n - 1] : NULL);
    if (!t) {
        fail(P, FTQ_ESYNTAX, 0, "Syntax error at offset 0 near ");
        return;
    }
    fail(P, FTQ_ESYNTAX, t->pos, "Syntax error at offset %zu near %.*s", t->pos, (int)t->len,
         t->s ? t->s : "");
}

static int expect(parser *P, int type)
{
    if (P->failed) return 0;
    if (cur(P)->type != type) {
        syntax_error(P);
        return 0;
    }
    P->i++;
    return 1;
}

static void nomem(parser *P)
{
    fail(P, -ENOMEM, 0, "out of memory");
}

static qnode *node_new(parser *P, int type)
{
    qnode *n = calloc(1, sizeof *n);
    if (!n) {
        nomem(P);
        return NULL;
    }
    n->type = type;
    n->mask = QN_MASK_ALL;
    n->weight = 1.0;
    n->slop = -1;
    n->field = -1;
    return n;
}

void qnode_free(qnode *n)
{
    if (!n) return;
    for (size_t i = 0; i < n->nkid; i++) qnode_free(n->kid[i]);
    free(n->kid);
    free(n->str);
    free(n);
}

static int add_kid(parser *P, qnode *parent, qnode *kid)
{
    if (!kid) return 0;
    qnode **k = realloc(parent->kid, (parent->nkid + 1) * sizeof *k);
    if (!k) {
        qnode_free(kid);
        nomem(P);
        return -1;
    }
    parent->kid = k;
    parent->kid[parent->nkid++] = kid;
    return 0;
}

static char *dup_n(parser *P, const char *s, size_t len)
{
    char *c = malloc(len + 1);
    if (!c) {
        nomem(P);
        return NULL;
    }
    memcpy(c, s, len);
    c[len] = 0;
    return c;
}

/* ---- parameters --------------------------------------------------------- */

static const ftq_param *param_find(parser *P, const char *name, size_t len, size_t pos)
{
    for (size_t i = 0; i < P->o->nparams; i++) {
        const ftq_param *p = &P->o->params[i];
        if (p->name_len == len && memcmp(p->name, name, len) == 0) return p;
    }
    fail(P, FTQ_EPARAM, pos, "No such parameter `%.*s`", (int)len, name);
    return NULL;
}

/* The text a token stands for: its own, or its $param's value.  -1 after
 * failing (no such parameter). */
static int tok_value(parser *P, const tok *t, const char **s, size_t *n)
{
    *s = t->s;
    *n = t->len;
    if (t->type != T_ATTRIBUTE) return 0;
    const ftq_param *p = param_find(P, t->s, t->len, t->pos);
    if (!p) return -1;
    *s = p->value;
    *n = p->value_len;
    return 0;
}

/* A number as RediSearch reads parameter values: strtod over it all. */
static int parse_double(const char *s, size_t len, double *out)
{
    char buf[64];
    if (!len || len >= sizeof buf) return -1;
    memcpy(buf, s, len);
    buf[len] = 0;
    char *end;
    double v = strtod(buf, &end);
    if (end != buf + len || isnan(v) || is_space((unsigned char)buf[0])) return -1;
    *out = v;
    return 0;
}

/* ---- leaves --------------------------------------------------------------- */

/* The text of a param_term token, resolved and normalised (unescaped,
 * lowered); *is_param tells a $param apart. */
static char *term_text(parser *P, const tok *t, size_t *len, int *is_param)
{
    const char *s;
    size_t n;
    *is_param = t->type == T_ATTRIBUTE;
    if (tok_value(P, t, &s, &n)) return NULL;
    char *c = dup_n(P, s, n);
    if (!c) return NULL;
    *len = fttok_normalize_query(c, n);
    c[*len] = 0;
    return c;
}

/* Is every TEXT field in mask NOSTEM? */
static int mask_nostem(const ftidx *ix, uint64_t mask)
{
    int any = 0;
    for (size_t i = 0, bit = 0; i < ftidx_nfields(ix); i++) {
        const ftidx_field_def *f = ftidx_field(ix, i);
        if (f->kind != FTIDX_TEXT) continue;
        if (mask & ((uint64_t)1 << bit)) {
            if (!f->nostem) return 0;
            any = 1;
        }
        bit++;
    }
    return any;
}

/* A leaf of type owning s (freed on failure; NULL s: a failure already). */
static qnode *leaf_with(parser *P, int type, char *s, size_t len)
{
    if (!s) return NULL;
    qnode *n = node_new(P, type);
    if (!n) {
        free(s);
        return NULL;
    }
    n->str = s;
    n->len = len;
    return n;
}

static qnode *term_leaf(parser *P, const char *s, size_t len)
{
    return leaf_with(P, QN_TERM, dup_n(P, s, len), len);
}

/* A word of the query: the term alone, or the union of it and its stems
 * (expanded later, once the field mask is known: see expand()). */
static qnode *word_node(parser *P, const tok *t, int check_stop)
{
    size_t len;
    int is_param;
    char *s = term_text(P, t, &len, &is_param);
    if (!s) return NULL;
    if (check_stop && !is_param && !P->o->nostopwords &&
        fttok_stopwords_has(ftidx_stopwords(P->ix), s, len)) {
        free(s);
        return NULL;
    }
    qnode *n = leaf_with(P, QN_TERM, s, len);
    if (n) n->exact = !P->o->verbatim; /* here: "may be expanded" */
    return n;
}

/* Expand the words of a finished tree (masks are final now). */
static qnode *expand(parser *P, qnode *n, int verbatim)
{
    if (!n || P->failed) return n;
    if (n->type == QN_PHRASE && n->exact) verbatim = 1;
    for (size_t i = 0; i < n->nkid; i++) n->kid[i] = expand(P, n->kid[i], verbatim);
    if (n->type != QN_TERM || !n->exact) return n;
    n->exact = 0;
    if (verbatim || mask_nostem(P->ix, n->mask)) return n;
    char *st = malloc(n->len + 2);
    if (!st) {
        nomem(P);
        return n;
    }
    size_t sl = stem_english(n->str, n->len, st + 1);
    st[0] = FTTOK_STEM_PREFIX;
    qnode *u = node_new(P, QN_UNION);
    qnode *plus = term_leaf(P, st, sl + 1);
    qnode *bare = (sl != n->len || memcmp(st + 1, n->str, sl) != 0) ? term_leaf(P, st + 1, sl) : NULL;
    free(st);
    if (!u || !plus) {
        qnode_free(u);
        qnode_free(plus);
        qnode_free(bare);
        return n;
    }
    u->mask = n->mask;
    u->weight = n->weight;
    n->weight = 1.0;
    plus->mask = n->mask;
    if (bare) bare->mask = n->mask;
    add_kid(P, u, n);
    add_kid(P, u, plus);
    add_kid(P, u, bare);
    return u;
}

static void set_mask(qnode *n, uint64_t mask)
{
    if (!n) return;
    n->mask &= mask;
    for (size_t i = 0; i < n->nkid; i++) set_mask(n->kid[i], mask);
}

/* ---- combining ------------------------------------------------------------ */

/* a AND b, either may be NULL (a dropped stopword). */
static qnode *and2(parser *P, qnode *a, qnode *b)
{
    if (!a) return b;
    if (!b) return a;
    qnode *n = a;
    if (!(a->type == QN_PHRASE && !a->exact && a->mask == QN_MASK_ALL && a->weight == 1.0 &&
          a->slop < 0 && !a->inorder)) {
        n = node_new(P, QN_PHRASE);
        if (!n) {
            qnode_free(a);
            qnode_free(b);
            return NULL;
        }
        add_kid(P, n, a);
    }
    add_kid(P, n, b);
    return n;
}

static qnode *or2(parser *P, qnode *a, qnode *b)
{
    if (!a) return b;
    if (!b) return a;
    qnode *n = a;
    if (!(a->type == QN_UNION && a->mask == QN_MASK_ALL && a->weight == 1.0 && a->field == -2)) {
        n = node_new(P, QN_UNION);
        if (!n) {
            qnode_free(a);
            qnode_free(b);
            return NULL;
        }
        n->field = -2; /* marks a union written with | (flattened) */
        add_kid(P, n, a);
    }
    add_kid(P, n, b);
    return n;
}

static qnode *wrap1(parser *P, int type, qnode *kid)
{
    if (!kid) return NULL;
    qnode *n = node_new(P, type);
    if (!n) {
        qnode_free(kid);
        return NULL;
    }
    add_kid(P, n, kid);
    return n;
}

/* ---- units -------------------------------------------------------------------- */

static qnode *parse_expr(parser *P, int text_only);
static qnode *parse_unit(parser *P, int text_only, int postfix);

static int is_param_term(int type)
{
    return type == T_TERM || type == T_NUMBER || type == T_SIZE || type == T_ATTRIBUTE ||
           type == T_AS || type == T_ISEMPTY;
}

static int unit_start(int type, int text_only)
{
    switch (type) {
    case T_MINUS: case T_TILDE: case T_LP: case T_QUOTE: case T_PREFIX: case T_SUFFIX:
    case T_CONTAINS: case T_WILDCARD: case T_PERCENT:
        return 1;
    case T_MODIFIER:
        return !text_only;
    default:
        return is_param_term(type);
    }
}

/* "..." : one word (verbatim) or an exact phrase. */
static qnode *parse_quoted(parser *P)
{
    P->i++; /* the opening quote */
    if (!is_param_term(cur(P)->type)) {
        syntax_error(P);
        return NULL;
    }
    qnode *ph = node_new(P, QN_PHRASE);
    if (!ph) return NULL;
    ph->exact = 1;
    size_t words = 0;
    while (is_param_term(cur(P)->type) && !P->failed) {
        const tok *t = cur(P);
        qnode *w;
        if (t->type == T_ATTRIBUTE && peek(P, 1) == T_QUOTE && words == 0) {
            /* "$name" alone: the literal word, never a parameter */
            char *s = dup_n(P, t->s - 1, t->len + 1);
            if (!s) break;
            size_t l = fttok_normalize_query(s, t->len + 1);
            w = term_leaf(P, s, l);
            free(s);
        } else {
            w = word_node(P, t, 1);
        }
        if (w) w->exact = 0; /* inside quotes: never expanded */
        add_kid(P, ph, w);
        words++;
        P->i++;
    }
    if (!expect(P, T_QUOTE) || P->failed) {
        qnode_free(ph);
        return NULL;
    }
    if (ph->nkid == 0) {
        qnode_free(ph);
        return NULL;
    }
    if (ph->nkid == 1) {
        qnode *only = ph->kid[0];
        ph->nkid = 0;
        qnode_free(ph);
        return only;
    }
    return ph;
}

static qnode *affix_node(parser *P, const tok *t, int type)
{
    const char *s = t->s;
    size_t len = t->len;
    tok pt = *t;
    pt.type = t->is_attr ? T_ATTRIBUTE : T_TERM;
    if (tok_value(P, &pt, &s, &len)) return NULL;
    char *c = dup_n(P, s, len);
    if (!c) return NULL;
    size_t n = fttok_normalize_query(c, len);
    c[n] = 0;
    return leaf_with(P, type, c, n);
}

/* %word% %%word%% %%%word%%% */
static qnode *parse_fuzzy(parser *P)
{
    int d = 0;
    while (cur(P)->type == T_PERCENT && d < 3) {
        P->i++;
        d++;
    }
    if (!is_param_term(cur(P)->type)) {
        syntax_error(P);
        return NULL;
    }
    const tok *t = cur(P);
    size_t len;
    int is_param;
    char *s = term_text(P, t, &len, &is_param);
    if (!s) return NULL;
    P->i++;
    for (int k = 0; k < d; k++)
        if (!expect(P, T_PERCENT)) {
            free(s);
            return NULL;
        }
    qnode *n = leaf_with(P, QN_FUZZY, s, len);
    if (n) n->dist = d;
    return n;
}

/* A text atom (no prefix operators, no attributes). */
static qnode *parse_text_atom(parser *P)
{
    const tok *t = cur(P);
    switch (t->type) {
    case T_QUOTE:
        return parse_quoted(P);
    case T_PREFIX:
    case T_SUFFIX:
    case T_CONTAINS: {
        P->i++;
        return affix_node(P, t, t->type == T_PREFIX ? QN_PREFIX : t->type == T_SUFFIX ? QN_SUFFIX : QN_CONTAINS);
    }
    case T_WILDCARD:
        P->i++;
        fail(P, FTQ_ESYNTAX, t->pos, "Wildcard queries (w'...') are not supported");
        return NULL;
    case T_PERCENT:
        return parse_fuzzy(P);
    default:
        if (is_param_term(t->type)) {
            P->i++;
            return word_node(P, t, 1);
        }
        syntax_error(P);
        return NULL;
    }
}

static int parse_bool(const char *s, size_t n, int *out)
{
    if (n == 4 && strncasecmp(s, "true", 4) == 0) *out = 1;
    else if (n == 5 && strncasecmp(s, "false", 5) == 0) *out = 0;
    else return -1;
    return 0;
}

static int set_range_alias(parser *P, size_t i, const char *s, size_t n);

/* => { $attr: value; ... } after a unit ($YIELD_DISTANCE_AS and $EPSILON
 * after a VECTOR_RANGE only). */
static void parse_attributes(parser *P, qnode *n)
{
    P->i += 2; /* => { */
    while (!P->failed && cur(P)->type == T_ATTRIBUTE) {
        const tok *name = cur(P);
        P->i++;
        if (!expect(P, T_COLON)) return;
        const tok *v = cur(P);
        if (!is_param_term(v->type)) {
            syntax_error(P);
            return;
        }
        P->i++;
        const char *val;
        size_t vlen;
        if (tok_value(P, v, &val, &vlen)) return;
        double d;
        int b;
        if (name->len == 6 && strncasecmp(name->s, "weight", 6) == 0) {
            if (parse_double(val, vlen, &d) || d < 0) goto bad;
            if (n) n->weight = d;
        } else if (name->len == 4 && strncasecmp(name->s, "slop", 4) == 0) {
            if (parse_double(val, vlen, &d) || d < 0 || d != floor(d)) goto bad;
            if (n) n->slop = (int)d;
        } else if (name->len == 7 && strncasecmp(name->s, "inorder", 7) == 0) {
            if (parse_bool(val, vlen, &b)) goto bad;
            if (n) n->inorder = b;
        } else if (name->len == 8 && strncasecmp(name->s, "phonetic", 8) == 0) {
            if (parse_bool(val, vlen, &b)) goto bad;
        } else if (n && n->type == QN_VRANGE && name->len == 17 &&
                   strncasecmp(name->s, "yield_distance_as", 17) == 0) {
            if (set_range_alias(P, (size_t)n->range, val, vlen)) return;
        } else if (n && n->type == QN_VRANGE && name->len == 7 &&
                   strncasecmp(name->s, "epsilon", 7) == 0) {
            if (parse_double(val, vlen, &d) || d <= 0) goto bad;
            P->q->ranges[n->range].epsilon = d;
            P->q->ranges[n->range].has_epsilon = 1;
        } else {
            fail(P, FTQ_ESYNTAX, name->pos, "Invalid attribute %.*s", (int)name->len, name->s);
            return;
        }
        if (cur(P)->type == T_SEMICOLON) P->i++;
        else break;
        continue;
bad:
        fail(P, FTQ_ESYNTAX, v->pos, "Invalid value (%.*s) for `%.*s`", (int)vlen, val,
             (int)name->len, name->s);
        return;
    }
    expect(P, T_RB);
}

/* A field name token: its schema number, or -1 after failing. */
static int field_of(parser *P, const tok *t, size_t at_pos)
{
    char buf[256];
    size_t n = t->len < sizeof buf ? t->len : sizeof buf - 1;
    memcpy(buf, t->s, n);
    /* the name as written, unescaped (RediSearch's unescapen) */
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (buf[i] == '\\' && i + 1 < n && (is_punct((unsigned char)buf[i + 1]) || is_space((unsigned char)buf[i + 1])))
            continue;
        buf[o++] = buf[i];
    }
    int f = ftidx_find(P->ix, buf, o);
    if (f < 0 && P->o->strict_fields)
        fail(P, FTQ_EFIELD, at_pos, "Unknown field at offset %zu near %.*s", at_pos, (int)o, buf);
    return f;
}

static uint64_t text_bit(const ftidx *ix, int field)
{
    const ftidx_field_def *def = ftidx_field(ix, (size_t)field);
    if (def->kind != FTIDX_TEXT) return 0;
    int bit = 0;
    for (int i = 0; i < field; i++)
        if (ftidx_field(ix, (size_t)i)->kind == FTIDX_TEXT) bit++;
    return (uint64_t)1 << bit;
}

/* A tag value as its field stores it. */
static void tag_normalize(const ftidx *ix, int field, char *s, size_t *len)
{
    if (field >= 0 && ftidx_field(ix, (size_t)field)->casesensitive) return;
    for (size_t i = 0; i < *len; i++)
        if (s[i] >= 'A' && s[i] <= 'Z') s[i] = (char)(s[i] - 'A' + 'a');
}

/* { a | b c | pre* | $p } */
static qnode *parse_tags(parser *P, int field)
{
    P->i++; /* { */
    qnode *tag = node_new(P, QN_TAG);
    if (!tag) return NULL;
    tag->field = field;
    for (;;) {
        const tok *t = cur(P);
        qnode *leaf = NULL;
        if (t->type == T_PREFIX || t->type == T_SUFFIX || t->type == T_CONTAINS) {
            P->i++;
            leaf = affix_node(P, t, QN_TAGAFFIX);
            if (leaf) {
                leaf->affix = t->type == T_PREFIX ? QN_PREFIX : t->type == T_SUFFIX ? QN_SUFFIX : QN_CONTAINS;
                tag_normalize(P->ix, field, leaf->str, &leaf->len);
            }
        } else if (t->type == T_WILDCARD) {
            fail(P, FTQ_ESYNTAX, t->pos, "Wildcard queries (w'...') are not supported");
        } else if (is_param_term(t->type)) {
            /* one word keeps its case (then the field's rule applies);
             * several are joined by one space, lowered, as RediSearch's
             * termlist does */
            size_t start = P->i;
            while (is_param_term(cur(P)->type)) P->i++;
            size_t words = P->i - start;
            char *acc = NULL;
            size_t alen = 0;
            for (size_t w = 0; w < words && !P->failed; w++) {
                const tok *wt = &P->t[start + w];
                const char *s;
                size_t n;
                if (tok_value(P, wt, &s, &n)) break;
                char *na = realloc(acc, alen + n + 2);
                if (!na) {
                    nomem(P);
                    break;
                }
                acc = na;
                if (w) acc[alen++] = ' ';
                memcpy(acc + alen, s, n);
                size_t nn = n;
                if (wt->type != T_ATTRIBUTE || words > 1) {
                    /* unescape; lower when part of a list of words */
                    size_t o = 0;
                    for (size_t i = 0; i < n; i++) {
                        char ch = acc[alen + i];
                        if (ch == '\\' && i + 1 < n &&
                            (is_punct((unsigned char)acc[alen + i + 1]) || is_space((unsigned char)acc[alen + i + 1])))
                            continue;
                        if (words > 1 && ch >= 'A' && ch <= 'Z') ch = (char)(ch - 'A' + 'a');
                        acc[alen + o++] = ch;
                    }
                    nn = o;
                }
                alen += nn;
            }
            if (!P->failed) {
                leaf = node_new(P, QN_TAGV);
                if (leaf) {
                    leaf->str = acc;
                    leaf->len = alen;
                    acc = NULL;
                    if (leaf->str) leaf->str[alen] = 0;
                    else leaf->str = dup_n(P, "", 0);
                    tag_normalize(P->ix, field, leaf->str, &leaf->len);
                }
            }
            free(acc);
        } else {
            syntax_error(P);
        }
        if (P->failed) {
            qnode_free(leaf);
            qnode_free(tag);
            return NULL;
        }
        if (leaf) leaf->field = field;
        add_kid(P, tag, leaf);
        if (cur(P)->type == T_OR) {
            P->i++;
            continue;
        }
        break;
    }
    if (!expect(P, T_RB)) {
        qnode_free(tag);
        return NULL;
    }
    return tag;
}

/* One bound of a range: [(] (number | - number | $param). */
static int parse_bound(parser *P, double *v, int *incl, int is_min)
{
    *incl = 1;
    if (cur(P)->type == T_LP) {
        P->i++;
        *incl = 0;
    }
    int neg = 0;
    const tok *t = cur(P);
    if (t->type == T_ATTRIBUTE) {
        P->i++;
        const ftq_param *p = param_find(P, t->s, t->len, t->pos);
        if (!p) return -1;
        const char *s = p->value;
        size_t n = p->value_len;
        if (n && *s == '(') {
            *incl = 0;
            s++;
            n--;
        }
        if (parse_double(s, n, v)) {
            fail(P, FTQ_EPARAM, t->pos, "Invalid numeric value (%.*s) for parameter `%.*s`",
                 (int)p->value_len, p->value, (int)t->len, t->s);
            return -1;
        }
        (void)is_min;
        return 0;
    }
    if (*incl == 1 || cur(P)->type != T_ATTRIBUTE) {
        while (cur(P)->type == T_MINUS) {
            P->i++;
            neg = !neg;
        }
    }
    t = cur(P);
    if (t->type != T_SIZE && t->type != T_NUMBER) {
        syntax_error(P);
        return -1;
    }
    P->i++;
    *v = neg ? -t->num : t->num;
    return 0;
}

static int is_bound_start(int type)
{
    return type == T_LP || type == T_MINUS || type == T_ATTRIBUTE || type == T_SIZE || type == T_NUMBER;
}

/* [VECTOR_RANGE radius $blob]: a clause in q->ranges, its field and alias
 * set by the caller (parse_field) once the field is known. */
static qnode *parse_vrange(parser *P)
{
    ftq *q = P->q;
    P->i++; /* VECTOR_RANGE */
    const tok *r = cur(P);
    double radius;
    if (r->type == T_ATTRIBUTE) {
        const char *s;
        size_t n;
        if (tok_value(P, r, &s, &n)) return NULL;
        if (parse_double(s, n, &radius)) {
            fail(P, FTQ_EPARAM, r->pos, "Invalid numeric value (%.*s) for parameter `%.*s`",
                 (int)n, s, (int)r->len, r->s);
            return NULL;
        }
    } else if (r->type == T_NUMBER || r->type == T_SIZE) {
        radius = r->num;
    } else {
        syntax_error(P);
        return NULL;
    }
    P->i++;
    const tok *blob = cur(P);
    if (blob->type != T_ATTRIBUTE) {
        syntax_error(P);
        return NULL;
    }
    P->i++;
    if (!expect(P, T_RSQB)) return NULL;
    if (radius < 0) {
        fail(P, FTQ_EPARAM, r->pos, "Error parsing vector similarity parameters: "
             "Invalid value was given");
        return NULL;
    }
    const ftq_param *bp = param_find(P, blob->s, blob->len, blob->pos);
    if (!bp) return NULL;
    ftq_range *nr = realloc(q->ranges, (q->nranges + 1) * sizeof *nr);
    if (!nr) {
        nomem(P);
        return NULL;
    }
    q->ranges = nr;
    uint32_t **nd = realloc(q->rdocs, (q->nranges + 1) * sizeof *nd);
    if (nd) q->rdocs = nd;
    size_t *nn = nd ? realloc(q->rndocs, (q->nranges + 1) * sizeof *nn) : NULL;
    if (nn) q->rndocs = nn;
    if (!nd || !nn) {
        nomem(P);
        return NULL;
    }
    ftq_range *c = &q->ranges[q->nranges];
    memset(c, 0, sizeof *c);
    c->field = -1;
    c->radius = radius;
    q->rdocs[q->nranges] = NULL;
    q->rndocs[q->nranges] = 0;
    q->nranges++;
    c->vec = dup_n(P, bp->value, bp->value_len);
    if (!c->vec) return NULL;
    c->vec_len = bp->value_len;
    qnode *n = node_new(P, QN_VRANGE);
    if (!n) return NULL;
    n->range = (int)(q->nranges - 1);
    return n;
}

/* The alias of range clause i (owned copy; replaces the one before). */
static int set_range_alias(parser *P, size_t i, const char *s, size_t n)
{
    char *a = dup_n(P, s, n);
    if (!a) return -1;
    free((char *)P->q->ranges[i].alias);
    P->q->ranges[i].alias = a;
    P->q->ranges[i].alias_len = n;
    return 0;
}

/* [lo hi] [lo] [VECTOR_RANGE r $blob] -- and, to refuse them after parsing
 * as RediSearch would accept them, GEO [lon lat r unit] and GEOSHAPE. */
static qnode *parse_range(parser *P, int field, size_t at_pos)
{
    P->i++; /* [ */
    if (cur(P)->type == T_TERM) {
        if (cur(P)->len == 12 && strncasecmp(cur(P)->s, "VECTOR_RANGE", 12) == 0) return parse_vrange(P);
        fail(P, FTQ_ESYNTAX, cur(P)->pos, "GEOSHAPE queries are not supported");
        return NULL;
    }
    double lo, hi;
    int li, hinc;
    if (parse_bound(P, &lo, &li, 1)) return NULL;
    if (cur(P)->type == T_RSQB) {
        hi = lo;
        hinc = li;
    } else {
        if (parse_bound(P, &hi, &hinc, 0)) return NULL;
        if (is_bound_start(cur(P)->type)) { /* GEO: lon lat radius unit */
            double r;
            int ri;
            if (parse_bound(P, &r, &ri, 0)) return NULL;
            if (!is_param_term(cur(P)->type)) {
                syntax_error(P);
                return NULL;
            }
            P->i++;
            if (!expect(P, T_RSQB)) return NULL;
            fail(P, FTQ_ESYNTAX, at_pos, "GEO filters are not supported");
            return NULL;
        }
    }
    if (!expect(P, T_RSQB)) return NULL;
    qnode *n = node_new(P, QN_NUM);
    if (!n) return NULL;
    n->field = field;
    n->lo = lo;
    n->hi = hi;
    n->lo_incl = li;
    n->hi_incl = hinc;
    return n;
}

/* @f:... @f|g:... */
static qnode *parse_field(parser *P)
{
    const tok *mod = cur(P);
    P->i++;
    size_t names[FTIDX_TEXT_MAX + 1];
    size_t nn = 0;
    names[nn++] = P->i - 1;
    while (cur(P)->type == T_OR) {
        P->i++;
        int ty = cur(P)->type;
        if (ty != T_TERM && ty != T_NUMBER && ty != T_SIZE && ty != T_AS && ty != T_ISEMPTY) {
            syntax_error(P);
            return NULL;
        }
        if (nn < FTIDX_TEXT_MAX) names[nn++] = P->i;
        P->i++;
    }
    if (!expect(P, T_COLON)) return NULL;
    int ty = cur(P)->type;
    if (nn == 1 && (ty == T_LB || ty == T_LSQB)) {
        /* parse first (RediSearch's parser runs before names are looked
         * up), with the field's case rule when the field exists */
        int f = ftidx_find(P->ix, mod->s, mod->len);
        qnode *n = ty == T_LB ? parse_tags(P, f) : parse_range(P, f, mod->pos);
        if (!P->failed) f = field_of(P, mod, mod->pos);
        if (!n || P->failed) {
            qnode_free(n);
            return NULL;
        }
        if (f < 0) { /* RediSearch 2.6: an unknown field matches nothing */
            qnode_free(n);
            return node_new(P, QN_NONE);
        }
        if (n->field < 0) {
            n->field = f;
            for (size_t i = 0; i < n->nkid; i++) n->kid[i]->field = f;
        }
        const ftidx_field_def *def = ftidx_field(P->ix, (size_t)f);
        if (n->type == QN_VRANGE) {
            if (def->kind != FTIDX_VECTOR) {
                fail(P, FTQ_EFIELD, mod->pos, "Expected a VECTOR field at offset %zu near %.*s",
                     mod->pos, (int)mod->len, mod->s);
                qnode_free(n);
                return NULL;
            }
            ftq_range *c = &P->q->ranges[n->range];
            c->field = f;
            char buf[300];
            int bl = snprintf(buf, sizeof buf, "__%.*s_score", (int)(mod->len < 200 ? mod->len : 200),
                              mod->s);
            if (set_range_alias(P, (size_t)n->range, buf, (size_t)bl)) {
                qnode_free(n);
                return NULL;
            }
            return n;
        }
        if ((ty == T_LB && def->kind != FTIDX_TAG) || (ty == T_LSQB && def->kind != FTIDX_NUMERIC)) {
            qnode_free(n);
            return node_new(P, QN_NONE);
        }
        return n;
    }
    if (!unit_start(ty, 1)) {
        syntax_error(P);
        return NULL;
    }
    /* RediSearch reduces "@f:unit" before an arrow: => binds to the field
     * form, not inside it */
    int saved = P->vec_ok;
    P->vec_ok = 0;
    qnode *n = parse_unit(P, 1, 0);
    P->vec_ok = saved;
    uint64_t mask = 0;
    for (size_t i = 0; i < nn && !P->failed; i++) {
        const tok *t = &P->t[names[i]];
        int f = field_of(P, t, i == 0 ? mod->pos : t->pos);
        if (f >= 0) mask |= text_bit(P->ix, f);
    }
    if (P->failed) {
        qnode_free(n);
        return NULL;
    }
    set_mask(n, mask);
    return n;
}

/* One unit and (postfix) its attributes. */
static qnode *parse_unit(parser *P, int text_only, int postfix)
{
    const tok *t = cur(P);
    qnode *n = NULL;
    int vec_ok = P->vec_ok;
    if (++P->depth > FTQ_DEPTH_MAX) {
        fail(P, FTQ_ESYNTAX, t->pos, "Parser stack overflow. Try moving nested parentheses more to the left");
        return NULL;
    }
    if (t->type == T_MINUS || t->type == T_TILDE) {
        P->i++;
        P->vec_ok = 0;
        if (!unit_start(cur(P)->type, text_only)) {
            syntax_error(P);
            return NULL;
        }
        n = wrap1(P, t->type == T_MINUS ? QN_NOT : QN_OPT, parse_unit(P, text_only, 1));
    } else if (t->type == T_LP) {
        P->i++;
        P->vec_ok = 0;
        n = parse_expr(P, text_only);
        if (!expect(P, T_RP)) {
            qnode_free(n);
            return NULL;
        }
    } else if (t->type == T_MODIFIER && !text_only) {
        n = parse_field(P);
    } else if (unit_start(t->type, text_only)) {
        n = parse_text_atom(P);
    } else {
        syntax_error(P);
        return NULL;
    }
    P->vec_ok = vec_ok;
    P->depth--;
    while (postfix && !P->failed && cur(P)->type == T_ARROW) {
        int next = peek(P, 1);
        if (next == T_LB) {
            parse_attributes(P, n);
            continue;
        }
        if (next == T_LSQB && P->vec_ok && t->type != T_MINUS && t->type != T_TILDE) break;
        P->i++; /* RediSearch shifts the arrow, then fails at what follows */
        syntax_error(P);
    }
    if (P->failed) {
        qnode_free(n);
        return NULL;
    }
    return n;
}

static qnode *parse_and(parser *P, int text_only)
{
    if (!unit_start(cur(P)->type, text_only)) {
        syntax_error(P);
        return NULL;
    }
    qnode *acc = NULL;
    int first = 1;
    while (!P->failed && unit_start(cur(P)->type, text_only)) {
        if (!first) P->vec_ok = 0;
        qnode *u = parse_unit(P, text_only, 1);
        if (P->failed) {
            qnode_free(u);
            break;
        }
        acc = and2(P, acc, u);
        first = 0;
        if (cur(P)->type == T_ARROW) break; /* the vector clause */
    }
    if (P->failed) {
        qnode_free(acc);
        return NULL;
    }
    return acc;
}

static qnode *parse_expr(parser *P, int text_only)
{
    qnode *acc = parse_and(P, text_only);
    while (!P->failed && cur(P)->type == T_OR) {
        P->i++;
        P->vec_ok = 0;
        qnode *b = parse_and(P, text_only);
        acc = or2(P, acc, b);
    }
    if (P->failed) {
        qnode_free(acc);
        return NULL;
    }
    return acc;
}

/* ---- the vector clause ------------------------------------------------------ */

static int param_uint(parser *P, const tok *t, uint32_t *out)
{
    const char *s;
    size_t n;
    if (tok_value(P, t, &s, &n)) return -1;
    unsigned long long v = 0;
    int ok = n > 0 && n <= 10;
    for (size_t i = 0; i < n && ok; i++) {
        if (!is_digit((unsigned char)s[i])) ok = 0;
        else v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (!ok || v > UINT32_MAX) {
        fail(P, FTQ_EPARAM, t->pos, "Invalid numeric value (%.*s) for parameter `%.*s`", (int)n, s,
             (int)t->len, t->s);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

/* =>[KNN k @field $blob [NAME value]... [AS alias]] [=>{attributes}] */
static void parse_vector(parser *P, qnode *filter)
{
    ftq *q = P->q;
    P->i++; /* => */
    if (!expect(P, T_LSQB)) return;
    const tok *cmd = cur(P);
    if (cmd->type != T_TERM) {
        syntax_error(P);
        return;
    }
    P->i++;
    const tok *k = cur(P);
    if (k->type != T_SIZE && k->type != T_ATTRIBUTE) {
        syntax_error(P);
        return;
    }
    P->i++;
    const tok *fld = cur(P);
    if (!expect(P, T_MODIFIER)) return;
    const tok *blob = cur(P);
    if (!expect(P, T_ATTRIBUTE)) return;
    if (!(cmd->len == 3 && strncasecmp(cmd->s, "KNN", 3) == 0)) {
        fail(P, FTQ_ESYNTAX, cmd->pos, "Syntax error: Expecting Vector Similarity command at offset %zu near %.*s",
             cmd->pos, (int)cmd->len, cmd->s);
        return;
    }
    const tok *alias = NULL;
    const tok *attrs[16][2];
    size_t na = 0;
    for (;;) {
        int ty = cur(P)->type;
        if (ty == T_AS) {
            P->i++;
            if (!is_param_term(cur(P)->type)) {
                syntax_error(P);
                return;
            }
            alias = cur(P);
            P->i++;
            break;
        }
        if (ty == T_TERM || ty == T_ISEMPTY) {
            const tok *name = cur(P);
            P->i++;
            if (!is_param_term(cur(P)->type)) {
                syntax_error(P);
                return;
            }
            if (na < 16) {
                attrs[na][0] = name;
                attrs[na][1] = cur(P);
                na++;
            }
            P->i++;
            continue;
        }
        break;
    }
    if (!expect(P, T_RSQB)) return;
    /* =>{$yield_distance_as: d; $EF_RUNTIME: n; ...}: the clause's own
     * parameters as query attributes (RediSearch 2.6+) */
    if (cur(P)->type == T_ARROW && peek(P, 1) == T_LB) {
        P->i += 2;
        while (!P->failed && cur(P)->type == T_ATTRIBUTE) {
            const tok *name = cur(P);
            P->i++;
            if (!expect(P, T_COLON)) return;
            const tok *v = cur(P);
            if (!is_param_term(v->type)) {
                syntax_error(P);
                return;
            }
            P->i++;
            if (name->len == 17 && strncasecmp(name->s, "yield_distance_as", 17) == 0) {
                alias = v;
            } else if ((name->len == 10 && strncasecmp(name->s, "EF_RUNTIME", 10) == 0) ||
                       (name->len == 7 && strncasecmp(name->s, "EPSILON", 7) == 0) ||
                       (name->len == 13 && strncasecmp(name->s, "HYBRID_POLICY", 13) == 0) ||
                       (name->len == 10 && strncasecmp(name->s, "BATCH_SIZE", 10) == 0)) {
                if (na < 16) {
                    attrs[na][0] = name;
                    attrs[na][1] = v;
                    na++;
                }
            } else if (!(name->len == 6 && strncasecmp(name->s, "weight", 6) == 0)) {
                fail(P, FTQ_ESYNTAX, name->pos, "Invalid attribute %.*s", (int)name->len, name->s);
                return;
            }
            if (cur(P)->type == T_SEMICOLON) P->i++;
            else break;
        }
        if (!expect(P, T_RB)) return;
    }
    if (P->failed) return;
    if (cur(P)->type != T_EOF) {
        syntax_error(P);
        return;
    }
    /* resolve, now that the clause parsed */
    ftq_knn *kn = &q->knn;
    if (param_uint(P, k, &kn->k)) return;
    int f = field_of(P, fld, fld->pos);
    if (P->failed) return;
    kn->field = f;
    const ftq_param *bp = param_find(P, blob->s, blob->len, blob->pos);
    if (!bp) return;
    q->knn_vec = dup_n(P, bp->value, bp->value_len);
    if (!q->knn_vec) return;
    kn->vec = q->knn_vec;
    kn->vec_len = bp->value_len;
    static const char vecerr[] = "Error parsing vector similarity parameters: ";
    for (size_t i = 0; i < na; i++) {
        const tok *nm = attrs[i][0], *v = attrs[i][1];
        for (size_t j = 0; j < i; j++)
            if (attrs[j][0]->len == nm->len && strncasecmp(attrs[j][0]->s, nm->s, nm->len) == 0) {
                fail(P, FTQ_EPARAM, nm->pos, "%sField was specified twice", vecerr);
                return;
            }
        if (nm->len == 10 && strncasecmp(nm->s, "EF_RUNTIME", 10) == 0) {
            const char *s;
            size_t n;
            if (tok_value(P, v, &s, &n)) return;
            int ok = n > 0 && n <= 9;
            uint32_t ef = 0;
            for (size_t j = 0; j < n && ok; j++) {
                ok = is_digit((unsigned char)s[j]);
                ef = ef * 10 + (uint32_t)(s[j] - '0');
            }
            if (!ok || ef == 0) {
                fail(P, FTQ_EPARAM, v->pos, "%sAttribute not supported for term", vecerr);
                return;
            }
            kn->ef_runtime = ef;
            kn->has_ef = 1;
        } else if (nm->len == 7 && strncasecmp(nm->s, "EPSILON", 7) == 0) {
            const char *s;
            size_t n;
            if (tok_value(P, v, &s, &n)) return;
            if (parse_double(s, n, &kn->epsilon) || kn->epsilon <= 0) {
                fail(P, FTQ_EPARAM, v->pos, "%sAttribute not supported for term", vecerr);
                return;
            }
            kn->has_epsilon = 1;
        } else if (!((nm->len == 13 && strncasecmp(nm->s, "HYBRID_POLICY", 13) == 0) ||
                     (nm->len == 10 && strncasecmp(nm->s, "BATCH_SIZE", 10) == 0))) {
            fail(P, FTQ_EPARAM, nm->pos, "%sInvalid option", vecerr);
            return;
        }
    }
    if (alias) {
        const char *s;
        size_t n;
        if (tok_value(P, alias, &s, &n)) return;
        if (ftidx_find(P->ix, s, n) >= 0) {
            fail(P, FTQ_EFIELD, alias->pos, "Property `%.*s` already exists in schema", (int)n, s);
            return;
        }
        q->knn_alias = dup_n(P, s, n);
        if (!q->knn_alias) return;
        kn->alias_len = n;
    } else {
        size_t n = fld->len + 8;
        q->knn_alias = malloc(n + 1);
        if (!q->knn_alias) {
            nomem(P);
            return;
        }
        snprintf(q->knn_alias, n + 1, "__%.*s_score", (int)fld->len, fld->s);
        kn->alias_len = n;
    }
    kn->alias = q->knn_alias;
    kn->has_filter = filter != NULL && filter->type != QN_ALL;
    q->has_knn = 1;
}

/* ---- the query ---------------------------------------------------------------- */

static qnode *parse_query(parser *P)
{
    if (P->n == 0) return NULL;
    /* `*` and ( * ): only as the whole query (or before =>[) */
    size_t lp = 0;
    while (peek(P, lp) == T_LP) lp++;
    if (peek(P, lp) == T_STAR) {
        P->i += lp + 1;
        for (size_t k = 0; k < lp; k++)
            if (!expect(P, T_RP)) return NULL;
        qnode *all = node_new(P, QN_ALL);
        if (cur(P)->type == T_ARROW && peek(P, 1) == T_LSQB) {
            parse_vector(P, all);
        } else if (cur(P)->type != T_EOF) {
            syntax_error(P);
        }
        if (P->failed) {
            qnode_free(all);
            return NULL;
        }
        return all;
    }
    P->vec_ok = 1;
    qnode *root = parse_expr(P, 0);
    if (!P->failed && cur(P)->type == T_ARROW && peek(P, 1) == T_LSQB && P->vec_ok) {
        parse_vector(P, root);
        if (!P->failed && !root) root = node_new(P, QN_ALL); /* a stopword prefilter: none */
    } else if (!P->failed && cur(P)->type != T_EOF) {
        syntax_error(P);
    }
    if (P->failed) {
        qnode_free(root);
        return NULL;
    }
    return root;
}

/* SLOP / INORDER: every intersection without bounds of its own gets them
 * (INORDER alone: in order, any distance). */
static void apply_slop(qnode *n, int slop, int inorder)
{
    if (n->type == QN_PHRASE && !n->exact && n->slop < 0) {
        n->slop = slop;
        n->inorder |= inorder;
    }
    for (size_t i = 0; i < n->nkid; i++) apply_slop(n->kid[i], slop, inorder);
}

static void number(ftq *q, qnode *n)
{
    if (!n) return;
    n->id = q->nnodes++;
    for (size_t i = 0; i < n->nkid; i++) number(q, n->kid[i]);
}

int ftq_compile(const ftidx *ix, const char *text, size_t len, const ftq_opts *opts, ftq **out,
                ftq_error *err)
{
    static const ftq_opts defaults = { .slop = -1 };
    if (!out || !ix || (!text && len)) return -EINVAL;
    *out = NULL;
    if (err) memset(err, 0, sizeof *err);
    const ftq_opts *o = opts ? opts : &defaults;
    lexer lx = { 0 };
    if (lex_all(text, len, &lx)) {
        free(lx.t);
        if (err) {
            err->code = -ENOMEM;
            snprintf(err->msg, sizeof err->msg, "out of memory");
        }
        return -ENOMEM;
    }
    ftq *q = calloc(1, sizeof *q);
    if (!q) {
        free(lx.t);
        return -ENOMEM;
    }
    q->max_expansions = o->max_expansions ? o->max_expansions : 200;
    q->min_prefix = o->min_prefix ? o->min_prefix : 2;
    parser P = { .ix = ix, .o = o, .raw = text, .t = lx.t, .n = lx.n, .err = err, .q = q };
    qnode *root = parse_query(&P);
    root = expand(&P, root, o->verbatim);
    free(lx.t);
    if (P.failed) {
        qnode_free(root);
        ftq_free(q);
        return P.failed;
    }
    if (root && o->has_slop && o->slop >= 0) apply_slop(root, o->slop, o->inorder);
    else if (root && o->inorder) apply_slop(root, INT32_MAX, 1);
    q->root = root;
    q->ix = ix;
    number(q, root);
    *out = q;
    return 0;
}

void ftq_free(ftq *q)
{
    if (!q) return;
    qnode_free(q->root);
    free(q->knn_alias);
    free(q->knn_vec);
    for (size_t i = 0; i < q->nranges; i++) {
        free((char *)q->ranges[i].vec);
        free((char *)q->ranges[i].alias);
        free(q->rdocs[i]);
    }
    free(q->ranges);
    free(q->rdocs);
    free(q->rndocs);
    free(q);
}

const ftq_knn *ftq_get_knn(const ftq *q)
{
    return q->has_knn ? &q->knn : NULL;
}

size_t ftq_range_count(const ftq *q)
{
    return q->nranges;
}

const ftq_range *ftq_get_range(const ftq *q, size_t i)
{
    return i < q->nranges ? &q->ranges[i] : NULL;
}

int ftq_set_range_docs(ftq *q, size_t i, const uint32_t *docs, size_t n)
{
    if (i >= q->nranges) return -EINVAL;
    uint32_t *c = malloc((n ? n : 1) * sizeof *c);
    if (!c) return -ENOMEM;
    if (n) memcpy(c, docs, n * sizeof *c);
    free(q->rdocs[i]);
    q->rdocs[i] = c;
    q->rndocs[i] = n;
    return 0;
}

/* ---- the dump ------------------------------------------------------------------ */

typedef struct dumper {
    char *buf;
    size_t cap, n;
    const ftq *q;
} dumper;

static void put(dumper *D, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = D->n < D->cap ? D->cap - D->n : 0;
    int k = vsnprintf(room ? D->buf + D->n : NULL, room, fmt, ap);
    va_end(ap);
    if (k > 0) D->n += (size_t)k;
}

static void put_num(dumper *D, double v)
{
    if (isinf(v)) put(D, v < 0 ? "-inf" : "+inf");
    else put(D, "%.17g", v);
}

static void dump_node(dumper *D, const ftidx_field_def *(*fname)(const void *, int), const void *ix,
                      const qnode *n)
{
    switch (n->type) {
    case QN_NONE: put(D, "none"); break;
    case QN_ALL: put(D, "*"); break;
    case QN_TERM: put(D, "%s", n->str); break;
    case QN_PREFIX: put(D, "%s*", n->str); break;
    case QN_SUFFIX: put(D, "*%s", n->str); break;
    case QN_CONTAINS: put(D, "*%s*", n->str); break;
    case QN_FUZZY: put(D, "%%%s%%%d", n->str, n->dist); break;
    case QN_TAGV: put(D, "{%s}", n->str); break;
    case QN_TAGAFFIX:
        put(D, n->affix == QN_PREFIX ? "{%s*}" : n->affix == QN_SUFFIX ? "{*%s}" : "{*%s*}", n->str);
        break;
    case QN_NUM:
        put(D, "[%s %s", n->field >= 0 ? fname(ix, n->field)->name : "?", n->lo_incl ? "" : "(");
        put_num(D, n->lo);
        put(D, " %s", n->hi_incl ? "" : "(");
        put_num(D, n->hi);
        put(D, "]");
        break;
    case QN_VRANGE: {
        const ftq_range *c = &D->q->ranges[n->range];
        put(D, "(vrange %s ", c->field >= 0 ? fname(ix, c->field)->name : "?");
        put_num(D, c->radius);
        put(D, " %.*s)", (int)c->alias_len, c->alias ? c->alias : "");
        break;
    }
    default: {
        const char *op = n->type == QN_UNION ? "or" : n->type == QN_NOT ? "not" :
                         n->type == QN_OPT ? "opt" : n->type == QN_TAG ? "tag" :
                         n->exact ? "phrase" : "and";
        put(D, "(%s", op);
        if (n->type == QN_TAG) put(D, ":%s", n->field >= 0 ? fname(ix, n->field)->name : "?");
        if (n->type == QN_PHRASE && !n->exact && n->slop >= 0 && n->slop != INT32_MAX) put(D, "~s%d", n->slop);
        if (n->type == QN_PHRASE && !n->exact && n->inorder) put(D, "~o");
        for (size_t i = 0; i < n->nkid; i++) {
            put(D, " ");
            dump_node(D, fname, ix, n->kid[i]);
        }
        put(D, ")");
    }
    }
    if (n->mask != QN_MASK_ALL &&
        (n->type == QN_TERM || n->type == QN_PREFIX || n->type == QN_SUFFIX ||
         n->type == QN_CONTAINS || n->type == QN_FUZZY))
        put(D, "/m%llx", (unsigned long long)n->mask);
    if (n->weight != 1.0) put(D, "^%g", n->weight);
}

static const ftidx_field_def *field_name(const void *ix, int f)
{
    return ftidx_field(ix, (size_t)f);
}

size_t ftq_dump(const ftq *q, char *buf, size_t cap)
{
    dumper D = { buf, cap, 0, q };
    if (cap) buf[0] = 0;
    if (q->has_knn) {
        put(&D, "(knn %u %s %.*s", q->knn.k,
            q->knn.field >= 0 ? ftidx_field(q->ix, (size_t)q->knn.field)->name : "?",
            (int)q->knn.alias_len, q->knn.alias);
        if (q->knn.has_ef) put(&D, " ef=%u", q->knn.ef_runtime);
        put(&D, " ");
    }
    if (q->root) dump_node(&D, field_name, q->ix, q->root);
    else put(&D, "none");
    if (q->has_knn) put(&D, ")");
    return D.n;
}
