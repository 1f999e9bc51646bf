/* libFuzzer target: fw_cfg's registers as a guest drives them, above all
 * the DMA path, whose descriptor (control, length, address) and buffer are
 * guest-controlled. The input is a guest RAM image followed by register
 * writes and reads; every DMA must stay inside guest RAM (ASan checks the
 * host side) and the device's offset inside its item. */
#include <stdint.h>
/* Compiled into the target (not taken from libvessel) so the code under
 * test carries the fuzzer's coverage and sanitizer instrumentation. */
#include "../../src/hw/fw_cfg.c"
#include <assert.h>
#include <string.h>

#define RAM_SIZE 0x4000u

static struct guest_mem mem;
static struct fw_cfg cfg;
static uint8_t *ram;

static void init_once(void)
{
    static int done;
    if (done)
        return;
    done = 1;
    vs_err err;
    guest_mem_init(&mem);
    if (guest_mem_add_anon(&mem, 0x1000, RAM_SIZE, &err) < 0)
        abort();
    ram = guest_mem_ptr(&mem, 0x1000, RAM_SIZE);
    if (fw_cfg_init(&cfg, &mem, &err) < 0)
        abort();
    uint8_t big[300];
    for (unsigned i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)i;
    fw_cfg_add_file(&cfg, "etc/e820", big, 40, &err);
    fw_cfg_add_file(&cfg, "bootorder", big, sizeof(big), &err);
    fw_cfg_add_string(&cfg, FW_CFG_CMDLINE_DATA, "console=ttyS0", &err);
    fw_cfg_add_bytes(&cfg, 0x30, big, 0, &err); /* an empty item */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_once();
    size_t img = size < 512 ? size : 512;
    memset(ram, 0, RAM_SIZE);
    memcpy(ram, data, img);
    cfg.selector = 0;
    cfg.offset = 0;
    cfg.dma_hi = 0;
    for (size_t i = img; i + 5 <= size; i += 5) {
        uint8_t op = data[i];
        uint32_t v;
        memcpy(&v, data + i + 1, 4);
        switch (op & 7) {
        case 0:
            fw_cfg_io_write(&cfg, 0, v & 0xffff, 2);
            break;
        case 1:
            fw_cfg_io_read(&cfg, 1, 1 + (op >> 6));
            break;
        case 2:
            fw_cfg_io_write(&cfg, 4, v, 4);
            break;
        case 3:
            fw_cfg_io_write(&cfg, 8, v, 4);
            break;
        /* a descriptor anywhere in the image, or near RAM's edges */
        case 4:
            fw_cfg_dma(&cfg, 0x1000 + (v % (RAM_SIZE + 64)) - 32);
            break;
        case 5:
            fw_cfg_io_read(&cfg, 4 + (op >> 5), 4);
            break;
        case 6:
            fw_cfg_dma(&cfg, (uint64_t)v << 32 | v);
            break;
        default:
            fw_cfg_io_write(&cfg, 1, v, 1);
            break;
        }
        const struct fw_cfg_item *it = fw_cfg_find(&cfg, cfg.selector & ~FW_CFG_WRITE_CHANNEL);
        assert(!it || cfg.offset <= it->len);
    }
    return 0;
}
