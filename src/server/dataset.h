/* dataset.h -- what a snapshot holds: the keyspace and every vector index
 * (with its graph), written through snapfile.h's container and loaded back in
 * place.  persist.c decides when; this decides what.  Loop thread, or the
 * forked snapshot child (which reads memory without locks: the only writer,
 * the loop thread, does not exist in the child). */
#ifndef ENGRAM_DATASET_H
#define ENGRAM_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "engram/io.h"

typedef struct server server;

/* Write everything as of log seq `seq` to dir/engram.snap (through a temp
 * file; the old snapshot stays intact on failure).  0, or -1 with a
 * message in err. */
int dataset_save(server *s, io_ops *io, const char *dir, uint64_t seq, int64_t created_ms,
                   char *err, size_t errcap);

/* In a snapshot child: the parent's pid.  dataset_save then refuses to
 * rename its file into place once the parent is gone (a new server may own
 * the directory by then). */
void dataset_set_parent(int pid);

/* Load path (read through io_posix: see dataset.c) into the (empty) keyspace and registry; *seq gets the log seq
 * it covers.  0; -ENOENT if there is no snapshot; -1 with a message naming
 * the file, offset and problem if it is damaged or unreadable. */
int dataset_load(server *s, const char *path, uint64_t *seq, char *err, size_t errcap);

#endif
