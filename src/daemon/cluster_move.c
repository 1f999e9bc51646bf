/* Moving a container to another cluster host (docs/cluster.md): stop it
 * if it runs, send its changes to the image (the overlay's upper
 * directory, as a tar) to the target's daemon over the daemons' HTTPS,
 * hand the record over in one etcd transaction that checks the revision
 * read after the stop, remove it here, and start it there if it ran.
 *
 * The transaction is what keeps one instance on one host: if the record
 * changed in between, nothing moves (the target's copy has no record and
 * goes at its next sweep). VMs move live (cluster_move_vm.c). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/archive_lib.h"
#include "daemon/daemon.h"
#include "daemon/image.h"
#include "oci/container.h"
#include "store/etcd.h"
#include "util/log.h"

static const char *str(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

static char *read_all(const char *path, size_t *len, vs_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        vs_error_errno(err, "%s", path);
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (buf && got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (!buf || got != (size_t)st.st_size) {
        free(buf);
        vs_error(err, EIO, "%s: short read", path);
        return NULL;
    }
    *len = got;
    return buf;
}

json_t *cluster_record_at(struct daemon *d, const char *name, long long *rev, vs_err *err)
{
    char k[1024];
    snprintf(k, sizeof(k), "%sinstances/%s", cluster_prefix(d), name);
    json_t *kvs = etcd_range(store_etcd(d->store), k, false, NULL, err), *rec = NULL;
    if (kvs && json_array_size(kvs) == 1) {
        json_t *kv = json_array_get(kvs, 0);
        rec = json_loads(json_string_value(json_object_get(kv, "value")), 0, NULL);
        *rev = json_integer_value(json_object_get(kv, "mod_revision"));
    } else if (kvs) {
        vs_error(err, ENOENT, "instance '%s' not found", name);
    }
    json_decref(kvs);
    return rec;
}

void cluster_record_relocate(json_t *rec, const char *target)
{
    json_object_set_new(rec, "location", json_string(target));
    json_object_set_new(rec, "state", json_string("stopped"));
    json_object_set_new(rec, "pid", json_null());
    json_t *cfg = json_object_get(rec, "config");
    static const char *const here_only[] = {"volatile.ipv4", "volatile.hwaddr",
                                            "volatile.pid_start"};
    for (size_t i = 0; i < sizeof(here_only) / sizeof(here_only[0]); i++)
        json_object_del(cfg, here_only[i]);
}

int cluster_record_swap(struct daemon *d, const char *name, json_t *rec, long long rev, vs_err *err)
{
    char k[1024], *text = json_dumps(rec, JSON_COMPACT);
    snprintf(k, sizeof(k), "%sinstances/%s", cluster_prefix(d), name);
    json_t *cmp = json_pack("[o]", etcd_cmp_mod_revision(k, rev));
    json_t *ops = json_pack("[o]", etcd_op_put(k, text, 0));
    bool ok = false;
    int rc = etcd_txn(store_etcd(d->store), cmp, ops, NULL, &ok, err);
    free(text);
    json_decref(cmp);
    json_decref(ops);
    if (rc == 0 && !ok)
        rc = vs_error(err, EAGAIN, "instance %s changed meanwhile", name);
    return rc;
}

json_t *cluster_move(struct daemon *d, const char *name, json_t *req, vs_err *err)
{
    const char *target = json_string_value(json_object_get(req, "target"));
    if (!d->cluster || !store_etcd(d->store)) {
        vs_error(err, EINVAL,
                 "move takes an instance to another cluster host: this host is in "
                 "no cluster");
        return NULL;
    }
    if (!target) {
        vs_error(err, EINVAL, "\"target\" (a cluster host) is required");
        return NULL;
    }
    if (cluster_is_self(d, target)) {
        vs_error(err, EEXIST, "instance %s is on host %s already", name, target);
        return NULL;
    }
    json_t *host = cluster_host_record(d, target, err);
    if (!host)
        return NULL;
    json_decref(host);
    if (!cluster_host_online(d, target)) {
        vs_error(err, EBUSY, "host %s is offline", target);
        return NULL;
    }
    if (!daemon_claim(d, name, err))
        return NULL;
    json_t *inst = store_instance_get(d->store, name, err), *out = NULL, *rec = NULL;
    char dir[4200], tar[4300] = "", *buf = NULL, *reply = NULL;
    size_t len = 0;
    bool was_running = false;
    long long rev = 0;
    if (!inst)
        goto done;
    if (strcmp(str(inst, "type"), "container")) {
        out = cluster_move_vm(d, name, target, inst, err); /* live */
        goto done;
    }
    char fp[65] = "";
    if (cluster_ensure_image(d, target, str(inst, "image"), fp, err) < 0)
        goto done;
    const char *state = instance_refresh_state(d, inst);
    if (!strcmp(state, "running") || !strcmp(state, "paused") || !strcmp(state, "starting")) {
        if (instance_stop_claimed(d, inst, false, 30, err) < 0)
            goto done;
        was_running = true;
    }
    /* the record as it is after the stop: the hand-over checks it is still so */
    if (!(rec = cluster_record_at(d, name, &rev, err)))
        goto done;
    instance_path(d, name, "upper", dir, sizeof(dir));
    instance_path(d, name, NULL, tar, sizeof(tar) - 10);
    strcat(tar, ".move.tar");
    if (snapshot_tar_tree(dir, tar, err) < 0 || !(buf = read_all(tar, &len, err)))
        goto done;
    char url[600];
    unsigned status = 0;
    snprintf(url, sizeof(url), "/1.0/cluster/receive?name=%s", name);
    if (cluster_forward(d, target, "POST", url, buf, len, &status, &reply, err) < 0)
        goto done;
    if (status != 200) {
        json_t *e = json_loads(reply, 0, NULL);
        vs_error(err, EIO, "host %s: %s", target,
                 json_string_value(json_object_get(e, "error")) ?: "refused the instance");
        json_decref(e);
        goto done;
    }
    /* the hand-over: one transaction on the revision read after the stop */
    cluster_record_relocate(rec, target);
    if (cluster_record_swap(d, name, rec, rev, err) < 0) {
        if (err->code == EAGAIN)
            vs_error(err, EAGAIN, "instance %s changed while it was being moved: it stays here",
                     name);
        goto done;
    }
    /* it is the target's now: nothing of it stays here */
    char root[4300];
    instance_path(d, name, "rootfs", root, sizeof(root));
    vs_err e = {0};
    oci_delete(d->oci_root, name, true, &e);
    umount2(root, MNT_DETACH);
    instance_path(d, name, NULL, dir, sizeof(dir));
    daemon_rm_rf(dir);
    network_release(d, name);
    daemon_event(d, "instance", "moved", name, json_pack("{s:s}", "target", target));
    vs_info("instance %s moved to host %s", name, target);
    if (was_running) {
        free(reply);
        reply = NULL;
        snprintf(url, sizeof(url), "/1.0/instances/%s/state", name);
        const char *start = "{\"action\":\"start\"}";
        if (cluster_forward(d, target, "PUT", url, start, strlen(start), &status, &reply, err) <
                0 ||
            status != 200) {
            vs_error_prefix(err, "moved to host %s, but not started there: ", target);
            if (status && status != 200)
                vs_error(err, EIO, "moved to host %s, but not started there: %s", target,
                         reply ? reply : "");
            goto done;
        }
    }
    out = json_pack("{s:s, s:s, s:s}", "name", name, "location", target, "state",
                    was_running ? "running" : "stopped");
done:
    if (tar[0])
        unlink(tar);
    free(buf);
    free(reply);
    json_decref(rec);
    json_decref(inst);
    daemon_release(d, name);
    return out;
}

int cluster_receive(struct daemon *d, const char *name, const char *tar, size_t len, vs_err *err)
{
    if (instance_validate_name(name, err) < 0)
        return -1;
    json_t *inst = store_instance_get(d->store, name, err);
    if (!inst)
        return -1;
    bool container = !strcmp(str(inst, "type"), "container");
    json_decref(inst);
    if (!container)
        return vs_error(err, EINVAL, "instance %s is not a container", name);
    if (!daemon_claim(d, name, err))
        return -1;
    char dir[4200], sub[4300], path[4300];
    instance_path(d, name, NULL, dir, sizeof(dir));
    daemon_rm_rf(dir); /* what an earlier move that did not finish left */
    int rc = mkdir(dir, 0700) < 0 ? vs_error_errno(err, "%s", dir) : 0;
    static const char *const subs[] = {"rootfs", "upper", "work"};
    for (size_t i = 0; rc == 0 && i < 3; i++) {
        snprintf(sub, sizeof(sub), "%s/%s", dir, subs[i]);
        if (mkdir(sub, 0755) < 0)
            rc = vs_error_errno(err, "%s", sub);
    }
    snprintf(path, sizeof(path), "%s.recv.tar", dir);
    /* no tar: a fresh start from the image (a high-availability restart) */
    int fd = rc == 0 && len ? open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
    if (rc == 0 && len &&
        (fd < 0 || write(fd, tar, len) != (ssize_t)len || lseek(fd, 0, SEEK_SET) < 0))
        rc = vs_error_errno(err, "%s", path);
    if (rc == 0 && len && archive_lib_acquire(err) == 0) {
        struct archive *in = archive_read_new();
        archive_read_support_format_tar(in);
        snprintf(sub, sizeof(sub), "%s/upper", dir);
        if (archive_read_open_fd(in, fd, 65536) != ARCHIVE_OK)
            rc = vs_error(err, EINVAL, "the moved instance is not a tar: %s",
                          archive_error_string(in));
        else if (image_extract(in, sub, "the moved instance", false, err) < 0)
            rc = -1;
        archive_read_free(in);
        archive_lib_release();
    } else if (rc == 0 && len) {
        rc = -1;
    }
    if (fd >= 0)
        close(fd);
    unlink(path);
    if (rc < 0)
        daemon_rm_rf(dir);
    daemon_release(d, name);
    return rc;
}

json_t *cluster_evacuate(struct daemon *d, vs_err *err)
{
    if (!d->cluster) {
        vs_error(err, EINVAL, "this host is not in a cluster");
        return NULL;
    }
    if (cluster_check_writable(d, err) < 0)
        return NULL;
    json_t *list = store_instance_list(d->store, err), *inst;
    if (!list)
        return NULL;
    json_t *moved = json_object(), *stayed = json_object();
    size_t i;
    json_array_foreach(list, i, inst)
    {
        const char *name = str(inst, "name");
        if (!daemon_instance_local(d, inst))
            continue;
        if (strcmp(str(inst, "type"), "container")) {
            json_object_set_new(stayed, name, json_string("a VM (moves of VMs are not done yet)"));
            continue;
        }
        char target[256];
        vs_err e = {0};
        json_t *req = NULL, *r = NULL;
        if (cluster_place(d, str(inst, "image"), cluster_host_name(d), target, sizeof(target),
                          &e) == 0 &&
            (req = json_pack("{s:s}", "target", target)) && (r = cluster_move(d, name, req, &e)))
            json_object_set_new(moved, name, json_string(target));
        else
            json_object_set_new(stayed, name, json_string(e.msg));
        json_decref(req);
        json_decref(r);
    }
    json_decref(list);
    return json_pack("{s:o, s:o}", "moved", moved, "stayed", stayed);
}

/* ---- images copied to the host that needs them ---- */

int cluster_ensure_image(struct daemon *d, const char *target, const char *ref, char fp[65],
                         vs_err *err)
{
    json_t *img = store_image_get(d->store, ref, NULL);
    if (img)
        snprintf(fp, 65, "%s", str(img, "fingerprint"));
    if (cluster_host_has_image(d, target, img ? fp : ref)) {
        json_decref(img);
        return 0;
    }
    if (!img)
        return vs_error(err, ENOENT, "host %s has no image '%s', and neither has this host", target,
                        ref);
    if (strcmp(str(img, "state"), "ready")) {
        json_decref(img);
        return vs_error(err, EBUSY, "image '%s' is still being imported", ref);
    }
    /* the image's directory as a tar, its record as hex JSON in the query */
    char tar[4300], *buf = NULL, *reply = NULL, *meta = NULL, *url = NULL;
    size_t len = 0;
    int rc = -1;
    snprintf(tar, sizeof(tar), "%s/images/.send-%s.tar", d->state_dir, fp);
    json_t *m =
        json_pack("{s:s?, s:s, s:s, s:O, s:I}", "alias",
                  json_string_value(json_object_get(img, "alias")), "type", str(img, "type"),
                  "arch", str(img, "arch"), "properties", json_object_get(img, "properties"),
                  "size", json_integer_value(json_object_get(img, "size")));
    char *mtext = m ? json_dumps(m, JSON_COMPACT) : NULL;
    json_decref(m);
    if (!mtext || !(meta = malloc(2 * strlen(mtext) + 1))) {
        vs_error(err, ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; mtext[i]; i++)
        sprintf(meta + 2 * i, "%02x", (unsigned char)mtext[i]);
    meta[2 * strlen(mtext)] = 0;
    if (snapshot_tar_tree(str(img, "path"), tar, err) < 0 || !(buf = read_all(tar, &len, err)))
        goto out;
    if (asprintf(&url, "/1.0/cluster/receive?image=%s&meta=%s", fp, meta) < 0) {
        url = NULL;
        vs_error(err, ENOMEM, "out of memory");
        goto out;
    }
    unsigned status = 0;
    if (cluster_forward(d, target, "POST", url, buf, len, &status, &reply, err) < 0)
        goto out;
    if (status != 200) {
        json_t *e = json_loads(reply, 0, NULL);
        vs_error(err, EIO, "copying image %.12s to host %s: %s", fp, target,
                 json_string_value(json_object_get(e, "error")) ?: "refused");
        json_decref(e);
        goto out;
    }
    vs_info("image %.12s copied to host %s", fp, target);
    rc = 0;
out:
    unlink(tar);
    free(buf);
    free(reply);
    free(meta);
    free(mtext);
    free(url);
    json_decref(img);
    return rc;
}

int cluster_receive_image(struct daemon *d, const char *fp, const char *meta_hex, const char *tar,
                          size_t len, vs_err *err)
{
    if (strlen(fp) != 64 || strspn(fp, "0123456789abcdef") != 64)
        return vs_error(err, EINVAL, "bad image fingerprint");
    json_t *have = store_image_get(d->store, fp, NULL);
    json_decref(have);
    if (have)
        return 0; /* a copy that raced another: one is enough */
    size_t mlen = meta_hex ? strlen(meta_hex) / 2 : 0;
    char *mtext = calloc(1, mlen + 1);
    for (size_t i = 0; mtext && i < mlen; i++) {
        unsigned v;
        if (sscanf(meta_hex + 2 * i, "%2x", &v) != 1)
            break;
        mtext[i] = (char)v;
    }
    json_t *m = mtext ? json_loads(mtext, 0, NULL) : NULL;
    free(mtext);
    if (!json_is_object(m) || !json_string_value(json_object_get(m, "type")) ||
        !json_string_value(json_object_get(m, "arch"))) {
        json_decref(m);
        return vs_error(err, EINVAL, "the image's record is missing or malformed");
    }
    char dir[4200], path[4300];
    snprintf(dir, sizeof(dir), "%s/images/.recv-%s", d->state_dir, fp);
    snprintf(path, sizeof(path), "%s.tar", dir);
    daemon_rm_rf(dir);
    int rc = mkdir(dir, 0700) < 0 ? vs_error_errno(err, "%s", dir) : 0;
    int fd = rc == 0 ? open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
    if (rc == 0 && (fd < 0 || write(fd, tar, len) != (ssize_t)len || lseek(fd, 0, SEEK_SET) < 0))
        rc = vs_error_errno(err, "%s", path);
    if (rc == 0 && archive_lib_acquire(err) == 0) {
        struct archive *in = archive_read_new();
        archive_read_support_format_tar(in);
        if (archive_read_open_fd(in, fd, 65536) != ARCHIVE_OK)
            rc = vs_error(err, EINVAL, "the image is not a tar: %s", archive_error_string(in));
        else if (image_extract(in, dir, "the copied image", false, err) < 0)
            rc = -1;
        archive_read_free(in);
        archive_lib_release();
    } else if (rc == 0) {
        rc = -1;
    }
    if (fd >= 0)
        close(fd);
    unlink(path);
    if (rc == 0) {
        /* the alias only where this host has no other image by that name */
        const char *alias = json_string_value(json_object_get(m, "alias"));
        json_t *taken = alias ? store_image_get(d->store, alias, NULL) : NULL;
        json_t *img = image_adopt(d, dir, json_string_value(json_object_get(m, "type")),
                                  json_string_value(json_object_get(m, "arch")),
                                  taken ? NULL : alias, json_object_get(m, "properties"), fp,
                                  json_integer_value(json_object_get(m, "size")), err);
        json_decref(taken);
        rc = img ? 0 : -1;
        json_decref(img);
    }
    if (rc < 0)
        daemon_rm_rf(dir);
    json_decref(m);
    return rc;
}
