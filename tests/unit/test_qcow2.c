/* qcow2 backend: round trips with Debian's qemu-img/qemu-io in both
 * directions (vessel reads what QEMU writes, `qemu-img check` and
 * `qemu-img compare` accept what vessel writes) and hostile headers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "block/disk.h"
#include "block/qcow2.h"

#define MiB (1024 * 1024)

static char dir[] = "/tmp/vessel-qcow2-XXXXXX";

static int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *p(const char *name)
{
    static char bufs[4][512];
    static int i;
    char *b = bufs[i++ % 4];
    snprintf(b, 512, "%s/%s", dir, name);
    return b;
}

static int setup(void **state)
{
    if (sh("command -v qemu-img >/dev/null && command -v qemu-io >/dev/null") != 0) {
        fprintf(stderr, "*** qemu-img/qemu-io missing (scripts/setup.sh installs qemu-utils)\n");
        return -1;
    }
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    sh("rm -rf %s", dir);
    return 0;
}

static void dread(struct disk *d, uint64_t off, void *buf, size_t n)
{
    struct iovec v = {buf, n};
    assert_int_equal(disk_read(d, off, &v, 1), 0);
}

static void dwrite(struct disk *d, uint64_t off, const void *buf, size_t n)
{
    struct iovec v = {(void *)buf, n};
    assert_int_equal(disk_write(d, off, &v, 1), 0);
}

static void write_model(const char *path, const uint8_t *m, size_t n)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(m, 1, n, f), n);
    fclose(f);
}

static void fill(uint8_t *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)((i * 131 + seed * 7919) >> 3 ^ seed);
}

/* A mix of writes: unaligned, straddling clusters and L2 tables. */
static void scribble(struct disk *d, uint8_t *model, uint64_t size)
{
    static const struct {
        uint64_t off;
        size_t len;
    } w[] = {{0, 512},
             {65536 - 100, 300},
             {3 * 65536, 65536},
             {5 * MiB + 7, 200000},
             {512 * MiB - 4096, 4096},
             {512 * MiB - 1000, 2000},
             {100, 50}};
    uint8_t *buf = malloc(200000);
    for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
        if (w[i].off + w[i].len > size)
            continue;
        fill(buf, w[i].len, (unsigned)i + 1);
        dwrite(d, w[i].off, buf, w[i].len);
        memcpy(model + w[i].off, buf, w[i].len);
    }
    free(buf);
}

static void assert_reads_as(struct disk *d, const uint8_t *model, uint64_t size)
{
    uint8_t *buf = malloc(MiB);
    for (uint64_t off = 0; off < size; off += MiB) {
        size_t n = (size_t)(size - off < MiB ? size - off : MiB);
        dread(d, off, buf, n);
        assert_memory_equal(buf, model + off, n);
    }
    free(buf);
}

/* vessel creates a standalone image; QEMU agrees on every byte. */
static void standalone_round_trip(void **state)
{
    const uint64_t size = 520 * MiB; /* two L2 tables */
    uint8_t *model = calloc(1, size);
    vs_err err;
    unlink(p("a.qcow2"));
    assert_int_equal(qcow2_create(p("a.qcow2"), size, NULL, NULL, &err), 0);
    struct disk *d;
    assert_int_equal(qcow2_open(p("a.qcow2"), false, VM_CACHE_WRITEBACK, &d, &err), 0);
    assert_int_equal(disk_size(d), size);
    scribble(d, model, size);
    assert_reads_as(d, model, size);
    assert_int_equal(disk_flush(d), 0);
    disk_close(d);
    assert_int_equal(sh("qemu-img check -q %s", p("a.qcow2")), 0);
    write_model(p("a.raw"), model, size);
    assert_int_equal(sh("qemu-img compare -q -f qcow2 -F raw %s %s", p("a.qcow2"), p("a.raw")), 0);
    /* and reopening reads the same */
    assert_int_equal(qcow2_open(p("a.qcow2"), true, VM_CACHE_WRITEBACK, &d, &err), 0);
    assert_reads_as(d, model, size);
    disk_close(d);
    free(model);
}

/* An overlay made by `qemu-img create -b base -F raw`: vessel reads the base
 * through it, writes only into the overlay, and the base is untouched. */
static void qemu_overlay_on_raw(void **state)
{
    const uint64_t size = 8 * MiB;
    uint8_t *model = malloc(size);
    fill(model, size, 99);
    write_model(p("base.raw"), model, size);
    assert_int_equal(sh("cd %s && qemu-img create -q -f qcow2 -b base.raw -F raw ov.qcow2", dir),
                     0);
    struct disk *d;
    vs_err err;
    assert_int_equal(disk_open(p("ov.qcow2"), NULL, false, VM_CACHE_WRITEBACK, &d, &err), 0);
    assert_reads_as(d, model, size);
    scribble(d, model, size);
    assert_reads_as(d, model, size);
    disk_close(d);
    assert_int_equal(sh("qemu-img check -q %s", p("ov.qcow2")), 0);
    write_model(p("ov.raw"), model, size);
    assert_int_equal(sh("qemu-img compare -q %s %s", p("ov.qcow2"), p("ov.raw")), 0);
    fill(model, size, 99);
    write_model(p("base.expect"), model, size);
    assert_int_equal(sh("cmp -s %s %s", p("base.raw"), p("base.expect")), 0);
    free(model);
}

/* A qcow2 chain written by qemu-io: data, zero clusters hiding backing data,
 * compressed clusters; vessel's overlay on top of it. */
static void qemu_chain_zero_and_compressed(void **state)
{
    const uint64_t size = 4 * MiB;
    uint8_t *model = malloc(size);
    fill(model, size, 5);
    write_model(p("c.raw"), model, size);
    assert_int_equal(
        sh("cd %s && qemu-img convert -c -O qcow2 c.raw comp.qcow2 && "
           "qemu-img create -q -f qcow2 -b comp.qcow2 -F qcow2 mid.qcow2 && "
           "qemu-io -c 'write -z 65536 131072' -c 'write -P 0xab 1048576 4096' mid.qcow2 "
           ">/dev/null",
           dir),
        0);
    memset(model + 65536, 0, 131072);
    memset(model + MiB, 0xab, 4096);
    vs_err err;
    assert_int_equal(qcow2_create(p("top.qcow2"), 0, "mid.qcow2", NULL, &err), 0);
    assert_int_equal(sh("qemu-img check -q %s", p("top.qcow2")), 0);
    struct disk *d;
    assert_int_equal(qcow2_open(p("top.qcow2"), false, VM_CACHE_WRITEBACK, &d, &err), 0);
    assert_int_equal(disk_size(d), size);
    assert_reads_as(d, model, size);
    scribble(d, model, size);
    disk_close(d);
    write_model(p("top.raw"), model, size);
    assert_int_equal(sh("qemu-img check -q %s", p("top.qcow2")), 0);
    assert_int_equal(sh("qemu-img compare -q %s %s", p("top.qcow2"), p("top.raw")), 0);
    assert_int_equal(sh("qemu-img info %s | grep -q 'backing file: mid.qcow2'", p("top.qcow2")), 0);

    /* Writing into the compressed and zero clusters of mid itself. */
    assert_int_equal(qcow2_open(p("comp.qcow2"), false, VM_CACHE_WRITEBACK, &d, &err), 0);
    fill(model, size, 5);
    scribble(d, model, size);
    assert_reads_as(d, model, size);
    disk_close(d);
    assert_int_equal(sh("qemu-img check -q %s", p("comp.qcow2")), 0);
    write_model(p("comp.raw"), model, size);
    assert_int_equal(sh("qemu-img compare -q %s %s", p("comp.qcow2"), p("comp.raw")), 0);
    free(model);
}

/* 512-byte clusters: many L2 tables and new refcount blocks. */
static void small_clusters_grow_refcounts(void **state)
{
    const uint64_t size = 4 * MiB;
    assert_int_equal(sh("qemu-img create -q -f qcow2 -o cluster_size=512 %s 4M", p("small.qcow2")),
                     0);
    uint8_t *model = calloc(1, size);
    struct disk *d;
    vs_err err;
    assert_int_equal(qcow2_open(p("small.qcow2"), false, VM_CACHE_WRITEBACK, &d, &err), 0);
    fill(model, 3 * MiB, 17);
    dwrite(d, 0, model, 3 * MiB);
    scribble(d, model, size);
    assert_reads_as(d, model, size);
    disk_close(d);
    assert_int_equal(sh("qemu-img check -q %s", p("small.qcow2")), 0);
    write_model(p("small.raw"), model, size);
    assert_int_equal(sh("qemu-img compare -q %s %s", p("small.qcow2"), p("small.raw")), 0);
    free(model);
}

static uint8_t *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*n);
    assert_int_equal(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

static void put32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)(v >> 24), b[1] = (uint8_t)(v >> 16), b[2] = (uint8_t)(v >> 8),
    b[3] = (uint8_t)v;
}

/* Damaged headers are refused with a message, never crash or overread. */
static void hostile_headers(void **state)
{
    assert_int_equal(sh("qemu-img create -q -f qcow2 %s 1M", p("h.qcow2")), 0);
    size_t n;
    uint8_t *good = read_file(p("h.qcow2"), &n);
    struct qcow2_header h;
    vs_err err;
    assert_int_equal(qcow2_header_parse(good, n, n, &h, &err), 0);
    assert_int_equal(h.cluster_bits, 16);
    static const struct {
        size_t off;
        uint32_t val;
        const char *msg;
    } cases[] = {
        {0, 0x12345678, "magic"},           {4, 4, "version 4"},
        {20, 30, "cluster_bits"},           {32, 1, "encrypted"},
        {36, 0, "L1 table too small"},      {44, 0x7fff0000, "L1 table offset"},
        {52, 0x00001000, "refcount table"}, {76, 1u << 4, "extended L2"},
        {100, 4096 + 3, "header_length"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t *b = malloc(n);
        memcpy(b, good, n);
        put32(b + cases[i].off, cases[i].val);
        memset(&err, 0, sizeof(err));
        assert_int_equal(qcow2_header_parse(b, n, n, &h, &err), -1);
        if (!strstr(err.msg, cases[i].msg))
            fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, cases[i].msg);
        free(b);
    }
    for (size_t len = 0; len < 112; len++)
        assert_int_equal(qcow2_header_parse(good, len, n, &h, &err), -1);
    /* a file truncated before its L1 table */
    assert_int_equal(qcow2_header_parse(good, n, 3 * 65536, &h, &err), -1);
    free(good);

    /* missing backing file: named in the error */
    vs_err e2;
    assert_int_equal(sh("cd %s && qemu-img create -q -f raw gone.raw 1M && qemu-img create -q -f "
                        "qcow2 -b gone.raw -F raw orphan.qcow2 && rm gone.raw",
                        dir),
                     0);
    struct disk *d;
    assert_int_equal(qcow2_open(p("orphan.qcow2"), true, VM_CACHE_WRITEBACK, &d, &e2), -1);
    assert_non_null(strstr(e2.msg, "gone.raw"));

    /* an L2 entry pointing past the end of the file reads as an I/O error */
    assert_int_equal(sh("qemu-io -c 'write -P 1 0 4096' %s >/dev/null", p("h.qcow2")), 0);
    FILE *f = fopen(p("h.qcow2"), "r+");
    uint8_t l1[8];
    fseek(f, 3 * 65536, SEEK_SET); /* qemu-img's L1 table */
    assert_int_equal(fread(l1, 1, 8, f), 8);
    uint64_t l2 = 0;
    for (int i = 0; i < 8; i++)
        l2 = l2 << 8 | l1[i];
    l2 &= 0x00fffffffffffe00ULL;
    uint8_t bad[8] = {0x80, 0, 0, 0x10, 0, 0, 0, 0};
    fseek(f, (long)l2, SEEK_SET);
    fwrite(bad, 1, 8, f);
    fclose(f);
    assert_int_equal(qcow2_open(p("h.qcow2"), true, VM_CACHE_WRITEBACK, &d, &err), 0);
    uint8_t buf[512];
    struct iovec v = {buf, sizeof(buf)};
    assert_int_equal(disk_read(d, 0, &v, 1), -EIO);
    disk_close(d);
}

/* Freezing an open image under a running device: later writes land in the
 * new overlay, the frozen image keeps what it had. */
static void push_overlay_freezes(void **state)
{
    const uint64_t size = 2 * MiB;
    vs_err err;
    assert_int_equal(qcow2_create(p("live.qcow2"), size, NULL, NULL, &err), 0);
    struct disk *d;
    assert_int_equal(qcow2_open(p("live.qcow2"), false, VM_CACHE_WRITEBACK, &d, &err), 0);
    uint8_t *model = calloc(1, size);
    memset(model, 0xa1, 70000);
    dwrite(d, 0, model, 70000);
    write_model(p("frozen.raw"), model, size);
    assert_int_equal(disk_push_overlay(d, p("next.qcow2"), &err), 0);
    assert_string_equal(d->path + strlen(d->path) - 10, "next.qcow2");
    memset(model + 65536, 0xb2, 100000);
    dwrite(d, 65536, model + 65536, 100000);
    assert_reads_as(d, model, size);
    /* a second layer on top works the same way */
    assert_int_equal(disk_push_overlay(d, p("next2.qcow2"), &err), 0);
    memset(model + MiB, 0xc3, 5000);
    dwrite(d, MiB, model + MiB, 5000);
    assert_reads_as(d, model, size);
    disk_close(d);
    write_model(p("top.raw"), model, size);
    assert_int_equal(sh("qemu-img check -q %s && qemu-img check -q %s && qemu-img check -q %s",
                        p("live.qcow2"), p("next.qcow2"), p("next2.qcow2")),
                     0);
    assert_int_equal(sh("qemu-img compare -q %s %s", p("live.qcow2"), p("frozen.raw")), 0);
    assert_int_equal(sh("qemu-img compare -q %s %s", p("next2.qcow2"), p("top.raw")), 0);
    /* only writable qcow2 images can be frozen */
    assert_int_equal(qcow2_open(p("live.qcow2"), true, VM_CACHE_WRITEBACK, &d, &err), 0);
    assert_int_equal(disk_push_overlay(d, p("x.qcow2"), &err), -1);
    assert_non_null(strstr(err.msg, "not a writable qcow2"));
    disk_close(d);
    assert_int_equal(raw_open(p("frozen.raw"), false, VM_CACHE_WRITEBACK, &d, &err), 0);
    assert_int_equal(disk_push_overlay(d, p("x.qcow2"), &err), -1);
    assert_non_null(strstr(err.msg, "not a writable qcow2"));
    disk_close(d);
    assert_int_not_equal(access(p("x.qcow2"), F_OK), 0);
    free(model);
}

/* write_zeroes and discard: zero clusters over backing data and over
 * compressed and allocated clusters; QEMU agrees. */
static void zeroes_and_discard(void **state)
{
    const uint64_t size = 4 * MiB;
    uint8_t *model = malloc(size);
    fill(model, size, 7);
    write_model(p("zb.raw"), model, size);
    vs_err err;
    assert_int_equal(qcow2_create(p("z.qcow2"), 0, "zb.raw", "raw", &err), 0);
    struct disk *d;
    assert_int_equal(qcow2_open(p("z.qcow2"), false, VM_CACHE_WRITEBACK, &d, &err), 0);
    assert_non_null(d->ops->write_zeroes);
    assert_non_null(d->ops->discard);
    dwrite(d, 65536, model, 65536); /* an allocated cluster */
    memcpy(model + 65536, model, 65536);
    assert_int_equal(d->ops->write_zeroes(d, 1000, 3 * 65536, true), 0);
    memset(model + 1000, 0, 3 * 65536);
    /* discard of whole clusters reads as zero here; a partial one is kept */
    assert_int_equal(d->ops->discard(d, 5 * 65536 + 10, 2 * 65536), 0);
    memset(model + 6 * 65536, 0, 65536);
    assert_reads_as(d, model, size);
    /* writing into a zeroed cluster again */
    dwrite(d, 2 * 65536 + 5, "abc", 3);
    memcpy(model + 2 * 65536 + 5, "abc", 3);
    assert_reads_as(d, model, size);
    disk_close(d);
    write_model(p("z.expect"), model, size);
    assert_int_equal(sh("qemu-img check -q %s", p("z.qcow2")), 0);
    assert_int_equal(sh("qemu-img compare -q %s %s", p("z.qcow2"), p("z.expect")), 0);
    free(model);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(standalone_round_trip),
        cmocka_unit_test(qemu_overlay_on_raw),
        cmocka_unit_test(qemu_chain_zero_and_compressed),
        cmocka_unit_test(small_clusters_grow_refcounts),
        cmocka_unit_test(hostile_headers),
        cmocka_unit_test(push_overlay_freezes),
        cmocka_unit_test(zeroes_and_discard),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
