/* cmd_command.c -- COMMAND and its subcommands, generated from the command
 * table (command.h) in the shapes Redis 7 replies:
 *
 *   COMMAND / COMMAND INFO [name ...]: per command an array of ten -- name
 *     (a subcommand's full "container|sub" name), arity, flags (a set of
 *     simple strings), first key, last key, step, ACL categories (a set of
 *     "@category"), tips (a set of bulk strings), key specifications (a
 *     set of maps; engram derives one range spec from the key triple, with
 *     RO/RW and access/update flags from the command's flags), and the
 *     subcommands (a set of such arrays).  An unknown name gives a null
 *     bulk string.
 *   COMMAND DOCS [name ...]: a map from name to {summary, since, group,
 *     [subcommands]}; unknown names are left out.
 *   COMMAND COUNT: top-level commands; COMMAND LIST [FILTERBY ...]: every
 *     name, subcommands included.
 *   COMMAND GETKEYS / GETKEYSANDFLAGS cmd arg...: the keys the table's
 *     positions find in that request, with Redis's errors.
 *
 * Loop thread only. */
#include "server.h"

#include <stdio.h>
#include <string.h>

#include "engram/mem.h"
#include "engram/util.h"
#include "handlers.h"

/* ---- INFO ------------------------------------------------------------------------ */

static void reply_flags(client *c, const command *k)
{
    long long n = 0;
    for (unsigned bit = 1; bit & CMD_SHOWN; bit <<= 1) n += (k->flags & bit) != 0;
    reply_set(&c->out, n);
    for (unsigned bit = 1; bit & CMD_SHOWN; bit <<= 1)
        if (k->flags & bit) reply_simple(&c->out, command_flag_name(bit));
}

static void reply_categories(client *c, const command *k)
{
    char name[32];
    long long n = 0;
    for (unsigned bit = 1; command_category_name(bit); bit <<= 1) n += (k->categories & bit) != 0;
    reply_set(&c->out, n);
    for (unsigned bit = 1; command_category_name(bit); bit <<= 1) {
        if (!(k->categories & bit)) continue;
        snprintf(name, sizeof name, "@%s", command_category_name(bit));
        reply_simple(&c->out, name);
    }
}

static void reply_tips(client *c, const command *k)
{
    const char *p = k->tips ? k->tips : "";
    long long n = 0;
    for (const char *q = p; *q; q++) n += (q == p || q[-1] == ' ') && *q != ' ';
    reply_set(&c->out, n);
    while (*p) {
        const char *end = strchr(p, ' ');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        reply_bulk(&c->out, p, len);
        p += len;
        while (*p == ' ') p++;
    }
}

/* One range key specification from the legacy triple. */
static void reply_key_specs(client *c, const command *k)
{
    if (k->first_key <= 0) {
        reply_set(&c->out, 0);
        return;
    }
    int ro = !(k->flags & CMD_WRITE);
    reply_set(&c->out, 1);
    reply_map(&c->out, 3);
    reply_bulk_cstr(&c->out, "flags");
    reply_set(&c->out, 2);
    reply_simple(&c->out, ro ? "RO" : "RW");
    reply_simple(&c->out, ro ? "access" : "update");
    reply_bulk_cstr(&c->out, "begin_search");
    reply_map(&c->out, 2);
    reply_bulk_cstr(&c->out, "type");
    reply_bulk_cstr(&c->out, "index");
    reply_bulk_cstr(&c->out, "spec");
    reply_map(&c->out, 1);
    reply_bulk_cstr(&c->out, "index");
    reply_int(&c->out, k->first_key);
    reply_bulk_cstr(&c->out, "find_keys");
    reply_map(&c->out, 2);
    reply_bulk_cstr(&c->out, "type");
    reply_bulk_cstr(&c->out, "range");
    reply_bulk_cstr(&c->out, "spec");
    reply_map(&c->out, 3);
    reply_bulk_cstr(&c->out, "lastkey");
    reply_int(&c->out, k->last_key < 0 ? k->last_key : k->last_key - k->first_key);
    reply_bulk_cstr(&c->out, "keystep");
    reply_int(&c->out, k->key_step);
    reply_bulk_cstr(&c->out, "limit");
    reply_int(&c->out, 0);
}

static void reply_command_info(client *c, const command *k)
{
    reply_array(&c->out, 10);
    reply_bulk_cstr(&c->out, k->fullname);
    reply_int(&c->out, k->arity);
    reply_flags(c, k);
    reply_int(&c->out, k->first_key);
    reply_int(&c->out, k->last_key);
    reply_int(&c->out, k->key_step);
    reply_categories(c, k);
    reply_tips(c, k);
    reply_key_specs(c, k);
    long long nsubs = 0;
    for (const command *s = k->subs; s && s->name; s++) nsubs++;
    reply_set(&c->out, nsubs);
    for (const command *s = k->subs; s && s->name; s++) reply_command_info(c, s);
}

/* A command or subcommand by its full name ("config|get"), or NULL. */
static command *lookup_fullname(const char *name, size_t len)
{
    const char *bar = memchr(name, '|', len);
    if (!bar) return command_lookup(name, len);
    command *k = command_lookup(name, (size_t)(bar - name));
    return k ? command_lookup_sub(k, bar + 1, len - (size_t)(bar - name) - 1) : NULL;
}

void cmd_command(client *c)
{
    reply_array(&c->out, (long long)command_count());
    for (size_t i = 0; i < command_count(); i++) reply_command_info(c, command_at(i));
}

void cmd_command_count(client *c) { reply_int(&c->out, (long long)command_count()); }

void cmd_command_info(client *c)
{
    if (c->argc == 2) {
        cmd_command(c);
        return;
    }
    reply_array(&c->out, c->argc - 2);
    for (int i = 2; i < c->argc; i++) {
        command *k = lookup_fullname(c->argv[i], c->argvlen[i]);
        if (k) reply_command_info(c, k);
        else reply_null(&c->out);
    }
}

/* ---- DOCS ------------------------------------------------------------------------ */

static void reply_command_docs(client *c, const command *k)
{
    long long nsubs = 0;
    for (const command *s = k->subs; s && s->name; s++) nsubs++;
    reply_bulk_cstr(&c->out, k->fullname);
    reply_map(&c->out, 3 + (nsubs > 0) + (k->module != NULL));
    reply_bulk_cstr(&c->out, "summary");
    reply_bulk_cstr(&c->out, k->summary);
    reply_bulk_cstr(&c->out, "since");
    reply_bulk_cstr(&c->out, k->since);
    reply_bulk_cstr(&c->out, "group");
    reply_bulk_cstr(&c->out, k->group);
    if (k->module) {
        reply_bulk_cstr(&c->out, "module");
        reply_bulk_cstr(&c->out, k->module);
    }
    if (nsubs) {
        reply_bulk_cstr(&c->out, "subcommands");
        reply_map(&c->out, nsubs);
        for (const command *s = k->subs; s && s->name; s++) reply_command_docs(c, s);
    }
}

void cmd_command_docs(client *c)
{
    if (c->argc == 2) {
        reply_map(&c->out, (long long)command_count());
        for (size_t i = 0; i < command_count(); i++) reply_command_docs(c, command_at(i));
        return;
    }
    size_t h = reply_defer(&c->out);
    long long n = 0;
    for (int i = 2; i < c->argc; i++) {
        command *k = lookup_fullname(c->argv[i], c->argvlen[i]);
        if (!k) continue;
        reply_command_docs(c, k);
        n++;
    }
    reply_defer_map(&c->out, h, n);
}

/* ---- LIST ------------------------------------------------------------------------ */

static int has_category(const command *k, const char *name, size_t len)
{
    for (unsigned bit = 1; command_category_name(bit); bit <<= 1)
        if ((k->categories & bit) && util_eq_nocase(name, len, command_category_name(bit))) return 1;
    return 0;
}

void cmd_command_list(client *c)
{
    const char *pat = NULL, *cat = NULL, *mod = NULL;
    size_t plen = 0, clen = 0, mlen = 0;
    if (c->argc != 2) {
        if (c->argc != 5 || !arg_is(c, 2, "filterby")) {
            reply_err_syntax(c);
            return;
        }
        if (arg_is(c, 3, "pattern")) pat = c->argv[4], plen = c->argvlen[4];
        else if (arg_is(c, 3, "aclcat")) cat = c->argv[4], clen = c->argvlen[4];
        else if (arg_is(c, 3, "module")) mod = c->argv[4], mlen = c->argvlen[4];
        else {
            reply_err_syntax(c);
            return;
        }
    }
    size_t h = reply_defer(&c->out);
    long long n = 0;
    for (size_t i = 0; i < command_all_count(); i++) {
        command *k = command_all_at(i);
        if (pat && !util_glob_match(pat, plen, k->fullname, strlen(k->fullname), 1)) continue;
        if (cat && !has_category(k, cat, clen)) continue;
        if (mod && (!k->module || !util_eq_nocase(mod, mlen, k->module))) continue;
        reply_bulk_cstr(&c->out, k->fullname);
        n++;
    }
    reply_defer_array(&c->out, h, n);
}

/* ---- GETKEYS ---------------------------------------------------------------------- */

/* The keys of the request argv[2..], with Redis's errors.  Returns how
 * many positions (relative to argv + 2) are in pos, or -1 after an error
 * reply.  The request is looked up as dispatch would (container and
 * subcommand), then its arity checked. */
static int getkeys(client *c, command **out, int *pos, int max)
{
    int argc = c->argc - 2;
    const char **argv = c->argv + 2;
    const size_t *lens = c->argvlen + 2;
    command *k = command_lookup(argv[0], lens[0]);
    if (k && k->subs && argc >= 2) k = command_lookup_sub(k, argv[1], lens[1]);
    if (!k) {
        reply_error(&c->out, "ERR Invalid command specified");
        return -1;
    }
    if (!command_arity_ok(k, argc)) {
        reply_error(&c->out, "ERR Invalid number of arguments specified for command");
        return -1;
    }
    int n = command_keys(k, argc, pos, max);
    if (n == 0) {
        reply_error(&c->out, "ERR The command has no key arguments");
        return -1;
    }
    *out = k;
    return n;
}

static void command_getkeys_reply(client *c, int with_flags)
{
    command *k;
    int stack[64];
    int max = c->argc - 2, *pos = max <= 64 ? stack : mem_alloc((size_t)max * sizeof *pos);
    int n = getkeys(c, &k, pos, max);
    if (n >= 0) {
        int ro = !(k->flags & CMD_WRITE);
        reply_array(&c->out, n);
        for (int i = 0; i < n; i++) {
            if (with_flags) reply_array(&c->out, 2);
            reply_bulk(&c->out, c->argv[2 + pos[i]], c->argvlen[2 + pos[i]]);
            if (!with_flags) continue;
            reply_set(&c->out, 2);
            reply_simple(&c->out, ro ? "RO" : "RW");
            reply_simple(&c->out, ro ? "access" : "update");
        }
    }
    if (pos != stack) mem_free(pos);
}

void cmd_command_getkeys(client *c) { command_getkeys_reply(c, 0); }
void cmd_command_getkeysandflags(client *c) { command_getkeys_reply(c, 1); }

void cmd_command_help(client *c)
{
    static const char *const lines[] = {
        "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "(no subcommand)", "    Return details about all commands.",
        "COUNT", "    Return the total number of commands in this server.",
        "LIST [FILTERBY (MODULE <module-name>|ACLCAT <category>|PATTERN <pattern>)]",
        "    Return a list of all commands in this server.",
        "INFO [<command-name> ...]", "    Return details about the given commands, or all of them.",
        "DOCS [<command-name> ...]", "    Return documentation details about the given commands.",
        "GETKEYS <full-command>", "    Return the keys from a full command.",
        "GETKEYSANDFLAGS <full-command>",
        "    Return the keys and the access flags from a full command.",
        "HELP", "    Print this help.", NULL};
    reply_help(c, lines);
}
