#include "hw/rtc_cmos.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

enum {
    REG_SEC = 0,
    REG_MIN = 2,
    REG_HOUR = 4,
    REG_WDAY = 6,
    REG_MDAY = 7,
    REG_MON = 8,
    REG_YEAR = 9,
    REG_A = 0x0a,
    REG_B = 0x0b,
    REG_C = 0x0c,
    REG_D = 0x0d,
    REG_CENTURY = 0x32,
};
#define A_UIP 0x80
#define B_SET 0x80
#define B_UIE 0x10
#define B_DM_BINARY 0x04
#define B_24H 0x02
#define C_IRQF 0x80
#define C_UF 0x10
#define D_VRT 0x80
#define UIP_NS 244000

static int64_t host_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void rtc_cmos_init(struct rtc_cmos *c, const struct irq_line *irq)
{
    memset(c, 0, sizeof(*c));
    pthread_mutex_init(&c->lock, NULL);
    c->ram[REG_A] = 0x26; /* 32.768 kHz time base, 1024 Hz periodic rate */
    c->ram[REG_B] = B_24H;
    c->ram[REG_D] = D_VRT;
    if (irq)
        c->irq = *irq;
    c->now_ns = host_now_ns;
}

static uint8_t to_bcd(const struct rtc_cmos *c, unsigned v)
{
    return (c->ram[REG_B] & B_DM_BINARY) ? (uint8_t)v : (uint8_t)((v / 10) << 4 | (v % 10));
}

static unsigned from_bcd(const struct rtc_cmos *c, uint8_t v)
{
    return (c->ram[REG_B] & B_DM_BINARY) ? v : (unsigned)((v >> 4) * 10 + (v & 0x0f));
}

/* Fill the time registers from the host clock (unless the guest is
 * setting the time, when they hold what it wrote). */
static void latch_time(struct rtc_cmos *c, int64_t now_ns)
{
    if (c->ram[REG_B] & B_SET)
        return;
    time_t t = (time_t)(now_ns / 1000000000 + c->offset);
    struct tm tm;
    gmtime_r(&t, &tm);
    c->ram[REG_SEC] = to_bcd(c, (unsigned)tm.tm_sec);
    c->ram[REG_MIN] = to_bcd(c, (unsigned)tm.tm_min);
    unsigned hour = (unsigned)tm.tm_hour;
    if (c->ram[REG_B] & B_24H) {
        c->ram[REG_HOUR] = to_bcd(c, hour);
    } else {
        unsigned h12 = hour % 12 ? hour % 12 : 12;
        c->ram[REG_HOUR] = (uint8_t)(to_bcd(c, h12) | (hour >= 12 ? 0x80 : 0));
    }
    c->ram[REG_WDAY] = to_bcd(c, (unsigned)tm.tm_wday + 1);
    c->ram[REG_MDAY] = to_bcd(c, (unsigned)tm.tm_mday);
    c->ram[REG_MON] = to_bcd(c, (unsigned)tm.tm_mon + 1);
    c->ram[REG_YEAR] = to_bcd(c, (unsigned)(tm.tm_year % 100));
    c->ram[REG_CENTURY] = to_bcd(c, (unsigned)(1900 + tm.tm_year) / 100);
}

/* The guest finished setting the clock: remember the difference. */
static void commit_time(struct rtc_cmos *c, int64_t now_ns)
{
    struct tm tm = {0};
    tm.tm_sec = (int)from_bcd(c, c->ram[REG_SEC]);
    tm.tm_min = (int)from_bcd(c, c->ram[REG_MIN]);
    uint8_t h = c->ram[REG_HOUR];
    if (c->ram[REG_B] & B_24H) {
        tm.tm_hour = (int)from_bcd(c, h);
    } else {
        int h12 = (int)from_bcd(c, h & 0x7f) % 12;
        tm.tm_hour = h12 + ((h & 0x80) ? 12 : 0);
    }
    tm.tm_mday = (int)from_bcd(c, c->ram[REG_MDAY]);
    tm.tm_mon = (int)from_bcd(c, c->ram[REG_MON]) - 1;
    int year = (int)from_bcd(c, c->ram[REG_CENTURY]) * 100 + (int)from_bcd(c, c->ram[REG_YEAR]);
    if (year < 1970)
        year = 2000 + (int)from_bcd(c, c->ram[REG_YEAR]);
    tm.tm_year = year - 1900;
    time_t t = timegm(&tm);
    if (t != (time_t)-1)
        c->offset = (int64_t)t - now_ns / 1000000000;
}

uint8_t rtc_cmos_read(struct rtc_cmos *c, unsigned reg)
{
    reg &= 0x7f;
    pthread_mutex_lock(&c->lock);
    int64_t now = c->now_ns();
    uint8_t v;
    switch (reg) {
    case REG_A:
        v = c->ram[REG_A] & 0x7f;
        /* Updating during the last 244 us before each second boundary. */
        if (!(c->ram[REG_B] & B_SET) && now % 1000000000 >= 1000000000 - UIP_NS)
            v |= A_UIP;
        break;
    case REG_C: {
        /* Update-ended is reported once per elapsed second (no interrupt
         * is generated; the flag is what polling software checks). */
        int64_t sec = now / 1000000000;
        v = 0;
        if (sec != c->last_sec) {
            v |= C_UF;
            c->last_sec = sec;
        }
        if (v & (c->ram[REG_B] & B_UIE))
            v |= C_IRQF;
        break;
    }
    case REG_D:
        v = D_VRT;
        break;
    default:
        if (reg <= REG_YEAR || reg == REG_CENTURY)
            latch_time(c, now);
        v = c->ram[reg];
        break;
    }
    pthread_mutex_unlock(&c->lock);
    return v;
}

void rtc_cmos_write(struct rtc_cmos *c, unsigned reg, uint8_t val)
{
    reg &= 0x7f;
    pthread_mutex_lock(&c->lock);
    int64_t now = c->now_ns();
    switch (reg) {
    case REG_A:
        c->ram[REG_A] = val & 0x7f;
        break;
    case REG_B: {
        bool was_set = c->ram[REG_B] & B_SET;
        if (!was_set && (val & B_SET))
            latch_time(c, now); /* the guest edits the current time */
        /* A mode change re-encodes the registers on the next read. */
        c->ram[REG_B] = val;
        if (was_set && !(val & B_SET))
            commit_time(c, now);
        break;
    }
    case REG_C:
    case REG_D:
        break; /* read-only */
    default:
        c->ram[reg] = val;
        break;
    }
    pthread_mutex_unlock(&c->lock);
}

static uint64_t io_read(void *opaque, uint64_t off, unsigned len)
{
    struct rtc_cmos *c = opaque;
    (void)len;
    if (off == 0)
        return c->index;
    return rtc_cmos_read(c, c->index);
}

static void io_write(void *opaque, uint64_t off, uint64_t val, unsigned len)
{
    struct rtc_cmos *c = opaque;
    (void)len;
    if (off == 0)
        c->index = (uint8_t)val & 0x7f; /* bit 7 masks NMIs */
    else
        rtc_cmos_write(c, c->index, (uint8_t)val);
}

int rtc_cmos_register(struct rtc_cmos *c, struct io_bus *pio, vs_err *err)
{
    struct io_region r = {.name = "rtc-cmos",
                          .base = 0x70,
                          .size = 2,
                          .read = io_read,
                          .write = io_write,
                          .opaque = c};
    return io_bus_register(pio, &r, err);
}

void rtc_cmos_save(struct rtc_cmos *c, struct state_writer *w)
{
    pthread_mutex_lock(&c->lock);
    state_begin(w, "rtc-cmos", 0, 1);
    state_put(w, c->ram, sizeof(c->ram));
    state_put_u32(w, c->index);
    state_put_u64(w, (uint64_t)c->offset);
    state_end(w);
    pthread_mutex_unlock(&c->lock);
}

int rtc_cmos_load(struct rtc_cmos *c, struct state_reader *r, vs_err *err)
{
    uint32_t version, index;
    uint64_t off;
    uint8_t ram[128];
    if (state_find(r, "rtc-cmos", 0, &version, err) < 0)
        return -1;
    if (version != 1)
        return vs_error(err, EINVAL, "rtc-cmos state version %u is not supported", version);
    if (state_get(r, ram, sizeof(ram), err) < 0 || state_get_u32(r, &index, err) < 0 ||
        state_get_u64(r, &off, err) < 0)
        return -1;
    pthread_mutex_lock(&c->lock);
    memcpy(c->ram, ram, sizeof(ram));
    c->index = (uint8_t)(index & 0x7f);
    c->offset = (int64_t)off;
    pthread_mutex_unlock(&c->lock);
    return 0;
}
