/* test_dist_quant.c -- the int8 dot-product and Hamming kernels of every
 * compiled variant against the scalar reference and against an independent
 * 64-bit sum, and their selection: levels, "auto", and variants the CPU
 * lacks being refused.
 *
 * Exactness
 *   Both kernels return integers computed without rounding, so every variant
 *   must equal the reference exactly -- no tolerance.  The reference itself
 *   is checked against a sum computed here in int64 (dot) and with the
 *   compiler's popcount (Hamming), so a bug shared by scalar and a variant
 *   cannot hide.
 *
 * Coverage
 *   - every length from 0 to 300 components (int8) and 0 to 80 words
 *     (Hamming), so each unrolled loop, each single step and each tail
 *     length of every variant runs; and the issue's dimensions 1, 7, 15,
 *     16, 17, 63, 64, 65, 100, 768, 1536 (as bits for Hamming: 1 to 24
 *     words) plus a few beyond;
 *   - every vector allocated on its own with exactly the bytes it needs, at
 *     an offset from malloc's alignment (int8: 0..3 and 33 bytes; bit
 *     vectors: 0..7 words, i.e. 8-byte but not vector aligned), so ASan sees
 *     a read past the end and the loads are genuinely unaligned;
 *   - extremes: all +-127 (the largest products, both signs), zero vectors,
 *     and n = DIST_I8_DIM_MAX with every product +-127^2, the sums closest
 *     to int32's limits (the VNNI kernel's biased lanes are largest there);
 *     all-ones against all-zeros bit vectors.
 *   Codes are drawn from [-127, 127]: -128 is outside the kernels' contract
 *   (dist.h) and never drawn.
 *
 * Selection
 *   dist_cpu_hide() makes the CPU look as if it lacked features, so the
 *   refusal of a variant the CPU lacks is tested on any machine; under
 *   qemu-aarch64 (tests/cross/arm64.sh) this binary also runs on a CPU model
 *   without dotprod (tests/unit/vec/engine/CMakeLists.txt), where
 *   ENGRAM_TEST_CPU_LACKS names the variant the real probe must refuse, and
 *   ENGRAM_TEST_CPU_HAS the one it must offer on the model that has it. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engram/dist.h"
#include "testlib.h"

static const size_t issue_dims[] = {1,   7,   15,  16,  17,  63,   64,   65,  100,
                                    127, 128, 129, 255, 256, 257, 768, 1536, 4096};
#define NISSUE (sizeof issue_dims / sizeof issue_dims[0])
#define I8_EXHAUSTIVE 300
#define WORDS_EXHAUSTIVE 80

static const char *const i8_names[] = {"avx512vnni", "avx512bw", "avx2", "neon-dotprod", "neon",
                                       "scalar"};
static const char *const bin_names[] = {"avx512vpopcntdq", "avx512bw", "avx2", "neon", "scalar"};
#define NI8 (sizeof i8_names / sizeof i8_names[0])
#define NBIN (sizeof bin_names / sizeof bin_names[0])

/* ---- data ------------------------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng_next(void)
{
    return test_rng_next(&rng_state);
}

/* Uniform in [-127, 127]. */
static int8_t rng_code(void)
{
    return (int8_t)((int)((rng_next() >> 32) % 255u) - 127);
}

typedef struct i8buf {
    int8_t *mem; /* what malloc returned */
    int8_t *v;   /* mem + offset */
} i8buf;

/* n codes at `offset` bytes past malloc's alignment; fill: 0 random, else
 * every code equal to fill. */
static i8buf i8buf_new(size_t n, size_t offset, int fill)
{
    i8buf b;
    b.mem = malloc(n + offset ? n + offset : 1);
    assert_non_null(b.mem);
    b.v = b.mem + offset;
    for (size_t i = 0; i < n; i++) b.v[i] = fill ? (int8_t)fill : rng_code();
    return b;
}

typedef struct wbuf {
    uint64_t *mem;
    uint64_t *v;
} wbuf;

/* words 64-bit words at `offset` words past malloc's alignment; fill: 0
 * random, 1 all ones, 2 all zeros. */
static wbuf wbuf_new(size_t words, size_t offset, int fill)
{
    wbuf b;
    size_t bytes = (words + offset) * sizeof(uint64_t);
    b.mem = malloc(bytes ? bytes : 1);
    assert_non_null(b.mem);
    b.v = b.mem + offset;
    for (size_t i = 0; i < words; i++)
        b.v[i] = fill == 1 ? ~0ull : fill == 2 ? 0 : rng_next();
    return b;
}

static int64_t ref_dot(const int8_t *a, const int8_t *b, size_t n)
{
    int64_t s = 0;
    for (size_t i = 0; i < n; i++) s += (int64_t)a[i] * b[i];
    return s;
}

static uint64_t ref_hamming(const uint64_t *a, const uint64_t *b, size_t words)
{
    uint64_t s = 0;
    for (size_t i = 0; i < words; i++) s += (uint64_t)__builtin_popcountll(a[i] ^ b[i]);
    return s;
}

/* ---- kernels ---------------------------------------------------------------- */

/* Says whether the variant runs here, and skips the test if it does not. */
static void announce_or_skip(const char *kind, const char *name, int present)
{
    if (!present) {
        print_message("[quant] %s %s: not compiled in or not supported by this CPU: skipped\n",
                      kind, name);
        skip();
    }
    print_message("[quant] %s %s: running\n", kind, name);
}

static const dist_i8_kernels *i8_or_skip(const char *name)
{
    const dist_i8_kernels *k = dist_i8_by_name(name);
    announce_or_skip("int8", name, k != NULL);
    assert_string_equal(k->name, name);
    return k;
}

static const dist_bin_kernels *bin_or_skip(const char *name)
{
    const dist_bin_kernels *k = dist_bin_by_name(name);
    announce_or_skip("hamming", name, k != NULL);
    assert_string_equal(k->name, name);
    return k;
}

static void check_i8(const dist_i8_kernels *k, size_t n, size_t oa, size_t ob, int fa, int fb)
{
    i8buf a = i8buf_new(n, oa, fa), b = i8buf_new(n, ob, fb);
    int64_t want = ref_dot(a.v, b.v, n);
    int32_t ref = dist_scalar_i8.dot(a.v, b.v, n), got = k->dot(a.v, b.v, n);
    if (ref != want || got != want) {
        print_error("int8 %s n=%zu offsets %zu/%zu: got %ld, scalar %ld, exact %lld\n", k->name, n,
                    oa, ob, (long)got, (long)ref, (long long)want);
        fail();
    }
    /* Commutes, and a vector against itself is its squared norm. */
    assert_int_equal(k->dot(b.v, a.v, n), got);
    assert_int_equal(k->dot(a.v, a.v, n), ref_dot(a.v, a.v, n));
    free(a.mem);
    free(b.mem);
}

static void test_i8_random(void **state)
{
    const dist_i8_kernels *k = i8_or_skip(*state);
    for (size_t n = 0; n <= I8_EXHAUSTIVE; n++) check_i8(k, n, n % 4, (n + 1) % 4, 0, 0);
    for (size_t d = 0; d < NISSUE; d++) {
        static const size_t offs[][2] = {{0, 0}, {1, 2}, {3, 1}, {33, 0}, {0, 33}};
        for (size_t o = 0; o < sizeof offs / sizeof offs[0]; o++)
            check_i8(k, issue_dims[d], offs[o][0], offs[o][1], 0, 0);
    }
}

static void test_i8_extremes(void **state)
{
    const dist_i8_kernels *k = i8_or_skip(*state);
    static const int fills[][2] = {{127, 127}, {-127, -127}, {127, -127}, {-127, 127},
                                   {1, -127},  {-1, 1}};
    for (size_t d = 0; d < NISSUE; d++) {
        size_t n = issue_dims[d];
        for (size_t f = 0; f < sizeof fills / sizeof fills[0]; f++)
            check_i8(k, n, d % 4, 1, fills[f][0], fills[f][1]);
        /* Zero vectors: against zero and against random codes. */
        i8buf z = i8buf_new(n, 1, 0), r = i8buf_new(n, 2, 0);
        memset(z.v, 0, n);
        assert_int_equal(k->dot(z.v, r.v, n), 0);
        assert_int_equal(k->dot(r.v, z.v, n), 0);
        assert_int_equal(k->dot(z.v, z.v, n), 0);
        free(z.mem);
        free(r.mem);
    }
    /* The largest n the contract allows, every product +-127^2: the results
     * closest to int32's limits (+-2114060288). */
    check_i8(k, DIST_I8_DIM_MAX, 0, 3, 127, 127);
    check_i8(k, DIST_I8_DIM_MAX, 1, 0, -127, 127);
    check_i8(k, DIST_I8_DIM_MAX, 2, 1, -127, -127);
    check_i8(k, DIST_I8_DIM_MAX, 3, 2, 0, 0);
}

static void check_bin(const dist_bin_kernels *k, size_t words, size_t oa, size_t ob, int fa,
                      int fb)
{
    wbuf a = wbuf_new(words, oa, fa), b = wbuf_new(words, ob, fb);
    uint64_t want = ref_hamming(a.v, b.v, words);
    uint64_t ref = dist_scalar_bin.hamming(a.v, b.v, words), got = k->hamming(a.v, b.v, words);
    if (ref != want || got != want) {
        print_error("hamming %s words=%zu offsets %zu/%zu: got %llu, scalar %llu, exact %llu\n",
                    k->name, words, oa, ob, (unsigned long long)got, (unsigned long long)ref,
                    (unsigned long long)want);
        fail();
    }
    assert_true(k->hamming(b.v, a.v, words) == got);
    assert_true(k->hamming(a.v, a.v, words) == 0);
    free(a.mem);
    free(b.mem);
}

static void test_bin_random(void **state)
{
    const dist_bin_kernels *k = bin_or_skip(*state);
    for (size_t w = 0; w <= WORDS_EXHAUSTIVE; w++)
        for (size_t o = 0; o < 8; o++) check_bin(k, w, o, (o * 5 + 3) % 8, 0, 0);
    for (size_t d = 0; d < NISSUE; d++) {
        size_t words = (issue_dims[d] + 63) / 64;
        check_bin(k, words, d % 8, 7 - d % 8, 0, 0);
    }
}

static void test_bin_extremes(void **state)
{
    const dist_bin_kernels *k = bin_or_skip(*state);
    for (size_t w = 0; w <= WORDS_EXHAUSTIVE; w++) {
        check_bin(k, w, w % 8, 1, 1, 2); /* every bit differs: 64 * w */
        check_bin(k, w, 3, w % 8, 1, 1);
        check_bin(k, w, 0, 5, 2, 2);
        check_bin(k, w, 2, 6, 1, 0);
    }
    /* Large: a count past any 8- or 16-bit intermediate (NEON's blocks). */
    check_bin(k, 20000, 1, 0, 1, 2);
    check_bin(k, 20001, 0, 1, 0, 0);
}

/* ---- selection -------------------------------------------------------------- */

static int in_list(const char *const *list, const char *name)
{
    for (; *list; list++)
        if (strcmp(*list, name) == 0) return 1;
    return 0;
}

static void test_compiled(void **state)
{
    (void)state;
    const char *const *i8 = dist_i8_compiled_names(), *const *bin = dist_bin_compiled_names();
    assert_true(in_list(i8, "scalar"));
    assert_true(in_list(bin, "scalar"));
    print_message("[quant] int8 compiled:");
    for (size_t i = 0; i8[i]; i++) {
        const dist_i8_kernels *k = dist_i8_by_name(i8[i]);
        print_message(" %s%s", i8[i], k ? "" : "(cpu lacks it)");
        if (k) assert_string_equal(k->name, i8[i]);
    }
    print_message("\n[quant] hamming compiled:");
    for (size_t i = 0; bin[i]; i++) {
        const dist_bin_kernels *k = dist_bin_by_name(bin[i]);
        print_message(" %s%s", bin[i], k ? "" : "(cpu lacks it)");
        if (k) assert_string_equal(k->name, bin[i]);
    }
    print_message("\n");
    /* Names that are not compiled in are refused, unknown ones too. */
    for (size_t i = 0; i < NI8; i++)
        if (!in_list(i8, i8_names[i])) assert_null(dist_i8_by_name(i8_names[i]));
    for (size_t i = 0; i < NBIN; i++)
        if (!in_list(bin, bin_names[i])) assert_null(dist_bin_by_name(bin_names[i]));
    assert_null(dist_i8_by_name("sse9"));
    assert_null(dist_i8_by_name(NULL));
    assert_null(dist_bin_by_name("avx512vnni")); /* an int8 name is no Hamming name */
    assert_non_null(dist_i8_by_name("SCALAR"));  /* case-insensitive, like dist_select */
}

/* The first usable name of a best-first list. */
static const char *best_i8(void)
{
    for (size_t i = 0; i < NI8; i++)
        if (dist_i8_by_name(i8_names[i])) return i8_names[i];
    return NULL;
}

static const char *best_bin(void)
{
    for (size_t i = 0; i < NBIN; i++)
        if (dist_bin_by_name(bin_names[i])) return bin_names[i];
    return NULL;
}

static void test_select_auto(void **state)
{
    (void)state;
    assert_int_equal(dist_select("auto"), 0);
    print_message("[quant] auto: float %s, int8 %s, hamming %s\n", dist_active()->name,
                  dist_i8_active()->name, dist_bin_active()->name);
    assert_string_equal(dist_i8_active()->name, best_i8());
    assert_string_equal(dist_bin_active()->name, best_bin());
#if defined(__x86_64__) && defined(__GNUC__)
    /* Independent of dist.c's cpuid code: the compiler's view. */
    __builtin_cpu_init();
    int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") &&
                 __builtin_cpu_supports("fma");
    if (avx512 && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni"))
        assert_string_equal(dist_i8_active()->name, "avx512vnni");
    else if (avx512 && __builtin_cpu_supports("avx512bw"))
        assert_string_equal(dist_i8_active()->name, "avx512bw");
    else if (__builtin_cpu_supports("avx2"))
        assert_string_equal(dist_i8_active()->name, "avx2");
    if (avx512 && __builtin_cpu_supports("avx512vpopcntdq"))
        assert_string_equal(dist_bin_active()->name, "avx512vpopcntdq");
    else if (avx512 && __builtin_cpu_supports("avx512bw"))
        assert_string_equal(dist_bin_active()->name, "avx512bw");
    else if (__builtin_cpu_supports("avx2"))
        assert_string_equal(dist_bin_active()->name, "avx2");
#elif defined(__aarch64__)
    assert_string_equal(dist_bin_active()->name, "neon");
    assert_true(strncmp(dist_i8_active()->name, "neon", 4) == 0);
#endif
}

/* Levels bound the int8/Hamming choice from above (dist.h, Levels). */
static void test_select_levels(void **state)
{
    (void)state;
    static const struct {
        const char *level;
        const char *allowed[4]; /* int8 and Hamming names a level may get */
    } rules[] = {
        {"avx512", {"avx512vnni", "avx512bw", "avx512vpopcntdq", "avx2"}},
        {"avx2", {"avx2"}},
        {"neon", {"neon-dotprod", "neon"}},
        {"scalar", {NULL}},
    };
    for (size_t r = 0; r < sizeof rules / sizeof rules[0]; r++) {
        int rc = dist_select(rules[r].level);
        if (!dist_kernels_by_name(rules[r].level)) {
            assert_int_equal(rc, -ENOTSUP);
            continue;
        }
        assert_int_equal(rc, 0);
        const char *i8 = dist_i8_active()->name, *bin = dist_bin_active()->name;
        print_message("[quant] simd %s: int8 %s, hamming %s\n", rules[r].level, i8, bin);
        int i8_ok = strcmp(i8, "scalar") == 0, bin_ok = strcmp(bin, "scalar") == 0;
        for (size_t j = 0; j < 4 && rules[r].allowed[j]; j++) {
            i8_ok |= strcmp(i8, rules[r].allowed[j]) == 0;
            bin_ok |= strcmp(bin, rules[r].allowed[j]) == 0;
        }
        assert_true(i8_ok);
        assert_true(bin_ok);
    }
    /* scalar means scalar throughout. */
    assert_int_equal(dist_select("scalar"), 0);
    assert_ptr_equal(dist_i8_active(), &dist_scalar_i8);
    assert_ptr_equal(dist_bin_active(), &dist_scalar_bin);
    /* A failed select changes nothing. */
    assert_int_equal(dist_select("sse9"), -EINVAL);
    assert_ptr_equal(dist_i8_active(), &dist_scalar_i8);
    assert_ptr_equal(dist_bin_active(), &dist_scalar_bin);
}

/* A variant whose features are hidden is refused by name and never chosen:
 * with everything hidden only the variants that need nothing remain. */
static void test_hidden_refused(void **state)
{
    (void)state;
    unsigned have = dist_cpu_features();
    dist_cpu_hide(~0u);
    assert_int_equal(dist_cpu_features(), 0);
    for (size_t i = 0; i < NI8; i++) {
        int base = strcmp(i8_names[i], "scalar") == 0 || strcmp(i8_names[i], "neon") == 0;
        if (!base) assert_null(dist_i8_by_name(i8_names[i]));
    }
    for (size_t i = 0; i < NBIN; i++) {
        int base = strcmp(bin_names[i], "scalar") == 0 || strcmp(bin_names[i], "neon") == 0;
        if (!base) assert_null(dist_bin_by_name(bin_names[i]));
    }
    assert_int_equal(dist_select("auto"), 0);
    print_message("[quant] all features hidden: auto gives %s / %s / %s\n", dist_active()->name,
                  dist_i8_active()->name, dist_bin_active()->name);
    assert_true(strcmp(dist_i8_active()->name, "scalar") == 0 ||
                strcmp(dist_i8_active()->name, "neon") == 0);
    if (dist_kernels_by_name("neon") == NULL) {
        assert_int_equal(dist_select("avx512"), -ENOTSUP);
        assert_int_equal(dist_select("avx2"), -ENOTSUP);
    }

    /* One feature at a time: the variant that needs it goes, the next best
     * takes its place. */
    static const struct {
        unsigned feature;
        const char *i8_gone, *bin_gone;
    } one[] = {
        {DIST_CPU_AVX512VNNI, "avx512vnni", NULL},
        {DIST_CPU_AVX512VPOPCNTDQ, NULL, "avx512vpopcntdq"},
        {DIST_CPU_AVX512BW, "avx512bw", "avx512bw"},
        {DIST_CPU_DOTPROD, "neon-dotprod", NULL},
    };
    for (size_t i = 0; i < sizeof one / sizeof one[0]; i++) {
        dist_cpu_hide(0);
        const char *gone = one[i].i8_gone ? one[i].i8_gone : one[i].bin_gone;
        int present = one[i].i8_gone ? dist_i8_by_name(gone) != NULL : dist_bin_by_name(gone) != NULL;
        if (!(have & one[i].feature) || !present) continue; /* nothing to take away here */
        dist_cpu_hide(one[i].feature);
        assert_int_equal(dist_select("auto"), 0);
        if (one[i].i8_gone) {
            assert_null(dist_i8_by_name(one[i].i8_gone));
            assert_string_not_equal(dist_i8_active()->name, one[i].i8_gone);
        }
        if (one[i].bin_gone) {
            assert_null(dist_bin_by_name(one[i].bin_gone));
            assert_string_not_equal(dist_bin_active()->name, one[i].bin_gone);
        }
        print_message("[quant] without %s: int8 %s, hamming %s\n", gone, dist_i8_active()->name,
                      dist_bin_active()->name);
    }
    /* AVX512F hidden: the avx512 level itself is refused, and a failed
     * select leaves the choice as it was. */
    dist_cpu_hide(0);
    if (dist_kernels_by_name("avx512")) {
        assert_int_equal(dist_select("avx512"), 0);
        const dist_i8_kernels *before = dist_i8_active();
        dist_cpu_hide(DIST_CPU_AVX512F);
        assert_int_equal(dist_select("avx512"), -ENOTSUP);
        assert_ptr_equal(dist_i8_active(), before);
        assert_int_equal(dist_select("auto"), 0);
        assert_true(strncmp(dist_i8_active()->name, "avx512", 6) != 0);
        assert_true(strncmp(dist_bin_active()->name, "avx512", 6) != 0);
    }
    dist_cpu_hide(0);
    assert_int_equal(dist_cpu_features(), have);
    assert_int_equal(dist_select("auto"), 0);
}

/* Under qemu the CPU model decides: the real probe, no hiding. */
static void test_cpu_model(void **state)
{
    (void)state;
    const char *lacks = getenv("ENGRAM_TEST_CPU_LACKS"), *has = getenv("ENGRAM_TEST_CPU_HAS");
    if (!lacks && !has) {
        print_message("[quant] no CPU model expectation set: skipped\n");
        skip();
    }
    dist_cpu_hide(0);
    if (lacks) {
        print_message("[quant] this CPU must lack int8 %s\n", lacks);
        assert_null(dist_i8_by_name(lacks));
        assert_int_equal(dist_select("auto"), 0);
        assert_string_not_equal(dist_i8_active()->name, lacks);
    }
    if (has) {
        print_message("[quant] this CPU must have int8 %s\n", has);
        assert_non_null(dist_i8_by_name(has));
        assert_int_equal(dist_select("auto"), 0);
        assert_string_equal(dist_i8_active()->name, has);
    }
}

/* Named "<variant>/<test>" so cmocka's report says which variant ran. */
#define I8_TESTS(name)                                                         \
    {"int8 " name "/random", test_i8_random, NULL, NULL, (void *)name},       \
    {"int8 " name "/extremes", test_i8_extremes, NULL, NULL, (void *)name}
#define BIN_TESTS(name)                                                        \
    {"hamming " name "/random", test_bin_random, NULL, NULL, (void *)name},   \
    {"hamming " name "/extremes", test_bin_extremes, NULL, NULL, (void *)name}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compiled),
        I8_TESTS("scalar"),
        I8_TESTS("avx2"),
        I8_TESTS("avx512bw"),
        I8_TESTS("avx512vnni"),
        I8_TESTS("neon"),
        I8_TESTS("neon-dotprod"),
        BIN_TESTS("scalar"),
        BIN_TESTS("avx2"),
        BIN_TESTS("avx512bw"),
        BIN_TESTS("avx512vpopcntdq"),
        BIN_TESTS("neon"),
        cmocka_unit_test(test_select_auto),
        cmocka_unit_test(test_select_levels),
        cmocka_unit_test(test_hidden_refused),
        cmocka_unit_test(test_cpu_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
