/* The machine's device list (virtio/machine_glue.h): devices added and
 * removed while the machine exists, on virtio-mmio slots and on a PCI bus;
 * freed slots are given again, state sections keep the instance a device
 * was added with, and the list is walked in the order of addition. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "hw/pci.h"
#include "virtio/devices.h"
#include "virtio/machine_glue.h"
#include "virtio/mmio.h"

#define BASE 0x10001000ULL
#define STRIDE 0x1000ULL
#define MAGIC 0x74726976 /* "virt" */

struct fixture {
    struct guest_mem mem;
    struct io_bus bus, pio;
    struct pci_bus pci;
    struct irq_line irqs[4];
};

static int setup(void **state)
{
    struct fixture *x = calloc(1, sizeof(*x));
    vs_err err;
    guest_mem_init(&x->mem);
    if (!x || guest_mem_add_anon(&x->mem, 0, 1 << 20, &err) < 0)
        return -1;
    io_bus_init(&x->bus, "mmio");
    io_bus_init(&x->pio, "pio");
    if (pci_bus_init(&x->pci, &x->pio, &x->bus, &err) < 0)
        return -1;
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *x = *state;
    pci_bus_destroy(&x->pci);
    io_bus_destroy(&x->bus);
    io_bus_destroy(&x->pio);
    guest_mem_destroy(&x->mem);
    free(x);
    return 0;
}

static bool slot_answers(struct fixture *x, unsigned slot)
{
    uint64_t v;
    return io_bus_read(&x->bus, BASE + slot * STRIDE, 4, &v) && v == MAGIC;
}

struct walk {
    struct virtio_dev *devs[8];
    unsigned n;
};

static int collect(struct virtio_dev *d, void *opaque, vs_err *err)
{
    struct walk *w = opaque;
    w->devs[w->n++] = d;
    return 0;
}

static struct walk walk(struct virtio_set *s)
{
    struct walk w = {0};
    vs_err err;
    assert_int_equal(virtio_set_foreach(s, collect, &w, &err), 0);
    return w;
}

static void mmio_add_and_remove(void **state)
{
    struct fixture *x = *state;
    vs_err err;
    struct virtio_set *s;
    assert_int_equal(virtio_set_new_mmio(&x->bus, BASE, STRIDE, x->irqs, 3, 0, &s, &err), 0);
    assert_int_equal(virtio_set_count(s), 0);
    struct virtio_dev *d[3];
    for (unsigned i = 0; i < 3; i++) {
        d[i] = virtio_rng_new(&x->mem, i, &err);
        assert_int_equal(virtio_set_add(s, d[i], &err), 0);
        assert_true(slot_answers(x, i));
    }
    /* every slot taken: refused, and the device freed (ASan sees a leak
     * otherwise) */
    assert_int_equal(virtio_set_add(s, virtio_rng_new(&x->mem, 9, &err), &err), -1);
    assert_non_null(strstr(err.msg, "virtio-mmio slots"));
    assert_int_equal(virtio_set_count(s), 3);

    /* the middle one goes: its slot stops answering, the others stay */
    assert_int_equal(virtio_set_remove(s, d[1], &err), 0);
    assert_false(slot_answers(x, 1));
    assert_true(slot_answers(x, 0) && slot_answers(x, 2));
    struct virtio_dev *stranger = virtio_rng_new(&x->mem, 7, &err);
    assert_int_equal(virtio_set_remove(s, stranger, &err), -1);
    assert_int_equal(err.code, ENOENT);
    virtio_dev_destroy(stranger);
    struct walk w = walk(s);
    assert_int_equal(w.n, 2);
    assert_ptr_equal(w.devs[0], d[0]);
    assert_ptr_equal(w.devs[1], d[2]);

    /* a new device takes the freed slot and the next state instance */
    struct virtio_dev *n = virtio_rng_new(&x->mem, 3, &err);
    assert_int_equal(virtio_set_add(s, n, &err), 0);
    assert_true(slot_answers(x, 1));
    w = walk(s);
    assert_int_equal(w.n, 3);
    assert_ptr_equal(w.devs[2], n);
    struct state_writer sw;
    state_writer_init(&sw);
    assert_int_equal(virtio_set_save(s, &sw, &err), 0);
    struct state_reader r;
    uint32_t version;
    assert_int_equal(state_reader_init(&r, sw.buf.data, sw.buf.len, &err), 0);
    assert_true(state_find(&r, "virtio/virtio-rng0", 0, &version, &err) >= 0);
    assert_true(state_find(&r, "virtio/virtio-rng2", 2, &version, &err) >= 0);
    assert_true(state_find(&r, "virtio/virtio-rng3", 3, &version, &err) >= 0);
    assert_true(state_find(&r, "virtio/virtio-rng3", 1, &version, &err) < 0);
    /* and a set built the same way loads it */
    assert_int_equal(virtio_set_load(s, &r, &err), 0);
    state_writer_free(&sw);

    /* pause and resume reach what is in the list now */
    assert_int_equal(virtio_set_pause(s, &err), 0);
    assert_int_equal(virtio_set_add(s, virtio_rng_new(&x->mem, 4, &err), &err), -1); /* full */
    virtio_set_resume(s);
    virtio_set_destroy(s);
    for (unsigned i = 0; i < 3; i++)
        assert_false(slot_answers(x, i));
}

static uint32_t vendor_at(struct fixture *x, unsigned slot)
{
    return pci_config_read(&x->pci, slot, 0, PCI_VENDOR_ID, 2);
}

static void pci_add_and_remove(void **state)
{
    struct fixture *x = *state;
    vs_err err;
    struct virtio_set *s;
    assert_int_equal(virtio_set_new_pci(&x->pci, &s, &err), 0);
    struct virtio_dev *a = virtio_rng_new(&x->mem, 0, &err);
    struct virtio_dev *b = virtio_rng_new(&x->mem, 1, &err);
    assert_int_equal(virtio_set_add(s, a, &err), 0);
    assert_int_equal(virtio_set_add(s, b, &err), 0);
    assert_int_equal(vendor_at(x, 0), 0x1af4); /* virtio's */
    assert_int_equal(vendor_at(x, 1), 0x1af4);
    assert_int_equal(virtio_set_remove(s, a, &err), 0);
    assert_int_equal(vendor_at(x, 0), 0xffffffff); /* an empty slot */
    assert_int_equal(vendor_at(x, 1), 0x1af4);
    assert_int_equal(virtio_set_add(s, virtio_rng_new(&x->mem, 2, &err), &err), 0);
    assert_int_equal(vendor_at(x, 0), 0x1af4);
    assert_int_equal(virtio_set_count(s), 2);
    virtio_set_destroy(s);
    assert_int_equal(vendor_at(x, 0), 0xffffffff);
    assert_int_equal(vendor_at(x, 1), 0xffffffff);
}

/* The list is taken by whoever walks or changes it: one thread adds and
 * removes while another pauses, resumes and walks. */
struct churn {
    struct fixture *x;
    struct virtio_set *s;
    volatile bool stop;
    unsigned walks;
};

static void *walker(void *arg)
{
    struct churn *c = arg;
    vs_err err;
    while (!c->stop) {
        struct walk w = {0};
        virtio_set_pause(c->s, &err);
        assert_int_equal(virtio_set_foreach(c->s, collect, &w, &err), 0);
        assert_true(w.n <= 2);
        virtio_set_resume(c->s);
        c->walks++;
    }
    return NULL;
}

static void changes_while_walked(void **state)
{
    struct fixture *x = *state;
    vs_err err;
    struct churn c = {.x = x};
    assert_int_equal(virtio_set_new_mmio(&x->bus, BASE, STRIDE, x->irqs, 2, 0, &c.s, &err), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, walker, &c), 0);
    for (unsigned i = 0; i < 100; i++) {
        struct virtio_dev *d = virtio_rng_new(&x->mem, i, &err);
        assert_int_equal(virtio_set_add(c.s, d, &err), 0);
        assert_int_equal(virtio_set_remove(c.s, d, &err), 0);
    }
    c.stop = true;
    pthread_join(t, NULL);
    assert_int_equal(virtio_set_count(c.s), 0);
    virtio_set_destroy(c.s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(mmio_add_and_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(pci_add_and_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(changes_while_walked, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
