#include "oci/cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/log.h"

static const char *known_controllers[] = {
    "cpuset",  "cpu",        "cpuacct",  "blkio",   "memory", "devices", "freezer",
    "net_cls", "perf_event", "net_prio", "hugetlb", "pids",   "rdma",    "misc",
};

const char *oci_cgroup_mode_name(enum oci_cgroup_mode m)
{
    switch (m) {
    case OCI_CGROUP_LEGACY:
        return "legacy";
    case OCI_CGROUP_HYBRID:
        return "hybrid";
    case OCI_CGROUP_UNIFIED:
        return "unified";
    default:
        return "none";
    }
}

static bool is_controller_token(const char *t)
{
    if (!strncmp(t, "name=", 5))
        return true;
    for (size_t i = 0; i < ARRAY_SIZE(known_controllers); i++)
        if (!strcmp(t, known_controllers[i]))
            return true;
    return false;
}

/* Does comma list `set` contain `name`? */
static bool list_has(const char *set, const char *name)
{
    size_t l = strlen(name);
    const char *p = set;
    while (p && *p) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        if (n == l && !strncmp(p, name, l))
            return true;
        p = c ? c + 1 : NULL;
    }
    return false;
}

static bool same_set(const char *a, const char *b)
{
    char tmp[128];
    snprintf(tmp, sizeof(tmp), "%s", a);
    size_t na = 0, nb = 0;
    for (char *save, *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (!list_has(b, t))
            return false;
        na++;
    }
    for (const char *p = b; *p; p++)
        nb += *p == ',';
    return na == (*b ? nb + 1 : 0);
}

struct mount_hier {
    char controllers[128];
    bool v2;
    char mountpoint[512];
    char root[512];
};

/* Unescape mountinfo's octal escapes (\040 for space) in place. */
static void unescape(char *s)
{
    char *o = s;
    while (*s) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] && s[3]) {
            *o++ = (char)(((s[1] - '0') << 6) | ((s[2] - '0') << 3) | (s[3] - '0'));
            s += 4;
        } else
            *o++ = *s++;
    }
    *o = 0;
}

static size_t scan_mounts(struct mount_hier *out, size_t max)
{
    cleanup_fclose FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return 0;
    char *line = NULL;
    size_t cap = 0, n = 0;
    while (getline(&line, &cap, f) > 0 && n < max) {
        char *fields[12] = {0};
        int nf = 0;
        char *save;
        for (char *t = strtok_r(line, " \n", &save); t && nf < 12; t = strtok_r(NULL, " \n", &save))
            fields[nf++] = t;
        int dash = -1;
        for (int i = 6; i < nf; i++)
            if (!strcmp(fields[i], "-")) {
                dash = i;
                break;
            }
        if (dash < 0 || dash + 3 >= nf + 1 || !fields[dash + 1])
            continue;
        const char *fstype = fields[dash + 1];
        const char *super = dash + 3 < nf ? fields[dash + 3] : "";
        struct mount_hier m = {0};
        if (!strcmp(fstype, "cgroup2")) {
            m.v2 = true;
        } else if (!strcmp(fstype, "cgroup")) {
            char tmp[512];
            snprintf(tmp, sizeof(tmp), "%s", super);
            for (char *s2, *t = strtok_r(tmp, ",", &s2); t; t = strtok_r(NULL, ",", &s2)) {
                if (!is_controller_token(t))
                    continue;
                size_t l = strlen(m.controllers);
                snprintf(m.controllers + l, sizeof(m.controllers) - l, "%s%s", l ? "," : "", t);
            }
            if (!m.controllers[0])
                continue;
        } else
            continue;
        snprintf(m.root, sizeof(m.root), "%s", fields[3]);
        snprintf(m.mountpoint, sizeof(m.mountpoint), "%s", fields[4]);
        unescape(m.root);
        unescape(m.mountpoint);
        bool dup = false;
        for (size_t i = 0; i < n; i++)
            if (out[i].v2 == m.v2 && !strcmp(out[i].controllers, m.controllers))
                dup = true;
        if (!dup)
            out[n++] = m;
    }
    free(line);
    return n;
}

static enum oci_cgroup_mode mode_of(const struct mount_hier *m, size_t n)
{
    bool v1 = false, v2 = false;
    for (size_t i = 0; i < n; i++) {
        if (m[i].v2 && !strcmp(m[i].mountpoint, "/sys/fs/cgroup"))
            return OCI_CGROUP_UNIFIED;
        if (m[i].v2)
            v2 = true;
        else
            v1 = true;
    }
    if (v1)
        return v2 ? OCI_CGROUP_HYBRID : OCI_CGROUP_LEGACY;
    return v2 ? OCI_CGROUP_UNIFIED : OCI_CGROUP_NONE;
}

enum oci_cgroup_mode oci_cgroup_detect(void)
{
    struct mount_hier m[OCI_CGROUP_MAX_HIER];
    return mode_of(m, scan_mounts(m, ARRAY_SIZE(m)));
}

/* The caller's own cgroup path in a hierarchy, from the text of
 * /proc/self/cgroup (read once by the caller). */
static int own_cgroup(const struct mount_hier *m, const char *self, char *out, size_t len)
{
    for (const char *p = self; p && *p;) {
        const char *nl = strchr(p, '\n');
        char line[1024];
        size_t l = nl ? (size_t)(nl - p) : strlen(p);
        snprintf(line, sizeof(line), "%.*s", (int)l, p);
        p = nl ? nl + 1 : NULL;
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = 0;
        const char *ctrls = c1 + 1;
        bool match = m->v2 ? (atoi(line) == 0 && !*ctrls) : same_set(ctrls, m->controllers);
        if (match) {
            snprintf(out, len, "%s", c2 + 1);
            return 0;
        }
    }
    return -1;
}

static int write_file(const char *dir, const char *file, const char *val, vs_err *err)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return vs_error_errno(err, "cgroup: cannot open %s", path);
    ssize_t w = write(fd, val, strlen(val));
    if (w < 0)
        return vs_error_errno(err, "cgroup: cannot write '%s' to %s", val, path);
    return 0;
}

static int write_u64(const char *dir, const char *file, long long v, vs_err *err)
{
    char b[32];
    snprintf(b, sizeof(b), "%lld", v);
    return write_file(dir, file, b, err);
}

static int read_file(const char *dir, const char *file, char *buf, size_t len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t r = read(fd, buf, len - 1);
    if (r < 0)
        return -1;
    buf[r] = 0;
    return (int)r;
}

static long long read_ll(const char *dir, const char *file, long long def)
{
    char b[64];
    if (!dir || read_file(dir, file, b, sizeof(b)) <= 0)
        return def;
    if (!strncmp(b, "max", 3))
        return -1;
    return strtoll(b, NULL, 10);
}

/* Value of "key N" in a flat-keyed file such as memory.stat. */
static long long read_keyed(const char *dir, const char *file, const char *key, long long def)
{
    char b[8192];
    if (!dir || read_file(dir, file, b, sizeof(b)) <= 0)
        return def;
    size_t kl = strlen(key);
    for (char *p = b; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (!strncmp(p, key, kl) && p[kl] == ' ')
            return strtoll(p + kl + 1, NULL, 10);
    return def;
}

static void copy_cpuset(const char *dir)
{
    char parent[2048], b[4096];
    snprintf(parent, sizeof(parent), "%s", dir);
    char *sl = strrchr(parent, '/');
    if (!sl)
        return;
    *sl = 0;
    const char *files[] = {"cpuset.cpus", "cpuset.mems"};
    for (int i = 0; i < 2; i++) {
        if (read_file(dir, files[i], b, sizeof(b)) > 1)
            continue;
        if (read_file(parent, files[i], b, sizeof(b)) > 0)
            write_file(dir, files[i], b, NULL);
    }
}

/* mkdir -p below the mountpoint; v1 cpuset needs cpus/mems at each level,
 * v2 needs controllers enabled in each parent's subtree_control. */
static int make_dirs(const char *mountpoint, const char *dir, const char *controllers, bool v2,
                     vs_err *err)
{
    char path[2048];
    size_t ml = strlen(mountpoint);
    snprintf(path, sizeof(path), "%s", dir);
    if (strlen(path) <= ml + 1)
        return vs_error(err, EINVAL, "cgroup: %s is the root of its hierarchy", dir);
    for (char *p = path + ml + 1; p && *p;) {
        char *sl = strchr(p, '/');
        if (sl)
            *sl = 0;
        if (v2) {
            /* enable every available controller in the parent */
            char parent[2048], ctl[512];
            snprintf(parent, sizeof(parent), "%s", path);
            char *ps = strrchr(parent, '/');
            if (ps)
                *ps = 0;
            if (read_file(parent, "cgroup.controllers", ctl, sizeof(ctl)) > 0) {
                for (char *s2, *t = strtok_r(ctl, " \n", &s2); t; t = strtok_r(NULL, " \n", &s2)) {
                    char en[64];
                    snprintf(en, sizeof(en), "+%s", t);
                    write_file(parent, "cgroup.subtree_control", en, NULL);
                }
            }
        }
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
            return vs_error_errno(err, "cgroup: cannot create %s", path);
        if (!v2 && list_has(controllers, "cpuset"))
            copy_cpuset(path);
        if (!sl)
            break;
        *sl = '/';
        p = sl + 1;
    }
    return 0;
}

int oci_cgroup_create(struct oci_cgroup *cg, const char *path, const char *id, bool best_effort,
                      vs_err *err)
{
    memset(cg, 0, sizeof(*cg));
    struct mount_hier m[OCI_CGROUP_MAX_HIER];
    size_t n = scan_mounts(m, ARRAY_SIZE(m));
    cg->mode = mode_of(m, n);
    if (cg->mode == OCI_CGROUP_NONE)
        return 0;
    if (path && strchr(path, ':'))
        return vs_error(err, EINVAL,
                        "cgroupsPath '%s' uses systemd's slice:prefix:name form; vessel has no "
                        "systemd cgroup driver (there is no systemd here): use a path",
                        path);
    char rel[512];
    if (!path || !*path)
        snprintf(rel, sizeof(rel), "vessel/%s", id);
    else
        snprintf(rel, sizeof(rel), "%s", path);
    if (strstr(rel, ".."))
        return vs_error(err, EINVAL, "cgroupsPath '%s' must not contain '..'", rel);
    if (strspn(rel, "/") == strlen(rel))
        return vs_error(err, EINVAL, "cgroupsPath '%s' must name a cgroup below the root", rel);
    char self[4096] = "";
    if (rel[0] != '/') {
        cleanup_close int fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
        ssize_t r = fd >= 0 ? read(fd, self, sizeof(self) - 1) : -1;
        self[r > 0 ? r : 0] = 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (cg->mode == OCI_CGROUP_UNIFIED && !m[i].v2)
            continue;
        char own[512] = "/", full[2048];
        if (rel[0] != '/' && own_cgroup(&m[i], self, own, sizeof(own)) < 0)
            continue;
        const char *cgpath = rel[0] == '/' ? rel : own;
        /* paths in /proc/self/cgroup are relative to the hierarchy root; the
         * mount may show only a subtree of it */
        size_t rl = strlen(m[i].root);
        if (strcmp(m[i].root, "/") && !strncmp(cgpath, m[i].root, rl))
            cgpath += rl;
        if (rel[0] == '/')
            snprintf(full, sizeof(full), "%s%s", m[i].mountpoint, rel);
        else
            snprintf(full, sizeof(full), "%s%s%s/%s", m[i].mountpoint, *cgpath == '/' ? "" : "/",
                     strcmp(cgpath, "/") ? cgpath : "", rel);
        /* collapse "//" */
        char clean[2048], *o = clean;
        for (const char *p = full; *p && o < clean + sizeof(clean) - 1; p++)
            if (!(p[0] == '/' && p[1] == '/'))
                *o++ = *p;
        *o = 0;
        if (o > clean + 1 && o[-1] == '/')
            o[-1] = 0;
        if (access(m[i].mountpoint, W_OK) < 0) {
            if (best_effort)
                continue;
        }
        vs_err e2;
        if (make_dirs(m[i].mountpoint, clean, m[i].controllers, m[i].v2, &e2) < 0) {
            if (best_effort)
                continue;
            oci_cgroup_destroy(cg, NULL);
            if (err)
                *err = e2;
            return -1;
        }
        struct oci_cgroup_hier *h = &cg->h[cg->n++];
        memcpy(h->controllers, m[i].controllers, sizeof(h->controllers));
        h->v2 = m[i].v2;
        h->dir = strdup(clean);
        if (!h->dir)
            return vs_error(err, ENOMEM, "out of memory");
    }
    if (cg->n == 0)
        cg->mode = OCI_CGROUP_NONE;
    return 0;
}

int oci_cgroup_enter(const struct oci_cgroup *cg, pid_t pid, vs_err *err)
{
    for (size_t i = 0; i < cg->n; i++)
        if (write_u64(cg->h[i].dir, "cgroup.procs", pid, err) < 0)
            return -1;
    return 0;
}

/* The directory that holds a controller: its v1 hierarchy, else the v2 one
 * when the controller is enabled there. */
static const char *ctl_dir(const struct oci_cgroup *cg, const char *ctl, bool *v2)
{
    for (size_t i = 0; i < cg->n; i++)
        if (!cg->h[i].v2 && list_has(cg->h[i].controllers, ctl)) {
            *v2 = false;
            return cg->h[i].dir;
        }
    for (size_t i = 0; i < cg->n; i++) {
        if (!cg->h[i].v2)
            continue;
        char b[512];
        if (read_file(cg->h[i].dir, "cgroup.controllers", b, sizeof(b)) < 0)
            continue;
        for (char *s, *t = strtok_r(b, " \n", &s); t; t = strtok_r(NULL, " \n", &s))
            if (!strcmp(t, ctl)) {
                *v2 = true;
                return cg->h[i].dir;
            }
    }
    return NULL;
}

static const char *v2_dir(const struct oci_cgroup *cg)
{
    for (size_t i = 0; i < cg->n; i++)
        if (cg->h[i].v2)
            return cg->h[i].dir;
    return NULL;
}

static int missing(const char *ctl, const struct oci_cgroup *cg, vs_err *err)
{
    if (cg->mode == OCI_CGROUP_UNIFIED)
        return vs_error(err, ENOTSUP,
                        "cgroup: the '%s' controller is not available in the cgroup v2 hierarchy "
                        "(on this host it is bound to a v1 hierarchy)",
                        ctl);
    return vs_error(err, ENOTSUP, "cgroup: the '%s' controller is not mounted", ctl);
}

/* A v1 kernel memory limit; the file is missing (or refuses writes) on
 * kernels that dropped it, which is an error, not something to ignore. */
static int write_limit(const char *d, const char *file, int64_t v, const char *what, vs_err *err)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", d, file);
    if (access(path, F_OK) < 0)
        return vs_error(err, ENOTSUP,
                        "linux.resources.memory.%s: this kernel's memory controller has no %s",
                        what, file);
    vs_err e;
    if (write_u64(d, file, v > 0 ? v : -1, &e) < 0)
        return vs_error(err, e.code, "linux.resources.memory.%s: %s", what, e.msg);
    return 0;
}

static int apply_memory(const struct oci_cgroup *cg, const struct oci_resources *r, vs_err *err)
{
    if (!r->has_mem_limit && !r->has_mem_reservation && !r->has_mem_swap &&
        !r->has_mem_swappiness && !r->has_disable_oom && !r->has_mem_kernel &&
        !r->has_mem_kernel_tcp)
        return 0;
    bool v2;
    const char *d = ctl_dir(cg, "memory", &v2);
    if (!d)
        return missing("memory", cg, err);
    if (v2) {
        if (r->has_mem_kernel || r->has_mem_kernel_tcp)
            return vs_error(err, ENOTSUP,
                            "linux.resources.memory.kernel/kernelTCP: cgroup v2 has no separate "
                            "kernel memory limits");
        if (r->has_mem_limit)
            if (r->mem_limit > 0 ? write_u64(d, "memory.max", r->mem_limit, err)
                                 : write_file(d, "memory.max", "max", err))
                return -1;
        if (r->has_mem_reservation && r->mem_reservation >= 0 &&
            write_u64(d, "memory.low", r->mem_reservation, err) < 0)
            return -1;
        if (r->has_mem_swap) {
            /* OCI swap is memory+swap; v2 limits swap alone */
            if (r->mem_swap < 0)
                return write_file(d, "memory.swap.max", "max", err);
            long long sw = r->has_mem_limit && r->mem_limit > 0 ? r->mem_swap - r->mem_limit : 0;
            if (sw < 0)
                return vs_error(err, EINVAL, "memory+swap limit is lower than the memory limit");
            return write_u64(d, "memory.swap.max", sw, err);
        }
        return 0;
    }
    if (r->has_mem_limit || r->has_mem_swap) {
        long long lim = r->has_mem_limit ? (r->mem_limit > 0 ? r->mem_limit : -1) : 0;
        long long sw = r->has_mem_swap ? (r->mem_swap > 0 ? r->mem_swap : -1) : 0;
        /* the memsw limit must stay >= the memory limit at every step */
        bool swap_first =
            r->has_mem_swap && (sw == -1 || sw > read_ll(d, "memory.memsw.limit_in_bytes", 0));
        if (swap_first && write_u64(d, "memory.memsw.limit_in_bytes", sw, err) < 0)
            return -1;
        if (r->has_mem_limit && write_u64(d, "memory.limit_in_bytes", lim, err) < 0)
            return -1;
        if (r->has_mem_swap && !swap_first &&
            write_u64(d, "memory.memsw.limit_in_bytes", sw, err) < 0)
            return -1;
    }
    if (r->has_mem_reservation &&
        write_u64(d, "memory.soft_limit_in_bytes", r->mem_reservation > 0 ? r->mem_reservation : -1,
                  err) < 0)
        return -1;
    if (r->has_mem_swappiness &&
        write_u64(d, "memory.swappiness", (long long)r->mem_swappiness, err) < 0)
        return -1;
    if (r->has_disable_oom && r->disable_oom && write_file(d, "memory.oom_control", "1", err) < 0)
        return -1;
    if (r->has_mem_kernel_tcp &&
        write_limit(d, "memory.kmem.tcp.limit_in_bytes", r->mem_kernel_tcp, "kernelTCP", err) < 0)
        return -1;
    if (r->has_mem_kernel &&
        write_limit(d, "memory.kmem.limit_in_bytes", r->mem_kernel, "kernel", err) < 0)
        return -1;
    return 0;
}

/* linux.resources.network: net_cls.classid and net_prio.ifpriomap (v1
 * only: cgroup v2 has no such controllers). */
static int apply_network(const struct oci_cgroup *cg, const struct oci_resources *r, vs_err *err)
{
    bool v2;
    if (r->has_net_classid) {
        const char *d = ctl_dir(cg, "net_cls", &v2);
        if (!d || v2)
            return vs_error(err, ENOTSUP,
                            "linux.resources.network.classID: the 'net_cls' cgroup controller is "
                            "not mounted on this host");
        if (write_u64(d, "net_cls.classid", r->net_classid, err) < 0)
            return -1;
    }
    if (r->n_net_prios) {
        const char *d = ctl_dir(cg, "net_prio", &v2);
        if (!d || v2)
            return vs_error(err, ENOTSUP,
                            "linux.resources.network.priorities: the 'net_prio' cgroup controller "
                            "is not mounted on this host");
        for (size_t i = 0; i < r->n_net_prios; i++) {
            char b[128];
            snprintf(b, sizeof(b), "%s %u", r->net_prios[i].name, r->net_prios[i].priority);
            if (write_file(d, "net_prio.ifpriomap", b, err) < 0)
                return -1;
        }
    }
    return 0;
}

static int apply_cpu(const struct oci_cgroup *cg, const struct oci_resources *r, vs_err *err)
{
    bool v2;
    if (r->has_cpu_shares || r->has_cpu_quota || r->has_cpu_period || r->has_cpu_rt_runtime ||
        r->has_cpu_rt_period) {
        const char *d = ctl_dir(cg, "cpu", &v2);
        if (!d)
            return missing("cpu", cg, err);
        if (v2) {
            if (r->has_cpu_shares && r->cpu_shares) {
                unsigned long long s = r->cpu_shares < 2 ? 2 : r->cpu_shares;
                if (s > 262144)
                    s = 262144;
                if (write_u64(d, "cpu.weight", (long long)(1 + ((s - 2) * 9999) / 262142), err) < 0)
                    return -1;
            }
            if (r->has_cpu_quota || r->has_cpu_period) {
                char b[64];
                unsigned long long period =
                    r->has_cpu_period && r->cpu_period ? r->cpu_period : 100000;
                if (r->has_cpu_quota && r->cpu_quota > 0)
                    snprintf(b, sizeof(b), "%lld %llu", (long long)r->cpu_quota, period);
                else
                    snprintf(b, sizeof(b), "max %llu", period);
                if (write_file(d, "cpu.max", b, err) < 0)
                    return -1;
            }
        } else {
            if (r->has_cpu_shares && r->cpu_shares &&
                write_u64(d, "cpu.shares", (long long)r->cpu_shares, err) < 0)
                return -1;
            if (r->has_cpu_period && r->cpu_period &&
                write_u64(d, "cpu.cfs_period_us", (long long)r->cpu_period, err) < 0)
                return -1;
            if (r->has_cpu_quota && r->cpu_quota &&
                write_u64(d, "cpu.cfs_quota_us", r->cpu_quota, err) < 0)
                return -1;
            if (r->has_cpu_rt_period && r->cpu_rt_period &&
                write_u64(d, "cpu.rt_period_us", (long long)r->cpu_rt_period, err) < 0)
                return -1;
            if (r->has_cpu_rt_runtime && r->cpu_rt_runtime &&
                write_u64(d, "cpu.rt_runtime_us", r->cpu_rt_runtime, err) < 0)
                return -1;
        }
    }
    if ((r->cpu_cpus && *r->cpu_cpus) || (r->cpu_mems && *r->cpu_mems)) {
        const char *d = ctl_dir(cg, "cpuset", &v2);
        if (!d)
            return missing("cpuset", cg, err);
        if (r->cpu_cpus && *r->cpu_cpus && write_file(d, "cpuset.cpus", r->cpu_cpus, err) < 0)
            return -1;
        if (r->cpu_mems && *r->cpu_mems && write_file(d, "cpuset.mems", r->cpu_mems, err) < 0)
            return -1;
    }
    return 0;
}

static int apply_blkio(const struct oci_cgroup *cg, const struct oci_resources *r, vs_err *err)
{
    if (!r->has_blkio_weight && !r->n_blkio_devs)
        return 0;
    bool v2;
    const char *d = ctl_dir(cg, "blkio", &v2);
    if (!d)
        d = ctl_dir(cg, "io", &v2);
    if (!d)
        return missing("blkio/io", cg, err);
    char b[128];
    if (r->has_blkio_weight && r->blkio_weight) {
        /* the weight file exists only with an I/O scheduler that has weights */
        if (v2) {
            snprintf(b, sizeof(b), "default %u", r->blkio_weight);
            if (write_file(d, "io.bfq.weight", b, NULL) < 0 &&
                write_u64(d, "io.weight", r->blkio_weight, err) < 0)
                return vs_error_prefix(err, "blkio weight: ");
        } else if (write_u64(d, "blkio.weight", r->blkio_weight, NULL) < 0 &&
                   write_u64(d, "blkio.bfq.weight", r->blkio_weight, err) < 0)
            return vs_error_prefix(err, "blkio weight (no I/O scheduler with weights?): ");
    }
    for (size_t i = 0; i < r->n_blkio_devs; i++) {
        const struct oci_blkio_dev *dv = &r->blkio_devs[i];
        bool w = !strcmp(dv->which, "weight");
        if (v2) {
            static const struct {
                const char *which, *key;
            } map[] = {{"read_bps", "rbps"},
                       {"write_bps", "wbps"},
                       {"read_iops", "riops"},
                       {"write_iops", "wiops"}};
            if (w) {
                snprintf(b, sizeof(b), "%lld:%lld %u", (long long)dv->major, (long long)dv->minor,
                         dv->weight);
                if (write_file(d, "io.weight", b, err) < 0)
                    return -1;
                continue;
            }
            for (size_t k = 0; k < ARRAY_SIZE(map); k++)
                if (!strcmp(map[k].which, dv->which))
                    snprintf(b, sizeof(b), "%lld:%lld %s=%llu", (long long)dv->major,
                             (long long)dv->minor, map[k].key, (unsigned long long)dv->rate);
            if (write_file(d, "io.max", b, err) < 0)
                return -1;
        } else {
            char file[64];
            if (w) {
                snprintf(file, sizeof(file), "blkio.weight_device");
                snprintf(b, sizeof(b), "%lld:%lld %u", (long long)dv->major, (long long)dv->minor,
                         dv->weight);
            } else {
                snprintf(file, sizeof(file), "blkio.throttle.%s_device", dv->which);
                snprintf(b, sizeof(b), "%lld:%lld %llu", (long long)dv->major, (long long)dv->minor,
                         (unsigned long long)dv->rate);
            }
            if (write_file(d, file, b, err) < 0)
                return -1;
        }
    }
    return 0;
}

/* the nodes every container gets (as runc adds them): null, zero, full,
 * random, urandom, tty, console, ptmx and the pts slaves */
static const struct oci_dev_rule default_dev_rules[] = {
    {true, 'c', 1, 3, "rwm"}, {true, 'c', 1, 5, "rwm"}, {true, 'c', 1, 7, "rwm"},
    {true, 'c', 1, 8, "rwm"}, {true, 'c', 1, 9, "rwm"}, {true, 'c', 5, 0, "rwm"},
    {true, 'c', 5, 1, "rwm"}, {true, 'c', 5, 2, "rwm"}, {true, 'c', 136, -1, "rwm"},
};

static int apply_devices(const struct oci_cgroup *cg, const struct oci_resources *r, vs_err *err)
{
    if (!r->n_dev_rules)
        return 0;
    bool v2;
    const char *d = ctl_dir(cg, "devices", &v2);
    if (!d) {
        /* cgroup v2: device control is a BPF program, not a controller */
        const char *d2 = v2_dir(cg);
        if (!d2)
            return 0;
        return oci_cgroup_v2_devices(d2, r->dev_rules, r->n_dev_rules, default_dev_rules,
                                     ARRAY_SIZE(default_dev_rules), err);
    }
    const struct oci_dev_rule *lists[2] = {r->dev_rules, default_dev_rules};
    size_t counts[2] = {r->n_dev_rules, ARRAY_SIZE(default_dev_rules)};
    for (int l = 0; l < 2; l++) {
        for (size_t i = 0; i < counts[l]; i++) {
            const struct oci_dev_rule *dr = &lists[l][i];
            char b[96], maj[24], min[24];
            if (dr->major < 0)
                snprintf(maj, sizeof(maj), "*");
            else
                snprintf(maj, sizeof(maj), "%lld", (long long)dr->major);
            if (dr->minor < 0)
                snprintf(min, sizeof(min), "*");
            else
                snprintf(min, sizeof(min), "%lld", (long long)dr->minor);
            const char *acc = dr->access && *dr->access ? dr->access : "rwm";
            if (dr->type == 'a' && dr->major < 0 && dr->minor < 0)
                snprintf(b, sizeof(b), "a");
            else
                snprintf(b, sizeof(b), "%c %s:%s %s", dr->type, maj, min, acc);
            if (write_file(d, dr->allow ? "devices.allow" : "devices.deny", b, err) < 0)
                return -1;
        }
    }
    return 0;
}

int oci_cgroup_apply(const struct oci_cgroup *cg, const struct oci_resources *r, vs_err *err)
{
    if (cg->mode == OCI_CGROUP_NONE)
        return 0;
    bool v2;
    if (apply_memory(cg, r, err) < 0 || apply_cpu(cg, r, err) < 0 || apply_blkio(cg, r, err) < 0 ||
        apply_devices(cg, r, err) < 0 || apply_network(cg, r, err) < 0)
        return -1;
    if (r->has_pids_limit && r->pids_limit != 0) {
        const char *d = ctl_dir(cg, "pids", &v2);
        if (!d)
            return missing("pids", cg, err);
        if (r->pids_limit > 0 ? write_u64(d, "pids.max", r->pids_limit, err)
                              : write_file(d, "pids.max", "max", err))
            return -1;
    }
    for (size_t i = 0; i < r->n_hugetlb; i++) {
        const char *d = ctl_dir(cg, "hugetlb", &v2);
        if (!d)
            return missing("hugetlb", cg, err);
        char file[96];
        snprintf(file, sizeof(file), v2 ? "hugetlb.%s.max" : "hugetlb.%s.limit_in_bytes",
                 r->hugetlb[i].page_size);
        if (strchr(r->hugetlb[i].page_size, '/'))
            return vs_error(err, EINVAL, "hugepage size '%s' is invalid", r->hugetlb[i].page_size);
        if (write_u64(d, file, (long long)r->hugetlb[i].limit, err) < 0)
            return -1;
    }
    if (r->unified) {
        const char *d = v2_dir(cg);
        const char *k;
        json_t *v;
        if (!d && json_object_size(r->unified))
            return vs_error(err, ENOTSUP, "cgroup: linux.resources.unified needs cgroup v2");
        json_object_foreach(r->unified, k, v)
        {
            if (write_file(d, k, json_string_value(v), err) < 0)
                return -1;
        }
    }
    return 0;
}

static const char *freezer_dir(const struct oci_cgroup *cg, bool *v2)
{
    for (size_t i = 0; i < cg->n; i++)
        if (!cg->h[i].v2 && list_has(cg->h[i].controllers, "freezer")) {
            *v2 = false;
            return cg->h[i].dir;
        }
    *v2 = true;
    return v2_dir(cg);
}

bool oci_cgroup_can_freeze(const struct oci_cgroup *cg)
{
    bool v2;
    return freezer_dir(cg, &v2) != NULL;
}

bool oci_cgroup_is_frozen(const struct oci_cgroup *cg)
{
    bool v2;
    const char *d = freezer_dir(cg, &v2);
    char b[64];
    if (!d)
        return false;
    if (v2)
        return read_keyed(d, "cgroup.events", "frozen", 0) == 1;
    return read_file(d, "freezer.state", b, sizeof(b)) > 0 && !strncmp(b, "FROZEN", 6);
}

int oci_cgroup_freeze(const struct oci_cgroup *cg, bool freeze, vs_err *err)
{
    bool v2;
    const char *d = freezer_dir(cg, &v2);
    if (!d)
        return vs_error(err, ENOTSUP, "cgroup: no freezer available for this container");
    if (v2 ? write_file(d, "cgroup.freeze", freeze ? "1" : "0", err)
           : write_file(d, "freezer.state", freeze ? "FROZEN" : "THAWED", err))
        return -1;
    /* v1 reports FREEZING until every task stopped; wait for the end state */
    for (int i = 0; i < 1000; i++) {
        if (oci_cgroup_is_frozen(cg) == freeze)
            return 0;
        if (!v2 && freeze && i % 50 == 49)
            write_file(d, "freezer.state", "FROZEN", NULL);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return vs_error(err, EBUSY, "cgroup: the container did not %s in time",
                    freeze ? "freeze" : "thaw");
}

int oci_cgroup_pids(const struct oci_cgroup *cg, pid_t **out, size_t *n, vs_err *err)
{
    *out = NULL;
    *n = 0;
    if (cg->n == 0)
        return 0;
    char path[1024];
    snprintf(path, sizeof(path), "%s/cgroup.procs", cg->h[0].dir);
    cleanup_fclose FILE *f = fopen(path, "re");
    if (!f)
        return vs_error_errno(err, "cgroup: cannot read %s", path);
    size_t cap = 0;
    long v;
    while (fscanf(f, "%ld", &v) == 1) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            pid_t *np = realloc(*out, cap * sizeof(pid_t));
            if (!np)
                return vs_error(err, ENOMEM, "out of memory");
            *out = np;
        }
        (*out)[(*n)++] = (pid_t)v;
    }
    return 0;
}

int oci_cgroup_signal_all(const struct oci_cgroup *cg, int sig, vs_err *err)
{
    if (cg->n == 0)
        return 0;
    const char *d2 = v2_dir(cg);
    if (sig == SIGKILL && d2 && cg->mode == OCI_CGROUP_UNIFIED) {
        if (write_file(d2, "cgroup.kill", "1", NULL) == 0)
            return 0;
    }
    pid_t *pids;
    size_t n;
    /* nothing left (the common case after the init exited): skip the freeze */
    if (oci_cgroup_pids(cg, &pids, &n, NULL) == 0) {
        free(pids);
        if (n == 0)
            return 0;
    }
    bool frozen = false;
    if (oci_cgroup_can_freeze(cg) && !oci_cgroup_is_frozen(cg))
        frozen = oci_cgroup_freeze(cg, true, NULL) == 0;
    int rc = oci_cgroup_pids(cg, &pids, &n, err);
    for (size_t i = 0; rc == 0 && i < n; i++)
        kill(pids[i], sig);
    free(pids);
    if (frozen || sig == SIGKILL)
        oci_cgroup_freeze(cg, false, NULL);
    return rc;
}

int oci_cgroup_destroy(struct oci_cgroup *cg, vs_err *err)
{
    int rc = 0;
    for (size_t i = 0; i < cg->n; i++) {
        if (!cg->h[i].dir)
            continue;
        int tries = 0;
        while (rmdir(cg->h[i].dir) < 0) {
            if (errno == ENOENT)
                break;
            if (errno != EBUSY || ++tries > 500) {
                rc = vs_error_errno(err, "cgroup: cannot remove %s", cg->h[i].dir);
                break;
            }
            /* tasks that were just killed leave their cgroup asynchronously */
            pid_t *pids;
            size_t n;
            if (oci_cgroup_pids(&(struct oci_cgroup){.n = 1, .h = {cg->h[i]}}, &pids, &n, NULL) ==
                0) {
                for (size_t k = 0; k < n; k++)
                    kill(pids[k], SIGKILL);
                free(pids);
            }
            struct timespec ts = {0, 2000000};
            nanosleep(&ts, NULL);
        }
    }
    return rc;
}

void oci_cgroup_release(struct oci_cgroup *cg)
{
    for (size_t i = 0; i < cg->n; i++)
        free(cg->h[i].dir);
    cg->n = 0;
}

unsigned long long oci_cgroup_oom_kills(const struct oci_cgroup *cg)
{
    bool v2;
    const char *d = ctl_dir(cg, "memory", &v2);
    if (!d)
        return 0;
    long long v = v2 ? read_keyed(d, "memory.events", "oom_kill", 0)
                     : read_keyed(d, "memory.oom_control", "oom_kill", 0);
    return v > 0 ? (unsigned long long)v : 0;
}

static json_t *keyed_object(const char *dir, const char *file)
{
    json_t *o = json_object();
    char b[16384];
    if (!dir || read_file(dir, file, b, sizeof(b)) <= 0)
        return o;
    char *save;
    for (char *line = strtok_r(b, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *sp = strchr(line, ' ');
        if (!sp)
            continue;
        *sp = 0;
        json_object_set_new(o, line, json_integer(strtoll(sp + 1, NULL, 10)));
    }
    return o;
}

json_t *oci_cgroup_stats(const struct oci_cgroup *cg)
{
    json_t *s = json_object();
    bool v2;
    const char *d;
    /* cpu */
    json_t *cpu = json_object(), *usage = json_object(), *thr = json_object();
    if ((d = ctl_dir(cg, "cpuacct", &v2)) && !v2) {
        json_object_set_new(usage, "total", json_integer(read_ll(d, "cpuacct.usage", 0)));
        json_t *per = json_array();
        char b[4096];
        if (read_file(d, "cpuacct.usage_percpu", b, sizeof(b)) > 0)
            for (char *sv, *t = strtok_r(b, " \n", &sv); t; t = strtok_r(NULL, " \n", &sv))
                json_array_append_new(per, json_integer(strtoll(t, NULL, 10)));
        json_object_set_new(usage, "percpu", per);
        long hz = sysconf(_SC_CLK_TCK);
        long long ns_per_tick = hz > 0 ? 1000000000LL / hz : 10000000LL;
        json_object_set_new(usage, "kernel",
                            json_integer(read_keyed(d, "cpuacct.stat", "system", 0) * ns_per_tick));
        json_object_set_new(usage, "user",
                            json_integer(read_keyed(d, "cpuacct.stat", "user", 0) * ns_per_tick));
    } else if ((d = v2_dir(cg))) {
        json_object_set_new(usage, "total",
                            json_integer(read_keyed(d, "cpu.stat", "usage_usec", 0) * 1000));
        json_object_set_new(usage, "kernel",
                            json_integer(read_keyed(d, "cpu.stat", "system_usec", 0) * 1000));
        json_object_set_new(usage, "user",
                            json_integer(read_keyed(d, "cpu.stat", "user_usec", 0) * 1000));
    }
    if ((d = ctl_dir(cg, "cpu", &v2))) {
        json_object_set_new(thr, "periods",
                            json_integer(read_keyed(d, "cpu.stat", "nr_periods", 0)));
        json_object_set_new(thr, "throttledPeriods",
                            json_integer(read_keyed(d, "cpu.stat", "nr_throttled", 0)));
        json_object_set_new(thr, "throttledTime",
                            json_integer(v2 ? read_keyed(d, "cpu.stat", "throttled_usec", 0) * 1000
                                            : read_keyed(d, "cpu.stat", "throttled_time", 0)));
    }
    json_object_set_new(cpu, "usage", usage);
    json_object_set_new(cpu, "throttling", thr);
    json_object_set_new(s, "cpu", cpu);
    /* memory */
    if ((d = ctl_dir(cg, "memory", &v2))) {
        json_t *mem = json_object(), *u = json_object(), *sw = json_object();
        if (v2) {
            json_object_set_new(u, "usage", json_integer(read_ll(d, "memory.current", 0)));
            json_object_set_new(u, "limit", json_integer(read_ll(d, "memory.max", -1)));
            json_object_set_new(u, "failcnt",
                                json_integer(read_keyed(d, "memory.events", "max", 0)));
            json_object_set_new(sw, "usage", json_integer(read_ll(d, "memory.swap.current", 0)));
            json_object_set_new(sw, "limit", json_integer(read_ll(d, "memory.swap.max", -1)));
        } else {
            json_object_set_new(u, "usage", json_integer(read_ll(d, "memory.usage_in_bytes", 0)));
            json_object_set_new(u, "max", json_integer(read_ll(d, "memory.max_usage_in_bytes", 0)));
            json_object_set_new(u, "limit", json_integer(read_ll(d, "memory.limit_in_bytes", 0)));
            json_object_set_new(u, "failcnt", json_integer(read_ll(d, "memory.failcnt", 0)));
            json_object_set_new(sw, "usage",
                                json_integer(read_ll(d, "memory.memsw.usage_in_bytes", 0)));
            json_object_set_new(sw, "limit",
                                json_integer(read_ll(d, "memory.memsw.limit_in_bytes", 0)));
        }
        json_t *raw = keyed_object(d, "memory.stat");
        json_object_set_new(
            mem, "cache",
            json_integer(json_integer_value(json_object_get(raw, v2 ? "file" : "cache"))));
        json_object_set_new(mem, "usage", u);
        json_object_set_new(mem, "swap", sw);
        json_object_set_new(mem, "raw", raw);
        json_object_set_new(s, "memory", mem);
    }
    if ((d = ctl_dir(cg, "pids", &v2)))
        json_object_set_new(s, "pids",
                            json_pack("{s:I,s:I}", "current",
                                      (json_int_t)read_ll(d, "pids.current", 0), "limit",
                                      (json_int_t)read_ll(d, "pids.max", -1)));
    json_t *hp = json_object();
    if ((d = ctl_dir(cg, "hugetlb", &v2))) {
        DIR *dir = opendir("/sys/kernel/mm/hugepages");
        struct dirent *de;
        while (dir && (de = readdir(dir))) {
            unsigned long kb;
            if (sscanf(de->d_name, "hugepages-%lukB", &kb) != 1)
                continue;
            char sz[32], f[96];
            if (kb >= 1024 * 1024)
                snprintf(sz, sizeof(sz), "%luGB", kb / (1024 * 1024));
            else if (kb >= 1024)
                snprintf(sz, sizeof(sz), "%luMB", kb / 1024);
            else
                snprintf(sz, sizeof(sz), "%luKB", kb);
            json_t *e = json_object();
            snprintf(f, sizeof(f), v2 ? "hugetlb.%s.current" : "hugetlb.%s.usage_in_bytes", sz);
            json_object_set_new(e, "usage", json_integer(read_ll(d, f, 0)));
            snprintf(f, sizeof(f), v2 ? "hugetlb.%s.max" : "hugetlb.%s.limit_in_bytes", sz);
            json_object_set_new(e, "limit", json_integer(read_ll(d, f, -1)));
            json_object_set_new(hp, sz, e);
        }
        if (dir)
            closedir(dir);
    }
    json_object_set_new(s, "hugetlb", hp);
    json_t *bio = json_object();
    if ((d = ctl_dir(cg, "blkio", &v2)) && !v2) {
        char b[8192];
        json_t *arr = json_array();
        if (read_file(d, "blkio.throttle.io_service_bytes", b, sizeof(b)) > 0)
            for (char *sv, *l = strtok_r(b, "\n", &sv); l; l = strtok_r(NULL, "\n", &sv)) {
                unsigned maj, min;
                char op[32];
                unsigned long long v;
                if (sscanf(l, "%u:%u %31s %llu", &maj, &min, op, &v) == 4)
                    json_array_append_new(arr, json_pack("{s:i,s:i,s:s,s:I}", "major", maj, "minor",
                                                         min, "op", op, "value", (json_int_t)v));
            }
        json_object_set_new(bio, "ioServiceBytesRecursive", arr);
    }
    json_object_set_new(s, "blkio", bio);
    return s;
}

json_t *oci_cgroup_to_json(const struct oci_cgroup *cg)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < cg->n; i++)
        json_array_append_new(arr, json_pack("{s:s,s:b,s:s}", "controllers", cg->h[i].controllers,
                                             "v2", cg->h[i].v2, "dir", cg->h[i].dir));
    return json_pack("{s:s,s:o}", "mode", oci_cgroup_mode_name(cg->mode), "hierarchies", arr);
}

int oci_cgroup_from_json(json_t *j, struct oci_cgroup *cg)
{
    memset(cg, 0, sizeof(*cg));
    if (!json_is_object(j))
        return 0;
    const char *mode = json_string_value(json_object_get(j, "mode"));
    cg->mode = !mode                      ? OCI_CGROUP_NONE
               : !strcmp(mode, "legacy")  ? OCI_CGROUP_LEGACY
               : !strcmp(mode, "hybrid")  ? OCI_CGROUP_HYBRID
               : !strcmp(mode, "unified") ? OCI_CGROUP_UNIFIED
                                          : OCI_CGROUP_NONE;
    json_t *arr = json_object_get(j, "hierarchies"), *e;
    size_t i;
    json_array_foreach(arr, i, e)
    {
        if (cg->n >= OCI_CGROUP_MAX_HIER)
            break;
        const char *c = json_string_value(json_object_get(e, "controllers"));
        const char *d = json_string_value(json_object_get(e, "dir"));
        if (!c || !d || strncmp(d, "/sys/fs/cgroup", 14))
            continue;
        struct oci_cgroup_hier *h = &cg->h[cg->n++];
        snprintf(h->controllers, sizeof(h->controllers), "%s", c);
        h->v2 = json_is_true(json_object_get(e, "v2"));
        h->dir = strdup(d);
    }
    return 0;
}
