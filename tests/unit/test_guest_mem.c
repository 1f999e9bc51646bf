#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "mem/guest_mem.h"

static void translate_and_bounds(void **state)
{
    struct guest_mem m;
    vs_err err;
    guest_mem_init(&m);
    assert_int_equal(guest_mem_add_anon(&m, 0, 1 << 20, &err), 0);
    assert_int_equal(guest_mem_add_anon(&m, 0x100000000ULL, 1 << 20, &err), 0);
    assert_int_equal(guest_mem_add_anon(&m, 0x80000, 1 << 20, &err), -1); /* overlap */
    assert_non_null(guest_mem_ptr(&m, 0, 1 << 20));
    assert_null(guest_mem_ptr(&m, 0, (1 << 20) + 1)); /* runs past the end */
    assert_null(guest_mem_ptr(&m, (1 << 20) - 4, 8));
    assert_null(guest_mem_ptr(&m, 0x200000, 1));       /* hole */
    assert_null(guest_mem_ptr(&m, UINT64_MAX - 2, 8)); /* wraps */
    assert_null(guest_mem_ptr(&m, 16, UINT64_MAX));
    assert_non_null(guest_mem_ptr(&m, 0x100000000ULL + 4096, 4096));
    uint32_t v = 0xdeadbeef, r = 0;
    assert_int_equal(guest_mem_write(&m, 0x1000, &v, 4), 0);
    assert_int_equal(guest_mem_read(&m, 0x1000, &r, 4), 0);
    assert_int_equal(r, v);
    assert_int_equal(guest_mem_write(&m, 0x300000, &v, 4), -1);
    guest_mem_destroy(&m);
}

static void dirty_tracking(void **state)
{
    struct guest_mem m;
    vs_err err;
    guest_mem_init(&m);
    assert_int_equal(guest_mem_add_anon(&m, 0, 1 << 20, &err), 0);
    assert_int_equal(guest_mem_dirty_enable(&m, &err), 0);
    uint8_t b[8192] = {1};
    assert_int_equal(guest_mem_write(&m, 4096 * 3 + 100, b, 5000), 0); /* pages 3 and 4 */
    uint64_t bits[4];
    guest_mem_dirty_fetch(&m, 0, bits);
    assert_int_equal(bits[0], (1ULL << 3) | (1ULL << 4));
    guest_mem_dirty_fetch(&m, 0, bits);
    assert_int_equal(bits[0], 0);
    guest_mem_destroy(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(translate_and_bounds),
        cmocka_unit_test(dirty_tracking),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
