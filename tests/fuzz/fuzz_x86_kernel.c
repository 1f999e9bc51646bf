/* Kernel images are user input a VMM must not trust: run a fuzzed file
 * through the bzImage and ELF parsers and, when one accepts it, build the
 * zero page from it as vessel would. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "x86/boot.h"
#include "x86/layout.h"

static const struct x86_ram_layout *ram_of(uint64_t size)
{
    static struct x86_ram_layout l;
    x86_ram_layout(size, &l);
    return &l;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vs_err err;
    static uint8_t zp[BP_SIZE];
    struct x86_e820_entry e820[8];
    unsigned ne = x86_e820_build(ram_of(256ULL << 20), e820, 8);
    if (x86_is_elf(data, size)) {
        struct x86_elf elf;
        if (x86_elf_parse(data, size, &elf, &err) == 0) {
            /* Every segment lies inside the file as parsed. */
            for (unsigned i = 0; i < elf.nsegs; i++)
                if (elf.segs[i].offset + elf.segs[i].filesz > size)
                    __builtin_trap();
        }
        return 0;
    }
    struct x86_bzimage bz;
    if (x86_bzimage_parse(data, size, &bz, &err) < 0)
        return 0;
    if (bz.kernel_offset + bz.kernel_size > size || bz.hdr_end > size)
        __builtin_trap();
    struct x86_boot_params_in in = {.image = data,
                                    .bz = &bz,
                                    .cmdline_addr = X86_CMDLINE_ADDR,
                                    .cmdline_len = 16,
                                    .e820 = e820,
                                    .ne820 = ne,
                                    .rsdp_addr = X86_ACPI_ADDR};
    x86_boot_params_build(zp, &in, &err);
    uint64_t addr;
    x86_initrd_place(1 << 20, 0x100000 + bz.init_size, (uint64_t)bz.initrd_addr_max + 1,
                     256ULL << 20, &addr, &err);
    return 0;
}
