/* Default trap handlers and reporting for the bare-metal ISA tests. */
#include "rt.h"

struct trap_record last_trap;
int (*mtrap_hook)(struct frame *f);
int (*strap_hook)(struct frame *f);

extern volatile uint64_t tohost;
#define CONSOLE ((volatile uint8_t *)0x10000000)

void rt_puts(const char *s)
{
    while (*s)
        *CONSOLE = (uint8_t)*s++;
}

void rt_puthex(uint64_t v)
{
    char buf[19];
    buf[0] = '0';
    buf[1] = 'x';
    for (int i = 0; i < 16; i++)
        buf[2 + i] = "0123456789abcdef"[(v >> (60 - 4 * i)) & 15];
    buf[18] = 0;
    rt_puts(buf);
}

void rt_exit(int code)
{
    tohost = code ? ((uint64_t)code << 1) | 1 : 1;
    for (;;)
        ;
}

void rt_fail(int line)
{
    rt_exit(line ? line : 0xfff);
}

static unsigned insn_len(uint64_t epc)
{
    uint16_t lo = *(volatile uint16_t *)epc;
    return (lo & 3) == 3 ? 4 : 2;
}

static void record(struct frame *f, unsigned mode)
{
    last_trap.count++;
    last_trap.cause = f->cause;
    last_trap.tval = f->tval;
    last_trap.epc = f->epc;
    last_trap.status = f->status;
    last_trap.mode = mode;
}

static void skip(struct frame *f)
{
    uint64_t c = f->cause;
    if (c & (1ull << 63))
        return;              /* interrupts resume where they hit */
    if (c == 1 || c == 12) { /* fetch fault: return to the caller */
        extern char rt_return_stub[];
        if (f->epc == f->x[1] || f->epc == (uint64_t)rt_return_stub) {
            /* the caller is not executable either: leave run_in_mode() from M */
            csr_set(mstatus, MSTATUS_MPP);
            f->epc = (uint64_t)rt_return_stub;
        } else {
            f->epc = f->x[1];
        }
    } else
        f->epc += insn_len(f->epc);
}

void handle_mtrap(struct frame *f)
{
    record(f, 3);
    if (mtrap_hook && mtrap_hook(f))
        return;
    if (f->cause & (1ull << 63)) {
        /* an unexpected interrupt would loop forever: fail */
        rt_puts("unexpected M interrupt ");
        rt_puthex(f->cause);
        rt_puts("\n");
        rt_fail(9999);
    }
    skip(f);
}

void handle_strap(struct frame *f)
{
    record(f, 1);
    if (strap_hook && strap_hook(f))
        return;
    if (f->cause & (1ull << 63)) {
        rt_puts("unexpected S interrupt ");
        rt_puthex(f->cause);
        rt_puts("\n");
        rt_fail(9998);
    }
    skip(f);
}
