/* The x86-64 KVM machine: one VM, one thread per vCPU, the legacy PC
 * devices vessel emulates in user space (COM1, i8042, CMOS RTC, ACPI PM,
 * PCI host bridge) and KVM's in-kernel PIC/IOAPIC/LAPIC/PIT. Internal to
 * src/x86. */
#ifndef VESSEL_X86_MACHINE_H
#define VESSEL_X86_MACHINE_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "hw/bus.h"
#include "hw/i8042.h"
#include "hw/pci.h"
#include "hw/rtc_cmos.h"
#include "hw/serial_console.h"
#include "hw/uart8250.h"
#include "mem/guest_mem.h"
#include "util/event_loop.h"
#include "vm/config.h"
#include "vm/control.h"
#include "vm/pause.h"
#include "x86/acpi_pm.h"
#include "x86/boot.h"

/* Why the VM stopped running. */
enum x86_stop {
    X86_RUNNING = 0,
    X86_STOP_POWEROFF, /* ACPI S5: exit 0 */
    X86_STOP_REBOOT,   /* reset: reboot, or exit 0 with --no-reboot */
    X86_STOP_QUIT,     /* console escape or API stop: exit 0 */
    X86_STOP_SIGNAL,   /* SIGTERM/SIGINT/SIGHUP: 128 + signal */
    X86_STOP_ERROR,    /* triple fault, KVM failure: message in stop_msg */
};

struct x86_machine;

struct x86_vcpu {
    struct x86_machine *m;
    unsigned id;
    int fd;
    struct kvm_run *run;
    pthread_t thread;
    bool started;
    bool parked;
    _Atomic bool dump_req; /* SIGUSR1: print the registers at the next exit */
};

struct x86_machine {
    const struct vm_config *cfg;
    int kvm_fd, vm_fd;
    size_t run_size;
    struct x86_ram_layout ram; /* where cfg->memory goes, computed once */
    struct guest_mem mem;      /* its regions are KVM memslots (their slot numbers) */
    bool mem_owned;
    bool dirty_log; /* memslots log dirty pages */
    struct io_bus pio, mmio;
    struct kvm_cpuid2 *cpuid; /* KVM_GET_SUPPORTED_CPUID */
    uint32_t *msr_list;       /* KVM_GET_MSR_INDEX_LIST, for save/load */
    bool tsc_deadline;        /* KVM_CAP_TSC_DEADLINE_TIMER */
    bool has_brand;
    uint32_t brand[12]; /* the host's CPUID brand string */
    unsigned nmsrs;
    unsigned ncpus;
    /* Set while loading a snapshot: host time that passed since it was
     * taken; the guest's TSCs and kvm-clock move forward by this much so its
     * clock shows the right time after a restore. */
    uint64_t restore_advance_ns;
    struct x86_vcpu vcpus[VM_MAX_CPUS];

    struct serial_console *console; /* owned by the caller (survives reboots) */
    struct uart8250 com1;
    struct i8042 kbd;
    struct rtc_cmos rtc;
    struct acpi_pm pm;
    struct pci_bus pci;
    struct pci_device host_bridge;
    struct msi_sink msi;
    struct kvm_irq_routing *routing; /* legacy + MSI routes for irqfds */
    unsigned next_msi_gsi;
    pthread_mutex_t routing_lock;
    struct vs_event_loop loop;
    bool loop_started;
    struct virtio_set *virtio;

    /* Life cycle: the first stop reason wins; the main thread waits on
     * wake_fd and then stops every vCPU. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    _Atomic int stop;
    int stop_signal;
    char stop_msg[512];
    int wake_fd;
    /* Pause (vm/pause.h): vCPUs park at an instruction boundary. */
    struct vm_pause pause;
    unsigned nparked;
    struct vm_control ctl;
    /* vCPU and irqchip state right after creation: what a reboot restores. */
    struct state_writer reset_state;
    struct x86_exit_stats *exit_stats; /* VESSEL_EXIT_STATS, or NULL */
    struct x86_firmware *firmware;     /* --firmware: x86/firmware.h, or NULL */
};

/* vcpu.c */
int x86_vcpu_create(struct x86_machine *m, unsigned id, vs_err *err);
/* Registers for entering the kernel: long mode at entry64 with boot_params
 * in RSI, or 32-bit protected mode (PVH) at entry32 with start info in
 * RBX. APs are left to wait for INIT/SIPI. */
int x86_vcpu_setup_boot(struct x86_vcpu *v, bool pvh, uint64_t entry, uint64_t boot_info,
                        vs_err *err);
int x86_vcpu_start(struct x86_vcpu *v, vs_err *err);
void x86_vcpu_kick(struct x86_vcpu *v);
void x86_vcpu_destroy(struct x86_vcpu *v);
void x86_vcpu_dump(struct x86_vcpu *v, FILE *f);
int x86_vcpu_save(struct x86_vcpu *v, struct state_writer *w, vs_err *err);
/* reset: a guest reboot; the TSC MSRs are left alone (KVM keeps the vCPUs'
 * TSCs in sync, host writes at different times would not be). */
int x86_vcpu_load(struct x86_vcpu *v, struct state_reader *r, bool reset, vs_err *err);
/* Install the signal used to kick vCPUs out of KVM_RUN (once). */
void x86_vcpu_signal_init(void);
/* With VESSEL_EXIT_STATS=1, a machine's exit counters (else NULL; free()
 * them), and the busiest exit sources printed to stderr. */
struct x86_exit_stats *x86_exit_stats_new(void);
void x86_exit_stats_print(struct x86_exit_stats *st);

/* machine.c */
void x86_machine_request_stop(struct x86_machine *m, enum x86_stop why, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Called by a vCPU thread between KVM_RUNs: parks while a pause is asked. */
void x86_machine_vcpu_checkpoint(struct x86_machine *m, struct x86_vcpu *v);

/* cpu_check.c: does this host's KVM offer every CPU feature a saved state
 * recorded (x86_machine_ops.check_cpu_features)? */
int x86_check_cpu_features(const uint8_t *blob, size_t len, vs_err *err);

/* irqchip.c: in-kernel PIC/IOAPIC/PIT/clock state and the GSI routing. */
int x86_irqchip_create(struct x86_machine *m, vs_err *err);
int x86_irqchip_save(struct x86_machine *m, struct state_writer *w, vs_err *err);
int x86_irqchip_load(struct x86_machine *m, struct state_reader *r, vs_err *err);
void x86_irq_set_level(void *machine, unsigned gsi, int level);
void x86_msi_init(struct x86_machine *m);
int x86_ioeventfd(void *machine, uint64_t addr, unsigned len, bool pio, bool datamatch,
                  uint64_t data, int fd, bool assign);

#endif
