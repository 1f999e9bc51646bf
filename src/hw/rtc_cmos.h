/* The MC146818 CMOS RTC at ports 0x70/0x71: the host's real time (UTC) plus
 * an offset the guest may set, BCD or binary, 12/24-hour mode, the
 * update-in-progress bit (set during the last 244 us of each second, as on
 * hardware, so the kernel's UIP wait ends quickly), status registers A-D and
 * the remaining CMOS RAM (century at 0x32). */
#ifndef VESSEL_HW_RTC_CMOS_H
#define VESSEL_HW_RTC_CMOS_H

#include <pthread.h>
#include <stdint.h>
#include "hw/bus.h"
#include "hw/irq.h"
#include "state/state.h"
#include "util/err.h"

struct rtc_cmos {
    pthread_mutex_t lock;
    uint8_t ram[128];
    uint8_t index;
    int64_t offset;   /* guest time minus host time, seconds */
    int64_t last_sec; /* second seen by the last register C read */
    struct irq_line irq;
    /* Test hook: the host clock (CLOCK_REALTIME) in ns, or NULL. */
    int64_t (*now_ns)(void);
};

void rtc_cmos_init(struct rtc_cmos *c, const struct irq_line *irq);
int rtc_cmos_register(struct rtc_cmos *c, struct io_bus *pio, vs_err *err);
/* Register access by CMOS index (0x00-0x7f). */
uint8_t rtc_cmos_read(struct rtc_cmos *c, unsigned reg);
void rtc_cmos_write(struct rtc_cmos *c, unsigned reg, uint8_t val);
void rtc_cmos_save(struct rtc_cmos *c, struct state_writer *w);
int rtc_cmos_load(struct rtc_cmos *c, struct state_reader *r, vs_err *err);

#endif
