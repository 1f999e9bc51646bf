/* The token buckets behind the disk and NIC rate limits: bursts, refill,
 * requests bigger than the burst, both buckets at once, no limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "util/rate_limit.h"

#define S 1000000000ull

static void no_limit_never_waits(void **state)
{
    struct vs_rate_limit rl;
    struct vs_rate_config c = {0};
    vs_rate_limit_set(&rl, &c, 0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(vs_rate_limit_take(&rl, 1 << 30, 0), 0);
    assert_false(vs_rate_config_active(&c));
}

static void bandwidth_with_burst(void **state)
{
    struct vs_rate_limit rl;
    struct vs_rate_config c = {.bytes_per_s = 1000000, .bytes_burst = 100000};
    vs_rate_limit_set(&rl, &c, 0);
    /* the burst goes at once */
    assert_int_equal(vs_rate_limit_take(&rl, 60000, 0), 0);
    assert_int_equal(vs_rate_limit_take(&rl, 40000, 0), 0);
    /* then 50000 bytes take 50 ms */
    uint64_t w = vs_rate_limit_take(&rl, 50000, 0);
    assert_true(w >= 49 * 1000000ull && w <= 51 * 1000000ull);
    assert_int_equal(rl.throttled, 1);
    assert_int_equal(vs_rate_limit_take(&rl, 50000, 50 * 1000000ull), 0);
    /* over a long run the rate holds: 10 s of 10 KB requests */
    uint64_t now = S, sent = 0;
    vs_rate_limit_set(&rl, &c, now);
    while (now < 11 * S) {
        uint64_t wait = vs_rate_limit_take(&rl, 10000, now);
        if (wait)
            now += wait;
        else
            sent += 10000;
    }
    /* 10 s at 1 MB/s plus the first burst */
    assert_true(sent >= 10000000 && sent <= 10000000 + 100000 + 10000);
}

static void bigger_than_burst_leaves_debt(void **state)
{
    struct vs_rate_limit rl;
    struct vs_rate_config c = {.bytes_per_s = 1000, .bytes_burst = 1000};
    vs_rate_limit_set(&rl, &c, 0);
    assert_int_equal(vs_rate_limit_take(&rl, 5000, 0), 0); /* a full bucket pays */
    /* 4000 of debt and 1000 for the next: 5 s */
    uint64_t w = vs_rate_limit_take(&rl, 1000, 0);
    assert_true(w >= 5 * S - 1000 && w <= 5 * S + 1000);
}

static void ops_and_bytes_together(void **state)
{
    struct vs_rate_limit rl;
    struct vs_rate_config c = {.bytes_per_s = 1 << 30, .ops_per_s = 100, .ops_burst = 10};
    vs_rate_limit_set(&rl, &c, 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(vs_rate_limit_take(&rl, 512, 0), 0);
    uint64_t w = vs_rate_limit_take(&rl, 512, 0);
    assert_true(w >= 9 * 1000000ull && w <= 11 * 1000000ull); /* 10 ms per op */
    /* a wait that nothing took: the bucket was left as it was */
    assert_int_equal(vs_rate_limit_take(&rl, 512, 10 * 1000000ull), 0);
    assert_true(vs_rate_limit_take(&rl, 512, 10 * 1000000ull) > 0);
}

static void default_burst_is_a_tenth(void **state)
{
    struct vs_rate_limit rl;
    struct vs_rate_config c = {.bytes_per_s = 1000000, .ops_per_s = 5};
    vs_rate_limit_set(&rl, &c, 0);
    assert_int_equal(rl.bytes.burst, 100000);
    assert_int_equal(rl.ops.burst, 1);
    assert_int_equal(vs_rate_limit_take(&rl, 100000, 0), 0);
    assert_true(vs_rate_limit_take(&rl, 1, 0) > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(no_limit_never_waits),          cmocka_unit_test(bandwidth_with_burst),
        cmocka_unit_test(bigger_than_burst_leaves_debt), cmocka_unit_test(ops_and_bytes_together),
        cmocka_unit_test(default_burst_is_a_tenth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
