/* --secure-defaults (vessel-runc create|run, and the daemon's containers):
 * hardening a config.json gets where it asks for none, the way podman and
 * Docker harden a container by default. Applied to the JSON before it is
 * parsed, and the result is what the container's state keeps, so exec
 * applies the same (docs/security.md, "Containers").
 *
 *   - linux.seccomp, when absent: every system call allowed but the ones
 *     Docker's and podman's default profiles withhold from a container
 *     without extra capabilities (module loading, kexec, mount and the new
 *     mount API, namespaces, keyrings, bpf, perf, ptrace and cross-process
 *     memory, clock and time setting, swap, reboot, quotas, NUMA policy,
 *     userfaultfd, io_uring, handles to files by inode), which fail with
 *     EPERM;
 *   - process.noNewPrivileges: true;
 *   - process.capabilities: each set cut down to Docker's default set;
 *   - linux.maskedPaths and linux.readonlyPaths: runc's defaults added to
 *     the config's own.
 * What the config says itself is kept where it is stricter. */
#include "oci/spec.h"

#include <errno.h>
#include <string.h>

static const char *const withheld_calls[] = {
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_kernel_syms",
    "get_mempolicy",
    "init_module",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mbind",
    "mount",
    "mount_setattr",
    "move_mount",
    "move_pages",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "query_module",
    "quotactl",
    "quotactl_fd",
    "reboot",
    "request_key",
    "set_mempolicy",
    "setns",
    "settimeofday",
    "stime",
    "swapoff",
    "swapon",
    "sysfs",
    "_sysctl",
    "umount",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vm86",
    "vm86old",
};

/* Docker's default capability set. */
static const char *const default_caps[] = {
    "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
    "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
    "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
    "CAP_KILL",    "CAP_AUDIT_WRITE",
};

static const char *const masked_paths[] = {
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
};

static const char *const readonly_paths[] = {
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};

static bool allowed_cap(const char *name)
{
    for (size_t i = 0; i < sizeof(default_caps) / sizeof(default_caps[0]); i++)
        if (!strcmp(name, default_caps[i]))
            return true;
    return false;
}

static json_t *child_obj(json_t *parent, const char *key)
{
    json_t *o = json_object_get(parent, key);
    if (!o) {
        o = json_object();
        if (!o || json_object_set_new(parent, key, o) < 0)
            return NULL;
    }
    return json_is_object(o) ? o : NULL;
}

static json_t *default_seccomp(void)
{
    json_t *names = json_array();
    for (size_t i = 0; names && i < sizeof(withheld_calls) / sizeof(withheld_calls[0]); i++)
        json_array_append_new(names, json_string(withheld_calls[i]));
    /* the native architecture only: a call of another ABI (int 0x80 on
     * x86-64) kills the process, as libseccomp's filters do by default */
    return json_pack("{s:s, s:[{s:o, s:s, s:i}]}", "defaultAction", "SCMP_ACT_ALLOW", "syscalls",
                     "names", names, "action", "SCMP_ACT_ERRNO", "errnoRet", EPERM);
}

/* The paths of list (an array, made if missing) plus each of add not in it. */
static int add_paths(json_t *linux_, const char *key, const char *const *add, size_t n)
{
    json_t *list = json_object_get(linux_, key);
    if (!list) {
        list = json_array();
        if (!list || json_object_set_new(linux_, key, list) < 0)
            return -1;
    }
    if (!json_is_array(list))
        return -1;
    for (size_t i = 0; i < n; i++) {
        bool have = false;
        size_t k;
        json_t *v;
        json_array_foreach(list, k, v) have =
            have || (json_is_string(v) && !strcmp(json_string_value(v), add[i]));
        if (!have && json_array_append_new(list, json_string(add[i])) < 0)
            return -1;
    }
    return 0;
}

int oci_spec_secure_defaults(json_t *root, vs_err *err)
{
    json_t *process = json_object_get(root, "process");
    json_t *linux_ = child_obj(root, "linux");
    if (!linux_)
        return vs_error(err, EINVAL, "config.json: linux: expected an object");
    if (!json_object_get(linux_, "seccomp") &&
        json_object_set_new(linux_, "seccomp", default_seccomp()) < 0)
        return vs_error(err, ENOMEM, "out of memory");
    if (add_paths(linux_, "maskedPaths", masked_paths,
                  sizeof(masked_paths) / sizeof(masked_paths[0])) < 0 ||
        add_paths(linux_, "readonlyPaths", readonly_paths,
                  sizeof(readonly_paths) / sizeof(readonly_paths[0])) < 0)
        return vs_error(err, EINVAL,
                        "config.json: linux.maskedPaths/readonlyPaths: expected arrays");
    if (!json_is_object(process))
        return 0; /* create refuses it, with its own message */
    json_object_set_new(process, "noNewPrivileges", json_true());
    json_t *caps = json_object_get(process, "capabilities");
    if (!json_is_object(caps))
        return 0;
    const char *set;
    json_t *list;
    json_object_foreach(caps, set, list)
    {
        if (!json_is_array(list))
            continue;
        for (size_t i = json_array_size(list); i-- > 0;) {
            json_t *c = json_array_get(list, i);
            if (!json_is_string(c) || !allowed_cap(json_string_value(c)))
                json_array_remove(list, i);
        }
    }
    return 0;
}
