/* dist_cpu.h -- the private seam between dist.c and the platform's CPU
 * probe.  CMake compiles exactly one file defining dist_cpu_detect():
 *   dist_cpu_x86.c         x86-64, any OS: CPUID and XGETBV;
 *   dist_cpu_arm_linux.c   aarch64 Linux: the kernel's HWCAP bits;
 *   dist_cpu_arm_darwin.c  aarch64 macOS: sysctl hw.optional.arm.*;
 *   dist_cpu_none.c        anything else: no optional feature.
 * so dist.c never branches on the OS, and no probe executes an instruction
 * the CPU might lack. */
#ifndef ENGRAM_DIST_CPU_H
#define ENGRAM_DIST_CPU_H

/* The DIST_CPU_* bits (dist.h) this CPU and OS offer.  Pure apart from
 * asking the hardware or the kernel; any thread; cheap enough to call per
 * selection (a few CPUID instructions or one system call), not per
 * distance. */
unsigned dist_cpu_detect(void);

#endif
