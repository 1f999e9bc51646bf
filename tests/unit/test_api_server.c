/* The control API over a real unix socket, against a fake machine: the
 * API client (src/api/client.c) and the curl command line both speak to it. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "api/client.h"
#include "api/server.h"
#include "fake_machine.h"

static char dir[] = "/tmp/vessel-api-XXXXXX";
static char sock[600];
static struct fake fk;
static struct vm_control ctl;
static struct api_server *srv;

static int setup(void **state)
{
    if (!mkdtemp(dir))
        return -1;
    snprintf(sock, sizeof(sock), "%s/api.sock", dir);
    fake_machine_init(&fk, &ctl);
    vs_err err;
    if (api_server_start(sock, &ctl, NULL, &srv, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    api_server_stop(srv);
    fake_machine_free(&fk);
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static json_t *req(const char *method, const char *path, json_t *body, int expect_rc, vs_err *err)
{
    json_t *resp = NULL;
    assert_int_equal(api_client_request(sock, method, path, body, &resp, err), expect_rc);
    json_decref(body);
    return resp;
}

static void pause_resume_info(void **state)
{
    vs_err err;
    json_t *r = req("GET", "/vm", NULL, 0, &err);
    assert_string_equal(json_string_value(json_object_get(r, "state")), "running");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "config"), "cpus")), 2);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "memory"), "total")),
                     6 * MiB);
    json_decref(r);
    r = req("PUT", "/vm/pause", NULL, 0, &err);
    assert_string_equal(json_string_value(json_object_get(r, "state")), "paused");
    assert_true(fk.paused);
    json_decref(r);
    r = req("PUT", "/vm/pause", NULL, 0, &err); /* idempotent */
    json_decref(r);
    r = req("PUT", "/vm/resume", NULL, 0, &err);
    assert_string_equal(json_string_value(json_object_get(r, "state")), "running");
    assert_false(fk.paused);
    json_decref(r);
    r = req("PUT", "/vm/stop", NULL, 0, &err);
    /* the server replies first, then stops the machine: wait for it */
    for (int i = 0; i < 200 && !__atomic_load_n(&fk.stopped, __ATOMIC_ACQUIRE); i++)
        usleep(10000);
    assert_true(fk.stopped);
    json_decref(r);
}

static void snapshot_over_api(void **state)
{
    vs_err err;
    char path[700];
    snprintf(path, sizeof(path), "%s/snap", dir);
    json_t *r = req("PUT", "/snapshot", json_pack("{s:s}", "path", path), 0, &err);
    assert_string_equal(json_string_value(json_object_get(r, "type")), "full");
    assert_int_equal(json_integer_value(json_object_get(r, "memory_bytes")), 5 * 4096);
    json_decref(r);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_false(fk.paused);
    /* same path again: 409 with the reason */
    r = req("PUT", "/snapshot", json_pack("{s:s}", "path", path), -1, &err);
    assert_non_null(strstr(err.msg, "already exists"));
    /* diff after the full one */
    snprintf(path, sizeof(path), "%s/snap-diff", dir);
    memset(guest_mem_ptr_w(&fk.mem, 0, 4096), 7, 4096);
    r = req("PUT", "/snapshot", json_pack("{s:s, s:s}", "path", path, "type", "diff"), 0, &err);
    assert_int_equal(json_integer_value(json_object_get(r, "memory_bytes")), 4096);
    json_decref(r);
    r = req("GET", "/vm", NULL, 0, &err);
    assert_non_null(
        strstr(json_string_value(json_object_get(json_object_get(r, "last_snapshot"), "path")),
               "snap-diff"));
    json_decref(r);
}

static void bad_requests(void **state)
{
    vs_err err;
    req("GET", "/nope", NULL, -1, &err);
    assert_non_null(strstr(err.msg, "no such resource"));
    req("PUT", "/snapshot", json_pack("{s:i}", "path", 3), -1, &err);
    assert_non_null(strstr(err.msg, "\"path\""));
    req("PUT", "/snapshot", json_pack("{s:s, s:s}", "path", "/tmp/x", "type", "half"), -1, &err);
    assert_non_null(strstr(err.msg, "\"type\""));
    req("PUT", "/vm", NULL, -1, &err);
    assert_non_null(strstr(err.msg, "GET"));
}

/* PATCH /vm: every bad value refused with a line that says why; a
 * balloon plugged into the fake machine answers. */
static void patch_resources(void **state)
{
    vs_err err;
    req("PATCH", "/vm", json_pack("{s:i}", "bogus", 1), -1, &err);
    assert_non_null(strstr(err.msg, "unknown key \"bogus\""));
    req("PATCH", "/vm", json_pack("{s:{s:i}}", "balloon", "target_bytes", 0), -1, &err);
    assert_non_null(strstr(err.msg, "no balloon"));
    req("PATCH", "/vm", json_pack("{s:i}", "cpus", 2), -1, &err);
    assert_non_null(strstr(err.msg, "cannot change its vCPUs"));
    req("PATCH", "/vm", json_pack("{s:[{s:i, s:i}]}", "disks", "index", 0, "size", 4096), -1, &err);
    assert_non_null(strstr(err.msg, "no disk with index 0"));
    req("PATCH", "/vm", json_pack("{s:{s:f}}", "limits", "cpus", 1.0), -1, &err);
    assert_non_null(strstr(err.msg, "cannot take caps"));
    req("PATCH", "/vm", json_pack("{s:{s:s}}", "balloon", "target_bytes", "lots"), -1, &err);
    assert_non_null(strstr(err.msg, "must be an integer"));

    fk.cfg.balloon = (struct vm_balloon_config){.enabled = true};
    static const struct irq_line irqs[8];
    unsigned used;
    assert_int_equal(virtio_setup_mmio(&fk.cfg, &fk.mem, &fk.bus, 0x10000000, 0x1000, irqs, 8, NULL,
                                       &fk.devs, &used, &err),
                     0);
    json_t *r = req(
        "PATCH", "/vm",
        json_pack("{s:{s:i, s:i}}", "balloon", "target_bytes", 0, "stats_interval_s", 7), 0, &err);
    json_t *b = json_object_get(r, "balloon");
    assert_non_null(b);
    assert_int_equal(json_integer_value(json_object_get(b, "stats_interval_s")), 7);
    assert_int_equal(json_integer_value(json_object_get(b, "max_target_bytes")), 0);
    json_decref(r);
    /* 6 MiB of RAM: the guest keeps 16 MiB, so nothing can go */
    req("PATCH", "/vm", json_pack("{s:{s:i}}", "balloon", "target_bytes", 4096), -1, &err);
    assert_non_null(strstr(err.msg, "more than the guest can give"));
    req("PATCH", "/vm", json_pack("{s:{s:i}}", "balloon", "stats_interval_s", 3601), -1, &err);
    assert_non_null(strstr(err.msg, "0..3600"));
}

static void curl_command_line(void **state)
{
    if (system("command -v curl >/dev/null") != 0) {
        fprintf(stderr, "*** curl missing: skipping\n");
        skip();
    }
    char cmd[900];
    snprintf(cmd, sizeof(cmd),
             "curl -sf --unix-socket %s -X PUT http://localhost/vm/pause | grep -q paused", sock);
    assert_int_equal(system(cmd), 0);
    assert_true(fk.paused);
    snprintf(cmd, sizeof(cmd),
             "curl -sf --unix-socket %s http://localhost/vm | grep -q '\"state\":\"paused\"'",
             sock);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof(cmd),
             "curl -sf --unix-socket %s -X PUT http://localhost/vm/resume >/dev/null", sock);
    assert_int_equal(system(cmd), 0);
    assert_false(fk.paused);
}

static void socket_in_use_and_stale(void **state)
{
    vs_err err;
    struct api_server *s2;
    /* a live server owns it */
    assert_int_equal(api_server_start(sock, &ctl, NULL, &s2, &err), -1);
    assert_non_null(strstr(err.msg, "another VM"));
    /* a stale socket file (nobody listening) is replaced */
    char stale[700];
    snprintf(stale, sizeof(stale), "%s/stale.sock", dir);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, stale);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(fd);
    assert_int_equal(api_server_start(stale, &ctl, NULL, &s2, &err), 0);
    api_server_stop(s2);
    /* the client says clearly when nobody answers */
    json_t *r;
    assert_int_equal(api_client_request(stale, "GET", "/vm", NULL, &r, &err), -1);
    assert_non_null(strstr(err.msg, "is the VM running"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pause_resume_info),
        cmocka_unit_test(snapshot_over_api),
        cmocka_unit_test(bad_requests),
        cmocka_unit_test(curl_command_line),
        cmocka_unit_test(socket_in_use_and_stale),
        cmocka_unit_test(patch_resources),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
