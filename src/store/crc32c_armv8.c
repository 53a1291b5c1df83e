/* crc32c_armv8.c -- CRC-32C with the ARMv8 CRC32 extension (crc32c[bd]).
 *
 * Compiled with -march=armv8-a+crc and only for aarch64 (CMake decides);
 * crc32c.c calls it only where the CPU has the extension (HWCAP_CRC32 on
 * Linux; always on macOS).  Like SSE4.2, the instructions compute the
 * reflected Castagnoli CRC without the pre/post inversion.  aarch64 is
 * little-endian here, so an 8-byte memcpy load is the bytes in stream order.
 *
 * Pure: no state, any thread. */
#include "engram/crc32c.h"

#include <arm_acle.h>
#include <string.h>

/* CMake compiles this file with -march=armv8-a+crc, but zig's clang (the
 * macOS cross build) takes its CPU from -target and ignores -march, so the
 * function names the feature itself.  GCC needs nothing beyond the flag. */
#if defined(__clang__)
#define CRC32C_ARMV8_TARGET __attribute__((target("crc")))
#else
#define CRC32C_ARMV8_TARGET
#endif

crc32c_fn crc32c_armv8;

CRC32C_ARMV8_TARGET
uint32_t crc32c_armv8(uint32_t crc, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    uint32_t c = ~crc;

    while (len && ((uintptr_t)p & 7)) {
        c = __crc32cb(c, *p++);
        len--;
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = __crc32cd(c, w);
        p += 8;
        len -= 8;
    }
    while (len--) c = __crc32cb(c, *p++);
    return ~c;
}
