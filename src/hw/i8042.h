/* The PC keyboard controller (i8042) at ports 0x60/0x64: enough of it for a
 * stock kernel to probe it quickly (self tests, command byte, keyboard reset
 * and ID, no AUX port) and for the reset line: command 0xFE, or clearing
 * bit 0 of the output port, resets the machine. */
#ifndef VESSEL_HW_I8042_H
#define VESSEL_HW_I8042_H

#include <pthread.h>
#include <stdint.h>
#include "hw/bus.h"
#include "hw/irq.h"
#include "state/state.h"
#include "util/err.h"

#define I8042_QUEUE 16

struct i8042_regs {
    uint8_t status, cmd_byte, pending_cmd, kbd_pending, outport;
    uint8_t q[I8042_QUEUE];
    uint8_t qhead, qlen;
};

struct i8042 {
    pthread_mutex_t lock;
    struct i8042_regs r;
    struct irq_line kbd_irq;
    void (*reset)(void *opaque);
    void *opaque;
};

void i8042_init(struct i8042 *k, const struct irq_line *kbd_irq, void (*reset)(void *),
                void *opaque);
/* Ports 0x60 and 0x64. */
/* Power-on state (machine reset). */
void i8042_reset(struct i8042 *k);
int i8042_register(struct i8042 *k, struct io_bus *pio, vs_err *err);
uint8_t i8042_read(struct i8042 *k, unsigned port);
void i8042_write(struct i8042 *k, unsigned port, uint8_t val);
void i8042_save(struct i8042 *k, struct state_writer *w);
int i8042_load(struct i8042 *k, struct state_reader *r, vs_err *err);

#endif
