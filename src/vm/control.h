/* One machine instance's operations, whichever accelerator runs it: what the
 * runner (vm/runner.c), the control API, snapshots and restore need from a
 * machine. The machine (src/x86, src/riscv) fills a vm_control when it is
 * created (vm_machine_ops.create); nothing reaches a machine otherwise. */
#ifndef VESSEL_VM_CONTROL_H
#define VESSEL_VM_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "mem/guest_mem.h"
#include "state/state.h"
#include "util/buf.h"
#include "util/err.h"
#include "vm/config.h"

struct virtio_set;

struct vm_control {
    void *machine;
    enum vm_arch arch;
    const struct vm_config *cfg;
    /* Stop every vCPU at an instruction boundary and quiesce devices
     * (in-flight I/O finished or recorded). Idempotent. */
    int (*pause)(void *machine, vs_err *err);
    int (*resume)(void *machine, vs_err *err);
    bool (*is_paused)(void *machine);
    /* Only while paused: every vCPU, interrupt controller, timer and device
     * as state sections (state/state.h). */
    int (*save_state)(void *machine, struct state_writer *w, vs_err *err);
    /* Only after create, before run: the sections save_state wrote (a
     * restore); the machine then continues where the saved one stopped. */
    int (*load_state)(void *machine, struct state_reader *r, vs_err *err);
    struct guest_mem *(*memory)(void *machine);
    /* Pages of region i written since the previous call (vCPU writes from
     * KVM's dirty log OR'ed with the VMM's own); bitmap has size/4096 bits.
     * The first call after enable_dirty_log reports everything. */
    int (*enable_dirty_log)(void *machine, vs_err *err);
    int (*fetch_dirty_log)(void *machine, unsigned region, uint64_t *bitmap, vs_err *err);
    /* Slow the guest down: every vCPU sleeps pct percent of the time (0:
     * full speed; live migration's auto-converge). NULL: the caller pauses
     * and resumes the whole VM instead. */
    void (*throttle)(void *machine, unsigned pct);
    /* Ask the VM to shut down as if powered off (API "stop", the console's
     * quit key): run returns 0. */
    void (*request_stop)(void *machine);
    /* Bytes typed on the console, for the guest's console UART; returns how
     * many it took (the console retries the rest after rx_ready). */
    size_t (*console_input)(void *machine, const uint8_t *buf, size_t len);
    /* A signal the runner took for the VM: SIGINT, SIGTERM, SIGHUP end it
     * (run returns 128 + signo); SIGUSR1 asks for a dump of the vCPUs. */
    void (*host_signal)(void *machine, int signo);
    /* The machine's device list (virtio/machine_glue.h), which a snapshot
     * walks (to freeze the disks) and devices are added to and removed
     * from while the machine runs; NULL: no devices. Room for later: add
     * and remove vCPUs. */
    struct virtio_set *(*devices)(void *machine);
    /* Change the memory map while the machine runs (the ground for memory
     * hot-plug, balloon and virtio-mem): add size bytes of RAM at gpa, or
     * remove the region added at gpa (only while paused). NULL: the
     * machine's memory is fixed. */
    int (*add_memory)(void *machine, uint64_t gpa, uint64_t size, vs_err *err);
    int (*remove_memory)(void *machine, uint64_t gpa, vs_err *err);
    /* vCPU hot-plug: let the guest run n of the vCPUs present from boot
     * (1..max_cpus; the guest onlines and offlines them itself, and cannot
     * start more than n), and the counts now. NULL: a fixed set. */
    int (*set_vcpus)(void *machine, unsigned n, vs_err *err);
    void (*vcpu_counts)(void *machine, unsigned *present, unsigned *allowed, unsigned *running);
    /* The VM process's CPU and memory caps (vm/limits.h), set by the
     * runner after create; NULL: none can be set. */
    struct vm_limits *limits;
    /* Host CPU features the saved state depends on (x86: CPUID words,
     * XSAVE size); recorded in the snapshot and checked on restore. */
    int (*cpu_features)(void *machine, struct vs_buf *out, vs_err *err);
};

/* How a machine is started from a snapshot instead of booting: guest memory
 * regions are already mapped (MAP_PRIVATE from the snapshot file) and the
 * state sections are loaded after the devices are created. */
struct vm_restore_source {
    struct guest_mem *mem;      /* regions to adopt, already mapped */
    struct state_reader *state; /* device and vCPU sections, or NULL: see fetch_state */
    /* The snapshot the state came from (absolute directory and id), so the
     * restored VM's first diff snapshot can name it as its parent; NULL
     * when unknown. */
    const char *origin_dir, *origin_id;
    /* Called once the machine holds the state, before a vCPU runs; -1
     * (err set) ends it there, the guest never having run. NULL: run at
     * once. (A migration's destination waits here for the source's go.) */
    int (*ready)(void *opaque, vs_err *err);
    /* With state NULL: called once the machine is built, to wait for the
     * state (a migration's destination builds the machine while memory
     * streams in, and loads the state when it arrives). */
    int (*fetch_state)(void *opaque, struct state_reader **state, vs_err *err);
    void *ready_opaque; /* for ready and fetch_state */
    /* Set by the runner once the machine is built, before fetch_state. */
    struct vm_control *ctl;
};

#endif
