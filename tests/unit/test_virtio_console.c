/* virtio-console without a VM: guest output lands in the file backend; a
 * client of the socket backend feeds the guest's receive queue. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "test_virtio_driver.h"
#include "virtio/devices.h"

static struct fake_driver *start(const char *backend)
{
    struct fake_driver *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(fd_init_mem(f), 0);
    vs_err err;
    struct virtio_dev *d = virtio_console_new(&f->mem, backend, NULL, 0, &err);
    assert_non_null(d);
    fd_attach(f, d);
    assert_true(fd_negotiate(f, FD_FEATURES_V1) & VIRTIO_STATUS_FEATURES_OK);
    fd_setup_queue(f, 0, 16);
    fd_setup_queue(f, 1, 16);
    fd_driver_ok(f);
    return f;
}

static void stop(struct fake_driver *f)
{
    virtio_dev_destroy(f->dev);
    guest_mem_destroy(&f->mem);
    free(f);
}

static void output_goes_to_file(void **state)
{
    char path[] = "/tmp/vessel-test-console-XXXXXX";
    close(mkstemp(path));
    char backend[64];
    snprintf(backend, sizeof(backend), "file:%s", path);
    struct fake_driver *f = start(backend);
    uint64_t a = fd_alloc(f, 16);
    memcpy(fd_ptr(f, a), "hello, host\n", 12);
    struct fd_buf b = {a, 12, false};
    fd_add(f, 1, &b, 1);
    fd_kick(f, 1);
    uint32_t id, len;
    assert_true(fd_wait_used(f, 1, &id, &len));
    stop(f);
    char got[32] = {0};
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    assert_non_null(fgets(got, sizeof(got), fp));
    fclose(fp);
    unlink(path);
    assert_string_equal(got, "hello, host\n");
}

static void socket_client_talks_both_ways(void **state)
{
    char path[64];
    snprintf(path, sizeof(path), "/tmp/vessel-test-vcon-%d.sock", getpid());
    char backend[80];
    snprintf(backend, sizeof(backend), "socket:%s", path);
    struct fake_driver *f = start(backend);
    uint64_t rx = fd_alloc(f, 64);
    struct fd_buf b = {rx, 64, true};
    fd_add(f, 0, &b, 1);
    fd_kick(f, 0);

    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strcpy(a.sun_path, path);
    assert_int_equal(connect(s, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(write(s, "ping", 4), 4);
    uint32_t id, len;
    assert_true(fd_wait_used(f, 0, &id, &len));
    assert_int_equal(len, 4);
    assert_memory_equal(fd_ptr(f, rx), "ping", 4);

    uint64_t tx = fd_alloc(f, 8);
    memcpy(fd_ptr(f, tx), "pong", 4);
    struct fd_buf t = {tx, 4, false};
    fd_add(f, 1, &t, 1);
    fd_kick(f, 1);
    char got[4];
    assert_int_equal(read(s, got, 4), 4);
    assert_memory_equal(got, "pong", 4);
    close(s);
    stop(f);
    assert_int_not_equal(access(path, F_OK), 0); /* socket removed */
}

static void unknown_backend_is_refused(void **state)
{
    struct guest_mem m;
    guest_mem_init(&m);
    vs_err err;
    assert_null(virtio_console_new(&m, "tcp:1234", NULL, 0, &err));
    assert_non_null(strstr(err.msg, "file:PATH"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(output_goes_to_file),
        cmocka_unit_test(socket_client_talks_both_ways),
        cmocka_unit_test(unknown_backend_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
