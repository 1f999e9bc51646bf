#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "util/parse.h"

static void sizes(void **state)
{
    uint64_t v;
    vs_err err;
    assert_int_equal(vs_parse_size("256M", 0, &v, &err), 0);
    assert_int_equal(v, 256ULL << 20);
    assert_int_equal(vs_parse_size("2G", 0, &v, &err), 0);
    assert_int_equal(v, 2ULL << 30);
    assert_int_equal(vs_parse_size("512", 1 << 20, &v, &err), 0);
    assert_int_equal(v, 512ULL << 20);
    assert_int_equal(vs_parse_size("1GiB", 0, &v, &err), 0);
    assert_int_equal(v, 1ULL << 30);
    assert_int_equal(vs_parse_size("64k", 0, &v, &err), 0);
    assert_int_equal(v, 64ULL << 10);
    assert_int_equal(vs_parse_size("12X", 0, &v, &err), -1);
    assert_non_null(strstr(err.msg, "unit"));
    assert_int_equal(vs_parse_size("-1G", 0, &v, &err), -1);
    assert_int_equal(vs_parse_size("", 0, &v, &err), -1);
    assert_int_equal(vs_parse_size("99999999999T", 0, &v, &err), -1);
    assert_int_equal(vs_parse_size("2GG", 0, &v, &err), -1);
}

static void numbers(void **state)
{
    uint64_t v;
    vs_err err;
    assert_int_equal(vs_parse_u64("4", 1, 64, &v, &err), 0);
    assert_int_equal(v, 4);
    assert_int_equal(vs_parse_u64("0", 1, 64, &v, &err), -1);
    assert_non_null(strstr(err.msg, "out of range"));
    assert_int_equal(vs_parse_u64("1000", 1, 64, &v, &err), -1);
    assert_int_equal(vs_parse_u64("4x", 1, 64, &v, &err), -1);
    assert_int_equal(vs_parse_u64("-4", 1, 64, &v, &err), -1);
}

static void optlists(void **state)
{
    struct vs_optlist l;
    vs_err err;
    bool present;
    assert_int_equal(vs_optlist_parse("disk.img,ro,cache=none", &l, &err), 0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.opts[0].key, "disk.img");
    assert_null(l.opts[0].value);
    assert_null(vs_optlist_get(&l, "ro", &present));
    assert_true(present);
    assert_string_equal(vs_optlist_get(&l, "cache", NULL), "none");
    assert_null(vs_optlist_get(&l, "serial", &present));
    assert_false(present);
    vs_optlist_free(&l);
    assert_int_equal(vs_optlist_parse("a,=b", &l, &err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sizes),
        cmocka_unit_test(numbers),
        cmocka_unit_test(optlists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
