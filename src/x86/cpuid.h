/* The CPUID a vCPU sees: KVM_GET_SUPPORTED_CPUID, with the topology made
 * per vCPU (APIC IDs in leaf 1, 0xB, 0x1F, 0x8000001E; core counts in leaf 4
 * and 0x80000008), the hypervisor bit and the KVM paravirt leaves. A pure
 * function over an entry array so it is unit-testable. */
#ifndef VESSEL_X86_CPUID_H
#define VESSEL_X86_CPUID_H

#include <stdbool.h>
#include <stdint.h>

struct x86_cpuid_entry {
    uint32_t function, index, flags;
    uint32_t eax, ebx, ecx, edx;
};
#define X86_CPUID_FLAG_SIGNIFICANT_INDEX 1 /* KVM_CPUID_FLAG_SIGNIFICANT_INDEX */

/* Rewrite e[0..n) in place for vCPU apic_id of ncpus (one socket, one
 * thread per core). */
void x86_cpuid_patch(struct x86_cpuid_entry *e, unsigned n, unsigned apic_id, unsigned ncpus);
/* What the VMM adds on top of KVM_GET_SUPPORTED_CPUID, as QEMU does: the
 * TSC-deadline timer bit (KVM emulates it but never reports it, api.rst) and
 * the processor brand string (leaves 0x80000002-4, which KVM returns empty;
 * brand NULL leaves them alone). */
struct x86_cpuid_extras {
    bool tsc_deadline;
    const uint32_t *brand; /* 12 words: EAX..EDX of 0x80000002, 3, 4 */
};
void x86_cpuid_add_extras(struct x86_cpuid_entry *e, unsigned n, const struct x86_cpuid_extras *x);
/* The host CPU's brand string words (12), or false without one. */
bool x86_cpuid_host_brand(uint32_t brand[12]);
struct x86_cpuid_entry *x86_cpuid_find(struct x86_cpuid_entry *e, unsigned n, uint32_t function,
                                       uint32_t index);

#endif
