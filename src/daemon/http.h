/* vesseld's REST server: libmicrohttpd on the daemon's unix socket, a
 * thread per connection (a slow stop does not hold up a list), and one
 * table of routes that GET /1.0 also reports (the OpenAPI test compares it
 * with docs/daemon-api.yaml). */
#ifndef VESSEL_DAEMON_HTTP_H
#define VESSEL_DAEMON_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

struct daemon;
struct http_server;

/* Does url match a route pattern ("/1.0/instances/{name}")? The {param}
 * segment (not empty, no '/') is copied into param (plen bytes). */
bool http_route_match(const char *pattern, const char *url, char *param, size_t plen);

int http_server_start(struct daemon *d, struct http_server **out, vs_err *err);
void http_server_stop(struct http_server *s);

#endif
