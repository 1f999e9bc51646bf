#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "state/state.h"

static void round_trip(void **state)
{
    struct state_writer w;
    state_writer_init(&w);
    state_begin(&w, "uart8250", 0, 1);
    state_put_u32(&w, 0x12345678);
    state_put_u64(&w, 0x1122334455667788ULL);
    state_end(&w);
    state_begin(&w, "uart8250", 1, 2);
    state_put(&w, "abc", 3);
    state_end(&w);
    vs_err err;
    assert_int_equal(state_writer_status(&w, &err), 0);

    struct state_reader r;
    assert_int_equal(state_reader_init(&r, w.buf.data, w.buf.len, &err), 0);
    uint32_t ver, u32;
    uint64_t u64;
    assert_int_equal(state_find(&r, "uart8250", 1, &ver, &err), 2);
    char abc[3];
    assert_int_equal(state_get(&r, abc, 3, &err), 0);
    assert_memory_equal(abc, "abc", 3);
    assert_int_equal(state_get(&r, abc, 1, &err), -1); /* past the section */
    assert_int_equal(state_find(&r, "uart8250", 0, &ver, &err), 1);
    assert_int_equal(state_get_u32(&r, &u32, &err), 0);
    assert_int_equal(u32, 0x12345678);
    assert_int_equal(state_get_u64(&r, &u64, &err), 0);
    assert_int_equal(u64, 0x1122334455667788ULL);
    assert_int_equal(state_find(&r, "i8042", 0, &ver, &err), -1);

    /* every truncation of the stream is refused at init, never overread */
    for (size_t n = 1; n < w.buf.len; n++) {
        struct state_reader t;
        int rc = state_reader_init(&t, w.buf.data, n, &err);
        /* only the exact end of the first section is a valid prefix */
        if (rc == 0)
            assert_int_equal(state_find(&t, "uart8250", 1, &ver, &err), -1);
    }
    state_writer_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(round_trip)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
