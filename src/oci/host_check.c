/* What a config asks that this host, or the container's namespaces, cannot
 * give: refused at create with one line, before anything is made, instead
 * of being silently ignored (as crun and runc refuse them). */
#include "oci/spec.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/cleanup.h"

static bool file_says_yes(const char *path)
{
    char b[8] = {0};
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    return fd >= 0 && read(fd, b, sizeof(b) - 1) > 0 && (b[0] == 'Y' || b[0] == '1');
}

static bool apparmor_enabled(void)
{
    return file_says_yes("/sys/module/apparmor/parameters/enabled");
}

static bool selinux_enabled(void)
{
    return access("/sys/fs/selinux/enforce", F_OK) == 0;
}

/* The container has its own namespace of this type: a new one, or one
 * joined by path that is not the runtime's own. */
static bool own_namespace(const struct oci_spec *s, enum oci_ns_type t, const char *proc_name)
{
    if (!s->ns[t].present)
        return false;
    if (!s->ns[t].path)
        return true;
    char self[64];
    snprintf(self, sizeof(self), "/proc/self/ns/%s", proc_name);
    struct stat a, b;
    if (stat(s->ns[t].path, &a) < 0 || stat(self, &b) < 0)
        return true; /* joining will fail with its own message */
    return a.st_ino != b.st_ino || a.st_dev != b.st_dev;
}

/* runc's rules: a sysctl may only be set where it is namespaced, in a
 * namespace the container does not share with the host. */
static int check_sysctl(const struct oci_spec *s, const char *key, vs_err *err)
{
    static const char *ipc[] = {"kernel.msgmax", "kernel.msgmnb",         "kernel.msgmni",
                                "kernel.sem",    "kernel.shmall",         "kernel.shmmax",
                                "kernel.shmmni", "kernel.shm_rmid_forced"};
    bool is_ipc = !strncmp(key, "fs.mqueue.", 10);
    for (size_t i = 0; i < ARRAY_SIZE(ipc) && !is_ipc; i++)
        is_ipc = !strcmp(key, ipc[i]);
    if (is_ipc) {
        if (!own_namespace(s, OCI_NS_IPC, "ipc"))
            return vs_error(err, EINVAL,
                            "sysctl %s: the container shares the host's ipc namespace (add a "
                            "new 'ipc' namespace)",
                            key);
        return 0;
    }
    if (!strncmp(key, "net.", 4)) {
        if (!own_namespace(s, OCI_NS_NET, "net"))
            return vs_error(err, EINVAL,
                            "sysctl %s: the container shares the host's network namespace (add a "
                            "new 'network' namespace)",
                            key);
        return 0;
    }
    if (!strcmp(key, "kernel.domainname") || !strcmp(key, "kernel.hostname")) {
        if (!own_namespace(s, OCI_NS_UTS, "uts"))
            return vs_error(err, EINVAL,
                            "sysctl %s: the container shares the host's uts namespace (add a "
                            "new 'uts' namespace)",
                            key);
        return 0;
    }
    return vs_error(err, EINVAL,
                    "sysctl %s is not namespaced: setting it would change the host (allowed: "
                    "net.*, fs.mqueue.*, kernel.msg*/sem/shm*, kernel.domainname, "
                    "kernel.hostname)",
                    key);
}

int oci_spec_check_host(const struct oci_spec *s, vs_err *err)
{
    const struct oci_process *p = &s->process;
    const struct oci_resources *r = &s->resources;
    if (p->apparmor_profile && *p->apparmor_profile && !apparmor_enabled())
        return vs_error(err, ENOTSUP,
                        "process.apparmorProfile '%s': AppArmor is not enabled on this host",
                        p->apparmor_profile);
    if (p->selinux_label && *p->selinux_label && !selinux_enabled())
        return vs_error(err, ENOTSUP,
                        "process.selinuxLabel '%s': SELinux is not enabled on this host",
                        p->selinux_label);
    if (s->mount_label && *s->mount_label && !selinux_enabled())
        return vs_error(err, ENOTSUP, "linux.mountLabel '%s': SELinux is not enabled on this host",
                        s->mount_label);
    if (p->has_scheduler)
        return vs_error(err, ENOTSUP, "process.scheduler is not supported by this runtime");
    if (p->has_io_priority)
        return vs_error(err, ENOTSUP, "process.ioPriority is not supported by this runtime");
    if (p->has_personality)
        return vs_error(err, ENOTSUP, "process.personality is not supported by this runtime");
    if (s->has_intel_rdt)
        return vs_error(err, ENOTSUP,
                        "linux.intelRdt: Intel RDT (resctrl) is not supported by this runtime");
    if (r->has_rdma && access("/sys/fs/cgroup/rdma", F_OK) < 0)
        return vs_error(err, ENOTSUP,
                        "linux.resources.rdma: the 'rdma' cgroup controller is not available");
    if (!s->ns[OCI_NS_MNT].present) {
        /* without a mount namespace every mount would be made in the
         * host's, and outlive the container */
        if (s->n_mounts)
            return vs_error(err, EINVAL,
                            "mounts need a new 'mount' namespace (linux.namespaces has none): "
                            "they would be made in the host's");
        if (s->root_readonly)
            return vs_error(err, EINVAL,
                            "root.readonly needs a new 'mount' namespace (linux.namespaces has "
                            "none): it would make the host's mount read-only");
        if (s->rootfs_propagation && *s->rootfs_propagation)
            return vs_error(err, EINVAL,
                            "linux.rootfsPropagation needs a new 'mount' namespace "
                            "(linux.namespaces has none)");
    }
    if (s->hostname && *s->hostname && !own_namespace(s, OCI_NS_UTS, "uts"))
        return vs_error(err, EINVAL,
                        "hostname is set but the container has no uts namespace of its own");
    for (size_t i = 0; i < s->n_sysctls; i++)
        if (check_sysctl(s, s->sysctls[i].key, err) < 0)
            return -1;
    return 0;
}
