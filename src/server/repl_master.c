/* repl_master.c -- the primary's side of replication (repl.h): the
 * replication id and offset, the backlog, the stream fed from the log's
 * records, replicas from their SYNC/PSYNC through the full sync's payload
 * to online, REPLCONF, WAIT, ROLE, INFO replication, and REPLAY (the
 * command a replica runs for records Redis has no command for).
 *
 * A full sync, step by step:
 *   1. PSYNC (or SYNC) cannot continue: the client becomes a replica in
 *      RS_WAIT_BGSAVE_START.  If no payload child runs, one is forked now
 *      (payload_start): memory at this instant is the state after offset
 *      r->offset, so every replica waiting gets +FULLRESYNC <replid>
 *      <offset> (not after SYNC) and moves to RS_WAIT_BGSAVE_END; the
 *      stream's next command selects its database again (enc.seldb = -1).
 *      A replica that asks while a child runs waits for the next one.
 *   2. The child writes an engram snapshot (dataset_save, seq 0) into a
 *      directory of its own (under `dir`, or TMPDIR / /tmp without one) and
 *      exits; the stream produced meanwhile goes to each waiting replica's
 *      `pending` buffer.
 *   3. Reaped (payload_reap), each replica opens the file, gets `$<size>`
 *      and moves to RS_SEND_BULK; the file is unlinked (the descriptors
 *      keep it).  Before each sleep, payload_pump reads up to
 *      REPL_PUMP_BYTES more into the replica's output while less than that
 *      is pending, so the loop never reads a whole snapshot at once.
 *   4. The last byte queued, `pending` follows it and the replica is
 *      RS_ONLINE: from then on the stream is appended to its output
 *      directly.
 *
 * Ordering: replicas are clients, so their output obeys the log's rule
 * (persist.h): the stream leaves no earlier than the commit of the records
 * it carries.
 *
 * Threads and processes: the loop thread; the payload child runs
 * payload_start's pid == 0 branch (it reads memory without locks, as the
 * snapshot child does, and leaves with _exit). */
#include "repl_private.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engram/io.h"
#include "engram/mem.h"
#include "engram/oplog.h"
#include "engram/util.h"
#include "dataset.h"
#include "handlers.h"
#include "log.h"
#include "persist.h"
#include "server.h"

#define REPL_PUMP_BYTES (1 << 20)   /* payload queued per replica per pass, at most */

static const char ping_cmd[] = "*1\r\n$4\r\nPING\r\n";
static const char getack_cmd[] = "*3\r\n$8\r\nREPLCONF\r\n$6\r\nGETACK\r\n$1\r\n*\r\n";

void repl_send_argv(reply *out, int argc, const char *const *argv)
{
    reply_array(out, argc);
    for (int i = 0; i < argc; i++) reply_bulk(out, argv[i], strlen(argv[i]));
}

/* ---- ids ------------------------------------------------------------------------- */

void repl_new_id(server *s, char *out)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[REPL_ID_LEN / 2];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    ssize_t got = fd >= 0 ? read(fd, raw, sizeof raw) : -1;
    if (fd >= 0) close(fd);
    for (size_t i = 0; i < sizeof raw; i++) {
        /* without /dev/urandom, the server's PRNG (seeded from time and pid) */
        if (got != (ssize_t)sizeof raw) raw[i] = (unsigned char)util_rand64(&s->rng);
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[REPL_ID_LEN] = '\0';
}

static void clear_id2(repl *r)
{
    memset(r->replid2, '0', REPL_ID_LEN);
    r->replid2[REPL_ID_LEN] = '\0';
    r->second_offset = -1;
}

void repl_shift_id(server *s)
{
    repl *r = s->repl;
    memcpy(r->replid2, r->replid, sizeof r->replid);
    r->second_offset = r->offset + 1;
    repl_new_id(s, r->replid);
    r->enc.seldb = -1;       /* our stream selects again before its first command */
    log_msg(LOG_NOTICE, "Setting secondary replication ID to %s, valid up to offset: %lld. New "
            "replication ID is %s", r->replid2, r->second_offset, r->replid);
}

const char *repl_run_id(const server *s) { return s->repl->run_id; }

void repl_init(server *s)
{
    repl *r = mem_calloc(1, sizeof *r);
    s->repl = r;
    repl_new_id(s, r->run_id);
    repl_new_id(s, r->replid);
    clear_id2(r);
    op_resp_init(&r->enc);
    reply_init(&r->mbuf, 2);
    dlist_init(&r->replicas);
    dlist_init(&r->waits);
    r->fd = -1;
    r->xfer_fd = -1;
    const char *ro = s->cfg.replicaof;
    if (ro && ro[0]) {
        char host[256];
        int port;
        if (sscanf(ro, "%255s %d", host, &port) == 2)
            repl_replica_set_master(s, host, port);
        else
            log_msg(LOG_WARNING, "replicaof '%s': expected HOST PORT; starting as a primary", ro);
    }
}

/* ---- the backlog ----------------------------------------------------------------- */

void repl_backlog_create(server *s)
{
    repl *r = s->repl;
    if (r->bl) return;
    r->bl_size = s->cfg.repl_backlog_size > 0 ? s->cfg.repl_backlog_size : 1;
    r->bl = mem_alloc((size_t)r->bl_size);
    r->bl_idx = 0;
    r->bl_histlen = 0;
    r->bl_first = r->offset + 1;
    persist_stage_enable(s);     /* with persistence off, writes now stage records */
}

static void backlog_append(repl *r, const char *p, size_t n)
{
    while (n > 0) {
        size_t room = (size_t)(r->bl_size - r->bl_idx);
        size_t k = n < room ? n : room;
        memcpy(r->bl + r->bl_idx, p, k);
        r->bl_idx = (r->bl_idx + (long long)k) % r->bl_size;
        r->bl_histlen += (long long)k;
        p += k;
        n -= k;
    }
    if (r->bl_histlen > r->bl_size) r->bl_histlen = r->bl_size;
    r->bl_first = r->offset + 1 - r->bl_histlen;   /* r->offset already counts these bytes */
}

/* Append the backlog's bytes from offset `from` (bl_first <= from <=
 * offset + 1) to out. */
static void backlog_copy(repl *r, long long from, reply *out)
{
    long long skip = from - r->bl_first, left = r->bl_histlen - skip;
    /* the oldest byte sits at bl_idx - histlen (mod size) */
    long long at = ((r->bl_idx - r->bl_histlen + skip) % r->bl_size + r->bl_size) % r->bl_size;
    while (left > 0) {
        long long k = r->bl_size - at < left ? r->bl_size - at : left;
        reply_raw(out, r->bl + at, (size_t)k);
        left -= k;
        at = (at + k) % r->bl_size;
    }
}

static void replica_close(client *c, const char *why)
{
    if (c->flags & CLIENT_CLOSE_ASAP) return;
    log_msg(LOG_WARNING, "Closing replica %s: %s", c->addr, why);
    c->flags |= CLIENT_CLOSE_ASAP;
    client_mark_pending(c);
}

void repl_feed_bytes(server *s, const char *p, size_t n)
{
    repl *r = s->repl;
    if (!n) return;
    r->offset += (long long)n;
    if (r->bl) backlog_append(r, p, n);
    long long hard = s->cfg.obuf_replica[0];
    for (dlist_node *it = dlist_first(&r->replicas); it; it = dlist_next(&r->replicas, it)) {
        repl_replica *rr = DLIST_ENTRY(it, repl_replica, node);
        client *c = rr->c;
        if (c->flags & CLIENT_CLOSE_ASAP || rr->state == RS_WAIT_BGSAVE_START) continue;
        reply *to = rr->state == RS_ONLINE ? &c->out : &rr->pending;
        reply_raw(to, p, n);
        if (rr->state == RS_ONLINE) client_mark_pending(c);
        if (hard && reply_pending(to) > (size_t)hard)
            replica_close(c, rr->state == RS_ONLINE ? "its output passed the replica class's "
                          "hard limit (client-output-buffer-limit)" : "the stream buffered "
                          "during its full sync passed client-output-buffer-limit replica");
    }
}

void repl_feed_record(server *s, uint8_t type, const void *payload, size_t len)
{
    repl *r = s->repl;
    /* A replica's stream is its master's bytes (repl_master_ran), never its
     * own records: a writable replica's writes stay local, as in Redis. */
    if (!r || !r->bl || r->master_host) return;
    r->scratch.len = 0;
    if (op_resp_encode(&r->enc, &r->scratch, type, payload, len) < 0) {
        log_msg(LOG_WARNING, "A record of type %u could not be written to the replication "
                "stream; replicas will need a full sync", type);
        repl_drop_replicas(s);
        return;
    }
    repl_feed_bytes(s, (const char *)r->scratch.p, r->scratch.len);
    if (r->scratch.cap > (1u << 20)) opbuf_fini(&r->scratch);    /* give a burst back */
}

/* ---- replicas -------------------------------------------------------------------- */

/* c's replica state, made on its first REPLCONF or SYNC/PSYNC. */
static repl_replica *rr_get(client *c)
{
    repl_replica *rr = c->rr;
    if (rr) return rr;
    rr = mem_calloc(1, sizeof *rr);
    rr->c = c;
    rr->fd = -1;
    reply_init(&rr->pending, 2);
    c->rr = rr;
    /* the peer's address (REPLCONF ip-address overrides it) */
    snprintf(rr->ip, sizeof rr->ip, "%s", c->addr);
    char *colon = strrchr(rr->ip, ':');
    if (colon) *colon = '\0';
    return rr;
}

static repl_replica *replica_add(server *s, client *c, int psync)
{
    repl *r = s->repl;
    repl_replica *rr = rr_get(c);
    rr->psync = psync;
    c->flags |= CLIENT_REPLICA;
    dlist_push(&r->replicas, &rr->node);
    r->nreplicas++;
    rr->ack_ms = util_mono_ms();
    return rr;
}

void repl_client_gone(client *c)
{
    server *s = c->srv;
    repl *r = s->repl;
    if (!r) return;
    if (c == r->master) {
        r->master = NULL;
        r->master_db = c->db;
        r->mbuf.len = r->mbuf.sent = 0;   /* a transaction cut short: resent from before it */
        if (r->master_host) {
            r->link = RL_CONNECT;
            r->link_down_since_ms = util_wall_ms();
            log_msg(LOG_NOTICE, "Connection with master lost.");
        }
    }
    repl_replica *rr = c->rr;
    if (!rr) return;
    if (dlist_linked(&rr->node)) {
        dlist_remove(&rr->node);
        r->nreplicas--;
        log_msg(LOG_NOTICE, "Connection with replica %s lost.", c->addr);
    }
    if (rr->fd >= 0) close(rr->fd);
    reply_fini(&rr->pending);
    mem_free(rr);
    c->rr = NULL;
}

void repl_drop_replicas(server *s)
{
    repl *r = s->repl;
    for (dlist_node *it = dlist_first(&r->replicas); it; it = dlist_next(&r->replicas, it))
        replica_close(DLIST_ENTRY(it, repl_replica, node)->c, "our history changed");
}

int repl_client_kind(const client *c)
{
    if (c->flags & CLIENT_MASTER) return 2;
    return (c->flags & CLIENT_REPLICA) ? 1 : 0;
}

/* ---- the full sync's payload ------------------------------------------------------- */

static void payload_start(server *s)
{
    repl *r = s->repl;
    if (r->child > 0) return;
    int waiting = 0;
    for (dlist_node *it = dlist_first(&r->replicas); it; it = dlist_next(&r->replicas, it))
        waiting += DLIST_ENTRY(it, repl_replica, node)->state == RS_WAIT_BGSAVE_START;
    if (!waiting) return;
    const char *base = s->cfg.dir && s->cfg.dir[0] ? s->cfg.dir : getenv("TMPDIR");
    if (!base || !base[0]) base = "/tmp";
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/engram-repl.%d.%u", base, (int)getpid(), ++r->payload_seq);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        log_msg(LOG_WARNING, "Full sync: cannot create %s: %s", dir, strerror(errno));
        goto fail;
    }
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        log_msg(LOG_WARNING, "Full sync: can't fork: %s", strerror(errno));
        rmdir(dir);
        goto fail;
    }
    if (pid == 0) {
        for (int i = 0; i < s->nlfds; i++) close(s->lfds[i]);
#ifdef __linux__
        prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
        dataset_set_parent(parent);
        if (getppid() != parent) _exit(1);
        char e[512];
        if (dataset_save(s, io_posix(), dir, 0, util_wall_ms(), e, sizeof e) < 0) {
            log_msg(LOG_WARNING, "Full sync payload failed: %s", e);
            _exit(1);
        }
        _exit(0);
    }
    r->child = pid;
    r->child_dir = mem_strndup(dir, strlen(dir));
    r->child_off = r->offset;
    r->child_start_ms = util_mono_ms();
    r->enc.seldb = -1;
    log_msg(LOG_NOTICE, "Starting BGSAVE for SYNC with target: disk (pid %d, offset %lld)",
            (int)pid, r->offset);
    for (dlist_node *it = dlist_first(&r->replicas); it; it = dlist_next(&r->replicas, it)) {
        repl_replica *rr = DLIST_ENTRY(it, repl_replica, node);
        if (rr->state != RS_WAIT_BGSAVE_START) continue;
        rr->state = RS_WAIT_BGSAVE_END;
        rr->sync_off = r->offset;
        if (rr->psync) {
            char line[128];
            int n = snprintf(line, sizeof line, "+FULLRESYNC %s %lld\r\n", r->replid, r->offset);
            reply_raw(&rr->c->out, line, (size_t)n);
            client_mark_pending(rr->c);
        }
    }
    return;
fail:
    for (dlist_node *it = dlist_first(&r->replicas); it; it = dlist_next(&r->replicas, it)) {
        repl_replica *rr = DLIST_ENTRY(it, repl_replica, node);
        if (rr->state == RS_WAIT_BGSAVE_START) replica_close(rr->c, "its full sync failed");
    }
}

static void payload_reap(server *s)
{
    repl *r = s->repl;
    int status = 0;
    pid_t got = waitpid(r->child, &status, WNOHANG);
    if (got == 0) return;
    int ok = got == r->child && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    char path[4200];
    snprintf(path, sizeof path, "%s/engram.snap", r->child_dir);
    struct stat st;
    if (ok && stat(path, &st) < 0) ok = 0;
    log_msg(ok ? LOG_NOTICE : LOG_WARNING, "Full sync payload %s (pid %d)",
            ok ? "written" : "failed", (int)r->child);
    for (dlist_node *it = dlist_first(&r->replicas); it; it = dlist_next(&r->replicas, it)) {
        repl_replica *rr = DLIST_ENTRY(it, repl_replica, node);
        if (rr->state != RS_WAIT_BGSAVE_END) continue;
        int fd = ok ? open(path, O_RDONLY | O_CLOEXEC) : -1;
        if (fd < 0) {
            replica_close(rr->c, "its full sync's payload could not be written or opened");
            continue;
        }
        char line[64];
        int n = snprintf(line, sizeof line, "$%lld\r\n", (long long)st.st_size);
        reply_raw(&rr->c->out, line, (size_t)n);
        rr->fd = fd;
        rr->left = (long long)st.st_size;
        rr->state = RS_SEND_BULK;
        client_mark_pending(rr->c);
    }
    unlink(path);
    /* a snapshot left behind by a failed child */
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s/engram.snap.tmp.%d", r->child_dir, (int)r->child);
    unlink(tmp);
    rmdir(r->child_dir);
    mem_free(r->child_dir);
    r->child_dir = NULL;
    r->child = 0;
    payload_start(s);        /* replicas that asked meanwhile */
}

/* Queue payload bytes while little is pending; put replicas online. */
static void payload_pump(server *s)
{
    repl *r = s->repl;
    static char buf[64 * 1024];
    for (dlist_node *it = dlist_first(&r->replicas); it; it = dlist_next(&r->replicas, it)) {
        repl_replica *rr = DLIST_ENTRY(it, repl_replica, node);
        client *c = rr->c;
        if (rr->state != RS_SEND_BULK || (c->flags & CLIENT_CLOSE_ASAP)) continue;
        while (rr->left > 0 && reply_pending(&c->out) < REPL_PUMP_BYTES) {
            size_t want = rr->left < (long long)sizeof buf ? (size_t)rr->left : sizeof buf;
            ssize_t n = read(rr->fd, buf, want);
            if (n <= 0) {
                if (n < 0 && errno == EINTR) continue;
                replica_close(c, "reading its payload failed");
                break;
            }
            reply_raw(&c->out, buf, (size_t)n);
            rr->left -= n;
        }
        client_mark_pending(c);
        if (rr->left > 0 || (c->flags & CLIENT_CLOSE_ASAP)) continue;
        close(rr->fd);
        rr->fd = -1;
        reply_raw(&c->out, rr->pending.data + rr->pending.sent, reply_pending(&rr->pending));
        reply_fini(&rr->pending);
        reply_init(&rr->pending, 2);
        rr->state = RS_ONLINE;
        rr->ack_ms = util_mono_ms();
        log_msg(LOG_NOTICE, "Synchronization with replica %s succeeded", c->addr);
    }
}

/* ---- WAIT ------------------------------------------------------------------------ */

typedef struct repl_wait {
    deferred d;                  /* first: deferred.h's */
    dlist_node node;             /* r->waits */
    server *s;
    long long target, num;
    long long timer;
} repl_wait;

static int acked(repl *r, long long target)
{
    int n = 0;
    for (dlist_node *it = dlist_first(&r->replicas); it; it = dlist_next(&r->replicas, it)) {
        repl_replica *rr = DLIST_ENTRY(it, repl_replica, node);
        n += rr->state == RS_ONLINE && rr->ack_off >= target;
    }
    return n;
}

static void wait_release(deferred *d)
{
    reply_fini(&d->out);
    mem_free(d);
}

static void wait_finish(repl_wait *w)
{
    repl *r = w->s->repl;
    dlist_remove(&w->node);
    if (w->timer) ev_timer_del(w->s->loop, w->timer);
    w->timer = 0;
    reply_int(&w->d.out, acked(r, w->target));
    deferred_done(&w->d);        /* may run the client's next commands */
}

static int wait_timeout(ev_loop *l, long long id, void *ud)
{
    repl_wait *w = ud;
    (void)l;
    (void)id;
    w->timer = 0;
    wait_finish(w);
    return EV_TIMER_STOP;
}

void repl_check_waits(server *s)
{
    repl *r = s->repl;
    /* From the head again after each answer: it may start or end others. */
    for (;;) {
        repl_wait *done = NULL;
        for (dlist_node *it = dlist_first(&r->waits); it; it = dlist_next(&r->waits, it)) {
            repl_wait *w = DLIST_ENTRY(it, repl_wait, node);
            if (!w->d.c || acked(r, w->target) >= w->num) {
                done = w;
                break;
            }
        }
        if (!done) return;
        wait_finish(done);
    }
}

void cmd_wait(client *c)
{
    server *s = c->srv;
    repl *r = s->repl;
    long long num, timeout;
    if (r->master_host) {
        reply_error(&c->out, "ERR WAIT cannot be used with replica instances. Please also note "
                    "that since Redis 4.0 if a replica is configured to be writable (which is "
                    "not the default) writes to replicas are just local and are not propagated.");
        return;
    }
    if (!arg_ll(c, 1, &num) || !arg_ll(c, 2, &timeout)) return;
    if (timeout < 0) {
        reply_error(&c->out, "ERR timeout is negative");
        return;
    }
    /* The offset now covers every write this client made (and more): when
     * replicas have acknowledged it, they have its writes. */
    long long target = r->offset;
    int n = acked(r, target);
    if (n >= num || (c->flags & CLIENT_IN_EXEC)) {
        reply_int(&c->out, n);
        return;
    }
    repl_wait *w = mem_calloc(1, sizeof *w);
    reply_init(&w->d.out, c->resp);
    w->d.release = wait_release;
    w->s = s;
    w->target = target;
    w->num = num;
    deferred_start(c, &w->d);
    dlist_push(&r->waits, &w->node);
    if (timeout > 0) w->timer = ev_timer_add(s->loop, timeout, wait_timeout, w);
    r->get_ack = 1;
}

/* ---- commands ---------------------------------------------------------------------- */

/* PSYNC's partial resync: 1 when it continued. */
static int try_continue(client *c, const char *id, size_t idlen, long long want)
{
    server *s = c->srv;
    repl *r = s->repl;
    int ours = idlen == REPL_ID_LEN && !strncasecmp(id, r->replid, REPL_ID_LEN);
    int before = idlen == REPL_ID_LEN && !strncasecmp(id, r->replid2, REPL_ID_LEN) &&
                 r->second_offset >= 0 && want <= r->second_offset;
    if (!ours && !before) {
        if (idlen != 1 || id[0] != '?')
            log_msg(LOG_NOTICE, "Partial resynchronization not accepted: Replication ID "
                    "mismatch (Replica asked for '%.*s', my replication IDs are '%s' and '%s')",
                    (int)(idlen < 64 ? idlen : 64), id, r->replid, r->replid2);
        return 0;
    }
    if (!r->bl || want < r->bl_first || want > r->offset + 1) {
        log_msg(LOG_NOTICE, "Unable to partial resync with replica %s for lack of backlog "
                "(Replica request was: %lld).", c->addr, want);
        return 0;
    }
    repl_replica *rr = replica_add(s, c, 1);
    rr->state = RS_ONLINE;
    char line[128];
    int n = snprintf(line, sizeof line, "+CONTINUE %s\r\n", r->replid);
    reply_raw(&c->out, line, (size_t)n);
    backlog_copy(r, want, &c->out);
    client_mark_pending(c);
    log_msg(LOG_NOTICE, "Partial resynchronization request from %s accepted. Sending %lld bytes "
            "of backlog starting from offset %lld.", c->addr, r->offset + 1 - want, want);
    return 1;
}

static void sync_common(client *c, int psync)
{
    server *s = c->srv;
    repl *r = s->repl;
    if (c->flags & CLIENT_REPLICA) return;
    if (r->master_host && r->link != RL_CONNECTED) {
        reply_error(&c->out, "-NOMASTERLINK Can't SYNC while not connected with my master");
        return;
    }
    /* A replica's stream is its master's bytes, whose selected database a
     * payload of ours could not tell (Redis keeps it in the RDB): no
     * chained replication yet. */
    if (r->master_host) {
        reply_error(&c->out, "ERR engram does not replicate from a replica yet (chained "
                    "replication): replicate from its primary");
        return;
    }
    if (reply_pending(&c->out)) {
        reply_error(&c->out, "ERR SYNC and PSYNC are invalid with pending output");
        return;
    }
    if (psync) {
        long long want;
        if (!arg_ll(c, 2, &want)) return;
        if (try_continue(c, c->argv[1], c->argvlen[1], want)) {
            r->sync_partial_ok++;
            return;
        }
        if (c->argvlen[1] != 1 || c->argv[1][0] != '?') r->sync_partial_err++;
    }
    r->sync_full++;
    if (!r->bl && !r->master_host) {
        /* the first replica: a new history begins here */
        repl_new_id(s, r->replid);
        clear_id2(r);
    }
    repl_backlog_create(s);
    repl_replica *rr = replica_add(s, c, psync);
    rr->state = RS_WAIT_BGSAVE_START;
    log_msg(LOG_NOTICE, "Replica %s asks for synchronization; full resync", c->addr);
    payload_start(s);
}

void cmd_psync(client *c) { sync_common(c, 1); }
void cmd_sync(client *c) { sync_common(c, 0); }

void cmd_replconf(client *c)
{
    server *s = c->srv;
    repl *r = s->repl;
    if (c->argc % 2 == 0) {
        reply_err_syntax(c);
        return;
    }
    for (int i = 1; i < c->argc; i += 2) {
        if (arg_is(c, i, "listening-port")) {
            long long port;
            if (!arg_ll(c, i + 1, &port)) return;
            rr_get(c)->listening_port = (int)port;
        } else if (arg_is(c, i, "ip-address")) {
            snprintf(rr_get(c)->ip, sizeof c->rr->ip, "%.*s",
                     (int)(c->argvlen[i + 1] < 63 ? c->argvlen[i + 1] : 63), c->argv[i + 1]);
        } else if (arg_is(c, i, "capa") || arg_is(c, i, "rdb-only") ||
                   arg_is(c, i, "rdb-filter-only")) {
            /* eof and psync2: understood; the payload is always sent from disk */
        } else if (arg_is(c, i, "ack")) {
            /* from a replica, no reply (as Redis) */
            long long off;
            if (!(c->flags & CLIENT_REPLICA) || !c->rr) return;
            if (!util_str2ll(c->argv[i + 1], c->argvlen[i + 1], &off)) return;
            if (off > c->rr->ack_off) c->rr->ack_off = off;
            c->rr->ack_ms = util_mono_ms();
            if (!dlist_empty(&r->waits)) repl_check_waits(s);
            return;
        } else if (arg_is(c, i, "getack")) {
            /* from our master: answered after the command ran (repl_master_ran) */
            if (c->flags & CLIENT_MASTER) r->ack_pending = 1;
            return;
        } else {
            reply_errorf(&c->out, "ERR Unrecognized REPLCONF option: %.*s",
                         (int)(c->argvlen[i] < 128 ? c->argvlen[i] : 128), c->argv[i]);
            return;
        }
    }
    reply_ok(&c->out);
}

void cmd_role(client *c)
{
    server *s = c->srv;
    repl *r = s->repl;
    if (r->master_host) {
        reply_array(&c->out, 5);
        reply_bulk_cstr(&c->out, "slave");
        reply_bulk_cstr(&c->out, r->master_host);
        reply_int(&c->out, r->master_port);
        reply_bulk_cstr(&c->out, repl_replica_state_name(r));
        reply_int(&c->out, r->master ? r->offset : -1);
        return;
    }
    reply_array(&c->out, 3);
    reply_bulk_cstr(&c->out, "master");
    reply_int(&c->out, r->offset);
    size_t h = reply_defer(&c->out);
    long long n = 0;
    for (dlist_node *it = dlist_first(&r->replicas); it; it = dlist_next(&r->replicas, it)) {
        repl_replica *rr = DLIST_ENTRY(it, repl_replica, node);
        if (rr->state != RS_ONLINE) continue;
        reply_array(&c->out, 3);
        reply_bulk_cstr(&c->out, rr->ip);
        reply_bulk_ll(&c->out, rr->listening_port);
        reply_bulk_ll(&c->out, rr->ack_off);
        n++;
    }
    reply_defer_array(&c->out, h, n);
}

/* opbuf has no raw append (its encoders build payloads): REPLAY logs the
 * payload it was given as it is. */
static void opbuf_put_raw(opbuf *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) cap *= 2;
        b->p = mem_realloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

void cmd_replay(client *c)
{
    server *s = c->srv;
    int type = op_resp_type(c->argv[1], c->argvlen[1]);
    if (type < 0) {
        reply_errorf(&c->out, "ERR REPLAY: unknown record type '%.*s'",
                     (int)(c->argvlen[1] < 64 ? c->argvlen[1] : 64), c->argv[1]);
        return;
    }
    char err[256];
    int rc = persist_apply(s, c->db, (uint8_t)type, c->argv[2], c->argvlen[2], err, sizeof err);
    if (rc < 0) {
        reply_errorf(&c->out, "ERR REPLAY: %s", err);
        return;
    }
    opbuf *b = persist_log_open(s, c->db, (uint8_t)type);
    if (b) {
        opbuf_put_raw(b, c->argv[2], c->argvlen[2]);
        persist_log_close(s);
    }
    s->dirty++;
    srv_watch_touch_db(s, c->db);
    reply_ok(&c->out);
}

/* ---- each pass, each tick ----------------------------------------------------------- */

void repl_before_sleep(server *s)
{
    repl *r = s->repl;
    if (r->child > 0) payload_reap(s);
    if (r->nreplicas) payload_pump(s);
    if (r->get_ack) {
        r->get_ack = 0;
        if (!dlist_empty(&r->waits) && r->nreplicas) repl_feed_bytes(s, getack_cmd, sizeof getack_cmd - 1);
    }
}

void repl_cron(server *s)
{
    repl *r = s->repl;
    int64_t now = util_mono_ms();
    if (r->child > 0) payload_reap(s);
    if (r->bl && s->cfg.repl_backlog_size != r->bl_size) {
        /* resized: a fresh backlog (replicas behind it will need a full sync) */
        mem_free(r->bl);
        r->bl = NULL;
        repl_backlog_create(s);
    }
    if (!r->master_host && r->nreplicas &&
        now - r->last_ping_ms >= s->cfg.repl_ping_period * 1000) {
        r->last_ping_ms = now;
        repl_feed_bytes(s, ping_cmd, sizeof ping_cmd - 1);
    }
    /* replicas silent for repl-timeout (an ACK comes every second) */
    for (dlist_node *it = dlist_first(&r->replicas); it; it = dlist_next(&r->replicas, it)) {
        repl_replica *rr = DLIST_ENTRY(it, repl_replica, node);
        if (rr->state == RS_ONLINE && rr->psync && now - rr->ack_ms > s->cfg.repl_timeout * 1000)
            replica_close(rr->c, "timeout: no ACK within repl-timeout");
    }
    if (!dlist_empty(&r->waits)) repl_check_waits(s);
    repl_replica_cron(s);
}

void repl_fini(server *s)
{
    repl *r = s->repl;
    if (!r) return;
    if (r->child > 0) {
        kill(r->child, SIGKILL);
        waitpid(r->child, NULL, 0);
        char path[4200];
        snprintf(path, sizeof path, "%s/engram.snap.tmp.%d", r->child_dir, (int)r->child);
        unlink(path);
        snprintf(path, sizeof path, "%s/engram.snap", r->child_dir);
        unlink(path);
        rmdir(r->child_dir);
    }
    repl_replica_unlink(s);
    /* WAITs whose clients are gone (srv_fini freed them first) */
    dlist_node *it;
    while ((it = dlist_first(&r->waits)) != NULL) {
        repl_wait *w = DLIST_ENTRY(it, repl_wait, node);
        dlist_remove(&w->node);
        if (w->timer) ev_timer_del(s->loop, w->timer);
        wait_release(&w->d);
    }
    mem_free(r->child_dir);
    mem_free(r->bl);
    op_resp_fini(&r->enc);
    opbuf_fini(&r->scratch);
    reply_fini(&r->mbuf);
    mem_free(r->master_host);
    mem_free(r);
    s->repl = NULL;
}

static int good_replicas(const server *s)
{
    const repl *r = s->repl;
    int64_t now = util_mono_ms();
    int n = 0;
    for (dlist_node *it = dlist_first(&r->replicas); it; it = dlist_next(&r->replicas, it)) {
        const repl_replica *rr = DLIST_ENTRY(it, repl_replica, node);
        n += rr->state == RS_ONLINE && (now - rr->ack_ms) / 1000 <= s->cfg.min_replicas_max_lag;
    }
    return n;
}

int repl_too_few_replicas(const server *s)
{
    return !s->repl->master_host && s->cfg.min_replicas_to_write > 0 &&
           s->cfg.min_replicas_max_lag > 0 && good_replicas(s) < s->cfg.min_replicas_to_write;
}

/* ---- across a clean restart ----------------------------------------------------- */

/* dir/repl.state: written at a clean shutdown (the log committed, memory
 * exactly the state after `offset`), read and deleted at the next start,
 * so a replica (or a primary) restarted from its dir continues its
 * history with a partial sync.  After a crash there is no file (it was
 * deleted at start): the history is unknown and a full sync follows. */
#define REPL_STATE_FILE "repl.state"

void repl_save_state(server *s)
{
    repl *r = s->repl;
    if (!r || !s->cfg.dir || !s->cfg.dir[0] || !r->bl || persist_write_error(s)) return;
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/" REPL_STATE_FILE, s->cfg.dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    int db = r->master ? r->master->db : r->master_db;
    int ok = fprintf(f, "engram-repl 1\nreplid %s\noffset %lld\ndb %d\n", r->replid, r->offset,
                     db) > 0;
    ok = fflush(f) == 0 && ok;
    ok = fsync(fileno(f)) == 0 && ok;
    ok = fclose(f) == 0 && ok;
    if (ok && rename(tmp, path) == 0) {
        log_msg(LOG_NOTICE, "Replication state saved: %s %lld", r->replid, r->offset);
    } else {
        unlink(tmp);
    }
}

void repl_restore_state(server *s)
{
    repl *r = s->repl;
    if (!s->cfg.dir || !s->cfg.dir[0]) return;
    char path[4200], id[64];
    long long off;
    int db, v;
    snprintf(path, sizeof path, "%s/" REPL_STATE_FILE, s->cfg.dir);
    FILE *f = fopen(path, "r");
    if (!f) return;
    int n = fscanf(f, "engram-repl %d replid %63s offset %lld db %d", &v, id, &off, &db);
    fclose(f);
    unlink(path);            /* good for this start only */
    int hex = strlen(id) == REPL_ID_LEN && strspn(id, "0123456789abcdef") == REPL_ID_LEN;
    if (n != 4 || v != 1 || !hex || off < 0 || db < 0 || db >= s->ndbs) {
        log_msg(LOG_WARNING, "Ignoring %s: not a replication state this server wrote", path);
        return;
    }
    memcpy(r->replid, id, REPL_ID_LEN + 1);
    clear_id2(r);
    r->offset = off;
    r->master_db = db;
    repl_backlog_create(s);
    log_msg(LOG_NOTICE, "Replication state restored: %s %lld (a partial sync can continue it)",
            r->replid, r->offset);
}

/* ---- INFO replication -------------------------------------------------------------- */

void repl_info(server *s, strbuf *b)
{
    repl *r = s->repl;
    strbuf_printf(b, "# Replication\r\nrole:%s\r\n", r->master_host ? "slave" : "master");
    if (r->master_host) repl_replica_info(s, b);
    strbuf_printf(b, "connected_slaves:%d\r\n", r->nreplicas);
    if (s->cfg.min_replicas_to_write > 0 && s->cfg.min_replicas_max_lag > 0)
        strbuf_printf(b, "min_slaves_good_slaves:%d\r\n", good_replicas(s));
    int i = 0;
    int64_t now = util_mono_ms();
    for (dlist_node *it = dlist_first(&r->replicas); it; it = dlist_next(&r->replicas, it)) {
        repl_replica *rr = DLIST_ENTRY(it, repl_replica, node);
        static const char *const names[] = {"wait_bgsave", "wait_bgsave", "send_bulk", "online"};
        strbuf_printf(b, "slave%d:ip=%s,port=%d,state=%s,offset=%lld,lag=%lld\r\n", i++, rr->ip,
                      rr->listening_port, names[rr->state], rr->ack_off,
                      (long long)(now - rr->ack_ms) / 1000);
    }
    strbuf_printf(b, "master_failover_state:no-failover\r\nmaster_replid:%s\r\nmaster_replid2:%s\r\n"
                  "master_repl_offset:%lld\r\nsecond_repl_offset:%lld\r\nrepl_backlog_active:%d\r\n"
                  "repl_backlog_size:%lld\r\nrepl_backlog_first_byte_offset:%lld\r\n"
                  "repl_backlog_histlen:%lld\r\n",
                  r->replid, r->replid2, r->offset, r->second_offset, r->bl != NULL,
                  s->cfg.repl_backlog_size, r->bl ? r->bl_first : 0, r->bl ? r->bl_histlen : 0);
}

void repl_info_stats(server *s, strbuf *b)
{
    repl *r = s->repl;
    strbuf_printf(b, "sync_full:%lld\r\nsync_partial_ok:%lld\r\nsync_partial_err:%lld\r\n",
                  r->sync_full, r->sync_partial_ok, r->sync_partial_err);
}

