/* Moving a running VM to another cluster host, live (docs/cluster.md): the
 * target's daemon starts a `vessel vm run --incoming` in the instance's new
 * directory there; this VM's control API migrates it (with its local disks:
 * --copy-disks); once the guest runs there, one etcd transaction hands the
 * record over and what is left here goes. A failed migration leaves the
 * guest running here and the target's half-made instance is dropped. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/client.h"
#include "daemon/daemon.h"
#include "oci/state.h"
#include "util/log.h"

#define MOVE_TIMEOUT_MS (10 * 60 * 1000)

static const char *str(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* The target's answer: its JSON, or err with its message. */
static json_t *ask(struct daemon *d, const char *target, const char *url, const char *body,
                   vs_err *err)
{
    unsigned status = 0;
    char *reply = NULL;
    if (cluster_forward(d, target, "POST", url, body, body ? strlen(body) : 0, &status, &reply,
                        err) < 0)
        return NULL;
    json_t *j = reply ? json_loads(reply, 0, NULL) : NULL;
    free(reply);
    if (status != 200) {
        vs_error(err, EIO, "host %s: %s", target,
                 json_string_value(json_object_get(j, "error")) ?: "refused");
        json_decref(j);
        return NULL;
    }
    return j;
}

/* Migrate through the VM's control API until the guest runs elsewhere. */
static int migrate(const char *sock, const char *uri, bool disks, vs_err *err)
{
    json_t *body = json_pack("{s:s, s:b}", "uri", uri, "copy_disks", disks), *resp = NULL;
    int rc = api_client_request(sock, "PUT", "/migrate", body, &resp, err);
    json_decref(body);
    json_decref(resp);
    if (rc < 0)
        return -1;
    for (int t = 0; t < MOVE_TIMEOUT_MS; t += 100) {
        sleep_ms(100);
        resp = NULL;
        vs_err e = {0};
        if (api_client_request(sock, "GET", "/migrate", NULL, &resp, &e) < 0) {
            /* the VM went away: only a completed migration ends it */
            return vs_error(err, EIO, "the VM stopped answering during the move: %s", e.msg);
        }
        const char *st = str(resp, "state");
        if (!strcmp(st, "completed")) {
            json_decref(resp);
            return 0;
        }
        if (!strcmp(st, "failed") || !strcmp(st, "cancelled") || !strcmp(st, "unknown") ||
            !strcmp(st, "lost")) {
            vs_error(err, EIO, "live migration %s: %s", st, str(resp, "error"));
            json_decref(resp);
            return -1;
        }
        json_decref(resp);
    }
    return vs_error(err, ETIMEDOUT, "the live migration did not end within %d s",
                    MOVE_TIMEOUT_MS / 1000);
}

json_t *cluster_move_vm(struct daemon *d, const char *name, const char *target, json_t *inst,
                        vs_err *err)
{
    const char *state = instance_refresh_state(d, inst);
    if (strcmp(state, "running")) {
        vs_error(err, EINVAL,
                 "instance %s is %s: a VM moves live, while it runs (start it, then move it)", name,
                 state);
        return NULL;
    }
    json_t *cfg = json_object_get(inst, "config");
    if (json_object_get(cfg, "volatile.hwaddr")) {
        vs_error(err, ENOTSUP,
                 "instance %s is on this host's managed network: VMs with a NIC do not move "
                 "between hosts yet (each host has a bridge of its own)",
                 name);
        return NULL;
    }
    char fp[65] = "";
    if (cluster_ensure_image(d, target, str(inst, "image"), fp, err) < 0)
        return NULL;
    char url[600], sock[4200], disk[4200];
    snprintf(url, sizeof(url), "/1.0/cluster/receive?name=%s&incoming=1", name);
    json_t *in = ask(d, target, url, NULL, err);
    if (!in)
        return NULL;
    instance_path(d, name, "api.sock", sock, sizeof(sock));
    instance_path(d, name, "disk.qcow2", disk, sizeof(disk));
    bool disks = access(disk, F_OK) == 0 || json_object_get(cfg, "volatile.disk_path");
    vs_info("instance %s: moving live to host %s (%s)", name, target, str(in, "uri"));
    json_t *out = NULL;
    if (migrate(sock, str(in, "uri"), disks, err) < 0) {
        vs_err e = {0};
        snprintf(url, sizeof(url), "/1.0/cluster/receive?name=%s&drop=%lld:%s", name,
                 (long long)json_integer_value(json_object_get(in, "pid")), str(in, "pid_start"));
        json_decref(ask(d, target, url, NULL, &e));
        vs_error_prefix(err, "instance %s stays on this host: ", name);
        goto done;
    }
    /* the guest runs on the target: its record goes there in one transaction */
    long long rev = 0;
    json_t *rec = cluster_record_at(d, name, &rev, err);
    if (!rec) {
        vs_error_prefix(err, "instance %s: its record after the move: ", name);
        goto done;
    }
    json_object_set_new(rec, "location", json_string(target));
    json_object_set_new(rec, "state", json_string("running"));
    json_object_set(rec, "pid", json_object_get(in, "pid"));
    json_t *rcfg = json_object_get(rec, "config");
    json_object_set_new(rcfg, "volatile.pid_start", json_string(str(in, "pid_start")));
    json_object_del(rcfg, "volatile.disk_path"); /* a path on this host */
    int rc = cluster_record_swap(d, name, rec, rev, err);
    json_decref(rec);
    if (rc < 0) {
        /* the guest runs there while the record says here: say so plainly */
        vs_error_prefix(
            err, "instance %s runs on host %s now, but its record was not updated: ", name, target);
        goto done;
    }
    /* nothing of it stays here: the source VM process exits by itself */
    pid_t pid = (pid_t)json_integer_value(json_object_get(inst, "pid"));
    unsigned long long start = strtoull(str(cfg, "volatile.pid_start"), NULL, 10);
    for (int t = 0; t < 10000 && pid > 0 && oci_pid_alive(pid, start); t += 20)
        sleep_ms(20);
    char dir[4200];
    instance_path(d, name, NULL, dir, sizeof(dir));
    daemon_rm_rf(dir);
    daemon_event(d, "instance", "moved", name, json_pack("{s:s}", "target", target));
    vs_info("instance %s moved live to host %s", name, target);
    out = json_pack("{s:s, s:s, s:s}", "name", name, "location", target, "state", "running");
done:
    json_decref(in);
    return out;
}
