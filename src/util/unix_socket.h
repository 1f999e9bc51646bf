/* Unix stream sockets by path: the address check and the socket + connect or
 * bind + listen that the OCI terminal, virtio-console and virtio-vsock each
 * need. */
#ifndef VESSEL_UTIL_UNIX_SOCKET_H
#define VESSEL_UTIL_UNIX_SOCKET_H

#include "util/err.h"

/* A connected, close-on-exec stream socket, or -1 with err set. */
int vs_unix_connect(const char *path, vs_err *err);
/* A close-on-exec stream socket listening on path (a file already there is
 * replaced), or -1 with err set. */
int vs_unix_listen(const char *path, int backlog, vs_err *err);

#endif
