/* The ACPI fixed hardware the FADT describes: PM1a event block (status and
 * enable), PM1a control block (SCI_EN, SLP_TYP|SLP_EN: the guest's
 * poweroff), the PM timer (3.579545 MHz, 32 bits) and the reset register at
 * port 0xcf9. Sleep and reset requests go to the machine through a callback. */
#ifndef VESSEL_X86_ACPI_PM_H
#define VESSEL_X86_ACPI_PM_H

#include <pthread.h>
#include <stdint.h>
#include "hw/bus.h"
#include "hw/irq.h"
#include "state/state.h"
#include "util/err.h"

enum acpi_pm_event { ACPI_PM_POWEROFF, ACPI_PM_RESET };

struct acpi_pm {
    pthread_mutex_t lock;
    uint16_t pm1_sts, pm1_en, pm1_cnt;
    uint8_t reset_reg; /* last value written to 0xcf9 */
    void (*event)(void *opaque, enum acpi_pm_event ev);
    void *opaque;
};

void acpi_pm_init(struct acpi_pm *pm, void (*event)(void *, enum acpi_pm_event), void *opaque);
/* Power-on state (machine reset). */
void acpi_pm_reset(struct acpi_pm *pm);
/* Register the PM1a/timer ports and the reset port on the port bus. */
int acpi_pm_register(struct acpi_pm *pm, struct io_bus *pio, vs_err *err);
void acpi_pm_save(struct acpi_pm *pm, struct state_writer *w);
int acpi_pm_load(struct acpi_pm *pm, struct state_reader *r, vs_err *err);

#endif
