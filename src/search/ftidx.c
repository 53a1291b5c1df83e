/* ftidx.c -- the document index (contract in ftindex.h, layout in
 * ft_impl.h).
 *
 * Learned from RediSearch (our own words and code, nothing copied):
 *   - src/forward_index.c: a document is first gathered into a forward
 *     index (term -> frequency, fields, positions), then merged into the
 *     inverted index.  A token adds max(1, (uint32)weight) to its term's
 *     frequency and to the document's length; its stem adds
 *     max(1, (uint32)(weight * 0.2)) to the stem's frequency only; the
 *     document's max frequency is the largest of them all (stems too).
 *     That length and max frequency are what BM25 and TFIDF normalise by.
 *   - src/document.c: positions run on across the document's TEXT fields
 *     in the order they are given; a NOSTEM field gives no stems.
 *   - src/tag_index.c: a TAG value is split at the separator, each part
 *     trimmed of blanks at both ends, empty parts dropped, and lowered
 *     unless CASESENSITIVE; a document is in a value's set once.
 *   - src/numeric_index.c: a NUMERIC value must parse as a number (else the
 *     document fails to index); ranges are answered from values in order.
 *     engram keeps one sorted array of (value, doc) per field where
 *     RediSearch keeps a range tree.
 *
 * Mutation order (ftidx_put): every NUMERIC value is parsed first, so a
 * bad one changes nothing; then the old entry is removed; then the new one
 * is gathered and merged.  Running out of memory while merging removes
 * what was merged (the document table records each entry just before it
 * is made), so the index is never left with half a document.
 *
 * Threads: only the caller's writer thread runs these; ftexec.c reads the
 * same structures under the caller's read lock. */
#include "ft_impl.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- the counted allocator --------------------------------------------- */

static void *sys_alloc(void *ud, size_t n)
{
    (void)ud;
    return malloc(n ? n : 1);
}

static void *sys_realloc(void *ud, void *p, size_t old, size_t n)
{
    (void)ud;
    (void)old;
    return realloc(p, n ? n : 1);
}

static void sys_free(void *ud, void *p, size_t n)
{
    (void)ud;
    (void)n;
    free(p);
}

void *ftmem_alloc(ftmem *m, size_t n)
{
    void *p = m->al.alloc(m->al.ud, n);
    if (p) m->bytes += n;
    return p;
}

void *ftmem_realloc(ftmem *m, void *p, size_t old, size_t n)
{
    if (!p) return ftmem_alloc(m, n);
    void *q;
    if (m->al.realloc) {
        q = m->al.realloc(m->al.ud, p, old, n);
    } else {
        q = m->al.alloc(m->al.ud, n);
        if (q) {
            memcpy(q, p, old < n ? old : n);
            m->al.free(m->al.ud, p, old);
        }
    }
    if (q) m->bytes = m->bytes - old + n;
    return q;
}

void ftmem_free(ftmem *m, void *p, size_t n)
{
    if (!p) return;
    m->al.free(m->al.ud, p, n);
    m->bytes -= n;
}

/* Grow an array of *cap elements of size sz to hold need; 0 or -ENOMEM. */
static int grow(ftmem *m, void **arr, uint32_t *cap, uint32_t need, size_t sz)
{
    if (need <= *cap) return 0;
    uint32_t nc = *cap ? *cap + *cap / 2 + 1 : 4;
    if (nc < need) nc = need;
    void *p = ftmem_realloc(m, *arr, (size_t)*cap * sz, (size_t)nc * sz);
    if (!p) return -ENOMEM;
    *arr = p;
    *cap = nc;
    return 0;
}

/* ---- the string table ---------------------------------------------------- */

uint32_t ftdict_hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

ftkey *ftdict_get(const ftdict *d, const char *s, size_t len, uint32_t hash)
{
    if (!d->cap) return NULL;
    size_t mask = d->cap - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        ftkey *k = d->slot[i];
        if (!k) return NULL;
        if (k->hash == hash && k->len == len && memcmp(k->s, s, len) == 0) return k;
    }
}

static void place(ftkey **slot, size_t cap, ftkey *k)
{
    size_t i = k->hash & (cap - 1);
    while (slot[i]) i = (i + 1) & (cap - 1);
    slot[i] = k;
}

int ftdict_add(ftmem *m, ftdict *d, ftkey *k)
{
    if ((d->n + 1) * 4 > d->cap * 3) {
        size_t nc = d->cap ? d->cap * 2 : 16;
        ftkey **ns = ftmem_alloc(m, nc * sizeof *ns);
        if (!ns) return -ENOMEM;
        memset(ns, 0, nc * sizeof *ns);
        for (size_t i = 0; i < d->cap; i++)
            if (d->slot[i]) place(ns, nc, d->slot[i]);
        ftmem_free(m, d->slot, d->cap * sizeof *d->slot);
        d->slot = ns;
        d->cap = nc;
    }
    place(d->slot, d->cap, k);
    d->n++;
    return 0;
}

/* Linear probing with backward-shift deletion: no tombstones. */
void ftdict_remove(ftdict *d, ftkey *k)
{
    size_t mask = d->cap - 1, i = k->hash & mask;
    while (d->slot[i] != k) i = (i + 1) & mask;
    d->slot[i] = NULL;
    d->n--;
    for (size_t j = (i + 1) & mask; d->slot[j]; j = (j + 1) & mask) {
        size_t home = d->slot[j]->hash & mask;
        /* move slot j back into the hole at i when its home is not in (i, j] */
        int between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!between) {
            d->slot[i] = d->slot[j];
            d->slot[j] = NULL;
            i = j;
        }
    }
}

void ftdict_fini(ftmem *m, ftdict *d)
{
    ftmem_free(m, d->slot, d->cap * sizeof *d->slot);
    d->slot = NULL;
    d->cap = d->n = 0;
}

static int key_init(ftmem *m, ftkey *k, const char *s, size_t len)
{
    k->s = ftmem_alloc(m, len + 1);
    if (!k->s) return -ENOMEM;
    memcpy(k->s, s, len);
    k->s[len] = 0;
    k->len = (uint32_t)len;
    k->hash = ftdict_hash(s, len);
    return 0;
}

/* ---- schema ------------------------------------------------------------ */

const char *ft_strerror(int code)
{
    switch (code) {
    case FTIDX_EVALUE: return "not a numeric value";
    case FTIDX_ELIMIT: return "past a limit of the search index";
    case FTQ_ESYNTAX: return "query syntax error";
    case FTQ_EFIELD: return "unknown field";
    case FTQ_EPARAM: return "bad query parameter";
    case -ENOMEM: return "out of memory";
    case -EINVAL: return "invalid argument";
    default: return "unknown error";
    }
}

static void fail_set(int *err, int code)
{
    if (err) *err = code;
}

ftidx *ftidx_new(const ftidx_field_def *fields, size_t n, fttok_stopwords *sw,
                 const ftidx_allocator *alloc, int *err)
{
    ftidx_allocator al = alloc ? *alloc
                               : (ftidx_allocator){ sys_alloc, sys_realloc, sys_free, NULL };
    if (!n) {
        fttok_stopwords_free(sw);
        fail_set(err, -EINVAL);
        return NULL;
    }
    size_t ntext = 0;
    for (size_t i = 0; i < n; i++) {
        if (!fields[i].name_len) goto inval;
        for (size_t j = 0; j < i; j++)
            if (fields[j].name_len == fields[i].name_len &&
                memcmp(fields[j].name, fields[i].name, fields[i].name_len) == 0)
                goto inval;
        if (fields[i].kind == FTIDX_TEXT && ++ntext > FTIDX_TEXT_MAX) {
            fttok_stopwords_free(sw);
            fail_set(err, FTIDX_ELIMIT);
            return NULL;
        }
        if (fields[i].kind == FTIDX_TEXT && (fields[i].weight < 0 || isnan(fields[i].weight)))
            goto inval;
    }
    ftidx *ix = al.alloc(al.ud, sizeof *ix);
    if (!ix) goto nomem;
    memset(ix, 0, sizeof *ix);
    ix->mem.al = al;
    ix->sw = sw;
    ix->fields = ftmem_alloc(&ix->mem, n * sizeof *ix->fields);
    if (!ix->fields) goto nomem_ix;
    ix->fields_cap = n;
    memset(ix->fields, 0, n * sizeof *ix->fields);
    int bit = 0;
    for (size_t i = 0; i < n; i++) {
        ftfield *f = &ix->fields[i];
        f->def = fields[i];
        char *name = ftmem_alloc(&ix->mem, fields[i].name_len + 1);
        if (!name) goto nomem_ix;
        memcpy(name, fields[i].name, fields[i].name_len);
        name[fields[i].name_len] = 0;
        f->def.name = name;
        ix->nfields = i + 1;
        if (f->def.kind == FTIDX_TEXT && f->def.weight == 0) f->def.weight = 1.0;
        if (f->def.kind == FTIDX_TAG && f->def.separator == 0) f->def.separator = ',';
        f->text_bit = f->def.kind == FTIDX_TEXT ? bit++ : -1;
    }
    ix->schema_bytes = ix->mem.bytes;
    return ix;
nomem_ix:
    ftidx_free(ix);
    fail_set(err, -ENOMEM);
    return NULL;
nomem:
    fttok_stopwords_free(sw);
    fail_set(err, -ENOMEM);
    return NULL;
inval:
    fttok_stopwords_free(sw);
    fail_set(err, -EINVAL);
    return NULL;
}

static void term_free(ftmem *m, ftterm *t)
{
    for (uint32_t i = 0; i < t->n; i++)
        if (t->post[i].npos > 1) ftmem_free(m, t->post[i].pos.many, t->post[i].npos * sizeof(uint32_t));
    ftmem_free(m, t->post, (size_t)t->cap * sizeof *t->post);
    ftmem_free(m, t->key.s, t->key.len + 1);
    ftmem_free(m, t, sizeof *t);
}

static void tagval_free(ftmem *m, fttagval *v)
{
    ftmem_free(m, v->docs, (size_t)v->cap * sizeof *v->docs);
    ftmem_free(m, v->key.s, v->key.len + 1);
    ftmem_free(m, v, sizeof *v);
}

void ftidx_free(ftidx *ix)
{
    if (!ix) return;
    ftmem *m = &ix->mem;
    for (size_t i = 0; i < ix->terms.cap; i++)
        if (ix->terms.slot[i]) term_free(m, (ftterm *)ix->terms.slot[i]);
    ftdict_fini(m, &ix->terms);
    for (size_t f = 0; f < ix->nfields; f++) {
        ftfield *fl = &ix->fields[f];
        for (size_t i = 0; i < fl->tags.cap; i++)
            if (fl->tags.slot[i]) tagval_free(m, (fttagval *)fl->tags.slot[i]);
        ftdict_fini(m, &fl->tags);
        ftmem_free(m, fl->nums, (size_t)fl->capnum * sizeof *fl->nums);
        ftmem_free(m, (char *)fl->def.name, fl->def.name_len + 1);
    }
    for (uint32_t d = 0; d < ix->ndocslots; d++)
        ftmem_free(m, ix->docs[d].ref, (size_t)ix->docs[d].capref * sizeof *ix->docs[d].ref);
    ftmem_free(m, ix->docs, (size_t)ix->ndocslots * sizeof *ix->docs);
    ftmem_free(m, ix->fields, ix->fields_cap * sizeof *ix->fields);
    fttok_stopwords_free(ix->sw);
    ftidx_allocator al = ix->mem.al;
    al.free(al.ud, ix, sizeof *ix);
}

size_t ftidx_nfields(const ftidx *ix)
{
    return ix->nfields;
}

const ftidx_field_def *ftidx_field(const ftidx *ix, size_t i)
{
    return &ix->fields[i].def;
}

int ftidx_find(const ftidx *ix, const char *name, size_t len)
{
    for (size_t i = 0; i < ix->nfields; i++)
        if (ix->fields[i].def.name_len == len && memcmp(ix->fields[i].def.name, name, len) == 0)
            return (int)i;
    return -1;
}

const fttok_stopwords *ftidx_stopwords(const ftidx *ix)
{
    return ix->sw ? ix->sw : fttok_stopwords_default();
}

/* ---- lookups ------------------------------------------------------------- */

const ftterm *ftidx_term(const ftidx *ix, const char *s, size_t len)
{
    return (const ftterm *)ftdict_get(&ix->terms, s, len, ftdict_hash(s, len));
}

/* Index of the first posting with doc >= d. */
static uint32_t post_lower(const ftterm *t, uint32_t d)
{
    uint32_t lo = 0, hi = t->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (t->post[mid].doc < d) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

const ftpost *ftterm_find(const ftterm *t, uint32_t doc)
{
    uint32_t i = post_lower(t, doc);
    return i < t->n && t->post[i].doc == doc ? &t->post[i] : NULL;
}

const fttagval *ftidx_tag(const ftidx *ix, uint32_t field, const char *s, size_t len)
{
    return (const fttagval *)ftdict_get(&ix->fields[field].tags, s, len, ftdict_hash(s, len));
}

static uint32_t u32_lower(const uint32_t *a, uint32_t n, uint32_t d)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (a[mid] < d) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* First pair not below (v, doc). */
static uint32_t num_lower(const ftnum *a, uint32_t n, double v, uint32_t doc)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (a[mid].v < v || (a[mid].v == v && a[mid].doc < doc)) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* ---- removing a document ------------------------------------------------- */

static void unref(ftidx *ix, uint32_t doc, const ftdocref *r)
{
    ftmem *m = &ix->mem;
    if (r->field == FTDOC_TERM) {
        ftterm *t = r->u.term;
        uint32_t i = post_lower(t, doc);
        if (i < t->n && t->post[i].doc == doc) {
            if (t->post[i].npos > 1) ftmem_free(m, t->post[i].pos.many, t->post[i].npos * sizeof(uint32_t));
            memmove(t->post + i, t->post + i + 1, (t->n - i - 1) * sizeof *t->post);
            t->n--;
            ix->nrecords--;
        }
        if (t->n == 0) {
            ftdict_remove(&ix->terms, &t->key);
            term_free(m, t);
        }
        return;
    }
    ftfield *f = &ix->fields[r->field];
    if (f->def.kind == FTIDX_TAG) {
        fttagval *v = r->u.tag;
        uint32_t i = u32_lower(v->docs, v->n, doc);
        if (i < v->n && v->docs[i] == doc) {
            memmove(v->docs + i, v->docs + i + 1, (v->n - i - 1) * sizeof *v->docs);
            v->n--;
        }
        if (v->n == 0) {
            ftdict_remove(&f->tags, &v->key);
            tagval_free(m, v);
            ix->ntagvals--;
        }
    } else {
        uint32_t i = num_lower(f->nums, f->nnum, r->u.num, doc);
        if (i < f->nnum && f->nums[i].doc == doc) {
            memmove(f->nums + i, f->nums + i + 1, (f->nnum - i - 1) * sizeof *f->nums);
            f->nnum--;
            ix->nnums--;
        }
    }
}

static void doc_clear(ftidx *ix, uint32_t doc)
{
    ftdoc *d = &ix->docs[doc];
    for (uint32_t i = 0; i < d->nref; i++) unref(ix, doc, &d->ref[i]);
    ftmem_free(&ix->mem, d->ref, (size_t)d->capref * sizeof *d->ref);
    d->ref = NULL;
    d->nref = d->capref = 0;
    if (d->present) {
        ix->num_docs--;
        ix->total_len -= d->len;
    }
    d->present = 0;
    d->len = d->maxfreq = 0;
}

int ftidx_del(ftidx *ix, uint32_t doc)
{
    if (doc >= ix->ndocslots || !ix->docs[doc].present) return 0;
    doc_clear(ix, doc);
    return 1;
}

int ftidx_has(const ftidx *ix, uint32_t doc)
{
    return doc < ix->ndocslots && ix->docs[doc].present;
}

/* ---- the forward index of one document ----------------------------------- */

typedef struct fwd {
    ftkey key;
    uint32_t freq;
    uint64_t mask;
    uint32_t npos, cap;
    uint32_t *pos;
} fwd;

typedef struct fwdindex {
    ftdict d;
    fwd **all;
    uint32_t n, cap;
} fwdindex;

static int fwd_add(ftmem *m, fwdindex *fx, const char *s, size_t len, uint32_t freq, int bit,
                   uint32_t pos)
{
    uint32_t h = ftdict_hash(s, len);
    fwd *e = (fwd *)ftdict_get(&fx->d, s, len, h);
    if (!e) {
        if (grow(m, (void **)&fx->all, &fx->cap, fx->n + 1, sizeof *fx->all)) return -ENOMEM;
        e = ftmem_alloc(m, sizeof *e);
        if (!e) return -ENOMEM;
        memset(e, 0, sizeof *e);
        if (key_init(m, &e->key, s, len)) {
            ftmem_free(m, e, sizeof *e);
            return -ENOMEM;
        }
        if (ftdict_add(m, &fx->d, &e->key)) {
            ftmem_free(m, e->key.s, len + 1);
            ftmem_free(m, e, sizeof *e);
            return -ENOMEM;
        }
        fx->all[fx->n++] = e;
    }
    if (grow(m, (void **)&e->pos, &e->cap, e->npos + 1, sizeof *e->pos)) return -ENOMEM;
    e->pos[e->npos++] = pos;
    e->freq += freq;
    e->mask |= (uint64_t)1 << bit;
    return 0;
}

static void fwd_fini(ftmem *m, fwdindex *fx)
{
    for (uint32_t i = 0; i < fx->n; i++) {
        fwd *e = fx->all[i];
        ftmem_free(m, e->pos, (size_t)e->cap * sizeof *e->pos);
        ftmem_free(m, e->key.s, e->key.len + 1);
        ftmem_free(m, e, sizeof *e);
    }
    ftmem_free(m, fx->all, (size_t)fx->cap * sizeof *fx->all);
    ftdict_fini(m, &fx->d);
}

/* Tokenize one TEXT value into fx; *pos runs on across fields. */
static int gather_text(ftidx *ix, fwdindex *fx, const ftfield *f, const char *s, size_t len,
                       uint32_t *pos, uint32_t *doclen)
{
    ftmem *m = &ix->mem;
    char *buf = ftmem_alloc(m, len + 2);
    char *stembuf = ftmem_alloc(m, len + 2);
    int rc = 0;
    if (!buf || !stembuf) {
        rc = -ENOMEM;
        goto out;
    }
    uint32_t w = (uint32_t)(float)f->def.weight;
    uint32_t raw = w ? w : 1;
    uint32_t sw = (uint32_t)((float)f->def.weight * FTIDX_STEM_WEIGHT);
    uint32_t stemf = sw ? sw : 1;
    fttok t;
    fttok_init(&t, s, len, buf, stembuf, ftidx_stopwords(ix), !f->def.nostem, *pos);
    fttok_token tok;
    while (fttok_next(&t, &tok)) {
        if ((rc = fwd_add(m, fx, tok.text, tok.len, raw, f->text_bit, tok.pos))) goto out;
        *doclen += raw;
        if (tok.stem_len &&
            (rc = fwd_add(m, fx, tok.stem, tok.stem_len, stemf, f->text_bit, tok.pos)))
            goto out;
    }
    *pos = t.pos;
out:
    ftmem_free(m, buf, len + 2);
    ftmem_free(m, stembuf, len + 2);
    return rc;
}

/* ---- merging into the index ---------------------------------------------- */

static int ref_reserve(ftidx *ix, ftdoc *d)
{
    return grow(&ix->mem, (void **)&d->ref, &d->capref, d->nref + 1, sizeof *d->ref);
}

static int merge_term(ftidx *ix, uint32_t doc, const fwd *e)
{
    ftmem *m = &ix->mem;
    ftdoc *d = &ix->docs[doc];
    if (ref_reserve(ix, d)) return -ENOMEM;
    ftterm *t = (ftterm *)ftdict_get(&ix->terms, e->key.s, e->key.len, e->key.hash);
    if (!t) {
        t = ftmem_alloc(m, sizeof *t);
        if (!t) return -ENOMEM;
        memset(t, 0, sizeof *t);
        if (key_init(m, &t->key, e->key.s, e->key.len) || ftdict_add(m, &ix->terms, &t->key)) {
            ftmem_free(m, t->key.s, t->key.s ? e->key.len + 1 : 0);
            ftmem_free(m, t, sizeof *t);
            return -ENOMEM;
        }
    }
    uint32_t *many = NULL;
    if (e->npos > 1) {
        many = ftmem_alloc(m, e->npos * sizeof *many);
        if (!many) goto fail;
        memcpy(many, e->pos, e->npos * sizeof *many);
    }
    if (grow(m, (void **)&t->post, &t->cap, t->n + 1, sizeof *t->post)) {
        ftmem_free(m, many, e->npos * sizeof *many);
        goto fail;
    }
    uint32_t i = post_lower(t, doc);
    memmove(t->post + i + 1, t->post + i, (t->n - i) * sizeof *t->post);
    ftpost *p = &t->post[i];
    *p = (ftpost){ .doc = doc, .freq = e->freq, .mask = e->mask, .npos = e->npos };
    if (e->npos == 1) p->pos.one = e->pos[0];
    else p->pos.many = many;
    t->n++;
    ix->nrecords++;
    d->ref[d->nref++] = (ftdocref){ .field = FTDOC_TERM, .u.term = t };
    if (e->freq > d->maxfreq) d->maxfreq = e->freq;
    return 0;
fail:
    if (t->n == 0) {
        ftdict_remove(&ix->terms, &t->key);
        term_free(m, t);
    }
    return -ENOMEM;
}

static int merge_tag(ftidx *ix, uint32_t doc, uint32_t field, const char *s, size_t len)
{
    ftmem *m = &ix->mem;
    ftfield *f = &ix->fields[field];
    ftdoc *d = &ix->docs[doc];
    uint32_t h = ftdict_hash(s, len);
    fttagval *v = (fttagval *)ftdict_get(&f->tags, s, len, h);
    if (v) {
        uint32_t i = u32_lower(v->docs, v->n, doc);
        if (i < v->n && v->docs[i] == doc) return 0;
    }
    if (ref_reserve(ix, d)) return -ENOMEM;
    if (!v) {
        v = ftmem_alloc(m, sizeof *v);
        if (!v) return -ENOMEM;
        memset(v, 0, sizeof *v);
        if (key_init(m, &v->key, s, len) || ftdict_add(m, &f->tags, &v->key)) {
            ftmem_free(m, v->key.s, v->key.s ? len + 1 : 0);
            ftmem_free(m, v, sizeof *v);
            return -ENOMEM;
        }
        ix->ntagvals++;
    }
    if (grow(m, (void **)&v->docs, &v->cap, v->n + 1, sizeof *v->docs)) {
        if (v->n == 0) {
            ftdict_remove(&f->tags, &v->key);
            tagval_free(m, v);
            ix->ntagvals--;
        }
        return -ENOMEM;
    }
    uint32_t i = u32_lower(v->docs, v->n, doc);
    memmove(v->docs + i + 1, v->docs + i, (v->n - i) * sizeof *v->docs);
    v->docs[i] = doc;
    v->n++;
    d->ref[d->nref++] = (ftdocref){ .field = field, .u.tag = v };
    return 0;
}

static int is_blank(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* Split one TAG value and merge each part. */
static int gather_tags(ftidx *ix, uint32_t doc, uint32_t field, const char *s, size_t len)
{
    const ftfield *f = &ix->fields[field];
    const char *nul = memchr(s, 0, len);
    if (nul) len = (size_t)(nul - s);
    char *tmp = ftmem_alloc(&ix->mem, len + 1);
    if (!tmp) return -ENOMEM;
    size_t at = 0;
    int rc = 0;
    while (at < len && !rc) {
        while (at < len && is_blank((unsigned char)s[at])) at++;
        size_t start = at, last = at, n = 0;
        int any = 0;
        for (; at < len && s[at] != f->def.separator; at++)
            if (!is_blank((unsigned char)s[at])) {
                last = at;
                any = 1;
            }
        if (at < len) at++; /* the separator */
        if (!any) continue;
        n = last - start + 1;
        memcpy(tmp, s + start, n);
        if (!f->def.casesensitive)
            for (size_t i = 0; i < n; i++)
                if (tmp[i] >= 'A' && tmp[i] <= 'Z') tmp[i] = (char)(tmp[i] - 'A' + 'a');
        rc = merge_tag(ix, doc, field, tmp, n);
    }
    ftmem_free(&ix->mem, tmp, len + 1);
    return rc;
}

static int merge_num(ftidx *ix, uint32_t doc, uint32_t field, double v)
{
    ftfield *f = &ix->fields[field];
    ftdoc *d = &ix->docs[doc];
    if (ref_reserve(ix, d)) return -ENOMEM;
    if (grow(&ix->mem, (void **)&f->nums, &f->capnum, f->nnum + 1, sizeof *f->nums)) return -ENOMEM;
    uint32_t i = num_lower(f->nums, f->nnum, v, doc);
    memmove(f->nums + i + 1, f->nums + i, (f->nnum - i) * sizeof *f->nums);
    f->nums[i] = (ftnum){ v, doc };
    f->nnum++;
    ix->nnums++;
    d->ref[d->nref++] = (ftdocref){ .field = field, .u.num = v };
    return 0;
}

/* A NUMERIC value as RediSearch reads it: strtod over the whole value;
 * inf accepted, NaN and trailing bytes not. */
static int parse_num(const char *s, size_t len, double *out)
{
    char buf[128];
    if (len == 0 || len >= sizeof buf || memchr(s, 0, len)) return FTIDX_EVALUE;
    memcpy(buf, s, len);
    buf[len] = 0;
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (end != buf + len || isnan(v) || is_blank((unsigned char)buf[0])) return FTIDX_EVALUE;
    *out = v;
    return 0;
}

static int doc_slot(ftidx *ix, uint32_t doc)
{
    if (doc < ix->ndocslots) return 0;
    uint32_t nc = ix->ndocslots ? ix->ndocslots : 16;
    while (nc <= doc) nc = nc > (1u << 30) ? FTIDX_DOC_MAX : nc * 2;
    ftdoc *nd = ftmem_realloc(&ix->mem, ix->docs, (size_t)ix->ndocslots * sizeof *nd,
                              (size_t)nc * sizeof *nd);
    if (!nd) return -ENOMEM;
    memset(nd + ix->ndocslots, 0, (size_t)(nc - ix->ndocslots) * sizeof *nd);
    ix->docs = nd;
    ix->ndocslots = nc;
    return 0;
}

int ftidx_put(ftidx *ix, uint32_t doc, const ftidx_value *vals, size_t n, double score)
{
    if (doc >= FTIDX_DOC_MAX) return FTIDX_ELIMIT;
    if (isnan(score) || score < 0) return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (vals[i].field >= ix->nfields) return -EINVAL;
        const ftfield *f = &ix->fields[vals[i].field];
        double v;
        if (f->def.kind == FTIDX_NUMERIC && !f->def.noindex) {
            int rc = parse_num(vals[i].s, vals[i].len, &v);
            if (rc) return rc;
        }
    }
    if (doc_slot(ix, doc)) return -ENOMEM;
    doc_clear(ix, doc);

    ftmem *m = &ix->mem;
    fwdindex fx = { 0 };
    uint32_t pos = 0, doclen = 0;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        const ftfield *f = &ix->fields[vals[i].field];
        if (f->def.noindex) continue;
        if (f->def.kind == FTIDX_TEXT) rc = gather_text(ix, &fx, f, vals[i].s, vals[i].len, &pos, &doclen);
    }
    for (uint32_t i = 0; i < fx.n && !rc; i++) rc = merge_term(ix, doc, fx.all[i]);
    fwd_fini(m, &fx);
    for (size_t i = 0; i < n && !rc; i++) {
        const ftfield *f = &ix->fields[vals[i].field];
        if (f->def.noindex) continue;
        if (f->def.kind == FTIDX_TAG) {
            rc = gather_tags(ix, doc, vals[i].field, vals[i].s, vals[i].len);
        } else if (f->def.kind == FTIDX_NUMERIC) {
            double v = 0;
            parse_num(vals[i].s, vals[i].len, &v);
            rc = merge_num(ix, doc, vals[i].field, v);
        }
    }
    if (rc) {
        doc_clear(ix, doc);
        return rc;
    }
    ftdoc *d = &ix->docs[doc];
    d->present = 1;
    d->score = score;
    d->len = doclen;
    ix->num_docs++;
    ix->total_len += doclen;
    if (doc > ix->max_doc) ix->max_doc = doc;
    return 0;
}

/* ---- statistics ------------------------------------------------------------ */

void ftidx_get_stats(const ftidx *ix, ftidx_stats *st)
{
    memset(st, 0, sizeof *st);
    st->num_docs = ix->num_docs;
    st->max_doc_id = ix->max_doc;
    st->num_terms = ix->terms.n;
    st->num_records = ix->nrecords;
    st->total_doc_len = ix->total_len;
    st->tag_values = ix->ntagvals;
    st->numeric_records = ix->nnums;
    st->inverted_bytes = ix->terms.cap * sizeof(ftkey *);
    for (size_t i = 0; i < ix->terms.cap; i++) {
        const ftterm *t = (const ftterm *)ix->terms.slot[i];
        if (!t) continue;
        st->inverted_bytes += sizeof *t + t->key.len + 1 + (size_t)t->cap * sizeof *t->post;
        for (uint32_t j = 0; j < t->n; j++)
            if (t->post[j].npos > 1) st->inverted_bytes += t->post[j].npos * sizeof(uint32_t);
    }
    for (size_t f = 0; f < ix->nfields; f++) {
        const ftfield *fl = &ix->fields[f];
        st->tag_bytes += fl->tags.cap * sizeof(ftkey *);
        for (size_t i = 0; i < fl->tags.cap; i++) {
            const fttagval *v = (const fttagval *)fl->tags.slot[i];
            if (v) st->tag_bytes += sizeof *v + v->key.len + 1 + (size_t)v->cap * sizeof *v->docs;
        }
        st->numeric_bytes += (size_t)fl->capnum * sizeof *fl->nums;
    }
    st->doc_bytes = (size_t)ix->ndocslots * sizeof *ix->docs;
    for (uint32_t d = 0; d < ix->ndocslots; d++)
        st->doc_bytes += (size_t)ix->docs[d].capref * sizeof *ix->docs[d].ref;
    st->total_bytes = ftidx_memory(ix);
}

size_t ftidx_memory(const ftidx *ix)
{
    return sizeof *ix + ix->mem.bytes + fttok_stopwords_memory(ix->sw);
}

/* ---- FT.TAGVALS ----------------------------------------------------------------- */

static int tagval_cmp(const void *a, const void *b)
{
    const ftkey *x = *(const ftkey *const *)a, *y = *(const ftkey *const *)b;
    size_t m = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->s, y->s, m);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

int ftidx_tag_values(const ftidx *ix, uint32_t field, ftidx_tag_fn *fn, void *ud)
{
    if (field >= ix->nfields || ix->fields[field].def.kind != FTIDX_TAG) return -EINVAL;
    const ftdict *d = &ix->fields[field].tags;
    size_t n = 0;
    for (size_t i = 0; i < d->cap; i++) n += d->slot[i] != NULL;
    const ftkey **v = malloc((n ? n : 1) * sizeof *v);
    if (!v) return -ENOMEM;
    n = 0;
    for (size_t i = 0; i < d->cap; i++)
        if (d->slot[i]) v[n++] = d->slot[i];
    qsort(v, n, sizeof *v, tagval_cmp);
    for (size_t i = 0; i < n; i++) fn(ud, v[i]->s, v[i]->len);
    free(v);
    return (int)n;
}
