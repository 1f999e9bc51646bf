/* A device's rate limit as a state section of its own, "<device>/rate"
 * (version 1: u64 bytes_per_s, bytes_burst, ops_per_s, ops_burst), so a
 * limit changed while the VM ran survives a snapshot and a migration.
 * Snapshots from before it have no such section: the config's limit
 * stays. */
#ifndef VESSEL_VIRTIO_RATE_STATE_H
#define VESSEL_VIRTIO_RATE_STATE_H

#include <stdbool.h>
#include "state/state.h"
#include "util/err.h"
#include "util/rate_limit.h"

void virtio_rate_save(struct state_writer *w, const char *dev, const struct vs_rate_config *c);
/* *found: the section was there (and c is what it held). */
int virtio_rate_load(struct state_reader *r, const char *dev, struct vs_rate_config *c, bool *found,
                     vs_err *err);

#endif
