/* fuzz_config.c -- the config file parser (config.h: config_load_file,
 * then CONFIG REWRITE's config_rewrite).
 *
 * Feeds: the input as a config file (written to a private directory on
 * tmpfs when there is one: the parser reads a path), loaded over the
 * defaults.
 *
 * Checks: a refused file gives -1 with a message that names the file;
 * an accepted one survives CONFIG REWRITE: the rewritten file loads again
 * over the defaults, and every setting (config_get over the whole table)
 * reads the same as after the first load. */
#include "fuzz.h"

#include <string.h>
#include <unistd.h>

#include "engram/config.h"

static char dir[128], path[256];

/* At exit: the file and its directory go (a crash leaves them: its input
 * is what matters then). */
static void cleanup(void)
{
    unlink(path);
    rmdir(dir);
}

static void setup(void)
{
    if (path[0]) return;
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/engram-fuzz-config-XXXXXX", base);
    FUZZ_CHECK(mkdtemp(dir) != NULL, "mkdtemp %s", dir);
    snprintf(path, sizeof path, "%s/engram.conf", dir);
    atexit(cleanup);
}

static void write_file(const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    FUZZ_CHECK(f != NULL, "fopen %s", path);
    FUZZ_CHECK(fwrite(data, 1, size, f) == size && fclose(f) == 0, "write %s", path);
}

/* Every setting of c, as CONFIG GET shows it, one per line. */
static char *settings(const config *c)
{
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap), val[4096];
    FUZZ_CHECK(out != NULL, "out of memory");
    for (size_t i = 0; config_name_at(i); i++) {
        const char *name = config_name_at(i);
        int rc = config_get(c, name, val, sizeof val);
        FUZZ_CHECK(rc == 0 || rc == -2, "config_get %s: %d", name, rc);
        size_t need = strlen(name) + strlen(val) + 3;
        if (len + need > cap) {
            while (len + need > cap) cap *= 2;
            out = realloc(out, cap);
            FUZZ_CHECK(out != NULL, "out of memory");
        }
        len += (size_t)snprintf(out + len, cap - len, "%s=%s\n", name, val);
    }
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    if (size > 1 << 16) return 0;
    write_file(data, size);
    config c;
    char err[1024];
    config_init(&c);
    err[0] = '\0';
    int rc = config_load_file(&c, path, err, sizeof err);
    if (rc != 0) {
        FUZZ_CHECK(rc == -1, "code %d", rc);
        FUZZ_CHECK(strstr(err, "engram.conf") != NULL, "the message names no file: %s", err);
        config_fini(&c);
        return 0;
    }
    char *before = settings(&c);
    rc = config_rewrite(&c, err, sizeof err);
    FUZZ_CHECK(rc == 0, "CONFIG REWRITE failed: %s", err);

    config d;
    config_init(&d);
    rc = config_load_file(&d, path, err, sizeof err);
    FUZZ_CHECK(rc == 0, "the rewritten file does not load: %s", err);
    char *after = settings(&d);
    if (strcmp(before, after) != 0) {
        /* name the first setting that differs */
        const char *a = before, *b = after;
        while (*a && *a == *b) a++, b++;
        while (a > before && a[-1] != '\n') a--, b--;
        FUZZ_CHECK(0, "a setting changed through CONFIG REWRITE: %.*s became %.*s",
                   (int)strcspn(a, "\n"), a, (int)strcspn(b, "\n"), b);
    }
    free(before);
    free(after);
    config_fini(&c);
    config_fini(&d);
    return 0;
}
