#include "util/buf.h"

#include <stdlib.h>
#include <string.h>

void vs_buf_init(struct vs_buf *b)
{
    memset(b, 0, sizeof(*b));
}

void vs_buf_free(struct vs_buf *b)
{
    free(b->data);
    vs_buf_init(b);
}

static int grow(struct vs_buf *b, size_t n)
{
    if (b->oom)
        return -1;
    if (b->len + n <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n)
        cap *= 2;
    uint8_t *d = realloc(b->data, cap);
    if (!d) {
        b->oom = 1;
        return -1;
    }
    b->data = d;
    b->cap = cap;
    return 0;
}

void *vs_buf_append(struct vs_buf *b, const void *data, size_t n)
{
    if (grow(b, n))
        return NULL;
    void *p = b->data + b->len;
    if (data)
        memcpy(p, data, n);
    else
        memset(p, 0, n);
    b->len += n;
    return p;
}

size_t vs_buf_reserve(struct vs_buf *b, size_t n)
{
    size_t off = b->len;
    vs_buf_append(b, NULL, n);
    return off;
}

/* Little-endian, the byte order of every format vessel writes. */
void vs_buf_put_u8(struct vs_buf *b, uint8_t v)
{
    vs_buf_append(b, &v, 1);
}
void vs_buf_put_u16(struct vs_buf *b, uint16_t v)
{
    uint8_t x[2] = {v, v >> 8};
    vs_buf_append(b, x, 2);
}
void vs_buf_put_u32(struct vs_buf *b, uint32_t v)
{
    uint8_t x[4] = {v, v >> 8, v >> 16, v >> 24};
    vs_buf_append(b, x, 4);
}
void vs_buf_put_u64(struct vs_buf *b, uint64_t v)
{
    vs_buf_put_u32(b, (uint32_t)v);
    vs_buf_put_u32(b, (uint32_t)(v >> 32));
}
