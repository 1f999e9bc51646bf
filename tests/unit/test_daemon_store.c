/* The daemon's SQLite store: records round-trip, names are unique, the
 * compare-and-set state update, image lookups by alias and fingerprint
 * prefix, snapshots going with their instance, and schema versions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "store/store.h"

static char dir[64];
static char path[128];

static int setup(void **state)
{
    snprintf(dir, sizeof(dir), "/tmp/vessel-store-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/vessel.db", dir);
    struct store *s;
    vs_err err = {0};
    assert_int_equal(store_open(path, &s, &err), 0);
    *state = s;
    return 0;
}

static int teardown(void **state)
{
    store_close(*state);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static json_t *instance(const char *name, const char *state)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:n, s:{s:s}, s:I, s:s}", "name", name, "type",
                     "container", "arch", "x86_64", "image", "abc", "state", state, "pid", "config",
                     "limits.cpu", "1", "created_at", (json_int_t)1, "location", "local");
}

static void instances_round_trip(void **state)
{
    struct store *s = *state;
    vs_err err = {0};
    assert_int_equal(store_schema_version(s), 2);
    json_t *a = instance("a1", "stopped"), *b = instance("b1", "running");
    assert_int_equal(store_instance_insert(s, b, &err), 0);
    assert_int_equal(store_instance_insert(s, a, &err), 0);
    assert_int_equal(store_instance_insert(s, a, &err), -1);
    assert_int_equal(err.code, EEXIST);
    assert_non_null(strstr(err.msg, "instance 'a1' already exists"));

    json_t *got = store_instance_get(s, "a1", &err);
    assert_non_null(got);
    assert_true(json_equal(got, a));
    json_decref(got);
    json_t *list = store_instance_list(s, &err);
    assert_int_equal(json_array_size(list), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "name")), "a1");
    json_decref(list);

    json_object_set_new(json_object_get(a, "config"), "command", json_string("sleep 1"));
    assert_int_equal(store_instance_update(s, a, &err), 0);
    got = store_instance_get(s, "a1", &err);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(got, "config"), "command")), "sleep 1");
    json_decref(got);

    assert_int_equal(store_instance_delete(s, "a1", &err), 0);
    assert_null(store_instance_get(s, "a1", &err));
    assert_int_equal(err.code, ENOENT);
    assert_int_equal(store_instance_delete(s, "a1", &err), -1);
    assert_int_equal(err.code, ENOENT);
    json_t *ghost = instance("ghost", "stopped");
    assert_int_equal(store_instance_update(s, ghost, &err), -1);
    assert_int_equal(err.code, ENOENT);
    json_decref(ghost);
    json_decref(a);
    json_decref(b);
}

static void state_is_compare_and_set(void **state)
{
    struct store *s = *state;
    vs_err err = {0};
    json_t *a = instance("c1", "running");
    assert_int_equal(store_instance_insert(s, a, &err), 0);
    /* a reader that saw "stopped" does not overwrite "running" */
    assert_int_equal(store_instance_set_state(s, "c1", "stopped", "starting", 0, &err), -1);
    assert_int_equal(err.code, EAGAIN);
    assert_int_equal(store_instance_set_state(s, "c1", "running", "stopped", 0, &err), 0);
    json_t *got = store_instance_get(s, "c1", &err);
    assert_string_equal(json_string_value(json_object_get(got, "state")), "stopped");
    assert_true(json_is_null(json_object_get(got, "pid")));
    /* the rest of the record is untouched */
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(got, "config"), "limits.cpu")), "1");
    json_decref(got);
    json_decref(a);
}

static json_t *image(const char *fp, const char *alias)
{
    return json_pack("{s:s, s:s?, s:s, s:s, s:i, s:s, s:s, s:{}, s:I}", "fingerprint", fp, "alias",
                     alias, "type", "container", "arch", "x86_64", "size", 1, "path", "/x", "state",
                     "ready", "properties", "created_at", (json_int_t)1);
}

static void images_by_alias_and_prefix(void **state)
{
    struct store *s = *state;
    vs_err err = {0};
    json_t *i1 = image("aaaa1111", "one"), *i2 = image("aaaa2222", NULL);
    assert_int_equal(store_image_insert(s, i1, &err), 0);
    assert_int_equal(store_image_insert(s, i2, &err), 0);
    json_t *dup = image("bbbb", "one");
    assert_int_equal(store_image_insert(s, dup, &err), -1); /* alias is unique */
    assert_int_equal(err.code, EEXIST);
    json_decref(dup);
    json_t *g = store_image_get(s, "one", &err);
    assert_string_equal(json_string_value(json_object_get(g, "fingerprint")), "aaaa1111");
    json_decref(g);
    g = store_image_get(s, "aaaa2", &err);
    assert_string_equal(json_string_value(json_object_get(g, "fingerprint")), "aaaa2222");
    json_decref(g);
    assert_null(store_image_get(s, "aaaa", &err));
    assert_int_equal(err.code, EINVAL);          /* ambiguous */
    assert_null(store_image_get(s, "a%", &err)); /* no LIKE patterns from outside */
    assert_int_equal(err.code, ENOENT);
    json_decref(i1);
    json_decref(i2);
}

static void snapshots_go_with_their_instance(void **state)
{
    struct store *s = *state;
    vs_err err = {0};
    json_t *a = instance("s1", "stopped");
    assert_int_equal(store_instance_insert(s, a, &err), 0);
    json_t *snap =
        json_pack("{s:s, s:s, s:s, s:i, s:s, s:I}", "id", "s1/snap0", "instance", "s1", "name",
                  "snap0", "stateful", 0, "path", "/x", "created_at", (json_int_t)1);
    assert_int_equal(store_snapshot_insert(s, snap, &err), 0);
    json_t *list = store_snapshot_list(s, "s1", &err);
    assert_int_equal(json_array_size(list), 1);
    json_decref(list);
    assert_int_equal(store_instance_delete(s, "s1", &err), 0);
    assert_null(store_snapshot_get(s, "s1", "snap0", &err));
    json_decref(snap);
    json_decref(a);
}

static void newer_schema_is_refused(void **state)
{
    struct store *s = *state;
    store_close(s);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    vs_err err = {0};
    assert_int_equal(store_open(path, &s, &err), -1);
    assert_non_null(strstr(err.msg, "newer than this vessel"));
    /* the database is left as it was, for the newer vessel */
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 99);
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 2", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(store_open(path, &s, &err), 0);
    *state = s;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(instances_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(state_is_compare_and_set, setup, teardown),
        cmocka_unit_test_setup_teardown(images_by_alias_and_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(snapshots_go_with_their_instance, setup, teardown),
        cmocka_unit_test_setup_teardown(newer_schema_is_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
