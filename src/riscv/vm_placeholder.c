#include <errno.h>
#include "vm/machine.h"

/* Replaced by the emulated board (src/riscv/board.c). */
int riscv_vm_run(const struct vm_config *cfg, vs_err *err)
{
    return vs_error(err, ENOSYS, "the riscv64 emulator is not built yet");
}
