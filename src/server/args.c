/* args.c -- what command handlers share: Redis's standard error replies,
 * argument parsing that replies the error itself, and the HELP reply.
 *
 * Loop thread only. */
#include "server.h"

#include <stdio.h>

#include "engram/util.h"

void reply_err_arity_name(client *c, const char *name)
{
    reply_errorf(&c->out, "wrong number of arguments for '%s' command", name);
}

void reply_err_arity(client *c)
{
    reply_err_arity_name(c, c->cur ? c->cur->fullname : "unknown");
}

void reply_err_syntax(client *c) { reply_error(&c->out, "ERR syntax error"); }
void reply_err_int(client *c) { reply_error(&c->out, "ERR value is not an integer or out of range"); }

int arg_ll(client *c, int i, long long *out)
{
    if (util_str2ll(c->argv[i], c->argvlen[i], out)) return 1;
    reply_err_int(c);
    return 0;
}

int arg_ll_range(client *c, int i, long long min, long long max, long long *out, const char *errmsg)
{
    long long v;
    if (!util_str2ll(c->argv[i], c->argvlen[i], &v)) {
        reply_err_int(c);
        return 0;
    }
    if (v < min || v > max) {
        if (errmsg) reply_error(&c->out, errmsg);
        else reply_errorf(&c->out, "value is out of range, must be between %lld and %lld", min, max);
        return 0;
    }
    *out = v;
    return 1;
}

/* Redis parses a SCAN cursor with strtoul: optional sign (a negative
 * cursor wraps), no leading space, all digits, no overflow; an empty
 * string is cursor 0.  argv is not NUL-terminated, hence by hand. */
int arg_cursor(client *c, int i, uint64_t *out)
{
    const char *s = c->argv[i];
    size_t len = c->argvlen[i], j = 0;
    int neg = 0;
    uint64_t v = 0;

    if (len && (s[0] == '+' || s[0] == '-')) {
        neg = s[0] == '-';
        j = 1;
        if (j == len) goto bad;
    }
    for (; j < len; j++) {
        unsigned d = (unsigned char)s[j] - '0';
        if (d > 9 || v > (UINT64_MAX - d) / 10) goto bad;
        v = v * 10 + d;
    }
    *out = neg ? 0 - v : v;
    return 1;
bad:
    reply_error(&c->out, "ERR invalid cursor");
    return 0;
}

void reply_scan(client *c, uint64_t cursor, reply *items, long long n)
{
    char cbuf[24];
    int clen = snprintf(cbuf, sizeof cbuf, "%llu", (unsigned long long)cursor);
    reply_array(&c->out, 2);
    reply_bulk(&c->out, cbuf, (size_t)clen);
    reply_array(&c->out, n);
    reply_raw(&c->out, items->data, items->len);
    reply_fini(items);
}

int arg_is(const client *c, int i, const char *word)
{
    return i < c->argc && util_eq_nocase(c->argv[i], c->argvlen[i], word);
}

void reply_help(client *c, const char *const *lines)
{
    long long n = 0;
    while (lines[n]) n++;
    reply_array(&c->out, n);
    for (long long i = 0; i < n; i++) reply_simple(&c->out, lines[i]);
}
