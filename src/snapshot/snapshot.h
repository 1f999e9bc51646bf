/* Snapshots of a running VM into a directory (snapshot/format.h,
 * docs/snapshot-format.md), and restoring them in a new process. */
#ifndef VESSEL_SNAPSHOT_SNAPSHOT_H
#define VESSEL_SNAPSHOT_SNAPSHOT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include "mem/guest_mem.h"
#include "snapshot/format.h"
#include "state/state.h"
#include "util/err.h"
#include "vm/config.h"
#include "vm/control.h"

/* What a running VM remembers between snapshots (for diffs). */
struct snapshot_session {
    char *last_dir; /* absolute path of the previous snapshot, or NULL */
    char last_id[33];
    bool dirty_log; /* dirty logging on since last_dir was written */
    /* last_dir is the snapshot this process was restored from: the pages
     * written since are the private (copy-on-write) ones of its mapping */
    bool since_restore;
};

struct snapshot_stats {
    double pause_ms;       /* vCPUs stopped: state + memory copied */
    double total_ms;       /* including fsync and rename */
    double sync_ms;        /* of which fsync (the files reaching the disk) */
    uint64_t memory_bytes; /* guest memory bytes written (zero pages skipped) */
    uint64_t state_bytes;  /* size of vmstate */
};

void snapshot_session_free(struct snapshot_session *s);
/* A session starts from the snapshot the VM was restored from, if any
 * (origin_dir and origin_id, from its vm_restore_source), so the first diff
 * needs no full. */
void snapshot_session_init(struct snapshot_session *s, const char *origin_dir,
                           const char *origin_id);
/* Whether a diff snapshot can be taken now. */
bool snapshot_session_diff_possible(const struct snapshot_session *s);

/* Pause (if running), write dir atomically (temp dir, fsync, rename),
 * restore the previous run state. On failure the VM is left as it was and
 * no directory is created.
 * SNAPSHOT_DIFF: only pages dirtied since the previous snapshot of this
 * session. SNAPSHOT_DISKS: freeze each writable (qcow2) disk as part of the
 * snapshot; the VM continues on a new overlay "<disk>.after-<id>.qcow2". */
#define SNAPSHOT_DIFF 1u
#define SNAPSHOT_DISKS 2u
int snapshot_save(struct vm_control *ctl, struct snapshot_session *s, const char *dir,
                  unsigned flags, struct snapshot_stats *st, vs_err *err);
/* The same through any sink (snapshot/sink.h): a directory, or a stream on
 * an fd (live migration). The sink is committed on success, left
 * uncommitted on failure; the caller closes it. A stream's snapshot is not
 * a parent a later diff of the session can name. */
struct snapshot_sink;
int snapshot_save_to(struct vm_control *ctl, struct snapshot_session *s, struct snapshot_sink *sink,
                     unsigned flags, struct snapshot_stats *st, vs_err *err);

/* Live migration (migrate/source.c) sends guest memory in rounds while the
 * VM runs, then the rest with it paused, through a sink of its own. */
/* Where region i of mem starts in the memory image. */
uint64_t snapshot_region_offset(const struct guest_mem_layout *mem, unsigned i);
/* A memory region as a manifest (and a migration HELLO) names it, and back:
 * parsing checks page alignment and that it lies inside an image of
 * image_size bytes; false when it does not. */
json_t *snapshot_region_json(uint64_t gpa, uint64_t size, uint64_t offset);
bool snapshot_region_parse(const json_t *r, uint64_t image_size, uint64_t *gpa, uint64_t *size,
                           uint64_t *offset);
/* Region i of mem to sink: every non-zero page (bitmap NULL), or the pages
 * bitmap marks (zero ones as zero records where the sink has them). */
int snapshot_send_region(struct snapshot_sink *sink, const struct guest_mem_layout *mem, unsigned i,
                         const uint64_t *bitmap, uint64_t *written, vs_err *err);
/* The last round, with the VM paused (it stays paused): flush the disks,
 * then the pages dirtied since the rounds' last fetch OR'ed with pending
 * (per region of pre, pages a round fetched but did not send; NULL: none),
 * the device state and the vmstate. pre is the layout the rounds sent; a
 * different one now fails. The caller commits the sink. postcopy: no pages
 * are written; pending is left holding every page still to be sent. */
int snapshot_save_final(struct vm_control *ctl, struct snapshot_sink *sink,
                        const struct guest_mem_layout *pre, uint64_t **pending, bool postcopy,
                        struct snapshot_stats *st, vs_err *err);

/* A validated snapshot: header, CRC, version, machine type, CPU features,
 * disks and memory files are all checked by snapshot_image_open, before any
 * vCPU exists. */
struct snapshot_image {
    char *dir; /* absolute */
    char id[33];
    struct snap_header hdr;
    enum vm_arch arch;
    struct vm_config cfg;
    uint8_t *vmstate;
    size_t vmstate_len;
    json_t *manifest;
    struct snapshot_image *parent; /* diff snapshots: the one below */
    struct guest_mem mem;          /* filled by snapshot_image_map */
    struct state_reader state;
    /* disks (a bit per index) that moved with a migration stream: not
     * checked against their records */
    uint64_t moved_disks;
};

/* expect_arch: -1 for any, else the machine type the caller will run. */
int snapshot_image_open(const char *dir, int expect_arch, struct snapshot_image *img, vs_err *err);
/* The same for a snapshot that arrived as a stream (live migration): the
 * vmstate (taken over: freed by snapshot_image_close, also on failure) is
 * checked as snapshot_image_open checks a file; img->dir is NULL and the
 * memory is the receiver's. */
int snapshot_image_from_vmstate(uint8_t *vmstate, size_t len, int expect_arch, uint64_t moved_disks,
                                struct snapshot_image *img, vs_err *err);
/* Map guest memory MAP_PRIVATE from the memory file(s): nothing is read. */
int snapshot_image_map(struct snapshot_image *img, vs_err *err);
void snapshot_image_close(struct snapshot_image *img);

/* Check the CPU features a snapshot recorded against this host (x86: KVM's
 * supported CPUID). Exposed for tests. */
int snapshot_check_cpu_features(enum vm_arch arch, const uint8_t *blob, size_t len, vs_err *err);

/* Where a restore without --overlay-dir puts its disk overlays; removed at
 * exit unless a snapshot of the restored VM refers to them (it leaves
 * SNAPSHOT_KEEP_FILE in the directory). */
#define SNAPSHOT_RESTORE_TMP "/var/tmp/vessel-restore-"
#define SNAPSHOT_KEEP_FILE "KEEP"

struct snapshot_restore_opts {
    const char *api_sock;    /* NULL: no control API */
    const char *console;     /* NULL: as recorded */
    const char *overlay_dir; /* disk overlays go here; NULL: a temp dir removed on exit */
    int expect_arch;         /* -1: any */
    int clone_index;         /* >= 0: derive a new MAC and vsock CID */
    uint32_t vsock_cid;      /* nonzero: use this CID */
    /* --net I,tap=NAME[,mac=MAC]: NIC I on another tap and/or MAC (a copy of
     * a VM on a bridge cannot share its source's tap) */
    struct snapshot_net_override {
        unsigned index;
        const char *tap; /* NULL: keep */
        uint8_t mac[6];
        bool mac_set;
    } nets[VM_MAX_NETS];
    unsigned nnets;
};
/* Parse "I,tap=NAME[,mac=MAC]" (or "I,mac=MAC") into o; NAME points into
 * spec, which must outlive o. */
int snapshot_parse_net_override(char *spec, struct snapshot_net_override *o, vs_err *err);
/* Apply them to cfg (a restore's, or a migration destination's). */
int snapshot_apply_net_overrides(struct vm_config *cfg, const struct snapshot_net_override *nets,
                                 unsigned nnets, vs_err *err);

/* A restore in two halves around the machine, so snapshot/ never runs one
 * (the runner, above it, serves the API that saves snapshots):
 * snapshot_restore_prepare opens and validates dir, applies o to its
 * configuration, creates the disk overlays and maps memory; the caller then
 * runs rs->img.cfg from rs->src (vm_machine_restore, which adopts the
 * memory) and calls snapshot_restore_finish, which removes temporary
 * overlays nobody refers to and closes the image. On failure prepare has
 * cleaned up itself. */
struct snapshot_restore {
    struct snapshot_image img;
    struct vm_restore_source src;
    char tmpdir[sizeof(SNAPSHOT_RESTORE_TMP "XXXXXX")]; /* "" unless overlays went there */
};
int snapshot_restore_prepare(const char *dir, const struct snapshot_restore_opts *o,
                             struct snapshot_restore *rs, vs_err *err);
void snapshot_restore_finish(struct snapshot_restore *rs);

/* Start count restores of dir in the background, each in outdir/clone-<i>
 * (api.sock, console.log, disk overlays, pid). Prints one line per clone. */
int snapshot_clone(const char *dir, unsigned count, const char *outdir, const char *self_exe,
                   vs_err *err);

#endif
