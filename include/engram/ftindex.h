/* ftindex.h -- the document index behind FT.CREATE / FT.SEARCH: a schema
 * of TEXT, TAG, NUMERIC (and VECTOR, recorded only) fields, and the
 * documents indexed by it, each named by a numeric id the caller chooses
 * (the server maps hash keys to ids and indexes vectors itself).
 *
 *   TEXT     an inverted index: term -> postings (doc, frequency, field
 *            mask, positions), with each document's length and most
 *            frequent term for the scorers; per-field WEIGHT and NOSTEM.
 *   TAG      per field: value -> set of docs; SEPARATOR (default ','),
 *            CASESENSITIVE, values trimmed of blanks, empty ones dropped.
 *   NUMERIC  per field: (value, doc) pairs in value order, for ranges.
 *
 * How a value becomes index entries is RediSearch's (src/search/ftidx.c
 * says what comes from where): TEXT through fttok.h, each token counted
 * max(1, (int)weight) times into its posting and into the document's
 * length, its stem ("+stem") max(1, (int)(weight * 0.2)) times into its
 * own posting and not into the length.
 *
 * Documents: ftidx_put indexes a document's field values, replacing
 * whatever was indexed under that id before (a re-indexed hash replaces
 * the old entry completely); ftidx_del removes it.  A document with no
 * values at all is still a document (it matches `*`).
 *
 * Threads: the index is mutated on one thread (the loop); any number of
 * threads may read it at once (ftquery.h's execution) while no mutation
 * runs -- the caller's read/write lock orders them.  Reads never write
 * anything in the index.
 *
 * Ownership: the index copies every name and value it keeps.  It takes
 * ownership of the stopword list passed to ftidx_new.
 *
 * Errors: 0 or negative: -EINVAL (a bad schema or argument), -ENOMEM,
 * FTIDX_EVALUE (a NUMERIC value that is not a number: the document is
 * left as it was), FTIDX_ELIMIT (more TEXT fields than FTIDX_TEXT_MAX,
 * a document id of FTIDX_DOC_MAX or more). */
#ifndef ENGRAM_FTINDEX_H
#define ENGRAM_FTINDEX_H

#include <stddef.h>
#include <stdint.h>

#include "engram/fttok.h"

/* Error codes of the search library (reserved range -10100..-10199). */
#define FTIDX_EVALUE  (-10101) /* a NUMERIC field's value is not a number */
#define FTIDX_ELIMIT  (-10102) /* past a stated limit */
#define FTQ_ESYNTAX   (-10103) /* the query does not parse (ftquery.h) */
#define FTQ_EFIELD    (-10104) /* the query names a field the schema lacks or of the wrong kind */
#define FTQ_EPARAM    (-10105) /* a $parameter is missing or its value is not usable */
const char *ft_strerror(int code);

#define FTIDX_TEXT_MAX 64u            /* TEXT fields (a 64-bit field mask) */
#define FTIDX_DOC_MAX  (1u << 31)     /* document ids are below this */
#define FTIDX_STEM_WEIGHT 0.2f        /* a stem counts this much of its token */

typedef enum ftidx_kind {
    FTIDX_TEXT,
    FTIDX_TAG,
    FTIDX_NUMERIC,
    FTIDX_VECTOR /* in the schema for the query's KNN clause; indexed by the caller */
} ftidx_kind;

typedef struct ftidx_field_def {
    const char *name;
    size_t name_len;
    ftidx_kind kind;
    double weight;     /* TEXT: WEIGHT (0: 1.0) */
    int nostem;        /* TEXT: NOSTEM */
    char separator;    /* TAG: SEPARATOR (0: ',') */
    int casesensitive; /* TAG: CASESENSITIVE */
    int noindex;       /* NOINDEX: in the schema, values ignored */
} ftidx_field_def;

/* Sized allocator, as vecbase.h's: alloc/realloc return NULL on failure;
 * free gets the size back. */
typedef struct ftidx_allocator {
    void *(*alloc)(void *ud, size_t size);
    void *(*realloc)(void *ud, void *p, size_t old, size_t size);
    void (*free)(void *ud, void *p, size_t size);
    void *ud;
} ftidx_allocator;

typedef struct ftidx ftidx;

/* An index of n fields.  sw: the stopword list (owned from here on, also
 * on failure); NULL: RediSearch's default list.  alloc NULL: malloc.
 * NULL on failure with *err (may be NULL) set: -EINVAL (no fields, an
 * empty or repeated name -- names compare case-sensitively, as
 * RediSearch's do), FTIDX_ELIMIT, -ENOMEM. */
ftidx *ftidx_new(const ftidx_field_def *fields, size_t n, fttok_stopwords *sw,
                 const ftidx_allocator *alloc, int *err);
/* NULL: nothing. */
void ftidx_free(ftidx *ix);

/* The schema. */
size_t ftidx_nfields(const ftidx *ix);
const ftidx_field_def *ftidx_field(const ftidx *ix, size_t i); /* name: NUL-terminated */
/* The field named by the len bytes at name: its number, or -1. */
int ftidx_find(const ftidx *ix, const char *name, size_t len);
const fttok_stopwords *ftidx_stopwords(const ftidx *ix);

/* One field value of a document: the field's number and its bytes. */
typedef struct ftidx_value {
    uint32_t field;
    const char *s;
    size_t len;
} ftidx_value;

/* Index document doc (< FTIDX_DOC_MAX) with n values and a document score
 * (1.0 unless the hash has a SCORE_FIELD), replacing its old entry.
 * Values of VECTOR and NOINDEX fields are ignored.  Returns 0,
 * FTIDX_EVALUE (nothing changed), -EINVAL (a field number out of range,
 * a score that is NaN or negative), FTIDX_ELIMIT, or -ENOMEM (the
 * document is then absent: its old entry gone, the new one not in). */
int ftidx_put(ftidx *ix, uint32_t doc, const ftidx_value *vals, size_t n, double score);
/* Remove doc: 1 if it was indexed, 0 if not. */
int ftidx_del(ftidx *ix, uint32_t doc);
int ftidx_has(const ftidx *ix, uint32_t doc);

/* A TAG field's distinct values (FT.TAGVALS), in byte order, each once:
 * fn(ud, value, len) per value (borrowed for the call).  Returns how many,
 * -EINVAL (not a TAG field) or -ENOMEM. */
typedef void ftidx_tag_fn(void *ud, const char *v, size_t len);
int ftidx_tag_values(const ftidx *ix, uint32_t field, ftidx_tag_fn *fn, void *ud);

/* For FT.INFO. */
typedef struct ftidx_stats {
    uint64_t num_docs;
    uint64_t max_doc_id;   /* the highest id ever indexed */
    uint64_t num_terms;    /* distinct terms in the inverted index (stems included) */
    uint64_t num_records;  /* postings: (term, doc) pairs */
    uint64_t total_doc_len; /* the documents' weighted token counts, summed */
    uint64_t tag_values;   /* distinct (field, value) pairs */
    uint64_t numeric_records;
    size_t inverted_bytes; /* term dictionary and postings */
    size_t tag_bytes;
    size_t numeric_bytes;
    size_t doc_bytes;      /* the document table */
    size_t total_bytes;    /* all of the index's memory (ftidx_memory) */
} ftidx_stats;
void ftidx_get_stats(const ftidx *ix, ftidx_stats *st);
/* Bytes held by the index (what its allocator handed out, the schema and
 * stopwords included). */
size_t ftidx_memory(const ftidx *ix);

#endif
