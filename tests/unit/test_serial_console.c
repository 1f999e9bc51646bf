#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "hw/serial_console.h"

static void bad_specs(void **state)
{
    struct serial_console *c;
    vs_err err;
    assert_int_equal(serial_console_open("telnet", &c, &err), -1);
    assert_non_null(strstr(err.msg, "stdio, none or file:PATH"));
    assert_int_equal(serial_console_open("file:/nonexistent/dir/log", &c, &err), -1);
    assert_non_null(strstr(err.msg, "/nonexistent/dir/log"));
    assert_int_equal(serial_console_open("none", &c, &err), 0);
    serial_console_write(c, (const uint8_t *)"dropped\n", 8);
    serial_console_close(c);
}

static void output_buffering(void **state)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    char spec[64];
    snprintf(spec, sizeof(spec), "file:/proc/self/fd/%d", p[1]);
    struct serial_console *c;
    vs_err err;
    assert_int_equal(serial_console_open(spec, &c, &err), 0);
    /* A complete line is written out at once. */
    serial_console_write(c, (const uint8_t *)"hello", 5);
    serial_console_write(c, (const uint8_t *)" world\r\n", 8);
    char buf[64] = {0};
    assert_int_equal(read(p[0], buf, sizeof(buf)), 13);
    assert_memory_equal(buf, "hello world\r\n", 13);
    /* A partial line is written out by close at the latest. */
    serial_console_write(c, (const uint8_t *)"prompt# ", 8);
    serial_console_close(c);
    close(p[1]);
    size_t got = 0;
    ssize_t n;
    while ((n = read(p[0], buf + got, sizeof(buf) - got)) > 0)
        got += (size_t)n;
    assert_int_equal(got, 8);
    assert_memory_equal(buf, "prompt# ", 8);
    close(p[0]);
}

static void big_output(void **state)
{
    char path[] = "/tmp/vessel-console-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    char spec[64];
    snprintf(spec, sizeof(spec), "file:%s", path);
    struct serial_console *c;
    vs_err err;
    assert_int_equal(serial_console_open(spec, &c, &err), 0);
    static uint8_t data[20000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)('a' + i % 26);
    for (size_t i = 0; i < sizeof(data); i += 7)
        serial_console_write(c, data + i, i + 7 <= sizeof(data) ? 7 : sizeof(data) - i);
    serial_console_close(c);
    static uint8_t back[sizeof(data) + 1];
    assert_int_equal(read(fd, back, sizeof(back)), sizeof(data));
    assert_memory_equal(back, data, sizeof(data));
    close(fd);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(bad_specs),
                                       cmocka_unit_test(output_buffering),
                                       cmocka_unit_test(big_output)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
