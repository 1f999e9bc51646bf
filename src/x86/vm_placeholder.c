#include <errno.h>
#include "vm/machine.h"

/* Replaced by the KVM machine (src/x86/vm.c). */
int x86_vm_run(const struct vm_config *cfg, vs_err *err)
{
    return vs_error(err, ENOSYS, "the x86 KVM machine is not built yet");
}
