/* dist_cpu_none.c -- the probe for platforms without one (see dist_cpu.h):
 * no optional feature, so only variants that need none (scalar; NEON on an
 * aarch64 OS we cannot ask) are ever chosen. */
#include "dist_cpu.h"

unsigned dist_cpu_detect(void)
{
    return 0;
}
