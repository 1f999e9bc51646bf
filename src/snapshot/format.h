/* The snapshot directory format (docs/snapshot-format.md):
 *
 *   DIR/vmstate   header + manifest (JSON) + CPU features + device state
 *                 (+ dirty bitmap for a diff), CRC32-protected
 *   DIR/memory    guest RAM, regions at page-aligned offsets; sparse (holes
 *                 read as zero); a diff holds only the pages it lists
 *
 * The header is little-endian, fixed size: */
#ifndef VESSEL_SNAPSHOT_FORMAT_H
#define VESSEL_SNAPSHOT_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include "util/err.h"

#define SNAP_MAGIC "VESSNAP1"
#define SNAP_VERSION 1
#define SNAP_HEADER_SIZE 128
#define SNAP_FLAG_DIFF 1u
#define SNAP_ARCH_X86_64 1u
#define SNAP_ARCH_RISCV64 2u

enum snap_blob { SNAP_BLOB_MANIFEST, SNAP_BLOB_CPU, SNAP_BLOB_STATE, SNAP_BLOB_DIRTY, SNAP_NBLOBS };

struct snap_header {
    char magic[8];
    uint32_t version;
    uint32_t header_size;
    uint32_t arch;
    uint32_t flags;
    uint64_t blob_off[SNAP_NBLOBS]; /* from the start of the file */
    uint64_t blob_len[SNAP_NBLOBS];
    uint64_t file_size;   /* of vmstate: detects truncation */
    uint32_t payload_crc; /* CRC32 of bytes [header_size, file_size) */
    uint32_t header_crc;  /* CRC32 of the 128 header bytes with this field 0 */
};

/* Serialise / parse the 128-byte header (byte order independent). */
void snap_header_encode(const struct snap_header *h, uint8_t out[SNAP_HEADER_SIZE]);
/* Validates magic, version, CRC of the header and blob bounds against
 * file_size; does not check the payload CRC. */
int snap_header_decode(const uint8_t *buf, size_t len, uint64_t file_size, struct snap_header *h,
                       vs_err *err);
/* Everything: header, then payload CRC over data[0..len). */
int snap_vmstate_check(const uint8_t *data, size_t len, struct snap_header *h, vs_err *err);

/* Remove a directory vessel made (a temporary snapshot or overlay
 * directory) and the files in it. */
void snap_remove_dir(const char *dir);

#endif
