/* lfu.h -- the access clocks eviction reads: Redis's approximated LRU and
 * LFU, squeezed into the 16 bits a keyspace entry spares (kv_clock).
 *
 * LRU: the clock is the time of the last access in seconds, modulo 2^16
 * (Redis keeps 24 bits).  Idle time is the difference modulo 2^16, so a key
 * idle longer than 18.2 hours looks idle for that time modulo 18.2 hours:
 * eviction may then prefer a key idle for one hour to one idle for a day.
 *
 * LFU: the high 8 bits are the minute of the last decrement modulo 2^8
 * (Redis keeps 16 bits of minutes), the low 8 the logarithmic counter,
 * exactly Redis's: a new key starts at LFU_INIT (5); an access increments
 * the counter with probability 1 / ((counter - LFU_INIT) * lfu-log-factor
 * + 1) (always below LFU_INIT, never past 255); before each access and
 * when eviction reads it, the counter loses one per lfu-decay-time minutes
 * elapsed since the stored minute.  Elapsed minutes are counted modulo
 * 256, so a key untouched for more than 4 h 16 min decays by less than
 * Redis's would (by the elapsed time modulo 256 minutes).
 *
 * Pure arithmetic: no state, any thread. */
#ifndef ENGRAM_LFU_H
#define ENGRAM_LFU_H

#include <stdint.h>

#define LFU_INIT 5

/* The LRU clock of wall time now_ms. */
static inline uint16_t lru_clock(int64_t now_ms) { return (uint16_t)((uint64_t)now_ms / 1000); }

/* Seconds since clock clk, at clock now (modulo 2^16). */
static inline uint32_t lru_idle(uint16_t now, uint16_t clk) { return (uint16_t)(now - clk); }

/* The LFU minute of wall time now_ms (modulo 2^8). */
static inline uint8_t lfu_minute(int64_t now_ms) { return (uint8_t)((uint64_t)now_ms / 60000); }

static inline uint16_t lfu_pack(uint8_t minute, uint8_t counter)
{
    return (uint16_t)((unsigned)minute << 8 | counter);
}
static inline uint8_t lfu_counter(uint16_t clk) { return (uint8_t)(clk & 0xff); }

/* The counter of clk decayed to minute now: one less per decay_time
 * minutes elapsed (decay_time 0: no decay).  Redis's LFUDecrAndReturn. */
uint8_t lfu_decayed(uint16_t clk, uint8_t now, int decay_time);

/* The counter after one access: incremented with probability
 * 1 / ((counter - LFU_INIT) * log_factor + 1), r being uniform in [0, 1)
 * (the caller's random draw, so tests can fix it).  Redis's LFULogIncr. */
uint8_t lfu_log_incr(uint8_t counter, int log_factor, double r);

/* The clock after an access at minute now: decayed, then incremented
 * (Redis's updateLFU). */
static inline uint16_t lfu_touch(uint16_t clk, uint8_t now, int decay_time, int log_factor,
                                 double r)
{
    return lfu_pack(now, lfu_log_incr(lfu_decayed(clk, now, decay_time), log_factor, r));
}

#endif
