#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "hw/i8042.h"

static int resets, level;
static void reset(void *o)
{
    resets++;
}
static void set_level(void *o, unsigned irq, int l)
{
    level = l;
}

static void setup(struct i8042 *k)
{
    resets = level = 0;
    struct irq_line l = {.set_level = set_level, .irq = 1};
    i8042_init(k, &l, reset, NULL);
}

static void self_tests(void **state)
{
    struct i8042 k;
    setup(&k);
    i8042_write(&k, 0x64, 0xaa);
    assert_true(i8042_read(&k, 0x64) & 1);
    assert_int_equal(level, 1); /* keyboard interrupt enabled by default */
    assert_int_equal(i8042_read(&k, 0x60), 0x55);
    assert_false(i8042_read(&k, 0x64) & 1);
    assert_int_equal(level, 0);
    i8042_write(&k, 0x64, 0xab);
    assert_int_equal(i8042_read(&k, 0x60), 0x00);
    /* Command byte round trip. */
    i8042_write(&k, 0x64, 0x60);
    i8042_write(&k, 0x60, 0x44);
    i8042_write(&k, 0x64, 0x20);
    assert_int_equal(i8042_read(&k, 0x60), 0x44);
    /* No AUX port. */
    i8042_write(&k, 0x64, 0xa9);
    assert_int_equal(i8042_read(&k, 0x60), 0x01);
}

static void keyboard(void **state)
{
    struct i8042 k;
    setup(&k);
    i8042_write(&k, 0x60, 0xff);
    assert_int_equal(i8042_read(&k, 0x60), 0xfa);
    assert_int_equal(i8042_read(&k, 0x60), 0xaa);
    i8042_write(&k, 0x60, 0xed); /* LEDs + argument */
    assert_int_equal(i8042_read(&k, 0x60), 0xfa);
    i8042_write(&k, 0x60, 0x07);
    assert_int_equal(i8042_read(&k, 0x60), 0xfa);
    assert_false(i8042_read(&k, 0x64) & 1);
}

static void reset_line(void **state)
{
    struct i8042 k;
    setup(&k);
    i8042_write(&k, 0x64, 0xfe);
    assert_int_equal(resets, 1);
    i8042_write(&k, 0x64, 0xd1);
    i8042_write(&k, 0x60, 0x00);
    assert_int_equal(resets, 2);
    i8042_write(&k, 0x64, 0xff); /* pulse nothing */
    assert_int_equal(resets, 2);

    struct state_writer w;
    state_writer_init(&w);
    i8042_write(&k, 0x64, 0xaa);
    i8042_save(&k, &w);
    struct i8042 j;
    setup(&j);
    struct state_reader r;
    vs_err err;
    assert_int_equal(state_reader_init(&r, w.buf.data, w.buf.len, &err), 0);
    assert_int_equal(i8042_load(&j, &r, &err), 0);
    assert_int_equal(i8042_read(&j, 0x60), 0x55);
    state_writer_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(self_tests), cmocka_unit_test(keyboard),
                                       cmocka_unit_test(reset_line)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
