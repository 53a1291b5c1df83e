/* bench_kv.c -- keyspace micro-benchmark: set / get / overwrite / delete
 * throughput at N keys (default 1,000,000), 16-byte keys and 16-byte
 * values, plus bytes per key.
 *
 * Keys are generated up front and visited in a shuffled order, so the
 * figures include cache misses on the table and the entries (as a server
 * sees them) but not key formatting.  The comparison figure is the rate of
 * the keyed hash alone over the same keys in the same order -- the floor
 * under any lookup.  One JSON line per result.
 *
 * Usage: bench_kv [keys] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engram/kv.h"
#include "engram/mem.h"
#include "engram/util.h"

#define KLEN 16
#define VLEN 16

static double rate(size_t ops, int64_t us) { return us > 0 ? (double)ops * 1e6 / (double)us : 0; }

static void report(const char *op, size_t n, size_t ops, int64_t us, double hash_rate)
{
    printf("{\"bench\":\"kv\",\"op\":\"%s\",\"keys\":%zu,\"key_bytes\":%d,\"value_bytes\":%d,"
           "\"ops_per_s\":%.0f,\"ns_per_op\":%.1f,\"hash_only_ops_per_s\":%.0f}\n",
           op, n, KLEN, VLEN, rate(ops, us), ops ? (double)us * 1000.0 / (double)ops : 0, hash_rate);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    if (n == 0) n = 1;
    char *keys = malloc(n * KLEN);
    size_t *order = malloc(n * sizeof *order);
    if (!keys || !order) return 1;
    for (size_t i = 0; i < n; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "key:%012zu", i);
        memcpy(keys + i * KLEN, buf, KLEN);
        order[i] = i;
    }
    uint64_t rng = 12345;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = util_rand64(&rng) % (i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    char val[VLEN];
    memset(val, 'v', sizeof val);

    /* The floor: just the keyed hash, same keys, same order (second pass,
     * so the key array's page faults are not counted). */
    uint64_t sink = 0;
    int64_t t0 = 0;
    double hr = 0;
    for (int pass = 0; pass < 2; pass++) {
        t0 = util_mono_us();
        for (size_t i = 0; i < n; i++) sink ^= util_hash(keys + order[i] * KLEN, KLEN, 42);
        hr = rate(n, util_mono_us() - t0);
    }

    size_t mem0 = mem_used();
    kv *db = kv_new(42);
    t0 = util_mono_us();
    for (size_t i = 0; i < n; i++) kv_set(db, keys + order[i] * KLEN, KLEN, val, VLEN, NULL);
    report("set_new", n, n, util_mono_us() - t0, hr);
    size_t mem1 = mem_used(), km = kv_memory(db);

    t0 = util_mono_us();
    for (size_t i = 0; i < n; i++) {
        kv_entry *e = kv_find(db, keys + order[n - 1 - i] * KLEN, KLEN, 0);
        sink += e != NULL;
    }
    report("get_hit", n, n, util_mono_us() - t0, hr);

    t0 = util_mono_us();
    for (size_t i = 0; i < n; i++) {
        char k[KLEN];
        memcpy(k, keys + order[i] * KLEN, KLEN);
        k[0] = 'K'; /* same length and distribution, never present */
        sink += kv_find(db, k, KLEN, 0) != NULL;
    }
    report("get_miss", n, n, util_mono_us() - t0, hr);

    t0 = util_mono_us();
    for (size_t i = 0; i < n; i++) kv_set(db, keys + order[i] * KLEN, KLEN, val, VLEN, NULL);
    report("set_overwrite", n, n, util_mono_us() - t0, hr);

    t0 = util_mono_us();
    for (size_t i = 0; i < n; i++) sink += (uint64_t)kv_del(db, keys + order[i] * KLEN, KLEN);
    report("del", n, n, util_mono_us() - t0, hr);

    printf("{\"bench\":\"kv\",\"op\":\"memory\",\"keys\":%zu,\"key_bytes\":%d,\"value_bytes\":%d,"
           "\"bytes_per_key\":%.1f,\"kv_memory_per_key\":%.1f,\"left_after_del\":%zu}\n",
           n, KLEN, VLEN, (double)(mem1 - mem0) / (double)n, (double)km / (double)n, mem_used() - mem0);
    kv_free(db);
    free(keys);
    free(order);
    return sink == 0xdeadbeef; /* keep the loops alive */
}
