/* ftq_impl.h -- a compiled query: the tree ftquery.c builds and ftexec.c
 * walks.  Private to src/search/.  Immutable once compiled.
 *
 * Leaves name exactly what they read from the index: QN_TERM one term
 * (a query word already expanded into a QN_UNION of the word, "+stem"
 * and the stem), QN_PREFIX/SUFFIX/CONTAINS/FUZZY a set of terms found at
 * run time, QN_TAGV one tag value (normalised as its field stores them),
 * QN_TAGAFFIX a pattern over a field's tag values, QN_NUM a range. */
#ifndef ENGRAM_FTQ_IMPL_H
#define ENGRAM_FTQ_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "engram/ftquery.h"

enum {
    QN_NONE,     /* matches nothing */
    QN_ALL,      /* `*` */
    QN_TERM,
    QN_PREFIX,
    QN_SUFFIX,
    QN_CONTAINS,
    QN_FUZZY,
    QN_PHRASE,   /* intersection (exact: a quoted phrase) */
    QN_UNION,
    QN_NOT,
    QN_OPT,
    QN_TAG,      /* union of QN_TAGV / QN_TAGAFFIX children over one field */
    QN_TAGV,
    QN_TAGAFFIX,
    QN_NUM,
    QN_VRANGE    /* a vector range clause: ftq.ranges[range], its documents given */
};

#define QN_MASK_ALL UINT64_MAX

typedef struct qnode {
    int type;
    uint64_t mask;     /* text leaves: TEXT fields they may match in */
    double weight;
    int exact;         /* QN_PHRASE from quotes */
    int slop;          /* QN_PHRASE: -1 none */
    int inorder;
    int field;         /* QN_TAG / QN_NUM */
    int affix;         /* QN_TAGAFFIX: QN_PREFIX / QN_SUFFIX / QN_CONTAINS */
    int dist;          /* QN_FUZZY */
    int range;         /* QN_VRANGE: its clause */
    char *str;         /* leaves: NUL-terminated */
    size_t len;
    double lo, hi;
    int lo_incl, hi_incl;
    struct qnode **kid;
    size_t nkid;
    uint32_t id;       /* 0 .. ftq.nnodes-1, for the executor's per-node tables */
} qnode;

struct ftq {
    qnode *root;       /* NULL: matches nothing (an empty or all-stopword query) */
    uint32_t nnodes;
    const ftidx *ix;   /* the schema it was compiled against (for ftq_dump's names) */
    int has_knn;
    ftq_knn knn;
    char *knn_alias;   /* owned copies */
    char *knn_vec;
    ftq_range *ranges;  /* VECTOR_RANGE clauses (their vec and alias owned) */
    size_t nranges;
    uint32_t **rdocs;   /* per clause: the documents it matches, ascending */
    size_t *rndocs;
    uint32_t max_expansions;
    uint32_t min_prefix;
};

void qnode_free(qnode *n);

#endif
