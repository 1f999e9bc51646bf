/* vesseld's REST server: libmicrohttpd on the daemon's unix socket, a
 * thread per connection (a slow stop does not hold up a list), and one
 * table of routes that GET /1.0 also reports (the OpenAPI test compares it
 * with docs/daemon-api.yaml). */
#ifndef VESSEL_DAEMON_HTTP_H
#define VESSEL_DAEMON_HTTP_H

#include "util/err.h"

struct daemon;
struct http_server;

int http_server_start(struct daemon *d, struct http_server **out, vs_err *err);
void http_server_stop(struct http_server *s);

#endif
