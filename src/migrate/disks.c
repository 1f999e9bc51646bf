/* Disks moving with a live migration: see disks.h. */
#include "migrate/disks.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include "block/qcow2.h"
#include "migrate/wire.h"
#include "virtio/devices.h"
#include "virtio/machine_glue.h"

/* ---- source ---- */

struct mig_disk_src {
    struct virtio_dev *dev;
    struct disk *disk;
    unsigned index;
    uint64_t size;
    size_t words;
    uint64_t *pending; /* chunks to send again */
    char *backing;     /* qcow2 overlay: its backing file (only its own clusters move) */
    const char *backing_format;
};

struct mig_disks {
    unsigned n;
    struct mig_disk_src d[VM_MAX_DISKS];
    uint8_t *buf; /* one chunk, aligned for O_DIRECT images */
};

static int add_disk(struct virtio_dev *dev, void *opaque, vs_err *err)
{
    struct mig_disks *md = opaque;
    unsigned index;
    struct disk *disk = virtio_blk_disk(dev, &index);
    if (!disk || disk->readonly)
        return 0; /* read-only disks are shared: the same path on both hosts */
    if (disk->size > MIG_DISK_MAX_SIZE || index >= VM_MAX_DISKS)
        return vs_error(err, EFBIG, "disk %s is too large to move", disk->path);
    struct mig_disk_src *s = &md->d[md->n];
    *s = (struct mig_disk_src){.dev = dev, .disk = disk, .index = index, .size = disk->size};
    int r = qcow2_backing_of(disk, &s->backing, &s->backing_format);
    if (r < 0)
        return vs_error(err, -r, "disk %s: its backing file: %s", disk->path, strerror(-r));
    md->n++;
    if (virtio_blk_track_start(dev, MIG_DISK_CHUNK_SHIFT, &s->words, err) < 0)
        return -1;
    s->pending = calloc(s->words ? s->words : 1, 8);
    if (!s->pending)
        return vs_error(err, ENOMEM, "out of memory for a disk's dirty map");
    return 0;
}

int mig_disks_start(struct vm_control *ctl, struct mig_disks **out, vs_err *err)
{
    *out = NULL;
    struct virtio_set *devs = ctl->devices ? ctl->devices(ctl->machine) : NULL;
    struct mig_disks *md = calloc(1, sizeof(*md));
    if (!md || posix_memalign((void **)&md->buf, 4096, MIG_DISK_CHUNK)) {
        free(md);
        return vs_error(err, ENOMEM, "out of memory");
    }
    if (virtio_set_foreach(devs, add_disk, md, err) < 0) {
        mig_disks_stop(md);
        return -1;
    }
    if (md->n == 0) {
        mig_disks_stop(md);
        return vs_error(err, EINVAL, "--copy-disks: this VM has no writable disk");
    }
    *out = md;
    return 0;
}

json_t *mig_disks_hello(const struct mig_disks *md)
{
    json_t *a = json_array();
    for (unsigned i = 0; md && i < md->n; i++) {
        const struct mig_disk_src *s = &md->d[i];
        json_t *j = json_pack("{s:i, s:I, s:s}", "index", (int)s->index, "size",
                              (json_int_t)s->size, "format", qcow2_is(s->disk) ? "qcow2" : "raw");
        if (s->backing) {
            json_object_set_new(j, "backing", json_string(s->backing));
            json_object_set_new(j, "backing_format", json_string(s->backing_format));
        }
        json_array_append_new(a, j);
    }
    return a;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* Chunk c of s as it reads now: DISK with its bytes, or DISK_ZERO (bulk:
 * zero chunks of a fresh image need nothing). */
static int send_chunk(struct mig_disks *md, struct mig_disk_src *s, uint64_t c, bool bulk,
                      mig_disk_send_fn send, void *opaque, vs_err *err)
{
    uint64_t off = c << MIG_DISK_CHUNK_SHIFT;
    if (off >= s->size)
        return 0;
    uint64_t len = s->size - off < MIG_DISK_CHUNK ? s->size - off : MIG_DISK_CHUNK;
    if (bulk && s->disk->ops->allocated) {
        int a = s->disk->ops->allocated(s->disk, off, len);
        if (a < 0)
            return vs_error(err, -a, "disk %s: reading its map: %s", s->disk->path, strerror(-a));
        if (a == 0)
            return 0; /* the backing file's (both hosts have it), or zeroes */
    }
    struct iovec iov = {.iov_base = md->buf, .iov_len = (size_t)len};
    int r = disk_read(s->disk, off, &iov, 1);
    if (r < 0)
        return vs_error(err, -r, "disk %s: read at %llu: %s", s->disk->path,
                        (unsigned long long)off, strerror(-r));
    uint64_t where = (uint64_t)s->index << MIG_DISK_INDEX_SHIFT | off;
    if (all_zero(md->buf, (size_t)len))
        return bulk && !s->backing ? 0 : send(opaque, MIG_DISK_ZERO, where, NULL, len, err);
    return send(opaque, MIG_DISK, where, md->buf, len, err);
}

int mig_disks_send_all(struct mig_disks *md, mig_disk_send_fn send, void *opaque, vs_err *err)
{
    for (unsigned i = 0; md && i < md->n; i++) {
        struct mig_disk_src *s = &md->d[i];
        uint64_t chunks = (s->size + MIG_DISK_CHUNK - 1) >> MIG_DISK_CHUNK_SHIFT;
        for (uint64_t c = 0; c < chunks; c++)
            if (send_chunk(md, s, c, true, send, opaque, err) < 0)
                return -1;
    }
    return 0;
}

int mig_disks_fetch(struct mig_disks *md, uint64_t *pending, vs_err *err)
{
    uint64_t n = 0;
    for (unsigned i = 0; md && i < md->n; i++) {
        struct mig_disk_src *s = &md->d[i];
        if (s->disk->size != s->size)
            return vs_error(err, EBUSY, "disk %s was resized during the migration", s->disk->path);
        virtio_blk_track_fetch(s->dev, s->pending, s->words);
        for (size_t k = 0; k < s->words; k++)
            n += (uint64_t)__builtin_popcountll(s->pending[k]);
    }
    *pending = n * MIG_DISK_CHUNK;
    return 0;
}

int mig_disks_send_dirty(struct mig_disks *md, mig_disk_send_fn send, void *opaque, vs_err *err)
{
    for (unsigned i = 0; md && i < md->n; i++) {
        struct mig_disk_src *s = &md->d[i];
        for (size_t k = 0; k < s->words; k++)
            while (s->pending[k]) {
                unsigned b = (unsigned)__builtin_ctzll(s->pending[k]);
                if (send_chunk(md, s, (uint64_t)k * 64 + b, false, send, opaque, err) < 0)
                    return -1;
                s->pending[k] &= s->pending[k] - 1;
            }
    }
    return 0;
}

void mig_disks_stop(struct mig_disks *md)
{
    if (!md)
        return;
    for (unsigned i = 0; i < md->n; i++) {
        virtio_blk_track_stop(md->d[i].dev);
        free(md->d[i].pending);
        free(md->d[i].backing);
    }
    free(md->buf);
    free(md);
}

/* ---- destination ---- */

int mig_disks_in_parse(struct mig_disks_in *di, const json_t *disks, const struct vm_config *cfg,
                       vs_err *err)
{
    memset(di, 0, sizeof(*di));
    if (!disks)
        return 0;
    if (!json_is_array(disks) || json_array_size(disks) > cfg->ndisks)
        return vs_error(err, EPROTO, "migration HELLO: bad disk list");
    size_t i;
    json_t *j;
    json_array_foreach(disks, i, j)
    {
        json_int_t index = json_integer_value(json_object_get(j, "index"));
        json_int_t size = json_integer_value(json_object_get(j, "size"));
        const char *fmt = json_string_value(json_object_get(j, "format"));
        const char *backing = json_string_value(json_object_get(j, "backing"));
        const char *bfmt = json_string_value(json_object_get(j, "backing_format"));
        if (index < 0 || (unsigned)index >= cfg->ndisks || cfg->disks[index].readonly ||
            size <= 0 || (uint64_t)size > MIG_DISK_MAX_SIZE || !fmt ||
            (strcmp(fmt, "raw") && strcmp(fmt, "qcow2")) || (backing && strcmp(fmt, "qcow2")) ||
            (backing &&
             (backing[0] != '/' || !bfmt || (strcmp(bfmt, "raw") && strcmp(bfmt, "qcow2")))))
            return vs_error(err, EPROTO, "migration HELLO: disk %zu is invalid", i);
        for (unsigned k = 0; k < di->n; k++)
            if (di->d[k].index == (unsigned)index)
                return vs_error(err, EPROTO, "migration HELLO: disk %lld named twice",
                                (long long)index);
        struct mig_disk_in *d = &di->d[di->n++];
        d->index = (unsigned)index;
        d->size = (uint64_t)size;
        snprintf(d->format, sizeof(d->format), "%s", fmt);
        if (backing && (!(d->backing = strdup(backing)) || !(d->backing_format = strdup(bfmt))))
            return vs_error(err, ENOMEM, "out of memory");
    }
    if (di->n && posix_memalign((void **)&di->buf, 4096, MIG_DISK_CHUNK))
        return vs_error(err, ENOMEM, "out of memory");
    return 0;
}

static int create_one(struct mig_disk_in *d, vs_err *err)
{
    if (!strcmp(d->format, "qcow2"))
        return qcow2_create(d->path, d->size, d->backing, d->backing_format, err);
    int fd = open(d->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return vs_error_errno(err, "disk %s", d->path);
    int rc = ftruncate(fd, (off_t)d->size) < 0 ? vs_error_errno(err, "disk %s", d->path) : 0;
    close(fd);
    return rc;
}

/* path (absolute, resolved) lies in dir */
static bool beneath(const char *path, const char *dir)
{
    char *d = realpath(dir, NULL);
    size_t n = d ? strlen(d) : 0;
    bool in = d && !strncmp(path, d, n) && (path[n] == '/' || (n == 1 && d[0] == '/'));
    free(d);
    return in;
}

/* The backing file d names, resolved on this host, if it may be used. */
static int backing_allowed(const struct mig_disk_in *d, const char *dir, const char *const *allowed,
                           unsigned nallowed, vs_err *err)
{
    char *named = NULL;
    if (asprintf(&named, d->backing[0] == '/' ? "%s" : "%2$s/%1$s", d->backing, dir) < 0)
        return vs_error(err, ENOMEM, "out of memory");
    char *real = realpath(named, NULL);
    int rc = 0;
    if (!real) {
        rc = vs_error(err, ENOENT,
                      "disk %u is an overlay of %s, which this host does not have (copy it "
                      "here first, or move the VM with a raw or standalone qcow2 disk)",
                      d->index, named);
    } else {
        bool ok = beneath(real, dir);
        for (unsigned i = 0; !ok && i < nallowed; i++)
            ok = beneath(real, allowed[i]);
        if (!ok)
            rc = vs_error(err, EACCES,
                          "disk %u is an overlay of %s, outside --storage and every "
                          "--allow-backing DIR of this destination",
                          d->index, real);
    }
    free(real);
    free(named);
    return rc;
}

int mig_disks_in_create(struct mig_disks_in *di, const char *dir, const char *const *allowed,
                        unsigned nallowed, struct vm_config *cfg, vs_err *err)
{
    if (!di->n)
        return 0;
    if (!dir)
        return vs_error(err, EINVAL,
                        "the source sends its disks along (--copy-disks): give this destination "
                        "--storage DIR to put them in");
    for (unsigned i = 0; i < di->n; i++) {
        struct mig_disk_in *d = &di->d[i];
        struct vm_disk_config *dc = &cfg->disks[d->index];
        char *name = strdup(dc->path);
        if (!name || asprintf(&d->path, "%s/%s", dir, basename(name)) < 0) {
            free(name);
            d->path = NULL;
            return vs_error(err, ENOMEM, "out of memory");
        }
        free(name);
        struct stat st;
        if (lstat(d->path, &st) == 0) {
            vs_error(err, EEXIST, "disk %s already exists: a moving disk overwrites nothing",
                     d->path);
            free(d->path);
            d->path = NULL;
            return -1;
        }
        if (d->backing && backing_allowed(d, dir, allowed, nallowed, err) < 0) {
            free(d->path);
            d->path = NULL;
            return -1;
        }
        if (create_one(d, err) < 0) {
            unlink(d->path);
            free(d->path);
            d->path = NULL;
            return -1;
        }
        char *p = strdup(d->path), *f = strdup(d->format);
        if (!p || !f) {
            free(p);
            free(f);
            return vs_error(err, ENOMEM, "out of memory");
        }
        free(dc->path);
        free(dc->format);
        dc->path = p;
        dc->format = f;
    }
    return 0;
}

static int find_disk(struct virtio_dev *dev, void *opaque, vs_err *err)
{
    struct mig_disks_in *di = opaque;
    unsigned index;
    struct disk *disk = virtio_blk_disk(dev, &index);
    for (unsigned i = 0; disk && i < di->n; i++)
        if (di->d[i].index == index) {
            if (disk->size != di->d[i].size)
                return vs_error(err, EPROTO, "disk %s is %llu bytes, not the source's %llu",
                                disk->path, (unsigned long long)disk->size,
                                (unsigned long long)di->d[i].size);
            di->d[i].disk = disk;
        }
    return 0;
}

int mig_disks_in_attach(struct mig_disks_in *di, struct vm_control *ctl, vs_err *err)
{
    if (!di->n)
        return 0;
    struct virtio_set *devs = ctl && ctl->devices ? ctl->devices(ctl->machine) : NULL;
    if (virtio_set_foreach(devs, find_disk, di, err) < 0)
        return -1;
    for (unsigned i = 0; i < di->n; i++)
        if (!di->d[i].disk)
            return vs_error(err, EPROTO, "migration: the machine has no disk %u", di->d[i].index);
    return 0;
}

int mig_disks_in_check(const struct mig_disks_in *di, uint64_t off, uint64_t len,
                       struct mig_disk_in **d, uint64_t *at, vs_err *err)
{
    unsigned index = (unsigned)(off >> MIG_DISK_INDEX_SHIFT);
    uint64_t o = off & (MIG_DISK_MAX_SIZE - 1);
    for (unsigned i = 0; i < di->n; i++)
        if (di->d[i].index == index) {
            if (!len || len > MIG_DISK_CHUNK || o > di->d[i].size || len > di->d[i].size - o)
                return vs_error(err, EPROTO,
                                "migration stream: disk record [%llu, +%llu) outside disk %u",
                                (unsigned long long)o, (unsigned long long)len, index);
            if (!di->d[i].disk)
                return vs_error(err, EPROTO, "migration stream: a disk record before the machine");
            *d = (struct mig_disk_in *)&di->d[i];
            *at = o;
            return 0;
        }
    return vs_error(err, EPROTO, "migration stream: a record for disk %u, which is not moving",
                    index);
}

int mig_disks_in_flush(struct mig_disks_in *di, vs_err *err)
{
    for (unsigned i = 0; i < di->n; i++) {
        int r = di->d[i].disk ? disk_flush(di->d[i].disk) : 0;
        if (r < 0)
            return vs_error(err, -r, "disk %s: %s", di->d[i].path, strerror(-r));
    }
    return 0;
}

void mig_disks_in_free(struct mig_disks_in *di, bool remove)
{
    for (unsigned i = 0; i < di->n; i++) {
        if (remove && di->d[i].path)
            unlink(di->d[i].path);
        free(di->d[i].path);
        free(di->d[i].backing);
        free(di->d[i].backing_format);
    }
    free(di->buf);
    memset(di, 0, sizeof(*di));
}
