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
#include "evict.h"
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

/* Resident set size in bytes (0 where /proc is missing). */
static size_t info_rss(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, resident = 0;
    if (!f) return 0;
    int n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    return n == 2 ? (size_t)resident * (size_t)sysconf(_SC_PAGESIZE) : 0;
}

/* What MEMORY STATS and INFO memory share, each figure computed once. */
typedef struct mem_report {
    size_t used, peak, startup, rss, clients, tables, expires, overhead, keys;
} mem_report;

static void mem_report_fill(server *s, mem_report *m)
{
    m->used = evict_used_memory(s);
    if (m->used > s->mem_peak) s->mem_peak = m->used;
    m->peak = s->mem_peak;
    m->startup = s->mem_startup;
    m->rss = info_rss();
    m->clients = 0;
    for (dlist_node *n = dlist_first(&s->clients); n; n = dlist_next(&s->clients, n)) {
        client *c = DLIST_ENTRY(n, client, node);
        m->clients += c->qcap + c->out.cap;
    }
    m->tables = m->expires = m->keys = 0;
    for (int i = 0; i < s->ndbs; i++) {
        m->tables += kv_table_memory(db_kv(s, i));
        m->expires += kv_expires_memory(db_kv(s, i));
        m->keys += kv_size(db_kv(s, i));
    }
    m->overhead = m->startup + m->clients + m->tables + m->expires;
}

static double mem_pct(size_t part, size_t whole)
{
    return whole ? (double)part * 100.0 / (double)whole : 0.0;
}

static size_t mem_dataset(const mem_report *m)
{
    return m->used > m->overhead ? m->used - m->overhead : 0;
}

static void info_memory(server *s, strbuf *b)
{
    char human[32], peakh[32], rssh[32], sysh[32], maxh[32], policy[32];
    mem_report m;
    /* O(1) but for the clients and databases: vector sets and search
     * indices count themselves (evict.h), no key is visited. */
    mem_report_fill(s, &m);
    size_t sys = (size_t)sysconf(_SC_PHYS_PAGES) * (size_t)sysconf(_SC_PAGESIZE);
    config_get(&s->cfg, "maxmemory-policy", policy, sizeof policy);
    info_bytes_human(human, sizeof human, (double)m.used);
    info_bytes_human(peakh, sizeof peakh, (double)m.peak);
    info_bytes_human(rssh, sizeof rssh, (double)m.rss);
    info_bytes_human(sysh, sizeof sysh, (double)sys);
    info_bytes_human(maxh, sizeof maxh, (double)s->cfg.maxmemory);
    size_t dataset = mem_dataset(&m);
    strbuf_printf(b, "# Memory\r\nused_memory:%zu\r\nused_memory_human:%s\r\n"
                "used_memory_rss:%zu\r\nused_memory_rss_human:%s\r\n"
                "used_memory_peak:%zu\r\nused_memory_peak_human:%s\r\n"
                "used_memory_peak_perc:%.2f%%\r\nused_memory_overhead:%zu\r\n"
                "used_memory_startup:%zu\r\nused_memory_dataset:%zu\r\n"
                "used_memory_dataset_perc:%.2f%%\r\nused_memory_keyspace:%zu\r\n"
                "used_memory_engines:%zu\r\n"
                "total_system_memory:%zu\r\ntotal_system_memory_human:%s\r\n"
                "maxmemory:%lld\r\nmaxmemory_human:%s\r\nmaxmemory_policy:%s\r\n"
                "mem_fragmentation_ratio:%.2f\r\nmem_fragmentation_bytes:%lld\r\n"
                "mem_not_counted_for_evict:0\r\nmem_clients_slaves:0\r\n"
                "mem_clients_normal:%zu\r\nmem_allocator:libc\r\n"
                "lazyfree_pending_objects:%zu\r\n",
                m.used, human, m.rss, rssh, m.peak, peakh, mem_pct(m.used, m.peak), m.overhead,
                m.startup, dataset, mem_pct(dataset, m.used > m.startup ? m.used - m.startup : 0),
                keyspace_memory(s), evict_engine_bytes(), sys, sysh, s->cfg.maxmemory, maxh,
                policy, m.used ? (double)m.rss / (double)m.used : 0.0,
                (long long)m.rss - (long long)m.used, m.clients, keyspace_lazyfree_pending(s));
}

/* MEMORY STATS: Redis's map, the fields engram can fill truthfully (no
 * allocator internals: engram uses libc's malloc and says so in INFO). */
void cmd_memory_stats(client *c)
{
    server *s = c->srv;
    mem_report m;
    mem_report_fill(s, &m);
    size_t net = m.used > m.startup ? m.used - m.startup : 0, dataset = mem_dataset(&m);
    int ndb = 0;
    for (int i = 0; i < s->ndbs; i++) ndb += kv_size(db_kv(s, i)) > 0;
    reply_map(&c->out, 15 + ndb);
    reply_bulk_cstr(&c->out, "peak.allocated");
    reply_int(&c->out, (long long)m.peak);
    reply_bulk_cstr(&c->out, "total.allocated");
    reply_int(&c->out, (long long)m.used);
    reply_bulk_cstr(&c->out, "startup.allocated");
    reply_int(&c->out, (long long)m.startup);
    reply_bulk_cstr(&c->out, "replication.backlog");
    reply_int(&c->out, 0);
    reply_bulk_cstr(&c->out, "clients.slaves");
    reply_int(&c->out, 0);
    reply_bulk_cstr(&c->out, "clients.normal");
    reply_int(&c->out, (long long)m.clients);
    for (int i = 0; i < s->ndbs; i++) {
        kv *db = db_kv(s, i);
        if (!kv_size(db)) continue;
        char name[32];
        snprintf(name, sizeof name, "db.%d", i);
        reply_bulk_cstr(&c->out, name);
        reply_map(&c->out, 2);
        reply_bulk_cstr(&c->out, "overhead.hashtable.main");
        reply_int(&c->out, (long long)kv_table_memory(db));
        reply_bulk_cstr(&c->out, "overhead.hashtable.expires");
        reply_int(&c->out, (long long)kv_expires_memory(db));
    }
    reply_bulk_cstr(&c->out, "overhead.total");
    reply_int(&c->out, (long long)m.overhead);
    reply_bulk_cstr(&c->out, "keys.count");
    reply_int(&c->out, (long long)m.keys);
    reply_bulk_cstr(&c->out, "keys.bytes-per-key");
    reply_int(&c->out, m.keys ? (long long)(net / m.keys) : 0);
    reply_bulk_cstr(&c->out, "dataset.bytes");
    reply_int(&c->out, (long long)dataset);
    reply_bulk_cstr(&c->out, "dataset.percentage");
    reply_double(&c->out, mem_pct(dataset, net));
    reply_bulk_cstr(&c->out, "peak.percentage");
    reply_double(&c->out, mem_pct(m.used, m.peak));
    reply_bulk_cstr(&c->out, "fragmentation");
    reply_double(&c->out, m.used ? (double)m.rss / (double)m.used : 0.0);
    reply_bulk_cstr(&c->out, "fragmentation.bytes");
    reply_int(&c->out, (long long)m.rss - (long long)m.used);
    /* engram's own: what the vector and search engines hold */
    reply_bulk_cstr(&c->out, "engines.allocated");
    reply_int(&c->out, (long long)evict_engine_bytes());
}

/* MEMORY DOCTOR: Redis's report, with the checks that mean something here
 * (peak, RSS against used memory, client buffers); Redis's texts. */
void cmd_memory_doctor(client *c)
{
    server *s = c->srv;
    mem_report m;
    mem_report_fill(s, &m);
    int empty = m.used < 5u * 1024 * 1024, peak = 0, frag = 0, bufs = 0;
    if (!empty) {
        peak = (double)m.peak / (double)m.used > 1.5;
        frag = (double)m.rss / (double)m.used > 1.4 && m.rss > m.used + (10u << 20);
        bufs = s->nclients && m.clients / s->nclients > 1024 * 200;
    }
    strbuf b = {0};
    if (!peak && !frag && !bufs && !empty) {
        strbuf_printf(&b, "Hi Sam, I can't find any memory issue in your instance. "
                      "I can only account for what occurs on this base.\n");
    } else if (empty) {
        strbuf_printf(&b, "Hi Sam, this instance is empty or is using very little memory, "
                      "my issues detector can't be used in these conditions. "
                      "Please, leave for your mission on Earth and fill it with some data. "
                      "The new Sam and I will be back to our programming as soon as I "
                      "finished rebooting.\n");
    } else {
        strbuf_printf(&b, "Sam, I detected a few issues in this Redis instance memory implants:\n\n");
        if (peak)
            strbuf_printf(&b, " * Peak memory: In the past this instance used more than 150%% the "
                "memory that is currently using. The allocator is normally not able to release "
                "memory after a peak, so you can expect to see a big fragmentation ratio, however "
                "this is actually harmless and is only due to the memory peak, and if the Redis "
                "instance Resident Set Size (RSS) is currently bigger than expected, the memory "
                "will be used as soon as you fill the Redis instance with more data. If the memory "
                "peak was only occasional and you want to try to reclaim memory, please try the "
                "MEMORY PURGE command, otherwise the only other option is to shutdown and restart "
                "the instance.\n\n");
        if (frag)
            strbuf_printf(&b, " * High total RSS: This instance has a memory fragmentation and RSS "
                "overhead greater than 1.4 (this means that the Resident Set Size of the Redis "
                "process is much larger than the sum of the logical allocations Redis performed). "
                "This problem is usually due either to a large peak memory (check if there is a "
                "peak memory entry above in the report) or may result from a workload that causes "
                "the allocator to fragment memory a lot. If the problem is a large peak memory, "
                "then there is no issue. Otherwise, make sure you are using the Jemalloc allocator "
                "and not the default libc malloc. Note: The currently used allocator is "
                "\"libc\".\n\n");
        if (bufs)
            strbuf_printf(&b, " * Big client buffers: The clients output buffers in this instance "
                "are greater than 200K per client (on average). This may result from different "
                "causes, like Pub/Sub clients subscribed to channels bot not receiving data fast "
                "enough, so that data piles on the Redis instance output buffer, or clients "
                "sending commands with large replies or very large sequences of commands in the "
                "same pipeline. Please use the CLIENT LIST command in order to investigate the "
                "issue if it causes problems in your instance, or to understand better why "
                "certain clients are using a big amount of memory.\n\n");
        strbuf_printf(&b, "I'm here to keep you safe, Sam. I want to help you.\n");
    }
    reply_verbatim(&c->out, b.p, b.len, "txt");
    mem_free(b.p);
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
                "evicted_keys:%lld\r\nkeyspace_hits:%lld\r\nkeyspace_misses:%lld\r\n"
                "pubsub_channels:%zu\r\npubsub_patterns:%zu\r\npubsubshard_channels:%zu\r\n"
                "total_error_replies:%lld\r\nclient_query_buffer_limit_disconnections:%lld\r\n"
                "client_output_buffer_limit_disconnections:%lld\r\n",
                s->st.conns, s->st.cmds, srv_ops_per_sec(s), s->st.net_in, s->st.net_out,
                s->st.rejected_conns, s->st.expired_keys, s->st.expired_subkeys, s->st.evicted_keys, s->st.keyspace_hits,
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
