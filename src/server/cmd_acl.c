/* cmd_acl.c -- the ACL command: SETUSER, GETUSER, DELUSER, LIST, USERS,
 * WHOAMI, CAT, LOG, GENPASS, DRYRUN, SAVE, LOAD, HELP, with Redis 7's
 * replies and error texts (users, rules and checks are acl.c's).
 *
 * Loop thread only. */
#include "server.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "engram/mem.h"
#include "engram/strbuf.h"
#include "engram/util.h"
#include "acl_private.h"
#include "handlers.h"

static int name_ok(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] == ' ' || p[i] == 0) return 0;
    return 1;
}

/* ACL SETUSER name rule ...: all rules or none. */
void cmd_acl_setuser(client *c)
{
    server *s = c->srv;
    const char *name = c->argv[2];
    size_t nlen = c->argvlen[2];
    if (!name_ok(name, nlen)) {
        reply_error(&c->out, "ERR Usernames can't contain spaces or null characters");
        return;
    }
    acl_user *old = acl_find(s, name, nlen);
    acl_user *u;
    if (old) {
        u = acl_user_dup(old);
    } else {
        u = acl_user_new(name, nlen);
    }
    for (int i = 3; i < c->argc; i++) {
        char why[256];
        if (acl_apply(u, c->argv[i], c->argvlen[i], why, sizeof why) < 0) {
            reply_errorf(&c->out, "ERR Error in ACL SETUSER modifier '%.*s': %s",
                         (int)(c->argvlen[i] < 128 ? c->argvlen[i] : 128), c->argv[i], why);
            acl_user_free(u);
            return;
        }
    }
    acl_add_user(s, u);
    reply_ok(&c->out);
}

void cmd_acl_getuser(client *c)
{
    acl_user *u = acl_find(c->srv, c->argv[2], c->argvlen[2]);
    reply *r = &c->out;
    if (!u) {
        reply_null(r);
        return;
    }
    reply_map(r, 6);
    reply_bulk_cstr(r, "flags");
    reply_set(r, 1 + u->nopass + (u->sanitize != 0));
    reply_bulk_cstr(r, u->on ? "on" : "off");
    if (u->nopass) reply_bulk_cstr(r, "nopass");
    if (u->sanitize) reply_bulk_cstr(r, u->sanitize == 1 ? "sanitize-payload" :
                                                            "skip-sanitize-payload");
    reply_bulk_cstr(r, "passwords");
    reply_array(r, u->npw);
    for (int i = 0; i < u->npw; i++) {
        char h[65];
        acl_password_hex(u, i, h);
        reply_bulk_cstr(r, h);
    }
    reply_bulk_cstr(r, "commands");
    reply_bulk_cstr(r, u->cmdrules);
    strbuf b = {0};
    acl_describe_keys(u, &b);
    reply_bulk_cstr(r, "keys");
    reply_bulk(r, b.p ? b.p : "", b.len);
    strbuf_free(&b);
    acl_describe_channels(u, &b);
    reply_bulk_cstr(r, "channels");
    reply_bulk(r, b.p ? b.p : "", b.len);
    strbuf_free(&b);
    reply_bulk_cstr(r, "selectors");
    reply_array(r, 0);
}

void cmd_acl_deluser(client *c)
{
    for (int i = 2; i < c->argc; i++)
        if (util_eq_nocase(c->argv[i], c->argvlen[i], "default") && c->argvlen[i] == 7 &&
            !memcmp(c->argv[i], "default", 7)) {
            reply_error(&c->out, "ERR The 'default' user cannot be removed");
            return;
        }
    long long n = 0;
    for (int i = 2; i < c->argc; i++) n += acl_delete(c->srv, c->argv[i], c->argvlen[i]);
    reply_int(&c->out, n);
}

void cmd_acl_list(client *c)
{
    int n;
    acl_user **v = acl_sorted(c->srv, &n);
    reply_array(&c->out, n);
    for (int i = 0; i < n; i++) {
        strbuf b = {0};
        acl_describe(v[i], &b);
        reply_bulk(&c->out, b.p, b.len);
        strbuf_free(&b);
    }
    mem_free(v);
}

void cmd_acl_users(client *c)
{
    int n;
    acl_user **v = acl_sorted(c->srv, &n);
    reply_array(&c->out, n);
    for (int i = 0; i < n; i++) reply_bulk_cstr(&c->out, acl_user_name(v[i]));
    mem_free(v);
}

void cmd_acl_whoami(client *c)
{
    reply_bulk_cstr(&c->out, c->user ? acl_user_name(c->user) : "default");
}

/* ACL CAT [category]: the categories, or the commands in one. */
void cmd_acl_cat(client *c)
{
    if (c->argc > 3) {
        reply_err_syntax(c);
        return;
    }
    if (c->argc == 2) {
        long long n = 0;
        size_t h = reply_defer(&c->out);
        for (unsigned b = 1; b; b <<= 1) {
            const char *name = command_category_name(b);
            if (!name) continue;
            reply_bulk_cstr(&c->out, name);
            n++;
        }
        reply_defer_array(&c->out, h, n);
        return;
    }
    int all;
    unsigned cat = acl_category(c->argv[2], c->argvlen[2], &all);
    if (!cat || all) {
        reply_errorf(&c->out, "ERR Unknown category '%.*s'",
                     (int)(c->argvlen[2] < 128 ? c->argvlen[2] : 128), c->argv[2]);
        return;
    }
    long long n = 0;
    size_t h = reply_defer(&c->out);
    for (size_t i = 0; i < command_all_count(); i++) {
        command *k = command_all_at(i);
        if (!(k->categories & cat) || (k->subs && !k->fn)) continue;
        reply_bulk_cstr(&c->out, k->fullname);
        n++;
    }
    reply_defer_array(&c->out, h, n);
}

/* ACL GENPASS [bits]: random hex from the kernel's generator. */
void cmd_acl_genpass(client *c)
{
    long long bits = 256;
    if (c->argc > 3) {
        reply_err_syntax(c);
        return;
    }
    if (c->argc == 3 && (!util_str2ll(c->argv[2], c->argvlen[2], &bits) || bits <= 0 ||
                         bits > 4096)) {
        reply_error(&c->out, "ERR ACL GENPASS argument must be the number of bits for the output "
                    "password, a positive number up to 4096");
        return;
    }
    size_t chars = (size_t)((bits + 3) / 4);
    unsigned char raw[512];
    size_t need = (chars + 1) / 2, got = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    while (fd >= 0 && got < need) {
        ssize_t r = read(fd, raw + got, need - got);
        if (r <= 0) break;
        got += (size_t)r;
    }
    if (fd >= 0) close(fd);
    if (got < need) {
        reply_error(&c->out, "ERR could not read random bytes");
        return;
    }
    static const char hx[] = "0123456789abcdef";
    char out[1025];
    for (size_t i = 0; i < chars; i++) out[i] = hx[(raw[i / 2] >> ((i % 2) ? 0 : 4)) & 15];
    reply_bulk(&c->out, out, chars);
}

/* ACL DRYRUN user command [arg ...] */
void cmd_acl_dryrun(client *c)
{
    acl_user *u = acl_find(c->srv, c->argv[2], c->argvlen[2]);
    if (!u) {
        reply_errorf(&c->out, "ERR User '%.*s' not found",
                     (int)(c->argvlen[2] < 128 ? c->argvlen[2] : 128), c->argv[2]);
        return;
    }
    command *k = command_lookup_original(c->argv[3], c->argvlen[3]);
    if (k && k->subs && c->argc > 4) {
        command *sub = command_lookup_sub(k, c->argv[4], c->argvlen[4]);
        if (sub) k = sub;
    }
    if (!k) {
        reply_errorf(&c->out, "ERR Command '%.*s' not found",
                     (int)(c->argvlen[3] < 128 ? c->argvlen[3] : 128), c->argv[3]);
        return;
    }
    int argc = c->argc - 3;
    if (!command_arity_ok(k, argc)) {
        reply_errorf(&c->out, "ERR wrong number of arguments for '%s' command", k->fullname);
        return;
    }
    int reason = 0, pos = 0;
    if (acl_check_args(u, k, argc, c->argv + 3, c->argvlen + 3, &reason, &pos)) {
        reply_ok(&c->out);
        return;
    }
    char msg[512];
    if (reason == ACL_DENIED_CMD)
        snprintf(msg, sizeof msg, "This user has no permissions to run the '%s' command",
                 k->fullname);
    else
        snprintf(msg, sizeof msg, "This user has no permissions to access the '%.*s' %s",
                 (int)(c->argvlen[3 + pos] < 256 ? c->argvlen[3 + pos] : 256), c->argv[3 + pos],
                 reason == ACL_DENIED_KEY ? "key" : "channel");
    reply_bulk_cstr(&c->out, msg);
}

/* ACL LOG [count | RESET] */
void cmd_acl_log(client *c)
{
    acl_state *a = c->srv->acl;
    long long count = 10;
    if (c->argc > 3) {
        reply_err_syntax(c);
        return;
    }
    if (c->argc == 3) {
        if (arg_is(c, 2, "reset")) {
            acl_log_reset(c->srv);
            reply_ok(&c->out);
            return;
        }
        if (!util_str2ll(c->argv[2], c->argvlen[2], &count)) {
            reply_err_int(c);
            return;
        }
        if (count < 0) count = 0;           /* as Redis 7.0: an empty list */
    }
    long long n = 0;
    for (acl_log_entry *e = a->log; e && n < count; e = e->next) n++;
    reply *r = &c->out;
    reply_array(r, n);
    int64_t now = util_wall_ms();
    acl_log_entry *e = a->log;
    for (long long i = 0; i < n; i++, e = e->next) {
        reply_map(r, 10);
        reply_bulk_cstr(r, "count");
        reply_int(r, e->count);
        reply_bulk_cstr(r, "reason");
        reply_bulk_cstr(r, e->reason);
        reply_bulk_cstr(r, "context");
        reply_bulk_cstr(r, e->context);
        reply_bulk_cstr(r, "object");
        reply_bulk(r, e->object, e->olen);
        reply_bulk_cstr(r, "username");
        reply_bulk(r, e->username, e->ulen);
        reply_bulk_cstr(r, "age-seconds");
        reply_double(r, (double)(now - e->created_ms) / 1000.0);
        reply_bulk_cstr(r, "client-info");
        reply_bulk_cstr(r, e->cinfo);
        reply_bulk_cstr(r, "entry-id");
        reply_int(r, e->id);
        reply_bulk_cstr(r, "timestamp-created");
        reply_int(r, e->created_ms);
        reply_bulk_cstr(r, "timestamp-last-updated");
        reply_int(r, e->updated_ms);
    }
}

static const char NO_FILE[] = "ERR This Redis instance is not configured to use an ACL file. You "
                              "may want to specify users via the ACL SETUSER command and then "
                              "issue a CONFIG REWRITE (assuming you have a Redis configuration "
                              "file set) in order to store users in the Redis configuration.";

void cmd_acl_save(client *c)
{
    char err[512];
    if (!c->srv->cfg.aclfile[0]) {
        reply_error(&c->out, NO_FILE);
        return;
    }
    if (acl_save_file(c->srv, err, sizeof err) < 0) {
        reply_errorf(&c->out, "ERR There was an error trying to save the ACLs. Please check the "
                     "server logs for more information (%s)", err);
        return;
    }
    reply_ok(&c->out);
}

void cmd_acl_load(client *c)
{
    char err[512];
    if (!c->srv->cfg.aclfile[0]) {
        reply_error(&c->out, NO_FILE);
        return;
    }
    acl_user **v;
    int n;
    if (acl_parse_file(c->srv, c->srv->cfg.aclfile, &v, &n, err, sizeof err) < 0) {
        reply_errorf(&c->out, "ERR %s", err);
        return;
    }
    acl_install(c->srv, v, n);
    reply_ok(&c->out);
}

void cmd_acl_help(client *c)
{
    static const char *const lines[] = {
        "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CAT [<category>]",
        "    List all commands that belong to <category>, or all command categories",
        "    when no category is specified.",
        "DELUSER <username> [<username> ...]",
        "    Delete a list of users.",
        "DRYRUN <username> <command> [<arg> ...]",
        "    Returns whether the user can execute the given command without executing the command.",
        "GETUSER <username>",
        "    Get the user's details.",
        "GENPASS [<bits>]",
        "    Generate a secure 256-bit user password. The optional `bits` argument can",
        "    be used to specify a different size.",
        "LIST",
        "    Show users details in config file format.",
        "LOAD",
        "    Reload users from the ACL file.",
        "LOG [<count> | RESET]",
        "    Show the ACL log entries.",
        "SAVE",
        "    Save the current config to the ACL file.",
        "SETUSER <username> <attribute> [<attribute> ...]",
        "    Create or modify a user with the specified attributes.",
        "USERS",
        "    List all the registered usernames.",
        "WHOAMI",
        "    Return the current connection username.",
        "HELP",
        "    Prints this help.",
        NULL};
    reply_help(c, lines);
}
