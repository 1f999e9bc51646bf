/* The x86-64 KVM machine type (vm/machine.h): build the KVM machine from a vm_config, load
 * the kernel (bzImage through the 64-bit boot protocol, ELF vmlinux through
 * its 64-bit entry or PVH), run the vCPU threads and turn the way the guest
 * stopped into vessel's exit status. A reboot tears the machine down and
 * builds it again; the console survives. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/io.h"
#include "util/log.h"
#include "virtio/machine_glue.h"
#include "vm/machine.h"
#include "x86/acpi.h"
#include "x86/boot.h"
#include "x86/cpuid.h"
#include "x86/layout.h"
#include "x86/machine.h"
#include "x86/firmware.h"

static const struct vm_pause_hooks pause_hooks;

/* ---- life cycle ---- */

void x86_machine_request_stop(struct x86_machine *m, enum x86_stop why, const char *fmt, ...)
{
    pthread_mutex_lock(&m->lock);
    /* The first reason wins, except that a reboot yields to anything that
     * ends the VM (a signal or quit arriving while the guest reboots). */
    enum x86_stop cur = atomic_load(&m->stop);
    if (cur == X86_RUNNING || (cur == X86_STOP_REBOOT && why != X86_STOP_REBOOT)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(m->stop_msg, sizeof(m->stop_msg), fmt, ap);
        va_end(ap);
        atomic_store(&m->stop, why);
    }
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
    uint64_t one = 1;
    ssize_t r = write(m->wake_fd, &one, sizeof(one));
    (void)r;
}

void x86_machine_vcpu_checkpoint(struct x86_machine *m, struct x86_vcpu *v)
{
    if (!vm_pause_requested(&m->pause))
        return;
    pthread_mutex_lock(&m->lock);
    while (vm_pause_requested(&m->pause) && atomic_load(&m->stop) == X86_RUNNING) {
        if (!v->parked) {
            v->parked = true;
            m->nparked++;
            pthread_cond_broadcast(&m->cond);
        }
        pthread_cond_wait(&m->cond, &m->lock);
    }
    if (v->parked) {
        v->parked = false;
        m->nparked--;
    }
    pthread_mutex_unlock(&m->lock);
}

static void pm_event(void *opaque, enum acpi_pm_event ev)
{
    struct x86_machine *m = opaque;
    if (ev == ACPI_PM_POWEROFF)
        x86_machine_request_stop(m, X86_STOP_POWEROFF, "guest powered off");
    else
        x86_machine_request_stop(m, X86_STOP_REBOOT, "guest reset");
}

static void kbd_reset(void *opaque)
{
    x86_machine_request_stop(opaque, X86_STOP_REBOOT, "guest reset (i8042)");
}

/* Port 0x80 (POST codes, the kernel's I/O delay) and other ports a stock
 * kernel pokes that have nothing behind them but must not cost a log line. */
static uint64_t ignore_read(void *opaque, uint64_t off, unsigned len)
{
    (void)opaque;
    (void)off;
    return len >= 8 ? ~0ULL : (1ULL << (8 * len)) - 1;
}
static void ignore_write(void *opaque, uint64_t off, uint64_t val, unsigned len)
{
    (void)opaque;
    (void)off;
    (void)val;
    (void)len;
}

static void route_intx(void *machine, unsigned slot, struct irq_line *out)
{
    (void)machine;
    *out = (struct irq_line){
        .set_level = x86_irq_set_level, .opaque = machine, .irq = X86_PCI_GSI_BASE + slot % 8};
}

/* ---- building the machine ---- */

/* Open /dev/kvm, or say in one line what is wrong and what to do. */
static int open_kvm(vs_err *err)
{
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd >= 0)
        return fd;
    int e = errno;
    const char *hint = e == ENOENT   ? " (no KVM here: load kvm_intel or kvm_amd, or enable "
                                       "virtualization in the firmware)"
                       : e == EACCES ? " (add the user to the kvm group)"
                                     : "";
    return vs_error(err, e, "cannot open /dev/kvm: %s%s", strerror(e), hint);
}

static int kvm_open(struct x86_machine *m, vs_err *err)
{
    m->kvm_fd = open_kvm(err);
    if (m->kvm_fd < 0)
        return -1;
    int v = ioctl(m->kvm_fd, KVM_GET_API_VERSION, 0);
    if (v != KVM_API_VERSION)
        return vs_error(err, ENOTSUP, "/dev/kvm speaks KVM API %d, vessel needs %d", v,
                        KVM_API_VERSION);
    static const struct {
        int cap;
        const char *name;
    } need[] = {{KVM_CAP_IRQCHIP, "IRQCHIP"},         {KVM_CAP_PIT2, "PIT2"},
                {KVM_CAP_USER_MEMORY, "USER_MEMORY"}, {KVM_CAP_IRQ_ROUTING, "IRQ_ROUTING"},
                {KVM_CAP_EXT_CPUID, "EXT_CPUID"},     {KVM_CAP_IMMEDIATE_EXIT, "IMMEDIATE_EXIT"}};
    for (size_t i = 0; i < ARRAY_SIZE(need); i++)
        if (ioctl(m->kvm_fd, KVM_CHECK_EXTENSION, need[i].cap) <= 0)
            return vs_error(err, ENOTSUP, "/dev/kvm lacks KVM_CAP_%s", need[i].name);
    int max = ioctl(m->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
    if (max <= 0)
        max = ioctl(m->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
    if (max > 0 && m->ncpus > (unsigned)max)
        return vs_error(err, EINVAL, "--cpus %u: this KVM supports at most %d vCPUs", m->ncpus,
                        max);
    return 0;
}

static int get_supported_cpuid(struct x86_machine *m, vs_err *err)
{
    for (unsigned n = 128; n <= 4096; n *= 2) {
        struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(struct kvm_cpuid_entry2));
        if (!c)
            return vs_error(err, ENOMEM, "out of memory");
        c->nent = n;
        if (ioctl(m->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
            m->cpuid = c;
            return 0;
        }
        free(c);
        if (errno != E2BIG)
            return vs_error_errno(err, "KVM_GET_SUPPORTED_CPUID");
    }
    return vs_error(err, E2BIG, "KVM_GET_SUPPORTED_CPUID: too many entries");
}

static int get_msr_list(struct x86_machine *m, vs_err *err)
{
    struct kvm_msr_list probe = {.nmsrs = 0};
    ioctl(m->kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe);
    unsigned n = probe.nmsrs;
    struct kvm_msr_list *l = calloc(1, sizeof(*l) + n * sizeof(uint32_t));
    if (!l)
        return vs_error(err, ENOMEM, "out of memory");
    l->nmsrs = n;
    if (ioctl(m->kvm_fd, KVM_GET_MSR_INDEX_LIST, l) < 0) {
        free(l);
        return vs_error_errno(err, "KVM_GET_MSR_INDEX_LIST");
    }
    m->msr_list = malloc((n ? n : 1) * sizeof(uint32_t));
    if (!m->msr_list) {
        free(l);
        return vs_error(err, ENOMEM, "out of memory");
    }
    memcpy(m->msr_list, l->indices, n * sizeof(uint32_t));
    m->nmsrs = n;
    free(l);
    return 0;
}

/* A guest memory region as KVM memslot r->slot; size 0 deletes the slot. */
static int set_memslot(struct x86_machine *m, const struct guest_mem_region *r, uint64_t size,
                       vs_err *err)
{
    bool log = __atomic_load_n(&m->dirty_log, __ATOMIC_ACQUIRE);
    struct kvm_userspace_memory_region s = {.slot = r->slot,
                                            .flags = log ? KVM_MEM_LOG_DIRTY_PAGES : 0,
                                            .guest_phys_addr = r->gpa,
                                            .memory_size = size,
                                            .userspace_addr = (uintptr_t)r->hva};
    if (ioctl(m->vm_fd, KVM_SET_USER_MEMORY_REGION, &s) < 0)
        return vs_error_errno(err, "KVM_SET_USER_MEMORY_REGION %u", r->slot);
    return 0;
}

static int set_memslots(struct x86_machine *m, vs_err *err)
{
    const struct guest_mem_layout *l = guest_mem_layout(&m->mem);
    for (unsigned i = 0; i < l->n; i++)
        if (set_memslot(m, &l->r[i], l->r[i].size, err) < 0)
            return -1;
    return 0;
}

/* The memslots follow guest memory as regions come and go at run time
 * (guest_mem calls these under its lock). */
static int memslot_add(void *machine, const struct guest_mem_region *r, vs_err *err)
{
    return set_memslot(machine, r, r->size, err);
}

static void memslot_del(void *machine, const struct guest_mem_region *r)
{
    vs_err err;
    if (set_memslot(machine, r, 0, &err) < 0)
        vs_warn("removing guest memory at 0x%llx: %s", (unsigned long long)r->gpa, err.msg);
}

static void host_bridge_init(struct pci_device *d)
{
    memset(d, 0, sizeof(*d));
    d->name = "host-bridge";
    d->cfg[PCI_VENDOR_ID] = 0x86; /* Intel 0x8086:0x0d57, as Firecracker */
    d->cfg[PCI_VENDOR_ID + 1] = 0x80;
    d->cfg[PCI_DEVICE_ID] = 0x57;
    d->cfg[PCI_DEVICE_ID + 1] = 0x0d;
    d->cfg[PCI_CLASS_DEVICE] = 0x00; /* host bridge: class 06, subclass 00 */
    d->cfg[PCI_CLASS_DEVICE + 1] = 0x06;
}

/* Guest RAM as private anonymous memory, 2 MiB aligned and with
 * MADV_HUGEPAGE, so KVM can map it with large pages (far fewer nested page
 * faults; a memfd only gets huge pages if the host enables shmem THP). */
static int add_ram_thp(struct guest_mem *mem, uint64_t gpa, uint64_t size, vs_err *err)
{
    const uint64_t huge = 2ULL << 20;
    uint8_t *p = mmap(NULL, size + huge, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return vs_error_errno(err, "cannot map %llu MiB of guest memory",
                              (unsigned long long)(size >> 20));
    uint8_t *a = (uint8_t *)ALIGN_UP((uintptr_t)p, (uintptr_t)huge);
    if (a > p)
        munmap(p, (size_t)(a - p));
    if (a + size < p + size + huge)
        munmap(a + size, (size_t)(p + size + huge - (a + size)));
    madvise(a, size, MADV_HUGEPAGE);
    if (guest_mem_add_region(mem, gpa, size, a, -1, 0, err) < 0) {
        munmap(a, size);
        return -1;
    }
    return 0;
}

#define X86_MMIO64_SIZE (64ULL << 30)

static int machine_create(struct x86_machine *m, const struct vm_config *cfg,
                          struct vm_restore_source *restore, vs_err *err)
{
    m->cfg = cfg;
    m->ncpus = cfg->cpus;
    m->kvm_fd = m->vm_fd = m->wake_fd = -1;
    /* A restored VM's memory is ours from here on, whatever happens. */
    guest_mem_init(&m->mem);
    m->mem_owned = true;
    if (restore)
        guest_mem_move(&m->mem, restore->mem);
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->cond, NULL);
    m->pause = (struct vm_pause){.lock = &m->lock,
                                 .cond = &m->cond,
                                 .hooks = &pause_hooks,
                                 .machine = m,
                                 .devices = &m->virtio};
    io_bus_init(&m->pio, "pio");
    io_bus_init(&m->mmio, "mmio");
    m->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (m->wake_fd < 0)
        return vs_error_errno(err, "eventfd");
    if (kvm_open(m, err) < 0 || get_supported_cpuid(m, err) < 0 || get_msr_list(m, err) < 0)
        return -1;
    /* Without TSC-deadline Linux calibrates the LAPIC timer against the PM
     * timer at every boot (100 ms of port exits) and then programs it
     * through LAPIC exits. */
    m->tsc_deadline = ioctl(m->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0;
    m->has_brand = x86_cpuid_host_brand(m->brand);
    int rs = ioctl(m->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (rs <= 0)
        return vs_error_errno(err, "KVM_GET_VCPU_MMAP_SIZE");
    m->run_size = (size_t)rs;
    do {
        m->vm_fd = ioctl(m->kvm_fd, KVM_CREATE_VM, 0);
    } while (m->vm_fd < 0 && errno == EINTR);
    if (m->vm_fd < 0)
        return vs_error_errno(err, "KVM_CREATE_VM");
    /* Intel needs these 4 pages out of the guest's way (real-mode
     * emulation without unrestricted guest); harmless elsewhere. */
    if (ioctl(m->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)X86_TSS_ADDR) < 0)
        return vs_error_errno(err, "KVM_SET_TSS_ADDR");
    uint64_t idmap = X86_IDENTITY_MAP_ADDR;
    if (ioctl(m->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0)
        vs_debug("KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(errno));

    /* Guest RAM: below the PCI hole, the rest above 4 GiB. */
    if (!restore) {
        uint64_t low = m->ram.low, high = m->ram.high;
        /* A VM with a control API may be snapshotted: a memfd lets the
         * snapshot skip untouched pages and copy without the guest mapping.
         * Otherwise huge pages boot faster. VESSEL_X86_THP=0/1 overrides. */
        const char *e = getenv("VESSEL_X86_THP");
        bool thp = e && *e ? *e == '1' : !cfg->api_sock;
        /* a vhost-user backend (virtiofsd) maps guest RAM by its memfd */
        thp = thp && !cfg->nshares;
        int (*add)(struct guest_mem *, uint64_t, uint64_t, vs_err *) = cfg->mergeable
                                                                           ? guest_mem_add_mergeable
                                                                       : thp ? add_ram_thp
                                                                             : guest_mem_add_anon;
        if (add(&m->mem, 0, low, err) < 0 || (high && add(&m->mem, X86_RAM_4G, high, err) < 0))
            return -1;
    }
    if (set_memslots(m, err) < 0)
        return -1;
    guest_mem_set_listener(&m->mem, &(struct guest_mem_listener){
                                        .region_add = memslot_add,
                                        .region_del = memslot_del,
                                        .opaque = m,
                                    });
    if (x86_irqchip_create(m, err) < 0)
        return -1;
    x86_msi_init(m);

    /* Devices. */
    struct irq_line com1_irq = {.set_level = x86_irq_set_level, .opaque = m, .irq = X86_COM1_IRQ};
    uart8250_init(&m->com1, &com1_irq, 0, serial_console_uart_tx, serial_console_uart_rx_ready,
                  m->console);
    struct io_region com1 = {.name = "com1",
                             .base = X86_COM1_PORT,
                             .size = 8,
                             .read = uart8250_io_read,
                             .write = uart8250_io_write,
                             .opaque = &m->com1};
    if (io_bus_register(&m->pio, &com1, err) < 0)
        return -1;
    struct irq_line kbd_irq = {.set_level = x86_irq_set_level, .opaque = m, .irq = 1};
    i8042_init(&m->kbd, &kbd_irq, kbd_reset, m);
    struct irq_line rtc_irq = {.set_level = x86_irq_set_level, .opaque = m, .irq = 8};
    rtc_cmos_init(&m->rtc, &rtc_irq);
    acpi_pm_init(&m->pm, pm_event, m);
    if (i8042_register(&m->kbd, &m->pio, err) < 0 || rtc_cmos_register(&m->rtc, &m->pio, err) < 0 ||
        acpi_pm_register(&m->pm, &m->pio, err) < 0)
        return -1;
    static const struct {
        uint16_t base, size;
    } quiet[] = {{0x80, 1}, {0x87, 1}, {0xed, 1}, {0x92, 1}};
    for (size_t i = 0; i < ARRAY_SIZE(quiet); i++) {
        struct io_region r = {.name = "ignored",
                              .base = quiet[i].base,
                              .size = quiet[i].size,
                              .read = ignore_read,
                              .write = ignore_write,
                              .opaque = m};
        if (io_bus_register(&m->pio, &r, err) < 0)
            return -1;
    }

    if (pci_bus_init(&m->pci, &m->pio, &m->mmio, err) < 0)
        return -1;
    m->pci.mmio32_next = X86_MMIO32_START;
    m->pci.mmio32_end = X86_PCI_MMIO32_END;
    m->pci.mmio64_next = m->ram.mmio64_start;
    m->pci.mmio64_end = m->pci.mmio64_next + X86_MMIO64_SIZE;
    m->pci.route_intx = route_intx;
    m->pci.machine = m;
    m->pci.msi = &m->msi;
    m->pci.ioeventfd = x86_ioeventfd;
    host_bridge_init(&m->host_bridge);
    if (pci_register_device(&m->pci, &m->host_bridge, err) < 0)
        return -1;
    if (vs_event_loop_init(&m->loop, err) < 0)
        return -1;
    if (virtio_setup_pci(cfg, &m->mem, &m->pci, &m->loop, &m->virtio, err) < 0)
        return -1;
    if (vs_event_loop_start_thread(&m->loop, "vessel-io", err) < 0)
        return -1;
    m->loop_started = true;
    if (cfg->firmware && !restore && x86_firmware_create(m, err) < 0)
        return -1;

    for (unsigned i = 0; i < m->ncpus; i++)
        if (x86_vcpu_create(m, i, err) < 0)
            return -1;
    /* The power-on state a guest reboot returns to. */
    if (x86_irqchip_save(m, &m->reset_state, err) < 0)
        return -1;
    for (unsigned i = 0; i < m->ncpus; i++)
        if (x86_vcpu_save(&m->vcpus[i], &m->reset_state, err) < 0)
            return -1;
    return state_writer_status(&m->reset_state, err);
}

static void machine_destroy(struct x86_machine *m)
{
    for (unsigned i = 0; i < m->ncpus; i++)
        if (m->vcpus[i].m)
            x86_vcpu_destroy(&m->vcpus[i]);
    if (m->loop_started || m->loop.epfd > 0)
        vs_event_loop_stop(&m->loop);
    if (m->virtio)
        virtio_set_destroy(m->virtio);
    m->virtio = NULL;
    if (m->loop_started || m->loop.epfd > 0)
        vs_event_loop_destroy(&m->loop);
    if (m->vm_fd >= 0)
        close(m->vm_fd);
    if (m->kvm_fd >= 0)
        close(m->kvm_fd);
    if (m->wake_fd >= 0)
        close(m->wake_fd);
    if (m->mem_owned) {
        guest_mem_set_listener(&m->mem, NULL);
        guest_mem_destroy(&m->mem);
    }
    free(m->cpuid);
    free(m->msr_list);
    free(m->routing);
    io_bus_destroy(&m->pio);
    io_bus_destroy(&m->mmio);
}

/* ---- loading the kernel ---- */

/* A kernel file that passed kernel_check: kept open (a reboot reads it
 * again), with its parsed headers; the bzImage setup header is copied for the
 * zero page. */
#define KERNEL_HEAD_SIZE 0x400 /* covers the setup header, which ends by 0x301 */
struct kernel_image {
    int fd; /* -1: no kernel (a restored VM started without one) */
    uint8_t head[KERNEL_HEAD_SIZE];
    bool is_elf;
    struct x86_bzimage bz;
    struct x86_elf elf;
    uint64_t initrd_size;
};

/* The kernel file is mapped only while its headers are parsed and read into
 * guest RAM with kernel_read: never copied into the VMM (a malloc'd 14 MiB
 * bzImage stayed resident for the VM's whole life), and no mapping is left
 * that a file truncated later could turn into SIGBUS. */
static int map_file(const char *path, const char *what, uint8_t **out, size_t *len, int *fdp,
                    vs_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return vs_error_errno(err, "%s %s", what, path);
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return vs_error(err, EINVAL, "%s %s is not a regular file", what, path);
    }
    if (st.st_size == 0) {
        close(fd);
        return vs_error(err, EINVAL, "%s %s is empty", what, path);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
        close(fd);
        return vs_error_errno(err, "reading %s %s", what, path);
    }
    *out = p;
    *len = (size_t)st.st_size;
    *fdp = fd;
    return 0;
}

static void kernel_image_release(struct kernel_image *k)
{
    if (k->fd >= 0)
        close(k->fd);
    k->fd = -1;
}

/* Everything about the kernel and initrd that can be refused is refused
 * here, before a VM exists. */
static int kernel_parse(const struct vm_config *cfg, const struct x86_ram_layout *ram,
                        struct kernel_image *k, const uint8_t *data, size_t len, vs_err *err);

static int kernel_check(const struct vm_config *cfg, const struct x86_ram_layout *ram,
                        struct kernel_image *k, vs_err *err)
{
    memset(k, 0, sizeof(*k));
    k->fd = -1;
    uint8_t *data = NULL;
    size_t len = 0;
    if (map_file(cfg->kernel, "kernel", &data, &len, &k->fd, err) < 0)
        return -1;
    memcpy(k->head, data, len < KERNEL_HEAD_SIZE ? len : KERNEL_HEAD_SIZE);
    int rc = kernel_parse(cfg, ram, k, data, len, err);
    munmap(data, len);
    return rc;
}

static int kernel_parse(const struct vm_config *cfg, const struct x86_ram_layout *ram,
                        struct kernel_image *k, const uint8_t *data, size_t len, vs_err *err)
{
    uint64_t low = ram->low;
    uint64_t kernel_end;
    if (x86_is_elf(data, len)) {
        k->is_elf = true;
        if (x86_elf_parse(data, len, &k->elf, err) < 0)
            return vs_error_prefix(err, "kernel %s: ", cfg->kernel);
        if (!k->elf.is64 && !k->elf.has_pvh)
            return vs_error(err, EINVAL, "kernel %s: 32-bit ELF without a PVH entry note",
                            cfg->kernel);
        if (k->elf.lowest < X86_HIGHMEM_START || k->elf.highest > low)
            return vs_error(err, EINVAL,
                            "kernel %s: segments at 0x%llx-0x%llx do not fit in guest RAM "
                            "(1 MiB to %llu MiB)",
                            cfg->kernel, (unsigned long long)k->elf.lowest,
                            (unsigned long long)k->elf.highest, (unsigned long long)(low >> 20));
        kernel_end = k->elf.highest;
    } else {
        if (x86_bzimage_parse(data, len, &k->bz, err) < 0)
            return vs_error_prefix(err, "kernel %s: ", cfg->kernel);
        kernel_end = X86_HIGHMEM_START + k->bz.init_size;
        if (kernel_end > low)
            return vs_error(err, ENOSPC,
                            "kernel %s needs %llu MiB to unpack; --memory %llu MiB is too small",
                            cfg->kernel, (unsigned long long)(kernel_end >> 20),
                            (unsigned long long)(cfg->memory >> 20));
    }
    if (cfg->initrd) {
        struct stat st;
        if (stat(cfg->initrd, &st) < 0)
            return vs_error_errno(err, "initrd %s", cfg->initrd);
        k->initrd_size = (uint64_t)st.st_size;
        uint64_t limit = k->is_elf ? low : (uint64_t)k->bz.initrd_addr_max + 1;
        uint64_t addr;
        if (x86_initrd_place(k->initrd_size, ALIGN_UP(kernel_end, 4096ULL), limit, low, &addr,
                             err) < 0)
            return vs_error_prefix(err, "initrd %s: ", cfg->initrd);
    }
    size_t cl = cfg->append ? strlen(cfg->append) : 0;
    if (cl + 1 > X86_CMDLINE_MAX ||
        (!k->is_elf && k->bz.cmdline_size && cl + 1 > k->bz.cmdline_size))
        return vs_error(err, E2BIG, "--append: the command line is %zu bytes, too long", cl);
    return 0;
}

static void write_page_tables(struct x86_machine *m)
{
    uint64_t *pml4 = guest_mem_ptr_w(&m->mem, X86_PML4_ADDR, 4096);
    uint64_t *pdpt = guest_mem_ptr_w(&m->mem, X86_PDPT_ADDR, 4096);
    uint64_t *pd = guest_mem_ptr_w(&m->mem, X86_PD_ADDR, 4 * 4096);
    memset(pml4, 0, 4096);
    memset(pdpt, 0, 4096);
    pml4[0] = X86_PDPT_ADDR | 0x3;
    for (uint64_t i = 0; i < 4; i++)
        pdpt[i] = (X86_PD_ADDR + i * 4096) | 0x3;
    /* 2 MiB pages identity-mapping the low 4 GiB (RAM, ACPI, MMIO). */
    for (uint64_t i = 0; i < 4 * 512; i++)
        pd[i] = (i << 21) | 0x83;
    uint64_t *gdt = guest_mem_ptr_w(&m->mem, X86_GDT_ADDR, 6 * 8);
    gdt[0] = 0;
    gdt[1] = 0;
    gdt[2] = 0x00af9b000000ffffULL; /* 0x10: 64-bit code */
    gdt[3] = 0x00cf93000000ffffULL; /* 0x18: data */
    gdt[4] = 0x00008b0000000067ULL; /* 0x20: TSS */
    gdt[5] = 0x00cf9b000000ffffULL; /* 0x28: 32-bit code (PVH) */
}

static int load_kernel(struct x86_machine *m, const struct vm_config *cfg,
                       const struct kernel_image *k, vs_err *err)
{
    uint64_t low = m->ram.low;
    write_page_tables(m);

    struct x86_acpi_config ac = {.base = X86_ACPI_ADDR,
                                 .ncpus = m->ncpus,
                                 .pci_mmio32_start = X86_MMIO32_START,
                                 .pci_mmio32_end = X86_PCI_MMIO32_END,
                                 .pci_mmio64_start = m->pci.mmio64_end > 0 ? m->pci.mmio64_next : 0,
                                 .pci_mmio64_end = m->pci.mmio64_end,
                                 .pci_gsi_base = X86_PCI_GSI_BASE,
                                 .pci_gsi_count = 8};
    size_t used;
    uint8_t *acpi = guest_mem_ptr_w(&m->mem, X86_ACPI_ADDR, X86_ACPI_SIZE);
    if (x86_acpi_build(&ac, acpi, X86_ACPI_SIZE, &used, err) < 0)
        return -1;

    /* Without --append: the serial console (quiet for the default guest,
     * whose boot messages nobody asked for). */
    const char *append = cfg->append          ? cfg->append
                         : cfg->default_guest ? "console=ttyS0 quiet"
                                              : "console=ttyS0";
    size_t cl = strlen(append);
    if (guest_mem_write(&m->mem, X86_CMDLINE_ADDR, append, cl + 1) < 0)
        return vs_error(err, EINVAL, "command line does not fit");

    uint64_t kernel_end, entry;
    bool pvh = false;
    if (k->is_elf) {
        for (unsigned i = 0; i < k->elf.nsegs; i++) {
            const struct x86_elf_seg *s = &k->elf.segs[i];
            uint8_t *dst = guest_mem_ptr_w(&m->mem, s->paddr, s->memsz);
            if (!dst)
                return vs_error(err, EINVAL, "kernel segment at 0x%llx is outside RAM",
                                (unsigned long long)s->paddr);
            if (vs_pread_full(k->fd, dst, s->filesz, s->offset) < 0)
                return vs_error_errno(err, "reading kernel %s", cfg->kernel);
            memset(dst + s->filesz, 0, s->memsz - s->filesz);
        }
        kernel_end = k->elf.highest;
        pvh = !k->elf.is64;
        entry = pvh ? k->elf.pvh_entry : k->elf.entry;
    } else {
        uint8_t *dst = guest_mem_ptr_w(&m->mem, X86_HIGHMEM_START, k->bz.kernel_size);
        if (!dst)
            return vs_error(err, EINVAL, "kernel does not fit in guest memory");
        if (vs_pread_full(k->fd, dst, k->bz.kernel_size, k->bz.kernel_offset) < 0)
            return vs_error_errno(err, "reading kernel %s", cfg->kernel);
        kernel_end = X86_HIGHMEM_START + k->bz.init_size;
        entry = X86_HIGHMEM_START + 0x200; /* startup_64 */
    }

    uint64_t initrd_addr = 0;
    if (cfg->initrd) {
        uint64_t limit = k->is_elf ? low : (uint64_t)k->bz.initrd_addr_max + 1;
        if (x86_initrd_place(k->initrd_size, ALIGN_UP(kernel_end, 4096ULL), limit, low,
                             &initrd_addr, err) < 0)
            return vs_error_prefix(err, "initrd %s: ", cfg->initrd);
        int fd = open(cfg->initrd, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return vs_error_errno(err, "initrd %s", cfg->initrd);
        uint8_t *dst = guest_mem_ptr_w(&m->mem, initrd_addr, k->initrd_size);
        int r = dst ? vs_pread_full(fd, dst, k->initrd_size, 0) : -1;
        close(fd);
        if (r < 0)
            return vs_error(err, EIO, "initrd %s: short read", cfg->initrd);
    }

    struct x86_e820_entry e820[8];
    unsigned ne = x86_e820_build(&m->ram, e820, ARRAY_SIZE(e820));
    uint64_t info;
    if (pvh) {
        /* hvm_start_info at the zero page's address, memmap and module
         * list right after it. */
        uint8_t *p = guest_mem_ptr_w(&m->mem, X86_BOOT_PARAMS_ADDR, 4096);
        memset(p, 0, 4096);
        struct pvh_start_info si = {.magic = PVH_START_MAGIC,
                                    .version = 1,
                                    .cmdline_paddr = X86_CMDLINE_ADDR,
                                    .rsdp_paddr = X86_ACPI_ADDR,
                                    .memmap_paddr = X86_BOOT_PARAMS_ADDR + 0x100,
                                    .memmap_entries = ne};
        for (unsigned i = 0; i < ne; i++) {
            struct pvh_memmap_entry e = {e820[i].addr, e820[i].size, e820[i].type, 0};
            memcpy(p + 0x100 + i * sizeof(e), &e, sizeof(e));
        }
        if (cfg->initrd) {
            struct pvh_module mod = {.paddr = initrd_addr, .size = k->initrd_size};
            memcpy(p + 0x800, &mod, sizeof(mod));
            si.nr_modules = 1;
            si.modlist_paddr = X86_BOOT_PARAMS_ADDR + 0x800;
        }
        memcpy(p, &si, sizeof(si));
        info = X86_BOOT_PARAMS_ADDR;
    } else {
        struct x86_boot_params_in in = {.image = k->is_elf ? NULL : k->head,
                                        .bz = k->is_elf ? NULL : &k->bz,
                                        .cmdline_addr = X86_CMDLINE_ADDR,
                                        .cmdline_len = (uint32_t)cl,
                                        .initrd_addr = initrd_addr,
                                        .initrd_size = k->initrd_size,
                                        .e820 = e820,
                                        .ne820 = ne,
                                        .rsdp_addr = X86_ACPI_ADDR};
        uint8_t *zp = guest_mem_ptr_w(&m->mem, X86_BOOT_PARAMS_ADDR, BP_SIZE);
        if (x86_boot_params_build(zp, &in, err) < 0)
            return -1;
        info = X86_BOOT_PARAMS_ADDR;
    }
    return x86_vcpu_setup_boot(&m->vcpus[0], pvh, entry, info, err);
}

/* ---- vm_control ---- */

/* The shared pause protocol (vm/pause.h): a vCPU parks in
 * x86_machine_vcpu_checkpoint between KVM_RUNs. */
static void pause_kick(void *machine)
{
    struct x86_machine *m = machine;
    for (unsigned i = 0; i < m->ncpus; i++)
        x86_vcpu_kick(&m->vcpus[i]);
}

static bool pause_all_parked(void *machine)
{
    struct x86_machine *m = machine;
    return m->nparked >= m->ncpus;
}

static bool pause_stopping(void *machine)
{
    return atomic_load(&((struct x86_machine *)machine)->stop) != X86_RUNNING;
}

static const struct vm_pause_hooks pause_hooks = {
    .kick = pause_kick, .all_parked = pause_all_parked, .stopping = pause_stopping};

static int ctl_pause(void *machine, vs_err *err)
{
    return vm_pause(&((struct x86_machine *)machine)->pause, err);
}

static int ctl_resume(void *machine, vs_err *err)
{
    return vm_resume(&((struct x86_machine *)machine)->pause, err);
}

static bool ctl_is_paused(void *machine)
{
    return vm_is_paused(&((struct x86_machine *)machine)->pause);
}

static int ctl_save_state(void *machine, struct state_writer *w, vs_err *err)
{
    struct x86_machine *m = machine;
    if (!ctl_is_paused(m))
        return vs_error(err, EBUSY, "pause the VM before saving its state");
    state_begin(w, "x86.machine", 0, 1);
    state_put_u32(w, m->ncpus);
    state_put_u64(w, m->cfg->memory);
    state_end(w);
    for (unsigned i = 0; i < m->ncpus; i++)
        if (x86_vcpu_save(&m->vcpus[i], w, err) < 0)
            return -1;
    if (x86_irqchip_save(m, w, err) < 0)
        return -1;
    uart8250_save(&m->com1, w, 0);
    i8042_save(&m->kbd, w);
    rtc_cmos_save(&m->rtc, w);
    acpi_pm_save(&m->pm, w);
    pci_bus_save(&m->pci, w);
    if (m->virtio && virtio_set_save(m->virtio, w, err) < 0)
        return -1;
    return state_writer_status(w, err);
}

static int machine_load_state(struct x86_machine *m, struct state_reader *r, vs_err *err)
{
    uint32_t version, ncpus;
    uint64_t mem;
    if (state_find(r, "x86.machine", 0, &version, err) < 0 || state_get_u32(r, &ncpus, err) < 0 ||
        state_get_u64(r, &mem, err) < 0)
        return -1;
    if (ncpus != m->ncpus || mem != m->cfg->memory)
        return vs_error(err, EINVAL,
                        "snapshot is of a VM with %u vCPUs and %llu MiB, not %u and %llu MiB",
                        ncpus, (unsigned long long)(mem >> 20), m->ncpus,
                        (unsigned long long)(m->cfg->memory >> 20));
    /* Interrupt controllers first: the LAPIC state is per vCPU and goes
     * after the IOAPIC/PIC, as QEMU orders it. */
    if (x86_irqchip_load(m, r, err) < 0)
        return -1;
    for (unsigned i = 0; i < m->ncpus; i++)
        if (x86_vcpu_load(&m->vcpus[i], r, false, err) < 0)
            return -1;
    if (uart8250_load(&m->com1, r, 0, err) < 0 || i8042_load(&m->kbd, r, err) < 0 ||
        rtc_cmos_load(&m->rtc, r, err) < 0 || acpi_pm_load(&m->pm, r, err) < 0 ||
        pci_bus_load(&m->pci, r, err) < 0)
        return -1;
    if (m->virtio && virtio_set_load(m->virtio, r, err) < 0)
        return -1;
    return 0;
}

static int ctl_load_state(void *machine, struct state_reader *r, vs_err *err)
{
    if (machine_load_state(machine, r, err) < 0)
        return vs_error_prefix(err, "restoring the snapshot: ");
    return 0;
}

static struct guest_mem *ctl_memory(void *machine)
{
    return &((struct x86_machine *)machine)->mem;
}

static int ctl_enable_dirty_log(void *machine, vs_err *err)
{
    struct x86_machine *m = machine;
    if (guest_mem_dirty_enable(&m->mem, err) < 0)
        return -1;
    /* memslots added from now on log too */
    __atomic_store_n(&m->dirty_log, true, __ATOMIC_RELEASE);
    return set_memslots(m, err);
}

static int ctl_fetch_dirty_log(void *machine, unsigned region, uint64_t *bitmap, vs_err *err)
{
    struct x86_machine *m = machine;
    const struct guest_mem_layout *l = guest_mem_layout(&m->mem);
    if (region >= l->n)
        return vs_error(err, EINVAL, "no memory region %u", region);
    const struct guest_mem_region *r = &l->r[region];
    size_t words = (r->size / GUEST_PAGE_SIZE + 63) / 64;
    struct kvm_dirty_log log = {.slot = r->slot, .dirty_bitmap = bitmap};
    memset(bitmap, 0, words * 8);
    if (ioctl(m->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0)
        return vs_error_errno(err, "KVM_GET_DIRTY_LOG %u", r->slot);
    uint64_t *vmm = calloc(words, 8);
    if (!vmm)
        return vs_error(err, ENOMEM, "out of memory");
    guest_mem_dirty_fetch(&m->mem, region, vmm);
    for (size_t i = 0; i < words; i++)
        bitmap[i] |= vmm[i];
    free(vmm);
    return 0;
}

/* Memory hot-plug's ground: a region (and its memslot) added above
 * everything the machine maps, or removed again while paused. The boot RAM
 * stays. */
static int ctl_add_memory(void *machine, uint64_t gpa, uint64_t size, vs_err *err)
{
    struct x86_machine *m = machine;
    if (gpa < m->pci.mmio64_end)
        return vs_error(err, EINVAL,
                        "memory at 0x%llx: added memory goes at or above 0x%llx (past the 64-bit "
                        "PCI window)",
                        (unsigned long long)gpa, (unsigned long long)m->pci.mmio64_end);
    return guest_mem_add_anon(&m->mem, gpa, size, err);
}

static int ctl_remove_memory(void *machine, uint64_t gpa, vs_err *err)
{
    struct x86_machine *m = machine;
    if (gpa < m->pci.mmio64_end)
        return vs_error(err, EINVAL, "memory at 0x%llx is the VM's boot RAM",
                        (unsigned long long)gpa);
    if (!vm_is_paused(&m->pause))
        return vs_error(err, EBUSY, "pause the VM before removing memory");
    return guest_mem_remove_region(&m->mem, gpa, err);
}

static struct virtio_set *ctl_devices(void *machine)
{
    return ((struct x86_machine *)machine)->virtio;
}

static void ctl_request_stop(void *machine)
{
    x86_machine_request_stop(machine, X86_STOP_QUIT, "stopped by the API");
}

static size_t ctl_console_input(void *machine, const uint8_t *buf, size_t len)
{
    return uart8250_receive(&((struct x86_machine *)machine)->com1, buf, len);
}

static void ctl_host_signal(void *machine, int signo)
{
    struct x86_machine *m = machine;
    if (signo == SIGUSR1) {
        /* Not a stop: every vCPU prints its registers (a guest that hangs
         * silently, e.g. booting with `quiet`, says where). */
        for (unsigned i = 0; i < m->ncpus; i++) {
            atomic_store(&m->vcpus[i].dump_req, true);
            x86_vcpu_kick(&m->vcpus[i]);
        }
        return;
    }
    pthread_mutex_lock(&m->lock);
    m->stop_signal = signo;
    pthread_mutex_unlock(&m->lock);
    x86_machine_request_stop(m, X86_STOP_SIGNAL, "killed by signal %d", signo);
}

static int ctl_cpu_features(void *machine, struct vs_buf *out, vs_err *err)
{
    struct x86_machine *m = machine;
    /* Leaves 1 and 7 (feature words) and the XSAVE area size: what the
     * saved vCPU state depends on. */
    uint32_t leaves[][2] = {{1, 0}, {7, 0}, {0xd, 0}, {0xd, 1}, {0x80000001, 0}};
    for (size_t i = 0; i < ARRAY_SIZE(leaves); i++) {
        uint32_t w[4] = {0};
        for (unsigned j = 0; j < m->cpuid->nent; j++) {
            struct kvm_cpuid_entry2 *e = &m->cpuid->entries[j];
            if (e->function == leaves[i][0] &&
                (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e->index == leaves[i][1])) {
                w[0] = e->function == 1 ? 0 : e->eax;
                w[1] = e->function == 1 ? 0 : e->ebx; /* leaf 1 EBX is per vCPU */
                w[2] = e->ecx;
                w[3] = e->edx;
                break;
            }
        }
        for (int k = 0; k < 4; k++)
            vs_buf_put_u32(out, w[k]);
    }
    if (out->oom)
        return vs_error(err, ENOMEM, "out of memory");
    return 0;
}

static void ctl_init(struct x86_machine *m, const struct vm_config *cfg)
{
    m->ctl = (struct vm_control){.machine = m,
                                 .arch = VM_ARCH_X86_64,
                                 .cfg = cfg,
                                 .pause = ctl_pause,
                                 .resume = ctl_resume,
                                 .is_paused = ctl_is_paused,
                                 .save_state = ctl_save_state,
                                 .load_state = ctl_load_state,
                                 .memory = ctl_memory,
                                 .enable_dirty_log = ctl_enable_dirty_log,
                                 .fetch_dirty_log = ctl_fetch_dirty_log,
                                 .devices = ctl_devices,
                                 .add_memory = ctl_add_memory,
                                 .remove_memory = ctl_remove_memory,
                                 .request_stop = ctl_request_stop,
                                 .cpu_features = ctl_cpu_features,
                                 .console_input = ctl_console_input,
                                 .host_signal = ctl_host_signal};
}

/* ---- running ---- */

/* Wait for a stop reason; returns it. */
static enum x86_stop wait_stop(struct x86_machine *m)
{
    for (;;) {
        struct pollfd p = {.fd = m->wake_fd, .events = POLLIN};
        int r = poll(&p, 1, -1);
        if (r < 0 && errno != EINTR)
            break;
        if (p.revents & POLLIN) {
            uint64_t v;
            ssize_t n = read(m->wake_fd, &v, sizeof(v));
            (void)n;
        }
        enum x86_stop s = atomic_load(&m->stop);
        if (s != X86_RUNNING)
            return s;
    }
    return X86_STOP_ERROR;
}

/* Back to power-on state for a guest reboot: the vCPUs, interrupt
 * controllers, PIT and legacy devices get the state captured right after
 * the machine was built (the TSC keeps running, as KVM keeps vCPUs in sync);
 * RAM is left as it is, as on a PC. The caller loads the kernel again. */
static int machine_reset(struct x86_machine *m, vs_err *err)
{
    struct state_reader r;
    if (state_reader_init(&r, m->reset_state.buf.data, m->reset_state.buf.len, err) < 0 ||
        x86_irqchip_load(m, &r, err) < 0)
        return -1;
    for (unsigned i = 0; i < m->ncpus; i++)
        if (x86_vcpu_load(&m->vcpus[i], &r, true, err) < 0)
            return -1;
    uart8250_reset(&m->com1);
    i8042_reset(&m->kbd);
    acpi_pm_reset(&m->pm);
    uint64_t v;
    while (read(m->wake_fd, &v, sizeof(v)) > 0)
        ;
    /* Run again unless something asked the VM to end meanwhile (its
     * reason then stands and wait_stop returns at once). */
    pthread_mutex_lock(&m->lock);
    bool again = atomic_load(&m->stop) == X86_STOP_REBOOT;
    if (again) {
        atomic_store(&m->stop, X86_RUNNING);
        m->stop_msg[0] = 0;
    }
    pthread_mutex_unlock(&m->lock);
    if (!again) {
        v = 1;
        ssize_t n = write(m->wake_fd, &v, sizeof(v));
        (void)n;
    }
    return 0;
}

/* Start the vCPUs, wait for a reason to stop, stop them all. */
static enum x86_stop run_vcpus(struct x86_machine *m, vs_err *err)
{
    for (unsigned i = 0; i < m->ncpus; i++) {
        if (x86_vcpu_start(&m->vcpus[i], err) < 0) {
            x86_machine_request_stop(m, X86_STOP_ERROR, "%s", err->msg);
            break;
        }
    }
    enum x86_stop why = wait_stop(m);
    /* Stop every vCPU before touching anything they use. */
    pthread_mutex_lock(&m->lock);
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
    for (unsigned i = 0; i < m->ncpus; i++) {
        struct x86_vcpu *v = &m->vcpus[i];
        if (v->started) {
            x86_vcpu_kick(v);
            pthread_join(v->thread, NULL);
            v->started = false;
        }
    }
    return why;
}

/* A machine instance with the kernel it boots (again at each reboot). */
struct x86_instance {
    struct x86_machine m; /* first: ctl.machine points here */
    struct kernel_image k;
};

static void x86_destroy(struct vm_control *ctl)
{
    struct x86_instance *inst = ctl->machine;
    machine_destroy(&inst->m);
    x86_firmware_destroy(&inst->m);
    state_writer_free(&inst->m.reset_state);
    kernel_image_release(&inst->k);
    x86_exit_stats_print(inst->m.exit_stats);
    free(inst->m.exit_stats);
    free(inst);
}

/* Power-on and reboot: the kernel loaded, or the firmware's image put
 * back (the vCPUs then start at the reset vector). */
static int boot(struct x86_instance *inst, vs_err *err)
{
    struct x86_machine *m = &inst->m;
    if (m->firmware)
        return x86_firmware_boot(m, err);
    return load_kernel(m, m->cfg, &inst->k, err);
}

/* vm_machine_ops.create: adopt is a snapshot's memory (NULL for a boot). */
static int x86_create(const struct vm_config *cfg, struct guest_mem *adopt,
                      const struct vm_host *host, struct vm_control **out, vs_err *err)
{
    /* Refuse what can be refused before anything starts. */
    int fd = open_kvm(err);
    struct x86_instance *inst = fd >= 0 ? calloc(1, sizeof(*inst)) : NULL;
    if (fd >= 0)
        close(fd);
    if (!inst) {
        if (adopt)
            guest_mem_destroy(adopt);
        return fd < 0 ? -1 : vs_error(err, ENOMEM, "out of memory");
    }
    struct x86_machine *m = &inst->m;
    memset(&inst->k, 0, sizeof(inst->k));
    inst->k.fd = -1;
    m->console = host->console;
    m->exit_stats = x86_exit_stats_new();
    x86_ram_layout(cfg->memory, &m->ram);
    state_writer_init(&m->reset_state);
    struct vm_restore_source src = {.mem = adopt};
    if (!adopt && !cfg->firmware) {
        if (kernel_check(cfg, &m->ram, &inst->k, err) < 0) {
            kernel_image_release(&inst->k);
            state_writer_free(&m->reset_state);
            free(inst);
            return -1;
        }
    } else if (cfg->kernel && kernel_check(cfg, &m->ram, &inst->k, err) < 0) {
        /* With the kernel still at hand a restored guest's reboot boots it
         * again; without it, a reboot ends the VM. */
        kernel_image_release(&inst->k);
    }
    x86_vcpu_signal_init();
    /* machine_create adopts the snapshot's memory first thing */
    if (machine_create(m, cfg, adopt ? &src : NULL, err) < 0)
        goto fail;
    if (!adopt && boot(inst, err) < 0)
        goto fail;
    ctl_init(m, cfg);
    *out = &m->ctl;
    return 0;
fail:
    m->ctl.machine = inst;
    x86_destroy(&m->ctl);
    if (adopt)
        guest_mem_destroy(adopt);
    return -1;
}

/* vm_machine_ops.run: start the vCPUs, reboot in place as often as the
 * guest asks, stop them. */
static int x86_run(struct vm_control *ctl, vs_err *err)
{
    struct x86_instance *inst = ctl->machine;
    struct x86_machine *m = &inst->m;
    const struct vm_config *cfg = m->cfg;
    for (;;) {
        enum x86_stop why = run_vcpus(m, err);
        if (why == X86_STOP_ERROR)
            return vs_error(err, EIO, "%s", m->stop_msg);
        if (why == X86_STOP_SIGNAL)
            return 128 + m->stop_signal;
        /* A restored VM started without a kernel image cannot boot again. */
        if (why != X86_STOP_REBOOT || cfg->no_reboot || (inst->k.fd < 0 && !m->firmware))
            return 0;
        if (machine_reset(m, err) < 0 || boot(inst, err) < 0)
            return vs_error_prefix(err, "reboot: ");
    }
}

const struct vm_machine_ops x86_machine_ops = {
    .arch = VM_ARCH_X86_64,
    .create = x86_create,
    .run = x86_run,
    .destroy = x86_destroy,
    .check_cpu_features = x86_check_cpu_features,
};
