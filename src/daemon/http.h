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

#define ROUTE_MAX_PARAMS 2
struct route_params {
    char v[ROUTE_MAX_PARAMS][256];
    unsigned n;
};

/* Does url match a route pattern ("/1.0/instances/{name}/snapshots/{snap}")?
 * Each {param} segment (not empty, no '/', under 256 bytes) is copied into
 * p->v in order. */
bool http_route_match(const char *pattern, const char *url, struct route_params *p);

/* Does a server answer on this unix socket? */
bool http_socket_in_use(const char *path);

int http_server_start(struct daemon *d, struct http_server **out, vs_err *err);
/* HTTPS on TCP at "ADDR:PORT" (IPv4 or [IPv6]); only enrolled client
 * certificates are served, and certificates are not managed from here. */
int https_server_start(struct daemon *d, const char *addr, struct http_server **out, vs_err *err);
void http_server_stop(struct http_server *s);

#endif
