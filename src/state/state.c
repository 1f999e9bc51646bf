#include "state/state.h"

#include <errno.h>
#include <string.h>

#define SECTION_MAGIC 0x43455356u /* "VSEC" */

void state_writer_init(struct state_writer *w)
{
    memset(w, 0, sizeof(*w));
    vs_buf_init(&w->buf);
}

void state_writer_free(struct state_writer *w)
{
    vs_buf_free(&w->buf);
}

void state_begin(struct state_writer *w, const char *name, uint32_t instance, uint32_t version)
{
    size_t nl = strlen(name);
    vs_buf_put_u32(&w->buf, SECTION_MAGIC);
    vs_buf_put_u16(&w->buf, (uint16_t)nl);
    vs_buf_append(&w->buf, name, nl);
    vs_buf_put_u32(&w->buf, instance);
    vs_buf_put_u32(&w->buf, version);
    w->open_len_off = vs_buf_reserve(&w->buf, 8);
    w->open_start = w->buf.len;
}

void state_put(struct state_writer *w, const void *data, size_t len)
{
    vs_buf_append(&w->buf, data, len);
}

void state_put_u32(struct state_writer *w, uint32_t v)
{
    vs_buf_put_u32(&w->buf, v);
}

void state_put_u64(struct state_writer *w, uint64_t v)
{
    vs_buf_put_u64(&w->buf, v);
}

void state_end(struct state_writer *w)
{
    if (w->buf.oom || !w->open_len_off)
        return;
    uint64_t len = w->buf.len - w->open_start;
    for (int i = 0; i < 8; i++)
        w->buf.data[w->open_len_off + i] = (uint8_t)(len >> (8 * i));
    w->open_len_off = 0;
}

int state_writer_status(struct state_writer *w, vs_err *err)
{
    if (w->buf.oom)
        return vs_error(err, ENOMEM, "out of memory while saving state");
    return 0;
}

static uint64_t rd(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Walk one section header at pos; fills fields and returns the next pos, or 0. */
static size_t parse_section(const uint8_t *d, size_t len, size_t pos, const uint8_t **name,
                            size_t *name_len, uint32_t *inst, uint32_t *ver,
                            const uint8_t **payload, uint64_t *plen)
{
    if (len - pos < 6 || rd(d + pos, 4) != SECTION_MAGIC)
        return 0;
    size_t nl = rd(d + pos + 4, 2);
    pos += 6;
    if (len - pos < nl + 16)
        return 0;
    *name = d + pos;
    *name_len = nl;
    pos += nl;
    *inst = (uint32_t)rd(d + pos, 4);
    *ver = (uint32_t)rd(d + pos + 4, 4);
    *plen = rd(d + pos + 8, 8);
    pos += 16;
    if (*plen > len - pos)
        return 0;
    *payload = d + pos;
    return pos + *plen;
}

int state_reader_init(struct state_reader *r, const void *data, size_t len, vs_err *err)
{
    memset(r, 0, sizeof(*r));
    r->data = data;
    r->len = len;
    size_t pos = 0;
    while (pos < len) {
        const uint8_t *name, *payload;
        size_t nl;
        uint32_t inst, ver;
        uint64_t plen;
        size_t next = parse_section(data, len, pos, &name, &nl, &inst, &ver, &payload, &plen);
        if (!next)
            return vs_error(err, EINVAL, "device state is malformed at byte %zu", pos);
        pos = next;
    }
    return 0;
}

int state_find(struct state_reader *r, const char *name, uint32_t instance, uint32_t *version,
               vs_err *err)
{
    size_t pos = 0, want = strlen(name);
    while (pos < r->len) {
        const uint8_t *n, *payload;
        size_t nl;
        uint32_t inst, ver;
        uint64_t plen;
        size_t next = parse_section(r->data, r->len, pos, &n, &nl, &inst, &ver, &payload, &plen);
        if (!next)
            break;
        if (nl == want && !memcmp(n, name, nl) && inst == instance) {
            r->cur = payload;
            r->cur_len = plen;
            r->cur_pos = 0;
            r->cur_name = name;
            r->cur_version = ver;
            if (version)
                *version = ver;
            return (int)ver;
        }
        pos = next;
    }
    return vs_error(err, ENOENT, "state has no section %s/%u", name, instance);
}

int state_get(struct state_reader *r, void *data, size_t len, vs_err *err)
{
    if (!r->cur || len > r->cur_len - r->cur_pos)
        return vs_error(err, EINVAL, "state section %s is truncated",
                        r->cur_name ? r->cur_name : "?");
    memcpy(data, r->cur + r->cur_pos, len);
    r->cur_pos += len;
    return 0;
}

int state_get_u32(struct state_reader *r, uint32_t *v, vs_err *err)
{
    uint8_t b[4];
    if (state_get(r, b, 4, err) < 0)
        return -1;
    *v = (uint32_t)rd(b, 4);
    return 0;
}

int state_get_u64(struct state_reader *r, uint64_t *v, vs_err *err)
{
    uint8_t b[8];
    if (state_get(r, b, 8, err) < 0)
        return -1;
    *v = rd(b, 8);
    return 0;
}
