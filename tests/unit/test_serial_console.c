#include <pthread.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "hw/serial_console.h"
#include "util/unix_socket.h"

static void bad_specs(void **state)
{
    struct serial_console *c;
    vs_err err;
    assert_int_equal(serial_console_open("telnet", &c, &err), -1);
    assert_non_null(strstr(err.msg, "stdio, none, file:PATH or [file:PATH,]socket:PATH"));
    assert_int_equal(serial_console_open("file:/tmp/x,socket:", &c, &err), -1);
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

/* Socket mode: the attached client gets the output (the log too) and its
 * bytes go to the device as they are; a new client takes over. */
struct sink {
    pthread_mutex_t lock;
    char got[256];
    size_t len;
};

static size_t take(void *opaque, const uint8_t *buf, size_t len)
{
    struct sink *k = opaque;
    pthread_mutex_lock(&k->lock);
    size_t n = len < sizeof(k->got) - k->len ? len : sizeof(k->got) - k->len;
    memcpy(k->got + k->len, buf, n);
    k->len += n;
    pthread_mutex_unlock(&k->lock);
    return n;
}

static bool sink_has(struct sink *k, const char *want)
{
    for (int i = 0; i < 500; i++) {
        pthread_mutex_lock(&k->lock);
        k->got[k->len < sizeof(k->got) ? k->len : sizeof(k->got) - 1] = 0;
        bool ok = strstr(k->got, want) != NULL;
        pthread_mutex_unlock(&k->lock);
        if (ok)
            return true;
        usleep(10000);
    }
    return false;
}

static void read_exactly(int fd, const char *want)
{
    size_t n = strlen(want), got = 0;
    char buf[256] = {0};
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        assert_true(r > 0);
        got += (size_t)r;
    }
    assert_memory_equal(buf, want, n);
}

static void socket_mode(void **state)
{
    char dir[] = "/tmp/vessel-console-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char spec[300], log[128], sock[128];
    snprintf(log, sizeof(log), "%s/log", dir);
    snprintf(sock, sizeof(sock), "%s/console.sock", dir);
    snprintf(spec, sizeof(spec), "file:%s,socket:%s", log, sock);
    struct serial_console *c;
    vs_err err;
    assert_int_equal(serial_console_open(spec, &c, &err), 0);
    struct sink k = {.lock = PTHREAD_MUTEX_INITIALIZER};
    assert_int_equal(serial_console_start(c, take, NULL, &k, &err), 0);
    /* output before anyone attaches goes to the log only */
    serial_console_write(c, (const uint8_t *)"early\n", 6);
    int a = vs_unix_connect(sock, &err);
    assert_true(a >= 0);
    /* the client is attached once the console took it: its input arrives */
    assert_int_equal(write(a, "typed\x01x", 7), 7); /* no escape: Ctrl-A x goes through */
    assert_true(sink_has(&k, "typed\x01x"));
    serial_console_write(c, (const uint8_t *)"to the client\n", 14);
    read_exactly(a, "to the client\n");
    /* a second client takes over: the first one is closed */
    int b = vs_unix_connect(sock, &err);
    assert_true(b >= 0);
    assert_int_equal(write(b, "second", 6), 6);
    assert_true(sink_has(&k, "second"));
    char byte;
    assert_int_equal(read(a, &byte, 1), 0);
    serial_console_write(c, (const uint8_t *)"to b\n", 5);
    read_exactly(b, "to b\n");
    serial_console_close(c);
    /* the socket is gone with the console; the log has everything */
    assert_int_equal(access(sock, F_OK), -1);
    FILE *f = fopen(log, "r");
    assert_non_null(f);
    char all[256] = {0};
    size_t n = fread(all, 1, sizeof(all) - 1, f);
    fclose(f);
    assert_int_equal(n, 25);
    assert_string_equal(all, "early\nto the client\nto b\n");
    close(a);
    close(b);
    unlink(log);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(bad_specs),
                                       cmocka_unit_test(output_buffering),
                                       cmocka_unit_test(big_output), cmocka_unit_test(socket_mode)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
