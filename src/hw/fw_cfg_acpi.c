/* etc/table-loader commands and the ACPI tables handed to firmware
 * through them (QEMU's bios-linker-loader format, which SeaBIOS and OVMF
 * run: allocate each blob in their memory, add blob addresses to pointer
 * fields, recompute checksums). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "hw/fw_cfg.h"

#define ACPI_TABLES_FILE "etc/acpi/tables"
#define ACPI_RSDP_FILE "etc/acpi/rsdp"
#define TABLE_LOADER_FILE "etc/table-loader"

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* A zeroed entry with its command, or NULL (err set). */
static uint8_t *entry(struct fw_cfg_loader *l, uint32_t cmd, vs_err *err)
{
    if (l->len + FW_CFG_LOADER_ENTRY_SIZE > l->cap) {
        uint32_t cap = l->cap ? l->cap * 2 : 16 * FW_CFG_LOADER_ENTRY_SIZE;
        uint8_t *n = realloc(l->cmds, cap);
        if (!n) {
            vs_error(err, ENOMEM, "table-loader: out of memory");
            return NULL;
        }
        l->cmds = n;
        l->cap = cap;
    }
    uint8_t *e = l->cmds + l->len;
    memset(e, 0, FW_CFG_LOADER_ENTRY_SIZE);
    put_le(e, cmd, 4);
    l->len += FW_CFG_LOADER_ENTRY_SIZE;
    return e;
}

static int put_name(uint8_t *dst, const char *name, vs_err *err)
{
    size_t n = strlen(name);
    if (n == 0 || n >= FW_CFG_MAX_FILE_PATH)
        return vs_error(err, EINVAL, "table-loader: file name '%s' is not 1..%d bytes", name,
                        FW_CFG_MAX_FILE_PATH - 1);
    memcpy(dst, name, n);
    return 0;
}

int fw_cfg_loader_allocate(struct fw_cfg_loader *l, const char *file, uint32_t align, uint8_t zone,
                           vs_err *err)
{
    if (align & (align - 1))
        return vs_error(err, EINVAL, "table-loader: alignment %u is not a power of two", align);
    uint8_t *e = entry(l, FW_CFG_LOADER_ALLOCATE, err);
    if (!e || put_name(e + 4, file, err) < 0)
        return -1;
    put_le(e + 4 + 56, align, 4);
    e[4 + 56 + 4] = zone;
    return 0;
}

int fw_cfg_loader_add_pointer(struct fw_cfg_loader *l, const char *dest_file, const char *src_file,
                              uint32_t offset, uint8_t size, vs_err *err)
{
    if (size != 1 && size != 2 && size != 4 && size != 8)
        return vs_error(err, EINVAL, "table-loader: pointer size %u", size);
    uint8_t *e = entry(l, FW_CFG_LOADER_ADD_POINTER, err);
    if (!e || put_name(e + 4, dest_file, err) < 0 || put_name(e + 4 + 56, src_file, err) < 0)
        return -1;
    put_le(e + 4 + 112, offset, 4);
    e[4 + 112 + 4] = size;
    return 0;
}

int fw_cfg_loader_add_checksum(struct fw_cfg_loader *l, const char *file, uint32_t offset,
                               uint32_t start, uint32_t length, vs_err *err)
{
    uint8_t *e = entry(l, FW_CFG_LOADER_ADD_CHECKSUM, err);
    if (!e || put_name(e + 4, file, err) < 0)
        return -1;
    put_le(e + 4 + 56, offset, 4);
    put_le(e + 4 + 60, start, 4);
    put_le(e + 4 + 64, length, 4);
    return 0;
}

void fw_cfg_loader_free(struct fw_cfg_loader *l)
{
    free(l->cmds);
    memset(l, 0, sizeof(*l));
}

/* ---- ACPI ---------------------------------------------------------------- */

struct acpi_walk {
    const uint8_t *blob;
    uint32_t len;
    struct fw_cfg_loader ptrs, sums; /* pointers first, then checksums */
};

/* A table header at off: signature and a length inside the blob. */
static int table_at(const struct acpi_walk *w, uint64_t off, uint32_t *tlen, vs_err *err)
{
    if (off < 36 || off > w->len || w->len - off < 36)
        return vs_error(err, EINVAL, "acpi: table at 0x%llx is outside the blob",
                        (unsigned long long)off);
    uint32_t l = (uint32_t)get_le(w->blob + off + 4, 4);
    if (l < 36 || l > w->len - off)
        return vs_error(err, EINVAL, "acpi: table at 0x%llx has length %u past the blob",
                        (unsigned long long)off, l);
    *tlen = l;
    return 0;
}

/* The pointer of size n at dest_off of file dest (its value an offset into
 * the tables blob) becomes an address; returns the target in *target. */
static int pointer(struct acpi_walk *w, const char *dest, uint32_t dest_off, unsigned n,
                   const uint8_t *src, uint64_t *target, vs_err *err)
{
    *target = get_le(src, n);
    return fw_cfg_loader_add_pointer(&w->ptrs, dest, ACPI_TABLES_FILE, dest_off, (uint8_t)n, err);
}

static int checksum_table(struct acpi_walk *w, uint32_t off, uint32_t tlen, vs_err *err)
{
    return fw_cfg_loader_add_checksum(&w->sums, ACPI_TABLES_FILE, off + 9, off, tlen, err);
}

/* FADT: DSDT and FACS (32- and 64-bit fields). */
static int walk_fadt(struct acpi_walk *w, uint32_t off, uint32_t tlen, vs_err *err)
{
    static const struct {
        uint32_t at;
        unsigned n;
        bool dsdt;
    } fields[] = {{36, 4, false}, {40, 4, true}, {132, 8, false}, {140, 8, true}};
    uint64_t dsdt_done = 0;
    for (unsigned i = 0; i < 4; i++) {
        if (fields[i].at + fields[i].n > tlen)
            continue;
        const uint8_t *p = w->blob + off + fields[i].at;
        if (!get_le(p, fields[i].n))
            continue;
        uint64_t target;
        if (pointer(w, ACPI_TABLES_FILE, off + fields[i].at, fields[i].n, p, &target, err) < 0)
            return -1;
        uint32_t dl;
        if (fields[i].dsdt && target != dsdt_done) {
            if (table_at(w, target, &dl, err) < 0 ||
                checksum_table(w, (uint32_t)target, dl, err) < 0)
                return -1;
            dsdt_done = target;
        }
    }
    return 0;
}

/* RSDT (4-byte entries) or XSDT (8-byte). */
static int walk_sdt(struct acpi_walk *w, uint64_t off, unsigned esize, vs_err *err)
{
    uint32_t tlen;
    if (table_at(w, off, &tlen, err) < 0)
        return -1;
    for (uint32_t e = 36; e + esize <= tlen; e += esize) {
        uint64_t t;
        uint32_t at = (uint32_t)off + e, l;
        if (pointer(w, ACPI_TABLES_FILE, at, esize, w->blob + at, &t, err) < 0 ||
            table_at(w, t, &l, err) < 0)
            return -1;
        if (!memcmp(w->blob + t, "FACS", 4))
            continue; /* no checksum */
        if (checksum_table(w, (uint32_t)t, l, err) < 0)
            return -1;
        if (!memcmp(w->blob + t, "FACP", 4) && walk_fadt(w, (uint32_t)t, l, err) < 0)
            return -1;
    }
    return checksum_table(w, (uint32_t)off, tlen, err);
}

int fw_cfg_add_acpi(struct fw_cfg *f, const uint8_t *blob, uint32_t len, vs_err *err)
{
    if (len < 20 || memcmp(blob, "RSD PTR ", 8))
        return vs_error(err, EINVAL, "acpi: no RSDP at the start of the tables");
    uint8_t rev = blob[15];
    uint32_t rsdp_len = rev >= 2 ? 36 : 20;
    if (len < rsdp_len)
        return vs_error(err, EINVAL, "acpi: RSDP cut short");
    struct acpi_walk w = {.blob = blob, .len = len};
    struct fw_cfg_loader all = {0};
    int rc = fw_cfg_loader_allocate(&all, ACPI_TABLES_FILE, 64, FW_CFG_LOADER_ZONE_HIGH, err);
    if (rc == 0)
        rc = fw_cfg_loader_allocate(&all, ACPI_RSDP_FILE, 16, FW_CFG_LOADER_ZONE_FSEG, err);
    uint64_t t;
    if (rc == 0 && get_le(blob + 16, 4)) {
        rc = pointer(&w, ACPI_RSDP_FILE, 16, 4, blob + 16, &t, err);
        if (rc == 0)
            rc = walk_sdt(&w, t, 4, err);
    }
    if (rc == 0 && rev >= 2 && get_le(blob + 24, 8)) {
        rc = pointer(&w, ACPI_RSDP_FILE, 24, 8, blob + 24, &t, err);
        if (rc == 0)
            rc = walk_sdt(&w, t, 8, err);
    }
    if (rc == 0)
        rc = fw_cfg_loader_add_checksum(&w.sums, ACPI_RSDP_FILE, 8, 0, 20, err);
    if (rc == 0 && rev >= 2)
        rc = fw_cfg_loader_add_checksum(&w.sums, ACPI_RSDP_FILE, 32, 0, 36, err);
    /* one command list: allocations, pointers, checksums */
    uint8_t *cmds = NULL;
    uint32_t n = all.len + w.ptrs.len + w.sums.len;
    if (rc == 0 && !(cmds = malloc(n)))
        rc = vs_error(err, ENOMEM, "table-loader: out of memory");
    if (rc == 0) {
        memcpy(cmds, all.cmds, all.len);
        memcpy(cmds + all.len, w.ptrs.cmds, w.ptrs.len);
        memcpy(cmds + all.len + w.ptrs.len, w.sums.cmds, w.sums.len);
        if (fw_cfg_add_file(f, ACPI_TABLES_FILE, blob, len, err) < 0 ||
            fw_cfg_add_file(f, ACPI_RSDP_FILE, blob, rsdp_len, err) < 0 ||
            fw_cfg_add_file(f, TABLE_LOADER_FILE, cmds, n, err) < 0)
            rc = -1;
    }
    free(cmds);
    fw_cfg_loader_free(&all);
    fw_cfg_loader_free(&w.ptrs);
    fw_cfg_loader_free(&w.sums);
    return rc;
}
