/* Devices still being written: refuse clearly instead of failing to link. */
#include <errno.h>
#include "virtio/devices.h"

struct virtio_dev *virtio_vsock_new(struct guest_mem *mem, uint32_t cid, const char *uds,
                                    struct vs_event_loop *loop, vs_err *err)
{
    vs_error(err, ENOSYS, "--vsock: virtio-vsock is not built yet");
    return NULL;
}
