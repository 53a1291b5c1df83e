/* server.c -- the server: listeners, accepting clients, the periodic cron
 * (active expiry, idle timeouts but for subscribers, soft output limits),
 * writing replies before
 * the loop sleeps, signals and shutdown.
 *
 * What runs before the loop sleeps (srv_before_sleep), in this order:
 *   1. the pool is drained: finished searches release their replies, and
 *      clients paused behind them resume -- their pipelined writes log
 *      records, which step 2 must cover;
 *   2. the log is committed (persist_before_sleep: written, and fsync'd
 *      under appendfsync always; one commit for every client's writes of
 *      the pass);
 *   3. the pending clients are written, in the order their replies
 *      appeared (a socket that would block gets a write handler);
 *   4. clients with input left over get a 0 ms timer (turns, conn.c), and
 *      a shutdown asked for by a signal begins.
 * The ordering rule (persist.h) is that no reply leaves while the log holds
 * uncommitted records: client_flush checks it wherever it runs (here, a
 * write handler, shutdown), and step 2 before step 3 is what lets this
 * pass's replies go out in this pass.  srv_shutdown runs the same steps.
 *
 * Signals: SIGTERM/SIGINT only set a flag and wake the loop (ev_wake is
 * async-signal-safe); shutdown itself runs on the loop thread.  SIGPIPE is
 * ignored: a write to a closed socket returns EPIPE, handled as a close.
 *
 * Loop thread only. */
#include "server.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "engram/check.h"
#include "engram/crc32c.h"
#include "engram/dist.h"
#include "engram/mem.h"
#include "engram/util.h"
#include "acl.h"
#include "evict.h"
#include "log.h"
#include "net.h"
#include "models.h"
#include "persist.h"
#include "pubsub.h"
#include "repl.h"
#include "vsearch.h"

#define SRV_RESERVED_FDS 32      /* listeners, log, pipes, files */

static server *srv_signal_target;

int64_t srv_now_ms(const server *s) { return s->cmd_time_ms; }
int64_t srv_loop_ms(const server *s) { return s->loop_mono_ms; }

/* A loop pass runs commands for SRV_PASS_US, then clients take turns
 * (conn.c); but for at least SRV_PASS_COMMITS times what committing the
 * log takes, so that under appendfsync always, where every pass with writes
 * ends in an fsync, the fsyncs take at most about a ninth of the time and
 * group commit keeps most of its batch. */
#define SRV_PASS_US 1000
#define SRV_PASS_COMMITS 8

static void srv_after_sleep(ev_loop *l, void *ud)
{
    server *s = ud;
    s->loop_mono_ms = util_mono_ms();
    s->clock_us = util_wall_us();
    int64_t pass = SRV_PASS_US;
    if (s->commit_us * SRV_PASS_COMMITS > pass) pass = s->commit_us * SRV_PASS_COMMITS;
    s->pass_end_us = s->clock_us + pass;
}
config *srv_config(server *s) { return &s->cfg; }

void srv_vec_modified(server *s)
{
    s->dirty++;
    s->vec_writes++;
}

vindex_search_ctx *srv_worker_ctx(server *s, int worker) { return s->wctx[worker]; }
vindex_search_ctx *srv_loop_ctx(server *s) { return s->loop_ctx; }

long long srv_ops_per_sec(const server *s)
{
    long long sum = 0;
    for (int i = 0; i < 16; i++) sum += s->ops_samples[i];
    return sum / 16;
}

/* One sample of commands/s per cron tick (Redis's trackInstantaneousMetric). */
static void srv_sample_ops(server *s)
{
    int64_t now = util_mono_ms();
    int64_t dt = now - s->ops_last_ms;
    if (dt <= 0) return;
    s->ops_samples[s->ops_idx] = (s->st.cmds - s->ops_last_cmds) * 1000 / dt;
    s->ops_idx = (s->ops_idx + 1) % 16;
    s->ops_last_cmds = s->st.cmds;
    s->ops_last_ms = now;
}

/* ---- accepting ------------------------------------------------------------ */

/* rename-command lines: "old new old new ..." ("\"\"" disables). */
static int srv_apply_renames(server *s, char *err, size_t errcap)
{
    const char *list = s->cfg.rename_commands ? s->cfg.rename_commands : "";
    char **argv;
    size_t *lens;
    int argc = util_split_args(list, strlen(list), &argv, &lens);
    int rc = 0;
    if (argc < 0 || argc % 2) {
        snprintf(err, errcap, "rename-command needs a command name and a new name");
        rc = -1;
    }
    for (int i = 0; rc == 0 && i + 1 < argc; i += 2) {
        command *k = command_lookup(argv[i], lens[i]);
        if (!k) {
            snprintf(err, errcap, "rename-command: no such command '%s'", argv[i]);
            rc = -1;
        } else if (command_rename(k, lens[i + 1] ? argv[i + 1] : NULL) < 0) {
            snprintf(err, errcap, "rename-command: can't rename '%s' to '%s'", argv[i],
                     argv[i + 1]);
            rc = -1;
        }
    }
    if (argc > 0) util_free_args(argv, lens, argc);
    return rc;
}

/* Is "ip:port" a loopback peer (127.0.0.0/8 or ::1)? */
static int addr_is_loopback(const char *addr)
{
    const char *colon = strrchr(addr, ':');        /* the port follows the last ':' */
    size_t hl = colon ? (size_t)(colon - addr) : strlen(addr);
    if (hl >= 2 && addr[0] == '[' && addr[hl - 1] == ']') addr++, hl -= 2;
    return (hl > 4 && !strncmp(addr, "127.", 4)) || (hl == 3 && !strncmp(addr, "::1", 3)) ||
           (hl > 11 && !strncmp(addr, "::ffff:127.", 11));
}

/* Redis's protected-mode refusal, word for word. */
static const char PROTECTED_MSG[] =
    "-DENIED Redis is running in protected mode because protected mode is enabled and no "
    "password is set for the default user. In this mode connections are only accepted from the "
    "loopback interface. If you want to connect from external computers to Redis you may adopt "
    "one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG "
    "SET protected-mode no' from the loopback interface by connecting to Redis from the same "
    "host the server is running, however MAKE SURE Redis is not publicly accessible from "
    "internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively "
    "you can just disable the protected mode by editing the Redis configuration file, and "
    "setting the protected mode option to 'no', and then restarting the server. 3) If you "
    "started the server manually just for testing, restart it with the '--protected-mode no' "
    "option. 4) Set up an authentication password for the default user. NOTE: You only need to "
    "do one of the above things in order for the server to start accepting connections from "
    "the outside.\r\n";

static void srv_on_accept(ev_loop *l, int lfd, void *ud, int mask)
{
    server *s = ud;
    /* Accept a bounded batch per wake-up so one busy listener cannot starve
     * the clients already connected. */
    for (int i = 0; i < 1000; i++) {
        char addr[64], laddr[64];
        int fd = net_accept(lfd, addr, sizeof addr, laddr, sizeof laddr);
        if (fd == -EAGAIN) return;
        if (fd < 0) {
            log_msg(LOG_WARNING, "Accepting client connection: %s", strerror(-fd));
            return;
        }
        s->st.conns++;
        if (s->nclients >= (size_t)s->cfg.maxclients) {
            static const char msg[] = "-ERR max number of clients reached\r\n";
            /* Best effort: the socket is new and empty, so this small write
             * fits; the client is refused either way. */
            if (write(fd, msg, sizeof msg - 1) < 0) { /* nothing to do */ }
            close(fd);
            s->st.rejected_conns++;
            continue;
        }
        if (s->cfg.protected_mode && acl_user_open(acl_default_user(s)) &&
            !addr_is_loopback(addr)) {
            /* Best effort, as above: one write on a new socket, then close. */
            if (write(fd, PROTECTED_MSG, sizeof PROTECTED_MSG - 1) < 0) { /* nothing to do */ }
            net_close_gently(fd);
            s->st.rejected_conns++;
            log_msg(LOG_WARNING, "Refused %s: protected mode, no password set", addr);
            continue;
        }
        if (s->cfg.tcp_keepalive > 0) net_set_keepalive(fd, (int)s->cfg.tcp_keepalive);
        client *c = client_new(s, fd, addr, laddr);
        if (!c) {
            log_msg(LOG_WARNING, "Error registering fd event for the new client: fd=%d", fd);
            close(fd);
            continue;
        }
        log_msg(LOG_VERBOSE, "Accepted %s", addr);
    }
}

/* ---- cron ----------------------------------------------------------------- */

/* Redis's active expiry, simplified: sample 20 keys with a TTL; go again
 * while more than a quarter of a sample had expired, within ~25% of the
 * cron period. */
static void srv_active_expire(server *s)
{
    int64_t deadline = util_mono_us() + 250000 / s->cfg.hz;
    s->cmd_time_ms = util_wall_ms();
    for (;;) {
        size_t n = keyspace_expire_cycle(s, s->cmd_time_ms, 20);
        if (n <= 5 || util_mono_us() > deadline) break;
    }
}

static void srv_client_timeouts(server *s)
{
    int64_t now = util_mono_ms();
    for (dlist_node *n = dlist_first(&s->clients), *next; n; n = next) {
        next = dlist_next(&s->clients, n);
        client *c = DLIST_ENTRY(n, client, node);
        /* Whole seconds, as Redis compares them: a client is closed after
         * between `timeout` and `timeout`+1 idle seconds. */
        /* Waiting for replies in flight or for messages is not idling. */
        if (s->cfg.timeout > 0 && !deferred_busy(c) &&
            !(c->flags & (CLIENT_PUBSUB | CLIENT_REPLICA | CLIENT_MASTER)) &&
            now / 1000 - c->last_io_ms / 1000 > s->cfg.timeout) {
            log_msg(LOG_VERBOSE, "Closing idle client id=%llu addr=%s",
                    (unsigned long long)c->id, c->addr);
            client_free(c);
            continue;
        }
        if (reply_pending(&c->out) && client_check_obuf(c)) client_free(c);
    }
}

static int srv_cron(ev_loop *l, long long id, void *ud)
{
    server *s = ud;
    /* Not while the log replays: expiring keys between its records would
     * make the result depend on timing. */
    if (s->active_expire && !persist_loading(s)) srv_active_expire(s);
    srv_client_timeouts(s);
    srv_sample_ops(s);
    persist_cron(s);
    repl_cron(s);
    size_t used = evict_used_memory(s);
    if (used > s->mem_peak) s->mem_peak = used;
    if (s->clock_mode) evict_refresh(s);      /* new keys' clocks */
    return 1000 / s->cfg.hz;
}

/* ---- before sleep: write replies ------------------------------------------ */

static void srv_pool_notify(void *ud)
{
    ev_wake(((server *)ud)->loop);
}

/* The pool wakes the loop when a worker goes idle, a batch is done and
 * the queue is short, or a finished search has waited two milliseconds
 * while other searches finished (pool.h).  Only when every worker is inside
 * a long search can a finished one wait unannounced longer; so while
 * searches are in flight the loop also drains SRV_POOL_TICK_MS after a
 * pass in which no drain found anything finished. */
#define SRV_POOL_TICK_MS 10

void srv_pool_drain(server *s)
{
    if (s->lazyfree) pool_complete(s->lazyfree);   /* its done() only frees the job */
    if (!s->pool) return;
    /* Until nothing is left: done() may set `wake` on a search that
     * finished meanwhile and read it unset (pool.h), and that one is on the
     * queue. */
    while (pool_complete(s->pool) > 0) s->pool_found = 1;
}

static int srv_pool_tick(ev_loop *l, long long id, void *ud)
{
    server *s = ud;
    (void)l;
    (void)id;
    srv_pool_drain(s);
    if (pool_inflight(s->pool) > 0) return SRV_POOL_TICK_MS;
    s->pool_timer = 0;
    return EV_TIMER_STOP;
}

/* Clients whose input was left over when a pass ran out of time run in the
 * next pass, which starts without sleeping (conn.c). */
static int srv_turns_timer(ev_loop *l, long long id, void *ud)
{
    server *s = ud;
    (void)l;
    (void)id;
    s->turn_timer = 0;
    client_run_turns(s);
    return EV_TIMER_STOP;
}

static void srv_before_sleep(ev_loop *l, void *ud)
{
    server *s = ud;
    /* Finished searches first: their replies, and the writes of clients
     * they resume, go out in this pass (step 1 at the top).  A wake from
     * the pool (or a signal) only ends the poll, with no handler of its
     * own: draining here, after the pass's input was read, writes a PING
     * read in this pass before the batches collected now. */
    if (s->pool) {
        srv_pool_drain(s);
        /* While searches keep coming back the tick is pushed back, so it
         * wakes the loop only once they stop. */
        if (s->pool_timer && (s->pool_found || !pool_inflight(s->pool))) {
            ev_timer_del(l, s->pool_timer);
            s->pool_timer = 0;
        }
        s->pool_found = 0;
        if (!s->pool_timer && pool_inflight(s->pool) > 0)
            s->pool_timer = ev_timer_add(l, SRV_POOL_TICK_MS, srv_pool_tick, s);
    }
    /* The log before the replies (the top): after the commit nothing holds
     * them, so every pending client below is written now, not next pass. */
    if (s->ps) {
        int64_t t0 = util_mono_us();
        if (persist_before_sleep(s)) s->commit_us += (util_mono_us() - t0 - s->commit_us) / 4;
        CHECK(!persist_holds_replies(s));
    }
    /* payload chunks for replicas in a full sync, GETACK for WAIT */
    repl_before_sleep(s);
    dlist_node *n;
    while ((n = dlist_first(&s->pending)) != NULL) {
        client *c = DLIST_ENTRY(n, client, pending);
        dlist_remove(n);
        if (c->flags & CLIENT_CLOSE_ASAP) {
            client_free(c);
            continue;
        }
        client_flush(c);
    }
    if (!dlist_empty(&s->turns) && !s->turn_timer)
        s->turn_timer = ev_timer_add(l, 0, srv_turns_timer, s);
    /* A shutdown asked for while loading waits for the load to end (the
     * loop that would stop is not running yet). */
    if (s->shutdown_signal && !s->shutting_down && !persist_loading(s)) srv_shutdown(s);
}

/* ---- signals and shutdown -------------------------------------------------- */

static void srv_on_signal(int sig)
{
    if (!srv_signal_target) return;
    if (srv_signal_target->shutdown_signal) {
        /* Second signal while shutting down: leave at once, as Redis does. */
        _exit(1);
    }
    srv_signal_target->shutdown_signal = sig;
    /* Before the loop exists there is nothing to wake: the first
     * before-sleep sees the flag. */
    if (srv_signal_target->loop) ev_wake(srv_signal_target->loop);
}

/* The search pool: `search-threads` workers (0 = one per core), each with
 * its own search context so searches never share scratch memory. */
static int srv_start_pool(server *s, char *err, size_t errcap)
{
    int n = s->cfg.search_threads;
    if (n <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        n = cores > 0 ? (int)cores : 1;
        if (n > 256) n = 256;
    }
    s->wctx = mem_calloc((size_t)n, sizeof *s->wctx);
    for (int i = 0; i < n; i++) {
        if (!(s->wctx[i] = vindex_search_ctx_new(NULL))) {
            snprintf(err, errcap, "out of memory creating search contexts");
            return -1;
        }
    }
    s->loop_ctx = vindex_search_ctx_new(NULL);
    int e = 0;
    s->pool = pool_new(n, s->cfg.search_nice, srv_pool_notify, s, &e);
    if (!s->pool || !s->loop_ctx) {
        snprintf(err, errcap, "could not start %d search threads: %s", n, strerror(-e));
        return -1;
    }
    s->nworkers = n;
    return 0;
}

static void srv_signals(server *s)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = srv_on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    srv_signal_target = s;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

/* Stop accepting, give every client's pending replies a last chance to go
 * out (bounded: a client that does not read is not waited for), stop. */
void srv_shutdown(server *s)
{
    s->shutting_down = 1;
    log_msg(LOG_WARNING, "%s received, scheduling shutdown...",
            s->shutdown_signal == SIGINT ? "Received SIGINT" :
            s->shutdown_signal == SIGTERM ? "Received SIGTERM" : "SHUTDOWN");
    for (int i = 0; i < s->nlfds; i++) {
        ev_del(s->loop, s->lfds[i], EV_READ);
        close(s->lfds[i]);
    }
    s->nlfds = 0;
    /* Finished searches whose replies wait for the rest of their batch go
     * out now (before the commit: resumed clients may write). */
    srv_pool_drain(s);
    deferred_release_held(s, 1);
    persist_before_sleep(s);      /* commit what the last iteration wrote */
    int64_t deadline = util_mono_ms() + 1000;
    for (;;) {
        int left = 0;
        for (dlist_node *n = dlist_first(&s->clients), *next; n; n = next) {
            next = dlist_next(&s->clients, n);
            client *c = DLIST_ENTRY(n, client, node);
            if (!(c->flags & CLIENT_CLOSE_ASAP) && reply_pending(&c->out) &&
                client_flush(c) == 0 && reply_pending(&c->out))
                left++;
        }
        if (!left || util_mono_ms() > deadline) break;
        usleep(1000);
    }
    log_msg(LOG_WARNING, "engram is now ready to exit, bye bye...");
    ev_stop(s->loop);
}

/* ---- start-up -------------------------------------------------------------- */

/* Raise RLIMIT_NOFILE to fit maxclients, or lower maxclients to what the
 * system allows, as Redis does (with a warning). */
static void srv_adjust_fd_limit(server *s)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)s->cfg.maxclients + SRV_RESERVED_FDS;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want) return;
    rlim_t best = want;
    while (best > rl.rlim_cur) {
        struct rlimit try = {best, rl.rlim_max > best ? rl.rlim_max : best};
        if (setrlimit(RLIMIT_NOFILE, &try) == 0) return;
        if (best - rl.rlim_cur < 16) break;
        best -= 16;
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur > SRV_RESERVED_FDS) {
        int maxc = (int)(rl.rlim_cur - SRV_RESERVED_FDS);
        log_msg(LOG_WARNING, "You requested maxclients of %d requiring at least %llu max file "
                "descriptors; the system allows %llu, so maxclients is now %d.",
                s->cfg.maxclients, (unsigned long long)want, (unsigned long long)rl.rlim_cur, maxc);
        s->cfg.maxclients = maxc;
    }
}

int srv_apply_maxclients(server *s)
{
    srv_adjust_fd_limit(s);
    return ev_resize(s->loop, s->cfg.maxclients + SRV_RESERVED_FDS + 96);
}

int srv_init(server *s, char *err, size_t errcap)
{
    uint64_t seed = (uint64_t)util_wall_us() ^ ((uint64_t)getpid() << 32);
    int n;

    s->rng = seed;
    dlist_init(&s->clients);
    dlist_init(&s->pending);
    dlist_init(&s->turns);
    deferred_server_init(&s->dsrv);
    s->start_wall_ms = util_wall_ms();
    s->start_mono_ms = util_mono_ms();
    s->active_expire = 1;
    s->cmd_time_ms = s->start_wall_ms;
    s->ops_last_ms = s->start_mono_ms;
    s->loop_mono_ms = s->start_mono_ms;
    s->clock_us = util_wall_us();
    int rc = dist_select(s->cfg.simd);
    if (rc < 0) {
        snprintf(err, errcap, "simd '%s' is %s", s->cfg.simd,
                 rc == -ENOTSUP ? "not supported by this CPU or not built into this binary"
                                : "unknown");
        return -1;
    }
    crc32c_select("auto");        /* before any thread or snapshot child */
    command_table_init();
    if (srv_apply_renames(s, err, errcap) < 0) return -1;
    srv_adjust_fd_limit(s);
    /* Signal handlers go in before the port opens: a client (or a test) that
     * sees the port accept may send SIGTERM at once. */
    srv_signals(s);
    /* Users before the port opens: a bad aclfile is refused without ever
     * accepting a connection (a client could otherwise connect, then see
     * the server exit), and the first client finds its user. */
    acl_init(s);
    if (acl_load_file(s, err, errcap) < 0) return -1;
    s->loop = ev_new(s->cfg.maxclients + SRV_RESERVED_FDS + 96);
    if (!s->loop) {
        snprintf(err, errcap, "could not create the event loop: %s", strerror(errno));
        return -1;
    }
    n = net_listen(s->cfg.bind, s->cfg.port, s->cfg.tcp_backlog, s->lfds, NET_MAX_LISTEN, err, errcap);
    if (n < 0) return -1;
    s->nlfds = n;
    s->port = net_bound_port(s->lfds[0]);
    for (int i = 0; i < n; i++) {
        if (ev_add(s->loop, s->lfds[i], EV_READ, srv_on_accept, s) < 0) {
            snprintf(err, errcap, "could not watch the listening socket");
            return -1;
        }
    }
    if (srv_start_pool(s, err, errcap) < 0) return -1;
    if (keyspace_init(s, err, errcap) < 0) return -1;
    evict_init(s);
    pubsub_init(s);
    ev_timer_add(s->loop, 1, srv_cron, s);
    ev_set_before_sleep(s->loop, srv_before_sleep, s);
    ev_set_after_sleep(s->loop, srv_after_sleep, s);
    if (models_load(s, err, errcap) < 0) return -1;
    /* Last: loading processes events, so everything above must be ready. */
    /* Before loading: INFO and the cron run while it loads (with replicaof
     * the cron connects once the load is over). */
    repl_init(s);
    if (persist_open(s, err, errcap) < 0) return -1;
    repl_restore_state(s);        /* a clean shutdown's replication id and offset */
    return 0;
}

void srv_fini(server *s)
{
    /* Clients first: freeing one detaches it from its jobs, so the done()
     * callbacks that pool_free runs below only free their jobs -- they
     * neither write to a client nor resume one (which could submit new work
     * to a pool that is stopping), and a VADD ... CAS whose client is gone
     * commits nothing (cmd_vset.c). */
    dlist_node *n;
    while ((n = dlist_first(&s->clients)) != NULL) client_free(DLIST_ENTRY(n, client, node));
    repl_save_state(s);           /* memory is final: the offset it is at */
    repl_fini(s);
    pubsub_fini(s);
    persist_close(s);             /* commit and fsync the log */
    pool_free(s->pool);
    s->pool = NULL;
    vsearch_cache_free(s);
    for (int i = 0; i < s->nworkers; i++) vindex_search_ctx_free(s->wctx[i]);
    mem_free(s->wctx);
    s->wctx = NULL;
    vindex_search_ctx_free(s->loop_ctx);
    s->loop_ctx = NULL;
    evict_fini(s);
    keyspace_fini(s);             /* before the models: sets hold their embedders */
    acl_fini(s);
    models_free(s);
    for (int i = 0; i < s->nlfds; i++) close(s->lfds[i]);
    s->nlfds = 0;
    srv_watch_table_free(s);
    ev_free(s->loop);
    s->loop = NULL;
    srv_signal_target = NULL;
}
