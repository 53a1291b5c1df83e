/* acl.c -- users, their rules, the permission check and the ACL log
 * (contract in acl.h; the ACL command is cmd_acl.c's).
 *
 * Learned from Redis's acl.c (our words and code): rules apply left to
 * right; a user's commands are a bit per command (here: per entry of the
 * command table, subcommands included, `+cmd` on a container reaching its
 * subcommands); passwords are SHA-256 digests compared in constant time;
 * denials are grouped in the log when the same user is denied the same
 * object for the same reason within a minute.
 *
 * Loop thread only. */
#include "acl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "engram/mem.h"
#include "engram/sha256.h"
#include "engram/strbuf.h"
#include "engram/util.h"
#include "acl_private.h"
#include "command.h"
#include "server.h"

enum { KEY_R = 1, KEY_W = 2 };

/* ---- users ---------------------------------------------------------------------- */

static size_t ncommands(void) { return command_all_count(); }

acl_user *acl_user_new(const char *name, size_t len)
{
    acl_user *u = mem_calloc(1, sizeof *u);
    u->name = mem_strndup(name, len);
    u->allowed = mem_calloc((ncommands() + 7) / 8, 1);
    u->cmdrules = mem_strndup("-@all", 5);
    return u;
}

void acl_user_free(acl_user *u)
{
    if (!u) return;
    mem_free(u->name);
    mem_free(u->pw);
    mem_free(u->allowed);
    mem_free(u->cmdrules);
    for (int i = 0; i < u->nkeys; i++) mem_free(u->keys[i].p);
    mem_free(u->keys);
    for (int i = 0; i < u->nchans; i++) mem_free(u->chans[i]);
    mem_free(u->chans);
    mem_free(u);
}

acl_user *acl_user_dup(const acl_user *u)
{
    acl_user *d = mem_calloc(1, sizeof *d);
    *d = *u;
    d->name = mem_strndup(u->name, strlen(u->name));
    d->pw = u->npw ? mem_alloc((size_t)u->npw * 32) : NULL;
    if (u->npw) memcpy(d->pw, u->pw, (size_t)u->npw * 32);
    d->allowed = mem_alloc((ncommands() + 7) / 8);
    memcpy(d->allowed, u->allowed, (ncommands() + 7) / 8);
    d->cmdrules = mem_strndup(u->cmdrules, strlen(u->cmdrules));
    d->keys = u->nkeys ? mem_alloc((size_t)u->nkeys * sizeof *d->keys) : NULL;
    for (int i = 0; i < u->nkeys; i++) {
        d->keys[i] = u->keys[i];
        d->keys[i].p = mem_strndup(u->keys[i].p, u->keys[i].n);
    }
    d->chans = u->nchans ? mem_alloc((size_t)u->nchans * sizeof *d->chans) : NULL;
    for (int i = 0; i < u->nchans; i++) d->chans[i] = mem_strndup(u->chans[i], strlen(u->chans[i]));
    return d;
}

static acl_state *ST(server *s) { return s->acl; }

void acl_init(server *s)
{
    acl_state *a = mem_calloc(1, sizeof *a);
    s->acl = a;
    acl_user *d = acl_user_new("default", 7);
    char err[128];
    const char *rules[] = {"on", "nopass", "allkeys", "allchannels", "allcommands"};
    for (int i = 0; i < 5; i++) acl_apply(d, rules[i], strlen(rules[i]), err, sizeof err);
    acl_add_user(s, d);
    acl_requirepass(s);
}

void acl_fini(server *s)
{
    acl_state *a = ST(s);
    if (!a) return;
    for (int i = 0; i < a->nusers; i++) acl_user_free(a->users[i]);
    mem_free(a->users);
    acl_log_reset(s);
    mem_free(a);
    s->acl = NULL;
}

acl_user *acl_find(server *s, const char *name, size_t len)
{
    acl_state *a = ST(s);
    for (int i = 0; i < a->nusers; i++)
        if (strlen(a->users[i]->name) == len && !memcmp(a->users[i]->name, name, len))
            return a->users[i];
    return NULL;
}

acl_user *acl_default_user(server *s) { return acl_find(s, "default", 7); }
const char *acl_user_name(const acl_user *u) { return u->name; }
int acl_user_open(const acl_user *u) { return u->on && u->nopass; }

/* Put u in the registry, replacing the user of that name (freed). */
void acl_add_user(server *s, acl_user *u)
{
    acl_state *a = ST(s);
    for (int i = 0; i < a->nusers; i++) {
        if (strcmp(a->users[i]->name, u->name)) continue;
        acl_user *old = a->users[i];
        a->users[i] = u;
        acl_user_replaced(s, old, u, NULL);
        acl_user_free(old);
        return;
    }
    a->users = mem_realloc(a->users, (size_t)(a->nusers + 1) * sizeof *a->users);
    a->users[a->nusers++] = u;
}

void acl_requirepass(server *s)
{
    acl_user *d = acl_default_user(s);
    acl_user *n = acl_user_dup(d);
    char err[128];
    const char *pw = s->cfg.requirepass;
    acl_apply(n, "resetpass", 9, err, sizeof err);
    if (pw[0]) {
        size_t l = strlen(pw);
        char *r = mem_alloc(l + 2);
        r[0] = '>';
        memcpy(r + 1, pw, l + 1);
        acl_apply(n, r, l + 1, err, sizeof err);
        mem_free(r);
    } else {
        acl_apply(n, "nopass", 6, err, sizeof err);
    }
    acl_add_user(s, n);
}

/* ---- rules ------------------------------------------------------------------------ */

static int ruleerr(char *err, size_t cap, const char *msg)
{
    snprintf(err, cap, "%s", msg);
    return -1;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void pw_add(acl_user *u, const unsigned char d[32])
{
    for (int i = 0; i < u->npw; i++)
        if (!memcmp(u->pw[i], d, 32)) return;
    u->pw = mem_realloc(u->pw, (size_t)(u->npw + 1) * 32);
    memcpy(u->pw[u->npw++], d, 32);
    u->nopass = 0;
}

static int pw_del(acl_user *u, const unsigned char d[32])
{
    for (int i = 0; i < u->npw; i++) {
        if (memcmp(u->pw[i], d, 32)) continue;
        memmove(u->pw[i], u->pw[i + 1], (size_t)(u->npw - i - 1) * 32);
        u->npw--;
        return 1;
    }
    return 0;
}

static int keypat_kind(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] == '*' || p[i] == '?' || p[i] == '[' || p[i] == '\\')
            return (i == n - 1 && p[i] == '*') ? ACL_PAT_PREFIX : ACL_PAT_GLOB;
    return ACL_PAT_EXACT;
}

static void keys_reset(acl_user *u)
{
    for (int i = 0; i < u->nkeys; i++) mem_free(u->keys[i].p);
    u->nkeys = 0;
    u->allkeys = 0;
}

static void chans_reset(acl_user *u)
{
    for (int i = 0; i < u->nchans; i++) mem_free(u->chans[i]);
    u->nchans = 0;
    u->allchannels = 0;
}

static void set_bit(acl_user *u, size_t i, int on)
{
    if (on) u->allowed[i / 8] |= (uint8_t)(1u << (i % 8));
    else u->allowed[i / 8] &= (uint8_t)~(1u << (i % 8));
}

int acl_allowed_bit(const acl_user *u, size_t i) { return (u->allowed[i / 8] >> (i % 8)) & 1; }

/* A category's bit by name ("all": every bit set), or 0. */
unsigned acl_category(const char *name, size_t len, int *all)
{
    *all = util_eq_nocase(name, len, "all");
    if (*all) return ~0u;
    for (unsigned b = 1; b; b <<= 1) {
        const char *n = command_category_name(b);
        if (n && util_eq_nocase(name, len, n)) return b;
    }
    return 0;
}

/* k's bit: the position command_table_init recorded for every command of
 * the table (the only commands there are).  A linear search here, on every
 * check, was half of a pipelined SET's instructions. */
static size_t command_index(const command *k) { return k->all_index; }

/* Set every command in category cat (or all), subcommands included. */
static void set_category(acl_user *u, unsigned cat, int all, int on)
{
    for (size_t i = 0; i < ncommands(); i++) {
        command *k = command_all_at(i);
        if (all || (k->categories & cat)) set_bit(u, i, on);
    }
}

/* Set k and, for a container, its subcommands. */
static void set_command(acl_user *u, command *k, int on)
{
    size_t i = command_index(k);
    set_bit(u, i, on);
    for (command *sub = k->subs; sub && sub->name; sub++) set_command(u, sub, on);
}

/* Append rule to the description, after dropping an earlier rule on the
 * same command or category (either sign). */
static void rules_append(acl_user *u, const char *rule, size_t len)
{
    strbuf b = {0};
    const char *p = u->cmdrules;
    while (*p) {
        const char *e = strchr(p, ' ');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        int same = n == len && n > 1 && !strncasecmp(p + 1, rule + 1, n - 1);
        if (!same) {
            if (b.len) strbuf_printf(&b, " ");
            strbuf_printf(&b, "%.*s", (int)n, p);
        }
        p += n;
        while (*p == ' ') p++;
    }
    if (b.len) strbuf_printf(&b, " ");
    strbuf_printf(&b, "%.*s", (int)len, rule);
    mem_free(u->cmdrules);
    u->cmdrules = mem_strndup(b.p, b.len);
    strbuf_free(&b);
}

/* Would rule (+cmd / -cmd) change nothing after the rules in the
 * description?  Only decided in the plain cases Redis 7.0 writes without
 * them: "-@all" with only +command rules before a -command, "+@all" with
 * only -command rules before a +command. */
static int rule_redundant(const acl_user *u, const char *rule)
{
    const char *d = u->cmdrules;
    int deny_all = !strncmp(d, "-@all", 5), allow_all = !strncmp(d, "+@all", 5);
    if (rule[1] == '@') return 0;
    if (rule[0] == '-' && deny_all) return !strstr(d, "+@");
    if (rule[0] == '+' && allow_all) return !strstr(d, "-@");
    return 0;
}

/* The rule just appended is the last word of the description. */
static void rules_drop_last(acl_user *u)
{
    char *sp = strrchr(u->cmdrules, ' ');
    if (sp) *sp = 0;
}

/* With its own earlier mentions gone (rules_append) and itself appended
 * last, is the rule redundant given the rest? */
static int rule_redundant_after_drop(acl_user *u, const char *rule, size_t n)
{
    char *sp = strrchr(u->cmdrules, ' ');
    if (!sp) return 0;
    *sp = 0;
    int red = rule_redundant(u, rule);
    *sp = ' ';
    (void)n;
    return red;
}

static void rules_reset(acl_user *u, const char *to)
{
    mem_free(u->cmdrules);
    u->cmdrules = mem_strndup(to, strlen(to));
}

int acl_apply(acl_user *u, const char *r, size_t n, char *err, size_t cap)
{
    if (util_eq_nocase(r, n, "on")) u->on = 1;
    else if (util_eq_nocase(r, n, "off")) u->on = 0;
    else if (util_eq_nocase(r, n, "nopass")) {
        u->nopass = 1;
        u->npw = 0;
    } else if (util_eq_nocase(r, n, "resetpass")) {
        u->nopass = 0;
        u->npw = 0;
    } else if (util_eq_nocase(r, n, "sanitize-payload")) {
        u->sanitize = 1;
    } else if (util_eq_nocase(r, n, "skip-sanitize-payload")) {
        u->sanitize = 2;
    } else if (util_eq_nocase(r, n, "clearselectors")) {
        /* accepted: engram has no selectors to clear */
    } else if (util_eq_nocase(r, n, "allkeys")) {
        keys_reset(u);
        u->allkeys = 1;
    } else if (util_eq_nocase(r, n, "resetkeys")) {
        keys_reset(u);
    } else if (util_eq_nocase(r, n, "allchannels")) {
        chans_reset(u);
        u->allchannels = 1;
    } else if (util_eq_nocase(r, n, "resetchannels")) {
        chans_reset(u);
    } else if (util_eq_nocase(r, n, "allcommands")) {
        set_category(u, 0, 1, 1);
        rules_reset(u, "+@all");
    } else if (util_eq_nocase(r, n, "nocommands")) {
        set_category(u, 0, 1, 0);
        rules_reset(u, "-@all");
    } else if (util_eq_nocase(r, n, "reset")) {
        const char *all[] = {"resetpass", "resetkeys", "resetchannels", "off", "nocommands",
                             "sanitize-payload"};
        for (int i = 0; i < 6; i++) acl_apply(u, all[i], strlen(all[i]), err, cap);
    } else if (n >= 1 && (r[0] == '>' || r[0] == '<')) {
        unsigned char d[32];
        sha256(r + 1, n - 1, d);
        if (r[0] == '>') pw_add(u, d);
        else if (!pw_del(u, d))
            return ruleerr(err, cap, "The password you are trying to remove from the user does "
                           "not exist");
    } else if (n >= 1 && (r[0] == '#' || r[0] == '!')) {
        unsigned char d[32];
        int ok = n == 65;
        for (size_t i = 0; ok && i < 32; i++) {
            int h = hexval(r[1 + 2 * i]), l = hexval(r[2 + 2 * i]);
            ok = h >= 0 && l >= 0;
            if (ok) d[i] = (unsigned char)(h << 4 | l);
        }
        if (!ok)
            return ruleerr(err, cap, "The password hash must be exactly 64 characters and contain "
                           "only lowercase hexadecimal characters");
        if (r[0] == '#') pw_add(u, d);
        else if (!pw_del(u, d))
            return ruleerr(err, cap, "The password you are trying to remove from the user does "
                           "not exist");
    } else if (n >= 1 && (r[0] == '~' || r[0] == '%' || r[0] == '&') &&
               (memchr(r, ' ', n) || memchr(r, '\0', n))) {
        return ruleerr(err, cap, "Syntax error");      /* as Redis: a pattern has no spaces */
    } else if (n >= 1 && (r[0] == '~' || r[0] == '%')) {
        int flags = KEY_R | KEY_W;
        size_t at = 1;
        if (r[0] == '%') {
            flags = 0;
            while (at < n && r[at] != '~') {
                if (r[at] == 'R' || r[at] == 'r') flags |= KEY_R;
                else if (r[at] == 'W' || r[at] == 'w') flags |= KEY_W;
                else return ruleerr(err, cap, "Syntax error");
                at++;
            }
            if (at >= n || !flags) return ruleerr(err, cap, "Syntax error");
            at++;
        }
        if (u->allkeys)
            return ruleerr(err, cap, "Adding a pattern after the * pattern (or the 'allkeys' "
                           "flag) is not valid and does not have any effect. Try 'resetkeys' to "
                           "start with an empty list of patterns");
        if (n - at == 1 && r[at] == '*' && flags == (KEY_R | KEY_W)) {
            keys_reset(u);
            u->allkeys = 1;
        } else {
            u->keys = mem_realloc(u->keys, (size_t)(u->nkeys + 1) * sizeof *u->keys);
            u->keys[u->nkeys].p = mem_strndup(r + at, n - at);
            u->keys[u->nkeys].n = n - at;
            u->keys[u->nkeys].kind = keypat_kind(r + at, n - at);
            u->keys[u->nkeys++].flags = flags;
        }
    } else if (n >= 1 && r[0] == '&') {
        if (u->allchannels)
            return ruleerr(err, cap, "Adding a pattern after the * pattern (or the 'allchannels' "
                           "flag) is not valid and does not have any effect. Try 'resetchannels' "
                           "to start with an empty list of channels");
        if (n == 2 && r[1] == '*') {
            chans_reset(u);
            u->allchannels = 1;
        } else {
            u->chans = mem_realloc(u->chans, (size_t)(u->nchans + 1) * sizeof *u->chans);
            u->chans[u->nchans++] = mem_strndup(r + 1, n - 1);
        }
    } else if (n >= 2 && (r[0] == '+' || r[0] == '-')) {
        int on = r[0] == '+';
        if (r[1] == '@') {
            int all;
            unsigned cat = acl_category(r + 2, n - 2, &all);
            if (!cat) return ruleerr(err, cap, "Unknown command or category name in ACL");
            set_category(u, cat, all, on);
            if (all) rules_reset(u, on ? "+@all" : "-@all");
            else rules_append(u, r, n);
        } else {
            const char *bar = memchr(r + 1, '|', n - 1);
            size_t cl = bar ? (size_t)(bar - r - 1) : n - 1;
            command *k = command_lookup_original(r + 1, cl);
            if (k && bar) k = command_lookup_sub(k, bar + 1, n - 1 - cl - 1);
            if (!k) return ruleerr(err, cap, "Unknown command or category name in ACL");
            set_command(u, k, on);
            char *low = mem_strndup(r, n);
            for (size_t i = 1; i < n; i++)
                if (low[i] >= 'A' && low[i] <= 'Z') low[i] = (char)(low[i] + 32);
            rules_append(u, low, n);
            if (rule_redundant_after_drop(u, low, n)) rules_drop_last(u);
            mem_free(low);
        }
    } else if (n >= 1 && r[0] == '(') {
        return ruleerr(err, cap, "engram does not support selectors");
    } else {
        return ruleerr(err, cap, "Syntax error");
    }
    return 0;
}

/* ---- descriptions ------------------------------------------------------------------ */

static void hex32(const unsigned char d[32], char out[65])
{
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hx[d[i] >> 4];
        out[2 * i + 1] = hx[d[i] & 15];
    }
    out[64] = 0;
}

void acl_describe_keys(const acl_user *u, strbuf *b)
{
    if (u->allkeys) {
        strbuf_printf(b, "~*");
        return;
    }
    for (int i = 0; i < u->nkeys; i++) {
        if (i) strbuf_printf(b, " ");
        int f = u->keys[i].flags;
        strbuf_printf(b, "%s~%s", f == (KEY_R | KEY_W) ? "" : f == KEY_R ? "%R" : "%W",
                      u->keys[i].p);
    }
}

void acl_describe_channels(const acl_user *u, strbuf *b)
{
    if (u->allchannels) {
        strbuf_printf(b, "&*");
        return;
    }
    for (int i = 0; i < u->nchans; i++) strbuf_printf(b, "%s&%s", i ? " " : "", u->chans[i]);
}

void acl_describe(const acl_user *u, strbuf *b)
{
    strbuf_printf(b, "user %s %s", u->name, u->on ? "on" : "off");
    if (u->nopass) strbuf_printf(b, " nopass");
    if (u->sanitize) strbuf_printf(b, u->sanitize == 1 ? " sanitize-payload" : " skip-sanitize-payload");
    for (int i = 0; i < u->npw; i++) {
        char h[65];
        hex32(u->pw[i], h);
        strbuf_printf(b, " #%s", h);
    }
    if (u->allkeys || u->nkeys) {
        strbuf_printf(b, " ");
        acl_describe_keys(u, b);
    }
    if (!u->allchannels) strbuf_printf(b, " resetchannels");
    if (u->allchannels || u->nchans) {
        strbuf_printf(b, " ");
        acl_describe_channels(u, b);
    }
    strbuf_printf(b, " %s", u->cmdrules);
}

void acl_password_hex(const acl_user *u, int i, char out[65]) { hex32(u->pw[i], out); }

/* ---- authentication ---------------------------------------------------------------- */

static int digest_equal(const unsigned char *a, const unsigned char *b)
{
    unsigned char x = 0;
    for (int i = 0; i < 32; i++) x |= (unsigned char)(a[i] ^ b[i]);
    return x == 0;
}

acl_user *acl_authenticate(client *c, const char *name, size_t nlen, const char *pass,
                           size_t plen)
{
    acl_user *u = acl_find(c->srv, name, nlen);
    int ok = 0;
    if (u && u->on) {
        if (u->nopass) {
            ok = 1;
        } else {
            unsigned char d[32];
            sha256(pass, plen, d);
            for (int i = 0; i < u->npw; i++) ok |= digest_equal(d, u->pw[i]);
        }
    }
    if (!ok) {
        acl_log_add(c, "auth", "AUTH", 4, name, nlen);
        return NULL;
    }
    return u;
}

/* ---- the check ------------------------------------------------------------------------ */

static int key_ok(const acl_user *u, const char *key, size_t klen, int need)
{
    if (u->allkeys) return 1;
    int have = 0;
    for (int i = 0; i < u->nkeys; i++) {
        const acl_keypat *kp = &u->keys[i];
        int m;
        if (kp->kind == ACL_PAT_EXACT) m = kp->n == klen && !memcmp(kp->p, key, klen);
        else if (kp->kind == ACL_PAT_PREFIX) m = kp->n - 1 <= klen && !memcmp(kp->p, key, kp->n - 1);
        else m = util_glob_match(kp->p, kp->n, key, klen, 0);
        if (m && ((have |= kp->flags) & need) == need) return 1;
    }
    return 0;
}

/* Every key of the command matched by one of u's patterns (0 and the
 * position of the first that is not).  Out of line: the position array
 * stays off the stack of the common check. */
static __attribute__((noinline)) int keys_ok(const acl_user *u, const command *k, int argc,
                                              const char *const *argv, const size_t *argvlen,
                                              int *pos)
{
    int kp[256];
    int n = command_keys(k, argc, kp, 256);
    int need = (k->flags & CMD_WRITE) ? KEY_W : KEY_R;
    for (int j = 0; j < n; j++)
        if (!key_ok(u, argv[kp[j]], argvlen[kp[j]], need)) {
            *pos = kp[j];
            return 0;
        }
    return 1;
}

static int chan_ok(const acl_user *u, const char *ch, size_t len, int is_pattern)
{
    if (u->allchannels) return 1;
    for (int i = 0; i < u->nchans; i++) {
        size_t pl = strlen(u->chans[i]);
        if (is_pattern ? (pl == len && !memcmp(u->chans[i], ch, len))
                       : util_glob_match(u->chans[i], pl, ch, len, 0))
            return 1;
    }
    return 0;
}

/* Which check failed, and on what. */
int acl_check_args(const acl_user *u, const command *k, int argc, const char *const *argv,
                   const size_t *argvlen, int *reason, int *pos)
{
    size_t i = command_index(k);
    if (!acl_allowed_bit(u, i)) {
        *reason = ACL_DENIED_CMD;
        return 0;
    }
    if (!u->allkeys && !keys_ok(u, k, argc, argv, argvlen, pos)) {
        *reason = ACL_DENIED_KEY;
        return 0;
    }
    if (!u->allchannels && (k->flags & CMD_PUBSUB)) {
        const char *name = k->fullname;
        int from = -1, to = argc, pat = 0;
        if (!strcmp(name, "publish") || !strcmp(name, "spublish")) from = 1, to = 2;
        else if (!strcmp(name, "subscribe") || !strcmp(name, "ssubscribe")) from = 1;
        else if (!strcmp(name, "psubscribe")) from = 1, pat = 1;
        for (int j = from; from > 0 && j < to; j++)
            if (!chan_ok(u, argv[j], argvlen[j], pat)) {
                *reason = ACL_DENIED_CHANNEL;
                *pos = j;
                return 0;
            }
    }
    return 1;
}

/* The full check, and the refusal: the reply text and the log entry. */
static __attribute__((noinline)) int check_full(client *c, acl_user *u, const command *k,
                                                char *err, size_t errcap)
{
    int reason = 0, pos = 0;
    if (acl_check_args(u, k, c->argc, c->argv, c->argvlen, &reason, &pos)) return 1;
    const char *ctx_obj = k->fullname;
    size_t olen = strlen(k->fullname);
    if (reason == ACL_DENIED_CMD) {
        snprintf(err, errcap, "NOPERM User %s has no permissions to run the '%s' command",
                 u->name, k->fullname);
        acl_log_add(c, "command", ctx_obj, olen, u->name, strlen(u->name));
    } else if (reason == ACL_DENIED_KEY) {
        snprintf(err, errcap, "NOPERM No permissions to access a key");
        acl_log_add(c, "key", c->argv[pos], c->argvlen[pos], u->name, strlen(u->name));
    } else {
        snprintf(err, errcap, "NOPERM No permissions to access a channel");
        acl_log_add(c, "channel", c->argv[pos], c->argvlen[pos], u->name, strlen(u->name));
    }
    return 0;
}

/* Every command passes here.  Allowed with no pattern to match (the
 * default user always; any user for a command without keys or channels)
 * is the command's bit and two tests, with no stack frame; the rest goes
 * through check_full. */
int acl_check(client *c, const command *k, char *err, size_t errcap)
{
    acl_user *u = c->user;
    if (!u) return 1;
    if (acl_allowed_bit(u, command_index(k)) && (u->allkeys || k->first_key <= 0) &&
        (u->allchannels || !(k->flags & CMD_PUBSUB)))
        return 1;
    return check_full(c, u, k, err, errcap);
}

/* Clients authenticated as a user that changed follow the new object; a
 * deleted user's clients (n NULL) are closed, pointed meanwhile at
 * fallback -- the default user that will remain registered, never one
 * about to be freed. */
void acl_user_replaced(server *s, acl_user *old, acl_user *n, acl_user *fallback)
{
    dlist_node *next;
    for (dlist_node *d = dlist_first(&s->clients); d; d = next) {
        next = dlist_next(&s->clients, d);
        client *c = DLIST_ENTRY(d, client, node);
        if (c->user != old) continue;
        c->user = n;
        if (n) continue;
        c->user = fallback;                  /* never left pointing at a freed user */
        c->flags &= ~(unsigned)CLIENT_AUTHED;
        if (c->cur) client_close_after_reply(c);   /* the client deleting its own user */
        else client_free(c);
    }
}

/* ---- the log ---------------------------------------------------------------------------- */

void acl_log_add(client *c, const char *reason, const char *obj, size_t olen, const char *user,
                 size_t ulen)
{
    server *s = c->srv;
    acl_state *a = ST(s);
    int64_t now = util_wall_ms();
    const char *context = (c->flags & CLIENT_MULTI) || (c->flags & CLIENT_IN_EXEC) ? "multi" :
                          "toplevel";
    for (acl_log_entry *e = a->log; e; e = e->next) {
        if (strcmp(e->reason, reason) || strcmp(e->context, context) || e->olen != olen ||
            memcmp(e->object, obj, olen) || e->ulen != ulen || memcmp(e->username, user, ulen) ||
            now - e->updated_ms >= 60000)
            continue;
        e->count++;
        e->updated_ms = now;
        char info[1024];
        client_info_line(c, info, sizeof info);
        mem_free(e->cinfo);
        e->cinfo = mem_strndup(info, strlen(info));
        return;
    }
    acl_log_entry *e = mem_calloc(1, sizeof *e);
    e->count = 1;
    e->reason = reason;
    e->context = context;
    e->object = mem_strndup(obj, olen);
    e->olen = olen;
    e->username = mem_strndup(user, ulen);
    e->ulen = ulen;
    e->created_ms = e->updated_ms = now;
    e->id = a->next_id++;
    char info[1024];
    client_info_line(c, info, sizeof info);
    e->cinfo = mem_strndup(info, strlen(info));
    e->next = a->log;
    a->log = e;
    a->nlog++;
    /* trim to acllog-max-len */
    long long max = s->cfg.acllog_max_len;
    if ((long long)a->nlog > max) {
        acl_log_entry **pp = &a->log;
        long long k = 0;
        while (*pp && k < max) pp = &(*pp)->next, k++;
        while (*pp) {
            acl_log_entry *x = *pp;
            *pp = x->next;
            mem_free(x->object);
            mem_free(x->username);
            mem_free(x->cinfo);
            mem_free(x);
            a->nlog--;
        }
    }
}

void acl_log_reset(server *s)
{
    acl_state *a = ST(s);
    while (a->log) {
        acl_log_entry *x = a->log;
        a->log = x->next;
        mem_free(x->object);
        mem_free(x->username);
        mem_free(x->cinfo);
        mem_free(x);
    }
    a->nlog = 0;
}

/* ---- the ACL file ------------------------------------------------------------------------- */

/* The next line of f, any length, into *buf (grown as needed, NUL-terminated,
 * the newline kept); 0 at the end of the file. */
static int read_line(FILE *f, char **buf, size_t *cap, size_t *len)
{
    *len = 0;
    if (!*buf) {
        *cap = 1024;
        *buf = mem_alloc(*cap);
    }
    for (;;) {
        if (!fgets(*buf + *len, (int)(*cap - *len), f)) return *len > 0;
        *len += strlen(*buf + *len);
        if (*len && (*buf)[*len - 1] == '\n') return 1;
        if (*len + 1 < *cap) continue;             /* a NUL inside the line, or EOF next */
        *cap *= 2;
        *buf = mem_realloc(*buf, *cap);
    }
}

/* Parse a whole file's users into a new list (nothing installed on error). */
int acl_parse_file(server *s, const char *path, acl_user ***out, int *nout, char *err,
                   size_t errcap)
{
    (void)s;
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errcap, "Error loading ACLs, opening file '%s': %s", path, strerror(errno));
        return -1;
    }
    acl_user **v = NULL;
    int n = 0, lineno = 0, rc = 0;
    char *line = NULL;
    size_t linecap = 0, len;
    while (read_line(f, &line, &linecap, &len)) {
        lineno++;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        size_t skip = 0;
        while (skip < len && (line[skip] == ' ' || line[skip] == '\t')) skip++;
        if (skip == len || line[skip] == '#') continue;
        char **argv;
        size_t *lens;
        int argc = util_split_args(line, len, &argv, &lens);
        char why[256];
        if (argc < 2 || strcmp(argv[0], "user")) {
            snprintf(err, errcap, "%s:%d: line should start with user keyword", path, lineno);
            rc = -1;
        } else {
            for (int i = 0; i < n; i++)
                if (!strcmp(v[i]->name, argv[1])) {
                    snprintf(err, errcap, "%s:%d: duplicate user '%s' found", path, lineno,
                             argv[1]);
                    rc = -1;
                }
            acl_user *u = acl_user_new(argv[1], lens[1]);
            for (int i = 2; i < argc && !rc; i++)
                if (acl_apply(u, argv[i], lens[i], why, sizeof why) < 0) {
                    snprintf(err, errcap, "%s:%d: %s. ", path, lineno, why);
                    rc = -1;
                }
            v = mem_realloc(v, (size_t)(n + 1) * sizeof *v);
            v[n++] = u;
        }
        if (argc >= 0) util_free_args(argv, lens, argc);
        if (rc) break;
    }
    mem_free(line);
    fclose(f);
    if (rc) {
        for (int i = 0; i < n; i++) acl_user_free(v[i]);
        mem_free(v);
        return -1;
    }
    *out = v;
    *nout = n;
    return 0;
}

/* Install a parsed list: every user replaced; a default user is kept if
 * the file has none. */
void acl_install(server *s, acl_user **v, int n)
{
    acl_state *a = ST(s);
    acl_user *newdef = acl_default_user(s);       /* kept when the file has none */
    for (int i = 0; i < n; i++)
        if (!strcmp(v[i]->name, "default")) newdef = v[i];
    int has_default = newdef != acl_default_user(s);
    for (int i = 0; i < a->nusers; i++) {
        acl_user *old = a->users[i];
        if (!has_default && !strcmp(old->name, "default")) continue;
        acl_user *nu = NULL;
        for (int j = 0; j < n; j++)
            if (!strcmp(v[j]->name, old->name)) nu = v[j];
        acl_user_replaced(s, old, nu, newdef);
    }
    acl_user *keep = NULL;
    for (int i = 0; i < a->nusers; i++) {
        if (!has_default && !strcmp(a->users[i]->name, "default")) keep = a->users[i];
        else acl_user_free(a->users[i]);
    }
    a->nusers = 0;
    if (keep) {
        a->users = mem_realloc(a->users, sizeof *a->users);
        a->users[a->nusers++] = keep;
    }
    for (int i = 0; i < n; i++) {
        a->users = mem_realloc(a->users, (size_t)(a->nusers + 1) * sizeof *a->users);
        a->users[a->nusers++] = v[i];
    }
    mem_free(v);
}

int acl_load_file(server *s, char *err, size_t errcap)
{
    if (!s->cfg.aclfile[0]) return 0;
    acl_user **v;
    int n;
    if (acl_parse_file(s, s->cfg.aclfile, &v, &n, err, errcap) < 0) return -1;
    acl_install(s, v, n);
    return 0;
}

static int user_cmp(const void *a, const void *b)
{
    return strcmp((*(acl_user *const *)a)->name, (*(acl_user *const *)b)->name);
}

/* The users sorted by name (a borrowed, freshly allocated array). */
acl_user **acl_sorted(server *s, int *n)
{
    acl_state *a = ST(s);
    acl_user **v = mem_alloc((size_t)(a->nusers + 1) * sizeof *v);
    memcpy(v, a->users, (size_t)a->nusers * sizeof *v);
    qsort(v, (size_t)a->nusers, sizeof *v, user_cmp);
    *n = a->nusers;
    return v;
}

int acl_save_file(server *s, char *err, size_t errcap)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp-%d", s->cfg.aclfile, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(err, errcap, "Opening temp ACL file for ACL SAVE: %s", strerror(errno));
        return -1;
    }
    int n;
    acl_user **v = acl_sorted(s, &n);
    int ok = 1;
    for (int i = 0; i < n && ok; i++) {
        strbuf b = {0};
        acl_describe(v[i], &b);
        ok = fprintf(f, "%.*s\n", (int)b.len, b.p) > 0;
        strbuf_free(&b);
    }
    mem_free(v);
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, s->cfg.aclfile) < 0) {
        snprintf(err, errcap, "Writing ACL file for ACL SAVE: %s", strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* Remove a user (not default); 1 if it existed. */
int acl_delete(server *s, const char *name, size_t len)
{
    acl_state *a = ST(s);
    for (int i = 0; i < a->nusers; i++) {
        if (strlen(a->users[i]->name) != len || memcmp(a->users[i]->name, name, len)) continue;
        acl_user *u = a->users[i];
        memmove(&a->users[i], &a->users[i + 1], (size_t)(a->nusers - i - 1) * sizeof *a->users);
        a->nusers--;
        acl_user_replaced(s, u, NULL, acl_default_user(s));
        acl_user_free(u);
        return 1;
    }
    return 0;
}
