/* cmd_server.c -- the server's commands: CONFIG, DEBUG, SHUTDOWN, SAVE,
 * BGSAVE, LASTSAVE, TIME.
 *
 * Loop thread only. */
#include "server.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "engram/mem.h"
#include "engram/util.h"
#include "acl.h"
#include "evict.h"
#include "handlers.h"
#include "log.h"
#include "persist.h"

/* ---- CONFIG ------------------------------------------------------------------ */

/* A setting's current value as a mem_alloc'd string (NULL if unknown). */
static char *config_get_dup(const config *cfg, const char *name)
{
    size_t cap = 256;
    for (;;) {
        char *buf = mem_alloc(cap);
        int rc = config_get(cfg, name, buf, cap);
        if (rc == 0) return buf;
        mem_free(buf);
        if (rc != -2) return NULL;
        cap *= 4;
    }
}

void cmd_config_get(client *c)
{
    size_t nn = 0;
    const char **seen = NULL;
    for (int i = 2; i < c->argc; i++) {
        for (size_t j = 0; config_name_at(j); j++) {
            const char *name = config_name_at(j);
            if (!util_glob_match(c->argv[i], c->argvlen[i], name, strlen(name), 1)) continue;
            int dup = 0;
            for (size_t k = 0; k < nn; k++) dup |= seen[k] == name;
            if (dup) continue;
            seen = mem_realloc(seen, (nn + 1) * sizeof *seen);
            seen[nn++] = name;
        }
    }
    reply_map(&c->out, (long long)nn);
    for (size_t k = 0; k < nn; k++) {
        char *val = config_get_dup(&c->srv->cfg, seen[k]);
        reply_bulk_cstr(&c->out, seen[k]);
        reply_bulk_cstr(&c->out, val ? val : "");
        mem_free(val);
    }
    mem_free(seen);
}

/* Make a changed setting take effect. */
static void config_apply(server *s, const char *name)
{
    if (!strcmp(name, "maxclients")) srv_apply_maxclients(s);
    else if (!strcmp(name, "loglevel")) log_set_level(s->cfg.loglevel);
    if (!strcmp(name, "requirepass")) acl_requirepass(s);
    if (!strcmp(name, "maxmemory-policy")) evict_refresh(s);
    if (!strcmp(name, "proto-max-bulk-len") || !strcmp(name, "requirepass"))
        for (dlist_node *n = dlist_first(&s->clients); n; n = dlist_next(&s->clients, n))
            client_update_limits(DLIST_ENTRY(n, client, node));
}

void cmd_config_set(client *c)
{
    server *s = c->srv;
    char err[512];
    int npairs = (c->argc - 2) / 2;

    if ((c->argc - 2) % 2) {
        reply_err_arity_name(c, "config|set");
        return;
    }
    /* All or nothing, as Redis 7: remember the old values, roll back on the
     * first failure. */
    char **names = mem_calloc((size_t)npairs, sizeof *names);
    char **old = mem_calloc((size_t)npairs, sizeof *old);
    int done = 0, failed = 0;
    for (int i = 0; i < npairs && !failed; i++) {
        names[i] = mem_strndup(c->argv[2 + 2 * i], c->argvlen[2 + 2 * i]);
        for (char *p = names[i]; *p; p++) *p = (char)tolower((unsigned char)*p);
        for (int j = 0; j < i; j++) {
            if (!strcmp(names[j], names[i])) {
                snprintf(err, sizeof err, "ERR CONFIG SET failed (possibly related to argument '%s') - duplicate parameter", names[i]);
                failed = 1;
            }
        }
        if (failed) break;
        old[i] = config_get_dup(&s->cfg, names[i]);
        char *val = mem_strndup(c->argv[3 + 2 * i], c->argvlen[3 + 2 * i]);
        if (strlen(val) != c->argvlen[3 + 2 * i]) {
            snprintf(err, sizeof err, "ERR CONFIG SET failed (possibly related to argument '%s') - "
                     "argument contains a NUL byte", names[i]);
            failed = 1;
        } else if (config_set(&s->cfg, names[i], val, 1, err, sizeof err) < 0) {
            failed = 1;
        }
        mem_free(val);
        if (failed) break;
        done = i + 1;
    }
    if (failed) {
        char ignore[256];
        for (int i = done - 1; i >= 0; i--)
            if (old[i]) config_set(&s->cfg, names[i], old[i], 0, ignore, sizeof ignore);
        reply_errorf(&c->out, "%s%s", strncmp(err, "ERR ", 4) ? "ERR " : "", err);
    } else {
        for (int i = 0; i < npairs; i++) config_apply(s, names[i]);
        reply_ok(&c->out);
    }
    for (int i = 0; i < npairs; i++) {
        mem_free(names[i]);
        mem_free(old[i]);
    }
    mem_free(names);
    mem_free(old);
}

void cmd_config_resetstat(client *c)
{
    memset(&c->srv->st, 0, sizeof c->srv->st);
    for (size_t i = 0; i < command_all_count(); i++) {
        command *k = command_all_at(i);
        k->calls = k->usec = k->rejected = k->failed = 0;
    }
    reply_ok(&c->out);
}

void cmd_config_rewrite(client *c)
{
    char err[512];
    if (config_rewrite(&c->srv->cfg, err, sizeof err) < 0) {
        reply_errorf(&c->out, "ERR %s", err);
        return;
    }
    log_msg(LOG_NOTICE, "CONFIG REWRITE executed with success.");
    reply_ok(&c->out);
}

void cmd_config_help(client *c)
{
    static const char *const lines[] = {
        "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET <pattern>", "    Return parameters matching the glob-like <pattern> and their values.",
        "SET <directive> <value>", "    Set the configuration <directive> to <value>.",
        "RESETSTAT", "    Reset statistics reported by the INFO command.",
        "REWRITE", "    Rewrite the configuration file.",
        "HELP", "    Print this help.", NULL};
    reply_help(c, lines);
}

/* ---- MODULE ------------------------------------------------------------------
 * engram loads no modules; its vector sets answer as Redis's "vectorset"
 * module does, so MODULE LIST names that module (version 1, no path) for
 * the clients that look for it.  LOAD, LOADEX and UNLOAD are refused as a
 * Redis with enable-module-command set to "no" (its default) refuses them. */

void reply_modules(client *c)
{
    /* The two modules whose commands engram answers: Redis 8's vector sets
     * and the search commands (RediSearch 2.6's version number: clients such
     * as redisvl require search >= 20600). */
    static const struct { const char *name; int ver; } mods[] = {{"vectorset", 1},
                                                                  {"search", 20600}};
    reply_array(&c->out, 2);
    for (int i = 0; i < 2; i++) {
        reply_map(&c->out, 4);
        reply_bulk_cstr(&c->out, "name");
        reply_bulk_cstr(&c->out, mods[i].name);
        reply_bulk_cstr(&c->out, "ver");
        reply_int(&c->out, mods[i].ver);
        reply_bulk_cstr(&c->out, "path");
        reply_bulk_cstr(&c->out, "");
        reply_bulk_cstr(&c->out, "args");
        reply_array(&c->out, 0);
    }
}

void cmd_module_list(client *c) { reply_modules(c); }

void cmd_module_load(client *c)
{
    reply_error(&c->out, "ERR MODULE command not allowed. If the enable-module-command option is "
                "set to \"local\", you can run it from a local connection, otherwise you need to "
                "set this option in the configuration file, and then restart the server.");
}

void cmd_module_help(client *c)
{
    static const char *const lines[] = {
        "MODULE <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "LIST", "    Return a list of loaded modules.",
        "LOAD <path> [<arg> ...]",
        "    Load a module library from <path>, passing to it any optional arguments.",
        "LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
        "    Load a module library from <path>, while passing it module configurations and "
        "optional arguments.",
        "UNLOAD <name>", "    Unload a module.",
        "HELP", "    Prints this help.", NULL};
    reply_help(c, lines);
}

/* ---- DEBUG, SHUTDOWN, TIME ---------------------------------------------------- */

void cmd_debug_sleep(client *c)
{
    double secs;
    if (!util_str2d(c->argv[2], c->argvlen[2], &secs) || secs < 0 || secs > 86400) {
        reply_error(&c->out, "ERR value is not a valid float between 0 and 86400");
        return;
    }
    struct timespec ts = {(time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
    reply_ok(&c->out);
}

void cmd_debug_set_active_expire(client *c)
{
    long long v;
    if (!arg_ll(c, 2, &v)) return;
    c->srv->active_expire = v != 0;
    reply_ok(&c->out);
}

/* DEBUG WAL-FAULT write|fsync ENOSPC|EIO, or DEBUG WAL-FAULT off: the next
 * write or fsync of a persistence file fails (tests of the failure path). */
void cmd_debug_wal_fault(client *c)
{
    int err = 0;
    if (c->argc == 4 && arg_is(c, 3, "enospc")) err = ENOSPC;
    else if (c->argc == 4 && arg_is(c, 3, "eio")) err = EIO;
    else if (!(c->argc == 3 && arg_is(c, 2, "off"))) {
        reply_err_syntax(c);
        return;
    }
    const char *what = arg_is(c, 2, "write") ? "write" : arg_is(c, 2, "fsync") ? "fsync" :
                       arg_is(c, 2, "off") ? "off" : "?";
    int rc = persist_debug_fault(c->srv, what, err);
    if (rc == -1) reply_error(&c->out, "ERR persistence not enabled; start with --dir");
    else if (rc < 0) reply_err_syntax(c);
    else reply_ok(&c->out);
}

void cmd_debug_help(client *c)
{
    static const char *const lines[] = {
        "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "SLEEP <seconds>", "    Stop the server for <seconds>. Decimals allowed.",
        "SET-ACTIVE-EXPIRE <0|1>", "    Disable or enable active expiry.",
        "WAL-FAULT <WRITE|FSYNC> <ENOSPC|EIO> | OFF",
        "    Make the next write or fsync of a persistence file fail (for tests).",
        "HELP", "    Print this help.", NULL};
    reply_help(c, lines);
}

void cmd_shutdown(client *c)
{
    int save = 0;
    for (int i = 1; i < c->argc; i++) {
        if (arg_is(c, i, "nosave") || arg_is(c, i, "now") || arg_is(c, i, "force")) continue;
        if (arg_is(c, i, "abort")) {
            reply_error(&c->out, "ERR No shutdown in progress.");
            return;
        }
        if (arg_is(c, i, "save")) {
            save = 1;
            continue;
        }
        reply_err_syntax(c);
        return;
    }
    /* SHUTDOWN SAVE snapshots first; if that fails the server stays up
     * (as Redis: "Errors trying to SHUTDOWN"). */
    if (save) {
        char err[512];
        if (persist_save(c->srv, 0, err, sizeof err) < 0) {
            reply_error(&c->out, err);
            return;
        }
    }
    /* No reply: the connection closes as the server exits, as Redis does;
     * nothing this client pipelined after SHUTDOWN runs. */
    c->srv->shutdown_signal = -1;
    c->flags |= CLIENT_CLOSE_AFTER_REPLY;
}

/* SAVE, BGSAVE, LASTSAVE: snapshots (persist.c). */
void cmd_save(client *c)
{
    char err[512];
    if (persist_save(c->srv, 0, err, sizeof err) < 0) reply_error(&c->out, err);
    else reply_ok(&c->out);
}

void cmd_bgsave(client *c)
{
    char err[512];
    if (c->argc > 2 || (c->argc == 2 && !arg_is(c, 1, "schedule"))) {
        reply_err_syntax(c);
        return;
    }
    if (persist_save(c->srv, 1, err, sizeof err) < 0) reply_error(&c->out, err);
    else reply_simple(&c->out, "Background saving started");
}

void cmd_lastsave(client *c)
{
    reply_int(&c->out, (long long)(persist_last_save_ms(c->srv) / 1000));
}

void cmd_time(client *c)
{
    int64_t us = util_wall_us();
    reply_array(&c->out, 2);
    reply_bulk_ll(&c->out, us / 1000000);
    reply_bulk_ll(&c->out, us % 1000000);
}
