#include <errno.h>
#include "virtio/machine_glue.h"

/* Placeholder until the virtio layer lands (replaced by src/virtio/setup.c):
 * a VM with no virtio devices works; one that asks for them is refused. */
static int none_requested(const struct vm_config *cfg, vs_err *err)
{
    if (cfg->ndisks || cfg->nnets || cfg->rng || cfg->vconsole || cfg->vsock_cid)
        return vs_error(err, ENOSYS, "virtio devices are not built yet");
    return 0;
}

int virtio_setup_pci(const struct vm_config *cfg, struct guest_mem *mem, struct pci_bus *pci,
                     struct vs_event_loop *loop, struct virtio_set **out, vs_err *err)
{
    *out = NULL;
    return none_requested(cfg, err);
}

int virtio_setup_mmio(const struct vm_config *cfg, struct guest_mem *mem, struct io_bus *mmio,
                      uint64_t base, uint64_t stride, const struct irq_line *irqs, unsigned nslots,
                      struct vs_event_loop *loop, struct virtio_set **out, unsigned *nused,
                      vs_err *err)
{
    *out = NULL;
    *nused = 0;
    return none_requested(cfg, err);
}

int virtio_set_pause(struct virtio_set *s, vs_err *err)
{
    return 0;
}
void virtio_set_resume(struct virtio_set *s) {}
int virtio_set_save(struct virtio_set *s, struct state_writer *w, vs_err *err)
{
    return 0;
}
int virtio_set_load(struct virtio_set *s, struct state_reader *r, vs_err *err)
{
    return 0;
}
void virtio_set_destroy(struct virtio_set *s) {}
