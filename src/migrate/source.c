/* The source of a live migration (docs/migration.md). One thread per
 * migration, started by the control API:
 *
 *   connect, HELLO (machine, memory layout, CPU features), wait for ACCEPT
 *   round 0   every non-zero page, the guest running, dirty logging on
 *   round n   the pages dirtied during round n-1, until what is left would
 *             take less than the downtime limit at the measured bandwidth
 *             (auto-converge throttles a guest that dirties faster)
 *   last      pause; the rest of the pages, every device's state and the
 *             vmstate; END; wait for READY; GO; wait for RUNNING
 *
 * Until GO is sent any failure (the link, the destination, a refusal, a
 * cancel) resumes the guest here as if nothing happened. After GO the
 * destination may be running it: a failure then leaves the guest paused
 * here and says so (state "unknown"), never running twice. */
#include "migrate/source.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "migrate/disks.h"
#include "migrate/uri.h"
#include "migrate/wire.h"
#include "snapshot/sink.h"
#include "snapshot/snapshot.h"
#include "util/buf.h"
#include "util/io.h"
#include "util/log.h"
#include "util/parse.h"
#include "vm/config_json.h"

#define CONNECT_TIMEOUT_MS 5000
#define ACCEPT_TIMEOUT_MS 30000
#define READY_TIMEOUT_MS 60000 /* the destination checks the state and builds the machine */
#define RUNNING_TIMEOUT_MS 10000
#define THROTTLE_WINDOW_US 10000

struct migration;

struct mig_sink {
    struct snapshot_sink s;
    struct migration *m;
    uint8_t *bounce;
};

struct migration {
    struct vm_control *ctl;
    struct migrate_params p;
    void (*on_done)(void *opaque);
    void *opaque;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct migrate_progress prog; /* under lock */
    bool reported;                /* a terminal state was read (under lock) */
    bool cancel;                  /* atomic */
    bool no_return;               /* GO sent (under lock) */
    int fd;
    struct mig_conn conn; /* on fd: plain or TLS */
    bool urgent;          /* sending a page a guest waits for: not held to the cap */
    bool serving;         /* post-copy: the destination sends page requests */
    double t_start;
    struct mig_sink sink;
    /* auto-converge */
    pthread_t throttle;
    bool throttle_on, throttle_stop;
    unsigned throttle_pct; /* atomic */
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

const char *migrate_state_name(enum migrate_state s)
{
    static const char *const names[] = {"none",     "setup",     "active", "completing",
                                        "postcopy", "completed", "failed", "cancelled",
                                        "unknown",  "lost"};
    return s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

json_t *migrate_progress_json(const struct migrate_progress *p)
{
    json_t *j =
        json_pack("{s:s, s:i, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:i, s:f, s:f, s:I}", "state",
                  migrate_state_name(p->state), "round", (int)p->round, "memory_total",
                  (json_int_t)p->memory_total, "bytes_sent", (json_int_t)p->bytes_sent,
                  "pages_sent", (json_int_t)p->pages_sent, "zero_pages", (json_int_t)p->zero_pages,
                  "bytes_remaining", (json_int_t)p->bytes_remaining, "dirty_rate", p->dirty_rate,
                  "bandwidth", p->bandwidth, "expected_downtime_ms", p->expected_downtime_ms,
                  "throttle_pct", (int)p->throttle_pct, "downtime_ms", p->downtime_ms, "total_ms",
                  p->total_ms, "postcopy_requests", (json_int_t)p->postcopy_requests);
    if (j && p->state == MIGRATE_COMPLETED)
        json_object_set_new(j, "downtime_parts",
                            json_pack("{s:f, s:f, s:f}", "final_round_ms", p->final_round_ms,
                                      "destination_ms", p->destination_ms, "handover_ms",
                                      p->handover_ms));
    if (j) {
        json_object_set_new(j, "postcopy", json_boolean(p->postcopy));
        json_object_set_new(j, "disk_bytes_sent", json_integer((json_int_t)p->disk_bytes_sent));
    }
    if (j && p->error[0])
        json_object_set_new(j, "error", json_string(p->error));
    return j;
}

int migrate_params_from_json(const json_t *body, struct migrate_params *p, vs_err *err)
{
    memset(p, 0, sizeof(*p));
    p->downtime_limit_us = 20000;
    p->max_throttle = 99;
    if (!json_is_object(body))
        return vs_error(err, EINVAL, "body must be a JSON object with \"uri\"");
    const char *uri = json_string_value(json_object_get(body, "uri"));
    if (!uri)
        return vs_error(err, EINVAL, "\"uri\" (tcp:HOST:PORT or unix:PATH) is required");
    if (strlen(uri) >= sizeof(p->uri))
        return vs_error(err, EINVAL, "\"uri\" is too long");
    if (mig_uri_check(uri, err) < 0)
        return -1;
    strcpy(p->uri, uri);
    json_t *dl = json_object_get(body, "downtime_limit_ms");
    if (dl) {
        double v = json_number_value(dl);
        if (!json_is_number(dl) || !(v >= 0.1 && v <= 60000))
            return vs_error(err, EINVAL, "\"downtime_limit_ms\" must be a number in [0.1, 60000]");
        p->downtime_limit_us = (uint64_t)(v * 1000);
    }
    json_t *bw = json_object_get(body, "bandwidth");
    if (json_is_integer(bw) && json_integer_value(bw) >= 0) {
        p->bandwidth = (uint64_t)json_integer_value(bw);
    } else if (json_is_string(bw)) {
        if (vs_parse_size(json_string_value(bw), 1, &p->bandwidth, err) < 0)
            return vs_error_prefix(err, "\"bandwidth\" (bytes per second): ");
    } else if (bw && !json_is_null(bw)) {
        return vs_error(err, EINVAL, "\"bandwidth\" is bytes per second (a number or \"100M\")");
    }
    if (p->bandwidth && p->bandwidth < 65536)
        return vs_error(err, EINVAL, "\"bandwidth\" below 64 KiB/s would never finish");
    json_t *ac = json_object_get(body, "auto_converge");
    if (ac && !json_is_boolean(ac))
        return vs_error(err, EINVAL, "\"auto_converge\" is true or false");
    p->auto_converge = json_is_true(ac);
    json_t *pc = json_object_get(body, "postcopy");
    if (pc && !json_is_boolean(pc))
        return vs_error(err, EINVAL, "\"postcopy\" is true or false");
    p->postcopy = json_is_true(pc);
    json_t *cd = json_object_get(body, "copy_disks");
    if (cd && !json_is_boolean(cd))
        return vs_error(err, EINVAL, "\"copy_disks\" is true or false");
    p->copy_disks = json_is_true(cd);
    json_t *tls = json_object_get(body, "tls");
    if (tls && !json_is_object(tls))
        return vs_error(err, EINVAL, "\"tls\" is an object: psk_file, or ca [cert key] [hostname]");
    static const char *const tls_keys[] = {"psk_file", "ca", "cert", "key", "hostname"};
    char *const tls_slots[] = {p->tls_psk, p->tls_ca, p->tls_cert, p->tls_key, p->tls_host};
    for (size_t i = 0; tls && i < 5; i++) {
        json_t *v = json_object_get(tls, tls_keys[i]);
        if (!v)
            continue;
        const char *str = json_string_value(v);
        if (!str || !*str || strlen(str) >= sizeof(p->tls_psk) || (i < 4 && str[0] != '/'))
            return vs_error(err, EINVAL, "\"tls\".\"%s\" must be %s", tls_keys[i],
                            i < 4 ? "an absolute path" : "a host name");
        strcpy(tls_slots[i], str);
    }
    if (p->tls_psk[0] && (p->tls_ca[0] || p->tls_cert[0]))
        return vs_error(err, EINVAL, "\"tls\": a pre-shared key or certificates, not both");
    if (!p->tls_psk[0] && (p->tls_cert[0] || p->tls_key[0]) && !p->tls_ca[0])
        return vs_error(err, EINVAL, "\"tls\": a CA is needed to check the destination");
    if (!p->tls_host[0] && p->tls_ca[0] && !strncmp(p->uri, "tcp:", 4)) {
        /* the name the destination's certificate must carry: the host dialled */
        const char *h = p->uri + 4, *e = h[0] == '[' ? strchr(h, ']') : strrchr(h, ':');
        if (h[0] == '[')
            h++;
        snprintf(p->tls_host, sizeof(p->tls_host), "%.*s", e ? (int)(e - h) : 0, h);
    }
    p->tls = (struct mig_tls_opts){.psk_file = p->tls_psk[0] ? p->tls_psk : NULL,
                                   .ca = p->tls_ca[0] ? p->tls_ca : NULL,
                                   .cert = p->tls_cert[0] ? p->tls_cert : NULL,
                                   .key = p->tls_key[0] ? p->tls_key : NULL,
                                   .hostname = p->tls_host[0] ? p->tls_host : NULL};
    json_t *mt = json_object_get(body, "max_throttle_pct");
    if (mt) {
        json_int_t v = json_integer_value(mt);
        if (!json_is_integer(mt) || v < 1 || v > 99)
            return vs_error(err, EINVAL, "\"max_throttle_pct\" is 1..99");
        p->max_throttle = (unsigned)v;
    }
    return 0;
}

static bool cancelled(struct migration *m)
{
    return __atomic_load_n(&m->cancel, __ATOMIC_ACQUIRE);
}

#define UPDATE(m, stmt)                                                                            \
    do {                                                                                           \
        pthread_mutex_lock(&(m)->lock);                                                            \
        stmt;                                                                                      \
        pthread_mutex_unlock(&(m)->lock);                                                          \
    } while (0)

/* ---- the sink: snapshot records as migration records ---- */

/* Keep to the bandwidth cap: sleep until the bytes sent so far are due. */
static void pace(struct migration *m, uint64_t sent)
{
    if (!m->p.bandwidth)
        return;
    double due = m->t_start + (double)sent * 1e3 / (double)m->p.bandwidth;
    double wait = due - now_ms();
    if (wait > 0)
        usleep((useconds_t)(wait * 1e3));
}

static int account(struct migration *m, uint64_t wire, uint64_t data_pages, uint64_t zero_pages,
                   vs_err *err)
{
    uint64_t sent;
    pthread_mutex_lock(&m->lock);
    m->prog.bytes_sent += wire;
    m->prog.pages_sent += data_pages;
    m->prog.zero_pages += zero_pages;
    sent = m->prog.bytes_sent;
    pthread_mutex_unlock(&m->lock);
    if (!m->urgent)
        pace(m, sent);
    if (cancelled(m))
        return vs_error(err, ECANCELED, "migration cancelled");
    return 0;
}

/* Memory goes through a bounce buffer: the guest may write a page while it
 * is sent, and the record's CRC must be of the bytes that leave. */
#define BOUNCE (256u << 10)

static int sink_memory(struct snapshot_sink *s, uint64_t off, const void *buf, int fd,
                       uint64_t fd_off, uint64_t len, vs_err *err)
{
    struct mig_sink *k = (struct mig_sink *)s;
    struct migration *m = k->m;
    while (len) {
        if (cancelled(m))
            return vs_error(err, ECANCELED, "migration cancelled");
        /* the destination only speaks up mid-stream to refuse: stop at once */
        struct pollfd p = {.fd = m->fd, .events = POLLIN};
        if (!m->urgent && !m->serving && (mig_conn_pending(&m->conn) || poll(&p, 1, 0) == 1))
            return vs_error(err, EPROTO, "the destination stopped the stream");
        size_t n = (size_t)(len < BOUNCE ? len : BOUNCE);
        if (buf)
            memcpy(k->bounce, buf, n);
        else if (vs_pread_full(fd, k->bounce, n, fd_off) < 0)
            return vs_error_errno(err, "migration: reading guest memory");
        if (mig_send(&m->conn, MIG_MEMORY, off, k->bounce, n, err) < 0 ||
            account(m, MIG_RECORD_SIZE + n, n / GUEST_PAGE_SIZE, 0, err) < 0)
            return -1;
        if (buf)
            buf = (const uint8_t *)buf + n;
        fd_off += n;
        off += n;
        len -= n;
    }
    return 0;
}

static int sink_zero(struct snapshot_sink *s, uint64_t off, uint64_t len, vs_err *err)
{
    struct migration *m = ((struct mig_sink *)s)->m;
    if (mig_send(&m->conn, MIG_ZERO, off, NULL, len, err) < 0)
        return -1;
    return account(m, MIG_RECORD_SIZE, 0, len / GUEST_PAGE_SIZE, err);
}

static int sink_size(struct snapshot_sink *s, uint64_t size, vs_err *err)
{
    return 0; /* the HELLO told the destination */
}

static int sink_vmstate(struct snapshot_sink *s, const void *buf, size_t len, vs_err *err)
{
    struct migration *m = ((struct mig_sink *)s)->m;
    if (mig_send(&m->conn, MIG_VMSTATE, 0, buf, len, err) < 0)
        return -1;
    return account(m, MIG_RECORD_SIZE + len, 0, 0, err);
}

static int sink_commit(struct snapshot_sink *s, vs_err *err)
{
    struct migration *m = ((struct mig_sink *)s)->m;
    return mig_send(&m->conn, MIG_END, 0, NULL, 0, err);
}

static void sink_close(struct snapshot_sink *s) {}

/* A disk record (--copy-disks), held to the same cap as memory. */
static int disk_send(void *opaque, uint32_t type, uint64_t off, const void *buf, uint64_t len,
                     vs_err *err)
{
    struct migration *m = opaque;
    struct pollfd p = {.fd = m->fd, .events = POLLIN};
    if (!m->serving && (mig_conn_pending(&m->conn) || poll(&p, 1, 0) == 1))
        return vs_error(err, EPROTO, "the destination stopped the stream");
    if (mig_send(&m->conn, type, off, type == MIG_DISK ? buf : NULL, len, err) < 0)
        return -1;
    UPDATE(m, m->prog.disk_bytes_sent += type == MIG_DISK ? len : 0);
    return account(m, MIG_RECORD_SIZE + (type == MIG_DISK ? len : 0), 0, 0, err);
}

static const struct snapshot_sink_ops mig_sink_ops = {
    .write_memory = sink_memory,
    .zero_memory = sink_zero,
    .memory_size = sink_size,
    .write_vmstate = sink_vmstate,
    .commit = sink_commit,
    .close = sink_close,
};

/* ---- auto-converge ---- */

/* Throttling is pausing: in every 10 ms window the guest stands still for
 * throttle_pct of it (as QEMU's cpu-throttle puts vCPUs to sleep). */
static void *throttle_thread(void *arg)
{
    struct migration *m = arg;
    pthread_setname_np(pthread_self(), "vessel-throttle");
    struct vm_control *ctl = m->ctl;
    for (;;) {
        pthread_mutex_lock(&m->lock);
        bool stop = m->throttle_stop;
        pthread_mutex_unlock(&m->lock);
        if (stop)
            break;
        unsigned pct = __atomic_load_n(&m->throttle_pct, __ATOMIC_ACQUIRE);
        vs_err err = {0};
        if (pct && ctl->pause(ctl->machine, &err) == 0) {
            usleep(THROTTLE_WINDOW_US * pct / 100);
            ctl->resume(ctl->machine, &err);
        }
        usleep(THROTTLE_WINDOW_US * (100 - pct) / 100);
    }
    return NULL;
}

/* The machine's own throttle where it has one (its vCPUs sleep their
 * share), else a thread that pauses and resumes the whole VM. */
static void throttle_set(struct migration *m, unsigned pct)
{
    __atomic_store_n(&m->throttle_pct, pct, __ATOMIC_RELEASE);
    UPDATE(m, m->prog.throttle_pct = pct);
    if (m->ctl->throttle)
        m->ctl->throttle(m->ctl->machine, pct);
    else if (pct && !m->throttle_on && pthread_create(&m->throttle, NULL, throttle_thread, m) == 0)
        m->throttle_on = true;
}

static void throttle_stop(struct migration *m)
{
    if (m->ctl->throttle && __atomic_load_n(&m->throttle_pct, __ATOMIC_ACQUIRE)) {
        m->ctl->throttle(m->ctl->machine, 0);
        __atomic_store_n(&m->throttle_pct, 0, __ATOMIC_RELEASE);
    }
    if (!m->throttle_on)
        return;
    UPDATE(m, m->throttle_stop = true);
    pthread_join(m->throttle, NULL);
    m->throttle_on = false;
    UPDATE(m, m->throttle_stop = false);
    __atomic_store_n(&m->throttle_pct, 0, __ATOMIC_RELEASE);
}

/* ---- the job ---- */

static uint64_t popcount_bitmap(const uint64_t *b, size_t words)
{
    uint64_t n = 0;
    for (size_t i = 0; i < words; i++)
        n += (uint64_t)__builtin_popcountll(b[i]);
    return n;
}

static size_t words_of(const struct guest_mem_region *r)
{
    return (r->size / GUEST_PAGE_SIZE + 63) / 64;
}

/* What a destination that hung up had to say, if it said it in time. */
static void peer_reason(struct migration *m, vs_err *err)
{
    struct pollfd p = {.fd = m->fd, .events = POLLIN};
    if (!mig_conn_pending(&m->conn) && poll(&p, 1, 200) != 1)
        return;
    struct mig_record r;
    char msg[MIG_MAX_MESSAGE + 1];
    vs_err e2 = {0};
    if (mig_recv_record(&m->conn, 0, &r, &e2) == 0 && r.type == MIG_REFUSE &&
        mig_recv_message(&m->conn, &r, msg, &e2) == 0)
        vs_error(err, EPROTO, "the destination refused the migration: %s", msg);
}

/* The destination's answer r is want; a REFUSE becomes err with its words. */
static int answer_is(struct migration *m, const struct mig_record *r, uint32_t want, vs_err *err)
{
    if (r->type == MIG_REFUSE) {
        char msg[MIG_MAX_MESSAGE + 1];
        if (mig_recv_message(&m->conn, r, msg, err) < 0)
            return -1;
        return vs_error(err, EPROTO, "the destination refused the migration: %s", msg);
    }
    if (r->type != want || r->off || r->len)
        return vs_error(err, EPROTO, "migration: expected %s from the destination, got %s",
                        mig_type_name(want), mig_type_name(r->type));
    return 0;
}

/* Wait for the destination's answer of type want; REFUSE becomes err. */
static int expect(struct migration *m, uint32_t want, int timeout_ms, vs_err *err)
{
    struct mig_record r;
    if (mig_recv_record(&m->conn, timeout_ms, &r, err) < 0)
        return -1;
    return answer_is(m, &r, want, err);
}

/* Wait until the destination has taken in everything sent so far: socket
 * buffers hold megabytes, and a round is over (its bandwidth measured, the
 * guest ready to be paused) only when they are empty, or the last round
 * would wait for them with the guest stopped. */
static int sync_peer(struct migration *m, vs_err *err)
{
    if (mig_send(&m->conn, MIG_SYNC, 0, NULL, 0, err) < 0)
        return -1;
    return expect(m, MIG_SYNCED, READY_TIMEOUT_MS, err);
}

/* ---- post-copy ---- */

static int send_postcopy_bitmap(struct migration *m, const struct guest_mem_layout *mem,
                                uint64_t **bitmaps, vs_err *err)
{
    size_t words = 0;
    for (unsigned i = 0; i < mem->n; i++)
        words += words_of(&mem->r[i]);
    uint64_t *all = malloc(words * 8 + 8);
    if (!all)
        return vs_error(err, ENOMEM, "out of memory");
    size_t at = 0;
    for (unsigned i = 0; i < mem->n; i++) {
        memcpy(all + at, bitmaps[i], words_of(&mem->r[i]) * 8);
        at += words_of(&mem->r[i]);
    }
    int rc = mig_send(&m->conn, MIG_POSTCOPY, 0, all, words * 8, err);
    free(all);
    return rc;
}

/* Send the pages of region i from page pg on (up to n), clearing their
 * bits; returns how many were due. */
static int send_pages(struct migration *m, const struct guest_mem_layout *mem, unsigned i,
                      uint64_t pg, uint64_t n, uint64_t **bitmaps, uint64_t *left, vs_err *err)
{
    const struct guest_mem_region *r = &mem->r[i];
    uint64_t base = snapshot_region_offset(mem, i);
    for (uint64_t k = pg; k < pg + n; k++) {
        if (!(bitmaps[i][k / 64] >> (k % 64) & 1))
            continue;
        uint64_t e = k;
        while (e < pg + n && (bitmaps[i][e / 64] >> (e % 64) & 1)) {
            bitmaps[i][e / 64] &= ~(1ULL << (e % 64));
            e++;
        }
        if (m->sink.s.ops->write_memory(&m->sink.s, base + k * GUEST_PAGE_SIZE,
                                        r->hva + k * GUEST_PAGE_SIZE, -1, 0,
                                        (e - k) * GUEST_PAGE_SIZE, err) < 0)
            return -1;
        *left -= e - k;
        k = e;
    }
    return 0;
}

/* A page the destination's guest (or its machine, loading) waits for. */
static int serve_request(struct migration *m, const struct guest_mem_layout *mem,
                         uint64_t **bitmaps, uint64_t off, uint64_t *left, vs_err *err)
{
    UPDATE(m, m->prog.postcopy_requests++);
    for (unsigned i = 0; i < mem->n; i++) {
        uint64_t base = snapshot_region_offset(mem, i);
        if (off >= base && off < base + mem->r[i].size) {
            m->urgent = true;
            int rc = send_pages(m, mem, i, (off - base) / GUEST_PAGE_SIZE, 1, bitmaps, left, err);
            m->urgent = false;
            return rc;
        }
    }
    return 0; /* not guest memory: nothing to send, the destination knows */
}

/* expect() for the post-copy handover: from END on the destination may
 * already wait for pages (its machine loads with guest memory registered),
 * so requests are served while READY, then RUNNING, is awaited. */
static int expect_serving(struct migration *m, uint32_t want, int timeout_ms,
                          const struct guest_mem_layout *mem, uint64_t **bitmaps, vs_err *err)
{
    double deadline = now_ms() + timeout_ms;
    uint64_t left = UINT64_MAX / 2;
    for (;;) {
        int wait = (int)(deadline - now_ms());
        struct mig_record r;
        if (mig_recv_record(&m->conn, wait > 0 ? wait : 0, &r, err) < 0)
            return -1;
        if (r.type == MIG_PAGE_REQUEST && !r.len) {
            if (serve_request(m, mem, bitmaps, r.off, &left, err) < 0)
                return -1;
            continue;
        }
        return answer_is(m, &r, want, err);
    }
}

/* The guest runs on the destination: answer its page requests first, and
 * stream the rest of the pages in between; then wait until it has them. */
static int postcopy_serve(struct migration *m, const struct guest_mem_layout *mem,
                          uint64_t **bitmaps, vs_err *err)
{
    uint64_t left = 0;
    for (unsigned i = 0; i < mem->n; i++)
        left += popcount_bitmap(bitmaps[i], words_of(&mem->r[i]));
    unsigned ri = 0;
    uint64_t cursor = 0;
    while (left) {
        UPDATE(m, m->prog.bytes_remaining = left * GUEST_PAGE_SIZE);
        struct pollfd p = {.fd = m->fd, .events = POLLIN};
        while (mig_conn_pending(&m->conn) || poll(&p, 1, 0) == 1) {
            struct mig_record r;
            if (mig_recv_record(&m->conn, 0, &r, err) < 0)
                return -1;
            if (r.type != MIG_PAGE_REQUEST || r.len)
                return vs_error(err, EPROTO, "post-copy: unexpected %s from the destination",
                                mig_type_name(r.type));
            if (serve_request(m, mem, bitmaps, r.off, &left, err) < 0)
                return -1;
        }
        /* the background: the next 64 pages that are due */
        while (ri < mem->n && cursor >= mem->r[ri].size / GUEST_PAGE_SIZE) {
            ri++;
            cursor = 0;
        }
        if (ri >= mem->n)
            break;
        uint64_t n = mem->r[ri].size / GUEST_PAGE_SIZE - cursor;
        if (n > 64)
            n = 64;
        if (send_pages(m, mem, ri, cursor, n, bitmaps, &left, err) < 0)
            return -1;
        cursor += n;
    }
    UPDATE(m, m->prog.bytes_remaining = 0);
    if (mig_send(&m->conn, MIG_POSTCOPY_DONE, 0, NULL, 0, err) < 0)
        return -1;
    /* requests still in flight are for pages already sent */
    for (;;) {
        struct mig_record r;
        if (mig_recv_record(&m->conn, READY_TIMEOUT_MS, &r, err) < 0)
            return -1;
        if (r.type == MIG_COMPLETE)
            return 0;
        if (r.type != MIG_PAGE_REQUEST)
            return vs_error(err, EPROTO, "post-copy: unexpected %s from the destination",
                            mig_type_name(r.type));
    }
}

static int hello(struct migration *m, const struct guest_mem_layout *mem,
                 const struct mig_disks *disks, vs_err *err)
{
    struct vm_control *ctl = m->ctl;
    json_t *regions = json_array();
    for (unsigned i = 0; i < mem->n; i++)
        json_array_append_new(regions, snapshot_region_json(mem->r[i].gpa, mem->r[i].size,
                                                            snapshot_region_offset(mem, i)));
    struct vs_buf cpu;
    vs_buf_init(&cpu);
    if (ctl->cpu_features && ctl->cpu_features(ctl->machine, &cpu, err) < 0) {
        json_decref(regions);
        vs_buf_free(&cpu);
        return -1;
    }
    char *hex = malloc(cpu.len * 2 + 1);
    for (size_t i = 0; hex && i < cpu.len; i++)
        snprintf(hex + 2 * i, 3, "%02x", cpu.data[i]);
    if (hex)
        hex[cpu.len * 2] = 0;
    json_t *j = json_pack("{s:s, s:{s:I, s:o}, s:s, s:s, s:o}", "arch", vm_arch_name(ctl->arch),
                          "memory", "size", (json_int_t)snapshot_region_offset(mem, mem->n),
                          "regions", regions, "cpu_features", hex ? hex : "", "vessel_version",
                          "0.1.0", "config", vm_config_to_json(ctl->cfg));
    if (j && disks)
        json_object_set_new(j, "disks", mig_disks_hello(disks));
    free(hex);
    vs_buf_free(&cpu);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text)
        return vs_error(err, ENOMEM, "out of memory");
    uint8_t h[MIG_HEADER_SIZE];
    mig_header_encode(h);
    int rc = mig_conn_write(&m->conn, h, sizeof(h)) < 0
                 ? vs_error_errno(err, "migration: sending to the destination")
                 : mig_send(&m->conn, MIG_HELLO, 0, text, strlen(text), err);
    free(text);
    if (rc < 0)
        return -1;
    return expect(m, MIG_ACCEPT, ACCEPT_TIMEOUT_MS, err);
}

static void set_failed(struct migration *m, const vs_err *err)
{
    pthread_mutex_lock(&m->lock);
    m->prog.state = err->code == ECANCELED || cancelled(m) ? MIGRATE_CANCELLED : MIGRATE_FAILED;
    snprintf(m->prog.error, sizeof(m->prog.error), "%s", err->msg);
    m->prog.total_ms = now_ms() - m->t_start;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
}

static int job(struct migration *m, bool *paused_by_us, double *t_pause, vs_err *err)
{
    struct vm_control *ctl = m->ctl;
    void *vm = ctl->machine;
    if (!ctl->enable_dirty_log || !ctl->fetch_dirty_log || !ctl->memory)
        return vs_error(err, ENOTSUP, "this machine cannot track dirty memory");
    if (ctl->is_paused(vm))
        return vs_error(err, EBUSY, "the VM is paused: resume it before migrating");
    if (ctl->cfg && ctl->cfg->nshares)
        return vs_error(err, ENOTSUP,
                        "a VM with a --share cannot be migrated: the share's state is in "
                        "virtiofsd, not in vessel");
    /* disks moving along: tracked from before their first chunk is read */
    struct mig_disks *disks = NULL;
    if (m->p.copy_disks && mig_disks_start(ctl, &disks, err) < 0)
        return -1;
    int fd = mig_connect(m->p.uri, CONNECT_TIMEOUT_MS, err);
    UPDATE(m, m->fd = fd);
    if (fd < 0 || (cancelled(m) && vs_error(err, ECANCELED, "migration cancelled") < 0) ||
        (mig_tls_wanted(&m->p.tls) ? mig_tls_client(&m->conn, fd, &m->p.tls, err) < 0
                                   : (mig_conn_plain(&m->conn, fd), 0))) {
        mig_disks_stop(disks);
        return -1;
    }
    /* Start a clean dirty interval with the layout fixed: the pause makes
     * the drain and the layout one moment. */
    if (ctl->pause(vm, err) < 0) {
        mig_disks_stop(disks);
        return -1;
    }
    int rc = ctl->enable_dirty_log(vm, err);
    const struct guest_mem_layout *mem = guest_mem_layout(ctl->memory(vm));
    uint64_t **bitmaps = calloc(mem->n ? mem->n : 1, sizeof(*bitmaps));
    if (!bitmaps)
        rc = vs_error(err, ENOMEM, "out of memory");
    for (unsigned i = 0; rc == 0 && i < mem->n; i++) {
        bitmaps[i] = calloc(words_of(&mem->r[i]), 8);
        rc = bitmaps[i] ? ctl->fetch_dirty_log(vm, i, bitmaps[i], err)
                        : vs_error(err, ENOMEM, "out of memory for the dirty bitmap");
    }
    vs_err rerr = {0};
    ctl->resume(vm, &rerr);
    UPDATE(m, m->prog.memory_total = ctl->memory(vm)->total);
    if (rc == 0)
        rc = hello(m, mem, disks, err);
    if (rc < 0)
        goto out;
    UPDATE(m, m->prog.state = MIGRATE_ACTIVE);

    /* round 0: everything (the disks first: memory sent last is dirtied
     * least by the time the rounds start) */
    double t_round = now_ms(), t_fetch = t_round;
    uint64_t sent0 = 0;
    rc = mig_disks_send_all(disks, disk_send, m, err);
    for (unsigned i = 0; rc == 0 && i < mem->n; i++)
        rc = snapshot_send_region(&m->sink.s, mem, i, NULL, &sent0, err);
    if (rc == 0)
        rc = sync_peer(m, err);
    unsigned throttle = 0;
    uint64_t last_bytes = 0;
    bool postcopy = false;
    for (unsigned round = 1; rc == 0; round++) {
        double t = now_ms();
        uint64_t round_bytes;
        pthread_mutex_lock(&m->lock);
        round_bytes = m->prog.bytes_sent;
        pthread_mutex_unlock(&m->lock);
        if (guest_mem_layout(ctl->memory(vm)) != mem) {
            rc = vs_error(err, EBUSY, "guest memory was resized during the migration");
            break;
        }
        uint64_t dirty = 0, disk_dirty = 0;
        for (unsigned i = 0; rc == 0 && i < mem->n; i++) {
            memset(bitmaps[i], 0, words_of(&mem->r[i]) * 8);
            rc = ctl->fetch_dirty_log(vm, i, bitmaps[i], err);
            dirty += popcount_bitmap(bitmaps[i], words_of(&mem->r[i]));
        }
        if (rc == 0)
            rc = mig_disks_fetch(disks, &disk_dirty, err);
        if (rc < 0)
            break;
        double now = now_ms();
        double bw = (double)(round_bytes - last_bytes) * 1e3 / fmax(t - t_round, 0.5);
        last_bytes = round_bytes;
        if (m->p.bandwidth && bw > (double)m->p.bandwidth)
            bw = (double)m->p.bandwidth;
        double remaining = (double)dirty * GUEST_PAGE_SIZE + (double)disk_dirty;
        double rate = remaining * 1e3 / fmax(now - t_fetch, 0.5);
        double expected = remaining * 1e3 / fmax(bw, 1.0);
        t_round = t_fetch = now;
        UPDATE(m, (m->prog.round = round, m->prog.bytes_remaining = (uint64_t)remaining,
                   m->prog.dirty_rate = rate, m->prog.bandwidth = bw,
                   m->prog.expected_downtime_ms = expected));
        if (expected * 1e3 <= (double)m->p.downtime_limit_us)
            break;
        /* not converging after the first full pass: with post-copy the
         * guest moves now and its pages follow */
        if (m->p.postcopy && round >= 1) {
            postcopy = true;
            break;
        }
        /* A guest dirtying more than half of what the link carries will
         * not converge on its own: slow it down, in growing steps. */
        if (m->p.auto_converge && round >= 2 && rate > bw / 2 && throttle < m->p.max_throttle) {
            throttle = throttle ? throttle + 10 : 20;
            if (throttle > m->p.max_throttle)
                throttle = m->p.max_throttle;
            throttle_set(m, throttle);
        }
        uint64_t sent = 0;
        rc = mig_disks_send_dirty(disks, disk_send, m, err);
        for (unsigned i = 0; rc == 0 && i < mem->n; i++)
            rc = snapshot_send_region(&m->sink.s, mem, i, bitmaps[i], &sent, err);
        if (rc == 0)
            rc = sync_peer(m, err);
        if (rc == 0)
            for (unsigned i = 0; i < mem->n; i++)
                memset(bitmaps[i], 0, words_of(&mem->r[i]) * 8);
    }
    throttle_stop(m);
    if (rc < 0)
        goto out;

    /* the last round: the guest stands still from here */
    UPDATE(m, m->prog.state = MIGRATE_COMPLETING);
    *t_pause = now_ms();
    if (ctl->pause(vm, err) < 0) {
        rc = -1;
        goto out;
    }
    *paused_by_us = true;
    /* the pause finished every disk request: the last chunks written */
    uint64_t disk_left;
    rc = mig_disks_fetch(disks, &disk_left, err);
    if (rc == 0)
        rc = mig_disks_send_dirty(disks, disk_send, m, err);
    struct snapshot_stats st;
    if (rc == 0)
        rc = snapshot_save_final(ctl, &m->sink.s, mem, bitmaps, postcopy, &st, err);
    if (rc == 0 && postcopy)
        rc = send_postcopy_bitmap(m, mem, bitmaps, err);
    m->serving = postcopy;
    if (rc == 0)
        rc = m->sink.s.ops->commit(&m->sink.s, err);
    double t_end = now_ms();
    if (rc == 0)
        rc = postcopy ? expect_serving(m, MIG_READY, READY_TIMEOUT_MS, mem, bitmaps, err)
                      : expect(m, MIG_READY, READY_TIMEOUT_MS, err);
    double t_ready = now_ms();
    if (rc == 0 && cancelled(m))
        rc = vs_error(err, ECANCELED, "migration cancelled");
    if (rc < 0)
        goto out;
    /* the point of no return */
    pthread_mutex_lock(&m->lock);
    m->no_return = true;
    pthread_mutex_unlock(&m->lock);
    if (mig_send(&m->conn, MIG_GO, 0, NULL, 0, err) < 0 ||
        (postcopy ? expect_serving(m, MIG_RUNNING, RUNNING_TIMEOUT_MS, mem, bitmaps, err)
                  : expect(m, MIG_RUNNING, RUNNING_TIMEOUT_MS, err)) < 0) {
        rc = postcopy ? -3 : -2;
        goto out;
    }
    double t_run = now_ms();
    UPDATE(m, (m->prog.downtime_ms = t_run - *t_pause, m->prog.final_round_ms = t_end - *t_pause,
               m->prog.destination_ms = t_ready - t_end, m->prog.handover_ms = t_run - t_ready));
    if (postcopy) {
        UPDATE(m, (m->prog.state = MIGRATE_POSTCOPY, m->prog.postcopy = true));
        if (postcopy_serve(m, mem, bitmaps, err) < 0)
            rc = -3;
    }
out:
    mig_disks_stop(disks);
    for (unsigned i = 0; bitmaps && i < mem->n; i++)
        free(bitmaps[i]);
    free(bitmaps);
    return rc;
}

static void *migration_thread(void *arg)
{
    struct migration *m = arg;
    pthread_setname_np(pthread_self(), "vessel-migrate");
    struct vm_control *ctl = m->ctl;
    vs_err err = {0};
    bool paused_by_us = false;
    double t_pause = 0;
    int rc = job(m, &paused_by_us, &t_pause, &err);
    throttle_stop(m);
    if (rc == -1 && m->fd >= 0 && err.code != ECANCELED)
        peer_reason(m, &err);
    mig_conn_end(&m->conn);
    pthread_mutex_lock(&m->lock);
    int fd = m->fd;
    m->fd = -1;
    pthread_mutex_unlock(&m->lock);
    if (fd >= 0)
        close(fd);
    if (rc == -1 && cancelled(m))
        vs_error(&err, ECANCELED, "migration cancelled");
    if (rc == -1) {
        vs_err rerr = {0};
        if (paused_by_us && ctl->resume(ctl->machine, &rerr) < 0)
            vs_warn("migration: resuming the VM failed: %s", rerr.msg);
        vs_warn("migration to %s %s: %s; the VM runs on here", m->p.uri,
                err.code == ECANCELED ? "stopped" : "failed", err.msg);
        set_failed(m, &err);
        return NULL;
    }
    pthread_mutex_lock(&m->lock);
    m->prog.total_ms = now_ms() - m->t_start;
    if (rc == -3) {
        m->prog.state = MIGRATE_LOST;
        snprintf(m->prog.error, sizeof(m->prog.error),
                 "post-copy broke off (%s): the guest ran on the destination, which now misses "
                 "pages, and cannot go on there; this paused copy is older than what it did",
                 err.msg);
        vs_warn("migration to %s: %s", m->p.uri, m->prog.error);
        pthread_cond_broadcast(&m->cond);
        pthread_mutex_unlock(&m->lock);
        return NULL;
    }
    if (rc == -2) {
        m->prog.state = MIGRATE_UNKNOWN;
        snprintf(m->prog.error, sizeof(m->prog.error),
                 "%s: the destination was told to run the guest but did not confirm it does; "
                 "the guest stays paused here (resume it only if the destination has no guest)",
                 err.msg);
        vs_warn("migration to %s: %s", m->p.uri, m->prog.error);
        pthread_cond_broadcast(&m->cond);
        pthread_mutex_unlock(&m->lock);
        return NULL;
    }
    m->prog.state = MIGRATE_COMPLETED;
    vs_info("migrated to %s: %.1f ms downtime, %.1f MiB in %u rounds, %.0f ms in all", m->p.uri,
            m->prog.downtime_ms, m->prog.bytes_sent / 1048576.0, m->prog.round, m->prog.total_ms);
    pthread_cond_broadcast(&m->cond);
    /* Whoever started it learns the outcome before this VM goes away. */
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 2;
    while (!m->reported && !cancelled(m) &&
           pthread_cond_timedwait(&m->cond, &m->lock, &dl) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&m->lock);
    if (m->on_done)
        m->on_done(m->opaque);
    return NULL;
}

int migration_start(struct vm_control *ctl, const struct migrate_params *p,
                    void (*on_done)(void *opaque), void *opaque, struct migration **out,
                    vs_err *err)
{
    struct migration *m = calloc(1, sizeof(*m));
    uint8_t *bounce = malloc(BOUNCE);
    if (!m || !bounce) {
        free(m);
        free(bounce);
        return vs_error(err, ENOMEM, "out of memory");
    }
    m->ctl = ctl;
    m->p = *p;
    /* the TLS options point into the params: into this copy now */
    m->p.tls = (struct mig_tls_opts){.psk_file = p->tls.psk_file ? m->p.tls_psk : NULL,
                                     .ca = p->tls.ca ? m->p.tls_ca : NULL,
                                     .cert = p->tls.cert ? m->p.tls_cert : NULL,
                                     .key = p->tls.key ? m->p.tls_key : NULL,
                                     .hostname = p->tls.hostname ? m->p.tls_host : NULL};
    m->on_done = on_done;
    m->opaque = opaque;
    m->fd = -1;
    m->sink.s.ops = &mig_sink_ops;
    m->sink.m = m;
    m->sink.bounce = bounce;
    m->prog.state = MIGRATE_SETUP;
    m->t_start = now_ms();
    pthread_mutex_init(&m->lock, NULL);
    pthread_cond_init(&m->cond, NULL);
    int rc = pthread_create(&m->thread, NULL, migration_thread, m);
    if (rc) {
        pthread_mutex_destroy(&m->lock);
        pthread_cond_destroy(&m->cond);
        free(bounce);
        free(m);
        return vs_error(err, rc, "migration: cannot start a thread: %s", strerror(rc));
    }
    *out = m;
    return 0;
}

static bool terminal(enum migrate_state s)
{
    return s == MIGRATE_COMPLETED || s == MIGRATE_FAILED || s == MIGRATE_CANCELLED ||
           s == MIGRATE_UNKNOWN || s == MIGRATE_LOST;
}

void migration_progress(struct migration *m, struct migrate_progress *out)
{
    pthread_mutex_lock(&m->lock);
    *out = m->prog;
    if (!terminal(out->state))
        out->total_ms = now_ms() - m->t_start;
    pthread_mutex_unlock(&m->lock);
}

void migration_reported(struct migration *m)
{
    pthread_mutex_lock(&m->lock);
    if (terminal(m->prog.state) && !m->reported) {
        m->reported = true;
        pthread_cond_broadcast(&m->cond);
    }
    pthread_mutex_unlock(&m->lock);
}

bool migration_active(struct migration *m)
{
    pthread_mutex_lock(&m->lock);
    bool a = !terminal(m->prog.state);
    pthread_mutex_unlock(&m->lock);
    return a;
}

int migration_cancel(struct migration *m, vs_err *err)
{
    pthread_mutex_lock(&m->lock);
    int rc = 0;
    if (terminal(m->prog.state))
        rc = vs_error(err, EINVAL, "no migration in progress (it is %s)",
                      migrate_state_name(m->prog.state));
    else if (m->no_return)
        rc = vs_error(err, EBUSY, "too late to cancel: the destination was told to run the guest");
    else
        __atomic_store_n(&m->cancel, true, __ATOMIC_RELEASE);
    /* wake a thread blocked on the link; it then sees the flag */
    if (rc == 0 && m->fd >= 0)
        shutdown(m->fd, SHUT_RDWR);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

void migration_free(struct migration *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    bool no_return = m->no_return;
    if (!no_return)
        __atomic_store_n(&m->cancel, true, __ATOMIC_RELEASE);
    if (!no_return && m->fd >= 0)
        shutdown(m->fd, SHUT_RDWR);
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
    pthread_join(m->thread, NULL);
    pthread_mutex_destroy(&m->lock);
    pthread_cond_destroy(&m->cond);
    free(m->sink.bounce);
    free(m);
}
