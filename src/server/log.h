/* log.h -- the server log, in Redis's line format:
 *     <pid>:M 22 Nov 2026 13:19:47.123 * message
 * with '.' debug, '-' verbose, '*' notice, '#' warning.  Loop thread and
 * workers may both log: one write(2) per line keeps lines whole. */
#ifndef ENGRAM_LOG_H
#define ENGRAM_LOG_H

#include "engram/config.h"

/* path "" or NULL = stderr.  Returns 0 or -errno (the file can't be opened). */
int log_open(const char *path, int level);
void log_set_level(int level);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_close(void);

#endif
