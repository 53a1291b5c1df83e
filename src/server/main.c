/* main.c -- wires engram together: settings (defaults, file, flags), the
 * log, then the server; runs the loop; exits 0 on a clean shutdown.
 * Nothing else lives here. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engram/config.h"
#include "engram/mem.h"
#include "log.h"
#include "server.h"

static void main_usage(FILE *f)
{
    fprintf(f,
            "Usage: engram [config-file] [--name value ...]\n"
            "       engram --help | --version\n\n"
            "Settings apply in order: defaults, then the config file, then --flags.\n"
            "Every setting (see engram.conf):\n");
    for (size_t i = 0; config_name_at(i); i++)
        fprintf(f, "  --%-28s %s\n", config_name_at(i), config_help_at(i));
    fprintf(f, "\nExamples:\n  engram\n  engram engram.conf\n  engram --port 7000 --requirepass secret\n");
}

/* Detach from the terminal: fork, new session, stdio to /dev/null.  The
 * parent exits 0 once the child exists; errors after this point go to the
 * log file (set `logfile` when daemonizing, or they are lost, as in Redis). */
static void main_daemonize(void)
{
    pid_t pid = fork();
    if (pid < 0) {
        perror("engram: fork");
        exit(1);
    }
    if (pid > 0) exit(0);
    setsid();
    int fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        if (fd > 2) close(fd);
    }
}

static void main_pidfile(const char *path)
{
    if (!path || !*path) return;
    FILE *f = fopen(path, "w");
    if (!f) {
        log_msg(LOG_WARNING, "Failed to write PID file %s", path);
        return;
    }
    fprintf(f, "%d\n", (int)getpid());
    fclose(f);
}

int main(int argc, char **argv)
{
    static server s;
    char err[512];

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            main_usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--version") || !strcmp(argv[i], "-v")) {
            printf("engram v=%s\n", ENGRAM_VERSION);
            return 0;
        }
    }
    config_init(&s.cfg);
    if (config_from_args(&s.cfg, argc, argv, err, sizeof err) < 0) {
        fprintf(stderr, "engram: %s\n", err);
        return 1;
    }
    if (s.cfg.daemonize) main_daemonize();
    if (log_open(s.cfg.logfile, s.cfg.loglevel) < 0) {
        fprintf(stderr, "engram: can't open the log file '%s'\n", s.cfg.logfile);
        return 1;
    }
    if (srv_init(&s, err, sizeof err) < 0) {
        log_msg(LOG_WARNING, "%s", err);
        return 1;
    }
    main_pidfile(s.cfg.pidfile);
    log_msg(LOG_NOTICE, "engram %s started, pid=%d, port=%d", ENGRAM_VERSION, (int)getpid(), s.port);
    log_msg(LOG_NOTICE, "Ready to accept connections tcp");
    ev_run(s.loop);
    srv_fini(&s);
    if (s.cfg.pidfile && *s.cfg.pidfile) unlink(s.cfg.pidfile);
    config_fini(&s.cfg);
    log_close();
    return 0;
}
