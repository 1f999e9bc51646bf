/* Guest memory: translation and its bounds, VMM dirty tracking, and regions
 * added and removed while readers translate (hot-plug's ground). */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <errno.h>

#include "mem/guest_mem.h"

static void translate_and_bounds(void **state)
{
    struct guest_mem m;
    vs_err err;
    guest_mem_init(&m);
    assert_int_equal(guest_mem_add_anon(&m, 0, 1 << 20, &err), 0);
    assert_int_equal(guest_mem_add_anon(&m, 0x100000000ULL, 1 << 20, &err), 0);
    assert_int_equal(guest_mem_add_anon(&m, 0x80000, 1 << 20, &err), -1); /* overlap */
    assert_non_null(guest_mem_ptr(&m, 0, 1 << 20));
    assert_null(guest_mem_ptr(&m, 0, (1 << 20) + 1)); /* runs past the end */
    assert_null(guest_mem_ptr(&m, (1 << 20) - 4, 8));
    assert_null(guest_mem_ptr(&m, 0x200000, 1));       /* hole */
    assert_null(guest_mem_ptr(&m, UINT64_MAX - 2, 8)); /* wraps */
    assert_null(guest_mem_ptr(&m, 16, UINT64_MAX));
    assert_non_null(guest_mem_ptr(&m, 0x100000000ULL + 4096, 4096));
    uint32_t v = 0xdeadbeef, r = 0;
    assert_int_equal(guest_mem_write(&m, 0x1000, &v, 4), 0);
    assert_int_equal(guest_mem_read(&m, 0x1000, &r, 4), 0);
    assert_int_equal(r, v);
    assert_int_equal(guest_mem_write(&m, 0x300000, &v, 4), -1);
    guest_mem_destroy(&m);
}

static void dirty_tracking(void **state)
{
    struct guest_mem m;
    vs_err err;
    guest_mem_init(&m);
    assert_int_equal(guest_mem_add_anon(&m, 0, 1 << 20, &err), 0);
    assert_int_equal(guest_mem_dirty_enable(&m, &err), 0);
    uint8_t b[8192] = {1};
    assert_int_equal(guest_mem_write(&m, 4096 * 3 + 100, b, 5000), 0); /* pages 3 and 4 */
    uint64_t bits[4];
    guest_mem_dirty_fetch(&m, 0, bits);
    assert_int_equal(bits[0], (1ULL << 3) | (1ULL << 4));
    guest_mem_dirty_fetch(&m, 0, bits);
    assert_int_equal(bits[0], 0);
    guest_mem_destroy(&m);
}

#define MiB (1ULL << 20)

/* A listener standing in for KVM's memslots. */
struct slots {
    int adds, dels;
    bool fail_next;
    bool live[16];
    uint64_t gpa[16];
};

static int slot_add(void *opaque, const struct guest_mem_region *r, vs_err *err)
{
    struct slots *s = opaque;
    if (s->fail_next) {
        s->fail_next = false;
        return vs_error(err, EIO, "no memslot for you");
    }
    assert_true(r->slot < 16);
    assert_false(s->live[r->slot]); /* a slot is never given twice */
    s->live[r->slot] = true;
    s->gpa[r->slot] = r->gpa;
    s->adds++;
    return 0;
}

static void slot_del(void *opaque, const struct guest_mem_region *r)
{
    struct slots *s = opaque;
    assert_true(s->live[r->slot]);
    assert_int_equal(s->gpa[r->slot], r->gpa);
    s->live[r->slot] = false;
    s->dels++;
}

static void add_and_remove_regions(void **state)
{
    struct guest_mem m;
    vs_err err;
    struct slots sl = {0};
    guest_mem_init(&m);
    assert_int_equal(guest_mem_nregions(&m), 0);
    guest_mem_set_listener(&m, &(struct guest_mem_listener){slot_add, slot_del, &sl});
    assert_int_equal(guest_mem_add_anon(&m, 0, 2 * MiB, &err), 0);
    assert_int_equal(guest_mem_add_anon(&m, 1ULL << 32, 4 * MiB, &err), 0);
    assert_int_equal(guest_mem_add_anon(&m, 1ULL << 33, 2 * MiB, &err), 0);
    assert_int_equal(guest_mem_nregions(&m), 3);
    assert_int_equal(m.total, 8 * MiB);
    assert_int_equal(sl.adds, 3);
    assert_int_equal(guest_mem_region(&m, 1)->slot, 1);
    uint32_t v = 0x5a5a5a5a, r = 0;
    assert_int_equal(guest_mem_write(&m, (1ULL << 32) + 8, &v, 4), 0);

    /* a removed region no longer translates; the others keep their slots */
    assert_int_equal(guest_mem_remove_region(&m, 1ULL << 32, &err), 0);
    assert_int_equal(sl.dels, 1);
    assert_false(sl.live[1]);
    assert_int_equal(guest_mem_nregions(&m), 2);
    assert_int_equal(m.total, 4 * MiB);
    assert_null(guest_mem_ptr(&m, 1ULL << 32, 4));
    assert_int_equal(guest_mem_read(&m, (1ULL << 32) + 8, &r, 4), -1);
    assert_non_null(guest_mem_ptr(&m, 1ULL << 33, 4));
    assert_int_equal(guest_mem_region(&m, 1)->slot, 2);
    assert_int_equal(guest_mem_remove_region(&m, 1ULL << 32, &err), -1);
    assert_int_equal(err.code, ENOENT);

    /* the freed slot is given again; the new region starts zeroed */
    assert_int_equal(guest_mem_add_anon(&m, 1ULL << 34, 2 * MiB, &err), 0);
    assert_int_equal(guest_mem_region(&m, 2)->slot, 1);
    assert_int_equal(guest_mem_read(&m, (1ULL << 34) + 8, &r, 4), 0);
    assert_int_equal(r, 0);

    /* a region the listener refuses is not added */
    sl.fail_next = true;
    assert_int_equal(guest_mem_add_anon(&m, 1ULL << 35, 2 * MiB, &err), -1);
    assert_non_null(strstr(err.msg, "no memslot"));
    assert_int_equal(guest_mem_nregions(&m), 3);
    assert_null(guest_mem_ptr(&m, 1ULL << 35, 4));
    /* overlaps and misaligned regions are refused before the listener */
    assert_int_equal(guest_mem_add_anon(&m, (1ULL << 34) + 4096, 2 * MiB, &err), -1);
    assert_int_equal(guest_mem_add_region(&m, 1ULL << 36, 100, NULL, -1, 0, &err), -1);
    assert_int_equal(sl.adds, 4);
    guest_mem_destroy(&m);
}

/* Dirty tracking covers regions added after it was turned on; a removed
 * region's bitmap goes with it. */
static void dirty_tracking_follows_regions(void **state)
{
    struct guest_mem m;
    vs_err err;
    guest_mem_init(&m);
    assert_int_equal(guest_mem_add_anon(&m, 0, 1 * MiB, &err), 0);
    assert_int_equal(guest_mem_dirty_enable(&m, &err), 0);
    assert_int_equal(guest_mem_add_anon(&m, 1ULL << 32, 1 * MiB, &err), 0);
    uint8_t b[16] = {7};
    assert_int_equal(guest_mem_write(&m, (1ULL << 32) + 5 * 4096, b, sizeof(b)), 0);
    assert_int_equal(guest_mem_write(&m, 2 * 4096, b, sizeof(b)), 0);
    uint64_t bits[4];
    guest_mem_dirty_fetch(&m, 1, bits);
    assert_int_equal(bits[0], 1ULL << 5);
    guest_mem_dirty_fetch(&m, 0, bits);
    assert_int_equal(bits[0], 1ULL << 2);
    assert_int_equal(guest_mem_remove_region(&m, 0, &err), 0);
    assert_int_equal(guest_mem_write(&m, (1ULL << 32) + 6 * 4096, b, sizeof(b)), 0);
    guest_mem_dirty_fetch(&m, 0, bits);
    assert_int_equal(bits[0], 1ULL << 6);
    guest_mem_destroy(&m);
}

/* Moving memory to its machine (a restore adopting a snapshot's regions). */
static void move_to_another_owner(void **state)
{
    struct guest_mem a, b;
    vs_err err;
    guest_mem_init(&a);
    guest_mem_init(&b);
    assert_int_equal(guest_mem_add_anon(&a, 0, 1 * MiB, &err), 0);
    uint8_t *p = guest_mem_ptr(&a, 0, 4096);
    guest_mem_move(&b, &a);
    assert_int_equal(guest_mem_nregions(&a), 0);
    assert_null(guest_mem_ptr(&a, 0, 1));
    assert_ptr_equal(guest_mem_ptr(&b, 0, 4096), p);
    assert_int_equal(b.total, 1 * MiB);
    guest_mem_destroy(&a);
    guest_mem_destroy(&b);
}

/* Readers translating a region that stays, with no lock, while another
 * thread adds and removes regions around it: every lookup succeeds and
 * sees the data. */
struct reader {
    struct guest_mem *m;
    bool stop;
    unsigned long lookups, misses;
};

static void *read_loop(void *arg)
{
    struct reader *r = arg;
    while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
        uint32_t *p = guest_mem_ptr(r->m, 1 * MiB - 4, 4);
        if (!p || *p != 0xfeedf00d)
            __atomic_fetch_add(&r->misses, 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&r->lookups, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

/* On a loaded host the readers may not have run yet: wait until they have
 * done n more lookups. */
static void wait_for_readers(struct reader *r, unsigned long n)
{
    unsigned long start = __atomic_load_n(&r->lookups, __ATOMIC_RELAXED);
    while (__atomic_load_n(&r->lookups, __ATOMIC_RELAXED) < start + n)
        sched_yield();
}

static void readers_while_regions_change(void **state)
{
    struct guest_mem m;
    vs_err err;
    guest_mem_init(&m);
    assert_int_equal(guest_mem_add_anon(&m, 0, 1 * MiB, &err), 0);
    uint32_t v = 0xfeedf00d;
    assert_int_equal(guest_mem_write(&m, 1 * MiB - 4, &v, 4), 0);
    struct reader rd = {.m = &m};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, read_loop, &rd), 0);
    wait_for_readers(&rd, 1);
    for (int round = 0; round < 200; round++) {
        uint64_t gpa = (1ULL << 32) + (uint64_t)(round % 5) * 4 * MiB;
        assert_int_equal(guest_mem_add_anon(&m, gpa, 2 * MiB, &err), 0);
        if (round % 3 == 0)
            assert_int_equal(guest_mem_dirty_enable(&m, &err), 0);
        if (round % 50 == 0)
            wait_for_readers(&rd, 10);
        assert_int_equal(guest_mem_remove_region(&m, gpa, &err), 0);
    }
    __atomic_store_n(&rd.stop, true, __ATOMIC_RELEASE);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    assert_true(rd.lookups > 0);
    assert_int_equal(rd.misses, 0);
    assert_int_equal(guest_mem_nregions(&m), 1);
    guest_mem_destroy(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(translate_and_bounds),   cmocka_unit_test(dirty_tracking),
        cmocka_unit_test(add_and_remove_regions), cmocka_unit_test(dirty_tracking_follows_regions),
        cmocka_unit_test(move_to_another_owner),  cmocka_unit_test(readers_while_regions_change),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
