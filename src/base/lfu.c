/* lfu.c -- Redis's logarithmic LFU counter (contract in lfu.h). */
#include "engram/lfu.h"

uint8_t lfu_decayed(uint16_t clk, uint8_t now, int decay_time)
{
    uint8_t counter = lfu_counter(clk);
    if (decay_time <= 0) return counter;
    unsigned elapsed = (uint8_t)(now - (uint8_t)(clk >> 8));
    unsigned periods = elapsed / (unsigned)decay_time;
    return periods >= counter ? 0 : (uint8_t)(counter - periods);
}

uint8_t lfu_log_incr(uint8_t counter, int log_factor, double r)
{
    if (counter == 255) return 255;
    double base = (double)counter - LFU_INIT;
    if (base < 0) base = 0;
    double p = 1.0 / (base * log_factor + 1);
    return r < p ? (uint8_t)(counter + 1) : counter;
}
