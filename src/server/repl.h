/* repl.h -- replication over Redis's protocol, both roles (docs/replication.md).
 *
 * A primary keeps a replication id (40 hex characters, new at every start
 * and at every promotion), an offset (master_repl_offset: bytes of stream
 * ever produced under this history) and, once a replica has asked for it,
 * a backlog of the last repl-backlog-size bytes of the stream.  The stream
 * is the write-ahead log's records turned into RESP commands: persist.c
 * hands every record it would append (one per command or EXEC, as
 * OP_BATCH) to repl_feed_record -- with persistence off too, through the
 * staging-only persist repl asks for (persist_stage_enable) -- and
 * oplog_resp.c (store) writes it as SET ... PXAT, DEL, HSET, MULTI/EXEC, or,
 * for what Redis has no command for (vector sets), as engram's REPLAY
 * command carrying the record itself.  So every write reaches the stream
 * exactly once and in the order it reached memory.
 *
 * Full sync: +FULLRESYNC <replid> <offset>, then `$<len>\r\n` and an
 * engram snapshot of memory at that offset, written by a forked child
 * (never on the loop) into a temporary directory, then the stream from
 * the offset on.  Partial sync: +CONTINUE <replid> and the backlog from
 * the offset the replica asks for.
 *
 * A replica (REPLICAOF host port) connects, runs the handshake (PING,
 * AUTH, REPLCONF listening-port, REPLCONF capa eof capa psync2, PSYNC),
 * loads a full sync's snapshot in place of its dataset (with `dir`, it
 * becomes its snapshot and its log restarts), then runs the stream as a
 * client flagged CLIENT_MASTER: dispatch lets it write on a read-only
 * replica, its replies are dropped, and the bytes it runs become its own
 * offset and are fed verbatim to its own backlog and replicas (so offsets
 * agree across a promotion).  It acknowledges with REPLCONF ACK every
 * second and on GETACK; an ACK is written like a reply, so it leaves only
 * once the replica's log has committed what it acknowledges (persist.h).
 *
 * Loop thread only; the payload child runs repl_master.c's fork branch. */
#ifndef ENGRAM_REPL_H
#define ENGRAM_REPL_H

#include <stddef.h>
#include <stdint.h>

#include "engram/strbuf.h"

typedef struct server server;
typedef struct client client;

/* Set up (run_id, replid) and, with `replicaof` configured, start the link.
 * After persistence is open. */
void repl_init(server *s);
void repl_fini(server *s);
/* A clean shutdown with `dir`: our replication id, offset and the stream's
 * database go to dir/repl.state (before the log's last commit); the next
 * start reads it once its data is loaded (repl_restore_state) and deletes
 * it, so a restart from the dir continues with a partial sync. */
void repl_save_state(server *s);
void repl_restore_state(server *s);

/* The tap (persist.c): one record as it is appended to the log (or would
 * be, persistence off).  No-op unless a backlog exists and we are a primary. */
void repl_feed_record(server *s, uint8_t type, const void *payload, size_t len);

/* Each loop pass, before the replies are written (server.c): payload
 * chunks for replicas in a full sync, GETACK for waiting WAITs. */
void repl_before_sleep(server *s);
/* Each cron tick: children, PINGs, ACKs, timeouts, reconnecting. */
void repl_cron(server *s);

/* 1 when c may not write because we are a read-only replica and c is not
 * our master. */
int repl_refuses_writes(const server *s, const client *c);
/* 1 when a primary has fewer good replicas than min-replicas-to-write
 * (online, acknowledged within min-replicas-max-lag seconds). */
int repl_too_few_replicas(const server *s);
/* 1 when we are a replica whose link is down and replica-serve-stale-data
 * is no. */
int repl_stale(const server *s);
/* The master client ran a command of n bytes at p (conn.c, after it ran):
 * our offset advances, the bytes go to our backlog and replicas, its reply
 * is dropped (out back to mark) and a pending ACK is written. */
void repl_master_ran(client *c, const char *p, size_t n, size_t mark);
/* c is being freed. */
void repl_client_gone(client *c);

const char *repl_run_id(const server *s);
void repl_info(server *s, strbuf *b);
/* INFO stats' sync_full, sync_partial_ok, sync_partial_err lines. */
void repl_info_stats(server *s, strbuf *b);
/* CLIENT KILL TYPE / CLIENT LIST: 1 for a replica of ours, 2 for our master. */
int repl_client_kind(const client *c);

#endif
