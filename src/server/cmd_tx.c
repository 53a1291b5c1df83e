/* cmd_tx.c -- transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
 *
 * MULTI: dispatch checks later commands as it checks every command and
 * queues them here (multi_queue) with copies of their arguments; one it
 * refuses marks the client DIRTY_EXEC so EXEC aborts with EXECABORT
 * (dispatch.c decides; this file keeps the queue).  EXEC runs the queue
 * back to back on the loop thread (nothing else runs in between, which is
 * what makes it atomic) and replies with one array of the replies.
 *
 * WATCH: a table maps each watched (database, key) to the clients watching
 * it; every modification (key_modified, including expiry, FLUSH* and
 * SWAPDB) marks those clients DIRTY_CAS and their EXEC returns a null
 * array.  Each client also
 * lists its own watches so UNWATCH/EXEC/disconnect release them in
 * O(own watches).  When nobody watches anything, key_modified costs one
 * branch.
 *
 * Loop thread only. */
#include "server.h"
#include "acl.h"
#include "handlers.h"

#include <string.h>

#include "engram/mem.h"
#include "engram/util.h"

typedef struct wnode {
    struct wnode *next;          /* hash chain */
    client **clients;
    int n, cap;
    int db;
    size_t klen;
    char key[];
} wnode;

struct watched_key {
    struct watched_key *next;
    wnode *node;
};

struct watch_table {
    wnode **b;
    size_t nb;                   /* power of two */
    size_t nkeys;
};

static struct watch_table *watch_table(server *s)
{
    if (!s->watches) {
        s->watches = mem_calloc(1, sizeof *s->watches);
        s->watches->nb = 64;
        s->watches->b = mem_calloc(64, sizeof *s->watches->b);
    }
    return s->watches;
}

static size_t watch_hash(int db, const char *key, size_t klen)
{
    return (size_t)util_hash(key, klen, 0x77617463 + (uint64_t)db);
}

static wnode **watch_slot(struct watch_table *t, int db, const char *key, size_t klen)
{
    wnode **pp = &t->b[watch_hash(db, key, klen) & (t->nb - 1)];
    while (*pp && !((*pp)->db == db && (*pp)->klen == klen && !memcmp((*pp)->key, key, klen)))
        pp = &(*pp)->next;
    return pp;
}

static void watch_grow(struct watch_table *t)
{
    size_t nb = t->nb * 2;
    wnode **b = mem_calloc(nb, sizeof *b);
    for (size_t i = 0; i < t->nb; i++) {
        for (wnode *n = t->b[i], *next; n; n = next) {
            next = n->next;
            size_t h = watch_hash(n->db, n->key, n->klen) & (nb - 1);
            n->next = b[h];
            b[h] = n;
        }
    }
    mem_free(t->b);
    t->b = b;
    t->nb = nb;
}

static void watch_key(client *c, const char *key, size_t klen)
{
    struct watch_table *t = watch_table(c->srv);
    for (struct watched_key *w = c->watched; w; w = w->next)
        if (w->node->db == c->db && w->node->klen == klen && !memcmp(w->node->key, key, klen))
            return;
    wnode **pp = watch_slot(t, c->db, key, klen);
    if (!*pp) {
        wnode *n = mem_calloc(1, sizeof *n + klen);
        memcpy(n->key, key, klen);
        n->klen = klen;
        n->db = c->db;
        *pp = n;
        if (++t->nkeys > t->nb) watch_grow(t);
        pp = watch_slot(t, c->db, key, klen);
    }
    wnode *n = *pp;
    if (n->n == n->cap) {
        n->cap = n->cap ? n->cap * 2 : 2;
        n->clients = mem_realloc(n->clients, (size_t)n->cap * sizeof *n->clients);
    }
    n->clients[n->n++] = c;
    struct watched_key *w = mem_alloc(sizeof *w);
    w->node = n;
    w->next = c->watched;
    c->watched = w;
}

void srv_unwatch_all(client *c)
{
    struct watch_table *t = c->srv->watches;
    while (c->watched) {
        struct watched_key *w = c->watched;
        wnode *n = w->node;
        for (int i = 0; i < n->n; i++) {
            if (n->clients[i] == c) {
                n->clients[i] = n->clients[--n->n];
                break;
            }
        }
        if (n->n == 0) {
            wnode **pp = watch_slot(t, n->db, n->key, n->klen);
            *pp = n->next;
            t->nkeys--;
            mem_free(n->clients);
            mem_free(n);
        }
        c->watched = w->next;
        mem_free(w);
    }
    c->flags &= ~CLIENT_DIRTY_CAS;
}

void srv_watch_table_free(server *s)
{
    if (!s->watches) return;
    mem_free(s->watches->b);
    mem_free(s->watches);
    s->watches = NULL;
}

void srv_watch_touch(server *s, int db, const char *key, size_t klen)
{
    struct watch_table *t = s->watches;
    if (!t || !t->nkeys) return;
    wnode *n = *watch_slot(t, db, key, klen);
    if (!n) return;
    for (int i = 0; i < n->n; i++) n->clients[i]->flags |= CLIENT_DIRTY_CAS;
}

/* FLUSHDB/FLUSHALL/SWAPDB: every watcher of a key of the database is
 * dirty.  (Redis marks only keys that existed, or that exist in the other
 * database of a SWAPDB; the difference is a watch on a key that was
 * missing on both sides, which we conservatively mark too -- EXEC then
 * retries, never commits on stale data.) */
void srv_watch_touch_db(server *s, int db)
{
    struct watch_table *t = s->watches;
    if (!t || !t->nkeys) return;
    for (size_t i = 0; i < t->nb; i++)
        for (wnode *n = t->b[i]; n; n = n->next)
            if (db < 0 || n->db == db)
                for (int j = 0; j < n->n; j++) n->clients[j]->flags |= CLIENT_DIRTY_CAS;
}

void multi_queue(client *c, command *k)
{
    if (c->mq_len == c->mq_cap) {
        c->mq_cap = c->mq_cap ? c->mq_cap * 2 : 8;
        c->mq = mem_realloc(c->mq, (size_t)c->mq_cap * sizeof *c->mq);
    }
    queued_cmd *q = &c->mq[c->mq_len++];
    q->k = k;
    q->argc = c->argc;
    q->argv = mem_alloc((size_t)c->argc * sizeof *q->argv);
    q->argvlen = mem_alloc((size_t)c->argc * sizeof *q->argvlen);
    for (int i = 0; i < c->argc; i++) {
        q->argv[i] = mem_strndup(c->argv[i], c->argvlen[i]);
        q->argvlen[i] = c->argvlen[i];
    }
    c->mflags |= k->flags;
    reply_simple(&c->out, "QUEUED");
}

void multi_discard(client *c)
{
    for (int i = 0; i < c->mq_len; i++) {
        queued_cmd *q = &c->mq[i];
        for (int j = 0; j < q->argc; j++) mem_free(q->argv[j]);
        mem_free(q->argv);
        mem_free(q->argvlen);
    }
    mem_free(c->mq);
    c->mq = NULL;
    c->mq_len = c->mq_cap = 0;
    c->mflags = 0;
    c->flags &= ~(CLIENT_MULTI | CLIENT_DIRTY_EXEC);
    srv_unwatch_all(c);
}

void cmd_multi(client *c)
{
    if (c->flags & CLIENT_MULTI) {
        reply_error(&c->out, "ERR MULTI calls can not be nested");
        return;
    }
    c->flags |= CLIENT_MULTI;
    reply_ok(&c->out);
}

void cmd_discard(client *c)
{
    if (!(c->flags & CLIENT_MULTI)) {
        reply_error(&c->out, "ERR DISCARD without MULTI");
        return;
    }
    multi_discard(c);
    reply_ok(&c->out);
}

/* Watched keys that expired since WATCH count as modified (Redis >= 6.0.9):
 * looking them up now deletes them, and the expire hook marks us dirty. */
static void exec_check_expired(client *c)
{
    for (struct watched_key *w = c->watched; w; w = w->next)
        kv_find(db_kv(c->srv, w->node->db), w->node->key, w->node->klen, srv_now_ms(c->srv));
}

void cmd_exec(client *c)
{
    if (!(c->flags & CLIENT_MULTI)) {
        reply_error(&c->out, "ERR EXEC without MULTI");
        return;
    }
    if (c->flags & CLIENT_DIRTY_EXEC) {
        reply_error(&c->out, "EXECABORT Transaction discarded because of previous errors.");
        multi_discard(c);
        return;
    }
    exec_check_expired(c);
    if (c->flags & CLIENT_DIRTY_CAS) {
        reply_null_array(&c->out);
        multi_discard(c);
        return;
    }
    /* Run the queue.  The queue is detached first so that nothing a queued
     * command does can touch it. */
    queued_cmd *q = c->mq;
    int n = c->mq_len;
    c->mq = NULL;
    c->mq_len = c->mq_cap = 0;
    c->flags &= ~CLIENT_MULTI;
    srv_unwatch_all(c);
    reply_array(&c->out, n);
    const char **saved_argv = c->argv;
    size_t *saved_lens = c->argvlen;
    int saved_argc = c->argc;
    c->flags |= CLIENT_IN_EXEC;
    for (int i = 0; i < n; i++) {
        c->argc = q[i].argc;
        c->argv = (const char **)q[i].argv;
        c->argvlen = q[i].argvlen;
        /* As Redis: permissions are checked again, since ACL rules may
         * have changed since the command was queued; only that command
         * fails. */
        char why[320];
        if (!(q[i].k->flags & CMD_NO_AUTH) && !(c->flags & CLIENT_MASTER) &&
            !acl_check(c, q[i].k, why, sizeof why)) {
            reply_error(&c->out, "NOPERM ACLs rules changed between the moment the transaction "
                        "was accumulated and its execution");
            continue;
        }
        dispatch_exec(c, q[i].k);
    }
    c->flags &= ~CLIENT_IN_EXEC;
    c->argc = saved_argc;
    c->argv = saved_argv;
    c->argvlen = saved_lens;
    c->mq = q;
    c->mq_len = c->mq_cap = n;
    multi_discard(c);
}

void cmd_watch(client *c)
{
    if (c->flags & CLIENT_MULTI) {
        reply_error(&c->out, "ERR WATCH inside MULTI is not allowed");
        return;
    }
    /* A key already expired is deleted now, before the watch starts. */
    for (int i = 1; i < c->argc; i++) {
        key_lookup(c, c->argv[i], c->argvlen[i]);
        watch_key(c, c->argv[i], c->argvlen[i]);
    }
    reply_ok(&c->out);
}

void cmd_unwatch(client *c)
{
    srv_unwatch_all(c);
    reply_ok(&c->out);
}
