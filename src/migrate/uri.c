#include "migrate/uri.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

struct mig_uri {
    bool unix_path;
    char host[256], port[16];
    struct sockaddr_un sun;
};

static int parse(const char *uri, struct mig_uri *u, vs_err *err)
{
    memset(u, 0, sizeof(*u));
    if (!uri)
        return vs_error(err, EINVAL, "no migration address given");
    if (!strncmp(uri, "unix:", 5)) {
        const char *path = uri + 5;
        if (!*path || strlen(path) >= sizeof(u->sun.sun_path))
            return vs_error(err, EINVAL, "migration address %s: bad unix socket path", uri);
        u->unix_path = true;
        u->sun.sun_family = AF_UNIX;
        strcpy(u->sun.sun_path, path);
        return 0;
    }
    if (strncmp(uri, "tcp:", 4))
        return vs_error(err, EINVAL, "migration address '%s' is not tcp:HOST:PORT or unix:PATH",
                        uri);
    const char *h = uri + 4, *colon;
    size_t hlen;
    if (*h == '[') {
        const char *close = strchr(h, ']');
        if (!close || close[1] != ':')
            return vs_error(err, EINVAL, "migration address %s: bad [IPv6] host", uri);
        h++;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(h, ':');
        if (!colon)
            return vs_error(err, EINVAL, "migration address %s: no port", uri);
        hlen = (size_t)(colon - h);
    }
    const char *port = colon + 1;
    char *end;
    long p = strtol(port, &end, 10);
    if (!*port || *end || p < 1 || p > 65535)
        return vs_error(err, EINVAL, "migration address %s: bad port '%s'", uri, port);
    if (hlen >= sizeof(u->host))
        return vs_error(err, EINVAL, "migration address %s: host name too long", uri);
    memcpy(u->host, h, hlen);
    snprintf(u->port, sizeof(u->port), "%ld", p);
    return 0;
}

int mig_uri_check(const char *uri, vs_err *err)
{
    struct mig_uri u;
    return parse(uri, &u, err);
}

void mig_socket_tune(int fd)
{
    int one = 1, idle = 5, intvl = 2, cnt = 3;
    unsigned user_timeout = 10000;
    /* a cut link or a host that died is an error within seconds, not
     * after TCP's quarter of an hour of retransmissions */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof(user_timeout));
}

int mig_listen(const char *uri, vs_err *err)
{
    struct mig_uri u;
    if (parse(uri, &u, err) < 0)
        return -1;
    if (u.unix_path) {
        struct stat st;
        if (lstat(u.sun.sun_path, &st) == 0) {
            if (!S_ISSOCK(st.st_mode))
                return vs_error(err, EEXIST, "%s exists and is not a socket", u.sun.sun_path);
            unlink(u.sun.sun_path);
        }
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *)&u.sun, sizeof(u.sun)) < 0 || listen(fd, 1) < 0) {
            vs_error_errno(err, "listening on %s", uri);
            if (fd >= 0)
                close(fd);
            return -1;
        }
        return fd;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res;
    int gai = getaddrinfo(u.host[0] ? u.host : NULL, u.port, &hints, &res);
    if (gai)
        return vs_error(err, EINVAL, "migration address %s: %s", uri, gai_strerror(gai));
    int fd = -1;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 1) == 0)
            break;
        vs_error_errno(err, "listening on %s", uri);
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static int connect_timeout(int fd, const struct sockaddr *sa, socklen_t len, int timeout_ms)
{
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    int rc = connect(fd, sa, len);
    if (rc < 0 && errno == EINPROGRESS) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int n;
        while ((n = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR)
            ;
        if (n == 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        if (soerr) {
            errno = soerr;
            return -1;
        }
        rc = 0;
    }
    fcntl(fd, F_SETFL, fl);
    return rc;
}

int mig_connect(const char *uri, int timeout_ms, vs_err *err)
{
    struct mig_uri u;
    if (parse(uri, &u, err) < 0)
        return -1;
    if (u.unix_path) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 ||
            connect_timeout(fd, (struct sockaddr *)&u.sun, sizeof(u.sun), timeout_ms) < 0) {
            vs_error_errno(err, "connecting to %s", uri);
            if (fd >= 0)
                close(fd);
            return -1;
        }
        return fd;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    int gai = getaddrinfo(u.host, u.port, &hints, &res);
    if (gai)
        return vs_error(err, EHOSTUNREACH, "migration address %s: %s", uri, gai_strerror(gai));
    int fd = -1;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        if (connect_timeout(fd, a->ai_addr, a->ai_addrlen, timeout_ms) == 0) {
            mig_socket_tune(fd);
            break;
        }
        vs_error_errno(err, "connecting to %s", uri);
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}
