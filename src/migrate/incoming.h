/* The destination of a live migration: `vessel vm run --incoming URI`
 * waits for one stream, takes guest memory straight into a memfd as it
 * arrives, and runs nothing until a complete, valid state is there. */
#ifndef VESSEL_MIGRATE_INCOMING_H
#define VESSEL_MIGRATE_INCOMING_H

#include <stdbool.h>
#include <jansson.h>
#include <stdint.h>
#include "mem/guest_mem.h"
#include "migrate/disks.h"
#include "migrate/tls.h"
#include "snapshot/snapshot.h"
#include "util/err.h"
#include "vm/config.h"

/* How the receiver reads the stream and answers (a socket; the fuzz target
 * feeds a buffer). Each moves exactly len bytes or fails. */
struct mig_io {
    int (*read)(void *opaque, void *buf, size_t len);
    int (*write)(void *opaque, const void *buf, size_t len);
    void *opaque;
};

struct mig_image_region {
    uint64_t gpa, size, offset; /* offset in the memory image */
    uint8_t *hva;               /* the guest's mapping, once mapped */
};

struct mig_incoming {
    /* set by the caller */
    int expect_arch;     /* -1: any */
    uint64_t max_memory; /* largest memory image accepted */
    /* filled by mig_receive */
    enum vm_arch arch;
    int memfd;      /* the memory image, -1 before HELLO */
    uint8_t *image; /* all of it, mapped shared */
    uint64_t image_size;
    struct mig_image_region regions[GUEST_MEM_MAX_REGIONS];
    unsigned nregions;
    uint8_t *vmstate; /* the final state (malloc'd) */
    size_t vmstate_len;
    uint64_t memory_bytes, zero_bytes, disk_bytes; /* as received */
    unsigned records;
    /* post-copy: the pages still to come, one bit per page of each region
     * (regions' words concatenated), or NULL for pre-copy */
    uint64_t *missing;
    size_t missing_words;
    struct mig_disks_in disks; /* disks that move along (--copy-disks) */
    struct vm_config cfg;      /* from HELLO */
    json_t *config;            /* the same as sent */
};

void mig_incoming_init(struct mig_incoming *in, int expect_arch, uint64_t max_memory);
/* Read one migration up to its END record: the header, HELLO (checked and
 * answered with ACCEPT, or REFUSE and an error), memory, zero ranges and the
 * vmstate. Everything is bounds-checked; -1 with err naming what was wrong. */
int mig_receive(struct mig_incoming *in, const struct mig_io *io, vs_err *err);
/* The same in two steps: up to HELLO's answer (the machine can be built
 * from in->cfg then), and the rest up to END. */
int mig_receive_hello(struct mig_incoming *in, const struct mig_io *io, vs_err *err);
int mig_receive_rest(struct mig_incoming *in, const struct mig_io *io, vs_err *err);
/* Map the memory image's regions as guest memory (shared with the memfd;
 * mem takes its own references). */
int mig_incoming_map(struct mig_incoming *in, struct guest_mem *mem, vs_err *err);
void mig_incoming_free(struct mig_incoming *in);

/* The whole destination: listen on uri, receive, check the state, build the
 * machine, answer READY, start on GO. api_sock and console (NULL: the
 * stream's configuration / stdio) override the source's. Returns the VM's
 * exit status, or -1 with err. */
struct mig_incoming_opts {
    const char *uri;
    const char *api_sock;
    const char *console;
    const char *storage; /* where disks that move along are created */
    /* where the backing files of overlays that move along may be besides
     * storage (--allow-backing) */
    const char *const *allow_backing;
    unsigned nallow_backing;
    const char *vsock_uds; /* this host's socket for the vsock bridge */
    /* NICs on this host's taps (--net I,tap=NAME) */
    const struct snapshot_net_override *nets;
    unsigned nnets;
    int expect_arch;
    struct mig_tls_opts tls; /* none set: plain */
};
int mig_incoming_run(const struct mig_incoming_opts *o, vs_err *err);

#endif
