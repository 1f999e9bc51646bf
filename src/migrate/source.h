/* The source side of live migration: a job on its own thread that sends a
 * running VM's memory in rounds (pre-copy), throttles a guest that dirties
 * memory faster than the link (auto-converge), then pauses it, sends the
 * rest and its device state, and hands it over. The control API starts,
 * watches and cancels it (docs/migration.md). */
#ifndef VESSEL_MIGRATE_SOURCE_H
#define VESSEL_MIGRATE_SOURCE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include "migrate/tls.h"
#include "util/err.h"
#include "vm/control.h"

struct migrate_params {
    char uri[512];
    uint64_t downtime_limit_us; /* the pause the last round may take (default 20 ms) */
    uint64_t bandwidth;         /* bytes per second; 0: as fast as the link goes */
    bool auto_converge;
    bool postcopy;         /* switch to post-copy when pre-copy does not converge */
    bool copy_disks;       /* writable disks move too (migrate/disks.h) */
    unsigned max_throttle; /* percent, for auto-converge (default 99) */
    /* TLS: the strings, and tls pointing at the ones given */
    char tls_psk[512], tls_ca[512], tls_cert[512], tls_key[512], tls_host[256];
    struct mig_tls_opts tls;
};

enum migrate_state {
    MIGRATE_NONE,
    MIGRATE_SETUP,      /* connecting, HELLO */
    MIGRATE_ACTIVE,     /* rounds while the guest runs */
    MIGRATE_COMPLETING, /* guest paused: the last round and the handover */
    MIGRATE_POSTCOPY,   /* the guest runs on the destination, pages follow */
    MIGRATE_COMPLETED,  /* the guest runs on the destination; this VM stops */
    MIGRATE_FAILED,     /* the guest runs on here, as before */
    MIGRATE_CANCELLED,  /* the same, by request */
    MIGRATE_UNKNOWN,    /* the link failed after GO: the guest stays paused here */
    MIGRATE_LOST,       /* post-copy broke off: the destination's guest misses pages */
};

struct migrate_progress {
    enum migrate_state state;
    unsigned round;
    uint64_t memory_total;    /* bytes of guest memory */
    uint64_t bytes_sent;      /* on the wire so far */
    uint64_t pages_sent;      /* data pages */
    uint64_t zero_pages;      /* sent as zero records or skipped */
    uint64_t bytes_remaining; /* dirty memory (and disk) left to send */
    uint64_t disk_bytes_sent; /* --copy-disks: disk data sent so far */
    double dirty_rate;        /* bytes per second the guest dirties */
    double bandwidth;         /* bytes per second measured */
    double expected_downtime_ms;
    unsigned throttle_pct;
    bool postcopy;              /* switched to post-copy */
    uint64_t postcopy_requests; /* pages the destination's guest waited for */
    double downtime_ms;         /* the guest's pause, once completed, made of: */
    double final_round_ms;      /* pause, last pages, device state and vmstate sent */
    double destination_ms;      /* END until READY: the destination checks and loads the state */
    double handover_ms;         /* GO until RUNNING */
    double total_ms;
    char error[768];
};

struct migration;

/* Parse the API's request body into params (defaults for what it omits). */
int migrate_params_from_json(const json_t *body, struct migrate_params *p, vs_err *err);
/* Start migrating the VM behind ctl. on_done runs on the job's thread once
 * the guest runs on the destination (the runner stops this VM). */
int migration_start(struct vm_control *ctl, const struct migrate_params *p,
                    void (*on_done)(void *opaque), void *opaque, struct migration **out,
                    vs_err *err);
void migration_progress(struct migration *m, struct migrate_progress *out);
/* Someone has been told how it ended (a reply with the final progress went
 * out): a completed migration's on_done need not wait any longer. */
void migration_reported(struct migration *m);
bool migration_active(struct migration *m);
/* Stop a migration in flight; the guest goes on here. -1 if it is past the
 * point of no return (or over). */
int migration_cancel(struct migration *m, vs_err *err);
/* Cancel if needed, wait for the thread and free. NULL-safe. */
void migration_free(struct migration *m);
const char *migrate_state_name(enum migrate_state s);
json_t *migrate_progress_json(const struct migrate_progress *p);

#endif
