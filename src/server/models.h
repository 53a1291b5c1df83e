/* models.h -- the text embedders an index can use: the built-in `hash`
 * embedder and the word-vector models the config names (`embedder NAME
 * PATH`, loaded once at start-up; a client never names a file).  An index
 * created with VNEW ... EMBED name carries its embedder (the set's udata),
 * so VADD ... TEXT and VSEARCH ... TEXT embed in the server.
 *
 * Threads: loading, checking and attaching on the loop thread; models_text
 * and models_name from any thread holding a reference to the entry (an
 * embedder is read-only once built). */
#ifndef ENGRAM_MODELS_H
#define ENGRAM_MODELS_H

#include <stddef.h>
#include <stdint.h>

#include "engram/embed.h"
#include "engram/vset.h"

typedef struct server server;
typedef struct models models;

/* Load every model of cfg.embedders.  -1 with a message naming the model
 * and file on failure (the server refuses to start). */
int models_load(server *s, char *err, size_t errcap);
void models_free(server *s);
size_t models_memory(const server *s);

/* May an index of dim dimensions use embedder `name`?  0, or -1 with the
 * reply text in err ("ERR unknown embedder 'x' ...", "ERR embedder 'glove'
 * has dimension 300, the index 256"). */
int models_check(server *s, const char *name, size_t nlen, uint32_t dim, char *err, size_t errcap);
/* Attach it to e (after models_check).  0 or -1 (out of memory). */
int models_attach(server *s, vset *e, const char *name, size_t nlen);

/* The embedder's name, or NULL when the index has none. */
const char *models_name(const vset *e);
/* The index's embedder (NULL: none), for a worker to embed with: a model
 * lives until the server exits, a hash embedder as long as its index, so a
 * job holding a reference to the index may use it. */
const embedder *models_embedder(const vset *e);
/* 1 when embedding with the index's embedder is too slow for the loop (a
 * neural model: milliseconds per text), so TEXT is embedded on a worker. */
int models_heavy(const vset *e);
/* Embed len bytes of text into out[dim] (L2-normalised).  Returns the
 * number of words that contributed (0: no usable words, out is zero), or
 * -1 when the index has no embedder. */
int models_text(const vset *e, const void *text, size_t len, float *out);

#endif
