/* oplog_resp.h -- the replication stream's words: a write-ahead-log record
 * (oplog.h: effects, not commands) written as the RESP commands a replica
 * runs to reach the same state (src/server/repl*.c feed them to replicas;
 * docs/replication.md).
 *
 * Records with a Redis command become that command, so `redis-cli
 * --replica` shows a SET as a SET:
 *   OP_SET       SET key value [PXAT ms]
 *   OP_DEL       DEL key
 *   OP_SETRANGE  SETRANGE key offset bytes (APPEND key "" when no bytes:
 *                it only creates the key)
 *   OP_EXPIRE    PEXPIREAT key ms | PERSIST key
 *   OP_RENAME    RENAME key newkey
 *   OP_MOVE      MOVE key db
 *   OP_COPY      COPY key newkey DB db [REPLACE]
 *   OP_SWAPDB    SWAPDB a b
 *   OP_FLUSHDB   FLUSHDB;  OP_FLUSHALL  FLUSHALL
 *   OP_HSET      [DEL key, when the command created the hash]  HSET key f v ...
 *                then HPEXPIREAT key ms FIELDS n f ... per run of fields
 *                with the same deadline (HSET clears a field's TTL)
 *   OP_HDEL      HDEL key f ...
 *   OP_HEXPIRE   HPERSIST key FIELDS n f ... / HPEXPIREAT key ms FIELDS n f ...
 *   OP_FTDEF     FT.CREATE name args... | FT.DROPINDEX name |
 *                FT.ALTER name SCHEMA ADD args... (the replica indexes the
 *                hashes it holds; an ALTER's SKIPINITIALSCAN is not in the
 *                record)
 * Every other record (the vector sets' VNEW, VADD, VDEL, VSETATTR, VDROP,
 * and any type added later) becomes `REPLAY <type name> <payload>`, the
 * record itself, which the replica applies with the log's replay code.
 * OP_INDB becomes a SELECT when the database changes (as Redis emits
 * SELECT); a BATCH that makes more than one command is wrapped in
 * MULTI/EXEC (its SELECT, if the first command needs one, before MULTI).
 *
 * Pure: no I/O, no server state; an encoder is used by one thread at a
 * time.  Memory: buffers grow through mem.h (which aborts on exhaustion).
 * Tests: tests/unit/store/test_oplog_resp.c (the exact bytes of each
 * mapping, MULTI and SELECT placement, a record that does not decode). */
#ifndef ENGRAM_OPLOG_RESP_H
#define ENGRAM_OPLOG_RESP_H

#include <stddef.h>
#include <stdint.h>

#include "engram/oplog.h"

typedef struct op_resp {
    int seldb;        /* the database the stream has selected; -1: none yet
                         (the next command that needs one selects) */
    opbuf body;       /* scratch: a batch's commands before MULTI is known */
} op_resp;

void op_resp_init(op_resp *e);
void op_resp_fini(op_resp *e);

/* Append to out the commands of one record.  0, or -EBADMSG for a record
 * that does not decode (nothing appended, seldb unchanged). */
int op_resp_encode(op_resp *e, opbuf *out, uint8_t type, const void *payload, size_t len);

/* One command from its arguments (lens[i] bytes each). */
void op_resp_argv(opbuf *out, int argc, const char *const *argv, const size_t *lens);

/* REPLAY's record type names ("VADD"), and back: the type, or -1 (OP_BATCH
 * and OP_INDB are not records REPLAY takes).  A decimal number names any
 * other type. */
const char *op_resp_name(uint8_t type, char *buf, size_t cap);
int op_resp_type(const char *name, size_t len);

#endif
