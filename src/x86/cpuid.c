#include "x86/cpuid.h"

#include <cpuid.h>
#include <stddef.h>

struct x86_cpuid_entry *x86_cpuid_find(struct x86_cpuid_entry *e, unsigned n, uint32_t function,
                                       uint32_t index)
{
    for (unsigned i = 0; i < n; i++) {
        if (e[i].function != function)
            continue;
        if ((e[i].flags & X86_CPUID_FLAG_SIGNIFICANT_INDEX) && e[i].index != index)
            continue;
        return &e[i];
    }
    return NULL;
}

/* Bits needed to number n things. */
static unsigned order(unsigned n)
{
    unsigned b = 0;
    while ((1u << b) < n)
        b++;
    return b;
}

static void topology_leaf(struct x86_cpuid_entry *t, unsigned apic_id, unsigned ncpus)
{
    /* Subleaf 0: SMT (1 thread per core), subleaf 1: core level, rest
     * invalid. EDX is always the x2APIC ID. */
    switch (t->index) {
    case 0:
        t->eax = 0;
        t->ebx = 1;
        t->ecx = 1u << 8;
        break;
    case 1:
        t->eax = order(ncpus);
        t->ebx = ncpus;
        t->ecx = 2u << 8 | 1;
        break;
    default:
        t->eax = t->ebx = 0;
        t->ecx = t->index & 0xff;
        break;
    }
    t->edx = apic_id;
}

void x86_cpuid_patch(struct x86_cpuid_entry *e, unsigned n, unsigned apic_id, unsigned ncpus)
{
    for (unsigned i = 0; i < n; i++) {
        struct x86_cpuid_entry *t = &e[i];
        switch (t->function) {
        case 1:
            t->ebx = (t->ebx & 0x0000ffffu) | (apic_id & 0xff) << 24 | (ncpus & 0xff) << 16;
            t->ecx |= 1u << 31; /* running under a hypervisor */
            if (ncpus > 1)
                t->edx |= 1u << 28; /* HTT: the count in EBX[23:16] is valid */
            else
                t->edx &= ~(1u << 28);
            break;
        case 4: {
            /* Deterministic cache parameters (Intel). Cores per package in
             * EAX[31:26]; an L3 (level 3) is shared by every core, lower
             * levels by one. */
            if (!(t->eax & 0x1f))
                break; /* no more caches */
            unsigned level = (t->eax >> 5) & 7;
            uint32_t sharing = level >= 3 ? ncpus - 1 : 0;
            t->eax = (t->eax & 0x3ff) | (sharing & 0xfff) << 14 | ((ncpus - 1) & 0x3f) << 26;
            break;
        }
        case 0xb:
        case 0x1f:
            topology_leaf(t, apic_id, ncpus);
            break;
        case 0x40000000:
            t->eax = 0x40000001;
            t->ebx = 0x4b4d564b; /* "KVMK" */
            t->ecx = 0x564b4d56; /* "VMKV" */
            t->edx = 0x0000004d; /* "M\0\0\0" */
            break;
        case 0x80000001:
            /* CmpLegacy: cores are counted in 0x80000008 (AMD). */
            if (ncpus > 1)
                t->ecx |= 1u << 1;
            else
                t->ecx &= ~(1u << 1);
            break;
        case 0x80000008:
            t->ecx = (t->ecx & ~0xf0ffu) | ((ncpus - 1) & 0xff) | order(ncpus) << 12;
            break;
        case 0x8000001e:
            t->eax = apic_id;
            t->ebx = apic_id & 0xff; /* core id; one thread per core */
            t->ecx = 0;
            break;
        }
    }
}

void x86_cpuid_add_extras(struct x86_cpuid_entry *e, unsigned n, const struct x86_cpuid_extras *x)
{
    for (unsigned i = 0; i < n; i++) {
        struct x86_cpuid_entry *t = &e[i];
        if (t->function == 1 && x->tsc_deadline)
            t->ecx |= 1u << 24;
        if (t->function >= 0x80000002 && t->function <= 0x80000004 && x->brand) {
            const uint32_t *w = x->brand + 4 * (t->function - 0x80000002);
            t->eax = w[0];
            t->ebx = w[1];
            t->ecx = w[2];
            t->edx = w[3];
        }
    }
}

bool x86_cpuid_host_brand(uint32_t brand[12])
{
    unsigned a, b, c, d;
    if (!__get_cpuid(0x80000000, &a, &b, &c, &d) || a < 0x80000004)
        return false;
    for (unsigned i = 0; i < 3; i++)
        __cpuid(0x80000002 + i, brand[4 * i], brand[4 * i + 1], brand[4 * i + 2], brand[4 * i + 3]);
    return brand[0] != 0;
}
