/* persist.h -- the server's durability: the write-ahead log of every write,
 * snapshots, and recovery at start-up.  Loop thread only (the everysec
 * fsync thread is private to persist.c, the snapshot child to
 * persist_snapshot.c).
 *
 * With `dir` empty (the default) persistence is off and every function
 * here is a no-op: s->ps is NULL.
 *
 * How a write becomes durable (the ordering rule).  It is enforced in two
 * places: client_flush asks persist_holds_replies before it writes
 * anything, wherever it runs (before-sleep, a socket's write handler,
 * shutdown), and persist_before_sleep commits before srv_before_sleep
 * writes the replies out.
 *   1. a write command changes memory, then logs what it changed
 *      (persist_log_*); the records of one command (or one EXEC) are staged
 *      and appended as one WAL record (OP_BATCH if several) when the
 *      command ends (persist_cmd_end); the client is marked unacknowledged
 *      from the offset its reply starts at;
 *   2. while a client is unacknowledged or the log holds appended bytes not
 *      yet written, persist_holds_replies is 1 and client_flush writes
 *      nothing (it queues the client for before-sleep again), so no reply
 *      -- not even a read that saw the new data -- leaves before the commit;
 *   3. before the loop sleeps, srv_before_sleep first drains the search
 *      pool (a finished search can resume a paused client, whose pipelined
 *      writes then log records), then calls persist_before_sleep: the log
 *      is written, and with appendfsync always fsync'd (one fsync covers
 *      every client's writes of the iteration); with everysec the thread
 *      fsyncs within about a second, with no the OS decides.  Only then are
 *      the pending clients written, in the order their replies appeared.
 *      srv_shutdown does the same: drain, release held replies, commit,
 *      write;
 *   4. if appending, writing or syncing fails (a background fsync's failure
 *      is picked up by the next before-sleep or cron), the unacknowledged
 *      clients' replies from their first logged write on are replaced by an
 *      error naming the cause and their connections close after it; from
 *      then on writes are refused (MISCONF) until a snapshot succeeds, which
 *      the cron retries.
 */
#ifndef ENGRAM_PERSIST_H
#define ENGRAM_PERSIST_H

#include <stddef.h>
#include <stdint.h>

#include "engram/vindex.h"

typedef struct server server;
typedef struct client client;
typedef struct persist persist;

/* Start-up: lock dir, load the snapshot, replay the logs, open the log for
 * appending.  Between the loads, events are processed (clients get
 * -LOADING).  -1 with a message naming the file and offset on failure. */
int persist_open(server *s, char *err, size_t errcap);
/* Commit and close the log (SIGTERM, SHUTDOWN), reap a running child. */
void persist_close(server *s);

/* 1 while writes are staged as records: persistence is on, or replication
 * asked for them (persist_stage_enable: with persistence off, records are
 * staged for the replication stream alone).  Callers that build records
 * test this, not s->ps. */
int persist_logging(const server *s);
/* Stage records from now on even with persistence off (replication has a
 * backlog).  Idempotent; with persistence on a no-op. */
void persist_stage_enable(server *s);
/* Apply one record (of oplog.h's types, a BATCH or INDB too) to memory in
 * database db exactly as replaying the log does (persist_load.c), without
 * logging it.  0, or a negative code with a message in err. */
int persist_apply(server *s, int db, uint8_t type, const void *payload, size_t len, char *err,
                  size_t errcap);
/* A replica's full sync: the snapshot file at path (log seq `seq`) is now
 * what memory holds.  The log is committed and closed, every log deleted,
 * path renamed over engram.snap and a fresh log started at seq.  0, or
 * -errno (the failure is logged; path is removed). */
int persist_adopt_snapshot(server *s, const char *path, uint64_t seq);

/* Around every command execution (nesting: EXEC runs commands inside). */
void persist_cmd_begin(server *s, client *c);
void persist_cmd_end(server *s, client *c);
/* While the log is failed, why (the text INFO persistence shows as
 * aof_last_write_error): dispatch then refuses writes (MISCONF) until a
 * snapshot succeeds.  NULL while writes are accepted. */
const char *persist_write_error(const server *s);
/* 1 while a reply could show data the log has not committed: a client
 * waits for the commit, or the healthy log holds appended bytes not yet
 * written (records logged by a client that has left since hold too).  A
 * failed log holds nothing: its waiting clients got their errors. */
int persist_holds_replies(const server *s);
/* Forget c (it is being freed). */
void persist_client_gone(server *s, client *c);

/* What a write changed, in database db.  persist_log_key: the key's new
 * state (a string's value and TTL; a deletion; an object's TTL -- its
 * contents are logged by the vector operations below). */
void persist_log_key(server *s, int db, const char *key, size_t klen);
void persist_log_range(server *s, int db, const char *key, size_t klen, size_t off,
                       const char *p, size_t n);
/* FLUSHDB of db, or FLUSHALL (db -1). */
void persist_log_flush(server *s, int db);
/* Key commands, for keys of any type (newkey overwritten / db's key absent). */
void persist_log_rename(server *s, int db, const char *key, size_t klen, const char *newkey,
                        size_t nklen);
void persist_log_move(server *s, int db, const char *key, size_t klen, int dstdb);
void persist_log_copy(server *s, int db, const char *key, size_t klen, const char *newkey,
                      size_t nklen, int dstdb, int replace);
void persist_log_swapdb(server *s, int db1, int db2);
/* A new set: p's parameters (its quantisation too), a ring's capacity, the
 * embedder, the input dim of a REDUCE projection (0 = none). */
void persist_log_vnew(server *s, int db, const char *name, size_t nlen, const vindex_params *p,
                      uint32_t capacity, const char *embed, size_t elen, uint32_t proj_in);
/* An add as the index got it (vec: after any projection).  flags:
 * OP_VADD_AUTOID (key came from VADD index *), OP_VADD_DROP (the entry's
 * payload goes); payload NULL = none given; ef: the build beam asked for
 * (0 = the index's). */
void persist_log_vadd(server *s, int db, const char *name, size_t nlen, const char *key,
                      size_t klen, const float *vec, uint32_t dim, unsigned flags,
                      const char *payload, size_t plen, uint32_t ef);
/* An existing entry's payload set (or removed: drop). */
void persist_log_vsetattr(server *s, int db, const char *name, size_t nlen, const char *key,
                          size_t klen, int drop, const char *attr, size_t alen);
void persist_log_vdel(server *s, int db, const char *name, size_t nlen, const char *key,
                      size_t klen);
/* A record its caller encodes (oplog.h's op_put_*): the buffer to append
 * the payload of `type` about database db to -- NULL when persistence is
 * off -- then persist_log_close, which stages it as the other
 * persist_log_* do. */
struct opbuf *persist_log_open(server *s, int db, uint8_t type);
void persist_log_close(server *s);

/* Commit the iteration's records before the replies go out
 * (srv_before_sleep, after its pool drain; srv_shutdown): write the log,
 * and under appendfsync always fsync it.  Returns 1 if a commit was
 * attempted (done, or failed and the log with it), 0 if there was nothing
 * to commit, no log yet (loading) or the log is failed.
 * Afterwards persist_holds_replies is 0 until a command logs again:
 * srv_before_sleep's write-out loop relies on it (a held client queues
 * itself again, so the loop would never end). */
int persist_before_sleep(server *s);
/* Periodic work: everysec fsync, children, auto snapshots, recovery. */
void persist_cron(server *s);

/* Snapshots.  background: fork a child; else write in the foreground.
 * 0, or -1 with Redis-style error text in err. */
int persist_save(server *s, int background, char *err, size_t errcap);
int64_t persist_last_save_ms(const server *s);

/* DEBUG WAL-FAULT: make the next file write ("write") or fsync ("fsync")
 * fail with errno err, or disarm ("off").  0; -1 persistence off; -2 bad what. */
int persist_debug_fault(server *s, const char *what, int err);

/* INFO persistence: the section's lines into buf; returns their length
 * (as snprintf: retry bigger if >= cap). */
size_t persist_info(server *s, char *buf, size_t cap);
/* Processing events while loading at start-up (server.c). */
int persist_loading(const server *s);

#endif
