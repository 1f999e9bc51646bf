/* virtio-blk (virtio 1.2, 5.2): request parsing, separated from the I/O
 * engine so it can be unit-tested and fuzzed on its own. */
#ifndef VESSEL_VIRTIO_BLK_H
#define VESSEL_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>
#include "virtio/virtq.h"

#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_MQ 12
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13

#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_ID_BYTES 20
#define VIRTIO_BLK_MAX_SEGS 16 /* discard / write-zeroes ranges per request */

/* Config space offsets. */
#define VIRTIO_BLK_CFG_CAPACITY 0
#define VIRTIO_BLK_CFG_SEG_MAX 12
#define VIRTIO_BLK_CFG_BLK_SIZE 20
#define VIRTIO_BLK_CFG_NUM_QUEUES 34
#define VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS 36
#define VIRTIO_BLK_CFG_MAX_DISCARD_SEG 40
#define VIRTIO_BLK_CFG_DISCARD_ALIGN 44
#define VIRTIO_BLK_CFG_MAX_WZ_SECTORS 48
#define VIRTIO_BLK_CFG_MAX_WZ_SEG 52
#define VIRTIO_BLK_CFG_WZ_MAY_UNMAP 56
#define VIRTIO_BLK_CFG_SIZE 60

struct virtio_blk_range {
    uint64_t off, len; /* bytes */
    bool unmap;
};

struct virtio_blk_req {
    uint32_t type;
    uint64_t sector;
    uint8_t *status;    /* host pointer to the status byte */
    uint8_t result;     /* status if the request is decided at parse time */
    bool done;          /* no I/O needed: result is final */
    struct iovec *data; /* data buffers (points into `iov`) */
    unsigned ndata;
    uint64_t offset, len; /* byte range for IN/OUT */
    uint32_t in_len;      /* used length to report on success */
    struct virtio_blk_range ranges[VIRTIO_BLK_MAX_SEGS];
    unsigned nranges;
    struct iovec iov[VIRTQ_MAX_SIZE];
};

/* Parse a popped chain. Returns -1 if the chain cannot carry a request at
 * all (no header or no status byte: the device must be marked broken);
 * else 0 with req filled: req->done means status req->result is final
 * (errors, GET_ID filled from serial, unsupported types). */
int virtio_blk_parse(const struct virtq_elem *e, uint64_t capacity_bytes, bool readonly,
                     const char *serial, struct virtio_blk_req *req);

#endif
