/* Opening a disk image: pick the format and hand over to its backend. */
#include "block/disk.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

/* The qcow2 backend (helper "snapshot") lands as block/qcow2.{c,h}; it is
 * used as soon as its header exists (both files are added to meson.build in
 * one commit). */
#if __has_include("block/qcow2.h")
#include "block/qcow2.h"
#define HAVE_QCOW2 1
#else
#define HAVE_QCOW2 0
#endif

static int probe_qcow2(const char *path, bool *is_qcow2, vs_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return vs_error_errno(err, "disk %s", path);
    uint8_t magic[4] = {0};
    ssize_t n = pread(fd, magic, sizeof(magic), 0);
    close(fd);
    *is_qcow2 = n == 4 && memcmp(magic, "QFI\xfb", 4) == 0;
    return 0;
}

int disk_open(const char *path, const char *format, bool readonly, enum vm_disk_cache cache,
              struct disk **out, vs_err *err)
{
    bool qcow2 = false;
    if (format && strcmp(format, "qcow2") == 0)
        qcow2 = true;
    else if (format && strcmp(format, "raw") != 0)
        return vs_error(err, EINVAL, "disk %s: unknown format '%s'", path, format);
    else if (!format && probe_qcow2(path, &qcow2, err) < 0)
        return -1;
    if (qcow2) {
#if HAVE_QCOW2
        return qcow2_open(path, readonly, cache, out, err);
#else
        return vs_error(err, ENOTSUP, "disk %s: qcow2 images are not supported in this build",
                        path);
#endif
    }
    return raw_open(path, readonly, cache, out, err);
}

void disk_close(struct disk *d)
{
    if (d)
        d->ops->close(d);
}

int disk_push_overlay(struct disk *d, const char *overlay, vs_err *err)
{
    if (d->readonly || !d->ops->push_overlay)
        return vs_error(err, ENOTSUP,
                        "disk %s is not a writable qcow2 image (snapshotting a disk needs a "
                        "qcow2 disk: qemu-img create -f qcow2 -b IMAGE -F raw overlay.qcow2)",
                        d->path);
    return d->ops->push_overlay(d, overlay, err);
}
