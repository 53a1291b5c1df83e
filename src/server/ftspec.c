/* ftspec.c -- search indices over hashes: definitions, documents, the
 * keyspace events that keep them current, and the scans of existing keys
 * (the contract is ftspec.h's).
 *
 * Learned from RediSearch (our words and code): an index is fed by the
 * keyspace notifications of database 0 (src/notifications.c), a document is
 * re-indexed whole on every change of its hash (src/document.c), a failed
 * document leaves the index and counts as an indexing failure
 * (src/spec.c), and the initial scan walks the keyspace with SCAN in the
 * background (src/spec.c's IndexesScanner).
 *
 * Loop thread only, except what searches read under an index's read lock
 * (cmd_ft.c). */
#include "ftspec.h"
#include "evict.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "engram/hash.h"
#include "engram/le.h"
#include "engram/mem.h"
#include "engram/util.h"
#include "keyspace.h"
#include "persist.h"
#include "server.h"

/* The registry: indices in creation order (FT._LIST's order). */
typedef struct ftreg {
    ftspec **v;
    size_t n, cap;
    size_t scanning;        /* indices with a scan in progress */
    long long timer;        /* runs the scans while any is in progress (0: none) */
} ftreg;

#define REG(s) ((ftreg *)(s)->ft)

void ft_init(server *s) { s->ft = mem_calloc(1, sizeof(ftreg)); }

static void spec_free(ftspec *f);

void ft_fini(server *s)
{
    ftreg *r = REG(s);
    if (!r) return;
    if (r->timer) ev_timer_del(s->loop, r->timer);
    for (size_t i = 0; i < r->n; i++) {
        r->v[i]->dropped = 1;
        ft_release(r->v[i]);
    }
    mem_free(r->v);
    mem_free(r);
    s->ft = NULL;
}

size_t ft_count(const server *s) { return s->ft ? ((const ftreg *)s->ft)->n : 0; }
ftspec *ft_at(server *s, size_t i) { return REG(s)->v[i]; }

ftspec *ft_find(server *s, const char *name, size_t nlen)
{
    ftreg *r = REG(s);
    for (size_t i = 0; r && i < r->n; i++)
        if (r->v[i]->nlen == nlen && memcmp(r->v[i]->name, name, nlen) == 0) return r->v[i];
    return NULL;
}

ftspec *ft_acquire(ftspec *f)
{
    f->refs++;
    return f;
}

void ft_release(ftspec *f)
{
    if (f && --f->refs == 0) spec_free(f);
}

/* ---- the definition ------------------------------------------------------------ */

static int fail(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return -1;
}

static int word(const char *s, size_t len, const char *w) { return util_eq_nocase(s, len, w); }

/* An unsigned integer argument. */
static int arg_u32(const char *s, size_t len, uint32_t *out)
{
    long long v;
    if (!util_str2ll(s, len, &v) || v < 0 || v > UINT32_MAX) return 0;
    *out = (uint32_t)v;
    return 1;
}

/* VECTOR's algorithm and its n attribute pairs at argv[*i]: the field's
 * vector parameters. */
static int parse_vector(ftfield *fd, int argc, const char *const *argv, const size_t *lens, int *i,
                        char *err, size_t cap)
{
    int j = *i;
    if (j >= argc) return fail(err, cap, "Expected VECTOR algorithm");   /* not reached by tests */
    const char *algo = argv[j];
    if (word(algo, lens[j], "HNSW")) fd->algo = VINDEX_HNSW;
    else if (word(algo, lens[j], "FLAT")) fd->algo = VINDEX_FLAT;
    else return fail(err, cap, "Bad arguments for vector similarity algorithm");
    const char *an = fd->algo == VINDEX_HNSW ? "HNSW" : "FLAT";
    j++;
    uint32_t n;
    if (j >= argc || !arg_u32(argv[j], lens[j], &n))
        return fail(err, cap, "Bad arguments for vector similarity number of parameters");
    j++;
    if (n % 2 || (uint64_t)j + n > (uint64_t)argc)
        return fail(err, cap, "Bad number of arguments for vector similarity index: got %u but "
                    "expected even number", n);
    int have_type = 0, have_dim = 0, have_metric = 0;
    for (uint32_t k = 0; k < n; k += 2, j += 2) {
        const char *a = argv[j], *v = argv[j + 1];
        size_t al = lens[j], vl = lens[j + 1];
        if (word(a, al, "TYPE")) {
            if (!word(v, vl, "FLOAT32"))
                return fail(err, cap, "Bad arguments for vector similarity %s index type: "
                            "engram supports FLOAT32", an);
            have_type = 1;
        } else if (word(a, al, "DIM")) {
            if (!arg_u32(v, vl, &fd->dim) || fd->dim == 0 || fd->dim > VINDEX_DIM_MAX)
                return fail(err, cap, "Bad arguments for vector similarity %s index dim", an);
            have_dim = 1;
        } else if (word(a, al, "DISTANCE_METRIC")) {
            if (word(v, vl, "L2")) fd->metric = DIST_L2;
            else if (word(v, vl, "IP")) fd->metric = DIST_DOT;
            else if (word(v, vl, "COSINE")) fd->metric = DIST_COSINE;
            else return fail(err, cap, "Bad arguments for vector similarity %s index metric", an);
            have_metric = 1;
        } else if (word(a, al, "INITIAL_CAP")) {
            if (!arg_u32(v, vl, &fd->initial_cap))
                return fail(err, cap, "Bad arguments for vector similarity %s index initial cap",
                            an);
        } else if (fd->algo == VINDEX_FLAT && word(a, al, "BLOCK_SIZE")) {
            if (!arg_u32(v, vl, &fd->block_size) || !fd->block_size)
                return fail(err, cap, "Bad arguments for vector similarity FLAT index block size");
        } else if (fd->algo == VINDEX_HNSW && word(a, al, "M")) {
            if (!arg_u32(v, vl, &fd->M) || fd->M < 2 || fd->M > VINDEX_M_MAX)
                return fail(err, cap, "Bad arguments for vector similarity HNSW index m");
        } else if (fd->algo == VINDEX_HNSW && word(a, al, "EF_CONSTRUCTION")) {
            if (!arg_u32(v, vl, &fd->efc) || !fd->efc || fd->efc > VINDEX_EF_MAX)
                return fail(err, cap, "Bad arguments for vector similarity HNSW index efConstruction");
        } else if (fd->algo == VINDEX_HNSW && word(a, al, "EF_RUNTIME")) {
            if (!arg_u32(v, vl, &fd->ef_runtime) || !fd->ef_runtime ||
                fd->ef_runtime > VINDEX_EF_MAX)
                return fail(err, cap, "Bad arguments for vector similarity HNSW index efRuntime");
        } else if (fd->algo == VINDEX_HNSW && word(a, al, "EPSILON")) {
            if (!util_str2d(v, vl, &fd->epsilon) || !(fd->epsilon > 0))
                return fail(err, cap, "Bad arguments for vector similarity HNSW index epsilon");
        } else {
            return fail(err, cap, "Bad arguments for vector similarity %s index type: "
                        "unknown argument `%.*s`", an, (int)(al < 64 ? al : 64), a);
        }
    }
    if (!have_type || !have_dim || !have_metric)
        return fail(err, cap, "Missing mandatory parameter: cannot create %s index without "
                    "specifying %s argument", an,
                    !have_type ? "TYPE" : !have_dim ? "DIM" : "DISTANCE_METRIC");
    if (!fd->M) fd->M = 16;
    if (!fd->efc) fd->efc = 200;
    if (!fd->ef_runtime) fd->ef_runtime = 10;
    if (fd->epsilon == 0) fd->epsilon = 0.01;
    if (!fd->block_size) fd->block_size = 1024;
    *i = j;
    return 0;
}

static void field_fini(ftfield *fd)
{
    mem_free(fd->name);
    mem_free(fd->alias);
}

/* One field definition at argv[*i]: name [AS alias] TYPE options... */
static int parse_field(ftfield *fd, int argc, const char *const *argv, const size_t *lens, int *i,
                       char *err, size_t cap)
{
    int j = *i;
    memset(fd, 0, sizeof *fd);
    fd->name = mem_strndup(argv[j], lens[j]);
    fd->nlen = lens[j];
    j++;
    if (j < argc && word(argv[j], lens[j], "AS")) {
        if (j + 1 >= argc) return fail(err, cap, "Bad arguments for AS: Expected an argument");
        fd->alias = mem_strndup(argv[j + 1], lens[j + 1]);
        fd->alen = lens[j + 1];
        j += 2;
    } else {
        fd->alias = mem_strndup(fd->name, fd->nlen);
        fd->alen = fd->nlen;
    }
    if (j >= argc) return fail(err, cap, "Field `%s` does not have a type", fd->name);
    const char *t = argv[j];
    size_t tl = lens[j];
    j++;
    if (word(t, tl, "TEXT")) fd->kind = FTIDX_TEXT, fd->weight = 1.0;
    else if (word(t, tl, "TAG")) fd->kind = FTIDX_TAG, fd->sep = ',';
    else if (word(t, tl, "NUMERIC")) fd->kind = FTIDX_NUMERIC;
    else if (word(t, tl, "VECTOR")) {
        fd->kind = FTIDX_VECTOR;
        if (parse_vector(fd, argc, argv, lens, &j, err, cap) < 0) return -1;
    } else if (word(t, tl, "GEO") || word(t, tl, "GEOSHAPE"))
        return fail(err, cap, "engram does not support %.*s fields", (int)tl, t);
    else
        return fail(err, cap, "Invalid field type for field `%s`", fd->name);
    /* The options, until the next field's name (anything else). */
    while (j < argc) {
        const char *o = argv[j];
        size_t ol = lens[j];
        if (word(o, ol, "SORTABLE")) {
            fd->sortable = 1;
            j++;
            if (j < argc && word(argv[j], lens[j], "UNF")) j++;
        } else if (word(o, ol, "NOINDEX")) {
            fd->noindex = 1;
            j++;
        } else if (fd->kind == FTIDX_TEXT && word(o, ol, "NOSTEM")) {
            fd->nostem = 1;
            j++;
        } else if (fd->kind == FTIDX_TEXT && word(o, ol, "WEIGHT")) {
            if (j + 1 >= argc || !util_str2d(argv[j + 1], lens[j + 1], &fd->weight) ||
                !(fd->weight >= 0))
                return fail(err, cap, "Bad arguments for weight: Could not convert argument to "
                            "expected type");
            j += 2;
        } else if (fd->kind == FTIDX_TEXT && word(o, ol, "PHONETIC")) {
            return fail(err, cap, "engram does not support PHONETIC");
        } else if (fd->kind == FTIDX_TAG && word(o, ol, "SEPARATOR")) {
            if (j + 1 >= argc || lens[j + 1] != 1)
                return fail(err, cap, "Bad arguments for SEPARATOR: Expected a single character");
            fd->sep = argv[j + 1][0];
            j += 2;
        } else if (fd->kind == FTIDX_TAG && word(o, ol, "CASESENSITIVE")) {
            fd->casesensitive = 1;
            j++;
        } else if (word(o, ol, "WITHSUFFIXTRIE") || word(o, ol, "INDEXEMPTY") ||
                   word(o, ol, "INDEXMISSING")) {
            j++;        /* accepted: they change what can be queried, not what matches */
        } else {
            break;
        }
    }
    *i = j;
    return 0;
}

/* The schema part argv[i..argc) into f's fields (appended). */
static int parse_schema(ftspec *f, int argc, const char *const *argv, const size_t *lens, int i,
                        char *err, size_t cap)
{
    while (i < argc) {
        f->fields = mem_realloc(f->fields, (size_t)(f->nfields + 1) * sizeof *f->fields);
        ftfield *fd = &f->fields[f->nfields];
        if (parse_field(fd, argc, argv, lens, &i, err, cap) < 0) {
            field_fini(fd);
            return -1;
        }
        f->nfields++;
        for (int k = 0; k < f->nfields - 1; k++)
            if ((f->fields[k].alen == fd->alen && !memcmp(f->fields[k].alias, fd->alias, fd->alen)))
                return fail(err, cap, "Duplicate field in schema - %s", fd->alias);
        if (fd->kind == FTIDX_TEXT) {
            int ntext = 0;
            for (int k = 0; k < f->nfields; k++) ntext += f->fields[k].kind == FTIDX_TEXT;
            if (ntext > (int)FTIDX_TEXT_MAX)
                return fail(err, cap, "Schema is limited to %u TEXT fields", FTIDX_TEXT_MAX);
        }
    }
    return 0;
}

/* The options before SCHEMA and the schema: f's definition. */
static int parse_def(ftspec *f, int argc, const char *const *argv, const size_t *lens, int *skip,
                     char *err, size_t cap)
{
    int i = 0;
    f->default_score = 1.0;
    f->nstop = -1;
    while (i < argc && !word(argv[i], lens[i], "SCHEMA")) {
        const char *o = argv[i];
        size_t ol = lens[i];
        if (word(o, ol, "ON")) {
            if (i + 1 >= argc) return fail(err, cap, "Bad arguments for ON: Expected an argument");
            if (word(argv[i + 1], lens[i + 1], "JSON"))
                return fail(err, cap, "engram indexes hashes only (ON HASH)");
            if (!word(argv[i + 1], lens[i + 1], "HASH"))
                return fail(err, cap, "Unknown index type `%.*s`", (int)(lens[i + 1] < 64 ?
                            lens[i + 1] : 64), argv[i + 1]);
            i += 2;
        } else if (word(o, ol, "PREFIX")) {
            uint32_t n;
            if (i + 1 >= argc || !arg_u32(argv[i + 1], lens[i + 1], &n))
                return fail(err, cap, "Bad arguments for PREFIX: Could not convert argument to "
                            "expected type");
            if ((uint64_t)i + 2 + n > (uint64_t)argc)
                return fail(err, cap, "Bad arguments for PREFIX: Expected %u arguments", n);
            for (uint32_t k = 0; k < n; k++) {
                f->prefixes = mem_realloc(f->prefixes, (size_t)(f->nprefix + 1) * sizeof(char *));
                f->plens = mem_realloc(f->plens, (size_t)(f->nprefix + 1) * sizeof(size_t));
                f->prefixes[f->nprefix] = mem_strndup(argv[i + 2 + k], lens[i + 2 + k]);
                f->plens[f->nprefix++] = lens[i + 2 + k];
            }
            i += 2 + (int)n;
        } else if (word(o, ol, "FILTER")) {
            return fail(err, cap, "engram does not support FT.CREATE ... FILTER");
        } else if (word(o, ol, "LANGUAGE")) {
            if (i + 1 >= argc) return fail(err, cap, "Bad arguments for LANGUAGE");
            if (!word(argv[i + 1], lens[i + 1], "english"))
                return fail(err, cap, "Invalid language");
            i += 2;
        } else if (word(o, ol, "SCORE")) {
            if (i + 1 >= argc || !util_str2d(argv[i + 1], lens[i + 1], &f->default_score) ||
                f->default_score < 0 || f->default_score > 1)
                return fail(err, cap, "Invalid score");
            i += 2;
        } else if (word(o, ol, "SCORE_FIELD")) {
            if (i + 1 >= argc) return fail(err, cap, "Bad arguments for SCORE_FIELD");
            mem_free(f->score_field);
            f->score_field = mem_strndup(argv[i + 1], lens[i + 1]);
            f->sflen = lens[i + 1];
            i += 2;
        } else if (word(o, ol, "LANGUAGE_FIELD") || word(o, ol, "PAYLOAD_FIELD") ||
                   word(o, ol, "TEMPORARY")) {
            if (i + 1 >= argc) return fail(err, cap, "Bad arguments for %.*s", (int)ol, o);
            if (word(o, ol, "TEMPORARY"))
                return fail(err, cap, "engram does not support TEMPORARY indexes");
            i += 2;
        } else if (word(o, ol, "STOPWORDS")) {
            uint32_t n;
            if (i + 1 >= argc || !arg_u32(argv[i + 1], lens[i + 1], &n) ||
                (uint64_t)i + 2 + n > (uint64_t)argc)
                return fail(err, cap, "Bad arguments for STOPWORDS: Expected a number of words");
            for (int k = 0; k < f->nstop; k++) mem_free(f->stopwords[k]);
            mem_free(f->stopwords);
            f->stopwords = mem_calloc(n ? n : 1, sizeof(char *));
            f->nstop = (int)n;
            for (uint32_t k = 0; k < n; k++)
                f->stopwords[k] = mem_strndup(argv[i + 2 + k], lens[i + 2 + k]);
            f->nostopwords = n == 0;
            i += 2 + (int)n;
        } else if (word(o, ol, "SKIPINITIALSCAN")) {
            *skip = 1;
            i++;
        } else if (word(o, ol, "MAXTEXTFIELDS") || word(o, ol, "NOOFFSETS") ||
                   word(o, ol, "NOHL") || word(o, ol, "NOFIELDS") || word(o, ol, "NOFREQS") ||
                   word(o, ol, "ASYNC")) {
            i++;
        } else {
            return fail(err, cap, "Unknown argument `%.*s`", (int)(ol < 64 ? ol : 64), o);
        }
    }
    if (i >= argc) return fail(err, cap, "No schema found");
    i++;
    if (i >= argc) return fail(err, cap, "Fields arguments are missing");
    return parse_schema(f, argc, argv, lens, i, err, cap);
}

/* ---- building ------------------------------------------------------------------ */

static vindex *vector_new(const ftfield *fd, int *err)
{
    vindex_params p;
    vindex_params_init(&p, fd->algo, fd->dim, fd->metric);
    p.M = fd->M;
    p.ef_construction = fd->efc;
    p.ef_search = fd->ef_runtime;
    p.alloc = &evict_vec_allocator;             /* used_memory counts it (evict.h) */
    return vindex_new(&p, err);
}

/* Forget every document (their key table and ids). */
static void docs_free(ftspec *f)
{
    kv_free(f->docs);
    f->docs = NULL;
    for (uint32_t d = 0; d < f->nslots; d++) mem_free(f->dockey[d]);
    mem_free(f->dockey);
    mem_free(f->docklen);
    mem_free(f->vhash);
    mem_free(f->freeids);
    f->dockey = NULL;
    f->docklen = NULL;
    f->vhash = NULL;
    f->freeids = NULL;
    f->nslots = f->nfree = f->freecap = f->next_id = 0;
}

/* (Re)build the document index and the vector indices of f's schema, empty
 * (the documents are forgotten: a scan fills them again). */
static int spec_build(ftspec *f, char *err, size_t cap)
{
    ftidx_field_def *defs = mem_calloc((size_t)f->nfields, sizeof *defs);
    int nvec = 0;
    for (int i = 0; i < f->nfields; i++) {
        const ftfield *fd = &f->fields[i];
        defs[i] = (ftidx_field_def){.name = fd->alias, .name_len = fd->alen, .kind = fd->kind,
                                    .weight = fd->weight, .nostem = fd->nostem,
                                    .separator = fd->sep, .casesensitive = fd->casesensitive,
                                    .noindex = fd->noindex};
        if (fd->kind == FTIDX_VECTOR) f->fields[i].vslot = nvec++;
    }
    fttok_stopwords *sw = NULL;
    if (f->nstop >= 0) {
        size_t *lens = mem_calloc((size_t)f->nstop + 1, sizeof *lens);
        for (int k = 0; k < f->nstop; k++) lens[k] = strlen(f->stopwords[k]);
        sw = fttok_stopwords_new((const char *const *)f->stopwords, lens, (size_t)f->nstop);
        mem_free(lens);
    }
    int e = 0;
    ftidx *ix = ftidx_new(defs, (size_t)f->nfields, sw, &evict_ft_allocator, &e);
    mem_free(defs);
    if (!ix) return fail(err, cap, "Could not create the index: %s", ft_strerror(e));
    vindex **vec = mem_calloc((size_t)nvec + 1, sizeof *vec);
    for (int i = 0; i < f->nfields; i++) {
        const ftfield *fd = &f->fields[i];
        if (fd->kind != FTIDX_VECTOR) continue;
        if (!(vec[fd->vslot] = vector_new(fd, &e))) {
            for (int k = 0; k < nvec; k++) vindex_free(vec[k]);
            mem_free(vec);
            ftidx_free(ix);
            return fail(err, cap, "Could not create vector index: %s", vindex_strerror(e));
        }
    }
    /* Swap in. */
    ftidx_free(f->ix);
    for (int k = 0; k < f->nvec; k++) vindex_free(f->vec[k]);
    mem_free(f->vec);
    f->ix = ix;
    f->vec = vec;
    f->nvec = nvec;
    docs_free(f);
    f->docs = kv_new(0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)f);
    return 0;
}

static void spec_free(ftspec *f)
{
    for (int i = 0; i < f->nargs; i++) mem_free(f->args[i]);
    mem_free(f->args);
    mem_free(f->arglens);
    for (int i = 0; i < f->nprefix; i++) mem_free(f->prefixes[i]);
    mem_free(f->prefixes);
    mem_free(f->plens);
    mem_free(f->score_field);
    for (int i = 0; i < f->nstop; i++) mem_free(f->stopwords[i]);
    mem_free(f->stopwords);
    for (int i = 0; i < f->nfields; i++) field_fini(&f->fields[i]);
    mem_free(f->fields);
    ftidx_free(f->ix);
    for (int k = 0; k < f->nvec; k++) vindex_free(f->vec[k]);
    mem_free(f->vec);
    docs_free(f);
    rwlock_fini(&f->lock);
    mem_free(f->name);
    mem_free(f);
}

static void append_args(ftspec *f, int argc, const char *const *argv, const size_t *lens)
{
    f->args = mem_realloc(f->args, (size_t)(f->nargs + argc) * sizeof *f->args);
    f->arglens = mem_realloc(f->arglens, (size_t)(f->nargs + argc) * sizeof *f->arglens);
    for (int i = 0; i < argc; i++) {
        f->args[f->nargs + i] = mem_strndup(argv[i], lens[i]);
        f->arglens[f->nargs + i] = lens[i];
    }
    f->nargs += argc;
}

static void scan_start(server *s, ftspec *f);
static int scan_timer(ev_loop *l, long long id, void *ud);

int ft_create(server *s, const char *name, size_t nlen, int argc, const char *const *argv,
              const size_t *argvlen, int noscan, char *err, size_t errcap)
{
    if (ft_find(s, name, nlen)) return fail(err, errcap, "Index already exists");
    ftspec *f = mem_calloc(1, sizeof *f);
    f->name = mem_strndup(name, nlen);
    f->nlen = nlen;
    f->refs = 1;
    rwlock_init(&f->lock);
    int skip = 0;
    if (parse_def(f, argc, argv, argvlen, &skip, err, errcap) < 0 ||
        spec_build(f, err, errcap) < 0) {
        spec_free(f);
        return -1;
    }
    append_args(f, argc, argv, argvlen);
    ftreg *r = REG(s);
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 8;
        r->v = mem_realloc(r->v, r->cap * sizeof *r->v);
    }
    r->v[r->n++] = f;
    s->ft_on = 1;
    if (!skip && !noscan) scan_start(s, f);
    return 0;
}

int ft_alter(server *s, ftspec *f, int argc, const char *const *argv, const size_t *argvlen,
             char *err, size_t errcap)
{
    int n0 = f->nfields;
    if (parse_schema(f, argc, argv, argvlen, 0, err, errcap) < 0) goto undo;
    rwlock_wrlock(&f->lock);
    int rc = spec_build(f, err, errcap);
    rwlock_wrunlock(&f->lock);
    if (rc < 0) goto undo;
    append_args(f, argc, argv, argvlen);
    /* The rebuilt index starts empty: the existing hashes are indexed again
     * whatever SKIPINITIALSCAN says (it would leave the old documents out),
     * so a replica and a replay, whose record carries no such flag, agree. */
    scan_start(s, f);
    return 0;
undo:
    for (int i = n0; i < f->nfields; i++) field_fini(&f->fields[i]);
    f->nfields = n0;
    return -1;
}

void ft_drop(server *s, ftspec *f)
{
    ftreg *r = REG(s);
    for (size_t i = 0; i < r->n; i++) {
        if (r->v[i] != f) continue;
        memmove(&r->v[i], &r->v[i + 1], (r->n - i - 1) * sizeof *r->v);
        r->n--;
        break;
    }
    s->ft_on = r->n > 0;
    if (f->indexing) r->scanning--;
    f->indexing = 0;
    f->dropped = 1;
    ft_release(f);
}

/* ---- documents ----------------------------------------------------------------- */

const char *ft_doc_key(const ftspec *f, uint32_t doc, size_t *klen)
{
    if (doc >= f->nslots || !f->dockey[doc]) return NULL;
    *klen = f->docklen[doc];
    return f->dockey[doc];
}

int ft_field_by_alias(const ftspec *f, const char *name, size_t len)
{
    for (int i = 0; i < f->nfields; i++)
        if (f->fields[i].alen == len && !memcmp(f->fields[i].alias, name, len)) return i;
    for (int i = 0; i < f->nfields; i++)
        if (f->fields[i].nlen == len && !memcmp(f->fields[i].name, name, len)) return i;
    return -1;
}

static int has_prefix(const ftspec *f, const char *key, size_t klen)
{
    if (f->nprefix == 0) return 1;
    for (int i = 0; i < f->nprefix; i++)
        if (f->plens[i] <= klen && !memcmp(f->prefixes[i], key, f->plens[i])) return 1;
    return 0;
}

static int doc_lookup(ftspec *f, const char *key, size_t klen, uint32_t *doc)
{
    kv_entry *e = kv_peek(f->docs, key, klen);
    if (!e) return 0;
    size_t vl;
    *doc = le_get32(kv_val(e, &vl));
    return 1;
}

static uint32_t doc_new(ftspec *f, const char *key, size_t klen)
{
    uint32_t d;
    if (f->nfree) {
        d = f->freeids[--f->nfree];
    } else {
        d = f->next_id++;
        if (d >= f->nslots) {
            uint32_t n = f->nslots ? f->nslots * 2 : 64;
            f->dockey = mem_realloc(f->dockey, n * sizeof *f->dockey);
            f->docklen = mem_realloc(f->docklen, n * sizeof *f->docklen);
            memset(f->dockey + f->nslots, 0, (n - f->nslots) * sizeof *f->dockey);
            if (f->nvec) {
                f->vhash = mem_realloc(f->vhash, (size_t)n * f->nvec * sizeof *f->vhash);
                memset(f->vhash + (size_t)f->nslots * f->nvec, 0,
                       (size_t)(n - f->nslots) * f->nvec * sizeof *f->vhash);
            }
            f->nslots = n;
        }
    }
    f->dockey[d] = mem_strndup(key, klen);
    f->docklen[d] = klen;
    for (int k = 0; k < f->nvec; k++) f->vhash[(size_t)d * f->nvec + k] = 0;
    unsigned char b[4];
    le_put32(b, d);
    kv_set(f->docs, key, klen, b, 4, NULL);
    if ((uint64_t)d + 1 > f->max_doc_id) f->max_doc_id = (uint64_t)d + 1;
    return d;
}

/* Take document d out of everything (write lock held). */
static void doc_remove(ftspec *f, uint32_t d)
{
    unsigned char b[4];
    le_put32(b, d);
    ftidx_del(f->ix, d);
    for (int k = 0; k < f->nvec; k++) vindex_del(f->vec[k], b, 4);
    kv_del(f->docs, f->dockey[d], f->docklen[d]);
    mem_free(f->dockey[d]);
    f->dockey[d] = NULL;
    if (f->nfree == f->freecap) {
        f->freecap = f->freecap ? f->freecap * 2 : 64;
        f->freeids = mem_realloc(f->freeids, f->freecap * sizeof *f->freeids);
    }
    f->freeids[f->nfree++] = d;
}

/* The values of h that f's schema names (live at now). */
typedef struct docvals {
    ftidx_value *v;
    const char **vec;       /* per vector slot: the blob, or NULL */
    size_t *veclen;
    size_t n;
    double score;
} docvals;

static int live_field(hash *h, const char *name, size_t nlen, int64_t now, const char **v,
                      size_t *vl)
{
    int64_t exp;
    if (!hash_peek(h, name, nlen, v, vl, &exp)) return 0;
    return exp < 0 || exp > now;
}

/* Index h as key's document: 1 indexed, 0 taken out as a failure. */
static int doc_index(ftspec *f, const char *key, size_t klen, hash *h, int64_t now)
{
    ftidx_value vals[64], *v = f->nfields <= 64 ? vals : mem_alloc((size_t)f->nfields * sizeof *v);
    const char *vecs[16], **vec = f->nvec <= 16 ? vecs : mem_alloc((size_t)f->nvec * sizeof *vec);
    size_t veclens[16], *veclen = f->nvec <= 16 ? veclens : mem_alloc((size_t)f->nvec *
                                                                      sizeof *veclen);
    size_t n = 0;
    int ok = 1;
    double score = f->default_score;
    for (int i = 0; i < f->nfields; i++) {
        const ftfield *fd = &f->fields[i];
        const char *s;
        size_t sl;
        int have = live_field(h, fd->name, fd->nlen, now, &s, &sl);
        if (fd->kind == FTIDX_VECTOR) {
            vec[fd->vslot] = have ? s : NULL;
            veclen[fd->vslot] = have ? sl : 0;
            if (have && sl != (size_t)fd->dim * 4) ok = 0;
            continue;
        }
        if (have) v[n++] = (ftidx_value){(uint32_t)i, s, sl};
    }
    if (f->score_field) {
        const char *s;
        size_t sl;
        double d;
        if (live_field(h, f->score_field, f->sflen, now, &s, &sl)) {
            if (util_str2d(s, sl, &d) && d >= 0 && d <= 1) score = d;
            else ok = 0;
        }
    }
    uint32_t d;
    int known = doc_lookup(f, key, klen, &d);
    rwlock_wrlock(&f->lock);
    if (ok) {
        if (!known) d = doc_new(f, key, klen);
        int rc = ftidx_put(f->ix, d, v, n, score);
        if (rc < 0) ok = 0;
        unsigned char b[4];
        le_put32(b, d);
        for (int k = 0; k < f->nvec && ok; k++) {
            uint64_t *vh = &f->vhash[(size_t)d * f->nvec + k];
            if (!vec[k]) {
                vindex_del(f->vec[k], b, 4);
                *vh = 0;
                continue;
            }
            uint64_t hv = util_hash(vec[k], veclen[k], 0x5eed) | 1;
            if (*vh == hv) continue;
            uint32_t dim = (uint32_t)(veclen[k] / 4);
            float fbuf[256], *fv = dim <= 256 ? fbuf : mem_alloc((size_t)dim * sizeof *fv);
            memcpy(fv, vec[k], (size_t)dim * 4);   /* FLOAT32, little-endian as sent */
            rc = vindex_add(f->vec[k], b, 4, fv, dim);
            if (fv != fbuf) mem_free(fv);
            if (rc < 0) ok = 0;
            else *vh = hv;
        }
        if (!ok) {
            doc_remove(f, d);
            known = 0;
        }
    } else if (known) {
        doc_remove(f, d);
    }
    rwlock_wrunlock(&f->lock);
    if (!ok) f->failures++;
    if (v != vals) mem_free(v);
    if (vec != vecs) mem_free(vec);
    if (veclen != veclens) mem_free(veclen);
    return ok;
}

static void doc_forget(ftspec *f, const char *key, size_t klen)
{
    uint32_t d;
    if (!doc_lookup(f, key, klen, &d)) return;
    rwlock_wrlock(&f->lock);
    doc_remove(f, d);
    rwlock_wrunlock(&f->lock);
}

/* key of database 0 as it is now, for every index (or only `only`). */
static void key_sync(server *s, ftspec *only, const char *key, size_t klen)
{
    kv_entry *e = kv_peek(db_kv(s, 0), key, klen);
    int64_t now = srv_now_ms(s);
    hash *h = NULL;
    if (e && kv_type(e) == OBJ_HASH && !(kv_get_expire(e) >= 0 && kv_get_expire(e) <= now))
        h = kv_obj(e);
    ftreg *r = REG(s);
    for (size_t i = 0; i < r->n; i++) {
        ftspec *f = r->v[i];
        if (only && f != only) continue;
        if (!has_prefix(f, key, klen)) continue;
        if (h) doc_index(f, key, klen, h, now);
        else doc_forget(f, key, klen);
    }
}

void ft_key_event(server *s, const char *event, int db, const char *key, size_t klen)
{
    if (db != 0 || !ft_count(s)) return;
    /* "new" always comes with the command's own event; a miss changes nothing. */
    if (!strcmp(event, "new") || !strcmp(event, "keymiss")) return;
    key_sync(s, NULL, key, klen);
}

static void spec_clear(ftspec *f)
{
    char err[128];
    rwlock_wrlock(&f->lock);
    spec_build(f, err, sizeof err);     /* empty again (fails only out of memory: aborts) */
    rwlock_wrunlock(&f->lock);
}

void ft_db_flushed(server *s, int db)
{
    if (db > 0 || !ft_count(s)) return;
    ftreg *r = REG(s);
    while (r->n) ft_drop(s, r->v[r->n - 1]);
}

void ft_db_swapped(server *s, int a, int b)
{
    if ((a != 0 && b != 0) || a == b || !ft_count(s)) return;
    ftreg *r = REG(s);
    for (size_t i = 0; i < r->n; i++) {
        spec_clear(r->v[i]);
        scan_start(s, r->v[i]);
    }
}

void ft_loaded(server *s)
{
    ftreg *r = REG(s);
    for (size_t i = 0; r && i < r->n; i++) scan_start(s, r->v[i]);
}

/* ---- scans --------------------------------------------------------------------- */

typedef struct scan_ctx {
    server *s;
    ftspec *f;
    int64_t now;
} scan_ctx;

static void scan_one(void *ud, kv_entry *e)
{
    scan_ctx *x = ud;
    size_t klen;
    const char *key = kv_key(e, &klen);
    if (kv_type(e) != OBJ_HASH || !has_prefix(x->f, key, klen)) return;
    if (kv_get_expire(e) >= 0 && kv_get_expire(e) <= x->now) return;
    doc_index(x->f, key, klen, kv_obj(e), x->now);
}

/* Index up to `budget` keys' worth of f's scan; 1 when it is finished. */
static int scan_step(server *s, ftspec *f, size_t budget)
{
    scan_ctx x = {s, f, srv_now_ms(s)};
    kv *db = db_kv(s, 0);
    size_t done = 0;
    do {
        f->scan_cursor = kv_scan(db, f->scan_cursor, 64, scan_one, &x);
        done += 64;
        f->scanned += 64;
    } while (f->scan_cursor && done < budget);
    return f->scan_cursor == 0;
}

static void scan_start(server *s, ftspec *f)
{
    ftreg *r = REG(s);
    if (f->indexing) r->scanning--;
    f->indexing = 0;
    f->scan_cursor = 0;
    f->scanned = 0;
    f->scan_total = kv_size(db_kv(s, 0));
    if (persist_loading(s)) {     /* the load's end scans (ft_loaded) */
        return;
    }
    if (f->scan_total <= FT_SCAN_SYNC) {
        while (!scan_step(s, f, FT_SCAN_SYNC)) {
        }
        return;
    }
    f->indexing = 1;
    r->scanning++;
    if (!r->timer) r->timer = ev_timer_add(s->loop, 1, scan_timer, s);
}

/* Every millisecond while a scan runs: a slice of it. */
static int scan_timer(ev_loop *l, long long id, void *ud)
{
    (void)l;
    (void)id;
    server *s = ud;
    ftreg *r = REG(s);
    ft_cron(s);
    if (r->scanning) return 1;
    r->timer = 0;
    return EV_TIMER_STOP;
}

void ft_cron(server *s)
{
    ftreg *r = REG(s);
    if (!r || !r->scanning) return;
    int64_t until = util_mono_us() + 1000;      /* about 1 ms of indexing per call */
    for (size_t i = 0; i < r->n; i++) {
        ftspec *f = r->v[i];
        if (!f->indexing) continue;
        while (util_mono_us() < until) {
            if (scan_step(s, f, 256)) {
                f->indexing = 0;
                r->scanning--;
                break;
            }
        }
        if (util_mono_us() >= until) break;
    }
}

/* ---- memory -------------------------------------------------------------------- */

size_t ft_memory(const ftspec *f)
{
    size_t m = ftidx_memory(f->ix);
    for (int k = 0; k < f->nvec; k++) m += vindex_memory(f->vec[k]);
    return m;
}

size_t ft_memory_all(const server *s)
{
    const ftreg *r = s->ft;
    size_t m = 0;
    for (size_t i = 0; r && i < r->n; i++) m += ft_memory(r->v[i]);
    return m;
}

/* ---- definitions in snapshots ---------------------------------------------------- */

static void put_str(unsigned char **p, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + 4 + n > *cap) {
        *cap = (*len + 4 + n) * 2;
        *p = mem_realloc(*p, *cap);
    }
    le_put32(*p + *len, (uint32_t)n);
    memcpy(*p + *len + 4, s, n);
    *len += 4 + n;
}

int ft_defs_encode(server *s, unsigned char **out, size_t *outlen)
{
    ftreg *r = REG(s);
    size_t len = 4, cap = 256;
    unsigned char *p = mem_alloc(cap);
    le_put32(p, (uint32_t)(r ? r->n : 0));
    for (size_t i = 0; r && i < r->n; i++) {
        ftspec *f = r->v[i];
        put_str(&p, &len, &cap, f->name, f->nlen);
        unsigned char nb[4];
        le_put32(nb, (uint32_t)f->nargs);
        put_str(&p, &len, &cap, (const char *)nb, 4);
        for (int k = 0; k < f->nargs; k++) put_str(&p, &len, &cap, f->args[k], f->arglens[k]);
    }
    *out = p;
    *outlen = len;
    return 0;
}

static int get_str(const unsigned char *p, size_t len, size_t *at, const char **s, size_t *n)
{
    if (len - *at < 4) return 0;
    uint32_t l = le_get32(p + *at);
    if (len - *at - 4 < l) return 0;
    *s = (const char *)p + *at + 4;
    *n = l;
    *at += 4 + (size_t)l;
    return 1;
}

int ft_defs_decode(server *s, const unsigned char *p, size_t len, char *err, size_t errcap)
{
    if (len < 4) return fail(err, errcap, "search index definitions: truncated");
    uint32_t n = le_get32(p);
    size_t at = 4;
    for (uint32_t i = 0; i < n; i++) {
        const char *name, *nb;
        size_t nlen, nbl;
        if (!get_str(p, len, &at, &name, &nlen) || !get_str(p, len, &at, &nb, &nbl) || nbl != 4)
            return fail(err, errcap, "search index definitions: truncated at byte %zu", at);
        uint32_t argc = le_get32((const unsigned char *)nb);
        if (argc > (len - at) / 4)
            return fail(err, errcap, "search index definitions: %u arguments do not fit", argc);
        const char **argv = mem_calloc(argc + 1, sizeof *argv);
        size_t *lens = mem_calloc(argc + 1, sizeof *lens);
        int ok = 1;
        for (uint32_t k = 0; k < argc && ok; k++) ok = get_str(p, len, &at, &argv[k], &lens[k]);
        char why[256];
        if (ok && ft_create(s, name, nlen, (int)argc, argv, lens, 1, why, sizeof why) < 0) {
            snprintf(err, errcap, "search index '%.*s': %s", (int)(nlen < 64 ? nlen : 64), name,
                     why);
            ok = -1;
        } else if (!ok) {
            snprintf(err, errcap, "search index definitions: truncated at byte %zu", at);
            ok = -1;
        }
        mem_free(argv);
        mem_free(lens);
        if (ok < 0) return -1;
    }
    return 0;
}
