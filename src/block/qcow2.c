#include "block/qcow2.h"

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "util/io.h"
#include "util/cleanup.h"
#include "util/log.h"

/* On-disk layout (big-endian), per the qcow2 specification
 * (docs/interop/qcow2.txt in QEMU). */
#define HDR_V2_LEN 72
#define HDR_V3_LEN 104
#define INCOMPAT_DIRTY (1ULL << 0)
#define INCOMPAT_CORRUPT (1ULL << 1)
#define INCOMPAT_DATA_FILE (1ULL << 2)
#define INCOMPAT_COMPRESSION (1ULL << 3)
#define INCOMPAT_EXTL2 (1ULL << 4)
#define EXT_END 0x00000000u
#define EXT_BACKING_FORMAT 0xe2792acau
#define EXT_FEATURE_TABLE 0x6803f857u

#define ENTRY_COPIED (1ULL << 63)
#define ENTRY_COMPRESSED (1ULL << 62)
#define ENTRY_ZERO (1ULL << 0)
#define OFFSET_MASK 0x00fffffffffffe00ULL

#define MAX_L1_BYTES (32u << 20)
#define MAX_REFTABLE_BYTES (8u << 20)
#define MAX_IMAGE_SIZE (1ULL << 55)
#define L2_CACHE_SLOTS 16
#define CREATE_CLUSTER_BITS 16

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}
static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint64_t be64(const uint8_t *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}
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
static void put_be64(uint8_t *p, uint64_t v)
{
    put_be32(p, (uint32_t)(v >> 32));
    put_be32(p + 4, (uint32_t)v);
}

bool qcow2_probe(const uint8_t *buf, size_t len)
{
    return len >= 4 && be32(buf) == QCOW2_MAGIC;
}

int qcow2_header_parse(const uint8_t *buf, size_t len, uint64_t file_size, struct qcow2_header *h,
                       vs_err *err)
{
    memset(h, 0, sizeof(*h));
    if (len < HDR_V2_LEN || !qcow2_probe(buf, len))
        return vs_error(err, EINVAL, "not a qcow2 image (bad magic or truncated header)");
    h->version = be32(buf + 4);
    if (h->version != 2 && h->version != 3)
        return vs_error(err, ENOTSUP, "qcow2 version %u is not supported (only 2 and 3)",
                        h->version);
    uint64_t backing_off = be64(buf + 8);
    uint32_t backing_len = be32(buf + 16);
    h->cluster_bits = be32(buf + 20);
    if (h->cluster_bits < 9 || h->cluster_bits > 21)
        return vs_error(err, EINVAL, "qcow2 cluster_bits %u out of range 9..21", h->cluster_bits);
    uint64_t cs = 1ULL << h->cluster_bits;
    h->size = be64(buf + 24);
    if (h->size > MAX_IMAGE_SIZE)
        return vs_error(err, EINVAL, "qcow2 virtual size %llu is too large",
                        (unsigned long long)h->size);
    if (be32(buf + 32) != 0)
        return vs_error(err, ENOTSUP, "encrypted qcow2 images are not supported");
    h->l1_size = be32(buf + 36);
    h->l1_table_offset = be64(buf + 40);
    h->refcount_table_offset = be64(buf + 48);
    h->refcount_table_clusters = be32(buf + 56);
    h->nb_snapshots = be32(buf + 60);
    if (h->version == 3) {
        if (len < HDR_V3_LEN)
            return vs_error(err, EINVAL, "qcow2 v3 header truncated");
        h->incompatible_features = be64(buf + 72);
        h->compatible_features = be64(buf + 80);
        h->autoclear_features = be64(buf + 88);
        h->refcount_order = be32(buf + 96);
        h->header_length = be32(buf + 100);
        if (h->header_length < HDR_V3_LEN || h->header_length % 8 || h->header_length > cs ||
            h->header_length > len)
            return vs_error(err, EINVAL, "qcow2 header_length %u is invalid", h->header_length);
        if (h->header_length > HDR_V3_LEN && buf[104] != 0)
            return vs_error(err, ENOTSUP, "qcow2 compression type %u is not supported", buf[104]);
    } else {
        h->refcount_order = 4;
        h->header_length = HDR_V2_LEN;
    }
    if (h->refcount_order > 6)
        return vs_error(err, EINVAL, "qcow2 refcount_order %u is invalid", h->refcount_order);
    uint64_t unknown = h->incompatible_features & ~(INCOMPAT_DIRTY | INCOMPAT_CORRUPT);
    if (unknown & INCOMPAT_DATA_FILE)
        return vs_error(err, ENOTSUP, "qcow2 external data files are not supported");
    if (unknown & INCOMPAT_COMPRESSION)
        return vs_error(err, ENOTSUP, "qcow2 non-zlib compression is not supported");
    if (unknown & INCOMPAT_EXTL2)
        return vs_error(err, ENOTSUP, "qcow2 extended L2 entries are not supported");
    if (unknown)
        return vs_error(err, ENOTSUP, "qcow2 has unknown incompatible features 0x%llx",
                        (unsigned long long)unknown);

    /* Tables: aligned, inside the file, and big enough for the disk. */
    uint64_t l2_entries = cs / 8;
    uint64_t per_l1 = cs * l2_entries;
    uint64_t need_l1 = (h->size + per_l1 - 1) / per_l1;
    if (h->l1_size < need_l1)
        return vs_error(err, EINVAL, "qcow2 L1 table too small for the virtual size");
    if ((uint64_t)h->l1_size * 8 > MAX_L1_BYTES)
        return vs_error(err, EINVAL, "qcow2 L1 table too large");
    if (h->l1_size &&
        (h->l1_table_offset % cs || h->l1_table_offset == 0 || h->l1_table_offset > file_size ||
         file_size - h->l1_table_offset < (uint64_t)h->l1_size * 8))
        return vs_error(err, EINVAL, "qcow2 L1 table offset is invalid or past the end of file");
    if (h->refcount_table_clusters == 0 ||
        (uint64_t)h->refcount_table_clusters * cs > MAX_REFTABLE_BYTES ||
        h->refcount_table_offset % cs || h->refcount_table_offset == 0 ||
        h->refcount_table_offset > file_size ||
        file_size - h->refcount_table_offset < (uint64_t)h->refcount_table_clusters * cs)
        return vs_error(err, EINVAL,
                        "qcow2 refcount table offset is invalid or past the end of file");

    /* Header extensions: from header_length up to the backing name or the
     * end of the first cluster. */
    size_t end = (size_t)MIN((uint64_t)len, cs);
    if (backing_len) {
        if (backing_len >= sizeof(h->backing_file))
            return vs_error(err, EINVAL, "qcow2 backing file name too long");
        if (backing_off < h->header_length || backing_off > end || end - backing_off < backing_len)
            return vs_error(err, EINVAL, "qcow2 backing file name lies outside the header");
        memcpy(h->backing_file, buf + backing_off, backing_len);
        h->backing_file[backing_len] = 0;
        if (strlen(h->backing_file) != backing_len)
            return vs_error(err, EINVAL, "qcow2 backing file name contains NUL");
        end = (size_t)backing_off;
    }
    size_t pos = h->header_length;
    while (pos + 8 <= end) {
        uint32_t type = be32(buf + pos), elen = be32(buf + pos + 4);
        pos += 8;
        if (type == EXT_END)
            break;
        if (elen > end - pos)
            return vs_error(err, EINVAL, "qcow2 header extension 0x%x overruns the header", type);
        if (type == EXT_BACKING_FORMAT) {
            if (elen >= sizeof(h->backing_format))
                return vs_error(err, EINVAL, "qcow2 backing format name too long");
            memcpy(h->backing_format, buf + pos, elen);
            h->backing_format[elen] = 0;
        }
        uint64_t adv = ALIGN_UP((uint64_t)elen, 8);
        if (adv > end - pos)
            break;
        pos += (size_t)adv;
    }
    return 0;
}

/* ---- the open image ---- */

struct l2_slot {
    uint64_t off; /* host offset of the cached table, 0 = empty */
    uint64_t used;
    uint8_t *tab; /* one cluster, big-endian as on disk */
};

struct qcow2 {
    struct disk disk;
    pthread_mutex_t lock;
    int fd;
    char *path;
    struct qcow2_header h;
    uint64_t cs; /* cluster size */
    uint64_t l2_entries;
    uint64_t *l1; /* host order */
    uint64_t *rt; /* refcount table, host order (rw only) */
    uint64_t rt_entries;
    uint64_t file_end; /* next cluster to allocate */
    struct l2_slot l2c[L2_CACHE_SLOTS];
    uint64_t tick;
    uint8_t *cbuf;    /* one cluster of scratch for copy-on-write */
    uint8_t *zbuf;    /* decompressed cluster */
    uint64_t zbuf_vc; /* virtual cluster held in zbuf, or UINT64_MAX */
    struct qcow2 *bq; /* qcow2 backing file, or */
    int bfd;          /* raw backing file descriptor (-1 if none) */
    uint64_t bsize;   /* bytes readable from the backing file */
    bool sync_writes;
};

static const struct disk_ops qcow2_ops;
static int qcow2_push_overlay(struct disk *d, const char *overlay, vs_err *err);

static void qcow2_free(struct qcow2 *q)
{
    if (!q)
        return;
    if (q->fd >= 0)
        close(q->fd);
    if (q->bfd >= 0)
        close(q->bfd);
    qcow2_free(q->bq);
    for (int i = 0; i < L2_CACHE_SLOTS; i++)
        free(q->l2c[i].tab);
    free(q->l1);
    free(q->rt);
    free(q->cbuf);
    free(q->zbuf);
    free(q->path);
    pthread_mutex_destroy(&q->lock);
    free(q);
}

/* Resolve a backing file name the way QEMU does: relative to the directory
 * of the image that names it. */
static char *backing_path(const char *image, const char *name)
{
    if (name[0] == '/')
        return strdup(name);
    const char *slash = strrchr(image, '/');
    if (!slash)
        return strdup(name);
    char *p = NULL;
    if (asprintf(&p, "%.*s/%s", (int)(slash - image), image, name) < 0)
        return NULL;
    return p;
}

static int probe_file(const char *path, bool *is_qcow2, uint64_t *size, vs_err *err)
{
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return vs_error_errno(err, "%s", path);
    uint8_t hdr[HDR_V3_LEN];
    struct stat st;
    if (fstat(fd, &st) < 0)
        return vs_error_errno(err, "%s", path);
    ssize_t n = pread(fd, hdr, sizeof(hdr), 0);
    *is_qcow2 = n >= 32 && qcow2_probe(hdr, (size_t)n);
    *size = *is_qcow2 ? be64(hdr + 24) : (uint64_t)st.st_size;
    return 0;
}

static int qcow2_open_depth(const char *path, bool readonly, enum vm_disk_cache cache, int depth,
                            struct qcow2 **out, vs_err *err);

static int open_backing(struct qcow2 *q, enum vm_disk_cache cache, int depth, vs_err *err)
{
    cleanup_free char *bp = backing_path(q->path, q->h.backing_file);
    if (!bp)
        return vs_error(err, ENOMEM, "out of memory");
    const char *fmt = q->h.backing_format;
    bool is_qcow2;
    uint64_t bsize;
    if (probe_file(bp, &is_qcow2, &bsize, err) < 0)
        return vs_error_prefix(err, "backing file of %s: ", q->path);
    if (!fmt[0])
        fmt = is_qcow2 ? "qcow2" : "raw";
    if (!strcmp(fmt, "qcow2")) {
        if (qcow2_open_depth(bp, true, cache, depth + 1, &q->bq, err) < 0)
            return vs_error_prefix(err, "backing file of %s: ", q->path);
        q->bsize = q->bq->h.size;
        return 0;
    }
    if (strcmp(fmt, "raw"))
        return vs_error(err, ENOTSUP, "%s: backing format '%s' is not supported", q->path, fmt);
    if (is_qcow2)
        vs_warn("%s: backing file %s is qcow2 but declared raw", q->path, bp);
    q->bfd = open(bp, O_RDONLY | O_CLOEXEC);
    if (q->bfd < 0)
        return vs_error_errno(err, "backing file of %s: %s", q->path, bp);
    q->bsize = bsize;
    return 0;
}

static int qcow2_open_depth(const char *path, bool readonly, enum vm_disk_cache cache, int depth,
                            struct qcow2 **out, vs_err *err)
{
    if (depth >= QCOW2_MAX_CHAIN)
        return vs_error(err, ELOOP, "%s: backing chain deeper than %d", path, QCOW2_MAX_CHAIN);
    cleanup_free uint8_t *hbuf = NULL;
    struct qcow2 *q = calloc(1, sizeof(*q));
    if (!q)
        return vs_error(err, ENOMEM, "out of memory");
    pthread_mutex_init(&q->lock, NULL);
    q->bfd = -1;
    q->zbuf_vc = UINT64_MAX;
    q->path = strdup(path);
    q->fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (q->fd < 0) {
        vs_error_errno(err, "%s", path);
        goto fail;
    }
    struct stat st;
    if (fstat(q->fd, &st) < 0) {
        vs_error_errno(err, "%s", path);
        goto fail;
    }
    size_t hlen = (size_t)MIN((uint64_t)st.st_size, 1ULL << 21);
    hbuf = malloc(hlen ? hlen : 1);
    int r;
    if (!hbuf || !q->path) {
        vs_error(err, ENOMEM, "out of memory");
        goto fail;
    }
    if ((r = vs_pread_full(q->fd, hbuf, hlen, 0)) < 0) {
        vs_error(err, -r, "%s: cannot read header: %s", path, strerror(-r));
        goto fail;
    }
    if (qcow2_header_parse(hbuf, hlen, (uint64_t)st.st_size, &q->h, err) < 0) {
        vs_error_prefix(err, "%s: ", path);
        goto fail;
    }
    q->cs = 1ULL << q->h.cluster_bits;
    q->l2_entries = q->cs / 8;
    if (!readonly) {
        const char *why = NULL;
        if (q->h.nb_snapshots)
            why = "it has internal snapshots";
        else if (q->h.incompatible_features & INCOMPAT_CORRUPT)
            why = "it is marked corrupt";
        else if (q->h.incompatible_features & INCOMPAT_DIRTY)
            why = "it is marked dirty (run qemu-img check -r all)";
        else if (q->h.refcount_order != 4)
            why = "its refcounts are not 16-bit";
        if (why) {
            vs_error(err, ENOTSUP, "%s: cannot open for writing: %s", path, why);
            goto fail;
        }
    }
    q->l1 = calloc(q->h.l1_size ? q->h.l1_size : 1, 8);
    q->cbuf = malloc(q->cs);
    q->zbuf = malloc(q->cs);
    if (!q->l1 || !q->cbuf || !q->zbuf) {
        vs_error(err, ENOMEM, "out of memory");
        goto fail;
    }
    if (q->h.l1_size) {
        if ((r = vs_pread_full(q->fd, q->l1, (size_t)q->h.l1_size * 8, q->h.l1_table_offset)) < 0) {
            vs_error(err, -r, "%s: cannot read the L1 table", path);
            goto fail;
        }
        for (uint32_t i = 0; i < q->h.l1_size; i++)
            q->l1[i] = be64((uint8_t *)&q->l1[i]);
    }
    if (!readonly) {
        q->rt_entries = q->h.refcount_table_clusters * q->cs / 8;
        q->rt = malloc(q->rt_entries * 8);
        if (!q->rt) {
            vs_error(err, ENOMEM, "out of memory");
            goto fail;
        }
        if ((r = vs_pread_full(q->fd, q->rt, q->rt_entries * 8, q->h.refcount_table_offset)) < 0) {
            vs_error(err, -r, "%s: cannot read the refcount table", path);
            goto fail;
        }
        for (uint64_t i = 0; i < q->rt_entries; i++) {
            q->rt[i] = be64((uint8_t *)&q->rt[i]);
            if (q->rt[i] % q->cs) {
                vs_error(err, EINVAL, "%s: refcount block %llu is misaligned", path,
                         (unsigned long long)i);
                goto fail;
            }
        }
        /* Feature bits we do not maintain (e.g. persistent bitmaps) must be
         * cleared before the first write, as the spec requires. */
        if (q->h.version == 3 && q->h.autoclear_features) {
            uint8_t z[8] = {0};
            if ((r = vs_pwrite_full(q->fd, z, 8, 88)) < 0) {
                vs_error(err, -r, "%s: cannot update the header", path);
                goto fail;
            }
            q->h.autoclear_features = 0;
        }
    }
    q->file_end = ALIGN_UP((uint64_t)st.st_size, q->cs);
    if (q->h.backing_file[0] && open_backing(q, cache, depth, err) < 0)
        goto fail;
    q->sync_writes = false;
    /* the absolute path: an overlay pushed on top names it as backing */
    if (!readonly && depth == 0) {
        char abs[PATH_MAX];
        if (realpath(path, abs)) {
            free(q->path);
            q->path = strdup(abs);
        }
    }
    q->disk.ops = &qcow2_ops;
    q->disk.size = q->h.size;
    q->disk.readonly = readonly;
    q->disk.cache = cache;
    q->disk.direct_fd = -1;
    q->disk.path = q->path;
    q->disk.priv = q;
    *out = q;
    return 0;
fail:
    qcow2_free(q);
    return -1;
}

int qcow2_open(const char *path, bool readonly, enum vm_disk_cache cache, struct disk **out,
               vs_err *err)
{
    struct qcow2 *q;
    if (qcow2_open_depth(path, readonly, cache, 0, &q, err) < 0)
        return -1;
    *out = &q->disk;
    return 0;
}

/* ---- metadata ---- */

static bool host_offset_ok(struct qcow2 *q, uint64_t off)
{
    return off && off % q->cs == 0 && off < q->file_end;
}

/* The L2 table at host offset off (cached). */
static int l2_get(struct qcow2 *q, uint64_t off, uint8_t **tab)
{
    struct l2_slot *victim = &q->l2c[0];
    for (int i = 0; i < L2_CACHE_SLOTS; i++) {
        struct l2_slot *s = &q->l2c[i];
        if (s->off == off && s->tab) {
            s->used = ++q->tick;
            *tab = s->tab;
            return 0;
        }
        if (s->used < victim->used)
            victim = s;
    }
    if (!host_offset_ok(q, off))
        return -EIO;
    if (!victim->tab && !(victim->tab = malloc(q->cs)))
        return -ENOMEM;
    victim->off = 0;
    int r = vs_pread_full(q->fd, victim->tab, q->cs, off);
    if (r < 0)
        return r;
    victim->off = off;
    victim->used = ++q->tick;
    *tab = victim->tab;
    return 0;
}

/* L2 entry of virtual cluster vc; 0 if unallocated. */
static int l2_entry(struct qcow2 *q, uint64_t vc, uint64_t *entry)
{
    uint64_t l1i = vc / q->l2_entries;
    *entry = 0;
    if (l1i >= q->h.l1_size)
        return -EIO;
    uint64_t l2off = q->l1[l1i] & OFFSET_MASK;
    if (!l2off)
        return 0;
    uint8_t *tab;
    int r = l2_get(q, l2off, &tab);
    if (r < 0)
        return r;
    *entry = be64(tab + (vc % q->l2_entries) * 8);
    return 0;
}

static int refcount_add(struct qcow2 *q, uint64_t off, int delta);

static int alloc_zeroed(struct qcow2 *q, uint64_t *out)
{
    /* Not q->cbuf: a copy-on-write may be assembling a cluster there. */
    cleanup_free uint8_t *zero = calloc(1, q->cs);
    if (!zero)
        return -ENOMEM;
    uint64_t off = q->file_end;
    q->file_end += q->cs;
    int r = vs_pwrite_full(q->fd, zero, q->cs, off);
    if (r < 0)
        return r;
    *out = off;
    return 0;
}

static int refcount_add(struct qcow2 *q, uint64_t off, int delta)
{
    uint64_t per_block = q->cs / 2; /* 16-bit refcounts */
    uint64_t ci = off >> q->h.cluster_bits;
    uint64_t bi = ci / per_block;
    if (bi >= q->rt_entries)
        return -ENOSPC; /* refcount table full: growing it is not supported */
    int r;
    if (!q->rt[bi]) {
        /* The new refcount block counts itself (or, if it lands in a
         * different block's range, the recursion allocates that one). */
        uint64_t rb;
        if ((r = alloc_zeroed(q, &rb)) < 0)
            return r;
        uint8_t e[8];
        put_be64(e, rb);
        if ((r = vs_pwrite_full(q->fd, e, 8, q->h.refcount_table_offset + bi * 8)) < 0)
            return r;
        q->rt[bi] = rb;
        if ((r = refcount_add(q, rb, 1)) < 0)
            return r;
    }
    uint64_t at = q->rt[bi] + (ci % per_block) * 2;
    uint8_t v[2];
    if ((r = vs_pread_full(q->fd, v, 2, at)) < 0)
        return r;
    int n = be16(v) + delta;
    if (n < 0 || n > 0xffff)
        return -EIO;
    put_be16(v, (uint16_t)n);
    return vs_pwrite_full(q->fd, v, 2, at);
}

static int alloc_cluster(struct qcow2 *q, uint64_t *out)
{
    uint64_t off = q->file_end;
    q->file_end += q->cs;
    int r = refcount_add(q, off, 1);
    if (r < 0)
        return r;
    *out = off;
    return 0;
}

/* ---- data path ---- */

static int backing_read(struct qcow2 *q, uint64_t off, uint8_t *buf, size_t n);

static int decompress_cluster(struct qcow2 *q, uint64_t vc, uint64_t entry)
{
    if (q->zbuf_vc == vc)
        return 0;
    unsigned x = 62 - (q->h.cluster_bits - 8);
    uint64_t host = entry & ((1ULL << x) - 1);
    uint64_t sectors = ((entry & ~ENTRY_COPIED & ~ENTRY_COMPRESSED) >> x) + 1;
    uint64_t clen = sectors * 512 - (host & 511);
    if (host >= q->file_end)
        return -EIO;
    clen = MIN(clen, q->file_end - host);
    clen = MIN(clen, 2 * q->cs);
    cleanup_free uint8_t *in = malloc(clen);
    if (!in)
        return -ENOMEM;
    ssize_t got = pread(q->fd, in, clen, (off_t)host);
    if (got <= 0)
        return -EIO;
    z_stream zs = {0};
    if (inflateInit2(&zs, -12) != Z_OK)
        return -EIO;
    zs.next_in = in;
    zs.avail_in = (uInt)got;
    zs.next_out = q->zbuf;
    zs.avail_out = (uInt)q->cs;
    int zr = inflate(&zs, Z_FINISH);
    inflateEnd(&zs);
    if ((zr != Z_STREAM_END && zr != Z_BUF_ERROR) || zs.avail_out)
        return -EIO;
    q->zbuf_vc = vc;
    return 0;
}

/* Read n bytes at virtual offset off, all inside one cluster. */
static int read_chunk(struct qcow2 *q, uint64_t off, uint8_t *buf, size_t n)
{
    uint64_t vc = off >> q->h.cluster_bits, in = off & (q->cs - 1);
    uint64_t e;
    int r = l2_entry(q, vc, &e);
    if (r < 0)
        return r;
    if (e & ENTRY_COMPRESSED) {
        if ((r = decompress_cluster(q, vc, e)) < 0)
            return r;
        memcpy(buf, q->zbuf + in, n);
        return 0;
    }
    if (q->h.version == 3 && (e & ENTRY_ZERO)) {
        memset(buf, 0, n);
        return 0;
    }
    uint64_t host = e & OFFSET_MASK;
    if (host) {
        if (!host_offset_ok(q, host))
            return -EIO;
        return vs_pread_full(q->fd, buf, n, host + in);
    }
    return backing_read(q, off, buf, n);
}

static int backing_read(struct qcow2 *q, uint64_t off, uint8_t *buf, size_t n)
{
    size_t have = 0;
    if (off < q->bsize)
        have = (size_t)MIN((uint64_t)n, q->bsize - off);
    memset(buf + have, 0, n - have);
    if (!have)
        return 0;
    if (q->bq) {
        pthread_mutex_lock(&q->bq->lock);
        int r = 0;
        for (size_t done = 0; done < have && r == 0;) {
            uint64_t o = off + done;
            size_t c = (size_t)MIN((uint64_t)(have - done), q->bq->cs - (o & (q->bq->cs - 1)));
            r = read_chunk(q->bq, o, buf + done, c);
            done += c;
        }
        pthread_mutex_unlock(&q->bq->lock);
        return r;
    }
    if (q->bfd >= 0) {
        int r = vs_pread_full(q->bfd, buf, have, off);
        return r == -EIO ? (memset(buf, 0, have), 0) : r; /* a shrunken raw file reads zero */
    }
    memset(buf, 0, have);
    return 0;
}

/* The L2 table covering virtual cluster vc, allocated if absent. */
static int l2_for_write(struct qcow2 *q, uint64_t vc, uint64_t *l2off_out, uint8_t **tab)
{
    uint64_t l1i = vc / q->l2_entries;
    int r;
    if (l1i >= q->h.l1_size)
        return -EIO;
    uint64_t l1e = q->l1[l1i];
    uint64_t l2off = l1e & OFFSET_MASK;
    if (!l2off) {
        if ((r = alloc_cluster(q, &l2off)) < 0)
            return r;
        memset(q->cbuf, 0, q->cs);
        if ((r = vs_pwrite_full(q->fd, q->cbuf, q->cs, l2off)) < 0)
            return r;
        uint8_t e[8];
        put_be64(e, l2off | ENTRY_COPIED);
        if ((r = vs_pwrite_full(q->fd, e, 8, q->h.l1_table_offset + l1i * 8)) < 0)
            return r;
        q->l1[l1i] = l2off | ENTRY_COPIED;
    } else if (!(l1e & ENTRY_COPIED)) {
        return -EIO; /* a shared L2 table: only internal snapshots make those */
    }
    *l2off_out = l2off;
    return l2_get(q, l2off, tab);
}

/* Drop the reference compressed data holds on each host cluster it spans. */
static int release_compressed(struct qcow2 *q, uint64_t vc, uint64_t e)
{
    unsigned x = 62 - (q->h.cluster_bits - 8);
    uint64_t chost = e & ((1ULL << x) - 1);
    uint64_t sectors = ((e & ~ENTRY_COPIED & ~ENTRY_COMPRESSED) >> x) + 1;
    uint64_t first = chost & ~(q->cs - 1);
    uint64_t last = (chost + sectors * 512 - (chost & 511) - 1) & ~(q->cs - 1);
    int r;
    for (uint64_t c = first; c <= last; c += q->cs)
        if ((r = refcount_add(q, c, -1)) < 0)
            return r;
    if (q->zbuf_vc == vc)
        q->zbuf_vc = UINT64_MAX;
    return 0;
}

static int write_chunk(struct qcow2 *q, uint64_t off, const uint8_t *buf, size_t n)
{
    uint64_t vc = off >> q->h.cluster_bits, in = off & (q->cs - 1);
    uint64_t l2i = vc % q->l2_entries;
    uint64_t l2off;
    uint8_t *tab;
    int r;
    if ((r = l2_for_write(q, vc, &l2off, &tab)) < 0)
        return r;
    uint64_t e = be64(tab + l2i * 8);
    uint64_t host = e & OFFSET_MASK;
    bool compressed = e & ENTRY_COMPRESSED;
    if (!compressed && host && (e & ENTRY_COPIED) && !(q->h.version == 3 && (e & ENTRY_ZERO))) {
        if (!host_offset_ok(q, host))
            return -EIO;
        return vs_pwrite_full(q->fd, buf, n, host + in);
    }
    /* Copy-on-write: assemble the whole cluster from what it reads as now. */
    if (n != q->cs && (r = read_chunk(q, vc << q->h.cluster_bits, q->cbuf, q->cs)) < 0)
        return r;
    memcpy(q->cbuf + in, buf, n);
    uint64_t target;
    if (!compressed && host && (e & ENTRY_COPIED)) {
        target = host; /* a preallocated zero cluster */
        if (!host_offset_ok(q, target))
            return -EIO;
    } else if ((r = alloc_cluster(q, &target)) < 0) {
        return r;
    }
    if ((r = vs_pwrite_full(q->fd, q->cbuf, q->cs, target)) < 0)
        return r;
    uint8_t ne[8];
    put_be64(ne, target | ENTRY_COPIED);
    if ((r = vs_pwrite_full(q->fd, ne, 8, l2off + l2i * 8)) < 0)
        return r;
    memcpy(tab + l2i * 8, ne, 8);
    if (compressed)
        return release_compressed(q, vc, e);
    return 0;
}

/* Make whole cluster vc read as zeros without writing data: the v3 zero
 * flag (an allocated cluster keeps its space for later writes). */
static int zero_cluster(struct qcow2 *q, uint64_t vc)
{
    uint64_t l2i = vc % q->l2_entries, l2off;
    uint8_t *tab;
    int r;
    if ((r = l2_for_write(q, vc, &l2off, &tab)) < 0)
        return r;
    uint64_t e = be64(tab + l2i * 8);
    uint64_t ne = ENTRY_ZERO;
    if (!(e & ENTRY_COMPRESSED) && (e & OFFSET_MASK) && (e & ENTRY_COPIED))
        ne |= (e & OFFSET_MASK) | ENTRY_COPIED;
    uint8_t b[8];
    put_be64(b, ne);
    if ((r = vs_pwrite_full(q->fd, b, 8, l2off + l2i * 8)) < 0)
        return r;
    memcpy(tab + l2i * 8, b, 8);
    if (e & ENTRY_COMPRESSED)
        return release_compressed(q, vc, e);
    return 0;
}

static int zero_range(struct qcow2 *q, uint64_t off, uint64_t len, bool partial_too)
{
    if (q->disk.readonly)
        return -EROFS;
    if (off > q->h.size || len > q->h.size - off)
        return -EIO;
    int r = 0;
    pthread_mutex_lock(&q->lock);
    while (len && r == 0) {
        uint64_t in = off & (q->cs - 1);
        uint64_t c = MIN(len, q->cs - in);
        if (c == q->cs && q->h.version == 3) {
            r = zero_cluster(q, off >> q->h.cluster_bits);
        } else if (partial_too) {
            cleanup_free uint8_t *z = calloc(1, (size_t)c);
            r = z ? write_chunk(q, off, z, (size_t)c) : -ENOMEM;
        }
        off += c;
        len -= c;
    }
    pthread_mutex_unlock(&q->lock);
    return r;
}

static int qcow2_write_zeroes(struct disk *d, uint64_t off, uint64_t len, bool may_unmap)
{
    return zero_range(d->priv, off, len, true);
}

/* Discarded ranges may read as anything: whole clusters become zero
 * clusters, partial ones are left alone. */
static int qcow2_discard(struct disk *d, uint64_t off, uint64_t len)
{
    return zero_range(d->priv, off, len, false);
}

typedef int (*chunk_fn)(struct qcow2 *q, uint64_t off, uint8_t *buf, size_t n);

static int for_each_chunk(struct qcow2 *q, uint64_t off, const struct iovec *iov, int iovcnt,
                          chunk_fn fn)
{
    int r = 0;
    pthread_mutex_lock(&q->lock);
    for (int i = 0; i < iovcnt && r == 0; i++) {
        uint8_t *p = iov[i].iov_base;
        size_t left = iov[i].iov_len;
        while (left && r == 0) {
            size_t c = (size_t)MIN((uint64_t)left, q->cs - (off & (q->cs - 1)));
            if (off + c > q->h.size) {
                r = -EIO;
                break;
            }
            r = fn(q, off, p, c);
            off += c;
            p += c;
            left -= c;
        }
    }
    pthread_mutex_unlock(&q->lock);
    return r;
}

static int write_chunk_fn(struct qcow2 *q, uint64_t off, uint8_t *buf, size_t n)
{
    return write_chunk(q, off, buf, n);
}

static int qcow2_read(struct disk *d, uint64_t off, const struct iovec *iov, int iovcnt)
{
    return for_each_chunk(d->priv, off, iov, iovcnt, read_chunk);
}

static int qcow2_write(struct disk *d, uint64_t off, const struct iovec *iov, int iovcnt)
{
    struct qcow2 *q = d->priv;
    if (d->readonly)
        return -EROFS;
    return for_each_chunk(q, off, iov, iovcnt, write_chunk_fn);
}

/* 1 when a cluster of [off, off + len) is this image's own (data, a zero
 * cluster or a compressed one), 0 when all of it reads through to the
 * backing file (or as zeroes without one). */
static int qcow2_allocated(struct disk *d, uint64_t off, uint64_t len)
{
    struct qcow2 *q = d->priv;
    int r = 0;
    pthread_mutex_lock(&q->lock);
    for (uint64_t vc = off >> q->h.cluster_bits;
         r == 0 && len && vc << q->h.cluster_bits < off + len; vc++) {
        uint64_t e;
        r = l2_entry(q, vc, &e);
        if (r == 0 && e)
            r = 1;
    }
    pthread_mutex_unlock(&q->lock);
    return r;
}

static int qcow2_flush(struct disk *d)
{
    struct qcow2 *q = d->priv;
    if (d->readonly || d->cache == VM_CACHE_UNSAFE)
        return 0;
    return fdatasync(q->fd) < 0 ? -errno : 0;
}

static void qcow2_close(struct disk *d)
{
    qcow2_free(d->priv);
}

static const struct disk_ops qcow2_ops = {
    .read = qcow2_read,
    .write = qcow2_write,
    .flush = qcow2_flush,
    .discard = qcow2_discard,
    .write_zeroes = qcow2_write_zeroes,
    .push_overlay = qcow2_push_overlay,
    .allocated = qcow2_allocated,
    .close = qcow2_close,
};

bool qcow2_is(const struct disk *d)
{
    return d && d->ops == &qcow2_ops;
}

int qcow2_backing_of(struct disk *d, char **path, const char **format)
{
    *path = NULL;
    *format = NULL;
    if (!qcow2_is(d))
        return 0;
    struct qcow2 *q = d->priv;
    if (!q->h.backing_file[0])
        return 0;
    *path = strdup(q->h.backing_file);
    if (!*path)
        return -ENOMEM;
    *format = q->bq ? "qcow2" : "raw";
    return 0;
}

/* ---- creation ---- */

int qcow2_create(const char *path, uint64_t size, const char *backing, const char *backing_format,
                 vs_err *err)
{
    const uint64_t cs = 1ULL << CREATE_CLUSTER_BITS;
    if (backing) {
        cleanup_free char *bp = backing_path(path, backing);
        if (!bp)
            return vs_error(err, ENOMEM, "out of memory");
        bool is_qcow2;
        uint64_t bsize;
        if (probe_file(bp, &is_qcow2, &bsize, err) < 0)
            return vs_error_prefix(err, "backing file: ");
        if (!backing_format)
            backing_format = is_qcow2 ? "qcow2" : "raw";
        if (strcmp(backing_format, "raw") && strcmp(backing_format, "qcow2"))
            return vs_error(err, EINVAL, "backing format '%s' is not raw or qcow2", backing_format);
        if (!size)
            size = bsize;
        if (strlen(backing) > 1023)
            return vs_error(err, EINVAL, "backing file name too long");
    }
    if (size > MAX_IMAGE_SIZE)
        return vs_error(err, EINVAL, "%s: size too large", path);
    uint64_t per_l1 = cs * (cs / 8);
    uint64_t l1_size = (size + per_l1 - 1) / per_l1;
    uint64_t l1_clusters = MAX(1, ALIGN_UP(l1_size * 8, cs) / cs);
    uint64_t nclusters = 3 + l1_clusters;

    cleanup_free uint8_t *c = calloc(1, cs);
    if (!c)
        return vs_error(err, ENOMEM, "out of memory");
    put_be32(c + 0, QCOW2_MAGIC);
    put_be32(c + 4, 3);
    put_be32(c + 20, CREATE_CLUSTER_BITS);
    put_be64(c + 24, size);
    put_be32(c + 36, (uint32_t)l1_size);
    put_be64(c + 40, 3 * cs);
    put_be64(c + 48, cs);
    put_be32(c + 56, 1);
    put_be32(c + 96, 4);
    put_be32(c + 100, 112); /* v3 header plus compression type, padded */
    size_t pos = 112;
    if (backing) {
        size_t fl = strlen(backing_format);
        put_be32(c + pos, EXT_BACKING_FORMAT);
        put_be32(c + pos + 4, (uint32_t)fl);
        memcpy(c + pos + 8, backing_format, fl);
        pos += 8 + ALIGN_UP(fl, 8);
    }
    pos += 8; /* end-of-extensions marker: type 0, length 0 */
    if (backing) {
        put_be64(c + 8, pos);
        put_be32(c + 16, (uint32_t)strlen(backing));
        memcpy(c + pos, backing, strlen(backing));
    }

    cleanup_close int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return vs_error_errno(err, "%s", path);
    int r = vs_pwrite_full(fd, c, cs, 0);
    /* refcount table (cluster 1) -> one refcount block (cluster 2) */
    memset(c, 0, cs);
    put_be64(c, 2 * cs);
    if (r == 0)
        r = vs_pwrite_full(fd, c, cs, cs);
    memset(c, 0, cs);
    for (uint64_t i = 0; i < nclusters; i++)
        put_be16(c + i * 2, 1);
    if (r == 0)
        r = vs_pwrite_full(fd, c, cs, 2 * cs);
    memset(c, 0, cs);
    for (uint64_t i = 0; i < l1_clusters && r == 0; i++)
        r = vs_pwrite_full(fd, c, cs, (3 + i) * cs);
    if (r == 0 && fsync(fd) < 0)
        r = -errno;
    if (r < 0) {
        unlink(path);
        return vs_error(err, -r, "%s: %s", path, strerror(-r));
    }
    return 0;
}

/* disk_ops.push_overlay: the device keeps its struct disk; its state
 * moves to a new overlay on top of this image. */
static int qcow2_push_overlay(struct disk *d, const char *overlay, vs_err *err)
{
    struct qcow2 *q = d->priv;
    char abs[PATH_MAX];
    snprintf(abs, sizeof(abs), "%s", q->path);
    pthread_mutex_lock(&q->lock);
    int rc = -1;
    struct qcow2 *n = NULL;
    if (fdatasync(q->fd) < 0) {
        vs_error_errno(err, "disk %s", abs);
        goto out;
    }
    if (qcow2_create(overlay, q->h.size, abs, "qcow2", err) < 0)
        goto out;
    if (qcow2_open_depth(overlay, false, q->disk.cache, 1, &n, err) < 0) {
        unlink(overlay);
        goto out;
    }
    /* The device keeps its struct disk pointer: move the new overlay's
     * state into q and the old image's into n, then close n (the overlay
     * has its own read-only handle on the old image). */
    size_t from = offsetof(struct qcow2, fd);
    uint8_t tmp[sizeof(struct qcow2)];
    memcpy(tmp, (uint8_t *)q + from, sizeof(*q) - from);
    memcpy((uint8_t *)q + from, (uint8_t *)n + from, sizeof(*q) - from);
    memcpy((uint8_t *)n + from, tmp, sizeof(*q) - from);
    q->disk.path = q->path;
    n->disk.path = n->path;
    char nabs[PATH_MAX];
    if (realpath(overlay, nabs)) {
        free(q->path);
        q->path = strdup(nabs);
        q->disk.path = q->path;
    }
    rc = 0;
out:
    pthread_mutex_unlock(&q->lock);
    if (n)
        qcow2_free(n);
    return rc;
}
