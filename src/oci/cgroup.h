/* cgroup manager for v1, v2 and hybrid hosts. A container's cgroup is one
 * directory per mounted hierarchy; each resource goes to the v1 hierarchy
 * that holds its controller, and otherwise to the v2 hierarchy if the
 * controller is enabled there (so a hybrid host uses v1 for what v1 has and
 * v2 for the rest, e.g. hugetlb here). No systemd driver: cgroupfs only. */
#ifndef VESSEL_OCI_CGROUP_H
#define VESSEL_OCI_CGROUP_H

#include <stdbool.h>
#include <sys/types.h>
#include <jansson.h>

#include "oci/spec.h"
#include "util/err.h"

#define OCI_CGROUP_MAX_HIER 16

enum oci_cgroup_mode { OCI_CGROUP_NONE, OCI_CGROUP_LEGACY, OCI_CGROUP_HYBRID, OCI_CGROUP_UNIFIED };

struct oci_cgroup_hier {
    char controllers[128]; /* "memory", "cpu,cpuacct", "name=systemd"; "" for cgroup2 */
    bool v2;
    char *dir; /* the container's directory in this hierarchy */
};

struct oci_cgroup {
    enum oci_cgroup_mode mode;
    size_t n;
    struct oci_cgroup_hier h[OCI_CGROUP_MAX_HIER];
};

const char *oci_cgroup_mode_name(enum oci_cgroup_mode m);
/* Which layout the host has, from /proc/self/mountinfo. */
enum oci_cgroup_mode oci_cgroup_detect(void);

/* Work out and create the container's directories. path is linux.cgroupsPath
 * (absolute: from each hierarchy's root; relative: below the caller's own
 * cgroup; empty: "vessel/<id>" below the caller's). When best_effort is set
 * (rootless), hierarchies we may not write to are skipped. */
int oci_cgroup_create(struct oci_cgroup *cg, const char *path, const char *id, bool best_effort,
                      vs_err *err);
int oci_cgroup_enter(const struct oci_cgroup *cg, pid_t pid, vs_err *err);
int oci_cgroup_apply(const struct oci_cgroup *cg, const struct oci_resources *r, vs_err *err);
int oci_cgroup_freeze(const struct oci_cgroup *cg, bool freeze, vs_err *err);
bool oci_cgroup_is_frozen(const struct oci_cgroup *cg);
bool oci_cgroup_can_freeze(const struct oci_cgroup *cg);
/* PIDs in the container's cgroup (*out malloc'd). */
int oci_cgroup_pids(const struct oci_cgroup *cg, pid_t **out, size_t *n, vs_err *err);
/* Signal every process in the cgroup (frozen first so none can fork away). */
int oci_cgroup_signal_all(const struct oci_cgroup *cg, int sig, vs_err *err);
/* Remove the directories, waiting briefly for dying tasks. */
int oci_cgroup_destroy(struct oci_cgroup *cg, vs_err *err);
void oci_cgroup_release(struct oci_cgroup *cg);
/* runc-compatible "stats" object for events. */
json_t *oci_cgroup_stats(const struct oci_cgroup *cg);
/* Number of OOM kills seen so far (for events). */
unsigned long long oci_cgroup_oom_kills(const struct oci_cgroup *cg);

/* cgroup v2 device rules: build and attach a BPF_CGROUP_DEVICE program
 * (rules, then extra rules that override them). */
int oci_cgroup_v2_devices(const char *dir, const struct oci_dev_rule *rules, size_t n,
                          const struct oci_dev_rule *extra, size_t n_extra, vs_err *err);

json_t *oci_cgroup_to_json(const struct oci_cgroup *cg);
int oci_cgroup_from_json(json_t *j, struct oci_cgroup *cg);

#endif
