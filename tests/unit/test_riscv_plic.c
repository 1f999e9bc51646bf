/* The riscv64 board's PLIC: priorities, enables, thresholds, claim and
 * complete of level-triggered sources, and state save/load. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "riscv/plic.h"

#define PRIO(s) (0x0u + 4u * (s))
#define PENDING 0x1000u
#define ENABLE(c) (0x2000u + 0x80u * (c))
#define THRESHOLD(c) (0x200000u + 0x1000u * (c))
#define CLAIM(c) (0x200004u + 0x1000u * (c))

static bool eip[8];

static void set_eip(void *opaque, unsigned ctx, bool level)
{
    eip[ctx] = level;
}

static void setup_plic(struct plic *p, unsigned nharts)
{
    memset(eip, 0, sizeof(eip));
    plic_init(p, NULL, nharts);
    p->set_eip = set_eip;
}

static void w(struct plic *p, uint32_t off, uint32_t v)
{
    plic_io_write(p, off, v, 4);
}

static uint32_t r(struct plic *p, uint32_t off)
{
    return (uint32_t)plic_io_read(p, off, 4);
}

static void claim_and_complete(void **state)
{
    struct plic p;
    setup_plic(&p, 1);
    w(&p, PRIO(10), 1);
    w(&p, ENABLE(1), 1u << 10); /* S context of hart 0 */
    plic_set_level(&p, 10, 1);
    assert_true(eip[1]);
    assert_false(eip[0]); /* M context has nothing enabled */
    assert_int_equal(r(&p, PENDING), 1u << 10);
    assert_int_equal(r(&p, CLAIM(1)), 10);
    assert_false(eip[1]);
    assert_int_equal(r(&p, PENDING), 0);
    assert_int_equal(r(&p, CLAIM(1)), 0); /* nothing else */
    /* still high at completion: pending again (no lost edge) */
    w(&p, CLAIM(1), 10);
    assert_true(eip[1]);
    assert_int_equal(r(&p, CLAIM(1)), 10);
    plic_set_level(&p, 10, 0);
    w(&p, CLAIM(1), 10);
    assert_false(eip[1]);
    assert_int_equal(r(&p, PENDING), 0);
    plic_destroy(&p);
}

static void priority_and_threshold(void **state)
{
    struct plic p;
    setup_plic(&p, 2);
    w(&p, PRIO(1), 2);
    w(&p, PRIO(2), 5);
    w(&p, PRIO(3), 0);                                   /* priority 0 never interrupts */
    w(&p, ENABLE(3), (1u << 1) | (1u << 2) | (1u << 3)); /* hart 1, S */
    plic_set_level(&p, 3, 1);
    assert_false(eip[3]);
    plic_set_level(&p, 1, 1);
    plic_set_level(&p, 2, 1);
    assert_true(eip[3]);
    assert_false(eip[1]); /* hart 0 has nothing enabled */
    w(&p, THRESHOLD(3), 5);
    assert_false(eip[3]); /* 5 is not above 5 */
    assert_int_equal(r(&p, THRESHOLD(3)), 5);
    w(&p, THRESHOLD(3), 1);
    assert_true(eip[3]);
    assert_int_equal(r(&p, CLAIM(3)), 2); /* highest priority first */
    assert_int_equal(r(&p, CLAIM(3)), 1);
    assert_int_equal(r(&p, CLAIM(3)), 0);
    /* priorities are 3 bits */
    w(&p, PRIO(4), 0xff);
    assert_int_equal(r(&p, PRIO(4)), 7);
    /* completing a source not enabled for the context is ignored */
    w(&p, CLAIM(1), 2);
    assert_int_equal(r(&p, PENDING), 1u << 3); /* 1, 2 in service; 3 pends at priority 0 */
    plic_destroy(&p);
}

static void hostile_accesses(void **state)
{
    struct plic p;
    setup_plic(&p, 1);
    /* source 0 and out-of-range sources, contexts and widths are harmless */
    w(&p, PRIO(0), 7);
    assert_int_equal(r(&p, PRIO(0)), 0);
    w(&p, ENABLE(0), 0xffffffff);
    assert_int_equal(r(&p, ENABLE(0)), 0xfffffffe);
    w(&p, ENABLE(5), 0xffffffff);
    assert_int_equal(r(&p, ENABLE(5)), 0);
    w(&p, CLAIM(9), 3);
    assert_int_equal(r(&p, CLAIM(9)), 0);
    w(&p, CLAIM(0), 0xffffffff);
    plic_io_write(&p, PRIO(1), 7, 8);
    assert_int_equal(r(&p, PRIO(1)), 0);
    plic_io_write(&p, PRIO(1) + 1, 7, 4);
    plic_set_level(&p, 0, 1);
    plic_set_level(&p, RV_PLIC_NSRC, 1);
    plic_set_level(&p, 5000, 1);
    assert_int_equal(r(&p, PENDING), 0);
    w(&p, PENDING, 0xffffffff); /* read-only */
    assert_int_equal(r(&p, PENDING), 0);
    plic_destroy(&p);
}

static void irq_line_drives_source(void **state)
{
    struct plic p;
    setup_plic(&p, 1);
    w(&p, PRIO(7), 1);
    w(&p, ENABLE(0), 1u << 7);
    struct irq_line l = plic_irq_line(&p, 7);
    irq_line_set(&l, 1);
    assert_true(eip[0]);
    irq_line_set(&l, 0);
    assert_false(eip[0]);
    plic_destroy(&p);
}

static void save_load(void **state)
{
    struct plic p, q;
    setup_plic(&p, 1);
    w(&p, PRIO(10), 3);
    w(&p, ENABLE(1), 1u << 10);
    w(&p, THRESHOLD(1), 1);
    plic_set_level(&p, 10, 1);
    assert_int_equal(r(&p, CLAIM(1)), 10); /* claimed, in service */
    struct state_writer sw;
    state_writer_init(&sw);
    plic_save(&p, &sw);
    vs_err err;
    assert_int_equal(state_writer_status(&sw, &err), 0);

    setup_plic(&q, 1);
    struct state_reader sr;
    assert_int_equal(state_reader_init(&sr, sw.buf.data, sw.buf.len, &err), 0);
    assert_int_equal(plic_load(&q, &sr, &err), 0);
    assert_int_equal(r(&q, PRIO(10)), 3);
    assert_int_equal(r(&q, THRESHOLD(1)), 1);
    assert_false(eip[1]);
    w(&q, CLAIM(1), 10); /* completion after restore re-pends the high line */
    assert_true(eip[1]);
    assert_int_equal(r(&q, CLAIM(1)), 10);

    /* a machine with another hart count refuses the state */
    struct plic big;
    setup_plic(&big, 2);
    assert_int_equal(state_reader_init(&sr, sw.buf.data, sw.buf.len, &err), 0);
    assert_int_equal(plic_load(&big, &sr, &err), -1);
    assert_non_null(strstr(err.msg, "contexts"));
    state_writer_free(&sw);
    plic_destroy(&p);
    plic_destroy(&q);
    plic_destroy(&big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(claim_and_complete), cmocka_unit_test(priority_and_threshold),
        cmocka_unit_test(hostile_accesses),   cmocka_unit_test(irq_line_drives_source),
        cmocka_unit_test(save_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
