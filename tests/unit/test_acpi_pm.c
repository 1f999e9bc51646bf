#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "hw/bus.h"
#include "x86/acpi_pm.h"
#include "x86/layout.h"

static int poweroffs, resets;
static void event(void *o, enum acpi_pm_event ev)
{
    if (ev == ACPI_PM_POWEROFF)
        poweroffs++;
    else
        resets++;
}

static void pm(void **state)
{
    struct io_bus pio;
    io_bus_init(&pio, "pio");
    struct acpi_pm p;
    acpi_pm_init(&p, event, NULL);
    vs_err err;
    assert_int_equal(acpi_pm_register(&p, &pio, &err), 0);
    uint64_t v;
    /* Always in ACPI mode. */
    assert_true(io_bus_read(&pio, X86_PM1A_CNT_PORT, 2, &v));
    assert_int_equal(v & 1, 1);
    /* S5 is SLP_TYP 5 with SLP_EN; another sleep type does nothing. */
    io_bus_write(&pio, X86_PM1A_CNT_PORT, 3 << 10 | 1 << 13, 2);
    assert_int_equal(poweroffs, 0);
    io_bus_write(&pio, X86_PM1A_CNT_PORT, X86_SLP_TYP_S5 << 10, 2); /* no SLP_EN */
    assert_int_equal(poweroffs, 0);
    io_bus_write(&pio, X86_PM1A_CNT_PORT, X86_SLP_TYP_S5 << 10 | 1 << 13, 2);
    assert_int_equal(poweroffs, 1);
    /* Enable register round trip. */
    io_bus_write(&pio, X86_PM1A_EVT_PORT + 2, 0x0100, 2);
    io_bus_read(&pio, X86_PM1A_EVT_PORT + 2, 2, &v);
    assert_int_equal(v, 0x0100);
    /* The PM timer runs. */
    uint64_t t0, t1;
    io_bus_read(&pio, X86_PM_TMR_PORT, 4, &t0);
    for (volatile int i = 0; i < 1000000; i++)
        ;
    io_bus_read(&pio, X86_PM_TMR_PORT, 4, &t1);
    assert_true(t1 != t0);
    /* Reset register: CPU reset bit. */
    io_bus_write(&pio, X86_RESET_PORT, 0x02, 1);
    assert_int_equal(resets, 0);
    io_bus_write(&pio, X86_RESET_PORT, 0x06, 1);
    assert_int_equal(resets, 1);

    struct state_writer w;
    state_writer_init(&w);
    acpi_pm_save(&p, &w);
    acpi_pm_reset(&p);
    io_bus_read(&pio, X86_PM1A_EVT_PORT + 2, 2, &v);
    assert_int_equal(v, 0);
    struct state_reader r;
    assert_int_equal(state_reader_init(&r, w.buf.data, w.buf.len, &err), 0);
    assert_int_equal(acpi_pm_load(&p, &r, &err), 0);
    io_bus_read(&pio, X86_PM1A_EVT_PORT + 2, 2, &v);
    assert_int_equal(v, 0x0100);
    state_writer_free(&w);
    io_bus_destroy(&pio);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(pm)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
