/* test_fttok.c -- src/search stem.c and fttok.c: the Porter2 stemmer
 * against word/stem pairs (snowballstem.org's English sample vocabulary
 * and each rule's own examples), and RediSearch's tokenizer: separators,
 * backslash escapes, normalisation, stopwords (default, custom, none),
 * positions, which tokens get a "+stem", NOSTEM, NUL-terminated text. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engram/fttok.h"
#include "engram/stem.h"

static const char *const pairs[][2] = {
    /* snowballstem.org's English sample (voc.txt / output.txt) */
    { "consign", "consign" }, { "consigned", "consign" }, { "consigning", "consign" },
    { "consignment", "consign" }, { "consist", "consist" }, { "consisted", "consist" },
    { "consistency", "consist" }, { "consistent", "consist" }, { "consistently", "consist" },
    { "consisting", "consist" }, { "consists", "consist" }, { "consolation", "consol" },
    { "consolations", "consol" }, { "consolatory", "consolatori" }, { "console", "consol" },
    { "consoled", "consol" }, { "consoles", "consol" }, { "consolidate", "consolid" },
    { "consolidated", "consolid" }, { "consolidating", "consolid" }, { "consoling", "consol" },
    { "consolingly", "consol" }, { "consols", "consol" }, { "consonant", "conson" },
    { "consort", "consort" }, { "consorted", "consort" }, { "consorting", "consort" },
    { "conspicuous", "conspicu" }, { "conspicuously", "conspicu" },
    { "conspiracy", "conspiraci" }, { "conspirator", "conspir" }, { "conspirators", "conspir" },
    { "conspire", "conspir" }, { "conspired", "conspir" }, { "conspiring", "conspir" },
    { "constable", "constabl" }, { "constables", "constabl" }, { "constance", "constanc" },
    { "constancy", "constanc" }, { "constant", "constant" },
    { "knack", "knack" }, { "knackeries", "knackeri" }, { "knacks", "knack" },
    { "knag", "knag" }, { "knave", "knave" }, { "knaves", "knave" }, { "knavish", "knavish" },
    { "kneaded", "knead" }, { "kneading", "knead" }, { "knee", "knee" }, { "kneel", "kneel" },
    { "kneeled", "kneel" }, { "kneeling", "kneel" }, { "kneels", "kneel" }, { "knees", "knee" },
    { "knell", "knell" }, { "knelt", "knelt" }, { "knew", "knew" }, { "knick", "knick" },
    { "knif", "knif" }, { "knife", "knife" }, { "knight", "knight" }, { "knightly", "knight" },
    { "knights", "knight" }, { "knit", "knit" }, { "knits", "knit" }, { "knitted", "knit" },
    { "knitting", "knit" }, { "knives", "knive" }, { "knob", "knob" }, { "knobs", "knob" },
    { "knock", "knock" }, { "knocked", "knock" }, { "knocker", "knocker" },
    { "knockers", "knocker" }, { "knocking", "knock" }, { "knocks", "knock" },
    { "knopp", "knopp" }, { "knot", "knot" }, { "knots", "knot" },
    /* the rules' own examples */
    { "caresses", "caress" }, { "ponies", "poni" }, { "ties", "tie" }, { "cries", "cri" },
    { "caress", "caress" }, { "cats", "cat" }, { "gas", "gas" }, { "gaps", "gap" },
    { "kiwis", "kiwi" }, { "feed", "feed" }, { "agreed", "agre" }, { "plastered", "plaster" },
    { "bled", "bled" }, { "motoring", "motor" }, { "sing", "sing" }, { "conflated", "conflat" },
    { "troubled", "troubl" }, { "sized", "size" }, { "hopping", "hop" }, { "hoped", "hope" },
    { "hoping", "hope" }, { "tanned", "tan" }, { "falling", "fall" }, { "hissing", "hiss" },
    { "fizzed", "fizz" }, { "failing", "fail" }, { "filing", "file" }, { "happy", "happi" },
    { "cry", "cri" }, { "by", "by" }, { "say", "say" }, { "running", "run" }, { "runs", "run" },
    { "generously", "generous" }, { "generalizations", "general" }, { "oscillators", "oscil" },
    { "conditional", "condit" }, { "rational", "ration" }, { "relational", "relat" },
    /* exceptions */
    { "skis", "ski" }, { "skies", "sky" }, { "dying", "die" }, { "lying", "lie" },
    { "tying", "tie" }, { "idly", "idl" }, { "gently", "gentl" }, { "ugly", "ugli" },
    { "early", "earli" }, { "only", "onli" }, { "singly", "singl" }, { "sky", "sky" },
    { "news", "news" }, { "howe", "howe" }, { "atlas", "atlas" }, { "cosmos", "cosmos" },
    { "bias", "bias" }, { "andes", "andes" }, { "inning", "inning" }, { "outings", "outing" },
    { "cannings", "canning" }, { "proceed", "proceed" }, { "exceed", "exceed" },
    { "succeed", "succeed" },
    /* short words, y handling */
    { "a", "a" }, { "is", "is" }, { "yes", "yes" }, { "youth", "youth" }, { "boy", "boy" },
    { "played", "play" }, { "enjoying", "enjoy" },
};

static void test_stem_pairs(void **state)
{
    (void)state;
    size_t bad = 0;
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        char out[64];
        size_t n = stem_english(pairs[i][0], strlen(pairs[i][0]), out);
        if (n != strlen(pairs[i][1]) || memcmp(out, pairs[i][1], n) != 0) {
            fprintf(stderr, "stem(%s) = %.*s, want %s\n", pairs[i][0], (int)n, out, pairs[i][1]);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

static void test_stem_in_place_and_utf8(void **state)
{
    (void)state;
    char w[] = "connections";
    size_t n = stem_english(w, strlen(w), w);
    assert_int_equal(n, 7);
    assert_memory_equal(w, "connect", 7);
    /* "és" is two letters (three bytes): left alone; "cafés" loses its s
     * (a vowel stands before the letter before it) */
    char out[16];
    assert_int_equal(stem_english("\xc3\xa9s", 3, out), 3);
    assert_int_equal(stem_english("caf\xc3\xa9s", 6, out), 5);
    assert_memory_equal(out, "caf\xc3\xa9", 5);
}

/* Tokenize text (stems on) into a "tok@pos[+stem] " listing. */
static void toks(const char *text, const fttok_stopwords *sw, int stem, char *out, size_t cap)
{
    size_t len = strlen(text);
    char *buf = malloc(len + 1), *sb = malloc(len + 2);
    fttok t;
    fttok_init(&t, text, len, buf, sb, sw, stem, 0);
    fttok_token k;
    size_t o = 0;
    out[0] = 0;
    while (fttok_next(&t, &k))
        o += (size_t)snprintf(out + o, cap - o, "%.*s@%u%s%.*s ", (int)k.len, k.text, k.pos,
                              k.stem_len ? "" : "", (int)k.stem_len, k.stem ? k.stem : "");
    free(buf);
    free(sb);
}

static void test_tokenizer(void **state)
{
    (void)state;
    char out[512];
    const fttok_stopwords *def = fttok_stopwords_default();
    toks("Hello, World-wide WEB of the a\\-b", def, 1, out, sizeof out);
    assert_string_equal(out, "hello@1 world@2 wide@3 web@4 a-b@5 ");
    toks("running runs ran", def, 1, out, sizeof out);
    assert_string_equal(out, "running@1+run runs@2+run ran@3 ");
    toks("running", def, 0, out, sizeof out);
    assert_string_equal(out, "running@1 ");
    /* every separator */
    toks("a1,b1.c1/d1(e1)f1{g1}h1[i1]j1:k1;l1~m1!n1@o1#p1$q1%r1^s1&t1*u1-v1=w1+x1|y1'z1`a2\"b2<c2>d2?e2\tf2 g2",
         NULL, 0, out, sizeof out);
    assert_string_equal(out, "a1@1 b1@2 c1@3 d1@4 e1@5 f1@6 g1@7 h1@8 i1@9 j1@10 k1@11 l1@12 m1@13 "
                             "n1@14 o1@15 p1@16 q1@17 r1@18 s1@19 t1@20 u1@21 v1@22 w1@23 x1@24 "
                             "y1@25 z1@26 a2@27 b2@28 c2@29 d2@30 e2@31 f2@32 g2@33 ");
    /* not separators: underscore, backslash-escaped, bytes >= 0x80 */
    toks("snake_case caf\xc3\xa9 new\\ york", NULL, 0, out, sizeof out);
    assert_string_equal(out, "snake_case@1 caf\xc3\xa9@2 new york@3 ");
    /* empty tokens and control bytes */
    toks(",,, \x01\x02 ,x", NULL, 0, out, sizeof out);
    assert_string_equal(out, "x@1 ");
    /* stopwords take no position */
    toks("the cat is on the mat", def, 0, out, sizeof out);
    assert_string_equal(out, "cat@1 mat@2 ");
    toks("the cat", NULL, 0, out, sizeof out);
    assert_string_equal(out, "the@1 cat@2 ");
    /* a short word is not stemmed, an unchanged stem not stored */
    toks("cats cat jump", NULL, 1, out, sizeof out);
    assert_string_equal(out, "cats@1+cat cat@2 jump@3 ");
}

static void test_tokenizer_nul_and_positions(void **state)
{
    (void)state;
    /* a 200-byte token keeps its first 128 bytes */
    char big[201], bbuf[201], bsb[202];
    memset(big, 'A', 200);
    big[200] = 0;
    fttok bt;
    fttok_init(&bt, big, 200, bbuf, bsb, NULL, 0, 0);
    fttok_token bk;
    assert_true(fttok_next(&bt, &bk));
    assert_int_equal(bk.len, FTTOK_TOKEN_MAX);
    assert_int_equal(bk.text[0], 'a');
    assert_false(fttok_next(&bt, &bk));
    const char text[] = "one two\0three";
    char buf[16], sb[16];
    fttok t;
    fttok_init(&t, text, sizeof text - 1, buf, sb, NULL, 0, 7);
    fttok_token k;
    assert_true(fttok_next(&t, &k));
    assert_int_equal(k.pos, 8);
    assert_true(fttok_next(&t, &k));
    assert_int_equal(k.pos, 9);
    assert_memory_equal(k.text, "two", 3);
    assert_false(fttok_next(&t, &k));
}

static void test_stopwords(void **state)
{
    (void)state;
    const fttok_stopwords *def = fttok_stopwords_default();
    assert_int_equal(fttok_stopwords_count(def), 33);
    const char *all[] = { "a", "is", "the", "an", "and", "are", "as", "at", "be", "but", "by",
                          "for", "if", "in", "into", "it", "no", "not", "of", "on", "or", "such",
                          "that", "their", "then", "there", "these", "they", "this", "to", "was",
                          "will", "with" };
    for (size_t i = 0; i < 33; i++) assert_true(fttok_stopwords_has(def, all[i], strlen(all[i])));
    assert_false(fttok_stopwords_has(def, "hello", 5));
    assert_false(fttok_stopwords_has(def, "th", 2));
    const char *w[] = { "Foo", "bar", "foo" };
    size_t l[] = { 3, 3, 3 };
    fttok_stopwords *sw = fttok_stopwords_new(w, l, 3);
    assert_non_null(sw);
    assert_int_equal(fttok_stopwords_count(sw), 2);
    assert_true(fttok_stopwords_has(sw, "foo", 3));
    assert_false(fttok_stopwords_has(sw, "the", 3));
    size_t len;
    assert_memory_equal(fttok_stopwords_word(sw, 0, &len), "bar", 3);
    assert_true(fttok_stopwords_memory(sw) > 0);
    fttok_stopwords_free(sw);
    fttok_stopwords *none = fttok_stopwords_new(NULL, NULL, 0);
    assert_int_equal(fttok_stopwords_count(none), 0);
    assert_false(fttok_stopwords_has(none, "a", 1));
    fttok_stopwords_free(none);
    fttok_stopwords_free((fttok_stopwords *)def); /* the default list: a no-op */
}

static void test_normalize_query(void **state)
{
    (void)state;
    char s[] = "Hello\\-World\\ X\\y";
    size_t n = fttok_normalize_query(s, strlen(s));
    assert_int_equal(n, 15);
    assert_memory_equal(s, "hello-world x\\y", 15);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stem_pairs),
        cmocka_unit_test(test_stem_in_place_and_utf8),
        cmocka_unit_test(test_tokenizer),
        cmocka_unit_test(test_tokenizer_nul_and_positions),
        cmocka_unit_test(test_stopwords),
        cmocka_unit_test(test_normalize_query),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
