/* console: attach to an instance's console, as `lxc console` does.
 *
 * Every instance with an interactive console serves it on a unix socket in
 * its directory (console.sock): a VM process itself (its serial console's
 * `--console file:LOG,socket:SOCK`, src/hw/serial_console.c), a container
 * started with a terminal (config console.tty=true) through a small keeper
 * process that holds the terminal's master, writes its output to the
 * console log and relays one attached client. Both take one client at a
 * time; a new one takes over from the previous.
 *
 * The daemon does not relay keystrokes: it answers an attach request with a
 * one-shot socket (as exec does) and a child of the daemon hands the caller
 * a connection to console.sock over it (SCM_RIGHTS). The caller (`vessel
 * console`) then talks to the console directly: raw terminal, detach key. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "oci/linux.h"
#include "util/unix_socket.h"

#define ACCEPT_TIMEOUT_MS 30000

static void console_sock_path(struct daemon *d, const char *name, char *out, size_t n)
{
    snprintf(out, n, "%s/instances/%s/console.sock", d->state_dir, name);
}

json_t *instance_console_attach(struct daemon *d, const char *name, json_t *req, vs_err *err)
{
    json_t *inst = instance_info(d, name, err);
    if (!inst)
        return NULL;
    json_t *out = NULL;
    const char *type = json_string_value(json_object_get(inst, "type"));
    const char *state = json_string_value(json_object_get(inst, "state"));
    bool container = !strcmp(type, "container");
    char csock[4200];
    console_sock_path(d, name, csock, sizeof(csock));
    struct stat st;
    if (strcmp(state, "running") && strcmp(state, "paused")) {
        vs_error(err, EBUSY, "instance %s is %s: console needs it running", name, state);
        goto out;
    }
    if (stat(csock, &st) < 0 || !S_ISSOCK(st.st_mode)) {
        if (container)
            vs_error(err, EINVAL,
                     "container %s has no terminal: set console.tty=true and restart it "
                     "(vessel console %s --show-log shows its output)",
                     name, name);
        else
            vs_error(err, EBUSY,
                     "instance %s has no console socket (started by an older vesseld, or its "
                     "directory's path is too long): restart it",
                     name);
        goto out;
    }
    /* connect now, so a console that does not answer is an error here */
    int conn = vs_unix_connect(csock, err);
    if (conn < 0)
        goto out;
    char path[4300];
    int listener = daemon_oneshot_listen(d, req, "console", path, sizeof(path), err);
    if (listener < 0) {
        close(conn);
        goto out;
    }
    pid_t child = fork();
    if (child == 0) {
        /* a grandchild hands the connection over: nothing to reap later */
        if (fork() == 0) {
            struct pollfd p = {.fd = listener, .events = POLLIN};
            int c = poll(&p, 1, ACCEPT_TIMEOUT_MS) == 1
                        ? accept4(listener, NULL, NULL, SOCK_CLOEXEC)
                        : -1;
            unlink(path);
            _exit(c < 0 || oci_send_fd(c, conn, "c", 1) < 0);
        }
        _exit(0);
    }
    close(listener);
    close(conn);
    if (child < 0) {
        unlink(path);
        vs_error_errno(err, "fork");
        goto out;
    }
    while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
        ;
    out = json_pack("{s:s}", "socket", path);
out:
    json_decref(inst);
    return out;
}

/* ---- the keeper of a container's terminal ---- */

static void keeper_send(int *client, const char *buf, size_t len)
{
    while (*client >= 0 && len) {
        ssize_t n = send(*client, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            struct pollfd p = {.fd = *client, .events = POLLOUT};
            if (poll(&p, 1, 1000) == 1)
                continue;
        }
        if (n <= 0) {
            close(*client); /* gone, or too slow: the container never waits on it */
            *client = -1;
            return;
        }
        buf += n;
        len -= (size_t)n;
    }
}

static void keeper_write_all(int fd, const char *buf, size_t len)
{
    while (fd >= 0 && len) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        buf += n;
        len -= (size_t)n;
    }
}

static void keeper_serve(int oci_listener, const char *log, const char *attach_sock)
{
    struct pollfd p = {.fd = oci_listener, .events = POLLIN};
    int c =
        poll(&p, 1, ACCEPT_TIMEOUT_MS) == 1 ? accept4(oci_listener, NULL, NULL, SOCK_CLOEXEC) : -1;
    int master = c >= 0 ? oci_recv_fd(c, NULL, 0) : -1;
    if (c >= 0)
        close(c);
    close(oci_listener);
    if (master < 0)
        return;
    vs_err err = {0};
    int listener = vs_unix_listen(attach_sock, 1, &err);
    /* our socket's inode: a keeper of the container's next start may have
     * replaced it by the time this one ends */
    struct stat mine = {0};
    if (listener >= 0)
        stat(attach_sock, &mine);
    int logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    int client = -1;
    char buf[16384];
    for (;;) {
        struct pollfd f[3] = {{.fd = master, .events = POLLIN},
                              {.fd = listener, .events = POLLIN},
                              {.fd = client, .events = POLLIN}};
        if (poll(f, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (f[0].revents) {
            ssize_t n = read(master, buf, sizeof(buf));
            if (n < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (n <= 0)
                break; /* EIO: the container's last holder of the terminal is gone */
            keeper_write_all(logfd, buf, (size_t)n);
            keeper_send(&client, buf, (size_t)n);
        }
        if (f[1].revents & POLLIN) {
            int nc = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
            if (nc >= 0) {
                if (client >= 0)
                    close(client); /* the newest client takes over */
                client = nc;
                continue;
            }
        }
        if (client >= 0 && (f[2].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t n = read(client, buf, sizeof(buf));
            if (n < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (n <= 0) {
                close(client);
                client = -1;
                continue;
            }
            keeper_write_all(master, buf, (size_t)n);
        }
    }
    if (listener >= 0) {
        struct stat now;
        close(listener);
        if (stat(attach_sock, &now) == 0 && now.st_ino == mine.st_ino && now.st_dev == mine.st_dev)
            unlink(attach_sock);
    }
}

int console_keeper_start(int oci_listener, const char *log, const char *attach_sock, vs_err *err)
{
    pid_t k = fork();
    if (k < 0)
        return vs_error_errno(err, "fork");
    if (k > 0)
        return 0;
    /* its own session; only the listener open, stdio on /dev/null, so the
     * daemon's pipes see their ends closed */
    setsid();
    signal(SIGPIPE, SIG_IGN);
    int null = open("/dev/null", O_RDWR);
    for (int i = 0; i < 3 && null >= 0; i++)
        dup2(null, i);
    int l = fcntl(oci_listener, F_DUPFD_CLOEXEC, 3);
    if (l < 0)
        _exit(1);
    for (int fd = 3; fd < l; fd++)
        close(fd);
    close_range((unsigned)l + 1, ~0U, 0);
    keeper_serve(l, log, attach_sock);
    _exit(0);
}
