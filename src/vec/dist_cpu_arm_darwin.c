/* dist_cpu_arm_darwin.c -- aarch64 features from macOS (see dist_cpu.h).
 *
 * macOS 12 and later publish each Arm feature as a sysctl
 * hw.optional.arm.FEAT_<name> holding 0 or 1; FEAT_DotProd is SDOT/UDOT.
 * Every Apple M-series core has it, but older systems lack the name, and
 * then we report nothing: the kernel without dotprod is correct
 * everywhere, just slower. */
#include "dist_cpu.h"

#include <stddef.h>
#include <sys/sysctl.h>
#include <sys/types.h>

#include "engram/dist.h"

static int dist_sysctl_flag(const char *name)
{
    int value = 0;
    size_t len = sizeof value;
    if (sysctlbyname(name, &value, &len, NULL, 0) != 0) return 0;
    return len == sizeof value && value != 0;
}

unsigned dist_cpu_detect(void)
{
    return dist_sysctl_flag("hw.optional.arm.FEAT_DotProd") ? DIST_CPU_DOTPROD : 0u;
}
