#include "riscv/fdt.h"

#include <errno.h>
#include <libfdt.h>
#include <stdio.h>
#include <stdlib.h>
#include "riscv/board.h"
#include "riscv/clint.h"
#include "riscv/plic.h"

/* phandles: each cpu's interrupt controller is 1 + hart, the rest follow */
#define PH_CPU_INTC(h) (1u + (h))
#define PH_PLIC(n) (1u + (n))
#define PH_TEST(n) (2u + (n))
#define PH_CPU(n, h) (3u + (n) + (h))

#define TRY(x)                                                                                     \
    do {                                                                                           \
        int _r = (x);                                                                              \
        if (_r < 0) {                                                                              \
            vs_error(err, EINVAL, "device tree: %s: %s", #x, fdt_strerror(_r));                    \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

static int prop_reg(void *fdt, uint64_t base, uint64_t size)
{
    fdt64_t reg[2] = {cpu_to_fdt64(base), cpu_to_fdt64(size)};
    return fdt_property(fdt, "reg", reg, sizeof(reg));
}

static int begin_node_at(void *fdt, const char *name, uint64_t addr)
{
    char buf[64];
    snprintf(buf, sizeof(buf), "%s@%llx", name, (unsigned long long)addr);
    return fdt_begin_node(fdt, buf);
}

int rv_fdt_build(const struct rv_fdt_config *c, void **out, size_t *len, vs_err *err)
{
    unsigned n = c->nharts;
    if (n == 0 || n > RV_CLINT_MAX_HARTS)
        return vs_error(err, EINVAL, "device tree: %u harts is out of range", n);
    if (c->nvirtio > RV_FDT_MAX_VIRTIO)
        return vs_error(err, EINVAL, "device tree: too many virtio-mmio slots");
    size_t size = 16384 + (c->bootargs ? strlen(c->bootargs) : 0) + (size_t)n * 512;
    void *fdt = calloc(1, size);
    uint32_t *cells = calloc((size_t)n * 4, sizeof(uint32_t));
    char name[64];
    if (!fdt || !cells) {
        free(fdt);
        free(cells);
        return vs_error(err, ENOMEM, "device tree: out of memory");
    }

    TRY(fdt_create(fdt, (int)size));
    TRY(fdt_finish_reservemap(fdt));
    TRY(fdt_begin_node(fdt, ""));
    TRY(fdt_property_u32(fdt, "#address-cells", 2));
    TRY(fdt_property_u32(fdt, "#size-cells", 2));
    TRY(fdt_property_string(fdt, "compatible", "riscv-virtio"));
    TRY(fdt_property_string(fdt, "model", "vessel,riscv-virt"));

    /* /chosen */
    TRY(fdt_begin_node(fdt, "chosen"));
    if (c->bootargs)
        TRY(fdt_property_string(fdt, "bootargs", c->bootargs));
    snprintf(name, sizeof(name), "/soc/serial@%llx", (unsigned long long)RV_UART_BASE);
    TRY(fdt_property_string(fdt, "stdout-path", name));
    if (c->initrd_end > c->initrd_start) {
        TRY(fdt_property_u64(fdt, "linux,initrd-start", c->initrd_start));
        TRY(fdt_property_u64(fdt, "linux,initrd-end", c->initrd_end));
    }
    TRY(fdt_end_node(fdt));

    /* /memory */
    TRY(begin_node_at(fdt, "memory", c->ram_base));
    TRY(fdt_property_string(fdt, "device_type", "memory"));
    TRY(prop_reg(fdt, c->ram_base, c->ram_size));
    TRY(fdt_end_node(fdt));

    /* /cpus */
    TRY(fdt_begin_node(fdt, "cpus"));
    TRY(fdt_property_u32(fdt, "#address-cells", 1));
    TRY(fdt_property_u32(fdt, "#size-cells", 0));
    TRY(fdt_property_u32(fdt, "timebase-frequency", (uint32_t)RV_CLINT_FREQ));
    for (unsigned h = 0; h < n; h++) {
        TRY(begin_node_at(fdt, "cpu", h));
        TRY(fdt_property_string(fdt, "device_type", "cpu"));
        TRY(fdt_property_u32(fdt, "reg", h));
        TRY(fdt_property_string(fdt, "status", "okay"));
        TRY(fdt_property_string(fdt, "compatible", "riscv"));
        TRY(fdt_property_string(fdt, "riscv,isa", c->isa));
        TRY(fdt_property_string(fdt, "mmu-type", c->mmu_type));
        TRY(fdt_property_u32(fdt, "phandle", PH_CPU(n, h)));
        TRY(fdt_begin_node(fdt, "interrupt-controller"));
        TRY(fdt_property_u32(fdt, "#interrupt-cells", 1));
        TRY(fdt_property(fdt, "interrupt-controller", NULL, 0));
        TRY(fdt_property_string(fdt, "compatible", "riscv,cpu-intc"));
        TRY(fdt_property_u32(fdt, "phandle", PH_CPU_INTC(h)));
        TRY(fdt_end_node(fdt));
        TRY(fdt_end_node(fdt));
    }
    TRY(fdt_begin_node(fdt, "cpu-map"));
    TRY(fdt_begin_node(fdt, "cluster0"));
    for (unsigned h = 0; h < n; h++) {
        snprintf(name, sizeof(name), "core%u", h);
        TRY(fdt_begin_node(fdt, name));
        TRY(fdt_property_u32(fdt, "cpu", PH_CPU(n, h)));
        TRY(fdt_end_node(fdt));
    }
    TRY(fdt_end_node(fdt));
    TRY(fdt_end_node(fdt));
    TRY(fdt_end_node(fdt)); /* cpus */

    /* syscon poweroff/reboot through the test device (as QEMU's virt) */
    TRY(fdt_begin_node(fdt, "poweroff"));
    TRY(fdt_property_string(fdt, "compatible", "syscon-poweroff"));
    TRY(fdt_property_u32(fdt, "regmap", PH_TEST(n)));
    TRY(fdt_property_u32(fdt, "offset", 0));
    TRY(fdt_property_u32(fdt, "value", RV_TEST_PASS));
    TRY(fdt_end_node(fdt));
    TRY(fdt_begin_node(fdt, "reboot"));
    TRY(fdt_property_string(fdt, "compatible", "syscon-reboot"));
    TRY(fdt_property_u32(fdt, "regmap", PH_TEST(n)));
    TRY(fdt_property_u32(fdt, "offset", 0));
    TRY(fdt_property_u32(fdt, "value", RV_TEST_RESET));
    TRY(fdt_end_node(fdt));

    /* /soc */
    TRY(fdt_begin_node(fdt, "soc"));
    TRY(fdt_property_u32(fdt, "#address-cells", 2));
    TRY(fdt_property_u32(fdt, "#size-cells", 2));
    TRY(fdt_property_string(fdt, "compatible", "simple-bus"));
    TRY(fdt_property(fdt, "ranges", NULL, 0));

    TRY(begin_node_at(fdt, "test", RV_TEST_BASE));
    {
        static const char compat[] = "sifive,test1\0sifive,test0\0syscon";
        TRY(fdt_property(fdt, "compatible", compat, sizeof(compat)));
    }
    TRY(prop_reg(fdt, RV_TEST_BASE, RV_TEST_SIZE));
    TRY(fdt_property_u32(fdt, "phandle", PH_TEST(n)));
    TRY(fdt_end_node(fdt));

    TRY(begin_node_at(fdt, "clint", RV_CLINT_BASE));
    {
        static const char compat[] = "sifive,clint0\0riscv,clint0";
        TRY(fdt_property(fdt, "compatible", compat, sizeof(compat)));
    }
    TRY(prop_reg(fdt, RV_CLINT_BASE, RV_CLINT_SIZE));
    for (unsigned h = 0; h < n; h++) {
        cells[h * 4 + 0] = cpu_to_fdt32(PH_CPU_INTC(h));
        cells[h * 4 + 1] = cpu_to_fdt32(3); /* M software */
        cells[h * 4 + 2] = cpu_to_fdt32(PH_CPU_INTC(h));
        cells[h * 4 + 3] = cpu_to_fdt32(7); /* M timer */
    }
    TRY(fdt_property(fdt, "interrupts-extended", cells, n * 4 * sizeof(uint32_t)));
    TRY(fdt_end_node(fdt));

    TRY(begin_node_at(fdt, "plic", RV_PLIC_BASE));
    {
        static const char compat[] = "sifive,plic-1.0.0\0riscv,plic0";
        TRY(fdt_property(fdt, "compatible", compat, sizeof(compat)));
    }
    TRY(prop_reg(fdt, RV_PLIC_BASE, RV_PLIC_SIZE));
    TRY(fdt_property_u32(fdt, "#address-cells", 0));
    TRY(fdt_property_u32(fdt, "#interrupt-cells", 1));
    TRY(fdt_property(fdt, "interrupt-controller", NULL, 0));
    TRY(fdt_property_u32(fdt, "riscv,ndev", RV_PLIC_NSRC - 1));
    for (unsigned h = 0; h < n; h++) {
        cells[h * 4 + 0] = cpu_to_fdt32(PH_CPU_INTC(h));
        cells[h * 4 + 1] = cpu_to_fdt32(11); /* M external: context 2h */
        cells[h * 4 + 2] = cpu_to_fdt32(PH_CPU_INTC(h));
        cells[h * 4 + 3] = cpu_to_fdt32(9); /* S external: context 2h+1 */
    }
    TRY(fdt_property(fdt, "interrupts-extended", cells, n * 4 * sizeof(uint32_t)));
    TRY(fdt_property_u32(fdt, "phandle", PH_PLIC(n)));
    TRY(fdt_end_node(fdt));

    TRY(begin_node_at(fdt, "serial", RV_UART_BASE));
    TRY(fdt_property_string(fdt, "compatible", "ns16550a"));
    TRY(prop_reg(fdt, RV_UART_BASE, RV_UART_SIZE));
    TRY(fdt_property_u32(fdt, "clock-frequency", RV_UART_CLOCK));
    TRY(fdt_property_u32(fdt, "interrupt-parent", PH_PLIC(n)));
    TRY(fdt_property_u32(fdt, "interrupts", RV_UART_IRQ));
    TRY(fdt_end_node(fdt));

    for (unsigned i = 0; i < c->nvirtio; i++) {
        TRY(begin_node_at(fdt, "virtio_mmio", c->virtio_base[i]));
        TRY(fdt_property_string(fdt, "compatible", "virtio,mmio"));
        TRY(prop_reg(fdt, c->virtio_base[i], c->virtio_size));
        TRY(fdt_property_u32(fdt, "interrupt-parent", PH_PLIC(n)));
        TRY(fdt_property_u32(fdt, "interrupts", c->virtio_irq[i]));
        TRY(fdt_property(fdt, "dma-coherent", NULL, 0));
        TRY(fdt_end_node(fdt));
    }
    TRY(fdt_end_node(fdt)); /* soc */
    TRY(fdt_end_node(fdt)); /* root */
    TRY(fdt_finish(fdt));
    TRY(fdt_pack(fdt));
    free(cells);
    *len = fdt_totalsize(fdt);
    *out = fdt;
    return 0;
fail:
    free(cells);
    free(fdt);
    return -1;
}
