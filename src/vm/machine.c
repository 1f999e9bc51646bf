/* The table of machine types, keyed by architecture. Listing them here
 * (not in constructors) keeps them linked from a static library and makes
 * the set of machines one place to read. */
#include "vm/machine.h"

#include <errno.h>

extern const struct vm_machine_ops x86_machine_ops;
extern const struct vm_machine_ops riscv_machine_ops;

static const struct vm_machine_ops *const machine_types[] = {
    &x86_machine_ops,
    &riscv_machine_ops,
};

const struct vm_machine_ops *vm_machine_find(enum vm_arch arch, vs_err *err)
{
    for (size_t i = 0; i < sizeof(machine_types) / sizeof(machine_types[0]); i++)
        if (machine_types[i]->arch == arch)
            return machine_types[i];
    vs_error(err, ENOTSUP, "this build has no %s machine", vm_arch_name(arch));
    return NULL;
}

int vm_machine_check_cpu_features(enum vm_arch arch, const uint8_t *blob, size_t len, vs_err *err)
{
    const struct vm_machine_ops *t = vm_machine_find(arch, err);
    if (!t)
        return -1;
    return t->check_cpu_features ? t->check_cpu_features(blob, len, err) : 0;
}
