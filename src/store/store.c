/* The store's calls, dispatched to the backend (store.h), and what is the
 * same for every backend. */
#include "store/store.h"

#include <errno.h>
#include <string.h>

int store_schema_version(struct store *s)
{
    return s->ops->schema_version(s);
}
void store_close(struct store *s)
{
    if (s)
        s->ops->close(s);
}
bool store_stale(struct store *s)
{
    return s->ops->stale && s->ops->stale(s);
}

int store_instance_insert(struct store *s, json_t *inst, vs_err *err)
{
    return s->ops->instance_insert(s, inst, err);
}
int store_instance_update(struct store *s, json_t *inst, vs_err *err)
{
    return s->ops->instance_update(s, inst, err);
}
json_t *store_instance_get(struct store *s, const char *name, vs_err *err)
{
    return s->ops->instance_get(s, name, err);
}
json_t *store_instance_list(struct store *s, vs_err *err)
{
    return s->ops->instance_list(s, err);
}
int store_instance_set_state(struct store *s, const char *name, const char *from, const char *state,
                             long long pid, vs_err *err)
{
    return s->ops->instance_set_state(s, name, from, state, pid, err);
}
int store_instance_delete(struct store *s, const char *name, vs_err *err)
{
    return s->ops->instance_delete(s, name, err);
}

int store_image_insert(struct store *s, json_t *img, vs_err *err)
{
    return s->ops->image_insert(s, img, err);
}
int store_image_update(struct store *s, json_t *img, vs_err *err)
{
    return s->ops->image_update(s, img, err);
}
json_t *store_image_get(struct store *s, const char *ref, vs_err *err)
{
    return s->ops->image_get(s, ref, err);
}
json_t *store_image_list(struct store *s, vs_err *err)
{
    return s->ops->image_list(s, err);
}
int store_image_delete(struct store *s, const char *fingerprint, vs_err *err)
{
    return s->ops->image_delete(s, fingerprint, err);
}

int store_snapshot_insert(struct store *s, json_t *snap, vs_err *err)
{
    return s->ops->snapshot_insert(s, snap, err);
}
json_t *store_snapshot_get(struct store *s, const char *instance, const char *name, vs_err *err)
{
    return s->ops->snapshot_get(s, instance, name, err);
}
json_t *store_snapshot_list(struct store *s, const char *instance, vs_err *err)
{
    return s->ops->snapshot_list(s, instance, err);
}
int store_snapshot_delete(struct store *s, const char *instance, const char *name, vs_err *err)
{
    return s->ops->snapshot_delete(s, instance, name, err);
}

int store_op_insert(struct store *s, json_t *op, vs_err *err)
{
    return s->ops->op_insert(s, op, err);
}
int store_op_update(struct store *s, json_t *op, vs_err *err)
{
    return s->ops->op_update(s, op, err);
}
json_t *store_op_get(struct store *s, const char *id, vs_err *err)
{
    return s->ops->op_get(s, id, err);
}
json_t *store_op_list(struct store *s, vs_err *err)
{
    return s->ops->op_list(s, err);
}

int store_copy(struct store *from, struct store *to, const char *location, vs_err *err)
{
    json_t *insts = store_instance_list(from, err), *imgs = NULL, *ops = NULL, *rec;
    size_t i;
    int rc = -1;
    if (!insts)
        return -1;
    /* names first: a taken one stops the copy before anything is written */
    json_array_foreach(insts, i, rec)
    {
        const char *name = json_string_value(json_object_get(rec, "name"));
        json_t *other = store_instance_get(to, name, NULL);
        if (other) {
            const char *where = json_string_value(json_object_get(other, "location"));
            vs_error(err, EEXIST, "instance '%s' already exists in the cluster (on host %s)", name,
                     where ? where : "?");
            json_decref(other);
            goto out;
        }
    }
    if (!(imgs = store_image_list(from, err)) || !(ops = store_op_list(from, err)))
        goto out;
    json_array_foreach(imgs, i, rec)
    {
        if (store_image_insert(to, rec, err) < 0 && err->code != EEXIST)
            goto out;
    }
    json_array_foreach(insts, i, rec)
    {
        json_t *copy = json_deep_copy(rec);
        if (location)
            json_object_set_new(copy, "location", json_string(location));
        int r = store_instance_insert(to, copy, err);
        json_decref(copy);
        if (r < 0)
            goto out;
        json_t *snaps =
                   store_snapshot_list(from, json_string_value(json_object_get(rec, "name")), err),
               *sn;
        size_t j;
        if (!snaps)
            goto out;
        json_array_foreach(snaps, j, sn)
        {
            if (store_snapshot_insert(to, sn, err) < 0) {
                json_decref(snaps);
                goto out;
            }
        }
        json_decref(snaps);
    }
    json_array_foreach(ops, i, rec)
    {
        if (store_op_insert(to, rec, err) < 0 && err->code != EEXIST)
            goto out;
    }
    rc = 0;
out:
    json_decref(insts);
    json_decref(imgs);
    json_decref(ops);
    return rc;
}
