/* The riscv64 board's CLINT: mtime at 10 MHz from the host clock, mtimecmp
 * and msip registers (64-bit and 32-bit halves), deadlines, save/load. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "riscv/clint.h"
#include "riscv/hart.h"

static uint64_t fake_ns;

static uint64_t fake_clock(void)
{
    return fake_ns;
}

static void setup_clint(struct clint *c, unsigned n)
{
    fake_ns = 1000000000ull;
    memset(c, 0, sizeof(*c));
    c->clock_ns = fake_clock; /* before init: the base is taken from it */
    clint_init(c, NULL, n, RV_MIP_MTIP);
    c->clock_ns = fake_clock;
    clint_set_mtime(c, 0);
}

static void mtime_runs_at_10mhz(void **state)
{
    struct clint c;
    setup_clint(&c, 1);
    assert_int_equal(clint_mtime(&c), 0);
    fake_ns += 1000000; /* 1 ms */
    assert_int_equal(clint_mtime(&c), 10000);
    assert_int_equal(clint_io_read(&c, 0xbff8, 8), 10000);
    assert_int_equal(clint_io_read(&c, 0xbff8, 4), 10000);
    assert_int_equal(clint_io_read(&c, 0xbffc, 4), 0);
    /* the guest may set mtime */
    clint_io_write(&c, 0xbffc, 1, 4);
    assert_int_equal(clint_mtime(&c), (1ull << 32) + 10000);
    fake_ns += 100;
    assert_int_equal(clint_mtime(&c), (1ull << 32) + 10001);
}

static void timecmp_and_deadline(void **state)
{
    struct clint c;
    setup_clint(&c, 2);
    assert_int_equal(clint_deadline(&c, 0), UINT64_MAX);
    assert_false(clint_update_timer(&c, 0));
    clint_io_write(&c, 0x4008, 500, 8); /* hart 1 */
    assert_int_equal(clint_io_read(&c, 0x4008, 8), 500);
    assert_int_equal(clint_deadline(&c, 1), 500);
    assert_int_equal(clint_deadline(&c, 0), UINT64_MAX);
    assert_false(clint_update_timer(&c, 1));
    assert_int_equal(clint_ns_until(&c, 500), 50000);
    fake_ns += 50000;
    assert_true(clint_update_timer(&c, 1));
    assert_int_equal(clint_ns_until(&c, 500), 0);
    /* 32-bit halves, as RV32 firmware writes them */
    clint_io_write(&c, 0x4000, 0xffffffff, 4);
    clint_io_write(&c, 0x4004, 0x1, 4);
    assert_int_equal(clint_deadline(&c, 0), 0x1ffffffffull);
    assert_int_equal(clint_io_read(&c, 0x4004, 4), 1);
    /* out of range harts read as zero and ignore writes */
    clint_io_write(&c, 0x4010, 5, 8);
    assert_int_equal(clint_io_read(&c, 0x4010, 8), 0);
    assert_int_equal(clint_deadline(&c, 7), UINT64_MAX);
}

static void msip_registers(void **state)
{
    struct clint c;
    setup_clint(&c, 2);
    clint_io_write(&c, 4, 0xffffffff, 4);
    assert_int_equal(clint_io_read(&c, 4, 4), 1); /* one bit */
    assert_int_equal(clint_io_read(&c, 0, 4), 0);
    clint_io_write(&c, 4, 0, 4);
    assert_int_equal(clint_io_read(&c, 4, 4), 0);
    clint_io_write(&c, 2, 1, 4); /* misaligned: ignored */
    assert_int_equal(clint_io_read(&c, 0, 4), 0);
}

static void msip_and_timer_reach_the_hart(void **state)
{
    struct rv_bus bus = {0};
    static uint8_t ram[4096];
    bus.ram = ram;
    bus.ram_base = 0x80000000;
    bus.ram_size = sizeof(ram);
    struct rv_hart *h = calloc(1, sizeof(*h));
    rv_hart_init(h, 0, &bus);
    struct rv_hart *harts[1] = {h};
    struct clint c;
    fake_ns = 5000000000ull;
    memset(&c, 0, sizeof(c));
    c.clock_ns = fake_clock;
    clint_init(&c, harts, 1, RV_MIP_STIP);
    clint_io_write(&c, 0, 1, 4);
    assert_true(__atomic_load_n(&h->mip, __ATOMIC_SEQ_CST) & RV_MIP_MSIP);
    clint_io_write(&c, 0, 0, 4);
    assert_false(__atomic_load_n(&h->mip, __ATOMIC_SEQ_CST) & RV_MIP_MSIP);
    clint_set_timecmp(&c, 0, 100);
    assert_false(__atomic_load_n(&h->mip, __ATOMIC_SEQ_CST) & RV_MIP_STIP);
    fake_ns += 100 * 100;
    clint_update_timer(&c, 0);
    assert_true(__atomic_load_n(&h->mip, __ATOMIC_SEQ_CST) & RV_MIP_STIP);
    clint_set_timecmp(&c, 0, UINT64_MAX); /* the SBI's way of cancelling */
    assert_false(__atomic_load_n(&h->mip, __ATOMIC_SEQ_CST) & RV_MIP_STIP);
    rv_hart_destroy(h);
    free(h);
}

static void save_load(void **state)
{
    struct clint c, d;
    setup_clint(&c, 2);
    fake_ns += 1000;
    clint_io_write(&c, 0x4000, 77, 8);
    clint_io_write(&c, 4, 1, 4);
    struct state_writer w;
    state_writer_init(&w);
    clint_save(&c, &w);
    vs_err err;
    assert_int_equal(state_writer_status(&w, &err), 0);

    setup_clint(&d, 2);
    fake_ns += 123456789; /* restored later: mtime continues from the saved value */
    struct state_reader r;
    assert_int_equal(state_reader_init(&r, w.buf.data, w.buf.len, &err), 0);
    assert_int_equal(clint_load(&d, &r, &err), 0);
    assert_int_equal(clint_mtime(&d), 10);
    assert_int_equal(clint_deadline(&d, 0), 77);
    assert_int_equal(clint_io_read(&d, 4, 4), 1);

    struct clint one;
    setup_clint(&one, 1);
    assert_int_equal(state_reader_init(&r, w.buf.data, w.buf.len, &err), 0);
    assert_int_equal(clint_load(&one, &r, &err), -1);
    assert_non_null(strstr(err.msg, "harts"));
    state_writer_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mtime_runs_at_10mhz), cmocka_unit_test(timecmp_and_deadline),
        cmocka_unit_test(msip_registers),      cmocka_unit_test(msip_and_timer_reach_the_hart),
        cmocka_unit_test(save_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
