/* The destination's side of post-copy migration: the guest runs before all
 * of its memory has arrived. Its regions are registered with userfaultfd;
 * a fault on a page the source still holds asks the source for it at once
 * (PAGE_REQUEST), a fault on a page that was never sent (zero at the
 * source) gets a zero page, and pages streaming in the background are
 * placed with UFFDIO_COPY, which never overwrites a page the guest already
 * has. If the source goes away before every page is in, the guest cannot go
 * on: the process says so and exits. */
#ifndef VESSEL_MIGRATE_POSTCOPY_H
#define VESSEL_MIGRATE_POSTCOPY_H

#include "migrate/incoming.h"
#include "util/err.h"

struct postcopy;

/* Drop the stale copies of the pages still to come, register the regions
 * of in (mapped, with hva) and start the fault and receive threads on the
 * connection (theirs from now on; the caller ends and closes it after
 * postcopy_stop). Called once END arrived, before the machine loads its
 * state: whatever touches a missing page from then on waits for it. */
int postcopy_start(struct mig_conn *conn, struct mig_incoming *in, struct postcopy **out,
                   vs_err *err);
/* The handover while post-copy runs (it owns the connection): send READY
 * or RUNNING, and wait for the source's GO, which its receiver sees. */
int postcopy_send(struct postcopy *pc, uint32_t type, vs_err *err);
int postcopy_wait_go(struct postcopy *pc, int timeout_ms, vs_err *err);
/* Wait for the last page (or, when the guest stopped first, give up on
 * the rest) and free everything. NULL-safe. */
void postcopy_stop(struct postcopy *pc);

#endif
