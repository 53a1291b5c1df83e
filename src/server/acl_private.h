/* acl_private.h -- what acl.c shares with cmd_acl.c: the user and log
 * structures and the operations the ACL command is made of.  Loop thread
 * only. */
#ifndef ENGRAM_ACL_PRIVATE_H
#define ENGRAM_ACL_PRIVATE_H

#include <stddef.h>
#include <stdint.h>

#include "engram/strbuf.h"
#include "acl.h"

typedef struct acl_keypat {
    char *p;
    size_t n;
    int flags;              /* KEY_R | KEY_W (acl.c) */
    int kind;               /* ACL_PAT_*: how key_ok matches it (acl.c) */
} acl_keypat;

/* A key pattern without * ? [ or \ is a literal; one whose only special
 * character is a final * is a prefix (the common ~app:* form).  Both are
 * matched with memcmp; the rest with util_glob_match. */
enum { ACL_PAT_GLOB = 0, ACL_PAT_EXACT = 1, ACL_PAT_PREFIX = 2 };

struct acl_user {
    char *name;             /* NUL-terminated, no spaces */
    int on, nopass;
    int sanitize;           /* 0 unset, 1 sanitize-payload, 2 skip-sanitize-payload (shown
                               only: engram has no RESTORE payloads to check) */
    unsigned char (*pw)[32];/* SHA-256 digests */
    int npw;
    uint8_t *allowed;       /* a bit per command_all_at() index */
    char *cmdrules;         /* the command rules as ACL LIST shows them */
    acl_keypat *keys;
    int nkeys, allkeys;
    char **chans;
    int nchans, allchannels;
};

typedef struct acl_log_entry {
    struct acl_log_entry *next;   /* newer first */
    long long count;
    const char *reason;     /* "command", "key", "channel", "auth" */
    const char *context;    /* "toplevel", "multi" */
    char *object, *username, *cinfo;
    size_t olen, ulen;
    int64_t created_ms, updated_ms;
    long long id;
} acl_log_entry;

typedef struct acl_state {
    acl_user **users;
    int nusers;
    acl_log_entry *log;
    size_t nlog;
    long long next_id;
} acl_state;

enum { ACL_DENIED_CMD = 1, ACL_DENIED_KEY = 2, ACL_DENIED_CHANNEL = 3 };

/* One rule applied to u: 0, or -1 with Redis's reason in err. */
int acl_apply(acl_user *u, const char *rule, size_t len, char *err, size_t cap);
/* A new user as ACL SETUSER makes one: off, no password, no commands,
 * keys or channels. */
acl_user *acl_user_new(const char *name, size_t len);
acl_user *acl_user_dup(const acl_user *u);
void acl_user_free(acl_user *u);
void acl_add_user(server *s, acl_user *u);
int acl_delete(server *s, const char *name, size_t len);
void acl_user_replaced(server *s, acl_user *old, acl_user *n, acl_user *fallback);
acl_user **acl_sorted(server *s, int *n);
unsigned acl_category(const char *name, size_t len, int *all);
int acl_allowed_bit(const acl_user *u, size_t i);
int acl_check_args(const acl_user *u, const command *k, int argc, const char *const *argv,
                   const size_t *argvlen, int *reason, int *pos);
void acl_describe(const acl_user *u, strbuf *b);
void acl_describe_keys(const acl_user *u, strbuf *b);
void acl_describe_channels(const acl_user *u, strbuf *b);
void acl_password_hex(const acl_user *u, int i, char out[65]);
void acl_log_add(client *c, const char *reason, const char *obj, size_t olen, const char *user,
                 size_t ulen);
void acl_log_reset(server *s);
int acl_parse_file(server *s, const char *path, acl_user ***out, int *nout, char *err,
                   size_t errcap);
void acl_install(server *s, acl_user **v, int n);
int acl_save_file(server *s, char *err, size_t errcap);

#endif
