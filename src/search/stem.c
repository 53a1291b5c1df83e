/* stem.c -- the Snowball English (Porter2) stemmer (contract in stem.h).
 *
 * Written from the algorithm's published description (snowballstem.org,
 * "The English (Porter2) stemming algorithm", and its english.sbl), the
 * version RediSearch bundles (libstemmer's "english").  No code copied.
 *
 * Letters: a e i o u y are vowels; 'Y' (a y the prelude marked as a
 * consonant) and every byte >= 0x80 are not.  The word is worked on in the
 * output buffer, which never grows (no step lengthens the word it was
 * given).  Positions are byte offsets; where the algorithm moves by
 * letters ("fewer than 3 letters", hop 2, next) a UTF-8 character counts
 * as one, as libstemmer's UTF-8 build does.
 *
 * The steps, in order:
 *   0. Whole-word exceptions (skis ski, skies sky, dying die, lying lie,
 *      tying tie, idly idl, gently gentl, ugly ugli, early earli, only
 *      onli, singly singl; sky news howe atlas cosmos bias andes stay);
 *      words of fewer than 3 letters stay.
 *   1. Prelude: drop a leading apostrophe; a y at the start or after a
 *      vowel becomes Y.
 *   2. Regions: R1 starts after the first non-vowel that follows a vowel
 *      (or after a leading gener / commun / arsen); R2 is the same rule
 *      applied again inside R1.  Empty when the rule finds nothing.
 *   3. Step 1a: ' 's 's' go; sses -> ss; ied/ies -> i after 2+ letters,
 *      else ie; s goes when a vowel stands before the letter before it;
 *      us and ss stay.  Then inning outing canning herring earring proceed
 *      exceed succeed are left as they are.
 *   4. Step 1b: eed/eedly -> ee in R1; ed edly ing ingly go when a vowel
 *      precedes them, then at/bl/iz take an e, a double (bb dd ff gg mm nn
 *      pp rr tt) loses its last letter, and a short word takes an e.
 *   5. Step 1c: a final y/Y after a non-vowel that is not the first letter
 *      becomes i.
 *   6. Steps 2 and 3 (suffix in R1) and 4 (suffix in R2): the longest
 *      listed suffix the word ends with is found first, and only then its
 *      condition tested: when the condition fails, no shorter suffix is
 *      tried (Snowball's `among`).
 *   7. Step 5: a final e goes in R2, or in R1 when no short syllable
 *      precedes it; a final l goes in R2 after another l.
 *   8. Y back to y.
 * Tests: tests/unit/search/test_stem.c (the published sample vocabulary's
 * pairs and every rule's own examples). */
#include "engram/stem.h"

#include <string.h>

typedef struct word {
    char *s;
    size_t n;  /* bytes */
    size_t p1; /* R1 starts here (n: empty) */
    size_t p2;
} word;

static int is_v(char c)
{
    return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u' || c == 'y';
}

/* Start of the character that ends just before byte i (i > 0). */
static size_t back1(const char *s, size_t i)
{
    do i--;
    while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80);
    return i;
}

/* Start of the character after the one starting at byte i (i < n). */
static size_t fwd1(const char *s, size_t n, size_t i)
{
    do i++;
    while (i < n && ((unsigned char)s[i] & 0xC0) == 0x80);
    return i;
}

static size_t nchars(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

static int ends(const word *w, const char *suf)
{
    size_t l = strlen(suf);
    return l <= w->n && memcmp(w->s + w->n - l, suf, l) == 0;
}

/* Replace the last `cut` bytes by rep. */
static void set_end(word *w, size_t cut, const char *rep)
{
    size_t l = strlen(rep);
    memcpy(w->s + w->n - cut, rep, l);
    w->n = w->n - cut + l;
}

/* The longest of tab's suffixes the word ends with (NULL: none).  tab is
 * pairs of (suffix, replacement), NULL-terminated. */
static const char *const *longest(const word *w, const char *const *tab)
{
    const char *const *best = NULL;
    for (const char *const *t = tab; *t; t += 2)
        if (ends(w, t[0]) && (!best || strlen(t[0]) > strlen(best[0]))) best = t;
    return best;
}

/* From byte i: past the next vowel, then past the next non-vowel; n if
 * either is missing (Snowball's "gopast v gopast non-v"). */
static size_t region_after(const char *s, size_t n, size_t i)
{
    while (i < n && !is_v(s[i])) i = fwd1(s, n, i);
    if (i >= n) return n;
    i++;
    while (i < n && is_v(s[i])) i++;
    if (i >= n) return n;
    return fwd1(s, n, i);
}

static void mark_regions(word *w)
{
    static const char *const pre[] = { "gener", "commun", "arsen" };
    size_t start = 0;
    for (size_t j = 0; j < sizeof pre / sizeof pre[0]; j++) {
        size_t l = strlen(pre[j]);
        if (w->n >= l && memcmp(w->s, pre[j], l) == 0) start = l;
    }
    w->p1 = start ? start : region_after(w->s, w->n, 0);
    w->p2 = w->p1 < w->n ? region_after(w->s, w->n, w->p1) : w->n;
}

/* A short syllable ends at byte e: non-vowel (not w, x, Y), vowel,
 * non-vowel; or, at the word's start, vowel then non-vowel. */
static int shortv(const char *s, size_t e)
{
    if (e < 2) return 0;
    size_t c = back1(s, e);
    if (is_v(s[c]) || c == 0) return 0;
    if (!is_v(s[c - 1])) return 0;
    size_t v = c - 1; /* vowels are single bytes */
    if (v == 0) return 1;
    char last = s[c];
    if (last == 'w' || last == 'x' || last == 'Y') return 0;
    return !is_v(s[back1(s, v)]);
}

static int has_vowel(const char *s, size_t end)
{
    for (size_t i = 0; i < end; i++)
        if (is_v(s[i])) return 1;
    return 0;
}

static void step_1a(word *w)
{
    if (ends(w, "'s'")) w->n -= 3;
    else if (ends(w, "'s")) w->n -= 2;
    else if (ends(w, "'")) w->n -= 1;
    if (ends(w, "sses")) {
        w->n -= 2;
    } else if (ends(w, "ied") || ends(w, "ies")) {
        size_t before = w->n - 3;
        set_end(w, 3, nchars(w->s, before) >= 2 ? "i" : "ie");
    } else if (ends(w, "us") || ends(w, "ss")) {
        /* stays */
    } else if (ends(w, "s") && w->n >= 2) {
        size_t prev = back1(w->s, w->n - 1);
        if (has_vowel(w->s, prev)) w->n--;
    }
}

static int exception2(const word *w)
{
    static const char *const ex[] = { "inning", "outing", "canning", "herring",
                                      "earring", "proceed", "exceed", "succeed" };
    for (size_t j = 0; j < sizeof ex / sizeof ex[0]; j++)
        if (strlen(ex[j]) == w->n && memcmp(ex[j], w->s, w->n) == 0) return 1;
    return 0;
}

static void step_1b(word *w)
{
    static const char *const tab[] = { "eed", "ee", "eedly", "ee", "ed", "", "edly", "",
                                       "ing", "", "ingly", "", NULL };
    const char *const *t = longest(w, tab);
    if (!t) return;
    size_t l = strlen(t[0]), at = w->n - l;
    if (t[1][0]) { /* eed, eedly */
        if (at >= w->p1) set_end(w, l, "ee");
        return;
    }
    if (!has_vowel(w->s, at)) return;
    w->n = at;
    if (ends(w, "at") || ends(w, "bl") || ends(w, "iz")) {
        w->s[w->n++] = 'e';
    } else if (w->n >= 2 && w->s[w->n - 1] == w->s[w->n - 2] &&
               strchr("bdfgmnprt", w->s[w->n - 1])) {
        w->n--;
    } else if (w->n == w->p1 && shortv(w->s, w->n)) {
        w->s[w->n++] = 'e';
    }
}

static void step_1c(word *w)
{
    if (w->n < 2) return;
    char c = w->s[w->n - 1];
    if (c != 'y' && c != 'Y') return;
    size_t prev = back1(w->s, w->n - 1);
    if (is_v(w->s[prev]) || prev == 0) return;
    w->s[w->n - 1] = 'i';
}

/* Steps 2 and 3: the longest suffix in tab, replaced when it starts in R1
 * (and its extra condition holds). */
static void step_r1(word *w, const char *const *tab)
{
    const char *const *t = longest(w, tab);
    if (!t) return;
    size_t l = strlen(t[0]), at = w->n - l;
    if (at < w->p1) return;
    if (strcmp(t[0], "ogi") == 0 && (at == 0 || w->s[at - 1] != 'l')) return;
    if (strcmp(t[0], "li") == 0 && (at == 0 || !strchr("cdeghkmnrt", w->s[at - 1]))) return;
    if (strcmp(t[0], "ative") == 0 && at < w->p2) return;
    set_end(w, l, t[1]);
}

static const char *const step2_tab[] = {
    "tional", "tion", "enci", "ence", "anci", "ance", "abli", "able", "entli", "ent",
    "izer", "ize", "ization", "ize", "ational", "ate", "ation", "ate", "ator", "ate",
    "alism", "al", "aliti", "al", "alli", "al", "fulness", "ful", "ousli", "ous",
    "ousness", "ous", "iveness", "ive", "iviti", "ive", "biliti", "ble", "bli", "ble",
    "ogi", "og", "fulli", "ful", "lessli", "less", "li", "", NULL
};

static const char *const step3_tab[] = {
    "tional", "tion", "ational", "ate", "alize", "al", "icate", "ic", "iciti", "ic",
    "ical", "ic", "ful", "", "ness", "", "ative", "", NULL
};

static void step_4(word *w)
{
    static const char *const tab[] = {
        "al", "", "ance", "", "ence", "", "er", "", "ic", "", "able", "", "ible", "",
        "ant", "", "ement", "", "ment", "", "ent", "", "ism", "", "ate", "", "iti", "",
        "ous", "", "ive", "", "ize", "", "ion", "", NULL
    };
    const char *const *t = longest(w, tab);
    if (!t) return;
    size_t l = strlen(t[0]), at = w->n - l;
    if (at < w->p2) return;
    if (strcmp(t[0], "ion") == 0 && (at == 0 || (w->s[at - 1] != 's' && w->s[at - 1] != 't')))
        return;
    w->n = at;
}

static void step_5(word *w)
{
    if (w->n == 0) return;
    size_t at = w->n - 1;
    if (w->s[at] == 'e') {
        if (at >= w->p2 || (at >= w->p1 && !shortv(w->s, at))) w->n = at;
    } else if (w->s[at] == 'l') {
        if (at >= w->p2 && at > 0 && w->s[at - 1] == 'l') w->n = at;
    }
}

/* 1 and the stem in *w when the whole word is an exception. */
static int exception1(word *w)
{
    static const char *const tab[] = {
        "skis", "ski", "skies", "sky", "dying", "die", "lying", "lie", "tying", "tie",
        "idly", "idl", "gently", "gentl", "ugly", "ugli", "early", "earli", "only", "onli",
        "singly", "singl", "sky", "sky", "news", "news", "howe", "howe", "atlas", "atlas",
        "cosmos", "cosmos", "bias", "bias", "andes", "andes", NULL
    };
    for (const char *const *t = tab; *t; t += 2)
        if (strlen(t[0]) == w->n && memcmp(t[0], w->s, w->n) == 0) {
            w->n = strlen(t[1]);
            memcpy(w->s, t[1], w->n);
            return 1;
        }
    return 0;
}

size_t stem_english(const char *src, size_t len, char *out)
{
    if (out != src) memmove(out, src, len);
    word w = { .s = out, .n = len };
    if (exception1(&w) || nchars(w.s, w.n) < 3) return w.n;
    if (w.s[0] == '\'') memmove(w.s, w.s + 1, --w.n);
    for (size_t i = 0; i < w.n; i++)
        if (w.s[i] == 'y' && (i == 0 || is_v(w.s[i - 1]))) w.s[i] = 'Y';
    mark_regions(&w);
    step_1a(&w);
    if (!exception2(&w)) {
        step_1b(&w);
        step_1c(&w);
        step_r1(&w, step2_tab);
        step_r1(&w, step3_tab);
        step_4(&w);
        step_5(&w);
    }
    for (size_t i = 0; i < w.n; i++)
        if (w.s[i] == 'Y') w.s[i] = 'y';
    return w.n;
}
