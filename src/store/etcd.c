/* The etcd backend of the daemon's store (store.h): one key per record, its
 * value the record's JSON projected onto the same fields SQLite keeps.
 *
 *   PREFIX/instances/NAME               cluster-wide: a name is unique
 *   PREFIX/snapshots/INSTANCE/NAME      go with their instance
 *   PREFIX/images/HOST/FINGERPRINT      a host's own (its files are there)
 *   PREFIX/operations/HOST/ID           a host's own (its threads run them)
 *
 * Creates are transactions that check the key was never created
 * (create_revision == 0), so of two hosts creating one name at once one
 * wins and the other gets EEXIST; updates check it exists; the state
 * compare-and-set checks the revision it read. Cluster membership
 * (daemon/cluster.c) keeps its keys under the same prefix. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/etcd.h"
#include "store/records.h"
#include "store/store.h"

/* Bump when the key layout changes. */
#define ETCD_LAYOUT_VERSION 1

struct etcd_store {
    struct store base;
    struct etcd *etcd;
    char *prefix, *host;
    atomic_bool stale;
};

static struct etcd_store *es(struct store *s)
{
    return (struct etcd_store *)s;
}

/* PREFIX + the parts joined by '/' (a caller's buffer of 1 KiB) */
static char *key_of(struct etcd_store *s, char *buf, const char *a, const char *b, const char *c)
{
    snprintf(buf, 1024, "%s%s/%s%s%s", s->prefix, a, b ? b : "", c ? "/" : "", c ? c : "");
    return buf;
}

static json_t *value_of(json_t *kv)
{
    json_t *j = json_loads(json_string_value(json_object_get(kv, "value")), 0, NULL);
    return j ? j : json_object();
}

static int put_new(struct etcd_store *s, const struct table *t, const char *key, json_t *rec,
                   json_t *extra_cmp, vs_err *err)
{
    json_t *proj = store_record_project(t, rec);
    char *text = json_dumps(proj, JSON_COMPACT);
    json_decref(proj);
    json_t *cmp = json_pack("[o]", etcd_cmp_exists(key, false));
    if (extra_cmp)
        json_array_append_new(cmp, extra_cmp);
    json_t *ops = json_pack("[o]", etcd_op_put(key, text, 0));
    bool ok = false;
    int rc = etcd_txn(s->etcd, cmp, ops, NULL, &ok, err);
    free(text);
    json_decref(cmp);
    json_decref(ops);
    if (rc < 0)
        return -1;
    if (!ok) {
        const char *id = json_string_value(json_object_get(rec, t->cols[0].name));
        return vs_error(err, EEXIST, "%s '%s' already exists", t->what, id ? id : "?");
    }
    return 0;
}

static int put_existing(struct etcd_store *s, const struct table *t, const char *key, json_t *rec,
                        vs_err *err)
{
    json_t *proj = store_record_project(t, rec);
    char *text = json_dumps(proj, JSON_COMPACT);
    json_decref(proj);
    json_t *cmp = json_pack("[o]", etcd_cmp_exists(key, true));
    json_t *ops = json_pack("[o]", etcd_op_put(key, text, 0));
    bool ok = false;
    int rc = etcd_txn(s->etcd, cmp, ops, NULL, &ok, err);
    free(text);
    json_decref(cmp);
    json_decref(ops);
    if (rc < 0)
        return -1;
    if (!ok) {
        const char *id = json_string_value(json_object_get(rec, t->cols[0].name));
        return vs_error(err, ENOENT, "%s '%s' not found", t->what, id ? id : "?");
    }
    return 0;
}

static json_t *range(struct etcd_store *s, const char *key, bool prefix, vs_err *err)
{
    bool stale = false;
    json_t *kvs = etcd_range(s->etcd, key, prefix, &stale, err);
    if (kvs)
        atomic_store(&s->stale, stale);
    return kvs;
}

static json_t *get_one(struct etcd_store *s, const struct table *t, const char *key,
                       const char *ref, vs_err *err)
{
    json_t *kvs = range(s, key, false, err), *out = NULL;
    if (!kvs)
        return NULL;
    if (json_array_size(kvs) == 1)
        out = value_of(json_array_get(kvs, 0));
    else
        vs_error(err, ENOENT, "%s '%s' not found", t->what, ref);
    json_decref(kvs);
    return out;
}

static int by_created_at(const void *a, const void *b)
{
    long long x = json_integer_value(json_object_get(*(json_t *const *)a, "created_at"));
    long long y = json_integer_value(json_object_get(*(json_t *const *)b, "created_at"));
    return x < y ? -1 : x > y;
}

/* The records under a prefix (sorted by key, or by created_at). */
static json_t *list(struct etcd_store *s, const char *prefix, bool by_time, vs_err *err)
{
    json_t *kvs = range(s, prefix, true, err);
    if (!kvs)
        return NULL;
    size_t n = json_array_size(kvs), i;
    json_t **recs = calloc(n ? n : 1, sizeof(*recs)), *kv, *out = json_array();
    json_array_foreach(kvs, i, kv) recs[i] = value_of(kv);
    if (by_time)
        qsort(recs, n, sizeof(*recs), by_created_at);
    for (i = 0; i < n; i++)
        json_array_append_new(out, recs[i]);
    free(recs);
    json_decref(kvs);
    return out;
}

static int del(struct etcd_store *s, const struct table *t, const char *key, const char *ref,
               const char *also_prefix, vs_err *err)
{
    json_t *cmp = json_pack("[o]", etcd_cmp_exists(key, true));
    json_t *ops = json_pack("[o]", etcd_op_delete(key, false));
    if (also_prefix)
        json_array_append_new(ops, etcd_op_delete(also_prefix, true));
    bool ok = false;
    int rc = etcd_txn(s->etcd, cmp, ops, NULL, &ok, err);
    json_decref(cmp);
    json_decref(ops);
    if (rc < 0)
        return -1;
    return ok ? 0 : vs_error(err, ENOENT, "%s '%s' not found", t->what, ref);
}

static const char *field(json_t *rec, const char *name)
{
    return json_string_value(json_object_get(rec, name));
}

/* Names go into keys: no '/' (a valid instance name has none; this keeps
 * a bad one from reaching another record's key). */
static int key_part_ok(const char *what, const char *v, vs_err *err)
{
    if (!v || !v[0] || strchr(v, '/'))
        return vs_error(err, EINVAL, "store: bad %s '%s'", what, v ? v : "");
    return 0;
}

static int e_schema_version(struct store *s)
{
    (void)s;
    return ETCD_LAYOUT_VERSION;
}

static void e_close(struct store *base)
{
    struct etcd_store *s = es(base);
    etcd_close(s->etcd);
    free(s->prefix);
    free(s->host);
    free(s);
}

static bool e_stale(struct store *s)
{
    return atomic_load(&es(s)->stale);
}

/* instances */

static int e_instance_insert(struct store *base, json_t *inst, vs_err *err)
{
    struct etcd_store *s = es(base);
    char key[1024];
    const char *name = field(inst, "name");
    if (key_part_ok("instance name", name, err) < 0)
        return -1;
    if (put_new(s, &store_instances, key_of(s, key, "instances", name, NULL), inst, NULL, err) <
        0) {
        if (err && err->code == EEXIST) {
            json_t *other = get_one(s, &store_instances, key, name, NULL);
            const char *where = other ? field(other, "location") : NULL;
            if (where)
                vs_error(err, EEXIST, "instance '%s' already exists (on host %s)", name, where);
            json_decref(other);
        }
        return -1;
    }
    return 0;
}

static int e_instance_update(struct store *base, json_t *inst, vs_err *err)
{
    struct etcd_store *s = es(base);
    char key[1024];
    const char *name = field(inst, "name");
    if (key_part_ok("instance name", name, err) < 0)
        return -1;
    return put_existing(s, &store_instances, key_of(s, key, "instances", name, NULL), inst, err);
}

static json_t *e_instance_get(struct store *base, const char *name, vs_err *err)
{
    struct etcd_store *s = es(base);
    char key[1024];
    if (key_part_ok("instance name", name, err) < 0)
        return NULL;
    return get_one(s, &store_instances, key_of(s, key, "instances", name, NULL), name, err);
}

static json_t *e_instance_list(struct store *base, vs_err *err)
{
    struct etcd_store *s = es(base);
    char key[1024];
    return list(s, key_of(s, key, "instances", NULL, NULL), false, err);
}

static int e_instance_set_state(struct store *base, const char *name, const char *from,
                                const char *state, long long pid, vs_err *err)
{
    struct etcd_store *s = es(base);
    char key[1024];
    if (key_part_ok("instance name", name, err) < 0)
        return -1;
    key_of(s, key, "instances", name, NULL);
    for (int attempt = 0; attempt < 8; attempt++) {
        json_t *kvs = range(s, key, false, err);
        if (!kvs)
            return -1;
        if (json_array_size(kvs) != 1) {
            json_decref(kvs);
            return vs_error(err, EAGAIN, "instance '%s' changed", name);
        }
        json_t *kv = json_array_get(kvs, 0), *rec = value_of(kv);
        long long rev = json_integer_value(json_object_get(kv, "mod_revision"));
        json_decref(kvs);
        if (!field(rec, "state") || strcmp(field(rec, "state"), from)) {
            json_decref(rec);
            return vs_error(err, EAGAIN, "instance '%s' changed", name);
        }
        json_object_set_new(rec, "state", json_string(state));
        json_object_set_new(rec, "pid", pid > 0 ? json_integer(pid) : json_null());
        char *text = json_dumps(rec, JSON_COMPACT);
        json_decref(rec);
        json_t *cmp = json_pack("[o]", etcd_cmp_mod_revision(key, rev));
        json_t *ops = json_pack("[o]", etcd_op_put(key, text, 0));
        bool ok = false;
        int rc = etcd_txn(s->etcd, cmp, ops, NULL, &ok, err);
        free(text);
        json_decref(cmp);
        json_decref(ops);
        if (rc < 0)
            return -1;
        if (ok)
            return 0;
        /* changed between the read and the write: look again */
    }
    return vs_error(err, EAGAIN, "instance '%s' changed", name);
}

static int e_instance_delete(struct store *base, const char *name, vs_err *err)
{
    struct etcd_store *s = es(base);
    char key[1024], snaps[1024];
    if (key_part_ok("instance name", name, err) < 0)
        return -1;
    key_of(s, snaps, "snapshots", name, "");
    return del(s, &store_instances, key_of(s, key, "instances", name, NULL), name, snaps, err);
}

/* images: the host's own */

static json_t *image_by_alias(struct etcd_store *s, const char *alias, vs_err *err)
{
    char key[1024];
    json_t *all = list(s, key_of(s, key, "images", s->host, ""), false, err), *img, *out = NULL;
    size_t i;
    if (!all)
        return NULL;
    json_array_foreach(all, i, img)
    {
        const char *a = field(img, "alias");
        if (a && !strcmp(a, alias)) {
            out = json_incref(img);
            break;
        }
    }
    json_decref(all);
    if (!out)
        vs_error(err, ENOENT, "image '%s' not found", alias);
    return out;
}

static int e_image_insert(struct store *base, json_t *img, vs_err *err)
{
    struct etcd_store *s = es(base);
    char key[1024];
    const char *fp = field(img, "fingerprint"), *alias = field(img, "alias");
    if (key_part_ok("image fingerprint", fp, err) < 0)
        return -1;
    /* an alias names one image of the host (its imports are serialised by
     * the daemon; across hosts aliases may repeat, as images do) */
    if (alias) {
        vs_err e2 = {0};
        json_t *other = image_by_alias(s, alias, &e2);
        if (other) {
            json_decref(other);
            return vs_error(err, EEXIST, "image: alias '%s' is taken", alias);
        }
        if (e2.code != ENOENT)
            return vs_error(err, e2.code, "%s", e2.msg);
    }
    return put_new(s, &store_images, key_of(s, key, "images", s->host, fp), img, NULL, err);
}

static int e_image_update(struct store *base, json_t *img, vs_err *err)
{
    struct etcd_store *s = es(base);
    char key[1024];
    const char *fp = field(img, "fingerprint");
    if (key_part_ok("image fingerprint", fp, err) < 0)
        return -1;
    return put_existing(s, &store_images, key_of(s, key, "images", s->host, fp), img, err);
}

static json_t *e_image_get(struct store *base, const char *ref, vs_err *err)
{
    struct etcd_store *s = es(base);
    vs_err e2 = {0};
    json_t *j = image_by_alias(s, ref, &e2);
    if (j || e2.code != ENOENT) {
        if (!j)
            vs_error(err, e2.code, "%s", e2.msg);
        return j;
    }
    if (!ref[0] || strspn(ref, "0123456789abcdef") != strlen(ref) || strlen(ref) > 64) {
        vs_error(err, ENOENT, "image '%s' not found", ref);
        return NULL;
    }
    char key[1024];
    json_t *found = list(s, key_of(s, key, "images", s->host, ref), false, err);
    if (!found)
        return NULL;
    json_t *out = NULL;
    if (json_array_size(found) == 1)
        out = json_incref(json_array_get(found, 0));
    else if (json_array_size(found) > 1)
        vs_error(err, EINVAL, "image '%s' is ambiguous", ref);
    else
        vs_error(err, ENOENT, "image '%s' not found", ref);
    json_decref(found);
    return out;
}

static json_t *e_image_list(struct store *base, vs_err *err)
{
    struct etcd_store *s = es(base);
    char key[1024];
    return list(s, key_of(s, key, "images", s->host, ""), true, err);
}

static int e_image_delete(struct store *base, const char *fp, vs_err *err)
{
    struct etcd_store *s = es(base);
    char key[1024];
    if (key_part_ok("image fingerprint", fp, err) < 0)
        return -1;
    return del(s, &store_images, key_of(s, key, "images", s->host, fp), fp, NULL, err);
}

/* snapshots */

static int e_snapshot_insert(struct store *base, json_t *snap, vs_err *err)
{
    struct etcd_store *s = es(base);
    char key[1024], inst_key[1024];
    const char *inst = field(snap, "instance"), *name = field(snap, "name");
    if (key_part_ok("instance name", inst, err) < 0 || key_part_ok("snapshot name", name, err) < 0)
        return -1;
    /* as SQLite's foreign key: only of an instance that exists */
    json_t *inst_exists = etcd_cmp_exists(key_of(s, inst_key, "instances", inst, NULL), true);
    json_t *rec = json_deep_copy(snap);
    char id[512];
    snprintf(id, sizeof(id), "%s/%s", inst, name);
    json_object_set_new(rec, "id", json_string(id));
    int rc = put_new(s, &store_snapshots, key_of(s, key, "snapshots", inst, name), rec, inst_exists,
                     err);
    json_decref(rec);
    return rc;
}

static json_t *e_snapshot_get(struct store *base, const char *instance, const char *name,
                              vs_err *err)
{
    struct etcd_store *s = es(base);
    char key[1024], id[512];
    snprintf(id, sizeof(id), "%s/%s", instance, name);
    if (key_part_ok("instance name", instance, err) < 0 ||
        key_part_ok("snapshot name", name, err) < 0)
        return NULL;
    return get_one(s, &store_snapshots, key_of(s, key, "snapshots", instance, name), id, err);
}

static json_t *e_snapshot_list(struct store *base, const char *instance, vs_err *err)
{
    struct etcd_store *s = es(base);
    char key[1024];
    if (key_part_ok("instance name", instance, err) < 0)
        return NULL;
    return list(s, key_of(s, key, "snapshots", instance, ""), true, err);
}

static int e_snapshot_delete(struct store *base, const char *instance, const char *name,
                             vs_err *err)
{
    struct etcd_store *s = es(base);
    char key[1024], id[512];
    snprintf(id, sizeof(id), "%s/%s", instance, name);
    if (key_part_ok("instance name", instance, err) < 0 ||
        key_part_ok("snapshot name", name, err) < 0)
        return -1;
    return del(s, &store_snapshots, key_of(s, key, "snapshots", instance, name), id, NULL, err);
}

/* operations: the host's own */

static int e_op_insert(struct store *base, json_t *op, vs_err *err)
{
    struct etcd_store *s = es(base);
    char key[1024];
    const char *id = field(op, "id");
    if (key_part_ok("operation id", id, err) < 0)
        return -1;
    return put_new(s, &store_operations, key_of(s, key, "operations", s->host, id), op, NULL, err);
}

static int e_op_update(struct store *base, json_t *op, vs_err *err)
{
    struct etcd_store *s = es(base);
    char key[1024];
    const char *id = field(op, "id");
    if (key_part_ok("operation id", id, err) < 0)
        return -1;
    return put_existing(s, &store_operations, key_of(s, key, "operations", s->host, id), op, err);
}

static json_t *e_op_get(struct store *base, const char *id, vs_err *err)
{
    struct etcd_store *s = es(base);
    char key[1024];
    if (key_part_ok("operation id", id, err) < 0)
        return NULL;
    return get_one(s, &store_operations, key_of(s, key, "operations", s->host, id), id, err);
}

static json_t *e_op_list(struct store *base, vs_err *err)
{
    struct etcd_store *s = es(base);
    char key[1024];
    return list(s, key_of(s, key, "operations", s->host, ""), true, err);
}

static const struct store_ops etcd_ops = {
    .name = "etcd",
    .close = e_close,
    .schema_version = e_schema_version,
    .instance_insert = e_instance_insert,
    .instance_update = e_instance_update,
    .instance_get = e_instance_get,
    .instance_list = e_instance_list,
    .instance_set_state = e_instance_set_state,
    .instance_delete = e_instance_delete,
    .image_insert = e_image_insert,
    .image_update = e_image_update,
    .image_get = e_image_get,
    .image_list = e_image_list,
    .image_delete = e_image_delete,
    .snapshot_insert = e_snapshot_insert,
    .snapshot_get = e_snapshot_get,
    .snapshot_list = e_snapshot_list,
    .snapshot_delete = e_snapshot_delete,
    .op_insert = e_op_insert,
    .op_update = e_op_update,
    .op_get = e_op_get,
    .op_list = e_op_list,
    .stale = e_stale,
};

int store_open_etcd(const struct store_etcd_config *cfg, struct store **out, vs_err *err)
{
    *out = NULL;
    if (!cfg->host || !cfg->host[0] || strchr(cfg->host, '/'))
        return vs_error(err, EINVAL, "store: bad host name '%s'", cfg->host ? cfg->host : "");
    struct etcd_store *s = calloc(1, sizeof(*s));
    if (!s)
        return vs_error(err, ENOMEM, "out of memory");
    s->base.ops = &etcd_ops;
    const char *prefix = cfg->prefix && cfg->prefix[0] ? cfg->prefix : "/vessel/";
    size_t n = strlen(prefix);
    if (asprintf(&s->prefix, "%s%s", prefix, prefix[n - 1] == '/' ? "" : "/") < 0)
        s->prefix = NULL;
    s->host = strdup(cfg->host);
    if (!s->prefix || !s->host) {
        e_close(&s->base);
        return vs_error(err, ENOMEM, "out of memory");
    }
    if (etcd_open(cfg->endpoints, &s->etcd, err) < 0 ||
        etcd_set_tls(s->etcd, cfg->ca, cfg->cert, cfg->key, err) < 0) {
        e_close(&s->base);
        return -1;
    }
    *out = &s->base;
    return 0;
}

struct etcd *store_etcd(struct store *s)
{
    return s && s->ops == &etcd_ops ? es(s)->etcd : NULL;
}
