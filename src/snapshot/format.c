#include "snapshot/format.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p)
{
    return get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* Layout: magic 0..8, version 8, header_size 12, arch 16, flags 20,
 * blob_off[4] 24..56, blob_len[4] 56..88, file_size 88, payload_crc 96,
 * header_crc 100, reserved (zero) up to 128. */
#define OFF_BLOB_OFF 24
#define OFF_BLOB_LEN 56
#define OFF_FILE_SIZE 88
#define OFF_PAYLOAD_CRC 96
#define OFF_HEADER_CRC 100

void snap_header_encode(const struct snap_header *h, uint8_t out[SNAP_HEADER_SIZE])
{
    memset(out, 0, SNAP_HEADER_SIZE);
    memcpy(out, SNAP_MAGIC, 8);
    put32(out + 8, h->version);
    put32(out + 12, SNAP_HEADER_SIZE);
    put32(out + 16, h->arch);
    put32(out + 20, h->flags);
    for (int i = 0; i < SNAP_NBLOBS; i++) {
        put64(out + OFF_BLOB_OFF + 8 * i, h->blob_off[i]);
        put64(out + OFF_BLOB_LEN + 8 * i, h->blob_len[i]);
    }
    put64(out + OFF_FILE_SIZE, h->file_size);
    put32(out + OFF_PAYLOAD_CRC, h->payload_crc);
    put32(out + OFF_HEADER_CRC, (uint32_t)crc32(0, out, SNAP_HEADER_SIZE));
}

int snap_header_decode(const uint8_t *buf, size_t len, uint64_t file_size, struct snap_header *h,
                       vs_err *err)
{
    memset(h, 0, sizeof(*h));
    if (len < 16 || memcmp(buf, SNAP_MAGIC, 8))
        return vs_error(err, EINVAL, "not a vessel snapshot (bad magic)");
    h->version = get32(buf + 8);
    h->header_size = get32(buf + 12);
    if (h->version > SNAP_VERSION)
        return vs_error(err, ENOTSUP,
                        "snapshot format version %u is newer than this vessel supports (%u)",
                        h->version, SNAP_VERSION);
    if (h->version == 0)
        return vs_error(err, EINVAL, "snapshot format version 0 is invalid");
    if (len < SNAP_HEADER_SIZE || h->header_size != SNAP_HEADER_SIZE)
        return vs_error(err, EINVAL, "snapshot header is truncated");
    uint8_t tmp[SNAP_HEADER_SIZE];
    memcpy(tmp, buf, SNAP_HEADER_SIZE);
    put32(tmp + OFF_HEADER_CRC, 0);
    h->header_crc = get32(buf + OFF_HEADER_CRC);
    if ((uint32_t)crc32(0, tmp, SNAP_HEADER_SIZE) != h->header_crc)
        return vs_error(err, EINVAL, "snapshot header is corrupted (CRC mismatch)");
    memcpy(h->magic, buf, 8);
    h->arch = get32(buf + 16);
    h->flags = get32(buf + 20);
    h->file_size = get64(buf + OFF_FILE_SIZE);
    h->payload_crc = get32(buf + OFF_PAYLOAD_CRC);
    if (h->arch != SNAP_ARCH_X86_64 && h->arch != SNAP_ARCH_RISCV64)
        return vs_error(err, EINVAL, "snapshot names an unknown machine type %u", h->arch);
    if (h->flags & ~SNAP_FLAG_DIFF)
        return vs_error(err, ENOTSUP, "snapshot has unknown flags 0x%x", h->flags);
    if (file_size < h->file_size)
        return vs_error(err, EINVAL, "snapshot state file is truncated (%llu of %llu bytes)",
                        (unsigned long long)file_size, (unsigned long long)h->file_size);
    if (file_size > h->file_size)
        return vs_error(err, EINVAL, "snapshot state file has %llu trailing bytes",
                        (unsigned long long)(file_size - h->file_size));
    for (int i = 0; i < SNAP_NBLOBS; i++) {
        h->blob_off[i] = get64(buf + OFF_BLOB_OFF + 8 * i);
        h->blob_len[i] = get64(buf + OFF_BLOB_LEN + 8 * i);
        if (h->blob_off[i] < SNAP_HEADER_SIZE || h->blob_off[i] > h->file_size ||
            h->file_size - h->blob_off[i] < h->blob_len[i])
            return vs_error(err, EINVAL, "snapshot section %d lies outside the file", i);
    }
    return 0;
}

int snap_vmstate_check(const uint8_t *data, size_t len, struct snap_header *h, vs_err *err)
{
    if (snap_header_decode(data, len, len, h, err) < 0)
        return -1;
    uLong crc = crc32(0, Z_NULL, 0);
    const uint8_t *p = data + SNAP_HEADER_SIZE;
    size_t left = len - SNAP_HEADER_SIZE;
    while (left) {
        uInt n = left > (1u << 30) ? (1u << 30) : (uInt)left;
        crc = crc32(crc, p, n);
        p += n;
        left -= n;
    }
    if ((uint32_t)crc != h->payload_crc)
        return vs_error(err, EINVAL, "snapshot state is corrupted (CRC mismatch)");
    return 0;
}

void snap_remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char p[PATH_MAX];
            snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}
