/* Constructors of vessel's virtio device models. Each returns a device with
 * no transport attached; the machine glue (setup.c) plugs it into
 * virtio-pci or virtio-mmio. Freed with virtio_dev_destroy(). */
#ifndef VESSEL_VIRTIO_DEVICES_H
#define VESSEL_VIRTIO_DEVICES_H

#include "block/disk.h"
#include "util/event_loop.h"
#include "virtio/virtio.h"
#include "vm/config.h"

/* virtio-balloon (virtio/balloon.h has its controls). */
struct virtio_dev *virtio_balloon_new(struct guest_mem *mem, const struct vm_balloon_config *bc,
                                      vs_err *err);
struct virtio_dev *virtio_rng_new(struct guest_mem *mem, unsigned index, vs_err *err);
/* nqueues > 1 gives multi-queue (VIRTIO_BLK_F_MQ). */
struct virtio_dev *virtio_blk_new(struct guest_mem *mem, const struct vm_disk_config *dc,
                                  unsigned index, unsigned nqueues, vs_err *err);
/* The disk d serves and its index among the VM's disks; NULL if d is not a
 * virtio-blk device. */
struct disk *virtio_blk_disk(struct virtio_dev *d, unsigned *index);
/* Live migration's dirty tracking: from start on, every chunk (1 <<
 * chunk_shift bytes) the guest writes, discards or zeroes is marked once
 * the request completes; fetch ORs the marks into out (words 64-bit words,
 * as start reported) and clears them; stop ends it. */
int virtio_blk_track_start(struct virtio_dev *d, unsigned chunk_shift, size_t *words, vs_err *err);
void virtio_blk_track_fetch(struct virtio_dev *d, uint64_t *out, size_t words);
void virtio_blk_track_stop(struct virtio_dev *d);
/* Grow a virtio-blk disk while the guest runs (raw image files; the guest
 * gets a config interrupt and sees the new capacity). Refused: read-only
 * disks (EROFS), shrinking, sizes not a multiple of 512, other formats. */
int virtio_blk_resize(struct virtio_dev *d, uint64_t size, vs_err *err);
/* The disk's I/O rate limit, changeable at any time (all zero: none). */
void virtio_blk_set_rate_limit(struct virtio_dev *d, const struct vs_rate_config *rc);
void virtio_blk_get_rate_limit(struct virtio_dev *d, struct vs_rate_config *rc,
                               uint64_t *throttled);
/* backend_instance: the backend's order among the VM's backends of its
 * kind (numbers its state section). */
struct virtio_dev *virtio_net_new(struct guest_mem *mem, const struct vm_net_config *nc,
                                  unsigned index, unsigned backend_instance, vs_err *err);
/* The NIC's transmit (guest -> host) rate limit, changeable at any time. */
void virtio_net_set_rate_limit(struct virtio_dev *d, const struct vs_rate_config *rc);
void virtio_net_get_rate_limit(struct virtio_dev *d, struct vs_rate_config *rc,
                               uint64_t *throttled);
/* virtio-net or not, and its index among the VM's NICs */
bool virtio_is_net(const struct virtio_dev *d, unsigned *index);
/* backend: "file:PATH" (output only), "socket:PATH" (listening unix socket). */
struct virtio_dev *virtio_console_new(struct guest_mem *mem, const char *backend,
                                      struct vs_event_loop *loop, unsigned index, vs_err *err);
/* uds: host unix socket path for the Firecracker-style bridge (NULL: vhost
 * only). */
struct virtio_dev *virtio_vsock_new(struct guest_mem *mem, uint32_t cid, const char *uds,
                                    struct vs_event_loop *loop, vs_err *err);
/* virtio-fs for one --share: starts virtiofsd on the share's directory and
 * serves the device through it over vhost-user (virtio/fs.c). */
struct virtio_dev *virtio_fs_new(struct guest_mem *mem, const struct vm_share_config *sc,
                                 unsigned index, struct vs_event_loop *loop, vs_err *err);

#endif
