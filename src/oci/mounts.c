/* The container's root filesystem: spec mounts (resolved inside the rootfs
 * with openat2(RESOLVE_IN_ROOT), so a symlink in an image cannot point a
 * mount outside it), /dev, pivot_root, masked and read-only paths. */
#include "oci/linux.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <linux/openat2.h>

#include "util/cleanup.h"
#include "util/log.h"

#ifndef MS_LAZYTIME
#define MS_LAZYTIME (1 << 25)
#endif

static int openat2_in_root(int rootfd, const char *path, int flags)
{
    struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC),
                           .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
    while (*path == '/')
        path++;
    if (!*path)
        path = ".";
    return (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
}

/* Open (creating as needed) PATH inside the root as an O_PATH fd. */
static int make_target(int rootfd, const char *path, bool is_file, vs_err *err)
{
    int fd = openat2_in_root(rootfd, path, O_PATH);
    if (fd >= 0)
        return fd;
    if (errno != ENOENT)
        return vs_error_errno(err, "cannot resolve %s in the rootfs", path);
    char buf[PATH_MAX];
    snprintf(buf, sizeof(buf), "%s", path);
    size_t len = strlen(buf);
    while (len > 1 && buf[len - 1] == '/')
        buf[--len] = 0;
    char *sl = strrchr(buf, '/');
    const char *name = sl ? sl + 1 : buf;
    if (sl)
        *sl = 0;
    int pfd = make_target(rootfd, sl && *buf ? buf : "/", false, err);
    if (pfd < 0)
        return -1;
    /* O_PATH fds cannot be used with mkdirat directly? They can: *at calls accept them. */
    if (is_file) {
        int f = openat(pfd, name, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (f < 0 && errno != EEXIST) {
            close(pfd);
            return vs_error_errno(err, "cannot create %s in the rootfs", path);
        }
        if (f >= 0)
            close(f);
    } else if (mkdirat(pfd, name, 0755) < 0 && errno != EEXIST) {
        close(pfd);
        return vs_error_errno(err, "cannot create directory %s in the rootfs", path);
    }
    close(pfd);
    fd = openat2_in_root(rootfd, path, O_PATH);
    if (fd < 0)
        return vs_error_errno(err, "cannot resolve %s in the rootfs", path);
    return fd;
}

struct mount_opts {
    unsigned long flags, clear, prop;
    bool bind, rec_bind;
    char data[1024];
};

static void parse_options(const struct oci_mount *m, struct mount_opts *o)
{
    static const struct {
        const char *n;
        bool clear;
        unsigned long f;
    } fl[] = {
        {"ro", 0, MS_RDONLY},
        {"rw", 1, MS_RDONLY},
        {"nosuid", 0, MS_NOSUID},
        {"suid", 1, MS_NOSUID},
        {"nodev", 0, MS_NODEV},
        {"dev", 1, MS_NODEV},
        {"noexec", 0, MS_NOEXEC},
        {"exec", 1, MS_NOEXEC},
        {"sync", 0, MS_SYNCHRONOUS},
        {"async", 1, MS_SYNCHRONOUS},
        {"dirsync", 0, MS_DIRSYNC},
        {"remount", 0, MS_REMOUNT},
        {"mand", 0, MS_MANDLOCK},
        {"nomand", 1, MS_MANDLOCK},
        {"atime", 1, MS_NOATIME},
        {"noatime", 0, MS_NOATIME},
        {"diratime", 1, MS_NODIRATIME},
        {"nodiratime", 0, MS_NODIRATIME},
        {"relatime", 0, MS_RELATIME},
        {"norelatime", 1, MS_RELATIME},
        {"strictatime", 0, MS_STRICTATIME},
        {"nostrictatime", 1, MS_STRICTATIME},
        {"lazytime", 0, MS_LAZYTIME},
        {"nolazytime", 1, MS_LAZYTIME},
    };
    static const struct {
        const char *n;
        unsigned long f;
    } prop[] = {
        {"private", MS_PRIVATE},       {"rprivate", MS_PRIVATE | MS_REC},
        {"shared", MS_SHARED},         {"rshared", MS_SHARED | MS_REC},
        {"slave", MS_SLAVE},           {"rslave", MS_SLAVE | MS_REC},
        {"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC},
    };
    memset(o, 0, sizeof(*o));
    for (size_t i = 0; i < m->n_options; i++) {
        const char *opt = m->options[i];
        bool done = false;
        if (!strcmp(opt, "bind") || !strcmp(opt, "rbind")) {
            o->bind = true;
            o->rec_bind |= opt[0] == 'r';
            continue;
        }
        for (size_t k = 0; k < ARRAY_SIZE(fl) && !done; k++)
            if (!strcmp(opt, fl[k].n)) {
                if (fl[k].clear) {
                    o->flags &= ~fl[k].f;
                    o->clear |= fl[k].f;
                } else
                    o->flags |= fl[k].f;
                done = true;
            }
        for (size_t k = 0; k < ARRAY_SIZE(prop) && !done; k++)
            if (!strcmp(opt, prop[k].n)) {
                o->prop |= prop[k].f;
                done = true;
            }
        if (done || !strcmp(opt, "tmpcopyup") || !strcmp(opt, "idmap") || !strcmp(opt, "ridmap") ||
            !strcmp(opt, "defaults"))
            continue;
        size_t l = strlen(o->data);
        snprintf(o->data + l, sizeof(o->data) - l, "%s%s", l ? "," : "", opt);
    }
    if (m->type && (!strcmp(m->type, "bind") || !strcmp(m->type, "rbind"))) {
        o->bind = true;
        o->rec_bind |= m->type[0] == 'r';
    }
}

/* Flags a remount in a user namespace must keep (the kernel locks them). */
static unsigned long locked_flags(const char *target)
{
    static const struct {
        unsigned long st, ms;
    } map[] = {
        {ST_NOSUID, MS_NOSUID},     {ST_NODEV, MS_NODEV},     {ST_NOEXEC, MS_NOEXEC},
        {ST_RDONLY, MS_RDONLY},     {ST_NOATIME, MS_NOATIME}, {ST_NODIRATIME, MS_NODIRATIME},
        {ST_RELATIME, MS_RELATIME},
    };
    struct statvfs sv;
    unsigned long f = 0;
    if (statvfs(target, &sv) < 0)
        return 0;
    for (size_t i = 0; i < ARRAY_SIZE(map); i++)
        if (sv.f_flag & map[i].st)
            f |= map[i].ms;
    return f;
}

static int remount_bind(const char *target, unsigned long flags, vs_err *err)
{
    if (mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | flags, NULL) == 0)
        return 0;
    if (errno == EPERM &&
        mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | flags | locked_flags(target), NULL) == 0)
        return 0;
    return vs_error_errno(err, "cannot remount %s", target);
}

static int bind_fd(const char *src, int fd, bool rec, unsigned long flags, vs_err *err,
                   const char *what)
{
    char tgt[64];
    snprintf(tgt, sizeof(tgt), "/proc/self/fd/%d", fd);
    if (mount(src, tgt, NULL, MS_BIND | (rec ? MS_REC : 0), NULL) < 0)
        return vs_error_errno(err, "cannot bind-mount %s on %s", src, what);
    if (flags & ~(MS_REC | MS_BIND)) {
        /* the fd still points at the covered directory: use the path */
        return remount_bind(what, flags, err);
    }
    return 0;
}

static int mount_cgroup(const struct oci_rootfs_opts *o, const char *dst, const char *host_dst,
                        struct mount_opts *mo, vs_err *err)
{
    unsigned long fl = (mo->flags & ~MS_RDONLY) | MS_NOSUID | MS_NODEV | MS_NOEXEC;
    bool only_v2 = o->n_cgroups == 1 && o->cgroup_names[0][0] == 0;
    if (o->n_cgroups == 0)
        return 0;
    if (only_v2) {
        if (o->cgroupns && mount("cgroup2", host_dst, "cgroup2", mo->flags | fl, NULL) == 0)
            return 0;
        if (mount(o->cgroup_dirs[0], host_dst, NULL, MS_BIND | MS_REC, NULL) < 0)
            return vs_error_errno(err, "cannot mount cgroup on %s", dst);
        return mo->flags & MS_RDONLY ? remount_bind(host_dst, MS_RDONLY | fl, err) : 0;
    }
    if (mount("tmpfs", host_dst, "tmpfs", fl, "mode=755") < 0)
        return vs_error_errno(err, "cannot mount tmpfs on %s", dst);
    for (size_t i = 0; i < o->n_cgroups; i++) {
        const char *name = o->cgroup_names[i];
        char sub[PATH_MAX + 256];
        if (!*name)
            name = "unified";
        else if (!strncmp(name, "name=", 5))
            name += 5;
        snprintf(sub, sizeof(sub), "%s/%s", host_dst, name);
        if (mkdir(sub, 0755) < 0 && errno != EEXIST)
            return vs_error_errno(err, "cannot create %s", sub);
        if (mount(o->cgroup_dirs[i], sub, NULL, MS_BIND | MS_REC, NULL) < 0)
            return vs_error_errno(err, "cannot bind the cgroup %s", name);
        if (mo->flags & MS_RDONLY && remount_bind(sub, MS_RDONLY | fl, err) < 0)
            return -1;
    }
    if (mo->flags & MS_RDONLY &&
        mount(NULL, host_dst, NULL, MS_REMOUNT | MS_RDONLY | fl, "mode=755") < 0)
        return vs_error_errno(err, "cannot make %s read-only", dst);
    return 0;
}

static int do_mount(const struct oci_rootfs_opts *o, int rootfd, const struct oci_mount *m,
                    vs_err *err)
{
    struct mount_opts mo;
    parse_options(m, &mo);
    const char *type = m->type && *m->type && strcmp(m->type, "none") && strcmp(m->type, "bind") &&
                               strcmp(m->type, "rbind")
                           ? m->type
                           : NULL;
    bool is_file = false;
    if (mo.bind) {
        struct stat st;
        if (!m->source || stat(m->source, &st) < 0)
            return vs_error_errno(err, "mount %s: source %s", m->destination,
                                  m->source ? m->source : "(none)");
        is_file = !S_ISDIR(st.st_mode);
    }
    cleanup_close int fd = make_target(rootfd, m->destination, is_file, err);
    if (fd < 0)
        return vs_error_prefix(err, "mount %s: ", m->destination);
    /* the resolved path, so remounts and propagation changes address it */
    char proc[64], host_dst[PATH_MAX];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    ssize_t l = readlink(proc, host_dst, sizeof(host_dst) - 1);
    if (l < 0)
        return vs_error_errno(err, "mount %s: readlink", m->destination);
    host_dst[l] = 0;
    if (mo.bind) {
        if (bind_fd(m->source, fd, mo.rec_bind, mo.flags, err, host_dst) < 0)
            return -1;
    } else if (type && !strcmp(type, "cgroup")) {
        if (mount_cgroup(o, m->destination, host_dst, &mo, err) < 0)
            return -1;
    } else {
        const char *data = mo.data[0] ? mo.data : NULL;
        if (mount(m->source ? m->source : type, host_dst, type, mo.flags, data) < 0) {
            int e = errno;
            if (type && !strcmp(type, "sysfs") && (e == EPERM || e == EACCES)) {
                /* sysfs needs a network namespace we own: bind the host's */
                if (mount("/sys", host_dst, NULL, MS_BIND | MS_REC, NULL) < 0)
                    return vs_error_errno(err, "mount %s: sysfs (and bind of /sys)",
                                          m->destination);
                if (mo.flags & MS_RDONLY)
                    remount_bind(host_dst, mo.flags, NULL);
            } else if (type && !strcmp(type, "mqueue") && (e == EPERM || e == EACCES)) {
                vs_debug("mount %s: mqueue not permitted, skipped", m->destination);
            } else if (type && !strcmp(type, "devpts") && e == EINVAL && data &&
                       strstr(data, "gid=")) {
                /* gid=5 is unmapped in a single-id user namespace: drop it */
                char d2[1024], *w = d2;
                for (const char *p = data; *p;) {
                    const char *c = strchr(p, ',');
                    size_t n = c ? (size_t)(c - p) : strlen(p);
                    if (strncmp(p, "gid=", 4)) {
                        if (w != d2)
                            *w++ = ',';
                        memcpy(w, p, n);
                        w += n;
                    }
                    p += n + (c ? 1 : 0);
                }
                *w = 0;
                if (mount("devpts", host_dst, "devpts", mo.flags, d2) < 0)
                    return vs_error_errno(err, "mount %s (devpts)", m->destination);
            } else {
                errno = e;
                return vs_error_errno(err, "mount %s (%s)", m->destination, type ? type : "none");
            }
        }
    }
    if (mo.prop && mount(NULL, host_dst, NULL, mo.prop, NULL) < 0)
        return vs_error_errno(err, "mount %s: cannot set propagation", m->destination);
    return 0;
}

static int make_device(int rootfd, const char *path, char type, int64_t maj, int64_t min,
                       uint32_t mode, uid_t uid, gid_t gid, bool bind, vs_err *err)
{
    if (bind) {
        /* no mknod in a user namespace: bind the host's node instead */
        int fd = make_target(rootfd, path, true, err);
        if (fd < 0)
            return -1;
        char host[64], tgt[PATH_MAX], proc[64];
        snprintf(host, sizeof(host), "%s", path);
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        ssize_t l = readlink(proc, tgt, sizeof(tgt) - 1);
        if (l < 0) {
            close(fd);
            return vs_error_errno(err, "device %s", path);
        }
        tgt[l] = 0;
        close(fd);
        if (mount(host, tgt, NULL, MS_BIND, NULL) < 0)
            return vs_error_errno(err, "cannot bind device %s", path);
        return 0;
    }
    char parent[PATH_MAX];
    snprintf(parent, sizeof(parent), "%s", path);
    char *sl = strrchr(parent, '/');
    *sl = 0;
    cleanup_close int pfd = make_target(rootfd, *parent ? parent : "/", false, err);
    if (pfd < 0)
        return -1;
    mode_t ft = type == 'b' ? S_IFBLK : type == 'p' ? S_IFIFO : S_IFCHR;
    unlinkat(pfd, sl + 1, 0);
    if (mknodat(pfd, sl + 1, ft | (mode & 07777), makedev((unsigned)maj, (unsigned)min)) < 0)
        return vs_error_errno(err, "cannot create device %s", path);
    if (fchownat(pfd, sl + 1, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
        return vs_error_errno(err, "cannot chown device %s", path);
    fchmodat(pfd, sl + 1, mode & 07777, 0);
    return 0;
}

static int setup_dev(const struct oci_rootfs_opts *o, int rootfd, vs_err *err)
{
    static const struct {
        const char *path;
        int maj, min;
    } defaults[] = {
        {"/dev/null", 1, 3},   {"/dev/zero", 1, 5},    {"/dev/full", 1, 7},
        {"/dev/random", 1, 8}, {"/dev/urandom", 1, 9}, {"/dev/tty", 5, 0},
    };
    const struct oci_spec *s = o->spec;
    bool bind = o->userns || geteuid() != 0;
    cleanup_close int devfd = openat2_in_root(rootfd, "/dev", O_PATH | O_DIRECTORY);
    if (devfd < 0)
        return 0; /* no /dev in the image and none mounted: nothing to populate */
    for (size_t i = 0; i < ARRAY_SIZE(defaults); i++) {
        bool in_spec = false;
        for (size_t k = 0; k < s->n_devices; k++)
            if (!strcmp(s->devices[k].path, defaults[i].path))
                in_spec = true;
        if (in_spec)
            continue;
        if (make_device(rootfd, defaults[i].path, 'c', defaults[i].maj, defaults[i].min, 0666, 0, 0,
                        bind, err) < 0)
            return -1;
    }
    for (size_t k = 0; k < s->n_devices; k++) {
        const struct oci_device *d = &s->devices[k];
        if (strncmp(d->path, "/dev/", 5) || strstr(d->path, ".."))
            return vs_error(err, EINVAL, "device %s: must be below /dev", d->path);
        if (make_device(rootfd, d->path, d->type == 'u' ? 'c' : d->type, d->major, d->minor,
                        d->has_mode ? d->file_mode : 0666, d->has_uid ? d->uid : 0,
                        d->has_gid ? d->gid : 0, bind, err) < 0)
            return -1;
    }
    static const struct {
        const char *target, *name;
    } links[] = {
        {"/proc/self/fd", "fd"},       {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
        {"/proc/self/fd/2", "stderr"}, {"/proc/kcore", "core"},      {"pts/ptmx", "ptmx"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(links); i++) {
        if (symlinkat(links[i].target, devfd, links[i].name) < 0 && errno != EEXIST)
            return vs_error_errno(err, "cannot create /dev/%s", links[i].name);
    }
    if (o->console_slave) {
        int fd = make_target(rootfd, "/dev/console", true, err);
        if (fd < 0)
            return -1;
        int r = bind_fd(o->console_slave, fd, false, 0, err, "/dev/console");
        close(fd);
        if (r < 0)
            return -1;
    }
    return 0;
}

/* linux.rootfsPropagation as mount flags; 0 when unset. */
static int rootfs_propagation(const struct oci_spec *s, unsigned long *prop, vs_err *err)
{
    static const struct {
        const char *n;
        unsigned long f;
    } map[] = {
        {"private", MS_PRIVATE},       {"rprivate", MS_PRIVATE | MS_REC},
        {"shared", MS_SHARED},         {"rshared", MS_SHARED | MS_REC},
        {"slave", MS_SLAVE},           {"rslave", MS_SLAVE | MS_REC},
        {"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC},
    };
    const char *rp = s->rootfs_propagation;
    *prop = 0;
    if (!rp || !*rp)
        return 0;
    for (size_t i = 0; i < ARRAY_SIZE(map); i++)
        if (!strcmp(rp, map[i].n)) {
            *prop = map[i].f;
            return 0;
        }
    return vs_error(err, EINVAL, "linux.rootfsPropagation '%s' is unknown", rp);
}

int oci_rootfs_prepare(const struct oci_rootfs_opts *o, vs_err *err)
{
    const struct oci_spec *s = o->spec;
    unsigned long prop;
    if (rootfs_propagation(s, &prop, err) < 0)
        return -1;
    /* Our copy of the host's mounts becomes slave (private when asked):
     * nothing we mount propagates to the host. Shared and unbindable are
     * the container root's own propagation, set once it is the root
     * (oci_rootfs_finish): pivot_root refuses a shared new root, and an
     * unbindable tree cannot be bind-mounted onto the rootfs. */
    unsigned long host_prop = (prop & MS_PRIVATE) ? MS_PRIVATE | MS_REC : MS_SLAVE | MS_REC;
    if (mount(NULL, "/", NULL, host_prop, NULL) < 0)
        return vs_error_errno(err, "cannot change the propagation of /");
    if (mount(o->rootfs, o->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
        return vs_error_errno(err, "cannot bind-mount the rootfs %s", o->rootfs);
    cleanup_close int rootfd = open(o->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        return vs_error_errno(err, "cannot open the rootfs %s", o->rootfs);
    for (size_t i = 0; i < s->n_mounts; i++)
        if (do_mount(o, rootfd, &s->mounts[i], err) < 0)
            return -1;
    if (setup_dev(o, rootfd, err) < 0)
        return -1;
    return 0;
}

int oci_rootfs_pivot(const struct oci_rootfs_opts *o, vs_err *err)
{
    if (!o->spec->ns[OCI_NS_MNT].present) {
        /* no mount namespace: pivot_root would move the host's root */
        if (chdir(o->rootfs) < 0 || chroot(".") < 0 || chdir("/") < 0)
            return vs_error_errno(err, "cannot chroot into %s", o->rootfs);
        return 0;
    }
    if (o->no_pivot) {
        /* --no-pivot (a root on ramfs cannot be pivoted away from) */
        if (chdir(o->rootfs) < 0 || mount(o->rootfs, "/", NULL, MS_MOVE, NULL) < 0 ||
            chroot(".") < 0 || chdir("/") < 0)
            return vs_error_errno(err, "cannot move the rootfs onto / (--no-pivot)");
        return 0;
    }
    if (chdir(o->rootfs) < 0)
        return vs_error_errno(err, "cannot enter %s", o->rootfs);
    /* pivot_root(".", ".") stacks the old root on the new one; detach it */
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        return vs_error_errno(err, "pivot_root into %s", o->rootfs);
    /* no rslave of "." here (runc does one): "." is the new root's mount,
     * so it would also strip "shared" from the container's own mounts. The
     * old root is already slave or private (oci_rootfs_prepare made "/"
     * so), so detaching it cannot propagate to the host. */
    if (umount2(".", MNT_DETACH) < 0)
        return vs_error_errno(err, "cannot detach the old root");
    if (chdir("/") < 0)
        return vs_error_errno(err, "chdir /");
    return 0;
}

int oci_sysctl_apply(const struct oci_spec *s, vs_err *err)
{
    for (size_t i = 0; i < s->n_sysctls; i++) {
        char path[PATH_MAX];
        int n = snprintf(path, sizeof(path), "/proc/sys/%s", s->sysctls[i].key);
        for (char *p = path + 10; p < path + n; p++)
            if (*p == '.')
                *p = '/';
        cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, s->sysctls[i].value, strlen(s->sysctls[i].value)) < 0)
            return vs_error_errno(err, "sysctl %s", s->sysctls[i].key);
    }
    return 0;
}

/* A mount option's propagation flag, applied again after a recursive root
 * propagation so that each mount keeps what its own options asked. */
static int reapply_mount_propagation(const struct oci_spec *s, vs_err *err)
{
    for (size_t i = 0; i < s->n_mounts; i++) {
        struct mount_opts mo;
        parse_options(&s->mounts[i], &mo);
        if (mo.prop && mount(NULL, s->mounts[i].destination, NULL, mo.prop, NULL) < 0)
            return vs_error_errno(err, "mount %s: cannot set propagation",
                                  s->mounts[i].destination);
    }
    return 0;
}

int oci_rootfs_finish(const struct oci_rootfs_opts *o, vs_err *err)
{
    const struct oci_spec *s = o->spec;
    for (size_t i = 0; i < s->n_masked_paths; i++) {
        const char *p = s->masked_paths[i];
        struct stat st;
        if (stat(p, &st) < 0)
            continue;
        int r = S_ISDIR(st.st_mode) ? mount("tmpfs", p, "tmpfs", MS_RDONLY, "size=0")
                                    : mount("/dev/null", p, NULL, MS_BIND, NULL);
        if (r < 0 && errno != ENOENT)
            return vs_error_errno(err, "cannot mask %s", p);
    }
    for (size_t i = 0; i < s->n_readonly_paths; i++) {
        const char *p = s->readonly_paths[i];
        if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0) {
            if (errno == ENOENT)
                continue;
            return vs_error_errno(err, "cannot make %s read-only", p);
        }
        if (remount_bind(p, MS_RDONLY | MS_REC | MS_NOSUID | MS_NODEV | MS_NOEXEC, err) < 0)
            return -1;
    }
    if (s->root_readonly && remount_bind("/", MS_RDONLY, err) < 0)
        return vs_error_prefix(err, "read-only root: ");
    /* the root's own propagation last: an unbindable root would refuse the
     * binds above, and pivot_root a shared one */
    unsigned long prop;
    if (rootfs_propagation(s, &prop, err) < 0)
        return -1;
    if (prop && mount(NULL, "/", NULL, prop, NULL) < 0)
        return vs_error_errno(err, "cannot make the root %s", s->rootfs_propagation);
    if ((prop & MS_REC) && reapply_mount_propagation(s, err) < 0)
        return -1;
    return 0;
}

int oci_find_exec(const char *argv0, const char **env, char *out, size_t len, vs_err *err)
{
    if (strchr(argv0, '/')) {
        if (access(argv0, X_OK) < 0)
            return vs_error_errno(err, "cannot execute %s", argv0);
        snprintf(out, len, "%s", argv0);
        return 0;
    }
    const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    for (size_t i = 0; env && env[i]; i++)
        if (!strncmp(env[i], "PATH=", 5))
            path = env[i] + 5;
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *save, *d = strtok_r(tmp, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(out, len, "%s/%s", *d ? d : ".", argv0);
        struct stat st;
        if (stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0)
            return 0;
    }
    return vs_error(err, ENOENT, "exec: \"%s\": executable file not found in $PATH", argv0);
}
