/* virtio-blk device: one I/O thread per disk drives an io_uring. Kicks from
 * the vCPU threads arrive as eventfd writes (one per queue) that the ring
 * itself polls, so the thread sleeps in one place: io_uring_wait_cqe().
 * Raw images go straight to the ring (readv/writev/fsync on the image fd);
 * other backends (qcow2) and rare requests (discard, write-zeroes) run
 * synchronously on the same thread through the disk vtable. */
#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>
#include "block/disk.h"
#include "util/log.h"
#include "util/rate_limit.h"
#include "virtio/rate_state.h"
#include "virtio/blk.h"
#include "virtio/devices.h"
#include "util/thread_role.h"

#define BLK_RING_ENTRIES 512
#define BLK_MAX_INFLIGHT 256
#define TAG_KICK 1ULL /* user_data: (q << 8) | TAG_KICK */
#define TAG_CTRL 2ULL
#define TAG_TIMER 3ULL     /* the rate limiter's wait is over */
#define TAG_IO_MIN 4096ULL /* user_data >= this is a struct blk_io * */

struct blk_io {
    struct virtq_elem elem;
    struct virtio_blk_req req;
    unsigned q;
    struct blk_io *next_free;
};

struct virtio_blk {
    struct virtio_dev dev;
    char name[32];
    char serial[VIRTIO_BLK_ID_BYTES + 1];
    struct disk *disk;
    unsigned index; /* among the VM's disks */
    unsigned nq;
    int kick_fd[VIRTIO_MAX_QUEUES];
    uint64_t kick_buf[VIRTIO_MAX_QUEUES];
    int ctrl_fd;
    uint64_t ctrl_buf;
    struct io_uring ring;
    bool ring_ok;
    pthread_t thread;
    bool thread_started;
    /* thread control, under ctl_lock */
    pthread_mutex_t ctl_lock;
    pthread_cond_t ctl_cond;
    bool stop_requested, stopped, exit_requested;
    unsigned inflight;
    /* migration: one bit per chunk written since the last fetch (NULL: not
     * tracking); under ctl_lock */
    uint64_t *dirty;
    size_t dirty_words;
    unsigned dirty_shift;
    struct blk_io *free_list;
    struct blk_io *ios;
    /* rate limit (under dev.lock); the I/O thread's retry timer */
    struct vs_rate_limit rl;
    bool rl_on;
    bool timer_armed; /* I/O thread only */
    struct __kernel_timespec timer_ts;
};

static struct virtio_blk *to_blk(struct virtio_dev *d)
{
    return (struct virtio_blk *)d;
}

static void arm_poll(struct virtio_blk *b, int fd, uint64_t tag)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);
    if (!sqe) {
        io_uring_submit(&b->ring);
        sqe = io_uring_get_sqe(&b->ring);
    }
    io_uring_prep_poll_add(sqe, fd, POLLIN);
    io_uring_sqe_set_data64(sqe, tag);
}

static void drain_eventfd(int fd)
{
    uint64_t v;
    while (read(fd, &v, sizeof(v)) < 0 && errno == EINTR)
        ;
}

static void mark_dirty(struct virtio_blk *b, uint64_t off, uint64_t len)
{
    if (!len)
        return;
    for (uint64_t c = off >> b->dirty_shift; c <= (off + len - 1) >> b->dirty_shift; c++)
        if (c / 64 < b->dirty_words)
            b->dirty[c / 64] |= 1ull << (c % 64);
}

/* Under ctl_lock: a write-type request completed (whether or not it
 * succeeded, the image may have changed): its chunks are dirty. Marked at
 * completion, not submission, so a chunk read after its bit is fetched
 * holds the write or is marked again. */
static void track_write(struct virtio_blk *b, const struct virtio_blk_req *r)
{
    if (!b->dirty)
        return;
    if (r->type == VIRTIO_BLK_T_OUT)
        mark_dirty(b, r->offset, r->len);
    else if (r->type == VIRTIO_BLK_T_DISCARD || r->type == VIRTIO_BLK_T_WRITE_ZEROES)
        for (unsigned i = 0; i < r->nranges; i++)
            mark_dirty(b, r->ranges[i].off, r->ranges[i].len);
}

/* Complete a request: status byte, used ring, interrupt if wanted. */
static void complete(struct virtio_blk *b, struct blk_io *io, uint8_t status, bool *notify)
{
    struct virtio_dev *d = &b->dev;
    *io->req.status = status;
    pthread_mutex_lock(&d->lock);
    virtq_push(&d->vqs[io->q], &io->elem, status == VIRTIO_BLK_S_OK ? io->req.in_len : 1);
    pthread_mutex_unlock(&d->lock);
    notify[io->q] = true;
    io->next_free = b->free_list;
    b->free_list = io;
    pthread_mutex_lock(&b->ctl_lock);
    track_write(b, &io->req);
    b->inflight--;
    pthread_mutex_unlock(&b->ctl_lock);
}

/* Synchronous path through the disk vtable. */
static uint8_t run_sync(struct virtio_blk *b, struct virtio_blk_req *r)
{
    struct disk *disk = b->disk;
    int ret = 0;
    switch (r->type) {
    case VIRTIO_BLK_T_IN:
        ret = disk_read(disk, r->offset, r->data, (int)r->ndata);
        break;
    case VIRTIO_BLK_T_OUT:
        ret = disk_write(disk, r->offset, r->data, (int)r->ndata);
        break;
    case VIRTIO_BLK_T_FLUSH:
        ret = disk_flush(disk);
        break;
    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES:
        for (unsigned i = 0; i < r->nranges && ret == 0; i++) {
            struct virtio_blk_range *g = &r->ranges[i];
            if (r->type == VIRTIO_BLK_T_DISCARD)
                ret = disk->ops->discard ? disk->ops->discard(disk, g->off, g->len) : -ENOTSUP;
            else
                ret = disk->ops->write_zeroes
                          ? disk->ops->write_zeroes(disk, g->off, g->len, g->unmap)
                          : -ENOTSUP;
        }
        if (ret == -ENOTSUP)
            return VIRTIO_BLK_S_UNSUPP;
        break;
    default:
        return VIRTIO_BLK_S_UNSUPP;
    }
    if (ret < 0) {
        vs_debug("%s: request type %u at %llu failed: %s", b->name, r->type,
                 (unsigned long long)r->offset, strerror(-ret));
        return VIRTIO_BLK_S_IOERR;
    }
    return VIRTIO_BLK_S_OK;
}

/* Wake the I/O thread after ns (one timer at a time: every queue waits
 * on the same buckets). */
static void arm_timer(struct virtio_blk *b, uint64_t ns)
{
    if (b->timer_armed)
        return;
    b->timer_armed = true;
    b->timer_ts.tv_sec = (long long)(ns / 1000000000ull);
    b->timer_ts.tv_nsec = (long long)(ns % 1000000000ull);
    struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);
    if (!sqe) {
        io_uring_submit(&b->ring);
        sqe = io_uring_get_sqe(&b->ring);
    }
    io_uring_prep_timeout(sqe, &b->timer_ts, 0, 0);
    io_uring_sqe_set_data64(sqe, TAG_TIMER);
    io_uring_submit(&b->ring);
}

/* Pop and start everything queue q has. */
static void process_queue(struct virtio_blk *b, unsigned q, bool *notify)
{
    struct virtio_dev *d = &b->dev;
    for (;;) {
        struct blk_io *io = b->free_list;
        if (!io)
            return; /* resumed when a request completes */
        pthread_mutex_lock(&d->lock);
        if (!virtio_dev_running(d)) {
            pthread_mutex_unlock(&d->lock);
            return;
        }
        int ret = virtq_pop(&d->vqs[q], &io->elem);
        if (ret < 0)
            virtio_dev_set_broken_locked(d, d->vqs[q].error);
        else if (ret > 0 && virtio_blk_parse(&io->elem, b->disk->size, b->disk->readonly, b->serial,
                                             &io->req) < 0) {
            virtio_dev_set_broken_locked(d, "virtio-blk request without header or status");
            ret = -1;
        }
        if (ret > 0 && b->rl_on) {
            bool data = io->req.type == VIRTIO_BLK_T_IN || io->req.type == VIRTIO_BLK_T_OUT;
            uint64_t wait = vs_rate_limit_take(&b->rl, data ? io->req.len : 0, vs_now_ns());
            if (wait) {
                /* over the limit: back on the ring until the buckets refill */
                virtq_unpop(&d->vqs[q]);
                pthread_mutex_unlock(&d->lock);
                arm_timer(b, wait);
                return;
            }
        }
        pthread_mutex_unlock(&d->lock);
        if (ret <= 0)
            return;
        b->free_list = io->next_free;
        io->q = q;
        pthread_mutex_lock(&b->ctl_lock);
        b->inflight++;
        pthread_mutex_unlock(&b->ctl_lock);

        struct virtio_blk_req *r = &io->req;
        if (r->done) {
            complete(b, io, r->result, notify);
            continue;
        }
        int fd = b->disk->direct_fd;
        bool async = fd >= 0 && (r->type == VIRTIO_BLK_T_IN || r->type == VIRTIO_BLK_T_OUT ||
                                 r->type == VIRTIO_BLK_T_FLUSH);
        if (r->type == VIRTIO_BLK_T_FLUSH &&
            (b->disk->cache == VM_CACHE_UNSAFE || b->disk->readonly)) {
            complete(b, io, VIRTIO_BLK_S_OK, notify);
            continue;
        }
        if (!async) {
            complete(b, io, run_sync(b, r), notify);
            continue;
        }
        struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);
        if (!sqe) {
            io_uring_submit(&b->ring);
            sqe = io_uring_get_sqe(&b->ring);
        }
        if (r->type == VIRTIO_BLK_T_IN)
            io_uring_prep_readv(sqe, fd, r->data, r->ndata, r->offset);
        else if (r->type == VIRTIO_BLK_T_OUT)
            io_uring_prep_writev(sqe, fd, r->data, r->ndata, r->offset);
        else
            io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
        io_uring_sqe_set_data(sqe, io);
    }
}

static void io_done(struct virtio_blk *b, struct blk_io *io, int res, bool *notify)
{
    struct virtio_blk_req *r = &io->req;
    uint8_t status = VIRTIO_BLK_S_OK;
    if (r->type == VIRTIO_BLK_T_FLUSH) {
        if (res < 0)
            status = VIRTIO_BLK_S_IOERR;
    } else if (res < 0 || (uint64_t)res != r->len) {
        /* Short transfer or O_DIRECT refusing an unaligned buffer: redo it
         * the slow, careful way. */
        status = run_sync(b, r);
    }
    complete(b, io, status, notify);
}

static void send_notifications(struct virtio_blk *b, bool *notify)
{
    struct virtio_dev *d = &b->dev;
    pthread_mutex_lock(&d->lock);
    for (unsigned q = 0; q < b->nq; q++)
        if (notify[q]) {
            virtio_queue_notify_locked(d, q);
            notify[q] = false;
        }
    pthread_mutex_unlock(&d->lock);
}

/* The ring can only ever read, write, fsync and poll: operations submitted
 * through a ring are not seen by seccomp (docs/security.md), so a thread
 * that went astray must get nothing else (open, connect, ...) from it.
 * Kernels without restrictions (before 5.10) get a plain ring. */
static int ring_init(struct io_uring *ring)
{
    struct io_uring_params p = {.flags = IORING_SETUP_R_DISABLED};
    int ret = io_uring_queue_init_params(BLK_RING_ENTRIES, ring, &p);
    if (ret == -EINVAL)
        return io_uring_queue_init(BLK_RING_ENTRIES, ring, 0);
    if (ret < 0)
        return ret;
    struct io_uring_restriction res[] = {
        {.opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_READV},
        {.opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_WRITEV},
        {.opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_FSYNC},
        {.opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_POLL_ADD},
    };
    /* raw: Debian 12's liburing 2.3 declares the wrappers but does not
     * export them */
    if (syscall(__NR_io_uring_register, ring->ring_fd, IORING_REGISTER_RESTRICTIONS, res,
                sizeof(res) / sizeof(res[0])) < 0 ||
        syscall(__NR_io_uring_register, ring->ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0) < 0) {
        ret = -errno;
        io_uring_queue_exit(ring);
    }
    return ret;
}

static void *blk_thread(void *opaque)
{
    struct virtio_blk *b = opaque;
    bool notify[VIRTIO_MAX_QUEUES] = {0};
    vs_thread_role_enter(VS_THREAD_IO, b->name);
    for (unsigned q = 0; q < b->nq; q++)
        arm_poll(b, b->kick_fd[q], ((uint64_t)q << 8) | TAG_KICK);
    arm_poll(b, b->ctrl_fd, TAG_CTRL);
    io_uring_submit(&b->ring);
    for (;;) {
        struct io_uring_cqe *cqe;
        int ret = io_uring_wait_cqe(&b->ring, &cqe);
        if (ret == -EINTR)
            continue;
        if (ret < 0) {
            vs_err_log("%s: io_uring_wait_cqe: %s", b->name, strerror(-ret));
            break;
        }
        bool rescan_all = false, rescan[VIRTIO_MAX_QUEUES] = {0};
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&b->ring, head, cqe)
        {
            seen++;
            uint64_t tag = io_uring_cqe_get_data64(cqe);
            if (tag >= TAG_IO_MIN) {
                io_done(b, (struct blk_io *)(uintptr_t)tag, cqe->res, notify);
                rescan_all = true; /* a free slot may unblock a queue */
            } else if ((tag & 0xff) == TAG_KICK) {
                unsigned q = (unsigned)(tag >> 8);
                drain_eventfd(b->kick_fd[q]);
                arm_poll(b, b->kick_fd[q], tag);
                rescan[q] = true;
            } else if (tag == TAG_CTRL) {
                drain_eventfd(b->ctrl_fd);
                arm_poll(b, b->ctrl_fd, TAG_CTRL);
                rescan_all = true;
            } else if (tag == TAG_TIMER) {
                b->timer_armed = false;
                rescan_all = true;
            }
        }
        io_uring_cq_advance(&b->ring, seen);

        pthread_mutex_lock(&b->ctl_lock);
        bool stop = b->stop_requested, exit_now = b->exit_requested;
        pthread_mutex_unlock(&b->ctl_lock);
        if (!stop) {
            for (unsigned q = 0; q < b->nq; q++)
                if (rescan_all || rescan[q])
                    process_queue(b, q, notify);
        }
        send_notifications(b, notify);
        io_uring_submit(&b->ring);

        pthread_mutex_lock(&b->ctl_lock);
        if (b->stop_requested && b->inflight == 0 && !b->stopped) {
            b->stopped = true;
            pthread_cond_broadcast(&b->ctl_cond);
        }
        pthread_mutex_unlock(&b->ctl_lock);
        if (exit_now && b->inflight == 0)
            break;
    }
    return NULL;
}

static void ctrl_kick(struct virtio_blk *b)
{
    uint64_t one = 1;
    if (write(b->ctrl_fd, &one, sizeof(one)) < 0)
        vs_warn("%s: cannot wake the I/O thread: %s", b->name, strerror(errno));
}

/* Wait until the thread has nothing in flight and pops nothing new. */
static void blk_pause(struct virtio_dev *d)
{
    struct virtio_blk *b = to_blk(d);
    if (!b->thread_started)
        return;
    pthread_mutex_lock(&b->ctl_lock);
    b->stop_requested = true;
    b->stopped = false;
    pthread_mutex_unlock(&b->ctl_lock);
    ctrl_kick(b);
    pthread_mutex_lock(&b->ctl_lock);
    while (!b->stopped)
        pthread_cond_wait(&b->ctl_cond, &b->ctl_lock);
    pthread_mutex_unlock(&b->ctl_lock);
}

static void blk_resume(struct virtio_dev *d)
{
    struct virtio_blk *b = to_blk(d);
    pthread_mutex_lock(&b->ctl_lock);
    b->stop_requested = false;
    b->stopped = false;
    pthread_mutex_unlock(&b->ctl_lock);
    ctrl_kick(b);
}

static void blk_reset(struct virtio_dev *d)
{
    /* Requests in flight finish (their buffers stay valid guest memory)
     * before the core forgets the queues; the thread pops nothing until the
     * driver sets DRIVER_OK again. */
    blk_pause(d);
}

static void blk_driver_ok(struct virtio_dev *d)
{
    blk_resume(d);
}

static void blk_notify(struct virtio_dev *d, unsigned q)
{
    struct virtio_blk *b = to_blk(d);
    uint64_t one = 1;
    if (q < b->nq && write(b->kick_fd[q], &one, sizeof(one)) < 0)
        vs_warn("%s: kick: %s", b->name, strerror(errno));
}

static void blk_destroy(struct virtio_dev *d)
{
    struct virtio_blk *b = to_blk(d);
    if (b->thread_started) {
        pthread_mutex_lock(&b->ctl_lock);
        b->exit_requested = true;
        pthread_mutex_unlock(&b->ctl_lock);
        ctrl_kick(b);
        pthread_join(b->thread, NULL);
    }
    if (b->ring_ok)
        io_uring_queue_exit(&b->ring);
    for (unsigned q = 0; q < b->nq; q++)
        if (b->kick_fd[q] >= 0)
            close(b->kick_fd[q]);
    if (b->ctrl_fd >= 0)
        close(b->ctrl_fd);
    disk_close(b->disk);
    free(b->dirty);
    free(b->ios);
    pthread_mutex_destroy(&b->ctl_lock);
    pthread_cond_destroy(&b->ctl_cond);
    virtio_dev_fini(d);
    free(b);
}

static int blk_save(struct virtio_dev *d, struct state_writer *w, vs_err *err)
{
    struct vs_rate_config rc;
    uint64_t throttled;
    virtio_blk_get_rate_limit(d, &rc, &throttled);
    virtio_rate_save(w, d->name, &rc); /* none too: a limit lifted live stays lifted */
    return 0;
}

static int blk_load(struct virtio_dev *d, struct state_reader *r, vs_err *err)
{
    struct vs_rate_config rc;
    bool found;
    if (virtio_rate_load(r, d->name, &rc, &found, err) < 0)
        return -1;
    if (found)
        virtio_blk_set_rate_limit(d, &rc);
    return 0;
}

static int blk_queue_eventfd(struct virtio_dev *d, unsigned q)
{
    struct virtio_blk *b = to_blk(d);
    return q < b->nq ? b->kick_fd[q] : -1;
}

static const struct virtio_dev_ops blk_ops = {
    .queue_notify = blk_notify,
    .queue_eventfd = blk_queue_eventfd,
    .driver_ok = blk_driver_ok,
    .reset = blk_reset,
    .pause = blk_pause,
    .resume = blk_resume,
    .save = blk_save,
    .load = blk_load,
    .destroy = blk_destroy,
};

struct virtio_dev *virtio_blk_new(struct guest_mem *mem, const struct vm_disk_config *dc,
                                  unsigned index, unsigned nqueues, vs_err *err)
{
    struct virtio_blk *b = calloc(1, sizeof(*b));
    if (!b) {
        vs_error(err, ENOMEM, "virtio-blk: out of memory");
        return NULL;
    }
    snprintf(b->name, sizeof(b->name), "virtio-blk%u", index);
    b->index = index;
    pthread_mutex_init(&b->ctl_lock, NULL);
    pthread_cond_init(&b->ctl_cond, NULL);
    b->ctrl_fd = -1;
    if (nqueues < 1)
        nqueues = 1;
    if (nqueues > VIRTIO_MAX_QUEUES)
        nqueues = VIRTIO_MAX_QUEUES;
    b->nq = nqueues;
    for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
        b->kick_fd[q] = -1;
    if (dc->serial)
        snprintf(b->serial, sizeof(b->serial), "%s", dc->serial);
    else
        snprintf(b->serial, sizeof(b->serial), "vessel-disk%u", index);

    if (disk_open(dc->path, dc->format, dc->readonly, dc->cache, &b->disk, err) < 0)
        goto fail_early;
    uint64_t features = (1ULL << VIRTIO_BLK_F_SEG_MAX) | (1ULL << VIRTIO_BLK_F_BLK_SIZE) |
                        (1ULL << VIRTIO_BLK_F_FLUSH);
    if (b->disk->readonly)
        features |= 1ULL << VIRTIO_BLK_F_RO;
    if (nqueues > 1)
        features |= 1ULL << VIRTIO_BLK_F_MQ;
    if (!b->disk->readonly && b->disk->ops->discard)
        features |= 1ULL << VIRTIO_BLK_F_DISCARD;
    if (!b->disk->readonly && b->disk->ops->write_zeroes)
        features |= 1ULL << VIRTIO_BLK_F_WRITE_ZEROES;
    virtio_dev_init(&b->dev, b->name, VIRTIO_ID_BLOCK, features, nqueues, VIRTQ_MAX_SIZE, &blk_ops,
                    mem);
    struct virtio_dev *d = &b->dev;
    d->config_len = VIRTIO_BLK_CFG_SIZE;
    virtio_config_put_u64(d, VIRTIO_BLK_CFG_CAPACITY, b->disk->size / 512);
    virtio_config_put_u32(d, VIRTIO_BLK_CFG_SEG_MAX, VIRTQ_MAX_SIZE - 2);
    virtio_config_put_u32(d, VIRTIO_BLK_CFG_BLK_SIZE, 512);
    virtio_config_put_u16(d, VIRTIO_BLK_CFG_NUM_QUEUES, (uint16_t)nqueues);
    virtio_config_put_u32(d, VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS, 1u << 22);
    virtio_config_put_u32(d, VIRTIO_BLK_CFG_MAX_DISCARD_SEG, VIRTIO_BLK_MAX_SEGS);
    virtio_config_put_u32(d, VIRTIO_BLK_CFG_DISCARD_ALIGN, 8);
    virtio_config_put_u32(d, VIRTIO_BLK_CFG_MAX_WZ_SECTORS, 1u << 22);
    virtio_config_put_u32(d, VIRTIO_BLK_CFG_MAX_WZ_SEG, VIRTIO_BLK_MAX_SEGS);
    d->config[VIRTIO_BLK_CFG_WZ_MAY_UNMAP] = 1;

    b->ios = calloc(BLK_MAX_INFLIGHT, sizeof(*b->ios));
    if (!b->ios) {
        vs_error(err, ENOMEM, "%s: out of memory", b->name);
        goto fail;
    }
    for (unsigned i = 0; i < BLK_MAX_INFLIGHT; i++) {
        b->ios[i].next_free = b->free_list;
        b->free_list = &b->ios[i];
    }
    for (unsigned q = 0; q < nqueues; q++) {
        b->kick_fd[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (b->kick_fd[q] < 0) {
            vs_error_errno(err, "%s: eventfd", b->name);
            goto fail;
        }
    }
    b->ctrl_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (b->ctrl_fd < 0) {
        vs_error_errno(err, "%s: eventfd", b->name);
        goto fail;
    }
    int ret = ring_init(&b->ring);
    if (ret < 0) {
        vs_error(err, -ret, "%s: io_uring_queue_init: %s", b->name, strerror(-ret));
        goto fail;
    }
    b->ring_ok = true;
    ret = pthread_create(&b->thread, NULL, blk_thread, b);
    if (ret) {
        vs_error(err, ret, "%s: cannot start the I/O thread: %s", b->name, strerror(ret));
        goto fail;
    }
    b->thread_started = true;
    virtio_blk_set_rate_limit(d, &dc->rate);
    return d;
fail:
    blk_destroy(d);
    return NULL;
fail_early:
    pthread_mutex_destroy(&b->ctl_lock);
    pthread_cond_destroy(&b->ctl_cond);
    free(b);
    vs_error_prefix(err, "--disk: ");
    return NULL;
}

struct disk *virtio_blk_disk(struct virtio_dev *d, unsigned *index)
{
    if (d->ops != &blk_ops)
        return NULL;
    *index = to_blk(d)->index;
    return to_blk(d)->disk;
}

int virtio_blk_track_start(struct virtio_dev *d, unsigned chunk_shift, size_t *words, vs_err *err)
{
    if (d->ops != &blk_ops)
        return vs_error(err, EINVAL, "%s is not a disk", d->name);
    struct virtio_blk *b = to_blk(d);
    uint64_t chunks = (b->disk->size + (1ull << chunk_shift) - 1) >> chunk_shift;
    size_t n = (size_t)((chunks + 63) / 64);
    uint64_t *bits = calloc(n ? n : 1, 8);
    if (!bits)
        return vs_error(err, ENOMEM, "%s: out of memory for its dirty map", d->name);
    pthread_mutex_lock(&b->ctl_lock);
    free(b->dirty);
    b->dirty = bits;
    b->dirty_words = n;
    b->dirty_shift = chunk_shift;
    pthread_mutex_unlock(&b->ctl_lock);
    *words = n;
    return 0;
}

void virtio_blk_track_fetch(struct virtio_dev *d, uint64_t *out, size_t words)
{
    struct virtio_blk *b = to_blk(d);
    pthread_mutex_lock(&b->ctl_lock);
    for (size_t i = 0; b->dirty && i < words && i < b->dirty_words; i++) {
        out[i] |= b->dirty[i];
        b->dirty[i] = 0;
    }
    pthread_mutex_unlock(&b->ctl_lock);
}

void virtio_blk_track_stop(struct virtio_dev *d)
{
    if (d->ops != &blk_ops)
        return;
    struct virtio_blk *b = to_blk(d);
    pthread_mutex_lock(&b->ctl_lock);
    free(b->dirty);
    b->dirty = NULL;
    b->dirty_words = 0;
    pthread_mutex_unlock(&b->ctl_lock);
}

int virtio_blk_resize(struct virtio_dev *d, uint64_t size, vs_err *err)
{
    if (d->ops != &blk_ops)
        return vs_error(err, EINVAL, "%s is not a disk", d->name);
    struct virtio_blk *b = to_blk(d);
    struct disk *disk = b->disk;
    if (disk->readonly)
        return vs_error(err, EROFS, "disk %u (%s) is read-only: it cannot be resized", b->index,
                        disk->path);
    if (size == 0 || size % 512)
        return vs_error(err, EINVAL, "disk %u: %llu bytes is not a positive multiple of 512",
                        b->index, (unsigned long long)size);
    if (size < disk->size)
        return vs_error(err, EINVAL,
                        "disk %u: shrinking from %llu to %llu bytes under a running guest would "
                        "cut off its data: only growing is allowed",
                        b->index, (unsigned long long)disk->size, (unsigned long long)size);
    struct stat st;
    if (disk->direct_fd < 0 || fstat(disk->direct_fd, &st) < 0 || !S_ISREG(st.st_mode))
        return vs_error(err, ENOTSUP,
                        "disk %u (%s): only raw image files can be resized while the VM runs",
                        b->index, disk->path);
    if (size == disk->size)
        return 0;
    if ((uint64_t)st.st_size < size && ftruncate(disk->direct_fd, (off_t)size) < 0)
        return vs_error_errno(err, "disk %u: growing %s", b->index, disk->path);
    pthread_mutex_lock(&d->lock);
    disk->size = size; /* requests are checked against it under this lock */
    virtio_config_put_u64(d, VIRTIO_BLK_CFG_CAPACITY, size / 512);
    if (d->status & VIRTIO_STATUS_DRIVER_OK)
        virtio_config_changed_locked(d);
    pthread_mutex_unlock(&d->lock);
    return 0;
}

void virtio_blk_set_rate_limit(struct virtio_dev *d, const struct vs_rate_config *rc)
{
    struct virtio_blk *b = to_blk(d);
    pthread_mutex_lock(&d->lock);
    uint64_t throttled = b->rl.throttled;
    vs_rate_limit_set(&b->rl, rc, vs_now_ns());
    b->rl.throttled = throttled;
    b->rl_on = vs_rate_config_active(rc);
    pthread_mutex_unlock(&d->lock);
    if (b->thread_started)
        ctrl_kick(b); /* requests held back may go now */
}

void virtio_blk_get_rate_limit(struct virtio_dev *d, struct vs_rate_config *rc, uint64_t *throttled)
{
    struct virtio_blk *b = to_blk(d);
    pthread_mutex_lock(&d->lock);
    *rc = b->rl.cfg;
    *throttled = b->rl.throttled;
    pthread_mutex_unlock(&d->lock);
}
