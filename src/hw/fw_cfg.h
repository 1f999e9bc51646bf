/* QEMU's firmware configuration device (docs/specs/fw_cfg.rst), which
 * SeaBIOS and OVMF read their platform description from: a selector
 * register picks an item, a data register streams its bytes, and a DMA
 * register takes the guest address of a descriptor (control, length,
 * address; big-endian) to read, skip or select in one exit. Items are
 * numbered (the signature, the interface ID, RAM size, CPUs, the kernel
 * command line...) or named files listed in the file directory (key 0x19,
 * big-endian): etc/e820, bootorder, etc/table-loader and the ACPI blobs it
 * installs. x86 ports: selector 0x510 (16 bits), data 0x511, DMA
 * 0x514..0x51b. Everything the guest gives (selectors, offsets, DMA
 * descriptors and their addresses) is bounds-checked. */
#ifndef VESSEL_HW_FW_CFG_H
#define VESSEL_HW_FW_CFG_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "hw/bus.h"
#include "mem/guest_mem.h"
#include "util/err.h"

#define FW_CFG_PORT_SEL 0x510
#define FW_CFG_PORT_DATA 0x511
#define FW_CFG_PORT_DMA 0x514

enum fw_cfg_key {
    FW_CFG_SIGNATURE = 0x00,
    FW_CFG_ID = 0x01,
    FW_CFG_UUID = 0x02,
    FW_CFG_RAM_SIZE = 0x03,
    FW_CFG_NOGRAPHIC = 0x04,
    FW_CFG_NB_CPUS = 0x05,
    FW_CFG_MACHINE_ID = 0x06,
    FW_CFG_KERNEL_CMDLINE = 0x09,
    FW_CFG_BOOT_MENU = 0x0e,
    FW_CFG_MAX_CPUS = 0x0f,
    FW_CFG_CMDLINE_ADDR = 0x13,
    FW_CFG_CMDLINE_SIZE = 0x14,
    FW_CFG_CMDLINE_DATA = 0x15,
    FW_CFG_FILE_DIR = 0x19,
    FW_CFG_FILE_FIRST = 0x20,
    FW_CFG_WRITE_CHANNEL = 0x4000,
    FW_CFG_ARCH_LOCAL = 0x8000,
    FW_CFG_E820_TABLE = 0x8003, /* x86: the legacy e820 item (etc/e820 supersedes it) */
};

/* FW_CFG_ID feature bits. */
#define FW_CFG_VERSION_TRADITIONAL 1u
#define FW_CFG_VERSION_DMA 2u

/* DMA control bits. */
#define FW_CFG_DMA_ERROR 0x01u
#define FW_CFG_DMA_READ 0x02u
#define FW_CFG_DMA_SKIP 0x04u
#define FW_CFG_DMA_SELECT 0x08u
#define FW_CFG_DMA_WRITE 0x10u
/* What a read of the DMA register returns: "QEMU CFG", big-endian. */
#define FW_CFG_DMA_SIGNATURE 0x51454d5520434647ULL

#define FW_CFG_MAX_FILE_PATH 56
#define FW_CFG_MAX_ITEMS 128

struct fw_cfg_item {
    uint16_t key;
    uint32_t len;
    uint8_t *data;
    char name[FW_CFG_MAX_FILE_PATH]; /* files only */
};

struct fw_cfg {
    struct fw_cfg_item items[FW_CFG_MAX_ITEMS];
    unsigned nitems, nfiles;
    struct guest_mem *mem;
    /* guest-visible state */
    uint16_t selector;
    uint32_t offset;      /* into the selected item */
    uint32_t dma_hi;      /* the DMA address's high half, until the low one */
    pthread_mutex_t lock; /* between vCPUs */
};

/* The signature, the ID (traditional + DMA) and an empty file directory. */
int fw_cfg_init(struct fw_cfg *f, struct guest_mem *mem, vs_err *err);
void fw_cfg_destroy(struct fw_cfg *f);
/* A numbered item (a copy of data; replaces one with that key). */
int fw_cfg_add_bytes(struct fw_cfg *f, uint16_t key, const void *data, uint32_t len, vs_err *err);
int fw_cfg_add_u16(struct fw_cfg *f, uint16_t key, uint16_t v, vs_err *err);
int fw_cfg_add_u32(struct fw_cfg *f, uint16_t key, uint32_t v, vs_err *err);
int fw_cfg_add_u64(struct fw_cfg *f, uint16_t key, uint64_t v, vs_err *err);
/* A string with its NUL. */
int fw_cfg_add_string(struct fw_cfg *f, uint16_t key, const char *s, vs_err *err);
/* A named file at the next free key from FW_CFG_FILE_FIRST; the directory
 * follows. */
int fw_cfg_add_file(struct fw_cfg *f, const char *name, const void *data, uint32_t len,
                    vs_err *err);
/* The item a file name or key denotes, or NULL. */
const struct fw_cfg_item *fw_cfg_find_file(const struct fw_cfg *f, const char *name);
const struct fw_cfg_item *fw_cfg_find(const struct fw_cfg *f, uint16_t key);

/* x86 port I/O at 0x510..0x511 and 0x514..0x51b. */
int fw_cfg_register_pio(struct fw_cfg *f, struct io_bus *pio, vs_err *err);
/* The registers by offset from 0x510 (what the bus calls; tests too). */
uint64_t fw_cfg_io_read(void *opaque, uint64_t off, unsigned len);
void fw_cfg_io_write(void *opaque, uint64_t off, uint64_t val, unsigned len);
/* Run the DMA descriptor at guest address gpa (what a write of the DMA
 * register's low half does). */
void fw_cfg_dma(struct fw_cfg *f, uint64_t gpa);

/* etc/table-loader (QEMU hw/acpi/bios-linker-loader.c): commands of 128
 * bytes the firmware runs to place blobs in its memory, patch pointers
 * between them and fix checksums. */
#define FW_CFG_LOADER_ALLOCATE 1
#define FW_CFG_LOADER_ADD_POINTER 2
#define FW_CFG_LOADER_ADD_CHECKSUM 3
#define FW_CFG_LOADER_ZONE_HIGH 1
#define FW_CFG_LOADER_ZONE_FSEG 2
#define FW_CFG_LOADER_ENTRY_SIZE 128

struct fw_cfg_loader {
    uint8_t *cmds;
    uint32_t len, cap;
};
int fw_cfg_loader_allocate(struct fw_cfg_loader *l, const char *file, uint32_t align, uint8_t zone,
                           vs_err *err);
/* Add src's address in the firmware's memory to the size-byte
 * little-endian value at dest_file + offset. */
int fw_cfg_loader_add_pointer(struct fw_cfg_loader *l, const char *dest_file, const char *src_file,
                              uint32_t offset, uint8_t size, vs_err *err);
/* Set the byte at file + offset so that [start, start + length) sums to 0. */
int fw_cfg_loader_add_checksum(struct fw_cfg_loader *l, const char *file, uint32_t offset,
                               uint32_t start, uint32_t length, vs_err *err);
void fw_cfg_loader_free(struct fw_cfg_loader *l);

/* ACPI tables through the loader: blob holds an RSDP at offset 0 and the
 * tables after it, every pointer in them an offset into blob (built with
 * base 0). Adds files etc/acpi/rsdp (the RSDP, FSEG) and etc/acpi/tables
 * (the blob, high memory) and etc/table-loader with a pointer command for
 * each pointer the RSDP, RSDT/XSDT and FADT hold and a checksum command
 * for each table. */
int fw_cfg_add_acpi(struct fw_cfg *f, const uint8_t *blob, uint32_t len, vs_err *err);

#endif
