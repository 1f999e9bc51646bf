#include "riscv/loader.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "util/cleanup.h"
#include "util/io.h"

#define MIB (1024.0 * 1024.0)

/* "300.0 MiB", "12.5 KiB", "188 bytes": sizes in messages people read */
static const char *human(uint64_t n, char *buf, size_t len)
{
    if (n >= 1024 * 1024)
        snprintf(buf, len, "%.1f MiB", n / MIB);
    else if (n >= 1024)
        snprintf(buf, len, "%.1f KiB", n / 1024.0);
    else
        snprintf(buf, len, "%llu bytes", (unsigned long long)n);
    return buf;
}

int rv_read_file(const char *path, const char *what, uint8_t **data, size_t *len, vs_err *err)
{
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0)
        return vs_error_errno(err, "%s %s", what, path);
    if (fstat(fd, &st) < 0)
        return vs_error_errno(err, "%s %s", what, path);
    if (!S_ISREG(st.st_mode))
        return vs_error(err, EINVAL, "%s %s: not a regular file", what, path);
    if (st.st_size == 0)
        return vs_error(err, EINVAL, "%s %s: file is empty", what, path);
    /* nothing the board loads is bigger than its largest RAM */
    if ((uint64_t)st.st_size > (64ull << 30))
        return vs_error(err, EFBIG, "%s %s: file is too large", what, path);
    uint8_t *buf = malloc((size_t)st.st_size);
    if (!buf)
        return vs_error(err, ENOMEM, "%s %s: out of memory", what, path);
    int r = vs_pread_full(fd, buf, (size_t)st.st_size, 0);
    if (r < 0) {
        free(buf);
        return r == -EIO ? vs_error(err, EIO, "%s %s: file shrank while reading", what, path)
                         : vs_error_errno(err, "%s %s: read", what, path);
    }
    *data = buf;
    *len = (size_t)st.st_size;
    return 0;
}

static bool in_ram(const struct rv_ram *ram, uint64_t addr, uint64_t len)
{
    return addr >= ram->base && len <= ram->size && addr - ram->base <= ram->size - len;
}

int rv_load_blob(const struct rv_ram *ram, uint64_t addr, const void *data, size_t len,
                 const char *what, vs_err *err)
{
    char hb[32];
    if (!in_ram(ram, addr, len))
        return vs_error(err, EFBIG, "%s (%s at 0x%llx) does not fit in RAM (%.0f MiB at 0x%llx)",
                        what, human(len, hb, sizeof(hb)), (unsigned long long)addr, ram->size / MIB,
                        (unsigned long long)ram->base);
    memcpy(ram->host + (addr - ram->base), data, len);
    return 0;
}

static const char *machine_name(unsigned m)
{
    switch (m) {
    case EM_X86_64:
        return "x86-64";
    case EM_386:
        return "i386";
    case EM_AARCH64:
        return "AArch64";
    case EM_ARM:
        return "ARM";
    case EM_PPC64:
        return "PowerPC64";
    case EM_S390:
        return "s390";
    case EM_MIPS:
        return "MIPS";
    default:
        return NULL;
    }
}

int rv_elf_parse(struct rv_elf *e, const uint8_t *d, size_t len, const char *what, const char *arch,
                 vs_err *err)
{
    memset(e, 0, sizeof(*e));
    if (len < SELFMAG || memcmp(d, ELFMAG, SELFMAG))
        return vs_error(err, ENOEXEC, "%s: not an ELF file", what);
    if (len < EI_NIDENT || d[EI_CLASS] != ELFCLASS64 || d[EI_DATA] != ELFDATA2LSB) {
        if (len >= sizeof(Elf32_Ehdr) && d[EI_CLASS] == ELFCLASS32) {
            const Elf32_Ehdr *e32 = (const void *)d;
            const char *m = machine_name(e32->e_machine);
            if (e32->e_machine != EM_RISCV)
                return vs_error(err, ENOEXEC, "%s is a 32-bit %s ELF, not a %s ELF", what,
                                m ? m : "non-RISC-V", arch);
            return vs_error(err, ENOEXEC, "%s is a 32-bit RISC-V ELF, not a 64-bit %s ELF", what,
                            arch);
        }
        return vs_error(err, ENOEXEC, "%s: not a 64-bit little-endian ELF", what);
    }
    if (len < sizeof(Elf64_Ehdr))
        return vs_error(err, ENOEXEC, "%s: truncated ELF header", what);
    Elf64_Ehdr *eh = &e->eh;
    memcpy(eh, d, sizeof(*eh));
    if (eh->e_machine != EM_RISCV) {
        const char *m = machine_name(eh->e_machine);
        if (m)
            return vs_error(err, ENOEXEC, "%s is an %s ELF, not a %s ELF", what, m, arch);
        return vs_error(err, ENOEXEC, "%s is not a %s ELF (e_machine %u)", what, arch,
                        eh->e_machine);
    }
    if (eh->e_type != ET_EXEC && eh->e_type != ET_DYN)
        return vs_error(err, ENOEXEC, "%s: ELF is not an executable (type %u)", what, eh->e_type);
    if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 || eh->e_phoff > len ||
        (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > len - eh->e_phoff)
        return vs_error(err, ENOEXEC, "%s: bad ELF program headers", what);
    e->data = d;
    e->len = len;
    return 0;
}

void rv_elf_phdr(const struct rv_elf *e, unsigned i, Elf64_Phdr *ph)
{
    memcpy(ph, e->data + e->eh.e_phoff + (size_t)i * sizeof(*ph), sizeof(*ph));
}

int rv_elf_load(const struct rv_elf *e, const struct rv_elf_target *t, const char *what,
                uint64_t *low_out, uint64_t *high_out, vs_err *err)
{
    char hb[32];
    /* check every segment before copying any */
    uint64_t low = UINT64_MAX, high = 0;
    for (unsigned pass = 0; pass < 2; pass++) {
        for (unsigned i = 0; i < e->eh.e_phnum; i++) {
            Elf64_Phdr ph;
            rv_elf_phdr(e, i, &ph);
            if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
                continue;
            uint64_t addr = (t->by_vaddr ? ph.p_vaddr : ph.p_paddr) + t->bias;
            uint8_t *dst = t->place(t->ctx, addr, ph.p_memsz);
            if (pass == 0) {
                if (ph.p_filesz > ph.p_memsz || ph.p_offset > e->len ||
                    ph.p_filesz > e->len - ph.p_offset)
                    return vs_error(err, ENOEXEC, "%s: ELF segment %u lies outside the file", what,
                                    i);
                if (!dst)
                    return vs_error(
                        err, EFBIG, "%s: ELF segment %u (%s at 0x%llx) does not fit in %s", what, i,
                        human(ph.p_memsz, hb, sizeof(hb)), (unsigned long long)addr, t->space);
                low = addr < low ? addr : low;
                high = addr + ph.p_memsz > high ? addr + ph.p_memsz : high;
            } else {
                memcpy(dst, e->data + ph.p_offset, ph.p_filesz);
                memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
            }
        }
        if (pass == 0 && high == 0)
            return vs_error(err, ENOEXEC, "%s: ELF has no loadable segment", what);
    }
    if (low_out)
        *low_out = low;
    if (high_out)
        *high_out = high;
    return 0;
}

uint64_t rv_elf_symbol(const struct rv_elf *e, const char *name)
{
    const Elf64_Ehdr *eh = &e->eh;
    if (eh->e_shentsize != sizeof(Elf64_Shdr) || eh->e_shoff > e->len ||
        (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) > e->len - eh->e_shoff)
        return 0;
    const uint8_t *sht = e->data + eh->e_shoff;
    for (unsigned i = 0; i < eh->e_shnum; i++) {
        Elf64_Shdr sh, strh;
        memcpy(&sh, sht + (size_t)i * sizeof(sh), sizeof(sh));
        if (sh.sh_type != SHT_SYMTAB || sh.sh_link >= eh->e_shnum)
            continue;
        memcpy(&strh, sht + (size_t)sh.sh_link * sizeof(strh), sizeof(strh));
        if (sh.sh_offset > e->len || sh.sh_size > e->len - sh.sh_offset ||
            strh.sh_offset > e->len || strh.sh_size > e->len - strh.sh_offset)
            continue;
        const char *strs = (const char *)e->data + strh.sh_offset;
        for (uint64_t k = 0; k < sh.sh_size / sizeof(Elf64_Sym); k++) {
            Elf64_Sym sym;
            memcpy(&sym, e->data + sh.sh_offset + k * sizeof(sym), sizeof(sym));
            if (sym.st_name < strh.sh_size &&
                memchr(strs + sym.st_name, 0, strh.sh_size - sym.st_name) &&
                !strcmp(strs + sym.st_name, name))
                return sym.st_value;
        }
    }
    return 0;
}

static uint8_t *ram_place(void *ctx, uint64_t addr, uint64_t len)
{
    const struct rv_ram *ram = ctx;
    return in_ram(ram, addr, len) ? ram->host + (addr - ram->base) : NULL;
}

static int load_elf(const struct rv_ram *ram, const uint8_t *d, size_t len, const char *what,
                    struct rv_image *out, vs_err *err)
{
    struct rv_elf e;
    if (rv_elf_parse(&e, d, len, what, "RISC-V", err) < 0)
        return -1;
    char space[64];
    snprintf(space, sizeof(space), "RAM (%.0f MiB at 0x%llx)", ram->size / MIB,
             (unsigned long long)ram->base);
    struct rv_elf_target t = {.place = ram_place, .ctx = (void *)ram, .space = space};
    if (rv_elf_load(&e, &t, what, &out->low, &out->high, err) < 0)
        return -1;
    out->entry = e.eh.e_entry;
    out->elf = true;
    return 0;
}

/* The header at the start of a RISC-V Linux Image (Documentation/riscv/boot-image-header.rst). */
struct riscv_image_header {
    uint32_t code0, code1;
    uint64_t text_offset, image_size, flags;
    uint32_t version, res1;
    uint64_t res2, magic;
    uint32_t magic2, res3;
};

int rv_load_image_buf(const struct rv_ram *ram, const uint8_t *data, size_t len, const char *what,
                      uint64_t load_addr, struct rv_image *out, vs_err *err)
{
    memset(out, 0, sizeof(*out));
    if (len >= 4 && !memcmp(data, ELFMAG, SELFMAG))
        return load_elf(ram, data, len, what, out, err);
    if (len >= 2 && data[0] == 0x1f && data[1] == 0x8b)
        return vs_error(
            err, ENOEXEC,
            "%s is gzip-compressed; give the uncompressed Image (arch/riscv/boot/Image)", what);
    if (len >= 0x206 && !memcmp(data + 0x202, "HdrS", 4))
        return vs_error(err, ENOEXEC, "%s is an x86 Linux kernel (bzImage), not RISC-V", what);
    if (len >= 0x40 && data[0] == 'M' && data[1] == 'Z' && memcmp(data + 0x38, "RSC\x05", 4))
        return vs_error(err, ENOEXEC, "%s is a PE/EFI image, not a RISC-V binary", what);

    char hb[32];
    uint64_t span = len;
    struct riscv_image_header hdr;
    if (len >= sizeof(hdr)) {
        memcpy(&hdr, data, sizeof(hdr));
        if (!memcmp(&hdr.magic2, "RSC\x05", 4)) {
            out->linux_image = true;
            /* image_size covers BSS and early page tables the kernel needs */
            if (hdr.image_size > span)
                span = hdr.image_size;
        }
    }
    if (!in_ram(ram, load_addr, span))
        return vs_error(err, EFBIG, "%s (%s at 0x%llx) does not fit in RAM (%.0f MiB at 0x%llx)",
                        what, human(span, hb, sizeof(hb)), (unsigned long long)load_addr,
                        ram->size / MIB, (unsigned long long)ram->base);
    uint8_t *dst = ram->host + (load_addr - ram->base);
    memcpy(dst, data, len);
    memset(dst + len, 0, span - len);
    out->entry = load_addr;
    out->low = load_addr;
    out->high = load_addr + span;
    return 0;
}

int rv_load_image(const struct rv_ram *ram, const char *path, const char *what, uint64_t load_addr,
                  struct rv_image *out, vs_err *err)
{
    cleanup_free uint8_t *data = NULL;
    cleanup_free char *name = NULL;
    size_t len;
    if (rv_read_file(path, what, &data, &len, err) < 0)
        return -1;
    if (asprintf(&name, "%s %s", what, path) < 0)
        return vs_error(err, ENOMEM, "out of memory");
    return rv_load_image_buf(ram, data, len, name, load_addr, out, err);
}
