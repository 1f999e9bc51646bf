/* Abstract interrupt delivery. A device holds an irq_line (a wire to the
 * board's interrupt controller: IOAPIC/PIC pin via KVM_IRQ_LINE on x86, a
 * PLIC source in the emulator) and, for PCI devices with MSI-X, an msi_sink.
 * The device never knows which machine it is plugged into. */
#ifndef VESSEL_HW_IRQ_H
#define VESSEL_HW_IRQ_H

#include <stdint.h>

struct irq_line {
    void (*set_level)(void *opaque, unsigned irq, int level);
    void *opaque;
    unsigned irq;
};

static inline void irq_line_set(const struct irq_line *l, int level)
{
    if (l && l->set_level)
        l->set_level(l->opaque, l->irq, level);
}
/* Edge-style notification on a level-triggered wire. */
static inline void irq_line_pulse(const struct irq_line *l)
{
    irq_line_set(l, 1);
    irq_line_set(l, 0);
}

/* Message-signalled interrupts. On KVM, `route` may bind (addr,data) to an
 * irqfd so the device thread can signal without a syscall round trip through
 * the VMM; `signal` is the slow path (KVM_SIGNAL_MSI). */
struct msi_sink {
    int (*signal)(void *opaque, uint64_t addr, uint32_t data);
    /* Optional: return an eventfd that raises (addr,data) when written,
     * or -1 if unsupported. */
    int (*irqfd_get)(void *opaque, uint64_t addr, uint32_t data);
    void (*irqfd_put)(void *opaque, int fd);
    void *opaque;
};

#endif
