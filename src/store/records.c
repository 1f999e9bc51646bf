/* The store's record kinds (records.h). */
#include "store/records.h"

#define COLS(...)                                                                                  \
    (const struct column[]){__VA_ARGS__},                                                          \
        sizeof((const struct column[]){__VA_ARGS__}) / sizeof(struct column)
const struct table store_instances = {
    "instances", "instance",
    COLS({"name", COL_TEXT}, {"type", COL_TEXT}, {"arch", COL_TEXT}, {"image", COL_TEXT},
         {"state", COL_TEXT}, {"pid", COL_INT}, {"config", COL_JSON}, {"created_at", COL_INT},
         {"location", COL_TEXT})};
const struct table store_images = {"images", "image",
                                   COLS({"fingerprint", COL_TEXT}, {"alias", COL_TEXT},
                                        {"type", COL_TEXT}, {"arch", COL_TEXT}, {"size", COL_INT},
                                        {"path", COL_TEXT}, {"state", COL_TEXT},
                                        {"properties", COL_JSON}, {"created_at", COL_INT})};
const struct table store_operations = {
    "operations", "operation",
    COLS({"id", COL_TEXT}, {"kind", COL_TEXT}, {"target", COL_TEXT}, {"status", COL_TEXT},
         {"progress", COL_JSON}, {"result", COL_JSON}, {"error", COL_TEXT}, {"created_at", COL_INT},
         {"updated_at", COL_INT})};
const struct table store_snapshots = {"snapshots", "snapshot",
                                      COLS({"id", COL_TEXT}, {"instance", COL_TEXT},
                                           {"name", COL_TEXT}, {"stateful", COL_INT},
                                           {"path", COL_TEXT}, {"created_at", COL_INT})};

json_t *store_record_project(const struct table *t, json_t *rec)
{
    json_t *out = json_object();
    for (unsigned c = 0; c < t->ncols; c++) {
        json_t *v = json_object_get(rec, t->cols[c].name), *nv;
        if (!v || json_is_null(v))
            nv = t->cols[c].kind == COL_JSON ? json_object() : json_null();
        else if (t->cols[c].kind == COL_INT)
            nv = json_integer(json_is_boolean(v) ? json_is_true(v) : json_integer_value(v));
        else if (t->cols[c].kind == COL_JSON)
            nv = json_deep_copy(v);
        else
            nv = json_string(json_is_string(v) ? json_string_value(v) : "");
        json_object_set_new(out, t->cols[c].name, nv);
    }
    return out;
}
