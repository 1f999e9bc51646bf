#include <stddef.h>
#include <string.h>
#include "virtio/blk.h"

static void finish(struct virtio_blk_req *r, uint8_t status, uint32_t in_len)
{
    r->done = true;
    r->result = status;
    r->in_len = in_len;
}

/* [off, off+len) inside the disk, without overflow. */
static bool in_range(uint64_t off, uint64_t len, uint64_t capacity)
{
    return off <= capacity && len <= capacity - off;
}

int virtio_blk_parse(const struct virtq_elem *e, uint64_t capacity, bool readonly,
                     const char *serial, struct virtio_blk_req *r)
{
    memset(r, 0, offsetof(struct virtio_blk_req, iov));
    struct {
        uint32_t type, reserved;
        uint64_t sector;
    } hdr;
    if (e->nin == 0 || iov_to_buf(e->iov, e->nout, 0, &hdr, sizeof(hdr)) != sizeof(hdr))
        return -1;
    r->type = hdr.type;
    r->sector = hdr.sector;

    /* Status is the last byte of the writable part; data in between. */
    const struct iovec *last = &e->iov[e->nout + e->nin - 1];
    r->status = (uint8_t *)last->iov_base + last->iov_len - 1;
    unsigned nin = e->nin;
    memcpy(r->iov, &e->iov[e->nout], nin * sizeof(struct iovec));
    r->iov[nin - 1].iov_len--;
    if (r->iov[nin - 1].iov_len == 0)
        nin--;
    uint64_t in_bytes = iov_length(r->iov, nin);

    switch (r->type) {
    case VIRTIO_BLK_T_IN:
    case VIRTIO_BLK_T_OUT: {
        bool out = r->type == VIRTIO_BLK_T_OUT;
        if (out) {
            /* data follows the 16-byte header in the readable part */
            unsigned n = 0;
            size_t skip = sizeof(hdr);
            for (unsigned i = 0; i < e->nout; i++) {
                if (skip >= e->iov[i].iov_len) {
                    skip -= e->iov[i].iov_len;
                    continue;
                }
                r->iov[n].iov_base = (uint8_t *)e->iov[i].iov_base + skip;
                r->iov[n].iov_len = e->iov[i].iov_len - skip;
                skip = 0;
                n++;
            }
            r->ndata = n;
            r->in_len = 1;
        } else {
            r->ndata = nin;
            r->in_len = (uint32_t)in_bytes + 1;
        }
        r->data = r->iov;
        r->len = iov_length(r->data, r->ndata);
        if (out && readonly) {
            finish(r, VIRTIO_BLK_S_IOERR, 1);
            return 0;
        }
        if (r->sector > UINT64_MAX / 512 || r->len % 512 ||
            !in_range(r->sector * 512, r->len, capacity)) {
            finish(r, VIRTIO_BLK_S_IOERR, 1);
            return 0;
        }
        r->offset = r->sector * 512;
        if (r->len == 0)
            finish(r, VIRTIO_BLK_S_OK, r->in_len);
        return 0;
    }
    case VIRTIO_BLK_T_FLUSH:
        r->in_len = 1;
        return 0;
    case VIRTIO_BLK_T_GET_ID: {
        char id[VIRTIO_BLK_ID_BYTES] = {0};
        size_t sl = serial ? strnlen(serial, sizeof(id)) : 0;
        memcpy(id, serial, sl);
        size_t n = in_bytes < sizeof(id) ? (size_t)in_bytes : sizeof(id);
        iov_from_buf(r->iov, nin, 0, id, n);
        finish(r, VIRTIO_BLK_S_OK, (uint32_t)n + 1);
        return 0;
    }
    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES: {
        if (readonly) {
            finish(r, VIRTIO_BLK_S_IOERR, 1);
            return 0;
        }
        struct {
            uint64_t sector;
            uint32_t num_sectors, flags;
        } seg;
        size_t skip = sizeof(hdr);
        uint64_t total = iov_length(e->iov, e->nout);
        if ((total - skip) % sizeof(seg) || total == skip ||
            (total - skip) / sizeof(seg) > VIRTIO_BLK_MAX_SEGS) {
            finish(r, VIRTIO_BLK_S_UNSUPP, 1);
            return 0;
        }
        for (; skip < total; skip += sizeof(seg)) {
            iov_to_buf(e->iov, e->nout, skip, &seg, sizeof(seg));
            /* only the unmap flag (bit 0) is defined, and only for write-zeroes */
            if ((seg.flags & ~1u) || (r->type == VIRTIO_BLK_T_DISCARD && (seg.flags & 1))) {
                finish(r, VIRTIO_BLK_S_UNSUPP, 1);
                return 0;
            }
            if (seg.sector > UINT64_MAX / 512 ||
                !in_range(seg.sector * 512, (uint64_t)seg.num_sectors * 512, capacity)) {
                finish(r, VIRTIO_BLK_S_IOERR, 1);
                return 0;
            }
            r->ranges[r->nranges++] = (struct virtio_blk_range){
                seg.sector * 512, (uint64_t)seg.num_sectors * 512, seg.flags & 1};
        }
        r->in_len = 1;
        return 0;
    }
    default:
        finish(r, VIRTIO_BLK_S_UNSUPP, 1);
        return 0;
    }
}
