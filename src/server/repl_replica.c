/* repl_replica.c -- the replica's side of replication (repl.h): REPLICAOF /
 * SLAVEOF, the link to the master from connect to the stream, loading a
 * full sync's payload in place of the dataset, the master client, ACKs,
 * and INFO replication's replica fields.
 *
 * The link, as states (RL_*, repl_private.h):
 *   CONNECT      the cron connects (once a second while it fails);
 *   CONNECTING   non-blocking connect; writable = connected;
 *   HANDSHAKE    PING; then AUTH (with masterauth), REPLCONF listening-port
 *                and REPLCONF capa eof capa psync2 sent at once and their
 *                replies read in order (AUTH must succeed, the REPLCONFs
 *                may fail, logged); then PSYNC, alone (a master refuses it
 *                while replies to the same client are pending), decides:
 *                  +FULLRESYNC id off  -> TRANSFER
 *                  +CONTINUE [id]      -> CONNECTED (a new id: ours becomes
 *                                         replid2, as the master was promoted)
 *                  anything else       -> CONNECT again a second later;
 *   TRANSFER     `$<len>` (newlines before it are keep-alives) and len bytes
 *                into a file: `dir`/engram.snap.tmp.repl-<pid> (start-up
 *                removes such temp files), or TMPDIR; then sync_load;
 *   CONNECTED    the socket belongs to r->master, a client flagged
 *                CLIENT_MASTER; when it is freed the link goes back to
 *                CONNECT (repl_client_gone) and the next PSYNC asks for
 *                offset + 1 under our replid.
 *
 * sync_load: the old dataset is dropped (freed on the lazy-free thread),
 * the payload loaded by the start-up loader (dataset_load: mapped in
 * place), and, with `dir`, made our snapshot with a fresh log
 * (persist_adopt_snapshot); our id and offset become the master's, our
 * backlog starts there, and our own replicas are dropped (their history
 * is gone).  It runs on the loop: clients wait for it as they wait for a
 * restart's load.
 *
 * Loop thread only. */
#include "repl_private.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "engram/mem.h"
#include "engram/util.h"
#include "dataset.h"
#include "ftspec.h"
#include "handlers.h"
#include "hkeys.h"
#include "log.h"
#include "net.h"
#include "persist.h"
#include "server.h"

/* ---- closing and failing --------------------------------------------------------- */

static void xfer_discard(repl *r)
{
    if (r->xfer_fd >= 0) close(r->xfer_fd);
    r->xfer_fd = -1;
    if (r->xfer_path) unlink(r->xfer_path);
    mem_free(r->xfer_path);
    r->xfer_path = NULL;
}

static void link_close_fd(server *s)
{
    repl *r = s->repl;
    if (r->fd >= 0) {
        ev_del(s->loop, r->fd, EV_READ | EV_WRITE);
        close(r->fd);
        r->fd = -1;
    }
    xfer_discard(r);
    r->rlen = 0;
}

/* The handshake or transfer failed: try again from the cron. */
static void link_fail(server *s, const char *why)
{
    repl *r = s->repl;
    log_msg(LOG_WARNING, "Replication link to %s:%d: %s", r->master_host, r->master_port, why);
    link_close_fd(s);
    r->link = RL_CONNECT;
    r->link_start_ms = util_mono_ms();
}

void repl_replica_unlink(server *s)
{
    repl *r = s->repl;
    link_close_fd(s);
    r->mbuf.len = r->mbuf.sent = 0;
    if (r->master) {
        client *m = r->master;
        r->master = NULL;
        r->master_db = m->db;
        client_free(m);
    }
    r->link = RL_NONE;
}

/* ---- the stream ----------------------------------------------------------------------- */

void repl_replica_send_ack(server *s)
{
    repl *r = s->repl;
    if (!r->master) return;
    char num[32];
    size_t n = util_ll2str(num, sizeof num, r->offset);
    const char *argv[] = {"REPLCONF", "ACK", num};
    (void)n;
    repl_send_argv(&r->master->out, 3, argv);
    client_mark_pending(r->master);
    r->last_ack_ms = util_mono_ms();
}

void repl_master_ran(client *c, const char *p, size_t n, size_t mark)
{
    server *s = c->srv;
    repl *r = s->repl;
    if (c->out.len > mark) {
        /* no replies to the master; an error means we diverged from it */
        if (c->out.data[mark] == '-') {
            size_t len = c->out.len - mark;
            log_msg(LOG_WARNING, "== CRITICAL == This replica is sending an error to its "
                    "master: '%.*s' after processing the command '%.*s'",
                    (int)(len > 2 && len < 200 ? len - 2 : len < 200 ? len : 200),
                    c->out.data + mark, (int)(c->last ? strlen(c->last->fullname) : 0),
                    c->last ? c->last->fullname : "");
        }
        c->out.len = mark;
    }
    if (r->master != c) return;
    /* A transaction counts once its EXEC ran: until then memory lacks its
     * writes, so neither our offset nor our replicas may include them (a
     * payload forked in between would miss them). */
    reply_raw(&r->mbuf, p, n);
    if (c->flags & CLIENT_MULTI) return;
    repl_feed_bytes(s, r->mbuf.data, r->mbuf.len);   /* our offset; our backlog and replicas */
    r->mbuf.len = r->mbuf.sent = 0;
    if (r->mbuf.cap > (1u << 20)) {
        reply_fini(&r->mbuf);
        reply_init(&r->mbuf, 2);
    }
    if (r->ack_pending) {
        r->ack_pending = 0;
        repl_replica_send_ack(s);
    }
}

/* The link carries the stream from now on, as the master client. */
static void become_connected(server *s, const char *extra, size_t n)
{
    repl *r = s->repl;
    char addr[64], laddr[64];
    net_addrs(r->fd, addr, sizeof addr, laddr, sizeof laddr);
    ev_del(s->loop, r->fd, EV_READ | EV_WRITE);
    client *c = client_new(s, r->fd, addr, laddr);
    if (!c) {
        link_fail(s, "could not register the master's connection");
        return;
    }
    r->fd = -1;
    r->rlen = 0;
    c->flags |= CLIENT_MASTER | CLIENT_AUTHED;
    c->db = r->master_db;
    r->master = c;
    r->link = RL_CONNECTED;
    r->link_down_since_ms = 0;
    log_msg(LOG_NOTICE, "MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization "
            "or finished a full one; streaming from offset %lld", r->offset);
    repl_replica_send_ack(s);
    if (n) client_feed(c, extra, n);
}

/* The payload is in r->xfer_path: make it our dataset (see the top). */
static void sync_load(server *s, const char *extra, size_t n)
{
    repl *r = s->repl;
    char err[600];
    uint64_t seq = 0;
    if (s->ps) (void)fsync(r->xfer_fd);
    close(r->xfer_fd);
    r->xfer_fd = -1;
    log_msg(LOG_NOTICE, "MASTER <-> REPLICA sync: Flushing old data");
    db_clear(s, -1, 1);
    ft_db_flushed(s, -1);          /* the search indices go with the data */
    srv_watch_touch_db(s, -1);
    s->dirty++;
    log_msg(LOG_NOTICE, "MASTER <-> REPLICA sync: Loading DB in memory");
    if (dataset_load(s, r->xfer_path, &seq, err, sizeof err) < 0) {
        db_clear(s, -1, 1);
        link_fail(s, err);
        return;
    }
    hkeys_track_all(s);
    ft_loaded(s);                  /* the search indices' documents */
    if (s->ps) {
        (void)persist_adopt_snapshot(s, r->xfer_path, seq);   /* renames it */
        mem_free(r->xfer_path);
        r->xfer_path = NULL;
    } else {
        xfer_discard(r);
    }
    memcpy(r->replid, r->master_replid_seen, sizeof r->replid);
    memset(r->replid2, '0', REPL_ID_LEN);
    r->second_offset = -1;
    r->offset = r->master_initial_off;
    mem_free(r->bl);
    r->bl = NULL;
    repl_backlog_create(s);
    repl_drop_replicas(s);
    r->master_db = 0;
    log_msg(LOG_NOTICE, "MASTER <-> REPLICA sync: Finished with success");
    become_connected(s, extra, n);
}

/* ---- the transfer ------------------------------------------------------------------------ */

/* Payload bytes: to the file; past its end, the stream's first bytes. */
static void xfer_bytes(server *s, const char *p, size_t n)
{
    repl *r = s->repl;
    long long need = r->xfer_size - r->xfer_read;
    size_t k = (long long)n < need ? n : (size_t)need;
    while (k > 0) {
        ssize_t w = write(r->xfer_fd, p, k);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            char why[160];
            snprintf(why, sizeof why, "writing the payload to %s: %s", r->xfer_path,
                     strerror(errno));
            link_fail(s, why);
            return;
        }
        p += w;
        n -= (size_t)w;
        k -= (size_t)w;
        r->xfer_read += w;
    }
    if (r->xfer_read == r->xfer_size) sync_load(s, p, n);
}

static int xfer_open(server *s, long long size)
{
    repl *r = s->repl;
    char path[4200];
    const char *tmp = getenv("TMPDIR");
    if (s->cfg.dir && s->cfg.dir[0])
        snprintf(path, sizeof path, "%s/engram.snap.tmp.repl-%d", s->cfg.dir, (int)getpid());
    else
        snprintf(path, sizeof path, "%s/engram-replica.%d.snap", tmp && tmp[0] ? tmp : "/tmp",
                 (int)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        char why[4400];
        snprintf(why, sizeof why, "cannot create %s: %s", path, strerror(errno));
        link_fail(s, why);
        return -1;
    }
    r->xfer_fd = fd;
    r->xfer_path = mem_strndup(path, strlen(path));
    r->xfer_size = size;
    r->xfer_read = 0;
    log_msg(LOG_NOTICE, "MASTER <-> REPLICA sync: receiving %lld bytes from master to disk",
            size);
    return 0;
}

/* ---- the handshake ------------------------------------------------------------------------ */

static int send_cmd(server *s, int argc, const char *const *argv)
{
    repl *r = s->repl;
    reply out;
    reply_init(&out, 2);
    repl_send_argv(&out, argc, argv);
    size_t off = 0;
    int rc = 0;
    while (off < out.len) {
        /* a few hundred bytes on a fresh socket: its buffer takes them */
        ssize_t w = write(r->fd, out.data + off, out.len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            rc = -1;
            break;
        }
        off += (size_t)w;
    }
    reply_fini(&out);
    return rc;
}

/* After +PONG: AUTH and the REPLCONFs, pipelined; their replies are
 * counted in r->expect.  PSYNC waits for them (send_psync): a master
 * refuses PSYNC while replies to the same client are pending. */
static int send_handshake(server *s)
{
    repl *r = s->repl;
    char port[16];
    long long p = s->cfg.replica_announce_port ? s->cfg.replica_announce_port : s->port;
    snprintf(port, sizeof port, "%lld", p);
    r->expect = 2;
    r->auth_pending = 0;
    if (s->cfg.masterauth && s->cfg.masterauth[0]) {
        int user = s->cfg.masteruser && s->cfg.masteruser[0];
        const char *a[] = {"AUTH", user ? s->cfg.masteruser : s->cfg.masterauth, s->cfg.masterauth};
        if (send_cmd(s, user ? 3 : 2, a) < 0) return -1;
        r->expect++;
        r->auth_pending = 1;
    }
    const char *lp[] = {"REPLCONF", "listening-port", port};
    if (send_cmd(s, 3, lp) < 0) return -1;
    if (s->cfg.replica_announce_ip && s->cfg.replica_announce_ip[0]) {
        const char *ip[] = {"REPLCONF", "ip-address", s->cfg.replica_announce_ip};
        if (send_cmd(s, 3, ip) < 0) return -1;
        r->expect++;
    }
    const char *capa[] = {"REPLCONF", "capa", "eof", "capa", "psync2"};
    return send_cmd(s, 5, capa);
}

/* With a history (a backlog), ask to continue it; else a full sync. */
static int send_psync(server *s)
{
    repl *r = s->repl;
    char off[32];
    r->psync_sent = 1;
    if (r->bl) {
        snprintf(off, sizeof off, "%lld", r->offset + 1);
        const char *ps[] = {"PSYNC", r->replid, off};
        return send_cmd(s, 3, ps);
    }
    const char *ps[] = {"PSYNC", "?", "-1"};
    return send_cmd(s, 3, ps);
}

/* +CONTINUE [id]: the master kept our history (under a new id if it was
 * promoted since). */
static void on_continue(server *s, const char *id, size_t idlen)
{
    repl *r = s->repl;
    if (idlen == REPL_ID_LEN && strncmp(id, r->replid, REPL_ID_LEN) != 0) {
        memcpy(r->replid2, r->replid, sizeof r->replid2);
        r->second_offset = r->offset + 1;
        memcpy(r->replid, id, REPL_ID_LEN);
        r->replid[REPL_ID_LEN] = '\0';
        log_msg(LOG_NOTICE, "Master replication ID changed to %s", r->replid);
        repl_drop_replicas(s);   /* they must learn the new id */
    }
    log_msg(LOG_NOTICE, "MASTER <-> REPLICA sync: Successfully continued replication with "
            "master.");
}

/* One reply line of the handshake.  Returns 1 when the link changed
 * state (the caller stops parsing lines), 0 to go on, -1 after failing. */
static int handshake_line(server *s, const char *l, size_t n)
{
    repl *r = s->repl;
    char why[300];
    if (r->link == RL_TRANSFER) {               /* waiting for $<len> */
        long long size;
        if (n == 0) return 0;                   /* keep-alive newline */
        if (l[0] == '-') {
            snprintf(why, sizeof why, "master aborted the sync: %.*s", (int)n, l);
            link_fail(s, why);
            return -1;
        }
        if (l[0] != '$' || (n >= 5 && !strncmp(l, "$EOF:", 5)) ||
            !util_str2ll(l + 1, n - 1, &size) || size < 0) {
            snprintf(why, sizeof why, "unexpected payload header from the master: %.*s",
                     (int)(n < 64 ? n : 64), l);
            link_fail(s, why);
            return -1;
        }
        return xfer_open(s, size) < 0 ? -1 : 1;
    }
    if (!r->pong) {                             /* the PING's reply */
        if (l[0] == '-' && strncmp(l, "-NOAUTH", 7) && strncmp(l, "-NOPERM", 7) &&
            strncmp(l, "-ERR operation not permitted", 28)) {
            snprintf(why, sizeof why, "error reply to PING from master: '%.*s'", (int)n, l);
            link_fail(s, why);
            return -1;
        }
        r->pong = 1;
        if (send_handshake(s) < 0) {
            link_fail(s, "writing the handshake failed");
            return -1;
        }
        return 0;
    }
    if (!r->psync_sent) {
        /* AUTH's reply first when there is one, then the REPLCONFs' */
        if (r->auth_pending) {
            r->auth_pending = 0;
            if (l[0] == '-') {
                snprintf(why, sizeof why, "Unable to AUTH to MASTER: %.*s", (int)n, l);
                link_fail(s, why);
                return -1;
            }
        } else if (l[0] == '-') {
            log_msg(LOG_NOTICE, "(Non critical) Master does not understand REPLCONF: %.*s",
                    (int)n, l);
        }
        if (--r->expect == 0 && send_psync(s) < 0) {
            link_fail(s, "writing PSYNC failed");
            return -1;
        }
        return 0;
    }
    /* PSYNC's reply */
    if (n > 12 && !strncmp(l, "+FULLRESYNC ", 12)) {
        const char *id = l + 12;
        const char *sp = memchr(id, ' ', n - 12);
        long long off;
        if (!sp || sp - id != REPL_ID_LEN ||
            !util_str2ll(sp + 1, n - (size_t)(sp + 1 - l), &off)) {
            link_fail(s, "malformed +FULLRESYNC from the master");
            return -1;
        }
        memcpy(r->master_replid_seen, id, REPL_ID_LEN);
        r->master_replid_seen[REPL_ID_LEN] = '\0';
        r->master_initial_off = off;
        r->link = RL_TRANSFER;
        r->xfer_size = -1;
        r->xfer_last_io_ms = util_mono_ms();
        log_msg(LOG_NOTICE, "Full resync from master: %s:%lld", r->master_replid_seen, off);
        return 0;
    }
    if (n >= 9 && !strncmp(l, "+CONTINUE", 9)) {
        on_continue(s, n > 10 ? l + 10 : "", n > 10 ? n - 10 : 0);
        return 1;
    }
    snprintf(why, sizeof why, "unexpected reply to PSYNC from master: %.*s",
             (int)(n < 128 ? n : 128), l);
    link_fail(s, why);
    return -1;
}

static void link_on_readable(ev_loop *l, int fd, void *ud, int mask)
{
    server *s = ud;
    repl *r = s->repl;
    (void)l;
    (void)mask;
    static char big[64 * 1024];
    if (r->link == RL_TRANSFER && r->xfer_fd >= 0) {
        ssize_t n = read(fd, big, sizeof big);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
        if (n <= 0) {
            link_fail(s, n == 0 ? "the master closed the connection during the transfer"
                                : strerror(errno));
            return;
        }
        r->xfer_last_io_ms = util_mono_ms();
        xfer_bytes(s, big, (size_t)n);
        return;
    }
    ssize_t n = read(fd, r->rbuf + r->rlen, sizeof r->rbuf - r->rlen);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
        link_fail(s, n == 0 ? "the master closed the connection" : strerror(errno));
        return;
    }
    r->rlen += (size_t)n;
    r->xfer_last_io_ms = util_mono_ms();
    char *nl;
    while (r->link != RL_CONNECT && (nl = memchr(r->rbuf, '\n', r->rlen)) != NULL) {
        size_t len = (size_t)(nl - r->rbuf), used = len + 1;
        if (len && r->rbuf[len - 1] == '\r') len--;
        int rc = handshake_line(s, r->rbuf, len);
        if (rc < 0) return;
        memmove(r->rbuf, r->rbuf + used, r->rlen - used);
        r->rlen -= used;
        if (rc == 1) {
            /* what follows the line: payload bytes, or the stream */
            char rest[sizeof r->rbuf];
            size_t k = r->rlen;
            memcpy(rest, r->rbuf, k);
            r->rlen = 0;
            if (r->link == RL_TRANSFER) xfer_bytes(s, rest, k);
            else become_connected(s, rest, k);
            return;
        }
    }
    if (r->rlen == sizeof r->rbuf) link_fail(s, "a handshake reply line too long");
}

static void link_on_connected(ev_loop *l, int fd, void *ud, int mask)
{
    server *s = ud;
    repl *r = s->repl;
    (void)mask;
    ev_del(l, fd, EV_WRITE);
    int rc = net_connect_result(fd);
    if (rc < 0) {
        char why[160];
        snprintf(why, sizeof why, "Error condition on socket for SYNC: %s", strerror(-rc));
        link_fail(s, why);
        return;
    }
    log_msg(LOG_NOTICE, "MASTER <-> REPLICA sync started");
    r->link = RL_HANDSHAKE;
    r->expect = 0;
    r->pong = 0;
    r->psync_sent = 0;
    r->rlen = 0;
    const char *ping[] = {"PING"};
    if (send_cmd(s, 1, ping) < 0 || ev_add(l, fd, EV_READ, link_on_readable, s) < 0) {
        link_fail(s, "writing PING failed");
        return;
    }
}

static void link_connect(server *s)
{
    repl *r = s->repl;
    log_msg(LOG_NOTICE, "Connecting to MASTER %s:%d", r->master_host, r->master_port);
    r->link_start_ms = util_mono_ms();
    int fd = net_connect(r->master_host, r->master_port);
    if (fd < 0) {
        log_msg(LOG_WARNING, "Unable to connect to MASTER: %s", strerror(-fd));
        return;                  /* the cron tries again */
    }
    r->fd = fd;
    r->link = RL_CONNECTING;
    if (ev_add(s->loop, fd, EV_WRITE, link_on_connected, s) < 0) link_fail(s, "ev_add failed");
}

/* ---- REPLICAOF --------------------------------------------------------------------- */

void repl_replica_set_master(server *s, const char *host, int port)
{
    repl *r = s->repl;
    repl_replica_unlink(s);
    mem_free(r->master_host);
    r->master_host = mem_strndup(host, strlen(host));
    r->master_port = port;
    r->link = RL_CONNECT;
    r->link_start_ms = 0;
    r->link_down_since_ms = 0;
    /* WAITs cannot be answered by a replica */
    repl_check_waits(s);
    char v[300], err[256];
    snprintf(v, sizeof v, "%s %d", host, port);
    (void)config_set(&s->cfg, "replicaof", v, 0, err, sizeof err);
}

static void promote(server *s)
{
    repl *r = s->repl;
    repl_replica_unlink(s);
    mem_free(r->master_host);
    r->master_host = NULL;
    repl_shift_id(s);
    repl_backlog_create(s);      /* keep serving partial syncs from our history */
    char err[256];
    (void)config_set(&s->cfg, "replicaof", "", 0, err, sizeof err);
    log_msg(LOG_NOTICE, "MASTER MODE enabled");
}

void cmd_replicaof(client *c)
{
    server *s = c->srv;
    repl *r = s->repl;
    if (c->flags & CLIENT_REPLICA) {
        reply_error(&c->out, "ERR Command is not valid when client is a replica.");
        return;
    }
    if (arg_is(c, 1, "no") && arg_is(c, 2, "one")) {
        if (r->master_host) {
            log_msg(LOG_NOTICE, "MASTER MODE enabled (user request from 'id=%llu addr=%s')",
                    (unsigned long long)c->id, c->addr);
            promote(s);
        }
        reply_ok(&c->out);
        return;
    }
    long long port;
    if (!arg_ll(c, 2, &port)) return;
    if (port < 0 || port > 65535) {
        reply_error(&c->out, "ERR Invalid master port");
        return;
    }
    if (r->master_host && r->master_port == port && strlen(r->master_host) == c->argvlen[1] &&
        !strncasecmp(r->master_host, c->argv[1], c->argvlen[1])) {
        reply_simple(&c->out, "OK Already connected to specified master");
        return;
    }
    char host[256];
    snprintf(host, sizeof host, "%.*s", (int)(c->argvlen[1] < 255 ? c->argvlen[1] : 255),
             c->argv[1]);
    repl_replica_set_master(s, host, (int)port);
    log_msg(LOG_NOTICE, "REPLICAOF %s:%d enabled (user request from 'id=%llu addr=%s')", host,
            (int)port, (unsigned long long)c->id, c->addr);
    reply_ok(&c->out);
}

/* ---- cron, ROLE, INFO -------------------------------------------------------------- */

void repl_replica_cron(server *s)
{
    repl *r = s->repl;
    if (!r->master_host || persist_loading(s)) return;   /* a full sync waits for our load */
    int64_t now = util_mono_ms();
    int64_t limit = s->cfg.repl_timeout * 1000;
    switch (r->link) {
    case RL_CONNECT:
        if (now - r->link_start_ms >= 1000) link_connect(s);
        break;
    case RL_CONNECTING:
    case RL_HANDSHAKE:
        if (now - r->link_start_ms > limit) link_fail(s, "Timeout connecting to the MASTER...");
        break;
    case RL_TRANSFER:
        if (now - r->xfer_last_io_ms > limit)
            link_fail(s, "Timeout receiving bulk data from MASTER... If the problem persists "
                      "try to set the 'repl-timeout' parameter in engram.conf to a larger value.");
        break;
    case RL_CONNECTED:
        if (r->master && now - r->master->last_io_ms > limit) {
            log_msg(LOG_WARNING, "MASTER timeout: no data nor PING received...");
            client_free(r->master);        /* repl_client_gone: back to CONNECT */
        } else if (now - r->last_ack_ms >= 1000) {
            repl_replica_send_ack(s);
        }
        break;
    default:
        break;
    }
}

const char *repl_replica_state_name(const repl *r)
{
    switch (r->link) {
    case RL_CONNECT: return "connect";
    case RL_CONNECTING: return "connecting";
    case RL_HANDSHAKE: return "handshake";
    case RL_TRANSFER: return "sync";
    case RL_CONNECTED: return "connected";
    default: return "none";
    }
}

void repl_replica_info(server *s, strbuf *b)
{
    repl *r = s->repl;
    int64_t now = util_mono_ms();
    int up = r->link == RL_CONNECTED && r->master;
    strbuf_printf(b, "master_host:%s\r\nmaster_port:%d\r\nmaster_link_status:%s\r\n"
                  "master_last_io_seconds_ago:%lld\r\nmaster_sync_in_progress:%d\r\n"
                  "slave_read_repl_offset:%lld\r\nslave_repl_offset:%lld\r\n",
                  r->master_host, r->master_port, up ? "up" : "down",
                  up ? (long long)(now - r->master->last_io_ms) / 1000 : -1LL,
                  r->link == RL_TRANSFER, r->offset, r->offset);
    if (r->link == RL_TRANSFER && r->xfer_size >= 0) {
        strbuf_printf(b, "master_sync_total_bytes:%lld\r\nmaster_sync_read_bytes:%lld\r\n"
                      "master_sync_left_bytes:%lld\r\nmaster_sync_perc:%.2f\r\n"
                      "master_sync_last_io_seconds_ago:%lld\r\n",
                      r->xfer_size, r->xfer_read, r->xfer_size - r->xfer_read,
                      r->xfer_size ? 100.0 * (double)r->xfer_read / (double)r->xfer_size : 0.0,
                      (long long)(now - r->xfer_last_io_ms) / 1000);
    }
    if (!up)
        strbuf_printf(b, "master_link_down_since_seconds:%lld\r\n",
                      r->link_down_since_ms ? (long long)(util_wall_ms() - r->link_down_since_ms) / 1000
                                            : -1LL);
    strbuf_printf(b, "slave_priority:%lld\r\nslave_read_only:%d\r\nreplica_announced:1\r\n",
                  s->cfg.replica_priority, s->cfg.replica_read_only);
}

int repl_refuses_writes(const server *s, const client *c)
{
    const repl *r = s->repl;
    return r->master_host && s->cfg.replica_read_only && !(c->flags & CLIENT_MASTER);
}

int repl_stale(const server *s)
{
    const repl *r = s->repl;
    return r->master_host && r->link != RL_CONNECTED && !s->cfg.replica_serve_stale_data;
}
