/* persist.c -- durability while the server serves: every write goes to the
 * write-ahead log, and no reply leaves before the records it depends on
 * are committed.  It owns
 *   - staging: a command's (or an EXEC's) changes become one log record
 *     when it ends (persist_cmd_begin/_end, persist_log_*), and its client
 *     waits on p->unacked from the offset where its reply starts;
 *   - group commit: persist_before_sleep writes the log, and under
 *     appendfsync always fsyncs it, once per loop iteration (the ordering
 *     rule, persist.h); until then persist_holds_replies tells
 *     client_flush to keep every reply in;
 *   - the everysec fsync thread;
 *   - failure: MISCONF while the log is failed, and persist_recover, which
 *     starts a fresh log once a recovery snapshot is on disk;
 *   - the log files: naming, listing, rotation before a snapshot, pruning
 *     after one; closing at exit; INFO persistence; DEBUG WAL-FAULT.
 * Snapshots are persist_snapshot.c's and start-up is persist_load.c's (the
 * state the three share is in persist_private.h).  What a snapshot holds
 * is dataset.c's business; the log's byte format is wal.c's and the
 * records' payloads are oplog.h's.
 *
 * Files in `dir`:
 *     LOCK                    flock'd while a server uses the directory
 *     engram.snap             the last complete snapshot (covers log seqs <= S)
 *     engram.snap.tmp.<pid>   a snapshot being written (removed on failure)
 *     wal-<base seq, 16 hex>.log
 *                             logs; records base+1, base+2, ... in order
 *
 * Failure.  When appending, writing or syncing the log fails, the writer is
 * failed for good (wal.h); the clients whose writes it held get an error
 * instead of their replies and are disconnected after it (their pipelines'
 * reply counts could not be kept), and writes are refused with -MISCONF.
 * Memory now holds writes the log lacks, so the only way back is a
 * snapshot of memory: the cron retries a background snapshot every few
 * seconds, and when one succeeds a fresh log starts and writes resume.
 *
 * Invariants:
 *   - c->ps_unacked is set exactly while c is on p->unacked; its reply
 *     bytes from c->ps_mark on then answer records not yet committed.
 *   - When persist_before_sleep returns, persist_holds_replies is 0 until
 *     a command logs again: the commit succeeded (nothing left unwritten)
 *     or the log failed and every waiting client got its error.
 *   - p->err, once set, is cleared only by persist_recover; the failed
 *     writer stays open as p->log until then, so p->log is never NULL
 *     between the end of persist_open and persist_close.
 *   - The log is never closed or replaced while the everysec thread may be
 *     fsyncing its descriptor (fs_wait_idle first).
 *
 * Threads: the loop thread, and the everysec thread (fs_main), which
 * touches only the fs_* fields, under fs_mu, and fsyncs the descriptor it
 * is handed through io_posix (the fault injector is single-threaded).  The
 * snapshot child (persist_snapshot.c) calls persist_unlink_older_logs on
 * its own copy of memory. */
#include "persist.h"
#include "persist_private.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engram/io.h"
#include "engram/le.h"
#include "engram/mem.h"
#include "engram/oplog.h"
#include "engram/util.h"
#include "engram/vset.h"
#include "engram/wal.h"
#include "log.h"
#include "repl.h"
#include "server.h"
#include "vkeys.h"

static int persist_policy(const server *s) { return s->cfg.appendfsync; }

/* Where a write's records are staged: the log's persist, or, with
 * persistence off, the staging-only one replication asked for
 * (persist_stage_enable: it has no log, only the staging fields); NULL when
 * nobody wants them.  Either way each command's (or EXEC's) records end as
 * one record in persist_append, which hands it to the replication stream
 * (repl.h) before the log. */
static persist *stager(const server *s) { return s->ps ? s->ps : s->ps_stage; }

int persist_logging(const server *s) { return stager(s) != NULL; }

void persist_stage_enable(server *s)
{
    if (s->ps || s->ps_stage) return;
    s->ps_stage = mem_calloc(1, sizeof *s->ps_stage);
    s->ps_stage->stage_only = 1;
}

/* ---- small helpers ------------------------------------------------------- */

char *persist_join_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = mem_alloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static char *log_path_for(persist *p, uint64_t base)
{
    char name[64];
    snprintf(name, sizeof name, "wal-%016" PRIx64 ".log", base);
    return persist_join_path(p->dir, name);
}

static int log_cmp(const void *a, const void *b)
{
    uint64_t x = ((const logfile *)a)->base, y = ((const logfile *)b)->base;
    return x < y ? -1 : x > y;
}

/* The log files in dir, sorted by base seq.  Returns the count or -errno. */
int persist_list_logs(persist *p, logfile **out)
{
    DIR *d = opendir(p->dir);
    if (!d) return -errno;
    logfile *v = NULL;
    int n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        unsigned long long base;
        char tail[8];
        if (strlen(de->d_name) != 24 || sscanf(de->d_name, "wal-%16llx.%3s", &base, tail) != 2 ||
            strcmp(tail, "log") != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            v = mem_realloc(v, (size_t)cap * sizeof *v);
        }
        v[n].base = base;
        v[n].path = persist_join_path(p->dir, de->d_name);
        n++;
    }
    closedir(d);
    if (n) qsort(v, (size_t)n, sizeof *v, log_cmp);
    *out = v;
    return n;
}

void persist_free_logs(logfile *v, int n)
{
    for (int i = 0; i < n; i++) mem_free(v[i].path);
    mem_free(v);
}

/* ---- everysec: a thread that fsyncs the descriptor it is handed -------- */

static void *fs_main(void *ud)
{
    persist *p = ud;
    pthread_mutex_lock(&p->fs_mu);
    for (;;) {
        while (!p->fs_stop && !p->fs_busy) pthread_cond_wait(&p->fs_cv, &p->fs_mu);
        if (p->fs_stop) break;
        int fd = p->fs_fd;
        uint64_t seq = p->fs_seq;
        pthread_mutex_unlock(&p->fs_mu);
        /* io_posix, not p->io: the fault injector is single-threaded. */
        int rc = io_posix()->fsync(io_posix(), fd);
        pthread_mutex_lock(&p->fs_mu);
        if (rc < 0 && !p->fs_err) p->fs_err = rc;
        if (rc == 0) p->fs_synced_seq = seq;
        p->fs_busy = 0;
        pthread_cond_broadcast(&p->fs_cv);
    }
    pthread_mutex_unlock(&p->fs_mu);
    return NULL;
}

/* Wait until no background fsync runs (before the log is closed). */
static void fs_wait_idle(persist *p)
{
    if (!p->fs_started) return;
    pthread_mutex_lock(&p->fs_mu);
    while (p->fs_busy) pthread_cond_wait(&p->fs_cv, &p->fs_mu);
    pthread_mutex_unlock(&p->fs_mu);
}

/* The last seq a background fsync made durable. */
static uint64_t fs_synced(persist *p)
{
    if (!p->fs_started) return p->fs_synced_seq;
    pthread_mutex_lock(&p->fs_mu);
    uint64_t seq = p->fs_synced_seq;
    pthread_mutex_unlock(&p->fs_mu);
    return seq;
}

static void fs_submit(persist *p, int fd, uint64_t seq)
{
    if (!p->fs_started) {
        if (pthread_create(&p->fs_thread, NULL, fs_main, p) != 0) {
            log_msg(LOG_WARNING, "Could not start the everysec fsync thread; fsyncing inline");
            int rc = p->io->fsync(p->io, fd);
            if (rc < 0 && !p->fs_err) p->fs_err = rc;
            return;
        }
        p->fs_started = 1;
    }
    pthread_mutex_lock(&p->fs_mu);
    if (!p->fs_busy) {
        p->fs_fd = fd;
        p->fs_seq = seq;
        p->fs_busy = 1;
        pthread_cond_broadcast(&p->fs_cv);
    }
    pthread_mutex_unlock(&p->fs_mu);
}

/* ---- failure ----------------------------------------------------------------- */

static void unacked_clear(persist *p)
{
    while (p->unacked) {
        client *c = p->unacked;
        p->unacked = c->ps_next;
        c->ps_next = NULL;
        c->ps_unacked = 0;
        client_mark_pending(c);
    }
}

/* The log failed: remember why, take back the replies it was holding. */
static void persist_fail(server *s, int rc, const char *what)
{
    persist *p = s->ps;
    if (!p->err) {
        p->err = rc;
        p->err_since_ms = util_wall_ms();
        p->last_retry_ms = util_mono_ms();
        snprintf(p->errmsg, sizeof p->errmsg, "%s %s: %s", what,
                 p->log_path ? p->log_path : p->dir, strerror(-rc));
        log_msg(LOG_WARNING, "Write-ahead log failed (%s); refusing writes until a snapshot "
                "succeeds", p->errmsg);
    }
    while (p->unacked) {
        client *c = p->unacked;
        p->unacked = c->ps_next;
        c->ps_next = NULL;
        c->ps_unacked = 0;
        if (c->ps_mark <= c->out.len && c->ps_mark >= c->out.sent) c->out.len = c->ps_mark;
        reply_errorf(&c->out, "ERR write not persisted: %s; writes are refused until the log "
                     "recovers (see INFO persistence)", p->errmsg);
        client_close_after_reply(c);
    }
}

const char *persist_write_error(const server *s)
{
    const persist *p = s->ps;
    return p && p->err ? p->errmsg : NULL;
}

/* ---- staging and logging ----------------------------------------------------- */

void persist_cmd_begin(server *s, client *c)
{
    persist *p = stager(s);
    if (!p || p->depth++) return;
    opbuf_reset(&p->stage);
    p->nstaged = 0;
    p->mark = c->out.len;
}

static void persist_append(server *s, uint8_t type, const void *payload, size_t len)
{
    persist *p = stager(s);
    /* The stream first, whatever the log's state: memory has the change. */
    repl_feed_record(s, type, payload, len);
    if (p->stage_only || p->err) return;
    if (len > WAL_PAYLOAD_MAX) {
        persist_fail(s, -EFBIG, "a record too large for");
        return;
    }
    int rc = wal_append(p->log, type, payload, (uint32_t)len, NULL);
    if (rc < 0) persist_fail(s, rc, "appending to");
}

void persist_cmd_end(server *s, client *c)
{
    persist *p = stager(s);
    /* depth 0: staging was enabled by this very command (PSYNC), after its
     * begin */
    if (!p || p->depth <= 0 || --p->depth || !p->nstaged) return;
    if (!p->stage_only && !c->ps_unacked) {
        c->ps_unacked = 1;
        c->ps_mark = p->mark;
        c->ps_next = p->unacked;
        p->unacked = c;
    }
    if (p->nstaged == 1) {
        uint8_t type = p->stage.p[0];
        persist_append(s, type, p->stage.p + 5, le_get32(p->stage.p + 1));
    } else {
        persist_append(s, OP_BATCH, p->stage.p, p->stage.len);
    }
    if (p->stage.cap > (1u << 20)) opbuf_fini(&p->stage);   /* give a burst back */
    p->nstaged = 0;
}

/* Begin a record of `type` about database db in p->one: outside database
 * 0 it is wrapped in OP_INDB, whose head goes first.  The caller encodes
 * the payload into the returned buffer, then calls log_end. */
static opbuf *log_begin(persist *p, int db, uint8_t type)
{
    opbuf_reset(&p->one);
    p->one_type = type;
    if (db != 0) {
        op_put_indb(&p->one, (uint32_t)db, type);
        p->one_type = OP_INDB;
    }
    return &p->one;
}

/* Stage p->one as one change of the running command (or append it at once
 * outside a command). */
static void log_end(server *s)
{
    persist *p = stager(s);
    if (p->depth == 0) {
        persist_append(s, p->one_type, p->one.p, p->one.len);
        return;
    }
    op_put_batch_item(&p->stage, p->one_type, p->one.p, (uint32_t)p->one.len);
    p->nstaged++;
}

int persist_holds_replies(const server *s)
{
    /* The writer may have left, and its records still wait in the buffer
     * (a failed log keeps its buffer for good: nothing waits for it). */
    const persist *p = s->ps;
    return p && (p->unacked || (!p->err && p->log && wal_pending(p->log) > 0));
}

void persist_client_gone(server *s, client *c)
{
    persist *p = s->ps;
    if (!p || !c->ps_unacked) return;
    for (client **pp = &p->unacked; *pp; pp = &(*pp)->ps_next) {
        if (*pp == c) {
            *pp = c->ps_next;
            break;
        }
    }
    c->ps_unacked = 0;
    c->ps_next = NULL;
}

void persist_log_key(server *s, int db, const char *key, size_t klen)
{
    persist *p = stager(s);
    if (!p) return;
    kv_entry *e = kv_peek(db_kv(s, db), key, klen);
    if (!e) {
        op_put_del(log_begin(p, db, OP_DEL), key, (uint32_t)klen);
    } else if (kv_type(e) == KV_STRING) {
        size_t vlen;
        const char *v = kv_val(e, &vlen);
        op_put_set(log_begin(p, db, OP_SET), key, (uint32_t)klen, v, (uint32_t)vlen,
                   kv_get_expire(e));
    } else {
        /* an object's contents are logged by its own operations: what a
         * key command changes of it is its TTL */
        op_put_expire(log_begin(p, db, OP_EXPIRE), key, (uint32_t)klen, kv_get_expire(e));
    }
    log_end(s);
}

void persist_log_range(server *s, int db, const char *key, size_t klen, size_t off,
                       const char *bytes, size_t n)
{
    persist *p = stager(s);
    if (!p) return;
    op_put_setrange(log_begin(p, db, OP_SETRANGE), key, (uint32_t)klen, (uint32_t)off, bytes,
                    (uint32_t)n);
    log_end(s);
}

void persist_log_flush(server *s, int db)
{
    persist *p = stager(s);
    if (!p) return;
    log_begin(p, db < 0 ? 0 : db, db < 0 ? OP_FLUSHALL : OP_FLUSHDB);
    log_end(s);
}

void persist_log_rename(server *s, int db, const char *key, size_t klen, const char *newkey,
                        size_t nklen)
{
    persist *p = stager(s);
    if (!p) return;
    op_put_rename(log_begin(p, db, OP_RENAME), key, (uint32_t)klen, newkey, (uint32_t)nklen);
    log_end(s);
}

void persist_log_move(server *s, int db, const char *key, size_t klen, int dstdb)
{
    persist *p = stager(s);
    if (!p) return;
    op_put_move(log_begin(p, db, OP_MOVE), key, (uint32_t)klen, (uint32_t)dstdb);
    log_end(s);
}

void persist_log_copy(server *s, int db, const char *key, size_t klen, const char *newkey,
                      size_t nklen, int dstdb, int replace)
{
    persist *p = stager(s);
    if (!p) return;
    op_put_copy(log_begin(p, db, OP_COPY), key, (uint32_t)klen, newkey, (uint32_t)nklen,
                (uint32_t)dstdb, replace);
    log_end(s);
}

void persist_log_swapdb(server *s, int db1, int db2)
{
    persist *p = stager(s);
    if (!p) return;
    op_put_swapdb(log_begin(p, 0, OP_SWAPDB), (uint32_t)db1, (uint32_t)db2);
    log_end(s);
}

void persist_log_vnew(server *s, int db, const char *name, size_t nlen, const vindex_params *vp,
                      uint32_t capacity, const char *embed, size_t elen, uint32_t proj_in)
{
    persist *p = stager(s);
    if (!p) return;
    op_put_vnew_ex(log_begin(p, db, OP_VNEW), name, (uint32_t)nlen, (uint8_t)vp->type,
                   (uint8_t)vp->metric, vp->dim, vp->M, vp->ef_construction, vp->ef_search,
                   vp->seed, capacity, embed, (uint32_t)elen, (uint8_t)vp->quant, proj_in,
                   vp->keep_float);
    log_end(s);
}

void persist_log_vadd(server *s, int db, const char *name, size_t nlen, const char *key,
                      size_t klen, const float *vec, uint32_t dim, unsigned flags,
                      const char *payload, size_t plen, uint32_t ef)
{
    persist *p = stager(s);
    if (!p) return;
    /* A new key's insert carries its outcome (level and neighbours), so
     * that replaying the record -- at start-up, or a replica's REPLAY --
     * skips the neighbour search and makes the same graph. */
    unsigned char outcome[VINDEX_OUTCOME_MAX];
    vset *set = vkey_peek(s, db, name, nlen);
    size_t olen = set ? vindex_insert_outcome(vset_index(set), key, klen, outcome,
                                              sizeof outcome) : 0;
    op_put_vadd_outcome(log_begin(p, db, OP_VADD), name, (uint32_t)nlen, key, (uint32_t)klen,
                        vec, dim, flags, payload, (uint32_t)plen, ef, outcome, (uint32_t)olen);
    log_end(s);
}

void persist_log_vsetattr(server *s, int db, const char *name, size_t nlen, const char *key,
                          size_t klen, int drop, const char *attr, size_t alen)
{
    persist *p = stager(s);
    if (!p) return;
    op_put_vsetattr(log_begin(p, db, OP_VSETATTR), name, (uint32_t)nlen, key, (uint32_t)klen,
                    drop, attr, (uint32_t)alen);
    log_end(s);
}

void persist_log_vdel(server *s, int db, const char *name, size_t nlen, const char *key,
                      size_t klen)
{
    persist *p = stager(s);
    if (!p) return;
    op_put_vdel(log_begin(p, db, OP_VDEL), name, (uint32_t)nlen, key, (uint32_t)klen);
    log_end(s);
}

struct opbuf *persist_log_open(server *s, int db, uint8_t type)
{
    persist *p = stager(s);
    return p ? log_begin(p, db, type) : NULL;
}

void persist_log_close(server *s)
{
    if (stager(s)) log_end(s);
}

/* ---- group commit -------------------------------------------------------------- */

/* Pick up the result of a background fsync. */
static void fs_collect(server *s)
{
    persist *p = s->ps;
    if (!p->fs_started) return;
    pthread_mutex_lock(&p->fs_mu);
    int err = p->fs_err;
    p->fs_err = 0;
    pthread_mutex_unlock(&p->fs_mu);
    if (err) persist_fail(s, err, "fsyncing");
}

int persist_before_sleep(server *s)
{
    persist *p = s->ps;
    /* No log yet while loading (events are processed between records). */
    if (!p || !p->log) return 0;
    fs_collect(s);
    if (p->err) {
        if (p->unacked) persist_fail(s, p->err, "");
        return 0;
    }
    if (!p->unacked && wal_pending(p->log) == 0) return 0;
    int rc = wal_flush(p->log);
    if (rc < 0) {
        persist_fail(s, rc, "writing");
        return 1;
    }
    if (persist_policy(s) == FSYNC_ALWAYS) {
        if ((rc = wal_sync(p->log)) < 0) {
            persist_fail(s, rc, "fsyncing");
            return 1;
        }
        p->fsyncs++;
        p->last_fsync_ms = util_wall_ms();
    }
    unacked_clear(p);
    return 1;
}

/* ---- opening and closing logs ---------------------------------------------------- */

/* Close the current log after committing it.  Returns the commit's error. */
static int log_close_current(persist *p)
{
    if (!p->log) return 0;
    fs_wait_idle(p);
    int rc = p->err ? 0 : wal_commit(p->log);
    int crc = wal_close(p->log);
    p->log = NULL;
    mem_free(p->log_path);
    p->log_path = NULL;
    return p->err ? 0 : (rc ? rc : crc);
}

int persist_open_log_at(persist *p, uint64_t base)
{
    char *path = log_path_for(p, base);
    wal *w;
    int rc = wal_open(p->io, path, base, &w);
    if (rc < 0) {
        mem_free(path);
        return rc;
    }
    p->log = w;
    p->log_path = path;
    p->log_base = base;
    return 0;
}

/* Start a new log at the current seq (before a snapshot at that seq).  The
 * old log is committed first; on any failure the old log stays in use. */
int persist_rotate_log(server *s)
{
    persist *p = s->ps;
    uint64_t seq = wal_last_seq(p->log);
    if (seq == p->log_base) return 0;           /* empty: already starts at seq */
    fs_wait_idle(p);
    int rc = wal_commit(p->log);
    if (rc < 0) {
        persist_fail(s, rc, "fsyncing");
        return rc;
    }
    char *path = log_path_for(p, seq);
    wal *w;
    if ((rc = wal_open(p->io, path, seq, &w)) < 0) {
        log_msg(LOG_WARNING, "Could not start a new log %s: %s", path, strerror(-rc));
        mem_free(path);
        return rc;
    }
    p->old_logs_bytes += wal_size(p->log);
    (void)wal_close(p->log);
    mem_free(p->log_path);
    p->log = w;
    p->log_path = path;
    p->log_base = seq;
    return 0;
}

/* Memory (everything up to seq) is on disk again: a fresh log.  The failed
 * one is closed only once the new one is open, so p->log is never NULL; a
 * stale error of the fsync thread is dropped. */
int persist_recover(server *s, uint64_t seq)
{
    persist *p = s->ps;
    wal *old = p->log;
    char *old_path = p->log_path;
    uint64_t old_base = p->log_base;
    fs_wait_idle(p);
    int rc = persist_open_log_at(p, seq);
    if (rc < 0) {
        p->log = old;
        p->log_path = old_path;
        p->log_base = old_base;
        log_msg(LOG_WARNING, "Snapshot written, but a new log could not be opened: %s",
                strerror(-rc));
        snprintf(p->errmsg, sizeof p->errmsg, "opening a new log in %s: %s", p->dir,
                 strerror(-rc));
        return rc;
    }
    (void)wal_close(old);
    mem_free(old_path);
    if (p->fs_started) {
        pthread_mutex_lock(&p->fs_mu);
        p->fs_err = 0;
        pthread_mutex_unlock(&p->fs_mu);
    }
    p->err = 0;
    p->errmsg[0] = '\0';
    log_msg(LOG_NOTICE, "Write-ahead log recovered: snapshot at seq %" PRIu64
            " written, a new log started; accepting writes again", seq);
    return 0;
}

/* A replica's full sync (persist.h).  Order for crashes: the old logs go
 * (and the directory is fsync'd) before the new snapshot is renamed in,
 * so a crash in between leaves the old snapshot alone -- an older dataset
 * the replica's next full sync replaces -- never a new snapshot followed by
 * logs of another history. */
int persist_adopt_snapshot(server *s, const char *path, uint64_t seq)
{
    persist *p = s->ps;
    if (!p) return 0;
    int rc = log_close_current(p);
    if (rc < 0) log_msg(LOG_WARNING, "Committing the log before a full sync: %s", strerror(-rc));
    logfile *v;
    int n = persist_list_logs(p, &v);
    for (int i = 0; i < n; i++) (void)p->io->unlink(p->io, v[i].path);
    if (n > 0) persist_free_logs(v, n);
    (void)p->io->fsync_dir(p->io, p->dir);
    rc = p->io->rename(p->io, path, p->snap_path);
    if (rc == 0) rc = p->io->fsync_dir(p->io, p->dir);
    int orc = persist_open_log_at(p, seq);
    if (orc < 0) {
        /* p->log must never be NULL while serving (the invariants above) */
        log_msg(LOG_WARNING, "Could not start a log in %s after a full sync: %s; exiting",
                p->dir, strerror(-orc));
        exit(1);
    }
    if (rc < 0) {
        (void)p->io->unlink(p->io, path);
        /* memory is ahead of the directory: fail the log, so writes are
         * refused until the cron's recovery snapshot writes memory out */
        persist_fail(s, rc, "adopting a full sync in");
        return rc;
    }
    p->old_logs_bytes = 0;
    p->size_at_snapshot = 0;
    p->last_save_ms = util_wall_ms();
    p->dirty_at_save = s->dirty;
    return 0;
}

/* Unlink every log whose base is below `below` (the snapshot child, after
 * its snapshot is in place: they are all covered by it). */
void persist_unlink_older_logs(persist *p, uint64_t below)
{
    logfile *v;
    int n = persist_list_logs(p, &v);
    if (n < 0) return;
    for (int i = 0; i + 1 < n; i++)
        if (v[i].base < below && v[i + 1].base <= below) (void)p->io->unlink(p->io, v[i].path);
    persist_free_logs(v, n);
}

/* After a snapshot at seq: logs older than the one starting at seq go. */
void persist_prune_logs(persist *p, uint64_t seq)
{
    logfile *v;
    int n = persist_list_logs(p, &v);
    if (n < 0) return;
    p->old_logs_bytes = 0;
    for (int i = 0; i < n; i++) {
        if (v[i].base >= p->log_base) continue;          /* the current log */
        /* A log is obsolete when the next one starts at or before seq:
         * every record in it is <= seq, so in the snapshot. */
        if (i + 1 < n && v[i + 1].base <= seq) {
            int rc = p->io->unlink(p->io, v[i].path);
            if (rc == 0 || rc == -ENOENT) continue;
            log_msg(LOG_WARNING, "Could not remove old log %s: %s", v[i].path, strerror(-rc));
        }
        struct stat st;
        if (stat(v[i].path, &st) == 0) p->old_logs_bytes += (uint64_t)st.st_size;
    }
    persist_free_logs(v, n);
    (void)p->io->fsync_dir(p->io, p->dir);
}

/* ---- cron ------------------------------------------------------------------------ */

void persist_cron(server *s)
{
    persist *p = s->ps;
    if (!p || p->loading) return;
    persist_reap(s, 0);
    fs_collect(s);
    if (!p->err && persist_policy(s) == FSYNC_EVERYSEC && wal_flushed_seq(p->log) > fs_synced(p)) {
        int64_t now = util_wall_ms();
        if (now - p->last_fsync_ms >= 1000) {
            fs_submit(p, wal_fd(p->log), wal_flushed_seq(p->log));
            p->last_fsync_ms = now;
            p->fsyncs++;
        }
    }
    persist_snapshot_cron(s);
}

/* ---- close ----------------------------------------------------------------------- */

void persist_close(server *s)
{
    persist *p = stager(s);
    if (!p) return;
    if (p->child > 0) {
        kill(p->child, SIGKILL);
        persist_reap(s, 1);
    }
    if (p->log) {
        int rc = log_close_current(p);
        if (rc < 0) log_msg(LOG_WARNING, "Error committing the write-ahead log at exit: %s", strerror(-rc));
        else log_msg(LOG_NOTICE, "Write-ahead log committed and closed");
    }
    if (p->fs_started) {
        pthread_mutex_lock(&p->fs_mu);
        p->fs_stop = 1;
        pthread_cond_broadcast(&p->fs_cv);
        pthread_mutex_unlock(&p->fs_mu);
        pthread_join(p->fs_thread, NULL);
    }
    pthread_mutex_destroy(&p->fs_mu);
    pthread_cond_destroy(&p->fs_cv);
    if (p->lock_fd >= 0) close(p->lock_fd);
    opbuf_fini(&p->stage);
    opbuf_fini(&p->one);
    mem_free(p->dir);
    mem_free(p->snap_path);
    io_faulty_free(p->faulty);
    mem_free(p);
    s->ps = NULL;
}

/* ---- fault injection (DEBUG WAL-FAULT) --------------------------------------------- */

int persist_debug_fault(server *s, const char *what, int err)
{
    persist *p = s->ps;
    if (!p) return -1;
    if (!strcmp(what, "write")) io_faulty_fail_write(p->faulty, 1, err);
    else if (!strcmp(what, "fsync")) io_faulty_fail_fsync(p->faulty, 1, err);
    else if (!strcmp(what, "off")) io_faulty_reset(p->faulty);
    else return -2;
    log_msg(LOG_WARNING, "DEBUG WAL-FAULT: the next %s fails with %s", what, strerror(err));
    return 0;
}

/* ---- INFO ------------------------------------------------------------------------- */

size_t persist_info(server *s, char *buf, size_t cap)
{
    persist *p = s->ps;
    if (!p) {
        return (size_t)snprintf(buf, cap,
            "loading:0\r\nasync_loading:0\r\nrdb_changes_since_last_save:%lld\r\n"
            "rdb_bgsave_in_progress:0\r\nrdb_last_save_time:%lld\r\nrdb_last_bgsave_status:ok\r\n"
            "aof_enabled:0\r\naof_rewrite_in_progress:0\r\naof_last_write_status:ok\r\n"
            "persistence_dir:\r\n",
            s->dirty, (long long)s->start_wall_ms / 1000);
    }
    int busy = 0;
    if (p->fs_started) {
        pthread_mutex_lock(&p->fs_mu);
        busy = p->fs_busy;
        pthread_mutex_unlock(&p->fs_mu);
    }
    double perc = p->load_total ? 100.0 * (double)p->load_done / (double)p->load_total : 0;
    uint64_t logsz = p->old_logs_bytes + (p->log ? wal_size(p->log) : 0);
    return (size_t)snprintf(buf, cap,
        "loading:%d\r\nasync_loading:0\r\nloading_start_time:%lld\r\nloading_total_bytes:%" PRIu64
        "\r\nloading_loaded_bytes:%" PRIu64 "\r\nloading_loaded_perc:%.2f\r\n"
        "loading_loaded_records:%lld\r\n"
        "rdb_changes_since_last_save:%lld\r\nrdb_bgsave_in_progress:%d\r\n"
        "rdb_last_save_time:%lld\r\nrdb_last_bgsave_status:%s\r\nrdb_last_bgsave_time_sec:%lld\r\n"
        "rdb_current_bgsave_time_sec:%lld\r\nrdb_saves:%lld\r\n"
        "aof_enabled:1\r\naof_rewrite_in_progress:%d\r\naof_last_write_status:%s\r\n"
        "aof_last_write_error:%s\r\naof_fsync:%s\r\naof_current_size:%" PRIu64 "\r\n"
        "aof_base_size:%" PRIu64 "\r\naof_pending_bio_fsync:%d\r\naof_fsyncs:%lld\r\n"
        "aof_last_fsync_time:%lld\r\nwal_seq:%" PRIu64 "\r\nwal_file:%s\r\npersistence_dir:%s\r\n",
        p->loading, (long long)p->load_start_ms / 1000, p->load_total, p->load_done, perc,
        p->loaded_records, s->dirty - p->dirty_at_save, p->child > 0,
        (long long)p->last_save_ms / 1000, p->last_bgsave_ok ? "ok" : "err", p->last_bgsave_secs,
        p->child > 0 ? (long long)(util_mono_ms() - p->child_start_ms) / 1000 : -1LL,
        p->snapshots, p->child > 0, p->err ? "err" : "ok", p->err ? p->errmsg : "",
        s->cfg.appendfsync == FSYNC_ALWAYS ? "always" :
        s->cfg.appendfsync == FSYNC_EVERYSEC ? "everysec" : "no",
        logsz, p->size_at_snapshot, busy, p->fsyncs,
        (long long)(p->last_fsync_ms ? p->last_fsync_ms / 1000 : 0),
        p->log ? wal_last_seq(p->log) : p->applied_seq, p->log_path ? p->log_path : "", p->dir);
}
