/* A fake machine behind struct vm_control for snapshot and API tests:
 * two memfd RAM regions with a few pages written, one state section, VMM
 * dirty tracking as the dirty log. */
#ifndef VESSEL_TESTS_FAKE_MACHINE_H
#define VESSEL_TESTS_FAKE_MACHINE_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hw/bus.h"
#include "snapshot/snapshot.h"
#include "virtio/devices.h"
#include "virtio/machine_glue.h"
#include "vm/control.h"

#define MiB (1024 * 1024)

struct fake {
    struct guest_mem mem;
    struct vm_config cfg;
    bool paused, dirty_on, fail_save, stopped;
    int pauses, resumes;
    int write_before_pause; /* nth pause call that first writes guest memory */
    uint32_t counter;
    uint8_t cpu[80];
    size_t cpu_len;
    /* its devices (fake_machine_plug_disks): a virtio-blk per disk on an
     * MMIO bus nobody reads */
    struct io_bus bus;
    struct virtio_set *devs;
};

static int f_pause(void *m, vs_err *e)
{
    struct fake *f = m;
    /* the guest's writes between the snapshot's memory pre-copy and its
     * final pause */
    if (f->write_before_pause == f->pauses + 1) {
        memset(guest_mem_ptr_w(&f->mem, 30 * 4096, 4096), 0x77, 4096);
        memset(guest_mem_ptr_w(&f->mem, 8192, 4096), 0, 4096);
    }
    f->paused = true;
    f->pauses++;
    return 0;
}
static int f_resume(void *m, vs_err *e)
{
    struct fake *f = m;
    f->paused = false;
    f->resumes++;
    return 0;
}
static bool f_is_paused(void *m)
{
    return ((struct fake *)m)->paused;
}
static int f_save(void *m, struct state_writer *w, vs_err *e)
{
    struct fake *f = m;
    assert_true(f->paused);
    if (f->fail_save)
        return vs_error(e, EIO, "fake device refuses to save");
    state_begin(w, "fake", 0, 1);
    state_put_u32(w, f->counter);
    state_end(w);
    return 0;
}
static struct guest_mem *f_memory(void *m)
{
    return &((struct fake *)m)->mem;
}
static int f_enable(void *m, vs_err *e)
{
    struct fake *f = m;
    f->dirty_on = true;
    return guest_mem_dirty_enable(&f->mem, e);
}
static int f_fetch(void *m, unsigned i, uint64_t *bm, vs_err *e)
{
    guest_mem_dirty_fetch(&((struct fake *)m)->mem, i, bm);
    return 0;
}
static void f_stop(void *m)
{
    ((struct fake *)m)->stopped = true;
}
static int f_cpu(void *m, struct vs_buf *out, vs_err *e)
{
    struct fake *f = m;
    if (f->cpu_len)
        vs_buf_append(out, f->cpu, f->cpu_len);
    return 0;
}

static struct virtio_set *f_devices(void *m)
{
    return ((struct fake *)m)->devs;
}

static int f_find_disk0(struct virtio_dev *d, void *opaque, vs_err *e)
{
    unsigned i;
    struct disk *k = virtio_blk_disk(d, &i);
    if (k && i == 0)
        *(struct disk **)opaque = k;
    return 0;
}

/* A virtio-blk device for each disk of the fake's config (which opens it);
 * returns disk 0 as the device holds it. */
static inline struct disk *fake_machine_plug_disks(struct fake *f)
{
    static const struct irq_line irqs[8];
    vs_err err;
    unsigned used;
    assert_int_equal(virtio_setup_mmio(&f->cfg, &f->mem, &f->bus, 0x10000000, 0x1000, irqs, 8, NULL,
                                       &f->devs, &used, &err),
                     0);
    struct disk *d0 = NULL;
    assert_int_equal(virtio_set_foreach(f->devs, f_find_disk0, &d0, &err), 0);
    assert_non_null(d0);
    return d0;
}

static void fake_machine_init(struct fake *f, struct vm_control *c)
{
    memset(f, 0, sizeof(*f));
    guest_mem_init(&f->mem);
    io_bus_init(&f->bus, "fake-mmio");
    vs_err err;
    assert_int_equal(guest_mem_add_anon(&f->mem, 0, 4 * MiB, &err), 0);
    assert_int_equal(guest_mem_add_anon(&f->mem, 1ULL << 30, 2 * MiB, &err), 0);
    vm_config_init(&f->cfg);
    f->cfg.cpus = 2;
    f->cfg.memory = 6 * MiB;
    f->cfg.kernel = strdup("/boot/vmlinuz-test");
    *c = (struct vm_control){.machine = f,
                             .arch = VM_ARCH_X86_64,
                             .cfg = &f->cfg,
                             .pause = f_pause,
                             .resume = f_resume,
                             .is_paused = f_is_paused,
                             .save_state = f_save,
                             .memory = f_memory,
                             .enable_dirty_log = f_enable,
                             .fetch_dirty_log = f_fetch,
                             .cpu_features = f_cpu,
                             .devices = f_devices,
                             .request_stop = f_stop};
    /* guest writes: a few pages in each region */
    memset(guest_mem_region(&f->mem, 0)->hva + 8192, 0x11, 4096);
    memset(guest_mem_region(&f->mem, 0)->hva + 3 * MiB + 100, 0x22, 10000);
    memset(guest_mem_region(&f->mem, 1)->hva + 4096, 0x33, 4096);
    f->counter = 41;
}

static void fake_machine_free(struct fake *f)
{
    virtio_set_destroy(f->devs);
    io_bus_destroy(&f->bus);
    guest_mem_destroy(&f->mem);
    vm_config_free(&f->cfg);
}

#endif
