/* The board's built-in SBI: call decoding, argument checks and the effects
 * it asks of the board (recorded by fake ops). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "riscv/hart.h"
#include "riscv/sbi.h"

enum { A0 = 10, A1, A2, A3, A4, A5, A6, A7 };

static struct {
    char out[64];
    unsigned nout;
    uint64_t timer[4];
    unsigned ipi_mask, sfence_mask;
    int started;
    uint64_t start_addr, start_arg;
    int reset_type;
    const char *input;
} fx;

static void f_putchar(void *o, uint8_t c)
{
    if (fx.nout < sizeof(fx.out) - 1)
        fx.out[fx.nout++] = (char)c;
}
static int f_getchar(void *o)
{
    return fx.input && *fx.input ? (uint8_t)*fx.input++ : -1;
}
static void f_set_timer(void *o, unsigned hart, uint64_t v)
{
    fx.timer[hart] = v;
}
static void f_send_ipi(void *o, unsigned hart)
{
    fx.ipi_mask |= 1u << hart;
}
static void f_sfence(void *o, unsigned hart)
{
    fx.sfence_mask |= 1u << hart;
}
static long f_hart_start(void *o, unsigned hart, uint64_t addr, uint64_t arg)
{
    fx.started = (int)hart;
    fx.start_addr = addr;
    fx.start_arg = arg;
    return SBI_SUCCESS;
}
static long f_hart_status(void *o, unsigned hart)
{
    return hart == 0 ? SBI_HSM_STARTED : SBI_HSM_STOPPED;
}
static void f_reset(void *o, uint32_t type, uint32_t reason)
{
    fx.reset_type = (int)type;
}

static uint8_t ram[8192];

static bool no_mmio_read(void *o, uint64_t pa, unsigned len, uint64_t *val)
{
    return false;
}
static bool no_mmio_write(void *o, uint64_t pa, uint64_t val, unsigned len)
{
    return false;
}
static struct rv_hart *hart;
static struct rv_sbi sbi;

static int setup(void **state)
{
    memset(&fx, 0, sizeof(fx));
    fx.reset_type = -1;
    fx.started = -1;
    struct rv_bus bus = {.ram = ram,
                         .ram_base = 0x80000000,
                         .ram_size = sizeof(ram),
                         .mmio_read = no_mmio_read,
                         .mmio_write = no_mmio_write};
    hart = calloc(1, sizeof(*hart));
    rv_hart_init(hart, 0, &bus);
    struct rv_sbi_ops ops = {
        .putchar = f_putchar,
        .getchar = f_getchar,
        .set_timer = f_set_timer,
        .send_ipi = f_send_ipi,
        .remote_sfence = f_sfence,
        .hart_start = f_hart_start,
        .hart_status = f_hart_status,
        .system_reset = f_reset,
    };
    rv_sbi_init(&sbi, &ops, 4);
    return 0;
}

static int teardown(void **state)
{
    rv_hart_destroy(hart);
    free(hart);
    return 0;
}

static long call(uint64_t eid, uint64_t fid, uint64_t a0, uint64_t a1, uint64_t a2)
{
    hart->x[A7] = eid;
    hart->x[A6] = fid;
    hart->x[A0] = a0;
    hart->x[A1] = a1;
    hart->x[A2] = a2;
    assert_true(rv_sbi_handle(&sbi, hart));
    return (long)hart->x[A0];
}

static void base_extension(void **state)
{
    assert_int_equal(call(SBI_EXT_BASE, 0, 0, 0, 0), SBI_SUCCESS);
    assert_int_equal(hart->x[A1], 2u << 24); /* SBI 2.0 */
    call(SBI_EXT_BASE, 1, 0, 0, 0);
    assert_int_equal(hart->x[A1], SBI_IMPL_ID);
    uint64_t present[] = {SBI_EXT_TIME, SBI_EXT_IPI, SBI_EXT_RFENCE, SBI_EXT_HSM, SBI_EXT_SRST,
                          SBI_EXT_DBCN, 0x01 /* legacy putchar */};
    for (unsigned i = 0; i < sizeof(present) / sizeof(present[0]); i++) {
        assert_int_equal(call(SBI_EXT_BASE, 3, present[i], 0, 0), SBI_SUCCESS);
        assert_int_equal(hart->x[A1], 1);
    }
    call(SBI_EXT_BASE, 3, 0x504d55 /* PMU */, 0, 0);
    assert_int_equal(hart->x[A1], 0);
    assert_int_equal(call(SBI_EXT_BASE, 99, 0, 0, 0), SBI_ERR_NOT_SUPPORTED);
    assert_int_equal(call(0x12345678, 0, 0, 0, 0), SBI_ERR_NOT_SUPPORTED);
}

static void console_legacy_and_dbcn(void **state)
{
    call(0x01, 0, 'h', 0, 0);
    call(0x01, 0, 'i', 0, 0);
    memcpy(ram + 0x100, "there", 5);
    assert_int_equal(call(SBI_EXT_DBCN, 0, 5, 0x80000100, 0), SBI_SUCCESS);
    assert_int_equal(hart->x[A1], 5);
    call(SBI_EXT_DBCN, 2, '!', 0, 0);
    assert_string_equal(fx.out, "hithere!");
    /* outside RAM, or a high address half: refused */
    assert_int_equal(call(SBI_EXT_DBCN, 0, 5, 0x1000, 0), SBI_ERR_INVALID_PARAM);
    assert_int_equal(call(SBI_EXT_DBCN, 0, 5, 0x80000100, 1), SBI_ERR_INVALID_PARAM);

    fx.input = "ab";
    assert_int_equal(call(0x02, 0, 0, 0, 0), 'a');
    assert_int_equal(call(SBI_EXT_DBCN, 1, 8, 0x80000200, 0), SBI_SUCCESS);
    assert_int_equal(hart->x[A1], 1);
    assert_int_equal(ram[0x200], 'b');
    assert_int_equal(call(0x02, 0, 0, 0, 0), -1); /* nothing waiting */
}

static void timer_ipi_rfence(void **state)
{
    assert_int_equal(call(SBI_EXT_TIME, 0, 12345, 0, 0), SBI_SUCCESS);
    assert_int_equal(fx.timer[0], 12345);
    call(0x00, 0, 777, 0, 0); /* legacy set_timer */
    assert_int_equal(fx.timer[0], 777);

    assert_int_equal(call(SBI_EXT_IPI, 0, 0x3, 1, 0), SBI_SUCCESS); /* harts 1, 2 */
    assert_int_equal(fx.ipi_mask, 0x6);
    fx.ipi_mask = 0;
    assert_int_equal(call(SBI_EXT_IPI, 0, 0, UINT64_MAX, 0), SBI_SUCCESS); /* all */
    assert_int_equal(fx.ipi_mask, 0xf);
    fx.ipi_mask = 0;
    /* hart 4 does not exist: nothing is sent */
    assert_int_equal(call(SBI_EXT_IPI, 0, 0x3, 3, 0), SBI_ERR_INVALID_PARAM);
    assert_int_equal(call(SBI_EXT_IPI, 0, 1, 1ull << 40, 0), SBI_ERR_INVALID_PARAM);
    assert_int_equal(fx.ipi_mask, 0);

    assert_int_equal(call(SBI_EXT_RFENCE, 1, 0x9, 0, 0), SBI_SUCCESS);
    assert_int_equal(fx.sfence_mask, 0x9);
    assert_int_equal(call(SBI_EXT_RFENCE, 0, 0x1, 0, 0), SBI_SUCCESS);           /* fence.i */
    assert_int_equal(call(SBI_EXT_RFENCE, 3, 0x1, 0, 0), SBI_ERR_NOT_SUPPORTED); /* hfence */

    /* legacy send_ipi takes a pointer to the mask (paging is off here) */
    uint64_t mask = 0x8;
    memcpy(ram + 0x300, &mask, 8);
    assert_int_equal(call(0x04, 0, 0x80000300, 0, 0), SBI_SUCCESS);
    assert_int_equal(fx.ipi_mask, 0x8);
    assert_int_equal(call(0x04, 0, 0x10, 0, 0), SBI_ERR_INVALID_ADDRESS);
}

static void hsm_and_reset(void **state)
{
    assert_int_equal(call(SBI_EXT_HSM, 0, 2, 0x80200000, 0xabc), SBI_SUCCESS);
    assert_int_equal(fx.started, 2);
    assert_int_equal(fx.start_addr, 0x80200000);
    assert_int_equal(fx.start_arg, 0xabc);
    assert_int_equal(call(SBI_EXT_HSM, 0, 9, 0x80200000, 0), SBI_ERR_INVALID_PARAM);
    assert_int_equal(call(SBI_EXT_HSM, 2, 0, 0, 0), SBI_SUCCESS);
    assert_int_equal(hart->x[A1], SBI_HSM_STARTED);
    call(SBI_EXT_HSM, 2, 3, 0, 0);
    assert_int_equal(hart->x[A1], SBI_HSM_STOPPED);
    assert_int_equal(call(SBI_EXT_HSM, 1, 0, 0, 0), SBI_ERR_NOT_SUPPORTED); /* no hart_stop op */
    assert_int_equal(call(SBI_EXT_HSM, 3, 0, 0, 0), SBI_SUCCESS);           /* retentive suspend */
    assert_int_equal(call(SBI_EXT_HSM, 3, 0x80000000, 0, 0), SBI_ERR_NOT_SUPPORTED);
    assert_int_equal(call(SBI_EXT_HSM, 3, 5, 0, 0), SBI_ERR_INVALID_PARAM);

    assert_int_equal(call(SBI_EXT_SRST, 0, 7, 0, 0), SBI_ERR_INVALID_PARAM);
    assert_int_equal(fx.reset_type, -1);
    assert_int_equal(call(SBI_EXT_SRST, 0, SBI_RESET_COLD, 0, 0), SBI_SUCCESS);
    assert_int_equal(fx.reset_type, SBI_RESET_COLD);
    call(0x08, 0, 0, 0, 0); /* legacy shutdown */
    assert_int_equal(fx.reset_type, SBI_RESET_SHUTDOWN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(base_extension, setup, teardown),
        cmocka_unit_test_setup_teardown(console_legacy_and_dbcn, setup, teardown),
        cmocka_unit_test_setup_teardown(timer_ipi_rfence, setup, teardown),
        cmocka_unit_test_setup_teardown(hsm_and_reset, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
