/* persist.h -- the server's durability: the write-ahead log of every write,
 * snapshots, and recovery at start-up.  Loop thread only (the everysec
 * fsync thread and the snapshot child are private to persist.c).
 *
 * With `dir` empty (the default) persistence is off and every function
 * here is a no-op: s->ps is NULL.
 *
 * How a write becomes durable (the ordering rule; enforced in
 * persist_before_sleep, called first thing in srv_before_sleep):
 *   1. a write command changes memory, then logs what it changed
 *      (persist_log_*); the records of one command (or one EXEC) are staged
 *      and appended as one WAL record (OP_BATCH if several) when the
 *      command ends (persist_cmd_end); the client is marked unacknowledged
 *      from the offset its reply starts at;
 *   2. client_flush writes nothing while any record is not yet committed
 *      (persist_holds_replies), so no reply -- not even a read that saw the
 *      new data -- leaves before the commit;
 *   3. before the loop sleeps, the log is written (and with appendfsync
 *      always, fsync'd: one fsync covers every client's writes of the
 *      iteration), then the replies go out;
 *   4. if writing or syncing fails, the unacknowledged clients' replies
 *      from their first logged write on are replaced by an error naming the
 *      cause and their connections close after it; from then on writes are
 *      refused (MISCONF) until a snapshot succeeds, which the cron retries.
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

/* Around every command execution (nesting: EXEC runs commands inside). */
void persist_cmd_begin(server *s, client *c);
void persist_cmd_end(server *s, client *c);
/* While the log is failed, why (the text INFO persistence shows as
 * aof_last_write_error): dispatch then refuses writes (MISCONF) until a
 * snapshot succeeds.  NULL while writes are accepted. */
const char *persist_write_error(const server *s);
/* 1 while records are appended but not yet committed. */
int persist_holds_replies(const server *s);
/* Forget c (it is being freed). */
void persist_client_gone(server *s, client *c);

/* What a write changed. */
void persist_log_key(server *s, const char *key, size_t klen);  /* the key's new state */
void persist_log_range(server *s, const char *key, size_t klen, size_t off, const char *p, size_t n);
void persist_log_flushall(server *s);
void persist_log_vnew(server *s, const char *name, size_t nlen, const vindex_params *p,
                      uint32_t capacity, const char *embed, size_t elen);
/* payload NULL = none given; autoid: key came from VADD index *. */
void persist_log_vadd(server *s, const char *name, size_t nlen, const char *key, size_t klen,
                      const float *vec, uint32_t dim, int autoid, const char *payload, size_t plen);
void persist_log_vdel(server *s, const char *name, size_t nlen, const char *key, size_t klen);
void persist_log_vdrop(server *s, const char *name, size_t nlen);

/* Commit the iteration's records before replies (srv_before_sleep).
 * Returns 1 if there was something to commit (written, and fsync'd under
 * appendfsync always), else 0. */
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
