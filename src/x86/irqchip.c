/* KVM's in-kernel interrupt controllers (two 8259s, the IOAPIC, per-vCPU
 * LAPICs) and PIT, the GSI routing table (legacy pins plus MSI routes for
 * irqfds), interrupt lines for device models, and their save/load. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"
#include "x86/layout.h"
#include "x86/machine.h"

#define MAX_ROUTES 1024

/* The routing table is allocated with room for MAX_ROUTES entries and, after
 * them, the irqfd of each entry (-1 for pins): KVM cannot tell which GSI an
 * eventfd is bound to (KVM_IRQFD deassign succeeds even when nothing
 * matched), so irqfd_put needs its own record. */
static int *route_fds(struct kvm_irq_routing *rt)
{
    return (int *)(void *)&rt->entries[MAX_ROUTES];
}

static void add_route(struct kvm_irq_routing *rt, uint32_t gsi, uint32_t chip, uint32_t pin)
{
    struct kvm_irq_routing_entry *e = &rt->entries[rt->nr++];
    memset(e, 0, sizeof(*e));
    e->gsi = gsi;
    e->type = KVM_IRQ_ROUTING_IRQCHIP;
    e->u.irqchip.irqchip = chip;
    e->u.irqchip.pin = pin;
}

/* QEMU's PC routing: ISA IRQs to both 8259 and IOAPIC, IRQ0 to IOAPIC pin 2
 * (the MADT's override), GSIs 16-23 to the IOAPIC only. */
static void legacy_routes(struct kvm_irq_routing *rt)
{
    rt->nr = 0;
    for (uint32_t i = 0; i < 16; i++) {
        if (i == 2)
            continue; /* cascade */
        add_route(rt, i, i < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE, i % 8);
    }
    for (uint32_t i = 0; i < X86_IOAPIC_PINS; i++) {
        if (i == 2)
            continue;
        add_route(rt, i, KVM_IRQCHIP_IOAPIC, i == 0 ? 2 : i);
    }
}

int x86_irqchip_create(struct x86_machine *m, vs_err *err)
{
    if (ioctl(m->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
        return vs_error_errno(err, "KVM_CREATE_IRQCHIP");
    struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
    if (ioctl(m->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
        return vs_error_errno(err, "KVM_CREATE_PIT2");
    m->routing = calloc(1, sizeof(*m->routing) + MAX_ROUTES * sizeof(struct kvm_irq_routing_entry) +
                               MAX_ROUTES * sizeof(int));
    if (!m->routing)
        return vs_error(err, ENOMEM, "out of memory");
    legacy_routes(m->routing);
    for (unsigned i = 0; i < MAX_ROUTES; i++)
        route_fds(m->routing)[i] = -1;
    m->next_msi_gsi = X86_IOAPIC_PINS;
    pthread_mutex_init(&m->routing_lock, NULL);
    if (ioctl(m->vm_fd, KVM_SET_GSI_ROUTING, m->routing) < 0)
        return vs_error_errno(err, "KVM_SET_GSI_ROUTING");
    return 0;
}

void x86_irq_set_level(void *machine, unsigned gsi, int level)
{
    struct x86_machine *m = machine;
    struct kvm_irq_level l = {.irq = gsi, .level = (uint32_t)level};
    if (ioctl(m->vm_fd, KVM_IRQ_LINE, &l) < 0)
        vs_debug("KVM_IRQ_LINE %u: %s", gsi, strerror(errno));
}

static int msi_signal(void *opaque, uint64_t addr, uint32_t data)
{
    struct x86_machine *m = opaque;
    struct kvm_msi msi = {
        .address_lo = (uint32_t)addr, .address_hi = (uint32_t)(addr >> 32), .data = data};
    int r = ioctl(m->vm_fd, KVM_SIGNAL_MSI, &msi);
    return r < 0 ? -1 : 0;
}

/* An eventfd bound to a new MSI route: a device thread raises the
 * interrupt with one write, without a trip through the VMM. */
static int msi_irqfd_get(void *opaque, uint64_t addr, uint32_t data)
{
    struct x86_machine *m = opaque;
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0)
        return -1;
    pthread_mutex_lock(&m->routing_lock);
    struct kvm_irq_routing *rt = m->routing;
    if (rt->nr >= MAX_ROUTES) {
        pthread_mutex_unlock(&m->routing_lock);
        close(fd);
        return -1;
    }
    /* the lowest GSI no route holds: a guest re-programming its vectors
     * must not walk the numbers up to KVM's limit */
    uint32_t gsi = m->next_msi_gsi;
    for (uint32_t i = 0; i < rt->nr; i++)
        if (rt->entries[i].gsi == gsi) {
            gsi++;
            i = UINT32_MAX; /* rescan from the start */
        }
    struct kvm_irq_routing_entry *e = &rt->entries[rt->nr++];
    memset(e, 0, sizeof(*e));
    e->gsi = gsi;
    e->type = KVM_IRQ_ROUTING_MSI;
    e->u.msi.address_lo = (uint32_t)addr;
    e->u.msi.address_hi = (uint32_t)(addr >> 32);
    e->u.msi.data = data;
    struct kvm_irqfd irqfd = {.fd = (uint32_t)fd, .gsi = gsi};
    if (ioctl(m->vm_fd, KVM_SET_GSI_ROUTING, rt) < 0 || ioctl(m->vm_fd, KVM_IRQFD, &irqfd) < 0) {
        rt->nr--;
        ioctl(m->vm_fd, KVM_SET_GSI_ROUTING, rt);
        pthread_mutex_unlock(&m->routing_lock);
        close(fd);
        return -1;
    }
    route_fds(rt)[rt->nr - 1] = fd;
    pthread_mutex_unlock(&m->routing_lock);
    return fd;
}

static void msi_irqfd_put(void *opaque, int fd)
{
    struct x86_machine *m = opaque;
    pthread_mutex_lock(&m->routing_lock);
    struct kvm_irq_routing *rt = m->routing;
    int *fds = route_fds(rt);
    for (uint32_t i = 0; i < rt->nr; i++) {
        if (fds[i] != fd)
            continue;
        struct kvm_irqfd irqfd = {
            .fd = (uint32_t)fd, .gsi = rt->entries[i].gsi, .flags = KVM_IRQFD_FLAG_DEASSIGN};
        ioctl(m->vm_fd, KVM_IRQFD, &irqfd);
        memmove(&rt->entries[i], &rt->entries[i + 1], (rt->nr - i - 1) * sizeof(rt->entries[0]));
        memmove(&fds[i], &fds[i + 1], (rt->nr - i - 1) * sizeof(fds[0]));
        rt->nr--;
        fds[rt->nr] = -1;
        ioctl(m->vm_fd, KVM_SET_GSI_ROUTING, rt);
        break;
    }
    pthread_mutex_unlock(&m->routing_lock);
    close(fd);
}

int x86_ioeventfd(void *machine, uint64_t addr, unsigned len, bool pio, bool datamatch,
                  uint64_t data, int fd, bool assign)
{
    struct x86_machine *m = machine;
    struct kvm_ioeventfd e = {.datamatch = data, .addr = addr, .len = len, .fd = fd};
    if (pio)
        e.flags |= KVM_IOEVENTFD_FLAG_PIO;
    if (datamatch)
        e.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
    if (!assign)
        e.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
    return ioctl(m->vm_fd, KVM_IOEVENTFD, &e) < 0 ? -1 : 0;
}

void x86_msi_init(struct x86_machine *m)
{
    m->msi = (struct msi_sink){
        .signal = msi_signal, .irqfd_get = msi_irqfd_get, .irqfd_put = msi_irqfd_put, .opaque = m};
}

int x86_irqchip_save(struct x86_machine *m, struct state_writer *w, vs_err *err)
{
    for (uint32_t chip = 0; chip < 3; chip++) {
        struct kvm_irqchip c = {.chip_id = chip};
        if (ioctl(m->vm_fd, KVM_GET_IRQCHIP, &c) < 0)
            return vs_error_errno(err, "KVM_GET_IRQCHIP %u", chip);
        state_begin(w, "x86.irqchip", chip, 1);
        state_put(w, &c, sizeof(c));
        state_end(w);
    }
    struct kvm_pit_state2 pit;
    if (ioctl(m->vm_fd, KVM_GET_PIT2, &pit) < 0)
        return vs_error_errno(err, "KVM_GET_PIT2");
    state_begin(w, "x86.pit", 0, 1);
    state_put(w, &pit, sizeof(pit));
    state_end(w);
    struct kvm_clock_data clk = {0};
    if (ioctl(m->vm_fd, KVM_GET_CLOCK, &clk) < 0)
        return vs_error_errno(err, "KVM_GET_CLOCK");
    /* Version 2 adds KVM's real time at the moment of the save; version 3
     * vessel's own CLOCK_REALTIME, which every host has, so a restore can
     * advance the guest's clocks by the time that passed. */
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    state_begin(w, "x86.kvmclock", 0, 3);
    state_put_u64(w, clk.clock);
    state_put_u32(w, clk.flags);
    state_put_u64(w, clk.realtime);
    state_put_u64(w, (uint64_t)now.tv_sec * 1000000000ULL + (uint64_t)now.tv_nsec);
    state_end(w);
    return 0;
}

int x86_irqchip_load(struct x86_machine *m, struct state_reader *r, vs_err *err)
{
    uint32_t version;
    for (uint32_t chip = 0; chip < 3; chip++) {
        struct kvm_irqchip c;
        if (state_find(r, "x86.irqchip", chip, &version, err) < 0 ||
            state_get(r, &c, sizeof(c), err) < 0)
            return -1;
        if (c.chip_id != chip)
            return vs_error(err, EINVAL, "x86.irqchip %u: saved chip id %u", chip, c.chip_id);
        if (ioctl(m->vm_fd, KVM_SET_IRQCHIP, &c) < 0)
            return vs_error_errno(err, "KVM_SET_IRQCHIP %u", chip);
    }
    struct kvm_pit_state2 pit;
    if (state_find(r, "x86.pit", 0, &version, err) < 0 || state_get(r, &pit, sizeof(pit), err) < 0)
        return -1;
    if (ioctl(m->vm_fd, KVM_SET_PIT2, &pit) < 0)
        return vs_error_errno(err, "KVM_SET_PIT2");
    uint64_t clock, realtime = 0;
    uint32_t flags = 0;
    if (state_find(r, "x86.kvmclock", 0, &version, err) < 0 || state_get_u64(r, &clock, err) < 0)
        return -1;
    if (version >= 2 && (state_get_u32(r, &flags, err) < 0 || state_get_u64(r, &realtime, err) < 0))
        return -1;
    uint64_t saved_at = 0;
    if (version >= 3 && state_get_u64(r, &saved_at, err) < 0)
        return -1;
    struct kvm_clock_data clk = {.clock = clock};
    int adjust = ioctl(m->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_ADJUST_CLOCK);
    m->restore_advance_ns = 0;
    if (saved_at) {
        /* The guest was stopped for (now - saved_at): move kvm-clock on by
         * that much; x86_vcpu_load moves the TSCs on by the same time (a
         * guest whose clocksource is the TSC would otherwise lag). */
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        uint64_t now_ns = (uint64_t)now.tv_sec * 1000000000ULL + (uint64_t)now.tv_nsec;
        if (now_ns > saved_at)
            m->restore_advance_ns = now_ns - saved_at;
        clk.clock = clock + m->restore_advance_ns;
    } else if ((flags & KVM_CLOCK_REALTIME) && adjust > 0 && (adjust & KVM_CLOCK_REALTIME)) {
        clk.flags = KVM_CLOCK_REALTIME;
        clk.realtime = realtime;
    }
    int rc = ioctl(m->vm_fd, KVM_SET_CLOCK, &clk);
    if (rc < 0 && clk.flags) {
        /* This host cannot relate kvmclock to real time (no TSC
         * clocksource): restore the clock as it was. */
        clk.flags = 0;
        rc = ioctl(m->vm_fd, KVM_SET_CLOCK, &clk);
    }
    if (rc < 0)
        return vs_error_errno(err, "KVM_SET_CLOCK");
    return 0;
}
