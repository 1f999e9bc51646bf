#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "hw/pci.h"

static uint64_t bar_read(void *opaque, uint64_t off, unsigned len)
{
    return 0x1000 + off;
}
static void bar_write(void *opaque, uint64_t off, uint64_t val, unsigned len)
{
    *(uint64_t *)opaque = val;
}

static void route(void *machine, unsigned slot, struct irq_line *out)
{
    out->irq = 16 + slot;
}

static void cfg_addr(struct io_bus *pio, unsigned slot, unsigned reg)
{
    io_bus_write(pio, 0xcf8, 0x80000000u | slot << 11 | reg, 4);
}

static void bars_and_config(void **state)
{
    struct io_bus pio, mmio;
    io_bus_init(&pio, "pio");
    io_bus_init(&mmio, "mmio");
    struct pci_bus b;
    vs_err err;
    assert_int_equal(pci_bus_init(&b, &pio, &mmio, &err), 0);
    b.route_intx = route;
    b.mmio64_next = 0x400000000ULL;
    b.mmio64_end = 0x800000000ULL;

    struct pci_device host = {.name = "host"};
    host.cfg[0] = 0x86;
    host.cfg[1] = 0x80;
    assert_int_equal(pci_register_device(&b, &host, &err), 0);
    assert_int_equal(host.slot, 0);

    uint64_t last = 0;
    struct pci_device d = {.name = "dev", .opaque = &last};
    d.cfg[0] = 0xf4;
    d.cfg[1] = 0x1a;
    d.cfg[PCI_INTERRUPT_PIN] = 1;
    d.wmask[0x40] = 0xff;
    d.bars[0] = (struct pci_bar){.size = 0x1000, .read = bar_read, .write = bar_write};
    d.bars[2] =
        (struct pci_bar){.size = 0x4000, .mem64 = true, .read = bar_read, .write = bar_write};
    d.bars[4] = (struct pci_bar){.size = 0x20, .io = true, .read = bar_read, .write = bar_write};
    assert_int_equal(pci_register_device(&b, &d, &err), 0);
    assert_int_equal(d.slot, 1);
    assert_int_equal(d.cfg[PCI_INTERRUPT_LINE], 17);
    assert_int_equal(d.bars[0].addr, 0xc0000000ULL);
    assert_int_equal(d.bars[2].addr, 0x400000000ULL);
    assert_int_equal(d.bars[4].addr, 0x1000);

    /* Config reads through 0xcf8/0xcfc. */
    uint64_t v;
    cfg_addr(&pio, 1, 0);
    assert_true(io_bus_read(&pio, 0xcfc, 4, &v));
    assert_int_equal(v, 0x1af4);
    cfg_addr(&pio, 9, 0);
    io_bus_read(&pio, 0xcfc, 4, &v);
    assert_int_equal(v, 0xffffffffu);

    /* BARs decode where assigned. */
    assert_true(io_bus_read(&mmio, 0xc0000010ULL, 4, &v));
    assert_int_equal(v, 0x1010);
    assert_true(io_bus_read(&mmio, 0x400000008ULL, 4, &v));
    assert_true(io_bus_read(&pio, 0x1004, 1, &v));

    /* Sizing: write all ones, read the size mask; decoding stops meanwhile. */
    pci_config_write(&b, 1, 0, PCI_BAR0, 0xffffffffu, 4);
    assert_int_equal(pci_config_read(&b, 1, 0, PCI_BAR0, 4), 0xfffff000u);
    assert_false(io_bus_read(&mmio, 0xc0000010ULL, 4, &v));
    /* Move it: decoding follows. */
    pci_config_write(&b, 1, 0, PCI_BAR0, 0xd0000000u, 4);
    assert_true(io_bus_read(&mmio, 0xd0000010ULL, 4, &v));
    assert_false(io_bus_read(&mmio, 0xc0000010ULL, 4, &v));
    /* 64-bit BAR: type bits, high half. */
    assert_int_equal(pci_config_read(&b, 1, 0, PCI_BAR0 + 8, 4) & 0xf, 0x4);
    assert_int_equal(pci_config_read(&b, 1, 0, PCI_BAR0 + 12, 4), 4);
    /* I/O BAR reads back with bit 0 set. */
    assert_int_equal(pci_config_read(&b, 1, 0, PCI_BAR0 + 16, 4), 0x1001);
    /* Command register: memory decode off unmaps memory BARs only. */
    pci_config_write(&b, 1, 0, PCI_COMMAND, PCI_COMMAND_IO, 2);
    assert_false(io_bus_read(&mmio, 0xd0000010ULL, 4, &v));
    assert_true(io_bus_read(&pio, 0x1004, 1, &v));
    pci_config_write(&b, 1, 0, PCI_COMMAND, PCI_COMMAND_IO | PCI_COMMAND_MEMORY, 2);
    assert_true(io_bus_read(&mmio, 0xd0000010ULL, 4, &v));
    /* Read-only fields stay, writable ones change. */
    pci_config_write(&b, 1, 0, PCI_VENDOR_ID, 0x1234, 2);
    assert_int_equal(pci_config_read(&b, 1, 0, PCI_VENDOR_ID, 2), 0x1af4);
    pci_config_write(&b, 1, 0, 0x40, 0xab, 1);
    assert_int_equal(pci_config_read(&b, 1, 0, 0x40, 1), 0xab);
    /* Out-of-range accesses are harmless. */
    assert_int_equal(pci_config_read(&b, 1, 0, 255, 4), 0xffffffffu);
    pci_config_write(&b, 40, 0, 0, 0, 4);

    /* Save and load restore the BAR placement. */
    struct state_writer w;
    state_writer_init(&w);
    pci_bus_save(&b, &w);
    pci_config_write(&b, 1, 0, PCI_BAR0, 0xe0000000u, 4);
    struct state_reader r;
    assert_int_equal(state_reader_init(&r, w.buf.data, w.buf.len, &err), 0);
    assert_int_equal(pci_bus_load(&b, &r, &err), 0);
    assert_true(io_bus_read(&mmio, 0xd0000010ULL, 4, &v));
    assert_false(io_bus_read(&mmio, 0xe0000010ULL, 4, &v));
    state_writer_free(&w);

    pci_bus_destroy(&b);
    assert_false(io_bus_read(&mmio, 0xd0000010ULL, 4, &v));
    io_bus_destroy(&pio);
    io_bus_destroy(&mmio);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(bars_and_config)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
