/* dist_cpu_x86.c -- x86-64 features from CPUID and XGETBV (see dist_cpu.h).
 *
 *   - "The CPU has AVX" is not enough: the OS must also save the wider
 *     register state on context switches, or the upper halves of the
 *     registers would be silently corrupted.  XGETBV(0) reports what the OS
 *     enabled (XCR0): YMM needs bits 1-2 (SSE, AVX); ZMM additionally needs
 *     bits 5-7 (opmask, ZMM0-15 upper halves, ZMM16-31).  So the AVX2 and
 *     FMA bits are reported only with YMM state, every AVX-512 bit only
 *     with ZMM state.
 *   - Each AVX-512 extension is its own CPUID bit, and a hypervisor may
 *     mask them one by one: AVX512F, BW (leaf 7 EBX), VNNI and VPOPCNTDQ
 *     (leaf 7 ECX) are reported separately and each variant names all it
 *     needs (dist.c).
 *   - This file is compiled without ISA flags: it executes CPUID and XGETBV
 *     only. */
#include "dist_cpu.h"

#include <cpuid.h>

#include "engram/dist.h"

/* CPUID bits, spelled out: older <cpuid.h> lack the newer names. */
#define X86_L1_ECX_FMA (1u << 12)
#define X86_L1_ECX_OSXSAVE (1u << 27)
#define X86_L1_ECX_AVX (1u << 28)
#define X86_L7_EBX_AVX2 (1u << 5)
#define X86_L7_EBX_AVX512F (1u << 16)
#define X86_L7_EBX_AVX512BW (1u << 30)
#define X86_L7_ECX_AVX512VNNI (1u << 11)
#define X86_L7_ECX_AVX512VPOPCNTDQ (1u << 14)

#define X86_XCR0_YMM 0x06u /* XMM | YMM state */
#define X86_XCR0_ZMM 0xE6u /* XMM | YMM | opmask | ZMM_Hi256 | Hi16_ZMM */

/* XCR0 as the OS configured it.  Only valid when CPUID says OSXSAVE. */
static unsigned x86_xcr0(void)
{
    unsigned lo, hi;
    /* Encoded as bytes so assemblers that predate the mnemonic still work. */
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));
    (void)hi;
    return lo;
}

unsigned dist_cpu_detect(void)
{
    unsigned a, b, c, d, ecx1, ebx7 = 0, ecx7 = 0, xcr0 = 0, f = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    ecx1 = c;
    if (ecx1 & X86_L1_ECX_OSXSAVE) xcr0 = x86_xcr0();
    /* __get_cpuid_count checks the highest supported leaf itself. */
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) ebx7 = b, ecx7 = c;

    if ((xcr0 & X86_XCR0_YMM) == X86_XCR0_YMM && (ecx1 & X86_L1_ECX_AVX)) {
        if (ebx7 & X86_L7_EBX_AVX2) f |= DIST_CPU_AVX2;
        if (ecx1 & X86_L1_ECX_FMA) f |= DIST_CPU_FMA;
    }
    if ((xcr0 & X86_XCR0_ZMM) == X86_XCR0_ZMM && (ebx7 & X86_L7_EBX_AVX512F)) {
        f |= DIST_CPU_AVX512F;
        if (ebx7 & X86_L7_EBX_AVX512BW) f |= DIST_CPU_AVX512BW;
        if (ecx7 & X86_L7_ECX_AVX512VNNI) f |= DIST_CPU_AVX512VNNI;
        if (ecx7 & X86_L7_ECX_AVX512VPOPCNTDQ) f |= DIST_CPU_AVX512VPOPCNTDQ;
    }
    return f;
}
