/* cmd_admin.c -- connection and server commands: PING, ECHO, QUIT, RESET,
 * HELLO, AUTH, SELECT, INFO, COMMAND, CLIENT, CONFIG, DEBUG, SHUTDOWN, TIME.
 *
 * Container commands (CLIENT, CONFIG, COMMAND, DEBUG) dispatch to
 * subcommands through small tables, with Redis's errors for an unknown
 * subcommand ("Try CONFIG HELP.") and for a subcommand's arity
 * ('config|get').
 *
 * Loop thread only. */
#include "server.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/resource.h>
#include <time.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "engram/dist.h"
#include "engram/mem.h"
#include "engram/util.h"
#include "log.h"
#include "persist.h"
#include "models.h"

/* The Redis version we answer to in INFO and HELLO: clients gate features on
 * it, and engram implements the Redis 7.0 command surface it claims. */
#define ENGRAM_REDIS_COMPAT "7.0.0"

/* ---- a growable text buffer for INFO and CLIENT LIST ---------------------- */

typedef struct tbuf {
    char *p;
    size_t len, cap;
} tbuf;

static void tbuf_printf(tbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tbuf_printf(tbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if (b->p && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        b->cap = (b->cap + (size_t)n + 1) * 2;
        b->p = mem_realloc(b->p, b->cap);
    }
}

/* ---- subcommand dispatch -------------------------------------------------- */

/* Run the subcommand named by argv[1] (dispatch already checked that it
 * exists and that its arity fits: cmd_find_sub). */
static void subcmd_dispatch(client *c)
{
    const subcmd *t = cmd_find_sub(c, c->cur);
    if (!t) return;
    c->last_sub = t->name;
    t->fn(c);
}

static void reply_help(client *c, const char *const *lines)
{
    long long n = 0;
    while (lines[n]) n++;
    reply_array(&c->out, n);
    for (long long i = 0; i < n; i++) reply_simple(&c->out, lines[i]);
}

/* ---- connection ------------------------------------------------------------ */

static void cmd_ping(client *c)
{
    if (c->argc > 2) {
        reply_err_arity(c);
        return;
    }
    if (c->argc == 2) reply_bulk(&c->out, c->argv[1], c->argvlen[1]);
    else reply_simple(&c->out, "PONG");
}

static void cmd_echo(client *c) { reply_bulk(&c->out, c->argv[1], c->argvlen[1]); }

static void cmd_quit(client *c)
{
    reply_ok(&c->out);
    client_close_after_reply(c);
}

/* Constant-time comparison: the time taken does not depend on where the
 * first difference is. */
static int auth_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    unsigned char diff = (unsigned char)(alen != blen);
    for (size_t i = 0; i < alen; i++) diff |= (unsigned char)(a[i] ^ b[i % (blen ? blen : 1)]);
    return diff == 0;
}

/* 1 if (user, pass) opens the default user. user may be NULL. */
static int auth_check(client *c, const char *user, size_t ulen, const char *pass, size_t plen)
{
    const char *req = c->srv->cfg.requirepass;
    if (user && !util_eq_nocase(user, ulen, "default")) return 0;
    if (!req[0]) return 1;
    return auth_equal(pass, plen, req, strlen(req));
}

static void auth_granted(client *c)
{
    c->flags |= CLIENT_AUTHED;
    client_update_limits(c);
}

static void cmd_auth(client *c)
{
    if (c->argc > 3) {
        reply_err_syntax(c);
        return;
    }
    if (c->argc == 2 && !c->srv->cfg.requirepass[0]) {
        reply_error(&c->out, "ERR AUTH <password> called without any password configured for "
                    "the default user. Are you sure your configuration is correct?");
        return;
    }
    int ok = c->argc == 2 ? auth_check(c, NULL, 0, c->argv[1], c->argvlen[1])
                          : auth_check(c, c->argv[1], c->argvlen[1], c->argv[2], c->argvlen[2]);
    if (!ok) {
        reply_error(&c->out, "WRONGPASS invalid username-password pair or user is disabled.");
        return;
    }
    auth_granted(c);
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

static void cmd_hello(client *c)
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
        if (!auth_check(c, user, ulen, pass, plen)) {
            reply_error(&c->out, "WRONGPASS invalid username-password pair or user is disabled.");
            return;
        }
        auth_granted(c);
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
    reply_array(&c->out, 0);
}

static void cmd_select(client *c)
{
    long long db;
    if (!util_str2ll(c->argv[1], c->argvlen[1], &db)) {
        reply_err_int(c);
        return;
    }
    if (db != 0) {
        reply_error(&c->out, "ERR DB index is out of range");
        return;
    }
    reply_ok(&c->out);
}

static void cmd_reset(client *c)
{
    srv_multi_discard(c);
    srv_unwatch_all(c);
    mem_free(c->name);
    c->name = NULL;
    c->resp = 2;
    c->out.proto = 2;
    c->flags &= ~CLIENT_AUTHED;
    client_update_limits(c);
    reply_simple(&c->out, "RESET");
}

/* ---- INFO ------------------------------------------------------------------ */

static void info_bytes_human(char *buf, size_t cap, double n)
{
    const char *units = "BKMGTP";
    int u = 0;
    while (n >= 1024 && u < 5) n /= 1024, u++;
    if (u == 0) snprintf(buf, cap, "%.0fB", n);
    else snprintf(buf, cap, "%.2f%c", n, units[u]);
}

static void info_server(server *s, tbuf *b)
{
    struct utsname un;
    int64_t up = (util_mono_ms() - s->start_mono_ms) / 1000;
    uname(&un);
    tbuf_printf(b,
                "# Server\r\nredis_version:%s\r\nengram_version:%s\r\nredis_git_sha1:00000000\r\n"
                "redis_git_dirty:0\r\nredis_mode:standalone\r\nos:%s %s %s\r\narch_bits:%d\r\n"
                "multiplexing_api:%s\r\ngcc_version:%d.%d.%d\r\nprocess_id:%d\r\n"
                "tcp_port:%d\r\nserver_time_usec:%lld\r\nuptime_in_seconds:%lld\r\n"
                "uptime_in_days:%lld\r\nhz:%d\r\nconfigured_hz:%d\r\nconfig_file:%s\r\n",
                ENGRAM_REDIS_COMPAT, ENGRAM_VERSION, un.sysname, un.release, un.machine,
                (int)(sizeof(void *) * 8), ev_backend_name(),
#ifdef __GNUC__
                __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__,
#else
                0, 0, 0,
#endif
                (int)getpid(), s->port, (long long)util_wall_us(), (long long)up,
                (long long)up / 86400, s->cfg.hz, s->cfg.hz, s->cfg.config_file);
}

static void info_clients(server *s, tbuf *b)
{
    tbuf_printf(b, "# Clients\r\nconnected_clients:%zu\r\nmaxclients:%d\r\nblocked_clients:0\r\n"
                "tracking_clients:0\r\nclients_in_timeout_table:0\r\n",
                s->nclients, s->cfg.maxclients);
}

static void info_memory(server *s, tbuf *b)
{
    char human[32], peakh[32];
    size_t used = mem_used();
    struct rusage ru;
    if (used > s->mem_peak) s->mem_peak = used;
    size_t peak = s->mem_peak;
    getrusage(RUSAGE_SELF, &ru);
    info_bytes_human(human, sizeof human, (double)used);
    info_bytes_human(peakh, sizeof peakh, (double)peak);
    tbuf_printf(b, "# Memory\r\nused_memory:%zu\r\nused_memory_human:%s\r\nused_memory_peak:%zu\r\n"
                "used_memory_peak_human:%s\r\nused_memory_keyspace:%zu\r\n"
                "maxrss_bytes:%lld\r\nmaxmemory:0\r\nmaxmemory_policy:noeviction\r\n"
                "mem_allocator:libc\r\n",
                used, human, peak, peakh, kv_memory(s->db),
#if defined(__APPLE__)
                (long long)ru.ru_maxrss
#else
                (long long)ru.ru_maxrss * 1024
#endif
    );
}

static void info_persistence(server *s, tbuf *b)
{
    char buf[4096];
    persist_info(s, buf, sizeof buf);
    tbuf_printf(b, "# Persistence\r\n%s", buf);
}

static void info_stats(server *s, tbuf *b)
{
    tbuf_printf(b, "# Stats\r\ntotal_connections_received:%lld\r\ntotal_commands_processed:%lld\r\n"
                "instantaneous_ops_per_sec:%lld\r\ntotal_net_input_bytes:%lld\r\n"
                "total_net_output_bytes:%lld\r\nrejected_connections:%lld\r\nexpired_keys:%lld\r\n"
                "evicted_keys:0\r\nkeyspace_hits:%lld\r\nkeyspace_misses:%lld\r\n"
                "total_error_replies:%lld\r\nclient_query_buffer_limit_disconnections:%lld\r\n"
                "client_output_buffer_limit_disconnections:%lld\r\n",
                s->st.conns, s->st.cmds, srv_ops_per_sec(s), s->st.net_in, s->st.net_out,
                s->st.rejected_conns, s->st.expired_keys, s->st.keyspace_hits,
                s->st.keyspace_misses, s->st.errors, s->st.qbuf_kills, s->st.obuf_kills);
}

static void info_replication(server *s, tbuf *b)
{
    tbuf_printf(b, "# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_repl_offset:0\r\n");
}

static void info_cpu(server *s, tbuf *b)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    tbuf_printf(b, "# CPU\r\nused_cpu_sys:%ld.%06ld\r\nused_cpu_user:%ld.%06ld\r\n",
                (long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec,
                (long)ru.ru_utime.tv_sec, (long)ru.ru_utime.tv_usec);
}

static void info_commandstats(server *s, tbuf *b)
{
    tbuf_printf(b, "# Commandstats\r\n");
    for (size_t i = 0; i < cmd_count(); i++) {
        cmd *k = cmd_at(i);
        if (!k->calls && !k->rejected && !k->failed) continue;
        tbuf_printf(b, "cmdstat_%s:calls=%lld,usec=%lld,usec_per_call=%.2f,rejected_calls=%lld,"
                    "failed_calls=%lld\r\n", k->name, k->calls, k->usec,
                    k->calls ? (double)k->usec / (double)k->calls : 0.0, k->rejected, k->failed);
    }
}

static void info_vectors(server *s, tbuf *b)
{
    size_t n = vreg_count(s->vreg), vectors = 0, memory = 0;
    unsigned long long searches = 0;
    for (size_t i = 0; i < n; i++) {
        vreg_entry *e = vreg_at(s->vreg, i);
        vectors += vindex_count(vreg_index(e));
        memory += vindex_memory(vreg_index(e));
        searches += vreg_searches(e);
    }
    tbuf_printf(b, "# Vectors\r\nvector_indices:%zu\r\nvector_count:%zu\r\nvector_memory:%zu\r\n"
                "vector_searches:%llu\r\nvector_writes:%lld\r\nsearch_threads:%d\r\nsearch_nice:%d\r\n"
                "searches_inflight:%zu\r\nsimd_kernel:%s\r\nsplit_searches:%lld\r\n"
                "embedder_models_memory:%zu\r\n",
                n, vectors, memory, searches, s->vec_writes, s->nworkers, s->cfg.search_nice,
                s->pool ? pool_inflight(s->pool) : 0, dist_active()->name, s->vec_split_searches,
                models_memory(s));
}

static void info_keyspace(server *s, tbuf *b)
{
    tbuf_printf(b, "# Keyspace\r\n");
    if (kv_size(s->db))
        tbuf_printf(b, "db0:keys=%zu,expires=%zu,avg_ttl=0\r\n", kv_size(s->db),
                    kv_expires_size(s->db));
}

typedef struct info_section {
    const char *name;
    void (*fn)(server *s, tbuf *b);
    int is_default;
} info_section;

static const info_section info_sections[] = {
    {"server", info_server, 1},       {"clients", info_clients, 1},
    {"memory", info_memory, 1},       {"persistence", info_persistence, 1},
    {"stats", info_stats, 1},         {"replication", info_replication, 1},
    {"cpu", info_cpu, 1},             {"vectors", info_vectors, 1},
    {"commandstats", info_commandstats, 0},
    {"keyspace", info_keyspace, 1},   {NULL, NULL, 0},
};

static void cmd_info(client *c)
{
    tbuf b = {0};
    int all = c->argc == 1 ? 0 : -1, want[16] = {0};
    size_t nsec = sizeof info_sections / sizeof info_sections[0] - 1;

    for (int i = 1; i < c->argc; i++) {
        if (arg_is(c, i, "all") || arg_is(c, i, "everything")) all = 1;
        else if (arg_is(c, i, "default")) all = all == 1 ? 1 : 0;
        for (size_t j = 0; j < nsec; j++)
            if (arg_is(c, i, info_sections[j].name)) want[j] = 1;
    }
    for (size_t j = 0; j < nsec; j++) {
        int on = all == 1 || want[j] || (all == 0 && info_sections[j].is_default);
        if (!on) continue;
        if (b.len) tbuf_printf(&b, "\r\n");
        info_sections[j].fn(c->srv, &b);
    }
    reply_verbatim(&c->out, b.p ? b.p : "", b.len, "txt");
    mem_free(b.p);
}

/* ---- COMMAND ---------------------------------------------------------------- */

static void command_flags(client *c, const cmd *k)
{
    static const struct { unsigned bit; const char *name; } names[] = {
        {CMD_WRITE, "write"}, {CMD_READONLY, "readonly"}, {CMD_ADMIN, "admin"},
        {CMD_NOSCRIPT, "noscript"}, {CMD_LOADING, "loading"}, {CMD_STALE, "stale"},
        {CMD_FAST, "fast"}, {CMD_NOAUTH, "no_auth"}, {CMD_NOMULTI, "no_multi"},
    };
    long long n = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) n += (k->flags & names[i].bit) != 0;
    reply_set(&c->out, n);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (k->flags & names[i].bit) reply_simple(&c->out, names[i].name);
}

static void command_info_one(client *c, const cmd *k)
{
    char cat[32];
    reply_array(&c->out, 10);
    reply_bulk_cstr(&c->out, k->name);
    reply_int(&c->out, k->arity);
    command_flags(c, k);
    reply_int(&c->out, k->first_key);
    reply_int(&c->out, k->last_key);
    reply_int(&c->out, k->key_step);
    snprintf(cat, sizeof cat, "@%s", k->group);
    reply_set(&c->out, 1);
    reply_simple(&c->out, cat);
    reply_array(&c->out, 0);    /* tips */
    reply_array(&c->out, 0);    /* key specs: the legacy triple above says it */
    reply_array(&c->out, 0);    /* subcommands */
}

static void command_docs_one(client *c, const cmd *k)
{
    reply_bulk_cstr(&c->out, k->name);
    reply_map(&c->out, 3);
    reply_bulk_cstr(&c->out, "summary");
    reply_bulk_cstr(&c->out, k->summary ? k->summary : "");
    reply_bulk_cstr(&c->out, "since");
    reply_bulk_cstr(&c->out, k->since ? k->since : "0.1.0");
    reply_bulk_cstr(&c->out, "group");
    reply_bulk_cstr(&c->out, k->group ? k->group : "generic");
}

static void command_count(client *c) { reply_int(&c->out, (long long)cmd_count()); }

static void command_info(client *c)
{
    if (c->argc == 2) {
        reply_array(&c->out, (long long)cmd_count());
        for (size_t i = 0; i < cmd_count(); i++) command_info_one(c, cmd_at(i));
        return;
    }
    reply_array(&c->out, c->argc - 2);
    for (int i = 2; i < c->argc; i++) {
        cmd *k = cmd_lookup(c->argv[i], c->argvlen[i]);
        if (k) command_info_one(c, k);
        else reply_null_array(&c->out);
    }
}

static void command_docs(client *c)
{
    if (c->argc == 2) {
        reply_map(&c->out, (long long)cmd_count());
        for (size_t i = 0; i < cmd_count(); i++) command_docs_one(c, cmd_at(i));
        return;
    }
    size_t h = reply_defer(&c->out);
    long long n = 0;
    for (int i = 2; i < c->argc; i++) {
        cmd *k = cmd_lookup(c->argv[i], c->argvlen[i]);
        if (!k) continue;
        command_docs_one(c, k);
        n++;
    }
    reply_defer_map(&c->out, h, n);
}

static void command_list(client *c)
{
    const char *pat = NULL, *cat = NULL;
    size_t plen = 0, clen = 0;
    if (c->argc != 2) {
        if (c->argc != 5 || !arg_is(c, 2, "filterby")) {
            reply_err_syntax(c);
            return;
        }
        if (arg_is(c, 3, "pattern")) pat = c->argv[4], plen = c->argvlen[4];
        else if (arg_is(c, 3, "aclcat")) cat = c->argv[4], clen = c->argvlen[4];
        else if (arg_is(c, 3, "module")) {
            reply_array(&c->out, 0);
            return;
        } else {
            reply_err_syntax(c);
            return;
        }
    }
    size_t h = reply_defer(&c->out);
    long long n = 0;
    for (size_t i = 0; i < cmd_count(); i++) {
        cmd *k = cmd_at(i);
        if (pat && !util_glob_match(pat, plen, k->name, strlen(k->name), 1)) continue;
        if (cat && !util_eq_nocase(cat, clen, k->group)) continue;
        reply_bulk_cstr(&c->out, k->name);
        n++;
    }
    reply_defer_array(&c->out, h, n);
}

static void command_help(client *c)
{
    static const char *const lines[] = {
        "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "(no subcommand)", "    Return details about all commands.",
        "COUNT", "    Return the total number of commands in this server.",
        "LIST [FILTERBY (MODULE <module-name>|ACLCAT <category>|PATTERN <pattern>)]",
        "    Return a list of all commands in this server.",
        "INFO [<command-name> ...]", "    Return details about the given commands, or all of them.",
        "DOCS [<command-name> ...]", "    Return documentation details about the given commands.",
        "HELP", "    Print this help.", NULL};
    reply_help(c, lines);
}

static const subcmd command_subs[] = {
    {"count", command_count, 2}, {"info", command_info, -2}, {"docs", command_docs, -2},
    {"list", command_list, -2},  {"help", command_help, 2},  {NULL, NULL, 0},
};

static void cmd_command(client *c)
{
    if (c->argc == 1) {
        reply_array(&c->out, (long long)cmd_count());
        for (size_t i = 0; i < cmd_count(); i++) command_info_one(c, cmd_at(i));
        return;
    }
    subcmd_dispatch(c);
}

/* ---- CLIENT ------------------------------------------------------------------ */

static void client_id(client *c) { reply_int(&c->out, (long long)c->id); }

static void client_getname(client *c)
{
    if (c->name) reply_bulk_cstr(&c->out, c->name);
    else reply_null(&c->out);
}

static void client_setname_cmd(client *c)
{
    if (client_setname(c, c->argv[2], c->argvlen[2])) reply_ok(&c->out);
}

static void client_setinfo(client *c)
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
static void client_line(tbuf *b, const client *o)
{
    char line[1024];
    int n = client_info_line(o, line, sizeof line);
    if (n < (int)sizeof line) {
        tbuf_printf(b, "%s\n", line);
        return;
    }
    char *big = mem_alloc((size_t)n + 1);
    client_info_line(o, big, (size_t)n + 1);
    tbuf_printf(b, "%s\n", big);
    mem_free(big);
}

static void client_list(client *c)
{
    tbuf b = {0};
    long long *ids = NULL;
    int nids = 0;

    if (c->argc > 2) {
        if (arg_is(c, 2, "type") && c->argc == 4) {
            if (!arg_is(c, 3, "normal") && !arg_is(c, 3, "master") && !arg_is(c, 3, "replica") &&
                !arg_is(c, 3, "slave") && !arg_is(c, 3, "pubsub")) {
                reply_errorf(&c->out, "Unknown client type '%.*s'", (int)c->argvlen[3], c->argv[3]);
                return;
            }
            if (!arg_is(c, 3, "normal")) {   /* engram has only normal clients */
                reply_verbatim(&c->out, "", 0, "txt");
                return;
            }
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
    for (client *o = c->srv->clients; o; o = o->next) {
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

static void client_info(client *c)
{
    tbuf b = {0};
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

static void client_kill(client *c)
{
    server *s = c->srv;
    if (c->argc == 3) {    /* old form: CLIENT KILL addr:port */
        for (client *o = s->clients; o; o = o->next) {
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
    int skipme = 1, type_normal = -1;
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
            if (arg_is(c, i + 1, "normal")) type_normal = 1;
            else if (arg_is(c, i + 1, "master") || arg_is(c, i + 1, "replica") ||
                     arg_is(c, i + 1, "slave") || arg_is(c, i + 1, "pubsub")) type_normal = 0;
            else {
                reply_errorf(&c->out, "Unknown client type '%.*s'", (int)c->argvlen[i + 1], c->argv[i + 1]);
                return;
            }
        } else if (arg_is(c, i, "user")) {
            if (!arg_is(c, i + 1, "default")) type_normal = 0;   /* no such user: nothing matches */
        } else {
            reply_err_syntax(c);
            return;
        }
    }
    long long killed = 0;
    int kill_self = 0;
    for (client *o = s->clients, *next; o; o = next) {
        next = o->next;
        if (id && o->id != (uint64_t)id) continue;
        if (addr && !(strlen(o->addr) == alen && !memcmp(o->addr, addr, alen))) continue;
        if (laddr && !(strlen(o->laddr) == llen && !memcmp(o->laddr, laddr, llen))) continue;
        if (type_normal == 0) continue;
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

static void client_noop_onoff(client *c)
{
    if (!arg_is(c, 2, "on") && !arg_is(c, 2, "off")) {
        reply_err_syntax(c);
        return;
    }
    reply_ok(&c->out);
}

static void client_help(client *c)
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

static const subcmd client_subs[] = {
    {"id", client_id, 2},           {"getname", client_getname, 2},
    {"setname", client_setname_cmd, 3}, {"setinfo", client_setinfo, 4},
    {"list", client_list, -2},      {"info", client_info, 2},
    {"kill", client_kill, -3},      {"no-evict", client_noop_onoff, 3},
    {"no-touch", client_noop_onoff, 3}, {"help", client_help, 2},
    {NULL, NULL, 0},
};

static void cmd_client(client *c) { subcmd_dispatch(c); }

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

static void config_get_cmd(client *c)
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
    else if (!strcmp(name, "proto-max-bulk-len") || !strcmp(name, "requirepass"))
        for (client *o = s->clients; o; o = o->next) client_update_limits(o);
}

static void config_set_cmd(client *c)
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

static void config_resetstat(client *c)
{
    memset(&c->srv->st, 0, sizeof c->srv->st);
    for (size_t i = 0; i < cmd_count(); i++) {
        cmd *k = cmd_at(i);
        k->calls = k->usec = k->rejected = k->failed = 0;
    }
    reply_ok(&c->out);
}

static void config_rewrite_cmd(client *c)
{
    char err[512];
    if (config_rewrite(&c->srv->cfg, err, sizeof err) < 0) {
        reply_errorf(&c->out, "ERR %s", err);
        return;
    }
    log_msg(LOG_NOTICE, "CONFIG REWRITE executed with success.");
    reply_ok(&c->out);
}

static void config_help(client *c)
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

static const subcmd config_subs[] = {
    {"get", config_get_cmd, -3},       {"set", config_set_cmd, -4},
    {"resetstat", config_resetstat, 2}, {"rewrite", config_rewrite_cmd, 2},
    {"help", config_help, 2},          {NULL, NULL, 0},
};

static void cmd_config(client *c) { subcmd_dispatch(c); }

/* ---- DEBUG, SHUTDOWN, TIME ---------------------------------------------------- */

static void debug_sleep(client *c)
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

static void debug_active_expire(client *c)
{
    long long v;
    if (!arg_ll(c, 2, &v)) return;
    c->srv->active_expire = v != 0;
    reply_ok(&c->out);
}

/* DEBUG WAL-FAULT write|fsync ENOSPC|EIO, or DEBUG WAL-FAULT off: the next
 * write or fsync of a persistence file fails (tests of the failure path). */
static void debug_wal_fault(client *c)
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

static void debug_help(client *c)
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

static const subcmd debug_subs[] = {
    {"sleep", debug_sleep, 3}, {"set-active-expire", debug_active_expire, 3},
    {"wal-fault", debug_wal_fault, -3},
    {"help", debug_help, 2},   {NULL, NULL, 0},
};

static void cmd_debug(client *c) { subcmd_dispatch(c); }

static void cmd_shutdown(client *c)
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
static void cmd_save(client *c)
{
    char err[512];
    if (persist_save(c->srv, 0, err, sizeof err) < 0) reply_error(&c->out, err);
    else reply_ok(&c->out);
}

static void cmd_bgsave(client *c)
{
    char err[512];
    if (c->argc > 2 || (c->argc == 2 && !arg_is(c, 1, "schedule"))) {
        reply_err_syntax(c);
        return;
    }
    if (persist_save(c->srv, 1, err, sizeof err) < 0) reply_error(&c->out, err);
    else reply_simple(&c->out, "Background saving started");
}

static void cmd_lastsave(client *c)
{
    reply_int(&c->out, (long long)(persist_last_save_ms(c->srv) / 1000));
}

static void cmd_time(client *c)
{
    int64_t us = util_wall_us();
    reply_array(&c->out, 2);
    reply_bulk_ll(&c->out, us / 1000000);
    reply_bulk_ll(&c->out, us % 1000000);
}

cmd cmd_admin_table[] = {
    {"ping", cmd_ping, -1, CMD_FAST | CMD_STALE, 0, 0, 0, "connection",
     "Returns the server's liveliness response.", "1.0.0", 0, 0, 0, 0, NULL},
    {"echo", cmd_echo, 2, CMD_FAST, 0, 0, 0, "connection", "Returns the given string.", "1.0.0", 0, 0, 0, 0, NULL},
    {"quit", cmd_quit, -1, CMD_NOAUTH | CMD_NOMULTI | CMD_FAST | CMD_LOADING | CMD_STALE, 0, 0, 0,
     "connection", "Closes the connection.", "1.0.0", 0, 0, 0, 0, NULL},
    {"reset", cmd_reset, 1, CMD_NOAUTH | CMD_NOMULTI | CMD_FAST | CMD_LOADING | CMD_STALE, 0, 0, 0,
     "connection", "Resets the connection.", "6.2.0", 0, 0, 0, 0, NULL},
    {"hello", cmd_hello, -1, CMD_NOAUTH | CMD_FAST | CMD_LOADING | CMD_STALE, 0, 0, 0, "connection",
     "Handshakes with the server.", "6.0.0", 0, 0, 0, 0, NULL},
    {"auth", cmd_auth, -2, CMD_NOAUTH | CMD_FAST | CMD_LOADING | CMD_STALE, 0, 0, 0, "connection",
     "Authenticates the connection.", "1.0.0", 0, 0, 0, 0, NULL},
    {"select", cmd_select, 2, CMD_FAST | CMD_LOADING | CMD_STALE, 0, 0, 0, "connection",
     "Changes the selected database (engram has database 0 only).", "1.0.0", 0, 0, 0, 0, NULL},
    {"info", cmd_info, -1, CMD_LOADING | CMD_STALE, 0, 0, 0, "server",
     "Returns information and statistics about the server.", "1.0.0", 0, 0, 0, 0, NULL},
    {"command", cmd_command, -1, CMD_LOADING | CMD_STALE, 0, 0, 0, "server",
     "Returns detailed information about commands.", "2.8.13", 0, 0, 0, 0, command_subs},
    {"client", cmd_client, -2, CMD_LOADING | CMD_STALE, 0, 0, 0, "connection",
     "Manages client connections.", "2.4.0", 0, 0, 0, 0, client_subs},
    {"config", cmd_config, -2, CMD_ADMIN | CMD_LOADING | CMD_STALE | CMD_NOSCRIPT, 0, 0, 0, "server",
     "Reads and changes the configuration.", "2.0.0", 0, 0, 0, 0, config_subs},
    {"debug", cmd_debug, -2, CMD_ADMIN | CMD_NOSCRIPT | CMD_LOADING | CMD_STALE, 0, 0, 0, "server",
     "Debugging and testing helpers.", "1.0.0", 0, 0, 0, 0, debug_subs},
    {"shutdown", cmd_shutdown, -1, CMD_ADMIN | CMD_NOSCRIPT | CMD_LOADING | CMD_STALE, 0, 0, 0,
     "server", "Stops the server.", "1.0.0", 0, 0, 0, 0, NULL},
    {"save", cmd_save, 1, CMD_ADMIN | CMD_NOSCRIPT, 0, 0, 0, "server",
     "Write a snapshot in the foreground", "1.0.0", 0, 0, 0, 0, NULL},
    {"bgsave", cmd_bgsave, -1, CMD_ADMIN | CMD_NOSCRIPT, 0, 0, 0, "server",
     "Write a snapshot in a background process", "1.0.0", 0, 0, 0, 0, NULL},
    {"lastsave", cmd_lastsave, 1, CMD_FAST | CMD_LOADING | CMD_STALE, 0, 0, 0, "server",
     "Unix time of the last successful snapshot", "1.0.0", 0, 0, 0, 0, NULL},
    {"time", cmd_time, 1, CMD_FAST | CMD_LOADING | CMD_STALE, 0, 0, 0, "server",
     "Returns the server time.", "2.6.0", 0, 0, 0, 0, NULL},
    {NULL, NULL, 0, 0, 0, 0, 0, NULL, NULL, NULL, 0, 0, 0, 0, NULL},
};
