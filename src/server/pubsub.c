/* pubsub.c -- who listens to what, and delivering messages (contract in
 * pubsub.h).
 *
 * Shape.  Each kind (channels, patterns, shard channels) has a table: a kv
 * (kv.h, used as a plain dictionary: name -> ps_chan, no TTLs) to find a
 * name, and a dense array of the same ps_chans to walk them (PUBLISH walks
 * every pattern; PUBSUB CHANNELS every channel).  A ps_chan holds the
 * subscriptions to it in an array: PUBLISH costs O(its subscribers), plus
 * O(patterns) for the pattern match, as in Redis.  A subscription (ps_sub)
 * links one client and one ps_chan: it sits in the ps_chan's array (at
 * index `at`, so removal swaps the last one in: O(1)) and on the client's
 * list for that kind (in subscription order, which is the order
 * UNSUBSCRIBE / PUNSUBSCRIBE without arguments confirm in).  Whether a
 * client already has a name is found by walking the shorter of the two:
 * the client's list or the name's subscribers.  A name whose last
 * subscriber leaves is dropped at once, so a client subscribing to
 * millions of throw-away channels leaves nothing behind.
 *
 * Matching patterns uses util_glob_match (Redis's stringmatchlen) with
 * Redis's one quirk kept: a non-empty pattern never matches the empty
 * channel name (Redis's matcher loops over the string; util.h matches it).
 *
 * Messages.  A message is encoded once per PUBLISH (per matching pattern
 * for pmessage) into `frame` as a RESP2 array and copied into each
 * receiver's reply buffer; a RESP3 receiver gets the same bytes with '>'
 * as the first (a push header and an array header of the same count
 * differ only there: reply.h).  Receivers being closed get nothing
 * (pubsub.h); the others are queued for writing and their output limits
 * checked (client_check_obuf: the pubsub class once they subscribe).
 * The client running a command (c->cur set, or inside EXEC) gets its
 * messages in `held` instead, moved after its reply by
 * pubsub_after_command: only one client runs a command at a time.
 *
 * Loop thread only. */
#include "pubsub.h"

#include <string.h>

#include "engram/check.h"
#include "engram/dlist.h"
#include "engram/kv.h"
#include "engram/mem.h"
#include "engram/util.h"
#include "server.h"

#define PS_OBJ 1                    /* the kv type byte of a ps_chan */
#define PS_BUF_KEEP (64 * 1024)     /* scratch buffers shrink back past this */

typedef struct ps_sub ps_sub;

/* A channel, pattern or shard channel with at least one subscriber. */
typedef struct ps_chan {
    ps_sub **subs;                  /* its subscriptions, in no order */
    size_t n, cap;
    size_t pos;                     /* index in its table's `all` */
    size_t len;
    char name[];                    /* len bytes and a NUL */
} ps_chan;

/* One client subscribed to one ps_chan. */
struct ps_sub {
    client *c;
    ps_chan *ch;
    size_t at;                      /* index in ch->subs */
    dlist_node node;                /* on the client's list of its kind */
};

typedef struct ps_table {
    kv *index;                      /* name -> ps_chan */
    ps_chan **all;                  /* every ps_chan, dense */
    size_t n, cap;
} ps_table;

struct pubsub {
    ps_table t[PUBSUB_KINDS];
    size_t nclients;                /* clients with a subscription */
    reply frame;                    /* the message being published */
    reply held;                     /* messages for the client running a command */
    client *held_c;
};

/* A client's subscriptions (c->ps; NULL while it has none). */
typedef struct ps_client {
    dlist subs[PUBSUB_KINDS];       /* ps_sub.node, in subscription order */
    size_t n[PUBSUB_KINDS];
} ps_client;

static const char *const ps_subscribed[PUBSUB_KINDS] = {"subscribe", "psubscribe", "ssubscribe"};
static const char *const ps_unsubscribed[PUBSUB_KINDS] = {"unsubscribe", "punsubscribe",
                                                          "sunsubscribe"};

/* ---- tables ---------------------------------------------------------------------- */

void pubsub_init(server *s)
{
    struct pubsub *ps = mem_calloc(1, sizeof *ps);
    for (int k = 0; k < PUBSUB_KINDS; k++) ps->t[k].index = kv_new(util_rand64(&s->rng));
    reply_init(&ps->frame, 2);
    reply_init(&ps->held, 2);
    s->pubsub = ps;
}

void pubsub_fini(server *s)
{
    struct pubsub *ps = s->pubsub;
    if (!ps) return;
    for (int k = 0; k < PUBSUB_KINDS; k++) {
        CHECK(ps->t[k].n == 0);     /* every client, so every subscription, is gone */
        kv_free(ps->t[k].index);
        mem_free(ps->t[k].all);
    }
    reply_fini(&ps->frame);
    reply_fini(&ps->held);
    mem_free(ps);
    s->pubsub = NULL;
}

/* Room for n + 1 elements of size in *arr (capacity *cap). */
static void ps_reserve(void *arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap) return;
    *cap = *cap ? *cap * 2 : 4;
    *(void **)arr = mem_realloc(*(void **)arr, *cap * size);
}

/* Give back most of an array that shrank to n of *cap. */
static void ps_trim(void *arr, size_t *cap, size_t n, size_t size)
{
    if (*cap <= 16 || n > *cap / 4) return;
    *cap /= 2;
    *(void **)arr = mem_realloc(*(void **)arr, *cap * size);
}

static ps_chan *ps_lookup(ps_table *t, const char *name, size_t len)
{
    kv_entry *e = kv_find(t->index, name, len, 0);
    return e ? kv_obj(e) : NULL;
}

static ps_chan *ps_chan_get(ps_table *t, const char *name, size_t len)
{
    ps_chan *ch = ps_lookup(t, name, len);
    if (ch) return ch;
    ch = mem_calloc(1, sizeof *ch + len + 1);
    memcpy(ch->name, name, len);
    ch->len = len;
    ps_reserve(&t->all, &t->cap, t->n, sizeof *t->all);
    ch->pos = t->n;
    t->all[t->n++] = ch;
    kv_set_obj(t->index, ch->name, len, PS_OBJ, ch, NULL);
    return ch;
}

/* ch has no subscriber left. */
static void ps_chan_drop(ps_table *t, ps_chan *ch)
{
    kv_del(t->index, ch->name, ch->len);      /* no object ops: ch is ours to free */
    ps_chan *last = t->all[--t->n];
    t->all[ch->pos] = last;
    last->pos = ch->pos;
    ps_trim(&t->all, &t->cap, t->n, sizeof *t->all);
    mem_free(ch->subs);
    mem_free(ch);
}

/* ---- subscriptions ------------------------------------------------------------- */

static size_t ps_total(const ps_client *pc)
{
    return pc->n[PUBSUB_CHANNEL] + pc->n[PUBSUB_PATTERN] + pc->n[PUBSUB_SHARD];
}

/* The count a confirmation shows (Redis's subscriptionCount of the kind). */
static long long ps_reply_count(const client *c, pubsub_kind kind)
{
    const ps_client *pc = c->ps;
    if (!pc) return 0;
    if (kind == PUBSUB_SHARD) return (long long)pc->n[PUBSUB_SHARD];
    return (long long)(pc->n[PUBSUB_CHANNEL] + pc->n[PUBSUB_PATTERN]);
}

/* [word, name or nil, count] to c, as a push. */
static void ps_confirm(client *c, const char *word, const char *name, size_t len,
                       pubsub_kind kind)
{
    reply *r = &c->out;
    reply_push(r, 3);
    reply_bulk(r, word, strlen(word));
    if (name) reply_bulk(r, name, len);
    else reply_null(r);
    reply_int(r, ps_reply_count(c, kind));
}

/* c's subscription to ch, or NULL: walk the shorter list. */
static ps_sub *ps_find(const client *c, pubsub_kind kind, const ps_chan *ch)
{
    const ps_client *pc = c->ps;
    if (!pc) return NULL;
    if (ch->n <= pc->n[kind]) {
        for (size_t i = 0; i < ch->n; i++)
            if (ch->subs[i]->c == c) return ch->subs[i];
        return NULL;
    }
    for (dlist_node *n = dlist_first(&pc->subs[kind]); n; n = dlist_next(&pc->subs[kind], n)) {
        ps_sub *sub = DLIST_ENTRY(n, ps_sub, node);
        if (sub->ch == ch) return sub;
    }
    return NULL;
}

void pubsub_subscribe(client *c, pubsub_kind kind, const char *name, size_t len)
{
    struct pubsub *ps = c->srv->pubsub;
    ps_chan *ch = ps_chan_get(&ps->t[kind], name, len);
    if (!ps_find(c, kind, ch)) {
        if (!c->ps) {
            c->ps = mem_calloc(1, sizeof *c->ps);
            for (int k = 0; k < PUBSUB_KINDS; k++) dlist_init(&c->ps->subs[k]);
            c->flags |= CLIENT_PUBSUB;
            ps->nclients++;
        }
        ps_sub *sub = mem_calloc(1, sizeof *sub);
        sub->c = c;
        sub->ch = ch;
        ps_reserve(&ch->subs, &ch->cap, ch->n, sizeof *ch->subs);
        sub->at = ch->n;
        ch->subs[ch->n++] = sub;
        dlist_push(&c->ps->subs[kind], &sub->node);
        c->ps->n[kind]++;
    }
    ps_confirm(c, ps_subscribed[kind], name, len, kind);
}

/* Take sub away (confirming it if asked), then drop what it leaves empty:
 * its channel, the client's subscription state. */
static void ps_remove(client *c, pubsub_kind kind, ps_sub *sub, int confirm)
{
    struct pubsub *ps = c->srv->pubsub;
    ps_chan *ch = sub->ch;
    ps_sub *last = ch->subs[--ch->n];
    ch->subs[sub->at] = last;
    last->at = sub->at;
    ps_trim(&ch->subs, &ch->cap, ch->n, sizeof *ch->subs);
    dlist_remove(&sub->node);
    mem_free(sub);
    c->ps->n[kind]--;
    if (confirm) ps_confirm(c, ps_unsubscribed[kind], ch->name, ch->len, kind);
    if (ch->n == 0) ps_chan_drop(&ps->t[kind], ch);
    if (ps_total(c->ps) == 0) {
        mem_free(c->ps);
        c->ps = NULL;
        c->flags &= ~CLIENT_PUBSUB;
        ps->nclients--;
    }
}

void pubsub_unsubscribe(client *c, pubsub_kind kind, const char *name, size_t len)
{
    ps_chan *ch = ps_lookup(&c->srv->pubsub->t[kind], name, len);
    ps_sub *sub = ch ? ps_find(c, kind, ch) : NULL;
    if (sub) ps_remove(c, kind, sub, 1);
    else ps_confirm(c, ps_unsubscribed[kind], name, len, kind);
}

void pubsub_unsubscribe_all(client *c, pubsub_kind kind, int confirm)
{
    int any = 0;
    dlist_node *n;
    /* c->ps goes away with the last subscription. */
    while (c->ps && (n = dlist_first(&c->ps->subs[kind])) != NULL) {
        ps_remove(c, kind, DLIST_ENTRY(n, ps_sub, node), confirm);
        any = 1;
    }
    if (confirm && !any) ps_confirm(c, ps_unsubscribed[kind], NULL, 0, kind);
}

void pubsub_client_reset(client *c)
{
    struct pubsub *ps = c->srv->pubsub;
    if (!ps) return;                /* a start-up that failed before pubsub_init */
    for (int k = 0; k < PUBSUB_KINDS; k++) pubsub_unsubscribe_all(c, (pubsub_kind)k, 0);
    if (ps->held_c == c) {
        ps->held.len = ps->held.sent = 0;
        ps->held_c = NULL;
    }
}

/* ---- publishing ---------------------------------------------------------------- */

/* Redis's stringmatchlen: as util_glob_match, except that the empty
 * channel name matches only the empty pattern. */
static int ps_match(const char *pat, size_t plen, const char *s, size_t slen)
{
    if (slen == 0) return plen == 0;
    return util_glob_match(pat, plen, s, slen, 0);
}

/* Encode [word, (pattern,) channel, msg] into ps->frame, as RESP2. */
static void ps_frame(struct pubsub *ps, const char *word, const ps_chan *pat, const char *chan,
                     size_t clen, const char *msg, size_t mlen)
{
    reply *f = &ps->frame;
    f->len = f->sent = 0;
    reply_array(f, pat ? 4 : 3);
    reply_bulk(f, word, strlen(word));
    if (pat) reply_bulk(f, pat->name, pat->len);
    reply_bulk(f, chan, clen);
    reply_bulk(f, msg, mlen);
}

/* A scratch buffer a big message made big goes back to its usual size. */
static void ps_scratch_shrink(reply *r)
{
    if (r->cap <= PS_BUF_KEEP) return;
    reply_fini(r);
    reply_init(r, 2);
}

/* Copy the frame to c (see the top). */
static void ps_send(struct pubsub *ps, client *c)
{
    if (c->flags & (CLIENT_CLOSE_ASAP | CLIENT_CLOSE_AFTER_REPLY)) return;
    int running = c->cur || (c->flags & CLIENT_IN_EXEC);
    reply *out = &c->out;
    if (running) {
        CHECK(!ps->held_c || ps->held_c == c);
        ps->held_c = c;
        out = &ps->held;
    }
    size_t at = out->len;
    reply_raw(out, ps->frame.data, ps->frame.len);
    if (c->resp == 3) out->data[at] = '>';
    if (running) return;
    client_mark_pending(c);
    client_check_obuf(c);
}

static void ps_send_all(struct pubsub *ps, const ps_chan *ch)
{
    for (size_t i = 0; i < ch->n; i++) ps_send(ps, ch->subs[i]->c);
}

long long pubsub_publish(server *s, int shard, const char *chan, size_t clen,
                         const char *msg, size_t mlen)
{
    struct pubsub *ps = s->pubsub;
    long long n = 0;
    ps_chan *ch = ps_lookup(&ps->t[shard ? PUBSUB_SHARD : PUBSUB_CHANNEL], chan, clen);
    if (ch) {
        ps_frame(ps, shard ? "smessage" : "message", NULL, chan, clen, msg, mlen);
        ps_send_all(ps, ch);
        n += (long long)ch->n;
    }
    if (!shard) {
        const ps_table *t = &ps->t[PUBSUB_PATTERN];
        for (size_t i = 0; i < t->n; i++) {
            const ps_chan *pat = t->all[i];
            if (!ps_match(pat->name, pat->len, chan, clen)) continue;
            ps_frame(ps, "pmessage", pat, chan, clen, msg, mlen);
            ps_send_all(ps, pat);
            n += (long long)pat->n;
        }
    }
    ps_scratch_shrink(&ps->frame);
    return n;
}

void pubsub_after_command(client *c)
{
    struct pubsub *ps = c->srv->pubsub;
    if (ps->held_c != c || (c->flags & CLIENT_IN_EXEC)) return;
    reply_raw(&c->out, ps->held.data, ps->held.len);
    ps->held.len = ps->held.sent = 0;
    ps->held_c = NULL;
    ps_scratch_shrink(&ps->held);
    client_mark_pending(c);
}

/* ---- introspection --------------------------------------------------------------- */

size_t pubsub_client_count(const client *c, pubsub_kind kind)
{
    return c->ps ? c->ps->n[kind] : 0;
}

size_t pubsub_count(const server *s, pubsub_kind kind)
{
    return s->pubsub->t[kind].n;
}

size_t pubsub_subscribers(server *s, pubsub_kind kind, const char *name, size_t len)
{
    ps_chan *ch = ps_lookup(&s->pubsub->t[kind], name, len);
    return ch ? ch->n : 0;
}

size_t pubsub_clients(const server *s)
{
    return s->pubsub->nclients;
}

void pubsub_reply_names(client *c, pubsub_kind kind, const char *pat, size_t plen)
{
    const ps_table *t = &c->srv->pubsub->t[kind];
    size_t h = reply_defer(&c->out);
    long long n = 0;
    for (size_t i = 0; i < t->n; i++) {
        const ps_chan *ch = t->all[i];
        if (pat && !ps_match(pat, plen, ch->name, ch->len)) continue;
        reply_bulk(&c->out, ch->name, ch->len);
        n++;
    }
    reply_defer_array(&c->out, h, n);
}
