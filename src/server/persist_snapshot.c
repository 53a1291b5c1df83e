/* persist_snapshot.c -- snapshots of memory: SAVE (and VSAVE, SHUTDOWN SAVE)
 * in the foreground; BGSAVE and the cron's snapshots (automatic compaction,
 * and recovery after a log failure) in a forked child; reaping the child;
 * and what follows a snapshot (snapshot_done: INFO's rdb_* figures, the
 * logs it covers pruned).  What a snapshot holds is dataset.c's.
 *
 * A snapshot at seq S is taken like this: the current log is committed and
 * closed, a new log wal-S.log is opened (persist_rotate_log), and memory at
 * that instant -- exactly the state after record S -- is written to the
 * snapshot (temp file, fsync, rename, fsync dir: dataset_save).  When it
 * succeeds, every log older than wal-S.log is deleted; when it fails
 * nothing is lost: the old snapshot plus all logs still describe the data.
 * BGSAVE forks at that instant: the parent keeps serving, and the kernel's
 * copy-on-write gives the child its frozen view.
 *
 * Invariants:
 *   - A snapshot is only of a state the log describes exactly: never while
 *     an EXEC's records are staged, never while loading
 *     (persist_can_snapshot).
 *   - At most one child; p->child > 0 from the fork until it is reaped.
 *   - While the log is failed only a recovery snapshot starts.  It cannot
 *     rotate (the failed log cannot be committed): its seq is the failed
 *     log's last record, and its success starts a fresh log at that seq
 *     (persist_recover); the snapshot holds whatever memory has beyond it.
 *   - The child takes none of the server's locks: the everysec thread or a
 *     search worker may have held one at the fork, and they do not exist
 *     in the child.  It reads indices without locks, writes its temp file,
 *     renames it, unlinks the logs it covers and leaves with _exit.
 *   - The directory lock is the parent's alone: the child closes its copy
 *     (a killed server can restart at once) and dies with the parent
 *     (PR_SET_PDEATHSIG on Linux; everywhere, dataset_save refuses to
 *     rename once the parent is gone), so it never renames an old snapshot
 *     over what a new server wrote.
 *
 * Threads and processes: the loop thread; the forked child runs the
 * `pid == 0` branch of persist_fork_snapshot and what it calls. */
#include "persist.h"
#include "persist_private.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <sys/wait.h>
#include <unistd.h>

#include "engram/mem.h"
#include "engram/util.h"
#include "engram/wal.h"
#include "log.h"
#include "server.h"
#include "dataset.h"

#define PERSIST_RETRY_MS   3000   /* between recovery snapshots after a log failure */
#define PERSIST_AUTO_RETRY_MS 5000 /* between automatic snapshots after one failed */

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
    if (recovery && persist_recover(s, seq) < 0) return;
    persist_prune_logs(p, seq);
    p->size_at_snapshot = wal_size(p->log);
}

/* In the snapshot child: die with the parent (Linux: the kernel sends
 * SIGKILL; elsewhere dataset_save checks before its rename, told the
 * parent's pid by dataset_set_parent). */
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
    if (!recovery && persist_rotate_log(s) < 0) {
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
         * a new server wrote (persist_child_die_with_parent). */
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
        persist_unlink_older_logs(p, p->log_base);
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

void persist_reap(server *s, int block)
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
        char *t = persist_join_path(p->dir, tmp);
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
    if (persist_rotate_log(s) < 0) {
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

void persist_snapshot_cron(server *s)
{
    persist *p = s->ps;
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
