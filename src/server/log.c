/* log.c -- see log.h.  State: the fd and level, set at start-up (and by
 * CONFIG SET loglevel on the loop thread); each line goes out in one write so
 * lines from different threads never interleave. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int log_fd = 2;
static _Atomic int log_level = LOG_NOTICE;

int log_open(const char *path, int level)
{
    atomic_store(&log_level, level);
    if (!path || !*path) {
        log_fd = 2;
        return 0;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return -errno;
    log_fd = fd;
    return 0;
}

void log_set_level(int level) { atomic_store(&log_level, level); }

void log_msg(int level, const char *fmt, ...)
{
    static const char marks[] = ".-*#";
    char line[1024];
    struct timeval tv;
    struct tm tm;
    va_list ap;
    size_t n;

    if (level < atomic_load(&log_level)) return;
    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    n = (size_t)snprintf(line, sizeof line, "%d:M ", (int)getpid());
    n += strftime(line + n, sizeof line - n, "%d %b %Y %H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof line - n, ".%03d %c ", (int)(tv.tv_usec / 1000),
                          marks[level < 0 ? 0 : level > 3 ? 3 : level]);
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - n, fmt, ap);
    va_end(ap);
    n = m < 0 ? n : n + (size_t)m;
    if (n > sizeof line - 2) n = sizeof line - 2;
    line[n++] = '\n';
    ssize_t w;
    do {
        w = write(log_fd, line, n);
    } while (w < 0 && errno == EINTR);
}

void log_close(void)
{
    if (log_fd > 2) close(log_fd);
    log_fd = 2;
}
