/* Snapshots, restores, copies and publishing of instances.
 *
 * A container's snapshot is a copy of its overlay upper directory (its
 * changes to the image), taken while it is frozen: a filesystem snapshot,
 * as LXD's default (CRIU does not work on these hosts). A running VM's
 * snapshot is vessel's own stateful snapshot (memory, vCPUs and devices,
 * docs/snapshot-format.md) taken through its control API; restoring it
 * continues the VM where it was. A copy gets its own name, hostname,
 * overlay and, for a VM, its own MAC and vsock CID (a clone index).
 * Publishing turns a container (or one of its snapshots) into an image by
 * archiving its merged root filesystem and importing that. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api/client.h"
#include "daemon/archive_lib.h"
#include "daemon/daemon.h"
#include "util/log.h"

extern char **environ;

static const char *str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static bool is_container(json_t *inst)
{
    return !strcmp(str(inst, "type"), "container");
}

/* cp -a: hard links, sparse files, devices (overlay whiteouts) and xattrs
 * (overlay's opaque directories) are all kept, which a hand-written copy
 * would have to get right one by one. */
static int copy_tree(const char *src, const char *dst, vs_err *err)
{
    const char *argv[] = {"cp", "-a", "--sparse=always", "--", src, dst, NULL};
    pid_t pid;
    int rc = posix_spawnp(&pid, "cp", NULL, NULL, (char **)argv, environ);
    if (rc)
        return vs_error(err, rc, "cannot run cp: %s", strerror(rc));
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status))
        return vs_error(err, EIO, "copying %s to %s failed", src, dst);
    return 0;
}

static int validate_snap_name(const char *snap, vs_err *err)
{
    if (instance_validate_name(snap, err) < 0)
        return vs_error(err, EINVAL,
                        "invalid snapshot name '%s': letters, digits and '-', "
                        "starting with a letter",
                        snap ? snap : "");
    return 0;
}

static void snap_dir(struct daemon *d, const char *name, const char *snap, char *out, size_t n)
{
    char base[4200];
    instance_path(d, name, "snapshots", base, sizeof(base));
    snprintf(out, n, "%.4200s/%s", base, snap);
}

static json_t *claimed_instance(struct daemon *d, json_t *req, vs_err *err)
{
    return store_instance_get(d->store, str(req, "instance"), err);
}

/* ---- snapshot ---- */

static int container_snapshot(struct daemon *d, json_t *inst, const char *dir, vs_err *err)
{
    const char *state = instance_refresh_state(d, inst);
    bool freeze = !strcmp(state, "running");
    char upper[4200], to[4400];
    instance_path(d, str(inst, "name"), "upper", upper, sizeof(upper));
    snprintf(to, sizeof(to), "%s/upper", dir);
    if (freeze && instance_pause_claimed(d, inst, true, err) < 0)
        return -1;
    int rc = copy_tree(upper, to, err);
    if (freeze) {
        vs_err e = {0};
        if (instance_pause_claimed(d, inst, false, &e) < 0 && rc == 0)
            rc = vs_error(err, e.code, "%s", e.msg);
    }
    return rc;
}

/* A running VM's full state through its control API (the VM runs on). */
static int vm_snapshot(struct daemon *d, json_t *inst, const char *dir, bool *stateful, vs_err *err)
{
    const char *state = instance_refresh_state(d, inst);
    *stateful = !strcmp(state, "running") || !strcmp(state, "paused");
    if (!*stateful) {
        /* a stopped VM: its disk as it is (the top overlay; what lies
         * under it is read-only) */
        if (mkdir(dir, 0700) < 0)
            return vs_error_errno(err, "%s", dir);
        const char *disk = str(json_object_get(inst, "config"), "volatile.disk_path");
        char to[4400];
        snprintf(to, sizeof(to), "%s/disk.qcow2", dir);
        return disk && access(disk, F_OK) == 0 ? copy_tree(disk, to, err) : 0;
    }
    char sock[4200], own[4200], tmp[4300];
    instance_path(d, str(inst, "name"), "api.sock", sock, sizeof(sock));
    /* The VM process may create files only beneath its instance directory
     * (landlock; in a jail it is the one writable place): it writes the
     * snapshot there, and the daemon moves it where it belongs (the
     * instance's snapshots, a copy's directory, an image being published). */
    instance_path(d, str(inst, "name"), NULL, own, sizeof(own));
    snprintf(tmp, sizeof(tmp), "%s/.snapshot-%lld", own, daemon_now_ms());
    daemon_rm_rf(tmp);
    /* a VM with a disk: the disk is frozen into the snapshot too, and the
     * VM goes on in a new overlay (recorded for its next boot) */
    bool disk = json_object_get(json_object_get(inst, "config"), "volatile.disk_path") != NULL;
    json_t *body = json_pack("{s:s, s:s, s:b}", "path", tmp, "type", "full", "disks", disk),
           *resp = NULL;
    int rc = api_client_request(sock, "PUT", "/snapshot", body, &resp, err);
    json_decref(body);
    json_decref(resp);
    if (rc < 0)
        return vs_error_prefix(err, "instance %s: ", str(inst, "name"));
    /* one file system (the state directory): a rename; else a copy */
    if (rename(tmp, dir) < 0) {
        rc = errno == EXDEV ? copy_tree(tmp, dir, err) : vs_error_errno(err, "%s", dir);
        daemon_rm_rf(tmp);
        if (rc < 0)
            return vs_error_prefix(err, "instance %s: moving its snapshot: ", str(inst, "name"));
    }
    if (json_object_get(json_object_get(inst, "config"), "volatile.vsock_cid"))
        instance_snapshot_mark_vsock(dir);
    if (d->net.enabled && json_object_get(json_object_get(inst, "config"), "volatile.hwaddr"))
        instance_snapshot_mark_net(dir);
    resp = NULL;
    vs_err e = {0};
    if (disk && api_client_request(sock, "GET", "/vm", NULL, &resp, &e) == 0) {
        instance_note_disk(inst, resp);
        store_instance_update(d->store, inst, &e);
    }
    json_decref(resp);
    return 0;
}

json_t *snapshot_create_op(struct daemon *d, json_t *req, const char *op_id, vs_err *err)
{
    const char *name = str(req, "instance");
    json_t *inst = claimed_instance(d, req, err), *out = NULL;
    if (!inst)
        goto done;
    char snapname[64];
    const char *snap = str(req, "name");
    if (!snap) {
        /* snap0, snap1, ... as LXD names them */
        json_t *have = store_snapshot_list(d->store, name, err);
        for (unsigned i = 0;; i++) {
            snprintf(snapname, sizeof(snapname), "snap%u", i);
            json_t *s = store_snapshot_get(d->store, name, snapname, NULL);
            if (!s)
                break;
            json_decref(s);
        }
        json_decref(have);
        snap = snapname;
    }
    if (validate_snap_name(snap, err) < 0)
        goto done;
    json_t *exists = store_snapshot_get(d->store, name, snap, NULL);
    if (exists) {
        json_decref(exists);
        vs_error(err, EEXIST, "instance %s has a snapshot '%s' already", name, snap);
        goto done;
    }
    char base[4200], dir[4300];
    instance_path(d, name, "snapshots", base, sizeof(base));
    mkdir(base, 0700);
    snap_dir(d, name, snap, dir, sizeof(dir));
    daemon_rm_rf(dir); /* left by a snapshot cut off before its record was made */
    bool stateful = false;
    int rc;
    if (is_container(inst)) {
        rc = mkdir(dir, 0700) < 0 ? vs_error_errno(err, "%s", dir) : 0;
        if (rc == 0)
            rc = container_snapshot(d, inst, dir, err);
    } else {
        rc = vm_snapshot(d, inst, dir, &stateful, err);
    }
    char id[512];
    snprintf(id, sizeof(id), "%s/%s", name, snap);
    json_t *rec =
        json_pack("{s:s, s:s, s:s, s:i, s:s, s:I}", "id", id, "instance", name, "name", snap,
                  "stateful", stateful, "path", dir, "created_at", (json_int_t)daemon_now_ms());
    if (rc == 0 && store_snapshot_insert(d->store, rec, err) == 0) {
        out = rec;
        daemon_event(d, "snapshot", "created", id, json_pack("{s:b}", "stateful", stateful));
    } else {
        daemon_rm_rf(dir);
        json_decref(rec);
    }
done:
    json_decref(inst);
    daemon_release(d, name);
    return out;
}

int snapshot_delete(struct daemon *d, const char *name, const char *snap, vs_err *err)
{
    json_t *rec = store_snapshot_get(d->store, name, snap, err);
    if (!rec)
        return -1;
    int rc = store_snapshot_delete(d->store, name, snap, err);
    if (rc == 0) {
        daemon_rm_rf(str(rec, "path"));
        daemon_event(d, "snapshot", "deleted", str(rec, "id"), NULL);
    }
    json_decref(rec);
    return rc;
}

/* ---- restore ---- */

int snapshot_restore(struct daemon *d, const char *name, const char *snap, vs_err *err)
{
    json_t *inst = store_instance_get(d->store, name, err);
    if (!inst)
        return -1;
    json_t *rec = store_snapshot_get(d->store, name, snap, err);
    if (!rec) {
        json_decref(inst);
        return -1;
    }
    if (!daemon_claim(d, name, err)) {
        json_decref(inst);
        json_decref(rec);
        return -1;
    }
    const char *state = instance_refresh_state(d, inst);
    bool was_running = strcmp(state, "stopped") != 0;
    bool stateful = json_integer_value(json_object_get(rec, "stateful")) != 0;
    int rc = 0;
    if (was_running)
        rc = instance_stop_claimed(d, inst, true, 0, err);
    if (rc == 0 && is_container(inst)) {
        /* the instance's changes become the snapshot's */
        char upper[4200], work[4200], from[4400];
        instance_path(d, name, "upper", upper, sizeof(upper));
        instance_path(d, name, "work", work, sizeof(work));
        snprintf(from, sizeof(from), "%s/upper", str(rec, "path"));
        daemon_rm_rf(upper);
        daemon_rm_rf(work);
        rc = copy_tree(from, upper, err);
        if (rc == 0 && mkdir(work, 0755) < 0)
            rc = vs_error_errno(err, "%s", work);
    } else if (rc == 0 && !stateful) {
        /* a stopped VM's snapshot: its disk comes back (as a new file: the
         * old one may lie under other snapshots' overlays) */
        char from[4400], to[4300], leaf[64];
        snprintf(from, sizeof(from), "%s/disk.qcow2", str(rec, "path"));
        snprintf(leaf, sizeof(leaf), "disk-%lld.qcow2", daemon_now_ms());
        instance_path(d, name, leaf, to, sizeof(to));
        if (access(from, F_OK) == 0 && (rc = copy_tree(from, to, err)) == 0)
            json_object_set_new(json_object_get(inst, "config"), "volatile.disk_path",
                                json_string(to));
    } else if (rc == 0 && stateful) {
        /* the VM continues from the snapshot's memory and devices */
        json_object_set_new(json_object_get(inst, "config"), "volatile.restore_from",
                            json_string(str(rec, "path")));
        json_object_del(json_object_get(inst, "config"), "volatile.clone_index");
    }
    if (rc == 0 && (was_running || (stateful && !is_container(inst))))
        rc = instance_start_claimed(d, inst, err);
    else if (rc == 0)
        rc = store_instance_update(d->store, inst, err);
    if (rc == 0)
        daemon_event(d, "snapshot", "restored", str(rec, "id"), NULL);
    daemon_release(d, name);
    json_decref(inst);
    json_decref(rec);
    return rc;
}

/* ---- copy ---- */

json_t *instance_copy_op(struct daemon *d, json_t *req, const char *op_id, vs_err *err)
{
    const char *src = str(req, "instance"), *dst = str(req, "name"), *snap = str(req, "snapshot");
    json_t *inst = claimed_instance(d, req, err), *rec = NULL, *out = NULL;
    bool dst_claimed = false;
    char dir[4200] = "";
    if (!inst)
        goto done;
    if (instance_validate_name(dst, err) < 0)
        goto done;
    if (!(dst_claimed = daemon_claim(d, dst, err)))
        goto done;
    if (snap && !(rec = store_snapshot_get(d->store, src, snap, err)))
        goto done;
    /* the copy: same image and settings, its own identity and changes */
    json_t *config = json_deep_copy(json_object_get(inst, "config"));
    const char *k;
    void *tmp;
    json_t *v;
    json_object_foreach_safe(config, tmp, k, v)
    {
        if (!strncmp(k, "volatile.", 9) && strcmp(k, "volatile.image_command"))
            json_object_del(config, k);
    }
    json_t *copy =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:n, s:o, s:I, s:s}", "name", dst, "type",
                  str(inst, "type"), "arch", str(inst, "arch"), "image", str(inst, "image"),
                  "state", "creating", "pid", "config", config, "created_at",
                  (json_int_t)daemon_now_ms(), "location", daemon_location(d));
    if (store_instance_insert(d->store, copy, err) < 0) {
        json_decref(copy);
        goto done;
    }
    instance_path(d, dst, NULL, dir, sizeof(dir));
    daemon_rm_rf(dir);
    int rc = mkdir(dir, 0700) < 0 ? vs_error_errno(err, "%s", dir) : 0;
    if (rc == 0 && is_container(inst)) {
        char from[4400], to[4300], p[4300];
        if (rec)
            snprintf(from, sizeof(from), "%s/upper", str(rec, "path"));
        else
            instance_path(d, src, "upper", from, sizeof(from));
        snprintf(to, sizeof(to), "%s/upper", dir);
        /* a running source is frozen while its changes are copied */
        bool freeze = !rec && !strcmp(instance_refresh_state(d, inst), "running");
        if (freeze)
            rc = instance_pause_claimed(d, inst, true, err);
        if (rc == 0)
            rc = copy_tree(from, to, err);
        if (freeze) {
            vs_err e = {0};
            instance_pause_claimed(d, inst, false, &e);
        }
        const char *sub[] = {"rootfs", "work"};
        for (int i = 0; rc == 0 && i < 2; i++) {
            snprintf(p, sizeof(p), "%s/%s", dir, sub[i]);
            if (mkdir(p, 0755) < 0)
                rc = vs_error_errno(err, "%s", p);
        }
    } else if (rc == 0) {
        /* a VM: its state from the snapshot, or one taken now if it runs */
        char state[4300];
        snprintf(state, sizeof(state), "%s/state", dir);
        bool stateful = false;
        if (rec && json_integer_value(json_object_get(rec, "stateful"))) {
            rc = copy_tree(str(rec, "path"), state, err);
            stateful = true;
        } else if (!rec) {
            rc = vm_snapshot(d, inst, state, &stateful, err);
        }
        /* no running state: the copy boots afresh on a copy of the disk */
        char from[4400], to[4400];
        snprintf(from, sizeof(from), "%s/disk.qcow2", rec ? str(rec, "path") : state);
        snprintf(to, sizeof(to), "%s/disk.qcow2", dir);
        if (rc == 0 && !stateful && access(from, F_OK) == 0 &&
            (rc = rec                    ? copy_tree(from, to, err)
                  : rename(from, to) < 0 ? vs_error_errno(err, "%s", to)
                                         : 0) == 0)
            json_object_set_new(config, "volatile.disk_path", json_string(to));
        if (rc == 0 && stateful) {
            char idx[16];
            snprintf(idx, sizeof(idx), "%d", instance_next_clone_index(d));
            json_object_set_new(config, "volatile.restore_from", json_string(state));
            json_object_set_new(config, "volatile.clone_index", json_string(idx));
        }
    }
    if (rc == 0) {
        json_object_set_new(copy, "state", json_string("stopped"));
        rc = store_instance_update(d->store, copy, err);
    }
    if (rc < 0) {
        vs_err e = {0};
        daemon_rm_rf(dir);
        store_instance_delete(d->store, dst, &e);
        json_decref(copy);
        goto done;
    }
    out = copy;
    daemon_event(d, "instance", "created", dst,
                 json_pack("{s:s, s:s?}", "copy_of", src, "snapshot", snap));
done:
    json_decref(inst);
    json_decref(rec);
    if (dst_claimed)
        daemon_release(d, dst);
    daemon_release(d, src);
    return out;
}

/* ---- publish ---- */

int instance_next_clone_index(struct daemon *d)
{
    /* the highest recorded or handed out (a concurrent launch may not have
     * recorded its own yet) */
    pthread_mutex_lock(&d->alloc_lock);
    json_t *list = store_instance_list(d->store, NULL), *inst;
    long max = d->last_clone_index;
    size_t i;
    json_array_foreach(list, i, inst)
    {
        const char *v = json_string_value(
            json_object_get(json_object_get(inst, "config"), "volatile.clone_index"));
        if (v && atol(v) > max)
            max = atol(v);
    }
    json_decref(list);
    int next = max >= 65535 ? 1 : (int)max + 1;
    d->last_clone_index = next;
    pthread_mutex_unlock(&d->alloc_lock);
    return next;
}

/* A VM template: the running state of a VM (one of its stateful snapshots,
 * or one taken now) with its kernel and initrd. Instances launched from it
 * are clones of that state: they start in milliseconds, share its memory
 * pages until they write them, and each has its own MAC and vsock CID. */
static json_t *vm_publish(struct daemon *d, json_t *inst, json_t *rec, json_t *req,
                          const char *op_id, vs_err *err)
{
    const char *name = str(inst, "name");
    json_t *img = store_image_get(d->store, str(inst, "image"), err), *out = NULL;
    if (!img)
        return NULL;
    char dir[4200], state[4300], path[4400];
    snprintf(dir, sizeof(dir), "%s/images/publish-%s", d->state_dir, op_id);
    snprintf(state, sizeof(state), "%s/state", dir);
    bool stateful = false;
    int rc = mkdir(dir, 0700) < 0 ? vs_error_errno(err, "%s", dir) : 0;
    if (rc == 0 && rec) {
        stateful = json_integer_value(json_object_get(rec, "stateful")) != 0;
        rc = stateful ? copy_tree(str(rec, "path"), state, err)
                      : vs_error(err, EINVAL,
                                 "snapshot %s/%s holds no running state (the VM was stopped); "
                                 "a VM template needs one",
                                 name, str(rec, "name"));
    } else if (rc == 0) {
        rc = vm_snapshot(d, inst, state, &stateful, err);
        if (rc == 0 && !stateful)
            rc = vs_error(err, EINVAL,
                          "instance %s is stopped: start it, or publish one of its "
                          "stateful snapshots",
                          name);
    }
    /* its kernel and initrd, for a fresh boot after a stop */
    json_t *props = json_deep_copy(json_object_get(img, "properties")), *v;
    const char *k;
    json_object_foreach(props, k, v)
    {
        if (rc == 0 && json_is_string(v) && (!strcmp(k, "kernel") || !strcmp(k, "initrd"))) {
            char from[4400];
            snprintf(from, sizeof(from), "%s/%s", str(img, "path"), json_string_value(v));
            snprintf(path, sizeof(path), "%s/%s", dir, json_string_value(v));
            rc = copy_tree(from, path, err);
        }
    }
    json_object_set_new(props, "state", json_string("state"));
    json_object_set_new(props, "parent", json_string(str(img, "fingerprint")));
    char fp[65];
    snprintf(path, sizeof(path), "%s/vmstate", state);
    if (rc == 0)
        rc = daemon_sha256_file(path, fp, err);
    if (rc == 0) {
        struct stat st;
        snprintf(path, sizeof(path), "%s/memory", state);
        long long size = stat(path, &st) == 0 ? (long long)st.st_blocks * 512 : 0;
        out = image_adopt(d, dir, "vm", str(inst, "arch"), str(req, "alias"), props, fp, size, err);
    }
    json_decref(props);
    json_decref(img);
    if (!out)
        daemon_rm_rf(dir);
    return out;
}

/* Archive the tree at dir into a tar file at path (libarchive reads the
 * disk with its ACLs, xattrs and hard links). */
static int tar_tree_loaded(const char *dir, const char *path, vs_err *err);

int snapshot_tar_tree(const char *dir, const char *path, vs_err *err)
{
    if (archive_lib_acquire(err) < 0)
        return -1;
    int rc = tar_tree_loaded(dir, path, err);
    archive_lib_release();
    return rc;
}

static int tar_tree_loaded(const char *dir, const char *path, vs_err *err)
{
    struct archive *disk = archive_read_disk_new(), *out = archive_write_new();
    archive_read_disk_set_standard_lookup(disk);
    archive_read_disk_set_behavior(disk, ARCHIVE_READDISK_NO_TRAVERSE_MOUNTS);
    archive_write_set_format_pax_restricted(out);
    int rc = -1;
    if (archive_write_open_filename(out, path) != ARCHIVE_OK) {
        vs_error(err, EIO, "%s: %s", path, archive_error_string(out));
        goto done;
    }
    if (archive_read_disk_open(disk, dir) != ARCHIVE_OK) {
        vs_error(err, EIO, "%s: %s", dir, archive_error_string(disk));
        goto done;
    }
    size_t dlen = strlen(dir);
    for (;;) {
        struct archive_entry *e = archive_entry_new();
        int r = archive_read_next_header2(disk, e);
        if (r == ARCHIVE_EOF) {
            archive_entry_free(e);
            break;
        }
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
            vs_error(err, EIO, "%s: %s", dir, archive_error_string(disk));
            archive_entry_free(e);
            goto done;
        }
        archive_read_disk_descend(disk);
        /* names relative to the root: "./bin/sh" */
        const char *full = archive_entry_pathname(e);
        char rel[8192];
        snprintf(rel, sizeof(rel), ".%s", strlen(full) > dlen ? full + dlen : "/");
        archive_entry_copy_pathname(e, rel);
        if (archive_write_header(out, e) != ARCHIVE_OK) {
            vs_error(err, EIO, "%s: %s", path, archive_error_string(out));
            archive_entry_free(e);
            goto done;
        }
        if (archive_entry_filetype(e) == AE_IFREG && archive_entry_size(e) > 0) {
            int fd = open(archive_entry_sourcepath(e), O_RDONLY | O_CLOEXEC);
            char buf[65536];
            ssize_t n;
            while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) > 0)
                archive_write_data(out, buf, (size_t)n);
            if (fd >= 0)
                close(fd);
        }
        archive_entry_free(e);
    }
    if (archive_write_close(out) != ARCHIVE_OK) {
        vs_error(err, EIO, "%s: %s", path, archive_error_string(out));
        goto done;
    }
    rc = 0;
done:
    archive_read_free(disk);
    archive_write_free(out);
    return rc;
}

json_t *instance_publish_op(struct daemon *d, json_t *req, const char *op_id, vs_err *err)
{
    const char *name = str(req, "instance"), *snap = str(req, "snapshot");
    json_t *inst = claimed_instance(d, req, err), *rec = NULL, *out = NULL, *img = NULL;
    char mnt[4200] = "", tarball[4300] = "";
    bool mounted = false, frozen = false;
    if (!inst)
        goto done;
    if (snap && !(rec = store_snapshot_get(d->store, name, snap, err)))
        goto done;
    if (!is_container(inst)) {
        out = vm_publish(d, inst, rec, req, op_id, err);
        goto done;
    }
    img = store_image_get(d->store, str(inst, "image"), err);
    if (!img)
        goto done;
    /* the merged view: the live overlay of a running container (frozen
     * meanwhile), else a read-only overlay of the changes on the image */
    const char *root = mnt;
    bool live = !rec && strcmp(instance_refresh_state(d, inst), "stopped");
    if (live) {
        instance_path(d, name, "rootfs", mnt, sizeof(mnt));
        if (!strcmp(instance_refresh_state(d, inst), "running")) {
            if (instance_pause_claimed(d, inst, true, err) < 0)
                goto done;
            frozen = true;
        }
    } else {
        char upper[4400], opts[13000];
        instance_path(d, name, "publish-mnt", mnt, sizeof(mnt));
        if (rec)
            snprintf(upper, sizeof(upper), "%s/upper", str(rec, "path"));
        else
            instance_path(d, name, "upper", upper, sizeof(upper));
        snprintf(opts, sizeof(opts), "lowerdir=%s:%s/rootfs", upper, str(img, "path"));
        mkdir(mnt, 0700);
        if (mount("overlay", mnt, "overlay", MS_RDONLY, opts) < 0) {
            vs_error_errno(err, "instance %s: overlay mount for publishing", name);
            goto done;
        }
        mounted = true;
    }
    snprintf(tarball, sizeof(tarball), "%s/images/publish-%s.tar", d->state_dir, op_id);
    int rc = snapshot_tar_tree(root, tarball, err);
    if (frozen) {
        vs_err e = {0};
        instance_pause_claimed(d, inst, false, &e);
        frozen = false;
    }
    if (rc < 0)
        goto done;
    /* a rootfs, whatever files the container left in it */
    json_t *imp =
        json_pack("{s:s, s:s, s:s?, s:s, s:s}", "type", "container", "source", tarball, "alias",
                  str(req, "alias"), "arch", str(inst, "arch"), "format", "rootfs");
    out = image_import(d, imp, op_id, err);
    json_decref(imp);
    if (out) {
        json_object_set_new(json_object_get(out, "properties"), "parent",
                            json_string(str(inst, "image")));
        vs_err e = {0};
        store_image_update(d->store, out, &e);
    }
done:
    if (frozen) {
        vs_err e = {0};
        instance_pause_claimed(d, inst, false, &e);
    }
    if (mounted)
        umount2(mnt, MNT_DETACH);
    if (mounted)
        rmdir(mnt);
    if (tarball[0])
        unlink(tarball);
    json_decref(img);
    json_decref(rec);
    json_decref(inst);
    daemon_release(d, name);
    return out;
}
