/* A growable byte buffer, used to build tables, state blobs and messages. */
#ifndef VESSEL_UTIL_BUF_H
#define VESSEL_UTIL_BUF_H

#include <stddef.h>
#include <stdint.h>

struct vs_buf {
    uint8_t *data;
    size_t len, cap;
    int oom; /* sticky: set when an append failed; check once at the end */
};

void vs_buf_init(struct vs_buf *b);
void vs_buf_free(struct vs_buf *b);
/* Append n bytes; returns a pointer to them inside the buffer, or NULL on OOM. */
void *vs_buf_append(struct vs_buf *b, const void *data, size_t n);
/* Append n zero bytes and return their offset (pointers move as the buffer grows). */
size_t vs_buf_reserve(struct vs_buf *b, size_t n);
void vs_buf_put_u8(struct vs_buf *b, uint8_t v);
void vs_buf_put_u16(struct vs_buf *b, uint16_t v);
void vs_buf_put_u32(struct vs_buf *b, uint32_t v);
void vs_buf_put_u64(struct vs_buf *b, uint64_t v);

#endif
