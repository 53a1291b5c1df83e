/* command.h -- commands as data: the one command table and what dispatch
 * reads from it.
 *
 * Every command engram answers is declared once, in commands.c, as a
 * `command` with designated initializers: name, handler, arity, key
 * positions, flags, ACL categories and its documentation.  A container
 * command (CONFIG, CLIENT, COMMAND, DEBUG) lists its subcommands as
 * commands of their own, with their own arity and flags.  Everything that
 * needs to know about commands reads this table and nothing else: dispatch
 * (dispatch.c: lookup, arity, authentication, MULTI, loading, deferred
 * replies), COMMAND INFO/DOCS/LIST/COUNT/GETKEYS (cmd_command.c), INFO
 * commandstats, and later ACL categories and cluster routing.
 *
 * Arity: N > 0 means exactly N arguments, -N at least N; argv[0] counts,
 * and a subcommand counts from its container's name (CONFIG GET is -3).
 * Keys: Redis's legacy triple -- the first key's position, the last's (a
 * negative one counts from the end: -1 is the last argument) and the step
 * between keys; 0 0 0 for a command without keys.
 *
 * Loop thread only (the table's statistics are plain counters). */
#ifndef ENGRAM_COMMAND_H
#define ENGRAM_COMMAND_H

#include <stddef.h>

typedef struct client client;
typedef void command_fn(client *c);

/* Flags.  The first group has Redis's names and meanings and is what
 * COMMAND INFO shows; the second is engram's own and is not shown. */
enum {
    CMD_WRITE = 1u << 0,             /* may modify the keyspace */
    CMD_READONLY = 1u << 1,          /* reads keys, changes nothing */
    CMD_DENYOOM = 1u << 2,           /* may grow memory (refused at maxmemory) */
    CMD_ADMIN = 1u << 3,             /* administrative */
    CMD_PUBSUB = 1u << 4,            /* a pub/sub command */
    CMD_NOSCRIPT = 1u << 5,          /* not allowed in scripts */
    CMD_LOADING = 1u << 6,           /* allowed while the dataset loads */
    CMD_STALE = 1u << 7,             /* allowed on a replica with stale data */
    CMD_SKIP_SLOWLOG = 1u << 8,
    CMD_FAST = 1u << 9,              /* O(1) or O(log n), never delays the loop */
    CMD_NO_AUTH = 1u << 10,          /* allowed before authentication */
    CMD_MAY_REPLICATE = 1u << 11,    /* may cause replication traffic */
    CMD_NO_MULTI = 1u << 12,         /* refused inside MULTI */
    CMD_ALLOW_BUSY = 1u << 13,
    CMD_NO_ASYNC_LOADING = 1u << 14,
    CMD_SHOWN = (1u << 15) - 1,      /* the flags above */

    CMD_NOQUEUE = 1u << 16,          /* inside MULTI it runs at once instead of
                                        being queued (EXEC, DISCARD, MULTI,
                                        WATCH, QUIT, RESET) */
    CMD_DEFERRED = 1u << 17,         /* its reply may be computed off the loop
                                        (deferred.h): while a client waits for
                                        such replies it may send more of these
                                        and nothing else */
    CMD_NO_CLUSTER = 1u << 18,       /* refused in cluster mode */
    CMD_SUBSCRIBED = 1u << 19,       /* allowed to a RESP2 client with subscriptions
                                        (the (P|S)(UN)SUBSCRIBE family, PING, QUIT,
                                        RESET); it may run nothing else */
};

/* ACL categories (Redis's names, "@" dropped), as bits.  A command's
 * categories are those its flags and group imply (command_categories)
 * plus the ones its table entry adds. */
enum {
    CAT_KEYSPACE = 1u << 0, CAT_READ = 1u << 1, CAT_WRITE = 1u << 2, CAT_STRING = 1u << 3,
    CAT_HASH = 1u << 4, CAT_PUBSUB = 1u << 5, CAT_ADMIN = 1u << 6, CAT_FAST = 1u << 7,
    CAT_SLOW = 1u << 8, CAT_DANGEROUS = 1u << 9, CAT_CONNECTION = 1u << 10,
    CAT_TRANSACTION = 1u << 11, CAT_VECTORSET = 1u << 12, CAT_SEARCH = 1u << 13,
    /* Redis's categories for types and features engram does not have: no
     * command is in them, but ACL rules may name them (-@scripting) */
    CAT_SET = 1u << 14, CAT_SORTEDSET = 1u << 15, CAT_LIST = 1u << 16, CAT_BITMAP = 1u << 17,
    CAT_HYPERLOGLOG = 1u << 18, CAT_GEO = 1u << 19, CAT_STREAM = 1u << 20,
    CAT_BLOCKING = 1u << 21, CAT_SCRIPTING = 1u << 22,
};

typedef struct command command;
struct command {
    const char *name;        /* lower case; a subcommand's own word ("get") */
    command_fn *fn;          /* NULL for a container: its subcommand runs */
    int arity;
    unsigned flags;          /* CMD_* */
    unsigned acl;            /* CAT_* beyond those implied */
    int first_key, last_key, key_step;
    const char *group;       /* Redis's command group: "string", "generic", ... */
    const char *since;       /* the Redis version that has it, or "engram x.y.z" */
    const char *summary;
    const char *tips;        /* Redis's command tips, space separated; NULL: none */
    const char *module;      /* a Redis module's command ("vectorset"): named in
                              * capitals, as a module declares it, in replies and
                              * arity errors; COMMAND DOCS names the module */
    command *subs;           /* a container's subcommands, ended by a NULL name */

    /* Filled in by command_table_init (and command_rename). */
    const char *lookup;      /* the name requests use: name, or rename-command's;
                                NULL: disabled by rename-command NAME "" */
    command *parent;         /* the container of a subcommand */
    char *fullname;          /* "config|get"; the name itself for a command */
    unsigned categories;     /* every CAT_* */
    size_t all_index;        /* its position for command_all_at (ACL bits) */
    /* INFO commandstats (reset by CONFIG RESETSTAT) */
    long long calls, usec, rejected, failed;
};

/* The table (commands.c): top-level commands, ended by a NULL name. */
extern command command_table[];

/* Build the name index, full names and categories; once, at start-up. */
void command_table_init(void);
/* rename-command (config file only, before serving): requests name k by
 * newname from now on (NULL or "": k is unreachable).  0, or -1 when
 * newname is taken or too long. */
int command_rename(command *k, const char *newname);
/* The top-level command whose table name (before rename-command) is this
 * (any case), or NULL: what ACL rules name.  A linear search. */
command *command_lookup_original(const char *name, size_t len);
/* The top-level command with this name (any case), or NULL. */
command *command_lookup(const char *name, size_t len);
/* A container's subcommand with this name (any case), or NULL. */
command *command_lookup_sub(const command *container, const char *name, size_t len);
/* Top-level commands, in table order (COMMAND COUNT counts these). */
size_t command_count(void);
command *command_at(size_t i);
/* Every command and subcommand, containers before their subcommands. */
size_t command_all_count(void);
command *command_all_at(size_t i);
/* 1 if argc arguments fit k's arity. */
int command_arity_ok(const command *k, int argc);
/* The argument positions of k's keys for a request of argc arguments into
 * pos (room for max); returns how many (Redis's legacy triple). */
int command_keys(const command *k, int argc, int *pos, int max);
/* Name of a CAT_* bit ("keyspace"), or NULL. */
const char *command_category_name(unsigned bit);
/* The CMD_* flag's name as COMMAND INFO shows it ("readonly"), or NULL for
 * engram's own flags. */
const char *command_flag_name(unsigned bit);

#endif
