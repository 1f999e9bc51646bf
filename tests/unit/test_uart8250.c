#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "hw/uart8250.h"

struct host {
    uint8_t out[64];
    size_t nout;
    int level, edges;
    int rx_ready;
};

static void set_level(void *opaque, unsigned irq, int level)
{
    struct host *h = opaque;
    if (level && !h->level)
        h->edges++;
    h->level = level;
}

static void tx(void *opaque, const uint8_t *buf, size_t len)
{
    struct host *h = opaque;
    memcpy(h->out + h->nout, buf, len);
    h->nout += len;
}

static void rx_ready(void *opaque)
{
    ((struct host *)opaque)->rx_ready++;
}

static void setup(struct uart8250 *u, struct host *h)
{
    memset(h, 0, sizeof(*h));
    struct irq_line l = {.set_level = set_level, .opaque = h, .irq = 4};
    uart8250_init(u, &l, 0, tx, rx_ready, h);
}

static void transmit_and_lsr(void **state)
{
    struct uart8250 u;
    struct host h;
    setup(&u, &h);
    assert_int_equal(uart8250_read(&u, UART_LSR) & 0x60, 0x60); /* THRE|TEMT */
    uart8250_write(&u, UART_THR, 'h');
    uart8250_write(&u, UART_THR, 'i');
    assert_int_equal(h.nout, 2);
    assert_memory_equal(h.out, "hi", 2);
    assert_int_equal(uart8250_read(&u, UART_LSR) & 0x61, 0x60); /* no data ready */
    assert_int_equal(h.level, 0);                               /* IER = 0: no interrupt */
    uart8250_destroy(&u);
}

static void divisor_latch_and_scratch(void **state)
{
    struct uart8250 u;
    struct host h;
    setup(&u, &h);
    uart8250_write(&u, UART_LCR, 0x83);
    uart8250_write(&u, UART_DLL, 0x01);
    uart8250_write(&u, UART_DLM, 0x02);
    assert_int_equal(uart8250_read(&u, UART_DLL), 0x01);
    assert_int_equal(uart8250_read(&u, UART_DLM), 0x02);
    uart8250_write(&u, UART_LCR, 0x03);
    assert_int_equal(h.nout, 0); /* DLL write did not transmit */
    assert_int_equal(uart8250_read(&u, UART_IER), 0);
    uart8250_write(&u, UART_SCR, 0xa5);
    assert_int_equal(uart8250_read(&u, UART_SCR), 0xa5);
    uart8250_destroy(&u);
}

static void thre_interrupt(void **state)
{
    struct uart8250 u;
    struct host h;
    setup(&u, &h);
    /* The kernel's probe: enabling THRI with an empty transmitter interrupts,
     * reading IIR acknowledges, re-enabling interrupts again. */
    uart8250_write(&u, UART_IER, 0x02);
    assert_int_equal(h.level, 1);
    assert_int_equal(uart8250_read(&u, UART_IIR) & 0x0f, 0x02);
    assert_int_equal(h.level, 0);
    assert_int_equal(uart8250_read(&u, UART_IIR) & 0x01, 0x01);
    uart8250_write(&u, UART_IER, 0);
    uart8250_write(&u, UART_IER, 0x02);
    assert_int_equal(uart8250_read(&u, UART_IIR) & 0x0f, 0x02);
    /* Every character written makes a new edge. */
    int edges = h.edges;
    uart8250_write(&u, UART_THR, 'a');
    uart8250_write(&u, UART_THR, 'b');
    assert_int_equal(h.edges, edges + 2);
    uart8250_destroy(&u);
}

static void receive_fifo(void **state)
{
    struct uart8250 u;
    struct host h;
    setup(&u, &h);
    /* Without the FIFO there is a one-byte holding register. */
    assert_int_equal(uart8250_receive(&u, (const uint8_t *)"xy", 2), 1);
    assert_int_equal(uart8250_read(&u, UART_RBR), 'x');
    assert_int_equal(h.rx_ready, 1);
    uart8250_write(&u, UART_FCR, 0x07);
    assert_int_equal(uart8250_read(&u, UART_IIR) & 0xc0, 0xc0);
    uart8250_write(&u, UART_IER, 0x01);
    uint8_t data[20];
    for (int i = 0; i < 20; i++)
        data[i] = (uint8_t)('A' + i);
    assert_int_equal(uart8250_receive(&u, data, 20), 16);
    assert_int_equal(uart8250_rx_room(&u), 0);
    assert_int_equal(h.level, 1);
    assert_int_equal(uart8250_read(&u, UART_IIR) & 0x0f, 0x04);
    for (int i = 0; i < 16; i++) {
        assert_true(uart8250_read(&u, UART_LSR) & 0x01);
        assert_int_equal(uart8250_read(&u, UART_RBR), 'A' + i);
    }
    assert_false(uart8250_read(&u, UART_LSR) & 0x01);
    assert_int_equal(h.level, 0);
    assert_int_equal(uart8250_rx_room(&u), 16);
    uart8250_destroy(&u);
}

static void loopback(void **state)
{
    struct uart8250 u;
    struct host h;
    setup(&u, &h);
    /* What the kernel's autoconfig checks: MCR outputs show up in MSR. */
    uart8250_write(&u, UART_MCR, 0x1a);
    assert_int_equal(uart8250_read(&u, UART_MSR) & 0xf0, 0x90);
    uart8250_write(&u, UART_THR, 'L');
    assert_int_equal(h.nout, 0);
    assert_int_equal(uart8250_read(&u, UART_RBR), 'L');
    assert_int_equal(uart8250_receive(&u, (const uint8_t *)"z", 1), 0);
    uart8250_write(&u, UART_MCR, 0x0b);
    assert_int_equal(uart8250_read(&u, UART_MSR) & 0xb0, 0xb0);
    assert_int_equal(uart8250_receive(&u, (const uint8_t *)"z", 1), 1);
    uart8250_destroy(&u);
}

static void reg_shift_io(void **state)
{
    struct uart8250 u;
    struct host h;
    memset(&h, 0, sizeof(h));
    uart8250_init(&u, NULL, 2, tx, NULL, &h);
    uart8250_io_write(&u, 7 << 2, 0x5a, 4);
    assert_int_equal(uart8250_io_read(&u, 7 << 2, 4), 0x5a);
    uart8250_io_write(&u, 0, 'q', 4);
    assert_int_equal(h.nout, 1);
    assert_int_equal(uart8250_io_read(&u, 5 << 2, 1) & 0x20, 0x20);
    uart8250_destroy(&u);
}

static void save_load(void **state)
{
    struct uart8250 u, v;
    struct host h, h2;
    setup(&u, &h);
    uart8250_write(&u, UART_FCR, 0x01);
    uart8250_write(&u, UART_LCR, 0x03);
    uart8250_write(&u, UART_SCR, 0x42);
    uart8250_write(&u, UART_IER, 0x01);
    assert_int_equal(uart8250_receive(&u, (const uint8_t *)"abc", 3), 3);
    assert_int_equal(uart8250_read(&u, UART_RBR), 'a');

    struct state_writer w;
    state_writer_init(&w);
    uart8250_save(&u, &w, 0);
    vs_err err;
    assert_int_equal(state_writer_status(&w, &err), 0);

    setup(&v, &h2);
    struct state_reader r;
    assert_int_equal(state_reader_init(&r, w.buf.data, w.buf.len, &err), 0);
    assert_int_equal(uart8250_load(&v, &r, 0, &err), 0);
    assert_int_equal(h2.level, 1); /* the pending RX interrupt is driven again */
    assert_int_equal(uart8250_read(&v, UART_SCR), 0x42);
    assert_int_equal(uart8250_read(&v, UART_LCR), 0x03);
    assert_int_equal(uart8250_read(&v, UART_RBR), 'b');
    assert_int_equal(uart8250_read(&v, UART_RBR), 'c');
    assert_false(uart8250_read(&v, UART_LSR) & 0x01);
    assert_int_equal(uart8250_load(&v, &r, 1, &err), -1); /* no such instance */

    /* A corrupt FIFO count is refused. */
    w.buf.data[w.buf.len - 3] = 200; /* payload byte 13, before "bc" */
    uart8250_destroy(&v);
    setup(&v, &h2);
    assert_int_equal(state_reader_init(&r, w.buf.data, w.buf.len, &err), 0);
    assert_int_equal(uart8250_load(&v, &r, 0, &err), -1);
    state_writer_free(&w);
    uart8250_destroy(&u);
    uart8250_destroy(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(transmit_and_lsr), cmocka_unit_test(divisor_latch_and_scratch),
        cmocka_unit_test(thre_interrupt),   cmocka_unit_test(receive_fifo),
        cmocka_unit_test(loopback),         cmocka_unit_test(reg_shift_io),
        cmocka_unit_test(save_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
