/* A generic vhost-user frontend: a virtio device whose queues another
 * process serves (virtiofsd for virtio-fs; vhost-user-blk or -net backends
 * the same way). vessel keeps the transport (registers, config space,
 * interrupts); the backend gets guest RAM as memfds (SET_MEM_TABLE), the
 * rings' addresses, a kick eventfd per queue (written by the transport, or
 * by KVM's ioeventfd directly) and a call eventfd per queue, which vessel's
 * event loop turns into the device's interrupt.
 *
 * Rings are handed over when the driver sets DRIVER_OK and taken back
 * (GET_VRING_BASE) when it resets the device. Every reply is parsed as
 * hostile input (vhost_user_proto.h); a backend that hangs up, times out or
 * says something malformed is "failed": vessel says so once, and the device
 * decides what the guest sees (virtio-fs answers every request with EIO). */
#ifndef VESSEL_VIRTIO_VHOST_USER_H
#define VESSEL_VIRTIO_VHOST_USER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "util/event_loop.h"
#include "virtio/vhost_user_proto.h"
#include "virtio/virtio.h"

struct vhost_user_frontend {
    struct virtio_dev *dev; /* the device it serves (not owned) */
    const char *what;       /* for messages: "virtio-fs share 'data'" */
    int sock;
    uint64_t backend_features; /* GET_FEATURES */
    uint64_t protocol;         /* negotiated protocol features */
    int timeout_ms;            /* per reply */
    struct vs_event_loop *loop;
    int kick[VIRTIO_MAX_QUEUES], call[VIRTIO_MAX_QUEUES], err[VIRTIO_MAX_QUEUES];
    bool watching;
    /* Serialises the request/reply pairs and the started/failed state
     * between vCPU threads (status writes) and the event loop (hang-up). */
    pthread_mutex_t lock;
    bool started;         /* rings belong to the backend */
    volatile bool failed; /* the backend is gone or misbehaved */
    bool err_reported;
    /* Called once, on the loop or a vCPU thread, with no lock held, after
     * the frontend turned failed (the device then serves its queues
     * itself). */
    void (*on_failed)(struct vhost_user_frontend *fe);
};

/* Handshake on a connected socket (the frontend owns it from here, even on
 * failure): GET_FEATURES, GET/SET_PROTOCOL_FEATURES, SET_OWNER; then the
 * kick, call and err eventfds of the device's queues are made and watched
 * on loop. */
int vhost_user_frontend_init(struct vhost_user_frontend *fe, struct virtio_dev *dev,
                             const char *what, int sock, struct vs_event_loop *loop, vs_err *err);
/* Hand the driver's rings to the backend: features, memory table, and per
 * ready queue its size, addresses, base, kick, call and err fds, enable. */
int vhost_user_frontend_start(struct vhost_user_frontend *fe, vs_err *err);
/* Take the rings back (GET_VRING_BASE per started queue: the backend stops
 * using them). The driver's queues are left for the core to reset. */
void vhost_user_frontend_stop(struct vhost_user_frontend *fe);
/* The transport saw a kick of queue q (virtio-mmio, or PCI without
 * ioeventfd). */
void vhost_user_frontend_kick(struct vhost_user_frontend *fe, unsigned q);
/* The eventfd a hypervisor may signal directly for a kick of queue q. */
int vhost_user_frontend_kickfd(struct vhost_user_frontend *fe, unsigned q);
/* Mark failed (once: the message is logged, on_failed called). */
void vhost_user_frontend_fail(struct vhost_user_frontend *fe, const char *why);
/* Stop watching the backend's socket and eventfds (before a deliberate
 * shutdown of the backend, which is then no failure). */
void vhost_user_frontend_unwatch(struct vhost_user_frontend *fe);
void vhost_user_frontend_destroy(struct vhost_user_frontend *fe);

/* The message layer, for tests: send m with fds attached; with a reply
 * kind, read and parse the reply into *out (REPLY_ACK: out->u64 is the
 * backend's status). Bounded by fe->timeout_ms. */
int vhost_user_send(int sock, const struct vhost_user_msg *m, const int *fds, unsigned nfds,
                    vs_err *err);
int vhost_user_recv_reply(int sock, uint32_t req, enum vhost_user_reply_kind kind, int timeout_ms,
                          struct vhost_user_reply *out, vs_err *err);

#endif
