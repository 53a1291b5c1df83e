/* cmd_info.c -- INFO: one function per section, each appending its lines
 * with Redis's field names (clients parse them), in Redis's order.
 *
 * Loop thread only. */
#include "server.h"
#include "repl.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "engram/dist.h"
#include "engram/mem.h"
#include "engram/strbuf.h"
#include "engram/util.h"
#include "ftspec.h"
#include "handlers.h"
#include "models.h"
#include "persist.h"
#include "pubsub.h"
#include "engram/vset.h"

/* ---- INFO ------------------------------------------------------------------ */

static void info_bytes_human(char *buf, size_t cap, double n)
{
    const char *units = "BKMGTP";
    int u = 0;
    while (n >= 1024 && u < 5) n /= 1024, u++;
    if (u == 0) snprintf(buf, cap, "%.0fB", n);
    else snprintf(buf, cap, "%.2f%c", n, units[u]);
}

static void info_server(server *s, strbuf *b)
{
    struct utsname un;
    int64_t up = (util_mono_ms() - s->start_mono_ms) / 1000;
    uname(&un);
    strbuf_printf(b,
                "# Server\r\nredis_version:%s\r\nengram_version:%s\r\nredis_git_sha1:00000000\r\n"
                "redis_git_dirty:0\r\nredis_mode:standalone\r\nos:%s %s %s\r\narch_bits:%d\r\n"
                "multiplexing_api:%s\r\ngcc_version:%d.%d.%d\r\nprocess_id:%d\r\n"
                "run_id:%s\r\ntcp_port:%d\r\nserver_time_usec:%lld\r\nuptime_in_seconds:%lld\r\n"
                "uptime_in_days:%lld\r\nhz:%d\r\nconfigured_hz:%d\r\nconfig_file:%s\r\n",
                ENGRAM_REDIS_COMPAT, ENGRAM_VERSION, un.sysname, un.release, un.machine,
                (int)(sizeof(void *) * 8), ev_backend_name(),
#ifdef __GNUC__
                __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__,
#else
                0, 0, 0,
#endif
                (int)getpid(), repl_run_id(s), s->port, (long long)util_wall_us(), (long long)up,
                (long long)up / 86400, s->cfg.hz, s->cfg.hz, s->cfg.config_file);
}

static void info_clients(server *s, strbuf *b)
{
    strbuf_printf(b, "# Clients\r\nconnected_clients:%zu\r\nmaxclients:%d\r\nblocked_clients:0\r\n"
                "tracking_clients:0\r\npubsub_clients:%zu\r\nclients_in_timeout_table:0\r\n",
                s->nclients, s->cfg.maxclients, pubsub_clients(s));
}

/* The vector sets of every database, for the Vectors section. */
typedef struct vec_totals {
    size_t sets, vectors, memory;
    unsigned long long searches;
} vec_totals;

static void vec_total(void *ud, kv_entry *e)
{
    vec_totals *t = ud;
    if (kv_type(e) != OBJ_VSET) return;
    vset *set = kv_obj(e);
    t->sets++;
    t->vectors += vindex_count(vset_index(set));
    t->memory += vindex_memory(vset_index(set));
    t->searches += vset_searches(set);
}

static void info_memory(server *s, strbuf *b)
{
    char human[32], peakh[32];
    /* Vector sets allocate through their own counted allocators (vecbase.h),
     * not mem_*: used_memory counts them too, as Redis's counts its vector
     * sets. */
    vec_totals t = {0};
    for (int i = 0; i < s->ndbs; i++) kv_foreach(db_kv(s, i), vec_total, &t);
    size_t used = mem_used() + t.memory + ft_memory_all(s);   /* search engines: malloc'd */
    struct rusage ru;
    if (used > s->mem_peak) s->mem_peak = used;
    size_t peak = s->mem_peak;
    getrusage(RUSAGE_SELF, &ru);
    info_bytes_human(human, sizeof human, (double)used);
    info_bytes_human(peakh, sizeof peakh, (double)peak);
    strbuf_printf(b, "# Memory\r\nused_memory:%zu\r\nused_memory_human:%s\r\nused_memory_peak:%zu\r\n"
                "used_memory_peak_human:%s\r\nused_memory_keyspace:%zu\r\n"
                "maxrss_bytes:%lld\r\nmaxmemory:0\r\nmaxmemory_policy:noeviction\r\n"
                "mem_allocator:libc\r\nlazyfree_pending_objects:%zu\r\n",
                used, human, peak, peakh, keyspace_memory(s) + t.memory,
#if defined(__APPLE__)
                (long long)ru.ru_maxrss
#else
                (long long)ru.ru_maxrss * 1024
#endif
                , keyspace_lazyfree_pending(s));
}

static void info_persistence(server *s, strbuf *b)
{
    char buf[4096];
    persist_info(s, buf, sizeof buf);
    strbuf_printf(b, "# Persistence\r\n%s", buf);
}

static void info_stats(server *s, strbuf *b)
{
    strbuf_printf(b, "# Stats\r\ntotal_connections_received:%lld\r\ntotal_commands_processed:%lld\r\n"
                "instantaneous_ops_per_sec:%lld\r\ntotal_net_input_bytes:%lld\r\n"
                "total_net_output_bytes:%lld\r\nrejected_connections:%lld\r\nexpired_keys:%lld\r\n"
                "expired_subkeys:%lld\r\n"
                "evicted_keys:0\r\nkeyspace_hits:%lld\r\nkeyspace_misses:%lld\r\n"
                "pubsub_channels:%zu\r\npubsub_patterns:%zu\r\npubsubshard_channels:%zu\r\n"
                "total_error_replies:%lld\r\nclient_query_buffer_limit_disconnections:%lld\r\n"
                "client_output_buffer_limit_disconnections:%lld\r\n",
                s->st.conns, s->st.cmds, srv_ops_per_sec(s), s->st.net_in, s->st.net_out,
                s->st.rejected_conns, s->st.expired_keys, s->st.expired_subkeys, s->st.keyspace_hits,
                s->st.keyspace_misses, pubsub_count(s, PUBSUB_CHANNEL),
                pubsub_count(s, PUBSUB_PATTERN), pubsub_count(s, PUBSUB_SHARD), s->st.errors,
                s->st.qbuf_kills, s->st.obuf_kills);
    repl_info_stats(s, b);
}

static void info_replication(server *s, strbuf *b)
{
    repl_info(s, b);
}

static void info_cpu(server *s, strbuf *b)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    strbuf_printf(b, "# CPU\r\nused_cpu_sys:%ld.%06ld\r\nused_cpu_user:%ld.%06ld\r\n",
                (long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec,
                (long)ru.ru_utime.tv_sec, (long)ru.ru_utime.tv_usec);
}

static void info_commandstats(server *s, strbuf *b)
{
    strbuf_printf(b, "# Commandstats\r\n");
    for (size_t i = 0; i < command_all_count(); i++) {
        command *k = command_all_at(i);
        if (!k->calls && !k->rejected && !k->failed) continue;
        strbuf_printf(b, "cmdstat_%s:calls=%lld,usec=%lld,usec_per_call=%.2f,rejected_calls=%lld,"
                    "failed_calls=%lld\r\n", k->fullname, k->calls, k->usec,
                    k->calls ? (double)k->usec / (double)k->calls : 0.0, k->rejected, k->failed);
    }
}

static void info_vectors(server *s, strbuf *b)
{
    vec_totals t = {0};
    for (int i = 0; i < s->ndbs; i++) kv_foreach(db_kv(s, i), vec_total, &t);
    strbuf_printf(b, "# Vectors\r\nvector_indices:%zu\r\nvector_count:%zu\r\nvector_memory:%zu\r\n"
                "vector_searches:%llu\r\nvector_writes:%lld\r\nsearch_threads:%d\r\nsearch_nice:%d\r\n"
                "searches_inflight:%zu\r\nsimd_kernel:%s\r\nsimd_kernel_int8:%s\r\n"
                "simd_kernel_bin:%s\r\nsplit_searches:%lld\r\ncas_inserts:%lld\r\n"
                "cas_inserts_planned:%lld\r\nembedder_models_memory:%zu\r\n",
                t.sets, t.vectors, t.memory, t.searches, s->vec_writes, s->nworkers, s->cfg.search_nice,
                s->pool ? pool_inflight(s->pool) : 0, dist_active()->name, dist_i8_active()->name,
                dist_bin_active()->name, s->vec_split_searches, s->vec_cas, s->vec_cas_planned,
                models_memory(s));
}

/* The "modules" engram's vector sets and search indices stand for (see
 * MODULE LIST). */
static void info_modules(server *s, strbuf *b)
{
    (void)s;
    strbuf_printf(b, "# Modules\r\nmodule:name=vectorset,ver=1,api=1,filters=0,usedby=[],using=[],"
                  "options=[handle-io-errors|handle-repl-async-load]\r\n"
                  "module:name=search,ver=20600,api=1,filters=0,usedby=[],using=[],"
                  "options=[handle-io-errors]\r\n");
}

static void info_cluster(server *s, strbuf *b)
{
    (void)s;
    strbuf_printf(b, "# Cluster\r\ncluster_enabled:0\r\n");
}

static void info_keyspace(server *s, strbuf *b)
{
    strbuf_printf(b, "# Keyspace\r\n");
    for (int i = 0; i < s->ndbs; i++) {
        kv *db = db_kv(s, i);
        if (kv_size(db))
            strbuf_printf(b, "db%d:keys=%zu,expires=%zu,avg_ttl=0\r\n", i, kv_size(db),
                          kv_expires_size(db));
    }
}

typedef struct info_section {
    const char *name;
    void (*fn)(server *s, strbuf *b);
    int is_default;
} info_section;

static const info_section info_sections[] = {
    {"server", info_server, 1},       {"clients", info_clients, 1},
    {"memory", info_memory, 1},       {"persistence", info_persistence, 1},
    {"stats", info_stats, 1},         {"replication", info_replication, 1},
    {"cpu", info_cpu, 1},             {"modules", info_modules, 1},
    {"cluster", info_cluster, 1},
    {"vectors", info_vectors, 1},
    {"commandstats", info_commandstats, 0},
    {"keyspace", info_keyspace, 1},   {NULL, NULL, 0},
};

void cmd_info(client *c)
{
    strbuf b = {0};
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
        if (b.len) strbuf_printf(&b, "\r\n");
        info_sections[j].fn(c->srv, &b);
    }
    reply_verbatim(&c->out, b.p ? b.p : "", b.len, "txt");
    mem_free(b.p);
}
