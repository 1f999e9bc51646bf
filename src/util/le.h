/* Little-endian fields of on-disk and on-wire formats, byte by byte so the
 * host's byte order and alignment never matter. */
#ifndef VESSEL_UTIL_LE_H
#define VESSEL_UTIL_LE_H

#include <stdint.h>

static inline void vs_put_le(uint8_t *p, uint64_t v, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t vs_get_le(const uint8_t *p, unsigned bytes)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

#endif
