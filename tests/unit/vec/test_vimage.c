/* test_vimage.c -- vector indices in and out of snapshot images: HNSW, FLAT
 * and the vindex front, all three metrics, empty and churned indices.
 *
 * The sink here collects each section into its own buffer (page-aligned
 * ones from posix_memalign 4096, packed ones deliberately at an odd
 * address, so no loader may assume alignment there); the source hands the
 * buffers back with a release callback that logs every call.  What is
 * checked: a loaded index is the same index (digest, validator, identical
 * searches, byte-identical sections when saved again) and has the same
 * future (equal operations give equal digests); borrowed ranges are given
 * back exactly once, at growth or at free, and never by a failed load;
 * damaged, truncated or mismatched images are refused with VINDEX_ECORRUPT
 * and never read out of bounds (run this under ASan), with a message that
 * names what is wrong: the section missing, of the wrong kind or length,
 * the field out of range (issue 21).  Refusals hand the loaders their
 * sections in an array of exactly n, so a read past it is ASan's to see.
 * Random damage of every kind (bytes, words, lengths, kinds, sections
 * dropped, repeated, swapped) is refused that way or loads into an index
 * that can be searched and written to, and every key of it deleted: a
 * graph whose bookkeeping lies (a reverse hint naming no one-way link, a
 * hint or a link twice, an in-degree off) is refused by name, never left
 * for a later delete to stop the process on. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engram/dist.h"
#include "engram/flat.h"
#include "engram/hnsw.h"
#include "engram/image.h"
#include "engram/vindex.h"

#include "testlib.h"

#ifdef TEST_SLOW
#define FUZZ_ROUNDS 1500u
#else
#define FUZZ_ROUNDS 6000u
#endif

#define MAXSEC 16

/* ---- seeded data -------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float rng_f(uint64_t *s) { return (float)((double)(rng_next(s) >> 11) * 0x1.0p-53 * 2 - 1); }

/* A vector; normalised when the metric is cosine (the engines expect it). */
static void rand_vec(float *v, uint32_t dim, dist_metric m, uint64_t *s)
{
    double n = 0;
    for (uint32_t j = 0; j < dim; j++) {
        v[j] = rng_f(s);
        n += (double)v[j] * v[j];
    }
    if (m == DIST_COSINE)
        for (uint32_t j = 0; j < dim; j++) v[j] = (float)(v[j] / sqrt(n));
}

/* ---- the in-memory image ------------------------------------------------ */

typedef struct mem_sec {
    uint32_t kind;
    int page;
    uint8_t *raw;           /* what to free */
    uint8_t *data;
    size_t len;
} mem_sec;

typedef struct mem_image {
    img_sink sink;
    mem_sec sec[MAXSEC];
    size_t n;
    int open;
    uint8_t *buf;           /* the section being written */
    size_t blen, bcap;
    int fail_at, calls;     /* fail the fail_at-th sink call with -EIO (0: never) */
} mem_image;

static int sink_call(mem_image *im)
{
    return im->fail_at && ++im->calls == im->fail_at ? -EIO : 0;
}

static int mi_begin(img_sink *s, uint32_t kind, int page_align)
{
    mem_image *im = (mem_image *)s;
    if (sink_call(im)) return -EIO;
    assert_false(im->open);
    assert_true(im->n < MAXSEC);
    im->sec[im->n] = (mem_sec){ kind, page_align, NULL, NULL, 0 };
    im->open = 1;
    im->blen = 0;
    return 0;
}

static int mi_write(img_sink *s, const void *p, size_t n)
{
    mem_image *im = (mem_image *)s;
    if (sink_call(im)) return -EIO;
    assert_true(im->open);
    if (im->blen + n > im->bcap) {
        size_t c = im->bcap ? im->bcap : 4096;
        while (c < im->blen + n) c *= 2;
        assert_non_null(im->buf = realloc(im->buf, c));
        im->bcap = c;
    }
    memcpy(im->buf + im->blen, p, n);
    im->blen += n;
    return 0;
}

/* Page-aligned sections get their own pages; packed ones sit at an odd
 * address. */
static void sec_place(mem_sec *s, const void *p, size_t len)
{
    if (s->page) {
        void *q = NULL;
        assert_int_equal(posix_memalign(&q, 4096, len ? len : 1), 0);
        s->raw = s->data = q;
    } else {
        assert_non_null(s->raw = malloc(len + 1));
        s->data = s->raw + 1;
    }
    if (len) memcpy(s->data, p, len);
    s->len = len;
}

static int mi_end(img_sink *s)
{
    mem_image *im = (mem_image *)s;
    if (sink_call(im)) return -EIO;
    assert_true(im->open);
    sec_place(&im->sec[im->n], im->buf, im->blen);
    im->n++;
    im->open = 0;
    return 0;
}

static void mi_init(mem_image *im)
{
    memset(im, 0, sizeof *im);
    im->sink.begin = mi_begin;
    im->sink.write = mi_write;
    im->sink.end = mi_end;
}

static void mi_fini(mem_image *im)
{
    for (size_t i = 0; i < im->n; i++) free(im->sec[i].raw);
    free(im->buf);
    memset(im, 0, sizeof *im);
}

static void mi_copy(mem_image *dst, const mem_image *src)
{
    mi_init(dst);
    for (size_t i = 0; i < src->n; i++) {
        dst->sec[i] = (mem_sec){ src->sec[i].kind, src->sec[i].page, NULL, NULL, 0 };
        sec_place(&dst->sec[i], src->sec[i].data, src->sec[i].len);
    }
    dst->n = src->n;
}

static void mi_equal(const mem_image *a, const mem_image *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        assert_int_equal(a->sec[i].kind, b->sec[i].kind);
        assert_int_equal(a->sec[i].page, b->sec[i].page);
        assert_int_equal(a->sec[i].len, b->sec[i].len);
        if (a->sec[i].len) assert_memory_equal(a->sec[i].data, b->sec[i].data, a->sec[i].len);
    }
}

/* The release log. */
typedef struct rel_log {
    size_t n;
    void *p[MAXSEC];
    size_t len[MAXSEC];
} rel_log;

static void rel_cb(void *ud, void *p, size_t len)
{
    rel_log *r = ud;
    assert_true(r->n < MAXSEC);
    r->p[r->n] = p;
    r->len[r->n] = len;
    r->n++;
}

/* The source over sections [from, from + n) of im; borrow = 0 hides the
 * page alignment, so everything must be copied. */
typedef struct mem_src {
    img_source src;
    img_section sec[MAXSEC];
    rel_log rel;
} mem_src;

static void ms_init(mem_src *ms, const mem_image *im, size_t from, size_t n, int borrow)
{
    memset(ms, 0, sizeof *ms);
    for (size_t i = 0; i < n; i++) {
        const mem_sec *s = &im->sec[from + i];
        ms->sec[i] = (img_section){ s->kind, borrow && s->page, s->data, s->len };
    }
    ms->src = (img_source){ ms->sec, n, rel_cb, &ms->rel };
}

/* Times the range of section kind was released. */
static size_t released(const mem_src *ms, uint32_t kind)
{
    size_t k = 0;
    for (size_t i = 0; i < ms->src.n; i++) {
        if (ms->sec[i].kind != kind) continue;
        for (size_t j = 0; j < ms->rel.n; j++)
            if (ms->rel.p[j] == ms->sec[i].data) {
                assert_int_equal(ms->rel.len[j], ms->sec[i].len);
                k++;
            }
    }
    return k;
}

/* Non-empty sections of the source: vindex_load releases each exactly once
 * over the index's life (copied ones before it returns). */
static size_t nonempty(const mem_src *ms)
{
    size_t k = 0;
    for (size_t i = 0; i < ms->src.n; i++) k += ms->sec[i].len != 0;
    return k;
}

/* ---- HNSW --------------------------------------------------------------- */

#define HDIM 8u

static hnsw_params hparams(dist_metric m, uint32_t dim)
{
    hnsw_params p = { .dim = dim, .metric = m, .M = 4, .ef_construction = 24, .ef_search = 32,
                      .seed = 42 };
    return p;
}

static void hcheck(const hnsw *h)
{
    char err[256] = "";
    if (hnsw_validate(h, err, sizeof err)) fail_msg("hnsw validate: %s", err);
}

/* A random live id, or HNSW_NONE. */
static uint32_t pick_live(const hnsw *h, uint64_t *s)
{
    uint32_t cap = hnsw_capacity(h);
    if (hnsw_count(h) == 0) return HNSW_NONE;
    for (uint32_t id = (uint32_t)(rng_next(s) % cap);; id = (id + 1) % cap)
        if (hnsw_is_live(h, id)) return id;
}

/* n random operations (insert 50%, delete 35%, update 15%) from seed. */
static void hnsw_ops(hnsw *h, dist_metric m, uint32_t n, uint64_t seed)
{
    uint64_t s = seed;
    float v[HDIM];
    for (uint32_t i = 0; i < n; i++) {
        uint32_t r = (uint32_t)(rng_next(&s) % 100), id;
        rand_vec(v, HDIM, m, &s);
        if (r < 50 || hnsw_count(h) == 0) {
            assert_int_equal(hnsw_insert(h, v, &id), 0);
        } else if (r < 85) {
            assert_int_equal(hnsw_delete(h, pick_live(h, &s)), 0);
        } else {
            assert_int_equal(hnsw_update(h, pick_live(h, &s), v), 0);
        }
    }
}

/* A graph after churn: free ids, and (dot product, few dimensions: hubs)
 * overflow hints. */
static hnsw *hnsw_churned(dist_metric m, uint32_t n)
{
    hnsw_params p = hparams(m, HDIM);
    hnsw *h = hnsw_new(&p, NULL);
    assert_non_null(h);
    uint64_t s = 7;
    float v[HDIM];
    uint32_t id;
    for (uint32_t i = 0; i < n; i++) {
        rand_vec(v, HDIM, m, &s);
        assert_int_equal(hnsw_insert(h, v, &id), 0);
    }
    hnsw_ops(h, m, n, 99);
    assert_true(hnsw_reconnect(h) >= 0);    /* so that the validator passes */
    return h;
}

static void hsearch_equal(const hnsw *a, const hnsw *b, dist_metric m)
{
    hnsw_search_ctx *c = hnsw_search_ctx_new(NULL);
    uint64_t s = 1234;
    float q[HDIM];
    vindex_pair ra[10], rb[10];
    for (int i = 0; i < 50; i++) {
        uint32_t na, nb;
        rand_vec(q, HDIM, m, &s);
        assert_int_equal(hnsw_search(a, c, q, 10, 0, NULL, NULL, ra, &na), 0);
        assert_int_equal(hnsw_search(b, c, q, 10, 0, NULL, NULL, rb, &nb), 0);
        assert_int_equal(na, nb);
        assert_memory_equal(ra, rb, na * sizeof *ra);
    }
    hnsw_search_ctx_free(c);
}

static hnsw *hload_ok(const hnsw_params *p, mem_src *ms)
{
    char err[256] = "";
    hnsw *h = NULL;
    int rc = hnsw_load(p, &ms->src, &h, err, sizeof err);
    if (rc) fail_msg("hnsw_load: %d %s", rc, err);
    return h;
}

static void test_hnsw_roundtrip(void **state)
{
    (void)state;
    const dist_metric ms3[] = { DIST_L2, DIST_COSINE, DIST_DOT };
    for (int mi = 0; mi < 3; mi++) {
        dist_metric m = ms3[mi];
        hnsw_params p = hparams(m, HDIM);
        hnsw *h = hnsw_churned(m, 1500);
        hcheck(h);
        hnsw_stats st;
        hnsw_stats_get(h, &st);
        assert_true(hnsw_count(h) < hnsw_capacity(h));   /* free ids exist */
        if (m == DIST_DOT) assert_true(st.overflow0 > 0); /* hint overflow in use */

        mem_image im;
        mi_init(&im);
        assert_int_equal(hnsw_save(h, &im.sink), 0);
        assert_int_equal(im.n, 5);
        for (int borrow = 1; borrow >= 0; borrow--) {
            mem_image work, again;
            mi_copy(&work, &im);
            mem_src ms;
            ms_init(&ms, &work, 0, work.n, borrow);
            hnsw *g = hload_ok(&p, &ms);
            assert_int_equal(hnsw_digest(g), hnsw_digest(h));
            assert_int_equal(hnsw_count(g), hnsw_count(h));
            assert_int_equal(hnsw_capacity(g), hnsw_capacity(h));
            assert_int_equal(hnsw_entry(g), hnsw_entry(h));
            assert_int_equal(hnsw_max_level(g), hnsw_max_level(h));
            hcheck(g);
            hnsw_stats sg;
            hnsw_stats_get(g, &sg);
            assert_int_equal(sg.nonrecip0, st.nonrecip0);
            assert_int_equal(sg.hinted0, st.hinted0);
            assert_int_equal(sg.overflow0, st.overflow0);
            assert_int_equal(sg.hints_dropped, st.hints_dropped);
            assert_int_equal(sg.orphans_fixed, st.orphans_fixed);
            assert_int_equal(sg.reconnected, st.reconnected);
            assert_int_equal(sg.inlink_scans, st.inlink_scans);
            assert_true(sg.avg_degree0 == st.avg_degree0);
            hsearch_equal(h, g, m);
            /* Borrowed arrays are the index's data: counted. */
            if (borrow) assert_true(hnsw_memory(g) >= work.sec[1].len + work.sec[2].len);
            /* Saved again: the same bytes. */
            mi_init(&again);
            assert_int_equal(hnsw_save(g, &again.sink), 0);
            mi_equal(&im, &again);
            mi_fini(&again);
            assert_int_equal(ms.rel.n, 0);
            hnsw_free(g);
            /* Freed while borrowing: each borrowed range released once. */
            assert_int_equal(released(&ms, HNSW_IMG_VECS), borrow);
            assert_int_equal(released(&ms, HNSW_IMG_L0), borrow);
            assert_int_equal(ms.rel.n, 2u * borrow);
            mi_fini(&work);
        }
        mi_fini(&im);
        hnsw_free(h);
    }
}

/* The loaded copy has the original's future: growth, deletes, updates,
 * reconnect sweeps and overflow hints all come out the same. */
static void test_hnsw_continues(void **state)
{
    (void)state;
    const dist_metric ms3[] = { DIST_L2, DIST_COSINE, DIST_DOT };
    for (int mi = 0; mi < 3; mi++) {
        dist_metric m = ms3[mi];
        hnsw_params p = hparams(m, HDIM);
        for (int borrow = 0; borrow < 2; borrow++) {
            hnsw *h = hnsw_churned(m, 800);
            mem_image im;
            mi_init(&im);
            assert_int_equal(hnsw_save(h, &im.sink), 0);
            mem_src ms;
            ms_init(&ms, &im, 0, im.n, borrow);
            hnsw *g = hload_ok(&p, &ms);
            /* Deletes and updates within the borrowed arrays write into the
             * source (its copy-on-write mapping): nothing is released. */
            uint64_t s1 = 5, s2 = 5;
            for (int i = 0; i < 30; i++) {
                uint32_t a = pick_live(h, &s1), b = pick_live(g, &s2);
                assert_int_equal(a, b);
                assert_int_equal(hnsw_delete(h, a), 0);
                assert_int_equal(hnsw_delete(g, b), 0);
            }
            assert_int_equal(hnsw_digest(g), hnsw_digest(h));
            assert_int_equal(ms.rel.n, 0);
            /* Refill the free list, then one more: the first slot past the
             * borrowed arrays moves them out, releasing each once. */
            float v[HDIM];
            uint64_t s = 77;
            uint32_t ia, ib;
            for (int i = 0; i < 1000; i++) {    /* well past hwm (< 1600) */
                rand_vec(v, HDIM, m, &s);
                assert_int_equal(hnsw_insert(h, v, &ia), 0);
                assert_int_equal(hnsw_insert(g, v, &ib), 0);
                assert_int_equal(ia, ib);
            }
            assert_int_equal(released(&ms, HNSW_IMG_VECS), borrow);
            assert_int_equal(released(&ms, HNSW_IMG_L0), borrow);
            /* Out of the source now: later writes leave it alone. */
            mem_image snap;
            mi_copy(&snap, &im);
            hnsw_ops(h, m, 1500, 2024);
            hnsw_ops(g, m, 1500, 2024);
            assert_int_equal(hnsw_digest(g), hnsw_digest(h));
            /* Pruning may have cut a group off since the last sweep. */
            assert_int_equal(hnsw_reconnect(h), hnsw_reconnect(g));
            assert_int_equal(hnsw_digest(g), hnsw_digest(h));
            assert_int_equal(hnsw_capacity(g), hnsw_capacity(h));
            mi_equal(&snap, &im);
            hcheck(g);
            assert_int_equal(ms.rel.n, 2u * borrow);
            hnsw_free(g);
            assert_int_equal(ms.rel.n, 2u * borrow);  /* nothing twice */
            mi_fini(&snap);
            mi_fini(&im);
            hnsw_free(h);
        }
    }
}

static void test_hnsw_empty(void **state)
{
    (void)state;
    for (int variant = 0; variant < 3; variant++) {
        hnsw_params p = hparams(DIST_L2, HDIM);
        if (variant == 1) p.initial_capacity = 100;
        hnsw *h = hnsw_new(&p, NULL);
        float v[HDIM];
        uint64_t s = 3;
        uint32_t id;
        if (variant == 2) {     /* everything deleted: all slots free */
            for (int i = 0; i < 40; i++) {
                rand_vec(v, HDIM, DIST_L2, &s);
                assert_int_equal(hnsw_insert(h, v, &id), 0);
            }
            for (uint32_t i = 0; i < 40; i++) assert_int_equal(hnsw_delete(h, i), 0);
        }
        mem_image im;
        mi_init(&im);
        assert_int_equal(hnsw_save(h, &im.sink), 0);
        mem_src ms;
        ms_init(&ms, &im, 0, im.n, 1);
        hnsw *g = hload_ok(&p, &ms);
        assert_int_equal(hnsw_digest(g), hnsw_digest(h));
        assert_int_equal(hnsw_count(g), 0);
        assert_int_equal(hnsw_entry(g), HNSW_NONE);
        hcheck(g);
        vindex_pair r[4];
        uint32_t nr = 9;
        hnsw_search_ctx *c = hnsw_search_ctx_new(NULL);
        assert_int_equal(hnsw_search(g, c, v, 4, 0, NULL, NULL, r, &nr), 0);
        assert_int_equal(nr, 0);
        hnsw_search_ctx_free(c);
        hnsw_ops(h, DIST_L2, 300, 8);
        hnsw_ops(g, DIST_L2, 300, 8);
        assert_int_equal(hnsw_digest(g), hnsw_digest(h));
        assert_int_equal(hnsw_reconnect(h), hnsw_reconnect(g));
        hcheck(g);
        hnsw_free(g);
        assert_int_equal(ms.rel.n, variant == 2 ? 2 : 0);
        mi_fini(&im);
        hnsw_free(h);
    }
}

static void test_hnsw_mismatch(void **state)
{
    (void)state;
    hnsw *h = hnsw_churned(DIST_L2, 200);
    mem_image im;
    mi_init(&im);
    assert_int_equal(hnsw_save(h, &im.sink), 0);
    const char *what[] = { "dimension", "metric", "M", "ef_construction", "ef_search" };
    for (int i = 0; i < 5; i++) {
        hnsw_params p = hparams(DIST_L2, HDIM);
        switch (i) {
        case 0: p.dim = HDIM + 1; break;
        case 1: p.metric = DIST_DOT; break;
        case 2: p.M = 5; break;
        case 3: p.ef_construction = 25; break;
        default: p.ef_search = 33; break;
        }
        mem_src ms;
        ms_init(&ms, &im, 0, im.n, 1);
        char err[256] = "";
        hnsw *g = (hnsw *)&ms;
        assert_int_equal(hnsw_load(&p, &ms.src, &g, err, sizeof err), VINDEX_ECORRUPT);
        assert_null(g);
        assert_non_null(strstr(err, what[i]));
        assert_int_equal(ms.rel.n, 0);
    }
    /* Too few sections, or in the wrong order. */
    hnsw_params p = hparams(DIST_L2, HDIM);
    mem_src ms;
    ms_init(&ms, &im, 0, 4, 1);
    hnsw *g = NULL;
    char err[256];
    assert_int_equal(hnsw_load(&p, &ms.src, &g, err, sizeof err), VINDEX_ECORRUPT);
    ms_init(&ms, &im, 0, 5, 1);
    img_section t = ms.sec[1];
    ms.sec[1] = ms.sec[2];
    ms.sec[2] = t;
    assert_int_equal(hnsw_load(&p, &ms.src, &g, err, sizeof err), VINDEX_ECORRUPT);
    p.M = 1;
    assert_int_equal(hnsw_load(&p, &ms.src, &g, err, sizeof err), -EINVAL);
    mi_fini(&im);
    hnsw_free(h);
}

/* ---- FLAT --------------------------------------------------------------- */

static void flat_ops(flat *f, dist_metric m, uint32_t n, uint64_t seed)
{
    uint64_t s = seed;
    float v[HDIM];
    for (uint32_t i = 0; i < n; i++) {
        uint32_t r = (uint32_t)(rng_next(&s) % 100), id;
        rand_vec(v, HDIM, m, &s);
        if (r < 55 || flat_count(f) == 0) {
            assert_int_equal(flat_insert(f, v, &id), 0);
            continue;
        }
        uint32_t cap = flat_capacity(f);
        for (id = (uint32_t)(rng_next(&s) % cap); !flat_is_live(f, id); id = (id + 1) % cap) {}
        if (r < 85) assert_int_equal(flat_delete(f, id), 0);
        else assert_int_equal(flat_update(f, id, v), 0);
    }
}

static void flat_same(const flat *a, const flat *b, dist_metric m)
{
    assert_int_equal(flat_count(a), flat_count(b));
    assert_int_equal(flat_capacity(a), flat_capacity(b));
    for (uint32_t id = 0; id < flat_capacity(a); id++) {
        assert_int_equal(flat_is_live(a, id), flat_is_live(b, id));
        if (flat_is_live(a, id))
            assert_memory_equal(flat_vector(a, id), flat_vector(b, id), HDIM * sizeof(float));
    }
    uint64_t s = 55;
    float q[HDIM];
    vindex_pair ra[10], rb[10];
    for (int i = 0; i < 30; i++) {
        uint32_t na, nb;
        rand_vec(q, HDIM, m, &s);
        assert_int_equal(flat_search(a, q, 10, NULL, NULL, ra, &na), 0);
        assert_int_equal(flat_search(b, q, 10, NULL, NULL, rb, &nb), 0);
        assert_int_equal(na, nb);
        assert_memory_equal(ra, rb, na * sizeof *ra);
    }
}

static void test_flat_roundtrip(void **state)
{
    (void)state;
    const dist_metric ms3[] = { DIST_L2, DIST_COSINE, DIST_DOT };
    for (int mi = 0; mi < 3; mi++) {
        dist_metric m = ms3[mi];
        for (int borrow = 0; borrow < 2; borrow++) {
            flat_params p = { .dim = HDIM, .metric = m };
            flat *f = flat_new(&p, NULL);
            flat_ops(f, m, 700, 11);
            assert_true(flat_count(f) < flat_capacity(f));
            mem_image im, again;
            mi_init(&im);
            assert_int_equal(flat_save(f, &im.sink), 0);
            assert_int_equal(im.n, 3);
            /* Loads use copies: a loaded index writes into what it borrows. */
            mem_image work;
            mi_copy(&work, &im);
            mem_src ms;
            ms_init(&ms, &work, 0, work.n, borrow);
            flat *g = NULL;
            char err[256] = "";
            assert_int_equal(flat_load(&p, &ms.src, &g, err, sizeof err), 0);
            assert_int_equal(flat_validate(g, err, sizeof err), 0);
            flat_same(f, g, m);
            if (borrow) assert_true(flat_memory(g) >= im.sec[1].len);
            mi_init(&again);
            assert_int_equal(flat_save(g, &again.sink), 0);
            mi_equal(&im, &again);
            mi_fini(&again);
            /* The same future; growth moves the vectors out once. */
            flat_ops(f, m, 2000, 12);
            flat_ops(g, m, 2000, 12);
            assert_int_equal(released(&ms, FLAT_IMG_VECS), borrow);
            assert_int_equal(ms.rel.n, (size_t)borrow);
            flat_same(f, g, m);
            flat_free(g);
            assert_int_equal(ms.rel.n, (size_t)borrow);
            mi_fini(&work);
            /* Freed while still borrowing: released then. */
            mi_copy(&work, &im);
            ms_init(&ms, &work, 0, work.n, borrow);
            assert_int_equal(flat_load(&p, &ms.src, &g, err, sizeof err), 0);
            flat_free(g);
            assert_int_equal(released(&ms, FLAT_IMG_VECS), borrow);
            mi_fini(&work);
            ms_init(&ms, &im, 0, im.n, borrow);
            /* Mismatched parameters. */
            flat_params q = p;
            q.dim = HDIM * 2;
            assert_int_equal(flat_load(&q, &ms.src, &g, err, sizeof err), VINDEX_ECORRUPT);
            assert_non_null(strstr(err, "dimension"));
            q = p;
            q.metric = m == DIST_L2 ? DIST_DOT : DIST_L2;
            assert_int_equal(flat_load(&q, &ms.src, &g, err, sizeof err), VINDEX_ECORRUPT);
            assert_non_null(strstr(err, "metric"));
            assert_null(g);
            mi_fini(&im);
            flat_free(f);
        }
    }
}

static void test_flat_empty(void **state)
{
    (void)state;
    for (int variant = 0; variant < 2; variant++) {
        flat_params p = { .dim = HDIM, .metric = DIST_L2, .initial_capacity = variant ? 64 : 0 };
        flat *f = flat_new(&p, NULL);
        mem_image im;
        mi_init(&im);
        assert_int_equal(flat_save(f, &im.sink), 0);
        mem_src ms;
        ms_init(&ms, &im, 0, im.n, 1);
        flat *g = NULL;
        char err[128];
        assert_int_equal(flat_load(&p, &ms.src, &g, err, sizeof err), 0);
        assert_int_equal(flat_capacity(g), flat_capacity(f));
        flat_ops(f, DIST_L2, 100, 1);
        flat_ops(g, DIST_L2, 100, 1);
        flat_same(f, g, DIST_L2);
        flat_free(g);
        assert_int_equal(ms.rel.n, 0);
        mi_fini(&im);
        flat_free(f);
    }
}

/* ---- vindex ------------------------------------------------------------- */

#define VDIM 6u

static vindex *vx_make(vindex_type t, dist_metric m, uint32_t initial)
{
    vindex_params p;
    vindex_params_init(&p, t, VDIM, m);
    p.M = 5;
    p.ef_construction = 20;
    p.ef_search = 30;
    p.seed = 0xABCDEF0123ull;
    p.initial_capacity = initial;
    vindex *v = vindex_new(&p, NULL);
    assert_non_null(v);
    return v;
}

/* Keys of every shape: binary, empty, long. */
static size_t vx_key(char *buf, uint32_t i)
{
    if (i == 0) return 0;
    if (i % 97 == 0) {
        memset(buf, 'L', 300);
        return 300 + (size_t)snprintf(buf + 300, 16, "%u", i);
    }
    int n = snprintf(buf, 32, "k%u", i);
    buf[n] = '\0';
    return (size_t)n + (i % 3 == 0);   /* some keys end in a NUL */
}

static void vx_ops(vindex *v, uint32_t n, uint32_t keyspace, uint64_t seed)
{
    uint64_t s = seed;
    char key[400];
    float vec[VDIM];
    for (uint32_t i = 0; i < n; i++) {
        uint32_t k = (uint32_t)(rng_next(&s) % keyspace), r = (uint32_t)(rng_next(&s) % 100);
        size_t kl = vx_key(key, k);
        for (uint32_t j = 0; j < VDIM; j++) vec[j] = rng_f(&s) * 5;
        if (r < 65) assert_true(vindex_add(v, key, kl, vec, VDIM) >= 0);
        else vindex_del(v, key, kl);
    }
}

static void vx_check(const vindex *v)
{
    char err[256] = "";
    if (vindex_validate(v, err, sizeof err)) fail_msg("vindex validate: %s", err);
}

static void vx_same(const vindex *a, const vindex *b)
{
    assert_int_equal(vindex_count(a), vindex_count(b));
    assert_int_equal(vindex_dim(a), vindex_dim(b));
    assert_int_equal(vindex_metric(a), vindex_metric(b));
    assert_int_equal(vindex_type_of(a), vindex_type_of(b));
    uint32_t ca = 0, cb = 0, ia, ib;
    const void *ka, *kb;
    size_t la, lb;
    float va[VDIM], vb[VDIM];
    for (;;) {
        int ra = vindex_iter(a, &ca, &ia, &ka, &la), rb = vindex_iter(b, &cb, &ib, &kb, &lb);
        assert_int_equal(ra, rb);
        if (!ra) break;
        assert_int_equal(ia, ib);
        assert_int_equal(la, lb);
        if (la) assert_memory_equal(ka, kb, la);
        assert_int_equal(vindex_get(a, ka, la, va), 1);
        assert_int_equal(vindex_get(b, ka, la, vb), 1);
        assert_memory_equal(va, vb, sizeof va);
    }
    vindex_search_ctx *c = vindex_search_ctx_new(NULL);
    uint64_t s = 31;
    float q[VDIM];
    vindex_hit ha[8], hb[8];
    for (int i = 0; i < 30; i++) {
        for (uint32_t j = 0; j < VDIM; j++) q[j] = rng_f(&s);
        vindex_query qq;
        vindex_query_init(&qq, q, VDIM, 8);
        uint32_t na, nb;
        assert_int_equal(vindex_search(a, c, &qq, ha, &na), 0);
        assert_int_equal(vindex_search(b, c, &qq, hb, &nb), 0);
        assert_int_equal(na, nb);
        for (uint32_t j = 0; j < na; j++) {
            assert_int_equal(ha[j].id, hb[j].id);
            assert_true(ha[j].dist == hb[j].dist);
            assert_int_equal(ha[j].klen, hb[j].klen);
            if (ha[j].klen) assert_memory_equal(ha[j].key, hb[j].key, ha[j].klen);
        }
    }
    vindex_search_ctx_free(c);
}

static vindex *vload_ok(mem_src *ms)
{
    char err[256] = "";
    vindex *v = NULL;
    int rc = vindex_load(&ms->src, NULL, &v, err, sizeof err);
    if (rc) fail_msg("vindex_load: %d %s", rc, err);
    return v;
}

static void vx_resave_equal(const vindex *v, const mem_image *im)
{
    mem_image again;
    mi_init(&again);
    assert_int_equal(vindex_save(v, &again.sink), 0);
    mi_equal(im, &again);
    mi_fini(&again);
}

static void test_vindex_roundtrip(void **state)
{
    (void)state;
    const dist_metric ms3[] = { DIST_L2, DIST_COSINE, DIST_DOT };
    for (int t = 0; t < 2; t++)
        for (int mi = 0; mi < 3; mi++)
            for (int borrow = 0; borrow < 2; borrow++) {
                vindex_type ty = t ? VINDEX_FLAT : VINDEX_HNSW;
                vindex *v = vx_make(ty, ms3[mi], 0);
                vx_ops(v, 2500, 700, 100 + (uint64_t)mi);
                assert_true(vindex_repair(v) >= 0);
                mem_image im;
                mi_init(&im);
                assert_int_equal(vindex_save(v, &im.sink), 0);
                mem_image work;     /* a loaded index writes into what it borrows */
                mi_copy(&work, &im);
                mem_src ms;
                ms_init(&ms, &work, 0, work.n, borrow);
                vindex *w = vload_ok(&ms);
                vx_check(w);
                vx_same(v, w);
                vx_resave_equal(w, &im);
                vindex_stats sa, sb;
                vindex_stats_get(v, &sa);
                vindex_stats_get(w, &sb);
                assert_int_equal(sa.capacity, sb.capacity);
                assert_int_equal(sa.max_level, sb.max_level);
                assert_int_equal(sa.M, sb.M);
                assert_int_equal(sa.ef_search, sb.ef_search);
                assert_true(vindex_memory(w) > 0);
                /* The same future, past the borrowed arrays. */
                vx_ops(v, 3000, 2000, 555);
                vx_ops(w, 3000, 2000, 555);
                assert_int_equal(vindex_repair(v), vindex_repair(w));
                vx_check(w);
                vx_same(v, w);
                mem_image a;
                mi_init(&a);
                assert_int_equal(vindex_save(v, &a.sink), 0);
                vx_resave_equal(w, &a);
                /* Grown past the borrowed arrays: every section released once. */
                size_t nb = borrow ? (ty == VINDEX_HNSW ? 2 : 1) : 0;
                assert_int_equal(ms.rel.n, nonempty(&ms));
                vindex_free(w);
                assert_int_equal(ms.rel.n, nonempty(&ms));
                mi_fini(&work);
                /* Freed while still borrowing: the copied sections went at
                 * load, the borrowed ones at free. */
                mi_copy(&work, &im);
                ms_init(&ms, &work, 0, work.n, borrow);
                w = vload_ok(&ms);
                assert_int_equal(ms.rel.n, nonempty(&ms) - nb);
                vindex_free(w);
                assert_int_equal(ms.rel.n, nonempty(&ms));
                if (ty == VINDEX_HNSW) {
                    assert_int_equal(released(&ms, HNSW_IMG_VECS), 1);
                    assert_int_equal(released(&ms, HNSW_IMG_L0), 1);
                } else {
                    assert_int_equal(released(&ms, FLAT_IMG_VECS), 1);
                }
                mi_fini(&a);
                mi_fini(&work);
                mi_fini(&im);
                vindex_free(v);
            }
}

static void test_vindex_empty(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++)
        for (int variant = 0; variant < 3; variant++) {
            vindex_type ty = t ? VINDEX_FLAT : VINDEX_HNSW;
            vindex *v = vx_make(ty, DIST_COSINE, variant == 1 ? 50 : 0);
            if (variant == 2) {         /* keys added, then all deleted */
                vx_ops(v, 200, 50, 4);
                char key[400];
                for (uint32_t k = 0; k < 50; k++) vindex_del(v, key, vx_key(key, k));
                assert_int_equal(vindex_count(v), 0);
            }
            mem_image im;
            mi_init(&im);
            assert_int_equal(vindex_save(v, &im.sink), 0);
            mem_src ms;
            ms_init(&ms, &im, 0, im.n, 1);
            vindex *w = vload_ok(&ms);
            vx_check(w);
            vx_same(v, w);
            vx_resave_equal(w, &im);
            vx_ops(v, 300, 100, 6);
            vx_ops(w, 300, 100, 6);
            assert_int_equal(vindex_repair(v), vindex_repair(w));
            vx_same(v, w);
            vx_check(w);
            vindex_free(w);
            mi_fini(&im);
            vindex_free(v);
        }
}

/* Loaded keys live in one block; deleting all of them frees it, and keys
 * added later are ordinary. */
static void test_vindex_key_arena(void **state)
{
    (void)state;
    vindex *v = vx_make(VINDEX_HNSW, DIST_L2, 0);
    vx_ops(v, 400, 100, 9);
    mem_image im;
    mi_init(&im);
    assert_int_equal(vindex_save(v, &im.sink), 0);
    mem_src ms;
    ms_init(&ms, &im, 0, im.n, 1);
    vindex *w = vload_ok(&ms);
    size_t before = vindex_memory(w);
    char key[400];
    float vec[VDIM] = { 1, 2, 3, 4, 5, 6 };
    assert_int_equal(vindex_add(w, "fresh", 5, vec, VDIM), 1);
    for (uint32_t k = 0; k < 100; k++) vindex_del(w, key, vx_key(key, k));
    assert_int_equal(vindex_count(w), 1);
    assert_true(vindex_memory(w) < before);
    vx_check(w);
    float out[VDIM];
    assert_int_equal(vindex_get(w, "fresh", 5, out), 1);
    assert_memory_equal(out, vec, sizeof vec);
    vindex_free(w);
    mi_fini(&im);
    vindex_free(v);
}

/* ---- refusals ----------------------------------------------------------- */

/* A refusal: VINDEX_ECORRUPT, no index, and a message naming `why`. */
static void refusal(int rc, const void *out, const char *err, const char *why)
{
    if (rc != VINDEX_ECORRUPT)
        fail_msg("load returned %d (%s), expected a refusal naming \"%s\"", rc, err, why);
    assert_null(out);
    if (!err[0] || !strstr(err, why)) fail_msg("expected \"%s\" in \"%s\"", why, err);
}

/* *src: ms's source with its sections in a heap array of exactly n (NULL
 * for none), so that ASan catches a loader reading one past the end (in
 * ms->sec it would land on a spare entry).  free() what it returns. */
static img_section *ms_exact(const mem_src *ms, img_source *src)
{
    *src = ms->src;
    src->sec = NULL;
    if (!ms->src.n) return NULL;
    img_section *a = malloc(ms->src.n * sizeof *a);
    assert_non_null(a);
    memcpy(a, ms->sec, ms->src.n * sizeof *a);
    src->sec = a;
    return a;
}

/* vindex_load refuses the source naming `why`, and gives every section back. */
static void ms_refused(mem_src *ms, const char *why)
{
    vindex *v = (vindex *)ms;
    char err[256] = "";
    img_source src;
    img_section *a = ms_exact(ms, &src);
    int rc = vindex_load(&src, NULL, &v, err, sizeof err);
    free(a);
    refusal(rc, v, err, why);
    assert_int_equal(ms->rel.n, nonempty(ms));
}

/* Section s's length set to len: cut, or lengthened with fill bytes. */
static void sec_resize(mem_sec *s, size_t len, uint8_t fill)
{
    uint8_t *b = malloc(len + 1);
    assert_non_null(b);
    memset(b, fill, len + 1);
    memcpy(b, s->data, len < s->len ? len : s->len);
    free(s->raw);
    sec_place(s, b, len);
    free(b);
}

/* What a refusal of a section of this kind with a wrong length names. */
static const char *sec_word(uint32_t kind)
{
    switch (kind) {
    case VINDEX_IMG_META: case HNSW_IMG_META: case FLAT_IMG_META: return "meta section";
    case VINDEX_IMG_KEYS: return "key";
    case VINDEX_IMG_NORMS: return "norm section";
    case VINDEX_IMG_STREAM: return "stream section";
    case VINDEX_IMG_PAYLOADS: return "payload record";
    case HNSW_IMG_VECS: case FLAT_IMG_VECS: return "vector section";
    case HNSW_IMG_L0: return "layer-0 section";
    case HNSW_IMG_UPPER: return "upper-list section";
    case HNSW_IMG_HINTS: return "hint section";
    case FLAT_IMG_LIVE: return "live section";
    default: fail_msg("no section 0x%04x", kind); return NULL;
    }
}

/* Every section of a vindex image cut short, emptied or lengthened (with
 * zeros and with 0xFF): refused, naming that section. */
static void resized_refused(const mem_image *im)
{
    for (size_t si = 0; si < im->n; si++) {
        const size_t len = im->sec[si].len;
        const size_t lens[] = { 0, 1, len / 2, len - 1, len - 2, len - 3, len - 4,
                                len + 1, len + 2, len + 3, len + 4, len + 12 };
        for (size_t li = 0; li < sizeof lens / sizeof *lens; li++)
            for (int fill = 0; fill < 2; fill++) {
                if (lens[li] == len || lens[li] > len + 12 || (fill && lens[li] < len)) continue;
                mem_image w;
                mi_copy(&w, im);
                sec_resize(&w.sec[si], lens[li], fill ? 0xFF : 0);
                mem_src ms;
                ms_init(&ms, &w, 0, w.n, 1);
                ms_refused(&ms, sec_word(w.sec[si].kind));
                mi_fini(&w);
            }
    }
}

/* Every key of v deleted, one at a time (keys copied first: a delete
 * invalidates the borrowed ones).  Whatever an image loaded into must
 * survive this: the first delete of a node is what trusts its in-degrees
 * and reverse hints (an abort here fails the test). */
static void vx_delete_all(vindex *v)
{
    uint32_t n = vindex_count(v), cur = 0, id, got = 0;
    size_t total = 0;
    const void *k;
    size_t kl;
    while (vindex_iter(v, &cur, &id, &k, &kl)) {
        total += kl;
        got++;
    }
    assert_int_equal(got, n);
    uint8_t *keys = malloc(total + 1);
    size_t *lens = malloc((n + 1) * sizeof *lens);
    assert_true(keys && lens);
    size_t at = 0;
    cur = got = 0;
    while (got < n && vindex_iter(v, &cur, &id, &k, &kl)) {
        if (kl) memcpy(keys + at, k, kl);
        at += kl;
        lens[got++] = kl;
    }
    at = 0;
    for (uint32_t i = 0; i < n; i++) {
        assert_int_equal(vindex_del(v, keys + at, lens[i]), 1);
        at += lens[i];
    }
    assert_int_equal(vindex_count(v), 0);
    free(keys);
    free(lens);
}

/* Load whatever the image holds: refused with VINDEX_ECORRUPT and a
 * message, or accepted and then usable read-only (validate may object,
 * searches -- a few, one with a k past the count -- must not crash).  An
 * accepted image the validator passes must also take writes: with
 * mutate_cap set, one whose engine capacity is at most that gets a few
 * adds and deletes and must still validate.  (The capacity is the one
 * number a FLAT image has no second copy of: a damaged one loads, and
 * the first add asks for that many slots.)  With del (the fuzz tests),
 * every accepted image is written to -- the adds and deletes whether it
 * validates or not -- and then has all its keys deleted one by one: a
 * loaded graph need not be reachable, but it must be safe to change. */
static int vx_try_load(const mem_image *im, size_t *accepted, uint32_t mutate_cap, int del)
{
    mem_src ms;
    ms_init(&ms, im, 0, im->n, 1);
    char err[256] = "";
    vindex *v = (vindex *)&ms;
    img_source src;
    img_section *exact = ms_exact(&ms, &src);
    int rc = vindex_load(&src, NULL, &v, err, sizeof err);
    free(exact);
    if (rc) {
        if (rc != VINDEX_ECORRUPT) fail_msg("load returned %d (%s)", rc, err);
        assert_null(v);
        assert_true(err[0] != '\0');
        assert_int_equal(ms.rel.n, nonempty(&ms));   /* a failed load gives everything back */
        return rc;
    }
    (*accepted)++;
    char verr[256];
    int valid = vindex_validate(v, verr, sizeof verr) == 0;
    vindex_search_ctx *c = vindex_search_ctx_new(NULL);
    static const float qs[3][VDIM] = { { 0.5f, -1, 2, 0, 1, -0.25f }, { 0 },
                                       { -3, 1e3f, 0.125f, 7, -1e-3f, 2 } };
    static const uint32_t ks[3] = { 1, 5, 64 };
    vindex_hit hits[64];
    for (int i = 0; i < 3; i++) {
        vindex_query qq;
        vindex_query_init(&qq, qs[i], VDIM, ks[i]);
        qq.ef = i == 2 ? 200 : 0;
        uint32_t n = 0;
        if (vindex_search(v, c, &qq, hits, &n) == 0) {
            assert_true(n <= ks[i]);
            size_t sum = 0;
            for (uint32_t j = 0; j < n; j++)
                for (size_t b = 0; b < hits[j].klen; b++) sum += ((const uint8_t *)hits[j].key)[b];
            (void)sum;
        }
    }
    vindex_search_ctx_free(c);
    uint32_t cur = 0, id;
    const void *k;
    size_t kl;
    while (vindex_iter(v, &cur, &id, &k, &kl)) {}
    mem_image again;
    mi_init(&again);
    assert_int_equal(vindex_save(v, &again.sink), 0);
    mi_fini(&again);
    vindex_stats st;
    vindex_stats_get(v, &st);
    if ((valid || del) && mutate_cap && st.capacity <= mutate_cap) {
        vx_ops(v, 40, 60, *accepted);
        /* (With inner product in few dimensions, a prune can cut a group
         * off until the next sweep: sweep before validating.) */
        assert_true(vindex_repair(v) >= 0);
        if (valid) vx_check(v);
    }
    if (del) vx_delete_all(v);
    vindex_free(v);
    return 0;
}

static void test_corrupt_images(void **state)
{
    (void)state;
    const struct { vindex_type t; dist_metric m; } cases[] = {
        { VINDEX_HNSW, DIST_COSINE }, { VINDEX_HNSW, DIST_DOT }, { VINDEX_FLAT, DIST_COSINE },
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        vindex *v = vx_make(cases[ci].t, cases[ci].m, 0);
        vx_ops(v, 600, 250, 21);
        mem_image im;
        mi_init(&im);
        assert_int_equal(vindex_save(v, &im.sink), 0);
        size_t accepted = 0, refused = 0;

        /* Every section cut short, lengthened, emptied. */
        resized_refused(&im);
        /* A section missing, one too many, two swapped. */
        {
            mem_image w;
            for (size_t si = 0; si < im.n; si++) {
                mi_copy(&w, &im);
                free(w.sec[si].raw);
                memmove(&w.sec[si], &w.sec[si + 1], (w.n - si - 1) * sizeof w.sec[0]);
                w.n--;
                assert_int_equal(vx_try_load(&w, &accepted, 0, 0), VINDEX_ECORRUPT);
                mi_fini(&w);
            }
            mi_copy(&w, &im);
            w.sec[w.n] = (mem_sec){ 0x0115, 0, NULL, NULL, 0 };
            sec_place(&w.sec[w.n], "x", 1);
            w.n++;
            assert_int_equal(vx_try_load(&w, &accepted, 0, 0), VINDEX_ECORRUPT);
            mem_sec t = w.sec[1];
            w.sec[1] = w.sec[w.n - 2];
            w.sec[w.n - 2] = t;
            w.n--;
            free(w.sec[w.n].raw);
            assert_int_equal(vx_try_load(&w, &accepted, 0, 0), VINDEX_ECORRUPT);
            mi_fini(&w);
        }
        /* Random damage: one to three bytes, in a random section (so the
         * small ones are hit as often as the arrays). */
        uint64_t s = 0xF00D + ci;
        for (uint32_t round = 0; round < FUZZ_ROUNDS; round++) {
            mem_image w;
            mi_copy(&w, &im);
            size_t si = (size_t)(rng_next(&s) % w.n);
            if (w.sec[si].len == 0) {
                mi_fini(&w);
                continue;
            }
            for (int k = 0, nk = 1 + (int)(rng_next(&s) % 3); k < nk; k++) {
                size_t at = (size_t)(rng_next(&s) % w.sec[si].len);
                uint64_t r = rng_next(&s);
                switch (r % 4) {
                case 0: w.sec[si].data[at] ^= (uint8_t)(1u << (r >> 8) % 8); break;
                case 1: w.sec[si].data[at] = 0xFF; break;
                case 2: w.sec[si].data[at] = 0; break;
                default: w.sec[si].data[at] = (uint8_t)(r >> 16); break;
                }
            }
            refused += vx_try_load(&w, &accepted, 0, 0) != 0;
            mi_fini(&w);
        }
        /* Most damage outside vector payloads must be noticed. */
        print_message("case %zu: %zu of %u damaged images refused, %zu loaded\n", ci, refused,
                      FUZZ_ROUNDS, accepted);
        assert_true(refused > FUZZ_ROUNDS / 3);
        mi_fini(&im);
        vindex_free(v);
    }
}

/* Damage to every byte of every small section, one at a time. */
static void test_corrupt_every_meta_byte(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        vindex *v = vx_make(t ? VINDEX_FLAT : VINDEX_HNSW, DIST_L2, 0);
        vx_ops(v, 300, 120, 3);
        mem_image im;
        mi_init(&im);
        assert_int_equal(vindex_save(v, &im.sink), 0);
        size_t accepted = 0;
        for (size_t si = 0; si < im.n; si++) {
            uint32_t k = im.sec[si].kind;
            if (k != VINDEX_IMG_META && k != HNSW_IMG_META && k != FLAT_IMG_META &&
                k != HNSW_IMG_HINTS)
                continue;
            for (size_t at = 0; at < im.sec[si].len && at < 4096; at++)
                for (int bit = 0; bit < 8; bit += 3) {
                    mem_image w;
                    mi_copy(&w, &im);
                    w.sec[si].data[at] ^= (uint8_t)(1u << bit);
                    (void)vx_try_load(&w, &accepted, 0, 0);
                    mi_fini(&w);
                }
        }
        mi_fini(&im);
        vindex_free(v);
    }
}

/* A sink error at any call is returned and stops the save. */
static void test_sink_errors(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        vindex *v = vx_make(t ? VINDEX_FLAT : VINDEX_HNSW, DIST_COSINE, 0);
        vx_ops(v, 300, 200, 17);
        mem_image im;
        mi_init(&im);
        assert_int_equal(vindex_save(v, &im.sink), 0);
        mi_fini(&im);
        for (int at = 1;; at++) {
            mi_init(&im);
            im.fail_at = at;
            int rc = vindex_save(v, &im.sink);
            int calls = im.calls;
            mi_fini(&im);
            if (rc == 0) {
                assert_true(calls < at);
                break;
            }
            assert_int_equal(rc, -EIO);
        }
        vindex_free(v);
    }
}

/* Two ids with one key: the table rebuild notices. */
static void test_vindex_duplicate_key(void **state)
{
    (void)state;
    vindex *v = vx_make(VINDEX_FLAT, DIST_L2, 0);
    float vec[VDIM] = { 1, 2, 3, 4, 5, 6 };
    assert_int_equal(vindex_add(v, "dupA", 4, vec, VDIM), 1);
    assert_int_equal(vindex_add(v, "other", 5, vec, VDIM), 1);
    assert_int_equal(vindex_add(v, "dupB", 4, vec, VDIM), 1);
    mem_image im;
    mi_init(&im);
    assert_int_equal(vindex_save(v, &im.sink), 0);
    assert_int_equal(im.sec[1].kind, VINDEX_IMG_KEYS);
    uint8_t *b = im.sec[1].data;
    size_t i = 0;
    while (i + 4 <= im.sec[1].len && memcmp(b + i, "dupB", 4) != 0) i++;
    assert_true(i + 4 <= im.sec[1].len);
    b[i + 3] = 'A';
    mem_src ms;
    ms_init(&ms, &im, 0, im.n, 1);
    vindex *w = NULL;
    char err[256] = "";
    assert_int_equal(vindex_load(&ms.src, NULL, &w, err, sizeof err), VINDEX_ECORRUPT);
    assert_non_null(strstr(err, "same key"));
    assert_int_equal(ms.rel.n, nonempty(&ms));
    mi_fini(&im);
    vindex_free(v);
}

static void test_vindex_bad_args(void **state)
{
    (void)state;
    vindex *v = NULL;
    char err[64];
    assert_int_equal(vindex_load(NULL, NULL, &v, err, sizeof err), -EINVAL);
    img_source empty = { NULL, 0, NULL, NULL };
    assert_int_equal(vindex_load(&empty, NULL, &v, err, sizeof err), VINDEX_ECORRUPT);
    assert_null(v);
}

/* ---- rings, payloads, counters (vindex STREAM and PAYLOADS sections) ---- */

static vindex *rg_make(vindex_type t, dist_metric m, uint32_t capacity)
{
    vindex_params p;
    vindex_params_init(&p, t, VDIM, m);
    p.M = 5;
    p.ef_construction = 20;
    p.ef_search = 30;
    p.seed = 0x5151ull;
    p.capacity = capacity;
    vindex *v = vindex_new(&p, NULL);
    assert_non_null(v);
    return v;
}

/* n stream operations from seed: mostly new auto-id keys (some with a
 * payload, some empty), overwrites of recent keys (payload kept, replaced
 * or dropped), deletes, and an explicit numeric key now and then.  The
 * choices depend only on the seed and the index's state, so two equal
 * indices stay equal. */
static void rg_ops(vindex *v, uint32_t n, uint64_t seed)
{
    uint64_t s = seed;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t r = (uint32_t)(rng_next(&s) % 100);
        float vec[VDIM];
        for (uint32_t j = 0; j < VDIM; j++) vec[j] = rng_f(&s) * 4;
        char key[32], pay[64];
        int kl;
        uint64_t next = vindex_next_id(v);
        if (r < 70 || next < 10) {
            kl = snprintf(key, sizeof key, "%llu", (unsigned long long)next);
        } else if (r < 90) {            /* a recent key: live or evicted */
            kl = snprintf(key, sizeof key, "%llu",
                          (unsigned long long)(next - 1 - rng_next(&s) % 8));
        } else if (r < 97) {
            kl = snprintf(key, sizeof key, "%llu", (unsigned long long)(next - 1 - rng_next(&s) % 50));
            vindex_del(v, key, (size_t)kl);
            continue;
        } else {
            kl = snprintf(key, sizeof key, "%llu", (unsigned long long)(next + rng_next(&s) % 5));
        }
        vindex_add_args a;
        vindex_add_args_init(&a, key, (size_t)kl, vec, VDIM);
        uint32_t pr = (uint32_t)(rng_next(&s) % 4);
        a.has_payload = pr >= 2;
        a.drop_payload = pr == 1;
        a.payload = pay;
        a.plen = pr == 2 ? 0 : (size_t)snprintf(pay, sizeof pay, "event %u of %llu", i,
                                                (unsigned long long)seed);
        assert_true(vindex_add_ex(v, &a, NULL) >= 0);
    }
}

/* Same ring: capacity, counters, next id, order, payloads. */
static void rg_same(const vindex *a, const vindex *b)
{
    vindex_stats sa, sb;
    vindex_stats_get(a, &sa);
    vindex_stats_get(b, &sb);
    assert_int_equal(sa.ring_capacity, sb.ring_capacity);
    assert_int_equal(sa.ingested, sb.ingested);
    assert_int_equal(sa.evicted, sb.evicted);
    assert_int_equal(sa.next_id, sb.next_id);
    assert_int_equal(sa.payloads, sb.payloads);
    assert_int_equal(sa.payload_bytes, sb.payload_bytes);
    uint32_t ia = vindex_fifo_first(a), ib = vindex_fifo_first(b), n = 0;
    for (; ia != VINDEX_NO_ID; ia = vindex_fifo_next(a, ia), ib = vindex_fifo_next(b, ib), n++)
        assert_int_equal(ia, ib);
    assert_int_equal(ib, VINDEX_NO_ID);
    if (sa.ring_capacity) assert_int_equal(n, vindex_count(a));
    uint32_t cur = 0, id;
    const void *k;
    size_t kl;
    while (vindex_iter(a, &cur, &id, &k, &kl)) {
        size_t la, lb;
        const void *pa = vindex_payload(a, id, &la), *pb = vindex_payload(b, id, &lb);
        assert_int_equal(pa != NULL, pb != NULL);
        assert_int_equal(la, lb);
        if (la) assert_memory_equal(pa, pb, la);
    }
}

/* A ring saved mid-stream and loaded continues exactly like the original:
 * the same evictions in the same order, the same ids, the same graph
 * (byte-identical images), every section released once. */
static void test_ring_snapshot_continues(void **state)
{
    (void)state;
    const dist_metric ms3[] = { DIST_L2, DIST_COSINE, DIST_DOT };
    for (int t = 0; t < 2; t++)
        for (int mi = 0; mi < 3; mi++)
            for (int borrow = 0; borrow < 2; borrow++) {
                vindex_type ty = t ? VINDEX_FLAT : VINDEX_HNSW;
                vindex *v = rg_make(ty, ms3[mi], 300);
                rg_ops(v, 2000, 11 + (uint64_t)mi);
                mem_image im;
                mi_init(&im);
                assert_int_equal(vindex_save(v, &im.sink), 0);
                size_t kinds = 0;
                for (size_t i = 0; i < im.n; i++)
                    kinds += im.sec[i].kind == VINDEX_IMG_STREAM || im.sec[i].kind == VINDEX_IMG_PAYLOADS;
                assert_int_equal(kinds, 2);
                mem_image work;
                mi_copy(&work, &im);
                mem_src ms;
                ms_init(&ms, &work, 0, work.n, borrow);
                vindex *w = vload_ok(&ms);
                vx_check(w);
                vx_same(v, w);
                rg_same(v, w);
                vx_resave_equal(w, &im);
                rg_ops(v, 10000, 900 + (uint64_t)t);
                rg_ops(w, 10000, 900 + (uint64_t)t);
                vx_check(v);
                vx_check(w);
                vx_same(v, w);
                rg_same(v, w);
                vindex_stats st;
                vindex_stats_get(w, &st);
                assert_true(st.evicted > 5000);
                assert_true(st.capacity <= 301);
                mem_image a;
                mi_init(&a);
                assert_int_equal(vindex_save(v, &a.sink), 0);
                vx_resave_equal(w, &a);
                vindex_free(w);
                assert_int_equal(ms.rel.n, nonempty(&ms));
                mi_fini(&a);
                mi_fini(&work);
                mi_fini(&im);
                vindex_free(v);
            }
}

/* An empty ring, a ring emptied by deletes, an exhausted id counter. */
static void test_ring_snapshot_edges(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++)
        for (int variant = 0; variant < 3; variant++) {
            vindex *v = rg_make(t ? VINDEX_FLAT : VINDEX_HNSW, DIST_COSINE, 40);
            float x[VDIM] = { 1, 0, 2, 0, 3, 0 };
            if (variant >= 1) {
                rg_ops(v, 300, 3);
                char key[400];
                for (uint32_t id = vindex_fifo_first(v); id != VINDEX_NO_ID;
                     id = vindex_fifo_first(v)) {
                    size_t kl;
                    const void *k = vindex_key(v, id, &kl);
                    memcpy(key, k, kl);
                    assert_int_equal(vindex_del(v, key, kl), 1);
                }
                assert_int_equal(vindex_count(v), 0);
            }
            if (variant == 2) {
                assert_int_equal(vindex_add(v, "18446744073709551615", 20, x, VDIM), 1);
                assert_int_equal(vindex_next_id(v), 0);
            }
            mem_image im;
            mi_init(&im);
            assert_int_equal(vindex_save(v, &im.sink), 0);
            mem_src ms;
            ms_init(&ms, &im, 0, im.n, 1);
            vindex *w = vload_ok(&ms);
            vx_check(w);
            vx_same(v, w);
            rg_same(v, w);
            vx_resave_equal(w, &im);
            assert_int_equal(vindex_capacity(w), 40);
            rg_ops(v, 200, 8);
            rg_ops(w, 200, 8);
            vx_same(v, w);
            rg_same(v, w);
            vx_check(w);
            vindex_free(w);
            mi_fini(&im);
            vindex_free(v);
        }
}

/* An image written before rings (no STREAM section, meta flags 0) loads as
 * an unbounded index with ingested = count. */
static void test_image_without_stream(void **state)
{
    (void)state;
    vindex *v = vx_make(VINDEX_HNSW, DIST_L2, 0);
    vx_ops(v, 300, 100, 2);
    float x[VDIM] = { 0 };
    assert_int_equal(vindex_add(v, "41", 2, x, VDIM), 1);
    assert_int_equal(vindex_add(v, "7", 1, x, VDIM), 1);
    mem_image im;
    mi_init(&im);
    assert_int_equal(vindex_save(v, &im.sink), 0);
    size_t si = 0;
    while (si < im.n && im.sec[si].kind != VINDEX_IMG_STREAM) si++;
    assert_true(si < im.n);
    free(im.sec[si].raw);
    memmove(&im.sec[si], &im.sec[si + 1], (im.n - si - 1) * sizeof im.sec[0]);
    im.n--;
    assert_int_equal(im.sec[0].kind, VINDEX_IMG_META);
    assert_int_equal(im.sec[0].data[52], 1);
    im.sec[0].data[52] = 0;
    mem_src ms;
    ms_init(&ms, &im, 0, im.n, 1);
    vindex *w = vload_ok(&ms);
    vx_check(w);
    vx_same(v, w);
    vindex_stats st;
    vindex_stats_get(w, &st);
    assert_int_equal(st.ingested, vindex_count(v));
    assert_int_equal(st.evicted, 0);
    assert_int_equal(st.next_id, 42);      /* past the numeric keys it has */
    assert_int_equal(st.ring_capacity, 0);
    vindex_free(w);
    assert_int_equal(ms.rel.n, nonempty(&ms));
    mi_fini(&im);
    vindex_free(v);
}

/* Little-endian words for patching images. */
static uint32_t rg_get32(const uint8_t *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static void rg_put(uint8_t *b, uint64_t x, int n)
{
    for (int i = 0; i < n; i++) b[i] = (uint8_t)(x >> (8 * i));
}

/* A copy of im with section kind's bytes from `at` replaced by n bytes of p. */
static void rg_patch(mem_image *w, const mem_image *im, uint32_t kind, size_t at, const void *p,
                     size_t n)
{
    mi_copy(w, im);
    for (size_t i = 0; i < w->n; i++)
        if (w->sec[i].kind == kind) {
            assert_true(at + n <= w->sec[i].len);
            memcpy(w->sec[i].data + at, p, n);
            return;
        }
    fail_msg("no section 0x%04x", kind);
}

static void rg_refused(const mem_image *w, const char *why)
{
    mem_src ms;
    ms_init(&ms, w, 0, w->n, 1);
    ms_refused(&ms, why);
}

static const mem_sec *rg_sec(const mem_image *im, uint32_t kind)
{
    for (size_t i = 0; i < im->n; i++)
        if (im->sec[i].kind == kind) return &im->sec[i];
    fail_msg("no section 0x%04x", kind);
    return NULL;
}

static void test_stream_corrupt(void **state)
{
    (void)state;
    const struct { vindex_type t; dist_metric m; } cases[] = {
        { VINDEX_HNSW, DIST_COSINE }, { VINDEX_FLAT, DIST_L2 },
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        vindex *v = rg_make(cases[ci].t, cases[ci].m, 120);
        rg_ops(v, 700, 31 + ci);
        mem_image im;
        mi_init(&im);
        assert_int_equal(vindex_save(v, &im.sink), 0);
        const mem_sec *st = rg_sec(&im, VINDEX_IMG_STREAM);
        const mem_sec *pays = rg_sec(&im, VINDEX_IMG_PAYLOADS);
        size_t accepted = 0, refused = 0;

        /* Every section cut short, lengthened, emptied; missing; one extra. */
        resized_refused(&im);
        for (size_t si = 0; si < im.n; si++) {
            mem_image w;
            mi_copy(&w, &im);
            free(w.sec[si].raw);
            memmove(&w.sec[si], &w.sec[si + 1], (w.n - si - 1) * sizeof w.sec[0]);
            w.n--;
            assert_int_equal(vx_try_load(&w, &accepted, 0, 0), VINDEX_ECORRUPT);
            mi_fini(&w);
        }
        for (uint32_t kind = VINDEX_IMG_STREAM; kind <= 0x0105; kind++) {
            /* a stray vindex section after ours */
            mem_image w;
            mi_copy(&w, &im);
            size_t at = 0;
            while (w.sec[at].kind < 0x0110) at++;
            memmove(&w.sec[at + 1], &w.sec[at], (w.n - at) * sizeof w.sec[0]);
            w.sec[at] = (mem_sec){ kind, 0, NULL, NULL, 0 };
            sec_place(&w.sec[at], "\0\0\0\0", 4);
            w.n++;
            assert_int_equal(vx_try_load(&w, &accepted, 0, 0), VINDEX_ECORRUPT);
            mi_fini(&w);
        }

        /* Targeted: the order and the payload records. */
        uint8_t b4[4];
        uint32_t id0 = rg_get32(st->data + 40);
        mem_image w;
        rg_put(b4, id0, 4);
        rg_patch(&w, &im, VINDEX_IMG_STREAM, 44, b4, 4);
        rg_refused(&w, "twice");
        mi_fini(&w);
        rg_put(b4, 100000, 4);
        rg_patch(&w, &im, VINDEX_IMG_STREAM, 40, b4, 4);
        rg_refused(&w, "has no key");
        mi_fini(&w);
        uint32_t freeid = 0;                /* an id below id_end with no key */
        while (freeid < 4096) {
            size_t kl;
            if (!vindex_key(v, freeid, &kl)) break;
            freeid++;
        }
        rg_put(b4, freeid, 4);
        rg_patch(&w, &im, VINDEX_IMG_STREAM, 40, b4, 4);
        rg_refused(&w, freeid < 4096 ? "has no key" : "");
        mi_fini(&w);
        rg_put(b4, rg_get32(st->data + 12) + 1, 4);     /* one more payload than records */
        rg_patch(&w, &im, VINDEX_IMG_STREAM, 12, b4, 4);
        rg_refused(&w, "payload record");
        mi_fini(&w);
        uint8_t ing[8];
        rg_put(ing, 3, 8);                               /* ingested below count */
        rg_patch(&w, &im, VINDEX_IMG_STREAM, 16, ing, 8);
        rg_refused(&w, "ingested");
        mi_fini(&w);
        rg_put(b4, 60, 4);                               /* ring smaller than count */
        rg_patch(&w, &im, VINDEX_IMG_STREAM, 4, b4, 4);
        rg_refused(&w, "capacity");
        mi_fini(&w);
        uint8_t big[5] = { 0xFF, 0xFF, 0xFF, 0xFF, 0x0F };  /* first record's id: huge gap */
        rg_patch(&w, &im, VINDEX_IMG_PAYLOADS, 0, big, 5);
        rg_refused(&w, "payload record");
        mi_fini(&w);

        /* Every byte of the stream's fixed part and order, and of the
         * payload records' start, flipped. */
        for (size_t at = 0; at < st->len && at < 2048; at++)
            for (int bit = 0; bit < 8; bit += 3) {
                mi_copy(&w, &im);
                for (size_t i = 0; i < w.n; i++)
                    if (w.sec[i].kind == VINDEX_IMG_STREAM) w.sec[i].data[at] ^= (uint8_t)(1u << bit);
                refused += vx_try_load(&w, &accepted, 0, 0) != 0;
                mi_fini(&w);
            }
        for (size_t at = 0; at < pays->len && at < 512; at++) {
            mi_copy(&w, &im);
            for (size_t i = 0; i < w.n; i++)
                if (w.sec[i].kind == VINDEX_IMG_PAYLOADS) w.sec[i].data[at] ^= 0x81;
            refused += vx_try_load(&w, &accepted, 0, 0) != 0;
            mi_fini(&w);
        }
        /* Random damage to the two sections. */
        uint64_t s = 0xBEEF + ci;
        for (uint32_t round = 0; round < FUZZ_ROUNDS / 2; round++) {
            mi_copy(&w, &im);
            uint32_t kind = round % 2 ? VINDEX_IMG_STREAM : VINDEX_IMG_PAYLOADS;
            mem_sec *sec = NULL;
            for (size_t i = 0; i < w.n; i++)
                if (w.sec[i].kind == kind) sec = &w.sec[i];
            for (int k = 0, nk = 1 + (int)(rng_next(&s) % 3); k < nk; k++) {
                size_t at = (size_t)(rng_next(&s) % sec->len);
                uint64_t r = rng_next(&s);
                switch (r % 4) {
                case 0: sec->data[at] ^= (uint8_t)(1u << (r >> 8) % 8); break;
                case 1: sec->data[at] = 0xFF; break;
                case 2: sec->data[at] = 0; break;
                default: sec->data[at] = (uint8_t)(r >> 16); break;
                }
            }
            refused += vx_try_load(&w, &accepted, 0, 0) != 0;
            mi_fini(&w);
        }
        print_message("stream case %zu: %zu damaged images refused, %zu loaded\n", ci, refused,
                      accepted);
        assert_true(refused > 0);
        mi_fini(&im);
        vindex_free(v);
    }
}

/* vindex_clone: an exact, independent copy -- same entries, searches,
 * rings and payloads; changing either leaves the other alone. */
static void test_vindex_clone(void **state)
{
    (void)state;
    static const vindex_type types[] = {VINDEX_HNSW, VINDEX_FLAT};
    static const dist_metric metrics[] = {DIST_COSINE, DIST_L2, DIST_DOT};
    for (int t = 0; t < 2; t++) {
        for (int m = 0; m < 3; m++) {
            vindex *v = vx_make(types[t], metrics[m], 0);
            vx_ops(v, 1500, 600, 11 + (uint64_t)m);
            assert_true(vindex_repair(v) >= 0);    /* (pruning can cut nodes off) */
            vindex *c = NULL;
            assert_int_equal(vindex_clone(v, NULL, &c), 0);
            vx_check(c);
            vx_same(v, c);
            /* independent: change the clone, the original stays */
            vindex *c2 = NULL;
            assert_int_equal(vindex_clone(v, NULL, &c2), 0);
            vx_ops(c, 300, 600, 99);
            vx_check(v);
            vx_same(v, c2);
            vindex_free(c);
            vx_ops(v, 300, 600, 98);     /* the original, after its clone is gone */
            assert_true(vindex_repair(v) >= 0);
            vx_check(v);
            vindex_free(c2);
            vindex_free(v);
        }
        /* a ring with payloads: order, counters and payloads come along */
        vindex *r = rg_make(types[t], DIST_COSINE, 50);
        rg_ops(r, 400, 5);
        vindex *rc = NULL;
        assert_int_equal(vindex_clone(r, NULL, &rc), 0);
        vx_check(rc);
        rg_same(r, rc);
        rg_ops(r, 200, 6);       /* both go on the same way */
        rg_ops(rc, 200, 6);
        rg_same(r, rc);
        vindex_free(rc);
        vindex_free(r);
    }
}

/* ---- refusals by class (issue 21) -------------------------------------- */

/* The images these tests damage: an HNSW cosine ring with payloads (meta,
 * keys, norms, stream, payloads, then HNSW's five sections), FLAT with
 * payloads but no ring (meta, keys, stream, payloads, then FLAT's three),
 * and HNSW dot product with neither (meta, keys, HNSW's five). */
static const struct rf_case {
    vindex_type t;
    dist_metric m;
    uint32_t ring;
    int stream;
} rf_cases[] = {
    { VINDEX_HNSW, DIST_COSINE, 120, 1 },
    { VINDEX_FLAT, DIST_L2, 0, 1 },
    { VINDEX_HNSW, DIST_DOT, 0, 0 },
};

static vindex *rf_image(const struct rf_case *c, mem_image *im)
{
    vindex *v = rg_make(c->t, c->m, c->ring);
    if (c->stream) rg_ops(v, 600, 77);
    else vx_ops(v, 600, 250, 77);
    mi_init(im);
    assert_int_equal(vindex_save(v, &im->sink), 0);
    return v;
}

/* fn on the image of each of the first ncases cases, v the index saved. */
static void rf_each(size_t ncases,
                    void (*fn)(const struct rf_case *c, const mem_image *im, const vindex *v))
{
    for (size_t ci = 0; ci < ncases; ci++) {
        mem_image im;
        vindex *v = rf_image(&rf_cases[ci], &im);
        fn(&rf_cases[ci], &im, v);
        mi_fini(&im);
        vindex_free(v);
    }
}

/* How many of im's sections are the index's own (the engine's follow). */
static size_t rf_nown(const mem_image *im)
{
    size_t n = 0;
    while (n < im->n && im->sec[n].kind < HNSW_IMG_META) n++;
    return n;
}

/* The engine's loader, called directly with the parameters rg_make gives. */
static int rf_engine_load(vindex_type t, dist_metric m, const img_source *src, void **out,
                          char *err, size_t errlen)
{
    if (t == VINDEX_HNSW) {
        hnsw_params p = { .dim = VDIM, .metric = m, .M = 5, .ef_construction = 20,
                          .ef_search = 30 };
        return hnsw_load(&p, src, (hnsw **)out, err, errlen);
    }
    flat_params p = { .dim = VDIM, .metric = m };
    return flat_load(&p, src, (flat **)out, err, errlen);
}

static void rf_engine_free(vindex_type t, void *e)
{
    if (t == VINDEX_HNSW) hnsw_free(e);
    else flat_free(e);
}

/* The engine's loader refuses ms naming `why`; a failed load releases nothing. */
static void rf_engine_refused(vindex_type t, dist_metric m, mem_src *ms, const char *why)
{
    void *e = ms;
    char err[256] = "";
    img_source src;
    img_section *a = ms_exact(ms, &src);
    int rc = rf_engine_load(t, m, &src, &e, err, sizeof err);
    free(a);
    refusal(rc, e, err, why);
    assert_int_equal(ms->rel.n, 0);
}

/* Fewer sections than the loaders expect: none, each prefix of a valid
 * save, the engine's alone, one too many for the engine.  Each refusal
 * names the first section missing; the whole image still loads. */
static void rf_missing(const struct rf_case *c, const mem_image *im, const vindex *v)
{
    const size_t nown = rf_nown(im), neng = im->n - nown;
    const int want_eng = c->t == VINDEX_HNSW ? 5 : 3;
    assert_int_equal(neng, want_eng);
    char err[256] = "", why[96];
    mem_src ms;
    for (size_t k = 0; k < im->n; k++) {     /* k = 0: no array at all */
        if (k == 0) snprintf(why, sizeof why, "meta section");
        else if (k < nown) snprintf(why, sizeof why, "%zu sections, no", k);
        else if (k == nown) snprintf(why, sizeof why, "no engine sections");
        else snprintf(why, sizeof why, "%zu sections, expected %d", k - nown, want_eng);
        ms_init(&ms, im, 0, k, 1);
        ms_refused(&ms, why);
        if (k > 0 && k < nown) {    /* and which one */
            snprintf(why, sizeof why, "(kind 0x%04x) at %zu", im->sec[k].kind, k);
            ms_init(&ms, im, 0, k, 1);
            ms_refused(&ms, why);
        }
    }
    for (size_t k = 0; k < neng; k++) {
        ms_init(&ms, im, nown, k, 1);
        snprintf(why, sizeof why, "%zu sections, expected %d", k, want_eng);
        rf_engine_refused(c->t, c->m, &ms, why);
    }
    ms_init(&ms, im, nown - 1, neng + 1, 1);
    snprintf(why, sizeof why, "%zu sections, expected %d", neng + 1, want_eng);
    rf_engine_refused(c->t, c->m, &ms, why);
    ms_init(&ms, im, nown, neng, 1);
    ms_refused(&ms, "meta section");
    /* Complete, both load. */
    void *e = NULL;
    assert_int_equal(rf_engine_load(c->t, c->m, &ms.src, &e, err, sizeof err), 0);
    rf_engine_free(c->t, e);
    ms_init(&ms, im, 0, im->n, 1);
    vindex *w = vload_ok(&ms);
    vx_check(w);
    vx_same(v, w);
    vindex_free(w);
}

static void test_refuse_missing_sections(void **state)
{
    (void)state;
    rf_each(sizeof rf_cases / sizeof *rf_cases, rf_missing);
}

/* Sections in the wrong order or of the wrong kind: every pair of
 * neighbours swapped, every kind replaced, one index's sections before
 * another engine's.  Each refusal names the kind it found. */
static void test_refuse_wrong_kinds(void **state)
{
    (void)state;
    mem_image ims[sizeof rf_cases / sizeof *rf_cases];
    vindex *vs[sizeof rf_cases / sizeof *rf_cases];
    char why[64];
    mem_src ms;
    for (size_t ci = 0; ci < sizeof rf_cases / sizeof *rf_cases; ci++) {
        const mem_image *im = &ims[ci];
        vs[ci] = rf_image(&rf_cases[ci], &ims[ci]);
        for (size_t i = 0; i + 1 < im->n; i++) {
            ms_init(&ms, im, 0, im->n, 1);
            img_section t = ms.sec[i];
            ms.sec[i] = ms.sec[i + 1];
            ms.sec[i + 1] = t;
            if (i == 0) snprintf(why, sizeof why, "meta section");
            else snprintf(why, sizeof why, "is kind 0x%04x", ms.sec[i].kind);
            ms_refused(&ms, why);
        }
        for (size_t i = 0; i < im->n; i++) {
            const uint32_t kinds[] = { 0, 0xFFFF, VINDEX_IMG_META, im->sec[i].kind + 1,
                                       im->sec[i].kind - 1, im->sec[(i + 1) % im->n].kind };
            for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
                if (kinds[k] == im->sec[i].kind) continue;
                ms_init(&ms, im, 0, im->n, 1);
                ms.sec[i].kind = kinds[k];
                if (i == 0) snprintf(why, sizeof why, "meta section");
                else snprintf(why, sizeof why, "is kind 0x%04x", kinds[k]);
                ms_refused(&ms, why);
            }
        }
    }
    /* HNSW's own sections before FLAT's engine, and the other way round. */
    for (size_t a = 0; a < 2; a++) {
        const mem_image *own = &ims[a], *eng = &ims[1 - a];
        size_t no = rf_nown(own), ne = rf_nown(eng);
        ms_init(&ms, own, 0, no, 1);
        for (size_t i = ne; i < eng->n; i++)
            ms.sec[ms.src.n++] = (img_section){ eng->sec[i].kind, eng->sec[i].page,
                                                eng->sec[i].data, eng->sec[i].len };
        snprintf(why, sizeof why, "%zu sections, expected %d", eng->n - ne, a == 0 ? 5 : 3);
        ms_refused(&ms, why);
    }
    for (size_t ci = 0; ci < sizeof rf_cases / sizeof *rf_cases; ci++) {
        mi_fini(&ims[ci]);
        vindex_free(vs[ci]);
    }
}

/* A field of a section: n little-endian bytes at `at`. */
typedef struct rf_word {
    size_t at;
    uint64_t x;
    int n;
} rf_word;

/* im with fields w[0..nw) of section kind set is refused, naming `why`. */
static void rf_words_refused(const mem_image *im, uint32_t kind, const rf_word *w, size_t nw,
                             const char *why)
{
    mem_image c;
    mi_copy(&c, im);
    mem_sec *sec = (mem_sec *)rg_sec(&c, kind);
    for (size_t i = 0; i < nw; i++) {
        assert_true(w[i].at + (size_t)w[i].n <= sec->len);
        rg_put(sec->data + w[i].at, w[i].x, w[i].n);
    }
    rg_refused(&c, why);
    mi_fini(&c);
}

static void rf_patch_refused(const mem_image *im, uint32_t kind, size_t at, uint64_t x, int n,
                             const char *why)
{
    const rf_word w = { at, x, n };
    rf_words_refused(im, kind, &w, 1, why);
}

/* Counts, lengths and ids that are out of range, or that a multiplication
 * in 32 bits would wrap to a plausible size (2^30 more slots of a 4-byte
 * multiple is 2^32 bytes more).  Each refused, naming the field. */
static void rf_bad_numbers(const struct rf_case *c, const mem_image *im, const vindex *v)
{
    const mem_sec *meta = rg_sec(im, VINDEX_IMG_META);
    const uint32_t count = rg_get32(meta->data + 40), id_end = rg_get32(meta->data + 48);
    /* vindex meta: dimension, key count, table size, id range */
    rf_patch_refused(im, VINDEX_IMG_META, 8, 0xFFFFFFFFu, 4, "dimension");
    rf_patch_refused(im, VINDEX_IMG_META, 8, 0, 4, "dimension");
    rf_patch_refused(im, VINDEX_IMG_META, 4, 7, 4, "type 7");
    rf_patch_refused(im, VINDEX_IMG_META, 12, 3, 4, "metric 3");
    rf_patch_refused(im, VINDEX_IMG_META, 52, 2, 4, "flags");
    rf_patch_refused(im, VINDEX_IMG_META, 40, 0xFFFFFFFFu, 4, "keys below id");
    rf_patch_refused(im, VINDEX_IMG_META, 44, 0xFFFFFFFFu, 4, "slots");
    rf_patch_refused(im, VINDEX_IMG_META, 44, 8, 4, "slots");
    /* A table of 2^31 slots would be 16 GiB: more than the capacity needs. */
    rf_patch_refused(im, VINDEX_IMG_META, 44, 0x80000000u, 4, "key table of 2147483648");
    /* id_end 2^30 past: its norms would wrap to the same 32-bit length. */
    rf_patch_refused(im, VINDEX_IMG_META, 48, id_end + 0x40000000u, 4, "ending below id");
    /* 2^30 + 1 keys in 16 slots: count * 4 wraps to 4 in 32 bits */
    const rf_word many[] = { { 40, 0x40000001u, 4 }, { 44, 16, 4 }, { 48, 0x40000001u, 4 } };
    rf_words_refused(im, VINDEX_IMG_META, many, 3, "keys below id");
    if (c->t == VINDEX_HNSW) {      /* M is the engine's: range-checked */
        rf_patch_refused(im, VINDEX_IMG_META, 16, 0xFFFFFFFFu, 4, "M 4294967295");
        rf_patch_refused(im, VINDEX_IMG_META, 24, 0, 4, "ef_search 0");
    }
    /* keys: a length or a gap that does not fit */
    const uint8_t huge_len[] = { 0, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F };
    const uint8_t huge_gap[] = { 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0 };
    const uint8_t long_var[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x01 };
    const uint8_t *recs[] = { huge_len, huge_gap, long_var };
    const char *rwhy[] = { "cut short", "names id 4294967295", "malformed" };
    for (int r = 0; r < 3; r++) {
        mem_image w;
        rg_patch(&w, im, VINDEX_IMG_KEYS, 0, recs[r], 6);
        rg_refused(&w, "key record 0");
        rg_refused(&w, rwhy[r]);
        mi_fini(&w);
        if (!c->stream) continue;
        rg_patch(&w, im, VINDEX_IMG_PAYLOADS, 0, recs[r], 6);
        rg_refused(&w, "payload record 0");
        mi_fini(&w);
    }
    if (c->stream) {
        const mem_sec *st = rg_sec(im, VINDEX_IMG_STREAM);
        const uint32_t norder = rg_get32(st->data + 8);
        rf_patch_refused(im, VINDEX_IMG_STREAM, 0, 2, 4, "stream version 2");
        rf_patch_refused(im, VINDEX_IMG_STREAM, 4, 0xFFFFFFFFu, 4, "ring capacity");
        /* 2^30 more entries of 4 bytes: the same length in 32 bits */
        rf_patch_refused(im, VINDEX_IMG_STREAM, 8, norder + 0x40000000u, 4, "orders");
        rf_patch_refused(im, VINDEX_IMG_STREAM, 12, 0xFFFFFFFFu, 4, "payloads");
        rf_patch_refused(im, VINDEX_IMG_STREAM, 24, UINT64_MAX, 8, "evicted");
        /* count + evicted wraps past ingested = 2^64 - 1 */
        const rf_word wrap[] = { { 16, UINT64_MAX, 8 }, { 24, UINT64_MAX - count + 1, 8 } };
        rf_words_refused(im, VINDEX_IMG_STREAM, wrap, 2, "evicted");
        if (c->ring) {
            rf_patch_refused(im, VINDEX_IMG_STREAM, 40, 0xFFFFFFFFu, 4, "has no key");
            rf_patch_refused(im, VINDEX_IMG_STREAM, 40, id_end, 4, "has no key");
        }
    }
    if (c->m == DIST_COSINE) {
        rf_patch_refused(im, VINDEX_IMG_NORMS, 4 * (id_end - 1), 0x7FC00000u, 4,
                         "not a length");
        rf_patch_refused(im, VINDEX_IMG_NORMS, 4 * (id_end - 1), 0xBF800000u, 4,
                         "not a length");
    }
    assert_true(count > 0);
}

static void test_refuse_bad_numbers(void **state)
{
    (void)state;
    rf_each(sizeof rf_cases / sizeof *rf_cases, rf_bad_numbers);
}

/* The same for the engines' own fields, loaded through vindex. */
static void rf_bad_engine_numbers(const struct rf_case *c, const mem_image *im, const vindex *v)
{
    if (c->t == VINDEX_HNSW) {
        const mem_sec *hm = rg_sec(im, HNSW_IMG_META);
        const uint32_t hwm = rg_get32(hm->data + 28);
        /* 2^30 more slots (and capacity): vectors and layer 0 both
         * wrap to their lengths in 32 bits */
        const rf_word more[] = { { 24, hwm + 0x40000000u, 4 }, { 28, hwm + 0x40000000u, 4 } };
        rf_words_refused(im, HNSW_IMG_META, more, 2, "vector section is");
        rf_patch_refused(im, HNSW_IMG_META, 24, 0xFFFFFFFFu, 4, "out of order");
        rf_patch_refused(im, HNSW_IMG_META, 24, hwm - 1, 4, "out of order");
        rf_patch_refused(im, HNSW_IMG_META, 32, hwm + 1, 4, "out of order");
        rf_patch_refused(im, HNSW_IMG_META, 36, 0xFFFFFFF0u, 4, "free list");
        rf_patch_refused(im, HNSW_IMG_META, 36, hwm, 4, "free list");
        rf_patch_refused(im, HNSW_IMG_META, 40, hwm, 4, "entry point");
        rf_patch_refused(im, HNSW_IMG_META, 40, 0xFFFFFFFFu, 4, "entry point");
        rf_patch_refused(im, HNSW_IMG_META, 24, (1u << 20) + 1, 4, "more than growth ever leaves");
        rf_patch_refused(im, HNSW_IMG_META, 44, 17, 4, "max level 17");
        rf_patch_refused(im, HNSW_IMG_META, 44, 0x80000000u, 4, "max level");
        rf_patch_refused(im, HNSW_IMG_META, 44, (uint32_t)-2, 4, "max level -2");
        rf_patch_refused(im, HNSW_IMG_META, 52, 1, 4, "quantization");
        /* layer 0: the first live record with a link and the first with a hint */
        const mem_sec *l0 = rg_sec(im, HNSW_IMG_L0);
        const size_t s0 = 2 + 2 * 5;
        size_t linked = SIZE_MAX, hinted = SIZE_MAX;
        for (size_t x = 0; x < hwm; x++) {
            uint32_t w0 = rg_get32(l0->data + 4 * s0 * x);
            if (w0 & (1u << 24)) continue;
            if (linked == SIZE_MAX && (w0 & 0xFF)) linked = x;
            if (hinted == SIZE_MAX && (w0 >> 8 & 0xFF)) hinted = x;
        }
        assert_true(linked != SIZE_MAX && hinted != SIZE_MAX);
        const size_t rl = 4 * s0 * linked, rh = 4 * s0 * hinted;
        const uint32_t wl = rg_get32(l0->data + rl);
        rf_patch_refused(im, HNSW_IMG_L0, rl + 8, hwm, 4, "links to");
        rf_patch_refused(im, HNSW_IMG_L0, rl + 8, 0xFFFFFFFFu, 4, "links to");
        rf_patch_refused(im, HNSW_IMG_L0, rl + 8, linked, 4, "links to");
        rf_patch_refused(im, HNSW_IMG_L0, rl, (wl & ~0xFFu) | 0xFF, 4, "room for");
        rf_patch_refused(im, HNSW_IMG_L0, rl, (wl & 0xFFFFu) | 200u << 16, 4,
                         "level field 200");
        rf_patch_refused(im, HNSW_IMG_L0, rl + 4, rg_get32(l0->data + rl + 4) + 1, 4,
                         "in-degree");
        rf_patch_refused(im, HNSW_IMG_L0, rh + 4 * (s0 - 1), hwm + 3, 4, "out of range");
        /* the hint section: table sizes, entry counts, slots, nodes */
        const mem_sec *hs = rg_sec(im, HNSW_IMG_HINTS);
        const uint32_t size0 = rg_get32(hs->data), n0 = rg_get32(hs->data + 4);
        rf_patch_refused(im, HNSW_IMG_HINTS, 0, 0xFFFFFFFFu, 4, "overflow table has");
        rf_patch_refused(im, HNSW_IMG_HINTS, 4, n0 + 0x40000000u, 4, "do not fit");
        rf_patch_refused(im, HNSW_IMG_HINTS, 4, n0 + 0x15555556u, 4, "do not fit");
        if (n0 > 0) {
            rf_patch_refused(im, HNSW_IMG_HINTS, 8, size0, 4, "overflow slot");
            rf_patch_refused(im, HNSW_IMG_HINTS, 12, 0xFFFFFFF0u, 4, "bad node");
            rf_patch_refused(im, HNSW_IMG_HINTS, 16, hwm, 4, "bad node");
        }
    } else {
        const mem_sec *fm = rg_sec(im, FLAT_IMG_META);
        const uint32_t hwm = rg_get32(fm->data + 16);
        const rf_word more[] = { { 12, hwm + 0x40000000u, 4 }, { 16, hwm + 0x40000000u, 4 } };
        rf_words_refused(im, FLAT_IMG_META, more, 2, "vector section is");
        rf_patch_refused(im, FLAT_IMG_META, 12, 0xFFFFFFFFu, 4, "out of order");
        rf_patch_refused(im, FLAT_IMG_META, 20, hwm + 1, 4, "out of order");
        rf_patch_refused(im, FLAT_IMG_META, 24, hwm, 4, "free list");
        rf_patch_refused(im, FLAT_IMG_META, 24, 0xFFFFFFF0u, 4, "free list");
        rf_patch_refused(im, FLAT_IMG_META, 28, 1, 4, "reserved");
        /* A forged capacity: the first insert after loading sized the
         * per-id arrays to it (gigabytes; found by fuzz_snapshot). */
        rf_patch_refused(im, FLAT_IMG_META, 12, (1u << 20) + 1, 4, "more than growth ever leaves");
        rf_patch_refused(im, FLAT_IMG_META, 12, 2046820368u, 4, "more than growth ever leaves");
        rf_patch_refused(im, FLAT_IMG_LIVE, 0, 7, 1, "live flag 7");
    }
}

static void test_refuse_bad_engine_numbers(void **state)
{
    (void)state;
    rf_each(2, rf_bad_engine_numbers);
}

/* ---- reverse hints, in-degrees, duplicates ------------------------------ *
 * An image whose graph is in bounds but whose bookkeeping lies -- a hint
 * naming no one-way link, a hint or a link twice, an overflow entry that
 * repeats one -- used to load, and the first delete of the node it named
 * stopped the process at an assertion.  The helpers below read and patch
 * rf_cases' HNSW images (M = 5) word by word. */
#define HG_M  5u
#define HG_S0 (2u + 2u * HG_M)
#define HG_S1 (2u + HG_M)

typedef struct hg {
    mem_image w;            /* the patched copy */
    mem_sec *l0, *up, *hs;
    uint32_t hwm;
} hg;

static void hg_open(hg *g, const mem_image *im)
{
    mi_copy(&g->w, im);
    g->l0 = (mem_sec *)rg_sec(&g->w, HNSW_IMG_L0);
    g->up = (mem_sec *)rg_sec(&g->w, HNSW_IMG_UPPER);
    g->hs = (mem_sec *)rg_sec(&g->w, HNSW_IMG_HINTS);
    g->hwm = rg_get32(rg_sec(&g->w, HNSW_IMG_META)->data + 28);
}

/* x's level, -1 for a free slot. */
static int hg_level(const hg *g, uint32_t x)
{
    uint32_t w0 = rg_get32(g->l0->data + 4 * (size_t)HG_S0 * x);
    return w0 & (1u << 24) ? -1 : (int)(w0 >> 16 & 0xFF);
}

static uint32_t hg_max(int l) { return l ? HG_M : 2 * HG_M; }

/* Word i of x's list on layer l (the upper section packs the lists of every
 * node above layer 0 in id order). */
static uint8_t *hg_word(const hg *g, uint32_t x, int l, uint32_t i)
{
    if (l == 0) return g->l0->data + 4 * ((size_t)HG_S0 * x + i);
    assert_true(hg_level(g, x) >= l);
    size_t at = 0;
    for (uint32_t y = 0; y < x; y++)
        if (hg_level(g, y) > 0) at += (size_t)hg_level(g, y) * HG_S1;
    return g->up->data + 4 * (at + (size_t)(l - 1) * HG_S1 + i);
}

static uint32_t hg_get(const hg *g, uint32_t x, int l, uint32_t i)
{
    return rg_get32(hg_word(g, x, l, i));
}

static void hg_set(hg *g, uint32_t x, int l, uint32_t i, uint32_t v)
{
    rg_put(hg_word(g, x, l, i), v, 4);
}

static uint32_t hg_n(const hg *g, uint32_t x, int l) { return hg_get(g, x, l, 0) & 0xFF; }
static uint32_t hg_nh(const hg *g, uint32_t x, int l) { return hg_get(g, x, l, 0) >> 8 & 0xFF; }

/* The slot of x's k-th hint on layer l (hints fill the list from the back). */
static uint32_t hg_hslot(const hg *g, uint32_t x, int l, uint32_t k)
{
    return 2 + hg_max(l) - hg_nh(g, x, l) + k;
}

static int hg_links(const hg *g, uint32_t x, int l, uint32_t y)
{
    for (uint32_t i = 0; i < hg_n(g, x, l); i++)
        if (hg_get(g, x, l, 2 + i) == y) return 1;
    return 0;
}

static int hg_hinted(const hg *g, uint32_t x, int l, uint32_t y)
{
    for (uint32_t k = 0; k < hg_nh(g, x, l); k++)
        if (hg_get(g, x, l, hg_hslot(g, x, l, k)) == y) return 1;
    return 0;
}

/* The first node on layer l with at least nh hints (and n links), or fail. */
static uint32_t hg_find(const hg *g, int l, uint32_t nh, uint32_t n)
{
    for (uint32_t x = 0; x < g->hwm; x++)
        if (hg_level(g, x) >= l && hg_nh(g, x, l) >= nh && hg_n(g, x, l) >= n) return x;
    fail_msg("no node on layer %d with %u hints and %u links", l, nh, n);
    return 0;
}

/* A node on layer l that is not x and has no link either way with it. */
static uint32_t hg_stranger(const hg *g, uint32_t x, int l)
{
    for (uint32_t y = 0; y < g->hwm; y++)
        if (y != x && hg_level(g, y) >= l && !hg_links(g, x, l, y) && !hg_links(g, y, l, x) &&
            !hg_hinted(g, x, l, y))
            return y;
    fail_msg("every node links with %u", x);
    return 0;
}

/* The overflow table of layer 0 gets the entry target <- source, at the
 * first free slot a lookup for target probes (the hash mirrors hnsw.c's
 * xh_home), so that only what the entry says can be wrong with it. */
static void hg_xh_add(hg *g, uint32_t target, uint32_t source)
{
    const uint8_t *b = g->hs->data;
    const uint32_t size = rg_get32(b), n = rg_get32(b + 4);
    assert_true((n + 1) * 4 <= size * 3);
    uint8_t *used = calloc(size, 1);
    assert_non_null(used);
    for (uint32_t i = 0; i < n; i++) used[rg_get32(b + 8 + 12 * i)] = 1;
    uint32_t hash = (uint32_t)(((uint64_t)target * 0x9E3779B97F4A7C15ull) >> 32);
    uint32_t slot = (uint32_t)(((uint64_t)hash * size) >> 32);
    while (used[slot]) slot = (slot + 1) % size;
    free(used);
    const size_t len = g->hs->len + 12;
    uint8_t *nb = malloc(len);
    assert_non_null(nb);
    size_t k = 0;
    while (k < n && rg_get32(b + 8 + 12 * k) < slot) k++;
    const size_t at = 8 + 12 * k;      /* the entries stay in slot order */
    memcpy(nb, b, at);
    rg_put(nb + 4, n + 1, 4);
    rg_put(nb + at, slot, 4);
    rg_put(nb + at + 4, target, 4);
    rg_put(nb + at + 8, source, 4);
    memcpy(nb + at + 12, b + at, g->hs->len - at);
    free(g->hs->raw);
    sec_place(g->hs, nb, len);
    free(nb);
}

/* x's k-th hint on layer l taken out of its list (the count says one less). */
static uint32_t hg_unhint(hg *g, uint32_t x, int l, uint32_t k)
{
    uint32_t slot = hg_hslot(g, x, l, k), inner = hg_hslot(g, x, l, 0);
    uint32_t b = hg_get(g, x, l, slot);
    hg_set(g, x, l, slot, hg_get(g, x, l, inner));
    hg_set(g, x, l, inner, 0);
    hg_set(g, x, l, 0, hg_get(g, x, l, 0) - (1u << 8));
    return b;
}

/* The patched image is refused naming why; the copy is closed. */
static void hg_refused(hg *g, const char *why)
{
    rg_refused(&g->w, why);
    mi_fini(&g->w);
}

/* The patched image loads, validates, and all its keys can be deleted. */
static void hg_loads(hg *g)
{
    mem_src ms;
    ms_init(&ms, &g->w, 0, g->w.n, 1);
    vindex *v = vload_ok(&ms);
    vx_check(v);
    vx_delete_all(v);
    vindex_free(v);
    mi_fini(&g->w);
}

static int hg_xh_cases;     /* images whose overflow table took the entries */

static void rf_bad_hints(const struct rf_case *c, const mem_image *im, const vindex *v)
{
    (void)v;
    if (c->t != VINDEX_HNSW) return;
    hg g;
    hg_open(&g, im);
    const uint32_t a = hg_find(&g, 0, 1, 1), a2 = hg_find(&g, 0, 2, 0);
    const uint32_t hs0 = hg_hslot(&g, a, 0, 0), b = hg_get(&g, a, 0, hs0);
    const uint32_t stranger = hg_stranger(&g, a, 0), y = hg_get(&g, a, 0, 2);
    uint32_t freed = HNSW_NONE, recip = HNSW_NONE;
    for (uint32_t x = 0; x < g.hwm && freed == HNSW_NONE; x++)
        if (hg_level(&g, x) < 0) freed = x;
    for (uint32_t x = 0; x < g.hwm && recip == HNSW_NONE; x++)
        if (hg_level(&g, x) >= 0 && hg_n(&g, x, 0) >= 2 && hg_links(&g, hg_get(&g, x, 0, 3), 0, x))
            recip = x;
    mi_fini(&g.w);
    assert_true(recip != HNSW_NONE);

    /* inline hints: a stranger, a node the list links to, itself, a free
     * slot, one hint twice */
    hg_open(&g, im);
    hg_set(&g, a, 0, hs0, stranger);
    hg_refused(&g, "does not link to it on layer 0");
    hg_open(&g, im);
    hg_set(&g, a, 0, hs0, y);
    hg_refused(&g, "names a node it links to");
    hg_open(&g, im);
    hg_set(&g, a, 0, hs0, a);
    hg_refused(&g, "names itself");
    if (freed != HNSW_NONE) {
        hg_open(&g, im);
        hg_set(&g, a, 0, hs0, freed);
        hg_refused(&g, "free node or one not on layer 0");
    }
    hg_open(&g, im);
    hg_set(&g, a2, 0, hg_hslot(&g, a2, 0, 0), hg_get(&g, a2, 0, hg_hslot(&g, a2, 0, 1)));
    hg_refused(&g, "twice on layer 0");

    /* a link twice (in-degrees made to agree), in-degrees off by one */
    hg_open(&g, im);
    {
        uint32_t y0 = hg_get(&g, recip, 0, 2), y1 = hg_get(&g, recip, 0, 3);
        hg_set(&g, recip, 0, 3, y0);
        hg_set(&g, y0, 0, 1, hg_get(&g, y0, 0, 1) + 1);
        hg_set(&g, y1, 0, 1, hg_get(&g, y1, 0, 1) - 1);
    }
    hg_refused(&g, "links twice to");
    hg_open(&g, im);
    hg_set(&g, b, 0, 1, hg_get(&g, b, 0, 1) - 1);
    hg_refused(&g, "in-degree");

    /* a one-way link without its hint: refused while no hint was ever
     * dropped; after a drop, loads (a delete then searches for such
     * links).  The cosine image dropped one, whose link has gone since:
     * with the count set to 0 it loads as it is. */
    if (c->m == DIST_COSINE) {
        hg_open(&g, im);
        rg_put(rg_sec(&g.w, HNSW_IMG_META)->data + 64, 0, 8);
        hg_loads(&g);
        hg_open(&g, im);
        rg_put(rg_sec(&g.w, HNSW_IMG_META)->data + 64, 0, 8);
        hg_unhint(&g, a, 0, 0);
        hg_refused(&g, "has no hint");
    } else {
        hg_open(&g, im);
        rg_put(rg_sec(&g.w, HNSW_IMG_META)->data + 64, 0, 8);
        hg_refused(&g, "has no hint");
    }
    hg_open(&g, im);
    hg_unhint(&g, a, 0, 0);
    hg_loads(&g);

    /* the overflow table.  Where it has room (the dot image's is full: it
     * dropped hints): a hint moved there loads; then twice, also in the
     * list, naming a stranger, naming a reciprocal neighbour: refused.
     * Where it has entries: one made to name a stranger. */
    hg_open(&g, im);
    const uint32_t xsize = rg_get32(g.hs->data), xn = rg_get32(g.hs->data + 4);
    const uint32_t xt = xn ? rg_get32(g.hs->data + 12) : 0;
    const uint32_t xstranger = xn ? hg_stranger(&g, xt, 0) : 0;
    mi_fini(&g.w);
    if ((xn + 2) * 4 <= xsize * 3) {
        hg_open(&g, im);
        hg_xh_add(&g, a, hg_unhint(&g, a, 0, 0));
        hg_loads(&g);
        hg_open(&g, im);
        hg_xh_add(&g, a, hg_unhint(&g, a, 0, 0));
        hg_xh_add(&g, a, b);
        hg_refused(&g, "twice");
        hg_open(&g, im);
        hg_xh_add(&g, a, b);
        hg_refused(&g, "also a hint in its list");
        hg_open(&g, im);
        hg_xh_add(&g, a, stranger);
        hg_refused(&g, "no such link");
        hg_open(&g, im);
        hg_xh_add(&g, recip, hg_get(&g, recip, 0, 3));
        hg_refused(&g, "links back");
        hg_xh_cases++;
    }
    if (xn) rf_patch_refused(im, HNSW_IMG_HINTS, 16, xstranger, 4, "no such link");

    /* layer 1: a hint naming a stranger, an in-degree */
    hg_open(&g, im);
    {
        uint32_t u = hg_find(&g, 1, 1, 0), s1 = hg_stranger(&g, u, 1);
        hg_set(&g, u, 1, hg_hslot(&g, u, 1, 0), s1);
        hg_refused(&g, "does not link to it on layer 1");
        hg_open(&g, im);
        uint32_t t = hg_get(&g, u, 1, hg_hslot(&g, u, 1, 0));
        hg_set(&g, t, 1, 1, hg_get(&g, t, 1, 1) + 1);
        hg_refused(&g, "in-degree");
    }
}

static void test_refuse_bad_hints(void **state)
{
    (void)state;
    rf_each(sizeof rf_cases / sizeof *rf_cases, rf_bad_hints);
    assert_true(hg_xh_cases > 0);
}

/* Damage aimed at the graph's bookkeeping: one to three words of the
 * layer-0 records, the upper lists or the overflow entries set to an id in
 * range, moved by one, or copied from a neighbouring word -- what makes a
 * hint, a link or an in-degree plausible but wrong.  Whatever loads must
 * survive having every key deleted (vx_try_load). */
#ifdef TEST_SLOW
#define FUZZ_GRAPH 1000u
#else
#define FUZZ_GRAPH 2000u
#endif

/* Rounds per case of the fuzz tests: n, or ENGRAM_FUZZ_ROUNDS for a long
 * run by hand (ENGRAM_FUZZ_ROUNDS=200000). */
static uint32_t fuzz_rounds(uint32_t n)
{
    const char *e = getenv("ENGRAM_FUZZ_ROUNDS");
    return e && atol(e) > 0 ? (uint32_t)atol(e) : n;
}

static void test_fuzz_graph_words(void **state)
{
    (void)state;
    for (size_t ci = 0; ci < sizeof rf_cases / sizeof *rf_cases; ci++) {
        if (rf_cases[ci].t != VINDEX_HNSW) continue;
        mem_image im;
        vindex *v = rf_image(&rf_cases[ci], &im);
        const uint32_t hwm = rg_get32(rg_sec(&im, HNSW_IMG_META)->data + 28);
        const uint32_t kinds[] = { HNSW_IMG_L0, HNSW_IMG_L0, HNSW_IMG_UPPER, HNSW_IMG_HINTS };
        vindex_stats st;
        vindex_stats_get(v, &st);
        size_t accepted = 0, refused = 0;
        uint64_t s = 0x6EA9 + ci;
        const uint32_t rounds = fuzz_rounds(FUZZ_GRAPH);
        for (uint32_t round = 0; round < rounds; round++) {
            mem_image w;
            mi_copy(&w, &im);
            for (int k = 0, nk = 1 + (int)(rng_next(&s) % 3); k < nk; k++) {
                uint64_t r = rng_next(&s);
                mem_sec *sec = (mem_sec *)rg_sec(&w, kinds[r % 4]);
                if (sec->len < 8) continue;
                size_t at = (size_t)((r >> 8) % (sec->len / 4)) * 4;
                uint32_t x = rg_get32(sec->data + at);
                switch ((r >> 40) % 4) {
                case 0: x = (uint32_t)(rng_next(&s) % hwm); break;
                case 1: x += 1; break;
                case 2: x -= 1; break;
                default: x = rg_get32(sec->data + (at >= 4 ? at - 4 : at + 4)); break;
                }
                rg_put(sec->data + at, x, 4);
            }
            refused += vx_try_load(&w, &accepted, st.capacity, 1) != 0;
            mi_fini(&w);
        }
        print_message("graph fuzz case %zu: %zu of %u damaged images refused, %zu loaded\n", ci,
                      refused, rounds, accepted);
        assert_true(accepted > 0 && refused > rounds / 2);
        mi_fini(&im);
        vindex_free(v);
    }
}

/* Random damage of every kind a file can carry: bytes, boundary words,
 * section lengths, kinds, sections dropped, repeated or swapped.  Each
 * image is refused cleanly (vx_try_load checks how) or loads and can be
 * searched; one that also validates takes writes; every one that loads
 * then has all its keys deleted.  Run under ASan and UBSan: any
 * out-of-bounds access, overflow or abort fails it. */
#ifdef TEST_SLOW
#define FUZZ_SECTIONS 1500u
#else
#define FUZZ_SECTIONS 3000u
#endif

static void fz_mutate(mem_image *w, uint64_t *s)
{
    static const uint32_t words[] = { 0, 1, 2, 3, 16, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF,
                                      0x10000, 0x3FFFFFFF, 0x40000000, 0x7FFFFFFF, 0x80000000,
                                      0xFFFFFFF0, 0xFFFFFFFE, 0xFFFFFFFF };
    for (int k = 0, nk = 1 + (int)(rng_next(s) % 3); k < nk && w->n; k++) {
        const size_t si = (size_t)(rng_next(s) % w->n);
        mem_sec *sec = &w->sec[si];
        const uint64_t r = rng_next(s);
        switch (r % 10) {
        case 0: case 1: case 2: case 3:         /* a few bytes */
            for (int j = 0, nj = 1 + (int)(r >> 8) % 4; j < nj && sec->len; j++) {
                size_t at = (size_t)(rng_next(s) % sec->len);
                uint64_t x = rng_next(s);
                switch (x % 4) {
                case 0: sec->data[at] ^= (uint8_t)(1u << (x >> 8) % 8); break;
                case 1: sec->data[at] = 0xFF; break;
                case 2: sec->data[at] = 0; break;
                default: sec->data[at] = (uint8_t)(x >> 16); break;
                }
            }
            break;
        case 4: case 5:                         /* a word at a 4-byte boundary */
            if (sec->len >= 4) {
                size_t at = (size_t)(rng_next(s) % (sec->len / 4)) * 4;
                uint32_t x = words[(r >> 8) % (sizeof words / sizeof *words)];
                if ((r >> 16) & 1) x += rg_get32(sec->data + at);
                rg_put(sec->data + at, x, 4);
            }
            break;
        case 6: {                               /* the length */
            const size_t len = sec->len;
            const size_t lens[] = { 0, len / 2, len - 1, len + 1, len + 4, len + 13,
                                    len ? (size_t)(rng_next(s) % len) : 0 };
            size_t nl = lens[(r >> 8) % (sizeof lens / sizeof *lens)];
            if (nl <= len + 64) sec_resize(sec, nl, (uint8_t)(r >> 16));
            break;
        }
        case 7:                                 /* the kind */
            sec->kind = (r >> 8) & 1 ? w->sec[(r >> 16) % w->n].kind
                                     : 0x0100u + (uint32_t)((r >> 16) % 0x30);
            break;
        case 8:                                 /* dropped, or repeated */
            if ((r >> 8) & 1) {
                free(sec->raw);
                memmove(sec, sec + 1, (w->n - si - 1) * sizeof *sec);
                w->n--;
            } else if (w->n < MAXSEC) {
                memmove(sec + 1, sec, (w->n - si) * sizeof *sec);
                sec[1].raw = NULL;
                sec_place(&sec[1], sec[0].data, sec[0].len);
                w->n++;
            }
            break;
        default: {                              /* two swapped */
            size_t sj = (size_t)((r >> 8) % w->n);
            mem_sec t = w->sec[si];
            w->sec[si] = w->sec[sj];
            w->sec[sj] = t;
            break;
        }
        }
    }
}

static void test_fuzz_sections(void **state)
{
    (void)state;
    const struct rf_case cases[] = {
        { VINDEX_HNSW, DIST_COSINE, 120, 1 },
        { VINDEX_FLAT, DIST_DOT, 80, 1 },
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        mem_image im;
        vindex *v = rf_image(&cases[ci], &im);
        vindex_stats st;
        vindex_stats_get(v, &st);
        size_t accepted = 0, refused = 0;
        uint64_t s = 0x5EC7 + ci;
        const uint32_t rounds = fuzz_rounds(FUZZ_SECTIONS);
        for (uint32_t round = 0; round < rounds; round++) {
            mem_image w;
            mi_copy(&w, &im);
            fz_mutate(&w, &s);
            refused += vx_try_load(&w, &accepted, st.capacity, 1) != 0;
            mi_fini(&w);
        }
        print_message("fuzz case %zu: %zu of %u damaged images refused, %zu loaded\n", ci, refused,
                      rounds, accepted);
        assert_true(refused > rounds / 2);
        mem_src ms;                     /* the original still loads */
        ms_init(&ms, &im, 0, im.n, 1);
        vindex *w = vload_ok(&ms);
        vx_check(w);
        vx_same(v, w);
        vindex_free(w);
        mi_fini(&im);
        vindex_free(v);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vindex_clone),
        cmocka_unit_test(test_hnsw_roundtrip),
        cmocka_unit_test(test_hnsw_continues),
        cmocka_unit_test(test_hnsw_empty),
        cmocka_unit_test(test_hnsw_mismatch),
        cmocka_unit_test(test_flat_roundtrip),
        cmocka_unit_test(test_flat_empty),
        cmocka_unit_test(test_vindex_roundtrip),
        cmocka_unit_test(test_vindex_empty),
        cmocka_unit_test(test_vindex_key_arena),
        cmocka_unit_test(test_corrupt_images),
        cmocka_unit_test(test_corrupt_every_meta_byte),
        cmocka_unit_test(test_sink_errors),
        cmocka_unit_test(test_vindex_duplicate_key),
        cmocka_unit_test(test_vindex_bad_args),
        cmocka_unit_test(test_ring_snapshot_continues),
        cmocka_unit_test(test_ring_snapshot_edges),
        cmocka_unit_test(test_image_without_stream),
        cmocka_unit_test(test_stream_corrupt),
        cmocka_unit_test(test_refuse_missing_sections),
        cmocka_unit_test(test_refuse_wrong_kinds),
        cmocka_unit_test(test_refuse_bad_numbers),
        cmocka_unit_test(test_refuse_bad_engine_numbers),
        cmocka_unit_test(test_refuse_bad_hints),
        cmocka_unit_test(test_fuzz_graph_words),
        cmocka_unit_test(test_fuzz_sections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
