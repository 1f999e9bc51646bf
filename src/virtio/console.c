/* virtio-console (virtio 1.2, 5.3) as a second console: one port (no
 * MULTIPORT), receiveq0 and transmitq0. Backends: "file:PATH" (guest output
 * appended to a file, no input) and "socket:PATH" (a listening unix socket;
 * one client at a time gets the output and feeds the input). A thread per
 * device polls the backend and a kick eventfd. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "util/io.h"
#include "util/log.h"
#include "virtio/devices.h"
#include "util/unix_socket.h"
#include "util/thread_role.h"

#define RXQ 0
#define TXQ 1

struct virtio_console {
    struct virtio_dev dev;
    char name[32];
    int out_fd;    /* file backend */
    int listen_fd; /* socket backend */
    int client_fd;
    char *sock_path;
    int kick_fd;
    pthread_t thread;
    bool thread_started;
    volatile bool exit_requested;
    struct virtq_elem elem;
};

static struct virtio_console *to_con(struct virtio_dev *d)
{
    return (struct virtio_console *)d;
}

/* Guest output to the host side; a reader that went away drops the rest. */
static void write_all(int fd, const struct iovec *iov, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (vs_write_full(fd, iov[i].iov_base, iov[i].iov_len) < 0)
            return;
}

/* The next chain of vq into c->elem while the device runs: false when there
 * is none (or the queue is broken, which marks the device so). */
static bool next_elem(struct virtio_console *c, struct virtq *vq)
{
    if (!virtio_dev_running(&c->dev))
        return false;
    int ret = virtq_pop(vq, &c->elem);
    if (ret < 0)
        virtio_dev_set_broken_locked(&c->dev, vq->error);
    return ret > 0;
}

static void process_tx(struct virtio_console *c)
{
    struct virtio_dev *d = &c->dev;
    struct virtq *vq = &d->vqs[TXQ];
    bool pushed = false;
    while (next_elem(c, vq)) {
        int fd = c->out_fd >= 0 ? c->out_fd : c->client_fd;
        if (fd >= 0)
            write_all(fd, c->elem.iov, c->elem.nout);
        virtq_push(vq, &c->elem, 0);
        pushed = true;
    }
    if (pushed)
        virtio_queue_notify_locked(d, TXQ);
}

/* Read what the client sent into the guest's receive buffers. Returns
 * false if the client went away. */
static bool process_rx(struct virtio_console *c)
{
    struct virtio_dev *d = &c->dev;
    struct virtq *vq = &d->vqs[RXQ];
    bool pushed = false, alive = true;
    while (next_elem(c, vq)) {
        ssize_t n = readv(c->client_fd, &c->elem.iov[c->elem.nout], (int)c->elem.nin);
        if (n <= 0) {
            virtq_unpop(vq);
            if (n == 0 || (errno != EAGAIN && errno != EINTR))
                alive = false;
            break;
        }
        virtq_push(vq, &c->elem, (uint32_t)n);
        pushed = true;
    }
    if (pushed)
        virtio_queue_notify_locked(d, RXQ);
    return alive;
}

static void *console_thread(void *opaque)
{
    struct virtio_console *c = opaque;
    struct virtio_dev *d = &c->dev;
    vs_thread_role_enter(VS_THREAD_IO, c->name);
    while (!c->exit_requested) {
        struct pollfd fds[3] = {{.fd = c->kick_fd, .events = POLLIN}};
        int n = 1;
        pthread_mutex_lock(&d->lock);
        bool want_rx = virtio_dev_running(d) && virtq_has_avail(&d->vqs[RXQ]);
        pthread_mutex_unlock(&d->lock);
        if (c->listen_fd >= 0 && c->client_fd < 0)
            fds[n++] = (struct pollfd){.fd = c->listen_fd, .events = POLLIN};
        if (c->client_fd >= 0 && want_rx)
            fds[n++] = (struct pollfd){.fd = c->client_fd, .events = POLLIN};
        if (poll(fds, (nfds_t)n, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (fds[0].revents & POLLIN) {
            uint64_t v;
            if (read(c->kick_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                break;
        }
        for (int i = 1; i < n; i++) {
            if (!fds[i].revents)
                continue;
            if (fds[i].fd == c->listen_fd) {
                c->client_fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
            } else if (fds[i].fd == c->client_fd) {
                pthread_mutex_lock(&d->lock);
                bool alive = process_rx(c);
                pthread_mutex_unlock(&d->lock);
                if (!alive) {
                    close(c->client_fd);
                    c->client_fd = -1;
                }
            }
        }
        pthread_mutex_lock(&d->lock);
        process_tx(c);
        pthread_mutex_unlock(&d->lock);
    }
    return NULL;
}

static void kick(struct virtio_console *c)
{
    uint64_t one = 1;
    if (write(c->kick_fd, &one, sizeof(one)) < 0)
        vs_warn("%s: kick: %s", c->name, strerror(errno));
}

static void console_notify(struct virtio_dev *d, unsigned q)
{
    kick(to_con(d));
}

static void console_driver_ok(struct virtio_dev *d)
{
    kick(to_con(d));
}

static void console_destroy(struct virtio_dev *d)
{
    struct virtio_console *c = to_con(d);
    if (c->thread_started) {
        c->exit_requested = true;
        kick(c);
        pthread_join(c->thread, NULL);
    }
    if (c->out_fd >= 0)
        close(c->out_fd);
    if (c->client_fd >= 0)
        close(c->client_fd);
    if (c->listen_fd >= 0) {
        close(c->listen_fd);
        unlink(c->sock_path);
    }
    if (c->kick_fd >= 0)
        close(c->kick_fd);
    free(c->sock_path);
    virtio_dev_fini(d);
    free(c);
}

static int console_queue_eventfd(struct virtio_dev *d, unsigned q)
{
    return to_con(d)->kick_fd;
}

static const struct virtio_dev_ops console_ops = {
    .queue_notify = console_notify,
    .queue_eventfd = console_queue_eventfd,
    .driver_ok = console_driver_ok,
    .destroy = console_destroy,
};

struct virtio_dev *virtio_console_new(struct guest_mem *mem, const char *backend,
                                      struct vs_event_loop *loop, unsigned index, vs_err *err)
{
    struct virtio_console *c = calloc(1, sizeof(*c));
    if (!c) {
        vs_error(err, ENOMEM, "virtio-console: out of memory");
        return NULL;
    }
    snprintf(c->name, sizeof(c->name), "virtio-console%u", index);
    c->out_fd = c->listen_fd = c->client_fd = c->kick_fd = -1;
    virtio_dev_init(&c->dev, c->name, VIRTIO_ID_CONSOLE, 0, 2, VIRTQ_MAX_SIZE, &console_ops, mem);
    c->dev.config_len = 12;
    if (strncmp(backend, "file:", 5) == 0) {
        c->out_fd = open(backend + 5, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (c->out_fd < 0) {
            vs_error_errno(err, "virtio-console: %s", backend + 5);
            goto fail;
        }
    } else if (strncmp(backend, "socket:", 7) == 0) {
        c->sock_path = strdup(backend + 7);
        c->listen_fd = c->sock_path ? vs_unix_listen(c->sock_path, 4, err) : -1;
        if (c->listen_fd < 0) {
            vs_error_prefix(err, "virtio-console: ");
            goto fail;
        }
    } else {
        vs_error(err, EINVAL, "virtio-console: backend '%s' is not file:PATH or socket:PATH",
                 backend);
        goto fail;
    }
    c->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (c->kick_fd < 0) {
        vs_error_errno(err, "%s: eventfd", c->name);
        goto fail;
    }
    int ret = pthread_create(&c->thread, NULL, console_thread, c);
    if (ret) {
        vs_error(err, ret, "%s: cannot start its thread: %s", c->name, strerror(ret));
        goto fail;
    }
    c->thread_started = true;
    return &c->dev;
fail:
    console_destroy(&c->dev);
    return NULL;
}
