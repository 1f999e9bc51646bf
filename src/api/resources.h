/* The VM's dynamic resources as the control API sees them: PATCH /vm
 * changes them while the VM runs, GET /vm reports them (docs/api.md). */
#ifndef VESSEL_API_RESOURCES_H
#define VESSEL_API_RESOURCES_H

#include <jansson.h>
#include "util/err.h"
#include "vm/control.h"

/* Add the resources' current state to info (a "balloon" object, ...). */
void api_resources_info(struct vm_control *ctl, json_t *info);
/* Apply body, a JSON object of resources to change:
 *   {"balloon": {"target_bytes": N, "stats_interval_s": S}, "cpus": N,
 *    "disks": [{"index": I, "size": BYTES, "rate_limit": R}],
 *    "nets": [{"index": I, "rate_limit": R}]}
 * with R {"bytes_per_s", "bytes_burst", "ops_per_s", "ops_burst"} (null or
 * all 0: no limit).
 * Every value is checked before anything changes; on error (err->code:
 * EINVAL bad value, ENODEV no such device, ENOTSUP not on this machine)
 * nothing was applied. */
int api_resources_patch(struct vm_control *ctl, const json_t *body, vs_err *err);

#endif
