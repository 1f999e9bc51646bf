/* An 8250/16550A UART: the x86 COM1 console (port 0x3f8, IRQ 4) and the
 * RISC-V board's NS16550 (MMIO, reg-shift 0). The model is bus-agnostic:
 * the board maps a register window onto its io_bus (uart8250_io_read/write
 * divide the offset by 1 << reg_shift), raises interrupts through an
 * irq_line, and receives transmitted bytes through a callback.
 *
 * Transmission is immediate (the transmitter is always empty again by the
 * time the guest looks), so LSR.THRE/TEMT stay set and a THRE interrupt is
 * pending after every write the guest makes with IER.ETBEI set. Host input
 * goes into a 16-byte receive FIFO; the host side is told when the guest has
 * drained it (rx_ready) so it can push more instead of overrunning. */
#ifndef VESSEL_HW_UART8250_H
#define VESSEL_HW_UART8250_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "hw/irq.h"
#include "state/state.h"
#include "util/err.h"

#define UART8250_FIFO_SIZE 16

/* Register indices (after the reg-shift). */
enum {
    UART_RBR = 0, /* read, DLAB=0 */
    UART_THR = 0, /* write, DLAB=0 */
    UART_DLL = 0, /* DLAB=1 */
    UART_IER = 1, /* DLAB=0 */
    UART_DLM = 1, /* DLAB=1 */
    UART_IIR = 2, /* read */
    UART_FCR = 2, /* write */
    UART_LCR = 3,
    UART_MCR = 4,
    UART_LSR = 5,
    UART_MSR = 6,
    UART_SCR = 7,
};

/* Bytes the guest transmitted. Called with the UART lock held: do not call
 * back into the UART from it. */
typedef void (*uart8250_tx_fn)(void *opaque, const uint8_t *buf, size_t len);
/* The receive FIFO has room again. Called without the lock held, so it may
 * call uart8250_receive(). */
typedef void (*uart8250_rx_ready_fn)(void *opaque);

/* Register state; plain data so it can be saved and loaded as one block. */
struct uart8250_regs {
    uint8_t ier, lcr, mcr, lsr, msr, scr, dll, dlm, fcr;
    uint8_t thr_ipending; /* THRE interrupt pending (cleared by reading IIR) */
    uint8_t rx_head, rx_count;
    uint8_t rx[UART8250_FIFO_SIZE];
};

struct uart8250 {
    pthread_mutex_t lock;
    struct uart8250_regs r;
    unsigned reg_shift;
    struct irq_line irq;
    int irq_level; /* last level driven on irq, -1 = never driven */
    uart8250_tx_fn tx;
    uart8250_rx_ready_fn rx_ready;
    void *opaque;
};

/* irq may be NULL (polled UART). tx/rx_ready may be NULL. */
void uart8250_init(struct uart8250 *u, const struct irq_line *irq, unsigned reg_shift,
                   uart8250_tx_fn tx, uart8250_rx_ready_fn rx_ready, void *opaque);
void uart8250_destroy(struct uart8250 *u);
/* Back to the power-on state (guest reboot). */
void uart8250_reset(struct uart8250 *u);

/* Register access by index 0..7 (reads of other indices return 0xff). */
uint8_t uart8250_read(struct uart8250 *u, unsigned reg);
void uart8250_write(struct uart8250 *u, unsigned reg, uint8_t val);

/* io_region callbacks (opaque = struct uart8250 *); offsets in bytes. */
uint64_t uart8250_io_read(void *opaque, uint64_t offset, unsigned len);
void uart8250_io_write(void *opaque, uint64_t offset, uint64_t value, unsigned len);

/* Host input: queue up to len bytes; returns how many were accepted (the
 * rest must wait for rx_ready). */
size_t uart8250_receive(struct uart8250 *u, const uint8_t *buf, size_t len);
/* Free room in the receive FIFO. */
size_t uart8250_rx_room(struct uart8250 *u);

/* State section "uart8250", version 1. */
void uart8250_save(struct uart8250 *u, struct state_writer *w, uint32_t instance);
int uart8250_load(struct uart8250 *u, struct state_reader *r, uint32_t instance, vs_err *err);

#endif
