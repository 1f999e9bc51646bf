/* Loading firmware, kernels and blobs into the riscv64 board's RAM: formats
 * recognised, and everything that does not fit or is not RISC-V refused
 * with a clear message before a byte is copied. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <elf.h>
#include <stdlib.h>
#include <string.h>

#include "riscv/loader.h"

#define RAM_BASE 0x80000000ull
#define RAM_SIZE (4ull << 20)

static uint8_t *ram_host;
static struct rv_ram ram;

static int setup(void **state)
{
    ram_host = calloc(1, RAM_SIZE);
    ram = (struct rv_ram){.host = ram_host, .base = RAM_BASE, .size = RAM_SIZE};
    return 0;
}

static int teardown(void **state)
{
    free(ram_host);
    return 0;
}

/* A minimal ELF64 with one PT_LOAD segment. */
static size_t make_elf(uint8_t *buf, uint16_t machine, uint64_t paddr, uint64_t filesz,
                       uint64_t memsz)
{
    Elf64_Ehdr eh = {0};
    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_type = ET_EXEC;
    eh.e_machine = machine;
    eh.e_entry = paddr + 4;
    eh.e_phoff = sizeof(eh);
    eh.e_phentsize = sizeof(Elf64_Phdr);
    eh.e_phnum = 1;
    eh.e_ehsize = sizeof(eh);
    Elf64_Phdr ph = {0};
    ph.p_type = PT_LOAD;
    ph.p_offset = 0x100;
    ph.p_paddr = ph.p_vaddr = paddr;
    ph.p_filesz = filesz;
    ph.p_memsz = memsz;
    memcpy(buf, &eh, sizeof(eh));
    memcpy(buf + sizeof(eh), &ph, sizeof(ph));
    memset(buf + 0x100, 0xab, filesz);
    return 0x100 + filesz;
}

static void riscv_elf_loads_segments(void **state)
{
    uint8_t buf[0x200] = {0};
    size_t len = make_elf(buf, EM_RISCV, RAM_BASE + 0x1000, 0x40, 0x80);
    memset(ram_host + 0x1040, 0xff, 0x40); /* BSS must be zeroed */
    struct rv_image img;
    vs_err err;
    assert_int_equal(rv_load_image_buf(&ram, buf, len, "bios", RAM_BASE, &img, &err), 0);
    assert_true(img.elf);
    assert_int_equal(img.entry, RAM_BASE + 0x1004);
    assert_int_equal(img.low, RAM_BASE + 0x1000);
    assert_int_equal(img.high, RAM_BASE + 0x1080);
    assert_int_equal(ram_host[0x1000], 0xab);
    assert_int_equal(ram_host[0x103f], 0xab);
    assert_int_equal(ram_host[0x1040], 0);
    assert_int_equal(ram_host[0x107f], 0);
}

static void foreign_elf_is_refused(void **state)
{
    uint8_t buf[0x200] = {0};
    size_t len = make_elf(buf, EM_X86_64, RAM_BASE, 0x40, 0x40);
    struct rv_image img;
    vs_err err;
    assert_int_equal(rv_load_image_buf(&ram, buf, len, "kernel k", RAM_BASE, &img, &err), -1);
    assert_string_equal(err.msg, "kernel k is an x86-64 ELF, not a RISC-V ELF");
    assert_int_equal(ram_host[0], 0);
    len = make_elf(buf, 0x1234, RAM_BASE, 0x40, 0x40);
    assert_int_equal(rv_load_image_buf(&ram, buf, len, "kernel k", RAM_BASE, &img, &err), -1);
    assert_non_null(strstr(err.msg, "not a RISC-V ELF"));
    buf[EI_CLASS] = ELFCLASS32;
    buf[18] = EM_RISCV; /* e_machine of an Elf32_Ehdr is at the same offset */
    buf[19] = 0;
    assert_int_equal(rv_load_image_buf(&ram, buf, len, "kernel k", RAM_BASE, &img, &err), -1);
    assert_non_null(strstr(err.msg, "32-bit RISC-V"));
}

static void elf_outside_ram_or_file(void **state)
{
    uint8_t buf[0x200] = {0};
    struct rv_image img;
    vs_err err;
    size_t len = make_elf(buf, EM_RISCV, 0x1000, 0x40, 0x40); /* below RAM */
    assert_int_equal(rv_load_image_buf(&ram, buf, len, "bios", RAM_BASE, &img, &err), -1);
    assert_non_null(strstr(err.msg, "does not fit in RAM"));
    len = make_elf(buf, EM_RISCV, RAM_BASE + RAM_SIZE - 0x20, 0x40, 0x40); /* straddles the end */
    assert_int_equal(rv_load_image_buf(&ram, buf, len, "bios", RAM_BASE, &img, &err), -1);
    len = make_elf(buf, EM_RISCV, RAM_BASE, 0x40, 0x40);
    assert_int_equal(rv_load_image_buf(&ram, buf, 0x120, "bios", RAM_BASE, &img, &err), -1);
    assert_non_null(strstr(err.msg, "outside the file"));
    len = make_elf(buf, EM_RISCV, RAM_BASE, 0x40, 0x20); /* filesz > memsz */
    assert_int_equal(rv_load_image_buf(&ram, buf, len, "bios", RAM_BASE, &img, &err), -1);
    /* wrapping addresses */
    len = make_elf(buf, EM_RISCV, UINT64_MAX - 0x10, 0x40, 0x40);
    assert_int_equal(rv_load_image_buf(&ram, buf, len, "bios", RAM_BASE, &img, &err), -1);
    /* program headers beyond the file */
    len = make_elf(buf, EM_RISCV, RAM_BASE, 0x40, 0x40);
    Elf64_Ehdr *eh = (Elf64_Ehdr *)buf;
    eh->e_phnum = 1000;
    assert_int_equal(rv_load_image_buf(&ram, buf, len, "bios", RAM_BASE, &img, &err), -1);
    assert_non_null(strstr(err.msg, "program headers"));
}

static void raw_and_linux_image(void **state)
{
    uint8_t buf[256] = {1, 2, 3};
    struct rv_image img;
    vs_err err;
    assert_int_equal(
        rv_load_image_buf(&ram, buf, sizeof(buf), "kernel", RAM_BASE + 0x200000, &img, &err), 0);
    assert_false(img.elf);
    assert_false(img.linux_image);
    assert_int_equal(img.entry, RAM_BASE + 0x200000);
    assert_int_equal(img.high, RAM_BASE + 0x200100);
    assert_int_equal(ram_host[0x200002], 3);

    /* a Linux Image reserves image_size (BSS, page tables) */
    uint64_t image_size = 0x100000;
    memcpy(buf + 16, &image_size, 8);
    memcpy(buf + 48, "RISCV\0\0\0", 8);
    memcpy(buf + 56, "RSC\x05", 4);
    assert_int_equal(
        rv_load_image_buf(&ram, buf, sizeof(buf), "kernel", RAM_BASE + 0x200000, &img, &err), 0);
    assert_true(img.linux_image);
    assert_int_equal(img.high, RAM_BASE + 0x300000);
    image_size = 64ull << 20; /* bigger than RAM */
    memcpy(buf + 16, &image_size, 8);
    assert_int_equal(
        rv_load_image_buf(&ram, buf, sizeof(buf), "kernel k", RAM_BASE + 0x200000, &img, &err), -1);
    assert_string_equal(err.msg, "kernel k (64.0 MiB at 0x80200000) does not fit in RAM (4 MiB "
                                 "at 0x80000000)");
}

static void other_formats(void **state)
{
    uint8_t buf[0x300] = {0};
    struct rv_image img;
    vs_err err;
    buf[0] = 0x1f;
    buf[1] = 0x8b;
    assert_int_equal(rv_load_image_buf(&ram, buf, sizeof(buf), "kernel", RAM_BASE, &img, &err), -1);
    assert_non_null(strstr(err.msg, "gzip"));
    memset(buf, 0, sizeof(buf));
    memcpy(buf + 0x202, "HdrS", 4);
    assert_int_equal(rv_load_image_buf(&ram, buf, sizeof(buf), "kernel", RAM_BASE, &img, &err), -1);
    assert_non_null(strstr(err.msg, "x86 Linux kernel"));
}

static void firmware_bigger_than_ram(void **state)
{
    size_t big = RAM_SIZE + 4096;
    uint8_t *buf = calloc(1, big);
    struct rv_image img;
    vs_err err;
    assert_int_equal(rv_load_image_buf(&ram, buf, big, "bios fw.bin", RAM_BASE, &img, &err), -1);
    assert_non_null(strstr(err.msg, "bios fw.bin (4.0 MiB at 0x80000000) does not fit in RAM"));
    free(buf);
    assert_int_equal(rv_load_blob(&ram, RAM_BASE + RAM_SIZE - 2, "abc", 3, "initrd", &err), -1);
    assert_int_equal(rv_load_blob(&ram, RAM_BASE + RAM_SIZE - 3, "abc", 3, "initrd", &err), 0);
    assert_int_equal(rv_load_blob(&ram, 0x1000, "abc", 3, "initrd", &err), -1);
}

static void read_file_errors(void **state)
{
    uint8_t *d;
    size_t len;
    vs_err err;
    assert_int_equal(rv_read_file("/nonexistent/fw.bin", "bios", &d, &len, &err), -1);
    assert_non_null(strstr(err.msg, "bios /nonexistent/fw.bin"));
    assert_int_equal(rv_read_file("/", "bios", &d, &len, &err), -1);
    assert_non_null(strstr(err.msg, "not a regular file"));
    assert_int_equal(rv_read_file("/dev/null", "bios", &d, &len, &err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(riscv_elf_loads_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(foreign_elf_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(elf_outside_ram_or_file, setup, teardown),
        cmocka_unit_test_setup_teardown(raw_and_linux_image, setup, teardown),
        cmocka_unit_test_setup_teardown(other_formats, setup, teardown),
        cmocka_unit_test_setup_teardown(firmware_bigger_than_ram, setup, teardown),
        cmocka_unit_test_setup_teardown(read_file_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
