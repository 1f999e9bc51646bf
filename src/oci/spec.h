/* OCI runtime-spec 1.x config.json, parsed with jansson into plain structs.
 * Strings point into the jansson tree held by struct oci_spec, so they live
 * as long as the spec. Validation happens here (types, required fields, the
 * ociVersion major, namespace types) so later stages can trust the data. */
#ifndef VESSEL_OCI_SPEC_H
#define VESSEL_OCI_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>

#include "util/err.h"

#define OCI_VERSION "1.1.0"

enum oci_ns_type {
    OCI_NS_PID,
    OCI_NS_NET,
    OCI_NS_MNT,
    OCI_NS_IPC,
    OCI_NS_UTS,
    OCI_NS_USER,
    OCI_NS_CGROUP,
    OCI_NS_TIME,
    OCI_NS_COUNT
};

struct oci_namespace {
    bool present;     /* listed in linux.namespaces */
    const char *path; /* join this one instead of creating (NULL: new) */
};

struct oci_id_map {
    uint32_t container_id, host_id, size;
};

struct oci_mount {
    const char *destination;
    const char *type; /* may be NULL (then bind if options say so) */
    const char *source;
    const char **options; /* NULL-terminated */
    size_t n_options;
};

struct oci_rlimit {
    int resource; /* RLIMIT_* */
    uint64_t soft, hard;
};

struct oci_hook {
    const char *path;
    const char **args; /* NULL-terminated, may be NULL */
    const char **env;  /* NULL-terminated, may be NULL */
    int timeout;       /* seconds, 0 = none */
};

struct oci_hooks {
    struct oci_hook *prestart, *create_runtime, *create_container, *start_container, *poststart,
        *poststop;
    size_t n_prestart, n_create_runtime, n_create_container, n_start_container, n_poststart,
        n_poststop;
};

struct oci_device {
    const char *path;
    char type; /* 'c', 'b', 'u', 'p' */
    int64_t major, minor;
    uint32_t file_mode;
    bool has_mode;
    uint32_t uid, gid;
    bool has_uid, has_gid;
};

/* capability sets as bit masks (bit n = capability n) */
struct oci_caps {
    bool present;
    uint64_t bounding, effective, permitted, inheritable, ambient;
    const char *unknown; /* the first name this kernel does not know, or NULL */
};

struct oci_user {
    uint32_t uid, gid;
    bool has_umask;
    uint32_t umask;
    uint32_t *additional_gids;
    size_t n_additional_gids;
};

struct oci_process {
    bool present;
    bool terminal;
    unsigned console_height, console_width;
    struct oci_user user;
    const char **args; /* NULL-terminated */
    size_t n_args;
    const char **env; /* NULL-terminated */
    size_t n_env;
    const char *cwd;
    struct oci_caps caps;
    struct oci_rlimit *rlimits;
    size_t n_rlimits;
    bool no_new_privileges;
    bool has_oom_score_adj;
    int oom_score_adj;
    /* settings this host cannot honour are refused at create, never
     * ignored (oci_spec_check_host) */
    const char *apparmor_profile, *selinux_label;
    bool has_scheduler, has_io_priority, has_personality;
};

/* Resources; "has_*" says the field was given. Values are kept as in the spec. */
struct oci_resources {
    bool has_mem_limit, has_mem_reservation, has_mem_swap, has_mem_swappiness, has_disable_oom;
    int64_t mem_limit, mem_reservation, mem_swap;
    uint64_t mem_swappiness;
    bool disable_oom;
    bool has_cpu_shares, has_cpu_quota, has_cpu_period, has_cpu_rt_runtime, has_cpu_rt_period;
    uint64_t cpu_shares, cpu_period, cpu_rt_period;
    int64_t cpu_quota, cpu_rt_runtime;
    const char *cpu_cpus, *cpu_mems;
    bool has_pids_limit;
    int64_t pids_limit;
    bool has_blkio_weight;
    uint16_t blkio_weight;
    struct oci_blkio_dev {
        int64_t major, minor;
        uint64_t rate;     /* throttle */
        uint16_t weight;   /* weightDevice */
        const char *which; /* "read_bps", "write_bps", "read_iops", "write_iops", "weight" */
    } * blkio_devs;
    size_t n_blkio_devs;
    struct oci_hugetlb {
        const char *page_size; /* "2MB" */
        uint64_t limit;
    } * hugetlb;
    size_t n_hugetlb;
    struct oci_dev_rule {
        bool allow;
        char type;            /* 'a', 'c', 'b' */
        int64_t major, minor; /* -1 = wildcard */
        const char *access;
    } * dev_rules;
    size_t n_dev_rules;
    json_t *unified; /* object of file -> value (borrowed) */
    /* memory.kernel and memory.kernelTCP (v1 kmem limits) */
    bool has_mem_kernel, has_mem_kernel_tcp;
    int64_t mem_kernel, mem_kernel_tcp;
    /* network: net_cls class id and net_prio priorities per interface */
    bool has_net_classid;
    uint32_t net_classid;
    struct oci_net_prio {
        const char *name;
        uint32_t priority;
    } * net_prios;
    size_t n_net_prios;
    bool has_rdma;
};

struct oci_seccomp_arg {
    unsigned index;
    uint64_t value, value_two;
    int op; /* enum scmp_compare */
};
struct oci_seccomp_rule {
    const char **names;
    size_t n_names;
    uint32_t action; /* SCMP_ACT_* */
    struct oci_seccomp_arg *args;
    size_t n_args;
};
struct oci_seccomp {
    bool present;
    uint32_t default_action;
    const char **archs;
    size_t n_archs;
    const char **flags;
    size_t n_flags;
    const char *listener_path;
    const char *listener_metadata;
    struct oci_seccomp_rule *rules;
    size_t n_rules;
    bool uses_notify;
};

struct oci_sysctl {
    const char *key, *value;
};

struct oci_time_offset {
    bool present;
    int64_t secs;
    uint32_t nanosecs;
};

/* Every array the parser allocates is recorded here and freed at once. */
struct oci_arena {
    void **ptrs;
    size_t n, cap;
};
void *oci_arena_alloc(struct oci_arena *a, size_t n);
void oci_arena_release(struct oci_arena *a);

struct oci_spec {
    json_t *root; /* owns every string below */
    struct oci_arena arena;
    const char *oci_version;
    const char *root_path; /* as written (relative to the bundle or absolute) */
    bool root_readonly;
    const char *hostname, *domainname;
    struct oci_process process;
    struct oci_mount *mounts;
    size_t n_mounts;
    struct oci_hooks hooks;
    json_t *annotations; /* borrowed object or NULL */
    /* linux */
    struct oci_namespace ns[OCI_NS_COUNT];
    struct oci_id_map *uid_maps, *gid_maps;
    size_t n_uid_maps, n_gid_maps;
    struct oci_device *devices;
    size_t n_devices;
    const char *cgroups_path;
    bool has_resources;
    struct oci_resources resources;
    struct oci_sysctl *sysctls;
    size_t n_sysctls;
    const char **masked_paths, **readonly_paths;
    size_t n_masked_paths, n_readonly_paths;
    const char *rootfs_propagation;
    const char *mount_label;
    struct oci_seccomp seccomp;
    struct oci_time_offset time_monotonic, time_boottime;
    bool has_intel_rdt;
};

/* Refuse what this host cannot honour, with one line: settings whose
 * kernel feature is missing (AppArmor, SELinux, Intel RDT), sysctls outside
 * the container's namespaces, mounts without a mount namespace. */
int oci_spec_check_host(const struct oci_spec *s, vs_err *err);

/* Parse config.json text. On error returns NULL with a one-line message. */
struct oci_spec *oci_spec_parse(const char *text, size_t len, vs_err *err);
/* Read and parse PATH (normally BUNDLE/config.json). */
struct oci_spec *oci_spec_load(const char *path, vs_err *err);
/* oci_spec_load, with oci_spec_secure_defaults applied first where asked. */
struct oci_spec *oci_spec_load_opts(const char *path, bool secure_defaults, vs_err *err);
/* --secure-defaults (src/oci/secure_defaults.c): a default seccomp profile
 * where the config has none, no_new_privs, capabilities cut down to
 * Docker's default set, runc's masked and read-only paths, applied to a
 * config.json before it is parsed. */
int oci_spec_secure_defaults(json_t *root, vs_err *err);
void oci_spec_free(struct oci_spec *s);

/* Parse a runc-style "process" object (exec --process FILE) into p. */
int oci_process_parse(json_t *obj, struct oci_process *p, struct oci_arena *a, vs_err *err);

/* Parse a linux.resources object (update -r FILE) into r. */
int oci_resources_parse(json_t *obj, struct oci_resources *r, struct oci_arena *a, vs_err *err);

const char *oci_ns_name(enum oci_ns_type t);
int oci_ns_clone_flag(enum oci_ns_type t);
/* Capability name ("CAP_SYS_ADMIN") to number, or -1. */
int oci_cap_from_name(const char *name);
const char *oci_cap_name(int cap);
int oci_cap_last(void);

/* The default config.json that `spec` writes (runc's template). */
json_t *oci_spec_default(bool rootless, uid_t uid, gid_t gid);

#endif
