/* The live-migration stream (docs/migration.md): what a source vessel sends
 * a destination over one connection, and the destination's answers on the
 * same connection, both as records with one header format.
 *
 *   "VESMIG01" | u32 version (1) | u32 0        (source, once)
 *   record: u32 type | u32 crc | u64 offset | u64 len | len bytes of payload
 *
 * crc is the CRC-32C of the record header (with crc 0) and its payload: a
 * byte changed on the way is found before anything is used.
 *
 *   source -> destination
 *     HELLO    JSON: machine type, memory image size and regions, CPU features
 *     MEMORY   len bytes of the memory image at offset
 *     ZERO     [offset, offset + len) of the memory image reads as zero
 *     VMSTATE  the vmstate (docs/snapshot-format.md) of the paused VM
 *     END      nothing more follows; the source waits for READY
 *     GO       (after READY) start the guest
 *     SYNC     answer SYNCED once everything before it is in
 *     POSTCOPY (before END) the pages still to come after the switch: one
 *              bit per page of each region, 64-bit words, regions in order
 *     POSTCOPY_DONE  every page the POSTCOPY bitmap named has been sent
 *     DISK     (--copy-disks) len bytes of a disk: offset = disk index << 56 |
 *              byte offset in that disk (migrate/disks.h)
 *     DISK_ZERO  the same range of that disk reads as zeroes
 *   destination -> source
 *     ACCEPT   (after HELLO) this machine can be taken
 *     REFUSE   one line saying why; the destination then closes
 *     READY    the machine is built and its state loaded, waiting for GO
 *     RUNNING  the guest runs on the destination
 *     SYNCED   everything before the SYNC is in
 *     PAGE_REQUEST  (post-copy) the guest waits for the page at offset
 *     COMPLETE (post-copy) every page is in: the source may go
 *
 * Everything little-endian. The destination treats every field as hostile
 * (migrate/incoming.c); tests/fuzz/fuzz_migrate_stream.c feeds it. */
#ifndef VESSEL_MIGRATE_WIRE_H
#define VESSEL_MIGRATE_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include "migrate/tls.h"
#include "util/err.h"

#define MIG_MAGIC "VESMIG01"
#define MIG_VERSION 1u
#define MIG_HEADER_SIZE 16
#define MIG_RECORD_SIZE 24
#define MIG_MAX_HELLO (64u * 1024)
#define MIG_MAX_MESSAGE 4096u
#define MIG_MAX_VMSTATE (256u << 20)

enum mig_type {
    MIG_HELLO = 1,
    MIG_MEMORY = 2,
    MIG_ZERO = 3,
    MIG_VMSTATE = 4,
    MIG_END = 5,
    MIG_GO = 6,
    MIG_SYNC = 7,
    MIG_POSTCOPY = 8,
    MIG_POSTCOPY_DONE = 9,
    MIG_DISK = 10,
    MIG_DISK_ZERO = 11,
    MIG_ACCEPT = 0x101,
    MIG_REFUSE = 0x102,
    MIG_READY = 0x103,
    MIG_RUNNING = 0x104,
    MIG_SYNCED = 0x105,
    MIG_PAGE_REQUEST = 0x106,
    MIG_COMPLETE = 0x107,
};

struct mig_record {
    uint32_t type, crc;
    uint64_t off, len;
};

void mig_header_encode(uint8_t out[MIG_HEADER_SIZE]);
int mig_header_decode(const uint8_t in[MIG_HEADER_SIZE], vs_err *err);
/* A header with the CRC of itself and payload (len bytes; NULL when the
 * record has none). */
void mig_record_encode(uint8_t out[MIG_RECORD_SIZE], uint32_t type, uint64_t off, uint64_t len,
                       const void *payload);
/* The type and lengths are the reader's to judge; the CRC is checked by
 * mig_record_check once the payload is in. */
int mig_record_decode(const uint8_t in[MIG_RECORD_SIZE], struct mig_record *r, vs_err *err);
int mig_record_check(const struct mig_record *r, const void *payload, vs_err *err);
const char *mig_type_name(uint32_t type);

/* Send one record with its payload (may be NULL when len is 0) on a socket;
 * MSG_NOSIGNAL, so a peer that went away is an error, not a signal. */
int mig_send(struct mig_conn *c, uint32_t type, uint64_t off, const void *payload, uint64_t len,
             vs_err *err);
/* Read one record header from fd, waiting at most timeout_ms (-1: no
 * limit); the payload is the caller's to read. */
int mig_recv_record(struct mig_conn *c, int timeout_ms, struct mig_record *r, vs_err *err);
/* A short reply's payload (REFUSE's message), at most MIG_MAX_MESSAGE
 * bytes, into a NUL-terminated buffer of that size + 1. */
int mig_recv_message(struct mig_conn *c, const struct mig_record *r, char *buf, vs_err *err);

#endif
