/* test_sha256.c -- SHA-256 against the FIPS 180-4 / NIST test vectors, in
 * one piece and fed in every split, and a password digest Redis shows. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "engram/sha256.h"

static void hex_of(const char *msg, size_t n, char out[65]) { sha256_hex(msg, n, out); }

static void test_vectors(void **state)
{
    (void)state;
    char h[65];
    hex_of("", 0, h);
    assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    hex_of("abc", 3, h);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    hex_of(m, strlen(m), h);
    assert_string_equal(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    const char *m2 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnop"
                     "jklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    hex_of(m2, strlen(m2), h);
    assert_string_equal(h, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
    /* Redis's ACL GETUSER shows this digest for the password "pass" */
    hex_of("pass", 4, h);
    assert_string_equal(h, "d74ff0ee8da3b9806b18c877dbf29bbde50b5bd8e4dad7a3a725000feb82e8f1");
}

/* A million 'a's, fed in uneven pieces. */
static void test_million_and_splits(void **state)
{
    (void)state;
    static char a[1000];
    memset(a, 'a', sizeof a);
    sha256_ctx c;
    sha256_init(&c);
    for (int i = 0; i < 1000; i++) sha256_update(&c, a, 1000);
    unsigned char d[32];
    sha256_final(&c, d);
    static const unsigned char want[32] = {
        0xcd, 0xc7, 0x6e, 0x5c, 0x99, 0x14, 0xfb, 0x92, 0x81, 0xa1, 0xc7, 0xe2, 0x84, 0xd7, 0x3e, 0x67,
        0xf1, 0x80, 0x9a, 0x48, 0xa4, 0x97, 0x20, 0x0e, 0x04, 0x6d, 0x39, 0xcc, 0xc7, 0x11, 0x2c, 0xd0};
    assert_memory_equal(d, want, 32);
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    size_t n = strlen(m);
    unsigned char one[32];
    sha256(m, n, one);
    for (size_t cut = 0; cut <= n; cut++) {
        sha256_init(&c);
        sha256_update(&c, m, cut);
        sha256_update(&c, m + cut, n - cut);
        sha256_final(&c, d);
        assert_memory_equal(d, one, 32);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_million_and_splits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
