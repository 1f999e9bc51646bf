/* Does this host offer every CPU feature the snapshotted guest was shown?
 * x86: the snapshot records what the vCPUs' CPUID said for the feature
 * leaves 1.0, 7.0, 0xd.0, 0xd.1 and 0x80000001.0, in that order, as four
 * little-endian u32 each (eax, ebx, ecx, edx; src/x86 writes it); each
 * feature bit set there must be in KVM_GET_SUPPORTED_CPUID here, else the
 * guest would execute instructions the host cannot run. Reached through the
 * machine type's check_cpu_features (vm/machine.h), before a VM exists. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "x86/machine.h"

struct feature_word {
    uint32_t function, index;
    int reg;         /* 0 eax .. 3 edx */
    uint32_t ignore; /* bits the VMM or the guest OS sets itself */
    const char *names[32];
};

/* Only words that are feature bitmaps; names for the common bits. */
static const struct feature_word words[] = {
    {1,
     0,
     2,
     (1u << 27) | (1u << 31) | (1u << 24), /* OSXSAVE, hypervisor, TSC deadline */
     {[0] = "sse3",
      [1] = "pclmulqdq",
      [9] = "ssse3",
      [12] = "fma",
      [13] = "cx16",
      [19] = "sse4.1",
      [20] = "sse4.2",
      [21] = "x2apic",
      [22] = "movbe",
      [23] = "popcnt",
      [25] = "aes",
      [26] = "xsave",
      [28] = "avx",
      [29] = "f16c",
      [30] = "rdrand"}},
    {1,
     0,
     3,
     0,
     {[0] = "fpu",
      [4] = "tsc",
      [5] = "msr",
      [8] = "cx8",
      [9] = "apic",
      [15] = "cmov",
      [23] = "mmx",
      [24] = "fxsr",
      [25] = "sse",
      [26] = "sse2"}},
    {7,
     0,
     1,
     0,
     {[0] = "fsgsbase",
      [3] = "bmi1",
      [5] = "avx2",
      [8] = "bmi2",
      [9] = "erms",
      [16] = "avx512f",
      [17] = "avx512dq",
      [18] = "rdseed",
      [19] = "adx",
      [23] = "clflushopt",
      [29] = "sha",
      [30] = "avx512bw",
      [31] = "avx512vl"}},
    {7,
     0,
     2,
     (1u << 4), /* OSPKE */
     {[1] = "avx512vbmi",
      [5] = "waitpkg",
      [8] = "gfni",
      [9] = "vaes",
      [10] = "vpclmulqdq",
      [22] = "rdpid"}},
    {7, 0, 3, 0, {[4] = "fsrm", [8] = "avx512vp2intersect", [24] = "amx-tile"}},
    {0xd, 0, 0, 0, {[0] = "x87 state", [1] = "sse state", [2] = "avx state", [5] = "avx512 state"}},
    {0xd, 1, 0, 0, {[0] = "xsaveopt", [1] = "xsavec", [3] = "xsaves"}},
    {0x80000001, 0, 2, 0, {[0] = "lahf_lm", [5] = "abm", [6] = "sse4a", [8] = "prefetchw"}},
    {0x80000001,
     0,
     3,
     0,
     {[11] = "syscall", [20] = "nx", [26] = "pdpe1gb", [27] = "rdtscp", [29] = "lm"}},
};

static const char *reg_name[] = {"eax", "ebx", "ecx", "edx"};

static struct kvm_cpuid2 *supported_cpuid(vs_err *err)
{
    cleanup_close int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) {
        vs_error_errno(err, "cannot check the snapshot's CPU features: /dev/kvm");
        return NULL;
    }
    for (unsigned n = 128; n <= 4096; n *= 2) {
        struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(struct kvm_cpuid_entry2));
        if (!c)
            break;
        c->nent = n;
        if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, c) == 0)
            return c;
        int e = errno;
        free(c);
        if (e != E2BIG) {
            errno = e;
            vs_error_errno(err, "KVM_GET_SUPPORTED_CPUID");
            return NULL;
        }
    }
    vs_error(err, ENOMEM, "KVM_GET_SUPPORTED_CPUID: table too large");
    return NULL;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int x86_check_cpu_features(const uint8_t *blob, size_t len, vs_err *err)
{
    if (len == 0)
        return 0;
    static const uint32_t leaves[][2] = {{1, 0}, {7, 0}, {0xd, 0}, {0xd, 1}, {0x80000001, 0}};
    if (len % 16 || len / 16 > ARRAY_SIZE(leaves))
        return vs_error(err, EINVAL, "snapshot CPU feature record is malformed");
    cleanup_free struct kvm_cpuid2 *host = supported_cpuid(err);
    if (!host)
        return -1;
    for (size_t off = 0; off < len; off += 16) {
        const uint8_t *r = blob + off;
        uint32_t fn = leaves[off / 16][0], idx = leaves[off / 16][1];
        for (size_t w = 0; w < sizeof(words) / sizeof(words[0]); w++) {
            if (words[w].function != fn || words[w].index != idx)
                continue;
            uint32_t want = le32(r + 4 * words[w].reg) & ~words[w].ignore;
            uint32_t have = 0;
            for (uint32_t k = 0; k < host->nent; k++) {
                const struct kvm_cpuid_entry2 *e = &host->entries[k];
                if (e->function != fn ||
                    ((e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) && e->index != idx))
                    continue;
                uint32_t regs[4] = {e->eax, e->ebx, e->ecx, e->edx};
                have = regs[words[w].reg];
                break;
            }
            uint32_t missing = want & ~have;
            if (!missing)
                continue;
            int bit = __builtin_ctz(missing);
            const char *name = words[w].names[bit];
            return vs_error(err, ENOTSUP,
                            "snapshot needs CPU feature %s (CPUID 0x%x.%u %s bit %d), which this "
                            "host's KVM does not offer",
                            name ? name : "(unnamed)", fn, idx, reg_name[words[w].reg], bit);
        }
    }
    return 0;
}
