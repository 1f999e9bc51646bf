/* The management daemon's state: instances, images and operations. One
 * interface (struct store_ops) with two backends: SQLite (sqlite.c, one
 * host, the default) and etcd (etcd.c, a cluster of hosts sharing one
 * view). The store_* calls below dispatch to the backend (store.c).
 *
 * Records travel as JSON objects: the columns the daemon searches by
 * (name, type, state, ...) plus a free-form "config" object, so adding a
 * config key needs no schema change. Every call is atomic: a daemon killed
 * between two calls leaves the database at one of them. */
#ifndef VESSEL_STORE_STORE_H
#define VESSEL_STORE_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/err.h"

struct store;
struct etcd;

/* What a backend provides; every call has the meaning of the store_* call
 * of the same name below. */
struct store_ops {
    const char *name; /* "sqlite", "etcd" */
    void (*close)(struct store *s);
    int (*schema_version)(struct store *s);
    int (*instance_insert)(struct store *s, json_t *inst, vs_err *err);
    int (*instance_update)(struct store *s, json_t *inst, vs_err *err);
    json_t *(*instance_get)(struct store *s, const char *name, vs_err *err);
    json_t *(*instance_list)(struct store *s, vs_err *err);
    int (*instance_set_state)(struct store *s, const char *name, const char *from,
                              const char *state, long long pid, vs_err *err);
    int (*instance_delete)(struct store *s, const char *name, vs_err *err);
    int (*image_insert)(struct store *s, json_t *img, vs_err *err);
    int (*image_update)(struct store *s, json_t *img, vs_err *err);
    json_t *(*image_get)(struct store *s, const char *ref, vs_err *err);
    json_t *(*image_list)(struct store *s, vs_err *err);
    int (*image_delete)(struct store *s, const char *fingerprint, vs_err *err);
    int (*snapshot_insert)(struct store *s, json_t *snap, vs_err *err);
    json_t *(*snapshot_get)(struct store *s, const char *instance, const char *name, vs_err *err);
    json_t *(*snapshot_list)(struct store *s, const char *instance, vs_err *err);
    int (*snapshot_delete)(struct store *s, const char *instance, const char *name, vs_err *err);
    int (*op_insert)(struct store *s, json_t *op, vs_err *err);
    int (*op_update)(struct store *s, json_t *op, vs_err *err);
    json_t *(*op_get)(struct store *s, const char *id, vs_err *err);
    json_t *(*op_list)(struct store *s, vs_err *err);
    /* Did the last read come from a store that could not confirm it is
     * current (etcd without quorum)? NULL: never. */
    bool (*stale)(struct store *s);
};

/* Every backend's handle starts with this. */
struct store {
    const struct store_ops *ops;
};

/* Open (creating) the database at path, in WAL mode, and bring its schema
 * to the current version (migrations run in one transaction each). */
int store_open(const char *path, struct store **out, vs_err *err);

/* The etcd backend. endpoints: comma-separated http://HOST:PORT (tried in
 * order); prefix: the key prefix of this cluster ("/vessel/"); host: this
 * host's name. Instances and snapshots are cluster-wide (a name is unique
 * over the cluster: each create is an etcd transaction that checks the key
 * was never created); images and operations belong to one host (their
 * files and threads live there), keyed under it. */
struct store_etcd_config {
    const char *endpoints, *prefix, *host;
    const char *ca, *cert, *key; /* TLS to https:// endpoints (etcd_set_tls) */
};
int store_open_etcd(const struct store_etcd_config *cfg, struct store **out, vs_err *err);
/* The etcd client under an etcd store (cluster membership uses it), or
 * NULL for SQLite. */
struct etcd *store_etcd(struct store *s);

void store_close(struct store *s);
/* The schema version the database is at (PRAGMA user_version; for etcd
 * the version of its key layout). */
int store_schema_version(struct store *s);
/* See store_ops.stale. */
bool store_stale(struct store *s);
/* Copy every instance, snapshot and image record (and operation) of from
 * into to, instances' "location" set to location when it is not NULL.
 * Nothing is copied when an instance name is taken in to (EEXIST). */
int store_copy(struct store *from, struct store *to, const char *location, vs_err *err);

/* Instances: {"name","type","arch","image","state","pid","config",
 * "created_at","location"}. put fails with EEXIST for a taken name. */
int store_instance_insert(struct store *s, json_t *inst, vs_err *err);
/* Replace the record of inst["name"]; ENOENT when there is none. */
int store_instance_update(struct store *s, json_t *inst, vs_err *err);
/* New reference, or NULL with ENOENT. */
json_t *store_instance_get(struct store *s, const char *name, vs_err *err);
json_t *store_instance_list(struct store *s, vs_err *err);
/* Only the state and pid, and only if the state is still from (so a
 * reader's refresh never undoes a concurrent change); EAGAIN otherwise. */
int store_instance_set_state(struct store *s, const char *name, const char *from, const char *state,
                             long long pid, vs_err *err);
int store_instance_delete(struct store *s, const char *name, vs_err *err);

/* Images: {"fingerprint","alias","type","arch","size","path","state",
 * "properties","created_at"}; state is "importing" until an import ends. */
int store_image_insert(struct store *s, json_t *img, vs_err *err);
int store_image_update(struct store *s, json_t *img, vs_err *err);
/* By alias or fingerprint (or a unique fingerprint prefix). */
json_t *store_image_get(struct store *s, const char *ref, vs_err *err);
json_t *store_image_list(struct store *s, vs_err *err);
int store_image_delete(struct store *s, const char *fingerprint, vs_err *err);

/* Snapshots: {"id": "instance/name","instance","name","stateful","path",
 * "created_at"}; deleting an instance deletes its snapshots' records. */
int store_snapshot_insert(struct store *s, json_t *snap, vs_err *err);
json_t *store_snapshot_get(struct store *s, const char *instance, const char *name, vs_err *err);
json_t *store_snapshot_list(struct store *s, const char *instance, vs_err *err);
int store_snapshot_delete(struct store *s, const char *instance, const char *name, vs_err *err);

/* Operations: {"id","kind","target","status","progress","result","error",
 * "created_at","updated_at"}; status running|success|failure|cancelled. */
int store_op_insert(struct store *s, json_t *op, vs_err *err);
int store_op_update(struct store *s, json_t *op, vs_err *err);
json_t *store_op_get(struct store *s, const char *id, vs_err *err);
json_t *store_op_list(struct store *s, vs_err *err);

#endif
