/* User-mode networking across a snapshot: see slirp_state.h for why open
 * TCP connections are reset (not continued) and how. */
#include "net/slirp_state.h"
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include "util/cleanup.h"
#include "util/log.h"

#define SECTION "net.slirp"
#define SECTION_VERSION 1
#define MAX_CONNS 4096
#define MAX_BLOB (1u << 20)

/* Probe rounds, in ms after the restored guest could first receive. Linux
 * answers out-of-window ACKs at most every 500 ms per socket
 * (tcp_invalid_ratelimit); later rounds cover a first round that arrived
 * before the guest's vCPUs ran. */
static const int64_t probe_at_ms[] = {5, 600, 1500, 4000};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- saving --------------------------------------------------------------- */

static ssize_t blob_write(const void *buf, size_t len, void *opaque)
{
    vs_buf_append(opaque, buf, len);
    return (ssize_t)len;
}

static bool in_net(struct in_addr a, struct in_addr net, struct in_addr mask)
{
    return (a.s_addr & mask.s_addr) == (net.s_addr & mask.s_addr);
}

static bool mac_of(const char *neigh, struct in_addr ip, uint8_t mac[6])
{
    for (const char *p = neigh; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        char m[32], a[64];
        struct in_addr ia;
        unsigned v[6];
        if (sscanf(p, " ARP %31s %63s", m, a) == 2 && inet_pton(AF_INET, a, &ia) == 1 &&
            ia.s_addr == ip.s_addr &&
            sscanf(m, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) == 6) {
            for (int i = 0; i < 6; i++)
                mac[i] = (uint8_t)v[i];
            return true;
        }
    }
    return false;
}

unsigned slirp_state_parse_conns(const char *info, const char *neigh, struct in_addr vnetwork,
                                 struct in_addr vnetmask, struct in_addr vhost,
                                 struct slirp_conn *out, unsigned max)
{
    unsigned n = 0;
    for (const char *p = info; p && *p && n < max;
         p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        /* "  TCP[ESTABLISHED]   12       10.0.2.15 40000        10.0.2.2  1234  0  0" */
        char state[32], src[64], dst[64];
        int fd, sport, dport;
        if (sscanf(p, " TCP[%31[^]]] %d %63s %d %63s %d", state, &fd, src, &sport, dst, &dport) !=
            6)
            continue;
        if (!strcmp(state, "HOST_FORWARD") || !strcmp(state, "LISTEN") ||
            !strcmp(state, "CLOSED") || !strcmp(state, "NONE"))
            continue;
        struct in_addr s, d;
        if (inet_pton(AF_INET, src, &s) != 1 || inet_pton(AF_INET, dst, &d) != 1 || sport <= 0 ||
            sport > 65535 || dport <= 0 || dport > 65535)
            continue;
        struct slirp_conn c = {0};
        if (in_net(s, vnetwork, vnetmask)) {
            /* the guest connected out: source is the guest's side */
            c.guest_addr = s.s_addr;
            c.guest_port = htons((uint16_t)sport);
            c.peer_addr = d.s_addr;
            c.peer_port = htons((uint16_t)dport);
        } else {
            /* hostfwd: the source is the host listener; the guest sees the
             * host peer's address (loopback and "any" become the gateway, as
             * slirp's sotranslate_accept does) and port */
            struct sockaddr_in peer;
            socklen_t plen = sizeof(peer);
            if (getpeername(fd, (struct sockaddr *)&peer, &plen) < 0 || peer.sin_family != AF_INET)
                continue;
            c.guest_addr = d.s_addr;
            c.guest_port = htons((uint16_t)dport);
            c.peer_addr = peer.sin_addr.s_addr;
            if (c.peer_addr == htonl(INADDR_ANY) || (ntohl(c.peer_addr) >> 24) == 127)
                c.peer_addr = vhost.s_addr;
            c.peer_port = peer.sin_port;
        }
        if (!mac_of(neigh, (struct in_addr){c.guest_addr}, c.guest_mac))
            continue; /* slirp never sent this guest a frame */
        out[n++] = c;
    }
    return n;
}

int slirp_state_save_section(struct slirp_state_link *l, struct state_writer *w, vs_err *err)
{
    struct vs_buf blob;
    vs_buf_init(&blob);
    slirp_state_lock(l);
    slirp_state_save(l->slirp, blob_write, &blob);
    char *info = slirp_connection_info(l->slirp);
    char *neigh = slirp_neighbor_info(l->slirp);
    struct slirp_conn *conns = calloc(MAX_CONNS, sizeof(*conns));
    unsigned n = conns ? slirp_state_parse_conns(info, neigh, l->vnetwork, l->vnetmask, l->vhost,
                                                 conns, MAX_CONNS)
                       : 0;
    slirp_state_unlock(l);
    free(info);
    free(neigh);
    int rc = 0;
    if (!conns || blob.oom || blob.len > MAX_BLOB) {
        rc = vs_error(err, ENOMEM, "user networking: cannot save its state");
        goto out;
    }
    state_begin(w, SECTION, l->instance, SECTION_VERSION);
    state_put_u32(w, (uint32_t)slirp_state_version());
    state_put_u64(w, blob.len);
    state_put(w, blob.data, blob.len);
    state_put_u32(w, n);
    for (unsigned i = 0; i < n; i++) {
        state_put_u32(w, ntohl(conns[i].guest_addr));
        state_put_u32(w, ntohl(conns[i].peer_addr));
        state_put_u32(w, ntohs(conns[i].guest_port));
        state_put_u32(w, ntohs(conns[i].peer_port));
        uint8_t mac[8] = {0};
        memcpy(mac, conns[i].guest_mac, 6);
        state_put(w, mac, sizeof(mac));
    }
    state_end(w);
    vs_debug("slirp%u: saved %zu bytes of slirp state, %u TCP connections", l->instance, blob.len,
             n);
out:
    free(conns);
    vs_buf_free(&blob);
    return rc;
}

/* ---- restoring ------------------------------------------------------------ */

void slirp_state_saved_free(struct slirp_state_saved *p)
{
    free(p->blob);
    free(p->conns);
    memset(p, 0, sizeof(*p));
}

static int read_section(struct state_reader *r, struct slirp_state_saved *p, vs_err *err)
{
    uint32_t ver, n;
    uint64_t len;
    if (state_get_u32(r, &ver, err) < 0 || state_get_u64(r, &len, err) < 0)
        return -1;
    if (len > MAX_BLOB)
        return vs_error(err, EINVAL, "%s: slirp state of %llu bytes is too large", SECTION,
                        (unsigned long long)len);
    p->slirp_version = ver;
    p->blob_len = len;
    p->blob = malloc(len ? len : 1);
    if (!p->blob)
        return vs_error(err, ENOMEM, "out of memory");
    if (state_get(r, p->blob, len, err) < 0 || state_get_u32(r, &n, err) < 0)
        return -1;
    if (n > MAX_CONNS)
        return vs_error(err, EINVAL, "%s: %u connections is too many", SECTION, n);
    p->conns = calloc(n ? n : 1, sizeof(*p->conns));
    if (!p->conns)
        return vs_error(err, ENOMEM, "out of memory");
    for (unsigned i = 0; i < n; i++) {
        uint32_t ga, pa, gp, pp;
        uint8_t mac[8];
        if (state_get_u32(r, &ga, err) < 0 || state_get_u32(r, &pa, err) < 0 ||
            state_get_u32(r, &gp, err) < 0 || state_get_u32(r, &pp, err) < 0 ||
            state_get(r, mac, sizeof(mac), err) < 0)
            return -1;
        if (gp == 0 || gp > 65535 || pp == 0 || pp > 65535)
            return vs_error(err, EINVAL, "%s: connection %u has a bad port", SECTION, i);
        struct slirp_conn *c = &p->conns[i];
        c->guest_addr = htonl(ga);
        c->peer_addr = htonl(pa);
        c->guest_port = htons((uint16_t)gp);
        c->peer_port = htons((uint16_t)pp);
        memcpy(c->guest_mac, mac, 6);
    }
    p->nconns = n;
    p->present = true;
    return 0;
}

int slirp_state_read_section(struct state_reader *r, unsigned instance,
                             struct slirp_state_saved *out, vs_err *err)
{
    memset(out, 0, sizeof(*out));
    uint32_t version;
    vs_err ignore = {0};
    if (state_find(r, SECTION, instance, &version, &ignore) < 0)
        return 0; /* an older snapshot, or another backend kind */
    if (version != SECTION_VERSION)
        return vs_error(err, EINVAL, "%s %u: unsupported state version %u", SECTION, instance,
                        version);
    if (read_section(r, out, err) < 0) {
        slirp_state_saved_free(out);
        return vs_error_prefix(err, "snapshot state: ");
    }
    return 0;
}

struct blob_cursor {
    const uint8_t *p;
    size_t len, pos;
};

static ssize_t blob_read(void *buf, size_t len, void *opaque)
{
    struct blob_cursor *c = opaque;
    size_t n = len < c->len - c->pos ? len : c->len - c->pos;
    memcpy(buf, c->p + c->pos, n);
    c->pos += n;
    return (ssize_t)n;
}

/* With l->lock held. */
static void load_saved(struct slirp_state_link *l, struct slirp_state_saved *p)
{
    if (p->slirp_version > (uint32_t)slirp_state_version()) {
        vs_warn("user networking: the snapshot's slirp state is version %u, this libslirp "
                "reads up to %d: DHCP leases start afresh",
                p->slirp_version, slirp_state_version());
    } else {
        struct blob_cursor c = {p->blob, p->blob_len, 0};
        int ret = slirp_state_load(l->slirp, (int)p->slirp_version, blob_read, &c);
        if (ret < 0)
            vs_warn("user networking: the snapshot's slirp state does not load (%s): DHCP "
                    "leases start afresh",
                    strerror(-ret));
    }
    free(l->resets);
    l->resets = p->conns;
    l->nresets = p->nconns;
    p->conns = NULL;
    l->round = 0;
    l->ready_ms = -1;
    if (l->nresets)
        vs_debug("slirp%u: %u TCP connections of the snapshot will be reset", l->instance,
                 l->nresets);
}

int slirp_state_load_section(struct slirp_state_link *l, struct state_reader *r, vs_err *err)
{
    struct slirp_state_saved saved;
    if (slirp_state_read_section(r, l->instance, &saved, err) < 0)
        return -1;
    if (saved.present) {
        slirp_state_lock(l);
        load_saved(l, &saved);
        slirp_state_unlock(l);
    }
    slirp_state_saved_free(&saved);
    return 0;
}

void slirp_state_attach(struct slirp_state_link *l, Slirp *slirp, struct net_backend *b,
                        const SlirpConfig *cfg, unsigned instance)
{
    pthread_mutex_init(&l->lock, NULL);
    l->slirp = slirp;
    l->b = b;
    l->vnetwork = cfg->vnetwork;
    l->vnetmask = cfg->vnetmask;
    l->vhost = cfg->vhost;
    l->instance = instance;
    l->ready_ms = -1;
    l->attached = true;
}

void slirp_state_detach(struct slirp_state_link *l)
{
    if (!l->attached)
        return;
    free(l->resets);
    l->resets = NULL;
    l->attached = false;
    pthread_mutex_destroy(&l->lock);
}

/* ---- resetting the guest's connections after a restore ------------------- */

static uint16_t csum_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (len & 1)
        sum += (uint32_t)p[len - 1] << 8;
    return sum;
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p + 2, (uint16_t)v);
}

size_t slirp_state_probe_frame(const struct slirp_conn *c, struct in_addr gw, uint32_t seq,
                               uint8_t *f, size_t cap)
{
    const size_t len = 14 + 20 + 20;
    if (cap < len)
        return 0;
    memset(f, 0, len);
    /* Ethernet: to the guest, from slirp's MAC (52:55 + the gateway's IPv4) */
    memcpy(f, c->guest_mac, 6);
    f[6] = 0x52;
    f[7] = 0x55;
    memcpy(f + 8, &gw.s_addr, 4);
    put16(f + 12, 0x0800);
    uint8_t *ip = f + 14;
    ip[0] = 0x45;
    put16(ip + 2, 40);
    put16(ip + 6, 0x4000); /* DF */
    ip[8] = 64;
    ip[9] = 6; /* TCP */
    memcpy(ip + 12, &c->peer_addr, 4);
    memcpy(ip + 16, &c->guest_addr, 4);
    put16(ip + 10, csum_fold(csum_add(0, ip, 20)));
    uint8_t *tcp = ip + 20;
    memcpy(tcp, &c->peer_port, 2);
    memcpy(tcp + 2, &c->guest_port, 2);
    put32(tcp + 4, seq);
    put32(tcp + 8, seq ^ 0x5a5a5a5au); /* any ack: only the reply matters */
    tcp[12] = 5 << 4;
    tcp[13] = 0x10; /* ACK */
    put16(tcp + 14, 0xffff);
    uint8_t pseudo[12];
    memcpy(pseudo, ip + 12, 8);
    pseudo[8] = 0;
    pseudo[9] = 6;
    put16(pseudo + 10, 20);
    put16(tcp + 16, csum_fold(csum_add(csum_add(0, pseudo, 12), tcp, 20)));
    return len;
}

static void send_probes(struct slirp_state_link *l)
{
    /* Two ACKs half the sequence space apart: whatever the guest's
     * rcv_nxt, at least one lies outside its receive window. */
    uint32_t seq = (uint32_t)now_ms() * 2654435761u;
    uint8_t frame[NET_VNET_HDR_LEN + 64];
    for (unsigned i = 0; i < l->nresets; i++)
        for (int k = 0; k < 2; k++) {
            memset(frame, 0, NET_VNET_HDR_LEN);
            size_t n =
                slirp_state_probe_frame(&l->resets[i], l->vhost, seq + (uint32_t)k * 0x80000000u,
                                        frame + NET_VNET_HDR_LEN, sizeof(frame) - NET_VNET_HDR_LEN);
            if (n && l->b->receive)
                l->b->receive(l->b->opaque, frame, n + NET_VNET_HDR_LEN);
        }
}

void slirp_state_poll_fill(struct slirp_state_link *l, uint32_t *timeout_ms, bool can_rx)
{
    if (!l->nresets)
        return;
    int64_t now = now_ms();
    if (l->ready_ms < 0 && can_rx)
        l->ready_ms = now;
    int64_t wait = 5; /* until the restored device can receive */
    if (l->ready_ms >= 0) {
        wait = l->ready_ms + probe_at_ms[l->round] - now;
        if (wait < 0)
            wait = 0;
    }
    if ((uint32_t)wait < *timeout_ms)
        *timeout_ms = (uint32_t)wait;
}

void slirp_state_poll_done(struct slirp_state_link *l)
{
    if (!l->nresets || l->ready_ms < 0 || now_ms() < l->ready_ms + probe_at_ms[l->round])
        return;
    vs_debug("slirp%u: probe round %u for %u restored connections", l->instance, l->round,
             l->nresets);
    send_probes(l);
    if (++l->round == ARRAY_SIZE(probe_at_ms)) {
        free(l->resets);
        l->resets = NULL;
        l->nresets = 0;
    }
}
