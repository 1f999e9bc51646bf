/* vm_config_validate: one set of limits, and the same answer whichever way a
 * config arrives (flags, a snapshot's or the API's JSON, a struct). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

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

struct verdict {
    int rc;
    vs_err err;
};

static struct verdict from_struct(enum vm_arch arch, uint64_t memory, unsigned cpus)
{
    struct vm_config c;
    vm_config_init(&c);
    c.arch = arch;
    c.memory = memory;
    c.cpus = cpus;
    struct verdict v = {0};
    v.rc = vm_config_validate(&c, &v.err);
    vm_config_free(&c);
    return v;
}

static struct verdict from_flags(enum vm_arch arch, uint64_t memory, unsigned cpus)
{
    char mem[32], ncpu[16];
    snprintf(mem, sizeof(mem), "%lluK", (unsigned long long)(memory >> 10));
    snprintf(ncpu, sizeof(ncpu), "%u", cpus);
    char *argv[] = {"run",      "--kernel", kernel,
                    "--memory", mem,        "--cpus",
                    ncpu,       "--arch",   (char *)vm_arch_name(arch)};
    struct vm_config c;
    vm_config_init(&c);
    struct verdict v = {0};
    v.rc = cmd_vm_run_args(&c, 9, argv, &v.err);
    vm_config_free(&c);
    return v;
}

static struct verdict from_json(enum vm_arch arch, uint64_t memory, unsigned cpus)
{
    json_t *j = json_pack("{s:s, s:s, s:I, s:I}", "arch", vm_arch_name(arch), "kernel", kernel,
                          "memory", (json_int_t)memory, "cpus", (json_int_t)cpus);
    struct vm_config c;
    vm_config_init(&c);
    struct verdict v = {0};
    v.rc = vm_config_from_json(j, &c, &v.err);
    json_decref(j);
    vm_config_free(&c);
    return v;
}

/* Every entry point says the same; when it refuses, the message has needle. */
static void agree(enum vm_arch arch, uint64_t memory, unsigned cpus, bool ok, const char *needle)
{
    struct verdict v[] = {from_struct(arch, memory, cpus), from_flags(arch, memory, cpus),
                          from_json(arch, memory, cpus)};
    for (size_t i = 0; i < 3; i++) {
        if (ok != (v[i].rc == 0))
            fail_msg("entry %zu, %s memory %llu KiB cpus %u: rc %d (%s)", i, vm_arch_name(arch),
                     (unsigned long long)(memory >> 10), cpus, v[i].rc, v[i].err.msg);
        if (!ok && needle && !strstr(v[i].err.msg, needle))
            fail_msg("entry %zu: '%s' lacks '%s'", i, v[i].err.msg, needle);
    }
}

static uint64_t host_ram(void)
{
    struct sysinfo si;
    assert_int_equal(sysinfo(&si), 0);
    return (uint64_t)si.totalram * si.mem_unit;
}

static void memory_limits(void **state)
{
    for (int a = VM_ARCH_X86_64; a <= VM_ARCH_RISCV64; a++) {
        uint64_t min = a == VM_ARCH_RISCV64 ? VM_MIN_MEMORY_RISCV64 : VM_MIN_MEMORY_X86_64;
        agree(a, min, 1, true, NULL);
        agree(a, 256ULL << 20, 2, true, NULL);
        agree(a, min - VM_MEMORY_ALIGN, 1, false, "too small");
        agree(a, 1ULL << 20, 1, false, "too small");
        agree(a, (32ULL << 20) + (1ULL << 20), 1, false, "multiple of 2 MiB");
        agree(a, (host_ram() & ~(VM_MEMORY_ALIGN - 1)) + (2ULL << 20), 1, false, "more than");
        agree(a, 64ULL << 40, 1, false, "more than");
    }
}

static void cpu_limits(void **state)
{
    agree(VM_ARCH_X86_64, 256ULL << 20, VM_MAX_CPUS, true, NULL);
    agree(VM_ARCH_X86_64, 256ULL << 20, 0, false, "cpus");
    agree(VM_ARCH_X86_64, 256ULL << 20, VM_MAX_CPUS + 1, false, "cpus");
}

static void macs(void **state)
{
    uint8_t mac[6];
    assert_int_equal(vm_parse_mac("52:54:00:12:34:56", mac), 0);
    assert_int_equal(mac[5], 0x56);
    assert_int_equal(vm_parse_mac("01:00:5e:00:00:01", mac), -1); /* multicast */
    assert_int_equal(vm_parse_mac("52:54:00:12:34", mac), -1);
    assert_int_equal(vm_parse_mac("52:54:00:12:34:567", mac), -1);
    /* and the JSON path uses the same check */
    json_t *j =
        json_pack("{s:s, s:s, s:I, s:[{s:s, s:s}]}", "arch", "x86_64", "kernel", kernel, "memory",
                  (json_int_t)(256 << 20), "nets", "kind", "user", "mac", "01:00:5e:00:00:01");
    struct vm_config c;
    vm_config_init(&c);
    vs_err err = {0};
    assert_int_equal(vm_config_from_json(j, &c, &err), -1);
    json_decref(j);
    vm_config_free(&c);
}

static void mem_backend(void **state)
{
    struct vm_config c;
    vs_err err = {0};
    unsetenv("VESSEL_X86_THP");
    char *plain[] = {"run", "--kernel", kernel};
    vm_config_init(&c);
    assert_int_equal(cmd_vm_run_args(&c, 3, plain, &err), 0);
    assert_int_equal(c.mem_backend, VM_MEM_THP);
    vm_config_free(&c);
    char *api[] = {"run", "--kernel", kernel, "--api-sock", "/tmp/x.sock"};
    vm_config_init(&c);
    assert_int_equal(cmd_vm_run_args(&c, 5, api, &err), 0);
    assert_int_equal(c.mem_backend, VM_MEM_MEMFD);
    vm_config_free(&c);
    char *rv[] = {"run", "--kernel", kernel, "--arch", "riscv64"};
    vm_config_init(&c);
    assert_int_equal(cmd_vm_run_args(&c, 5, rv, &err), 0);
    assert_int_equal(c.mem_backend, VM_MEM_MEMFD);
    vm_config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(memory_limits),
        cmocka_unit_test(cpu_limits),
        cmocka_unit_test(macs),
        cmocka_unit_test(mem_backend),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
