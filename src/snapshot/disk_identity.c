#include "snapshot/disk_identity.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "util/cleanup.h"

#define HEAD_BYTES 65536

static int identity(const char *path, struct stat *st, uint32_t *crc, bool *is_qcow2, vs_err *err)
{
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, st) < 0)
        return vs_error_errno(err, "disk %s", path);
    cleanup_free uint8_t *buf = malloc(HEAD_BYTES);
    if (!buf)
        return vs_error(err, ENOMEM, "out of memory");
    ssize_t n = pread(fd, buf, HEAD_BYTES, 0);
    if (n < 0)
        return vs_error_errno(err, "disk %s", path);
    *crc = (uint32_t)crc32(0, buf, (uInt)n);
    *is_qcow2 = n >= 4 && !memcmp(buf, "QFI\xfb", 4);
    return 0;
}

json_t *disk_identity_record(const char *path, const char *format, vs_err *err)
{
    char abs[PATH_MAX];
    if (!realpath(path, abs)) {
        vs_error_errno(err, "disk %s", path);
        return NULL;
    }
    struct stat st;
    uint32_t crc;
    bool q;
    if (identity(abs, &st, &crc, &q, err) < 0)
        return NULL;
    return json_pack("{s:s, s:s, s:I, s:I, s:I}", "path", abs, "format",
                     format ? format
                     : q    ? "qcow2"
                            : "raw",
                     "size", (json_int_t)st.st_size, "mtime_ns",
                     (json_int_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec,
                     "head_crc32", (json_int_t)crc);
}

int disk_identity_verify(const json_t *rec, vs_err *err)
{
    const char *path = json_string_value(json_object_get(rec, "path"));
    if (!path)
        return vs_error(err, EINVAL, "snapshot manifest: disk without a path");
    struct stat st;
    uint32_t crc;
    bool q;
    if (identity(path, &st, &crc, &q, err) < 0)
        return vs_error_prefix(err, "snapshot needs ");
    json_int_t size = json_integer_value(json_object_get(rec, "size"));
    json_int_t mtime = json_integer_value(json_object_get(rec, "mtime_ns"));
    json_int_t hcrc = json_integer_value(json_object_get(rec, "head_crc32"));
    const char *why = NULL;
    if (size != (json_int_t)st.st_size)
        why = "size differs";
    else if (hcrc != (json_int_t)crc)
        why = "its first 64 KiB differ";
    else if (mtime != (json_int_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec)
        why = "modification time differs";
    if (why)
        return vs_error(err, ESTALE,
                        "disk %s changed since the snapshot was taken (%s); restoring would "
                        "corrupt it",
                        path, why);
    return 0;
}
