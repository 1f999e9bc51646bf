/* Passing file descriptors over unix sockets (the console socket protocol:
 * the pty master goes to the socket given with --console-socket). */
#include "oci/linux.h"
#include "util/unix_socket.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

int oci_send_fd(int sock, int fd, const char *data, size_t len)
{
    char dummy = 0;
    struct iovec iov = {.iov_base = len ? (void *)data : &dummy, .iov_len = len ? len : 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof(u));
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        msg.msg_control = u.buf;
        msg.msg_controllen = sizeof(u.buf);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    ssize_t r;
    do
        r = sendmsg(sock, &msg, MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
    return r < 0 ? -1 : 0;
}

ssize_t oci_recv_with_fd(int sock, void *data, size_t len, int *fd)
{
    struct iovec iov = {.iov_base = data, .iov_len = len};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
    ssize_t r;
    do
        r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    while (r < 0 && errno == EINTR);
    *fd = -1;
    struct cmsghdr *c = r > 0 ? CMSG_FIRSTHDR(&msg) : NULL;
    if (c && c->cmsg_type == SCM_RIGHTS)
        memcpy(fd, CMSG_DATA(c), sizeof(int));
    return r;
}

int oci_recv_fd(int sock, char *data, size_t len)
{
    char dummy;
    int fd;
    if (oci_recv_with_fd(sock, len ? data : &dummy, len ? len : 1, &fd) <= 0)
        return -1;
    return fd;
}

int oci_console_open(const char *console_socket, int *console, int *console_peer, vs_err *err)
{
    if (console_socket) {
        *console = vs_unix_connect(console_socket, err);
        return *console < 0 ? -1 : 0;
    }
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
        return vs_error_errno(err, "socketpair");
    *console = sp[1];
    *console_peer = sp[0];
    return 0;
}

int oci_pty_open(const char *ptmx, int *master, int *slave, vs_err *err)
{
    *master = ptmx ? open(ptmx, O_RDWR | O_NOCTTY | O_CLOEXEC) : -1;
    if (*master < 0)
        *master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    int unlock = 0;
    if (*master < 0 || ioctl(*master, TIOCSPTLCK, &unlock) < 0 ||
        (*slave = ioctl(*master, TIOCGPTPEER, O_RDWR | O_NOCTTY)) < 0)
        return vs_error_errno(err, "cannot allocate a terminal");
    return 0;
}
