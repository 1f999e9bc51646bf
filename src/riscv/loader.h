/* Loading guest software into the board's RAM: firmware (--bios: an ELF or
 * a raw binary such as OpenSBI's fw_jump.bin/fw_dynamic.bin), the payload
 * (--kernel: a Linux Image, U-Boot, any raw binary or RISC-V ELF) and the
 * initrd. Everything is checked against RAM before a byte is copied, so a
 * file that does not fit, an ELF for another machine or an x86 kernel is
 * refused with one clear line. */
#ifndef VESSEL_RISCV_LOADER_H
#define VESSEL_RISCV_LOADER_H

#include <elf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "util/err.h"

struct rv_ram {
    uint8_t *host;
    uint64_t base, size;
};

struct rv_image {
    uint64_t entry;     /* where to jump */
    uint64_t low, high; /* physical range occupied, including a kernel's BSS */
    bool elf;
    bool linux_image; /* a raw Linux Image with the RISC-V header */
};

/* Load the file at path (described as `what` in messages: "bios", "kernel").
 * A raw binary goes to load_addr (a Linux Image also reserves its
 * image_size); an ELF goes to its segments' physical addresses. */
int rv_load_image(const struct rv_ram *ram, const char *path, const char *what, uint64_t load_addr,
                  struct rv_image *out, vs_err *err);
/* Same, from a buffer already in memory (tests, fuzzing). */
int rv_load_image_buf(const struct rv_ram *ram, const uint8_t *data, size_t len, const char *what,
                      uint64_t load_addr, struct rv_image *out, vs_err *err);

/* Copy a blob (initrd, device tree) to [addr, addr + len); -1 with a message
 * if it is not inside RAM. */
int rv_load_blob(const struct rv_ram *ram, uint64_t addr, const void *data, size_t len,
                 const char *what, vs_err *err);
/* Read a whole file into a malloc'd buffer. */
int rv_read_file(const char *path, const char *what, uint8_t **data, size_t *len, vs_err *err);

/* The one RISC-V ELF reader, for the board's firmware and kernels, user-mode
 * programs (vessel emu) and bare-metal tests (vessel emu --bare). */
struct rv_elf {
    const uint8_t *data; /* the whole file */
    size_t len;
    Elf64_Ehdr eh;
};
/* A 64-bit little-endian RISC-V executable (ET_EXEC or ET_DYN) whose program
 * headers lie inside data; otherwise one line in err naming what, e.g.
 * "kernel k is an x86-64 ELF, not a RISC-V ELF" (arch: "RISC-V", "riscv64"). */
int rv_elf_parse(struct rv_elf *e, const uint8_t *data, size_t len, const char *what,
                 const char *arch, vs_err *err);
void rv_elf_phdr(const struct rv_elf *e, unsigned i, Elf64_Phdr *ph);

/* Where the segments go. */
struct rv_elf_target {
    bool by_vaddr; /* place by p_vaddr (a program) rather than p_paddr (firmware) */
    uint64_t bias; /* added to every address (a static-pie's load address) */
    /* host memory for [addr, addr + len), or NULL where that does not fit */
    uint8_t *(*place)(void *ctx, uint64_t addr, uint64_t len);
    void *ctx;
    const char *space; /* for messages: "... does not fit in <space>" */
};
/* Copy each PT_LOAD segment (zero-filled to p_memsz) to its place, checking
 * every segment before copying any. low/high (may be NULL): the addresses
 * covered. */
int rv_elf_load(const struct rv_elf *e, const struct rv_elf_target *t, const char *what,
                uint64_t *low, uint64_t *high, vs_err *err);
/* The value of symbol name in the ELF's symbol table, or 0. */
uint64_t rv_elf_symbol(const struct rv_elf *e, const char *name);

/* fw_dynamic's argument (OpenSBI's struct fw_dynamic_info, version 2),
 * passed in a2. */
#define RV_FW_DYNAMIC_MAGIC 0x4942534full
#define RV_FW_DYNAMIC_VERSION 2ull
struct rv_fw_dynamic_info {
    uint64_t magic, version, next_addr, next_mode, options, boot_hart;
};

#endif
