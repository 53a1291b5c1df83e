/* dist_cpu_arm_linux.c -- aarch64 features from the Linux kernel (see
 * dist_cpu.h).
 *
 * The ID registers that describe optional instructions (ID_AA64ISAR0_EL1
 * for dotprod) are not readable from user space on every kernel, but the
 * kernel publishes what it found in the auxiliary vector: AT_HWCAP bit 20
 * (HWCAP_ASIMDDP) is FEAT_DotProd, the SDOT/UDOT instructions.  qemu-user
 * fills the same vector from its emulated CPU model, which is how the tests
 * see dotprod both present (-cpu max) and absent (-cpu cortex-a72). */
#include "dist_cpu.h"

#include <sys/auxv.h>

#include "engram/dist.h"

#define DIST_HWCAP_ASIMDDP (1ul << 20) /* <asm/hwcap.h>; spelled out for old headers */

unsigned dist_cpu_detect(void)
{
    unsigned long hwcap = getauxval(AT_HWCAP);
    return (hwcap & DIST_HWCAP_ASIMDDP) ? DIST_CPU_DOTPROD : 0u;
}
