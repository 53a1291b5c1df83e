/* ftquery.h -- the query language of FT.SEARCH (RediSearch's DIALECT 2),
 * compiled once against an index's schema, then run: every matching
 * document with its score, or, for the KNN clause's prefilter, a test a
 * vector search calls per candidate.
 *
 *   hello world              both terms (each also through its stem)
 *   hello | world            either; `|` binds looser than juxtaposition
 *   -hello  ~hello           not; optional (matches all, scores if there)
 *   "hello world"            the exact phrase (no stemming)
 *   hel*  *llo  *ll*         prefix, suffix, contains (>= 2 bytes)
 *   %hello%  %%hello%%       fuzzy: Levenshtein distance 1, 2 (, 3)
 *   @title:hello             a TEXT field; @title|body:hello: either
 *   @title:(a | b -c)        a group inside one field
 *   @tag:{a | b c | d\ e}    TAG values ("b c": the words joined by one
 *                            space; backslash escapes; {pre*} prefixes)
 *   @num:[1 (5]  @num:[-inf +inf]  @num:[7]   NUMERIC ranges
 *   $name                    PARAMS: terms, tag values, range bounds, KNN
 *                            arguments (never inside quotes)
 *   *                        every document (only as the whole query)
 *   (prefilter)=>[KNN k @vec $blob EF_RUNTIME n AS dist]
 *   @vec:[VECTOR_RANGE r $blob]=>{$YIELD_DISTANCE_AS: dist}   within r
 *   *=>[KNN $k @vec $blob]   the vector clause, ending the query
 *   *=>[KNN 5 @vec $blob]=>{$YIELD_DISTANCE_AS: d; $EF_RUNTIME: 50}
 *                            its parameters as attributes (RediSearch 2.6+)
 *   expr => {$weight: 2; $slop: 1; $inorder: true}   query attributes
 *
 * The grammar, precedence and error texts follow RediSearch's
 * src/query_parser/v2 (lexer.rl, parser.y); src/search/ftquery.c spells
 * them out with what engram does differently.  In short: juxtaposition
 * (AND) binds tighter than `|`, `-` and `~` take the one unit after them,
 * a field modifier takes one unit ("@f:a b" is (@f:a) AND b), `=>{...}`
 * attaches to the unit before it, and the vector clause's prefilter must
 * be a single unit -- "a b=>[KNN ...]" is a syntax error in RediSearch and
 * here, "(a b)=>[KNN ...]" is not.
 *
 * DIALECT 1 differs (not implemented; ftq_compile parses every dialect as
 * 2): no $params, no KNN clause, a field modifier spanning the rest of
 * the AND ("@f:a b" is @f:(a b)), stopwords allowed in more places.
 *
 * Threads: a compiled query is immutable; any number of threads may run
 * it against an index they hold read-locked.  Running allocates its own
 * memory (malloc) and writes nothing shared.
 *
 * Ownership: ftq_compile copies what it keeps of the text and of the
 * PARAMS values; the query belongs to the caller until ftq_free.  Results
 * belong to the caller (ftq_result_fini, ftq_filter_free).
 *
 * Errors: 0 or negative: FTQ_ESYNTAX, FTQ_EFIELD, FTQ_EPARAM (err->msg is
 * RediSearch's reply text without the "ERR " prefix, err->offset the byte
 * it names), -EINVAL, -ENOMEM. */
#ifndef ENGRAM_FTQUERY_H
#define ENGRAM_FTQUERY_H

#include <stddef.h>
#include <stdint.h>

#include "engram/ftindex.h"

typedef struct ftq ftq;

typedef struct ftq_param {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} ftq_param;

typedef struct ftq_opts {
    int dialect;               /* 0: 2 */
    const ftq_param *params;   /* PARAMS pairs */
    size_t nparams;
    int verbatim;              /* VERBATIM: no stem expansion */
    int slop;                  /* SLOP n for every intersection; -1 (or 0 with !has_slop): none */
    int has_slop;
    int inorder;               /* INORDER */
    uint32_t max_expansions;   /* prefix/suffix/fuzzy terms (0: 200, MAXEXPANSIONS) */
    uint32_t min_prefix;       /* shortest prefix (0: 2, MINPREFIX) */
    int nostopwords;           /* NOSTOPWORDS: query words are never dropped */
    int strict_fields;         /* Redis 8: @unknown is an error; 0 (RediSearch 2.6):
                                  it matches nothing, and so does a KNN on it */
} ftq_opts;

typedef struct ftq_error {
    int code;
    size_t offset;
    char msg[320];
} ftq_error;

/* Compile len bytes of text against ix's schema (the index itself is not
 * read: stopwords and fields come from it, matches do not).  opts NULL:
 * defaults.  On failure *out is NULL and *err (may be NULL) says why:
 *   Syntax error at offset N near X       (the token RediSearch's parser
 *                                          stopped at, with its quirks)
 *   Unknown field at offset N near NAME   (@NAME not in the schema, with
 *                                          strict_fields)
 *   Property `ALIAS` already exists in schema   (a KNN AS naming a field)
 *   Error parsing vector similarity parameters: Attribute not supported
 *     for term | Field was specified twice | Invalid option
 *   No such parameter `NAME`
 *   Invalid numeric value (V) for parameter `NAME`
 *   Syntax error: Expecting Vector Similarity command at offset N near X */
int ftq_compile(const ftidx *ix, const char *text, size_t len, const ftq_opts *opts, ftq **out,
                ftq_error *err);
/* NULL: nothing. */
void ftq_free(ftq *q);

/* The vector clause of a compiled query, or NULL when it has none. */
typedef struct ftq_knn {
    int field;               /* the schema field (the caller checks it is a VECTOR
                                one); -1: unknown, match nothing (2.6's [0]) */
    uint32_t k;
    const char *vec;         /* the blob: its PARAMS value */
    size_t vec_len;
    int has_ef;
    uint32_t ef_runtime;     /* EF_RUNTIME */
    int has_epsilon;
    double epsilon;          /* EPSILON */
    const char *alias;       /* AS alias, else "__<field>_score" */
    size_t alias_len;
    int has_filter;          /* the prefilter is not `*` (ftq_filter_new is worth calling) */
} ftq_knn;
const ftq_knn *ftq_get_knn(const ftq *q);

/* The vector range clauses of a compiled query, in query order:
 *   @vec:[VECTOR_RANGE radius $blob]=>{$YIELD_DISTANCE_AS: name; $EPSILON: e}
 * (radius a number or a $param; the attributes optional, any case).  Each
 * matches the documents whose vector is within radius of the blob; the
 * library cannot tell which (the vectors live in the caller's vector
 * indices), so the caller computes that set and hands it over with
 * ftq_set_range_docs before running the query -- a clause without one
 * matches nothing. */
typedef struct ftq_range {
    int field;               /* the schema field (the caller checks it is a VECTOR one) */
    double radius;
    const char *vec;         /* the blob: its PARAMS value */
    size_t vec_len;
    int has_epsilon;
    double epsilon;          /* $EPSILON (HNSW's range search; exact scans ignore it) */
    const char *alias;       /* $YIELD_DISTANCE_AS, else "__<field>_score" */
    size_t alias_len;
} ftq_range;
size_t ftq_range_count(const ftq *q);
const ftq_range *ftq_get_range(const ftq *q, size_t i);
/* The documents clause i matches: n ids, ascending (copied).  Call before
 * running the query, from the thread that owns it.  0 or -ENOMEM. */
int ftq_set_range_docs(ftq *q, size_t i, const uint32_t *docs, size_t n);

/* The compiled tree in engram's own compact notation (for tests and
 * debugging; not FT.EXPLAIN's format):
 *   word  (or a b)  (and a b)  (phrase a b)  (not x)  (opt x)  pre*  *suf
 *   *mid*  %word%1  (tag:F {v} {pre*})  [F lo hi] with ( for exclusive
 *   bounds  *  none;  /mHEX a TEXT field mask,  ^W a weight,  ~sN / ~o a
 *   slop / in-order bound; a KNN clause: (knn K F ALIAS ef=N filter).
 * Written into buf (cap bytes, NUL-terminated, cut to fit); returns the
 * full length, like snprintf. */
size_t ftq_dump(const ftq *q, char *buf, size_t cap);

/* ---- running (ftexec.c) ---------------------------------------------- */

typedef enum ftq_scorer {
    FTQ_BM25STD,       /* Redis 8's default (BM25 until 8.4's rename) */
    FTQ_BM25,          /* RediSearch's legacy BM25 (no document length) */
    FTQ_TFIDF,         /* RediSearch 2.x's default */
    FTQ_TFIDF_DOCNORM,
    FTQ_DISMAX,
    FTQ_DOCSCORE
} ftq_scorer;
/* SCORER's names, case-insensitive; -1 for none. */
int ftq_scorer_parse(const char *name, size_t len);

typedef struct ftq_hit {
    uint32_t doc;
    double score;
} ftq_hit;

typedef struct ftq_result {
    ftq_hit *hits; /* ascending doc id */
    size_t n;
} ftq_result;

/* Every document the query matches (for a KNN query: its prefilter's),
 * with its score by sc.  Returns 0 or -ENOMEM. */
int ftq_run(const ftq *q, const ftidx *ix, ftq_scorer sc, ftq_result *res);
void ftq_result_fini(ftq_result *res);
/* Order hits as FT.SEARCH returns them: score descending, then doc id. */
void ftq_sort_by_score(ftq_hit *hits, size_t n);

/* Does doc match?  Evaluated for this one document (no set is built):
 * the cheap test when few candidates will be asked. */
int ftq_match(const ftq *q, const ftidx *ix, uint32_t doc);

/* The prefilter as a bitmap over doc ids, built once: accept is then one
 * bit test, for vindex_query.accept (vec_filter_fn's signature). */
typedef struct ftq_filter ftq_filter;
int ftq_filter_new(const ftq *q, const ftidx *ix, ftq_filter **out);
int ftq_filter_accept(void *filter, uint32_t doc);
size_t ftq_filter_count(const ftq_filter *f);
void ftq_filter_free(ftq_filter *f);

#endif
