#include "util/io.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/sendfile.h>
#include <unistd.h>

enum io_op { IO_READ, IO_WRITE, IO_PREAD, IO_PWRITE, IO_SEND };

static int io_full(enum io_op op, int fd, void *buf, size_t n, uint64_t off, int flags)
{
    uint8_t *p = buf;
    while (n) {
        ssize_t r;
        switch (op) {
        case IO_READ:
            r = read(fd, p, n);
            break;
        case IO_WRITE:
            r = write(fd, p, n);
            break;
        case IO_PREAD:
            r = pread(fd, p, n, (off_t)off);
            break;
        case IO_PWRITE:
            r = pwrite(fd, p, n, (off_t)off);
            break;
        default:
            r = send(fd, p, n, flags);
            break;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0) {
            errno = EIO; /* end of file, or a write that cannot progress */
            return -EIO;
        }
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

int vs_read_full(int fd, void *buf, size_t n)
{
    return io_full(IO_READ, fd, buf, n, 0, 0);
}

int vs_write_full(int fd, const void *buf, size_t n)
{
    return io_full(IO_WRITE, fd, (void *)buf, n, 0, 0);
}

int vs_pread_full(int fd, void *buf, size_t n, uint64_t off)
{
    return io_full(IO_PREAD, fd, buf, n, off, 0);
}

int vs_pwrite_full(int fd, const void *buf, size_t n, uint64_t off)
{
    return io_full(IO_PWRITE, fd, (void *)buf, n, off, 0);
}

int vs_send_full(int fd, const void *buf, size_t n, int flags)
{
    return io_full(IO_SEND, fd, (void *)buf, n, 0, flags);
}

int vs_sendfile_full(int out, int fd, uint64_t fd_off, uint64_t len)
{
    off_t in = (off_t)fd_off;
    while (len) {
        ssize_t n = sendfile(out, fd, &in, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            return -1;
        }
        len -= (uint64_t)n;
    }
    return 0;
}
