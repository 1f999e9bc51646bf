/* User-mode networking (libslirp) across a snapshot.
 *
 * libslirp's own state (slirp_state_save/load, as QEMU migrates it) carries
 * only the IP id counter, the DHCP leases and guestfwd sockets: the host
 * sockets behind the guest's TCP connections belong to the process that
 * opened them and die with it. So a restored guest's open connections cannot
 * go on. What must not happen is a guest waiting forever on a connection
 * nobody remembers: a snapshot also records every TCP connection slirp
 * carries (the guest's address and port, its peer's as the guest sees it,
 * the guest's MAC), and after a restore the backend sends the guest, for each
 * one, ACKs outside its receive window. The guest's TCP answers each with an
 * ACK (RFC 793 3.9); the new slirp knows no such connection and replies with
 * a RST whose sequence number is exactly the one the guest expects, so the
 * guest's socket is reset at once (ECONNRESET) instead of hanging.
 *
 * The state belongs to its backend (and so to its VM): the backend saves
 * and loads it with its device, as section "net.slirp" numbered by the
 * backend's order among its VM's user-networking devices. Nothing is kept
 * per process.
 *
 * Threads: libslirp is not thread-safe. The backend's device thread makes
 * every slirp call with `lock` held; a snapshot (on the API thread, VM
 * paused) and a restore's load take the same lock. */
#ifndef VESSEL_NET_SLIRP_STATE_H
#define VESSEL_NET_SLIRP_STATE_H

#include <libslirp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "net/net.h"
#include "state/state.h"
#include "util/err.h"

/* One TCP connection as the guest sees it (addresses in network order). */
struct slirp_conn {
    uint32_t guest_addr, peer_addr;
    uint16_t guest_port, peer_port;
    uint8_t guest_mac[6];
};

/* Embedded in each slirp backend. */
struct slirp_state_link {
    pthread_mutex_t lock; /* held around every libslirp call */
    Slirp *slirp;
    struct net_backend *b;
    struct in_addr vnetwork, vnetmask, vhost;
    unsigned instance; /* its section's instance: order among its VM's user networks */
    bool attached;
    /* after a restore: connections to reset, probe rounds */
    struct slirp_conn *resets;
    unsigned nresets, round;
    int64_t ready_ms; /* when the guest could first receive, or -1 */
};

/* Set up the link of a new backend (after slirp_new and its hostfwd
 * rules). */
void slirp_state_attach(struct slirp_state_link *l, Slirp *slirp, struct net_backend *b,
                        const SlirpConfig *cfg, unsigned instance);
void slirp_state_detach(struct slirp_state_link *l);

static inline void slirp_state_lock(struct slirp_state_link *l)
{
    pthread_mutex_lock(&l->lock);
}

static inline void slirp_state_unlock(struct slirp_state_link *l)
{
    pthread_mutex_unlock(&l->lock);
}

/* Device thread, lock held, around its poll(): while resets are due, lower
 * *timeout_ms (UINT32_MAX = none) and send them once the guest can receive. */
void slirp_state_poll_fill(struct slirp_state_link *l, uint32_t *timeout_ms, bool can_rx);
void slirp_state_poll_done(struct slirp_state_link *l);

/* Snapshot (VM paused): the backend's "net.slirp" section: libslirp's
 * state and the open TCP connections. */
int slirp_state_save_section(struct slirp_state_link *l, struct state_writer *w, vs_err *err);
/* Restore, after the backend was created and before the VM runs: load its
 * section (none in the snapshot: nothing to do; malformed: -1) into
 * libslirp and arm the resets of its connections. */
int slirp_state_load_section(struct slirp_state_link *l, struct state_reader *r, vs_err *err);

/* A "net.slirp" section as read from a snapshot. */
struct slirp_state_saved {
    bool present; /* false: the snapshot has no section for this instance */
    uint32_t slirp_version;
    uint8_t *blob;
    size_t blob_len;
    struct slirp_conn *conns;
    unsigned nconns;
};
/* Parse the section of instance (malformed -> -1); free with
 * slirp_state_saved_free. */
int slirp_state_read_section(struct state_reader *r, unsigned instance,
                             struct slirp_state_saved *out, vs_err *err);
void slirp_state_saved_free(struct slirp_state_saved *s);

/* A probe for one connection: Ethernet + IPv4 + TCP ACK with sequence
 * number seq from the peer to the guest (gw: slirp's gateway address, its
 * MAC's source), no virtio-net header. Returns its length (0: cap too small). */
size_t slirp_state_probe_frame(const struct slirp_conn *c, struct in_addr gw, uint32_t seq,
                               uint8_t *frame, size_t cap);
/* Parse slirp_connection_info and slirp_neighbor_info text into the TCP
 * connections as the guest sees them (for a hostfwd connection the host
 * peer comes from getpeername on the listed fd). Returns how many. */
unsigned slirp_state_parse_conns(const char *info, const char *neigh, struct in_addr vnetwork,
                                 struct in_addr vnetmask, struct in_addr vhost,
                                 struct slirp_conn *out, unsigned max);

#endif
