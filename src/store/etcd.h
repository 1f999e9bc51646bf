/* A small client of etcd's v3 API through its JSON gateway (POST
 * /v3/kv/range, /v3/kv/put, /v3/kv/txn, /v3/kv/deleterange,
 * /v3/lease/grant, /v3/lease/keepalive; keys and values base64), over
 * HTTP/1.0 on TCP: one connection per request, no library to load (the
 * daemon's own API client dropped libcurl for its start-up cost); https://
 * endpoints through GnuTLS (etcd_set_tls: the CA that signed etcd's
 * certificate, and a client certificate when etcd asks for one).
 *
 * Endpoints are tried in order while they refuse connections. A read that
 * cannot be confirmed by a quorum in time is retried as a serializable
 * (local) read of whatever member answers, and flagged stale. */
#ifndef VESSEL_STORE_ETCD_H
#define VESSEL_STORE_ETCD_H

#include <jansson.h>
#include <stdbool.h>

#include "util/err.h"

struct etcd;

/* endpoints: "http[s]://HOST:PORT[,...]" */
int etcd_open(const char *endpoints, struct etcd **out, vs_err *err);
/* For https:// endpoints: PEM files of the CA etcd's certificate must
 * chain to (its name must match the endpoint's host), and optionally this
 * client's certificate and key. */
int etcd_set_tls(struct etcd *e, const char *ca, const char *cert, const char *key, vs_err *err);
void etcd_close(struct etcd *e);
/* The endpoints as given. */
const char *etcd_endpoints(struct etcd *e);
/* Did a read or write find no quorum in the last few seconds? */
bool etcd_degraded(struct etcd *e);

/* Records of keys: [{"key","value" (text),"create_revision","mod_revision",
 * "lease"}] sorted by key; prefix: every key that starts with key. *stale
 * (may be NULL) is set when no quorum confirmed the read. */
json_t *etcd_range(struct etcd *e, const char *key, bool prefix, bool *stale, vs_err *err);
/* A transaction: every compare holds -> success ops, else failure ops (may
 * be NULL). *succeeded says which ran. */
int etcd_txn(struct etcd *e, json_t *compare, json_t *success, json_t *failure, bool *succeeded,
             vs_err *err);
int etcd_put(struct etcd *e, const char *key, const char *value, long long lease, vs_err *err);
/* The number of keys deleted. */
long long etcd_delete(struct etcd *e, const char *key, bool prefix, vs_err *err);
/* A lease of ttl seconds; its id, or -1. */
long long etcd_lease_grant(struct etcd *e, int ttl, vs_err *err);
/* Renew; -1 with ENOENT once the lease has expired. */
int etcd_lease_keepalive(struct etcd *e, long long id, vs_err *err);
int etcd_lease_revoke(struct etcd *e, long long id, vs_err *err);

/* Pieces of transactions (new references, for json_array_append_new). */
json_t *etcd_cmp_exists(const char *key, bool exists); /* create_revision >0 / ==0 */
json_t *etcd_cmp_mod_revision(const char *key, long long rev);
json_t *etcd_op_put(const char *key, const char *value, long long lease);
json_t *etcd_op_delete(const char *key, bool prefix);

/* errno codes of an unreachable cluster or one without quorum, and the
 * message users see for a refused write. */
#define ETCD_UNAVAILABLE EHOSTUNREACH
#define ETCD_NO_QUORUM_MSG                                                                         \
    "the cluster store (etcd) has no quorum: changes are refused until it is back (running "       \
    "instances keep running)"

#endif
