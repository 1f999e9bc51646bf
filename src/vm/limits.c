#include "vm/limits.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "oci/cgroup.h"
#include "util/log.h"

#define CPU_PERIOD_US 100000

struct vm_limits {
    pthread_mutex_t lock;
    struct oci_cgroup cg;
    bool active;
    char rel[64]; /* "vessel/vm-<pid>" */
    uint64_t memory, cpu_millis;
};

/* Make the cgroup and move the whole process (every thread) into it. */
static int enter(struct vm_limits *l, vs_err *err)
{
    if (l->active)
        return 0;
    memset(&l->cg, 0, sizeof(l->cg));
    if (oci_cgroup_create(&l->cg, l->rel, NULL, false, err) < 0)
        return vs_error_prefix(err, "limits: ");
    if (l->cg.mode == OCI_CGROUP_NONE)
        return vs_error(err, ENOTSUP, "limits: this host has no cgroups mounted");
    if (oci_cgroup_enter(&l->cg, getpid(), err) < 0) {
        oci_cgroup_destroy(&l->cg, NULL);
        oci_cgroup_release(&l->cg);
        return vs_error_prefix(err, "limits: ");
    }
    l->active = true;
    return 0;
}

int vm_limits_start(const struct vm_config *cfg, struct vm_limits **out, vs_err *err)
{
    *out = NULL;
    struct vm_limits *l = calloc(1, sizeof(*l));
    if (!l)
        return vs_error(err, ENOMEM, "out of memory");
    pthread_mutex_init(&l->lock, NULL);
    snprintf(l->rel, sizeof(l->rel), "vessel/vm-%d", (int)getpid());
    if ((cfg->limit_memory || cfg->limit_cpu_millis) &&
        vm_limits_set(l, cfg->limit_memory != 0, cfg->limit_memory, cfg->limit_cpu_millis != 0,
                      cfg->limit_cpu_millis, err) < 0) {
        vm_limits_stop(l);
        return -1;
    }
    *out = l;
    return 0;
}

int vm_limits_set(struct vm_limits *l, bool has_memory, uint64_t memory, bool has_cpu,
                  uint64_t cpu_millis, vs_err *err)
{
    if (!has_memory && !has_cpu)
        return 0;
    pthread_mutex_lock(&l->lock);
    int rc = enter(l, err);
    if (rc == 0) {
        struct oci_resources r = {0};
        if (has_memory) {
            r.has_mem_limit = true;
            r.mem_limit = memory ? (int64_t)memory : -1;
        }
        if (has_cpu) {
            r.has_cpu_period = r.has_cpu_quota = true;
            r.cpu_period = CPU_PERIOD_US;
            r.cpu_quota = cpu_millis ? (int64_t)(cpu_millis * CPU_PERIOD_US / 1000) : -1;
        }
        rc = oci_cgroup_apply(&l->cg, &r, err);
        if (rc < 0) {
            vs_error_prefix(err, "limits: ");
        } else {
            if (has_memory)
                l->memory = memory;
            if (has_cpu)
                l->cpu_millis = cpu_millis;
        }
    }
    pthread_mutex_unlock(&l->lock);
    return rc;
}

static uint64_t read_u64(const char *dir, const char *file)
{
    char path[512], b[64] = "";
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, b, sizeof(b) - 1);
    close(fd);
    return n > 0 ? strtoull(b, NULL, 10) : 0;
}

void vm_limits_get(struct vm_limits *l, struct vm_limits_info *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&l->lock);
    out->active = l->active;
    out->memory = l->memory;
    out->cpu_millis = l->cpu_millis;
    for (size_t i = 0; l->active && i < l->cg.n; i++) {
        const struct oci_cgroup_hier *h = &l->cg.h[i];
        bool mem = strstr(h->controllers, "memory") != NULL;
        if (mem || !out->cgroup[0])
            snprintf(out->cgroup, sizeof(out->cgroup), "%s", h->dir);
        if (mem)
            out->memory_usage = read_u64(h->dir, "memory.usage_in_bytes");
        else if (h->v2 && !out->memory_usage)
            out->memory_usage = read_u64(h->dir, "memory.current");
    }
    pthread_mutex_unlock(&l->lock);
}

void vm_limits_stop(struct vm_limits *l)
{
    if (!l)
        return;
    if (l->active) {
        /* back to the cgroup the process started in (the directory above
         * "vessel/vm-<pid>"), so its own can go */
        size_t rl = strlen(l->rel);
        bool left = true;
        for (size_t i = 0; i < l->cg.n; i++) {
            const char *dir = l->cg.h[i].dir;
            size_t dl = strlen(dir);
            if (dl <= rl + 1 || strcmp(dir + dl - rl, l->rel))
                continue;
            char path[600];
            snprintf(path, sizeof(path), "%.*s/cgroup.procs", (int)(dl - rl - 1), dir);
            int fd = open(path, O_WRONLY | O_CLOEXEC);
            char pid[24];
            int n = snprintf(pid, sizeof(pid), "%d", (int)getpid());
            if (fd < 0 || write(fd, pid, (size_t)n) < 0) {
                vs_warn("limits: leaving %s: %s; the cgroup is left behind", dir, strerror(errno));
                left = false;
            }
            if (fd >= 0)
                close(fd);
        }
        /* never while this process is inside: destroy kills what it finds */
        vs_err err = {0};
        if (left && oci_cgroup_destroy(&l->cg, &err) < 0)
            vs_warn("limits: removing the VM's cgroup: %s", err.msg);
        oci_cgroup_release(&l->cg);
    }
    pthread_mutex_destroy(&l->lock);
    free(l);
}
