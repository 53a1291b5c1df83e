/* crc32c.h -- CRC-32C (Castagnoli), the checksum that frames every
 * write-ahead-log record and snapshot section.
 *
 * The polynomial is 0x1EDC6F41 (reflected 0x82F63B78), initial value and
 * final xor 0xFFFFFFFF, reflected in and out: the iSCSI (RFC 3720) CRC, the
 * one SSE4.2 `crc32` and ARMv8 `crc32c*` compute.  The pre/post inversion is
 * done inside crc32c(), so callers chain plain values:
 *
 *     crc32c(0, "123456789", 9) == 0xE3069283
 *     crc32c(crc32c(0, a, n), b, m) == crc32c(0, a || b, n + m)
 *
 * Implementations: "table" (slicing-by-8, always present), "sse42" (x86-64
 * builds, CPUs with SSE4.2), "armv8" (aarch64 builds, CPUs with the CRC32
 * extension).  All give bit-identical results; only speed differs.
 *
 * Threads: crc32c() is pure and may run on any thread at any time.  If
 * nobody calls crc32c_select(), the first crc32c() call picks the best
 * implementation the CPU supports; that first-use choice is race-free.
 * crc32c_select() is meant to run once at start-up, before other threads. */
#ifndef ENGRAM_CRC32C_H
#define ENGRAM_CRC32C_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The CRC-32C of buf[0..len) continuing from crc (0 to start).
 * buf may be NULL when len is 0.  Returns the new CRC; cannot fail. */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

/* Make name the implementation crc32c() uses: "auto" (the best the CPU
 * has), "sse42", "armv8" or "table".
 * Returns 0; -EINVAL if name is NULL or unknown; -ENOTSUP if that
 * implementation is not compiled into this binary or the CPU lacks it
 * (the current choice is then left unchanged).
 * Threads: call before other threads use crc32c(). */
int crc32c_select(const char *name);

/* The name of the implementation in use ("sse42", "armv8" or "table");
 * a static string, valid for the life of the process.  Triggers the
 * first-use choice if none was made yet. */
const char *crc32c_impl_name(void);

/* Direct access for tests and benchmarks.
 * Returns the named implementation ("sse42", "armv8", "table"; not
 * "auto"), or NULL if the name is unknown, the implementation is not
 * compiled in, or the CPU lacks it.  The function has crc32c()'s contract. */
typedef uint32_t crc32c_fn(uint32_t crc, const void *buf, size_t len);
crc32c_fn *crc32c_impl(const char *name);

#ifdef __cplusplus
}
#endif

#endif /* ENGRAM_CRC32C_H */
