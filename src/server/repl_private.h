/* repl_private.h -- what repl_master.c (the primary's side, the backlog,
 * WAIT, INFO/ROLE) and repl_replica.c (the link to our master) share.
 * Nothing else includes it; the server sees repl.h.
 *
 * Offsets are Redis's: the stream's bytes are numbered from 1 under a
 * replication id; master_repl_offset (r->offset) is the number of the last
 * byte produced (0: none yet).  The backlog holds bytes [bl_first,
 * bl_first + bl_histlen); a replica that has processed up to offset N asks
 * for N + 1 (PSYNC replid N+1), which the backlog can serve when
 * bl_first <= N + 1 <= r->offset + 1.
 *
 * Loop thread only. */
#ifndef ENGRAM_REPL_PRIVATE_H
#define ENGRAM_REPL_PRIVATE_H

#include <stdint.h>
#include <sys/types.h>

#include "engram/dlist.h"
#include "engram/reply.h"
#include "engram/oplog_resp.h"
#include "repl.h"

#define REPL_ID_LEN 40

/* A replica of ours, from its SYNC/PSYNC on (client.rr). */
enum {
    RS_WAIT_BGSAVE_START,    /* wants a full sync; the next payload child is for it */
    RS_WAIT_BGSAVE_END,      /* told +FULLRESYNC; its payload is being written */
    RS_SEND_BULK,            /* the payload is being sent */
    RS_ONLINE,               /* the stream goes straight to its output */
};

typedef struct repl_replica {
    client *c;
    dlist_node node;             /* r->replicas */
    int state;                   /* RS_* */
    int psync;                   /* asked with PSYNC (else SYNC: no +FULLRESYNC line) */
    int listening_port;
    char ip[64];                 /* REPLCONF ip-address, else the peer's */
    long long sync_off;          /* the offset its payload was taken at */
    long long ack_off;           /* last REPLCONF ACK */
    int64_t ack_ms;              /* when (monotonic) */
    reply pending;               /* the stream since sync_off, until the payload is out */
    int fd;                      /* the payload file being sent (-1: none) */
    long long left;              /* its bytes still to read */
} repl_replica;

/* Replica-side link states (ROLE names them). */
enum {
    RL_NONE,                     /* no master */
    RL_CONNECT,                  /* to (re)connect at the next cron */
    RL_CONNECTING,               /* non-blocking connect in progress */
    RL_HANDSHAKE,                /* PING .. PSYNC replies */
    RL_TRANSFER,                 /* reading the payload */
    RL_CONNECTED,                /* the master client runs the stream */
};

typedef struct repl {
    char run_id[REPL_ID_LEN + 1];
    char replid[REPL_ID_LEN + 1], replid2[REPL_ID_LEN + 1];
    long long offset;            /* master_repl_offset */
    long long second_offset;     /* second_repl_offset (-1: none) */
    /* the backlog: a ring of bl_size bytes, written at bl_idx */
    char *bl;
    long long bl_size, bl_idx, bl_histlen, bl_first;
    op_resp enc;                 /* records into commands */
    opbuf scratch;               /* one record's commands */
    /* the primary's side */
    dlist replicas;              /* repl_replica.node */
    int nreplicas;
    pid_t child;                 /* the payload child (0: none) */
    char *child_dir;             /* where it writes engram.snap */
    long long child_off;
    int64_t child_start_ms;
    int64_t last_ping_ms;
    int get_ack;                 /* send GETACK before sleeping (WAIT) */
    dlist waits;                 /* WAITing clients (repl_master.c) */
    long long sync_full, sync_partial_ok, sync_partial_err;
    unsigned payload_seq;        /* names payload directories */
    /* the replica's side (repl_replica.c) */
    char *master_host;
    int master_port;
    int link;                    /* RL_* */
    int fd;                      /* the link while not yet a client */
    client *master;              /* the link once it runs the stream */
    int master_db;               /* its selected db, kept across a reconnect */
    char rbuf[4096];
    size_t rlen;                 /* handshake input buffered */
    int pong;                    /* the PING was answered */
    int expect;                  /* AUTH/REPLCONF replies still to read */
    int auth_pending;            /* ... the first of which is AUTH's */
    int psync_sent;
    long long xfer_size, xfer_read;
    int xfer_fd;
    char *xfer_path;
    int64_t xfer_last_io_ms;
    int64_t link_down_since_ms;  /* wall clock; 0: never up */
    int64_t link_start_ms;       /* monotonic: the last connect attempt */
    int64_t last_ack_ms;         /* monotonic: our last REPLCONF ACK */
    int64_t master_last_io_ms;
    int ack_pending;             /* GETACK seen: ACK after the command */
    reply mbuf;                  /* the master's bytes of a transaction not yet
                                    EXECuted (repl_master_ran) */
    long long master_initial_off;
    char master_replid_seen[REPL_ID_LEN + 1];
} repl;

/* ---- repl_master.c ---------------------------------------------------------- */
/* Append one command (argv[i], strlen each) to a client's output. */
void repl_send_argv(reply *out, int argc, const char *const *argv);
/* A fresh replication id (40 hex characters). */
void repl_new_id(server *s, char *out);
/* Make the backlog if there is none (starting after r->offset). */
void repl_backlog_create(server *s);
/* Append raw stream bytes: the backlog, r->offset, every replica. */
void repl_feed_bytes(server *s, const char *p, size_t n);
/* Drop every replica of ours (a full sync replaced our history). */
void repl_drop_replicas(server *s);
/* Promotion (REPLICAOF NO ONE): the current id becomes replid2. */
void repl_shift_id(server *s);
/* Finish WAITs that can be answered. */
void repl_check_waits(server *s);

/* ---- repl_replica.c ---------------------------------------------------------- */
void repl_replica_cron(server *s);
/* Stop being a replica (NO ONE, or a new master): close the link. */
void repl_replica_unlink(server *s);
/* Become a replica of host:port. */
void repl_replica_set_master(server *s, const char *host, int port);
/* Our state as ROLE's fourth element ("connect", "connecting", "sync",
 * "connected", "handshake"). */
const char *repl_replica_state_name(const repl *r);
void repl_replica_info(server *s, strbuf *b);
/* Send REPLCONF ACK <offset> to our master (through its output). */
void repl_replica_send_ack(server *s);

#endif
