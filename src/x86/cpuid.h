/* The CPUID a vCPU sees: KVM_GET_SUPPORTED_CPUID, with the topology made
 * per vCPU (APIC IDs in leaf 1, 0xB, 0x1F, 0x8000001E; core counts in leaf 4
 * and 0x80000008), the hypervisor bit and the KVM paravirt leaves. A pure
 * function over an entry array so it is unit-testable. */
#ifndef VESSEL_X86_CPUID_H
#define VESSEL_X86_CPUID_H

#include <stdint.h>

struct x86_cpuid_entry {
    uint32_t function, index, flags;
    uint32_t eax, ebx, ecx, edx;
};
#define X86_CPUID_FLAG_SIGNIFICANT_INDEX 1 /* KVM_CPUID_FLAG_SIGNIFICANT_INDEX */

/* Rewrite e[0..n) in place for vCPU apic_id of ncpus (one socket, one
 * thread per core). */
void x86_cpuid_patch(struct x86_cpuid_entry *e, unsigned n, unsigned apic_id, unsigned ncpus);
struct x86_cpuid_entry *x86_cpuid_find(struct x86_cpuid_entry *e, unsigned n, uint32_t function,
                                       uint32_t index);

#endif
