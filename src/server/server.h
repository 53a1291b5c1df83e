/* server.h -- the server's private contract: the server state, the client,
 * the command table entry, and the few services command handlers use.
 *
 * Threads: everything declared here belongs to the event-loop thread.
 *
 * Command handlers (cmd_*.c) are `void handler(client *c)`.  Rules:
 *   - c->argv[0..argc) / c->argvlen are the request's arguments, valid only
 *     during the call (they point into the query buffer); copy what you keep.
 *   - Dispatch already found the command (a container's subcommand is a
 *     command of its own) and checked its arity (command.h).
 *   - Validate everything first, then mutate, then reply exactly once
 *     (an aggregate counts as one reply) into c->out with reply_*().
 *     A rejected command leaves the keyspace untouched.
 *   - Use srv_now_ms(c->srv) for expiry decisions: it is fixed for the
 *     duration of one command (as Redis's cached command time), so a key
 *     cannot expire half-way through a command.  key_lookup / key_lookup_read
 *     (keyspace.h) look keys up in the client's database at that time.
 *   - After modifying a key, call key_modified (WATCH invalidation, dirty
 *     counter, the log); after FLUSH*, db_flushed (keyspace.h).
 *   - Error texts follow Redis exactly where Redis has the command. */
#ifndef ENGRAM_SERVER_H
#define ENGRAM_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "engram/config.h"
#include "engram/dlist.h"
#include "engram/ev.h"
#include "engram/kv.h"
#include "engram/pool.h"
#include "engram/reply.h"
#include "engram/resp.h"
#include "engram/vindex.h"
#include "command.h"
#include "deferred.h"
#include "keyspace.h"

/* The Redis version engram answers to in HELLO and INFO: clients gate
 * features on it (redis-py's and node-redis's vector-set tests need 8.x).
 * engram answers Redis 8.8's vector sets as Redis does, and the rest of
 * the surface it implements as Redis 7.0+ does (docs/commands.md lists
 * which commands). */
#define ENGRAM_REDIS_COMPAT "8.8.0"

typedef struct server server;
typedef struct client client;

/* Client flags. */
enum {
    CLIENT_CLOSE_AFTER_REPLY = 1 << 0,  /* flush replies, then close */
    CLIENT_CLOSE_ASAP = 1 << 1,         /* close without flushing */
    CLIENT_MULTI = 1 << 2,
    CLIENT_DIRTY_CAS = 1 << 3,          /* a WATCHed key changed */
    CLIENT_DIRTY_EXEC = 1 << 4,         /* a command was refused while queuing */
    CLIENT_AUTHED = 1 << 5,             /* AUTH succeeded (matters only while
                                           requirepass is set: see client_must_auth) */
    CLIENT_IN_EXEC = 1 << 6,
    CLIENT_BLOCKED = 1 << 7,            /* input paused until its replies in
                                           flight are answered (deferred.h) */
    CLIENT_PUBSUB = 1 << 8,             /* has subscriptions (pubsub.h) */
    CLIENT_REPLICA = 1 << 9,            /* a replica of ours, after SYNC/PSYNC (repl.h) */
    CLIENT_MASTER = 1 << 10,            /* the link to our master: its stream runs
                                           here with replies suppressed (repl.h) */
};

/* A command queued by MULTI. */
typedef struct queued_cmd {
    command *k;
    int argc;
    char **argv;             /* owned copies */
    size_t *argvlen;
} queued_cmd;

struct client {
    uint64_t id;
    int fd;
    server *srv;
    unsigned flags;
    int resp;                /* 2 or 3; mirrors out.proto */
    int db;                  /* the selected database (SELECT) */
    /* input: bytes [qpos, qlen) of qbuf are not consumed yet */
    char *qbuf;
    size_t qpos, qlen, qcap;
    resp_parser parser;
    /* output */
    reply out;
    int64_t obuf_soft_since_ms;  /* when the soft output limit was first exceeded, 0 = not */
    /* the command being executed */
    int argc;
    const char **argv;
    size_t *argvlen;
    command *cur;
    command *last;           /* CLIENT LIST's cmd= */
    /* identity */
    char *name, *lib_name, *lib_ver;
    char addr[64], laddr[64];
    int64_t ctime_ms, last_io_ms;
    /* MULTI / WATCH (cmd_tx.c) */
    queued_cmd *mq;
    int mq_len, mq_cap;
    unsigned mflags;         /* the flags of every queued command, or'ed */
    struct watched_key *watched;   /* singly linked list of this client's WATCHes */
    /* replies computed off the loop, in request order (deferred.h) */
    deferred_queue dq;
    struct ps_client *ps;    /* its subscriptions (pubsub.c); NULL: none */
    struct acl_user *user;   /* who it is (acl.h); a user's deletion closes it */
    /* input left over when the pass's time ran out (conn.c): on the
     * server's turn list, queued as number turn_seq */
    dlist_node turn;
    uint64_t turn_seq;
    /* the server's lists */
    dlist_node node;         /* all clients */
    dlist_node pending;      /* clients with replies to write */
    /* persistence (persist.c): replies from out offset ps_mark on wait for
     * the log's commit */
    client *ps_next;
    size_t ps_mark;
    int ps_unacked;
    /* replication (repl_master.c): set while c is a replica of ours */
    struct repl_replica *rr;
};

/* Counters shown by INFO stats and reset by CONFIG RESETSTAT. */
typedef struct server_stats {
    long long conns;             /* total_connections_received */
    long long cmds;              /* total_commands_processed */
    long long rejected_conns;
    long long expired_keys;
    long long expired_subkeys;   /* hash fields expired (Redis 7.4's expired_subkeys) */
    long long evicted_keys;      /* keys deleted at maxmemory (evict.c) */
    long long keyspace_hits, keyspace_misses;
    long long net_in, net_out;   /* bytes */
    long long errors;            /* total_error_replies */
    long long obuf_kills;        /* clients closed for their output buffer */
    long long qbuf_kills;
} server_stats;

struct watch_table;

struct server {
    config cfg;
    ev_loop *loop;
    kv **dbs;                    /* the databases (keyspace.c) */
    int ndbs;
    void *dbctx;                 /* their hooks' data (keyspace.c) */
    pool *lazyfree;              /* the lazy-free thread (keyspace.c) */
    struct hkeys *hkeys;         /* the keys of hashes with field deadlines (hkeys.c) */
    void *ft;                    /* the search indices (ftspec.c) */
    int ft_on;                   /* there is at least one (notify.h asks) */
    int lfds[16];
    int nlfds;
    int port;                    /* actual port (cfg.port may be 0) */
    dlist clients;               /* all connected clients (client.node) */
    size_t nclients;
    dlist pending;               /* clients with replies to write, in the
                                    order their replies appeared (conn.c) */
    uint64_t next_client_id;
    int64_t start_wall_ms, start_mono_ms;
    int64_t cmd_time_ms;         /* "now" for the command being executed */
    int64_t loop_mono_ms;        /* monotonic time when the loop last woke */
    int64_t clock_us;            /* wall clock at the loop's wake-up or the
                                    end of the last command (dispatch.c) */
    int64_t pass_end_us;         /* clock_us past which a pass's clients take
                                    turns (srv_after_sleep, conn.c) */
    int64_t commit_us;           /* running average of a log commit's time */
    dlist turns;                 /* clients waiting to run the rest of their
                                    input, oldest first (conn.c) */
    uint64_t turn_seq;           /* numbers them as they are queued */
    long long turn_timer;        /* runs them in the next pass (0: none armed) */
    long long dirty;             /* writes since start (rdb_changes_since_last_save) */
    server_stats st;
    uint64_t rng;
    struct watch_table *watches;
    struct pubsub *pubsub;       /* channels, patterns, subscribers (pubsub.c) */
    struct acl_state *acl;       /* users and the ACL log (acl.c) */
    struct persist *ps;          /* NULL = in memory only (persist.h) */
    struct persist *ps_stage;    /* persistence off: records staged for the
                                    replication stream alone (persist.h) */
    struct repl *repl;           /* replication, both roles (repl.h) */
    struct models *models;  /* embedders from the config (models.h) */
    pool *pool;                  /* search workers (NULL: searches run inline) */
    long long pool_timer;        /* drains the pool while searches run (0: none) */
    int pool_found;              /* a drain found finished searches since before_sleep */
    deferred_server dsrv;        /* clients holding finished replies (deferred.h) */
    struct vsearch_job *vjob_cache;  /* finished VSEARCH jobs kept for reuse (vsearch.c) */
    int vjob_ncache;
    vindex_search_ctx **wctx;    /* one search context per worker */
    vindex_search_ctx *loop_ctx; /* the loop thread's own (EXEC) */
    int nworkers;
    long long vec_writes;
    long long vec_split_searches;  /* FLAT searches run in parts (vsearch.c) */
    long long vec_cas_planned;     /* VADD CAS inserts committed from a plan made on the
                                      pool (cmd_vset.c); the others redid the search */
    long long vec_cas;             /* VADD CAS inserts started on the pool */
    int active_expire;           /* DEBUG SET-ACTIVE-EXPIRE */
    volatile int shutdown_signal;  /* set by the signal handler */
    int shutting_down;
    size_t mem_peak;             /* used_memory_peak, sampled by the cron and INFO */
    size_t mem_startup;          /* used_memory_startup: once the databases exist */
    int clock_mode;              /* EVICT_CLOCK_*: what key lookups stamp (evict.h) */
    struct evict_pool *evpool;   /* eviction candidates (evict.c) */
    int evict_db;                /* the random policies' next database */
    long long ops_samples[16];   /* commands/s, sampled by the cron */
    int ops_idx;
    long long ops_last_cmds;
    int64_t ops_last_ms;
};

/* ---- connections (conn.c) ------------------------------------------------ */
client *client_new(server *s, int fd, const char *addr, const char *laddr);
/* Close now: unregister, close the fd, free everything. */
void client_free(client *c);
/* Write as much pending output as the socket takes; installs the write
 * handler if some is left.  Returns 0, or -1 if the client was freed. */
int client_flush(client *c);
/* Queue the client for a write in before-sleep. */
void client_mark_pending(client *c);
/* Close after the pending replies are written. */
void client_close_after_reply(client *c);
/* Pause a client's input: a request that may not overtake its searches in
 * flight waits in its query buffer.  client_unblock resumes parsing. */
void client_block(client *c);
void client_unblock(client *c);
/* Input that arrived before c existed (a replication link's first stream
 * bytes, read with its handshake): buffered and run as if read.  c may
 * be freed (a protocol error): do not use it afterwards. */
void client_feed(client *c, const char *p, size_t n);
/* Run, in the order they were queued, the clients whose input was left
 * over when an earlier pass's time ran out (before this call); each may
 * queue itself again. */
void client_run_turns(server *s);
/* 1 while the client must still AUTH: a password is set now and it has not
 * authenticated.  Changing requirepass at run time takes effect at once. */
int client_must_auth(const client *c);
/* Re-read the parser limits (after AUTH or CONFIG SET proto-max-bulk-len). */
void client_update_limits(client *c);
/* One line of CLIENT LIST / CLIENT INFO into buf; returns the length the
 * whole line needs (like snprintf: retry with a bigger buffer if >= cap). */
int client_info_line(const client *c, char *buf, size_t cap);
/* Apply the output-buffer limits; returns 1 if the client was scheduled to
 * be closed. */
int client_check_obuf(client *c);

/* ---- life cycle (server.c) ------------------------------------------------- */
/* Listen, create the loop and the keyspace.  -1 with a message on failure. */
int srv_init(server *s, char *err, size_t errcap);
void srv_fini(server *s);
/* Begin a clean shutdown: stop accepting, flush replies, stop the loop. */
void srv_shutdown(server *s);
/* Re-size the loop and the fd limit after maxclients changed. */
int srv_apply_maxclients(server *s);

/* ---- services for command handlers (server.c) ---------------------------- */
int64_t srv_now_ms(const server *s);
/* Run done() for every finished search until none is left (pool.h); every
 * drain on the loop thread goes through here. */
void srv_pool_drain(server *s);
/* Monotonic ms as of the loop's last wake-up: idle clocks need no more. */
int64_t srv_loop_ms(const server *s);
config *srv_config(server *s);
/* Commands per second over the last ~1.6 s (INFO instantaneous_ops_per_sec). */
long long srv_ops_per_sec(const server *s);
/* Vector side: a write happened (dirty counter); per-thread search contexts. */
void srv_vec_modified(server *s);
vindex_search_ctx *srv_worker_ctx(server *s, int worker);
vindex_search_ctx *srv_loop_ctx(server *s);

/* ---- handler helpers (args.c) --------------------------------------------- */
/* Reply the standard errors. */
void reply_err_arity(client *c);             /* wrong number of arguments for 'x' command */
void reply_err_arity_name(client *c, const char *name);
void reply_err_syntax(client *c);            /* ERR syntax error */
void reply_err_int(client *c);               /* ERR value is not an integer or out of range */

/* Argument parsing helpers: return 1 and set *out, or reply the Redis error
 * and return 0. */
int arg_ll(client *c, int i, long long *out);                 /* "value is not an integer or out of range" */
int arg_ll_range(client *c, int i, long long min, long long max, long long *out, const char *errmsg);
int arg_is(const client *c, int i, const char *word);         /* case-insensitive compare */
/* A SCAN cursor (Redis's strtoul rules), or "ERR invalid cursor". */
int arg_cursor(client *c, int i, uint64_t *out);
/* A SCAN-family reply, [cursor, items]: items holds n elements already
 * encoded (the cursor is known only after they were); it is freed. */
void reply_scan(client *c, uint64_t cursor, reply *items, long long n);
/* The modules engram stands for, as MODULE LIST and HELLO list them
 * (cmd_server.c). */
void reply_modules(client *c);
/* A HELP reply: the NULL-terminated lines as an array of simple strings. */
void reply_help(client *c, const char *const *lines);

/* ---- transactions (cmd_tx.c) ----------------------------------------------- */
/* Queue the request c is running as k (inside MULTI), replying QUEUED. */
void multi_queue(client *c, command *k);
/* End the transaction: drop the MULTI queue and state and every WATCH. */
void multi_discard(client *c);
void srv_unwatch_all(client *c);    /* drop every WATCH of c */
void srv_watch_table_free(server *s);
/* Every client watching key of database db, or any key of db (-1: of
 * every database), is dirty: its EXEC will fail. */
void srv_watch_touch(server *s, int db, const char *key, size_t klen);
void srv_watch_touch_db(server *s, int db);

/* ---- dispatch (dispatch.c) ------------------------------------------------- */
enum { DISPATCH_DONE = 0, DISPATCH_WAIT = 1 };
/* Handle the request in c->argv: run it, queue it (MULTI) or refuse it.
 * DISPATCH_WAIT: not now -- c has replies in flight that this request's
 * reply must follow; leave it unconsumed and pause the client. */
int dispatch_command(client *c);
/* Run k now (EXEC runs its queue through here). */
void dispatch_exec(client *c, command *k);

#endif
