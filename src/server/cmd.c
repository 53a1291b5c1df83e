/* cmd.c -- the command table and dispatch.
 *
 * Commands are data (struct cmd): the cmd_*.c files each export a table, and
 * at start-up they are merged into one array plus an open-addressing index
 * by lower-case name.  Dispatch, COMMAND, INFO commandstats and the command
 * docs all read that one array.
 *
 * cmd_call() applies Redis's order of checks: unknown command, arity,
 * authentication, then MULTI queuing, then execution.  A command refused
 * while a MULTI is open marks the transaction so EXEC aborts.
 *
 * Loop thread only. */
#include "server.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "engram/mem.h"
#include "engram/util.h"
#include "persist.h"

#define CMD_NAME_MAX 32
#define CMD_INDEX_SIZE 512        /* power of two, > 2x the number of commands */

static cmd **cmd_all;
static size_t cmd_n;
static cmd *cmd_index[CMD_INDEX_SIZE];

static uint32_t cmd_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static void cmd_register_table(cmd *t)
{
    for (; t->name; t++) {
        size_t n = strlen(t->name);
        uint32_t h = cmd_hash(t->name, n) & (CMD_INDEX_SIZE - 1);
        while (cmd_index[h]) h = (h + 1) & (CMD_INDEX_SIZE - 1);
        cmd_index[h] = t;
        cmd_all = mem_realloc(cmd_all, (cmd_n + 1) * sizeof *cmd_all);
        cmd_all[cmd_n++] = t;
    }
}

void cmd_init(void)
{
    if (cmd_n) return;
    cmd_register_table(cmd_admin_table);
    cmd_register_table(cmd_kv_table);
    cmd_register_table(cmd_tx_table);
    cmd_register_table(cmd_vec_table);
}

cmd *cmd_lookup(const char *name, size_t len)
{
    char low[CMD_NAME_MAX];
    if (len == 0 || len >= CMD_NAME_MAX) return NULL;
    for (size_t i = 0; i < len; i++) low[i] = (char)tolower((unsigned char)name[i]);
    uint32_t h = cmd_hash(low, len) & (CMD_INDEX_SIZE - 1);
    for (cmd *k; (k = cmd_index[h]) != NULL; h = (h + 1) & (CMD_INDEX_SIZE - 1))
        if (!strncmp(k->name, low, len) && k->name[len] == '\0') return k;
    return NULL;
}

size_t cmd_count(void) { return cmd_n; }
cmd *cmd_at(size_t i) { return i < cmd_n ? cmd_all[i] : NULL; }

static int cmd_arity_ok(const cmd *k, int argc)
{
    return k->arity > 0 ? argc == k->arity : argc >= -k->arity;
}

/* The reply an unknown command gets, as Redis 7 words it. */
static void cmd_reply_unknown(client *c)
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
    reply_errorf(&c->out, "unknown command '%.*s', with args beginning with: %s",
                 (int)(c->argvlen[0] < 128 ? c->argvlen[0] : 128), c->argv[0], args);
}

static void cmd_queue(client *c, cmd *k)
{
    if (c->mq_len == c->mq_cap) {
        c->mq_cap = c->mq_cap ? c->mq_cap * 2 : 8;
        c->mq = mem_realloc(c->mq, (size_t)c->mq_cap * sizeof *c->mq);
    }
    queued_cmd *q = &c->mq[c->mq_len++];
    q->c = k;
    q->argc = c->argc;
    q->argv = mem_alloc((size_t)c->argc * sizeof *q->argv);
    q->argvlen = mem_alloc((size_t)c->argc * sizeof *q->argvlen);
    for (int i = 0; i < c->argc; i++) {
        q->argv[i] = mem_strndup(c->argv[i], c->argvlen[i]);
        q->argvlen[i] = c->argvlen[i];
    }
    reply_simple(&c->out, "QUEUED");
}

void cmd_exec_one(client *c, cmd *k)
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
    c->last_sub = NULL;
    if (s->ps) persist_cmd_begin(s, c);
    k->fn(c);
    if (s->ps) persist_cmd_end(s, c);
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
}

/* While the dataset loads, only commands flagged CMD_LOADING run. */
static int cmd_deny_loading(client *c, cmd *k)
{
    if (!persist_loading(c->srv) || (k->flags & CMD_LOADING)) return 0;
    reply_error(&c->out, "LOADING engram is loading the dataset in memory");
    if (c->flags & CLIENT_MULTI) c->flags |= CLIENT_DIRTY_EXEC;
    return 1;
}

void cmd_call(client *c)
{
    cmd *k = cmd_lookup(c->argv[0], c->argvlen[0]);
    int in_multi = (c->flags & CLIENT_MULTI) != 0;

    if (!k) {
        cmd_reply_unknown(c);
        c->srv->st.errors++;
        if (in_multi) c->flags |= CLIENT_DIRTY_EXEC;
        return;
    }
    if (!cmd_arity_ok(k, c->argc)) {
        reply_err_arity_name(c, k->name);
        k->rejected++;
        c->srv->st.errors++;
        if (in_multi) c->flags |= CLIENT_DIRTY_EXEC;
        return;
    }
    if (k->subs && c->argc >= 2 && !cmd_find_sub(c, k)) {
        k->rejected++;
        c->srv->st.errors++;
        if (in_multi) c->flags |= CLIENT_DIRTY_EXEC;
        return;
    }
    if (client_must_auth(c) && !(k->flags & CMD_NOAUTH)) {
        reply_error(&c->out, "NOAUTH Authentication required.");
        k->rejected++;
        c->srv->st.errors++;
        if (in_multi) c->flags |= CLIENT_DIRTY_EXEC;
        return;
    }
    if (c->srv->ps && (cmd_deny_loading(c, k) || persist_deny(c->srv, c, k))) {
        k->rejected++;
        c->srv->st.errors++;
        return;
    }
    if (in_multi && !(k->flags & CMD_NOMULTI)) {
        cmd_queue(c, k);
        return;
    }
    cmd_exec_one(c, k);
}

const subcmd *cmd_find_sub(client *c, const cmd *k)
{
    char full[64], up[32];
    if (c->argc < 2) {   /* arity -2 was checked already; defensive */
        reply_err_arity_name(c, k->name);
        return NULL;
    }
    for (const subcmd *t = k->subs; t->name; t++) {
        if (!util_eq_nocase(c->argv[1], c->argvlen[1], t->name)) continue;
        if (t->arity > 0 ? c->argc != t->arity : c->argc < -t->arity) {
            snprintf(full, sizeof full, "%s|%s", k->name, t->name);
            reply_err_arity_name(c, full);
            return NULL;
        }
        return t;
    }
    snprintf(up, sizeof up, "%s", k->name);
    for (char *p = up; *p; p++) *p = (char)toupper((unsigned char)*p);
    reply_errorf(&c->out, "unknown subcommand '%.*s'. Try %s HELP.",
                 (int)(c->argvlen[1] < 128 ? c->argvlen[1] : 128), c->argv[1], up);
    return NULL;
}

/* ---- helpers shared by handlers ------------------------------------------ */

void reply_err_arity_name(client *c, const char *name)
{
    reply_errorf(&c->out, "wrong number of arguments for '%s' command", name);
}

void reply_err_arity(client *c)
{
    reply_err_arity_name(c, c->cur ? c->cur->name : "unknown");
}

void reply_err_syntax(client *c) { reply_error(&c->out, "ERR syntax error"); }
void reply_err_int(client *c) { reply_error(&c->out, "ERR value is not an integer or out of range"); }

int arg_ll(client *c, int i, long long *out)
{
    if (util_str2ll(c->argv[i], c->argvlen[i], out)) return 1;
    reply_err_int(c);
    return 0;
}

int arg_ll_range(client *c, int i, long long min, long long max, long long *out, const char *errmsg)
{
    long long v;
    if (!util_str2ll(c->argv[i], c->argvlen[i], &v)) {
        reply_err_int(c);
        return 0;
    }
    if (v < min || v > max) {
        if (errmsg) reply_error(&c->out, errmsg);
        else reply_errorf(&c->out, "value is out of range, must be between %lld and %lld", min, max);
        return 0;
    }
    *out = v;
    return 1;
}

int arg_is(const client *c, int i, const char *word)
{
    return i < c->argc && util_eq_nocase(c->argv[i], c->argvlen[i], word);
}
