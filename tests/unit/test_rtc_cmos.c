#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "hw/rtc_cmos.h"

/* 2026-11-24 13:05:09 UTC, a Tuesday, plus a sub-second part. */
static int64_t fake_ns = 1795525509LL * 1000000000 + 500000000;
static int64_t fake_now(void)
{
    return fake_ns;
}

static void setup(struct rtc_cmos *c)
{
    rtc_cmos_init(c, NULL);
    c->now_ns = fake_now;
}

static void bcd_24h(void **state)
{
    struct rtc_cmos c;
    setup(&c);
    assert_int_equal(rtc_cmos_read(&c, 0x0b), 0x02); /* 24 h, BCD */
    assert_int_equal(rtc_cmos_read(&c, 0x00), 0x09);
    assert_int_equal(rtc_cmos_read(&c, 0x02), 0x05);
    assert_int_equal(rtc_cmos_read(&c, 0x04), 0x13);
    assert_int_equal(rtc_cmos_read(&c, 0x06), 3); /* Tuesday = 3 */
    assert_int_equal(rtc_cmos_read(&c, 0x07), 0x24);
    assert_int_equal(rtc_cmos_read(&c, 0x08), 0x11);
    assert_int_equal(rtc_cmos_read(&c, 0x09), 0x26);
    assert_int_equal(rtc_cmos_read(&c, 0x32), 0x20);
    assert_int_equal(rtc_cmos_read(&c, 0x0d), 0x80); /* valid RAM and time */
}

static void binary_12h(void **state)
{
    struct rtc_cmos c;
    setup(&c);
    rtc_cmos_write(&c, 0x0b, 0x04); /* binary, 12 h */
    assert_int_equal(rtc_cmos_read(&c, 0x00), 9);
    assert_int_equal(rtc_cmos_read(&c, 0x04), 0x80 | 1); /* 1 pm */
    assert_int_equal(rtc_cmos_read(&c, 0x09), 26);
}

static void update_in_progress(void **state)
{
    struct rtc_cmos c;
    setup(&c);
    assert_false(rtc_cmos_read(&c, 0x0a) & 0x80);
    fake_ns += 499900000; /* 100 us before the next second */
    assert_true(rtc_cmos_read(&c, 0x0a) & 0x80);
    fake_ns -= 499900000;
    assert_int_equal(rtc_cmos_read(&c, 0x0a) & 0x7f, 0x26);
}

static void guest_sets_time(void **state)
{
    struct rtc_cmos c;
    setup(&c);
    rtc_cmos_write(&c, 0x0b, 0x82); /* SET */
    rtc_cmos_write(&c, 0x09, 0x30); /* year 2030 */
    rtc_cmos_write(&c, 0x04, 0x01); /* 01:xx */
    rtc_cmos_write(&c, 0x0b, 0x02);
    assert_int_equal(rtc_cmos_read(&c, 0x09), 0x30);
    assert_int_equal(rtc_cmos_read(&c, 0x04), 0x01);
    /* The offset holds as host time advances. */
    fake_ns += 3600LL * 1000000000;
    assert_int_equal(rtc_cmos_read(&c, 0x04), 0x02);
    fake_ns -= 3600LL * 1000000000;

    /* CMOS RAM, and save/load keeps the offset. */
    rtc_cmos_write(&c, 0x40, 0x5a);
    struct state_writer w;
    state_writer_init(&w);
    rtc_cmos_save(&c, &w);
    struct rtc_cmos d;
    setup(&d);
    struct state_reader r;
    vs_err err;
    assert_int_equal(state_reader_init(&r, w.buf.data, w.buf.len, &err), 0);
    assert_int_equal(rtc_cmos_load(&d, &r, &err), 0);
    assert_int_equal(rtc_cmos_read(&d, 0x40), 0x5a);
    assert_int_equal(rtc_cmos_read(&d, 0x09), 0x30);
    state_writer_free(&w);
}

static void update_flag(void **state)
{
    struct rtc_cmos c;
    setup(&c);
    rtc_cmos_read(&c, 0x0c);
    assert_int_equal(rtc_cmos_read(&c, 0x0c), 0); /* read clears */
    fake_ns += 1000000000;
    assert_true(rtc_cmos_read(&c, 0x0c) & 0x10); /* a second ended */
    fake_ns -= 1000000000;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bcd_24h),
        cmocka_unit_test(binary_12h),
        cmocka_unit_test(update_in_progress),
        cmocka_unit_test(guest_sets_time),
        cmocka_unit_test(update_flag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
