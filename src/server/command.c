/* command.c -- what the rest of the server asks of the command table
 * (commands.c): lookup by name, iteration, key positions, and the names of
 * flags and ACL categories.
 *
 * Lookup is an open-addressing index by lower-case name built once at
 * start-up (command_table_init), so dispatch hashes the request's name
 * once and compares one or two names.  Subcommands are few per container
 * and are found by a linear scan of the container's list.
 *
 * Loop thread only. */
#include "command.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "engram/mem.h"
#include "engram/util.h"

#define COMMAND_NAME_MAX 32
#define COMMAND_INDEX_SIZE 512        /* power of two, > 2x the number of commands */

static command *command_index[COMMAND_INDEX_SIZE];
static size_t command_n;
static command **command_all;         /* containers before their subcommands */
static size_t command_all_n;

static uint32_t name_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* The categories a command's flags and group imply (containers: their
 * flags only, as Redis lists them). */
static unsigned implied_categories(const command *k)
{
    /* No "pubsub": @pubsub comes from the CMD_PUBSUB flag alone, as in
     * Redis (PUBSUB HELP has neither). */
    static const struct { const char *group; unsigned cat; } groups[] = {
        {"string", CAT_STRING},           {"generic", CAT_KEYSPACE},
        {"transactions", CAT_TRANSACTION}, {"connection", CAT_CONNECTION},
        {"hash", CAT_HASH},               {"vector", CAT_VECTORSET},
        {"bitmap", CAT_BITMAP},
    };
    unsigned c = k->acl;
    if (k->flags & CMD_WRITE) c |= CAT_WRITE;
    if (k->flags & CMD_READONLY) c |= CAT_READ;
    if (k->flags & CMD_ADMIN) c |= CAT_ADMIN | CAT_DANGEROUS;
    if (k->flags & CMD_PUBSUB) c |= CAT_PUBSUB;
    c |= (k->flags & CMD_FAST) ? CAT_FAST : CAT_SLOW;
    if (k->subs) return c;
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
        if (!strcmp(k->group, groups[i].group)) c |= groups[i].cat;
    return c;
}

static void command_prepare(command *k, command *parent)
{
    command_all = mem_realloc(command_all, (command_all_n + 1) * sizeof *command_all);
    k->all_index = command_all_n;
    command_all[command_all_n++] = k;
    k->parent = parent;
    if (parent) {
        size_t n = strlen(parent->name) + 1 + strlen(k->name) + 1;
        k->fullname = mem_alloc(n);
        snprintf(k->fullname, n, "%s|%s", parent->name, k->name);
    } else if (k->module) {
        size_t n = strlen(k->name);
        k->fullname = mem_alloc(n + 1);
        for (size_t i = 0; i <= n; i++)
            k->fullname[i] = (char)(k->name[i] >= 'a' && k->name[i] <= 'z' ? k->name[i] - 32 : k->name[i]);
    } else {
        k->fullname = (char *)k->name;
    }
    k->categories = implied_categories(k);
}

/* The index of top-level commands by the name requests use. */
static void index_build(void)
{
    memset(command_index, 0, sizeof command_index);
    for (command *k = command_table; k->name; k++) {
        if (!k->lookup) continue;
        size_t n = strlen(k->lookup);
        uint32_t h = name_hash(k->lookup, n) & (COMMAND_INDEX_SIZE - 1);
        while (command_index[h]) h = (h + 1) & (COMMAND_INDEX_SIZE - 1);
        command_index[h] = k;
    }
}

void command_table_init(void)
{
    if (command_n) return;
    for (command *k = command_table; k->name; k++) {
        k->lookup = k->name;
        command_prepare(k, NULL);
        for (command *s = k->subs; s && s->name; s++) command_prepare(s, k);
        command_n++;
    }
    index_build();
}

int command_rename(command *k, const char *newname)
{
    if (newname && *newname) {
        size_t n = strlen(newname);
        if (n >= COMMAND_NAME_MAX) return -1;
        command *other = command_lookup(newname, n);
        if (other && other != k) return -1;
        char *low = mem_strndup(newname, n);
        for (size_t i = 0; i < n; i++) low[i] = (char)tolower((unsigned char)low[i]);
        k->lookup = low;           /* kept for the process's life */
    } else {
        k->lookup = NULL;
    }
    index_build();
    return 0;
}

command *command_lookup(const char *name, size_t len)
{
    char low[COMMAND_NAME_MAX];
    if (len == 0 || len >= COMMAND_NAME_MAX) return NULL;
    for (size_t i = 0; i < len; i++) low[i] = (char)tolower((unsigned char)name[i]);
    uint32_t h = name_hash(low, len) & (COMMAND_INDEX_SIZE - 1);
    for (command *k; (k = command_index[h]) != NULL; h = (h + 1) & (COMMAND_INDEX_SIZE - 1))
        if (!strncmp(k->lookup, low, len) && k->lookup[len] == '\0') return k;
    return NULL;
}

command *command_lookup_original(const char *name, size_t len)
{
    for (command *k = command_table; k->name; k++)
        if (util_eq_nocase(name, len, k->name)) return k;
    return NULL;
}

command *command_lookup_sub(const command *container, const char *name, size_t len)
{
    for (command *s = container->subs; s && s->name; s++)
        if (util_eq_nocase(name, len, s->name)) return s;
    return NULL;
}

size_t command_count(void) { return command_n; }
command *command_at(size_t i) { return i < command_n ? &command_table[i] : NULL; }

size_t command_all_count(void) { return command_all_n; }
command *command_all_at(size_t i) { return i < command_all_n ? command_all[i] : NULL; }

int command_arity_ok(const command *k, int argc)
{
    return k->arity > 0 ? argc == k->arity : argc >= -k->arity;
}

int command_keys(const command *k, int argc, int *pos, int max)
{
    if (k->first_key <= 0) return 0;
    int last = k->last_key >= 0 ? k->last_key : argc + k->last_key;
    int n = 0;
    for (int i = k->first_key; i <= last && i < argc && n < max; i += k->key_step) pos[n++] = i;
    return n;
}

const char *command_category_name(unsigned bit)
{
    switch (bit) {
    case CAT_KEYSPACE: return "keyspace";
    case CAT_READ: return "read";
    case CAT_WRITE: return "write";
    case CAT_STRING: return "string";
    case CAT_HASH: return "hash";
    case CAT_PUBSUB: return "pubsub";
    case CAT_ADMIN: return "admin";
    case CAT_FAST: return "fast";
    case CAT_SLOW: return "slow";
    case CAT_DANGEROUS: return "dangerous";
    case CAT_CONNECTION: return "connection";
    case CAT_TRANSACTION: return "transaction";
    case CAT_VECTORSET: return "vectorset";
    case CAT_SEARCH: return "search";
    case CAT_SET: return "set";
    case CAT_SORTEDSET: return "sortedset";
    case CAT_LIST: return "list";
    case CAT_BITMAP: return "bitmap";
    case CAT_HYPERLOGLOG: return "hyperloglog";
    case CAT_GEO: return "geo";
    case CAT_STREAM: return "stream";
    case CAT_BLOCKING: return "blocking";
    case CAT_SCRIPTING: return "scripting";
    default: return NULL;
    }
}

const char *command_flag_name(unsigned bit)
{
    switch (bit) {
    case CMD_WRITE: return "write";
    case CMD_READONLY: return "readonly";
    case CMD_DENYOOM: return "denyoom";
    case CMD_ADMIN: return "admin";
    case CMD_PUBSUB: return "pubsub";
    case CMD_NOSCRIPT: return "noscript";
    case CMD_LOADING: return "loading";
    case CMD_STALE: return "stale";
    case CMD_SKIP_SLOWLOG: return "skip_slowlog";
    case CMD_FAST: return "fast";
    case CMD_NO_AUTH: return "no_auth";
    case CMD_MAY_REPLICATE: return "may_replicate";
    case CMD_NO_MULTI: return "no_multi";
    case CMD_ALLOW_BUSY: return "allow_busy";
    case CMD_NO_ASYNC_LOADING: return "no_async_loading";
    default: return NULL;
    }
}
