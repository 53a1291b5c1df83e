/* persist_load.c -- start-up: persist_open locks `dir`, removes snapshot
 * temp files a crash left, loads engram.snap (dataset_load), replays every
 * log after it (apply_one: each record's effect on the keyspace and the
 * registry) and opens the log to append to; persist_loading says it is
 * still at it.
 *
 * Recovery.  Load engram.snap (if any): its seq S.  Replay every log in
 * base order, skipping records <= S; each record must be exactly the next
 * seq, or a log file is missing and start-up is refused.  A torn last
 * record is cut (logged with the bytes dropped); a bad record before the
 * tail is corruption: refused with file and offset unless
 * wal-truncate-corrupt is set.  A damaged snapshot is always refused.
 * Between chunks of work the loop processes events, so clients that
 * connect during a long load get -LOADING (and INFO shows the progress).
 *
 * Invariants:
 *   - The server never starts half-loaded and never falls back to memory
 *     only: any failure is -1 with a message naming the file, and the
 *     server exits.
 *   - While loading, p->applied_seq is the last record memory holds
 *     (the snapshot's seq to begin with); the next record applied is
 *     exactly applied_seq + 1, and records at or below it are skipped.
 *   - No log is open while loading (p->log is NULL): nothing is logged or
 *     committed, and the cron does no persistence work.
 *
 * Threads: the loop thread, inside persist_open, before the loop runs;
 * loading_events runs single iterations of the loop between records. */
#include "persist.h"
#include "persist_private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engram/io.h"
#include "engram/mem.h"
#include "engram/oplog.h"
#include "engram/util.h"
#include "engram/wal.h"
#include "log.h"
#include "server.h"
#include "dataset.h"
#include "ftspec.h"
#include "hkeys.h"
#include "models.h"
#include "vkeys.h"

#define PERSIST_EVENTS_MS  50     /* event processing while loading */

/* A crash (or power loss) while a snapshot was written leaves its temp
 * file: never complete, never renamed, so never needed. */
static void remove_stale_temps(persist *p)
{
    DIR *d = opendir(p->dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, "engram.snap.tmp.", 16) != 0) continue;
        char *path = persist_join_path(p->dir, de->d_name);
        if (p->io->unlink(p->io, path) == 0)
            log_msg(LOG_NOTICE, "Removed %s (a snapshot interrupted by a crash)", path);
        mem_free(path);
    }
    closedir(d);
}

/* ---- replay ------------------------------------------------------------------------ */

/* Let clients in (they get -LOADING) while a long load runs. */
static void loading_events(server *s)
{
    persist *p = s->ps;
    int64_t now = util_mono_ms();
    if (now - p->load_events_ms < PERSIST_EVENTS_MS) return;
    p->load_events_ms = now;
    ev_run_once(s->loop, 0);
}

static int apply_vnew(server *s, int db, const op *o, char *err, size_t cap)
{
    vindex_params vp;
    if (o->vtype > VINDEX_FLAT || o->metric > DIST_DOT) {
        snprintf(err, cap, "VNEW with an unknown type or metric");
        return -EBADMSG;
    }
    vindex_params_init(&vp, (vindex_type)o->vtype, o->dim, (dist_metric)o->metric);
    vp.M = o->M;
    vp.ef_construction = o->efc;
    vp.ef_search = o->efs;
    vp.seed = o->seed;
    vp.capacity = o->capacity;
    vp.quant = (quant_type)o->quant;
    vp.keep_float = o->keep_float;
    char e[256];
    if (o->elen && models_check(s, o->embed, o->elen, o->dim, e, sizeof e) < 0) {
        snprintf(err, cap, "VNEW '%.*s': %.120s", (int)(o->nlen < 64 ? o->nlen : 64), o->name, e + 4);
        return -EBADMSG;
    }
    if (kv_peek(db_kv(s, db), o->name, o->nlen)) {
        snprintf(err, cap, "VNEW '%.*s' failed: index already exists",
                 (int)(o->nlen < 64 ? o->nlen : 64), o->name);
        return -EBADMSG;
    }
    if (o->proj_in && (o->proj_in < o->dim || o->vtype != VINDEX_HNSW)) {
        snprintf(err, cap, "VNEW '%.*s': projection from %u to %u dimensions",
                 (int)(o->nlen < 64 ? o->nlen : 64), o->name, o->proj_in, o->dim);
        return -EBADMSG;
    }
    if (!vkey_create(s, db, o->name, o->nlen, &vp, o->embed, o->elen, o->proj_in, e, sizeof e)) {
        snprintf(err, cap, "VNEW '%.*s' failed: %.120s", (int)(o->nlen < 64 ? o->nlen : 64),
                 o->name, e + 4);
        return -EBADMSG;
    }
    return 0;
}

static vset *apply_index(server *s, int db, const op *o, char *err, size_t cap)
{
    vset *e = vkey_peek(s, db, o->name, o->nlen);
    if (!e) snprintf(err, cap, "no such index '%.*s'", (int)(o->nlen < 64 ? o->nlen : 64), o->name);
    return e;
}

/* A record may ask for what a live server accepts from clients, nothing
 * more (oplog.h): anything bigger can only be a damaged or crafted log. */
static op_limits replay_limits(const server *s)
{
    return (op_limits){
        .string_max = CONFIG_BULK_LEN_MAX, .dim_max = VINDEX_DIM_MAX, .m_max = VINDEX_M_MAX,
        .ef_max = VINDEX_EF_MAX, .capacity_max = VINDEX_CAPACITY_MAX,
        .payload_max = VINDEX_PAYLOAD_MAX, .db_max = (uint32_t)s->ndbs,
    };
}

static int apply_vadd(server *s, int db, const op *o, char *err, size_t cap)
{
    vset *e = apply_index(s, db, o, err, cap);
    if (!e) return -EBADMSG;
    float *v = mem_alloc((size_t)o->dim * sizeof *v);
    for (uint32_t i = 0; i < o->dim; i++) v[i] = op_vec_at(o, i);
    vindex_add_args a;
    vindex_add_args_init(&a, o->key, o->klen, v, o->dim);
    if (o->flags & OP_VADD_PAYLOAD) {
        a.has_payload = 1;
        a.payload = o->payload;
        a.plen = o->plen;
    }
    a.drop_payload = (o->flags & OP_VADD_DROP) != 0;
    a.ef = o->ef;
    if (o->flags & OP_VADD_OUTCOME) {     /* the live insert's neighbours: no search */
        a.outcome = o->outcome;
        a.outcome_len = o->olen;
    }
    /* A ring evicts here exactly as it did live; an auto id notes itself (a
     * canonical decimal key). */
    int rc = vindex_add_ex(vset_index(e), &a, NULL);
    mem_free(v);
    if (rc < 0) {
        snprintf(err, cap, "VADD failed: %s", vindex_strerror(rc));
        return rc == -ENOMEM ? -ENOMEM : -EBADMSG;
    }
    vset_count_node(e);
    return 0;
}

/* The key commands, applied as they were live (cmd_kv.c). */
static int apply_keyop(server *s, int db, const op *o, char *err, size_t cap)
{
    kv *k = db_kv(s, db);
    kv_entry *e = kv_peek(k, o->key, o->klen);
    switch (o->type) {
    case OP_EXPIRE:
        if (e) kv_set_expire(k, e, o->expire_ms < 0 ? -1 : o->expire_ms);
        return 0;
    case OP_RENAME:
        if (!e) break;
        kv_rename(k, e, o->val, o->vlen);
        return 0;
    case OP_MOVE:
        if (!e || kv_peek(db_kv(s, (int)o->db), o->key, o->klen)) break;
        kv_move(k, e, db_kv(s, (int)o->db));
        return 0;
    case OP_COPY: {
        if (!e) break;
        kv_entry *d = kv_peek(db_kv(s, (int)o->db), o->val, o->vlen);
        if (d && !o->replace) break;
        if (key_copy(s, e, (int)o->db, o->val, o->vlen) < 0) return -ENOMEM;
        return 0;
    }
    default:
        break;
    }
    snprintf(err, cap, "record of type %u about a key it cannot apply to ('%.*s')", o->type,
             (int)(o->klen < 64 ? o->klen : 64), o->key);
    return -EBADMSG;
}

/* OP_HSET, OP_HDEL, OP_HEXPIRE: the fields in their logged state.  A key
 * missing here is one a snapshot left out with all its fields expired:
 * HSET makes it again, the others have nothing to change. */
static int apply_hash(server *s, int db, const op *o, char *err, size_t cap)
{
    kv *k = db_kv(s, db);
    if (o->type == OP_HSET && (o->flags & OP_HSET_NEW)) kv_del(k, o->key, o->klen);
    kv_entry *e = kv_peek(k, o->key, o->klen);
    if (e && kv_type(e) != OBJ_HASH) {
        snprintf(err, cap, "hash record about a key of another type ('%.*s')",
                 (int)(o->klen < 64 ? o->klen : 64), o->key);
        return -EBADMSG;
    }
    hash *h = e ? kv_obj(e) : NULL;
    if (!h && o->type != OP_HSET) return 0;
    if (!h) {
        h = hash_new(util_rand64(&s->rng));
        kv_set_obj(k, o->key, o->klen, OBJ_HASH, h, NULL);
    }
    hash_limits lim = hkey_limits(s);
    size_t pos = 0;
    op_hfield f;
    while (op_hfield_next(o, &pos, &f)) {
        if (o->type == OP_HSET) hash_set(h, f.f, f.flen, f.v, f.vlen, f.expire_ms, 0, -1, &lim);
        else if (o->type == OP_HDEL) hash_del(h, f.f, f.flen);
        else hash_set_expire(h, f.f, f.flen, f.expire_ms);
    }
    if (hash_len(h) == 0) kv_del(k, o->key, o->klen);
    return 0;
}

/* OP_FTDEF: a search index created, dropped or altered (database 0).  Its
 * documents come from the scan after loading (ft_loaded). */
static int apply_ftdef(server *s, const op *o, char *err, size_t cap)
{
    const char **argv = mem_calloc((size_t)o->nfields + 1, sizeof *argv);
    size_t *lens = mem_calloc((size_t)o->nfields + 1, sizeof *lens);
    size_t pos = 0;
    int n = 0, rc = 0;
    op_hfield f;
    while (op_hfield_next(o, &pos, &f)) {
        argv[n] = f.f;
        lens[n++] = f.flen;
    }
    char why[256] = "";
    ftspec *sp = ft_find(s, o->key, o->klen);
    if (o->flags == 0) {
        rc = ft_create(s, o->key, o->klen, n, argv, lens, 1, why, sizeof why);
    } else if (!sp) {
        snprintf(why, sizeof why, "no such index");
        rc = -1;
    } else if (o->flags == 1) {
        ft_drop(s, sp);
    } else {
        rc = ft_alter(s, sp, n, argv, lens, why, sizeof why);
    }
    mem_free(argv);
    mem_free(lens);
    if (rc < 0) {
        snprintf(err, cap, "search index record for '%.*s': %s", (int)(o->klen < 64 ? o->klen : 64),
                 o->key, why);
        return -EBADMSG;
    }
    return 0;
}

static int apply_one(server *s, int db, uint8_t type, const void *payload, size_t len, char *err,
                     size_t cap)
{
    op o;
    op_limits lim = replay_limits(s);
    if (type == OP_BATCH) {
        size_t pos = 0;
        uint8_t t;
        const void *item;
        uint32_t ilen;
        int r;
        while ((r = op_batch_next(payload, len, &pos, &t, &item, &ilen)) > 0) {
            int rc = apply_one(s, db, t, item, ilen, err, cap);
            if (rc < 0) return rc;
        }
        if (r < 0) snprintf(err, cap, "malformed batch record");
        return r;
    }
    if (type == OP_INDB) {
        uint32_t in;
        uint8_t t;
        const void *inner;
        uint32_t ilen;
        int rc = op_indb(payload, len, &lim, &in, &t, &inner, &ilen);
        if (rc < 0) {
            snprintf(err, cap, rc == -EFBIG ? "record for database %u, past the %d configured "
                     "(databases)" : "malformed database record", in, s->ndbs);
            return -EBADMSG;
        }
        return apply_one(s, (int)in, t, inner, ilen, err, cap);
    }
    int rc = op_decode(type, payload, len, &lim, &o);
    if (rc < 0) {
        snprintf(err, cap, rc == -EFBIG ? "record of type %u asks for more than a server accepts"
                                        : "malformed record of type %u", type);
        return -EBADMSG;
    }
    kv *k = db_kv(s, db);
    switch (type) {
    case OP_SET: {
        kv_entry *e = kv_set(k, o.key, o.klen, o.val, o.vlen, NULL);
        kv_set_expire(k, e, o.expire_ms < 0 ? -1 : o.expire_ms);
        return 0;
    }
    case OP_DEL:
        kv_del(k, o.key, o.klen);
        return 0;
    case OP_FLUSHALL:
        db_clear(s, -1, 0);
        ft_db_flushed(s, -1);
        return 0;
    case OP_FLUSHDB:
        db_clear(s, db, 0);
        ft_db_flushed(s, db);
        return 0;
    case OP_SWAPDB:
        kv_swap(db_kv(s, (int)o.db), db_kv(s, (int)o.db2));
        return 0;
    case OP_SETRANGE: {
        kv_entry *e = kv_peek(k, o.key, o.klen);
        size_t olen = 0;
        if (e && kv_type(e) != KV_STRING) {
            snprintf(err, cap, "SETRANGE on a key that holds an object");
            return -EBADMSG;
        }
        if (!e) e = kv_set(k, o.key, o.klen, "", 0, NULL);
        kv_val(e, &olen);
        size_t nlen = (size_t)o.offset + o.vlen > olen ? (size_t)o.offset + o.vlen : olen;
        char *v = kv_val_resize(k, e, nlen);
        memcpy(v + o.offset, o.val, o.vlen);
        return 0;
    }
    case OP_EXPIRE:
    case OP_RENAME:
    case OP_MOVE:
    case OP_COPY:
        return apply_keyop(s, db, &o, err, cap);
    case OP_HSET:
    case OP_HDEL:
    case OP_HEXPIRE:
        return apply_hash(s, db, &o, err, cap);
    case OP_FTDEF:
        return apply_ftdef(s, &o, err, cap);
    case OP_VNEW:
        return apply_vnew(s, db, &o, err, cap);
    case OP_VADD:
        return apply_vadd(s, db, &o, err, cap);
    case OP_VDEL: {
        vset *e = apply_index(s, db, &o, err, cap);
        if (!e) return -EBADMSG;
        vindex_del(vset_index(e), o.key, o.klen);
        return 0;
    }
    case OP_VSETATTR: {
        vset *e = apply_index(s, db, &o, err, cap);
        if (!e) return -EBADMSG;
        int set = vindex_set_payload(vset_index(e), o.key, o.klen, o.payload, o.plen, o.drop);
        if (set == -ENOMEM) return -ENOMEM;
        if (set != 1) {
            snprintf(err, cap, "VSETATTR of an element the set does not have");
            return -EBADMSG;
        }
        return 0;
    }
    case OP_VDROP:              /* logs from before vector sets were keys */
        if (!apply_index(s, db, &o, err, cap)) return -EBADMSG;
        kv_del(k, o.name, o.nlen);
        return 0;
    default:
        snprintf(err, cap, "unknown record type %u", type);
        return -EBADMSG;
    }
}

int persist_apply(server *s, int db, uint8_t type, const void *payload, size_t len, char *err,
                  size_t errcap)
{
    return apply_one(s, db, type, payload, len, err, errcap);
}

/* wal_replay callback: apply the records the snapshot does not cover. */
static int replay_cb(void *ud, uint8_t type, uint64_t seq, const void *payload, uint32_t len)
{
    server *s = ud;
    persist *p = s->ps;
    p->load_done += wal_record_size(len);
    if (seq <= p->applied_seq) return 0;
    if (seq != p->applied_seq + 1) {
        snprintf(p->replay_err, sizeof p->replay_err,
                 "%s: record seq %" PRIu64 " follows seq %" PRIu64
                 ": a log file is missing (refusing to start)",
                 p->replay_file, seq, p->applied_seq);
        return 1;
    }
    char e[200];
    int rc = apply_one(s, 0, type, payload, len, e, sizeof e);
    if (rc < 0) {
        snprintf(p->replay_err, sizeof p->replay_err, "%s: record seq %" PRIu64 ": %s",
                 p->replay_file, seq, e);
        return 1;
    }
    p->applied_seq = seq;
    p->loaded_records++;
    loading_events(s);
    return 0;
}

/* Replay every log; open the newest for appending. */
static int persist_replay(server *s, char *err, size_t errcap)
{
    persist *p = s->ps;
    logfile *v;
    int n = persist_list_logs(p, &v);
    if (n < 0) {
        snprintf(err, errcap, "can't list %s: %s", p->dir, strerror(-n));
        return -1;
    }
    for (int i = 0; i < n; i++) {
        struct stat st;
        if (stat(v[i].path, &st) == 0) p->load_total += (uint64_t)st.st_size;
    }
    uint64_t newest_last = 0;
    for (int i = 0; i < n; i++) {
        wal_replay_opts o = {s->cfg.wal_truncate_corrupt, 0};
        if (v[i].base > p->applied_seq) {
            snprintf(err, errcap, "%s starts after seq %" PRIu64 " but the data before it ends "
                     "at seq %" PRIu64 ": a log file is missing (refusing to start)",
                     v[i].path, v[i].base, p->applied_seq);
            persist_free_logs(v, n);
            return -1;
        }
        wal_replay_result r;
        p->replay_file = v[i].path;
        p->replay_err[0] = '\0';
        int rc = wal_replay(p->io, v[i].path, replay_cb, s, &o, &r);
        if (rc == 1) {
            snprintf(err, errcap, "%s", p->replay_err);
            persist_free_logs(v, n);
            return -1;
        }
        if (rc == -EBADMSG) {
            snprintf(err, errcap, "%s is corrupt at offset %" PRIu64 " (of %" PRIu64 " bytes): "
                     "refusing to start.  Set wal-truncate-corrupt yes to cut the log there, "
                     "losing every write after it", v[i].path, r.bad_offset, r.file_size);
            persist_free_logs(v, n);
            return -1;
        }
        if (rc < 0) {
            snprintf(err, errcap, "can't read %s: %s", v[i].path,
                     rc == -ENOTSUP ? "unknown log format version" : strerror(-rc));
            persist_free_logs(v, n);
            return -1;
        }
        if (r.corrupt)
            log_msg(LOG_WARNING, "%s was corrupt at offset %" PRIu64 ": cut there "
                    "(wal-truncate-corrupt yes), %" PRIu64 " bytes dropped",
                    v[i].path, r.bad_offset, r.dropped);
        else if (r.torn)
            log_msg(LOG_WARNING, "%s ended with a torn record (a crash mid-write): "
                    "%" PRIu64 " bytes dropped", v[i].path, r.dropped);
        newest_last = r.last_seq;
    }
    /* Append to the newest log if it continues from what memory holds;
     * otherwise (no logs, or the snapshot is newer than every log) start a
     * fresh one at the snapshot's seq. */
    int rc;
    if (n > 0 && newest_last == p->applied_seq) {
        rc = persist_open_log_at(p, v[n - 1].base);
        if (rc == 0 && wal_last_seq(p->log) != p->applied_seq) {
            snprintf(err, errcap, "%s: ends at seq %" PRIu64 ", expected %" PRIu64,
                     p->log_path, wal_last_seq(p->log), p->applied_seq);
            persist_free_logs(v, n);
            return -1;
        }
    } else {
        rc = persist_open_log_at(p, p->applied_seq);
    }
    persist_free_logs(v, n);
    if (rc < 0) {
        snprintf(err, errcap, "can't open the write-ahead log in %s: %s", p->dir, strerror(-rc));
        return -1;
    }
    persist_prune_logs(p, p->snap_seq);
    p->size_at_snapshot = wal_size(p->log);
    return 0;
}

/* ---- open ------------------------------------------------------------------------ */

int persist_loading(const server *s) { return s->ps && s->ps->loading; }

int persist_open(server *s, char *err, size_t errcap)
{
    config *cfg = &s->cfg;
    if (!cfg->dir || !*cfg->dir) {
        if (cfg->appendonly) {
            snprintf(err, errcap, "appendonly yes needs a directory: set dir (--dir DIR)");
            return -1;
        }
        return 0;
    }
    cfg->appendonly = 1;
    if (mkdir(cfg->dir, 0755) < 0 && errno != EEXIST) {
        snprintf(err, errcap, "can't create the directory '%s': %s", cfg->dir, strerror(errno));
        return -1;
    }
    persist *p = mem_calloc(1, sizeof *p);
    s->ps = p;
    p->faulty = io_faulty_new(io_posix());
    if (!p->faulty) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    p->io = io_faulty_ops(p->faulty);
    p->dir = mem_strndup(cfg->dir, strlen(cfg->dir));
    p->snap_path = persist_join_path(p->dir, "engram.snap");
    p->lock_fd = -1;
    p->last_bgsave_ok = 1;
    pthread_mutex_init(&p->fs_mu, NULL);
    pthread_cond_init(&p->fs_cv, NULL);

    char *lock = persist_join_path(p->dir, "LOCK");
    p->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (p->lock_fd < 0 || flock(p->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        snprintf(err, errcap, "can't lock %s: %s", lock,
                 errno == EWOULDBLOCK ? "another engram uses this directory" : strerror(errno));
        mem_free(lock);
        return -1;
    }
    mem_free(lock);

    remove_stale_temps(p);
    p->loading = 1;
    p->load_start_ms = util_wall_ms();
    p->load_events_ms = util_mono_ms();
    struct stat st;
    if (stat(p->snap_path, &st) == 0) p->load_total += (uint64_t)st.st_size;
    uint64_t seq = 0;
    int64_t t0 = util_mono_ms();
    int rc = dataset_load(s, p->snap_path, &seq, err, errcap);
    if (rc < 0 && rc != -ENOENT) {
        p->loading = 0;
        return -1;
    }
    if (rc == 0) {
        p->load_done += (uint64_t)st.st_size;
        p->last_save_ms = (int64_t)st.st_mtime * 1000;
        size_t keys = 0;
        for (int i = 0; i < s->ndbs; i++) keys += kv_size(db_kv(s, i));
        log_msg(LOG_NOTICE, "Snapshot loaded: seq %" PRIu64 ", %zu keys in %.3f s", seq, keys,
                (double)(util_mono_ms() - t0) / 1000);
    } else {
        p->last_save_ms = s->start_wall_ms;
    }
    p->applied_seq = p->snap_seq = seq;
    t0 = util_mono_ms();
    if (persist_replay(s, err, errcap) < 0) {
        p->loading = 0;
        return -1;
    }
    p->loading = 0;
    p->load_done = p->load_total;
    hkeys_track_all(s);       /* the hashes loaded with field deadlines */
    ft_loaded(s);             /* the search indices' documents */
    if (p->loaded_records)
        log_msg(LOG_NOTICE, "Write-ahead log replayed: %lld records in %.3f s (now at seq %" PRIu64 ")",
                p->loaded_records, (double)(util_mono_ms() - t0) / 1000, p->applied_seq);
    log_msg(LOG_NOTICE, "Persistence on: dir %s, appendfsync %s", p->dir,
            cfg->appendfsync == FSYNC_ALWAYS ? "always" :
            cfg->appendfsync == FSYNC_EVERYSEC ? "everysec" : "no");
    p->dirty_at_save = s->dirty;
    return 0;
}
