/* models.c -- embedders attached to indices (see models.h).
 *
 * Models are loaded once, at start-up, and shared by every index that
 * names them; they live until the server exits.  `hash` has no file and
 * depends on the dimension, so each index gets its own small hash
 * embedder, freed with the index (registry udata destructor, which may run
 * on a search worker dropping the last reference). */
#include "models.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "engram/embed.h"
#include "engram/mem.h"
#include "engram/util.h"
#include "log.h"
#include "server.h"

typedef struct models_model {
    char *name;
    embedder *e;
} models_model;

struct models {
    models_model *m;
    int n;
};

/* What an index carries. */
typedef struct models_attached {
    embedder *e;
    int owned;              /* a hash embedder of its own */
    char name[];
} models_attached;

static const models_model *models_find(const server *s, const char *name, size_t nlen)
{
    const models *ms = s->models;
    for (int i = 0; ms && i < ms->n; i++)
        if (strlen(ms->m[i].name) == nlen && !memcmp(ms->m[i].name, name, nlen)) return &ms->m[i];
    return NULL;
}

/* One `embedder` line's options after `bert DIR`: pairs of a keyword and
 * its value.  Returns the words used (from i), or -1 with err set. */
static int models_bert_opts(char **w, int n, int i, const char *name, embed_bert_opts *o,
                            char *err, size_t errcap)
{
    int used = 0;
    for (; i + 1 < n; i += 2, used += 2) {
        const char *k = w[i], *v = w[i + 1];
        if (!strcasecmp(k, "pooling")) {
            if (!strcasecmp(v, "mean")) o->pooling = EMBED_POOL_MEAN;
            else if (!strcasecmp(v, "cls")) o->pooling = EMBED_POOL_CLS;
            else goto bad;
        } else if (!strcasecmp(k, "normalize")) {
            if (!strcasecmp(v, "yes")) o->no_normalize = 0;
            else if (!strcasecmp(v, "no")) o->no_normalize = 1;
            else goto bad;
        } else if (!strcasecmp(k, "max-tokens")) {
            long long x;
            if (!util_str2ll(v, strlen(v), &x) || x < 2 || x > 8192) goto bad;
            o->max_tokens = (uint32_t)x;
        } else {
            break; /* the next embedder's name */
        }
    }
    return used;
bad:
    snprintf(err, errcap, "embedder '%s': bad value '%s' for %s (pooling mean|cls, normalize "
             "yes|no, max-tokens 2..8192)", name, w[i + 1], w[i]);
    return -1;
}

/* The `embedder` lines, concatenated word by word (config.c appends each
 * line's words): NAME PATH (a word-vector file), or NAME bert DIR followed
 * by any of `pooling mean|cls`, `normalize yes|no`, `max-tokens N`.  A
 * word-vector file called "bert" must be written ./bert. */
int models_load(server *s, char *err, size_t errcap)
{
    char **w;
    size_t *wl;
    const char *list = s->cfg.embedders ? s->cfg.embedders : "";
    int n = util_split_args(list, strlen(list), &w, &wl);
    s->models = mem_calloc(1, sizeof *s->models);
    if (n < 0) {
        snprintf(err, errcap, "embedder: cannot parse '%s'", list);
        return -1;
    }
    s->models->m = mem_calloc((size_t)(n / 2) + 1, sizeof *s->models->m);
    int rc = 0;
    for (int i = 0; i < n && rc == 0;) {
        const char *name = w[i];
        char e[512];
        if (i + 1 >= n) {
            snprintf(err, errcap, "embedder '%s': expected `embedder NAME PATH` or `embedder NAME "
                     "bert DIR [options]`", name);
            rc = -1;
            break;
        }
        if (!strcmp(name, "hash") || models_find(s, name, wl[i])) {
            snprintf(err, errcap, "embedder '%s': the name is %s", name,
                     strcmp(name, "hash") ? "used twice" : "the built-in hash embedder's");
            rc = -1;
            break;
        }
        int64_t t0 = util_mono_ms();
        embedder *em;
        int bert = !strcasecmp(w[i + 1], "bert");
        const char *path = w[i + 1];
        int next = i + 2;
        if (bert) {
            embed_bert_opts o = {0};
            int used = i + 2 < n ? models_bert_opts(w, n, i + 3, name, &o, err, errcap) : 0;
            if (i + 2 >= n) {
                snprintf(err, errcap, "embedder '%s': `bert` needs a model directory", name);
                rc = -1;
                break;
            }
            if (used < 0) {
                rc = -1;
                break;
            }
            path = w[i + 2];
            next = i + 3 + used;
            if (embed_bert_load(path, &o, &em, e, sizeof e) < 0) {
                snprintf(err, errcap, "embedder '%s': %s", name, e);
                rc = -1;
                break;
            }
            log_msg(LOG_NOTICE, "Embedder '%s' loaded from %s: BERT, %u dimensions, %u-word "
                    "vocabulary, %s weights, %u tokens per text, %s pooling%s, %.1f MB in %.2f s",
                    name, path, embed_dim(em), embed_vocab_size(em), embed_format(em),
                    embed_max_tokens(em), o.pooling == EMBED_POOL_CLS ? "CLS" : "mean",
                    o.no_normalize ? ", not normalised" : "", (double)embed_memory(em) / 1e6,
                    (double)(util_mono_ms() - t0) / 1000);
        } else {
            if (embed_model_load(path, &em, e, sizeof e) < 0) {
                snprintf(err, errcap, "embedder '%s': %s", name, e);
                rc = -1;
                break;
            }
            log_msg(LOG_NOTICE, "Embedder '%s' loaded from %s: %u words x %u dimensions (%s) in %.2f s",
                    name, path, embed_vocab_size(em), embed_dim(em), embed_format(em),
                    (double)(util_mono_ms() - t0) / 1000);
        }
        s->models->m[s->models->n].name = mem_strndup(name, wl[i]);
        s->models->m[s->models->n].e = em;
        s->models->n++;
        i = next;
    }
    if (n > 0) util_free_args(w, wl, n);
    return rc;
}

void models_free(server *s)
{
    if (!s->models) return;
    for (int i = 0; i < s->models->n; i++) {
        embed_free(s->models->m[i].e);
        mem_free(s->models->m[i].name);
    }
    mem_free(s->models->m);
    mem_free(s->models);
    s->models = NULL;
}

size_t models_memory(const server *s)
{
    size_t n = 0;
    for (int i = 0; s->models && i < s->models->n; i++) n += embed_memory(s->models->m[i].e);
    return n;
}

int models_check(server *s, const char *name, size_t nlen, uint32_t dim, char *err, size_t errcap)
{
    if (nlen == 4 && !memcmp(name, "hash", 4)) return 0;
    const models_model *m = models_find(s, name, nlen);
    if (!m) {
        snprintf(err, errcap, "ERR unknown embedder '%.*s' (use hash, or a model named by an "
                 "`embedder NAME PATH` line in the config)", (int)(nlen < 64 ? nlen : 64), name);
        return -1;
    }
    if (embed_dim(m->e) != dim) {
        snprintf(err, errcap, "ERR embedder '%s' has dimension %u, the index %u", m->name,
                 embed_dim(m->e), dim);
        return -1;
    }
    return 0;
}

static void models_detach(void *p)
{
    models_attached *a = p;
    if (a->owned) embed_free(a->e);
    mem_free(a);
}

int models_attach(server *s, vset *e, const char *name, size_t nlen)
{
    models_attached *a = mem_alloc(sizeof *a + nlen + 1);
    memcpy(a->name, name, nlen);
    a->name[nlen] = '\0';
    if (nlen == 4 && !memcmp(name, "hash", 4)) {
        char err[128];
        if (embed_hash_new(vindex_dim(vset_index(e)), &a->e, err, sizeof err) < 0) {
            mem_free(a);
            return -1;
        }
        a->owned = 1;
    } else {
        const models_model *m = models_find(s, name, nlen);
        if (!m) {
            mem_free(a);
            return -1;
        }
        a->e = m->e;
        a->owned = 0;
    }
    vset_set_udata(e, a, models_detach);
    return 0;
}

const char *models_name(const vset *e)
{
    const models_attached *a = vset_udata(e);
    return a ? a->name : NULL;
}

int models_text(const vset *e, const void *text, size_t len, float *out)
{
    const models_attached *a = vset_udata(e);
    if (!a) return -1;
    int n = embed_text(a->e, text, len, out);
    return n < 0 ? 0 : n;
}

const embedder *models_embedder(const vset *e)
{
    const models_attached *a = vset_udata(e);
    return a ? a->e : NULL;
}

int models_heavy(const vset *e)
{
    const models_attached *a = vset_udata(e);
    return a && !strcmp(embed_kind(a->e), "bert");
}
