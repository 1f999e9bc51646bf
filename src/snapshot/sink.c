/* Snapshot sinks (sink.h): a directory, or a stream of records on a file
 * descriptor, and the receiving end of a stream. */
#include "snapshot/sink.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot/format.h"
#include "util/cleanup.h"
#include "util/io.h"
#include "util/le.h"

#define STREAM_MAGIC "VESSTRM1"
#define STREAM_VERSION 1
#define STREAM_HEADER_SIZE 16
#define RECORD_HEADER_SIZE 24
enum { REC_MEMORY = 1, REC_SIZE = 2, REC_VMSTATE = 3, REC_END = 4 };
/* A received stream is input from another host: bounded like a file. */
#define MAX_MEMORY_IMAGE (1ULL << 48)
#define MAX_VMSTATE (256u << 20)
#define RECV_CHUNK (1u << 20)

void snapshot_sink_close(struct snapshot_sink *s)
{
    if (s)
        s->ops->close(s);
}

/* Copy len bytes from fd at fd_off to out (at its file position). */
/* ---- a directory ---- */

struct dir_sink {
    struct snapshot_sink s;
    char parent[PATH_MAX], abs[PATH_MAX + 256], tmp[PATH_MAX + 256];
    int mem_fd; /* the memory file, once written */
    bool committed;
};

static int dir_memory_fd(struct dir_sink *d, vs_err *err)
{
    if (d->mem_fd >= 0)
        return d->mem_fd;
    char path[PATH_MAX + 300];
    snprintf(path, sizeof(path), "%s/memory", d->tmp);
    d->mem_fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (d->mem_fd < 0)
        return vs_error_errno(err, "%s", path);
    return d->mem_fd;
}

static int dir_write_memory(struct snapshot_sink *s, uint64_t off, const void *buf, int fd,
                            uint64_t fd_off, uint64_t len, vs_err *err)
{
    struct dir_sink *d = (struct dir_sink *)s;
    int out = dir_memory_fd(d, err);
    if (out < 0)
        return -1;
    int r =
        buf ? vs_pwrite_full(out, buf, len, off)
            : (lseek(out, (off_t)off, SEEK_SET) < 0 ? -1 : vs_sendfile_full(out, fd, fd_off, len));
    if (r < 0)
        return vs_error_errno(err, "writing guest memory to %s/memory", d->tmp);
    return 0;
}

static int dir_memory_size(struct snapshot_sink *s, uint64_t size, vs_err *err)
{
    struct dir_sink *d = (struct dir_sink *)s;
    int out = dir_memory_fd(d, err);
    if (out < 0)
        return -1;
    if (ftruncate(out, (off_t)size) < 0)
        return vs_error_errno(err, "%s/memory", d->tmp);
    return 0;
}

static int dir_write_vmstate(struct snapshot_sink *s, const void *buf, size_t len, vs_err *err)
{
    struct dir_sink *d = (struct dir_sink *)s;
    char path[PATH_MAX + 300];
    snprintf(path, sizeof(path), "%s/vmstate", d->tmp);
    cleanup_close int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 || vs_pwrite_full(fd, buf, len, 0) < 0)
        return vs_error_errno(err, "%s", path);
    return 0;
}

/* fsync both files, then the directory appears under its name at once. */
static int dir_commit(struct snapshot_sink *s, vs_err *err)
{
    struct dir_sink *d = (struct dir_sink *)s;
    static const char *const files[] = {"memory", "vmstate"};
    for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
        char fp[PATH_MAX + 300];
        snprintf(fp, sizeof(fp), "%s/%s", d->tmp, files[i]);
        cleanup_close int fd = open(fp, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) < 0)
            return vs_error_errno(err, "snapshot: fsync of %s", fp);
    }
    if (chmod(d->tmp, 0755) < 0)
        return vs_error_errno(err, "snapshot: chmod %s", d->tmp);
    cleanup_close int pfd = open(d->parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    cleanup_close int tfd = open(d->tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (tfd >= 0)
        fsync(tfd);
    if (rename(d->tmp, d->abs) < 0)
        return vs_error_errno(err, "snapshot: rename to %s", d->abs);
    if (pfd >= 0)
        fsync(pfd);
    d->committed = true;
    d->s.path = d->abs;
    return 0;
}

static void dir_close(struct snapshot_sink *s)
{
    struct dir_sink *d = (struct dir_sink *)s;
    if (d->mem_fd >= 0)
        close(d->mem_fd);
    if (!d->committed)
        snap_remove_dir(d->tmp);
    free(d);
}

static const struct snapshot_sink_ops dir_ops = {
    .write_memory = dir_write_memory,
    .memory_size = dir_memory_size,
    .write_vmstate = dir_write_vmstate,
    .commit = dir_commit,
    .close = dir_close,
};

int snapshot_sink_dir(const char *dir, struct snapshot_sink **out, vs_err *err)
{
    if (!dir || !*dir)
        return vs_error(err, EINVAL, "snapshot: no directory given");
    struct stat sb;
    if (lstat(dir, &sb) == 0)
        return vs_error(err, EEXIST, "snapshot directory %s already exists", dir);
    cleanup_free char *d1 = strdup(dir), *d2 = strdup(dir);
    struct dir_sink *d = calloc(1, sizeof(*d));
    if (!d1 || !d2 || !d) {
        free(d);
        return vs_error(err, ENOMEM, "out of memory");
    }
    d->s.ops = &dir_ops;
    d->mem_fd = -1;
    if (!realpath(dirname(d1), d->parent)) {
        free(d);
        return vs_error_errno(err, "snapshot directory %s", dir);
    }
    const char *base = basename(d2);
    snprintf(d->abs, sizeof(d->abs), "%s/%s", d->parent, base);
    snprintf(d->tmp, sizeof(d->tmp), "%s/.%s.tmp-XXXXXX", d->parent, base);
    if (!mkdtemp(d->tmp)) {
        vs_error_errno(err, "snapshot: cannot create a directory in %s", d->parent);
        free(d);
        return -1;
    }
    *out = &d->s;
    return 0;
}

/* ---- a stream ---- */

struct fd_sink {
    struct snapshot_sink s;
    int fd;
    bool started; /* stream header written */
};

static int put_record(struct fd_sink *f, uint32_t type, uint64_t off, uint64_t len, vs_err *err)
{
    if (!f->started) {
        uint8_t h[STREAM_HEADER_SIZE] = STREAM_MAGIC;
        vs_put_le(h + 8, STREAM_VERSION, 4);
        if (vs_write_full(f->fd, h, sizeof(h)) < 0)
            return vs_error_errno(err, "snapshot stream");
        f->started = true;
    }
    uint8_t r[RECORD_HEADER_SIZE] = {0};
    vs_put_le(r, type, 4);
    vs_put_le(r + 8, off, 8);
    vs_put_le(r + 16, len, 8);
    if (vs_write_full(f->fd, r, sizeof(r)) < 0)
        return vs_error_errno(err, "snapshot stream");
    return 0;
}

static int fd_write_memory(struct snapshot_sink *s, uint64_t off, const void *buf, int fd,
                           uint64_t fd_off, uint64_t len, vs_err *err)
{
    struct fd_sink *f = (struct fd_sink *)s;
    if (put_record(f, REC_MEMORY, off, len, err) < 0)
        return -1;
    if ((buf ? vs_write_full(f->fd, buf, len) : vs_sendfile_full(f->fd, fd, fd_off, len)) < 0)
        return vs_error_errno(err, "snapshot stream: guest memory");
    return 0;
}

static int fd_memory_size(struct snapshot_sink *s, uint64_t size, vs_err *err)
{
    return put_record((struct fd_sink *)s, REC_SIZE, size, 0, err);
}

static int fd_write_vmstate(struct snapshot_sink *s, const void *buf, size_t len, vs_err *err)
{
    struct fd_sink *f = (struct fd_sink *)s;
    if (put_record(f, REC_VMSTATE, 0, len, err) < 0)
        return -1;
    if (vs_write_full(f->fd, buf, len) < 0)
        return vs_error_errno(err, "snapshot stream: vmstate");
    return 0;
}

static int fd_commit(struct snapshot_sink *s, vs_err *err)
{
    return put_record((struct fd_sink *)s, REC_END, 0, 0, err);
}

static void fd_close(struct snapshot_sink *s)
{
    free(s);
}

static const struct snapshot_sink_ops fd_ops = {
    .write_memory = fd_write_memory,
    .memory_size = fd_memory_size,
    .write_vmstate = fd_write_vmstate,
    .commit = fd_commit,
    .close = fd_close,
};

int snapshot_sink_fd(int fd, struct snapshot_sink **out, vs_err *err)
{
    struct fd_sink *f = calloc(1, sizeof(*f));
    if (!f)
        return vs_error(err, ENOMEM, "out of memory");
    f->s.ops = &fd_ops;
    f->fd = fd;
    *out = &f->s;
    return 0;
}

/* ---- receiving a stream ---- */

static int recv_full(int fd, void *buf, size_t n, vs_err *err)
{
    if (vs_read_full(fd, buf, n) < 0)
        return errno == EIO ? vs_error(err, EIO, "snapshot stream ended before its end record")
                            : vs_error_errno(err, "snapshot stream");
    return 0;
}

static int recv_records(int fd, struct snapshot_sink *d, uint64_t *mem_bytes, vs_err *err)
{
    uint8_t h[STREAM_HEADER_SIZE];
    if (recv_full(fd, h, sizeof(h), err) < 0)
        return -1;
    if (memcmp(h, STREAM_MAGIC, 8))
        return vs_error(err, EINVAL, "not a vessel snapshot stream");
    if (vs_get_le(h + 8, 4) != STREAM_VERSION)
        return vs_error(err, EINVAL, "snapshot stream version %u is not %u",
                        (unsigned)vs_get_le(h + 8, 4), STREAM_VERSION);
    cleanup_free uint8_t *chunk = malloc(RECV_CHUNK);
    if (!chunk)
        return vs_error(err, ENOMEM, "out of memory");
    bool have_state = false;
    for (;;) {
        uint8_t r[RECORD_HEADER_SIZE];
        if (recv_full(fd, r, sizeof(r), err) < 0)
            return -1;
        uint32_t type = (uint32_t)vs_get_le(r, 4);
        uint64_t off = vs_get_le(r + 8, 8), len = vs_get_le(r + 16, 8);
        if (vs_get_le(r + 4, 4))
            return vs_error(err, EINVAL, "snapshot stream: reserved field set");
        switch (type) {
        case REC_MEMORY:
            if (off > MAX_MEMORY_IMAGE || len > MAX_MEMORY_IMAGE - off)
                return vs_error(err, EINVAL, "snapshot stream: memory record out of range");
            while (len) {
                size_t n = (size_t)MIN(len, (uint64_t)RECV_CHUNK);
                if (recv_full(fd, chunk, n, err) < 0 ||
                    d->ops->write_memory(d, off, chunk, -1, 0, n, err) < 0)
                    return -1;
                off += n;
                len -= n;
                *mem_bytes += n;
            }
            break;
        case REC_SIZE:
            if (len || off > MAX_MEMORY_IMAGE)
                return vs_error(err, EINVAL, "snapshot stream: bad memory size record");
            if (d->ops->memory_size(d, off, err) < 0)
                return -1;
            break;
        case REC_VMSTATE: {
            if (off || !len || len > MAX_VMSTATE || have_state)
                return vs_error(err, EINVAL, "snapshot stream: bad vmstate record");
            cleanup_free uint8_t *state = malloc((size_t)len);
            if (!state)
                return vs_error(err, ENOMEM, "out of memory");
            if (recv_full(fd, state, (size_t)len, err) < 0 ||
                d->ops->write_vmstate(d, state, (size_t)len, err) < 0)
                return -1;
            have_state = true;
            break;
        }
        case REC_END:
            if (off || len || !have_state)
                return vs_error(err, EINVAL, "snapshot stream: end before the vmstate");
            return d->ops->commit(d, err);
        default:
            return vs_error(err, EINVAL, "snapshot stream: unknown record type %u", type);
        }
    }
}

int snapshot_stream_receive(int fd, const char *dir, uint64_t *memory_bytes, vs_err *err)
{
    uint64_t n = 0;
    struct snapshot_sink *d;
    if (snapshot_sink_dir(dir, &d, err) < 0)
        return -1;
    int rc = recv_records(fd, d, &n, err);
    snapshot_sink_close(d);
    if (memory_bytes)
        *memory_bytes = n;
    return rc;
}
