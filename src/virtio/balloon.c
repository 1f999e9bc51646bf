/* virtio-balloon device: inflate and deflate requests and free page reports
 * are served by the device's thread (a madvise per run of pages, off the
 * vCPU that kicked), which also asks the guest for fresh statistics every
 * few seconds by handing back the statistics buffer it holds (virtio 1.2,
 * 5.5.6.3).
 *
 * Pages the guest gives up are dropped from the host: MADV_REMOVE punches
 * them out of a memfd (shared) mapping, MADV_DONTNEED drops them from a
 * private one (huge-page RAM, or a restored snapshot's copy-on-write
 * mapping, whose file is never touched). The guest may use them again at
 * any moment (no MUST_TELL_HOST): they fault in as zeroes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include "util/log.h"
#include "virtio/balloon.h"
#include "virtio/devices.h"
#include "util/thread_role.h"

#define Q_INFLATE 0
#define Q_DEFLATE 1
#define MAX_STATS_SECS 3600
#define PFN_BATCH 256

struct virtio_balloon {
    struct virtio_dev dev;
    bool has_stats, has_reporting;
    unsigned q_stats, q_report; /* their queue numbers (they follow the offered features) */
    struct virtq_elem elem;
    /* under dev.lock */
    uint32_t target_pages;
    unsigned stats_secs;
    struct balloon_stats stats;
    bool stats_valid;
    uint64_t stats_at_ms; /* CLOCK_MONOTONIC of the last report */
    bool stats_held;      /* the driver's statistics buffer, popped and not yet given back */
    uint16_t stats_head;
    struct virtq_elem stats_elem;
    bool paused;
    unsigned pending;                               /* queues kicked, for the thread */
    bool busy;                                      /* the thread is serving chains */
    uint64_t inflated, deflated, reported, refused; /* bytes, bytes, bytes, pages */
    /* the device's thread */
    pthread_t thread;
    bool thread_started, exit_requested;
    pthread_cond_t cond;
};

static struct virtio_balloon *to_bl(struct virtio_dev *d)
{
    return (struct virtio_balloon *)d;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct release_ctx {
    struct virtio_balloon *b;
    uint64_t count; /* bytes */
};

static void release(void *opaque, uint8_t *hva, uint64_t gpa, uint64_t len)
{
    struct release_ctx *c = opaque;
    if (madvise(hva, len, MADV_REMOVE) < 0 && madvise(hva, len, MADV_DONTNEED) < 0)
        vs_debug("%s: madvise %llu bytes at 0x%llx: %s", c->b->dev.name, (unsigned long long)len,
                 (unsigned long long)gpa, strerror(errno));
    /* a diff snapshot records the page as it is now (a hole) */
    guest_mem_mark_dirty(c->b->dev.mem, gpa, len);
    c->count += len;
}

/* Only count: the guest takes the pages back by touching them. */
static void take_back(void *opaque, uint8_t *hva, uint64_t gpa, uint64_t len)
{
    struct release_ctx *c = opaque;
    c->count += len;
}

/* Lock held; dropped while the pages of one chain are given back (madvise
 * is slow: tens of microseconds a call on some hosts, and the vCPUs and the
 * API must not wait for the device's lock meanwhile). The driver waits for
 * each chain to be used before it touches the pages again, so the chain is
 * pushed only once they are gone. */
static void serve_chain(struct virtio_balloon *b, unsigned q)
{
    struct virtio_dev *d = &b->dev;
    struct virtq *vq = &d->vqs[q];
    struct release_ctx c = {b, 0};
    uint64_t refused = 0;
    while (virtio_dev_running(d) && !b->paused) {
        int ret = virtq_pop(vq, &b->elem);
        if (ret < 0) {
            virtio_dev_set_broken_locked(d, vq->error);
            break;
        }
        if (ret == 0)
            break;
        pthread_mutex_unlock(&d->lock);
        if (q == Q_INFLATE || q == Q_DEFLATE) {
            struct balloon_range ranges[PFN_BATCH];
            size_t pos = 0, n;
            while ((n = balloon_parse_pfns(b->elem.iov, b->elem.nout, &pos, PFN_BATCH, ranges)) > 0)
                for (size_t i = 0; i < n; i++)
                    balloon_release_range(d->mem, ranges[i], q == Q_INFLATE ? release : take_back,
                                          &c, &refused);
        } else {
            /* a free page report: one free range per descriptor */
            for (unsigned i = 0; i < b->elem.nout + b->elem.nin; i++) {
                struct balloon_range r = {b->elem.gpa[i], b->elem.iov[i].iov_len};
                if (balloon_align_range(&r.gpa, &r.len))
                    balloon_release_range(d->mem, r, release, &c, &refused);
            }
        }
        pthread_mutex_lock(&d->lock);
        *(q == Q_INFLATE ? &b->inflated : q == Q_DEFLATE ? &b->deflated : &b->reported) += c.count;
        b->refused += refused;
        c.count = refused = 0;
        virtq_push(vq, &b->elem, 0);
        virtio_queue_notify_locked(d, q);
    }
}

/* Lock held. The driver put (back) its statistics buffer: read it and keep
 * it until the next refresh. */
static void serve_stats(struct virtio_balloon *b)
{
    struct virtio_dev *d = &b->dev;
    struct virtq *vq = &d->vqs[b->q_stats];
    while (virtio_dev_running(d)) {
        int ret = virtq_pop(vq, &b->stats_elem);
        if (ret < 0) {
            virtio_dev_set_broken_locked(d, vq->error);
            return;
        }
        if (ret == 0)
            return;
        if (b->stats_held) {
            /* a driver that queues a second buffer gets the first back */
            virtq_push_head(vq, b->stats_head, 0);
            virtio_queue_notify_locked(d, b->q_stats);
        }
        uint8_t buf[VIRTIO_BALLOON_S_NR * 10 * 2];
        size_t len = iov_to_buf(b->stats_elem.iov, b->stats_elem.nout, 0, buf, sizeof(buf));
        struct balloon_stats st = {0};
        balloon_parse_stats(buf, len, &st);
        b->stats = st;
        b->stats_valid = true;
        b->stats_at_ms = now_ms();
        b->stats_held = true;
        b->stats_head = b->stats_elem.head;
    }
}

/* Lock held: give the statistics buffer back, which asks for new ones. */
static void request_stats(struct virtio_balloon *b)
{
    struct virtio_dev *d = &b->dev;
    if (!b->stats_held || b->paused || !virtio_dev_running(d))
        return;
    b->stats_held = false;
    if (virtq_push_head(&d->vqs[b->q_stats], b->stats_head, 0))
        virtio_queue_notify_locked(d, b->q_stats);
}

/* A kick (vCPU thread): the device's thread serves it. Statistics are only
 * read, so they are taken at once. */
static void balloon_notify(struct virtio_dev *d, unsigned q)
{
    struct virtio_balloon *b = to_bl(d);
    pthread_mutex_lock(&d->lock);
    if (b->has_stats && q == b->q_stats) {
        serve_stats(b);
    } else if (q < d->nvqs) {
        b->pending |= 1u << q;
        pthread_cond_broadcast(&b->cond);
    }
    pthread_mutex_unlock(&d->lock);
}

static void balloon_driver_ok(struct virtio_dev *d)
{
    for (unsigned q = 0; q < d->nvqs; q++)
        balloon_notify(d, q);
}

/* Serves inflate, deflate and report chains, and asks for statistics every
 * stats_secs. */
static void *balloon_thread(void *opaque)
{
    struct virtio_balloon *b = opaque;
    struct virtio_dev *d = &b->dev;
    vs_thread_role_enter(VS_THREAD_IO, "virtio-balloon");
    pthread_mutex_lock(&d->lock);
    uint64_t next_stats = 0;
    unsigned secs = b->stats_secs;
    while (!b->exit_requested) {
        if (secs != b->stats_secs) { /* a new interval starts now */
            secs = b->stats_secs;
            next_stats = 0;
        }
        if (b->pending && !b->paused) {
            unsigned pending = b->pending;
            b->pending = 0;
            b->busy = true;
            for (unsigned q = 0; q < d->nvqs; q++)
                if ((pending >> q) & 1 && !(b->has_stats && q == b->q_stats))
                    serve_chain(b, q);
            b->busy = false;
            pthread_cond_broadcast(&b->cond); /* pause and reset wait for this */
            continue;
        }
        uint64_t now = now_ms();
        if (b->stats_secs && next_stats && now >= next_stats) {
            request_stats(b);
            next_stats = 0;
        }
        if (b->stats_secs && !next_stats)
            next_stats = now + b->stats_secs * 1000ull;
        if (!b->stats_secs) {
            next_stats = 0;
            pthread_cond_wait(&b->cond, &d->lock);
        } else {
            struct timespec ts = {(time_t)(next_stats / 1000), (long)(next_stats % 1000) * 1000000};
            pthread_cond_timedwait(&b->cond, &d->lock, &ts);
        }
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

/* Lock held: until the thread is between chains. */
static void wait_idle(struct virtio_balloon *b)
{
    while (b->busy)
        pthread_cond_wait(&b->cond, &b->dev.lock);
}

static void balloon_reset(struct virtio_dev *d)
{
    struct virtio_balloon *b = to_bl(d);
    pthread_mutex_lock(&d->lock);
    wait_idle(b);
    b->pending = 0;
    b->stats_held = false;
    /* a new driver starts with every page */
    virtio_config_put_u32(d, VIRTIO_BALLOON_CFG_ACTUAL, 0);
    pthread_mutex_unlock(&d->lock);
}

static void balloon_config_write(struct virtio_dev *d, uint32_t off, unsigned len)
{
    struct virtio_balloon *b = to_bl(d);
    /* num_pages is the device's: whatever the driver wrote there goes */
    pthread_mutex_lock(&d->lock);
    virtio_config_put_u32(d, VIRTIO_BALLOON_CFG_NUM_PAGES, b->target_pages);
    pthread_mutex_unlock(&d->lock);
}

/* Quiesce: the chain being served finishes, nothing new starts. */
static void balloon_pause(struct virtio_dev *d)
{
    pthread_mutex_lock(&d->lock);
    to_bl(d)->paused = true;
    wait_idle(to_bl(d));
    pthread_mutex_unlock(&d->lock);
}

static void balloon_resume(struct virtio_dev *d)
{
    struct virtio_balloon *b = to_bl(d);
    pthread_mutex_lock(&d->lock);
    b->paused = false;
    b->pending = (1u << d->nvqs) - 1; /* what was kicked meanwhile */
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&d->lock);
}

/* Section "<name>" (virtio-balloon0) version 1:
 *   u32 target_pages | u32 stats_secs | u32 stats_held | u32 stats_head |
 *   u32 stats_valid | u32 valid mask | u64 val[10] |
 *   u64 inflated, deflated, reported, refused */
static int balloon_save(struct virtio_dev *d, struct state_writer *w, vs_err *err)
{
    struct virtio_balloon *b = to_bl(d);
    pthread_mutex_lock(&d->lock);
    state_begin(w, d->name, 0, 1);
    state_put_u32(w, b->target_pages);
    state_put_u32(w, b->stats_secs);
    state_put_u32(w, b->stats_held);
    state_put_u32(w, b->stats_head);
    state_put_u32(w, b->stats_valid);
    state_put_u32(w, b->stats.valid);
    for (unsigned i = 0; i < VIRTIO_BALLOON_S_NR; i++)
        state_put_u64(w, b->stats.val[i]);
    state_put_u64(w, b->inflated);
    state_put_u64(w, b->deflated);
    state_put_u64(w, b->reported);
    state_put_u64(w, b->refused);
    state_end(w);
    pthread_mutex_unlock(&d->lock);
    return 0;
}

static int balloon_load(struct virtio_dev *d, struct state_reader *r, vs_err *err)
{
    struct virtio_balloon *b = to_bl(d);
    uint32_t version, target, secs, held, head, valid, mask;
    uint64_t val[VIRTIO_BALLOON_S_NR], counts[4];
    if (state_find(r, d->name, 0, &version, err) < 0)
        return -1;
    if (version != 1)
        return vs_error(err, EINVAL, "%s: unsupported state version %u", d->name, version);
    if (state_get_u32(r, &target, err) < 0 || state_get_u32(r, &secs, err) < 0 ||
        state_get_u32(r, &held, err) < 0 || state_get_u32(r, &head, err) < 0 ||
        state_get_u32(r, &valid, err) < 0 || state_get_u32(r, &mask, err) < 0)
        return -1;
    for (unsigned i = 0; i < VIRTIO_BALLOON_S_NR; i++)
        if (state_get_u64(r, &val[i], err) < 0)
            return -1;
    for (unsigned i = 0; i < 4; i++)
        if (state_get_u64(r, &counts[i], err) < 0)
            return -1;
    if (secs > MAX_STATS_SECS || (held && (!b->has_stats || head >= d->vqs[b->q_stats].num)))
        return vs_error(err, EINVAL, "%s: saved state is inconsistent", d->name);
    pthread_mutex_lock(&d->lock);
    b->target_pages = target;
    virtio_config_put_u32(d, VIRTIO_BALLOON_CFG_NUM_PAGES, target);
    b->stats_secs = secs;
    b->stats_held = held != 0;
    b->stats_head = (uint16_t)head;
    b->stats_valid = valid != 0;
    b->stats.valid = mask & ((1u << VIRTIO_BALLOON_S_NR) - 1);
    memcpy(b->stats.val, val, sizeof(val));
    b->stats_at_ms = now_ms();
    b->inflated = counts[0];
    b->deflated = counts[1];
    b->reported = counts[2];
    b->refused = counts[3];
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&d->lock);
    return 0;
}

static void balloon_destroy(struct virtio_dev *d)
{
    struct virtio_balloon *b = to_bl(d);
    if (b->thread_started) {
        pthread_mutex_lock(&d->lock);
        b->exit_requested = true;
        pthread_cond_broadcast(&b->cond);
        pthread_mutex_unlock(&d->lock);
        pthread_join(b->thread, NULL);
    }
    pthread_cond_destroy(&b->cond);
    virtio_dev_fini(d);
    free(b);
}

static const struct virtio_dev_ops balloon_ops = {
    .queue_notify = balloon_notify,
    .driver_ok = balloon_driver_ok,
    .reset = balloon_reset,
    .config_write = balloon_config_write,
    .pause = balloon_pause,
    .resume = balloon_resume,
    .save = balloon_save,
    .load = balloon_load,
    .destroy = balloon_destroy,
};

bool virtio_is_balloon(const struct virtio_dev *d)
{
    return d && d->ops == &balloon_ops;
}

static uint64_t max_target(const struct virtio_dev *d)
{
    uint64_t total = d->mem->total, keep = total / 16;
    if (keep < (16ULL << 20))
        keep = 16ULL << 20;
    return total > keep ? (total - keep) & ~(VIRTIO_BALLOON_PAGE - 1) : 0;
}

int virtio_balloon_set_target(struct virtio_dev *d, uint64_t bytes, vs_err *err)
{
    if (!virtio_is_balloon(d))
        return vs_error(err, ENODEV, "the VM has no balloon device (start it with --balloon)");
    struct virtio_balloon *b = to_bl(d);
    uint64_t max = max_target(d);
    if (bytes > max)
        return vs_error(err, EINVAL,
                        "balloon: %llu MiB is more than the guest can give (at most %llu MiB of "
                        "its %llu MiB)",
                        (unsigned long long)(bytes >> 20), (unsigned long long)(max >> 20),
                        (unsigned long long)(d->mem->total >> 20));
    pthread_mutex_lock(&d->lock);
    b->target_pages = (uint32_t)(bytes >> VIRTIO_BALLOON_PFN_SHIFT);
    virtio_config_put_u32(d, VIRTIO_BALLOON_CFG_NUM_PAGES, b->target_pages);
    if (d->status & VIRTIO_STATUS_DRIVER_OK)
        virtio_config_changed_locked(d);
    pthread_mutex_unlock(&d->lock);
    return 0;
}

int virtio_balloon_set_stats_interval(struct virtio_dev *d, unsigned secs, vs_err *err)
{
    if (!virtio_is_balloon(d))
        return vs_error(err, ENODEV, "the VM has no balloon device (start it with --balloon)");
    struct virtio_balloon *b = to_bl(d);
    if (!b->has_stats)
        return vs_error(err, EINVAL,
                        "balloon: started without a statistics queue (--balloon stats=0)");
    if (secs > MAX_STATS_SECS)
        return vs_error(err, EINVAL, "balloon: a statistics interval of %u s is over %u s", secs,
                        MAX_STATS_SECS);
    pthread_mutex_lock(&d->lock);
    b->stats_secs = secs;
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&d->lock);
    return 0;
}

void virtio_balloon_get_info(struct virtio_dev *d, struct virtio_balloon_info *out)
{
    struct virtio_balloon *b = to_bl(d);
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&d->lock);
    uint32_t actual;
    memcpy(&actual, d->config + VIRTIO_BALLOON_CFG_ACTUAL, 4);
    out->target_bytes = (uint64_t)b->target_pages << VIRTIO_BALLOON_PFN_SHIFT;
    out->actual_bytes = (uint64_t)actual << VIRTIO_BALLOON_PFN_SHIFT;
    out->max_target_bytes = max_target(d);
    out->stats_interval_s = b->stats_secs;
    out->deflate_on_oom = (d->host_features >> VIRTIO_BALLOON_F_DEFLATE_ON_OOM) & 1;
    out->free_page_reporting = b->has_reporting;
    out->stats_valid = b->stats_valid;
    out->stats = b->stats;
    out->stats_age_ms = b->stats_valid ? now_ms() - b->stats_at_ms : 0;
    out->inflated_bytes = b->inflated;
    out->deflated_bytes = b->deflated;
    out->reported_bytes = b->reported;
    out->refused_pages = b->refused;
    pthread_mutex_unlock(&d->lock);
}

struct virtio_dev *virtio_balloon_new(struct guest_mem *mem, const struct vm_balloon_config *bc,
                                      vs_err *err)
{
    if (bc->stats_secs > MAX_STATS_SECS) {
        vs_error(err, EINVAL, "--balloon: stats interval %u s is over %u s", bc->stats_secs,
                 MAX_STATS_SECS);
        return NULL;
    }
    struct virtio_balloon *b = calloc(1, sizeof(*b));
    if (!b) {
        vs_error(err, ENOMEM, "virtio-balloon: out of memory");
        return NULL;
    }
    /* Statistics are offered whenever the device is there (an interval of
     * 0 only stops asking), so the interval can be changed live. */
    b->has_stats = true;
    b->has_reporting = bc->free_page_reporting;
    uint64_t features = 1ULL << VIRTIO_BALLOON_F_STATS_VQ;
    if (bc->deflate_on_oom)
        features |= 1ULL << VIRTIO_BALLOON_F_DEFLATE_ON_OOM;
    if (b->has_reporting)
        features |= 1ULL << VIRTIO_BALLOON_F_REPORTING;
    /* Queues are numbered in the order of the offered features (as the
     * driver numbers them): inflate, deflate, stats, reporting. */
    unsigned nq = 2;
    b->q_stats = nq++;
    if (b->has_reporting)
        b->q_report = nq++;
    virtio_dev_init(&b->dev, "virtio-balloon0", VIRTIO_ID_BALLOON, features, nq, VIRTQ_MAX_SIZE,
                    &balloon_ops, mem);
    b->dev.config_len = VIRTIO_BALLOON_CFG_SIZE;
    b->stats_secs = bc->stats_secs;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b->cond, &ca);
    pthread_condattr_destroy(&ca);
    vs_err ignored = {0};
    if (bc->size && virtio_balloon_set_target(&b->dev, bc->size, err ? err : &ignored) < 0) {
        balloon_destroy(&b->dev);
        return NULL;
    }
    int ret = pthread_create(&b->thread, NULL, balloon_thread, b);
    if (ret) {
        vs_error(err, ret, "virtio-balloon: cannot start its thread: %s", strerror(ret));
        balloon_destroy(&b->dev);
        return NULL;
    }
    pthread_setname_np(b->thread, "virtio-balloon");
    b->thread_started = true;
    return &b->dev;
}
