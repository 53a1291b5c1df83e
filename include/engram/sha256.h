/* sha256.h -- SHA-256 (FIPS 180-4), for ACL passwords: users' passwords are
 * kept and compared as digests (ACL GETUSER shows them in hex, as Redis).
 * Plain C, no state beyond the context; any thread. */
#ifndef ENGRAM_SHA256_H
#define ENGRAM_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct sha256_ctx {
    uint32_t h[8];
    uint64_t len;            /* bytes hashed so far */
    unsigned char buf[64];
    size_t nbuf;
} sha256_ctx;

void sha256_init(sha256_ctx *c);
void sha256_update(sha256_ctx *c, const void *p, size_t n);
void sha256_final(sha256_ctx *c, unsigned char out[32]);
/* One call: the digest of n bytes at p. */
void sha256(const void *p, size_t n, unsigned char out[32]);
/* The digest as 64 lower-case hex digits and a NUL. */
void sha256_hex(const void *p, size_t n, char out[65]);

#endif
