/* virtio-balloon without a VM: the request parsers on hostile input, and
 * the device end to end through the fake virtio-mmio driver (inflate gives
 * pages back to the host, pfns outside RAM are refused, statistics,
 * free page reporting, targets, save and load). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "test_virtio_driver.h"
#include "virtio/balloon.h"
#include "virtio/devices.h"

static void put_stat(uint8_t *p, uint16_t tag, uint64_t v)
{
    p[0] = (uint8_t)tag;
    p[1] = (uint8_t)(tag >> 8);
    for (int i = 0; i < 8; i++)
        p[2 + i] = (uint8_t)(v >> (8 * i));
}

static void stats_parser(void **state)
{
    uint8_t buf[45];
    put_stat(buf, 4, 123456);   /* free_memory */
    put_stat(buf + 10, 99, 7);  /* unknown: skipped */
    put_stat(buf + 20, 6, 999); /* available_memory */
    put_stat(buf + 30, 0, 1);   /* swap_in */
    memset(buf + 40, 0xff, 5);  /* a partial entry: ignored */
    struct balloon_stats st = {0};
    assert_int_equal(balloon_parse_stats(buf, sizeof(buf), &st), 3);
    assert_int_equal(st.valid, (1u << 4) | (1u << 6) | 1u);
    assert_int_equal(st.val[4], 123456);
    assert_int_equal(st.val[6], 999);
    assert_string_equal(balloon_stat_name(6), "available_memory");
    assert_null(balloon_stat_name(10));
    assert_int_equal(balloon_parse_stats(buf, 9, &st), 0);
}

static void pfn_parser_merges_runs(void **state)
{
    uint32_t pfns[] = {10, 11, 12, 20, 0xffffffff, 13};
    uint8_t raw[sizeof(pfns) + 3]; /* 3 stray bytes at the end */
    memcpy(raw, pfns, sizeof(pfns));
    struct iovec iov[2] = {{raw, 7}, {raw + 7, sizeof(raw) - 7}}; /* a pfn split across two */
    struct balloon_range r[8];
    size_t pos = 0;
    assert_int_equal(balloon_parse_pfns(iov, 2, &pos, 2, r), 1); /* 10, 11 */
    assert_int_equal(r[0].gpa, 10 * 4096);
    assert_int_equal(r[0].len, 2 * 4096);
    size_t n = balloon_parse_pfns(iov, 2, &pos, 8, r);
    assert_int_equal(n, 3); /* 12, 20, 0xffffffff, 13 sorted: 12-13 | 20 | 0xffffffff */
    assert_int_equal(r[0].gpa, 12 * 4096);
    assert_int_equal(r[0].len, 2 * 4096);
    assert_int_equal(r[1].gpa, 20 * 4096);
    assert_int_equal(r[2].gpa, 0xffffffffULL << 12);
    assert_int_equal(pos, 6);
    assert_int_equal(balloon_parse_pfns(iov, 2, &pos, 8, r), 0);
    /* the order a driver's allocator hands pages out in, and a repeat */
    uint32_t desc[] = {30, 29, 28, 28, 27, 5};
    struct iovec d = {desc, sizeof(desc)};
    pos = 0;
    assert_int_equal(balloon_parse_pfns(&d, 1, &pos, 256, r), 2);
    assert_int_equal(r[0].gpa, 5 * 4096);
    assert_int_equal(r[1].gpa, 27 * 4096);
    assert_int_equal(r[1].len, 4 * 4096);
}

static void range_alignment(void **state)
{
    uint64_t gpa = 4096 + 1, len = 3 * 4096;
    assert_true(balloon_align_range(&gpa, &len));
    assert_int_equal(gpa, 8192);
    assert_int_equal(len, 2 * 4096);
    gpa = 100, len = 4000;
    assert_false(balloon_align_range(&gpa, &len));
    gpa = UINT64_MAX - 4096, len = 1ULL << 20; /* wraps */
    assert_false(balloon_align_range(&gpa, &len));
}

static unsigned released_pages;
static void count_release(void *opaque, uint8_t *hva, uint64_t gpa, uint64_t len)
{
    released_pages += (unsigned)(len / 4096);
}

static void ranges_outside_ram_are_refused(void **state)
{
    struct guest_mem mem;
    guest_mem_init(&mem);
    assert_int_equal(guest_mem_add_anon(&mem, 0x100000, 0x10000, NULL), 0);
    uint64_t refused = 0;
    released_pages = 0;
    /* straddles the end of RAM: 2 pages in, 2 out */
    balloon_release_range(&mem, (struct balloon_range){0x10e000, 4 * 4096}, count_release, NULL,
                          &refused);
    assert_int_equal(released_pages, 2);
    assert_int_equal(refused, 2);
    balloon_release_range(&mem, (struct balloon_range){0, 4096}, count_release, NULL, &refused);
    balloon_release_range(&mem, (struct balloon_range){UINT64_MAX & ~4095ULL, 2 * 4096},
                          count_release, NULL, &refused);
    assert_int_equal(released_pages, 2);
    assert_int_equal(refused, 5);
    guest_mem_destroy(&mem);
}

#define INFLATE 0
#define DEFLATE 1
#define STATS 2
#define REPORT 3
#define FEATURES                                                                                   \
    (FD_FEATURES_V1 | (1ULL << VIRTIO_BALLOON_F_STATS_VQ) |                                        \
     (1ULL << VIRTIO_BALLOON_F_DEFLATE_ON_OOM) | (1ULL << VIRTIO_BALLOON_F_REPORTING))
#define PAGES_GPA (FD_RAM_BASE + (4ULL << 20))

static struct fake_driver *start(unsigned stats_secs)
{
    struct fake_driver *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(fd_init_mem(f), 0);
    vs_err err;
    struct vm_balloon_config bc = {.enabled = true,
                                   .stats_secs = stats_secs,
                                   .deflate_on_oom = true,
                                   .free_page_reporting = true};
    struct virtio_dev *d = virtio_balloon_new(&f->mem, &bc, &err);
    assert_non_null(d);
    assert_true(virtio_is_balloon(d));
    fd_attach(f, d);
    assert_true(fd_negotiate(f, FEATURES) & VIRTIO_STATUS_FEATURES_OK);
    for (unsigned q = 0; q < 4; q++)
        fd_setup_queue(f, q, 16);
    fd_driver_ok(f);
    return f;
}

static void stop(struct fake_driver *f)
{
    virtio_dev_destroy(f->dev);
    guest_mem_destroy(&f->mem);
    free(f);
}

static void send_pfns(struct fake_driver *f, unsigned q, const uint32_t *pfns, unsigned n)
{
    uint64_t a = fd_alloc(f, n * 4);
    memcpy(fd_ptr(f, a), pfns, n * 4);
    struct fd_buf b = {a, n * 4, false};
    fd_add(f, q, &b, 1);
    fd_kick(f, q);
    uint32_t id, len;
    assert_true(fd_wait_used(f, q, &id, &len)); /* served by the device's thread */
}

static void inflate_gives_pages_back(void **state)
{
    struct fake_driver *f = start(0);
    uint8_t *pages = fd_ptr(f, PAGES_GPA);
    memset(pages, 0xaa, 8 * 4096);
    uint32_t base = (uint32_t)(PAGES_GPA >> 12);
    /* pages 0-3, one pfn far outside RAM, page 6 */
    uint32_t pfns[] = {base, base + 1, base + 2, base + 3, 0x7fffffff, base + 6};
    send_pfns(f, INFLATE, pfns, 6);
    for (unsigned i = 0; i < 8; i++) {
        uint8_t want = (i < 4 || i == 6) ? 0 : 0xaa;
        assert_int_equal(pages[i * 4096], want);
        assert_int_equal(pages[i * 4096 + 4095], want);
    }
    struct virtio_balloon_info bi;
    virtio_balloon_get_info(f->dev, &bi);
    assert_int_equal(bi.inflated_bytes, 5 * 4096);
    assert_int_equal(bi.refused_pages, 1);
    send_pfns(f, DEFLATE, pfns, 2);
    virtio_balloon_get_info(f->dev, &bi);
    assert_int_equal(bi.deflated_bytes, 2 * 4096);
    assert_false(fd_needs_reset(f));
    stop(f);
}

static void target_and_actual(void **state)
{
    struct fake_driver *f = start(0);
    vs_err err = {0};
    unsigned irqs = f->irq_raised;
    assert_int_equal(virtio_balloon_set_target(f->dev, 0, &err), 0);
    assert_true(f->irq_raised > irqs);                 /* a config interrupt */
    assert_int_equal(fd_rd(f, 0x60) & 2, 2);           /* InterruptStatus: config */
    fd_wr(f, 0x100 + VIRTIO_BALLOON_CFG_ACTUAL, 300);  /* the driver's progress */
    fd_wr(f, 0x100 + VIRTIO_BALLOON_CFG_NUM_PAGES, 1); /* not the driver's to change */
    assert_int_equal(fd_rd(f, 0x100 + VIRTIO_BALLOON_CFG_NUM_PAGES), 0);
    struct virtio_balloon_info bi;
    virtio_balloon_get_info(f->dev, &bi);
    assert_int_equal(bi.actual_bytes, 300 * 4096);
    /* 8 MiB of RAM: the guest keeps at least 16 MiB, so nothing can go */
    assert_int_equal(bi.max_target_bytes, 0);
    assert_int_equal(virtio_balloon_set_target(f->dev, 4096, &err), -1);
    assert_non_null(strstr(err.msg, "more than the guest can give"));
    stop(f);

    /* 256 MiB: up to 240 MiB can go (the guest keeps RAM / 16) */
    struct guest_mem mem;
    guest_mem_init(&mem);
    assert_int_equal(guest_mem_add_anon(&mem, 0x80000000, 256ULL << 20, NULL), 0);
    struct vm_balloon_config bc = {.enabled = true, .size = 8ULL << 20};
    struct virtio_dev *d = virtio_balloon_new(&mem, &bc, &err);
    assert_non_null(d);
    assert_int_equal(virtio_config_read(d, VIRTIO_BALLOON_CFG_NUM_PAGES, 4), 2048);
    assert_int_equal(virtio_balloon_set_target(d, 240ULL << 20, &err), 0);
    assert_int_equal(virtio_config_read(d, VIRTIO_BALLOON_CFG_NUM_PAGES, 4), 240 * 256);
    assert_int_equal(virtio_balloon_set_target(d, (240ULL << 20) + 4096, &err), -1);
    virtio_balloon_get_info(d, &bi);
    assert_int_equal(bi.target_bytes, 240ULL << 20);
    assert_int_equal(bi.max_target_bytes, 240ULL << 20);
    virtio_dev_destroy(d);
    bc.size = 250ULL << 20;
    assert_null(virtio_balloon_new(&mem, &bc, &err));
    guest_mem_destroy(&mem);
}

static void statistics_refresh(void **state)
{
    struct fake_driver *f = start(1);
    uint64_t a = fd_alloc(f, 30);
    put_stat(fd_ptr(f, a), 4, 1000);
    put_stat(fd_ptr(f, a + 10), 5, 5000);
    put_stat(fd_ptr(f, a + 20), 3, 42);
    struct fd_buf b = {a, 30, false};
    fd_add(f, STATS, &b, 1);
    fd_kick(f, STATS);
    struct virtio_balloon_info bi;
    virtio_balloon_get_info(f->dev, &bi);
    assert_true(bi.stats_valid);
    assert_int_equal(bi.stats.val[5], 5000);
    assert_int_equal(bi.stats.val[3], 42);
    /* within the interval the device hands the buffer back: a request */
    uint32_t id, len;
    assert_true(fd_wait_used(f, STATS, &id, &len));
    put_stat(fd_ptr(f, a), 4, 2000);
    fd_add(f, STATS, &b, 1);
    fd_kick(f, STATS);
    virtio_balloon_get_info(f->dev, &bi);
    assert_int_equal(bi.stats.val[4], 2000);
    vs_err err;
    assert_int_equal(virtio_balloon_set_stats_interval(f->dev, 3601, &err), -1);
    assert_int_equal(virtio_balloon_set_stats_interval(f->dev, 0, &err), 0);
    stop(f);
}

static void free_page_reports(void **state)
{
    struct fake_driver *f = start(0);
    uint8_t *pages = fd_ptr(f, PAGES_GPA);
    memset(pages, 0x55, 16 * 4096);
    /* an aligned 4-page range, an unaligned one (only its whole page goes),
     * and one that runs off the end of RAM */
    struct fd_buf b[3] = {{PAGES_GPA, 4 * 4096, true},
                          {PAGES_GPA + 8 * 4096 - 100, 4096 + 200, true},
                          {FD_RAM_BASE + FD_RAM_SIZE - 4096, 3 * 4096, true}};
    fd_add(f, REPORT, &b[0], 2);
    fd_kick(f, REPORT);
    uint32_t id, len;
    assert_true(fd_wait_used(f, REPORT, &id, &len));
    assert_int_equal(pages[0], 0);
    assert_int_equal(pages[4 * 4096 - 1], 0);
    assert_int_equal(pages[4 * 4096], 0x55);
    assert_int_equal(pages[7 * 4096], 0x55);
    assert_int_equal(pages[8 * 4096], 0);
    assert_int_equal(pages[9 * 4096], 0x55);
    struct virtio_balloon_info bi;
    virtio_balloon_get_info(f->dev, &bi);
    assert_int_equal(bi.reported_bytes, 5 * 4096);
    /* a descriptor that leaves RAM breaks the chain: the device asks for a
     * reset, the host is untouched */
    fd_add(f, REPORT, &b[2], 1);
    fd_kick(f, REPORT);
    for (int i = 0; i < 5000 && !fd_needs_reset(f); i++)
        usleep(1000);
    assert_true(fd_needs_reset(f));
    stop(f);
}

static void save_and_load(void **state)
{
    struct fake_driver *f = start(0);
    vs_err err = {0};
    assert_int_equal(virtio_balloon_set_target(f->dev, 0, &err), 0);
    uint64_t a = fd_alloc(f, 10);
    put_stat(fd_ptr(f, a), 6, 777);
    struct fd_buf b = {a, 10, false};
    fd_add(f, STATS, &b, 1);
    fd_kick(f, STATS);
    struct state_writer w;
    state_writer_init(&w);
    assert_int_equal(virtio_dev_save(f->dev, &w, 0, &err), 0);

    struct fake_driver *g = calloc(1, sizeof(*g));
    assert_int_equal(fd_init_mem(g), 0);
    memcpy(fd_ptr(g, FD_RAM_BASE), fd_ptr(f, FD_RAM_BASE), 2 << 20);
    struct vm_balloon_config bc = {
        .enabled = true, .free_page_reporting = true, .deflate_on_oom = true};
    struct virtio_dev *d = virtio_balloon_new(&g->mem, &bc, &err);
    fd_attach(g, d);
    struct state_reader r;
    assert_int_equal(state_reader_init(&r, w.buf.data, w.buf.len, &err), 0);
    assert_int_equal(virtio_dev_load(d, &r, 0, &err), 0);
    struct virtio_balloon_info bi;
    virtio_balloon_get_info(d, &bi);
    assert_true(bi.stats_valid);
    assert_int_equal(bi.stats.val[6], 777);
    /* the held statistics buffer is still held: a refresh hands it back */
    assert_int_equal(virtio_balloon_set_stats_interval(d, 1, &err), 0);
    g->q[STATS] = f->q[STATS];
    uint32_t id, len;
    assert_true(fd_wait_used(g, STATS, &id, &len));
    state_writer_free(&w);
    stop(g);
    stop(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stats_parser),
        cmocka_unit_test(pfn_parser_merges_runs),
        cmocka_unit_test(range_alignment),
        cmocka_unit_test(ranges_outside_ram_are_refused),
        cmocka_unit_test(inflate_gives_pages_back),
        cmocka_unit_test(target_and_actual),
        cmocka_unit_test(statistics_refresh),
        cmocka_unit_test(free_page_reports),
        cmocka_unit_test(save_and_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
