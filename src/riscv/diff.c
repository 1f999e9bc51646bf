/* Architectural state comparison for the lock-step differential tester
 * (`vessel emu --bare --accel diff`, tests/fuzz/fuzz_riscv_jit.c). */
#include "riscv/diff.h"

#include <stdio.h>

#define FIELD(name)                                                                                \
    {                                                                                              \
#name, offsetof(struct rv_hart, name)                                                      \
    }

static const struct {
    const char *name;
    size_t off;
} fields[] = {
    FIELD(pc),         FIELD(mstatus),  FIELD(medeleg), FIELD(mideleg),    FIELD(mie),
    FIELD(mtvec),      FIELD(mscratch), FIELD(mepc),    FIELD(mcause),     FIELD(mtval),
    FIELD(mcounteren), FIELD(menvcfg),  FIELD(stvec),   FIELD(sscratch),   FIELD(sepc),
    FIELD(scause),     FIELD(stval),    FIELD(satp),    FIELD(scounteren), FIELD(stimecmp),
    FIELD(minstret),   FIELD(lr_addr),
};

bool rv_hart_differs(const struct rv_hart *a, const struct rv_hart *b, char *buf, size_t len)
{
    size_t n = 0;
    bool differ = false;
#define OUT(...)                                                                                   \
    do {                                                                                           \
        differ = true;                                                                             \
        if (n < len)                                                                               \
            n += (size_t)snprintf(buf + n, len - n, __VA_ARGS__);                                  \
    } while (0)
    if (len)
        buf[0] = 0;
    for (unsigned i = 0; i < 32; i++)
        if (a->x[i] != b->x[i])
            OUT("x%u %#llx != %#llx; ", i, (unsigned long long)a->x[i],
                (unsigned long long)b->x[i]);
    for (unsigned i = 0; i < 32; i++)
        if (a->f[i] != b->f[i])
            OUT("f%u %#llx != %#llx; ", i, (unsigned long long)a->f[i],
                (unsigned long long)b->f[i]);
    for (unsigned i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        uint64_t va = *(const uint64_t *)((const char *)a + fields[i].off);
        uint64_t vb = *(const uint64_t *)((const char *)b + fields[i].off);
        if (va != vb)
            OUT("%s %#llx != %#llx; ", fields[i].name, (unsigned long long)va,
                (unsigned long long)vb);
    }
    if (a->priv != b->priv)
        OUT("priv %u != %u; ", a->priv, b->priv);
    if (a->fflags != b->fflags || a->frm != b->frm)
        OUT("fflags/frm %u/%u != %u/%u; ", a->fflags, a->frm, b->fflags, b->frm);
    if (a->lr_valid != b->lr_valid)
        OUT("lr_valid %d != %d; ", a->lr_valid, b->lr_valid);
    if (a->fatal != b->fatal)
        OUT("fatal %d != %d; ", a->fatal, b->fatal);
#undef OUT
    return differ;
}
