/* Where a migration goes: "tcp:HOST:PORT" ([v6] hosts in brackets) or
 * "unix:PATH". The destination listens on it, the source connects. */
#ifndef VESSEL_MIGRATE_URI_H
#define VESSEL_MIGRATE_URI_H

#include "util/err.h"

/* A listening socket for uri (SO_REUSEADDR; a stale unix socket file is
 * replaced). */
int mig_listen(const char *uri, vs_err *err);
/* A connected socket, giving up after timeout_ms. */
int mig_connect(const char *uri, int timeout_ms, vs_err *err);
/* TCP options for a migration connection (no-ops on a unix socket). */
void mig_socket_tune(int fd);
/* Checks the form only (for argument parsing). */
int mig_uri_check(const char *uri, vs_err *err);

#endif
