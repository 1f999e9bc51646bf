/* A hostile S-mode guest for the emulated riscv64 board (no firmware but
 * vessel's built-in SBI): it writes pseudo-random values to every register
 * of every virtio-mmio slot and of the UART, then drives the virtio-blk
 * device at slot 0 with malformed virtqueues (descriptor loops, lengths of
 * 4 GiB, addresses outside RAM, indirect tables of garbage, avail indices
 * far ahead of the ring) at full rate, and finally prints HOSTILE-DONE and
 * powers off. The VMM must stay up and bounded, or stop with an error. */
#include <stdint.h>

#define VIRTIO0 0x10001000ul
#define STRIDE 0x1000ul
#define UART 0x10000000ul
#define R32(a) (*(volatile uint32_t *)(uintptr_t)(a))
#define R8(a) (*(volatile uint8_t *)(uintptr_t)(a))

static uint64_t seed = 0x2545f4914f6cdd1dull;

static uint32_t rnd(void)
{
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return (uint32_t)seed;
}

static long sbi(long ext, long fid, long a0)
{
    register long r0 asm("a0") = a0;
    register long r1 asm("a1") = 0;
    register long r6 asm("a6") = fid;
    register long r7 asm("a7") = ext;
    asm volatile("ecall" : "+r"(r0), "+r"(r1) : "r"(r6), "r"(r7) : "memory");
    return r0;
}

static void puts_sbi(const char *s)
{
    while (*s)
        sbi(1, 0, *s++); /* legacy console_putchar */
}

struct desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags, next;
};

#define RING 0x80400000ul

static void malformed_queue(unsigned round)
{
    unsigned long b = VIRTIO0;
    R32(b + 0x070) = 0;     /* reset */
    R32(b + 0x070) = 1 | 2; /* ACKNOWLEDGE | DRIVER */
    for (unsigned sel = 0; sel < 2; sel++) {
        /* what the device offers (mostly), so the queues are reached */
        R32(b + 0x014) = sel;
        uint32_t offered = R32(b + 0x010);
        R32(b + 0x024) = sel;
        R32(b + 0x020) = round % 8 == 7 ? rnd() : offered;
    }
    R32(b + 0x070) = 1 | 2 | 8; /* FEATURES_OK */
    R32(b + 0x030) = 0;
    uint32_t max = R32(b + 0x034);
    uint32_t num = max ? max : 8;
    R32(b + 0x038) = round % 8 == 3 ? 0xffff : num; /* now and then a size not offered */
    volatile struct desc *d = (void *)RING;
    volatile uint16_t *avail = (void *)(RING + 0x10000);
    avail[0] = (uint16_t)rnd(); /* flags */
    avail[1] = 0;
    for (unsigned i = 0; i < num; i++) {
        switch ((i + round) % 4) {
        case 0: /* a loop through NEXT */
            d[i] = (struct desc){RING + 0x20000, 0xffffffffu, 1, (uint16_t)((i + 1) % num)};
            break;
        case 1: /* outside RAM, write */
            d[i] = (struct desc){0xfffffffffff000ull, 16, 1 | 2, (uint16_t)(i - 1)};
            break;
        case 2: /* an indirect table of garbage */
            d[i] = (struct desc){RING + 0x30000, 0x100000, 4, (uint16_t)rnd()};
            break;
        default:
            d[i] = (struct desc){((uint64_t)rnd() << 32) | rnd(), rnd(), (uint16_t)rnd(),
                                 (uint16_t)rnd()};
        }
        avail[2 + i] = (uint16_t)(round & 2 ? i : rnd());
    }
    for (unsigned i = 0; i < 4096; i += 4)
        R32(RING + 0x30000 + i) = rnd();
    R32(b + 0x080) = (uint32_t)RING;
    R32(b + 0x084) = 0;
    R32(b + 0x090) = (uint32_t)(RING + 0x10000);
    R32(b + 0x094) = 0;
    /* now and then a used ring that is not RAM */
    R32(b + 0x0a0) = round % 8 == 4 ? 0x7ffff000u : (uint32_t)(RING + 0x18000);
    R32(b + 0x0a4) = 0;
    R32(b + 0x044) = 1;
    R32(b + 0x070) = 1 | 2 | 4 | 8; /* DRIVER_OK */
    for (unsigned k = 0; k < 200; k++) {
        /* one new chain at a time, now and then far ahead of the ring */
        avail[1] = (uint16_t)(avail[1] + (k % 50 == 49 ? 40000 : 1));
        R32(b + 0x050) = k % 3; /* notify, some queues absent */
        R32(b + 0x064) = rnd(); /* interrupt ack garbage */
    }
}

void hostile_main(void)
{
    puts_sbi("HOSTILE-START\n");
    /* every register of every virtio-mmio slot, read and written */
    for (unsigned pass = 0; pass < 4; pass++)
        for (unsigned long s = 0; s < 8; s++)
            for (unsigned long off = 0; off < STRIDE; off += 4) {
                unsigned long a = VIRTIO0 + s * STRIDE + off;
                (void)R32(a);
                R32(a) = rnd();
            }
    puts_sbi("HOSTILE-MMIO\n");
    /* the UART's registers (a flood of control characters included) */
    for (unsigned i = 0; i < 20000; i++)
        R8(UART + (rnd() & 7)) = (uint8_t)rnd();
    R8(UART + 3) = 3; /* 8N1, DLAB off again */
    R8(UART + 1) = 0;
    puts_sbi("\nHOSTILE-UART\n");
    for (unsigned round = 0; round < 64; round++)
        malformed_queue(round);
    puts_sbi("HOSTILE-DONE\n");
    sbi(0x53525354, 0, 0); /* SRST: shutdown */
}
