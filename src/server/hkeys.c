/* hkeys.c -- hashes as keys and the active expiry of their fields
 * (contract in hkeys.h).
 *
 * Lazy expiry happens inside hash.h (hash_get, hash_set delete an expired
 * field they meet); this file only settles its consequences when the
 * command ends, from hash_expired()'s count: a hash is freed only by
 * deleting its key, which happens here and nowhere in between, so the
 * hkey's pointer stays valid for the whole command.
 *
 * Loop thread only. */
#include "hkeys.h"

#include "engram/kv.h"
#include "engram/mem.h"
#include "engram/oplog.h"
#include "engram/util.h"
#include "keyspace.h"
#include "notify.h"
#include "persist.h"
#include "server.h"

#define HKEYS_SAMPLES 20        /* registry names sampled per database and round */
#define HKEYS_FIELDS 64         /* fields one hash may lose per sample */

struct hkeys {
    kv **vol;                   /* per database: names of keys whose hashes have deadlines */
    int n;
    uint64_t rng;
};

/* ---- one command's hash ------------------------------------------------------------ */

hash_limits hkey_limits(const server *s)
{
    return (hash_limits){(size_t)s->cfg.hash_max_listpack_entries,
                         (size_t)s->cfg.hash_max_listpack_value};
}

int hkey_open(hkey *k, client *c, int read)
{
    k->c = c;
    k->s = c->srv;
    k->db = c->db;
    k->key = c->argv[1];
    k->klen = c->argvlen[1];
    k->created = 0;
    k->emptied = 0;
    k->event = k->event2 = NULL;
    k->now = srv_now_ms(c->srv);
    k->h = NULL;
    k->expired0 = 0;
    kv_entry *e = read ? key_lookup_read(c, k->key, k->klen) : key_lookup(c, k->key, k->klen);
    if (e && kv_type(e) != OBJ_HASH) {
        reply_error(&c->out, WRONGTYPE_ERR);
        return 0;
    }
    if (e) {
        k->h = kv_obj(e);
        k->expired0 = hash_expired(k->h);
    }
    return 1;
}

hash *hkey_create(hkey *k)
{
    if (k->h) return k->h;
    k->h = hash_new(util_rand64(&k->s->rng));
    kv_set_obj(db_kv(k->s, k->db), k->key, k->klen, OBJ_HASH, k->h, NULL);
    k->created = 1;
    return k->h;
}

/* hkey_close's work; the "del" of an emptied key is left to the caller
 * (it follows the command's own event). */
static void hkey_settle(hkey *k)
{
    if (!k->h) return;
    uint64_t n = hash_expired(k->h) - k->expired0;
    if (n) {
        k->s->st.expired_subkeys += (long long)n;
        srv_watch_touch(k->s, k->db, k->key, k->klen);
        notify_keyspace_event(k->s, NOTIFY_HASH, "hexpired", k->db, k->key, k->klen);
    }
    k->expired0 = hash_expired(k->h);
    if (hash_len(k->h) == 0) {
        kv_del(db_kv(k->s, k->db), k->key, k->klen);
        k->h = NULL;
        k->emptied = 1;
    }
}

void hkey_close(hkey *k)
{
    hkey_settle(k);
    if (k->emptied && !k->created)
        notify_keyspace_event(k->s, NOTIFY_GENERIC, "del", k->db, k->key, k->klen);
    k->emptied = 0;
}

/* The command's events (see hkeys.h). */
static void hkey_events(hkey *k)
{
    if (k->created && !k->emptied)
        notify_keyspace_event(k->s, NOTIFY_NEW, "new", k->db, k->key, k->klen);
    if (k->event) notify_keyspace_event(k->s, NOTIFY_HASH, k->event, k->db, k->key, k->klen);
    if (k->event2) notify_keyspace_event(k->s, NOTIFY_HASH, k->event2, k->db, k->key, k->klen);
    if (k->emptied && !k->created)
        notify_keyspace_event(k->s, NOTIFY_GENERIC, "del", k->db, k->key, k->klen);
    k->emptied = 0;
}

/* The logged fields: argv[first + i * step] for i < n with mask[i] set. */
typedef struct hsel {
    client *c;
    int first, step, n;
    const unsigned char *mask;
} hsel;

static int hsel_arg(const hsel *q, int i, const char **f, size_t *flen)
{
    if (q->mask && !q->mask[i]) return 0;
    int a = q->first + i * q->step;
    *f = q->c->argv[a];
    *flen = q->c->argvlen[a];
    return 1;
}

/* One record of `type` with the selected fields that are present (present
 * 1) or gone (present 0), if there is any. */
static void hlog_record(hkey *k, uint8_t type, const hsel *q, int present, unsigned flags)
{
    const char *f, *v;
    size_t flen, vlen;
    int64_t exp;
    uint32_t count = 0;
    for (int i = 0; i < q->n; i++)
        if (hsel_arg(q, i, &f, &flen) && (k->h && hash_peek(k->h, f, flen, NULL, NULL, NULL)) == present)
            count++;
    if (!count) return;
    opbuf *b = persist_log_open(k->s, k->db, type);
    op_put_hhead(b, k->key, (uint32_t)k->klen, flags, count);
    for (int i = 0; i < q->n; i++) {
        if (!hsel_arg(q, i, &f, &flen)) continue;
        int here = k->h && hash_peek(k->h, f, flen, &v, &vlen, &exp);
        if (here != present) continue;
        op_put_hfield(b, type, f, (uint32_t)flen, here ? v : NULL, here ? (uint32_t)vlen : 0,
                      here ? exp : -1);
    }
    persist_log_close(k->s);
}

void hkey_commit(hkey *k, int mode, int first, int step, int n, const unsigned char *mask)
{
    hkey_settle(k);
    hkey_events(k);
    key_touched(k->s, k->db, k->key, k->klen);
    if (k->h && hash_volatile(k->h)) hkeys_track(k->s, k->db, k->key, k->klen);
    if (!persist_logging(k->s)) return;
    hsel q = {k->c, first, step, n, mask};
    if (k->created && !k->h) {
        /* made and emptied by one command: whatever replay finds there was
         * stale live, and goes */
        persist_log_key(k->s, k->db, k->key, k->klen);
        return;
    }
    hlog_record(k, mode == HKEY_LOG_VALUES ? OP_HSET : OP_HEXPIRE, &q, 1,
                k->created ? OP_HSET_NEW : 0);
    if (!k->created) hlog_record(k, OP_HDEL, &q, 0, 0);
}

/* ---- the registries ---------------------------------------------------------------- */

void hkeys_init(server *s)
{
    struct hkeys *r = mem_calloc(1, sizeof *r);
    r->n = s->ndbs;
    r->vol = mem_calloc((size_t)r->n, sizeof *r->vol);
    for (int i = 0; i < r->n; i++) r->vol[i] = kv_new(util_rand64(&s->rng));
    r->rng = util_rand64(&s->rng) | 1;
    s->hkeys = r;
}

void hkeys_fini(server *s)
{
    struct hkeys *r = s->hkeys;
    if (!r) return;
    for (int i = 0; i < r->n; i++) kv_free(r->vol[i]);
    mem_free(r->vol);
    mem_free(r);
    s->hkeys = NULL;
}

void hkeys_track(server *s, int db, const char *key, size_t klen)
{
    kv_entry *e = kv_peek(db_kv(s, db), key, klen);
    if (e && kv_type(e) == OBJ_HASH && hash_volatile(kv_obj(e)))
        kv_set(s->hkeys->vol[db], key, klen, "", 0, NULL);
}

typedef struct track_ctx {
    kv *vol;
} track_ctx;

static void track_one(void *ud, kv_entry *e)
{
    track_ctx *t = ud;
    size_t klen;
    const char *key = kv_key(e, &klen);
    if (kv_type(e) == OBJ_HASH && hash_volatile(kv_obj(e))) kv_set(t->vol, key, klen, "", 0, NULL);
}

void hkeys_track_all(server *s)
{
    for (int db = 0; db < s->ndbs; db++) {
        track_ctx t = {s->hkeys->vol[db]};
        kv_foreach(db_kv(s, db), track_one, &t);
    }
}

void hkeys_clear(server *s, int db)
{
    for (int i = db < 0 ? 0 : db; i < (db < 0 ? s->ndbs : db + 1); i++) kv_clear(s->hkeys->vol[i]);
}

void hkeys_swap(server *s, int a, int b)
{
    kv *t = s->hkeys->vol[a];
    s->hkeys->vol[a] = s->hkeys->vol[b];
    s->hkeys->vol[b] = t;
}

size_t hkeys_expire_cycle(server *s, int db, int64_t now)
{
    struct hkeys *r = s->hkeys;
    kv *vol = r->vol[db], *keys = db_kv(s, db);
    size_t total = 0;
    for (int i = 0; i < HKEYS_SAMPLES && kv_size(vol) > 0; i++) {
        kv_entry *name = kv_random(vol, -1, &r->rng);
        size_t klen;
        const char *key = kv_key(name, &klen);
        /* kv_find: a key past its own deadline goes first, as key expiry */
        kv_entry *e = kv_find(keys, key, klen, now);
        hash *h = e && kv_type(e) == OBJ_HASH ? kv_obj(e) : NULL;
        if (!h || hash_volatile(h) == 0) {
            kv_del_entry(vol, name);
            continue;
        }
        size_t n = hash_expire(h, now, HKEYS_FIELDS);
        if (!n) continue;
        total += n;
        s->st.expired_subkeys += (long long)n;
        srv_watch_touch(s, db, key, klen);
        notify_keyspace_event(s, NOTIFY_HASH, "hexpired", db, key, klen);
        if (hash_len(h) == 0) {
            kv_del_entry(keys, e);
            notify_keyspace_event(s, NOTIFY_GENERIC, "del", db, key, klen);
            kv_del_entry(vol, name);
        }
    }
    return total;
}
