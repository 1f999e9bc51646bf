#include "migrate/postcopy.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "migrate/wire.h"
#include "util/io.h"
#include "util/log.h"
#include "util/thread_role.h"

#define BOUNCE (256u << 10)

struct postcopy {
    struct mig_conn *conn;
    int uffd, stop_fd;
    struct mig_incoming *in;
    pthread_t fault_thread, recv_thread;
    bool fault_started, recv_started;
    pthread_mutex_t send_lock;
    uint64_t *requested; /* pages asked for (fault thread only) */
    bool done;           /* atomic: every page is in */
    /* minor faults (shmem): stale pages stay in the memfd, the guest's
     * mappings of them are dropped, and a page arriving is written over
     * the stale one through the receiving mapping, then mapped in with
     * UFFDIO_CONTINUE; else stale pages are punched out (slow: about 2 us a
     * page with the guest stopped) and arrivals copied in with UFFDIO_COPY */
    bool minor;
    pthread_mutex_t go_lock;
    pthread_cond_t go_cond;
    int go;        /* under go_lock: 1 GO came, -1 the connection failed first */
    bool stopping; /* atomic: the guest stopped; give up quietly */
    uint64_t faults, requests;
};

static uint64_t missing_left(const struct postcopy *pc)
{
    uint64_t n = 0;
    for (size_t i = 0; i < pc->in->missing_words; i++)
        n += (uint64_t)__builtin_popcountll(__atomic_load_n(&pc->in->missing[i], __ATOMIC_ACQUIRE));
    return n;
}

/* The guest has run with pages it can never get: it must not run on.
 * Returns only when the guest has stopped anyway (postcopy_stop). */
static void guest_lost(struct postcopy *pc, const char *why)
{
    if (__atomic_load_n(&pc->stopping, __ATOMIC_ACQUIRE))
        return;
    fprintf(stderr,
            "vessel: post-copy migration: %s with %llu pages of guest memory still on the "
            "source: the guest is lost and stops here\n",
            why, (unsigned long long)missing_left(pc));
    _exit(1);
}

/* Where a page of the memory image is: region and bit index (bit counts
 * across the concatenated per-region bitmaps); false when outside them. */
static bool locate(const struct mig_incoming *in, uint64_t off, unsigned *ri, uint64_t *bit,
                   uint64_t *page)
{
    uint64_t base = 0;
    for (unsigned i = 0; i < in->nregions; i++) {
        const struct mig_image_region *r = &in->regions[i];
        uint64_t words = (r->size / GUEST_PAGE_SIZE + 63) / 64;
        if (off >= r->offset && off < r->offset + r->size) {
            *ri = i;
            *page = (off - r->offset) / GUEST_PAGE_SIZE;
            *bit = base * 64 + *page;
            return true;
        }
        base += words;
    }
    return false;
}

static bool test_bit(const uint64_t *b, uint64_t bit)
{
    return __atomic_load_n(&b[bit / 64], __ATOMIC_ACQUIRE) >> (bit % 64) & 1;
}

static void clear_bit(uint64_t *b, uint64_t bit)
{
    __atomic_fetch_and(&b[bit / 64], ~(1ULL << (bit % 64)), __ATOMIC_RELEASE);
}

static int send_locked(struct postcopy *pc, uint32_t type, uint64_t off, vs_err *err)
{
    pthread_mutex_lock(&pc->send_lock);
    int rc = mig_send(pc->conn, type, off, NULL, 0, err);
    pthread_mutex_unlock(&pc->send_lock);
    return rc;
}

static int map_in(struct postcopy *pc, uint8_t *dst)
{
    struct uffdio_continue c = {.range = {.start = (uintptr_t)dst, .len = GUEST_PAGE_SIZE}};
    return ioctl(pc->uffd, UFFDIO_CONTINUE, &c) < 0 && errno != EEXIST ? -1 : 0;
}

/* Place one page that was due (dst in the guest's mapping, img the same
 * page in the receiving mapping); one already there stays as it is. */
static int place(struct postcopy *pc, uint8_t *dst, uint8_t *img, const void *src, bool zero)
{
    if (pc->minor) {
        /* not mapped in the guest's view until map_in: no one sees it torn */
        if (zero)
            memset(img, 0, GUEST_PAGE_SIZE);
        else
            memcpy(img, src, GUEST_PAGE_SIZE);
        return map_in(pc, dst);
    }
    int rc;
    if (zero) {
        struct uffdio_zeropage z = {.range = {.start = (uintptr_t)dst, .len = GUEST_PAGE_SIZE}};
        rc = ioctl(pc->uffd, UFFDIO_ZEROPAGE, &z);
    } else {
        struct uffdio_copy c = {
            .dst = (uintptr_t)dst, .src = (uintptr_t)src, .len = GUEST_PAGE_SIZE};
        rc = ioctl(pc->uffd, UFFDIO_COPY, &c);
    }
    return rc < 0 && errno != EEXIST ? -1 : 0;
}

static void *fault_thread(void *arg)
{
    struct postcopy *pc = arg;
    pthread_setname_np(pthread_self(), "vessel-uffd");
    vs_thread_role_enter(VS_THREAD_IO, "vessel-uffd");
    struct mig_incoming *in = pc->in;
    for (;;) {
        struct pollfd p[2] = {{.fd = pc->uffd, .events = POLLIN},
                              {.fd = pc->stop_fd, .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents)
            break;
        struct uffd_msg msg;
        ssize_t n = read(pc->uffd, &msg, sizeof(msg));
        if (n != sizeof(msg) || msg.event != UFFD_EVENT_PAGEFAULT)
            continue;
        pc->faults++;
        uint64_t addr = msg.arg.pagefault.address & ~(GUEST_PAGE_SIZE - 1);
        for (unsigned i = 0; i < in->nregions; i++) {
            const struct mig_image_region *r = &in->regions[i];
            if (addr < (uintptr_t)r->hva || addr >= (uintptr_t)r->hva + r->size)
                continue;
            uint64_t off = r->offset + (addr - (uintptr_t)r->hva);
            unsigned ri;
            uint64_t bit, page;
            if (!locate(in, off, &ri, &bit, &page))
                break;
            bool minor = msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_MINOR;
            if (test_bit(in->missing, bit)) {
                /* the source has it: ask once, its arrival wakes the guest */
                if (!test_bit(pc->requested, bit)) {
                    pc->requested[bit / 64] |= 1ULL << (bit % 64);
                    pc->requests++;
                    vs_err err;
                    if (send_locked(pc, MIG_PAGE_REQUEST, off, &err) < 0)
                        guest_lost(pc, "the link to the source failed");
                }
            } else if (minor) {
                /* here and current: map it in */
                map_in(pc, (uint8_t *)(uintptr_t)addr);
            } else {
                /* never sent: zero at the source */
                struct uffdio_zeropage z = {.range = {.start = addr, .len = GUEST_PAGE_SIZE}};
                ioctl(pc->uffd, UFFDIO_ZEROPAGE, &z);
            }
            break;
        }
    }
    return NULL;
}

static int recv_full(struct postcopy *pc, void *buf, size_t n)
{
    return mig_conn_read(pc->conn, buf, n);
}

static void unregister_all(struct postcopy *pc)
{
    for (unsigned i = 0; i < pc->in->nregions; i++) {
        struct uffdio_range r = {.start = (uintptr_t)pc->in->regions[i].hva,
                                 .len = pc->in->regions[i].size};
        ioctl(pc->uffd, UFFDIO_UNREGISTER, &r);
    }
}

static void *recv_thread(void *arg)
{
    struct postcopy *pc = arg;
    pthread_setname_np(pthread_self(), "vessel-postcopy");
    vs_thread_role_enter(VS_THREAD_IO, "vessel-postcopy");
    struct mig_incoming *in = pc->in;
    uint8_t *bounce = malloc(BOUNCE);
    const char *lost = bounce ? NULL : "out of memory";
    while (!lost) {
        uint8_t h[MIG_RECORD_SIZE];
        struct mig_record r;
        vs_err err = {0};
        if (recv_full(pc, h, sizeof(h)) < 0) {
            lost = "the source went away";
            break;
        }
        mig_record_decode(h, &r, &err);
        if (r.type == MIG_GO) {
            pthread_mutex_lock(&pc->go_lock);
            pc->go = mig_record_check(&r, NULL, &err) == 0 && !r.off && !r.len ? 1 : -1;
            pthread_cond_broadcast(&pc->go_cond);
            pthread_mutex_unlock(&pc->go_lock);
            continue;
        }
        if (r.type == MIG_POSTCOPY_DONE) {
            if (mig_record_check(&r, NULL, &err) < 0 || missing_left(pc))
                lost = "the source said it was done";
            break;
        }
        unsigned ri;
        uint64_t bit, page;
        bool zero = r.type == MIG_ZERO;
        if ((r.type != MIG_MEMORY && !zero) || r.len == 0 || r.len > BOUNCE ||
            r.off % GUEST_PAGE_SIZE || r.len % GUEST_PAGE_SIZE ||
            !locate(in, r.off, &ri, &bit, &page) ||
            page + r.len / GUEST_PAGE_SIZE > in->regions[ri].size / GUEST_PAGE_SIZE) {
            lost = "the source sent a malformed record";
            break;
        }
        if (!zero && recv_full(pc, bounce, (size_t)r.len) < 0) {
            lost = "the source went away";
            break;
        }
        if (mig_record_check(&r, zero ? NULL : bounce, &err) < 0) {
            lost = "a corrupted page arrived";
            break;
        }
        uint8_t *dst = in->regions[ri].hva + page * GUEST_PAGE_SIZE;
        for (uint64_t k = 0; k < r.len / GUEST_PAGE_SIZE; k++) {
            if (!test_bit(in->missing, bit + k))
                continue; /* already placed */
            uint8_t *img = in->image + in->regions[ri].offset + (page + k) * GUEST_PAGE_SIZE;
            if (place(pc, dst + k * GUEST_PAGE_SIZE, img, bounce + k * GUEST_PAGE_SIZE, zero) < 0) {
                lost = "placing a page failed";
                break;
            }
            clear_bit(in->missing, bit + k); /* only once it is there */
        }
    }
    free(bounce);
    if (lost) {
        pthread_mutex_lock(&pc->go_lock);
        if (pc->go == 0) {
            /* before GO: the guest never ran here, the source keeps it */
            pc->go = -1;
            pthread_cond_broadcast(&pc->go_cond);
            pthread_mutex_unlock(&pc->go_lock);
            return NULL;
        }
        pthread_mutex_unlock(&pc->go_lock);
        guest_lost(pc, lost); /* returns only when the guest stopped anyway */
        return NULL;
    }
    /* every page is in: no more faults to serve (waiters are woken) */
    unregister_all(pc);
    __atomic_store_n(&pc->done, true, __ATOMIC_RELEASE);
    vs_err err;
    if (send_locked(pc, MIG_COMPLETE, 0, &err) < 0)
        vs_warn("post-copy: telling the source it may go: %s", err.msg);
    return NULL;
}

int postcopy_send(struct postcopy *pc, uint32_t type, vs_err *err)
{
    return send_locked(pc, type, 0, err);
}

int postcopy_wait_go(struct postcopy *pc, int timeout_ms, vs_err *err)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (dl.tv_nsec >= 1000000000) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&pc->go_lock);
    int rc = 0;
    while (pc->go == 0 && rc == 0)
        rc = pthread_cond_timedwait(&pc->go_cond, &pc->go_lock, &dl);
    int go = pc->go;
    pthread_mutex_unlock(&pc->go_lock);
    if (go == 1)
        return 0;
    return vs_error(err, go < 0 ? ECONNRESET : ETIMEDOUT,
                    "migration: no go-ahead from the source (%s)",
                    go < 0 ? "the connection failed" : "timed out");
}

int postcopy_start(struct mig_conn *conn, struct mig_incoming *in, struct postcopy **out,
                   vs_err *err)
{
    struct postcopy *pc = calloc(1, sizeof(*pc));
    if (!pc)
        return vs_error(err, ENOMEM, "out of memory");
    pc->conn = conn;
    pc->in = in;
    pc->uffd = -1;
    pc->stop_fd = eventfd(0, EFD_CLOEXEC);
    pthread_mutex_init(&pc->send_lock, NULL);
    pthread_mutex_init(&pc->go_lock, NULL);
    pthread_cond_init(&pc->go_cond, NULL);
    pc->requested = calloc(in->missing_words + 1, 8);
    pc->uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (pc->uffd < 0) {
        vs_error_errno(err, "post-copy: userfaultfd");
        goto fail;
    }
    struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATURE_MINOR_SHMEM};
    if (ioctl(pc->uffd, UFFDIO_API, &api) == 0) {
        pc->minor = true;
    } else {
        /* an older kernel: missing faults only (the API call is once per fd) */
        close(pc->uffd);
        pc->uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
        api = (struct uffdio_api){.api = UFFD_API};
        if (pc->uffd < 0 || ioctl(pc->uffd, UFFDIO_API, &api) < 0) {
            vs_error_errno(err, "post-copy: UFFDIO_API");
            goto fail;
        }
    }
    /* The pages still to come are here in an older version (an earlier
     * round sent them before the guest wrote them again): nothing may see
     * them. With minor faults it is enough that the guest's mappings do not
     * map them; else they go from the memfd. */
    uint64_t base = 0;
    for (unsigned i = 0; i < in->nregions; i++) {
        const struct mig_image_region *r = &in->regions[i];
        uint64_t pages = r->size / GUEST_PAGE_SIZE;
        for (uint64_t pg = 0; pg < pages;) {
            if (!test_bit(in->missing, base * 64 + pg)) {
                pg++;
                continue;
            }
            uint64_t e = pg;
            while (e < pages && test_bit(in->missing, base * 64 + e))
                e++;
            int rc = pc->minor ? madvise(r->hva + pg * GUEST_PAGE_SIZE, (e - pg) * GUEST_PAGE_SIZE,
                                         MADV_DONTNEED)
                               : fallocate(in->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                           (off_t)(r->offset + pg * GUEST_PAGE_SIZE),
                                           (off_t)((e - pg) * GUEST_PAGE_SIZE));
            if (rc < 0) {
                vs_error_errno(err, "post-copy: dropping stale guest pages");
                goto fail;
            }
            pg = e;
        }
        base += (pages + 63) / 64;
    }
    for (unsigned i = 0; i < in->nregions; i++) {
        struct uffdio_register reg = {
            .range = {.start = (uintptr_t)in->regions[i].hva, .len = in->regions[i].size},
            .mode = UFFDIO_REGISTER_MODE_MISSING | (pc->minor ? UFFDIO_REGISTER_MODE_MINOR : 0)};
        if (ioctl(pc->uffd, UFFDIO_REGISTER, &reg) < 0) {
            vs_error_errno(err, "post-copy: registering guest memory with userfaultfd");
            goto fail;
        }
    }
    if (pc->stop_fd < 0 || !pc->requested) {
        vs_error(err, ENOMEM, "post-copy: out of resources");
        goto fail;
    }
    if (pthread_create(&pc->fault_thread, NULL, fault_thread, pc) == 0)
        pc->fault_started = true;
    if (pthread_create(&pc->recv_thread, NULL, recv_thread, pc) == 0)
        pc->recv_started = true;
    if (!pc->fault_started || !pc->recv_started) {
        vs_error(err, EAGAIN, "post-copy: cannot start its threads");
        goto fail;
    }
    *out = pc;
    return 0;
fail:
    postcopy_stop(pc);
    return -1;
}

void postcopy_stop(struct postcopy *pc)
{
    if (!pc)
        return;
    __atomic_store_n(&pc->stopping, true, __ATOMIC_RELEASE);
    if (pc->recv_started) {
        if (!__atomic_load_n(&pc->done, __ATOMIC_ACQUIRE))
            shutdown(pc->conn->fd, SHUT_RDWR); /* the guest stopped first */
        pthread_join(pc->recv_thread, NULL);
    }
    uint64_t one = 1;
    if (pc->stop_fd >= 0 && write(pc->stop_fd, &one, sizeof(one)) < 0)
        vs_warn("post-copy: stopping the fault thread: %s", strerror(errno));
    if (pc->fault_started)
        pthread_join(pc->fault_thread, NULL);
    if (pc->uffd >= 0)
        close(pc->uffd);
    if (pc->stop_fd >= 0)
        close(pc->stop_fd);
    pthread_mutex_destroy(&pc->send_lock);
    pthread_mutex_destroy(&pc->go_lock);
    pthread_cond_destroy(&pc->go_cond);
    free(pc->requested);
    free(pc);
}
