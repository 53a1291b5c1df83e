/* le.h -- little-endian integers in byte buffers, for the on-disk formats
 * (write-ahead log, snapshots).  Byte by byte, so unaligned buffers and
 * big-endian hosts are fine; compilers turn these into single moves. */
#ifndef ENGRAM_LE_H
#define ENGRAM_LE_H

#include <stdint.h>
#include <string.h>

static inline void le_put16(void *d, uint16_t v)
{
    uint8_t *p = d;
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void le_put32(void *d, uint32_t v)
{
    uint8_t *p = d;
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static inline void le_put64(void *d, uint64_t v)
{
    uint8_t *p = d;
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t le_get16(const void *s)
{
    const uint8_t *p = s;
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t le_get32(const void *s)
{
    const uint8_t *p = s;
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static inline uint64_t le_get64(const void *s)
{
    const uint8_t *p = s;
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static inline void le_putf32(void *d, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    le_put32(d, u);
}

static inline float le_getf32(const void *s)
{
    uint32_t u = le_get32(s);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

#endif
