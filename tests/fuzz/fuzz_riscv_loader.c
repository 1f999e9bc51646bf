/* Firmware and kernel files are untrusted input: the riscv64 loader must
 * refuse or load any byte string without touching memory outside the RAM it
 * was given. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "riscv/loader.h"

#define RAM_BASE 0x80000000ull
#define RAM_SIZE (2ull << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t *host;
    if (!host)
        host = malloc(RAM_SIZE);
    struct rv_ram ram = {.host = host, .base = RAM_BASE, .size = RAM_SIZE};
    struct rv_image img;
    vs_err err;
    /* the load address comes from the input too: raw images go anywhere */
    uint64_t addr = RAM_BASE;
    if (size >= 8) {
        memcpy(&addr, data + size - 8, 8);
        if (addr & 1)
            addr = RAM_BASE + (addr >> 44);
    }
    if (rv_load_image_buf(&ram, data, size, "kernel", addr, &img, &err) == 0) {
        if (img.low < RAM_BASE || img.high > RAM_BASE + RAM_SIZE || img.low > img.high)
            abort();
    }
    return 0;
}
