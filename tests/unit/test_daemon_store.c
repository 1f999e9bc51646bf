/* The daemon's store, one suite run against both backends: records
 * round-trip, names are unique (also when two threads create one name at
 * once), the compare-and-set state update, image lookups by alias and
 * fingerprint prefix, snapshots going with their instance; SQLite's schema
 * versions; etcd's split of cluster-wide and per-host records. The etcd
 * run starts a single-member etcd on a temporary directory and free ports
 * on 127.0.0.1 (VESSEL_ETCD_ENDPOINT names one to use instead); where
 * etcd is not installed those tests are skipped and say so. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "store/etcd.h"
#include "store/store.h"

static char dir[64];
static char path[128];

/* the etcd run: its endpoint, the member we started (if we did), and a
 * fresh key prefix per test */
static char etcd_endpoint[64];
static pid_t etcd_pid;
static char etcd_dir[64];
static int etcd_tests;

static bool is_etcd(struct store *s)
{
    return store_etcd(s) != NULL;
}

static int open_etcd_store(const char *host, struct store **out)
{
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "/test-%d-%d/", (int)getpid(), etcd_tests);
    struct store_etcd_config cfg = {.endpoints = etcd_endpoint, .prefix = prefix, .host = host};
    vs_err err = {0};
    int rc = store_open_etcd(&cfg, out, &err);
    if (rc < 0)
        fprintf(stderr, "store_open_etcd: %s\n", err.msg);
    return rc;
}

static int setup_etcd(void **state)
{
    if (!etcd_endpoint[0]) {
        *state = NULL;
        return 0;
    }
    etcd_tests++;
    struct store *s;
    assert_int_equal(open_etcd_store("host1", &s), 0);
    *state = s;
    return 0;
}

static int teardown_etcd(void **state)
{
    store_close(*state);
    return 0;
}

/* Each test of the etcd group starts with this: a clear skip without etcd. */
#define NEED_STORE(state)                                                                          \
    do {                                                                                           \
        if (!*(state)) {                                                                           \
            fprintf(stderr, "SKIP: etcd is not installed (apt-get install etcd-server); the "      \
                            "store suite ran on SQLite only\n");                                   \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        return -1;
    close(fd);
    return ntohs(a.sin_port);
}

/* A single-member etcd of our own; false when etcd is not installed. */
static bool start_etcd(void)
{
    const char *given = getenv("VESSEL_ETCD_ENDPOINT");
    if (given && given[0]) {
        snprintf(etcd_endpoint, sizeof(etcd_endpoint), "%s", given);
        return true;
    }
    if (access("/usr/bin/etcd", X_OK) != 0)
        return false;
    snprintf(etcd_dir, sizeof(etcd_dir), "/tmp/vessel-etcd-XXXXXX");
    assert_non_null(mkdtemp(etcd_dir));
    int cport = free_port(), pport = free_port();
    assert_true(cport > 0 && pport > 0 && cport != pport);
    char curl[64], purl[64], data[128], cluster[96], log[128];
    snprintf(curl, sizeof(curl), "http://127.0.0.1:%d", cport);
    snprintf(purl, sizeof(purl), "http://127.0.0.1:%d", pport);
    snprintf(data, sizeof(data), "%s/data", etcd_dir);
    snprintf(cluster, sizeof(cluster), "t=%s", purl);
    snprintf(log, sizeof(log), "%s/log", etcd_dir);
    etcd_pid = fork();
    assert_true(etcd_pid >= 0);
    if (etcd_pid == 0) {
        FILE *f = freopen(log, "w", stdout);
        (void)f;
        dup2(1, 2);
        execl("/usr/bin/etcd", "etcd", "--name", "t", "--data-dir", data, "--listen-client-urls",
              curl, "--advertise-client-urls", curl, "--listen-peer-urls", purl,
              "--initial-advertise-peer-urls", purl, "--initial-cluster", cluster, (char *)NULL);
        _exit(127);
    }
    snprintf(etcd_endpoint, sizeof(etcd_endpoint), "%s", curl);
    struct etcd *e;
    vs_err err = {0};
    assert_int_equal(etcd_open(etcd_endpoint, &e, &err), 0);
    for (int i = 0; i < 200; i++) {
        json_t *r = etcd_range(e, "/ready", false, NULL, &err);
        if (r) {
            json_decref(r);
            etcd_close(e);
            return true;
        }
        usleep(50000);
    }
    fprintf(stderr, "etcd did not come up (%s); its log: %s\n", err.msg, log);
    etcd_close(e);
    return false;
}

static void stop_etcd(void)
{
    if (etcd_pid > 0) {
        kill(etcd_pid, SIGTERM);
        waitpid(etcd_pid, NULL, 0);
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", etcd_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", etcd_dir);
    }
}

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
    NEED_STORE(state);
    struct store *s = *state;
    vs_err err = {0};
    assert_int_equal(store_schema_version(s), is_etcd(s) ? 1 : 2);
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
    NEED_STORE(state);
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
    NEED_STORE(state);
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
    NEED_STORE(state);
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

struct racer {
    struct store *s;
    pthread_barrier_t *go;
    int rc;
    vs_err err;
};

static void *race_create(void *arg)
{
    struct racer *r = arg;
    json_t *a =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:n, s:{}, s:I, s:s}", "name", "same", "type",
                  "container", "arch", "x86_64", "image", "abc", "state", "stopped", "pid",
                  "config", "created_at", (json_int_t)1, "location", r == NULL ? "?" : "racer");
    pthread_barrier_wait(r->go);
    r->rc = store_instance_insert(r->s, a, &r->err);
    json_decref(a);
    return NULL;
}

/* Two creates of one name at once (for etcd: through two stores, as two
 * hosts would): one wins, the other is told the name is taken. */
static void concurrent_creates_one_wins(void **state)
{
    NEED_STORE(state);
    struct store *s = *state, *other = s;
    if (is_etcd(s))
        assert_int_equal(open_etcd_store("host2", &other), 0);
    for (int round = 0; round < 5; round++) {
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, 2);
        struct racer r[2] = {{.s = s, .go = &go}, {.s = other, .go = &go}};
        pthread_t t[2];
        for (int i = 0; i < 2; i++)
            pthread_create(&t[i], NULL, race_create, &r[i]);
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        pthread_barrier_destroy(&go);
        assert_int_equal(r[0].rc + r[1].rc, -1); /* one 0, one -1 */
        struct racer *loser = r[0].rc ? &r[0] : &r[1];
        assert_int_equal(loser->err.code, EEXIST);
        assert_non_null(strstr(loser->err.msg, "instance 'same' already exists"));
        vs_err err = {0};
        assert_int_equal(store_instance_delete(s, "same", &err), 0);
    }
    if (other != s)
        store_close(other);
}

/* etcd: instances are one cluster-wide set, images each host's own. */
static void etcd_hosts_share_instances_not_images(void **state)
{
    NEED_STORE(state);
    struct store *s = *state, *h2;
    vs_err err = {0};
    assert_int_equal(open_etcd_store("host2", &h2), 0);
    json_t *a = instance("shared1", "running");
    json_object_set_new(a, "location", json_string("host1"));
    assert_int_equal(store_instance_insert(s, a, &err), 0);
    json_t *got = store_instance_get(h2, "shared1", &err);
    assert_non_null(got);
    assert_string_equal(json_string_value(json_object_get(got, "location")), "host1");
    json_decref(got);
    /* the error names the host that has it */
    assert_int_equal(store_instance_insert(h2, a, &err), -1);
    assert_int_equal(err.code, EEXIST);
    assert_non_null(strstr(err.msg, "on host host1"));
    json_t *img = image("cccc", "same-alias");
    assert_int_equal(store_image_insert(s, img, &err), 0);
    assert_null(store_image_get(h2, "same-alias", &err));
    assert_int_equal(err.code, ENOENT);
    assert_int_equal(store_image_insert(h2, img, &err), 0); /* its own copy */
    json_t *l = store_image_list(h2, &err);
    assert_int_equal(json_array_size(l), 1);
    json_decref(l);
    assert_false(store_stale(s));
    /* what a host had in SQLite goes into the cluster with its location */
    struct store *lite;
    assert_int_equal(store_open(path, &lite, &err), 0);
    json_t *b = instance("fromlite", "stopped");
    assert_int_equal(store_instance_insert(lite, b, &err), 0);
    assert_int_equal(store_copy(lite, h2, "host2", &err), 0);
    got = store_instance_get(s, "fromlite", &err);
    assert_string_equal(json_string_value(json_object_get(got, "location")), "host2");
    json_decref(got);
    /* a second copy finds the name taken and copies nothing */
    assert_int_equal(store_copy(lite, s, "host1", &err), -1);
    assert_int_equal(err.code, EEXIST);
    store_close(lite);
    json_decref(b);
    json_decref(img);
    json_decref(a);
    store_close(h2);
}

static int setup_dir_only(void **state)
{
    snprintf(dir, sizeof(dir), "/tmp/vessel-store-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/vessel.db", dir);
    return setup_etcd(state);
}

static int teardown_dir_only(void **state)
{
    teardown_etcd(state);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

int main(void)
{
    const struct CMUnitTest sqlite_tests[] = {
        cmocka_unit_test_setup_teardown(instances_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(state_is_compare_and_set, setup, teardown),
        cmocka_unit_test_setup_teardown(images_by_alias_and_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(snapshots_go_with_their_instance, setup, teardown),
        cmocka_unit_test_setup_teardown(concurrent_creates_one_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(newer_schema_is_refused, setup, teardown),
    };
    const struct CMUnitTest etcd_tests_[] = {
        cmocka_unit_test_setup_teardown(instances_round_trip, setup_etcd, teardown_etcd),
        cmocka_unit_test_setup_teardown(state_is_compare_and_set, setup_etcd, teardown_etcd),
        cmocka_unit_test_setup_teardown(images_by_alias_and_prefix, setup_etcd, teardown_etcd),
        cmocka_unit_test_setup_teardown(snapshots_go_with_their_instance, setup_etcd,
                                        teardown_etcd),
        cmocka_unit_test_setup_teardown(concurrent_creates_one_wins, setup_etcd, teardown_etcd),
        cmocka_unit_test_setup_teardown(etcd_hosts_share_instances_not_images, setup_dir_only,
                                        teardown_dir_only),
    };
    int failed = cmocka_run_group_tests_name("sqlite", sqlite_tests, NULL, NULL);
    if (!start_etcd()) {
        fprintf(stderr, "SKIP: no etcd (apt-get install etcd-server): the etcd backend is not "
                        "tested\n");
        etcd_endpoint[0] = 0;
    }
    failed += cmocka_run_group_tests_name("etcd", etcd_tests_, NULL, NULL);
    stop_etcd();
    return failed;
}
