/* persist_private.h -- what persist.c, persist_snapshot.c and persist_load.c
 * share: struct persist and the functions one of them calls in another.
 * Nothing outside persist*.c includes it; the rest of the server sees
 * persist.h only.
 *
 * Who writes which fields: persist_open sets everything up; after it, the
 * log, staging, failure, everysec and stats fields are persist.c's (and
 * last_retry_ms the cron's snapshot retry too), the snapshot fields and
 * size_at_snapshot persist_snapshot.c's, the loading and replay fields
 * persist_load.c's.  Once fs_started is set, the fs_* fields are shared
 * with the everysec thread: read and written only under fs_mu. */
#ifndef ENGRAM_PERSIST_PRIVATE_H
#define ENGRAM_PERSIST_PRIVATE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "engram/io.h"
#include "engram/oplog.h"
#include "engram/wal.h"
#include "persist.h"

enum { FSYNC_ALWAYS = 0, FSYNC_EVERYSEC = 1, FSYNC_NO = 2 };

typedef struct logfile {
    uint64_t base;
    char *path;
} logfile;

struct persist {
    int stage_only;              /* persistence off: staging for replication only
                                    (persist_stage_enable); nothing else is set */
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
    opbuf stage, one;            /* the command's records; the one being built */
    uint8_t one_type;            /* one's record type (OP_INDB outside database 0) */
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

/* ---- persist.c: the log files ------------------------------------------- */
/* dir/name, allocated (mem_free it). */
char *persist_join_path(const char *dir, const char *name);
/* The log files in p->dir, sorted by base seq, into *out (free with
 * persist_free_logs).  Returns the count or -errno. */
int persist_list_logs(persist *p, logfile **out);
void persist_free_logs(logfile *v, int n);
/* Make dir/wal-<base>.log (created if missing, else continued after its
 * last record: wal_open) the log appended to.  The previous p->log is
 * replaced, not closed: the caller holds on to it.  0, or -errno with
 * p->log unchanged. */
int persist_open_log_at(persist *p, uint64_t base);
/* Commit the current log and start a new one at the current seq, before a
 * snapshot at that seq (nothing to do if the log is still empty).  0, or
 * -errno with the old log still in use (a failed commit also fails the
 * log). */
int persist_rotate_log(server *s);
/* Logs a snapshot made obsolete.  persist_unlink_older_logs only unlinks
 * (the snapshot child, so the parent never waits on the filesystem);
 * persist_prune_logs, on the loop thread once a snapshot at seq is in
 * place (or at start-up), also recounts old_logs_bytes and fsyncs dir. */
void persist_unlink_older_logs(persist *p, uint64_t below);
void persist_prune_logs(persist *p, uint64_t seq);
/* A recovery snapshot at seq is on disk: start a fresh log at seq and
 * accept writes again.  0, or -errno (the failed log stays, writes stay
 * refused, errmsg says why). */
int persist_recover(server *s, uint64_t seq);

/* ---- persist_snapshot.c ---------------------------------------------------- */
/* Collect the snapshot child if it has finished (block: wait for it) and
 * book its result (snapshot_done). */
void persist_reap(server *s, int block);
/* The cron's snapshots (after persist_cron's fsync work): while the log is
 * failed, a recovery snapshot every PERSIST_RETRY_MS; otherwise automatic
 * compaction once the logs have grown enough. */
void persist_snapshot_cron(server *s);

#endif
