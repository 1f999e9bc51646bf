/* Snapshot files are untrusted input (copied between hosts, maybe damaged):
 * raw bytes go through header validation; then, with the CRCs patched to
 * match so the fuzzer reaches the layers below, through the whole
 * snapshot_image_open path (manifest JSON, config, memory layout, state
 * section framing). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "snapshot/snapshot.h"

static char dir[64];

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct snap_header h;
    vs_err err;
    snap_header_decode(data, size, size, &h, &err);
    if (size < SNAP_HEADER_SIZE || size > (1u << 20))
        return 0;
    if (!dir[0]) {
        snprintf(dir, sizeof(dir), "/tmp/vessel-fuzz-snap-%d", getpid());
        mkdir(dir, 0700);
        char mem[96];
        snprintf(mem, sizeof(mem), "%s/memory", dir);
        FILE *f = fopen(mem, "w");
        if (f)
            fclose(f);
        truncate(mem, 8 << 20);
    }
    uint8_t *b = malloc(size);
    memcpy(b, data, size);
    memcpy(b, SNAP_MAGIC, 8);
    put32(b + 96, (uint32_t)crc32(0, b + SNAP_HEADER_SIZE, (uInt)(size - SNAP_HEADER_SIZE)));
    put32(b + 100, 0);
    put32(b + 100, (uint32_t)crc32(0, b, SNAP_HEADER_SIZE));
    char path[96];
    snprintf(path, sizeof(path), "%s/vmstate", dir);
    FILE *f = fopen(path, "w");
    if (f) {
        fwrite(b, 1, size, f);
        fclose(f);
        struct snapshot_image img;
        if (snapshot_image_open(dir, -1, &img, &err) == 0)
            snapshot_image_close(&img);
    }
    free(b);
    return 0;
}
