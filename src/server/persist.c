/* persist.c -- durability for the server: the write-ahead log every write
 * goes to, group commit before replies, the everysec fsync thread, what
 * happens when the disk fails, background snapshots in a forked child,
 * automatic compaction, and recovery at start-up.  What a snapshot holds
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
 * Log rotation and snapshots.  A snapshot at seq S is taken like this: the
 * current log is committed and closed, a new log wal-S.log is opened, and
 * a child forked at that instant writes memory -- exactly the state after
 * record S -- to the snapshot (temp file, fsync, rename, fsync dir).  When
 * the child succeeds, every log older than wal-S.log is deleted; when it
 * fails nothing is lost: the old snapshot plus all logs still describe the
 * data.  The parent keeps serving; the kernel's copy-on-write gives the
 * child its frozen view.  SAVE does the same in the foreground.
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
 * Failure.  When appending, writing or syncing the log fails, the writer is
 * failed for good (wal.h); the clients whose writes it held get an error
 * instead of their replies and are disconnected after it (their pipelines'
 * reply counts could not be kept), and writes are refused with -MISCONF.
 * Memory now holds writes the log lacks, so the only way back is a
 * snapshot of memory: the cron retries a background snapshot every few
 * seconds, and when one succeeds a fresh log starts and writes resume.
 *
 * Threads: the loop thread, plus the everysec fsync thread, which only
 * fsyncs a descriptor handed to it under fs_mu (the loop never closes the
 * log while it runs).  The snapshot child is a process: it shares nothing
 * but the frozen memory image. */
#include "persist.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engram/io.h"
#include "engram/le.h"
#include "engram/mem.h"
#include "engram/oplog.h"
#include "engram/util.h"
#include "engram/wal.h"
#include "log.h"
#include "server.h"
#include "dataset.h"
#include "models.h"


enum { FSYNC_ALWAYS = 0, FSYNC_EVERYSEC = 1, FSYNC_NO = 2 };

#define PERSIST_RETRY_MS   3000   /* between recovery snapshots after a log failure */
#define PERSIST_AUTO_RETRY_MS 5000 /* between automatic snapshots after one failed */
#define PERSIST_EVENTS_MS  50     /* event processing while loading */

typedef struct logfile {
    uint64_t base;
    char *path;
} logfile;

struct persist {
    io_ops *io;                  /* every file operation goes through it */
    io_faulty *faulty;           /* ... which is a disarmed fault injector (DEBUG WAL-FAULT) */
    char *dir;
    char *snap_path;
    int lock_fd;
    /* the log being appended to */
    wal *log;
    char *log_path;
    uint64_t log_base;
    uint64_t old_logs_bytes;     /* bytes in older logs (deleted by the next snapshot) */
    uint64_t size_at_snapshot;   /* log bytes just after the last snapshot */
    /* staging: the records of the command (or EXEC) being run */
    int depth;
    opbuf stage, one;
    uint32_t nstaged;
    size_t mark;                 /* the client's c->out.len when it started */
    client *unacked;             /* clients whose replies wait for the commit */
    /* failure */
    int err;                     /* sticky -errno of the log; 0 = healthy */
    char errmsg[256];
    int64_t err_since_ms, last_retry_ms;
    /* everysec */
    pthread_t fs_thread;
    int fs_started, fs_stop, fs_busy, fs_fd, fs_err;
    uint64_t fs_seq, fs_synced_seq;
    pthread_mutex_t fs_mu;
    pthread_cond_t fs_cv;
    /* snapshots */
    pid_t child;
    int child_recovery;          /* the child's success clears a log failure */
    uint64_t child_seq;
    int64_t child_start_ms;
    int64_t last_save_ms;        /* last successful snapshot (or start-up) */
    int64_t last_fail_ms;        /* monotonic: last failed snapshot (backoff) */
    int last_bgsave_ok;
    long long last_bgsave_secs;
    long long dirty_at_save;
    long long snapshots;
    /* stats */
    long long fsyncs;
    int64_t last_fsync_ms;
    /* loading */
    int loading;
    uint64_t load_total, load_done;
    int64_t load_start_ms, load_events_ms;
    long long loaded_records;
    /* replay state */
    uint64_t snap_seq;           /* the loaded snapshot's */
    uint64_t applied_seq;
    const char *replay_file;
    char replay_err[256];
};

static int persist_policy(const server *s) { return s->cfg.appendfsync; }

/* ---- small helpers ------------------------------------------------------- */

static char *path_join(const char *dir, const char *name)
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
    return path_join(p->dir, name);
}

static int log_cmp(const void *a, const void *b)
{
    uint64_t x = ((const logfile *)a)->base, y = ((const logfile *)b)->base;
    return x < y ? -1 : x > y;
}

/* The log files in dir, sorted by base seq.  Returns the count or -errno. */
static int list_logs(persist *p, logfile **out)
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
        v[n].path = path_join(p->dir, de->d_name);
        n++;
    }
    closedir(d);
    if (n) qsort(v, (size_t)n, sizeof *v, log_cmp);
    *out = v;
    return n;
}

/* A crash (or power loss) while a snapshot was written leaves its temp
 * file: never complete, never renamed, so never needed. */
static void remove_stale_temps(persist *p)
{
    DIR *d = opendir(p->dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, "engram.snap.tmp.", 16) != 0) continue;
        char *path = path_join(p->dir, de->d_name);
        if (p->io->unlink(p->io, path) == 0)
            log_msg(LOG_NOTICE, "Removed %s (a snapshot interrupted by a crash)", path);
        mem_free(path);
    }
    closedir(d);
}

static void free_logs(logfile *v, int n)
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
    persist *p = s->ps;
    if (!p || p->depth++) return;
    opbuf_reset(&p->stage);
    p->nstaged = 0;
    p->mark = c->out.len;
}

static void persist_append(server *s, uint8_t type, const void *payload, size_t len)
{
    persist *p = s->ps;
    if (p->err) return;
    if (len > WAL_PAYLOAD_MAX) {
        persist_fail(s, -EFBIG, "a record too large for");
        return;
    }
    int rc = wal_append(p->log, type, payload, (uint32_t)len, NULL);
    if (rc < 0) persist_fail(s, rc, "appending to");
}

void persist_cmd_end(server *s, client *c)
{
    persist *p = s->ps;
    if (!p || --p->depth || !p->nstaged) return;
    if (!c->ps_unacked) {
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

/* Stage the payload in p->one as one change of the running command. */
static void stage_one(server *s, uint8_t type)
{
    persist *p = s->ps;
    if (p->depth == 0) {            /* outside a command: append directly */
        persist_append(s, type, p->one.p, p->one.len);
        return;
    }
    op_put_batch_item(&p->stage, type, p->one.p, (uint32_t)p->one.len);
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

void persist_log_key(server *s, const char *key, size_t klen)
{
    persist *p = s->ps;
    if (!p) return;
    opbuf_reset(&p->one);
    kv_entry *e = kv_peek(s->db, key, klen);
    if (e) {
        size_t vlen;
        const char *v = kv_val(e, &vlen);
        op_put_set(&p->one, key, (uint32_t)klen, v, (uint32_t)vlen, kv_get_expire(e));
        stage_one(s, OP_SET);
    } else {
        op_put_del(&p->one, key, (uint32_t)klen);
        stage_one(s, OP_DEL);
    }
}

void persist_log_range(server *s, const char *key, size_t klen, size_t off, const char *bytes, size_t n)
{
    persist *p = s->ps;
    if (!p) return;
    opbuf_reset(&p->one);
    op_put_setrange(&p->one, key, (uint32_t)klen, (uint32_t)off, bytes, (uint32_t)n);
    stage_one(s, OP_SETRANGE);
}

void persist_log_flushall(server *s)
{
    persist *p = s->ps;
    if (!p) return;
    opbuf_reset(&p->one);
    stage_one(s, OP_FLUSHALL);
}

void persist_log_vnew(server *s, const char *name, size_t nlen, const vindex_params *vp,
                      uint32_t capacity, const char *embed, size_t elen)
{
    persist *p = s->ps;
    if (!p) return;
    opbuf_reset(&p->one);
    op_put_vnew(&p->one, name, (uint32_t)nlen, (uint8_t)vp->type, (uint8_t)vp->metric, vp->dim,
                vp->M, vp->ef_construction, vp->ef_search, vp->seed, capacity, embed,
                (uint32_t)elen);
    stage_one(s, OP_VNEW);
}

void persist_log_vadd(server *s, const char *name, size_t nlen, const char *key, size_t klen,
                      const float *vec, uint32_t dim, int autoid, const char *payload, size_t plen)
{
    persist *p = s->ps;
    if (!p) return;
    opbuf_reset(&p->one);
    op_put_vadd(&p->one, name, (uint32_t)nlen, key, (uint32_t)klen, vec, dim, autoid, payload,
                (uint32_t)plen);
    stage_one(s, OP_VADD);
}

void persist_log_vdel(server *s, const char *name, size_t nlen, const char *key, size_t klen)
{
    persist *p = s->ps;
    if (!p) return;
    opbuf_reset(&p->one);
    op_put_vdel(&p->one, name, (uint32_t)nlen, key, (uint32_t)klen);
    stage_one(s, OP_VDEL);
}

void persist_log_vdrop(server *s, const char *name, size_t nlen)
{
    persist *p = s->ps;
    if (!p) return;
    opbuf_reset(&p->one);
    op_put_vdrop(&p->one, name, (uint32_t)nlen);
    stage_one(s, OP_VDROP);
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

static int log_open_at(persist *p, uint64_t base)
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
static int log_rotate(server *s)
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

/* Unlink every log whose base is below `below` (the snapshot child, after
 * its snapshot is in place: they are all covered by it). */
static void logs_unlink_older(persist *p, uint64_t below)
{
    logfile *v;
    int n = list_logs(p, &v);
    if (n < 0) return;
    for (int i = 0; i + 1 < n; i++)
        if (v[i].base < below && v[i + 1].base <= below) (void)p->io->unlink(p->io, v[i].path);
    free_logs(v, n);
}

/* After a snapshot at seq: logs older than the one starting at seq go. */
static void logs_prune(persist *p, uint64_t seq)
{
    logfile *v;
    int n = list_logs(p, &v);
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
    free_logs(v, n);
    (void)p->io->fsync_dir(p->io, p->dir);
}

/* ---- snapshots -------------------------------------------------------------------- */

static void snapshot_done(server *s, int ok, uint64_t seq, int recovery, int64_t started_ms)
{
    persist *p = s->ps;
    p->last_bgsave_ok = ok;
    p->last_bgsave_secs = (util_mono_ms() - started_ms + 500) / 1000;
    if (!ok) {
        p->last_fail_ms = util_mono_ms();
        return;
    }
    p->last_save_ms = util_wall_ms();
    p->snapshots++;
    if (recovery) {
        /* Memory (everything up to seq) is on disk again: a fresh log.  The
         * failed one is closed only once the new one is open, so p->log is
         * never NULL; a stale error of the fsync thread is dropped. */
        wal *old = p->log;
        char *old_path = p->log_path;
        uint64_t old_base = p->log_base;
        fs_wait_idle(p);
        int rc = log_open_at(p, seq);
        if (rc < 0) {
            p->log = old;
            p->log_path = old_path;
            p->log_base = old_base;
            log_msg(LOG_WARNING, "Snapshot written, but a new log could not be opened: %s",
                    strerror(-rc));
            snprintf(p->errmsg, sizeof p->errmsg, "opening a new log in %s: %s", p->dir,
                     strerror(-rc));
            return;
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
    }
    logs_prune(p, seq);
    p->size_at_snapshot = wal_size(p->log);
}

/* In the snapshot child: die with the parent (Linux: the kernel sends
 * SIGKILL; elsewhere dataset_save checks before its rename through
 * snapshot_parent_alive). */
static void persist_child_die_with_parent(pid_t parent)
{
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
    dataset_set_parent(parent);
    if (getppid() != parent) _exit(1);      /* it died before prctl took effect */
}

/* A snapshot must be of a state the log describes exactly: not half-way
 * through a transaction (its records are still staged), not while loading. */
static int persist_can_snapshot(persist *p, char *err, size_t errcap)
{
    if (p->loading || !p->log) {
        snprintf(err, errcap, "LOADING engram is loading the dataset in memory");
        return 0;
    }
    if (p->depth > 1) {        /* 1: the SAVE itself; more: inside EXEC */
        snprintf(err, errcap, "ERR a snapshot cannot be taken inside MULTI/EXEC");
        return 0;
    }
    return 1;
}

static int persist_fork_snapshot(server *s, int recovery, char *err, size_t errcap)
{
    persist *p = s->ps;
    if (!persist_can_snapshot(p, err, errcap)) return -1;
    if (p->child > 0) {
        snprintf(err, errcap, "ERR Background save already in progress");
        return -1;
    }
    if (!recovery && p->err) {
        snprintf(err, errcap, "MISCONF the write-ahead log failed (%s); a recovery snapshot is "
                 "retried automatically", p->errmsg);
        return -1;
    }
    if (!recovery && log_rotate(s) < 0) {
        snprintf(err, errcap, "ERR could not start a new log in %s; see the server log", p->dir);
        return -1;
    }
    uint64_t seq = wal_last_seq(p->log);
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errcap, "ERR can't fork a snapshot child: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        /* The child: memory is frozen at seq.  Write and leave; no atexit
         * handlers, no shared descriptors touched. */
        char e[512];
        for (int i = 0; i < s->nlfds; i++) close(s->lfds[i]);
        /* The directory lock stays with the parent alone: a server killed
         * while we write must be restartable at once, and a child that
         * outlives its parent must never rename an old snapshot over what
         * a new server wrote (persist_child_orphaned). */
        close(p->lock_fd);
        persist_child_die_with_parent(parent);
        int rc = dataset_save(s, p->io, p->dir, seq, util_wall_ms(), e, sizeof e);
        if (rc < 0) {
            log_msg(LOG_WARNING, "Snapshot failed: %s", e);
            _exit(1);
        }
        log_msg(LOG_NOTICE, "Snapshot at seq %" PRIu64 " written by the child", seq);
        /* Deleting hundreds of MB of old logs takes the filesystem tens of
         * ms: done here, not on the parent's event loop.  The logs older
         * than the one the parent appends to are all <= seq. */
        logs_unlink_older(p, p->log_base);
        _exit(0);
    }
    p->child = pid;
    p->child_seq = seq;
    p->child_recovery = recovery;
    p->child_start_ms = util_mono_ms();
    p->dirty_at_save = s->dirty;
    log_msg(LOG_NOTICE, "Background snapshot started by pid %d (seq %" PRIu64 ")", (int)pid, seq);
    return 0;
}

static void persist_reap(server *s, int block)
{
    persist *p = s->ps;
    if (p->child <= 0) return;
    int status = 0;
    pid_t r = waitpid(p->child, &status, block ? 0 : WNOHANG);
    if (r == 0) return;
    int ok = r == p->child && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!ok) {
        char tmp[64];
        snprintf(tmp, sizeof tmp, "engram.snap.tmp.%d", (int)p->child);
        char *t = path_join(p->dir, tmp);
        (void)p->io->unlink(p->io, t);
        mem_free(t);
        if (r < 0)
            log_msg(LOG_WARNING, "Background snapshot pid %d: waitpid: %s", (int)p->child,
                    strerror(errno));
        else
            log_msg(LOG_WARNING, "Background snapshot failed (pid %d, %s %d)", (int)p->child,
                    WIFSIGNALED(status) ? "signal" : "status",
                    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    } else {
        log_msg(LOG_NOTICE, "Background snapshot terminated with success");
    }
    p->child = 0;
    snapshot_done(s, ok, p->child_seq, p->child_recovery, p->child_start_ms);
}

int persist_save(server *s, int background, char *err, size_t errcap)
{
    persist *p = s->ps;
    if (!p) {
        snprintf(err, errcap, "ERR persistence not enabled; start with --dir");
        return -1;
    }
    if (background) return persist_fork_snapshot(s, 0, err, errcap);
    if (!persist_can_snapshot(p, err, errcap)) return -1;
    if (p->child > 0) {
        snprintf(err, errcap, "ERR Background save already in progress");
        return -1;
    }
    if (p->err) {
        snprintf(err, errcap, "MISCONF the write-ahead log failed (%s); a recovery snapshot is "
                 "retried automatically", p->errmsg);
        return -1;
    }
    if (log_rotate(s) < 0) {
        snprintf(err, errcap, "ERR could not start a new log in %s; see the server log", p->dir);
        return -1;
    }
    uint64_t seq = wal_last_seq(p->log);
    int64_t t0 = util_mono_ms();
    char e[512];
    if (dataset_save(s, p->io, p->dir, seq, util_wall_ms(), e, sizeof e) < 0) {
        log_msg(LOG_WARNING, "Snapshot failed: %s", e);
        snprintf(err, errcap, "ERR snapshot failed: %s", e);
        p->last_bgsave_ok = 0;
        return -1;
    }
    p->dirty_at_save = s->dirty;
    snapshot_done(s, 1, seq, 0, t0);
    log_msg(LOG_NOTICE, "DB saved on disk (seq %" PRIu64 ")", seq);
    return 0;
}

int64_t persist_last_save_ms(const server *s) { return s->ps ? s->ps->last_save_ms : s->start_wall_ms; }

/* ---- cron ------------------------------------------------------------------------ */

void persist_cron(server *s)
{
    persist *p = s->ps;
    if (!p || p->loading) return;
    persist_reap(s, 0);
    fs_collect(s);
    if (p->err) {
        int64_t now = util_mono_ms();
        if (p->child <= 0 && now - p->last_retry_ms >= PERSIST_RETRY_MS) {
            char e[256];
            p->last_retry_ms = now;
            if (persist_fork_snapshot(s, 1, e, sizeof e) < 0)
                log_msg(LOG_WARNING, "Recovery snapshot not started: %s", e);
        }
        return;
    }
    if (persist_policy(s) == FSYNC_EVERYSEC && wal_flushed_seq(p->log) > fs_synced(p)) {
        int64_t now = util_wall_ms();
        if (now - p->last_fsync_ms >= 1000) {
            fs_submit(p, wal_fd(p->log), wal_flushed_seq(p->log));
            p->last_fsync_ms = now;
            p->fsyncs++;
        }
    }
    /* After a failed snapshot, wait before trying again by ourselves (as
     * Redis's bgsave retry delay): each try is a fork and a full write. */
    if (p->child <= 0 && s->cfg.auto_rewrite_pct > 0 &&
        (!p->last_fail_ms || util_mono_ms() - p->last_fail_ms >= PERSIST_AUTO_RETRY_MS)) {
        uint64_t total = p->old_logs_bytes + wal_size(p->log);
        uint64_t base = p->size_at_snapshot ? p->size_at_snapshot : 1;
        if (total >= (uint64_t)s->cfg.auto_rewrite_min &&
            (total - (total > base ? base : total)) * 100 / base >= (uint64_t)s->cfg.auto_rewrite_pct) {
            char e[256];
            log_msg(LOG_NOTICE, "Starting automatic snapshot: the logs hold %" PRIu64
                    " bytes (%" PRIu64 " right after the last snapshot)", total, p->size_at_snapshot);
            if (persist_fork_snapshot(s, 0, e, sizeof e) < 0)
                log_msg(LOG_WARNING, "Automatic snapshot not started: %s", e);
        }
    }
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

static int apply_one(server *s, uint8_t type, const void *payload, size_t len, char *err, size_t cap);

static int apply_vnew(server *s, const op *o, char *err, size_t cap)
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
    char e[256];
    if (o->elen && models_check(s, o->embed, o->elen, o->dim, e, sizeof e) < 0) {
        snprintf(err, cap, "VNEW '%.*s': %.120s", (int)(o->nlen < 64 ? o->nlen : 64), o->name, e + 4);
        return -EBADMSG;
    }
    vreg_entry *ne;
    int rc = vreg_create(s->vreg, o->name, o->nlen, &vp, &ne);
    if (rc == 0 && o->elen && models_attach(s, ne, o->embed, o->elen) < 0) rc = -ENOMEM;
    if (rc < 0) {
        snprintf(err, cap, "VNEW '%.*s' failed: %s", (int)(o->nlen < 64 ? o->nlen : 64), o->name,
                 rc == -EEXIST ? "index already exists" : vindex_strerror(rc));
        return -EBADMSG;
    }
    return 0;
}

static vreg_entry *apply_index(server *s, const op *o, char *err, size_t cap)
{
    vreg_entry *e = vreg_find(s->vreg, o->name, o->nlen);
    if (!e) snprintf(err, cap, "no such index '%.*s'", (int)(o->nlen < 64 ? o->nlen : 64), o->name);
    return e;
}

static int apply_one(server *s, uint8_t type, const void *payload, size_t len, char *err, size_t cap)
{
    op o;
    if (type == OP_BATCH) {
        size_t pos = 0;
        uint8_t t;
        const void *item;
        uint32_t ilen;
        int r;
        while ((r = op_batch_next(payload, len, &pos, &t, &item, &ilen)) > 0) {
            int rc = apply_one(s, t, item, ilen, err, cap);
            if (rc < 0) return rc;
        }
        if (r < 0) snprintf(err, cap, "malformed batch record");
        return r;
    }
    if (op_decode(type, payload, len, &o) < 0) {
        snprintf(err, cap, "malformed record of type %u", type);
        return -EBADMSG;
    }
    switch (type) {
    case OP_SET: {
        kv_entry *e = kv_set(s->db, o.key, o.klen, o.val, o.vlen, NULL);
        kv_set_expire(s->db, e, o.expire_ms < 0 ? -1 : o.expire_ms);
        return 0;
    }
    case OP_DEL:
        kv_del(s->db, o.key, o.klen);
        return 0;
    case OP_FLUSHALL:
        kv_clear(s->db);
        vreg_drop_all(s->vreg);
        return 0;
    case OP_SETRANGE: {
        kv_entry *e = kv_peek(s->db, o.key, o.klen);
        size_t olen = 0;
        if (!e) e = kv_set(s->db, o.key, o.klen, "", 0, NULL);
        kv_val(e, &olen);
        size_t nlen = (size_t)o.offset + o.vlen > olen ? (size_t)o.offset + o.vlen : olen;
        char *v = kv_val_resize(s->db, e, nlen);
        memcpy(v + o.offset, o.val, o.vlen);
        return 0;
    }
    case OP_VNEW:
        return apply_vnew(s, &o, err, cap);
    case OP_VADD: {
        vreg_entry *e = apply_index(s, &o, err, cap);
        if (!e) return -EBADMSG;
        float *v = mem_alloc((size_t)o.dim * sizeof *v);
        for (uint32_t i = 0; i < o.dim; i++) v[i] = op_vec_at(&o, i);
        vindex_add_args a;
        vindex_add_args_init(&a, o.key, o.klen, v, o.dim);
        if (o.flags & OP_VADD_PAYLOAD) {
            a.has_payload = 1;
            a.payload = o.payload;
            a.plen = o.plen;
        }
        /* A ring evicts here exactly as it did live; an auto id notes
         * itself (a canonical decimal key). */
        int rc = vindex_add_ex(vreg_index(e), &a, NULL);
        mem_free(v);
        if (rc < 0) {
            snprintf(err, cap, "VADD failed: %s", vindex_strerror(rc));
            return rc == -ENOMEM ? -ENOMEM : -EBADMSG;
        }
        return 0;
    }
    case OP_VDEL: {
        vreg_entry *e = apply_index(s, &o, err, cap);
        if (!e) return -EBADMSG;
        vindex_del(vreg_index(e), o.key, o.klen);
        return 0;
    }
    case OP_VDROP:
        if (!vreg_drop(s->vreg, o.name, o.nlen)) {
            apply_index(s, &o, err, cap);
            return -EBADMSG;
        }
        return 0;
    default:
        snprintf(err, cap, "unknown record type %u", type);
        return -EBADMSG;
    }
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
    int rc = apply_one(s, type, payload, len, e, sizeof e);
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
    int n = list_logs(p, &v);
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
            free_logs(v, n);
            return -1;
        }
        wal_replay_result r;
        p->replay_file = v[i].path;
        p->replay_err[0] = '\0';
        int rc = wal_replay(p->io, v[i].path, replay_cb, s, &o, &r);
        if (rc == 1) {
            snprintf(err, errcap, "%s", p->replay_err);
            free_logs(v, n);
            return -1;
        }
        if (rc == -EBADMSG) {
            snprintf(err, errcap, "%s is corrupt at offset %" PRIu64 " (of %" PRIu64 " bytes): "
                     "refusing to start.  Set wal-truncate-corrupt yes to cut the log there, "
                     "losing every write after it", v[i].path, r.bad_offset, r.file_size);
            free_logs(v, n);
            return -1;
        }
        if (rc < 0) {
            snprintf(err, errcap, "can't read %s: %s", v[i].path,
                     rc == -ENOTSUP ? "unknown log format version" : strerror(-rc));
            free_logs(v, n);
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
        rc = log_open_at(p, v[n - 1].base);
        if (rc == 0 && wal_last_seq(p->log) != p->applied_seq) {
            snprintf(err, errcap, "%s: ends at seq %" PRIu64 ", expected %" PRIu64,
                     p->log_path, wal_last_seq(p->log), p->applied_seq);
            free_logs(v, n);
            return -1;
        }
    } else {
        rc = log_open_at(p, p->applied_seq);
    }
    free_logs(v, n);
    if (rc < 0) {
        snprintf(err, errcap, "can't open the write-ahead log in %s: %s", p->dir, strerror(-rc));
        return -1;
    }
    logs_prune(p, p->snap_seq);
    p->size_at_snapshot = wal_size(p->log);
    return 0;
}

/* ---- open / close ------------------------------------------------------------------ */

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
    p->snap_path = path_join(p->dir, "engram.snap");
    p->lock_fd = -1;
    p->last_bgsave_ok = 1;
    pthread_mutex_init(&p->fs_mu, NULL);
    pthread_cond_init(&p->fs_cv, NULL);

    char *lock = path_join(p->dir, "LOCK");
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
        log_msg(LOG_NOTICE, "Snapshot loaded: seq %" PRIu64 ", %zu keys, %zu indices in %.3f s",
                seq, kv_size(s->db), vreg_count(s->vreg), (double)(util_mono_ms() - t0) / 1000);
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
    if (p->loaded_records)
        log_msg(LOG_NOTICE, "Write-ahead log replayed: %lld records in %.3f s (now at seq %" PRIu64 ")",
                p->loaded_records, (double)(util_mono_ms() - t0) / 1000, p->applied_seq);
    log_msg(LOG_NOTICE, "Persistence on: dir %s, appendfsync %s", p->dir,
            cfg->appendfsync == FSYNC_ALWAYS ? "always" :
            cfg->appendfsync == FSYNC_EVERYSEC ? "everysec" : "no");
    p->dirty_at_save = s->dirty;
    return 0;
}

void persist_close(server *s)
{
    persist *p = s->ps;
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
