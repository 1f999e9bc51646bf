/* create: the container's init is cloned straight into its new namespaces,
 * set up (mounts, pivot_root, identity), and then blocks opening exec.fifo
 * for writing until `start` opens it for reading (runc's scheme). The init
 * keeps its end open until execve (close-on-exec), so `start` reads until
 * EOF and returns only once the user's process runs (a signal sent right
 * after start reaches that process, not the runtime's init code). `run`
 * needs no fifo: the same happens over the sync socket. The parent writes
 * the id maps, places the init in its cgroups and runs the createRuntime
 * hooks; a failure anywhere kills the init and removes every trace (state
 * directory, cgroups). */
#include "oci/container.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "oci/cgroup.h"
#include "oci/linux.h"
#include "oci/process.h"
#include "oci/state.h"
#include "util/cleanup.h"
#include "util/io.h"
#include "util/log.h"
#include "util/unix_socket.h"

struct init_ctx {
    const struct oci_spec *spec;
    struct oci_state *st;
    const char *rootfs;
    int sync;    /* child end */
    int fifo_fd; /* O_PATH fd of exec.fifo; -1 for run (released over sync) */
    int proc_fd; /* the host's /proc, to reopen the fifo after pivot/chroot */
    int console; /* connected console socket or -1 */
    bool userns;
    bool has_parent_hooks;
    bool no_pivot;
    bool joined; /* namespaces by path already joined (two-stage start) */
    int preserve_fds;
};

static int write_proc_file(pid_t pid, const char *file, const char *data, vs_err *err)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
    cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, data, strlen(data)) < 0)
        return vs_error_errno(err, "cannot write %s", path);
    return 0;
}

/* The id map lines "container host size"; with no mapping given, root in
 * the container is `self` outside. */
static void format_id_map(char *buf, size_t size, const struct oci_id_map *m, size_t n,
                          unsigned self)
{
    size_t off = 0;
    if (n == 0)
        off += (size_t)snprintf(buf, size, "0 %u 1\n", self);
    for (size_t i = 0; i < n && off < size - 64; i++)
        off += (size_t)snprintf(buf + off, size - off, "%u %u %u\n", m[i].container_id,
                                m[i].host_id, m[i].size);
}

static int write_id_maps(pid_t pid, const struct oci_spec *s, vs_err *err)
{
    char buf[8192];
    uid_t euid = geteuid();
    format_id_map(buf, sizeof(buf), s->uid_maps, s->n_uid_maps, (unsigned)euid);
    if (write_proc_file(pid, "uid_map", buf, err) < 0)
        return vs_error_prefix(err, "user namespace: ");
    if (euid != 0 && write_proc_file(pid, "setgroups", "deny", err) < 0)
        return -1;
    format_id_map(buf, sizeof(buf), s->gid_maps, s->n_gid_maps, (unsigned)getegid());
    if (write_proc_file(pid, "gid_map", buf, err) < 0)
        return vs_error_prefix(err, "user namespace: ");
    return 0;
}

static char *state_string(struct oci_state *st, enum oci_status status)
{
    json_t *j = oci_state_json(st, status);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

/* The state for hooks run in the container's namespaces: the pid is the one
 * the container sees (runtime.md, State). */
static char *state_string_inside(struct oci_state *st, enum oci_status status)
{
    pid_t host = st->pid;
    st->pid = getpid();
    char *s = state_string(st, status);
    st->pid = host;
    return s;
}

/* A new time namespace with the spec's offsets, entered by the init itself:
 * the offsets must be written before any process is in the namespace, and
 * making it here (in the container's user namespace, where the init holds
 * CAP_SYS_ADMIN and CAP_SYS_TIME) works rootless too. */
static int make_time_namespace(const struct oci_spec *s, vs_err *err)
{
    if (unshare(oci_ns_clone_flag(OCI_NS_TIME)) < 0)
        return vs_error_errno(err, "cannot create a time namespace");
    char off[128];
    int n = 0;
    if (s->time_monotonic.present)
        n += snprintf(off + n, sizeof(off) - (size_t)n, "monotonic %lld %u\n",
                      (long long)s->time_monotonic.secs, s->time_monotonic.nanosecs);
    if (s->time_boottime.present)
        n += snprintf(off + n, sizeof(off) - (size_t)n, "boottime %lld %u\n",
                      (long long)s->time_boottime.secs, s->time_boottime.nanosecs);
    if (n) {
        /* "self": our pid in the host's /proc, seen from a new pid namespace,
         * is not getpid() */
        cleanup_close int ofd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
        if (ofd < 0 || write(ofd, off, (size_t)n) < 0)
            return vs_error_errno(err, "cannot write the time namespace offsets");
    }
    cleanup_close int fd = open("/proc/self/ns/time_for_children", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, oci_ns_clone_flag(OCI_NS_TIME)) < 0)
        return vs_error_errno(err, "cannot enter the new time namespace");
    return 0;
}

/* Join the namespaces given by path, the user namespace first. */
static int join_namespaces(const struct oci_spec *s, vs_err *err)
{
    static const enum oci_ns_type order[] = {OCI_NS_USER, OCI_NS_IPC,    OCI_NS_UTS,
                                             OCI_NS_NET,  OCI_NS_CGROUP, OCI_NS_MNT};
    for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
        const struct oci_namespace *ns = &s->ns[order[i]];
        if (!ns->present || !ns->path)
            continue;
        int nfd = open(ns->path, O_RDONLY | O_CLOEXEC);
        if (nfd < 0 || setns(nfd, oci_ns_clone_flag(order[i])) < 0) {
            vs_error_errno(err, "cannot join the %s namespace %s", oci_ns_name(order[i]), ns->path);
            if (nfd >= 0)
                close(nfd);
            return -1;
        }
        close(nfd);
    }
    return 0;
}

/* Two-stage start, for a new user namespace plus namespaces joined by
 * path: those must be joined while we are still privileged over them, so
 * this first stage joins them, makes the user namespace (the parent writes
 * its maps), then the other new namespaces, and forks the init (so it is
 * PID 1 of a new pid namespace owned by the new user namespace). Returns
 * in the init; the first stage reports the init's pid and exits. */
static void stage1(struct init_ctx *c, int flags)
{
    vs_err err = {0};
    struct oci_sync_msg m;
    int fd = c->sync;
    if (join_namespaces(c->spec, &err) < 0)
        oci_sync_fail(fd, &err);
    if (unshare(CLONE_NEWUSER) < 0) {
        vs_error_errno(&err, "cannot create the user namespace");
        oci_sync_fail(fd, &err);
    }
    oci_sync_send(fd, OCI_SYNC_USERNS, 0, NULL);
    if (oci_sync_recv(fd, &m) < 0 || m.type != OCI_SYNC_MAPS_DONE)
        _exit(1);
    if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) {
        vs_error_errno(&err, "user namespace: uid/gid 0 is not mapped");
        oci_sync_fail(fd, &err);
    }
    if (unshare(flags & ~(CLONE_NEWUSER | CLONE_NEWCGROUP)) < 0) {
        vs_error_errno(&err, "cannot create the container's namespaces");
        oci_sync_fail(fd, &err);
    }
    pid_t init = fork();
    if (init < 0) {
        vs_error_errno(&err, "fork");
        oci_sync_fail(fd, &err);
    }
    if (init == 0) {
        c->joined = true;
        return;
    }
    oci_sync_send(fd, OCI_SYNC_PID, init, NULL);
    _exit(0);
}

/* A failure after the init was released: the error goes to the run parent
 * (sync socket) or to `start` (the fifo, after the "0"). */
__attribute__((noreturn)) static void late_fail(int fd, bool via_fifo, const vs_err *err)
{
    if (!via_fifo)
        oci_sync_fail(fd, err);
    dprintf(fd, "%s", err->msg);
    _exit(127);
}

/* The container's init, in its new namespaces. Never returns. */
__attribute__((noreturn)) static void container_init(struct init_ctx *c)
{
    const struct oci_spec *s = c->spec;
    vs_err err = {0};
    struct oci_sync_msg m;
    int fd = c->sync;

    if (!c->joined)
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    oci_unblock_all_signals();
    /* the state lock belongs to the invocation, not to the init */
    if (c->st->lock_fd >= 0) {
        close(c->st->lock_fd);
        c->st->lock_fd = -1;
    }
    /* the host's /proc, for reopening exec.fifo wherever the root ends up
     * (a container without a mount namespace has no /proc of its own) */
    if (c->fifo_fd >= 0) {
        c->proc_fd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (c->proc_fd < 0) {
            vs_error_errno(&err, "cannot open /proc");
            oci_sync_fail(fd, &err);
        }
    }
    if (oci_sync_recv(fd, &m) < 0 || m.type != OCI_SYNC_GO)
        _exit(1);
    c->st->pid = m.value;
    if (c->userns) {
        /* become the container's root (the host uid may be unmapped) */
        if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) {
            vs_error_errno(&err, "user namespace: uid/gid 0 is not mapped");
            oci_sync_fail(fd, &err);
        }
    }
    if (s->ns[OCI_NS_TIME].present && !s->ns[OCI_NS_TIME].path && make_time_namespace(s, &err) < 0)
        oci_sync_fail(fd, &err);
    /* the cgroup namespace is made once we are in our cgroup, so that
     * cgroup becomes the namespace's root */
    if (s->ns[OCI_NS_CGROUP].present && !s->ns[OCI_NS_CGROUP].path &&
        unshare(CLONE_NEWCGROUP) < 0) {
        vs_error_errno(&err, "cannot create the cgroup namespace");
        oci_sync_fail(fd, &err);
    }
    if (!c->joined && join_namespaces(s, &err) < 0)
        oci_sync_fail(fd, &err);
    if (s->ns[OCI_NS_UTS].present) {
        if (s->hostname && sethostname(s->hostname, strlen(s->hostname)) < 0) {
            vs_error_errno(&err, "cannot set hostname");
            oci_sync_fail(fd, &err);
        }
        if (s->domainname && setdomainname(s->domainname, strlen(s->domainname)) < 0) {
            vs_error_errno(&err, "cannot set domainname");
            oci_sync_fail(fd, &err);
        }
    } else if (s->hostname && *s->hostname) {
        vs_error(&err, EINVAL, "hostname is set but there is no new uts namespace");
        oci_sync_fail(fd, &err);
    }
    struct oci_rootfs_opts ro = {.spec = s,
                                 .rootfs = c->rootfs,
                                 .userns = c->userns,
                                 .cgroupns = s->ns[OCI_NS_CGROUP].present,
                                 .no_pivot = c->no_pivot};
    for (size_t i = 0; i < c->st->cgroup.n && i < 16; i++) {
        ro.cgroup_dirs[ro.n_cgroups] = c->st->cgroup.h[i].dir;
        ro.cgroup_names[ro.n_cgroups++] = c->st->cgroup.h[i].controllers;
    }
    /* the terminal comes from the container's own devpts */
    int master = -1, slave = -1;
    char slave_path[64];
    if (s->ns[OCI_NS_MNT].present) {
        if (s->process.terminal) {
            /* mount first, so the pty comes from the container's devpts,
             * then bind its slave on /dev/console */
            if (oci_rootfs_prepare(&ro, &err) < 0)
                oci_sync_fail(fd, &err);
            char ptmx[PATH_MAX + 32];
            snprintf(ptmx, sizeof(ptmx), "%s/dev/pts/ptmx", c->rootfs);
            if (oci_pty_open(ptmx, &master, &slave, &err) < 0)
                oci_sync_fail(fd, &err);
            snprintf(slave_path, sizeof(slave_path), "/proc/self/fd/%d", slave);
            char console[PATH_MAX + 32];
            snprintf(console, sizeof(console), "%s/dev/console", c->rootfs);
            int cf = open(console, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
            if (cf >= 0)
                close(cf);
            if (mount(slave_path, console, NULL, MS_BIND, NULL) < 0) {
                vs_error_errno(&err, "cannot bind the terminal on /dev/console");
                oci_sync_fail(fd, &err);
            }
        } else if (oci_rootfs_prepare(&ro, &err) < 0)
            oci_sync_fail(fd, &err);
    }
    if (s->process.terminal && master < 0 && oci_pty_open(NULL, &master, &slave, &err) < 0)
        oci_sync_fail(fd, &err);
    if (master >= 0) {
        if (oci_send_fd(c->console, master, "", 0) < 0) {
            vs_error_errno(&err, "cannot send the terminal to the console socket");
            oci_sync_fail(fd, &err);
        }
        close(master);
        close(c->console);
    }
    if (c->has_parent_hooks) {
        oci_sync_send(fd, OCI_SYNC_HOOKS, 0, NULL);
        if (oci_sync_recv(fd, &m) < 0 || m.type != OCI_SYNC_HOOKS_DONE)
            _exit(1);
    }
    if (s->hooks.n_create_container) {
        cleanup_free char *state = state_string_inside(c->st, OCI_CREATED);
        if (oci_hooks_run("createContainer", s->hooks.create_container, s->hooks.n_create_container,
                          state, &err) < 0) {
            oci_sync_send(fd, OCI_SYNC_HOOK_FAILED, err.code, err.msg);
            _exit(1);
        }
    }
    if (!s->ns[OCI_NS_MNT].present && oci_sysctl_apply(s, &err) < 0)
        oci_sync_fail(fd, &err); /* through the host's /proc, before the chroot */
    if (oci_rootfs_pivot(&ro, &err) < 0 ||
        (s->ns[OCI_NS_MNT].present &&
         (oci_sysctl_apply(s, &err) < 0 || oci_rootfs_finish(&ro, &err) < 0)))
        oci_sync_fail(fd, &err);
    if (slave >= 0 && oci_process_setup_tty(slave, &s->process, &err) < 0)
        oci_sync_fail(fd, &err);
    int notify_fd = -1;
    bool nnp = s->process.no_new_privileges;
    bool seccomp_early = s->seccomp.present && (!nnp || s->seccomp.uses_notify);
    if (seccomp_early && oci_seccomp_load(&s->seccomp, nnp, &notify_fd, &err) < 0)
        oci_sync_fail(fd, &err);
    if (notify_fd >= 0) {
        struct oci_sync_msg nm = {.type = OCI_SYNC_SECCOMP};
        oci_send_fd(fd, notify_fd, (const char *)&nm, sizeof(nm));
        close(notify_fd);
    }
    if (s->process.caps.present && oci_caps_drop_bounding(&s->process.caps, &err) < 0)
        oci_sync_fail(fd, &err);
    if (oci_process_set_identity(&s->process, c->userns, &err) < 0)
        oci_sync_fail(fd, &err);
    if (s->process.caps.present && oci_caps_apply(&s->process.caps, &err) < 0)
        oci_sync_fail(fd, &err);
    if (nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        vs_error_errno(&err, "cannot set no_new_privs");
        oci_sync_fail(fd, &err);
    }
    const char *cwd = s->process.cwd ? s->process.cwd : "/";
    if (chdir(cwd) < 0) {
        vs_error_errno(&err, "cannot change to the working directory %s", cwd);
        oci_sync_fail(fd, &err);
    }
    char exe[PATH_MAX];
    if (oci_find_exec(s->process.args[0], s->process.env, exe, sizeof(exe), &err) < 0)
        oci_sync_fail(fd, &err);
    /* after READY the parent may exit (create): nothing may kill us then */
    prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
    oci_sync_send(fd, OCI_SYNC_READY, 0, NULL);
    /* from here on a failure is reported to whoever started us: the run
     * parent over the sync socket, or `start` through the fifo */
    int report = fd;
    bool via_fifo = c->fifo_fd >= 0;
    if (!via_fifo) {
        if (oci_sync_recv(fd, &m) < 0 || m.type != OCI_SYNC_START)
            _exit(1);
    } else {
        close(fd);
        char fifo[64];
        snprintf(fifo, sizeof(fifo), "self/fd/%d", c->fifo_fd);
        /* blocks until `start` opens the other end; kept open (close on
         * exec) so that `start` sees EOF once the process runs */
        report = openat(c->proc_fd, fifo, O_WRONLY | O_CLOEXEC);
        if (report < 0) {
            dprintf(2, "vessel: cannot open exec.fifo: %s\n", strerror(errno));
            _exit(127);
        }
        close(c->proc_fd);
        close(c->fifo_fd);
        if (write(report, "0", 1) != 1)
            _exit(127);
    }
    if (s->hooks.n_start_container) {
        cleanup_free char *state = state_string_inside(c->st, OCI_CREATED);
        if (oci_hooks_run("startContainer", s->hooks.start_container, s->hooks.n_start_container,
                          state, &err) < 0)
            late_fail(report, via_fifo, &err);
    }
    if (s->seccomp.present && !seccomp_early &&
        oci_seccomp_load(&s->seccomp, nnp, &notify_fd, &err) < 0)
        late_fail(report, via_fifo, &err);
    const char *empty[] = {NULL};
    execve(exe, (char *const *)s->process.args,
           (char *const *)(s->process.env ? s->process.env : empty));
    vs_error_errno(&err, "exec %s", exe);
    late_fail(report, via_fifo, &err);
}

/* Forward a seccomp notify fd with the container state to the listener. */
static void send_seccomp_listener(const struct oci_spec *s, struct oci_state *st, int nfd)
{
    vs_err e;
    int sock = vs_unix_connect(s->seccomp.listener_path, &e);
    if (sock < 0) {
        vs_warn("seccomp listener: %s", e.msg);
        return;
    }
    json_t *j =
        json_pack("{s:s,s:[s],s:s,s:i,s:o}", "ociVersion", OCI_VERSION, "fds", "seccompFd",
                  "metadata", s->seccomp.listener_metadata ? s->seccomp.listener_metadata : "",
                  "pid", (int)st->pid, "state", oci_state_json(st, OCI_CREATING));
    char *txt = json_dumps(j, JSON_COMPACT);
    oci_send_fd(sock, nfd, txt, strlen(txt));
    free(txt);
    json_decref(j);
    close(sock);
}

/* What create leaves to its caller. For run, the spec stays loaded (hooks
 * need it again) and the sync socket stays open: the init waits on it for
 * OCI_SYNC_START instead of on exec.fifo. */
struct created {
    pid_t pid;
    int master;            /* pty master for a foreground run without console socket */
    int sync;              /* run: our end of the sync socket */
    struct oci_spec *spec; /* run: the parsed config */
};

/* --secure-defaults: the config as hardened, so that exec and later
 * invocations apply the same. */
static int save_hardened_config(const struct oci_state *st, const struct oci_spec *s, vs_err *err)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/config.json", st->dir);
    cleanup_free char *text = json_dumps(s->root, JSON_COMPACT);
    cleanup_close int out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (!text || out < 0 || vs_write_full(out, text, strlen(text)) < 0)
        return vs_error_errno(err, "cannot save %s", path);
    return 0;
}

/* Save the config as given, for exec and the poststop hooks of later
 * invocations: the bytes we parsed, not a re-serialization. */
static int save_config_copy(const struct oci_state *st, const char *cfg, vs_err *err)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/config.json", st->dir);
    cleanup_close int in = open(cfg, O_RDONLY | O_CLOEXEC);
    cleanup_close int out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (in < 0 || out < 0)
        return vs_error_errno(err, "cannot save %s", path);
    for (;;) {
        ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 20, 0);
        if (n == 0)
            return 0;
        if (n < 0) {
            if (errno != EXDEV && errno != ENOSYS && errno != EINVAL)
                return vs_error_errno(err, "cannot save %s", path);
            char buf[8192];
            ssize_t r;
            while ((r = read(in, buf, sizeof(buf))) > 0)
                if (write(out, buf, (size_t)r) != r)
                    return vs_error_errno(err, "cannot save %s", path);
            return r < 0 ? vs_error_errno(err, "cannot save %s", path) : 0;
        }
    }
}

/* Create the container. For a foreground run with a terminal and no
 * console socket, c->master gets the pty. */
static int do_create(const struct oci_create_opts *o, bool run, struct created *c_out,
                     struct oci_state *st, vs_err *err)
{
    c_out->pid = -1;
    c_out->master = -1;
    c_out->sync = -1;
    c_out->spec = NULL;
    char bundle[PATH_MAX], cfg[PATH_MAX + 16], rootfs[PATH_MAX + 16];
    if (!realpath(o->bundle ? o->bundle : ".", bundle))
        return vs_error_errno(err, "bundle %s", o->bundle ? o->bundle : ".");
    snprintf(cfg, sizeof(cfg), "%s/config.json", bundle);
    struct oci_spec *s = oci_spec_load_opts(cfg, o->secure_defaults, err);
    if (!s)
        return -1;
    int rc = -1;
    pid_t pid = -1;
    /* our ends; the child never returns, so its copies need no cleanup */
    cleanup_close int sync_parent = -1, sync_child = -1, fifo_fd = -1, console = -1,
                      console_peer = -1;
    bool state_made = false, hook_failed = false;
    if (!s->process.present) {
        vs_error(err, EINVAL, "config.json: process: missing (create needs a process to run)");
        goto out;
    }
    if (s->root_path[0] == '/')
        snprintf(rootfs, sizeof(rootfs), "%s", s->root_path);
    else
        snprintf(rootfs, sizeof(rootfs), "%s/%s", bundle, s->root_path);
    struct stat sb;
    if (stat(rootfs, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
        vs_error(err, ENOENT, "rootfs %s does not exist or is not a directory", rootfs);
        goto out;
    }
    bool userns = s->ns[OCI_NS_USER].present && !s->ns[OCI_NS_USER].path;
    if (geteuid() != 0 && !userns && !s->ns[OCI_NS_USER].path) {
        vs_error(err, EPERM,
                 "running as a non-root user needs a user namespace in config.json "
                 "(see 'spec --rootless')");
        goto out;
    }
    if (s->process.terminal && !o->console_socket && !o->foreground) {
        vs_error(err, EINVAL,
                 "process.terminal is true: a detached container needs "
                 "--console-socket");
        goto out;
    }
    if (oci_spec_check_host(s, err) < 0)
        goto out;
    if (s->process.caps.unknown)
        vs_warn("capability %s is not known to this kernel: not granted", s->process.caps.unknown);
    if (oci_state_init(st, o->root, o->id, err) < 0)
        goto out;
    state_made = true;
    snprintf(st->bundle, sizeof(st->bundle), "%s", bundle);
    snprintf(st->rootfs, sizeof(st->rootfs), "%s", rootfs);
    st->userns = userns;
    if (s->annotations)
        st->annotations = json_incref(s->annotations);
    if ((o->secure_defaults ? save_hardened_config(st, s, err) : save_config_copy(st, cfg, err)) <
        0)
        goto out;
    if (!run) {
        char path[PATH_MAX + 64];
        snprintf(path, sizeof(path), "%s/exec.fifo", st->dir);
        /* writable by others: the init opens it after switching to the
         * container's user (the state directory itself stays 0700) */
        if (mkfifo(path, 0622) < 0 || chmod(path, 0622) < 0) {
            vs_error_errno(err, "cannot create %s", path);
            goto out;
        }
        fifo_fd = open(path, O_PATH | O_CLOEXEC);
        if (fifo_fd < 0) {
            vs_error_errno(err, "cannot open %s", path);
            goto out;
        }
    }
    if (s->has_resources || geteuid() == 0 || s->cgroups_path) {
        if (oci_cgroup_create(&st->cgroup, s->cgroups_path, o->id, geteuid() != 0, err) < 0)
            goto out;
    }
    if (s->process.terminal &&
        oci_console_open(o->console_socket, &console, &console_peer, err) < 0)
        goto out;
    if (oci_sync_pair(&sync_parent, &sync_child, err) < 0)
        goto out;
    /* Joined pid and time namespaces apply to our children (a new time
     * namespace is made by the init: make_time_namespace). */
    if (s->ns[OCI_NS_PID].present && s->ns[OCI_NS_PID].path) {
        cleanup_close int nfd = open(s->ns[OCI_NS_PID].path, O_RDONLY | O_CLOEXEC);
        if (nfd < 0 || setns(nfd, CLONE_NEWPID) < 0) {
            vs_error_errno(err, "cannot join the pid namespace %s", s->ns[OCI_NS_PID].path);
            goto out;
        }
    }
    if (s->ns[OCI_NS_TIME].present && s->ns[OCI_NS_TIME].path) {
        cleanup_close int nfd = open(s->ns[OCI_NS_TIME].path, O_RDONLY | O_CLOEXEC);
        if (nfd < 0 || setns(nfd, oci_ns_clone_flag(OCI_NS_TIME)) < 0) {
            vs_error_errno(err, "cannot join the time namespace %s", s->ns[OCI_NS_TIME].path);
            goto out;
        }
    }
    int flags = 0;
    for (int t = 0; t < OCI_NS_COUNT; t++)
        if (s->ns[t].present && !s->ns[t].path && t != OCI_NS_TIME && t != OCI_NS_CGROUP)
            flags |= oci_ns_clone_flag(t);
    bool two_stage = (flags & CLONE_NEWUSER) &&
                     (s->ns[OCI_NS_NET].path || s->ns[OCI_NS_IPC].path || s->ns[OCI_NS_UTS].path ||
                      s->ns[OCI_NS_MNT].path || s->ns[OCI_NS_CGROUP].path);
    /* the init will be our grandchild: adopt it, so run can wait for it */
    if (two_stage)
        prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    fflush(NULL);
    pid = (pid_t)syscall(SYS_clone, (unsigned long)(two_stage ? 0 : flags) | SIGCHLD, 0, NULL, NULL,
                         0);
    if (pid < 0) {
        vs_error_errno(err, "cannot create the container's namespaces");
        goto out;
    }
    if (pid == 0) {
        close(sync_parent);
        if (console_peer >= 0)
            close(console_peer);
        oci_child_keep_fds(o->preserve_fds);
        struct init_ctx c = {.spec = s,
                             .st = st,
                             .rootfs = rootfs,
                             .sync = sync_child,
                             .fifo_fd = fifo_fd,
                             .proc_fd = -1,
                             .console = console,
                             .userns = userns,
                             .has_parent_hooks =
                                 s->hooks.n_prestart + s->hooks.n_create_runtime > 0,
                             .preserve_fds = o->preserve_fds,
                             .no_pivot = o->no_pivot};
        if (two_stage)
            stage1(&c, flags);
        container_init(&c);
    }
    close(steal_fd(sync_child));
    if (console >= 0 && console_peer >= 0)
        close(steal_fd(console));
    if (two_stage) {
        pid_t first = pid;
        pid = -1;
        for (;;) {
            struct oci_sync_msg m;
            if (oci_sync_recv(sync_parent, &m) < 0) {
                vs_error(err, EIO, "container setup exited early");
                break;
            }
            if (m.type == OCI_SYNC_ERROR) {
                vs_error(err, m.value, "%s", m.msg);
                break;
            }
            if (m.type == OCI_SYNC_USERNS) {
                if (write_id_maps(first, s, err) < 0)
                    break;
                oci_sync_send(sync_parent, OCI_SYNC_MAPS_DONE, 0, NULL);
            } else if (m.type == OCI_SYNC_PID) {
                pid = m.value;
                break;
            }
        }
        waitpid(first, NULL, 0);
        if (pid < 0)
            goto out;
    }
    st->pid = pid;
    if (userns && !two_stage && write_id_maps(pid, s, err) < 0)
        goto out;
    if (st->cgroup.n &&
        (oci_cgroup_enter(&st->cgroup, pid, err) < 0 ||
         (s->has_resources && oci_cgroup_apply(&st->cgroup, &s->resources, err) < 0)))
        goto out;
    if (oci_sync_send(sync_parent, OCI_SYNC_GO, pid, NULL) < 0) {
        vs_error_errno(err, "container init vanished");
        goto out;
    }
    for (;;) {
        struct oci_sync_msg m;
        if (oci_sync_recv(sync_parent, &m) < 0) {
            int status;
            waitpid(pid, &status, 0);
            pid = -1;
            vs_error(err, EIO, "container init exited during setup");
            goto out;
        }
        if (m.type == OCI_SYNC_ERROR || m.type == OCI_SYNC_HOOK_FAILED) {
            vs_error(err, m.value, "%s", m.msg);
            hook_failed = m.type == OCI_SYNC_HOOK_FAILED;
            goto out;
        }
        if (m.type == OCI_SYNC_HOOKS) {
            /* the runtime environment exists: runtime.md's step 2 is done */
            cleanup_free char *state = state_string(st, OCI_CREATED);
            if (oci_hooks_run("prestart", s->hooks.prestart, s->hooks.n_prestart, state, err) < 0 ||
                oci_hooks_run("createRuntime", s->hooks.create_runtime, s->hooks.n_create_runtime,
                              state, err) < 0) {
                hook_failed = true;
                goto out;
            }
            oci_sync_send(sync_parent, OCI_SYNC_HOOKS_DONE, 0, NULL);
            continue;
        }
        if (m.type == OCI_SYNC_SECCOMP && m.passed_fd >= 0) {
            send_seccomp_listener(s, st, m.passed_fd);
            close(m.passed_fd);
            continue;
        }
        if (m.passed_fd >= 0)
            close(m.passed_fd);
        if (m.type == OCI_SYNC_READY)
            break;
    }
    if (console_peer >= 0) {
        c_out->master = oci_recv_fd(console_peer, NULL, 0);
        if (c_out->master < 0) {
            vs_error(err, EIO, "did not receive the container's terminal");
            goto out;
        }
    }
    st->start_time = oci_proc_start_time(pid);
    if (oci_state_save(st, err) < 0)
        goto out;
    if (o->pid_file && oci_write_pid_file(o->pid_file, pid, err) < 0)
        goto out;
    c_out->pid = pid;
    pid = -1;
    if (run) {
        c_out->sync = steal_fd(sync_parent);
        c_out->spec = steal_ptr(s);
    }
    rc = 0;
out:
    if (rc < 0) {
        if (c_out->master >= 0)
            close(steal_fd(c_out->master));
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
        if (state_made) {
            oci_cgroup_destroy(&st->cgroup, NULL);
            oci_state_remove_dir(st);
        }
        /* a failed create hook stops the container and continues the
         * lifecycle with its destruction and the poststop hooks */
        if (hook_failed && s->hooks.n_poststop) {
            cleanup_free char *state = state_string(st, OCI_STOPPED);
            oci_hooks_run_all("poststop", s->hooks.poststop, s->hooks.n_poststop, state);
        }
    }
    oci_spec_free(s);
    return rc;
}

int oci_create(const struct oci_create_opts *o, vs_err *err)
{
    struct oci_state st = {.lock_fd = -1};
    struct created c;
    int rc = do_create(o, false, &c, &st, err);
    oci_state_release(&st);
    return rc;
}

/* Open exec.fifo for reading: this releases the init blocked opening it.
 * The init writes "0", and keeps its end open until execve: EOF means the
 * process runs; anything after the "0" is the init's error. */
static int release_init(struct oci_state *st, vs_err *err)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/exec.fifo", st->dir);
    cleanup_close int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return vs_error_errno(err, "cannot open %s", path);
    char msg[512];
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fd, msg + got, sizeof(msg) - 1 - got);
        if (r > 0) {
            got += (size_t)r;
            if (got < sizeof(msg) - 1)
                continue;
        }
        if (r < 0 && errno != EAGAIN && errno != EINTR)
            return vs_error_errno(err, "cannot read %s", path);
        if (r == 0 && got)
            break; /* the init's end closed: exec'd or failed */
        if (r == 0 && !oci_pid_alive(st->pid, st->start_time))
            return vs_error(err, ESRCH, "container '%s': its init exited before start", st->id);
        /* wakes when the init writes or closes its end; the timeout covers
         * an init that died before opening it */
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        poll(&pfd, 1, 50);
    }
    msg[got] = 0;
    unlink(path);
    if (msg[0] != '0')
        return vs_error(err, EIO, "container '%s': unexpected data from its init", st->id);
    if (msg[1])
        return vs_error(err, EIO, "container '%s': %s", st->id, msg + 1);
    return 0;
}

/* run: release the init over the sync socket; its end closes at execve. */
static int release_init_sync(struct oci_state *st, int sync, vs_err *err)
{
    if (oci_sync_send(sync, OCI_SYNC_START, 0, NULL) < 0)
        return vs_error(err, ESRCH, "container '%s': its init exited before start", st->id);
    struct oci_sync_msg m;
    while (oci_sync_recv(sync, &m) == 0) {
        if (m.passed_fd >= 0)
            close(m.passed_fd);
        if (m.type == OCI_SYNC_ERROR)
            return vs_error(err, m.value, "%s", m.msg);
    }
    return 0;
}

static int load_spec_copy(struct oci_state *st, struct oci_spec **out, vs_err *err)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/config.json", st->dir);
    *out = oci_spec_load(path, err);
    return *out ? 0 : -1;
}

static void run_poststart(struct oci_state *st, const struct oci_spec *s)
{
    if (s->hooks.n_poststart) {
        cleanup_free char *state = state_string(st, OCI_RUNNING);
        oci_hooks_run_all("poststart", s->hooks.poststart, s->hooks.n_poststart, state);
    }
}

int oci_start(const char *root, const char *id, vs_err *err)
{
    struct oci_state st;
    if (oci_state_load(&st, root, id, true, err) < 0) {
        oci_state_release(&st);
        return -1;
    }
    enum oci_status status = oci_state_status(&st);
    int rc = -1;
    struct oci_spec *s = NULL;
    if (status != OCI_CREATED)
        vs_error(err, EINVAL, "container '%s' cannot be started: it is %s", id,
                 oci_status_name(status));
    else if (release_init(&st, err) == 0) {
        vs_err e;
        if (load_spec_copy(&st, &s, &e) == 0)
            run_poststart(&st, s);
        rc = 0;
    }
    oci_spec_free(s);
    oci_state_release(&st);
    return rc;
}

/* Tear down: cgroups, the state directory, then the poststop hooks (every
 * one runs; a failure is a warning). s is the config, or NULL to load the
 * saved copy. */
static int destroy(struct oci_state *st, const struct oci_spec *s, vs_err *err)
{
    struct oci_spec *loaded = NULL;
    vs_err e;
    if (st->cgroup.n) {
        if (oci_cgroup_is_frozen(&st->cgroup))
            oci_cgroup_freeze(&st->cgroup, false, NULL);
        oci_cgroup_signal_all(&st->cgroup, SIGKILL, NULL);
    }
    int rc = oci_cgroup_destroy(&st->cgroup, err);
    if (!s && load_spec_copy(st, &loaded, &e) == 0)
        s = loaded;
    oci_state_remove_dir(st);
    if (s && s->hooks.n_poststop) {
        cleanup_free char *state = state_string(st, OCI_STOPPED);
        oci_hooks_run_all("poststop", s->hooks.poststop, s->hooks.n_poststop, state);
    }
    oci_spec_free(loaded);
    return rc;
}

int oci_run(const struct oci_create_opts *o, int *exit_status, vs_err *err)
{
    struct oci_state st = {.lock_fd = -1};
    struct oci_create_opts co = *o;
    co.foreground = !o->detach;
    if (!o->detach)
        oci_block_forwarded_signals();
    struct created c;
    if (do_create(&co, true, &c, &st, err) < 0) {
        oci_state_release(&st);
        return -1;
    }
    cleanup_close int sync = c.sync;
    if (release_init_sync(&st, sync, err) < 0) {
        kill(c.pid, SIGKILL);
        waitpid(c.pid, NULL, 0);
        destroy(&st, c.spec, NULL);
        oci_state_release(&st);
        oci_spec_free(c.spec);
        if (c.master >= 0)
            close(c.master);
        return -1;
    }
    run_poststart(&st, c.spec);
    /* let other invocations (kill, exec, state) in while we wait */
    if (st.lock_fd >= 0) {
        close(st.lock_fd);
        st.lock_fd = -1;
    }
    if (o->detach) {
        *exit_status = 0;
        oci_state_release(&st);
        oci_spec_free(c.spec);
        return 0;
    }
    *exit_status = oci_wait_forward(c.pid, c.master);
    if (c.master >= 0)
        close(c.master);
    /* another invocation may have deleted it already */
    struct oci_state again = {.lock_fd = -1};
    int rc = 0;
    if (!o->keep && oci_state_load(&again, o->root, o->id, true, NULL) == 0 && again.pid == st.pid)
        rc = destroy(&again, c.spec, err);
    oci_state_release(&again);
    oci_state_release(&st);
    oci_spec_free(c.spec);
    return rc;
}

int oci_kill(const char *root, const char *id, int sig, bool all, vs_err *err)
{
    struct oci_state st;
    int rc = -1;
    if (oci_state_load(&st, root, id, false, err) < 0)
        goto out;
    enum oci_status status = oci_state_status(&st);
    if (status == OCI_STOPPED) {
        vs_error(err, ESRCH, "container '%s' is not running", id);
        goto out;
    }
    if (all && st.cgroup.n)
        rc = oci_cgroup_signal_all(&st.cgroup, sig, err);
    else if (kill(st.pid, sig) < 0)
        rc = vs_error_errno(err, "cannot signal container '%s'", id);
    else
        rc = 0;
out:
    oci_state_release(&st);
    return rc;
}

int oci_delete(const char *root, const char *id, bool force, vs_err *err)
{
    struct oci_state st;
    int rc = -1;
    if (oci_state_load(&st, root, id, true, err) < 0) {
        if (force && err && err->code == ENOENT) {
            rc = 0;
            /* a directory without state (interrupted create) is still removed */
            if (oci_validate_id(id, NULL) == 0) {
                snprintf(st.dir, sizeof(st.dir), "%s/%s", root, id);
                oci_state_remove_dir(&st);
            }
        }
        goto out;
    }
    enum oci_status status = oci_state_status(&st);
    /* runtime.md: deleting a container that is not stopped is an error
     * (--force kills it first) */
    if (status != OCI_STOPPED) {
        if (!force) {
            vs_error(err, EBUSY, "cannot delete container '%s': it is %s (use --force)", id,
                     oci_status_name(status));
            goto out;
        }
    }
    if (status != OCI_STOPPED) {
        if (status == OCI_PAUSED)
            oci_cgroup_freeze(&st.cgroup, false, NULL);
        kill(st.pid, SIGKILL);
        for (int i = 0; i < 2000 && oci_pid_alive(st.pid, st.start_time); i++) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
    }
    rc = destroy(&st, NULL, err);
out:
    oci_state_release(&st);
    return rc;
}
