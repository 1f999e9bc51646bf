/* The riscv64 board's interrupt controllers and its built-in SBI take
 * guest-controlled input: MMIO offsets and values, ECALL registers. Each
 * input is a list of operations on a PLIC, a CLINT and the SBI of a 4-hart
 * machine; nothing may crash or misbehave under the sanitizers. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "riscv/clint.h"
#include "riscv/hart.h"
#include "riscv/plic.h"
#include "riscv/sbi.h"

#define NHARTS 4

static uint8_t ram[1 << 16];

static bool mmio_read(void *o, uint64_t pa, unsigned len, uint64_t *val)
{
    return false;
}
static bool mmio_write(void *o, uint64_t pa, uint64_t val, unsigned len)
{
    return false;
}
static void nop_putchar(void *o, uint8_t c) {}
static void sbi_timer(void *o, unsigned hart, uint64_t v)
{
    clint_set_timecmp(o, hart, v);
}
static long hart_start(void *o, unsigned hart, uint64_t addr, uint64_t arg)
{
    return hart < NHARTS ? SBI_SUCCESS : SBI_ERR_INVALID_PARAM;
}

struct op {
    uint8_t kind, len, src, hart;
    uint32_t off;
    uint64_t val;
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct rv_hart *harts[NHARTS];
    static struct plic plic;
    static struct clint clint;
    static struct rv_sbi sbi;
    if (!harts[0]) {
        struct rv_bus bus = {.ram = ram,
                             .ram_base = 0x80000000,
                             .ram_size = sizeof(ram),
                             .mmio_read = mmio_read,
                             .mmio_write = mmio_write};
        for (unsigned i = 0; i < NHARTS; i++) {
            harts[i] = calloc(1, sizeof(struct rv_hart));
            rv_hart_init(harts[i], i, &bus);
        }
    }
    plic_init(&plic, harts, NHARTS);
    memset(&clint, 0, sizeof(clint));
    clint_init(&clint, harts, NHARTS, RV_MIP_MTIP);
    struct rv_sbi_ops ops = {
        .putchar = nop_putchar, .set_timer = sbi_timer, .hart_start = hart_start, .opaque = &clint};
    rv_sbi_init(&sbi, &ops, NHARTS);
    static const unsigned lens[4] = {1, 2, 4, 8};

    for (size_t pos = 0; pos + sizeof(struct op) <= size; pos += sizeof(struct op)) {
        struct op o;
        memcpy(&o, data + pos, sizeof(o));
        unsigned len = lens[o.len & 3];
        struct rv_hart *h = harts[o.hart % NHARTS];
        switch (o.kind % 6) {
        case 0:
            plic_io_write(&plic, o.off % RV_PLIC_SIZE, o.val, len);
            break;
        case 1:
            plic_io_read(&plic, o.off % RV_PLIC_SIZE, len);
            break;
        case 2:
            plic_set_level(&plic, o.src, (int)(o.val & 1));
            break;
        case 3:
            clint_io_write(&clint, o.off % RV_CLINT_SIZE, o.val, len);
            break;
        case 4:
            clint_io_read(&clint, o.off % RV_CLINT_SIZE, len);
            break;
        case 5:
            /* an ECALL: registers from the input */
            h->x[17] = o.off & 0x80000000u ? o.off : (o.off & 0xff);
            h->x[16] = o.src & 7;
            h->x[10] = o.val;
            h->x[11] = o.val >> 8 ? 0x80000000u + (o.val & 0xffff) : o.val;
            h->x[12] = o.len;
            rv_sbi_handle(&sbi, h);
            break;
        }
    }
    plic_destroy(&plic);
    return 0;
}
