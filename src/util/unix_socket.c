#include "util/unix_socket.h"
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int open_socket(const char *path, struct sockaddr_un *a, vs_err *err)
{
    memset(a, 0, sizeof(*a));
    a->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(a->sun_path))
        return vs_error(err, ENAMETOOLONG, "socket path '%s' is too long", path);
    strcpy(a->sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return vs_error_errno(err, "socket");
    return fd;
}

int vs_unix_connect(const char *path, vs_err *err)
{
    struct sockaddr_un a;
    int fd = open_socket(path, &a, err);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        vs_error_errno(err, "cannot connect to %s", path);
        close(fd);
        return -1;
    }
    return fd;
}

int vs_unix_listen(const char *path, int backlog, vs_err *err)
{
    struct sockaddr_un a;
    int fd = open_socket(path, &a, err);
    if (fd < 0)
        return -1;
    unlink(path);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, backlog) < 0) {
        vs_error_errno(err, "cannot listen on %s", path);
        close(fd);
        return -1;
    }
    return fd;
}
