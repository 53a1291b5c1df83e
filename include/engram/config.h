/* config.h -- server settings: defaults, then the config file, then
 * --name value flags, then CONFIG SET at run time.
 *
 * Settings are data: one table in config.c lists each name, its type
 * (int, memory size with k/kb/m/mb/g/gb suffixes, bool yes/no, enum, string,
 * or special), default, range, whether it may change at run time, and where
 * it lives in `struct config`.  CONFIG GET, CONFIG SET, CONFIG REWRITE,
 * engram.conf and docs come from that table.
 *
 * File format (Redis's): one setting per line, `name value...`, '#' starts a
 * comment line, arguments split with Redis's quoting rules; multi-word values
 * (client-output-buffer-limit) are the remaining words joined by spaces.
 *
 * Pure: no I/O except config_load_file/config_rewrite.  Loop thread only.
 * Errors: functions return 0 or -1 and write a message naming the setting
 * and value into err (always NUL-terminated). */
#ifndef ENGRAM_CONFIG_H
#define ENGRAM_CONFIG_H

#include <stddef.h>
#include <stdio.h>

enum { LOG_DEBUG = 0, LOG_VERBOSE, LOG_NOTICE, LOG_WARNING };

/* The most proto-max-bulk-len can be set to (2 GiB, as Redis): no string
 * a client writes, whole or grown by APPEND/SETRANGE, is ever longer. */
#define CONFIG_BULK_LEN_MAX (2048LL * 1024 * 1024)

/* notify-keyspace-events: Redis's classes of keyspace events, as Redis's
 * bits, each with the letter that turns it on.  K and E choose the
 * channels (__keyspace@<db>__:<key>, __keyevent@<db>__:<event>), the
 * others which events are published; A is every class but m and n.
 * src/server/notify.h publishes by them. */
enum {
    NOTIFY_KEYSPACE = 1 << 0,   /* K */
    NOTIFY_KEYEVENT = 1 << 1,   /* E */
    NOTIFY_GENERIC = 1 << 2,    /* g: del, expire, rename_from, ... */
    NOTIFY_STRING = 1 << 3,     /* $ */
    NOTIFY_LIST = 1 << 4,       /* l (engram has no lists: never sent) */
    NOTIFY_SET = 1 << 5,        /* s (none) */
    NOTIFY_HASH = 1 << 6,       /* h */
    NOTIFY_ZSET = 1 << 7,       /* z (none) */
    NOTIFY_EXPIRED = 1 << 8,    /* x */
    NOTIFY_EVICTED = 1 << 9,    /* e: evicted (maxmemory) */
    NOTIFY_STREAM = 1 << 10,    /* t (none) */
    NOTIFY_KEY_MISS = 1 << 11,  /* m: keymiss, not in A */
    NOTIFY_MODULE = 1 << 13,    /* d: module types (engram: vector sets) */
    NOTIFY_NEW = 1 << 14,       /* n: a key was created, not in A */
    NOTIFY_ALL = NOTIFY_GENERIC | NOTIFY_STRING | NOTIFY_LIST | NOTIFY_SET | NOTIFY_HASH |
                 NOTIFY_ZSET | NOTIFY_EXPIRED | NOTIFY_EVICTED | NOTIFY_STREAM |
                 NOTIFY_MODULE, /* A */
};

/* maxmemory-policy values (the order of config.c's names). */
enum {
    MAXMEMORY_NOEVICTION, MAXMEMORY_ALLKEYS_LRU, MAXMEMORY_VOLATILE_LRU, MAXMEMORY_ALLKEYS_LFU,
    MAXMEMORY_VOLATILE_LFU, MAXMEMORY_ALLKEYS_RANDOM, MAXMEMORY_VOLATILE_RANDOM,
    MAXMEMORY_VOLATILE_TTL,
};

typedef struct config {
    /* network */
    char *bind;                     /* "127.0.0.1"; space-separated list allowed */
    int port;                       /* 6380 */
    int tcp_backlog;                /* 511 */
    long long tcp_keepalive;        /* 300 s, 0 = off */
    long long timeout;              /* idle client timeout, s; 0 = off */
    int maxclients;                 /* 10000 */
    /* limits */
    long long proto_max_bulk_len;   /* 512mb */
    long long client_query_buffer_limit; /* 1gb */
    long long obuf_hard;            /* client-output-buffer-limit normal: hard bytes (0 = none) */
    long long obuf_soft;            /* soft bytes (0 = none) */
    long long obuf_soft_seconds;    /* soft limit must persist this long */
    long long obuf_replica[3];      /* slave/replica class: hard, soft, seconds (a
                                       replica's stream: repl_master.c) */
    long long obuf_pubsub[3];       /* pubsub class: clients with subscriptions */
    int notify_keyspace_events;     /* NOTIFY_* bits; 0 = off */
    /* memory management */
    long long maxmemory;            /* bytes; 0 = no limit */
    int maxmemory_policy;           /* MAXMEMORY_* */
    int maxmemory_samples;          /* 5 */
    int lfu_log_factor;             /* 10 */
    int lfu_decay_time;             /* 1 minute */
    /* security */
    char *requirepass;              /* "" = no password */
    char *aclfile;                  /* "" = users only from ACL SETUSER */
    char *rename_commands;          /* "old new old new ...": rename-command lines ("" = disabled) */
    int protected_mode;             /* yes */
    long long acllog_max_len;       /* 128 */
    /* server */
    int daemonize;                  /* 0; 1 = detach (main forks before the loop) */
    int hz;                         /* 10: timer frequency for expiry and timeouts */
    int loglevel;                   /* LOG_NOTICE */
    char *logfile;                  /* "" = stderr */
    int databases;                  /* 1 (only db 0 exists) */
    /* persistence */
    char *dir;                      /* "" = in memory only; else the WAL and snapshots live here */
    int appendonly;                 /* 0 no / 1 yes: follows dir (yes exactly when dir is set) */
    int appendfsync;                /* 0 always, 1 everysec, 2 no */
    int auto_rewrite_pct;           /* auto snapshot when the log grew this % since the last one; 0 = off */
    long long auto_rewrite_min;     /* ... and is at least this many bytes */
    int wal_truncate_corrupt;       /* start-up: cut a log at a corrupt record instead of refusing */
    int save;                       /* enum index: only "" (snapshots follow the log's growth) */
    char *pidfile;                  /* "" = none */
    char *simd;                     /* auto|scalar|avx2|avx512|neon */
    int search_threads;             /* 0 = number of cores */
    int search_nice;                /* workers' priority below the loop's */
    char *embedders;                /* "name path name path ...": `embedder` lines, appended */
    /* hashes: when a compact hash becomes a hash table */
    long long hash_max_listpack_entries;  /* 128 */
    long long hash_max_listpack_value;    /* 64 bytes */
    /* replication (src/server/repl*.c) */
    char *replicaof;                /* "host port", or "" = a primary */
    char *masterauth;               /* password for our master; "" = none */
    char *masteruser;               /* its user (AUTH user pass); "" = none */
    int replica_read_only;          /* 1: writes from clients refused on a replica */
    long long repl_backlog_size;    /* 1mb */
    long long repl_ping_period;     /* repl-ping-replica-period, s */
    long long repl_timeout;         /* s */
    long long replica_priority;     /* 100 (Sentinel reads it) */
    char *replica_announce_ip;      /* "" = the address the master sees */
    int replica_serve_stale_data;   /* 1: a replica whose link is down still answers */
    long long min_replicas_to_write;/* 0 = off */
    long long min_replicas_max_lag; /* s */
    long long replica_announce_port;/* 0 = our port */
    /* where the settings came from, for CONFIG REWRITE ("" = no file) */
    char *config_file;
} config;

void config_init(config *c);        /* defaults */
void config_fini(config *c);

/* Set one setting from its text form (names are case-insensitive; multi-word
 * values are one string of space-separated words).  A rejected value changes
 * nothing.  runtime != 0 means CONFIG SET: settings that cannot change while
 * running are refused, and err is Redis's reply text without "ERR ":
 *   Unknown option or number of arguments for CONFIG SET - 'foo'
 *   CONFIG SET failed (possibly related to argument 'port') - can't set immutable config
 *   CONFIG SET failed (possibly related to argument 'hz') - argument must be between 1 and 500 inclusive
 * runtime == 0 (start-up) names setting and value:
 *   invalid value for 'port': '99999' (argument must be between 0 and 65535 inclusive) */
int config_set(config *c, const char *name, const char *value, int runtime,
               char *err, size_t errcap);

/* Format a setting's current value (as CONFIG GET shows it: sizes as byte
 * counts, yes/no, enum names).  0 on success, -1 if unknown (buf = ""),
 * -2 if it did not fit in cap (buf holds a truncated, terminated prefix). */
int config_get(const config *c, const char *name, char *buf, size_t cap);

/* Iterate the settings table in order: returns NULL past the end. */
const char *config_name_at(size_t i);
/* One line of help for setting i (for engram.conf and --help). */
const char *config_help_at(size_t i);
/* Setting i's default as written in a file ("512mb"); NULL past the end. */
const char *config_default_at(size_t i);
/* 1 if CONFIG SET may change setting i, 0 if not, -1 past the end. */
int config_mutable_at(size_t i);

/* Load a file (lines as above).  Error messages name the file, the line
 * number and the setting ("engram.conf:12: invalid value for 'port': ...").
 * Lines before a bad one stay applied (main exits anyway).  On success
 * c->config_file becomes the file's absolute path. */
int config_load_file(config *c, const char *path, char *err, size_t errcap);

/* Command line: `engram [config-file] [--name value ...]`.  Applies the file
 * (if the first argument does not start with "--"), then the flags, in
 * order.  --help / --version are handled by main before this. */
int config_from_args(config *c, int argc, char **argv, char *err, size_t errcap);

/* Rewrite c->config_file in place: existing lines for known settings are
 * updated, settings differing from their defaults are appended, comments
 * kept.  -1 with a message if there is no file or writing fails. */
int config_rewrite(const config *c, char *err, size_t errcap);

/* Write engram.conf: every setting at its default with its help (the shipped
 * engram.conf is this output; a unit test keeps them equal).  0, or -1 on a
 * write error. */
int config_write_default(FILE *f);

/* Parse "512mb"-style sizes (Redis memtoll).  Returns 1 on success. */
int config_parse_memory(const char *s, long long *out);

#endif
