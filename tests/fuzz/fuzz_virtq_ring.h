/* The guest memory and virtqueue the virtio fuzz targets share: the input
 * becomes guest RAM, laid out compactly so short inputs reach deep (avail
 * ring at 0, descriptor table at 64, used ring beyond the input). */
#ifndef VESSEL_FUZZ_VIRTQ_RING_H
#define VESSEL_FUZZ_VIRTQ_RING_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include "mem/guest_mem.h"
#include "virtio/virtq.h"

#define FUZZ_RAM_GPA 0x10000
#define FUZZ_RAM_SIZE (64 * 1024)

/* Fill guest RAM from ram_image and enable vq over it; flags bits 0-2 pick
 * the queue size (1..16), bit 7 indirect descriptors. false if the queue is
 * refused. */
static inline bool fuzz_virtq_enable(struct virtq *vq, const uint8_t *ram_image, size_t len,
                                     uint8_t flags, bool event_idx)
{
    static uint8_t ram[FUZZ_RAM_SIZE] __attribute__((aligned(4096)));
    static struct guest_mem mem;
    static int init;
    if (!init) {
        guest_mem_init(&mem);
        guest_mem_add_region(&mem, FUZZ_RAM_GPA, FUZZ_RAM_SIZE, ram, -1, 0, NULL);
        init = 1;
    }
    memset(ram, 0, sizeof(ram));
    memcpy(ram, ram_image, len < FUZZ_RAM_SIZE ? len : FUZZ_RAM_SIZE);
    virtq_reset(vq, VIRTQ_MAX_SIZE);
    vq->num = (uint16_t)(1u << (flags & 3) << ((flags >> 2) & 1)); /* 1..16 */
    vq->avail_gpa = FUZZ_RAM_GPA;
    vq->desc_gpa = FUZZ_RAM_GPA + 64;
    vq->used_gpa = FUZZ_RAM_GPA + 0x8000;
    return virtq_enable(vq, &mem, event_idx, flags & 0x80);
}

#endif
