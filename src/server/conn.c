/* conn.c -- a client connection: its query buffer, its parser, its reply
 * buffer, and the read/write handlers on the event loop.
 *
 * Input: bytes are read into qbuf; [qpos, qlen) are not consumed yet.  Every
 * complete request in a read is executed in order (pipelining); a partial
 * request stays in the buffer and the parser resumes where it stopped.
 * Protocol errors get Redis's error text, then the connection is closed once
 * that reply is out.
 *
 * Turns: commands run on the loop thread, so one client's long pipeline of
 * slow commands (VADDs into a big HNSW index, ~70 us each) would hold every
 * other client, a PING included, until all of it ran.  So a loop pass runs
 * commands for a millisecond or so (s->pass_end_us: server.c): past that, a
 * client that has run at least one command in this turn stops, and the
 * rest of its input waits on the server's turn list (FIFO) for the next
 * pass, which the server starts without sleeping (a 0 ms timer).  Everyone
 * gets at least one command per pass, and a PING waits for about one pass,
 * not for whole pipelines.  Replies of a pass still leave together in
 * before-sleep, after its log commit.  The clock is the wall clock
 * dispatch.c reads after every command: a step forward only ends a pass early, a step
 * back makes one longer.
 *
 * Output: replies are appended to `out` and the client is put on the
 * server's pending list (first come, first written: a PING answered while
 * the loop read input is not written after the search batches collected
 * later in the same pass); before the loop sleeps, server.c writes every
 * pending client directly (one write per client per iteration, however many
 * commands it pipelined).  Only if the socket is full is a write handler
 * installed, so replies are never dropped and writes never block.
 *
 * Ownership: a client is freed only by client_free(), on the loop thread; a
 * command may ask for its own client to be closed (flags), never free it. */
#include "server.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "engram/mem.h"
#include "engram/util.h"
#include "acl.h"
#include "log.h"
#include "persist.h"
#include "pubsub.h"
#include "repl.h"

#define CONN_READ_CHUNK (16 * 1024)
#define CONN_QBUF_KEEP (32 * 1024)     /* an idle client keeps at most this */
#define CONN_OBUF_KEEP (64 * 1024)

static void conn_on_readable(ev_loop *l, int fd, void *ud, int mask);
static void conn_on_writable(ev_loop *l, int fd, void *ud, int mask);

static void conn_limits(const client *c, resp_limits *lim)
{
    const config *cfg = &c->srv->cfg;
    lim->max_bulk_len = cfg->proto_max_bulk_len;
    lim->max_multibulk = 2147483647LL;
    lim->max_inline = RESP_INLINE_MAX;
    lim->unauthenticated = client_must_auth(c);
}

int client_must_auth(const client *c) { return !(c->flags & CLIENT_AUTHED); }

client *client_new(server *s, int fd, const char *addr, const char *laddr)
{
    client *c = mem_calloc(1, sizeof *c);
    resp_limits lim;

    c->id = ++s->next_client_id;
    c->fd = fd;
    c->srv = s;
    c->resp = 2;
    /* As Redis: a connection is the default user, authenticated when that
     * user needs no password (and stays so if one is set later). */
    c->user = acl_default_user(s);
    if (acl_user_open(c->user)) c->flags |= CLIENT_AUTHED;
    snprintf(c->addr, sizeof c->addr, "%s", addr);
    snprintf(c->laddr, sizeof c->laddr, "%s", laddr);
    c->ctime_ms = c->last_io_ms = util_mono_ms();
    reply_init(&c->out, 2);
    conn_limits(c, &lim);
    resp_init(&c->parser, &lim);
    if (fd >= 0 && ev_add(s->loop, fd, EV_READ, conn_on_readable, c) < 0) {
        reply_fini(&c->out);
        resp_fini(&c->parser);
        mem_free(c);
        return NULL;
    }
    dlist_push(&s->clients, &c->node);
    s->nclients++;
    return c;
}

/* The turn list (see the top). */
static void conn_turn_wait(client *c)
{
    server *s = c->srv;
    if (dlist_linked(&c->turn)) return;
    c->turn_seq = ++s->turn_seq;
    dlist_push(&s->turns, &c->turn);
}

void client_free(client *c)
{
    server *s;
    if (!c) return;
    s = c->srv;
    dlist_remove(&c->pending);
    dlist_remove(&c->turn);
    if (c->fd >= 0) {
        ev_del(s->loop, c->fd, EV_READ | EV_WRITE);
        close(c->fd);
    }
    dlist_remove(&c->node);
    s->nclients--;
    pubsub_client_reset(c);
    deferred_detach(c);                   /* running jobs finish without us */
    multi_discard(c);
    persist_client_gone(s, c);
    repl_client_gone(c);
    resp_fini(&c->parser);
    reply_fini(&c->out);
    mem_free(c->qbuf);
    mem_free(c->name);
    mem_free(c->lib_name);
    mem_free(c->lib_ver);
    mem_free(c);
}

void client_mark_pending(client *c)
{
    if (dlist_linked(&c->pending) || c->fd < 0) return;
    dlist_push(&c->srv->pending, &c->pending);
}

void client_close_after_reply(client *c)
{
    c->flags |= CLIENT_CLOSE_AFTER_REPLY;
    client_mark_pending(c);
}

int client_flush(client *c)
{
    server *s = c->srv;

    /* Nothing leaves while the log holds uncommitted records (persist.h):
     * this reply may show their data.  Before-sleep flushes after the
     * commit. */
    if (persist_holds_replies(s)) {
        client_mark_pending(c);
        return 0;
    }

    while (reply_pending(&c->out) > 0) {
        ssize_t n = write(c->fd, c->out.data + c->out.sent, reply_pending(&c->out));
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            log_msg(LOG_VERBOSE, "Error writing to client %s: %s", c->addr, strerror(errno));
            client_free(c);
            return -1;
        }
        s->st.net_out += n;
        reply_consumed(&c->out, (size_t)n);
        c->last_io_ms = srv_loop_ms(s);
    }
    if (reply_pending(&c->out) > 0) {
        if (!(ev_get_mask(s->loop, c->fd) & EV_WRITE))
            ev_add(s->loop, c->fd, EV_WRITE, conn_on_writable, c);
        return 0;
    }
    if (ev_get_mask(s->loop, c->fd) & EV_WRITE) ev_del(s->loop, c->fd, EV_WRITE);
    if (c->flags & CLIENT_CLOSE_AFTER_REPLY) {
        client_free(c);
        return -1;
    }
    if (c->out.cap > CONN_OBUF_KEEP) {   /* give a burst's memory back */
        int proto = c->out.proto;
        reply_fini(&c->out);
        reply_init(&c->out, proto);
    }
    return 0;
}

static void conn_on_writable(ev_loop *l, int fd, void *ud, int mask)
{
    client *c = ud;
    dlist_remove(&c->pending);
    client_flush(c);
}

int client_check_obuf(client *c)
{
    const config *cfg = &c->srv->cfg;
    size_t pending = reply_pending(&c->out);
    int over = 0;
    /* The client's class, as Redis's getClientType: one with subscriptions
     * is a pubsub client. */
    long long hard = cfg->obuf_hard, soft = cfg->obuf_soft, secs = cfg->obuf_soft_seconds;
    if (c->flags & CLIENT_PUBSUB) {
        hard = cfg->obuf_pubsub[0];
        soft = cfg->obuf_pubsub[1];
        secs = cfg->obuf_pubsub[2];
    }
    if (c->flags & CLIENT_REPLICA) {
        hard = cfg->obuf_replica[0];
        soft = cfg->obuf_replica[1];
        secs = cfg->obuf_replica[2];
    }

    if (hard && pending > (size_t)hard) {
        over = 1;
    } else if (soft && pending > (size_t)soft) {
        int64_t now = util_mono_ms();
        if (!c->obuf_soft_since_ms) c->obuf_soft_since_ms = now;
        else if (now - c->obuf_soft_since_ms >= secs * 1000) over = 1;
    } else {
        c->obuf_soft_since_ms = 0;
    }
    if (!over) return 0;
    if (!(c->flags & CLIENT_CLOSE_ASAP)) {
        log_msg(LOG_WARNING, "Client id=%llu addr=%s scheduled to be closed ASAP for "
                "overcoming of output buffer limits.", (unsigned long long)c->id, c->addr);
        c->srv->st.obuf_kills++;
    }
    c->flags |= CLIENT_CLOSE_ASAP;
    return 1;
}

/* Execute the complete requests in the buffer, in order, until the pass's
 * time is up (see the top). */
static void conn_process_input(client *c)
{
    server *s = c->srv;
    int ran = 0;
    dlist_remove(&c->turn);         /* this is its turn */
    while (c->qpos < c->qlen &&
           !(c->flags & (CLIENT_CLOSE_AFTER_REPLY | CLIENT_CLOSE_ASAP | CLIENT_BLOCKED))) {
        if (ran && s->clock_us >= s->pass_end_us) {
            conn_turn_wait(c);
            break;
        }
        int rc = resp_parse(&c->parser, c->qbuf + c->qpos, c->qlen - c->qpos);
        if (rc == RESP_AGAIN) break;
        if (rc != RESP_OK && deferred_busy(c)) {
            /* Even a protocol error answers after the replies in flight:
             * the bytes do not change, so parsing them again once those are
             * answered gives the same error. */
            resp_reset(&c->parser);
            client_block(c);
            break;
        }
        if (rc != RESP_OK) {
            char scratch[128];
            reply_errorf(&c->out, "%s", resp_strerror(rc, &c->parser, scratch, sizeof scratch));
            log_msg(LOG_VERBOSE, "Protocol error (%s) from client id=%llu addr=%s",
                    resp_strerror(rc, &c->parser, scratch, sizeof scratch),
                    (unsigned long long)c->id, c->addr);
            c->qpos = c->qlen;
            client_close_after_reply(c);
            break;
        }
        size_t used = resp_consumed(&c->parser);
        size_t mark = c->out.len;
        c->argc = c->parser.argc;
        c->argv = c->parser.argv;
        c->argvlen = c->parser.argvlen;
        int wait = c->argc > 0 && dispatch_command(c) == DISPATCH_WAIT;
        c->argc = 0;
        c->argv = NULL;
        c->argvlen = NULL;
        resp_reset(&c->parser);
        if (wait) {
            /* Its reply must follow the replies in flight: the request stays
             * in the buffer and is parsed again when they are answered (the
             * buffer may move meanwhile, so the parsed pointers are not
             * kept). */
            client_block(c);
            break;
        }
        ran = 1;
        /* our master's stream: its bytes are our offset, its replies dropped */
        if (c->flags & CLIENT_MASTER) repl_master_ran(c, c->qbuf + c->qpos, used, mark);
        c->qpos += used;
        if (reply_pending(&c->out)) {
            client_mark_pending(c);
            client_check_obuf(c);
        }
    }
    /* Replies in flight, and the input ends at a request boundary (or
     * waits for them, or for the next turn): the batch is complete, answer
     * it as soon as it is done.  A partial request means the client is
     * still sending it. */
    if (deferred_busy(c) && (c->qpos == c->qlen || (c->flags & CLIENT_BLOCKED) ||
                             dlist_linked(&c->turn)))
        deferred_batch_end(c);
    if (c->qpos == c->qlen && !(c->flags & CLIENT_BLOCKED)) {
        c->qpos = c->qlen = 0;
        if (c->qcap > CONN_QBUF_KEEP) {
            mem_free(c->qbuf);
            c->qbuf = NULL;
            c->qcap = 0;
        }
    }
}

/* Make room for at least CONN_READ_CHUNK more bytes.  Consumed bytes are
 * dropped from the front first; the buffer doubles only when one request is
 * bigger than it. */
static void conn_reserve(client *c)
{
    if (c->qcap - c->qlen >= CONN_READ_CHUNK) return;
    if (c->qpos > 0) {
        memmove(c->qbuf, c->qbuf + c->qpos, c->qlen - c->qpos);
        c->qlen -= c->qpos;
        c->qpos = 0;
        if (c->qcap - c->qlen >= CONN_READ_CHUNK) return;
    }
    size_t ncap = c->qcap ? c->qcap * 2 : CONN_READ_CHUNK;
    while (ncap - c->qlen < CONN_READ_CHUNK) ncap *= 2;
    c->qbuf = mem_realloc(c->qbuf, ncap);
    c->qcap = ncap;
}

static void conn_on_readable(ev_loop *l, int fd, void *ud, int mask)
{
    client *c = ud;
    server *s = c->srv;
    ssize_t n;

    conn_reserve(c);
    do {
        n = read(fd, c->qbuf + c->qlen, c->qcap - c->qlen);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        log_msg(LOG_VERBOSE, "Reading from client %s: %s", c->addr, strerror(errno));
        client_free(c);
        return;
    }
    if (n == 0) {
        log_msg(LOG_VERBOSE, "Client closed connection id=%llu addr=%s",
                (unsigned long long)c->id, c->addr);
        client_free(c);
        return;
    }
    c->qlen += (size_t)n;
    s->st.net_in += n;
    c->last_io_ms = srv_loop_ms(s);
    if (c->qlen - c->qpos > (size_t)s->cfg.client_query_buffer_limit) {
        log_msg(LOG_WARNING, "Closing client id=%llu addr=%s that reached max query buffer "
                "length (%zu bytes)", (unsigned long long)c->id, c->addr, c->qlen - c->qpos);
        s->st.qbuf_kills++;
        client_free(c);
        return;
    }
    if (c->flags & (CLIENT_CLOSE_AFTER_REPLY | CLIENT_CLOSE_ASAP)) {
        c->qpos = c->qlen = 0;   /* closing: input is discarded */
        return;
    }
    if (c->flags & CLIENT_BLOCKED) return;   /* buffered until the job is done */
    conn_process_input(c);
    if (c->flags & CLIENT_CLOSE_ASAP) client_free(c);
}

void client_feed(client *c, const char *p, size_t n)
{
    while (n > 0) {
        conn_reserve(c);
        size_t k = c->qcap - c->qlen < n ? c->qcap - c->qlen : n;
        memcpy(c->qbuf + c->qlen, p, k);
        c->qlen += k;
        p += k;
        n -= k;
    }
    c->last_io_ms = srv_loop_ms(c->srv);
    conn_process_input(c);
    if (c->flags & CLIENT_CLOSE_ASAP) client_free(c);
}

void client_block(client *c)
{
    c->flags |= CLIENT_BLOCKED;
}

/* The job is done and its reply appended: send it, then run what the client
 * pipelined behind the blocking command. */
void client_unblock(client *c)
{
    c->flags &= ~CLIENT_BLOCKED;
    client_mark_pending(c);
    client_check_obuf(c);
    conn_process_input(c);
    if (c->flags & CLIENT_CLOSE_ASAP) client_free(c);
}

void client_run_turns(server *s)
{
    /* Only those queued before: a client that runs out of time again goes
     * to the back and waits for the next pass.  The head is taken afresh
     * each time, as a command may free other clients (CLIENT KILL). */
    uint64_t last = s->turn_seq;
    dlist_node *n;
    while ((n = dlist_first(&s->turns)) != NULL && DLIST_ENTRY(n, client, turn)->turn_seq <= last) {
        client *c = DLIST_ENTRY(n, client, turn);
        conn_process_input(c);
        if (c->flags & CLIENT_CLOSE_ASAP) client_free(c);
    }
}

void client_update_limits(client *c)
{
    resp_limits lim;
    conn_limits(c, &lim);
    resp_set_limits(&c->parser, &lim);
}

int client_info_line(const client *c, char *buf, size_t cap)
{
    int64_t now = util_mono_ms();
    char flags[12];
    int nf = 0;
    if (c->flags & CLIENT_PUBSUB) flags[nf++] = 'P';
    if (c->flags & CLIENT_MULTI) flags[nf++] = 'x';
    if (c->flags & CLIENT_REPLICA) flags[nf++] = 'S';
    if (c->flags & CLIENT_MASTER) flags[nf++] = 'M';
    if (c->flags & CLIENT_DIRTY_CAS) flags[nf++] = 'd';
    if (c->flags & CLIENT_CLOSE_AFTER_REPLY) flags[nf++] = 'c';
    if (c->flags & CLIENT_CLOSE_ASAP) flags[nf++] = 'A';
    if (!nf) flags[nf++] = 'N';
    flags[nf] = '\0';
    int fdmask = c->fd >= 0 ? ev_get_mask(c->srv->loop, c->fd) : 0;
    const char *cmdname = c->last ? c->last->fullname : "NULL";
    return snprintf(buf, cap,
             "id=%llu addr=%s laddr=%s fd=%d name=%s age=%lld idle=%lld flags=%s db=%d "
             "sub=%zu psub=%zu ssub=%zu multi=%d qbuf=%zu qbuf-free=%zu argv-mem=0 multi-mem=0 "
             "rbs=%zu rbp=0 obl=0 oll=0 omem=%zu tot-mem=%zu events=%s%s cmd=%s user=%s "
             "redir=-1 resp=%d lib-name=%s lib-ver=%s",
             (unsigned long long)c->id, c->addr, c->laddr, c->fd, c->name ? c->name : "",
             (long long)(now - c->ctime_ms) / 1000, (long long)(now - c->last_io_ms) / 1000,
             flags, c->db, pubsub_client_count(c, PUBSUB_CHANNEL),
             pubsub_client_count(c, PUBSUB_PATTERN), pubsub_client_count(c, PUBSUB_SHARD),
             (c->flags & CLIENT_MULTI) ? c->mq_len : -1, c->qlen - c->qpos,
             c->qcap - c->qlen, c->out.cap, reply_pending(&c->out),
             c->qcap + c->out.cap + sizeof *c, (fdmask & EV_READ) ? "r" : "",
             (fdmask & EV_WRITE) ? "w" : "", cmdname, c->user ? acl_user_name(c->user) : "default", c->resp,
             c->lib_name ? c->lib_name : "", c->lib_ver ? c->lib_ver : "");
}
