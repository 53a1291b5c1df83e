/* dispatch.c -- from a parsed request to a reply: find the command in the
 * table, decide whether it may run now, then queue it (MULTI), run it, or
 * refuse it.  Redis's processCommand, and like it the one place that
 * decides; the decision reads only the command table and the state the
 * other modules report.
 *
 * The checks, in Redis's order; the first that fails refuses the command:
 *   1. the command and its subcommand exist, and the arity fits;
 *   2. authentication, then the user's ACL permissions: the command, its
 *      keys, its channels (unless the command is CMD_NO_AUTH; acl.h; our
 *      master's stream is obeyed whatever they say);
 *   3. CMD_NO_MULTI commands are refused inside MULTI;
 *   4. over maxmemory, a command that may grow memory -- CMD_DENYOOM, an
 *      EXEC that queued one, or anything MULTI would queue (queuing grows
 *      memory too; Redis's rule) -- first evicts keys by the policy
 *      (evict_room, evict.h), and is refused with -OOM if that cannot
 *      bring used memory under the limit (always under noeviction).  Not
 *      while loading (step 8 answers then), never for our master's stream,
 *      nor for writes a read-only replica refuses anyway (step 5: a
 *      replica leaves its memory to its master, Redis's
 *      repl-ignore-maxmemory).  Reads, deletes and admin commands (not
 *      CMD_DENYOOM) run whatever the memory;
 *   5. writes are refused while the write-ahead log is failed (the log
 *      reports its state: persist_write_error; not our master's), and on a
 *      primary short of min-replicas-to-write good replicas (NOREPLICAS), and
 *      on a read-only replica (READONLY; repl.h); EXEC counts as a write if
 *      it queued one;
 *   6. a RESP2 client with subscriptions runs only CMD_SUBSCRIBED commands;
 *   7. a replica whose link is down with replica-serve-stale-data no runs
 *      only CMD_STALE commands (MASTERDOWN);
 *   8. while the dataset loads, only CMD_LOADING commands run.
 * Then, inside MULTI, anything but CMD_NOQUEUE is queued; otherwise it runs.
 *
 * Refusing goes through dispatch_reject alone (Redis's rejectCommand): it
 * counts the rejection, replies the error, and inside MULTI marks the
 * transaction so EXEC aborts -- or, when the refused command is EXEC
 * itself, discards the transaction with EXECABORT naming the reason.
 *
 * Deferred replies (deferred.h): while a client waits for replies computed
 * off the loop, its next request may be handled only if its reply can
 * queue behind theirs -- a CMD_DEFERRED command that will run (not be
 * refused, not be queued by MULTI), and only up to the in-flight limit.
 * Anything else, a refusal included, waits unparsed in the query buffer
 * (DISPATCH_WAIT) until they are answered, so replies keep request order.
 *
 * Loop thread only. */
#include "server.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "engram/util.h"
#include "acl.h"
#include "deferred.h"
#include "evict.h"
#include "handlers.h"
#include "persist.h"
#include "pubsub.h"
#include "repl.h"

/* Why a command may not run now, as its error reply (no leading '-'). */
typedef struct refusal {
    char text[320];
} refusal;

static int refuse(refusal *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int refuse(refusal *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->text, sizeof r->text, fmt, ap);
    va_end(ap);
    return 0;
}

/* Redis 7's text for an unknown command: the name and the first arguments,
 * each quoted, at most 128 bytes of them. */
static int refuse_unknown(client *c, refusal *r)
{
    char args[160];
    size_t n = 0;
    args[0] = '\0';
    for (int i = 1; i < c->argc && n < 128; i++) {
        int w = snprintf(args + n, sizeof args - n, "'%.*s' ",
                         (int)(c->argvlen[i] < 128 - n ? c->argvlen[i] : 128 - n), c->argv[i]);
        if (w < 0) break;
        n += (size_t)w;
        if (n >= sizeof args) n = sizeof args - 1;
    }
    return refuse(r, "ERR unknown command '%.*s', with args beginning with: %s",
                  (int)(c->argvlen[0] < 128 ? c->argvlen[0] : 128), c->argv[0], args);
}

/* Step 1: the command (a container's subcommand when it has one) into *out,
 * or NULL when the name itself is unknown.  Returns 1 when it exists and
 * its arity fits. */
static int dispatch_find(client *c, command **out, refusal *r)
{
    command *k = command_lookup(c->argv[0], c->argvlen[0]);
    *out = k;
    if (!k) return refuse_unknown(c, r);
    if (k->subs && (c->argc >= 2 || !k->fn)) {
        command *sub = c->argc >= 2 ? command_lookup_sub(k, c->argv[1], c->argvlen[1]) : NULL;
        if (!sub && c->argc >= 2) {
            char up[32];
            snprintf(up, sizeof up, "%s", k->name);
            for (char *p = up; *p; p++) *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
            return refuse(r, "ERR unknown subcommand '%.*s'. Try %s HELP.",
                          (int)(c->argvlen[1] < 128 ? c->argvlen[1] : 128), c->argv[1], up);
        }
        if (sub) *out = k = sub;
    }
    if (!command_arity_ok(k, c->argc))
        return refuse(r, "ERR wrong number of arguments for '%s' command", k->fullname);
    return 1;
}

/* Step 4: 1 when k may run as far as memory goes (keys evicted if need be). */
static int dispatch_memory_ok(client *c, const command *k, int in_multi)
{
    server *s = c->srv;
    if (!s->cfg.maxmemory) return 1;        /* the common case: one test */
    int grows = (k->flags & CMD_DENYOOM) ||
                (k->fn == cmd_exec ? in_multi && (c->mflags & CMD_DENYOOM)
                                   : in_multi && !(k->flags & CMD_NOQUEUE));
    if (!grows || persist_loading(s) || (c->flags & CLIENT_MASTER) || repl_refuses_writes(s, c))
        return 1;
    return evict_room(s, c);
}

/* Steps 2 to 8 for the command k found by step 1. */
static int dispatch_allowed(client *c, const command *k, refusal *r)
{
    server *s = c->srv;
    int in_multi = (c->flags & CLIENT_MULTI) != 0;
    if (client_must_auth(c) && !(k->flags & CMD_NO_AUTH))
        return refuse(r, "NOAUTH Authentication required.");
    /* our master's stream is obeyed whatever the default user may run */
    if (!(k->flags & CMD_NO_AUTH) && !(c->flags & CLIENT_MASTER) &&
        !acl_check(c, k, r->text, sizeof r->text))
        return 0;
    if (in_multi && (k->flags & CMD_NO_MULTI))
        return refuse(r, "ERR Command not allowed inside a transaction");
    if (!dispatch_memory_ok(c, k, in_multi))
        return refuse(r, "OOM command not allowed when used memory > 'maxmemory'.");
    int writes = (k->flags & CMD_WRITE) || (k->fn == cmd_exec && in_multi && (c->mflags & CMD_WRITE));
    /* our master's stream is applied whatever the log's state (memory must
     * follow it; the recovery snapshot writes it out) */
    const char *failed = writes && !(c->flags & CLIENT_MASTER) ? persist_write_error(s) : NULL;
    if (failed)
        return refuse(r, "MISCONF Errors writing to the write-ahead log (%s). Writes are refused "
                      "until a snapshot succeeds; see INFO persistence.", failed);
    if (writes && repl_too_few_replicas(s))
        return refuse(r, "NOREPLICAS Not enough good replicas to write.");
    if (writes && repl_refuses_writes(s, c))
        return refuse(r, "READONLY You can't write against a read only replica.");
    if ((c->flags & CLIENT_PUBSUB) && c->resp == 2 && !(k->flags & CMD_SUBSCRIBED))
        return refuse(r, "ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / "
                      "QUIT / RESET are allowed in this context", k->fullname);
    if (!(k->flags & CMD_STALE) && repl_stale(s))
        return refuse(r, "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set "
                      "to 'no'.");
    if (persist_loading(s) && !(k->flags & CMD_LOADING))
        return refuse(r, "LOADING engram is loading the dataset in memory");
    return 1;
}

/* The one way a command is refused (see the top). */
static void dispatch_reject(client *c, command *k, const refusal *r)
{
    c->srv->st.errors++;
    if (k) k->rejected++;
    if (!(c->flags & CLIENT_MULTI)) {
        reply_error(&c->out, r->text);
    } else if (k && k->fn == cmd_exec) {
        reply_errorf(&c->out, "EXECABORT Transaction discarded because of: %s", r->text);
        multi_discard(c);
    } else {
        c->flags |= CLIENT_DIRTY_EXEC;
        reply_error(&c->out, r->text);
    }
}

int dispatch_command(client *c)
{
    command *k;
    refusal r;
    int ok = dispatch_find(c, &k, &r) && dispatch_allowed(c, k, &r);
    int queue = ok && (c->flags & CLIENT_MULTI) && !(k->flags & CMD_NOQUEUE);
    if (deferred_busy(c) && !(ok && !queue && (k->flags & CMD_DEFERRED) && deferred_room(c)))
        return DISPATCH_WAIT;
    if (!ok) dispatch_reject(c, k, &r);
    else if (queue) multi_queue(c, k);
    else dispatch_exec(c, k);
    return DISPATCH_DONE;
}

void dispatch_exec(client *c, command *k)
{
    server *s = c->srv;
    size_t before = c->out.len;
    /* One clock read per command: a command starts when the previous one
     * ended (or when the loop woke up), so its "now" and the start of its
     * duration come for free, and the read at its end serves the next one.
     * Clock reads were ~6% of a pipelined GET's cost with two per command. */
    int64_t t0 = s->clock_us;

    s->cmd_time_ms = t0 / 1000;
    c->cur = k;
    c->last = k;            /* CLIENT LIST shows the running command */
    persist_cmd_begin(s, c);
    k->fn(c);
    persist_cmd_end(s, c);
    c->cur = NULL;
    k->calls++;
    s->clock_us = util_wall_us();
    int64_t dt = s->clock_us - t0;
    k->usec += dt > 0 ? dt : 0;         /* a wall-clock step back counts as 0 */
    s->st.cmds++;
    if (c->out.len > before && c->out.data[before] == '-') {
        k->failed++;
        s->st.errors++;
    }
    pubsub_after_command(c);     /* messages for c wait for its reply (pubsub.h) */
}
