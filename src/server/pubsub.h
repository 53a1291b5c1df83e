/* pubsub.h -- publish/subscribe: which clients listen to which channels,
 * shard channels and patterns, and delivering messages to them (the
 * mechanism behind SUBSCRIBE ... PUBLISH, cmd_pubsub.c, and keyspace
 * notifications, notify.h).
 *
 * Replies are Redis's: a confirmation per channel, [(p|s)subscribe, name,
 * count] and [(p|s)unsubscribe, name or nil, count], where count is the
 * client's channels + patterns (shard channels: its shard channels); a
 * message is [message, channel, payload], [pmessage, pattern, channel,
 * payload] or [smessage, channel, payload].  All of them are RESP3 pushes
 * (">") and RESP2 arrays.
 *
 * Subscribed mode: a client with any subscription has CLIENT_PUBSUB set
 * (cleared when its last one goes).  In RESP2, dispatch then lets it run
 * only CMD_SUBSCRIBED commands; its output limits are the pubsub class of
 * client-output-buffer-limit (conn.c).
 *
 * Delivery never blocks and never frees: a message is appended to each
 * receiver's reply buffer and the receiver is queued for writing; one that
 * passes its output limit is marked CLIENT_CLOSE_ASAP (closed in
 * before-sleep, as Redis's freeClientAsync) and gets nothing more, so a
 * subscriber that does not read costs at most its limit.  Messages for the
 * client that is running a command (its own PUBLISH, the keyspace events
 * of its own writes) are held and appended after that command's reply --
 * after EXEC's whole reply inside a transaction -- as Redis 7.2+ does, so
 * they can never land inside an aggregate reply.
 *
 * Loop thread only. */
#ifndef ENGRAM_PUBSUB_H
#define ENGRAM_PUBSUB_H

#include <stddef.h>

typedef struct server server;
typedef struct client client;

/* What a client subscribes to.  Shard channels are Redis 7's as a server
 * without cluster mode has them: a namespace of their own (SPUBLISH
 * reaches only SSUBSCRIBE), without patterns. */
typedef enum pubsub_kind {
    PUBSUB_CHANNEL,
    PUBSUB_PATTERN,
    PUBSUB_SHARD,
    PUBSUB_KINDS
} pubsub_kind;

void pubsub_init(server *s);
void pubsub_fini(server *s);        /* after every client is gone */

/* Subscribe c to name (a channel, pattern or shard channel; binary safe)
 * and reply the confirmation; subscribing twice changes nothing but still
 * confirms. */
void pubsub_subscribe(client *c, pubsub_kind kind, const char *name, size_t len);
/* Unsubscribe c from name and reply the confirmation, subscribed or not. */
void pubsub_unsubscribe(client *c, pubsub_kind kind, const char *name, size_t len);
/* Unsubscribe c from every name of kind, in the order it subscribed; with
 * confirm, reply one confirmation per name, or one with a nil name when
 * there was none. */
void pubsub_unsubscribe_all(client *c, pubsub_kind kind, int confirm);
/* Drop every subscription of c without replies (RESET, client_free). */
void pubsub_client_reset(client *c);

/* Deliver msg on channel to its subscribers and, unless shard, to the
 * subscribers of every pattern that matches it.  Returns the receivers
 * (a client matching twice counts twice, as in Redis). */
long long pubsub_publish(server *s, int shard, const char *chan, size_t clen,
                         const char *msg, size_t mlen);

/* Called when c's command is done (dispatch_exec): append the messages
 * held for c during it.  Inside EXEC they wait for EXEC's end. */
void pubsub_after_command(client *c);

/* Introspection. */
size_t pubsub_client_count(const client *c, pubsub_kind kind);  /* CLIENT LIST sub= */
size_t pubsub_count(const server *s, pubsub_kind kind);         /* NUMPAT, INFO */
size_t pubsub_subscribers(server *s, pubsub_kind kind, const char *name, size_t len);
size_t pubsub_clients(const server *s);       /* clients with a subscription */
/* PUBSUB CHANNELS / SHARDCHANNELS: the names of kind with subscribers that
 * match pat (NULL: all), as an array reply to c. */
void pubsub_reply_names(client *c, pubsub_kind kind, const char *pat, size_t plen);

#endif
