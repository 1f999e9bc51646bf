#include "util/event_loop.h"
#include "util/thread_role.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct vs_event_handler {
    int fd;
    vs_event_fn fn;
    void *opaque;
    struct vs_event_handler *next;
};

int vs_event_loop_init(struct vs_event_loop *l, vs_err *err)
{
    memset(l, 0, sizeof(*l));
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0)
        return vs_error_errno(err, "epoll_create1");
    l->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (l->stop_fd < 0) {
        close(l->epfd);
        return vs_error_errno(err, "eventfd");
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->stop_fd, &ev) < 0) {
        close(l->epfd);
        close(l->stop_fd);
        return vs_error_errno(err, "epoll_ctl");
    }
    pthread_mutex_init(&l->lock, NULL);
    return 0;
}

int vs_event_loop_add(struct vs_event_loop *l, int fd, uint32_t events, vs_event_fn fn,
                      void *opaque, vs_err *err)
{
    struct vs_event_handler *h = calloc(1, sizeof(*h));
    if (!h)
        return vs_error(err, ENOMEM, "out of memory");
    h->fd = fd;
    h->fn = fn;
    h->opaque = opaque;
    pthread_mutex_lock(&l->lock);
    h->next = l->handlers;
    l->handlers = h;
    pthread_mutex_unlock(&l->lock);
    struct epoll_event ev = {.events = events, .data.ptr = h};
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int e = vs_error_errno(err, "epoll_ctl add fd %d", fd);
        vs_event_loop_del(l, fd);
        return e;
    }
    return 0;
}

static struct vs_event_handler *find_handler(struct vs_event_loop *l, int fd)
{
    for (struct vs_event_handler *h = l->handlers; h; h = h->next)
        if (h->fd == fd)
            return h;
    return NULL;
}

int vs_event_loop_mod(struct vs_event_loop *l, int fd, uint32_t events, vs_err *err)
{
    pthread_mutex_lock(&l->lock);
    struct vs_event_handler *h = find_handler(l, fd);
    pthread_mutex_unlock(&l->lock);
    if (!h)
        return vs_error(err, ENOENT, "fd %d is not in the event loop", fd);
    struct epoll_event ev = {.events = events, .data.ptr = h};
    if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
        return vs_error_errno(err, "epoll_ctl mod fd %d", fd);
    return 0;
}

/* Handlers are freed only at destroy time: a removed handler may still be in
 * an epoll batch being dispatched on the loop thread. */
void vs_event_loop_del(struct vs_event_loop *l, int fd)
{
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
    pthread_mutex_lock(&l->lock);
    struct vs_event_handler *h = find_handler(l, fd);
    if (h) {
        h->fn = NULL;
        h->fd = -1;
    }
    pthread_mutex_unlock(&l->lock);
}

int vs_event_loop_run(struct vs_event_loop *l, vs_err *err)
{
    struct epoll_event evs[32];
    while (!l->stopping) {
        int n = epoll_wait(l->epfd, evs, 32, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return vs_error_errno(err, "epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            struct vs_event_handler *h = evs[i].data.ptr;
            if (!h)
                continue; /* stop_fd */
            vs_event_fn fn = h->fn;
            if (fn)
                fn(h->opaque, h->fd, evs[i].events);
        }
    }
    return 0;
}

static void *loop_thread(void *arg)
{
    vs_thread_role_enter(VS_THREAD_IO, "event-loop");
    vs_event_loop_run(arg, NULL);
    return NULL;
}

int vs_event_loop_start_thread(struct vs_event_loop *l, const char *name, vs_err *err)
{
    int r = pthread_create(&l->thread, NULL, loop_thread, l);
    if (r)
        return vs_error(err, r, "pthread_create: %s", strerror(r));
    if (name)
        pthread_setname_np(l->thread, name);
    l->thread_started = true;
    return 0;
}

void vs_event_loop_stop(struct vs_event_loop *l)
{
    l->stopping = true;
    uint64_t one = 1;
    if (write(l->stop_fd, &one, sizeof(one)) < 0) {
        /* the counter can only overflow if stop is called 2^64 times */
    }
}

void vs_event_loop_destroy(struct vs_event_loop *l)
{
    if (l->epfd < 0)
        return;
    vs_event_loop_stop(l);
    if (l->thread_started && !pthread_equal(l->thread, pthread_self()))
        pthread_join(l->thread, NULL);
    l->thread_started = false;
    struct vs_event_handler *h = l->handlers;
    while (h) {
        struct vs_event_handler *n = h->next;
        free(h);
        h = n;
    }
    l->handlers = NULL;
    close(l->epfd);
    close(l->stop_fd);
    l->epfd = -1;
    pthread_mutex_destroy(&l->lock);
}
