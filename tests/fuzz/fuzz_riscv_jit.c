/* libFuzzer: the translator against the interpreter in lock-step on
 * programs made of the input (valid RV64GC + Zba/Zbb/Zbs instructions,
 * a few illegal ones), comparing registers and CSRs after every block and
 * memory at the end (tests/unit/riscv_jit_diff.h). A difference aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "../unit/riscv_jit_diff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct jd_machine mj, mi;
    static int ready;
    if (!ready) {
        if (jd_open(&mj, RV_ACCEL_JIT) < 0 || jd_open(&mi, RV_ACCEL_INTERP) < 0)
            abort();
        ready = 1;
    }
    char why[1024];
    if (jd_run(&mj, &mi, data, size, why, sizeof(why))) {
        fprintf(stderr, "translator and interpreter differ: %s\n", why);
        abort();
    }
    return 0;
}
