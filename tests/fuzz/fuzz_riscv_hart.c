/* Fuzz the RISC-V hart: arbitrary bytes become the code and data of a
 * small machine (64 KiB RAM, an MMIO hole that faults), the first bytes
 * pick the starting privilege, satp mode, mtvec/stvec and delegation. The
 * hart must never crash, hang or read outside guest RAM, whatever it runs. */
#include <stdint.h>
#include <string.h>

#include "riscv/insn.h"
#include "riscv/trap.h"
#include "riscv/hart.h"

#define RAM_BASE 0x80000000ull
#define RAM_SIZE 0x10000u

static uint8_t ram[RAM_SIZE] __attribute__((aligned(4096)));

static bool mmio_read(void *o, uint64_t pa, unsigned len, uint64_t *v)
{
    if (pa >= 0x10000000 && pa < 0x10001000) {
        *v = pa & 0xff;
        return true;
    }
    return false;
}

static bool mmio_write(void *o, uint64_t pa, uint64_t v, unsigned len)
{
    return pa >= 0x10000000 && pa < 0x10001000;
}

static uint64_t get_time(void *o)
{
    static uint64_t t;
    return t += 100;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 16)
        return 0;
    memset(ram, 0, sizeof(ram));
    memcpy(ram, data + 16, size - 16 > RAM_SIZE ? RAM_SIZE : size - 16);
    struct rv_bus bus = {.ram = ram,
                         .ram_base = RAM_BASE,
                         .ram_size = RAM_SIZE,
                         .mmio_read = mmio_read,
                         .mmio_write = mmio_write,
                         .get_time = get_time};
    static struct rv_hart h;
    rv_hart_init(&h, 0, &bus);
    rv_hart_reset(&h, RAM_BASE);
    h.mtvec = RAM_BASE + (data[1] & 0xfc) * 4u + (data[2] & 1);
    h.stvec = RAM_BASE + (data[3] & 0xfc) * 4u;
    h.medeleg = data[4] | (uint64_t)data[5] << 8;
    h.mideleg = data[6] & 0x222;
    h.mie = data[7] & 0xaaa;
    h.mstatus = (uint64_t)(data[8] & 3) << 13; /* FS */
    h.menvcfg = (uint64_t)(data[9] & 0xc0) << 56;
    if (data[10] & 1) {
        h.satp = ((uint64_t)(data[10] & 2 ? 9 : 8) << 60) | ((RAM_BASE + 0x8000) >> 12);
    }
    if (data[11] & 1)
        h.pmp_count = 0;
    else {
        h.pmpaddr[0] = ~0ull >> 10;
        h.pmpcfg[0] = 0x18 | (data[11] >> 1 & 7);
    }
    rv_set_priv(&h, data[0] & 1 ? RV_PRIV_U : data[0] & 2 ? RV_PRIV_S : RV_PRIV_M);
    if (data[12] & 1)
        rv_hart_set_irq(&h, RV_MIP_MTIP | RV_MIP_SEIP, true);
    for (int round = 0; round < 4; round++) {
        enum rv_stop why = rv_hart_run(&h, 5000);
        if (why == RV_STOP_FATAL)
            break;
        if (why == RV_STOP_WFI)
            rv_hart_set_irq(&h, RV_MIP_MSIP, true);
    }
    char buf[1024];
    rv_hart_describe(&h, buf, sizeof(buf));
    rv_hart_destroy(&h);
    return 0;
}
