/* The per-VM control API: HTTP/JSON on a unix socket (docs/api.md). */
#ifndef VESSEL_API_SERVER_H
#define VESSEL_API_SERVER_H

#include "util/err.h"
#include "vm/control.h"

struct api_server;

/* Listen on path (removing a stale socket); requests run on the server's
 * own thread and call into ctl. from: what a restored VM was restored from
 * (its snapshots' session starts there), or NULL. */
int api_server_start(const char *path, struct vm_control *ctl, const struct vm_restore_source *from,
                     struct api_server **out, vs_err *err);
void api_server_stop(struct api_server *s);

#endif
