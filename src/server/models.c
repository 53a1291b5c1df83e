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

int models_load(server *s, char *err, size_t errcap)
{
    char **w;
    size_t *wl;
    const char *list = s->cfg.embedders ? s->cfg.embedders : "";
    int n = util_split_args(list, strlen(list), &w, &wl);
    s->models = mem_calloc(1, sizeof *s->models);
    if (n < 0 || n % 2) {
        snprintf(err, errcap, "embedder: expected `embedder NAME PATH` pairs, got '%s'", list);
        if (n > 0) util_free_args(w, wl, n);
        return -1;
    }
    s->models->m = mem_calloc((size_t)(n / 2) + 1, sizeof *s->models->m);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i += 2) {
        const char *name = w[i], *path = w[i + 1];
        char e[512];
        if (!strcmp(name, "hash") || models_find(s, name, wl[i])) {
            snprintf(err, errcap, "embedder '%s': the name is %s", name,
                     strcmp(name, "hash") ? "used twice" : "the built-in hash embedder's");
            rc = -1;
            break;
        }
        int64_t t0 = util_mono_ms();
        embedder *em;
        if (embed_model_load(path, &em, e, sizeof e) < 0) {
            snprintf(err, errcap, "embedder '%s': %s", name, e);
            rc = -1;
            break;
        }
        log_msg(LOG_NOTICE, "Embedder '%s' loaded from %s: %u words x %u dimensions (%s) in %.2f s",
                name, path, embed_vocab_size(em), embed_dim(em), embed_format(em),
                (double)(util_mono_ms() - t0) / 1000);
        s->models->m[s->models->n].name = mem_strndup(name, wl[i]);
        s->models->m[s->models->n].e = em;
        s->models->n++;
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
