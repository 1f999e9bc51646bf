#include "hw/i8042.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#define STS_OBF 0x01
#define STS_SYS 0x04
#define STS_CMD 0x08
#define STS_UNLOCKED 0x10
#define CMD_KBD_INT 0x01
#define CMD_KBD_DISABLE 0x10
#define CMD_AUX_DISABLE 0x20
#define CMD_XLATE 0x40

static void regs_reset(struct i8042_regs *r)
{
    memset(r, 0, sizeof(*r));
    r->status = STS_SYS | STS_UNLOCKED;
    r->cmd_byte = CMD_KBD_INT | CMD_AUX_DISABLE | CMD_XLATE;
    r->outport = 0x01; /* reset line released */
}

void i8042_init(struct i8042 *k, const struct irq_line *kbd_irq, void (*reset)(void *),
                void *opaque)
{
    memset(k, 0, sizeof(*k));
    pthread_mutex_init(&k->lock, NULL);
    regs_reset(&k->r);
    if (kbd_irq)
        k->kbd_irq = *kbd_irq;
    k->reset = reset;
    k->opaque = opaque;
}

static void update_irq(struct i8042 *k)
{
    int level = (k->r.status & STS_OBF) && (k->r.cmd_byte & CMD_KBD_INT);
    irq_line_set(&k->kbd_irq, level);
}

void i8042_reset(struct i8042 *k)
{
    pthread_mutex_lock(&k->lock);
    regs_reset(&k->r);
    update_irq(k);
    pthread_mutex_unlock(&k->lock);
}

static void push(struct i8042 *k, uint8_t b)
{
    struct i8042_regs *r = &k->r;
    if (r->qlen == I8042_QUEUE)
        return;
    r->q[(r->qhead + r->qlen) % I8042_QUEUE] = b;
    r->qlen++;
    r->status |= STS_OBF;
}

/* A byte sent to the keyboard itself (port 0x60 with no controller command
 * pending): answer like a PS/2 keyboard. */
static void kbd_command(struct i8042 *k, uint8_t b)
{
    struct i8042_regs *r = &k->r;
    if (r->kbd_pending) {
        r->kbd_pending = 0; /* argument of 0xED/0xF0/0xF3 */
        push(k, 0xfa);
        return;
    }
    switch (b) {
    case 0xff: /* reset: ACK, self-test passed */
        push(k, 0xfa);
        push(k, 0xaa);
        break;
    case 0xf2: /* identify: MF2 keyboard, translated */
        push(k, 0xfa);
        push(k, 0xab);
        push(k, 0x41);
        break;
    case 0xed:
    case 0xf0:
    case 0xf3:
        r->kbd_pending = b;
        push(k, 0xfa);
        break;
    case 0xee: /* echo */
        push(k, 0xee);
        break;
    default:
        push(k, 0xfa);
        break;
    }
}

uint8_t i8042_read(struct i8042 *k, unsigned port)
{
    pthread_mutex_lock(&k->lock);
    struct i8042_regs *r = &k->r;
    uint8_t v;
    if (port == 0x64) {
        v = r->status;
    } else {
        v = 0;
        if (r->qlen) {
            v = r->q[r->qhead];
            r->qhead = (r->qhead + 1) % I8042_QUEUE;
            r->qlen--;
        }
        if (!r->qlen)
            r->status &= ~STS_OBF;
        update_irq(k);
    }
    pthread_mutex_unlock(&k->lock);
    return v;
}

void i8042_write(struct i8042 *k, unsigned port, uint8_t val)
{
    bool reset = false;
    pthread_mutex_lock(&k->lock);
    struct i8042_regs *r = &k->r;
    if (port == 0x64) {
        r->status |= STS_CMD;
        r->pending_cmd = 0;
        switch (val) {
        case 0x20: /* read command byte */
            push(k, r->cmd_byte);
            break;
        case 0x60: /* write command byte */
        case 0xd1: /* write output port */
        case 0xd2: /* write keyboard output buffer */
        case 0xd3: /* write AUX output buffer */
        case 0xd4: /* write to AUX device */
            r->pending_cmd = val;
            break;
        case 0xa7:
            r->cmd_byte |= CMD_AUX_DISABLE;
            break;
        case 0xa8:
            r->cmd_byte &= ~CMD_AUX_DISABLE;
            break;
        case 0xa9: /* AUX interface test: "clock line stuck low" = no AUX */
            push(k, 0x01);
            break;
        case 0xaa: /* controller self test */
            push(k, 0x55);
            r->status |= STS_SYS;
            break;
        case 0xab: /* keyboard interface test */
            push(k, 0x00);
            break;
        case 0xad:
            r->cmd_byte |= CMD_KBD_DISABLE;
            break;
        case 0xae:
            r->cmd_byte &= ~CMD_KBD_DISABLE;
            break;
        case 0xd0: /* read output port */
            push(k, r->outport);
            break;
        default:
            /* 0xf0-0xff pulse output-port bits low for 6us; bit 0 is the
             * CPU reset line. */
            if (val >= 0xf0 && !(val & 1))
                reset = true;
            break;
        }
    } else {
        r->status &= ~STS_CMD;
        uint8_t cmd = r->pending_cmd;
        r->pending_cmd = 0;
        switch (cmd) {
        case 0x60:
            r->cmd_byte = val;
            break;
        case 0xd1:
            r->outport = val;
            if (!(val & 1))
                reset = true;
            break;
        case 0xd2:
            push(k, val);
            break;
        case 0xd3:
            /* AUX loopback without the AUX-data status bit: the kernel
             * concludes there is no mouse port, at once. */
            push(k, val);
            break;
        case 0xd4:
            break; /* no AUX device answers */
        default:
            kbd_command(k, val);
            break;
        }
    }
    update_irq(k);
    pthread_mutex_unlock(&k->lock);
    if (reset && k->reset)
        k->reset(k->opaque);
}

/* One region over 0x60-0x64; 0x61 (PIT speaker) is handled inside KVM and
 * 0x62/0x63 float. */
static uint64_t io_read(void *opaque, uint64_t off, unsigned len)
{
    (void)len;
    if (off != 0 && off != 4)
        return 0xff;
    return i8042_read(opaque, 0x60 + (unsigned)off);
}

static void io_write(void *opaque, uint64_t off, uint64_t val, unsigned len)
{
    (void)len;
    if (off == 0 || off == 4)
        i8042_write(opaque, 0x60 + (unsigned)off, (uint8_t)val);
}

int i8042_register(struct i8042 *k, struct io_bus *pio, vs_err *err)
{
    struct io_region r = {
        .name = "i8042", .base = 0x60, .size = 5, .read = io_read, .write = io_write, .opaque = k};
    return io_bus_register(pio, &r, err);
}

void i8042_save(struct i8042 *k, struct state_writer *w)
{
    pthread_mutex_lock(&k->lock);
    state_begin(w, "i8042", 0, 1);
    state_put(w, &k->r, sizeof(k->r));
    state_end(w);
    pthread_mutex_unlock(&k->lock);
}

int i8042_load(struct i8042 *k, struct state_reader *r, vs_err *err)
{
    uint32_t version;
    struct i8042_regs regs;
    if (state_find(r, "i8042", 0, &version, err) < 0)
        return -1;
    if (version != 1)
        return vs_error(err, EINVAL, "i8042 state version %u is not supported", version);
    if (state_get(r, &regs, sizeof(regs), err) < 0)
        return -1;
    if (regs.qlen > I8042_QUEUE || regs.qhead >= I8042_QUEUE)
        return vs_error(err, EINVAL, "i8042 state: bad output queue");
    pthread_mutex_lock(&k->lock);
    k->r = regs;
    update_irq(k);
    pthread_mutex_unlock(&k->lock);
    return 0;
}
