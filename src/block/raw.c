/* Raw images: the guest's disk is the host file, byte for byte. */
#include "block/disk.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

struct raw_disk {
    struct disk d;
    int fd;
    char *path;
};

uint64_t iov_total(const struct iovec *iov, int iovcnt)
{
    uint64_t t = 0;
    for (int i = 0; i < iovcnt; i++)
        t += iov[i].iov_len;
    return t;
}

/* Loop over short transfers; iov is not modified (copied in chunks). */
static int raw_rw(struct disk *d, uint64_t off, const struct iovec *iov, int iovcnt, bool write)
{
    struct raw_disk *r = (struct raw_disk *)d;
    struct iovec local[64];
    while (iovcnt > 0) {
        int n = iovcnt < 64 ? iovcnt : 64;
        memcpy(local, iov, (size_t)n * sizeof(*iov));
        struct iovec *cur = local;
        int left = n;
        while (left > 0) {
            ssize_t got = write ? pwritev(r->fd, cur, left, (off_t)off)
                                : preadv(r->fd, cur, left, (off_t)off);
            if (got < 0) {
                if (errno == EINTR)
                    continue;
                return -errno;
            }
            if (got == 0) {
                if (write)
                    return -EIO;
                /* read past EOF of a file that shrank: zero-fill */
                for (int i = 0; i < left; i++)
                    memset(cur[i].iov_base, 0, cur[i].iov_len);
                break;
            }
            off += (uint64_t)got;
            size_t g = (size_t)got;
            while (left > 0 && g >= cur->iov_len) {
                g -= cur->iov_len;
                cur++;
                left--;
            }
            if (left > 0) {
                cur->iov_base = (uint8_t *)cur->iov_base + g;
                cur->iov_len -= g;
            }
        }
        iov += n;
        iovcnt -= n;
    }
    return 0;
}

static int raw_read(struct disk *d, uint64_t off, const struct iovec *iov, int iovcnt)
{
    return raw_rw(d, off, iov, iovcnt, false);
}

static int raw_write(struct disk *d, uint64_t off, const struct iovec *iov, int iovcnt)
{
    if (d->readonly)
        return -EROFS;
    return raw_rw(d, off, iov, iovcnt, true);
}

static int raw_flush(struct disk *d)
{
    struct raw_disk *r = (struct raw_disk *)d;
    if (d->cache == VM_CACHE_UNSAFE || d->readonly)
        return 0;
    return fdatasync(r->fd) < 0 ? -errno : 0;
}

static int raw_discard(struct disk *d, uint64_t off, uint64_t len)
{
    struct raw_disk *r = (struct raw_disk *)d;
    if (d->readonly)
        return -EROFS;
    if (fallocate(r->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) < 0) {
        /* discard is advisory: a file system without holes just keeps the data */
        if (errno == EOPNOTSUPP || errno == ENOSYS)
            return 0;
        return -errno;
    }
    return 0;
}

static int raw_write_zeroes(struct disk *d, uint64_t off, uint64_t len, bool may_unmap)
{
    struct raw_disk *r = (struct raw_disk *)d;
    if (d->readonly)
        return -EROFS;
    int mode = may_unmap ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
                         : FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
    if (fallocate(r->fd, mode, (off_t)off, (off_t)len) == 0)
        return 0;
    if (errno != EOPNOTSUPP && errno != ENOSYS && errno != EINVAL)
        return -errno;
    /* fall back to writing zeroes */
    static const uint8_t zeroes[65536];
    while (len) {
        size_t n = len < sizeof(zeroes) ? (size_t)len : sizeof(zeroes);
        struct iovec v = {(void *)zeroes, n};
        int ret = raw_rw(d, off, &v, 1, true);
        if (ret < 0)
            return ret;
        off += n;
        len -= n;
    }
    return 0;
}

/* Holes of a sparse file read as zeroes: 0 when [off, off + len) is one
 * (SEEK_DATA), so a migration reads only what the file holds. */
static int raw_allocated(struct disk *d, uint64_t off, uint64_t len)
{
    struct raw_disk *r = (struct raw_disk *)d;
    off_t data = lseek(r->fd, (off_t)off, SEEK_DATA);
    if (data < 0)
        return errno == ENXIO ? 0 : 1; /* past the last data, or no SEEK_DATA here */
    return (uint64_t)data < off + len;
}

static void raw_close(struct disk *d)
{
    struct raw_disk *r = (struct raw_disk *)d;
    close(r->fd);
    free(r->path);
    free(r);
}

static const struct disk_ops raw_ops = {
    .read = raw_read,
    .write = raw_write,
    .flush = raw_flush,
    .discard = raw_discard,
    .write_zeroes = raw_write_zeroes,
    .allocated = raw_allocated,
    .close = raw_close,
};

int raw_open(const char *path, bool readonly, enum vm_disk_cache cache, struct disk **out,
             vs_err *err)
{
    int flags = (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
    int fd = -1;
    if (cache == VM_CACHE_NONE) {
        fd = open(path, flags | O_DIRECT);
        /* tmpfs and some others refuse O_DIRECT: fall back to the page cache */
        if (fd < 0 && errno != EINVAL)
            return vs_error_errno(err, "disk %s", path);
    }
    if (fd < 0)
        fd = open(path, flags);
    if (fd < 0)
        return vs_error_errno(err, "disk %s", path);
    struct stat st;
    if (fstat(fd, &st) < 0) {
        close(fd);
        return vs_error_errno(err, "disk %s", path);
    }
    uint64_t size = (uint64_t)st.st_size;
    if (S_ISBLK(st.st_mode)) {
        if (ioctl(fd, BLKGETSIZE64, &size) < 0) {
            close(fd);
            return vs_error_errno(err, "disk %s: BLKGETSIZE64", path);
        }
    } else if (!S_ISREG(st.st_mode)) {
        close(fd);
        return vs_error(err, EINVAL, "disk %s: not a regular file or block device", path);
    }
    struct raw_disk *r = calloc(1, sizeof(*r));
    char *p = strdup(path);
    if (!r || !p) {
        free(r);
        free(p);
        close(fd);
        return vs_error(err, ENOMEM, "disk %s: out of memory", path);
    }
    r->fd = fd;
    r->path = p;
    r->d = (struct disk){.ops = &raw_ops,
                         .size = size,
                         .readonly = readonly,
                         .cache = cache,
                         .direct_fd = fd,
                         .path = p,
                         .priv = r};
    *out = &r->d;
    return 0;
}
