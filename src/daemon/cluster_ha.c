/* High availability in a cluster (docs/cluster.md).
 *
 * A container with cluster.ha=true is restarted on a healthy host when its
 * host goes offline: the first online host (by name) notices, picks a
 * host as 'launch --target auto' would (not the lost one), hands the
 * record over in one etcd transaction on the revision it read, and starts
 * it there afresh from the image (its changes stayed on the lost host; on
 * storage every host shares they would come along, which is further
 * work). Every host also stops what runs here but whose record another
 * host took over, so an old owner that comes back after a partition never
 * runs an instance twice. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>

#include "daemon/daemon.h"
#include "oci/container.h"
#include "util/log.h"

#define HA_GRACE_MS 2000 /* offline this long before a restart elsewhere */
#define FENCE_AGE_S 30   /* a directory this young may be a move's arrival */

static const char *str(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

static json_t *offline_since; /* {instance: ms first seen offline}, the HA thread's own */

/* Stop and remove what runs here of instances recorded on another host. */
static void fence(struct daemon *d)
{
    /* one read of every record, not one per directory; a store that
     * cannot answer says nothing */
    json_t *all = store_instance_list(d->store, NULL), *rec;
    if (!all)
        return;
    json_t *byname = json_object();
    size_t i;
    json_array_foreach(all, i, rec) json_object_set(byname, str(rec, "name"), rec);
    json_decref(all);
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/instances", d->state_dir);
    DIR *dp = opendir(dir);
    struct dirent *de;
    while (dp && (de = readdir(dp))) {
        if (de->d_name[0] == '.' || instance_validate_name(de->d_name, NULL) < 0)
            continue;
        char path[4500];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (stat(path, &st) < 0 || time(NULL) - st.st_mtime < FENCE_AGE_S)
            continue;
        vs_err e = {0};
        json_t *inst = json_object_get(byname, de->d_name);
        if (!inst || daemon_instance_local(d, inst) || !daemon_claim(d, de->d_name, NULL))
            continue;
        vs_warn("instance %s runs on host %s now: stopping and removing it here", de->d_name,
                str(inst, "location"));
        char root[4600];
        snprintf(root, sizeof(root), "%s/rootfs", path);
        oci_delete(d->oci_root, de->d_name, true, &e);
        umount2(root, MNT_DETACH);
        daemon_rm_rf(path);
        network_release(d, de->d_name);
        daemon_event(d, "instance", "fenced", de->d_name, NULL);
        daemon_release(d, de->d_name);
    }
    if (dp)
        closedir(dp);
    json_decref(byname);
}

static void restart_elsewhere(struct daemon *d, json_t *inst, const char *lost)
{
    const char *name = str(inst, "name");
    char target[256];
    vs_err err = {0};
    if (cluster_place(d, str(inst, "image"), lost, target, sizeof(target), &err) < 0) {
        vs_warn("instance %s (high availability): host %s is lost and %s", name, lost, err.msg);
        return;
    }
    long long rev = 0;
    json_t *rec = cluster_record_at(d, name, &rev, &err);
    if (!rec || strcmp(str(rec, "location"), lost)) {
        json_decref(rec);
        return; /* moved on meanwhile */
    }
    cluster_record_relocate(rec, target);
    int rc = cluster_record_swap(d, name, rec, rev, &err);
    json_decref(rec);
    if (rc < 0)
        return;
    vs_warn("instance %s (high availability): host %s is lost; restarting it on host %s", name,
            lost, target);
    /* a fresh start there, from the image */
    char url[600], *reply = NULL;
    unsigned status = 0;
    if (cluster_is_self(d, target)) {
        rc = cluster_receive(d, name, NULL, 0, &err);
        if (rc == 0)
            rc = instance_change_state(d, name, "start", false, 30, &err);
    } else {
        snprintf(url, sizeof(url), "/1.0/cluster/receive?name=%s", name);
        rc = cluster_forward(d, target, "POST", url, NULL, 0, &status, &reply, &err);
        free(reply);
        reply = NULL;
        if (rc == 0 && status == 200) {
            const char *start = "{\"action\":\"start\"}";
            snprintf(url, sizeof(url), "/1.0/instances/%s/state", name);
            rc =
                cluster_forward(d, target, "PUT", url, start, strlen(start), &status, &reply, &err);
            free(reply);
        }
        if (rc == 0 && status != 200)
            rc = vs_error(&err, EIO, "host %s answered %u", target, status);
    }
    if (rc < 0)
        vs_warn("instance %s (high availability): not started on host %s: %s", name, target,
                err.msg);
    daemon_event(d, "instance", "restarted-elsewhere", name,
                 json_pack("{s:s, s:s}", "from", lost, "to", target));
}

void cluster_ha_tick(struct daemon *d)
{
    static unsigned ticks;
    if (++ticks % 2)
        return; /* every other second */
    fence(d);
    /* the first online host by name acts; the hand-over transaction keeps
     * two that both think so from restarting one instance twice */
    vs_err err = {0};
    json_t *hosts = cluster_members(d, &err), *h;
    if (!hosts)
        return;
    const char *first = NULL;
    size_t i;
    json_array_foreach(hosts, i, h)
    {
        if (!strcmp(str(h, "status"), "online") && (!first || strcmp(str(h, "name"), first) < 0))
            first = str(h, "name");
    }
    bool act = first && cluster_is_self(d, first) &&
               !json_is_true(json_object_get(json_array_get(hosts, 0), "stale"));
    json_t *insts = act ? store_instance_list(d->store, &err) : NULL, *inst;
    if (!offline_since)
        offline_since = json_object();
    long long now = daemon_now_ms();
    json_array_foreach(insts, i, inst)
    {
        const char *name = str(inst, "name"), *loc = str(inst, "location");
        const char *ha =
            json_string_value(json_object_get(json_object_get(inst, "config"), "cluster.ha"));
        const char *state = str(inst, "state");
        bool should_run = !strcmp(state, "running") || !strcmp(state, "starting");
        if (!ha || strcmp(ha, "true") || !should_run || cluster_host_online(d, loc)) {
            json_object_del(offline_since, name);
            continue;
        }
        json_t *since = json_object_get(offline_since, name);
        if (!since) {
            json_object_set_new(offline_since, name, json_integer(now));
            continue;
        }
        if (now - json_integer_value(since) >= HA_GRACE_MS) {
            json_object_del(offline_since, name);
            restart_elsewhere(d, inst, loc);
        }
    }
    json_decref(insts);
    json_decref(hosts);
}
