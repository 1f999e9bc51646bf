/* A machine is an object behind one interface, whichever architecture runs
 * it: x86/ (KVM) and riscv/ (the emulator) each provide one vm_machine_ops,
 * registered by architecture in vm/machine.c. Callers (the command line,
 * restore, later the daemon) look the type up by cfg->arch and never name
 * an architecture's functions. */
#ifndef VESSEL_VM_MACHINE_H
#define VESSEL_VM_MACHINE_H

#include <stddef.h>
#include <stdint.h>
#include "util/err.h"
#include "vm/config.h"
#include "vm/control.h"

struct vm_machine_ops {
    enum vm_arch arch;
    /* Build the machine and run it to completion: boot cfg's kernel, or,
     * with restore, adopt the snapshot's mapped memory (ours from the call
     * on, even on failure) and load its state sections. Returns the exit
     * status vessel should use (0 after a guest poweroff), or -1 with err
     * set when the VM could not start or the accelerator failed. */
    int (*run)(const struct vm_config *cfg, struct vm_restore_source *restore, vs_err *err);
    /* Before any machine exists: can this host run a saved state that
     * recorded these CPU features (vm_control.cpu_features wrote them)?
     * NULL: the machine depends on nothing from the host CPU. */
    int (*check_cpu_features)(const uint8_t *blob, size_t len, vs_err *err);
};

/* The machine type for arch, or NULL (err set) if this build has none. */
const struct vm_machine_ops *vm_machine_find(enum vm_arch arch, vs_err *err);

/* Run a VM for cfg on its architecture's machine (see ops->run). */
int vm_machine_run(const struct vm_config *cfg, vs_err *err);
/* Start cfg's machine from a snapshot: src->mem is the machine's from the
 * call on, whatever happens. */
int vm_machine_restore(const struct vm_config *cfg, struct vm_restore_source *src, vs_err *err);
/* ops->check_cpu_features for arch; 0 when the machine needs none. */
int vm_machine_check_cpu_features(enum vm_arch arch, const uint8_t *blob, size_t len, vs_err *err);

#endif
