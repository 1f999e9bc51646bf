/* CPU and memory caps for the VM process itself: a cgroup of its own
 * ("vessel/vm-<pid>" below the cgroup it was started in), made and written
 * by the OCI runtime's cgroup code (one cgroup library for containers and
 * VMs: v1, v2 and hybrid hosts). The process moves in before the machine is
 * built, so guest RAM is charged to it; caps change while the VM runs. */
#ifndef VESSEL_VM_LIMITS_H
#define VESSEL_VM_LIMITS_H

#include <stdbool.h>
#include <stdint.h>
#include "util/err.h"
#include "vm/config.h"

struct vm_limits;

/* The process's limits object; its cgroup is made now if cfg asks for caps
 * (--limit-memory, --limit-cpus), else on the first vm_limits_set. */
int vm_limits_start(const struct vm_config *cfg, struct vm_limits **out, vs_err *err);
/* memory: bytes (0: no cap); cpu_millis: thousandths of a CPU (0: no cap). */
int vm_limits_set(struct vm_limits *l, bool has_memory, uint64_t memory, bool has_cpu,
                  uint64_t cpu_millis, vs_err *err);
struct vm_limits_info {
    bool active; /* the process is in its own cgroup */
    uint64_t memory, cpu_millis;
    uint64_t memory_usage; /* bytes charged to the cgroup now (0: unknown) */
    char cgroup[256];      /* its directory in the memory (or first) hierarchy */
};
void vm_limits_get(struct vm_limits *l, struct vm_limits_info *out);
/* Move the process back where it came from and remove its cgroup. */
void vm_limits_stop(struct vm_limits *l);

#endif
