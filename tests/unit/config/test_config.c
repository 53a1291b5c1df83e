/* test_config.c -- the settings table: defaults, every type's parser and its
 * Redis error texts, run-time immutability, the file and command-line
 * parsers (with file:line errors and defaults < file < flags precedence),
 * client-output-buffer-limit, CONFIG REWRITE round trips, and the shipped
 * engram.conf (must equal config_write_default and load to the defaults).
 *
 * The expected error texts were taken from a real redis-server 7.0.15.
 * Files are written in a private mkdtemp directory, removed at the end.
 *
 * Set ENGRAM_WRITE_CONF=1 to regenerate the shipped engram.conf from the
 * table instead of comparing against it. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "engram/config.h"
#include "engram/mem.h"

static char tmpdir[PATH_MAX];

/* ---- helpers ------------------------------------------------------------------ */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    char *p = malloc(cap);
    size_t n;
    while ((n = fread(p + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) p = realloc(p, cap *= 2);
    }
    fclose(f);
    p[len] = '\0';
    return p;
}

static void spit(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* A path inside the test's temp dir (static buffer, one at a time). */
static const char *tmp_path(const char *name)
{
    static char buf[PATH_MAX + 64];
    snprintf(buf, sizeof(buf), "%s/%s", tmpdir, name);
    return buf;
}

static void get_eq(const config *c, const char *name, const char *want)
{
    char buf[512];
    assert_int_equal(config_get(c, name, buf, sizeof(buf)), 0);
    assert_string_equal(buf, want);
}

/* Every setting of a and b formats the same. */
static void same_settings(const config *a, const config *b)
{
    char va[512], vb[512];
    for (size_t i = 0; config_name_at(i); i++) {
        assert_int_equal(config_get(a, config_name_at(i), va, sizeof(va)), 0);
        assert_int_equal(config_get(b, config_name_at(i), vb, sizeof(vb)), 0);
        if (strcmp(va, vb) != 0) fail_msg("%s: '%s' != '%s'", config_name_at(i), va, vb);
    }
}

static void set_ok(config *c, const char *name, const char *value, int runtime)
{
    char err[256] = "";
    if (config_set(c, name, value, runtime, err, sizeof(err)) != 0)
        fail_msg("set %s '%s': %s", name, value, err);
}

/* config_set fails with exactly `want`, and the setting keeps its value. */
static void set_err(config *c, const char *name, const char *value, int runtime,
                    const char *want)
{
    char err[512] = "", before[512] = "", after[512] = "";
    int known = config_get(c, name, before, sizeof(before)) == 0;
    assert_int_equal(config_set(c, name, value, runtime, err, sizeof(err)), -1);
    assert_string_equal(err, want);
    if (known) {
        assert_int_equal(config_get(c, name, after, sizeof(after)), 0);
        assert_string_equal(before, after);
    }
}

static void set_rt_err(config *c, const char *name, const char *value, const char *reason)
{
    char want[512];
    snprintf(want, sizeof(want), "CONFIG SET failed (possibly related to argument '%s') - %s",
             name, reason);
    set_err(c, name, value, 1, want);
}

static int args(config *c, char *err, size_t cap, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    va_start(ap, cap);
    argv[argc++] = "engram";
    for (char *a; (a = va_arg(ap, char *)) != NULL;) argv[argc++] = a;
    va_end(ap);
    return config_from_args(c, argc, argv, err, cap);
}

static int load(config *c, const char *name, const char *text, char *err, size_t cap)
{
    spit(tmp_path(name), text);
    return config_load_file(c, tmp_path(name), err, cap);
}

/* ---- defaults and the table ----------------------------------------------------- */

static void test_defaults(void **state)
{
    config c;
    config_init(&c);
    assert_string_equal(c.bind, "127.0.0.1");
    assert_int_equal(c.port, 6380);
    assert_int_equal(c.tcp_backlog, 511);
    assert_int_equal(c.tcp_keepalive, 300);
    assert_int_equal(c.timeout, 0);
    assert_int_equal(c.maxclients, 10000);
    assert_int_equal(c.proto_max_bulk_len, 512LL * 1024 * 1024);
    assert_int_equal(c.client_query_buffer_limit, 1024LL * 1024 * 1024);
    assert_int_equal(c.obuf_hard, 0);
    assert_int_equal(c.obuf_soft, 0);
    assert_int_equal(c.obuf_soft_seconds, 0);
    assert_int_equal(c.obuf_replica[0], 268435456);
    assert_int_equal(c.obuf_replica[1], 67108864);
    assert_int_equal(c.obuf_replica[2], 60);
    assert_int_equal(c.obuf_pubsub[0], 33554432);
    assert_int_equal(c.obuf_pubsub[1], 8388608);
    assert_int_equal(c.obuf_pubsub[2], 60);
    assert_string_equal(c.requirepass, "");
    assert_int_equal(c.daemonize, 0);
    assert_int_equal(c.hz, 10);
    assert_int_equal(c.loglevel, LOG_NOTICE);
    assert_string_equal(c.logfile, "");
    assert_int_equal(c.databases, 16);
    assert_string_equal(c.pidfile, "");
    assert_string_equal(c.simd, "auto");
    assert_int_equal(c.search_threads, 0);
    assert_int_equal(c.search_nice, 10);
    assert_string_equal(c.config_file, "");

    /* As CONFIG GET shows them (Redis's forms). */
    get_eq(&c, "bind", "127.0.0.1");
    get_eq(&c, "port", "6380");
    get_eq(&c, "proto-max-bulk-len", "536870912");
    get_eq(&c, "client-query-buffer-limit", "1073741824");
    get_eq(&c, "client-output-buffer-limit",
           "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60");
    get_eq(&c, "requirepass", "");
    get_eq(&c, "daemonize", "no");
    get_eq(&c, "loglevel", "notice");
    get_eq(&c, "simd", "auto");
    get_eq(&c, "databases", "16");
    config_fini(&c);
    config_fini(&c);    /* twice is harmless */
}

static void test_table(void **state)
{
    size_t n = 0;
    for (; config_name_at(n); n++) {
        const char *name = config_name_at(n);
        assert_non_null(config_help_at(n));
        assert_true(strlen(config_help_at(n)) > 10);
        assert_non_null(config_default_at(n));
        assert_true(config_mutable_at(n) == 0 || config_mutable_at(n) == 1);
        for (const char *p = name; *p; p++) assert_true((*p >= 'a' && *p <= 'z') || *p == '-');
        for (size_t j = 0; j < n; j++) assert_string_not_equal(name, config_name_at(j));
    }
    assert_int_equal(n, 52);
    assert_null(config_help_at(n));
    assert_null(config_default_at(n));
    assert_int_equal(config_mutable_at(n), -1);
}

/* The hash encodings' thresholds: Redis's defaults, names and types (the
 * value length takes memory units, as Redis's MEMORY_CONFIG). */
static void test_hash_settings(void **state)
{
    config c;
    char buf[32], err[256];
    (void)state;
    config_init(&c);
    assert_int_equal(c.hash_max_listpack_entries, 128);
    assert_int_equal(c.hash_max_listpack_value, 64);
    assert_int_equal(config_set(&c, "hash-max-listpack-entries", "0", 1, err, sizeof err), 0);
    assert_int_equal(config_set(&c, "hash-max-listpack-value", "1kb", 1, err, sizeof err), 0);
    assert_int_equal(config_get(&c, "hash-max-listpack-value", buf, sizeof buf), 0);
    assert_string_equal(buf, "1024");
    assert_int_equal(config_set(&c, "hash-max-listpack-entries", "-1", 1, err, sizeof err), -1);
    assert_int_equal(config_set(&c, "hash-max-listpack-entries", "1kb", 1, err, sizeof err), -1);
    assert_int_equal(c.hash_max_listpack_entries, 0);
    config_fini(&c);
}

static void test_get(void **state)
{
    config c;
    char buf[8];
    config_init(&c);
    assert_int_equal(config_get(&c, "nope", buf, sizeof(buf)), -1);
    assert_string_equal(buf, "");
    assert_int_equal(config_get(&c, "PORT", buf, sizeof(buf)), 0);   /* case-insensitive */
    assert_string_equal(buf, "6380");
    assert_int_equal(config_get(&c, "client-output-buffer-limit", buf, sizeof(buf)), -2);
    assert_string_equal(buf, "normal ");
    assert_int_equal(config_get(&c, "port", buf, 4), -2);
    assert_string_equal(buf, "638");
    assert_int_equal(config_get(&c, "port", buf, 5), 0);
    config_fini(&c);
}

/* ---- each type ---------------------------------------------------------------- */

static void test_int(void **state)
{
    config c;
    config_init(&c);
    set_ok(&c, "port", "0", 0);
    assert_int_equal(c.port, 0);
    set_ok(&c, "port", "65535", 0);
    assert_int_equal(c.port, 65535);
    set_ok(&c, "maxclients", "1", 1);
    assert_int_equal(c.maxclients, 1);
    set_ok(&c, "Timeout", "2147483647", 1);
    assert_int_equal(c.timeout, 2147483647);
    set_ok(&c, "hz", "500", 1);
    set_ok(&c, "search-threads", "256", 0);
    set_ok(&c, "search-nice", "0", 0);
    set_ok(&c, "search-nice", "19", 0);
    assert_int_equal(c.search_nice, 19);

    const char *bad[] = {"abc", "", " 5", "5 ", "+5", "010", "5.5", "1e3", "0x10",
                         "99999999999999999999", "1k"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        set_rt_err(&c, "hz", bad[i], "argument couldn't be parsed into an integer");
    set_rt_err(&c, "hz", "0", "argument must be between 1 and 500 inclusive");
    set_rt_err(&c, "hz", "501", "argument must be between 1 and 500 inclusive");
    set_rt_err(&c, "maxclients", "0",
               "argument must be between 1 and 2147483647 inclusive");
    set_rt_err(&c, "maxclients", "-5",
               "argument must be between 1 and 2147483647 inclusive");
    set_rt_err(&c, "timeout", "-1", "argument must be between 0 and 2147483647 inclusive");
    set_rt_err(&c, "tcp-keepalive", "99999999999",
               "argument must be between 0 and 2147483647 inclusive");
    set_err(&c, "port", "99999", 0,
            "invalid value for 'port': '99999' (argument must be between 0 and 65535 inclusive)");
    set_err(&c, "search-threads", "257", 0,
            "invalid value for 'search-threads': '257' (argument must be between 0 and 256 inclusive)");
    set_err(&c, "search-nice", "20", 0,
            "invalid value for 'search-nice': '20' (argument must be between 0 and 19 inclusive)");
    set_err(&c, "databases", "0", 0,
            "invalid value for 'databases': '0' (argument must be between 1 and 2147483647 inclusive)");
    set_ok(&c, "databases", "1", 0);
    config_fini(&c);
}

static void test_memory_parse(void **state)
{
    static const struct { const char *s; long long v; } ok[] = {
        {"0", 0}, {"1", 1}, {"1b", 1}, {"1B", 1}, {"1k", 1000}, {"1K", 1000}, {"1kb", 1024},
        {"1KB", 1024}, {"1kB", 1024}, {"1m", 1000000}, {"1mb", 1048576}, {"1Mb", 1048576},
        {"1g", 1000000000}, {"1gb", 1073741824}, {"1GB", 1073741824}, {"512mb", 536870912},
        {"01048576", 1048576}, {"9223372036854775807", LLONG_MAX},
        {"8589934591gb", 8589934591LL * 1073741824},
    };
    static const char *const bad[] = {
        "", "mb", "-1", "-1mb", "+1", "1.5mb", "1 mb", " 1", "1 ", "1x", "1kbb", "1zb", "1bk",
        "9223372036854775808", "8589934592gb", "99999999999999999999999",
    };
    long long v;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        v = -1;
        if (!config_parse_memory(ok[i].s, &v)) fail_msg("rejected '%s'", ok[i].s);
        assert_int_equal(v, ok[i].v);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (config_parse_memory(bad[i], &v)) fail_msg("accepted '%s'", bad[i]);
}

static void test_memory_setting(void **state)
{
    config c;
    config_init(&c);
    set_ok(&c, "proto-max-bulk-len", "2MB", 1);
    assert_int_equal(c.proto_max_bulk_len, 2097152);
    get_eq(&c, "proto-max-bulk-len", "2097152");
    set_ok(&c, "proto-max-bulk-len", "1048576", 1);
    set_ok(&c, "client-query-buffer-limit", "4gb", 1);
    assert_int_equal(c.client_query_buffer_limit, 4LL << 30);
    set_rt_err(&c, "proto-max-bulk-len", "1k",
               "argument must be between 1048576 and 2147483648 inclusive");
    set_rt_err(&c, "client-query-buffer-limit", "100",
               "argument must be between 1048576 and 9223372036854775807 inclusive");
    set_rt_err(&c, "proto-max-bulk-len", "abc", "argument must be a memory value");
    set_rt_err(&c, "proto-max-bulk-len", "1zb", "argument must be a memory value");
    set_rt_err(&c, "proto-max-bulk-len", "-1mb", "argument must be a memory value");
    set_rt_err(&c, "proto-max-bulk-len", "1.5mb", "argument must be a memory value");
    config_fini(&c);
}

/* `embedder NAME PATH` is repeatable: each occurrence adds its words. */
static void test_append_setting(void **state)
{
    config c;
    config_init(&c);
    get_eq(&c, "embedder", "");
    set_ok(&c, "embedder", "glove /m/glove.txt", 0);
    set_ok(&c, "embedder", "w2v   /m/w2v.bin", 0);
    get_eq(&c, "embedder", "glove /m/glove.txt w2v /m/w2v.bin");
    set_err(&c, "embedder", "x /y", 1,
            "CONFIG SET failed (possibly related to argument 'embedder') - can't set immutable config");
    get_eq(&c, "embedder", "glove /m/glove.txt w2v /m/w2v.bin");
    config_fini(&c);
}

static void test_bool_enum_string(void **state)
{
    config c;
    config_init(&c);
    set_ok(&c, "daemonize", "YES", 0);
    assert_int_equal(c.daemonize, 1);
    get_eq(&c, "daemonize", "yes");
    set_ok(&c, "daemonize", "no", 0);
    assert_int_equal(c.daemonize, 0);
    set_err(&c, "daemonize", "maybe", 0,
            "invalid value for 'daemonize': 'maybe' (argument must be 'yes' or 'no')");
    set_err(&c, "daemonize", "1", 0,
            "invalid value for 'daemonize': '1' (argument must be 'yes' or 'no')");

    set_ok(&c, "loglevel", "DEBUG", 1);
    assert_int_equal(c.loglevel, LOG_DEBUG);
    get_eq(&c, "loglevel", "debug");
    set_ok(&c, "loglevel", "warning", 1);
    assert_int_equal(c.loglevel, LOG_WARNING);
    set_ok(&c, "loglevel", "verbose", 1);
    assert_int_equal(c.loglevel, LOG_VERBOSE);
    set_rt_err(&c, "loglevel", "foo",
               "argument(s) must be one of the following: debug, verbose, notice, warning");
    set_rt_err(&c, "loglevel", "",
               "argument(s) must be one of the following: debug, verbose, notice, warning");

    set_ok(&c, "simd", "AVX2", 0);
    assert_string_equal(c.simd, "avx2");
    for (const char *const *s = (const char *const[]){"auto", "scalar", "avx512", "neon", NULL};
         *s; s++) {
        set_ok(&c, "simd", *s, 0);
        assert_string_equal(c.simd, *s);
    }
    set_err(&c, "simd", "sse", 0,
            "invalid value for 'simd': 'sse' (argument(s) must be one of the following: "
            "auto, scalar, avx2, avx512, neon)");

    set_ok(&c, "requirepass", "a b\"c", 1);
    assert_string_equal(c.requirepass, "a b\"c");
    get_eq(&c, "requirepass", "a b\"c");
    set_ok(&c, "requirepass", "", 1);
    assert_string_equal(c.requirepass, "");
    set_ok(&c, "pidfile", "/tmp/x y.pid", 0);
    assert_string_equal(c.pidfile, "/tmp/x y.pid");

    /* bind: words, normalised to single spaces. */
    set_ok(&c, "bind", "  10.0.0.1 \t ::1  ", 0);
    assert_string_equal(c.bind, "10.0.0.1 ::1");
    set_err(&c, "bind", "  ", 0, "invalid value for 'bind': '  ' (argument must not be empty)");
    assert_string_equal(c.bind, "10.0.0.1 ::1");
    config_fini(&c);
}

static void test_unknown_and_immutable(void **state)
{
    config c;
    config_init(&c);
    set_err(&c, "foo", "1", 1, "Unknown option or number of arguments for CONFIG SET - 'foo'");
    set_err(&c, "foo", "1", 0, "unknown setting 'foo'");
    set_err(&c, NULL, "1", 1, "Unknown option or number of arguments for CONFIG SET - ''");

    for (size_t i = 0; config_name_at(i); i++) {
        const char *name = config_name_at(i);
        char val[512];
        assert_int_equal(config_get(&c, name, val, sizeof(val)), 0);
        if (config_mutable_at(i)) {
            set_ok(&c, name, val, 1);   /* setting the current value is fine */
        } else {
            /* Refused before the value is even looked at, as in Redis. */
            set_rt_err(&c, name, val, "can't set immutable config");
            set_rt_err(&c, name, "garbage", "can't set immutable config");
            set_ok(&c, name, val, 0);   /* but fine at start-up */
        }
    }
    static const char *const immutable[] = {"bind", "port", "tcp-backlog", "databases",
                                            "logfile", "pidfile", "simd", "search-threads",
                                            "daemonize"};
    for (size_t i = 0; i < sizeof(immutable) / sizeof(immutable[0]); i++) {
        size_t j = 0;
        while (strcmp(config_name_at(j), immutable[i]) != 0) j++;
        assert_int_equal(config_mutable_at(j), 0);
    }
    /* Redis names the setting in its canonical spelling. */
    set_err(&c, "PORT", "1", 1,
            "CONFIG SET failed (possibly related to argument 'port') - can't set immutable config");
    set_ok(&c, "PORT", "7000", 0);
    assert_int_equal(c.port, 7000);
    config_fini(&c);
}

/* ---- notify-keyspace-events ----------------------------------------------------- */

/* Redis 7.0.15's CONFIG GET after CONFIG SET, and its error text. */
static void test_notify_events(void **state)
{
    const char *name = "notify-keyspace-events";
    config c;
    config_init(&c);
    get_eq(&c, name, "");
    assert_int_equal(c.notify_keyspace_events, 0);
    set_ok(&c, name, "KEA", 1);
    get_eq(&c, name, "AKE");
    assert_int_equal(c.notify_keyspace_events, NOTIFY_ALL | NOTIFY_KEYSPACE | NOTIFY_KEYEVENT);
    set_ok(&c, name, "gKEn$x", 1);
    get_eq(&c, name, "g$xnKE");
    set_ok(&c, name, "g", 1);
    get_eq(&c, name, "g");
    set_ok(&c, name, "AmnKEd", 1);        /* A hides n, as in Redis; n is still set */
    get_eq(&c, name, "AKEm");
    assert_true(c.notify_keyspace_events & NOTIFY_NEW);
    set_ok(&c, name, "lszhte", 1);
    get_eq(&c, name, "lshzet");
    set_rt_err(&c, name, "KEZ", "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.");
    set_rt_err(&c, name, "K E", "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.");
    get_eq(&c, name, "lshzet");
    set_ok(&c, name, "", 1);
    assert_int_equal(c.notify_keyspace_events, 0);
    config_fini(&c);
}

/* ---- client-output-buffer-limit ------------------------------------------------- */

static void test_obuf(void **state)
{
    const char *name = "client-output-buffer-limit";
    config c;
    config_init(&c);
    set_ok(&c, name, "normal 1mb 2mb 30", 1);
    assert_int_equal(c.obuf_hard, 1048576);
    assert_int_equal(c.obuf_soft, 2097152);
    assert_int_equal(c.obuf_soft_seconds, 30);
    get_eq(&c, name, "normal 1048576 2097152 30 slave 268435456 67108864 60 "
                     "pubsub 33554432 8388608 60");
    set_ok(&c, name, "replica 1 2 3", 1);       /* alias of slave */
    get_eq(&c, name, "normal 1048576 2097152 30 slave 1 2 3 pubsub 33554432 8388608 60");
    set_ok(&c, name, "NORMAL 1Kb 2k 3  pubsub 0 0 0", 1);
    get_eq(&c, name, "normal 1024 2000 3 slave 1 2 3 pubsub 0 0 0");
    set_ok(&c, name, "slave 5 6 7 slave 8 9 10", 1);    /* the last one wins */
    get_eq(&c, name, "normal 1024 2000 3 slave 8 9 10 pubsub 0 0 0");

    const char *nargs = "Wrong number of arguments in buffer limit configuration.";
    const char *cls = "Invalid client class specified in buffer limit configuration.";
    const char *num = "Error in hard, soft or soft_seconds setting in buffer limit configuration.";
    set_rt_err(&c, name, "", nargs);
    set_rt_err(&c, name, "normal 1 2", nargs);
    set_rt_err(&c, name, "normal 1 2 3 pubsub 4", nargs);
    set_rt_err(&c, name, "bad 1 2 3", cls);
    set_rt_err(&c, name, "normal 1 2 3 bad 1 2 3", cls);     /* normal untouched too */
    set_rt_err(&c, name, "normal 1x 2 3", num);
    set_rt_err(&c, name, "normal 1 2 x", num);
    set_rt_err(&c, name, "normal -1 2 3", num);
    set_rt_err(&c, name, "normal 1mb 2mb -1", num);
    set_rt_err(&c, name, "normal 1 2 1mb", num);
    set_err(&c, name, "normal 1", 0,
            "invalid value for 'client-output-buffer-limit': 'normal 1' "
            "(Wrong number of arguments in buffer limit configuration.)");
    assert_int_equal(c.obuf_hard, 1024);
    config_fini(&c);
}

/* ---- files ------------------------------------------------------------------------ */

static void test_file_load(void **state)
{
    config c;
    char err[512] = "";
    config_init(&c);
    int rc = load(&c, "a.conf",
                  "# a comment\n"
                  "\n"
                  "   # indented comment\n"
                  "port 7001\n"
                  "  hz 20  \r\n"                          /* blanks and CRLF */
                  "HZ 25\n"                                /* later line wins; any case */
                  "requirepass \"sec ret\\n\\x41\"\n"
                  "logfile 'a\\'b'\n"
                  "bind 10.0.0.1   ::1\n"
                  "client-output-buffer-limit normal 1mb 2mb 3\n"
                  "client-output-buffer-limit pubsub 4mb 5mb 6 replica 7 8 9\n"
                  "loglevel warning\n"
                  "proto-max-bulk-len 2gb\n"
                  "daemonize yes\n"
                  "\t\n",
                  err, sizeof(err));
    if (rc != 0) fail_msg("%s", err);
    assert_int_equal(c.port, 7001);
    assert_int_equal(c.hz, 25);
    assert_string_equal(c.requirepass, "sec ret\nA");
    assert_string_equal(c.logfile, "a'b");
    assert_string_equal(c.bind, "10.0.0.1 ::1");
    get_eq(&c, "client-output-buffer-limit",
           "normal 1048576 2097152 3 slave 7 8 9 pubsub 4194304 5242880 6");
    assert_int_equal(c.loglevel, LOG_WARNING);
    assert_int_equal(c.proto_max_bulk_len, 2LL << 30);
    assert_int_equal(c.daemonize, 1);
    /* The file is remembered with its absolute path. */
    char *abs = realpath(tmp_path("a.conf"), NULL);
    assert_string_equal(c.config_file, abs);
    free(abs);
    config_fini(&c);
}

static void test_file_quotes_adjacent_fail(void **state)
{
    /* 'it''s' is two quoted words glued: Redis's splitter rejects it. */
    config c;
    char err[512], want[PATH_MAX + 128];
    config_init(&c);
    assert_int_equal(load(&c, "q.conf", "pidfile 'it''s'\n", err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s:1: unbalanced quotes in 'pidfile 'it''s''",
             tmp_path("q.conf"));
    assert_string_equal(err, want);
    config_fini(&c);
}

static void file_err(const char *text, const char *want_tail)
{
    config c;
    char err[512], want[PATH_MAX + 256];
    config_init(&c);
    assert_int_equal(load(&c, "e.conf", text, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s:%s", tmp_path("e.conf"), want_tail);
    assert_string_equal(err, want);
    assert_string_equal(c.config_file, "");     /* not remembered on failure */
    config_fini(&c);
}

static void test_file_errors(void **state)
{
    file_err("# c\nport 7000\n\nport 99999\n",
             "4: invalid value for 'port': '99999' (argument must be between 0 and 65535 inclusive)");
    file_err("foo 1\n", "1: unknown setting 'foo'");
    file_err("include other.conf\n", "1: unknown setting 'include'");
    file_err("\n\nhz\n", "3: missing value for 'hz'");
    file_err("port 1 2\n", "1: 'port' takes one value, got 2: '1 2'");
    file_err("requirepass a b\n", "1: 'requirepass' takes one value, got 2: 'a b'");
    file_err("hz abc\n", "1: invalid value for 'hz': 'abc' (argument couldn't be parsed into an integer)");
    file_err("requirepass \"abc\n", "1: unbalanced quotes in 'requirepass \"abc'");
    file_err("requirepass \"a\\x00b\"\n", "1: value for 'requirepass' contains a NUL byte");
    /* A NUL in a later word of a multi-word value: the words before it were
     * already joined, and that buffer leaked (found by tests/fuzz/fuzz_config;
     * the ASan stage's leak check fails this test without the fix). */
    file_err("bind 127.0.0.1 \"::1\\x00\"\n", "1: value for 'bind' contains a NUL byte");
    file_err("client-output-buffer-limit normal 1 2\n",
             "1: invalid value for 'client-output-buffer-limit': 'normal 1 2' "
             "(Wrong number of arguments in buffer limit configuration.)");

    config c;
    char err[512], want[PATH_MAX + 128];
    config_init(&c);
    assert_int_equal(config_load_file(&c, tmp_path("missing.conf"), err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "can't open config file '%s': %s", tmp_path("missing.conf"),
             strerror(ENOENT));
    assert_string_equal(err, want);
    config_fini(&c);
}

/* ---- command line ---------------------------------------------------------------------- */

static void test_args(void **state)
{
    config c;
    char err[512] = "";
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s", tmp_path("args.conf"));
    spit(path, "port 7001\nhz 20\ntimeout 5\n");

    /* defaults < file < flags, flags in order */
    config_init(&c);
    if (args(&c, err, sizeof(err), path, "--port", "7002", "--hz", "30", "--HZ", "31",
             "--maxclients 50", "--client-output-buffer-limit", "normal", "1mb", "2mb", "3",
             "pubsub", "0", "0", "0", "--requirepass", "", "--bind", "1.2.3.4", "::1",
             "--loglevel", "-", NULL) == 0)
        fail_msg("'-' is not a log level");
    assert_string_equal(err, "invalid value for '--loglevel': '-' (argument(s) must be one of "
                             "the following: debug, verbose, notice, warning)");
    config_fini(&c);

    config_init(&c);
    if (args(&c, err, sizeof(err), path, "--port", "7002", "--hz", "30", "--HZ", "31",
             "--maxclients 50", "--client-output-buffer-limit", "normal", "1mb", "2mb", "3",
             "pubsub", "0", "0", "0", "--requirepass", "", "--bind", "1.2.3.4", "::1",
             "--pidfile", "-x", NULL) != 0)
        fail_msg("%s", err);
    assert_int_equal(c.port, 7002);     /* flag beats file */
    assert_int_equal(c.hz, 31);         /* later flag beats earlier */
    assert_int_equal(c.timeout, 5);     /* file beats default */
    assert_int_equal(c.maxclients, 50); /* "--name value" as one argument */
    get_eq(&c, "client-output-buffer-limit",
           "normal 1048576 2097152 3 slave 268435456 67108864 60 pubsub 0 0 0");
    assert_string_equal(c.requirepass, "");
    assert_string_equal(c.bind, "1.2.3.4 ::1");
    assert_string_equal(c.pidfile, "-x");
    char *abs = realpath(path, NULL);
    assert_string_equal(c.config_file, abs);
    free(abs);
    config_fini(&c);

    /* flags only: no file remembered */
    config_init(&c);
    assert_int_equal(args(&c, err, sizeof(err), "--port", "7003", NULL), 0);
    assert_int_equal(c.port, 7003);
    assert_string_equal(c.config_file, "");
    assert_int_equal(args(&c, err, sizeof(err), NULL), 0);
    config_fini(&c);
}

static void args_err(const char *want, ...)
{
    char *argv[16], err[512] = "";
    int argc = 0;
    va_list ap;
    config c;
    va_start(ap, want);
    argv[argc++] = "engram";
    for (char *a; (a = va_arg(ap, char *)) != NULL;) argv[argc++] = a;
    va_end(ap);
    config_init(&c);
    assert_int_equal(config_from_args(&c, argc, argv, err, sizeof(err)), -1);
    assert_string_equal(err, want);
    config_fini(&c);
}

static void test_args_errors(void **state)
{
    args_err("unknown option '--foo'", "--foo", "1", NULL);
    args_err("unknown option '--foo'", "--foo", NULL);
    args_err("option '--port' needs a value", "--port", NULL);
    args_err("option '--port' needs a value", "--port", "--hz", "5", NULL);
    args_err("option '--hz' needs a value", "--port", "1", "--hz", NULL);
    args_err("'--port' takes one value, got 2: '7000 7001'", "--port", "7000", "7001", NULL);
    args_err("'--port' takes one value, got 2: '7000 7001'", "--port 7000", "7001", NULL);
    args_err("invalid value for '--port': '99999' (argument must be between 0 and 65535 inclusive)",
             "--port", "99999", NULL);
    args_err("bad option '--'", "--", "1", NULL);
    args_err("value for '--requirepass' contains a NUL byte", "--requirepass \"a\\x00\"", NULL);
    args_err("bad option '--\"port'", "--\"port", "1", NULL);
    args_err("invalid value for '--databases': '0' (argument must be between 1 and 2147483647 "
             "inclusive)", "--databases", "0", NULL);

    char want[2 * PATH_MAX + 256];
    snprintf(want, sizeof(want), "can't open config file '%s': %s", tmp_path("nope.conf"),
             strerror(ENOENT));
    args_err(want, tmp_path("nope.conf"), "--port", "1", NULL);

    spit(tmp_path("ok.conf"), "port 1\n");
    snprintf(want, sizeof(want), "unexpected argument '%s' (settings are given as --name value)",
             tmp_path("ok.conf"));
    args_err(want, tmp_path("ok.conf"), tmp_path("ok.conf"), NULL);

    /* A bad file line stops before the flags. */
    spit(tmp_path("bad.conf"), "port 1\nhz 0\n");
    snprintf(want, sizeof(want),
             "%s:2: invalid value for 'hz': '0' (argument must be between 1 and 500 inclusive)",
             tmp_path("bad.conf"));
    args_err(want, tmp_path("bad.conf"), "--port", "1", NULL);
}

/* ---- CONFIG REWRITE ----------------------------------------------------------------------- */

static void test_rewrite_no_file(void **state)
{
    config c;
    char err[256];
    config_init(&c);
    assert_int_equal(config_rewrite(&c, err, sizeof(err)), -1);
    assert_string_equal(err, "The server is running without a config file");
    config_fini(&c);
}

/* Point c->config_file elsewhere (the string is owned by the config). */
static void set_config_file(config *c, const char *path)
{
    mem_free(c->config_file);
    c->config_file = mem_strndup(path, strlen(path));
}

static void test_rewrite_round_trip(void **state)
{
    const char *orig =
        "# engram test config\n"
        "port 7001\n"
        "hz 20\n"
        "# keep me\n"
        "hz 30\n"
        "timeout 0\n"
        "\n"
        "proto-max-bulk-len 2mb\n"
        "client-output-buffer-limit pubsub 1mb 1mb 0\n"
        "# trailing comment\n";
    config c, again;
    char err[512] = "";
    const char *path = tmp_path("rw.conf");
    char pathcopy[PATH_MAX + 64];
    snprintf(pathcopy, sizeof(pathcopy), "%s", path);

    config_init(&c);
    if (load(&c, "rw.conf", orig, err, sizeof(err)) != 0) fail_msg("%s", err);
    assert_int_equal(chmod(pathcopy, 0640), 0);
    set_ok(&c, "hz", "10", 1);                 /* back to default, but in the file: kept */
    set_ok(&c, "maxclients", "500", 1);        /* not in the file, not default: appended */
    set_ok(&c, "loglevel", "debug", 1);
    set_ok(&c, "requirepass", "a b\"c\\d\n", 1);
    set_ok(&c, "client-output-buffer-limit", "normal 1mb 2mb 3 pubsub 32mb 8mb 60", 1);
    set_ok(&c, "proto-max-bulk-len", "3000000", 1);
    set_ok(&c, "bind", "127.0.0.1 ::1", 0);
    set_ok(&c, "notify-keyspace-events", "KEA", 1);
    if (config_rewrite(&c, err, sizeof(err)) != 0) fail_msg("%s", err);

    char *text = slurp(pathcopy);
    assert_non_null(text);
    assert_string_equal(text,
        "# engram test config\n"
        "port 7001\n"
        "hz 10\n"
        "# keep me\n"
        "timeout 0\n"
        "\n"
        "proto-max-bulk-len 3000000\n"
        "client-output-buffer-limit pubsub 32mb 8mb 60\n"   /* its own line, in place */
        "# trailing comment\n"
        "\n"
        "# Generated by CONFIG REWRITE\n"
        "bind 127.0.0.1 ::1\n"
        "maxclients 500\n"
        "client-output-buffer-limit normal 1mb 2mb 3\n"
        "requirepass \"a b\\\"c\\\\d\\n\"\n"
        "loglevel debug\n"
        "notify-keyspace-events \"AKE\"\n");
    free(text);
    struct stat st;
    assert_int_equal(stat(pathcopy, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);

    /* Loading the result gives the same settings. */
    config_init(&again);
    if (config_load_file(&again, pathcopy, err, sizeof(err)) != 0) fail_msg("%s", err);
    same_settings(&c, &again);

    /* A second rewrite with more changes adds no second signature, and a
     * rewrite without changes is a fixed point. */
    set_ok(&again, "timeout", "60", 1);
    set_ok(&again, "tcp-keepalive", "0", 1);
    set_ok(&again, "maxclients", "10000", 1);
    set_ok(&again, "client-output-buffer-limit", "normal 0 0 0", 1);
    if (config_rewrite(&again, err, sizeof(err)) != 0) fail_msg("%s", err);
    text = slurp(pathcopy);
    assert_string_equal(text,
        "# engram test config\n"
        "port 7001\n"
        "hz 10\n"
        "# keep me\n"
        "timeout 60\n"
        "\n"
        "proto-max-bulk-len 3000000\n"
        "client-output-buffer-limit pubsub 32mb 8mb 60\n"
        "# trailing comment\n"
        "\n"
        "# Generated by CONFIG REWRITE\n"
        "bind 127.0.0.1 ::1\n"
        "maxclients 10000\n"
        "client-output-buffer-limit normal 0 0 0\n"
        "requirepass \"a b\\\"c\\\\d\\n\"\n"
        "loglevel debug\n"
        "notify-keyspace-events \"AKE\"\n"
        "tcp-keepalive 0\n");
    if (config_rewrite(&again, err, sizeof(err)) != 0) fail_msg("%s", err);
    char *text2 = slurp(pathcopy);
    assert_string_equal(text, text2);
    free(text);
    free(text2);

    config_fini(&c);
    config_init(&c);
    if (config_load_file(&c, pathcopy, err, sizeof(err)) != 0) fail_msg("%s", err);
    same_settings(&c, &again);

    /* No temp files left behind. */
    DIR *dir = opendir(tmpdir);
    assert_non_null(dir);
    for (struct dirent *e; (e = readdir(dir)) != NULL;)
        if (strstr(e->d_name, ".tmp-")) fail_msg("left behind: %s", e->d_name);
    closedir(dir);
    config_fini(&again);
    config_fini(&c);
}

/* More `embedder` lines than one line holds words (64): CONFIG REWRITE
 * wrote the first 64 words alone and lost the rest of the list (found by
 * tests/fuzz/fuzz_config).  Now one line per embedder, reloading to the same
 * list. */
static void test_rewrite_many_embedders(void **state)
{
    config c, again;
    char err[512] = "", text[4096] = "", line[64], before[4096], after[4096];
    for (int i = 0; i < 40; i++) {
        snprintf(line, sizeof(line), "embedder m%d /models/m%d.vec\n", i, i);
        strcat(text, line);
    }
    config_init(&c);
    if (load(&c, "emb.conf", text, err, sizeof(err)) != 0) fail_msg("%s", err);
    assert_int_equal(config_get(&c, "embedder", before, sizeof(before)), 0);
    if (config_rewrite(&c, err, sizeof(err)) != 0) fail_msg("%s", err);
    char *file = slurp(tmp_path("emb.conf"));
    assert_non_null(file);
    assert_non_null(strstr(file, "embedder m0 /models/m0.vec\nembedder m1 /models/m1.vec\n"));
    assert_non_null(strstr(file, "\nembedder m39 /models/m39.vec\n"));
    free(file);
    config_init(&again);
    if (config_load_file(&again, tmp_path("emb.conf"), err, sizeof(err)) != 0) fail_msg("%s", err);
    assert_int_equal(config_get(&again, "embedder", after, sizeof(after)), 0);
    assert_string_equal(after, before);
    config_fini(&c);
    config_fini(&again);
}

static void test_rewrite_missing_file(void **state)
{
    /* The file vanished since start-up: written from scratch. */
    config c, again;
    char err[512];
    config_init(&c);
    if (load(&c, "gone.conf", "port 7005\n", err, sizeof(err)) != 0) fail_msg("%s", err);
    assert_int_equal(unlink(c.config_file), 0);
    if (config_rewrite(&c, err, sizeof(err)) != 0) fail_msg("%s", err);
    char *text = slurp(c.config_file);
    assert_string_equal(text, "# Generated by CONFIG REWRITE\nport 7005\n");
    free(text);
    config_init(&again);
    if (config_load_file(&again, c.config_file, err, sizeof(err)) != 0) fail_msg("%s", err);
    same_settings(&c, &again);
    config_fini(&again);
    config_fini(&c);
}

static void test_rewrite_errors(void **state)
{
    /* Failures root cannot bypass: a directory where the file should be, and
     * a directory that has gone away.  The old file is never touched. */
    config c;
    char err[512], want[256];
    config_init(&c);
    if (load(&c, "d.conf", "port 7007\n", err, sizeof(err)) != 0) fail_msg("%s", err);
    assert_int_equal(mkdir(tmp_path("isdir.conf"), 0700), 0);
    set_config_file(&c, tmp_path("isdir.conf"));
    assert_int_equal(config_rewrite(&c, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "Rewriting config file: %s", strerror(EISDIR));
    assert_string_equal(err, want);

    set_config_file(&c, tmp_path("no/such/dir/x.conf"));
    assert_int_equal(config_rewrite(&c, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "Rewriting config file: %s", strerror(ENOENT));
    assert_string_equal(err, want);
    config_fini(&c);
}

static void test_rewrite_unwritable(void **state)
{
    config c;
    char err[512];
    if (geteuid() == 0) skip();     /* root writes anywhere */
    config_init(&c);
    assert_int_equal(mkdir(tmp_path("ro"), 0700), 0);
    if (load(&c, "ro/x.conf", "port 7006\n", err, sizeof(err)) != 0) fail_msg("%s", err);
    assert_int_equal(chmod(tmp_path("ro"), 0500), 0);
    assert_int_equal(config_rewrite(&c, err, sizeof(err)), -1);
    assert_string_equal(err, "Rewriting config file: Permission denied");
    assert_int_equal(chmod(tmp_path("ro"), 0700), 0);
    config_fini(&c);
}

/* ---- engram.conf ---------------------------------------------------------------------------- */

/* The shipped file sits at the project root: ../../../engram.conf from here. */
static void shipped_conf_path(char *buf, size_t cap)
{
    const char *me = __FILE__, *p = strstr(me, "tests/unit/config/test_config.c");
    if (p) snprintf(buf, cap, "%.*sengram.conf", (int)(p - me), me);
    else snprintf(buf, cap, "../../../engram.conf");
}

static char *default_text(void)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(config_write_default(f), 0);
    long n = ftell(f);
    char *text = malloc((size_t)n + 1);
    rewind(f);
    assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
    text[n] = '\0';
    fclose(f);
    return text;
}

static void test_write_default_loads_to_defaults(void **state)
{
    config d, c;
    char err[512];
    char *text = default_text();
    config_init(&d);
    config_init(&c);
    if (load(&c, "default.conf", text, err, sizeof(err)) != 0) fail_msg("%s", err);
    same_settings(&c, &d);
    /* Every setting appears, as a line of its own. */
    for (size_t i = 0; config_name_at(i); i++) {
        char needle[128];
        snprintf(needle, sizeof(needle), "\n%s ", config_name_at(i));
        assert_non_null(strstr(text, needle));
        /* Help is wrapped at 76 columns; its first 40 characters stay together. */
        snprintf(needle, sizeof(needle), "\n# %.40s", config_help_at(i));
        assert_non_null(strstr(text, needle));
    }
    /* A rewrite of an untouched default file changes nothing. */
    if (config_rewrite(&c, err, sizeof(err)) != 0) fail_msg("%s", err);
    char *after = slurp(c.config_file);
    assert_string_equal(after, text);
    free(after);
    free(text);
    config_fini(&c);
    config_fini(&d);
}

static void test_shipped_conf(void **state)
{
    char path[PATH_MAX], err[512];
    char *want = default_text();
    config c, d;
    shipped_conf_path(path, sizeof(path));
    if (getenv("ENGRAM_WRITE_CONF")) {
        spit(path, want);
        print_message("wrote %s\n", path);
    }
    char *have = slurp(path);
    if (!have) fail_msg("cannot read %s", path);
    if (strcmp(have, want) != 0)
        fail_msg("%s differs from config_write_default(); regenerate it with "
                 "ENGRAM_WRITE_CONF=1 and review the diff", path);
    config_init(&c);
    config_init(&d);
    if (config_load_file(&c, path, err, sizeof(err)) != 0) fail_msg("%s", err);
    assert_string_not_equal(c.config_file, "");
    same_settings(&c, &d);
    free(have);
    free(want);
    config_fini(&c);
    config_fini(&d);
}

/* ---- fixture --------------------------------------------------------------------------- */

static int setup(void **state)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/engram-test-config-XXXXXX", base && *base ? base : "/tmp");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[2 * PATH_MAX + 32];
    snprintf(cmd, sizeof(cmd), "chmod -R u+w '%s'; rm -rf '%s'", tmpdir, tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_hash_settings),
        cmocka_unit_test(test_get),
        cmocka_unit_test(test_int),
        cmocka_unit_test(test_memory_parse),
        cmocka_unit_test(test_memory_setting),
        cmocka_unit_test(test_append_setting),
        cmocka_unit_test(test_bool_enum_string),
        cmocka_unit_test(test_unknown_and_immutable),
        cmocka_unit_test(test_notify_events),
        cmocka_unit_test(test_obuf),
        cmocka_unit_test(test_file_load),
        cmocka_unit_test(test_file_quotes_adjacent_fail),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_args),
        cmocka_unit_test(test_args_errors),
        cmocka_unit_test(test_rewrite_no_file),
        cmocka_unit_test(test_rewrite_round_trip),
        cmocka_unit_test(test_rewrite_many_embedders),
        cmocka_unit_test(test_rewrite_missing_file),
        cmocka_unit_test(test_rewrite_errors),
        cmocka_unit_test(test_rewrite_unwritable),
        cmocka_unit_test(test_write_default_loads_to_defaults),
        cmocka_unit_test(test_shipped_conf),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
