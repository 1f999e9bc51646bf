#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "cmd/commands.h"
#include "vm/config.h"
#include "vm/config_json.h"

static char kernel[] = "/tmp/vessel-test-kernel-XXXXXX";

static int setup(void **state)
{
    int fd = mkstemp(kernel);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

static int teardown(void **state)
{
    unlink(kernel);
    return 0;
}

static int parse(struct vm_config *c, vs_err *err, ...)
{
    char *argv[32] = {"run"};
    int argc = 1;
    va_list ap;
    va_start(ap, err);
    for (char *a; (a = va_arg(ap, char *));)
        argv[argc++] = a;
    va_end(ap);
    vm_config_init(c);
    return cmd_vm_run_args(c, argc, argv, err);
}

static void good_flags(void **state)
{
    struct vm_config c;
    vs_err err;
    assert_int_equal(parse(&c, &err, "--kernel", kernel, "--cpus", "4", "--memory", "2G",
                           "--append", "console=ttyS0", "--disk", kernel + 0, NULL),
                     0);
    assert_int_equal(c.cpus, 4);
    assert_int_equal(c.memory, 2ULL << 30);
    assert_string_equal(c.append, "console=ttyS0");
    assert_int_equal(c.ndisks, 1);
    assert_string_equal(c.console, "stdio");
    vm_config_free(&c);
}

static void bad_flags(void **state)
{
    struct vm_config c;
    vs_err err;
    assert_int_equal(parse(&c, &err, "--kernel", kernel, "--cpus", "0", NULL), -1);
    assert_non_null(strstr(err.msg, "--cpus"));
    vm_config_free(&c);
    assert_int_equal(parse(&c, &err, "--kernel", kernel, "--cpus", "1000", NULL), -1);
    vm_config_free(&c);
    assert_int_equal(parse(&c, &err, "--kernel", kernel, "--memory", "1M", NULL), -1);
    assert_non_null(strstr(err.msg, "too small"));
    vm_config_free(&c);
    assert_int_equal(parse(&c, &err, "--kernel", kernel, "--memory", "100T", NULL), -1);
    assert_non_null(strstr(err.msg, "more than the host"));
    vm_config_free(&c);
    assert_int_equal(parse(&c, &err, "--kernel", "/nonexistent/bzImage", NULL), -1);
    assert_non_null(strstr(err.msg, "/nonexistent/bzImage"));
    vm_config_free(&c);
    assert_int_equal(parse(&c, &err, "--kernel", kernel, "--frobnicate", NULL), -1);
    assert_non_null(strstr(err.msg, "--frobnicate"));
    vm_config_free(&c);
    assert_int_equal(parse(&c, &err, "--kernel", kernel, "--net", "tap", NULL), -1);
    vm_config_free(&c);
    assert_int_equal(
        parse(&c, &err, "--kernel", kernel, "--net", "user,mac=01:00:00:00:00:01", NULL), -1);
    assert_non_null(strstr(err.msg, "unicast"));
    vm_config_free(&c);
}

static void virtio_vendor(void **state)
{
    struct vm_config c;
    vs_err err;
    assert_int_equal(parse(&c, &err, "--kernel", kernel, NULL), 0);
    assert_false(c.virtio_vendor_qemu);
    vm_config_free(&c);
    assert_int_equal(parse(&c, &err, "--kernel", kernel, "--virtio-vendor", "qemu", NULL), 0);
    assert_true(c.virtio_vendor_qemu);
    /* kept in a snapshot's config */
    json_t *j = vm_config_to_json(&c);
    struct vm_config back;
    vm_config_init(&back);
    assert_int_equal(vm_config_from_json(j, &back, &err), 0);
    assert_true(back.virtio_vendor_qemu);
    json_decref(j);
    vm_config_free(&back);
    vm_config_free(&c);
    assert_int_equal(parse(&c, &err, "--kernel", kernel, "--virtio-vendor", "acme", NULL), -1);
    assert_non_null(strstr(err.msg, "--virtio-vendor"));
    vm_config_free(&c);
}

static void accel(void **state)
{
    struct vm_config c;
    vs_err err;
    assert_int_equal(parse(&c, &err, "--kernel", kernel, "--arch", "riscv64", NULL), 0);
    assert_int_equal(c.accel, VM_ACCEL_DEFAULT);
    vm_config_free(&c);
    assert_int_equal(
        parse(&c, &err, "--kernel", kernel, "--arch", "riscv64", "--accel", "interp", NULL), 0);
    assert_int_equal(c.accel, VM_ACCEL_INTERP);
    json_t *j = vm_config_to_json(&c);
    struct vm_config back;
    vm_config_init(&back);
    assert_int_equal(vm_config_from_json(j, &back, &err), 0);
    assert_int_equal(back.accel, VM_ACCEL_INTERP);
    json_decref(j);
    vm_config_free(&back);
    vm_config_free(&c);
    assert_int_equal(
        parse(&c, &err, "--kernel", kernel, "--arch", "riscv64", "--accel", "fast", NULL), -1);
    assert_non_null(strstr(err.msg, "--accel"));
    vm_config_free(&c);
    /* x86_64 runs on KVM: nothing to choose */
    assert_int_equal(parse(&c, &err, "--kernel", kernel, "--accel", "jit", NULL), -1);
    assert_non_null(strstr(err.msg, "riscv64"));
    vm_config_free(&c);
}

static void nets(void **state)
{
    struct vm_config c;
    vs_err err;
    assert_int_equal(parse(&c, &err, "--kernel", kernel, "--net",
                           "user,hostfwd=tcp::2222-:22,mac=52:54:00:12:34:56", "--net", "tap=tap0",
                           NULL),
                     0);
    assert_int_equal(c.nnets, 2);
    assert_int_equal(c.nets[0].kind, VM_NET_USER);
    assert_string_equal(c.nets[0].hostfwd[0], "tcp::2222-:22");
    assert_int_equal(c.nets[0].mac[5], 0x56);
    assert_int_equal(c.nets[1].kind, VM_NET_TAP);
    assert_string_equal(c.nets[1].tap, "tap0");
    vm_config_free(&c);
}

static void isolation(void **state)
{
    struct vm_config c;
    vs_err err;
    /* the zero value is the confined one: seccomp on, no jail */
    assert_int_equal(parse(&c, &err, "--kernel", kernel, NULL), 0);
    assert_int_equal(c.seccomp, VM_SECCOMP_ON);
    assert_false(c.landlock);
    assert_null(c.jail);
    vm_config_free(&c);
    assert_int_equal(parse(&c, &err, "--kernel", kernel, "--seccomp=log", "--landlock", "on",
                           "--landlock-rw", "/srv/a", "--landlock-rw", "/srv/b", "--jail", "/run/j",
                           "--jail-fsize", "8G", NULL),
                     0);
    assert_int_equal(c.seccomp, VM_SECCOMP_LOG);
    assert_true(c.landlock);
    assert_int_equal(c.nlandlock_rw, 2);
    assert_string_equal(c.landlock_rw[1], "/srv/b");
    assert_string_equal(c.jail, "/run/j");
    assert_int_equal(c.jail_uid, 65534);
    assert_int_equal(c.jail_gid, 65534);
    assert_int_equal(c.jail_fsize, 8ULL << 30);
    vm_config_free(&c);
    assert_int_equal(parse(&c, &err, "--kernel", kernel, "--seccomp", "strict", NULL), -1);
    assert_non_null(strstr(err.msg, "--seccomp"));
    vm_config_free(&c);
    assert_int_equal(parse(&c, &err, "--kernel", kernel, "--landlock", "yes", NULL), -1);
    vm_config_free(&c);
    /* ids need a jail, and the jail's uid is never root */
    assert_int_equal(parse(&c, &err, "--kernel", kernel, "--jail-uid", "1000", NULL), -1);
    vm_config_free(&c);
    assert_int_equal(
        parse(&c, &err, "--kernel", kernel, "--jail", "/run/j", "--jail-uid", "0", NULL), -1);
    vm_config_free(&c);
    assert_int_equal(parse(&c, &err, "--kernel", kernel, "--jail", "/run/j", "--jail-uid", "1000",
                           "--jail-gid", "100", NULL),
                     0);
    assert_int_equal(c.jail_uid, 1000);
    assert_int_equal(c.jail_gid, 100);
    vm_config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(good_flags),    cmocka_unit_test(bad_flags), cmocka_unit_test(nets),
        cmocka_unit_test(virtio_vendor), cmocka_unit_test(accel),     cmocka_unit_test(isolation),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
