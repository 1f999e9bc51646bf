#include "hw/fw_cfg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_be64(const uint8_t *p)
{
    return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

static struct fw_cfg_item *find(struct fw_cfg *f, uint16_t key)
{
    for (unsigned i = 0; i < f->nitems; i++)
        if (f->items[i].key == key)
            return &f->items[i];
    return NULL;
}

const struct fw_cfg_item *fw_cfg_find(const struct fw_cfg *f, uint16_t key)
{
    return find((struct fw_cfg *)f, key);
}

const struct fw_cfg_item *fw_cfg_find_file(const struct fw_cfg *f, const char *name)
{
    for (unsigned i = 0; i < f->nitems; i++)
        if (f->items[i].name[0] && !strncmp(f->items[i].name, name, FW_CFG_MAX_FILE_PATH))
            return &f->items[i];
    return NULL;
}

/* data is taken over (freed on failure too). */
static int set_item(struct fw_cfg *f, uint16_t key, uint8_t *data, uint32_t len, vs_err *err)
{
    struct fw_cfg_item *it = find(f, key);
    if (!it) {
        if (f->nitems == FW_CFG_MAX_ITEMS) {
            free(data);
            return vs_error(err, E2BIG, "fw_cfg: more than %d items", FW_CFG_MAX_ITEMS);
        }
        it = &f->items[f->nitems++];
        memset(it, 0, sizeof(*it));
        it->key = key;
    }
    free(it->data);
    it->data = data;
    it->len = len;
    return 0;
}

int fw_cfg_add_bytes(struct fw_cfg *f, uint16_t key, const void *data, uint32_t len, vs_err *err)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return vs_error(err, ENOMEM, "fw_cfg: out of memory");
    if (len)
        memcpy(copy, data, len);
    pthread_mutex_lock(&f->lock);
    int rc = set_item(f, key, copy, len, err);
    pthread_mutex_unlock(&f->lock);
    return rc;
}

int fw_cfg_add_u16(struct fw_cfg *f, uint16_t key, uint16_t v, vs_err *err)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    return fw_cfg_add_bytes(f, key, b, 2, err);
}

int fw_cfg_add_u32(struct fw_cfg *f, uint16_t key, uint32_t v, vs_err *err)
{
    uint8_t b[4];
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    return fw_cfg_add_bytes(f, key, b, 4, err);
}

int fw_cfg_add_u64(struct fw_cfg *f, uint16_t key, uint64_t v, vs_err *err)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    return fw_cfg_add_bytes(f, key, b, 8, err);
}

int fw_cfg_add_string(struct fw_cfg *f, uint16_t key, const char *s, vs_err *err)
{
    return fw_cfg_add_bytes(f, key, s, (uint32_t)strlen(s) + 1, err);
}

/* The directory: be32 count, then per file be32 size, be16 select, be16
 * reserved, name[56]. Lock held. */
static int rebuild_dir(struct fw_cfg *f, vs_err *err)
{
    uint32_t len = 4 + 64 * f->nfiles;
    uint8_t *d = calloc(1, len);
    if (!d)
        return vs_error(err, ENOMEM, "fw_cfg: out of memory");
    put_be32(d, f->nfiles);
    uint8_t *e = d + 4;
    for (unsigned i = 0; i < f->nitems; i++) {
        const struct fw_cfg_item *it = &f->items[i];
        if (!it->name[0])
            continue;
        put_be32(e, it->len);
        put_be16(e + 4, it->key);
        memcpy(e + 8, it->name, strnlen(it->name, FW_CFG_MAX_FILE_PATH));
        e += 64;
    }
    return set_item(f, FW_CFG_FILE_DIR, d, len, err);
}

int fw_cfg_add_file(struct fw_cfg *f, const char *name, const void *data, uint32_t len, vs_err *err)
{
    size_t n = strlen(name);
    if (n == 0 || n >= FW_CFG_MAX_FILE_PATH)
        return vs_error(err, EINVAL, "fw_cfg: file name '%s' is not 1..%d bytes", name,
                        FW_CFG_MAX_FILE_PATH - 1);
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return vs_error(err, ENOMEM, "fw_cfg: out of memory");
    if (len)
        memcpy(copy, data, len);
    pthread_mutex_lock(&f->lock);
    int rc;
    struct fw_cfg_item *it = (struct fw_cfg_item *)fw_cfg_find_file(f, name);
    if (it) {
        rc = set_item(f, it->key, copy, len, err); /* same key, new contents */
    } else {
        uint16_t key = (uint16_t)(FW_CFG_FILE_FIRST + f->nfiles);
        rc = set_item(f, key, copy, len, err);
        if (rc == 0) {
            memcpy(find(f, key)->name, name, n);
            f->nfiles++;
        }
    }
    if (rc == 0)
        rc = rebuild_dir(f, err);
    pthread_mutex_unlock(&f->lock);
    return rc;
}

int fw_cfg_init(struct fw_cfg *f, struct guest_mem *mem, vs_err *err)
{
    memset(f, 0, sizeof(*f));
    f->mem = mem;
    pthread_mutex_init(&f->lock, NULL);
    if (fw_cfg_add_bytes(f, FW_CFG_SIGNATURE, "QEMU", 4, err) < 0 ||
        fw_cfg_add_u32(f, FW_CFG_ID, FW_CFG_VERSION_TRADITIONAL | FW_CFG_VERSION_DMA, err) < 0)
        return -1;
    pthread_mutex_lock(&f->lock);
    int rc = rebuild_dir(f, err);
    pthread_mutex_unlock(&f->lock);
    return rc;
}

void fw_cfg_destroy(struct fw_cfg *f)
{
    for (unsigned i = 0; i < f->nitems; i++)
        free(f->items[i].data);
    f->nitems = 0;
    pthread_mutex_destroy(&f->lock);
}

/* ---- the guest's side --------------------------------------------------- */

static void select_locked(struct fw_cfg *f, uint16_t key)
{
    f->selector = key;
    f->offset = 0;
}

/* The next byte of the selected item, 0 past its end or for no item. */
static uint8_t data_byte_locked(struct fw_cfg *f)
{
    const struct fw_cfg_item *it = find(f, f->selector & ~FW_CFG_WRITE_CHANNEL);
    if (!it || f->offset >= it->len)
        return 0;
    return it->data[f->offset++];
}

uint64_t fw_cfg_io_read(void *opaque, uint64_t off, unsigned len)
{
    struct fw_cfg *f = opaque;
    uint64_t v = 0;
    if (off == FW_CFG_PORT_DATA - FW_CFG_PORT_SEL) {
        /* bytes in string order: the first at the lowest address */
        pthread_mutex_lock(&f->lock);
        for (unsigned i = 0; i < len && i < 8; i++)
            v |= (uint64_t)data_byte_locked(f) << (8 * i);
        pthread_mutex_unlock(&f->lock);
        return v;
    }
    if (off >= 4 && off < 12) {
        /* the DMA register reads as "QEMU CFG", big-endian, at any width */
        uint8_t sig[8];
        for (int i = 0; i < 8; i++)
            sig[i] = (uint8_t)(FW_CFG_DMA_SIGNATURE >> (56 - 8 * i));
        for (unsigned i = 0; i < len && off - 4 + i < 8; i++)
            v |= (uint64_t)sig[off - 4 + i] << (8 * i);
        return v;
    }
    return 0;
}

static uint32_t bswap32(uint32_t v)
{
    return __builtin_bswap32(v);
}

void fw_cfg_io_write(void *opaque, uint64_t off, uint64_t val, unsigned len)
{
    struct fw_cfg *f = opaque;
    if (off == 0 && len == 2) {
        pthread_mutex_lock(&f->lock);
        select_locked(f, (uint16_t)val);
        pthread_mutex_unlock(&f->lock);
    } else if (off == 4 && len == 4) {
        /* the guest wrote the high half big-endian: outl(cpu_to_be32(hi)) */
        pthread_mutex_lock(&f->lock);
        f->dma_hi = bswap32((uint32_t)val);
        pthread_mutex_unlock(&f->lock);
    } else if (off == 8 && len == 4) {
        pthread_mutex_lock(&f->lock);
        uint64_t gpa = (uint64_t)f->dma_hi << 32 | bswap32((uint32_t)val);
        f->dma_hi = 0;
        pthread_mutex_unlock(&f->lock);
        fw_cfg_dma(f, gpa);
    } else if (off == 4 && len == 8) {
        fw_cfg_dma(f, __builtin_bswap64(val));
    }
    /* data-port writes: read-only since QEMU 2.4, ignored */
}

/* Copy up to len bytes of the selected item to guest memory at gpa
 * (zeros past its end); false if the buffer is not all guest RAM. Lock
 * held. */
static bool dma_read_locked(struct fw_cfg *f, uint64_t gpa, uint32_t len)
{
    if (!len)
        return true;
    uint8_t *dst = guest_mem_ptr_w(f->mem, gpa, len);
    if (!dst)
        return false;
    const struct fw_cfg_item *it = find(f, f->selector & ~FW_CFG_WRITE_CHANNEL);
    uint32_t have = it && f->offset < it->len ? it->len - f->offset : 0;
    uint32_t n = have < len ? have : len;
    if (n)
        memcpy(dst, it->data + f->offset, n);
    memset(dst + n, 0, len - n);
    f->offset = have ? f->offset + n : f->offset;
    return true;
}

void fw_cfg_dma(struct fw_cfg *f, uint64_t gpa)
{
    uint8_t d[16];
    /* the descriptor itself must be RAM the device can read and write */
    if (gpa > UINT64_MAX - 16 || guest_mem_read(f->mem, gpa, d, sizeof(d)) < 0)
        return;
    uint32_t control = get_be32(d), length = get_be32(d + 4);
    uint64_t addr = get_be64(d + 8);
    bool ok = true;
    pthread_mutex_lock(&f->lock);
    if (control & FW_CFG_DMA_SELECT)
        select_locked(f, (uint16_t)(control >> 16));
    if (control & FW_CFG_DMA_READ) {
        ok = addr <= UINT64_MAX - length && dma_read_locked(f, addr, length);
    } else if (control & FW_CFG_DMA_WRITE) {
        ok = false; /* no item is writable */
    } else if (control & FW_CFG_DMA_SKIP) {
        const struct fw_cfg_item *it = find(f, f->selector & ~FW_CFG_WRITE_CHANNEL);
        uint64_t to = (uint64_t)f->offset + length;
        f->offset = it ? (uint32_t)(to < it->len ? to : it->len) : f->offset;
    }
    pthread_mutex_unlock(&f->lock);
    /* done: control becomes 0, or the error bit */
    uint8_t c[4];
    put_be32(c, ok ? 0 : FW_CFG_DMA_ERROR);
    guest_mem_write(f->mem, gpa, c, 4);
}

static uint64_t fw_cfg_dma_io_read(void *opaque, uint64_t off, unsigned len)
{
    return fw_cfg_io_read(opaque, off + 4, len);
}

static void fw_cfg_dma_io_write(void *opaque, uint64_t off, uint64_t val, unsigned len)
{
    fw_cfg_io_write(opaque, off + 4, val, len);
}

int fw_cfg_register_pio(struct fw_cfg *f, struct io_bus *pio, vs_err *err)
{
    struct io_region r = {.name = "fw_cfg",
                          .base = FW_CFG_PORT_SEL,
                          .size = 2,
                          .read = fw_cfg_io_read,
                          .write = fw_cfg_io_write,
                          .opaque = f};
    if (io_bus_register(pio, &r, err) < 0)
        return -1;
    /* the DMA register: offsets 4..11 from the selector for the handlers */
    struct io_region dma = r;
    dma.name = "fw_cfg-dma";
    dma.base = FW_CFG_PORT_DMA;
    dma.size = 8;
    dma.opaque = f;
    dma.read = fw_cfg_dma_io_read;
    dma.write = fw_cfg_dma_io_write;
    return io_bus_register(pio, &dma, err);
}
