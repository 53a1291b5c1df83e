/* acl.h -- users and what they may run (Redis 6+'s ACLs).
 *
 * A user has: on/off, passwords (kept as SHA-256 digests) or nopass, the
 * commands it may run (a bit per command and subcommand of the command
 * table, command.h; `+@category` sets the bits of the commands whose
 * categories include it), key patterns (each readable, writable or both:
 * `~p`, `%R~p`, `%W~p`, `allkeys`) and channel patterns (`&p`,
 * `allchannels`).  Rules are applied left to right as ACL SETUSER gives
 * them; the description ACL LIST / GETUSER show keeps the command rules in
 * the order given (as Redis 7.2+ does), `+@all` / `-@all` starting it over.
 *
 * The `default` user always exists; `requirepass` is its password (set:
 * `resetpass >password`; empty: `nopass`).  A new connection is the
 * default user, authenticated when that user is on and nopass.
 *
 * Checks (acl_check, from dispatch after authentication): the command
 * bit, then for users without allkeys every key position the command
 * table gives (a write command needs W, any other R), then for users
 * without allchannels the channels of PUBLISH / SUBSCRIBE (glob match) and
 * the patterns of PSUBSCRIBE (equal to an allowed pattern).  A denial is
 * logged (ACL LOG) and answered `-NOPERM ...` with Redis 7.2+'s texts.
 * EXEC checks each queued command again (cmd_tx.c), as Redis does.
 *
 * Loop thread only. */
#ifndef ENGRAM_ACL_H
#define ENGRAM_ACL_H

#include <stddef.h>
#include <stdint.h>

typedef struct server server;
typedef struct client client;
typedef struct command command;
typedef struct acl_user acl_user;

void acl_init(server *s);
void acl_fini(server *s);

acl_user *acl_default_user(server *s);
acl_user *acl_find(server *s, const char *name, size_t len);
const char *acl_user_name(const acl_user *u);
/* A connection as this user needs no AUTH (on and nopass). */
int acl_user_open(const acl_user *u);

/* requirepass changed (or was read at start-up): the default user's
 * password follows it. */
void acl_requirepass(server *s);

/* AUTH / HELLO AUTH: the user when name/pass open it, else NULL (and the
 * failure is logged as an "auth" entry for client c). */
acl_user *acl_authenticate(client *c, const char *name, size_t nlen, const char *pass,
                           size_t plen);

/* May c run command k with its current arguments?  1, or 0 with the
 * -NOPERM error text (without '-') in err; the denial is in the log. */
int acl_check(client *c, const command *k, char *err, size_t errcap);

/* ACL LOAD at start-up from `aclfile` (if set): 0, or -1 with a message. */
int acl_load_file(server *s, char *err, size_t errcap);

#endif
