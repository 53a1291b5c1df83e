/* ftspec.h -- search indices over hashes (FT.CREATE and the rest): an
 * index's definition, its documents, and how writes reach it.
 *
 * An index (ftspec) is a definition -- the arguments of FT.CREATE after its
 * name, with FT.ALTER's additions appended -- compiled into a schema, plus
 * what the definition built:
 *   - a document index (ftindex.h: TEXT, TAG, NUMERIC) whose field i is the
 *     schema's field i (VECTOR fields are in it only by name);
 *   - one vindex per VECTOR field (FLAT or HNSW, engram's engines), keyed by
 *     the document's id in 4 little-endian bytes;
 *   - the documents: hash key <-> document id.  Ids are small and reused
 *     (the document table is dense); max_doc_id is the highest ever given.
 *
 * Which hashes: the keys of database 0 (RediSearch indexes database 0
 * only; FT.CREATE elsewhere is refused as it refuses it) that start with one
 * of the definition's prefixes (none: every key).  A hash is indexed whole
 * at every change: its TEXT, TAG and NUMERIC values replace the old entry
 * and a VECTOR field is re-inserted only when its bytes changed.  A hash
 * whose vector field is not DIM x 4 bytes or whose NUMERIC field does not
 * parse is taken out of the index and counted (hash_indexing_failures); the
 * write itself succeeded, as in Redis.
 *
 * How writes arrive.  As RediSearch does, from the keyspace events
 * (notify.h): every event on a key of database 0 while an index exists
 * calls ft_key_event, which looks at the key as it is now -- a hash under
 * a prefix is (re)indexed, anything else is taken out.  FLUSHDB/FLUSHALL
 * and SWAPDB publish no per-key events: FLUSHALL (and FLUSHDB of database
 * 0) drops every index, as RediSearch does on a flush (ft_db_flushed); a
 * SWAPDB with database 0 re-indexes (ft_db_swapped).  Loading publishes nothing: ft_loaded scans once it is
 * done.
 *
 * Scans.  FT.CREATE (without SKIPINITIALSCAN), FT.ALTER, a load and a
 * SWAPDB of database 0 index what already exists: up to FT_SCAN_SYNC keys
 * at once, a bigger keyspace in slices of about a millisecond from a 1 ms
 * timer armed while a scan runs (ft_cron), reported by FT.INFO as indexing /
 * percent_indexed.  Writes during a scan are indexed by their events as
 * usual; indexing a hash twice is harmless.
 *
 * Threads.  Definitions, documents and scans belong to the loop thread.
 * Searches run on the pool (cmd_ft.c) and read an index under its read
 * lock; the loop takes the write lock for every change.  A search holds a
 * reference (ft_acquire/ft_release, loop thread), so FT.DROPINDEX while it
 * runs only marks the index dropped and the search finishes on it.
 *
 * Errors: functions that build from arguments reply nothing; they return 0
 * or -1 with RediSearch's error text in err. */
#ifndef ENGRAM_FTSPEC_H
#define ENGRAM_FTSPEC_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "engram/ftindex.h"
#include "engram/kv.h"
#include "engram/rwlock.h"
#include "engram/vindex.h"

typedef struct server server;

#define FT_SCAN_SYNC 10000u          /* keys indexed at once by FT.CREATE */

typedef struct ftfield {
    char *name;            /* the hash field (identifier) */
    char *alias;           /* AS name (the query's @name); name when none */
    size_t nlen, alen;
    ftidx_kind kind;
    int sortable, nostem, casesensitive, noindex;
    double weight;         /* TEXT */
    char sep;              /* TAG */
    /* VECTOR */
    vindex_type algo;
    uint32_t dim, M, efc, ef_runtime, initial_cap, block_size;
    dist_metric metric;
    double epsilon;
    int vslot;             /* its vindex in spec->vec */
} ftfield;

typedef struct ftspec {
    char *name;
    size_t nlen;
    int refs;              /* the registry's and searches' (loop thread) */
    _Atomic int dropped;   /* set by the loop, read by searches on workers */
    rwlock lock;           /* readers: searches; writer: the loop (writer-preferring) */
    /* the definition */
    int nargs;
    char **args;           /* owned copies, FT.CREATE's after the name */
    size_t *arglens;
    int nprefix;
    char **prefixes;
    size_t *plens;
    double default_score;
    char *score_field;     /* SCORE_FIELD (NULL: none) */
    size_t sflen;
    int nostopwords;       /* STOPWORDS 0 */
    int nstop;             /* a custom list: its words (-1: the default list) */
    char **stopwords;
    ftfield *fields;
    int nfields;
    /* what it built */
    ftidx *ix;
    vindex **vec;          /* one per VECTOR field */
    int nvec;
    kv *docs;              /* key -> document id (4 bytes LE) */
    char **dockey;         /* id -> key (owned; NULL: free id) */
    size_t *docklen;
    uint64_t *vhash;       /* id * nvec + slot: a hash of the vector's bytes */
    uint32_t nslots;       /* dockey has room for this many ids */
    uint32_t *freeids;     /* ids to reuse, most recently freed last */
    uint32_t nfree, freecap;
    uint32_t next_id;      /* ids below it have been given */
    uint64_t max_doc_id;
    uint64_t failures;     /* hash_indexing_failures */
    uint64_t uses;         /* number_of_uses */
    /* the scan of existing keys */
    int indexing;
    uint64_t scan_cursor;
    uint64_t scanned, scan_total;
} ftspec;

/* The registry (server.c calls init/fini). */
void ft_init(server *s);
void ft_fini(server *s);
size_t ft_count(const server *s);
ftspec *ft_at(server *s, size_t i);
ftspec *ft_find(server *s, const char *name, size_t nlen);

/* Build an index from FT.CREATE's arguments after the name (argv[0..argc)),
 * register it and start its scan (unless SKIPINITIALSCAN or noscan).  0,
 * or -1 with the error text in err (nothing registered). */
int ft_create(server *s, const char *name, size_t nlen, int argc, const char *const *argv,
              const size_t *argvlen, int noscan, char *err, size_t errcap);
/* FT.ALTER's field definitions argv[0..argc) added: the index is rebuilt
 * and the existing hashes indexed again (SKIPINITIALSCAN or not: the
 * rebuilt index starts empty).  0 or -1. */
int ft_alter(server *s, ftspec *f, int argc, const char *const *argv, const size_t *argvlen,
             char *err, size_t errcap);
/* Take f out of the registry (its documents' keys stay unless the caller
 * deletes them: DD). */
void ft_drop(server *s, ftspec *f);

ftspec *ft_acquire(ftspec *f);
void ft_release(ftspec *f);

/* Writes (see above).  Loop thread. */
void ft_key_event(server *s, const char *event, int db, const char *key, size_t klen);
void ft_db_flushed(server *s, int db);       /* db -1: FLUSHALL; drops the indices */
void ft_db_swapped(server *s, int a, int b);
void ft_loaded(server *s);
void ft_cron(server *s);

/* The document id's key (borrowed; NULL if free).  Under the lock. */
const char *ft_doc_key(const ftspec *f, uint32_t doc, size_t *klen);
/* The schema field whose alias (or name) is these bytes, or -1. */
int ft_field_by_alias(const ftspec *f, const char *name, size_t len);
/* Bytes the index's engines hold (the document index and the vector
 * indices allocate with malloc, not mem_*: INFO's used_memory adds these;
 * the key table and the definition are mem_*'s and counted there). */
size_t ft_memory(const ftspec *f);
size_t ft_memory_all(const server *s);

/* Snapshots: every definition as a section payload (u32 count, then per
 * index: str name, u32 nargs, nargs x str), and back. */
int ft_defs_encode(server *s, unsigned char **out, size_t *len);
int ft_defs_decode(server *s, const unsigned char *p, size_t len, char *err, size_t errcap);

#endif
