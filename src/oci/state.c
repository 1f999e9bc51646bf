#include "oci/state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "oci/spec.h"
#include "util/cleanup.h"

const char *oci_status_name(enum oci_status s)
{
    static const char *n[] = {"creating", "created", "running", "paused", "stopped"};
    return s <= OCI_STOPPED ? n[s] : "unknown";
}

const char *oci_default_root(void)
{
    static char buf[1024];
    if (geteuid() == 0)
        return "/run/vessel-runc";
    const char *x = getenv("XDG_RUNTIME_DIR");
    if (x && *x)
        snprintf(buf, sizeof(buf), "%s/vessel-runc", x);
    else
        snprintf(buf, sizeof(buf), "/tmp/vessel-runc-%u", (unsigned)geteuid());
    return buf;
}

int oci_validate_id(const char *id, vs_err *err)
{
    size_t l = strlen(id);
    if (l == 0 || l > 200 || !strcmp(id, ".") || !strcmp(id, "..") ||
        strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-+") != l)
        return vs_error(err, EINVAL,
                        "invalid container id '%s' (use letters, digits, '_', '.', '-', '+')", id);
    return 0;
}

static int mkdir_p(const char *path, mode_t mode)
{
    char tmp[1024];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(tmp, mode) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(tmp, mode) < 0 && errno != EEXIST)
        return -1;
    return 0;
}

static int lock_dir(struct oci_state *st, vs_err *err)
{
    st->lock_fd = open(st->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (st->lock_fd < 0) {
        if (errno == ENOENT)
            return vs_error(err, ENOENT, "container '%s' does not exist", st->id);
        return vs_error_errno(err, "cannot open %s", st->dir);
    }
    if (flock(st->lock_fd, LOCK_EX) < 0)
        return vs_error_errno(err, "cannot lock %s", st->dir);
    return 0;
}

/* The user's name from /etc/passwd, or "" (what getpwuid would give for
 * local users, without loading NSS on every create). */
static void user_name(uid_t uid, char *out, size_t len)
{
    *out = 0;
    cleanup_fclose FILE *f = fopen("/etc/passwd", "re");
    char line[1024];
    while (f && fgets(line, sizeof(line), f)) {
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        char *end;
        unsigned long v = strtoul(c2 + 1, &end, 10);
        if (*end == ':' && v == uid) {
            snprintf(out, len, "%.*s", (int)(c1 - line), line);
            return;
        }
    }
}

int oci_state_init(struct oci_state *st, const char *root, const char *id, vs_err *err)
{
    memset(st, 0, sizeof(*st));
    st->lock_fd = -1;
    if (oci_validate_id(id, err) < 0)
        return -1;
    snprintf(st->id, sizeof(st->id), "%s", id);
    if (mkdir_p(root, 0700) < 0)
        return vs_error_errno(err, "cannot create state root %s", root);
    snprintf(st->dir, sizeof(st->dir), "%s/%s", root, id);
    if (mkdir(st->dir, 0700) < 0) {
        if (errno == EEXIST)
            return vs_error(err, EEXIST, "container '%s' already exists", id);
        return vs_error_errno(err, "cannot create %s", st->dir);
    }
    if (lock_dir(st, err) < 0) {
        rmdir(st->dir);
        return -1;
    }
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    /* by hand: strftime would load the time zone, which UTC does not need */
    snprintf(st->created, sizeof(st->created), "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             now.tv_nsec);
    user_name(geteuid(), st->owner, sizeof(st->owner));
    return 0;
}

static void copy_str(json_t *o, const char *k, char *dst, size_t len)
{
    const char *v = json_string_value(json_object_get(o, k));
    snprintf(dst, len, "%s", v ? v : "");
}

int oci_state_load(struct oci_state *st, const char *root, const char *id, bool lock, vs_err *err)
{
    memset(st, 0, sizeof(*st));
    st->lock_fd = -1;
    if (oci_validate_id(id, err) < 0)
        return -1;
    snprintf(st->id, sizeof(st->id), "%s", id);
    snprintf(st->dir, sizeof(st->dir), "%s/%s", root, id);
    if (lock && lock_dir(st, err) < 0)
        return -1;
    char path[4200];
    snprintf(path, sizeof(path), "%s/state.json", st->dir);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) {
        /* no state.json: gone, being removed, or an interrupted create */
        if (access(st->dir, F_OK) < 0 || access(path, F_OK) < 0)
            return vs_error(err, ENOENT, "container '%s' does not exist", id);
        return vs_error(err, EIO, "container '%s': state is unreadable (%s)", id, je.text);
    }
    copy_str(j, "bundle", st->bundle, sizeof(st->bundle));
    copy_str(j, "rootfs", st->rootfs, sizeof(st->rootfs));
    copy_str(j, "created", st->created, sizeof(st->created));
    copy_str(j, "owner", st->owner, sizeof(st->owner));
    st->pid = (pid_t)json_integer_value(json_object_get(j, "pid"));
    st->start_time = (unsigned long long)json_integer_value(json_object_get(j, "vesselStartTime"));
    st->userns = json_is_true(json_object_get(j, "vesselUserns"));
    oci_cgroup_from_json(json_object_get(j, "vesselCgroup"), &st->cgroup);
    json_t *a = json_object_get(j, "annotations");
    if (json_is_object(a))
        st->annotations = json_incref(a);
    json_decref(j);
    return 0;
}

int oci_state_save(const struct oci_state *st, vs_err *err)
{
    json_t *j = oci_state_json(st, OCI_CREATED);
    json_object_set_new(j, "vesselStartTime", json_integer((json_int_t)st->start_time));
    json_object_set_new(j, "vesselUserns", json_boolean(st->userns));
    json_object_set_new(j, "vesselCgroup", oci_cgroup_to_json(&st->cgroup));
    char tmp[4200], path[4200];
    snprintf(tmp, sizeof(tmp), "%s/.state.json.tmp", st->dir);
    snprintf(path, sizeof(path), "%s/state.json", st->dir);
    int r = json_dump_file(j, tmp, JSON_COMPACT);
    json_decref(j);
    if (r < 0 || rename(tmp, path) < 0)
        return vs_error_errno(err, "cannot write %s", path);
    return 0;
}

void oci_state_remove_dir(const struct oci_state *st)
{
    DIR *d = opendir(st->dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        unlinkat(dirfd(d), de->d_name, 0);
    }
    if (d)
        closedir(d);
    rmdir(st->dir);
}

void oci_state_release(struct oci_state *st)
{
    oci_cgroup_release(&st->cgroup);
    json_decref(st->annotations);
    st->annotations = NULL;
    if (st->lock_fd >= 0)
        close(st->lock_fd);
    st->lock_fd = -1;
}

unsigned long long oci_proc_start_time(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t r = read(fd, buf, sizeof(buf) - 1);
    if (r <= 0)
        return 0;
    buf[r] = 0;
    /* the command name may hold spaces and parentheses: skip to the last ')' */
    char *p = strrchr(buf, ')');
    if (!p)
        return 0;
    p += 2;
    char state = *p;
    if (state == 'Z' || state == 'X')
        return 0;
    unsigned long long v = 0;
    for (int field = 3; field <= 22 && p; field++) {
        if (field == 22)
            v = strtoull(p, NULL, 10);
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    return v;
}

bool oci_pid_alive(pid_t pid, unsigned long long start_time)
{
    if (pid <= 0)
        return false;
    unsigned long long t = oci_proc_start_time(pid);
    return t != 0 && (start_time == 0 || t == start_time);
}

enum oci_status oci_state_status(const struct oci_state *st)
{
    if (!oci_pid_alive(st->pid, st->start_time))
        return OCI_STOPPED;
    char fifo[4200];
    snprintf(fifo, sizeof(fifo), "%s/exec.fifo", st->dir);
    if (access(fifo, F_OK) == 0)
        return OCI_CREATED;
    if (oci_cgroup_is_frozen(&st->cgroup))
        return OCI_PAUSED;
    return OCI_RUNNING;
}

json_t *oci_state_json(const struct oci_state *st, enum oci_status status)
{
    json_t *j = json_pack("{s:s,s:s,s:s,s:i,s:s,s:s,s:s,s:s}", "ociVersion", OCI_VERSION, "id",
                          st->id, "status", oci_status_name(status), "pid",
                          status == OCI_STOPPED ? 0 : (int)st->pid, "bundle", st->bundle, "rootfs",
                          st->rootfs, "created", st->created, "owner", st->owner);
    if (st->annotations)
        json_object_set(j, "annotations", st->annotations);
    return j;
}
