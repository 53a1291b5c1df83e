/* ft_impl.h -- the index's insides, shared by ftidx.c (which writes them)
 * and ftexec.c (which only reads them, from any number of threads under
 * the caller's read lock).  Private to src/search/.
 *
 * Layout:
 *   - a counted allocator (ftmem): every block the index holds goes
 *     through it, so ftidx_memory is a field;
 *   - a string-keyed open-addressing table (ftdict) of objects whose first
 *     member is an ftkey: the term dictionary, and each TAG field's values;
 *   - terms: postings sorted by doc id, positions inline when one;
 *   - tag values: sorted doc-id arrays;
 *   - numeric fields: (value, doc) pairs sorted by value, then doc;
 *   - the document table, indexed by doc id: what each document added, so
 *     removing it finds every entry without a scan. */
#ifndef ENGRAM_FT_IMPL_H
#define ENGRAM_FT_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "engram/ftindex.h"

typedef struct ftmem {
    ftidx_allocator al;
    size_t bytes;
} ftmem;

void *ftmem_alloc(ftmem *m, size_t n);
void *ftmem_realloc(ftmem *m, void *p, size_t old, size_t n);
void ftmem_free(ftmem *m, void *p, size_t n);

typedef struct ftkey {
    char *s;       /* NUL-terminated copy */
    uint32_t len;
    uint32_t hash;
} ftkey;

typedef struct ftdict {
    ftkey **slot; /* cap slots, NULL: empty */
    size_t cap;   /* a power of two, or 0 */
    size_t n;
} ftdict;

uint32_t ftdict_hash(const char *s, size_t len);
ftkey *ftdict_get(const ftdict *d, const char *s, size_t len, uint32_t hash);
int ftdict_add(ftmem *m, ftdict *d, ftkey *k); /* k not present; 0 or -ENOMEM */
void ftdict_remove(ftdict *d, ftkey *k);
void ftdict_fini(ftmem *m, ftdict *d);

/* A posting: one document's occurrences of a term. */
typedef struct ftpost {
    uint32_t doc;
    uint32_t freq;   /* weighted occurrences */
    uint64_t mask;   /* TEXT fields (by text-field number) it occurs in */
    uint32_t npos;
    union {
        uint32_t one;    /* npos == 1 */
        uint32_t *many;  /* npos > 1: sorted */
    } pos;
} ftpost;

static inline const uint32_t *ftpost_positions(const ftpost *p)
{
    return p->npos == 1 ? &p->pos.one : p->pos.many;
}

typedef struct ftterm {
    ftkey key;
    uint32_t n, cap;
    ftpost *post; /* sorted by doc */
} ftterm;

typedef struct fttagval {
    ftkey key;
    uint32_t n, cap;
    uint32_t *docs; /* sorted */
} fttagval;

typedef struct ftnum {
    double v;
    uint32_t doc;
} ftnum;

/* A field as the index keeps it. */
typedef struct ftfield {
    ftidx_field_def def;  /* def.name: our NUL-terminated copy */
    int text_bit;         /* TEXT: its bit in masks, else -1 */
    ftdict tags;          /* TAG: value -> fttagval */
    ftnum *nums;          /* NUMERIC: sorted pairs */
    uint32_t nnum, capnum;
} ftfield;

/* What a document added, for its removal. */
typedef struct ftdocref {
    uint32_t field;
    union {
        ftterm *term;  /* field == UINT32_MAX: a term */
        fttagval *tag;
        double num;
    } u;
} ftdocref;

typedef struct ftdoc {
    uint8_t present;
    double score;
    uint32_t len;      /* weighted raw tokens */
    uint32_t maxfreq;  /* the largest posting frequency, stems included */
    uint32_t nref, capref;
    ftdocref *ref;
} ftdoc;

#define FTDOC_TERM UINT32_MAX

struct ftidx {
    ftmem mem;
    ftfield *fields;
    size_t nfields, fields_cap;
    size_t schema_bytes;
    fttok_stopwords *sw; /* NULL: the default list */
    ftdict terms;         /* -> ftterm */
    uint64_t nrecords;
    ftdoc *docs;
    uint32_t ndocslots;   /* docs[] has this many entries */
    uint64_t num_docs;
    uint64_t max_doc;
    uint64_t total_len;
    uint64_t ntagvals, nnums;
};

/* Lookups the executor shares. */
const ftterm *ftidx_term(const ftidx *ix, const char *s, size_t len);
const ftpost *ftterm_find(const ftterm *t, uint32_t doc);
const fttagval *ftidx_tag(const ftidx *ix, uint32_t field, const char *s, size_t len);

#endif
