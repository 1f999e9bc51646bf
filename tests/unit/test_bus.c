#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hw/bus.h"

struct dev {
    uint64_t last_off, last_val;
    unsigned writes;
};

static uint64_t dev_read(void *opaque, uint64_t off, unsigned len)
{
    return 0x1000 + off;
}

static void dev_write(void *opaque, uint64_t off, uint64_t val, unsigned len)
{
    struct dev *d = opaque;
    d->last_off = off;
    d->last_val = val;
    d->writes++;
}

static void dispatch(void **state)
{
    struct io_bus b;
    struct dev a = {0}, c = {0};
    vs_err err;
    io_bus_init(&b, "pio");
    struct io_region ra = {"a", 0x3f8, 8, dev_read, dev_write, &a};
    struct io_region rc = {"c", 0x60, 1, dev_read, dev_write, &c};
    struct io_region rbad = {"bad", 0x3fc, 8, dev_read, dev_write, &c};
    assert_int_equal(io_bus_register(&b, &ra, &err), 0);
    assert_int_equal(io_bus_register(&b, &rc, &err), 0);
    assert_int_equal(io_bus_register(&b, &rbad, &err), -1);
    uint64_t v;
    assert_true(io_bus_read(&b, 0x3fd, 1, &v));
    assert_int_equal(v, 0x1005);
    assert_true(io_bus_write(&b, 0x60, 0xfe, 1));
    assert_int_equal(c.last_val, 0xfe);
    assert_false(io_bus_read(&b, 0x61, 2, &v));
    assert_int_equal(v, 0xffff);
    assert_int_equal(io_bus_unregister(&b, 0x60, &c), 0);
    assert_false(io_bus_write(&b, 0x60, 1, 1));
    io_bus_destroy(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(dispatch)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
