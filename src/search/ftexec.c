/* ftexec.c -- running a compiled query (contract in ftquery.h): the set of
 * matching documents, their scores, the per-document test and the
 * prefilter bitmap.
 *
 * Evaluation: bottom-up over the tree, each node a sorted array of doc
 * ids.  An intersection intersects its positive children (smallest
 * first), subtracts its negated ones, ignores optional ones, and for an
 * exact phrase or a SLOP/INORDER bound keeps the documents whose
 * positions fit; a union merges; `-x` alone is every document minus x.
 * Prefix, suffix, contains and fuzzy leaves first find their terms
 * (skipping "+stem" entries, at most max_expansions of them, in byte
 * order, as RediSearch walks its trie) and are then unions of them.
 *
 * Scores, per matching document, follow RediSearch's src/ext/default.c
 * (our own code): the tree of results is walked as RediSearch's result
 * tree is -- a union holds the children matching this document, an
 * intersection all of its children.  With N documents, df the term's
 * documents, f a posting's frequency (field weights and stems included,
 * see ftindex.h), len / avg the document's and the average length, w the
 * node's $weight:
 *   BM25STD  leaf: w * ln(1 + (N - df + 0.5) / (df + 0.5))
 *                    * f * (k1 + 1) / (f + k1 * (1 - b + b * len / avg))
 *            k1 = 1.2, b = 0.5 (RediSearch's values, as float); sums up
 *            the tree (times each aggregate's w); times the document
 *            score.  `*` scores as one term of f = 1, idf 1; tag and
 *            numeric leaves score 0.
 *   BM25     leaf: w * idf * f / (f + k1 * (1 - b + b * avg)), the same
 *            k1, b; idf below; summed; times the document score, divided
 *            by the slop.  Numeric leaves and `*` count as f = 1, idf 1.
 *   TFIDF    leaf: w * f * idf, idf = logb(1 + (N + 1) / df) (a whole
 *            number); summed; times the document score, divided by the
 *            document's largest term frequency (TFIDF.DOCNORM: by its
 *            length), then by the slop; 0 when the document score is 0.
 *            Numeric leaves and `*` count w * 1.
 *   DISMAX   leaf: w * f (tags, numbers, `*`: 1); intersections sum,
 *            unions take the largest.
 *   DOCSCORE the document score.
 * The slop (RediSearch's IndexResult_MinOffsetDelta) is taken over the
 * top result's children that carry positions, in order: for each
 * neighbouring pair the smallest distance found by walking both position
 * lists (stopping once it is 1 or less), squared and summed; the slop is
 * the whole square root of the sum, or, if it is 0, the number of
 * children minus one; 1 when the top result is a single leaf.
 *
 * Where engram differs: RediSearch counts N and df from its doc table and
 * inverted-index headers, which keep deleted documents until its garbage
 * collector runs; engram removes them at once, so scores after deletions
 * are what RediSearch gives after a GC.  A document without TEXT has a
 * largest frequency of 0: TFIDF divides by 1 instead (RediSearch's
 * MOD-9423 produced inf or NaN there).  Negated and optional children
 * that do not match contribute 0 and carry no positions.
 *
 * Threads: reads the index and the query only; every buffer is the
 * caller's run's own (malloc). */
#include "ft_impl.h"
#include "ftq_impl.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BM_K1 1.2f
#define BM_B 0.5f
#define POS_EOF UINT32_MAX

typedef struct dset {
    uint32_t *d;
    size_t n;
} dset;

typedef struct xctx {
    const ftq *q;
    const ftidx *ix;
    const ftterm ***terms;   /* by node id: the terms a text leaf reads */
    uint32_t *nterms;
    const fttagval ***tags;  /* by node id: the values a tag leaf reads */
    uint32_t *ntags;
    int failed;
} xctx;

/* ---- sets -------------------------------------------------------------- */

static int set_alloc(dset *s, size_t n)
{
    s->n = 0;
    s->d = malloc((n ? n : 1) * sizeof *s->d);
    return s->d ? 0 : -ENOMEM;
}

static void set_all(const ftidx *ix, dset *s)
{
    for (uint32_t d = 0; d < ix->ndocslots; d++)
        if (ix->docs[d].present) s->d[s->n++] = d;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static void sort_unique(dset *s)
{
    if (s->n < 2) return;
    qsort(s->d, s->n, sizeof *s->d, cmp_u32);
    size_t o = 1;
    for (size_t i = 1; i < s->n; i++)
        if (s->d[i] != s->d[o - 1]) s->d[o++] = s->d[i];
    s->n = o;
}

/* a := a AND b */
static void set_and(dset *a, const dset *b)
{
    size_t i = 0, j = 0, o = 0;
    while (i < a->n && j < b->n) {
        if (a->d[i] < b->d[j]) i++;
        else if (a->d[i] > b->d[j]) j++;
        else {
            a->d[o++] = a->d[i];
            i++;
            j++;
        }
    }
    a->n = o;
}

/* a := a AND NOT b */
static void set_minus(dset *a, const dset *b)
{
    size_t i = 0, j = 0, o = 0;
    while (i < a->n) {
        while (j < b->n && b->d[j] < a->d[i]) j++;
        if (j < b->n && b->d[j] == a->d[i]) {
            i++;
            continue;
        }
        a->d[o++] = a->d[i++];
    }
    a->n = o;
}

static int set_in(const dset *s, uint32_t d)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->d[mid] < d) lo = mid + 1;
        else hi = mid;
    }
    return lo < s->n && s->d[lo] == d;
}

/* ---- leaf expansion ------------------------------------------------------ */

static int cmp_key(const void *a, const void *b)
{
    const ftkey *x = *(const ftkey *const *)a, *y = *(const ftkey *const *)b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->s, y->s, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* Levenshtein distance of a and b, or > max when it is over max. */
static uint32_t lev(const char *a, size_t an, const char *b, size_t bn, uint32_t max)
{
    if ((an > bn ? an - bn : bn - an) > max) return max + 1;
    uint32_t row[256];
    if (bn >= 256) return max + 1;
    for (size_t j = 0; j <= bn; j++) row[j] = (uint32_t)j;
    for (size_t i = 1; i <= an; i++) {
        uint32_t prev = row[0], best;
        row[0] = (uint32_t)i;
        best = row[0];
        for (size_t j = 1; j <= bn; j++) {
            uint32_t cur = row[j];
            uint32_t sub = prev + (a[i - 1] != b[j - 1]);
            uint32_t v = row[j] + 1 < row[j - 1] + 1 ? row[j] + 1 : row[j - 1] + 1;
            row[j] = v < sub ? v : sub;
            prev = cur;
            if (row[j] < best) best = row[j];
        }
        if (best > max) return max + 1;
    }
    return row[bn];
}

static int affix_match(int kind, const char *s, size_t n, const char *pat, size_t pn)
{
    if (pn > n) return 0;
    if (kind == QN_PREFIX) return memcmp(s, pat, pn) == 0;
    if (kind == QN_SUFFIX) return memcmp(s + n - pn, pat, pn) == 0;
    for (size_t i = 0; i + pn <= n; i++)
        if (memcmp(s + i, pat, pn) == 0) return 1;
    return 0;
}

/* The keys of d that node n selects (sorted, at most max), into *out. */
static int scan_keys(const ftdict *d, const qnode *n, int kind, uint32_t max, uint32_t minlen,
                     int skip_stems, const ftkey ***out, uint32_t *nout)
{
    *out = NULL;
    *nout = 0;
    if (kind != QN_FUZZY && n->len < minlen) return 0;
    const ftkey **k = malloc((d->n ? d->n : 1) * sizeof *k);
    if (!k) return -ENOMEM;
    uint32_t c = 0;
    for (size_t i = 0; i < d->cap; i++) {
        const ftkey *key = d->slot[i];
        if (!key || (skip_stems && key->len && key->s[0] == FTTOK_STEM_PREFIX)) continue;
        int ok = kind == QN_FUZZY
                     ? lev(n->str, n->len, key->s, key->len, (uint32_t)n->dist) <= (uint32_t)n->dist
                     : affix_match(kind, key->s, key->len, n->str, n->len);
        if (ok) k[c++] = key;
    }
    qsort(k, c, sizeof *k, cmp_key);
    if (c > max) c = max;
    *out = k;
    *nout = c;
    return 0;
}

/* A table entry of one pointer (p NULL: none). */
static int one_entry(const void ***slot, uint32_t *n, const void *p)
{
    if (!p) return 0;
    *slot = malloc(sizeof **slot);
    if (!*slot) return -ENOMEM;
    (*slot)[0] = p;
    *n = 1;
    return 0;
}

static int prepare(xctx *x, const qnode *n)
{
    if (!n) return 0;
    const ftidx *ix = x->ix;
    switch (n->type) {
    case QN_TERM:
        if (one_entry((const void ***)&x->terms[n->id], &x->nterms[n->id],
                      ftidx_term(ix, n->str, n->len)))
            return -ENOMEM;
        break;
    case QN_PREFIX:
    case QN_SUFFIX:
    case QN_CONTAINS:
    case QN_FUZZY:
        if (scan_keys(&ix->terms, n, n->type, x->q->max_expansions, x->q->min_prefix, 1,
                      (const ftkey ***)&x->terms[n->id], &x->nterms[n->id]))
            return -ENOMEM;
        break;
    case QN_TAGV:
        if (n->field >= 0 && one_entry((const void ***)&x->tags[n->id], &x->ntags[n->id],
                                       ftidx_tag(ix, (uint32_t)n->field, n->str, n->len)))
            return -ENOMEM;
        break;
    case QN_TAGAFFIX:
        if (n->field >= 0 &&
            scan_keys(&ix->fields[n->field].tags, n, n->affix, x->q->max_expansions,
                      x->q->min_prefix, 0, (const ftkey ***)&x->tags[n->id], &x->ntags[n->id]))
            return -ENOMEM;
        break;
    default:
        break;
    }
    for (size_t i = 0; i < n->nkid; i++)
        if (prepare(x, n->kid[i])) return -ENOMEM;
    return 0;
}

static int ctx_init(xctx *x, const ftq *q, const ftidx *ix)
{
    memset(x, 0, sizeof *x);
    x->q = q;
    x->ix = ix;
    size_t n = q->nnodes ? q->nnodes : 1;
    x->terms = calloc(n, sizeof *x->terms);
    x->nterms = calloc(n, sizeof *x->nterms);
    x->tags = calloc(n, sizeof *x->tags);
    x->ntags = calloc(n, sizeof *x->ntags);
    if (!x->terms || !x->nterms || !x->tags || !x->ntags) return -ENOMEM;
    return prepare(x, q->root);
}

static void ctx_fini(xctx *x)
{
    for (uint32_t i = 0; x->terms && i < x->q->nnodes; i++) {
        free((void *)x->terms[i]);
        free((void *)x->tags[i]);
    }
    free(x->terms);
    free(x->nterms);
    free(x->tags);
    free(x->ntags);
}

/* ---- positions ------------------------------------------------------------ */

typedef struct posbuf {
    uint32_t *p;
    size_t n, cap;
} posbuf;

static int pos_push(posbuf *b, uint32_t v)
{
    if (b->n == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 16;
        uint32_t *np = realloc(b->p, nc * sizeof *np);
        if (!np) return -ENOMEM;
        b->p = np;
        b->cap = nc;
    }
    b->p[b->n++] = v;
    return 0;
}

static int match_doc(const xctx *x, const qnode *n, uint32_t doc);

/* The posting of text leaf n's i-th term in doc, if it is in n's fields. */
static const ftpost *leaf_post(const xctx *x, const qnode *n, uint32_t i, uint32_t doc)
{
    const ftpost *p = ftterm_find(x->terms[n->id][i], doc);
    return p && (p->mask & n->mask) ? p : NULL;
}

/* Append the positions the leaves under n have in doc (unsorted).  Out of
 * memory, positions are dropped (a phrase may then miss): the buffers are
 * the size of one document's occurrences of a few terms. */
static void gather_pos(const xctx *x, const qnode *n, uint32_t doc, posbuf *b)
{
    switch (n->type) {
    case QN_TERM:
    case QN_PREFIX:
    case QN_SUFFIX:
    case QN_CONTAINS:
    case QN_FUZZY:
        for (uint32_t i = 0; i < x->nterms[n->id]; i++) {
            const ftpost *p = leaf_post(x, n, i, doc);
            if (!p) continue;
            const uint32_t *ps = ftpost_positions(p);
            for (uint32_t j = 0; j < p->npos; j++) pos_push(b, ps[j]);
        }
        return;
    case QN_NOT:
    case QN_TAG:
    case QN_NUM:
    case QN_VRANGE:
    case QN_ALL:
    case QN_NONE:
        return;
    default:
        for (size_t i = 0; i < n->nkid; i++)
            if (n->kid[i]->type != QN_NOT && match_doc(x, n->kid[i], doc))
                gather_pos(x, n->kid[i], doc, b);
    }
}

static void sort_pos(posbuf *b)
{
    if (b->n > 1) qsort(b->p, b->n, sizeof *b->p, cmp_u32);
}

/* Within slop, in order or not (RediSearch's IndexResult_IsWithinRange
 * semantics: in order, a word may share its predecessor's position). */
static int within(posbuf *L, size_t k, int slop, int inorder)
{
    if (k < 2) return 1;
    if (inorder) {
        size_t cur[64];
        if (k > 64) return 1;
        memset(cur, 0, sizeof cur);
        for (size_t s = 0; s < L[0].n; s++) {
            uint32_t last = L[0].p[s];
            long span = 0;
            size_t i;
            for (i = 1; i < k; i++) {
                while (cur[i] < L[i].n && L[i].p[cur[i]] < last) cur[i]++;
                if (cur[i] == L[i].n) return 0;
                uint32_t pos = L[i].p[cur[i]];
                span += (long)pos - (long)last - 1;
                last = pos;
                if (span > slop) break;
            }
            if (i == k && span <= slop) return 1;
        }
        return 0;
    }
    size_t at[64];
    if (k > 64) return 1;
    uint32_t max = 0;
    for (size_t i = 0; i < k; i++) {
        at[i] = 0;
        if (L[i].p[0] >= max) max = L[i].p[0];
    }
    for (;;) {
        size_t mi = 0;
        uint32_t min = L[0].p[at[0]];
        for (size_t i = 1; i < k; i++)
            if (L[i].p[at[i]] < min) {
                min = L[i].p[at[i]];
                mi = i;
            }
        if (min != max && (long)max - (long)min - (long)(k - 1) <= slop) return 1;
        if (++at[mi] == L[mi].n) return 0;
        if (L[mi].p[at[mi]] > max) max = L[mi].p[at[mi]];
    }
}

/* Does the intersection n's positional condition hold in doc? */
static int phrase_fits(const xctx *x, const qnode *n, uint32_t doc)
{
    int slop = n->exact ? 0 : n->slop;
    int inorder = n->exact ? 1 : n->inorder;
    if (slop < 0) return 1;
    posbuf L[64];
    size_t k = 0;
    int ok = 1;
    for (size_t i = 0; i < n->nkid && k < 64; i++) {
        const qnode *c = n->kid[i];
        if (c->type == QN_NOT || c->type == QN_OPT) continue;
        L[k] = (posbuf){ 0 };
        gather_pos(x, c, doc, &L[k]);
        if (!L[k].n) {
            free(L[k].p);
            continue;
        }
        sort_pos(&L[k]);
        k++;
    }
    ok = within(L, k, slop, inorder);
    for (size_t i = 0; i < k; i++) free(L[i].p);
    return ok;
}

/* ---- per-document matching --------------------------------------------------- */

static int num_has(const ftidx *ix, int field, uint32_t doc, const qnode *n)
{
    const ftdoc *d = &ix->docs[doc];
    for (uint32_t i = 0; i < d->nref; i++) {
        const ftdocref *r = &d->ref[i];
        if (r->field != (uint32_t)field) continue;
        double v = r->u.num;
        if ((n->lo_incl ? v >= n->lo : v > n->lo) && (n->hi_incl ? v <= n->hi : v < n->hi)) return 1;
    }
    return 0;
}

static int tag_has(const fttagval *v, uint32_t doc)
{
    dset s = { v->docs, v->n };
    return set_in(&s, doc);
}

static int match_doc(const xctx *x, const qnode *n, uint32_t doc)
{
    const ftidx *ix = x->ix;
    if (doc >= ix->ndocslots || !ix->docs[doc].present) return 0;
    switch (n->type) {
    case QN_NONE:
        return 0;
    case QN_ALL:
    case QN_OPT:
        return 1;
    case QN_TERM:
    case QN_PREFIX:
    case QN_SUFFIX:
    case QN_CONTAINS:
    case QN_FUZZY:
        for (uint32_t i = 0; i < x->nterms[n->id]; i++)
            if (leaf_post(x, n, i, doc)) return 1;
        return 0;
    case QN_TAGV:
    case QN_TAGAFFIX:
        for (uint32_t i = 0; i < x->ntags[n->id]; i++)
            if (tag_has(x->tags[n->id][i], doc)) return 1;
        return 0;
    case QN_NUM:
        return n->field >= 0 && num_has(ix, n->field, doc, n);
    case QN_VRANGE: {
        dset s = { x->q->rdocs[n->range], x->q->rndocs[n->range] };
        return s.d && set_in(&s, doc);
    }
    case QN_NOT:
        return !match_doc(x, n->kid[0], doc);
    case QN_UNION:
    case QN_TAG:
        for (size_t i = 0; i < n->nkid; i++)
            if (match_doc(x, n->kid[i], doc)) return 1;
        return 0;
    case QN_PHRASE:
        for (size_t i = 0; i < n->nkid; i++)
            if (!match_doc(x, n->kid[i], doc)) return 0;
        return phrase_fits(x, n, doc);
    }
    return 0;
}

/* ---- set evaluation ---------------------------------------------------------- */

static int eval(xctx *x, const qnode *n, dset *out);

static int eval_union_terms(const xctx *x, const qnode *n, const ftterm *const *t, uint32_t nt, dset *out)
{
    size_t total = 0;
    for (uint32_t i = 0; i < nt; i++) total += t[i]->n;
    if (set_alloc(out, total)) return -ENOMEM;
    for (uint32_t i = 0; i < nt; i++)
        for (uint32_t j = 0; j < t[i]->n; j++)
            if (t[i]->post[j].mask & n->mask) out->d[out->n++] = t[i]->post[j].doc;
    if (nt > 1) sort_unique(out);
    return 0;
}

static int eval_tags(const fttagval *const *v, uint32_t nv, dset *out)
{
    size_t total = 0;
    for (uint32_t i = 0; i < nv; i++) total += v[i]->n;
    if (set_alloc(out, total)) return -ENOMEM;
    for (uint32_t i = 0; i < nv; i++) {
        memcpy(out->d + out->n, v[i]->docs, v[i]->n * sizeof *out->d);
        out->n += v[i]->n;
    }
    if (nv > 1) sort_unique(out);
    return 0;
}

static int eval_num(const xctx *x, const qnode *n, dset *out)
{
    if (n->field < 0 || x->ix->fields[n->field].def.kind != FTIDX_NUMERIC) return set_alloc(out, 0);
    const ftfield *f = &x->ix->fields[n->field];
    uint32_t lo = 0, hi = f->nnum;
    /* first value inside the lower bound */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        double v = f->nums[mid].v;
        if (n->lo_incl ? v < n->lo : v <= n->lo) lo = mid + 1;
        else hi = mid;
    }
    uint32_t start = lo;
    hi = f->nnum;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        double v = f->nums[mid].v;
        if (n->hi_incl ? v <= n->hi : v < n->hi) lo = mid + 1;
        else hi = mid;
    }
    if (set_alloc(out, lo > start ? lo - start : 0)) return -ENOMEM;
    for (uint32_t i = start; i < lo; i++) out->d[out->n++] = f->nums[i].doc;
    sort_unique(out);
    return 0;
}

static int eval_and(xctx *x, const qnode *n, dset *out)
{
    dset *pos = calloc(n->nkid ? n->nkid : 1, sizeof *pos);
    if (!pos) return -ENOMEM;
    size_t np = 0;
    int rc = 0;
    for (size_t i = 0; i < n->nkid && !rc; i++) {
        const qnode *c = n->kid[i];
        if (c->type == QN_NOT || c->type == QN_OPT) continue;
        rc = eval(x, c, &pos[np]);
        if (!rc) np++;
    }
    if (!rc && np == 0) { /* only negations: start from everything */
        rc = set_alloc(&pos[0], x->ix->num_docs);
        if (!rc) {
            set_all(x->ix, &pos[0]);
            np = 1;
        }
    }
    if (!rc) {
        size_t small = 0;
        for (size_t i = 1; i < np; i++)
            if (pos[i].n < pos[small].n) small = i;
        *out = pos[small];
        pos[small] = (dset){ 0 };
        for (size_t i = 0; i < np; i++)
            if (i != small) set_and(out, &pos[i]);
        for (size_t i = 0; i < n->nkid && !rc; i++) {
            const qnode *c = n->kid[i];
            if (c->type != QN_NOT) continue;
            dset neg;
            rc = eval(x, c->kid[0], &neg);
            if (!rc) set_minus(out, &neg);
            free(neg.d);
        }
        if (!rc && (n->exact || n->slop >= 0)) {
            size_t o = 0;
            for (size_t i = 0; i < out->n; i++)
                if (phrase_fits(x, n, out->d[i])) out->d[o++] = out->d[i];
            out->n = o;
        }
        if (rc) {
            free(out->d);
            out->d = NULL;
        }
    }
    for (size_t i = 0; i < np; i++) free(pos[i].d);
    free(pos);
    return rc;
}

static int eval_or(xctx *x, const qnode *n, dset *out)
{
    dset *k = calloc(n->nkid ? n->nkid : 1, sizeof *k);
    if (!k) return -ENOMEM;
    size_t total = 0, done = 0;
    int rc = 0;
    for (; done < n->nkid && !rc; done++) {
        rc = eval(x, n->kid[done], &k[done]);
        if (!rc) total += k[done].n;
    }
    if (!rc && !(rc = set_alloc(out, total))) {
        for (size_t i = 0; i < n->nkid; i++) {
            memcpy(out->d + out->n, k[i].d, k[i].n * sizeof *out->d);
            out->n += k[i].n;
        }
        sort_unique(out);
    }
    for (size_t i = 0; i < done; i++) free(k[i].d);
    free(k);
    return rc;
}

static int eval(xctx *x, const qnode *n, dset *out)
{
    out->d = NULL;
    out->n = 0;
    switch (n->type) {
    case QN_NONE:
        return set_alloc(out, 0);
    case QN_ALL:
    case QN_OPT:
        if (set_alloc(out, x->ix->num_docs)) return -ENOMEM;
        set_all(x->ix, out);
        return 0;
    case QN_TERM:
    case QN_PREFIX:
    case QN_SUFFIX:
    case QN_CONTAINS:
    case QN_FUZZY:
        return eval_union_terms(x, n, x->terms[n->id], x->nterms[n->id], out);
    case QN_TAGV:
    case QN_TAGAFFIX:
        return eval_tags(x->tags[n->id], x->ntags[n->id], out);
    case QN_NUM:
        return eval_num(x, n, out);
    case QN_VRANGE: {
        /* the caller's set, less documents gone since */
        const uint32_t *d = x->q->rdocs[n->range];
        size_t nd = d ? x->q->rndocs[n->range] : 0;
        if (set_alloc(out, nd)) return -ENOMEM;
        for (size_t i = 0; i < nd; i++)
            if (d[i] < x->ix->ndocslots && x->ix->docs[d[i]].present) out->d[out->n++] = d[i];
        return 0;
    }
    case QN_NOT: {
        dset all, neg;
        if (set_alloc(&all, x->ix->num_docs)) return -ENOMEM;
        set_all(x->ix, &all);
        if (eval(x, n->kid[0], &neg)) {
            free(all.d);
            return -ENOMEM;
        }
        set_minus(&all, &neg);
        free(neg.d);
        *out = all;
        return 0;
    }
    case QN_UNION:
    case QN_TAG:
        if (n->type == QN_TAG && (n->field < 0 || x->ix->fields[n->field].def.kind != FTIDX_TAG))
            return set_alloc(out, 0);
        return eval_or(x, n, out);
    case QN_PHRASE:
        return eval_and(x, n, out);
    }
    return set_alloc(out, 0);
}

/* ---- scores -------------------------------------------------------------------- */

typedef struct sctx {
    const xctx *x;
    ftq_scorer sc;
    double n_docs;
    double avg;
    const ftdoc *doc;
    uint32_t id;
} sctx;

static double idf_tfidf(double n, double df)
{
    double v = 1.0 + (n + 1) / (df ? df : 1);
    return (double)ilogb(v);
}

static double idf_bm25(double n, double df)
{
    if (n < df) n = df;
    return log(1.0 + (n - df + 0.5) / (df + 0.5));
}

/* One term's posting. */
static double term_score(const sctx *s, const ftterm *t, const ftpost *p, double w)
{
    double f = p->freq;
    switch (s->sc) {
    case FTQ_BM25STD: {
        double ratio = s->avg > 0 ? (double)(float)s->doc->len / s->avg : 1.0;
        return w * idf_bm25(s->n_docs, t->n) * f * (BM_K1 + 1) /
               (f + BM_K1 * (1.0f - BM_B + BM_B * ratio));
    }
    case FTQ_BM25:
        return w * idf_tfidf(s->n_docs, t->n) * f / (f + BM_K1 * (1.0f - BM_B + BM_B * s->avg));
    case FTQ_TFIDF:
    case FTQ_TFIDF_DOCNORM:
        return w * f * idf_tfidf(s->n_docs, t->n);
    default:
        return w * f;
    }
}

/* A virtual result of frequency 1 (`*`, an optional match's stand-in). */
static double virtual_score(const sctx *s, double w)
{
    switch (s->sc) {
    case FTQ_BM25STD: {
        double ratio = s->avg > 0 ? (double)(float)s->doc->len / s->avg : 1.0;
        return w * 1.0 * (BM_K1 + 1) / (1.0 + BM_K1 * (1.0f - BM_B + BM_B * ratio));
    }
    case FTQ_BM25:
        return w / (1.0 + BM_K1 * (1.0f - BM_B + BM_B * s->avg));
    default:
        return w;
    }
}

/* The score of node n in the matching document (n matches it). */
static double score_node(const sctx *s, const qnode *n)
{
    const xctx *x = s->x;
    uint32_t doc = s->id;
    double sum = 0;
    int dismax = s->sc == FTQ_DISMAX;
    switch (n->type) {
    case QN_ALL:
        return virtual_score(s, n->weight);
    case QN_TERM:
        if (x->nterms[n->id] == 1) {
            const ftpost *p = leaf_post(x, n, 0, doc);
            return p ? term_score(s, x->terms[n->id][0], p, n->weight) : 0;
        }
        return 0;
    case QN_PREFIX:
    case QN_SUFFIX:
    case QN_CONTAINS:
    case QN_FUZZY:
        for (uint32_t i = 0; i < x->nterms[n->id]; i++) {
            const ftpost *p = leaf_post(x, n, i, doc);
            if (!p) continue;
            double v = term_score(s, x->terms[n->id][i], p, 1.0);
            sum = dismax ? (v > sum ? v : sum) : sum + v;
        }
        return n->weight * sum;
    case QN_TAGV:
    case QN_TAGAFFIX:
        return dismax ? n->weight : 0;
    case QN_NUM:
    case QN_VRANGE:
        return s->sc == FTQ_BM25STD ? 0 : virtual_score(s, n->weight);
    case QN_NOT:
    case QN_NONE:
        return 0;
    case QN_OPT:
        return match_doc(x, n->kid[0], doc) ? n->weight * score_node(s, n->kid[0]) : 0;
    case QN_UNION:
    case QN_TAG:
        for (size_t i = 0; i < n->nkid; i++) {
            if (!match_doc(x, n->kid[i], doc)) continue;
            double v = score_node(s, n->kid[i]);
            sum = dismax ? (v > sum ? v : sum) : sum + v;
        }
        return n->weight * sum;
    case QN_PHRASE:
        for (size_t i = 0; i < n->nkid; i++) sum += score_node(s, n->kid[i]);
        return n->weight * sum;
    }
    return 0;
}

/* RediSearch's slop over the top result's children. */
static int slop_of(const xctx *x, const qnode *root, uint32_t doc)
{
    if (root->type != QN_PHRASE && root->type != QN_UNION && root->type != QN_TAG) return 1;
    posbuf L[64];
    size_t k = 0, nchildren = 0;
    for (size_t i = 0; i < root->nkid && k < 64; i++) {
        const qnode *c = root->kid[i];
        if (root->type != QN_PHRASE && !match_doc(x, c, doc)) continue;
        nchildren++;
        if (c->type == QN_NOT || (c->type == QN_OPT && !match_doc(x, c->kid[0], doc))) continue;
        L[k] = (posbuf){ 0 };
        gather_pos(x, c->type == QN_OPT ? c->kid[0] : c, doc, &L[k]);
        if (!L[k].n) {
            free(L[k].p);
            continue;
        }
        sort_pos(&L[k]);
        k++;
    }
    if (nchildren <= 1) {
        for (size_t i = 0; i < k; i++) free(L[i].p);
        return 1;
    }
    long dist = 0;
    for (size_t i = 0; i + 1 < k; i++) {
        size_t a = 0, b = 0;
        uint32_t p1 = L[i].p[0], p2 = L[i + 1].p[0];
        long cd = p2 > p1 ? (long)(p2 - p1) : (long)(p1 - p2);
        while (cd > 1 && p1 != POS_EOF && p2 != POS_EOF) {
            long d = p2 > p1 ? (long)(p2 - p1) : (long)(p1 - p2);
            if (d < cd) cd = d;
            if (p2 > p1) p1 = ++a < L[i].n ? L[i].p[a] : POS_EOF;
            else p2 = ++b < L[i + 1].n ? L[i + 1].p[b] : POS_EOF;
        }
        dist += cd * cd;
    }
    for (size_t i = 0; i < k; i++) free(L[i].p);
    return dist ? (int)sqrt((double)dist) : (int)nchildren - 1;
}

static double score_doc(const xctx *x, ftq_scorer sc, uint32_t doc)
{
    const ftidx *ix = x->ix;
    const ftdoc *d = &ix->docs[doc];
    sctx s = { .x = x, .sc = sc, .n_docs = (double)ix->num_docs,
               .avg = ix->num_docs ? (double)ix->total_len / (double)ix->num_docs : 0,
               .doc = d, .id = doc };
    const qnode *root = x->q->root;
    switch (sc) {
    case FTQ_DOCSCORE:
        return d->score;
    case FTQ_DISMAX:
        return score_node(&s, root);
    case FTQ_BM25STD:
        return d->score * score_node(&s, root);
    case FTQ_BM25:
        return d->score * score_node(&s, root) / slop_of(x, root, doc);
    case FTQ_TFIDF:
    case FTQ_TFIDF_DOCNORM: {
        if (d->score == 0) return 0;
        uint32_t norm = sc == FTQ_TFIDF ? d->maxfreq : d->len;
        double v = d->score * score_node(&s, root) / (norm ? norm : 1);
        return v / slop_of(x, root, doc);
    }
    }
    return 0;
}

/* ---- the entry points --------------------------------------------------------- */

int ftq_scorer_parse(const char *name, size_t len)
{
    static const struct {
        const char *n;
        int sc;
    } tab[] = { { "BM25STD", FTQ_BM25STD }, { "BM25", FTQ_BM25 }, { "TFIDF", FTQ_TFIDF },
                { "TFIDF.DOCNORM", FTQ_TFIDF_DOCNORM }, { "DISMAX", FTQ_DISMAX },
                { "DOCSCORE", FTQ_DOCSCORE } };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (strlen(tab[i].n) == len && strncasecmp(tab[i].n, name, len) == 0) return tab[i].sc;
    return -1;
}

static int run_set(const ftq *q, const ftidx *ix, xctx *x, dset *set)
{
    set->d = NULL;
    set->n = 0;
    if (ctx_init(x, q, ix)) return -ENOMEM;
    if (!q->root) return set_alloc(set, 0);
    return eval(x, q->root, set);
}

int ftq_run(const ftq *q, const ftidx *ix, ftq_scorer sc, ftq_result *res)
{
    res->hits = NULL;
    res->n = 0;
    xctx x;
    dset set;
    int rc = run_set(q, ix, &x, &set);
    if (!rc) {
        res->hits = malloc((set.n ? set.n : 1) * sizeof *res->hits);
        if (!res->hits) {
            rc = -ENOMEM;
        } else {
            for (size_t i = 0; i < set.n; i++)
                res->hits[i] = (ftq_hit){ set.d[i], score_doc(&x, sc, set.d[i]) };
            res->n = set.n;
        }
    }
    free(set.d);
    ctx_fini(&x);
    return rc;
}

void ftq_result_fini(ftq_result *res)
{
    free(res->hits);
    res->hits = NULL;
    res->n = 0;
}

static int cmp_hit(const void *a, const void *b)
{
    const ftq_hit *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return (x->doc > y->doc) - (x->doc < y->doc);
}

void ftq_sort_by_score(ftq_hit *hits, size_t n)
{
    qsort(hits, n, sizeof *hits, cmp_hit);
}

int ftq_match(const ftq *q, const ftidx *ix, uint32_t doc)
{
    if (!q->root) return 0;
    xctx x;
    int r = 0;
    if (!ctx_init(&x, q, ix)) r = match_doc(&x, q->root, doc);
    ctx_fini(&x);
    return r;
}

struct ftq_filter {
    uint64_t *bits;
    uint32_t nbits;
    size_t count;
};

int ftq_filter_new(const ftq *q, const ftidx *ix, ftq_filter **out)
{
    *out = NULL;
    ftq_filter *f = calloc(1, sizeof *f);
    if (!f) return -ENOMEM;
    xctx x;
    dset set;
    int rc = run_set(q, ix, &x, &set);
    ctx_fini(&x);
    if (!rc) {
        f->nbits = ix->ndocslots;
        f->bits = calloc((f->nbits + 63) / 64 + 1, sizeof *f->bits);
        if (!f->bits) rc = -ENOMEM;
    }
    if (rc) {
        free(set.d);
        ftq_filter_free(f);
        return rc;
    }
    for (size_t i = 0; i < set.n; i++) f->bits[set.d[i] >> 6] |= (uint64_t)1 << (set.d[i] & 63);
    f->count = set.n;
    free(set.d);
    *out = f;
    return 0;
}

int ftq_filter_accept(void *filter, uint32_t doc)
{
    const ftq_filter *f = filter;
    return doc < f->nbits && (f->bits[doc >> 6] >> (doc & 63)) & 1;
}

size_t ftq_filter_count(const ftq_filter *f)
{
    return f->count;
}

void ftq_filter_free(ftq_filter *f)
{
    if (!f) return;
    free(f->bits);
    free(f);
}
