#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "x86/cpuid.h"

static struct x86_cpuid_entry base[] = {
    {.function = 1, .ebx = 0x00000800, .ecx = 0, .edx = 0},
    {.function = 4, .index = 0, .flags = 1, .eax = 0x121}, /* L1 data */
    {.function = 4, .index = 1, .flags = 1, .eax = 0x163}, /* L3 unified */
    {.function = 4, .index = 2, .flags = 1, .eax = 0},
    {.function = 0xb, .index = 0, .flags = 1},
    {.function = 0xb, .index = 1, .flags = 1},
    {.function = 0xb, .index = 2, .flags = 1},
    {.function = 0x40000000},
    {.function = 0x80000008, .ecx = 0},
};

static void topology(void **state)
{
    struct x86_cpuid_entry e[sizeof(base) / sizeof(base[0])];
    unsigned n = sizeof(base) / sizeof(base[0]);
    memcpy(e, base, sizeof(e));
    x86_cpuid_patch(e, n, 5, 6);
    struct x86_cpuid_entry *l1 = x86_cpuid_find(e, n, 1, 0);
    assert_int_equal(l1->ebx >> 24, 5);          /* initial APIC ID */
    assert_int_equal((l1->ebx >> 16) & 0xff, 6); /* logical processors */
    assert_int_equal(l1->ebx & 0xffff, 0x0800);  /* CLFLUSH size kept */
    assert_true(l1->ecx & (1u << 31));           /* hypervisor */
    assert_true(l1->edx & (1u << 28));           /* HTT */
    struct x86_cpuid_entry *c = x86_cpuid_find(e, n, 4, 0);
    assert_int_equal(c->eax >> 26, 5);           /* cores per package - 1 */
    assert_int_equal((c->eax >> 14) & 0xfff, 0); /* L1 per core */
    c = x86_cpuid_find(e, n, 4, 1);
    assert_int_equal((c->eax >> 14) & 0xfff, 5); /* L3 shared by all */
    struct x86_cpuid_entry *t = x86_cpuid_find(e, n, 0xb, 0);
    assert_int_equal(t->edx, 5);
    assert_int_equal(t->ebx, 1);
    assert_int_equal((t->ecx >> 8) & 0xff, 1); /* SMT */
    t = x86_cpuid_find(e, n, 0xb, 1);
    assert_int_equal(t->eax, 3); /* 6 cores need 3 bits */
    assert_int_equal(t->ebx, 6);
    assert_int_equal((t->ecx >> 8) & 0xff, 2); /* core */
    t = x86_cpuid_find(e, n, 0xb, 2);
    assert_int_equal((t->ecx >> 8) & 0xff, 0); /* invalid: end */
    struct x86_cpuid_entry *k = x86_cpuid_find(e, n, 0x40000000, 0);
    char sig[13] = {0};
    memcpy(sig, &k->ebx, 4);
    memcpy(sig + 4, &k->ecx, 4);
    memcpy(sig + 8, &k->edx, 4);
    assert_string_equal(sig, "KVMKVMKVM");
    assert_int_equal(x86_cpuid_find(e, n, 0x80000008, 0)->ecx & 0xff, 5);
}

static void single_cpu(void **state)
{
    struct x86_cpuid_entry e[sizeof(base) / sizeof(base[0])];
    unsigned n = sizeof(base) / sizeof(base[0]);
    memcpy(e, base, sizeof(e));
    e[0].edx = 1u << 28;
    x86_cpuid_patch(e, n, 0, 1);
    assert_false(e[0].edx & (1u << 28));
    assert_int_equal(x86_cpuid_find(e, n, 0xb, 1)->eax, 0);
}

static void extras(void **state)
{
    struct x86_cpuid_entry e[] = {
        {.function = 1, .ecx = 1},
        {.function = 0x80000002},
        {.function = 0x80000003},
        {.function = 0x80000004},
    };
    unsigned n = sizeof(e) / sizeof(e[0]);
    uint32_t brand[12] = {0};
    memcpy(brand, "AMD EPYC Processor", 18);
    struct x86_cpuid_extras none = {.tsc_deadline = false, .brand = NULL};
    x86_cpuid_add_extras(e, n, &none);
    assert_int_equal(e[0].ecx, 1);
    assert_int_equal(e[1].eax, 0);
    struct x86_cpuid_extras x = {.tsc_deadline = true, .brand = brand};
    x86_cpuid_add_extras(e, n, &x);
    assert_int_equal(e[0].ecx, 1 | 1u << 24); /* TSC-deadline */
    char got[49] = {0};
    for (unsigned i = 0; i < 3; i++)
        memcpy(got + 16 * i, &e[1 + i].eax, 16);
    assert_string_equal(got, "AMD EPYC Processor");
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(topology), cmocka_unit_test(single_cpu),
                                       cmocka_unit_test(extras)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
