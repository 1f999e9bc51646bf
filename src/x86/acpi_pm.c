#include "x86/acpi_pm.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>
#include "x86/layout.h"

#define PM1_CNT_SCI_EN 0x0001
#define PM1_CNT_SLP_EN 0x2000
#define PM_TIMER_HZ 3579545ULL
#define RESET_RST_CPU 0x04

void acpi_pm_init(struct acpi_pm *pm, void (*event)(void *, enum acpi_pm_event), void *opaque)
{
    memset(pm, 0, sizeof(*pm));
    pthread_mutex_init(&pm->lock, NULL);
    /* No SMI_CMD in the FADT: the machine is always in ACPI mode. */
    pm->pm1_cnt = PM1_CNT_SCI_EN;
    pm->event = event;
    pm->opaque = opaque;
}

void acpi_pm_reset(struct acpi_pm *pm)
{
    pthread_mutex_lock(&pm->lock);
    pm->pm1_sts = pm->pm1_en = 0;
    pm->pm1_cnt = PM1_CNT_SCI_EN;
    pm->reset_reg = 0;
    pthread_mutex_unlock(&pm->lock);
}

static uint32_t pm_timer(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned __int128 ns = (unsigned __int128)ts.tv_sec * 1000000000u + (unsigned)ts.tv_nsec;
    return (uint32_t)(ns * PM_TIMER_HZ / 1000000000u);
}

/* Ports 0x600-0x60b: PM1a_STS (2), PM1a_EN (2), PM1a_CNT (2), pad, PM_TMR (4). */
static uint64_t pm_read(void *opaque, uint64_t off, unsigned len)
{
    struct acpi_pm *pm = opaque;
    uint8_t regs[12] = {0};
    pthread_mutex_lock(&pm->lock);
    memcpy(regs + 0, &pm->pm1_sts, 2);
    memcpy(regs + 2, &pm->pm1_en, 2);
    memcpy(regs + 4, &pm->pm1_cnt, 2);
    pthread_mutex_unlock(&pm->lock);
    uint32_t t = pm_timer();
    memcpy(regs + 8, &t, 4);
    uint64_t v = 0;
    if (off < sizeof(regs))
        memcpy(&v, regs + off, len <= sizeof(regs) - off ? len : sizeof(regs) - off);
    return v;
}

static void pm_write(void *opaque, uint64_t off, uint64_t val, unsigned len)
{
    struct acpi_pm *pm = opaque;
    enum acpi_pm_event ev = ACPI_PM_POWEROFF;
    bool fire = false;
    pthread_mutex_lock(&pm->lock);
    if (off == 0 && len >= 2) {
        pm->pm1_sts &= (uint16_t)~val; /* write 1 to clear */
        if (len == 4)
            pm->pm1_en = (uint16_t)(val >> 16);
    } else if (off == 2) {
        pm->pm1_en = (uint16_t)val;
    } else if (off == 4) {
        uint16_t v = (uint16_t)val;
        pm->pm1_cnt = (uint16_t)((v & ~PM1_CNT_SLP_EN) | PM1_CNT_SCI_EN);
        if ((v & PM1_CNT_SLP_EN) && ((v >> 10) & 7) == X86_SLP_TYP_S5)
            fire = true;
    }
    pthread_mutex_unlock(&pm->lock);
    if (fire && pm->event)
        pm->event(pm->opaque, ev);
}

static uint64_t reset_read(void *opaque, uint64_t off, unsigned len)
{
    struct acpi_pm *pm = opaque;
    (void)off;
    (void)len;
    return pm->reset_reg;
}

static void reset_write(void *opaque, uint64_t off, uint64_t val, unsigned len)
{
    struct acpi_pm *pm = opaque;
    (void)off;
    (void)len;
    pm->reset_reg = (uint8_t)val & 0x0e;
    if ((val & RESET_RST_CPU) && pm->event)
        pm->event(pm->opaque, ACPI_PM_RESET);
}

int acpi_pm_register(struct acpi_pm *pm, struct io_bus *pio, vs_err *err)
{
    struct io_region r = {.name = "acpi-pm",
                          .base = X86_PM1A_EVT_PORT,
                          .size = 12,
                          .read = pm_read,
                          .write = pm_write,
                          .opaque = pm};
    if (io_bus_register(pio, &r, err) < 0)
        return -1;
    struct io_region rr = {.name = "reset",
                           .base = X86_RESET_PORT,
                           .size = 1,
                           .read = reset_read,
                           .write = reset_write,
                           .opaque = pm};
    return io_bus_register(pio, &rr, err);
}

void acpi_pm_save(struct acpi_pm *pm, struct state_writer *w)
{
    pthread_mutex_lock(&pm->lock);
    state_begin(w, "acpi-pm", 0, 1);
    state_put_u32(w, pm->pm1_sts);
    state_put_u32(w, pm->pm1_en);
    state_put_u32(w, pm->pm1_cnt);
    state_put_u32(w, pm->reset_reg);
    state_end(w);
    pthread_mutex_unlock(&pm->lock);
}

int acpi_pm_load(struct acpi_pm *pm, struct state_reader *r, vs_err *err)
{
    uint32_t version, sts, en, cnt, rst;
    if (state_find(r, "acpi-pm", 0, &version, err) < 0)
        return -1;
    if (version != 1)
        return vs_error(err, EINVAL, "acpi-pm state version %u is not supported", version);
    if (state_get_u32(r, &sts, err) < 0 || state_get_u32(r, &en, err) < 0 ||
        state_get_u32(r, &cnt, err) < 0 || state_get_u32(r, &rst, err) < 0)
        return -1;
    pthread_mutex_lock(&pm->lock);
    pm->pm1_sts = (uint16_t)sts;
    pm->pm1_en = (uint16_t)en;
    pm->pm1_cnt = (uint16_t)(cnt | PM1_CNT_SCI_EN);
    pm->reset_reg = (uint8_t)rst;
    pthread_mutex_unlock(&pm->lock);
    return 0;
}
