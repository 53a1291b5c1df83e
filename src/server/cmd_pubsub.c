/* cmd_pubsub.c -- the pub/sub commands: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE,
 * PUNSUBSCRIBE, PUBLISH; Redis 7's shard channels as a server without
 * cluster mode has them (SSUBSCRIBE, SUNSUBSCRIBE, SPUBLISH); and PUBSUB
 * CHANNELS, NUMSUB, NUMPAT, SHARDCHANNELS, SHARDNUMSUB and HELP.  Replies
 * and error texts are Redis 7's (test_pubsub.py compares them with a
 * redis-server 7.0); the subscriptions and the delivery are pubsub.c's.
 *
 * Loop thread only. */
#include "server.h"

#include "handlers.h"
#include "pubsub.h"

static void subscribe_generic(client *c, pubsub_kind kind)
{
    for (int j = 1; j < c->argc; j++) pubsub_subscribe(c, kind, c->argv[j], c->argvlen[j]);
}

/* Without arguments: from everything of the kind. */
static void unsubscribe_generic(client *c, pubsub_kind kind)
{
    if (c->argc == 1) pubsub_unsubscribe_all(c, kind, 1);
    for (int j = 1; j < c->argc; j++) pubsub_unsubscribe(c, kind, c->argv[j], c->argvlen[j]);
}

void cmd_subscribe(client *c) { subscribe_generic(c, PUBSUB_CHANNEL); }
void cmd_psubscribe(client *c) { subscribe_generic(c, PUBSUB_PATTERN); }
void cmd_unsubscribe(client *c) { unsubscribe_generic(c, PUBSUB_CHANNEL); }
void cmd_punsubscribe(client *c) { unsubscribe_generic(c, PUBSUB_PATTERN); }
void cmd_sunsubscribe(client *c) { unsubscribe_generic(c, PUBSUB_SHARD); }

void cmd_ssubscribe(client *c)
{
    /* Redis refuses it inside EXEC (a "deny blocking" context), where it
     * lets SUBSCRIBE and PSUBSCRIBE run for backward compatibility. */
    if (c->flags & CLIENT_IN_EXEC) {
        reply_error(&c->out, "ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client");
        return;
    }
    subscribe_generic(c, PUBSUB_SHARD);
}

void cmd_publish(client *c)
{
    reply_int(&c->out, pubsub_publish(c->srv, 0, c->argv[1], c->argvlen[1], c->argv[2],
                                      c->argvlen[2]));
}

void cmd_spublish(client *c)
{
    reply_int(&c->out, pubsub_publish(c->srv, 1, c->argv[1], c->argvlen[1], c->argv[2],
                                      c->argvlen[2]));
}

/* ---- PUBSUB ---------------------------------------------------------------------- */

/* PUBSUB CHANNELS / SHARDCHANNELS [pattern]: the table's arity lets more
 * arguments through; Redis answers them with its subcommand error. */
static void channels_generic(client *c, pubsub_kind kind)
{
    if (c->argc > 3) {
        reply_errorf(&c->out, "ERR unknown subcommand or wrong number of arguments for '%.*s'. "
                     "Try PUBSUB HELP.", (int)(c->argvlen[1] < 128 ? c->argvlen[1] : 128),
                     c->argv[1]);
        return;
    }
    if (c->argc == 3) pubsub_reply_names(c, kind, c->argv[2], c->argvlen[2]);
    else pubsub_reply_names(c, kind, NULL, 0);
}

/* PUBSUB NUMSUB / SHARDNUMSUB [channel ...]: name, count, name, count ... as
 * a flat array in RESP3 too (Redis 7). */
static void numsub_generic(client *c, pubsub_kind kind)
{
    reply_array(&c->out, 2LL * (c->argc - 2));
    for (int j = 2; j < c->argc; j++) {
        reply_bulk(&c->out, c->argv[j], c->argvlen[j]);
        reply_int(&c->out, (long long)pubsub_subscribers(c->srv, kind, c->argv[j], c->argvlen[j]));
    }
}

void cmd_pubsub_channels(client *c) { channels_generic(c, PUBSUB_CHANNEL); }
void cmd_pubsub_shardchannels(client *c) { channels_generic(c, PUBSUB_SHARD); }
void cmd_pubsub_numsub(client *c) { numsub_generic(c, PUBSUB_CHANNEL); }
void cmd_pubsub_shardnumsub(client *c) { numsub_generic(c, PUBSUB_SHARD); }

/* Patterns with subscribers (Redis >= 6.2 counts patterns, not pairs). */
void cmd_pubsub_numpat(client *c)
{
    reply_int(&c->out, (long long)pubsub_count(c->srv, PUBSUB_PATTERN));
}

void cmd_pubsub_help(client *c)
{
    static const char *const lines[] = {
        "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CHANNELS [<pattern>]",
        "    Return the currently active channels matching a <pattern> (default: '*').",
        "NUMPAT",
        "    Return number of subscriptions to patterns.",
        "NUMSUB [<channel> ...]",
        "    Return the number of subscribers for the specified channels, excluding",
        "    pattern subscriptions(default: no channels).",
        "SHARDCHANNELS [<pattern>]",
        "    Return the currently active shard level channels matching a <pattern> (default: '*').",
        "SHARDNUMSUB [<shardchannel> ...]",
        "    Return the number of subscribers for the specified shard level channel(s)",
        "HELP", "    Prints this help.", NULL};
    reply_help(c, lines);
}
