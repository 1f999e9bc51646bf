/* Entry points of the accelerators. `vessel vm run` parses a vm_config and
 * hands it to the machine for its architecture. */
#ifndef VESSEL_VM_MACHINE_H
#define VESSEL_VM_MACHINE_H

#include "vm/config.h"

/* Run the VM to completion. Returns the process exit status vessel should
 * use (0 after a guest poweroff), or -1 with err set when the VM could not
 * start or the accelerator failed. */
int x86_vm_run(const struct vm_config *cfg, vs_err *err);
int riscv_vm_run(const struct vm_config *cfg, vs_err *err);

#endif
