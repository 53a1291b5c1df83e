/* notify.c -- keyspace notifications: the channel names and the publishing
 * (contract and the list of events in notify.h).
 *
 * Loop thread only. */
#include "notify.h"

#include <stdio.h>
#include <string.h>

#include "engram/mem.h"
#include "pubsub.h"

/* "<prefix><db>__:<name>" into buf (cap bytes) or, when longer, a block
 * the caller frees (*heap). */
static char *notify_channel(char *buf, size_t cap, const char *prefix, int db, const char *name,
                            size_t nlen, size_t *len, char **heap)
{
    char head[48];
    int hl = snprintf(head, sizeof head, "%s%d__:", prefix, db);
    char *p = buf;
    *heap = NULL;
    if ((size_t)hl + nlen > cap) p = *heap = mem_alloc((size_t)hl + nlen);
    memcpy(p, head, (size_t)hl);
    memcpy(p + hl, name, nlen);
    *len = (size_t)hl + nlen;
    return p;
}

void notify_publish(server *s, const char *event, int db, const char *key, size_t klen)
{
    unsigned on = (unsigned)s->cfg.notify_keyspace_events;
    size_t elen = strlen(event), len;
    char buf[256], *heap, *chan;
    if (on & NOTIFY_KEYSPACE) {
        chan = notify_channel(buf, sizeof buf, "__keyspace@", db, key, klen, &len, &heap);
        pubsub_publish(s, 0, chan, len, event, elen);
        mem_free(heap);
    }
    if (on & NOTIFY_KEYEVENT) {
        chan = notify_channel(buf, sizeof buf, "__keyevent@", db, event, elen, &len, &heap);
        pubsub_publish(s, 0, chan, len, key, klen);
        mem_free(heap);
    }
}
