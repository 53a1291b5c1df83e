/* cmd_conn.c -- the connection's commands: PING, ECHO, QUIT, RESET, HELLO,
 * AUTH, SELECT and the CLIENT family.
 *
 * Loop thread only. */
#include "server.h"
#include "repl.h"

#include <stdio.h>
#include <string.h>

#include "engram/mem.h"
#include "engram/strbuf.h"
#include "engram/util.h"
#include "acl.h"
#include "handlers.h"
#include "pubsub.h"

/* ---- connection ------------------------------------------------------------ */

void cmd_ping(client *c)
{
    if (c->argc > 2) {
        reply_err_arity(c);
        return;
    }
    if ((c->flags & CLIENT_PUBSUB) && c->resp == 2) {
        /* Subscribed, RESP2: a reply a client reading messages can tell
         * from them, ["pong", argument or ""], as Redis. */
        reply_array(&c->out, 2);
        reply_bulk(&c->out, "pong", 4);
        if (c->argc == 2) reply_bulk(&c->out, c->argv[1], c->argvlen[1]);
        else reply_bulk(&c->out, "", 0);
        return;
    }
    if (c->argc == 2) reply_bulk(&c->out, c->argv[1], c->argvlen[1]);
    else reply_simple(&c->out, "PONG");
}

void cmd_echo(client *c) { reply_bulk(&c->out, c->argv[1], c->argvlen[1]); }

void cmd_quit(client *c)
{
    reply_ok(&c->out);
    client_close_after_reply(c);
}

/* The user (user, pass) opens -- the default user when user is NULL --
 * or NULL (a failed attempt is in ACL LOG). */
static acl_user *auth_check(client *c, const char *user, size_t ulen, const char *pass, size_t plen)
{
    if (!user) user = "default", ulen = 7;
    return acl_authenticate(c, user, ulen, pass, plen);
}

static void auth_granted(client *c, acl_user *u)
{
    c->user = u;
    c->flags |= CLIENT_AUTHED;
    client_update_limits(c);
}

void cmd_auth(client *c)
{
    if (c->argc > 3) {
        reply_err_syntax(c);
        return;
    }
    if (c->argc == 2 && acl_user_open(acl_default_user(c->srv))) {
        reply_error(&c->out, "ERR AUTH <password> called without any password configured for "
                    "the default user. Are you sure your configuration is correct?");
        return;
    }
    acl_user *u = c->argc == 2 ? auth_check(c, NULL, 0, c->argv[1], c->argvlen[1])
                               : auth_check(c, c->argv[1], c->argvlen[1], c->argv[2], c->argvlen[2]);
    if (!u) {
        reply_error(&c->out, "WRONGPASS invalid username-password pair or user is disabled.");
        return;
    }
    auth_granted(c, u);
    reply_ok(&c->out);
}

/* Client names: printable ASCII without spaces, as Redis requires. */
static int name_valid(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] < '!' || p[i] > '~') return 0;
    return 1;
}

static int client_setname(client *c, const char *p, size_t n)
{
    if (!name_valid(p, n)) {
        reply_error(&c->out, "ERR Client names cannot contain spaces, newlines or special characters.");
        return 0;
    }
    mem_free(c->name);
    c->name = n ? mem_strndup(p, n) : NULL;
    return 1;
}

void cmd_hello(client *c)
{
    long long ver = 0;
    int j = 1;
    const char *user = NULL, *pass = NULL, *name = NULL;
    size_t ulen = 0, plen = 0, nlen = 0;

    if (c->argc >= 2) {
        if (!util_str2ll(c->argv[1], c->argvlen[1], &ver)) {
            reply_error(&c->out, "ERR Protocol version is not an integer or out of range");
            return;
        }
        if (ver < 2 || ver > 3) {
            reply_error(&c->out, "NOPROTO unsupported protocol version");
            return;
        }
        j = 2;
    }
    for (; j < c->argc; j++) {
        int more = c->argc - 1 - j;
        if (arg_is(c, j, "auth") && more >= 2) {
            user = c->argv[j + 1], ulen = c->argvlen[j + 1];
            pass = c->argv[j + 2], plen = c->argvlen[j + 2];
            j += 2;
        } else if (arg_is(c, j, "setname") && more >= 1) {
            name = c->argv[j + 1], nlen = c->argvlen[j + 1];
            j++;
        } else {
            reply_errorf(&c->out, "Syntax error in HELLO option '%.*s'",
                         (int)(c->argvlen[j] < 128 ? c->argvlen[j] : 128), c->argv[j]);
            return;
        }
    }
    if (user) {
        acl_user *u = auth_check(c, user, ulen, pass, plen);
        if (!u) {
            reply_error(&c->out, "WRONGPASS invalid username-password pair or user is disabled.");
            return;
        }
        auth_granted(c, u);
    }
    if (client_must_auth(c)) {
        reply_error(&c->out, "NOAUTH HELLO must be called with the client already authenticated, "
                    "otherwise the HELLO AUTH <user> <pass> option can be used to "
                    "authenticate the client and select the RESP protocol version at the same time");
        return;
    }
    if (name && !client_setname(c, name, nlen)) return;
    if (ver) {
        c->resp = (int)ver;
        c->out.proto = (int)ver;
    }
    reply_map(&c->out, 7);
    reply_bulk_cstr(&c->out, "server");
    reply_bulk_cstr(&c->out, "engram");
    reply_bulk_cstr(&c->out, "version");
    reply_bulk_cstr(&c->out, ENGRAM_REDIS_COMPAT);
    reply_bulk_cstr(&c->out, "proto");
    reply_int(&c->out, c->resp);
    reply_bulk_cstr(&c->out, "id");
    reply_int(&c->out, (long long)c->id);
    reply_bulk_cstr(&c->out, "mode");
    reply_bulk_cstr(&c->out, "standalone");
    reply_bulk_cstr(&c->out, "role");
    reply_bulk_cstr(&c->out, "master");
    reply_bulk_cstr(&c->out, "modules");
    reply_modules(c);
}

void cmd_select(client *c)
{
    long long db;
    if (!util_str2ll(c->argv[1], c->argvlen[1], &db)) {
        reply_err_int(c);
        return;
    }
    if (db < 0 || db >= c->srv->ndbs) {
        reply_error(&c->out, "ERR DB index is out of range");
        return;
    }
    c->db = (int)db;
    reply_ok(&c->out);
}

void cmd_reset(client *c)
{
    multi_discard(c);
    pubsub_client_reset(c);
    mem_free(c->name);
    c->name = NULL;
    c->db = 0;
    c->resp = 2;
    c->out.proto = 2;
    c->flags &= ~CLIENT_AUTHED;
    c->user = acl_default_user(c->srv);        /* back to the default user, as Redis */
    if (acl_user_open(c->user)) c->flags |= CLIENT_AUTHED;
    client_update_limits(c);
    reply_simple(&c->out, "RESET");
}

/* ---- CLIENT ------------------------------------------------------------------- */

void cmd_client_id(client *c) { reply_int(&c->out, (long long)c->id); }

void cmd_client_getname(client *c)
{
    if (c->name) reply_bulk_cstr(&c->out, c->name);
    else reply_null(&c->out);
}

void cmd_client_setname(client *c)
{
    if (client_setname(c, c->argv[2], c->argvlen[2])) reply_ok(&c->out);
}

void cmd_client_setinfo(client *c)
{
    char **slot;
    if (arg_is(c, 2, "lib-name")) slot = &c->lib_name;
    else if (arg_is(c, 2, "lib-ver")) slot = &c->lib_ver;
    else {
        reply_errorf(&c->out, "Unrecognized option '%.*s'",
                     (int)(c->argvlen[2] < 128 ? c->argvlen[2] : 128), c->argv[2]);
        return;
    }
    if (!name_valid(c->argv[3], c->argvlen[3])) {
        reply_errorf(&c->out, "%s cannot contain spaces, newlines or special characters.",
                     slot == &c->lib_name ? "lib-name" : "lib-ver");
        return;
    }
    mem_free(*slot);
    *slot = c->argvlen[3] ? mem_strndup(c->argv[3], c->argvlen[3]) : NULL;
    reply_ok(&c->out);
}

/* Append o's CLIENT LIST line and a newline to b, however long it is. */
static void client_line(strbuf *b, const client *o)
{
    char line[1024];
    int n = client_info_line(o, line, sizeof line);
    if (n < (int)sizeof line) {
        strbuf_printf(b, "%s\n", line);
        return;
    }
    char *big = mem_alloc((size_t)n + 1);
    client_info_line(o, big, (size_t)n + 1);
    strbuf_printf(b, "%s\n", big);
    mem_free(big);
}

/* Redis's client types, in getClientType's order: our master, a replica
 * of ours, a client with subscriptions, the rest. */
enum { CLIENT_TYPE_ANY = -1, CLIENT_TYPE_NORMAL, CLIENT_TYPE_PUBSUB, CLIENT_TYPE_REPLICA,
       CLIENT_TYPE_MASTER };

static int client_type(const client *o)
{
    int kind = repl_client_kind(o);
    if (kind == 2) return CLIENT_TYPE_MASTER;
    if (kind == 1) return CLIENT_TYPE_REPLICA;
    return (o->flags & CLIENT_PUBSUB) ? CLIENT_TYPE_PUBSUB : CLIENT_TYPE_NORMAL;
}

/* The type named by argv[i], or -2 after replying Redis's error. */
static int client_type_arg(client *c, int i)
{
    if (arg_is(c, i, "normal")) return CLIENT_TYPE_NORMAL;
    if (arg_is(c, i, "pubsub")) return CLIENT_TYPE_PUBSUB;
    if (arg_is(c, i, "master")) return CLIENT_TYPE_MASTER;
    if (arg_is(c, i, "replica") || arg_is(c, i, "slave")) return CLIENT_TYPE_REPLICA;
    reply_errorf(&c->out, "Unknown client type '%.*s'", (int)c->argvlen[i], c->argv[i]);
    return -2;
}

void cmd_client_list(client *c)
{
    strbuf b = {0};
    long long *ids = NULL;
    int nids = 0, type = CLIENT_TYPE_ANY;

    if (c->argc > 2) {
        if (arg_is(c, 2, "type") && c->argc == 4) {
            if ((type = client_type_arg(c, 3)) == -2) return;
        } else if (arg_is(c, 2, "id") && c->argc >= 4) {
            ids = mem_alloc((size_t)(c->argc - 3) * sizeof *ids);
            for (int i = 3; i < c->argc; i++) {
                if (!util_str2ll(c->argv[i], c->argvlen[i], &ids[nids]) || ids[nids] <= 0) {
                    reply_error(&c->out, "ERR Invalid client ID");
                    mem_free(ids);
                    return;
                }
                nids++;
            }
        } else {
            reply_err_syntax(c);
            return;
        }
    }
    for (dlist_node *n = dlist_first(&c->srv->clients); n; n = dlist_next(&c->srv->clients, n)) {
        client *o = DLIST_ENTRY(n, client, node);
        if (type != CLIENT_TYPE_ANY && client_type(o) != type) continue;
        if (nids) {
            int found = 0;
            for (int i = 0; i < nids; i++) found |= (uint64_t)ids[i] == o->id;
            if (!found) continue;
        }
        client_line(&b, o);
    }
    reply_verbatim(&c->out, b.p ? b.p : "", b.len, "txt");
    mem_free(b.p);
    mem_free(ids);
}

void cmd_client_info(client *c)
{
    strbuf b = {0};
    client_line(&b, c);
    reply_verbatim(&c->out, b.p, b.len, "txt");
    mem_free(b.p);
}

/* Kill o: if it is the caller, after this reply; otherwise now. */
static void client_kill_one(client *c, client *o)
{
    if (o == c) client_close_after_reply(c);
    else client_free(o);
}

void cmd_client_kill(client *c)
{
    server *s = c->srv;
    if (c->argc == 3) {    /* old form: CLIENT KILL addr:port */
        for (dlist_node *n = dlist_first(&s->clients); n; n = dlist_next(&s->clients, n)) {
            client *o = DLIST_ENTRY(n, client, node);
            if (strlen(o->addr) == c->argvlen[2] && !memcmp(o->addr, c->argv[2], c->argvlen[2])) {
                reply_ok(&c->out);
                client_kill_one(c, o);
                return;
            }
        }
        reply_error(&c->out, "ERR No such client");
        return;
    }
    long long id = 0;
    const char *addr = NULL, *laddr = NULL;
    size_t alen = 0, llen = 0;
    int skipme = 1, type = CLIENT_TYPE_ANY;
    acl_user *kuser = NULL;
    if ((c->argc - 2) % 2) {
        reply_err_syntax(c);
        return;
    }
    for (int i = 2; i < c->argc; i += 2) {
        if (arg_is(c, i, "id")) {
            if (!util_str2ll(c->argv[i + 1], c->argvlen[i + 1], &id) || id <= 0) {
                reply_error(&c->out, "ERR client-id should be greater than 0");
                return;
            }
        } else if (arg_is(c, i, "addr")) {
            addr = c->argv[i + 1], alen = c->argvlen[i + 1];
        } else if (arg_is(c, i, "laddr")) {
            laddr = c->argv[i + 1], llen = c->argvlen[i + 1];
        } else if (arg_is(c, i, "skipme")) {
            if (arg_is(c, i + 1, "yes")) skipme = 1;
            else if (arg_is(c, i + 1, "no")) skipme = 0;
            else {
                reply_err_syntax(c);
                return;
            }
        } else if (arg_is(c, i, "type")) {
            if ((type = client_type_arg(c, i + 1)) == -2) return;
        } else if (arg_is(c, i, "user")) {
            kuser = acl_find(c->srv, c->argv[i + 1], c->argvlen[i + 1]);
            if (!kuser) {
                reply_errorf(&c->out, "ERR No such user '%.*s'",
                             (int)(c->argvlen[i + 1] < 128 ? c->argvlen[i + 1] : 128),
                             c->argv[i + 1]);
                return;
            }
        } else {
            reply_err_syntax(c);
            return;
        }
    }
    long long killed = 0;
    int kill_self = 0;
    for (dlist_node *n = dlist_first(&s->clients), *next; n; n = next) {
        next = dlist_next(&s->clients, n);
        client *o = DLIST_ENTRY(n, client, node);
        if (id && o->id != (uint64_t)id) continue;
        if (addr && !(strlen(o->addr) == alen && !memcmp(o->addr, addr, alen))) continue;
        if (laddr && !(strlen(o->laddr) == llen && !memcmp(o->laddr, laddr, llen))) continue;
        if ((kuser && o->user != kuser) || (type != CLIENT_TYPE_ANY && client_type(o) != type))
            continue;
        if (o == c) {
            if (!skipme) kill_self = 1, killed++;
            continue;
        }
        client_free(o);
        killed++;
    }
    reply_int(&c->out, killed);
    if (kill_self) client_close_after_reply(c);
}

void cmd_client_onoff(client *c)
{
    if (!arg_is(c, 2, "on") && !arg_is(c, 2, "off")) {
        reply_err_syntax(c);
        return;
    }
    reply_ok(&c->out);
}

void cmd_client_help(client *c)
{
    static const char *const lines[] = {
        "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ID", "    Return the ID of the current connection.",
        "GETNAME", "    Return the name of the current connection.",
        "SETNAME <name>", "    Assign the name <name> to the current connection.",
        "SETINFO <LIB-NAME|LIB-VER> <value>", "    Set client library name or version.",
        "INFO", "    Return information about the current client connection.",
        "LIST [TYPE <type>] [ID <id> [<id> ...]]", "    Return information about client connections.",
        "KILL <ip:port>", "    Kill connection made from <ip:port>.",
        "KILL <option> <value> [<option> <value> [...]]",
        "    Kill connections. Options are: ID <id>, ADDR <ip:port>, LADDR <ip:port>,",
        "    TYPE <type>, USER <username>, SKIPME (YES|NO).",
        "NO-EVICT (ON|OFF)", "    Accepted for compatibility (engram does not evict).",
        "NO-TOUCH (ON|OFF)", "    Accepted for compatibility.",
        "HELP", "    Print this help.", NULL};
    reply_help(c, lines);
}
