/* The jail of a VM process (jail.h). */
#include "jail/jail.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jail/files.h"
#include "net/net.h"
#include "util/log.h"

#define MAX_CGROUPS 8

/* --jail by a user other than root: a user namespace maps that user to
 * root inside (and no one else); the jail's capabilities are dropped once
 * it is built instead of changing uid (no other uid is mapped). */
static bool g_rootless;

/* mkdir -p of path's parents, then path itself as a directory or an empty
 * file (a bind mount's target) */
static int make_target(const char *path, bool dir)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (dir)
        return mkdir(path, 0755) < 0 && errno != EEXIST ? -1 : 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return errno == EEXIST ? 0 : -1;
    close(fd);
    return 0;
}

struct build {
    const char *root;
};

static int bind_one(void *opaque, const char *path, enum jail_access a, vs_err *err)
{
    struct build *b = opaque;
    char target[PATH_MAX];
    if ((size_t)snprintf(target, sizeof(target), "%s%s", b->root, path) >= sizeof(target))
        return vs_error(err, ENAMETOOLONG, "--jail: %s: path too long", path);
    struct stat lst, st;
    if (lstat(path, &lst) < 0)
        return 0; /* nothing to give; whoever opens it reports it */
    if (S_ISLNK(lst.st_mode) && a == JAIL_SYSTEM) {
        /* /lib -> usr/lib on a merged-/usr system: the same link inside */
        char link[PATH_MAX];
        ssize_t n = readlink(path, link, sizeof(link) - 1);
        if (n < 0)
            return vs_error_errno(err, "--jail: %s", path);
        link[n] = 0;
        if (make_target(target, true) == 0)
            rmdir(target);
        if (symlink(link, target) < 0 && errno != EEXIST)
            return vs_error_errno(err, "--jail: symlink %s", target);
        return 0;
    }
    if (stat(path, &st) < 0)
        return 0;
    if (make_target(target, S_ISDIR(st.st_mode)) < 0)
        return vs_error_errno(err, "--jail: making %s", target);
    if (mount(path, target, NULL, MS_BIND | MS_REC, NULL) < 0)
        return vs_error_errno(err, "--jail: bind %s", path);
    unsigned long flags = MS_BIND | MS_REMOUNT | MS_NOSUID;
    if (a != JAIL_DEVICE)
        flags |= MS_NODEV;
    if (a == JAIL_SYSTEM || a == JAIL_READ)
        flags |= MS_RDONLY;
    if (a != JAIL_SYSTEM)
        flags |= MS_NOEXEC;
    /* keep what the source's mount already forbids: in a user namespace
     * (rootless) those flags are locked and a remount without them fails */
    struct statvfs sv;
    if (statvfs(target, &sv) == 0) {
        static const struct {
            unsigned long st, ms;
        } keep[] = {{ST_NOSUID, MS_NOSUID},    {ST_NODEV, MS_NODEV},
                    {ST_NOEXEC, MS_NOEXEC},    {ST_RDONLY, MS_RDONLY},
                    {ST_NOATIME, MS_NOATIME},  {ST_NODIRATIME, MS_NODIRATIME},
                    {ST_RELATIME, MS_RELATIME}};
        for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
            if (sv.f_flag & keep[i].st)
                flags |= keep[i].ms;
    }
    if (mount(NULL, target, NULL, flags, NULL) < 0)
        return vs_error_errno(err, "--jail: remount %s", target);
    return 0;
}

/* This process's cgroup for each hierarchy, a child "vessel-vm-PID" of it
 * made and joined: v1 cpu, memory and pids, or the v2 tree. Best effort (a
 * warning): the namespaces, uid and seccomp do not depend on it. */
static void join_cgroups(pid_t id, char made[][PATH_MAX], int *nmade)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f)
        return;
    char line[PATH_MAX];
    while (fgets(line, sizeof(line), f) && *nmade < MAX_CGROUPS) {
        line[strcspn(line, "\n")] = 0;
        char *ctrl = strchr(line, ':');
        char *path = ctrl ? strchr(ctrl + 1, ':') : NULL;
        if (!path)
            continue;
        *path++ = 0;
        ctrl++;
        char base[PATH_MAX];
        if (!*ctrl) {
            if (access("/sys/fs/cgroup/cgroup.controllers", F_OK) < 0)
                continue; /* v2 only where it is the whole tree */
            snprintf(base, sizeof(base), "/sys/fs/cgroup");
        } else if (!strcmp(ctrl, "memory") || !strcmp(ctrl, "pids") || !strcmp(ctrl, "cpu") ||
                   !strcmp(ctrl, "cpu,cpuacct")) {
            snprintf(base, sizeof(base), "/sys/fs/cgroup/%s", ctrl);
        } else {
            continue;
        }
        char dir[PATH_MAX], procs[PATH_MAX + 16];
        if ((size_t)snprintf(dir, sizeof(dir), "%s%s/vessel-vm-%d", base,
                             strcmp(path, "/") ? path : "", (int)id) >= sizeof(dir))
            continue;
        if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
            vs_warn("--jail: cgroup %s: %s", dir, strerror(errno));
            continue;
        }
        snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
        int fd = open(procs, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, "0", 1) != 1) {
            vs_warn("--jail: joining cgroup %s: %s", dir, strerror(errno));
            if (fd >= 0)
                close(fd);
            rmdir(dir);
            continue;
        }
        close(fd);
        /* a bound on threads: vCPUs, device workers, the API */
        snprintf(procs, sizeof(procs), "%s/pids.max", dir);
        fd = open(procs, O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
            if (write(fd, "512", 3) != 3)
                vs_warn("--jail: %s: %s", procs, strerror(errno));
            close(fd);
        }
        snprintf(made[(*nmade)++], PATH_MAX, "%s", dir);
    }
    fclose(f);
}

/* Inherited fds (ours are all close-on-exec) other than stdio. */
static void close_inherited_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return;
    int dfd = dirfd(d);
    struct dirent *e;
    int close_these[1024], n = 0;
    while ((e = readdir(d)) && n < 1024) {
        int fd = atoi(e->d_name);
        if (fd <= 2 || fd == dfd || e->d_name[0] == '.')
            continue;
        int fl = fcntl(fd, F_GETFD);
        if (fl >= 0 && !(fl & FD_CLOEXEC))
            close_these[n++] = fd;
    }
    closedir(d);
    for (int i = 0; i < n; i++)
        close(close_these[i]);
}

static int set_limit(int res, rlim_t v, const char *what, vs_err *err)
{
    struct rlimit cur;
    if (getrlimit(res, &cur) == 0 && cur.rlim_max != RLIM_INFINITY && cur.rlim_max < v)
        v = cur.rlim_max;
    struct rlimit rl = {v, v};
    if (setrlimit(res, &rl) < 0)
        return vs_error_errno(err, "--jail: limit on %s", what);
    return 0;
}

static bool host_network(const struct vm_config *cfg)
{
    /* user networking connects out through the host's stack, and so does
     * a live migration's stream (--jail-net host); a tap is opened before
     * the jail leaves the host's namespace (below) */
    if (cfg->jail_host_net)
        return true;
    for (unsigned i = 0; i < cfg->nnets; i++)
        if (cfg->nets[i].kind == VM_NET_USER)
            return true;
    return false;
}

/* A tap stays in the host's network namespace, on its bridge; the VM
 * process needs only its fd, opened here, and sees none of the host's
 * interfaces from its own namespace. */
static int preopen_taps(const struct vm_config *cfg, vs_err *err)
{
    for (unsigned i = 0; i < cfg->nnets; i++)
        if (cfg->nets[i].kind == VM_NET_TAP && net_tap_preopen(cfg->nets[i].tap, err) < 0)
            return vs_error_prefix(err, "--jail: ");
    return 0;
}

/* Every capability, for good: the bounding set, the ambient set, and the
 * effective, permitted and inheritable sets (of the only thread there is). */
static int drop_capabilities(vs_err *err)
{
    for (int c = 0; c <= 63; c++)
        if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
            return vs_error_errno(err, "--jail: dropping capability %d", c);
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct d[2] = {{0}};
    if (syscall(SYS_capset, &h, d) < 0)
        return vs_error_errno(err, "--jail: capset");
    return 0;
}

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    int e = errno;
    close(fd);
    errno = e;
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* Rootless: this user as root of a user namespace of its own. */
static int enter_user_namespace(vs_err *err)
{
    uid_t uid = getuid();
    gid_t gid = getgid();
    if (unshare(CLONE_NEWUSER) < 0)
        return vs_error_errno(err, "--jail: a user namespace (rootless)");
    char map[64];
    snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)uid);
    if (write_file("/proc/self/setgroups", "deny") < 0 || write_file("/proc/self/uid_map", map) < 0)
        return vs_error_errno(err, "--jail: mapping uid %u", (unsigned)uid);
    snprintf(map, sizeof(map), "0 %u 1\n", (unsigned)gid);
    if (write_file("/proc/self/gid_map", map) < 0)
        return vs_error_errno(err, "--jail: mapping gid %u", (unsigned)gid);
    return 0;
}

/* In the child: everything but the uid change. */
static int build_jail(const struct vm_config *cfg, const char *origin_dir, vs_err *err)
{
    close_inherited_fds();
    if (preopen_taps(cfg, err) < 0)
        return -1;
    int flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP;
    if (!host_network(cfg))
        flags |= CLONE_NEWNET;
    if (unshare(flags) < 0)
        return vs_error_errno(err, "--jail: unshare");
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return vs_error_errno(err, "--jail: making mounts private");
    char root[PATH_MAX];
    if (!realpath(cfg->jail, root))
        return vs_error_errno(err, "--jail %s", cfg->jail);
    if (mount("vessel-jail", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=0755") < 0)
        return vs_error_errno(err, "--jail: tmpfs on %s", root);
    struct build b = {.root = root};
    if (jail_vm_files(cfg, origin_dir, bind_one, &b, err) < 0)
        return -1;
    char proc[PATH_MAX + 8];
    snprintf(proc, sizeof(proc), "%s/proc", root);
    if (make_target(proc, true) < 0 ||
        mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        return vs_error_errno(err, "--jail: /proc");
    if (chdir(root) < 0 || mkdir(".old-root", 0700) < 0 ||
        syscall(SYS_pivot_root, ".", ".old-root") < 0 || chdir("/") < 0 ||
        umount2("/.old-root", MNT_DETACH) < 0 || rmdir("/.old-root") < 0)
        return vs_error_errno(err, "--jail: pivot_root into %s", root);
    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
        return vs_error_errno(err, "--jail: read-only root");
    if (sethostname("vessel-vm", 9) < 0)
        return vs_error_errno(err, "--jail: hostname");
    if (set_limit(RLIMIT_NOFILE, 4096, "open files", err) < 0 ||
        set_limit(RLIMIT_CORE, 0, "core dumps", err) < 0 ||
        (cfg->jail_fsize && set_limit(RLIMIT_FSIZE, cfg->jail_fsize, "file size", err) < 0))
        return -1;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return vs_error_errno(err, "--jail: no_new_privs");
    if (g_rootless && drop_capabilities(err) < 0)
        return -1;
    return 0;
}

static int wait_child(pid_t pid, int *status)
{
    sigset_t set, old;
    sigemptyset(&set);
    int fwd[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1};
    for (size_t i = 0; i < sizeof(fwd) / sizeof(fwd[0]); i++)
        sigaddset(&set, fwd[i]);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, &old);
    for (;;) {
        int st;
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid) {
            *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            if (WIFSIGNALED(st) && WTERMSIG(st) != SIGTERM && WTERMSIG(st) != SIGINT)
                vs_err_log("--jail: the VM process died of signal %d (%s)", WTERMSIG(st),
                           strsignal(WTERMSIG(st)));
            break;
        }
        if (w < 0 && errno != EINTR) {
            *status = 1;
            break;
        }
        siginfo_t si;
        struct timespec ts = {1, 0};
        int sig = sigtimedwait(&set, &si, &ts);
        if (sig > 0 && sig != SIGCHLD)
            kill(pid, sig);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    return 1;
}

int jail_enter(const struct vm_config *cfg, const char *origin_dir, int *status, vs_err *err)
{
    if (!cfg->jail)
        return 0;
    g_rootless = geteuid() != 0;
    if (g_rootless && enter_user_namespace(err) < 0)
        return -1;
    if (mkdir(cfg->jail, 0700) < 0 && errno != EEXIST)
        return vs_error_errno(err, "--jail %s", cfg->jail);
    /* the child is the first process of a PID namespace of its own */
    if (unshare(CLONE_NEWPID) < 0)
        return vs_error_errno(err, "--jail: unshare(CLONE_NEWPID)");
    pid_t self = getpid(); /* names its cgroups: the child is pid 1 in its namespace */
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return vs_error_errno(err, "--jail: pipe");
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return vs_error_errno(err, "--jail: fork");
    }
    if (pid == 0) {
        close(p[0]);
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        char cgroups[MAX_CGROUPS][PATH_MAX];
        int ncg = 0;
        if (!g_rootless) /* a user's own cgroups need delegation: further work */
            join_cgroups(self, cgroups, &ncg);
        /* tell the parent which cgroups to remove when the VM is gone */
        for (int i = 0; i < ncg; i++) {
            size_t len = strlen(cgroups[i]) + 1;
            if (write(p[1], cgroups[i], len) != (ssize_t)len)
                break;
        }
        close(p[1]);
        vs_err e = {0};
        if (build_jail(cfg, origin_dir, &e) < 0) {
            vs_err_log("%s", e.msg);
            _exit(1);
        }
        return 0;
    }
    close(p[1]);
    char buf[MAX_CGROUPS * PATH_MAX];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof(buf) && (r = read(p[0], buf + n, sizeof(buf) - n)) > 0)
        n += (size_t)r;
    close(p[0]);
    wait_child(pid, status);
    for (size_t at = 0; at < n;) {
        size_t len = strnlen(buf + at, n - at);
        if (at + len < n)
            rmdir(buf + at);
        at += len + 1;
    }
    return 1;
}

int jail_drop_privileges(const struct vm_config *cfg, vs_err *err)
{
    if (!cfg->jail || g_rootless)
        return 0; /* rootless: no capabilities since the jail was built */
    gid_t g = cfg->jail_gid;
    uid_t u = cfg->jail_uid;
    /* glibc makes every thread of the process take them (the seccomp
     * lists allow exactly these ids) */
    if (setgroups(0, NULL) < 0 || setresgid(g, g, g) < 0 || setresuid(u, u, u) < 0)
        return vs_error_errno(err, "--jail: becoming uid %u gid %u", (unsigned)u, (unsigned)g);
    /* a uid change makes the process undumpable, its /proc/self root's: a
     * diff snapshot reads /proc/self/pagemap. Nothing else can reach it: no
     * other process is in its PID namespace, no list has ptrace or
     * process_vm_readv, and RLIMIT_CORE is 0 */
    if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
        return vs_error_errno(err, "--jail: dumpable");
    /* a credential change clears the parent-death signal: armed again, or
     * a VM whose launcher is killed (the daemon's delete --force, a stop)
     * would run on as an orphan */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
        return vs_error_errno(err, "--jail: parent-death signal");
    return 0;
}
