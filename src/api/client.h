/* A client for the control API (used by `vessel vm pause|resume|snapshot|
 * info|stop --api-sock PATH`): one HTTP request over the unix socket. */
#ifndef VESSEL_API_CLIENT_H
#define VESSEL_API_CLIENT_H

#include <jansson.h>
#include "util/err.h"

/* method "GET"/"PUT"; body may be NULL. On an HTTP error status the server's
 * "error" message becomes err and -1 is returned; else *resp (caller frees). */
int api_client_request(const char *sock, const char *method, const char *path, const json_t *body,
                       json_t **resp, vs_err *err);

#endif
