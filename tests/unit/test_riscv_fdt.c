/* The riscv64 board's device tree, read back with libfdt the way OpenSBI,
 * U-Boot and Linux read it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <libfdt.h>
#include <stdlib.h>
#include <string.h>

#include "riscv/board.h"
#include "riscv/fdt.h"

static void *build(unsigned nharts, unsigned nvirtio, const char *bootargs, uint64_t initrd_lo,
                   uint64_t initrd_hi)
{
    struct rv_fdt_config c = {
        .nharts = nharts,
        .ram_base = 0x80000000,
        .ram_size = 256ull << 20,
        .isa = RV_BOARD_ISA,
        .mmu_type = RV_BOARD_MMU,
        .bootargs = bootargs,
        .initrd_start = initrd_lo,
        .initrd_end = initrd_hi,
        .nvirtio = nvirtio,
        .virtio_size = 0x1000,
    };
    for (unsigned i = 0; i < nvirtio; i++) {
        c.virtio_base[i] = 0x10001000 + i * 0x1000;
        c.virtio_irq[i] = 1 + i;
    }
    void *fdt;
    size_t len;
    vs_err err;
    assert_int_equal(rv_fdt_build(&c, &fdt, &len, &err), 0);
    assert_int_equal(fdt_check_header(fdt), 0);
    assert_int_equal(fdt_totalsize(fdt), len);
    return fdt;
}

static uint64_t prop_u64(const void *fdt, int node, const char *name)
{
    int len;
    const void *p = fdt_getprop(fdt, node, name, &len);
    assert_non_null(p);
    assert_int_equal(len, 8);
    return fdt64_ld(p); /* properties are only 4-byte aligned */
}

static void memory_cpus_chosen(void **state)
{
    void *fdt = build(2, 0, "console=ttyS0 quiet", 0x88200000, 0x88300000);
    int mem = fdt_path_offset(fdt, "/memory@80000000");
    assert_true(mem >= 0);
    int len;
    const uint8_t *reg = fdt_getprop(fdt, mem, "reg", &len);
    assert_int_equal(len, 16);
    assert_int_equal(fdt64_ld((const fdt64_t *)reg), 0x80000000);
    assert_int_equal(fdt64_ld((const fdt64_t *)(reg + 8)), 256ull << 20);

    int cpus = fdt_path_offset(fdt, "/cpus");
    const fdt32_t *tb = fdt_getprop(fdt, cpus, "timebase-frequency", &len);
    assert_int_equal(fdt32_to_cpu(*tb), 10000000);
    int n = 0, cpu;
    fdt_for_each_subnode(cpu, fdt, cpus)
    {
        const char *dt = fdt_getprop(fdt, cpu, "device_type", NULL);
        if (!dt || strcmp(dt, "cpu"))
            continue;
        n++;
        assert_string_equal(fdt_getprop(fdt, cpu, "riscv,isa", NULL), RV_BOARD_ISA);
        assert_string_equal(fdt_getprop(fdt, cpu, "mmu-type", NULL), RV_BOARD_MMU);
        int intc = fdt_subnode_offset(fdt, cpu, "interrupt-controller");
        assert_true(intc >= 0);
        assert_string_equal(fdt_getprop(fdt, intc, "compatible", NULL), "riscv,cpu-intc");
        assert_true(fdt_get_phandle(fdt, intc) != 0);
    }
    assert_int_equal(n, 2);

    int chosen = fdt_path_offset(fdt, "/chosen");
    assert_string_equal(fdt_getprop(fdt, chosen, "bootargs", NULL), "console=ttyS0 quiet");
    assert_int_equal(prop_u64(fdt, chosen, "linux,initrd-start"), 0x88200000);
    assert_int_equal(prop_u64(fdt, chosen, "linux,initrd-end"), 0x88300000);
    const char *stdout_path = fdt_getprop(fdt, chosen, "stdout-path", NULL);
    int uart = fdt_path_offset(fdt, stdout_path);
    assert_true(uart >= 0);
    assert_int_equal(fdt_node_check_compatible(fdt, uart, "ns16550a"), 0);
    free(fdt);
}

static void interrupt_wiring(void **state)
{
    void *fdt = build(3, 2, NULL, 0, 0);
    int chosen = fdt_path_offset(fdt, "/chosen");
    assert_null(fdt_getprop(fdt, chosen, "bootargs", NULL));
    assert_null(fdt_getprop(fdt, chosen, "linux,initrd-start", NULL));

    int plic = fdt_node_offset_by_compatible(fdt, -1, "riscv,plic0");
    assert_true(plic >= 0);
    int len;
    const fdt32_t *ie = fdt_getprop(fdt, plic, "interrupts-extended", &len);
    assert_int_equal(len, 3 * 4 * 4); /* (intc, 11) (intc, 9) per hart */
    assert_int_equal(fdt32_to_cpu(ie[1]), 11);
    assert_int_equal(fdt32_to_cpu(ie[3]), 9);
    int intc0 = fdt_node_offset_by_phandle(fdt, fdt32_to_cpu(ie[0]));
    assert_int_equal(fdt_node_check_compatible(fdt, intc0, "riscv,cpu-intc"), 0);
    uint32_t plic_ph = fdt_get_phandle(fdt, plic);

    int clint = fdt_node_offset_by_compatible(fdt, -1, "riscv,clint0");
    assert_true(clint >= 0);
    ie = fdt_getprop(fdt, clint, "interrupts-extended", &len);
    assert_int_equal(len, 3 * 4 * 4);
    assert_int_equal(fdt32_to_cpu(ie[1]), 3);
    assert_int_equal(fdt32_to_cpu(ie[3]), 7);

    int uart = fdt_node_offset_by_compatible(fdt, -1, "ns16550a");
    const fdt32_t *ip = fdt_getprop(fdt, uart, "interrupt-parent", NULL);
    assert_int_equal(fdt32_to_cpu(*ip), plic_ph);
    const fdt32_t *irq = fdt_getprop(fdt, uart, "interrupts", NULL);
    assert_int_equal(fdt32_to_cpu(*irq), RV_UART_IRQ);

    int n = 0, v = -1;
    while ((v = fdt_node_offset_by_compatible(fdt, v, "virtio,mmio")) >= 0) {
        irq = fdt_getprop(fdt, v, "interrupts", NULL);
        assert_int_equal(fdt32_to_cpu(*irq), 1 + n);
        n++;
    }
    assert_int_equal(n, 2);
    free(fdt);
}

static void poweroff_reboot_syscon(void **state)
{
    void *fdt = build(1, 0, "x", 0, 0);
    int test = fdt_node_offset_by_compatible(fdt, -1, "sifive,test0");
    assert_true(test >= 0);
    assert_int_equal(fdt_node_check_compatible(fdt, test, "syscon"), 0);
    uint32_t ph = fdt_get_phandle(fdt, test);
    const char *names[2] = {"syscon-poweroff", "syscon-reboot"};
    uint32_t values[2] = {RV_TEST_PASS, RV_TEST_RESET};
    for (int i = 0; i < 2; i++) {
        int node = fdt_node_offset_by_compatible(fdt, -1, names[i]);
        assert_true(node >= 0);
        const fdt32_t *p = fdt_getprop(fdt, node, "regmap", NULL);
        assert_int_equal(fdt32_to_cpu(*p), ph);
        p = fdt_getprop(fdt, node, "value", NULL);
        assert_int_equal(fdt32_to_cpu(*p), values[i]);
    }
    free(fdt);
}

static void rejects_bad_config(void **state)
{
    struct rv_fdt_config c = {.nharts = 0, .isa = "rv64", .mmu_type = "riscv,sv39"};
    void *fdt;
    size_t len;
    vs_err err;
    assert_int_equal(rv_fdt_build(&c, &fdt, &len, &err), -1);
    c.nharts = 1;
    c.nvirtio = RV_FDT_MAX_VIRTIO + 1;
    assert_int_equal(rv_fdt_build(&c, &fdt, &len, &err), -1);
    /* a long command line still fits */
    char *big = malloc(8000);
    memset(big, 'a', 7999);
    big[7999] = 0;
    c.nvirtio = 0;
    c.bootargs = big;
    assert_int_equal(rv_fdt_build(&c, &fdt, &len, &err), 0);
    assert_string_equal(fdt_getprop(fdt, fdt_path_offset(fdt, "/chosen"), "bootargs", NULL), big);
    free(fdt);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(memory_cpus_chosen),
        cmocka_unit_test(interrupt_wiring),
        cmocka_unit_test(poweroff_reboot_syscon),
        cmocka_unit_test(rejects_bad_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
