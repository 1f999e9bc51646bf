#include "hw/uart8250.h"

#include <errno.h>
#include <string.h>

#define LCR_DLAB 0x80
#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_BI 0x10
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define LSR_ERRORS (LSR_OE | 0x04 | 0x08 | LSR_BI)
#define MSR_DCTS 0x01
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80
#define MSR_DELTAS 0x0f
#define IER_RDI 0x01
#define IER_THRI 0x02
#define IER_RLSI 0x04
#define IER_MSI 0x08
#define IIR_NO_INT 0x01
#define IIR_MSI 0x00
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_RLSI 0x06
#define IIR_FIFO_ON 0xc0
#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define FCR_CLEAR_TX 0x04

static void regs_reset(struct uart8250_regs *r)
{
    memset(r, 0, sizeof(*r));
    r->lsr = LSR_THRE | LSR_TEMT;
    /* A console with nothing behind the modem lines: carrier, DSR and CTS
     * asserted so getty-style software does not wait for them. */
    r->msr = MSR_DCD | MSR_DSR | MSR_CTS;
    r->dll = 12; /* 9600 baud, as a PC BIOS leaves it */
}

void uart8250_init(struct uart8250 *u, const struct irq_line *irq, unsigned reg_shift,
                   uart8250_tx_fn tx, uart8250_rx_ready_fn rx_ready, void *opaque)
{
    memset(u, 0, sizeof(*u));
    pthread_mutex_init(&u->lock, NULL);
    regs_reset(&u->r);
    if (irq)
        u->irq = *irq;
    u->irq_level = -1;
    u->reg_shift = reg_shift;
    u->tx = tx;
    u->rx_ready = rx_ready;
    u->opaque = opaque;
}

void uart8250_destroy(struct uart8250 *u)
{
    pthread_mutex_destroy(&u->lock);
}

static unsigned fifo_size(const struct uart8250_regs *r)
{
    return (r->fcr & FCR_ENABLE) ? UART8250_FIFO_SIZE : 1;
}

/* The modem status lines as the guest sees them: in loopback the outputs of
 * MCR are wired back to the inputs (the kernel's autoconfig checks this). */
static uint8_t msr_lines(const struct uart8250_regs *r)
{
    if (!(r->mcr & MCR_LOOP))
        return r->msr;
    uint8_t m = r->msr & MSR_DELTAS;
    if (r->mcr & MCR_RTS)
        m |= MSR_CTS;
    if (r->mcr & MCR_DTR)
        m |= MSR_DSR;
    if (r->mcr & MCR_OUT1)
        m |= MSR_RI;
    if (r->mcr & MCR_OUT2)
        m |= MSR_DCD;
    return m;
}

static uint8_t iir_value(const struct uart8250_regs *r)
{
    uint8_t fifo = (r->fcr & FCR_ENABLE) ? IIR_FIFO_ON : 0;
    if ((r->ier & IER_RLSI) && (r->lsr & LSR_ERRORS))
        return fifo | IIR_RLSI;
    if ((r->ier & IER_RDI) && r->rx_count)
        return fifo | IIR_RDI;
    if ((r->ier & IER_THRI) && r->thr_ipending)
        return fifo | IIR_THRI;
    if ((r->ier & IER_MSI) && (r->msr & MSR_DELTAS))
        return fifo | IIR_MSI;
    return fifo | IIR_NO_INT;
}

/* The wire follows IIR alone, as in QEMU: the PC's OUT2 gate is not
 * modelled (Linux sets OUT2 anyway and the NS16550 on RISC-V has no gate). */
static void update_irq(struct uart8250 *u)
{
    int level = !(iir_value(&u->r) & IIR_NO_INT);
    if (level != u->irq_level) {
        u->irq_level = level;
        irq_line_set(&u->irq, level);
    }
}

static void rx_push(struct uart8250_regs *r, uint8_t c)
{
    if (r->rx_count >= fifo_size(r)) {
        r->lsr |= LSR_OE;
        return;
    }
    r->rx[(r->rx_head + r->rx_count) % UART8250_FIFO_SIZE] = c;
    r->rx_count++;
    r->lsr |= LSR_DR;
}

void uart8250_reset(struct uart8250 *u)
{
    pthread_mutex_lock(&u->lock);
    regs_reset(&u->r);
    update_irq(u);
    pthread_mutex_unlock(&u->lock);
}

uint8_t uart8250_read(struct uart8250 *u, unsigned reg)
{
    struct uart8250_regs *r = &u->r;
    uint8_t v = 0xff;
    bool drained = false;
    pthread_mutex_lock(&u->lock);
    switch (reg) {
    case 0:
        if (r->lcr & LCR_DLAB) {
            v = r->dll;
            break;
        }
        v = 0;
        if (r->rx_count) {
            v = r->rx[r->rx_head];
            r->rx_head = (r->rx_head + 1) % UART8250_FIFO_SIZE;
            r->rx_count--;
            drained = !(r->mcr & MCR_LOOP);
        }
        if (!r->rx_count)
            r->lsr &= ~LSR_DR;
        update_irq(u);
        break;
    case 1:
        v = (r->lcr & LCR_DLAB) ? r->dlm : r->ier;
        break;
    case 2:
        v = iir_value(r);
        /* Reading IIR acknowledges a THRE interrupt it reports. */
        if ((v & 0x0f) == IIR_THRI) {
            r->thr_ipending = 0;
            update_irq(u);
        }
        break;
    case 3:
        v = r->lcr;
        break;
    case 4:
        v = r->mcr;
        break;
    case 5:
        v = r->lsr;
        /* Error bits clear on read. */
        if (r->lsr & LSR_ERRORS) {
            r->lsr &= ~LSR_ERRORS;
            update_irq(u);
        }
        break;
    case 6:
        v = msr_lines(r);
        if (r->msr & MSR_DELTAS) {
            r->msr &= ~MSR_DELTAS;
            update_irq(u);
        }
        break;
    case 7:
        v = r->scr;
        break;
    }
    pthread_mutex_unlock(&u->lock);
    if (drained && u->rx_ready)
        u->rx_ready(u->opaque);
    return v;
}

void uart8250_write(struct uart8250 *u, unsigned reg, uint8_t val)
{
    struct uart8250_regs *r = &u->r;
    bool drained = false;
    pthread_mutex_lock(&u->lock);
    switch (reg) {
    case 0:
        if (r->lcr & LCR_DLAB) {
            r->dll = val;
            break;
        }
        if (r->mcr & MCR_LOOP)
            rx_push(r, val);
        else if (u->tx)
            u->tx(u->opaque, &val, 1);
        /* Sent at once: the holding register is empty again. */
        r->lsr |= LSR_THRE | LSR_TEMT;
        r->thr_ipending = 1;
        /* Pulse so an edge-triggered pin sees every THRE event. */
        if (u->irq_level == 1 && (r->ier & IER_THRI)) {
            irq_line_set(&u->irq, 0);
            u->irq_level = 0;
        }
        update_irq(u);
        break;
    case 1:
        if (r->lcr & LCR_DLAB) {
            r->dlm = val;
            break;
        }
        /* Enabling the THRE interrupt while the transmitter is empty makes
         * it pending at once (the kernel's THRE probe relies on it). */
        if (!(r->ier & IER_THRI) && (val & IER_THRI) && (r->lsr & LSR_THRE))
            r->thr_ipending = 1;
        r->ier = val & 0x0f;
        update_irq(u);
        break;
    case 2:
        if ((val ^ r->fcr) & FCR_ENABLE)
            val |= FCR_CLEAR_RX | FCR_CLEAR_TX;
        if (val & FCR_CLEAR_RX) {
            drained = r->rx_count != 0;
            r->rx_count = r->rx_head = 0;
            r->lsr &= ~LSR_DR;
        }
        r->fcr = val & 0xc9; /* enable, DMA mode, trigger level */
        update_irq(u);
        break;
    case 3:
        r->lcr = val;
        break;
    case 4: {
        bool was_loop = r->mcr & MCR_LOOP;
        r->mcr = val & 0x1f;
        drained = was_loop && !(r->mcr & MCR_LOOP);
        update_irq(u);
        break;
    }
    case 5: /* LSR is read-only (factory test writes ignored) */
    case 6:
        break;
    case 7:
        r->scr = val;
        break;
    }
    pthread_mutex_unlock(&u->lock);
    if (drained && u->rx_ready)
        u->rx_ready(u->opaque);
}

uint64_t uart8250_io_read(void *opaque, uint64_t offset, unsigned len)
{
    struct uart8250 *u = opaque;
    (void)len;
    if (offset & ((1u << u->reg_shift) - 1))
        return 0;
    return uart8250_read(u, (unsigned)(offset >> u->reg_shift));
}

void uart8250_io_write(void *opaque, uint64_t offset, uint64_t value, unsigned len)
{
    struct uart8250 *u = opaque;
    (void)len;
    if (offset & ((1u << u->reg_shift) - 1))
        return;
    uart8250_write(u, (unsigned)(offset >> u->reg_shift), (uint8_t)value);
}

size_t uart8250_receive(struct uart8250 *u, const uint8_t *buf, size_t len)
{
    size_t n = 0;
    pthread_mutex_lock(&u->lock);
    /* In loopback the receiver is disconnected from the outside world. */
    if (!(u->r.mcr & MCR_LOOP)) {
        while (n < len && u->r.rx_count < fifo_size(&u->r))
            rx_push(&u->r, buf[n++]);
        if (n)
            update_irq(u);
    }
    pthread_mutex_unlock(&u->lock);
    return n;
}

size_t uart8250_rx_room(struct uart8250 *u)
{
    pthread_mutex_lock(&u->lock);
    size_t room = (u->r.mcr & MCR_LOOP) ? 0 : fifo_size(&u->r) - u->r.rx_count;
    pthread_mutex_unlock(&u->lock);
    return room;
}

void uart8250_save(struct uart8250 *u, struct state_writer *w, uint32_t instance)
{
    pthread_mutex_lock(&u->lock);
    const struct uart8250_regs *r = &u->r;
    state_begin(w, "uart8250", instance, 1);
    /* Fixed layout: 10 registers/flags, 3 reserved bytes, FIFO count. */
    uint8_t b[14] = {r->ier, r->lcr, r->mcr, r->lsr, r->msr,
                     r->scr, r->dll, r->dlm, r->fcr, r->thr_ipending};
    b[13] = r->rx_count;
    state_put(w, b, sizeof(b));
    /* The FIFO in order, oldest first. */
    for (unsigned i = 0; i < r->rx_count; i++)
        state_put(w, &r->rx[(r->rx_head + i) % UART8250_FIFO_SIZE], 1);
    state_end(w);
    pthread_mutex_unlock(&u->lock);
}

int uart8250_load(struct uart8250 *u, struct state_reader *rd, uint32_t instance, vs_err *err)
{
    uint32_t version;
    uint8_t b[14];
    if (state_find(rd, "uart8250", instance, &version, err) < 0)
        return -1;
    if (version != 1)
        return vs_error(err, EINVAL, "uart8250 state version %u is not supported", version);
    if (state_get(rd, b, sizeof(b), err) < 0)
        return -1;
    struct uart8250_regs r = {0};
    r.ier = b[0] & 0x0f;
    r.lcr = b[1];
    r.mcr = b[2] & 0x1f;
    r.lsr = b[3];
    r.msr = b[4];
    r.scr = b[5];
    r.dll = b[6];
    r.dlm = b[7];
    r.fcr = b[8];
    r.thr_ipending = b[9] ? 1 : 0;
    if (b[13] > UART8250_FIFO_SIZE)
        return vs_error(err, EINVAL, "uart8250 state: receive FIFO holds %u bytes", b[13]);
    r.rx_count = b[13];
    if (state_get(rd, r.rx, r.rx_count, err) < 0)
        return -1;
    pthread_mutex_lock(&u->lock);
    u->r = r;
    u->irq_level = -1;
    update_irq(u);
    pthread_mutex_unlock(&u->lock);
    return 0;
}
