/* A small epoll loop: devices register fds (tap, eventfds, the console) with a
 * callback; one thread (or the caller) runs it. Thread-safe add/remove. */
#ifndef VESSEL_UTIL_EVENT_LOOP_H
#define VESSEL_UTIL_EVENT_LOOP_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "util/err.h"

typedef void (*vs_event_fn)(void *opaque, int fd, uint32_t events);

struct vs_event_loop {
    int epfd;
    int stop_fd; /* eventfd that wakes the loop to stop */
    volatile bool stopping;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t lock;
    struct vs_event_handler *handlers;
};

int vs_event_loop_init(struct vs_event_loop *l, vs_err *err);
/* events: EPOLLIN/EPOLLOUT...; the handler runs on the loop's thread. */
int vs_event_loop_add(struct vs_event_loop *l, int fd, uint32_t events, vs_event_fn fn,
                      void *opaque, vs_err *err);
int vs_event_loop_mod(struct vs_event_loop *l, int fd, uint32_t events, vs_err *err);
void vs_event_loop_del(struct vs_event_loop *l, int fd);
/* Run until vs_event_loop_stop(); returns 0, or -1 on an epoll failure. */
int vs_event_loop_run(struct vs_event_loop *l, vs_err *err);
int vs_event_loop_start_thread(struct vs_event_loop *l, const char *name, vs_err *err);
void vs_event_loop_stop(struct vs_event_loop *l);
/* Stop, join the thread if any, close fds. */
void vs_event_loop_destroy(struct vs_event_loop *l);

#endif
