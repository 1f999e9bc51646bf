/* A machine is an object behind one interface, whichever architecture runs
 * it: x86/ (KVM) and riscv/ (the emulator) each provide one vm_machine_ops,
 * registered by architecture in vm/machine.c. Callers (the command line,
 * restore, later the daemon) look the type up by cfg->arch and never name
 * an architecture's functions; a running machine is reached only through
 * the vm_control its create returned (vm/control.h).
 *
 * Process policy is not the machine's: the runner (vm/runner.c) owns the
 * console, signals, thread stacks and the control API server, and drives a
 * machine through create, load_state, run and destroy. */
#ifndef VESSEL_VM_MACHINE_H
#define VESSEL_VM_MACHINE_H

#include <stddef.h>
#include <stdint.h>
#include "mem/guest_mem.h"
#include "util/err.h"
#include "vm/config.h"
#include "vm/control.h"

struct serial_console;

/* What the runner lends a machine for its life. */
struct vm_host {
    struct serial_console *console; /* the guest console UART's output */
};

struct vm_machine_ops {
    enum vm_arch arch;
    /* Build the machine for cfg, ready to run: the kernel loaded, or, with
     * adopt (a snapshot's mapped memory regions, the machine's from the call
     * on even on failure), the memory taken over and the state left for
     * (*out)->load_state. On success *out holds the instance's operations. */
    int (*create)(const struct vm_config *cfg, struct guest_mem *adopt, const struct vm_host *host,
                  struct vm_control **out, vs_err *err);
    /* Run the vCPUs until the guest stops, rebooting in place as often as
     * it asks. Returns the exit status vessel should use (0 after a guest
     * poweroff, 128 + signo after host_signal), or -1 with err set. */
    int (*run)(struct vm_control *ctl, vs_err *err);
    void (*destroy)(struct vm_control *ctl);
    /* Before any machine exists: can this host run a saved state that
     * recorded these CPU features (vm_control.cpu_features wrote them)?
     * NULL: the machine depends on nothing from the host CPU. */
    int (*check_cpu_features)(const uint8_t *blob, size_t len, vs_err *err);
};

/* The machine type for arch, or NULL (err set) if this build has none. */
const struct vm_machine_ops *vm_machine_find(enum vm_arch arch, vs_err *err);
/* ops->check_cpu_features for arch; 0 when the machine needs none. */
int vm_machine_check_cpu_features(enum vm_arch arch, const uint8_t *blob, size_t len, vs_err *err);

/* vm/runner.c: run a VM for cfg on its architecture's machine in this
 * process, with the console, signals and (with cfg->api_sock) the control
 * API. Returns the exit status, or -1 with err set. */
int vm_machine_run(const struct vm_config *cfg, vs_err *err);
/* The same from a snapshot: src->mem is the machine's from the call on,
 * whatever happens; src->state is loaded before a vCPU runs. */
int vm_machine_restore(const struct vm_config *cfg, struct vm_restore_source *src, vs_err *err);
/* Both, for a runner given its machine type (tests drive a fake one). */
int vm_runner_run(const struct vm_machine_ops *type, const struct vm_config *cfg,
                  struct vm_restore_source *restore, vs_err *err);

#endif
